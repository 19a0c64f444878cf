//! Capabilities advertised in OPEN (RFC 5492).
//!
//! ```text
//! +------------------------------+
//! | Capability Code (1 octet)    |
//! +------------------------------+
//! | Capability Length (1 octet)  |
//! +------------------------------+
//! | Capability Value (variable)  |
//! +------------------------------+
//! ```
//!
//! A capability whose value is malformed makes the OPEN an error 2/0 (see the robustness spec and
//! `docs/rfc-compliance.md`). A capability this crate does not know is kept as
//! [`Capability::Unknown`] (RFC 5492 §5: unknown capabilities are ignored, not refused). A known
//! capability whose reserved octets are not zero is also kept as `Unknown`, so that it re-encodes
//! byte for byte.

use bytes::BufMut;

use crate::iana::{AddPathMode, Afi, BgpRole, CapabilityCode, Family};
use crate::wire::{Reader, sum};

/// One capability.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// Multiprotocol extensions for one family (RFC 4760 §8).
    Multiprotocol(Family),
    /// Route refresh (RFC 2918 §2).
    RouteRefresh,
    /// Enhanced route refresh (RFC 7313 §3).
    EnhancedRouteRefresh,
    /// Support for 4-octet AS numbers, with the speaker's AS (RFC 6793 §3).
    FourOctetAs(u32),
    /// Graceful restart (RFC 4724 §3).
    GracefulRestart(GracefulRestart),
    /// Long-lived graceful restart (RFC 9494 §3).
    LongLivedGracefulRestart(Vec<LlgrFamily>),
    /// ADD-PATH (RFC 7911 §4).
    AddPath(Vec<AddPathFamily>),
    /// Extended message (RFC 8654 §3).
    ExtendedMessage,
    /// Extended next hop encoding (RFC 8950 §3).
    ExtendedNextHop(Vec<ExtendedNextHop>),
    /// BGP role (RFC 9234 §4.1).
    Role(BgpRole),
    /// Host and domain name (draft-walton-bgp-hostname-capability). Kept as `Unknown` when either
    /// name is not UTF-8.
    Fqdn {
        /// Host name.
        hostname: String,
        /// Domain name.
        domain: String,
    },
    /// A capability this crate does not decode, kept as received.
    Unknown {
        /// Capability code.
        code: u8,
        /// Capability value.
        data: Vec<u8>,
    },
}

/// The graceful restart capability (RFC 4724 §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    /// The 4 restart flag bits (high nibble of the first octet): [`Self::RESTART_STATE`] and
    /// [`Self::NOTIFICATION`].
    pub flags: u8,
    /// Restart time in seconds (12 bits).
    pub restart_time: u16,
    /// Families whose forwarding state is preserved.
    pub families: Vec<GracefulRestartFamily>,
}

impl GracefulRestart {
    /// R bit: the speaker has restarted (RFC 4724 §3).
    pub const RESTART_STATE: u8 = 0x8;
    /// N bit: graceful restart for NOTIFICATION messages (RFC 8538 §2).
    pub const NOTIFICATION: u8 = 0x4;

    /// Whether the R bit is set.
    pub fn restart_state(&self) -> bool {
        self.flags & Self::RESTART_STATE != 0
    }

    /// Whether the N bit is set.
    pub fn notification(&self) -> bool {
        self.flags & Self::NOTIFICATION != 0
    }
}

/// One family in the graceful restart capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GracefulRestartFamily {
    /// The family.
    pub family: Family,
    /// Flags for the family: [`Self::FORWARDING_STATE`].
    pub flags: u8,
}

impl GracefulRestartFamily {
    /// F bit: forwarding state was preserved (RFC 4724 §3).
    pub const FORWARDING_STATE: u8 = 0x80;

    /// Whether the F bit is set.
    pub fn forwarding_state(&self) -> bool {
        self.flags & Self::FORWARDING_STATE != 0
    }
}

/// One family in the long-lived graceful restart capability (RFC 9494 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LlgrFamily {
    /// The family.
    pub family: Family,
    /// Flags: [`GracefulRestartFamily::FORWARDING_STATE`] is the F bit.
    pub flags: u8,
    /// Long-lived stale time in seconds (24 bits).
    pub stale_time: u32,
}

/// One family in the ADD-PATH capability (RFC 7911 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddPathFamily {
    /// The family.
    pub family: Family,
    /// Whether the capability's sender can send, receive or both.
    pub mode: AddPathMode,
}

/// One entry of the extended next hop capability (RFC 8950 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtendedNextHop {
    /// NLRI AFI.
    pub nlri_afi: Afi,
    /// NLRI SAFI (2 octets in this capability).
    pub nlri_safi: u16,
    /// Next hop AFI.
    pub next_hop_afi: Afi,
}

/// Why a capability could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CapabilityError {
    pub(crate) offset: usize,
    pub(crate) reason: String,
}

fn family(r: &mut Reader<'_>) -> Option<Family> {
    let afi = r.u16()?;
    let safi = r.u8()?;
    Some(Family::new(afi.into(), safi.into()))
}

impl Capability {
    /// The capability code.
    pub fn code(&self) -> u8 {
        let code = match self {
            Capability::Multiprotocol(_) => CapabilityCode::Multiprotocol,
            Capability::RouteRefresh => CapabilityCode::RouteRefresh,
            Capability::EnhancedRouteRefresh => CapabilityCode::EnhancedRouteRefresh,
            Capability::FourOctetAs(_) => CapabilityCode::FourOctetAs,
            Capability::GracefulRestart(_) => CapabilityCode::GracefulRestart,
            Capability::LongLivedGracefulRestart(_) => CapabilityCode::LongLivedGracefulRestart,
            Capability::AddPath(_) => CapabilityCode::AddPath,
            Capability::ExtendedMessage => CapabilityCode::ExtendedMessage,
            Capability::ExtendedNextHop(_) => CapabilityCode::ExtendedNextHop,
            Capability::Role(_) => CapabilityCode::Role,
            Capability::Fqdn { .. } => CapabilityCode::Fqdn,
            Capability::Unknown { code, .. } => return *code,
        };
        code.into()
    }

    /// Decodes capabilities until the reader is empty.
    pub(crate) fn decode_all(r: &mut Reader<'_>) -> Result<Vec<Capability>, CapabilityError> {
        let mut caps = Vec::new();
        while !r.is_empty() {
            let offset = r.offset();
            let (Some(code), Some(len)) = (r.u8(), r.u8()) else {
                return Err(CapabilityError {
                    offset,
                    reason: "capability header truncated".into(),
                });
            };
            let Some(value) = r.sub(usize::from(len)) else {
                return Err(CapabilityError {
                    offset,
                    reason: format!(
                        "capability {code} length {len} overruns its parameter ({} octets left)",
                        r.remaining()
                    ),
                });
            };
            caps.push(Self::decode_value(code, value, offset)?);
        }
        Ok(caps)
    }

    /// Decodes one capability value; `offset` is where the capability starts (for errors).
    fn decode_value(
        code: u8,
        mut r: Reader<'_>,
        offset: usize,
    ) -> Result<Capability, CapabilityError> {
        let raw = r.peek_rest();
        let len = raw.len();
        let malformed = |what: &str| CapabilityError {
            offset,
            reason: format!(
                "{:?} capability: {what} (length {len})",
                CapabilityCode::from(code)
            ),
        };
        let unknown = || Capability::Unknown {
            code,
            data: raw.to_vec(),
        };
        let cap = match CapabilityCode::from(code) {
            CapabilityCode::Multiprotocol => {
                // RFC 4760 §8: AFI (2), Reserved (1), SAFI (1).
                let (Some(afi), Some(reserved), Some(safi), true) =
                    (r.u16(), r.u8(), r.u8(), len == 4)
                else {
                    return Err(malformed("length must be 4"));
                };
                if reserved != 0 {
                    return Ok(unknown());
                }
                Capability::Multiprotocol(Family::new(afi.into(), safi.into()))
            }
            CapabilityCode::RouteRefresh
            | CapabilityCode::EnhancedRouteRefresh
            | CapabilityCode::ExtendedMessage => {
                if len != 0 {
                    return Err(malformed("length must be 0"));
                }
                match CapabilityCode::from(code) {
                    CapabilityCode::RouteRefresh => Capability::RouteRefresh,
                    CapabilityCode::EnhancedRouteRefresh => Capability::EnhancedRouteRefresh,
                    _ => Capability::ExtendedMessage,
                }
            }
            CapabilityCode::FourOctetAs => match (r.u32(), len == 4) {
                (Some(asn), true) => Capability::FourOctetAs(asn),
                _ => return Err(malformed("length must be 4")),
            },
            CapabilityCode::GracefulRestart => {
                // RFC 4724 §3: flags (4 bits) + restart time (12 bits), then 4 octets per family.
                let Some(head) = r.u16() else {
                    return Err(malformed("shorter than 2 octets"));
                };
                if !r.remaining().is_multiple_of(4) {
                    return Err(malformed("family list is not a multiple of 4 octets"));
                }
                let mut families = Vec::with_capacity(r.remaining() / 4);
                while let (Some(family), Some(flags)) = (family(&mut r), r.u8()) {
                    families.push(GracefulRestartFamily { family, flags });
                }
                let flags = u8::try_from(head >> 12).unwrap_or(0);
                Capability::GracefulRestart(GracefulRestart {
                    flags,
                    restart_time: head & 0x0fff,
                    families,
                })
            }
            CapabilityCode::LongLivedGracefulRestart => {
                if !len.is_multiple_of(7) {
                    return Err(malformed("not a multiple of 7 octets"));
                }
                let mut families = Vec::with_capacity(len / 7);
                while let (Some(family), Some(flags), Some(stale_time)) =
                    (family(&mut r), r.u8(), r.u24())
                {
                    families.push(LlgrFamily {
                        family,
                        flags,
                        stale_time,
                    });
                }
                Capability::LongLivedGracefulRestart(families)
            }
            CapabilityCode::AddPath => {
                if !len.is_multiple_of(4) || len == 0 {
                    return Err(malformed("not a non-zero multiple of 4 octets"));
                }
                let mut families = Vec::with_capacity(len / 4);
                while let (Some(family), Some(mode)) = (family(&mut r), r.u8()) {
                    families.push(AddPathFamily {
                        family,
                        mode: mode.into(),
                    });
                }
                Capability::AddPath(families)
            }
            CapabilityCode::ExtendedNextHop => {
                if !len.is_multiple_of(6) {
                    return Err(malformed("not a multiple of 6 octets"));
                }
                let mut entries = Vec::with_capacity(len / 6);
                while let (Some(nlri_afi), Some(nlri_safi), Some(next_hop_afi)) =
                    (r.u16(), r.u16(), r.u16())
                {
                    entries.push(ExtendedNextHop {
                        nlri_afi: nlri_afi.into(),
                        nlri_safi,
                        next_hop_afi: next_hop_afi.into(),
                    });
                }
                Capability::ExtendedNextHop(entries)
            }
            CapabilityCode::Role => match (r.u8(), len == 1) {
                (Some(role), true) => Capability::Role(role.into()),
                _ => return Err(malformed("length must be 1")),
            },
            CapabilityCode::Fqdn => {
                fn name<'a>(r: &mut Reader<'a>) -> Option<&'a [u8]> {
                    let n = r.u8()?;
                    r.take(usize::from(n))
                }
                let (Some(host), Some(domain), true) = (name(&mut r), name(&mut r), r.is_empty())
                else {
                    return Err(malformed(
                        "host/domain lengths do not match the capability length",
                    ));
                };
                match (std::str::from_utf8(host), std::str::from_utf8(domain)) {
                    (Ok(h), Ok(d)) => Capability::Fqdn {
                        hostname: h.to_string(),
                        domain: d.to_string(),
                    },
                    _ => unknown(),
                }
            }
            _ => unknown(),
        };
        Ok(cap)
    }

    /// Length of the capability value (without code and length octets).
    pub fn value_len(&self) -> usize {
        match self {
            Capability::Multiprotocol(_) | Capability::FourOctetAs(_) => 4,
            Capability::RouteRefresh
            | Capability::EnhancedRouteRefresh
            | Capability::ExtendedMessage => 0,
            Capability::GracefulRestart(gr) => {
                gr.families.len().saturating_mul(4).saturating_add(2)
            }
            Capability::LongLivedGracefulRestart(f) => f.len().saturating_mul(7),
            Capability::AddPath(f) => f.len().saturating_mul(4),
            Capability::ExtendedNextHop(e) => e.len().saturating_mul(6),
            Capability::Role(_) => 1,
            Capability::Fqdn { hostname, domain } => sum([2, hostname.len(), domain.len()]),
            Capability::Unknown { data, .. } => data.len(),
        }
    }

    /// Encoded length including the code and length octets.
    pub fn encoded_len(&self) -> usize {
        self.value_len().saturating_add(2)
    }

    /// Checks that the value fits the one-octet length field (and FQDN names their own).
    pub(crate) fn check(&self) -> Result<(), crate::EncodeError> {
        let too_long = |field, length| crate::EncodeError::FieldTooLong {
            field,
            length,
            max: 255,
        };
        if let Capability::Fqdn { hostname, domain } = self {
            if hostname.len() > 255 {
                return Err(too_long("FQDN capability host name", hostname.len()));
            }
            if domain.len() > 255 {
                return Err(too_long("FQDN capability domain name", domain.len()));
            }
        }
        if self.value_len() > 255 {
            return Err(too_long("capability value", self.value_len()));
        }
        Ok(())
    }

    /// Writes the capability (call [`check`](Self::check) first; lengths are truncated to a
    /// byte otherwise).
    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.code());
        buf.put_u8(u8::try_from(self.value_len()).unwrap_or(u8::MAX));
        let put_family = |buf: &mut dyn BufMut, f: &Family| {
            buf.put_u16(f.afi.into());
            buf.put_u8(f.safi.into());
        };
        match self {
            Capability::Multiprotocol(f) => {
                buf.put_u16(f.afi.into());
                buf.put_u8(0);
                buf.put_u8(f.safi.into());
            }
            Capability::RouteRefresh
            | Capability::EnhancedRouteRefresh
            | Capability::ExtendedMessage => {}
            Capability::FourOctetAs(asn) => buf.put_u32(*asn),
            Capability::GracefulRestart(gr) => {
                buf.put_u16((u16::from(gr.flags & 0x0f) << 12) | (gr.restart_time & 0x0fff));
                for f in &gr.families {
                    put_family(buf, &f.family);
                    buf.put_u8(f.flags);
                }
            }
            Capability::LongLivedGracefulRestart(families) => {
                for f in families {
                    put_family(buf, &f.family);
                    buf.put_u8(f.flags);
                    let [_, a, b, c] = f.stale_time.to_be_bytes();
                    buf.put_slice(&[a, b, c]);
                }
            }
            Capability::AddPath(families) => {
                for f in families {
                    put_family(buf, &f.family);
                    buf.put_u8(f.mode.into());
                }
            }
            Capability::ExtendedNextHop(entries) => {
                for e in entries {
                    buf.put_u16(e.nlri_afi.into());
                    buf.put_u16(e.nlri_safi);
                    buf.put_u16(e.next_hop_afi.into());
                }
            }
            Capability::Role(role) => buf.put_u8((*role).into()),
            Capability::Fqdn { hostname, domain } => {
                buf.put_u8(u8::try_from(hostname.len()).unwrap_or(u8::MAX));
                buf.put_slice(hostname.as_bytes());
                buf.put_u8(u8::try_from(domain.len()).unwrap_or(u8::MAX));
                buf.put_slice(domain.as_bytes());
            }
            Capability::Unknown { data, .. } => buf.put_slice(data),
        }
    }
}
