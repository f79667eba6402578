//! Hash commands: <https://redis.io/commands/?group=hash>.
//!
//! Every handler runs on the shard that owns its key. Reads go through
//! [`Keyspace::lookup`](strand_engine::keyspace::Keyspace::lookup) where Redis
//! uses `lookupKeyRead`, writes look the key up with `peek` (Redis's
//! `lookupKeyWrite`). Each write is one [`Change`] (`HSet` or `HDel`),
//! decided in full before it is logged: HINCRBY and HINCRBYFLOAT log the
//! new value of the field, never the increment, so replay does no
//! arithmetic. A refused command (type, syntax, numbers) changes nothing.
//!
//! The collection helpers that sets share live here too: the SCAN-style
//! cursor and options of HSCAN/SSCAN, and the random picks of HRANDFIELD,
//! SRANDMEMBER and SPOP.

use std::collections::HashSet;

use rand::Rng;
use strand_engine::dict::Dict;
use strand_engine::keyspace::hash::Hash;
use strand_engine::keyspace::Change;

use super::glob::glob_match;
use super::strings::{float_sum, int_arg, parse_f64, parse_i64};
use super::typed::{self, change};
use super::{arity_error, err, flags, one_key, Command, Ctx};
use crate::reply::Reply;

/// Joins a handler's result: the reply, or the error it stopped at.
fn reply(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

// ---------------------------------------------------------------------------
// Shared helpers (hashes and sets)
// ---------------------------------------------------------------------------

/// The hash at `key` for a read (Redis's `lookupKeyRead`).
fn read<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a Hash>, Reply> {
    typed::read(ctx, key)
}

/// The hash at `key` before a write (Redis's `lookupKeyWrite`).
fn peek<'a>(ctx: &'a Ctx<'_>, key: &[u8]) -> Result<Option<&'a Hash>, Reply> {
    typed::peek(ctx, key)
}

/// Redis's `parseScanCursorOrReply`, which is C's `strtoul` on the whole
/// argument: an optional sign (`-n` wraps around, as in C), decimal digits
/// that fit 64 bits; the empty string is 0. Else `ERR invalid cursor`.
pub(crate) fn scan_cursor(arg: &[u8]) -> Result<u64, Reply> {
    let invalid = || Reply::error("ERR invalid cursor");
    let (negative, digits) = match arg.split_first() {
        None => return Ok(0),
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        Some(_) => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10).and_then(|v| v.checked_add(u64::from(d - b'0'))).ok_or_else(invalid)?;
    }
    Ok(if negative { v.wrapping_neg() } else { v })
}

/// The options of HSCAN and SSCAN (SCAN's without TYPE; NOVALUES is Redis 7.4's and not taken).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CollScan<'a> {
    /// COUNT (default 10).
    pub count: usize,
    /// MATCH, None for all (absent or `*`).
    pub pattern: Option<&'a [u8]>,
}

impl<'a> CollScan<'a> {
    /// Redis's option loop of `scanGenericCommand` for a collection, over `args[3..]` (SCAN's, without TYPE).
    pub(crate) fn parse(args: &[&'a [u8]]) -> Result<CollScan<'a>, Reply> {
        let o = super::keys::ScanOptions::parse_at(args, 3, false)?;
        Ok(CollScan { count: o.count, pattern: o.pattern })
    }

    /// Whether an element found by the scan is reported.
    pub(crate) fn wants(&self, elem: &[u8]) -> bool {
        self.pattern.is_none_or(|p| glob_match(p, elem, false))
    }

    /// One step of the scan over `dict` from `cursor`: the reply
    /// `[next-cursor, [items...]]`, where `emit` turns each wanted entry into items.
    pub(crate) fn step<V>(&self, dict: &Dict<V>, cursor: u64, mut emit: impl FnMut(&[u8], &V, &mut Vec<Reply>)) -> Reply {
        let mut items = Vec::new();
        let next = dict.scan(cursor, self.count, |k, v| {
            if self.wants(k) {
                emit(k, v, &mut items);
            }
        });
        Reply::Array(vec![Reply::Bulk(next.to_string().into_bytes()), Reply::Array(items)])
    }
}

/// What HSCAN/SSCAN answer for a missing key: cursor 0, nothing found.
pub(crate) fn empty_scan() -> Reply {
    Reply::Array(vec![Reply::bulk("0"), Reply::Array(Vec::new())])
}

/// The count argument of HRANDFIELD/SRANDMEMBER (`-LONG_MAX..=LONG_MAX`), with Redis's errors.
pub(crate) fn rand_count(arg: &[u8]) -> Result<i64, Reply> {
    let n = int_arg(arg)?;
    if n == i64::MIN {
        return Err(Reply::error(format!("ERR value is out of range, value must between {} and {}", -i64::MAX, i64::MAX)));
    }
    Ok(n)
}

/// `n` random entries of a non-empty dict, repeats allowed (negative counts of HRANDFIELD/SRANDMEMBER).
pub(crate) fn random_entries<V>(dict: &Dict<V>, n: u64) -> Vec<(&[u8], &V)> {
    let mut rng = || rand::random::<u64>();
    let mut out = Vec::with_capacity(n.min(1 << 16) as usize);
    for _ in 0..n {
        match dict.random_entry(&mut rng) {
            Some(e) => out.push(e),
            None => break,
        }
    }
    out
}

/// `count` distinct random entries of a dict (all of them when it has no more than `count`).
pub(crate) fn distinct_entries<V>(dict: &Dict<V>, count: usize) -> Vec<(&[u8], &V)> {
    if count >= dict.len() {
        return dict.iter().collect();
    }
    let mut rng = rand::thread_rng();
    if count.saturating_mul(3) > dict.len() {
        // Most of it: a partial shuffle of every entry.
        let mut all: Vec<(&[u8], &V)> = dict.iter().collect();
        for i in 0..count {
            let j = rng.gen_range(i..all.len());
            all.swap(i, j);
        }
        all.truncate(count);
        return all;
    }
    // A small part: random picks until `count` distinct ones (expected under 1.5 tries each).
    let mut r = || rng.gen::<u64>();
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let Some((k, v)) = dict.random_entry(&mut r) else { break };
        if seen.insert(k) {
            out.push((k, v));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Setting and reading fields
// ---------------------------------------------------------------------------

/// Redis's `hsetCommand`: HSET and HMSET; answers how many fields were new.
fn hset_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], cmd: &str) -> Result<i64, Reply> {
    if !args.len().is_multiple_of(2) {
        return Err(arity_error(cmd));
    }
    let key = args[1];
    let pairs: Vec<(&[u8], &[u8])> = args[2..].chunks_exact(2).map(|p| (p[0], p[1])).collect();
    let h = peek(ctx, key)?;
    // A field named twice in one request is new only once.
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(pairs.len());
    let created = pairs.iter().filter(|(f, _)| seen.insert(f) && h.is_none_or(|h| h.get(f).is_none())).count();
    change(ctx, key, Change::HSet(pairs))?;
    Ok(created as i64)
}

/// [HSET](https://redis.io/commands/hset/): sets fields of a hash (creating it); answers how many were new.
pub fn hset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(hset_generic(ctx, args, "hset").map(Reply::Int))
}

/// [HMSET](https://redis.io/commands/hmset/): HSET answering OK (deprecated in Redis, still served).
pub fn hmset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(hset_generic(ctx, args, "hmset").map(|_| Reply::Ok))
}

/// [HSETNX](https://redis.io/commands/hsetnx/): sets a field only if it does not exist; 1 if set.
pub fn hsetnx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(hsetnx_inner(ctx, args[1], args[2], args[3]))
}

fn hsetnx_inner(ctx: &mut Ctx<'_>, key: &[u8], field: &[u8], value: &[u8]) -> Result<Reply, Reply> {
    if peek(ctx, key)?.is_some_and(|h| h.get(field).is_some()) {
        return Ok(Reply::Int(0));
    }
    change(ctx, key, Change::HSet(vec![(field, value)]))?;
    Ok(Reply::Int(1))
}

/// [HGET](https://redis.io/commands/hget/): the value of a field, nil if the field or the key is missing.
pub fn hget(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let field = args[2];
    reply(read(ctx, args[1]).map(|h| Reply::opt_bulk(h.and_then(|h| h.get(field)))))
}

/// [HMGET](https://redis.io/commands/hmget/): the values of several fields, nil for each missing one.
pub fn hmget(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(read(ctx, args[1]).map(|h| Reply::Array(args[2..].iter().map(|f| Reply::opt_bulk(h.and_then(|h| h.get(f)))).collect())))
}

/// [HGETALL](https://redis.io/commands/hgetall/): every field and value (a map in RESP3).
pub fn hgetall(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(
        read(ctx, args[1])
            .map(|h| Reply::Map(h.map(|h| h.iter().map(|(f, v)| (Reply::bulk(f), Reply::bulk(v))).collect()).unwrap_or_default())),
    )
}

/// [HKEYS](https://redis.io/commands/hkeys/): every field of a hash.
pub fn hkeys(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(read(ctx, args[1]).map(|h| Reply::Array(h.map(|h| h.iter().map(|(f, _)| Reply::bulk(f)).collect()).unwrap_or_default())))
}

/// [HVALS](https://redis.io/commands/hvals/): every value of a hash.
pub fn hvals(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(read(ctx, args[1]).map(|h| Reply::Array(h.map(|h| h.iter().map(|(_, v)| Reply::bulk(v)).collect()).unwrap_or_default())))
}

/// [HLEN](https://redis.io/commands/hlen/): the number of fields, 0 if missing.
pub fn hlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(read(ctx, args[1]).map(|h| Reply::Int(h.map_or(0, |h| h.len() as i64))))
}

/// [HEXISTS](https://redis.io/commands/hexists/): 1 if the field exists, else 0.
pub fn hexists(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let field = args[2];
    reply(read(ctx, args[1]).map(|h| Reply::Int(h.is_some_and(|h| h.get(field).is_some()) as i64)))
}

/// [HSTRLEN](https://redis.io/commands/hstrlen/): the length of a field's value, 0 if missing.
pub fn hstrlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let field = args[2];
    reply(read(ctx, args[1]).map(|h| Reply::Int(h.and_then(|h| h.get(field)).map_or(0, |v| v.len() as i64))))
}

/// [HDEL](https://redis.io/commands/hdel/): removes fields (the key goes with the last one); answers how many existed.
pub fn hdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(hdel_inner(ctx, args))
}

fn hdel_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let key = args[1];
    let Some(h) = peek(ctx, key)? else {
        return Ok(Reply::Int(0));
    };
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(args.len() - 2);
    let present: Vec<&[u8]> = args[2..].iter().copied().filter(|f| h.get(f).is_some() && seen.insert(f)).collect();
    let n = present.len() as i64;
    if n > 0 {
        change(ctx, key, Change::HDel(present))?;
    }
    Ok(Reply::Int(n))
}

// ---------------------------------------------------------------------------
// Counters
// ---------------------------------------------------------------------------

/// [HINCRBY](https://redis.io/commands/hincrby/): adds an integer to a field (0 if missing); answers the new value.
pub fn hincrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(hincrby_inner(ctx, args[1], args[2], args[3]))
}

fn hincrby_inner(ctx: &mut Ctx<'_>, key: &[u8], field: &[u8], incr: &[u8]) -> Result<Reply, Reply> {
    let incr = int_arg(incr)?;
    let current = match peek(ctx, key)?.and_then(|h| h.get(field)) {
        None => 0,
        Some(v) => parse_i64(v).ok_or_else(|| Reply::error("ERR hash value is not an integer"))?,
    };
    let new = current.checked_add(incr).ok_or_else(|| Reply::error(err::OVERFLOW))?;
    let text = new.to_string();
    change(ctx, key, Change::HSet(vec![(field, text.as_bytes())]))?;
    Ok(Reply::Int(new))
}

/// [HINCRBYFLOAT](https://redis.io/commands/hincrbyfloat/): adds a float to a
/// field (0 if missing); answers and stores the new value as INCRBYFLOAT prints it.
pub fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(hincrbyfloat_inner(ctx, args[1], args[2], args[3]))
}

fn hincrbyfloat_inner(ctx: &mut Ctx<'_>, key: &[u8], field: &[u8], incr_text: &[u8]) -> Result<Reply, Reply> {
    let incr = parse_f64(incr_text).ok_or_else(|| Reply::error(err::NOT_FLOAT))?;
    if !incr.is_finite() {
        return Err(Reply::error("ERR value is NaN or Infinity"));
    }
    let text = {
        let current = peek(ctx, key)?.and_then(|h| h.get(field)).map_or(&b"0"[..], |v| &v[..]);
        let value = parse_f64(current).ok_or_else(|| Reply::error("ERR hash value is not a float"))?;
        float_sum(current, incr_text, value, incr).ok_or_else(|| Reply::error("ERR increment would produce NaN or Infinity"))?
    };
    change(ctx, key, Change::HSet(vec![(field, text.as_bytes())]))?;
    Ok(Reply::Bulk(text.into_bytes()))
}

// ---------------------------------------------------------------------------
// HRANDFIELD, HSCAN
// ---------------------------------------------------------------------------

/// [HRANDFIELD](https://redis.io/commands/hrandfield/): a random field; with
/// a count, that many distinct fields (negative: repeats allowed), with
/// WITHVALUES their values too (pairs of arrays in RESP3).
pub fn hrandfield(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(hrandfield_inner(ctx, args))
}

fn hrandfield_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    if args.len() == 2 {
        let Some(h) = read(ctx, args[1])? else {
            return Ok(Reply::Nil);
        };
        let mut rng = || rand::random::<u64>();
        return Ok(Reply::opt_bulk(h.random_entry(&mut rng).map(|(f, _)| f)));
    }
    let n = rand_count(args[2])?;
    let with_values = match args.get(3) {
        Some(a) if args.len() == 4 && a.eq_ignore_ascii_case(b"withvalues") => true,
        Some(_) => return Err(Reply::error(err::SYNTAX)),
        None => false,
    };
    if with_values && !(-i64::MAX / 2..=i64::MAX / 2).contains(&n) {
        return Err(Reply::error("ERR value is out of range"));
    }
    let Some(h) = read(ctx, args[1])? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let picked = if n < 0 { random_entries(h, n.unsigned_abs()) } else { distinct_entries(h, n as usize) };
    Ok(if with_values {
        Reply::Pairs(picked.into_iter().map(|(f, v)| (Reply::bulk(f), Reply::bulk(v))).collect())
    } else {
        Reply::Array(picked.into_iter().map(|(f, _)| Reply::bulk(f)).collect())
    })
}

/// [HSCAN](https://redis.io/commands/hscan/): one step of an iteration over
/// the fields and values of a hash (MATCH on the field, COUNT).
pub fn hscan(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(hscan_inner(ctx, args))
}

fn hscan_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let cursor = scan_cursor(args[2])?;
    let Some(h) = read(ctx, args[1])? else {
        return Ok(empty_scan());
    };
    let o = CollScan::parse(args)?;
    Ok(o.step(h, cursor, |f, v, items| {
        items.push(Reply::bulk(f));
        items.push(Reply::bulk(v));
    }))
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

const W_DENY_FAST: u32 = flags::WRITE | flags::DENYOOM | flags::FAST;
const W_FAST: u32 = flags::WRITE | flags::FAST;
const R_FAST: u32 = flags::READONLY | flags::FAST;
const READ_FAST: &[&str] = &["@read", "@hash", "@fast"];
const READ_SLOW: &[&str] = &["@read", "@hash", "@slow"];
const WRITE_FAST: &[&str] = &["@write", "@hash", "@fast"];

/// The hash commands.
pub const COMMANDS: &[Command] = &[
    one_key("hset", -4, W_DENY_FAST, hset, WRITE_FAST, "Creates or modifies the value of a field in a hash."),
    one_key("hsetnx", 4, W_DENY_FAST, hsetnx, WRITE_FAST, "Sets the value of a field in a hash only when the field doesn't exist."),
    one_key("hmset", -4, W_DENY_FAST, hmset, WRITE_FAST, "Sets the values of multiple fields."),
    one_key("hget", 3, R_FAST, hget, READ_FAST, "Returns the value of a field in a hash."),
    one_key("hmget", -3, R_FAST, hmget, READ_FAST, "Returns the values of all fields in a hash."),
    one_key("hgetall", 2, flags::READONLY, hgetall, READ_SLOW, "Returns all fields and values in a hash."),
    one_key("hkeys", 2, flags::READONLY, hkeys, READ_SLOW, "Returns all fields in a hash."),
    one_key("hvals", 2, flags::READONLY, hvals, READ_SLOW, "Returns all values in a hash."),
    one_key("hlen", 2, R_FAST, hlen, READ_FAST, "Returns the number of fields in a hash."),
    one_key("hexists", 3, R_FAST, hexists, READ_FAST, "Determines whether a field exists in a hash."),
    one_key("hstrlen", 3, R_FAST, hstrlen, READ_FAST, "Returns the length of the value of a field."),
    one_key(
        "hdel",
        -3,
        W_FAST,
        hdel,
        WRITE_FAST,
        "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.",
    ),
    one_key(
        "hincrby",
        4,
        W_DENY_FAST,
        hincrby,
        WRITE_FAST,
        "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.",
    ),
    one_key(
        "hincrbyfloat",
        4,
        W_DENY_FAST,
        hincrbyfloat,
        WRITE_FAST,
        "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.",
    ),
    one_key("hrandfield", -2, flags::READONLY, hrandfield, READ_SLOW, "Returns one or more random fields from a hash."),
    one_key("hscan", -3, flags::READONLY, hscan, READ_SLOW, "Iterates over fields and values of a hash."),
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn dict(n: usize) -> Dict<()> {
        let mut d = Dict::new(7);
        for i in 0..n {
            d.insert(format!("m{i}").as_bytes(), ());
        }
        d
    }

    #[test]
    fn distinct_picks_are_distinct_and_of_the_dict() {
        for (size, count) in [(10, 3), (10, 4), (10, 9), (10, 10), (10, 50), (1000, 5), (1000, 400), (1, 1)] {
            let d = dict(size);
            let picked = distinct_entries(&d, count);
            assert_eq!(picked.len(), count.min(size), "size {size} count {count}");
            let unique: HashSet<&[u8]> = picked.iter().map(|(k, _)| *k).collect();
            assert_eq!(unique.len(), picked.len());
            assert!(unique.iter().all(|k| d.get(k).is_some()));
        }
    }

    #[test]
    fn picks_with_repeats_cover_the_dict() {
        let d = dict(5);
        let picked = random_entries(&d, 500);
        assert_eq!(picked.len(), 500);
        let unique: HashSet<&[u8]> = picked.iter().map(|(k, _)| *k).collect();
        assert_eq!(unique.len(), 5, "500 picks of 5 members missed one");
        assert!(random_entries(&dict(0), 3).is_empty());
    }

    #[test]
    fn scan_options() {
        let args: Vec<&[u8]> = vec![b"hscan", b"k", b"0", b"MATCH", b"a*", b"count", b"5"];
        let o = CollScan::parse(&args).unwrap();
        assert_eq!(o, CollScan { count: 5, pattern: Some(&b"a*"[..]) });
        let args: Vec<&[u8]> = vec![b"hscan", b"k", b"0", b"match", b"*"];
        assert_eq!(CollScan::parse(&args).unwrap().pattern, None);
        let bad: &[&[&[u8]]] = &[
            &[b"hscan", b"k", b"0", b"count", b"0"],
            &[b"hscan", b"k", b"0", b"count"],
            &[b"hscan", b"k", b"0", b"type", b"string"],
            &[b"hscan", b"k", b"0", b"novalues"],
        ];
        for args in bad {
            assert_eq!(CollScan::parse(args), Err(Reply::error(err::SYNTAX)));
        }
        let args: Vec<&[u8]> = vec![b"hscan", b"k", b"0", b"count", b"x"];
        assert_eq!(CollScan::parse(&args), Err(Reply::error(err::NOT_INTEGER)));
        assert_eq!(scan_cursor(b"12").unwrap(), 12);
        assert_eq!(scan_cursor(b"007").unwrap(), 7);
        assert_eq!(scan_cursor(b"+1").unwrap(), 1);
        assert_eq!(scan_cursor(b"").unwrap(), 0);
        assert_eq!(scan_cursor(b"-0").unwrap(), 0);
        assert_eq!(scan_cursor(b"-1").unwrap(), u64::MAX);
        assert_eq!(scan_cursor(b"18446744073709551615").unwrap(), u64::MAX);
        for bad in [&b"x"[..], b" 1", b"1 ", b"-", b"+", b"18446744073709551616", b"0x10", b"--1"] {
            assert!(scan_cursor(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
