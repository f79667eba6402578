//! Typed access to a key's value for the collection commands.
//!
//! Every collection command starts the same way: look the key up the way
//! Redis does (`lookupKeyRead` for reads, counting the hit or miss and
//! touching the key; `lookupKeyWrite` before writes), then answer WRONGTYPE
//! if the key holds another type. [`read`] and [`peek`] do that once for
//! every [`Collection`]; [`change`] writes one change to a collection.

use strand_engine::keyspace::hash::Hash;
use strand_engine::keyspace::list::List;
use strand_engine::keyspace::queue::Queue;
use strand_engine::keyspace::set::Set;
use strand_engine::keyspace::stream::Stream;
use strand_engine::keyspace::sug::SugDict;
use strand_engine::keyspace::zset::ZSet;
use strand_engine::keyspace::{Change, Entry, Op, Value};
use strand_engine::series::Series;

use super::strings::{db8, write};
use super::{err, Ctx};
use crate::reply::Reply;

/// A value type the collection commands work on.
pub(crate) trait Collection {
    /// The collection inside a value of this type, None for any other type.
    fn of(v: &Value) -> Option<&Self>;
}

impl Collection for Hash {
    fn of(v: &Value) -> Option<&Hash> {
        if let Value::Hash(h) = v {
            Some(h)
        } else {
            None
        }
    }
}

impl Collection for List {
    fn of(v: &Value) -> Option<&List> {
        if let Value::List(l) = v {
            Some(l)
        } else {
            None
        }
    }
}

impl Collection for Set {
    fn of(v: &Value) -> Option<&Set> {
        if let Value::Set(s) = v {
            Some(s)
        } else {
            None
        }
    }
}

impl Collection for ZSet {
    fn of(v: &Value) -> Option<&ZSet> {
        if let Value::ZSet(z) = v {
            Some(z)
        } else {
            None
        }
    }
}

impl Collection for Stream {
    fn of(v: &Value) -> Option<&Stream> {
        if let Value::Stream(s) = v {
            Some(s)
        } else {
            None
        }
    }
}

impl Collection for Series {
    fn of(v: &Value) -> Option<&Series> {
        if let Value::Series(s) = v {
            Some(s)
        } else {
            None
        }
    }
}

impl Collection for SugDict {
    fn of(v: &Value) -> Option<&SugDict> {
        if let Value::Sug(d) = v {
            Some(d)
        } else {
            None
        }
    }
}

impl Collection for Queue {
    fn of(v: &Value) -> Option<&Queue> {
        if let Value::Queue(q) = v {
            Some(q)
        } else {
            None
        }
    }
}

/// The collection of an entry, or WRONGTYPE for any other type.
pub(crate) fn as_type<T: Collection>(e: &Entry) -> Result<&T, Reply> {
    T::of(&e.value).ok_or_else(|| Reply::error(err::WRONGTYPE))
}

/// The collection at `key` for a read (Redis's `lookupKeyRead`): None if missing, WRONGTYPE for another type.
pub(crate) fn read<'a, T: Collection>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a T>, Reply> {
    ctx.shard.ks.lookup(ctx.db, key, ctx.now).map(|e| as_type(e)).transpose()
}

/// The collection at `key` before a write (Redis's `lookupKeyWrite`).
pub(crate) fn peek<'a, T: Collection>(ctx: &'a Ctx<'_>, key: &[u8]) -> Result<Option<&'a T>, Reply> {
    ctx.shard.ks.peek(ctx.db, key, ctx.now).map(as_type).transpose()
}

/// Writes one change to the collection at `key`.
pub(crate) fn change(ctx: &mut Ctx<'_>, key: &[u8], change: Change<'_>) -> Result<(), Reply> {
    write(ctx, Op::Coll { db: db8(ctx), key, change })
}

/// Runs `f` inside a log group, so its writes become one atomic record.
pub(crate) fn grouped<T>(ctx: &mut Ctx<'_>, f: impl FnOnce(&mut Ctx<'_>) -> Result<T, Reply>) -> Result<T, Reply> {
    ctx.shard.ks.begin_group().map_err(|e| Reply::error(e.to_string()))?;
    let r = f(ctx);
    let end = ctx.shard.ks.end_group(ctx.now).map_err(|e| Reply::error(e.to_string()));
    let v = r?;
    end.map(|_| v)
}
