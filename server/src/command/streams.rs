//! Stream commands without consumer groups: <https://redis.io/docs/latest/develop/data-types/streams/>.
//!
//! XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID and XREAD, with
//! Redis 7.4's replies and error strings. Each write is one
//! [`StreamChange`] decided here in full: XADD logs the ID it chose (the
//! clock is read once, here), trimming logs how many entries leave the
//! head. XADD with trimming is one record holding both, so a crash keeps
//! both or neither.
//!
//! The ID parsers of every stream command live here too, shared with
//! [`super::stream_groups`].
//!
//! Approximate trimming (`~`): Redis trims whole radix-tree nodes of up to
//! `stream-node-max-entries` (100) entries. strand keeps entries in a
//! B-tree, so `~` trims whole blocks of 100 entries from the head: never
//! below the threshold, and never more than LIMIT (default 10000).

use strand_engine::keyspace::stream::{Fields, Stream, StreamChange, StreamId};
use strand_engine::keyspace::{Change, Op};

use super::strings::{db8, int_arg, parse_i64, write};
use super::typed::{self, change};
use super::{arity_error, err, flags, one_key, Command, Ctx};
use crate::reply::Reply;

/// Joins a handler's result: the reply, or the error it stopped at.
pub(crate) fn reply(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

/// Entries per block of approximate trimming (Redis's default `stream-node-max-entries`).
const TRIM_BLOCK: u64 = 100;

// ---------------------------------------------------------------------------
// IDs
// ---------------------------------------------------------------------------

/// Redis's invalid-ID error.
pub(crate) fn invalid_id() -> Reply {
    Reply::error("ERR Invalid stream ID specified as stream command argument")
}

/// Redis's `string2ull`: a strict `long long` that is not negative, else C's
/// `strtoull` over the whole string (leading blanks, a sign, no overflow).
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let t = s.iter().position(|c| !c.is_ascii_whitespace()).map_or(&[][..], |p| &s[p..]);
    let (negative, digits) = match t.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative { v.wrapping_neg() } else { v })
}

/// An ID as a command argument: `ms-seq`, `ms` (sequence `missing_seq`),
/// and unless `strict`, `-` and `+`. With `star_seq`, `ms-*` is taken
/// (XADD) and the flag says whether the sequence was given.
fn parse_id_generic(arg: &[u8], missing_seq: u64, strict: bool, star_seq: bool) -> Result<(StreamId, bool), Reply> {
    if arg.len() > 127 {
        return Err(invalid_id());
    }
    match arg {
        b"-" | b"+" if strict => return Err(invalid_id()),
        b"-" => return Ok((StreamId::MIN, true)),
        b"+" => return Ok((StreamId::MAX, true)),
        _ => {}
    }
    let (ms, seq) = match arg.iter().position(|&c| c == b'-') {
        Some(p) => (&arg[..p], Some(&arg[p + 1..])),
        None => (arg, None),
    };
    let ms = string2ull(ms).ok_or_else(invalid_id)?;
    match seq {
        Some(b"*") if star_seq => Ok((StreamId::new(ms, 0), false)),
        Some(seq) => Ok((StreamId::new(ms, string2ull(seq).ok_or_else(invalid_id)?), true)),
        None => Ok((StreamId::new(ms, missing_seq), true)),
    }
}

/// Redis's `streamParseIDOrReply`: `-` and `+` allowed.
pub(crate) fn parse_id(arg: &[u8], missing_seq: u64) -> Result<StreamId, Reply> {
    parse_id_generic(arg, missing_seq, false, false).map(|(id, _)| id)
}

/// Redis's `streamParseStrictIDOrReply`: an ID, not `-` or `+`.
pub(crate) fn parse_strict_id(arg: &[u8]) -> Result<StreamId, Reply> {
    parse_id_generic(arg, 0, true, false).map(|(id, _)| id)
}

/// A bound of a range: an ID, `-`, `+`, or `(ID` for an exclusive one
/// (Redis's `streamParseIntervalIDOrReply`); answers the inclusive bound.
pub(crate) fn parse_bound(arg: &[u8], missing_seq: u64, start: bool) -> Result<StreamId, Reply> {
    match arg.split_first() {
        Some((b'(', rest)) if !rest.is_empty() => {
            let id = parse_id_generic(rest, missing_seq, true, false)?.0;
            let moved = if start { id.next() } else { id.prev() };
            let which = if start { "start" } else { "end" };
            moved.ok_or_else(|| Reply::error(format!("ERR invalid {which} ID for the interval")))
        }
        _ => parse_id(arg, missing_seq),
    }
}

/// An ID as a bulk string.
pub(crate) fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(id.to_string().into_bytes())
}

/// An entry as Redis answers it: `[id, [field, value ...]]`.
pub(crate) fn entry_reply(id: StreamId, fields: &Fields) -> Reply {
    Reply::Array(vec![id_reply(id), Reply::Array(fields.iter().map(Reply::bulk).collect())])
}

/// A `COUNT`-style argument: an integer, negative taken as 0.
fn count_arg(arg: &[u8]) -> Result<u64, Reply> {
    Ok(int_arg(arg)?.max(0) as u64)
}

// ---------------------------------------------------------------------------
// Lookups
// ---------------------------------------------------------------------------

/// The stream at `key` for a read: None if missing, WRONGTYPE for another type.
pub(crate) fn read<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a Stream>, Reply> {
    typed::read(ctx, key)
}

/// The stream at `key` before a write.
pub(crate) fn peek<'a>(ctx: &'a Ctx<'_>, key: &[u8]) -> Result<Option<&'a Stream>, Reply> {
    typed::peek(ctx, key)
}

/// Writes one stream change.
pub(crate) fn stream_change(ctx: &mut Ctx<'_>, key: &[u8], c: StreamChange<'_>) -> Result<(), Reply> {
    change(ctx, key, Change::Stream(c))
}

// ---------------------------------------------------------------------------
// Trimming
// ---------------------------------------------------------------------------

/// How to trim: XADD's and XTRIM's MAXLEN / MINID options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    None,
    MaxLen(u64),
    MinId(StreamId),
}

/// The options of XADD and XTRIM (Redis's `streamParseAddOrTrimArgsOrReply`).
#[derive(Debug, Clone, Copy)]
struct TrimArgs<'a> {
    strategy: Strategy,
    approx: bool,
    /// Most entries one approximate trim removes; 0: no limit.
    limit: u64,
    /// XADD: NOMKSTREAM.
    no_mkstream: bool,
    /// XADD: the ID, and whether its sequence was given (`ms-*` leaves it out). None: `*`.
    id: Option<(StreamId, bool)>,
    /// XADD: IDMP (producer, idempotent ID) or IDMPAUTO (producer, None).
    idmp: Option<(&'a [u8], Option<&'a [u8]>)>,
}

impl<'a> TrimArgs<'a> {
    /// Parses from `args[2]`; answers the options and where the ID (XADD) stopped the parse.
    fn parse(args: &[&'a [u8]], xadd: bool) -> Result<(TrimArgs<'a>, usize), Reply> {
        let mut t = TrimArgs { strategy: Strategy::None, approx: false, limit: 0, no_mkstream: false, id: None, idmp: None };
        let mut limit_given = false;
        let mut i = 2;
        while i < args.len() {
            let more = args.len() - 1 - i;
            let opt = args[i];
            let is = |name: &str| opt.eq_ignore_ascii_case(name.as_bytes());
            if xadd && opt == b"*" {
                break;
            } else if (is("maxlen") || is("minid")) && more > 0 {
                if t.strategy != Strategy::None {
                    return Err(Reply::error("ERR syntax error, MAXLEN and MINID options at the same time are not compatible"));
                }
                t.approx = false;
                if more >= 2 && (args[i + 1] == b"~" || args[i + 1] == b"=") {
                    t.approx = args[i + 1] == b"~";
                    i += 1;
                }
                if is("maxlen") {
                    let n = int_arg(args[i + 1])?;
                    if n < 0 {
                        return Err(Reply::error("ERR The MAXLEN argument must be >= 0."));
                    }
                    t.strategy = Strategy::MaxLen(n as u64);
                } else {
                    t.strategy = Strategy::MinId(parse_id(args[i + 1], 0)?);
                }
                i += 1;
            } else if is("limit") && more > 0 {
                let n = int_arg(args[i + 1])?;
                if n < 0 {
                    return Err(Reply::error("ERR The LIMIT argument must be >= 0."));
                }
                t.limit = n as u64;
                limit_given = true;
                i += 1;
            } else if xadd && is("nomkstream") {
                t.no_mkstream = true;
            } else if xadd && (is("idmp") && more >= 2 || is("idmpauto") && more >= 1) {
                if t.idmp.is_some() {
                    return Err(Reply::error(super::stream_config::TWICE));
                }
                let auto = is("idmpauto");
                t.idmp = Some(super::stream_config::parse(auto, args[i + 1], (!auto).then(|| args[i + 2]))?);
                i += if auto { 1 } else { 2 };
            } else if xadd {
                t.id = Some(parse_id_generic(opt, 0, true, true)?);
                break;
            } else {
                return Err(Reply::error(err::SYNTAX));
            }
            i += 1;
        }
        if t.limit > 0 && t.strategy == Strategy::None {
            return Err(Reply::error("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"));
        }
        if t.idmp.is_some() && t.id.is_some() {
            return Err(Reply::error(super::stream_config::AUTO_IDS_ONLY));
        }
        if !xadd && t.strategy == Strategy::None {
            return Err(Reply::error("ERR syntax error, XTRIM must be called with a trimming strategy"));
        }
        if limit_given && !t.approx {
            return Err(Reply::error("ERR syntax error, LIMIT cannot be used without the special ~ option"));
        }
        if !limit_given && t.approx {
            t.limit = 100 * TRIM_BLOCK;
        }
        Ok((t, i))
    }

    /// How many entries leave the head of a stream of `len` entries, where
    /// `below(id)` counts the entries with smaller IDs.
    fn count(&self, len: u64, below: impl Fn(StreamId) -> u64) -> u64 {
        let excess = match self.strategy {
            Strategy::None => 0,
            Strategy::MaxLen(max) => len.saturating_sub(max),
            Strategy::MinId(min) => below(min),
        };
        if !self.approx {
            return excess;
        }
        let mut n = excess / TRIM_BLOCK * TRIM_BLOCK;
        if self.limit > 0 {
            n = n.min(self.limit / TRIM_BLOCK * TRIM_BLOCK);
        }
        n
    }
}

// ---------------------------------------------------------------------------
// XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID
// ---------------------------------------------------------------------------

/// [XADD](https://redis.io/commands/xadd/): appends an entry, with an ID
/// chosen by the server (`*`), partly (`ms-*`) or by the caller, trimming
/// after it if asked.
pub fn xadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xadd_inner(ctx, args))
}

fn xadd_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let (t, i) = TrimArgs::parse(args, true)?;
    let fields = args.get(i + 1..).unwrap_or(&[]);
    if fields.len() < 2 || fields.len() % 2 == 1 {
        return Err(arity_error("xadd"));
    }
    if let Some((id, true)) = t.id {
        if id.is_zero() {
            return Err(Reply::error("ERR The ID specified in XADD must be greater than 0-0"));
        }
    }
    let key = args[1];
    let now = ctx.now;
    let auto_iid;
    let idmp = match t.idmp {
        Some((pid, Some(iid))) => Some((pid, iid)),
        Some((pid, None)) => {
            auto_iid = strand_engine::keyspace::idmp::auto_iid(fields);
            Some((pid, &auto_iid[..]))
        }
        None => None,
    };
    // A producer's retry: the entry its first XADD added answers, nothing is added.
    if let Some((pid, iid)) = idmp {
        if let Some(first) = peek(ctx, key)?.and_then(|s| s.idmp.as_ref()?.lookup(pid, iid, now)) {
            write(ctx, Op::Coll { db: db8(ctx), key, change: Change::Stream(StreamChange::IdmpDuplicate) })?;
            return Ok(id_reply(first));
        }
    }
    let (id, trim, retained) = {
        let s = peek(ctx, key)?;
        if s.is_none() && t.no_mkstream {
            return Ok(Reply::Nil);
        }
        let empty = Stream::default();
        let s = s.unwrap_or(&empty);
        let last = s.last_id;
        if last == StreamId::MAX {
            return Err(Reply::error("ERR The stream has exhausted the last possible ID, unable to add more items"));
        }
        let too_small = || Reply::error("ERR The ID specified in XADD is equal or smaller than the target stream top item");
        let id = match t.id {
            None if now > last.ms => StreamId::new(now, 0),
            None => last.next().ok_or_else(too_small)?,
            Some((id, true)) => id,
            Some((id, false)) if id.ms == last.ms => StreamId::new(id.ms, last.seq.checked_add(1).ok_or_else(too_small)?),
            Some((id, false)) => id,
        };
        if id <= last {
            return Err(too_small());
        }
        let trim = t.count(s.len() as u64 + 1, |min| s.count_below(min) as u64 + u64::from(id < min));
        // Retention (XCFGSET RETENTION-MS/-BYTES) trims in the same record.
        let kept = s.retention.is_set();
        (id, trim.max(s.retention_trim(now, strand_engine::keyspace::stream::entry_bytes(fields))), kept)
    };
    let add = match idmp {
        Some((pid, iid)) => StreamChange::IdmpAdd { id, fields: fields.to_vec(), pid, iid },
        None => StreamChange::Add { id, fields: fields.to_vec() },
    };
    let add = Op::Coll { db: db8(ctx), key, change: Change::Stream(add) };
    let op = if trim > 0 {
        let cut = Op::Coll { db: db8(ctx), key, change: Change::Stream(StreamChange::Trim { count: trim }) };
        Op::Group(vec![add, cut])
    } else {
        add
    };
    write(ctx, op)?;
    if retained {
        let db = db8(ctx);
        ctx.shard.stream_retention.note(db, key);
    }
    Ok(id_reply(id))
}

/// [XLEN](https://redis.io/commands/xlen/): entries in a stream (0 if missing).
pub fn xlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(read(ctx, args[1]).map(|s| Reply::Int(s.map_or(0, |s| s.len() as i64))))
}

/// Redis's `xrangeGenericCommand`.
fn xrange_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], rev: bool) -> Result<Reply, Reply> {
    let (start_arg, end_arg) = if rev { (args[3], args[2]) } else { (args[2], args[3]) };
    let start = parse_bound(start_arg, 0, true)?;
    let end = parse_bound(end_arg, u64::MAX, false)?;
    let mut count = None;
    let mut j = 4;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            count = Some(count_arg(args[j + 1])?);
            j += 2;
        } else {
            return Err(Reply::error(err::SYNTAX));
        }
    }
    let Some(s) = read(ctx, args[1])? else { return Ok(Reply::Array(Vec::new())) };
    if count == Some(0) {
        return Ok(Reply::NilArray);
    }
    let n = count.map_or(usize::MAX, |c| c as usize);
    Ok(Reply::Array(s.range(start, end, rev).take(n).map(|(id, f)| entry_reply(id, f)).collect()))
}

/// [XRANGE](https://redis.io/commands/xrange/): entries from start to end (inclusive, or exclusive with `(`).
pub fn xrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xrange_generic(ctx, args, false))
}

/// [XREVRANGE](https://redis.io/commands/xrevrange/): XRANGE from end to start.
pub fn xrevrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xrange_generic(ctx, args, true))
}

/// [XDEL](https://redis.io/commands/xdel/): deletes entries by ID; answers how many existed.
pub fn xdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xdel_inner(ctx, args))
}

fn xdel_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let ids = args[2..].iter().map(|a| parse_strict_id(a)).collect::<Result<Vec<_>, _>>()?;
    let Some(s) = peek(ctx, args[1])? else { return Ok(Reply::Int(0)) };
    let mut found: Vec<StreamId> = ids.into_iter().filter(|id| s.get(*id).is_some()).collect();
    found.sort_unstable();
    found.dedup();
    let n = found.len();
    if n > 0 {
        stream_change(ctx, args[1], StreamChange::Del(found))?;
    }
    Ok(Reply::Int(n as i64))
}

/// [XTRIM](https://redis.io/commands/xtrim/): drops entries from the head by MAXLEN or MINID.
pub fn xtrim(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xtrim_inner(ctx, args))
}

fn xtrim_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let (t, _) = TrimArgs::parse(args, false)?;
    let Some(s) = peek(ctx, args[1])? else { return Ok(Reply::Int(0)) };
    let n = t.count(s.len() as u64, |min| s.count_below(min) as u64);
    if n > 0 {
        stream_change(ctx, args[1], StreamChange::Trim { count: n })?;
    }
    Ok(Reply::Int(n as i64))
}

/// [XSETID](https://redis.io/commands/xsetid/): sets a stream's last ID,
/// and with ENTRIESADDED / MAXDELETEDID its counters.
pub fn xsetid(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xsetid_inner(ctx, args))
}

fn xsetid_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let id = parse_strict_id(args[2])?;
    let (mut entries_added, mut max_deleted) = (None, StreamId::MIN);
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        if args[i].eq_ignore_ascii_case(b"entriesadded") && more {
            let n = int_arg(args[i + 1])?;
            if n < 0 {
                return Err(Reply::error("ERR entries_added must be positive"));
            }
            entries_added = Some(n as u64);
        } else if args[i].eq_ignore_ascii_case(b"maxdeletedid") && more {
            max_deleted = parse_strict_id(args[i + 1])?;
            if id < max_deleted {
                return Err(Reply::error("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"));
            }
        } else {
            return Err(Reply::error(err::SYNTAX));
        }
        i += 2;
    }
    let s = peek(ctx, args[1])?.ok_or_else(|| Reply::error(err::NO_SUCH_KEY))?;
    if let Some((top, _)) = s.last() {
        if id < top {
            return Err(Reply::error("ERR The ID specified in XSETID is smaller than the target stream top item"));
        }
        if entries_added.is_some_and(|n| (s.len() as u64) > n) {
            return Err(Reply::error("ERR The entries_added specified in XSETID is smaller than the target stream length"));
        }
    }
    if id < s.max_deleted {
        return Err(Reply::error("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id"));
    }
    let max_deleted = (!max_deleted.is_zero()).then_some(max_deleted);
    stream_change(ctx, args[1], StreamChange::SetId { last_id: id, entries_added, max_deleted })?;
    Ok(Reply::Ok)
}

// ---------------------------------------------------------------------------
// XREAD (and the parse XREADGROUP shares)
// ---------------------------------------------------------------------------

/// The options of XREAD and XREADGROUP (Redis's `xreadCommand` parse).
pub(crate) struct ReadArgs<'a> {
    /// BLOCK in ms: None without BLOCK, Some(None) for 0 (forever).
    pub block: Option<Option<u64>>,
    /// COUNT, 0 for all.
    pub count: u64,
    /// XREADGROUP: the group and the consumer.
    pub group: Option<(&'a [u8], &'a [u8])>,
    /// XREADGROUP: NOACK.
    pub noack: bool,
    /// XREADGROUP: CLAIM min-idle-time (Redis 8.4): `>` first claims pending entries idle this long.
    pub claim: Option<u64>,
    /// Position of the first key; the IDs follow the keys.
    pub streams_at: usize,
    /// How many streams.
    pub streams: usize,
}

impl<'a> ReadArgs<'a> {
    /// Parses from `args[1]`.
    pub(crate) fn parse(args: &[&'a [u8]], group_cmd: bool) -> Result<ReadArgs<'a>, Reply> {
        let mut r = ReadArgs { block: None, count: 0, group: None, noack: false, claim: None, streams_at: 0, streams: 0 };
        let mut i = 1;
        while i < args.len() {
            let more = args.len() - i - 1;
            let is = |name: &str| args[i].eq_ignore_ascii_case(name.as_bytes());
            if is("block") && more > 0 {
                r.block = Some(super::timeout_ms_arg(args[i + 1])?);
                i += 1;
            } else if is("count") && more > 0 {
                r.count = count_arg(args[i + 1])?;
                i += 1;
            } else if is("streams") && more > 0 {
                r.streams_at = i + 1;
                if !more.is_multiple_of(2) {
                    let (name, symbol) = if group_cmd { ("xreadgroup", '>') } else { ("xread", '$') };
                    return Err(Reply::error(format!(
                        "ERR Unbalanced '{name}' list of streams: for each stream key an ID or '{symbol}' must be specified."
                    )));
                }
                r.streams = more / 2;
                break;
            } else if is("group") && more >= 2 {
                if !group_cmd {
                    return Err(Reply::error("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."));
                }
                r.group = Some((args[i + 1], args[i + 2]));
                i += 2;
            } else if is("claim") && more > 0 {
                if !group_cmd {
                    return Err(Reply::error("ERR The CLAIM option is only supported by XREADGROUP. You called XREAD instead."));
                }
                let ms = int_arg(args[i + 1])?;
                if ms < 0 {
                    return Err(Reply::error("ERR min-idle-time must be a positive integer"));
                }
                r.claim = Some(ms as u64);
                i += 1;
            } else if is("noack") {
                if !group_cmd {
                    return Err(Reply::error("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."));
                }
                r.noack = true;
            } else {
                return Err(Reply::error(err::SYNTAX));
            }
            i += 1;
        }
        if r.streams_at == 0 {
            return Err(Reply::error(err::SYNTAX));
        }
        if group_cmd && r.group.is_none() {
            return Err(Reply::error("ERR Missing GROUP option for XREADGROUP"));
        }
        Ok(r)
    }

    /// The stream keys.
    pub(crate) fn keys<'b>(&self, args: &'b [&'a [u8]]) -> &'b [&'a [u8]] {
        &args[self.streams_at..self.streams_at + self.streams]
    }

    /// The ID arguments.
    pub(crate) fn ids<'b>(&self, args: &'b [&'a [u8]]) -> &'b [&'a [u8]] {
        &args[self.streams_at + self.streams..]
    }
}

/// [XREAD](https://redis.io/commands/xread/): entries after an ID from one
/// or more streams, optionally waiting (BLOCK) for new ones. `$` means the
/// stream's last ID when the command ran, `+` its last entry (Redis 7.4).
pub fn xread(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xread_inner(ctx, args))
}

fn xread_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let r = ReadArgs::parse(args, false)?;
    let keys = r.keys(args);
    // After-which IDs, with `$` and `+` resolved now.
    let mut after = Vec::with_capacity(keys.len());
    let mut resolved = false;
    for (&key, &arg) in keys.iter().zip(r.ids(args)) {
        let s = read(ctx, key)?;
        let id = match arg {
            b"$" => {
                resolved = true;
                s.map_or(StreamId::MIN, |s| s.last_id)
            }
            b"+" => s.and_then(|s| s.last()).and_then(|(id, _)| id.prev()).unwrap_or(StreamId::MIN),
            b">" => {
                return Err(Reply::error(
                    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                ))
            }
            _ => parse_strict_id(arg)?,
        };
        after.push(id);
    }
    let count = if r.count == 0 { usize::MAX } else { r.count as usize };
    let mut out = Vec::new();
    for (&key, &gt) in keys.iter().zip(&after) {
        let Some(s) = read(ctx, key)? else { continue };
        let Some(start) = gt.next() else { continue };
        let entries: Vec<Reply> = s.range(start, StreamId::MAX, false).take(count).map(|(id, f)| entry_reply(id, f)).collect();
        if !entries.is_empty() {
            out.push((Reply::bulk(key), Reply::Array(entries)));
        }
    }
    if !out.is_empty() {
        return Ok(Reply::Keyed(out));
    }
    let Some(timeout) = r.block else { return Ok(Reply::NilArray) };
    if !resolved {
        return Ok(ctx.block(keys, timeout, Reply::NilArray));
    }
    // Wait for entries after the IDs `$` meant now, not when woken.
    let mut rerun: Vec<Vec<u8>> = args[..r.streams_at + r.streams].iter().map(|a| a.to_vec()).collect();
    rerun.extend(after.iter().map(|id| id.to_string().into_bytes()));
    Ok(ctx.block_with(keys, timeout, Reply::NilArray, rerun))
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

const W_DENY_FAST: u32 = flags::WRITE | flags::DENYOOM | flags::FAST;
const W_FAST: u32 = flags::WRITE | flags::FAST;
const W: u32 = flags::WRITE;
const R: u32 = flags::READONLY;
const R_FAST: u32 = flags::READONLY | flags::FAST;
const R_BLOCK: u32 = flags::READONLY | flags::BLOCKING;
const WRITE_FAST: &[&str] = &["@write", "@stream", "@fast"];
const WRITE_SLOW: &[&str] = &["@write", "@stream", "@slow"];
const READ_FAST: &[&str] = &["@read", "@stream", "@fast"];
const READ_SLOW: &[&str] = &["@read", "@stream", "@slow"];
const READ_BLOCKING: &[&str] = &["@read", "@stream", "@slow", "@blocking"];

/// The stream commands without groups.
pub const COMMANDS: &[Command] = &[
    one_key("xadd", -5, W_DENY_FAST, xadd, WRITE_FAST, "Appends a new message to a stream. Creates the key if it doesn't exist."),
    one_key("xlen", 2, R_FAST, xlen, READ_FAST, "Return the number of messages in a stream."),
    one_key("xrange", -4, R, xrange, READ_SLOW, "Returns the messages from a stream within a range of IDs."),
    one_key("xrevrange", -4, R, xrevrange, READ_SLOW, "Returns the messages from a stream within a range of IDs in reverse order."),
    one_key("xdel", -3, W_FAST, xdel, WRITE_FAST, "Returns the number of messages after removing them from a stream."),
    one_key("xtrim", -4, W, xtrim, WRITE_SLOW, "Deletes messages from the beginning of a stream."),
    one_key("xsetid", -3, W_DENY_FAST, xsetid, WRITE_FAST, "An internal command for replicating stream values."),
    one_key("xcfgset", -2, W_FAST, super::stream_config::xcfgset, WRITE_FAST, "Sets a stream's IDMP limits (Redis 8.6) and its retention by age and size (strand's own)."),
    Command {
        name: "xread",
        arity: -4,
        flags: R_BLOCK | super::flags::MOVABLEKEYS,
        first_key: 0,
        last_key: 0,
        step: 1,
        route: super::Route::Key(xread),
        categories: READ_BLOCKING,
        summary: "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_redis_does() {
        assert_eq!(parse_id(b"5", 0).ok(), Some(StreamId::new(5, 0)));
        assert_eq!(parse_id(b"5", u64::MAX).ok(), Some(StreamId::new(5, u64::MAX)));
        assert_eq!(parse_id(b"5-7", 0).ok(), Some(StreamId::new(5, 7)));
        assert_eq!(parse_id(b"-", 0).ok(), Some(StreamId::MIN));
        assert_eq!(parse_id(b"+", 0).ok(), Some(StreamId::MAX));
        assert!(parse_strict_id(b"-").is_err());
        assert!(parse_id(b"-1", 0).is_err());
        assert!(parse_id(b"1-2-3", 0).is_err());
        assert!(parse_id(b"abc", 0).is_err());
        assert!(parse_id(b"18446744073709551616", 0).is_err());
        // C's strtoull: leading blanks and '+' pass, and so does a zero-padded number.
        assert_eq!(parse_id(b" 3", 0).ok(), Some(StreamId::new(3, 0)));
        assert_eq!(parse_id(b"+3-01", 0).ok(), Some(StreamId::new(3, 1)));
        assert_eq!(parse_id_generic(b"7-*", 0, true, true).ok(), Some((StreamId::new(7, 0), false)));
        assert!(parse_id_generic(b"7-*", 0, true, false).is_err());
        assert_eq!(parse_bound(b"(5-0", 0, true).ok(), Some(StreamId::new(5, 1)));
        assert_eq!(parse_bound(b"(5-0", 0, false).ok(), Some(StreamId::new(4, u64::MAX)));
        assert!(parse_bound(b"(0-0", 0, false).is_err());
        assert!(parse_bound(b"(-", 0, true).is_err());
    }

    #[test]
    fn approximate_trims_take_whole_blocks() {
        let t = |strategy, approx, limit| TrimArgs { strategy, approx, limit, no_mkstream: false, id: None, idmp: None };
        assert_eq!(t(Strategy::MaxLen(10), false, 0).count(250, |_| 0), 240);
        assert_eq!(t(Strategy::MaxLen(10), true, 10_000).count(250, |_| 0), 200);
        assert_eq!(t(Strategy::MaxLen(10), true, 150).count(250, |_| 0), 100);
        assert_eq!(t(Strategy::MaxLen(10), true, 0).count(250, |_| 0), 200);
        assert_eq!(t(Strategy::MaxLen(300), true, 0).count(250, |_| 0), 0);
        assert_eq!(t(Strategy::MinId(StreamId::new(9, 0)), false, 0).count(250, |_| 42), 42);
    }
}
