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
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

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

fn bench(c: &mut Criterion) {
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

criterion_group!(benches, bench);
criterion_main!(benches);
