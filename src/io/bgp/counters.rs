//! Per-peer message counters by type (RFC 4271 §4.1 header: 16-byte marker, 2-byte length,
//! 1-byte type), kept as relaxed atomics: the peer task counts, status and metrics read.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::status::MessageCounts;

/// Length of the BGP message header (RFC 4271 §4.1).
const HEADER: usize = 19;

/// Message counters of one peer, received and sent, by type.
#[derive(Debug, Default)]
pub struct MessageCounters {
    received: [AtomicU64; 5],
    sent: [AtomicU64; 5],
}

/// Index of a message type in the counters: OPEN, UPDATE, NOTIFICATION, KEEPALIVE,
/// ROUTE-REFRESH (types 1 to 5); other types are not counted.
fn index(kind: u8) -> Option<usize> {
    (1..=5).contains(&kind).then(|| usize::from(kind - 1))
}

fn snapshot(counters: &[AtomicU64; 5]) -> MessageCounts {
    let get = |i: usize| counters[i].load(Ordering::Relaxed);
    MessageCounts {
        open: get(0),
        update: get(1),
        notification: get(2),
        keepalive: get(3),
        route_refresh: get(4),
    }
}

impl MessageCounters {
    /// Counts the messages in `bytes`, a sequence of whole encoded messages written to the
    /// socket.
    pub fn count_sent(&self, bytes: &[u8]) {
        let mut rest = bytes;
        while rest.len() >= HEADER {
            let length = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
            if let Some(i) = index(rest[18]) {
                self.sent[i].fetch_add(1, Ordering::Relaxed);
            }
            if length < HEADER || length > rest.len() {
                break;
            }
            rest = &rest[length..];
        }
    }

    /// Messages received so far.
    pub fn received(&self) -> MessageCounts {
        snapshot(&self.received)
    }

    /// Messages sent so far.
    pub fn sent(&self) -> MessageCounts {
        snapshot(&self.sent)
    }
}

/// What one Established session has written of the UPDATE output it was given (the supervisor
/// counts what it queued; the difference is the session's output backlog). A new object per
/// session, so a write still flushing on an ended connection never counts for the next one.
#[derive(Debug, Default)]
pub struct OutputCounters {
    prefixes: AtomicU64,
    bytes: AtomicU64,
    /// When the last counted write completed, milliseconds since the Unix epoch (0: none yet).
    last_write_ms: AtomicU64,
}

impl OutputCounters {
    /// Counts one written batch of UPDATEs carrying `prefixes` NLRI (announced + withdrawn).
    pub fn written(&self, prefixes: u64, bytes: u64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.last_write_ms.store(now, Ordering::Relaxed);
        self.prefixes.fetch_add(prefixes, Ordering::Release);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// When the last counted write completed.
    pub fn last_write(&self) -> Option<std::time::SystemTime> {
        match self.last_write_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)),
        }
    }

    /// Prefixes (announced + withdrawn NLRI) written to the socket so far.
    pub fn prefixes_written(&self) -> u64 {
        self.prefixes.load(Ordering::Acquire)
    }

    /// UPDATE bytes written to the socket so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Finds message boundaries in one connection's received byte stream (delivered in arbitrary
/// chunks) and counts each message's type once its header is complete.
#[derive(Debug, Default)]
pub struct ReceiveFramer {
    header: [u8; HEADER],
    have: usize,
    /// Body bytes of the current message still to skip.
    skip: usize,
    /// A bad length was seen: the session closes the connection; stop counting.
    broken: bool,
}

impl ReceiveFramer {
    /// Feeds the next chunk; counts complete headers into `counters`.
    pub fn feed(&mut self, mut bytes: &[u8], counters: &MessageCounters) {
        while !bytes.is_empty() && !self.broken {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (HEADER - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == HEADER {
                self.have = 0;
                let length = usize::from(u16::from_be_bytes([self.header[16], self.header[17]]));
                if length < HEADER {
                    self.broken = true;
                    return;
                }
                if let Some(i) = index(self.header[18]) {
                    counters.received[i].fetch_add(1, Ordering::Relaxed);
                }
                self.skip = length - HEADER;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: usize) -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&u16::try_from(HEADER + body).unwrap().to_be_bytes());
        m.push(kind);
        m.extend(std::iter::repeat_n(0u8, body));
        m
    }

    #[test]
    fn counts_sent_messages_by_type() {
        let counters = MessageCounters::default();
        let mut bytes = message(2, 30);
        bytes.extend(message(2, 4));
        bytes.extend(message(4, 0));
        counters.count_sent(&bytes);
        counters.count_sent(&message(1, 10));
        let sent = counters.sent();
        assert_eq!((sent.open, sent.update, sent.keepalive), (1, 2, 1));
        assert_eq!(counters.received().total(), 0);
    }

    #[test]
    fn counts_received_messages_split_anywhere() {
        let mut stream = message(1, 20);
        stream.extend(message(4, 0));
        stream.extend(message(2, 100));
        stream.extend(message(5, 4));
        stream.extend(message(3, 2));
        for chunk in [1, 2, 7, 19, 64, stream.len()] {
            let counters = MessageCounters::default();
            let mut framer = ReceiveFramer::default();
            for piece in stream.chunks(chunk) {
                framer.feed(piece, &counters);
            }
            let r = counters.received();
            assert_eq!(
                (
                    r.open,
                    r.update,
                    r.notification,
                    r.keepalive,
                    r.route_refresh
                ),
                (1, 1, 1, 1, 1),
                "chunks of {chunk}"
            );
        }
    }
}
