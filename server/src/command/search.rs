//! Search index commands: FT.CREATE, FT.ALTER, FT.DROPINDEX, FT._LIST,
//! FT.INFO, FT.EXPLAIN, FT.TAGVALS, FT.SYNUPDATE, FT.SYNDUMP. FT.SEARCH is in [`super::search_query`].
//!
//! Index definitions live on every shard (each indexes the hashes it owns),
//! so the commands that change them run on every shard ([`Route::All`]) and
//! each logs the same `Op::Search` record. Replies and errors follow
//! RediSearch 2.10.
//!
//! Docs: <https://redis.io/docs/latest/commands/ft.create/>

use strand_engine::keyspace::op::search_tag;
use strand_engine::keyspace::{Op, Value};
use strand_engine::search::query::{parse, ParseOptions};
use strand_engine::search::schema::{Field, Kind, Schema};

use super::series::kw;
use super::strings::{parse_f64, parse_i64, write};
use super::{keyless, Command, Ctx, Merge, Route};
use crate::reply::Reply;

/// The error for an index that does not exist (FT.INFO, FT.DROPINDEX, FT.ALTER).
pub(crate) fn unknown_index() -> Reply {
    Reply::error("Unknown index name")
}

/// The error FT.SEARCH and FT.EXPLAIN give for an index that does not exist.
pub(crate) fn no_such_index(name: &[u8]) -> Reply {
    Reply::error(format!("{}: no such index", String::from_utf8_lossy(name)))
}

fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// A count argument (`PREFIX n`, `STOPWORDS n`) and that many items after it.
fn counted<'a>(args: &'a [&'a [u8]], at: usize, what: &str) -> Result<&'a [&'a [u8]], Reply> {
    let n = args
        .get(at)
        .and_then(|a| parse_i64(a))
        .filter(|&n| n >= 0)
        .ok_or_else(|| Reply::error(format!("Bad arguments for {what}: Expected an argument")))? as usize;
    args.get(at + 1..at + 1 + n).ok_or_else(|| Reply::error(format!("Bad arguments for {what}: Expected an argument")))
}

/// Parses `field [AS alias] TEXT|TAG|NUMERIC [options]...` from `args[at..]`.
fn parse_fields(args: &[&[u8]], mut at: usize, fields: &mut Vec<Field>) -> Result<(), Reply> {
    if at >= args.len() {
        return Err(Reply::error("Fields arguments are missing"));
    }
    while at < args.len() {
        let name = args[at];
        at += 1;
        let mut alias = None;
        if args.get(at).is_some_and(|a| kw(a, "AS")) {
            alias = Some(text(args.get(at + 1).ok_or_else(|| Reply::error("Bad arguments for AS: Expected an argument"))?));
            at += 2;
        }
        let kind = match args.get(at) {
            Some(a) if kw(a, "TEXT") => Kind::Text,
            Some(a) if kw(a, "TAG") => Kind::Tag,
            Some(a) if kw(a, "NUMERIC") => Kind::Numeric,
            Some(a) => return Err(Reply::error(format!("Invalid field type for field `{}`: {}", text(name), text(a)))),
            None => return Err(Reply::error(format!("Field `{}` does not have a type", text(name)))),
        };
        at += 1;
        let mut f = Field::new(name, kind.clone());
        if let Some(a) = alias {
            f.alias = a;
        }
        while let Some(opt) = args.get(at) {
            if kw(opt, "SORTABLE") {
                f.sortable = true;
                if args.get(at + 1).is_some_and(|a| kw(a, "UNF")) {
                    at += 1;
                }
            } else if kw(opt, "NOINDEX") {
                f.noindex = true;
            } else if kind == Kind::Text && kw(opt, "NOSTEM") {
                f.nostem = true;
            } else if kind == Kind::Text && kw(opt, "WEIGHT") {
                f.weight = args
                    .get(at + 1)
                    .and_then(|w| parse_f64(w))
                    .filter(|w| *w >= 0.0)
                    .ok_or_else(|| Reply::error("Could not parse field spec"))?;
                at += 1;
            } else if kind == Kind::Text && kw(opt, "PHONETIC") {
                return Err(Reply::error("PHONETIC is not supported"));
            } else if kind == Kind::Tag && kw(opt, "SEPARATOR") {
                let sep = args.get(at + 1).ok_or_else(|| Reply::error("Bad arguments for SEPARATOR: Expected an argument"))?;
                match sep {
                    [c] if c.is_ascii() => f.separator = *c,
                    _ => return Err(Reply::error("Tag separator must be a single character")),
                }
                at += 1;
            } else if kind == Kind::Tag && kw(opt, "CASESENSITIVE") {
                f.case_sensitive = true;
            } else if kw(opt, "WITHSUFFIXTRIE") || kw(opt, "INDEXEMPTY") || kw(opt, "INDEXMISSING") {
                return Err(Reply::error(format!("{} is not supported", text(opt).to_uppercase())));
            } else {
                break;
            }
            at += 1;
        }
        if fields.iter().any(|g| g.alias == f.alias) {
            return Err(Reply::error(format!("Duplicate field in schema - {}", f.alias)));
        }
        fields.push(f);
    }
    if fields.iter().filter(|f| f.kind == Kind::Text).count() > 32 {
        return Err(Reply::error("Schema is limited to 32 TEXT fields"));
    }
    Ok(())
}

/// Parses FT.CREATE's arguments into a schema.
pub(crate) fn parse_create(args: &[&[u8]]) -> Result<Schema, Reply> {
    let name = text(args[1]);
    let mut s = Schema { name, prefixes: Vec::new(), stopwords: None, score: 1.0, fields: Vec::new() };
    let mut at = 2;
    while at < args.len() {
        let a = args[at];
        if kw(a, "SCHEMA") {
            parse_fields(args, at + 1, &mut s.fields)?;
            return Ok(s);
        } else if kw(a, "ON") {
            match args.get(at + 1) {
                Some(t) if kw(t, "HASH") => {}
                Some(t) if kw(t, "JSON") => return Err(Reply::error("JSON documents are not supported: strand indexes hashes")),
                _ => return Err(Reply::error("Unknown argument `ON`")),
            }
            at += 2;
        } else if kw(a, "PREFIX") {
            let p = counted(args, at + 1, "PREFIX")?;
            s.prefixes.extend(p.iter().map(|x| x.to_vec()));
            at += 2 + p.len();
        } else if kw(a, "STOPWORDS") {
            let w = counted(args, at + 1, "STOPWORDS")?;
            s.stopwords = Some(w.iter().map(|x| text(x)).collect());
            at += 2 + w.len();
        } else if kw(a, "LANGUAGE") {
            match args.get(at + 1) {
                Some(l) if kw(l, "english") => {}
                Some(l) => return Err(Reply::error(format!("Invalid language: {} (strand stems English only)", text(l)))),
                None => return Err(Reply::error("Bad arguments for LANGUAGE: Expected an argument")),
            }
            at += 2;
        } else if kw(a, "SCORE") {
            s.score = args
                .get(at + 1)
                .and_then(|x| parse_f64(x))
                .filter(|x| (0.0..=1.0).contains(x))
                .ok_or_else(|| Reply::error("Invalid score"))?;
            at += 2;
        } else if kw(a, "MAXTEXTFIELDS")
            || kw(a, "NOOFFSETS")
            || kw(a, "NOHL")
            || kw(a, "NOFIELDS")
            || kw(a, "NOFREQS")
            || kw(a, "SKIPINITIALSCAN")
        {
            at += 1;
        } else if kw(a, "FILTER") || kw(a, "LANGUAGE_FIELD") || kw(a, "SCORE_FIELD") || kw(a, "PAYLOAD_FIELD") || kw(a, "TEMPORARY") {
            return Err(Reply::error(format!("{} is not supported", text(a).to_uppercase())));
        } else {
            return Err(Reply::error(format!("Unknown argument `{}`", text(a))));
        }
    }
    Err(Reply::error("No schema found"))
}

fn define(ctx: &mut Ctx<'_>, schema: &Schema) -> Result<(), Reply> {
    let body = schema.encode();
    write(ctx, Op::Search { db: ctx.db as u8, tag: search_tag::DEFINE, body: &body })
}

/// [FT.CREATE](https://redis.io/docs/latest/commands/ft.create/): defines an index and indexes the existing hashes.
fn create(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let schema = match parse_create(args) {
        Ok(s) => s,
        Err(e) => return e,
    };
    if ctx.shard.ks.search(ctx.db).get(&schema.name).is_some() {
        return Reply::error("Index already exists");
    }
    define(ctx, &schema).map_or_else(|e| e, |()| Reply::Ok)
}

/// [FT.ALTER](https://redis.io/docs/latest/commands/ft.alter/) index [SKIPINITIALSCAN] SCHEMA ADD field ...
fn alter(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let Some(ix) = ctx.shard.ks.search(ctx.db).get(&text(args[1])) else { return unknown_index() };
    let mut schema = ix.schema.clone();
    let mut at = 2;
    if args.get(at).is_some_and(|a| kw(a, "SKIPINITIALSCAN")) {
        at += 1;
    }
    if !(args.get(at).is_some_and(|a| kw(a, "SCHEMA")) && args.get(at + 1).is_some_and(|a| kw(a, "ADD"))) {
        return Reply::error("Unknown argument");
    }
    if let Err(e) = parse_fields(args, at + 2, &mut schema.fields) {
        return e;
    }
    define(ctx, &schema).map_or_else(|e| e, |()| Reply::Ok)
}

/// [FT.DROPINDEX](https://redis.io/docs/latest/commands/ft.dropindex/) index [DD]: with DD the documents are deleted too.
fn dropindex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let name = text(args[1]);
    let dd = match args.get(2) {
        None => false,
        Some(a) if kw(a, "DD") && args.len() == 3 => true,
        Some(_) => return Reply::error("Unknown argument"),
    };
    let Some(ix) = ctx.shard.ks.search(ctx.db).get(&name) else { return unknown_index() };
    let keys: Vec<Vec<u8>> = if dd { ix.live_keys().map(<[u8]>::to_vec).collect() } else { Vec::new() };
    let db = ctx.db as u8;
    let mut ops = vec![Op::Search { db, tag: search_tag::DROP, body: name.as_bytes() }];
    ops.extend(keys.iter().map(|k| Op::Del { db, key: k }));
    let op = if ops.len() == 1 { ops.remove(0) } else { Op::Group(ops) };
    write(ctx, op).map_or_else(|e| e, |()| Reply::Ok)
}

/// [FT._LIST](https://redis.io/docs/latest/commands/ft._list/): the index names.
fn list(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> Reply {
    Reply::Set(ctx.shard.ks.search(ctx.db).names().map(|n| Reply::bulk(n.as_bytes())).collect())
}

/// [FT.EXPLAIN](https://redis.io/docs/latest/commands/ft.explain/) index query [DIALECT n]: the parsed query as a tree.
fn explain(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    if ctx.shard.ks.search(ctx.db).get(&text(args[1])).is_none() {
        return no_such_index(args[1]);
    }
    match parse(&text(args[2]), &ParseOptions::default()) {
        Ok(node) => Reply::bulk(node.to_string().as_bytes()),
        Err(e) => Reply::error(e.0),
    }
}

/// [FT.TAGVALS](https://redis.io/docs/latest/commands/ft.tagvals/) index field: this shard's distinct values.
fn tagvals(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let Some(ix) = ctx.shard.ks.search(ctx.db).get(&text(args[1])) else { return unknown_index() };
    let Some((n, f)) = ix.schema.field(&text(args[2])) else { return Reply::error(format!("No such field `{}`", text(args[2]))) };
    if f.kind != Kind::Tag {
        return Reply::error(format!("Not a tag field `{}`", text(args[2])));
    }
    Reply::Array(ix.tag_values(n).into_iter().map(|v| Reply::bulk(v.as_bytes())).collect())
}

fn merge_tagvals(parts: Vec<Reply>) -> Reply {
    let mut all = Vec::new();
    for p in parts {
        match p {
            Reply::Array(v) => all.extend(v.into_iter().filter_map(|r| if let Reply::Bulk(b) = r { Some(b) } else { None })),
            e => return e,
        }
    }
    all.sort();
    all.dedup();
    Reply::Set(all.into_iter().map(Reply::Bulk).collect())
}

/// [FT.INFO](https://redis.io/docs/latest/commands/ft.info/): this shard's part; merged by [`merge_info`].
fn info(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let Some(ix) = ctx.shard.ks.search(ctx.db).get(&text(args[1])) else { return unknown_index() };
    let s = &ix.schema;
    let attrs = s
        .fields
        .iter()
        .map(|f| {
            let mut a = vec![
                Reply::bulk(b"identifier"),
                Reply::bulk(&f.name),
                Reply::bulk(b"attribute"),
                Reply::bulk(f.alias.as_bytes()),
                Reply::bulk(b"type"),
                Reply::bulk(match f.kind {
                    Kind::Text => b"TEXT".as_slice(),
                    Kind::Tag => b"TAG",
                    Kind::Numeric => b"NUMERIC",
                }),
            ];
            if f.kind == Kind::Text {
                a.push(Reply::bulk(b"WEIGHT"));
                a.push(Reply::bulk(format!("{}", f.weight).as_bytes()));
                if f.nostem {
                    a.push(Reply::bulk(b"NOSTEM"));
                }
            }
            if f.kind == Kind::Tag {
                a.push(Reply::bulk(b"SEPARATOR"));
                a.push(Reply::bulk([f.separator]));
                if f.case_sensitive {
                    a.push(Reply::bulk(b"CASESENSITIVE"));
                }
            }
            if f.sortable {
                a.push(Reply::bulk(b"SORTABLE"));
            }
            if f.noindex {
                a.push(Reply::bulk(b"NOINDEX"));
            }
            Reply::Array(a)
        })
        .collect();
    let def = vec![
        Reply::bulk(b"key_type"),
        Reply::bulk(b"HASH"),
        Reply::bulk(b"prefixes"),
        Reply::Array(s.prefixes.iter().map(Reply::bulk).collect()),
        Reply::bulk(b"default_score"),
        Reply::bulk(format!("{}", s.score).as_bytes()),
    ];
    Reply::Map(vec![
        (Reply::bulk(b"index_name"), Reply::bulk(s.name.as_bytes())),
        (Reply::bulk(b"index_options"), Reply::Array(Vec::new())),
        (Reply::bulk(b"index_definition"), Reply::Array(def)),
        (Reply::bulk(b"attributes"), Reply::Array(attrs)),
        (Reply::bulk(b"num_docs"), Reply::Int(i64::from(ix.num_docs()))),
        (Reply::bulk(b"max_doc_id"), Reply::Int(ix.max_doc_id() as i64)),
        (Reply::bulk(b"num_terms"), Reply::Int(ix.num_terms() as i64)),
        (Reply::bulk(b"num_records"), Reply::Int(ix.num_records() as i64)),
        (Reply::bulk(b"total_doc_len"), Reply::Int(ix.total_len() as i64)),
        (Reply::bulk(b"index_bytes"), Reply::Int(ix.heap_bytes() as i64)),
        (Reply::bulk(b"hash_indexing_failures"), Reply::Int(ix.failures as i64)),
        (Reply::bulk(b"indexing"), Reply::Int(i64::from(ix.scan.is_some()))),
        (Reply::bulk(b"percent_indexed"), Reply::bulk(format!("{}", ix.scan.map_or(1.0, |s| s.fraction())).as_bytes())),
        (Reply::bulk(b"number_of_uses"), Reply::Int(0)),
        (Reply::bulk(b"cleaning"), Reply::Int(i64::from(ix.cleaning()))),
    ])
}

/// Sums the counters of every shard's FT.INFO; the rest comes from the first.
fn merge_info(parts: Vec<Reply>) -> Reply {
    let mut out: Option<Vec<(Reply, Reply)>> = None;
    let mut percents = Vec::new();
    for p in parts {
        let Reply::Map(pairs) = p else { return p };
        for (k, v) in &pairs {
            if let (Reply::Bulk(k), Reply::Bulk(v)) = (k, v) {
                if k == b"percent_indexed" {
                    percents.extend(std::str::from_utf8(v).ok().and_then(|x| x.parse::<f64>().ok()));
                }
            }
        }
        match &mut out {
            None => out = Some(pairs),
            Some(acc) => {
                for ((_, a), (_, b)) in acc.iter_mut().zip(pairs) {
                    if let (Reply::Int(x), Reply::Int(y)) = (&*a, b) {
                        *a = Reply::Int(*x + y);
                    }
                }
            }
        }
    }
    let Some(mut acc) = out else { return unknown_index() };
    // Indexing progress is that of the shard furthest behind.
    let least = percents.iter().copied().fold(1.0f64, f64::min);
    for (k, v) in acc.iter_mut() {
        if matches!(k, Reply::Bulk(b) if b == b"percent_indexed") {
            *v = Reply::bulk(format!("{least}").as_bytes());
        }
        // Flags, not counters: 1 when any shard is at it.
        if matches!(k, Reply::Bulk(b) if b == b"indexing" || b == b"cleaning") {
            if let Reply::Int(n) = v {
                *n = (*n).min(1);
            }
        }
    }
    // The number of terms is not additive (shards share words): report the largest.
    let avg = {
        let get = |name: &[u8], acc: &[(Reply, Reply)]| {
            acc.iter()
                .find(|(k, _)| matches!(k, Reply::Bulk(b) if b == name))
                .and_then(|(_, v)| if let Reply::Int(i) = v { Some(*i) } else { None })
        };
        let docs = get(b"num_docs", &acc).unwrap_or(0);
        let len = get(b"total_doc_len", &acc).unwrap_or(0);
        if docs > 0 {
            len as f64 / docs as f64
        } else {
            0.0
        }
    };
    acc.push((Reply::bulk(b"avg_doc_len"), Reply::Double(avg)));
    Reply::Map(acc)
}

/// The hash fields a document is read from, for callers that look one up.
pub(crate) fn hash_of<'a>(ctx: &'a Ctx<'_>, key: &[u8]) -> Option<&'a strand_engine::keyspace::hash::Hash> {
    match ctx.shard.ks.peek(ctx.db, key, ctx.now).map(|e| &e.value) {
        Some(Value::Hash(h)) => Some(h),
        _ => None,
    }
}

/// [FT.SYNUPDATE](https://redis.io/docs/latest/commands/ft.synupdate/) index group [SKIPINITIALSCAN] term...:
/// the words of a group match each other in queries (applied at query time,
/// so SKIPINITIALSCAN changes nothing).
fn synupdate(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    if ctx.shard.ks.search(ctx.db).get(&text(args[1])).is_none() {
        return unknown_index();
    }
    let mut at = 3;
    if args.get(at).is_some_and(|a| kw(a, "SKIPINITIALSCAN")) {
        at += 1;
    }
    if at >= args.len() {
        return super::arity_error("ft.synupdate");
    }
    let mut terms: Vec<String> = vec![text(args[2])];
    terms.extend(args[at..].iter().map(|t| text(t)));
    let refs: Vec<&str> = terms.iter().map(String::as_str).collect();
    let body = strand_engine::search::encode_dict(&text(args[1]), &refs);
    write(ctx, Op::Search { db: ctx.db as u8, tag: search_tag::SYN_UPDATE, body: &body }).map_or_else(|e| e, |()| Reply::Ok)
}

/// [FT.SYNDUMP](https://redis.io/docs/latest/commands/ft.syndump/) index: each word and its groups.
fn syndump(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let Some(ix) = ctx.shard.ks.search(ctx.db).get(&text(args[1])) else { return unknown_index() };
    Reply::Map(
        ix.synonyms
            .dump()
            .map(|(w, groups)| (Reply::bulk(w.as_bytes()), Reply::Array(groups.into_iter().map(|g| Reply::bulk(g.as_bytes())).collect())))
            .collect(),
    )
}

const W: u32 = super::flags::WRITE | super::flags::DENYOOM;
const R: u32 = super::flags::READONLY;
const CAT_W: &[&str] = &["@write", "@search", "@slow"];
const CAT_R: &[&str] = &["@read", "@search", "@slow"];

/// The FT.* index commands.
pub const COMMANDS: &[Command] = &[
    keyless(
        "ft.create",
        -2,
        W,
        Route::All(create, Merge::FirstError),
        CAT_W,
        "Creates an index over hashes with the given prefixes and schema.",
    ),
    keyless("ft.alter", -5, W, Route::All(alter, Merge::FirstError), CAT_W, "Adds fields to an index's schema and re-indexes."),
    keyless("ft.dropindex", -2, W, Route::All(dropindex, Merge::FirstError), CAT_W, "Drops an index, and with DD the documents it holds."),
    keyless("ft._list", 1, R, Route::Local(list), CAT_R, "Returns the names of the indexes."),
    keyless("ft.info", 2, R, Route::All(info, Merge::Custom(merge_info)), CAT_R, "Returns information and statistics on an index."),
    keyless("ft.explain", -3, R, Route::Local(explain), CAT_R, "Returns the execution plan of a query."),
    keyless(
        "ft.synupdate",
        -4,
        W,
        Route::All(synupdate, Merge::FirstError),
        CAT_W,
        "Creates or updates a synonym group with additional terms.",
    ),
    keyless("ft.syndump", 2, R, Route::Local(syndump), CAT_R, "Dumps the contents of a synonym group."),
    keyless("ft.tagvals", 3, R, Route::All(tagvals, Merge::Custom(merge_tagvals)), CAT_R, "Returns the distinct values of a tag field."),
];
