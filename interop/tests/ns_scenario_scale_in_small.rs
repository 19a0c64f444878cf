//! Scenario `scale-in-small` (interop/scenarios/scale-in-small/README.md): a raw sender
//! (bgp-proto's UpdateBuilder, ~1,000 prefixes per UPDATE) injects 10,000 routes inside a
//! no-encap pool into `tern run`; tern installs them all (protocol bird) and re-advertises them
//! (Calico's export pipeline accepts routes inside a pool) to GoBGP on a second peer, whose
//! `gobgp global rib` holds all of them; withdrawing them empties both.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Result, ensure};
use interop::evil::{RawPeer, RawSession};
use interop::prelude::*;
use interop::tern_node::{Manifests, TernNode, plan, plan_datastore, plan_peerings};
use ipnet::{IpNet, Ipv4Net};

/// 10,000 routes through netlink and two BGP sessions on a loaded 2-core machine.
const TIMEOUT: Duration = Duration::from_secs(120);
const ROUTES: u32 = 10_000;

/// `SCALE_ROUTES` overrides the count (to investigate with fewer routes).
fn routes() -> u32 {
    std::env::var("SCALE_ROUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROUTES)
}
const TERN_IP: &str = "10.0.0.1";
const SENDER_IP: &str = "10.0.0.2";
const GOBGP_IP: &str = "10.0.0.3";
const TERN_AS: u32 = 64512;
const SENDER_AS: u32 = 65001;
const GOBGP_AS: u32 = 65003;
const INJECT_POOL: &str = "10.128.0.0/9";

/// 10.128.0.0/24, 10.128.1.0/24, ...: `ROUTES` distinct /24s inside the pool.
fn injected() -> Vec<IpNet> {
    let base = u32::from(Ipv4Addr::new(10, 128, 0, 0));
    (0..routes())
        .map(|i| {
            IpNet::V4(Ipv4Net::new(Ipv4Addr::from(base + (i << 8)), 24).expect("valid length"))
        })
        .collect()
}

fn manifests() -> Manifests {
    Manifests::new()
        .bgp_configuration(false, TERN_AS)
        .ippool("pods", "10.244.0.0/16", "Never")
        .ippool("injected", INJECT_POOL, "Never")
        .node("tern-1", &format!("{TERN_IP}/24"), None, &[], None)
        .block("tern-1", "10.244.1.0/26")
        .bgp_peer(
            "sender",
            &format!("peerIP: {SENDER_IP}, asNumber: {SENDER_AS}"),
        )
        .bgp_peer(
            "gobgp",
            &format!("peerIP: {GOBGP_IP}, asNumber: {GOBGP_AS}"),
        )
}

/// tern's routes inside the injected pool (protocol bird).
fn kernel_injected(ns: &Netns) -> Result<usize> {
    let out = ns.ip(["-4", "route", "show", "root", INJECT_POOL, "proto", "bird"])?;
    in_pool(&out)
}

/// Lines of `ip route` output whose destination lies inside the injected pool
/// (`ip route show root <pool>` also lists blackholes outside it: iproute2 applies `root` to
/// unicast routes only).
fn in_pool(out: &str) -> Result<usize> {
    let pool: IpNet = INJECT_POOL.parse()?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<IpNet>().ok())
        .filter(|p| pool.contains(p))
        .count())
}

/// `Destination: N` of `gobgp global rib summary -a ipv4`.
fn gobgp_destinations(gobgp: &Gobgp) -> Result<usize> {
    let out = gobgp.cli(&["global", "rib", "summary", "-a", "ipv4"])?;
    let n = out
        .split("Destination:")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .find(|s| !s.is_empty())
        })
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(n)
}

#[test]
fn plan_scale_in_small() {
    if !interop::peers::tern::tern_binary().is_file() {
        interop::scenario::missing_prerequisite(
            "plan_scale_in_small",
            "the tern binary is not built (cargo build --bin tern)",
        );
        return;
    }
    let dir = plan_datastore(&manifests(), "scale-in-small").unwrap();
    let p = plan("tern-1", &dir).unwrap();
    assert_eq!(
        plan_peerings(&p),
        vec![
            (SENDER_IP.to_owned(), u64::from(SENDER_AS), false),
            (GOBGP_IP.to_owned(), u64::from(GOBGP_AS), false)
        ]
    );
    assert_eq!(injected().len(), ROUTES as usize);
    assert_eq!(
        injected().iter().collect::<BTreeSet<_>>().len(),
        ROUTES as usize
    );
}

#[test]
fn ns_scenario_scale_in_small() {
    run_scenario("scale-in-small", &[BASE, GOBGP], |artifacts| {
        let lan = Switch::new("lan")?;
        let tern_ns = Netns::new("tern")?;
        let sender_ns = Netns::new("sender")?;
        let gobgp_ns = Netns::new("gobgp")?;
        lan.attach(&tern_ns, "eth0", &[&format!("{TERN_IP}/24")])?;
        lan.attach(&sender_ns, "eth0", &[&format!("{SENDER_IP}/24")])?;
        lan.attach(&gobgp_ns, "eth0", &[&format!("{GOBGP_IP}/24")])?;
        let mut pcap = artifacts.capture(lan.netns(), BRIDGE, "lan.pcap")?;
        let v4 = [Family::Ipv4Unicast];
        let gobgp = Gobgp::start(
            &gobgp_ns,
            artifacts,
            "gobgp",
            &GobgpConfig::new(GOBGP_AS, GOBGP_IP)
                .with_neighbor(GobgpNeighbor::new(TERN_IP, TERN_AS, &v4)),
        )?;
        let datastore = manifests().write(artifacts, "datastore")?;
        let tern = TernNode::start(&tern_ns, artifacts, "tern-1", &datastore)?;
        tern.wait_established(GOBGP_IP, TIMEOUT)?;
        let tern_addr = SocketAddr::new(TERN_IP.parse()?, 179);
        let mut sender = wait_until("raw sender Established with tern", TIMEOUT, || {
            RawPeer::establish(
                &sender_ns,
                tern_addr,
                RawSession::new(SENDER_AS, SENDER_IP.parse()?),
                Duration::from_secs(10),
            )
            .map(Some)
        })?;
        let prefixes = injected();
        sender.announce_ipv4(&prefixes, SENDER_IP.parse()?)?;

        // tern installs every route. Each poll the sender sends a KEEPALIVE and reads what tern
        // sent (failing on a NOTIFICATION or a close): the session stays up throughout.
        wait_until("10,000 routes in tern's kernel", TIMEOUT, || {
            sender.stay_up_for(Duration::from_millis(20))?;
            let n = kernel_injected(&tern_ns)?;
            Ok(if n == routes() as usize {
                Check::Ready(())
            } else {
                pending(format!("{n} routes"))
            })
        })?;
        // ... and re-advertises them: GoBGP holds all (plus tern's own block).
        wait_until("10,000 routes at GoBGP", TIMEOUT, || {
            sender.stay_up_for(Duration::from_millis(20))?;
            let n = gobgp_destinations(&gobgp)?;
            Ok(if n > routes() as usize {
                Check::Ready(())
            } else {
                pending(format!("{n} destinations"))
            })
        })?;
        let at_gobgp: BTreeSet<String> = gobgp
            .rib_prefixes(Family::Ipv4Unicast)?
            .into_iter()
            .collect();
        let missing: Vec<String> = prefixes
            .iter()
            .map(ToString::to_string)
            .filter(|p| !at_gobgp.contains(p))
            .collect();
        ensure!(
            missing.is_empty(),
            "{} prefixes missing at GoBGP, e.g. {:?}",
            missing.len(),
            missing.first()
        );

        // Withdrawing them empties tern's kernel and GoBGP.
        sender.withdraw_ipv4(&prefixes)?;
        wait_until("injected routes gone from tern's kernel", TIMEOUT, || {
            sender.stay_up_for(Duration::from_millis(20))?;
            let n = kernel_injected(&tern_ns)?;
            Ok(if n == 0 {
                Check::Ready(())
            } else {
                pending(format!("{n} routes"))
            })
        })?;
        wait_until("injected routes gone at GoBGP", TIMEOUT, || {
            sender.stay_up_for(Duration::from_millis(20))?;
            let n = gobgp_destinations(&gobgp)?;
            Ok(if n <= 1 {
                Check::Ready(())
            } else {
                pending(format!("{n} destinations"))
            })
        })?;
        let left = in_pool(&tern_ns.ip(["-4", "route", "show", "root", INJECT_POOL])?)?;
        ensure!(
            left == 0,
            "{left} routes (any protocol) left in the injected pool"
        );
        pcap.stop()?;
        Ok(())
    });
}
