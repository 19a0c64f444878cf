//! The routes of workload W1: a deterministic (seeded) table of distinct IPv4 prefixes with
//! a realistic mix of lengths, grouped under a few thousand attribute sets, pre-encoded as
//! packed UPDATE messages before any clock starts.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use anyhow::{Context as _, Result};
use bgp_proto::attr::{AsPath, NextHop};
use bgp_proto::{
    AttributeValue, Context, Family, Message, Nlri, Origin, PathAttribute, Update, UpdateBuilder,
};
use ipnet::{IpNet, Ipv4Net};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

/// Share of each prefix length, in per mille, roughly as in the public IPv4 table (about 60 %
/// /24s, then /22, /23, /21, /20, ...).
const LENGTH_MIX: [(u8, u32); 9] = [
    (24, 600),
    (23, 90),
    (22, 120),
    (21, 55),
    (20, 50),
    (19, 35),
    (18, 20),
    (17, 12),
    (16, 18),
];

/// What the generator announces.
#[derive(Debug, Clone)]
pub struct RouteSet {
    /// Number of distinct prefixes.
    pub prefixes: usize,
    /// Number of distinct attribute sets.
    pub attribute_sets: usize,
    /// Number of UPDATE messages (End-of-RIB not counted).
    pub updates: usize,
    /// The UPDATEs, encoded back to back, End-of-RIB last.
    pub wire: Vec<u8>,
}

/// The parameters of a route set.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    /// How many distinct prefixes.
    pub prefixes: usize,
    /// About how many prefixes share one attribute set (1,000,000 / 250 = 4,000 sets).
    pub prefixes_per_set: usize,
    /// Seed of the generator: the same seed gives the same bytes.
    pub seed: u64,
    /// The generator's AS (first in every AS_PATH).
    pub local_as: u32,
    /// The NEXT_HOP of every route (the generator's address).
    pub next_hop: Ipv4Addr,
}

/// Whether a /8 may appear in the table: not 0, 10 (the benchmark's links), 127, or multicast
/// and above.
fn usable_first_octet(octet: u32) -> bool {
    !matches!(octet, 0 | 10 | 127) && octet < 224
}

/// Draws `count` distinct prefixes with the lengths of [`LENGTH_MIX`].
pub fn prefixes(rng: &mut StdRng, count: usize) -> Vec<Ipv4Net> {
    let total: u32 = LENGTH_MIX.iter().map(|(_, w)| w).sum();
    let mut seen = HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let pick = rng.random_range(0..total);
        let mut acc = 0;
        let mut len = 24;
        for (l, w) in LENGTH_MIX {
            acc += w;
            if pick < acc {
                len = l;
                break;
            }
        }
        let addr: u32 = rng.random();
        if !usable_first_octet(addr >> 24) {
            continue;
        }
        let mask = u32::MAX << (32 - u32::from(len));
        let net = addr & mask;
        if seen.insert((net, len)) {
            // The prefix length is at most 24, so this cannot fail.
            if let Ok(prefix) = Ipv4Net::new(Ipv4Addr::from(net), len) {
                out.push(prefix);
            }
        }
    }
    out
}

/// One attribute set: ORIGIN, AS_PATH (the generator's AS, 0-4 transit ASes, an origin AS;
/// some prepending), MED on about half, 0-4 communities.
fn attribute_set(rng: &mut StdRng, local_as: u32) -> Vec<PathAttribute> {
    let origin = match rng.random_range(0..10) {
        0 => Origin::Incomplete,
        1 => Origin::Egp,
        _ => Origin::Igp,
    };
    let mut path = vec![local_as];
    for _ in 0..rng.random_range(0..5) {
        path.push(transit_as(rng));
    }
    let origin_as = transit_as(rng);
    let repeats = if rng.random_bool(0.85) {
        1
    } else {
        rng.random_range(2..=3)
    };
    for _ in 0..repeats {
        path.push(origin_as);
    }
    let mut attrs = vec![
        PathAttribute::new(AttributeValue::Origin(origin)),
        PathAttribute::new(AttributeValue::AsPath(AsPath::sequence(path))),
    ];
    if rng.random_bool(0.5) {
        attrs.push(PathAttribute::new(AttributeValue::MultiExitDisc(
            rng.random_range(0..1000),
        )));
    }
    let communities = rng.random_range(0..5);
    if communities > 0 {
        let mut list: Vec<bgp_proto::attr::Community> = (0..communities)
            .map(|_| bgp_proto::attr::Community((local_as << 16) | rng.random_range(0..2000u32)))
            .collect();
        list.sort();
        list.dedup();
        attrs.push(PathAttribute::new(AttributeValue::Communities(list)));
    }
    attrs
}

/// A public AS number (2- or 4-octet), never one of the benchmark's private ASes.
fn transit_as(rng: &mut StdRng) -> u32 {
    if rng.random_bool(0.8) {
        rng.random_range(1..64_000)
    } else {
        rng.random_range(131_072..400_000)
    }
}

impl RouteSet {
    /// Builds the table of `spec` and encodes it (4-octet AS, no ADD-PATH, 4096-octet messages).
    pub fn generate(spec: &RouteSpec) -> Result<RouteSet> {
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let mut all = prefixes(&mut rng, spec.prefixes);
        all.shuffle(&mut rng);
        let sets = spec.prefixes.div_ceil(spec.prefixes_per_set.max(1)).max(1);
        let attribute_sets: Vec<Vec<PathAttribute>> = (0..sets)
            .map(|_| attribute_set(&mut rng, spec.local_as))
            .collect();
        // Uneven group sizes: a prefix goes to set i with a skewed draw, so some sets hold
        // many prefixes and some few.
        let mut groups: Vec<Vec<Nlri>> = vec![Vec::new(); sets];
        for prefix in all {
            let a = rng.random_range(0..sets);
            let b = rng.random_range(0..sets);
            groups[a.min(b)].push(Nlri::new(IpNet::V4(prefix)));
        }
        let ctx = Context::default();
        let mut wire = Vec::with_capacity(spec.prefixes * 5);
        let mut updates = 0;
        for (attrs, group) in attribute_sets.iter().zip(&groups) {
            if group.is_empty() {
                continue;
            }
            let built = UpdateBuilder::new(ctx, Family::IPV4_UNICAST)
                .announce(attrs, NextHop::Ipv4(spec.next_hop), group)
                .build()
                .context("building UPDATEs")?;
            for update in built {
                Message::Update(update).encode(&ctx, &mut wire)?;
                updates += 1;
            }
        }
        Message::Update(Update::end_of_rib(Family::IPV4_UNICAST)).encode(&ctx, &mut wire)?;
        Ok(RouteSet {
            prefixes: spec.prefixes,
            attribute_sets: groups.iter().filter(|g| !g.is_empty()).count(),
            updates,
            wire,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_proto::framing::BgpCodec;
    use tokio_util::codec::Decoder;

    fn spec(prefixes: usize, seed: u64) -> RouteSpec {
        RouteSpec {
            prefixes,
            prefixes_per_set: 250,
            seed,
            local_as: 65001,
            next_hop: Ipv4Addr::new(10, 0, 1, 1),
        }
    }

    #[test]
    fn same_seed_same_bytes_and_every_prefix_once() {
        let a = RouteSet::generate(&spec(20_000, 7)).unwrap();
        let b = RouteSet::generate(&spec(20_000, 7)).unwrap();
        assert_eq!(a.wire, b.wire);
        let mut codec = BgpCodec::new();
        let mut buf = bytes::BytesMut::from(&a.wire[..]);
        let mut seen = HashSet::new();
        let mut messages = 0;
        let mut eor = false;
        while let Some(message) = codec.decode(&mut buf).unwrap() {
            let Message::Update(update) = message else {
                panic!("not an UPDATE")
            };
            messages += 1;
            if update.is_end_of_rib().is_some() {
                eor = true;
                continue;
            }
            assert_eq!(update.as_path().unwrap().first_asn(), Some(65001));
            for (_, nlri) in update.announced() {
                assert!(seen.insert(nlri.prefix), "{:?} twice", nlri.prefix);
            }
        }
        assert!(eor);
        assert_eq!(messages, a.updates + 1);
        assert_eq!(seen.len(), 20_000);
        let slash24 = seen.iter().filter(|p| p.prefix_len() == 24).count();
        assert!((10_000..14_000).contains(&slash24), "{slash24} /24s");
        assert!(seen.iter().all(|p| (16..=24).contains(&p.prefix_len())));
    }
}
