//! `Session::handle` (the code the daemon's peer tasks run) fed arbitrary inputs: byte chunks on
//! up to three connections (raw, or framed with a valid header, or the peer's valid OPEN and
//! KEEPALIVE so that arbitrary UPDATEs reach Established), timer expiries, stops, connects,
//! closes and write stalls, with virtual time moving forward. Nothing may panic, and what the
//! core asks the driver to send must be whole BGP messages that decode.
#![no_main]

#[path = "common.rs"]
mod common;

use std::time::Duration;

use arbitrary::Arbitrary;
use bgp_proto::{Context, Message};
use libfuzzer_sys::fuzz_target;
use tern::session::{
    Action, ConnId, Direction, Input as SessionInput, Instant, Session, State, StopReason, Timer,
};

#[derive(Debug, Arbitrary)]
enum Op {
    Start,
    Stop(u8),
    Connected { conn: u8, inbound: bool },
    ConnectFailed,
    Closed { conn: u8 },
    /// Raw bytes in stream order (any split).
    Raw { conn: u8, bytes: Vec<u8> },
    /// One message of type `kind` with a correct marker and length around `body`.
    Framed { conn: u8, kind: u8, body: Vec<u8> },
    /// The peer's OPEN (valid for the configuration) and a KEEPALIVE.
    PeerOpen { conn: u8 },
    Timer(u8),
    WriteStalled { conn: u8 },
    WriteResumed { conn: u8 },
    UpdateSent,
    Advance(u16),
}

#[derive(Debug, Arbitrary)]
struct Input {
    peer: common::FuzzPeer,
    /// Bring connection 1 to Established before the operations.
    establish: bool,
    ops: Vec<Op>,
}

fn conn(n: u8) -> ConnId {
    ConnId(u64::from(n % 3))
}

/// Every `Send` is one or more whole messages that decode (our own encoding).
fn check_sent(actions: &[Action]) {
    let ctx = Context {
        extended_message: true,
        ..Context::default()
    };
    for action in actions {
        if let Action::Send { bytes, .. } = action {
            let mut rest: &[u8] = bytes;
            while !rest.is_empty() {
                assert!(rest.len() >= 19, "partial header sent: {rest:02x?}");
                let len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
                assert!(len >= 19 && len <= rest.len(), "bad length {len} sent");
                let (one, tail) = rest.split_at(len);
                if let Err(e) = Message::decode(one, &ctx) {
                    panic!("sent a message that does not decode: {e}: {one:02x?}");
                }
                rest = tail;
            }
        }
    }
}

fn run(session: &mut Session, input: SessionInput<'_>, now: Instant) -> Vec<Action> {
    let actions = session.handle(input, now);
    check_sent(&actions);
    // The negotiated facts exist exactly while Established.
    assert_eq!(
        session.state() == State::Established,
        session.established().is_some(),
        "state {:?} vs established facts",
        session.state()
    );
    actions
}

fuzz_target!(|input: Input| {
    let config = input.peer.config();
    let peer_open = input.peer.peer_open_bytes(&config);
    let mut session = Session::new(config);
    let mut now = Instant::ZERO;
    if input.establish {
        for bytes in common::establish(&peer_open) {
            match bytes {
                None => drop(run(&mut session, SessionInput::Start, now)),
                Some(None) => drop(run(
                    &mut session,
                    SessionInput::Connected {
                        conn: ConnId(1),
                        direction: Direction::Inbound,
                    },
                    now,
                )),
                Some(Some(bytes)) => drop(run(
                    &mut session,
                    SessionInput::Received {
                        conn: ConnId(1),
                        bytes: &bytes,
                    },
                    now,
                )),
            }
        }
    }
    for op in input.ops.iter().take(256) {
        now = now + Duration::from_millis(1);
        match op {
            Op::Start => drop(run(&mut session, SessionInput::Start, now)),
            Op::Stop(which) => {
                let reason = match which % 6 {
                    0 => StopReason::Shutdown {
                        text: "fuzz".into(),
                    },
                    1 => StopReason::Deconfigured,
                    2 => StopReason::PlannedRestart {
                        text: String::new(),
                    },
                    3 => StopReason::ConfigChange,
                    4 => StopReason::Reset {
                        text: "\u{e9}".repeat(200),
                    },
                    _ => common::max_prefix_stop(*which),
                };
                run(&mut session, SessionInput::Stop(&reason), now);
            }
            Op::Connected { conn: c, inbound } => {
                let direction = if *inbound {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                };
                run(
                    &mut session,
                    SessionInput::Connected {
                        conn: conn(*c),
                        direction,
                    },
                    now,
                );
            }
            Op::ConnectFailed => drop(run(&mut session, SessionInput::ConnectFailed, now)),
            Op::Closed { conn: c } => {
                run(&mut session, SessionInput::Closed { conn: conn(*c) }, now);
            }
            Op::Raw { conn: c, bytes } => {
                run(
                    &mut session,
                    SessionInput::Received {
                        conn: conn(*c),
                        bytes,
                    },
                    now,
                );
            }
            Op::Framed {
                conn: c,
                kind,
                body,
            } => {
                let framed = common::frame(*kind, body);
                run(
                    &mut session,
                    SessionInput::Received {
                        conn: conn(*c),
                        bytes: &framed,
                    },
                    now,
                );
            }
            Op::PeerOpen { conn: c } => {
                let mut bytes = peer_open.clone();
                bytes.extend_from_slice(&common::KEEPALIVE);
                run(
                    &mut session,
                    SessionInput::Received {
                        conn: conn(*c),
                        bytes: &bytes,
                    },
                    now,
                );
            }
            Op::Timer(t) => {
                let timer = match t % 6 {
                    0 => Timer::ConnectRetry,
                    1 => Timer::Hold,
                    2 => Timer::Keepalive,
                    3 => Timer::IdleHold,
                    4 => Timer::SendHold,
                    _ => Timer::OpenWait,
                };
                run(&mut session, SessionInput::TimerExpired(timer), now);
            }
            Op::WriteStalled { conn: c } => {
                run(&mut session, SessionInput::WriteStalled { conn: conn(*c) }, now);
            }
            Op::WriteResumed { conn: c } => {
                run(&mut session, SessionInput::WriteResumed { conn: conn(*c) }, now);
            }
            Op::UpdateSent => drop(run(&mut session, SessionInput::UpdateSent, now)),
            Op::Advance(ms) => now = now + Duration::from_millis(u64::from(*ms) * 50),
        }
    }
});
