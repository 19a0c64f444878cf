//! Scenario `rfc7606` (interop/scenarios/rfc7606/README.md): a raw eBGP peer
//! (`interop::evil::RawPeer`) and a BIRD monitor around `tern run` on one LAN.
//!
//! - `ns_scenario_rfc7606_frr_cases`: every eBGP case of FRR's RFC 7606 topotests
//!   (`interop::rfc7606_cases`), each checked for the outcome the RFCs require: at the BIRD
//!   monitor (route there or not), in a capture of what tern sent the monitor (a discarded
//!   attribute never passed on; an unknown transitive one passed on with Partial), and on the
//!   raw session (never reset).
//! - `ns_rfc7606_ipv4_mp_reach_disables_ipv4`: a route whose NEXT_HOP is tern's own address
//!   is never installed nor passed on; a malformed MP_REACH_NLRI for IPv4 unicast
//!   withdraws the peer's earlier IPv4 routes (the monitor sees them go) and IPv4 routes it sends
//!   later are ignored; the session stays up.
//! - `ns_max_prefix_cease_and_retry`: a peer limited to 1,000 prefixes that sends 1,001 gets
//!   Cease/1 with AFI 1, SAFI 1, limit 1000 (checked in the capture), its connections are refused
//!   until the restart time has passed, then a new session comes up; the monitor's session is
//!   untouched.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use bgp_proto::{Context, Message};
use interop::capture::pcap::bgp_flows;
use interop::evil::{Incoming, RawPeer, RawSession, TYPE_UPDATE, hex, message_type};
use interop::prelude::*;
use interop::rfc7606_cases::{Outcome, cases, update_bytes};
use interop::tern_node::{Manifests, TernNode};
use ipnet::IpNet;

const TIMEOUT: Duration = Duration::from_secs(90);
const TERN_IP: &str = "10.0.0.1";
const EVIL_IP: &str = "10.0.0.2";
const BIRD_IP: &str = "10.0.0.3";
const TERN_AS: u32 = 64512;
const EVIL_AS: u32 = 65001;
const BIRD_AS: u32 = 65003;

fn net(s: &str) -> IpNet {
    s.parse().expect("prefix literal")
}

fn evil_hop() -> Ipv4Addr {
    EVIL_IP.parse().expect("literal")
}

fn tern_addr() -> SocketAddr {
    SocketAddr::new(TERN_IP.parse().expect("literal"), 179)
}

/// The LAN: tern, the raw peer and the BIRD monitor, and a capture on the bridge.
struct Lan {
    _switch: Switch,
    tern_ns: Netns,
    evil_ns: Netns,
    _bird_ns: Netns,
    tern: TernNode,
    bird: Bird,
    pcap: Capture,
    evil_pcap: Capture,
}

fn lan(artifacts: &Artifacts, extra_settings: &str) -> Result<Lan> {
    let switch = Switch::new("lan")?;
    let tern_ns = Netns::new("tern")?;
    let evil_ns = Netns::new("evil")?;
    let bird_ns = Netns::new("bird")?;
    switch.attach(&tern_ns, "eth0", &[&format!("{TERN_IP}/24")])?;
    switch.attach(&evil_ns, "eth0", &[&format!("{EVIL_IP}/24")])?;
    switch.attach(&bird_ns, "eth0", &[&format!("{BIRD_IP}/24")])?;
    // What tern sends the monitor (a capture of the monitor's end: little traffic, so no
    // packet is dropped), and the raw peer's end.
    let pcap = artifacts.capture(&bird_ns, "eth0", "monitor.pcap")?;
    let evil_pcap = artifacts.capture(&evil_ns, "eth0", "evil.pcap")?;
    // The raw peer's routes are inside an IP pool, so Calico's export pipeline passes them on
    // to the monitor.
    let datastore = Manifests::new()
        .bgp_configuration(false, TERN_AS)
        .node("tern-1", &format!("{TERN_IP}/24"), None, &[], None)
        .ippool("pool", "10.0.0.0/8", "Never")
        .block("tern-1", "10.244.1.0/26")
        .bgp_peer("evil", &format!("peerIP: {EVIL_IP}, asNumber: {EVIL_AS}"))
        .bgp_peer(
            "monitor",
            &format!("peerIP: {BIRD_IP}, asNumber: {BIRD_AS}"),
        )
        .write(artifacts, "tern-1-datastore")?;
    let tern = TernNode::start_with(&tern_ns, artifacts, "tern-1", &datastore, extra_settings)?;
    let mut monitor = BirdPeer::new(
        "tern",
        BIRD_IP,
        BIRD_AS,
        TERN_IP,
        TERN_AS,
        &[Family::Ipv4Unicast],
    );
    monitor.passive = true;
    let bird = Bird::start(
        &bird_ns,
        artifacts,
        "monitor",
        &BirdConfig::new(BIRD_IP).with_peer(monitor),
    )?;
    wait_until("monitor Established with tern", TIMEOUT, || {
        Ok(bird.bgp_state("tern")? == "Established")
    })?;
    wait_until("the monitor has tern's block", TIMEOUT, || {
        bird.has_route("10.244.1.0/26")
    })?;
    Ok(Lan {
        _switch: switch,
        tern_ns,
        evil_ns,
        _bird_ns: bird_ns,
        tern,
        bird,
        pcap,
        evil_pcap,
    })
}

fn establish(lan: &Lan) -> Result<RawPeer> {
    wait_until("raw peer Established with tern", TIMEOUT, || {
        RawPeer::establish(
            &lan.evil_ns,
            tern_addr(),
            RawSession::new(EVIL_AS, evil_hop()),
            Duration::from_secs(10),
        )
        .map(Some)
    })
}

/// Every prefix in the monitor's table (`birdc show route`).
fn bird_routes(bird: &Bird) -> Result<BTreeSet<String>> {
    let out = bird.birdc(&["show", "route"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.contains('/') && w.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_owned)
        .collect())
}

/// Announces `sentinel` and waits until the monitor has it: tern has read, and passed on,
/// everything the raw peer sent before it.
fn sync(peer: &mut RawPeer, bird: &Bird, sentinel: &str) -> Result<()> {
    peer.announce_ipv4(&[net(sentinel)], evil_hop())?;
    wait_until(
        &format!("sentinel {sentinel} at the monitor"),
        TIMEOUT,
        || bird.has_route(sentinel),
    )
}

/// The attributes (type, flags) of every UPDATE tern sent the monitor that announces `prefix`.
fn sent_to_monitor(flows: &[interop::capture::pcap::Flow], prefix: &str) -> Vec<Vec<(u8, u8)>> {
    let ctx = Context {
        internal: false,
        ..Context::default()
    };
    let want = net(prefix);
    let mut out = Vec::new();
    for flow in flows {
        if flow.sender.ip().to_string() != TERN_IP || flow.receiver.ip().to_string() != BIRD_IP {
            continue;
        }
        for raw in &flow.messages {
            if message_type(raw) != Some(TYPE_UPDATE) {
                continue;
            }
            let Ok(Message::Update(u)) = Message::decode(raw, &ctx) else {
                continue;
            };
            if u.announced().any(|(_, n)| n.prefix == want) {
                out.push(
                    u.attributes
                        .iter()
                        .map(|a| (a.type_code(), a.flags.0))
                        .collect(),
                );
            }
        }
    }
    out
}

#[test]
fn ns_scenario_rfc7606_frr_cases() {
    run_scenario("rfc7606-frr-cases", &[BASE, BIRD, TSHARK], |artifacts| {
        let mut lan = lan(artifacts, "")?;
        let mut peer = establish(&lan)?;
        let all = cases();
        sync(&mut peer, &lan.bird, "10.99.0.0/24")?;
        // Routes that must disappear are first announced validly.
        let removed: Vec<_> = all
            .iter()
            .filter(|c| matches!(c.tern, Outcome::Withdraw | Outcome::DisableFamily))
            .collect();
        for c in &removed {
            peer.send_raw(&update_bytes(c, EVIL_AS, evil_hop(), true))?;
        }
        sync(&mut peer, &lan.bird, "10.99.1.0/24")?;
        let before = bird_routes(&lan.bird)?;
        let missing: Vec<&str> = removed
            .iter()
            .filter(|c| !before.contains(&c.prefix))
            .map(|c| c.name)
            .collect();
        ensure!(
            missing.is_empty(),
            "valid announcements not at the monitor: {missing:?}"
        );
        // Every case, in FRR's order, then a sentinel: the session must read past all of them.
        for c in &all {
            peer.send_raw(&update_bytes(c, EVIL_AS, evil_hop(), false))?;
        }
        sync(&mut peer, &lan.bird, "10.99.2.0/24")?;
        // BIRD uses type 254 for its own MPLS label stack attribute: it withdraws a route that
        // carries an attribute 254 with other flags ("Malformed mpls_label_stack attribute" in
        // its log). tern passing it on is checked in the capture instead.
        let bird_drops = |name: &str| name == "unknown-fe-transitive";
        let expect_present = |c: &interop::rfc7606_cases::Case| {
            matches!(c.tern, Outcome::Discard | Outcome::Forward) && !bird_drops(c.name)
        };
        let wrong_at_monitor = |routes: &BTreeSet<String>| -> Vec<String> {
            all.iter()
                .filter(|c| routes.contains(&c.prefix) != expect_present(c))
                .map(|c| c.name.to_owned())
                .collect()
        };
        // The withdrawals travel like any update; wait until the monitor agrees (or time out
        // naming the cases that do not).
        // (Within the raw peer's hold time: it sends no KEEPALIVE while the test waits.)
        let mut last_wrong = Vec::new();
        let settled = wait_until(
            "every case's route at the monitor as expected",
            Duration::from_secs(30),
            || {
                let routes = bird_routes(&lan.bird)?;
                last_wrong = wrong_at_monitor(&routes);
                Ok(last_wrong.is_empty().then_some(routes))
            },
        );
        let routes = match settled {
            Ok(r) => r,
            Err(e) => bail!("{e:#}: wrong at the monitor: {last_wrong:?}"),
        };
        peer.keepalive()?;
        // tern's own kernel: installed exactly the routes it kept (never `via 127.0.0.1`).
        let mut last_kernel = Vec::new();
        let kernel_ok = wait_until(
            "every case's route in tern's kernel as expected",
            Duration::from_secs(30),
            || {
                let kernel: BTreeSet<String> =
                    interop::tern_node::kernel_routes(&lan.tern_ns, "bird")?
                        .into_iter()
                        .map(|p| {
                            if p.contains('/') {
                                p
                            } else {
                                format!("{p}/32")
                            }
                        })
                        .collect();
                last_kernel = all
                    .iter()
                    .filter(|c| {
                        kernel.contains(&c.prefix)
                            != matches!(c.tern, Outcome::Discard | Outcome::Forward)
                    })
                    .map(|c| c.name)
                    .collect();
                Ok(last_kernel.is_empty().then_some(()))
            },
        );
        if let Err(e) = kernel_ok {
            bail!("{e:#}: wrong in tern's kernel: {last_kernel:?}");
        }
        ensure!(
            lan.tern.peer_state(EVIL_IP)? == "Established",
            "the raw session did not stay up"
        );
        match peer.read_message(Duration::from_millis(100))? {
            Incoming::Message(m) if message_type(&m) == Some(3) => {
                bail!("tern sent a NOTIFICATION: {}", hex(&m))
            }
            Incoming::Closed { .. } => bail!("tern closed the raw session"),
            _ => {}
        }
        lan.pcap.stop()?;
        let flows = bgp_flows(lan.pcap.path())?;
        let mut table = Vec::new();
        let mut failures = Vec::new();
        for c in &all {
            let at_monitor = routes.contains(&c.prefix);
            let sent = sent_to_monitor(&flows, &c.prefix);
            let attr = c.attribute.map(|a| a.0);
            let problem = match c.tern {
                Outcome::Discard | Outcome::Forward if sent.is_empty() => {
                    Some("never announced to the monitor".to_owned())
                }
                Outcome::Discard => sent
                    .iter()
                    .any(|attrs| attrs.iter().any(|(t, _)| Some(*t) == attr && *t >= 4))
                    .then(|| format!("attribute {attr:?} passed on to the monitor: {sent:?}")),
                // Passed on; an attribute unknown to tern with the Partial bit (RFC 4271 §5).
                Outcome::Forward => (!sent.iter().all(|attrs| {
                    attrs.iter().any(|(t, f)| {
                        let unknown = matches!(
                            bgp_proto::iana::AttributeType::from(*t),
                            bgp_proto::iana::AttributeType::Other(_)
                        );
                        Some(*t) == attr && (!unknown || f & 0x20 != 0)
                    })
                }))
                .then(|| {
                    format!("attribute {attr:?} not passed on (Partial if unknown): {sent:?}")
                }),
                Outcome::Withdraw | Outcome::DisableFamily | Outcome::SessionReset => None,
            };
            let ok = problem.is_none();
            if !ok {
                failures.push(c.name);
            }
            table.push(format!(
                "{:<30} {:<20} {:<20} {:<8} {}",
                c.name,
                c.frr.label(),
                c.tern.label(),
                if at_monitor { "present" } else { "absent" },
                problem.unwrap_or_else(|| "ok".into())
            ));
        }
        println!(
            "{:<30} {:<20} {:<20} {:<8} result",
            "case", "FRR expects", "tern (RFC)", "monitor"
        );
        for line in &table {
            println!("{line}");
        }
        ensure!(failures.is_empty(), "cases failed: {failures:?}");
        ensure!(lan.tern.is_running(), "tern exited: {}", lan.tern.log());
        Ok(())
    });
}

/// An UPDATE whose MP_REACH_NLRI for IPv4 unicast has a next hop length of 9: the NLRI cannot
/// be located (RFC 7606 §7.11).
fn ipv4_mp_reach_malformed() -> Vec<u8> {
    let mut attrs = interop::rfc7606_cases::value(
        "900e0012 0001 01 09 0a0000020000000000 00 180a3201 400101 00 400206 0201 0000fde9",
    );
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + 4 + attrs.len()) as u16).to_be_bytes());
    m.push(2);
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.append(&mut attrs);
    m
}

#[test]
fn ns_rfc7606_ipv4_mp_reach_disables_ipv4() {
    run_scenario("rfc7606-ipv4-disable", &[BASE, BIRD], |artifacts| {
        let lan = lan(artifacts, "")?;
        let mut peer = establish(&lan)?;
        // RFC 4271 §5.1.3: a NEXT_HOP that is tern's own address is treat-as-withdraw: never
        // installed, never passed on.
        peer.announce_ipv4(&[net("10.51.0.0/24")], TERN_IP.parse()?)?;
        sync(&mut peer, &lan.bird, "10.99.0.0/24")?;
        ensure!(
            !lan.bird.has_route("10.51.0.0/24")?,
            "a route via tern's own address reached the monitor"
        );
        ensure!(
            !interop::tern_node::kernel_routes(&lan.tern_ns, "bird")?
                .iter()
                .any(|p| p == "10.51.0.0/24"),
            "a route via tern's own address is in tern's kernel"
        );
        let earlier = ["10.50.0.0/24", "10.50.1.0/24", "10.50.2.0/24"];
        let nets: Vec<IpNet> = earlier.iter().map(|p| net(p)).collect();
        peer.announce_ipv4(&nets, evil_hop())?;
        wait_until("the earlier IPv4 routes at the monitor", TIMEOUT, || {
            let routes = bird_routes(&lan.bird)?;
            Ok(earlier.iter().all(|p| routes.contains(*p)))
        })?;
        peer.send_raw(&ipv4_mp_reach_malformed())?;
        wait_until(
            "the earlier IPv4 routes withdrawn at the monitor",
            TIMEOUT,
            || {
                let routes = bird_routes(&lan.bird)?;
                Ok(earlier.iter().all(|p| !routes.contains(*p)))
            },
        )?;
        // The session stays up; IPv4 from this peer is ignored until it resets. A ROUTE-REFRESH
        // after the announcement: tern's answer proves it read the announcement first.
        peer.announce_ipv4(&[net("10.50.9.0/24")], evil_hop())?;
        let refresh = Message::RouteRefresh(bgp_proto::RouteRefresh::new(
            bgp_proto::Family::IPV4_UNICAST,
        ))
        .to_bytes(&Context::default())?;
        peer.send_raw(&refresh)?;
        let deadline = Instant::now() + TIMEOUT;
        loop {
            ensure!(Instant::now() < deadline, "no answer to the ROUTE-REFRESH");
            match peer.read_message(Duration::from_secs(5))? {
                Incoming::Message(m) if message_type(&m) == Some(TYPE_UPDATE) => {
                    let Ok(Message::Update(u)) = Message::decode(&m, &Context::default()) else {
                        continue;
                    };
                    if u.announced().any(|(_, n)| n.prefix == net("10.244.1.0/26")) {
                        break;
                    }
                }
                Incoming::Message(m) if message_type(&m) == Some(3) => {
                    bail!("session reset: {}", hex(&m))
                }
                Incoming::Closed { .. } => bail!("tern closed the session"),
                _ => {}
            }
        }
        ensure!(
            lan.tern.peer_state(EVIL_IP)? == "Established",
            "session not up"
        );
        let routes = lan.tern.show_json(&["routes"])?.to_string();
        ensure!(
            !routes.contains("10.50.9.0/24"),
            "an IPv4 route of the disabled family was accepted: {routes}"
        );
        ensure!(
            !lan.bird.has_route("10.50.9.0/24")?,
            "the monitor got a route of the disabled family"
        );
        Ok(())
    });
}

#[test]
fn ns_max_prefix_cease_and_retry() {
    const RESTART: u64 = 5;
    let extra =
        format!("\n[bgp.max_prefix.peers.\"{EVIL_IP}\"]\nlimit = 1000\nrestart_time = {RESTART}\n");
    run_scenario("max-prefix", &[BASE, BIRD, TSHARK], |artifacts| {
        let mut lan = lan(artifacts, &extra)?;
        let flaps_before = monitor_flaps(&lan.tern)?;
        let mut peer = establish(&lan)?;
        let prefixes: Vec<IpNet> = (0..1001u32)
            .map(|i| net(&format!("10.60.{}.{}/32", i / 256, i % 256)))
            .collect();
        peer.announce_ipv4(&prefixes[..1000], evil_hop())?;
        wait_until("1000 routes at the monitor", TIMEOUT, || {
            Ok(bird_routes(&lan.bird)?
                .iter()
                .filter(|p| p.starts_with("10.60."))
                .count()
                == 1000)
        })?;
        ensure!(
            lan.tern.peer_state(EVIL_IP)? == "Established",
            "cut at 1000"
        );
        peer.announce_ipv4(&prefixes[1000..], evil_hop())?;
        let notification = peer
            .wait_notification(TIMEOUT)?
            .ok_or_else(|| anyhow::anyhow!("closed without NOTIFICATION"))?;
        let stopped = Instant::now();
        // RFC 4486 §4: Cease (6) / 1, data AFI 1, SAFI 1, limit 1000.
        let expected =
            interop::evil::unhex("ffffffffffffffffffffffffffffffff001c0306 01 0001 01 000003e8")?;
        ensure!(
            notification == expected,
            "NOTIFICATION {} instead of {}",
            hex(&notification),
            hex(&expected)
        );
        drop(peer);
        wait_until(
            "the peer's routes withdrawn at the monitor",
            TIMEOUT,
            || {
                Ok(!bird_routes(&lan.bird)?
                    .iter()
                    .any(|p| p.starts_with("10.60.")))
            },
        )?;
        // Refused during the restart time.
        let early = RawPeer::establish(
            &lan.evil_ns,
            tern_addr(),
            RawSession::new(EVIL_AS, evil_hop()),
            Duration::from_secs(2),
        );
        let early_refused = early.is_err() && stopped.elapsed() < Duration::from_secs(RESTART);
        let mut again = establish(&lan)?;
        let waited = stopped.elapsed();
        println!(
            "new session {waited:?} after the Cease (restart_time {RESTART} s); an attempt during the wait was refused: {early_refused}"
        );
        ensure!(
            waited >= Duration::from_secs(RESTART - 1),
            "a new session after {waited:?}, before the restart time"
        );
        ensure!(
            early_refused,
            "a connection during the restart time was not refused"
        );
        again.announce_ipv4(&prefixes[..10], evil_hop())?;
        wait_until("routes of the new session at the monitor", TIMEOUT, || {
            lan.bird.has_route("10.60.0.9/32")
        })?;
        // The monitor's session was never touched.
        ensure!(lan.bird.bgp_state("tern")? == "Established", "monitor down");
        ensure!(
            monitor_flaps(&lan.tern)? == flaps_before,
            "the monitor's session flapped"
        );
        lan.evil_pcap.stop()?;
        // tshark's view of the NOTIFICATIONs tern sent the raw peer (packet by packet, so a
        // dropped packet elsewhere in the capture does not matter).
        let sent = interop::netns::run_host(
            "tshark",
            [
                "-r",
                &lan.evil_pcap.path().display().to_string(),
                "-Y",
                &format!("bgp.type == 3 && ip.src == {TERN_IP} && ip.dst == {EVIL_IP}"),
                "-T",
                "fields",
                "-e",
                "bgp.notify.major_error",
                "-e",
                "bgp.notify.minor_error_cease",
                "-e",
                "tcp.payload",
            ],
        )?;
        println!("NOTIFICATIONs tern sent the raw peer (code, subcode, payload):\n{sent}");
        let in_capture = sent.lines().any(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            f.first() == Some(&"6")
                && f.get(1) == Some(&"1")
                && f.get(2)
                    .is_some_and(|p| p.replace(':', "").contains(&hex(&expected)))
        });
        ensure!(in_capture, "the Cease/1 NOTIFICATION is not in the capture");
        Ok(())
    });
}

/// The monitor peer's flap count from `tern show peers`.
fn monitor_flaps(tern: &TernNode) -> Result<u64> {
    fn find(v: &serde_json::Value) -> Option<u64> {
        match v {
            serde_json::Value::Object(map) => {
                if map.get("address").and_then(|a| a.as_str()) == Some(BIRD_IP) {
                    return map.get("flaps").and_then(|f| f.as_u64());
                }
                map.values().find_map(find)
            }
            serde_json::Value::Array(list) => list.iter().find_map(find),
            _ => None,
        }
    }
    let peers = tern.show_json(&["peers"])?;
    find(&peers).ok_or_else(|| anyhow::anyhow!("no flaps for the monitor in {peers}"))
}
