//! String commands: <https://redis.io/commands/?group=string>.
//!
//! Every handler runs on the shard that owns its key(s) (MGET is split by
//! shard and merged). Reads go through [`Keyspace::lookup`] (hit/miss
//! counters, lazy expiry, LRU/LFU touch) for the commands Redis reads with
//! `lookupKeyRead`, and through [`Keyspace::peek`] where Redis uses
//! `lookupKeyWrite`. Every change is one [`Op`] written with
//! [`Keyspace::write`], after all checks (type, syntax, numbers) passed, so
//! a refused command changes nothing. The argument parsers Redis shares
//! between commands (`string2ll`, `strtold`, the expire options) live here
//! as `pub(crate)` helpers for [`super::keys`] too.

use strand_engine::keyspace::{Entry, Keyspace, Op, Value};

use super::{arity_error, err, flags, one_key, Command, Ctx, Route};
use crate::reply::Reply;

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// Redis's `string2ll`: an optional `-`, then digits without leading zeros
/// (except `0` itself), fitting an i64, at most 20 bytes; nothing else.
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    if negative {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Redis's `getIntFromObject`: an integer that fits a C `int`.
/// Errors as Redis: not an integer, or the out-of-range message.
pub(crate) fn parse_int(s: &[u8]) -> Result<i32, Reply> {
    let v = parse_i64(s).ok_or_else(|| Reply::error(err::NOT_INTEGER))?;
    i32::try_from(v).map_err(|_| Reply::error(format!("ERR value is out of range, value must between {} and {}", i32::MIN, i32::MAX)))
}

/// Redis's `string2ld` (`strtold` on the whole argument): no leading
/// space, nothing left over, not NaN, no overflow. Accepts `inf`,
/// `-infinity`, `1e3`, `.5`, `+5.`; hexadecimal floats are not accepted.
pub(crate) fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() >= 5 * 1024 {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let v: f64 = text.parse().ok()?;
    if v.is_nan() {
        return None;
    }
    // A finite literal too large for a double overflows (strtold: ERANGE).
    if v.is_infinite() && !is_inf_literal(text) {
        return None;
    }
    Some(v)
}

/// Whether `text` spells infinity (`inf`, `-Infinity` ...), rather than overflowing to it.
fn is_inf_literal(text: &str) -> bool {
    let t = text.trim_start_matches(['+', '-']);
    t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity")
}

/// Parses an integer argument, answering Redis's error if it is not one.
pub(crate) fn int_arg(s: &[u8]) -> Result<i64, Reply> {
    parse_i64(s).ok_or_else(|| Reply::error(err::NOT_INTEGER))
}

/// Redis's `invalid expire time in '<cmd>' command` error.
pub(crate) fn expire_time_error(cmd: &str) -> Reply {
    Reply::error(format!("ERR invalid expire time in '{cmd}' command"))
}

/// The string of an entry, or WRONGTYPE for any other type.
pub(crate) fn as_str(e: &Entry) -> Result<&[u8], Reply> {
    match &e.value {
        Value::Str(s) => Ok(s),
        #[allow(unreachable_patterns)]
        _ => Err(Reply::error(err::WRONGTYPE)),
    }
}

/// Writes one op at the command's time; a refusal becomes its error reply.
/// With keyspace notifications on, also publishes the events of the write.
pub(crate) fn write(ctx: &mut Ctx<'_>, op: Op<'_>) -> Result<(), Reply> {
    let Some(cmd) = ctx.cmd.take() else {
        return ctx.shard.ks.write(op, ctx.now).map_err(|e| Reply::error(e.to_string()));
    };
    let key = crate::notify::op_key(&op);
    let existed = key.is_some_and(|(db, k)| ctx.shard.ks.contains(db as usize, k, ctx.now));
    let result = ctx.shard.ks.write_ref(&op, ctx.now);
    if result.is_ok() {
        let exists = key.is_some_and(|(db, k)| ctx.shard.ks.contains(db as usize, k, ctx.now));
        let events = crate::notify::events_for(&cmd, &op, existed, exists, ctx.now);
        ctx.shard.publish_events(&events);
    }
    ctx.cmd = Some(cmd);
    result.map_err(|e| Reply::error(e.to_string()))
}

/// Redis's `lookupKeyReadWithFlags(.., LOOKUP_NOTOUCH)`: lazy expiry and
/// hit/miss counters like [`Keyspace::lookup`], but the access time and LFU
/// counter are left as they were.
pub(crate) fn lookup_notouch<'a>(ks: &'a mut Keyspace, db: usize, key: &[u8], now: u64) -> Option<&'a Entry> {
    notouch(ks, db, key, now, true)
}

/// [`lookup_notouch`] for type, TTL and existence: a cold string stays cold.
pub(crate) fn lookup_meta_notouch<'a>(ks: &'a mut Keyspace, db: usize, key: &[u8], now: u64) -> Option<&'a Entry> {
    notouch(ks, db, key, now, false)
}

fn notouch<'a>(ks: &'a mut Keyspace, db: usize, key: &[u8], now: u64, value: bool) -> Option<&'a Entry> {
    let saved = ks.peek(db, key, now).map(|e| (e.access, e.freq));
    let e = if value { ks.lookup(db, key, now)? } else { ks.lookup_meta(db, key, now)? };
    if let Some((access, freq)) = saved {
        e.access = access;
        e.freq = freq;
    }
    Some(e)
}

/// The database index as ops carry it.
pub(crate) fn db8(ctx: &Ctx<'_>) -> u8 {
    ctx.db as u8
}

/// Joins a handler's result: the reply, or the error it stopped at.
fn reply(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

/// Redis's `checkStringLength`: a string may not grow past proto-max-bulk-len.
fn check_string_length(ctx: &Ctx<'_>, size: u64, append: u64) -> Result<(), Reply> {
    match size.checked_add(append) {
        Some(total) if total <= ctx.shard.config.proto_max_bulk_len as u64 => Ok(()),
        _ => Err(Reply::error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")),
    }
}

// ---------------------------------------------------------------------------
// SET-family options
// ---------------------------------------------------------------------------

/// Option bits of SET and GETEX, as Redis's `OBJ_*` flags.
pub(crate) mod opt {
    /// NX.
    pub const NX: u32 = 1;
    /// XX.
    pub const XX: u32 = 1 << 1;
    /// EX seconds.
    pub const EX: u32 = 1 << 2;
    /// PX milliseconds.
    pub const PX: u32 = 1 << 3;
    /// KEEPTTL.
    pub const KEEPTTL: u32 = 1 << 4;
    /// GET.
    pub const GET: u32 = 1 << 5;
    /// EXAT unix-seconds.
    pub const EXAT: u32 = 1 << 6;
    /// PXAT unix-milliseconds.
    pub const PXAT: u32 = 1 << 7;
    /// PERSIST (GETEX).
    pub const PERSIST: u32 = 1 << 8;
    /// Any expiry option.
    pub const ANY_EXPIRE: u32 = EX | PX | EXAT | PXAT;
}

/// Parsed SET/GETEX options: the flag bits and the expiry argument.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SetOptions<'a> {
    /// [`opt`] bits.
    pub flags: u32,
    /// The argument of EX/PX/EXAT/PXAT.
    pub expire: Option<&'a [u8]>,
}

/// Redis's `parseExtendedStringArgumentsOrReply`: the options of SET
/// (`for_set`) or GETEX, from `args[start..]`. Conflicting options are a
/// syntax error; repeating one is allowed (the last value wins).
pub(crate) fn parse_set_options<'a>(args: &[&'a [u8]], start: usize, for_set: bool) -> Result<SetOptions<'a>, Reply> {
    let mut o = SetOptions::default();
    let mut j = start;
    while j < args.len() {
        let a = args[j];
        let has_next = j + 1 < args.len();
        let f = o.flags;
        let is = |name: &str| a.eq_ignore_ascii_case(name.as_bytes());
        let timed = |this: u32| has_next && f & (opt::KEEPTTL | opt::PERSIST) == 0 && f & (opt::ANY_EXPIRE & !this) == 0;
        let bit = if is("NX") && for_set && f & opt::XX == 0 {
            opt::NX
        } else if is("XX") && for_set && f & opt::NX == 0 {
            opt::XX
        } else if is("GET") && for_set {
            opt::GET
        } else if is("KEEPTTL") && for_set && f & (opt::PERSIST | opt::ANY_EXPIRE) == 0 {
            opt::KEEPTTL
        } else if is("PERSIST") && !for_set && f & (opt::KEEPTTL | opt::ANY_EXPIRE) == 0 {
            opt::PERSIST
        } else if is("EX") && timed(opt::EX) {
            opt::EX
        } else if is("PX") && timed(opt::PX) {
            opt::PX
        } else if is("EXAT") && timed(opt::EXAT) {
            opt::EXAT
        } else if is("PXAT") && timed(opt::PXAT) {
            opt::PXAT
        } else {
            return Err(Reply::error(err::SYNTAX));
        };
        o.flags |= bit;
        if bit & opt::ANY_EXPIRE != 0 {
            o.expire = Some(args[j + 1]);
            j += 1;
        }
        j += 1;
    }
    Ok(o)
}

/// Redis's `getExpireMillisecondsOrReply`: the absolute expiry in Unix ms
/// for an EX/PX/EXAT/PXAT argument. Not positive, or overflowing: the
/// `invalid expire time` error naming `cmd`.
pub(crate) fn expire_at_ms(arg: &[u8], flags: u32, cmd: &str, now: u64) -> Result<u64, Reply> {
    let v = int_arg(arg)?;
    let seconds = flags & (opt::EX | opt::EXAT) != 0;
    if v <= 0 || (seconds && v > i64::MAX / 1000) {
        return Err(expire_time_error(cmd));
    }
    let mut ms = if seconds { v * 1000 } else { v };
    if flags & (opt::EX | opt::PX) != 0 {
        ms = ms.checked_add(now as i64).ok_or_else(|| expire_time_error(cmd))?;
    }
    Ok(ms as u64)
}

// ---------------------------------------------------------------------------
// GET, SET and friends
// ---------------------------------------------------------------------------

/// Redis's `getGenericCommand`: the string at `key` (Nil if missing), or WRONGTYPE.
fn get_value(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Reply, Reply> {
    match ctx.shard.ks.lookup(ctx.db, key, ctx.now) {
        None => Ok(Reply::Nil),
        Some(e) => Ok(Reply::bulk(as_str(e)?)),
    }
}

/// [GET](https://redis.io/commands/get/): the value of a key, nil if missing.
pub fn get(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(get_value(ctx, args[1]))
}

/// What SET answers besides the old value of GET: on success, and when NX/XX stopped it.
struct SetReplies {
    ok: Reply,
    abort: Reply,
}

/// Redis's `setGenericCommand`: SET, SETNX, SETEX and PSETEX.
fn set_generic(ctx: &mut Ctx<'_>, key: &[u8], value: &[u8], o: SetOptions<'_>, cmd: &str, replies: SetReplies) -> Result<Reply, Reply> {
    let expire = match o.expire {
        Some(arg) => Some(expire_at_ms(arg, o.flags, cmd, ctx.now)?),
        None => None,
    };
    let old = if o.flags & opt::GET != 0 { Some(get_value(ctx, key)?) } else { None };
    let current = ctx.shard.ks.peek(ctx.db, key, ctx.now).map(|e| e.expire_ms);
    let found = current.is_some();
    if (o.flags & opt::NX != 0 && found) || (o.flags & opt::XX != 0 && !found) {
        return Ok(old.unwrap_or(replies.abort));
    }
    let expire_ms = match expire {
        Some(ms) => ms,
        None if o.flags & opt::KEEPTTL != 0 => current.unwrap_or(0),
        None => 0,
    };
    write(ctx, Op::Set { db: db8(ctx), key, value, expire_ms })?;
    Ok(old.unwrap_or(replies.ok))
}

/// [SET](https://redis.io/commands/set/): sets a string, with expiry
/// (EX/PX/EXAT/PXAT/KEEPTTL), conditions (NX/XX) and GET of the old value.
pub fn set(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(
        parse_set_options(args, 3, true)
            .and_then(|o| set_generic(ctx, args[1], args[2], o, "set", SetReplies { ok: Reply::Ok, abort: Reply::Nil })),
    )
}

/// [SETNX](https://redis.io/commands/setnx/): sets a key only if it does not exist; 1 if set.
pub fn setnx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let o = SetOptions { flags: opt::NX, expire: None };
    reply(set_generic(ctx, args[1], args[2], o, "setnx", SetReplies { ok: Reply::Int(1), abort: Reply::Int(0) }))
}

/// [SETEX](https://redis.io/commands/setex/): sets a key with a TTL in seconds.
pub fn setex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let o = SetOptions { flags: opt::EX, expire: Some(args[2]) };
    reply(set_generic(ctx, args[1], args[3], o, "setex", SetReplies { ok: Reply::Ok, abort: Reply::Nil }))
}

/// [PSETEX](https://redis.io/commands/psetex/): sets a key with a TTL in milliseconds.
pub fn psetex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let o = SetOptions { flags: opt::PX, expire: Some(args[2]) };
    reply(set_generic(ctx, args[1], args[3], o, "psetex", SetReplies { ok: Reply::Ok, abort: Reply::Nil }))
}

/// [GETSET](https://redis.io/commands/getset/): sets a key (clearing its TTL) and answers the old value.
pub fn getset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(get_value(ctx, args[1]).and_then(|old| {
        write(ctx, Op::Set { db: db8(ctx), key: args[1], value: args[2], expire_ms: 0 })?;
        Ok(old)
    }))
}

/// [GETDEL](https://redis.io/commands/getdel/): answers the value of a key and deletes it.
pub fn getdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let key = args[1];
    reply(get_value(ctx, key).and_then(|old| {
        if old != Reply::Nil {
            write(ctx, Op::Del { db: db8(ctx), key })?;
        }
        Ok(old)
    }))
}

/// [GETEX](https://redis.io/commands/getex/): answers the value of a key and
/// sets (EX/PX/EXAT/PXAT) or removes (PERSIST) its expiry.
pub fn getex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(getex_inner(ctx, args))
}

fn getex_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let o = parse_set_options(args, 2, false)?;
    let key = args[1];
    let (value, current) = match ctx.shard.ks.lookup(ctx.db, key, ctx.now) {
        None => return Ok(Reply::Nil),
        Some(e) => (Reply::bulk(as_str(e)?), e.expire_ms),
    };
    let db = db8(ctx);
    if let Some(arg) = o.expire {
        let ms = expire_at_ms(arg, o.flags, "getex", ctx.now)?;
        if ms <= ctx.now {
            write(ctx, Op::Del { db, key })?;
        } else {
            write(ctx, Op::Expire { db, key, expire_ms: ms })?;
        }
    } else if o.flags & opt::PERSIST != 0 && current != 0 {
        write(ctx, Op::Expire { db, key, expire_ms: 0 })?;
    }
    Ok(value)
}

/// [MGET](https://redis.io/commands/mget/): the values of several keys, nil
/// for missing keys and for keys that do not hold a string.
pub fn mget(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let values = args[1..]
        .iter()
        .map(|key| match ctx.shard.ks.lookup(ctx.db, key, ctx.now) {
            Some(e) => as_str(e).map(Reply::bulk).unwrap_or(Reply::Nil),
            None => Reply::Nil,
        })
        .collect();
    Reply::Array(values)
}

/// Key/value pairs borrowed from the arguments.
type Pairs<'a> = Vec<(&'a [u8], &'a [u8])>;

/// The key/value pairs of MSET/MSETNX, or the arity error for an odd count.
fn mset_pairs<'a>(args: &[&'a [u8]], cmd: &str) -> Result<Pairs<'a>, Reply> {
    if args.len().is_multiple_of(2) {
        return Err(arity_error(cmd));
    }
    Ok(args[1..].chunks_exact(2).map(|p| (p[0], p[1])).collect())
}

/// [MSET](https://redis.io/commands/mset/): sets several keys at once (one atomic record), clearing their TTLs.
pub fn mset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(mset_pairs(args, "mset").and_then(|pairs| {
        write(ctx, Op::MSet { db: db8(ctx), pairs })?;
        Ok(Reply::Ok)
    }))
}

/// [MSETNX](https://redis.io/commands/msetnx/): sets several keys only if none of them exists; 1 if set.
pub fn msetnx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(mset_pairs(args, "msetnx").and_then(|pairs| {
        if pairs.iter().any(|(k, _)| ctx.shard.ks.contains(ctx.db, k, ctx.now)) {
            return Ok(Reply::Int(0));
        }
        write(ctx, Op::MSet { db: db8(ctx), pairs })?;
        Ok(Reply::Int(1))
    }))
}

// ---------------------------------------------------------------------------
// Counters
// ---------------------------------------------------------------------------

/// Redis's `incrDecrCommand`: adds `delta` to the integer at `key` (0 if missing), keeping its TTL.
fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], delta: i64) -> Result<Reply, Reply> {
    let (current, expire_ms) = match ctx.shard.ks.peek(ctx.db, key, ctx.now) {
        None => (0, 0),
        Some(e) => (int_value(as_str(e)?)?, e.expire_ms),
    };
    let new = current.checked_add(delta).ok_or_else(|| Reply::error(err::OVERFLOW))?;
    let mut buf = [0u8; 21];
    let text = crate::resp::encode::decimal_i64(new, &mut buf);
    write(ctx, Op::Set { db: db8(ctx), key, value: text, expire_ms })?;
    Ok(Reply::Int(new))
}

/// A stored string as an integer, or Redis's error.
fn int_value(s: &[u8]) -> Result<i64, Reply> {
    int_arg(s)
}

/// [INCR](https://redis.io/commands/incr/): adds one to the integer at a key.
pub fn incr(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(incr_by(ctx, args[1], 1))
}

/// [DECR](https://redis.io/commands/decr/): subtracts one from the integer at a key.
pub fn decr(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(incr_by(ctx, args[1], -1))
}

/// [INCRBY](https://redis.io/commands/incrby/): adds an integer to the integer at a key.
pub fn incrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(int_arg(args[2]).and_then(|n| incr_by(ctx, args[1], n)))
}

/// [DECRBY](https://redis.io/commands/decrby/): subtracts an integer from the integer at a key.
pub fn decrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(int_arg(args[2]).and_then(|n| {
        if n == i64::MIN {
            return Err(Reply::error("ERR decrement would overflow"));
        }
        incr_by(ctx, args[1], -n)
    }))
}

/// [INCRBYFLOAT](https://redis.io/commands/incrbyfloat/): adds a float to the
/// number at a key, keeping its TTL; answers the new value as Redis prints it.
pub fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(incrbyfloat_inner(ctx, args[1], args[2]))
}

fn incrbyfloat_inner(ctx: &mut Ctx<'_>, key: &[u8], incr: &[u8]) -> Result<Reply, Reply> {
    let not_float = || Reply::error(err::NOT_FLOAT);
    let (text, expire_ms) = {
        let (current, expire_ms) = match ctx.shard.ks.peek(ctx.db, key, ctx.now) {
            None => (&b"0"[..], 0),
            Some(e) => (as_str(e)?, e.expire_ms),
        };
        let a = parse_f64(current).ok_or_else(not_float)?;
        let b = parse_f64(incr).ok_or_else(not_float)?;
        let text = float_sum(current, incr, a, b).ok_or_else(|| Reply::error("ERR increment would produce NaN or Infinity"))?;
        (text, expire_ms)
    };
    write(ctx, Op::Set { db: db8(ctx), key, value: text.as_bytes(), expire_ms })?;
    Ok(Reply::Bulk(text.into_bytes()))
}

/// The text of `a + b` as INCRBYFLOAT stores it (`%.17Lf` with trailing
/// zeros trimmed), None for NaN or infinity. Plain decimals are added
/// exactly, which is what Redis's 80-bit long double shows for them at 17
/// decimals; anything else goes through f64.
pub(crate) fn float_sum(a_text: &[u8], b_text: &[u8], a: f64, b: f64) -> Option<String> {
    let sum = a + b;
    if !sum.is_finite() {
        return None;
    }
    if let Some(text) = Decimal::parse(a_text).zip(Decimal::parse(b_text)).and_then(|(x, y)| x.add(y)).and_then(|d| d.to_fixed17()) {
        return Some(text);
    }
    // Shortest digits that round-trip, unless that shows more than %.17f would.
    let short = format!("{sum}");
    let text = match short.find('.') {
        Some(dot) if short.len() - dot - 1 > 17 => format!("{sum:.17}"),
        _ => short,
    };
    Some(trim_fixed(text))
}

/// Redis's trimming of `%.17Lf` output: trailing zeros after the point, a bare point, and `-0`.
fn trim_fixed(mut text: String) -> String {
    if text.contains('.') {
        let keep = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(keep);
    }
    if text == "-0" {
        text = "0".to_string();
    }
    text
}

/// An exact decimal `m × 10^-scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    m: i128,
    scale: u32,
}

impl Decimal {
    /// Parses `[+-]digits[.digits][e[+-]digits]`; None if not of that form or too large for i128.
    fn parse(s: &[u8]) -> Option<Decimal> {
        let (negative, rest) = match s.first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (mantissa, exp) = match rest.iter().position(|&c| c == b'e' || c == b'E') {
            Some(i) => (&rest[..i], parse_exp(&rest[i + 1..])?),
            None => (rest, 0),
        };
        let (int, frac) = match mantissa.iter().position(|&c| c == b'.') {
            Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
            None => (mantissa, &mantissa[..0]),
        };
        if int.len() + frac.len() == 0 || !int.iter().chain(frac).all(u8::is_ascii_digit) {
            return None;
        }
        let mut m: i128 = 0;
        for &c in int.iter().chain(frac) {
            m = m.checked_mul(10)?.checked_add(i128::from(c - b'0'))?;
        }
        let mut scale = frac.len() as i64 - exp;
        if scale < 0 {
            m = m.checked_mul(10i128.checked_pow(u32::try_from(-scale).ok()?)?)?;
            scale = 0;
        }
        let scale = u32::try_from(scale).ok().filter(|&s| s <= 76)?;
        Some(Decimal { m: if negative { -m } else { m }, scale })
    }

    fn rescale(self, scale: u32) -> Option<i128> {
        self.m.checked_mul(10i128.checked_pow(scale - self.scale)?)
    }

    fn add(self, other: Decimal) -> Option<Decimal> {
        let scale = self.scale.max(other.scale);
        let m = self.rescale(scale)?.checked_add(other.rescale(scale)?)?;
        Some(Decimal { m, scale })
    }

    /// `%.17f` of the value (round half to even), then Redis's trimming:
    /// trailing zeros, a trailing `.`, and `-0` → `0`.
    fn to_fixed17(self) -> Option<String> {
        let (mut m, mut scale) = (self.m, self.scale);
        if scale > 17 {
            let d = 10i128.checked_pow(scale - 17);
            m = match d {
                Some(d) => div_round_even(m, d),
                None => 0,
            };
            scale = 17;
        }
        let p = 10u128.checked_pow(scale)?;
        let abs = m.unsigned_abs();
        let (int, frac) = (abs / p, abs % p);
        let mut text = String::new();
        if m < 0 {
            text.push('-');
        }
        text.push_str(&int.to_string());
        if scale > 0 && frac != 0 {
            let digits = format!("{frac:0width$}", width = scale as usize);
            text.push('.');
            text.push_str(digits.trim_end_matches('0'));
        }
        Some(text)
    }
}

/// The exponent of a decimal literal, bounded so that it cannot overflow later arithmetic.
fn parse_exp(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 6 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if negative { -v } else { v })
}

/// `m / d` rounded to nearest, ties to even.
fn div_round_even(m: i128, d: i128) -> i128 {
    let (q, r) = (m / d, m % d);
    let twice = r.unsigned_abs() * 2;
    let d = d.unsigned_abs();
    let away = twice > d || (twice == d && q % 2 != 0);
    if !away {
        q
    } else if m < 0 {
        q - 1
    } else {
        q + 1
    }
}

// ---------------------------------------------------------------------------
// Parts of strings
// ---------------------------------------------------------------------------

/// [APPEND](https://redis.io/commands/append/): appends to a string (creating it); answers the new length.
pub fn append(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(append_inner(ctx, args[1], args[2]))
}

fn append_inner(ctx: &mut Ctx<'_>, key: &[u8], data: &[u8]) -> Result<Reply, Reply> {
    let old_len = match ctx.shard.ks.peek(ctx.db, key, ctx.now) {
        Some(e) => {
            let len = as_str(e)?.len() as u64;
            check_string_length(ctx, len, data.len() as u64)?;
            len
        }
        None => 0,
    };
    write(ctx, Op::Append { db: db8(ctx), key, data })?;
    Ok(Reply::Int((old_len + data.len() as u64) as i64))
}

/// [STRLEN](https://redis.io/commands/strlen/): the length of a string, 0 if missing.
pub fn strlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(match ctx.shard.ks.lookup(ctx.db, args[1], ctx.now) {
        None => Ok(Reply::Int(0)),
        Some(e) => as_str(e).map(|s| Reply::Int(s.len() as i64)),
    })
}

/// The byte range `start..=end` (negative: from the end) of a string of
/// `len` bytes, clamped as Redis's GETRANGE; None when empty.
pub(crate) fn byte_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if (start < 0 && end < 0 && start > end) || len == 0 {
        return None;
    }
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { (len + end).max(0) } else { end.min(len - 1) };
    (start <= end).then_some((start as usize, end as usize))
}

/// [GETRANGE](https://redis.io/commands/getrange/) (and the older SUBSTR): part of a string, by inclusive offsets.
pub fn getrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(getrange_inner(ctx, args))
}

fn getrange_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let start = int_arg(args[2])?;
    let end = int_arg(args[3])?;
    let Some(e) = ctx.shard.ks.lookup(ctx.db, args[1], ctx.now) else {
        return Ok(Reply::Bulk(Vec::new()));
    };
    let s = as_str(e)?;
    Ok(match byte_range(start, end, s.len()) {
        Some((a, b)) => Reply::bulk(&s[a..=b]),
        None => Reply::Bulk(Vec::new()),
    })
}

/// [SETRANGE](https://redis.io/commands/setrange/): overwrites part of a
/// string at an offset, zero-padding; answers the new length.
pub fn setrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(setrange_inner(ctx, args[1], args[2], args[3]))
}

fn setrange_inner(ctx: &mut Ctx<'_>, key: &[u8], offset: &[u8], data: &[u8]) -> Result<Reply, Reply> {
    let offset = int_arg(offset)?;
    let offset = u64::try_from(offset).map_err(|_| Reply::error("ERR offset is out of range"))?;
    let old_len = match ctx.shard.ks.peek(ctx.db, key, ctx.now) {
        None if data.is_empty() => return Ok(Reply::Int(0)),
        None => 0,
        Some(e) => as_str(e)?.len() as u64,
    };
    if data.is_empty() {
        return Ok(Reply::Int(old_len as i64));
    }
    check_string_length(ctx, offset, data.len() as u64)?;
    write(ctx, Op::SetRange { db: db8(ctx), key, offset, data })?;
    Ok(Reply::Int(old_len.max(offset + data.len() as u64) as i64))
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

const W_DENY: u32 = flags::WRITE | flags::DENYOOM;
const W_DENY_FAST: u32 = flags::WRITE | flags::DENYOOM | flags::FAST;
const W_FAST: u32 = flags::WRITE | flags::FAST;
const R_FAST: u32 = flags::READONLY | flags::FAST;
const READ_FAST: &[&str] = &["@read", "@string", "@fast"];
const READ_SLOW: &[&str] = &["@read", "@string", "@slow"];
const WRITE_FAST: &[&str] = &["@write", "@string", "@fast"];
const WRITE_SLOW: &[&str] = &["@write", "@string", "@slow"];

/// The string commands.
pub const COMMANDS: &[Command] = &[
    one_key("get", 2, R_FAST, get, READ_FAST, "Returns the string value of a key."),
    one_key(
        "set",
        -3,
        W_DENY,
        set,
        WRITE_SLOW,
        "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
    ),
    one_key("setnx", 3, W_DENY_FAST, setnx, WRITE_FAST, "Set the string value of a key only when the key doesn't exist."),
    one_key(
        "setex",
        4,
        W_DENY,
        setex,
        WRITE_SLOW,
        "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.",
    ),
    one_key(
        "psetex",
        4,
        W_DENY,
        psetex,
        WRITE_SLOW,
        "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.",
    ),
    one_key("getset", 3, W_DENY_FAST, getset, WRITE_FAST, "Returns the previous string value of a key after setting it to a new value."),
    one_key("getdel", 2, W_FAST, getdel, WRITE_FAST, "Returns the string value of a key after deleting the key."),
    one_key("getex", -2, W_FAST, getex, WRITE_FAST, "Returns the string value of a key after setting its expiration time."),
    Command {
        name: "mget",
        arity: -2,
        flags: R_FAST,
        first_key: 1,
        last_key: -1,
        step: 1,
        route: Route::Split(mget, super::Merge::KeyedArray),
        categories: READ_FAST,
        summary: "Atomically returns the string values of one or more keys.",
    },
    Command {
        name: "mset",
        arity: -3,
        flags: W_DENY,
        first_key: 1,
        last_key: -1,
        step: 2,
        route: Route::Key(mset),
        categories: WRITE_SLOW,
        summary: "Atomically creates or modifies the string values of one or more keys.",
    },
    Command {
        name: "msetnx",
        arity: -3,
        flags: W_DENY,
        first_key: 1,
        last_key: -1,
        step: 2,
        route: Route::Key(msetnx),
        categories: WRITE_SLOW,
        summary: "Atomically modifies the string values of one or more keys only when all keys don't exist.",
    },
    one_key(
        "incr",
        2,
        W_DENY_FAST,
        incr,
        WRITE_FAST,
        "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    ),
    one_key(
        "decr",
        2,
        W_DENY_FAST,
        decr,
        WRITE_FAST,
        "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    ),
    one_key(
        "incrby",
        3,
        W_DENY_FAST,
        incrby,
        WRITE_FAST,
        "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
    ),
    one_key(
        "decrby",
        3,
        W_DENY_FAST,
        decrby,
        WRITE_FAST,
        "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.",
    ),
    one_key(
        "incrbyfloat",
        3,
        W_DENY_FAST,
        incrbyfloat,
        WRITE_FAST,
        "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
    ),
    one_key("append", 3, W_DENY_FAST, append, WRITE_FAST, "Appends a string to the value of a key. Creates the key if it doesn't exist."),
    one_key("strlen", 2, R_FAST, strlen, READ_FAST, "Returns the length of a string value."),
    one_key("getrange", 4, flags::READONLY, getrange, READ_SLOW, "Returns a substring of the string stored at a key."),
    one_key("substr", 4, flags::READONLY, getrange, READ_SLOW, "Returns a substring from a string value."),
    one_key(
        "setrange",
        4,
        W_DENY,
        setrange,
        WRITE_SLOW,
        "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
    ),
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"01",
            b"-0",
            b"00",
            b"1.0",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"1e3",
            b"abc",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_i64(b"000000000000000000001"), None);
    }

    #[test]
    fn int_range() {
        assert_eq!(parse_int(b"15").unwrap(), 15);
        assert_eq!(parse_int(b"x").unwrap_err(), Reply::error(err::NOT_INTEGER));
        assert_eq!(
            parse_int(b"4294967296").unwrap_err(),
            Reply::error("ERR value is out of range, value must between -2147483648 and 2147483647")
        );
    }

    #[test]
    fn strtold() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b".5"), Some(0.5));
        assert_eq!(parse_f64(b"5."), Some(5.0));
        assert_eq!(parse_f64(b"+5"), Some(5.0));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"inf"), Some(f64::INFINITY));
        for bad in [&b""[..], b" 1", b"1 ", b"nan", b"abc", b"1e", b"1e999", b"1.5x", b"."] {
            assert_eq!(parse_f64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    fn sum(a: &str, b: &str) -> Option<String> {
        float_sum(a.as_bytes(), b.as_bytes(), parse_f64(a.as_bytes()).unwrap(), parse_f64(b.as_bytes()).unwrap())
    }

    #[test]
    fn incrbyfloat_formatting() {
        assert_eq!(sum("10.50", "0.1").unwrap(), "10.6");
        assert_eq!(sum("5.0e3", "2.0e2").unwrap(), "5200");
        assert_eq!(sum("0", "1").unwrap(), "1");
        assert_eq!(sum("1", "0.25").unwrap(), "1.25");
        assert_eq!(sum("1.5", "1.5").unwrap(), "3");
        assert_eq!(sum("17179869184", "1.5").unwrap(), "17179869185.5");
        assert_eq!(sum("1.1", "2.2").unwrap(), "3.3");
        assert_eq!(sum("0", "-0.5").unwrap(), "-0.5");
        assert_eq!(sum("0.024390243902439025", "-0.024390243902439025").unwrap(), "0");
        assert_eq!(sum("0", "0.000000000000000001").unwrap(), "0");
        assert_eq!(sum("0", "-0.000000000000000001").unwrap(), "0");
        assert_eq!(sum("0", "1e-300").unwrap(), "0");
        assert_eq!(sum("0", "-1e-300").unwrap(), "0");
        assert_eq!(sum("1e300", "0").unwrap().len(), 301);
        assert_eq!(sum("0", "1e-5").unwrap(), "0.00001");
        assert_eq!(sum("3", "-3").unwrap(), "0");
        assert_eq!(sum("0", "inf"), None);
        assert_eq!(sum("1e308", "1e308"), None);
    }

    #[test]
    fn set_options() {
        let args: Vec<&[u8]> = vec![b"set", b"k", b"v", b"ex", b"10", b"nx", b"get"];
        let o = parse_set_options(&args, 3, true).unwrap();
        assert_eq!(o.flags, opt::EX | opt::NX | opt::GET);
        assert_eq!(o.expire, Some(&b"10"[..]));
        let bad: &[&[&[u8]]] = &[
            &[b"set", b"k", b"v", b"nx", b"xx"],
            &[b"set", b"k", b"v", b"ex", b"1", b"px", b"1"],
            &[b"set", b"k", b"v", b"ex"],
            &[b"set", b"k", b"v", b"keepttl", b"ex", b"1"],
            &[b"set", b"k", b"v", b"persist"],
            &[b"set", b"k", b"v", b"foo"],
        ];
        for args in bad {
            assert_eq!(parse_set_options(args, 3, true), Err(Reply::error(err::SYNTAX)));
        }
        // Repeating the same option is fine; the last value wins.
        let args: Vec<&[u8]> = vec![b"set", b"k", b"v", b"EX", b"1", b"ex", b"2"];
        assert_eq!(parse_set_options(&args, 3, true).unwrap().expire, Some(&b"2"[..]));
        // GETEX takes PERSIST but not NX/GET/KEEPTTL.
        let args: Vec<&[u8]> = vec![b"getex", b"k", b"persist"];
        assert_eq!(parse_set_options(&args, 2, false).unwrap().flags, opt::PERSIST);
        let args: Vec<&[u8]> = vec![b"getex", b"k", b"nx"];
        assert!(parse_set_options(&args, 2, false).is_err());
        let args: Vec<&[u8]> = vec![b"getex", b"k", b"persist", b"ex", b"1"];
        assert!(parse_set_options(&args, 2, false).is_err());
    }

    #[test]
    fn expire_arguments() {
        assert_eq!(expire_at_ms(b"10", opt::EX, "set", 1000).unwrap(), 11_000);
        assert_eq!(expire_at_ms(b"10", opt::PX, "set", 1000).unwrap(), 1010);
        assert_eq!(expire_at_ms(b"10", opt::EXAT, "set", 1000).unwrap(), 10_000);
        assert_eq!(expire_at_ms(b"10", opt::PXAT, "set", 1000).unwrap(), 10);
        let invalid = Reply::error("ERR invalid expire time in 'set' command");
        assert_eq!(expire_at_ms(b"0", opt::EX, "set", 1000).unwrap_err(), invalid);
        assert_eq!(expire_at_ms(b"-1", opt::PX, "set", 1000).unwrap_err(), invalid);
        assert_eq!(expire_at_ms(b"9223372036854775807", opt::EX, "set", 1000).unwrap_err(), invalid);
        assert_eq!(expire_at_ms(b"9223372036854775807", opt::PX, "set", 1000).unwrap_err(), invalid);
        assert_eq!(expire_at_ms(b"x", opt::PX, "set", 1000).unwrap_err(), Reply::error(err::NOT_INTEGER));
    }

    #[test]
    fn getrange_indexes() {
        // "Hello World" examples from the Redis docs.
        assert_eq!(byte_range(0, 3, 11), Some((0, 3)));
        assert_eq!(byte_range(-3, -1, 11), Some((8, 10)));
        assert_eq!(byte_range(0, -1, 11), Some((0, 10)));
        assert_eq!(byte_range(10, 100, 11), Some((10, 10)));
        assert_eq!(byte_range(5, 3, 11), None);
        assert_eq!(byte_range(-1, -5, 11), None);
        assert_eq!(byte_range(-100, -50, 11), Some((0, 0)));
        assert_eq!(byte_range(0, 0, 0), None);
        assert_eq!(byte_range(20, 30, 11), None);
    }
}
