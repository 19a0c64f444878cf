//! Virtual-time timers, starting and stopping, graceful restart retention, End-of-RIB, the send hold timer and connection collisions.

use super::*;

#[test]
fn timers_with_virtual_time() {
    let mut t = T::new(config());
    // Start: Active, first connect after the 2 s connect delay.
    let a = t.input(Input::Start);
    assert_eq!(
        armed(&a, Timer::ConnectRetry),
        Some(Instant::from_start(Duration::from_secs(2)))
    );
    t.advance(2);
    let a = t.timer(Timer::ConnectRetry);
    assert_eq!(summary(&a), ["connect"]);
    // Retry every 5 s.
    assert_eq!(
        armed(&a, Timer::ConnectRetry),
        Some(Instant::from_start(Duration::from_secs(7)))
    );
    t.input(Input::ConnectFailed);
    assert_eq!(t.s.state(), State::Active);
    t.advance(5);
    assert_eq!(summary(&t.timer(Timer::ConnectRetry)), ["connect"]);
    // Connected: OPEN wait = configured hold time.
    let a = t.input(Input::Connected {
        conn: C1,
        direction: Direction::Outbound,
    });
    assert_eq!(
        armed(&a, Timer::Hold),
        Some(t.now + Duration::from_secs(90))
    );
    t.recv_msg(
        C1,
        Message::Open(Open::new(PEER_AS, 9, PEER_ID, peer_caps(PEER_AS))),
    );
    let a = t.recv_msg(C1, Message::Keepalive);
    assert_eq!(summary(&a), ["established"]);
    let est = t.now;
    // Keepalives every 3 s (hold 9 / 3).
    t.advance(3);
    assert_eq!(summary(&t.timer(Timer::Keepalive)), ["keepalive@1"]);
    // An UPDATE sent by the driver postpones the next KEEPALIVE.
    t.advance(2);
    t.input(Input::UpdateSent);
    t.advance(1);
    let a = t.timer(Timer::Keepalive);
    assert!(summary(&a).is_empty());
    assert_eq!(
        armed(&a, Timer::Keepalive),
        Some(t.now + Duration::from_secs(2))
    );
    // Messages from the peer push the hold deadline (lazily re-armed on expiry).
    t.recv_msg(C1, Message::Keepalive);
    let last = t.now;
    t.advance(3);
    let a = t.timer(Timer::Hold);
    assert!(summary(&a).is_empty());
    assert_eq!(armed(&a, Timer::Hold), Some(last + Duration::from_secs(9)));
    // Silence for the hold time: 4/0, down, error wait 5 s.
    t.advance(6);
    let a = t.timer(Timer::Hold);
    assert_eq!(summary(&a), ["notif 4/0@1", "close@1", "down"]);
    assert_eq!(
        down(&a).unwrap().reason,
        DownReason::NotificationSent(Notification::hold_timer_expired())
    );
    // RFC 4724 §4.2: hold timer expiry keeps the peer's routes for its restart time.
    assert_eq!(
        down(&a).unwrap().retain_routes_for,
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        armed(&a, Timer::IdleHold),
        Some(t.now + Duration::from_secs(5))
    );
    assert!(t.now - est < Duration::from_secs(300));
    // Error wait over: connect at once.
    t.advance(5);
    t.timer(Timer::IdleHold);
    assert_eq!(t.s.state(), State::Active);
    let a = t.timer(Timer::ConnectRetry);
    assert_eq!(summary(&a), ["connect"]);
    // A second failure doubles the wait.
    t.input(Input::Connected {
        conn: ConnId(2),
        direction: Direction::Outbound,
    });
    let a = t.input(Input::Closed { conn: ConnId(2) });
    assert_eq!(
        armed(&a, Timer::IdleHold),
        Some(t.now + Duration::from_secs(10))
    );
}

/// During the error wait (Idle, automatic restart pending) the peer's connection is taken; after
/// an administrative stop it is refused.
#[test]
fn idle_accepts_the_peer_only_while_waiting_to_restart() {
    let mut t = in_state(State::OpenSent);
    t.input(Input::Closed { conn: C1 });
    assert_eq!(t.s.state(), State::Idle);
    let a = t.input(Input::Connected {
        conn: ConnId(2),
        direction: Direction::Inbound,
    });
    assert_eq!(summary(&a), ["open@2"]);
    assert!(a.contains(&Action::CancelTimer(Timer::IdleHold)));
    assert_eq!(t.s.state(), State::OpenSent);
    let mut t = in_state(State::OpenSent);
    t.input(Input::Stop(&StopReason::Shutdown {
        text: String::new(),
    }));
    let a = t.input(Input::Connected {
        conn: ConnId(2),
        direction: Direction::Inbound,
    });
    assert_eq!(summary(&a), ["close@2"]);
    assert_eq!(t.s.state(), State::Idle);
}

#[test]
fn passive_never_connects() {
    let mut c = config();
    c.passive = true;
    let mut t = T::new(c);
    let a = t.input(Input::Start);
    assert!(armed(&a, Timer::ConnectRetry).is_none());
    t.advance(100);
    assert!(summary(&t.timer(Timer::ConnectRetry)).is_empty());
    assert_eq!(t.s.state(), State::Active);
    t.input(Input::Connected {
        conn: C1,
        direction: Direction::Inbound,
    });
    assert_eq!(t.s.state(), State::OpenSent);
}

#[test]
fn stops_and_shutdown_communication() {
    // RFC 9003: Administrative Shutdown carries the text (not established: no Hard Reset).
    let mut t = in_state(State::OpenConfirm);
    let a = t.input(Input::Stop(&StopReason::Shutdown {
        text: "moving to a new rack".into(),
    }));
    let n = sent_notification(&a).unwrap();
    assert_eq!(n.shutdown_communication(), Some("moving to a new rack"));
    // The session stays down.
    assert!(armed(&a, Timer::IdleHold).is_none());

    // Established with N bit: Hard Reset wrapping 6/2 and the text (RFC 8538 §3).
    let mut t = in_state(State::Established);
    let a = t.input(Input::Stop(&StopReason::Shutdown { text: "bye".into() }));
    let n = sent_notification(&a).unwrap();
    assert_eq!((u8::from(n.code), n.subcode), (6, 9));
    assert_eq!(n.data, [6, 2, 3, b'b', b'y', b'e']);
    assert_eq!(down(&a).unwrap().retain_routes_for, None);

    // Planned restart towards a graceful-restart peer: no NOTIFICATION, just close.
    let mut t = in_state(State::Established);
    let a = t.input(Input::Stop(&StopReason::PlannedRestart {
        text: "restart".into(),
    }));
    assert_eq!(summary(&a), ["close@1", "down"]);
    assert_eq!(down(&a).unwrap().reason, DownReason::PlannedRestart);

    // Planned restart towards a peer without graceful restart: Cease/2 with text.
    let mut t = in_state(State::OpenSent);
    let caps: Vec<Capability> = peer_caps(PEER_AS)
        .into_iter()
        .filter(|c| !matches!(c, Capability::GracefulRestart(_)))
        .collect();
    t.recv_msg(C1, Message::Open(Open::new(PEER_AS, 90, PEER_ID, caps)));
    t.recv_msg(C1, Message::Keepalive);
    let a = t.input(Input::Stop(&StopReason::PlannedRestart {
        text: "restart".into(),
    }));
    let n = sent_notification(&a).unwrap();
    assert_eq!((u8::from(n.code), n.subcode), (6, 2));
    assert_eq!(n.shutdown_communication(), Some("restart"));

    // Configuration change: Cease/6 and a restart after the connect delay.
    let mut t = in_state(State::Established);
    let a = t.input(Input::Stop(&StopReason::ConfigChange));
    let n = sent_notification(&a).unwrap();
    assert_eq!((u8::from(n.code), n.subcode), (6, 6));
    assert_eq!(
        armed(&a, Timer::IdleHold),
        Some(t.now + Duration::from_secs(2))
    );
    t.advance(2);
    t.timer(Timer::IdleHold);
    assert_eq!(summary(&t.timer(Timer::ConnectRetry)), ["connect"]);

    // Max prefix: Cease/1 with AFI/SAFI/limit, in a Hard Reset (N bit), restart after the
    // configured delay, the peer's connections refused meanwhile.
    let mut t = in_state(State::Established);
    let a = t.input(Input::Stop(&StopReason::MaxPrefix {
        family: Family::IPV4_UNICAST,
        limit: 1000,
        restart_after: Duration::from_secs(42),
    }));
    let n = sent_notification(&a).unwrap();
    assert_eq!((u8::from(n.code), n.subcode), (6, 9));
    assert_eq!(n.data, [6, 1, 0, 1, 1, 0, 0, 0x03, 0xe8]);
    assert_eq!(
        armed(&a, Timer::IdleHold),
        Some(t.now + Duration::from_secs(42))
    );
    let a = t.input(Input::Connected {
        conn: ConnId(2),
        direction: Direction::Inbound,
    });
    assert_eq!(summary(&a), ["close@2"]);
    t.advance(42);
    t.timer(Timer::IdleHold);
    assert_eq!(t.s.state(), State::Active);
}

#[test]
fn graceful_restart_route_retention() {
    // A NOTIFICATION (not Hard Reset) from a peer with N: routes kept (RFC 8538 §4).
    let mut t = in_state(State::Established);
    let a = t.recv_msg(
        C1,
        Message::Notification(Notification::new(ErrorCode::Cease, 4, vec![])),
    );
    assert_eq!(
        down(&a).unwrap().retain_routes_for,
        Some(Duration::from_secs(120))
    );
    // Hard Reset: flushed.
    let mut t = in_state(State::Established);
    let a = t.recv_msg(
        C1,
        Message::Notification(Notification::new(ErrorCode::Cease, 9, vec![6, 2])),
    );
    assert_eq!(down(&a).unwrap().retain_routes_for, None);
    // TCP reset: kept.
    let mut t = in_state(State::Established);
    let a = t.input(Input::Closed { conn: C1 });
    assert_eq!(down(&a).unwrap().reason, DownReason::TransportClosed);
    assert_eq!(
        down(&a).unwrap().retain_routes_for,
        Some(Duration::from_secs(120))
    );
    // Without graceful restart on our side: nothing kept.
    let mut c = config();
    c.graceful_restart = None;
    let mut t = T::new(c);
    t.input(Input::Start);
    t.input(Input::Connected {
        conn: C1,
        direction: Direction::Inbound,
    });
    t.recv_msg(C1, Message::Open(peer_open()));
    t.recv_msg(C1, Message::Keepalive);
    let a = t.input(Input::Closed { conn: C1 });
    assert_eq!(down(&a).unwrap().retain_routes_for, None);

    // The peer restarts and reconnects while we still think the session is up (RFC 4724 §4.2):
    // the old session ends with its routes kept, the new one comes up.
    let mut t = in_state(State::Established);
    t.input(Input::Connected {
        conn: ConnId(5),
        direction: Direction::Inbound,
    });
    let mut restarted = peer_caps(PEER_AS);
    if let Some(Capability::GracefulRestart(gr)) = restarted
        .iter_mut()
        .find(|c| matches!(c, Capability::GracefulRestart(_)))
    {
        gr.flags |= GracefulRestart::RESTART_STATE;
    }
    let a = t.recv_msg(
        ConnId(5),
        Message::Open(Open::new(PEER_AS, 90, PEER_ID, restarted)),
    );
    assert_eq!(summary(&a), ["close@1", "down", "keepalive@5"]);
    assert_eq!(down(&a).unwrap().reason, DownReason::PeerRestarted);
    assert_eq!(
        down(&a).unwrap().retain_routes_for,
        Some(Duration::from_secs(120))
    );
    let info = established_info(&t.recv_msg(ConnId(5), Message::Keepalive));
    assert!(info.peer_restarting());
    assert_eq!(t.s.primary_conn(), Some(ConnId(5)));
}

#[test]
fn end_of_rib_per_family() {
    let mut c = config();
    c.families = vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST];
    let mut t = T::new(c);
    t.input(Input::Start);
    t.input(Input::Connected {
        conn: C1,
        direction: Direction::Inbound,
    });
    let mut caps = peer_caps(PEER_AS);
    caps.push(Capability::Multiprotocol(Family::IPV6_UNICAST));
    t.recv_msg(C1, Message::Open(Open::new(PEER_AS, 90, PEER_ID, caps)));
    t.recv_msg(C1, Message::Keepalive);
    let ctx = Context::default();
    let mut bytes = Message::Update(bgp_proto::message::Update::end_of_rib(Family::IPV6_UNICAST))
        .to_bytes(&ctx)
        .unwrap()
        .to_vec();
    bytes.extend(
        Message::Update(bgp_proto::message::Update::end_of_rib(Family::IPV4_UNICAST))
            .to_bytes(&ctx)
            .unwrap(),
    );
    // Split at an arbitrary point: framing copes.
    let a1 = t.recv(C1, &bytes[..7]);
    assert!(a1.is_empty());
    let a = t.recv(C1, &bytes[7..]);
    assert_eq!(
        a.iter()
            .filter_map(|a| if let Action::EndOfRib(f) = a {
                Some(*f)
            } else {
                None
            })
            .collect::<Vec<_>>(),
        vec![Family::IPV6_UNICAST, Family::IPV4_UNICAST]
    );
}

#[test]
fn send_hold_timer_closes_a_peer_that_does_not_read() {
    let mut t = in_state(State::Established);
    let a = t.input(Input::WriteStalled { conn: C1 });
    // RFC 9687: max(8 min, 2 × hold).
    assert_eq!(
        armed(&a, Timer::SendHold),
        Some(t.now + Duration::from_secs(480))
    );
    let a = t.input(Input::WriteResumed { conn: C1 });
    assert!(a.contains(&Action::CancelTimer(Timer::SendHold)));
    t.input(Input::WriteStalled { conn: C1 });
    t.advance(480);
    let a = t.timer(Timer::SendHold);
    assert_eq!(summary(&a), ["notif 8/0@1", "close@1", "down"]);
    assert_eq!(t.s.state(), State::Idle);
}

/// Collision (RFC 4271 §6.8) through the whole core: both connections up, exactly one survives
/// with Cease/7 on the other, for each identifier order and each arrival order of the OPENs.
#[test]
fn collision_in_the_core() {
    for (peer_id, keep_outbound) in [
        (Ipv4Addr::new(10, 0, 0, 0), true),
        (Ipv4Addr::new(10, 0, 0, 9), false),
    ] {
        for open_first_on_outbound in [true, false] {
            let mut t = in_state(State::OpenSent); // conn 1 outbound, primary
            let a = t.input(Input::Connected {
                conn: ConnId(2),
                direction: Direction::Inbound,
            });
            assert_eq!(summary(&a), ["open@2"]);
            let open = || Message::Open(Open::new(PEER_AS, 90, peer_id, peer_caps(PEER_AS)));
            let (first, second) = if open_first_on_outbound {
                (C1, ConnId(2))
            } else {
                (ConnId(2), C1)
            };
            let a = t.recv_msg(first, open());
            let loser = if keep_outbound { ConnId(2) } else { C1 };
            let winner = if keep_outbound { C1 } else { ConnId(2) };
            let s = summary(&a);
            assert!(
                s.contains(&format!("notif 6/7@{}", loser.0)),
                "{peer_id} {open_first_on_outbound}: {s:?}"
            );
            assert!(s.contains(&format!("close@{}", loser.0)), "{s:?}");
            assert!(
                !s.iter()
                    .any(|x| x.ends_with(&format!("@{}", winner.0)) && x.starts_with("notif")),
                "{s:?}"
            );
            assert_eq!(t.s.primary_conn(), Some(winner));
            if first != winner {
                // The winner still waits for its own OPEN.
                assert_eq!(t.s.state(), State::OpenSent);
                t.recv_msg(second, open());
            }
            assert_eq!(t.s.state(), State::OpenConfirm);
            let a = t.recv_msg(winner, Message::Keepalive);
            assert_eq!(summary(&a), ["established"]);
        }
    }
    // With an Established session and no graceful restart, the new connection loses.
    let mut c = config();
    c.graceful_restart = None;
    let mut t = T::new(c);
    t.input(Input::Start);
    t.input(Input::Connected {
        conn: C1,
        direction: Direction::Inbound,
    });
    t.recv_msg(C1, Message::Open(peer_open()));
    t.recv_msg(C1, Message::Keepalive);
    t.input(Input::Connected {
        conn: ConnId(3),
        direction: Direction::Inbound,
    });
    let a = t.recv_msg(ConnId(3), Message::Open(peer_open()));
    assert_eq!(summary(&a), ["notif 6/7@3", "close@3"]);
    assert_eq!(t.s.state(), State::Established);
    assert_eq!(t.s.primary_conn(), Some(C1));
}

/// The second connection wins the collision with an OPEN and a KEEPALIVE in the same read: the
/// KEEPALIVE is processed on the now-primary connection at once (not left in its buffer).
#[test]
fn winning_connection_processes_the_rest_of_its_bytes() {
    let mut t = in_state(State::OpenSent); // conn 1 outbound
    t.input(Input::Connected {
        conn: ConnId(2),
        direction: Direction::Inbound,
    });
    // Peer id higher than ours: the connection it opened (inbound) wins.
    let mut bytes = encode(Message::Open(Open::new(
        PEER_AS,
        90,
        PEER_ID,
        peer_caps(PEER_AS),
    )));
    bytes.extend(encode(Message::Keepalive));
    let a = t.recv(ConnId(2), &bytes);
    assert_eq!(
        summary(&a),
        ["notif 6/7@1", "close@1", "keepalive@2", "established"]
    );
    assert_eq!(t.s.state(), State::Established);
    assert_eq!(t.s.primary_conn(), Some(ConnId(2)));
}

#[test]
fn primary_failure_promotes_the_second_connection() {
    let mut t = in_state(State::OpenSent);
    t.input(Input::Connected {
        conn: ConnId(2),
        direction: Direction::Inbound,
    });
    let a = t.input(Input::Closed { conn: C1 });
    assert_eq!(summary(&a), ["close@1", "down"]);
    assert_eq!(t.s.state(), State::OpenSent);
    assert_eq!(t.s.primary_conn(), Some(ConnId(2)));
    t.recv_msg(ConnId(2), Message::Open(peer_open()));
    t.recv_msg(ConnId(2), Message::Keepalive);
    assert_eq!(t.s.state(), State::Established);
}
