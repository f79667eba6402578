//! Hash commands, checked against what redis-server 7.0.15 answers (replies,
//! error lines, RESP2 and RESP3 shapes): HSET, HSETNX, HGET, HMGET, HMSET,
//! HGETALL, HDEL, HEXISTS, HLEN, HKEYS, HVALS, HINCRBY, HINCRBYFLOAT, HSTRLEN,
//! HRANDFIELD, HSCAN; wrong types, arity, and what survives a restart or a SIGKILL.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::{Connection, Value};
use strand_tests::commands::{cmd, err, q, start};
use strand_tests::{data_dir, Server};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const NOT_FLOAT: &str = "ERR value is not a valid float";
const SYNTAX: &str = "ERR syntax error";

fn hgetall(c: &mut Connection, key: &str) -> BTreeMap<String, String> {
    q(c, &["HGETALL", key])
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(f, v)| (f.to_string(), v.to_string())).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn exists(c: &mut Connection, key: &str) -> bool {
    q::<i64>(c, &["EXISTS", key]) == 1
}

fn hello3(c: &mut Connection) {
    let reply: Value = redis::cmd("HELLO").arg(3).query(c).unwrap();
    assert!(matches!(reply, Value::Map(_)), "HELLO 3 answered {reply:?}");
}

/// Keys holding every type but a hash: a string, a set, a list and a sorted set.
fn not_hashes(c: &mut Connection) -> Vec<&'static str> {
    q::<()>(c, &["SET", "str", "x"]);
    q::<()>(c, &["SADD", "set", "m"]);
    q::<()>(c, &["RPUSH", "list", "e"]);
    q::<()>(c, &["ZADD", "zset", "1", "m"]);
    vec!["str", "set", "list", "zset"]
}

// ---------------------------------------------------------------- HSET, HGET, HMSET, HSETNX

#[test]
fn hset_counts_new_fields_and_overwrites() {
    let (_s, mut c) = start();
    assert_eq!(q::<i64>(&mut c, &["HSET", "h", "a", "1"]), 1);
    assert_eq!(q::<i64>(&mut c, &["HSET", "h", "a", "2", "b", "3"]), 1);
    // A field named twice is new once; the last value wins.
    assert_eq!(q::<i64>(&mut c, &["HSET", "h", "c", "x", "c", "y", "a", "9"]), 1);
    assert_eq!(hgetall(&mut c, "h"), map(&[("a", "9"), ("b", "3"), ("c", "y")]));
    assert_eq!(q::<i64>(&mut c, &["HSET", "h", "a", "9"]), 0);
    assert_eq!(q::<Option<String>>(&mut c, &["HGET", "h", "a"]).as_deref(), Some("9"));
    assert_eq!(q::<Option<String>>(&mut c, &["HGET", "h", "nope"]), None);
    assert_eq!(q::<Option<String>>(&mut c, &["HGET", "nope", "a"]), None);
    assert_eq!(q::<String>(&mut c, &["TYPE", "h"]), "hash");
    // Empty field and value are fine; names are case-insensitive.
    assert_eq!(q::<i64>(&mut c, &["hSeT", "h", "", ""]), 1);
    assert_eq!(q::<Option<String>>(&mut c, &["HGET", "h", ""]).as_deref(), Some(""));
}

#[test]
fn hset_and_hmset_need_pairs() {
    let (_s, mut c) = start();
    assert_eq!(err(&mut c, &["HSET", "h", "a", "1", "b"]), "ERR wrong number of arguments for 'hset' command");
    assert_eq!(err(&mut c, &["HMSET", "h", "a", "1", "b"]), "ERR wrong number of arguments for 'hmset' command");
    assert!(!exists(&mut c, "h"));
    assert_eq!(q::<String>(&mut c, &["HMSET", "h", "a", "1", "b", "2"]), "OK");
    assert_eq!(q::<String>(&mut c, &["HMSET", "h", "a", "3"]), "OK");
    assert_eq!(hgetall(&mut c, "h"), map(&[("a", "3"), ("b", "2")]));
}

#[test]
fn hsetnx_sets_only_new_fields() {
    let (_s, mut c) = start();
    assert_eq!(q::<i64>(&mut c, &["HSETNX", "h", "a", "1"]), 1);
    assert_eq!(q::<i64>(&mut c, &["HSETNX", "h", "a", "2"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HSETNX", "h", "b", "3"]), 1);
    assert_eq!(hgetall(&mut c, "h"), map(&[("a", "1"), ("b", "3")]));
}

#[test]
fn binary_fields_and_values() {
    let (_s, mut c) = start();
    let field: &[u8] = b"f\0\r\n\xff";
    let value: Vec<u8> = (0..=255u8).collect();
    let n: i64 = redis::cmd("HSET").arg("h").arg(field).arg(&value).query(&mut c).unwrap();
    assert_eq!(n, 1);
    let got: Vec<u8> = redis::cmd("HGET").arg("h").arg(field).query(&mut c).unwrap();
    assert_eq!(got, value);
    let len: i64 = redis::cmd("HSTRLEN").arg("h").arg(field).query(&mut c).unwrap();
    assert_eq!(len, 256);
    let keys: Vec<Vec<u8>> = redis::cmd("HKEYS").arg("h").query(&mut c).unwrap();
    assert_eq!(keys, vec![field.to_vec()]);
}

#[test]
fn hash_keeps_its_ttl_when_changed() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["HSET", "h", "a", "1"]);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "h", "100"]), 1);
    q::<()>(&mut c, &["HSET", "h", "b", "2"]);
    q::<()>(&mut c, &["HINCRBY", "h", "n", "1"]);
    q::<()>(&mut c, &["HDEL", "h", "a"]);
    assert!((99..=100).contains(&q::<i64>(&mut c, &["TTL", "h"])));
    // Once expired, it is gone for every command.
    assert_eq!(q::<i64>(&mut c, &["PEXPIRE", "h", "30"]), 1);
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(q::<i64>(&mut c, &["HLEN", "h"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HSET", "h", "x", "1"]), 1);
    assert_eq!(hgetall(&mut c, "h"), map(&[("x", "1")]));
    assert_eq!(q::<i64>(&mut c, &["TTL", "h"]), -1);
}

// ---------------------------------------------------------------- reads

#[test]
fn hmget_hgetall_hkeys_hvals_hlen() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(
        q::<Vec<Option<String>>>(&mut c, &["HMGET", "h", "a", "zz", "c", "a"]),
        [Some("1".into()), None, Some("3".into()), Some("1".into())]
    );
    assert_eq!(q::<Vec<Option<String>>>(&mut c, &["HMGET", "nope", "a", "b"]), [None, None]);
    assert_eq!(sorted(q(&mut c, &["HKEYS", "h"])), ["a", "b", "c"]);
    assert_eq!(sorted(q(&mut c, &["HVALS", "h"])), ["1", "2", "3"]);
    // HGETALL pairs each field with its own value, in the order of HKEYS and HVALS.
    let flat: Vec<String> = q(&mut c, &["HGETALL", "h"]);
    let keys: Vec<String> = q(&mut c, &["HKEYS", "h"]);
    let vals: Vec<String> = q(&mut c, &["HVALS", "h"]);
    assert_eq!(flat.len(), 6);
    for (i, pair) in flat.chunks(2).enumerate() {
        assert_eq!((pair[0].clone(), pair[1].clone()), (keys[i].clone(), vals[i].clone()));
        assert_eq!(
            pair[1],
            match pair[0].as_str() {
                "a" => "1",
                "b" => "2",
                _ => "3",
            }
        );
    }
    assert_eq!(q::<i64>(&mut c, &["HLEN", "h"]), 3);
    for key in ["HKEYS", "HVALS", "HGETALL"] {
        assert_eq!(q::<Vec<String>>(&mut c, &[key, "nope"]), Vec::<String>::new());
    }
    assert_eq!(q::<i64>(&mut c, &["HLEN", "nope"]), 0);
}

#[test]
fn hexists_and_hstrlen() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["HSET", "h", "a", "hello", "e", ""]);
    assert_eq!(q::<i64>(&mut c, &["HEXISTS", "h", "a"]), 1);
    assert_eq!(q::<i64>(&mut c, &["HEXISTS", "h", "e"]), 1);
    assert_eq!(q::<i64>(&mut c, &["HEXISTS", "h", "zz"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HEXISTS", "nope", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HSTRLEN", "h", "a"]), 5);
    assert_eq!(q::<i64>(&mut c, &["HSTRLEN", "h", "e"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HSTRLEN", "h", "zz"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HSTRLEN", "nope", "a"]), 0);
}

#[test]
fn hdel_counts_removed_fields_and_removes_the_empty_hash() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(q::<i64>(&mut c, &["HDEL", "h", "zz"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HDEL", "h", "a", "a", "zz"]), 1);
    assert_eq!(hgetall(&mut c, "h"), map(&[("b", "2"), ("c", "3")]));
    assert_eq!(q::<i64>(&mut c, &["HDEL", "h", "b", "c"]), 2);
    assert!(!exists(&mut c, "h"));
    assert_eq!(q::<String>(&mut c, &["TYPE", "h"]), "none");
    assert_eq!(q::<i64>(&mut c, &["HDEL", "nope", "a"]), 0);
}

// ---------------------------------------------------------------- counters

#[test]
fn hincrby() {
    let (_s, mut c) = start();
    assert_eq!(q::<i64>(&mut c, &["HINCRBY", "h", "n", "5"]), 5);
    assert_eq!(q::<i64>(&mut c, &["HINCRBY", "h", "n", "-12"]), -7);
    assert_eq!(q::<String>(&mut c, &["HGET", "h", "n"]), "-7");
    q::<()>(&mut c, &["HSET", "h", "max", "9223372036854775807", "min", "-9223372036854775808"]);
    assert_eq!(err(&mut c, &["HINCRBY", "h", "max", "1"]), "ERR increment or decrement would overflow");
    assert_eq!(err(&mut c, &["HINCRBY", "h", "min", "-1"]), "ERR increment or decrement would overflow");
    assert_eq!(q::<i64>(&mut c, &["HINCRBY", "h", "min", "9223372036854775807"]), -1);
    assert_eq!(err(&mut c, &["HINCRBY", "h", "n", "x"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["HINCRBY", "h", "n", "1.5"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["HINCRBY", "h", "n", "01"]), NOT_INTEGER);
    for bad in ["abc", "010", " 1", "1.0", ""] {
        q::<()>(&mut c, &["HSET", "h", "bad", bad]);
        assert_eq!(err(&mut c, &["HINCRBY", "h", "bad", "1"]), "ERR hash value is not an integer", "{bad:?}");
        assert_eq!(q::<String>(&mut c, &["HGET", "h", "bad"]), bad);
    }
    assert_eq!(q::<String>(&mut c, &["HGET", "h", "max"]), "9223372036854775807");
    assert_eq!(q::<String>(&mut c, &["HGET", "h", "n"]), "-7");
}

#[test]
fn hincrbyfloat() {
    let (_s, mut c) = start();
    assert_eq!(q::<String>(&mut c, &["HINCRBYFLOAT", "h", "f", "10.50"]), "10.5");
    assert_eq!(q::<String>(&mut c, &["HINCRBYFLOAT", "h", "f", "0.1"]), "10.6");
    assert_eq!(q::<String>(&mut c, &["HGET", "h", "f"]), "10.6");
    q::<()>(&mut c, &["HSET", "h", "e", "5.0e3"]);
    assert_eq!(q::<String>(&mut c, &["HINCRBYFLOAT", "h", "e", "2.0e2"]), "5200");
    q::<()>(&mut c, &["HSET", "h", "i", "7"]);
    assert_eq!(q::<String>(&mut c, &["HINCRBYFLOAT", "h", "i", "-7"]), "0");
    assert_eq!(q::<String>(&mut c, &["HINCRBYFLOAT", "h", "n", "3"]), "3");
    assert_eq!(q::<String>(&mut c, &["HINCRBYFLOAT", "h", "n", "1.1"]), "4.1");
    q::<()>(&mut c, &["HSET", "h", "lz", "0010"]);
    assert_eq!(q::<String>(&mut c, &["HINCRBYFLOAT", "h", "lz", "1"]), "11");
    // Errors change nothing.
    assert_eq!(err(&mut c, &["HINCRBYFLOAT", "h", "f", "inf"]), "ERR value is NaN or Infinity");
    assert_eq!(err(&mut c, &["HINCRBYFLOAT", "h", "f", "-inf"]), "ERR value is NaN or Infinity");
    assert_eq!(err(&mut c, &["HINCRBYFLOAT", "h", "f", "nan"]), NOT_FLOAT);
    assert_eq!(err(&mut c, &["HINCRBYFLOAT", "h", "f", "abc"]), NOT_FLOAT);
    assert_eq!(err(&mut c, &["HINCRBYFLOAT", "h", "f", "1e"]), NOT_FLOAT);
    q::<()>(&mut c, &["HSET", "h", "t", "abc", "inf", "inf"]);
    assert_eq!(err(&mut c, &["HINCRBYFLOAT", "h", "t", "1"]), "ERR hash value is not a float");
    assert_eq!(err(&mut c, &["HINCRBYFLOAT", "h", "inf", "1"]), "ERR increment would produce NaN or Infinity");
    assert_eq!(q::<String>(&mut c, &["HGET", "h", "f"]), "10.6");
    assert_eq!(q::<String>(&mut c, &["HGET", "h", "inf"]), "inf");
}

// ---------------------------------------------------------------- HRANDFIELD

#[test]
fn hrandfield_without_count() {
    let (_s, mut c) = start();
    assert_eq!(q::<Option<String>>(&mut c, &["HRANDFIELD", "nope"]), None);
    q::<()>(&mut c, &["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        seen.insert(q::<String>(&mut c, &["HRANDFIELD", "h"]));
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);
}

#[test]
fn hrandfield_with_count() {
    let (_s, mut c) = start();
    let fields: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
    let mut args = vec!["HSET".to_string(), "h".into()];
    for f in &fields {
        args.extend([f.clone(), format!("v{}", &f[1..])]);
    }
    q::<()>(&mut c, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let all: HashSet<String> = fields.iter().cloned().collect();
    // Positive counts: distinct fields, at most the whole hash.
    for n in [1usize, 5, 20, 40, 49, 50, 100] {
        let got: Vec<String> = q(&mut c, &["HRANDFIELD", "h", &n.to_string()]);
        assert_eq!(got.len(), n.min(50), "count {n}");
        let distinct: HashSet<String> = got.iter().cloned().collect();
        assert_eq!(distinct.len(), got.len(), "count {n}: repeats in {got:?}");
        assert!(distinct.is_subset(&all));
    }
    // Negative counts: exactly that many, repeats allowed.
    let got: Vec<String> = q(&mut c, &["HRANDFIELD", "h", "-500"]);
    assert_eq!(got.len(), 500);
    let distinct: HashSet<String> = got.iter().cloned().collect();
    assert!(distinct.is_subset(&all));
    assert!(distinct.len() > 40, "500 picks of 50 fields found only {}", distinct.len());
    assert_eq!(q::<Vec<String>>(&mut c, &["HRANDFIELD", "h", "0"]), Vec::<String>::new());
    // WITHVALUES: field, value, field, value ... in RESP2, values belonging to their fields.
    for (n, want) in [("3", 3), ("-7", 7), ("60", 50)] {
        let flat: Vec<String> = q(&mut c, &["HRANDFIELD", "h", n, "withvalues"]);
        assert_eq!(flat.len(), 2 * want, "count {n}");
        for pair in flat.chunks(2) {
            assert_eq!(pair[1], format!("v{}", &pair[0][1..]));
        }
    }
    // A missing key: an empty array for any count.
    assert_eq!(q::<Vec<String>>(&mut c, &["HRANDFIELD", "nope", "3"]), Vec::<String>::new());
    assert_eq!(q::<Vec<String>>(&mut c, &["HRANDFIELD", "nope", "-3", "WITHVALUES"]), Vec::<String>::new());
}

#[test]
fn hrandfield_errors() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["HSET", "h", "a", "1"]);
    assert_eq!(err(&mut c, &["HRANDFIELD", "h", "x"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["HRANDFIELD", "nope", "x"]), NOT_INTEGER);
    assert_eq!(
        err(&mut c, &["HRANDFIELD", "h", "-9223372036854775808"]),
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    );
    assert_eq!(err(&mut c, &["HRANDFIELD", "h", "1", "foo"]), SYNTAX);
    assert_eq!(err(&mut c, &["HRANDFIELD", "h", "1", "withvalues", "x"]), SYNTAX);
    assert_eq!(err(&mut c, &["HRANDFIELD", "h", "-9223372036854775807", "withvalues"]), "ERR value is out of range");
    assert_eq!(err(&mut c, &["HRANDFIELD", "h", "4611686018427387904", "withvalues"]), "ERR value is out of range");
    assert_eq!(err(&mut c, &["HRANDFIELD", "nope", "-4611686018427387904", "withvalues"]), "ERR value is out of range");
}

// ---------------------------------------------------------------- HSCAN

/// Every (field, value) an HSCAN iteration returns, and how many calls it took.
fn hscan_all(c: &mut Connection, key: &str, extra: &[&str]) -> (Vec<(String, String)>, usize) {
    let mut cursor = "0".to_string();
    let mut out = Vec::new();
    let mut calls = 0;
    loop {
        let mut args = vec!["HSCAN", key, &cursor];
        args.extend(extra);
        let (next, items): (String, Vec<String>) = q(c, &args);
        calls += 1;
        assert_eq!(items.len() % 2, 0);
        out.extend(items.chunks(2).map(|p| (p[0].clone(), p[1].clone())));
        if next == "0" {
            return (out, calls);
        }
        cursor = next;
    }
}

#[test]
fn hscan_walks_every_field_once() {
    let (_s, mut c) = start();
    let mut p = redis::pipe();
    for i in 0..1000 {
        p.cmd("HSET").arg("h").arg(format!("f{i}")).arg(format!("v{i}")).ignore();
    }
    p.query::<()>(&mut c).unwrap();
    let (all, calls) = hscan_all(&mut c, "h", &[]);
    assert!(calls > 10, "1000 fields in {calls} calls of COUNT 10");
    let fields: HashSet<String> = all.iter().map(|(f, _)| f.clone()).collect();
    assert_eq!(fields.len(), 1000);
    assert_eq!(all.len(), 1000, "a field came twice without a rehash");
    assert!(all.iter().all(|(f, v)| v[1..] == f[1..]));
    let (_, fewer) = hscan_all(&mut c, "h", &["COUNT", "200"]);
    assert!(fewer < calls);
    // MATCH filters on the field, and keeps each field's value.
    let (matched, _) = hscan_all(&mut c, "h", &["MATCH", "f1?", "count", "50"]);
    let got: BTreeSet<String> = matched.iter().map(|(f, _)| f.clone()).collect();
    assert_eq!(got, (10..20).map(|i| format!("f{i}")).collect());
    assert!(matched.iter().all(|(f, v)| v[1..] == f[1..]));
    let (none, _) = hscan_all(&mut c, "h", &["MATCH", "zz*"]);
    assert!(none.is_empty());
}

#[test]
fn hscan_arguments() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["HSET", "h", "a", "1"]);
    // A missing key: cursor 0, nothing, whatever the options.
    let (next, items): (String, Vec<String>) = q(&mut c, &["HSCAN", "nope", "0"]);
    assert_eq!((next.as_str(), items.len()), ("0", 0));
    let (next, _): (String, Vec<String>) = q(&mut c, &["HSCAN", "nope", "0", "COUNT", "0"]);
    assert_eq!(next, "0");
    assert_eq!(err(&mut c, &["HSCAN", "nope", "x"]), "ERR invalid cursor");
    for cursor in ["x", " 1", "1 ", "-", "18446744073709551616", "1.5"] {
        assert_eq!(err(&mut c, &["HSCAN", "h", cursor]), "ERR invalid cursor", "{cursor:?}");
    }
    // strtoul's forms.
    for cursor in ["", "+0", "00", "-0"] {
        let (next, items): (String, Vec<String>) = q(&mut c, &["HSCAN", "h", cursor]);
        assert_eq!((next.as_str(), items), ("0", vec!["a".to_string(), "1".to_string()]), "{cursor:?}");
    }
    for args in [
        &["HSCAN", "h", "0", "COUNT", "0"][..],
        &["HSCAN", "h", "0", "COUNT", "-1"],
        &["HSCAN", "h", "0", "COUNT"],
        &["HSCAN", "h", "0", "MATCH"],
        &["HSCAN", "h", "0", "TYPE", "string"],
        &["HSCAN", "h", "0", "NOVALUES"],
        &["HSCAN", "h", "0", "FOO", "1"],
    ] {
        assert_eq!(err(&mut c, args), SYNTAX, "{args:?}");
    }
    assert_eq!(err(&mut c, &["HSCAN", "h", "0", "COUNT", "x"]), NOT_INTEGER);
}

// ---------------------------------------------------------------- types, arity

#[test]
fn every_hash_command_refuses_other_types() {
    let (_s, mut c) = start();
    let others = not_hashes(&mut c);
    for key in others {
        for args in [
            &["HSET", key, "f", "v"][..],
            &["HSETNX", key, "f", "v"],
            &["HMSET", key, "f", "v"],
            &["HGET", key, "f"],
            &["HMGET", key, "f"],
            &["HGETALL", key],
            &["HKEYS", key],
            &["HVALS", key],
            &["HLEN", key],
            &["HEXISTS", key, "f"],
            &["HSTRLEN", key, "f"],
            &["HDEL", key, "f"],
            &["HINCRBY", key, "f", "1"],
            &["HINCRBYFLOAT", key, "f", "1"],
            &["HRANDFIELD", key],
            &["HRANDFIELD", key, "2"],
            &["HRANDFIELD", key, "-2", "WITHVALUES"],
            &["HSCAN", key, "0"],
            &["HSCAN", key, "0", "COUNT", "0"],
        ] {
            assert_eq!(err(&mut c, args), WRONGTYPE, "{args:?}");
        }
    }
    // Nothing was changed.
    assert_eq!(q::<String>(&mut c, &["GET", "str"]), "x");
    assert_eq!(q::<Vec<String>>(&mut c, &["SMEMBERS", "set"]), ["m"]);
    // Argument errors found before the key come first, as in Redis.
    assert_eq!(err(&mut c, &["HINCRBY", "str", "f", "x"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["HINCRBYFLOAT", "str", "f", "x"]), NOT_FLOAT);
    assert_eq!(err(&mut c, &["HRANDFIELD", "str", "x"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["HSCAN", "str", "x"]), "ERR invalid cursor");
}

#[test]
fn wrong_number_of_arguments() {
    let (_s, mut c) = start();
    let cases: &[&[&str]] = &[
        &["HSET", "h"],
        &["HSET", "h", "f"],
        &["HSETNX", "h", "f"],
        &["HSETNX", "h", "f", "v", "x"],
        &["HMSET", "h", "f"],
        &["HGET", "h"],
        &["HGET", "h", "f", "x"],
        &["HMGET", "h"],
        &["HGETALL"],
        &["HGETALL", "h", "x"],
        &["HKEYS"],
        &["HVALS", "h", "x"],
        &["HLEN"],
        &["HEXISTS", "h"],
        &["HSTRLEN", "h"],
        &["HDEL", "h"],
        &["HINCRBY", "h", "f"],
        &["HINCRBYFLOAT", "h", "f", "1", "2"],
        &["HRANDFIELD"],
        &["HSCAN", "h"],
    ];
    for args in cases {
        let name = args[0].to_ascii_lowercase();
        assert_eq!(err(&mut c, args), format!("ERR wrong number of arguments for '{name}' command"), "{args:?}");
    }
}

#[test]
fn command_info_key_positions() {
    let (_s, mut c) = start();
    for (name, arity) in [("hset", -4), ("hget", 3), ("hscan", -3), ("hrandfield", -2), ("hincrbyfloat", 4)] {
        let info: Vec<Vec<Value>> = q(&mut c, &["COMMAND", "INFO", name]);
        let entry = &info[0];
        assert_eq!(entry[1], Value::Int(arity), "{name}");
        assert_eq!(&entry[3..6], &[Value::Int(1), Value::Int(1), Value::Int(1)], "{name}");
    }
}

// ---------------------------------------------------------------- RESP3

#[test]
fn resp3_reply_types() {
    let (_s, mut c) = start();
    hello3(&mut c);
    q::<()>(&mut c, &["HSET", "h", "a", "1", "b", "2"]);
    let all = q::<Value>(&mut c, &["HGETALL", "h"]);
    let Value::Map(pairs) = &all else { panic!("HGETALL answered {all:?}") };
    assert_eq!(pairs.len(), 2);
    assert_eq!(q::<Value>(&mut c, &["HGETALL", "nope"]), Value::Map(vec![]));
    assert_eq!(q::<Value>(&mut c, &["HGET", "h", "zz"]), Value::Nil);
    assert_eq!(q::<Value>(&mut c, &["HRANDFIELD", "nope"]), Value::Nil);
    assert!(matches!(q::<Value>(&mut c, &["HKEYS", "h"]), Value::Array(v) if v.len() == 2));
    assert!(matches!(q::<Value>(&mut c, &["HVALS", "h"]), Value::Array(v) if v.len() == 2));
    assert_eq!(q::<Value>(&mut c, &["HEXISTS", "h", "a"]), Value::Int(1));
    assert_eq!(q::<Value>(&mut c, &["HINCRBYFLOAT", "h", "a", "0.5"]), Value::BulkString(b"1.5".to_vec()));
    // HRANDFIELD WITHVALUES: an array of [field, value] arrays, whatever the count.
    for (n, want) in [("1", 1), ("2", 2), ("5", 2), ("-3", 3)] {
        let reply = q::<Value>(&mut c, &["HRANDFIELD", "h", n, "WITHVALUES"]);
        let Value::Array(items) = &reply else { panic!("HRANDFIELD {n} WITHVALUES answered {reply:?}") };
        assert_eq!(items.len(), want, "HRANDFIELD {n} WITHVALUES");
        for item in items {
            let Value::Array(pair) = item else { panic!("HRANDFIELD {n} WITHVALUES item {item:?}") };
            assert_eq!(pair.len(), 2);
        }
    }
    assert!(
        matches!(q::<Value>(&mut c, &["HRANDFIELD", "h", "2"]), Value::Array(v) if v.iter().all(|i| matches!(i, Value::BulkString(_))))
    );
    assert_eq!(q::<Value>(&mut c, &["HRANDFIELD", "nope", "2", "WITHVALUES"]), Value::Array(vec![]));
    let scan = q::<Value>(&mut c, &["HSCAN", "h", "0"]);
    assert!(matches!(&scan, Value::Array(v) if v.len() == 2 && matches!(&v[1], Value::Array(items) if items.len() == 4)), "{scan:?}");
}

fn raw(port: u16) -> TcpStream {
    let t = TcpStream::connect(("127.0.0.1", port)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    t
}

fn expect(t: &mut TcpStream, expected: &[u8]) {
    let mut got = vec![0u8; expected.len()];
    t.read_exact(&mut got).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(expected));
}

#[test]
fn resp2_and_resp3_bytes() {
    let s = Server::start(&[]);
    let mut t = raw(s.port);
    t.write_all(b"HSET h f v\r\nHGETALL h\r\nHRANDFIELD h 1 WITHVALUES\r\nHRANDFIELD h -2 WITHVALUES\r\nHGETALL nope\r\nHGET h x\r\n")
        .unwrap();
    expect(
        &mut t,
        b":1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*4\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\nf\r\n$1\r\nv\r\n*0\r\n$-1\r\n",
    );
    t.write_all(b"HELLO 3\r\n").unwrap();
    let mut buf = [0u8; 512];
    let n = t.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"%7\r\n"));
    t.write_all(b"HGETALL h\r\nHRANDFIELD h 1 WITHVALUES\r\nHRANDFIELD h -2 WITHVALUES\r\nHGETALL nope\r\nHGET h x\r\nHRANDFIELD h 1\r\n")
        .unwrap();
    expect(
        &mut t,
        b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n*1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*2\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n%0\r\n_\r\n*1\r\n$1\r\nf\r\n",
    );
}

// ---------------------------------------------------------------- durability

#[test]
fn hashes_survive_a_clean_restart_and_a_sigkill() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "always"]);
    let mut c = s.client();
    q::<()>(&mut c, &["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    q::<()>(&mut c, &["HMSET", "h", "d", "4"]);
    q::<()>(&mut c, &["HSETNX", "h", "e", "5"]);
    q::<()>(&mut c, &["HDEL", "h", "b"]);
    assert_eq!(q::<i64>(&mut c, &["HINCRBY", "h", "n", "41"]), 41);
    assert_eq!(q::<i64>(&mut c, &["HINCRBY", "h", "n", "1"]), 42);
    assert_eq!(q::<String>(&mut c, &["HINCRBYFLOAT", "h", "f", "10.5"]), "10.5");
    assert_eq!(q::<String>(&mut c, &["HINCRBYFLOAT", "h", "f", "0.1"]), "10.6");
    q::<()>(&mut c, &["HSET", "gone", "x", "1"]);
    q::<()>(&mut c, &["HDEL", "gone", "x"]);
    q::<()>(&mut c, &["HSET", "ttl", "x", "1"]);
    q::<()>(&mut c, &["EXPIRE", "ttl", "100"]);
    q::<()>(&mut c, &["SELECT", "3"]);
    q::<()>(&mut c, &["HSET", "h", "db", "3"]);
    let want = map(&[("a", "1"), ("c", "3"), ("d", "4"), ("e", "5"), ("n", "42"), ("f", "10.6")]);
    drop(c);
    for kill in [false, true] {
        if kill {
            s.kill();
        } else {
            assert!(s.stop());
        }
        s.restart();
        let mut c = s.client();
        assert_eq!(hgetall(&mut c, "h"), want, "kill: {kill}");
        assert!(!exists(&mut c, "gone"));
        assert!((98..=100).contains(&q::<i64>(&mut c, &["TTL", "ttl"])));
        q::<()>(&mut c, &["SELECT", "3"]);
        assert_eq!(hgetall(&mut c, "h"), map(&[("db", "3")]));
        // And it keeps counting from the recovered values.
        q::<()>(&mut c, &["SELECT", "0"]);
        assert_eq!(q::<i64>(&mut c, &["HINCRBY", "h", "n", "0"]), 42);
        assert_eq!(q::<String>(&mut c, &["HINCRBYFLOAT", "h", "f", "0"]), "10.6");
    }
}

#[test]
fn hincrbyfloat_under_sigkill_keeps_exactly_what_was_acknowledged() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "always"]);
    for round in 0..3 {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..3)
            .map(|t| {
                let (port, stop) = (s.port, stop.clone());
                std::thread::spawn(move || {
                    // (last acknowledged value, the value an unacknowledged call may have written)
                    let mut acked: Option<String> = None;
                    let mut in_flight = false;
                    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else { return (acked, in_flight) };
                    let Ok(mut c) = client.get_connection() else { return (acked, in_flight) };
                    let field = format!("f{t}");
                    while !stop.load(Ordering::Relaxed) {
                        in_flight = true;
                        match cmd(&["HINCRBYFLOAT", "counters", &field, "0.1"]).query::<String>(&mut c) {
                            Ok(v) => {
                                acked = Some(v);
                                in_flight = false;
                            }
                            Err(_) => break,
                        }
                    }
                    (acked, in_flight)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        s.kill();
        stop.store(true, Ordering::Relaxed);
        let results: Vec<(Option<String>, bool)> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        assert!(results.iter().any(|(acked, _)| acked.is_some()), "round {round}: nothing was acknowledged before the kill");
        s.restart();
        let mut c = s.client();
        for (t, (acked, in_flight)) in results.into_iter().enumerate() {
            let field = format!("f{t}");
            let got: Option<String> = q(&mut c, &["HGET", "counters", &field]);
            let value = |v: &Option<String>| v.as_deref().map_or(0.0, |v| v.parse::<f64>().unwrap());
            // Exactly the acknowledged value, or one step more if the call in flight at the kill reached the log.
            let exact = got == acked;
            let one_more = in_flight && got.is_some() && (value(&got) - value(&acked) - 0.1).abs() < 1e-9;
            assert!(exact || one_more, "round {round}: {field}: acknowledged {acked:?}, recovered {got:?}");
            // Sums of tenths print as plain decimals.
            if let Some(g) = &got {
                assert!(!g.contains('e') && g.split('.').nth(1).is_none_or(|d| d.len() == 1), "{g}");
            }
        }
    }
}
