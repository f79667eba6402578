//! The sorted-set container: member → score in a [`Dict`] (ZSCORE, ZSCAN,
//! ZRANDMEMBER) beside a skip list ordered by (score, member).
//!
//! # Why a skip list with spans
//!
//! The commands need, in O(log n): insert and remove, the rank of a member,
//! the member at a rank, and the first/last rank inside a score or lex
//! bound (so ZCOUNT and ZLEXCOUNT are two searches, not a walk). Both a
//! skip list whose links carry spans (Redis's `zskiplist`) and a B-tree
//! whose children carry subtree counts do all of that. The skip list is
//! chosen because it is Redis's own structure, so its costs and its
//! behaviour on ties (equal scores ordered by member bytes, `-0` equal to
//! `0`) are Redis's by construction, and its code is a fraction of a
//! counted B-tree's (no splits, merges or rebalancing). The price is about
//! one more link per member than a B-tree's packed leaves; see the cost
//! below.
//!
//! # Layout
//!
//! Nodes live in an arena (`Vec<Node>`) and point at each other with `u32`
//! indexes, never raw pointers: no `unsafe`, half the size of a pointer,
//! and a freed node is reused by the next insert. Node 0 is the head
//! sentinel. Every node has level 0 (its `next0` link and the `back` link
//! that makes iteration double-ended); a node of height `h > 1` also owns a
//! run of `h - 1` [`Link`]s in a second arena, each a forward index and a
//! span (how many level-0 steps that link skips). Freed runs are kept on
//! one free list per run length. Level 0 needs no span (it is always 1).
//! Heights are drawn as in Redis (P = 1/4, at most 32) from a per-set
//! xorshift generator, so three nodes in four carry no upper links at all.
//! When a set shrinks to under a quarter of its arena, the arena is rebuilt
//! compactly (amortised O(1) per removal).
//!
//! Ranks are found by summing spans on the way down; the member at a rank
//! by walking down while the sum stays within it; a bound's first rank by
//! counting the members before it (a descent while the bound is not yet
//! reached). So `rank`, `select`, every bound search and both counts are
//! O(log n) expected, and a range of k members is O(log n + k).
//!
//! # Cost per member
//!
//! The `heap_bytes_per_member` test measures it: for members of up to 22
//! bytes (kept inline) it is about 103 bytes per member at a million
//! members: 48 for the node (50 with the arena's spare capacity), about 3
//! for upper links (one 8-byte link per three members), 40 for the dict's
//! node and 8 for its bucket slot, not counting the allocator's overhead
//! on the dict's boxed nodes. The member's bytes are held twice, in the
//! dict and in the node, so a member longer than 22 bytes adds twice its
//! length.
//!
//! This module holds data only; the log records that change a sorted set
//! are [`super::change::Change::ZAdd`] and [`super::change::Change::ZRem`],
//! which carry absolute scores (ZINCRBY logs the result), so replay never
//! redoes arithmetic.

use std::cmp::Ordering;
use std::ops::Bound;

use crate::bytes::SmallBytes;
use crate::dict::Dict;

/// The "no node" index.
const NIL: u32 = u32::MAX;
/// The head sentinel's index.
const HEAD: u32 = 0;
/// Highest node (Redis's `ZSKIPLIST_MAXLEVEL`).
const MAX_LEVEL: usize = 32;
/// Arenas smaller than this are never compacted.
const COMPACT_MIN: usize = 64;

/// An upper-level link: the next node at that level and how many level-0
/// steps it skips.
#[derive(Debug, Clone, Copy)]
struct Link {
    next: u32,
    span: u32,
}

/// One member (or the head sentinel, or a free slot).
#[derive(Clone)]
struct Node {
    member: SmallBytes,
    score: f64,
    /// The previous node at level 0 (NIL for the first).
    back: u32,
    /// The next node at level 0; for a free slot, the next free slot.
    next0: u32,
    /// Index of this node's first upper link (levels 1..height); NIL when height is 1.
    upper: u32,
    /// Levels, 1..=32; 0 for a free slot.
    height: u8,
}

const _: () = assert!(std::mem::size_of::<Node>() == 48);

/// Redis's order of sorted-set elements: by score (`-0` equals `0`), then by member bytes.
fn cmp_elem(score_a: f64, member_a: &[u8], score_b: f64, member_b: &[u8]) -> Ordering {
    match score_a.partial_cmp(&score_b) {
        Some(Ordering::Equal) | None => member_a.cmp(member_b),
        Some(o) => o,
    }
}

/// A sorted-set value.
pub struct ZSet {
    scores: Dict<f64>,
    /// Node 0 is the head; empty until the first insert.
    nodes: Vec<Node>,
    /// Upper links of the nodes (not the head's).
    links: Vec<Link>,
    /// The head's upper links, levels 1..level.
    head_links: Vec<Link>,
    /// First free node slot (chained through `next0`).
    free_node: u32,
    /// First free run of upper links per run length (chained through `next`); index = length.
    free_runs: [u32; MAX_LEVEL],
    /// Free node slots.
    free_count: usize,
    /// Height of the tallest node (1 when empty).
    level: usize,
    /// Nodes in the list (equals the dict's length between calls).
    count: usize,
    /// Heap bytes of the members too long to be inline in their nodes.
    member_heap: usize,
    /// The last node (NIL when empty).
    tail: u32,
    /// xorshift64 state for node heights.
    rng: u64,
}

impl Default for ZSet {
    fn default() -> ZSet {
        ZSet::with_seed(rand::random())
    }
}

impl Clone for ZSet {
    fn clone(&self) -> ZSet {
        let mut scores = Dict::new(rand::random());
        for (m, s) in self.iter() {
            scores.insert(m, s);
        }
        ZSet {
            scores,
            nodes: self.nodes.clone(),
            links: self.links.clone(),
            head_links: self.head_links.clone(),
            free_node: self.free_node,
            free_runs: self.free_runs,
            free_count: self.free_count,
            level: self.level,
            count: self.count,
            member_heap: self.member_heap,
            tail: self.tail,
            rng: self.rng ^ 0x9e37_79b9_7f4a_7c15,
        }
    }
}

impl std::fmt::Debug for ZSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZSet({} members)", self.len())
    }
}

/// Members in ascending (score, member) order, from both ends.
pub struct Iter<'a> {
    z: &'a ZSet,
    front: u32,
    back: u32,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<(&'a [u8], f64)> {
        if self.left == 0 {
            return None;
        }
        let n = &self.z.nodes[self.front as usize];
        self.front = n.next0;
        self.left -= 1;
        Some((&n.member, n.score))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let n = &self.z.nodes[self.back as usize];
        self.back = n.back;
        self.left -= 1;
        Some((&n.member, n.score))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl ZSet {
    /// An empty set whose node heights come from `seed` (tests use it for repeatable shapes).
    pub fn with_seed(seed: u64) -> ZSet {
        ZSet {
            scores: Dict::new(seed.rotate_left(17) ^ 0x5bd1_e995),
            nodes: Vec::new(),
            links: Vec::new(),
            head_links: Vec::new(),
            free_node: NIL,
            free_runs: [NIL; MAX_LEVEL],
            free_count: 0,
            level: 1,
            count: 0,
            member_heap: 0,
            tail: NIL,
            rng: seed | 1,
        }
    }

    /// Members.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What OBJECT ENCODING answers.
    pub fn encoding(&self) -> &'static str {
        "skiplist"
    }

    /// A member's score.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets a member's score (not NaN); returns the old one.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        debug_assert!(!score.is_nan(), "NaN score for a sorted set member");
        let old = self.scores.insert(member, score);
        match old {
            Some(o) if o.to_bits() == score.to_bits() => {}
            Some(o) => {
                self.update_score(member, o, score);
            }
            None => self.list_insert(member, score),
        }
        old
    }

    /// Removes a member; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let old = self.scores.remove(member)?;
        self.list_remove(member, old);
        self.maybe_compact();
        Some(old)
    }

    /// Zero-based rank in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let s = self.score(member)?;
        Some(self.count_before(|n| cmp_elem(n.score, &n.member, s, member) == Ordering::Less))
    }

    /// The member and score at a zero-based ascending rank.
    pub fn select(&self, rank: usize) -> Option<(&[u8], f64)> {
        let n = &self.nodes[self.node_at(rank)? as usize];
        Some((&n.member, n.score))
    }

    /// Members in ascending (score, member) order.
    pub fn iter(&self) -> Iter<'_> {
        let front = self.nodes.first().map_or(NIL, |h| h.next0);
        Iter { z: self, front, back: self.tail, left: self.len() }
    }

    /// Members with ranks `start..=stop` (ascending); `stop` is clamped to
    /// the last rank, and `start > stop` gives nothing.
    pub fn range_by_rank(&self, start: usize, stop: usize) -> Iter<'_> {
        let stop = stop.min(self.len().saturating_sub(1));
        match (self.node_at(start), self.node_at(stop)) {
            (Some(front), Some(back)) if start <= stop => Iter { z: self, front, back, left: stop - start + 1 },
            _ => Iter { z: self, front: NIL, back: NIL, left: 0 },
        }
    }

    /// The first rank whose score is inside `min` (`>=` for included, `>`
    /// for excluded); `len()` when there is none.
    pub fn first_rank_by_score(&self, min: Bound<f64>) -> usize {
        match min {
            Bound::Unbounded => 0,
            Bound::Included(x) => self.count_before(|n| n.score < x),
            Bound::Excluded(x) => self.count_before(|n| n.score <= x),
        }
    }

    /// The last rank whose score is inside `max` (`<=` for included, `<` for excluded).
    pub fn last_rank_by_score(&self, max: Bound<f64>) -> Option<usize> {
        let upto = match max {
            Bound::Unbounded => self.len(),
            Bound::Included(x) => self.count_before(|n| n.score <= x),
            Bound::Excluded(x) => self.count_before(|n| n.score < x),
        };
        upto.checked_sub(1)
    }

    /// The first rank whose member is inside `min`, comparing members as
    /// bytes (meaningful when all scores are equal, as Redis documents);
    /// `len()` when there is none. Unbounded is `-`.
    pub fn first_rank_by_lex(&self, min: Bound<&[u8]>) -> usize {
        match min {
            Bound::Unbounded => 0,
            Bound::Included(x) => self.count_before(|n| &n.member[..] < x),
            Bound::Excluded(x) => self.count_before(|n| &n.member[..] <= x),
        }
    }

    /// The last rank whose member is inside `max` (as bytes). Unbounded is `+`.
    pub fn last_rank_by_lex(&self, max: Bound<&[u8]>) -> Option<usize> {
        let upto = match max {
            Bound::Unbounded => self.len(),
            Bound::Included(x) => self.count_before(|n| &n.member[..] <= x),
            Bound::Excluded(x) => self.count_before(|n| &n.member[..] < x),
        };
        upto.checked_sub(1)
    }

    /// The ranks `first..=last` of the members whose scores are within both bounds, None if none is.
    pub fn ranks_by_score(&self, min: Bound<f64>, max: Bound<f64>) -> Option<(usize, usize)> {
        let first = self.first_rank_by_score(min);
        let last = self.last_rank_by_score(max)?;
        (first <= last).then_some((first, last))
    }

    /// The ranks `first..=last` of the members within both lex bounds, None if none is.
    pub fn ranks_by_lex(&self, min: Bound<&[u8]>, max: Bound<&[u8]>) -> Option<(usize, usize)> {
        let first = self.first_rank_by_lex(min);
        let last = self.last_rank_by_lex(max)?;
        (first <= last).then_some((first, last))
    }

    /// Members whose scores are within both bounds (ZCOUNT), in O(log n).
    pub fn count_by_score(&self, min: Bound<f64>, max: Bound<f64>) -> usize {
        self.ranks_by_score(min, max).map_or(0, |(a, b)| b - a + 1)
    }

    /// Members within both lex bounds (ZLEXCOUNT), in O(log n).
    pub fn count_by_lex(&self, min: Bound<&[u8]>, max: Bound<&[u8]>) -> usize {
        self.ranks_by_lex(min, max).map_or(0, |(a, b)| b - a + 1)
    }

    /// The member → score table, for ZSCAN and random picks.
    pub fn dict(&self) -> &Dict<f64> {
        &self.scores
    }

    /// Heap bytes owned: the dict, both arenas (their capacity) and long members' bytes.
    pub fn heap_bytes(&self) -> usize {
        self.scores.heap_bytes()
            + self.nodes.capacity() * std::mem::size_of::<Node>()
            + (self.links.capacity() + self.head_links.capacity()) * std::mem::size_of::<Link>()
            + self.member_heap
    }

    // -----------------------------------------------------------------------
    // The skip list
    // -----------------------------------------------------------------------

    /// The link of node `x` at upper level `lvl` (>= 1).
    fn link(&self, x: u32, lvl: usize) -> Link {
        if x == HEAD {
            self.head_links[lvl - 1]
        } else {
            self.links[self.nodes[x as usize].upper as usize + lvl - 1]
        }
    }

    fn link_mut(&mut self, x: u32, lvl: usize) -> &mut Link {
        if x == HEAD {
            &mut self.head_links[lvl - 1]
        } else {
            let at = self.nodes[x as usize].upper as usize + lvl - 1;
            &mut self.links[at]
        }
    }

    /// The next node of `x` at level `lvl`.
    fn next(&self, x: u32, lvl: usize) -> u32 {
        if lvl == 0 {
            self.nodes[x as usize].next0
        } else {
            self.link(x, lvl).next
        }
    }

    fn set_next(&mut self, x: u32, lvl: usize, next: u32) {
        if lvl == 0 {
            self.nodes[x as usize].next0 = next;
        } else {
            self.link_mut(x, lvl).next = next;
        }
    }

    /// Level-0 steps the link of `x` at `lvl` skips.
    fn span(&self, x: u32, lvl: usize) -> usize {
        if lvl == 0 {
            1
        } else {
            self.link(x, lvl).span as usize
        }
    }

    /// Members before the first one for which `before` is false; `before`
    /// must hold for a prefix of the order only.
    fn count_before(&self, before: impl Fn(&Node) -> bool) -> usize {
        if self.nodes.is_empty() {
            return 0;
        }
        let mut x = HEAD;
        let mut rank = 0;
        for lvl in (0..self.level).rev() {
            loop {
                let nx = self.next(x, lvl);
                if nx == NIL || !before(&self.nodes[nx as usize]) {
                    break;
                }
                rank += self.span(x, lvl);
                x = nx;
            }
        }
        rank
    }

    /// The node at a zero-based rank.
    fn node_at(&self, rank: usize) -> Option<u32> {
        if rank >= self.count {
            return None;
        }
        let target = rank + 1;
        let mut x = HEAD;
        let mut traversed = 0;
        for lvl in (0..self.level).rev() {
            loop {
                let nx = self.next(x, lvl);
                if nx == NIL || traversed + self.span(x, lvl) > target {
                    break;
                }
                traversed += self.span(x, lvl);
                x = nx;
            }
            if traversed == target {
                return Some(x);
            }
        }
        None
    }

    /// Redis's `zslRandomLevel`: 1, then one more with probability 1/4, up to 32.
    fn random_height(&mut self) -> usize {
        let mut h = 1;
        while h < MAX_LEVEL {
            // xorshift64.
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            if self.rng & 3 != 0 {
                break;
            }
            h += 1;
        }
        h
    }

    /// A node slot holding `member`/`score` with `height` levels, links unset.
    fn alloc_node(&mut self, member: &[u8], score: f64, height: usize) -> u32 {
        let upper = if height > 1 { self.alloc_run(height - 1) } else { NIL };
        if member.len() > crate::bytes::INLINE {
            self.member_heap += member.len();
        }
        let node = Node { member: SmallBytes::new(member), score, back: NIL, next0: NIL, upper, height: height as u8 };
        if self.free_node != NIL {
            let x = self.free_node;
            self.free_node = self.nodes[x as usize].next0;
            self.free_count -= 1;
            self.nodes[x as usize] = node;
            x
        } else {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        }
    }

    fn alloc_run(&mut self, n: usize) -> u32 {
        let at = self.free_runs[n];
        if at != NIL {
            self.free_runs[n] = self.links[at as usize].next;
            at
        } else {
            let at = self.links.len() as u32;
            self.links.resize(self.links.len() + n, Link { next: NIL, span: 0 });
            at
        }
    }

    fn free(&mut self, x: u32) {
        let n = &mut self.nodes[x as usize];
        let (upper, height) = (n.upper, n.height as usize);
        self.member_heap -= n.member.heap_bytes();
        n.member = SmallBytes::new(b"");
        n.height = 0;
        n.upper = NIL;
        n.next0 = self.free_node;
        self.free_node = x;
        self.free_count += 1;
        if height > 1 {
            self.links[upper as usize].next = self.free_runs[height - 1];
            self.free_runs[height - 1] = upper;
        }
    }

    /// For each level, the last node before (score, member), and its rank.
    fn find_update(&self, member: &[u8], score: f64) -> ([u32; MAX_LEVEL], [usize; MAX_LEVEL]) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0usize; MAX_LEVEL];
        let mut x = HEAD;
        for lvl in (0..self.level).rev() {
            rank[lvl] = if lvl + 1 == self.level { 0 } else { rank[lvl + 1] };
            loop {
                let nx = self.next(x, lvl);
                if nx == NIL {
                    break;
                }
                let n = &self.nodes[nx as usize];
                if cmp_elem(n.score, &n.member, score, member) != Ordering::Less {
                    break;
                }
                rank[lvl] += self.span(x, lvl);
                x = nx;
            }
            update[lvl] = x;
        }
        (update, rank)
    }

    /// Redis's `zslInsert` (the member must not be in the list).
    fn list_insert(&mut self, member: &[u8], score: f64) {
        if self.nodes.is_empty() {
            self.nodes.push(Node { member: SmallBytes::new(b""), score: 0.0, back: NIL, next0: NIL, upper: NIL, height: MAX_LEVEL as u8 });
        }
        let (mut update, mut rank) = self.find_update(member, score);
        let len_before = self.count;
        let height = self.random_height();
        if height > self.level {
            for lvl in self.level..height {
                rank[lvl] = 0;
                update[lvl] = HEAD;
                self.head_links.push(Link { next: NIL, span: len_before as u32 });
            }
            self.level = height;
        }
        let x = self.alloc_node(member, score, height);
        for lvl in 0..height {
            let prev = update[lvl];
            let after = self.next(prev, lvl);
            self.set_next(x, lvl, after);
            self.set_next(prev, lvl, x);
            if lvl > 0 {
                let prev_span = self.link(prev, lvl).span as usize;
                let skipped = rank[0] - rank[lvl];
                self.link_mut(x, lvl).span = (prev_span - skipped) as u32;
                self.link_mut(prev, lvl).span = (skipped + 1) as u32;
            }
        }
        for (lvl, &prev) in update.iter().enumerate().take(self.level).skip(height) {
            self.link_mut(prev, lvl).span += 1;
        }
        self.nodes[x as usize].back = if update[0] == HEAD { NIL } else { update[0] };
        let after = self.nodes[x as usize].next0;
        if after != NIL {
            self.nodes[after as usize].back = x;
        } else {
            self.tail = x;
        }
        self.count += 1;
    }

    /// Redis's `zslDelete` of the node holding (score, member), which must exist.
    fn list_remove(&mut self, member: &[u8], score: f64) {
        let (update, _) = self.find_update(member, score);
        let x = self.next(update[0], 0);
        debug_assert!(x != NIL && &self.nodes[x as usize].member[..] == member, "member missing from the skip list");
        if x == NIL {
            return;
        }
        for (lvl, &prev) in update.iter().enumerate().take(self.level) {
            if self.next(prev, lvl) == x {
                let after = self.next(x, lvl);
                if lvl > 0 {
                    let xs = self.link(x, lvl).span;
                    let l = self.link_mut(prev, lvl);
                    l.span = l.span + xs - 1;
                }
                self.set_next(prev, lvl, after);
            } else if lvl > 0 {
                self.link_mut(prev, lvl).span -= 1;
            }
        }
        let (back, after) = (self.nodes[x as usize].back, self.nodes[x as usize].next0);
        if after != NIL {
            self.nodes[after as usize].back = back;
        } else {
            self.tail = back;
        }
        while self.level > 1 && self.next(HEAD, self.level - 1) == NIL {
            self.head_links.pop();
            self.level -= 1;
        }
        self.free(x);
        self.count -= 1;
        if self.count == 0 && self.scores.is_empty() {
            // Give the arenas back.
            *self = ZSet::with_seed(self.rng);
        }
    }

    /// Moves a member from `old` to `new` (Redis's `zslUpdateScore`): in
    /// place when its neighbours stay its neighbours, else remove and insert.
    fn update_score(&mut self, member: &[u8], old: f64, new: f64) {
        let (update, _) = self.find_update(member, old);
        let x = self.next(update[0], 0);
        if x == NIL {
            return;
        }
        let n = &self.nodes[x as usize];
        let prev_ok = n.back == NIL || {
            let p = &self.nodes[n.back as usize];
            cmp_elem(p.score, &p.member, new, member) == Ordering::Less
        };
        let next_ok = n.next0 == NIL || {
            let q = &self.nodes[n.next0 as usize];
            cmp_elem(q.score, &q.member, new, member) == Ordering::Greater
        };
        if prev_ok && next_ok {
            self.nodes[x as usize].score = new;
            return;
        }
        self.list_remove(member, old);
        self.list_insert(member, new);
    }

    /// Rebuilds the arenas compactly when under a quarter of the slots are in use.
    fn maybe_compact(&mut self) {
        if self.nodes.len() < COMPACT_MIN || self.len() * 4 >= self.nodes.len() {
            return;
        }
        let members: Vec<(SmallBytes, f64)> = self.iter().map(|(m, s)| (SmallBytes::new(m), s)).collect();
        let scores = std::mem::take(&mut self.scores);
        let mut fresh = ZSet::with_seed(self.rng);
        fresh.scores = scores;
        for (m, s) in &members {
            fresh.list_insert(m, *s);
        }
        fresh.nodes.shrink_to_fit();
        fresh.links.shrink_to_fit();
        *self = fresh;
    }

    /// Checks every invariant (tests).
    #[cfg(test)]
    fn check(&self) {
        assert_eq!(self.iter().count(), self.len());
        assert_eq!(self.count, self.len());
        assert_eq!(self.member_heap, self.iter().map(|(m, _)| if m.len() > crate::bytes::INLINE { m.len() } else { 0 }).sum::<usize>());
        if self.nodes.is_empty() {
            assert_eq!(self.len(), 0);
            return;
        }
        assert_eq!(self.nodes.len() - 1 - self.free_count, self.len());
        assert_eq!(self.head_links.len(), self.level - 1);
        // Level 0: order, back links, tail, dict agreement.
        let mut prev = NIL;
        let mut x = self.next(HEAD, 0);
        let mut rank_of = std::collections::HashMap::new();
        let mut i = 0;
        while x != NIL {
            let n = &self.nodes[x as usize];
            assert!(n.height >= 1);
            assert_eq!(n.back, prev);
            assert_eq!(self.scores.get(&n.member).map(|s| s.to_bits()), Some(n.score.to_bits()));
            if prev != NIL {
                let p = &self.nodes[prev as usize];
                assert_eq!(cmp_elem(p.score, &p.member, n.score, &n.member), Ordering::Less);
            }
            i += 1;
            rank_of.insert(x, i);
            prev = x;
            x = n.next0;
        }
        assert_eq!(self.tail, prev);
        // Upper levels: spans equal the rank difference.
        for lvl in 1..self.level {
            let mut x = HEAD;
            let mut r = 0;
            loop {
                let nx = self.next(x, lvl);
                if nx == NIL {
                    break;
                }
                assert!(self.nodes[nx as usize].height as usize > lvl);
                let rn = rank_of[&nx];
                assert_eq!(self.span(x, lvl), rn - r, "span at level {lvl}");
                r = rn;
                x = nx;
            }
        }
        assert!(self.level == 1 || self.next(HEAD, self.level - 1) != NIL);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The model: (score, member) pairs kept sorted as Redis orders them.
    #[derive(Default)]
    struct Model(Vec<(f64, Vec<u8>)>);

    impl Model {
        fn pos(&self, m: &[u8]) -> Option<usize> {
            self.0.iter().position(|(_, x)| x == m)
        }
        fn insert(&mut self, m: &[u8], s: f64) -> Option<f64> {
            let old = self.pos(m).map(|i| self.0.remove(i).0);
            let at = self.0.partition_point(|(x, y)| cmp_elem(*x, y, s, m) == Ordering::Less);
            self.0.insert(at, (s, m.to_vec()));
            old
        }
        fn remove(&mut self, m: &[u8]) -> Option<f64> {
            self.pos(m).map(|i| self.0.remove(i).0)
        }
        fn first_score(&self, b: Bound<f64>) -> usize {
            self.0
                .iter()
                .position(|(s, _)| match b {
                    Bound::Unbounded => true,
                    Bound::Included(x) => *s >= x,
                    Bound::Excluded(x) => *s > x,
                })
                .unwrap_or(self.0.len())
        }
        fn last_score(&self, b: Bound<f64>) -> Option<usize> {
            self.0.iter().rposition(|(s, _)| match b {
                Bound::Unbounded => true,
                Bound::Included(x) => *s <= x,
                Bound::Excluded(x) => *s < x,
            })
        }
        fn first_lex(&self, b: Bound<&[u8]>) -> usize {
            self.0
                .iter()
                .position(|(_, m)| match b {
                    Bound::Unbounded => true,
                    Bound::Included(x) => &m[..] >= x,
                    Bound::Excluded(x) => &m[..] > x,
                })
                .unwrap_or(self.0.len())
        }
        fn last_lex(&self, b: Bound<&[u8]>) -> Option<usize> {
            self.0.iter().rposition(|(_, m)| match b {
                Bound::Unbounded => true,
                Bound::Included(x) => &m[..] <= x,
                Bound::Excluded(x) => &m[..] < x,
            })
        }
    }

    fn pairs(z: &ZSet) -> Vec<(f64, Vec<u8>)> {
        z.iter().map(|(m, s)| (s, m.to_vec())).collect()
    }

    fn score_bound(rng: &mut StdRng, scores: &[f64]) -> Bound<f64> {
        let x = scores[rng.gen_range(0..scores.len())];
        match rng.gen_range(0..5) {
            0 => Bound::Unbounded,
            1 | 2 => Bound::Included(x),
            _ => Bound::Excluded(x),
        }
    }

    fn lex_bound<'a>(rng: &mut StdRng, members: &'a [Vec<u8>]) -> Bound<&'a [u8]> {
        let x = &members[rng.gen_range(0..members.len())][..];
        match rng.gen_range(0..5) {
            0 => Bound::Unbounded,
            1 | 2 => Bound::Included(x),
            _ => Bound::Excluded(x),
        }
    }

    /// Every operation against the model, for one seed.
    fn run(seed: u64, ops: usize, universe: usize, same_score: bool) {
        let mut rng = StdRng::seed_from_u64(seed);
        let scores: Vec<f64> = vec![f64::NEG_INFINITY, -3.5, -1.0, -0.0, 0.0, 0.5, 1.0, 2.0, 7.25, 1e300, f64::INFINITY];
        let members: Vec<Vec<u8>> =
            (0..universe)
                .map(|i| {
                    if i % 7 == 0 {
                        format!("a-long-member-name-beyond-inline-{i:05}").into_bytes()
                    } else {
                        format!("m{i:04}").into_bytes()
                    }
                })
                .collect();
        let mut z = ZSet::with_seed(seed);
        let mut model = Model::default();
        for step in 0..ops {
            let m = &members[rng.gen_range(0..members.len())];
            match rng.gen_range(0..10) {
                0..=4 => {
                    let s = if same_score { 1.0 } else { scores[rng.gen_range(0..scores.len())] };
                    let got = z.insert(m, s).map(f64::to_bits);
                    assert_eq!(got, model.insert(m, s).map(f64::to_bits), "insert, seed {seed} step {step}");
                }
                5..=7 => assert_eq!(z.remove(m).map(f64::to_bits), model.remove(m).map(f64::to_bits)),
                8 => {
                    // Remove a run from the front (as ZPOPMIN / ZREMRANGEBYRANK do).
                    let k = rng.gen_range(0..4).min(model.0.len());
                    let front: Vec<Vec<u8>> = z.iter().take(k).map(|(m, _)| m.to_vec()).collect();
                    for m in &front {
                        z.remove(m);
                        model.remove(m);
                    }
                }
                _ => {
                    let got = z.rank(m);
                    assert_eq!(got, model.pos(m), "rank, seed {seed} step {step}");
                }
            }
            if step % 16 == 0 || ops < 300 {
                z.check();
            }
            assert_eq!(z.len(), model.0.len());
            // Queries.
            let n = model.0.len();
            let r = rng.gen_range(0..n + 2);
            assert_eq!(z.select(r).map(|(m, s)| (s, m.to_vec())), model.0.get(r).cloned(), "select {r}");
            let (a, b) = (rng.gen_range(0..n + 2), rng.gen_range(0..n + 2));
            let want: Vec<_> = if a <= b { model.0.iter().skip(a).take(b + 1 - a).cloned().collect() } else { Vec::new() };
            let got: Vec<_> = z.range_by_rank(a, b).map(|(m, s)| (s, m.to_vec())).collect();
            assert_eq!(got, want, "range_by_rank {a} {b}");
            let back: Vec<_> = z.range_by_rank(a, b).rev().map(|(m, s)| (s, m.to_vec())).collect();
            assert_eq!(back, want.iter().rev().cloned().collect::<Vec<_>>());
            assert_eq!(z.range_by_rank(a, b).len(), want.len());
            let (lo, hi) = (score_bound(&mut rng, &scores), score_bound(&mut rng, &scores));
            assert_eq!(z.first_rank_by_score(lo), model.first_score(lo), "first score {lo:?}");
            assert_eq!(z.last_rank_by_score(hi), model.last_score(hi), "last score {hi:?}");
            let want = model.0.iter().filter(|(s, _)| lo_ok(*s, lo) && hi_ok(*s, hi)).count();
            assert_eq!(z.count_by_score(lo, hi), want, "count {lo:?} {hi:?}");
            if same_score {
                let (lo, hi) = (lex_bound(&mut rng, &members), lex_bound(&mut rng, &members));
                assert_eq!(z.first_rank_by_lex(lo), model.first_lex(lo));
                assert_eq!(z.last_rank_by_lex(hi), model.last_lex(hi));
                let want = model.0.iter().filter(|(_, m)| lo_ok(&m[..], lo) && hi_ok(&m[..], hi)).count();
                assert_eq!(z.count_by_lex(lo, hi), want, "lex count {lo:?} {hi:?}");
            }
        }
        z.check();
        assert_eq!(
            pairs(&z).iter().map(|(s, m)| (s.to_bits(), m.clone())).collect::<Vec<_>>(),
            model.0.iter().map(|(s, m)| (s.to_bits(), m.clone())).collect::<Vec<_>>()
        );
        let c = z.clone();
        c.check();
        assert_eq!(pairs(&c).len(), model.0.len());
    }

    fn lo_ok<T: PartialOrd>(v: T, b: Bound<T>) -> bool {
        match b {
            Bound::Unbounded => true,
            Bound::Included(x) => v >= x,
            Bound::Excluded(x) => v > x,
        }
    }

    fn hi_ok<T: PartialOrd>(v: T, b: Bound<T>) -> bool {
        match b {
            Bound::Unbounded => true,
            Bound::Included(x) => v <= x,
            Bound::Excluded(x) => v < x,
        }
    }

    #[test]
    fn model_random_scores() {
        for seed in 0..40 {
            run(seed, 600, 60, false);
        }
        run(1000, 20_000, 2000, false);
    }

    #[test]
    fn model_equal_scores_lex() {
        for seed in 100..140 {
            run(seed, 600, 60, true);
        }
        run(2000, 20_000, 2000, true);
    }

    #[test]
    fn basics() {
        let mut z = ZSet::default();
        assert!(z.is_empty());
        assert_eq!(z.iter().next(), None);
        assert_eq!(z.select(0), None);
        assert_eq!(z.first_rank_by_score(Bound::Included(1.0)), 0);
        assert_eq!(z.last_rank_by_score(Bound::Unbounded), None);
        assert_eq!(z.insert(b"b", 2.0), None);
        assert_eq!(z.insert(b"a", 1.0), None);
        assert_eq!(z.insert(b"c", 2.0), None);
        assert_eq!(z.insert(b"b", 0.5), Some(2.0));
        assert_eq!(z.iter().collect::<Vec<_>>(), vec![(&b"b"[..], 0.5), (&b"a"[..], 1.0), (&b"c"[..], 2.0)]);
        assert_eq!(z.iter().next_back(), Some((&b"c"[..], 2.0)));
        assert_eq!(z.rank(b"c"), Some(2));
        assert_eq!(z.rank(b"x"), None);
        assert_eq!(z.score(b"a"), Some(1.0));
        assert_eq!(z.count_by_score(Bound::Excluded(0.5), Bound::Included(2.0)), 2);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.remove(b"a"), Some(1.0));
        assert_eq!(z.remove(b"a"), None);
        z.check();
        assert_eq!(z.len(), 2);
        z.remove(b"b");
        z.remove(b"c");
        assert!(z.is_empty());
        z.check();
        assert_eq!(format!("{z:?}"), "ZSet(0 members)");
    }

    #[test]
    fn negative_zero_equals_zero_and_ties_order_by_member() {
        let mut z = ZSet::default();
        z.insert(b"b", -0.0);
        z.insert(b"a", 0.0);
        z.insert(b"c", -0.0);
        let order: Vec<&[u8]> = z.iter().map(|(m, _)| m).collect();
        assert_eq!(order, vec![&b"a"[..], b"b", b"c"]);
        assert_eq!(z.count_by_score(Bound::Included(0.0), Bound::Included(0.0)), 3);
        assert_eq!(z.count_by_score(Bound::Included(-0.0), Bound::Excluded(0.0)), 0);
        z.check();
    }

    #[test]
    fn compaction_keeps_everything() {
        let mut z = ZSet::with_seed(7);
        for i in 0..5000u32 {
            z.insert(&i.to_be_bytes(), f64::from(i % 100));
        }
        for i in 0..4990u32 {
            z.remove(&i.to_be_bytes());
        }
        z.check();
        assert!(z.nodes.len() < 100, "arena kept {} slots for {} members", z.nodes.len(), z.len());
        assert_eq!(z.len(), 10);
        assert_eq!(z.select(0).map(|(_, s)| s), Some(90.0));
    }

    #[test]
    fn operations_are_logarithmic() {
        // 200k members: each query must stay cheap (a linear rank would take seconds here).
        let mut z = ZSet::with_seed(3);
        let n = 200_000u32;
        for i in 0..n {
            z.insert(format!("m{i}").as_bytes(), f64::from(i));
        }
        let start = std::time::Instant::now();
        for i in (0..n).step_by(7) {
            assert_eq!(z.rank(format!("m{i}").as_bytes()), Some(i as usize));
            assert_eq!(z.select(i as usize).map(|(_, s)| s), Some(f64::from(i)));
            assert_eq!(z.count_by_score(Bound::Included(f64::from(i)), Bound::Unbounded), (n - i) as usize);
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "{:?}", start.elapsed());
    }

    /// The heap cost per member the README states.
    #[test]
    fn heap_bytes_per_member() {
        let n = 1_000_000usize;
        let mut z = ZSet::with_seed(11);
        for i in 0..n {
            z.insert(format!("member:{i}").as_bytes(), i as f64);
        }
        let per = z.heap_bytes() as f64 / n as f64;
        eprintln!("heap bytes per member (short members): {per:.1}");
        assert!((80.0..130.0).contains(&per), "{per}");
        let upper = z.links.len() as f64 / n as f64;
        eprintln!("upper links per member: {upper:.3}");
        assert!((0.25..0.42).contains(&upper), "{upper}");
    }
}
