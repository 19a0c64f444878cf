//! Connection collision detection (RFC 4271 §6.8, RFC 6286 §2.3): which of two connections to
//! the same peer survives. Pure: a decision over the two connections' facts.

use std::net::Ipv4Addr;

/// Who opened a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We initiated it (our `connect`).
    Outbound,
    /// The peer initiated it (accepted by our listener).
    Inbound,
}

/// The state of the connection that already existed when a second one produced an OPEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExistingState {
    /// OPEN sent, none received yet.
    OpenSent,
    /// OPEN exchanged, waiting for the first KEEPALIVE.
    OpenConfirm,
    /// The session is up on it.
    Established,
}

/// Everything the decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collision {
    /// Direction of the connection that existed first.
    pub existing: Direction,
    /// Its state.
    pub existing_state: ExistingState,
    /// Direction of the connection whose OPEN triggered the check.
    pub new: Direction,
    /// Our BGP identifier.
    pub local_id: Ipv4Addr,
    /// The peer's BGP identifier (from the OPEN just received).
    pub remote_id: Ipv4Addr,
    /// Our AS (tie-break for equal identifiers, RFC 6286 §2.3).
    pub local_as: u32,
    /// The peer's AS.
    pub remote_as: u32,
}

/// Which connection survives; the other one is closed with Cease/7 (Connection Collision
/// Resolution, RFC 4486).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Survivor {
    /// Keep the connection that existed first.
    Existing,
    /// Keep the connection whose OPEN just arrived.
    New,
}

impl Collision {
    /// Decides which connection survives. Exactly one does, always.
    pub fn resolve(&self) -> Survivor {
        // RFC 4271 §6.8: "a connection collision with an existing BGP connection that is in the
        // Established state causes closing of the newly created connection."
        if self.existing_state == ExistingState::Established {
            return Survivor::Existing;
        }
        if self.existing == self.new {
            // Two connections opened by the same side: that side gave up on the first one (it
            // cannot run two sessions to us), so the newer one is the live one.
            return Survivor::New;
        }
        // RFC 4271 §6.8: the connection opened by the speaker with the higher BGP Identifier is
        // kept. RFC 6286 §2.3: with equal identifiers, the one opened by the speaker with the
        // larger AS number is kept.
        let keep = match self.local_id.cmp(&self.remote_id) {
            std::cmp::Ordering::Greater => Direction::Outbound,
            std::cmp::Ordering::Less => Direction::Inbound,
            std::cmp::Ordering::Equal => {
                if self.local_as >= self.remote_as {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                }
            }
        };
        if keep == self.existing {
            Survivor::Existing
        } else {
            Survivor::New
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;
    use ExistingState::*;

    const LOW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const HIGH: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn case(
        existing: Direction,
        state: ExistingState,
        new: Direction,
        local: Ipv4Addr,
        remote: Ipv4Addr,
    ) -> Survivor {
        Collision {
            existing,
            existing_state: state,
            new,
            local_id: local,
            remote_id: remote,
            local_as: 65000,
            remote_as: 65000,
        }
        .resolve()
    }

    /// Every combination: (existing dir, existing state, new dir, local id, remote id) → survivor.
    #[test]
    fn every_case() {
        #[rustfmt::skip]
        let table = [
            // Established always wins.
            (Outbound, Established, Inbound, LOW, HIGH, Survivor::Existing),
            (Outbound, Established, Inbound, HIGH, LOW, Survivor::Existing),
            (Inbound, Established, Outbound, LOW, HIGH, Survivor::Existing),
            (Inbound, Established, Outbound, HIGH, LOW, Survivor::Existing),
            (Inbound, Established, Inbound, HIGH, LOW, Survivor::Existing),
            // Local id higher: keep the connection we opened.
            (Outbound, OpenSent, Inbound, HIGH, LOW, Survivor::Existing),
            (Outbound, OpenConfirm, Inbound, HIGH, LOW, Survivor::Existing),
            (Inbound, OpenSent, Outbound, HIGH, LOW, Survivor::New),
            (Inbound, OpenConfirm, Outbound, HIGH, LOW, Survivor::New),
            // Local id lower: keep the connection the peer opened.
            (Outbound, OpenSent, Inbound, LOW, HIGH, Survivor::New),
            (Outbound, OpenConfirm, Inbound, LOW, HIGH, Survivor::New),
            (Inbound, OpenSent, Outbound, LOW, HIGH, Survivor::Existing),
            (Inbound, OpenConfirm, Outbound, LOW, HIGH, Survivor::Existing),
            // Same direction twice: the newer one.
            (Inbound, OpenSent, Inbound, LOW, HIGH, Survivor::New),
            (Inbound, OpenConfirm, Inbound, HIGH, LOW, Survivor::New),
            (Outbound, OpenSent, Outbound, HIGH, LOW, Survivor::New),
        ];
        for (existing, state, new, local, remote, want) in table {
            assert_eq!(
                case(existing, state, new, local, remote),
                want,
                "existing {existing:?} in {state:?}, new {new:?}, local {local}, remote {remote}"
            );
        }
    }

    /// Both ends run the same rule on mirrored facts: they agree on one TCP connection.
    #[test]
    fn both_ends_keep_the_same_connection() {
        for (a, b) in [(LOW, HIGH), (HIGH, LOW)] {
            for state in [OpenSent, OpenConfirm] {
                // At A: existing = A's outbound (= B's inbound), new = A's inbound.
                let at_a = case(Outbound, state, Inbound, a, b);
                // At B: existing = B's outbound (= A's inbound), new = B's inbound (= A's outbound).
                let at_b = case(Outbound, state, Inbound, b, a);
                let a_keeps_a_outbound = at_a == Survivor::Existing;
                let b_keeps_a_outbound = at_b == Survivor::New;
                assert_eq!(a_keeps_a_outbound, b_keeps_a_outbound);
            }
        }
    }

    #[test]
    fn equal_identifiers_break_ties_on_as() {
        let c = |local_as, remote_as| {
            Collision {
                existing: Outbound,
                existing_state: OpenConfirm,
                new: Inbound,
                local_id: LOW,
                remote_id: LOW,
                local_as,
                remote_as,
            }
            .resolve()
        };
        assert_eq!(c(65002, 65001), Survivor::Existing);
        assert_eq!(c(65001, 65002), Survivor::New);
    }
}
