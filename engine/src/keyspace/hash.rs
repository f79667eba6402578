//! The hash container: field → value in a [`Dict`], so HSCAN has Redis's
//! cursor guarantees and HRANDFIELD picks uniformly without a walk.
//!
//! Each hash gets its own random seed (hash flooding one key must not be
//! cheap). This module holds data only; the log records that change a hash
//! are [`super::change::Change::HSet`] and [`super::change::Change::HDel`].
//!
//! Reads see the [`Dict`] (through `Deref`); changes go through
//! [`Hash::insert`] and [`Hash::remove`], which keep a running count of the
//! values' heap bytes, so the hash's size for memory accounting is O(1)
//! (the dict counts its own buckets, nodes and field bytes).

use std::ops::Deref;

use crate::bytes::SmallBytes;
use crate::dict::Dict;

/// A hash value: the fields and the sum of the values' heap bytes.
pub struct Hash {
    fields: Dict<SmallBytes>,
    /// Σ heap bytes of the values (short ones are inline: 0).
    value_heap: usize,
}

impl Default for Hash {
    fn default() -> Hash {
        Hash { fields: Dict::new(rand::random()), value_heap: 0 }
    }
}

impl Clone for Hash {
    fn clone(&self) -> Hash {
        let mut h = Hash::default();
        for (f, v) in self.fields.iter() {
            h.insert(f, v.clone());
        }
        h
    }
}

impl Hash {
    /// Sets a field; returns its old value.
    pub fn insert(&mut self, field: &[u8], value: SmallBytes) -> Option<SmallBytes> {
        self.value_heap += value.heap_bytes();
        let old = self.fields.insert(field, value);
        self.value_heap -= old.as_ref().map_or(0, SmallBytes::heap_bytes);
        old
    }

    /// Removes a field; returns its value.
    pub fn remove(&mut self, field: &[u8]) -> Option<SmallBytes> {
        let old = self.fields.remove(field);
        self.value_heap -= old.as_ref().map_or(0, SmallBytes::heap_bytes);
        old
    }

    /// Heap bytes owned: the dict (buckets, nodes, long fields) and the long values. O(1).
    pub fn heap_bytes(&self) -> usize {
        self.fields.heap_bytes() + self.value_heap
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({} fields)", self.fields.len())
    }
}

impl Deref for Hash {
    type Target = Dict<SmallBytes>;
    fn deref(&self) -> &Dict<SmallBytes> {
        &self.fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_heap_count_matches_a_recount() {
        let next = rand::random::<u64>;
        let mut h = Hash::default();
        for _ in 0..20_000 {
            let field = (next() % 500).to_string();
            if next().is_multiple_of(3) {
                h.remove(field.as_bytes());
            } else {
                h.insert(field.as_bytes(), SmallBytes::new(&vec![b'v'; (next() % 70) as usize]));
            }
            let recount: usize = h.fields.heap_bytes() + h.iter().map(|(_, v)| v.heap_bytes()).sum::<usize>();
            assert_eq!(h.heap_bytes(), recount);
        }
        assert_eq!(h.clone().value_heap, h.value_heap);
    }
}
