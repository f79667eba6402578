//! The hash container: field → value in a [`Dict`], so HSCAN has Redis's
//! cursor guarantees and HRANDFIELD picks uniformly without a walk.
//!
//! Each hash gets its own random seed (hash flooding one key must not be
//! cheap). This module holds data only; the log records that change a hash
//! are [`super::change::Change::HSet`] and [`super::change::Change::HDel`].

use std::ops::{Deref, DerefMut};

use crate::bytes::SmallBytes;
use crate::dict::Dict;

/// A hash value.
pub struct Hash(Dict<SmallBytes>);

impl Default for Hash {
    fn default() -> Hash {
        Hash(Dict::new(rand::random()))
    }
}

impl Clone for Hash {
    fn clone(&self) -> Hash {
        let mut h = Hash::default();
        for (f, v) in self.0.iter() {
            h.0.insert(f, v.clone());
        }
        h
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({} fields)", self.0.len())
    }
}

impl Deref for Hash {
    type Target = Dict<SmallBytes>;
    fn deref(&self) -> &Dict<SmallBytes> {
        &self.0
    }
}

impl DerefMut for Hash {
    fn deref_mut(&mut self) -> &mut Dict<SmallBytes> {
        &mut self.0
    }
}
