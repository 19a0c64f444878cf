//! `tern run` as a Calico route reflector (Node with routeReflectorClusterID, mesh off, BGPPeer
//! with peerSelector) serving a tern client, a BIRD client and a GoBGP client: each client's own
//! CLI shows the others' routes with ORIGINATOR_ID and CLUSTER_LIST, and two clients advertising
//! the same prefix give a multipath route in the tern nodes' kernels.
//! Needs root, BIRD and GoBGP; fails otherwise (skips with `TERN_ALLOW_SKIP=1`).

mod daemon_common;

use anyhow::{Context as _, ensure};
use daemon_common::*;
use interop::prelude::*;
use serde_json::Value;

const RR_IP: &str = "10.0.0.1";
const C1_IP: &str = "10.0.0.2";
const BIRD_IP: &str = "10.0.0.3";
const GOBGP_IP: &str = "10.0.0.4";
const CLUSTER: &str = "1.1.1.1";
const AS: u32 = 64512;

const MANIFESTS: &str = r#"
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {asNumber: 64512, nodeToNodeMeshEnabled: false, programClusterRoutes: Enabled}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pods}
spec: {cidr: 10.244.0.0/16, ipipMode: Never, blockSize: 26}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: rr, labels: {route-reflector: "true"}}
spec: {bgp: {ipv4Address: 10.0.0.1/24, routeReflectorClusterID: 1.1.1.1}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: c1}
spec: {bgp: {ipv4Address: 10.0.0.2/24}}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: to-reflectors}
spec: {nodeSelector: all(), peerSelector: route-reflector == 'true'}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: bird-client}
spec: {node: rr, peerIP: 10.0.0.3, asNumber: 64512}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: gobgp-client}
spec: {node: rr, peerIP: 10.0.0.4, asNumber: 64512}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: c1-a}
spec: {state: confirmed, node: c1, cidr: 10.244.2.0/26, type: host}
"#;

fn multipath_gateways(route: &Value) -> Vec<String> {
    let mut g: Vec<String> = route["nexthops"]
        .as_array()
        .map(|hops| {
            hops.iter()
                .filter_map(|h| h["gateway"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    g.sort();
    g
}

#[test]
fn ns_daemon_route_reflector() {
    run_scenario(
        "daemon-route-reflector",
        &[BASE, BIRD, GOBGP],
        |artifacts| {
            let lan = Switch::new("lan")?;
            let mut nss = Vec::new();
            for (label, ip) in [
                ("rr", RR_IP),
                ("c1", C1_IP),
                ("bird", BIRD_IP),
                ("gobgp", GOBGP_IP),
            ] {
                let ns = Netns::new(label)?;
                lan.attach(&ns, "eth0", &[&format!("{ip}/24")])?;
                nss.push(ns);
            }
            let (rr_ns, c1_ns, bird_ns, gobgp_ns) = (&nss[0], &nss[1], &nss[2], &nss[3]);
            let v4 = [Family::Ipv4Unicast];

            let bird = Bird::start(
                bird_ns,
                artifacts,
                "bird",
                &BirdConfig::new(BIRD_IP)
                    .with_static("own", &["10.244.3.0/26", "10.244.9.0/26"])
                    .with_peer(BirdPeer::new("reflector", BIRD_IP, AS, RR_IP, AS, &v4).calico()),
            )?;
            let mut neighbor = GobgpNeighbor::new(RR_IP, AS, &v4);
            neighbor.add_paths = true;
            neighbor.graceful_restart = true;
            let gobgp = Gobgp::start(
                gobgp_ns,
                artifacts,
                "gobgp",
                &GobgpConfig::new(AS, GOBGP_IP).with_neighbor(neighbor),
            )?;
            let rr = TernNode::write(artifacts, "rr", MANIFESTS, "")?;
            let c1 = TernNode::write(artifacts, "c1", MANIFESTS, "")?;
            let _rr = rr.start(rr_ns, artifacts)?;
            let _c1 = c1.start(c1_ns, artifacts)?;

            for ip in [C1_IP, BIRD_IP, GOBGP_IP] {
                wait_until(
                    &format!("reflector Established with {ip}"),
                    CONVERGE,
                    || Ok(rr.peer_state(ip)? == "Established"),
                )?;
            }
            let reflector = rr.peers()?;
            ensure!(
                reflector
                    .iter()
                    .all(|p| p["route_reflector_client"] == true),
                "every iBGP peer is a client of the reflector: {reflector:?}"
            );
            gobgp.announce("10.244.4.0/26", &[])?;
            // GoBGP defaults to ORIGIN incomplete; BIRD sends IGP: make them equal for ECMP.
            gobgp.announce("10.244.9.0/26", &["origin", "igp"])?;

            // BIRD client: GoBGP's and c1's routes, reflected with ORIGINATOR_ID and CLUSTER_LIST.
            for (prefix, originator) in [("10.244.4.0/26", GOBGP_IP), ("10.244.2.0/26", C1_IP)] {
                let out = wait_until(&format!("BIRD has {prefix}"), CONVERGE, || {
                    let out = bird.birdc(&["show", "route", "all", prefix])?;
                    Ok(out.contains("BGP.originator_id").then_some(out))
                })?;
                artifacts.write(&format!("bird-{}.txt", prefix.replace('/', "_")), &out)?;
                ensure!(
                    out.lines()
                        .any(|l| l.contains("BGP.originator_id") && l.contains(originator)),
                    "ORIGINATOR_ID {originator}:\n{out}"
                );
                ensure!(
                    out.lines()
                        .any(|l| l.contains("BGP.cluster_list") && l.contains(CLUSTER)),
                    "CLUSTER_LIST {CLUSTER}:\n{out}"
                );
            }
            // GoBGP client: BIRD's and c1's routes with both attributes.
            for (prefix, originator) in [("10.244.3.0/26", BIRD_IP), ("10.244.2.0/26", C1_IP)] {
                let entry = wait_until(&format!("GoBGP has {prefix}"), CONVERGE, || {
                    let out = gobgp.cli(&["global", "rib", "-a", "ipv4", "-j"])?;
                    let v: Value = serde_json::from_str(&out)?;
                    Ok(v.get(prefix).map(|e| e.to_string()))
                })?;
                artifacts.write(&format!("gobgp-{}.json", prefix.replace('/', "_")), &entry)?;
                ensure!(
                    entry.contains(originator) && entry.contains(CLUSTER),
                    "GoBGP {prefix}: no ORIGINATOR_ID {originator} / CLUSTER_LIST {CLUSTER}: {entry}"
                );
            }
            // tern client: BIRD's and GoBGP's routes in its kernel via their own next hops.
            for (prefix, via) in [("10.244.3.0/26", BIRD_IP), ("10.244.4.0/26", GOBGP_IP)] {
                let r = wait_until(&format!("c1's kernel has {prefix}"), CONVERGE, || {
                    kernel_route(c1_ns, prefix)
                })?;
                ensure!(r["gateway"] == via, "{prefix}: {r}");
            }
            // The same prefix from BIRD and GoBGP: multipath in the tern nodes' kernels (the
            // client gets both paths over ADD-PATH from the reflector).
            for (name, ns) in [("rr", rr_ns), ("c1", c1_ns)] {
                let r = wait_until(
                    &format!("{name}: multipath 10.244.9.0/26"),
                    CONVERGE,
                    || {
                        Ok(kernel_route(ns, "10.244.9.0/26")?
                            .filter(|r| multipath_gateways(r) == [BIRD_IP, GOBGP_IP]))
                    },
                )
                .with_context(|| {
                    let routes = std::process::Command::new(tern_bin())
                        .args(["show", "routes", "10.244.9.0/26", "--json", "--socket"])
                        .arg(if name == "rr" {
                            rr.control()
                        } else {
                            c1.control()
                        })
                        .output()
                        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
                    format!(
                        "{name} kernel: {:?}; RIB: {routes:?}",
                        kernel_route(ns, "10.244.9.0/26")
                    )
                })?;
                ensure!(r["protocol"] == "bird", "{r}");
            }
            Ok(())
        },
    );
}
