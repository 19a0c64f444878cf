//! Scenario `security` (interop/scenarios/security/README.md): TCP-MD5 with BIRD and FRR
//! through `tern run` (BGPPeer passwords from a Secret): the right password establishes, a
//! wrong one never does while the kernels drop the signed segments (TCPMD5Failure rising); GTSM
//! with FRR (BGPPeer ttlSecurity); a speaker tern does not know gets no byte and the configured
//! sessions stay Established; a BGPPeer whose Secret is missing never comes up (fail closed).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use interop::evil::{Incoming, RawPeer, RawSession};
use interop::prelude::*;
use interop::tern_node::{
    Manifests, TernNode, kernel_routes, plan, plan_datastore, tcp_ext_counter,
};

const TIMEOUT: Duration = Duration::from_secs(90);
const TERN_IP: &str = "10.0.0.1";
const TERN_AS: u32 = 64512;
const BIRD_OK: (&str, u32) = ("10.0.0.2", 65002);
const FRR_OK: (&str, u32) = ("10.0.0.3", 65003);
const BIRD_BAD: (&str, u32) = ("10.0.0.4", 65004);
const FRR_BAD: (&str, u32) = ("10.0.0.5", 65005);
const GHOST: (&str, u32) = ("10.0.0.6", 65006);
const STRANGER_IP: &str = "10.0.0.9";
const BIRD_PASSWORD: &str = "bird-secret-1";
const FRR_PASSWORD: &str = "frr-secret-2";

fn manifests() -> Manifests {
    let password =
        |secret: &str| format!("password: {{secretKeyRef: {{name: {secret}, key: password}}}}");
    Manifests::new()
        .bgp_configuration(false, TERN_AS)
        .ippool("pool", "10.244.0.0/16", "Never")
        .node("tern-1", &format!("{TERN_IP}/24"), None, &[], None)
        .block("tern-1", "10.244.1.0/26")
        .secret("bgp-bird", "password", BIRD_PASSWORD)
        .secret("bgp-frr", "password", FRR_PASSWORD)
        .bgp_peer(
            "bird-ok",
            &format!(
                "peerIP: {}, asNumber: {}, {}",
                BIRD_OK.0,
                BIRD_OK.1,
                password("bgp-bird")
            ),
        )
        .bgp_peer(
            "frr-ok",
            &format!(
                "peerIP: {}, asNumber: {}, ttlSecurity: 1, {}",
                FRR_OK.0,
                FRR_OK.1,
                password("bgp-frr")
            ),
        )
        .bgp_peer(
            "bird-bad",
            &format!(
                "peerIP: {}, asNumber: {}, {}",
                BIRD_BAD.0,
                BIRD_BAD.1,
                password("bgp-bird")
            ),
        )
        .bgp_peer(
            "frr-bad",
            &format!(
                "peerIP: {}, asNumber: {}, {}",
                FRR_BAD.0,
                FRR_BAD.1,
                password("bgp-frr")
            ),
        )
        .bgp_peer(
            "ghost",
            &format!(
                "peerIP: {}, asNumber: {}, {}",
                GHOST.0,
                GHOST.1,
                password("no-such-secret")
            ),
        )
}

#[test]
fn plan_security() {
    if !interop::peers::tern::tern_binary().is_file() {
        interop::scenario::missing_prerequisite(
            "plan_security",
            "the tern binary is not built (cargo build --bin tern)",
        );
        return;
    }
    let dir = plan_datastore(&manifests(), "security").unwrap();
    let p = plan("tern-1", &dir).unwrap();
    let peerings = p["peerings"].as_array().unwrap();
    assert_eq!(peerings.len(), 5);
    for peering in peerings {
        let state = peering["password"]["status"]["state"]
            .as_str()
            .unwrap_or_default();
        let address = peering["address"].as_str().unwrap();
        if address == GHOST.0 {
            assert_ne!(state, "resolved", "{peering}");
        } else {
            assert_eq!(state, "resolved", "{peering}");
        }
        if address == FRR_OK.0 {
            assert_eq!(
                peering["ttl"]["security"]["hops"].as_u64(),
                Some(1),
                "{peering}"
            );
        }
    }
}

fn bird_with_password(
    ns: &Netns,
    artifacts: &Artifacts,
    label: &str,
    (ip, asn): (&str, u32),
    password: &str,
) -> Result<Bird> {
    let v4 = [Family::Ipv4Unicast];
    let mut peer = BirdPeer::new("tern", ip, asn, TERN_IP, TERN_AS, &v4);
    peer.extra = vec![
        format!("password \"{password}\";"),
        "connect retry time 2;".to_owned(),
    ];
    Bird::start(
        ns,
        artifacts,
        label,
        &BirdConfig::new(ip)
            .with_static("own", &[&format!("10.{}.0.0/24", asn - 65000)])
            .with_peer(peer),
    )
}

fn frr_with_password(
    ns: &Netns,
    artifacts: &Artifacts,
    label: &str,
    (ip, asn): (&str, u32),
    password: &str,
    gtsm: bool,
) -> Result<Frr> {
    let v4 = [Family::Ipv4Unicast];
    let mut neighbor = FrrNeighbor::new(TERN_IP, TERN_AS, &v4);
    neighbor.options.push(format!("password {password}"));
    if gtsm {
        neighbor.options.push("ttl-security hops 1".to_owned());
    }
    Frr::start(
        ns,
        artifacts,
        label,
        &FrrConfig::new(label, asn, ip).with_neighbor(neighbor),
    )
}

#[test]
fn ns_scenario_security() {
    run_scenario("security", &[BASE, BIRD, FRR, GOBGP], |artifacts| {
        let lan = Switch::new("lan")?;
        let tern_ns = Netns::new("tern")?;
        lan.attach(&tern_ns, "eth0", &[&format!("{TERN_IP}/24")])?;
        let mut peer_ns = Vec::new();
        for (label, (ip, _)) in [
            ("bird-ok", BIRD_OK),
            ("frr-ok", FRR_OK),
            ("bird-bad", BIRD_BAD),
            ("frr-bad", FRR_BAD),
            ("ghost", GHOST),
        ] {
            let ns = Netns::new(label)?;
            lan.attach(&ns, "eth0", &[&format!("{ip}/24")])?;
            peer_ns.push(ns);
        }
        let stranger_ns = Netns::new("stranger")?;
        lan.attach(&stranger_ns, "eth0", &[&format!("{STRANGER_IP}/24")])?;
        let pcap = artifacts.capture(lan.netns(), BRIDGE, "lan.pcap")?;

        let bird_ok =
            bird_with_password(&peer_ns[0], artifacts, "bird-ok", BIRD_OK, BIRD_PASSWORD)?;
        let frr_ok =
            frr_with_password(&peer_ns[1], artifacts, "frr-ok", FRR_OK, FRR_PASSWORD, true)?;
        let bird_bad = bird_with_password(
            &peer_ns[2],
            artifacts,
            "bird-bad",
            BIRD_BAD,
            "not-the-password",
        )?;
        let frr_bad = frr_with_password(
            &peer_ns[3],
            artifacts,
            "frr-bad",
            FRR_BAD,
            "not-the-password",
            false,
        )?;
        // The ghost has no password at all: if tern fell back to no authentication for the
        // peer whose Secret is missing, this session would come up.
        let ghost = Gobgp::start(
            &peer_ns[4],
            artifacts,
            "ghost",
            &GobgpConfig::new(GHOST.1, GHOST.0).with_neighbor(GobgpNeighbor::new(
                TERN_IP,
                TERN_AS,
                &[Family::Ipv4Unicast],
            )),
        )?;
        let md5_failures_before = [
            tcp_ext_counter(&tern_ns, "TCPMD5Failure")?,
            tcp_ext_counter(&peer_ns[2], "TCPMD5Failure")?,
            tcp_ext_counter(&peer_ns[3], "TCPMD5Failure")?,
        ];
        let datastore = manifests().write(artifacts, "datastore")?;
        let mut tern = TernNode::start(&tern_ns, artifacts, "tern-1", &datastore)?;

        // 1. Right passwords (and GTSM with FRR) establish, at both ends.
        tern.wait_established(BIRD_OK.0, TIMEOUT)?;
        tern.wait_established(FRR_OK.0, TIMEOUT)?;
        wait_until("BIRD (right password) Established", TIMEOUT, || {
            Ok(bird_ok.bgp_state("tern")? == "Established")
        })?;
        wait_until("FRR (right password, GTSM) Established", TIMEOUT, || {
            Ok(frr_ok.session_state(TERN_IP)? == "Established")
        })?;
        wait_until(
            "BIRD's route in tern's kernel over the MD5 session",
            TIMEOUT,
            || {
                Ok(kernel_routes(&tern_ns, "bird")?
                    .iter()
                    .any(|p| p == "10.2.0.0/24"))
            },
        )?;

        // 2. Wrong passwords: both kernels drop the other side's signed segments, again and
        // again, and the sessions never come up meanwhile.
        let not_up = |what: &str, state: String| -> Result<()> {
            if state == "Established" {
                bail!("{what} Established with a wrong password");
            }
            Ok(())
        };
        wait_until(
            "MD5 failures rising at tern and at both wrong-password peers",
            TIMEOUT,
            || {
                not_up("tern-bird-bad", tern.peer_state(BIRD_BAD.0)?)?;
                not_up("tern-frr-bad", tern.peer_state(FRR_BAD.0)?)?;
                not_up("bird-bad", bird_bad.bgp_state("tern")?)?;
                not_up("frr-bad", frr_bad.session_state(TERN_IP)?)?;
                let now = [
                    tcp_ext_counter(&tern_ns, "TCPMD5Failure")?,
                    tcp_ext_counter(&peer_ns[2], "TCPMD5Failure")?,
                    tcp_ext_counter(&peer_ns[3], "TCPMD5Failure")?,
                ];
                let risen: Vec<u64> = now
                    .iter()
                    .zip(md5_failures_before)
                    .map(|(n, b)| n - b)
                    .collect();
                Ok(if risen.iter().all(|&r| r >= 3) {
                    Check::Ready(())
                } else {
                    pending(format!(
                        "MD5 failures since start (tern, bird-bad, frr-bad): {risen:?}"
                    ))
                })
            },
        )?;

        // 3. Missing Secret: the ghost keeps trying (SYNs on the wire) and never gets a session.
        wait_until("the ghost tried at least 3 times", TIMEOUT, || {
            not_up("tern-ghost", tern.peer_state(GHOST.0)?)?;
            not_up("ghost", ghost.session_state(TERN_IP)?)?;
            let syns = pcap.count(&format!(
                "ip.src=={} && tcp.dstport==179 && tcp.flags.syn==1 && tcp.flags.ack==0",
                GHOST.0
            ))?;
            Ok(if syns >= 3 {
                Check::Ready(())
            } else {
                pending(format!("{syns} SYNs"))
            })
        })?;
        let peers = tern.show_json(&["peers"])?.to_string().to_ascii_lowercase();
        ensure!(
            peers.contains("no-such-secret") || peers.contains("secret"),
            "tern does not report the missing Secret: {peers}"
        );

        // 4. A speaker tern does not know gets no byte: closed before anything is sent.
        let mut stranger = RawPeer::connect(
            &stranger_ns,
            SocketAddr::new(TERN_IP.parse()?, 179),
            RawSession::new(65009, STRANGER_IP.parse()?),
        )?;
        let open = stranger.session().open_bytes()?;
        let _ = stranger.send_raw(&open);
        match stranger.read_message(TIMEOUT)? {
            Incoming::Closed { partial, .. } if partial.is_empty() => {}
            other => bail!("the stranger got {other:?} instead of a close before any byte"),
        }
        // ... and the configured sessions are undisturbed.
        ensure!(
            tern.peer_state(BIRD_OK.0)? == "Established",
            "BIRD session lost"
        );
        ensure!(
            tern.peer_state(FRR_OK.0)? == "Established",
            "FRR session lost"
        );
        ensure!(
            frr_ok.session_state(TERN_IP)? == "Established",
            "FRR lost its session"
        );
        ensure!(tern.is_running(), "tern exited: {}", tern.log());
        // Passwords never appear in tern's log or status.
        for secret in [BIRD_PASSWORD, FRR_PASSWORD] {
            ensure!(!tern.log().contains(secret), "password in tern's log");
            ensure!(!peers.contains(secret), "password in tern show peers");
        }
        drop(pcap);
        Ok(())
    });
}
