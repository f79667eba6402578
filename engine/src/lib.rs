//! strand's engine: shards, the per-core log, the keyspace and every view.
//!
//! The engine knows nothing about RESP. A shard's state is owned by one
//! thread; what crosses threads goes through the [`bus`]. Map of modules:
//!
//! - [`slot`]: key → hash slot → shard.
//! - [`bus`]: the cross-shard message queues.
//! - [`log`]: the append-only per-core log (records, segments, recovery).
//! - [`checkpoint`]: checkpoint files, a view's state as of one LSN.
//! - [`keyspace`]: the cache view: keys, strings, expiry.
//! - [`dict`]: the hash table under the keyspace, with SCAN cursors.
//! - [`bytes`]: short byte strings kept inline.
//! - [`thin`]: byte strings behind one pointer, their length in the allocation.
//! - [`codec`]: payload encoding for log records.
//! - [`series`]: the time-series view (chunks, codecs, aggregation).
//! - [`search`]: the search view (full-text indexes over hashes).
//! - [`clock`]: per-shard monotonic wall-clock time.
//! - [`runtime`]: the executor (glommio), behind a small surface.

pub mod bus;
pub mod bytes;
pub mod checkpoint;
pub mod clock;
pub mod codec;
pub mod dict;
pub mod keyspace;
pub mod log;
pub mod runtime;
pub mod search;
pub mod series;
pub mod slot;
pub mod thin;
pub mod tier;
