//! W7: wire codec benchmarks. Results and the machine are recorded in docs/benchmarks.md.
//!
//! Run: `cargo bench -p bgp-proto --bench codec`

use std::hint::black_box;
use std::net::Ipv4Addr;

use bgp_proto::attr::{AsPath, NextHop};
use bgp_proto::builder::UpdateBuilder;
use bgp_proto::capability::{AddPathFamily, GracefulRestart, GracefulRestartFamily, LlgrFamily};
use bgp_proto::iana::{AddPathMode, BgpRole};
use bgp_proto::{
    AttributeValue, Capability, Context, Family, Message, Nlri, Open, Origin, PathAttribute,
};
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Thread CPU time (CLOCK_THREAD_CPUTIME_ID) instead of wall time, so that other processes on a
/// shared 2-core machine do not inflate the numbers. `BENCH_WALL=1` switches back to wall time.
struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns() - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NanosFormatter
    }
}

struct NanosFormatter;

impl ValueFormatter for NanosFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical < 1e3 {
            (1.0, "ns (cpu)")
        } else if typical < 1e6 {
            (1e-3, "µs (cpu)")
        } else {
            (1e-6, "ms (cpu)")
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }
    fn scale_throughputs(
        &self,
        typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per_elem = match throughput {
            Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => *n as f64,
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => *n as f64,
            _ => 1.0,
        };
        let _ = typical;
        values
            .iter_mut()
            .for_each(|v| *v = per_elem * 1e9 / *v / 1e6);
        "Melem/s (cpu)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn attrs() -> Vec<PathAttribute> {
    vec![
        PathAttribute::new(AttributeValue::Origin(Origin::Igp)),
        PathAttribute::new(AttributeValue::AsPath(AsPath::sequence([65001]))),
    ]
}

fn one_prefix_update(ctx: &Context) -> Vec<u8> {
    let nlri = [Nlri::new("10.1.1.0/24".parse().unwrap())];
    let updates = UpdateBuilder::new(*ctx, Family::IPV4_UNICAST)
        .announce(&attrs(), NextHop::Ipv4(Ipv4Addr::new(192, 0, 2, 1)), &nlri)
        .build()
        .unwrap();
    Message::Update(updates[0].clone())
        .to_bytes(ctx)
        .unwrap()
        .to_vec()
}

/// A 4096-octet UPDATE full of /24s (the first message the builder packs).
fn packed_update(ctx: &Context) -> (Vec<u8>, usize) {
    let nlri: Vec<Nlri> = (0..5000u32)
        .map(|i| Nlri::new(format!("10.{}.{}.0/24", i / 256, i % 256).parse().unwrap()))
        .collect();
    let updates = UpdateBuilder::new(*ctx, Family::IPV4_UNICAST)
        .announce(&attrs(), NextHop::Ipv4(Ipv4Addr::new(192, 0, 2, 1)), &nlri)
        .build()
        .unwrap();
    let first = &updates[0];
    (
        Message::Update(first.clone())
            .to_bytes(ctx)
            .unwrap()
            .to_vec(),
        first.nlri.len(),
    )
}

fn full_open() -> Vec<u8> {
    let caps = vec![
        Capability::Multiprotocol(Family::IPV4_UNICAST),
        Capability::Multiprotocol(Family::IPV6_UNICAST),
        Capability::RouteRefresh,
        Capability::EnhancedRouteRefresh,
        Capability::FourOctetAs(4_200_000_001),
        Capability::GracefulRestart(GracefulRestart {
            flags: GracefulRestart::NOTIFICATION,
            restart_time: 120,
            families: vec![
                GracefulRestartFamily {
                    family: Family::IPV4_UNICAST,
                    flags: 0x80,
                },
                GracefulRestartFamily {
                    family: Family::IPV6_UNICAST,
                    flags: 0x80,
                },
            ],
        }),
        Capability::LongLivedGracefulRestart(vec![LlgrFamily {
            family: Family::IPV4_UNICAST,
            flags: 0,
            stale_time: 3600,
        }]),
        Capability::AddPath(vec![
            AddPathFamily {
                family: Family::IPV4_UNICAST,
                mode: AddPathMode::Both,
            },
            AddPathFamily {
                family: Family::IPV6_UNICAST,
                mode: AddPathMode::Both,
            },
        ]),
        Capability::ExtendedMessage,
        Capability::Role(BgpRole::Peer),
        Capability::Fqdn {
            hostname: "node-1".into(),
            domain: "cluster.local".into(),
        },
    ];
    let open = Open::new(4_200_000_001, 90, Ipv4Addr::new(10, 0, 0, 1), caps);
    Message::Open(open)
        .to_bytes(&Context::default())
        .unwrap()
        .to_vec()
}

fn bench<M: Measurement + 'static>(c: &mut Criterion<M>) {
    let ctx = Context::default();

    let one = one_prefix_update(&ctx);
    let mut g = c.benchmark_group("update_1_prefix");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode", |b| {
        b.iter(|| Message::decode(black_box(&one), &ctx).unwrap())
    });
    let decoded = Message::decode(&one, &ctx).unwrap();
    let mut buf = Vec::with_capacity(4096);
    g.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&decoded).encode(&ctx, &mut buf).unwrap();
        })
    });
    g.finish();

    let (packed, count) = packed_update(&ctx);
    assert!(
        packed.len() > 4000 && packed.len() <= 4096,
        "{}",
        packed.len()
    );
    let mut g = c.benchmark_group(format!("update_packed_4k_{count}x24"));
    g.throughput(Throughput::Elements(count as u64));
    g.bench_function("decode", |b| {
        b.iter(|| Message::decode(black_box(&packed), &ctx).unwrap())
    });
    let decoded = Message::decode(&packed, &ctx).unwrap();
    g.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&decoded).encode(&ctx, &mut buf).unwrap();
        })
    });
    g.finish();

    let open = full_open();
    let mut g = c.benchmark_group("open_all_capabilities");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode", |b| {
        b.iter(|| Message::decode(black_box(&open), &ctx).unwrap())
    });
    let decoded = Message::decode(&open, &ctx).unwrap();
    g.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&decoded).encode(&ctx, &mut buf).unwrap();
        })
    });
    g.finish();
}

fn cpu_time() -> Criterion<ThreadCpuTime> {
    Criterion::default().with_measurement(ThreadCpuTime)
}

fn wall_time_requested() -> bool {
    std::env::var_os("BENCH_WALL").is_some_and(|v| v == "1")
}

fn bench_cpu(c: &mut Criterion<ThreadCpuTime>) {
    if !wall_time_requested() {
        bench(c);
    }
}

fn bench_wall(c: &mut Criterion) {
    if wall_time_requested() {
        bench(c);
    }
}

criterion_group!(name = cpu; config = cpu_time(); targets = bench_cpu);
criterion_group!(wall, bench_wall);
criterion_main!(cpu, wall);
