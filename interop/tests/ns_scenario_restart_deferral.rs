//! Issue 12, items 2 and 3 (`interop/scenarios/restart-deferral/README.md`): tern's own
//! graceful restart (RFC 4724 §4.1, restarting speaker) against BIRD peers, after `kill -9`.
//!
//! - `ns_scenario_restart_end_of_rib_after_routes`: an injector BIRD sends a table to tern,
//!   an observer BIRD receives it through tern; both are graceful-restart helpers. tern is
//!   killed and restarted: its End-of-RIB to each helper comes only after every route it sends
//!   that helper (capture), neither helper's `show route count` (sampled throughout) drops
//!   below its full table, and a later session reset carries no Restart (R) bit.
//! - `ns_scenario_restart_peer_without_gr`: a BIRD peer without graceful restart; tern is
//!   killed and restarted: `ip monitor route` in tern's namespace shows no deletion of that
//!   peer's routes (kept until re-learned), while a route the peer no longer sends is swept.
//!
//! The table size is `RESTART_TEST_ROUTES` (default 20,000; 200,000 checked by hand, see the
//! README).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use interop::capture::bgp_flows;
use interop::cluster::*;
use interop::prelude::*;

const TIMEOUT: Duration = Duration::from_secs(60);
/// A full table through a debug build on a loaded machine.
const LOAD_TIMEOUT: Duration = Duration::from_secs(300);
const TERN_AS: u32 = 64512;
const TERN_IP: &str = "10.0.0.1";
const INJ_IP: &str = "10.0.0.2";
const INJ_AS: u32 = 65002;
const OBS_IP: &str = "10.0.0.3";
const OBS_AS: u32 = 65003;
const POOL: &str = "10.244.0.0/16";
const BLOCK: &str = "10.244.1.0/26";

/// Routes the injector sends (`RESTART_TEST_ROUTES`, default 20,000).
fn table_size() -> usize {
    std::env::var("RESTART_TEST_ROUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// `n` host routes from 172.16.0.0/12, outside every Calico pool.
fn host_routes(n: usize) -> Vec<String> {
    let base = u32::from(Ipv4Addr::new(172, 16, 0, 0));
    (0..n as u32)
        .map(|i| format!("{}/32", Ipv4Addr::from(base + i)))
        .collect()
}

/// tern's resources: one node with a block, a BGPFilter accepting everything both ways, and a
/// BGPPeer per BIRD (eBGP).
fn cluster(peers: &[(&str, &str, u32)]) -> CalicoCluster {
    let mut cluster = CalicoCluster::new(TERN_AS)
        .with_pool("pool", POOL, IpipMode::Never)
        .with_node("node-a", &format!("{TERN_IP}/24"))
        .with_block("node-a", BLOCK)
        .with_document(
            "apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {name: accept-all}\n\
             spec: {importV4: [{action: Accept}], exportV4: [{action: Accept}]}",
        );
    for (name, ip, asn) in peers {
        cluster = cluster.with_document(&format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: {name}}}\n\
             spec: {{peerIP: {ip}, asNumber: {asn}, filters: [accept-all]}}"
        ));
    }
    cluster
}

fn settings() -> TernSettings {
    let mut s = TernSettings::fast("node-a");
    // Long enough that neither bound decides the outcome here: the helpers keep tern's routes
    // while it is down, and tern's deferral ends by End-of-RIB, not by its timer.
    s.graceful_restart_time = 300;
    s.restart_wait = 240;
    s
}

/// A BIRD peering with tern, graceful restart on (helper) or off.
fn bird_peer(local: &str, local_as: u32, graceful_restart: bool) -> BirdPeer {
    let mut peer = BirdPeer::new(
        "tern",
        local,
        local_as,
        TERN_IP,
        TERN_AS,
        &[Family::Ipv4Unicast],
    );
    peer.extra.push(if graceful_restart {
        "graceful restart on;".into()
    } else {
        "graceful restart off;".into()
    });
    peer.extra.push("connect retry time 1;".into());
    peer
}

/// tern's routes (protocol bird) in a namespace's main IPv4 table.
fn tern_kernel_routes(ns: &Netns) -> Result<BTreeSet<String>> {
    let out = ns.ip(["-4", "route", "show", "proto", "bird"])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let first = words.next()?;
            let prefix = if first == "blackhole" || first == "unreachable" {
                words.next()?
            } else {
                first
            };
            Some(if prefix.contains('/') {
                prefix.to_owned()
            } else {
                format!("{prefix}/32")
            })
        })
        .collect())
}

/// `birdc show route count` sampled from another thread until stopped: the smallest count
/// seen and how many samples were taken.
struct CountSampler<'a> {
    min: usize,
    samples: usize,
    bird: &'a Bird,
}

impl CountSampler<'_> {
    fn run(bird: &Bird, stop: &AtomicBool) -> (usize, usize, Vec<String>) {
        let mut sampler = CountSampler {
            min: usize::MAX,
            samples: 0,
            bird,
        };
        let mut errors = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            match sampler.bird.route_count() {
                Ok(n) => {
                    sampler.min = sampler.min.min(n);
                    sampler.samples += 1;
                }
                Err(e) if errors.len() < 5 => errors.push(format!("{e:#}")),
                Err(_) => {}
            }
            // The sampling period (not a wait for a condition).
            std::thread::sleep(Duration::from_millis(20));
        }
        (sampler.min, sampler.samples, errors)
    }
}

/// One BGP message's announced and withdrawn IPv4 prefixes (no ADD-PATH), or `None` when it is
/// not an UPDATE. An UPDATE with neither (and no attributes) is the IPv4 End-of-RIB.
fn update_nlri(message: &[u8]) -> Option<(usize, usize, bool)> {
    fn count(mut bytes: &[u8]) -> usize {
        let mut n = 0;
        while let Some((&len, rest)) = bytes.split_first() {
            let octets = usize::from(len).div_ceil(8);
            bytes = rest.get(octets..).unwrap_or_default();
            n += 1;
        }
        n
    }
    if message.get(18) != Some(&2) {
        return None;
    }
    let body = message.get(19..)?;
    let withdrawn_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let withdrawn = body.get(2..2 + withdrawn_len)?;
    let rest = body.get(2 + withdrawn_len..)?;
    let attrs_len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    let nlri = rest.get(2 + attrs_len..)?;
    let end_of_rib = withdrawn_len == 0 && attrs_len == 0 && nlri.is_empty();
    Some((count(nlri), count(withdrawn), end_of_rib))
}

/// Whether a BGP OPEN carries the Graceful Restart capability with the Restart State (R) bit.
fn open_has_restart_bit(message: &[u8]) -> bool {
    if message.get(18) != Some(&1) {
        return false;
    }
    let Some(&params_len) = message.get(28) else {
        return false;
    };
    let mut params = message
        .get(29..29 + usize::from(params_len))
        .unwrap_or_default();
    // Optional parameters: type 2 (capabilities), each capability code, length, value.
    while let [kind, len, rest @ ..] = params {
        let value = rest.get(..usize::from(*len)).unwrap_or_default();
        if *kind == 2 {
            let mut caps = value;
            while let [code, len, rest @ ..] = caps {
                let cap = rest.get(..usize::from(*len)).unwrap_or_default();
                if *code == 64 && cap.first().is_some_and(|flags| flags & 0x80 != 0) {
                    return true;
                }
                caps = rest.get(usize::from(*len)..).unwrap_or_default();
            }
        }
        params = rest.get(usize::from(*len)..).unwrap_or_default();
    }
    false
}

/// What tern sent a helper on the session of its restart (the connection from tern's address
/// to `peer` whose OPEN has the R bit): prefixes announced before its first End-of-RIB, after
/// it, and whether an End-of-RIB came at all.
fn sent_after_restart(pcap: &std::path::Path, peer: &str) -> Result<(usize, usize, bool)> {
    let tern: IpAddr = TERN_IP.parse()?;
    let peer: IpAddr = peer.parse()?;
    // A connection collision may leave a second, short connection: take the one that
    // carried the session.
    let flow = bgp_flows(pcap)?
        .into_iter()
        .filter(|f| f.sender.ip() == tern && f.receiver.ip() == peer)
        .filter(|f| f.messages.first().is_some_and(|m| open_has_restart_bit(m)))
        .max_by_key(|f| f.messages.len())
        .with_context(|| format!("no connection from tern to {peer} opens with the R bit"))?;
    let (mut before, mut after, mut eor) = (0, 0, false);
    for message in &flow.messages {
        let Some((announced, _, end_of_rib)) = update_nlri(message) else {
            continue;
        };
        if end_of_rib && !eor {
            eor = true;
        } else if eor {
            after += announced;
        } else {
            before += announced;
        }
    }
    Ok((before, after, eor))
}

#[test]
fn ns_scenario_restart_end_of_rib_after_routes() {
    run_scenario("restart-deferral-eor", &[BASE, BIRD, TSHARK], |artifacts| {
        let n = table_size();
        let lan = Switch::new("lan")?;
        let tern_ns = Netns::new("tern")?;
        let inj_ns = Netns::new("inj")?;
        let obs_ns = Netns::new("obs")?;
        lan.attach(&tern_ns, "eth0", &[&format!("{TERN_IP}/24")])?;
        lan.attach(&inj_ns, "eth0", &[&format!("{INJ_IP}/24")])?;
        lan.attach(&obs_ns, "eth0", &[&format!("{OBS_IP}/24")])?;

        let routes = host_routes(n);
        let refs: Vec<&str> = routes.iter().map(String::as_str).collect();
        let mut inj_config = BirdConfig::new(INJ_IP)
            .with_static("injected", &refs)
            .with_peer(bird_peer(INJ_IP, INJ_AS, true));
        inj_config.kernel = false;
        let mut obs_config = BirdConfig::new(OBS_IP).with_peer(bird_peer(OBS_IP, OBS_AS, true));
        obs_config.kernel = false;
        let inj = Bird::start(&inj_ns, artifacts, "inj", &inj_config)?;
        let obs = Bird::start(&obs_ns, artifacts, "obs", &obs_config)?;
        let resources = cluster(&[("inj", INJ_IP, INJ_AS), ("obs", OBS_IP, OBS_AS)]);
        let mut tern = TernNode::start(&tern_ns, artifacts, &resources, settings())?;
        wait_until("tern: both BIRDs Established", TIMEOUT, || {
            tern.all_established(&[INJ_IP, OBS_IP])
        })?;
        // Full tables: the observer has the injector's routes and tern's block, the injector
        // its own and tern's block, each BIRD also its own direct 10.0.0.0/24; tern's kernel
        // has the injected routes and its block's blackhole (adopted after the restart).
        let full = n + 2;
        for (bird, label) in [(&obs, "observer"), (&inj, "injector")] {
            wait_until(&format!("{label}: {full} routes"), LOAD_TIMEOUT, || {
                let count = bird.route_count()?;
                Ok(if count == full {
                    Check::Ready(())
                } else {
                    pending(format!("{count} routes"))
                })
            })?;
        }
        wait_until("tern's kernel: the whole table", LOAD_TIMEOUT, || {
            let count = tern_kernel_routes(&tern_ns)?.len();
            Ok(if count == n + 1 {
                Check::Ready(())
            } else {
                pending(format!("{count} routes of tern in the kernel"))
            })
        })?;

        let mut pcap = artifacts.capture(lan.netns(), BRIDGE, "lan.pcap")?;
        let stop = AtomicBool::new(false);
        let (sampled, outcome) = std::thread::scope(|scope| {
            let obs_sampler = scope.spawn(|| CountSampler::run(&obs, &stop));
            let inj_sampler = scope.spawn(|| CountSampler::run(&inj, &stop));
            let outcome = (|| -> Result<()> {
                tern.kill()?;
                wait_until("observer: tern's session down", TIMEOUT, || {
                    Ok(obs.bgp_state("tern")? != "Established")
                })?;
                wait_until("injector: tern's session down", TIMEOUT, || {
                    Ok(inj.bgp_state("tern")? != "Established")
                })?;
                tern.restart(&tern_ns)?;
                wait_until("tern: both BIRDs Established again", LOAD_TIMEOUT, || {
                    tern.all_established(&[INJ_IP, OBS_IP])
                })?;
                // The restart is over when tern has sent End-of-RIB to both helpers.
                for helper in [INJ_IP, OBS_IP] {
                    let filter = format!(
                        "ip.src == {TERN_IP} && ip.dst == {helper} && bgp.type == 2 \
                         && bgp.length == 23"
                    );
                    wait_until(
                        &format!("tern's End-of-RIB to {helper} on the wire"),
                        LOAD_TIMEOUT,
                        || Ok(pcap.count(&filter)? >= 1),
                    )?;
                }
                wait_until("tern: restart recovery over", LOAD_TIMEOUT, || {
                    let status = tern.show(&["status"])?;
                    Ok(match status.get("graceful_restart") {
                        None | Some(serde_json::Value::Null) => Check::Ready(()),
                        Some(progress) => pending(format!("{progress}")),
                    })
                })?;
                for (bird, label) in [(&obs, "observer"), (&inj, "injector")] {
                    wait_until(&format!("{label}: {full} routes after"), TIMEOUT, || {
                        let count = bird.route_count()?;
                        Ok(if count == full {
                            Check::Ready(())
                        } else {
                            pending(format!("{count} routes"))
                        })
                    })?;
                }
                Ok(())
            })();
            stop.store(true, Ordering::Relaxed);
            let obs_min = obs_sampler.join().expect("observer sampler");
            let inj_min = inj_sampler.join().expect("injector sampler");
            ((obs_min, inj_min), outcome)
        });
        outcome?;
        let ((obs_min, obs_samples, obs_errors), (inj_min, inj_samples, inj_errors)) = sampled;
        eprintln!(
            "restart with {n} routes: observer min {obs_min} over {obs_samples} samples, \
             injector min {inj_min} over {inj_samples} samples"
        );
        ensure!(
            obs_samples >= 10 && inj_samples >= 10,
            "too few samples: observer {obs_samples} ({obs_errors:?}), injector {inj_samples} \
             ({inj_errors:?})"
        );
        ensure!(
            obs_min >= full,
            "the observer fell to {obs_min} routes during tern's restart (full table {full})"
        );
        ensure!(
            inj_min >= full,
            "the injector fell to {inj_min} routes during tern's restart (full table {full})"
        );

        // The R bit belongs to the restart: a session reset afterwards carries none.
        let restart_opens =
            format!("bgp.type == 1 && ip.src == {TERN_IP} && bgp.cap.gr.timers.restart_flag == 1");
        let plain_opens = format!(
            "bgp.type == 1 && ip.src == {TERN_IP} && ip.dst == {OBS_IP} \
             && bgp.cap.gr.timers.restart_flag == 0"
        );
        let restart_flagged =
            wait_until("tern's OPENs after the restart carry R", TIMEOUT, || {
                let count = pcap.count(&restart_opens)?;
                Ok((count >= 2).then_some(count))
            })?;
        // The end of the restart reset no session: no NOTIFICATION from tern so far.
        let notifications = pcap.count(&format!("bgp.type == 3 && ip.src == {TERN_IP}"))?;
        ensure!(
            notifications == 0,
            "{notifications} NOTIFICATION(s) from tern during the restart"
        );
        obs.birdc(&["restart", "tern"])?;
        wait_until("tern's OPEN to the observer after a reset", TIMEOUT, || {
            Ok(pcap.count(&plain_opens)? >= 1)
        })?;
        let now_flagged = pcap.count(&restart_opens)?;
        ensure!(
            now_flagged == restart_flagged,
            "tern's OPEN after a session reset (restart over) still has the R bit"
        );
        wait_until(
            "tern: observer Established after the reset",
            TIMEOUT,
            || tern.all_established(&[OBS_IP]),
        )?;
        let pcap_path = pcap.stop()?;

        // On the wire: tern's End-of-RIB to each helper comes after every route it sends it.
        for (helper, expected) in [(OBS_IP, n + 1), (INJ_IP, 1)] {
            let (before, after, eor) = sent_after_restart(&pcap_path, helper)?;
            if !eor {
                bail!("no End-of-RIB from tern to {helper} after the restart");
            }
            ensure!(
                before == expected && after == 0,
                "to {helper}: {before} prefixes before End-of-RIB and {after} after \
                 (expected {expected} before, 0 after)"
            );
        }
        drop(tern);
        Ok(())
    });
}

#[test]
fn ns_scenario_restart_peer_without_gr() {
    run_scenario("restart-deferral-no-gr", &[BASE, BIRD], |artifacts| {
        let n = 2_000;
        let lan = Switch::new("lan")?;
        let tern_ns = Netns::new("tern")?;
        let peer_ns = Netns::new("nogr")?;
        lan.attach(&tern_ns, "eth0", &[&format!("{TERN_IP}/24")])?;
        lan.attach(&peer_ns, "eth0", &[&format!("{INJ_IP}/24")])?;

        let routes = host_routes(n);
        let (kept, gone) = routes.split_at(n - 1);
        let gone = gone[0].as_str();
        let refs: Vec<&str> = routes.iter().map(String::as_str).collect();
        let mut config = BirdConfig::new(INJ_IP)
            .with_static("injected", &refs)
            .with_peer(bird_peer(INJ_IP, INJ_AS, false));
        config.kernel = false;
        let bird = Bird::start(&peer_ns, artifacts, "nogr", &config)?;
        let resources = cluster(&[("nogr", INJ_IP, INJ_AS)]);
        let mut tern = TernNode::start(&tern_ns, artifacts, &resources, settings())?;
        wait_until("tern: BIRD Established", TIMEOUT, || {
            tern.all_established(&[INJ_IP])
        })?;
        let peer = tern
            .peer(INJ_IP)?
            .context("the BIRD peer is not a peer of tern")?;
        ensure!(
            peer["session"]["remote_capabilities"]["graceful_restart"].is_null(),
            "BIRD announced graceful restart: {peer}"
        );
        wait_until("tern's kernel: BIRD's routes", LOAD_TIMEOUT, || {
            let count = tern_kernel_routes(&tern_ns)?.len();
            Ok(if count == n + 1 {
                Check::Ready(())
            } else {
                pending(format!("{count} routes of tern in the kernel"))
            })
        })?;

        let monitor = RouteMonitor::start(&tern_ns, artifacts, "tern")?;
        tern.kill()?;
        wait_until("BIRD: tern's session down", TIMEOUT, || {
            Ok(bird.bgp_state("tern")? != "Established")
        })?;
        // While tern is down the peer stops announcing one route: the restarted tern must
        // still sweep that one.
        let mut fewer = BirdConfig::new(INJ_IP)
            .with_static("injected", &refs[..n - 1])
            .with_peer(bird_peer(INJ_IP, INJ_AS, false));
        fewer.kernel = false;
        std::fs::write(bird.config_path(), fewer.render())?;
        let reconfigured = bird.birdc(&["configure"])?;
        ensure!(
            reconfigured.contains("Reconfigured"),
            "birdc configure: {reconfigured}"
        );
        tern.restart(&tern_ns)?;
        wait_until("tern: BIRD Established again", TIMEOUT, || {
            tern.all_established(&[INJ_IP])
        })?;
        wait_until("tern: restart recovery over", TIMEOUT, || {
            let status = tern.show(&["status"])?;
            Ok(match status.get("graceful_restart") {
                None | Some(serde_json::Value::Null) => Check::Ready(()),
                Some(progress) => pending(format!("{progress}")),
            })
        })?;
        wait_until(&format!("tern swept {gone}"), TIMEOUT, || {
            Ok(!tern_kernel_routes(&tern_ns)?.contains(gone))
        })?;
        let installed = tern_kernel_routes(&tern_ns)?;
        let missing: Vec<&String> = kept.iter().filter(|r| !installed.contains(*r)).collect();
        ensure!(
            missing.is_empty(),
            "{} of BIRD's routes missing from tern's kernel, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        let swept = monitor.deletions(&[gone]);
        let kept_refs: Vec<&str> = kept.iter().map(String::as_str).collect();
        let deleted = monitor.stop_and_deletions(&kept_refs)?;
        ensure!(
            deleted.is_empty(),
            "{} deletions of routes BIRD still sends, e.g. {:?}",
            deleted.len(),
            &deleted[..deleted.len().min(5)]
        );
        ensure!(
            !swept.is_empty(),
            "the monitor did not record the sweep of {gone}"
        );
        drop(tern);
        Ok(())
    });
}
