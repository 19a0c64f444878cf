//! `tern show ...` and `tern health ...` run as the built binary against a control server started
//! in this process on a temporary socket (over the fixed snapshot of `tests/status_fixture`):
//! human and `--json` output of every command, exit codes, and the daemon-not-running message.

mod status_fixture;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use serde_json::Value;
use status_fixture::{Snapshot, TestSource, failing_peer, now};
use tern::io::control::{ControlServer, ServeOptions};
use tern::status::{FibStatus, PeerStatus, RibSummary, RouteStatus, Timestamp};
use tokio_util::sync::CancellationToken;

/// A control server on a temporary socket, stopped (and its socket removed) on drop.
struct Daemon {
    dir: tempfile::TempDir,
    path: PathBuf,
    snapshot: Snapshot,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    runtime: tokio::runtime::Runtime,
}

impl Daemon {
    fn start(snapshot: Snapshot) -> Daemon {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tern.ctl");
        let shutdown = CancellationToken::new();
        let server = {
            let _guard = runtime.enter();
            ControlServer::read_only(
                &path,
                None,
                Arc::new(TestSource::new(snapshot.clone())),
                ServeOptions::default(),
            )
            .unwrap()
        };
        let task = runtime.spawn(server.run(shutdown.clone()));
        Daemon {
            dir,
            path,
            snapshot,
            shutdown,
            task: Some(task),
            runtime,
        }
    }

    /// Runs `tern <args> --socket <this socket>`.
    fn tern(&self, args: &[&str]) -> Output {
        let mut cmd = tern();
        cmd.args(args).arg("--socket").arg(&self.path);
        cmd.output().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = self.runtime.block_on(task);
        }
    }
}

fn tern() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    cmd.env_remove("TERN_LOG").env_remove("RUST_LOG");
    cmd
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Asserts success and parses stdout as JSON.
fn json(out: &Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

fn ok_text(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(out));
    assert!(out.stderr.is_empty(), "stderr: {}", stderr(out));
    stdout(out)
}

#[test]
fn cli_show_peers_lists_and_details_in_text_and_json() {
    let d = Daemon::start(Snapshot::sample());

    let text = ok_text(&d.tern(&["show", "peers"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "header + 3 peers: {text}");
    assert!(lines[0].starts_with("NAME") && lines[0].contains("LAST ERROR"));
    assert!(
        text.contains("Mesh_10_0_0_2") && text.contains("Established"),
        "{text}"
    );
    assert!(
        text.contains("Global_10_0_0_9_port_1790") && text.contains("Cease"),
        "{text}"
    );
    assert!(text.contains("Connection refused"), "{text}");

    let peers = json(&d.tern(&["show", "peers", "--json"]));
    let list = peers.as_array().expect("a list of peers");
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["name"], "Mesh_10_0_0_2");
    assert_eq!(list[0]["state"], "Established");
    assert_eq!(list[0]["prefixes"]["received"], 3);
    let typed: Vec<PeerStatus> = serde_json::from_value(peers.clone()).unwrap();
    jq_names_peers_down(&d.tern(&["show", "peers", "--json"]).stdout);
    assert_eq!(
        typed, d.snapshot.peers,
        "the JSON is the daemon's status, whole"
    );

    // One peer: the detailed form; `--json` may come before the subcommand too.
    let text = ok_text(&d.tern(&["show", "peers", "Mesh_10_0_0_2"]));
    assert!(text.starts_with("Mesh_10_0_0_2 ("), "{text}");
    assert!(text.contains("neighbor capabilities:"), "{text}");
    assert!(
        text.contains("3 received, 2 accepted, 1 advertised"),
        "{text}"
    );
    let one = json(&d.tern(&["show", "--json", "peers", "Global_10_0_0_9_port_1790"]));
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["port"], 1790);
    assert_eq!(one[0]["last_error"]["error"], "notification_received");

    // An unknown peer: an error answer, exit 2, the message on stderr (JSON: on stdout).
    let out = d.tern(&["show", "peers", "Mesh_10_9_9_9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out).trim(),
        "error: no peer named \"Mesh_10_9_9_9\""
    );
    let out = d.tern(&["show", "peers", "Mesh_10_9_9_9", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["error"]["kind"], "not_found");
}

/// The README's `jq` example, when `jq` is installed.
fn jq_names_peers_down(json: &[u8]) {
    use std::io::Write;
    let Ok(mut jq) = Command::new("jq")
        .args(["-r", r#".[] | select(.state != "Established") | .name"#])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("jq not installed: README example not run");
        return;
    };
    jq.stdin.take().unwrap().write_all(json).unwrap();
    let out = jq.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "Global_10_0_0_9_port_1790\nNode_10_0_0_7\n"
    );
}

#[test]
fn cli_show_routes_rib_fib_status_in_text_and_json() {
    let d = Daemon::start(Snapshot::sample());

    let text = ok_text(&d.tern(&["show", "routes"]));
    assert!(text.starts_with("PREFIX"), "{text}");
    assert!(
        text.contains("10.65.1.0/26") && text.contains("local (ipam-block)"),
        "{text}"
    );
    assert!(
        text.contains("65001 65002") && text.contains("stale"),
        "{text}"
    );
    let routes = json(&d.tern(&["show", "routes", "--json"]));
    let typed: Vec<RouteStatus> = serde_json::from_value(routes.clone()).unwrap();
    assert_eq!(typed, d.snapshot.routes);
    assert_eq!(routes[1]["prefix"], "10.65.2.0/26");
    assert_eq!(routes[1]["paths"].as_array().unwrap().len(), 2);

    // One prefix; a prefix the RIB does not hold is an empty answer, not an error.
    let one = json(&d.tern(&["show", "routes", "10.65.2.0/26", "--json"]));
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["prefix"], "10.65.2.0/26");
    let text = ok_text(&d.tern(&["show", "routes", "10.65.2.0/26"]));
    assert!(!text.contains("10.65.1.0/26"), "{text}");
    assert_eq!(
        ok_text(&d.tern(&["show", "routes", "192.0.2.0/24"])),
        "No routes.\n"
    );
    assert_eq!(
        json(&d.tern(&["show", "routes", "192.0.2.0/24", "--json"])),
        Value::Array(vec![])
    );
    // A malformed prefix is a usage error from the command line itself.
    let out = d.tern(&["show", "routes", "10.65.2.0/99"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("10.65.2.0/99"), "{}", stderr(&out));

    let text = ok_text(&d.tern(&["show", "rib"]));
    assert!(
        text.contains("prefixes:        2") && text.contains("stale paths:     1"),
        "{text}"
    );
    let rib: RibSummary =
        serde_json::from_value(json(&d.tern(&["show", "rib", "--json"]))).unwrap();
    assert_eq!(rib, d.snapshot.rib);

    let text = ok_text(&d.tern(&["show", "fib"]));
    assert!(text.starts_with("kernel routes: 2 ("), "{text}");
    assert!(text.contains("via 10.0.0.2 dev tunl0 onlink"), "{text}");
    assert!(text.contains("Network is unreachable"), "{text}");
    // What the kernel holds and where it differs from what is desired, labelled.
    assert!(
        text.contains("installed (tern's routes the kernel holds):"),
        "{text}"
    );
    assert!(
        text.contains("not as desired (pending or failed writes):"),
        "{text}"
    );
    let failed_row = text
        .lines()
        .find(|line| line.starts_with("10.65.3.0/26"))
        .unwrap_or_else(|| panic!("no row for the failed prefix: {text}"));
    assert!(
        failed_row.contains("via 10.1.0.3 metric 1024")
            && failed_row.contains("failed: Network is unreachable"),
        "{failed_row}"
    );
    let fib_json = json(&d.tern(&["show", "fib", "--json"]));
    assert_eq!(fib_json["errors_total"], 1);
    let fib: FibStatus = serde_json::from_value(fib_json).unwrap();
    assert_eq!(fib, d.snapshot.fib);

    let text = ok_text(&d.tern(&["show", "status"]));
    assert!(text.starts_with("tern 0.1.0\n"), "{text}");
    assert!(
        text.contains("router id:        10.0.0.1") && text.contains("local AS:         64512"),
        "{text}"
    );
    let status = json(&d.tern(&["show", "status", "--json"]));
    assert_eq!(status["router_id"], "10.0.0.1");
    assert_eq!(status["local_as"], 64512);
    assert_eq!(status["hostname"], "node-1");
}

#[test]
fn cli_health_ready_and_live_exit_codes() {
    // Up for an hour with one Established peer: ready and live.
    let d = Daemon::start(Snapshot::sample());
    let out = d.tern(&["health", "--ready"]);
    assert_eq!(
        (out.status.code(), stdout(&out).as_str()),
        (Some(0), "ready\n")
    );
    let out = d.tern(&["health", "--live"]);
    assert_eq!(
        (out.status.code(), stdout(&out).as_str()),
        (Some(0), "live\n")
    );
    assert_eq!(
        json(&d.tern(&["health", "--ready", "--json"]))["readiness"],
        "ready"
    );
    assert_eq!(
        json(&d.tern(&["health", "--live", "--json"]))["liveness"],
        "live"
    );
    drop(d);

    // No Established peer after the start-up window: not ready (exit 1) with the reason; a
    // supervisor whose heartbeat stopped a minute ago: not live.
    let mut snapshot = Snapshot::sample();
    let t = now();
    snapshot.peers = vec![failing_peer(Timestamp(t.0 - 10_000))];
    snapshot.daemon.heartbeat = Timestamp(t.0 - 60_000);
    let d = Daemon::start(snapshot);
    let out = d.tern(&["health", "--ready"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "not ready: BGP not established with 10.0.0.9\n"
    );
    let out = d.tern(&["health", "--ready", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["readiness"], "not_ready");
    assert_eq!(v["reason"]["reason"], "peers_not_established");
    assert_eq!(v["reason"]["peers"], serde_json::json!(["10.0.0.9"]));

    let out = d.tern(&["health", "--live"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("not live: no heartbeat from the supervisor"),
        "{}",
        stdout(&out)
    );
    let out = d.tern(&["health", "--live", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["liveness"], "not_live");
}

fn assert_unreachable(out: &Output, path: &Path) {
    assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
    assert!(out.stdout.is_empty(), "{}", stdout(out));
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "{err}");
    let prefix = format!("error: cannot reach tern at {}: ", path.display());
    assert!(err.starts_with(&prefix), "{err}");
    assert!(err.trim_end().ends_with("(is tern running?)"), "{err}");
}

#[test]
fn cli_commands_say_when_the_daemon_is_not_running() {
    let d = Daemon::start(Snapshot::sample());
    let socket = d.path.clone();
    // The server stops and removes its socket (and directory): nobody answers any more.
    drop(d);
    assert!(!socket.exists());
    for args in [
        &["show", "peers"][..],
        &["show", "routes", "--json"],
        &["show", "rib"],
        &["show", "fib"],
        &["show", "status", "--json"],
        &["health", "--ready"],
        &["health", "--live"],
    ] {
        let out = tern()
            .args(args)
            .arg("--socket")
            .arg(&socket)
            .output()
            .unwrap();
        assert_unreachable(&out, &socket);
        assert!(
            stderr(&out).contains("No such file or directory"),
            "{}",
            stderr(&out)
        );
    }

    // A socket file nobody listens on.
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("stale.ctl");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let out = tern()
        .args(["health", "--ready", "--socket"])
        .arg(&stale)
        .output()
        .unwrap();
    assert_unreachable(&out, &stale);
    assert!(
        stderr(&out).contains("Connection refused"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn cli_socket_comes_from_the_settings_file() {
    let d = Daemon::start(Snapshot::sample());
    let config = d.dir.path().join("tern.toml");
    std::fs::write(
        &config,
        format!("[control]\nsocket = {:?}\n", d.path.display().to_string()),
    )
    .unwrap();
    let out = tern()
        .args(["show", "status", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(ok_text(&out).starts_with("tern 0.1.0"));

    // Without --socket or settings, the documented default path is used.
    let empty = d.dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let out = tern()
        .args(["health", "--live", "--config"])
        .arg(&empty)
        .output()
        .unwrap();
    if !Path::new("/var/run/tern/tern.ctl").exists() {
        assert_unreachable(&out, Path::new("/var/run/tern/tern.ctl"));
    }

    // A broken settings file is reported; --socket makes it irrelevant.
    std::fs::write(&config, "[control]\nsockt = 1\n").unwrap();
    let out = tern()
        .args(["show", "rib", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("sockt") && stderr(&out).contains("--socket"),
        "{}",
        stderr(&out)
    );
    let out = tern()
        .args(["show", "rib", "--config"])
        .arg(&config)
        .arg("--socket")
        .arg(&d.path)
        .output()
        .unwrap();
    assert!(ok_text(&out).starts_with("prefixes:"));
}

#[test]
fn cli_a_daemon_that_does_not_answer_times_out() {
    // A socket that accepts connections (the kernel's backlog) but never answers.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hung.ctl");
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let out = tern()
        .args(["show", "status", "--timeout", "300ms", "--socket"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(
        err.trim_end(),
        format!(
            "error: no response from control socket {} within 300ms",
            path.display()
        )
    );

    let out = tern()
        .args(["health", "--live", "--timeout", "soon", "--socket"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--timeout"), "{}", stderr(&out));
}

#[test]
fn cli_show_peers_without_a_name_is_a_table_even_for_one_peer() {
    let mut snapshot = Snapshot::sample();
    snapshot.peers.truncate(1);
    let d = Daemon::start(snapshot);
    let text = ok_text(&d.tern(&["show", "peers"]));
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.starts_with("NAME"), "{text}");
    let text = ok_text(&d.tern(&["show", "peers", "Mesh_10_0_0_2"]));
    assert!(text.starts_with("Mesh_10_0_0_2 ("), "{text}");
}
