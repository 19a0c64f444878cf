//! W4 (docs/benchmarks.md): kernel install of N /24 routes, tern against `ip -batch`, BIRD 2's
//! kernel protocol, a raw pipelined netlink sender and the rtnetlink crate's request API pipelined with `buffer_unordered`.
//!
//! Root only. Each run gets a fresh network namespace with `eth0` (192.168.1.1/24) and the same
//! N routes `11.x.y.0/24 via 192.168.1.2 proto bird`. Runs are interleaved (tern, ip, bird,
//! rtnetlink, tern, ...), after one warm-up round, and their median/min/max routes per second
//! are printed as a Markdown table.
//!
//! ```text
//! cargo bench -p tern --bench kernel_install -- [--sizes 100000,500000] [--reps 5] [--only tern,tern-mt,ip,bird,raw,rtnetlink]
//! ```
//!
//! When each contender is done:
//! - tern: the kernel task reports the desired set applied (every write acknowledged); `tern`
//!   runs it on a current-thread tokio runtime, `tern-mt` on a 2-worker runtime;
//! - ip -batch: the process exits;
//! - bird: a netlink listener in the namespace has seen N `RTM_NEWROUTE` of protocol 12
//!   (the clock starts at `birdc enable` of the static protocol holding the routes);
//! - raw: the acknowledgement of the last datagram arrived (hand-encoded requests, 1,024 per
//!   datagram, one acknowledgement per datagram: the kernel's own pace);
//! - rtnetlink: every request future resolved.
//!   Every run checks the kernel holds N routes of protocol 12 afterwards.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use ipnet::{IpNet, Ipv4Net};
use tern::fib::{KernelRoute, KernelRouteKind, NextHop};
use tern::io::kernel::{KernelConfig, KernelHandle};

static COUNTER: AtomicU32 = AtomicU32::new(0);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);

fn prefix(i: u32) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from((11 << 24) + (i << 8)), 24).unwrap()
}

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run command");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        let name = format!(
            "tkb-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        run(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns.ip(&[
            "link", "add", "eth0", "type", "veth", "peer", "name", "eth1",
        ]);
        ns.ip(&["addr", "add", "192.168.1.1/24", "dev", "eth0"]);
        ns.ip(&["link", "set", "eth0", "up"]);
        ns.ip(&["link", "set", "eth1", "up"]);
        ns
    }

    fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "-n", &self.name];
        full.extend_from_slice(args);
        run(&full)
    }

    fn count_tern_routes(&self) -> usize {
        let out = Command::new("ip")
            .args(["-n", &self.name, "route", "show", "proto", "bird"])
            .output()
            .expect("ip route show");
        out.stdout.iter().filter(|&&b| b == b'\n').count()
    }

    /// Runs `body` on a thread inside the namespace.
    fn enter<T: Send>(&self, body: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let file = std::fs::File::open(&path).expect("open netns");
                    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                    body()
                })
                .join()
                .expect("namespace thread panicked")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Flush first so that the namespace teardown (asynchronous in the kernel) is cheap and
        // does not overlap with the next run.
        let _ = Command::new("ip")
            .args(["-n", &self.name, "route", "flush", "proto", "bird"])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn runtime(multi_thread: bool) -> tokio::runtime::Runtime {
    if !multi_thread {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn tern_run(ns: &Netns, n: u32, multi_thread: bool) -> Duration {
    let routes: Vec<KernelRoute> = (0..n)
        .map(|i| KernelRoute {
            prefix: IpNet::V4(prefix(i)),
            kind: KernelRouteKind::Unicast(vec![NextHop {
                gateway: IpAddr::V4(GATEWAY),
                via_tunnel: false,
            }]),
            metric: 1024,
        })
        .collect();
    ns.enter(move || {
        runtime(multi_thread).block_on(async move {
            let (handle, _learned) = KernelHandle::start(KernelConfig::default()).await.unwrap();
            let mut status = handle.watch_status();
            let start = Instant::now();
            let generation = handle.set_desired(routes);
            let applied = status
                .wait_for(|s| s.applied_generation >= generation)
                .await
                .unwrap()
                .clone();
            let elapsed = start.elapsed();
            assert!(
                applied.failed.is_empty(),
                "tern failures: {}",
                applied.failed.len()
            );
            if std::env::var_os("TERN_BENCH_VERBOSE").is_some() {
                eprintln!("tern status after apply: {applied:?}");
            }
            handle.shutdown().await;
            elapsed
        })
    })
}

fn ip_batch_run(ns: &Netns, n: u32) -> Duration {
    let path = std::env::temp_dir().join(format!("{}.batch", ns.name));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..n {
        writeln!(
            file,
            "route add {} via {GATEWAY} proto bird metric 1024",
            prefix(i)
        )
        .unwrap();
    }
    file.flush().unwrap();
    drop(file);
    let start = Instant::now();
    run(&["ip", "-n", &ns.name, "-batch", path.to_str().unwrap()]);
    let elapsed = start.elapsed();
    let _ = std::fs::remove_file(path);
    elapsed
}

fn rtnetlink_run(ns: &Netns, n: u32) -> Duration {
    ns.enter(move || {
        runtime(false).block_on(async move {
            let (connection, handle, _) = rtnetlink::new_connection().unwrap();
            tokio::spawn(connection);
            let start = Instant::now();
            let results: Vec<Result<(), rtnetlink::Error>> = futures::stream::iter(0..n)
                .map(|i| {
                    let message = rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new()
                        .destination_prefix(prefix(i).network(), 24)
                        .gateway(GATEWAY)
                        .protocol(rtnetlink::packet_route::route::RouteProtocol::Bird)
                        .priority(1024)
                        .build();
                    handle.route().add(message).execute()
                })
                .buffer_unordered(256)
                .collect()
                .await;
            let elapsed = start.elapsed();
            assert!(results.iter().all(Result::is_ok), "rtnetlink failures");
            elapsed
        })
    })
}

/// The reference for the goal: hand-encoded `RTM_NEWROUTE` requests, 1,024 per datagram, only the
/// last of each asking for an acknowledgement (errors come back anyway), no parsing beyond the
/// acknowledgement headers.
fn raw_run(ns: &Netns, n: u32) -> Duration {
    const PER_DATAGRAM: u32 = 1024;
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_ACK: u16 = 4;
    const NLM_F_REPLACE: u16 = 0x100;
    const NLM_F_CREATE: u16 = 0x400;
    ns.enter(move || {
        let mut socket =
            rtnetlink::sys::Socket::new(rtnetlink::sys::protocols::NETLINK_ROUTE).unwrap();
        socket.bind_auto().unwrap();
        socket
            .connect(&rtnetlink::sys::SocketAddr::new(0, 0))
            .unwrap();
        let mut datagram = Vec::with_capacity(PER_DATAGRAM as usize * 52);
        let mut reply = vec![0u8; 1 << 16];
        let start = Instant::now();
        let mut errors = 0;
        let mut i = 0;
        while i < n {
            datagram.clear();
            let end = (i + PER_DATAGRAM).min(n);
            for j in i..end {
                let flags = NLM_F_REQUEST
                    | NLM_F_CREATE
                    | NLM_F_REPLACE
                    | if j + 1 == end { NLM_F_ACK } else { 0 };
                datagram.extend_from_slice(&52u32.to_ne_bytes());
                datagram.extend_from_slice(&24u16.to_ne_bytes());
                datagram.extend_from_slice(&flags.to_ne_bytes());
                datagram.extend_from_slice(&(j + 1).to_ne_bytes());
                datagram.extend_from_slice(&0u32.to_ne_bytes());
                // rtmsg: AF_INET, /24, src 0, tos 0, main, proto 12, universe, unicast, flags 0
                datagram.extend_from_slice(&[2, 24, 0, 0, 254, 12, 0, 1, 0, 0, 0, 0]);
                for (kind, value) in [(1u16, prefix(j).network().octets()), (5, GATEWAY.octets())] {
                    datagram.extend_from_slice(&8u16.to_ne_bytes());
                    datagram.extend_from_slice(&kind.to_ne_bytes());
                    datagram.extend_from_slice(&value);
                }
                datagram.extend_from_slice(&8u16.to_ne_bytes());
                datagram.extend_from_slice(&6u16.to_ne_bytes());
                datagram.extend_from_slice(&1024u32.to_ne_bytes());
            }
            socket.send(&datagram, 0).unwrap();
            // Read until the acknowledgement of the datagram's last request.
            'ack: loop {
                let len = socket.recv(&mut &mut reply[..], 0).unwrap();
                let mut offset = 0;
                while offset + 20 <= len {
                    let msg_len =
                        u32::from_ne_bytes(reply[offset..offset + 4].try_into().unwrap()) as usize;
                    let seq =
                        u32::from_ne_bytes(reply[offset + 8..offset + 12].try_into().unwrap());
                    let code =
                        i32::from_ne_bytes(reply[offset + 16..offset + 20].try_into().unwrap());
                    if code != 0 {
                        errors += 1;
                    }
                    if seq == end {
                        break 'ack;
                    }
                    offset += (msg_len.max(16) + 3) & !3;
                }
            }
            i = end;
        }
        let elapsed = start.elapsed();
        assert_eq!(errors, 0, "raw sender errors");
        elapsed
    })
}

/// Counts `RTM_NEWROUTE` notifications of protocol 12 in the namespace until `n` were seen.
fn spawn_route_counter(
    ns: &Netns,
    n: u32,
) -> (
    std::sync::mpsc::Receiver<Instant>,
    std::sync::mpsc::Receiver<()>,
) {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let path = format!("/run/netns/{}", ns.name);
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open netns");
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let mut socket =
            rtnetlink::sys::Socket::new(rtnetlink::sys::protocols::NETLINK_ROUTE).unwrap();
        socket
            .bind(&rtnetlink::sys::SocketAddr::new(0, 1 << (7 - 1)))
            .unwrap(); // RTNLGRP_IPV4_ROUTE
        let size: libc::c_int = 512 << 20;
        // SAFETY: valid fd and option value.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let _ = ready_tx.send(());
        let mut seen = 0u32;
        let mut buf = vec![0u8; 1 << 20];
        while seen < n {
            let len = match socket.recv(&mut &mut buf[..], 0) {
                Ok(len) => len,
                Err(error) => {
                    panic!("route counter: {error} (overrun: the BIRD figure would be invalid)")
                }
            };
            let mut offset = 0;
            while offset + 16 <= len {
                let msg_len =
                    u32::from_ne_bytes(buf[offset..offset + 4].try_into().unwrap()) as usize;
                let msg_type = u16::from_ne_bytes(buf[offset + 4..offset + 6].try_into().unwrap());
                if msg_len < 16 {
                    break;
                }
                // rtmsg: family, dst_len, src_len, tos, table, protocol, ...
                if msg_type == 24 && offset + 16 + 6 <= len && buf[offset + 16 + 5] == 12 {
                    seen += 1;
                }
                offset += (msg_len + 3) & !3;
            }
        }
        let _ = done_tx.send(Instant::now());
    });
    ready_rx.recv().unwrap();
    (done_rx, ready_rx)
}

fn bird_run(ns: &Netns, n: u32) -> Duration {
    let dir = std::env::temp_dir().join(format!("{}-bird", ns.name));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bird.conf");
    let socket = dir.join("bird.ctl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&config).unwrap());
    writeln!(
        file,
        "router id 192.168.1.1;\nprotocol device {{}}\nprotocol kernel {{ ipv4 {{ import none; export all; }}; metric 1024; }}\nprotocol static static1 {{\n  disabled yes;\n  ipv4;"
    )
    .unwrap();
    for i in 0..n {
        writeln!(file, "  route {} via {GATEWAY};", prefix(i)).unwrap();
    }
    writeln!(file, "}}").unwrap();
    file.flush().unwrap();
    drop(file);
    let mut bird: Child = Command::new("ip")
        .args(["netns", "exec", &ns.name, "bird", "-f", "-c"])
        .arg(&config)
        .arg("-s")
        .arg(&socket)
        .stdout(Stdio::null())
        .spawn()
        .expect("start bird");
    let birdc = |args: &[&str]| {
        Command::new("birdc")
            .arg("-s")
            .arg(&socket)
            .args(args)
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // Wait until BIRD answers on its socket (it parsed the configuration).
    let start_wait = Instant::now();
    while !birdc(&["show", "status"]).is_ok_and(|out| out.contains("Daemon is up")) {
        assert!(
            start_wait.elapsed() < Duration::from_secs(120),
            "bird did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (done, _ready) = spawn_route_counter(ns, n);
    let start = Instant::now();
    birdc(&["enable", "static1"]).expect("birdc enable");
    let finished = done
        .recv_timeout(Duration::from_secs(600))
        .expect("bird installed every route");
    let elapsed = finished - start;
    // Stop BIRD without its kernel protocol flushing (kill by pid), then clean up.
    let _ = Command::new("kill")
        .arg("-9")
        .arg(bird.id().to_string())
        .status();
    let _ = Command::new("ip")
        .args(["netns", "pids", &ns.name])
        .output()
        .map(|out| {
            for pid in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = Command::new("kill").args(["-9", pid.trim()]).status();
            }
        });
    let _ = bird.wait();
    let _ = std::fs::remove_dir_all(dir);
    elapsed
}

fn median_min_max(samples: &mut [f64]) -> (f64, f64, f64) {
    samples.sort_by(|a, b| a.total_cmp(b));
    (
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let sizes: Vec<u32> = value("--sizes")
        .unwrap_or_else(|| "100000,500000".into())
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let reps: usize = value("--reps").map_or(5, |s| s.parse().unwrap());
    let only = value("--only").unwrap_or_else(|| "tern,tern-mt,ip,bird,raw,rtnetlink".into());
    let contenders: Vec<&str> = only.split(',').collect();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: the kernel install benchmark needs root (network namespaces)");
        return;
    }
    if contenders.contains(&"bird") && Command::new("bird").arg("--version").output().is_err() {
        eprintln!("SKIP: bird is not installed");
        return;
    }
    let measure = |name: &str, n: u32| -> Duration {
        let ns = Netns::new();
        let elapsed = match name {
            "tern" => tern_run(&ns, n, false),
            "tern-mt" => tern_run(&ns, n, true),
            "ip" => ip_batch_run(&ns, n),
            "bird" => bird_run(&ns, n),
            "rtnetlink" => rtnetlink_run(&ns, n),
            "raw" => raw_run(&ns, n),
            other => panic!("unknown contender {other}"),
        };
        let installed = ns.count_tern_routes();
        assert_eq!(
            installed, n as usize,
            "{name}: {installed} of {n} routes in the kernel"
        );
        elapsed
    };
    eprintln!("warm-up");
    for name in &contenders {
        measure(name, 10_000);
    }
    let mut results: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); contenders.len()]; sizes.len()];
    for rep in 0..reps {
        for (si, &n) in sizes.iter().enumerate() {
            for (ci, name) in contenders.iter().enumerate() {
                let elapsed = measure(name, n);
                let rate = f64::from(n) / elapsed.as_secs_f64();
                eprintln!("rep {rep} n {n} {name}: {elapsed:?} ({rate:.0} routes/s)");
                results[si][ci].push(rate);
            }
        }
    }
    println!("| routes | contender | median routes/s | min | max | median time (s) |");
    println!("|---:|---|---:|---:|---:|---:|");
    for (si, &n) in sizes.iter().enumerate() {
        for (ci, name) in contenders.iter().enumerate() {
            let (median, min, max) = median_min_max(&mut results[si][ci]);
            println!(
                "| {n} | {name} | {median:.0} | {min:.0} | {max:.0} | {:.2} |",
                f64::from(n) / median
            );
        }
    }
}
