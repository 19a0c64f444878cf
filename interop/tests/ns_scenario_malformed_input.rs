//! Scenario `malformed-input` (interop/scenarios/malformed-input/README.md): a raw peer
//! (`interop::evil::RawPeer`, on bgp-proto) sends every row of fixtures/malformed-messages.tsv
//! to `tern run` after a sentinel route; the session survives exactly where RFC 7606 (as the
//! codec implements it, docs/rfc-compliance.md) says, and the sentinel proves it. Also F20:
//! a malformed UPDATE replayed after every reconnect, and a flood of treat-as-withdraw UPDATEs
//! on one session, leave the daemon healthy with a rate-limited log.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use interop::evil::{
    Incoming, RawPeer, RawSession, TYPE_KEEPALIVE, TYPE_OPEN, hex, message_type, notification_parts,
};
use interop::malformed::{MalformedRow, Treatment, codec_treatment, load_rows, tsv_path};
use interop::prelude::*;
use interop::tern_node::{Manifests, TernNode, kernel_routes};
use ipnet::IpNet;

const TIMEOUT: Duration = Duration::from_secs(90);
const TERN_IP: &str = "10.0.0.1";
const EVIL_IP: &str = "10.0.0.2";
const EVIL_AS: u32 = 65001;
const TERN_AS: u32 = 64512;
/// Announced before every row; must survive every row that does not reset the session.
const SENTINEL: &str = "10.99.0.0/24";
/// The NLRI of the TSV's UPDATE rows.
const ROW_PREFIX: &str = "10.1.1.0/24";

fn net(s: &str) -> IpNet {
    s.parse().expect("prefix literal")
}

fn evil_session() -> RawSession {
    RawSession::new(EVIL_AS, EVIL_IP.parse().expect("literal"))
}

fn tern_addr() -> SocketAddr {
    SocketAddr::new(TERN_IP.parse().expect("literal"), 179)
}

fn next_hop() -> Ipv4Addr {
    EVIL_IP.parse().expect("literal")
}

/// Whether tern installed `prefix` (protocol bird) in its namespace.
fn installed(ns: &Netns, prefix: &str) -> Result<bool> {
    Ok(kernel_routes(ns, "bird")?.iter().any(|p| p == prefix))
}

fn wait_installed(ns: &Netns, prefix: &str, want: bool, why: &str) -> Result<()> {
    wait_until(
        &format!(
            "{prefix} {} in tern's kernel ({why})",
            if want { "installed" } else { "absent" }
        ),
        TIMEOUT,
        || Ok(installed(ns, prefix)? == want),
    )
}

/// An Established raw session (retried: tern may hold a failed peer down for a while).
fn establish(evil: &Netns) -> Result<RawPeer> {
    wait_until("raw peer Established with tern", TIMEOUT, || {
        RawPeer::establish(evil, tern_addr(), evil_session(), Duration::from_secs(10)).map(Some)
    })
}

/// A fresh probe prefix announced after the row: once tern installs it, tern has read
/// everything before it on the same session, so the session survived the row.
fn probe(peer: &mut RawPeer, ns: &Netns, index: usize) -> Result<()> {
    let prefix = format!("10.98.{index}.0/24");
    peer.announce_ipv4(&[net(&prefix)], next_hop())?;
    wait_installed(ns, &prefix, true, "probe after the row")
}

/// Runs one UPDATE/header row on an Established session; returns the outcome in words and
/// whether the session is still usable.
fn run_update_row(
    ns: &Netns,
    evil: &Netns,
    peer: &mut Option<RawPeer>,
    row: &MalformedRow,
    treatment: &Treatment,
    index: usize,
) -> Result<String> {
    if peer.is_none() {
        *peer = Some(establish(evil)?);
    }
    let p = peer.as_mut().expect("just set");
    p.announce_ipv4(&[net(SENTINEL)], next_hop())?;
    wait_installed(ns, SENTINEL, true, "sentinel before the row")?;
    // Put the row's own prefix in the state that makes the row's effect visible.
    let row_prefix_expected = match treatment {
        Treatment::TreatAsWithdraw => {
            p.announce_ipv4(&[net(ROW_PREFIX)], next_hop())?;
            wait_installed(ns, ROW_PREFIX, true, "valid announcement before the row")?;
            Some(false)
        }
        Treatment::Accept | Treatment::AttributeDiscard if row.bytes.len() > 23 => {
            p.withdraw_ipv4(&[net(ROW_PREFIX)])?;
            wait_installed(ns, ROW_PREFIX, false, "withdrawn before the row")?;
            announces_row_prefix(row).then_some(true)
        }
        _ => None,
    };
    p.send_raw(&row.bytes)?;
    match treatment {
        Treatment::Reset(expected) => {
            let got = p.wait_notification(TIMEOUT)?;
            *peer = None;
            match got {
                Some(raw) if &raw == expected => {}
                Some(raw) => bail!(
                    "NOTIFICATION {} instead of {}",
                    describe(&raw),
                    describe(expected)
                ),
                None => bail!(
                    "closed without NOTIFICATION (expected {})",
                    describe(expected)
                ),
            }
            wait_installed(
                ns,
                SENTINEL,
                false,
                "session reset withdraws the peer's routes",
            )?;
            Ok(format!("reset with {}", describe(expected)))
        }
        Treatment::AfiSafiDisableOrReset(reset) => match p.read_message(Duration::from_secs(5))? {
            Incoming::Message(raw) if raw == *reset => {
                *peer = None;
                wait_installed(ns, SENTINEL, false, "session reset")?;
                Ok(format!("reset with {}", describe(reset)))
            }
            Incoming::Closed { .. } => bail!("closed without the NOTIFICATION {}", describe(reset)),
            _ => {
                probe(p, ns, index)?;
                ensure!(installed(ns, SENTINEL)?, "sentinel lost");
                Ok("kept up (family disabled)".to_owned())
            }
        },
        Treatment::AcceptOpen => bail!("an OPEN row on an Established session"),
        Treatment::Accept | Treatment::AttributeDiscard | Treatment::TreatAsWithdraw => {
            probe(p, ns, index)?;
            ensure!(installed(ns, SENTINEL)?, "sentinel {SENTINEL} lost");
            if let Some(want) = row_prefix_expected {
                wait_installed(ns, ROW_PREFIX, want, treatment.label())?;
            }
            Ok(format!(
                "up, sentinel kept{}",
                match row_prefix_expected {
                    Some(true) => ", row prefix installed",
                    Some(false) => ", row prefix withdrawn",
                    None => "",
                }
            ))
        }
    }
}

/// Whether the row announces 10.1.1.0/24 in its NLRI field (the TSV's UPDATE rows end so).
fn announces_row_prefix(row: &MalformedRow) -> bool {
    row.bytes.ends_with(&[0x18, 0x0a, 0x01, 0x01])
}

/// Runs one OPEN row as the OPEN of a fresh connection.
fn run_open_row(
    ns: &Netns,
    evil: &Netns,
    peer: &mut Option<RawPeer>,
    row: &MalformedRow,
    treatment: &Treatment,
) -> Result<String> {
    // Close the Established session first (a second connection would be a collision).
    if let Some(old) = peer.take() {
        drop(old);
        wait_installed(ns, SENTINEL, false, "old session closed")?;
    }
    let mut raw = wait_until("connect to tern", TIMEOUT, || {
        RawPeer::connect(evil, tern_addr(), evil_session()).map(Some)
    })?;
    raw.send_raw(&row.bytes)?;
    match treatment {
        Treatment::Reset(expected) => match raw.wait_notification(TIMEOUT)? {
            Some(got) if &got == expected => Ok(format!("refused with {}", describe(expected))),
            Some(got) => bail!(
                "NOTIFICATION {} instead of {}",
                describe(&got),
                describe(expected)
            ),
            None => bail!(
                "closed without NOTIFICATION (expected {})",
                describe(expected)
            ),
        },
        Treatment::AcceptOpen => {
            let mut saw_open = false;
            loop {
                match raw.read_message(TIMEOUT)? {
                    Incoming::Message(m) if message_type(&m) == Some(TYPE_OPEN) => {
                        saw_open = true;
                        raw.keepalive()?;
                    }
                    Incoming::Message(m)
                        if message_type(&m) == Some(TYPE_KEEPALIVE) && saw_open =>
                    {
                        break;
                    }
                    Incoming::Message(m) => bail!("got {} instead of OPEN/KEEPALIVE", describe(&m)),
                    Incoming::Closed { .. } => bail!("tern closed the connection"),
                    Incoming::TimedOut => bail!("no OPEN/KEEPALIVE from tern"),
                }
            }
            drop(raw);
            Ok("accepted (OPEN + KEEPALIVE back)".to_owned())
        }
        other => bail!("OPEN row with treatment {}", other.label()),
    }
}

fn describe(raw: &[u8]) -> String {
    match notification_parts(raw) {
        Some((code, subcode, data)) => format!("{code}/{subcode} data [{}]", hex(data)),
        None => format!("message type {:?}", message_type(raw)),
    }
}

fn manifests() -> Manifests {
    Manifests::new()
        .bgp_configuration(false, TERN_AS)
        .node("tern-1", &format!("{TERN_IP}/24"), None, &[], None)
        .ippool("pool", "10.244.0.0/16", "Never")
        .block("tern-1", "10.244.1.0/26")
        .bgp_peer("evil", &format!("peerIP: {EVIL_IP}, asNumber: {EVIL_AS}"))
}

#[test]
fn ns_scenario_malformed_input() {
    run_scenario("malformed-input", &[BASE], |artifacts| {
        let tern_ns = Netns::new("tern")?;
        let evil_ns = Netns::new("evil")?;
        veth(&tern_ns, "eth0", &evil_ns, "eth0")?;
        tern_ns.add_address("eth0", &format!("{TERN_IP}/24"))?;
        evil_ns.add_address("eth0", &format!("{EVIL_IP}/24"))?;
        let mut pcap = artifacts.capture(&tern_ns, "eth0", "evil.pcap")?;
        let datastore = manifests().write(artifacts, "tern-1-datastore")?;
        let mut tern = TernNode::start(&tern_ns, artifacts, "tern-1", &datastore)?;

        let rows = load_rows(&tsv_path())?;
        let mut table = Vec::new();
        let mut failures = Vec::new();
        let mut peer: Option<RawPeer> = None;
        for (index, row) in rows.iter().enumerate() {
            let treatment = codec_treatment(row)?;
            let outcome = if row.is_open() {
                run_open_row(&tern_ns, &evil_ns, &mut peer, row, &treatment)
            } else {
                run_update_row(&tern_ns, &evil_ns, &mut peer, row, &treatment, index)
            };
            let (ok, words) = match outcome {
                Ok(words) => (true, words),
                Err(e) => {
                    peer = None;
                    failures.push(row.name.clone());
                    (false, format!("{e:#}"))
                }
            };
            eprintln!(
                "row {}: {} ({})",
                row.name,
                if ok { "ok" } else { "FAIL" },
                words
            );
            table.push(format!(
                "{:<34} {:<24} {:<4} {words}",
                row.name,
                treatment.label(),
                if ok { "ok" } else { "FAIL" }
            ));
            ensure!(
                tern.is_running(),
                "tern exited after row {}: {}",
                row.name,
                tern.log()
            );
        }
        println!("{:<34} {:<24} {:<4} outcome", "row", "expected", "");
        for line in &table {
            println!("{line}");
        }
        ensure!(failures.is_empty(), "rows failed: {failures:?}");

        // F20: a malformed UPDATE replayed after every reconnect.
        let replayed = rows
            .iter()
            .find(|r| r.name == "upd-nlri-prefixlen-33")
            .expect("row in the TSV");
        let Treatment::Reset(expected) = codec_treatment(replayed)? else {
            bail!("upd-nlri-prefixlen-33 is not a reset row");
        };
        for round in 0..5 {
            let mut p = establish(&evil_ns)?;
            p.send_raw(&replayed.bytes)?;
            ensure!(
                p.wait_notification(TIMEOUT)?.as_deref() == Some(&expected[..]),
                "round {round}: not the expected NOTIFICATION"
            );
        }
        // A flood of treat-as-withdraw UPDATEs on one session: up, and the log does not grow
        // a line per message.
        let flood = rows
            .iter()
            .find(|r| r.name == "upd-origin-3")
            .expect("row in the TSV");
        let mut p = establish(&evil_ns)?;
        let lines_before = tern.log().lines().count();
        for _ in 0..500 {
            p.send_raw(&flood.bytes)?;
        }
        probe(&mut p, &tern_ns, 250)?;
        let grown = tern.log().lines().count() - lines_before;
        ensure!(
            grown < 50,
            "500 malformed UPDATEs added {grown} log lines (not rate-limited)"
        );
        ensure!(tern.live()?, "tern not live after the replays");
        ensure!(tern.is_running(), "tern exited: {}", tern.log());
        pcap.stop()?;
        Ok(())
    });
}

/// Proves the raw peer against BIRD (runs without tern): OPEN exchange, a route announced
/// with bgp-proto's UpdateBuilder reaches BIRD's table, a TSV header row gets the exact
/// NOTIFICATION the codec predicts, and the peer reconnects afterwards. (GoBGP 3.10 panics on
/// this row, a nil dereference in `fsmHandler.handlingError`, so BIRD is the reference here.)
#[test]
fn ns_malformed_raw_peer_harness() {
    run_scenario("malformed-raw-peer-harness", &[BASE, BIRD], |artifacts| {
        let bird_ns = Netns::new("bird")?;
        let evil_ns = Netns::new("evil")?;
        veth(&bird_ns, "eth0", &evil_ns, "eth0")?;
        bird_ns.add_address("eth0", &format!("{TERN_IP}/24"))?;
        evil_ns.add_address("eth0", &format!("{EVIL_IP}/24"))?;
        let mut pcap = artifacts.capture(&bird_ns, "eth0", "evil.pcap")?;
        let v4v6 = [Family::Ipv4Unicast, Family::Ipv6Unicast];
        let mut neighbor = BirdPeer::new("evil", TERN_IP, TERN_AS, EVIL_IP, EVIL_AS, &v4v6);
        neighbor.passive = true;
        neighbor.extra.push("error wait time 1, 2;".to_owned());
        let bird = Bird::start(
            &bird_ns,
            artifacts,
            "bird",
            &BirdConfig::new(TERN_IP).with_peer(neighbor),
        )?;
        let mut peer = establish(&evil_ns)?;
        peer.announce_ipv4(&[net(SENTINEL)], next_hop())?;
        wait_until("sentinel at BIRD", TIMEOUT, || bird.has_route(SENTINEL))?;

        let rows = load_rows(&tsv_path())?;
        let row = rows
            .iter()
            .find(|r| r.name == "hdr-type-9")
            .expect("row in the TSV");
        let Treatment::Reset(expected) = codec_treatment(row)? else {
            bail!("hdr-type-9 is not a reset row");
        };
        peer.send_raw(&row.bytes)?;
        let got = peer.wait_notification(TIMEOUT)?;
        ensure!(
            got.as_deref() == Some(&expected[..]),
            "BIRD answered {:?}, the codec predicts {}",
            got.as_deref().map(describe),
            describe(&expected)
        );
        wait_until("sentinel withdrawn at BIRD", TIMEOUT, || {
            Ok(!bird.has_route(SENTINEL)?)
        })?;
        let _again = establish(&evil_ns)?;
        wait_until("BIRD Established again", TIMEOUT, || {
            Ok(bird.bgp_state("evil")? == "Established")
        })?;
        pcap.stop()?;
        Ok(())
    });
}
