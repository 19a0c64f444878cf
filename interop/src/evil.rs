//! A raw BGP speaker for the robustness scenarios ("evil peer"): it completes the OPEN
//! exchange with `bgp-proto`, announces routes built with [`UpdateBuilder`], and then writes
//! whatever bytes a scenario gives it (a row of `fixtures/malformed-messages.tsv`, a flood, an
//! OPEN nobody should accept). It reads what the other side answers as raw messages so that a
//! scenario can compare a NOTIFICATION octet for octet.
//!
//! Sockets are made inside a scenario's namespace by a short-lived thread that enters the
//! namespace with `setns(2)` (only that thread moves); the socket stays in the namespace it
//! was created in and is used from the test thread afterwards.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use bgp_proto::attr::{AsPath, NextHop};
use bgp_proto::{
    AttributeValue, Capability, Context, Family, Message, Nlri, Open, Origin, PathAttribute,
    UpdateBuilder,
};
use nix::sched::{CloneFlags, setns};

use crate::netns::Netns;

/// BGP message type codes (RFC 4271 §4.1).
pub const TYPE_OPEN: u8 = 1;
/// UPDATE.
pub const TYPE_UPDATE: u8 = 2;
/// NOTIFICATION.
pub const TYPE_NOTIFICATION: u8 = 3;
/// KEEPALIVE.
pub const TYPE_KEEPALIVE: u8 = 4;

/// The KEEPALIVE message (RFC 4271 §4.4).
pub const KEEPALIVE: [u8; 19] = [
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0x00,
    0x13,
    TYPE_KEEPALIVE,
];

/// Runs `f` on a thread that has entered `netns`' network namespace, and returns its result.
/// Sockets `f` creates belong to that namespace.
pub fn in_netns<T, F>(netns: &Netns, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let path = format!("/run/netns/{}", netns.name());
    let handle = std::thread::spawn(move || -> Result<T> {
        let file = File::open(&path).with_context(|| format!("open {path}"))?;
        setns(&file, CloneFlags::CLONE_NEWNET).with_context(|| format!("setns {path}"))?;
        f()
    });
    handle
        .join()
        .map_err(|_| anyhow!("thread in namespace panicked"))?
}

/// Opens a TCP connection to `remote` from inside `netns` (source address chosen by the
/// namespace's routing table).
pub fn connect_in(netns: &Netns, remote: SocketAddr, timeout: Duration) -> Result<TcpStream> {
    in_netns(netns, move || {
        TcpStream::connect_timeout(&remote, timeout).with_context(|| format!("connect {remote}"))
    })
}

/// What the other side did next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// One complete message (header included).
    Message(Vec<u8>),
    /// The connection was closed (EOF) or reset; the octets received before that are kept.
    Closed {
        /// Bytes of an incomplete message received before the close.
        partial: Vec<u8>,
        /// `true` for a reset (ECONNRESET), `false` for an orderly EOF.
        reset: bool,
    },
    /// Nothing complete arrived in time.
    TimedOut,
}

/// The type octet of a raw message.
pub fn message_type(raw: &[u8]) -> Option<u8> {
    raw.get(18).copied()
}

/// `(code, subcode, data)` of a raw NOTIFICATION message.
pub fn notification_parts(raw: &[u8]) -> Option<(u8, u8, &[u8])> {
    if message_type(raw) != Some(TYPE_NOTIFICATION) || raw.len() < 21 {
        return None;
    }
    Some((raw[19], raw[20], &raw[21..]))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of a hex string (whitespace ignored).
pub fn unhex(text: &str) -> Result<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        bail!("odd number of hex digits in {text:?}");
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair)?;
            u8::from_str_radix(s, 16).with_context(|| format!("bad hex {s:?}"))
        })
        .collect()
}

/// The session a raw peer pretends to be (the TSV's assumed session by default: 4-octet AS,
/// AS 65001, IPv4 and IPv6 unicast).
#[derive(Debug, Clone)]
pub struct RawSession {
    /// Our AS.
    pub asn: u32,
    /// Our BGP identifier.
    pub bgp_id: Ipv4Addr,
    /// Hold time we offer.
    pub hold_time: u16,
    /// Families we offer (multiprotocol capability).
    pub families: Vec<Family>,
}

impl RawSession {
    /// AS `asn`, identifier `bgp_id`, hold 90 s, IPv4 + IPv6 unicast, 4-octet AS.
    pub fn new(asn: u32, bgp_id: Ipv4Addr) -> RawSession {
        RawSession {
            asn,
            bgp_id,
            hold_time: 90,
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        }
    }

    /// Our OPEN message, encoded.
    pub fn open_bytes(&self) -> Result<Vec<u8>> {
        let mut capabilities: Vec<Capability> = self
            .families
            .iter()
            .map(|f| Capability::Multiprotocol(*f))
            .collect();
        capabilities.push(Capability::RouteRefresh);
        capabilities.push(Capability::FourOctetAs(self.asn));
        let open = Open::new(self.asn, self.hold_time, self.bgp_id, capabilities);
        Ok(Message::Open(open)
            .to_bytes(&Context::default())
            .map_err(|e| anyhow!("encode OPEN: {e}"))?
            .to_vec())
    }
}

/// A raw BGP connection.
#[derive(Debug)]
pub struct RawPeer {
    stream: TcpStream,
    buffer: Vec<u8>,
    session: RawSession,
    /// The OPEN the other side sent (raw), once received.
    pub remote_open: Option<Vec<u8>>,
}

impl RawPeer {
    /// Connects from `netns` to `remote` (no message sent yet).
    pub fn connect(netns: &Netns, remote: SocketAddr, session: RawSession) -> Result<RawPeer> {
        let stream = connect_in(netns, remote, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        Ok(RawPeer {
            stream,
            buffer: Vec::new(),
            session,
            remote_open: None,
        })
    }

    /// Connects, exchanges OPENs and KEEPALIVEs, and returns the Established connection. Fails
    /// naming what the other side did instead (a NOTIFICATION is shown as code/subcode/data).
    pub fn establish(
        netns: &Netns,
        remote: SocketAddr,
        session: RawSession,
        timeout: Duration,
    ) -> Result<RawPeer> {
        let mut peer = RawPeer::connect(netns, remote, session)?;
        let open = peer.session.open_bytes()?;
        peer.send_raw(&open)?;
        let deadline = Instant::now() + timeout;
        let mut got_open = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("no OPEN + KEEPALIVE from {remote} within {timeout:?}");
            }
            match peer.read_message(left)? {
                Incoming::Message(raw) => match message_type(&raw) {
                    Some(TYPE_OPEN) => {
                        Message::decode(&raw, &Context::default())
                            .map_err(|e| anyhow!("OPEN from {remote} does not decode: {e:?}"))?;
                        peer.remote_open = Some(raw);
                        peer.send_raw(&KEEPALIVE)?;
                        got_open = true;
                    }
                    Some(TYPE_KEEPALIVE) if got_open => return Ok(peer),
                    Some(TYPE_NOTIFICATION) => {
                        let (code, subcode, data) = notification_parts(&raw).unwrap_or_default();
                        bail!(
                            "{remote} sent NOTIFICATION {code}/{subcode} data {}",
                            hex(data)
                        );
                    }
                    other => bail!("{remote} sent message type {other:?} before Established"),
                },
                Incoming::Closed { reset, .. } => {
                    bail!("{remote} closed the connection during OPEN (reset: {reset})")
                }
                Incoming::TimedOut => {}
            }
        }
    }

    /// The session parameters this peer announced.
    pub fn session(&self) -> &RawSession {
        &self.session
    }

    /// Writes `bytes` as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).context("write to BGP peer")?;
        self.stream.flush().context("flush")
    }

    /// Sends a KEEPALIVE.
    pub fn keepalive(&mut self) -> Result<()> {
        self.send_raw(&KEEPALIVE)
    }

    /// Announces IPv4 `prefixes` with ORIGIN IGP, AS_PATH `[our AS]` and NEXT_HOP `next_hop`
    /// (encoded by `bgp-proto`'s [`UpdateBuilder`]; as many UPDATEs as needed).
    pub fn announce_ipv4(&mut self, prefixes: &[ipnet::IpNet], next_hop: Ipv4Addr) -> Result<()> {
        for raw in announce_ipv4_bytes(self.session.asn, prefixes, next_hop)? {
            self.send_raw(&raw)?;
        }
        Ok(())
    }

    /// Withdraws IPv4 `prefixes`.
    pub fn withdraw_ipv4(&mut self, prefixes: &[ipnet::IpNet]) -> Result<()> {
        let nlri: Vec<Nlri> = prefixes.iter().map(|p| Nlri::new(*p)).collect();
        let updates = UpdateBuilder::new(Context::default(), Family::IPV4_UNICAST)
            .withdraw(&nlri)
            .build()
            .map_err(|e| anyhow!("build withdraw: {e}"))?;
        for update in updates {
            let raw = Message::Update(update)
                .to_bytes(&Context::default())
                .map_err(|e| anyhow!("encode UPDATE: {e}"))?;
            self.send_raw(&raw)?;
        }
        Ok(())
    }

    /// Reads one complete message, or reports a close or a timeout.
    pub fn read_message(&mut self, timeout: Duration) -> Result<Incoming> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.buffer.len() >= 19 {
                let length = usize::from(u16::from_be_bytes([self.buffer[16], self.buffer[17]]));
                // A length below the header size cannot be framed: hand back what we have.
                let length = length.max(19);
                if self.buffer.len() >= length {
                    let rest = self.buffer.split_off(length);
                    let message = std::mem::replace(&mut self.buffer, rest);
                    return Ok(Incoming::Message(message));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Incoming::TimedOut);
            }
            self.stream.set_read_timeout(Some(left))?;
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Ok(Incoming::Closed {
                        partial: std::mem::take(&mut self.buffer),
                        reset: false,
                    });
                }
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
                {
                    return Ok(Incoming::Closed {
                        partial: std::mem::take(&mut self.buffer),
                        reset: true,
                    });
                }
                Err(e) => return Err(e).context("read from BGP peer"),
            }
        }
    }

    /// Reads until a NOTIFICATION arrives (returned raw) or the connection closes (`None`),
    /// skipping KEEPALIVEs and UPDATEs. Fails on timeout.
    pub fn wait_notification(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("neither NOTIFICATION nor close within {timeout:?}");
            }
            match self.read_message(left)? {
                Incoming::Message(raw) if message_type(&raw) == Some(TYPE_NOTIFICATION) => {
                    return Ok(Some(raw));
                }
                Incoming::Message(_) | Incoming::TimedOut => {}
                Incoming::Closed { .. } => return Ok(None),
            }
        }
    }

    /// Waits until the connection is closed (EOF or reset), skipping any messages, and returns
    /// the NOTIFICATIONs seen meanwhile. Fails on timeout.
    pub fn wait_closed(&mut self, timeout: Duration) -> Result<Vec<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        let mut notifications = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("connection still open after {timeout:?}");
            }
            match self.read_message(left)? {
                Incoming::Message(raw) if message_type(&raw) == Some(TYPE_NOTIFICATION) => {
                    notifications.push(raw)
                }
                Incoming::Message(_) | Incoming::TimedOut => {}
                Incoming::Closed { .. } => return Ok(notifications),
            }
        }
    }

    /// Answers the other side's KEEPALIVEs for `duration` and fails if it sends a NOTIFICATION
    /// or closes meanwhile: proves the session is still up. Returns the UPDATEs received.
    pub fn stay_up_for(&mut self, duration: Duration) -> Result<Vec<Vec<u8>>> {
        let deadline = Instant::now() + duration;
        let mut updates = Vec::new();
        self.keepalive()?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(updates);
            }
            match self.read_message(left)? {
                Incoming::Message(raw) => match message_type(&raw) {
                    Some(TYPE_NOTIFICATION) => {
                        let (code, subcode, data) = notification_parts(&raw).unwrap_or_default();
                        bail!(
                            "session reset: NOTIFICATION {code}/{subcode} data {}",
                            hex(data)
                        )
                    }
                    Some(TYPE_UPDATE) => updates.push(raw),
                    _ => {}
                },
                Incoming::Closed { reset, .. } => {
                    bail!("connection closed without NOTIFICATION (reset: {reset})")
                }
                Incoming::TimedOut => return Ok(updates),
            }
        }
    }
}

/// UPDATEs announcing IPv4 `prefixes` from AS `asn` via `next_hop`, encoded by `bgp-proto`.
pub fn announce_ipv4_bytes(
    asn: u32,
    prefixes: &[ipnet::IpNet],
    next_hop: Ipv4Addr,
) -> Result<Vec<Vec<u8>>> {
    let attributes = [
        PathAttribute::new(AttributeValue::Origin(Origin::Igp)),
        PathAttribute::new(AttributeValue::AsPath(AsPath::sequence([asn]))),
    ];
    let nlri: Vec<Nlri> = prefixes.iter().map(|p| Nlri::new(*p)).collect();
    let updates = UpdateBuilder::new(Context::default(), Family::IPV4_UNICAST)
        .announce(&attributes, NextHop::Ipv4(next_hop), &nlri)
        .build()
        .map_err(|e| anyhow!("build UPDATE: {e}"))?;
    updates
        .into_iter()
        .map(|u| {
            Message::Update(u)
                .to_bytes(&Context::default())
                .map(|b| b.to_vec())
                .map_err(|e| anyhow!("encode UPDATE: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let bytes = unhex("ff00 1a").unwrap();
        assert_eq!(bytes, vec![0xff, 0x00, 0x1a]);
        assert_eq!(hex(&bytes), "ff001a");
        assert!(unhex("abc").is_err());
    }

    #[test]
    fn open_carries_four_octet_as_and_both_families() {
        let raw = RawSession::new(65001, Ipv4Addr::new(10, 0, 0, 2))
            .open_bytes()
            .unwrap();
        let Message::Open(open) = Message::decode(&raw, &Context::default()).unwrap() else {
            panic!("not an OPEN");
        };
        assert_eq!(open.four_octet_as(), Some(65001));
        let families: Vec<Family> = open.multiprotocol_families().collect();
        assert_eq!(families, vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
    }

    #[test]
    fn announcement_decodes_with_the_prefix_and_next_hop() {
        let prefix: ipnet::IpNet = "10.99.0.0/24".parse().unwrap();
        let raws = announce_ipv4_bytes(65001, &[prefix], Ipv4Addr::new(10, 0, 0, 2)).unwrap();
        assert_eq!(raws.len(), 1);
        let Message::Update(update) = Message::decode(&raws[0], &Context::default()).unwrap()
        else {
            panic!("not an UPDATE");
        };
        let announced: Vec<_> = update.announced().map(|(_, n)| n.prefix).collect();
        assert_eq!(announced, vec![prefix]);
        assert!(update.action().is_none());
    }

    #[test]
    fn notification_parts_split_code_subcode_data() {
        let raw = unhex("ffffffffffffffffffffffffffffffff0017030102 0012").unwrap();
        assert_eq!(notification_parts(&raw), Some((1, 2, &[0x00, 0x12][..])));
        assert_eq!(notification_parts(&KEEPALIVE), None);
    }
}
