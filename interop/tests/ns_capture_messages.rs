//! Scenario `capture-messages` (interop/scenarios/capture-messages/README.md): BIRD 2, GoBGP
//! and FRR peer over IPv4 and IPv6 on one LAN with many capabilities on, announce routes with
//! every common attribute, withdraw some, refresh routes and shut sessions down with an
//! RFC 9003 message, all while tcpdump records the LAN. The capture is split into BGP
//! messages (tshark TCP reassembly) and the test checks that every kind of message expected
//! from each implementation was captured.
//!
//! With `UPDATE_CAPTURES=1` it also rewrites `fixtures/messages/captured/*.hex` (the golden
//! vectors of `bgp-proto`) and that directory's README.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use interop::capture::classify::summarize_open;
use interop::capture::{self, DecodeContext, FixtureVector, OpenSummary};
use interop::netns::run_host;
use interop::peers::bird::{BirdRoute, BirdStatic};
use interop::prelude::*;

/// A test on a vector's name (after `<impl>-`).
type NamePredicate<'a> = &'a dyn Fn(&str) -> bool;

const TIMEOUT: Duration = Duration::from_secs(60);

const BIRD4: &str = "10.0.0.1";
const GOBGP4: &str = "10.0.0.2";
const FRR4: &str = "10.0.0.3";
const BIRD6: &str = "fd00::1";
const GOBGP6: &str = "fd00::2";
const FRR6: &str = "fd00::3";
const BIRD_AS: u32 = 65001;
const GOBGP_AS: u32 = 65002;
/// FRR's AS (a 4-octet one); BIRD uses it as its local AS towards FRR, so BIRD <-> FRR is
/// iBGP. Over the BIRD <-> GoBGP IPv6 session, where BIRD disables 4-octet AS, FRR's routes
/// travel with AS_TRANS in AS_PATH and the real path in AS4_PATH.
const FRR_AS: u32 = 4_200_000_003;

const BIRD_SHUTDOWN: &str = "tern capture: BIRD administrative shutdown";
const FRR_SHUTDOWN: &str = "tern capture: FRR administrative shutdown";
const GOBGP_SHUTDOWN: &str = "tern capture: GoBGP administrative shutdown";

fn route(prefix: &str, attributes: &[&str]) -> BirdRoute {
    BirdRoute {
        prefix: prefix.to_owned(),
        attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
    }
}

fn bird_config() -> BirdConfig {
    let v4 = [Family::Ipv4Unicast];
    let v6 = [Family::Ipv6Unicast];
    let ebgp_extras = |mut peer: BirdPeer| {
        let two_octet = peer.families == [Family::Ipv6Unicast];
        peer.extra = vec![
            "graceful restart on;".into(),
            "long lived graceful restart on;".into(),
            "enable extended messages on;".into(),
            "advertise hostname on;".into(),
            "local role peer;".into(),
        ];
        if two_octet {
            // No 4-octet AS on the IPv6 session: 2-octet AS_PATH and AS4_PATH vectors.
            peer.extra.push("enable as4 off;".into());
        }
        // ADD-PATH on the IPv4 session only, so that both kinds of UPDATE are captured.
        if peer.families == [Family::Ipv4Unicast] {
            peer.channel_extra = vec!["add paths on;".into()];
        }
        peer
    };
    let ibgp_extras = |mut peer: BirdPeer| {
        peer.extra = vec![
            "long lived graceful restart on;".into(),
            "enable extended messages on;".into(),
        ];
        peer
    };
    let attrs = [
        "bgp_med = 50;",
        "bgp_community.add((65001,100));",
        "bgp_large_community.add((65001,1,2));",
        "bgp_ext_community.add((rt,65001,7));",
    ];
    let mut config = BirdConfig::new(BIRD4)
        .with_peer(ebgp_extras(BirdPeer::new(
            "gobgp4", BIRD4, BIRD_AS, GOBGP4, GOBGP_AS, &v4,
        )))
        .with_peer(ebgp_extras(BirdPeer::new(
            "gobgp6", BIRD6, BIRD_AS, GOBGP6, GOBGP_AS, &v6,
        )))
        .with_peer(ibgp_extras(
            BirdPeer::new("frr4", BIRD4, FRR_AS, FRR4, FRR_AS, &v4).calico(),
        ))
        .with_peer(ibgp_extras(
            BirdPeer::new("frr6", BIRD6, FRR_AS, FRR6, FRR_AS, &v6).calico(),
        ));
    config.statics = vec![
        BirdStatic {
            name: "own4".into(),
            family: Family::Ipv4Unicast,
            routes: vec![route("192.0.2.0/24", &attrs), route("192.0.2.128/25", &[])],
        },
        BirdStatic {
            name: "own6".into(),
            family: Family::Ipv6Unicast,
            routes: vec![route("2001:db8:1::/48", &attrs)],
        },
        BirdStatic {
            name: "extra4".into(),
            family: Family::Ipv4Unicast,
            routes: vec![route("198.18.1.0/24", &[])],
        },
        BirdStatic {
            name: "extra6".into(),
            family: Family::Ipv6Unicast,
            routes: vec![route("2001:db8:1:ff00::/56", &[])],
        },
    ];
    config
}

fn gobgp_config() -> GobgpConfig {
    let mut config = GobgpConfig::new(GOBGP_AS, GOBGP4);
    for (address, asn) in [
        (BIRD4, BIRD_AS),
        (BIRD6, BIRD_AS),
        (FRR4, FRR_AS),
        (FRR6, FRR_AS),
    ] {
        let mut n = GobgpNeighbor::new(address, asn, &[Family::of(address)]);
        // ADD-PATH only with BIRD over IPv4 (BIRD's channel option matches).
        n.add_paths = address == BIRD4;
        n.graceful_restart = true;
        n.long_lived_graceful_restart = true;
        config = config.with_neighbor(n);
    }
    config
}

fn frr_config() -> FrrConfig {
    let mut config = FrrConfig::new("frr-capture", FRR_AS, FRR4);
    config.router_extra = vec![
        "bgp graceful-restart".into(),
        "bgp long-lived-graceful-restart stale-time 300".into(),
    ];
    for (address, asn) in [
        (BIRD4, FRR_AS),
        (BIRD6, FRR_AS),
        (GOBGP4, GOBGP_AS),
        (GOBGP6, GOBGP_AS),
    ] {
        let mut n = FrrNeighbor::new(address, asn, &[Family::of(address)]);
        if asn == FRR_AS {
            // Towards BIRD (iBGP, Calico-style with `add paths on`).
            n.family_options = vec!["addpath-tx-all-paths".into()];
        } else {
            n.options = vec!["local-role peer".into()];
        }
        config = config.with_neighbor(n);
    }
    config.networks = vec![
        ("203.0.113.0/24".into(), Some("SET".into())),
        ("2001:db8:3::/48".into(), Some("SET".into())),
        ("198.18.3.0/24".into(), None),
        ("2001:db8:3:ff00::/56".into(), None),
    ];
    config.tail = vec![
        "route-map SET permit 10".into(),
        " set metric 30".into(),
        " set local-preference 200".into(),
        " set community 65003:1 65003:2".into(),
        " set large-community 65003:1:1".into(),
        " set extcommunity rt 65003:9".into(),
        "!".into(),
    ];
    config
}

fn established(state: String) -> Check<()> {
    if state == "Established" {
        Check::Ready(())
    } else {
        pending(state)
    }
}

fn not_established(state: String) -> Check<()> {
    if state != "Established" {
        Check::Ready(())
    } else {
        pending(state)
    }
}

/// Which implementation owns an address of the LAN.
fn speaker(ip: IpAddr) -> &'static str {
    match ip.to_string().as_str() {
        BIRD4 | BIRD6 => "bird",
        GOBGP4 | GOBGP6 => "gobgp",
        FRR4 | FRR6 => "frr",
        _ => "unknown",
    }
}

/// `bird --version` and friends, e.g. `BIRD 2.0.12`.
fn versions() -> Result<BTreeMap<&'static str, String>> {
    let mut map = BTreeMap::new();
    let version = |program: &str| -> Result<String> {
        let out = std::process::Command::new(program)
            .arg("--version")
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        text.split_whitespace()
            .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
            .map(str::to_owned)
            .with_context(|| format!("no version in {program} --version: {text}"))
    };
    map.insert("bird", format!("BIRD {}", version("bird")?));
    map.insert("gobgp", format!("GoBGP {}", version("gobgpd")?));
    map.insert("frr", format!("FRR {}", version("/usr/lib/frr/bgpd")?));
    Ok(map)
}

/// Splits the capture into named vectors (first message of each name wins).
fn vectors(pcap: &std::path::Path) -> Result<BTreeMap<String, FixtureVector>> {
    let flows = capture::bgp_flows(pcap)?;
    ensure!(!flows.is_empty(), "no BGP data in {}", pcap.display());
    let versions = versions()?;
    let date = run_host("date", ["-u", "+%F"])?.trim().to_owned();
    let opens: BTreeMap<(u32, IpAddr), OpenSummary> = flows
        .iter()
        .filter_map(|f| {
            let open = summarize_open(f.messages.first()?)?;
            Some(((f.stream, f.sender.ip()), open))
        })
        .collect();
    let mut vectors = BTreeMap::new();
    for flow in &flows {
        let (Some(sent), Some(received)) = (
            opens.get(&(flow.stream, flow.sender.ip())),
            opens.get(&(flow.stream, flow.receiver.ip())),
        ) else {
            continue; // a connection that never exchanged OPENs both ways
        };
        let context = DecodeContext::negotiated(sent, received);
        let from = speaker(flow.sender.ip());
        let to = speaker(flow.receiver.ip());
        let transport = if flow.sender.is_ipv6() {
            "ipv6"
        } else {
            "ipv4"
        };
        let ibgp = if (from, to) == ("bird", "frr") || (from, to) == ("frr", "bird") {
            "iBGP"
        } else {
            "eBGP"
        };
        for (index, message) in flow.messages.iter().enumerate() {
            let Some(kind) = capture::describe(message, &context) else {
                bail!(
                    "unclassifiable message {index} of stream {} from {from}",
                    flow.stream
                );
            };
            let name = if kind == "open" {
                format!("{from}-open-to-{to}-{transport}")
            } else {
                format!("{from}-{kind}")
            };
            vectors.entry(name.clone()).or_insert_with(|| FixtureVector {
                name,
                source: format!(
                    "{} -> {}, tcpdump on the LAN bridge of interop test ns_capture_messages, \
                     split with tshark follow,tcp,raw, {date}",
                    versions[from], versions[to]
                ),
                notes: vec![format!(
                    "session: {from} {} -> {to} {}, {ibgp} over {transport}; message {} of its direction",
                    flow.sender.ip(),
                    flow.receiver.ip(),
                    index + 1
                )],
                context: context.clone(),
                message: message.clone(),
            });
        }
    }
    Ok(vectors)
}

fn write_fixtures(vectors: &BTreeMap<String, FixtureVector>) -> Result<()> {
    let dir = capture::captured_fixtures_dir();
    if dir.exists() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "hex") {
                std::fs::remove_file(path)?;
            }
        }
    }
    for vector in vectors.values() {
        capture::write_vector(&dir, vector)?;
    }
    let mut readme = String::from(include_str!("../capture/README.head.md"));
    let _ = writeln!(
        readme,
        "\n## Vectors\n\n| file | sent by -> received by | session |\n|---|---|---|"
    );
    for vector in vectors.values() {
        let mut words = vector.source.split(", tcpdump");
        let _ = writeln!(
            readme,
            "| `{}.hex` | {} | {} |",
            vector.name,
            words.next().unwrap_or(""),
            vector
                .notes
                .first()
                .map(|n| n.trim_start_matches("session: "))
                .unwrap_or("")
        );
    }
    std::fs::write(dir.join("README.md"), readme)?;
    println!("wrote {} vectors to {}", vectors.len(), dir.display());
    Ok(())
}

#[test]
fn ns_capture_messages() {
    run_scenario(
        "capture-messages",
        &[BASE, BIRD, GOBGP, FRR, TSHARK],
        |artifacts| {
            let lan = Switch::new("lan")?;
            let bird_ns = Netns::new("bird")?;
            let gobgp_ns = Netns::new("gobgp")?;
            let frr_ns = Netns::new("frr")?;
            lan.attach_with_mac(
                &bird_ns,
                "eth0",
                Some("02:00:00:00:00:01"),
                &["10.0.0.1/24", "fd00::1/64"],
            )?;
            lan.attach_with_mac(
                &gobgp_ns,
                "eth0",
                Some("02:00:00:00:00:02"),
                &["10.0.0.2/24", "fd00::2/64"],
            )?;
            lan.attach_with_mac(
                &frr_ns,
                "eth0",
                Some("02:00:00:00:00:03"),
                &["10.0.0.3/24", "fd00::3/64"],
            )?;
            let mut pcap = artifacts.capture(lan.netns(), BRIDGE, "lan.pcap")?;

            let frr = Frr::start(&frr_ns, artifacts, "frr", &frr_config())?;
            let gobgp = Gobgp::start(&gobgp_ns, artifacts, "gobgp", &gobgp_config())?;
            let bird = Bird::start(&bird_ns, artifacts, "bird", &bird_config())?;

            // 1. Six sessions Established, seen from both ends.
            for proto in ["gobgp4", "gobgp6", "frr4", "frr6"] {
                wait_until(&format!("BIRD {proto} Established"), TIMEOUT, || {
                    Ok(established(bird.bgp_state(proto)?))
                })?;
            }
            for address in [BIRD4, BIRD6, FRR4, FRR6] {
                wait_until(&format!("GoBGP {address} Established"), TIMEOUT, || {
                    Ok(established(gobgp.session_state(address)?))
                })?;
            }
            for address in [BIRD4, BIRD6, GOBGP4, GOBGP6] {
                wait_until(&format!("FRR {address} Established"), TIMEOUT, || {
                    Ok(established(frr.session_state(address)?))
                })?;
            }

            // 2. Announcements with attributes; every route reaches both other speakers.
            gobgp.announce(
                "198.51.100.0/24",
                &[
                    "origin",
                    "igp",
                    "med",
                    "20",
                    "community",
                    "65002:7",
                    "large-community",
                    "65002:1:7",
                ],
            )?;
            gobgp.announce(
                "2001:db8:2::/48",
                &["origin", "igp", "community", "65002:8"],
            )?;
            let bird_routes = [
                "192.0.2.0/24",
                "192.0.2.128/25",
                "2001:db8:1::/48",
                "198.18.1.0/24",
                "2001:db8:1:ff00::/56",
            ];
            let gobgp_routes = ["198.51.100.0/24", "2001:db8:2::/48"];
            let frr_routes = [
                "203.0.113.0/24",
                "2001:db8:3::/48",
                "198.18.3.0/24",
                "2001:db8:3:ff00::/56",
            ];
            for prefix in bird_routes.iter().chain(&frr_routes) {
                wait_until(&format!("{prefix} at GoBGP"), TIMEOUT, || {
                    gobgp.has_route(prefix)
                })?;
            }
            for prefix in bird_routes.iter().chain(&gobgp_routes) {
                wait_until(&format!("{prefix} at FRR"), TIMEOUT, || {
                    frr.has_route(prefix)
                })?;
            }
            for prefix in frr_routes.iter().chain(&gobgp_routes) {
                wait_until(&format!("{prefix} at BIRD"), TIMEOUT, || {
                    bird.has_route(prefix)
                })?;
            }

            // 3. Withdrawals (IPv4 withdrawn routes and IPv6 MP_UNREACH) from each speaker.
            for prefix in gobgp_routes {
                gobgp.withdraw(prefix)?;
            }
            bird.birdc(&["disable", "extra4"])?;
            bird.birdc(&["disable", "extra6"])?;
            frr.configure_bgp(
                FRR_AS,
                &["address-family ipv4 unicast", "no network 198.18.3.0/24"],
            )?;
            frr.configure_bgp(
                FRR_AS,
                &[
                    "address-family ipv6 unicast",
                    "no network 2001:db8:3:ff00::/56",
                ],
            )?;
            for prefix in [
                "198.51.100.0/24",
                "2001:db8:2::/48",
                "198.18.3.0/24",
                "2001:db8:3:ff00::/56",
            ] {
                wait_until(&format!("{prefix} withdrawn at BIRD"), TIMEOUT, || {
                    Ok(!bird.has_route(prefix)?)
                })?;
            }
            for prefix in [
                "198.18.1.0/24",
                "2001:db8:1:ff00::/56",
                "198.18.3.0/24",
                "2001:db8:3:ff00::/56",
            ] {
                wait_until(&format!("{prefix} withdrawn at GoBGP"), TIMEOUT, || {
                    Ok(!gobgp.has_route(prefix)?)
                })?;
            }
            for prefix in [
                "198.18.1.0/24",
                "2001:db8:1:ff00::/56",
                "198.51.100.0/24",
                "2001:db8:2::/48",
            ] {
                wait_until(&format!("{prefix} withdrawn at FRR"), TIMEOUT, || {
                    Ok(!frr.has_route(prefix)?)
                })?;
            }

            // 4. ROUTE-REFRESH from each speaker (enhanced route refresh answers with BoRR/EoRR).
            bird.birdc(&["reload", "in", "gobgp4"])?;
            wait_until("GoBGP received BIRD's ROUTE-REFRESH", TIMEOUT, || {
                Ok(gobgp.refresh_received(BIRD4)? > 0)
            })?;
            bird.birdc(&["reload", "in", "frr6"])?;
            wait_until("FRR received BIRD's ROUTE-REFRESH", TIMEOUT, || {
                Ok(frr.refresh_received(BIRD6)? > 0)
            })?;
            // GoBGP 3.10's `softresetin` re-runs policy over its Adj-RIB-In and sends no
            // ROUTE-REFRESH (checked on the wire), so GoBGP contributes no refresh vector.
            frr.vtysh(&[&format!("clear bgp ipv6 unicast {GOBGP6} soft in")])?;
            wait_until("GoBGP received FRR's ROUTE-REFRESH", TIMEOUT, || {
                Ok(gobgp.refresh_received(FRR6)? > 0)
            })?;
            frr.vtysh(&[&format!("clear bgp ipv4 unicast {BIRD4} soft in")])?;

            // 5. Cease / Administrative Shutdown with an RFC 9003 message from each speaker.
            frr.configure_bgp(
                FRR_AS,
                &[&format!(
                    "neighbor {GOBGP4} shutdown message {FRR_SHUTDOWN}"
                )],
            )?;
            wait_until("GoBGP sees FRR's shutdown", TIMEOUT, || {
                Ok(not_established(gobgp.session_state(FRR4)?))
            })?;
            bird.birdc(&["disable", "frr4", &format!("\"{BIRD_SHUTDOWN}\"")])?;
            wait_until("FRR sees BIRD's shutdown", TIMEOUT, || {
                Ok(not_established(frr.session_state(BIRD4)?))
            })?;
            // `disable` sends no text in GoBGP 3.10; the deprecated `shutdown` carries `--reason`.
            gobgp.cli(&["neighbor", BIRD4, "shutdown", "--reason", GOBGP_SHUTDOWN])?;
            wait_until("BIRD sees GoBGP's shutdown", TIMEOUT, || {
                Ok(not_established(bird.bgp_state("gobgp4")?))
            })?;

            // Every shutdown NOTIFICATION is in the file before the capture stops (matched by its
            // text: collisions may add other Cease NOTIFICATIONs).
            for text in [BIRD_SHUTDOWN, FRR_SHUTDOWN, GOBGP_SHUTDOWN] {
                wait_until(
                    &format!("NOTIFICATION {text:?} in the capture"),
                    TIMEOUT,
                    || Ok(pcap.count(&format!("bgp.type == 3 && frame contains \"{text}\""))? > 0),
                )?;
            }
            let pcap_path = pcap.stop()?;
            let vectors = vectors(&pcap_path)?;
            let names: Vec<&String> = vectors.keys().collect();
            println!("captured {} distinct messages: {names:#?}", vectors.len());

            // What must have been captured from each implementation.
            let mut missing = Vec::new();
            for who in ["bird", "gobgp", "frr"] {
                let has = |pred: NamePredicate| {
                    vectors.keys().any(|n| {
                        n.strip_prefix(who)
                            .and_then(|n| n.strip_prefix('-'))
                            .is_some_and(pred)
                    })
                };
                let refresh: NamePredicate = if who == "gobgp" {
                    &|_| true // GoBGP's CLI cannot make it send ROUTE-REFRESH (see step 4).
                } else {
                    &|n| n.starts_with("route-refresh-") && !n.ends_with("orr")
                };
                let checks: [(&str, NamePredicate); 9] = [
                    ("an OPEN", &|n| n.starts_with("open-to-")),
                    ("a KEEPALIVE", &|n| n == "keepalive"),
                    ("an IPv4 UPDATE with NLRI", &|n| {
                        n.starts_with("update-ipv4")
                            && !n.contains("withdraw")
                            && !n.contains("end-of-rib")
                    }),
                    ("an IPv6 MP_REACH UPDATE", &|n| {
                        n.starts_with("update-ipv6") && n.contains("mp-reach")
                    }),
                    ("an IPv4 withdrawal", &|n| {
                        n.starts_with("update-ipv4") && n.contains("withdraw")
                    }),
                    ("an IPv6 MP_UNREACH withdrawal", &|n| {
                        n.starts_with("update-ipv6") && n.contains("mp-unreach")
                    }),
                    ("End-of-RIB", &|n| n.starts_with("update-end-of-rib")),
                    ("a Cease/Administrative Shutdown with text", &|n| {
                        n == "notification-cease-admin-shutdown-text"
                    }),
                    ("a ROUTE-REFRESH", refresh),
                ];
                for (what, pred) in checks {
                    if !has(pred) {
                        missing.push(format!("{who}: {what}"));
                    }
                }
            }
            ensure!(
                vectors.keys().any(|n| n.contains("link-local")),
                "no IPv6 UPDATE with a link-local next hop was captured"
            );
            ensure!(
                vectors.keys().any(|n| n.contains("addpath")),
                "no UPDATE with ADD-PATH path identifiers was captured"
            );
            ensure!(
                missing.is_empty(),
                "not captured: {missing:#?}\ncaptured: {names:#?}"
            );
            // The shutdown texts travel in the NOTIFICATIONs.
            for (who, text) in [
                ("bird", BIRD_SHUTDOWN),
                ("frr", FRR_SHUTDOWN),
                ("gobgp", GOBGP_SHUTDOWN),
            ] {
                let vector = &vectors[&format!("{who}-notification-cease-admin-shutdown-text")];
                let data = String::from_utf8_lossy(vector.message.get(22..).unwrap_or_default());
                ensure!(
                    data.contains(text),
                    "{who}'s shutdown NOTIFICATION carries {data:?}, not {text:?}"
                );
            }

            if std::env::var_os("UPDATE_CAPTURES").is_some_and(|v| v == "1") {
                write_fixtures(&vectors)?;
            }
            Ok(())
        },
    );
}
