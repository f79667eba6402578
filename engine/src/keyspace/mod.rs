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

pub mod change;
pub mod cold;
pub mod evict;
pub mod hash;
pub mod idmp;
pub mod list;
pub mod op;
pub mod queue;
pub mod set;
pub mod snapshot;
pub mod stream;
pub mod sug;
pub mod tx;
pub mod value;
pub mod zset;

use std::collections::BTreeSet;

use crate::bytes::SmallBytes;
use crate::clock::Clock;
use crate::codec::{DecodeError, Writer};
use crate::dict::Dict;
use crate::log::{Log, LogError};
pub use change::Change;
pub use op::Op;
pub use value::{Type, Value};

/// Number of logical databases (`SELECT 0..15`).
pub const DATABASES: usize = 16;

/// The longest string value: Redis's default `proto-max-bulk-len`, and the
/// most the server lets it be configured to. Replay refuses a record that
/// would grow a string past it, so a damaged record cannot make recovery
/// allocate what its numbers say.
pub const MAX_STRING_LEN: usize = 512 << 20;

/// One key's entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// Absolute expiry in Unix milliseconds, 0 for none.
    pub expire_ms: u64,
    /// Last access, in [`evict::TICK_MS`] ticks of Unix time (wrapping u32; see [`evict::tick`]).
    pub access: u32,
    /// Logarithmic access counter, as Redis's LFU (starts at 5).
    pub freq: u8,
    /// Whether the running snapshot has written this entry, relative to its
    /// database's `phase` (see [`snapshot`]).
    snapped: std::cell::Cell<bool>,
}

impl Entry {
    fn new(value: Value, expire_ms: u64, now_ms: u64) -> Entry {
        Entry { value, expire_ms, access: evict::tick(now_ms), freq: evict::LFU_INIT, snapped: Default::default() }
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
        evict::idle_ms(self, now_ms) / 1000
    }
}

/// Counters for INFO.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyspaceStats {
    /// Keys removed because their TTL passed.
    pub expired_keys: u64,
    /// Reads that found their key.
    pub hits: u64,
    /// Reads that did not.
    pub misses: u64,
    /// Keys evicted to fit the memory budget.
    pub evicted_keys: u64,
    /// Values moved to the cold tier to fit the memory budget (`tiered`).
    pub tiered_out: u64,
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
    /// Bytes of values and expiry keys, kept by every change (memory accounting).
    bytes: evict::DbBytes,
    /// The value of [`Entry::snapped`] that means "written by the running snapshot".
    phase: bool,
    /// Time series by label (kept in step by `insert`, `remove`, `clear` and label changes).
    labels: crate::series::index::LabelIndex,
    /// Search indexes over the database's hashes (kept in step by `insert`, `remove` and hash changes).
    search: crate::search::Indexes,
}

/// The labels of a time series (None for other values).
fn series_labels(v: &Value) -> Option<&crate::series::Labels> {
    match v {
        Value::Series(s) => Some(s.labels()),
        _ => None,
    }
}

impl Db {
    fn new(seed: u64) -> Db {
        Db {
            dict: Dict::new(seed),
            expires: BTreeSet::new(),
            bytes: Default::default(),
            phase: false,
            labels: Default::default(),
            search: Default::default(),
        }
    }

    fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let e = self.dict.remove(key)?;
        if let Some(l) = series_labels(&e.value) {
            self.labels.remove(key, l);
        }
        if !self.search.is_empty() {
            self.search.on_change(key, None);
        }
        self.bytes.values -= e.value.heap_bytes();
        self.bytes.cold -= usize::from(matches!(e.value, Value::Cold(_)));
        if e.expire_ms != 0 {
            self.unindex_expire(e.expire_ms, key);
        }
        Some(e)
    }

    fn insert(&mut self, key: &[u8], entry: Entry) {
        // Not in the state a running snapshot captures: born written.
        entry.snapped.set(self.phase);
        let deadline = entry.expire_ms;
        self.bytes.values += entry.value.heap_bytes();
        self.bytes.cold += usize::from(matches!(entry.value, Value::Cold(_)));
        let labels = series_labels(&entry.value).cloned();
        if let Some(old) = self.dict.insert(key, entry) {
            if let Some(l) = series_labels(&old.value) {
                self.labels.remove(key, l);
            }
            self.bytes.values -= old.value.heap_bytes();
            self.bytes.cold -= usize::from(matches!(old.value, Value::Cold(_)));
            if old.expire_ms != 0 && old.expire_ms != deadline {
                self.unindex_expire(old.expire_ms, key);
            }
        }
        if let Some(l) = labels {
            self.labels.add(key, &l);
        }
        if !self.search.is_empty() {
            self.search.on_change(key, self.dict.get(key).map(|e| &e.value));
        }
        if deadline != 0 {
            self.index_expire(deadline, key);
        }
    }

    /// Swaps a string's value between its in-memory and its cold form
    /// (the same data: no index, label or expiry changes).
    fn replace_value(&mut self, key: &[u8], value: Value) {
        let Some(e) = self.dict.get_mut(key) else { return };
        debug_assert_eq!(e.value.kind(), value.kind());
        let old = std::mem::replace(&mut e.value, value);
        self.bytes.values = self.bytes.values + e.value.heap_bytes() - old.heap_bytes();
        self.bytes.cold = self.bytes.cold + usize::from(matches!(e.value, Value::Cold(_))) - usize::from(matches!(old, Value::Cold(_)));
    }

    fn index_expire(&mut self, deadline: u64, key: &[u8]) {
        if self.expires.insert((deadline, Box::from(key))) {
            self.bytes.expire_keys += key.len();
        }
    }

    fn unindex_expire(&mut self, deadline: u64, key: &[u8]) {
        if self.expires.remove(&(deadline, Box::from(key))) {
            self.bytes.expire_keys -= key.len();
        }
    }

    fn set_expire(&mut self, key: &[u8], expire_ms: u64) {
        let Some(e) = self.dict.get_mut(key) else { return };
        let old = std::mem::replace(&mut e.expire_ms, expire_ms);
        if old == expire_ms {
            return;
        }
        if old != 0 {
            self.unindex_expire(old, key);
        }
        if expire_ms != 0 {
            self.index_expire(expire_ms, key);
        }
    }

    /// Removes the key if it is expired at `now`; true if it was. Every key
    /// with a TTL is in `expires` ([`Db::insert`], [`Db::set_expire`] and
    /// [`Db::remove`] keep it so), so without one no probe is needed: a write
    /// to a database of keys without TTLs looks its key up once, not twice.
    fn expire_if_needed(&mut self, key: &[u8], now: u64) -> bool {
        if self.expires.is_empty() {
            debug_assert!(self.dict.get(key).is_none_or(|e| e.expire_ms == 0), "a key with a TTL is missing from the expiry index");
            return false;
        }
        let expired = self.dict.get(key).is_some_and(|e| e.is_expired(now));
        if expired {
            self.remove(key);
        }
        expired
    }

    fn clear(&mut self) {
        self.labels.clear();
        // As in RediSearch, emptying a database drops its indexes too.
        self.search = Default::default();
        self.dict.clear();
        self.expires.clear();
        self.bytes = Default::default();
    }
}

/// One shard's keyspace.
pub struct Keyspace {
    dbs: Vec<Db>,
    log: Option<Log>,
    clock: Clock,
    stats: KeyspaceStats,
    scratch: Vec<u8>,
    /// Open [`Keyspace::begin_group`] calls.
    group_depth: u32,
    /// Ops of the open group, framed as in a GROUP record (kind, length, payload).
    group: Vec<u8>,
    /// Ops in `group`.
    group_ops: u32,
    /// Set by [`Keyspace::tag_group`]: the open group is a cross-shard transaction's part.
    group_tag: Option<tx::TxTag>,
    /// Cross-shard transactions whose parts replay skips (recovery found them incomplete).
    tx_skip: std::collections::HashSet<u64>,
    /// What replay found of cross-shard transactions.
    tx_recovered: tx::Recovered,
    /// Keys someone waits on (WATCH, blocking pops).
    interest: std::collections::HashMap<(u8, SmallBytes), Interest>,
    /// Keys with blocked clients that were written since the last [`Keyspace::take_ready`].
    ready: Vec<(u8, SmallBytes)>,
    /// Bumped on every write to a key of interest.
    touch_seq: u64,
    /// Which [`KeyEvent`]s to record (keyspace notifications); none on replay.
    capture: Capture,
    /// Recorded events, drained by [`Keyspace::take_events`].
    events: Vec<KeyEvent>,
    /// Memory budget, policy and eviction pool ([`evict`]).
    mem: evict::Memory,
    /// The running snapshot, if any.
    snapshot: Option<snapshot::Snapshot>,
    /// Where cold string values go under the `tiered` policy ([`cold`]).
    tier: Option<crate::tier::Tier>,
    /// Tier segments (and live bytes) a loaded checkpoint referred to, until [`Keyspace::set_tier`].
    loaded_tier_refs: std::collections::BTreeMap<u32, u64>,
}

/// Which key events the keyspace records for notifications.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Capture {
    /// Keys removed because their TTL passed.
    pub expired: bool,
    /// Reads of missing keys.
    pub misses: bool,
    /// Keys evicted for memory.
    pub evicted: bool,
}

/// Something that happened to a key without a command writing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyEventKind {
    /// The key's TTL passed and it was removed.
    Expired,
    /// A read found no such key.
    Miss,
    /// The key was evicted to fit the memory budget.
    Evicted,
}

/// A recorded [`KeyEventKind`] for one key.
#[derive(Debug, Clone)]
pub struct KeyEvent {
    /// What happened.
    pub kind: KeyEventKind,
    /// Database.
    pub db: u8,
    /// Key.
    pub key: SmallBytes,
}

/// Who waits on a key.
#[derive(Debug, Default, Clone, Copy)]
struct Interest {
    /// WATCHes on the key.
    watchers: u32,
    /// Clients blocked on the key.
    blocked: u32,
    /// `touch_seq` at the key's last change.
    version: u64,
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
            group_depth: 0,
            group: Vec::new(),
            group_ops: 0,
            group_tag: None,
            tx_skip: Default::default(),
            tx_recovered: Default::default(),
            interest: Default::default(),
            ready: Vec::new(),
            touch_seq: 0,
            capture: Capture::default(),
            events: Vec::new(),
            mem: Default::default(),
            snapshot: None,
            tier: None,
            loaded_tier_refs: Default::default(),
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

    /// Starts or ends a run of commands that share clock readings ([`Clock`]).
    pub fn clock_run(&self, on: bool) {
        self.clock.run(on);
    }

    /// In a run, makes the next [`Keyspace::now`] read the wall clock (after a command that may have been slow).
    pub fn clock_fresh(&self) {
        self.clock.fresh();
    }

    /// Counters.
    pub fn stats(&self) -> KeyspaceStats {
        self.stats
    }

    /// Resets hit/miss/expired counters (CONFIG RESETSTAT).
    pub fn reset_stats(&mut self) {
        self.stats = KeyspaceStats::default();
    }

    /// Looks a key up for a command: expired keys are removed first, the
    /// access is recorded, and a cold string is read back into memory.
    pub fn lookup(&mut self, db: usize, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.lookup_with(db, key, now, true)
    }

    /// [`Keyspace::lookup`] for commands that need the key's type, TTL or
    /// existence but not its bytes: a cold string stays cold.
    pub fn lookup_meta(&mut self, db: usize, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.lookup_with(db, key, now, false)
    }

    fn lookup_with(&mut self, db: usize, key: &[u8], now: u64, resolve: bool) -> Option<&mut Entry> {
        let d = &self.dbs[db];
        if d.expires.is_empty() && (!resolve || d.bytes.cold == 0) {
            // No key here has a TTL and none needs reading back: one probe serves.
            let limits = self.mem.limits();
            if let Some(e) = self.dbs[db].dict.get_mut(key) {
                self.stats.hits += 1;
                evict::touch(e, now, &limits);
                return Some(e);
            }
        } else {
            // One probe classifies the key; a hit pays a second for the mutable
            // borrow (returning it from the first would need Polonius).
            let live = match self.dbs[db].dict.get(key) {
                Some(e) if e.is_expired(now) => {
                    self.dbs[db].remove(key);
                    self.expired(db as u8, key);
                    false
                }
                found => found.is_some(),
            };
            if live {
                if resolve {
                    let _ = self.resident_or_log(db, key);
                }
                let limits = self.mem.limits();
                let e = self.dbs[db].dict.get_mut(key)?;
                self.stats.hits += 1;
                evict::touch(e, now, &limits);
                return Some(e);
            }
        }
        self.stats.misses += 1;
        if self.capture.misses {
            self.events.push(KeyEvent { kind: KeyEventKind::Miss, db: db as u8, key: SmallBytes::new(key) });
        }
        None
    }

    /// Removes a key whose TTL passed (counting it, waking WATCHers, recording the event); true if it did.
    fn expire_if_needed(&mut self, db: u8, key: &[u8], now: u64) -> bool {
        if !self.dbs[db as usize].expire_if_needed(key, now) {
            return false;
        }
        self.expired(db, key);
        true
    }

    fn expired(&mut self, db: u8, key: &[u8]) {
        self.stats.expired_keys += 1;
        self.touched(db, key);
        if self.capture.expired {
            self.events.push(KeyEvent { kind: KeyEventKind::Expired, db, key: SmallBytes::new(key) });
        }
    }

    /// Chooses which key events to record (keyspace notifications).
    pub fn set_capture(&mut self, capture: Capture) {
        self.capture = capture;
        if capture == Capture::default() {
            self.events.clear();
        }
    }

    /// Events recorded since the last call.
    pub fn take_events(&mut self) -> Vec<KeyEvent> {
        std::mem::take(&mut self.events)
    }

    /// Whether events wait to be taken.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
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
        self.write_ref(&op, now)
    }

    /// [`Keyspace::write`] of a borrowed op.
    pub fn write_ref(&mut self, op: &Op<'_>, now: u64) -> Result<(), WriteError> {
        if let Some(log) = &self.log {
            let len = op.encoded_len();
            if self.group_depth > 0 {
                log.check_writable()?;
                let at = self.group.len();
                self.group.resize(at + 5 + len, 0);
                let mut w = Writer::new(&mut self.group[at..]);
                w.u8(op.kind());
                w.u32(len as u32);
                op.encode(&mut w);
                self.group_ops += 1;
            } else {
                log.append_with(op.kind(), 0, now, len, |buf| op.encode(&mut Writer::new(buf)))?;
            }
        }
        self.apply(op, now);
        Ok(())
    }

    /// Starts an atomic group: the writes until the matching
    /// [`Keyspace::end_group`] go to the log as one record (a transaction,
    /// a script, a command that changes two keys). Groups nest; the
    /// outermost one writes. Fails, changing nothing, if the log refuses writes.
    pub fn begin_group(&mut self) -> Result<(), WriteError> {
        if let Some(log) = &self.log {
            log.check_writable()?;
        }
        self.group_depth += 1;
        Ok(())
    }

    /// Ends a group; the outermost end logs its writes as one GROUP record
    /// (or the lone op as itself). A group larger than a segment is logged
    /// op by op instead, in order: still durable, but a crash in the middle
    /// of writing it may keep a prefix. An error here means the log failed
    /// after the ops were applied in memory; the shard then refuses writes
    /// until a restart recovers what the disk holds.
    pub fn end_group(&mut self, now: u64) -> Result<(), WriteError> {
        debug_assert!(self.group_depth > 0, "end_group without begin_group");
        self.group_depth = self.group_depth.saturating_sub(1);
        if self.group_depth > 0 {
            return Ok(());
        }
        let tag = self.group_tag.take();
        // A tagged part is logged even when empty: recovery looks for it on every shard of its tag.
        if self.group_ops == 0 && tag.is_none() {
            return Ok(());
        }
        let body = std::mem::take(&mut self.group);
        let ops = std::mem::take(&mut self.group_ops);
        let Some(log) = &self.log else { return Ok(()) };
        let result = match &tag {
            None if ops == 1 => log.append(body[0], 0, now, &body[5..]).map(drop),
            None => log
                .append_with(op::kinds::GROUP, 0, now, 4 + body.len(), |buf| {
                    buf[..4].copy_from_slice(&ops.to_le_bytes());
                    buf[4..].copy_from_slice(&body);
                })
                .map(drop),
            Some(tag) => {
                let at = tag.encoded_len();
                log.append_with(op::kinds::TX, 0, now, at + 4 + body.len(), |buf| {
                    tag.encode(&mut Writer::new(&mut buf[..at]));
                    buf[at..at + 4].copy_from_slice(&ops.to_le_bytes());
                    buf[at + 4..].copy_from_slice(&body);
                })
                .map(drop)
            }
        };
        // Too large for one record: op by op. A crash may then keep a prefix (and a tagged part loses its tag).
        let result = match result {
            Err(LogError::TooLarge { .. }) => Self::append_framed(log, &body, now),
            other => other,
        };
        self.group = body;
        self.group.clear();
        result.map_err(WriteError::from)
    }

    /// Marks the open group as one shard's part of a cross-shard transaction:
    /// its end logs a TX record carrying `tag` (see [`tx`]).
    pub fn tag_group(&mut self, tag: tx::TxTag) {
        debug_assert!(self.group_depth > 0, "tag_group outside a group");
        self.group_tag = Some(tag);
    }

    /// Logs that recovery dropped cross-shard transaction `id`, so later recoveries drop it too.
    pub fn log_tx_abort(&mut self, id: u64, now: u64) -> Result<(), WriteError> {
        let Some(log) = &self.log else { return Ok(()) };
        log.append(op::kinds::TX, 0, now, &tx::abort_payload(id)).map(drop).map_err(WriteError::from)
    }

    /// Sets the cross-shard transactions whose parts replay skips.
    pub fn skip_tx(&mut self, ids: std::collections::HashSet<u64>) {
        self.tx_skip = ids;
    }

    /// What replay found of cross-shard transactions (the checkpoint epoch is the caller's to fill in).
    pub fn take_tx_recovered(&mut self) -> tx::Recovered {
        std::mem::take(&mut self.tx_recovered)
    }

    fn append_framed(log: &Log, mut body: &[u8], now: u64) -> Result<(), LogError> {
        while body.len() >= 5 {
            let kind = body[0];
            let len = u32::from_le_bytes([body[1], body[2], body[3], body[4]]) as usize;
            log.append(kind, 0, now, &body[5..5 + len])?;
            body = &body[5 + len..];
        }
        Ok(())
    }

    /// Registers a WATCH on a key; returns its current version.
    pub fn watch(&mut self, db: u8, key: &[u8]) -> u64 {
        let i = self.interest.entry((db, SmallBytes::new(key))).or_default();
        i.watchers += 1;
        i.version
    }

    /// Drops a WATCH registered with [`Keyspace::watch`].
    pub fn unwatch(&mut self, db: u8, key: &[u8]) {
        self.lose_interest(db, key, |i| i.watchers = i.watchers.saturating_sub(1));
    }

    /// The version of a watched key (changes whenever the key is written or expires).
    pub fn version(&self, db: u8, key: &[u8]) -> u64 {
        self.interest.get(&(db, SmallBytes::new(key))).map_or(u64::MAX, |i| i.version)
    }

    /// Counts a client blocked on a key, so writes to it are reported by [`Keyspace::take_ready`].
    pub fn block_on(&mut self, db: u8, key: &[u8]) {
        self.interest.entry((db, SmallBytes::new(key))).or_default().blocked += 1;
    }

    /// Undoes one [`Keyspace::block_on`].
    pub fn unblock(&mut self, db: u8, key: &[u8]) {
        self.lose_interest(db, key, |i| i.blocked = i.blocked.saturating_sub(1));
    }

    fn lose_interest(&mut self, db: u8, key: &[u8], f: impl FnOnce(&mut Interest)) {
        let k = (db, SmallBytes::new(key));
        if let Some(i) = self.interest.get_mut(&k) {
            f(i);
            if i.watchers == 0 && i.blocked == 0 {
                self.interest.remove(&k);
            }
        }
    }

    /// Keys with blocked clients written since the last call, in write order, each once.
    pub fn take_ready(&mut self) -> Vec<(u8, SmallBytes)> {
        std::mem::take(&mut self.ready)
    }

    /// Whether any key has blocked clients that a write made ready.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Notes a change to a key for WATCH and blocked clients.
    fn touched(&mut self, db: u8, key: &[u8]) {
        if self.interest.is_empty() {
            return;
        }
        let k = (db, SmallBytes::new(key));
        if let Some(i) = self.interest.get_mut(&k) {
            self.touch_seq += 1;
            i.version = self.touch_seq;
            if i.blocked > 0 && !self.ready.contains(&k) {
                self.ready.push(k);
            }
        }
    }

    /// Notes a change to every key of interest in `db` (None: every database).
    fn touched_db(&mut self, db: Option<u8>) {
        let keys: Vec<(u8, SmallBytes)> = self.interest.keys().filter(|(d, _)| db.is_none_or(|x| x == *d)).cloned().collect();
        for (d, k) in keys {
            self.touched(d, &k);
        }
    }

    /// Replays one record of this view.
    pub fn replay(&mut self, kind: u8, payload: &[u8], time_ms: u64) -> Result<(), DecodeError> {
        if kind == op::kinds::TX {
            match tx::decode(payload)? {
                tx::TxRecord::Part(tag, _) => {
                    let skip = self.tx_skip.contains(&tag.id);
                    self.tx_recovered.parts.push(tag);
                    if skip {
                        return Op::decode(kind, payload).map(drop);
                    }
                }
                tx::TxRecord::Abort(id) => self.tx_recovered.aborts.push(id),
            }
        }
        let op = Op::decode(kind, payload)?;
        check_dbs(&op)?;
        self.resident_for(&op).map_err(|e| DecodeError::Unreadable(e.to_string()))?;
        self.clock.observe(time_ms);
        self.apply(&op, time_ms);
        Ok(())
    }

    /// Applies an op to memory. Live and replay both come here.
    pub fn apply(&mut self, op: &Op<'_>, now: u64) {
        self.preserve(op);
        self.note_touches(op);
        self.apply_op(op, now);
    }

    fn note_touches(&mut self, op: &Op<'_>) {
        if self.interest.is_empty() {
            return;
        }
        op.for_each_target(|t| match t {
            op::Target::Key(db, key) => self.touched(db, key),
            op::Target::Db(db) => self.touched_db(Some(db)),
            op::Target::All => self.touched_db(None),
        });
    }

    fn apply_op(&mut self, op: &Op<'_>, now: u64) {
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
                if !self.resident_or_log(db as usize, key) {
                    return;
                }
                let d = self.db_mut(db, &[key], now);
                let (old, expire) = match d.dict.get(key) {
                    Some(Entry { value: Value::Str(s), expire_ms, .. }) => (&s[..], *expire_ms),
                    _ => (&[][..], 0),
                };
                let mut v = Vec::with_capacity(old.len() + data.len());
                v.extend_from_slice(old);
                v.extend_from_slice(data);
                d.insert(key, Entry::new(Value::Str(v.into()), expire, now));
            }
            Op::SetRange { db, key, offset, data } => {
                if !self.resident_or_log(db as usize, key) {
                    return;
                }
                let d = self.db_mut(db, &[key], now);
                let (mut v, expire) = match d.dict.get(key) {
                    Some(Entry { value: Value::Str(s), expire_ms, .. }) => (s.to_vec(), *expire_ms),
                    _ => (Vec::new(), 0),
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
                // A cold record is checked against its key and database: it moves hot.
                if !self.resident_or_log(db as usize, src) {
                    return;
                }
                let d = self.db_mut(db, &[src, dst], now);
                if let Some(e) = d.remove(src) {
                    d.remove(dst);
                    d.insert(dst, e);
                }
            }
            Op::Copy { src_db, src, dst_db, dst } => {
                if !self.resident_or_log(src_db as usize, src) {
                    return;
                }
                self.expire_if_needed(src_db, src, now);
                self.expire_if_needed(dst_db, dst, now);
                if let Some(e) = self.dbs[src_db as usize].dict.get(src).cloned() {
                    let d = &mut self.dbs[dst_db as usize];
                    d.remove(dst);
                    d.insert(dst, Entry::new(e.value, e.expire_ms, now));
                }
            }
            Op::Move { db, key, dst_db } => {
                if !self.resident_or_log(db as usize, key) {
                    return;
                }
                self.expire_if_needed(db, key, now);
                self.expire_if_needed(dst_db, key, now);
                if let Some(e) = self.dbs[db as usize].remove(key) {
                    self.dbs[dst_db as usize].insert(key, e);
                }
            }
            Op::SwapDb { a, b } => self.dbs.swap(a as usize, b as usize),
            Op::FlushDb { db } => self.dbs[db as usize].clear(),
            Op::FlushAll => self.dbs.iter_mut().for_each(Db::clear),
            Op::Coll { db, key, ref change } => {
                let d = self.db_mut(db, &[key], now);
                if !d.dict.contains_key(key) {
                    let Some(empty) = change.target().empty().filter(|_| change.creates()) else { return };
                    d.insert(key, Entry::new(empty, 0, now));
                }
                let Some(e) = d.dict.get_mut(key) else { return };
                let before = e.value.heap_bytes();
                let relabel = matches!(change, Change::TsCreate(_) | Change::TsAlter(_));
                let old_labels = series_labels(&e.value).filter(|_| relabel).cloned();
                change.apply(&mut e.value, now);
                d.bytes.values = d.bytes.values + e.value.heap_bytes() - before;
                if let Some(old) = old_labels {
                    let new = series_labels(&e.value).cloned().unwrap_or_default();
                    d.labels.remove(key, &old);
                    d.labels.add(key, &new);
                }
                if e.value.is_empty() {
                    d.remove(key);
                } else if !d.search.is_empty() && matches!(e.value, Value::Hash(_)) {
                    d.search.on_change(key, Some(&e.value));
                }
            }
            Op::Store { db, key, ref value, expire_ms } => {
                let d = self.db_mut(db, &[key], now);
                d.remove(key);
                if !value.is_empty() || matches!(**value, Value::Str(_)) {
                    d.insert(key, Entry::new(value.clone().into_owned(), expire_ms, now));
                }
            }
            Op::Group(ref ops) => ops.iter().for_each(|op| self.apply(op, now)),
            Op::Search { db, tag, body } => self.apply_search(db, tag, body, now),
        }
    }

    fn db_mut(&mut self, db: u8, keys: &[&[u8]], now: u64) -> &mut Db {
        for k in keys {
            self.expire_if_needed(db, k, now);
        }
        &mut self.dbs[db as usize]
    }

    fn apply_search(&mut self, db: u8, tag: u8, body: &[u8], now: u64) {
        /// Databases up to this many keys are indexed at once; larger ones in the background.
        const SCAN_AT_ONCE: usize = 10_000;
        let d = &mut self.dbs[db as usize];
        match tag {
            op::search_tag::DEFINE => {
                // Bytes we wrote ourselves; a record that does not decode was refused by `Op::decode`'s checksum already.
                let Ok(schema) = crate::search::Schema::decode(body) else { return };
                let keys = d.dict.len();
                d.search.define(schema, keys);
                if keys <= SCAN_AT_ONCE {
                    let Db { dict, search, .. } = d;
                    while search.scan_step(dict, now, usize::MAX) {}
                }
            }
            op::search_tag::DROP => {
                d.search.drop_index(&String::from_utf8_lossy(body));
            }
            op::search_tag::SYN_UPDATE => {
                let Ok((index, mut terms)) = crate::search::decode_dict(body) else { return };
                if terms.is_empty() {
                    return;
                }
                let group = terms.remove(0);
                d.search.syn_update(&index, &group, &terms);
            }
            op::search_tag::DICT_ADD | op::search_tag::DICT_DEL => {
                let Ok((name, terms)) = crate::search::decode_dict(body) else { return };
                if tag == op::search_tag::DICT_ADD {
                    d.search.dict_add(&name, terms);
                } else {
                    d.search.dict_del(&name, terms.iter().map(String::as_str));
                }
            }
            _ => {}
        }
    }

    /// Goes on with the search indexes' background scans of existing keys,
    /// about `budget` keys; false once no index of any database is scanning.
    pub fn search_scan_step(&mut self, now: u64, budget: usize) -> bool {
        let Some(d) = self.dbs.iter_mut().find(|d| d.search.scanning()) else { return false };
        let Db { dict, search, .. } = d;
        search.scan_step(dict, now, budget);
        self.dbs.iter().any(|d| d.search.scanning())
    }

    /// Goes on cleaning the search indexes (dead postings, renumbering),
    /// about `budget` postings; false once none has cleaning left.
    pub fn search_clean_step(&mut self, budget: usize) -> bool {
        if let Some(d) = self.dbs.iter_mut().find(|d| d.search.cleaning()) {
            d.search.clean_step(budget);
        }
        self.dbs.iter().any(|d| d.search.cleaning())
    }

    /// Finishes every background scan at once (start-up, after recovery, and tests).
    pub fn search_scan_all(&mut self, now: u64) {
        while self.search_scan_step(now, usize::MAX) {}
    }

    /// Approximate heap bytes of every search index (kept up to date; part of [`Keyspace::used_memory`]).
    pub fn search_bytes(&self) -> usize {
        self.dbs.iter().map(|d| d.search.heap_bytes()).sum()
    }

    /// The search indexes of a database.
    pub fn search(&self, db: usize) -> &crate::search::Indexes {
        &self.dbs[db].search
    }

    /// Keys in a database (expired keys not yet removed may be counted, as in Redis).
    pub fn dbsize(&self, db: usize) -> usize {
        self.dbs[db].dict.len()
    }

    /// Keys of the time series of a database with label `name` = `value`, sorted.
    pub fn series_with_label<'a>(&'a self, db: usize, name: &'a [u8], value: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.dbs[db].labels.keys(name, value)
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
            self.expired(db as u8, &k);
        }
        None
    }

    /// Removes up to `budget` expired keys across databases; returns how many.
    pub fn expire_cycle(&mut self, now: u64, budget: usize) -> usize {
        let mut done = 0;
        for db in 0..self.dbs.len() {
            while done < budget {
                let d = &mut self.dbs[db];
                let Some((deadline, key)) = d.expires.first().cloned() else { break };
                if deadline > now {
                    break;
                }
                d.unindex_expire(deadline, &key);
                let stale = d.dict.get(&key).is_some_and(|e| e.expire_ms == deadline);
                if stale {
                    d.remove(&key);
                    self.expired(db as u8, &key);
                    done += 1;
                }
            }
        }
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

/// Checks that every database index in a replayed op is in range.
fn check_dbs(op: &Op<'_>) -> Result<(), DecodeError> {
    let ok = |db: u8| (db as usize) < DATABASES;
    let fine = match op {
        Op::SwapDb { a, b } | Op::Copy { src_db: a, dst_db: b, .. } | Op::Move { db: a, dst_db: b, .. } => ok(*a) && ok(*b),
        Op::Group(ops) => return ops.iter().try_for_each(check_dbs),
        other => op_db(other).is_none_or(ok),
    };
    if fine {
        Ok(())
    } else {
        Err(DecodeError::Invalid("database index out of range"))
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
        | Op::FlushDb { db }
        | Op::Coll { db, .. }
        | Op::Store { db, .. }
        | Op::Search { db, .. } => Some(*db),
        Op::Copy { src_db, .. } => Some(*src_db),
        Op::SwapDb { .. } | Op::FlushAll | Op::Group(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ks: &mut Keyspace, key: &[u8], expire_ms: u64, now: u64) {
        ks.apply(&Op::Set { db: 0, key, value: b"v", expire_ms }, now);
    }

    /// A lookup takes one probe in a database without TTLs and two with
    /// some; both count hits and misses alike, and the second removes a key
    /// whose TTL passed.
    #[test]
    fn lookups_with_and_without_ttls_count_alike() {
        let mut ks = Keyspace::new(None);
        set(&mut ks, b"a", 0, 1);
        assert!(ks.lookup(0, b"a", 2).is_some());
        assert!(ks.lookup(0, b"b", 2).is_none());
        assert_eq!((ks.stats().hits, ks.stats().misses), (1, 1));
        set(&mut ks, b"t", 10, 1);
        assert!(ks.lookup(0, b"a", 2).is_some());
        assert!(ks.lookup(0, b"t", 5).is_some());
        assert!(ks.lookup(0, b"t", 10).is_none(), "expired at its deadline");
        assert_eq!((ks.stats().hits, ks.stats().misses, ks.stats().expired_keys), (3, 2, 1));
        assert_eq!(ks.expires_count(0), 0, "the expired key left the index");
        // Back to the one-probe path, and a write there needs no expiry probe either.
        set(&mut ks, b"a", 0, 20);
        assert!(ks.lookup(0, b"a", 21).is_some());
        assert!(ks.lookup(0, b"t", 21).is_none());
        assert_eq!((ks.stats().hits, ks.stats().misses), (4, 3));
    }
}
