//! List commands: <https://redis.io/commands/?group=list>.
//!
//! Every handler runs on the shard that owns its key(s). The commands with
//! several keys (BLMOVE, BLPOP ..., and LMPOP/BLMPOP, whose keys a
//! `numkeys` argument counts) run here when they all live on one shard;
//! across shards, LMOVE, RPOPLPUSH, BLMOVE and BRPOPLPUSH run in
//! [`crate::moves`], and BLPOP, BRPOP, LMPOP and BLMPOP in [`crate::pops`],
//! which runs these same handlers on each shard's share of the keys.
//!
//! Reads go through [`Keyspace::lookup`] where Redis uses `lookupKeyRead`
//! (LLEN, LINDEX, LRANGE, LPOS) and through [`Keyspace::peek`] where it
//! uses `lookupKeyWrite`. Each change is one [`Change`] on the list, fully
//! decided before it is written (a pop logs how many elements it took), and
//! every check comes before the first write, so a refused command changes
//! nothing. A move between two lists logs its push and its pop as one group
//! record: after a crash both happened or neither did.
//!
//! The blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) first
//! try to serve like their non-blocking forms; when every key is missing
//! they return [`Ctx::block`], and the dispatcher runs them again, from the
//! start, when one of their keys is written. Where they may not block
//! (MULTI), the timeout reply is their answer, as in Redis.
//!
//! [`Keyspace::lookup`]: strand_engine::keyspace::Keyspace::lookup
//! [`Keyspace::peek`]: strand_engine::keyspace::Keyspace::peek

use strand_engine::keyspace::list::{self, List};
use strand_engine::keyspace::Change;

use super::strings::{int_arg, parse_i64};
use super::typed::{self, change, grouped};
use super::{arity_error, err, flags, timeout_arg, Command, Ctx, Route};
use crate::reply::Reply;

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// Joins a handler's result: the reply, or the error it stopped at.
fn reply(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

/// Redis's `lookupKeyRead` + `checkType`: the list at `key`, None if missing.
fn read_list<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a List>, Reply> {
    typed::read(ctx, key)
}

/// Redis's `lookupKeyWrite` + `checkType`: the list at `key`, None if missing.
fn write_list<'a>(ctx: &'a Ctx<'_>, key: &[u8]) -> Result<Option<&'a List>, Reply> {
    typed::peek(ctx, key)
}

/// Redis's `getListPositionFromObjectOrReply`: LEFT (true) or RIGHT (false).
pub(crate) fn parse_side(arg: &[u8]) -> Result<bool, Reply> {
    if arg.eq_ignore_ascii_case(b"left") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"right") {
        Ok(false)
    } else {
        Err(Reply::error(err::SYNTAX))
    }
}

/// Redis's `getRangeLongFromObjectOrReply(.., min, LONG_MAX, .., msg)`:
/// an integer of at least `min`, else `msg` (also for a non-integer).
fn int_at_least(arg: &[u8], min: i64, msg: &'static str) -> Result<i64, Reply> {
    parse_i64(arg).filter(|&v| v >= min).ok_or_else(|| Reply::error(msg))
}

/// The first `n` elements from the head (`left`) or the tail, in pop order.
fn take_end(l: &List, left: bool, n: usize) -> Vec<Reply> {
    if left {
        l.iter().take(n).map(Reply::bulk).collect()
    } else {
        l.iter().rev().take(n).map(Reply::bulk).collect()
    }
}

/// Pops up to `count` elements from one end of the list at `key`, which
/// must exist; answers them in pop order.
fn pop_n(ctx: &mut Ctx<'_>, key: &[u8], left: bool, count: usize) -> Result<Vec<Reply>, Reply> {
    let elems = match write_list(ctx, key)? {
        Some(l) => take_end(l, left, count),
        None => Vec::new(),
    };
    if !elems.is_empty() {
        change(ctx, key, Change::LPop { left, count: elems.len() as u64 })?;
    }
    Ok(elems)
}

// ---------------------------------------------------------------------------
// Pushes and pops
// ---------------------------------------------------------------------------

/// Redis's `pushGenericCommand` and `pushxGenericCommand` (`only_existing`).
fn push_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], left: bool, only_existing: bool) -> Result<Reply, Reply> {
    let key = args[1];
    let len = match write_list(ctx, key)? {
        Some(l) => l.len(),
        None if only_existing => return Ok(Reply::Int(0)),
        None => 0,
    };
    let elems = args[2..].to_vec();
    let pushed = elems.len();
    change(ctx, key, Change::LPush { left, elems })?;
    Ok(Reply::Int((len + pushed) as i64))
}

/// [LPUSH](https://redis.io/commands/lpush/): prepends elements one by one (creating the list); answers the new length.
pub fn lpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(push_generic(ctx, args, true, false))
}

/// [RPUSH](https://redis.io/commands/rpush/): appends elements (creating the list); answers the new length.
pub fn rpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(push_generic(ctx, args, false, false))
}

/// [LPUSHX](https://redis.io/commands/lpushx/): LPUSH only onto an existing list; 0 if there is none.
pub fn lpushx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(push_generic(ctx, args, true, true))
}

/// [RPUSHX](https://redis.io/commands/rpushx/): RPUSH only onto an existing list; 0 if there is none.
pub fn rpushx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(push_generic(ctx, args, false, true))
}

/// Redis's `popGenericCommand`: one element as a bulk string (nil if the
/// list is missing), or with a count an array of up to that many (a nil
/// array if missing, an empty array for a count of 0).
fn pop_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], left: bool) -> Result<Reply, Reply> {
    if args.len() > 3 {
        return Err(arity_error(if left { "lpop" } else { "rpop" }));
    }
    let count = match args.get(2) {
        Some(arg) => Some(int_at_least(arg, 0, "ERR value is out of range, must be positive")?),
        None => None,
    };
    let key = args[1];
    if write_list(ctx, key)?.is_none() {
        return Ok(if count.is_some() { Reply::NilArray } else { Reply::Nil });
    }
    match count {
        None => Ok(pop_n(ctx, key, left, 1)?.pop().unwrap_or(Reply::Nil)),
        Some(n) => Ok(Reply::Array(pop_n(ctx, key, left, n as usize)?)),
    }
}

/// [LPOP](https://redis.io/commands/lpop/): removes and answers the first element(s) of a list.
pub fn lpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(pop_generic(ctx, args, true))
}

/// [RPOP](https://redis.io/commands/rpop/): removes and answers the last element(s) of a list, last first.
pub fn rpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(pop_generic(ctx, args, false))
}

// ---------------------------------------------------------------------------
// Reading and changing in place
// ---------------------------------------------------------------------------

/// [LLEN](https://redis.io/commands/llen/): the length of a list, 0 if missing.
pub fn llen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(read_list(ctx, args[1]).map(|l| Reply::Int(l.map_or(0, |l| l.len() as i64))))
}

/// [LINDEX](https://redis.io/commands/lindex/): the element at an index (negative from the end), nil if out of range.
pub fn lindex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(lindex_inner(ctx, args))
}

fn lindex_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let Some(l) = read_list(ctx, args[1])? else { return Ok(Reply::Nil) };
    let index = int_arg(args[2])?;
    Ok(list::index(l.len(), index).map_or(Reply::Nil, |i| Reply::bulk(&l[i])))
}

/// [LRANGE](https://redis.io/commands/lrange/): the elements from start to stop, inclusive.
pub fn lrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(lrange_inner(ctx, args))
}

fn lrange_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let start = int_arg(args[2])?;
    let stop = int_arg(args[3])?;
    let Some(l) = read_list(ctx, args[1])? else { return Ok(Reply::Array(Vec::new())) };
    Ok(Reply::Array(match list::range(l.len(), start, stop) {
        Some((a, b)) => l.range(a..=b).map(Reply::bulk).collect(),
        None => Vec::new(),
    }))
}

/// [LSET](https://redis.io/commands/lset/): replaces the element at an index.
pub fn lset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(lset_inner(ctx, args))
}

fn lset_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let key = args[1];
    let len = write_list(ctx, key)?.ok_or_else(|| Reply::error(err::NO_SUCH_KEY))?.len();
    let index = int_arg(args[2])?;
    if list::index(len, index).is_none() {
        return Err(Reply::error("ERR index out of range"));
    }
    change(ctx, key, Change::LSet { index, elem: args[3] })?;
    Ok(Reply::Ok)
}

/// [LINSERT](https://redis.io/commands/linsert/): inserts an element before
/// or after the first occurrence of a pivot; answers the new length, -1 if
/// the pivot is absent, 0 if the list is.
pub fn linsert(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(linsert_inner(ctx, args))
}

fn linsert_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let before = if args[2].eq_ignore_ascii_case(b"before") {
        true
    } else if args[2].eq_ignore_ascii_case(b"after") {
        false
    } else {
        return Err(Reply::error(err::SYNTAX));
    };
    let (key, pivot, elem) = (args[1], args[3], args[4]);
    let Some(l) = write_list(ctx, key)? else { return Ok(Reply::Int(0)) };
    if !l.iter().any(|e| &e[..] == pivot) {
        return Ok(Reply::Int(-1));
    }
    let len = l.len();
    change(ctx, key, Change::LInsert { before, pivot, elem })?;
    Ok(Reply::Int(len as i64 + 1))
}

/// [LREM](https://redis.io/commands/lrem/): removes elements equal to a value
/// (count > 0 from the head, < 0 from the tail, 0 all); answers how many.
pub fn lrem(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(lrem_inner(ctx, args))
}

fn lrem_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let count = int_arg(args[2])?;
    let (key, elem) = (args[1], args[3]);
    let Some(l) = write_list(ctx, key)? else { return Ok(Reply::Int(0)) };
    let limit = if count == 0 { usize::MAX } else { count.unsigned_abs().try_into().unwrap_or(usize::MAX) };
    let removed = l.iter().filter(|e| &e[..] == elem).count().min(limit);
    if removed > 0 {
        change(ctx, key, Change::LRem { count, elem })?;
    }
    Ok(Reply::Int(removed as i64))
}

/// [LTRIM](https://redis.io/commands/ltrim/): keeps only the elements from start to stop, inclusive.
pub fn ltrim(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(ltrim_inner(ctx, args))
}

fn ltrim_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let start = int_arg(args[2])?;
    let stop = int_arg(args[3])?;
    let key = args[1];
    if write_list(ctx, key)?.is_none() {
        return Ok(Reply::Ok);
    }
    // Written even when it removes nothing: Redis signals the key (WATCH,
    // the `ltrim` keyspace event) all the same.
    change(ctx, key, Change::LTrim { start, stop })?;
    Ok(Reply::Ok)
}

/// LPOS's options.
#[derive(Debug, PartialEq, Eq)]
struct LposOptions {
    rank: i64,
    /// -1 when not given.
    count: i64,
    /// 0 for no limit.
    maxlen: i64,
}

/// Parses LPOS's RANK, COUNT and MAXLEN, with Redis's errors.
fn lpos_options(args: &[&[u8]]) -> Result<LposOptions, Reply> {
    let mut o = LposOptions { rank: 1, count: -1, maxlen: 0 };
    let mut j = 3;
    while j < args.len() {
        let opt = args[j];
        let Some(&value) = args.get(j + 1) else { return Err(Reply::error(err::SYNTAX)) };
        if opt.eq_ignore_ascii_case(b"rank") {
            o.rank = int_arg(value)?;
            if o.rank == 0 {
                return Err(Reply::error(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if opt.eq_ignore_ascii_case(b"count") {
            o.count = int_at_least(value, 0, "ERR COUNT can't be negative")?;
        } else if opt.eq_ignore_ascii_case(b"maxlen") {
            o.maxlen = int_at_least(value, 0, "ERR MAXLEN can't be negative")?;
        } else {
            return Err(Reply::error(err::SYNTAX));
        }
        j += 2;
    }
    Ok(o)
}

/// [LPOS](https://redis.io/commands/lpos/): the index of the RANK-th match
/// (negative: counting from the tail), or with COUNT the indexes of up to
/// COUNT matches (0: all), looking at no more than MAXLEN elements.
pub fn lpos(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(lpos_inner(ctx, args))
}

fn lpos_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let LposOptions { mut rank, count, maxlen } = lpos_options(args)?;
    let with_count = count != -1;
    let elem = args[2];
    // As Redis (C longs): a negative rank searches from the tail; RANK
    // -9223372036854775808 stays negative when negated, so every match counts.
    let from_tail = rank < 0;
    if from_tail {
        rank = rank.wrapping_neg();
    }
    let Some(l) = read_list(ctx, args[1])? else {
        return Ok(if with_count { Reply::Array(Vec::new()) } else { Reply::Nil });
    };
    let len = l.len() as i64;
    let mut found = Vec::new();
    let mut matches: i64 = 0;
    let iter: Box<dyn Iterator<Item = _>> = if from_tail { Box::new(l.iter().rev()) } else { Box::new(l.iter()) };
    for (index, e) in (0i64..).zip(iter) {
        if maxlen != 0 && index >= maxlen {
            break;
        }
        if &e[..] != elem {
            continue;
        }
        matches += 1;
        if matches < rank {
            continue;
        }
        found.push(if from_tail { len - index - 1 } else { index });
        if !with_count || (count != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= count) {
            break;
        }
    }
    Ok(if with_count {
        Reply::Array(found.into_iter().map(Reply::Int).collect())
    } else {
        found.first().map_or(Reply::Nil, |&i| Reply::Int(i))
    })
}

// ---------------------------------------------------------------------------
// Moving between lists, popping from several
// ---------------------------------------------------------------------------

/// Redis's `lmoveGenericCommand`: pops from one end of `src` and pushes onto
/// one end of `dst` (the same list rotates); nil if `src` is missing. The
/// push is written first, then the pop, in one group: on the same list the
/// pop then never empties it (so its key, and TTL, stay).
fn lmove_generic(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], from_left: bool, to_left: bool) -> Result<Reply, Reply> {
    let elem = match write_list(ctx, src)? {
        None => return Ok(Reply::Nil),
        Some(l) => match if from_left { l.front() } else { l.back() } {
            Some(e) => e.to_vec(),
            None => return Ok(Reply::Nil),
        },
    };
    write_list(ctx, dst)?;
    grouped(ctx, |ctx| {
        change(ctx, dst, Change::LPush { left: to_left, elems: vec![elem.as_slice()] })?;
        change(ctx, src, Change::LPop { left: from_left, count: 1 })
    })?;
    Ok(Reply::Bulk(elem))
}

/// [LMOVE](https://redis.io/commands/lmove/): moves an element from one end
/// of a list to one end of another (or the same); answers it.
pub fn lmove(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(parse_side(args[3]).and_then(|from| {
        let to = parse_side(args[4])?;
        lmove_generic(ctx, args[1], args[2], from, to)
    }))
}

/// [RPOPLPUSH](https://redis.io/commands/rpoplpush/): LMOVE source destination RIGHT LEFT.
pub fn rpoplpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(lmove_generic(ctx, args[1], args[2], false, true))
}

/// What LMPOP and BLMPOP ask for.
struct MpopArgs<'a> {
    keys: &'a [&'a [u8]],
    left: bool,
    count: usize,
}

/// Redis's `lmpopGenericCommand` parsing: `numkeys key... LEFT|RIGHT [COUNT n]` from `args[at]`.
fn mpop_args<'a>(args: &'a [&'a [u8]], at: usize) -> Result<MpopArgs<'a>, Reply> {
    let numkeys = int_at_least(args[at], 1, "ERR numkeys should be greater than 0")?;
    let side_at = usize::try_from(numkeys).ok().and_then(|n| n.checked_add(at + 1)).filter(|&i| i < args.len());
    let Some(side_at) = side_at else { return Err(Reply::error(err::SYNTAX)) };
    let keys = &args[at + 1..side_at];
    let left = parse_side(args[side_at])?;
    let mut count = None;
    let mut j = side_at + 1;
    while j < args.len() {
        match args.get(j + 1) {
            Some(&value) if count.is_none() && args[j].eq_ignore_ascii_case(b"count") => {
                count = Some(int_at_least(value, 1, "ERR count should be greater than 0")?);
            }
            _ => return Err(Reply::error(err::SYNTAX)),
        }
        j += 2;
    }
    let count = count.unwrap_or(1).try_into().unwrap_or(usize::MAX);
    Ok(MpopArgs { keys, left, count })
}

/// Redis's `mpopGenericCommand`: pops from the first non-empty list of
/// `keys`; answers `[key, [elements]]`, or None when every list is missing.
fn mpop_serve(ctx: &mut Ctx<'_>, keys: &[&[u8]], left: bool, count: usize) -> Result<Option<Reply>, Reply> {
    for &key in keys {
        if write_list(ctx, key)?.is_none_or(|l| l.is_empty()) {
            continue;
        }
        let elems = pop_n(ctx, key, left, count)?;
        return Ok(Some(Reply::Array(vec![Reply::bulk(key), Reply::Array(elems)])));
    }
    Ok(None)
}

/// [LMPOP](https://redis.io/commands/lmpop/): pops up to COUNT elements from
/// the first non-empty list of several; answers the key and the elements.
pub fn lmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(mpop_args(args, 1).and_then(|a| Ok(mpop_serve(ctx, a.keys, a.left, a.count)?.unwrap_or(Reply::NilArray))))
}

// ---------------------------------------------------------------------------
// Blocking commands
// ---------------------------------------------------------------------------

/// Redis's `blockingPopGenericCommand`: BLPOP/BRPOP pop one element from
/// the first non-empty list and answer `[key, element]`, else block.
fn bpop_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], left: bool) -> Result<Reply, Reply> {
    let timeout = timeout_arg(args[args.len() - 1])?;
    let keys = &args[1..args.len() - 1];
    for &key in keys {
        if write_list(ctx, key)?.is_none_or(|l| l.is_empty()) {
            continue;
        }
        let elem = pop_n(ctx, key, left, 1)?.pop().unwrap_or(Reply::Nil);
        return Ok(Reply::Array(vec![Reply::bulk(key), elem]));
    }
    Ok(ctx.block(keys, timeout, Reply::NilArray))
}

/// [BLPOP](https://redis.io/commands/blpop/): LPOP from the first non-empty
/// list, or wait for one (timeout in seconds, 0 forever); a nil array on timeout.
pub fn blpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(bpop_generic(ctx, args, true))
}

/// [BRPOP](https://redis.io/commands/brpop/): BLPOP from the tails.
pub fn brpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(bpop_generic(ctx, args, false))
}

/// Redis's `blmoveGenericCommand`: LMOVE if `src` exists, else block. A
/// timeout answers a nil array, as Redis 7.0 does for every blocked list
/// command; where it cannot block (MULTI) it answers a nil bulk string.
fn blmove_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], from_left: bool, to_left: bool, timeout: Option<u64>) -> Result<Reply, Reply> {
    let (src, dst) = (args[1], args[2]);
    if write_list(ctx, src)?.is_some() {
        return lmove_generic(ctx, src, dst, from_left, to_left);
    }
    let timeout_reply = if ctx.may_block { Reply::NilArray } else { Reply::Nil };
    Ok(ctx.block(&[src], timeout, timeout_reply))
}

/// [BLMOVE](https://redis.io/commands/blmove/): LMOVE, or wait for the source to get an element.
pub fn blmove(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(parse_side(args[3]).and_then(|from| {
        let to = parse_side(args[4])?;
        let timeout = timeout_arg(args[5])?;
        blmove_generic(ctx, args, from, to, timeout)
    }))
}

/// [BRPOPLPUSH](https://redis.io/commands/brpoplpush/): BLMOVE source destination RIGHT LEFT.
pub fn brpoplpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(timeout_arg(args[3]).and_then(|timeout| blmove_generic(ctx, args, false, true, timeout)))
}

/// [BLMPOP](https://redis.io/commands/blmpop/): LMPOP, or wait for one of the lists.
pub fn blmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(blmpop_inner(ctx, args))
}

fn blmpop_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let MpopArgs { keys, left, count } = mpop_args(args, 2)?;
    let timeout = timeout_arg(args[1])?;
    Ok(match mpop_serve(ctx, keys, left, count)? {
        Some(r) => r,
        None => ctx.block(keys, timeout, Reply::NilArray),
    })
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

const W: u32 = flags::WRITE;
const W_FAST: u32 = flags::WRITE | flags::FAST;
const W_DENY: u32 = flags::WRITE | flags::DENYOOM;
const W_DENY_FAST: u32 = flags::WRITE | flags::DENYOOM | flags::FAST;
const R: u32 = flags::READONLY;
const R_FAST: u32 = flags::READONLY | flags::FAST;
const W_BLOCK: u32 = flags::WRITE | flags::NOSCRIPT | flags::BLOCKING;
const W_DENY_BLOCK: u32 = flags::WRITE | flags::DENYOOM | flags::NOSCRIPT | flags::BLOCKING;
const READ_FAST: &[&str] = &["@read", "@list", "@fast"];
const READ_SLOW: &[&str] = &["@read", "@list", "@slow"];
const WRITE_FAST: &[&str] = &["@write", "@list", "@fast"];
const WRITE_SLOW: &[&str] = &["@write", "@list", "@slow"];
const BLOCKING: &[&str] = &["@write", "@list", "@slow", "@blocking"];

/// A list command on the shard that owns the keys from `first` to `last` (-1: the last argument; 0: none).
#[allow(clippy::too_many_arguments)]
const fn cmd(
    name: &'static str,
    arity: i32,
    flags: u32,
    first: i32,
    last: i32,
    handler: super::ShardFn,
    categories: &'static [&'static str],
    summary: &'static str,
) -> Command {
    let step = if first == 0 { 0 } else { 1 };
    Command { name, arity, flags, first_key: first, last_key: last, step, route: Route::Key(handler), categories, summary }
}

/// The list commands. LMPOP and BLMPOP declare no key positions, as in
/// Redis (`movablekeys`): their keys are found from `numkeys` ([`super::NUMKEYS`]).
pub const COMMANDS: &[Command] = &[
    cmd("lpush", -3, W_DENY_FAST, 1, 1, lpush, WRITE_FAST, "Prepends one or more elements to a list. Creates the key if it doesn't exist."),
    cmd("rpush", -3, W_DENY_FAST, 1, 1, rpush, WRITE_FAST, "Appends one or more elements to a list. Creates the key if it doesn't exist."),
    cmd("lpushx", -3, W_DENY_FAST, 1, 1, lpushx, WRITE_FAST, "Prepends one or more elements to a list only when the list exists."),
    cmd("rpushx", -3, W_DENY_FAST, 1, 1, rpushx, WRITE_FAST, "Appends an element to a list only when the list exists."),
    cmd(
        "lpop",
        -2,
        W_FAST,
        1,
        1,
        lpop,
        WRITE_FAST,
        "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.",
    ),
    cmd(
        "rpop",
        -2,
        W_FAST,
        1,
        1,
        rpop,
        WRITE_FAST,
        "Returns and removes the last elements of a list. Deletes the list if the last element was popped.",
    ),
    cmd("llen", 2, R_FAST, 1, 1, llen, READ_FAST, "Returns the length of a list."),
    cmd("lindex", 3, R, 1, 1, lindex, READ_SLOW, "Returns an element from a list by its index."),
    cmd("lrange", 4, R, 1, 1, lrange, READ_SLOW, "Returns a range of elements from a list."),
    cmd("lset", 4, W_DENY, 1, 1, lset, WRITE_SLOW, "Sets the value of an element in a list by its index."),
    cmd("linsert", 5, W_DENY, 1, 1, linsert, WRITE_SLOW, "Inserts an element before or after another element in a list."),
    cmd("lrem", 4, W, 1, 1, lrem, WRITE_SLOW, "Removes elements from a list. Deletes the list if the last element was removed."),
    cmd("ltrim", 4, W, 1, 1, ltrim, WRITE_SLOW, "Removes elements from both ends a list. Deletes the list if all elements were trimmed."),
    cmd("lpos", -3, R, 1, 1, lpos, READ_SLOW, "Returns the index of matching elements in a list."),
    cmd(
        "lmove",
        5,
        W_DENY,
        1,
        2,
        lmove,
        WRITE_SLOW,
        "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.",
    ),
    cmd(
        "rpoplpush",
        3,
        W_DENY,
        1,
        2,
        rpoplpush,
        WRITE_SLOW,
        "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.",
    ),
    cmd(
        "lmpop",
        -4,
        W | flags::MOVABLEKEYS,
        0,
        0,
        lmpop,
        WRITE_SLOW,
        "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.",
    ),
    cmd(
        "blpop",
        -3,
        W_BLOCK,
        1,
        -2,
        blpop,
        BLOCKING,
        "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
    ),
    cmd(
        "brpop",
        -3,
        W_BLOCK,
        1,
        -2,
        brpop,
        BLOCKING,
        "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
    ),
    cmd(
        "blmove",
        6,
        W_DENY_BLOCK,
        1,
        2,
        blmove,
        BLOCKING,
        "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.",
    ),
    cmd(
        "brpoplpush",
        4,
        W_DENY_BLOCK,
        1,
        2,
        brpoplpush,
        BLOCKING,
        "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.",
    ),
    cmd(
        "blmpop",
        -5,
        flags::WRITE | flags::BLOCKING | flags::MOVABLEKEYS,
        0,
        0,
        blmpop,
        BLOCKING,
        "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.",
    ),
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn opts(extra: &[&str]) -> Result<LposOptions, Reply> {
        let mut args: Vec<&[u8]> = vec![b"lpos", b"k", b"e"];
        args.extend(extra.iter().map(|s| s.as_bytes()));
        lpos_options(&args)
    }

    #[test]
    fn lpos_option_parsing() {
        assert_eq!(opts(&[]).unwrap(), LposOptions { rank: 1, count: -1, maxlen: 0 });
        assert_eq!(opts(&["rank", "-2", "COUNT", "0", "maxlen", "5"]).unwrap(), LposOptions { rank: -2, count: 0, maxlen: 5 });
        assert_eq!(opts(&["count", "1", "count", "2"]).unwrap().count, 2);
        assert_eq!(opts(&["rank", "-9223372036854775808"]).unwrap().rank, i64::MIN);
        assert_eq!(opts(&["rank"]), Err(Reply::error(err::SYNTAX)));
        assert_eq!(opts(&["foo", "1"]), Err(Reply::error(err::SYNTAX)));
        assert_eq!(opts(&["rank", "x"]), Err(Reply::error(err::NOT_INTEGER)));
        assert_eq!(opts(&["count", "x"]), Err(Reply::error("ERR COUNT can't be negative")));
        assert_eq!(opts(&["maxlen", "-1"]), Err(Reply::error("ERR MAXLEN can't be negative")));
        assert!(matches!(opts(&["rank", "0"]), Err(Reply::Error(e)) if e.starts_with("ERR RANK can't be zero")));
    }

    #[test]
    fn sides() {
        assert_eq!(parse_side(b"LeFt"), Ok(true));
        assert_eq!(parse_side(b"right"), Ok(false));
        assert_eq!(parse_side(b"up"), Err(Reply::error(err::SYNTAX)));
    }
}
