//! One full-text index of one shard: documents, the term dictionary with
//! its postings, tag lists and numeric trees.
//!
//! Documents are hashes whose key starts with one of the schema's prefixes.
//! Each gets a document id when it is indexed; ids only grow, so postings
//! are only appended to. Re-indexing a key (any write to the hash) removes
//! the old document and adds a new one with a fresh id. A removed document
//! leaves dead postings behind, which reads skip; [`super::clean`] drops
//! them and renumbers the ids in the background.
//!
//! Statistics for scoring are exact for the live documents: document count,
//! summed lengths, and per term the number of live documents holding it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use xxhash_rust::xxh3::Xxh3Builder;

use super::analysis::{tokens, Stems, StopWords};
use super::clean::{half_dead, Cleaner};
use super::postings::Postings;
use super::schema::{Kind, Schema};

/// Frequency a stem adds, as a fraction of its field's weight (RediSearch's STEM_TOKEN_FACTOR).
pub const STEM_FACTOR: f64 = 0.2;

/// A value kept for SORTBY.
#[derive(Debug, Clone, PartialEq)]
pub enum SortValue {
    /// A number (numeric fields, and text that parses as one is still text).
    Num(f64),
    /// Text, lower-cased as RediSearch's sorting vectors keep it.
    Str(Box<[u8]>),
}

/// A live document.
#[derive(Debug, Clone)]
pub struct Doc {
    /// The hash's key.
    pub key: Box<[u8]>,
    /// Length for length normalisation: the sum of the term frequencies added.
    pub len: u32,
    /// The highest term frequency (TFIDF's normaliser).
    pub max_freq: u32,
    /// Document score (the index's SCORE).
    pub score: f64,
    /// Its term ids (to count it out of them when it goes), sorted, as
    /// varint gaps: a document holds dozens of terms.
    terms: Box<[u8]>,
    tags: Box<[(u16, u32)]>,
    pub(super) numbers: Box<[(u16, f64)]>,
    /// SORTABLE values by field number.
    pub sort: Box<[(u16, SortValue)]>,
}

/// A term's postings and counts.
#[derive(Debug, Default)]
pub(super) struct Term {
    pub(super) text: Box<str>,
    pub(super) postings: Postings,
    /// Live documents holding it (document frequency).
    pub(super) live: u32,
    /// Dead postings in its list.
    pub(super) dead: u32,
    /// Whether it waits in the cleaner's queue.
    pub(super) queued: bool,
}

/// The documents holding one tag value.
#[derive(Debug, Default)]
pub(super) struct TagList {
    pub(super) docs: Vec<u32>,
    /// Live documents with the value (its document frequency when a tag query is scored).
    pub(super) live: u32,
    /// Dead documents in `docs`.
    pub(super) dead: u32,
    /// Whether it waits in the cleaner's queue.
    pub(super) queued: bool,
}

/// A tag field's values.
#[derive(Debug, Default)]
pub(super) struct TagField {
    pub(super) values: BTreeMap<Box<str>, u32>,
    pub(super) lists: Vec<TagList>,
}

/// How a tag value is named among a query's terms for [`Index::doc_freq`]
/// and the scoring statistics (text terms never start with `@`).
pub fn tag_term(field: &str, value: &str) -> String {
    format!("@{field}:{value}")
}

/// Orders f64 totally, as unsigned integers.
pub(super) fn num_key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | 1 << 63
    }
}

/// One index.
#[derive(Debug)]
pub struct Index {
    /// The definition.
    pub schema: Schema,
    pub(super) stop: StopWords,
    pub(super) stems: Stems,
    /// Documents by id; None once removed (boxed: a dead id costs one word).
    pub(super) docs: Vec<Option<Box<Doc>>>,
    pub(super) by_key: HashMap<Box<[u8]>, u32>,
    /// Terms in order, for prefixes and fuzzy matching.
    pub(super) dict: BTreeMap<Box<str>, u32>,
    /// The same terms hashed, for the indexing path (seeded: words come from clients).
    lookup: HashMap<Box<str>, u32, Xxh3Builder>,
    pub(super) terms: Vec<Term>,
    /// Per schema field: its tags (tag fields only).
    pub(super) tags: Vec<TagField>,
    /// Per schema field: (value key, doc) (numeric fields only).
    pub(super) numbers: Vec<BTreeSet<(u64, u32)>>,
    pub(super) live: u32,
    total_len: u64,
    /// Documents that could not be indexed (a numeric field that is not a number).
    pub failures: u64,
    /// The background scan of the keys that existed when the index was defined.
    pub scan: Option<Scan>,
    /// FT.SYNUPDATE's groups: a query word also matches its group's words.
    pub synonyms: Synonyms,
    /// Dead postings and ids waiting to be cleaned.
    pub(super) clean: Cleaner,
    /// Heap bytes, kept up to date ([`Index::heap_bytes`]).
    bytes: usize,
}

/// Synonym groups (FT.SYNUPDATE): group id → words, and word → groups.
/// Applied when a query runs: a word of a group also matches the group's
/// other words (and their stems), whenever the documents were indexed.
#[derive(Debug, Clone, Default)]
pub struct Synonyms {
    groups: BTreeMap<String, BTreeSet<String>>,
    of: BTreeMap<String, BTreeSet<String>>,
}

impl Synonyms {
    /// Adds words (lower-cased) to a group.
    pub fn add(&mut self, group: &str, words: &[String]) {
        for w in words {
            let w = w.to_lowercase();
            self.groups.entry(group.to_string()).or_default().insert(w.clone());
            self.of.entry(w).or_default().insert(group.to_string());
        }
    }

    /// The other words of the groups of `word`.
    pub fn of(&self, word: &str) -> Vec<&str> {
        let Some(groups) = self.of.get(word) else { return Vec::new() };
        let mut out: Vec<&str> =
            groups.iter().filter_map(|g| self.groups.get(g)).flatten().map(String::as_str).filter(|w| *w != word).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Each word with its groups, sorted (FT.SYNDUMP).
    pub fn dump(&self) -> impl Iterator<Item = (&str, Vec<&str>)> {
        self.of.iter().map(|(w, g)| (w.as_str(), g.iter().map(String::as_str).collect()))
    }

    /// Each group with its words.
    pub fn groups(&self) -> impl Iterator<Item = (&str, Vec<&str>)> {
        self.groups.iter().map(|(g, w)| (g.as_str(), w.iter().map(String::as_str).collect()))
    }
}

/// Where a background scan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// The database's SCAN cursor.
    pub cursor: u64,
    /// Keys visited so far.
    pub seen: usize,
    /// Keys in the database when it began.
    pub total: usize,
}

impl Scan {
    /// How far along it is, 0..=1.
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            (self.seen as f64 / self.total as f64).min(0.99)
        }
    }
}

/// Sorted ids as LEB128 gaps.
fn encode_ids(mut ids: Vec<u32>) -> Box<[u8]> {
    ids.sort_unstable();
    let mut out = Vec::with_capacity(ids.len() * 2);
    let mut prev = 0u32;
    for id in ids {
        let mut v = id - prev;
        prev = id;
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    out.into_boxed_slice()
}

/// The ids of [`encode_ids`].
fn decode_ids(b: &[u8]) -> impl Iterator<Item = u32> + '_ {
    let (mut at, mut prev) = (0, 0u32);
    std::iter::from_fn(move || {
        let (mut v, mut shift) = (0u32, 0);
        loop {
            let byte = *b.get(at)?;
            at += 1;
            v |= u32::from(byte & 0x7f) << shift;
            if byte < 0x80 || shift >= 28 {
                break;
            }
            shift += 7;
        }
        prev = prev.wrapping_add(v);
        Some(prev)
    })
}

/// A document's slot in the table.
const DOC_SLOT: usize = std::mem::size_of::<Option<Box<Doc>>>();
/// An entry of a numeric tree.
const NUMBER_BYTES: usize = 24;

/// Heap bytes of a document and its entry in the key map.
fn doc_bytes(d: &Doc) -> usize {
    std::mem::size_of::<Doc>() + d.key.len() * 2 + 40 + d.terms.len() + d.tags.len() * 8 + d.numbers.len() * 16 + d.sort.len() * 32
}

/// Heap bytes of a term's text (kept three times: table, ordered map, hash map) and its two map entries.
fn term_bytes(text: &str) -> usize {
    text.len() * 3 + 2 * (std::mem::size_of::<(Box<str>, u32)>() + 8)
}

/// Heap bytes of a tag list.
pub(super) fn tag_list_bytes(l: &TagList) -> usize {
    l.docs.capacity() * 4 + 48
}

/// Where an index's heap bytes go (estimates: allocator overhead is not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Postings lists, positions included.
    pub postings: usize,
    /// Of those, the positions.
    pub positions: usize,
    /// The term table and the dictionary (terms are kept three times: table, ordered map, hash map).
    pub terms: usize,
    /// The document table and the key map.
    pub docs: usize,
    /// Tag lists.
    pub tags: usize,
    /// Numeric trees.
    pub numbers: usize,
    /// Lists being rebuilt by the cleaner, and old ones waiting to be freed.
    pub cleaning: usize,
}

impl Footprint {
    /// Everything.
    pub fn total(&self) -> usize {
        self.postings + self.terms + self.docs + self.tags + self.numbers + self.cleaning
    }
}

/// Why a document was not indexed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IndexError {
    /// A numeric field held something else.
    #[error("invalid numeric value '{value}' in field '{field}'")]
    NotANumber { field: String, value: String },
}

impl Index {
    /// An empty index for `schema`.
    pub fn new(schema: Schema) -> Index {
        let stop = schema.stopwords.clone().map_or_else(StopWords::default, StopWords::new);
        let n = schema.fields.len();
        Index {
            schema,
            stop,
            stems: Stems::default(),
            docs: Vec::new(),
            by_key: HashMap::new(),
            dict: BTreeMap::new(),
            lookup: HashMap::with_hasher(Xxh3Builder::new().with_seed(rand::random())),
            terms: Vec::new(),
            tags: (0..n).map(|_| TagField::default()).collect(),
            numbers: (0..n).map(|_| BTreeSet::new()).collect(),
            live: 0,
            total_len: 0,
            failures: 0,
            scan: None,
            synonyms: Synonyms::default(),
            clean: Cleaner::default(),
            bytes: 0,
        }
    }

    /// The index's stemmer.
    pub fn stems(&self) -> &Stems {
        &self.stems
    }

    /// Live documents.
    pub fn num_docs(&self) -> u32 {
        self.live
    }

    /// Summed document lengths.
    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    /// Distinct terms (stems included).
    pub fn num_terms(&self) -> usize {
        self.dict.len()
    }

    /// Keys of the live documents.
    pub fn live_keys(&self) -> impl Iterator<Item = &[u8]> {
        self.docs.iter().flatten().map(|d| &*d.key)
    }

    /// The highest document id given so far.
    pub fn max_doc_id(&self) -> usize {
        self.docs.len()
    }

    /// Postings held (dead ones not yet dropped included).
    pub fn num_records(&self) -> u64 {
        self.terms.iter().map(|t| u64::from(t.postings.len())).sum()
    }

    /// Live documents holding exactly `term`; a tag value is named by [`tag_term`].
    pub fn doc_freq(&self, term: &str) -> u32 {
        if let Some((field, value)) = term.strip_prefix('@').and_then(|t| t.split_once(':')) {
            let Some((n, _)) = self.schema.field(field) else { return 0 };
            return self.tags[n].values.get(value).map_or(0, |&id| self.tags[n].lists[id as usize].live);
        }
        self.lookup.get(term).map_or(0, |&t| self.terms[t as usize].live)
    }

    /// Terms with live documents within Levenshtein distance `distance` of
    /// `word`, with their document frequencies (FT.SPELLCHECK); stems are not terms here.
    pub fn terms_near(&self, word: &str, distance: usize) -> Vec<(&str, u32)> {
        self.dict
            .iter()
            .filter(|(t, _)| !t.starts_with(super::analysis::STEM_PREFIX))
            .filter_map(|(t, &id)| {
                let live = self.terms[id as usize].live;
                (live > 0 && super::spell::levenshtein(word, t, distance).is_some()).then_some((&**t, live))
            })
            .collect()
    }

    /// The live document of `key`.
    pub fn doc_of(&self, key: &[u8]) -> Option<&Doc> {
        let id = *self.by_key.get(key)?;
        self.docs.get(id as usize)?.as_deref()
    }

    /// The document with id `id`, if live.
    pub fn doc(&self, id: u32) -> Option<&Doc> {
        self.docs.get(id as usize).and_then(Option::as_deref)
    }

    /// Approximate heap bytes of the index, kept up to date by every
    /// change (O(1): what `used_memory` and the maxmemory budget count).
    /// It equals [`Index::footprint`]'s total, which walks everything.
    pub fn heap_bytes(&self) -> usize {
        self.bytes
    }

    /// Approximate heap bytes of the index, by part (walks it all).
    pub fn footprint(&self) -> Footprint {
        let postings: usize = self.terms.iter().map(|t| t.postings.heap_bytes()).sum();
        let positions: usize = self.terms.iter().map(|t| t.postings.position_bytes()).sum();
        let terms = self.terms.capacity() * std::mem::size_of::<Term>() + self.terms.iter().map(|t| term_bytes(&t.text)).sum::<usize>();
        let docs: usize = self.docs.iter().map(|d| DOC_SLOT + d.as_deref().map_or(0, doc_bytes)).sum();
        let numbers: usize = self.numbers.iter().map(|n| n.len() * NUMBER_BYTES).sum();
        Footprint { postings, positions, terms, docs, tags: self.tag_bytes(), numbers, cleaning: self.clean.heap_bytes() }
    }

    /// Heap bytes of the tag lists.
    pub(super) fn tag_bytes(&self) -> usize {
        self.tags.iter().flat_map(|t| &t.lists).map(tag_list_bytes).sum()
    }

    /// Adds `after` and takes `before` from the byte count.
    pub(super) fn account(&mut self, before: usize, after: usize) {
        self.bytes = (self.bytes + after).saturating_sub(before);
    }

    /// Indexes (or re-indexes) the hash at `key`; `field` reads a hash field.
    /// On error the key is left out of the index.
    pub fn add<'v>(&mut self, key: &[u8], field: impl Fn(&[u8]) -> Option<&'v [u8]>) -> Result<(), IndexError> {
        self.remove(key);
        let id = self.docs.len() as u32;
        let mut forward: HashMap<String, (u32, u32, Vec<u32>)> = HashMap::new();
        let mut tags = Vec::new();
        let mut numbers = Vec::new();
        let mut sort = Vec::new();
        let mut pos = 0u32;
        let mut len = 0u32;
        let mut text_no = 0u32;
        for (n, f) in self.schema.fields.iter().enumerate() {
            let value = field(&f.name);
            let bit = if f.kind == Kind::Text { 1u32.checked_shl(text_no).unwrap_or(0) } else { 0 };
            if f.kind == Kind::Text {
                text_no += 1;
            }
            let Some(v) = value else { continue };
            let text = String::from_utf8_lossy(v);
            match f.kind {
                Kind::Text => {
                    if f.sortable {
                        sort.push((n as u16, SortValue::Str(text.to_lowercase().into_bytes().into())));
                    }
                    if f.noindex {
                        continue;
                    }
                    let weight = f.weight;
                    let stems = (!f.nostem).then_some(&self.stems);
                    tokens(&text, &self.stop, stems, &mut pos, |t| {
                        let add = (weight as u32).max(1);
                        let e = forward.entry(t.word).or_default();
                        e.0 += add;
                        e.1 |= bit;
                        e.2.push(t.pos);
                        len += add;
                        if let Some(s) = t.stem {
                            let add = ((weight * STEM_FACTOR) as u32).max(1);
                            let e = forward.entry(s).or_default();
                            e.0 += add;
                            e.1 |= bit;
                            e.2.push(t.pos);
                        }
                    });
                }
                Kind::Tag => {
                    if f.sortable {
                        sort.push((n as u16, SortValue::Str(text.to_lowercase().into_bytes().into())));
                    }
                    if !f.noindex {
                        for t in text.split(f.separator as char) {
                            let t = t.trim();
                            if t.is_empty() {
                                continue;
                            }
                            let t = if f.case_sensitive { t.to_string() } else { t.to_lowercase() };
                            tags.push((n as u16, t));
                        }
                    }
                }
                Kind::Numeric => {
                    let x = text.trim().parse::<f64>().ok().filter(|x| !x.is_nan());
                    let Some(x) = x else {
                        self.failures += 1;
                        return Err(IndexError::NotANumber { field: f.alias.clone(), value: text.into_owned() });
                    };
                    if f.sortable {
                        sort.push((n as u16, SortValue::Num(x)));
                    }
                    if !f.noindex {
                        numbers.push((n as u16, x));
                    }
                }
            }
        }
        let mut term_ids = Vec::with_capacity(forward.len());
        let mut max_freq = 0;
        // During a renumbering the document also has a new id, for the lists already rebuilt.
        let new_id = self.clean.renumber.as_ref().map(|r| r.next_new);
        for (word, (freq, fields, positions)) in forward {
            max_freq = max_freq.max(freq);
            let t = self.term_id(word);
            let term = &mut self.terms[t as usize];
            let mut grown = (term.postings.heap_bytes(), 0);
            term.postings.push(id, freq, fields, &positions);
            grown.1 = term.postings.heap_bytes();
            term.live += 1;
            term_ids.push(t);
            if let (Some(r), Some(new)) = (self.clean.renumber.as_mut(), new_id) {
                if let Some((shadow, _)) = r.shadow(t) {
                    grown.0 += shadow.heap_bytes();
                    shadow.push(new, freq, fields, &positions);
                    grown.1 += shadow.heap_bytes();
                }
            }
            self.account(grown.0, grown.1);
        }
        if let Some(r) = self.clean.renumber.as_mut() {
            r.to_new.push(r.next_new);
            r.next_new += 1;
        }
        let mut tag_ids = Vec::with_capacity(tags.len());
        tags.sort();
        tags.dedup();
        for (n, t) in tags {
            let tf = &mut self.tags[n as usize];
            let next = tf.lists.len() as u32;
            let tid = *tf.values.entry(t.into_boxed_str()).or_insert(next);
            let before = match tf.lists.get(tid as usize) {
                Some(l) => tag_list_bytes(l),
                None => {
                    tf.lists.push(TagList::default());
                    0
                }
            };
            let list = &mut tf.lists[tid as usize];
            list.docs.push(id);
            list.live += 1;
            let after = tag_list_bytes(list);
            self.account(before, after);
            tag_ids.push((n, tid));
        }
        for &(n, x) in &numbers {
            self.numbers[n as usize].insert((num_key(x), id));
        }
        self.bytes += numbers.len() * NUMBER_BYTES;
        let doc = Box::new(Doc {
            key: key.into(),
            len,
            max_freq,
            score: self.schema.score,
            terms: encode_ids(term_ids),
            tags: tag_ids.into(),
            numbers: numbers.into(),
            sort: sort.into(),
        });
        self.bytes += DOC_SLOT + doc_bytes(&doc);
        self.docs.push(Some(doc));
        self.by_key.insert(key.into(), id);
        self.live += 1;
        self.total_len += u64::from(len);
        Ok(())
    }

    fn term_id(&mut self, word: String) -> u32 {
        if let Some(&t) = self.lookup.get(word.as_str()) {
            return t;
        }
        let t = self.terms.len() as u32;
        let text: Box<str> = word.into_boxed_str();
        self.dict.insert(text.clone(), t);
        self.lookup.insert(text.clone(), t);
        let (before, grown) = (self.terms.capacity(), term_bytes(&text));
        self.terms.push(Term { text, ..Term::default() });
        self.account(before * std::mem::size_of::<Term>(), self.terms.capacity() * std::mem::size_of::<Term>() + grown);
        t
    }

    /// Removes the document of `key`; false if it was not indexed.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        let Some(id) = self.by_key.remove(key) else { return false };
        let Some(doc) = self.docs.get_mut(id as usize).and_then(Option::take) else { return false };
        self.bytes = self.bytes.saturating_sub(doc_bytes(&doc) + doc.numbers.len() * NUMBER_BYTES);
        self.live -= 1;
        self.total_len -= u64::from(doc.len);
        for t in decode_ids(&doc.terms) {
            let term = &mut self.terms[t as usize];
            term.live -= 1;
            // A list already rebuilt by a renumbering counts in its shadow; the old list goes at the swap.
            if let Some(r) = self.clean.renumber.as_mut() {
                if let Some((shadow, dead)) = r.shadow(t) {
                    *dead += 1;
                    debug_assert!(*dead <= shadow.len(), "more dead postings than postings");
                    continue;
                }
                if let Some(p) = r.building.as_mut() {
                    p.removed(t, id);
                }
            }
            if let Some(p) = self.clean.rewriting.as_mut() {
                p.removed(t, id);
            }
            term.dead += 1;
            if !term.queued && half_dead(term.dead, term.postings.len()) {
                term.queued = true;
                self.clean.terms.push(t);
            }
        }
        for &(n, tid) in doc.tags.iter() {
            let list = &mut self.tags[n as usize].lists[tid as usize];
            list.live -= 1;
            list.dead += 1;
            if !list.queued && half_dead(list.dead, list.docs.len() as u32) {
                list.queued = true;
                self.clean.tags.push((n, tid));
            }
        }
        for &(n, x) in doc.numbers.iter() {
            self.numbers[n as usize].remove(&(num_key(x), id));
        }
        true
    }

    /// Removes every document (FLUSHDB keeps no data; the definition stays).
    pub fn clear(&mut self) {
        let scan = self.scan.take();
        let synonyms = std::mem::take(&mut self.synonyms);
        *self = Index::new(self.schema.clone());
        self.scan = scan;
        self.synonyms = synonyms;
    }

    /// The tag values of a tag field, sorted (FT.TAGVALS).
    pub fn tag_values(&self, field: usize) -> Vec<&str> {
        let Some(tf) = self.tags.get(field) else { return Vec::new() };
        tf.values.iter().filter(|(_, &id)| tf.lists[id as usize].live > 0).map(|(v, _)| &**v).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::schema::Field;
    use super::*;

    fn schema() -> Schema {
        let mut title = Field::new(b"title", Kind::Text);
        title.weight = 2.0;
        Schema {
            name: "i".into(),
            prefixes: vec![b"d:".to_vec()],
            stopwords: None,
            score: 1.0,
            fields: vec![title, Field::new(b"body", Kind::Text), Field::new(b"tag", Kind::Tag), Field::new(b"n", Kind::Numeric)],
        }
    }

    fn add(ix: &mut Index, key: &str, fields: &[(&str, &str)]) -> Result<(), IndexError> {
        ix.add(key.as_bytes(), |f| fields.iter().find(|(n, _)| n.as_bytes() == f).map(|(_, v)| v.as_bytes()))
    }

    #[test]
    fn counts_follow_adds_updates_and_removes() {
        let mut ix = Index::new(schema());
        add(&mut ix, "d:1", &[("title", "Running dogs"), ("body", "the dog runs"), ("tag", "A, b"), ("n", "5")]).unwrap();
        add(&mut ix, "d:2", &[("body", "cats")]).unwrap();
        assert_eq!(ix.num_docs(), 2);
        // title weight 2: running 2 + dogs 2; body: dog 1, runs 1; cats 1.
        assert_eq!(ix.doc_of(b"d:1").unwrap().len, 6);
        assert_eq!(ix.doc_freq("+dog"), 1);
        assert_eq!(ix.doc_freq("dog"), 1);
        assert_eq!(ix.tag_values(2), ["a", "b"]);
        add(&mut ix, "d:1", &[("body", "cats again")]).unwrap();
        assert_eq!(ix.num_docs(), 2);
        assert_eq!(ix.doc_freq("dog"), 0);
        assert_eq!(ix.doc_freq("cats"), 2);
        assert!(ix.tag_values(2).is_empty());
        assert_eq!(ix.total_len(), 3);
        assert!(ix.remove(b"d:2"));
        assert!(!ix.remove(b"d:2"));
        assert_eq!(ix.num_docs(), 1);
        assert!(add(&mut ix, "d:3", &[("n", "five")]).is_err());
        assert_eq!(ix.num_docs(), 1);
    }

    #[test]
    fn many_updates_renumber_without_losing_documents() {
        let mut ix = Index::new(schema());
        for round in 0..30 {
            for k in 0..100 {
                add(&mut ix, &format!("d:{k}"), &[("body", &format!("word{k} round{round} common")), ("n", &k.to_string())]).unwrap();
                // The background cleaner, in small slices between writes.
                ix.clean_step(64);
            }
        }
        while ix.clean_step(64) {}
        assert_eq!(ix.num_docs(), 100);
        assert!(ix.docs.len() < 3000, "ids were renumbered");
        assert_eq!(ix.doc_freq("common"), 100);
        assert_eq!(ix.doc_freq("round29"), 100);
        assert_eq!(ix.doc_freq("round3"), 0);
        for k in 0..100 {
            assert!(ix.doc_of(format!("d:{k}").as_bytes()).is_some());
        }
        assert_eq!(ix.numbers[3].len(), 100);
        assert!(!ix.cleaning());
    }

    /// Writes, removals and cleaning slices interleaved at random (so
    /// renumberings run with writes in the middle): every query answers as
    /// an index built fresh from the live documents does, and once the
    /// cleaner is done no dead posting is left.
    #[test]
    fn cleaning_in_slices_keeps_answers_equal_to_a_fresh_index() {
        use super::super::exec::{Request, Scorer};
        use super::super::query::{parse, ParseOptions};
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(0xc1ea);
        let words = ["red", "green", "blue", "cyan", "magenta", "yellow", "black", "white", "grey", "running", "runner"];
        let mut ix = Index::new(schema());
        let mut live: HashMap<String, Vec<(&str, String)>> = HashMap::new();
        let compare = |ix: &Index, live: &HashMap<String, Vec<(&str, String)>>| {
            let mut fresh = Index::new(schema());
            for (k, f) in live {
                fresh.add(k.as_bytes(), |n| f.iter().find(|(x, _)| x.as_bytes() == n).map(|(_, v)| v.as_bytes())).unwrap();
            }
            assert_eq!(ix.num_docs(), fresh.num_docs());
            assert_eq!(ix.total_len(), fresh.total_len());
            for q in ["red", "green blue", "run*", "-red", "@tag:{a}", "@n:[10 40]", "\"black white\"", "yellow | cyan"] {
                let node = parse(q, &ParseOptions::default()).unwrap();
                let stats = fresh.stats(&fresh.query_terms(&node));
                let req = Request { scorer: Scorer::Bm25Std, top: 20, ..Request::default() };
                let (a, b) = (ix.search(&node, &stats, &req).unwrap(), fresh.search(&node, &stats, &req).unwrap());
                assert_eq!((a.total, a.hits), (b.total, b.hits), "{q}");
            }
            fresh
        };
        for step in 0..6000 {
            let k = format!("d:{}", rng.gen_range(0..300));
            if rng.gen_bool(0.2) {
                ix.remove(k.as_bytes());
                live.remove(&k);
            } else {
                let body: Vec<&str> = (0..rng.gen_range(1..12)).map(|_| words[rng.gen_range(0..words.len())]).collect();
                let f = vec![
                    ("title", words[rng.gen_range(0..words.len())].to_string()),
                    ("body", body.join(" ")),
                    ("tag", ["a", "b", "a,b"][rng.gen_range(0..3)].to_string()),
                    ("n", rng.gen_range(0..50).to_string()),
                ];
                add(&mut ix, &k, &f.iter().map(|(n, v)| (*n, v.as_str())).collect::<Vec<_>>()).unwrap();
                live.insert(k, f);
            }
            if rng.gen_bool(0.3) {
                ix.clean_step(rng.gen_range(1..200));
            }
            if step % 97 == 0 {
                assert_eq!(ix.heap_bytes(), ix.footprint().total(), "the byte count kept up to date equals a walk, step {step}");
                let mut queued = ix.clean.terms.clone();
                queued.sort_unstable();
                queued.dedup();
                assert_eq!(queued.len(), ix.clean.terms.len(), "a term is queued once, step {step}");
                assert!(queued.iter().all(|&t| ix.terms[t as usize].queued), "queued terms are marked, step {step}");
            }
            if step % 1000 == 999 {
                compare(&ix, &live);
            }
        }
        while ix.clean_step(100) {}
        compare(&ix, &live);
        assert_eq!(ix.heap_bytes(), ix.footprint().total());
        // The dead counts are exact, and no list is left half dead.
        for term in &ix.terms {
            let mut c = term.postings.cursor();
            let mut dead = 0;
            while let Some(p) = c.next() {
                dead += u32::from(ix.doc(p.doc).is_none());
            }
            assert_eq!(term.dead, dead, "dead postings of {}", term.text);
            assert!(!half_dead(dead, term.postings.len()), "{} is left half dead", term.text);
        }
        assert!(ix.docs.len() <= 2 * live.len() + super::super::clean::RENUMBER_FLOOR, "ids were renumbered");
    }
}
