//! [FT.SEARCH](https://redis.io/docs/latest/commands/ft.search/): a query
//! scattered to every shard, merged into one ranked answer.
//!
//! The connection runs it ([`AsyncCmd::Search`](super::AsyncCmd)) in two
//! rounds. First every shard reports its figures for the query's terms
//! (documents, summed lengths, document frequencies: [`stats_part`]); their
//! sum is the corpus-wide [`Stats`]. Then every shard runs the query with
//! those figures and answers its best `offset + limit` hits with their
//! fields ([`run_part`]); the merge keeps the best `limit` after `offset`.
//! So a score never depends on how keys fell on shards. With one shard the
//! first round is skipped.

use std::rc::Rc;

use strand_engine::search::analysis::Stems;
use strand_engine::search::exec::{rank, Hit, Request, Scorer, Stats};
use strand_engine::search::highlight::{highlight, summarize, Summary, Tags, Terms};
use strand_engine::search::index::SortValue;
use strand_engine::search::query::{parse, Bound, Node, ParseOptions};
use strand_engine::search::schema::Kind;

use super::search::{hash_of, no_such_index};
use super::series::kw;
use super::strings::{parse_f64, parse_i64};
use super::{keyless, AsyncCmd, Command, Ctx, Route};
use crate::dispatch::Shard;
use crate::reply::Reply;
use crate::resp::Protocol;

/// FT.SEARCH's arguments.
#[derive(Debug, Clone, Default)]
pub(crate) struct SearchArgs {
    index: String,
    query: String,
    nocontent: bool,
    verbatim: bool,
    nostopwords: bool,
    withscores: bool,
    withsortkeys: bool,
    filters: Vec<(String, Bound, Bound)>,
    infields: Option<Vec<String>>,
    /// RETURN: (field, name to show it under).
    returns: Option<Vec<(Vec<u8>, Vec<u8>)>>,
    slop: Option<u32>,
    inorder: bool,
    scorer: Scorer,
    sortby: Option<(String, bool)>,
    offset: usize,
    limit: usize,
    params: Vec<(String, String)>,
    /// HIGHLIGHT: fields (empty: every text field) and tags.
    highlight: Option<(Vec<String>, Tags)>,
    /// SUMMARIZE: fields (empty: every text field) and how.
    summarize: Option<(Vec<String>, Summary)>,
}

/// An argument as text (lossy).
pub(crate) fn text(a: &[u8]) -> String {
    String::from_utf8_lossy(a).into_owned()
}

/// RediSearch's error for a missing or bad option argument.
pub(crate) fn bad(what: &str) -> Reply {
    Reply::error(format!("Bad arguments for {what}: Expected an argument"))
}

/// A non-negative count at `args[at]`, else [`bad`].
pub(crate) fn count_at(args: &[&[u8]], at: usize, what: &str) -> Result<usize, Reply> {
    args.get(at).and_then(|a| parse_i64(a)).filter(|&n| n >= 0).map(|n| n as usize).ok_or_else(|| bad(what))
}

/// An optional `FIELDS n f ...` at `at`: the fields and where the arguments go on.
fn fields_opt(args: &[&[u8]], at: usize) -> Result<(Vec<String>, usize), Reply> {
    if !args.get(at).is_some_and(|x| kw(x, "FIELDS")) {
        return Ok((Vec::new(), at));
    }
    let n = count_at(args, at + 1, "FIELDS")?;
    let f = args.get(at + 2..at + 2 + n).ok_or_else(|| bad("FIELDS"))?;
    Ok((f.iter().map(|x| text(x)).collect(), at + 2 + n))
}

fn bound(a: &[u8]) -> Option<Bound> {
    let (exclusive, v) = match a.strip_prefix(b"(") {
        Some(rest) => (true, rest),
        None => (false, a),
    };
    let value = match v.to_ascii_lowercase().as_slice() {
        b"-inf" => f64::NEG_INFINITY,
        b"+inf" | b"inf" => f64::INFINITY,
        _ => parse_f64(v)?,
    };
    Some(Bound { value, exclusive })
}

impl SearchArgs {
    /// Parses `FT.SEARCH index query [options]`.
    pub(crate) fn parse(args: &[&[u8]]) -> Result<SearchArgs, Reply> {
        let mut s = SearchArgs { index: text(args[1]), query: text(args[2]), limit: 10, ..SearchArgs::default() };
        let mut at = 3;
        while at < args.len() {
            let a = args[at];
            let flag = |w: &str| kw(a, w);
            if flag("NOCONTENT") {
                s.nocontent = true;
            } else if flag("VERBATIM") {
                s.verbatim = true;
            } else if flag("NOSTOPWORDS") {
                s.nostopwords = true;
            } else if flag("WITHSCORES") {
                s.withscores = true;
            } else if flag("WITHSORTKEYS") {
                s.withsortkeys = true;
            } else if flag("INORDER") {
                s.inorder = true;
            } else if flag("EXPLAINSCORE") || flag("WITHPAYLOADS") {
                return Err(Reply::error(format!("{} is not supported", text(a).to_uppercase())));
            } else if flag("FILTER") {
                let (f, lo, hi) = (args.get(at + 1), args.get(at + 2).and_then(|x| bound(x)), args.get(at + 3).and_then(|x| bound(x)));
                match (f, lo, hi) {
                    (Some(f), Some(lo), Some(hi)) => s.filters.push((text(f), lo, hi)),
                    _ => return Err(Reply::error("Bad arguments for FILTER: Could not parse")),
                }
                at += 3;
            } else if flag("INFIELDS") {
                let n = count_at(args, at + 1, "INFIELDS")?;
                let f = args.get(at + 2..at + 2 + n).ok_or_else(|| bad("INFIELDS"))?;
                s.infields = Some(f.iter().map(|x| text(x)).collect());
                at += 1 + n;
            } else if flag("RETURN") {
                let n = count_at(args, at + 1, "RETURN")?;
                let items = args.get(at + 2..at + 2 + n).ok_or_else(|| bad("RETURN"))?;
                let mut out = Vec::new();
                let mut i = 0;
                while i < items.len() {
                    let name = items[i].to_vec();
                    if items.get(i + 1).is_some_and(|x| kw(x, "AS")) {
                        let alias = items.get(i + 2).ok_or_else(|| bad("RETURN"))?;
                        out.push((name, alias.to_vec()));
                        i += 3;
                    } else {
                        out.push((name.clone(), name));
                        i += 1;
                    }
                }
                s.nocontent = n == 0;
                s.returns = Some(out);
                at += 1 + n;
            } else if flag("SLOP") {
                s.slop = Some(count_at(args, at + 1, "SLOP")? as u32);
                at += 1;
            } else if flag("TIMEOUT") {
                count_at(args, at + 1, "TIMEOUT")?;
                at += 1;
            } else if flag("LANGUAGE") {
                match args.get(at + 1) {
                    Some(l) if kw(l, "english") => {}
                    Some(l) => return Err(Reply::error(format!("No such language {}", text(l)))),
                    None => return Err(bad("LANGUAGE")),
                }
                at += 1;
            } else if flag("SCORER") {
                let name = args.get(at + 1).ok_or_else(|| bad("SCORER"))?;
                s.scorer = Scorer::parse(&text(name)).ok_or_else(|| Reply::error("Scoring function does not exist"))?;
                at += 1;
            } else if flag("SORTBY") {
                let f = args.get(at + 1).ok_or_else(|| bad("SORTBY"))?;
                let f = text(f.strip_prefix(b"@").unwrap_or(f));
                let mut asc = true;
                if let Some(d) = args.get(at + 2) {
                    if kw(d, "ASC") || kw(d, "DESC") {
                        asc = kw(d, "ASC");
                        at += 1;
                    }
                }
                s.sortby = Some((f, asc));
                at += 1;
            } else if flag("LIMIT") {
                let (o, n) = (count_at(args, at + 1, "LIMIT")?, count_at(args, at + 2, "LIMIT")?);
                if n > 1_000_000 || o > 1_000_000 {
                    return Err(Reply::error("LIMIT exceeds maximum of 1000000"));
                }
                (s.offset, s.limit) = (o, n);
                at += 2;
            } else if flag("PARAMS") {
                let n = count_at(args, at + 1, "PARAMS")?;
                if n % 2 != 0 {
                    return Err(Reply::error("Bad arguments for PARAMS: Expected an even number of arguments"));
                }
                let items = args.get(at + 2..at + 2 + n).ok_or_else(|| bad("PARAMS"))?;
                s.params = items.chunks(2).map(|p| (text(p[0]), text(p[1]))).collect();
                at += 1 + n;
            } else if flag("DIALECT") {
                match args.get(at + 1).and_then(|d| parse_i64(d)) {
                    Some(1..=4) => {}
                    _ => return Err(Reply::error("DIALECT requires a value from 1 to 4")),
                }
                at += 1;
            } else if flag("HIGHLIGHT") {
                let (fields, next) = fields_opt(args, at + 1)?;
                let mut tags = Tags::default();
                at = next;
                if args.get(at).is_some_and(|x| kw(x, "TAGS")) {
                    let (Some(o), Some(c)) = (args.get(at + 1), args.get(at + 2)) else { return Err(bad("HIGHLIGHT")) };
                    tags = Tags { open: text(o), close: text(c) };
                    at += 3;
                }
                s.highlight = Some((fields, tags));
                continue;
            } else if flag("SUMMARIZE") {
                let (fields, next) = fields_opt(args, at + 1)?;
                let mut sum = Summary::default();
                at = next;
                loop {
                    match args.get(at) {
                        Some(x) if kw(x, "FRAGS") => sum.frags = count_at(args, at + 1, "SUMMARIZE")?,
                        Some(x) if kw(x, "LEN") => sum.len = count_at(args, at + 1, "SUMMARIZE")?,
                        Some(x) if kw(x, "SEPARATOR") => sum.separator = text(args.get(at + 1).ok_or_else(|| bad("SUMMARIZE"))?),
                        _ => break,
                    }
                    at += 2;
                }
                s.summarize = Some((fields, sum));
                continue;
            } else if flag("INKEYS") || flag("GEOFILTER") || flag("EXPANDER") || flag("PAYLOAD") {
                return Err(Reply::error(format!("{} is not supported yet", text(a).to_uppercase())));
            } else {
                return Err(Reply::error(format!("Unknown argument `{}`", text(a))));
            }
            at += 1;
        }
        Ok(s)
    }

    /// The query tree, FILTERs included.
    fn node(&self, stopwords: Option<&[String]>) -> Result<Node, Reply> {
        let opts = ParseOptions { params: &self.params, no_stopwords: self.nostopwords, stopwords, verbatim: self.verbatim };
        let mut node = parse(&self.query, &opts).map_err(|e| Reply::error(e.0))?;
        if !self.filters.is_empty() {
            let mut all = vec![node];
            all.extend(self.filters.iter().map(|(f, min, max)| Node::Numeric { field: f.clone(), min: *min, max: *max }));
            node = Node::And(all);
        }
        Ok(node)
    }
}

/// Removes every key whose time has passed, so that no expired document is
/// counted or found. The expiry index is sorted by deadline, so this costs
/// only the keys it removes.
pub(super) fn reap_expired(ctx: &mut Ctx<'_>) {
    if !ctx.shard.ks.search(ctx.db).is_empty() {
        ctx.shard.ks.expire_cycle(ctx.now, usize::MAX);
    }
}

/// What both rounds start with on a shard: expired keys reaped, the
/// arguments parsed, the index found and the query parsed with its stop-words.
fn prepare(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<(SearchArgs, Node), Reply> {
    reap_expired(ctx);
    let a = SearchArgs::parse(args)?;
    let ix = ctx.shard.ks.search(ctx.db).get(&a.index).ok_or_else(|| no_such_index(args[1]))?;
    let node = a.node(ix.schema.stopwords.as_deref())?;
    Ok((a, node))
}

/// Round one on a shard: `[docs, total_len, term, df, ...]` for the query's terms.
fn stats_part(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let (a, node) = match prepare(ctx, args) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let Some(ix) = ctx.shard.ks.search(ctx.db).get(&a.index) else { return no_such_index(args[1]) };
    let s = ix.stats(&ix.query_terms(&node));
    let mut out = vec![Reply::Int(s.docs as i64), Reply::Int(s.total_len as i64)];
    for (t, n) in s.df {
        out.push(Reply::Bulk(t.into_bytes()));
        out.push(Reply::Int(n as i64));
    }
    Reply::Array(out)
}

fn read_stats(r: Reply, into: &mut Stats) -> Result<(), Reply> {
    let Reply::Array(v) = r else { return Err(r) };
    let int = |r: &Reply| if let Reply::Int(i) = r { *i as u64 } else { 0 };
    let mut s = Stats { docs: v.first().map_or(0, int), total_len: v.get(1).map_or(0, int), ..Stats::default() };
    for pair in v.get(2..).unwrap_or(&[]).chunks(2) {
        if let [Reply::Bulk(t), n] = pair {
            s.df.insert(text(t), int(n));
        }
    }
    into.merge(s);
    Ok(())
}

/// Encodes stats as one argument for round two: `docs total_len (len term df)*`, little-endian.
fn encode_stats(s: &Stats) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&s.docs.to_le_bytes());
    out.extend_from_slice(&s.total_len.to_le_bytes());
    for (t, n) in &s.df {
        out.extend_from_slice(&(t.len() as u32).to_le_bytes());
        out.extend_from_slice(t.as_bytes());
        out.extend_from_slice(&n.to_le_bytes());
    }
    out
}

fn decode_stats(b: &[u8]) -> Option<Stats> {
    let u64_at = |at: usize| b.get(at..at + 8).and_then(|x| x.try_into().ok()).map(u64::from_le_bytes);
    let mut s = Stats { docs: u64_at(0)?, total_len: u64_at(8)?, ..Stats::default() };
    let mut at = 16;
    while at < b.len() {
        let len = u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize;
        let t = std::str::from_utf8(b.get(at + 4..at + 4 + len)?).ok()?.to_string();
        let n = u64_at(at + 4 + len)?;
        s.df.insert(t, n);
        at += 12 + len;
    }
    Some(s)
}

/// Round two on a shard. `args` is FT.SEARCH's plus the encoded stats last
/// (empty: use this shard's own). Answers `[total, (key, score, sortkey, fields)*]`.
fn run_part(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let Some((stats_arg, args)) = args.split_last() else { return Reply::error("ERR internal: no stats") };
    let (a, node) = match prepare(ctx, args) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let Some(ix) = ctx.shard.ks.search(ctx.db).get(&a.index) else { return no_such_index(args[1]) };
    let stats = if stats_arg.is_empty() { Some(ix.stats(&ix.query_terms(&node))) } else { decode_stats(stats_arg) };
    let Some(stats) = stats else { return Reply::error("ERR internal: bad search stats") };
    let sort = match &a.sortby {
        None => None,
        Some((f, asc)) => match ix.schema.field(f) {
            Some((n, field)) if field.sortable => Some((n, *asc)),
            Some(_) => return Reply::error(format!("Property `{f}` is not SORTABLE: strand sorts by SORTABLE fields only")),
            None => return Reply::error(format!("Property `{f}` not loaded nor in schema")),
        },
    };
    let req = Request { scorer: a.scorer, slop: a.slop, inorder: a.inorder, infields: a.infields.clone(), sort, top: a.offset + a.limit };
    let found = match ix.search(&node, &stats, &req) {
        Ok(f) => f,
        Err(e) => return Reply::error(e.0),
    };
    let returns: Option<Vec<(Vec<u8>, Vec<u8>)>> = a.returns.as_ref().map(|r| {
        r.iter()
            .map(|(name, shown)| {
                // A RETURN name may be an alias: read the hash field it stands for.
                let field = ix.schema.field(&text(name)).map_or_else(|| name.clone(), |(_, f)| f.name.clone());
                (field, shown.clone())
            })
            .collect()
    });
    let marks = Marks::new(&a, &node, ix);
    let mut out = vec![Reply::Int(found.total as i64)];
    for hit in found.hits {
        let mut fields = if a.nocontent { Vec::new() } else { fields_of(ctx, &hit.key, returns.as_deref()) };
        if let Some(m) = &marks {
            m.apply(&mut fields);
        }
        out.push(Reply::Bulk(hit.key));
        out.push(Reply::Double(hit.score));
        out.push(match hit.sort {
            Some(SortValue::Num(x)) => Reply::Double(x),
            Some(SortValue::Str(s)) => Reply::Bulk(s.into_vec()),
            None => Reply::Nil,
        });
        out.push(Reply::Array(fields));
    }
    Reply::Array(out)
}

/// HIGHLIGHT and SUMMARIZE of one search: what to mark and in which hash fields.
struct Marks<'a> {
    terms: Terms,
    stems: &'a Stems,
    highlight: Option<(Vec<Vec<u8>>, &'a Tags)>,
    summarize: Option<(Vec<Vec<u8>>, &'a Summary)>,
}

impl<'a> Marks<'a> {
    fn new(a: &'a SearchArgs, node: &Node, ix: &'a strand_engine::search::Index) -> Option<Marks<'a>> {
        if a.highlight.is_none() && a.summarize.is_none() {
            return None;
        }
        // Named fields by alias or hash field name; none named: every text field.
        let resolve = |names: &[String]| -> Vec<Vec<u8>> {
            if names.is_empty() {
                return ix.schema.fields.iter().filter(|f| f.kind == Kind::Text).map(|f| f.name.clone()).collect();
            }
            names.iter().map(|n| ix.schema.field(n).map_or_else(|| n.as_bytes().to_vec(), |(_, f)| f.name.clone())).collect()
        };
        Some(Marks {
            terms: Terms::of(node, ix.stems()),
            stems: ix.stems(),
            highlight: a.highlight.as_ref().map(|(f, t)| (resolve(f), t)),
            summarize: a.summarize.as_ref().map(|(f, s)| (resolve(f), s)),
        })
    }

    /// Rewrites the values of the marked fields in a `[name, value, ...]` list.
    fn apply(&self, fields: &mut [Reply]) {
        for pair in fields.chunks_mut(2) {
            let [Reply::Bulk(name), Reply::Bulk(value)] = pair else { continue };
            let tags = self.highlight.as_ref().filter(|(f, _)| f.contains(name)).map(|(_, t)| *t);
            let summary = self.summarize.as_ref().filter(|(f, _)| f.contains(name)).map(|(_, s)| *s);
            if tags.is_none() && summary.is_none() {
                continue;
            }
            let text = String::from_utf8_lossy(value).into_owned();
            let out = match (summary, tags) {
                (Some(s), t) => summarize(&text, &self.terms, self.stems, s, t),
                (None, Some(t)) => highlight(&text, &self.terms, self.stems, t),
                (None, None) => continue,
            };
            *value = out.into_bytes();
        }
    }
}

fn fields_of(ctx: &Ctx<'_>, key: &[u8], returns: Option<&[(Vec<u8>, Vec<u8>)]>) -> Vec<Reply> {
    let Some(h) = hash_of(ctx, key) else { return Vec::new() };
    let mut out = Vec::new();
    match returns {
        None => {
            for (f, v) in h.iter() {
                out.push(Reply::bulk(f));
                out.push(Reply::bulk(v));
            }
        }
        Some(r) => {
            for (field, shown) in r {
                if let Some(v) = h.get(field) {
                    out.push(Reply::bulk(shown));
                    out.push(Reply::bulk(v));
                }
            }
        }
    }
    out
}

/// Runs `handler` with `args` on every shard; the replies in shard order.
pub(super) async fn scatter(shard: &Rc<Shard>, handler: super::ShardFn, db: usize, caller: u64, args: &[&[u8]]) -> Vec<Reply> {
    let n = shard.outbox.shards();
    let mut waits = Vec::new();
    for to in (0..n).filter(|&to| to != shard.id) {
        let (tx, rx) = futures::channel::oneshot::channel();
        let cmd = crate::dispatch::RemoteCmd {
            handler,
            call: crate::stats::Call::Untracked,
            db: db as u8,
            caller,
            args: crate::dispatch::OwnedArgs::new(args),
            blocking: false,
        };
        shard.outbox.send(to, crate::dispatch::Msg::Batch { cmds: vec![cmd], reply: tx }).await;
        waits.push(rx);
    }
    let mut out = vec![shard.exec(handler, crate::stats::Call::Untracked, db, caller, args)];
    for rx in waits {
        out.push(rx.await.ok().and_then(|mut v| v.pop()).unwrap_or_else(|| Reply::error("ERR a shard stopped before it answered")));
    }
    out
}

/// FT.SEARCH, run by the connection.
pub async fn search(shard: &Rc<Shard>, db: usize, caller: u64, proto: Protocol, args: &[&[u8]]) -> Reply {
    let a = match SearchArgs::parse(args) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let stats = if shard.outbox.shards() > 1 {
        let mut stats = Stats::default();
        for part in scatter(shard, stats_part, db, caller, args).await {
            if let Err(e) = read_stats(part, &mut stats) {
                return e;
            }
        }
        encode_stats(&stats)
    } else {
        Vec::new()
    };
    let mut full = args.to_vec();
    full.push(&stats);
    let parts = scatter(shard, run_part, db, caller, &full).await;
    merge(&a, parts, proto)
}

fn merge(a: &SearchArgs, parts: Vec<Reply>, proto: Protocol) -> Reply {
    let mut total = 0i64;
    let mut hits: Vec<(Hit, Reply)> = Vec::new();
    for p in parts {
        let Reply::Array(v) = p else { return p };
        let mut it = v.into_iter();
        if let Some(Reply::Int(n)) = it.next() {
            total += n;
        }
        let rest: Vec<Reply> = it.collect();
        for chunk in rest.chunks(4) {
            let [Reply::Bulk(key), Reply::Double(score), sort, fields] = chunk else { continue };
            let sort = match sort {
                Reply::Double(x) => Some(SortValue::Num(*x)),
                Reply::Bulk(s) => Some(SortValue::Str(s.clone().into())),
                _ => None,
            };
            hits.push((Hit { key: key.clone(), score: *score, sort }, fields.clone()));
        }
    }
    let mut order: Vec<Hit> = hits.iter().map(|(h, _)| h.clone()).collect();
    rank(&mut order, a.sortby.as_ref().map(|(_, asc)| *asc));
    let mut by_key: std::collections::HashMap<Vec<u8>, Reply> = hits.into_iter().map(|(h, f)| (h.key, f)).collect();
    let page: Vec<(Hit, Reply)> = order
        .into_iter()
        .skip(a.offset)
        .take(a.limit)
        .map(|h| {
            let f = by_key.remove(&h.key).unwrap_or(Reply::Array(Vec::new()));
            (h, f)
        })
        .collect();
    if proto == Protocol::Resp3 {
        return resp3(a, total, page);
    }
    let mut out = vec![Reply::Int(total)];
    for (h, fields) in page {
        out.push(Reply::Bulk(h.key));
        if a.withscores {
            out.push(Reply::Double(h.score));
        }
        if a.withsortkeys {
            out.push(sort_key(&h.sort));
        }
        if !a.nocontent {
            out.push(fields);
        }
    }
    Reply::Array(out)
}

fn sort_key(s: &Option<SortValue>) -> Reply {
    match s {
        Some(SortValue::Num(x)) => Reply::bulk(format!("#{x}").as_bytes()),
        Some(SortValue::Str(s)) => {
            let mut v = b"$".to_vec();
            v.extend_from_slice(s);
            Reply::Bulk(v)
        }
        None => Reply::Nil,
    }
}

/// RediSearch's RESP3 reply: a map with `results` (one map per document) and `total_results`.
fn resp3(a: &SearchArgs, total: i64, page: Vec<(Hit, Reply)>) -> Reply {
    let results = page
        .into_iter()
        .map(|(h, fields)| {
            let mut m = vec![(Reply::bulk(b"id"), Reply::Bulk(h.key))];
            if a.withscores {
                m.push((Reply::bulk(b"score"), Reply::Double(h.score)));
            }
            if a.withsortkeys {
                m.push((Reply::bulk(b"sortkey"), sort_key(&h.sort)));
            }
            if !a.nocontent {
                let Reply::Array(f) = fields else { return Reply::Map(m) };
                let pairs = f.chunks(2).filter_map(|p| if let [k, v] = p { Some((k.clone(), v.clone())) } else { None }).collect();
                m.push((Reply::bulk(b"extra_attributes"), Reply::Map(pairs)));
            }
            m.push((Reply::bulk(b"values"), Reply::Array(Vec::new())));
            Reply::Map(m)
        })
        .collect();
    Reply::Map(vec![
        (Reply::bulk(b"attributes"), Reply::Array(Vec::new())),
        (Reply::bulk(b"format"), Reply::bulk(b"STRING")),
        (Reply::bulk(b"results"), Reply::Array(results)),
        (Reply::bulk(b"total_results"), Reply::Int(total)),
        (Reply::bulk(b"warning"), Reply::Array(Vec::new())),
    ])
}

/// FT.SEARCH.
pub const COMMANDS: &[Command] = &[keyless(
    "ft.search",
    -3,
    super::flags::READONLY,
    Route::Async(AsyncCmd::Search),
    &["@read", "@search", "@slow"],
    "Searches an index with a query, returning the best documents.",
)];
