//! Running a parsed query against one [`Index`]: which documents match, and
//! their scores.
//!
//! A query runs in two passes. [`Plan::compile`] resolves the tree against
//! the index (terms to term ids with their stem expansions, prefixes and
//! fuzzy terms to the dictionary's matches, field names to masks, tags and
//! numeric ranges to document lists). The first pass computes the matching
//! document ids as sorted lists (intersections, unions, differences; phrases
//! and SLOP checked on positions). The second pass scores each match,
//! walking the plan with one postings cursor per term, which only moves
//! forward because matches are visited in id order, and keeps the top k.
//!
//! Scores use [`Stats`]: corpus-wide figures gathered from every shard, so a
//! document's score does not depend on how keys fell on shards.

use std::collections::{BinaryHeap, HashMap};

use super::analysis::STEM_PREFIX;
use super::index::{num_key, tag_term, Doc, Index, SortValue};
use super::postings::Cursor;
use super::query::{Bound, Node, TagValue};
use super::schema::Kind;

/// How many dictionary terms a prefix or fuzzy term expands to at most (RediSearch's MAXEXPANSIONS).
pub const MAX_EXPANSIONS: usize = 200;

/// Corpus-wide figures for scoring.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Live documents.
    pub docs: u64,
    /// Summed document lengths.
    pub total_len: u64,
    /// Live documents per term.
    pub df: HashMap<String, u64>,
}

impl Stats {
    /// Adds another shard's figures.
    pub fn merge(&mut self, other: Stats) {
        self.docs += other.docs;
        self.total_len += other.total_len;
        for (t, n) in other.df {
            *self.df.entry(t).or_default() += n;
        }
    }

    fn avg_len(&self) -> f64 {
        if self.docs == 0 {
            0.0
        } else {
            self.total_len as f64 / self.docs as f64
        }
    }
}

/// The scoring functions of RediSearch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scorer {
    /// BM25 as commonly defined, with RediSearch BM25STD's constants (k1 1.2, b 0.5).
    #[default]
    Bm25Std,
    /// RediSearch's older BM25 (b 0.5, length normalised by the average only).
    Bm25,
    /// Σ freq·idf / max freq.
    TfIdf,
    /// Σ freq·idf / document length.
    TfIdfDocNorm,
    /// Σ freq over intersections, max over unions.
    DisMax,
    /// The document's score.
    DocScore,
}

impl Scorer {
    /// Parses a SCORER name.
    pub fn parse(name: &str) -> Option<Scorer> {
        Some(match name.to_ascii_uppercase().as_str() {
            "BM25STD" => Scorer::Bm25Std,
            "BM25" => Scorer::Bm25,
            "TFIDF" => Scorer::TfIdf,
            "TFIDF.DOCNORM" => Scorer::TfIdfDocNorm,
            "DISMAX" => Scorer::DisMax,
            "DOCSCORE" => Scorer::DocScore,
            _ => return None,
        })
    }
}

/// What a search asks besides the query.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The scorer.
    pub scorer: Scorer,
    /// SLOP: the words of the query within this many extra positions.
    pub slop: Option<u32>,
    /// INORDER: and in query order.
    pub inorder: bool,
    /// INFIELDS: text fields the words may match in (None: all).
    pub infields: Option<Vec<String>>,
    /// SORTBY field (schema field number) and ascending.
    pub sort: Option<(usize, bool)>,
    /// How many of the best hits to keep (offset + limit).
    pub top: usize,
}

/// One hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The document's key.
    pub key: Vec<u8>,
    /// Its score.
    pub score: f64,
    /// Its SORTBY value, when sorting by a field.
    pub sort: Option<SortValue>,
}

/// The result of a search on one index.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Documents that matched.
    pub total: usize,
    /// The best `top` of them, best first.
    pub hits: Vec<Hit>,
}

/// Why a query cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ExecError(pub String);

/// A query resolved against an index.
#[derive(Debug)]
enum Plan {
    All,
    Nothing,
    /// A union of dictionary terms, matched in the fields of `mask`. With
    /// `first`, only the first term a document holds is scored (prefix and
    /// fuzzy expansions, as RediSearch's union iterator stops there).
    Terms {
        ids: Vec<u32>,
        mask: u32,
        first: bool,
    },
    /// Tag values (field number, value id) and their documents; each value a document has scores as one occurrence.
    Tags {
        docs: Vec<u32>,
        values: Vec<(usize, u32)>,
    },
    /// Words next to each other (each a union of term ids).
    Phrase {
        words: Vec<Vec<u32>>,
        mask: u32,
    },
    And(Vec<Plan>),
    Or(Vec<Plan>),
    Not(Box<Plan>),
    Optional(Box<Plan>),
    /// A numeric range of a field: a filter that does not score. Inside an
    /// intersection it is checked per candidate on the document's value.
    Range {
        field: usize,
        min: Bound,
        max: Bound,
    },
}

struct Compiler<'a> {
    ix: &'a Index,
    all_text: u32,
}

impl Compiler<'_> {
    fn text_mask(&self, names: &[String]) -> Result<u32, ExecError> {
        let mut mask = 0;
        for name in names {
            let (_, f) = self.ix.schema.field(name).ok_or_else(|| ExecError(format!("Unknown field `{name}`")))?;
            mask |= self.text_bit(f);
        }
        Ok(mask)
    }

    fn text_bit(&self, f: &super::schema::Field) -> u32 {
        let no = self.ix.schema.fields.iter().filter(|g| g.kind == Kind::Text).position(|g| g.alias == f.alias);
        no.and_then(|n| 1u32.checked_shl(n as u32)).unwrap_or(0)
    }

    /// Term ids a word stands for: itself and, unless verbatim, its stems
    /// and its synonyms (with their stems).
    fn expand(&self, word: &str, verbatim: bool) -> Vec<u32> {
        let mut forms = vec![word.to_string()];
        if !verbatim {
            for w in std::iter::once(word).chain(self.ix.synonyms.of(word)) {
                if w != word {
                    forms.push(w.to_string());
                }
                let stem = self.ix.stems.stem_raw(w);
                forms.push(format!("{STEM_PREFIX}{stem}"));
                if stem != w {
                    forms.push(stem);
                }
            }
        }
        let mut ids: Vec<u32> = Vec::with_capacity(forms.len());
        for f in &forms {
            if let Some(&id) = self.ix.dict.get(f.as_str()) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids
    }

    fn compile(&self, node: &Node, mask: u32) -> Result<Plan, ExecError> {
        Ok(match node {
            Node::All => Plan::All,
            Node::Nothing => Plan::Nothing,
            Node::Term { text, verbatim } => Plan::Terms { ids: self.expand(text, *verbatim), mask, first: false },
            Node::Prefix(p) => {
                let ids = self
                    .ix
                    .dict
                    .range::<str, _>((std::ops::Bound::Included(p.as_str()), std::ops::Bound::Unbounded))
                    .take_while(|(t, _)| t.starts_with(p.as_str()))
                    .filter(|(_, &id)| self.ix.terms[id as usize].live > 0)
                    .take(MAX_EXPANSIONS)
                    .map(|(_, &id)| id)
                    .collect();
                Plan::Terms { ids, mask, first: true }
            }
            Node::Fuzzy { text, distance } => {
                let ids = self
                    .ix
                    .dict
                    .iter()
                    .filter(|(t, &id)| {
                        !t.starts_with(STEM_PREFIX) && self.ix.terms[id as usize].live > 0 && within(t, text, *distance as usize)
                    })
                    .take(MAX_EXPANSIONS)
                    .map(|(_, &id)| id)
                    .collect();
                Plan::Terms { ids, mask, first: true }
            }
            Node::Phrase(words) => Plan::Phrase { words: words.iter().map(|w| self.expand(w, true)).collect(), mask },
            Node::And(c) => Plan::And(c.iter().map(|n| self.compile(n, mask)).collect::<Result<_, _>>()?),
            Node::Or(c) => Plan::Or(c.iter().map(|n| self.compile(n, mask)).collect::<Result<_, _>>()?),
            Node::Not(c) => Plan::Not(Box::new(self.compile(c, mask)?)),
            Node::Optional(c) => Plan::Optional(Box::new(self.compile(c, mask)?)),
            Node::Fields { fields, node } => {
                let m = self.text_mask(fields)?;
                self.compile(node, m & mask)?
            }
            Node::Tag { field, values } => self.tags(field, values)?,
            Node::Numeric { field, min, max } => self.range(field, *min, *max)?,
        })
    }

    fn tags(&self, field: &str, values: &[TagValue]) -> Result<Plan, ExecError> {
        let (n, f) = self.ix.schema.field(field).ok_or_else(|| ExecError(format!("Unknown field `{field}`")))?;
        if f.kind != Kind::Tag {
            return Err(ExecError(format!("field `{field}` is not a TAG field")));
        }
        let tf = &self.ix.tags[n];
        let fold = |s: &str| if f.case_sensitive { s.to_string() } else { s.to_lowercase() };
        let mut ids: Vec<u32> = Vec::new();
        for v in values {
            match v {
                TagValue::Exact(t) => {
                    if let Some(&id) = tf.values.get(fold(t.trim()).as_str()) {
                        ids.push(id);
                    }
                }
                TagValue::Prefix(p) => {
                    let p = fold(p.trim());
                    let matching = tf.values.range::<str, _>((std::ops::Bound::Included(p.as_str()), std::ops::Bound::Unbounded));
                    for (_, &id) in matching.take_while(|(t, _)| t.starts_with(p.as_str())).take(MAX_EXPANSIONS) {
                        ids.push(id);
                    }
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let docs = union(ids.iter().map(|&id| tf.lists[id as usize].docs.as_slice()).collect());
        Ok(Plan::Tags { docs, values: ids.into_iter().map(|id| (n, id)).collect() })
    }

    fn range(&self, field: &str, min: Bound, max: Bound) -> Result<Plan, ExecError> {
        let (n, f) = self.ix.schema.field(field).ok_or_else(|| ExecError(format!("Unknown field `{field}`")))?;
        if f.kind != Kind::Numeric {
            return Err(ExecError(format!("field `{field}` is not a NUMERIC field")));
        }
        Ok(Plan::Range { field: n, min, max })
    }
}

/// Whether `x` is within the bounds.
fn in_range(x: f64, min: Bound, max: Bound) -> bool {
    let above = if min.exclusive { x > min.value } else { x >= min.value };
    let below = if max.exclusive { x < max.value } else { x <= max.value };
    above && below
}

/// Whether the Levenshtein distance between `a` and `b` is at most `d`.
fn within(a: &str, b: &str, d: usize) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > d {
        return false;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        if cur.iter().min().is_some_and(|&m| m > d) {
            return false;
        }
        prev = cur;
    }
    prev[b.len()] <= d
}

/// Sorted union of sorted lists.
fn union(lists: Vec<&[u32]>) -> Vec<u32> {
    let mut v: Vec<u32> = lists.into_iter().flatten().copied().collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn subtract(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut j = 0;
    a.iter()
        .copied()
        .filter(|&x| {
            while j < b.len() && b[j] < x {
                j += 1;
            }
            j >= b.len() || b[j] != x
        })
        .collect()
}

/// The first pass: matching documents.
struct Matcher<'a> {
    ix: &'a Index,
    slop: Option<u32>,
    inorder: bool,
}

impl Matcher<'_> {
    fn all(&self) -> Vec<u32> {
        (0..self.ix.docs.len() as u32).filter(|&d| self.ix.doc(d).is_some()).collect()
    }

    fn term_docs(&self, ids: &[u32], mask: u32) -> Vec<u32> {
        let mut v = Vec::new();
        for &t in ids {
            let mut c = self.ix.terms[t as usize].postings.cursor();
            while let Some(p) = c.next() {
                if p.fields & mask != 0 {
                    v.push(p.doc);
                }
            }
        }
        if ids.len() > 1 {
            v.sort_unstable();
            v.dedup();
        }
        v
    }

    /// Positions of a union of terms in `doc` (within `mask`), sorted.
    fn positions(&self, cursors: &mut [Cursor<'_>], doc: u32, mask: u32) -> Vec<u32> {
        let mut out = Vec::new();
        for c in cursors {
            if c.find(doc).is_some_and(|p| p.fields & mask != 0) {
                out.extend_from_slice(c.positions());
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    fn docs(&self, plan: &Plan) -> Vec<u32> {
        match plan {
            Plan::All => self.all(),
            Plan::Nothing => Vec::new(),
            Plan::Terms { ids, mask, .. } => self.term_docs(ids, *mask),
            Plan::Tags { docs, .. } => docs.clone(),
            Plan::Range { field, min, max } => self.range_docs(*field, *min, *max),
            Plan::Phrase { words, mask } => self.phrase(words, *mask, self.slop.unwrap_or(0), true),
            Plan::Or(c) => {
                let parts: Vec<Vec<u32>> = c.iter().map(|p| self.docs(p)).collect();
                union(parts.iter().map(Vec::as_slice).collect())
            }
            Plan::Not(c) => subtract(&self.all(), &self.docs(c)),
            Plan::Optional(_) => self.all(),
            Plan::And(c) => self.and(c),
        }
    }

    fn range_docs(&self, field: usize, min: Bound, max: Bound) -> Vec<u32> {
        let (lo, hi) = (num_key(min.value), num_key(max.value));
        if lo > hi {
            return Vec::new();
        }
        let mut docs: Vec<u32> = self.ix.numbers[field]
            .range((lo, 0)..=(hi, u32::MAX))
            .filter(|(k, _)| !((min.exclusive && *k == lo) || (max.exclusive && *k == hi)))
            .map(|&(_, d)| d)
            .collect();
        docs.sort_unstable();
        docs
    }

    /// About how many documents a plan matches, to intersect smallest first.
    fn estimate(&self, p: &Plan) -> usize {
        let len = |ids: &[u32]| ids.iter().map(|&t| self.ix.terms[t as usize].postings.len() as usize).sum::<usize>();
        match p {
            Plan::Nothing => 0,
            Plan::Terms { ids, .. } => len(ids),
            Plan::Phrase { words, .. } => words.iter().map(|w| len(w)).min().unwrap_or(0),
            Plan::Tags { docs, .. } => docs.len(),
            Plan::And(c) => c.iter().map(|p| self.estimate(p)).min().unwrap_or(0),
            Plan::Or(c) => c.iter().map(|p| self.estimate(p)).sum(),
            // Ranges filter best per candidate: last.
            Plan::Range { .. } => usize::MAX,
            Plan::All | Plan::Not(_) | Plan::Optional(_) => self.ix.docs.len(),
        }
    }

    /// Keeps the candidates that hold (or, with `found` false, lack) one of a few terms,
    /// seeking each term's postings instead of reading them whole.
    fn probe(&self, acc: &mut Vec<u32>, ids: &[u32], mask: u32, found: bool) {
        let mut cursors: Vec<Cursor<'_>> = ids.iter().map(|&t| self.ix.terms[t as usize].postings.cursor()).collect();
        acc.retain(|&d| cursors.iter_mut().any(|c| c.find(d).is_some_and(|p| p.fields & mask != 0)) == found);
    }

    /// Narrows `acc` to the documents `p` matches (or, with `keep` false, does not match).
    fn narrow(&self, acc: &mut Vec<u32>, p: &Plan, keep: bool) {
        match p {
            Plan::Terms { ids, mask, .. } if ids.len() <= 4 => self.probe(acc, ids, *mask, keep),
            Plan::Range { field, min, max } => acc.retain(|&d| {
                let hit =
                    self.ix.doc(d).is_some_and(|doc| doc.numbers.iter().any(|&(f, x)| f as usize == *field && in_range(x, *min, *max)));
                hit == keep
            }),
            _ if keep => *acc = intersect(acc, &self.docs(p)),
            _ => *acc = subtract(acc, &self.docs(p)),
        }
    }

    fn and(&self, children: &[Plan]) -> Vec<u32> {
        let mut pos: Vec<&Plan> = children.iter().filter(|p| !matches!(p, Plan::Not(_) | Plan::Optional(_))).collect();
        pos.sort_by_cached_key(|p| self.estimate(p));
        let mut acc = match pos.first() {
            Some(first) => self.docs(first),
            None => self.all(),
        };
        for p in pos.iter().skip(1) {
            if acc.is_empty() {
                break;
            }
            self.narrow(&mut acc, p, true);
        }
        for c in children {
            if let Plan::Not(n) = c {
                self.narrow(&mut acc, n, false);
            }
        }
        // SLOP / INORDER on a plain multi-word query: the words within the window.
        if self.slop.is_some() || self.inorder {
            let words: Vec<(&[u32], u32)> = children
                .iter()
                .filter_map(|c| match c {
                    Plan::Terms { ids, mask, .. } => Some((ids.as_slice(), *mask)),
                    _ => None,
                })
                .collect();
            if words.len() > 1 {
                let mut cursors: Vec<Vec<Cursor<'_>>> =
                    words.iter().map(|(ids, _)| ids.iter().map(|&t| self.ix.terms[t as usize].postings.cursor()).collect()).collect();
                let slop = self.slop.unwrap_or(u32::MAX / 4);
                acc.retain(|&d| {
                    let pos: Vec<Vec<u32>> = cursors.iter_mut().zip(&words).map(|(c, (_, m))| self.positions(c, d, *m)).collect();
                    fits(&pos, slop, self.inorder)
                });
            }
        }
        acc
    }

    fn phrase(&self, words: &[Vec<u32>], mask: u32, slop: u32, inorder: bool) -> Vec<u32> {
        if words.iter().any(Vec::is_empty) {
            return Vec::new();
        }
        let mut sets: Vec<Vec<u32>> = words.iter().map(|w| self.term_docs(w, mask)).collect();
        sets.sort_by_key(Vec::len);
        let mut acc = sets.first().cloned().unwrap_or_default();
        for s in sets.iter().skip(1) {
            acc = intersect(&acc, s);
        }
        let mut cursors: Vec<Vec<Cursor<'_>>> =
            words.iter().map(|ids| ids.iter().map(|&t| self.ix.terms[t as usize].postings.cursor()).collect()).collect();
        acc.retain(|&d| {
            let pos: Vec<Vec<u32>> = cursors.iter_mut().map(|c| self.positions(c, d, mask)).collect();
            fits(&pos, slop, inorder)
        });
        acc
    }
}

/// Whether one position from each list fits in a window of `len + slop`
/// positions (in list order when `inorder`).
fn fits(pos: &[Vec<u32>], slop: u32, inorder: bool) -> bool {
    let n = pos.len() as u32;
    if pos.iter().any(Vec::is_empty) {
        return false;
    }
    if inorder {
        // For each start, the earliest chain of increasing positions.
        for &start in &pos[0] {
            let mut last = start;
            let mut ok = true;
            for list in &pos[1..] {
                match list.iter().find(|&&p| p > last) {
                    Some(&p) => last = p,
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                return false;
            }
            if last - start < n + slop {
                return true;
            }
        }
        return false;
    }
    // Smallest window holding one position of every list.
    let mut all: Vec<(u32, usize)> = pos.iter().enumerate().flat_map(|(i, l)| l.iter().map(move |&p| (p, i))).collect();
    all.sort_unstable();
    let mut count = vec![0usize; pos.len()];
    let mut have = 0;
    let mut lo = 0;
    for hi in 0..all.len() {
        if count[all[hi].1] == 0 {
            have += 1;
        }
        count[all[hi].1] += 1;
        while have == pos.len() {
            if all[hi].0 - all[lo].0 < n + slop {
                return true;
            }
            count[all[lo].1] -= 1;
            if count[all[lo].1] == 0 {
                have -= 1;
            }
            lo += 1;
        }
    }
    false
}

/// The second pass: scores.
struct Scoring<'a> {
    ix: &'a Index,
    stats: &'a Stats,
    scorer: Scorer,
    avg: f64,
}

/// One posting of a [`Live::Merged`] union.
struct Merged {
    doc: u32,
    order: u32,
    idf: f64,
    freq: u32,
    fields: u32,
}

/// Unions of more terms than this are scored from one merged list.
const MERGE_ABOVE: usize = 8;

/// A plan with its cursors, for scoring.
enum Live<'a> {
    Zero,
    Terms {
        cursors: Vec<(f64, Cursor<'a>)>,
        mask: u32,
        first: bool,
    },
    /// (idf, documents) per tag value.
    Tags(Vec<(f64, &'a [u32])>),
    /// A union of many terms (a prefix's expansions) read once into one
    /// list sorted by (document, term order), walked forward: cheaper than
    /// a cursor per term asked about every document.
    Merged {
        entries: Vec<Merged>,
        at: usize,
        mask: u32,
        first: bool,
    },
    Sum(Vec<Live<'a>>),
    Max(Vec<Live<'a>>),
}

impl<'a> Scoring<'a> {
    fn idf(&self, term: u32) -> f64 {
        let text = &self.ix.terms[term as usize].text;
        self.idf_of(text, self.ix.terms[term as usize].live)
    }

    fn idf_of(&self, name: &str, local: u32) -> f64 {
        let n = self.stats.df.get(name).copied().unwrap_or(u64::from(local)) as f64;
        let total = self.stats.docs as f64;
        match self.scorer {
            Scorer::Bm25Std => (1.0 + (total - n + 0.5) / (n + 0.5)).ln(),
            _ => (1.0 + total / n.max(1.0)).log2().floor(),
        }
    }

    fn live(&self, plan: &Plan) -> Live<'a> {
        match plan {
            Plan::Terms { ids, mask, first } if ids.len() > MERGE_ABOVE => {
                let mut entries = Vec::new();
                for (order, &t) in ids.iter().enumerate() {
                    let idf = self.idf(t);
                    let mut c = self.ix.terms[t as usize].postings.cursor();
                    while let Some(p) = c.next() {
                        entries.push(Merged { doc: p.doc, order: order as u32, idf, freq: p.freq, fields: p.fields });
                    }
                }
                entries.sort_unstable_by_key(|e| (e.doc, e.order));
                Live::Merged { entries, at: 0, mask: *mask, first: *first }
            }
            Plan::Terms { ids, mask, first } => Live::Terms {
                cursors: ids.iter().map(|&t| (self.idf(t), self.ix.terms[t as usize].postings.cursor())).collect(),
                mask: *mask,
                first: *first,
            },
            Plan::Tags { values, .. } => Live::Tags(
                values
                    .iter()
                    .map(|&(n, id)| {
                        let list = &self.ix.tags[n].lists[id as usize];
                        let name = self.ix.tags[n]
                            .values
                            .iter()
                            .find(|(_, &v)| v == id)
                            .map_or(String::new(), |(t, _)| tag_term(&self.ix.schema.fields[n].alias, t));
                        (self.idf_of(&name, list.live), list.docs.as_slice())
                    })
                    .collect(),
            ),
            Plan::Phrase { words, mask } => Live::Sum(
                words
                    .iter()
                    .map(|w| Live::Terms {
                        cursors: w.iter().map(|&t| (self.idf(t), self.ix.terms[t as usize].postings.cursor())).collect(),
                        mask: *mask,
                        first: false,
                    })
                    .collect(),
            ),
            Plan::And(c) => Live::Sum(c.iter().map(|p| self.live(p)).collect()),
            Plan::Or(c) if self.scorer == Scorer::DisMax => Live::Max(c.iter().map(|p| self.live(p)).collect()),
            Plan::Or(c) => Live::Sum(c.iter().map(|p| self.live(p)).collect()),
            Plan::Optional(c) => self.live(c),
            Plan::All | Plan::Nothing | Plan::Not(_) | Plan::Range { .. } => Live::Zero,
        }
    }

    /// The raw score of `doc` under `live` (before document score and normalisation).
    fn raw(&self, live: &mut Live<'a>, doc: &Doc, id: u32) -> f64 {
        match live {
            Live::Zero => 0.0,
            Live::Sum(c) => c.iter_mut().map(|l| self.raw(l, doc, id)).sum(),
            Live::Max(c) => c.iter_mut().map(|l| self.raw(l, doc, id)).fold(0.0, f64::max),
            Live::Terms { cursors, mask, first } => {
                let mut s = 0.0;
                for (idf, c) in cursors.iter_mut() {
                    let Some(p) = c.find(id) else { continue };
                    if p.fields & *mask == 0 {
                        continue;
                    }
                    s += self.term(*idf, f64::from(p.freq), doc);
                    if *first {
                        break;
                    }
                }
                s
            }
            Live::Merged { entries, at, mask, first } => {
                while entries.get(*at).is_some_and(|e| e.doc < id) {
                    *at += 1;
                }
                let mut s = 0.0;
                for e in entries[*at..].iter().take_while(|e| e.doc == id) {
                    if e.fields & *mask == 0 {
                        continue;
                    }
                    s += self.term(e.idf, f64::from(e.freq), doc);
                    if *first {
                        break;
                    }
                }
                s
            }
            Live::Tags(values) => {
                values.iter().filter(|(_, docs)| docs.binary_search(&id).is_ok()).map(|(idf, _)| self.term(*idf, 1.0, doc)).sum()
            }
        }
    }

    /// One term's contribution: `f` occurrences of a term with inverse document frequency `idf`.
    fn term(&self, idf: f64, f: f64, doc: &Doc) -> f64 {
        match self.scorer {
            Scorer::Bm25Std => {
                let (k1, b) = (1.2, 0.5);
                let norm = if self.avg > 0.0 { f64::from(doc.len) / self.avg } else { 0.0 };
                idf * f * (k1 + 1.0) / (f + k1 * (1.0 - b + b * norm))
            }
            Scorer::Bm25 => idf * f / (f + 1.2 * (1.0 - 0.5 + 0.5 * self.avg)),
            Scorer::TfIdf | Scorer::TfIdfDocNorm => f * idf,
            Scorer::DisMax => f,
            Scorer::DocScore => 0.0,
        }
    }

    /// An upper bound of [`Scoring::raw`] that decodes no new postings
    /// block: each term counts with the highest frequency of the block
    /// where `id` would be (see [`Cursor::max_freq_at`]). Every term's
    /// contribution grows with the frequency, and sums and maxima of larger
    /// parts are larger (rounding included: it is monotonic), so the bound
    /// holds. Merged unions and tags are cheap to score exactly, and are.
    fn bound(&self, live: &mut Live<'a>, doc: &Doc, id: u32) -> f64 {
        match live {
            Live::Zero => 0.0,
            Live::Sum(c) => c.iter_mut().map(|l| self.bound(l, doc, id)).sum(),
            Live::Max(c) => c.iter_mut().map(|l| self.bound(l, doc, id)).fold(0.0, f64::max),
            Live::Terms { cursors, first, .. } => {
                let mut s = 0.0;
                for (idf, c) in cursors.iter_mut() {
                    let Some(f) = c.max_freq_at(id) else { continue };
                    let t = if f == 0 { 0.0 } else { self.term(*idf, f64::from(f), doc).max(0.0) };
                    s = if *first { f64::max(s, t) } else { s + t };
                }
                s
            }
            Live::Merged { .. } | Live::Tags(_) => self.raw(live, doc, id).max(0.0),
        }
    }

    fn score(&self, live: &mut Live<'a>, doc: &Doc, id: u32) -> f64 {
        let raw = self.raw(live, doc, id);
        self.finish(raw, doc)
    }

    /// A document's score from its raw score (monotonic in `raw` for a document score ≥ 0).
    fn finish(&self, raw: f64, doc: &Doc) -> f64 {
        match self.scorer {
            Scorer::Bm25Std | Scorer::Bm25 => doc.score * raw,
            Scorer::TfIdf => doc.score * raw / f64::from(doc.max_freq.max(1)),
            Scorer::TfIdfDocNorm => doc.score * raw / f64::from(doc.len.max(1)),
            Scorer::DisMax => raw,
            Scorer::DocScore => doc.score,
        }
    }
}

/// RediSearch's "slop" of a result, which TFIDF, TFIDF.DOCNORM and BM25
/// divide their score by: how far apart the matched parts of the query lie.
/// The parts are the top node's children (a single word's matched forms;
/// an intersection's words); those without positions (tags, numbers,
/// negations) are skipped.
struct Slop<'a> {
    /// Per part: its terms' cursors and field mask.
    parts: Vec<(Vec<Cursor<'a>>, u32)>,
}

impl<'a> Slop<'a> {
    fn new(ix: &'a Index, plan: &Plan) -> Slop<'a> {
        let cursors = |ids: &[u32]| ids.iter().map(|&t| ix.terms[t as usize].postings.cursor()).collect::<Vec<_>>();
        let part = |p: &Plan| match p {
            Plan::Terms { ids, mask, .. } => Some((cursors(ids), *mask)),
            Plan::Phrase { words, mask } => Some((cursors(&words.concat()), *mask)),
            _ => None,
        };
        match plan {
            Plan::Terms { ids, mask, .. } => {
                Slop { parts: ids.iter().map(|&t| (vec![ix.terms[t as usize].postings.cursor()], *mask)).collect() }
            }
            Plan::And(c) | Plan::Or(c) => Slop { parts: c.iter().filter_map(part).collect() },
            other => Slop { parts: part(other).into_iter().collect() },
        }
    }

    fn of(&mut self, doc: u32) -> f64 {
        let mut lists: Vec<Vec<u32>> = Vec::new();
        for (cursors, mask) in &mut self.parts {
            let mut pos = Vec::new();
            for c in cursors.iter_mut() {
                if c.find(doc).is_some_and(|p| p.fields & *mask != 0) {
                    pos.extend_from_slice(c.positions());
                }
            }
            if !pos.is_empty() {
                pos.sort_unstable();
                lists.push(pos);
            }
        }
        let n = lists.len();
        let mut dist = 0u64;
        for w in lists.windows(2) {
            let d = u64::from(min_walk(&w[0], &w[1]));
            dist += d * d;
        }
        let slop = if dist > 0 { (dist as f64).sqrt() as u64 } else { n.saturating_sub(1) as u64 };
        slop.max(1) as f64
    }
}

/// RediSearch's walk for the smallest distance between two position lists:
/// it stops as soon as the distance is 1 or less, and at either list's end.
fn min_walk(a: &[u32], b: &[u32]) -> u32 {
    let (mut i, mut j) = (0, 0);
    let mut cd = a[0].abs_diff(b[0]);
    while cd > 1 && i < a.len() && j < b.len() {
        cd = cd.min(a[i].abs_diff(b[j]));
        if b[j] > a[i] {
            i += 1;
        } else {
            j += 1;
        }
    }
    cd
}

/// A candidate in the top-k heap: the worst on top.
struct Ranked {
    key: (Option<SortValue>, f64),
    asc: bool,
    by_field: bool,
    hit: Hit,
}

fn cmp_sort(a: &Option<SortValue>, b: &Option<SortValue>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Some(SortValue::Num(x)), Some(SortValue::Num(y))) => x.total_cmp(y),
        (Some(SortValue::Str(x)), Some(SortValue::Str(y))) => x.cmp(y),
        (Some(SortValue::Num(_)), Some(SortValue::Str(_))) => Ordering::Less,
        (Some(SortValue::Str(_)), Some(SortValue::Num(_))) => Ordering::Greater,
        // Documents without the value go last either way.
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
    }
}

impl Ranked {
    /// Better hits order first.
    fn order(&self, other: &Ranked) -> std::cmp::Ordering {
        let primary = if self.by_field {
            let o = cmp_sort(&self.key.0, &other.key.0);
            let missing = self.key.0.is_none() || other.key.0.is_none();
            if self.asc || missing {
                o
            } else {
                o.reverse()
            }
        } else {
            other.key.1.total_cmp(&self.key.1)
        };
        primary.then_with(|| self.hit.key.cmp(&other.hit.key))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Ranked) -> bool {
        self.order(other).is_eq()
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Ranked) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Ranked) -> std::cmp::Ordering {
        self.order(other)
    }
}

/// Orders hits best first: by score (or the SORTBY value), then by key.
pub fn rank(hits: &mut [Hit], sort: Option<bool>) {
    let wrap = |h: &Hit| Ranked { key: (h.sort.clone(), h.score), asc: sort.unwrap_or(true), by_field: sort.is_some(), hit: h.clone() };
    hits.sort_by(|a, b| wrap(a).order(&wrap(b)));
}

impl Index {
    /// The dictionary terms a query scores with, for gathering [`Stats`].
    pub fn query_terms(&self, node: &Node) -> Vec<String> {
        let c = Compiler { ix: self, all_text: u32::MAX };
        let mut out = Vec::new();
        if let Ok(plan) = c.compile(node, c.all_text) {
            collect_terms(self, &plan, &mut out);
        }
        out.sort();
        out.dedup();
        out
    }

    /// This shard's figures for the terms of a query.
    pub fn stats(&self, terms: &[String]) -> Stats {
        Stats {
            docs: u64::from(self.num_docs()),
            total_len: self.total_len(),
            df: terms.iter().map(|t| (t.clone(), u64::from(self.doc_freq(t)))).collect(),
        }
    }

    /// The query resolved against this index, words limited to INFIELDS.
    fn plan(&self, node: &Node, req: &Request) -> Result<Plan, ExecError> {
        let c = Compiler { ix: self, all_text: u32::MAX };
        let mask = match &req.infields {
            Some(f) => c.text_mask(f)?,
            None => c.all_text,
        };
        c.compile(node, mask)
    }

    /// Every live document that matches (unscored), as keys in document order:
    /// for commands that look at all matches (FT.AGGREGATE).
    pub fn matching(&self, node: &Node, req: &Request) -> Result<Vec<&[u8]>, ExecError> {
        let plan = self.plan(node, req)?;
        let m = Matcher { ix: self, slop: req.slop, inorder: req.inorder };
        Ok(m.docs(&plan).into_iter().filter_map(|id| self.doc(id)).map(|d| &*d.key).collect())
    }

    /// Runs a query: how many documents match and the best `req.top`.
    pub fn search(&self, node: &Node, stats: &Stats, req: &Request) -> Result<Found, ExecError> {
        let plan = self.plan(node, req)?;
        let m = Matcher { ix: self, slop: req.slop, inorder: req.inorder };
        let docs = m.docs(&plan);
        let s = Scoring { ix: self, stats, scorer: req.scorer, avg: stats.avg_len() };
        let mut live = s.live(&plan);
        let mut slop = matches!(req.scorer, Scorer::TfIdf | Scorer::TfIdfDocNorm | Scorer::Bm25).then(|| Slop::new(self, &plan));
        let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(req.top + 1);
        let mut total = 0;
        for id in docs {
            let Some(doc) = self.doc(id) else { continue };
            total += 1;
            if req.top == 0 {
                continue;
            }
            // Block-max pruning: once the heap is full, a document whose
            // bound falls below the worst kept score is counted, not scored.
            // (A tie could still win on its key, so only strictly below.)
            let worst = (req.sort.is_none() && heap.len() == req.top && doc.score > 0.0).then(|| heap.peek()).flatten();
            if let Some(w) = worst {
                if s.finish(s.bound(&mut live, doc, id), doc).total_cmp(&w.key.1).is_lt() {
                    continue;
                }
            }
            let mut score = s.score(&mut live, doc, id);
            if let Some(sl) = slop.as_mut() {
                score /= sl.of(id);
            }
            if let Some(w) = worst {
                // Most survivors of the bound still lose: compare before building a hit.
                let loses = match score.total_cmp(&w.key.1) {
                    std::cmp::Ordering::Less => true,
                    std::cmp::Ordering::Equal => *doc.key >= *w.hit.key,
                    std::cmp::Ordering::Greater => false,
                };
                if loses {
                    continue;
                }
            }
            let sort = req.sort.map(|(f, _)| doc.sort.iter().find(|(n, _)| *n as usize == f).map(|(_, v)| v.clone()));
            let r = Ranked {
                key: (sort.clone().flatten(), score),
                asc: req.sort.is_none_or(|(_, a)| a),
                by_field: req.sort.is_some(),
                hit: Hit { key: doc.key.to_vec(), score, sort: sort.flatten() },
            };
            if heap.len() < req.top {
                heap.push(r);
            } else if heap.peek().is_some_and(|worst| r < *worst) {
                heap.pop();
                heap.push(r);
            }
        }
        let hits = heap.into_sorted_vec().into_iter().map(|r| r.hit).collect();
        Ok(Found { total, hits })
    }
}

fn collect_terms(ix: &Index, plan: &Plan, out: &mut Vec<String>) {
    match plan {
        Plan::Terms { ids, .. } => out.extend(ids.iter().map(|&t| ix.terms[t as usize].text.to_string())),
        Plan::Tags { values, .. } => {
            for &(n, id) in values {
                if let Some((t, _)) = ix.tags[n].values.iter().find(|(_, &v)| v == id) {
                    out.push(tag_term(&ix.schema.fields[n].alias, t));
                }
            }
        }
        Plan::Phrase { words, .. } => out.extend(words.iter().flatten().map(|&t| ix.terms[t as usize].text.to_string())),
        Plan::And(c) | Plan::Or(c) => c.iter().for_each(|p| collect_terms(ix, p, out)),
        Plan::Optional(c) => collect_terms(ix, c, out),
        Plan::All | Plan::Nothing | Plan::Not(_) | Plan::Range { .. } => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Block-max pruning changes nothing: the top 10 of every query and
    /// scorer equal the first 10 of the full ranking, scores included.
    #[test]
    fn pruned_top_k_equals_the_full_ranking() {
        use super::super::query::{parse, ParseOptions};
        use super::super::schema::{Field, Schema};
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let mut title = Field::new(b"title", Kind::Text);
        title.weight = 2.0;
        let schema = Schema {
            name: "i".into(),
            prefixes: vec![],
            stopwords: None,
            score: 1.0,
            fields: vec![title, Field::new(b"body", Kind::Text), Field::new(b"tag", Kind::Tag)],
        };
        let mut ix = Index::new(schema);
        let mut rng = StdRng::seed_from_u64(0xb10c);
        let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "iota", "kappa", "lambda", "running", "runner"];
        // Skewed word choice, so lists span many blocks and frequencies vary.
        let word = |rng: &mut StdRng| words[(rng.gen::<f64>().powi(3) * words.len() as f64) as usize];
        for d in 0..3000 {
            let title: Vec<&str> = (0..rng.gen_range(0..4)).map(|_| word(&mut rng)).collect();
            let body: Vec<&str> = (0..rng.gen_range(1..60)).map(|_| word(&mut rng)).collect();
            let (title, body, tag) = (title.join(" "), body.join(" "), ["x", "y", "z"][d % 3]);
            let fields = [("title", title.as_str()), ("body", body.as_str()), ("tag", tag)];
            ix.add(format!("d{d}").as_bytes(), |f| fields.iter().find(|(n, _)| n.as_bytes() == f).map(|(_, v)| v.as_bytes())).unwrap();
            if d % 7 == 0 {
                ix.remove(format!("d{}", d / 2).as_bytes());
            }
        }
        let queries = [
            "alpha",
            "kappa",
            "alpha beta",
            "alpha | kappa",
            "gamma -beta",
            "run*",
            "@title:alpha",
            "\"alpha beta\"",
            "(delta | iota) epsilon",
            "@tag:{x} alpha",
            "lambda ~alpha",
        ];
        for q in queries {
            let node = parse(q, &ParseOptions::default()).unwrap();
            let stats = ix.stats(&ix.query_terms(&node));
            for scorer in [Scorer::Bm25Std, Scorer::Bm25, Scorer::TfIdf, Scorer::TfIdfDocNorm, Scorer::DisMax] {
                let full = ix.search(&node, &stats, &Request { scorer, top: 100_000, ..Request::default() }).unwrap();
                let top = ix.search(&node, &stats, &Request { scorer, top: 10, ..Request::default() }).unwrap();
                assert_eq!(top.total, full.total, "{q} {scorer:?}");
                assert_eq!(top.hits, full.hits[..full.hits.len().min(10)], "{q} {scorer:?}");
            }
        }
    }

    #[test]
    fn levenshtein_bounds() {
        assert!(within("hello", "helo", 1));
        assert!(within("hello", "hello", 0));
        assert!(!within("hello", "help", 1));
        assert!(within("hello", "help", 2));
    }

    #[test]
    fn the_slop_walk_stops_at_adjacent_positions_and_list_ends() {
        assert_eq!(min_walk(&[5], &[5]), 0);
        assert_eq!(min_walk(&[1, 20], &[10, 21]), 1);
        assert_eq!(min_walk(&[1, 7], &[4]), 3);
        assert_eq!(min_walk(&[10], &[1, 4, 30]), 6);
    }

    #[test]
    fn windows_with_and_without_order() {
        assert!(fits(&[vec![1], vec![2]], 0, true));
        assert!(!fits(&[vec![2], vec![1]], 0, true));
        assert!(fits(&[vec![2], vec![1]], 0, false));
        assert!(!fits(&[vec![1], vec![4]], 1, false));
        assert!(fits(&[vec![1], vec![4]], 2, false));
        assert!(fits(&[vec![1, 10], vec![12], vec![11]], 0, false));
        assert!(!fits(&[vec![1, 10], vec![12], vec![11]], 0, true));
    }
}
