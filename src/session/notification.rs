//! The NOTIFICATIONs the state machine builds itself (the codec's constructors cover the
//! fixed ones: Hold Timer Expired, Cease subcodes): RFC 6608 FSM errors naming the state, and
//! the Cease for an administrative stop, with RFC 9003 shutdown communication and RFC 8538 Hard
//! Reset where they apply.

use bgp_proto::iana::{CeaseSubcode, ErrorCode};
use bgp_proto::message::Notification;

use super::event::{State, StopReason};

/// RFC 6608 FSM error subcodes.
const FSM_UNEXPECTED_IN_OPENSENT: u8 = 1;
const FSM_UNEXPECTED_IN_OPENCONFIRM: u8 = 2;
const FSM_UNEXPECTED_IN_ESTABLISHED: u8 = 3;

/// RFC 6608 §4: Finite State Machine Error with the subcode naming the state the message was
/// unexpected in (a second connection is always in OpenSent).
pub(super) fn fsm_error(state: State) -> Notification {
    let subcode = match state {
        State::OpenSent => FSM_UNEXPECTED_IN_OPENSENT,
        State::OpenConfirm => FSM_UNEXPECTED_IN_OPENCONFIRM,
        _ => FSM_UNEXPECTED_IN_ESTABLISHED,
    };
    Notification::new(ErrorCode::FiniteStateMachine, subcode, Vec::new())
}

/// The Cease NOTIFICATION for a stop, wrapped in a Hard Reset (RFC 8538 §3) where the N bit is
/// negotiated and the subcode calls for one (RFC 8538 §5: Maximum Number of Prefixes Reached,
/// Administrative Shutdown and Peer De-configured).
pub(super) fn cease_for(reason: &StopReason, hard_reset_possible: bool) -> Option<Notification> {
    let (n, hard) = match reason {
        StopReason::Shutdown { text } | StopReason::PlannedRestart { text } => {
            // RFC 9003 §2: the shutdown communication.
            (
                Notification::cease_with_communication(CeaseSubcode::AdministrativeShutdown, text),
                true,
            )
        }
        StopReason::Deconfigured => (Notification::cease(CeaseSubcode::PeerDeconfigured), true),
        StopReason::ConfigChange => (
            Notification::cease(CeaseSubcode::OtherConfigurationChange),
            false,
        ),
        StopReason::Reset { text } => (
            Notification::cease_with_communication(CeaseSubcode::AdministrativeReset, text),
            false,
        ),
        StopReason::MaxPrefix { family, limit, .. } => {
            // RFC 4486 §4: AFI (2), SAFI (1), upper bound (4).
            let mut data = Vec::with_capacity(7);
            data.extend_from_slice(&u16::from(family.afi).to_be_bytes());
            data.push(u8::from(family.safi));
            data.extend_from_slice(&limit.to_be_bytes());
            (
                Notification::new(
                    ErrorCode::Cease,
                    CeaseSubcode::MaximumPrefixesReached.into(),
                    data,
                ),
                true,
            )
        }
    };
    if hard && hard_reset_possible {
        // RFC 8538 §3: Hard Reset data = the inner code, subcode and data.
        let mut data = Vec::with_capacity(n.data.len() + 2);
        data.push(u8::from(n.code));
        data.push(n.subcode);
        data.extend_from_slice(&n.data);
        return Some(Notification::new(
            ErrorCode::Cease,
            CeaseSubcode::HardReset.into(),
            data,
        ));
    }
    Some(n)
}
