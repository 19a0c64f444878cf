//! `StatusHub`: tasks publish, sockets read; routes are asked of a (test) RIB task.

mod status_fixture;
use status_fixture as common;

use std::sync::Arc;
use std::time::Duration;

use common::{Snapshot, now};
use tern::io::control::format::{exit_status, render};
use tern::io::control::{
    ControlServer, Request, Response, RouteQuery, ServeOptions, SourceError, StatusHub,
    StatusSource, request_async,
};
use tern::status::SessionState;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_serves_what_tasks_publish() {
    let snap = Snapshot::sample();
    let (tx, mut rx) = mpsc::channel(4);
    let hub = Arc::new(StatusHub::new(snap.daemon.clone(), tx));
    for p in &snap.peers {
        hub.upsert_peer(p.clone());
    }
    hub.set_rib(snap.rib);
    hub.set_fib(snap.fib.clone());
    // A stand-in RIB task answering route requests.
    let routes = snap.routes.clone();
    let rib_task = tokio::spawn(async move {
        while let Some(req) = rx.recv().await {
            let found = routes
                .iter()
                .filter(|r| req.query.matches(&r.prefix))
                .cloned()
                .collect();
            let _ = req.reply.send(found);
        }
    });

    // Peers come out ordered by name.
    let names: Vec<String> = hub
        .peers()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(
        names,
        vec![
            "Global_10_0_0_9_port_1790",
            "Mesh_10_0_0_2",
            "Node_10_0_0_7"
        ]
    );
    assert!(hub.update_peer("Node_10_0_0_7", |p| p.state = SessionState::Established));
    assert!(!hub.update_peer("nope", |_| {}));
    hub.remove_peer("Global_10_0_0_9_port_1790");
    let t = now();
    hub.heartbeat(t);
    assert_eq!(hub.daemon().await.unwrap().heartbeat, t);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tern.ctl");
    let shutdown = CancellationToken::new();
    let server =
        ControlServer::read_only(&path, None, Arc::clone(&hub), ServeOptions::default()).unwrap();
    let task = tokio::spawn(server.run(shutdown.clone()));
    let ask = |r| {
        let path = path.clone();
        async move {
            request_async(&path, &r, Duration::from_secs(10))
                .await
                .unwrap()
        }
    };
    match ask(Request::ShowPeers { name: None }).await {
        Response::Peers(p) => {
            assert_eq!(p.len(), 2);
            assert_eq!(p[1].state, SessionState::Established);
        }
        other => panic!("{other:?}"),
    }
    let one = ask(Request::show_routes(Some("10.65.1.0/26".parse().unwrap()))).await;
    assert_eq!(one, Response::Routes(vec![snap.routes[0].clone()]));
    let ready = ask(Request::HealthReady).await;
    assert_eq!(exit_status(&ready), 0);
    assert_eq!(render(&ready, false, now()), "ready\n");
    // `--json` prints the body: here the list of routes.
    let json = render(&one, true, now());
    let back: Vec<tern::status::RouteStatus> = serde_json::from_str(&json).unwrap();
    assert_eq!(Response::Routes(back), one);
    let ready_json: serde_json::Value = serde_json::from_str(&render(&ready, true, now())).unwrap();
    assert_eq!(ready_json, serde_json::json!({"readiness": "ready"}));

    // When the RIB task is gone, `show routes` says so instead of hanging.
    rib_task.abort();
    let _ = rib_task.await;
    match hub.routes(RouteQuery::default()).await {
        Err(SourceError::Unavailable { component, .. }) => assert_eq!(component, "RIB task"),
        other => panic!("{other:?}"),
    }
    let err = ask(Request::show_routes(None)).await;
    assert_eq!(exit_status(&err), 2);
    assert!(render(&err, false, now()).starts_with("error: RIB task is not available"));
    let err_json: serde_json::Value = serde_json::from_str(&render(&err, true, now())).unwrap();
    assert_eq!(err_json["error"]["kind"], "unavailable");

    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_asks_the_owner_of_the_kernel_routes_when_one_is_set() {
    let snap = Snapshot::sample();
    let (tx, _rx) = mpsc::channel(4);
    let hub = Arc::new(StatusHub::new(snap.daemon.clone(), tx));
    let mut summary = snap.fib.clone();
    summary.routes.clear();
    hub.set_fib(summary.clone());
    assert_eq!(hub.fib().await.unwrap(), summary);
    // A stand-in supervisor answering with every route.
    let (fib_tx, mut fib_rx) = mpsc::channel(4);
    hub.answer_fib_from(fib_tx);
    let full = snap.fib.clone();
    let answer = full.clone();
    let owner = tokio::spawn(async move {
        let request: tern::io::control::FibRequest = fib_rx.recv().await.unwrap();
        let _ = request.reply.send(answer);
    });
    assert_eq!(hub.fib().await.unwrap(), full);
    owner.await.unwrap();
    // The owner is gone: the published summary answers.
    assert_eq!(hub.fib().await.unwrap(), summary);
}
