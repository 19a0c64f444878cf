//! Table-driven tests of the session core with virtual time: every RFC 4271 §8 state × input,
//! OPEN errors, negotiation, collision, graceful restart and timers. No sockets, no sleeps.

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp_proto::Context;
use bgp_proto::Family;
use bgp_proto::capability::{AddPathFamily, Capability, GracefulRestart, GracefulRestartFamily};
use bgp_proto::iana::{AddPathMode as WireAddPath, ErrorCode};
use bgp_proto::message::{Message, Notification, Open, RouteRefresh};

use super::*;

const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PEER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PEER_AS: u32 = 65001;
const LOCAL_AS: u32 = 65000;
const C1: ConnId = ConnId(1);

fn config() -> PeerConfig {
    let mut c = PeerConfig::new("10.0.0.2".parse().unwrap(), PEER_AS, LOCAL_AS, LOCAL_ID);
    c.graceful_restart = Some(GracefulRestartConfig {
        notification: true,
        ..GracefulRestartConfig::default()
    });
    c.jitter = false; // exact timers; `jitter_stays_in_range` covers jitter
    c
}

/// RFC 4271 §10: with jitter, retries and error waits are 75-100 % of the configured interval,
/// and not all the same.
#[test]
fn jitter_stays_in_range() {
    let mut c = config();
    c.jitter = true;
    let mut t = T::new(c.clone());
    t.input(Input::Start);
    let mut retries = Vec::new();
    for _ in 0..50 {
        let a = t.timer(Timer::ConnectRetry);
        let at = armed(&a, Timer::ConnectRetry).unwrap();
        retries.push(at - t.now);
        t.input(Input::ConnectFailed);
    }
    let in_range = |d: &Duration| *d >= Duration::from_millis(3750) && *d <= Duration::from_secs(5);
    assert!(retries.iter().all(in_range), "{retries:?}");
    assert!(retries.iter().any(|d| *d != retries[0]));
    let mut t = in_state(State::Established);
    t.s.update_pacing(c);
    let a = t.input(Input::Closed { conn: C1 });
    let wait = armed(&a, Timer::IdleHold).unwrap() - t.now;
    assert!(in_range(&wait), "{wait:?}");
}

fn peer_caps(asn: u32) -> Vec<Capability> {
    vec![
        Capability::Multiprotocol(Family::IPV4_UNICAST),
        Capability::RouteRefresh,
        Capability::GracefulRestart(GracefulRestart {
            flags: GracefulRestart::NOTIFICATION,
            restart_time: 120,
            families: vec![GracefulRestartFamily {
                family: Family::IPV4_UNICAST,
                flags: GracefulRestartFamily::FORWARDING_STATE,
            }],
        }),
        Capability::FourOctetAs(asn),
        Capability::AddPath(vec![AddPathFamily {
            family: Family::IPV4_UNICAST,
            mode: WireAddPath::Both,
        }]),
    ]
}

fn peer_open() -> Open {
    Open::new(PEER_AS, 90, PEER_ID, peer_caps(PEER_AS))
}

fn encode(m: Message) -> Vec<u8> {
    m.to_bytes(&Context::default()).unwrap().to_vec()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A well-formed UPDATE: 10.1.1.0/24 with path id 1 (ADD-PATH is negotiated with the test
/// peer), ORIGIN IGP, AS_PATH 65001, NEXT_HOP 10.0.0.2.
const UPDATE: &str = "ffffffffffffffffffffffffffffffff003302000000144001010040020602010000fde94003040a00000200000001180a0101";
/// NLRI prefix length 33: NOTIFICATION 3/10 (fixture upd-nlri-prefixlen-33, with a path id).
const UPDATE_BAD: &str = "ffffffffffffffffffffffffffffffff003502000000144001010040020602010000fde94003040a00000200000001210a01010100";
/// Bad marker: NOTIFICATION 1/1 (fixture hdr-bad-marker).
const BAD_MARKER: &str = "feffffffffffffffffffffffffffffff001304";

/// A session under test with its virtual clock.
struct T {
    s: Session,
    now: Instant,
}

impl T {
    fn new(config: PeerConfig) -> Self {
        T {
            s: Session::new(config),
            now: Instant::ZERO,
        }
    }
    fn advance(&mut self, secs: u64) {
        self.now = self.now + Duration::from_secs(secs);
    }
    fn input(&mut self, input: Input<'_>) -> Vec<Action> {
        self.s.handle(input, self.now)
    }
    fn recv(&mut self, conn: ConnId, bytes: &[u8]) -> Vec<Action> {
        self.input(Input::Received { conn, bytes })
    }
    fn recv_msg(&mut self, conn: ConnId, m: Message) -> Vec<Action> {
        self.recv(conn, &encode(m))
    }
    fn timer(&mut self, timer: Timer) -> Vec<Action> {
        self.input(Input::TimerExpired(timer))
    }
}

/// The actions that matter for the peer, as short strings: sends (decoded), closes, connects,
/// and reports to the daemon. Timer and state actions are checked separately.
fn summary(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Connect => Some("connect".to_string()),
            Action::CancelConnect => Some("cancel-connect".to_string()),
            Action::Send { conn, bytes } => {
                let m =
                    Message::decode(bytes, &Context::default()).expect("core sends valid messages");
                Some(match m {
                    Message::Open(_) => format!("open@{}", conn.0),
                    Message::Keepalive => format!("keepalive@{}", conn.0),
                    Message::Notification(n) => {
                        format!("notif {}/{}@{}", u8::from(n.code), n.subcode, conn.0)
                    }
                    other => format!("{:?}@{}", other.message_type(), conn.0),
                })
            }
            Action::Close { conn } => Some(format!("close@{}", conn.0)),
            Action::Established { .. } => Some("established".to_string()),
            Action::Update(_) => Some("update".to_string()),
            Action::EndOfRib(_) => Some("eor".to_string()),
            Action::FamilyDisabled(_) => Some("disabled".to_string()),
            Action::RouteRefresh(_) => Some("refresh".to_string()),
            Action::Down(_) => Some("down".to_string()),
            Action::ArmTimer { .. } | Action::CancelTimer(_) | Action::StateChanged { .. } => None,
        })
        .collect()
}

fn armed(actions: &[Action], timer: Timer) -> Option<Instant> {
    actions.iter().rev().find_map(|a| match a {
        Action::ArmTimer { timer: t, at } if *t == timer => Some(*at),
        _ => None,
    })
}

fn down(actions: &[Action]) -> Option<&Down> {
    actions.iter().find_map(|a| match a {
        Action::Down(d) => Some(d),
        _ => None,
    })
}

fn sent_notification(actions: &[Action]) -> Option<Notification> {
    actions.iter().find_map(|a| match a {
        Action::Send { bytes, .. } => match Message::decode(bytes, &Context::default()) {
            Ok(Message::Notification(n)) => Some(n),
            _ => None,
        },
        _ => None,
    })
}

/// A session brought into `state` by the regular path; conn 1 is the primary connection
/// (outgoing) from OpenSent on.
fn in_state(state: State) -> T {
    let mut t = T::new(config());
    if state == State::Idle {
        return t;
    }
    t.input(Input::Start);
    if state == State::Active {
        return t;
    }
    t.advance(2);
    t.timer(Timer::ConnectRetry);
    if state == State::Connect {
        return t;
    }
    t.input(Input::Connected {
        conn: C1,
        direction: Direction::Outbound,
    });
    if state == State::OpenSent {
        return t;
    }
    t.recv_msg(C1, Message::Open(peer_open()));
    if state == State::OpenConfirm {
        return t;
    }
    t.recv_msg(C1, Message::Keepalive);
    assert_eq!(t.s.state(), State::Established);
    t
}

type Event = fn(&mut T) -> Vec<Action>;

fn events() -> Vec<(&'static str, Event)> {
    vec![
        ("Start", |t| t.input(Input::Start)),
        ("Stop", |t| {
            t.input(Input::Stop(&StopReason::Shutdown {
                text: "maintenance".into(),
            }))
        }),
        ("ConnectRetryExpires", |t| t.timer(Timer::ConnectRetry)),
        ("HoldExpires", |t| {
            t.advance(1000);
            t.timer(Timer::Hold)
        }),
        ("KeepaliveExpires", |t| {
            t.advance(1000);
            t.timer(Timer::Keepalive)
        }),
        ("IdleHoldExpires", |t| t.timer(Timer::IdleHold)),
        ("InboundConnected", |t| {
            t.input(Input::Connected {
                conn: ConnId(9),
                direction: Direction::Inbound,
            })
        }),
        ("OutboundConnected", |t| {
            t.input(Input::Connected {
                conn: ConnId(8),
                direction: Direction::Outbound,
            })
        }),
        ("ConnectFailed", |t| t.input(Input::ConnectFailed)),
        ("Closed", |t| t.input(Input::Closed { conn: C1 })),
        ("Open", |t| t.recv_msg(C1, Message::Open(peer_open()))),
        ("HeaderErr", |t| t.recv(C1, &hex(BAD_MARKER))),
        ("OpenErr", |t| {
            t.recv_msg(
                C1,
                Message::Open(Open::new(65099, 90, PEER_ID, peer_caps(65099))),
            )
        }),
        ("Notification", |t| {
            t.recv_msg(
                C1,
                Message::Notification(Notification::new(ErrorCode::Cease, 2, vec![])),
            )
        }),
        ("NotifVersionErr", |t| {
            t.recv_msg(
                C1,
                Message::Notification(Notification::new(ErrorCode::OpenMessage, 1, vec![0, 4])),
            )
        }),
        ("Keepalive", |t| t.recv_msg(C1, Message::Keepalive)),
        ("Update", |t| t.recv(C1, &hex(UPDATE))),
        ("UpdateErr", |t| t.recv(C1, &hex(UPDATE_BAD))),
        ("RouteRefresh", |t| {
            t.recv_msg(
                C1,
                Message::RouteRefresh(RouteRefresh::new(Family::IPV4_UNICAST)),
            )
        }),
        ("EndOfRib", |t| {
            t.recv(C1, &hex("ffffffffffffffffffffffffffffffff00170200000000"))
        }),
    ]
}

/// Every state × every input (RFC 4271 §8.2.2). Each row: state, input, next state, what is
/// sent/closed/reported.
#[test]
fn state_event_table() {
    use State::*;
    let fail = |n: &str| vec![format!("notif {n}@1"), "close@1".into(), "down".into()];
    let closed = || vec!["close@1".to_string(), "down".into()];
    let none = Vec::<String>::new;
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    #[rustfmt::skip]
    let table: Vec<(State, &str, State, Vec<String>)> = vec![
        // Idle (not started): refuses connections, ignores the rest.
        (Idle, "Start", Active, none()),
        (Idle, "Stop", Idle, none()),
        (Idle, "ConnectRetryExpires", Idle, none()),
        (Idle, "HoldExpires", Idle, none()),
        (Idle, "KeepaliveExpires", Idle, none()),
        (Idle, "IdleHoldExpires", Idle, none()),
        (Idle, "InboundConnected", Idle, s(&["close@9"])),
        (Idle, "OutboundConnected", Idle, s(&["close@8"])),
        (Idle, "ConnectFailed", Idle, none()),
        (Idle, "Closed", Idle, none()),
        (Idle, "Open", Idle, none()),
        (Idle, "HeaderErr", Idle, none()),
        (Idle, "OpenErr", Idle, none()),
        (Idle, "Notification", Idle, none()),
        (Idle, "NotifVersionErr", Idle, none()),
        (Idle, "Keepalive", Idle, none()),
        (Idle, "Update", Idle, none()),
        (Idle, "UpdateErr", Idle, none()),
        (Idle, "RouteRefresh", Idle, none()),
        (Idle, "EndOfRib", Idle, none()),
        // Active: listening, first connect after the connect delay.
        (Active, "Start", Active, none()),
        (Active, "Stop", Idle, none()),
        (Active, "ConnectRetryExpires", Connect, s(&["connect"])),
        (Active, "HoldExpires", Active, none()),
        (Active, "KeepaliveExpires", Active, none()),
        (Active, "IdleHoldExpires", Active, none()),
        (Active, "InboundConnected", OpenSent, s(&["open@9"])),
        (Active, "OutboundConnected", Active, s(&["close@8"])),
        (Active, "ConnectFailed", Active, none()),
        (Active, "Closed", Active, none()),
        (Active, "Open", Active, none()),
        (Active, "HeaderErr", Active, none()),
        (Active, "OpenErr", Active, none()),
        (Active, "Notification", Active, none()),
        (Active, "NotifVersionErr", Active, none()),
        (Active, "Keepalive", Active, none()),
        (Active, "Update", Active, none()),
        (Active, "UpdateErr", Active, none()),
        (Active, "RouteRefresh", Active, none()),
        (Active, "EndOfRib", Active, none()),
        // Connect: an attempt in flight.
        (Connect, "Start", Connect, none()),
        (Connect, "Stop", Idle, s(&["cancel-connect"])),
        (Connect, "ConnectRetryExpires", Connect, s(&["cancel-connect", "connect"])),
        (Connect, "HoldExpires", Connect, none()),
        (Connect, "KeepaliveExpires", Connect, none()),
        (Connect, "IdleHoldExpires", Connect, none()),
        (Connect, "InboundConnected", OpenSent, s(&["cancel-connect", "open@9"])),
        (Connect, "OutboundConnected", OpenSent, s(&["open@8"])),
        (Connect, "ConnectFailed", Active, none()),
        (Connect, "Closed", Connect, none()),
        (Connect, "Open", Connect, none()),
        (Connect, "HeaderErr", Connect, none()),
        (Connect, "OpenErr", Connect, none()),
        (Connect, "Notification", Connect, none()),
        (Connect, "NotifVersionErr", Connect, none()),
        (Connect, "Keepalive", Connect, none()),
        (Connect, "Update", Connect, none()),
        (Connect, "UpdateErr", Connect, none()),
        (Connect, "RouteRefresh", Connect, none()),
        (Connect, "EndOfRib", Connect, none()),
        // OpenSent: our OPEN is out on conn 1.
        (OpenSent, "Start", OpenSent, none()),
        (OpenSent, "Stop", Idle, fail("6/2")),
        (OpenSent, "ConnectRetryExpires", OpenSent, none()),
        (OpenSent, "HoldExpires", Idle, fail("4/0")),
        (OpenSent, "KeepaliveExpires", OpenSent, none()),
        (OpenSent, "IdleHoldExpires", OpenSent, none()),
        (OpenSent, "InboundConnected", OpenSent, s(&["open@9"])),
        (OpenSent, "OutboundConnected", OpenSent, s(&["close@8"])),
        (OpenSent, "ConnectFailed", OpenSent, none()),
        (OpenSent, "Closed", Idle, closed()),
        (OpenSent, "Open", OpenConfirm, s(&["keepalive@1"])),
        (OpenSent, "HeaderErr", Idle, fail("1/1")),
        (OpenSent, "OpenErr", Idle, fail("2/2")),
        (OpenSent, "Notification", Idle, closed()),
        (OpenSent, "NotifVersionErr", Idle, closed()),
        (OpenSent, "Keepalive", Idle, fail("5/1")),
        (OpenSent, "Update", Idle, fail("5/1")),
        (OpenSent, "UpdateErr", Idle, fail("5/1")),
        (OpenSent, "RouteRefresh", Idle, fail("5/1")),
        (OpenSent, "EndOfRib", Idle, fail("5/1")),
        // OpenConfirm: OPENs exchanged, our KEEPALIVE sent.
        (OpenConfirm, "Start", OpenConfirm, none()),
        (OpenConfirm, "Stop", Idle, fail("6/2")),
        (OpenConfirm, "ConnectRetryExpires", OpenConfirm, none()),
        (OpenConfirm, "HoldExpires", Idle, fail("4/0")),
        (OpenConfirm, "KeepaliveExpires", OpenConfirm, s(&["keepalive@1"])),
        (OpenConfirm, "IdleHoldExpires", OpenConfirm, none()),
        (OpenConfirm, "InboundConnected", OpenConfirm, s(&["open@9"])),
        (OpenConfirm, "OutboundConnected", OpenConfirm, s(&["close@8"])),
        (OpenConfirm, "ConnectFailed", OpenConfirm, none()),
        (OpenConfirm, "Closed", Idle, closed()),
        (OpenConfirm, "Open", Idle, fail("5/2")),
        (OpenConfirm, "HeaderErr", Idle, fail("1/1")),
        (OpenConfirm, "OpenErr", Idle, fail("5/2")),
        (OpenConfirm, "Notification", Idle, closed()),
        (OpenConfirm, "NotifVersionErr", Idle, closed()),
        (OpenConfirm, "Keepalive", Established, s(&["established"])),
        (OpenConfirm, "Update", Idle, fail("5/2")),
        (OpenConfirm, "UpdateErr", Idle, fail("5/2")),
        (OpenConfirm, "RouteRefresh", Idle, fail("5/2")),
        (OpenConfirm, "EndOfRib", Idle, fail("5/2")),
        // Established. Stop: N bit negotiated, so Administrative Shutdown goes in a Hard Reset
        // (RFC 8538 §5).
        (Established, "Start", Established, none()),
        (Established, "Stop", Idle, fail("6/9")),
        (Established, "ConnectRetryExpires", Established, none()),
        (Established, "HoldExpires", Idle, fail("4/0")),
        (Established, "KeepaliveExpires", Established, s(&["keepalive@1"])),
        (Established, "IdleHoldExpires", Established, none()),
        (Established, "InboundConnected", Established, s(&["open@9"])),
        (Established, "OutboundConnected", Established, s(&["close@8"])),
        (Established, "ConnectFailed", Established, none()),
        (Established, "Closed", Idle, closed()),
        (Established, "Open", Idle, fail("5/3")),
        (Established, "HeaderErr", Idle, fail("1/1")),
        (Established, "OpenErr", Idle, fail("5/3")),
        (Established, "Notification", Idle, closed()),
        (Established, "NotifVersionErr", Idle, closed()),
        (Established, "Keepalive", Established, none()),
        (Established, "Update", Established, s(&["update"])),
        (Established, "UpdateErr", Idle, fail("3/10")),
        (Established, "RouteRefresh", Established, s(&["refresh"])),
        (Established, "EndOfRib", Established, s(&["eor"])),
    ];
    let all_events = events();
    // The table covers every state × event exactly once.
    assert_eq!(table.len(), 6 * all_events.len());
    for (state, name, want_state, want) in &table {
        let event = all_events
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no event {name}"))
            .1;
        let mut t = in_state(*state);
        assert_eq!(t.s.state(), *state);
        let actions = event(&mut t);
        assert_eq!(
            (t.s.state(), summary(&actions)),
            (*want_state, want.clone()),
            "{state:?} + {name}: {actions:#?}"
        );
    }
}

/// The OPEN rows of shared/fixtures/malformed-messages.tsv, received in OpenSent.
#[test]
fn open_errors_from_fixtures() {
    let fixtures = include_str!("../../../fixtures/malformed-messages.tsv");
    let mut seen = 0;
    for line in fixtures.lines().filter(|l| l.starts_with("open-")) {
        let mut cols = line.split('\t');
        let (name, bytes, expected) = (
            cols.next().unwrap(),
            hex(cols.next().unwrap()),
            cols.next().unwrap(),
        );
        let mut t = in_state(State::OpenSent);
        let actions = t.recv(C1, &bytes);
        let got = sent_notification(&actions).map(|n| (u8::from(n.code), n.subcode, n.data));
        let want = match name {
            "open-version-3" => Some((2, 1, vec![0, 4])),
            "open-hold-1" => Some((2, 6, vec![])),
            "open-bgpid-0" => Some((2, 3, vec![])),
            "open-peer-as-0" => Some((2, 2, vec![])),
            "open-truncated-after-optlen"
            | "open-ext-optparam-truncated"
            | "open-cap-len-overrun" => {
                let (code, sub, _) = got
                    .clone()
                    .unwrap_or_else(|| panic!("{name}: no NOTIFICATION"));
                assert!(
                    (code, sub) == (2, 0) || (code, sub) == (1, 2),
                    "{name}: {code}/{sub}, want {expected}"
                );
                seen += 1;
                continue;
            }
            // Accepted: hold 0, unknown capability.
            "open-hold-0" | "open-unknown-capability" => None,
            other => panic!("unexpected OPEN fixture {other}"),
        };
        assert_eq!(got, want, "{name}: want {expected}");
        let want_state = if want.is_none() {
            State::OpenConfirm
        } else {
            State::Idle
        };
        assert_eq!(t.s.state(), want_state, "{name}");
        seen += 1;
    }
    assert_eq!(seen, 9);
}

#[test]
fn open_checks_against_configuration() {
    // Peer AS mismatch: 2/2 (RFC 4271 §6.2).
    let mut t = in_state(State::OpenSent);
    let a = t.recv_msg(
        C1,
        Message::Open(Open::new(65002, 90, PEER_ID, peer_caps(65002))),
    );
    assert_eq!(summary(&a), ["notif 2/2@1", "close@1", "down"]);

    // iBGP with our own identifier: 2/3 (RFC 6286 §2.2); eBGP with it is fine.
    let mut c = config();
    c.remote_as = LOCAL_AS;
    let mut t = T::new(c);
    t.input(Input::Start);
    t.input(Input::Connected {
        conn: C1,
        direction: Direction::Inbound,
    });
    let a = t.recv_msg(
        C1,
        Message::Open(Open::new(LOCAL_AS, 90, LOCAL_ID, peer_caps(LOCAL_AS))),
    );
    assert_eq!(
        sent_notification(&a).map(|n| (u8::from(n.code), n.subcode)),
        Some((2, 3))
    );
    let mut t = in_state(State::OpenSent);
    t.recv_msg(
        C1,
        Message::Open(Open::new(PEER_AS, 90, LOCAL_ID, peer_caps(PEER_AS))),
    );
    assert_eq!(t.s.state(), State::OpenConfirm);

    // 4-octet AS: a peer in AS 4200000001 sends AS_TRANS in my_as and its AS in the capability.
    let mut c = config();
    c.remote_as = 4_200_000_001;
    let mut t = T::new(c.clone());
    t.input(Input::Start);
    t.input(Input::Connected {
        conn: C1,
        direction: Direction::Inbound,
    });
    let open = Open::new(4_200_000_001, 90, PEER_ID, peer_caps(4_200_000_001));
    assert_eq!(open.my_as, 23456);
    t.recv_msg(C1, Message::Open(open));
    assert_eq!(t.s.state(), State::OpenConfirm);
    // An OLD speaker (no 4-octet capability) can only show AS_TRANS: Bad Peer AS.
    let mut t = T::new(c);
    t.input(Input::Start);
    t.input(Input::Connected {
        conn: C1,
        direction: Direction::Inbound,
    });
    let caps = peer_caps(0)
        .into_iter()
        .filter(|c| !matches!(c, Capability::FourOctetAs(_)))
        .collect();
    let a = t.recv_msg(C1, Message::Open(Open::new(23456, 90, PEER_ID, caps)));
    assert_eq!(
        sent_notification(&a).map(|n| (u8::from(n.code), n.subcode)),
        Some((2, 2))
    );

    // No common family: 2/7 Unsupported Capability naming our multiprotocol capability.
    let mut t = in_state(State::OpenSent);
    let a = t.recv_msg(
        C1,
        Message::Open(Open::new(
            PEER_AS,
            90,
            PEER_ID,
            vec![
                Capability::Multiprotocol(Family::IPV6_UNICAST),
                Capability::FourOctetAs(PEER_AS),
            ],
        )),
    );
    assert_eq!(
        sent_notification(&a).map(|n| (u8::from(n.code), n.subcode, n.data)),
        Some((2, 7, vec![1, 4, 0, 1, 0, 1]))
    );
}

fn established_info(actions: &[Action]) -> std::sync::Arc<SessionInfo> {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Established { negotiated, .. } => Some(negotiated.clone()),
            _ => None,
        })
        .expect("established")
}

#[test]
fn negotiation_outcomes() {
    // Hold time: the smaller offer; keepalive a third.
    let mut t = in_state(State::OpenSent);
    t.recv_msg(
        C1,
        Message::Open(Open::new(PEER_AS, 30, PEER_ID, peer_caps(PEER_AS))),
    );
    let info = established_info(&t.recv_msg(C1, Message::Keepalive));
    assert_eq!(info.hold_time, Duration::from_secs(30));
    assert_eq!(info.keepalive_time, Duration::from_secs(10));
    assert_eq!(info.peer_as, PEER_AS);
    assert_eq!(info.peer_router_id, PEER_ID);
    assert_eq!(info.families, vec![Family::IPV4_UNICAST]);
    assert!(info.route_refresh);
    assert!(info.codec.receive.four_octet_as);
    assert!(info.codec.receive.add_path(Family::IPV4_UNICAST));
    assert!(info.codec.send.add_path(Family::IPV4_UNICAST));
    assert!(info.graceful_restart_negotiated());
    assert!(info.notification_negotiated());
    assert!(info.peer_forwarding_preserved(Family::IPV4_UNICAST));
    assert!(!info.peer_restarting());

    // A minimal peer: no capabilities at all → IPv4 unicast implied, 2-octet AS, no ADD-PATH,
    // no route refresh, no graceful restart.
    let mut t = in_state(State::OpenSent);
    t.recv_msg(C1, Message::Open(Open::new(PEER_AS, 180, PEER_ID, vec![])));
    let info = established_info(&t.recv_msg(C1, Message::Keepalive));
    assert_eq!(info.hold_time, Duration::from_secs(90));
    assert_eq!(info.families, vec![Family::IPV4_UNICAST]);
    assert!(!info.codec.receive.four_octet_as);
    assert!(!info.codec.receive.add_path(Family::IPV4_UNICAST));
    assert!(!info.route_refresh);
    assert!(!info.graceful_restart_negotiated());

    // ADD-PATH receive-only peer: we may send, we do not receive.
    let mut caps = peer_caps(PEER_AS);
    caps.retain(|c| !matches!(c, Capability::AddPath(_)));
    caps.push(Capability::AddPath(vec![AddPathFamily {
        family: Family::IPV4_UNICAST,
        mode: WireAddPath::Receive,
    }]));
    let mut t = in_state(State::OpenSent);
    t.recv_msg(C1, Message::Open(Open::new(PEER_AS, 90, PEER_ID, caps)));
    let info = established_info(&t.recv_msg(C1, Message::Keepalive));
    assert!(info.codec.send.add_path(Family::IPV4_UNICAST));
    assert!(!info.codec.receive.add_path(Family::IPV4_UNICAST));

    // Hold time 0 on either side: no hold timer, no keepalives.
    let mut t = in_state(State::OpenSent);
    let a = t.recv_msg(
        C1,
        Message::Open(Open::new(PEER_AS, 0, PEER_ID, peer_caps(PEER_AS))),
    );
    assert!(a.contains(&Action::CancelTimer(Timer::Hold)));
    assert!(armed(&a, Timer::Keepalive).is_none());
    let info = established_info(&t.recv_msg(C1, Message::Keepalive));
    assert_eq!(info.hold_time, Duration::ZERO);
    t.advance(100_000);
    assert!(summary(&t.timer(Timer::Hold)).is_empty());
    assert!(summary(&t.timer(Timer::Keepalive)).is_empty());
    assert_eq!(t.s.state(), State::Established);
}

#[test]
fn the_restart_bits_end_without_a_reset() {
    let mut c = config();
    c.graceful_restart = Some(GracefulRestartConfig {
        restart_time: Duration::from_secs(120),
        restarting: true,
        forwarding_preserved: true,
        notification: true,
    });
    let mut s = Session::new(c.clone());
    assert!(s.local_open().graceful_restart().unwrap().restart_state());
    let mut after = c;
    if let Some(gr) = after.graceful_restart.as_mut() {
        gr.restarting = false;
        gr.forwarding_preserved = false;
    }
    assert!(!s.config().requires_reset(&after));
    s.update_pacing(after);
    let gr = s.local_open().graceful_restart().unwrap();
    assert!(
        !gr.restart_state(),
        "RFC 4724 §3: R only in the OPENs of the restart"
    );
    assert!(gr.families.iter().all(|f| !f.forwarding_state()));
}

#[test]
fn our_open_carries_the_configured_capabilities() {
    let mut c = config();
    c.families = vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST];
    c.graceful_restart = Some(GracefulRestartConfig {
        restart_time: Duration::from_secs(300),
        restarting: true,
        forwarding_preserved: true,
        notification: true,
    });
    c.local_as = 4_200_000_000;
    let open = negotiate::local_open(&c);
    assert_eq!(open.my_as, 23456); // AS_TRANS (RFC 6793 §4.2.1)
    assert_eq!(open.four_octet_as(), Some(4_200_000_000));
    assert_eq!(open.hold_time, 90);
    assert_eq!(open.bgp_id, LOCAL_ID);
    assert_eq!(
        open.multiprotocol_families().collect::<Vec<_>>(),
        c.families
    );
    assert!(
        open.capabilities()
            .any(|c| matches!(c, Capability::RouteRefresh))
    );
    let gr = open.graceful_restart().unwrap();
    assert!(gr.restart_state() && gr.notification());
    assert_eq!(gr.restart_time, 300);
    assert!(gr.families.iter().all(|f| f.forwarding_state()));
    assert_eq!(open.add_path_families().count(), 2);
    assert!(
        !open
            .capabilities()
            .any(|c| matches!(c, Capability::ExtendedNextHop(_)))
    );
    let mut enh = c.clone();
    enh.extended_next_hop = true;
    let open = negotiate::local_open(&enh);
    assert!(
        open.capabilities()
            .any(|c| matches!(c, Capability::ExtendedNextHop(e) if e.len() == 1)),
        "RFC 8950 capability for IPv4 unicast over IPv6"
    );
    // Without GR / ADD-PATH / route refresh configured, none is offered.
    c.graceful_restart = None;
    c.add_path = AddPathMode::Off;
    c.route_refresh = false;
    let open = negotiate::local_open(&c);
    assert!(open.graceful_restart().is_none());
    assert_eq!(open.add_path_families().count(), 0);
    assert!(
        !open
            .capabilities()
            .any(|c| matches!(c, Capability::RouteRefresh))
    );
}

mod timers_and_collisions;
mod updates;
