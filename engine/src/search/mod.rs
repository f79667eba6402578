//! The search view: RediSearch-style full-text indexes over hashes.
//!
//! An index is derived state. Its definition is a log record (FT.CREATE,
//! FT.ALTER, FT.DROPINDEX: `Op::Search`), and the keyspace calls
//! [`Indexes::on_change`] whenever a hash of the database is written,
//! removed or expired, live and on replay alike, so after recovery (log
//! replay or a checkpoint plus the log after it) every index is exactly what
//! a fresh index over the same data would be. Each shard indexes the hashes
//! it owns; queries scatter to every shard and merge (the server's job).
//!
//! - [`analysis`]: words, stop-words and stems.
//! - [`query`]: the query language, text to a tree.
//! - [`schema`]: an index definition and its bytes.
//! - [`postings`]: compressed postings lists with skip data.
//! - [`index`]: one index: documents, terms, tags, numbers.
//! - [`clean`]: dropping dead postings and renumbering ids, in the background.
//! - [`exec`]: running a query: matching, scoring, top k.
//! - [`highlight`]: HIGHLIGHT and SUMMARIZE over returned fields.
//! - [`spell`]: edit distances (FT.SPELLCHECK, FT.SUGGET FUZZY).
//!
//! [`Indexes`] also holds the database's spell-check dictionaries
//! (FT.DICTADD / FT.DICTDEL), changed by `Op::Search` records too.

pub mod analysis;
pub mod clean;
pub mod exec;
pub mod highlight;
pub mod index;
pub mod postings;
pub mod query;
pub mod schema;
pub mod spell;

pub use index::{Footprint, Index, Scan};
pub use schema::Schema;

use std::collections::{BTreeMap, BTreeSet};

use crate::codec::{DecodeError, Reader, Writer};
use crate::keyspace::Value;

/// The indexes of one database, and its spell-check dictionaries.
#[derive(Debug, Default)]
pub struct Indexes {
    list: Vec<Index>,
    /// Spell-check dictionaries by name (FT.DICTADD), never empty.
    dicts: BTreeMap<String, BTreeSet<String>>,
}

/// The body of a dictionary record (`search_tag::DICT_ADD` / `DICT_DEL`):
/// the name, a count, then each term, as length-prefixed bytes.
pub fn encode_dict(name: &str, terms: &[&str]) -> Vec<u8> {
    let len = 4 + name.len() + 4 + terms.iter().map(|t| 4 + t.len()).sum::<usize>();
    let mut buf = vec![0u8; len];
    let mut w = Writer::new(&mut buf);
    w.bytes(name.as_bytes());
    w.u32(terms.len() as u32);
    terms.iter().for_each(|t| w.bytes(t.as_bytes()));
    buf
}

/// Reads what [`encode_dict`] wrote.
pub fn decode_dict(body: &[u8]) -> Result<(String, Vec<String>), DecodeError> {
    let mut r = Reader::new(body);
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| DecodeError::Invalid("dictionary term is not UTF-8"));
    let name = text(r.bytes()?)?;
    let n = r.u32()? as usize;
    let mut terms = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        terms.push(text(r.bytes()?)?);
    }
    r.finish()?;
    Ok((name, terms))
}

impl Indexes {
    /// Whether there is no index (the write path's fast check).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The index called `name`.
    pub fn get(&self, name: &str) -> Option<&Index> {
        self.list.iter().find(|i| i.schema.name == name)
    }

    /// Index names, in creation order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|i| i.schema.name.as_str())
    }

    /// Adds (or replaces) an index. The hashes already in the database are
    /// indexed in the background by [`Indexes::scan_step`]; writes index
    /// their keys at once meanwhile (indexing a key twice is harmless).
    pub fn define(&mut self, schema: Schema, keys: usize) {
        // A redefinition (FT.ALTER) keeps the synonyms.
        let synonyms = self.list.iter().find(|i| i.schema.name == schema.name).map(|i| i.synonyms.clone()).unwrap_or_default();
        self.list.retain(|i| i.schema.name != schema.name);
        let mut ix = Index::new(schema);
        ix.synonyms = synonyms;
        ix.scan = Some(Scan { cursor: 0, seen: 0, total: keys });
        self.list.push(ix);
    }

    /// Whether an index is still scanning the existing keys.
    pub fn scanning(&self) -> bool {
        self.list.iter().any(|i| i.scan.is_some())
    }

    /// Goes on with the background scans: visits about `budget` keys of
    /// `dict` (through its SCAN cursor) for the first index still scanning.
    /// Returns whether any scan is left.
    pub fn scan_step(&mut self, dict: &crate::dict::Dict<crate::keyspace::Entry>, now: u64, budget: usize) -> bool {
        let Some(ix) = self.list.iter_mut().find(|i| i.scan.is_some()) else { return false };
        let Some(mut scan) = ix.scan.take() else { return false };
        let mut visited = 0;
        let mut cursor = scan.cursor;
        while visited < budget {
            cursor = dict.scan(cursor, 64, |k, e| {
                visited += 1;
                if ix.schema.follows(k) && !e.is_expired(now) && ix.doc_of(k).is_none() {
                    add(ix, k, &e.value);
                }
            });
            if cursor == 0 {
                break;
            }
        }
        scan.seen += visited;
        scan.cursor = cursor;
        if cursor != 0 {
            ix.scan = Some(scan);
        }
        self.scanning()
    }

    /// Goes on cleaning the first index with dead postings or ids (about
    /// `budget` postings); returns whether any index still has some.
    pub fn clean_step(&mut self, budget: usize) -> bool {
        if let Some(ix) = self.list.iter_mut().find(|i| i.cleaning()) {
            ix.clean_step(budget);
        }
        self.cleaning()
    }

    /// Whether any index has cleaning left.
    pub fn cleaning(&self) -> bool {
        self.list.iter().any(Index::cleaning)
    }

    /// Drops an index; false if there is none by that name.
    pub fn drop_index(&mut self, name: &str) -> bool {
        let before = self.list.len();
        self.list.retain(|i| i.schema.name != name);
        self.list.len() != before
    }

    /// Every definition, for checkpoints.
    pub fn schemas(&self) -> impl Iterator<Item = &Schema> {
        self.list.iter().map(|i| &i.schema)
    }

    /// A key changed: `value` is what it holds now (None: gone).
    pub fn on_change(&mut self, key: &[u8], value: Option<&Value>) {
        for ix in &mut self.list {
            if !ix.schema.follows(key) {
                continue;
            }
            match value {
                Some(v @ Value::Hash(_)) => add(ix, key, v),
                _ => {
                    ix.remove(key);
                }
            }
        }
    }

    /// Adds terms to synonym group `group` of index `index` (FT.SYNUPDATE).
    pub fn syn_update(&mut self, index: &str, group: &str, terms: &[String]) {
        if let Some(ix) = self.list.iter_mut().find(|i| i.schema.name == index) {
            ix.synonyms.add(group, terms);
        }
    }

    /// Every synonym group of every index, for checkpoints: (index, group, terms).
    pub fn synonym_groups(&self) -> impl Iterator<Item = (&str, &str, Vec<&str>)> {
        self.list.iter().flat_map(|i| i.synonyms.groups().map(move |(g, t)| (i.schema.name.as_str(), g, t)))
    }

    /// The spell-check dictionary called `name`.
    pub fn dict(&self, name: &str) -> Option<&BTreeSet<String>> {
        self.dicts.get(name)
    }

    /// Every spell-check dictionary, for checkpoints.
    pub fn dicts(&self) -> impl Iterator<Item = (&str, &BTreeSet<String>)> {
        self.dicts.iter().map(|(n, d)| (n.as_str(), d))
    }

    /// Adds terms to a dictionary (creating it); how many were new.
    pub fn dict_add(&mut self, name: &str, terms: impl IntoIterator<Item = String>) -> usize {
        let d = self.dicts.entry(name.to_string()).or_default();
        let added = terms.into_iter().filter(|t| d.insert(t.clone())).count();
        if d.is_empty() {
            self.dicts.remove(name);
        }
        added
    }

    /// Removes terms from a dictionary (dropping it once empty); how many were there.
    pub fn dict_del<'t>(&mut self, name: &str, terms: impl IntoIterator<Item = &'t str>) -> usize {
        let Some(d) = self.dicts.get_mut(name) else { return 0 };
        let removed = terms.into_iter().filter(|t| d.remove(*t)).count();
        if d.is_empty() {
            self.dicts.remove(name);
        }
        removed
    }

    /// Approximate heap bytes of every index.
    pub fn heap_bytes(&self) -> usize {
        self.list.iter().map(Index::heap_bytes).sum()
    }
}

fn add(ix: &mut Index, key: &[u8], value: &Value) {
    let Value::Hash(h) = value else {
        ix.remove(key);
        return;
    };
    // A document that cannot be indexed is left out and counted, as in RediSearch.
    let _ = ix.add(key, |f| h.get(f).map(|v| &v[..]));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dictionaries_count_changes_and_go_away_empty() {
        let mut ix = Indexes::default();
        assert_eq!(ix.dict_add("d", ["a".to_string(), "b".to_string(), "a".to_string()]), 2);
        assert_eq!(ix.dict_add("d", ["b".to_string()]), 0);
        assert_eq!(ix.dict_del("d", ["a", "zz"]), 1);
        assert_eq!(ix.dict("d").unwrap().iter().collect::<Vec<_>>(), ["b"]);
        assert_eq!(ix.dict_del("d", ["b"]), 1);
        assert!(ix.dict("d").is_none());
        assert_eq!(ix.dict_del("nope", ["b"]), 0);
        assert!(ix.is_empty(), "dictionaries are not indexes");
    }

    #[test]
    fn dictionary_bodies_round_trip() {
        let body = encode_dict("name", &["x", "", "héllo"]);
        assert_eq!(decode_dict(&body).unwrap(), ("name".to_string(), vec!["x".to_string(), String::new(), "héllo".to_string()]));
        assert!(decode_dict(&body[..body.len() - 1]).is_err());
    }
}
