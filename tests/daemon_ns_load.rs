//! Correctness under load (issue 12, item 1): an export must never stall behind a burst of
//! changes. A BIRD injector gives tern a large table (200,000 /32s in an IP pool, so that tern
//! re-advertises them), a BIRD observer receives it; then a raw peer floods ten rounds of
//! 10,000 /32s announced and withdrawn, written at once, and announces them a last time. The
//! observer must hold exactly the final state within seconds (it stalled for minutes: each
//! output pass read 2,048 superseded log entries, sent nothing and waited for the next event),
//! tern's kernel must have it, and later changes (a new BlockAffinity, a withdrawal) must keep
//! arriving.
//!
//! Fairness and truthful output counts (issue 16): a peer that stops reading must not delay
//! another peer's table, and `show peers` must show its backlog, not the table as advertised.
//!
//! Needs root and BIRD 2.

mod daemon_common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use daemon_common::*;
use interop::evil::{RawPeer, RawSession, announce_ipv4_bytes};
use interop::prelude::*;

const TERN_IP: &str = "10.0.0.1";
const INJECTOR_IP: &str = "10.0.0.2";
const OBSERVER_IP: &str = "10.0.0.3";
const FLOODER_IP: &str = "10.0.0.4";
const TERN_AS: u32 = 64512;
const INJECTOR_AS: u32 = 65002;
const OBSERVER_AS: u32 = 65003;
const FLOODER_AS: u32 = 65004;
const SLOW_IP: &str = "10.0.0.5";
const SLOW_AS: u32 = 65005;
/// The injector's table: /32s from 100.64.0.0 up.
const TABLE: u32 = 200_000;
/// The flood: /32s from 100.120.0.0 up, announced and withdrawn this many rounds.
const FLOOD: u32 = 10_000;
const ROUNDS: usize = 10;
/// How long the observer may take to reach the final state after the flood was written.
/// Generous for a loaded 2-core machine; the stall this guards against lasted minutes.
const CATCH_UP: Duration = Duration::from_secs(30);

fn host(base: Ipv4Addr, i: u32) -> ipnet::IpNet {
    ipnet::IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(u32::from(base) + i), 32).unwrap())
}

fn manifests(extra_block: bool) -> String {
    manifests_with(extra_block, &[])
}

fn manifests_with(extra_block: bool, more_peers: &[(&str, u32)]) -> String {
    let mut m = format!(
        r#"
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {{name: default}}
spec: {{asNumber: {TERN_AS}, nodeToNodeMeshEnabled: false}}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {{name: pods}}
spec: {{cidr: 10.244.0.0/16, ipipMode: Never, blockSize: 26}}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {{name: load}}
spec: {{cidr: 100.64.0.0/10, ipipMode: Never, blockSize: 26}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {{name: n1}}
spec: {{bgp: {{ipv4Address: {TERN_IP}/24}}}}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {{name: n1-a}}
spec: {{state: confirmed, node: n1, cidr: 10.244.1.0/26, type: host}}
"#
    );
    if extra_block {
        m.push_str(
            "---\napiVersion: projectcalico.org/v3\nkind: BlockAffinity\nmetadata: {name: n1-b}\n\
             spec: {state: confirmed, node: n1, cidr: 10.244.1.64/26, type: host}\n",
        );
    }
    for (ip, asn) in [
        (INJECTOR_IP, INJECTOR_AS),
        (OBSERVER_IP, OBSERVER_AS),
        (FLOODER_IP, FLOODER_AS),
    ]
    .into_iter()
    .chain(more_peers.iter().copied())
    {
        m.push_str(&format!(
            "---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: p-{}}}\nspec: {{peerIP: {ip}, asNumber: {asn}}}\n",
            ip.replace('.', "-")
        ));
    }
    m
}

/// The first number of `birdc show route [where ...] count` (`N of M routes for K networks`).
fn bird_count(bird: &Bird, filter: &[&str]) -> Result<u64> {
    let mut args = vec!["show", "route"];
    args.extend_from_slice(filter);
    args.push("count");
    let out = bird.birdc(&args)?;
    out.lines()
        .find_map(|l| {
            let l = l.trim_start_matches("0014-").trim();
            l.contains(" routes for ")
                .then(|| l.split_whitespace().next()?.parse().ok())
                .flatten()
        })
        .with_context(|| format!("no route count in: {out}"))
}

/// Ready once the observer's route count (optionally filtered) is `want`; else says what it is.
fn count_is(bird: &Bird, filter: &[&str], want: u64) -> Result<Check<()>> {
    let n = bird_count(bird, filter)?;
    Ok(if n == want {
        Check::Ready(())
    } else {
        pending(format!("{n} routes, want {want}"))
    })
}

/// Routes of tern (protocol `bird`) in the kernel under `root`.
fn kernel_count(ns: &Netns, root: &str) -> Result<usize> {
    let out = ns.ip(["route", "show", "root", root, "proto", "bird"])?;
    Ok(out.lines().filter(|l| !l.trim().is_empty()).count())
}

/// Namespaces `(label, address)` on one LAN (a /24 each on `eth0`).
fn lan(hosts: &[(&str, &str)]) -> Result<(Switch, Vec<Netns>)> {
    let lan = Switch::new("lan")?;
    let mut nss = Vec::new();
    for (label, ip) in hosts {
        let ns = Netns::new(label)?;
        lan.attach(&ns, "eth0", &[&format!("{ip}/24")])?;
        nss.push(ns);
    }
    Ok((lan, nss))
}

/// The BIRD injector: `routes` /32s from 100.64.0.0 up (announced in reverse order when
/// `reversed`), over eBGP to tern; no kernel protocol.
fn injector(ns: &Netns, artifacts: &Artifacts, routes: u32, reversed: bool) -> Result<Bird> {
    let mut table: Vec<String> = (0..routes)
        .map(|i| host(Ipv4Addr::new(100, 64, 0, 0), i).to_string())
        .collect();
    if reversed {
        table.reverse();
    }
    let table_refs: Vec<&str> = table.iter().map(String::as_str).collect();
    let mut config = BirdConfig::new(INJECTOR_IP)
        .with_static("inject", &table_refs)
        .with_peer(BirdPeer::new(
            "tern",
            INJECTOR_IP,
            INJECTOR_AS,
            TERN_IP,
            TERN_AS,
            &[Family::Ipv4Unicast],
        ));
    config.kernel = false;
    Bird::start(ns, artifacts, "injector", &config)
}

/// The BIRD observer: receives tern's routes over eBGP; no kernel protocol.
fn observer(ns: &Netns, artifacts: &Artifacts) -> Result<Bird> {
    let mut config = BirdConfig::new(OBSERVER_IP).with_peer(BirdPeer::new(
        "tern",
        OBSERVER_IP,
        OBSERVER_AS,
        TERN_IP,
        TERN_AS,
        &[Family::Ipv4Unicast],
    ));
    config.kernel = false;
    Bird::start(ns, artifacts, "observer", &config)
}

/// Keeps a raw session alive (reads whatever tern sends, answers with KEEPALIVEs) on a thread.
struct Drain {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<RawPeer>>>,
}

impl Drain {
    fn start(mut peer: RawPeer) -> Drain {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                // Sends a KEEPALIVE, reads for a while, fails on a NOTIFICATION or a close.
                peer.stay_up_for(Duration::from_millis(200))?;
            }
            Ok(peer)
        });
        Drain {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Result<RawPeer> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().context("drain already finished")?;
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("drain thread panicked"))?
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn ns_export_does_not_stall_after_a_flood() {
    run_scenario("export-after-flood", &[BASE, BIRD], |artifacts| {
        let (_lan, nss) = lan(&[
            ("tern", TERN_IP),
            ("inj", INJECTOR_IP),
            ("obs", OBSERVER_IP),
            ("flood", FLOODER_IP),
        ])?;
        let (tern_ns, inj_ns, obs_ns, flood_ns) = (&nss[0], &nss[1], &nss[2], &nss[3]);

        let _injector = injector(inj_ns, artifacts, TABLE, false)?;
        let observer = observer(obs_ns, artifacts)?;

        let node = TernNode::write(artifacts, "n1", &manifests(false), "")?;
        let manifest_path = node.dir.join("resources").join("cluster.yaml");
        let _tern = node.start(tern_ns, artifacts)?;

        // The observer holds the whole table and tern's block.
        let base = u64::from(TABLE) + 1;
        wait_until("the observer holds the injector's table", CONVERGE, || {
            count_is(&observer, &["protocol", "tern"], base)
        })?;

        let mut flooder = RawPeer::establish(
            flood_ns,
            SocketAddr::new(TERN_IP.parse()?, 179),
            RawSession {
                families: vec![bgp_proto::Family::IPV4_UNICAST],
                ..RawSession::new(FLOODER_AS, FLOODER_IP.parse()?)
            },
            CONVERGE,
        )?;
        let flood: Vec<ipnet::IpNet> = (0..FLOOD)
            .map(|i| host(Ipv4Addr::new(100, 120, 0, 0), i))
            .collect();
        let next_hop: Ipv4Addr = FLOODER_IP.parse()?;
        let announce: Vec<u8> = announce_ipv4_bytes(FLOODER_AS, &flood, next_hop)?.concat();
        let withdraw = withdraw_bytes(&flood)?;
        let mut burst = Vec::new();
        for _ in 0..ROUNDS {
            burst.extend_from_slice(&announce);
            burst.extend_from_slice(&withdraw);
        }
        burst.extend_from_slice(&announce);
        flooder.send_raw(&burst)?;
        let written = Instant::now();
        let drain = Drain::start(flooder);

        // Exactly the final state: the table, the block and the flood's 10,000 /32s.
        let final_count = base + u64::from(FLOOD);
        let caught_up = wait_until("the observer reaches the final state", CATCH_UP, || {
            count_is(&observer, &["protocol", "tern"], final_count)
        });
        let elapsed = written.elapsed();
        artifacts.write(
            "catch-up.txt",
            &format!(
                "observer caught up after {elapsed:?}: {}\n",
                caught_up
                    .as_ref()
                    .map(|_| "ok".to_owned())
                    .unwrap_or_else(|e| format!("{e:#}"))
            ),
        )?;
        caught_up?;
        let flood_at_observer = bird_count(&observer, &["where", "net", "~", "[100.120.0.0/16+]"])?;
        ensure!(
            flood_at_observer == u64::from(FLOOD),
            "the observer has {flood_at_observer} of the flood's prefixes"
        );
        // tern's kernel agrees: the table and the flood, via their peers.
        wait_until("tern's kernel has the final state", CONVERGE, || {
            Ok(kernel_count(tern_ns, "100.120.0.0/16")? == FLOOD as usize
                && kernel_count(tern_ns, "100.64.0.0/13")? == TABLE as usize)
        })?;

        // Later changes keep arriving: a new block, then the flood withdrawn.
        std::fs::write(&manifest_path, manifests(true))?;
        let got_block = wait_until("the observer gets the new block", CATCH_UP, || {
            observer.has_route("10.244.1.64/26")
        });
        if got_block.is_err() {
            artifacts.write("tern-peers.json", &node.show("peers").unwrap_or_default())?;
            artifacts.write(
                "observer-protocol.txt",
                &observer.birdc(&["show", "protocols", "all", "tern"])?,
            )?;
        }
        got_block?;
        let mut flooder = drain.finish()?;
        flooder.send_raw(&withdraw)?;
        let _drain = Drain::start(flooder);
        wait_until("the observer loses the flood", CATCH_UP, || {
            count_is(&observer, &["protocol", "tern"], base + 1)
        })?;
        wait_until("tern's kernel loses the flood", CONVERGE, || {
            Ok(kernel_count(tern_ns, "100.120.0.0/16")? == 0)
        })?;
        ensure!(
            observer.bgp_state("tern")? == "Established",
            "observer session"
        );
        Ok(())
    });
}

/// UPDATEs withdrawing `prefixes`, back to back.
fn withdraw_bytes(prefixes: &[ipnet::IpNet]) -> Result<Vec<u8>> {
    use bgp_proto::{Context, Family, Message, Nlri, UpdateBuilder};
    let nlri: Vec<Nlri> = prefixes.iter().map(|p| Nlri::new(*p)).collect();
    let updates = UpdateBuilder::new(Context::default(), Family::IPV4_UNICAST)
        .withdraw(&nlri)
        .build()
        .map_err(|e| anyhow::anyhow!("build withdraw: {e}"))?;
    let mut out = Vec::new();
    for u in updates {
        out.extend_from_slice(
            &Message::Update(u)
                .to_bytes(&Context::default())
                .map_err(|e| anyhow::anyhow!("encode UPDATE: {e}"))?,
        );
    }
    Ok(out)
}

/// One peer of `show peers --json` by address.
fn peer_json(node: &TernNode, address: &str) -> Result<serde_json::Value> {
    node.peers()?
        .into_iter()
        .find(|p| p["address"] == address)
        .with_context(|| format!("no peer {address} in show peers"))
}

/// A peer that stops reading (a raw session that never reads after the OPEN exchange, with a
/// tiny receive buffer, and tern's send buffers small) while a BIRD observer takes the
/// injector's 200,000 routes: the observer gets them all while the slow peer's session waits,
/// and `show peers` reports what was written, not what was queued. The slow peer shows a
/// backlog and not the table as advertised (before: the whole table, as soon as it was
/// queued); the observer shows the table advertised, no backlog, and when it was all written.
/// Once the slow peer reads, its backlog drains and its count catches up.
#[test]
fn ns_a_slow_peer_delays_no_one_and_shows_its_backlog() {
    run_scenario("slow-peer-backlog", &[BASE, BIRD], |artifacts| {
        let (_lan, nss) = lan(&[
            ("tern", TERN_IP),
            ("inj", INJECTOR_IP),
            ("obs", OBSERVER_IP),
            ("slow", SLOW_IP),
        ])?;
        let (tern_ns, inj_ns, obs_ns, slow_ns) = (&nss[0], &nss[1], &nss[2], &nss[3]);
        // Small socket buffers, so that what the slow peer does not read stays in tern.
        tern_ns.sysctl("net.ipv4.tcp_wmem", "4096 16384 65536")?;
        slow_ns.sysctl("net.ipv4.tcp_rmem", "4096 4096 4096")?;

        let node = TernNode::write(
            artifacts,
            "n1",
            &manifests_with(false, &[(SLOW_IP, SLOW_AS)]),
            "",
        )?;
        let _tern = node.start(tern_ns, artifacts)?;
        let observer = observer(obs_ns, artifacts)?;
        // The slow peer: hold time 0 (no KEEPALIVEs needed), never reads after the OPENs.
        let slow = RawPeer::establish(
            slow_ns,
            SocketAddr::new(TERN_IP.parse()?, 179),
            RawSession {
                families: vec![bgp_proto::Family::IPV4_UNICAST],
                hold_time: 0,
                ..RawSession::new(SLOW_AS, SLOW_IP.parse()?)
            },
            CONVERGE,
        )?;
        wait_until("both peers Established", CONVERGE, || {
            Ok(node.peer_state(OBSERVER_IP)? == "Established"
                && node.peer_state(SLOW_IP)? == "Established")
        })?;

        let _injector = injector(inj_ns, artifacts, TABLE, false)?;

        // The observer gets the whole table while the slow peer reads nothing.
        let all = u64::from(TABLE) + 1;
        wait_until("the observer holds the table", CATCH_UP, || {
            count_is(&observer, &["protocol", "tern"], all)
        })?;
        wait_until("tern shows the observer's output written", CONVERGE, || {
            let p = peer_json(&node, OBSERVER_IP)?;
            let advertised = p["prefixes"]["advertised"].as_u64().unwrap_or(0);
            let backlog = p["output"]["backlog_prefixes"].as_u64().unwrap_or(u64::MAX);
            Ok(
                if advertised == all && backlog == 0 && !p["output"]["drained_at"].is_null() {
                    Check::Ready(())
                } else {
                    pending(format!(
                        "observer: advertised {advertised}, backlog {backlog}"
                    ))
                },
            )
        })?;
        let slow_status = peer_json(&node, SLOW_IP)?;
        artifacts.write("slow-peer.json", &slow_status.to_string())?;
        ensure!(
            slow_status["state"] == "Established",
            "the slow peer's session ended: {slow_status}"
        );
        let advertised = slow_status["prefixes"]["advertised"].as_u64().unwrap_or(0);
        let written = slow_status["output"]["prefixes_written"]
            .as_u64()
            .unwrap_or(0);
        let backlog = slow_status["output"]["backlog_prefixes"]
            .as_u64()
            .unwrap_or(0);
        let pending_in_rib = slow_status["output"]["export_pending"].as_bool() == Some(true);
        ensure!(
            advertised < all,
            "the slow peer, which read nothing, shows {advertised} of {all} advertised"
        );
        ensure!(
            backlog > 0 || pending_in_rib,
            "the slow peer shows no backlog: {slow_status}"
        );
        ensure!(
            written < all,
            "the slow peer shows {written} prefixes written of {all}: {slow_status}"
        );
        let out = std::process::Command::new(tern_bin())
            .args(["show", "peers", "--socket"])
            .arg(node.control())
            .output()?;
        let table_view = String::from_utf8_lossy(&out.stdout).into_owned();
        artifacts.write("show-peers.txt", &table_view)?;
        let slow_line = table_view
            .lines()
            .find(|l| l.contains(SLOW_IP))
            .with_context(|| format!("no slow peer in show peers:\n{table_view}"))?;
        ensure!(
            table_view.contains("BACKLOG") && slow_line.contains(&backlog.to_string()),
            "show peers does not show the slow peer's backlog of {backlog}:\n{table_view}"
        );

        // The slow peer starts reading: its backlog drains and the count catches up.
        let _drain = Drain::start(slow);
        wait_until("the slow peer's output is all written", CATCH_UP, || {
            let p = peer_json(&node, SLOW_IP)?;
            let advertised = p["prefixes"]["advertised"].as_u64().unwrap_or(0);
            let backlog = p["output"]["backlog_prefixes"].as_u64().unwrap_or(u64::MAX);
            Ok(if advertised == all && backlog == 0 {
                Check::Ready(())
            } else {
                pending(format!(
                    "slow peer: advertised {advertised}, backlog {backlog}"
                ))
            })
        })?;
        Ok(())
    });
}

/// `tern show routes ARGS` against the node, as text (`--json` among the args for JSON).
fn show_routes(node: &TernNode, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(tern_bin())
        .args(["show", "routes"])
        .args(args)
        .arg("--socket")
        .arg(node.control())
        .output()?;
    ensure!(
        out.status.success(),
        "tern show routes {args:?}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The prefixes of a `show routes --json` answer, in the order given.
fn route_prefixes(json: &str) -> Result<Vec<String>> {
    let routes: Vec<serde_json::Value> = serde_json::from_str(json)?;
    Ok(routes
        .iter()
        .filter_map(|r| r["prefix"].as_str().map(str::to_owned))
        .collect())
}

/// `show routes` pages through a table: `--within` a range, `--limit` a page, `--after` the
/// last prefix of the previous page, in prefix order, and the text output names the command
/// for the next page; `show fib` pages the kernel's routes the same way.
#[test]
fn ns_show_routes_pages_through_a_table() {
    run_scenario("show-routes-pages", &[BASE, BIRD], |artifacts| {
        let lan = Switch::new("lan")?;
        let tern_ns = Netns::new("tern")?;
        let inj_ns = Netns::new("inj")?;
        lan.attach(&tern_ns, "eth0", &[&format!("{TERN_IP}/24")])?;
        lan.attach(&inj_ns, "eth0", &[&format!("{INJECTOR_IP}/24")])?;
        const ROUTES: u32 = 5_000;
        // Announced in reverse order: the pages' order is tern's, not the arrival order.
        let _injector = injector(&inj_ns, artifacts, ROUTES, true)?;
        let node = TernNode::write(artifacts, "n1", &manifests(false), "")?;
        let _tern = node.start(&tern_ns, artifacts)?;
        wait_until("tern holds the injector's table", CONVERGE, || {
            let all = route_prefixes(&show_routes(
                &node,
                &["--within", "100.64.0.0/10", "--json"],
            )?)?;
            Ok(if all.len() == ROUTES as usize {
                Check::Ready(all)
            } else {
                pending(format!("{} of {ROUTES} routes", all.len()))
            })
        })
        .and_then(|all| {
            let mut sorted = all.clone();
            sorted.sort_by_key(|p| p.parse::<ipnet::IpNet>().ok());
            ensure!(all == sorted, "show routes is not in prefix order");
            Ok(())
        })?;

        let page = |args: &[&str]| route_prefixes(&show_routes(&node, args)?);
        let first = page(&["--within", "100.64.16.0/20", "--limit", "5", "--json"])?;
        ensure!(
            first
                == (0..5)
                    .map(|i| format!("100.64.16.{i}/32"))
                    .collect::<Vec<_>>(),
            "first page: {first:?}"
        );
        let second = page(&[
            "--within",
            "100.64.16.0/20",
            "--after",
            "100.64.16.4/32",
            "--limit",
            "5",
            "--json",
        ])?;
        ensure!(
            second
                == (5..10)
                    .map(|i| format!("100.64.16.{i}/32"))
                    .collect::<Vec<_>>(),
            "second page: {second:?}"
        );
        // The range's last page holds what is left: 5,000 /32s from 100.64.0.0 end at
        // 100.64.19.135, so 100.64.19.0/24 has 136.
        let last = page(&["--within", "100.64.19.0/24", "--limit", "500", "--json"])?;
        ensure!(last.len() == 136, "{} routes in 100.64.19.0/24", last.len());
        // The kernel's routes page the same way (`show fib`, answered by the kernel task).
        wait_until("tern's kernel has the table", CONVERGE, || {
            Ok(kernel_count(&tern_ns, "100.64.0.0/10")? == ROUTES as usize)
        })?;
        let out = std::process::Command::new(tern_bin())
            .args(["show", "fib", "--within", "100.64.16.0/20", "--after"])
            .args(["100.64.16.4/32", "--limit", "5", "--json", "--socket"])
            .arg(node.control())
            .output()?;
        ensure!(
            out.status.success(),
            "show fib: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fib: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let fib_prefixes: Vec<&str> = fib["routes"]
            .as_array()
            .context("show fib has no routes")?
            .iter()
            .filter_map(|r| r["prefix"].as_str())
            .collect();
        ensure!(
            fib_prefixes
                == (5..10)
                    .map(|i| format!("100.64.16.{i}/32"))
                    .collect::<Vec<_>>(),
            "show fib page: {fib_prefixes:?}"
        );
        ensure!(
            fib["desired"].as_u64().is_some_and(|n| n > 5),
            "show fib counts the whole table: {}",
            fib["desired"]
        );
        let text = show_routes(&node, &["--within", "100.64.16.0/20", "--limit", "5"])?;
        artifacts.write("page.txt", &text)?;
        ensure!(
            text.contains(
                "next page: tern show routes --after 100.64.16.4/32 --within 100.64.16.0/20 --limit 5"
            ),
            "no next-page hint in:\n{text}"
        );
        Ok(())
    });
}
