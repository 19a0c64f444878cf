//! The speaker over loopback, no root needed: two `tern` speakers reach Established (whatever
//! the connection collision does), exchange UPDATEs and End-of-RIB; an unconfigured address gets
//! no bytes; a peer that goes silent is dropped by the hold timer.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use bgp_proto::capability::Capability;
use bgp_proto::{Context, Family, Message, Open};
use tern::io::bgp::{Outbound, PeerEvent, Speaker, SpeakerConfig, SpeakerEvent, SpeakerHandle};
use tern::session::{DownReason, PeerConfig, State, StopReason};
use tokio::sync::mpsc;

const A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const WAIT: Duration = Duration::from_secs(60);

fn speaker(addr: Ipv4Addr) -> (SpeakerHandle, mpsc::Receiver<SpeakerEvent>, u16) {
    let config = SpeakerConfig {
        listen: vec![SocketAddr::new(IpAddr::V4(addr), 0)],
        ..SpeakerConfig::default()
    };
    let (handle, events) = Speaker::start(config).expect("listen on loopback");
    let port = handle.local_addrs()[0].port();
    (handle, events, port)
}

fn peer(local: Ipv4Addr, remote: Ipv4Addr, port: u16, local_as: u32, remote_as: u32) -> PeerConfig {
    let mut c = PeerConfig::new(IpAddr::V4(remote), remote_as, local_as, local);
    c.peer_port = port;
    c.source_address = Some(IpAddr::V4(local));
    c.connect_delay = Duration::from_millis(100);
    c.connect_retry = Duration::from_secs(1);
    c.error_wait = (Duration::from_millis(500), Duration::from_secs(2));
    c
}

/// Waits for the first event matching `pick`, returning what it extracts. `SHOW_EVENTS=1` prints
/// every event (debugging).
async fn next<T>(
    events: &mut mpsc::Receiver<SpeakerEvent>,
    pick: impl FnMut(&SpeakerEvent) -> Option<T>,
) -> T {
    next_within(WAIT, events, pick).await
}

/// Like [`next`] with a shorter bound: a connection stuck until some timer (hold time 30 s)
/// rescues it fails the test instead of passing slowly.
async fn next_within<T>(
    timeout: Duration,
    events: &mut mpsc::Receiver<SpeakerEvent>,
    mut pick: impl FnMut(&SpeakerEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(timeout, async {
        loop {
            let event = events.recv().await.expect("speaker running");
            if std::env::var_os("SHOW_EVENTS").is_some() {
                eprintln!(
                    "{:?} event: {} {:?}",
                    std::time::Instant::now(),
                    event.peer,
                    event.event
                );
            }
            if let Some(t) = pick(&event) {
                return t;
            }
        }
    })
    .await
    .expect("event within the timeout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_speakers_establish_exchange_and_refuse_strangers() {
    let (a, mut a_events, a_port) = speaker(A);
    let (b, mut b_events, b_port) = speaker(B);
    a.set_peers(vec![peer(A, B, b_port, 65000, 65001)]);
    b.set_peers(vec![peer(B, A, a_port, 65001, 65000)]);

    let (a_session, a_info) = next(&mut a_events, |e| match &e.event {
        PeerEvent::Established { session, info, .. } => Some((*session, info.clone())),
        _ => None,
    })
    .await;
    let b_session = next(&mut b_events, |e| match &e.event {
        PeerEvent::Established { session, .. } => Some(*session),
        _ => None,
    })
    .await;
    assert_eq!(a_info.peer_as, 65001);
    assert_eq!(a_info.peer_router_id, B);
    assert!(a_info.codec.receive.four_octet_as);
    assert!(a_info.codec.send.add_path(Family::IPV4_UNICAST));
    assert!(a_info.graceful_restart_negotiated() && a_info.route_refresh);
    assert_eq!(a.state(IpAddr::V4(B)), Some(State::Established));

    // A's End-of-RIB reaches B.
    a.send(
        IpAddr::V4(B),
        a_session,
        Outbound::EndOfRib(Family::IPV4_UNICAST),
    )
    .unwrap();
    let eor = next(&mut b_events, |e| match &e.event {
        PeerEvent::EndOfRib(f) => Some(*f),
        _ => None,
    })
    .await;
    assert_eq!(eor, Family::IPV4_UNICAST);
    // Messages are counted by type on both ends: the OPEN and KEEPALIVE of the handshake and
    // the End-of-RIB UPDATE.
    let (_, a_sent) = a.message_counts(IpAddr::V4(B)).unwrap();
    let (b_received, _) = b.message_counts(IpAddr::V4(A)).unwrap();
    for counts in [a_sent, b_received] {
        assert!(counts.open >= 1, "{counts:?}");
        assert!(counts.keepalive >= 1, "{counts:?}");
        assert!(counts.update >= 1, "{counts:?}");
        // Both speakers dial, so a collision may happen: its losing connection carries a second
        // OPEN and is closed with Cease/7. No other NOTIFICATION is allowed.
        assert!(counts.notification < counts.open, "{counts:?}");
    }
    assert_eq!(a.message_counts(IpAddr::V4([10, 9, 9, 9].into())), None);
    // A stale session id is refused.
    assert!(
        b.send(
            IpAddr::V4(A),
            b_session + 100,
            Outbound::EndOfRib(Family::IPV4_UNICAST)
        )
        .is_err()
    );

    // A stranger (127.0.0.3) connecting to A gets no byte: EOF or reset, never data.
    let stranger = tokio::task::spawn_blocking(move || {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 3], 0)).into())
            .unwrap();
        socket
            .connect(&SocketAddr::from((A, a_port)).into())
            .unwrap();
        let mut stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = [0u8; 64];
        stream.read(&mut buf)
    })
    .await
    .unwrap();
    assert!(
        matches!(stranger, Ok(0) | Err(_)),
        "a stranger got data: {stranger:?}"
    );
    assert_eq!(a.state(IpAddr::V4(B)), Some(State::Established));

    // The RIB's max-prefix stop: Cease/1 with AFI/SAFI/limit (in a Hard Reset, N bit), then the
    // session comes back by itself after the error wait.
    a.stop_peer(
        IpAddr::V4(B),
        StopReason::MaxPrefix {
            family: Family::IPV4_UNICAST,
            limit: 10,
            restart_after: Duration::from_secs(1),
        },
    )
    .unwrap();
    let reason = next(&mut b_events, |e| match &e.event {
        PeerEvent::Down(d) => Some(d.reason.clone()),
        _ => None,
    })
    .await;
    match reason {
        DownReason::NotificationReceived(n) => {
            assert_eq!((u8::from(n.code), n.subcode), (6, 9), "{n}");
            assert_eq!(n.data, [6, 1, 0, 1, 1, 0, 0, 0, 10]);
        }
        other => panic!("unexpected {other:?}"),
    }
    next(&mut b_events, |e| {
        matches!(e.event, PeerEvent::Established { .. }).then_some(())
    })
    .await;
    next(&mut a_events, |e| {
        matches!(e.event, PeerEvent::Established { .. }).then_some(())
    })
    .await;

    // Removing the peer ends the session with Cease/3 (in a Hard Reset: N bit) on the other side.
    a.set_peers(vec![]);
    let reason = next(&mut b_events, |e| match &e.event {
        PeerEvent::Down(d) => Some(d.reason.clone()),
        _ => None,
    })
    .await;
    match reason {
        DownReason::NotificationReceived(n) => {
            assert_eq!((u8::from(n.code), n.subcode), (6, 9), "{n}")
        }
        other => panic!("unexpected {other:?}"),
    }
    b.shutdown(
        StopReason::Shutdown {
            text: "test over".into(),
        },
        Duration::from_secs(5),
    )
    .await;
}

/// A hand-made peer that completes the OPEN exchange and then goes silent: the hold timer (3 s,
/// negotiated) takes the session down with NOTIFICATION 4/0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_dropped_by_the_hold_timer() {
    let (a, mut events, a_port) = speaker(A);
    let mut config = peer(A, B, 1, 65000, 65001);
    config.passive = true;
    config.hold_time = Duration::from_secs(3);
    a.set_peers(vec![config]);

    let notification = tokio::task::spawn_blocking(move || {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&SocketAddr::from((B, 0)).into()).unwrap();
        socket
            .connect(&SocketAddr::from((A, a_port)).into())
            .unwrap();
        let mut stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let ctx = Context::default();
        let open = Open::new(65001, 3, B, vec![Capability::FourOctetAs(65001)]);
        stream
            .write_all(&Message::Open(open).to_bytes(&ctx).unwrap())
            .unwrap();
        stream
            .write_all(&Message::Keepalive.to_bytes(&ctx).unwrap())
            .unwrap();
        // Read everything until the speaker closes; return the last message (the NOTIFICATION).
        let mut all = Vec::new();
        let _ = stream.read_to_end(&mut all);
        let mut last = None;
        let mut rest = &all[..];
        while rest.len() >= 19 {
            let len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
            last = Some(Message::decode(&rest[..len], &ctx).unwrap());
            rest = &rest[len..];
        }
        last
    });
    next(&mut events, |e| {
        matches!(e.event, PeerEvent::Established { .. }).then_some(())
    })
    .await;
    let reason = next(&mut events, |e| match &e.event {
        PeerEvent::Down(d) => Some(d.reason.clone()),
        _ => None,
    })
    .await;
    assert!(
        matches!(reason, DownReason::NotificationSent(ref n) if u8::from(n.code) == 4),
        "{reason:?}"
    );
    match notification.await.unwrap() {
        Some(Message::Notification(n)) => assert_eq!(u8::from(n.code), 4),
        other => panic!("expected a NOTIFICATION 4/0 last, got {other:?}"),
    }
    a.shutdown(
        StopReason::Shutdown {
            text: String::new(),
        },
        Duration::from_secs(5),
    )
    .await;
}

fn established_addrs(event: &SpeakerEvent) -> Option<(SocketAddr, SocketAddr)> {
    match &event.event {
        PeerEvent::Established {
            local: Some(l),
            remote: Some(r),
            ..
        } => Some((*l, *r)),
        _ => None,
    }
}

/// Everything received so far without waiting.
fn drain(events: &mut mpsc::Receiver<SpeakerEvent>) -> Vec<SpeakerEvent> {
    let mut all = Vec::new();
    while let Ok(e) = events.try_recv() {
        all.push(e);
    }
    all
}

/// Both sides active, so connections collide (RFC 4271 §6.8): each time exactly one TCP
/// connection survives and both ends agree on it. A configuration change of one peering resets
/// only that peering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collisions_leave_one_connection_and_resets_stay_local() {
    const C: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
    const ROUND: Duration = Duration::from_secs(15);
    let (a, mut a_events, a_port) = speaker(A);
    let (b, mut b_events, b_port) = speaker(B);
    let (c, mut c_events, c_port) = speaker(C);
    let ab = peer(A, B, b_port, 65000, 65001);
    let mut ac = peer(A, C, c_port, 65000, 65002);
    a.set_peers(vec![ab.clone(), ac.clone()]);
    b.set_peers(vec![peer(B, A, a_port, 65001, 65000)]);
    c.set_peers(vec![peer(C, A, a_port, 65002, 65000)]);
    next(&mut b_events, established_addrs).await;
    next(&mut c_events, established_addrs).await;
    for _ in 0..2 {
        next(&mut a_events, established_addrs).await;
    }

    for round in 0..4u64 {
        // Change something in the OPEN of A–C only: that session resets (Cease/6).
        ac.hold_time = Duration::from_secs(30 + round);
        a.set_peers(vec![ab.clone(), ac.clone()]);
        let reason = next(&mut c_events, |e| match &e.event {
            PeerEvent::Down(d) => Some(d.reason.clone()),
            _ => None,
        })
        .await;
        assert!(
            matches!(&reason, DownReason::NotificationReceived(n) if (u8::from(n.code), n.subcode) == (6, 6)),
            "{reason:?}"
        );
        let (a_local, a_remote) = next_within(ROUND, &mut a_events, |e| {
            (e.peer == IpAddr::V4(C))
                .then(|| established_addrs(e))
                .flatten()
        })
        .await;
        let (c_local, c_remote) = next_within(ROUND, &mut c_events, established_addrs).await;
        // One connection, seen from both ends.
        assert_eq!((a_local, a_remote), (c_remote, c_local), "round {round}");
        assert_eq!(a.state(IpAddr::V4(C)), Some(State::Established));
    }
    // A–B never went down.
    let b_seen = drain(&mut b_events);
    assert!(
        !b_seen.iter().any(|e| matches!(e.event, PeerEvent::Down(_))),
        "{b_seen:?}"
    );
    assert_eq!(b.state(IpAddr::V4(A)), Some(State::Established));
    let a_seen = drain(&mut a_events);
    assert!(
        !a_seen
            .iter()
            .any(|e| e.peer == IpAddr::V4(B) && matches!(e.event, PeerEvent::Down(_))),
        "{a_seen:?}"
    );
    for s in [a, b, c] {
        s.shutdown(
            StopReason::Shutdown {
                text: String::new(),
            },
            Duration::from_secs(5),
        )
        .await;
    }
}

/// A peer that stops reading (robustness F4): the outbound queue fills and reports `Full`
/// (back-pressure), the send hold timer closes the session, and another peer is not delayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_is_closed_and_others_are_not_delayed() {
    const R: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);
    let config = SpeakerConfig {
        listen: vec![SocketAddr::from((A, 0))],
        outbound_queue: 32,
        ..SpeakerConfig::default()
    };
    let (a, mut a_events) = Speaker::start(config).unwrap();
    let a_port = a.local_addrs()[0].port();
    let (b, mut b_events, b_port) = speaker(B);
    let mut slow = peer(A, R, 1, 65000, 65009);
    slow.passive = true;
    slow.send_hold_time = Some(Duration::from_secs(2));
    a.set_peers(vec![peer(A, B, b_port, 65000, 65001), slow]);
    b.set_peers(vec![peer(B, A, a_port, 65001, 65000)]);

    // The slow peer: OPEN (hold time 0: no keepalives either way), KEEPALIVE, then never reads.
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    let slow_peer = tokio::task::spawn_blocking(move || {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&SocketAddr::from((R, 0)).into()).unwrap();
        socket
            .connect(&SocketAddr::from((A, a_port)).into())
            .unwrap();
        let mut stream: TcpStream = socket.into();
        let ctx = Context::default();
        let open = Open::new(65009, 0, R, vec![Capability::FourOctetAs(65009)]);
        stream
            .write_all(&Message::Open(open).to_bytes(&ctx).unwrap())
            .unwrap();
        stream
            .write_all(&Message::Keepalive.to_bytes(&ctx).unwrap())
            .unwrap();
        let _ = hold_rx.recv_timeout(WAIT); // keep the socket open, unread
    });
    let r_session = next(&mut a_events, |e| match &e.event {
        PeerEvent::Established { session, .. } if e.peer == IpAddr::V4(R) => Some(*session),
        _ => None,
    })
    .await;
    let b_session = next(&mut b_events, |e| match &e.event {
        PeerEvent::Established { session, .. } => Some(*session),
        _ => None,
    })
    .await;

    // Push until the queue stays full: the socket buffers are full and the writer is stuck.
    let blob = bytes::Bytes::from(vec![0u8; 64 * 1024]);
    let r_sender = a.sender(IpAddr::V4(R)).expect("configured peer");
    let mut last_accepted = std::time::Instant::now();
    loop {
        match r_sender.send(r_session, Outbound::Message(blob.clone())) {
            Ok(()) => last_accepted = std::time::Instant::now(),
            Err(tern::io::bgp::SendError::Full(_)) => {
                if last_accepted.elapsed() > Duration::from_millis(1500) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("{other}"),
        }
        assert!(last_accepted.elapsed() < WAIT);
    }
    // (The loop only ends on a persistent `Full`: back-pressure was reported.)
    // The other peer is not held up: B gets A's End-of-RIB now.
    let b_info = a.state(IpAddr::V4(B));
    assert_eq!(b_info, Some(State::Established));
    let a_session_for_b = a
        .status()
        .into_iter()
        .find(|(p, _)| *p == IpAddr::V4(B))
        .map(|(_, s)| s.state)
        .unwrap();
    assert_eq!(a_session_for_b, State::Established);
    let _ = b_session;
    // A's session id for B is the first one A made for B.
    let b_id = 1;
    a.send(
        IpAddr::V4(B),
        b_id,
        Outbound::EndOfRib(Family::IPV4_UNICAST),
    )
    .unwrap();
    next(&mut b_events, |e| {
        matches!(e.event, PeerEvent::EndOfRib(_)).then_some(())
    })
    .await;

    // The send hold timer (2 s after the write stalled) closes the slow peer.
    let reason = next(&mut a_events, |e| match &e.event {
        PeerEvent::Down(d) if e.peer == IpAddr::V4(R) => Some(d.reason.clone()),
        _ => None,
    })
    .await;
    assert!(
        matches!(&reason, DownReason::NotificationSent(n) if u8::from(n.code) == 8),
        "{reason:?}"
    );
    assert_eq!(a.state(IpAddr::V4(B)), Some(State::Established));
    let _ = hold_tx.send(());
    slow_peer.await.unwrap();
    for s in [a, b] {
        s.shutdown(
            StopReason::Shutdown {
                text: String::new(),
            },
            Duration::from_secs(5),
        )
        .await;
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Many flaps (robustness F1): every reset ends its sockets and tasks; the number of open file
/// descriptors comes back to where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaps_leave_no_sockets_behind() {
    let (a, _a_events, a_port) = speaker(A);
    let (b, mut b_events, b_port) = speaker(B);
    a.set_peers(vec![peer(A, B, b_port, 65000, 65001)]);
    b.set_peers(vec![peer(B, A, a_port, 65001, 65000)]);
    next(&mut b_events, established_addrs).await;
    let baseline = open_fds();
    for round in 0..20 {
        a.stop_peer(
            IpAddr::V4(B),
            StopReason::Reset {
                text: format!("flap {round}"),
            },
        )
        .unwrap();
        let reason = next(&mut b_events, |e| match &e.event {
            PeerEvent::Down(d) => Some(d.reason.clone()),
            _ => None,
        })
        .await;
        assert!(
            matches!(reason, DownReason::NotificationReceived(ref n) if n.shutdown_communication() == Some(&format!("flap {round}"))),
            "{reason:?}"
        );
        next(&mut b_events, established_addrs).await;
    }
    // Closing is asynchronous (flush, then close): wait for the count to settle.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let now = open_fds();
        if now <= baseline {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{now} open fds, {baseline} before the flaps"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for s in [a, b] {
        s.shutdown(
            StopReason::Shutdown {
                text: String::new(),
            },
            Duration::from_secs(5),
        )
        .await;
    }
}

/// A peer that floods UPDATEs (robustness F5) while the consumer does not take events: the
/// speaker stops reading, TCP pushes back on the sender (its writes stop progressing), nothing is
/// lost; once events are taken again every UPDATE arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_is_pushed_back_and_nothing_is_lost() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const R: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);
    const UPDATES: usize = 400_000;
    let config = SpeakerConfig {
        listen: vec![SocketAddr::from((A, 0))],
        event_queue: 16,
        ..SpeakerConfig::default()
    };
    let (a, mut events) = Speaker::start(config).unwrap();
    let a_port = a.local_addrs()[0].port();
    let mut flooder = peer(A, R, 1, 65000, 65001);
    flooder.passive = true;
    a.set_peers(vec![flooder]);

    let written = Arc::new(AtomicUsize::new(0));
    let progress = written.clone();
    let sender = tokio::task::spawn_blocking(move || {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&SocketAddr::from((R, 0)).into()).unwrap();
        socket
            .connect(&SocketAddr::from((A, a_port)).into())
            .unwrap();
        let mut stream: TcpStream = socket.into();
        let ctx = Context::default();
        let open = Open::new(65001, 0, R, vec![Capability::FourOctetAs(65001)]);
        stream
            .write_all(&Message::Open(open).to_bytes(&ctx).unwrap())
            .unwrap();
        stream
            .write_all(&Message::Keepalive.to_bytes(&ctx).unwrap())
            .unwrap();
        // UPDATE 10.a.b.0/24 (ORIGIN, AS_PATH 65001, NEXT_HOP 127.0.0.5), written in batches.
        let mut batch = Vec::new();
        for i in 0..UPDATES {
            let mut m = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x2f\x02\x00\x00\x00\x14\x40\x01\x01\x00\x40\x02\x06\x02\x01\x00\x00\xfd\xe9\x40\x03\x04\x7f\x00\x00\x05\x18\x0a".to_vec();
            m.extend_from_slice(&[(i >> 8) as u8, i as u8]);
            batch.extend_from_slice(&m);
            if batch.len() > 32 * 1024 || i + 1 == UPDATES {
                stream.write_all(&batch).unwrap();
                progress.fetch_add(batch.len(), Ordering::Relaxed);
                batch.clear();
            }
        }
        stream
    });
    let total = UPDATES * 47;

    // Do not take events: the sender's progress must stop short of the total.
    let mut last = 0;
    let mut stable_since = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = written.load(Ordering::Relaxed);
        assert!(
            now < total,
            "all {total} bytes were accepted without anyone taking the events"
        );
        if now != last {
            last = now;
            stable_since = std::time::Instant::now();
        } else if now > 0 && stable_since.elapsed() > Duration::from_secs(1) {
            break; // pushed back
        }
        assert!(stable_since.elapsed() < WAIT);
    }
    // Take events again: everything arrives.
    let mut updates = 0;
    tokio::time::timeout(WAIT, async {
        while updates < UPDATES {
            match events.recv().await.unwrap().event {
                PeerEvent::Update(_) => updates += 1,
                PeerEvent::Down(d) => panic!("session went down: {}", d.reason),
                _ => {}
            }
        }
    })
    .await
    .expect("all UPDATEs within the timeout");
    let stream = sender.await.unwrap();
    assert_eq!(written.load(Ordering::Relaxed), total);
    assert_eq!(a.state(IpAddr::V4(R)), Some(State::Established));
    drop(stream);
    a.shutdown(
        StopReason::Shutdown {
            text: String::new(),
        },
        Duration::from_secs(5),
    )
    .await;
}

/// Reconfigurations are never lost to a busy peer task: twenty changes in a row (more than any
/// command queue holds) while the task cannot run, and the session comes up with the last one.
/// A removal right after still ends the session with Cease/3 (Peer De-configured).
#[tokio::test]
async fn the_last_of_many_quick_reconfigurations_is_applied_and_a_removal_sends_cease_3() {
    let (a, a_events, a_port) = speaker(A);
    let (b, mut b_events, b_port) = speaker(B);
    a.set_peers(vec![peer(A, B, b_port, 65000, 65001)]);
    b.set_peers(vec![peer(B, A, a_port, 65001, 65000)]);
    next(&mut b_events, |e| {
        matches!(e.event, PeerEvent::Established { .. }).then_some(())
    })
    .await;
    // This test's runtime has one thread: none of A's tasks runs during the loop.
    for i in 1..=20u64 {
        let mut config = peer(A, B, b_port, 65000, 65001);
        config.hold_time = Duration::from_secs(10 + i);
        a.set_peers(vec![config]);
    }
    let hold = next(&mut b_events, |e| match &e.event {
        PeerEvent::Established { info, .. } if info.hold_time != Duration::from_secs(90) => {
            Some(info.hold_time)
        }
        _ => None,
    })
    .await;
    assert_eq!(hold, Duration::from_secs(30), "B negotiated {hold:?}");
    // Removing the peer, with more work queued for it, still ends with Cease/3.
    let mut config = peer(A, B, b_port, 65000, 65001);
    config.hold_time = Duration::from_secs(40);
    a.set_peers(vec![config]);
    a.set_peers(vec![]);
    let reason = next(&mut b_events, |e| match &e.event {
        PeerEvent::Down(d) if d.was_established => Some(d.reason.clone()),
        _ => None,
    })
    .await;
    match reason {
        // Cease/3, or a Hard Reset (6/9, RFC 8538) carrying Cease/3.
        DownReason::NotificationReceived(n) => assert!(
            (u8::from(n.code), n.subcode) == (6, 3)
                || ((u8::from(n.code), n.subcode) == (6, 9) && n.data.starts_with(&[6, 3])),
            "{n}"
        ),
        other => panic!("unexpected {other:?}"),
    }
    drop(a_events);
    b.shutdown(
        StopReason::Shutdown {
            text: "test over".into(),
        },
        Duration::from_secs(5),
    )
    .await;
}

/// A stalled consumer (the supervisor busy for longer than the hold time, its event queue
/// full) does not make the speaker drop a live peer with Hold Timer Expired: a session still
/// comes up while nobody takes events, and a peer whose UPDATEs back up unread (hold time 3 s)
/// stays Established for three hold times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_consumer_does_not_expire_a_live_peers_hold_timer() {
    const R: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 6);
    const UPDATES: usize = 100_000;
    let config = SpeakerConfig {
        listen: vec![SocketAddr::from((A, 0))],
        event_queue: 16,
        ..SpeakerConfig::default()
    };
    // A's events are never taken during the test.
    let (a, _stalled_events) = Speaker::start(config).unwrap();
    let a_port = a.local_addrs()[0].port();
    let mut raw = peer(A, R, 1, 65000, 65001);
    raw.passive = true;
    raw.hold_time = Duration::from_secs(3);
    a.set_peers(vec![raw]);
    let sender = tokio::task::spawn_blocking(move || {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&SocketAddr::from((R, 0)).into()).unwrap();
        socket
            .connect(&SocketAddr::from((A, a_port)).into())
            .unwrap();
        let mut stream: TcpStream = socket.into();
        let ctx = Context::default();
        let open = Open::new(65001, 3, R, vec![Capability::FourOctetAs(65001)]);
        stream
            .write_all(&Message::Open(open).to_bytes(&ctx).unwrap())
            .unwrap();
        stream
            .write_all(&Message::Keepalive.to_bytes(&ctx).unwrap())
            .unwrap();
        // More UPDATEs than the stalled consumer's queues hold; the write blocks when TCP
        // pushes back, so it runs on its own thread.
        let mut batch = Vec::new();
        for i in 0..UPDATES {
            let mut m = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x2f\x02\x00\x00\x00\x14\x40\x01\x01\x00\x40\x02\x06\x02\x01\x00\x00\xfd\xe9\x40\x03\x04\x7f\x00\x00\x06\x18\x0a".to_vec();
            m.extend_from_slice(&[(i >> 8) as u8, i as u8]);
            batch.extend_from_slice(&m);
            if batch.len() > 32 * 1024 || i + 1 == UPDATES {
                if stream.write_all(&batch).is_err() {
                    break;
                }
                batch.clear();
            }
        }
        stream
    });
    let established = std::time::Instant::now();
    while a.state(IpAddr::V4(R)) != Some(State::Established) {
        assert!(established.elapsed() < WAIT, "no session with the raw peer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Three hold times with the consumer stalled and the peer's data waiting unread.
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        assert_eq!(
            a.state(IpAddr::V4(R)),
            Some(State::Established),
            "dropped after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.shutdown(
        StopReason::Shutdown {
            text: String::new(),
        },
        Duration::from_secs(5),
    )
    .await;
    drop(sender.await.unwrap());
}

/// A peer that connects while the daemon is still starting (listener bound, peer set not yet
/// known: every node of a mesh starts at once) waits in the listen backlog and is handed to
/// its session once the peers are set, instead of being closed as a stranger (which would cost
/// it an error wait of 5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_before_the_peers_are_set_is_kept_for_its_session() {
    let (a, mut events, a_port) = speaker(A);
    // Connected (the kernel completes the handshake into the backlog) and OPEN sent before
    // the speaker knows B.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((B, 0)).into()).unwrap();
    socket
        .connect(&SocketAddr::from((A, a_port)).into())
        .unwrap();
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let ctx = Context::default();
    let open = Open::new(65001, 90, B, vec![Capability::FourOctetAs(65001)]);
    stream
        .write_all(&Message::Open(open).to_bytes(&ctx).unwrap())
        .unwrap();
    stream
        .write_all(&Message::Keepalive.to_bytes(&ctx).unwrap())
        .unwrap();
    // A speaker that accepted it before knowing B closes it at once (EOF here within
    // milliseconds); one that waits for its peer set leaves it open. A negative, so bounded:
    // 200 ms without EOF.
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut byte = [0u8; 1];
    match stream.peek(&mut byte) {
        Ok(0) => panic!("the connection was closed before the peers were set"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            panic!("the connection was reset before the peers were set")
        }
        Ok(_) => panic!("bytes before the peers were set"),
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{e}"
        ),
    }
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut config = peer(A, B, 1, 65000, 65001);
    config.passive = true;
    a.set_peers(vec![config]);
    next_within(Duration::from_secs(10), &mut events, |e| {
        matches!(e.event, PeerEvent::Established { .. }).then_some(())
    })
    .await;
    // The speaker's OPEN and KEEPALIVE came back on that same connection.
    let mut header = [0u8; 19];
    stream.read_exact(&mut header).unwrap();
    assert_eq!(header[18], 1, "the speaker's OPEN first");
    a.shutdown(
        StopReason::Shutdown {
            text: String::new(),
        },
        Duration::from_secs(5),
    )
    .await;
}
