//! The sorted-set container: member → score in a [`Dict`] (ZSCORE, ZSCAN,
//! ZRANDMEMBER) beside an index ordered by (score, member).
//!
//! The ordered index answers ranges by score and by lex in O(log n + k).
//! This module holds data only; the log records that change a sorted set
//! are [`super::change::Change::ZAdd`] and [`super::change::Change::ZRem`],
//! which carry absolute scores (ZINCRBY logs the result), so replay never
//! redoes arithmetic.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use crate::bytes::SmallBytes;
use crate::dict::Dict;

/// A score with the total order sorted sets use (never NaN).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Score) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Score) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A sorted-set value.
pub struct ZSet {
    scores: Dict<f64>,
    order: BTreeSet<(Score, SmallBytes)>,
}

impl Default for ZSet {
    fn default() -> ZSet {
        ZSet { scores: Dict::new(rand::random()), order: BTreeSet::new() }
    }
}

impl Clone for ZSet {
    fn clone(&self) -> ZSet {
        let mut z = ZSet::default();
        for (m, s) in self.iter() {
            z.insert(m, s);
        }
        z
    }
}

impl std::fmt::Debug for ZSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZSet({} members)", self.len())
    }
}

impl ZSet {
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
        "btree"
    }

    /// A member's score.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets a member's score (not NaN); returns the old one.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        debug_assert!(!score.is_nan(), "NaN score for a sorted set member");
        let old = self.scores.insert(member, score);
        if let Some(o) = old {
            self.order.remove(&(Score(o), SmallBytes::new(member)));
        }
        self.order.insert((Score(score), SmallBytes::new(member)));
        old
    }

    /// Removes a member; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let old = self.scores.remove(member)?;
        self.order.remove(&(Score(old), SmallBytes::new(member)));
        Some(old)
    }

    /// Zero-based rank in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let s = self.score(member)?;
        Some(self.order.range(..(Score(s), SmallBytes::new(member))).count())
    }

    /// Members in ascending (score, member) order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], f64)> + ExactSizeIterator + '_ {
        self.order.iter().map(|(s, m)| (&m[..], s.0))
    }

    /// Members with ranks `start..=stop` (ascending), which must be in range.
    pub fn range_by_rank(&self, start: usize, stop: usize) -> impl DoubleEndedIterator<Item = (&[u8], f64)> + ExactSizeIterator + '_ {
        self.iter().skip(start).take(stop + 1 - start)
    }

    /// The member → score table, for ZSCAN and random picks.
    pub fn dict(&self) -> &Dict<f64> {
        &self.scores
    }

    /// Heap bytes owned.
    pub fn heap_bytes(&self) -> usize {
        let node = std::mem::size_of::<(Score, SmallBytes)>() + 8;
        self.scores.heap_bytes() + self.order.len() * node + self.order.iter().map(|(_, m)| m.heap_bytes()).sum::<usize>()
    }
}
