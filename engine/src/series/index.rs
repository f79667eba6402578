//! The label index of one database: (label, value) → keys of the time
//! series that carry it, so TS.MGET, TS.MRANGE and TS.QUERYINDEX find the
//! series of a filter without visiting every key.
//!
//! The keyspace keeps it in step in its two funnels, `Db::insert` and
//! `Db::remove` (every write, delete, rename, move, expiry, eviction,
//! flush and replay passes through them) and where TS.CREATE / TS.ALTER
//! change a series' labels in place.

use std::collections::{BTreeSet, HashMap};

use super::Labels;
use crate::bytes::SmallBytes;

/// (label, value) → keys.
#[derive(Debug, Default, Clone)]
pub struct LabelIndex {
    map: HashMap<(SmallBytes, SmallBytes), BTreeSet<SmallBytes>>,
    /// Estimated bytes held (see [`LabelIndex::heap_bytes`]).
    bytes: usize,
}

/// Estimated bytes of one (label, value) entry besides its strings' heap:
/// the pair, its set and the map's slot with its control byte.
const PAIR_BYTES: usize = 2 * std::mem::size_of::<SmallBytes>() + std::mem::size_of::<BTreeSet<SmallBytes>>() + 1;
/// Estimated bytes of one key in a set besides its heap: the key and its
/// share of a B-tree node (about two thirds full).
const KEY_BYTES: usize = std::mem::size_of::<SmallBytes>() * 3 / 2;

impl LabelIndex {
    /// Indexes `key` under each of its labels.
    pub fn add(&mut self, key: &[u8], labels: &Labels) {
        for (n, v) in labels.iter() {
            let pair = (SmallBytes::new(n), SmallBytes::new(v));
            let pair_bytes = PAIR_BYTES + pair.0.heap_bytes() + pair.1.heap_bytes();
            let keys = self.map.entry(pair).or_insert_with(|| {
                self.bytes += pair_bytes;
                BTreeSet::new()
            });
            let key = SmallBytes::new(key);
            let key_bytes = KEY_BYTES + key.heap_bytes();
            if keys.insert(key) {
                self.bytes += key_bytes;
            }
        }
    }

    /// Removes `key` from under each of its labels.
    pub fn remove(&mut self, key: &[u8], labels: &Labels) {
        let key = SmallBytes::new(key);
        for (n, v) in labels.iter() {
            let l = (SmallBytes::new(n), SmallBytes::new(v));
            if let Some(keys) = self.map.get_mut(&l) {
                if keys.remove(&key) {
                    self.bytes -= KEY_BYTES + key.heap_bytes();
                }
                if keys.is_empty() {
                    self.map.remove(&l);
                    self.bytes -= PAIR_BYTES + l.0.heap_bytes() + l.1.heap_bytes();
                }
            }
        }
    }

    /// Estimated bytes the index holds: its entries, their strings, and a
    /// copy of each series' key under each of its labels.
    pub fn heap_bytes(&self) -> usize {
        self.bytes
    }

    /// The keys of the series with label `name` = `value`, sorted.
    pub fn keys(&self, name: &[u8], value: &[u8]) -> impl Iterator<Item = &[u8]> {
        self.map.get(&(SmallBytes::new(name), SmallBytes::new(value))).into_iter().flat_map(|k| k.iter().map(|k| &k[..]))
    }

    /// Forgets everything (FLUSHDB).
    pub fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_and_removes() {
        let l = |n: &str, v: &str| (SmallBytes::new(n.as_bytes()), SmallBytes::new(v.as_bytes()));
        let ls = |p: &[(&'static str, &'static str)]| Labels::new(p.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        let mut ix = LabelIndex::default();
        ix.add(b"b", &ls(&[("host", "a"), ("dc", "x")]));
        ix.add(b"a", &ls(&[("host", "a")]));
        assert_eq!(ix.keys(b"host", b"a").collect::<Vec<_>>(), vec![&b"a"[..], b"b"]);
        ix.remove(b"b", &ls(&[("host", "a"), ("dc", "x")]));
        assert_eq!(ix.keys(b"host", b"a").collect::<Vec<_>>(), vec![&b"a"[..]]);
        assert_eq!(ix.keys(b"dc", b"x").count(), 0);
        assert!(!ix.map.contains_key(&l("dc", "x")), "empty entries go away");
        assert!(ix.heap_bytes() > 0);
        ix.remove(b"a", &ls(&[("host", "a")]));
        assert_eq!(ix.heap_bytes(), 0, "every byte counted in is counted out");
    }
}
