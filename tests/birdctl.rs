//! The BIRD-compatible socket against the real `birdc` and against re-implementations of the
//! parsers Calico runs on its output (calico-node's health check and status populators,
//! `calicoctl node status`).

mod status_fixture;
use status_fixture as common;

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::Arc;
use std::time::Duration;

use common::{Snapshot, TestSource, ip};
use regex::Regex;
use tern::io::birdctl::{BirdCtlOptions, BirdCtlServer, SocketFamily};
use tern::status::{
    GracefulRestartProgress, PeerKind, SessionState, Timestamp, bird_protocol_name,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

struct Running {
    _dir: tempfile::TempDir,
    v4: PathBuf,
    v6: PathBuf,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            t.await.unwrap();
        }
        assert!(!self.v4.exists() && !self.v6.exists());
    }
}

/// The sample snapshot plus an IPv6 mesh peer.
fn snapshot() -> Snapshot {
    let mut snap = Snapshot::sample();
    let mut v6 = common::established_peer(snap.peers[0].since);
    v6.address = ip("fd80:24e2:f998:72d7::2");
    v6.name = bird_protocol_name(PeerKind::Mesh, v6.address, None);
    snap.peers.push(v6);
    snap
}

fn start(snap: Snapshot) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let v4 = dir.path().join("calico/bird.ctl");
    let v6 = dir.path().join("calico/bird6.ctl");
    let source = Arc::new(TestSource::new(snap));
    let shutdown = CancellationToken::new();
    let s4 = BirdCtlServer::bind(
        &v4,
        Arc::clone(&source),
        BirdCtlOptions::new(SocketFamily::V4),
    )
    .unwrap();
    let s6 = BirdCtlServer::bind(
        &v6,
        Arc::clone(&source),
        BirdCtlOptions::new(SocketFamily::V6),
    )
    .unwrap();
    let tasks = vec![
        tokio::spawn(s4.run(shutdown.clone())),
        tokio::spawn(s6.run(shutdown.clone())),
    ];
    Running {
        _dir: dir,
        v4,
        v6,
        shutdown,
        tasks,
    }
}

/// A raw session: reads the greeting, then sends each command and reads its reply up to the
/// final line (a line whose fifth character is a space).
async fn raw(path: &Path, commands: &[&str]) -> Vec<Vec<String>> {
    let (r, mut w) = UnixStream::connect(path).await.unwrap().into_split();
    let mut r = BufReader::new(r);
    let read_reply = async |r: &mut BufReader<tokio::net::unix::OwnedReadHalf>| {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(T, r.read_line(&mut line))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "connection closed mid-reply after {lines:?}");
            let line = line.trim_end_matches('\n').to_owned();
            let last = line.len() >= 5
                && line.as_bytes()[4] == b' '
                && line.as_bytes()[0].is_ascii_digit();
            lines.push(line);
            if last {
                return lines;
            }
        }
    };
    let hello = read_reply(&mut r).await;
    assert_eq!(
        hello,
        vec![format!(
            "0001 BIRD {} ready.",
            tern::io::birdctl::BIRD_COMPAT_VERSION
        )]
    );
    let mut out = Vec::new();
    for c in commands {
        w.write_all(format!("{c}\n").as_bytes()).await.unwrap();
        out.push(read_reply(&mut r).await);
    }
    out
}

// ---- Calico's parsers, re-implemented from calico/node/pkg/health/bird/bird.go,
// ---- calicoctl/calicoctl/commands/node/status.go and node/pkg/status/populators/route.go.

#[derive(Debug, Clone, PartialEq)]
struct CalicoPeer {
    peer_ip: String,
    peer_type: String,
    state: String,
    since: String,
    bgp_state: String,
    info: String,
}

fn calico_unmarshal_peer(line: &str, ip_sep: &str) -> Option<CalicoPeer> {
    let re = Regex::new(r"^(Global|Node|Mesh)_(.+)$").unwrap();
    let columns: Vec<&str> = line.split_whitespace().collect();
    if columns.len() < 6 || columns[1] != "BGP" {
        return None;
    }
    let m = re.captures(columns[0])?;
    let peer_type = match &m[1] {
        "Global" => "global",
        "Mesh" => "node-to-node mesh",
        "Node" => "node specific",
        _ => return None,
    };
    Some(CalicoPeer {
        peer_ip: m[2].replace('_', ip_sep),
        peer_type: peer_type.into(),
        state: columns[3].into(),
        since: columns[4].into(),
        bgp_state: columns[5].into(),
        info: columns[6..].join(" "),
    })
}

/// `scanBIRDPeers`.
fn calico_scan_peers(reply: &[String], ip_sep: &str) -> Result<Vec<CalicoPeer>, String> {
    let mut peers = Vec::new();
    for s in reply {
        if s.starts_with("0000") {
            break;
        } else if s.starts_with("0001") {
        } else if s.starts_with("2002") {
            let f: Vec<&str> = s[5..].split_whitespace().collect();
            if f != ["name", "proto", "table", "state", "since", "info"] {
                return Err("unknown BIRD table output format".into());
            }
        } else if s.starts_with("1002") {
            peers.extend(calico_unmarshal_peer(&s[5..], ip_sep));
        } else if let Some(rest) = s.strip_prefix(' ') {
            peers.extend(calico_unmarshal_peer(rest, ip_sep));
        } else {
            return Err(format!("unexpected output line from BIRD: '{s}'"));
        }
    }
    Ok(peers)
}

/// `GRInProgress`.
fn calico_gr_in_progress(reply: &[String]) -> Result<bool, String> {
    for s in reply {
        if s.starts_with("0013") {
            break;
        } else if s.starts_with("0024") {
            return Ok(true);
        } else if s.starts_with("0001")
            || s.starts_with("1000")
            || s.starts_with("1011")
            || s.starts_with(' ')
        {
        } else {
            return Err(format!("unexpected output line from BIRD: '{s}'"));
        }
    }
    Ok(false)
}

/// `checkBIRDReady` given the peers, the GR answer and whether the start-up threshold is running.
fn calico_bird_ready(peers: &[CalicoPeer], gr: bool, within_threshold: bool) -> Result<(), String> {
    let down: Vec<&str> = peers
        .iter()
        .filter(|p| p.bgp_state != "Established")
        .map(|p| p.peer_ip.as_str())
        .collect();
    let up = peers.len() - down.len();
    if peers.is_empty() {
        Ok(())
    } else if within_threshold {
        if !down.is_empty() {
            return Err(format!("BGP not established with {}", down.join(",")));
        }
        if gr {
            return Err("graceful restart in progress".into());
        }
        Ok(())
    } else if up > 0 {
        Ok(())
    } else {
        Err(format!("BGP not established with {}", down.join(",")))
    }
}

#[derive(Debug, PartialEq)]
struct CalicoRoute {
    dest: String,
    gateway: String,
    iface: String,
    learned_from: String,
    primary: bool,
}

/// `scanBIRDRoutes` / `route.unmarshalBIRD`.
fn calico_scan_routes(reply: &[String]) -> Result<Vec<CalicoRoute>, String> {
    let via = Regex::new(
        r"(?P<dest>\S*)\s*via\s(?P<gateway>\S*)\s*on\s(?P<iface>.*)\s\[(?P<from>\S*)\s.*\].*",
    )
    .unwrap();
    let blackhole = Regex::new(r"(?P<dest>\S*)\s*blackhole\s\[(?P<from>\S*)\s.*\].*").unwrap();
    let mut routes = Vec::new();
    let mut previous = String::new();
    for s in reply {
        let line = if s.starts_with("0000") {
            break;
        } else if s.starts_with("0001") {
            continue;
        } else if s.starts_with("1007") {
            &s[5..]
        } else if let Some(rest) = s.strip_prefix(' ') {
            rest
        } else {
            return Err(format!("unexpected output line from BIRD: {s}"));
        };
        let (mut dest, gateway, iface, from) = if line.contains(" via ") {
            let Some(m) = via.captures(line) else {
                continue;
            };
            (
                m["dest"].to_owned(),
                m["gateway"].to_owned(),
                m["iface"].to_owned(),
                m["from"].to_owned(),
            )
        } else if line.contains(" blackhole ") {
            let Some(m) = blackhole.captures(line) else {
                continue;
            };
            (
                m["dest"].to_owned(),
                "N/A".into(),
                "blackhole".into(),
                m["from"].to_owned(),
            )
        } else {
            (String::new(), String::new(), String::new(), String::new())
        };
        if dest.is_empty() {
            if previous.is_empty() {
                continue;
            }
            dest = previous.clone();
        }
        previous = dest.clone();
        routes.push(CalicoRoute {
            dest,
            gateway,
            iface,
            learned_from: from,
            primary: line.contains("] *"),
        });
    }
    Ok(routes)
}

/// What calico-node's status populator reads from `show status` (`scanBIRDStatus` and
/// `birdStatus.unmarshalBIRD` in node/pkg/status/populators/bird_status.go): lines with codes
/// 0001, 1000 and 1011 and continuation lines, each matched by prefix.
#[derive(Debug, Default, PartialEq)]
struct CalicoBirdStatus {
    ready: bool,
    version: String,
    router_id: String,
    last_boot: String,
}

fn calico_scan_status(lines: &[String]) -> CalicoBirdStatus {
    let mut status = CalicoBirdStatus::default();
    for s in lines {
        let line = if s.starts_with("0013") {
            break;
        } else if s.starts_with("0001") || s.starts_with("1000") || s.starts_with("1011") {
            &s[5..]
        } else if let Some(rest) = s.strip_prefix(' ') {
            rest
        } else {
            break;
        };
        if line.contains("BIRD") && line.contains("ready") {
            status.ready = true;
        } else if line.starts_with("BIRD v") {
            status.version = line.trim_start_matches("BIRD ").to_owned();
        } else if let Some(id) = line.strip_prefix("Router ID is ") {
            status.router_id = id.to_owned();
        } else if let Some(at) = line.strip_prefix("Last reboot on ") {
            status.last_boot = at.to_owned();
        }
    }
    status
}

// ---- Tests over the raw protocol.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calicos_status_populator_reads_terns_version() {
    let s = start(snapshot());
    let version = tern::io::birdctl::BIRD_COMPAT_VERSION;
    // calico-node reads the greeting and then the reply on one connection.
    let mut lines = vec![format!("0001 BIRD {version} ready.")];
    lines.extend(raw(&s.v4, &["show status"]).await.remove(0));
    let status = calico_scan_status(&lines);
    assert!(status.ready, "{lines:#?}");
    assert_eq!(status.version, version);
    assert!(
        status.version.starts_with('v')
            && status
                .version
                .ends_with(&format!("+tern-{}", env!("CARGO_PKG_VERSION"))),
        "{}",
        status.version
    );
    assert_eq!(status.router_id, "10.0.0.1");
    assert!(!status.last_boot.is_empty(), "{lines:#?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calico_parses_show_protocols_and_decides_readiness() {
    let s = start(snapshot());
    let replies = raw(&s.v4, &["show protocols", "show status"]).await;
    let protocols = &replies[0];
    println!("{}", protocols.join("\n"));
    assert!(
        protocols[0].starts_with("2002-name       proto      table      state  since         info"),
        "{}",
        protocols[0]
    );
    assert!(
        protocols[1].starts_with("1002-device1 "),
        "{}",
        protocols[1]
    );
    assert_eq!(protocols.last().unwrap(), "0000 ");

    let peers = calico_scan_peers(protocols, ".").unwrap();
    assert_eq!(peers.len(), 3, "{peers:?}");
    assert_eq!(peers[0].peer_ip, "10.0.0.2");
    assert_eq!(peers[0].peer_type, "node-to-node mesh");
    assert_eq!(
        (peers[0].state.as_str(), peers[0].bgp_state.as_str()),
        ("up", "Established")
    );
    assert_eq!(peers[0].info, "");
    // Calico turns every `_` of the name back into a separator, port suffix included: this is
    // what calicoctl shows for a BIRD peer with a port too.
    assert_eq!(peers[1].peer_ip, "10.0.0.9.port.1790");
    assert_eq!(peers[1].peer_type, "global");
    assert_eq!(
        (peers[1].state.as_str(), peers[1].bgp_state.as_str()),
        ("start", "Active")
    );
    assert_eq!(
        peers[1].info,
        "Received: Cease: Administrative Shutdown \"maintenance\""
    );
    assert_eq!(peers[2].peer_type, "node specific");
    assert_eq!(
        (peers[2].bgp_state.as_str(), peers[2].info.as_str()),
        ("Connect", "Socket: Connection refused")
    );
    // Since is one word: HH:MM:SS.mmm (changed within 20 hours).
    assert!(
        Regex::new(r"^\d\d:\d\d:\d\d\.\d\d\d$")
            .unwrap()
            .is_match(&peers[0].since),
        "{}",
        peers[0].since
    );

    let gr = calico_gr_in_progress(&replies[1]).unwrap();
    assert!(!gr);
    assert_eq!(
        calico_bird_ready(&peers, gr, true),
        Err("BGP not established with 10.0.0.9.port.1790,10.0.0.7".into())
    );
    assert_eq!(calico_bird_ready(&peers, gr, false), Ok(()));

    // The IPv6 socket shows the IPv6 peer only, with the address Calico rebuilds from the name.
    let v6 = raw(&s.v6, &["show protocols"]).await;
    let peers6 = calico_scan_peers(&v6[0], ":").unwrap();
    assert_eq!(peers6.len(), 1);
    assert_eq!(peers6[0].peer_ip, "fd80:24e2:f998:72d7::2");
    assert!(
        v6[0]
            .iter()
            .any(|l| l.contains("kernel1    Kernel     master6"))
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restart_shows_as_0024_and_blocks_calico_readiness() {
    let mut snap = snapshot();
    for p in &mut snap.peers {
        p.state = SessionState::Established;
        p.last_error = None;
    }
    let now = common::now();
    snap.daemon.graceful_restart = Some(GracefulRestartProgress {
        waiting_for_peers: 2,
        deadline: Timestamp(now.0 + 100_000),
        wait_secs: 120,
    });
    let s = start(snap);
    let replies = raw(&s.v4, &["show status", "show protocols"]).await;
    let status = &replies[0];
    println!("{}", status.join("\n"));
    assert!(status[0].starts_with("1000-BIRD "), "{}", status[0]);
    assert_eq!(status[1], "1011-Router ID is 10.0.0.1");
    let gr_at = status
        .iter()
        .position(|l| l == "0024-Graceful restart recovery in progress")
        .unwrap();
    assert_eq!(status[gr_at + 1], "   Waiting for 2 channels to recover");
    assert!(
        status[gr_at + 2].starts_with("   Wait timer is "),
        "{}",
        status[gr_at + 2]
    );
    assert_eq!(status.last().unwrap(), "0013 Daemon is up and running");

    let gr = calico_gr_in_progress(status).unwrap();
    assert!(gr);
    let peers = calico_scan_peers(&replies[1], ".").unwrap();
    assert_eq!(
        calico_bird_ready(&peers, gr, true),
        Err("graceful restart in progress".into())
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_peers_still_lists_protocols_so_calico_reports_ready() {
    let mut snap = snapshot();
    snap.peers.clear();
    let s = start(snap);
    let replies = raw(&s.v4, &["show protocols"]).await;
    let peers = calico_scan_peers(&replies[0], ".").unwrap();
    assert!(peers.is_empty());
    assert_eq!(calico_bird_ready(&peers, false, true), Ok(()));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_details_routes_and_errors() {
    let s = start(snapshot());
    let replies = raw(
        &s.v4,
        &[
            "show protocols all Mesh_10_0_0_2",
            "show protocols all Global_10_0_0_9_port_1790",
            "show route",
            "show route all 10.65.2.0/26",
            "show route for 10.65.2.7",
            "show route 10.99.0.0/24",
            "show route count",
            "show protocols Mesh_10_9_9_9",
            "show protocols \"Nothing*\"",
            "show protocols \"Mesh*\"",
            "show nonsense",
            "disable Mesh_10_0_0_2",
            "restrict",
        ],
    )
    .await;
    for r in &replies {
        println!("{}\n", r.join("\n"));
    }
    let mesh = &replies[0];
    assert!(mesh[1].starts_with("1002-Mesh_10_0_0_2 BGP        ---        up     "));
    assert!(mesh[1].ends_with("Established   "), "{:?}", mesh[1]);
    assert_eq!(mesh[2], "1006-  Description:    node-to-node mesh");
    assert_eq!(mesh[3], "   BGP state:          Established");
    for want in [
        "     Neighbor address: 10.0.0.2",
        "     Neighbor AS:      64512",
        "     Local AS:         64512",
        "     Neighbor ID:      10.0.0.2",
        "     Local capabilities",
        "       Multiprotocol",
        "         AF announced: ipv4",
        "       Route refresh",
        "       Graceful restart",
        "         Restart time: 120",
        "         AF supported: ipv4",
        "         AF preserved: ipv4",
        "       4-octet AS numbers",
        "       ADD-PATH",
        "         RX: ipv4",
        "         TX: ipv4",
        "       Enhanced refresh",
        "     Neighbor capabilities",
        "     Session:          internal multihop AS4",
        "     Source address:   10.0.0.1",
        "     Hold timer:       -/90",
        "   Channel ipv4",
        "     State:          UP",
        "     Routes:         2 imported, 1 filtered, 1 exported, 2 preferred",
        " ",
        "0000 ",
    ] {
        assert!(mesh.iter().any(|l| l == want), "missing {want:?}");
    }
    // calico-node's populator reads "BGP state:" and "Neighbor address:" from this reply.
    let value = |key: &str| {
        mesh.iter()
            .find(|l| l.contains(key))
            .map(|l| l.replace(key, " ").trim().to_owned())
    };
    assert_eq!(value("BGP state:").as_deref(), Some("Established"));
    assert_eq!(value("Neighbor address:").as_deref(), Some("10.0.0.2"));

    let global = &replies[1];
    assert!(global.contains(&"     Neighbor port:    1790".to_owned()));
    assert!(
        global.contains(
            &"     Last error:       Received: Cease: Administrative Shutdown \"maintenance\""
                .to_owned()
        )
    );
    assert!(global.contains(&"     State:          DOWN".to_owned()));

    let routes = calico_scan_routes(&replies[2]).unwrap();
    assert_eq!(
        routes,
        vec![
            CalicoRoute {
                dest: "10.65.1.0/26".into(),
                gateway: "N/A".into(),
                iface: "blackhole".into(),
                learned_from: "static1".into(),
                primary: true
            },
            CalicoRoute {
                dest: "10.65.2.0/26".into(),
                gateway: "10.0.0.2".into(),
                iface: "tunl0".into(),
                learned_from: "Mesh_10_0_0_2".into(),
                primary: true
            },
            CalicoRoute {
                dest: "10.65.2.0/26".into(),
                gateway: "10.0.0.9".into(),
                iface: "eth0".into(),
                learned_from: "Global_10_0_0_9_port_1790".into(),
                primary: false
            },
        ]
    );
    assert!(
        replies[2].iter().any(|l| l.contains("(100s/0) [AS65002?]")),
        "stale path marked"
    );

    let all = &replies[3];
    assert!(all.contains(&"1008-\tType: BGP univ".to_owned()));
    assert!(all.contains(&"1012-\tBGP.origin: IGP".to_owned()));
    assert!(all.contains(&" \tBGP.community: (64512,100)".to_owned()));
    assert!(all.contains(&" \tBGP.as_path: 65001 65002".to_owned()));
    assert!(
        replies[4]
            .iter()
            .any(|l| l.starts_with("1007-10.65.2.0/26"))
    );
    assert_eq!(replies[5], vec!["8001 Network not found"]);
    assert_eq!(
        replies[6],
        vec!["0014 3 of 3 routes for 2 networks in table master4"]
    );
    assert_eq!(
        replies[7],
        vec![
            "9001 syntax error, unexpected CF_SYM_UNDEFINED, expecting END or CF_SYM_KNOWN or TEXT"
        ]
    );
    assert_eq!(replies[8], vec!["8003 No protocols match"]);
    assert_eq!(replies[9].len(), 3);
    assert!(replies[10][0].starts_with("9001 syntax error"));
    assert_eq!(replies[11], vec!["8007 Access denied"]);
    assert_eq!(replies[12], vec!["0016 Access restricted"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_text_cannot_forge_reply_lines_and_long_commands_are_refused() {
    let mut snap = snapshot();
    // A NOTIFICATION data field is peer-controlled; the decoder escapes controls, and the reply
    // builder would flatten any newline that got through.
    let mut data = vec![30];
    data.extend_from_slice(b"x\n0000 \n0013 forged line!!!!");
    snap.peers[1].last_error.as_mut().unwrap().kind =
        tern::status::PeerErrorKind::NotificationReceived {
            notification: tern::status::NotificationStatus::new(6, 2, &data),
        };
    let s = start(snap);
    let replies = raw(&s.v4, &["show protocols"]).await;
    assert!(replies[0].iter().all(|l| !l.starts_with("0013")));
    let peers = calico_scan_peers(&replies[0], ".").unwrap();
    assert_eq!(peers.len(), 3);

    let (r, mut w) = UnixStream::connect(&s.v4).await.unwrap().into_split();
    let mut r = BufReader::new(r);
    let mut hello = String::new();
    r.read_line(&mut hello).await.unwrap();
    let _ = w.write_all(&vec![b'a'; 5000]).await;
    let _ = w.write_all(b"\n").await;
    let mut line = String::new();
    tokio::time::timeout(T, r.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(line, "9000 Command too long\n");
    s.stop().await;
}

// ---- The real birdc.

fn birdc(socket: &Path, args: &[&str]) -> Option<(String, bool)> {
    let out = match Process::new("birdc")
        .arg("-s")
        .arg(socket)
        .args(args)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            interop::scenario::missing_prerequisite(
                "birdctl",
                &format!("birdc is not available ({e}); scripts/setup.sh installs bird2"),
            );
            return None;
        }
    };
    Some((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.success(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_birdc_against_the_socket() {
    let s = start(snapshot());
    let v4 = s.v4.clone();
    let outputs = tokio::task::spawn_blocking(move || {
        [
            vec!["show", "protocols"],
            vec!["show", "status"],
            vec!["show", "protocols", "all", "Mesh_10_0_0_2"],
            vec!["show", "route"],
            // birdc expands abbreviations itself.
            vec!["sh", "proto"],
        ]
        .iter()
        .map(|args| birdc(&v4, args))
        .collect::<Option<Vec<_>>>()
    })
    .await
    .unwrap();
    let Some(outputs) = outputs else {
        s.stop().await;
        return;
    };
    for (out, ok) in &outputs {
        println!("{out}");
        assert!(ok, "birdc failed: {out}");
    }
    let version = tern::io::birdctl::BIRD_COMPAT_VERSION;

    let protocols: Vec<&str> = outputs[0].0.lines().collect();
    assert_eq!(protocols[0], format!("BIRD {version} ready."));
    assert_eq!(
        protocols[1],
        "name       proto      table      state  since         info"
    );
    assert!(protocols.iter().any(
        |l| l.starts_with("Mesh_10_0_0_2 BGP        ---        up     ")
            && l.contains("Established")
    ));
    assert!(protocols.iter().any(|l| {
        l.starts_with("Global_10_0_0_9_port_1790 BGP        ---        start  ")
            && l.contains("Active        Received: Cease: Administrative Shutdown \"maintenance\"")
    }));
    assert!(protocols.iter().any(|l| l.starts_with("Node_10_0_0_7 BGP")
        && l.contains("Connect       Socket: Connection refused")));
    assert!(
        !protocols.iter().any(|l| l.contains("fd80")),
        "the IPv6 peer is on bird6.ctl"
    );

    // calico-node's liveness check: `birdcl -s bird.ctl show status` output starts with "BIRD".
    let status = &outputs[1].0;
    assert!(status.starts_with("BIRD"), "{status}");
    assert!(
        status.contains(&format!("\nBIRD {version}\nRouter ID is 10.0.0.1\n")),
        "{status}"
    );
    assert!(
        status.trim_end().ends_with("Daemon is up and running"),
        "{status}"
    );

    let detail = &outputs[2].0;
    assert!(
        detail.contains("\n  BGP state:          Established\n    Neighbor address: 10.0.0.2\n"),
        "{detail}"
    );
    assert!(
        detail.contains(
            "\n    Neighbor capabilities\n      Multiprotocol\n        AF announced: ipv4\n"
        ),
        "{detail}"
    );

    let routes = &outputs[3].0;
    assert!(
        routes.contains("10.65.2.0/26       via 10.0.0.2 on tunl0 [Mesh_10_0_0_2 "),
        "{routes}"
    );
    assert!(
        routes.contains("10.65.1.0/26       blackhole [static1 "),
        "{routes}"
    );

    assert_eq!(
        outputs[4].0, outputs[0].0,
        "abbreviated command gives the same table"
    );

    // calico-node's liveness probe runs exactly this (birdcl is the line-mode client).
    let v4 = s.v4.clone();
    let live = tokio::task::spawn_blocking(move || {
        Process::new("birdcl")
            .arg("-s")
            .arg(&v4)
            .args(["show", "status"])
            .output()
    })
    .await
    .unwrap();
    match live {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success() && text.starts_with("BIRD"), "{text}");
        }
        Err(e) => interop::scenario::missing_prerequisite(
            "birdctl",
            &format!("birdcl is not available ({e}); scripts/setup.sh installs bird2"),
        ),
    }

    // And birdc on the IPv6 socket.
    let v6 = s.v6.clone();
    let out6 = tokio::task::spawn_blocking(move || birdc(&v6, &["show", "protocols"]))
        .await
        .unwrap()
        .unwrap();
    assert!(
        out6.0.contains("Mesh_fd80_24e2_f998_72d7__2 BGP"),
        "{}",
        out6.0
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wedged_daemon_fails_calicos_liveness_probe() {
    let mut snap = snapshot();
    // The supervisor's last heartbeat is ten minutes old.
    snap.daemon.heartbeat = Timestamp(common::now().0 - 600_000);
    let s = start(snap);
    let mut stream = UnixStream::connect(&s.v4).await.unwrap();
    let mut buf = Vec::new();
    let n = tokio::time::timeout(
        T,
        tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut buf),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        n,
        0,
        "closed without a greeting: {:?}",
        String::from_utf8_lossy(&buf)
    );
    let v4 = s.v4.clone();
    let out = tokio::task::spawn_blocking(move || {
        Process::new("birdcl")
            .arg("-s")
            .arg(&v4)
            .args(["show", "status"])
            .output()
    })
    .await
    .unwrap();
    match out {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            // calico-node: `exec ... Output()` fails or the output does not start with "BIRD".
            assert!(!out.status.success() || !text.starts_with("BIRD"), "{text}");
        }
        Err(e) => interop::scenario::missing_prerequisite(
            "birdctl",
            &format!("birdcl is not available ({e}); scripts/setup.sh installs bird2"),
        ),
    }
    s.stop().await;
}
