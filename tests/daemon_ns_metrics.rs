//! Metrics and kernel status that count, through a running `tern run` scraped with `curl`:
//! `tern_bgp_session_flaps_total` after a real session flap (BIRD peer), and
//! `tern_bgp_malformed_updates_total` after a malformed UPDATE from a raw peer (treated as
//! withdraw, session kept); `tern_kernel_errors_total` after the kernel refuses a route, with
//! `tern show fib` reporting that error at the time it happened and the last sync at the time
//! it happened (both unchanged by later queries); `tern show routes ADDRESS` finds the longest
//! prefix holding the address, and `tern show routes` is sorted by prefix.
//! Needs root, BIRD and curl; fails otherwise (skips with `TERN_ALLOW_SKIP=1`).

mod daemon_common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use daemon_common::*;
use interop::evil::{RawPeer, RawSession, unhex};
use interop::prelude::*;
use serde_json::Value;

const TERN_IP: &str = "10.0.0.1";
const RAW_IP: &str = "10.0.0.2";
const BIRD_IP: &str = "10.0.0.3";
const TERN_AS: u32 = 64512;
const RAW_AS: u32 = 65001;
const BIRD_AS: u32 = 65003;
const RAW: &str = "Global_10_0_0_2";
const BIRD_PEER: &str = "Global_10_0_0_3";
/// `upd-origin-3` of fixtures/malformed-messages.tsv: ORIGIN 3, treat-as-withdraw (RFC 7606
/// §7.1) of 10.1.1.0/24, next hop 10.0.0.2, AS 65001.
const ORIGIN_3: &str = "ffffffffffffffffffffffffffffffff002f02000000144001010340020602010000fde94003040a000002180a0101";

/// One sample of the scrape: the value of `name{labels...}` (all given labels must match).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (labels_part, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        labels
            .iter()
            .all(|(k, v)| labels_part.contains(&format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse().ok())?
    })
}

/// `tern show fib` as a user reads it.
fn show_fib_text(node: &TernNode) -> Result<String> {
    let out = std::process::Command::new(tern_bin())
        .args(["show", "fib", "--socket"])
        .arg(node.control())
        .output()?;
    ensure!(out.status.success(), "tern show fib: {out:?}");
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn scrape(ns: &Netns) -> Result<String> {
    ns.run(
        "curl",
        ["-sf", "--max-time", "10", "http://127.0.0.1:9179/metrics"],
    )
}

fn wait_metric(
    ns: &Netns,
    name: &str,
    labels: &[(&str, &str)],
    want: impl Fn(f64) -> bool,
) -> Result<f64> {
    wait_until(&format!("{name}{labels:?} as expected"), CONVERGE, || {
        let text = scrape(ns)?;
        Ok(sample(&text, name, labels).filter(|v| want(*v)))
    })
}

fn show_json(node: &TernNode, what: &str) -> Result<Value> {
    Ok(serde_json::from_str(&node.show(what)?)?)
}

#[test]
fn ns_daemon_metrics_count_flaps_malformed_updates_and_kernel_errors() {
    run_scenario(
        "daemon-metrics",
        &[BASE, BIRD, &[Requirement::Binary("curl")]],
        |artifacts| {
            let lan = Switch::new("lan")?;
            let tern_ns = Netns::new("tern")?;
            let raw_ns = Netns::new("raw")?;
            let bird_ns = Netns::new("bird")?;
            lan.attach(&tern_ns, "eth0", &[&format!("{TERN_IP}/24")])?;
            lan.attach(&raw_ns, "eth0", &[&format!("{RAW_IP}/24")])?;
            lan.attach(&bird_ns, "eth0", &[&format!("{BIRD_IP}/24")])?;
            let _bird = Bird::start(
                &bird_ns,
                artifacts,
                "bird",
                &BirdConfig::new(BIRD_IP).with_peer(
                    BirdPeer::new(
                        "tern",
                        BIRD_IP,
                        BIRD_AS,
                        TERN_IP,
                        TERN_AS,
                        &[Family::Ipv4Unicast],
                    )
                    .calico(),
                ),
            )?;
            let node = TernNode::write(
                artifacts,
                "n1",
                &single_node_manifests(&[(RAW_IP, RAW_AS), (BIRD_IP, BIRD_AS)]),
                "",
            )?;
            let _tern = node.start(&tern_ns, artifacts)?;
            let tern_addr = SocketAddr::new(TERN_IP.parse()?, 179);
            let session = RawSession::new(RAW_AS, RAW_IP.parse()?);
            let mut raw = wait_until("raw peer Established with tern", CONVERGE, || {
                RawPeer::establish(&raw_ns, tern_addr, session.clone(), Duration::from_secs(10))
                    .map(Some)
            })?;
            wait_until("tern Established with BIRD", CONVERGE, || {
                Ok(node.peer_state(BIRD_IP)? == "Established")
            })?;

            // At zero, per peer, before anything happened.
            let flaps = "tern_bgp_session_flaps_total";
            let malformed = "tern_bgp_malformed_updates_total";
            let kernel_errors = "tern_kernel_errors_total";
            wait_metric(&tern_ns, flaps, &[("peer", BIRD_PEER)], |v| v == 0.0)?;
            wait_metric(
                &tern_ns,
                malformed,
                &[("peer", RAW), ("action", "treat_as_withdraw")],
                |v| v == 0.0,
            )?;
            let fib = show_json(&node, "fib")?;
            let errors_before = fib["errors_total"].as_u64().context("errors_total")?;
            ensure!(errors_before == 0, "kernel errors before any: {fib}");

            // A flap: the BIRD session is reset and comes back.
            let out = std::process::Command::new(tern_bin())
                .args(["peer", "restart", BIRD_PEER, "--socket"])
                .arg(node.run.join("tern-admin.ctl"))
                .output()?;
            ensure!(out.status.success(), "tern peer restart: {out:?}");
            wait_metric(&tern_ns, flaps, &[("peer", BIRD_PEER)], |v| v == 1.0)?;
            wait_until("BIRD Established again", CONVERGE, || {
                Ok(node.peer_state(BIRD_IP)? == "Established")
            })?;
            let text = scrape(&tern_ns)?;
            ensure!(
                sample(&text, flaps, &[("peer", RAW)]) == Some(0.0),
                "the raw peer did not flap: {text}"
            );

            // A malformed UPDATE (treat-as-withdraw): counted, session kept.
            raw.send_raw(&unhex(ORIGIN_3)?)?;
            raw.keepalive()?;
            wait_metric(
                &tern_ns,
                malformed,
                &[("peer", RAW), ("action", "treat_as_withdraw")],
                |v| v == 1.0,
            )?;
            ensure!(node.peer_state(RAW_IP)? == "Established");

            // A route the kernel refuses: a next hop no interface reaches.
            let far: Ipv4Addr = "10.77.0.1".parse()?;
            raw.announce_ipv4(&["10.96.0.0/24".parse()?], far)?;
            raw.keepalive()?;
            let errors = wait_metric(&tern_ns, kernel_errors, &[("operation", "route")], |v| {
                v >= 1.0
            })?;
            let fib = wait_until("show fib reports the kernel error", CONVERGE, || {
                let fib = show_json(&node, "fib")?;
                Ok((fib["errors_total"].as_u64() >= Some(1)).then_some(fib))
            })?;
            artifacts.write("show-fib.json", &fib.to_string())?;
            let message = fib["last_error"]["message"].as_str().unwrap_or("");
            ensure!(message.contains("10.96.0.0/24"), "last error: {fib}");
            // Desired versus installed, from the kernel task: the refused prefix is not among the
            // routes the kernel holds, and is listed as differing, failed, with the reason.
            let installed = fib["routes"].as_array().context("routes")?;
            ensure!(
                !installed.iter().any(|r| r["prefix"] == "10.96.0.0/24"),
                "a refused route shown as installed: {fib}"
            );
            let difference = fib["differences"]
                .as_array()
                .and_then(|d| d.iter().find(|d| d["prefix"] == "10.96.0.0/24"))
                .with_context(|| format!("10.96.0.0/24 not listed as differing: {fib}"))?;
            ensure!(
                difference["installed"].is_null()
                    && difference["desired"]["prefix"] == "10.96.0.0/24"
                    && difference["failed"]
                        .as_str()
                        .is_some_and(|r| r.contains("unreachable")),
                "{difference}"
            );
            let text = show_fib_text(&node)?;
            ensure!(
                text.lines()
                    .any(|l| l.starts_with("10.96.0.0/24") && l.contains("failed:")),
                "show fib does not label the failed prefix: {text}"
            );
            ensure!(
                sample(&scrape(&tern_ns)?, "tern_kernel_resyncs_total", &[]) >= Some(1.0),
                "no resync counted"
            );
            // Measured, not synthesized: the times stay those of the events while the daemon
            // runs on (its heartbeat moves), and the count does not grow by itself.
            let heartbeat = show_json(&node, "status")?["heartbeat"].clone();
            wait_until("the daemon's heartbeat moves on", CONVERGE, || {
                Ok(show_json(&node, "status")?["heartbeat"] != heartbeat)
            })?;
            let later = show_json(&node, "fib")?;
            ensure!(
                later["last_error"]["at"] == fib["last_error"]["at"],
                "the error's time moved: {} then {}",
                fib["last_error"],
                later["last_error"]
            );
            ensure!(
                later["errors_total"] == fib["errors_total"],
                "errors grew by themselves: {fib} then {later}"
            );
            ensure!(
                later["tunnel_device"] == "tunl0" && later["installed"].is_object(),
                "{later}"
            );
            let text = scrape(&tern_ns)?;
            ensure!(
                sample(&text, kernel_errors, &[("operation", "route")])
                    == Some(later["errors_total"].as_f64().unwrap_or(-1.0))
                    && errors >= 1.0,
                "metrics and show fib disagree: {text}"
            );
            // `show routes ADDRESS`: the longest prefix holding it; all routes sorted by prefix.
            let out = std::process::Command::new(tern_bin())
                .args(["show", "routes", "10.96.0.77", "--json", "--socket"])
                .arg(node.control())
                .output()?;
            let routes: Value = serde_json::from_slice(&out.stdout)
                .with_context(|| format!("show routes ADDRESS: {out:?}"))?;
            let prefixes: Vec<&str> = routes
                .as_array()
                .context("routes")?
                .iter()
                .filter_map(|r| r["prefix"].as_str())
                .collect();
            ensure!(prefixes == ["10.96.0.0/24"], "lookup: {routes}");
            let all = show_json(&node, "routes")?;
            let all: Vec<ipnet::IpNet> = all
                .as_array()
                .context("routes")?
                .iter()
                .filter_map(|r| r["prefix"].as_str()?.parse().ok())
                .collect();
            ensure!(
                all.len() >= 2 && all.windows(2).all(|w| w[0] < w[1]),
                "not sorted by prefix: {all:?}"
            );
            raw.keepalive()?;
            Ok(())
        },
    );
}
