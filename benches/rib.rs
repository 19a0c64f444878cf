//! RIB micro-benchmark: 1,000,000 IPv4 prefixes (a /16-/24 mix) from one eBGP peer with 4,000
//! distinct attribute sets, re-advertised to one eBGP monitor peer: import, decision process,
//! export group computation, then pulling the monitor's whole Adj-RIB-Out and encoding it into
//! wire UPDATEs with the codec's builder.
//!
//! Time is the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), as in the codec benchmarks: on this
//! shared 2-core machine other processes inflate wall-clock figures several times over;
//! `BENCH_WALL=1` measures wall time instead.
//!
//! Memory is counted by a counting global allocator: live bytes after the table is in and the
//! monitor has been sent everything (settled), and the peak during the run, each divided by the
//! number of routes. Run: `cargo bench -p tern --bench rib` (results in docs/benchmarks.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};
use tern::plan::Encapsulation;
use tern::plan::PoolPolicy;
use tern::rib::attrs::Origin;
use tern::rib::{
    Nlri, PeerId, PeerSession, PolicyContext, Rib, RibConfig, RouteAttrs, RouteUpdate,
};

/// Thread CPU time, or wall time with `BENCH_WALL=1`.
fn now_ns() -> u64 {
    if std::env::var_os("BENCH_WALL").is_some() {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        return START.get_or_init(Instant::now).elapsed().as_nanos() as u64;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                    - layout.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ROUTES: usize = 1_000_000;
const ATTR_SETS: usize = 4_000;
const LOCAL_AS: u32 = 64512;

/// 1,000,000 distinct IPv4 prefixes: 60% /24, 10% /23, 10% /22, 5% /21, 5% /20, 4% /19,
/// 3% /18, 3% /16 (each length counts its own networks upwards from 1.0.0.0).
fn prefixes() -> Vec<IpNet> {
    let mix: [(u8, usize); 8] = [
        (24, 60),
        (23, 10),
        (22, 10),
        (21, 5),
        (20, 5),
        (19, 4),
        (18, 3),
        (16, 3),
    ];
    let mut out = Vec::with_capacity(ROUTES);
    for (len, percent) in mix {
        let n = ROUTES * percent / 100;
        for j in 0..n as u32 {
            let addr = 0x0100_0000u32.wrapping_add(j << (32 - len));
            out.push(IpNet::V4(Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap()));
        }
    }
    out
}

/// Attribute set `k` of [`ATTR_SETS`]: a two- or three-AS path and a MED.
fn attrs(k: usize) -> RouteAttrs {
    let mut a = RouteAttrs::new(Origin::Igp, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))))
        .with_as_sequence(
            [65001, 1000 + (k / 2) as u32]
                .into_iter()
                .chain((k % 2 == 1).then_some(3000)),
        );
    a.med = Some((k % 3) as u32);
    a
}

/// The UPDATEs the source peer sends: prefixes grouped by attribute set, up to 900 per UPDATE.
fn updates(prefixes: &[IpNet]) -> Vec<RouteUpdate> {
    let mut by_set: Vec<Vec<Nlri>> = vec![Vec::new(); ATTR_SETS];
    for (i, p) in prefixes.iter().enumerate() {
        by_set[i % ATTR_SETS].push(Nlri::new(*p));
    }
    let mut out = Vec::new();
    for (k, nlri) in by_set.into_iter().enumerate() {
        for chunk in nlri.chunks(900) {
            out.push(RouteUpdate {
                withdrawn: vec![],
                announced: chunk.to_vec(),
                attrs: Some(attrs(k)),
            });
        }
    }
    out
}

fn rib() -> Rib {
    let policy = PolicyContext {
        // Accept-all export, as the benchmark spec asks: one pool covering everything.
        pools: vec![PoolPolicy {
            cidr: "0.0.0.0/0".parse().unwrap(),
            disable_bgp_export: false,
            encapsulation: Encapsulation::None,
        }],
        ..PolicyContext::default()
    };
    let mut rib = Rib::new(
        RibConfig {
            router_id: Ipv4Addr::new(10, 0, 0, 1),
            local_as: LOCAL_AS,
            cluster_id: None,
            min_advertisement_interval: Duration::ZERO,
        },
        policy,
    );
    let local = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let source = PeerSession::new(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        local,
        Ipv4Addr::new(10, 0, 0, 2),
        LOCAL_AS,
        65001,
    );
    let monitor = PeerSession::new(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)),
        local,
        Ipv4Addr::new(10, 0, 0, 3),
        LOCAL_AS,
        65002,
    );
    rib.peer_up(PeerId(1), source);
    rib.peer_up(PeerId(2), monitor);
    rib
}

/// Loads the table and sends it all to the monitor; returns (rib, UPDATE messages, prefixes sent).
fn run(updates: Vec<RouteUpdate>) -> (Rib, usize, usize) {
    let mut rib = rib();
    for u in updates {
        rib.update(PeerId(1), u).unwrap();
    }
    if std::env::var_os("RIB_BENCH_DEBUG").is_some() {
        eprintln!(
            "after import: live {} MB, {:?}",
            LIVE.load(Ordering::Relaxed) >> 20,
            rib.memory_breakdown()
        );
    }
    let ctx = bgp_proto::Context::default();
    let (mut messages, mut sent) = (0, 0);
    let now = Instant::now();
    loop {
        let out = rib.pull(PeerId(2), now, 100_000);
        for batch in &out.updates {
            sent += batch.announced.len();
            messages += batch.encode(&ctx).unwrap().len();
        }
        if !out.more {
            break;
        }
    }
    if std::env::var_os("RIB_BENCH_DEBUG").is_some() {
        eprintln!(
            "after export: live {} MB, {:?}",
            LIVE.load(Ordering::Relaxed) >> 20,
            rib.memory_breakdown()
        );
    }
    // The kernel side takes the FIB changes.
    let fib = rib.take_fib_changes();
    assert_eq!(fib.len(), ROUTES);
    drop(fib);
    (rib, messages, sent)
}

fn report_memory() {
    let baseline = LIVE.load(Ordering::Relaxed);
    let prefixes = prefixes();
    let updates = updates(&prefixes);
    drop(prefixes);
    let input_bytes = LIVE.load(Ordering::Relaxed) - baseline;
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let (wall, cpu) = (Instant::now(), now_ns());
    let (rib, messages, sent) = run(updates);
    let (wall, cpu) = (wall.elapsed(), Duration::from_nanos(now_ns() - cpu));
    let settled = LIVE.load(Ordering::Relaxed);
    let peak = PEAK.load(Ordering::Relaxed);
    let stats = rib.stats();
    assert_eq!(stats.prefixes, ROUTES);
    assert_eq!(sent, ROUTES);
    let per_route = |bytes: usize| bytes as f64 / ROUTES as f64;
    eprintln!(
        "rib: {} routes, {} attribute sets, {} UPDATEs to the monitor in {:.2?} CPU ({:.2?} wall); \
         settled {:.1} B/route; peak {:.1} B/route above baseline, of which {:.1} B/route are \
         the decoded input UPDATEs (freed as they are applied)",
        stats.prefixes,
        stats.attribute_sets,
        messages,
        cpu,
        wall,
        per_route(settled - baseline),
        per_route(peak - baseline),
        per_route(input_bytes),
    );
    drop(rib);
}

fn bench(c: &mut Criterion) {
    report_memory();
    let prefixes = prefixes();
    let mut group = c.benchmark_group("rib");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.bench_function(
        "1M IPv4 prefixes in, decision, export to one monitor, encoded",
        |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let input = updates(&prefixes);
                    let start = now_ns();
                    let (rib, _, _) = run(input);
                    total += Duration::from_nanos(now_ns() - start);
                    drop(rib);
                }
                total
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
