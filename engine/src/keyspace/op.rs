//! Keyspace write operations and their log payloads.
//!
//! Every change to the keyspace is an [`Op`]. The same `Op` value is applied
//! live and, decoded from its record, on replay, so both paths run the very
//! same code ([`super::Keyspace::apply`]). Payload layout: fields in order,
//! integers little-endian, byte strings as a u32 length then the bytes.

use std::borrow::Cow;

use crate::codec::{DecodeError, Reader, Writer};
use crate::log::record::kind::KEYSPACE_FIRST;

use super::change::Change;
use super::value::Value;

/// Record kinds of the keyspace view.
pub mod kinds {
    use super::KEYSPACE_FIRST;
    /// [`super::Op::Set`].
    pub const SET: u8 = KEYSPACE_FIRST;
    /// [`super::Op::Del`].
    pub const DEL: u8 = KEYSPACE_FIRST + 1;
    /// [`super::Op::Expire`].
    pub const EXPIRE: u8 = KEYSPACE_FIRST + 2;
    /// [`super::Op::Append`].
    pub const APPEND: u8 = KEYSPACE_FIRST + 3;
    /// [`super::Op::SetRange`].
    pub const SETRANGE: u8 = KEYSPACE_FIRST + 4;
    /// [`super::Op::MSet`].
    pub const MSET: u8 = KEYSPACE_FIRST + 5;
    /// [`super::Op::Rename`].
    pub const RENAME: u8 = KEYSPACE_FIRST + 6;
    /// [`super::Op::Copy`].
    pub const COPY: u8 = KEYSPACE_FIRST + 7;
    /// [`super::Op::Move`].
    pub const MOVE: u8 = KEYSPACE_FIRST + 8;
    /// [`super::Op::SwapDb`].
    pub const SWAPDB: u8 = KEYSPACE_FIRST + 9;
    /// [`super::Op::FlushDb`].
    pub const FLUSHDB: u8 = KEYSPACE_FIRST + 10;
    /// [`super::Op::FlushAll`].
    pub const FLUSHALL: u8 = KEYSPACE_FIRST + 11;
    /// [`super::Op::Store`].
    pub const STORE: u8 = KEYSPACE_FIRST + 12;
    /// [`super::Op::Group`].
    pub const GROUP: u8 = KEYSPACE_FIRST + 13;
    /// A cross-shard transaction's record (`keyspace::tx`): one shard's part
    /// (a tag, then a GROUP payload; decodes as [`super::Op::Group`]) or an
    /// abort recovery decided (decodes as an empty [`super::Op::Group`]).
    pub const TX: u8 = KEYSPACE_FIRST + 0x0f;
    /// [`super::Op::Search`]: a sub-tag ([`super::search_tag`]) first in the payload.
    pub const SEARCH: u8 = KEYSPACE_FIRST + 0x1e;
}

/// Sub-tags of [`Op::Search`].
pub mod search_tag {
    /// Defines an index (body: the schema); one of the same name is replaced.
    pub const DEFINE: u8 = 1;
    /// Drops an index (body: its name).
    pub const DROP: u8 = 2;
    /// Adds terms to a spell-check dictionary (FT.DICTADD; body:
    /// `crate::search::encode_dict`), creating it.
    pub const DICT_ADD: u8 = 3;
    /// Removes terms from a spell-check dictionary (FT.DICTDEL; same body);
    /// a dictionary left empty goes away.
    pub const DICT_DEL: u8 = 4;
    /// Adds terms to a synonym group of an index (FT.SYNUPDATE; body:
    /// `crate::search::encode_dict` with the index name as the name and the
    /// group id as the first term).
    pub const SYN_UPDATE: u8 = 5;
}

/// One change to the keyspace. `expire_ms` is absolute Unix milliseconds, 0 for none.
#[derive(Debug, Clone)]
pub enum Op<'a> {
    /// Sets a string value and its expiry.
    Set { db: u8, key: &'a [u8], value: &'a [u8], expire_ms: u64 },
    /// Removes a key.
    Del { db: u8, key: &'a [u8] },
    /// Sets (or with 0 removes) the expiry of an existing key; a time not after the record's time deletes it.
    Expire { db: u8, key: &'a [u8], expire_ms: u64 },
    /// Appends to a string, creating it if absent.
    Append { db: u8, key: &'a [u8], data: &'a [u8] },
    /// Overwrites part of a string, zero-padding as needed, creating it if absent.
    SetRange { db: u8, key: &'a [u8], offset: u64, data: &'a [u8] },
    /// Sets several strings at once, clearing their expiry; atomic as one record.
    MSet { db: u8, pairs: Vec<(&'a [u8], &'a [u8])> },
    /// Moves a key (with its expiry) to a new name, replacing what was there.
    Rename { db: u8, src: &'a [u8], dst: &'a [u8] },
    /// Copies a key (with its expiry), replacing the destination.
    Copy { src_db: u8, src: &'a [u8], dst_db: u8, dst: &'a [u8] },
    /// Moves a key to another database.
    Move { db: u8, key: &'a [u8], dst_db: u8 },
    /// Swaps two databases.
    SwapDb { a: u8, b: u8 },
    /// Empties one database.
    FlushDb { db: u8 },
    /// Empties every database.
    FlushAll,
    /// Changes one collection (hash, list, set, sorted set), creating it
    /// if the change adds and the key is absent, deleting the key if the
    /// collection ends up empty. The record kind is the change's kind.
    Coll { db: u8, key: &'a [u8], change: Change<'a> },
    /// Replaces a key's value whole (the *STORE commands), with an expiry.
    Store { db: u8, key: &'a [u8], value: Cow<'a, Value>, expire_ms: u64 },
    /// Several ops that form one atomic unit (a transaction, a script, a
    /// command that changes two keys): one record, so a crash keeps all or none.
    Group(Vec<Op<'a>>),
    /// Defines or drops a search index of a database (FT.CREATE, FT.ALTER,
    /// FT.DROPINDEX), or changes a spell-check dictionary (FT.DICTADD,
    /// FT.DICTDEL); `tag` is one of [`search_tag`].
    Search { db: u8, tag: u8, body: &'a [u8] },
}

/// What an op changes, as those who follow changes (WATCH, blocked clients,
/// snapshots) see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// One key of one database.
    Key(u8, &'a [u8]),
    /// Every key of one database.
    Db(u8),
    /// Every key of every database.
    All,
}

impl<'a> Op<'a> {
    /// Calls `f` for everything the op changes. A group's ops are not
    /// visited: each of them passes through `Keyspace::apply` on its own.
    pub fn for_each_target(&self, mut f: impl FnMut(Target<'_>)) {
        match *self {
            Op::Set { db, key, .. }
            | Op::Del { db, key }
            | Op::Expire { db, key, .. }
            | Op::Append { db, key, .. }
            | Op::SetRange { db, key, .. }
            | Op::Coll { db, key, .. }
            | Op::Store { db, key, .. } => f(Target::Key(db, key)),
            Op::MSet { db, ref pairs } => pairs.iter().for_each(|(k, _)| f(Target::Key(db, k))),
            Op::Rename { db, src, dst } => {
                f(Target::Key(db, src));
                f(Target::Key(db, dst));
            }
            Op::Copy { dst_db, dst, .. } => f(Target::Key(dst_db, dst)),
            Op::Move { db, key, dst_db } => {
                f(Target::Key(db, key));
                f(Target::Key(dst_db, key));
            }
            Op::SwapDb { a, b } => {
                f(Target::Db(a));
                f(Target::Db(b));
            }
            Op::FlushDb { db } => f(Target::Db(db)),
            Op::FlushAll => f(Target::All),
            Op::Group(_) | Op::Search { .. } => {}
        }
    }

    /// The record kind.
    pub fn kind(&self) -> u8 {
        match self {
            Op::Set { .. } => kinds::SET,
            Op::Del { .. } => kinds::DEL,
            Op::Expire { .. } => kinds::EXPIRE,
            Op::Append { .. } => kinds::APPEND,
            Op::SetRange { .. } => kinds::SETRANGE,
            Op::MSet { .. } => kinds::MSET,
            Op::Rename { .. } => kinds::RENAME,
            Op::Copy { .. } => kinds::COPY,
            Op::Move { .. } => kinds::MOVE,
            Op::SwapDb { .. } => kinds::SWAPDB,
            Op::FlushDb { .. } => kinds::FLUSHDB,
            Op::FlushAll => kinds::FLUSHALL,
            Op::Coll { change, .. } => change.kind(),
            Op::Store { .. } => kinds::STORE,
            Op::Group(_) => kinds::GROUP,
            Op::Search { .. } => kinds::SEARCH,
        }
    }

    /// Whether a record kind belongs to this view.
    pub fn owns(kind: u8) -> bool {
        (kinds::SET..=kinds::GROUP).contains(&kind) || kind == kinds::TX || Change::owns(kind) || kind == kinds::SEARCH
    }

    /// Writes the payload.
    pub fn encode(&self, w: &mut Writer<'_>) {
        match self {
            Op::Set { db, key, value, expire_ms } => {
                w.u8(*db);
                w.u64(*expire_ms);
                w.bytes(key);
                w.bytes(value);
            }
            Op::Del { db, key } => {
                w.u8(*db);
                w.bytes(key);
            }
            Op::Expire { db, key, expire_ms } => {
                w.u8(*db);
                w.u64(*expire_ms);
                w.bytes(key);
            }
            Op::Append { db, key, data } => {
                w.u8(*db);
                w.bytes(key);
                w.bytes(data);
            }
            Op::SetRange { db, key, offset, data } => {
                w.u8(*db);
                w.u64(*offset);
                w.bytes(key);
                w.bytes(data);
            }
            Op::MSet { db, pairs } => {
                w.u8(*db);
                w.u32(pairs.len() as u32);
                for (k, v) in pairs {
                    w.bytes(k);
                    w.bytes(v);
                }
            }
            Op::Rename { db, src, dst } => {
                w.u8(*db);
                w.bytes(src);
                w.bytes(dst);
            }
            Op::Copy { src_db, src, dst_db, dst } => {
                w.u8(*src_db);
                w.u8(*dst_db);
                w.bytes(src);
                w.bytes(dst);
            }
            Op::Move { db, key, dst_db } => {
                w.u8(*db);
                w.u8(*dst_db);
                w.bytes(key);
            }
            Op::SwapDb { a, b } => {
                w.u8(*a);
                w.u8(*b);
            }
            Op::FlushDb { db } => w.u8(*db),
            Op::FlushAll => {}
            Op::Coll { db, key, change } => {
                w.u8(*db);
                w.bytes(key);
                change.encode(w);
            }
            Op::Store { db, key, value, expire_ms } => {
                w.u8(*db);
                w.u64(*expire_ms);
                w.bytes(key);
                value.encode(w);
            }
            Op::Group(ops) => {
                w.u32(ops.len() as u32);
                for op in ops {
                    w.u8(op.kind());
                    w.u32(op.encoded_len() as u32);
                    op.encode(w);
                }
            }
            Op::Search { db, tag, body } => {
                w.u8(*db);
                w.u8(*tag);
                w.bytes(body);
            }
        }
    }

    /// Payload length in bytes.
    pub fn encoded_len(&self) -> usize {
        let b = |s: &[u8]| 4 + s.len();
        match self {
            Op::Set { key, value, .. } => 1 + 8 + b(key) + b(value),
            Op::Del { key, .. } => 1 + b(key),
            Op::Expire { key, .. } => 1 + 8 + b(key),
            Op::Append { key, data, .. } => 1 + b(key) + b(data),
            Op::SetRange { key, data, .. } => 1 + 8 + b(key) + b(data),
            Op::MSet { pairs, .. } => 1 + 4 + pairs.iter().map(|(k, v)| b(k) + b(v)).sum::<usize>(),
            Op::Rename { src, dst, .. } => 1 + b(src) + b(dst),
            Op::Copy { src, dst, .. } => 2 + b(src) + b(dst),
            Op::Move { key, .. } => 2 + b(key),
            Op::SwapDb { .. } => 2,
            Op::FlushDb { .. } => 1,
            Op::FlushAll => 0,
            Op::Coll { key, change, .. } => 1 + b(key) + change.encoded_len(),
            Op::Store { key, value, .. } => 1 + 8 + b(key) + value.encoded_len(),
            Op::Group(ops) => 4 + ops.iter().map(|op| 5 + op.encoded_len()).sum::<usize>(),
            Op::Search { body, .. } => 2 + b(body),
        }
    }

    /// Reads an op back from its record.
    pub fn decode(kind: u8, payload: &'a [u8]) -> Result<Op<'a>, DecodeError> {
        let mut r = Reader::new(payload);
        let op = match kind {
            kinds::SET => {
                let db = r.u8()?;
                let expire_ms = r.u64()?;
                Op::Set { db, expire_ms, key: r.bytes()?, value: r.bytes()? }
            }
            kinds::DEL => Op::Del { db: r.u8()?, key: r.bytes()? },
            kinds::EXPIRE => {
                let db = r.u8()?;
                let expire_ms = r.u64()?;
                Op::Expire { db, expire_ms, key: r.bytes()? }
            }
            kinds::APPEND => Op::Append { db: r.u8()?, key: r.bytes()?, data: r.bytes()? },
            kinds::SETRANGE => {
                let db = r.u8()?;
                let offset = r.u64()?;
                let (key, data) = (r.bytes()?, r.bytes()?);
                if offset.checked_add(data.len() as u64).is_none_or(|end| end > super::MAX_STRING_LEN as u64) {
                    return Err(DecodeError::Invalid("SETRANGE past the longest string allowed"));
                }
                Op::SetRange { db, offset, key, data }
            }
            kinds::MSET => {
                let db = r.u8()?;
                let n = r.u32()? as usize;
                let mut pairs = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    pairs.push((r.bytes()?, r.bytes()?));
                }
                Op::MSet { db, pairs }
            }
            kinds::RENAME => Op::Rename { db: r.u8()?, src: r.bytes()?, dst: r.bytes()? },
            kinds::COPY => {
                let src_db = r.u8()?;
                let dst_db = r.u8()?;
                Op::Copy { src_db, dst_db, src: r.bytes()?, dst: r.bytes()? }
            }
            kinds::MOVE => {
                let db = r.u8()?;
                let dst_db = r.u8()?;
                Op::Move { db, dst_db, key: r.bytes()? }
            }
            kinds::SWAPDB => Op::SwapDb { a: r.u8()?, b: r.u8()? },
            kinds::FLUSHDB => Op::FlushDb { db: r.u8()? },
            kinds::FLUSHALL => Op::FlushAll,
            kinds::STORE => {
                let db = r.u8()?;
                let expire_ms = r.u64()?;
                let key = r.bytes()?;
                Op::Store { db, key, expire_ms, value: Cow::Owned(Value::decode(&mut r)?) }
            }
            kinds::GROUP => {
                let n = r.u32()? as usize;
                let mut ops = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let kind = r.u8()?;
                    if kind == kinds::GROUP {
                        return Err(DecodeError::Invalid("group nested in a group"));
                    }
                    let len = r.u32()? as usize;
                    ops.push(Op::decode(kind, r.take(len)?)?);
                }
                Op::Group(ops)
            }
            kinds::SEARCH => Op::Search { db: r.u8()?, tag: r.u8()?, body: r.bytes()? },
            kinds::TX => {
                return match super::tx::decode(payload)? {
                    super::tx::TxRecord::Part(_, group) => Op::decode(kinds::GROUP, group),
                    super::tx::TxRecord::Abort(_) => Ok(Op::Group(Vec::new())),
                }
            }
            k if Change::owns(k) => {
                let db = r.u8()?;
                let key = r.bytes()?;
                Op::Coll { db, key, change: Change::decode(k, &mut r)? }
            }
            other => return Err(DecodeError::UnknownKind(other)),
        };
        r.finish()?;
        Ok(op)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_record_kind_of_the_keyspace_is_distinct_and_owned() {
        use crate::keyspace::change::kinds as c;
        let all = [
            kinds::SET,
            kinds::DEL,
            kinds::EXPIRE,
            kinds::APPEND,
            kinds::SETRANGE,
            kinds::MSET,
            kinds::RENAME,
            kinds::COPY,
            kinds::MOVE,
            kinds::SWAPDB,
            kinds::FLUSHDB,
            kinds::FLUSHALL,
            kinds::STORE,
            kinds::GROUP,
            kinds::TX,
            kinds::SEARCH,
            c::HSET,
            c::HDEL,
            c::LPUSH,
            c::LPOP,
            c::LSET,
            c::LINSERT,
            c::LREM,
            c::LTRIM,
            c::SADD,
            c::SREM,
            c::ZADD,
            c::ZREM,
            c::STREAM,
            c::QUEUE,
            c::SUG,
            c::SERIES,
        ];
        let mut seen = std::collections::HashSet::new();
        for k in all {
            assert!(seen.insert(k), "record kind 0x{k:02x} is used twice");
            assert!(Op::owns(k), "record kind 0x{k:02x} is not owned by the keyspace");
        }
    }

    #[test]
    fn every_op_round_trips() {
        let ops = vec![
            Op::Set { db: 3, key: b"k", value: b"v\r\n", expire_ms: 99 },
            Op::Del { db: 0, key: b"" },
            Op::Expire { db: 15, key: b"k", expire_ms: 0 },
            Op::Append { db: 1, key: b"k", data: b"more" },
            Op::SetRange { db: 1, key: b"k", offset: (crate::keyspace::MAX_STRING_LEN - 1) as u64, data: b"x" },
            Op::MSet { db: 2, pairs: vec![(b"a", b"1"), (b"b", b"")] },
            Op::Rename { db: 0, src: b"a", dst: b"b" },
            Op::Copy { src_db: 0, src: b"a", dst_db: 9, dst: b"b" },
            Op::Move { db: 0, key: b"a", dst_db: 1 },
            Op::SwapDb { a: 0, b: 1 },
            Op::FlushDb { db: 4 },
            Op::FlushAll,
            Op::Coll { db: 1, key: b"h", change: Change::HSet(vec![(b"f", b"v")]) },
            Op::Coll { db: 1, key: b"h", change: Change::HDel(vec![b"f", b""]) },
            Op::Coll { db: 1, key: b"l", change: Change::LPush { left: true, elems: vec![b"a", b"b"] } },
            Op::Coll { db: 1, key: b"l", change: Change::LPop { left: false, count: 3 } },
            Op::Coll { db: 1, key: b"l", change: Change::LSet { index: -1, elem: b"x" } },
            Op::Coll { db: 1, key: b"l", change: Change::LInsert { before: true, pivot: b"p", elem: b"x" } },
            Op::Coll { db: 1, key: b"l", change: Change::LRem { count: -2, elem: b"x" } },
            Op::Coll { db: 1, key: b"l", change: Change::LTrim { start: 1, stop: -2 } },
            Op::Coll { db: 1, key: b"s", change: Change::SAdd(vec![b"a"]) },
            Op::Coll { db: 1, key: b"s", change: Change::SRem(vec![b"a"]) },
            Op::Coll { db: 1, key: b"z", change: Change::ZAdd(vec![(1.5, b"a"), (f64::NEG_INFINITY, b"b")]) },
            Op::Coll { db: 1, key: b"z", change: Change::ZRem(vec![b"a"]) },
            Op::Coll { db: 1, key: b"t", change: Change::TsCreate(Box::new(series_config())) },
            Op::Coll { db: 1, key: b"t", change: Change::TsAlter(Box::default()) },
            Op::Coll { db: 1, key: b"t", change: Change::TsAdd(vec![(1, 1.5), (-7, f64::NEG_INFINITY)]) },
            Op::Coll { db: 1, key: b"t", change: Change::TsDel { from: -5, to: i64::MAX } },
            Op::Coll {
                db: 1,
                key: b"t",
                change: Change::TsRule { dest: b"d", agg: crate::series::agg::Agg::Twa, bucket_ms: 60_000, align_ms: -3 },
            },
            Op::Coll { db: 1, key: b"t", change: Change::TsUnrule(b"d") },
            Op::Coll { db: 1, key: b"d", change: Change::TsSource(Some(b"t")) },
            Op::Coll { db: 1, key: b"d", change: Change::TsSource(None) },
            Op::Coll { db: 1, key: b"g", change: Change::SugAdd { string: b"Hello", score: 2.5, payload: Some(b"p") } },
            Op::Coll { db: 1, key: b"g", change: Change::SugAdd { string: b"x", score: 0.0, payload: None } },
            Op::Coll { db: 1, key: b"g", change: Change::SugDel(b"hello") },
            Op::Search { db: 2, tag: search_tag::DICT_ADD, body: b"\x01\0\0\0d" },
            Op::Store { db: 2, key: b"d", value: Cow::Owned(Value::Str(b"s"[..].into())), expire_ms: 5 },
            Op::Group(vec![Op::Del { db: 0, key: b"a" }, Op::Coll { db: 0, key: b"l", change: Change::LPop { left: true, count: 1 } }]),
        ];
        // A SETRANGE past the longest string is refused: replay would allocate it.
        let far = Op::SetRange { db: 1, key: b"k", offset: crate::keyspace::MAX_STRING_LEN as u64, data: b"x" };
        let mut buf = vec![0u8; far.encoded_len()];
        far.encode(&mut Writer::new(&mut buf));
        assert!(Op::decode(far.kind(), &buf).is_err());
        for op in ops {
            let mut buf = vec![0u8; op.encoded_len()];
            op.encode(&mut Writer::new(&mut buf));
            assert_eq!(format!("{:?}", Op::decode(op.kind(), &buf).unwrap()), format!("{op:?}"));
            // Any truncation is an error, never a different op.
            for cut in 0..buf.len() {
                assert!(Op::decode(op.kind(), &buf[..cut]).is_err());
            }
        }
    }

    fn series_config() -> crate::series::Config {
        crate::series::Config {
            settings: crate::series::Settings {
                retention_ms: 5,
                chunk_size: 128,
                duplicate: Some(crate::series::Duplicate::Sum),
                ignore_ms: 3,
                ignore_value: 0.5,
                uncompressed: true,
            },
            labels: crate::series::Labels::new([(&b"a=b"[..], &b"(x, y)"[..])]),
        }
    }

    #[test]
    fn unknown_kind_is_an_error() {
        assert!(matches!(Op::decode(0x7f, &[]), Err(DecodeError::UnknownKind(0x7f))));
    }
}
