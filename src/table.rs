//! Compact prefix tables.
//!
//! A routing table holds up to millions of prefixes, so the per-entry overhead matters more than
//! anything else. [`DenseMap`] stores its entries contiguously in a `Vec<(K, V)>` and keeps an
//! index of *positions* into it (`SlotIndex`: open addressing, linear probing, one `u32` per
//! bucket holding a 7-bit hash tag and the position, at most 3/4 full) instead of a whole `(K, V)`
//! per bucket. Removal swaps the last entry into the hole and shifts the probe cluster back (no
//! tombstones).
//! [`PrefixTable`] splits IPv4 and IPv6 so an IPv4 key is one `u64` (address << 8 | length), not
//! the 18 bytes of `IpNet`: it hashes and compares as one integer and costs no more than the
//! 5-byte `Ipv4Net` once padded next to an 8-byte-aligned value.
//!
//! Speed at a million entries is cache misses: an insert costs one probe of the index
//! ([`DenseMap::entry`] finds or reserves the slot in the same probe), and growing the index
//! rebuilds it by reading the entries in order rather than rehashing through the old index.
//!
//! Measured (see `docs/benchmarks.md`, "RIB micro-benchmark" and W1): at 1,000,000 IPv4 routes the
//! index costs about 8 bytes per route (2^21 buckets) plus the entry itself, against
//! 2 × `size_of::<(K, V)>()` for a `HashMap<K, V>` that has just doubled. Because a bucket's
//! address follows from the hash alone, [`DenseMap::prefetch`] lets the RIB start the cache miss
//! of a prefix a few prefixes ahead of its insert; at this size that halves the RIB's time.

use std::hash::{BuildHasher, Hash};

use hashbrown::DefaultHashBuilder;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Bits of a bucket that hold the entry position (+ 1; 0 = empty bucket).
const POSITION_BITS: u32 = 25;
const POSITION_MASK: u32 = (1 << POSITION_BITS) - 1;
/// Entries a [`DenseMap`] can hold: 2^25 - 1 (33 million; a full Internet table is ~1 million).
pub const MAX_ENTRIES: usize = POSITION_MASK as usize;

/// The index of a [`DenseMap`]: open addressing with linear probing over one `u32` per bucket,
/// which holds a 7-bit tag of the hash and the entry's position + 1 (0 = empty). One probe is
/// one cache line in the common case, the index costs 4 bytes per bucket at a load of at most
/// 3/4, and a bucket's address is known from the hash alone, so it can be prefetched
/// ([`DenseMap::prefetch`]) while earlier prefixes are processed.
#[derive(Clone, Default)]
struct SlotIndex {
    buckets: Vec<u32>,
    len: usize,
}

/// Where a probe ended.
enum Probe {
    /// The bucket holding the key.
    Found(usize),
    /// The empty bucket where the key goes.
    Vacant(usize),
}

impl SlotIndex {
    fn tag(hash: u64) -> u32 {
        (hash >> 57) as u32
    }

    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    fn position(bucket: u32) -> usize {
        (bucket & POSITION_MASK) as usize - 1
    }

    fn needs_growth(&self) -> bool {
        (self.len + 1) * 4 > self.buckets.len() * 3
    }

    /// Probes for the key `is_key` recognises by position. The index must not be empty.
    fn probe(&self, hash: u64, mut is_key: impl FnMut(usize) -> bool) -> Probe {
        let tag = Self::tag(hash);
        let mask = self.mask();
        let mut i = hash as usize & mask;
        loop {
            let b = self.buckets[i];
            if b == 0 {
                return Probe::Vacant(i);
            }
            if b >> POSITION_BITS == tag && is_key(Self::position(b)) {
                return Probe::Found(i);
            }
            i = (i + 1) & mask;
        }
    }

    fn find(&self, hash: u64, is_key: impl FnMut(usize) -> bool) -> Option<usize> {
        if self.buckets.is_empty() {
            return None;
        }
        match self.probe(hash, is_key) {
            Probe::Found(i) => Some(i),
            Probe::Vacant(_) => None,
        }
    }

    fn fill(&mut self, bucket: usize, hash: u64, position: usize) {
        // `position < MAX_ENTRIES`: checked by the callers.
        self.buckets[bucket] = Self::tag(hash) << POSITION_BITS | (position as u32 + 1);
        self.len += 1;
    }

    /// Empties `bucket` and shifts later members of its cluster back (linear probing keeps no
    /// tombstones). `hash_at` gives the hash of the entry at a position.
    fn empty(&mut self, bucket: usize, hash_at: impl Fn(usize) -> u64) {
        let mask = self.mask();
        let mut hole = bucket;
        let mut j = (hole + 1) & mask;
        loop {
            let b = self.buckets[j];
            if b == 0 {
                break;
            }
            let home = hash_at(Self::position(b)) as usize & mask;
            // The member at `j` may move to `hole` unless its home lies cyclically in (hole, j].
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.buckets[hole] = b;
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.buckets[hole] = 0;
        self.len -= 1;
    }

    /// A fresh index of `buckets` buckets (a power of two) holding `hashes`, in position order.
    fn rebuild(&mut self, buckets: usize, hashes: impl Iterator<Item = u64>) {
        self.buckets = vec![0; buckets];
        self.len = 0;
        for (position, hash) in hashes.enumerate() {
            if let Probe::Vacant(i) = self.probe(hash, |_| false) {
                self.fill(i, hash, position);
            }
        }
    }

    fn prefetch(&self, hash: u64) {
        if self.buckets.is_empty() {
            return;
        }
        let bucket = self
            .buckets
            .as_ptr()
            .wrapping_add(hash as usize & self.mask());
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint that never faults, whatever the address; this one is
        // inside `buckets` anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch(bucket.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = bucket;
    }
}

/// A hash map with a dense entry vector and an index-only hash table (see the module docs).
///
/// Iteration order is insertion order until the first removal, then unspecified.
#[derive(Clone)]
pub struct DenseMap<K, V> {
    index: SlotIndex,
    entries: Vec<(K, V)>,
    hasher: DefaultHashBuilder,
}

impl<K, V> Default for DenseMap<K, V> {
    fn default() -> Self {
        Self {
            index: SlotIndex::default(),
            entries: Vec::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for DenseMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl<K: Hash + Eq + Copy, V> DenseMap<K, V> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn hash(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    fn position(&self, key: &K) -> Option<usize> {
        let hash = self.hash(key);
        let entries = &self.entries;
        self.index
            .find(hash, |p| entries[p].0 == *key)
            .map(|b| SlotIndex::position(self.index.buckets[b]))
    }

    /// Starts loading the index bucket of `key` into the cache, for a lookup or insert soon.
    pub fn prefetch(&self, key: &K) {
        self.index.prefetch(self.hash(key));
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    /// The value stored under `key`, mutably.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.position(key).map(|i| &mut self.entries[i].1)
    }

    /// The value under `key`, inserting `make()` first when absent; `true` when it was inserted.
    pub fn entry(&mut self, key: K, make: impl FnOnce() -> V) -> (&mut V, bool) {
        let (i, inserted) = match self.slot(key) {
            Ok(i) => (i, false),
            Err(i) => {
                self.entries.push((key, make()));
                (i, true)
            }
        };
        (&mut self.entries[i].1, inserted)
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.slot(key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(_) => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// One probe of the index: `Ok(position)` of `key`, or `Err(position)` where the caller must
    /// push it (the index already points there).
    fn slot(&mut self, key: K) -> Result<usize, usize> {
        if self.index.needs_growth() {
            self.grow_index();
        }
        let hash = self.hash(&key);
        let entries = &self.entries;
        match self.index.probe(hash, |p| entries[p].0 == key) {
            Probe::Found(b) => Ok(SlotIndex::position(self.index.buckets[b])),
            Probe::Vacant(b) => {
                let next = self.entries.len();
                assert!(
                    next < MAX_ENTRIES,
                    "a prefix table holds at most {MAX_ENTRIES} entries"
                );
                self.index.fill(b, hash, next);
                Err(next)
            }
        }
    }

    /// Doubles the index by rebuilding it from the entries in order: a sequential read of the
    /// entries instead of the random one an in-place rehash makes through the old index, which at
    /// a million entries is most of the cost of growing.
    fn grow_index(&mut self) {
        let buckets = (self.index.buckets.len() * 2).max(16);
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index
            .rebuild(buckets, entries.iter().map(|(k, _)| hasher.hash_one(k)));
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let hash = self.hash(key);
        let (entries, hasher) = (&self.entries, &self.hasher);
        let bucket = self.index.find(hash, |p| entries[p].0 == *key)?;
        let i = SlotIndex::position(self.index.buckets[bucket]);
        self.index.empty(bucket, |p| hasher.hash_one(entries[p].0));
        let last = self.entries.len() - 1;
        if i != last {
            // Re-point the bucket of the entry that `swap_remove` moves into the hole.
            let moved_hash = self.hash(&self.entries[last].0);
            if let Some(b) = self.index.find(moved_hash, |p| p == last) {
                self.index.buckets[b] =
                    SlotIndex::tag(moved_hash) << POSITION_BITS | (i as u32 + 1);
            }
        }
        let (_, value) = self.entries.swap_remove(i);
        if self.entries.len() < self.entries.capacity() / 4 {
            self.entries.shrink_to(self.entries.len() * 2);
            let buckets = (self.entries.len() * 2).next_power_of_two().max(16);
            if buckets < self.index.buckets.len() {
                let (entries, hasher) = (&self.entries, &self.hasher);
                self.index
                    .rebuild(buckets, entries.iter().map(|(k, _)| hasher.hash_one(k)));
            }
        }
        Some(value)
    }

    /// All entries.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// All entries, values mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// All keys.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Keeps only the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let doomed: Vec<K> = self
            .entries
            .iter_mut()
            .filter_map(|(k, v)| (!keep(k, v)).then_some(*k))
            .collect();
        for key in doomed {
            self.remove(&key);
        }
    }

    /// Bytes held by the map's own buffers (not by what the values point to).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(K, V)>()
            + self.index.buckets.capacity() * std::mem::size_of::<u32>()
    }
}

/// An IPv4 prefix as one integer (address << 8 | length): compared and hashed as a `u64`
/// (a derived comparison of `Ipv4Net`'s 5 bytes compiles to a `memcmp` call), and no larger in a
/// table entry, whose value is 8-byte aligned anyway.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct V4Key(u64);

impl V4Key {
    fn of(prefix: &Ipv4Net) -> Self {
        V4Key(u64::from(u32::from(prefix.addr())) << 8 | u64::from(prefix.prefix_len()))
    }

    fn prefix(self) -> Ipv4Net {
        let addr = std::net::Ipv4Addr::from((self.0 >> 8) as u32);
        // Built by `of` from a valid prefix: the length is at most 32.
        Ipv4Net::new(addr, (self.0 & 0xff) as u8).unwrap_or_default()
    }
}

/// A table keyed by IP prefix, stored per address family (see the module docs).
#[derive(Clone, Debug)]
pub struct PrefixTable<V> {
    v4: DenseMap<V4Key, V>,
    v6: DenseMap<Ipv6Net, V>,
}

impl<V> Default for PrefixTable<V> {
    fn default() -> Self {
        Self {
            v4: DenseMap::default(),
            v6: DenseMap::default(),
        }
    }
}

impl<V> PrefixTable<V> {
    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value for `prefix`.
    pub fn get(&self, prefix: &IpNet) -> Option<&V> {
        match prefix {
            IpNet::V4(p) => self.v4.get(&V4Key::of(p)),
            IpNet::V6(p) => self.v6.get(p),
        }
    }

    /// Starts loading the index bucket of `prefix` into the cache (see [`DenseMap::prefetch`]).
    pub fn prefetch(&self, prefix: &IpNet) {
        match prefix {
            IpNet::V4(p) => self.v4.prefetch(&V4Key::of(p)),
            IpNet::V6(p) => self.v6.prefetch(p),
        }
    }

    /// The value for `prefix`, mutably.
    pub fn get_mut(&mut self, prefix: &IpNet) -> Option<&mut V> {
        match prefix {
            IpNet::V4(p) => self.v4.get_mut(&V4Key::of(p)),
            IpNet::V6(p) => self.v6.get_mut(p),
        }
    }

    /// The value for `prefix`, inserted with `make()` when absent (one probe); `true` when it
    /// was inserted.
    pub fn entry(&mut self, prefix: IpNet, make: impl FnOnce() -> V) -> (&mut V, bool) {
        match prefix {
            IpNet::V4(p) => self.v4.entry(V4Key::of(&p), make),
            IpNet::V6(p) => self.v6.entry(p, make),
        }
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, prefix: IpNet, value: V) -> Option<V> {
        match prefix {
            IpNet::V4(p) => self.v4.insert(V4Key::of(&p), value),
            IpNet::V6(p) => self.v6.insert(p, value),
        }
    }

    /// Removes `prefix`.
    pub fn remove(&mut self, prefix: &IpNet) -> Option<V> {
        match prefix {
            IpNet::V4(p) => self.v4.remove(&V4Key::of(p)),
            IpNet::V6(p) => self.v6.remove(p),
        }
    }

    /// All entries (IPv4 first).
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &V)> {
        self.v4
            .iter()
            .map(|(p, v)| (IpNet::V4(p.prefix()), v))
            .chain(self.v6.iter().map(|(p, v)| (IpNet::V6(*p), v)))
    }

    /// All prefixes.
    pub fn prefixes(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.iter().map(|(p, _)| p)
    }

    /// All entries, values mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (IpNet, &mut V)> {
        self.v4
            .iter_mut()
            .map(|(p, v)| (IpNet::V4(p.prefix()), v))
            .chain(self.v6.iter_mut().map(|(p, v)| (IpNet::V6(*p), v)))
    }

    /// Keeps only the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(IpNet, &mut V) -> bool) {
        self.v4.retain(|p, v| keep(IpNet::V4(p.prefix()), v));
        self.v6.retain(|p, v| keep(IpNet::V6(*p), v));
    }

    /// Bytes held by the table's own buffers.
    pub fn heap_bytes(&self) -> usize {
        self.v4.heap_bytes() + self.v6.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// The dense map behaves like `std::collections::HashMap` under any sequence of inserts
        /// and removes (the swap-remove index fix-up is the risky part).
        #[test]
        fn dense_map_matches_std_hashmap(ops in proptest::collection::vec((any::<bool>(), 0u16..64, any::<u32>()), 0..400)) {
            let mut ours: DenseMap<u16, u32> = DenseMap::default();
            let mut std_map: HashMap<u16, u32> = HashMap::new();
            for (insert, k, v) in ops {
                if insert {
                    prop_assert_eq!(ours.insert(k, v), std_map.insert(k, v));
                } else {
                    prop_assert_eq!(ours.remove(&k), std_map.remove(&k));
                }
                prop_assert_eq!(ours.len(), std_map.len());
            }
            for (k, v) in &std_map {
                prop_assert_eq!(ours.get(k), Some(v));
            }
            let mut keys: Vec<u16> = ours.keys().copied().collect();
            keys.sort_unstable();
            let mut expected: Vec<u16> = std_map.keys().copied().collect();
            expected.sort_unstable();
            prop_assert_eq!(keys, expected);
        }
    }

    proptest! {
        /// Larger tables: growth, long probe clusters, backward-shift removal and shrinking.
        #[test]
        fn dense_map_matches_std_hashmap_at_size(ops in proptest::collection::vec((0u8..3, 0u32..3000), 0..6000)) {
            let mut ours: DenseMap<u32, u32> = DenseMap::default();
            let mut std_map: HashMap<u32, u32> = HashMap::new();
            for (op, k) in ops {
                if op < 2 {
                    prop_assert_eq!(ours.insert(k, op.into()), std_map.insert(k, op.into()));
                } else {
                    prop_assert_eq!(ours.remove(&k), std_map.remove(&k));
                }
            }
            prop_assert_eq!(ours.len(), std_map.len());
            for (k, v) in &std_map {
                prop_assert_eq!(ours.get(k), Some(v));
            }
            for k in 3000..3100u32 {
                prop_assert_eq!(ours.get(&k), None);
            }
        }

        /// The integer key gives back exactly the prefix it was made of.
        #[test]
        fn v4_keys_round_trip(addr in any::<u32>(), len in 0u8..=32) {
            let p = Ipv4Net::new(std::net::Ipv4Addr::from(addr), len).unwrap();
            prop_assert_eq!(V4Key::of(&p).prefix(), p);
        }
    }

    #[test]
    fn prefix_table_keeps_families_apart() {
        let mut t = PrefixTable::default();
        let v4: IpNet = "10.0.0.0/24".parse().unwrap();
        let v6: IpNet = "fd00::/64".parse().unwrap();
        t.insert(v4, 1);
        t.insert(v6, 2);
        assert_eq!(t.get(&v4), Some(&1));
        assert_eq!(t.get(&v6), Some(&2));
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove(&v4), Some(1));
        assert_eq!(t.get(&v4), None);
        t.retain(|_, _| false);
        assert!(t.is_empty());
    }
}
