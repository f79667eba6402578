//! `Dict`: the keyspace's hash table, a port of Redis's `dict.c` design.
//!
//! # Why not `std::collections::HashMap`
//!
//! `SCAN` hands the client a plain numeric cursor and must return, across any
//! number of calls, every key that was present for the whole iteration, even
//! when the table grows or shrinks between calls. Open addressing (std's
//! SwissTable) moves entries between arbitrary slots on resize, so no cursor
//! can describe "where we are". Chained buckets in power-of-two tables, scanned
//! in reverse-binary cursor order, can.
//!
//! # Algorithm
//!
//! * Two tables of chained buckets (`Vec<Option<Box<Node>>>`-style), sizes are
//!   powers of two (or 0 = not allocated). A key lives in bucket
//!   `xxh3_64_with_seed(key, seed) & (size - 1)`. The hash is *not* stored in
//!   the node (saves 8 bytes per key); it is recomputed when a node moves to a
//!   larger table.
//! * Normally only table 0 is in use. When `len >= buckets` (load factor 1) on
//!   insert, table 1 is allocated with the next power of two above `len` and an
//!   incremental rehash starts; when `len < buckets / 8` after a removal (and
//!   the table is bigger than [`MIN_SIZE`]), table 1 is allocated with the next
//!   power of two `>= len` (at least `MIN_SIZE`) and the same rehash starts.
//! * Incremental rehash: `rehash_idx` is the next table-0 bucket to migrate.
//!   Every mutating operation and every `&mut self` lookup first migrates
//!   [`REHASH_STEP_BUCKETS`] non-empty bucket(s) (visiting at most ten times as
//!   many empty ones). New keys go into table 1 while rehashing; lookups probe
//!   both tables. When table 0 is empty, table 1 becomes table 0. A shrinking
//!   rehash splices bucket `i` into bucket `i & mask1` without hashing.
//!   [`Dict::rehash_steps`] lets an idle loop finish a rehash faster (Redis's
//!   "active rehashing").
//! * SCAN (`dictScan`): the cursor is a bucket index incremented in
//!   *reversed* bit order (set the bits above the mask, reverse, add one,
//!   reverse back). Growing a table splits bucket `i` into `i` and
//!   `i | old_size`, which reverse-binary order visits consecutively, and
//!   shrinking merges them back, so buckets already visited are never
//!   skipped-over by a resize. During a rehash the cursor visits bucket
//!   `v & m_small` of the smaller table and then every bucket of the larger
//!   table that expands it (`v & m_large` for all values of the extra bits).
//!   Entries may be returned more than once; entries present for the whole
//!   scan are returned at least once.
//!
//! # Invariants (checked with `debug_assert!` where cheap)
//!
//! * each table's size is 0 or a power of two `>= MIN_SIZE`; table 1 has size
//!   0 iff no rehash is in progress;
//! * `tables[t].used` is the number of nodes in table `t`; `len()` is their sum;
//! * while rehashing, table-0 buckets below `rehash_idx` are empty and
//!   `rehash_idx < tables[0].size`;
//! * every node sits in bucket `hash(key) & mask` of its table; keys are unique
//!   across both tables;
//! * `key_bytes` is the sum of the heap bytes of the stored keys (short keys are inline).
//!
//! Chains are never dropped recursively: [`Dict::clear`] and `Drop` unlink
//! nodes one at a time, so a pathological chain cannot overflow the stack.

use std::mem;

use crate::bytes::SmallBytes;

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Smallest allocated table size (Redis's `DICT_HT_INITIAL_SIZE`).
pub const MIN_SIZE: usize = 4;

/// Non-empty buckets migrated by each mutating operation during a rehash.
pub const REHASH_STEP_BUCKETS: usize = 1;

/// Shrink when `len < buckets / SHRINK_RATIO`.
const SHRINK_RATIO: usize = 8;

/// Random-bucket probes in `random_entry` before falling back to a linear walk.
const RANDOM_PROBES: usize = 1024;

/// Entries sampled by `random_entry` to pick a fair one (`GETFAIR_NUM_ENTRIES`).
const FAIR_SAMPLE: usize = 20;

type Link<V> = Option<Box<Node<V>>>;

struct Node<V> {
    key: SmallBytes,
    value: V,
    next: Link<V>,
}

struct Table<V> {
    buckets: Box<[Link<V>]>,
    used: usize,
}

impl<V> Table<V> {
    fn empty() -> Self {
        Table { buckets: Box::new([]), used: 0 }
    }

    fn with_size(size: usize) -> Self {
        debug_assert!(size.is_power_of_two() && size >= MIN_SIZE);
        let mut v = Vec::with_capacity(size);
        v.resize_with(size, || None);
        Table { buckets: v.into_boxed_slice(), used: 0 }
    }

    #[inline]
    fn size(&self) -> usize {
        self.buckets.len()
    }

    /// `size - 1`; only meaningful when allocated.
    #[inline]
    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    /// Unlinks and drops every node iteratively; leaves the buckets allocated.
    fn drop_chains(&mut self) {
        for b in self.buckets.iter_mut() {
            let mut chain = b.take();
            while let Some(mut node) = chain {
                chain = node.next.take();
            }
        }
        self.used = 0;
    }
}

/// Iterator over one chain.
struct ChainIter<'a, V> {
    cur: Option<&'a Node<V>>,
}

impl<'a, V> Iterator for ChainIter<'a, V> {
    type Item = (&'a [u8], &'a V);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let node = self.cur?;
        self.cur = node.next.as_deref();
        Some((&node.key, &node.value))
    }
}

/// Removes the node with `key` from the chain starting at `link`.
fn unlink<V>(mut link: &mut Link<V>, key: &[u8]) -> Option<Box<Node<V>>> {
    loop {
        let hit = match link.as_deref() {
            None => return None,
            Some(n) => *n.key == *key,
        };
        if hit {
            let mut node = link.take()?;
            *link = node.next.take();
            return Some(node);
        }
        match link {
            Some(n) => link = &mut n.next,
            None => return None,
        }
    }
}

/// Next cursor in reverse-binary order for a table with mask `mask`.
#[inline]
fn next_cursor(v: u64, mask: u64) -> u64 {
    (v | !mask).reverse_bits().wrapping_add(1).reverse_bits()
}

/// A value in `0..n` from a random `r` (multiply-shift; `n > 0`).
#[inline]
fn below(r: u64, n: usize) -> usize {
    ((u128::from(r) * n as u128) >> 64) as usize
}

/// Calls `f` for every entry of a chain; returns how many.
#[inline]
fn emit_chain<V>(link: &Link<V>, f: &mut impl FnMut(&[u8], &V)) -> usize {
    let mut n = 0;
    let mut cur = link.as_deref();
    while let Some(node) = cur {
        f(&node.key, &node.value);
        n += 1;
        cur = node.next.as_deref();
    }
    n
}

/// A chained hash table with incremental rehashing and a SCAN cursor that
/// survives resizes. See the module documentation.
pub struct Dict<V> {
    tables: [Table<V>; 2],
    /// `Some(i)` while rehashing from table 0 into table 1; `i` is the next
    /// table-0 bucket to migrate.
    rehash_idx: Option<usize>,
    seed: u64,
    /// Sum of the stored keys' lengths, for `heap_bytes`.
    key_bytes: usize,
}

impl<V> Default for Dict<V> {
    fn default() -> Self {
        Self::new(0)
    }
}

impl<V> Drop for Dict<V> {
    fn drop(&mut self) {
        // Iterative: the derived drop of `Option<Box<Node>>` would recurse
        // once per chain element.
        self.tables[0].drop_chains();
        self.tables[1].drop_chains();
    }
}

impl<V> Dict<V> {
    /// An empty dict hashing with `seed`. Allocates nothing until the first insert.
    pub fn new(seed: u64) -> Self {
        Dict { tables: [Table::empty(), Table::empty()], rehash_idx: None, seed, key_bytes: 0 }
    }

    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.tables[0].used + self.tables[1].used
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether an incremental rehash is in progress.
    #[inline]
    pub fn is_rehashing(&self) -> bool {
        self.rehash_idx.is_some()
    }

    /// Total buckets across both tables (for diagnostics).
    pub fn bucket_count(&self) -> usize {
        self.tables[0].size() + self.tables[1].size()
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        xxh3_64_with_seed(key, self.seed)
    }

    /// Number of tables to probe: 2 while rehashing, else 1.
    #[inline]
    fn table_count(&self) -> usize {
        if self.rehash_idx.is_some() {
            2
        } else {
            1
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        if self.is_empty() {
            return None;
        }
        let h = self.hash(key) as usize;
        for t in &self.tables[..self.table_count()] {
            let mut cur = t.buckets[h & t.mask()].as_deref();
            while let Some(node) = cur {
                if *node.key == *key {
                    return Some(&node.value);
                }
                cur = node.next.as_deref();
            }
        }
        None
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Mutable lookup; performs a rehash step first.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        if self.is_empty() {
            return None;
        }
        self.rehash_step();
        let h = self.hash(key) as usize;
        let n = self.table_count();
        for t in self.tables[..n].iter_mut() {
            let mask = t.mask();
            let mut cur = t.buckets[h & mask].as_deref_mut();
            while let Some(node) = cur {
                if *node.key == *key {
                    return Some(&mut node.value);
                }
                cur = node.next.as_deref_mut();
            }
        }
        None
    }

    /// Where `key` is: (table, bucket, depth in chain).
    fn find_pos(&self, key: &[u8], h: u64) -> Option<(usize, usize, usize)> {
        if self.is_empty() {
            return None;
        }
        let h = h as usize;
        for (ti, t) in self.tables[..self.table_count()].iter().enumerate() {
            let b = h & t.mask();
            let mut depth = 0;
            let mut cur = t.buckets[b].as_deref();
            while let Some(node) = cur {
                if *node.key == *key {
                    return Some((ti, b, depth));
                }
                depth += 1;
                cur = node.next.as_deref();
            }
        }
        None
    }

    /// The node at a position returned by `find_pos` (no mutation in between).
    fn node_at_mut(&mut self, (t, b, depth): (usize, usize, usize)) -> Option<&mut Node<V>> {
        let mut node = self.tables[t].buckets[b].as_deref_mut()?;
        for _ in 0..depth {
            node = node.next.as_deref_mut()?;
        }
        Some(node)
    }

    /// Pushes a new node (key known absent) at the head of its bucket in the
    /// table that receives inserts. `prepare_insert` must have run.
    fn push_new(&mut self, h: u64, key: SmallBytes, value: V) -> &mut V {
        let ti = if self.rehash_idx.is_some() { 1 } else { 0 };
        self.key_bytes += key.heap_bytes();
        let t = &mut self.tables[ti];
        debug_assert!(t.size() > 0);
        let b = h as usize & t.mask();
        let next = t.buckets[b].take();
        t.used += 1;
        let node = t.buckets[b].insert(Box::new(Node { key, value, next }));
        &mut node.value
    }

    /// Rehash step + grow if needed; called before every insert path.
    fn prepare_insert(&mut self) {
        self.rehash_step();
        self.expand_if_needed();
    }

    /// Inserts or replaces; returns the old value if the key existed (the
    /// stored key is kept).
    pub fn insert(&mut self, key: &[u8], value: V) -> Option<V> {
        self.prepare_insert();
        let h = self.hash(key);
        if let Some(pos) = self.find_pos(key, h) {
            let node = self.node_at_mut(pos)?;
            return Some(mem::replace(&mut node.value, value));
        }
        self.push_new(h, key.into(), value);
        None
    }

    /// Inserts with an already-boxed key (no copy), replacing any existing
    /// entry's value (the stored key is kept; `key` is then dropped).
    pub fn insert_boxed(&mut self, key: Box<[u8]>, value: V) -> Option<V> {
        self.prepare_insert();
        let h = self.hash(&key);
        if let Some(pos) = self.find_pos(&key, h) {
            let node = self.node_at_mut(pos)?;
            return Some(mem::replace(&mut node.value, value));
        }
        self.push_new(h, SmallBytes::from_box(key), value);
        None
    }

    /// Returns the value for key, inserting `make()` first if absent; the bool
    /// is true when it was inserted.
    pub fn get_or_insert_with(&mut self, key: &[u8], make: impl FnOnce() -> V) -> (&mut V, bool) {
        self.prepare_insert();
        let h = self.hash(key);
        match self.find_pos(key, h) {
            None => (self.push_new(h, key.into(), make()), true),
            // (Two steps because returning a borrow from one branch and
            // reusing `self` in another is rejected by today's borrowck.)
            Some(pos) => match self.node_at_mut(pos) {
                Some(node) => (&mut node.value, false),
                None => unreachable!("find_pos returned a position that does not exist"),
            },
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        self.remove_entry(key).map(|(_, v)| v)
    }

    pub fn remove_entry(&mut self, key: &[u8]) -> Option<(Box<[u8]>, V)> {
        if self.is_empty() {
            return None;
        }
        self.rehash_step();
        let h = self.hash(key) as usize;
        let n = self.table_count();
        for t in self.tables[..n].iter_mut() {
            let b = h & t.mask();
            if let Some(node) = unlink(&mut t.buckets[b], key) {
                t.used -= 1;
                self.key_bytes -= node.key.heap_bytes();
                let Node { key, value, .. } = *node;
                self.shrink_if_needed();
                return Some((key.into_boxed(), value));
            }
        }
        None
    }

    /// One SCAN step from `cursor` (0 starts a scan). Visits buckets in
    /// reverse-binary cursor order, calling `f` for every entry of each
    /// visited bucket, until at least `count` entries were emitted, the scan
    /// wrapped (returns 0), or `10 * count` bucket positions were visited
    /// (Redis's bound on work for sparse tables). Returns the next cursor.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &V)) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let count = count.max(1);
        let max_visits = count.saturating_mul(10);
        let mut v = cursor;
        let mut emitted = 0usize;
        let mut visits = 0usize;
        loop {
            if self.rehash_idx.is_none() {
                let t = &self.tables[0];
                let m = t.mask() as u64;
                emitted += emit_chain(&t.buckets[(v & m) as usize], &mut f);
                visits += 1;
                v = next_cursor(v, m);
            } else {
                let (small, large) = if self.tables[0].size() <= self.tables[1].size() {
                    (&self.tables[0], &self.tables[1])
                } else {
                    (&self.tables[1], &self.tables[0])
                };
                let m0 = small.mask() as u64;
                let m1 = large.mask() as u64;
                emitted += emit_chain(&small.buckets[(v & m0) as usize], &mut f);
                visits += 1;
                // Every bucket of the larger table that expands v & m0.
                loop {
                    emitted += emit_chain(&large.buckets[(v & m1) as usize], &mut f);
                    visits += 1;
                    v = next_cursor(v, m1);
                    if v & (m0 ^ m1) == 0 {
                        break;
                    }
                }
            }
            if v == 0 || emitted >= count || visits >= max_visits {
                return v;
            }
        }
    }

    /// A random entry, fair like Redis's `dictGetFairRandomKey`: samples a
    /// few entries from random bucket runs and picks one of them, falling
    /// back to a random non-empty bucket. `None` iff empty.
    pub fn random_entry(&self, rng: &mut impl FnMut() -> u64) -> Option<(&[u8], &V)> {
        if self.is_empty() {
            return None;
        }
        let mut picks: [Option<&Node<V>>; FAIR_SAMPLE] = [None; FAIR_SAMPLE];
        let mut n = 0;
        self.sample_nodes(FAIR_SAMPLE, rng, |node| {
            if n < FAIR_SAMPLE {
                picks[n] = Some(node);
                n += 1;
            }
        });
        let node = if n == 0 { self.random_node(rng)? } else { picks[below(rng(), n)]? };
        Some((&node.key, &node.value))
    }

    /// Redis's `dictGetRandomKey`: a random non-empty bucket, then a random
    /// element of its chain.
    fn random_node(&self, rng: &mut impl FnMut() -> u64) -> Option<&Node<V>> {
        if self.is_empty() {
            return None;
        }
        let t0 = &self.tables[0];
        let t1 = &self.tables[1];
        let s0 = t0.size();
        // Table-0 buckets below rehash_idx are empty: skip them.
        let start = self.rehash_idx.unwrap_or(0);
        let span = s0 + t1.size() - start;
        let bucket = |i: usize| -> Option<&Node<V>> {
            let h = start + i;
            if h >= s0 {
                t1.buckets[h - s0].as_deref()
            } else {
                t0.buckets[h].as_deref()
            }
        };
        let mut head = None;
        for _ in 0..RANDOM_PROBES {
            head = bucket(below(rng(), span));
            if head.is_some() {
                break;
            }
        }
        if head.is_none() {
            // Very sparse table: walk from a random point.
            let off = below(rng(), span);
            head = (0..span).find_map(|i| bucket((off + i) % span));
        }
        let head = head?;
        let mut chain_len = 0;
        let mut cur = Some(head);
        while let Some(n) = cur {
            chain_len += 1;
            cur = n.next.as_deref();
        }
        let mut node = head;
        for _ in 0..below(rng(), chain_len) {
            node = node.next.as_deref()?;
        }
        Some(node)
    }

    /// Up to `count` random entries (Redis's `dictGetSomeKeys`): walks runs of
    /// consecutive buckets from random positions, so entries are distinct
    /// unless the walk wraps a small table. May return fewer than `count`.
    pub fn sample(&self, count: usize, rng: &mut impl FnMut() -> u64, mut f: impl FnMut(&[u8], &V)) {
        self.sample_nodes(count, rng, |n| f(&n.key, &n.value));
    }

    fn sample_nodes<'a>(&'a self, count: usize, rng: &mut impl FnMut() -> u64, mut f: impl FnMut(&'a Node<V>)) {
        let count = count.min(self.len());
        if count == 0 {
            return;
        }
        let mut max_steps = count.saturating_mul(10);
        let rehash_idx = self.rehash_idx;
        let ntables = self.table_count();
        let s1 = if rehash_idx.is_some() { self.tables[1].size() } else { 0 };
        let max_mask = self.tables[0].size().max(s1) - 1;
        let mut i = rng() as usize & max_mask;
        let mut empty_run = 0usize;
        let mut stored = 0usize;
        while stored < count && max_steps > 0 {
            max_steps -= 1;
            for j in 0..ntables {
                if let Some(ridx) = rehash_idx {
                    // Table-0 buckets below rehash_idx are empty.
                    if j == 0 && i < ridx {
                        if i >= s1 {
                            i = ridx;
                        } else {
                            continue;
                        }
                    }
                }
                let t = &self.tables[j];
                if i >= t.size() {
                    continue;
                }
                match t.buckets[i].as_deref() {
                    None => {
                        empty_run += 1;
                        if empty_run >= 5 && empty_run > count {
                            i = rng() as usize & max_mask;
                            empty_run = 0;
                        }
                    }
                    Some(head) => {
                        empty_run = 0;
                        let mut cur = Some(head);
                        while let Some(n) = cur {
                            f(n);
                            stored += 1;
                            if stored == count {
                                return;
                            }
                            cur = n.next.as_deref();
                        }
                    }
                }
            }
            i = (i + 1) & max_mask;
        }
    }

    /// Every entry, in bucket order (table 0 then table 1).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> + '_ {
        self.tables.iter().flat_map(|t| t.buckets.iter()).flat_map(|b| ChainIter { cur: b.as_deref() })
    }

    /// Removes everything and frees the bucket arrays.
    pub fn clear(&mut self) {
        for t in &mut self.tables {
            t.drop_chains();
        }
        self.tables = [Table::empty(), Table::empty()];
        self.rehash_idx = None;
        self.key_bytes = 0;
    }

    /// Removes every entry for which `keep` returns false, then shrinks if
    /// the table became sparse.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &mut V) -> bool) {
        let mut freed_key_bytes = 0;
        for t in &mut self.tables {
            let Table { buckets, used } = t;
            for b in buckets.iter_mut() {
                let mut link = b;
                loop {
                    let remove = match link.as_deref_mut() {
                        None => break,
                        Some(n) => !keep(&n.key, &mut n.value),
                    };
                    if remove {
                        if let Some(mut n) = link.take() {
                            *link = n.next.take();
                            *used -= 1;
                            freed_key_bytes += n.key.heap_bytes();
                        }
                    } else {
                        match link {
                            Some(n) => link = &mut n.next,
                            None => break,
                        }
                    }
                }
            }
        }
        self.key_bytes -= freed_key_bytes;
        self.shrink_if_needed();
    }

    /// Bytes of heap this dict itself holds: bucket arrays + nodes + key
    /// bytes (not what `V` owns, not allocator overhead).
    pub fn heap_bytes(&self) -> usize {
        self.bucket_count() * mem::size_of::<Link<V>>() + self.len() * mem::size_of::<Node<V>>() + self.key_bytes
    }

    /// Performs up to `n` rehash steps (each migrates one non-empty bucket);
    /// for an idle loop to finish a rehash that lookups via `get` don't
    /// advance. Returns whether a rehash is still in progress.
    pub fn rehash_steps(&mut self, n: usize) -> bool {
        self.rehash(n)
    }

    #[inline]
    fn rehash_step(&mut self) {
        if self.rehash_idx.is_some() {
            self.rehash(REHASH_STEP_BUCKETS);
        }
    }

    /// Migrates up to `n` non-empty buckets (visiting at most `10 n` empty
    /// ones). Returns whether the rehash is still in progress.
    fn rehash(&mut self, n: usize) -> bool {
        let Some(mut idx) = self.rehash_idx else {
            return false;
        };
        let seed = self.seed;
        let [t0, t1] = &mut self.tables;
        debug_assert!(t1.size() > 0 && idx < t0.size());
        let shrinking = t1.size() < t0.size();
        let mask1 = t1.mask();
        let mut empty_visits = n.saturating_mul(10);
        for _ in 0..n {
            if t0.used == 0 {
                break;
            }
            while t0.buckets[idx].is_none() {
                idx += 1;
                empty_visits -= 1;
                if empty_visits == 0 {
                    debug_assert!(idx < t0.size());
                    self.rehash_idx = Some(idx);
                    return true;
                }
            }
            let mut chain = t0.buckets[idx].take();
            while let Some(mut node) = chain {
                chain = node.next.take();
                let dst = if shrinking { idx & mask1 } else { xxh3_64_with_seed(&node.key, seed) as usize & mask1 };
                node.next = t1.buckets[dst].take();
                t1.buckets[dst] = Some(node);
                t0.used -= 1;
                t1.used += 1;
            }
            idx += 1;
        }
        if t0.used == 0 {
            debug_assert!(t0.buckets[idx.min(t0.size())..].iter().all(Option::is_none));
            *t0 = mem::replace(t1, Table::empty());
            self.rehash_idx = None;
            false
        } else {
            debug_assert!(idx < t0.size());
            self.rehash_idx = Some(idx);
            true
        }
    }

    /// Allocates table 0 on first use; starts a grow when `len >= buckets`.
    fn expand_if_needed(&mut self) {
        if self.rehash_idx.is_some() {
            return;
        }
        let size = self.tables[0].size();
        if size == 0 {
            self.tables[0] = Table::with_size(MIN_SIZE);
        } else if self.len() >= size {
            if let Some(new_size) = (self.len() + 1).checked_next_power_of_two() {
                self.start_resize(new_size);
            }
        }
    }

    /// Starts a shrink when `len < buckets / 8` (tables above `MIN_SIZE`).
    fn shrink_if_needed(&mut self) {
        if self.rehash_idx.is_some() {
            return;
        }
        let size = self.tables[0].size();
        if size > MIN_SIZE && self.len() < size / SHRINK_RATIO {
            let new_size = self.len().next_power_of_two().max(MIN_SIZE);
            self.start_resize(new_size);
        }
    }

    fn start_resize(&mut self, new_size: usize) {
        debug_assert!(self.rehash_idx.is_none());
        if new_size == self.tables[0].size() {
            return;
        }
        if self.is_empty() {
            self.tables[0] = Table::with_size(new_size);
            return;
        }
        self.tables[1] = Table::with_size(new_size);
        self.rehash_idx = Some(0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};
    use std::time::Instant;

    /// xorshift64* PRNG.
    struct Rng(u64);
    impl Rng {
        fn new(seed: u64) -> Self {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn key(i: u64) -> Vec<u8> {
        format!("key:{i}").into_bytes()
    }

    /// Full structural check of the invariants (test-only, O(n)).
    fn check_invariants<V>(d: &Dict<V>) {
        let mut seen = HashSet::new();
        let mut key_bytes = 0;
        for (ti, t) in d.tables.iter().enumerate() {
            assert!(t.size() == 0 || (t.size().is_power_of_two() && t.size() >= MIN_SIZE));
            let mut used = 0;
            for (b, link) in t.buckets.iter().enumerate() {
                let mut cur = link.as_deref();
                while let Some(n) = cur {
                    assert_eq!(d.hash(&n.key) as usize & t.mask(), b);
                    assert!(seen.insert(n.key.clone()), "duplicate key");
                    if ti == 0 {
                        if let Some(r) = d.rehash_idx {
                            assert!(b >= r);
                        }
                    }
                    used += 1;
                    key_bytes += n.key.heap_bytes();
                    cur = n.next.as_deref();
                }
            }
            assert_eq!(used, t.used);
        }
        assert_eq!(d.tables[1].size() == 0, d.rehash_idx.is_none());
        assert_eq!(key_bytes, d.key_bytes);
        assert_eq!(seen.len(), d.len());
    }

    fn check_against_model(d: &Dict<u64>, model: &HashMap<Vec<u8>, u64>) {
        assert_eq!(d.len(), model.len());
        assert_eq!(d.is_empty(), model.is_empty());
        for (k, v) in model {
            assert_eq!(d.get(k), Some(v));
        }
        let mut n = 0;
        for (k, v) in d.iter() {
            assert_eq!(model.get(k), Some(v));
            n += 1;
        }
        assert_eq!(n, model.len());
        check_invariants(d);
    }

    #[test]
    fn empty_dict() {
        let mut d: Dict<u64> = Dict::default();
        assert!(d.is_empty());
        assert_eq!(d.get(b"x"), None);
        assert_eq!(d.get_mut(b"x"), None);
        assert_eq!(d.remove(b"x"), None);
        assert_eq!(d.scan(0, 10, |_, _| panic!()), 0);
        assert_eq!(d.iter().count(), 0);
        assert_eq!(d.heap_bytes(), 0);
        let mut r = Rng::new(1);
        assert!(d.random_entry(&mut || r.next()).is_none());
        d.sample(10, &mut || r.next(), |_, _| panic!());
    }

    #[test]
    fn basic_api() {
        let mut d = Dict::new(42);
        assert_eq!(d.insert(b"a", 1), None);
        assert_eq!(d.insert(b"a", 2), Some(1));
        assert_eq!(d.get(b"a"), Some(&2));
        *d.get_mut(b"a").unwrap() += 1;
        assert_eq!(d.get(b"a"), Some(&3));
        let (v, ins) = d.get_or_insert_with(b"b", || 10);
        assert!(ins);
        *v += 1;
        let (v, ins) = d.get_or_insert_with(b"b", || panic!());
        assert!(!ins);
        assert_eq!(*v, 11);
        assert_eq!(d.insert_boxed(b"c".to_vec().into_boxed_slice(), 5), None);
        assert_eq!(d.insert_boxed(b"c".to_vec().into_boxed_slice(), 6), Some(5));
        assert_eq!(d.len(), 3);
        assert!(d.contains_key(b"c"));
        let (k, v) = d.remove_entry(b"c").unwrap();
        assert_eq!((&*k, v), (&b"c"[..], 6));
        assert_eq!(d.remove(b"a"), Some(3));
        assert_eq!(d.remove(b"a"), None);
        assert_eq!(d.len(), 1);
        d.clear();
        assert!(d.is_empty());
        assert_eq!(d.bucket_count(), 0);
        d.insert(b"", 7);
        assert_eq!(d.get(b""), Some(&7));
    }

    #[test]
    fn model_random_ops() {
        for seed in [1u64, 7, 12345] {
            let mut rng = Rng::new(seed);
            let mut d: Dict<u64> = Dict::new(seed);
            let mut model: HashMap<Vec<u8>, u64> = HashMap::new();
            let mut grows = 0;
            let mut shrinks = 0;
            let mut last_buckets = 0;
            // Phases alternate between growing (mostly inserts) until len
            // reaches a random high mark and shrinking (mostly removes of
            // present keys) until len drops to a random low mark; 100k ops.
            let mut growing = true;
            let mut target = 1000 + rng.below(12_000) as usize;
            let mut present: Vec<Vec<u8>> = Vec::new();
            let mut phases = 0;
            for _ in 0..100_000 {
                if growing && model.len() >= target {
                    growing = false;
                    target = rng.below(200) as usize;
                    present = model.keys().cloned().collect();
                    present.sort(); // deterministic despite HashMap order
                    check_against_model(&d, &model);
                    phases += 1;
                } else if !growing && model.len() <= target {
                    growing = true;
                    target = 1000 + rng.below(12_000) as usize;
                    check_against_model(&d, &model);
                    phases += 1;
                }
                let mut k = key(rng.below(60_000));
                let op = rng.below(100);
                let insert_pct = if growing { 80 } else { 10 };
                if op < insert_pct {
                    let v = rng.next();
                    match rng.below(3) {
                        0 => assert_eq!(d.insert(&k, v), model.insert(k, v)),
                        1 => assert_eq!(d.insert_boxed(k.clone().into_boxed_slice(), v), model.insert(k, v)),
                        _ => {
                            let existed = model.contains_key(&k);
                            let (dv, ins) = d.get_or_insert_with(&k, || v);
                            assert_eq!(ins, !existed);
                            *dv = dv.wrapping_add(1);
                            let mv = model.entry(k).or_insert(v);
                            *mv = mv.wrapping_add(1);
                        }
                    }
                } else if op < insert_pct + 70 {
                    if !growing && present.is_empty() {
                        present = model.keys().cloned().collect();
                        present.sort(); // deterministic despite HashMap order
                    }
                    if !growing && !present.is_empty() {
                        let i = rng.below(present.len() as u64) as usize;
                        k = present.swap_remove(i);
                    }
                    if rng.below(2) == 0 {
                        assert_eq!(d.remove(&k), model.remove(&k));
                    } else {
                        let got = d.remove_entry(&k);
                        let want = model.remove_entry(&k);
                        assert_eq!(got.map(|(k, v)| (k.to_vec(), v)), want);
                    }
                } else if op < insert_pct + 80 {
                    assert_eq!(d.get_mut(&k).copied(), model.get(&k).copied());
                } else {
                    assert_eq!(d.get(&k), model.get(&k));
                    assert_eq!(d.contains_key(&k), model.contains_key(&k));
                }
                assert_eq!(d.len(), model.len());
                let b = d.tables[0].size();
                if b > last_buckets && last_buckets != 0 {
                    grows += 1;
                } else if b < last_buckets {
                    shrinks += 1;
                }
                last_buckets = b;
            }
            check_against_model(&d, &model);
            assert!(phases >= 4, "phases {phases}");
            // retain
            d.retain(|_, v| *v % 3 != 0);
            model.retain(|_, v| *v % 3 != 0);
            check_against_model(&d, &model);
            d.retain(|_, _| false);
            assert!(d.is_empty());
            check_invariants(&d);
            assert!(grows > 5 && shrinks > 2, "grows {grows} shrinks {shrinks}");
        }
    }

    /// Runs a scan with random inserts/removes between every call; checks the
    /// SCAN guarantee.
    fn scan_property(seed: u64, n: u64) {
        let mut rng = Rng::new(seed ^ n);
        let mut d: Dict<u64> = Dict::new(seed);
        let mut next_id = 0u64;
        // Live keys as a Vec (for random removal) + index.
        let mut live: Vec<u64> = Vec::new();
        let mut pos: HashMap<u64, usize> = HashMap::new();
        let insert = |d: &mut Dict<u64>, live: &mut Vec<u64>, pos: &mut HashMap<u64, usize>, id: u64| {
            assert!(d.insert(&key(id), id).is_none());
            pos.insert(id, live.len());
            live.push(id);
        };
        for _ in 0..n {
            insert(&mut d, &mut live, &mut pos, next_id);
            next_id += 1;
        }
        let initial: HashSet<u64> = live.iter().copied().collect();
        let mut removed: HashSet<u64> = HashSet::new();
        let mut returned: HashSet<u64> = HashSet::new();
        // Enough churn per call that the table grows ~4x and shrinks back
        // below 1/10 within one scan, whatever n is.
        let ops_per_call = 150;
        let mut growing = true;
        let mut max_buckets = d.bucket_count();
        let (mut grows, mut shrinks) = (0, 0);
        let mut last = d.tables[0].size();
        let mut cursor = 0;
        let mut calls = 0u64;
        loop {
            let count = 1 + rng.below(20) as usize;
            cursor = d.scan(cursor, count, |k, v| {
                let id: u64 = std::str::from_utf8(&k[4..]).unwrap().parse().unwrap();
                assert_eq!(*v, id);
                // Present right now (no mutation during a scan call).
                assert!(pos.contains_key(&id), "returned a key not present");
                returned.insert(id);
            });
            calls += 1;
            max_buckets = max_buckets.max(d.bucket_count());
            assert!(calls <= 2 * max_buckets as u64 + 16, "scan did not terminate: {calls} calls, max buckets {max_buckets}");
            if cursor == 0 {
                break;
            }
            // Switch phase to force both grows and shrinks.
            if growing && live.len() as u64 >= 4 * n + 8 {
                growing = false;
            } else if !growing && (live.len() as u64) * 10 <= n {
                growing = true;
            }
            for _ in 0..ops_per_call {
                let r = rng.below(100);
                let do_insert = if growing { r < 75 } else { r < 10 };
                if do_insert || live.is_empty() {
                    insert(&mut d, &mut live, &mut pos, next_id);
                    next_id += 1;
                } else {
                    let i = rng.below(live.len() as u64) as usize;
                    let id = live.swap_remove(i);
                    pos.remove(&id);
                    if i < live.len() {
                        pos.insert(live[i], i);
                    }
                    assert_eq!(d.remove(&key(id)), Some(id));
                    removed.insert(id);
                }
                let b = d.tables[0].size();
                if b > last {
                    grows += 1;
                } else if b < last {
                    shrinks += 1;
                }
                last = b;
            }
        }
        for id in &initial {
            if !removed.contains(id) {
                assert!(returned.contains(id), "key {id} present throughout was not returned");
            }
        }
        check_invariants(&d);
        if n >= 1000 {
            assert!(grows > 0 && shrinks > 0, "n {n}: grows {grows} shrinks {shrinks}");
        }
    }

    #[test]
    fn scan_guarantee_under_resizes() {
        for seed in [1u64, 2, 3, 99] {
            for n in [10, 1000, 100_000] {
                scan_property(seed, n);
            }
        }
    }

    #[test]
    fn scan_no_mutation_returns_each_once() {
        let mut d = Dict::new(5);
        for i in 0..10_000 {
            d.insert(&key(i), i);
        }
        while d.is_rehashing() {
            d.rehash_steps(100);
        }
        let mut seen = HashMap::new();
        let mut cursor = 0;
        loop {
            let mut got = 0;
            cursor = d.scan(cursor, 7, |k, _| {
                *seen.entry(k.to_vec()).or_insert(0) += 1;
                got += 1;
            });
            if cursor == 0 {
                break;
            }
            assert!(got >= 7 || got > 0 || cursor != 0);
        }
        assert_eq!(seen.len(), 10_000);
        assert!(seen.values().all(|&c| c == 1));
    }

    #[test]
    fn scan_during_incremental_rehash() {
        for grow in [true, false] {
            let mut d = Dict::new(11);
            let mut keys: Vec<u64> = Vec::new();
            if grow {
                // Insert until a grow starts and freeze mid-rehash.
                let mut i = 0;
                while !(d.is_rehashing() && d.tables[0].used > 100) {
                    d.insert(&key(i), i);
                    keys.push(i);
                    i += 1;
                }
            } else {
                for i in 0..5000 {
                    d.insert(&key(i), i);
                }
                while d.is_rehashing() {
                    d.rehash_steps(100);
                }
                // Remove until a shrink starts, leaving a mid-rehash state.
                let mut i = 0;
                while !(d.is_rehashing() && d.tables[0].used > 50) {
                    d.remove(&key(i));
                    i += 1;
                }
                keys = (i..5000).collect();
            }
            assert!(d.is_rehashing());
            check_invariants(&d);
            // Full scan entirely during the rehash.
            let mut seen = HashSet::new();
            let mut cursor = 0;
            loop {
                cursor = d.scan(cursor, 3, |k, _| {
                    seen.insert(k.to_vec());
                });
                if cursor == 0 {
                    break;
                }
            }
            assert!(d.is_rehashing());
            for k in &keys {
                assert!(seen.contains(&key(*k)));
            }
            // A scan that starts during the rehash and continues after it
            // finishes (cursor from the two-table phase used on one table).
            let mut seen = HashSet::new();
            let mut cursor = d.scan(0, 5, |k, _| {
                seen.insert(k.to_vec());
            });
            let mut calls = 0;
            while cursor != 0 {
                if calls == 3 {
                    while d.rehash_steps(1000) {}
                }
                cursor = d.scan(cursor, 5, |k, _| {
                    seen.insert(k.to_vec());
                });
                calls += 1;
            }
            assert!(!d.is_rehashing());
            for k in &keys {
                assert!(seen.contains(&key(*k)));
            }
            check_invariants(&d);
        }
    }

    #[test]
    fn random_entry_and_sample() {
        let mut r = Rng::new(3);
        let mut rng = || r.next();
        let mut d: Dict<u64> = Dict::new(3);
        assert!(d.random_entry(&mut rng).is_none());
        d.insert(b"only", 1);
        assert_eq!(d.random_entry(&mut rng), Some((&b"only"[..], &1)));
        for i in 0..2000 {
            d.insert(&key(i), i);
        }
        // Check both in steady state and mid-rehash (2000 inserts end mid-grow
        // or not, depending on timing; force both).
        for phase in 0..2 {
            if phase == 1 {
                let mut i = 2000;
                while !d.is_rehashing() {
                    d.insert(&key(i), i);
                    i += 1;
                }
            }
            let mut hits = HashSet::new();
            for _ in 0..20_000 {
                let (k, v) = d.random_entry(&mut rng).unwrap();
                assert_eq!(d.get(k), Some(v));
                hits.insert(k.to_vec());
            }
            // Fair enough to reach most keys.
            assert!(hits.len() * 10 > d.len() * 8, "{} of {}", hits.len(), d.len());
            let mut n = 0;
            d.sample(16, &mut rng, |k, v| {
                assert_eq!(d.get(k), Some(v));
                n += 1;
            });
            assert!(n > 0 && n <= 16);
        }
        // A very sparse table (retain without removing via shrink first).
        d.retain(|k, _| k == b"key:5");
        for _ in 0..100 {
            assert_eq!(d.random_entry(&mut rng).unwrap().0, b"key:5");
            let mut n = 0;
            d.sample(10, &mut rng, |k, _| {
                assert_eq!(k, b"key:5");
                n += 1;
            });
            assert!(n <= 1);
        }
    }

    #[test]
    fn drop_large_dict() {
        let mut d = Dict::new(9);
        for i in 0..1_000_000u64 {
            d.insert(&i.to_le_bytes(), i);
        }
        assert_eq!(d.len(), 1_000_000);
        drop(d);
    }

    /// A single 1M-node chain (built by hand, since xxh3 collisions can't be
    /// forced) must drop without overflowing the stack.
    #[test]
    fn drop_long_chain() {
        let mut d: Dict<u64> = Dict::new(0);
        d.tables[0] = Table::with_size(MIN_SIZE);
        let mut head: Link<u64> = None;
        for i in 0..1_000_000u64 {
            head = Some(Box::new(Node { key: SmallBytes::new(&i.to_le_bytes()), value: i, next: head }));
        }
        d.tables[0].buckets[0] = head;
        d.tables[0].used = 1_000_000;
        drop(d);
        let mut d: Dict<u64> = Dict::new(0);
        d.tables[0] = Table::with_size(MIN_SIZE);
        let mut head: Link<u64> = None;
        for i in 0..1_000_000u64 {
            head = Some(Box::new(Node { key: SmallBytes::new(&i.to_le_bytes()), value: i, next: head }));
        }
        d.tables[0].buckets[0] = head;
        d.tables[0].used = 1_000_000;
        d.key_bytes = 8_000_000;
        d.clear();
        assert!(d.is_empty());
    }

    #[test]
    fn heap_bytes_accounting() {
        let mut d: Dict<u64> = Dict::new(1);
        // Short keys live inside the node; long ones add their bytes.
        d.insert(b"abc", 1);
        assert_eq!(d.heap_bytes(), MIN_SIZE * mem::size_of::<Link<u64>>() + mem::size_of::<Node<u64>>());
        let long = [b'k'; 40];
        d.insert(&long, 2);
        assert_eq!(d.heap_bytes(), MIN_SIZE * mem::size_of::<Link<u64>>() + 2 * mem::size_of::<Node<u64>>() + 40);
        d.remove(&long);
        d.remove(b"abc");
        assert_eq!(d.heap_bytes(), MIN_SIZE * mem::size_of::<Link<u64>>());
    }

    /// Hand-run micro-measurement:
    /// `cargo test --release -- --ignored --nocapture micro_bench`
    #[test]
    #[ignore]
    fn micro_bench() {
        const N: u64 = 1_000_000;
        let keys: Vec<Vec<u8>> = (0..N).map(key).collect();
        for round in 0..3 {
            let mut d: Dict<u64> = Dict::new(0x5eed);
            let t = Instant::now();
            for (i, k) in keys.iter().enumerate() {
                d.insert(k, i as u64);
            }
            let ins = t.elapsed().as_nanos() as f64 / N as f64;
            let t = Instant::now();
            let mut sum = 0u64;
            for k in &keys {
                sum = sum.wrapping_add(*d.get(k).unwrap());
            }
            let get = t.elapsed().as_nanos() as f64 / N as f64;
            let t = Instant::now();
            let mut h = 0u64;
            for k in &keys {
                h ^= xxh3_64_with_seed(k, 1);
            }
            let hash = t.elapsed().as_nanos() as f64 / N as f64;
            let t = Instant::now();
            let mut std_map: HashMap<Box<[u8]>, u64> = HashMap::new();
            for (i, k) in keys.iter().enumerate() {
                std_map.insert(k.as_slice().into(), i as u64);
            }
            let std_ins = t.elapsed().as_nanos() as f64 / N as f64;
            let t = Instant::now();
            for k in &keys {
                sum = sum.wrapping_add(*std_map.get(k.as_slice()).unwrap());
            }
            let std_get = t.elapsed().as_nanos() as f64 / N as f64;
            let t = Instant::now();
            for k in &keys {
                d.remove(k);
            }
            let rem = t.elapsed().as_nanos() as f64 / N as f64;
            println!(
                "round {round}: insert {ins:.1} ns, get {get:.1} ns, remove {rem:.1} ns, \
                 xxh3 {hash:.1} ns | std HashMap insert {std_ins:.1} ns get {std_get:.1} ns \
                 (sum {sum} h {h})"
            );
            if round == 0 {
                let mut d: Dict<u64> = Dict::new(0x5eed);
                for (i, k) in keys.iter().enumerate() {
                    d.insert(k, i as u64);
                }
                while d.rehash_steps(1000) {}
                println!(
                    "heap_bytes {} for {} keys = {:.1} bytes/key ({} buckets, node {} B)",
                    d.heap_bytes(),
                    d.len(),
                    d.heap_bytes() as f64 / d.len() as f64,
                    d.bucket_count(),
                    mem::size_of::<Node<u64>>()
                );
            }
        }
    }
}
