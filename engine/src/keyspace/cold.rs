//! Cold strings: the keyspace's side of the `tiered` policy.
//!
//! Under `tiered`, eviction ([`super::evict`]) does not delete the coldest
//! keys: it moves their string values to the shard's [`Tier`] and keeps a
//! [`Value::Cold`] reference in the entry, so the key, its TTL and its
//! access data stay in memory and only the bytes leave. Which values may
//! go: strings longer than [`INLINE`] bytes (shorter ones cost no more than
//! the reference) and within [`tier::fits`]; collections stay in memory.
//!
//! Commands never see a cold value. The server reads the keys a command
//! names back into memory before the command runs: asynchronously when it
//! can ([`Keyspace::cold_refs`], [`crate::tier::Tier::read`],
//! [`Keyspace::install`]), so one shard keeps serving while many reads are
//! in flight, and with [`Keyspace::make_resident`] (a blocking read) as the
//! last resort on paths that cannot wait. [`Keyspace::lookup`] and the
//! in-place string ops (APPEND, SETRANGE) do the same for keys a command
//! reaches without naming them, and for replay after a checkpoint.
//!
//! Moving a value between memory and the tier changes no data, so it writes
//! no log record and does not disturb a running snapshot: the snapshot
//! writes whichever form it finds, a cold entry as its reference, and
//! counts the live bytes per tier segment ([`Keyspace::take_tier_refs`]).
//! This module touches no files; the tier does.

use std::collections::BTreeMap;

use crate::bytes::{SmallBytes, INLINE};
use crate::tier::{self, ColdRef, Scanned, Tier, TierError};

use super::{Entry, Keyspace, Op, Value};

impl Keyspace {
    /// Attaches the shard's cold tier (after recovery; None: no tiering).
    pub fn set_tier(&mut self, tier: Option<Tier>) {
        if let Some(t) = &tier {
            t.loaded(std::mem::take(&mut self.loaded_tier_refs));
        }
        self.tier = tier;
    }

    /// The shard's cold tier, if it has one.
    pub fn tier(&self) -> Option<&Tier> {
        self.tier.as_ref()
    }

    /// Keys whose value is in the cold tier, over every database.
    pub fn cold_keys(&self) -> usize {
        self.dbs.iter().map(|d| d.bytes.cold).sum()
    }

    /// Keys whose value is cold in database `db`.
    pub fn cold_keys_in(&self, db: usize) -> usize {
        self.dbs.get(db).map_or(0, |d| d.bytes.cold)
    }

    /// Records an access to a key (as a command's lookup does), without the lookup's other effects.
    pub fn touch(&mut self, db: usize, key: &[u8], now: u64) {
        let limits = self.mem.limits();
        if let Some(e) = self.dbs[db].dict.get_mut(key) {
            super::evict::touch(e, now, &limits);
        }
    }

    /// Whether an entry may move to the tier.
    pub(super) fn tierable(key: &[u8], e: &Entry) -> bool {
        matches!(&e.value, Value::Str(s) if s.len() > INLINE && tier::fits(key.len(), s.len()))
    }

    /// Moves a key's value to the tier. Err(Busy) when the tier's write queue is full.
    pub(super) fn move_to_tier(&mut self, db: u8, key: &[u8]) -> Result<bool, TierError> {
        let Some(tier) = self.tier.clone() else { return Ok(false) };
        let d = &mut self.dbs[db as usize];
        let Some(e) = d.dict.get(key) else { return Ok(false) };
        if !Self::tierable(key, e) {
            return Ok(false);
        }
        let Value::Str(s) = &e.value else { return Ok(false) };
        let r = tier.put(db, key, s)?;
        d.replace_value(key, Value::Cold(r));
        Ok(true)
    }

    /// The keys of `keys` (in `db`) whose values are cold, with their references.
    pub fn cold_refs<'k>(&self, db: usize, keys: impl IntoIterator<Item = &'k [u8]>) -> Vec<(&'k [u8], ColdRef)> {
        let d = &self.dbs[db];
        if d.bytes.cold == 0 {
            return Vec::new();
        }
        keys.into_iter()
            .filter_map(|k| match d.dict.get(k) {
                Some(Entry { value: Value::Cold(r), .. }) => Some((k, *r)),
                _ => None,
            })
            .collect()
    }

    /// Puts a value read from the tier back into memory, if the key still
    /// refers to that record (it may have changed while the read was in
    /// flight); true if it did.
    pub fn install(&mut self, db: usize, key: &[u8], r: ColdRef, value: &[u8]) -> bool {
        let d = &mut self.dbs[db];
        if !matches!(d.dict.get(key), Some(Entry { value: Value::Cold(now), .. }) if *now == r) {
            return false;
        }
        d.replace_value(key, Value::Str(SmallBytes::new(value)));
        true
    }

    /// Reads a key's cold value back into memory now, blocking the shard on
    /// the read (see the module comment for when); Ok if the value is in memory after.
    pub fn make_resident(&mut self, db: usize, key: &[u8]) -> Result<(), TierError> {
        let Some(Entry { value: Value::Cold(r), .. }) = self.dbs[db].dict.get(key) else { return Ok(()) };
        let r = *r;
        let Some(tier) = self.tier.clone() else {
            return Err(TierError::Failed("a key refers to the cold tier, but this shard has none".into()));
        };
        let value = tier.read_sync(r, key)?;
        self.install(db, key, r, &value);
        Ok(())
    }

    /// Before replay applies `op`: reads back the cold values it changes in
    /// place or moves (APPEND, SETRANGE, RENAME, COPY, MOVE); an error stops
    /// recovery rather than apply the op to a value it cannot see.
    pub(super) fn resident_for(&mut self, op: &Op<'_>) -> Result<(), TierError> {
        match op {
            Op::Append { db, key, .. } | Op::SetRange { db, key, .. } | Op::Move { db, key, .. } => self.make_resident(*db as usize, key),
            Op::Rename { db, src, .. } => self.make_resident(*db as usize, src),
            Op::Copy { src_db, src, .. } => self.make_resident(*src_db as usize, src),
            Op::Group(ops) => ops.iter().try_for_each(|o| self.resident_for(o)),
            _ => Ok(()),
        }
    }

    /// [`Keyspace::make_resident`] where no error can be returned: false
    /// (logged) if the value could not be read and stays cold. An in-place
    /// op (APPEND, SETRANGE) then changes nothing rather than build on an
    /// empty string; the command itself was refused before, at the door.
    pub(super) fn resident_or_log(&mut self, db: usize, key: &[u8]) -> bool {
        if self.dbs[db].bytes.cold == 0 {
            return true;
        }
        match self.make_resident(db, key) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(db, key = %String::from_utf8_lossy(key), error = %e, "cold value could not be read back");
                false
            }
        }
    }

    /// Compaction of a tier segment: moves one record it holds to the
    /// tier's head if its key still refers to it. Ok(true) if it moved.
    /// The record names the database it was written from; SWAPDB may have
    /// moved the key since, so the others are looked at too.
    pub fn move_record(&mut self, rec: &Scanned) -> Result<bool, TierError> {
        let Some(tier) = self.tier.clone() else { return Ok(false) };
        let first = rec.db as usize % self.dbs.len();
        let holder = (0..self.dbs.len())
            .map(|i| (first + i) % self.dbs.len())
            .find(|&db| matches!(self.dbs[db].dict.get(&rec.key), Some(Entry { value: Value::Cold(r), .. }) if *r == rec.at));
        let Some(db) = holder else { return Ok(false) };
        let r = tier.put(db as u8, &rec.key, &rec.value)?;
        self.dbs[db].replace_value(&rec.key, Value::Cold(r));
        tier.count_moved();
        Ok(true)
    }

    /// The tier segments the finished snapshot refers to, with their live
    /// bytes, and the tier's head when it began (for [`Tier::after_checkpoint`]).
    pub fn take_tier_refs(&mut self) -> Option<(BTreeMap<u32, u64>, u32)> {
        self.snapshot.as_mut().map(|s| (std::mem::take(&mut s.tier_refs), s.tier_head))
    }
}
