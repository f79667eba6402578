//! Autocomplete, spell-check dictionaries and spell checking: FT.SUGADD,
//! FT.SUGGET, FT.SUGDEL, FT.SUGLEN, FT.DICTADD, FT.DICTDEL, FT.DICTDUMP,
//! FT.SPELLCHECK, after RediSearch 2.10.
//!
//! - A suggestion dictionary is a key (type `trietype0`, as RediSearch's
//!   module type answers TYPE), owned by its key's shard ([`Route::Key`]);
//!   each write is one `Change::SugAdd` / `Change::SugDel`, with INCR and a
//!   kept payload resolved before it is logged. Matching folds case; the
//!   ranking is described in `strand_engine::keyspace::sug`.
//! - Spell-check dictionaries belong to a database, as its search indexes
//!   do, and live on every shard: FT.DICTADD / FT.DICTDEL run on every shard
//!   ([`Route::All`]), each logging the same `Op::Search` record, and every
//!   shard answers the same count. FLUSHDB / FLUSHALL drop them with the indexes.
//! - FT.SPELLCHECK runs on every shard: each reports, per query term, whether
//!   its part of the index holds the term and the near terms with their
//!   document counts; the merge sums counts over shards and scores a
//!   suggestion as its document count over the total number of documents.
//!
//! Docs: <https://redis.io/docs/latest/commands/ft.sugadd/>,
//! <https://redis.io/docs/latest/commands/ft.dictadd/>,
//! <https://redis.io/docs/latest/commands/ft.spellcheck/>

use std::collections::BTreeMap;

use strand_engine::keyspace::op::search_tag;
use strand_engine::keyspace::sug::SugDict;
use strand_engine::keyspace::{Change, Op};
use strand_engine::search::query::{parse, ParseOptions};
use strand_engine::search::spell::{levenshtein, query_terms};

use super::search::no_such_index;
use super::series::kw;
use super::strings::{parse_f64, parse_i64, write};
use super::typed::{self, change};
use super::{err, flags, keyless, one_key, Command, Ctx, Merge, Route};
use crate::reply::Reply;

fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

fn reply(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

/// A score as RediSearch prints it in RESP2: a string.
fn score_reply(x: f64) -> Reply {
    Reply::bulk(format!("{x}"))
}

// ---------------------------------------------------------------------------
// Suggestions
// ---------------------------------------------------------------------------

/// [FT.SUGADD](https://redis.io/docs/latest/commands/ft.sugadd/) key string score [INCR] [PAYLOAD p]:
/// the dictionary's size afterwards.
fn sugadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply((|| {
        let score = parse_f64(args[3]).filter(|s| s.is_finite()).ok_or_else(|| Reply::error("ERR invalid score"))?;
        let (mut incr, mut payload) = (false, None);
        let mut at = 4;
        while at < args.len() {
            if kw(args[at], "INCR") {
                incr = true;
            } else if kw(args[at], "PAYLOAD") {
                payload = Some(*args.get(at + 1).ok_or_else(|| Reply::error(err::SYNTAX))?);
                at += 1;
            } else {
                return Err(Reply::error(err::SYNTAX));
            }
            at += 1;
        }
        let string = text(args[2]);
        let old = typed::peek::<SugDict>(ctx, args[1])?.and_then(|d| d.get(&string)).cloned();
        let score = match (&old, incr) {
            (Some(e), true) => e.score + score,
            _ => score,
        };
        if !score.is_finite() {
            return Err(Reply::error("ERR invalid score"));
        }
        // As RediSearch, an update without PAYLOAD keeps the payload there is.
        let kept = old.as_ref().and_then(|e| e.payload.as_deref());
        let payload = payload.or(kept);
        change(ctx, args[1], Change::SugAdd { string: string.as_bytes(), score, payload })?;
        Ok(Reply::Int(typed::peek::<SugDict>(ctx, args[1])?.map_or(0, SugDict::len) as i64))
    })())
}

/// [FT.SUGGET](https://redis.io/docs/latest/commands/ft.sugget/) key prefix [FUZZY] [WITHSCORES] [WITHPAYLOADS] [MAX n]:
/// the best matches (5 unless MAX says otherwise), best first.
fn sugget(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply((|| {
        let (mut fuzzy, mut scores, mut payloads, mut max) = (false, false, false, 5usize);
        let mut at = 3;
        while at < args.len() {
            let a = args[at];
            if kw(a, "FUZZY") {
                fuzzy = true;
            } else if kw(a, "WITHSCORES") {
                scores = true;
            } else if kw(a, "WITHPAYLOADS") {
                payloads = true;
            } else if kw(a, "MAX") {
                max = args
                    .get(at + 1)
                    .and_then(|n| parse_i64(n))
                    .filter(|&n| n >= 0)
                    .ok_or_else(|| Reply::error("ERR Invalid value for MAX"))? as usize;
                at += 1;
            } else {
                return Err(Reply::error(err::SYNTAX));
            }
            at += 1;
        }
        let prefix = text(args[2]);
        let Some(d) = typed::read::<SugDict>(ctx, args[1])? else { return Ok(Reply::Array(Vec::new())) };
        let mut out = Vec::new();
        for m in d.search(&prefix, fuzzy, max) {
            out.push(Reply::bulk(m.entry.string.as_bytes()));
            if scores {
                out.push(score_reply(m.rank));
            }
            if payloads {
                out.push(Reply::opt_bulk(m.entry.payload.as_deref()));
            }
        }
        Ok(Reply::Array(out))
    })())
}

/// [FT.SUGDEL](https://redis.io/docs/latest/commands/ft.sugdel/) key string: 1 if it was there, else 0.
fn sugdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply((|| {
        let string = text(args[2]);
        let there = typed::peek::<SugDict>(ctx, args[1])?.is_some_and(|d| d.get(&string).is_some());
        if there {
            change(ctx, args[1], Change::SugDel(string.as_bytes()))?;
        }
        Ok(Reply::Int(i64::from(there)))
    })())
}

/// [FT.SUGLEN](https://redis.io/docs/latest/commands/ft.suglen/) key: the number of suggestions.
fn suglen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(typed::read::<SugDict>(ctx, args[1]).map(|d| Reply::Int(d.map_or(0, SugDict::len) as i64)))
}

// ---------------------------------------------------------------------------
// Dictionaries
// ---------------------------------------------------------------------------

/// [FT.DICTADD](https://redis.io/docs/latest/commands/ft.dictadd/) dict term...: how many terms were new.
fn dictadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    dict_change(ctx, args, search_tag::DICT_ADD)
}

/// [FT.DICTDEL](https://redis.io/docs/latest/commands/ft.dictdel/) dict term...: how many terms were removed.
fn dictdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    dict_change(ctx, args, search_tag::DICT_DEL)
}

fn dict_change(ctx: &mut Ctx<'_>, args: &[&[u8]], tag: u8) -> Reply {
    let name = text(args[1]);
    let mut terms: Vec<String> = args[2..].iter().map(|t| text(t)).collect();
    let dict = ctx.shard.ks.search(ctx.db).dict(&name);
    let adding = tag == search_tag::DICT_ADD;
    // Only the terms that change something, each once: the count to answer.
    let mut seen = std::collections::BTreeSet::new();
    terms.retain(|t| seen.insert(t.clone()) && dict.is_some_and(|d| d.contains(t)) != adding);
    if terms.is_empty() {
        return Reply::Int(0);
    }
    let refs: Vec<&str> = terms.iter().map(String::as_str).collect();
    let body = strand_engine::search::encode_dict(&name, &refs);
    match write(ctx, Op::Search { db: ctx.db as u8, tag, body: &body }) {
        Ok(()) => Reply::Int(terms.len() as i64),
        Err(e) => e,
    }
}

/// [FT.DICTDUMP](https://redis.io/docs/latest/commands/ft.dictdump/) dict: every term, sorted.
fn dictdump(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    match ctx.shard.ks.search(ctx.db).dict(&text(args[1])) {
        Some(d) => Reply::Array(d.iter().map(Reply::bulk).collect()),
        None => Reply::error("ERR could not open dict key"),
    }
}

// ---------------------------------------------------------------------------
// Spell checking
// ---------------------------------------------------------------------------

/// FT.SPELLCHECK's options.
struct SpellOptions {
    distance: usize,
    include: Vec<String>,
    exclude: Vec<String>,
}

fn parse_spell(args: &[&[u8]]) -> Result<SpellOptions, Reply> {
    let mut o = SpellOptions { distance: 1, include: Vec::new(), exclude: Vec::new() };
    let mut at = 3;
    while at < args.len() {
        let a = args[at];
        if kw(a, "DISTANCE") {
            o.distance = args
                .get(at + 1)
                .and_then(|n| parse_i64(n))
                .filter(|n| (1..=4).contains(n))
                .ok_or_else(|| Reply::error("ERR distance must be a number between 1 and 4"))? as usize;
            at += 2;
        } else if kw(a, "TERMS") {
            let (Some(mode), Some(dict)) = (args.get(at + 1), args.get(at + 2)) else {
                return Err(Reply::error("ERR TERMS arguments are missing"));
            };
            if kw(mode, "INCLUDE") {
                o.include.push(text(dict));
            } else if kw(mode, "EXCLUDE") {
                o.exclude.push(text(dict));
            } else {
                return Err(Reply::error("ERR bad format for TERMS: expected INCLUDE or EXCLUDE"));
            }
            at += 3;
        } else if kw(a, "DIALECT") {
            args.get(at + 1)
                .and_then(|n| parse_i64(n))
                .filter(|n| (1..=4).contains(n))
                .ok_or_else(|| Reply::error("ERR DIALECT requires a number between 1 and 4"))?;
            at += 2;
        } else if kw(a, "FULLSCOREINFO") {
            return Err(Reply::error("ERR FULLSCOREINFO is not supported"));
        } else {
            return Err(Reply::error(format!("ERR Unknown argument `{}`", text(a))));
        }
    }
    Ok(o)
}

/// [FT.SPELLCHECK](https://redis.io/docs/latest/commands/ft.spellcheck/) index query [DISTANCE n] [TERMS INCLUDE|EXCLUDE dict]... [DIALECT n]:
/// this shard's part, `[docs, [[term, found, [[suggestion, docs], ...]], ...]]`, joined by [`merge_spellcheck`].
fn spellcheck(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply((|| {
        let o = parse_spell(args)?;
        let search = ctx.shard.ks.search(ctx.db);
        let Some(ix) = search.get(&text(args[1])) else { return Err(no_such_index(args[1])) };
        let mut include = Vec::new();
        let mut exclude = Vec::new();
        for (names, out) in [(&o.include, &mut include), (&o.exclude, &mut exclude)] {
            for n in names {
                out.push(search.dict(n).ok_or_else(|| Reply::error(format!("ERR Dict does not exist: {n}")))?);
            }
        }
        let opts = ParseOptions { stopwords: ix.schema.stopwords.as_deref(), ..Default::default() };
        let node = parse(&text(args[2]), &opts).map_err(|e| Reply::error(format!("ERR {}", e.0)))?;
        let mut terms = Vec::new();
        for term in query_terms(&node) {
            if exclude.iter().any(|d| d.contains(&term)) {
                continue;
            }
            let found = ix.doc_freq(&term) > 0;
            let mut sugs: BTreeMap<&str, u32> = BTreeMap::new();
            if !found {
                sugs.extend(ix.terms_near(&term, o.distance));
                for d in &include {
                    for t in d.iter().filter(|t| **t != term && levenshtein(&term, t, o.distance).is_some()) {
                        sugs.entry(t).or_insert(0);
                    }
                }
            }
            let sugs = sugs.into_iter().map(|(t, n)| Reply::Array(vec![Reply::bulk(t), Reply::Int(i64::from(n))])).collect();
            terms.push(Reply::Array(vec![Reply::bulk(&term), Reply::Int(i64::from(found)), Reply::Array(sugs)]));
        }
        Ok(Reply::Array(vec![Reply::Int(i64::from(ix.num_docs())), Reply::Array(terms)]))
    })())
}

/// One query term across shards, in query order: the term, whether any
/// shard holds it, and its suggestions with their documents on every shard.
type SpellTerm = (Vec<u8>, bool, BTreeMap<Vec<u8>, i64>);

/// Joins the shards' FT.SPELLCHECK parts: a term is misspelled when no shard
/// holds it; a suggestion's score is its documents on every shard over every
/// shard's documents. RediSearch 2.10's RESP2 shape:
/// `[["TERM", term, [[score, suggestion], ...]], ...]`, best score first.
fn merge_spellcheck(parts: Vec<Reply>) -> Reply {
    let mut total = 0i64;
    let mut terms: Vec<SpellTerm> = Vec::new();
    for p in parts {
        let Reply::Array(mut v) = p else { return p };
        let (Some(Reply::Array(list)), Some(Reply::Int(docs))) = (v.pop(), v.pop()) else {
            return Reply::error("ERR malformed shard reply");
        };
        total += docs;
        for (i, t) in list.into_iter().enumerate() {
            let Reply::Array(t) = t else { continue };
            let mut t = t.into_iter();
            let (Some(Reply::Bulk(term)), Some(Reply::Int(found)), Some(Reply::Array(sugs))) = (t.next(), t.next(), t.next()) else {
                continue;
            };
            if terms.len() <= i {
                terms.push((term, false, BTreeMap::new()));
            }
            let entry = &mut terms[i];
            entry.1 |= found != 0;
            for s in sugs {
                if let Reply::Array(pair) = s {
                    if let [Reply::Bulk(word), Reply::Int(n)] = &pair[..] {
                        *entry.2.entry(word.clone()).or_insert(0) += n;
                    }
                }
            }
        }
    }
    let out = terms
        .into_iter()
        .filter(|(_, found, _)| !found)
        .map(|(term, _, sugs)| {
            let mut scored: Vec<(f64, Vec<u8>)> =
                sugs.into_iter().map(|(w, n)| (if total > 0 { n as f64 / total as f64 } else { 0.0 }, w)).collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            let sugs = scored.into_iter().map(|(s, w)| Reply::Array(vec![score_reply(s), Reply::Bulk(w)])).collect();
            Reply::Array(vec![Reply::bulk(b"TERM"), Reply::Bulk(term), Reply::Array(sugs)])
        })
        .collect();
    Reply::Array(out)
}

const W: u32 = flags::WRITE | flags::DENYOOM;
const R: u32 = flags::READONLY;
const CAT_W: &[&str] = &["@write", "@search", "@slow"];
const CAT_R: &[&str] = &["@read", "@search", "@slow"];

/// The FT.SUG*, FT.DICT* and FT.SPELLCHECK commands.
pub const COMMANDS: &[Command] = &[
    one_key("ft.sugadd", -4, W, sugadd, CAT_W, "Adds a suggestion string to an auto-complete suggestion dictionary."),
    one_key("ft.sugget", -3, R, sugget, CAT_R, "Gets completion suggestions for a prefix."),
    one_key("ft.sugdel", 3, flags::WRITE, sugdel, CAT_W, "Deletes a string from a suggestion dictionary."),
    one_key("ft.suglen", 2, R, suglen, CAT_R, "Gets the size of an auto-complete suggestion dictionary."),
    keyless("ft.dictadd", -3, W, Route::All(dictadd, Merge::FirstError), CAT_W, "Adds terms to a dictionary."),
    keyless("ft.dictdel", -3, flags::WRITE, Route::All(dictdel, Merge::FirstError), CAT_W, "Deletes terms from a dictionary."),
    keyless("ft.dictdump", 2, R, Route::Local(dictdump), CAT_R, "Dumps all terms in the given dictionary."),
    keyless(
        "ft.spellcheck",
        -3,
        R,
        Route::All(spellcheck, Merge::Custom(merge_spellcheck)),
        CAT_R,
        "Performs spelling correction on a query, returning suggestions for misspelled terms.",
    ),
];
