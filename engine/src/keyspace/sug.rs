//! The suggestion dictionary: what FT.SUGADD builds and FT.SUGGET reads
//! (RediSearch's autocomplete, <https://redis.io/docs/latest/commands/ft.sugadd/>).
//!
//! A sorted map from the case-folded string to its entry (the string as
//! last added, its score, an optional payload), so a prefix is a range of
//! the map. Matching folds case as RediSearch does; the original string is
//! what comes back. This module holds data and the pure lookups only; the
//! log records that change a dictionary are
//! [`super::change::Change::SugAdd`] and [`super::change::Change::SugDel`].
//!
//! Ranking (documented, strand's own, close to RediSearch's idea of
//! weighting by score and prefix length): a match's rank is its score times
//! `prefix length / string length` (in characters), so among equal scores the
//! shorter completions come first; a FUZZY match that needed an edit is
//! ranked at half that. Ties go to the string in folded order.

use std::collections::BTreeMap;

use crate::codec::{DecodeError, Reader, Writer};
use crate::search::spell::prefix_distance;

/// One suggestion.
#[derive(Debug, Clone, PartialEq)]
pub struct SugEntry {
    /// The string as it was last added.
    pub string: Box<str>,
    /// Its score.
    pub score: f64,
    /// Its payload, if one was given.
    pub payload: Option<Box<[u8]>>,
}

/// A suggestion dictionary.
#[derive(Debug, Clone, Default)]
pub struct SugDict {
    map: BTreeMap<Box<str>, SugEntry>,
    bytes: usize,
}

/// One match of [`SugDict::search`].
#[derive(Debug, Clone, PartialEq)]
pub struct SugMatch<'a> {
    /// The entry.
    pub entry: &'a SugEntry,
    /// Its rank (see the module doc).
    pub rank: f64,
}

/// Case folding used for matching.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

fn entry_bytes(folded: &str, e: &SugEntry) -> usize {
    // Two strings, the payload, and roughly a B-tree slot.
    folded.len() + e.string.len() + e.payload.as_ref().map_or(0, |p| p.len()) + std::mem::size_of::<SugEntry>() + 16
}

impl SugDict {
    /// Entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Heap bytes, kept as entries come and go.
    pub fn heap_bytes(&self) -> usize {
        self.bytes
    }

    /// The entry for `string` (matched case-insensitively).
    pub fn get(&self, string: &str) -> Option<&SugEntry> {
        self.map.get(fold(string).as_str())
    }

    /// Every entry, in folded order.
    pub fn iter(&self) -> impl Iterator<Item = &SugEntry> {
        self.map.values()
    }

    /// Adds or replaces the entry of `string`'s folded form.
    pub fn insert(&mut self, string: &str, score: f64, payload: Option<&[u8]>) {
        let key: Box<str> = fold(string).into();
        let e = SugEntry { string: string.into(), score, payload: payload.map(Box::from) };
        self.bytes += entry_bytes(&key, &e);
        if let Some(old) = self.map.insert(key.clone(), e) {
            self.bytes -= entry_bytes(&key, &old);
        }
    }

    /// Removes `string` (case-insensitively); whether it was there.
    pub fn remove(&mut self, string: &str) -> bool {
        let key = fold(string);
        match self.map.remove_entry(key.as_str()) {
            Some((k, old)) => {
                self.bytes -= entry_bytes(&k, &old);
                true
            }
            None => false,
        }
    }

    /// The best `max` matches of `prefix` (exact prefix, or with `fuzzy`
    /// also those within one edit of it), best first.
    pub fn search(&self, prefix: &str, fuzzy: bool, max: usize) -> Vec<SugMatch<'_>> {
        let p = fold(prefix);
        let plen = p.chars().count().max(1) as f64;
        let rank = |k: &str, e: &SugEntry, dist: usize| {
            let len = k.chars().count().max(1) as f64;
            let r = e.score * (plen / len).min(1.0);
            if dist > 0 {
                r / 2.0
            } else {
                r
            }
        };
        let mut out: Vec<(SugMatch<'_>, &str)> = if fuzzy {
            let pc: Vec<char> = p.chars().collect();
            self.map
                .iter()
                .filter_map(|(k, e)| {
                    let d = if k.starts_with(p.as_str()) { 0 } else { prefix_distance(&pc, k, 1)? };
                    Some((SugMatch { entry: e, rank: rank(k, e, d) }, &**k))
                })
                .collect()
        } else {
            self.map
                .range::<str, _>((std::ops::Bound::Included(p.as_str()), std::ops::Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(p.as_str()))
                .map(|(k, e)| (SugMatch { entry: e, rank: rank(k, e, 0) }, &**k))
                .collect()
        };
        out.sort_by(|a, b| b.0.rank.total_cmp(&a.0.rank).then_with(|| a.1.cmp(b.1)));
        out.truncate(max);
        out.into_iter().map(|(m, _)| m).collect()
    }

    /// Bytes [`SugDict::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        4 + self.map.values().map(|e| 4 + e.string.len() + 8 + 1 + e.payload.as_ref().map_or(0, |p| 4 + p.len())).sum::<usize>()
    }

    /// Writes the entries: a count, then each string, score bits, payload flag and payload.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.u32(self.map.len() as u32);
        for e in self.map.values() {
            w.bytes(e.string.as_bytes());
            w.u64(e.score.to_bits());
            w.u8(e.payload.is_some() as u8);
            if let Some(p) = &e.payload {
                w.bytes(p);
            }
        }
    }

    /// Reads what [`SugDict::encode`] wrote.
    pub fn decode(r: &mut Reader<'_>) -> Result<SugDict, DecodeError> {
        let n = r.u32()? as usize;
        let mut d = SugDict::default();
        for _ in 0..n {
            let s = std::str::from_utf8(r.bytes()?).map_err(|_| DecodeError::Invalid("suggestion is not UTF-8"))?;
            let score = f64::from_bits(r.u64()?);
            if score.is_nan() {
                return Err(DecodeError::Invalid("suggestion score is NaN"));
            }
            let payload = if r.flag()? { Some(r.bytes()?) } else { None };
            d.insert(s, score, payload);
        }
        if d.len() != n {
            return Err(DecodeError::Invalid("suggestion dictionary holds duplicates"));
        }
        Ok(d)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn dict(items: &[(&str, f64)]) -> SugDict {
        let mut d = SugDict::default();
        for (s, score) in items {
            d.insert(s, *score, None);
        }
        d
    }

    fn strings(m: &[SugMatch<'_>]) -> Vec<String> {
        m.iter().map(|m| m.entry.string.to_string()).collect()
    }

    #[test]
    fn prefix_ranks_by_score_and_length_and_folds_case() {
        let d = dict(&[("Hello", 1.0), ("hello world", 1.0), ("help", 3.0), ("world", 9.0)]);
        assert_eq!(strings(&d.search("HEL", false, 5)), ["help", "Hello", "hello world"]);
        assert_eq!(strings(&d.search("hel", false, 1)), ["help"]);
        assert!(d.search("x", false, 5).is_empty());
        // Fuzzy: one edit on the prefix.
        assert_eq!(strings(&d.search("hrl", true, 5)), ["help", "Hello", "hello world"]);
        assert_eq!(strings(&d.search("wprld", true, 5)), ["world"]);
    }

    #[test]
    fn bytes_follow_inserts_and_removes_and_encoding_round_trips() {
        let mut d = dict(&[("a", 1.0)]);
        let one = d.heap_bytes();
        d.insert("B", 2.0, Some(b"pay"));
        d.insert("b", 3.0, Some(b"pay"));
        assert_eq!(d.len(), 2);
        assert_eq!(d.get("B").unwrap().string.as_ref(), "b");
        let mut buf = vec![0u8; d.encoded_len()];
        d.encode(&mut Writer::new(&mut buf));
        let back = SugDict::decode(&mut Reader::new(&buf)).unwrap();
        assert_eq!(back.iter().collect::<Vec<_>>(), d.iter().collect::<Vec<_>>());
        assert_eq!(back.heap_bytes(), d.heap_bytes());
        assert!(d.remove("B"));
        assert!(!d.remove("b"));
        assert_eq!(d.heap_bytes(), one);
    }
}
