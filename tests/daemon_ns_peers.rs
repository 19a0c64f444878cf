//! `tern run` end to end against real peers from Debian packages: BIRD 2 (eBGP), GoBGP (iBGP)
//! and FRR (eBGP) each see tern's block route in their own CLI and confirm the negotiated
//! capabilities; tern's kernel has each peer's route; `tern show peers --json` reports them.
//! And the BIRD-compatible socket read by the real `birdc`, plus the metrics endpoint.
//! Needs root and the daemons; fails otherwise (skips with `TERN_ALLOW_SKIP=1`).

mod daemon_common;

use anyhow::{Context as _, Result, ensure};
use daemon_common::*;
use interop::prelude::*;

const TERN_IP: &str = "10.0.0.1";
const BIRD_IP: &str = "10.0.0.2";
const GOBGP_IP: &str = "10.0.0.3";
const FRR_IP: &str = "10.0.0.4";
const TERN_AS: u32 = 64512;
const BIRD_AS: u32 = 65002;
const FRR_AS: u32 = 65004;
const BLOCK: &str = "10.244.1.0/26";
/// A route BIRD originates towards tern.
const BIRD_STATIC: &str = "10.65.0.0/24";
/// A route another agent installs in tern's kernel (tern learns it).
const KERNEL_LEARNED: &str = "10.66.0.0/24";

fn lan_with(hosts: &[(&str, &str)]) -> Result<(Switch, Vec<Netns>)> {
    let lan = Switch::new("lan")?;
    let mut out = Vec::new();
    for (label, ip) in hosts {
        let ns = Netns::new(label)?;
        lan.attach(&ns, "eth0", &[&format!("{ip}/24")])?;
        out.push(ns);
    }
    Ok((lan, out))
}

fn bird_peer() -> BirdPeer {
    BirdPeer::new(
        "tern",
        BIRD_IP,
        BIRD_AS,
        TERN_IP,
        TERN_AS,
        &[Family::Ipv4Unicast],
    )
    .calico()
}

#[test]
fn ns_daemon_bird_gobgp_frr() {
    run_scenario(
        "daemon-bird-gobgp-frr",
        &[BASE, BIRD, GOBGP, FRR],
        |artifacts| {
            let (_lan, nss) = lan_with(&[
                ("tern", TERN_IP),
                ("bird", BIRD_IP),
                ("gobgp", GOBGP_IP),
                ("frr", FRR_IP),
            ])?;
            let (tern_ns, bird_ns, gobgp_ns, frr_ns) = (&nss[0], &nss[1], &nss[2], &nss[3]);
            let v4 = [Family::Ipv4Unicast];

            let bird = Bird::start(
                bird_ns,
                artifacts,
                "bird",
                &BirdConfig::new(BIRD_IP)
                    .with_static("own", &["10.250.2.0/24"])
                    .with_peer(bird_peer()),
            )?;
            let mut neighbor = GobgpNeighbor::new(TERN_IP, TERN_AS, &v4);
            neighbor.add_paths = true;
            neighbor.graceful_restart = true;
            let gobgp = Gobgp::start(
                gobgp_ns,
                artifacts,
                "gobgp",
                &GobgpConfig::new(TERN_AS, GOBGP_IP).with_neighbor(neighbor),
            )?;
            let mut fneighbor = FrrNeighbor::new(TERN_IP, TERN_AS, &v4);
            fneighbor.family_options.push("addpath-tx-all-paths".into());
            let mut fconfig = FrrConfig::new("frr", FRR_AS, FRR_IP)
                .with_neighbor(fneighbor)
                .with_network("10.250.4.0/24");
            fconfig.router_extra.push("bgp graceful-restart".into());
            let frr = Frr::start(frr_ns, artifacts, "frr", &fconfig)?;

            let node = TernNode::write(
                artifacts,
                "n1",
                &single_node_manifests(&[
                    (BIRD_IP, BIRD_AS),
                    (GOBGP_IP, TERN_AS),
                    (FRR_IP, FRR_AS),
                ]),
                "",
            )?;
            let _tern = node.start(tern_ns, artifacts)?;

            for ip in [BIRD_IP, GOBGP_IP, FRR_IP] {
                wait_until(&format!("tern Established with {ip}"), CONVERGE, || {
                    Ok(node.peer_state(ip)? == "Established")
                })?;
            }
            gobgp.announce("10.250.3.0/24", &[])?;

            // Each peer's CLI shows tern's block.
            wait_until("BIRD has tern's block", CONVERGE, || bird.has_route(BLOCK))?;
            wait_until("GoBGP has tern's block", CONVERGE, || {
                gobgp.has_route(BLOCK)
            })?;
            wait_until("FRR has tern's block", CONVERGE, || frr.has_route(BLOCK))?;
            // tern's kernel has each peer's route via that peer.
            for (prefix, via) in [
                ("10.250.2.0/24", BIRD_IP),
                ("10.250.3.0/24", GOBGP_IP),
                ("10.250.4.0/24", FRR_IP),
            ] {
                let r = wait_until(&format!("tern's kernel has {prefix}"), CONVERGE, || {
                    kernel_route(tern_ns, prefix)
                })?;
                ensure!(
                    r["gateway"] == via && r["protocol"] == "bird",
                    "{prefix}: {r}"
                );
            }
            // No leak between external peers: BIRD's route is not sent to FRR (outside the pools).
            ensure!(!frr.has_route("10.250.2.0/24")?, "route leaked to FRR");

            // Capabilities through each peer's own CLI (issue 4).
            let out = bird.birdc(&["show", "protocols", "all", "tern"])?;
            artifacts.write("bird-protocols.txt", &out)?;
            let caps = out
                .split("Neighbor capabilities")
                .nth(1)
                .context("no neighbor capabilities")?;
            for cap in [
                "Multiprotocol",
                "Route refresh",
                "Graceful restart",
                "4-octet AS numbers",
                "ADD-PATH",
            ] {
                ensure!(caps.contains(cap), "BIRD does not see {cap}:\n{out}");
            }
            let n = gobgp.neighbor(TERN_IP)?;
            let received: Vec<String> = n["state"]["remote_cap"]
                .as_array()
                .context("no remote_cap")?
                .iter()
                .filter_map(|c| c["type_url"].as_str().map(str::to_owned))
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
                    "GoBGP did not receive {cap}: {received:?}"
                );
            }
            let fcaps = frr.neighbor(TERN_IP)?["neighborCapabilities"].clone();
            ensure!(fcaps["4byteAs"] == "advertisedAndReceived", "{fcaps:#}");
            ensure!(
                fcaps["gracefulRestart"] == "advertisedAndReceived",
                "{fcaps:#}"
            );
            ensure!(
                fcaps["multiprotocolExtensions"]["ipv4Unicast"]["advertisedAndReceived"] == true,
                "{fcaps:#}"
            );
            ensure!(
                fcaps["addPath"]["ipv4Unicast"]["rxAdvertisedAndReceived"] == true,
                "{fcaps:#}"
            );

            // tern show peers: state, negotiated capabilities and prefix counts of each peer
            // (counters are published once a second).
            let peers = wait_until("show peers counts every peer's route", CONVERGE, || {
                let peers = node.peers()?;
                let all = [BIRD_IP, GOBGP_IP, FRR_IP].iter().all(|ip| {
                    peers.iter().any(|p| {
                        p["address"] == *ip && p["prefixes"]["received"].as_u64() >= Some(1)
                    })
                });
                Ok(all.then_some(peers))
            })?;
            artifacts.write("tern-peers.json", &serde_json::to_string_pretty(&peers)?)?;
            for ip in [BIRD_IP, GOBGP_IP, FRR_IP] {
                let p = peers
                    .iter()
                    .find(|p| p["address"] == ip)
                    .with_context(|| format!("{ip} missing from show peers"))?;
                ensure!(p["state"] == "Established", "{p}");
                let remote = &p["session"]["remote_capabilities"];
                ensure!(
                    remote["four_octet_as"] == true && remote["route_refresh"] == true,
                    "{ip}: {p}"
                );
                ensure!(remote["graceful_restart"].is_object(), "{ip}: {p}");
                ensure!(p["prefixes"]["received"].as_u64() >= Some(1), "{ip}: {p}");
            }

            // A live plan change: the FRR BGPPeer is deleted. Only that session stops (FRR
            // sees it go down, its route leaves tern's kernel); the others keep theirs.
            std::fs::write(
                node.dir.join("resources/cluster.yaml"),
                single_node_manifests(&[(BIRD_IP, BIRD_AS), (GOBGP_IP, TERN_AS)]),
            )?;
            wait_until("FRR's peering removed from tern", CONVERGE, || {
                Ok(!node.peers()?.iter().any(|p| p["address"] == FRR_IP))
            })?;
            wait_until("FRR sees the session end", CONVERGE, || {
                Ok(frr.session_state(TERN_IP)? != "Established")
            })?;
            wait_until("FRR's route gone from tern's kernel", CONVERGE, || {
                Ok(kernel_route(tern_ns, "10.250.4.0/24")?.is_none())
            })?;
            for p in node.peers()? {
                ensure!(
                    p["state"] == "Established" && p["flaps"] == 0,
                    "an unchanged peer was reset: {p}"
                );
            }
            ensure!(bird.bgp_state("tern")? == "Established");
            ensure!(gobgp.session_state(TERN_IP)? == "Established");
            Ok(())
        },
    );
}

#[test]
fn ns_daemon_birdctl() {
    run_scenario("daemon-birdctl", &[BASE, BIRD], |artifacts| {
        let (_lan, nss) = lan_with(&[("tern", TERN_IP), ("bird", BIRD_IP)])?;
        let (tern_ns, bird_ns) = (&nss[0], &nss[1]);
        let bird = Bird::start(
            bird_ns,
            artifacts,
            "bird",
            &BirdConfig::new(BIRD_IP)
                .with_static("statics", &[BIRD_STATIC])
                .with_peer(bird_peer()),
        )?;
        let node = TernNode::write(
            artifacts,
            "n1",
            &single_node_manifests(&[(BIRD_IP, BIRD_AS)]),
            "",
        )?;
        // A route another agent installed: tern learns it from the kernel's table.
        tern_ns.add_route(&format!("{KERNEL_LEARNED} dev eth0 proto static"))?;
        let tern = node.start(tern_ns, artifacts)?;
        wait_until("BIRD Established with tern", CONVERGE, || {
            Ok(bird.bgp_state("tern")? == "Established")
        })?;
        let socket = node.birdctl().display().to_string();
        // What calico-node's probe runs: the real birdc against tern's socket.
        let protocols = wait_until("birdc show protocols: Established", CONVERGE, || {
            let out = tern_ns.run("birdc", ["-s", &socket, "show", "protocols"])?;
            Ok((out.contains("Global_10_0_0_2") && out.contains("Established")).then_some(out))
        })?;
        artifacts.write("birdc-protocols.txt", &protocols)?;
        let line = protocols
            .lines()
            .find(|l| l.starts_with("Global_10_0_0_2"))
            .context("no Global_10_0_0_2 row")?;
        let cols: Vec<&str> = line.split_whitespace().collect();
        ensure!(
            cols.get(1) == Some(&"BGP") && cols.contains(&"up"),
            "{line}"
        );
        ensure!(
            protocols
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == ["name", "proto", "table", "state", "since", "info"]),
            "header: {protocols}"
        );
        let status = tern_ns.run("birdc", ["-s", &socket, "show", "status"])?;
        artifacts.write("birdc-status.txt", &status)?;
        // calico-node's status populator takes the version from the line starting `BIRD v`.
        ensure!(
            status
                .lines()
                .any(|l| l.starts_with("BIRD v") && l.contains("+tern-")),
            "{status}"
        );
        ensure!(status.contains("Daemon is up and running"), "{status}");
        // `show route` names the interface the next hop resolves through, as BIRD does (the
        // CalicoNodeStatus route populator records it).
        let routes = wait_until("birdc show route: BIRD's route", CONVERGE, || {
            let out = tern_ns.run("birdc", ["-s", &socket, "show", "route"])?;
            Ok((out.contains(BIRD_STATIC) && out.contains(KERNEL_LEARNED)).then_some(out))
        })?;
        artifacts.write("birdc-routes.txt", &routes)?;
        let line = routes
            .lines()
            .find(|l| l.starts_with(BIRD_STATIC))
            .context("no route line")?;
        ensure!(
            line.contains(&format!("via {BIRD_IP} on eth0 [Global_10_0_0_2 ")),
            "{routes}"
        );
        ensure!(!routes.contains(" on - "), "{routes}");
        // A route learned from the kernel's table is shown as BIRD's kernel
        // protocol shows what it learns, not as a static blackhole.
        let kernel_line = routes
            .lines()
            .find(|l| l.starts_with(KERNEL_LEARNED))
            .with_context(|| format!("no kernel-learned route: {routes}"))?;
        ensure!(
            kernel_line.contains("dev eth0 [kernel1 ") && !kernel_line.contains("blackhole"),
            "{kernel_line}"
        );
        let out = tern_ns.run(
            "birdc",
            ["-s", &socket, "show", "route", "protocol", "kernel1"],
        )?;
        ensure!(
            out.contains(KERNEL_LEARNED) && !out.contains(BIRD_STATIC),
            "protocol kernel1: {out}"
        );
        // Each route's time is when it was learned, not the time of the query: the same in a
        // later query, once the daemon's clock has moved on.
        let time_of = |routes: &str, prefix: &str, proto: &str| -> Result<String> {
            let line = routes
                .lines()
                .find(|l| l.starts_with(prefix))
                .with_context(|| format!("no {prefix}: {routes}"))?;
            let rest = line
                .split(&format!("[{proto} "))
                .nth(1)
                .with_context(|| format!("no [{proto} ...]: {line}"))?;
            Ok(rest.split([' ', ']']).next().unwrap_or("").to_owned())
        };
        let learned_at = time_of(&routes, BIRD_STATIC, "Global_10_0_0_2")?;
        let kernel_at = time_of(&routes, KERNEL_LEARNED, "kernel1")?;
        let heartbeat =
            serde_json::from_str::<serde_json::Value>(&node.show("status")?)?["heartbeat"].clone();
        wait_until("the daemon's heartbeat moves on", CONVERGE, || {
            Ok(
                serde_json::from_str::<serde_json::Value>(&node.show("status")?)?["heartbeat"]
                    != heartbeat,
            )
        })?;
        let later = tern_ns.run("birdc", ["-s", &socket, "show", "route"])?;
        ensure!(
            time_of(&later, BIRD_STATIC, "Global_10_0_0_2")? == learned_at
                && time_of(&later, KERNEL_LEARNED, "kernel1")? == kernel_at,
            "route times follow the query: {routes}\nthen\n{later}"
        );

        // Metrics: Prometheus text with the peer's session state.
        let metrics = wait_until("metrics show the established peer", CONVERGE, || {
            let out = tern_ns.run("curl", ["-sf", "http://127.0.0.1:9179/metrics"])?;
            let up = out.lines().any(|l| {
                l.starts_with("tern_bgp_peer_up{")
                    && l.contains("Global_10_0_0_2")
                    && l.trim_end().ends_with(" 1")
            });
            Ok(up.then_some(out))
        })?;
        artifacts.write("metrics.txt", &metrics)?;
        for l in metrics.lines() {
            if l.starts_with('#') || l.is_empty() {
                continue;
            }
            let value = l.rsplit(' ').next().unwrap_or("");
            ensure!(value.parse::<f64>().is_ok(), "not Prometheus text: {l}");
        }
        let state = metrics
            .lines()
            .find(|l| l.starts_with("tern_bgp_peer_state{") && l.contains("Global_10_0_0_2"))
            .context("no peer state metric")?;
        ensure!(state.trim_end().ends_with(" 6"), "established = 6: {state}");
        // Message counters of the real session move (the OPEN and KEEPALIVEs of the handshake,
        // tern's End-of-RIB UPDATE), in the metrics and in `tern show peers`.
        let counted = |out: &str, direction: &str, kind: &str| {
            out.lines().any(|l| {
                l.starts_with(&format!("tern_bgp_messages_{direction}_total{{"))
                    && l.contains("Global_10_0_0_2")
                    && l.contains(&format!("type=\"{kind}\""))
                    && l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) > Some(0.0)
            })
        };
        let metrics = wait_until("metrics count the session's messages", CONVERGE, || {
            let out = tern_ns.run("curl", ["-sf", "http://127.0.0.1:9179/metrics"])?;
            let all = [("received", "open"), ("received", "keepalive")]
                .into_iter()
                .chain([("sent", "open"), ("sent", "keepalive"), ("sent", "update")])
                .all(|(direction, kind)| counted(&out, direction, kind));
            Ok(all.then_some(out))
        })?;
        artifacts.write("metrics-messages.txt", &metrics)?;
        let peers = node.peers()?;
        let peer = peers.first().context("no peer in tern show peers")?;
        for direction in ["messages_received", "messages_sent"] {
            let open = peer[direction]["open"].as_u64().unwrap_or(0);
            let keepalive = peer[direction]["keepalive"].as_u64().unwrap_or(0);
            ensure!(
                open >= 1 && keepalive >= 1,
                "{direction}: {}",
                peer[direction]
            );
        }

        // Readiness probe through the CLI.
        let ready = std::process::Command::new(tern_bin())
            .args(["health", "--ready", "--socket"])
            .arg(node.control())
            .status()?;
        ensure!(ready.success(), "tern health --ready: {ready}");

        // Every `show` command and both probes against the running daemon, JSON parsed.
        let json = |what: &[&str]| -> Result<serde_json::Value> {
            let out = std::process::Command::new(tern_bin())
                .arg("show")
                .args(what)
                .args(["--json", "--socket"])
                .arg(node.control())
                .output()?;
            ensure!(out.status.success(), "tern show {what:?}: {out:?}");
            serde_json::from_slice(&out.stdout).with_context(|| format!("tern show {what:?} JSON"))
        };
        let status = json(&["status"])?;
        ensure!(
            status.to_string().contains(TERN_IP),
            "router id in status: {status}"
        );
        ensure!(
            status.to_string().contains(&TERN_AS.to_string()),
            "AS in status: {status}"
        );
        let rib = json(&["rib"])?;
        ensure!(
            rib.to_string().contains("\"prefixes\""),
            "rib summary: {rib}"
        );
        let fib = json(&["fib"])?;
        ensure!(fib.to_string().contains(BLOCK), "own block in fib: {fib}");
        let routes = json(&["routes"])?;
        ensure!(
            routes.to_string().contains(BLOCK),
            "own block in routes: {routes}"
        );
        let one = json(&["routes", BLOCK])?;
        ensure!(one.to_string().contains(BLOCK), "routes {BLOCK}: {one}");
        let peer = json(&["peers", "Global_10_0_0_2"])?;
        ensure!(
            peer.to_string().contains("Established"),
            "peer detail: {peer}"
        );
        for what in [&["status"][..], &["rib"], &["fib"], &["routes"], &["peers"]] {
            let out = std::process::Command::new(tern_bin())
                .arg("show")
                .args(what)
                .arg("--socket")
                .arg(node.control())
                .output()?;
            ensure!(
                out.status.success() && !out.stdout.is_empty(),
                "tern show {what:?} (human): {out:?}"
            );
        }
        let live = std::process::Command::new(tern_bin())
            .args(["health", "--live", "--socket"])
            .arg(node.control())
            .status()?;
        ensure!(live.success(), "tern health --live: {live}");

        // A resource tern cannot use is named and skipped, and changes nothing else: the
        // session stays up, no reset.
        let flaps_before = node
            .peers()?
            .first()
            .map(|p| p["flaps"].as_u64().unwrap_or(0))
            .unwrap_or(0);
        std::fs::write(
            node.dir.join("resources/broken.yaml"),
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: bad}\nspec: {peerIP: not-an-ip, asNumber: 1}\n",
        )?;
        wait_until("the skipped resource is reported", CONVERGE, || {
            let log = tern.log();
            Ok(log.lines().any(|l| {
                l.contains("broken.yaml")
                    && l.contains("BGPPeer")
                    && l.contains("spec.peerIP")
                    && l.contains("skipped")
            }))
        })?;
        let after = node.peers()?;
        ensure!(
            after.len() == 1
                && after[0]["state"] == "Established"
                && after[0]["flaps"].as_u64().unwrap_or(0) == flaps_before,
            "a skipped resource changed the running peers: {after:?}"
        );
        ensure!(bird.bgp_state("tern")? == "Established");
        Ok(())
    });
}
