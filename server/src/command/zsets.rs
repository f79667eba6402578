//! Sorted-set commands: <https://redis.io/commands/?group=sorted-set>.
//!
//! Every handler runs on the shard that owns its key(s). Reads go through
//! [`Keyspace::lookup`](strand_engine::keyspace::Keyspace::lookup) where
//! Redis uses `lookupKeyRead`, writes look keys up with `peek`
//! (`lookupKeyWrite`). Each write is decided in full before it is logged,
//! after every check passed: ZADD and ZINCRBY log the members' absolute
//! new scores ([`Change::ZAdd`]), pops and ZREMRANGEBY* the members they
//! removed ([`Change::ZRem`], or a DEL when the whole set goes), the
//! *STORE commands the resulting set whole ([`Op::Store`], or [`Op::Del`]
//! for an empty result), so replay does no arithmetic and no search.
//!
//! Scores are parsed as Redis does: arguments that are scores (ZADD,
//! ZINCRBY, WEIGHTS) with `getDoubleFromObject` ([`parse_score`]: C's
//! `strtod` over the whole argument, no leading space, no overflow, not
//! NaN), range bounds with `zslParseRange` ([`range_item`]: `strtod`
//! without those checks, a leading `(` for exclusive). Hexadecimal floats
//! are taken, as `strtod` takes them. Replies carry scores as doubles
//! (RESP3 `,`), and WITHSCORES answers [`Reply::Pairs`]: a flat array in
//! RESP2, an array of `[member, score]` pairs in RESP3, as Redis 7 does.
//!
//! The commands whose keys follow a count (ZUNIONSTORE, ZINTER, ZMPOP,
//! BZMPOP ...) cannot say where their keys are with the table's
//! first/last/step; their entries name the first key for COMMAND INFO, and
//! the dispatcher finds all of them (with the *STORE destination) through
//! [`super::NUMKEYS`], so they reach the shard that owns every one of
//! them, or, when their keys live on several shards, [`crate::gather`]
//! (the algebra) or [`crate::pops`]. (Redis marks them `movablekeys`.) The pops (ZMPOP,
//! BZMPOP, BZPOPMIN, BZPOPMAX) over sets on several shards run in
//! [`crate::pops`] instead, which runs these handlers on each shard's share.
//!
//! BZPOPMIN, BZPOPMAX and BZMPOP answer at once when a set has members;
//! otherwise they call [`Ctx::block`], and the dispatcher runs them again
//! when one of their keys is written, until they serve or time out.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use strand_engine::dict::Dict;
use strand_engine::keyspace::set::Set;
use strand_engine::keyspace::zset::ZSet;
use strand_engine::keyspace::{Change, Op, Value};

use super::hashes::{empty_scan, scan_cursor, CollScan};
use super::strings::{db8, int_arg, write};
use super::typed::{self, change};
use super::{entry, err, flags, timeout_arg, Command, Ctx, ONE};
use crate::reply::Reply;
use crate::resp::format_double;

/// Joins a handler's result: the reply, or the error it stopped at.
fn reply(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

const MIN_MAX_NOT_FLOAT: &str = "ERR min or max is not a float";
const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";
const NAN_RESULT: &str = "ERR resulting score is not a number (NaN)";

// ---------------------------------------------------------------------------
// Number parsing
// ---------------------------------------------------------------------------

/// C's white space (`isspace`).
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// A number as C's `strtod` reads it from the whole of `s` (after leading
/// white space): a sign, then decimal digits with an optional point and
/// exponent, hexadecimal digits after `0x` with an optional `p` exponent,
/// or `inf`/`infinity`/`nan`. None if no number is there or anything is
/// left over. The flag says the literal was out of range (`ERANGE`): finite
/// but too large (the value is then infinite), or not zero but too small
/// (the value is then zero).
fn c_strtod(s: &[u8]) -> Option<(f64, bool)> {
    let start = s.iter().position(|&b| !is_c_space(b))?;
    let text = std::str::from_utf8(&s[start..]).ok()?;
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (v, nonzero_digits, is_inf) = if body.len() > 2 && (body.starts_with("0x") || body.starts_with("0X")) {
        let (v, nonzero) = hex_float(&body[2..])?;
        (v, nonzero, false)
    } else {
        // Rust's grammar is C's for decimals and inf/infinity/nan; it takes no hex and no white space.
        if body.bytes().any(|b| b == b'_' || is_c_space(b)) || body.starts_with(['+', '-']) {
            return None;
        }
        let v: f64 = body.parse().ok()?;
        let lower = body.to_ascii_lowercase();
        let is_inf = lower == "inf" || lower == "infinity";
        let mantissa = body.split(['e', 'E']).next().unwrap_or("");
        (v, mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)), is_inf)
    };
    let erange = (v.is_infinite() && !is_inf) || (v == 0.0 && nonzero_digits);
    Some((if negative { -v } else { v }, erange))
}

/// The digits of a hexadecimal float after `0x`: `h[.h][p[+-]d]`. Returns
/// the value and whether any digit was not zero.
fn hex_float(s: &str) -> Option<(f64, bool)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut mant: u64 = 0;
    let mut exp: i64 = 0;
    let mut digits = 0;
    let mut nonzero = false;
    let mut seen_point = false;
    while i < b.len() {
        let c = b[i];
        if c == b'.' && !seen_point {
            seen_point = true;
        } else if let Some(d) = (c as char).to_digit(16) {
            digits += 1;
            nonzero |= d != 0;
            if mant >> 60 == 0 {
                mant = mant * 16 + u64::from(d);
                if seen_point {
                    exp -= 4;
                }
            } else if !seen_point {
                exp += 4;
            }
        } else {
            break;
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() {
        if b[i] != b'p' && b[i] != b'P' {
            return None;
        }
        let e: i64 = s[i + 1..].parse().ok().filter(|_| s[i + 1..].bytes().last().is_some_and(|c| c.is_ascii_digit()))?;
        exp = exp.saturating_add(e);
    }
    let v = (mant as f64) * 2f64.powi(exp.clamp(-2000, 2000) as i32);
    Some((v, nonzero))
}

/// Redis's `getDoubleFromObject`: a score argument (ZADD, ZINCRBY,
/// WEIGHTS): the whole argument, no leading space, not out of range, not NaN.
pub(crate) fn parse_score(s: &[u8]) -> Option<f64> {
    if s.first().is_none_or(|&b| is_c_space(b)) {
        return None;
    }
    match c_strtod(s)? {
        (v, false) if !v.is_nan() => Some(v),
        _ => None,
    }
}

/// One bound of `zslParseRange` after its `(`: `strtod` with only a check
/// that nothing is left over (so an empty bound is 0 and a huge one is
/// infinite), not NaN.
fn range_item(s: &[u8]) -> Option<f64> {
    if s.is_empty() {
        return Some(0.0);
    }
    c_strtod(s).map(|(v, _)| v).filter(|v| !v.is_nan())
}

/// A score bound: `(x` exclusive, else inclusive.
fn score_bound(s: &[u8]) -> Option<Bound<f64>> {
    match s.split_first() {
        Some((b'(', rest)) => range_item(rest).map(Bound::Excluded),
        _ => range_item(s).map(Bound::Included),
    }
}

/// Redis's `zslParseRange`.
fn score_range(min: &[u8], max: &[u8]) -> Result<(Bound<f64>, Bound<f64>), Reply> {
    score_bound(min).zip(score_bound(max)).ok_or_else(|| Reply::error(MIN_MAX_NOT_FLOAT))
}

/// One end of a lex range.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Lex<'a> {
    /// `-`: below every member.
    Min,
    /// `+`: above every member.
    Max,
    /// `[x`.
    Incl(&'a [u8]),
    /// `(x`.
    Excl(&'a [u8]),
}

/// Redis's `zslParseLexRangeItem`.
fn lex_item(s: &[u8]) -> Option<Lex<'_>> {
    match s.split_first()? {
        (b'+', []) => Some(Lex::Max),
        (b'-', []) => Some(Lex::Min),
        (b'(', rest) => Some(Lex::Excl(rest)),
        (b'[', rest) => Some(Lex::Incl(rest)),
        _ => None,
    }
}

/// Redis's `zslParseLexRange`.
fn lex_range<'a>(min: &'a [u8], max: &'a [u8]) -> Result<(Lex<'a>, Lex<'a>), Reply> {
    lex_item(min).zip(lex_item(max)).ok_or_else(|| Reply::error(NOT_LEX_RANGE))
}

/// `getPositiveLongFromObjectOrReply` with the given error for anything that is not a non-negative integer.
fn positive_long(s: &[u8], msg: &'static str) -> Result<i64, Reply> {
    int_arg(s).ok().filter(|&n| n >= 0).ok_or_else(|| Reply::error(msg))
}

/// `getRangeLongFromObjectOrReply(1, LONG_MAX)` with the given error.
fn at_least_one(s: &[u8], msg: &'static str) -> Result<i64, Reply> {
    int_arg(s).ok().filter(|&n| n >= 1).ok_or_else(|| Reply::error(msg))
}

// ---------------------------------------------------------------------------
// Keys and values
// ---------------------------------------------------------------------------

/// `lookupKeyRead` + type check.
fn read<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c ZSet>, Reply> {
    typed::read(ctx, key)
}

/// `lookupKeyWrite` + type check.
fn peek<'c>(ctx: &'c Ctx<'_>, key: &[u8]) -> Result<Option<&'c ZSet>, Reply> {
    typed::peek(ctx, key)
}

/// Removes `members` from the set at `key` of `len` members: a DEL when they are all of it.
fn remove_members(ctx: &mut Ctx<'_>, key: &[u8], members: &[Vec<u8>], len: usize) -> Result<(), Reply> {
    if members.is_empty() {
        Ok(())
    } else if members.len() == len {
        write(ctx, Op::Del { db: db8(ctx), key })
    } else {
        change(ctx, key, Change::ZRem(members.iter().map(|m| &m[..]).collect()))
    }
}

/// A score as it is stored: `-0` becomes `0`, as in Redis's listpack
/// encoding (which holds every set of up to 128 members), so ZSCORE never
/// answers `-0`.
fn canon(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

/// Members with their scores, owned (what pops and stores carry out of a borrow).
type Owned = Vec<(Vec<u8>, f64)>;

/// Members as a reply: bulk strings, with scores as [`Reply::Pairs`].
fn members_reply<'m>(items: impl Iterator<Item = (&'m [u8], f64)>, withscores: bool) -> Reply {
    if withscores {
        Reply::Pairs(items.map(|(m, s)| (Reply::bulk(m), Reply::Double(s))).collect())
    } else {
        Reply::Array(items.map(|(m, _)| Reply::bulk(m)).collect())
    }
}

// ---------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------

/// Whether a member is at or above a lex range's minimum.
fn lex_gte_min(m: &[u8], min: Lex<'_>) -> bool {
    match min {
        Lex::Min => true,
        Lex::Max => false,
        Lex::Incl(x) => m >= x,
        Lex::Excl(x) => m > x,
    }
}

/// Whether a member is at or below a lex range's maximum.
fn lex_lte_max(m: &[u8], max: Lex<'_>) -> bool {
    match max {
        Lex::Min => false,
        Lex::Max => true,
        Lex::Incl(x) => m <= x,
        Lex::Excl(x) => m < x,
    }
}

/// Redis's `zslIsInLexRange`: whether a lex range can hold any member of
/// `z` (not empty in itself, not wholly before the first member or after
/// the last). `-` and `+` count as exclusive, as Redis parses them.
fn lex_may_hit(z: &ZSet, min: Lex<'_>, max: Lex<'_>) -> bool {
    use std::cmp::Ordering;
    fn key(l: Lex<'_>) -> (u8, &[u8], bool) {
        match l {
            Lex::Min => (0, b"", true),
            Lex::Max => (2, b"", true),
            Lex::Incl(x) => (1, x, false),
            Lex::Excl(x) => (1, x, true),
        }
    }
    let ((a, x, ax), (b, y, bx)) = (key(min), key(max));
    match (a, x).cmp(&(b, y)) {
        Ordering::Greater => return false,
        Ordering::Equal if ax || bx => return false,
        _ => {}
    }
    let mut it = z.iter();
    match (it.next(), it.next_back()) {
        (Some((first, _)), Some((last, _))) => lex_gte_min(last, min) && lex_lte_max(first, max),
        (Some((only, _)), None) => lex_gte_min(only, min) && lex_lte_max(only, max),
        _ => false,
    }
}

/// The rank of the first member at or above `min` as Redis's skip list
/// finds it (a descent); `len` if none.
fn lex_first(z: &ZSet, min: Lex<'_>) -> usize {
    match min {
        Lex::Min => 0,
        Lex::Max => z.len(),
        Lex::Incl(x) => z.first_rank_by_lex(Bound::Included(x)),
        Lex::Excl(x) => z.first_rank_by_lex(Bound::Excluded(x)),
    }
}

/// The rank of the last member at or below `max`, found by a descent.
fn lex_last(z: &ZSet, max: Lex<'_>) -> Option<usize> {
    match max {
        Lex::Min => None,
        Lex::Max => z.len().checked_sub(1),
        Lex::Incl(x) => z.last_rank_by_lex(Bound::Included(x)),
        Lex::Excl(x) => z.last_rank_by_lex(Bound::Excluded(x)),
    }
}

/// ZLEXCOUNT as Redis's skip list answers it: the ranks of the first and
/// last members in range, each found by a descent (O(log n)). Exact when
/// all scores are equal, as the lex commands require.
fn lex_count(z: &ZSet, min: Lex<'_>, max: Lex<'_>) -> usize {
    if !lex_may_hit(z, min, max) {
        return 0;
    }
    let first = lex_first(z, min);
    let Some(last) = lex_last(z, max) else { return 0 };
    let first_ok = z.select(first).is_some_and(|(m, _)| lex_lte_max(m, max));
    let last_ok = z.select(last).is_some_and(|(m, _)| lex_gte_min(m, min));
    if first_ok && last_ok && first <= last {
        last - first + 1
    } else {
        0
    }
}

/// The ascending ranks a lex range selects after LIMIT, as Redis walks
/// them: from the first member in range (the last with REV), found by a
/// descent, on while members stay within the other bound. When all scores
/// are equal this is exactly the members within both bounds; otherwise
/// (undefined, as Redis documents) it is still a run of members that are
/// all within the bounds.
fn lex_window(z: &ZSet, min: Lex<'_>, max: Lex<'_>, rev: bool, offset: usize, limit: Option<usize>) -> Option<(usize, usize)> {
    if !lex_may_hit(z, min, max) {
        return None;
    }
    let want = limit.map_or(usize::MAX, |l| offset.saturating_add(l));
    if rev {
        let end = lex_last(z, max)?;
        let n = z.range_by_rank(0, end).rev().take(want).take_while(|(m, _)| lex_gte_min(m, min)).count();
        (n > offset).then(|| (end + 1 - n, end - offset))
    } else {
        let start = lex_first(z, min);
        let n = z.range_by_rank(start, z.len().saturating_sub(1)).take(want).take_while(|(m, _)| lex_lte_max(m, max)).count();
        (n > offset).then(|| (start + offset, start + n - 1))
    }
}

/// Redis's index sanitising of ZRANGE and ZREMRANGEBYRANK: ranks
/// `start..=end` (negative from the end) of a set of `len`, None if empty.
fn rank_window(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
}

/// What a ZRANGE-family command selects.
#[derive(Debug, Clone, Copy)]
enum Spec<'a> {
    /// By index.
    Rank(i64, i64),
    /// By score.
    Score(Bound<f64>, Bound<f64>),
    /// By member bytes.
    Lex(Lex<'a>, Lex<'a>),
}

/// The ascending ranks `a..=b` a range selects, after REV and LIMIT
/// (`offset`, `limit`: Redis's rules, a negative offset selects nothing, a
/// negative limit everything); the caller walks them backwards for REV.
fn select_window(z: &ZSet, spec: Spec<'_>, rev: bool, offset: i64, limit: i64) -> Option<(usize, usize)> {
    let offset = usize::try_from(offset);
    let (first, last) = match spec {
        Spec::Rank(start, end) => {
            let (a, b) = rank_window(start, end, z.len())?;
            // REV counts ranks from the top.
            let top = z.len() - 1;
            return Some(if rev { (top - b, top - a) } else { (a, b) });
        }
        Spec::Score(min, max) => z.ranks_by_score(min, max)?,
        Spec::Lex(min, max) => return lex_window(z, min, max, rev, offset.ok()?, usize::try_from(limit).ok()),
    };
    let offset = offset.ok()?;
    let n = last - first + 1;
    if offset >= n {
        return None;
    }
    let take = usize::try_from(limit).map_or(n - offset, |l| l.min(n - offset));
    if take == 0 {
        return None;
    }
    Some(if rev { (last - offset + 1 - take, last - offset) } else { (first + offset, first + offset + take - 1) })
}

/// The members of a window in reply order.
fn window_items(z: &ZSet, window: Option<(usize, usize)>, rev: bool) -> Vec<(&[u8], f64)> {
    match window {
        None => Vec::new(),
        Some((a, b)) if rev => z.range_by_rank(a, b).rev().collect(),
        Some((a, b)) => z.range_by_rank(a, b).collect(),
    }
}

// ---------------------------------------------------------------------------
// ZADD, ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD, ZCOUNT, ZLEXCOUNT, ZRANK
// ---------------------------------------------------------------------------

/// ZADD's flags.
#[derive(Debug, Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// Redis's `zaddGenericCommand` (ZINCRBY comes here with INCR set).
fn zadd_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], incr: bool) -> Result<Reply, Reply> {
    let key = args[1];
    let mut f = AddFlags { incr, ..AddFlags::default() };
    let mut i = 2;
    while let Some(a) = args.get(i) {
        let is = |name: &str| a.eq_ignore_ascii_case(name.as_bytes());
        if is("nx") {
            f.nx = true;
        } else if is("xx") {
            f.xx = true;
        } else if is("ch") {
            f.ch = true;
        } else if is("incr") {
            f.incr = true;
        } else if is("gt") {
            f.gt = true;
        } else if is("lt") {
            f.lt = true;
        } else {
            break;
        }
        i += 1;
    }
    let elements = args.len() - i;
    if elements == 0 || !elements.is_multiple_of(2) {
        return Err(Reply::error(err::SYNTAX));
    }
    if f.nx && f.xx {
        return Err(Reply::error("ERR XX and NX options at the same time are not compatible"));
    }
    if ((f.gt || f.lt) && f.nx) || (f.gt && f.lt) {
        return Err(Reply::error("ERR GT, LT, and/or NX options at the same time are not compatible"));
    }
    if f.incr && elements > 2 {
        return Err(Reply::error("ERR INCR option supports a single increment-element pair"));
    }
    let pairs = args[i..]
        .chunks_exact(2)
        .map(|p| parse_score(p[0]).map(|s| (s, p[1])))
        .collect::<Option<Vec<(f64, &[u8])>>>()
        .ok_or_else(|| Reply::error(err::NOT_FLOAT))?;
    let nothing = if f.incr { Reply::Nil } else { Reply::Int(0) };
    let z = peek(ctx, key)?;
    if z.is_none() && f.xx {
        return Ok(nothing);
    }
    // Members this command already set, so a member named twice sees its first change.
    let mut mine: HashMap<&[u8], f64> = HashMap::new();
    let mut record: Vec<(f64, &[u8])> = Vec::new();
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut last_score = 0.0;
    for &(score, member) in &pairs {
        let current = mine.get(member).copied().or_else(|| z.and_then(|z| z.score(member)));
        let new = match current {
            Some(cur) => {
                if f.nx {
                    continue;
                }
                let new = if f.incr { score + cur } else { score };
                if new.is_nan() {
                    return Err(Reply::error(NAN_RESULT));
                }
                if (f.lt && new >= cur) || (f.gt && new <= cur) {
                    continue;
                }
                if new == cur {
                    processed += 1;
                    last_score = canon(new);
                    continue;
                }
                updated += 1;
                new
            }
            None => {
                if f.xx {
                    continue;
                }
                added += 1;
                score
            }
        };
        let new = canon(new);
        processed += 1;
        last_score = new;
        mine.insert(member, new);
        record.push((new, member));
    }
    if !record.is_empty() {
        change(ctx, key, Change::ZAdd(record))?;
    }
    Ok(if f.incr {
        if processed > 0 {
            Reply::Double(last_score)
        } else {
            Reply::Nil
        }
    } else {
        Reply::Int(if f.ch { added + updated } else { added })
    })
}

/// [ZADD](https://redis.io/commands/zadd/): adds members or updates their
/// scores (NX, XX, GT, LT, CH, INCR); answers how many were added (or
/// changed, with CH), or the new score with INCR.
pub fn zadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zadd_generic(ctx, args, false))
}

/// [ZINCRBY](https://redis.io/commands/zincrby/): adds to a member's score (from 0); answers the new score.
pub fn zincrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zadd_generic(ctx, args, true))
}

/// [ZREM](https://redis.io/commands/zrem/): removes members; answers how many there were.
pub fn zrem(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zrem_inner(ctx, args))
}

fn zrem_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let key = args[1];
    let Some(z) = peek(ctx, key)? else { return Ok(Reply::Int(0)) };
    let mut seen = HashSet::new();
    let gone: Vec<Vec<u8>> = args[2..].iter().filter(|m| z.score(m).is_some() && seen.insert(**m)).map(|m| m.to_vec()).collect();
    let len = z.len();
    remove_members(ctx, key, &gone, len)?;
    Ok(Reply::Int(gone.len() as i64))
}

/// [ZSCORE](https://redis.io/commands/zscore/): a member's score, nil if absent.
pub fn zscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(read(ctx, args[1]).map(|z| z.and_then(|z| z.score(args[2])).map_or(Reply::Nil, Reply::Double)))
}

/// [ZMSCORE](https://redis.io/commands/zmscore/): the scores of several members, nil for each absent one.
pub fn zmscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(
        read(ctx, args[1])
            .map(|z| Reply::Array(args[2..].iter().map(|m| z.and_then(|z| z.score(m)).map_or(Reply::Nil, Reply::Double)).collect())),
    )
}

/// [ZCARD](https://redis.io/commands/zcard/): the number of members, 0 if missing.
pub fn zcard(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(read(ctx, args[1]).map(|z| Reply::Int(z.map_or(0, ZSet::len) as i64)))
}

/// [ZCOUNT](https://redis.io/commands/zcount/): members with scores in a range, in O(log n).
pub fn zcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(score_range(args[2], args[3]).and_then(|(min, max)| {
        let z = read(ctx, args[1])?;
        Ok(Reply::Int(z.map_or(0, |z| z.count_by_score(min, max)) as i64))
    }))
}

/// [ZLEXCOUNT](https://redis.io/commands/zlexcount/): members in a lex range, in O(log n).
pub fn zlexcount(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(lex_range(args[2], args[3]).and_then(|(min, max)| {
        let z = read(ctx, args[1])?;
        Ok(Reply::Int(z.map_or(0, |z| lex_count(z, min, max)) as i64))
    }))
}

fn rank_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], rev: bool) -> Result<Reply, Reply> {
    let Some(z) = read(ctx, args[1])? else { return Ok(Reply::Nil) };
    Ok(match z.rank(args[2]) {
        Some(r) if rev => Reply::Int((z.len() - 1 - r) as i64),
        Some(r) => Reply::Int(r as i64),
        None => Reply::Nil,
    })
}

/// [ZRANK](https://redis.io/commands/zrank/): a member's rank by ascending score, nil if absent.
pub fn zrank(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(rank_generic(ctx, args, false))
}

/// [ZREVRANK](https://redis.io/commands/zrevrank/): a member's rank by descending score, nil if absent.
pub fn zrevrank(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(rank_generic(ctx, args, true))
}

// ---------------------------------------------------------------------------
// ZRANGE and friends
// ---------------------------------------------------------------------------

/// What a ZRANGE-family command was called as.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// ZRANGE and ZRANGESTORE: chosen by BYSCORE/BYLEX, else by rank.
    Auto,
    Rank,
    Score,
    Lex,
}

/// Redis's `zrangeGenericCommand`: `args[key_at]` is the source, the two
/// bounds follow, then the options; `dst` is ZRANGESTORE's destination.
fn zrange_generic(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    key_at: usize,
    dst: Option<&[u8]>,
    kind: Kind,
    rev: Option<bool>,
) -> Result<Reply, Reply> {
    let key = args[key_at];
    let (mut kind, mut rev) = (kind, rev);
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = key_at + 3;
    while j < args.len() {
        let a = args[j];
        let left = args.len() - j - 1;
        let is = |name: &str| a.eq_ignore_ascii_case(name.as_bytes());
        if dst.is_none() && is("withscores") {
            withscores = true;
        } else if is("limit") && left >= 2 {
            offset = int_arg(args[j + 1])?;
            limit = int_arg(args[j + 2])?;
            j += 2;
        } else if rev.is_none() && is("rev") {
            rev = Some(true);
        } else if kind == Kind::Auto && is("bylex") {
            kind = Kind::Lex;
        } else if kind == Kind::Auto && is("byscore") {
            kind = Kind::Score;
        } else {
            return Err(Reply::error(err::SYNTAX));
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if kind == Kind::Auto {
        kind = Kind::Rank;
    }
    if limit != -1 && kind == Kind::Rank {
        return Err(Reply::error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"));
    }
    if withscores && kind == Kind::Lex {
        return Err(Reply::error("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    let (mut lo, mut hi) = (args[key_at + 1], args[key_at + 2]);
    if rev && kind != Kind::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let spec = match kind {
        Kind::Score => {
            let (min, max) = score_range(lo, hi)?;
            Spec::Score(min, max)
        }
        Kind::Lex => {
            let (min, max) = lex_range(lo, hi)?;
            Spec::Lex(min, max)
        }
        _ => Spec::Rank(int_arg(lo)?, int_arg(hi)?),
    };
    let Some(dst) = dst else {
        let Some(z) = read(ctx, key)? else { return Ok(Reply::Array(Vec::new())) };
        let window = select_window(z, spec, rev, offset, limit);
        return Ok(members_reply(window_items(z, window, rev).into_iter(), withscores));
    };
    let found: Owned = match read(ctx, key)? {
        None => Vec::new(),
        Some(z) => window_items(z, select_window(z, spec, rev, offset, limit), rev).into_iter().map(|(m, s)| (m.to_vec(), s)).collect(),
    };
    store(ctx, dst, found.iter().map(|(m, s)| (&m[..], *s)))
}

/// Writes a computed set to `dst` (a DEL when empty, as Redis) and answers its size.
fn store<'m>(ctx: &mut Ctx<'_>, dst: &[u8], items: impl Iterator<Item = (&'m [u8], f64)>) -> Result<Reply, Reply> {
    let mut z = ZSet::default();
    for (m, s) in items {
        z.insert(m, canon(s));
    }
    let n = z.len();
    let db = db8(ctx);
    if n == 0 {
        if ctx.shard.ks.contains(ctx.db, dst, ctx.now) {
            write(ctx, Op::Del { db, key: dst })?;
        }
    } else {
        write(ctx, Op::Store { db, key: dst, value: Cow::Owned(Value::ZSet(Box::new(z))), expire_ms: 0 })?;
    }
    Ok(Reply::Int(n as i64))
}

/// [ZRANGE](https://redis.io/commands/zrange/): members by rank, score
/// (BYSCORE) or lex (BYLEX), REV, LIMIT, WITHSCORES.
pub fn zrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zrange_generic(ctx, args, 1, None, Kind::Auto, None))
}

/// [ZRANGESTORE](https://redis.io/commands/zrangestore/): ZRANGE's selection stored at a destination; answers its size.
pub fn zrangestore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zrange_generic(ctx, args, 2, Some(args[1]), Kind::Auto, None))
}

/// [ZREVRANGE](https://redis.io/commands/zrevrange/): members by rank, highest first.
pub fn zrevrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zrange_generic(ctx, args, 1, None, Kind::Rank, Some(true)))
}

/// [ZRANGEBYSCORE](https://redis.io/commands/zrangebyscore/): members with scores in a range.
pub fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zrange_generic(ctx, args, 1, None, Kind::Score, Some(false)))
}

/// [ZREVRANGEBYSCORE](https://redis.io/commands/zrevrangebyscore/): members with scores in a range (max first), highest first.
pub fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zrange_generic(ctx, args, 1, None, Kind::Score, Some(true)))
}

/// [ZRANGEBYLEX](https://redis.io/commands/zrangebylex/): members in a lex range.
pub fn zrangebylex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zrange_generic(ctx, args, 1, None, Kind::Lex, Some(false)))
}

/// [ZREVRANGEBYLEX](https://redis.io/commands/zrevrangebylex/): members in a lex range (max first), highest first.
pub fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zrange_generic(ctx, args, 1, None, Kind::Lex, Some(true)))
}

// ---------------------------------------------------------------------------
// ZREMRANGEBY*
// ---------------------------------------------------------------------------

/// Redis's `zremrangeGenericCommand`.
fn zremrange_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], kind: Kind) -> Result<Reply, Reply> {
    let key = args[1];
    let spec = match kind {
        Kind::Score => {
            let (min, max) = score_range(args[2], args[3])?;
            Spec::Score(min, max)
        }
        Kind::Lex => {
            let (min, max) = lex_range(args[2], args[3])?;
            Spec::Lex(min, max)
        }
        _ => Spec::Rank(int_arg(args[2])?, int_arg(args[3])?),
    };
    let Some(z) = peek(ctx, key)? else { return Ok(Reply::Int(0)) };
    let gone: Vec<Vec<u8>> = window_items(z, select_window(z, spec, false, 0, -1), false).into_iter().map(|(m, _)| m.to_vec()).collect();
    let len = z.len();
    remove_members(ctx, key, &gone, len)?;
    Ok(Reply::Int(gone.len() as i64))
}

/// [ZREMRANGEBYRANK](https://redis.io/commands/zremrangebyrank/): removes members by rank; answers how many.
pub fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zremrange_generic(ctx, args, Kind::Rank))
}

/// [ZREMRANGEBYSCORE](https://redis.io/commands/zremrangebyscore/): removes members with scores in a range; answers how many.
pub fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zremrange_generic(ctx, args, Kind::Score))
}

/// [ZREMRANGEBYLEX](https://redis.io/commands/zremrangebylex/): removes members in a lex range; answers how many.
pub fn zremrangebylex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zremrange_generic(ctx, args, Kind::Lex))
}

// ---------------------------------------------------------------------------
// Pops
// ---------------------------------------------------------------------------

/// Pops up to `count` members from the lowest (`max` false) or highest end of the set at `key`, which exists.
fn pop(ctx: &mut Ctx<'_>, key: &[u8], max: bool, count: usize) -> Result<Owned, Reply> {
    let (items, len): (Owned, usize) = {
        let Some(z) = peek(ctx, key)? else { return Ok(Vec::new()) };
        let n = count.min(z.len());
        let items = if max {
            z.iter().rev().take(n).map(|(m, s)| (m.to_vec(), s)).collect()
        } else {
            z.iter().take(n).map(|(m, s)| (m.to_vec(), s)).collect()
        };
        (items, z.len())
    };
    let members: Vec<Vec<u8>> = items.iter().map(|(m, _)| m.clone()).collect();
    remove_members(ctx, key, &members, len)?;
    Ok(items)
}

fn zpop_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], max: bool) -> Result<Reply, Reply> {
    if args.len() > 3 {
        return Err(Reply::error(err::SYNTAX));
    }
    let count = match args.get(2) {
        Some(c) => Some(positive_long(c, "ERR value is out of range, must be positive")?),
        None => None,
    };
    let key = args[1];
    if peek(ctx, key)?.is_none() || count == Some(0) {
        return Ok(Reply::Array(Vec::new()));
    }
    let items = pop(ctx, key, max, count.map_or(1, |c| c as usize))?;
    let it = items.iter().map(|(m, s)| (&m[..], *s));
    Ok(match count {
        // Without a count: a flat [member, score] in both protocols.
        None => Reply::Array(it.flat_map(|(m, s)| [Reply::bulk(m), Reply::Double(s)]).collect()),
        Some(_) => members_reply(it, true),
    })
}

/// [ZPOPMIN](https://redis.io/commands/zpopmin/): removes and answers the lowest-scored members.
pub fn zpopmin(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zpop_generic(ctx, args, false))
}

/// [ZPOPMAX](https://redis.io/commands/zpopmax/): removes and answers the highest-scored members.
pub fn zpopmax(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zpop_generic(ctx, args, true))
}

/// BZPOPMIN/BZPOPMAX: the first non-empty set's end as `[key, member, score]`, else block.
fn bzpop_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], max: bool) -> Result<Reply, Reply> {
    let last = args.len() - 1;
    let timeout = timeout_arg(args[last])?;
    let keys = &args[1..last];
    for &key in keys {
        if peek(ctx, key)?.is_none() {
            continue;
        }
        let items = pop(ctx, key, max, 1)?;
        let mut out = vec![Reply::bulk(key)];
        for (m, s) in items {
            out.push(Reply::Bulk(m));
            out.push(Reply::Double(s));
        }
        return Ok(Reply::Array(out));
    }
    Ok(ctx.block(keys, timeout, Reply::NilArray))
}

/// [BZPOPMIN](https://redis.io/commands/bzpopmin/): ZPOPMIN over several keys, waiting up to a timeout for one to have members.
pub fn bzpopmin(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(bzpop_generic(ctx, args, false))
}

/// [BZPOPMAX](https://redis.io/commands/bzpopmax/): ZPOPMAX over several keys, waiting up to a timeout for one to have members.
pub fn bzpopmax(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(bzpop_generic(ctx, args, true))
}

/// Redis's `zmpopGenericCommand`: `args[numkeys_at]` is numkeys; the
/// timeout of BZMPOP is `args[1]`.
fn zmpop_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], numkeys_at: usize, blocking: bool) -> Result<Reply, Reply> {
    let numkeys = at_least_one(args[numkeys_at], "ERR numkeys should be greater than 0")?;
    let where_at = usize::try_from(numkeys).ok().and_then(|n| n.checked_add(numkeys_at + 1)).filter(|&w| w < args.len());
    let Some(where_at) = where_at else { return Err(Reply::error(err::SYNTAX)) };
    let max = if args[where_at].eq_ignore_ascii_case(b"min") {
        false
    } else if args[where_at].eq_ignore_ascii_case(b"max") {
        true
    } else {
        return Err(Reply::error(err::SYNTAX));
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            count = Some(at_least_one(args[j + 1], "ERR count should be greater than 0")?);
            j += 2;
        } else {
            return Err(Reply::error(err::SYNTAX));
        }
    }
    let count = count.unwrap_or(1) as usize;
    let timeout = if blocking { timeout_arg(args[1])? } else { None };
    let keys = &args[numkeys_at + 1..where_at];
    for &key in keys {
        if peek(ctx, key)?.is_none() {
            continue;
        }
        let items = pop(ctx, key, max, count)?;
        let pairs = items.into_iter().map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)])).collect();
        return Ok(Reply::Array(vec![Reply::bulk(key), Reply::Array(pairs)]));
    }
    Ok(if blocking { ctx.block(keys, timeout, Reply::NilArray) } else { Reply::NilArray })
}

/// [ZMPOP](https://redis.io/commands/zmpop/): pops from the first non-empty set of several; `[key, [[member, score] ...]]`.
pub fn zmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zmpop_generic(ctx, args, 1, false))
}

/// [BZMPOP](https://redis.io/commands/bzmpop/): ZMPOP, waiting up to a timeout for a set to have members.
pub fn bzmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zmpop_generic(ctx, args, 2, true))
}

// ---------------------------------------------------------------------------
// ZUNION, ZINTER, ZDIFF and their STORE forms, ZINTERCARD
// ---------------------------------------------------------------------------

/// The set operation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

/// AGGREGATE.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Redis's `zunionInterAggregate`: a sum that is NaN (inf + -inf) is 0;
/// MIN and MAX keep the current value when the new one is NaN.
fn aggregate(target: &mut f64, val: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val;
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

/// One input of a set operation: a sorted set, or a plain set whose members score 1.
#[derive(Clone, Copy)]
enum Src<'a> {
    Missing,
    Z(&'a ZSet),
    S(&'a Set),
}

impl<'a> Src<'a> {
    fn len(&self) -> usize {
        match self {
            Src::Missing => 0,
            Src::Z(z) => z.len(),
            Src::S(s) => s.len(),
        }
    }

    fn find(&self, m: &[u8]) -> Option<f64> {
        match self {
            Src::Missing => None,
            Src::Z(z) => z.score(m),
            Src::S(s) => s.contains_key(m).then_some(1.0),
        }
    }

    fn for_each(&self, mut f: impl FnMut(&'a [u8], f64)) {
        match *self {
            Src::Missing => {}
            Src::Z(z) => z.iter().for_each(|(m, s)| f(m, s)),
            Src::S(s) => {
                let d: &'a Dict<()> = s;
                d.iter().for_each(|(m, _)| f(m, 1.0));
            }
        }
    }
}

/// The parsed options of a set operation.
struct SetOpArgs {
    weights: Vec<f64>,
    how: Aggregate,
    withscores: bool,
    limit: usize,
}

/// Redis's option loop of `zunionInterDiffGenericCommand`, from `args[j..]`.
fn setop_options(args: &[&[u8]], mut j: usize, n: usize, op: SetOp, store: bool, card: bool) -> Result<SetOpArgs, Reply> {
    let mut o = SetOpArgs { weights: vec![1.0; n], how: Aggregate::Sum, withscores: false, limit: 0 };
    while j < args.len() {
        let a = args[j];
        let remaining = args.len() - j;
        let is = |name: &str| a.eq_ignore_ascii_case(name.as_bytes());
        if op != SetOp::Diff && !card && remaining > n && is("weights") {
            for (i, w) in o.weights.iter_mut().enumerate() {
                *w = parse_score(args[j + 1 + i]).ok_or_else(|| Reply::error("ERR weight value is not a float"))?;
            }
            j += 1 + n;
        } else if op != SetOp::Diff && !card && remaining >= 2 && is("aggregate") {
            let v = args[j + 1];
            o.how = if v.eq_ignore_ascii_case(b"sum") {
                Aggregate::Sum
            } else if v.eq_ignore_ascii_case(b"min") {
                Aggregate::Min
            } else if v.eq_ignore_ascii_case(b"max") {
                Aggregate::Max
            } else {
                return Err(Reply::error(err::SYNTAX));
            };
            j += 2;
        } else if !store && !card && is("withscores") {
            o.withscores = true;
            j += 1;
        } else if card && remaining >= 2 && is("limit") {
            o.limit = positive_long(args[j + 1], "ERR LIMIT can't be negative")? as usize;
            j += 2;
        } else {
            return Err(Reply::error(err::SYNTAX));
        }
    }
    Ok(o)
}

/// The result of a set operation over `srcs` (each with its weight).
fn combine<'a>(srcs: &[(Src<'a>, f64)], op: SetOp, how: Aggregate, card_limit: Option<usize>) -> (Vec<(&'a [u8], f64)>, usize) {
    let mut out: Vec<(&'a [u8], f64)> = Vec::new();
    let mut card = 0usize;
    match op {
        SetOp::Union => {
            let mut acc: HashMap<&'a [u8], f64> = HashMap::new();
            for &(src, w) in srcs {
                src.for_each(|m, s| {
                    let mut score = w * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    acc.entry(m).and_modify(|t| aggregate(t, score, how)).or_insert(score);
                });
            }
            out.extend(acc);
        }
        SetOp::Inter => {
            let Some(&(first, w0)) = srcs.first() else { return (out, 0) };
            let mut done = false;
            first.for_each(|m, s| {
                if done {
                    return;
                }
                let mut score = w0 * s;
                if score.is_nan() {
                    score = 0.0;
                }
                for &(src, w) in &srcs[1..] {
                    match src.find(m) {
                        Some(v) => aggregate(&mut score, v * w, how),
                        None => return,
                    }
                }
                match card_limit {
                    Some(limit) => {
                        card += 1;
                        done = limit > 0 && card >= limit;
                    }
                    None => out.push((m, score)),
                }
            });
        }
        SetOp::Diff => {
            let Some(&(first, _)) = srcs.first() else { return (out, 0) };
            first.for_each(|m, s| {
                if srcs[1..].iter().all(|(src, _)| src.find(m).is_none()) {
                    out.push((m, s));
                }
            });
        }
    }
    (out, card)
}

/// Redis's `zunionInterDiffGenericCommand`: `args[numkeys_at]` is numkeys; `dst` the *STORE destination; `card` ZINTERCARD.
fn setop_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], dst: Option<&[u8]>, numkeys_at: usize, op: SetOp, card: bool) -> Result<Reply, Reply> {
    let setnum = int_arg(args[numkeys_at])?;
    if setnum < 1 {
        let name = String::from_utf8_lossy(args[0]).to_ascii_lowercase();
        return Err(Reply::error(format!("ERR at least 1 input key is needed for '{name}' command")));
    }
    let first = numkeys_at + 1;
    if setnum as u64 > (args.len() - first) as u64 {
        return Err(Reply::error(err::SYNTAX));
    }
    let n = setnum as usize;
    let keys = &args[first..first + n];
    // Type checks first (and the read counters), as Redis does before the options.
    for key in keys {
        let e =
            if dst.is_some() { ctx.shard.ks.peek(ctx.db, key, ctx.now) } else { ctx.shard.ks.lookup(ctx.db, key, ctx.now).map(|e| &*e) };
        if let Some(e) = e {
            if !matches!(e.value, Value::ZSet(_) | Value::Set(_)) {
                return Err(Reply::error(err::WRONGTYPE));
            }
        }
    }
    let o = setop_options(args, first + n, n, op, dst.is_some(), card)?;
    let found: Owned = {
        let ks = &ctx.shard.ks;
        let mut srcs: Vec<(Src<'_>, f64)> = keys
            .iter()
            .zip(&o.weights)
            .map(|(k, &w)| {
                let src = match ks.peek(ctx.db, k, ctx.now).map(|e| &e.value) {
                    Some(Value::ZSet(z)) => Src::Z(z),
                    Some(Value::Set(s)) => Src::S(s),
                    _ => Src::Missing,
                };
                (src, w)
            })
            .collect();
        if op != SetOp::Diff {
            // Smallest first, as Redis: the order the scores are added in.
            srcs.sort_by_key(|(s, _)| s.len());
        }
        let (items, count) = combine(&srcs, op, o.how, card.then_some(o.limit));
        if card {
            return Ok(Reply::Int(count as i64));
        }
        if dst.is_none() {
            let mut z = ZSet::default();
            for (m, s) in items {
                z.insert(m, canon(s));
            }
            return Ok(members_reply(z.iter(), o.withscores));
        }
        items.into_iter().map(|(m, s)| (m.to_vec(), s)).collect()
    };
    match dst {
        Some(dst) => store(ctx, dst, found.iter().map(|(m, s)| (&m[..], *s))),
        None => Ok(Reply::Array(Vec::new())),
    }
}

/// [ZUNIONSTORE](https://redis.io/commands/zunionstore/): the union of sets (WEIGHTS, AGGREGATE) stored; answers its size.
pub fn zunionstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(setop_generic(ctx, args, Some(args[1]), 2, SetOp::Union, false))
}

/// [ZINTERSTORE](https://redis.io/commands/zinterstore/): the intersection of sets (WEIGHTS, AGGREGATE) stored; answers its size.
pub fn zinterstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(setop_generic(ctx, args, Some(args[1]), 2, SetOp::Inter, false))
}

/// [ZDIFFSTORE](https://redis.io/commands/zdiffstore/): the first set less the others, stored; answers its size.
pub fn zdiffstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(setop_generic(ctx, args, Some(args[1]), 2, SetOp::Diff, false))
}

/// [ZUNION](https://redis.io/commands/zunion/): the union of sets (WEIGHTS, AGGREGATE, WITHSCORES).
pub fn zunion(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(setop_generic(ctx, args, None, 1, SetOp::Union, false))
}

/// [ZINTER](https://redis.io/commands/zinter/): the intersection of sets (WEIGHTS, AGGREGATE, WITHSCORES).
pub fn zinter(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(setop_generic(ctx, args, None, 1, SetOp::Inter, false))
}

/// [ZDIFF](https://redis.io/commands/zdiff/): the first set less the others (WITHSCORES).
pub fn zdiff(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(setop_generic(ctx, args, None, 1, SetOp::Diff, false))
}

/// [ZINTERCARD](https://redis.io/commands/zintercard/): the size of the intersection, counting up to LIMIT.
pub fn zintercard(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(setop_generic(ctx, args, None, 1, SetOp::Inter, true))
}

// ---------------------------------------------------------------------------
// ZRANDMEMBER, ZSCAN
// ---------------------------------------------------------------------------

/// ZRANDMEMBER with a negative count answers at most this many picks; more is refused
/// with "value is out of range" rather than building a reply of gigabytes.
const MAX_RANDOM_REPLY: u64 = 1 << 22;

/// [ZRANDMEMBER](https://redis.io/commands/zrandmember/): a random member;
/// with a count, that many distinct ones (negative: with repeats), WITHSCORES.
pub fn zrandmember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zrandmember_inner(ctx, args))
}

fn zrandmember_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let mut rng = || rand::random::<u64>();
    let Some(count_arg) = args.get(2) else {
        let Some(z) = read(ctx, args[1])? else { return Ok(Reply::Nil) };
        return Ok(z.dict().random_entry(&mut rng).map_or(Reply::Nil, |(m, _)| Reply::bulk(m)));
    };
    let l = int_arg(count_arg)?;
    if l == i64::MIN {
        return Err(Reply::error(format!("ERR value is out of range, value must between {} and {}", -i64::MAX, i64::MAX)));
    }
    let withscores = match args.len() {
        3 => false,
        4 if args[3].eq_ignore_ascii_case(b"withscores") => true,
        _ => return Err(Reply::error(err::SYNTAX)),
    };
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        return Err(Reply::error("ERR value is out of range"));
    }
    let Some(z) = read(ctx, args[1])? else { return Ok(Reply::Array(Vec::new())) };
    let count = l.unsigned_abs();
    if count == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    let size = z.len();
    let picks: Vec<(&[u8], f64)> = if l < 0 || count == 1 {
        // With repeats: independent fair picks.
        if count > MAX_RANDOM_REPLY {
            return Err(Reply::error("ERR value is out of range"));
        }
        (0..count).filter_map(|_| z.dict().random_entry(&mut rng).map(|(m, s)| (m, *s))).collect()
    } else if count as usize >= size {
        z.iter().collect()
    } else if (count as usize) * 3 > size {
        // Most of the set: drop random members from a copy (Redis's case 3).
        let mut all: Vec<(&[u8], f64)> = z.iter().collect();
        while all.len() > count as usize {
            let i = (rng() % all.len() as u64) as usize;
            all.swap_remove(i);
        }
        all
    } else {
        // A few: pick until that many distinct (Redis's case 4).
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(count as usize);
        while out.len() < count as usize {
            if let Some((m, s)) = z.dict().random_entry(&mut rng) {
                if seen.insert(m) {
                    out.push((m, *s));
                }
            }
        }
        out
    };
    Ok(members_reply(picks.into_iter(), withscores))
}

/// Redis's default `zset-max-listpack-entries` and `zset-max-listpack-value`:
/// ZSCAN answers a set within both in one step, as Redis does.
const LISTPACK_ENTRIES: usize = 128;
const LISTPACK_VALUE: usize = 64;

/// [ZSCAN](https://redis.io/commands/zscan/): one step of an iteration over members and scores (MATCH, COUNT).
pub fn zscan(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(zscan_inner(ctx, args))
}

fn zscan_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let cursor = scan_cursor(args[2])?;
    let Some(z) = read(ctx, args[1])? else {
        return Ok(empty_scan());
    };
    let opts = CollScan::parse(args)?;
    let emit = |m: &[u8], s: f64, items: &mut Vec<Reply>| {
        items.push(Reply::bulk(m));
        let mut text = Vec::new();
        format_double(s, &mut text);
        items.push(Reply::Bulk(text));
    };
    // A set Redis would keep as a listpack comes back whole, in order, with cursor 0.
    if z.len() <= LISTPACK_ENTRIES && z.iter().all(|(m, _)| m.len() <= LISTPACK_VALUE) {
        let mut items = Vec::new();
        z.iter().filter(|(m, _)| opts.wants(m)).for_each(|(m, s)| emit(m, s, &mut items));
        return Ok(Reply::Array(vec![Reply::bulk("0"), Reply::Array(items)]));
    }
    Ok(opts.step(z.dict(), cursor, |m, s, items| emit(m, *s, items)))
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

const W_DENY_FAST: u32 = flags::WRITE | flags::DENYOOM | flags::FAST;
const W_DENY: u32 = flags::WRITE | flags::DENYOOM;
const W_FAST: u32 = flags::WRITE | flags::FAST;
const R_FAST: u32 = flags::READONLY | flags::FAST;
const BLOCK_FAST: u32 = flags::WRITE | flags::NOSCRIPT | flags::BLOCKING | flags::FAST;
const BLOCK: u32 = flags::WRITE | flags::BLOCKING;
const READ_FAST: &[&str] = &["@read", "@sortedset", "@fast"];
const READ_SLOW: &[&str] = &["@read", "@sortedset", "@slow"];
const WRITE_FAST: &[&str] = &["@write", "@sortedset", "@fast"];
const WRITE_SLOW: &[&str] = &["@write", "@sortedset", "@slow"];
const BLOCKING_FAST: &[&str] = &["@write", "@sortedset", "@fast", "@blocking"];
const BLOCKING_SLOW: &[&str] = &["@write", "@sortedset", "@slow", "@blocking"];

const TWO: (i32, i32, i32) = (1, 2, 1);
/// BZPOPMIN/BZPOPMAX: every argument but the timeout.
const BEFORE_TIMEOUT: (i32, i32, i32) = (1, -2, 1);
/// ZUNION, ZINTER, ZDIFF, ZINTERCARD, ZMPOP: the first key after numkeys, for COMMAND INFO (the dispatcher finds the rest).
const AFTER_NUMKEYS: (i32, i32, i32) = (2, 2, 1);
/// BZMPOP: the first key after timeout and numkeys.
const AFTER_TIMEOUT_NUMKEYS: (i32, i32, i32) = (3, 3, 1);

/// The sorted-set commands.
pub const COMMANDS: &[Command] = &[
    entry("zadd", -4, W_DENY_FAST, ONE, zadd, WRITE_FAST, "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist."),
    entry("zincrby", 4, W_DENY_FAST, ONE, zincrby, WRITE_FAST, "Increments the score of a member in a sorted set."),
    entry("zrem", -3, W_FAST, ONE, zrem, WRITE_FAST, "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed."),
    entry("zscore", 3, R_FAST, ONE, zscore, READ_FAST, "Returns the score of a member in a sorted set."),
    entry("zmscore", -3, R_FAST, ONE, zmscore, READ_FAST, "Returns the score of one or more members in a sorted set."),
    entry("zcard", 2, R_FAST, ONE, zcard, READ_FAST, "Returns the number of members in a sorted set."),
    entry("zcount", 4, R_FAST, ONE, zcount, READ_FAST, "Returns the count of members in a sorted set that have scores within a range."),
    entry("zlexcount", 4, R_FAST, ONE, zlexcount, READ_FAST, "Returns the number of members in a sorted set within a lexicographical range."),
    entry("zrank", 3, R_FAST, ONE, zrank, READ_FAST, "Returns the index of a member in a sorted set ordered by ascending scores."),
    entry("zrevrank", 3, R_FAST, ONE, zrevrank, READ_FAST, "Returns the index of a member in a sorted set ordered by descending scores."),
    entry("zrange", -4, flags::READONLY, ONE, zrange, READ_SLOW, "Returns members in a sorted set within a range of indexes."),
    entry("zrangestore", -5, W_DENY, TWO, zrangestore, WRITE_SLOW, "Stores a range of members from sorted set in a key."),
    entry("zrevrange", -4, flags::READONLY, ONE, zrevrange, READ_SLOW, "Returns members in a sorted set within a range of indexes in reverse order."),
    entry("zrangebyscore", -4, flags::READONLY, ONE, zrangebyscore, READ_SLOW, "Returns members in a sorted set within a range of scores."),
    entry(
        "zrevrangebyscore",
        -4,
        flags::READONLY,
        ONE,
        zrevrangebyscore,
        READ_SLOW,
        "Returns members in a sorted set within a range of scores in reverse order.",
    ),
    entry("zrangebylex", -4, flags::READONLY, ONE, zrangebylex, READ_SLOW, "Returns members in a sorted set within a lexicographical range."),
    entry(
        "zrevrangebylex",
        -4,
        flags::READONLY,
        ONE,
        zrevrangebylex,
        READ_SLOW,
        "Returns members in a sorted set within a lexicographical range in reverse order.",
    ),
    entry("zpopmin", -2, W_FAST, ONE, zpopmin, WRITE_FAST, "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped."),
    entry("zpopmax", -2, W_FAST, ONE, zpopmax, WRITE_FAST, "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped."),
    entry(
        "bzpopmin",
        -3,
        BLOCK_FAST,
        BEFORE_TIMEOUT,
        bzpopmin,
        BLOCKING_FAST,
        "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
    ),
    entry(
        "bzpopmax",
        -3,
        BLOCK_FAST,
        BEFORE_TIMEOUT,
        bzpopmax,
        BLOCKING_FAST,
        "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.",
    ),
    entry("zmpop", -4, flags::WRITE | flags::MOVABLEKEYS, AFTER_NUMKEYS, zmpop, WRITE_SLOW, "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped."),
    entry(
        "bzmpop",
        -5,
        BLOCK | flags::MOVABLEKEYS,
        AFTER_TIMEOUT_NUMKEYS,
        bzmpop,
        BLOCKING_SLOW,
        "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.",
    ),
    entry("zremrangebyrank", 4, flags::WRITE, ONE, zremrangebyrank, WRITE_SLOW, "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed."),
    entry("zremrangebyscore", 4, flags::WRITE, ONE, zremrangebyscore, WRITE_SLOW, "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed."),
    entry("zremrangebylex", 4, flags::WRITE, ONE, zremrangebylex, WRITE_SLOW, "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed."),
    entry("zunionstore", -4, W_DENY | flags::MOVABLEKEYS, ONE, zunionstore, WRITE_SLOW, "Stores the union of multiple sorted sets in a key."),
    entry("zinterstore", -4, W_DENY | flags::MOVABLEKEYS, ONE, zinterstore, WRITE_SLOW, "Stores the intersect of multiple sorted sets in a key."),
    entry("zdiffstore", -4, W_DENY | flags::MOVABLEKEYS, ONE, zdiffstore, WRITE_SLOW, "Stores the difference of multiple sorted sets in a key."),
    entry("zunion", -3, flags::READONLY | flags::MOVABLEKEYS, AFTER_NUMKEYS, zunion, READ_SLOW, "Returns the union of multiple sorted sets."),
    entry("zinter", -3, flags::READONLY | flags::MOVABLEKEYS, AFTER_NUMKEYS, zinter, READ_SLOW, "Returns the intersect of multiple sorted sets."),
    entry("zdiff", -3, flags::READONLY | flags::MOVABLEKEYS, AFTER_NUMKEYS, zdiff, READ_SLOW, "Returns the difference between multiple sorted sets."),
    entry("zintercard", -3, flags::READONLY | flags::MOVABLEKEYS, AFTER_NUMKEYS, zintercard, READ_SLOW, "Returns the number of members of the intersect of multiple sorted sets."),
    entry("zrandmember", -2, flags::READONLY, ONE, zrandmember, READ_SLOW, "Returns one or more random members from a sorted set."),
    entry("zscan", -3, flags::READONLY, ONE, zscan, READ_SLOW, "Iterates over members and scores of a sorted set."),
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn score_arguments_as_getdoublefromobject() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"1e3"), Some(1000.0));
        assert_eq!(parse_score(b"5."), Some(5.0));
        assert_eq!(parse_score(b".5"), Some(0.5));
        assert_eq!(parse_score(b"0x10"), Some(16.0));
        assert_eq!(parse_score(b"0x1.8p1"), Some(3.0));
        assert_eq!(parse_score(b"-0"), Some(-0.0));
        assert_eq!(parse_score(b"1e-310"), Some(1e-310));
        assert_eq!(parse_score(b"0e-999"), Some(0.0));
        for bad in
            [&b""[..], b" 1", b"1 ", b"nan", b"NaN", b"1e999", b"-1e999", b"1e-400", b"abc", b"1e", b"0x", b"1_0", b"--1", b"+-1", b"0x1p"]
        {
            assert_eq!(parse_score(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn range_bounds_as_zslparserange() {
        assert_eq!(score_bound(b"(1.5"), Some(Bound::Excluded(1.5)));
        assert_eq!(score_bound(b"1.5"), Some(Bound::Included(1.5)));
        assert_eq!(score_bound(b""), Some(Bound::Included(0.0)));
        assert_eq!(score_bound(b"("), Some(Bound::Excluded(0.0)));
        assert_eq!(score_bound(b" 5"), Some(Bound::Included(5.0)));
        assert_eq!(score_bound(b"1e999"), Some(Bound::Included(f64::INFINITY)));
        assert_eq!(score_bound(b"-inf"), Some(Bound::Included(f64::NEG_INFINITY)));
        for bad in [&b"nan"[..], b"(nan", b"x", b"1 ", b"((1", b" "] {
            assert_eq!(score_bound(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(score_range(b"x", b"1").unwrap_err(), Reply::error(MIN_MAX_NOT_FLOAT));
    }

    #[test]
    fn lex_items() {
        assert_eq!(lex_item(b"-"), Some(Lex::Min));
        assert_eq!(lex_item(b"+"), Some(Lex::Max));
        assert_eq!(lex_item(b"[a"), Some(Lex::Incl(b"a")));
        assert_eq!(lex_item(b"(a"), Some(Lex::Excl(b"a")));
        assert_eq!(lex_item(b"["), Some(Lex::Incl(b"")));
        for bad in [&b""[..], b"a", b"-a", b"+a"] {
            assert_eq!(lex_item(bad), None);
        }
    }

    fn zset(pairs: &[(&str, f64)]) -> ZSet {
        let mut z = ZSet::default();
        for (m, s) in pairs {
            z.insert(m.as_bytes(), *s);
        }
        z
    }

    fn names(z: &ZSet, w: Option<(usize, usize)>, rev: bool) -> Vec<String> {
        window_items(z, w, rev).into_iter().map(|(m, _)| String::from_utf8_lossy(m).into_owned()).collect()
    }

    #[test]
    fn windows() {
        let z = zset(&[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0), ("e", 5.0)]);
        let all = Spec::Score(Bound::Included(f64::NEG_INFINITY), Bound::Included(f64::INFINITY));
        assert_eq!(names(&z, select_window(&z, all, false, 1, 2), false), ["b", "c"]);
        assert_eq!(names(&z, select_window(&z, all, true, 1, 2), true), ["d", "c"]);
        assert_eq!(names(&z, select_window(&z, all, false, 3, -5), false), ["d", "e"]);
        assert_eq!(select_window(&z, all, false, -1, 2), None);
        assert_eq!(select_window(&z, all, false, 5, 2), None);
        assert_eq!(select_window(&z, all, false, 0, 0), None);
        assert_eq!(names(&z, select_window(&z, Spec::Rank(0, 1), true, 0, -1), true), ["e", "d"]);
        assert_eq!(names(&z, select_window(&z, Spec::Rank(-2, 100), false, 0, -1), false), ["d", "e"]);
        assert_eq!(select_window(&z, Spec::Rank(3, 1), false, 0, -1), None);
        assert_eq!(select_window(&z, Spec::Rank(5, 10), false, 0, -1), None);
        let lex = zset(&[("a", 0.0), ("b", 0.0), ("c", 0.0)]);
        assert_eq!(names(&lex, select_window(&lex, Spec::Lex(Lex::Excl(b"a"), Lex::Max), false, 0, -1), false), ["b", "c"]);
        assert_eq!(select_window(&lex, Spec::Lex(Lex::Max, Lex::Max), false, 0, -1), None);
        assert_eq!(select_window(&lex, Spec::Lex(Lex::Min, Lex::Min), false, 0, -1), None);
        assert_eq!(select_window(&lex, Spec::Lex(Lex::Excl(b"b"), Lex::Incl(b"b")), false, 0, -1), None);
    }

    fn sorted(mut v: Vec<(&[u8], f64)>) -> Vec<(String, f64)> {
        v.sort_by(|a, b| a.0.cmp(b.0));
        v.into_iter().map(|(m, s)| (String::from_utf8_lossy(m).into_owned(), s)).collect()
    }

    #[test]
    fn plain_sets_count_as_score_one() {
        let z = zset(&[("a", 2.0), ("b", 3.0), ("c", f64::INFINITY)]);
        let mut set = Set::default();
        for m in ["b", "c", "d"] {
            set.insert(m.as_bytes(), ());
        }
        let srcs = [(Src::Z(&z), 1.0), (Src::S(&set), 10.0)];
        let s = |m: &str, v: f64| (m.to_string(), v);
        let (u, _) = combine(&srcs, SetOp::Union, Aggregate::Sum, None);
        assert_eq!(sorted(u), [s("a", 2.0), s("b", 13.0), s("c", f64::INFINITY), s("d", 10.0)]);
        let (i, _) = combine(&srcs, SetOp::Inter, Aggregate::Max, None);
        assert_eq!(sorted(i), [s("b", 10.0), s("c", f64::INFINITY)]);
        let (d, _) = combine(&srcs, SetOp::Diff, Aggregate::Sum, None);
        assert_eq!(sorted(d), [s("a", 2.0)]);
        let (d, _) = combine(&[(Src::S(&set), 1.0), (Src::Z(&z), 1.0)], SetOp::Diff, Aggregate::Sum, None);
        assert_eq!(sorted(d), [s("d", 1.0)]);
        // 0 * inf is NaN: 0 for the first input, and it poisons a SUM to 0 (Redis's rules).
        let (i, _) = combine(&[(Src::Z(&z), 0.0), (Src::S(&set), 1.0)], SetOp::Inter, Aggregate::Sum, None);
        assert_eq!(sorted(i), [s("b", 1.0), s("c", 1.0)]);
        let (_, n) = combine(&srcs, SetOp::Inter, Aggregate::Sum, Some(1));
        assert_eq!(n, 1);
        let (_, n) = combine(&srcs, SetOp::Inter, Aggregate::Sum, Some(0));
        assert_eq!(n, 2);
        let (u, _) = combine(&[(Src::Missing, 1.0), (Src::S(&set), 2.0)], SetOp::Union, Aggregate::Min, None);
        assert_eq!(sorted(u), [s("b", 2.0), s("c", 2.0), s("d", 2.0)]);
    }

    #[test]
    fn aggregates_as_redis() {
        let mut t = f64::INFINITY;
        aggregate(&mut t, f64::NEG_INFINITY, Aggregate::Sum);
        assert_eq!(t, 0.0);
        let mut t = 1.0;
        aggregate(&mut t, f64::NAN, Aggregate::Min);
        assert_eq!(t, 1.0);
        aggregate(&mut t, 0.5, Aggregate::Min);
        assert_eq!(t, 0.5);
        aggregate(&mut t, 3.0, Aggregate::Max);
        assert_eq!(t, 3.0);
    }
}
