//! Scenario `harness-faults` (interop/scenarios/harness-faults/README.md): the harness's
//! fault tools against real peers. BIRD and GoBGP with a 3 s hold time: freezing GoBGP
//! (`SIGSTOP`) makes BIRD expire its hold timer, resuming it (`SIGCONT`) brings the session
//! back; dropping TCP port 179 with nft does the same, and removing the rule restores it.

use std::time::Duration;

use anyhow::{Result, ensure};
use interop::prelude::*;

const TIMEOUT: Duration = Duration::from_secs(60);
const BIRD_IP: &str = "10.0.0.1";
const GOBGP_IP: &str = "10.0.0.2";

fn state_is(bird: &Bird, want_established: bool) -> Result<Check<()>> {
    let state = bird.bgp_state("gobgp")?;
    Ok(if (state == "Established") == want_established {
        Check::Ready(())
    } else {
        pending(state)
    })
}

#[test]
fn ns_harness_faults() {
    run_scenario("harness-faults", &[BASE, BIRD, GOBGP], |artifacts| {
        let bird_ns = Netns::new("bird")?;
        let gobgp_ns = Netns::new("gobgp")?;
        veth(&bird_ns, "eth0", &gobgp_ns, "eth0")?;
        bird_ns.add_address("eth0", &format!("{BIRD_IP}/24"))?;
        gobgp_ns.add_address("eth0", &format!("{GOBGP_IP}/24"))?;
        let mut pcap = artifacts.capture(&bird_ns, "eth0", "link.pcap")?;

        let v4 = [Family::Ipv4Unicast];
        let mut peer = BirdPeer::new("gobgp", BIRD_IP, 65001, GOBGP_IP, 65002, &v4).calico();
        peer.extra = vec!["hold time 3;".into(), "keepalive time 1;".into()];
        let bird = Bird::start(
            &bird_ns,
            artifacts,
            "bird",
            &BirdConfig::new(BIRD_IP).with_peer(peer),
        )?;
        let mut neighbor = GobgpNeighbor::new(BIRD_IP, 65001, &v4);
        neighbor.hold_time = Some(3);
        let mut gobgp = Gobgp::start(
            &gobgp_ns,
            artifacts,
            "gobgp",
            &GobgpConfig::new(65002, GOBGP_IP).with_neighbor(neighbor),
        )?;
        wait_until("session Established", TIMEOUT, || state_is(&bird, true))?;

        // Frozen peer: TCP stays up, keepalives stop, BIRD's hold timer expires.
        gobgp.process.sigstop()?;
        wait_until(
            "BIRD leaves Established while GoBGP is frozen",
            TIMEOUT,
            || state_is(&bird, false),
        )?;
        let error = wait_until("BIRD reports the hold timer", TIMEOUT, || {
            Ok(bird
                .last_error("gobgp")?
                .filter(|e| e.contains("Hold timer")))
        })?;
        ensure!(
            error.contains("Hold timer expired"),
            "unexpected error {error}"
        );
        gobgp.process.sigcont()?;
        wait_until("session back after SIGCONT", TIMEOUT, || {
            state_is(&bird, true)
        })?;
        wait_until("GoBGP agrees", TIMEOUT, || {
            let state = gobgp.session_state(BIRD_IP)?;
            Ok(if state == "Established" {
                Check::Ready(())
            } else {
                pending(state)
            })
        })?;

        // Silent link: nft drops port 179 in GoBGP's namespace.
        gobgp_ns.drop_tcp_port(179)?;
        wait_until(
            "BIRD leaves Established while 179 is dropped",
            TIMEOUT,
            || state_is(&bird, false),
        )?;
        gobgp_ns.clear_faults()?;
        wait_until(
            "session back after the nft rule is removed",
            TIMEOUT,
            || state_is(&bird, true),
        )?;

        pcap.stop()?;
        Ok(())
    });
}
