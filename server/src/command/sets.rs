//! Set commands: <https://redis.io/commands/?group=set>.
//!
//! Every handler runs on the shard that owns its key(s). The commands over
//! several sets (SINTER, SUNIONSTORE ...) whose keys live on several shards
//! run in [`crate::gather`], which runs these same handlers on copies of the
//! sets; SMOVE between shards runs in [`crate::moves`]. Reads go through
//! [`Keyspace::lookup`](strand_engine::keyspace::Keyspace::lookup) where Redis
//! uses `lookupKeyRead`; writes look keys up with `peek` (`lookupKeyWrite`).
//! Each write is decided in full before it is logged: SPOP logs the members
//! it picked as an `SRem` (a whole-set pop as a DEL), the *STORE commands the
//! resulting set whole ([`Op::Store`], or [`Op::Del`] for an empty result),
//! SMOVE its two changes as one atomic group.
//!
//! SINTERCARD's keys follow a count (`numkeys`), which the table's
//! first/last/step cannot say. Its entry names the first key (2, 2, 1) for
//! COMMAND INFO; the dispatcher finds all of them through
//! [`super::NUMKEYS`]. (Redis reports
//! 0, 0, 0 with the `movablekeys` flag; declaring 2, -1 instead would take
//! the `LIMIT` option for keys.)

use std::borrow::Cow;
use std::collections::HashSet;

use strand_engine::keyspace::set::Set;
use strand_engine::keyspace::{Change, Entry, Op, Value};

use super::hashes::{distinct_entries, empty_scan, rand_count, random_entries, scan_cursor, CollScan};
use super::strings::{db8, parse_i64, write};
use super::typed::{self, change};
use super::{entry, err, flags, Command, Ctx, ONE};
use crate::reply::Reply;

/// Joins a handler's result: the reply, or the error it stopped at.
fn reply(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The set of an entry, or WRONGTYPE for any other type.
fn as_set(e: &Entry) -> Result<&Set, Reply> {
    typed::as_type(e)
}

/// The set at `key` for a read (Redis's `lookupKeyRead`).
fn read<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a Set>, Reply> {
    typed::read(ctx, key)
}

/// The set at `key` before a write (Redis's `lookupKeyWrite`).
fn peek<'a>(ctx: &'a Ctx<'_>, key: &[u8]) -> Result<Option<&'a Set>, Reply> {
    typed::peek(ctx, key)
}

/// Redis's `getPositiveLongFromObjectOrReply` with its default message (SPOP's count).
fn positive_count(arg: &[u8], msg: &'static str) -> Result<u64, Reply> {
    parse_i64(arg).and_then(|n| u64::try_from(n).ok()).ok_or_else(|| Reply::error(msg))
}

/// Members as bulk strings.
fn bulks<'a>(members: impl IntoIterator<Item = &'a [u8]>) -> Vec<Reply> {
    members.into_iter().map(Reply::bulk).collect()
}

// ---------------------------------------------------------------------------
// Members
// ---------------------------------------------------------------------------

/// [SADD](https://redis.io/commands/sadd/): adds members (creating the set); answers how many were new.
pub fn sadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(sadd_inner(ctx, args))
}

fn sadd_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let key = args[1];
    let s = peek(ctx, key)?;
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(args.len() - 2);
    let new: Vec<&[u8]> = args[2..].iter().copied().filter(|m| seen.insert(m) && s.is_none_or(|s| s.get(m).is_none())).collect();
    let n = new.len() as i64;
    if n > 0 {
        change(ctx, key, Change::SAdd(new))?;
    }
    Ok(Reply::Int(n))
}

/// [SREM](https://redis.io/commands/srem/): removes members (the key goes with the last one); answers how many existed.
pub fn srem(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(srem_inner(ctx, args))
}

fn srem_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let key = args[1];
    let Some(s) = peek(ctx, key)? else {
        return Ok(Reply::Int(0));
    };
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(args.len() - 2);
    let present: Vec<&[u8]> = args[2..].iter().copied().filter(|m| s.get(m).is_some() && seen.insert(m)).collect();
    let n = present.len() as i64;
    if n > 0 {
        change(ctx, key, Change::SRem(present))?;
    }
    Ok(Reply::Int(n))
}

/// [SMEMBERS](https://redis.io/commands/smembers/): every member (a set in RESP3).
pub fn smembers(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(read(ctx, args[1]).map(|s| Reply::Set(s.map(|s| bulks(s.iter().map(|(m, _)| m))).unwrap_or_default())))
}

/// [SISMEMBER](https://redis.io/commands/sismember/): 1 if the member is in the set, else 0.
pub fn sismember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let member = args[2];
    reply(read(ctx, args[1]).map(|s| Reply::Int(s.is_some_and(|s| s.get(member).is_some()) as i64)))
}

/// [SMISMEMBER](https://redis.io/commands/smismember/): 1 or 0 for each member asked about.
pub fn smismember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(
        read(ctx, args[1])
            .map(|s| Reply::Array(args[2..].iter().map(|m| Reply::Int(s.is_some_and(|s| s.get(m).is_some()) as i64)).collect())),
    )
}

/// [SCARD](https://redis.io/commands/scard/): the number of members, 0 if missing.
pub fn scard(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(read(ctx, args[1]).map(|s| Reply::Int(s.map_or(0, |s| s.len() as i64))))
}

// ---------------------------------------------------------------------------
// Random members
// ---------------------------------------------------------------------------

/// [SPOP](https://redis.io/commands/spop/): removes and answers a random
/// member; with a count, up to that many distinct members (a set in RESP3).
pub fn spop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(spop_inner(ctx, args))
}

fn spop_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let key = args[1];
    match args.len() {
        2 => {
            let Some(s) = peek(ctx, key)? else {
                return Ok(Reply::Nil);
            };
            let mut rng = || rand::random::<u64>();
            let Some(member) = s.random_entry(&mut rng).map(|(m, _)| m.to_vec()) else {
                return Ok(Reply::Nil);
            };
            change(ctx, key, Change::SRem(vec![&member]))?;
            Ok(Reply::Bulk(member))
        }
        3 => {
            let count = positive_count(args[2], "ERR value is out of range, must be positive")?;
            let Some(s) = peek(ctx, key)? else {
                return Ok(Reply::Set(Vec::new()));
            };
            if count == 0 {
                return Ok(Reply::Set(Vec::new()));
            }
            let whole = count >= s.len() as u64;
            let picked: Vec<Vec<u8>> =
                distinct_entries(s, count.min(s.len() as u64) as usize).into_iter().map(|(m, _)| m.to_vec()).collect();
            if whole {
                write(ctx, Op::Del { db: db8(ctx), key })?;
            } else {
                change(ctx, key, Change::SRem(picked.iter().map(Vec::as_slice).collect()))?;
            }
            Ok(Reply::Set(picked.into_iter().map(Reply::Bulk).collect()))
        }
        _ => Err(Reply::error(err::SYNTAX)),
    }
}

/// [SRANDMEMBER](https://redis.io/commands/srandmember/): a random member;
/// with a count, that many distinct members (negative: repeats allowed).
pub fn srandmember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(srandmember_inner(ctx, args))
}

fn srandmember_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    match args.len() {
        2 => {
            let Some(s) = read(ctx, args[1])? else {
                return Ok(Reply::Nil);
            };
            let mut rng = || rand::random::<u64>();
            Ok(Reply::opt_bulk(s.random_entry(&mut rng).map(|(m, _)| m)))
        }
        3 => {
            let n = rand_count(args[2])?;
            let Some(s) = read(ctx, args[1])? else {
                return Ok(Reply::Array(Vec::new()));
            };
            let picked = if n < 0 { random_entries(s, n.unsigned_abs()) } else { distinct_entries(s, n as usize) };
            Ok(Reply::Array(bulks(picked.into_iter().map(|(m, _)| m))))
        }
        _ => Err(Reply::error(err::SYNTAX)),
    }
}

/// [SMOVE](https://redis.io/commands/smove/): moves a member from one set to
/// another (one atomic record); 1 if it was moved.
pub fn smove(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(smove_inner(ctx, args[1], args[2], args[3]))
}

fn smove_inner(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], member: &[u8]) -> Result<Reply, Reply> {
    let Some(from) = ctx.shard.ks.peek(ctx.db, src, ctx.now) else {
        return Ok(Reply::Int(0));
    };
    let from = as_set(from)?;
    let to = peek(ctx, dst)?;
    let present = from.get(member).is_some();
    if src == dst || !present {
        return Ok(Reply::Int(present as i64));
    }
    let add = to.is_none_or(|t| t.get(member).is_none());
    let now = ctx.now;
    let group_error = |e: strand_engine::keyspace::WriteError| Reply::error(e.to_string());
    ctx.shard.ks.begin_group().map_err(group_error)?;
    let mut done = change(ctx, src, Change::SRem(vec![member]));
    if done.is_ok() && add {
        done = change(ctx, dst, Change::SAdd(vec![member]));
    }
    let ended = ctx.shard.ks.end_group(now).map_err(group_error);
    done.and(ended).map(|()| Reply::Int(1))
}

// ---------------------------------------------------------------------------
// Set algebra
// ---------------------------------------------------------------------------

/// Which combination of sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algebra {
    Inter,
    Union,
    Diff,
}

/// The sets at `keys` (None for a missing key), after checking that none
/// holds another type. Reads count as Redis's `lookupKeyRead`, except for
/// the *STORE commands (`store`), which look up as writes.
fn sources<'a>(ctx: &'a mut Ctx<'_>, keys: &[&[u8]], store: bool) -> Result<Vec<Option<&'a Set>>, Reply> {
    for key in keys {
        let e = if store { ctx.shard.ks.peek(ctx.db, key, ctx.now) } else { ctx.shard.ks.lookup(ctx.db, key, ctx.now).map(|e| &*e) };
        if let Some(e) = e {
            as_set(e)?;
        }
    }
    let ks = &ctx.shard.ks;
    Ok(keys.iter().map(|k| ks.peek(ctx.db, k, ctx.now).and_then(|e| as_set(e).ok())).collect())
}

/// The members of the combination, each once; an intersection stops after `limit` members (0: no limit).
fn combine<'a>(sets: &[Option<&'a Set>], op: Algebra, limit: usize) -> Vec<&'a [u8]> {
    let limit = if limit == 0 { usize::MAX } else { limit };
    let mut out = Vec::new();
    match op {
        Algebra::Inter => {
            let Some(mut sets) = sets.iter().copied().collect::<Option<Vec<&Set>>>() else {
                return out;
            };
            sets.sort_by_key(|s| s.len());
            let Some((first, rest)) = sets.split_first() else { return out };
            for (m, _) in first.iter() {
                if out.len() >= limit {
                    break;
                }
                if rest.iter().all(|s| s.get(m).is_some()) {
                    out.push(m);
                }
            }
        }
        Algebra::Union => {
            let mut seen: HashSet<&[u8]> = HashSet::new();
            for s in sets.iter().flatten() {
                for (m, _) in s.iter() {
                    if seen.insert(m) {
                        out.push(m);
                    }
                }
            }
        }
        Algebra::Diff => {
            let Some(Some(first)) = sets.first() else { return out };
            let rest: Vec<&Set> = sets[1..].iter().flatten().copied().collect();
            out.extend(first.iter().map(|(m, _)| m).filter(|m| rest.iter().all(|s| s.get(m).is_none())));
        }
    }
    out
}

/// SINTER, SUNION, SDIFF: the combination of the sets at `args[1..]` (a set in RESP3).
fn algebra(ctx: &mut Ctx<'_>, args: &[&[u8]], op: Algebra) -> Reply {
    reply(sources(ctx, &args[1..], false).map(|sets| Reply::Set(bulks(combine(&sets, op, 0)))))
}

/// SINTERSTORE, SUNIONSTORE, SDIFFSTORE: stores the combination of the sets
/// at `args[2..]` in `args[1]`, replacing whatever it held (TTL included);
/// an empty result deletes it. Answers the size of the result.
fn algebra_store(ctx: &mut Ctx<'_>, args: &[&[u8]], op: Algebra) -> Reply {
    reply(algebra_store_inner(ctx, args, op))
}

fn algebra_store_inner(ctx: &mut Ctx<'_>, args: &[&[u8]], op: Algebra) -> Result<Reply, Reply> {
    let dst = args[1];
    let result = {
        let sets = sources(ctx, &args[2..], true)?;
        let mut result = Set::default();
        for m in combine(&sets, op, 0) {
            result.insert(m, ());
        }
        result
    };
    let n = result.len() as i64;
    let db = db8(ctx);
    if n > 0 {
        write(ctx, Op::Store { db, key: dst, value: Cow::Owned(Value::Set(Box::new(result))), expire_ms: 0 })?;
    } else if ctx.shard.ks.contains(ctx.db, dst, ctx.now) {
        write(ctx, Op::Del { db, key: dst })?;
    }
    Ok(Reply::Int(n))
}

/// [SINTER](https://redis.io/commands/sinter/): the intersection of sets (a missing key is an empty set).
pub fn sinter(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    algebra(ctx, args, Algebra::Inter)
}

/// [SUNION](https://redis.io/commands/sunion/): the union of sets.
pub fn sunion(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    algebra(ctx, args, Algebra::Union)
}

/// [SDIFF](https://redis.io/commands/sdiff/): the members of the first set that are in none of the others.
pub fn sdiff(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    algebra(ctx, args, Algebra::Diff)
}

/// [SINTERSTORE](https://redis.io/commands/sinterstore/): stores an intersection; answers its size.
pub fn sinterstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    algebra_store(ctx, args, Algebra::Inter)
}

/// [SUNIONSTORE](https://redis.io/commands/sunionstore/): stores a union; answers its size.
pub fn sunionstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    algebra_store(ctx, args, Algebra::Union)
}

/// [SDIFFSTORE](https://redis.io/commands/sdiffstore/): stores a difference; answers its size.
pub fn sdiffstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    algebra_store(ctx, args, Algebra::Diff)
}

/// [SINTERCARD](https://redis.io/commands/sintercard/): the size of an
/// intersection of `numkeys` sets, counting no further than LIMIT (0: no limit).
pub fn sintercard(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(sintercard_inner(ctx, args))
}

fn sintercard_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let numkeys = parse_i64(args[1]).filter(|&n| n >= 1).ok_or_else(|| Reply::error("ERR numkeys should be greater than 0"))?;
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > args.len() - 2 {
        return Err(Reply::error("ERR Number of keys can't be greater than number of args"));
    }
    let keys = &args[2..2 + numkeys];
    let mut limit = 0u64;
    let mut j = 2 + numkeys;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"limit") && j + 1 < args.len() {
            limit = positive_count(args[j + 1], "ERR LIMIT can't be negative")?;
            j += 2;
        } else {
            return Err(Reply::error(err::SYNTAX));
        }
    }
    let sets = sources(ctx, keys, false)?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    Ok(Reply::Int(combine(&sets, Algebra::Inter, limit).len() as i64))
}

/// [SSCAN](https://redis.io/commands/sscan/): one step of an iteration over the members of a set (MATCH, COUNT).
pub fn sscan(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(sscan_inner(ctx, args))
}

fn sscan_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let cursor = scan_cursor(args[2])?;
    let Some(s) = read(ctx, args[1])? else {
        return Ok(empty_scan());
    };
    let o = CollScan::parse(args)?;
    Ok(o.step(s, cursor, |m, _, items| items.push(Reply::bulk(m))))
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

const W_DENY_FAST: u32 = flags::WRITE | flags::DENYOOM | flags::FAST;
const W_DENY: u32 = flags::WRITE | flags::DENYOOM;
const W_FAST: u32 = flags::WRITE | flags::FAST;
const R_FAST: u32 = flags::READONLY | flags::FAST;
const READ_FAST: &[&str] = &["@read", "@set", "@fast"];
const READ_SLOW: &[&str] = &["@read", "@set", "@slow"];
const WRITE_FAST: &[&str] = &["@write", "@set", "@fast"];
const WRITE_SLOW: &[&str] = &["@write", "@set", "@slow"];

const TWO: (i32, i32, i32) = (1, 2, 1);
const ALL_KEYS: (i32, i32, i32) = (1, -1, 1);
/// SINTERCARD: its first key, for COMMAND INFO; the dispatcher finds the others (see the module comment).
const FIRST_AFTER_NUMKEYS: (i32, i32, i32) = (2, 2, 1);

/// The set commands.
pub const COMMANDS: &[Command] = &[
    entry("sadd", -3, W_DENY_FAST, ONE, sadd, WRITE_FAST, "Adds one or more members to a set. Creates the key if it doesn't exist."),
    entry(
        "srem",
        -3,
        W_FAST,
        ONE,
        srem,
        WRITE_FAST,
        "Removes one or more members from a set. Deletes the set if the last member was removed.",
    ),
    entry("smembers", 2, flags::READONLY, ONE, smembers, READ_SLOW, "Returns all members of a set."),
    entry("sismember", 3, R_FAST, ONE, sismember, READ_FAST, "Determines whether a member belongs to a set."),
    entry("smismember", -3, R_FAST, ONE, smismember, READ_FAST, "Determines whether multiple members belong to a set."),
    entry("scard", 2, R_FAST, ONE, scard, READ_FAST, "Returns the number of members in a set."),
    entry(
        "spop",
        -2,
        W_FAST,
        ONE,
        spop,
        WRITE_FAST,
        "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.",
    ),
    entry("srandmember", -2, flags::READONLY, ONE, srandmember, READ_SLOW, "Get one or multiple random members from a set"),
    entry("smove", 4, W_FAST, TWO, smove, WRITE_FAST, "Moves a member from one set to another."),
    entry("sinter", -2, flags::READONLY, ALL_KEYS, sinter, READ_SLOW, "Returns the intersect of multiple sets."),
    entry("sunion", -2, flags::READONLY, ALL_KEYS, sunion, READ_SLOW, "Returns the union of multiple sets."),
    entry("sdiff", -2, flags::READONLY, ALL_KEYS, sdiff, READ_SLOW, "Returns the difference of multiple sets."),
    entry("sinterstore", -3, W_DENY, ALL_KEYS, sinterstore, WRITE_SLOW, "Stores the intersect of multiple sets in a key."),
    entry("sunionstore", -3, W_DENY, ALL_KEYS, sunionstore, WRITE_SLOW, "Stores the union of multiple sets in a key."),
    entry("sdiffstore", -3, W_DENY, ALL_KEYS, sdiffstore, WRITE_SLOW, "Stores the difference of multiple sets in a key."),
    entry(
        "sintercard",
        -3,
        flags::READONLY | flags::MOVABLEKEYS,
        FIRST_AFTER_NUMKEYS,
        sintercard,
        READ_SLOW,
        "Returns the number of members of the intersect of multiple sets.",
    ),
    entry("sscan", -3, flags::READONLY, ONE, sscan, READ_SLOW, "Iterates over members of a set."),
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn set(members: &[&str]) -> Set {
        let mut s = Set::default();
        for m in members {
            s.insert(m.as_bytes(), ());
        }
        s
    }

    fn sorted(v: Vec<&[u8]>) -> Vec<String> {
        let mut v: Vec<String> = v.into_iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn algebra_of_sets() {
        let a = set(&["1", "2", "3"]);
        let b = set(&["2", "3", "4"]);
        let c = set(&["3", "9"]);
        assert_eq!(sorted(combine(&[Some(&a), Some(&b)], Algebra::Inter, 0)), ["2", "3"]);
        assert_eq!(sorted(combine(&[Some(&a), Some(&b), Some(&c)], Algebra::Inter, 0)), ["3"]);
        assert_eq!(sorted(combine(&[Some(&a), None], Algebra::Inter, 0)), Vec::<String>::new());
        assert_eq!(combine(&[Some(&a), Some(&a)], Algebra::Inter, 2).len(), 2);
        assert_eq!(sorted(combine(&[Some(&a), None, Some(&c)], Algebra::Union, 0)), ["1", "2", "3", "9"]);
        assert_eq!(sorted(combine(&[Some(&a), Some(&b)], Algebra::Diff, 0)), ["1"]);
        assert_eq!(sorted(combine(&[Some(&a), None], Algebra::Diff, 0)), ["1", "2", "3"]);
        assert_eq!(sorted(combine(&[None, Some(&a)], Algebra::Diff, 0)), Vec::<String>::new());
        assert_eq!(sorted(combine(&[Some(&a), Some(&a)], Algebra::Diff, 0)), Vec::<String>::new());
    }
}
