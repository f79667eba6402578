//! The keyspace view: one shard's keys in 16 databases, their values and expiry.
//!
//! Reads go straight to the in-memory [`Dict`]. Every write is an [`Op`]:
//! [`Keyspace::write`] checks that the log can take it, applies it with
//! [`Keyspace::apply`] (the same function replay uses), then appends its
//! record. Expiry is lazy on access and active in [`Keyspace::expire_cycle`],
//! which pops an ordered index of deadlines, so expired keys are found
//! exactly rather than by sampling. Neither kind of expiry writes a record:
//! replay applies each record at its own recorded time, so a key that had
//! expired by then is absent on replay too. This module never touches files;
//! the server gives it the shard's [`Log`], or none for a pure cache.

pub mod op;

use std::collections::BTreeSet;

use crate::bytes::SmallBytes;
use crate::clock::Clock;
use crate::codec::{DecodeError, Writer};
use crate::dict::Dict;
use crate::log::{Log, LogError};
pub use op::Op;

/// Number of logical databases (`SELECT 0..15`).
pub const DATABASES: usize = 16;

/// A value. Further types join this enum as their views land.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string (binary-safe), inline when short.
    Str(SmallBytes),
}

impl Value {
    /// The name `TYPE` answers.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
        }
    }

    /// Heap bytes this value owns, for `MEMORY USAGE` and accounting.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::Str(s) => s.heap_bytes(),
        }
    }
}

/// One key's entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// Absolute expiry in Unix milliseconds, 0 for none.
    pub expire_ms: u64,
    /// Last access, in seconds since the Unix epoch (truncated to u32).
    pub access_s: u32,
    /// Logarithmic access counter, as Redis's LFU (starts at 5).
    pub freq: u8,
}

impl Entry {
    fn new(value: Value, expire_ms: u64, now_ms: u64) -> Entry {
        Entry { value, expire_ms, access_s: (now_ms / 1000) as u32, freq: LFU_INIT }
    }

    /// Whether the entry is expired at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_ms != 0 && self.expire_ms <= now_ms
    }

    /// Milliseconds left to live, or None without expiry.
    pub fn ttl_ms(&self, now_ms: u64) -> Option<u64> {
        (self.expire_ms != 0).then(|| self.expire_ms.saturating_sub(now_ms))
    }

    /// Seconds since last access.
    pub fn idle_s(&self, now_ms: u64) -> u64 {
        (now_ms / 1000).saturating_sub(self.access_s as u64)
    }

    fn touch(&mut self, now_ms: u64) {
        self.access_s = (now_ms / 1000) as u32;
        // Redis's LFULogIncr with lfu-log-factor 10.
        if self.freq < 255 {
            let base = self.freq.saturating_sub(LFU_INIT) as f64;
            let p = 1.0 / (base * 10.0 + 1.0);
            if rand::random::<f64>() < p {
                self.freq += 1;
            }
        }
    }
}

const LFU_INIT: u8 = 5;

/// Counters for INFO.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyspaceStats {
    /// Keys removed because their TTL passed.
    pub expired_keys: u64,
    /// Reads that found their key.
    pub hits: u64,
    /// Reads that did not.
    pub misses: u64,
}

/// Why a write was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The log refused it; nothing changed.
    #[error(transparent)]
    Log(#[from] LogError),
}

#[derive(Default)]
struct Db {
    dict: Dict<Entry>,
    /// (deadline, key) for every key with an expiry.
    expires: BTreeSet<(u64, Box<[u8]>)>,
}

impl Db {
    fn new(seed: u64) -> Db {
        Db { dict: Dict::new(seed), expires: BTreeSet::new() }
    }

    fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let e = self.dict.remove(key)?;
        if e.expire_ms != 0 {
            self.expires.remove(&(e.expire_ms, Box::from(key)));
        }
        Some(e)
    }

    fn insert(&mut self, key: &[u8], entry: Entry) {
        let deadline = entry.expire_ms;
        if let Some(old) = self.dict.insert(key, entry) {
            if old.expire_ms != 0 && old.expire_ms != deadline {
                self.expires.remove(&(old.expire_ms, Box::from(key)));
            }
        }
        if deadline != 0 {
            self.expires.insert((deadline, Box::from(key)));
        }
    }

    fn set_expire(&mut self, key: &[u8], expire_ms: u64) {
        let Some(e) = self.dict.get_mut(key) else { return };
        let old = std::mem::replace(&mut e.expire_ms, expire_ms);
        if old == expire_ms {
            return;
        }
        if old != 0 {
            self.expires.remove(&(old, Box::from(key)));
        }
        if expire_ms != 0 {
            self.expires.insert((expire_ms, Box::from(key)));
        }
    }

    /// Removes the key if it is expired at `now`; true if it was.
    fn expire_if_needed(&mut self, key: &[u8], now: u64) -> bool {
        let expired = self.dict.get(key).is_some_and(|e| e.is_expired(now));
        if expired {
            self.remove(key);
        }
        expired
    }

    fn clear(&mut self) {
        self.dict.clear();
        self.expires.clear();
    }
}

/// One shard's keyspace.
pub struct Keyspace {
    dbs: Vec<Db>,
    log: Option<Log>,
    clock: Clock,
    stats: KeyspaceStats,
    scratch: Vec<u8>,
}

impl Keyspace {
    /// An empty keyspace writing to `log` (None: no persistence).
    pub fn new(log: Option<Log>) -> Keyspace {
        let seed: u64 = rand::random();
        Keyspace {
            dbs: (0..DATABASES).map(|i| Db::new(seed ^ i as u64)).collect(),
            log,
            clock: Clock::default(),
            stats: KeyspaceStats::default(),
            scratch: Vec::new(),
        }
    }

    /// Attaches the log once recovery is done.
    pub fn set_log(&mut self, log: Option<Log>) {
        self.log = log;
    }

    /// The shard's log, if persistence is on.
    pub fn log(&self) -> Option<&Log> {
        self.log.as_ref()
    }

    /// Unix milliseconds for the command being run (monotonic per shard).
    pub fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Counters.
    pub fn stats(&self) -> KeyspaceStats {
        self.stats
    }

    /// Resets hit/miss/expired counters (CONFIG RESETSTAT).
    pub fn reset_stats(&mut self) {
        self.stats = KeyspaceStats::default();
    }

    /// Looks a key up for a command: expired keys are removed first, the access is recorded.
    pub fn lookup(&mut self, db: usize, key: &[u8], now: u64) -> Option<&mut Entry> {
        let d = &mut self.dbs[db];
        if d.expire_if_needed(key, now) {
            self.stats.expired_keys += 1;
        }
        match d.dict.get_mut(key) {
            Some(e) => {
                self.stats.hits += 1;
                e.touch(now);
                Some(e)
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Looks a key up without recording an access (OBJECT, TYPE-like inspection, writes).
    pub fn peek(&self, db: usize, key: &[u8], now: u64) -> Option<&Entry> {
        self.dbs[db].dict.get(key).filter(|e| !e.is_expired(now))
    }

    /// Whether the key exists (not expired) at `now`.
    pub fn contains(&self, db: usize, key: &[u8], now: u64) -> bool {
        self.peek(db, key, now).is_some()
    }

    /// Applies `op` and logs it. Nothing changes if the log refuses it.
    pub fn write(&mut self, op: Op<'_>, now: u64) -> Result<(), WriteError> {
        if let Some(log) = &self.log {
            let len = op.encoded_len();
            log.append_with(op.kind(), 0, now, len, |buf| op.encode(&mut Writer::new(buf)))?;
        }
        self.apply(&op, now);
        Ok(())
    }

    /// Replays one record of this view.
    pub fn replay(&mut self, kind: u8, payload: &[u8], time_ms: u64) -> Result<(), DecodeError> {
        let op = Op::decode(kind, payload)?;
        if let Op::SwapDb { a, b } | Op::Copy { src_db: a, dst_db: b, .. } | Op::Move { db: a, dst_db: b, .. } = op {
            if a as usize >= DATABASES || b as usize >= DATABASES {
                return Err(DecodeError::Invalid("database index out of range"));
            }
        }
        if op_db(&op).is_some_and(|db| db as usize >= DATABASES) {
            return Err(DecodeError::Invalid("database index out of range"));
        }
        self.clock.observe(time_ms);
        self.apply(&op, time_ms);
        Ok(())
    }

    /// Applies an op to memory. Live and replay both come here.
    pub fn apply(&mut self, op: &Op<'_>, now: u64) {
        match *op {
            Op::Set { db, key, value, expire_ms } => {
                let d = self.db_mut(db, &[key], now);
                d.insert(key, Entry::new(Value::Str(value.into()), expire_ms, now));
            }
            Op::Del { db, key } => {
                self.db_mut(db, &[key], now).remove(key);
            }
            Op::Expire { db, key, expire_ms } => {
                let d = self.db_mut(db, &[key], now);
                if expire_ms != 0 && expire_ms <= now {
                    d.remove(key);
                } else {
                    d.set_expire(key, expire_ms);
                }
            }
            Op::Append { db, key, data } => {
                let d = self.db_mut(db, &[key], now);
                let (old, expire) = match d.dict.get(key) {
                    Some(Entry { value: Value::Str(s), expire_ms, .. }) => (&s[..], *expire_ms),
                    None => (&[][..], 0),
                };
                let mut v = Vec::with_capacity(old.len() + data.len());
                v.extend_from_slice(old);
                v.extend_from_slice(data);
                d.insert(key, Entry::new(Value::Str(v.into()), expire, now));
            }
            Op::SetRange { db, key, offset, data } => {
                let d = self.db_mut(db, &[key], now);
                let (mut v, expire) = match d.dict.get(key) {
                    Some(Entry { value: Value::Str(s), expire_ms, .. }) => (s.to_vec(), *expire_ms),
                    None => (Vec::new(), 0),
                };
                let off = offset as usize;
                if v.len() < off + data.len() {
                    v.resize(off + data.len(), 0);
                }
                v[off..off + data.len()].copy_from_slice(data);
                d.insert(key, Entry::new(Value::Str(v.into()), expire, now));
            }
            Op::MSet { db, ref pairs } => {
                let d = &mut self.dbs[db as usize];
                for (k, v) in pairs {
                    d.remove(k);
                    d.insert(k, Entry::new(Value::Str((*v).into()), 0, now));
                }
            }
            Op::Rename { db, src, dst } => {
                let d = self.db_mut(db, &[src, dst], now);
                if let Some(e) = d.remove(src) {
                    d.remove(dst);
                    d.insert(dst, e);
                }
            }
            Op::Copy { src_db, src, dst_db, dst } => {
                self.dbs[src_db as usize].expire_if_needed(src, now);
                self.dbs[dst_db as usize].expire_if_needed(dst, now);
                if let Some(e) = self.dbs[src_db as usize].dict.get(src).cloned() {
                    let d = &mut self.dbs[dst_db as usize];
                    d.remove(dst);
                    d.insert(dst, Entry::new(e.value, e.expire_ms, now));
                }
            }
            Op::Move { db, key, dst_db } => {
                self.dbs[db as usize].expire_if_needed(key, now);
                if let Some(e) = self.dbs[db as usize].remove(key) {
                    let d = &mut self.dbs[dst_db as usize];
                    d.expire_if_needed(key, now);
                    d.insert(key, e);
                }
            }
            Op::SwapDb { a, b } => self.dbs.swap(a as usize, b as usize),
            Op::FlushDb { db } => self.dbs[db as usize].clear(),
            Op::FlushAll => self.dbs.iter_mut().for_each(Db::clear),
        }
    }

    fn db_mut(&mut self, db: u8, keys: &[&[u8]], now: u64) -> &mut Db {
        let d = &mut self.dbs[db as usize];
        for k in keys {
            if d.expire_if_needed(k, now) {
                self.stats.expired_keys += 1;
            }
        }
        d
    }

    /// Keys in a database (expired keys not yet removed may be counted, as in Redis).
    pub fn dbsize(&self, db: usize) -> usize {
        self.dbs[db].dict.len()
    }

    /// Keys with an expiry in a database.
    pub fn expires_count(&self, db: usize) -> usize {
        self.dbs[db].expires.len()
    }

    /// One SCAN step over a database; expired keys are skipped.
    pub fn scan(&self, db: usize, cursor: u64, count: usize, now: u64, mut f: impl FnMut(&[u8], &Entry)) -> u64 {
        self.dbs[db].dict.scan(cursor, count, |k, e| {
            if !e.is_expired(now) {
                f(k, e)
            }
        })
    }

    /// Every live key of a database.
    pub fn for_each(&self, db: usize, now: u64, mut f: impl FnMut(&[u8], &Entry)) {
        for (k, e) in self.dbs[db].dict.iter() {
            if !e.is_expired(now) {
                f(k, e);
            }
        }
    }

    /// A random live key.
    pub fn random_key(&mut self, db: usize, now: u64) -> Option<Vec<u8>> {
        let mut rng = || rand::random::<u64>();
        for _ in 0..100 {
            let (k, e) = self.dbs[db].dict.random_entry(&mut rng)?;
            if !e.is_expired(now) {
                return Some(k.to_vec());
            }
            let k = k.to_vec();
            self.dbs[db].remove(&k);
            self.stats.expired_keys += 1;
        }
        None
    }

    /// Removes up to `budget` expired keys across databases; returns how many.
    pub fn expire_cycle(&mut self, now: u64, budget: usize) -> usize {
        let mut done = 0;
        for d in &mut self.dbs {
            while done < budget {
                let Some((deadline, key)) = d.expires.first().cloned() else { break };
                if deadline > now {
                    break;
                }
                d.expires.pop_first();
                let stale = d.dict.get(&key).is_some_and(|e| e.expire_ms == deadline);
                if stale {
                    d.dict.remove(&key);
                    done += 1;
                }
            }
        }
        self.stats.expired_keys += done as u64;
        done
    }

    /// Bytes held by the hash tables: buckets, nodes and key bytes (not values).
    pub fn index_bytes(&self) -> usize {
        self.dbs.iter().map(|d| d.dict.heap_bytes()).sum()
    }

    /// Scratch space for callers that build values (INCR and friends).
    pub fn scratch(&mut self) -> &mut Vec<u8> {
        self.scratch.clear();
        &mut self.scratch
    }
}

fn op_db(op: &Op<'_>) -> Option<u8> {
    match op {
        Op::Set { db, .. }
        | Op::Del { db, .. }
        | Op::Expire { db, .. }
        | Op::Append { db, .. }
        | Op::SetRange { db, .. }
        | Op::MSet { db, .. }
        | Op::Rename { db, .. }
        | Op::Move { db, .. }
        | Op::FlushDb { db } => Some(*db),
        Op::Copy { src_db, .. } => Some(*src_db),
        Op::SwapDb { .. } | Op::FlushAll => None,
    }
}
