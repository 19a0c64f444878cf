//! Regression (found by interop scenario `graceful-restart`): when the daemon hands the kernel
//! task a new desired set and the convergence signal back to back, the sweep of adopted routes
//! must run against that new set. Before the fix the task took the `Converged` command first
//! (biased select), swept an adopted route that the new set re-desires, and put it back a moment
//! later: a route deletion during a graceful restart (`ip monitor route` showed `Deleted`).
//!
//! Root only (skipped with a notice otherwise); own namespace, deleted by a drop guard.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tern::fib::{KernelRoute, KernelRouteKind, NextHop};
use tern::io::kernel::{KernelConfig, KernelHandle};

static COUNTER: AtomicU32 = AtomicU32::new(0);
const WAIT: Duration = Duration::from_secs(10);

struct Netns(String);

impl Netns {
    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.0])
            .args(args)
            .output()
            .expect("ip");
        assert!(out.status.success(), "ip {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

struct Monitor(Child, std::path::PathBuf);

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(&self.1);
    }
}

fn wait(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ns_convergence_signal_right_after_a_new_desired_set_sweeps_against_that_set() {
    if !interop::scenario::require(
        "kernel_ns_converge_order",
        &[interop::scenario::Requirement::Root],
    ) {
        return;
    }
    let name = format!(
        "tko-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    assert!(
        Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success()
    );
    let ns = Netns(name);
    ns.ip(&["link", "set", "lo", "up"]);
    ns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "peer0",
    ]);
    ns.ip(&["addr", "add", "192.168.1.1/24", "dev", "eth0"]);
    ns.ip(&["link", "set", "eth0", "up"]);
    ns.ip(&["link", "set", "peer0", "up"]);
    // Left by a previous run: one route the new run desires again, one it does not.
    for spec in [
        &["10.9.1.0/26", "via", "192.168.1.2"][..],
        &["blackhole", "10.9.2.0/26"][..],
    ] {
        let mut args = vec!["route", "add"];
        args.extend_from_slice(spec);
        args.extend_from_slice(&["proto", "bird", "metric", "1024"]);
        ns.ip(&args);
    }
    let log = std::env::temp_dir().join(format!("{}.monitor", ns.0));
    let child = Command::new("ip")
        .args(["-n", &ns.0, "monitor", "route"])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let monitor = Monitor(child, log.clone());
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    wait("ip monitor recording", || {
        for verb in ["del", "add"] {
            let _ = Command::new("ip")
                .args(["-n", &ns.0, "route", verb, "unreachable", "198.51.100.0/24"])
                .stderr(Stdio::null())
                .status();
        }
        read().contains("198.51.100.0/24")
    });
    ns.ip(&["route", "del", "unreachable", "198.51.100.0/24"]);

    let path = format!("/run/netns/{}", ns.0);
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = std::fs::File::open(&path).expect("open netns");
                nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                // One thread: the task runs only when this test awaits, so both signals are
                // pending when it next looks (the order the daemon produces them in one batch).
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let (handle, _learned) =
                        KernelHandle::start(KernelConfig::default()).await.unwrap();
                    assert_eq!(handle.status().stale, 2);
                    handle.set_desired(vec![KernelRoute {
                        prefix: "10.9.1.0/26".parse().unwrap(),
                        kind: KernelRouteKind::Unicast(vec![NextHop {
                            gateway: "192.168.1.2".parse().unwrap(),
                            via_tunnel: false,
                        }]),
                        metric: 1024,
                    }]);
                    handle.converged();
                    let mut status = handle.watch_status();
                    tokio::time::timeout(WAIT, status.wait_for(|s| s.stale == 0))
                        .await
                        .expect("stale routes swept")
                        .unwrap();
                    handle.shutdown().await;
                });
            })
            .join()
            .expect("namespace thread panicked");
    });
    wait("the unwanted adopted route swept", || {
        read().contains("Deleted blackhole 10.9.2.0/26")
    });
    let deleted: Vec<String> = read()
        .lines()
        .filter(|l| l.starts_with("Deleted") && l.contains("10.9.1.0/26"))
        .map(str::to_owned)
        .collect();
    assert!(
        deleted.is_empty(),
        "a re-desired adopted route was deleted at convergence: {deleted:?}\n{}",
        read()
    );
    assert!(
        ns.ip(&["route", "show", "10.9.1.0/26"])
            .contains("192.168.1.2")
    );
    drop(monitor);
}
