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
//! - [`exec`]: running a query: matching, scoring, top k.

pub mod analysis;
pub mod exec;
pub mod index;
pub mod postings;
pub mod query;
pub mod schema;

pub use index::Index;
pub use schema::Schema;

use crate::keyspace::Value;

/// The indexes of one database.
#[derive(Debug, Default)]
pub struct Indexes {
    list: Vec<Index>,
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

    /// Adds (or replaces) an index and indexes the existing hashes `keys` yields.
    pub fn define<'a>(&mut self, schema: Schema, existing: impl Iterator<Item = (&'a [u8], &'a Value)>) {
        self.list.retain(|i| i.schema.name != schema.name);
        let mut ix = Index::new(schema);
        for (key, value) in existing {
            if ix.schema.follows(key) {
                add(&mut ix, key, value);
            }
        }
        self.list.push(ix);
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
