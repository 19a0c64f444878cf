//! Compact prefix tables.
//!
//! A routing table holds up to millions of prefixes, so the per-entry overhead matters more than
//! anything else. [`DenseMap`] stores its entries contiguously in a `Vec<(K, V)>` and keeps a
//! `hashbrown::HashTable<u32>` of *indices* into it: the hash index costs 5 bytes per bucket
//! (4-byte index + 1 control byte) instead of a whole `(K, V)` per bucket, which matters because a
//! hash table is between 44% and 88% full. Removal swaps the last entry into the hole.
//! [`PrefixTable`] splits IPv4 and IPv6 so an IPv4 key is one `u64` (address << 8 | length), not
//! the 18 bytes of `IpNet`: it hashes and compares as one integer and costs no more than the
//! 5-byte `Ipv4Net` once padded next to an 8-byte-aligned value.
//!
//! Speed at a million entries is cache misses: an insert costs one probe of the index
//! ([`DenseMap::entry`] finds or reserves the slot in the same probe), and growing the index
//! rebuilds it by reading the entries in order rather than rehashing through the old index.
//!
//! Measured (see `docs/benchmarks.md`, "RIB micro-benchmark"): at 1,000,000 IPv4 routes this layout
//! costs about 10 bytes of index per route plus the entry itself, against 2 × `size_of::<(K, V)>()`
//! for a `HashMap<K, V>` that has just doubled.

use std::hash::{BuildHasher, Hash};

use hashbrown::{DefaultHashBuilder, HashTable};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A hash map with a dense entry vector and an index-only hash table (see the module docs).
///
/// Iteration order is insertion order until the first removal, then unspecified.
#[derive(Clone)]
pub struct DenseMap<K, V> {
    index: HashTable<u32>,
    entries: Vec<(K, V)>,
    hasher: DefaultHashBuilder,
}

impl<K, V> Default for DenseMap<K, V> {
    fn default() -> Self {
        Self {
            index: HashTable::new(),
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
            .find(hash, |&i| entries[i as usize].0 == *key)
            .map(|&i| i as usize)
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    /// The value stored under `key`, mutably.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.position(key).map(|i| &mut self.entries[i].1)
    }

    /// The value under `key`, inserting `make()` first when absent.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.entry(key, make).0
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
        if self.index.len() == self.index.capacity() {
            self.grow_index();
        }
        let hash = self.hash(&key);
        let next = self.entries.len();
        let (entries, hasher) = (&self.entries, &self.hasher);
        match self.index.entry(
            hash,
            |&i| entries[i as usize].0 == key,
            |&j| hasher.hash_one(entries[j as usize].0),
        ) {
            hashbrown::hash_table::Entry::Occupied(o) => Ok(*o.get() as usize),
            hashbrown::hash_table::Entry::Vacant(v) => {
                let idx = u32::try_from(next).expect("a prefix table holds at most 2^32 entries");
                v.insert(idx);
                Err(next)
            }
        }
    }

    /// Doubles the index by rebuilding it from the entries in order: a sequential read of the
    /// entries instead of the random one an in-place rehash makes through the old index, which at
    /// a million entries is most of the cost of growing.
    fn grow_index(&mut self) {
        // Twice the buckets, as an in-place growth would.
        let capacity = self.index.capacity().max(8) * 2;
        let mut index = HashTable::with_capacity(capacity);
        let (entries, hasher) = (&self.entries, &self.hasher);
        for (i, (key, _)) in entries.iter().enumerate() {
            // Positions fit in u32: `slot` refuses to go beyond.
            index.insert_unique(hasher.hash_one(key), i as u32, |&j| {
                hasher.hash_one(entries[j as usize].0)
            });
        }
        self.index = index;
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let hash = self.hash(key);
        let entries = &self.entries;
        let slot = self
            .index
            .find_entry(hash, |&i| entries[i as usize].0 == *key)
            .ok()?;
        let (i, _) = slot.remove();
        let i = i as usize;
        let last = self.entries.len() - 1;
        if i != last {
            // Re-point the index of the entry that `swap_remove` moves into the hole.
            let moved_key = self.entries[last].0;
            let moved_hash = self.hash(&moved_key);
            let last_idx = last as u32;
            if let Some(slot) = self.index.find_mut(moved_hash, |&j| j == last_idx) {
                *slot = i as u32;
            }
        }
        let (_, value) = self.entries.swap_remove(i);
        if self.entries.len() < self.entries.capacity() / 4 {
            self.entries.shrink_to(self.entries.len() * 2);
            self.index.shrink_to(self.entries.len(), |&j| {
                self.hasher.hash_one(self.entries[j as usize].0)
            });
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
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
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

    /// The value for `prefix`, mutably.
    pub fn get_mut(&mut self, prefix: &IpNet) -> Option<&mut V> {
        match prefix {
            IpNet::V4(p) => self.v4.get_mut(&V4Key::of(p)),
            IpNet::V6(p) => self.v6.get_mut(p),
        }
    }

    /// The value for `prefix`, inserted with `make()` when absent.
    pub fn get_or_insert_with(&mut self, prefix: IpNet, make: impl FnOnce() -> V) -> &mut V {
        match prefix {
            IpNet::V4(p) => self.v4.get_or_insert_with(V4Key::of(&p), make),
            IpNet::V6(p) => self.v6.get_or_insert_with(p, make),
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
