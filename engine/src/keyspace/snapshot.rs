//! Consistent snapshots of a live keyspace, for checkpoints, without a fork
//! and without stopping the shard.
//!
//! A snapshot captures the keyspace exactly as it was after log record `lsn`
//! (the last one appended when [`Keyspace::snapshot_begin`] ran), while
//! commands keep changing it. It walks the databases with the dictionary's
//! SCAN cursor, a slice per [`Keyspace::snapshot_step`], and writes each entry
//! it meets. A write that arrives first is caught in [`Keyspace::apply`]:
//! before an op changes or removes an entry the walk has not written yet,
//! the entry's old value is written (copy on write, as Dragonfly's
//! versioned snapshots). Every entry carries a `snapped` bit; a database's
//! `phase` says which value of the bit means "already written" in the
//! running snapshot, and flipping the phase at the start of the next one
//! makes every entry pending again without touching it. Entries created
//! after the start are born written, since they were not in the state at
//! `lsn`. Keys that expire during the walk are not written: at load and on
//! replay they are expired anyway, since every later record is later in time.
//!
//! Entries are encoded as the log's own `Op::Store` (db, key, value,
//! expiry), each prefixed with its length; loading one is applying a Store.
//! Search index definitions (`Op::Search`) come first, their length marked
//! with `SEARCH_BIT`, so that loading indexes each hash as it arrives; the
//! spell-check dictionaries follow them the same way (one `DICT_ADD` each).
//! This module touches no files: the server hands [`Keyspace::snapshot_take`]'s
//! bytes to `crate::checkpoint`.

use std::borrow::Cow;

use super::op::{kinds, Target};
use super::{check_dbs, Entry, Keyspace, Op, DATABASES};
use crate::codec::{DecodeError, Reader, Writer};

/// Set in an entry's length when the entry is a search index definition
/// (`Op::Search`) rather than a Store. Definitions come first in a snapshot.
const SEARCH_BIT: u32 = 1 << 31;

/// Entries visited per SCAN call of a step.
const SCAN_COUNT: usize = 64;

/// A snapshot in progress.
#[derive(Debug)]
pub(super) struct Snapshot {
    /// The state is that after this LSN.
    lsn: u64,
    /// The database being walked ([`DATABASES`]: the walk is over).
    db: usize,
    /// SCAN cursor in `db`.
    cursor: u64,
    /// Encoded entries not yet taken.
    out: Vec<u8>,
    /// Entries in `out`.
    entries: u32,
    /// Live bytes per tier segment that the written cold entries refer to.
    pub(super) tier_refs: std::collections::BTreeMap<u32, u64>,
    /// The tier's head segment when the snapshot began.
    pub(super) tier_head: u32,
}

impl Snapshot {
    fn write(&mut self, db: usize, key: &[u8], e: &Entry) {
        if let super::Value::Cold(r) = &e.value {
            *self.tier_refs.entry(r.seg).or_default() += (crate::tier::HEADER + key.len()) as u64 + r.len as u64;
        }
        self.write_op(&Op::Store { db: db as u8, key, value: Cow::Borrowed(&e.value), expire_ms: e.expire_ms });
    }

    /// Writes a Store, or a search index definition with [`SEARCH_BIT`] set in its length.
    fn write_op(&mut self, op: &Op<'_>) {
        let len = op.encoded_len();
        let at = self.out.len();
        self.out.resize(at + 4 + len, 0);
        let mut w = Writer::new(&mut self.out[at..]);
        let flag = if matches!(op, Op::Search { .. }) { SEARCH_BIT } else { 0 };
        w.u32(len as u32 | flag);
        op.encode(&mut w);
        self.entries += 1;
    }
}

impl Keyspace {
    /// Starts a snapshot of the state after the last appended record and
    /// returns that record's LSN (0 without a log). Must not be called while
    /// a snapshot runs or inside a write group.
    pub fn snapshot_begin(&mut self) -> u64 {
        assert!(self.snapshot.is_none(), "a snapshot is already running");
        assert_eq!(self.group_depth, 0, "a snapshot cannot start inside a write group");
        let lsn = self.log.as_ref().map_or(0, |l| l.last_lsn());
        for d in &mut self.dbs {
            d.phase = !d.phase;
        }
        let tier_head = self.tier.as_ref().map_or(0, |t| t.head());
        let mut snap = Snapshot { lsn, db: 0, cursor: 0, out: Vec::new(), entries: 0, tier_refs: Default::default(), tier_head };
        // Index definitions first, so loading indexes the hashes as they come.
        for (db, d) in self.dbs.iter().enumerate() {
            for schema in d.search.schemas() {
                let body = schema.encode();
                snap.write_op(&Op::Search { db: db as u8, tag: super::op::search_tag::DEFINE, body: &body });
            }
            for (index, group, words) in d.search.synonym_groups() {
                let terms: Vec<&str> = std::iter::once(group).chain(words).collect();
                let body = crate::search::encode_dict(index, &terms);
                snap.write_op(&Op::Search { db: db as u8, tag: super::op::search_tag::SYN_UPDATE, body: &body });
            }
            for (name, terms) in d.search.dicts() {
                let terms: Vec<&str> = terms.iter().map(String::as_str).collect();
                let body = crate::search::encode_dict(name, &terms);
                snap.write_op(&Op::Search { db: db as u8, tag: super::op::search_tag::DICT_ADD, body: &body });
            }
        }
        self.snapshot = Some(snap);
        lsn
    }

    /// Whether a snapshot is running.
    pub fn snapshot_running(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Walks on until about `budget` bytes wait to be taken or the walk is
    /// over; true when it is over (then [`Keyspace::snapshot_take`] the rest
    /// and [`Keyspace::snapshot_end`]).
    pub fn snapshot_step(&mut self, budget: usize) -> bool {
        let Keyspace { snapshot, dbs, .. } = self;
        let Some(snap) = snapshot.as_mut() else { return true };
        while snap.db < DATABASES && snap.out.len() < budget {
            let db = snap.db;
            let d = &dbs[db];
            let phase = d.phase;
            snap.cursor = d.dict.scan(snap.cursor, SCAN_COUNT, |k, e| {
                if e.snapped.get() != phase {
                    e.snapped.set(phase);
                    snap.write(db, k, e);
                }
            });
            if snap.cursor == 0 {
                snap.db += 1;
            }
        }
        snap.db == DATABASES
    }

    /// The encoded entries written since the last call, and how many there are.
    pub fn snapshot_take(&mut self) -> (Vec<u8>, u32) {
        match self.snapshot.as_mut() {
            Some(s) => (std::mem::take(&mut s.out), std::mem::take(&mut s.entries)),
            None => (Vec::new(), 0),
        }
    }

    /// Ends the snapshot. If the walk did not finish (the checkpoint failed),
    /// marks every entry written, so the next snapshot starts from a clean
    /// phase. Returns the snapshot's LSN.
    pub fn snapshot_end(&mut self) -> Option<u64> {
        let snap = self.snapshot.take()?;
        if snap.db < DATABASES {
            for d in &self.dbs {
                for (_, e) in d.dict.iter() {
                    e.snapped.set(d.phase);
                }
            }
        }
        Some(snap.lsn)
    }

    /// Before `op` changes the keyspace: writes the old value of every
    /// entry it touches that the running snapshot has not written yet.
    pub(super) fn preserve(&mut self, op: &Op<'_>) {
        if self.snapshot.is_none() {
            return;
        }
        op.for_each_target(|t| match t {
            Target::Key(db, key) => self.preserve_key(db, key),
            Target::Db(db) => self.preserve_db(db),
            Target::All => (0..DATABASES as u8).for_each(|db| self.preserve_db(db)),
        });
    }

    fn preserve_key(&mut self, db: u8, key: &[u8]) {
        let Keyspace { snapshot, dbs, .. } = self;
        let (Some(snap), Some(d)) = (snapshot.as_mut(), dbs.get(db as usize)) else { return };
        if let Some(e) = d.dict.get(key) {
            if e.snapped.get() != d.phase {
                e.snapped.set(d.phase);
                snap.write(db as usize, key, e);
            }
        }
    }

    /// Writes every pending entry of a database (before FLUSHDB, FLUSHALL, SWAPDB).
    fn preserve_db(&mut self, db: u8) {
        let Keyspace { snapshot, dbs, .. } = self;
        let (Some(snap), Some(d)) = (snapshot.as_mut(), dbs.get(db as usize)) else { return };
        for (k, e) in d.dict.iter() {
            if e.snapped.get() != d.phase {
                e.snapped.set(d.phase);
                snap.write(db as usize, k, e);
            }
        }
    }

    /// Loads a chunk of `count` entries written by a snapshot, as of `time_ms`.
    pub fn load_snapshot_chunk(&mut self, payload: &[u8], count: u32, time_ms: u64) -> Result<(), DecodeError> {
        self.clock.observe(time_ms);
        let mut r = Reader::new(payload);
        let mut seen = 0u32;
        while r.finish().is_err() {
            let len = r.u32()?;
            let kind = if len & SEARCH_BIT != 0 { kinds::SEARCH } else { kinds::STORE };
            let op = Op::decode(kind, r.take((len & !SEARCH_BIT) as usize)?)?;
            check_dbs(&op)?;
            if let Op::Store { key, value, .. } = &op {
                if let super::Value::Cold(c) = **value {
                    *self.loaded_tier_refs.entry(c.seg).or_default() += (crate::tier::HEADER + key.len()) as u64 + c.len as u64;
                }
            }
            self.apply(&op, time_ms);
            seen += 1;
        }
        if seen != count {
            return Err(DecodeError::Invalid("a checkpoint chunk holds a different number of entries than its header says"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::keyspace::Change;
    use crate::keyspace::Value;

    fn set<'a>(key: &'a [u8], value: &'a [u8]) -> Op<'a> {
        Op::Set { db: 0, key, value, expire_ms: 0 }
    }

    /// Every key and value of db 0..16, sorted, as a comparable dump.
    fn dump(ks: &Keyspace) -> Vec<(usize, Vec<u8>, String)> {
        let mut out = Vec::new();
        for db in 0..DATABASES {
            ks.for_each(db, 0, |k, e| out.push((db, k.to_vec(), format!("{:?}/{}", e.value, e.expire_ms))));
        }
        out.sort();
        out
    }

    fn load(chunks: &[(Vec<u8>, u32)]) -> Keyspace {
        let mut ks = Keyspace::new(None);
        for (bytes, n) in chunks {
            ks.load_snapshot_chunk(bytes, *n, 1).unwrap();
        }
        ks
    }

    #[test]
    fn a_snapshot_is_the_state_at_its_start_despite_writes_during_the_walk() {
        let mut ks = Keyspace::new(None);
        for i in 0..2000u32 {
            ks.apply(&set(format!("k{i}").as_bytes(), b"old"), 1);
        }
        ks.apply(&Op::Coll { db: 0, key: b"list", change: Change::LPush { left: true, elems: vec![&b"a"[..], &b"b"[..]] } }, 1);
        ks.apply(&Op::Set { db: 3, key: b"other", value: b"x", expire_ms: 0 }, 1);
        let expected = dump(&ks);
        ks.snapshot_begin();
        let mut chunks = Vec::new();
        let mut round = 0u32;
        loop {
            let done = ks.snapshot_step(512);
            chunks.push(ks.snapshot_take());
            if done {
                break;
            }
            // Between slices, commands change keys the walk may or may not have passed.
            round += 1;
            let k = format!("k{}", (round * 37) % 2000);
            ks.apply(&set(k.as_bytes(), b"new"), 2);
            ks.apply(&Op::Del { db: 0, key: format!("k{}", (round * 91) % 2000).as_bytes() }, 2);
            ks.apply(&set(format!("born{round}").as_bytes(), b"new"), 2);
            ks.apply(&Op::Coll { db: 0, key: b"list", change: Change::LPush { left: true, elems: vec![&b"c"[..]] } }, 2);
            if round == 5 {
                ks.apply(&Op::SwapDb { a: 3, b: 4 }, 2);
            }
        }
        ks.snapshot_end();
        assert!(round > 5, "the walk took {round} slices");
        assert_eq!(dump(&load(&chunks)), expected);
        // The next snapshot sees the current state, new keys included.
        let now = dump(&ks);
        ks.snapshot_begin();
        while !ks.snapshot_step(usize::MAX) {}
        let all = ks.snapshot_take();
        ks.snapshot_end();
        assert_eq!(dump(&load(&[all])), now);
    }

    #[test]
    fn an_abandoned_snapshot_leaves_the_next_one_whole() {
        let mut ks = Keyspace::new(None);
        for i in 0..500u32 {
            ks.apply(&set(format!("k{i}").as_bytes(), b"v"), 1);
        }
        ks.snapshot_begin();
        ks.snapshot_step(100);
        ks.snapshot_end();
        let now = dump(&ks);
        ks.snapshot_begin();
        while !ks.snapshot_step(usize::MAX) {}
        let all = ks.snapshot_take();
        ks.snapshot_end();
        assert_eq!(all.1, 500);
        assert_eq!(dump(&load(&[all])), now);
    }

    #[test]
    fn flushall_during_a_snapshot_writes_what_it_removes_first() {
        let mut ks = Keyspace::new(None);
        for i in 0..300u32 {
            ks.apply(
                &Op::Store {
                    db: (i % 3) as u8,
                    key: format!("k{i}").as_bytes(),
                    value: Cow::Owned(Value::Str(b"v"[..].into())),
                    expire_ms: 0,
                },
                1,
            );
        }
        let expected = dump(&ks);
        ks.snapshot_begin();
        ks.snapshot_step(64);
        let mut chunks = vec![ks.snapshot_take()];
        ks.apply(&Op::FlushAll, 2);
        ks.apply(&set(b"after", b"v"), 2);
        while !ks.snapshot_step(usize::MAX) {}
        chunks.push(ks.snapshot_take());
        ks.snapshot_end();
        assert_eq!(dump(&load(&chunks)), expected);
    }

    #[test]
    fn dictionaries_and_suggestions_travel_in_a_snapshot() {
        let mut ks = Keyspace::new(None);
        let body = crate::search::encode_dict("d", &["foo", "bar"]);
        ks.apply(&Op::Search { db: 2, tag: super::super::op::search_tag::DICT_ADD, body: &body }, 1);
        let sug = Change::SugAdd { string: b"Hello", score: 2.0, payload: Some(b"p") };
        ks.apply(&Op::Coll { db: 0, key: b"ac", change: sug }, 1);
        ks.snapshot_begin();
        while !ks.snapshot_step(usize::MAX) {}
        let all = ks.snapshot_take();
        ks.snapshot_end();
        let back = load(&[all]);
        assert_eq!(back.search(2).dict("d").unwrap().iter().collect::<Vec<_>>(), ["bar", "foo"]);
        assert!(back.search(0).dict("d").is_none());
        assert_eq!(dump(&back), dump(&ks));
        let e = back.peek(0, b"ac", 1).unwrap();
        assert_eq!(e.value.type_name(), "trietype0");
        assert_eq!(e.value.heap_bytes(), ks.peek(0, b"ac", 1).unwrap().value.heap_bytes());
    }

    #[test]
    fn a_chunk_with_a_wrong_count_is_refused() {
        let mut ks = Keyspace::new(None);
        ks.apply(&set(b"a", b"1"), 1);
        ks.snapshot_begin();
        while !ks.snapshot_step(usize::MAX) {}
        let (bytes, n) = ks.snapshot_take();
        ks.snapshot_end();
        assert!(Keyspace::new(None).load_snapshot_chunk(&bytes, n + 1, 1).is_err());
        assert!(Keyspace::new(None).load_snapshot_chunk(&bytes[..bytes.len() - 1], n, 1).is_err());
    }
}
