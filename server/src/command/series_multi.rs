//! Time-series commands over many series: TS.MGET, TS.MRANGE, TS.MREVRANGE,
//! TS.QUERYINDEX.
//!
//! They run on every shard ([`Route::All`]); each shard answers the series
//! of the selected database whose labels match the FILTER, and the parts are
//! merged sorted by key. GROUPBY/REDUCE needs every shard's series, so with
//! it each shard answers its matching series with all their labels behind a
//! *plan* item (the grouping label, the reducer and which labels to show),
//! and the merge groups and reduces them.
//!
//! Filters are RedisTimeSeries's: `l=v`, `l!=v`, `l=` (no label `l`),
//! `l!=` (has `l`), `l=(a,b)`, `l!=(a,b)`; at least one must be `l=v` or
//! `l=(..)`. A matcher is split at its first `=`, so values may hold `=`.
//! Each shard finds the series of a filter in its label index
//! ([`strand_engine::series::index`]) and checks the other matchers on them.

use std::collections::BTreeMap;

use strand_engine::keyspace::Value;
use strand_engine::series::agg::Agg;
use strand_engine::series::codec::Sample;
use strand_engine::series::Series;

use super::series::{kw, labels_reply, latest, reply, sample_reply, tsdb, RangeQuery};
use super::{keyless, Command, Ctx, Merge, Route};
use crate::reply::Reply;

/// One label matcher of a FILTER.
#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    /// `l=v` or `l=(a,b)`: the label has one of the values.
    Is(Vec<u8>, Vec<Vec<u8>>),
    /// `l!=v` or `l!=(a,b)`: the label is missing or has none of them.
    IsNot(Vec<u8>, Vec<Vec<u8>>),
    /// `l=`: no label `l`.
    Missing(Vec<u8>),
    /// `l!=`: has a label `l`.
    Present(Vec<u8>),
}

impl Matcher {
    fn parse(arg: &[u8]) -> Result<Matcher, Reply> {
        let eq = arg.iter().position(|&b| b == b'=').ok_or_else(|| tsdb("failed parsing labels"))?;
        let not = eq > 0 && arg[eq - 1] == b'!';
        let name = arg[..if not { eq - 1 } else { eq }].to_vec();
        if name.is_empty() {
            return Err(tsdb("failed parsing labels"));
        }
        let v = &arg[eq + 1..];
        if v.is_empty() {
            return Ok(if not { Matcher::Present(name) } else { Matcher::Missing(name) });
        }
        let values = match v.strip_prefix(b"(").and_then(|x| x.strip_suffix(b")")) {
            Some(list) => list.split(|&b| b == b',').map(<[u8]>::to_vec).collect(),
            None => vec![v.to_vec()],
        };
        Ok(if not { Matcher::IsNot(name, values) } else { Matcher::Is(name, values) })
    }

    fn matches(&self, s: &Series) -> bool {
        let has = |n: &[u8], vs: &[Vec<u8>]| s.label(n).is_some_and(|x| vs.iter().any(|v| v[..] == *x));
        match self {
            Matcher::Is(n, vs) => has(n, vs),
            Matcher::IsNot(n, vs) => !has(n, vs),
            Matcher::Missing(n) => s.label(n).is_none(),
            Matcher::Present(n) => s.label(n).is_some(),
        }
    }
}

/// A FILTER: every matcher must hold.
#[derive(Debug, Clone)]
struct Filter(Vec<Matcher>);

impl Filter {
    fn parse(args: &[&[u8]]) -> Result<Filter, Reply> {
        let m: Vec<Matcher> = args.iter().map(|a| Matcher::parse(a)).collect::<Result<_, _>>()?;
        if !m.iter().any(|m| matches!(m, Matcher::Is(..))) {
            return Err(tsdb("please provide at least one matcher"));
        }
        Ok(Filter(m))
    }

    /// Every series of the database that matches, sorted by key: the
    /// label index gives the series of the first `l=v` / `l=(a,b)`
    /// matcher, and the other matchers check each of them.
    fn select<'a>(&self, ctx: &'a Ctx<'_>) -> Vec<(Vec<u8>, &'a Series)> {
        let Some(Matcher::Is(name, values)) = self.0.iter().find(|m| matches!(m, Matcher::Is(..))) else { return Vec::new() };
        let mut keys: Vec<Vec<u8>> =
            values.iter().flat_map(|v| ctx.shard.ks.series_with_label(ctx.db, name, v)).map(<[u8]>::to_vec).collect();
        if values.len() > 1 {
            keys.sort();
            keys.dedup();
        }
        keys.into_iter().filter_map(|k| series_of(ctx, &k).filter(|s| self.0.iter().all(|m| m.matches(s))).map(|s| (k, s))).collect()
    }
}

fn series_of<'a>(ctx: &'a Ctx<'_>, key: &[u8]) -> Option<&'a Series> {
    match ctx.shard.ks.peek(ctx.db, key, ctx.now).map(|e| &e.value) {
        Some(Value::Series(s)) => Some(s),
        _ => None,
    }
}

/// Which labels a reply shows.
#[derive(Debug, Clone, PartialEq)]
enum Shown {
    None,
    All,
    Selected(Vec<Vec<u8>>),
}

impl Shown {
    fn reply(&self, s: &Series) -> Reply {
        match self {
            Shown::None => Reply::Array(Vec::new()),
            Shown::All => labels_reply(s.labels().iter()),
            Shown::Selected(names) => {
                Reply::Array(names.iter().map(|n| Reply::Array(vec![Reply::bulk(n), s.label(n).map_or(Reply::Nil, Reply::bulk)])).collect())
            }
        }
    }
}

/// The index of the FILTER keyword, after which the matchers run to `end`.
fn filter_at(args: &[&[u8]]) -> Result<usize, Reply> {
    args.iter().position(|a| kw(a, "FILTER")).ok_or_else(|| tsdb("missing FILTER argument"))
}

/// Parses WITHLABELS / SELECTED_LABELS at `args[0]`; how many arguments it took.
fn labels_option(args: &[&[u8]], shown: &mut Shown) -> Result<Option<usize>, Reply> {
    if kw(args[0], "WITHLABELS") {
        *shown = Shown::All;
        return Ok(Some(1));
    }
    if kw(args[0], "SELECTED_LABELS") {
        const STOP: [&str; 10] = [
            "FILTER",
            "COUNT",
            "ALIGN",
            "AGGREGATION",
            "FILTER_BY_TS",
            "FILTER_BY_VALUE",
            "LATEST",
            "WITHLABELS",
            "BUCKETTIMESTAMP",
            "EMPTY",
        ];
        let names: Vec<Vec<u8>> = args[1..].iter().take_while(|a| !STOP.iter().any(|w| kw(a, w))).map(|a| a.to_vec()).collect();
        if names.is_empty() {
            return Err(tsdb("SELECTED_LABELS needs at least one label"));
        }
        *shown = Shown::Selected(names.clone());
        return Ok(Some(1 + names.len()));
    }
    Ok(None)
}

/// Joins the parts of TS.MGET / TS.QUERYINDEX / TS.MRANGE without GROUPBY: concatenated, sorted by key.
fn merge_sorted(parts: Vec<Reply>) -> Reply {
    let mut items: Vec<Reply> = parts.into_iter().flat_map(|p| if let Reply::Array(v) = p { v } else { Vec::new() }).collect();
    items.sort_by(|a, b| sort_key(a).cmp(sort_key(b)));
    Reply::Array(items)
}

fn sort_key(r: &Reply) -> &[u8] {
    match r {
        Reply::Bulk(k) => k,
        Reply::Array(v) => v.first().map_or(&[][..], sort_key),
        _ => &[],
    }
}

/// [TS.QUERYINDEX](https://redis.io/commands/ts.queryindex/): the keys of the series that match a filter.
pub fn queryindex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(Filter::parse(&args[1..]).map(|f| Reply::Array(f.select(ctx).into_iter().map(|(k, _)| Reply::Bulk(k)).collect())))
}

/// [TS.MGET](https://redis.io/commands/ts.mget/): the newest sample of every matching series.
pub fn mget(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(mget_inner(ctx, args))
}

fn mget_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let at = filter_at(args)?;
    let filter = Filter::parse(&args[at + 1..])?;
    let (mut shown, mut with_latest) = (Shown::None, false);
    let mut i = 1;
    while i < at {
        if kw(args[i], "LATEST") {
            with_latest = true;
            i += 1;
            continue;
        }
        i += labels_option(&args[i..at], &mut shown)?
            .ok_or_else(|| tsdb(format!("unknown option '{}'", String::from_utf8_lossy(args[i]))))?;
    }
    let items = filter
        .select(ctx)
        .into_iter()
        .map(|(k, s)| {
            let newest = if with_latest { latest(ctx, &k, s).or(s.last()) } else { s.last() };
            let sample = newest.map_or(Reply::Array(Vec::new()), |p| Reply::Array(vec![Reply::Int(p.0), Reply::Double(p.1)]));
            Reply::Array(vec![Reply::Bulk(k), shown.reply(s), sample])
        })
        .collect();
    Ok(Reply::Array(items))
}

/// [TS.MRANGE](https://redis.io/commands/ts.mrange/): TS.RANGE over every matching series.
pub fn mrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(mrange_generic(ctx, args, false))
}

/// [TS.MREVRANGE](https://redis.io/commands/ts.mrevrange/): TS.REVRANGE over every matching series.
pub fn mrevrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(mrange_generic(ctx, args, true))
}

/// GROUPBY label REDUCE reducer.
struct GroupBy {
    label: Vec<u8>,
    reducer: Agg,
}

fn mrange_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], rev: bool) -> Result<Reply, Reply> {
    let at = filter_at(args)?;
    let group_at = args[at..].iter().position(|a| kw(a, "GROUPBY")).map(|p| at + p).unwrap_or(args.len());
    let filter = Filter::parse(&args[at + 1..group_at])?;
    let group = if group_at < args.len() {
        let ok = args.len() == group_at + 4 && kw(args[group_at + 2], "REDUCE");
        let reducer = args.get(group_at + 3).and_then(|r| Agg::parse(r)).filter(|a| *a != Agg::Twa);
        match (ok, reducer) {
            (true, Some(reducer)) => Some(GroupBy { label: args[group_at + 1].to_vec(), reducer }),
            _ => return Err(tsdb("invalid GROUPBY/REDUCE: GROUPBY label REDUCE reducer")),
        }
    } else {
        None
    };
    let mut shown = Shown::None;
    let q = RangeQuery::parse(&args[1..at], |rest| labels_option(rest, &mut shown))?;
    let mut items = Vec::new();
    for (k, s) in filter.select(ctx) {
        let l = if q.latest { latest(ctx, &k, s) } else { None };
        let samples: Vec<Reply> = q.run(s, l, rev).into_iter().map(sample_reply).collect();
        let labels = if group.is_some() { Shown::All.reply(s) } else { shown.reply(s) };
        items.push(Reply::Array(vec![Reply::Bulk(k), labels, Reply::Array(samples)]));
    }
    if let Some(g) = group {
        let plan = Reply::Array(vec![
            Reply::simple("plan"),
            Reply::Bulk(g.label),
            Reply::Int(g.reducer.tag() as i64),
            Reply::Bool(rev),
            Reply::Int(q.count.map_or(-1, |c| c as i64)),
            match shown {
                Shown::None => Reply::Nil,
                Shown::All => Reply::Bool(true),
                Shown::Selected(n) => Reply::Array(n.into_iter().map(Reply::Bulk).collect()),
            },
        ]);
        items.insert(0, plan);
    }
    Ok(Reply::Array(items))
}

/// Joins the parts of TS.MRANGE/TS.MREVRANGE: with a plan (GROUPBY), groups and reduces; else sorted by key.
fn merge_mrange(parts: Vec<Reply>) -> Reply {
    let plan = parts.iter().find_map(|p| match p {
        Reply::Array(v) => match v.first() {
            Some(Reply::Array(pl)) if pl.first() == Some(&Reply::simple("plan")) => Some(pl.clone()),
            _ => None,
        },
        _ => None,
    });
    let Some(plan) = plan else { return merge_sorted(parts) };
    let items: Vec<Reply> =
        parts.into_iter().flat_map(|p| if let Reply::Array(v) = p { v.into_iter().skip(1).collect() } else { Vec::new() }).collect();
    group_reduce(&plan, items)
}

fn bytes_of(r: &Reply) -> Vec<u8> {
    match r {
        Reply::Bulk(b) => b.clone(),
        _ => Vec::new(),
    }
}

/// One GROUPBY group: its series' keys and their values by timestamp.
type Group = (Vec<Vec<u8>>, BTreeMap<i64, Vec<f64>>);

/// The series of `items` grouped by the plan's label, each group's samples reduced per timestamp.
fn group_reduce(plan: &[Reply], items: Vec<Reply>) -> Reply {
    let (Some(label), Some(Reply::Int(tag)), Some(Reply::Bool(rev)), Some(Reply::Int(count)), Some(shown)) =
        (plan.get(1).map(bytes_of), plan.get(2), plan.get(3), plan.get(4), plan.get(5))
    else {
        return Reply::error("ERR TSDB: malformed GROUPBY plan between shards");
    };
    let Some(reducer) = Agg::from_tag(*tag as u8) else { return Reply::error("ERR TSDB: malformed GROUPBY plan between shards") };
    let mut groups: BTreeMap<Vec<u8>, Group> = BTreeMap::new();
    for item in items {
        let Reply::Array(v) = item else { continue };
        let (Some(key), Some(Reply::Array(labels)), Some(Reply::Array(samples))) = (v.first().map(bytes_of), v.get(1), v.get(2)) else {
            continue;
        };
        let value = labels.iter().find_map(|l| match l {
            Reply::Array(p) if p.first().map(bytes_of).as_deref() == Some(&label[..]) => p.get(1).map(bytes_of),
            _ => None,
        });
        let Some(value) = value else { continue };
        let g = groups.entry(value).or_default();
        g.0.push(key);
        for s in samples {
            if let Reply::Array(p) = s {
                if let (Some(Reply::Int(t)), Some(Reply::Double(x))) = (p.first(), p.get(1)) {
                    g.1.entry(*t).or_default().push(*x);
                }
            }
        }
    }
    let out = groups
        .into_iter()
        .map(|(value, (mut keys, by_ts))| {
            keys.sort();
            let mut samples: Vec<Sample> = by_ts.into_iter().map(|(t, vs)| (t, reducer.reduce(&vs))).collect();
            if *rev {
                samples.reverse();
            }
            if *count >= 0 {
                samples.truncate(*count as usize);
            }
            let mut name = label.clone();
            name.push(b'=');
            name.extend_from_slice(&value);
            let labels = group_labels(shown, &label, &value, reducer, &keys);
            Reply::Array(vec![Reply::Bulk(name), labels, Reply::Array(samples.into_iter().map(sample_reply).collect())])
        })
        .collect();
    Reply::Array(out)
}

/// The labels a group shows: the grouping label, `__reducer__` and `__source__` (as RedisTimeSeries does).
fn group_labels(shown: &Reply, label: &[u8], value: &[u8], reducer: Agg, keys: &[Vec<u8>]) -> Reply {
    let pair = |n: &[u8], v: &[u8]| Reply::Array(vec![Reply::bulk(n), Reply::bulk(v)]);
    let all = vec![pair(label, value), pair(b"__reducer__", reducer.name().as_bytes()), pair(b"__source__", &keys.join(&b","[..]))];
    match shown {
        Reply::Nil => Reply::Array(Vec::new()),
        Reply::Array(names) => Reply::Array(
            names
                .iter()
                .map(|n| {
                    let n = bytes_of(n);
                    if n == label {
                        pair(label, value)
                    } else {
                        Reply::Array(vec![Reply::Bulk(n), Reply::Nil])
                    }
                })
                .collect(),
        ),
        _ => Reply::Array(all),
    }
}

const R: u32 = super::flags::READONLY;
const READ: &[&str] = &["@read", "@timeseries", "@slow"];

/// The time-series commands that select series by label, on every shard.
pub const COMMANDS: &[Command] = &[
    keyless(
        "ts.mget",
        -3,
        R,
        Route::All(mget, Merge::Custom(merge_sorted)),
        READ,
        "Returns the newest sample of every series that matches a filter.",
    ),
    keyless(
        "ts.mrange",
        -5,
        R,
        Route::All(mrange, Merge::Custom(merge_mrange)),
        READ,
        "Queries a range of every series that matches a filter, oldest first.",
    ),
    keyless(
        "ts.mrevrange",
        -5,
        R,
        Route::All(mrevrange, Merge::Custom(merge_mrange)),
        READ,
        "Queries a range of every series that matches a filter, newest first.",
    ),
    keyless(
        "ts.queryindex",
        -2,
        R,
        Route::All(queryindex, Merge::Custom(merge_sorted)),
        READ,
        "Returns the keys of the series that match a filter.",
    ),
];
