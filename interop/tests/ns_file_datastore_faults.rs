//! File datastore faults (issue 12, item 4) in a three-node cluster under an FRR ToR: a
//! manifest file that is emptied, deleted or replaced by a directory, and the whole manifest
//! directory removed and created again, are taken like a failed list: every node keeps its
//! last good state (the ToR keeps every pod block, the nodes keep the ToR's default route and
//! each other's blocks, no session is reset) and says so in its log; edits made after the
//! directory came back are picked up; a resource edited out of a file that still parses is
//! withdrawn.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use interop::prelude::*;
use interop::tern_node::{Manifests, TernNode, kernel_routes};

const TIMEOUT: Duration = Duration::from_secs(90);
const TOR_AS: u32 = 65101;
const TOR_IP: &str = "10.1.1.1";
/// (name, address, AS, block)
const NODES: [(&str, &str, u32, &str); 3] = [
    ("n1", "10.1.1.11", 64611, "10.244.1.0/26"),
    ("n2", "10.1.1.12", 64612, "10.244.2.0/26"),
    ("n3", "10.1.1.13", 64613, "10.244.3.0/26"),
];
/// A block added to n1 after the manifest directory came back.
const LATE_BLOCK: &str = "10.244.1.64/26";

fn base() -> String {
    let mut m =
        Manifests::new()
            .bgp_configuration(false, 64512)
            .ippool("pool", "10.244.0.0/16", "Never");
    for (name, ip, asn, _) in NODES {
        m = m.node(name, &format!("{ip}/24"), Some(asn), &[], None);
    }
    m.render()
}

fn peers() -> String {
    Manifests::new()
        .bgp_peer("tor", &format!("peerIP: {TOR_IP}, asNumber: {TOR_AS}"))
        .render()
}

fn blocks(late: bool) -> String {
    let mut m = Manifests::new();
    for (name, .., block) in NODES {
        m = m.block(name, block);
    }
    if late {
        m = m.block("n1", LATE_BLOCK);
    }
    m.render()
}

fn write_all(dir: &Path, late: bool) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (file, text) in [
        ("base.yaml", base()),
        ("peers.yaml", peers()),
        ("blocks.yaml", blocks(late)),
    ] {
        // Written whole and renamed into place, as careful tools do.
        let tmp = dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, dir.join(file))?;
    }
    Ok(())
}

/// The ToR's BGP table prefixes.
fn tor_prefixes(tor: &Frr) -> Result<Vec<String>> {
    let out = tor.vtysh(&["show bgp ipv4 unicast json"])?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    Ok(v["routes"]
        .as_object()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default())
}

/// Sessions the ToR saw established with each node so far.
fn established_counts(tor: &Frr) -> Result<Vec<u64>> {
    NODES
        .iter()
        .map(|(_, ip, ..)| {
            tor.neighbor(ip)?["connectionsEstablished"]
                .as_u64()
                .with_context(|| format!("no connectionsEstablished for {ip}"))
        })
        .collect()
}

/// Every node's kernel has the ToR's default route and the other nodes' blocks.
fn kernels_complete(nodes: &[Netns], late: bool) -> Result<Check<()>> {
    for ((name, .., own), ns) in NODES.iter().zip(nodes) {
        let routes = kernel_routes(ns, "bird")?;
        let mut want: Vec<&str> = NODES.iter().map(|n| n.3).filter(|b| b != own).collect();
        want.push("default");
        if late && *name != "n1" {
            want.push(LATE_BLOCK);
        }
        if let Some(missing) = want.iter().find(|w| !routes.iter().any(|r| r == *w)) {
            return Ok(pending(format!("{name} lacks {missing}: {routes:?}")));
        }
    }
    Ok(Check::Ready(()))
}

/// Waits until every node has logged a datastore problem containing `needle`.
fn wait_problem(terns: &[TernNode], needle: &str) -> Result<()> {
    for tern in terns {
        wait_until(
            &format!("{} reports `{needle}`", tern.name),
            TIMEOUT,
            || {
                let log = tern.log();
                Ok(log
                    .lines()
                    .any(|l| l.contains("WARN") && l.contains("datastore") && l.contains(needle)))
            },
        )?;
    }
    Ok(())
}

/// Nothing was lost: the ToR has every block, every kernel is complete, no session was reset.
fn nothing_lost(
    tor: &Frr,
    nodes: &[Netns],
    sessions: &[u64],
    late: bool,
    what: &str,
) -> Result<()> {
    let prefixes = tor_prefixes(tor)?;
    for (.., block) in NODES {
        ensure!(
            prefixes.iter().any(|p| p == block),
            "{what}: the ToR lost {block}: {prefixes:?}"
        );
    }
    if let Check::Pending(why) = kernels_complete(nodes, late)? {
        anyhow::bail!("{what}: {why}");
    }
    let now = established_counts(tor)?;
    ensure!(
        now == sessions,
        "{what}: sessions were reset ({sessions:?} -> {now:?})"
    );
    Ok(())
}

#[test]
fn ns_file_datastore_faults_lose_nothing() {
    run_scenario("file-datastore-faults", &[BASE, FRR], |artifacts| {
        let rack = Switch::new("rack")?;
        let tor_ns = Netns::new("tor")?;
        rack.attach(&tor_ns, "eth0", &[&format!("{TOR_IP}/24")])?;
        let mut nodes = Vec::new();
        for (name, ip, ..) in NODES {
            let ns = Netns::new(name)?;
            rack.attach(&ns, "eth0", &[&format!("{ip}/24")])?;
            nodes.push(ns);
        }
        let v4 = [Family::Ipv4Unicast];
        let mut config = FrrConfig::new("tor", TOR_AS, TOR_IP);
        for (_, ip, asn, _) in NODES {
            let mut n = FrrNeighbor::new(ip, asn, &v4);
            n.family_options = vec!["default-originate".to_owned()];
            config = config.with_neighbor(n);
        }
        let tor = Frr::start(&tor_ns, artifacts, "tor", &config)?;

        let dir: PathBuf = artifacts.subdir("datastore")?.join("manifests");
        write_all(&dir, false)?;
        let mut terns = Vec::new();
        for ((name, ..), ns) in NODES.iter().zip(&nodes) {
            terns.push(TernNode::start(ns, artifacts, name, &dir)?);
        }
        for ((_, ip, ..), tern) in NODES.iter().zip(&terns) {
            tern.wait_established(TOR_IP, TIMEOUT)?;
            wait_until(&format!("ToR Established with {ip}"), TIMEOUT, || {
                Ok(tor.session_state(ip)? == "Established")
            })?;
        }
        wait_until("every block at the ToR", TIMEOUT, || {
            let p = tor_prefixes(&tor)?;
            Ok(NODES.iter().all(|n| p.iter().any(|x| x == n.3)))
        })?;
        wait_until("every kernel complete", TIMEOUT, || {
            kernels_complete(&nodes, false)
        })?;
        let sessions = established_counts(&tor)?;

        // 1. The blocks file emptied (a truncated write).
        std::fs::write(dir.join("blocks.yaml"), "")?;
        wait_problem(&terns, "blocks.yaml: the file is empty")?;
        nothing_lost(&tor, &nodes, &sessions, false, "blocks.yaml emptied")?;
        write_all(&dir, false)?;

        // 2. The blocks file deleted.
        std::fs::remove_file(dir.join("blocks.yaml"))?;
        wait_problem(&terns, "blocks.yaml: the file is gone")?;
        nothing_lost(&tor, &nodes, &sessions, false, "blocks.yaml deleted")?;
        write_all(&dir, false)?;

        // 3. The peers file deleted, then replaced by a directory.
        std::fs::remove_file(dir.join("peers.yaml"))?;
        wait_problem(&terns, "peers.yaml: the file is gone")?;
        std::fs::create_dir(dir.join("peers.yaml"))?;
        // A directory named like a manifest is no file: still gone, still kept.
        nothing_lost(&tor, &nodes, &sessions, false, "peers.yaml deleted")?;
        std::fs::remove_dir(dir.join("peers.yaml"))?;
        write_all(&dir, false)?;

        // 4. The whole directory removed, then created again: kept meanwhile, and an edit made
        // after it is back is picked up.
        std::fs::remove_dir_all(&dir)?;
        wait_problem(&terns, "manifests: cannot read it")?;
        nothing_lost(&tor, &nodes, &sessions, false, "manifest directory removed")?;
        write_all(&dir, true)?;
        wait_until(
            "the ToR gets the block added after the directory came back",
            TIMEOUT,
            || Ok(tor_prefixes(&tor)?.iter().any(|p| p == LATE_BLOCK)),
        )?;
        wait_until("the other kernels get it too", TIMEOUT, || {
            kernels_complete(&nodes, true)
        })?;
        nothing_lost(
            &tor,
            &nodes,
            &sessions,
            true,
            "after the directory came back",
        )?;

        // 5. Editing a resource out of a file that still parses deletes it.
        write_all(&dir, false)?;
        wait_until("the ToR loses the block edited out", TIMEOUT, || {
            Ok(!tor_prefixes(&tor)?.iter().any(|p| p == LATE_BLOCK))
        })?;
        nothing_lost(&tor, &nodes, &sessions, false, "after the edit")?;
        Ok(())
    });
}
