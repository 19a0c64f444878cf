//! Hash-consing of attribute sets.
//!
//! A full table has millions of routes but only thousands of distinct attribute sets. Every route
//! holds an `Arc` to the one shared copy of its set; the [`Interner`] finds that copy by value.
//! A set is reclaimed when the last route lets go of it: [`Interner::release`] drops the table's
//! copy once only the table and the caller hold it, and [`Interner::sweep`] catches sets whose last
//! outside holder was dropped elsewhere (e.g. by a peer task that finished sending).

use std::hash::Hash;
use std::sync::Arc;

use hashbrown::HashSet;

/// A hash-consing table of `Arc<T>`: equal values share one allocation.
#[derive(Debug)]
pub struct Interner<T> {
    set: HashSet<Arc<T>>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Self {
            set: HashSet::new(),
        }
    }
}

impl<T: Hash + Eq> Interner<T> {
    /// The shared copy of `value` (stored now if it is new).
    pub fn intern(&mut self, value: T) -> Arc<T> {
        if let Some(existing) = self.set.get(&value) {
            return Arc::clone(existing);
        }
        let shared = Arc::new(value);
        self.set.insert(Arc::clone(&shared));
        shared
    }

    /// The shared copy equal to `value`, which may be a private `Arc` built elsewhere.
    pub fn intern_arc(&mut self, value: Arc<T>) -> Arc<T> {
        if let Some(existing) = self.set.get(&*value) {
            return Arc::clone(existing);
        }
        self.set.insert(Arc::clone(&value));
        value
    }

    /// Gives back one reference; the set is freed when nobody else holds it.
    pub fn release(&mut self, value: Arc<T>) {
        // Exactly two holders: the table and `value`. Nobody else can see it any more.
        if Arc::strong_count(&value) == 2 {
            self.set.remove(&*value);
        }
    }

    /// Frees every set that only the table still holds; returns how many were freed.
    pub fn sweep(&mut self) -> usize {
        let before = self.set.len();
        self.set.retain(|a| Arc::strong_count(a) > 1);
        before - self.set.len()
    }

    /// Number of distinct live sets.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether no set is stored.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_allocation() {
        let mut interner = Interner::default();
        let a = interner.intern(vec![1u32, 2, 3]);
        let b = interner.intern(vec![1u32, 2, 3]);
        let c = interner.intern(vec![4u32]);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(interner.len(), 2);
    }

    #[test]
    fn release_frees_the_last_reference_only() {
        let mut interner = Interner::default();
        let a = interner.intern(7u8);
        let b = interner.intern(7u8);
        interner.release(a);
        assert_eq!(interner.len(), 1, "b still holds the set");
        interner.release(b);
        assert!(interner.is_empty());
    }

    #[test]
    fn sweep_frees_sets_dropped_elsewhere() {
        let mut interner = Interner::default();
        let a = interner.intern(1u8);
        let _b = interner.intern(2u8);
        drop(a);
        assert_eq!(interner.sweep(), 1);
        assert_eq!(interner.len(), 1);
    }
}
