//! The per-prefix route store: Adj-RIB-In (pre- and post-policy) and Loc-RIB in one table.
//!
//! Every path for a prefix, from every peer and from local origination, lives in one
//! [`PrefixEntry`]. A path keeps the attributes it was received with (the pre-policy Adj-RIB-In,
//! so a policy change re-runs import without a session reset) and the attributes import policy
//! accepted (post-policy Adj-RIB-In; `None` = rejected). The Loc-RIB is the selected prefix of the
//! path list: `paths[0]` is the best path and `paths[..multipath]` the ECMP set.
//!
//! A peer's Adj-RIB-In is the set of paths whose `peer` is that peer ([`crate::rib::Rib::adj_rib_in`]).
//! Keeping one table instead of one per peer halves the memory of a full table and makes the
//! decision process a walk over one small vector.

use std::sync::Arc;

use smallvec::SmallVec;

use super::attrs::RouteAttrs;
use super::peer::PeerId;

/// The pseudo-peer of locally originated paths.
pub const LOCAL_PEER: PeerId = PeerId(u32::MAX);

/// When a path arrived or last changed: seconds on a clock the caller keeps
/// ([`crate::rib::Rib::set_clock`]; the daemon counts from its start), held in 24 bits so a
/// path stays 32 bytes (about 194 days; later times saturate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Arrival([u8; 3]);

impl Arrival {
    /// The largest time held, in seconds.
    pub const MAX_SECS: u32 = (1 << 24) - 1;

    /// At `secs` seconds (saturating at [`Arrival::MAX_SECS`]).
    pub fn from_secs(secs: u32) -> Self {
        let [a, b, c, _] = secs.min(Self::MAX_SECS).to_le_bytes();
        Arrival([a, b, c])
    }

    /// In seconds.
    pub fn secs(self) -> u32 {
        let [a, b, c] = self.0;
        u32::from_le_bytes([a, b, c, 0])
    }
}

/// One path for a prefix.
#[derive(Debug, Clone)]
pub struct Path {
    /// Who sent it ([`LOCAL_PEER`] for local origination).
    pub peer: PeerId,
    /// The ADD-PATH path id it was received with (0 without ADD-PATH, RFC 7911 §3).
    pub rx_path_id: u32,
    /// The path id we send it with to ADD-PATH peers: the smallest id free in this prefix when
    /// the path arrived, kept while the path lives (so ECMP sets survive a reflector).
    pub tx_path_id: u32,
    /// Kept for a restarting peer until its End-of-RIB or restart time (RFC 4724 §4.2).
    pub stale: bool,
    /// When it arrived, or last arrived with other attributes.
    pub since: Arrival,
    /// Attributes as received (pre-policy Adj-RIB-In).
    pub received: Arc<RouteAttrs>,
    /// Attributes after import policy; `None` = rejected by import.
    pub accepted: Option<Arc<RouteAttrs>>,
}

/// All paths of one prefix, selected ones first.
#[derive(Debug, Clone, Default)]
pub struct PrefixEntry {
    /// Paths; `paths[..multipath]` are the selected set, best first.
    pub paths: SmallVec<[Path; 1]>,
    /// Length of the selected set (0 = no eligible path).
    pub multipath: u8,
    /// Listed in the RIB's pending FIB changes.
    pub fib_dirty: bool,
}

impl PrefixEntry {
    /// The best path, if any is eligible.
    pub fn best(&self) -> Option<&Path> {
        (self.multipath > 0).then(|| &self.paths[0])
    }

    /// The selected (ECMP) set, best first.
    pub fn selected(&self) -> &[Path] {
        &self.paths[..usize::from(self.multipath)]
    }

    /// Index of the path from `peer` with `rx_path_id`.
    pub fn find(&self, peer: PeerId, rx_path_id: u32) -> Option<usize> {
        self.paths
            .iter()
            .position(|p| p.peer == peer && p.rx_path_id == rx_path_id)
    }

    /// The smallest transmit path id (from 1) not used by another path of this prefix.
    pub fn free_tx_path_id(&self) -> u32 {
        let mut id = 1;
        while self.paths.iter().any(|p| p.tx_path_id == id) {
            id += 1;
        }
        id
    }

    /// What identifies the current selection: (peer, path id, accepted attributes) of each
    /// selected path, in order. Two equal signatures mean nothing downstream changed.
    pub fn signature(&self) -> Signature {
        self.selected()
            .iter()
            .map(|p| {
                (
                    p.peer,
                    p.rx_path_id,
                    p.accepted.as_ref().map_or(0, |a| Arc::as_ptr(a) as usize),
                )
            })
            .collect()
    }
}

/// See [`PrefixEntry::signature`].
pub type Signature = SmallVec<[(PeerId, u32, usize); 2]>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrival_keeps_24_bits_of_seconds() {
        assert_eq!(Arrival::from_secs(0).secs(), 0);
        assert_eq!(Arrival::from_secs(86_399).secs(), 86_399);
        assert_eq!(Arrival::from_secs(u32::MAX).secs(), Arrival::MAX_SECS);
    }

    #[test]
    fn entry_sizes_stay_small() {
        // The whole point of one table: a one-path prefix costs one inline path.
        assert!(
            std::mem::size_of::<Path>() <= 32,
            "{}",
            std::mem::size_of::<Path>()
        );
        assert!(
            std::mem::size_of::<PrefixEntry>() <= 48,
            "{}",
            std::mem::size_of::<PrefixEntry>()
        );
    }
}
