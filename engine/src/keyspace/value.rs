//! Values: what a key holds, one variant per Redis type.
//!
//! Strings are [`SmallBytes`]; the collections are the containers of
//! [`super::hash`], [`super::list`], [`super::set`] and [`super::zset`].
//! A value can be written whole into a log record ([`Value::encode`]) for
//! the commands that replace a key's value at once (SINTERSTORE,
//! ZUNIONSTORE ...) and read back with [`Value::decode`]; checkpoints
//! write every value that way, time series included (their compressed chunks)
//! and suggestion dictionaries (tag 8).

use crate::bytes::SmallBytes;
use crate::codec::{DecodeError, Reader, Writer};

use super::hash::Hash;
use super::list::List;
use super::queue::Queue;
use super::set::Set;
use super::stream::Stream;
use super::sug::SugDict;
use super::zset::ZSet;
use crate::series::Series;
use crate::tier::ColdRef;

/// A value.
#[derive(Debug, Clone)]
pub enum Value {
    /// A string (binary-safe), inline when short.
    Str(SmallBytes),
    /// A hash: field → value.
    Hash(Box<Hash>),
    /// A list of elements.
    List(Box<List>),
    /// A set of members.
    Set(Box<Set>),
    /// A sorted set: member → score, ordered by (score, member).
    ZSet(Box<ZSet>),
    /// A stream: entries by ID, consumer groups.
    Stream(Box<Stream>),
    /// A reliable queue: messages with leases, delays, priorities, a dead-letter list.
    Queue(Box<Queue>),
    /// A time series (TS.* commands).
    Series(Box<Series>),
    /// A suggestion dictionary (FT.SUGADD and friends).
    Sug(Box<SugDict>),
    /// A string whose bytes are in the cold tier ([`crate::tier`]), not in
    /// memory. Commands never see one: the keyspace reads it back first
    /// ([`super::Keyspace::make_resident`]).
    Cold(ColdRef),
}

/// The types a value can have, as TYPE and SCAN TYPE name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// `string`.
    Str,
    /// `hash`.
    Hash,
    /// `list`.
    List,
    /// `set`.
    Set,
    /// `zset`.
    ZSet,
    /// `stream`.
    Stream,
    /// `queue`.
    Queue,
    /// `TSDB-TYPE`, as RedisTimeSeries names it.
    Series,
    /// `trietype0`, as RediSearch names its suggestion dictionaries.
    Sug,
}

impl Type {
    /// The name TYPE answers.
    pub fn name(self) -> &'static str {
        match self {
            Type::Str => "string",
            Type::Hash => "hash",
            Type::List => "list",
            Type::Set => "set",
            Type::ZSet => "zset",
            Type::Stream => "stream",
            Type::Queue => "queue",
            Type::Series => "TSDB-TYPE",
            Type::Sug => "trietype0",
        }
    }

    /// The type a TYPE name names (case-insensitive), for SCAN TYPE.
    pub fn from_name(name: &[u8]) -> Option<Type> {
        [Type::Str, Type::Hash, Type::List, Type::Set, Type::ZSet, Type::Stream, Type::Queue, Type::Series, Type::Sug]
            .into_iter()
            .find(|t| t.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// An empty collection of this type (None for strings).
    pub fn empty(self) -> Option<Value> {
        match self {
            Type::Str => None,
            Type::Hash => Some(Value::Hash(Box::default())),
            Type::List => Some(Value::List(Box::default())),
            Type::Set => Some(Value::Set(Box::default())),
            Type::ZSet => Some(Value::ZSet(Box::default())),
            Type::Stream => Some(Value::Stream(Box::default())),
            Type::Queue => Some(Value::Queue(Box::default())),
            Type::Series => Some(Value::Series(Box::default())),
            Type::Sug => Some(Value::Sug(Box::default())),
        }
    }

    fn tag(self) -> u8 {
        match self {
            Type::Str => 0,
            Type::Hash => 1,
            Type::List => 2,
            Type::Set => 3,
            Type::ZSet => 4,
            Type::Stream => 5,
            Type::Queue => 6,
            Type::Series => 7,
            Type::Sug => 8,
        }
    }
}

/// The tag of a stream followed by its IDMP state (written by one earlier
/// build; still read).
const STREAM_IDMP_TAG: u8 = 9;
/// The tag of a stream followed by its extensions: a flag, the IDMP state
/// if the flag is 1, then the retention (ms, bytes). A stream without any
/// keeps [`Type::Stream`]'s tag, so older checkpoints read the same.
const STREAM_EXT_TAG: u8 = 10;
/// The tag of a cold string in a checkpoint: its tier segment u32, record
/// offset u32 and value length u32 ([`ColdRef`]).
const COLD_TAG: u8 = 11;

fn has_extensions(s: &Stream) -> bool {
    s.idmp.is_some() || s.retention.is_set()
}

impl Value {
    /// The value's type.
    pub fn kind(&self) -> Type {
        match self {
            Value::Str(_) | Value::Cold(_) => Type::Str,
            Value::Hash(_) => Type::Hash,
            Value::List(_) => Type::List,
            Value::Set(_) => Type::Set,
            Value::ZSet(_) => Type::ZSet,
            Value::Stream(_) => Type::Stream,
            Value::Queue(_) => Type::Queue,
            Value::Series(_) => Type::Series,
            Value::Sug(_) => Type::Sug,
        }
    }

    /// The name `TYPE` answers.
    pub fn type_name(&self) -> &'static str {
        self.kind().name()
    }

    /// What `OBJECT ENCODING` answers for a collection: strand's own
    /// structures, named for what they are (strings are named by the server,
    /// which knows Redis's int/embstr/raw rules).
    pub fn collection_encoding(&self) -> Option<&'static str> {
        match self {
            Value::Str(_) | Value::Cold(_) => None,
            Value::Hash(_) | Value::Set(_) => Some("hashtable"),
            Value::List(_) => Some("deque"),
            Value::ZSet(z) => Some(z.encoding()),
            Value::Stream(_) => Some("stream"),
            Value::Queue(_) => Some("queue"),
            Value::Series(_) => Some("chunked"),
            Value::Sug(_) => Some("trie"),
        }
    }

    /// Elements in a collection (bytes for a string).
    pub fn len(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::Cold(r) => r.len as usize,
            Value::Hash(h) => h.len(),
            Value::List(l) => l.len(),
            Value::Set(s) => s.len(),
            Value::ZSet(z) => z.len(),
            Value::Stream(s) => s.len(),
            Value::Queue(q) => q.len(),
            Value::Series(s) => s.len(),
            Value::Sug(d) => d.len(),
        }
    }

    /// Whether a collection is empty (an empty collection is never stored:
    /// the key goes away). A stream is never empty in this sense: as in
    /// Redis, it stays (with its last ID and groups) when its last entry goes;
    /// so does a queue, with its settings, counters and dead letters, and a
    /// time series, which exists from TS.CREATE on, with or without samples.
    pub fn is_empty(&self) -> bool {
        !matches!(self, Value::Stream(_) | Value::Queue(_) | Value::Series(_)) && self.len() == 0
    }

    /// Bytes `MEMORY USAGE` reports: [`Value::heap_bytes`], and for a time
    /// series its share of the label strings it holds with other series.
    pub fn usage_bytes(&self) -> usize {
        match self {
            Value::Series(s) => s.memory_usage(),
            v => v.heap_bytes(),
        }
    }

    /// Heap bytes this value owns, for accounting. O(1): every container
    /// keeps its own running count, and the figure does not change while
    /// the value sits in the keyspace unless the keyspace is told.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::Str(s) => s.heap_bytes(),
            Value::Cold(_) => 0,
            Value::Hash(h) => std::mem::size_of::<Hash>() + h.heap_bytes(),
            Value::List(l) => std::mem::size_of::<List>() + l.heap_bytes(),
            Value::Set(s) => std::mem::size_of::<Set>() + s.heap_bytes(),
            Value::ZSet(z) => std::mem::size_of::<ZSet>() + z.heap_bytes(),
            Value::Stream(s) => std::mem::size_of::<Stream>() + s.heap_bytes(),
            Value::Queue(q) => std::mem::size_of::<Queue>() + q.heap_bytes(),
            Value::Series(s) => s.heap_bytes(),
            Value::Sug(d) => std::mem::size_of::<SugDict>() + d.heap_bytes(),
        }
    }

    /// Bytes [`Value::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let b = |s: &[u8]| 4 + s.len();
        1 + match self {
            Value::Str(s) => b(s),
            Value::Cold(_) => 12,
            Value::Hash(h) => 4 + h.iter().map(|(f, v)| b(f) + b(v)).sum::<usize>(),
            Value::List(l) => 4 + l.iter().map(|e| b(e)).sum::<usize>(),
            Value::Set(s) => 4 + s.iter().map(|(m, _)| b(m)).sum::<usize>(),
            Value::ZSet(z) => 4 + z.iter().map(|(m, _)| 8 + b(m)).sum::<usize>(),
            Value::Stream(s) if has_extensions(s) => s.encoded_len() + 1 + s.idmp.as_ref().map_or(0, |m| m.encoded_len()) + 16,
            Value::Stream(s) => s.encoded_len(),
            Value::Queue(q) => q.encoded_len(),
            Value::Series(s) => s.encoded_len(),
            Value::Sug(d) => d.encoded_len(),
        }
    }

    /// Writes the value: a type tag, then its contents (a count, then the elements).
    pub fn encode(&self, w: &mut Writer<'_>) {
        match self {
            Value::Stream(s) if has_extensions(s) => w.u8(STREAM_EXT_TAG),
            Value::Cold(_) => w.u8(COLD_TAG),
            _ => w.u8(self.kind().tag()),
        }
        match self {
            Value::Str(s) => w.bytes(s),
            Value::Cold(r) => {
                w.u32(r.seg);
                w.u32(r.off);
                w.u32(r.len);
            }
            Value::Hash(h) => {
                w.u32(h.len() as u32);
                for (f, v) in h.iter() {
                    w.bytes(f);
                    w.bytes(v);
                }
            }
            Value::List(l) => {
                w.u32(l.len() as u32);
                l.iter().for_each(|e| w.bytes(e));
            }
            Value::Set(s) => {
                w.u32(s.len() as u32);
                s.iter().for_each(|(m, _)| w.bytes(m));
            }
            Value::ZSet(z) => {
                w.u32(z.len() as u32);
                for (m, score) in z.iter() {
                    w.u64(score.to_bits());
                    w.bytes(m);
                }
            }
            Value::Stream(s) => {
                s.encode(w);
                if has_extensions(s) {
                    w.u8(u8::from(s.idmp.is_some()));
                    if let Some(m) = &s.idmp {
                        m.encode(w);
                    }
                    w.u64(s.retention.ms);
                    w.u64(s.retention.bytes);
                }
            }
            Value::Queue(q) => q.encode(w),
            Value::Series(s) => s.encode(w),
            Value::Sug(d) => d.encode(w),
        }
    }

    /// Reads a value written by [`Value::encode`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Value, DecodeError> {
        let tag = r.u8()?;
        if tag == Type::Str.tag() {
            return Ok(Value::Str(SmallBytes::new(r.bytes()?)));
        }
        if tag == COLD_TAG {
            let cold = ColdRef { seg: r.u32()?, off: r.u32()?, len: r.u32()? };
            if !crate::tier::fits(0, cold.len as usize) || cold.off < crate::tier::BLOCK {
                return Err(DecodeError::Invalid("cold string reference out of range"));
            }
            return Ok(Value::Cold(cold));
        }
        if tag == Type::Stream.tag() || tag == STREAM_IDMP_TAG || tag == STREAM_EXT_TAG {
            let mut s = Stream::decode(r)?;
            let idmp = match tag {
                STREAM_IDMP_TAG => true,
                STREAM_EXT_TAG => r.flag()?,
                _ => false,
            };
            if idmp {
                s.idmp = Some(Box::new(super::idmp::Idmp::decode(r)?));
            }
            if tag == STREAM_EXT_TAG {
                s.retention = super::stream::Retention { ms: r.u64()?, bytes: r.u64()? };
            }
            return Ok(Value::Stream(Box::new(s)));
        }
        if tag == Type::Queue.tag() {
            return Ok(Value::Queue(Box::new(Queue::decode(r)?)));
        }
        if tag == Type::Series.tag() {
            return Ok(Value::Series(Box::new(Series::decode(r)?)));
        }
        if tag == Type::Sug.tag() {
            return Ok(Value::Sug(Box::new(SugDict::decode(r)?)));
        }
        let n = r.u32()? as usize;
        let value = match tag {
            1 => {
                let mut h = Hash::default();
                for _ in 0..n {
                    let f = r.bytes()?;
                    h.insert(f, SmallBytes::new(r.bytes()?));
                }
                Value::Hash(Box::new(h))
            }
            2 => {
                let mut l = List::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    l.push_back(SmallBytes::new(r.bytes()?));
                }
                Value::List(Box::new(l))
            }
            3 => {
                let mut s = Set::default();
                for _ in 0..n {
                    s.insert(r.bytes()?, ());
                }
                Value::Set(Box::new(s))
            }
            4 => {
                let mut z = ZSet::default();
                for _ in 0..n {
                    let score = f64::from_bits(r.u64()?);
                    if score.is_nan() {
                        return Err(DecodeError::Invalid("sorted set score is NaN"));
                    }
                    z.insert(r.bytes()?, score);
                }
                Value::ZSet(Box::new(z))
            }
            _ => return Err(DecodeError::Invalid("unknown value type tag")),
        };
        if value.len() != n {
            return Err(DecodeError::Invalid("collection holds duplicate elements"));
        }
        Ok(value)
    }
}
