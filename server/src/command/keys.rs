//! Generic key commands: <https://redis.io/commands/?group=generic>, plus
//! the keyspace's server commands (DBSIZE, FLUSHDB, FLUSHALL, SWAPDB).
//!
//! Key commands run on the owning shard (DEL, EXISTS, TOUCH and UNLINK are
//! split by shard and their counts summed); whole-keyspace commands run on
//! every shard and are merged by the dispatcher; SCAN walks the shards one
//! after another, with the shard index in the low 8 bits of the cursor.
//! Inspection commands (EXISTS, TYPE, TTL, OBJECT) read without touching
//! the key's access time, as Redis's `LOOKUP_NOTOUCH`.

use strand_engine::keyspace::{Entry, Op, Value, DATABASES};

use super::glob::{glob_match, matches_all};
use super::strings::{as_str, db8, expire_time_error, int_arg, lookup_meta_notouch, lookup_notouch, parse_i64, parse_int, write};
use super::{arity_error, err, flags, Command, Ctx, Merge, Route};
use crate::reply::Reply;

/// Joins a handler's result: the reply, or the error it stopped at.
fn reply(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

// ---------------------------------------------------------------------------
// DEL, UNLINK, EXISTS, TOUCH, TYPE
// ---------------------------------------------------------------------------

/// [DEL](https://redis.io/commands/del/): removes keys; answers how many existed.
pub fn del(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let mut n = 0;
    for &key in &args[1..] {
        if ctx.shard.ks.contains(ctx.db, key, ctx.now) {
            if let Err(e) = write(ctx, Op::Del { db: db8(ctx), key }) {
                return e;
            }
            n += 1;
        }
    }
    Reply::Int(n)
}

/// [UNLINK](https://redis.io/commands/unlink/): DEL; memory is freed at once here.
pub fn unlink(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    del(ctx, args)
}

/// [EXISTS](https://redis.io/commands/exists/): how many of the keys exist (repeats count again).
pub fn exists(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let n = args[1..].iter().filter(|key| lookup_meta_notouch(&mut ctx.shard.ks, ctx.db, key, ctx.now).is_some()).count();
    Reply::Int(n as i64)
}

/// [TOUCH](https://redis.io/commands/touch/): records an access to keys; answers how many exist.
pub fn touch(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let n = args[1..].iter().filter(|key| ctx.shard.ks.lookup(ctx.db, key, ctx.now).is_some()).count();
    Reply::Int(n as i64)
}

/// [TYPE](https://redis.io/commands/type/): the type of a key's value, `none` if missing.
pub fn type_(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let name = lookup_meta_notouch(&mut ctx.shard.ks, ctx.db, args[1], ctx.now).map_or("none", |e| e.value.type_name());
    Reply::simple(name)
}

// ---------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------

/// EXPIRE's NX/XX/GT/LT conditions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExpireCond {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

impl ExpireCond {
    /// Redis's `parseExtendedExpireArgumentsOrReply`, over `args[3..]`.
    pub(crate) fn parse(args: &[&[u8]]) -> Result<ExpireCond, Reply> {
        let mut c = ExpireCond::default();
        for &a in args.iter().skip(3) {
            match a.to_ascii_lowercase().as_slice() {
                b"nx" => c.nx = true,
                b"xx" => c.xx = true,
                b"gt" => c.gt = true,
                b"lt" => c.lt = true,
                _ => return Err(Reply::error(format!("ERR Unsupported option {}", String::from_utf8_lossy(a)))),
            }
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            return Err(Reply::error("ERR NX and XX, GT or LT options at the same time are not compatible"));
        }
        if c.gt && c.lt {
            return Err(Reply::error("ERR GT and LT options at the same time are not compatible"));
        }
        Ok(c)
    }

    /// Whether a new deadline `when` (ms) may replace `current` (ms, None: no expiry).
    pub(crate) fn allows(self, when: i64, current: Option<u64>) -> bool {
        let current = current.map(|c| c as i64);
        if self.nx && current.is_some() {
            return false;
        }
        if self.xx && current.is_none() {
            return false;
        }
        if self.gt && current.is_none_or(|c| when <= c) {
            return false;
        }
        if self.lt && current.is_some_and(|c| when >= c) {
            return false;
        }
        true
    }
}

/// Redis's arithmetic of EXPIRE-family arguments: the absolute deadline in
/// ms of `arg` in `unit_ms` units after `base` ms, or the invalid-expire error.
pub(crate) fn expire_deadline(arg: &[u8], unit_ms: i64, base: i64, cmd: &str) -> Result<i64, Reply> {
    let when = int_arg(arg)?;
    let when = when.checked_mul(unit_ms).ok_or_else(|| expire_time_error(cmd))?;
    when.checked_add(base).ok_or_else(|| expire_time_error(cmd))
}

/// Redis's `expireGenericCommand`: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT.
fn expire_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], unit_ms: i64, relative: bool, cmd: &str) -> Result<Reply, Reply> {
    let cond = ExpireCond::parse(args)?;
    let base = if relative { ctx.now as i64 } else { 0 };
    let when = expire_deadline(args[2], unit_ms, base, cmd)?;
    let key = args[1];
    let Some(e) = ctx.shard.ks.peek(ctx.db, key, ctx.now) else {
        return Ok(Reply::Int(0));
    };
    if !cond.allows(when, (e.expire_ms != 0).then_some(e.expire_ms)) {
        return Ok(Reply::Int(0));
    }
    let db = db8(ctx);
    if when <= ctx.now as i64 {
        write(ctx, Op::Del { db, key })?;
    } else {
        write(ctx, Op::Expire { db, key, expire_ms: when as u64 })?;
    }
    Ok(Reply::Int(1))
}

/// [EXPIRE](https://redis.io/commands/expire/): sets a key's time to live in seconds (NX/XX/GT/LT).
pub fn expire(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(expire_generic(ctx, args, 1000, true, "expire"))
}

/// [PEXPIRE](https://redis.io/commands/pexpire/): sets a key's time to live in milliseconds.
pub fn pexpire(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(expire_generic(ctx, args, 1, true, "pexpire"))
}

/// [EXPIREAT](https://redis.io/commands/expireat/): sets a key's expiry as a Unix time in seconds.
pub fn expireat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(expire_generic(ctx, args, 1000, false, "expireat"))
}

/// [PEXPIREAT](https://redis.io/commands/pexpireat/): sets a key's expiry as a Unix time in milliseconds.
pub fn pexpireat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(expire_generic(ctx, args, 1, false, "pexpireat"))
}

/// Redis's `ttlGenericCommand`: -2 missing, -1 no expiry, else the time
/// left (or the deadline, `absolute`) in ms or rounded seconds.
fn ttl_generic(ctx: &mut Ctx<'_>, key: &[u8], ms: bool, absolute: bool) -> Reply {
    let now = ctx.now;
    let Some(e) = lookup_meta_notouch(&mut ctx.shard.ks, ctx.db, key, now) else {
        return Reply::Int(-2);
    };
    let Some(left) = e.ttl_ms(now) else {
        return Reply::Int(-1);
    };
    let t = if absolute { e.expire_ms } else { left } as i64;
    Reply::Int(if ms { t } else { t.saturating_add(500) / 1000 })
}

/// [TTL](https://redis.io/commands/ttl/): seconds left to live; -1 without expiry, -2 if missing.
pub fn ttl(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    ttl_generic(ctx, args[1], false, false)
}

/// [PTTL](https://redis.io/commands/pttl/): milliseconds left to live; -1 without expiry, -2 if missing.
pub fn pttl(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    ttl_generic(ctx, args[1], true, false)
}

/// [EXPIRETIME](https://redis.io/commands/expiretime/): the expiry as a Unix time in seconds.
pub fn expiretime(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    ttl_generic(ctx, args[1], false, true)
}

/// [PEXPIRETIME](https://redis.io/commands/pexpiretime/): the expiry as a Unix time in milliseconds.
pub fn pexpiretime(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    ttl_generic(ctx, args[1], true, true)
}

/// [PERSIST](https://redis.io/commands/persist/): removes a key's expiry; 1 if it had one.
pub fn persist(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let key = args[1];
    let has_ttl = ctx.shard.ks.peek(ctx.db, key, ctx.now).is_some_and(|e| e.expire_ms != 0);
    if !has_ttl {
        return Reply::Int(0);
    }
    reply(write(ctx, Op::Expire { db: db8(ctx), key, expire_ms: 0 }).map(|()| Reply::Int(1)))
}

// ---------------------------------------------------------------------------
// KEYS, SCAN, RANDOMKEY, DBSIZE
// ---------------------------------------------------------------------------

/// [KEYS](https://redis.io/commands/keys/): every key matching a glob pattern (this shard's part).
pub fn keys(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let pattern = args[1];
    let all = matches_all(pattern);
    let mut out = Vec::new();
    ctx.shard.ks.for_each(ctx.db, ctx.now, |k, _| {
        if all || glob_match(pattern, k, false) {
            out.push(Reply::bulk(k));
        }
    });
    Reply::Array(out)
}

/// SCAN's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanOptions<'a> {
    /// COUNT (default 10).
    pub count: usize,
    /// MATCH, None for all (absent or `*`).
    pub pattern: Option<&'a [u8]>,
    /// TYPE.
    pub type_name: Option<&'a [u8]>,
}

impl<'a> ScanOptions<'a> {
    /// Redis's option loop of `scanGenericCommand`, over `args[2..]`.
    pub(crate) fn parse(args: &[&'a [u8]]) -> Result<ScanOptions<'a>, Reply> {
        Self::parse_at(args, 2, true)
    }

    /// The same loop over `args[start..]`; TYPE only where `with_type` (SCAN, not HSCAN/SSCAN/ZSCAN).
    pub(crate) fn parse_at(args: &[&'a [u8]], start: usize, with_type: bool) -> Result<ScanOptions<'a>, Reply> {
        let mut o = ScanOptions { count: 10, pattern: None, type_name: None };
        let mut i = start;
        while i < args.len() {
            let (opt, value) = (args[i], args.get(i + 1).copied());
            match value {
                Some(v) if opt.eq_ignore_ascii_case(b"count") => {
                    let n = int_arg(v)?;
                    if n < 1 {
                        return Err(Reply::error(err::SYNTAX));
                    }
                    o.count = usize::try_from(n).unwrap_or(usize::MAX);
                }
                Some(v) if opt.eq_ignore_ascii_case(b"match") => o.pattern = (!matches_all(v)).then_some(v),
                Some(v) if with_type && opt.eq_ignore_ascii_case(b"type") => o.type_name = Some(v),
                _ => return Err(Reply::error(err::SYNTAX)),
            }
            i += 2;
        }
        Ok(o)
    }

    /// Whether a key found by the scan is reported.
    fn wants(&self, key: &[u8], e: &Entry) -> bool {
        self.pattern.is_none_or(|p| glob_match(p, key, false))
            && self.type_name.is_none_or(|t| t.eq_ignore_ascii_case(e.value.type_name().as_bytes()))
    }
}

/// The client's cursor after a step of this shard's dict ended at `next`:
/// `(next << 8) | shard`, the next shard's start when this one is done, 0 at the very end.
pub(crate) fn next_scan_cursor(next: u64, shard: usize, nshards: usize) -> u64 {
    if next != 0 {
        (next << 8) | shard as u64
    } else if shard + 1 < nshards {
        shard as u64 + 1
    } else {
        0
    }
}

/// [SCAN](https://redis.io/commands/scan/): one step of an iteration over the
/// keys (MATCH, COUNT, TYPE). The cursor carries the shard in its low 8 bits.
pub fn scan(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(scan_inner(ctx, args))
}

fn scan_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let cursor = std::str::from_utf8(args[1]).ok().and_then(|s| s.parse::<u64>().ok()).ok_or_else(|| Reply::error("ERR invalid cursor"))?;
    let o = ScanOptions::parse(args)?;
    let mut keys = Vec::new();
    let next = ctx.shard.ks.scan(ctx.db, cursor >> 8, o.count, ctx.now, |k, e| {
        if o.wants(k, e) {
            keys.push(Reply::bulk(k));
        }
    });
    let next = next_scan_cursor(next, ctx.shard.id, ctx.shard.nshards);
    Ok(Reply::Array(vec![Reply::Bulk(next.to_string().into_bytes()), Reply::Array(keys)]))
}

/// [RANDOMKEY](https://redis.io/commands/randomkey/): a random key, nil when empty (this shard's pick).
pub fn randomkey(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> Reply {
    Reply::opt_bulk(ctx.shard.ks.random_key(ctx.db, ctx.now))
}

/// [DBSIZE](https://redis.io/commands/dbsize/): the number of keys (this shard's part).
pub fn dbsize(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> Reply {
    Reply::Int(ctx.shard.ks.dbsize(ctx.db) as i64)
}

// ---------------------------------------------------------------------------
// RENAME, COPY, MOVE
// ---------------------------------------------------------------------------

/// Redis's `renameGenericCommand`.
fn rename_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], nx: bool) -> Result<Reply, Reply> {
    let (src, dst) = (args[1], args[2]);
    if !ctx.shard.ks.contains(ctx.db, src, ctx.now) {
        return Err(Reply::error(err::NO_SUCH_KEY));
    }
    let done = |ok: bool| if nx { Reply::Int(ok as i64) } else { Reply::Ok };
    if src == dst {
        return Ok(done(false));
    }
    if nx && ctx.shard.ks.contains(ctx.db, dst, ctx.now) {
        return Ok(Reply::Int(0));
    }
    write(ctx, Op::Rename { db: db8(ctx), src, dst })?;
    Ok(done(true))
}

/// [RENAME](https://redis.io/commands/rename/): renames a key, replacing the destination.
pub fn rename(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(rename_generic(ctx, args, false))
}

/// [RENAMENX](https://redis.io/commands/renamenx/): renames a key only if the new name is free; 1 if renamed.
pub fn renamenx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(rename_generic(ctx, args, true))
}

/// A database index argument: an int, then within `0..DATABASES`.
fn db_index(arg: &[u8]) -> Result<u8, Reply> {
    let id = parse_int(arg)?;
    u8::try_from(id).ok().filter(|&d| (d as usize) < DATABASES).ok_or_else(|| Reply::error(err::DB_INDEX))
}

const SAME_OBJECT: &str = "ERR source and destination objects are the same";

/// [COPY](https://redis.io/commands/copy/): copies a key (with its TTL), to another database with DB; REPLACE overwrites.
pub fn copy(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(copy_inner(ctx, args))
}

/// COPY's options after its two keys (`DB n`, `REPLACE`): the destination
/// database (`db` when not given) and whether to replace.
pub(crate) fn copy_options(db: u8, opts: &[&[u8]]) -> Result<(u8, bool), Reply> {
    let (mut dst_db, mut replace) = (db, false);
    let mut j = 0;
    while j < opts.len() {
        if opts[j].eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if opts[j].eq_ignore_ascii_case(b"db") && j + 1 < opts.len() {
            dst_db = db_index(opts[j + 1])?;
            j += 1;
        } else {
            return Err(Reply::error(err::SYNTAX));
        }
        j += 1;
    }
    Ok((dst_db, replace))
}

fn copy_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let src_db = db8(ctx);
    let (dst_db, replace) = copy_options(src_db, &args[3..])?;
    let (src, dst) = (args[1], args[2]);
    if src_db == dst_db && src == dst {
        return Err(Reply::error(SAME_OBJECT));
    }
    if ctx.shard.ks.lookup(ctx.db, src, ctx.now).is_none() {
        return Ok(Reply::Int(0));
    }
    if !replace && ctx.shard.ks.contains(dst_db as usize, dst, ctx.now) {
        return Ok(Reply::Int(0));
    }
    write(ctx, Op::Copy { src_db, src, dst_db, dst })?;
    Ok(Reply::Int(1))
}

/// [MOVE](https://redis.io/commands/move/): moves a key to another database; 1 if moved.
pub fn move_(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(move_inner(ctx, args))
}

fn move_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let key = args[1];
    let dst_db = db_index(args[2])?;
    let db = db8(ctx);
    if dst_db == db {
        return Err(Reply::error(SAME_OBJECT));
    }
    if !ctx.shard.ks.contains(ctx.db, key, ctx.now) || ctx.shard.ks.contains(dst_db as usize, key, ctx.now) {
        return Ok(Reply::Int(0));
    }
    write(ctx, Op::Move { db, key, dst_db })?;
    Ok(Reply::Int(1))
}

// ---------------------------------------------------------------------------
// SWAPDB, FLUSHDB, FLUSHALL
// ---------------------------------------------------------------------------

/// A SWAPDB index: not an int → `msg`; out of range → DB index error.
fn swap_index(arg: &[u8], msg: &'static str) -> Result<i64, Reply> {
    parse_i64(arg).filter(|v| i32::try_from(*v).is_ok()).ok_or_else(|| Reply::error(msg))
}

/// [SWAPDB](https://redis.io/commands/swapdb/): swaps two databases (on every shard).
pub fn swapdb(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(swapdb_inner(ctx, args))
}

fn swapdb_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let a = swap_index(args[1], "ERR invalid first DB index")?;
    let b = swap_index(args[2], "ERR invalid second DB index")?;
    let in_range = |v: i64| u8::try_from(v).ok().filter(|&d| (d as usize) < DATABASES);
    let (Some(a), Some(b)) = (in_range(a), in_range(b)) else {
        return Err(Reply::error(err::DB_INDEX));
    };
    if a != b {
        write(ctx, Op::SwapDb { a, b })?;
    }
    Ok(Reply::Ok)
}

/// FLUSHDB/FLUSHALL's optional SYNC or ASYNC (both flush at once here).
fn flush_mode(args: &[&[u8]]) -> Result<(), Reply> {
    match args {
        [_] => Ok(()),
        [_, mode] if mode.eq_ignore_ascii_case(b"sync") || mode.eq_ignore_ascii_case(b"async") => Ok(()),
        _ => Err(Reply::error(err::SYNTAX)),
    }
}

/// [FLUSHDB](https://redis.io/commands/flushdb/): removes every key of the selected database (on every shard).
pub fn flushdb(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(flush_mode(args).and_then(|()| write(ctx, Op::FlushDb { db: db8(ctx) })).map(|()| Reply::Ok))
}

/// [FLUSHALL](https://redis.io/commands/flushall/): removes every key of every database (on every shard).
pub fn flushall(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(flush_mode(args).and_then(|()| write(ctx, Op::FlushAll)).map(|()| Reply::Ok))
}

// ---------------------------------------------------------------------------
// OBJECT, MEMORY
// ---------------------------------------------------------------------------

/// A subcommand: lower-case name and Redis arity (name and subcommand included).
pub(crate) struct Sub {
    pub name: &'static str,
    pub arity: i32,
}

/// Finds `args[1]` among `subs`, checking its arity, with Redis's errors.
pub(crate) fn subcommand<'a>(container: &str, subs: &'a [Sub], args: &[&[u8]]) -> Result<&'a Sub, Reply> {
    let Some(sub) = subs.iter().find(|s| args[1].eq_ignore_ascii_case(s.name.as_bytes())) else {
        return Err(Reply::error(format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            String::from_utf8_lossy(&args[1][..args[1].len().min(128)]),
            container.to_ascii_uppercase()
        )));
    };
    let n = args.len();
    let ok = if sub.arity >= 0 { n == sub.arity as usize } else { n >= (-sub.arity) as usize };
    if !ok {
        return Err(arity_error(&format!("{container}|{}", sub.name)));
    }
    Ok(sub)
}

/// Help text as Redis's `addReplyHelp`: one status line each.
pub(crate) fn help(lines: &[&'static str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::simple(*l)).collect())
}

const OBJECT_SUBS: &[Sub] = &[
    Sub { name: "encoding", arity: 3 },
    Sub { name: "freq", arity: 3 },
    Sub { name: "idletime", arity: 3 },
    Sub { name: "refcount", arity: 3 },
    Sub { name: "help", arity: 2 },
];

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Print this help.",
];

const LFU_NOT_SELECTED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
const LFU_SELECTED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

/// Redis's encoding of a string: `int` for an integer that round-trips, `embstr` up to 44 bytes, else `raw`.
pub(crate) fn string_encoding(s: &[u8]) -> &'static str {
    if s.len() <= 20 && parse_i64(s).is_some() {
        "int"
    } else if s.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

/// The encoding OBJECT ENCODING names for a value.
fn encoding(v: &Value) -> &'static str {
    match v {
        Value::Str(s) => string_encoding(s),
        other => other.collection_encoding().unwrap_or("unknown"),
    }
}

/// Redis's refcount: shared integers 0..9999 answer INT_MAX, anything else 1.
fn refcount(e: &Entry) -> i64 {
    let shared = as_str(e).ok().and_then(parse_i64).is_some_and(|n| (0..10_000).contains(&n));
    if shared {
        i64::from(i32::MAX)
    } else {
        1
    }
}

/// [OBJECT](https://redis.io/commands/object/): ENCODING, REFCOUNT, IDLETIME, FREQ and HELP of a key's value.
pub fn object(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(object_inner(ctx, args))
}

fn object_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let sub = subcommand("object", OBJECT_SUBS, args)?;
    if sub.name == "help" {
        return Ok(help(OBJECT_HELP));
    }
    let now = ctx.now;
    let limits = ctx.shard.ks.limits();
    let Some(e) = lookup_notouch(&mut ctx.shard.ks, ctx.db, args[2], now) else {
        return Ok(Reply::Nil);
    };
    Ok(match sub.name {
        "encoding" => Reply::bulk(encoding(&e.value)),
        "refcount" => Reply::Int(refcount(e)),
        "idletime" if limits.policy.lfu() => return Err(Reply::error(LFU_SELECTED)),
        "idletime" => Reply::Int(e.idle_s(now) as i64),
        "freq" if limits.policy.lfu() => Reply::Int(strand_engine::keyspace::evict::lfu_decayed(e, now, limits.lfu_decay_time) as i64),
        _ => return Err(Reply::error(LFU_NOT_SELECTED)),
    })
}

const MEMORY_SUBS: &[Sub] = &[
    Sub { name: "usage", arity: -3 },
    Sub { name: "doctor", arity: 2 },
    Sub { name: "malloc-stats", arity: 2 },
    Sub { name: "purge", arity: 2 },
    Sub { name: "help", arity: 2 },
];

const MEMORY_HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Print this help.",
];

/// Fixed bytes a key costs besides its name and value: dict node, entry, allocator slack.
const KEY_OVERHEAD: usize = 64;

/// [MEMORY](https://redis.io/commands/memory/): USAGE of a key (bytes, an
/// estimate: name + value + fixed overhead), DOCTOR, MALLOC-STATS, PURGE, HELP.
pub fn memory(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(memory_inner(ctx, args))
}

fn memory_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let sub = subcommand("memory", MEMORY_SUBS, args)?;
    match sub.name {
        "help" => return Ok(help(MEMORY_HELP)),
        "doctor" => {
            return Ok(Reply::Verbatim(
                "txt",
                b"Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.".to_vec(),
            ))
        }
        "malloc-stats" => return Ok(Reply::Verbatim("txt", b"Stats not supported for the current allocator".to_vec())),
        "purge" => return Ok(Reply::Ok),
        _ => {}
    }
    let mut j = 3;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"samples") && j + 1 < args.len() {
            if int_arg(args[j + 1])? < 0 {
                return Err(Reply::error(err::SYNTAX));
            }
            j += 2;
        } else {
            return Err(Reply::error(err::SYNTAX));
        }
    }
    let key = args[2];
    Ok(match ctx.shard.ks.peek(ctx.db, key, ctx.now) {
        Some(e) => Reply::Int((KEY_OVERHEAD + key.len() + e.value.usage_bytes()) as i64),
        None => Reply::Nil,
    })
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

const W: u32 = flags::WRITE;
const W_FAST: u32 = flags::WRITE | flags::FAST;
const R: u32 = flags::READONLY;
const R_FAST: u32 = flags::READONLY | flags::FAST;
const KS_READ_FAST: &[&str] = &["@keyspace", "@read", "@fast"];
const KS_READ_SLOW: &[&str] = &["@keyspace", "@read", "@slow"];
const KS_WRITE_FAST: &[&str] = &["@keyspace", "@write", "@fast"];
const KS_WRITE_SLOW: &[&str] = &["@keyspace", "@write", "@slow"];

/// A table entry.
const fn cmd(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    route: Route,
    categories: &'static [&'static str],
    summary: &'static str,
) -> Command {
    Command { name, arity, flags, first_key: keys.0, last_key: keys.1, step: keys.2, route, categories, summary }
}

const ONE: (i32, i32, i32) = (1, 1, 1);
const ALL_KEYS: (i32, i32, i32) = (1, -1, 1);
const TWO: (i32, i32, i32) = (1, 2, 1);
const NONE: (i32, i32, i32) = (0, 0, 0);
/// OBJECT/MEMORY: the key follows the subcommand (Redis gives these keys to the subcommands).
const SUB_KEY: (i32, i32, i32) = (2, 2, 1);

/// The generic key commands.
pub const COMMANDS: &[Command] = &[
    cmd("del", -2, W, ALL_KEYS, Route::Split(del, Merge::SumInt), KS_WRITE_SLOW, "Deletes one or more keys."),
    cmd("unlink", -2, W_FAST, ALL_KEYS, Route::Split(unlink, Merge::SumInt), KS_WRITE_FAST, "Asynchronously deletes one or more keys."),
    cmd("exists", -2, R_FAST, ALL_KEYS, Route::Split(exists, Merge::SumInt), KS_READ_FAST, "Determines whether one or more keys exist."),
    cmd(
        "touch",
        -2,
        R_FAST,
        ALL_KEYS,
        Route::Split(touch, Merge::SumInt),
        KS_READ_FAST,
        "Returns the number of existing keys out of those specified after updating the time they were last accessed.",
    ),
    cmd("type", 2, R_FAST, ONE, Route::Key(type_), KS_READ_FAST, "Determines the type of value stored at a key."),
    cmd("expire", -3, W_FAST, ONE, Route::Key(expire), KS_WRITE_FAST, "Sets the expiration time of a key in seconds."),
    cmd("pexpire", -3, W_FAST, ONE, Route::Key(pexpire), KS_WRITE_FAST, "Sets the expiration time of a key in milliseconds."),
    cmd("expireat", -3, W_FAST, ONE, Route::Key(expireat), KS_WRITE_FAST, "Sets the expiration time of a key to a Unix timestamp."),
    cmd(
        "pexpireat",
        -3,
        W_FAST,
        ONE,
        Route::Key(pexpireat),
        KS_WRITE_FAST,
        "Sets the expiration time of a key to a Unix milliseconds timestamp.",
    ),
    cmd("ttl", 2, R_FAST, ONE, Route::Key(ttl), KS_READ_FAST, "Returns the expiration time in seconds of a key."),
    cmd("pttl", 2, R_FAST, ONE, Route::Key(pttl), KS_READ_FAST, "Returns the expiration time in milliseconds of a key."),
    cmd("expiretime", 2, R_FAST, ONE, Route::Key(expiretime), KS_READ_FAST, "Returns the expiration time of a key as a Unix timestamp."),
    cmd(
        "pexpiretime",
        2,
        R_FAST,
        ONE,
        Route::Key(pexpiretime),
        KS_READ_FAST,
        "Returns the expiration time of a key as a Unix milliseconds timestamp.",
    ),
    cmd("persist", 2, W_FAST, ONE, Route::Key(persist), KS_WRITE_FAST, "Removes the expiration time of a key."),
    cmd(
        "keys",
        2,
        R,
        NONE,
        Route::All(keys, Merge::ConcatArray),
        &["@keyspace", "@read", "@slow", "@dangerous"],
        "Returns all key names that match a pattern.",
    ),
    cmd("scan", -2, R, NONE, Route::Cursor(scan), KS_READ_SLOW, "Iterates over the key names in the database."),
    cmd("randomkey", 1, R, NONE, Route::All(randomkey, Merge::AnyNonNil), KS_READ_SLOW, "Returns a random key name from the database."),
    cmd("dbsize", 1, R_FAST, NONE, Route::All(dbsize, Merge::SumInt), KS_READ_FAST, "Returns the number of keys in the database."),
    cmd("rename", 3, W, TWO, Route::Key(rename), KS_WRITE_SLOW, "Renames a key and overwrites the destination."),
    cmd("renamenx", 3, W_FAST, TWO, Route::Key(renamenx), KS_WRITE_FAST, "Renames a key only when the target key name doesn't exist."),
    cmd("copy", -3, W | flags::DENYOOM, TWO, Route::Key(copy), KS_WRITE_SLOW, "Copies the value of a key to a new key."),
    cmd("move", 3, W_FAST, ONE, Route::Key(move_), KS_WRITE_FAST, "Moves a key to another database."),
    cmd(
        "swapdb",
        3,
        W_FAST,
        NONE,
        Route::All(swapdb, Merge::FirstError),
        &["@keyspace", "@write", "@fast", "@dangerous"],
        "Swaps two Redis databases.",
    ),
    cmd(
        "flushdb",
        -1,
        W,
        NONE,
        Route::All(flushdb, Merge::FirstError),
        &["@keyspace", "@write", "@slow", "@dangerous"],
        "Remove all keys from the current database.",
    ),
    cmd(
        "flushall",
        -1,
        W,
        NONE,
        Route::All(flushall, Merge::FirstError),
        &["@keyspace", "@write", "@slow", "@dangerous"],
        "Removes all keys from all databases.",
    ),
    cmd("object", -2, flags::CONTAINER, SUB_KEY, Route::Key(object), &["@slow"], "A container for object introspection commands."),
    cmd("memory", -2, flags::CONTAINER, SUB_KEY, Route::Key(memory), &["@slow"], "A container for memory diagnostics commands."),
];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cond(opts: &[&[u8]]) -> Result<ExpireCond, Reply> {
        let mut args: Vec<&[u8]> = vec![b"expire", b"k", b"10"];
        args.extend_from_slice(opts);
        ExpireCond::parse(&args)
    }

    #[test]
    fn expire_options() {
        assert_eq!(cond(&[]).unwrap(), ExpireCond::default());
        assert_eq!(cond(&[b"nx", b"xx"]).unwrap_err(), Reply::error("ERR NX and XX, GT or LT options at the same time are not compatible"));
        assert_eq!(cond(&[b"gt", b"LT"]).unwrap_err(), Reply::error("ERR GT and LT options at the same time are not compatible"));
        assert_eq!(cond(&[b"foo"]).unwrap_err(), Reply::error("ERR Unsupported option foo"));
        assert!(cond(&[b"xx", b"gt"]).is_ok());
    }

    #[test]
    fn expire_conditions() {
        let c = |o: &[&[u8]]| cond(o).unwrap();
        assert!(c(&[]).allows(5, None));
        assert!(c(&[b"nx"]).allows(5, None));
        assert!(!c(&[b"nx"]).allows(5, Some(10)));
        assert!(!c(&[b"xx"]).allows(5, None));
        assert!(c(&[b"xx"]).allows(5, Some(10)));
        // GT: no expiry counts as infinite, so GT never applies.
        assert!(!c(&[b"gt"]).allows(5, None));
        assert!(c(&[b"gt"]).allows(11, Some(10)));
        assert!(!c(&[b"gt"]).allows(10, Some(10)));
        // LT: no expiry is infinite, so any deadline is less.
        assert!(c(&[b"lt"]).allows(5, None));
        assert!(c(&[b"lt"]).allows(9, Some(10)));
        assert!(!c(&[b"lt"]).allows(10, Some(10)));
    }

    #[test]
    fn expire_arithmetic() {
        assert_eq!(expire_deadline(b"10", 1000, 5, "expire").unwrap(), 10_005);
        assert_eq!(expire_deadline(b"-10", 1000, 0, "expire").unwrap(), -10_000);
        let invalid = Reply::error("ERR invalid expire time in 'expire' command");
        assert_eq!(expire_deadline(b"9223372036854775807", 1000, 0, "expire").unwrap_err(), invalid);
        assert_eq!(expire_deadline(b"9223372036854775807", 1, 1, "expire").unwrap_err(), invalid);
        assert_eq!(expire_deadline(b"1.5", 1, 1, "expire").unwrap_err(), Reply::error(err::NOT_INTEGER));
    }

    #[test]
    fn scan_options() {
        let a: Vec<&[u8]> = vec![b"scan", b"0", b"MATCH", b"a*", b"count", b"100", b"type", b"string"];
        let o = ScanOptions::parse(&a).unwrap();
        assert_eq!(o, ScanOptions { count: 100, pattern: Some(b"a*"), type_name: Some(b"string") });
        let a: Vec<&[u8]> = vec![b"scan", b"0", b"match", b"*"];
        assert_eq!(ScanOptions::parse(&a).unwrap().pattern, None);
        for bad in [&[&b"count"[..], b"0"][..], &[b"count"], &[b"foo", b"bar"], &[b"match"]] {
            let mut a: Vec<&[u8]> = vec![b"scan", b"0"];
            a.extend_from_slice(bad);
            assert_eq!(ScanOptions::parse(&a).unwrap_err(), Reply::error(err::SYNTAX));
        }
        let a: Vec<&[u8]> = vec![b"scan", b"0", b"count", b"x"];
        assert_eq!(ScanOptions::parse(&a).unwrap_err(), Reply::error(err::NOT_INTEGER));
    }

    #[test]
    fn scan_cursors_walk_the_shards() {
        assert_eq!(next_scan_cursor(5, 2, 4), (5 << 8) | 2);
        assert_eq!(next_scan_cursor(0, 2, 4), 3);
        assert_eq!(next_scan_cursor(0, 3, 4), 0);
        assert_eq!(next_scan_cursor(0, 0, 1), 0);
    }

    #[test]
    fn encodings() {
        assert_eq!(string_encoding(b"12345"), "int");
        assert_eq!(string_encoding(b"-9223372036854775808"), "int");
        assert_eq!(string_encoding(b"012"), "embstr");
        assert_eq!(string_encoding(b"1.5"), "embstr");
        assert_eq!(string_encoding(&[b'a'; 44]), "embstr");
        assert_eq!(string_encoding(&[b'a'; 45]), "raw");
    }

    #[test]
    fn db_indexes() {
        assert_eq!(db_index(b"15").unwrap(), 15);
        assert_eq!(db_index(b"16").unwrap_err(), Reply::error(err::DB_INDEX));
        assert_eq!(db_index(b"-1").unwrap_err(), Reply::error(err::DB_INDEX));
        assert_eq!(db_index(b"x").unwrap_err(), Reply::error(err::NOT_INTEGER));
        assert_eq!(swap_index(b"x", "ERR invalid first DB index").unwrap_err(), Reply::error("ERR invalid first DB index"));
        assert_eq!(swap_index(b"99999999999", "ERR invalid first DB index").unwrap_err(), Reply::error("ERR invalid first DB index"));
    }

    #[test]
    fn subcommands() {
        let a: Vec<&[u8]> = vec![b"object", b"foo", b"k"];
        assert_eq!(subcommand("object", OBJECT_SUBS, &a).err().unwrap(), Reply::error("ERR unknown subcommand 'foo'. Try OBJECT HELP."));
        let a: Vec<&[u8]> = vec![b"object", b"ENCODING"];
        assert_eq!(
            subcommand("object", OBJECT_SUBS, &a).err().unwrap(),
            Reply::error("ERR wrong number of arguments for 'object|encoding' command")
        );
        let a: Vec<&[u8]> = vec![b"object", b"help"];
        assert_eq!(subcommand("object", OBJECT_SUBS, &a).ok().unwrap().name, "help");
    }
}
