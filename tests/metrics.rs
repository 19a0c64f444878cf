//! The metrics endpoint: scrape over HTTP on an ephemeral loopback port, parse the exposition
//! strictly, check values follow the status and the hot-path counters.

mod status_fixture;
use status_fixture as common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{Snapshot, TestSource};
use regex::Regex;
use tern::io::metrics::{
    DEFAULT_METRICS_ADDR, MalformedAction, MessageType, Metrics, MetricsServer,
};
use tern::status::SessionState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

/// A sample key: the name plus sorted labels.
type Key = (String, BTreeMap<String, String>);

/// Parses OpenMetrics text strictly: every line is a comment of a known kind, a sample of a
/// declared family, or the final `# EOF`.
fn parse_exposition(text: &str) -> HashMap<Key, f64> {
    let sample = Regex::new(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$").unwrap();
    let label = Regex::new(r#"^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"$"#).unwrap();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut out = HashMap::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "exposition ends with # EOF");
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram", "info", "unknown"].contains(&kind),
                "{line}"
            );
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            continue;
        }
        let m = sample
            .captures(line)
            .unwrap_or_else(|| panic!("not a sample line: {line:?}"));
        let name = m[1].to_owned();
        let family = name.strip_suffix("_total").unwrap_or(&name);
        let kind = types
            .get(family)
            .unwrap_or_else(|| panic!("sample {name} before its TYPE"));
        if kind == "counter" {
            assert!(
                name.ends_with("_total") || name.ends_with("_created"),
                "{name}"
            );
        }
        let mut labels = BTreeMap::new();
        if let Some(ls) = m.get(2) {
            for part in ls.as_str().split(',').filter(|p| !p.is_empty()) {
                let l = label
                    .captures(part)
                    .unwrap_or_else(|| panic!("bad label {part:?} in {line:?}"));
                labels.insert(l[1].to_owned(), l[2].to_owned());
            }
        }
        let value: f64 = m[3]
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        assert!(
            out.insert((name, labels), value).is_none(),
            "duplicate sample {line}"
        );
    }
    out
}

fn get(samples: &HashMap<Key, f64>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples.get(&(name.to_owned(), labels)).copied()
}

async fn http(addr: SocketAddr, request: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    (head.to_owned(), body.to_owned())
}

async fn scrape(addr: SocketAddr) -> HashMap<Key, f64> {
    let (head, body) = http(addr, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: application/openmetrics-text"),
        "{head}"
    );
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(len, body.len());
    parse_exposition(&body)
}

#[test]
fn default_address_is_loopback() {
    let addr: SocketAddr = DEFAULT_METRICS_ADDR.parse().unwrap();
    assert!(addr.ip().is_loopback());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_reflects_status_and_counters() {
    let metrics = Arc::new(Metrics::new());
    let source = Arc::new(TestSource::new(Snapshot::sample()));
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    assert!(addr.ip().is_loopback());
    let shutdown = CancellationToken::new();
    let task =
        tokio::spawn(server.run(Arc::clone(&metrics), Arc::clone(&source), shutdown.clone()));

    let mesh = metrics.peer("Mesh_10_0_0_2");
    mesh.message_received(MessageType::update);
    mesh.message_received(MessageType::update);
    mesh.message_received(MessageType::keepalive);
    mesh.message_sent(MessageType::open);
    mesh.session_flapped();
    mesh.malformed_update(MalformedAction::treat_as_withdraw);
    metrics.kernel_error("route_add");
    metrics.kernel_error("route_add");

    let s = scrape(addr).await;
    let p = |peer: &'static str| [("peer", peer)];
    assert_eq!(
        get(&s, "tern_bgp_peer_state", &p("Mesh_10_0_0_2")),
        Some(6.0)
    );
    assert_eq!(
        get(&s, "tern_bgp_peer_state", &p("Global_10_0_0_9_port_1790")),
        Some(3.0)
    );
    assert_eq!(
        get(&s, "tern_bgp_peer_state", &p("Node_10_0_0_7")),
        Some(2.0)
    );
    assert_eq!(get(&s, "tern_bgp_peer_up", &p("Mesh_10_0_0_2")), Some(1.0));
    assert_eq!(get(&s, "tern_bgp_peer_up", &p("Node_10_0_0_7")), Some(0.0));
    for (stage, v) in [("received", 3.0), ("accepted", 2.0), ("advertised", 1.0)] {
        assert_eq!(
            get(
                &s,
                "tern_bgp_prefixes",
                &[("peer", "Mesh_10_0_0_2"), ("stage", stage)]
            ),
            Some(v)
        );
    }
    let msg = |dir: &str, t: &'static str| {
        get(
            &s,
            &format!("tern_bgp_messages_{dir}_total"),
            &[("peer", "Mesh_10_0_0_2"), ("type", t)],
        )
    };
    assert_eq!(msg("received", "update"), Some(2.0));
    assert_eq!(msg("received", "keepalive"), Some(1.0));
    assert_eq!(msg("received", "notification"), Some(0.0));
    assert_eq!(msg("sent", "open"), Some(1.0));
    assert_eq!(
        get(&s, "tern_bgp_session_flaps_total", &p("Mesh_10_0_0_2")),
        Some(1.0)
    );
    assert_eq!(
        get(
            &s,
            "tern_bgp_malformed_updates_total",
            &[("action", "treat_as_withdraw"), ("peer", "Mesh_10_0_0_2")]
        ),
        Some(1.0)
    );
    assert_eq!(
        get(
            &s,
            "tern_bgp_malformed_updates_total",
            &[("action", "session_reset"), ("peer", "Mesh_10_0_0_2")]
        ),
        Some(0.0)
    );
    assert_eq!(
        get(&s, "tern_kernel_routes", &[("kind", "blackhole")]),
        Some(1.0)
    );
    assert_eq!(
        get(&s, "tern_kernel_routes", &[("kind", "ipip")]),
        Some(1.0)
    );
    assert_eq!(
        get(&s, "tern_kernel_routes", &[("kind", "ecmp")]),
        Some(0.0)
    );
    assert_eq!(
        get(
            &s,
            "tern_kernel_errors_total",
            &[("operation", "route_add")]
        ),
        Some(2.0)
    );
    assert_eq!(get(&s, "tern_rib_prefixes", &[]), Some(2.0));
    assert_eq!(get(&s, "tern_rib_paths", &[]), Some(3.0));
    assert_eq!(get(&s, "tern_rib_attribute_sets", &[]), Some(2.0));

    // The status changes: the mesh peer drops to Idle, the node peer is removed.
    {
        let mut snap = source.snapshot.lock().unwrap();
        snap.peers[0].state = SessionState::Idle;
        snap.peers.retain(|p| p.name != "Node_10_0_0_7");
        snap.rib.prefixes = 7;
    }
    let s = scrape(addr).await;
    assert_eq!(
        get(&s, "tern_bgp_peer_state", &p("Mesh_10_0_0_2")),
        Some(1.0)
    );
    assert_eq!(get(&s, "tern_bgp_peer_up", &p("Mesh_10_0_0_2")), Some(0.0));
    assert_eq!(
        get(&s, "tern_bgp_peer_state", &p("Node_10_0_0_7")),
        None,
        "removed peer's series are gone"
    );
    assert_eq!(get(&s, "tern_rib_prefixes", &[]), Some(7.0));
    // Counters keep counting across scrapes.
    assert_eq!(
        get(
            &s,
            "tern_bgp_messages_received_total",
            &[("peer", "Mesh_10_0_0_2"), ("type", "update")]
        ),
        Some(2.0)
    );

    // The same through curl, as an operator would scrape it.
    let url = format!("http://{addr}/metrics");
    let curl = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "10", &url])
            .output()
    })
    .await
    .unwrap();
    match curl {
        Ok(out) => {
            assert!(
                out.status.success(),
                "curl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let s = parse_exposition(&String::from_utf8(out.stdout).unwrap());
            assert_eq!(get(&s, "tern_rib_prefixes", &[]), Some(7.0));
        }
        Err(e) => interop::scenario::missing_prerequisite(
            "metrics",
            &format!("curl is not available ({e}); scripts/setup.sh installs it"),
        ),
    }

    shutdown.cancel();
    task.await.unwrap();
}

#[test]
fn message_counters_follow_totals_kept_by_the_speaker() {
    let metrics = Metrics::new();
    let peer = metrics.peer("Mesh_10_0_0_2");
    let mut received = tern::status::MessageCounts {
        open: 1,
        keepalive: 3,
        update: 7,
        ..Default::default()
    };
    let sent = tern::status::MessageCounts {
        open: 1,
        keepalive: 2,
        ..Default::default()
    };
    peer.messages_up_to(&received, &sent);
    received.update = 9;
    peer.messages_up_to(&received, &sent);
    // A lower total (never happens for one peer) does not lower a counter.
    peer.messages_up_to(&tern::status::MessageCounts::default(), &sent);
    let text = metrics.encode();
    let s = parse_exposition(&text);
    let msg = |dir: &str, t: &'static str| {
        get(
            &s,
            &format!("tern_bgp_messages_{dir}_total"),
            &[("peer", "Mesh_10_0_0_2"), ("type", t)],
        )
    };
    assert_eq!(msg("received", "update"), Some(9.0), "{text}");
    assert_eq!(msg("received", "keepalive"), Some(3.0));
    assert_eq!(msg("received", "notification"), Some(0.0));
    assert_eq!(msg("sent", "keepalive"), Some(2.0));
    assert_eq!(msg("sent", "open"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_requests_are_refused_clearly() {
    let metrics = Arc::new(Metrics::new());
    let source = Arc::new(TestSource::new(Snapshot::sample()));
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.run(metrics, source, shutdown.clone()));

    let (head, _) = http(addr, "GET / HTTP/1.1\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let (head, _) = http(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    let (head, _) = http(addr, "\x00\x01garbage\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let (head, body) = http(addr, "HEAD /metrics HTTP/1.1\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.is_empty());
    // A client that never finishes its request does not hold up others.
    let mut stuck = TcpStream::connect(addr).await.unwrap();
    stuck.write_all(b"GET /met").await.unwrap();
    let (head, _) = http(addr, "GET /metrics HTTP/1.1\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    shutdown.cancel();
    task.await.unwrap();
}
