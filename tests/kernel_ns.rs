//! Kernel route programming in network namespaces (root only; skipped with a notice otherwise).
//!
//! Each test makes its own namespace (name from pid + counter, deleted by a drop guard) with a
//! veth pair: `eth0` (192.168.1.1/24, fd00:1::1/64) and its peer named `tunl0` (10.255.0.1/32), a
//! stand-in for the IP-in-IP device this kernel cannot create. The kernel task runs on a thread
//! that entered the namespace before opening its netlink sockets. State is checked against
//! `ip -json route`, waiting for conditions with a timeout.

use std::future::Future;
use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde_json::Value;
use tern::fib::{KernelRoute, KernelRouteKind, NextHop};
use tern::io::kernel::{KernelConfig, KernelHandle, KernelStatus, LearnedRouteEvent};

const WAIT: Duration = Duration::from_secs(10);

static COUNTER: AtomicU32 = AtomicU32::new(0);

struct Netns {
    name: String,
}

impl Netns {
    /// A fresh namespace, or `None` (with a printed notice) when not root.
    fn new(with_tunnel: bool) -> Option<Netns> {
        if !interop::scenario::require("kernel_ns", &[interop::scenario::Requirement::Root]) {
            return None;
        }
        let name = format!(
            "tk-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        run(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        let peer = if with_tunnel { "tunl0" } else { "peer0" };
        ns.ip(&["link", "set", "lo", "up"]);
        ns.ip(&["link", "add", "eth0", "type", "veth", "peer", "name", peer]);
        ns.ip(&["addr", "add", "192.168.1.1/24", "dev", "eth0"]);
        ns.ip(&["-6", "addr", "add", "fd00:1::1/64", "dev", "eth0", "nodad"]);
        if with_tunnel {
            ns.ip(&["addr", "add", "10.255.0.1/32", "dev", "tunl0"]);
        }
        ns.ip(&["link", "set", "eth0", "up"]);
        ns.ip(&["link", "set", peer, "up"]);
        Some(ns)
    }

    fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "-n", &self.name];
        full.extend_from_slice(args);
        run(&full)
    }

    /// `ip -json route` of the main table, IPv4 and IPv6.
    fn routes(&self) -> Vec<Value> {
        let mut all = Vec::new();
        for family in ["-4", "-6"] {
            let out = self.ip(&["-json", family, "route", "show", "table", "main"]);
            if let Ok(Value::Array(routes)) = serde_json::from_str::<Value>(&out) {
                all.extend(routes);
            }
        }
        all
    }

    fn route(&self, dst: &str) -> Option<Value> {
        self.routes().into_iter().find(|route| route["dst"] == dst)
    }

    /// Waits until `condition` holds on the routes; panics with the routes after the timeout.
    fn wait_routes(&self, what: &str, condition: impl Fn(&[Value]) -> bool) {
        let start = Instant::now();
        loop {
            let routes = self.routes();
            if condition(&routes) {
                return;
            }
            assert!(
                start.elapsed() < WAIT,
                "timed out waiting for {what}; routes: {routes:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `body` on a thread inside the namespace with a tokio runtime.
    fn enter<F, Fut>(&self, body: F)
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = ()>,
    {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let file = std::fs::File::open(&path).expect("open netns");
                    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                    // Worker threads are created here, so they are in the namespace too; the test body may
                    // block (waiting on `ip` output) while the kernel task runs on a worker.
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .unwrap();
                    runtime.block_on(body());
                })
                .join()
                .expect("namespace thread panicked");
        });
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run command");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn unicast(prefix: &str, hops: &[(&str, bool)]) -> KernelRoute {
    KernelRoute {
        prefix: net(prefix),
        kind: KernelRouteKind::Unicast(
            hops.iter()
                .map(|&(g, t)| NextHop {
                    gateway: ip(g),
                    via_tunnel: t,
                })
                .collect(),
        ),
        metric: 1024,
    }
}

fn blackhole(prefix: &str) -> KernelRoute {
    KernelRoute {
        prefix: net(prefix),
        kind: KernelRouteKind::Blackhole,
        metric: 1024,
    }
}

async fn wait_status(
    handle: &KernelHandle,
    what: &str,
    condition: impl Fn(&KernelStatus) -> bool,
) -> KernelStatus {
    let mut rx = handle.watch_status();
    match tokio::time::timeout(WAIT, rx.wait_for(|status| condition(status))).await {
        Ok(Ok(status)) => status.clone(),
        _ => panic!(
            "timed out waiting for {what}; status: {:#?}",
            handle.status()
        ),
    }
}

async fn applied(handle: &KernelHandle, generation: u64) -> KernelStatus {
    wait_status(handle, "the desired set to be applied", |s| {
        s.applied_generation >= generation
    })
    .await
}

fn is_tern(route: &Value) -> bool {
    route["protocol"] == "bird"
}

fn has_flag(value: &Value, flag: &str) -> bool {
    value["flags"]
        .as_array()
        .is_some_and(|flags| flags.iter().any(|f| f == flag))
}

fn all_kinds() -> Vec<KernelRoute> {
    vec![
        unicast("10.3.1.0/26", &[("192.168.1.2", false)]),
        unicast("10.1.1.0/26", &[("172.16.0.9", true)]),
        blackhole("10.1.7.0/26"),
        unicast(
            "10.3.2.0/26",
            &[("192.168.1.2", false), ("192.168.1.3", false)],
        ),
        unicast(
            "10.1.2.0/26",
            &[("172.16.0.9", true), ("172.16.0.10", true)],
        ),
        unicast("fd00:2::/64", &[("fd00:1::2", false)]),
        unicast("fd00:3::/64", &[("fd00:1::2", false), ("fd00:1::3", false)]),
    ]
}

fn check_all_kinds(routes: &[Value]) -> bool {
    let find = |dst: &str| routes.iter().find(|r| r["dst"] == dst && is_tern(r));
    let plain = find("10.3.1.0/26").is_some_and(|r| {
        r["gateway"] == "192.168.1.2" && r["dev"] == "eth0" && r["metric"] == 1024
    });
    let tunnel = find("10.1.1.0/26").is_some_and(|r| {
        r["gateway"] == "172.16.0.9" && r["dev"] == "tunl0" && has_flag(r, "onlink")
    });
    let hole = find("10.1.7.0/26").is_some_and(|r| r["type"] == "blackhole");
    let hops = |r: &Value| r["nexthops"].as_array().cloned().unwrap_or_default();
    let multipath = find("10.3.2.0/26").is_some_and(|r| {
        let hops = hops(r);
        hops.len() == 2 && hops.iter().all(|h| h["dev"] == "eth0")
    });
    let multipath_tunnel = find("10.1.2.0/26").is_some_and(|r| {
        let hops = hops(r);
        hops.len() == 2
            && hops
                .iter()
                .all(|h| h["dev"] == "tunl0" && has_flag(h, "onlink"))
    });
    let v6 = find("fd00:2::/64").is_some_and(|r| r["gateway"] == "fd00:1::2" && r["dev"] == "eth0");
    let v6_multipath = find("fd00:3::/64").is_some_and(|r| hops(r).len() == 2);
    plain && tunnel && hole && multipath && multipath_tunnel && v6 && v6_multipath
}

#[test]
fn ns_every_route_kind_is_installed() {
    let Some(ns) = Netns::new(true) else { return };
    ns.enter(|| async {
        let (handle, _learned) = KernelHandle::start(KernelConfig::default()).await.unwrap();
        let generation = handle.set_desired(all_kinds());
        let status = applied(&handle, generation).await;
        assert!(status.failed.is_empty(), "failed: {:?}", status.failed);
        assert_eq!(status.installed.blackhole, 1);
        assert_eq!(status.installed.tunnel, 1);
        assert_eq!(status.installed.multipath, 3);
        assert_eq!(status.installed.plain, 2);
        ns.wait_routes("every route kind", check_all_kinds);
        // Withdrawing one route deletes it and nothing else.
        let mut fewer = all_kinds();
        fewer.retain(|route| route.prefix != net("10.3.1.0/26"));
        let generation = handle.set_desired(fewer);
        applied(&handle, generation).await;
        ns.wait_routes("10.3.1.0/26 removed", |routes| {
            !routes.iter().any(|r| r["dst"] == "10.3.1.0/26")
        });
        assert!(ns.route("10.1.7.0/26").is_some());
        handle.shutdown().await;
    });
    // Stopping leaves the routes in place.
    assert!(ns.route("10.1.2.0/26").is_some_and(|r| is_tern(&r)));
}

#[test]
fn ns_deleted_or_replaced_route_is_restored() {
    let Some(ns) = Netns::new(true) else { return };
    ns.enter(|| async {
        let (handle, _learned) = KernelHandle::start(KernelConfig::default()).await.unwrap();
        let generation = handle.set_desired(all_kinds());
        applied(&handle, generation).await;
        ns.wait_routes("every route kind", check_all_kinds);
        let deleted_at = Instant::now();
        ns.ip(&["route", "del", "10.3.1.0/26", "proto", "bird"]);
        ns.ip(&["route", "del", "10.1.2.0/26", "proto", "bird"]);
        ns.ip(&["-6", "route", "del", "fd00:2::/64", "proto", "bird"]);
        ns.wait_routes("deleted routes back", check_all_kinds);
        // Reported, not asserted (timings are not asserted in tests).
        eprintln!(
            "deleted routes back after {:?} (including the `ip` calls)",
            deleted_at.elapsed()
        );
        // Someone replaces ours with a route of another protocol (same prefix and metric).
        ns.ip(&[
            "route",
            "replace",
            "10.1.1.0/26",
            "via",
            "192.168.1.9",
            "proto",
            "static",
            "metric",
            "1024",
        ]);
        ns.wait_routes("replaced route back", check_all_kinds);
        let status = wait_status(&handle, "restorations counted", |s| s.restored >= 4).await;
        assert!(status.restored >= 4);
        handle.shutdown().await;
    });
}

#[test]
fn ns_link_down_and_up_gets_routes_back() {
    let Some(ns) = Netns::new(true) else { return };
    ns.enter(|| async {
        let (handle, _learned) = KernelHandle::start(KernelConfig::default()).await.unwrap();
        let generation = handle.set_desired(all_kinds());
        applied(&handle, generation).await;
        ns.wait_routes("every route kind", check_all_kinds);
        ns.ip(&["link", "set", "eth0", "down"]);
        ns.wait_routes("routes via eth0 gone", |routes| {
            !routes.iter().any(|r| r["dst"] == "10.3.1.0/26")
        });
        wait_status(&handle, "failure recorded while eth0 is down", |s| {
            s.failed.contains_key(&net("10.3.1.0/26"))
        })
        .await;
        ns.ip(&["link", "set", "eth0", "up"]);
        // IPv6 drops global addresses on link down; the node's agent would add it back.
        ns.ip(&["-6", "addr", "add", "fd00:1::1/64", "dev", "eth0", "nodad"]);
        ns.wait_routes("routes back after link up", check_all_kinds);
        wait_status(&handle, "no failures", |s| s.failed.is_empty()).await;
        handle.shutdown().await;
    });
}

#[test]
fn ns_adopted_routes_are_kept_until_convergence_then_swept() {
    let Some(ns) = Netns::new(true) else { return };
    ns.ip(&[
        "route",
        "add",
        "10.9.1.0/26",
        "via",
        "192.168.1.2",
        "proto",
        "bird",
        "metric",
        "1024",
    ]);
    ns.ip(&[
        "route",
        "add",
        "10.9.2.0/26",
        "via",
        "192.168.1.2",
        "proto",
        "bird",
        "metric",
        "1024",
    ]);
    ns.ip(&[
        "route",
        "add",
        "blackhole",
        "10.9.3.0/26",
        "proto",
        "bird",
        "metric",
        "1024",
    ]);
    ns.enter(|| async {
        let (handle, _learned) = KernelHandle::start(KernelConfig::default()).await.unwrap();
        assert_eq!(handle.status().stale, 3);
        let generation =
            handle.set_desired(vec![unicast("10.9.1.0/26", &[("192.168.1.3", false)])]);
        let status = applied(&handle, generation).await;
        assert_eq!(status.stale, 2);
        ns.wait_routes("re-desired route replaced", |routes| {
            routes
                .iter()
                .any(|r| r["dst"] == "10.9.1.0/26" && r["gateway"] == "192.168.1.3")
        });
        // Not desired again, but held until convergence.
        assert!(ns.route("10.9.2.0/26").is_some());
        assert!(ns.route("10.9.3.0/26").is_some());
        handle.converged();
        ns.wait_routes("stale routes swept", |routes| {
            !routes
                .iter()
                .any(|r| r["dst"] == "10.9.2.0/26" || r["dst"] == "10.9.3.0/26")
                && routes.iter().any(|r| r["dst"] == "10.9.1.0/26")
        });
        handle.shutdown().await;
    });
}

#[test]
fn ns_stale_hold_is_bounded_by_its_timer() {
    let Some(ns) = Netns::new(true) else { return };
    ns.ip(&[
        "route",
        "add",
        "blackhole",
        "10.9.3.0/26",
        "proto",
        "bird",
        "metric",
        "1024",
    ]);
    ns.enter(|| async {
        let config = KernelConfig {
            stale_hold: Some(Duration::from_millis(300)),
            ..KernelConfig::default()
        };
        let (handle, _learned) = KernelHandle::start(config).await.unwrap();
        wait_status(&handle, "hold timer ran out", |s| s.stale_swept).await;
        ns.wait_routes("stale route swept", |routes| {
            !routes.iter().any(|r| r["dst"] == "10.9.3.0/26")
        });
        handle.shutdown().await;
    });
}

#[test]
fn ns_missing_tunnel_is_reported_and_routes_follow_when_it_appears() {
    let Some(ns) = Netns::new(false) else { return };
    ns.enter(|| async {
        let (handle, _learned) = KernelHandle::start(KernelConfig::default()).await.unwrap();
        let generation = handle.set_desired(all_kinds());
        let status = applied(&handle, generation).await;
        assert!(status.tunnel_missing);
        let reason = &status.failed[&net("10.1.1.0/26")];
        assert!(
            reason.contains("tunl0") && reason.contains("missing"),
            "{reason}"
        );
        // The rest is installed.
        ns.wait_routes("non-tunnel routes", |routes| {
            routes.iter().any(|r| r["dst"] == "10.3.1.0/26")
                && routes.iter().any(|r| r["dst"] == "10.1.7.0/26")
        });
        ns.ip(&[
            "link", "add", "tunl0", "type", "veth", "peer", "name", "tunl0p",
        ]);
        ns.ip(&["addr", "add", "10.255.0.1/32", "dev", "tunl0"]);
        ns.ip(&["link", "set", "tunl0p", "up"]);
        ns.ip(&["link", "set", "tunl0", "up"]);
        ns.wait_routes("tunnel routes after tunl0 appeared", check_all_kinds);
        wait_status(&handle, "no failures", |s| {
            s.failed.is_empty() && !s.tunnel_missing
        })
        .await;
        handle.shutdown().await;
    });
}

#[test]
fn ns_unreachable_gateway_is_resolved_recursively_and_followed() {
    let Some(ns) = Netns::new(true) else { return };
    ns.ip(&[
        "route",
        "add",
        "10.50.0.0/24",
        "via",
        "192.168.1.2",
        "proto",
        "static",
    ]);
    ns.enter(|| async {
        let (handle, _learned) = KernelHandle::start(KernelConfig::default()).await.unwrap();
        let generation = handle.set_desired(vec![unicast("10.3.5.0/26", &[("10.50.0.1", false)])]);
        applied(&handle, generation).await;
        ns.wait_routes("route via the resolved next hop", |routes| {
            routes
                .iter()
                .any(|r| r["dst"] == "10.3.5.0/26" && r["gateway"] == "192.168.1.2" && is_tern(r))
        });
        ns.ip(&[
            "route",
            "replace",
            "10.50.0.0/24",
            "via",
            "192.168.1.3",
            "proto",
            "static",
        ]);
        ns.wait_routes("route follows the resolving route", |routes| {
            routes
                .iter()
                .any(|r| r["dst"] == "10.3.5.0/26" && r["gateway"] == "192.168.1.3" && is_tern(r))
        });
        handle.shutdown().await;
    });
}

#[test]
fn ns_routes_of_other_agents_are_learned_except_ignored_interfaces() {
    let Some(ns) = Netns::new(true) else { return };
    ns.ip(&[
        "link", "add", "cali1234", "type", "veth", "peer", "name", "calipeer",
    ]);
    ns.ip(&["link", "set", "cali1234", "up"]);
    ns.ip(&["link", "set", "calipeer", "up"]);
    ns.ip(&[
        "route",
        "add",
        "10.60.0.0/24",
        "via",
        "192.168.1.2",
        "proto",
        "static",
    ]);
    ns.enter(|| async {
        let (handle, mut learned) = KernelHandle::start(KernelConfig::default()).await.unwrap();
        ns.ip(&[
            "route",
            "add",
            "10.61.0.5/32",
            "dev",
            "cali1234",
            "proto",
            "boot",
        ]);
        ns.ip(&[
            "route",
            "add",
            "10.62.0.7/32",
            "dev",
            "eth0",
            "proto",
            "boot",
        ]);
        let generation = handle.set_desired(vec![blackhole("10.1.7.0/26")]);
        applied(&handle, generation).await;
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        while !seen
            .iter()
            .any(|r: &tern::io::kernel::LearnedRoute| r.prefix == net("10.62.0.7/32"))
        {
            match tokio::time::timeout_at(deadline, learned.recv()).await {
                Ok(Some(LearnedRouteEvent::Added(route))) => seen.push(route),
                Ok(Some(LearnedRouteEvent::Removed(_))) => {}
                _ => panic!("timed out waiting for learned routes; seen {seen:?}"),
            }
        }
        let find = |prefix: &str| seen.iter().find(|r| r.prefix == net(prefix)).cloned();
        let static_route = find("10.60.0.0/24").expect("static route learned");
        assert_eq!(static_route.protocol, 4);
        assert_eq!(static_route.interface.as_deref(), Some("eth0"));
        assert_eq!(find("10.62.0.7/32").unwrap().protocol, 3);
        assert!(find("192.168.1.0/24").is_some(), "interface route learned");
        assert!(
            find("10.61.0.5/32").is_none(),
            "cali* route must not be learned"
        );
        assert!(
            find("10.1.7.0/26").is_none(),
            "tern's own routes are not learned"
        );
        ns.ip(&[
            "route",
            "del",
            "10.62.0.7/32",
            "dev",
            "eth0",
            "proto",
            "boot",
        ]);
        loop {
            match tokio::time::timeout_at(deadline, learned.recv()).await {
                Ok(Some(LearnedRouteEvent::Removed(route)))
                    if route.prefix == net("10.62.0.7/32") =>
                {
                    break;
                }
                Ok(Some(_)) => {}
                _ => panic!("timed out waiting for the learned route's removal"),
            }
        }
        // Workload interfaces come and go with pods: no resynchronisation for them.
        let resyncs_before = handle.status().resyncs;
        ns.ip(&["link", "set", "cali1234", "down"]);
        ns.ip(&["link", "set", "cali1234", "up"]);
        ns.ip(&["link", "del", "cali1234"]);
        // Events are handled in order: once a later route is learned and then a desired set
        // applied, the link events were handled.
        ns.ip(&[
            "route",
            "add",
            "10.63.0.9/32",
            "dev",
            "eth0",
            "proto",
            "boot",
        ]);
        loop {
            match tokio::time::timeout_at(deadline, learned.recv()).await {
                Ok(Some(LearnedRouteEvent::Added(route)))
                    if route.prefix == net("10.63.0.9/32") =>
                {
                    break;
                }
                Ok(Some(_)) => {}
                _ => panic!("timed out waiting for the sentinel route"),
            }
        }
        let generation = handle.set_desired(vec![blackhole("10.1.8.0/26")]);
        applied(&handle, generation).await;
        assert_eq!(
            handle.status().resyncs,
            resyncs_before,
            "a cali* link change caused a resync"
        );
        // An uplink change does (the kernel drops routes over it without notifying).
        ns.ip(&["link", "set", "eth0", "down"]);
        wait_status(&handle, "a resync after eth0 went down", |s| {
            s.resyncs > resyncs_before
        })
        .await;
        handle.shutdown().await;
    });
}

#[test]
fn ns_flush_on_exit_deletes_routes() {
    let Some(ns) = Netns::new(true) else { return };
    ns.enter(|| async {
        let config = KernelConfig {
            flush_on_exit: true,
            ..KernelConfig::default()
        };
        let (handle, _learned) = KernelHandle::start(config).await.unwrap();
        let generation = handle.set_desired(all_kinds());
        applied(&handle, generation).await;
        ns.wait_routes("every route kind", check_all_kinds);
        handle.shutdown().await;
    });
    assert!(
        !ns.routes().iter().any(is_tern),
        "routes left: {:#?}",
        ns.routes()
    );
}

#[test]
fn ns_event_overrun_resyncs_and_keeps_running() {
    let Some(ns) = Netns::new(true) else { return };
    ns.enter(|| async {
        // A tiny event buffer overruns when someone flushes thousands of our routes at once
        // (`ip route flush` sends its deletions in large batches).
        let config = KernelConfig {
            event_buffer_bytes: 4096,
            ..KernelConfig::default()
        };
        let (handle, _learned) = KernelHandle::start(config).await.unwrap();
        let routes: Vec<KernelRoute> = (0..8192u32)
            .map(|i| {
                unicast(
                    &format!("10.{}.{}.0/24", 100 + i / 256, i % 256),
                    &[("192.168.1.2", false)],
                )
            })
            .collect();
        let generation = handle.set_desired(routes);
        applied(&handle, generation).await;
        wait_status(&handle, "all routes installed", |s| {
            s.installed.plain == 8192
        })
        .await;
        ns.ip(&["route", "flush", "proto", "bird"]);
        let status = wait_status(&handle, "an overrun", |s| s.overruns > 0).await;
        assert!(status.resyncs >= 1);
        ns.wait_routes("every flushed route restored", |routes| {
            routes.iter().filter(|r| is_tern(r)).count() == 8192
        });
        wait_status(&handle, "all routes installed again", |s| {
            s.installed.plain == 8192
        })
        .await;
        // Still alive and restoring.
        ns.ip(&["route", "del", "10.100.7.0/24", "proto", "bird"]);
        ns.wait_routes("restored after overrun", |routes| {
            routes.iter().any(|r| r["dst"] == "10.100.7.0/24")
        });
        handle.shutdown().await;
    });
}

/// The example `kernel_agent` next to this test binary (cargo builds examples for tests).
fn kernel_agent() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe
        .parent()?
        .parent()?
        .join("examples")
        .join("kernel_agent");
    path.exists().then_some(path)
}

/// Kills and reaps a child process when dropped.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Agent {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Agent {
    fn start(ns: &Netns, agent: &std::path::Path, args: &[&str]) -> Agent {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(agent)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start kernel_agent");
        let stdout = child.stdout.take().unwrap();
        Agent {
            child,
            lines: std::io::BufRead::lines(std::io::BufReader::new(stdout)),
        }
    }

    /// Waits for a line on the agent's stdout (the agent exits on failure, ending the stream).
    fn expect_line(&mut self, wanted: &str) {
        for line in self.lines.by_ref() {
            if line.expect("agent output") == wanted {
                return;
            }
        }
        panic!("kernel_agent ended before printing {wanted:?}");
    }

    fn signal(mut self, signal: &str) {
        run(&["kill", signal, &self.child.id().to_string()]);
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ns_restart_keeps_every_route_and_sweeps_stale_ones() {
    let Some(ns) = Netns::new(true) else { return };
    let Some(agent) = kernel_agent() else {
        interop::scenario::missing_prerequisite(
            "ns_restart_keeps_every_route_and_sweeps_stale_ones",
            "examples/kernel_agent is not built (cargo build --examples)",
        );
        return;
    };
    let mut first = Agent::start(&ns, &agent, &["--count", "50"]);
    first.expect_line("converged");
    // Record every route change from here on.
    let log = std::env::temp_dir().join(format!("{}.monitor", ns.name));
    let monitor = ChildGuard(
        Command::new("ip")
            .args(["-n", &ns.name, "monitor", "route"])
            .stdout(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("ip monitor"),
    );
    let monitor_saw = |text: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(text)
    };
    let wait_monitor = |text: &str| {
        let start = Instant::now();
        while !monitor_saw(text) {
            assert!(start.elapsed() < WAIT, "ip monitor never showed {text:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // The monitor subscribes asynchronously: add sentinel routes (a new prefix each time, so that
    // each one is notified) until one shows up.
    let start = Instant::now();
    for attempt in 0u32.. {
        if monitor_saw("10.254.") {
            break;
        }
        assert!(start.elapsed() < WAIT, "ip monitor never started");
        let sentinel = format!("10.254.{}.0/24", attempt % 256);
        ns.ip(&[
            "route", "replace", &sentinel, "dev", "eth0", "proto", "static",
        ]);
        std::thread::sleep(Duration::from_millis(50));
    }

    // Planned stop, then a restart that no longer wants route 49.
    first.signal("-TERM");
    let mut second = Agent::start(&ns, &agent, &["--count", "50", "--skip", "49"]);
    second.expect_line("converged");
    // Crash, then a restart with the same routes.
    second.signal("-KILL");
    let mut third = Agent::start(&ns, &agent, &["--count", "50", "--skip", "49"]);
    third.expect_line("converged");
    third.signal("-TERM");

    ns.ip(&[
        "route",
        "add",
        "10.253.0.0/24",
        "dev",
        "eth0",
        "proto",
        "static",
    ]);
    wait_monitor("10.253.0.0/24");
    drop(monitor);
    let recorded = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let deleted: Vec<&str> = recorded
        .lines()
        .filter(|line| line.starts_with("Deleted") && line.contains("10.200."))
        .collect();
    assert_eq!(
        deleted.len(),
        1,
        "only the stale route may disappear; ip monitor recorded:\n{recorded}"
    );
    assert!(deleted[0].contains("10.200.49.0/24"), "{}", deleted[0]);
    let routes = ns.routes();
    let ours = routes
        .iter()
        .filter(|r| is_tern(r) && r["dst"].as_str().is_some_and(|d| d.starts_with("10.200.")))
        .count();
    assert_eq!(ours, 49, "routes after the restarts: {routes:#?}");
}

#[test]
fn ns_refused_writes_are_reported_per_route_and_retried_when_reachable() {
    let Some(ns) = Netns::new(true) else { return };
    ns.enter(|| async {
        let (handle, _learned) = KernelHandle::start(KernelConfig::default()).await.unwrap();
        // 3,000 routes via a gateway nothing reaches: every request of every batch fails, and
        // each failure must be matched to its route from the kernel's error.
        let mut routes: Vec<KernelRoute> = (0..3000u32)
            .map(|i| {
                unicast(
                    &format!("10.{}.{}.0/24", 120 + i / 256, i % 256),
                    &[("10.77.0.1", false)],
                )
            })
            .collect();
        routes.push(blackhole("10.1.7.0/26"));
        let generation = handle.set_desired(routes);
        let status = applied(&handle, generation).await;
        assert_eq!(
            status.failed.len(),
            3000,
            "{:?}",
            status.failed.iter().next()
        );
        assert!(
            status
                .failed
                .values()
                .all(|reason| reason.contains("unreachable")),
            "{:?}",
            status.failed.values().next()
        );
        assert_eq!(status.installed.blackhole, 1);
        // A route to the gateway appears: the routes follow through it.
        ns.ip(&[
            "route",
            "add",
            "10.77.0.0/24",
            "via",
            "192.168.1.2",
            "proto",
            "static",
        ]);
        wait_status(&handle, "routes installed via the resolved next hop", |s| {
            s.failed.is_empty() && s.installed.plain == 3000
        })
        .await;
        let route = ns.route("10.121.5.0/24").expect("installed");
        assert_eq!(route["gateway"], "192.168.1.2");
        // The route to the gateway goes: the routes must not keep forwarding to the old next hop.
        ns.ip(&["route", "del", "10.77.0.0/24", "proto", "static"]);
        wait_status(&handle, "routes withdrawn as unreachable", |s| {
            s.failed.len() == 3000 && s.installed.plain == 0
        })
        .await;
        ns.wait_routes("unreachable routes gone", |routes| {
            !routes.iter().any(|r| r["dst"] == "10.121.5.0/24")
        });
        handle.shutdown().await;
    });
}

/// A burst of address and link changes on a node with a full table: the kernel task coalesces
/// the resynchronisations they call for (each one a dump of the whole table) into a few, and
/// the last one still comes, so routes the kernel dropped silently are put back.
#[test]
fn ns_resync_storm_is_coalesced() {
    let Some(ns) = Netns::new(true) else { return };
    ns.ip(&[
        "link", "add", "eth1", "type", "veth", "peer", "name", "peer1",
    ]);
    ns.ip(&["addr", "add", "192.168.2.1/24", "dev", "eth1"]);
    ns.ip(&["link", "set", "eth1", "up"]);
    ns.ip(&["link", "set", "peer1", "up"]);
    ns.enter(|| async {
        let (handle, _learned) = KernelHandle::start(KernelConfig::default()).await.unwrap();
        // 10,000 routes via eth0, 100 via eth1 (the kernel drops these when eth1 goes down,
        // without a notification: only a resynchronisation finds out).
        let mut routes: Vec<KernelRoute> = (0..10_000u32)
            .map(|i| {
                unicast(
                    &format!("10.{}.{}.0/24", 100 + i / 256, i % 256),
                    &[("192.168.1.2", false)],
                )
            })
            .collect();
        routes.extend(
            (0..100u32).map(|i| unicast(&format!("10.90.{i}.0/24"), &[("192.168.2.2", false)])),
        );
        let generation = handle.set_desired(routes);
        applied(&handle, generation).await;
        let before = wait_status(&handle, "all routes installed", |s| {
            s.installed.plain == 10_100 && !s.resync_pending
        })
        .await;
        // 50 changes in a burst: 10 link flaps and 15 addresses added and removed on eth1, a
        // tenth of a second apart like a flapping link's (the pause is the storm's rhythm,
        // not a wait for a condition): each calls for a full dump.
        let started = Instant::now();
        for i in 0..25u32 {
            std::thread::sleep(Duration::from_millis(100));
            if i % 5 == 0 {
                ns.ip(&["link", "set", "eth1", "down"]);
                ns.ip(&["link", "set", "eth1", "up"]);
            } else {
                let address = format!("192.168.3.{i}/32");
                ns.ip(&["addr", "add", &address, "dev", "eth1"]);
                ns.ip(&["addr", "del", &address, "dev", "eth1"]);
            }
        }
        let burst = started.elapsed();
        ns.wait_routes("every route back after the burst", |routes| {
            routes.iter().filter(|r| is_tern(r)).count() == 10_100
        });
        let after = wait_status(
            &handle,
            "no resynchronisation pending, all installed",
            |s| !s.resync_pending && s.installed.plain == 10_100 && s.failed.is_empty(),
        )
        .await;
        let dumps = after.resyncs - before.resyncs;
        // At most one dump per second of burst (the kernel task's interval), plus the last.
        let bound = 2 + burst.as_secs_f64().ceil() as u64;
        eprintln!("{dumps} full dumps for 50 changes in {burst:?} (bound {bound})");
        assert!(
            dumps >= 1 && dumps <= bound,
            "{dumps} full dumps for 50 changes in {burst:?} (at most {bound} expected)"
        );
        handle.shutdown().await;
    });
}
