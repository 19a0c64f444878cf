//! A stand-in for the daemon's kernel side, used by the restart-without-loss namespace test
//! (`tests/kernel_ns.rs`): installs `--count` routes `10.200.<i>.0/24 via 192.168.1.2` (route
//! index `--skip` left out), prints `applied` once they are in the kernel, signals convergence,
//! prints `converged` once stale routes are swept, and on SIGTERM stops leaving its routes.
//!
//! ```text
//! ip netns exec NS target/debug/examples/kernel_agent --count 50 [--skip 49]
//! ```

use std::io::Write;

use tern::fib::{KernelRoute, KernelRouteKind, NextHop};
use tern::io::kernel::{KernelConfig, KernelHandle};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse::<u32>().expect("a number"))
    };
    let count = value("--count").unwrap_or(50);
    let skip = value("--skip");
    let routes: Vec<KernelRoute> = (0..count)
        .filter(|i| Some(*i) != skip)
        .map(|i| KernelRoute {
            prefix: format!("10.200.{i}.0/24").parse().unwrap(),
            kind: KernelRouteKind::Unicast(vec![NextHop {
                gateway: "192.168.1.2".parse().unwrap(),
                via_tunnel: false,
            }]),
            metric: 1024,
        })
        .collect();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    let (handle, _learned) = KernelHandle::start(KernelConfig::default())
        .await
        .expect("kernel task");
    let mut status = handle.watch_status();
    let generation = handle.set_desired(routes);
    status
        .wait_for(|s| s.applied_generation >= generation && s.failed.is_empty())
        .await
        .expect("status");
    println!("applied");
    let _ = std::io::stdout().flush();
    handle.converged();
    status
        .wait_for(|s| s.stale_swept && s.stale == 0)
        .await
        .expect("status");
    println!("converged");
    let _ = std::io::stdout().flush();
    sigterm.recv().await;
    handle.shutdown().await;
}
