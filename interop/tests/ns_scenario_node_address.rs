//! Issue 12, "Also" (`interop/scenarios/node-address/README.md`): the Node's BGP address and
//! the router id tern reports. A Node address on no local interface is a warning in the log and
//! in `tern show status` until the address appears; a changed Node address changes the router
//! id in `tern show status` to the one the sessions use (BIRD's `Neighbor ID`).

use std::time::Duration;

use anyhow::{Context as _, Result};
use interop::cluster::*;
use interop::prelude::*;
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);
const TERN_IP: &str = "10.0.0.1";
/// The Node's address at first: not on tern's interface.
const MOVED_IP: &str = "10.0.0.9";
const BIRD_IP: &str = "10.0.0.2";
const TERN_AS: u32 = 64512;
const BIRD_AS: u32 = 65002;

fn cluster(node_ip: &str) -> CalicoCluster {
    CalicoCluster::new(TERN_AS)
        .with_node("node-a", &format!("{node_ip}/24"))
        .with_document(&format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {{name: bird}}\n\
             spec: {{peerIP: {BIRD_IP}, asNumber: {BIRD_AS}}}"
        ))
}

fn bird_config(tern_ip: &str) -> BirdConfig {
    let mut peer = BirdPeer::new(
        "tern",
        BIRD_IP,
        BIRD_AS,
        tern_ip,
        TERN_AS,
        &[Family::Ipv4Unicast],
    );
    peer.extra.push("connect retry time 1;".into());
    let mut config = BirdConfig::new(BIRD_IP).with_peer(peer);
    config.kernel = false;
    config
}

/// `tern show status --json`: its warnings.
fn warnings(status: &Value) -> Vec<String> {
    status["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// BIRD's `Neighbor ID` of protocol `tern` (the BGP identifier tern's OPEN carried).
fn neighbor_id(bird: &Bird) -> Result<Option<String>> {
    let out = bird.birdc(&["show", "protocols", "all", "tern"])?;
    Ok(out
        .lines()
        .find(|l| l.trim_start().starts_with("Neighbor ID:"))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned()))
}

#[test]
fn ns_scenario_node_address() {
    run_scenario("node-address", &[BASE, BIRD], |artifacts| {
        let lan = Switch::new("lan")?;
        let tern_ns = Netns::new("tern")?;
        let bird_ns = Netns::new("bird")?;
        lan.attach(&tern_ns, "eth0", &[&format!("{TERN_IP}/24")])?;
        lan.attach(&bird_ns, "eth0", &[&format!("{BIRD_IP}/24")])?;
        let bird = Bird::start(&bird_ns, artifacts, "bird", &bird_config(MOVED_IP))?;
        let mut tern = TernNode::start(
            &tern_ns,
            artifacts,
            &cluster(MOVED_IP),
            TernSettings::fast("node-a"),
        )?;

        // 1. The Node's address is on no interface of tern's namespace: a warning, in the
        //    status and in the log.
        let warning = wait_until("tern show status: the address warning", TIMEOUT, || {
            let status = tern.show(&["status"])?;
            Ok(
                match warnings(&status)
                    .into_iter()
                    .find(|w| w.contains(MOVED_IP) && w.contains("no local interface"))
                {
                    Some(w) => Check::Ready(w),
                    None => pending(format!("{status}")),
                },
            )
        })?;
        wait_until("the warning in tern's log", TIMEOUT, || {
            Ok(tern.log().contains("no local interface"))
        })?;
        let status = tern.show(&["status"])?;
        anyhow::ensure!(
            status["router_id"] == MOVED_IP,
            "router id {} (the Node's address is {MOVED_IP})",
            status["router_id"]
        );

        // 2. The address appears: the warning goes, the session comes up from it.
        tern_ns.add_address("eth0", &format!("{MOVED_IP}/24"))?;
        wait_until("tern show status: no address warning", TIMEOUT, || {
            let status = tern.show(&["status"])?;
            Ok(if warnings(&status).contains(&warning) {
                pending(format!("{status}"))
            } else {
                Check::Ready(())
            })
        })?;
        wait_until("tern: BIRD Established", TIMEOUT, || {
            tern.all_established(&[BIRD_IP])
        })?;
        wait_until("BIRD: tern's router id", TIMEOUT, || {
            Ok(neighbor_id(&bird)?.as_deref() == Some(MOVED_IP))
        })?;

        // 3. The Node's address changes back to 10.0.0.1 (BIRD follows it): the status shows
        //    the router id the new sessions carry.
        tern.write_resources(&cluster(TERN_IP))?;
        std::fs::write(bird.config_path(), bird_config(TERN_IP).render())?;
        bird.birdc(&["configure"])?;
        wait_until("tern show status: the new router id", TIMEOUT, || {
            let status = tern.show(&["status"])?;
            Ok(if status["router_id"] == TERN_IP {
                Check::Ready(())
            } else {
                pending(format!("router id {}", status["router_id"]))
            })
        })?;
        wait_until("BIRD: the new router id of tern", TIMEOUT, || {
            Ok(match neighbor_id(&bird)? {
                Some(id) if id == TERN_IP && bird.bgp_state("tern")? == "Established" => {
                    Check::Ready(())
                }
                other => pending(format!("neighbor id {other:?}")),
            })
        })?;
        let status = tern.show(&["status"])?;
        anyhow::ensure!(
            warnings(&status).is_empty(),
            "warnings left: {:?}",
            warnings(&status)
        );
        let peer = tern.peer(BIRD_IP)?.context("BIRD is not a peer of tern")?;
        anyhow::ensure!(peer["state"] == "Established", "{peer}");
        Ok(())
    });
}
