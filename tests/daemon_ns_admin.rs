//! The admin commands of a running `tern run` against two real BIRD peers: the real `birdc`
//! on tern's BIRD-compatible socket disables one peer (Cease/2, Administrative Shutdown, seen on
//! the wire and in BIRD's own last error) and enables it again; `tern peer restart NAME` resets
//! only that session (Cease/4) while the other stays Established with its uptime unchanged;
//! `tern reload` re-reads the datastore; the daemon logs each request with the caller's uid.
//! Needs root and BIRD; fails otherwise (skips with `TERN_ALLOW_SKIP=1`).

mod daemon_common;

use anyhow::{Context as _, Result, bail, ensure};
use daemon_common::*;
use interop::prelude::*;

const TERN_IP: &str = "10.0.0.1";
const P1_IP: &str = "10.0.0.2";
const P2_IP: &str = "10.0.0.3";
const TERN_AS: u32 = 64512;
const P1_AS: u32 = 65002;
const P2_AS: u32 = 65003;
const P1: &str = "Global_10_0_0_2";
const P2: &str = "Global_10_0_0_3";

fn bird_peer(ip: &str, asn: u32) -> BirdPeer {
    BirdPeer::new("tern", ip, asn, TERN_IP, TERN_AS, &[Family::Ipv4Unicast]).calico()
}

/// `tern <args> --socket <admin socket>`: (exit success, stdout + stderr).
fn tern_admin(node: &TernNode, args: &[&str]) -> Result<(bool, String)> {
    let out = std::process::Command::new(tern_bin())
        .args(args)
        .arg("--socket")
        .arg(node.run.join("tern-admin.ctl"))
        .output()?;
    Ok((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// The `since` of peer `address` in `tern show peers --json`.
fn since(node: &TernNode, address: &str) -> Result<serde_json::Value> {
    for p in node.peers()? {
        if p["address"].as_str() == Some(address) {
            return Ok(p["since"].clone());
        }
    }
    bail!("no peer {address}")
}

/// Packets matching `filter` in the capture so far (retried: the file may end in a packet
/// being written).
fn count(pcap: &Capture, filter: &str) -> Result<usize> {
    wait_until(
        &format!("reading the capture for {filter}"),
        CONVERGE,
        || Ok(Some(pcap.count(filter)?)),
    )
}

/// Cease NOTIFICATIONs from tern (10.0.0.1) with this subcode in the capture so far.
fn ceases(pcap: &Capture, to: &str, subcode: u8) -> Result<usize> {
    count(
        pcap,
        &format!(
            "ip.src == {TERN_IP} && ip.dst == {to} && bgp.type == 3 && bgp.notify.major_error == 6 \
             && bgp.notify.minor_error_cease == {subcode}"
        ),
    )
}

#[test]
fn ns_daemon_admin_commands() {
    run_scenario("daemon-admin", &[BASE, BIRD, TSHARK], |artifacts| {
        let lan = Switch::new("lan")?;
        let tern_ns = Netns::new("tern")?;
        let p1_ns = Netns::new("p1")?;
        let p2_ns = Netns::new("p2")?;
        lan.attach(&tern_ns, "eth0", &[&format!("{TERN_IP}/24")])?;
        lan.attach(&p1_ns, "eth0", &[&format!("{P1_IP}/24")])?;
        lan.attach(&p2_ns, "eth0", &[&format!("{P2_IP}/24")])?;
        let pcap = artifacts.capture(lan.netns(), BRIDGE, "lan.pcap")?;
        let p1 = Bird::start(
            &p1_ns,
            artifacts,
            "p1",
            &BirdConfig::new(P1_IP).with_peer(bird_peer(P1_IP, P1_AS)),
        )?;
        let p2 = Bird::start(
            &p2_ns,
            artifacts,
            "p2",
            &BirdConfig::new(P2_IP).with_peer(bird_peer(P2_IP, P2_AS)),
        )?;
        let node = TernNode::write(
            artifacts,
            "n1",
            &single_node_manifests(&[(P1_IP, P1_AS), (P2_IP, P2_AS)]),
            "",
        )?;
        let _tern = node.start(&tern_ns, artifacts)?;
        for ip in [P1_IP, P2_IP] {
            wait_until(&format!("tern Established with {ip}"), CONVERGE, || {
                Ok(node.peer_state(ip)? == "Established")
            })?;
        }
        // The admin socket is the owner's only.
        let admin = node.run.join("tern-admin.ctl");
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&admin)?.permissions());
        ensure!(mode & 0o777 == 0o600, "admin socket mode {mode:o}");
        // And the read-only socket refuses mutating requests.
        let out = std::process::Command::new(tern_bin())
            .args(["peer", "disable", P1, "--socket"])
            .arg(node.control())
            .output()?;
        ensure!(
            !out.status.success()
                && String::from_utf8_lossy(&out.stderr).contains("read-only control socket"),
            "the read-only socket took a mutating request: {out:?}"
        );
        ensure!(node.peer_state(P1_IP)? == "Established");

        // birdc disable on tern's BIRD socket: Cease/2 to that peer only.
        let socket = node.birdctl().display().to_string();
        let out = tern_ns.run("birdc", ["-s", &socket, "disable", P1])?;
        artifacts.write("birdc-disable.txt", &out)?;
        ensure!(out.contains(&format!("{P1}: disabled")), "{out}");
        wait_until("Cease/2 to p1 on the wire", CONVERGE, || {
            Ok(ceases(&pcap, P1_IP, 2)? >= 1)
        })?;
        wait_until("p1 (BIRD) saw Administrative shutdown", CONVERGE, || {
            Ok(p1
                .last_error("tern")?
                .is_some_and(|e| e.to_ascii_lowercase().contains("administrative shutdown")))
        })?;
        let p2_since = since(&node, P2_IP)?;
        ensure!(
            ceases(&pcap, P2_IP, 2)? == 0,
            "the other peer got a Cease too"
        );
        // Disabled stays down (BIRD retries; tern refuses) and shows as disabled.
        let protocols = tern_ns.run("birdc", ["-s", &socket, "show", "protocols"])?;
        artifacts.write("birdc-protocols-disabled.txt", &protocols)?;
        let row = protocols
            .lines()
            .find(|l| l.starts_with(P1))
            .context("no p1 row")?;
        ensure!(!row.contains("Established"), "{row}");
        ensure!(
            protocols
                .lines()
                .any(|l| l.starts_with(P2) && l.contains("Established")),
            "p2 is not Established: {protocols}"
        );
        let again = tern_ns.run("birdc", ["-s", &socket, "disable", P1])?;
        ensure!(again.contains("already disabled"), "{again}");

        // birdc enable brings it back.
        let out = tern_ns.run("birdc", ["-s", &socket, "enable", P1])?;
        ensure!(out.contains(&format!("{P1}: enabled")), "{out}");
        wait_until("tern Established with p1 again", CONVERGE, || {
            Ok(node.peer_state(P1_IP)? == "Established")
        })?;
        ensure!(p1.bgp_state("tern")? == "Established");

        // tern peer restart: Cease/4 to p1; p2 untouched (same since, no NOTIFICATION).
        let p1_since = since(&node, P1_IP)?;
        let (ok, out) = tern_admin(&node, &["peer", "restart", P1])?;
        ensure!(ok && out.contains("restarted"), "tern peer restart: {out}");
        wait_until("Cease/4 to p1 on the wire", CONVERGE, || {
            Ok(ceases(&pcap, P1_IP, 4)? >= 1)
        })?;
        wait_until("p1 Established again after the restart", CONVERGE, || {
            Ok(node.peer_state(P1_IP)? == "Established" && since(&node, P1_IP)? != p1_since)
        })?;
        ensure!(node.peer_state(P2_IP)? == "Established");
        ensure!(
            since(&node, P2_IP)? == p2_since,
            "p2's session changed: {} -> {}",
            p2_since,
            since(&node, P2_IP)?
        );
        ensure!(
            count(
                &pcap,
                &format!("ip.src == {TERN_IP} && ip.dst == {P2_IP} && bgp.type == 3")
            )? == 0,
            "p2 got a NOTIFICATION"
        );
        ensure!(p2.bgp_state("tern")? == "Established");

        // tern peer disable / enable through the admin socket, and an unknown name.
        let (ok, out) = tern_admin(&node, &["peer", "disable", P1])?;
        ensure!(ok && out.contains("disabled"), "{out}");
        wait_until("tern shows p1 down and disabled", CONVERGE, || {
            let p = node
                .peers()?
                .into_iter()
                .find(|p| p["address"] == P1_IP)
                .context("p1")?;
            Ok(p["state"] != "Established" && p["enabled"] == false)
        })?;
        let (ok, out) = tern_admin(&node, &["peer", "enable", P1])?;
        ensure!(ok && out.contains("enabled"), "{out}");
        wait_until("p1 Established after tern peer enable", CONVERGE, || {
            Ok(node.peer_state(P1_IP)? == "Established")
        })?;
        let (ok, out) = tern_admin(&node, &["peer", "restart", "Global_10_9_9_9"])?;
        ensure!(!ok && out.contains("no peer named"), "{out}");

        // tern reload re-reads the datastore now.
        let (ok, out) = tern_admin(&node, &["reload"])?;
        ensure!(
            ok && out.contains("configuration unchanged"),
            "tern reload: {out}"
        );

        // Every mutating request is logged with who asked.
        let log = std::fs::read_to_string(artifacts.path("n1-tern.log"))?;
        for what in [
            "BIRD-compatible socket: admin request",
            "control: admin request",
        ] {
            ensure!(
                log.lines().any(|l| l.contains(what) && l.contains("uid=0")),
                "no {what:?} line with the caller in the log"
            );
        }
        Ok(())
    });
}
