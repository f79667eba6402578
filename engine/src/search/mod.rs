//! The search view: RediSearch-style full-text indexes over hashes.
//!
//! - [`query`]: the query language, text to a tree.
pub mod query;
