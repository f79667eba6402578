//! Stream retention by age and by size (strand's own, as Kafka's
//! `retention.ms` and `retention.bytes`): set with `XCFGSET key
//! RETENTION-MS ms RETENTION-BYTES bytes` (0 turns a limit off).
//!
//! An XADD trims what retention drops in the same record as the entry
//! (as MAXLEN does). A stream nobody writes to ages too, so each shard
//! keeps a registry of its streams with retention and its timer
//! ([`tick`], every 100 ms with active expiry) logs a trim for any whose
//! oldest entries expired. Trimmed entries are dead in the log; the next
//! checkpoint leaves them out and the segments that held them are removed
//! whole (see `crate::checkpoint`).
//!
//! The registry is rebuilt at start-up from the recovered keyspace
//! ([`Registry::rebuild`]); a key that is gone or no longer has retention
//! leaves it at its next tick.

use std::collections::BTreeSet;

use strand_engine::keyspace::stream::StreamChange;
use strand_engine::keyspace::{Change, Keyspace, Op, Value, DATABASES};

/// A stream as the registry names it: database and key.
type StreamKey = (u8, Vec<u8>);

/// The streams of one shard that have retention.
#[derive(Debug, Default)]
pub struct Registry {
    keys: BTreeSet<StreamKey>,
}

impl Registry {
    /// Notes a stream that has (or may have) retention.
    pub fn note(&mut self, db: u8, key: &[u8]) {
        self.keys.insert((db, key.to_vec()));
    }

    /// Every stream with retention in `ks`, after start-up recovery.
    pub fn rebuild(ks: &Keyspace, now: u64) -> Registry {
        let mut r = Registry::default();
        for db in 0..DATABASES {
            ks.for_each(db, now, |key, e| {
                if matches!(&e.value, Value::Stream(s) if s.retention.is_set()) {
                    r.keys.insert((db as u8, key.to_vec()));
                }
            });
        }
        r
    }

    /// Streams registered.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether none is registered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Logs a trim for every registered stream whose oldest entries retention
/// drops at `now`; forgets keys that are gone or lost their retention.
/// Returns the entries trimmed.
pub fn tick(st: &mut crate::shard::ShardState, now: u64) -> u64 {
    // First only look (most ticks find nothing to do), then write.
    // (db, key) and how many entries to trim; None: the key left the registry.
    let mut due: Vec<(StreamKey, Option<u64>)> = Vec::new();
    for (db, key) in &st.stream_retention.keys {
        match st.ks.peek(*db as usize, key, now).map(|e| &e.value) {
            Some(Value::Stream(s)) if s.retention.is_set() => match s.retention_trim(now, 0) {
                0 => {}
                count => due.push(((*db, key.clone()), Some(count))),
            },
            _ => due.push(((*db, key.clone()), None)),
        }
    }
    let mut trimmed = 0;
    for ((db, key), count) in due {
        let Some(count) = count else {
            st.stream_retention.keys.remove(&(db, key));
            continue;
        };
        let op = Op::Coll { db, key: &key, change: Change::Stream(StreamChange::Trim { count }) };
        if st.ks.write(op, now).is_err() {
            break; // the log refuses writes: the next tick tries again
        }
        trimmed += count;
    }
    trimmed
}
