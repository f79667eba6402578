//! FT.AGGREGATE: GROUPBY with every reducer, SORTBY with MAX, APPLY and
//! FILTER expressions, LIMIT and LOAD, RediSearch 2.10's reply shapes in
//! RESP2 and RESP3, the same answers on one shard and on three, and errors.

use std::collections::HashMap;

use redis::{Connection, Value};
use strand_tests::commands::{err, q};
use strand_tests::raw::Raw;
use strand_tests::Server;

use super::hset;

/// The products index with six documents.
fn setup(shards: &str) -> (Server, Connection) {
    let s = Server::start(&["--shards", shards]);
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
            "p:",
            "SCHEMA",
            "title",
            "TEXT",
            "brand",
            "TAG",
            "color",
            "TAG",
            "price",
            "NUMERIC",
        ],
    );
    assert_eq!(ok, "OK");
    for (k, title, brand, color, price) in [
        ("p:1", "red shoe", "acme", "red", "10"),
        ("p:2", "blue shoe", "acme", "blue", "20"),
        ("p:3", "red hat", "acme", "red", "30"),
        ("p:4", "green sock", "zeta", "green", "5"),
        ("p:5", "red sock", "zeta", "red", "15"),
        ("p:6", "blue hat", "omni", "blue", "7.5"),
    ] {
        hset(&mut c, k, &[("title", title), ("brand", brand), ("color", color), ("price", price)]);
    }
    (s, c)
}

fn s(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
        Value::SimpleString(t) => t.clone(),
        Value::Nil => "(nil)".into(),
        Value::Array(items) => format!("[{}]", items.iter().map(s).collect::<Vec<_>>().join(",")),
        other => panic!("{other:?}"),
    }
}

/// An FT.AGGREGATE answer: the count and each row as (name, value) pairs.
fn agg(c: &mut Connection, args: &[&str]) -> (i64, Vec<Vec<(String, String)>>) {
    let mut full = vec!["FT.AGGREGATE"];
    full.extend(args);
    let v: Vec<Value> = q(c, &full);
    let Value::Int(total) = v[0] else { panic!("{v:?}") };
    let rows = v[1..]
        .iter()
        .map(|r| match r {
            Value::Array(kv) => kv.chunks(2).map(|p| (s(&p[0]), s(&p[1]))).collect(),
            other => panic!("{other:?}"),
        })
        .collect();
    (total, rows)
}

fn maps(rows: &[Vec<(String, String)>]) -> Vec<HashMap<String, String>> {
    rows.iter().map(|r| r.iter().cloned().collect()).collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn groupby_reducers_sortby_apply_filter_limit_load() {
    let (_s, mut c) = setup("1");

    // GROUPBY + COUNT, sorted; the count is the number of groups.
    let (n, rows) = agg(&mut c, &["idx", "*", "GROUPBY", "1", "@brand", "REDUCE", "COUNT", "0", "AS", "n", "SORTBY", "2", "@n", "DESC"]);
    assert_eq!(n, 3);
    assert_eq!(
        rows,
        vec![pairs(&[("brand", "acme"), ("n", "3")]), pairs(&[("brand", "zeta"), ("n", "2")]), pairs(&[("brand", "omni"), ("n", "1")])]
    );
    // RediSearch's generated names.
    let (_, rows) =
        agg(&mut c, &["idx", "@brand:{omni}", "GROUPBY", "1", "@brand", "REDUCE", "COUNT", "0", "REDUCE", "SUM", "1", "@price"]);
    assert_eq!(rows, vec![pairs(&[("brand", "omni"), ("__generated_aliascount", "1"), ("__generated_aliassumprice", "7.5")])]);

    // SUM, AVG, MIN, MAX, STDDEV, COUNT_DISTINCT, QUANTILE, FIRST_VALUE.
    let (n, rows) = agg(
        &mut c,
        &[
            "idx",
            "*",
            "GROUPBY",
            "1",
            "@brand",
            "REDUCE",
            "SUM",
            "1",
            "@price",
            "AS",
            "sum",
            "REDUCE",
            "AVG",
            "1",
            "@price",
            "AS",
            "avg",
            "REDUCE",
            "MIN",
            "1",
            "@price",
            "AS",
            "min",
            "REDUCE",
            "MAX",
            "1",
            "@price",
            "AS",
            "max",
            "REDUCE",
            "STDDEV",
            "1",
            "@price",
            "AS",
            "sd",
            "REDUCE",
            "COUNT_DISTINCT",
            "1",
            "@color",
            "AS",
            "colors",
            "REDUCE",
            "QUANTILE",
            "2",
            "@price",
            "0.5",
            "AS",
            "median",
            "REDUCE",
            "FIRST_VALUE",
            "4",
            "@title",
            "BY",
            "@price",
            "DESC",
            "AS",
            "priciest",
            "SORTBY",
            "2",
            "@brand",
            "ASC",
        ],
    );
    assert_eq!(n, 3);
    let m = maps(&rows);
    let want = [
        ("acme", "60", "20", "10", "30", "10", "2", "20", "red hat"),
        ("omni", "7.5", "7.5", "7.5", "7.5", "0", "1", "7.5", "blue hat"),
        ("zeta", "20", "10", "5", "15", "7.0710678118654755", "2", "5", "red sock"),
    ];
    for (row, (brand, sum, avg, min, max, sd, colors, median, priciest)) in m.iter().zip(want) {
        assert_eq!(row["brand"], brand);
        assert_eq!((&*row["sum"], &*row["avg"], &*row["min"], &*row["max"]), (sum, avg, min, max), "{brand}");
        assert_eq!((&*row["sd"], &*row["colors"], &*row["median"], &*row["priciest"]), (sd, colors, median, priciest), "{brand}");
    }

    // TOLIST: each distinct value once.
    let (_, rows) = agg(
        &mut c,
        &["idx", "*", "GROUPBY", "1", "@color", "REDUCE", "TOLIST", "1", "@brand", "AS", "brands", "SORTBY", "2", "@color", "ASC"],
    );
    let lists: Vec<(String, String)> = rows.iter().map(|r| (r[0].1.clone(), r[1].1.clone())).collect();
    assert_eq!(lists, pairs(&[("blue", "[acme,omni]"), ("green", "[zeta]"), ("red", "[acme,zeta]")]));

    // Without GROUPBY the count is the number of matches; SORTBY ... MAX.
    let (n, rows) = agg(&mut c, &["idx", "*", "LOAD", "1", "@price", "SORTBY", "2", "@price", "DESC", "MAX", "2"]);
    assert_eq!((n, rows), (6, vec![pairs(&[("price", "30")]), pairs(&[("price", "20")])]));

    // APPLY: arithmetic and string functions.
    let (_, rows) = agg(
        &mut c,
        &[
            "idx",
            "hat",
            "LOAD",
            "2",
            "@title",
            "@price",
            "APPLY",
            "@price * 2 + 1",
            "AS",
            "x",
            "APPLY",
            "upper(substr(@title, 0, 3))",
            "AS",
            "t",
            "APPLY",
            "strlen(@title) % 4",
            "AS",
            "l",
            "APPLY",
            "floor(@price / 4)",
            "AS",
            "f",
            "SORTBY",
            "2",
            "@x",
            "ASC",
        ],
    );
    let want = vec![
        pairs(&[("title", "blue hat"), ("price", "7.5"), ("x", "16"), ("t", "BLU"), ("l", "0"), ("f", "1")]),
        pairs(&[("title", "red hat"), ("price", "30"), ("x", "61"), ("t", "RED"), ("l", "3"), ("f", "7")]),
    ];
    assert_eq!(rows, want);

    // FILTER, before and after GROUPBY.
    let (n, rows) =
        agg(&mut c, &["idx", "*", "LOAD", "1", "@price", "FILTER", "@price >= 10 && @price < 30", "SORTBY", "2", "@price", "ASC"]);
    assert_eq!((n, rows), (3, vec![pairs(&[("price", "10")]), pairs(&[("price", "15")]), pairs(&[("price", "20")])]));
    let (_, rows) =
        agg(&mut c, &["idx", "*", "GROUPBY", "1", "@brand", "REDUCE", "COUNT", "0", "AS", "n", "FILTER", "@n > 1 && @brand != \"zeta\""]);
    assert_eq!(rows, vec![pairs(&[("brand", "acme"), ("n", "3")])]);

    // LIMIT pages after the sort; the count stays the number of groups.
    let (n, rows) = agg(&mut c, &["idx", "*", "GROUPBY", "1", "@brand", "SORTBY", "2", "@brand", "ASC", "LIMIT", "1", "1"]);
    assert_eq!((n, rows), (3, vec![pairs(&[("brand", "omni")])]));

    // LOAD: missing fields left out, AS renames; no LOAD gives empty rows.
    hset(&mut c, "p:7", &[("title", "odd thing"), ("extra", "yes")]);
    let (n, rows) = agg(&mut c, &["idx", "thing", "LOAD", "4", "@title", "AS", "name", "@brand"]);
    assert_eq!((n, rows), (1, vec![pairs(&[("name", "odd thing")])]));
    let (n, rows) = agg(&mut c, &["idx", "thing", "LOAD", "*"]);
    assert_eq!((n, maps(&rows)), (1, maps(&[pairs(&[("title", "odd thing"), ("extra", "yes")])])));
    let (n, rows) = agg(&mut c, &["idx", "shoe"]);
    assert_eq!((n, rows), (2, vec![vec![], vec![]]));
    let (_, rows) = agg(&mut c, &["idx", "thing", "LOAD", "1", "@__key"]);
    assert_eq!(rows, vec![pairs(&[("__key", "p:7")])]);
}

#[test]
fn resp3_reply_shape() {
    let (s, _c) = setup("1");
    let mut r = Raw::resp3(&s);
    let out = r.cmd(&["FT.AGGREGATE", "idx", "@brand:{omni}", "GROUPBY", "1", "@brand", "REDUCE", "COUNT", "0", "AS", "n"]);
    let want = "%5\r\n$10\r\nattributes\r\n*0\r\n$6\r\nformat\r\n$6\r\nSTRING\r\n$7\r\nresults\r\n*1\r\n%2\r\n$16\r\nextra_attributes\r\n%2\r\n\
                $5\r\nbrand\r\n$4\r\nomni\r\n$1\r\nn\r\n$1\r\n1\r\n$6\r\nvalues\r\n*0\r\n$13\r\ntotal_results\r\n:1\r\n$7\r\nwarning\r\n*0\r\n";
    assert_eq!(out, want);
}

#[test]
fn three_shards_answer_like_one() {
    let queries: &[&[&str]] = &[
        &[
            "idx", "*", "GROUPBY", "1", "@brand", "REDUCE", "COUNT", "0", "AS", "n", "REDUCE", "SUM", "1", "@price", "SORTBY", "2",
            "@brand", "ASC",
        ],
        &["idx", "*", "GROUPBY", "2", "@brand", "@color", "REDUCE", "TOLIST", "1", "@title", "REDUCE", "RANDOM_SAMPLE", "2", "@price", "2"],
        &[
            "idx",
            "red|blue",
            "LOAD",
            "2",
            "@title",
            "@price",
            "APPLY",
            "@price / 3",
            "AS",
            "third",
            "SORTBY",
            "4",
            "@third",
            "DESC",
            "@title",
            "ASC",
            "LIMIT",
            "2",
            "20",
        ],
        &[
            "idx",
            "*",
            "LOAD",
            "1",
            "@price",
            "FILTER",
            "@price > 40",
            "GROUPBY",
            "1",
            "@color",
            "REDUCE",
            "AVG",
            "1",
            "@price",
            "AS",
            "a",
            "SORTBY",
            "2",
            "@a",
            "ASC",
        ],
    ];
    let mut answers: Vec<Vec<Value>> = Vec::new();
    for shards in ["1", "3"] {
        let s = Server::start(&["--shards", shards]);
        let mut c = s.client();
        let ok: String = q(
            &mut c,
            &["FT.CREATE", "idx", "PREFIX", "1", "d:", "SCHEMA", "title", "TEXT", "brand", "TAG", "color", "TAG", "price", "NUMERIC"],
        );
        assert_eq!(ok, "OK");
        let colors = ["red", "blue", "green", "black"];
        for i in 0..90 {
            let title = format!("{} item {i}", colors[i % 4]);
            let (brand, price) = (format!("b{}", i % 7), format!("{}", (i * 37) % 101));
            hset(&mut c, &format!("d:{i}"), &[("title", &title), ("brand", &brand), ("color", colors[i % 4]), ("price", &price)]);
        }
        let got: Vec<Value> = queries.iter().map(|qy| q(&mut c, &[&["FT.AGGREGATE"][..], qy].concat())).collect();
        answers.push(got);
    }
    for a in &answers[0] {
        let Value::Array(v) = a else { panic!("{a:?}") };
        assert!(v.len() > 2, "{a:?}");
    }
    assert_eq!(answers[0], answers[1]);
}

#[test]
fn errors() {
    let (_s, mut c) = setup("3");
    assert_eq!(err(&mut c, &["FT.AGGREGATE", "nope", "*"]), "nope: no such index");
    assert_eq!(
        err(&mut c, &["FT.AGGREGATE", "idx", "*", "GROUPBY", "1", "@brand", "REDUCE", "MEDIAN", "1", "@price"]),
        "No such reducer: MEDIAN"
    );
    assert_eq!(err(&mut c, &["FT.AGGREGATE", "idx", "*", "APPLY", "nope(@price)", "AS", "x"]), "Unknown function name 'nope'");
    let e = err(&mut c, &["FT.AGGREGATE", "idx", "*", "APPLY", "@price +", "AS", "x"]);
    assert!(e.starts_with("Syntax error"), "{e}");
    let e = err(&mut c, &["FT.AGGREGATE", "idx", "*", "FILTER", "(@price > 1"]);
    assert!(e.starts_with("Syntax error"), "{e}");
    assert_eq!(err(&mut c, &["FT.AGGREGATE", "idx", "*", "GROUPBY", "1", "@nope"]), "Property `nope` not loaded nor in schema");
    assert_eq!(
        err(&mut c, &["FT.AGGREGATE", "idx", "*", "GROUPBY", "1", "@brand", "SORTBY", "2", "@price", "ASC"]),
        "Property `price` not loaded nor in schema"
    );
    assert_eq!(err(&mut c, &["FT.AGGREGATE", "idx", "*", "WITHCURSOR"]), "WITHCURSOR is not supported yet");
    assert_eq!(err(&mut c, &["FT.CURSOR", "READ", "idx", "1"]), "WITHCURSOR is not supported yet");
    assert_eq!(err(&mut c, &["FT.AGGREGATE", "idx", "*", "GROUPBY", "x"]), "Bad arguments for GROUPBY: Expected an argument");
    assert_eq!(err(&mut c, &["FT.AGGREGATE", "idx", "*", "BOGUS"]), "Unknown argument `BOGUS`");
}
