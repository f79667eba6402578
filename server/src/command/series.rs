//! Time-series commands (RedisTimeSeries's TS.* interface), one key each.
//!
//! Every handler runs on the shard that owns its key. A write is decided
//! in full before it is logged: duplicates are resolved by the series'
//! policy (or ON_DUPLICATE), retention and IGNORE are checked, and the
//! final values go to the log as [`Change::TsAdd`]. Compaction rules run
//! here too: when a sample closes a bucket of a rule (or lands in a closed
//! one, or TS.DEL empties part of one), the bucket's aggregate is computed
//! from the source's samples and written to the destination in the same
//! log record (a group), so replay reproduces it without arithmetic. A
//! rule's source and destination must live on the same shard: TS.CREATERULE
//! names both keys, so the dispatcher answers CROSSSLOT otherwise (use a
//! `{hash tag}`).
//!
//! Options are read left to right and LABELS takes every argument after it
//! as label/value pairs, so a label value may be any bytes (`(`, `,`, `=`,
//! spaces, or words such as `encoding`), unlike RedisTimeSeries's parser.
//! The multi-series commands (TS.MGET, TS.MRANGE, TS.QUERYINDEX) are in
//! [`super::series_multi`].

use std::collections::BTreeMap;

use strand_engine::keyspace::Change;
use strand_engine::series::agg::{Agg, Aggregation, BucketTs};
use strand_engine::series::codec::Sample;
use strand_engine::series::{Config, Duplicate, Labels, Rule, Series, Settings};

use super::strings::parse_i64;
use super::typed::{self, change, grouped};
use super::{arity_error, entry, err, flags, one_key, Command, Ctx, Merge, Route};
use crate::reply::Reply;

/// Joins a handler's result: the reply, or the error it stopped at.
pub(crate) fn reply(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

/// An error in RedisTimeSeries's form: `ERR TSDB: <msg>`.
pub(crate) fn tsdb(msg: impl std::fmt::Display) -> Reply {
    Reply::error(format!("ERR TSDB: {msg}"))
}

pub(crate) fn kw(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

fn no_key() -> Reply {
    tsdb("the key does not exist")
}

// ---------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------

/// A sample's timestamp: `*` (now) or a non-negative integer of milliseconds.
fn timestamp(arg: &[u8], now: u64) -> Result<i64, Reply> {
    if arg == b"*" {
        return Ok(now.min(i64::MAX as u64) as i64);
    }
    parse_i64(arg).filter(|&t| t >= 0).ok_or_else(|| tsdb("invalid timestamp, must be a nonnegative integer"))
}

/// A sample's value: any float, NaN and infinities included.
fn value(arg: &[u8]) -> Result<f64, Reply> {
    std::str::from_utf8(arg)
        .ok()
        .filter(|s| !s.is_empty() && s.len() < 400)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| tsdb("invalid value"))
}

/// A non-negative integer option value.
fn count_arg(arg: Option<&&[u8]>, what: &str) -> Result<u64, Reply> {
    arg.and_then(|a| parse_i64(a)).filter(|&v| v >= 0).map(|v| v as u64).ok_or_else(|| tsdb(format!("invalid {what}")))
}

/// A range bound: `-` (the earliest), `+` (the latest) or a non-negative integer.
pub(crate) fn bound(arg: &[u8], which: &str) -> Result<i64, Reply> {
    match arg {
        b"-" => Ok(0),
        b"+" => Ok(i64::MAX),
        _ => parse_i64(arg).filter(|&t| t >= 0).ok_or_else(|| tsdb(format!("wrong {which}"))),
    }
}

/// Which command an option list belongs to (each takes a different set).
#[derive(Clone, Copy, PartialEq, Eq)]
enum For {
    Create,
    Alter,
    Add,
    Incr,
}

/// The options of TS.CREATE, TS.ALTER, TS.ADD and TS.INCRBY.
#[derive(Default)]
struct Options {
    retention: Option<u64>,
    uncompressed: Option<bool>,
    chunk_size: Option<u32>,
    duplicate: Option<Duplicate>,
    on_duplicate: Option<Duplicate>,
    ignore: Option<(u64, f64)>,
    labels: Option<Labels>,
}

impl Options {
    fn parse(args: &[&[u8]], cmd: For, now: u64) -> Result<(Options, Option<i64>), Reply> {
        let mut o = Options::default();
        let mut ts = None;
        let mut i = 0;
        while i < args.len() {
            let a = args[i];
            let next = args.get(i + 1);
            if kw(a, "LABELS") {
                o.labels = Some(labels(&args[i + 1..])?);
                break;
            } else if kw(a, "RETENTION") {
                o.retention = Some(count_arg(next, "RETENTION value")?);
            } else if kw(a, "ENCODING") && cmd != For::Alter {
                o.uncompressed = Some(match next {
                    Some(e) if kw(e, "COMPRESSED") => false,
                    Some(e) if kw(e, "UNCOMPRESSED") => true,
                    _ => return Err(tsdb("unknown ENCODING parameter")),
                });
            } else if kw(a, "CHUNK_SIZE") {
                let n = count_arg(next, "CHUNK_SIZE value")?;
                if !(48..=1_048_576).contains(&n) || n % 8 != 0 {
                    return Err(tsdb("CHUNK_SIZE value must be a multiple of 8 in the range [48 .. 1048576]"));
                }
                o.chunk_size = Some(n as u32);
            } else if kw(a, "DUPLICATE_POLICY") || (kw(a, "ON_DUPLICATE") && cmd == For::Add) {
                let d = next
                    .and_then(|p| Duplicate::parse(p))
                    .ok_or_else(|| tsdb(format!("Unknown {}", String::from_utf8_lossy(a).to_uppercase())))?;
                if kw(a, "ON_DUPLICATE") {
                    o.on_duplicate = Some(d);
                } else {
                    o.duplicate = Some(d);
                }
            } else if kw(a, "IGNORE") {
                let t = count_arg(next, "IGNORE maxTimeDiff")?;
                let v =
                    args.get(i + 2).and_then(|v| value(v).ok()).filter(|v| *v >= 0.0).ok_or_else(|| tsdb("invalid IGNORE maxValDiff"))?;
                o.ignore = Some((t, v));
                i += 1;
            } else if kw(a, "TIMESTAMP") && cmd == For::Incr {
                ts = Some(timestamp(next.ok_or_else(|| tsdb("invalid timestamp"))?, now)?);
            } else {
                return Err(Reply::error(format!("ERR TSDB: unknown option '{}'", String::from_utf8_lossy(a))));
            }
            i += 2;
        }
        Ok((o, ts))
    }

    /// `base` with the options given applied over it.
    fn apply(&self, mut c: Config) -> Config {
        let s = &mut c.settings;
        if let Some(r) = self.retention {
            s.retention_ms = r;
        }
        if let Some(u) = self.uncompressed {
            s.uncompressed = u;
        }
        if let Some(n) = self.chunk_size {
            s.chunk_size = n;
        }
        if let Some(d) = self.duplicate {
            s.duplicate = Some(d);
        }
        if let Some((t, v)) = self.ignore {
            (s.ignore_ms, s.ignore_value) = (t, v);
        }
        if let Some(l) = &self.labels {
            c.labels = l.clone();
        }
        c
    }
}

/// Label/value pairs: any bytes, but neither may be empty, and names are unique.
fn labels(args: &[&[u8]]) -> Result<Labels, Reply> {
    if !args.len().is_multiple_of(2) {
        return Err(tsdb("LABELS takes label-value pairs"));
    }
    let mut out: Vec<(&[u8], &[u8])> = Vec::with_capacity(args.len() / 2);
    for p in args.chunks_exact(2) {
        if p[0].is_empty() || p[1].is_empty() {
            return Err(tsdb("label names and values must not be empty"));
        }
        if out.iter().any(|(n, _)| *n == p[0]) {
            return Err(tsdb(format!("label '{}' given twice", String::from_utf8_lossy(p[0]))));
        }
        out.push((p[0], p[1]));
    }
    Ok(Labels::new(out))
}

// ---------------------------------------------------------------------------
// Writing samples
// ---------------------------------------------------------------------------

/// Decides what each sample does to a series (None: not yet created, with `cfg`):
/// its reply (the timestamp, or an error) and the final values to write.
fn decide(s: Option<&Series>, cfg: &Settings, samples: &[Sample], on_dup: Option<Duplicate>) -> (Vec<Result<i64, Reply>>, Vec<Sample>) {
    let policy = on_dup.or(cfg.duplicate).unwrap_or(Duplicate::Block);
    let mut pending: BTreeMap<i64, f64> = BTreeMap::new();
    let mut last = s.and_then(Series::last);
    let mut results = Vec::with_capacity(samples.len());
    for &(ts, v) in samples {
        let cut = match last {
            Some((l, _)) if cfg.retention_ms > 0 => l.saturating_sub(cfg.retention_ms.min(i64::MAX as u64) as i64),
            _ => i64::MIN,
        };
        if ts < cut {
            results.push(Err(tsdb("Timestamp is older than retention")));
            continue;
        }
        if let Some((lt, lv)) = last {
            let ignoring = (cfg.ignore_ms > 0 || cfg.ignore_value > 0.0) && policy == Duplicate::Last;
            if ignoring && ts >= lt && (ts - lt) as u64 <= cfg.ignore_ms && (v - lv).abs() <= cfg.ignore_value {
                results.push(Ok(lt));
                continue;
            }
        }
        let old = pending.get(&ts).copied().or_else(|| s.filter(|s| s.last().is_some_and(|l| ts <= l.0)).and_then(|s| s.get(ts)));
        let v = match old {
            None => v,
            Some(old) => match policy.resolve(old, v) {
                Some(v) => v,
                None => {
                    results.push(Err(tsdb("Error at upsert, update is not supported when DUPLICATE_POLICY is set to BLOCK mode")));
                    continue;
                }
            },
        };
        pending.insert(ts, v);
        if last.is_none_or(|l| ts >= l.0) {
            last = Some((ts, v));
        }
        results.push(Ok(ts));
    }
    (results, pending.into_iter().collect())
}

/// Writes samples to `key` (creating it with `create` if it is missing) and
/// updates its rules; answers each sample's reply. Call inside a group.
fn add_samples(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    samples: &[Sample],
    on_dup: Option<Duplicate>,
    create: Option<Config>,
) -> Result<Vec<Result<i64, Reply>>, Reply> {
    let s = typed::peek::<Series>(ctx, key)?;
    let created = s.is_none();
    let settings = match (s, &create) {
        (Some(s), _) => *s.settings(),
        (None, Some(c)) => c.settings,
        (None, None) => return Err(no_key()),
    };
    let (results, writes) = decide(s, &settings, samples, on_dup);
    let prev_last = s.and_then(Series::last).map(|l| l.0);
    if let (true, Some(cfg)) = (created, create) {
        change(ctx, key, Change::TsCreate(Box::new(cfg)))?;
    }
    if !writes.is_empty() {
        let times: Vec<i64> = writes.iter().map(|w| w.0).collect();
        compact(ctx, key, prev_last, &times, &writes)?;
        change(ctx, key, Change::TsAdd(writes))?;
    }
    Ok(results)
}

/// Buckets of `rule` that the samples at `times` closed (the bucket of the
/// newest sample, once a later bucket starts) or changed after they closed.
fn touched_buckets(rule: &Rule, prev_last: Option<i64>, times: &[i64]) -> Vec<i64> {
    let mut last = prev_last;
    let mut out = Vec::new();
    for &t in times {
        let bt = rule.bucket_of(t);
        if let Some(l) = last {
            let bl = rule.bucket_of(l);
            if bt > bl {
                out.push(bl);
            } else if bt < bl {
                out.push(bt);
            }
        }
        if last.is_none_or(|l| t > l) {
            last = Some(t);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The source's samples in `from..=to` with `writes` (not yet applied) over them.
fn merged(src: &Series, writes: &[Sample], from: i64, to: i64) -> Vec<Sample> {
    let mut m: BTreeMap<i64, f64> = src.range(from, to).into_iter().collect();
    m.extend(writes.iter().copied().filter(|w| w.0 >= from && w.0 <= to));
    m.into_iter().collect()
}

/// The aggregate of one bucket of a rule, from the source's samples and
/// `writes` about to be applied; None if the bucket is empty.
fn bucket_value(src: &Series, writes: &[Sample], rule: &Rule, start: i64) -> Option<f64> {
    let end = start.saturating_add(rule.bucket_ms.min(i64::MAX as u64) as i64);
    let samples = merged(src, writes, start, end - 1);
    if samples.is_empty() {
        return None;
    }
    let (before, after) = if rule.agg == Agg::Twa {
        (merged(src, writes, i64::MIN, start - 1).last().copied(), merged(src, writes, end, i64::MAX).first().copied())
    } else {
        (None, None)
    };
    let q = Aggregation { agg: rule.agg, bucket_ms: rule.bucket_ms, align: rule.align_ms, bucket_ts: BucketTs::Start, empty: false };
    q.run(&samples, before, after).first().map(|s| s.1)
}

/// Writes the buckets of `key`'s rules that samples at `times` closed or
/// changed (`prev_last`: the newest sample before them) to their
/// destinations. `writes`: samples about to be written to `key` (computed
/// before they are, so that a batch older than the retention it pushes
/// forward still reaches the rules).
fn compact(ctx: &mut Ctx<'_>, key: &[u8], prev_last: Option<i64>, times: &[i64], writes: &[Sample]) -> Result<(), Reply> {
    let Some(src) = typed::peek::<Series>(ctx, key)? else { return Ok(()) };
    let mut updates = Vec::with_capacity(src.rules().len());
    for rule in src.rules() {
        let (mut put, mut gone) = (Vec::new(), Vec::new());
        for b in touched_buckets(rule, prev_last, times) {
            match bucket_value(src, writes, rule, b) {
                Some(v) => put.push((b, v)),
                None => gone.push(b),
            }
        }
        updates.push((rule.dest.clone(), put, gone));
    }
    for (dest, put, gone) in updates {
        // A destination deleted (or replaced by another type) since the rule was made is skipped.
        if !matches!(typed::peek::<Series>(ctx, &dest), Ok(Some(_))) {
            continue;
        }
        for b in gone {
            change(ctx, &dest, Change::TsDel { from: b, to: b })?;
        }
        if !put.is_empty() {
            change(ctx, &dest, Change::TsAdd(put))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// TS.CREATE, TS.ALTER, TS.ADD, TS.MADD, TS.INCRBY, TS.DECRBY, TS.DEL
// ---------------------------------------------------------------------------

/// [TS.CREATE](https://redis.io/commands/ts.create/): creates a series.
pub fn create(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(create_inner(ctx, args))
}

fn create_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let (o, _) = Options::parse(&args[2..], For::Create, ctx.now)?;
    if ctx.shard.ks.peek(ctx.db, args[1], ctx.now).is_some() {
        return Err(tsdb("key already exists"));
    }
    change(ctx, args[1], Change::TsCreate(Box::new(o.apply(Config::default()))))?;
    Ok(Reply::Ok)
}

/// [TS.ALTER](https://redis.io/commands/ts.alter/): changes a series' settings (LABELS replaces them all).
pub fn alter(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(alter_inner(ctx, args))
}

fn alter_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let (o, _) = Options::parse(&args[2..], For::Alter, ctx.now)?;
    let s = typed::peek::<Series>(ctx, args[1])?.ok_or_else(no_key)?;
    let config = o.apply(s.config());
    change(ctx, args[1], Change::TsAlter(Box::new(config)))?;
    Ok(Reply::Ok)
}

/// [TS.ADD](https://redis.io/commands/ts.add/): adds a sample (creating the series with the options given).
pub fn add(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(add_inner(ctx, args))
}

fn add_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let ts = timestamp(args[2], ctx.now)?;
    let v = value(args[3])?;
    let (o, _) = Options::parse(&args[4..], For::Add, ctx.now)?;
    let create = o.apply(Config::default());
    let key = args[1];
    let r = grouped(ctx, |ctx| add_samples(ctx, key, &[(ts, v)], o.on_duplicate, Some(create)))?;
    match r.into_iter().next() {
        Some(Ok(t)) => Ok(Reply::Int(t)),
        Some(Err(e)) => Err(e),
        None => Err(tsdb("no sample written")),
    }
}

/// [TS.MADD](https://redis.io/commands/ts.madd/): adds samples to existing series; one reply per sample.
pub fn madd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    if args.len() < 4 || !(args.len() - 1).is_multiple_of(3) {
        return arity_error("ts.madd");
    }
    let mut results: Vec<Reply> = vec![Reply::Nil; (args.len() - 1) / 3];
    // Samples by key, in the order keys first appear: one write per key.
    let mut by_key: Vec<(&[u8], Vec<usize>, Vec<Sample>)> = Vec::new();
    for (i, t) in args[1..].chunks_exact(3).enumerate() {
        let parsed = timestamp(t[1], ctx.now).and_then(|ts| Ok((ts, value(t[2])?)));
        match parsed {
            Err(e) => results[i] = e,
            Ok(s) => match by_key.iter_mut().find(|k| k.0 == t[0]) {
                Some(k) => {
                    k.1.push(i);
                    k.2.push(s);
                }
                None => by_key.push((t[0], vec![i], vec![s])),
            },
        }
    }
    let done = grouped(ctx, |ctx| {
        for (key, idx, samples) in &by_key {
            match add_samples(ctx, key, samples, None, None) {
                Ok(rs) => idx.iter().zip(rs).for_each(|(&i, r)| results[i] = r.map_or_else(|e| e, Reply::Int)),
                Err(e) => idx.iter().for_each(|&i| results[i] = e.clone()),
            }
        }
        Ok(())
    });
    match done {
        Ok(()) => Reply::Array(results),
        Err(e) => e,
    }
}

/// [TS.INCRBY](https://redis.io/commands/ts.incrby/): adds to the newest value (0 for a new series), at a time not before it.
pub fn incrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(incr_generic(ctx, args, 1.0))
}

/// [TS.DECRBY](https://redis.io/commands/ts.decrby/): TS.INCRBY of the negated value.
pub fn decrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(incr_generic(ctx, args, -1.0))
}

fn incr_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], sign: f64) -> Result<Reply, Reply> {
    let by = value(args[2])? * sign;
    let (o, ts) = Options::parse(&args[3..], For::Incr, ctx.now)?;
    let ts = ts.unwrap_or(ctx.now.min(i64::MAX as u64) as i64);
    let last = typed::peek::<Series>(ctx, args[1])?.and_then(Series::last);
    if last.is_some_and(|l| ts < l.0) {
        return Err(tsdb("timestamp must be equal to or higher than the maximum existing timestamp"));
    }
    let v = last.map_or(0.0, |l| l.1) + by;
    let create = o.apply(Config::default());
    let key = args[1];
    let r = grouped(ctx, |ctx| add_samples(ctx, key, &[(ts, v)], Some(Duplicate::Last), Some(create)))?;
    match r.into_iter().next() {
        Some(Ok(t)) => Ok(Reply::Int(t)),
        Some(Err(e)) => Err(e),
        None => Err(tsdb("no sample written")),
    }
}

/// [TS.DEL](https://redis.io/commands/ts.del/): deletes the samples in a time range; answers how many.
pub fn del(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(del_inner(ctx, args))
}

fn del_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let from = bound(args[2], "fromTimestamp")?;
    let to = bound(args[3], "toTimestamp")?;
    let s = typed::peek::<Series>(ctx, args[1])?.ok_or_else(no_key)?;
    let times: Vec<i64> = s.range(from, to).into_iter().map(|x| x.0).collect();
    if times.is_empty() {
        return Ok(Reply::Int(0));
    }
    let last = s.last().map(|l| l.0);
    let key = args[1];
    grouped(ctx, |ctx| {
        change(ctx, key, Change::TsDel { from, to })?;
        compact(ctx, key, last, &times, &[])
    })?;
    Ok(Reply::Int(times.len() as i64))
}

// ---------------------------------------------------------------------------
// TS.CREATERULE, TS.DELETERULE
// ---------------------------------------------------------------------------

/// [TS.CREATERULE](https://redis.io/commands/ts.createrule/): `src`'s buckets, aggregated, go to `dst` from now on.
pub fn createrule(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(createrule_inner(ctx, args))
}

fn createrule_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let (src, dst) = (args[1], args[2]);
    if args.len() < 6 || args.len() > 7 || !kw(args[3], "AGGREGATION") {
        return Err(arity_error("ts.createrule"));
    }
    let agg = Agg::parse(args[4]).ok_or_else(|| tsdb("Unknown aggregation type"))?;
    let bucket_ms = parse_i64(args[5]).filter(|&d| d > 0).ok_or_else(|| tsdb("bucketDuration must be greater than zero"))? as u64;
    let align_ms = match args.get(6) {
        Some(a) => parse_i64(a).filter(|&t| t >= 0).ok_or_else(|| tsdb("invalid alignTimestamp"))?,
        None => 0,
    };
    if src == dst {
        return Err(tsdb("the source key and destination key should be different"));
    }
    let s = typed::peek::<Series>(ctx, src)?.ok_or_else(no_key)?;
    if s.source().is_some() {
        return Err(tsdb("the source key is itself the destination of a rule"));
    }
    let d = typed::peek::<Series>(ctx, dst)?.ok_or_else(no_key)?;
    if d.source().is_some() {
        return Err(tsdb("the destination key already has a src rule"));
    }
    if !d.rules().is_empty() {
        return Err(tsdb("the destination key already has a dst rule"));
    }
    grouped(ctx, |ctx| {
        change(ctx, src, Change::TsRule { dest: dst, agg, bucket_ms, align_ms })?;
        change(ctx, dst, Change::TsSource(Some(src)))
    })?;
    Ok(Reply::Ok)
}

/// [TS.DELETERULE](https://redis.io/commands/ts.deleterule/): removes the rule from `src` to `dst`.
pub fn deleterule(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(deleterule_inner(ctx, args))
}

fn deleterule_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let (src, dst) = (args[1], args[2]);
    let s = typed::peek::<Series>(ctx, src)?.ok_or_else(no_key)?;
    if !s.rules().iter().any(|r| &r.dest[..] == dst) {
        return Err(tsdb("compaction rule does not exist"));
    }
    let dest_is_ours = matches!(typed::peek::<Series>(ctx, dst), Ok(Some(d)) if d.source() == Some(src));
    grouped(ctx, |ctx| {
        change(ctx, src, Change::TsUnrule(dst))?;
        if dest_is_ours {
            change(ctx, dst, Change::TsSource(None))?;
        }
        Ok(())
    })?;
    Ok(Reply::Ok)
}

// ---------------------------------------------------------------------------
// Reads: TS.GET, TS.RANGE, TS.REVRANGE, TS.INFO
// ---------------------------------------------------------------------------

/// A sample as the commands answer it: `[timestamp, value]`.
pub(crate) fn sample_reply(s: Sample) -> Reply {
    Reply::Array(vec![Reply::Int(s.0), Reply::Double(s.1)])
}

/// The series at `key` for a read (counting the hit or miss), or the TSDB error for a missing key.
fn read<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<&'a Series, Reply> {
    typed::read::<Series>(ctx, key)?.ok_or_else(no_key)
}

/// LATEST: for a rule's destination, the aggregate of the source's newest (still open) bucket.
pub(crate) fn latest(ctx: &Ctx<'_>, key: &[u8], s: &Series) -> Option<Sample> {
    let src_key = s.source()?;
    let src = typed::peek::<Series>(ctx, src_key).ok()??;
    let rule = src.rules().iter().find(|r| &r.dest[..] == key)?;
    let b = rule.bucket_of(src.last()?.0);
    Some((b, bucket_value(src, &[], rule, b)?)).filter(|p| s.last().is_none_or(|l| p.0 > l.0))
}

/// [TS.GET](https://redis.io/commands/ts.get/): the newest sample, or an empty array.
pub fn get(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(get_inner(ctx, args))
}

fn get_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let with_latest = match args.get(2) {
        None => false,
        Some(a) if kw(a, "LATEST") && args.len() == 3 => true,
        Some(_) => return Err(Reply::error(err::SYNTAX)),
    };
    read(ctx, args[1])?;
    let s = typed::peek::<Series>(ctx, args[1])?.ok_or_else(no_key)?;
    let newest = if with_latest { latest(ctx, args[1], s).or(s.last()) } else { s.last() };
    Ok(newest.map_or(Reply::Array(Vec::new()), sample_reply))
}

/// What TS.RANGE and TS.MRANGE read: the time range and its options.
#[derive(Debug, Clone)]
pub(crate) struct RangeQuery {
    pub from: i64,
    pub to: i64,
    pub latest: bool,
    pub filter_ts: Option<Vec<i64>>,
    pub filter_value: Option<(f64, f64)>,
    pub count: Option<usize>,
    pub agg: Option<Aggregation>,
}

impl RangeQuery {
    /// Parses `from to [options]`; `other` is offered every argument this
    /// parser does not know and answers how many it took (None: not its own).
    pub(crate) fn parse(args: &[&[u8]], mut other: impl FnMut(&[&[u8]]) -> Result<Option<usize>, Reply>) -> Result<RangeQuery, Reply> {
        if args.len() < 2 {
            return Err(Reply::error(err::SYNTAX));
        }
        let from = bound(args[0], "fromTimestamp")?;
        let to = bound(args[1], "toTimestamp")?;
        let mut q = RangeQuery { from, to, latest: false, filter_ts: None, filter_value: None, count: None, agg: None };
        let mut align: Option<i64> = None;
        let mut i = 2;
        while i < args.len() {
            let a = args[i];
            let rest = &args[i + 1..];
            i += 1 + if kw(a, "LATEST") {
                q.latest = true;
                0
            } else if kw(a, "FILTER_BY_TS") {
                let ts: Vec<i64> = rest.iter().map_while(|t| parse_i64(t).filter(|&t| t >= 0)).collect();
                if ts.is_empty() {
                    return Err(tsdb("FILTER_BY_TS needs at least one timestamp"));
                }
                let n = ts.len();
                let mut sorted = ts;
                sorted.sort_unstable();
                q.filter_ts = Some(sorted);
                n
            } else if kw(a, "FILTER_BY_VALUE") {
                let min = rest.first().and_then(|v| value(v).ok());
                let max = rest.get(1).and_then(|v| value(v).ok());
                let (Some(min), Some(max)) = (min, max) else { return Err(tsdb("FILTER_BY_VALUE needs a minimum and a maximum")) };
                q.filter_value = Some((min, max));
                2
            } else if kw(a, "COUNT") {
                let n = rest.first().and_then(|c| parse_i64(c)).filter(|&n| n > 0).ok_or_else(|| tsdb("Invalid COUNT value"))?;
                q.count = Some(n as usize);
                1
            } else if kw(a, "ALIGN") {
                align = Some(match rest.first() {
                    Some(&b"-") => from,
                    Some(&b"+") => to,
                    Some(x) if kw(x, "start") => from,
                    Some(x) if kw(x, "end") => to,
                    Some(x) => parse_i64(x).ok_or_else(|| tsdb("unknown ALIGN parameter"))?,
                    None => return Err(tsdb("missing ALIGN parameter")),
                });
                1
            } else if kw(a, "AGGREGATION") {
                let agg = rest.first().and_then(|a| Agg::parse(a)).ok_or_else(|| tsdb("Unknown aggregation type"))?;
                let d = rest
                    .get(1)
                    .and_then(|d| parse_i64(d))
                    .filter(|&d| d > 0)
                    .ok_or_else(|| tsdb("bucketDuration must be greater than zero"))?;
                q.agg = Some(Aggregation { agg, bucket_ms: d as u64, align: 0, bucket_ts: BucketTs::Start, empty: false });
                2
            } else if kw(a, "BUCKETTIMESTAMP") {
                let bt = match rest.first() {
                    Some(&b"-") => BucketTs::Start,
                    Some(&b"+") => BucketTs::End,
                    Some(&b"~") => BucketTs::Mid,
                    Some(x) if kw(x, "start") => BucketTs::Start,
                    Some(x) if kw(x, "end") => BucketTs::End,
                    Some(x) if kw(x, "mid") => BucketTs::Mid,
                    _ => return Err(tsdb("unknown BUCKETTIMESTAMP parameter")),
                };
                q.agg.as_mut().ok_or_else(|| tsdb("BUCKETTIMESTAMP comes after AGGREGATION"))?.bucket_ts = bt;
                1
            } else if kw(a, "EMPTY") {
                q.agg.as_mut().ok_or_else(|| tsdb("EMPTY comes after AGGREGATION"))?.empty = true;
                0
            } else {
                match other(&args[i..])? {
                    Some(n) => n.max(1) - 1,
                    None => return Err(Reply::error(format!("ERR TSDB: unknown option '{}'", String::from_utf8_lossy(a)))),
                }
            };
        }
        match (align, q.agg.as_mut()) {
            (Some(_), None) => return Err(tsdb("ALIGN parameter can only be used with AGGREGATION")),
            (Some(a), Some(g)) => g.align = a,
            _ => {}
        }
        Ok(q)
    }

    /// The samples (or buckets) of `s` this query answers; `latest`: the open bucket of a rule's destination.
    pub(crate) fn run(&self, s: &Series, latest: Option<Sample>, rev: bool) -> Vec<Sample> {
        let mut v = s.range(self.from, self.to);
        if let Some(p) = latest.filter(|p| self.latest && p.0 >= self.from && p.0 <= self.to) {
            v.push(p);
        }
        if let Some(ts) = &self.filter_ts {
            v.retain(|x| ts.binary_search(&x.0).is_ok());
        }
        if let Some((lo, hi)) = self.filter_value {
            v.retain(|x| x.1 >= lo && x.1 <= hi);
        }
        let mut out = match &self.agg {
            Some(a) => {
                let (before, after) = if a.agg == Agg::Twa {
                    (
                        s.range(i64::MIN, self.from.saturating_sub(1)).last().copied(),
                        s.range(self.to.saturating_add(1), i64::MAX).first().copied(),
                    )
                } else {
                    (None, None)
                };
                a.run(&v, before, after)
            }
            None => v,
        };
        if rev {
            out.reverse();
        }
        if let Some(n) = self.count {
            out.truncate(n);
        }
        out
    }
}

/// [TS.RANGE](https://redis.io/commands/ts.range/): samples in a time range, oldest first.
pub fn range(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(range_generic(ctx, args, false))
}

/// [TS.REVRANGE](https://redis.io/commands/ts.revrange/): samples in a time range, newest first.
pub fn revrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(range_generic(ctx, args, true))
}

fn range_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], rev: bool) -> Result<Reply, Reply> {
    let q = RangeQuery::parse(&args[2..], |_| Ok(None))?;
    read(ctx, args[1])?;
    let s = typed::peek::<Series>(ctx, args[1])?.ok_or_else(no_key)?;
    let l = if q.latest { latest(ctx, args[1], s) } else { None };
    Ok(Reply::Array(q.run(s, l, rev).into_iter().map(sample_reply).collect()))
}

/// A series' labels as `[[name, value] ...]`.
pub(crate) fn labels_reply<'a>(labels: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Reply {
    Reply::Array(labels.map(|(n, v)| Reply::Array(vec![Reply::bulk(n), Reply::bulk(v)])).collect())
}

/// [TS.INFO](https://redis.io/commands/ts.info/): a series' settings, counts and rules (DEBUG: its chunks).
pub fn info(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(info_inner(ctx, args))
}

fn info_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let debug = match args.get(2) {
        None => false,
        Some(a) if kw(a, "DEBUG") && args.len() == 3 => true,
        Some(_) => return Err(Reply::error(err::SYNTAX)),
    };
    let s = read(ctx, args[1])?;
    let c = s.settings();
    let f = |k: &str, v: Reply| (Reply::simple(k.to_string()), v);
    let ts_or_zero = |x: Option<Sample>| Reply::Int(x.map_or(0, |x| x.0));
    let rules = s
        .rules()
        .iter()
        .map(|r| {
            Reply::Array(vec![
                Reply::bulk(&r.dest),
                Reply::Int(r.bucket_ms as i64),
                Reply::simple(r.agg.name().to_uppercase()),
                Reply::Int(r.align_ms),
            ])
        })
        .collect();
    let mut m = vec![
        f("totalSamples", Reply::Int(s.len() as i64)),
        f("memoryUsage", Reply::Int(s.memory_usage() as i64)),
        f("firstTimestamp", ts_or_zero(s.first())),
        f("lastTimestamp", ts_or_zero(s.last())),
        f("retentionTime", Reply::Int(c.retention_ms as i64)),
        f("chunkCount", Reply::Int(s.chunk_count() as i64)),
        f("chunkSize", Reply::Int(c.chunk_size as i64)),
        f("chunkType", Reply::simple(if c.uncompressed { "uncompressed" } else { "compressed" })),
        f("duplicatePolicy", c.duplicate.map_or(Reply::Nil, |d| Reply::simple(d.name()))),
        f("labels", labels_reply(s.labels().iter())),
        f("sourceKey", s.source().map_or(Reply::Nil, Reply::bulk)),
        f("rules", Reply::Array(rules)),
        f("ignoreMaxTimeDiff", Reply::Int(c.ignore_ms as i64)),
        f("ignoreMaxValDiff", Reply::Double(c.ignore_value)),
    ];
    if debug {
        let chunks = s
            .chunks()
            .into_iter()
            .map(|(first, last, n, bytes, codec)| {
                let per = if n == 0 { 0.0 } else { bytes as f64 / n as f64 };
                Reply::Map(vec![
                    f("startTimestamp", Reply::Int(if n == 0 { -1 } else { first })),
                    f("endTimestamp", Reply::Int(if n == 0 { -1 } else { last })),
                    f("samples", Reply::Int(n as i64)),
                    f("size", Reply::Int(bytes as i64)),
                    f("bytesPerSample", Reply::Double(per)),
                    f("codec", Reply::simple(codec)),
                ])
            })
            .collect();
        m.push(f("keySelfName", Reply::bulk(args[1])));
        m.push(f("Chunks", Reply::Array(chunks)));
    }
    Ok(Reply::Map(m))
}

const W: u32 = flags::WRITE | flags::DENYOOM;
const W_FAST: u32 = flags::WRITE | flags::DENYOOM | flags::FAST;
const R: u32 = flags::READONLY;
const R_FAST: u32 = flags::READONLY | flags::FAST;
const WRITE: &[&str] = &["@write", "@timeseries", "@fast"];
const READ: &[&str] = &["@read", "@timeseries", "@slow"];
const READ_FAST: &[&str] = &["@read", "@timeseries", "@fast"];

/// The time-series commands that name their keys.
pub const COMMANDS: &[Command] = &[
    one_key("ts.create", -2, W_FAST, create, WRITE, "Creates a new time series."),
    one_key("ts.alter", -2, W_FAST, alter, WRITE, "Updates the retention, chunk size, duplicate policy and labels of a time series."),
    one_key("ts.add", -4, W_FAST, add, WRITE, "Appends a sample to a time series, creating it if needed."),
    Command {
        name: "ts.madd",
        arity: -4,
        flags: W_FAST,
        first_key: 1,
        last_key: -1,
        step: 3,
        route: Route::Split(madd, Merge::KeyedArray),
        categories: WRITE,
        summary: "Appends samples to one or more existing time series.",
    },
    one_key("ts.incrby", -3, W_FAST, incrby, WRITE, "Increases the value of the newest sample, or adds a sample with the increment."),
    one_key("ts.decrby", -3, W_FAST, decrby, WRITE, "Decreases the value of the newest sample, or adds a sample with the decrement."),
    one_key("ts.del", 4, W, del, WRITE, "Deletes the samples between two timestamps of a time series."),
    entry("ts.createrule", -6, W_FAST, (1, 2, 1), createrule, WRITE, "Creates a compaction rule."),
    entry("ts.deleterule", 3, W_FAST, (1, 2, 1), deleterule, WRITE, "Deletes a compaction rule."),
    one_key("ts.get", -2, R_FAST, get, READ_FAST, "Returns the newest sample of a time series."),
    one_key("ts.range", -4, R, range, READ, "Queries a range of samples, oldest first."),
    one_key("ts.revrange", -4, R, revrange, READ, "Queries a range of samples, newest first."),
    one_key("ts.info", -2, R, info, READ, "Returns information and statistics of a time series."),
];
