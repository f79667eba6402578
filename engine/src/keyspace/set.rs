//! The set container: members in a [`Dict`] with no values, so SSCAN keeps
//! Redis's cursor guarantees and SPOP/SRANDMEMBER pick without a walk.
//!
//! Each set gets its own random seed. This module holds data only; the log
//! records that change a set are [`super::change::Change::SAdd`] and
//! [`super::change::Change::SRem`].

use std::ops::{Deref, DerefMut};

use crate::dict::Dict;

/// A set value.
pub struct Set(Dict<()>);

impl Default for Set {
    fn default() -> Set {
        Set(Dict::new(rand::random()))
    }
}

impl Clone for Set {
    fn clone(&self) -> Set {
        let mut s = Set::default();
        for (m, _) in self.0.iter() {
            s.0.insert(m, ());
        }
        s
    }
}

impl std::fmt::Debug for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Set({} members)", self.0.len())
    }
}

impl Deref for Set {
    type Target = Dict<()>;
    fn deref(&self) -> &Dict<()> {
        &self.0
    }
}

impl DerefMut for Set {
    fn deref_mut(&mut self) -> &mut Dict<()> {
        &mut self.0
    }
}
