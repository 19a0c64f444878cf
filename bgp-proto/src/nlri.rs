//! NLRI: prefixes with optional ADD-PATH path identifiers (RFC 4271 §4.3, RFC 7911 §3).
//!
//! ```text
//! +---------------------------+
//! | Path Identifier (4 octets)|   only where ADD-PATH is negotiated for the family
//! +---------------------------+
//! | Length (1 octet)          |
//! +---------------------------+
//! | Prefix (variable)         |
//! +---------------------------+
//! ```
//!
//! Host bits beyond the prefix length inside the last prefix octet are kept as received so that
//! messages re-encode byte for byte; use `prefix.trunc()` where a canonical prefix is needed.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::BufMut;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::iana::Afi;

/// One NLRI entry: a prefix and, where ADD-PATH is negotiated, its path identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nlri {
    /// The prefix.
    pub prefix: IpNet,
    /// The ADD-PATH path identifier (RFC 7911 §3), `None` where ADD-PATH is not in use.
    pub path_id: Option<u32>,
}

impl Nlri {
    /// A prefix without path identifier.
    pub fn new(prefix: IpNet) -> Self {
        Nlri {
            prefix,
            path_id: None,
        }
    }

    /// A prefix with a path identifier.
    pub fn with_path_id(prefix: IpNet, path_id: u32) -> Self {
        Nlri {
            prefix,
            path_id: Some(path_id),
        }
    }

    /// Octets this entry takes on the wire when `add_path` is in effect.
    pub fn encoded_len(&self, add_path: bool) -> usize {
        let prefix_octets = usize::from(self.prefix.prefix_len().div_ceil(8));
        prefix_octets.saturating_add(if add_path { 5 } else { 1 })
    }

    /// Writes the entry. Without `add_path` the path identifier is not written; with it, a
    /// missing identifier is written as 0.
    pub fn encode(&self, add_path: bool, buf: &mut impl BufMut) {
        if add_path {
            buf.put_u32(self.path_id.unwrap_or(0));
        }
        let len = self.prefix.prefix_len();
        buf.put_u8(len);
        let n = usize::from(len.div_ceil(8));
        match self.prefix {
            IpNet::V4(net) => buf.put_slice(net.addr().octets().get(..n).unwrap_or_default()),
            IpNet::V6(net) => buf.put_slice(net.addr().octets().get(..n).unwrap_or_default()),
        }
    }
}

impl From<IpNet> for Nlri {
    fn from(prefix: IpNet) -> Self {
        Nlri::new(prefix)
    }
}

impl std::fmt::Display for Nlri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.path_id {
            Some(id) => write!(f, "{} path-id {id}", self.prefix),
            None => write!(f, "{}", self.prefix),
        }
    }
}

/// Why an NLRI field could not be decoded: the offset (absolute, in the message) of the bad entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NlriError {
    pub(crate) offset: usize,
    pub(crate) reason: String,
}

/// Decodes a whole NLRI field (`buf`, starting at message offset `start`) of address family
/// `afi` into `out`. This is the hot loop of UPDATE decoding: one length check per entry, no
/// allocation beyond growing `out` (reserved once from a counting pass).
pub(crate) fn decode_field(
    buf: &[u8],
    start: usize,
    afi: Afi,
    add_path: bool,
    out: &mut Vec<Nlri>,
) -> Result<(), NlriError> {
    let max_len: u8 = match afi {
        Afi::Ipv4 => 32,
        Afi::Ipv6 => 128,
        Afi::Other(_) => 0,
    };
    let at = |rest: &[u8]| start.saturating_add(buf.len().saturating_sub(rest.len()));
    out.reserve(count(buf, add_path));
    let mut rest = buf;
    while !rest.is_empty() {
        let entry_start = rest;
        let mut path_id = None;
        if add_path {
            let Some((id, tail)) = rest.split_first_chunk::<4>() else {
                return Err(NlriError {
                    offset: at(entry_start),
                    reason: format!("path identifier truncated ({} octets left)", rest.len()),
                });
            };
            path_id = Some(u32::from_be_bytes(*id));
            rest = tail;
        }
        let Some((&len, tail)) = rest.split_first() else {
            return Err(NlriError {
                offset: at(entry_start),
                reason: "prefix length missing after path identifier".into(),
            });
        };
        // RFC 7606 §5.3 / RFC 4271 §6.3: a prefix length longer than the address is malformed.
        if len > max_len {
            return Err(NlriError {
                offset: at(rest),
                reason: format!("prefix length {len} exceeds {max_len}"),
            });
        }
        let n = usize::from(len.div_ceil(8));
        let Some((addr, tail)) = tail.split_at_checked(n) else {
            return Err(NlriError {
                offset: at(rest),
                reason: format!(
                    "/{len} prefix needs {n} octets, {} left in the field",
                    tail.len()
                ),
            });
        };
        let prefix = match afi {
            Afi::Ipv4 => {
                // Slice patterns instead of a variable-length copy: this is the hot path.
                let octets = match *addr {
                    [] => [0, 0, 0, 0],
                    [a] => [a, 0, 0, 0],
                    [a, b] => [a, b, 0, 0],
                    [a, b, c] => [a, b, c, 0],
                    [a, b, c, d, ..] => [a, b, c, d],
                };
                Ipv4Net::new(Ipv4Addr::from(octets), len).map(IpNet::V4)
            }
            _ => {
                let mut octets = [0u8; 16];
                if let Some(dst) = octets.get_mut(..addr.len()) {
                    dst.copy_from_slice(addr);
                }
                Ipv6Net::new(Ipv6Addr::from(octets), len).map(IpNet::V6)
            }
        };
        let Ok(prefix) = prefix else {
            return Err(NlriError {
                offset: at(rest),
                reason: format!("bad prefix length {len}"),
            });
        };
        out.push(Nlri { prefix, path_id });
        rest = tail;
    }
    Ok(())
}

/// Counts the entries of a field (an upper bound if the field turns out malformed).
fn count(buf: &[u8], add_path: bool) -> usize {
    let skip = if add_path { 4 } else { 0 };
    let mut rest = buf;
    let mut n = 0usize;
    while let Some(&len) = rest.get(skip) {
        n = n.saturating_add(1);
        let octets = usize::from(len.div_ceil(8))
            .saturating_add(skip)
            .saturating_add(1);
        rest = rest.get(octets..).unwrap_or_default();
    }
    n
}

/// Octets a list of entries takes.
pub(crate) fn field_len(nlri: &[Nlri], add_path: bool) -> usize {
    crate::wire::sum(nlri.iter().map(|n| n.encoded_len(add_path)))
}
