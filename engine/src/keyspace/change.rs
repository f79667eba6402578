//! Changes to collections (hashes, lists, sets, sorted sets) and how they
//! are applied.
//!
//! A [`Change`] is what one command did to one collection, decided in full
//! before it is logged: the fields set, the members removed, the absolute
//! scores, the number of elements popped. Applying it needs no arithmetic
//! and no randomness (SPOP logs the members it chose, ZINCRBY the new
//! score), so live apply and replay give the same state. It travels inside
//! [`super::Op::Coll`]; the payload layout is: the change's own fields in
//! order, integers little-endian, byte strings as a u32 length then the
//! bytes, scores as their IEEE-754 bits.

use crate::bytes::SmallBytes;
use crate::codec::{DecodeError, Reader, Writer};

use super::list;
use super::queue::QueueChange;
use super::stream::StreamChange;
use super::value::{Type, Value};
use crate::series::agg::Agg;
use crate::series::codec::Sample;
use crate::series::Config;

/// Record kinds of collection changes (inside the keyspace's range).
pub mod kinds {
    use crate::log::record::kind::KEYSPACE_FIRST;
    /// [`super::Change::HSet`].
    pub const HSET: u8 = KEYSPACE_FIRST + 0x10;
    /// [`super::Change::HDel`].
    pub const HDEL: u8 = KEYSPACE_FIRST + 0x11;
    /// [`super::Change::LPush`].
    pub const LPUSH: u8 = KEYSPACE_FIRST + 0x12;
    /// [`super::Change::LPop`].
    pub const LPOP: u8 = KEYSPACE_FIRST + 0x13;
    /// [`super::Change::LSet`].
    pub const LSET: u8 = KEYSPACE_FIRST + 0x14;
    /// [`super::Change::LInsert`].
    pub const LINSERT: u8 = KEYSPACE_FIRST + 0x15;
    /// [`super::Change::LRem`].
    pub const LREM: u8 = KEYSPACE_FIRST + 0x16;
    /// [`super::Change::LTrim`].
    pub const LTRIM: u8 = KEYSPACE_FIRST + 0x17;
    /// [`super::Change::SAdd`].
    pub const SADD: u8 = KEYSPACE_FIRST + 0x18;
    /// [`super::Change::SRem`].
    pub const SREM: u8 = KEYSPACE_FIRST + 0x19;
    /// [`super::Change::ZAdd`].
    pub const ZADD: u8 = KEYSPACE_FIRST + 0x1a;
    /// [`super::Change::ZRem`].
    pub const ZREM: u8 = KEYSPACE_FIRST + 0x1b;
    /// [`super::Change::Stream`]: every stream change, told apart by a tag byte in the payload.
    pub const STREAM: u8 = KEYSPACE_FIRST + 0x1c;
    /// [`super::Change::Queue`]: every queue change, told apart by a tag byte in the payload.
    pub const QUEUE: u8 = KEYSPACE_FIRST + 0x1d;
    /// [`super::Change::SugAdd`] and [`super::Change::SugDel`]: a sub-tag first in the payload.
    pub const SUG: u8 = KEYSPACE_FIRST + 0x0e;
    /// Every time-series change (`Change::Ts*`): one kind, a sub-tag first in the payload.
    pub const SERIES: u8 = crate::log::record::kind::KEYSPACE_LAST;
}

/// Sub-tags of the time-series changes, the first payload byte of a [`kinds::SERIES`] record.
mod ts {
    pub const CREATE: u8 = 1;
    pub const ALTER: u8 = 2;
    pub const ADD: u8 = 3;
    pub const DEL: u8 = 4;
    pub const RULE: u8 = 5;
    pub const UNRULE: u8 = 6;
    pub const SOURCE: u8 = 7;
}

/// Sub-tags of the suggestion-dictionary changes, the first payload byte of a [`kinds::SUG`] record.
mod sug {
    pub const ADD: u8 = 1;
    pub const DEL: u8 = 2;
}

/// One command's change to one collection.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<'a> {
    /// Sets hash fields (creating the hash).
    HSet(Vec<(&'a [u8], &'a [u8])>),
    /// Removes hash fields.
    HDel(Vec<&'a [u8]>),
    /// Pushes elements one by one at the head (`left`) or the tail (creating the list).
    LPush { left: bool, elems: Vec<&'a [u8]> },
    /// Pops `count` elements from the head (`left`) or the tail.
    LPop { left: bool, count: u64 },
    /// Replaces the element at `index` (Redis indexing, must exist).
    LSet { index: i64, elem: &'a [u8] },
    /// Inserts `elem` before or after the first `pivot`.
    LInsert { before: bool, pivot: &'a [u8], elem: &'a [u8] },
    /// Removes elements equal to `elem`: `count` > 0 from the head, < 0 from the tail, 0 all.
    LRem { count: i64, elem: &'a [u8] },
    /// Keeps only `start..=stop` (Redis indexing).
    LTrim { start: i64, stop: i64 },
    /// Adds set members (creating the set).
    SAdd(Vec<&'a [u8]>),
    /// Removes set members.
    SRem(Vec<&'a [u8]>),
    /// Sets sorted-set members to absolute scores (creating the sorted set).
    ZAdd(Vec<(f64, &'a [u8])>),
    /// Removes sorted-set members.
    ZRem(Vec<&'a [u8]>),
    /// Changes a stream.
    Stream(StreamChange<'a>),
    /// Changes a reliable queue.
    Queue(QueueChange<'a>),
    /// Creates a time series with these settings (creating the key).
    TsCreate(Box<Config>),
    /// Replaces a time series' settings.
    TsAlter(Box<Config>),
    /// Writes samples at their times, replacing what is there (duplicates
    /// were resolved by the command: these are the final values).
    TsAdd(Vec<Sample>),
    /// Deletes the samples with `from <= ts <= to`.
    TsDel { from: i64, to: i64 },
    /// Adds a compaction rule writing to `dest`.
    TsRule { dest: &'a [u8], agg: Agg, bucket_ms: u64, align_ms: i64 },
    /// Removes the compaction rule writing to `dest`.
    TsUnrule(&'a [u8]),
    /// Sets (None: clears) the series whose rule writes into this one.
    TsSource(Option<&'a [u8]>),
    /// Adds or replaces a suggestion (creating the dictionary): the final
    /// score and payload (FT.SUGADD resolved INCR and a kept payload).
    SugAdd { string: &'a [u8], score: f64, payload: Option<&'a [u8]> },
    /// Removes a suggestion (matched case-insensitively).
    SugDel(&'a [u8]),
}

impl<'a> Change<'a> {
    /// The record kind.
    pub fn kind(&self) -> u8 {
        match self {
            Change::HSet(_) => kinds::HSET,
            Change::HDel(_) => kinds::HDEL,
            Change::LPush { .. } => kinds::LPUSH,
            Change::LPop { .. } => kinds::LPOP,
            Change::LSet { .. } => kinds::LSET,
            Change::LInsert { .. } => kinds::LINSERT,
            Change::LRem { .. } => kinds::LREM,
            Change::LTrim { .. } => kinds::LTRIM,
            Change::SAdd(_) => kinds::SADD,
            Change::SRem(_) => kinds::SREM,
            Change::ZAdd(_) => kinds::ZADD,
            Change::ZRem(_) => kinds::ZREM,
            Change::Stream(_) => kinds::STREAM,
            Change::Queue(_) => kinds::QUEUE,
            Change::SugAdd { .. } | Change::SugDel(_) => kinds::SUG,
            _ => kinds::SERIES,
        }
    }

    /// Whether a record kind is a collection change.
    pub fn owns(kind: u8) -> bool {
        (kinds::HSET..=kinds::QUEUE).contains(&kind) || kind == kinds::SERIES || kind == kinds::SUG
    }

    /// The type of collection it changes.
    pub fn target(&self) -> Type {
        match self {
            Change::HSet(_) | Change::HDel(_) => Type::Hash,
            Change::SAdd(_) | Change::SRem(_) => Type::Set,
            Change::ZAdd(_) | Change::ZRem(_) => Type::ZSet,
            Change::Stream(_) => Type::Stream,
            Change::Queue(_) => Type::Queue,
            Change::SugAdd { .. } | Change::SugDel(_) => Type::Sug,
            Change::LPush { .. }
            | Change::LPop { .. }
            | Change::LSet { .. }
            | Change::LInsert { .. }
            | Change::LRem { .. }
            | Change::LTrim { .. } => Type::List,
            _ => Type::Series,
        }
    }

    /// Whether it can create the collection when the key is absent.
    pub fn creates(&self) -> bool {
        match self {
            Change::Stream(c) => c.creates(),
            Change::Queue(c) => c.creates(),
            _ => matches!(
                self,
                Change::HSet(_) | Change::LPush { .. } | Change::SAdd(_) | Change::ZAdd(_) | Change::TsCreate(_) | Change::SugAdd { .. }
            ),
        }
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        let b = |s: &[u8]| 4 + s.len();
        let list = |v: &[&[u8]]| 4 + v.iter().map(|s| b(s)).sum::<usize>();
        match self {
            Change::HSet(pairs) => 4 + pairs.iter().map(|(f, v)| b(f) + b(v)).sum::<usize>(),
            Change::HDel(v) | Change::SAdd(v) | Change::SRem(v) | Change::ZRem(v) => list(v),
            Change::LPush { elems, .. } => 1 + list(elems),
            Change::LPop { .. } => 1 + 8,
            Change::LSet { elem, .. } => 8 + b(elem),
            Change::LInsert { pivot, elem, .. } => 1 + b(pivot) + b(elem),
            Change::LRem { elem, .. } => 8 + b(elem),
            Change::LTrim { .. } => 16,
            Change::ZAdd(pairs) => 4 + pairs.iter().map(|(_, m)| 8 + b(m)).sum::<usize>(),
            Change::Stream(c) => c.encoded_len(),
            Change::Queue(c) => c.encoded_len(),
            Change::TsCreate(c) | Change::TsAlter(c) => 1 + c.encoded_len(),
            Change::TsAdd(samples) => 1 + 4 + 16 * samples.len(),
            Change::TsDel { .. } => 1 + 16,
            Change::TsRule { dest, .. } => 1 + b(dest) + 1 + 16,
            Change::TsUnrule(dest) => 1 + b(dest),
            Change::TsSource(src) => 1 + 1 + src.map_or(0, b),
            Change::SugAdd { string, payload, .. } => 1 + b(string) + 8 + 1 + payload.map_or(0, b),
            Change::SugDel(string) => 1 + b(string),
        }
    }

    /// Writes the payload fields.
    pub fn encode(&self, w: &mut Writer<'_>) {
        let list = |w: &mut Writer<'_>, v: &[&[u8]]| {
            w.u32(v.len() as u32);
            v.iter().for_each(|s| w.bytes(s));
        };
        match self {
            Change::HSet(pairs) => {
                w.u32(pairs.len() as u32);
                for (f, v) in pairs {
                    w.bytes(f);
                    w.bytes(v);
                }
            }
            Change::HDel(v) | Change::SAdd(v) | Change::SRem(v) | Change::ZRem(v) => list(w, v),
            Change::LPush { left, elems } => {
                w.u8(*left as u8);
                list(w, elems);
            }
            Change::LPop { left, count } => {
                w.u8(*left as u8);
                w.u64(*count);
            }
            Change::LSet { index, elem } => {
                w.u64(*index as u64);
                w.bytes(elem);
            }
            Change::LInsert { before, pivot, elem } => {
                w.u8(*before as u8);
                w.bytes(pivot);
                w.bytes(elem);
            }
            Change::LRem { count, elem } => {
                w.u64(*count as u64);
                w.bytes(elem);
            }
            Change::LTrim { start, stop } => {
                w.u64(*start as u64);
                w.u64(*stop as u64);
            }
            Change::ZAdd(pairs) => {
                w.u32(pairs.len() as u32);
                for (s, m) in pairs {
                    w.u64(s.to_bits());
                    w.bytes(m);
                }
            }
            Change::Stream(c) => c.encode(w),
            Change::Queue(c) => c.encode(w),
            Change::SugAdd { string, score, payload } => {
                w.u8(sug::ADD);
                w.bytes(string);
                w.u64(score.to_bits());
                w.u8(payload.is_some() as u8);
                if let Some(p) = payload {
                    w.bytes(p);
                }
            }
            Change::SugDel(string) => {
                w.u8(sug::DEL);
                w.bytes(string);
            }
            series => encode_series(series, w),
        }
    }

    /// Reads the fields of a change of `kind`.
    pub fn decode(kind: u8, r: &mut Reader<'a>) -> Result<Change<'a>, DecodeError> {
        fn list<'a>(r: &mut Reader<'a>) -> Result<Vec<&'a [u8]>, DecodeError> {
            let n = r.u32()? as usize;
            let mut v = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                v.push(r.bytes()?);
            }
            Ok(v)
        }
        let flag = |r: &mut Reader<'a>| -> Result<bool, DecodeError> {
            match r.u8()? {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(DecodeError::Invalid("flag is neither 0 nor 1")),
            }
        };
        Ok(match kind {
            kinds::HSET => {
                let n = r.u32()? as usize;
                let mut pairs = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    pairs.push((r.bytes()?, r.bytes()?));
                }
                Change::HSet(pairs)
            }
            kinds::HDEL => Change::HDel(list(r)?),
            kinds::LPUSH => Change::LPush { left: flag(r)?, elems: list(r)? },
            kinds::LPOP => Change::LPop { left: flag(r)?, count: r.u64()? },
            kinds::LSET => Change::LSet { index: r.u64()? as i64, elem: r.bytes()? },
            kinds::LINSERT => Change::LInsert { before: flag(r)?, pivot: r.bytes()?, elem: r.bytes()? },
            kinds::LREM => Change::LRem { count: r.u64()? as i64, elem: r.bytes()? },
            kinds::LTRIM => Change::LTrim { start: r.u64()? as i64, stop: r.u64()? as i64 },
            kinds::SADD => Change::SAdd(list(r)?),
            kinds::SREM => Change::SRem(list(r)?),
            kinds::ZADD => {
                let n = r.u32()? as usize;
                let mut pairs = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let s = f64::from_bits(r.u64()?);
                    if s.is_nan() {
                        return Err(DecodeError::Invalid("sorted set score is NaN"));
                    }
                    pairs.push((s, r.bytes()?));
                }
                Change::ZAdd(pairs)
            }
            kinds::ZREM => Change::ZRem(list(r)?),
            kinds::STREAM => Change::Stream(StreamChange::decode(r)?),
            kinds::QUEUE => Change::Queue(QueueChange::decode(r)?),
            kinds::SERIES => decode_series(r)?,
            kinds::SUG => match r.u8()? {
                sug::ADD => {
                    let string = r.bytes()?;
                    let score = f64::from_bits(r.u64()?);
                    if score.is_nan() {
                        return Err(DecodeError::Invalid("suggestion score is NaN"));
                    }
                    let payload = if flag(r)? { Some(r.bytes()?) } else { None };
                    Change::SugAdd { string, score, payload }
                }
                sug::DEL => Change::SugDel(r.bytes()?),
                _ => return Err(DecodeError::Invalid("unknown suggestion change")),
            },
            other => return Err(DecodeError::UnknownKind(other)),
        })
    }

    /// Applies the change to a collection of its [`Change::target`] type;
    /// a value of another type is left alone (the command checked the type).
    /// `now` is the record's time (a stream consumer's seen time).
    pub fn apply(&self, value: &mut Value, now: u64) {
        match (self, value) {
            (Change::HSet(pairs), Value::Hash(h)) => {
                for (f, v) in pairs {
                    h.insert(f, SmallBytes::new(v));
                }
            }
            (Change::HDel(fields), Value::Hash(h)) => {
                for f in fields {
                    h.remove(f);
                }
            }
            (Change::SAdd(members), Value::Set(s)) => {
                for m in members {
                    s.insert(m, ());
                }
            }
            (Change::SRem(members), Value::Set(s)) => {
                for m in members {
                    s.remove(m);
                }
            }
            (Change::ZAdd(pairs), Value::ZSet(z)) => {
                for (score, m) in pairs {
                    z.insert(m, *score);
                }
            }
            (Change::ZRem(members), Value::ZSet(z)) => {
                for m in members {
                    z.remove(m);
                }
            }
            (Change::Stream(c), Value::Stream(s)) => s.apply(c, now),
            (Change::Queue(c), Value::Queue(q)) => q.apply(c),
            (Change::SugAdd { string, score, payload }, Value::Sug(d)) => d.insert(&String::from_utf8_lossy(string), *score, *payload),
            (Change::SugDel(string), Value::Sug(d)) => {
                d.remove(&String::from_utf8_lossy(string));
            }
            (change, Value::List(l)) => apply_list(change, l),
            (change, Value::Series(s)) => apply_series(change, s),
            (change, value) => debug_assert!(false, "{change:?} applied to a {}", value.type_name()),
        }
    }
}

fn encode_series(change: &Change<'_>, w: &mut Writer<'_>) {
    match change {
        Change::TsCreate(c) | Change::TsAlter(c) => {
            w.u8(if matches!(change, Change::TsCreate(_)) { ts::CREATE } else { ts::ALTER });
            c.encode(w);
        }
        Change::TsAdd(samples) => {
            w.u8(ts::ADD);
            w.u32(samples.len() as u32);
            for (t, v) in samples {
                w.u64(*t as u64);
                w.u64(v.to_bits());
            }
        }
        Change::TsDel { from, to } => {
            w.u8(ts::DEL);
            w.u64(*from as u64);
            w.u64(*to as u64);
        }
        Change::TsRule { dest, agg, bucket_ms, align_ms } => {
            w.u8(ts::RULE);
            w.bytes(dest);
            w.u8(agg.tag());
            w.u64(*bucket_ms);
            w.u64(*align_ms as u64);
        }
        Change::TsUnrule(dest) => {
            w.u8(ts::UNRULE);
            w.bytes(dest);
        }
        Change::TsSource(src) => {
            w.u8(ts::SOURCE);
            w.u8(src.is_some() as u8);
            if let Some(s) = src {
                w.bytes(s);
            }
        }
        other => debug_assert!(false, "{other:?} is not a time-series change"),
    }
}

fn decode_series<'a>(r: &mut Reader<'a>) -> Result<Change<'a>, DecodeError> {
    Ok(match r.u8()? {
        ts::CREATE => Change::TsCreate(Box::new(Config::decode(r)?)),
        ts::ALTER => Change::TsAlter(Box::new(Config::decode(r)?)),
        ts::ADD => {
            let n = r.u32()? as usize;
            let mut samples = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let t = r.u64()? as i64;
                samples.push((t, f64::from_bits(r.u64()?)));
            }
            Change::TsAdd(samples)
        }
        ts::DEL => Change::TsDel { from: r.u64()? as i64, to: r.u64()? as i64 },
        ts::RULE => {
            let dest = r.bytes()?;
            let agg = Agg::from_tag(r.u8()?).ok_or(DecodeError::Invalid("unknown aggregation"))?;
            let bucket_ms = r.u64()?;
            if bucket_ms == 0 {
                return Err(DecodeError::Invalid("compaction rule with an empty bucket"));
            }
            Change::TsRule { dest, agg, bucket_ms, align_ms: r.u64()? as i64 }
        }
        ts::UNRULE => Change::TsUnrule(r.bytes()?),
        ts::SOURCE => Change::TsSource(if r.u8()? != 0 { Some(r.bytes()?) } else { None }),
        _ => return Err(DecodeError::Invalid("unknown time-series change")),
    })
}

fn apply_series(change: &Change<'_>, s: &mut crate::series::Series) {
    match change {
        Change::TsCreate(c) | Change::TsAlter(c) => s.set_config((**c).clone()),
        Change::TsAdd(samples) => s.upsert(samples),
        Change::TsDel { from, to } => {
            s.delete_range(*from, *to);
        }
        Change::TsRule { dest, agg, bucket_ms, align_ms } => {
            s.add_rule(crate::series::Rule { dest: SmallBytes::new(dest), agg: *agg, bucket_ms: *bucket_ms, align_ms: *align_ms });
        }
        Change::TsUnrule(dest) => s.remove_rule(dest),
        Change::TsSource(src) => s.set_source(*src),
        other => debug_assert!(false, "{other:?} applied to a time series"),
    }
}

fn apply_list(change: &Change<'_>, l: &mut list::List) {
    match *change {
        Change::LPush { left, ref elems } => {
            for e in elems {
                if left {
                    l.push_front(SmallBytes::new(e));
                } else {
                    l.push_back(SmallBytes::new(e));
                }
            }
        }
        Change::LPop { left, count } => {
            let n = (count as usize).min(l.len());
            if left {
                l.drop_front(n);
            } else {
                l.truncate(l.len() - n);
            }
        }
        Change::LSet { index, elem } => {
            if let Some(i) = list::index(l.len(), index) {
                l.set(i, SmallBytes::new(elem));
            }
        }
        Change::LInsert { before, pivot, elem } => {
            if let Some(i) = l.iter().position(|e| &e[..] == pivot) {
                l.insert(if before { i } else { i + 1 }, SmallBytes::new(elem));
            }
        }
        Change::LRem { count, elem } => {
            lrem(l, count, elem);
        }
        Change::LTrim { start, stop } => match list::range(l.len(), start, stop) {
            Some((a, b)) => {
                l.truncate(b + 1);
                l.drop_front(a);
            }
            None => l.clear(),
        },
        ref other => debug_assert!(false, "{other:?} applied to a list"),
    }
}

/// Removes up to |count| elements equal to `elem` (all when 0), from the
/// tail when negative; returns how many. One pass, whatever the count.
pub fn lrem(l: &mut list::List, count: i64, elem: &[u8]) -> usize {
    let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
    // From the tail: keep the first (matches - limit) matches, drop the rest.
    let keep_first = if count < 0 { l.iter().filter(|e| &e[..] == elem).count().saturating_sub(limit) } else { 0 };
    let (mut seen, mut removed) = (0usize, 0usize);
    l.retain(|e| {
        if &e[..] != elem {
            return true;
        }
        seen += 1;
        if seen <= keep_first || removed >= limit {
            return true;
        }
        removed += 1;
        false
    });
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> list::List {
        items.iter().map(|s| SmallBytes::new(s.as_bytes())).collect()
    }

    #[test]
    fn lrem_counts_from_either_end() {
        let start = ["a", "b", "a", "b", "b", "a"];
        let cases: &[(i64, &[&str])] = &[
            (0, &["b", "b", "b"]),
            (10, &["b", "b", "b"]),
            (2, &["b", "b", "b", "a"]),
            (-2, &["a", "b", "b", "b"]),
            (-1, &["a", "b", "a", "b", "b"]),
            (1, &["b", "a", "b", "b", "a"]),
        ];
        for &(count, want) in cases {
            let mut l = list(&start);
            let n = lrem(&mut l, count, b"a");
            let left: Vec<String> = l.iter().map(|e| String::from_utf8_lossy(e).into_owned()).collect();
            assert_eq!(left, want, "count {count}");
            assert_eq!(n, start.len() - want.len());
        }
    }
}
