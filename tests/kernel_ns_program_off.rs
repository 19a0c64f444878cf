//! `[kernel] program = false` end to end: `tern run` in a namespace with a real BIRD peer learns
//! and advertises routes, but writes nothing to the kernel: no route of its protocol appears (not
//! the peer's route, not its own block's blackhole), and a route of its protocol put there before
//! the start is left alone while it runs and after it stops (even with `flush_on_exit`).
//! Needs root and BIRD; fails otherwise (skips with `TERN_ALLOW_SKIP=1`).

mod daemon_common;

use anyhow::{Context as _, Result, ensure};
use daemon_common::*;
use interop::prelude::*;
use serde_json::Value;

const TERN_IP: &str = "10.0.0.1";
const BIRD_IP: &str = "10.0.0.2";
const TERN_AS: u32 = 64512;
const BIRD_AS: u32 = 65002;
const BLOCK: &str = "10.244.1.0/26";
const PEER_ROUTE: &str = "10.250.2.0/24";
/// A route of tern's protocol (12, `bird`) left by someone before tern starts.
const LEFT_BEFORE: &str = "10.251.9.0/24";

/// The destinations of the main table's routes of protocol 12 in `ns`, sorted.
fn protocol_12_routes(ns: &Netns) -> Result<Vec<String>> {
    let out = ns.ip(["-json", "route", "show", "proto", "12"])?;
    let routes: Value = serde_json::from_str(out.trim()).unwrap_or(Value::Array(Vec::new()));
    let mut dsts: Vec<String> = routes
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["dst"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    dsts.sort();
    Ok(dsts)
}

/// The daemon's heartbeat (advanced by its 1 s tick), from `tern show status --json`.
fn heartbeat(node: &TernNode) -> Result<String> {
    let status: Value = serde_json::from_str(&node.show("status")?).context("show status JSON")?;
    fn find(v: &Value) -> Option<String> {
        match v {
            Value::Object(o) => o
                .get("heartbeat")
                .map(Value::to_string)
                .or_else(|| o.values().find_map(find)),
            Value::Array(a) => a.iter().find_map(find),
            _ => None,
        }
    }
    find(&status).context("no heartbeat in show status")
}

#[test]
fn ns_kernel_program_off_learns_and_advertises_but_writes_nothing() {
    run_scenario("kernel-program-off", &[BASE, BIRD], |artifacts| {
        let lan = Switch::new("lan")?;
        let tern_ns = Netns::new("tern")?;
        let bird_ns = Netns::new("bird")?;
        lan.attach(&tern_ns, "eth0", &[&format!("{TERN_IP}/24")])?;
        lan.attach(&bird_ns, "eth0", &[&format!("{BIRD_IP}/24")])?;
        tern_ns.ip(["route", "add", LEFT_BEFORE, "via", BIRD_IP, "proto", "bird"])?;
        let before = protocol_12_routes(&tern_ns)?;
        ensure!(before == [LEFT_BEFORE], "set-up: {before:?}");

        let bird = Bird::start(
            &bird_ns,
            artifacts,
            "bird",
            &BirdConfig::new(BIRD_IP)
                .with_static("own", &[PEER_ROUTE])
                .with_peer(
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
            &single_node_manifests(&[(BIRD_IP, BIRD_AS)]),
            "",
        )?;
        // Programming off, and flush on exit on: the latter must not delete anything either.
        let settings = std::fs::read_to_string(&node.settings)?;
        let settings = settings.replacen(
            "[kernel]\n",
            "[kernel]\nprogram = false\nflush_on_exit = true\n",
            1,
        );
        ensure!(settings.contains("program = false"), "settings: {settings}");
        std::fs::write(&node.settings, settings)?;
        let mut tern = node.start(&tern_ns, artifacts)?;

        wait_until("tern Established with BIRD", CONVERGE, || {
            Ok(node.peer_state(BIRD_IP)? == "Established")
        })?;
        // Learned: the peer's route is in tern's RIB...
        wait_until("tern's RIB has BIRD's route", CONVERGE, || {
            Ok(node.show("routes")?.contains(PEER_ROUTE))
        })?;
        // ...and advertising works: BIRD has tern's block.
        wait_until("BIRD has tern's block", CONVERGE, || bird.has_route(BLOCK))?;
        // Two ticks of the daemon after the route was learned (a programming daemon hands the
        // desired set over within 100 ms and writes it right away): still nothing written.
        let first = heartbeat(&node)?;
        let second = wait_until("a daemon tick", CONVERGE, || {
            let now = heartbeat(&node)?;
            Ok((now != first).then_some(now))
        })?;
        wait_until("another daemon tick", CONVERGE, || {
            Ok(heartbeat(&node)? != second)
        })?;
        let running = protocol_12_routes(&tern_ns)?;
        ensure!(
            running == [LEFT_BEFORE],
            "while running, routes of protocol 12: {running:?}"
        );
        ensure!(
            kernel_route(&tern_ns, PEER_ROUTE)?.is_none(),
            "BIRD's route was installed"
        );
        ensure!(
            kernel_route(&tern_ns, BLOCK)?.is_none(),
            "the block's blackhole was installed"
        );
        let fib: Value = serde_json::from_str(&node.show("fib")?).context("show fib JSON")?;
        artifacts.write("fib.json", &serde_json::to_string_pretty(&fib)?)?;
        // What the kernel holds of tern's protocol: only the route left before, untouched;
        // nothing desired, so nothing differs.
        let prefixes: Vec<&str> = fib["routes"]
            .as_array()
            .map(|routes| routes.iter().filter_map(|r| r["prefix"].as_str()).collect())
            .unwrap_or_default();
        ensure!(
            prefixes == [LEFT_BEFORE] && fib["desired"] == 0,
            "show fib with programming off: {fib}"
        );
        ensure!(
            fib["differences"].as_array().is_none_or(Vec::is_empty),
            "differences listed with programming off: {fib}"
        );

        let status = tern.stop()?;
        ensure!(status.success(), "tern exited with {status}");
        let after = protocol_12_routes(&tern_ns)?;
        ensure!(
            after == [LEFT_BEFORE],
            "after stop, routes of protocol 12: {after:?}"
        );
        Ok(())
    });
}
