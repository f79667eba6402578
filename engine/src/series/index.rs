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
}

impl LabelIndex {
    /// Indexes `key` under each of its labels.
    pub fn add(&mut self, key: &[u8], labels: &Labels) {
        for (n, v) in labels.iter() {
            self.map.entry((SmallBytes::new(n), SmallBytes::new(v))).or_default().insert(SmallBytes::new(key));
        }
    }

    /// Removes `key` from under each of its labels.
    pub fn remove(&mut self, key: &[u8], labels: &Labels) {
        for (n, v) in labels.iter() {
            let l = (SmallBytes::new(n), SmallBytes::new(v));
            if let Some(keys) = self.map.get_mut(&l) {
                keys.remove(&SmallBytes::new(key));
                if keys.is_empty() {
                    self.map.remove(&l);
                }
            }
        }
    }

    /// The keys of the series with label `name` = `value`, sorted.
    pub fn keys(&self, name: &[u8], value: &[u8]) -> impl Iterator<Item = &[u8]> {
        self.map.get(&(SmallBytes::new(name), SmallBytes::new(value))).into_iter().flat_map(|k| k.iter().map(|k| &k[..]))
    }

    /// Forgets everything (FLUSHDB).
    pub fn clear(&mut self) {
        self.map.clear();
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
    }
}
