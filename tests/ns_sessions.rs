//! Sessions of `tern`'s speaker against real BIRD 2, GoBGP and FRR in network namespaces:
//! Established with the capabilities each peer's own CLI reports, TCP-MD5, GTSM, a stranger
//! refused before any byte, a frozen peer (`kill -STOP`) caught by the hold timer and back after
//! `kill -CONT`.
//!
//! `tern` runs in-process: a thread enters the namespace (`setns`) and runs a current-thread
//! tokio runtime with the speaker; the test drives it through `SpeakerHandle`. Needs root and
//! the daemons; fails otherwise (skips with `TERN_ALLOW_SKIP=1`).

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use interop::prelude::*;
use serde_json::Value;
use tern::io::bgp::{Outbound, PeerEvent, Speaker, SpeakerConfig, SpeakerHandle};
use tern::session::{
    AddPathMode, DownReason, GracefulRestartConfig, Password, PeerConfig, SessionInfo, State,
    StopReason, TtlMode,
};

const TERN_IP: &str = "10.0.0.1";
const PEER_IP: &str = "10.0.0.2";
const STRANGER_IP: &str = "10.0.0.3";
const TERN_IP6: &str = "fd00::1";
const PEER_IP6: &str = "fd00::2";
const TERN_AS: u32 = 65000;
/// A 4-octet AS (above 65535: the OPEN carries AS_TRANS, RFC 6793).
const TERN_AS4: u32 = 4_200_000_001;
const PEER_AS: u32 = 65001;
/// Generous: a loaded 2-core machine, daemons starting, connect retry 5 s on both sides.
const ESTABLISH: Duration = Duration::from_secs(90);

/// Runs `f` on a thread inside namespace `ns` (network namespaces are per thread).
fn spawn_in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>> {
    let file = File::open(format!("/run/netns/{ns}"))
        .with_context(|| format!("opening namespace {ns}"))?;
    Ok(std::thread::spawn(move || {
        // SAFETY: setns on a namespace file descriptor affects only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    }))
}

/// What the test keeps of the speaker's events.
#[derive(Default)]
struct Record {
    established: HashMap<IpAddr, (u64, Arc<SessionInfo>)>,
    downs: Vec<(IpAddr, DownReason)>,
}

/// `tern`'s speaker running in a namespace.
struct NsSpeaker {
    handle: SpeakerHandle,
    runtime: tokio::runtime::Handle,
    record: Arc<Mutex<Record>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl NsSpeaker {
    fn start(ns: &Netns) -> Result<NsSpeaker> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let record = Arc::new(Mutex::new(Record::default()));
        let rec = record.clone();
        let thread = spawn_in_netns(ns.name(), move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let config = SpeakerConfig::default(); // [::]:179, dual-stack
                let (handle, mut events) = match Speaker::start(config) {
                    Ok(started) => started,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok((handle.clone(), tokio::runtime::Handle::current())));
                loop {
                    tokio::select! {
                        event = events.recv() => {
                            let Some(event) = event else { break };
                            let mut r = rec.lock().unwrap();
                            match event.event {
                                PeerEvent::Established { session, info, .. } => {
                                    r.established.insert(event.peer, (session, info));
                                }
                                PeerEvent::Down(down) => r.downs.push((event.peer, down.reason)),
                                _ => {}
                            }
                        }
                        _ = &mut stop_rx => break,
                    }
                }
                handle
                    .shutdown(
                        StopReason::Shutdown {
                            text: "test over".into(),
                        },
                        Duration::from_secs(5),
                    )
                    .await;
            });
        })?;
        let (handle, runtime) = ready_rx
            .recv()
            .context("speaker thread")?
            .context("starting the speaker")?;
        Ok(NsSpeaker {
            handle,
            runtime,
            record,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn set_peers(&self, peers: Vec<PeerConfig>) {
        let _guard = self.runtime.enter();
        self.handle.set_peers(peers);
    }

    fn state(&self, peer: &str) -> Option<State> {
        self.handle.state(peer.parse().ok()?)
    }

    fn info(&self, peer: &str) -> Option<Arc<SessionInfo>> {
        self.record
            .lock()
            .unwrap()
            .established
            .get(&peer.parse::<IpAddr>().ok()?)
            .map(|(_, info)| info.clone())
    }

    /// Sends an UPDATE announcing `prefix` (next hop us, AS path ours) and End-of-RIB on the
    /// current session.
    fn announce(&self, peer: &str, prefix: &str) -> Result<()> {
        let address: IpAddr = peer.parse()?;
        let (session, info) = self
            .record
            .lock()
            .unwrap()
            .established
            .get(&address)
            .cloned()
            .context("not established")?;
        let path_id = info
            .codec
            .send
            .add_path(bgp_proto::Family::IPV4_UNICAST)
            .then_some(1);
        let update = bgp_proto::Update {
            attributes: vec![
                bgp_proto::PathAttribute::new(bgp_proto::AttributeValue::Origin(
                    bgp_proto::Origin::Igp,
                )),
                bgp_proto::PathAttribute::new(bgp_proto::AttributeValue::AsPath(
                    bgp_proto::attr::AsPath::sequence([info.local_as]),
                )),
                bgp_proto::PathAttribute::new(bgp_proto::AttributeValue::NextHop(TERN_IP.parse()?)),
            ],
            nlri: vec![bgp_proto::Nlri {
                prefix: prefix.parse()?,
                path_id,
            }],
            ..bgp_proto::Update::default()
        };
        let bytes = bgp_proto::Message::Update(update)
            .to_bytes(&info.codec.send)?
            .freeze();
        self.handle
            .send(address, session, Outbound::Message(bytes))?;
        self.handle.send(
            address,
            session,
            Outbound::EndOfRib(bgp_proto::Family::IPV4_UNICAST),
        )?;
        Ok(())
    }

    /// Stops every session as on SIGTERM with graceful restart (no NOTIFICATION to GR peers).
    fn planned_restart(&self) -> Result<()> {
        let handle = self.handle.clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        self.runtime.spawn(async move {
            handle
                .shutdown(
                    StopReason::PlannedRestart {
                        text: "tern restarting".into(),
                    },
                    Duration::from_secs(5),
                )
                .await;
            let _ = done_tx.send(());
        });
        done_rx
            .recv_timeout(Duration::from_secs(30))
            .context("planned restart did not finish")
    }

    fn downs(&self) -> Vec<(IpAddr, DownReason)> {
        self.record.lock().unwrap().downs.clone()
    }

    fn wait_state(&self, peer: &str, want: State, timeout: Duration) -> Result<()> {
        wait_until(&format!("tern's session to {peer} {want}"), timeout, || {
            let state = self.state(peer);
            Ok(if state == Some(want) {
                Check::Ready(())
            } else {
                pending(format!("{state:?}"))
            })
        })
    }
}

impl Drop for NsSpeaker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Two namespaces on a veth pair: `tern` at 10.0.0.1, the peer at 10.0.0.2 (and 10.0.0.3 for
/// the stranger).
fn topology(peer_label: &str) -> Result<(Netns, Netns)> {
    let tern_ns = Netns::new("tern")?;
    let peer_ns = Netns::new(peer_label)?;
    veth(&tern_ns, "eth0", &peer_ns, "eth0")?;
    tern_ns.add_address("eth0", &format!("{TERN_IP}/24"))?;
    peer_ns.add_address("eth0", &format!("{PEER_IP}/24"))?;
    peer_ns.add_address("eth0", &format!("{STRANGER_IP}/24"))?;
    tern_ns.add_address("eth0", &format!("{TERN_IP6}/64"))?;
    peer_ns.add_address("eth0", &format!("{PEER_IP6}/64"))?;
    Ok((tern_ns, peer_ns))
}

/// `tern`'s side of the peering, Calico-like (ADD-PATH, GR, route refresh, 4-octet AS).
fn tern_peer(remote_as: u32) -> PeerConfig {
    let mut c = PeerConfig::new(
        PEER_IP.parse().unwrap(),
        remote_as,
        TERN_AS,
        TERN_IP.parse().unwrap(),
    );
    c.source_address = Some(TERN_IP.parse().unwrap());
    c.add_path = AddPathMode::Both;
    c.graceful_restart = Some(GracefulRestartConfig::default());
    c
}

/// A TCP counter of a namespace (`/proc/net/netstat`, e.g. `TCPMD5Failure`).
fn tcp_counter(ns: &Netns, name: &str) -> Result<u64> {
    let text = ns.run("cat", ["/proc/net/netstat"])?;
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    ensure!(lines.len() == 2, "unexpected /proc/net/netstat: {text}");
    let names = lines[0].split_whitespace();
    let values = lines[1].split_whitespace();
    names
        .zip(values)
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .with_context(|| format!("no counter {name}"))
}

/// A connection from an address that is not a configured peer gets no byte: EOF or reset.
fn stranger_gets_nothing(peer_ns: &Netns) -> Result<()> {
    let outcome = spawn_in_netns(peer_ns.name(), || -> std::io::Result<usize> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        socket.bind(&SocketAddr::new(STRANGER_IP.parse::<IpAddr>().unwrap(), 0).into())?;
        socket.connect_timeout(
            &SocketAddr::new(TERN_IP.parse::<IpAddr>().unwrap(), 179).into(),
            ESTABLISH,
        )?;
        let mut stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(ESTABLISH))?;
        let mut buf = [0u8; 64];
        stream.read(&mut buf)
    })?
    .join()
    .map_err(|_| anyhow::anyhow!("stranger thread panicked"))?;
    match outcome {
        Ok(0) => Ok(()),
        Err(e)
            if e.kind() != std::io::ErrorKind::WouldBlock
                && e.kind() != std::io::ErrorKind::TimedOut =>
        {
            Ok(())
        }
        other => bail!("a stranger got {other:?} from tern"),
    }
}

#[test]
fn ns_sessions_bird() {
    run_scenario("sessions-bird", &[BASE, BIRD], |artifacts| {
        let (tern_ns, peer_ns) = topology("bird")?;
        let bird_peer = BirdPeer::new(
            "tern",
            PEER_IP,
            PEER_AS,
            TERN_IP,
            TERN_AS,
            &[Family::Ipv4Unicast],
        )
        .calico();
        let mut bird_peer = bird_peer;
        // Short timers for the freeze below (BIRD takes the smaller hold time too).
        bird_peer.extra.push("hold time 6;".into());
        bird_peer.extra.push("keepalive time 2;".into());
        let mut bird = Bird::start(
            &peer_ns,
            artifacts,
            "bird",
            &BirdConfig::new(PEER_IP).with_peer(bird_peer),
        )?;
        let tern = NsSpeaker::start(&tern_ns)?;
        tern.set_peers(vec![tern_peer(PEER_AS)]);
        tern.wait_state(PEER_IP, State::Established, ESTABLISH)?;
        wait_until("BIRD's session Established", ESTABLISH, || {
            Ok(bird.bgp_state("tern")? == "Established")
        })?;

        // BIRD's own view of what we negotiated.
        let out = bird.birdc(&["show", "protocols", "all", "tern"])?;
        artifacts.write("bird-protocols.txt", &out)?;
        let neighbor_caps = out
            .split("Neighbor capabilities")
            .nth(1)
            .context("no neighbor capabilities")?;
        let neighbor_caps = neighbor_caps
            .split("Session:")
            .next()
            .unwrap_or(neighbor_caps);
        for cap in [
            "Multiprotocol",
            "Route refresh",
            "Graceful restart",
            "4-octet AS numbers",
            "ADD-PATH",
        ] {
            ensure!(
                neighbor_caps.contains(cap),
                "BIRD does not see {cap} from tern:\n{out}"
            );
        }
        let session = out
            .lines()
            .find(|l| l.trim_start().starts_with("Session:"))
            .context("no Session line")?;
        ensure!(session.contains("AS4"), "no AS4 in {session}");
        // ADD-PATH both ways: tern can receive and send several paths for IPv4.
        let add_path = neighbor_caps.split("ADD-PATH").nth(1).unwrap_or_default();
        ensure!(
            add_path.contains("RX: ipv4") && add_path.contains("TX: ipv4"),
            "ADD-PATH directions:\n{out}"
        );
        let info = tern.info(PEER_IP).context("no Established event")?;
        ensure!(
            info.hold_time == Duration::from_secs(6),
            "hold time {:?}",
            info.hold_time
        );
        ensure!(
            info.graceful_restart_negotiated()
                && info.route_refresh
                && info.codec.receive.four_octet_as
        );

        // A stranger gets no byte and changes nothing.
        stranger_gets_nothing(&peer_ns)?;
        ensure!(
            tern.state(PEER_IP) == Some(State::Established),
            "session affected by the stranger"
        );

        // Freeze BIRD: TCP stays up, keepalives stop; the hold timer (6 s) catches it.
        bird.process.sigstop()?;
        wait_until("hold timer expiry reported", ESTABLISH, || {
            Ok(tern.downs().iter().any(
                |(_, r)| matches!(r, DownReason::NotificationSent(n) if u8::from(n.code) == 4),
            ))
        })?;
        ensure!(tern.state(PEER_IP) != Some(State::Established));
        bird.process.sigcont()?;
        tern.wait_state(PEER_IP, State::Established, ESTABLISH)?;
        wait_until("BIRD Established again", ESTABLISH, || {
            Ok(bird.bgp_state("tern")? == "Established")
        })?;
        Ok(())
    });
}

#[test]
fn ns_sessions_gobgp() {
    run_scenario("sessions-gobgp", &[BASE, GOBGP], |artifacts| {
        let (tern_ns, peer_ns) = topology("gobgp")?;
        let mut neighbor = GobgpNeighbor::new(TERN_IP, TERN_AS, &[Family::Ipv4Unicast]);
        neighbor.add_paths = true;
        neighbor.graceful_restart = true;
        let gobgp = Gobgp::start(
            &peer_ns,
            artifacts,
            "gobgp",
            &GobgpConfig::new(PEER_AS, PEER_IP).with_neighbor(neighbor),
        )?;
        let tern = NsSpeaker::start(&tern_ns)?;
        tern.set_peers(vec![tern_peer(PEER_AS)]);
        tern.wait_state(PEER_IP, State::Established, ESTABLISH)?;
        wait_until("GoBGP's session Established", ESTABLISH, || {
            Ok(gobgp.session_state(TERN_IP)? == "Established")
        })?;

        let n = gobgp.neighbor(TERN_IP)?;
        let out = gobgp.cli(&["neighbor", TERN_IP, "-j"])?;
        artifacts.write("gobgp-neighbor.json", &out)?;
        // Capabilities GoBGP received from tern (its API names them by type).
        let received: Vec<&str> = n["state"]["remote_cap"]
            .as_array()
            .context("no remote_cap")?
            .iter()
            .filter_map(|c| c["type_url"].as_str())
            .collect();
        for cap in [
            "MultiProtocolCapability",
            "RouteRefreshCapability",
            "GracefulRestartCapability",
            "FourOctetASNCapability",
            "AddPathCapability",
        ] {
            ensure!(
                received.iter().any(|r| r.ends_with(cap)),
                "GoBGP did not receive {cap} from tern: {out}"
            );
        }
        // GoBGP's negotiated view: GR received for IPv4, ADD-PATH configured both ways.
        ensure!(
            n["afi_safis"][0]["mp_graceful_restart"]["state"]["received"] == true,
            "GR not received: {out}"
        );
        let info = tern.info(PEER_IP).context("no Established event")?;
        ensure!(
            info.codec.receive.add_path(bgp_proto::Family::IPV4_UNICAST),
            "ADD-PATH rx not negotiated"
        );
        ensure!(
            info.codec.send.add_path(bgp_proto::Family::IPV4_UNICAST),
            "ADD-PATH tx not negotiated"
        );
        ensure!(
            info.graceful_restart_negotiated()
                && info.route_refresh
                && info.codec.receive.four_octet_as
        );
        Ok(())
    });
}

fn frr_neighbor_caps(frr: &Frr) -> Result<Value> {
    Ok(frr.neighbor(TERN_IP)?["neighborCapabilities"].clone())
}

#[test]
fn ns_sessions_frr() {
    run_scenario("sessions-frr", &[BASE, FRR], |artifacts| {
        let (tern_ns, peer_ns) = topology("frr")?;
        // tern in a 4-octet AS: FRR must read it from the capability, not from My AS.
        let mut neighbor = FrrNeighbor::new(TERN_IP, TERN_AS4, &[Family::Ipv4Unicast]);
        neighbor.family_options.push("addpath-tx-all-paths".into());
        let mut config = FrrConfig::new("frr", PEER_AS, PEER_IP).with_neighbor(neighbor);
        config.router_extra.push("bgp graceful-restart".into());
        let frr = Frr::start(&peer_ns, artifacts, "frr", &config)?;
        let tern = NsSpeaker::start(&tern_ns)?;
        let mut four_octet = tern_peer(PEER_AS);
        four_octet.local_as = TERN_AS4;
        tern.set_peers(vec![four_octet]);
        tern.wait_state(PEER_IP, State::Established, ESTABLISH)?;
        wait_until("FRR's session Established", ESTABLISH, || {
            Ok(frr.session_state(TERN_IP)? == "Established")
        })?;
        let out = frr.vtysh(&["show bgp neighbors json"])?;
        artifacts.write("frr-neighbors.json", &out)?;
        let caps = frr_neighbor_caps(&frr)?;
        // FRR's words for a capability both sides sent.
        ensure!(
            caps["4byteAs"] == "advertisedAndReceived",
            "4-octet AS: {caps:#}"
        );
        ensure!(
            caps["routeRefresh"]
                .as_str()
                .is_some_and(|s| s.starts_with("advertisedAndReceived")),
            "RR: {caps:#}"
        );
        ensure!(
            caps["gracefulRestart"] == "advertisedAndReceived",
            "GR: {caps:#}"
        );
        ensure!(
            caps["multiprotocolExtensions"]["ipv4Unicast"]["advertisedAndReceived"] == true,
            "MP: {caps:#}"
        );
        let add_path = &caps["addPath"]["ipv4Unicast"];
        ensure!(
            add_path["rxAdvertisedAndReceived"] == true
                && add_path["txAdvertisedAndReceived"] == true,
            "ADD-PATH: {caps:#}"
        );
        ensure!(
            frr.neighbor(TERN_IP)?["remoteAs"] == TERN_AS4,
            "FRR's view of tern's AS"
        );
        let info = tern.info(PEER_IP).context("no Established event")?;
        ensure!(
            info.codec.send.add_path(bgp_proto::Family::IPV4_UNICAST),
            "ADD-PATH tx not negotiated"
        );
        Ok(())
    });
}

/// Waits until `counter` in `ns` has grown by `at_least` (the peer keeps trying and the kernel
/// keeps refusing), checking on every poll that neither side is Established.
fn refused_while_trying(
    what: &str,
    ns: &Netns,
    counter: &str,
    at_least: u64,
    tern: &NsSpeaker,
    peer_established: impl Fn() -> Result<bool>,
) -> Result<()> {
    let start = tcp_counter(ns, counter)?;
    wait_until(what, ESTABLISH, || {
        if tern.state(PEER_IP) == Some(State::Established) || peer_established()? {
            bail!("established although it must not");
        }
        let now = tcp_counter(ns, counter)?;
        Ok(if now >= start + at_least {
            Check::Ready(())
        } else {
            pending(format!("{counter} {start} -> {now}"))
        })
    })
}

#[test]
fn ns_sessions_md5_bird() {
    run_scenario("sessions-md5-bird", &[BASE, BIRD], |artifacts| {
        let (tern_ns, peer_ns) = topology("md5bird")?;
        let mut bird_peer = BirdPeer::new(
            "tern",
            PEER_IP,
            PEER_AS,
            TERN_IP,
            TERN_AS,
            &[Family::Ipv4Unicast],
        )
        .calico();
        bird_peer.extra.push("password \"right-key\";".into());
        let bird = Bird::start(
            &peer_ns,
            artifacts,
            "bird",
            &BirdConfig::new(PEER_IP).with_peer(bird_peer),
        )?;
        let tern = NsSpeaker::start(&tern_ns)?;
        // Wrong key: segments are dropped by the kernel (TCPMD5Failure grows), never Established.
        let mut wrong = tern_peer(PEER_AS);
        wrong.password = Password::new("wrong-key");
        tern.set_peers(vec![wrong]);
        refused_while_trying(
            "BIRD's kernel refusing tern's segments",
            &peer_ns,
            "TCPMD5Failure",
            3,
            &tern,
            || Ok(bird.bgp_state("tern")? == "Established"),
        )?;
        // Right key (a live password change: only this session resets). Passive: BIRD's
        // connection must pass the key installed on our dual-stack listener for the
        // IPv4-mapped address.
        let mut right = tern_peer(PEER_AS);
        right.password = Password::new("right-key");
        right.passive = true;
        tern.set_peers(vec![right]);
        tern.wait_state(PEER_IP, State::Established, ESTABLISH)?;
        wait_until("BIRD Established", ESTABLISH, || {
            Ok(bird.bgp_state("tern")? == "Established")
        })?;
        Ok(())
    });
}

#[test]
fn ns_sessions_md5_frr() {
    run_scenario("sessions-md5-frr", &[BASE, FRR], |artifacts| {
        let (tern_ns, peer_ns) = topology("md5frr")?;
        let mut neighbor = FrrNeighbor::new(TERN_IP, TERN_AS, &[Family::Ipv4Unicast]);
        neighbor.options.push("password right-key".into());
        let frr = Frr::start(
            &peer_ns,
            artifacts,
            "frr",
            &FrrConfig::new("frr", PEER_AS, PEER_IP).with_neighbor(neighbor),
        )?;
        let tern = NsSpeaker::start(&tern_ns)?;
        let mut wrong = tern_peer(PEER_AS);
        wrong.password = Password::new("wrong-key");
        tern.set_peers(vec![wrong]);
        refused_while_trying(
            "FRR's kernel refusing tern's segments",
            &peer_ns,
            "TCPMD5Failure",
            3,
            &tern,
            || Ok(frr.session_state(TERN_IP)? == "Established"),
        )?;
        let mut right = tern_peer(PEER_AS);
        right.password = Password::new("right-key");
        tern.set_peers(vec![right]);
        tern.wait_state(PEER_IP, State::Established, ESTABLISH)?;
        wait_until("FRR Established", ESTABLISH, || {
            Ok(frr.session_state(TERN_IP)? == "Established")
        })?;
        Ok(())
    });
}

#[test]
fn ns_sessions_gtsm_frr() {
    run_scenario("sessions-gtsm-frr", &[BASE, FRR], |artifacts| {
        let (tern_ns, peer_ns) = topology("gtsmfrr")?;
        let mut neighbor = FrrNeighbor::new(TERN_IP, TERN_AS, &[Family::Ipv4Unicast]);
        neighbor.options.push("ttl-security hops 1".into());
        // Only tern dials: a connection FRR opened itself (TTL 255 out) could come up before
        // the TTL-64 check, which is about FRR's listener dropping tern's segments.
        neighbor.options.push("passive".into());
        let frr = Frr::start(
            &peer_ns,
            artifacts,
            "frr",
            &FrrConfig::new("frr", PEER_AS, PEER_IP).with_neighbor(neighbor),
        )?;
        let tern = NsSpeaker::start(&tern_ns)?;
        // Multihop TTL 64: FRR's IP_MINTTL 255 drops our segments (TCPMinTTLDrop grows).
        let mut multihop = tern_peer(PEER_AS);
        multihop.ttl = TtlMode::Multihop(64);
        tern.set_peers(vec![multihop]);
        // FRR sets the minimum TTL on the socket it accepted, after the kernel completed the
        // handshake: under load tern's OPEN can be read before that, and a session may come
        // up for a moment before FRR drops everything after it. What must hold is that FRR's
        // kernel drops tern's TTL-64 segments.
        let start = tcp_counter(&peer_ns, "TCPMinTTLDrop")?;
        wait_until("FRR's kernel dropping TTL-64 segments", ESTABLISH, || {
            let now = tcp_counter(&peer_ns, "TCPMinTTLDrop")?;
            Ok(if now >= start + 3 {
                Check::Ready(())
            } else {
                pending(format!("TCPMinTTLDrop {start} -> {now}"))
            })
        })?;
        // GTSM on our side: TTL 255 out, and we require 255 in.
        let mut gtsm = tern_peer(PEER_AS);
        gtsm.ttl = TtlMode::Security { hops: 1 };
        tern.set_peers(vec![gtsm]);
        tern.wait_state(PEER_IP, State::Established, ESTABLISH)?;
        wait_until("FRR Established", ESTABLISH, || {
            Ok(frr.session_state(TERN_IP)? == "Established")
        })?;
        Ok(())
    });
}

/// Graceful restart with FRR as helper: a planned stop of `tern` sends no NOTIFICATION, so FRR
/// keeps `tern`'s route (stale) instead of flushing it.
#[test]
fn ns_sessions_planned_restart_frr() {
    run_scenario("sessions-gr-frr", &[BASE, FRR], |artifacts| {
        let (tern_ns, peer_ns) = topology("grfrr")?;
        let neighbor = FrrNeighbor::new(TERN_IP, TERN_AS, &[Family::Ipv4Unicast]);
        let mut config = FrrConfig::new("frr", PEER_AS, PEER_IP).with_neighbor(neighbor);
        config.router_extra.push("bgp graceful-restart".into());
        let frr = Frr::start(&peer_ns, artifacts, "frr", &config)?;
        let tern = NsSpeaker::start(&tern_ns)?;
        tern.set_peers(vec![tern_peer(PEER_AS)]);
        tern.wait_state(PEER_IP, State::Established, ESTABLISH)?;
        wait_until("tern's Established event", ESTABLISH, || {
            Ok(tern.info(PEER_IP).is_some())
        })?;
        tern.announce(PEER_IP, "10.99.0.0/24")?;
        wait_until("FRR has tern's route", ESTABLISH, || {
            frr.has_route("10.99.0.0/24")
        })?;
        tern.planned_restart()?;
        wait_until("FRR saw the session go down", ESTABLISH, || {
            Ok(frr.session_state(TERN_IP)? != "Established")
        })?;
        let neighbor = frr.neighbor(TERN_IP)?;
        artifacts.write("frr-neighbor-after.json", &format!("{neighbor:#}"))?;
        let route = frr.vtysh(&["show bgp ipv4 unicast 10.99.0.0/24 json"])?;
        artifacts.write("frr-route-after.json", &route)?;
        let route: Value = serde_json::from_str(&route)?;
        let paths = route["paths"]
            .as_array()
            .context("FRR flushed tern's route")?;
        ensure!(
            paths.iter().any(|p| p["stale"] == true),
            "route kept but not stale: {route:#}"
        );
        ensure!(
            neighbor["messageStats"]["notificationsRecv"] == 0,
            "FRR got a NOTIFICATION: {neighbor:#}"
        );
        ensure!(
            neighbor["lastResetDueTo"]
                .as_str()
                .is_some_and(|r| r.contains("NSF peer closed")),
            "FRR does not treat it as a graceful restart: {neighbor:#}"
        );
        drop(tern);

        // tern comes back (RFC 4724): R bit set, forwarding state preserved (F bit); it
        // re-announces its route and End-of-RIB, and FRR's copy is fresh again.
        let tern = NsSpeaker::start(&tern_ns)?;
        let mut back = tern_peer(PEER_AS);
        back.graceful_restart = Some(GracefulRestartConfig {
            restarting: true,
            forwarding_preserved: true,
            ..GracefulRestartConfig::default()
        });
        tern.set_peers(vec![back]);
        tern.wait_state(PEER_IP, State::Established, ESTABLISH)?;
        wait_until("tern's Established event", ESTABLISH, || {
            Ok(tern.info(PEER_IP).is_some())
        })?;
        let neighbor = frr.neighbor(TERN_IP)?;
        artifacts.write("frr-neighbor-restarted.json", &format!("{neighbor:#}"))?;
        let gr = &neighbor["gracefulRestartInfo"];
        ensure!(
            gr["rBit"] == true && gr["nBit"] == true && gr["ipv4Unicast"]["fBit"] == true,
            "FRR does not see R, N and F from the restarted tern: {gr:#}"
        );
        tern.announce(PEER_IP, "10.99.0.0/24")?;
        wait_until("FRR's copy of the route no longer stale", ESTABLISH, || {
            let route: Value =
                serde_json::from_str(&frr.vtysh(&["show bgp ipv4 unicast 10.99.0.0/24 json"])?)?;
            let paths = route["paths"].as_array().cloned().unwrap_or_default();
            Ok(
                if !paths.is_empty() && paths.iter().all(|p| p["stale"] != true) {
                    Check::Ready(())
                } else {
                    pending(format!("{route}"))
                },
            )
        })?;
        wait_until("FRR received tern's End-of-RIB", ESTABLISH, || {
            let neighbor = frr.neighbor(TERN_IP)?;
            Ok(
                neighbor["gracefulRestartInfo"]["ipv4Unicast"]["endOfRibStatus"]["endOfRibRecv"]
                    == true,
            )
        })?;
        Ok(())
    });
}

/// An IPv6 session (IPv6 unicast over the dual-stack listener) with GoBGP.
#[test]
fn ns_sessions_gobgp_ipv6() {
    run_scenario("sessions-gobgp-v6", &[BASE, GOBGP], |artifacts| {
        let (tern_ns, peer_ns) = topology("gobgp6")?;
        let mut neighbor = GobgpNeighbor::new(TERN_IP6, TERN_AS, &[Family::Ipv6Unicast]);
        neighbor.graceful_restart = true;
        let gobgp = Gobgp::start(
            &peer_ns,
            artifacts,
            "gobgp",
            &GobgpConfig::new(PEER_AS, PEER_IP).with_neighbor(neighbor),
        )?;
        let tern = NsSpeaker::start(&tern_ns)?;
        let mut v6 = PeerConfig::new(PEER_IP6.parse()?, PEER_AS, TERN_AS, TERN_IP.parse()?);
        v6.source_address = Some(TERN_IP6.parse()?);
        tern.set_peers(vec![v6]);
        tern.wait_state(PEER_IP6, State::Established, ESTABLISH)?;
        wait_until("GoBGP's IPv6 session Established", ESTABLISH, || {
            Ok(gobgp.session_state(TERN_IP6)? == "Established")
        })?;
        let info = tern.info(PEER_IP6).context("no Established event")?;
        ensure!(
            info.families == vec![bgp_proto::Family::IPV6_UNICAST],
            "families {:?}",
            info.families
        );
        ensure!(info.graceful_restart_negotiated());
        Ok(())
    });
}

/// The interface index of `dev` in `ns`.
fn ifindex(ns: &Netns, dev: &str) -> Result<u32> {
    let out = ns.ip(["-j", "link", "show", dev])?;
    let links: Value = serde_json::from_str(&out)?;
    links[0]["ifindex"]
        .as_u64()
        .map(|i| i as u32)
        .context("no ifindex")
}

/// IPv4 unicast over a link-local IPv6 session (RFC 8950 extended next hop) with BIRD, the
/// Calico pain point of one daemon for both families on IPv6-only links.
#[test]
fn ns_sessions_bird_link_local() {
    run_scenario("sessions-bird-ll", &[BASE, BIRD], |artifacts| {
        let (tern_ns, peer_ns) = topology("birdll")?;
        tern_ns.add_address("eth0", "fe80::1/64")?;
        peer_ns.add_address("eth0", "fe80::2/64")?;
        let mut bird_peer = BirdPeer::new(
            "tern",
            "fe80::2",
            PEER_AS,
            "fe80::1%eth0",
            TERN_AS,
            &[Family::Ipv4Unicast],
        );
        bird_peer.channel_extra.push("extended next hop on;".into());
        let bird = Bird::start(
            &peer_ns,
            artifacts,
            "bird",
            &BirdConfig::new(PEER_IP).with_peer(bird_peer),
        )?;
        let tern = NsSpeaker::start(&tern_ns)?;
        let mut ll = PeerConfig::new("fe80::2".parse()?, PEER_AS, TERN_AS, TERN_IP.parse()?);
        ll.families = vec![bgp_proto::Family::IPV4_UNICAST];
        ll.source_address = Some("fe80::1".parse()?);
        ll.scope_id = Some(ifindex(&tern_ns, "eth0")?);
        ll.extended_next_hop = true;
        tern.set_peers(vec![ll]);
        tern.wait_state("fe80::2", State::Established, ESTABLISH)?;
        wait_until("BIRD's session Established", ESTABLISH, || {
            Ok(bird.bgp_state("tern")? == "Established")
        })?;
        let out = bird.birdc(&["show", "protocols", "all", "tern"])?;
        artifacts.write("bird-protocols.txt", &out)?;
        let neighbor_caps = out
            .split("Neighbor capabilities")
            .nth(1)
            .context("no neighbor capabilities")?;
        ensure!(
            neighbor_caps.contains("Extended next hop"),
            "BIRD does not see RFC 8950 from tern:\n{out}"
        );
        let info = tern.info("fe80::2").context("no Established event")?;
        ensure!(
            info.codec.extended_next_hop_ipv4,
            "extended next hop not negotiated"
        );
        ensure!(info.families == vec![bgp_proto::Family::IPV4_UNICAST]);
        Ok(())
    });
}
