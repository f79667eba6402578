//! Full-text search (RediSearch's FT.* interface over hashes): the options
//! and errors of FT.CREATE, FT.SEARCH and the index commands; BM25 scores
//! checked against a straightforward reference on one shard and on three;
//! and an index that follows updates, deletes, expiry, a SIGKILL and a
//! checkpoint, ending exactly where a fresh index over the same data is.
//! FT.AGGREGATE is in [`aggregate`]; autocomplete, dictionaries and
//! FT.SPELLCHECK in [`suggest`].

#![allow(clippy::unwrap_used)]

mod aggregate;
mod suggest;

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::{Connection, Value};
use strand_tests::commands::{err, q};
use strand_tests::Server;

/// FT.SEARCH ... WITHSCORES NOCONTENT as (key, score) pairs, and the hit count.
fn scored(c: &mut Connection, args: &[&str]) -> (i64, Vec<(String, f64)>) {
    let mut full = args.to_vec();
    full.extend(["WITHSCORES", "NOCONTENT", "LIMIT", "0", "1000"]);
    let v: Vec<Value> = q(c, &full);
    let total = match &v[0] {
        Value::Int(n) => *n,
        other => panic!("{other:?}"),
    };
    let text = |x: &Value| match x {
        Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
        Value::Double(d) => d.to_string(),
        other => panic!("{other:?}"),
    };
    let hits = v[1..].chunks(2).map(|p| (text(&p[0]), text(&p[1]).parse::<f64>().unwrap())).collect();
    (total, hits)
}

fn keys(c: &mut Connection, args: &[&str]) -> (i64, Vec<String>) {
    let (n, hits) = scored(c, args);
    (n, hits.into_iter().map(|(k, _)| k).collect())
}

fn hset(c: &mut Connection, key: &str, fields: &[(&str, &str)]) {
    let mut args = vec!["HSET", key];
    for (f, v) in fields {
        args.extend([*f, *v]);
    }
    let _: i64 = q(c, &args);
}

#[test]
fn create_search_and_index_commands() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let ok: String = q(
        &mut c,
        &[
            "FT.CREATE",
            "idx",
            "ON",
            "HASH",
            "PREFIX",
            "1",
            "doc:",
            "SCHEMA",
            "title",
            "TEXT",
            "WEIGHT",
            "2",
            "body",
            "TEXT",
            "tag",
            "TAG",
            "n",
            "NUMERIC",
            "SORTABLE",
        ],
    );
    assert_eq!(ok, "OK");
    assert_eq!(err(&mut c, &["FT.CREATE", "idx", "SCHEMA", "t", "TEXT"]), "Index already exists");
    assert_eq!(err(&mut c, &["FT.CREATE", "bad", "SCHEMA", "t", "BLOB"]), "Invalid field type for field `t`: BLOB");
    hset(&mut c, "doc:1", &[("title", "Running dogs"), ("body", "the dog runs fast"), ("tag", "Red, blue"), ("n", "5")]);
    hset(&mut c, "doc:2", &[("title", "Cats"), ("body", "a cat sleeps; dogs bark\nloudly"), ("tag", "blue"), ("n", "10")]);
    hset(&mut c, "doc:3", &[("title", "Birds"), ("body", "sing at dawn"), ("tag", "green"), ("n", "-1")]);
    hset(&mut c, "other:1", &[("title", "dogs")]);

    // Stems, AND, OR, NOT, phrases, prefixes, fuzzy, fields, tags, numbers.
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "dog"]).0, 2);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "dog", "VERBATIM"]).1, ["doc:1"]);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "dog cat"]).1, ["doc:2"]);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "cat | birds"]).0, 2);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "dog -cat"]).1, ["doc:1"]);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "\"dog runs\""]).1, ["doc:1"]);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "\"runs dog\""]).0, 0);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "bark loudly"]).1, ["doc:2"], "newlines separate words");
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "sle*"]).1, ["doc:2"]);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "%bird%"]).1, ["doc:3"]);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "@title:dogs"]).1, ["doc:1"]);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "dogs", "INFIELDS", "1", "title"]).1, ["doc:1"]);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "@tag:{blue}", "SORTBY", "n", "DESC"]).1, ["doc:2", "doc:1"]);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "@tag:{red | green}", "SORTBY", "n"]).1, ["doc:3", "doc:1"]);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "@n:[(5 +inf]"]).1, ["doc:2"]);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "*", "FILTER", "n", "-inf", "5", "SORTBY", "n"]).1, ["doc:3", "doc:1"]);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "$w", "PARAMS", "2", "w", "birds", "DIALECT", "2"]).1, ["doc:3"]);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "dog runs", "SLOP", "0", "INORDER"]).1, ["doc:1"]);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "the"]).0, 0, "stop-words match nothing");

    // Reply shapes: fields, RETURN with AS, LIMIT.
    let v: Vec<Value> = q(&mut c, &["FT.SEARCH", "idx", "birds", "RETURN", "3", "title", "AS", "t"]);
    assert_eq!(
        v,
        [
            Value::Int(1),
            Value::BulkString(b"doc:3".to_vec()),
            Value::Array(vec![Value::BulkString(b"t".to_vec()), Value::BulkString(b"Birds".to_vec())])
        ]
    );
    let v: Vec<Value> = q(&mut c, &["FT.SEARCH", "idx", "*", "NOCONTENT", "SORTBY", "n", "LIMIT", "1", "1"]);
    assert_eq!(v, [Value::Int(3), Value::BulkString(b"doc:1".to_vec())]);
    let v: Vec<Value> = q(&mut c, &["FT.SEARCH", "idx", "*", "LIMIT", "0", "0"]);
    assert_eq!(v, [Value::Int(3)]);

    // Errors.
    assert_eq!(err(&mut c, &["FT.SEARCH", "nope", "x"]), "nope: no such index");
    assert!(err(&mut c, &["FT.SEARCH", "idx", "dog("]).starts_with("Syntax error at offset"));
    assert_eq!(err(&mut c, &["FT.SEARCH", "idx", "@nope:x"]), "Unknown field `nope`");
    assert_eq!(err(&mut c, &["FT.SEARCH", "idx", "x", "SCORER", "NOPE"]), "Scoring function does not exist");
    assert_eq!(err(&mut c, &["FT.SEARCH", "idx", "x", "BOGUS"]), "Unknown argument `BOGUS`");
    assert_eq!(err(&mut c, &["FT.INFO", "nope"]), "Unknown index name");

    // A numeric field that is not a number leaves the document out, counted.
    hset(&mut c, "doc:4", &[("title", "dogs"), ("n", "many")]);
    let info: HashMap<String, Value> = info(&mut c, "idx");
    assert_eq!(info["num_docs"], Value::Int(3));
    assert_eq!(info["hash_indexing_failures"], Value::Int(1));
    let memory: String = q(&mut c, &["INFO", "memory"]);
    let search_bytes: u64 = memory.lines().find_map(|l| l.strip_prefix("used_memory_search:")).unwrap().trim().parse().unwrap();
    assert!(search_bytes > 0, "{memory}");

    // Index commands.
    let names: Vec<String> = q(&mut c, &["FT._LIST"]);
    assert_eq!(names, ["idx"]);
    let tags: Vec<String> = q(&mut c, &["FT.TAGVALS", "idx", "tag"]);
    assert_eq!(tags, ["blue", "green", "red"]);
    let plan: String = q(&mut c, &["FT.EXPLAIN", "idx", "dog -cat"]);
    assert!(plan.starts_with("INTERSECT {"), "{plan}");
    let _: String = q(&mut c, &["FT.ALTER", "idx", "SCHEMA", "ADD", "extra", "TEXT"]);
    hset(&mut c, "doc:5", &[("extra", "zebra")]);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "idx", "@extra:zebra"]).1, ["doc:5"]);
    let _: String = q(&mut c, &["FT.DROPINDEX", "idx", "DD"]);
    let n: i64 = q(&mut c, &["EXISTS", "doc:1", "doc:2", "doc:3", "other:1"]);
    assert_eq!(n, 1, "DD deleted the indexed documents only");
    assert_eq!(err(&mut c, &["FT.SEARCH", "idx", "dog"]), "idx: no such index");
}

fn info(c: &mut Connection, idx: &str) -> HashMap<String, Value> {
    let v: Vec<Value> = q(c, &["FT.INFO", idx]);
    v.chunks(2)
        .map(|p| match &p[0] {
            Value::BulkString(k) => (String::from_utf8(k.clone()).unwrap(), p[1].clone()),
            other => panic!("{other:?}"),
        })
        .collect()
}

const WORDS: &[&str] = &["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"];

/// A straightforward BM25 (RediSearch BM25STD's constants) over token lists.
fn reference(docs: &[(String, Vec<&str>)], query: &[&str]) -> Vec<(String, f64)> {
    let n = docs.len() as f64;
    let avg = docs.iter().map(|(_, t)| t.len()).sum::<usize>() as f64 / n;
    let mut out = Vec::new();
    for (key, toks) in docs {
        if !query.iter().all(|w| toks.contains(w)) {
            continue;
        }
        let mut score = 0.0;
        for w in query {
            let df = docs.iter().filter(|(_, t)| t.contains(w)).count() as f64;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            let f = toks.iter().filter(|t| *t == w).count() as f64;
            score += idf * f * 2.2 / (f + 1.2 * (0.5 + 0.5 * toks.len() as f64 / avg));
        }
        out.push((key.clone(), score));
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

#[test]
fn bm25_scores_match_a_reference_on_one_shard_and_on_three() {
    let mut rng = StdRng::seed_from_u64(7);
    let docs: Vec<(String, Vec<&str>)> = (0..300)
        .map(|i| {
            let len = rng.gen_range(1..30);
            (format!("d:{i}"), (0..len).map(|_| WORDS[rng.gen_range(0..WORDS.len().min(3 + i % WORDS.len()))]).collect())
        })
        .collect();
    for shards in ["1", "3"] {
        let s = Server::start(&["--shards", shards]);
        let mut c = s.client();
        let _: String = q(&mut c, &["FT.CREATE", "i", "PREFIX", "1", "d:", "SCHEMA", "body", "TEXT", "NOSTEM"]);
        for (k, toks) in &docs {
            hset(&mut c, k, &[("body", &toks.join(" "))]);
        }
        for query in [&["alpha"][..], &["golf"], &["bravo", "delta"], &["alpha", "charlie", "echo"], &["lima"]] {
            let want = reference(&docs, query);
            let (total, got) = scored(&mut c, &["FT.SEARCH", "i", &query.join(" "), "VERBATIM"]);
            assert_eq!(total as usize, want.len(), "{shards} shards, {query:?}");
            for ((gk, gs), (wk, ws)) in got.iter().zip(&want) {
                assert!((gs - ws).abs() < 1e-6, "{shards} shards, {query:?}: {gk} {gs} vs {wk} {ws}");
                assert_eq!(gk, wk, "{shards} shards, {query:?}");
            }
        }
    }
}

/// Every answer of a fixed query set, with scores rounded to 1e-9.
fn answers(c: &mut Connection) -> Vec<(i64, Vec<(String, String)>)> {
    ["w1", "w2 w3", "w4 | w5", "-w6", "@t:{t1}", "@n:[10 50]", "*"]
        .iter()
        .map(|query| {
            let (n, hits) = scored(c, &["FT.SEARCH", "i", query]);
            (n, hits.into_iter().map(|(k, s)| (k, format!("{s:.9}"))).collect())
        })
        .collect()
}

const SCHEMA: &[&str] = &["FT.CREATE", "i", "PREFIX", "1", "k:", "SCHEMA", "body", "TEXT", "t", "TAG", "n", "NUMERIC", "SORTABLE"];

#[test]
fn the_index_follows_writes_expiry_crashes_and_checkpoints() {
    let mut rng = StdRng::seed_from_u64(11);
    // fsync always: a SIGKILL must not take back what was acknowledged.
    let mut s = Server::start(&["--shards", "2", "--appendfsync", "always"]);
    let mut c = s.client();
    let _: String = q(&mut c, SCHEMA);
    let mut model: HashMap<String, HashMap<String, String>> = HashMap::new();
    for round in 0..600 {
        let key = format!("k:{}", rng.gen_range(0..150));
        match rng.gen_range(0..10) {
            0 => {
                let _: i64 = q(&mut c, &["DEL", &key]);
                model.remove(&key);
            }
            1 => {
                let _: i64 = q(&mut c, &["HDEL", &key, "body"]);
                if let Some(h) = model.get_mut(&key) {
                    h.remove("body");
                    if h.is_empty() {
                        model.remove(&key);
                    }
                }
            }
            _ => {
                let body: Vec<String> = (0..rng.gen_range(1..8)).map(|_| format!("w{}", rng.gen_range(0..12))).collect();
                let (body, tag, n) = (body.join(" "), format!("t{}", rng.gen_range(0..4)), rng.gen_range(0..100).to_string());
                hset(&mut c, &key, &[("body", &body), ("t", &tag), ("n", &n)]);
                let h = model.entry(key).or_default();
                h.insert("body".into(), body);
                h.insert("t".into(), tag);
                h.insert("n".into(), n);
            }
        }
        if round == 300 {
            let _: String = q(&mut c, &["SAVE"]);
        }
    }
    // Keys that expire leave the index.
    for k in ["k:1", "k:2", "k:3"] {
        let _: i64 = q(&mut c, &["PEXPIRE", k, "1"]);
        model.remove(k);
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    for k in ["k:1", "k:2", "k:3"] {
        let _: i64 = q(&mut c, &["EXISTS", k]);
    }
    let live = answers(&mut c);

    // A crash: the log replayed over the checkpoint.
    s.kill();
    s.restart();
    let mut c = s.client();
    assert_eq!(answers(&mut c), live, "after SIGKILL and replay");
    // A checkpoint of the final state, then a crash.
    let _: String = q(&mut c, &["SAVE"]);
    s.kill();
    s.restart();
    let mut c = s.client();
    assert_eq!(answers(&mut c), live, "after SAVE and SIGKILL");

    // A fresh index over the same data answers the same.
    let fresh = Server::start(&["--shards", "3"]);
    let mut f = fresh.client();
    for (k, h) in &model {
        let fields: Vec<(&str, &str)> = h.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        hset(&mut f, k, &fields);
    }
    let _: String = q(&mut f, SCHEMA);
    assert_eq!(answers(&mut f), live, "a fresh index over the same data, on three shards");
}

#[test]
fn an_index_over_existing_keys_is_built_in_the_background() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.client();
    let mut pipe = redis::pipe();
    for i in 0..12_000 {
        pipe.cmd("HSET").arg(format!("p:{i}")).arg("body").arg(if i % 3 == 0 { "fizz common" } else { "common" }).ignore();
    }
    let () = pipe.query(&mut c).unwrap();
    let _: String = q(&mut c, &["FT.CREATE", "i", "PREFIX", "1", "p:", "SCHEMA", "body", "TEXT"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let info = info(&mut c, "i");
        if info["indexing"] == Value::Int(0) {
            assert_eq!(info["percent_indexed"], Value::BulkString(b"1".to_vec()));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still indexing: {info:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(keys(&mut c, &["FT.SEARCH", "i", "fizz"]).0, 4_000);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "i", "common"]).0, 12_000);
}

/// Under updates, dead postings and ids are cleaned in the background:
/// FT.INFO shows `cleaning` until it is done, the ids are renumbered, and
/// the index answers exactly as one built afresh over the same keys.
#[test]
fn the_background_cleaner_renumbers_ids_under_updates() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.client();
    let _: String = q(&mut c, SCHEMA);
    let mut rng = StdRng::seed_from_u64(5);
    let (keys_n, rounds) = (400, 8);
    for _ in 0..rounds {
        let mut pipe = redis::pipe();
        for k in 0..keys_n {
            let body: Vec<String> = (0..rng.gen_range(1..8)).map(|_| format!("w{}", rng.gen_range(0..12))).collect();
            let (tag, n) = (format!("t{}", rng.gen_range(0..4)), rng.gen_range(0..100).to_string());
            pipe.cmd("HSET").arg(format!("k:{k}")).arg("body").arg(body.join(" ")).arg("t").arg(tag).arg("n").arg(n).ignore();
        }
        let () = pipe.query(&mut c).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let done = loop {
        let now = info(&mut c, "i");
        if now["cleaning"] == Value::Int(0) {
            break now;
        }
        assert!(std::time::Instant::now() < deadline, "still cleaning: {now:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(done["num_docs"], Value::Int(keys_n));
    // 3,200 ids were given; renumbering leaves at most twice the live ones plus the threshold per shard.
    let Value::Int(ids) = done["max_doc_id"] else { panic!("{done:?}") };
    assert!(ids < rounds * keys_n / 2, "ids were not renumbered: {ids}");
    // A second index over the same keys, built afresh by the background scan.
    let mut fresh: Vec<&str> = SCHEMA.to_vec();
    fresh[1] = "j";
    let _: String = q(&mut c, &fresh);
    while info(&mut c, "j")["indexing"] != Value::Int(0) {
        assert!(std::time::Instant::now() < deadline, "still indexing");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for query in ["w1", "w2 w3", "w4 | w5", "-w6", "@t:{t1}", "@n:[10 50]", "*"] {
        assert_eq!(scored(&mut c, &["FT.SEARCH", "i", query]), scored(&mut c, &["FT.SEARCH", "j", query]), "{query}");
    }
}

/// INFO's `used_memory` (what maxmemory budgets) counts the search
/// indexes: defining one adds exactly `used_memory_search`, dropping it
/// takes it back.
#[test]
fn search_indexes_count_in_used_memory() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.client();
    let mut pipe = redis::pipe();
    for i in 0..2_000 {
        pipe.cmd("HSET").arg(format!("k:{i}")).arg("body").arg(format!("w{} w{} common", i % 7, i % 13)).arg("n").arg(i).ignore();
    }
    let () = pipe.query(&mut c).unwrap();
    let memory = |c: &mut Connection| {
        let text: String = q(c, &["INFO", "memory"]);
        let field =
            |name: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).and_then(|v| v.trim().parse::<i64>().ok()).unwrap();
        (field("used_memory"), field("used_memory_search"))
    };
    let (before, none) = memory(&mut c);
    assert_eq!(none, 0);
    let _: String = q(&mut c, SCHEMA);
    while info(&mut c, "i")["indexing"] != Value::Int(0) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let (after, search) = memory(&mut c);
    assert!(search > 100_000, "an index over 2,000 documents takes {search} bytes?");
    assert_eq!(after - before, search, "used_memory grew by the index");
    let _: String = q(&mut c, &["FT.DROPINDEX", "i"]);
    assert_eq!(memory(&mut c), (before, 0), "and shrinks back when it is dropped");
}

#[test]
fn highlight_and_summarize_mark_what_the_query_matched() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: String = q(&mut c, &["FT.CREATE", "i", "PREFIX", "1", "d:", "SCHEMA", "title", "TEXT", "body", "TEXT"]);
    let body = "one two three four five six seven eight nine running ten eleven twelve thirteen fourteen fifteen sixteen runs seventeen";
    hset(&mut c, "d:1", &[("title", "Running fast"), ("body", body)]);
    let v: Vec<Value> = q(&mut c, &["FT.SEARCH", "i", "run", "HIGHLIGHT", "FIELDS", "1", "title", "TAGS", "[", "]"]);
    let fields = match &v[2] {
        Value::Array(f) => f.clone(),
        other => panic!("{other:?}"),
    };
    let title = fields.chunks(2).find(|p| p[0] == Value::BulkString(b"title".to_vec())).map(|p| p[1].clone());
    assert_eq!(title, Some(Value::BulkString(b"[Running] fast".to_vec())));
    let v: Vec<Value> =
        q(&mut c, &["FT.SEARCH", "i", "run", "RETURN", "1", "body", "SUMMARIZE", "FIELDS", "1", "body", "FRAGS", "2", "LEN", "3"]);
    assert_eq!(
        v[2],
        Value::Array(vec![
            Value::BulkString(b"body".to_vec()),
            Value::BulkString(b"nine running ten... sixteen runs seventeen... ".to_vec())
        ])
    );
}

#[test]
fn synonyms_expand_queries_and_survive_restarts() {
    let mut s = Server::start(&["--appendfsync", "always"]);
    let mut c = s.client();
    let _: String = q(&mut c, &["FT.CREATE", "i", "PREFIX", "1", "d:", "SCHEMA", "body", "TEXT"]);
    hset(&mut c, "d:1", &[("body", "a fast car")]);
    hset(&mut c, "d:2", &[("body", "an automobile for sale")]);
    hset(&mut c, "d:3", &[("body", "vehicles everywhere")]);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "i", "car"]).1, ["d:1"]);
    let _: String = q(&mut c, &["FT.SYNUPDATE", "i", "g1", "car", "Automobile"]);
    let _: String = q(&mut c, &["FT.SYNUPDATE", "i", "g2", "SKIPINITIALSCAN", "car", "vehicle"]);
    let check = |c: &mut Connection| {
        let mut found = keys(c, &["FT.SEARCH", "i", "car"]).1;
        found.sort();
        assert_eq!(found, ["d:1", "d:2", "d:3"], "vehicle matches vehicles by its stem");
        let mut auto = keys(c, &["FT.SEARCH", "i", "automobile"]).1;
        auto.sort();
        assert_eq!(auto, ["d:1", "d:2"], "group g1 only: vehicle is not a synonym of automobile");
        assert_eq!(keys(c, &["FT.SEARCH", "i", "automobile", "VERBATIM"]).1, ["d:2"]);
        let dump: Vec<Value> = q(c, &["FT.SYNDUMP", "i"]);
        assert_eq!(dump.len(), 6, "{dump:?}");
        assert_eq!(dump[0], Value::BulkString(b"automobile".to_vec()));
        assert_eq!(dump[3], Value::Array(vec![Value::BulkString(b"g1".to_vec()), Value::BulkString(b"g2".to_vec())]));
    };
    check(&mut c);
    s.kill();
    s.restart();
    let mut c = s.client();
    check(&mut c);
    let _: String = q(&mut c, &["SAVE"]);
    s.kill();
    s.restart();
    let mut c = s.client();
    check(&mut c);
    assert_eq!(err(&mut c, &["FT.SYNUPDATE", "nope", "g", "x"]), "Unknown index name");
}

#[test]
fn evicted_documents_leave_the_index() {
    let s = Server::start(&["--shards", "1", "--persistence", "off", "--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut c = s.client();
    let _: String = q(&mut c, &["FT.CREATE", "i", "PREFIX", "1", "d:", "SCHEMA", "body", "TEXT"]);
    let filler = "x".repeat(400);
    for i in 0..8_000 {
        hset(&mut c, &format!("d:{i}"), &[("body", &format!("common word{i} {filler}"))]);
    }
    let stats: String = q(&mut c, &["INFO", "stats"]);
    let evicted: u64 = stats.lines().find_map(|l| l.strip_prefix("evicted_keys:")).unwrap().trim().parse().unwrap();
    assert!(evicted > 1_000, "{evicted} keys evicted");
    let size: i64 = q(&mut c, &["DBSIZE"]);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "i", "common"]).0, size);
    assert_eq!(keys(&mut c, &["FT.SEARCH", "i", "word0"]).0, 0, "the oldest document was evicted");
}
