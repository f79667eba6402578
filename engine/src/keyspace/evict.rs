//! Memory accounting and eviction: `maxmemory` and Redis's eviction policies.
//!
//! **Accounting.** Each shard counts the bytes its dataset holds, kept up to
//! date in O(1) per write rather than measured by a counting allocator
//! (buffers of cross-shard messages are freed on other threads, so a
//! per-thread allocator count would drift). Per database, [`DbBytes`] keeps
//! the sum of the values' heap bytes ([`super::Value::heap_bytes`], O(1)
//! since every container keeps a running count) and of the expiry index's
//! key bytes; the dict reports its own buckets, nodes (each holding an
//! [`super::Entry`]) and key bytes. [`super::Keyspace::used_memory`] adds
//! them up. It is the dataset, not the process: connection buffers, the
//! log's buffers and allocator slack are not in it (INFO shows RSS beside it).
//!
//! **Eviction.** When a command reaches a shard that is over its budget
//! ([`Limits::budget`], `maxmemory / shards`), the server calls
//! [`super::Keyspace::make_room`] before running it, which evicts keys the
//! way Redis's `evict.c` does: each round samples `maxmemory-samples` keys
//! per database (only keys with a TTL for the `volatile-*` policies) into a
//! pool of the [`POOL_SIZE`] best candidates seen so far, kept across calls,
//! and evicts the best one still present. Unlike Redis, the pool's scores
//! are computed again at each round: a score kept from an earlier round
//! would compare a key's idle time then with other keys' idle times now,
//! and after a pause (or an access since) a recently used key could look
//! the oldest. "Best" is the longest idle time
//! for LRU, the lowest access counter after decay for LFU (Redis's
//! logarithmic 8-bit counter, `lfu-log-factor`, `lfu-decay-time`), the
//! soonest deadline for `volatile-ttl` (read exactly from the ordered expiry
//! index, not sampled); the `*-random` policies pick any key. Work per call
//! is bounded ([`MAX_EVICTIONS_PER_CALL`]); what remains is done by the next
//! command or the shard's background tick.
//!
//! An evicted key is deleted with an [`super::Op::Del`] record, as Redis
//! propagates a DEL to its AOF, so it stays gone after a restart; without a
//! log it is just dropped. Evictions count in [`super::KeyspaceStats`], wake
//! WATCHers and are recorded as [`super::KeyEventKind::Evicted`].

use crate::bytes::SmallBytes;

use super::{Entry, KeyEvent, KeyEventKind, Keyspace, Op};

/// Candidates kept in the eviction pool (Redis's `EVPOOL_SIZE`).
pub const POOL_SIZE: usize = 16;

/// Keys one [`Keyspace::make_room`] call evicts at most.
pub const MAX_EVICTIONS_PER_CALL: usize = 256;

/// Redis's initial LFU counter of a new key.
pub const LFU_INIT: u8 = 5;

/// Milliseconds per tick of [`Entry::access`]: a u32 of 10 ms ticks wraps after 497 days.
pub const TICK_MS: u64 = 10;

/// What to do when a shard is over its budget (`maxmemory-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Evict nothing; commands that may add data answer OOM.
    #[default]
    NoEviction,
    /// Least recently used, among all keys.
    AllKeysLru,
    /// Least frequently used, among all keys.
    AllKeysLfu,
    /// Any key.
    AllKeysRandom,
    /// Least recently used, among keys with a TTL.
    VolatileLru,
    /// Least frequently used, among keys with a TTL.
    VolatileLfu,
    /// Any key with a TTL.
    VolatileRandom,
    /// The key whose TTL ends soonest.
    VolatileTtl,
    /// strand's own: nothing is deleted; the least recently used string
    /// values move to the cold tier on disk ([`super::cold`]) and are read
    /// back when used. Needs the log (persistence on).
    Tiered,
}

/// In the order Redis lists them, then strand's own.
const POLICIES: [(Policy, &str); 9] = [
    (Policy::VolatileLru, "volatile-lru"),
    (Policy::VolatileLfu, "volatile-lfu"),
    (Policy::VolatileRandom, "volatile-random"),
    (Policy::VolatileTtl, "volatile-ttl"),
    (Policy::AllKeysLru, "allkeys-lru"),
    (Policy::AllKeysLfu, "allkeys-lfu"),
    (Policy::AllKeysRandom, "allkeys-random"),
    (Policy::NoEviction, "noeviction"),
    (Policy::Tiered, "tiered"),
];

impl Policy {
    /// The policy Redis names `name` (case-insensitive).
    pub fn parse(name: &str) -> Option<Policy> {
        POLICIES.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)).map(|(p, _)| *p)
    }

    /// Redis's name of the policy.
    pub fn name(self) -> &'static str {
        POLICIES.iter().find(|(p, _)| *p == self).map_or("noeviction", |(_, n)| n)
    }

    /// Every policy name, for error messages.
    pub fn names() -> impl Iterator<Item = &'static str> {
        POLICIES.iter().map(|(_, n)| *n)
    }

    /// Whether only keys with a TTL may be evicted.
    pub fn volatile(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom | Policy::VolatileTtl)
    }

    /// Whether the policy counts access frequency (OBJECT FREQ answers only then).
    pub fn lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }

    fn random(self) -> bool {
        matches!(self, Policy::AllKeysRandom | Policy::VolatileRandom)
    }
}

/// One shard's memory settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes this shard may hold (its share of `maxmemory`); 0: no limit.
    pub budget: usize,
    /// `maxmemory-policy`.
    pub policy: Policy,
    /// `maxmemory-samples`: keys sampled per database per round.
    pub samples: usize,
    /// `lfu-log-factor`.
    pub lfu_log_factor: u32,
    /// `lfu-decay-time`, minutes per counter decrement (0: never).
    pub lfu_decay_time: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { budget: 0, policy: Policy::NoEviction, samples: 5, lfu_log_factor: 10, lfu_decay_time: 1 }
    }
}

/// What [`Keyspace::make_room`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// Within budget (or no budget).
    Fits,
    /// Still over budget, but evicting makes progress: later calls continue (Redis's `EVICT_RUNNING`).
    Evicting,
    /// Over budget with nothing to evict (noeviction, no candidate, or the log refused the delete).
    Full,
}

/// Bytes a database holds beyond what its dict counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DbBytes {
    /// Σ heap bytes of the values.
    pub values: usize,
    /// Σ key bytes in the expiry index.
    pub expire_keys: usize,
    /// Entries whose value is cold ([`super::Value::Cold`]).
    pub cold: usize,
}

/// Heap bytes of one expiry-index element, besides its key bytes.
pub const EXPIRE_ENTRY_BYTES: usize = std::mem::size_of::<(u64, Box<[u8]>)>();

/// A key the pool holds, with its score (higher: evict sooner).
#[derive(Debug, Clone)]
struct Candidate {
    score: u64,
    db: u8,
    key: SmallBytes,
}

/// The keyspace's eviction state: its limits and the pool of candidates.
#[derive(Debug, Default)]
pub struct Memory {
    limits: Limits,
    /// Ascending by score; the best candidate is last.
    pool: Vec<Candidate>,
    /// Next database for the `*-random` policies (Redis's `next_db`).
    next_db: usize,
}

impl Memory {
    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Offers a candidate: kept if the pool has room or it beats the worst one.
    fn offer(&mut self, score: u64, db: u8, key: &[u8]) {
        if let Some(i) = self.pool.iter().position(|c| c.db == db && &c.key[..] == key) {
            self.pool.remove(i);
        }
        if self.pool.len() == POOL_SIZE {
            if score <= self.pool[0].score {
                return;
            }
            self.pool.remove(0);
        }
        let at = self.pool.partition_point(|c| c.score < score);
        self.pool.insert(at, Candidate { score, db, key: SmallBytes::new(key) });
    }
}

/// The access clock at `now_ms`, in [`TICK_MS`] ticks.
pub fn tick(now_ms: u64) -> u32 {
    (now_ms / TICK_MS) as u32
}

/// Milliseconds since the entry's last access (the clock wraps after 497 days).
pub fn idle_ms(e: &Entry, now_ms: u64) -> u64 {
    tick(now_ms).wrapping_sub(e.access) as u64 * TICK_MS
}

/// The entry's LFU counter after `lfu-decay-time` decay (Redis's `LFUDecrAndReturn`).
pub fn lfu_decayed(e: &Entry, now_ms: u64, decay_minutes: u32) -> u8 {
    if decay_minutes == 0 {
        return e.freq;
    }
    let periods = idle_ms(e, now_ms) / 60_000 / decay_minutes as u64;
    e.freq.saturating_sub(periods.min(255) as u8)
}

/// Redis's `LFULogIncr`: the counter grows with probability 1/((counter-5)*factor+1).
pub fn lfu_incr(counter: u8, factor: u32) -> u8 {
    if counter == 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT) as f64;
    let p = 1.0 / (base * factor as f64 + 1.0);
    if rand::random::<f64>() < p {
        counter + 1
    } else {
        counter
    }
}

/// Records an access: the LFU counter decays, then counts it; the LRU clock is set.
pub fn touch(e: &mut Entry, now_ms: u64, limits: &Limits) {
    let decayed = lfu_decayed(e, now_ms, limits.lfu_decay_time);
    e.freq = lfu_incr(decayed, limits.lfu_log_factor);
    e.access = tick(now_ms);
}

/// Whether the entry under `key` may be picked by `policy`.
fn eligible(policy: Policy, key: &[u8], e: &Entry) -> bool {
    match policy {
        Policy::Tiered => Keyspace::tierable(key, e),
        p if p.volatile() => e.expire_ms != 0,
        _ => true,
    }
}

/// The eviction score of an entry under `policy` (higher: evict sooner).
fn score(policy: Policy, limits: &Limits, e: &Entry, now_ms: u64) -> u64 {
    match policy {
        Policy::AllKeysLfu | Policy::VolatileLfu => 255 - lfu_decayed(e, now_ms, limits.lfu_decay_time) as u64,
        Policy::VolatileTtl => u64::MAX - e.expire_ms,
        _ => idle_ms(e, now_ms),
    }
}

fn rng() -> u64 {
    rand::random()
}

impl Keyspace {
    /// Sets the memory budget and policy (at start and on CONFIG SET).
    pub fn set_limits(&mut self, limits: Limits) {
        if limits.policy != self.mem.limits.policy {
            self.mem.pool.clear();
        }
        self.mem.limits = limits;
    }

    /// The memory limits in force.
    pub fn limits(&self) -> Limits {
        self.mem.limits
    }

    /// Bytes the dataset holds: every database's dict (buckets, nodes with
    /// their entries, keys), values, expiry index, search indexes and
    /// time-series label indexes, and the thread's table of label strings.
    /// O(databases + indexes).
    pub fn used_memory(&self) -> usize {
        let dbs: usize = self
            .dbs
            .iter()
            .map(|d| {
                d.dict.heap_bytes()
                    + d.bytes.values
                    + d.expires.len() * EXPIRE_ENTRY_BYTES
                    + d.bytes.expire_keys
                    + d.search.heap_bytes()
                    + d.labels.heap_bytes()
            })
            .sum();
        dbs + crate::series::labels::table_bytes()
    }

    /// Whether the shard holds more than its budget.
    pub fn over_budget(&self) -> bool {
        self.mem.limits.budget != 0 && self.used_memory() > self.mem.limits.budget
    }

    /// Evicts keys by the policy until the shard fits its budget, at most
    /// [`MAX_EVICTIONS_PER_CALL`] of them.
    pub fn make_room(&mut self, now: u64) -> Room {
        let mut evicted = 0;
        while self.over_budget() {
            if self.mem.limits.policy == Policy::NoEviction {
                return Room::Full;
            }
            if evicted == MAX_EVICTIONS_PER_CALL {
                return Room::Evicting;
            }
            let Some((db, key)) = self.pick_victim(now) else { return Room::Full };
            if self.mem.limits.policy == Policy::Tiered {
                match self.move_to_tier(db, &key) {
                    Ok(true) => self.stats.tiered_out += 1,
                    Ok(false) => return Room::Full,
                    // The tier's writer is behind: it catches up in the background.
                    Err(crate::tier::TierError::Busy) => return Room::Evicting,
                    Err(_) => return Room::Full,
                }
            } else if !self.evict(db, &key, now) {
                return Room::Full;
            }
            evicted += 1;
        }
        Room::Fits
    }

    /// Deletes one key for eviction (logged as a DEL); false if the log refused it.
    fn evict(&mut self, db: u8, key: &[u8], now: u64) -> bool {
        if self.write(Op::Del { db, key }, now).is_err() {
            return false;
        }
        self.stats.evicted_keys += 1;
        if self.capture.evicted {
            self.events.push(KeyEvent { kind: KeyEventKind::Evicted, db, key: SmallBytes::new(key) });
        }
        true
    }

    /// The key to evict next, None if the policy finds no candidate.
    fn pick_victim(&mut self, now: u64) -> Option<(u8, SmallBytes)> {
        let policy = self.mem.limits.policy;
        if policy.random() {
            return self.random_victim(now);
        }
        // Under `tiered` most sampled keys may be cold already: sample longer before giving up.
        let rounds = if policy == Policy::Tiered { 32 } else { 4 };
        for _ in 0..rounds {
            self.rescore_pool(now);
            let mut sampled = 0;
            for db in 0..self.dbs.len() {
                sampled += self.populate(db, now);
            }
            // (Under `tiered`, a round can sample only cold keys by chance: sample again.)
            if sampled == 0 && self.mem.pool.is_empty() && policy != Policy::Tiered {
                return None;
            }
            while let Some(c) = self.mem.pool.pop() {
                let live = self.dbs[c.db as usize].dict.get(&c.key).is_some_and(|e| eligible(policy, &c.key, e));
                if live {
                    return Some((c.db, c.key));
                }
            }
        }
        None
    }

    /// Scores the pool's candidates again at `now`; drops those gone or no longer eligible.
    fn rescore_pool(&mut self, now: u64) {
        let limits = self.mem.limits;
        let dbs = &self.dbs;
        self.mem.pool.retain_mut(|c| match dbs[c.db as usize].dict.get(&c.key) {
            Some(e) if eligible(limits.policy, &c.key, e) => {
                c.score = score(limits.policy, &limits, e, now);
                true
            }
            _ => false,
        });
        self.mem.pool.sort_by_key(|c| c.score);
    }

    /// Samples one database into the pool; returns how many keys it looked at.
    fn populate(&mut self, db: usize, now: u64) -> usize {
        let limits = self.mem.limits;
        let d = &self.dbs[db];
        let mut found: Vec<(u64, SmallBytes)> = Vec::with_capacity(limits.samples);
        if limits.policy == Policy::VolatileTtl {
            // The expiry index is ordered: its first keys are the best candidates, exactly.
            found.extend(d.expires.iter().take(limits.samples).map(|(deadline, k)| (u64::MAX - deadline, SmallBytes::new(k))));
        } else if limits.policy.volatile() {
            for _ in 0..limits.samples {
                if let Some((k, e)) = self.random_volatile(db) {
                    found.push((score(limits.policy, &limits, e, now), SmallBytes::new(k)));
                }
            }
        } else {
            d.dict.sample(limits.samples, &mut rng, |k, e| {
                if eligible(limits.policy, k, e) {
                    found.push((score(limits.policy, &limits, e, now), SmallBytes::new(k)));
                }
            });
        }
        let n = found.len();
        for (s, k) in found {
            self.mem.offer(s, db as u8, &k);
        }
        n
    }

    /// A key with a TTL from `db`, picked by probing the expiry index at a random deadline.
    fn random_volatile(&self, db: usize) -> Option<(&[u8], &Entry)> {
        let d = &self.dbs[db];
        let (first, last) = (d.expires.first()?.0, d.expires.last()?.0);
        let at = first + rng() % (last - first + 1);
        let (_, key) = d.expires.range((at, Box::<[u8]>::default())..).next().or_else(|| d.expires.first())?;
        d.dict.get(key).map(|e| (&key[..], e))
    }

    /// A key for the `*-random` policies, visiting the databases in turn.
    fn random_victim(&mut self, now: u64) -> Option<(u8, SmallBytes)> {
        let volatile = self.mem.limits.policy.volatile();
        for _ in 0..self.dbs.len() {
            let db = self.mem.next_db % self.dbs.len();
            self.mem.next_db = self.mem.next_db.wrapping_add(1);
            let picked =
                if volatile { self.random_volatile(db).map(|(k, _)| k) } else { self.dbs[db].dict.random_entry(&mut rng).map(|(k, _)| k) };
            if let Some(k) = picked {
                return Some((db as u8, SmallBytes::new(k)));
            }
        }
        let _ = now;
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::keyspace::Value;

    fn ks(budget: usize, policy: Policy) -> Keyspace {
        let mut ks = Keyspace::new(None);
        ks.set_limits(Limits { budget, policy, ..Limits::default() });
        ks
    }

    fn set(ks: &mut Keyspace, key: &str, len: usize, expire_ms: u64, now: u64) {
        let value = vec![b'v'; len];
        ks.write(Op::Set { db: 0, key: key.as_bytes(), value: &value, expire_ms }, now).unwrap();
    }

    /// The running count against a full recount of every entry.
    fn recount(ks: &Keyspace) -> usize {
        ks.dbs
            .iter()
            .map(|d| {
                let values: usize = d.dict.iter().map(|(_, e)| e.value.heap_bytes()).sum();
                let expires: usize = d.expires.iter().map(|(_, k)| EXPIRE_ENTRY_BYTES + k.len()).sum();
                d.dict.heap_bytes() + values + expires
            })
            .sum()
    }

    #[test]
    fn accounting_matches_a_recount_after_random_ops() {
        use crate::keyspace::Change;
        let mut ks = ks(0, Policy::NoEviction);
        let mut now = 1_000_000;
        for i in 0..5_000u64 {
            now += 1;
            let r: u64 = rand::random();
            let key = format!("k{}", r % 300);
            let k = key.as_bytes();
            let db = (r % 3) as u8;
            let big = vec![b'x'; (r % 100) as usize];
            let op = match i % 11 {
                0 | 1 => Op::Set { db, key: k, value: &big, expire_ms: if r.is_multiple_of(2) { now + 50 } else { 0 } },
                2 => Op::Del { db, key: k },
                3 => Op::Expire { db, key: k, expire_ms: now + (r % 100) },
                4 => Op::Append { db, key: k, data: &big },
                5 => Op::Coll { db, key: k, change: Change::HSet(vec![(b"f".as_slice(), &big[..]), (&big[..big.len() / 2], b"v")]) },
                6 => Op::Coll { db, key: k, change: Change::LPush { left: r.is_multiple_of(2), elems: vec![&big[..], b"x"] } },
                7 => Op::Coll { db, key: k, change: Change::LPop { left: true, count: 1 } },
                8 => Op::Rename { db, src: k, dst: b"k7" },
                9 => Op::SwapDb { a: db, b: 2 },
                _ if r.is_multiple_of(40) => Op::FlushDb { db },
                _ => Op::Move { db, key: k, dst_db: (db + 1) % 3 },
            };
            // Type clashes (HSET on a string ...) are the commands' business, not the keyspace's.
            let clash = matches!(&op, Op::Coll { db, key, change } if ks.peek(*db as usize, key, now).is_some_and(|e| e.value.kind() != change.target()));
            if !clash {
                ks.write(op, now).unwrap();
            }
            if i % 97 == 0 {
                ks.expire_cycle(now, 10);
                ks.lookup(0, b"k1", now);
            }
            assert_eq!(ks.used_memory(), recount(&ks), "after op {i}");
        }
        ks.write(Op::FlushAll, now).unwrap();
        assert_eq!(ks.used_memory(), recount(&ks));
        assert_eq!(ks.used_memory(), 0);
        let _ = Value::Str(SmallBytes::new(b""));
    }

    #[test]
    fn pool_keeps_the_best_candidates_in_order() {
        let mut m = Memory::default();
        for s in 0..40u64 {
            m.offer((s * 7919) % 101, 0, format!("k{s}").as_bytes());
        }
        assert_eq!(m.pool.len(), POOL_SIZE);
        assert!(m.pool.windows(2).all(|w| w[0].score <= w[1].score));
        let mut all: Vec<u64> = (0..40u64).map(|s| (s * 7919) % 101).collect();
        all.sort_unstable();
        let best: Vec<u64> = all[all.len() - POOL_SIZE..].to_vec();
        assert_eq!(m.pool.iter().map(|c| c.score).collect::<Vec<_>>(), best);
        // A key offered again replaces its old entry rather than appearing twice.
        m.offer(1_000, 0, b"k1");
        assert_eq!(m.pool.iter().filter(|c| &c.key[..] == b"k1").count(), 1);
        assert_eq!(m.pool.last().map(|c| c.score), Some(1_000));
    }

    #[test]
    fn lru_evicts_idle_keys_first() {
        let mut ks = ks(0, Policy::AllKeysLru);
        let t0 = 10_000_000;
        for i in 0..200 {
            set(&mut ks, &format!("cold{i}"), 100, 0, t0);
        }
        for i in 0..200 {
            set(&mut ks, &format!("hot{i}"), 100, 0, t0 + 60_000);
        }
        let full = ks.used_memory();
        ks.set_limits(Limits { budget: full * 3 / 4, policy: Policy::AllKeysLru, ..Limits::default() });
        assert_eq!(ks.make_room(t0 + 61_000), Room::Fits);
        assert!(ks.used_memory() <= full * 3 / 4);
        let hot_left = (0..200).filter(|i| ks.contains(0, format!("hot{i}").as_bytes(), t0)).count();
        let cold_left = (0..200).filter(|i| ks.contains(0, format!("cold{i}").as_bytes(), t0)).count();
        assert!(ks.stats().evicted_keys > 0);
        assert!(hot_left > cold_left + 50, "hot {hot_left} cold {cold_left}");
    }

    #[test]
    fn a_key_used_since_it_entered_the_pool_is_not_taken_for_idle() {
        let mut ks = ks(0, Policy::AllKeysLru);
        let t0 = 10_000_000;
        set(&mut ks, "used", 100, 0, t0 + 1_000);
        for i in 0..1_000 {
            set(&mut ks, &format!("b{i}"), 100, 0, t0 + 5_000);
        }
        // "used" entered the pool at t0 + 6000, 5 s idle: the oldest key then.
        ks.mem.offer(5_000, 0, b"used");
        // Now it is the most recently used key.
        assert!(ks.lookup(0, b"used", t0 + 7_000).is_some());
        let limits = Limits { budget: ks.used_memory() - 1, policy: Policy::AllKeysLru, samples: 1, ..Limits::default() };
        ks.set_limits(limits);
        assert_eq!(ks.make_room(t0 + 7_500), Room::Fits);
        assert!(ks.contains(0, b"used", t0 + 7_500), "the pool's stale idle time evicted a key just used");
        assert_eq!((0..1_000).filter(|i| ks.contains(0, format!("b{i}").as_bytes(), t0)).count(), 999);
    }

    #[test]
    fn volatile_ttl_takes_the_soonest_deadline_and_volatile_needs_ttls() {
        let mut ks = ks(0, Policy::VolatileTtl);
        let now = 5_000_000;
        for i in 0..50u64 {
            set(&mut ks, &format!("t{i}"), 50, now + 1_000 + i * 1_000, now);
        }
        set(&mut ks, "forever", 50, 0, now);
        let full = ks.used_memory();
        ks.set_limits(Limits { budget: full - 1, policy: Policy::VolatileTtl, ..Limits::default() });
        assert_eq!(ks.make_room(now), Room::Fits);
        assert!(!ks.contains(0, b"t0", now));
        assert!(ks.contains(0, b"t1", now) && ks.contains(0, b"forever", now));
        // Only a key without a TTL left: the volatile policies find nothing.
        ks.write(Op::FlushAll, now).unwrap();
        set(&mut ks, "forever", 5000, 0, now);
        let budget = ks.used_memory() - 1;
        ks.set_limits(Limits { budget, policy: Policy::VolatileLru, ..Limits::default() });
        assert_eq!(ks.make_room(now), Room::Full);
        ks.set_limits(Limits { budget, policy: Policy::NoEviction, ..Limits::default() });
        assert_eq!(ks.make_room(now), Room::Full);
        ks.set_limits(Limits { budget, policy: Policy::AllKeysRandom, ..Limits::default() });
        assert_eq!(ks.make_room(now), Room::Fits);
        assert_eq!(ks.dbsize(0), 0);
    }

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let mut e = Entry::new(Value::Str(SmallBytes::new(b"x")), 0, 0);
        let limits = Limits::default();
        for _ in 0..10_000 {
            touch(&mut e, 0, &limits);
        }
        // Level c takes about 10 * (c - 5) + 1 touches (factor 10, Redis's
        // LFU_INIT_VAL 5), so 10,000 touches reach about 50, give or take 4
        // (each level's count is geometric). Linear growth would saturate at
        // 255 and no growth would stay at 5.
        assert!(e.freq > 30 && e.freq < 80, "freq {}", e.freq);
        let f = e.freq;
        assert_eq!(lfu_decayed(&e, 3 * 60_000, 1), f - 3);
        assert_eq!(lfu_decayed(&e, 3 * 60_000, 0), f);
        assert_eq!(lfu_incr(255, 10), 255);
    }

    #[test]
    fn policies_parse_by_redis_names() {
        for name in Policy::names() {
            assert_eq!(Policy::parse(name).map(Policy::name), Some(name));
        }
        assert_eq!(Policy::parse("ALLKEYS-LRU"), Some(Policy::AllKeysLru));
        assert_eq!(Policy::parse("lru"), None);
    }
}
