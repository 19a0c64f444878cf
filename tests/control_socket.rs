//! The control socket end to end over a temporary directory: round trips, permissions, bad
//! input, a hung client, the read-only/admin split.

mod status_fixture;
use status_fixture as common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{Snapshot, TestSource};
use tern::io::control::format::format_response;
use tern::io::control::{
    ControlServer, ErrorKind, Request, Response, ServeOptions, SocketError, request, request_async,
};
use tern::status::Readiness;
use tern::status::health::NotReadyReason;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

struct Running {
    _dir: tempfile::TempDir,
    path: PathBuf,
    admin_path: PathBuf,
    source: Arc<TestSource>,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            t.await.unwrap();
        }
        assert!(!self.path.exists(), "socket file removed on shutdown");
    }
}

fn start_with(source: TestSource, options: ServeOptions) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/tern.ctl");
    let admin_path = dir.path().join("run/tern-admin.ctl");
    let source = Arc::new(source);
    let shutdown = CancellationToken::new();
    let ro = ControlServer::read_only(&path, None, Arc::clone(&source), options).unwrap();
    let admin = ControlServer::admin(
        &admin_path,
        Arc::clone(&source),
        Arc::clone(&source),
        options,
    )
    .unwrap();
    let tasks = vec![
        tokio::spawn(ro.run(shutdown.clone())),
        tokio::spawn(admin.run(shutdown.clone())),
    ];
    Running {
        _dir: dir,
        path,
        admin_path,
        source,
        shutdown,
        tasks,
    }
}

fn start() -> Running {
    start_with(TestSource::new(Snapshot::sample()), ServeOptions::default())
}

async fn ask(path: &Path, req: Request) -> Response {
    request_async(path, &req, T).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_show_request_round_trips() {
    let s = start();
    let snap = s.source.snapshot.lock().unwrap().clone();

    assert_eq!(
        ask(&s.path, Request::ShowPeers { name: None }).await,
        Response::Peers(snap.peers.clone())
    );
    assert_eq!(
        ask(
            &s.path,
            Request::ShowPeers {
                name: Some("Mesh_10_0_0_2".into())
            }
        )
        .await,
        Response::Peers(vec![snap.peers[0].clone()])
    );
    assert_eq!(
        ask(&s.path, Request::show_routes(None)).await,
        Response::Routes(snap.routes.clone())
    );
    let one = Some("10.65.2.0/26".parse().unwrap());
    assert_eq!(
        ask(&s.path, Request::show_routes(one)).await,
        Response::Routes(vec![snap.routes[1].clone()])
    );
    assert_eq!(
        ask(&s.path, Request::ShowRib).await,
        Response::Rib(snap.rib)
    );
    assert_eq!(
        ask(&s.path, Request::show_fib()).await,
        Response::Fib(snap.fib.clone())
    );
    assert_eq!(
        ask(&s.path, Request::ShowStatus).await,
        Response::Status(snap.daemon.clone())
    );

    // Up an hour with one Established peer: ready (after the start-up window one is enough).
    assert_eq!(
        ask(&s.path, Request::HealthReady).await,
        Response::Ready(Readiness::Ready)
    );
    assert!(matches!(
        ask(&s.path, Request::HealthLive).await,
        Response::Live(tern::status::Liveness::Live)
    ));

    // The blocking client (what the CLI uses) sees the same.
    let path = s.path.clone();
    let blocking = tokio::task::spawn_blocking(move || request(&path, &Request::ShowRib, T))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(blocking, Response::Rib(snap.rib));

    // An unknown peer is a clear error.
    match ask(
        &s.path,
        Request::ShowPeers {
            name: Some("Mesh_10_9_9_9".into()),
        },
    )
    .await
    {
        Response::Error(e) => {
            assert_eq!(e.kind, ErrorKind::NotFound);
            assert!(e.message.contains("Mesh_10_9_9_9"), "{}", e.message);
        }
        other => panic!("expected an error, got {other:?}"),
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reports_unestablished_peers_during_startup() {
    let mut snap = Snapshot::sample();
    snap.daemon.started_at = common::now();
    let s = start_with(TestSource::new(snap), ServeOptions::default());
    match ask(&s.path, Request::HealthReady).await {
        Response::Ready(Readiness::NotReady {
            reason:
                NotReadyReason::PeersNotEstablished {
                    peers,
                    during_startup,
                },
        }) => {
            assert!(during_startup);
            assert_eq!(peers, vec!["10.0.0.9".to_owned(), "10.0.0.7".to_owned()]);
        }
        other => panic!("expected not ready, got {other:?}"),
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_have_their_modes() {
    let s = start();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.path), 0o660);
    assert_eq!(mode(&s.admin_path), 0o600);
    // No staging directory is left behind.
    let left: Vec<_> = std::fs::read_dir(s.path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_requests_only_on_the_admin_socket() {
    let s = start();
    match ask(
        &s.path,
        Request::ResetPeer {
            name: "Mesh_10_0_0_2".into(),
        },
    )
    .await
    {
        Response::Error(e) => assert_eq!(e.kind, ErrorKind::Forbidden, "{}", e.message),
        other => panic!("expected forbidden, got {other:?}"),
    }
    assert!(s.source.actions.lock().unwrap().is_empty());

    assert_eq!(
        ask(
            &s.admin_path,
            Request::ResetPeer {
                name: "Mesh_10_0_0_2".into()
            }
        )
        .await,
        Response::Done {
            message: "Mesh_10_0_0_2: reset".into()
        }
    );
    assert!(matches!(
        ask(
            &s.admin_path,
            Request::DisablePeer {
                name: "Node_10_0_0_7".into()
            }
        )
        .await,
        Response::Done { .. }
    ));
    assert!(matches!(
        ask(&s.admin_path, Request::Reload).await,
        Response::Done { .. }
    ));
    match ask(
        &s.admin_path,
        Request::ResetPeer {
            name: "nope".into(),
        },
    )
    .await
    {
        Response::Error(e) => assert_eq!(e.kind, ErrorKind::NotFound),
        other => panic!("expected not found, got {other:?}"),
    }
    // The admin socket answers read-only requests too.
    assert!(matches!(
        ask(&s.admin_path, Request::ShowRib).await,
        Response::Rib(_)
    ));
    assert_eq!(
        *s.source.actions.lock().unwrap(),
        vec!["reset Mesh_10_0_0_2", "disable Node_10_0_0_7", "reload"]
    );
    s.stop().await;
}

async fn read_line(reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>) -> Response {
    let mut line = String::new();
    tokio::time::timeout(T, reader.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad response {line:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_errors_and_the_connection_survives() {
    let s = start();
    let (r, mut w) = UnixStream::connect(&s.path).await.unwrap().into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"{\"request\":\"show_\xff\xfe\"}\n")
        .await
        .unwrap();
    match read_line(&mut r).await {
        Response::Error(e) => assert_eq!(e.kind, ErrorKind::BadRequest, "{}", e.message),
        other => panic!("invalid UTF-8: expected an error, got {other:?}"),
    }
    for bad in [
        "this is not json\n",
        "{\"request\":\"show_everything\"}\n",
        "{\"request\":\"show_routes\",\"prefix\":\"10.0.0.0/33\"}\n",
        "{\"request\":\"show_routes\",\"extra\":1}\n",
        "[1,2,3]\n",
        "\u{0}\u{1}\u{2}\n",
    ] {
        w.write_all(bad.as_bytes()).await.unwrap();
        match read_line(&mut r).await {
            Response::Error(e) => {
                assert_eq!(e.kind, ErrorKind::BadRequest, "{bad:?}");
                assert!(e.message.starts_with("malformed request"), "{}", e.message);
            }
            other => panic!("{bad:?}: expected an error, got {other:?}"),
        }
    }
    // A good request after an empty line still works on the same connection.
    w.write_all(b"\n{\"request\":\"show_rib\"}\n")
        .await
        .unwrap();
    assert!(matches!(read_line(&mut r).await, Response::Rib(_)));

    // A line over the limit gets an error and the connection is closed.
    let long = vec![b'x'; tern::io::control::protocol::MAX_REQUEST_LINE + 10];
    // The server may close before it has read everything, so the write may fail.
    let _ = w.write_all(&long).await;
    let _ = w.write_all(b"\n").await;
    match read_line(&mut r).await {
        Response::Error(e) => assert!(e.message.contains("longer than"), "{}", e.message),
        other => panic!("expected an error, got {other:?}"),
    }
    // The server still serves others.
    assert!(matches!(
        ask(&s.path, Request::ShowStatus).await,
        Response::Status(_)
    ));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_client_does_not_block_others() {
    let s = start();
    // One client connects and sends half a request, another never sends anything, a third sends
    // requests and never reads the responses.
    let mut half = UnixStream::connect(&s.path).await.unwrap();
    half.write_all(b"{\"request\":\"sho").await.unwrap();
    let _silent = UnixStream::connect(&s.path).await.unwrap();
    let mut deaf = UnixStream::connect(&s.path).await.unwrap();
    for _ in 0..200 {
        deaf.write_all(b"{\"request\":\"show_peers\"}\n")
            .await
            .unwrap();
    }
    for _ in 0..5 {
        assert!(
            matches!(ask(&s.path, Request::ShowPeers { name: None }).await, Response::Peers(p) if p.len() == 3)
        );
    }
    // Shutdown is not held up by them either.
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_does_not_answer_is_reported_not_awaited_forever() {
    let mut source = TestSource::new(Snapshot::sample());
    source.delay = Duration::from_secs(3600);
    let options = ServeOptions {
        source_timeout: Duration::from_millis(200),
        ..ServeOptions::default()
    };
    let s = start_with(source, options);
    match ask(&s.path, Request::ShowPeers { name: None }).await {
        Response::Error(e) => {
            assert_eq!(e.kind, ErrorKind::Unavailable);
            assert!(e.message.contains("no answer within"), "{}", e.message);
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert!(matches!(
        ask(&s.path, Request::HealthLive).await,
        Response::Live(tern::status::Liveness::NotLive { .. })
    ));
    assert!(matches!(
        ask(&s.path, Request::HealthReady).await,
        Response::Ready(Readiness::NotReady {
            reason: NotReadyReason::DaemonUnavailable { .. }
        })
    ));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_when_over_the_connection_limit() {
    let options = ServeOptions {
        max_connections: 1,
        ..ServeOptions::default()
    };
    let s = start_with(TestSource::new(Snapshot::sample()), options);
    let (r, mut w) = UnixStream::connect(&s.path).await.unwrap().into_split();
    let mut r = BufReader::new(r);
    // The first connection holds the only slot once it has been answered.
    w.write_all(b"{\"request\":\"show_rib\"}\n").await.unwrap();
    assert!(matches!(read_line(&mut r).await, Response::Rib(_)));
    match ask(&s.path, Request::ShowRib).await {
        Response::Error(e) => assert_eq!(e.kind, ErrorKind::Busy),
        other => panic!("expected busy, got {other:?}"),
    }
    drop((r, w));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_refuses_live_sockets_and_other_files_and_replaces_stale_ones() {
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(TestSource::new(Snapshot::sample()));
    let opts = ServeOptions::default();

    let file = dir.path().join("file.ctl");
    std::fs::write(&file, b"keep me").unwrap();
    assert!(matches!(
        ControlServer::read_only(&file, None, Arc::clone(&source), opts),
        Err(SocketError::NotASocket(_))
    ));
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");

    let stale = dir.path().join("stale.ctl");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let server = ControlServer::read_only(&stale, None, Arc::clone(&source), opts).unwrap();
    assert!(matches!(
        ControlServer::read_only(&stale, None, Arc::clone(&source), opts),
        Err(SocketError::InUse(_))
    ));
    drop(server);
    assert!(!stale.exists());
}

#[test]
fn client_reports_a_missing_daemon_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let err = request(&dir.path().join("absent.ctl"), &Request::ShowStatus, T).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("absent.ctl") && text.contains("is tern running"),
        "{text}"
    );
}

#[test]
fn human_output_shows_why_peers_are_down() {
    let snap = Snapshot::sample();
    let now = common::now();
    let out = format_response(&Response::Peers(snap.peers.clone()), now);
    println!("{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("LAST ERROR"));
    let global = lines
        .iter()
        .find(|l| l.starts_with("Global_10_0_0_9_port_1790"))
        .unwrap();
    assert!(global.contains("Active"));
    assert!(
        global.contains(
            "received NOTIFICATION: Cease: Administrative Shutdown \"maintenance\" (6/2)"
        ),
        "{global}"
    );
    let node = lines
        .iter()
        .find(|l| l.starts_with("Node_10_0_0_7"))
        .unwrap();
    assert!(node.contains("socket: Connection refused"), "{node}");
    let mesh = lines
        .iter()
        .find(|l| l.starts_with("Mesh_10_0_0_2"))
        .unwrap();
    assert!(
        mesh.contains("Established") && mesh.contains("3/2/1") && mesh.contains("3m12s"),
        "{mesh}"
    );

    let detail = format_response(&Response::Peers(vec![snap.peers[0].clone()]), now);
    println!("{detail}");
    assert!(
        detail.contains("negotiated:        families ipv4"),
        "{detail}"
    );
    assert!(detail.contains("ADD-PATH ipv4 send+receive"), "{detail}");
    assert!(detail.contains("graceful-restart 120s"), "{detail}");
    assert!(detail.contains("hold time:         90s"), "{detail}");

    let routes = format_response(&Response::Routes(snap.routes.clone()), now);
    println!("{routes}");
    assert!(routes.contains("10.0.0.2 dev tunl0"));
    assert!(routes.contains("65001 65002"));
    assert!(routes.contains("64512:100"));
    assert!(routes.contains("stale"));

    let fib = format_response(&Response::Fib(snap.fib.clone()), now);
    println!("{fib}");
    assert!(
        fib.contains("kernel routes: 2 (1 blackhole, 0 unicast, 1 ipip, 0 ecmp)"),
        "{fib}"
    );
    assert!(fib.contains("Network is unreachable"));

    let status = format_response(&Response::Status(snap.daemon.clone()), now);
    assert!(status.contains("router id:        10.0.0.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_group_is_set_when_configured() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tern.ctl");
    let source = Arc::new(TestSource::new(Snapshot::sample()));
    // Group 1 exists on Debian ("daemon"); changing a file's group needs root or membership.
    match ControlServer::read_only(&path, Some(1), source, ServeOptions::default()) {
        Ok(server) => {
            let meta = std::fs::metadata(server.path()).unwrap();
            assert_eq!(meta.gid(), 1);
            assert_eq!(meta.mode() & 0o777, 0o660);
        }
        Err(SocketError::Io {
            what: "setting group of",
            ..
        }) => {
            interop::scenario::missing_prerequisite(
                "control_socket",
                "not allowed to change a file's group here (needs root)",
            );
        }
        Err(e) => panic!("{e}"),
    }
}

/// A client that hangs up while its routes are being built: the server drops the request (the
/// daemon then stops building it) instead of holding it until the source timeout. A client
/// that only shuts down its writing half after the request still gets the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_of_a_client_that_hung_up_is_dropped() {
    let options = ServeOptions {
        source_timeout: Duration::from_secs(600),
        ..ServeOptions::default()
    };
    let line = format!(
        "{}\n",
        serde_json::to_string(&Request::show_routes(None)).unwrap()
    );

    // Hung up: the request is abandoned, long before the source (600 s) would answer.
    let mut slow = TestSource::new(Snapshot::sample());
    slow.delay = Duration::from_secs(600);
    let s = start_with(slow, options);
    let mut gone = UnixStream::connect(&s.path).await.unwrap();
    gone.write_all(line.as_bytes()).await.unwrap();
    drop(gone);
    tokio::time::timeout(T, async {
        while s
            .source
            .routes_abandoned
            .load(std::sync::atomic::Ordering::SeqCst)
            == 0
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the request of a client that hung up is still being answered");
    s.stop().await;

    // Half-closed: the answer (after 1 s, ten looks at the socket) still comes.
    let mut answering = TestSource::new(Snapshot::sample());
    answering.delay = Duration::from_secs(1);
    let s = start_with(answering, options);
    let (r, mut w) = UnixStream::connect(&s.path).await.unwrap().into_split();
    w.write_all(line.as_bytes()).await.unwrap();
    w.shutdown().await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(T, BufReader::new(r).read_line(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(
        answer.contains("\"routes\""),
        "no routes after a half-close: {answer}"
    );
    assert_eq!(
        s.source
            .routes_abandoned
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    s.stop().await;
}
