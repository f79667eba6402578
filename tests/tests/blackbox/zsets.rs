//! Sorted-set commands, checked against what Redis 7 answers: ZADD and its
//! options, ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD, ZCOUNT, ZLEXCOUNT, ZRANK,
//! ZREVRANK, the ZRANGE family, ZRANGESTORE, the pops (ZPOPMIN/MAX,
//! BZPOPMIN/MAX, ZMPOP, BZMPOP), ZREMRANGEBY*, ZUNION/ZINTER/ZDIFF and their
//! STORE forms, ZINTERCARD, ZRANDMEMBER and ZSCAN; their errors, wrong
//! types, RESP3 reply shapes, keys on two shards, restart and
//! SIGKILL durability, and a job scheduler built on ZRANGEBYSCORE + ZREM.
//! Where `redis-server` is installed, a side-by-side test sends the same
//! commands to both and compares the raw replies byte for byte.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{Connection, Value};
use strand_engine::slot::SlotMap;
use strand_tests::commands::{err, q, start};
use strand_tests::raw::Raw;
use strand_tests::{data_dir, RedisServer, Server};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const SYNTAX: &str = "ERR syntax error";
const NOT_FLOAT: &str = "ERR value is not a valid float";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const MIN_MAX: &str = "ERR min or max is not a float";
const LEX: &str = "ERR min or max not valid string range item";

/// A reply that is an array of bulk strings (members, or members and scores as text).
fn strs(c: &mut Connection, args: &[&str]) -> Vec<String> {
    q(c, args)
}

/// `ZRANGE key 0 -1 WITHSCORES` as "member=score" strings (the score as the server printed it).
fn dump(c: &mut Connection, key: &str) -> Vec<String> {
    strs(c, &["ZRANGE", key, "0", "-1", "WITHSCORES"]).chunks(2).map(|p| format!("{}={}", p[0], p[1])).collect()
}

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Two keys owned by different shards of a 2-shard server.
fn keys_on_two_shards() -> (String, String) {
    let map = SlotMap::new(2);
    let a = "k0".to_string();
    let b = (1..1000).map(|i| format!("k{i}")).find(|k| map.shard_of(k.as_bytes()) != map.shard_of(a.as_bytes())).unwrap();
    (a, b)
}

// ---------------------------------------------------------------- raw RESP

// ---------------------------------------------------------------- ZADD

#[test]
fn zadd_adds_updates_and_counts() {
    let (_s, mut c) = start();
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "1", "a", "2", "b", "3", "c"]), 3);
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "1", "a", "20", "b", "4", "d"]), 1);
    assert_eq!(dump(&mut c, "z"), v(&["a=1", "c=3", "d=4", "b=20"]));
    // CH counts changed scores too; an unchanged score is no change.
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "CH", "1", "a", "2", "b", "5", "e"]), 2);
    // A member named twice: processed in order (added, then changed), the last score stays.
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "ch", "7", "f", "8", "f"]), 2);
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "7", "h", "8", "h"]), 1);
    assert_eq!(q::<String>(&mut c, &["ZSCORE", "z", "f"]), "8");
    assert_eq!(q::<i64>(&mut c, &["ZCARD", "z"]), 7);
    // Options are case-insensitive.
    assert_eq!(q::<i64>(&mut c, &["zAdd", "z", "nX", "cH", "100", "a", "9", "g"]), 1);
    assert_eq!(q::<String>(&mut c, &["ZSCORE", "z", "a"]), "1");
}

#[test]
fn zadd_conditions_nx_xx_gt_lt() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["ZADD", "z", "10", "a"]);
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "NX", "1", "a", "2", "b"]), 1);
    assert_eq!(q::<String>(&mut c, &["ZSCORE", "z", "a"]), "10");
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "XX", "CH", "5", "a", "7", "new"]), 1);
    assert_eq!(q::<Option<String>>(&mut c, &["ZSCORE", "z", "new"]), None);
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "GT", "CH", "4", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "GT", "CH", "6", "a"]), 1);
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "LT", "CH", "9", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "LT", "CH", "-1", "a"]), 1);
    // GT/LT never stop new members.
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "GT", "1", "c"]), 1);
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "XX", "GT", "CH", "100", "c", "1", "b"]), 1);
    assert_eq!(dump(&mut c, "z"), v(&["a=-1", "b=2", "c=100"]));
    // XX on a missing key creates nothing.
    assert_eq!(q::<i64>(&mut c, &["ZADD", "missing", "XX", "1", "a"]), 0);
    assert_eq!(q::<Option<f64>>(&mut c, &["ZADD", "missing", "XX", "INCR", "1", "a"]), None);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "missing"]), 0);
}

#[test]
fn zadd_incr_and_zincrby() {
    let (_s, mut c) = start();
    assert_eq!(q::<String>(&mut c, &["ZADD", "z", "INCR", "1.5", "a"]), "1.5");
    assert_eq!(q::<String>(&mut c, &["ZADD", "z", "INCR", "1.5", "a"]), "3");
    assert_eq!(q::<String>(&mut c, &["ZINCRBY", "z", "-5", "a"]), "-2");
    assert_eq!(q::<String>(&mut c, &["ZINCRBY", "z", "2.5", "b"]), "2.5");
    // INCR with a condition that stops it: nil.
    assert_eq!(q::<Option<String>>(&mut c, &["ZADD", "z", "INCR", "GT", "-1", "a"]), None);
    assert_eq!(q::<Option<String>>(&mut c, &["ZADD", "z", "INCR", "NX", "1", "a"]), None);
    assert_eq!(q::<Option<String>>(&mut c, &["ZADD", "z", "INCR", "XX", "1", "nosuch"]), None);
    assert_eq!(q::<Option<String>>(&mut c, &["ZADD", "z", "INCR", "LT", "-1", "a"]).as_deref(), Some("-3"));
    // Infinities: inf + -inf is NaN, refused, nothing changes.
    assert_eq!(q::<String>(&mut c, &["ZADD", "z", "inf", "top", "-inf", "bottom"]), "2");
    assert_eq!(err(&mut c, &["ZINCRBY", "z", "-inf", "top"]), "ERR resulting score is not a number (NaN)");
    assert_eq!(err(&mut c, &["ZADD", "z", "INCR", "+inf", "bottom"]), "ERR resulting score is not a number (NaN)");
    assert_eq!(q::<String>(&mut c, &["ZINCRBY", "z", "inf", "top"]), "inf");
    assert_eq!(dump(&mut c, "z"), v(&["bottom=-inf", "a=-3", "b=2.5", "top=inf"]));
    // Increments parse as scores.
    assert_eq!(err(&mut c, &["ZINCRBY", "z", "nan", "a"]), NOT_FLOAT);
    assert_eq!(err(&mut c, &["ZINCRBY", "z", "x", "a"]), NOT_FLOAT);
    // ZINCRBY's increment may not be a ZADD flag (Redis parses it as one).
    assert_eq!(err(&mut c, &["ZINCRBY", "z", "nx", "a"]), SYNTAX);
    assert_eq!(err(&mut c, &["ZINCRBY", "z"]), "ERR wrong number of arguments for 'zincrby' command");
}

#[test]
fn zadd_option_conflicts_and_bad_arguments() {
    let (_s, mut c) = start();
    for (args, e) in [
        (&["ZADD", "z", "NX", "XX", "INCR", "1", "a", "2", "b"][..], "ERR XX and NX options at the same time are not compatible"),
        (&["ZADD", "z", "GT", "LT", "1", "a"], "ERR GT, LT, and/or NX options at the same time are not compatible"),
        (&["ZADD", "z", "NX", "GT", "1", "a"], "ERR GT, LT, and/or NX options at the same time are not compatible"),
        (&["ZADD", "z", "LT", "NX", "1", "a"], "ERR GT, LT, and/or NX options at the same time are not compatible"),
        (&["ZADD", "z", "INCR", "1", "a", "2", "b"], "ERR INCR option supports a single increment-element pair"),
        (&["ZADD", "z", "NX", "XX", "1"], SYNTAX),
        (&["ZADD", "z", "1", "a", "2"], SYNTAX),
        (&["ZADD", "z", "NX", "CH"], SYNTAX),
        (&["ZADD", "z", "x", "a"], NOT_FLOAT),
        (&["ZADD", "z", "1", "a", "nan", "b"], NOT_FLOAT),
        (&["ZADD", "z", "1e999", "a"], NOT_FLOAT),
        (&["ZADD", "z", "1e-400", "a"], NOT_FLOAT),
        (&["ZADD", "z", " 1", "a"], NOT_FLOAT),
        (&["ZADD", "z", "", "a"], NOT_FLOAT),
        (&["ZADD", "z", "1"], "ERR wrong number of arguments for 'zadd' command"),
    ] {
        assert_eq!(err(&mut c, args), e, "{args:?}");
    }
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "z"]), 0, "a refused ZADD created the key");
    // What strtod takes: exponents, hexadecimal, infinities, subnormals.
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "1e3", "a", "0x10", "b", "-Infinity", "c", "+inf", "d", ".5", "e"]), 5);
    assert_eq!(dump(&mut c, "z"), v(&["c=-inf", "e=0.5", "b=16", "a=1000", "d=inf"]));
    // -0 is stored as 0, as Redis's listpack stores it.
    q::<()>(&mut c, &["ZADD", "z", "-0", "zero"]);
    assert_eq!(q::<String>(&mut c, &["ZSCORE", "z", "zero"]), "0");
}

// ---------------------------------------------------------------- reads

#[test]
fn zrem_zscore_zmscore_zcard() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["ZADD", "z", "1", "a", "2.25", "b", "3", "c"]);
    assert_eq!(q::<Option<String>>(&mut c, &["ZSCORE", "z", "b"]).as_deref(), Some("2.25"));
    assert_eq!(q::<Option<String>>(&mut c, &["ZSCORE", "z", "x"]), None);
    assert_eq!(q::<Option<String>>(&mut c, &["ZSCORE", "nokey", "x"]), None);
    assert_eq!(q::<Vec<Option<String>>>(&mut c, &["ZMSCORE", "z", "a", "x", "c"]), vec![Some("1".into()), None, Some("3".into())]);
    assert_eq!(q::<Vec<Option<String>>>(&mut c, &["ZMSCORE", "nokey", "a", "b"]), vec![None, None]);
    assert_eq!(q::<i64>(&mut c, &["ZCARD", "z"]), 3);
    assert_eq!(q::<i64>(&mut c, &["ZCARD", "nokey"]), 0);
    assert_eq!(q::<i64>(&mut c, &["ZREM", "z", "a", "x", "a"]), 1);
    assert_eq!(q::<i64>(&mut c, &["ZREM", "nokey", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["ZREM", "z", "b", "c"]), 2);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "z"]), 0, "an empty sorted set must not remain");
    assert_eq!(err(&mut c, &["ZMSCORE", "z"]), "ERR wrong number of arguments for 'zmscore' command");
}

#[test]
fn type_and_object_encoding() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["ZADD", "z", "1", "a"]);
    assert_eq!(q::<String>(&mut c, &["TYPE", "z"]), "zset");
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "z"]), "skiplist");
    assert!(q::<i64>(&mut c, &["MEMORY", "USAGE", "z"]) > 0);
}

#[test]
fn zcount_and_zlexcount() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["ZADD", "z", "-inf", "n", "1", "a", "2", "b", "3", "c", "inf", "p"]);
    assert_eq!(q::<i64>(&mut c, &["ZCOUNT", "z", "-inf", "+inf"]), 5);
    assert_eq!(q::<i64>(&mut c, &["ZCOUNT", "z", "(-inf", "(inf"]), 3);
    assert_eq!(q::<i64>(&mut c, &["ZCOUNT", "z", "1", "3"]), 3);
    assert_eq!(q::<i64>(&mut c, &["ZCOUNT", "z", "(1", "3"]), 2);
    assert_eq!(q::<i64>(&mut c, &["ZCOUNT", "z", "(1", "(3"]), 1);
    assert_eq!(q::<i64>(&mut c, &["ZCOUNT", "z", "3", "1"]), 0);
    assert_eq!(q::<i64>(&mut c, &["ZCOUNT", "z", "(2", "2"]), 0);
    // zslParseRange: an empty bound is 0, leading space and overflow are taken.
    assert_eq!(q::<i64>(&mut c, &["ZCOUNT", "z", "", " 2"]), 2);
    assert_eq!(q::<i64>(&mut c, &["ZCOUNT", "z", "1e999", "inf"]), 1);
    assert_eq!(q::<i64>(&mut c, &["ZCOUNT", "nokey", "0", "1"]), 0);
    for bad in [&["x", "1"][..], &["1", "nan"], &["(nan", "1"], &["+", "1"], &["1", "2 "]] {
        assert_eq!(err(&mut c, &["ZCOUNT", "z", bad[0], bad[1]]), MIN_MAX, "{bad:?}");
    }
    q::<()>(&mut c, &["ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e"]);
    assert_eq!(q::<i64>(&mut c, &["ZLEXCOUNT", "l", "-", "+"]), 5);
    assert_eq!(q::<i64>(&mut c, &["ZLEXCOUNT", "l", "[b", "(d"]), 2);
    assert_eq!(q::<i64>(&mut c, &["ZLEXCOUNT", "l", "(b", "[d"]), 2);
    assert_eq!(q::<i64>(&mut c, &["ZLEXCOUNT", "l", "[b", "[b"]), 1);
    assert_eq!(q::<i64>(&mut c, &["ZLEXCOUNT", "l", "(b", "[b"]), 0);
    assert_eq!(q::<i64>(&mut c, &["ZLEXCOUNT", "l", "+", "-"]), 0);
    assert_eq!(q::<i64>(&mut c, &["ZLEXCOUNT", "l", "[bb", "+"]), 3);
    assert_eq!(q::<i64>(&mut c, &["ZLEXCOUNT", "nokey", "-", "+"]), 0);
    for bad in [&["a", "b"][..], &["[a", ""], &["-a", "+"], &["-", "+b"]] {
        assert_eq!(err(&mut c, &["ZLEXCOUNT", "l", bad[0], bad[1]]), LEX, "{bad:?}");
    }
}

#[test]
fn zrank_and_zrevrank() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["ZADD", "z", "1", "a", "2", "b", "2", "bb", "3", "c"]);
    assert_eq!(q::<Option<i64>>(&mut c, &["ZRANK", "z", "a"]), Some(0));
    assert_eq!(q::<Option<i64>>(&mut c, &["ZRANK", "z", "bb"]), Some(2));
    assert_eq!(q::<Option<i64>>(&mut c, &["ZREVRANK", "z", "a"]), Some(3));
    assert_eq!(q::<Option<i64>>(&mut c, &["ZREVRANK", "z", "c"]), Some(0));
    assert_eq!(q::<Option<i64>>(&mut c, &["ZRANK", "z", "x"]), None);
    assert_eq!(q::<Option<i64>>(&mut c, &["ZRANK", "nokey", "x"]), None);
    // WITHSCORE is Redis 7.2's; strand answers as 7.0 does.
    assert_eq!(err(&mut c, &["ZRANK", "z", "a", "WITHSCORE"]), "ERR wrong number of arguments for 'zrank' command");
}

#[test]
fn ranks_of_a_large_set() {
    let (_s, mut c) = start();
    let n = 20_000;
    let mut p = redis::pipe();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut z = redis::cmd("ZADD");
        z.arg("big");
        for i in chunk {
            z.arg(*i).arg(format!("m{i:06}"));
        }
        p.add_command(z).ignore();
    }
    p.query::<()>(&mut c).unwrap();
    assert_eq!(q::<i64>(&mut c, &["ZCARD", "big"]), n);
    for i in (0..n).step_by(997) {
        let m = format!("m{i:06}");
        assert_eq!(q::<i64>(&mut c, &["ZRANK", "big", &m]), i);
        assert_eq!(q::<i64>(&mut c, &["ZREVRANK", "big", &m]), n - 1 - i);
        assert_eq!(strs(&mut c, &["ZRANGE", "big", &i.to_string(), &i.to_string()]), v(&[&m]));
        assert_eq!(q::<i64>(&mut c, &["ZCOUNT", "big", &format!("({i}"), "+inf"]), n - 1 - i);
    }
    let page = strs(&mut c, &["ZRANGE", "big", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "10", "3"]);
    assert_eq!(page, v(&["m019989", "m019988", "m019987"]));
}

// ---------------------------------------------------------------- ZRANGE family

#[test]
fn zrange_by_rank() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"]);
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "0", "-1"]), v(&["a", "b", "c", "d", "e"]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "-2", "100"]), v(&["d", "e"]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "-100", "1"]), v(&["a", "b"]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "3", "1"]), v(&[]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "5", "10"]), v(&[]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "0", "-100"]), v(&[]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "0", "1", "REV"]), v(&["e", "d"]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "0", "1", "WITHSCORES"]), v(&["a", "1", "b", "2"]));
    assert_eq!(strs(&mut c, &["ZREVRANGE", "z", "0", "1", "WITHSCORES"]), v(&["e", "5", "d", "4"]));
    assert_eq!(strs(&mut c, &["ZRANGE", "nokey", "0", "-1", "WITHSCORES"]), v(&[]));
    // LIMIT is for BYSCORE/BYLEX (but "LIMIT 0 -1" is no limit, as in Redis).
    assert_eq!(
        err(&mut c, &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"]),
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
    );
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "-1"]).len(), 5);
    assert_eq!(
        err(&mut c, &["ZREVRANGE", "z", "0", "-1", "LIMIT", "0", "1"]),
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
    );
    for bad in [
        &["ZRANGE", "z", "0", "-1", "REV", "REV"][..],
        &["ZRANGE", "z", "0", "-1", "BYSCORE", "BYLEX"],
        &["ZRANGE", "z", "0", "-1", "FOO"],
        &["ZRANGE", "z", "0", "-1", "LIMIT", "1"],
        &["ZREVRANGE", "z", "0", "-1", "REV"],
        &["ZREVRANGE", "z", "0", "-1", "BYSCORE"],
    ] {
        assert_eq!(err(&mut c, bad), SYNTAX, "{bad:?}");
    }
    assert_eq!(err(&mut c, &["ZRANGE", "z", "x", "1"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["ZRANGE", "nokey", "x", "1"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["ZRANGE", "z", "0", "-1", "LIMIT", "x", "1"]), NOT_INTEGER);
}

#[test]
fn zrange_by_score() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["ZADD", "z", "-inf", "n", "1", "a", "2", "b", "3", "c", "4", "d", "inf", "p"]);
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "1", "3", "BYSCORE"]), v(&["a", "b", "c"]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "(1", "3", "BYSCORE", "WITHSCORES"]), v(&["b", "2", "c", "3"]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "2"]), v(&["a", "b"]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "4", "-5"]), v(&["d", "p"]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "-1", "2"]), v(&[]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "0", "0"]), v(&[]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "100", "1"]), v(&[]));
    // REV takes max first.
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "3", "1", "BYSCORE", "REV"]), v(&["c", "b", "a"]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "2"]), v(&["d", "c"]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "1", "3", "BYSCORE", "REV"]), v(&[]));
    assert_eq!(strs(&mut c, &["ZRANGEBYSCORE", "z", "-inf", "-inf"]), v(&["n"]));
    assert_eq!(strs(&mut c, &["ZRANGEBYSCORE", "z", "(-inf", "(inf"]), v(&["a", "b", "c", "d"]));
    assert_eq!(strs(&mut c, &["ZRANGEBYSCORE", "z", "2", "3", "WITHSCORES", "LIMIT", "1", "1"]), v(&["c", "3"]));
    assert_eq!(strs(&mut c, &["ZREVRANGEBYSCORE", "z", "3", "(1", "WITHSCORES"]), v(&["c", "3", "b", "2"]));
    assert_eq!(strs(&mut c, &["ZREVRANGEBYSCORE", "z", "1", "3"]), v(&[]));
    assert_eq!(strs(&mut c, &["ZRANGEBYSCORE", "z", "0x1", "0x2"]), v(&["a", "b"]));
    assert_eq!(strs(&mut c, &["ZRANGEBYSCORE", "z", "(", "1"]), v(&["a"]));
    assert_eq!(err(&mut c, &["ZRANGEBYSCORE", "z", "x", "1"]), MIN_MAX);
    assert_eq!(err(&mut c, &["ZRANGEBYSCORE", "z", "1", "nan"]), MIN_MAX);
    assert_eq!(err(&mut c, &["ZRANGEBYSCORE", "nokey", "1", "x"]), MIN_MAX);
    assert_eq!(err(&mut c, &["ZRANGEBYSCORE", "z", "1", "3", "BYSCORE"]), SYNTAX);
    assert_eq!(err(&mut c, &["ZRANGEBYSCORE", "z", "1", "3", "REV"]), SYNTAX);
    assert_eq!(err(&mut c, &["ZREVRANGEBYSCORE", "z", "1", "3", "REV"]), SYNTAX);
    assert_eq!(err(&mut c, &["ZRANGEBYSCORE", "z", "1", "3", "LIMIT", "1"]), SYNTAX);
}

#[test]
fn zrange_by_lex() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["ZADD", "z", "0", "a", "0", "b", "0", "bb", "0", "c", "0", "d", "0", "e"]);
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "-", "+", "BYLEX"]), v(&["a", "b", "bb", "c", "d", "e"]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "[b", "(d", "BYLEX"]), v(&["b", "bb", "c"]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "(b", "[d", "BYLEX", "LIMIT", "1", "2"]), v(&["c", "d"]));
    assert_eq!(strs(&mut c, &["ZRANGE", "z", "+", "-", "BYLEX", "REV", "LIMIT", "1", "2"]), v(&["d", "c"]));
    assert_eq!(strs(&mut c, &["ZRANGEBYLEX", "z", "[b", "[b"]), v(&["b"]));
    assert_eq!(strs(&mut c, &["ZRANGEBYLEX", "z", "(b", "[b"]), v(&[]));
    assert_eq!(strs(&mut c, &["ZRANGEBYLEX", "z", "+", "+"]), v(&[]));
    assert_eq!(strs(&mut c, &["ZRANGEBYLEX", "z", "-", "-"]), v(&[]));
    assert_eq!(strs(&mut c, &["ZRANGEBYLEX", "z", "[", "(b"]), v(&["a"]));
    assert_eq!(strs(&mut c, &["ZRANGEBYLEX", "z", "-", "+", "LIMIT", "4", "10"]), v(&["d", "e"]));
    assert_eq!(strs(&mut c, &["ZREVRANGEBYLEX", "z", "(d", "[b"]), v(&["c", "bb", "b"]));
    assert_eq!(strs(&mut c, &["ZREVRANGEBYLEX", "z", "[b", "(d"]), v(&[]));
    assert_eq!(
        err(&mut c, &["ZRANGE", "z", "[a", "[b", "BYLEX", "WITHSCORES"]),
        "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
    );
    assert_eq!(
        err(&mut c, &["ZRANGEBYLEX", "z", "-", "+", "WITHSCORES"]),
        "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
    );
    assert_eq!(err(&mut c, &["ZRANGEBYLEX", "z", "a", "[b"]), LEX);
    assert_eq!(err(&mut c, &["ZRANGE", "z", "[a", "b", "BYLEX"]), LEX);
    assert_eq!(err(&mut c, &["ZRANGEBYLEX", "z", "-", "+", "BYLEX"]), SYNTAX);
    // Binary members compare as bytes.
    let _: i64 =
        redis::cmd("ZADD").arg("bin").arg(0).arg(&b"\x00"[..]).arg(0).arg(&b"\xff"[..]).arg(0).arg(&b"A"[..]).query(&mut c).unwrap();
    let got: Vec<Vec<u8>> = redis::cmd("ZRANGEBYLEX").arg("bin").arg("(A").arg("+").query(&mut c).unwrap();
    assert_eq!(got, vec![b"\xff".to_vec()]);
}

#[test]
fn zrangestore_stores_the_selection() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["ZADD", "{t}s", "1", "a", "2", "b", "3", "c", "4", "d"]);
    assert_eq!(q::<i64>(&mut c, &["ZRANGESTORE", "{t}d", "{t}s", "1", "2", "REV"]), 2);
    assert_eq!(dump(&mut c, "{t}d"), v(&["b=2", "c=3"]));
    assert_eq!(q::<i64>(&mut c, &["ZRANGESTORE", "{t}d", "{t}s", "(1", "+inf", "BYSCORE", "LIMIT", "1", "1"]), 1);
    assert_eq!(dump(&mut c, "{t}d"), v(&["c=3"]));
    q::<()>(&mut c, &["ZADD", "{t}l", "0", "a", "0", "b", "0", "c"]);
    assert_eq!(q::<i64>(&mut c, &["ZRANGESTORE", "{t}d", "{t}l", "[b", "+", "BYLEX"]), 2);
    assert_eq!(dump(&mut c, "{t}d"), v(&["b=0", "c=0"]));
    assert_eq!(err(&mut c, &["ZRANGESTORE", "{t}d", "{t}s", "0", "-1", "WITHSCORES"]), SYNTAX);
    // An empty selection deletes the destination.
    assert_eq!(q::<i64>(&mut c, &["ZRANGESTORE", "{t}d", "{t}s", "5", "10"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "{t}d"]), 0);
    q::<()>(&mut c, &["SET", "{t}d", "x"]);
    assert_eq!(q::<i64>(&mut c, &["ZRANGESTORE", "{t}d", "{t}nokey", "0", "-1"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "{t}d"]), 0);
    // The destination's old value and TTL are replaced, whatever its type.
    q::<()>(&mut c, &["SET", "{t}d", "x", "EX", "100"]);
    assert_eq!(q::<i64>(&mut c, &["ZRANGESTORE", "{t}d", "{t}s", "0", "0"]), 1);
    assert_eq!(q::<String>(&mut c, &["TYPE", "{t}d"]), "zset");
    assert_eq!(q::<i64>(&mut c, &["TTL", "{t}d"]), -1);
    q::<()>(&mut c, &["SET", "{t}str", "x"]);
    assert_eq!(err(&mut c, &["ZRANGESTORE", "{t}d", "{t}str", "0", "-1"]), WRONGTYPE);
    assert_eq!(dump(&mut c, "{t}d"), v(&["a=1"]), "a refused ZRANGESTORE changed the destination");
}

// ---------------------------------------------------------------- pops

#[test]
fn zpopmin_and_zpopmax() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"]);
    assert_eq!(strs(&mut c, &["ZPOPMIN", "z"]), v(&["a", "1"]));
    assert_eq!(strs(&mut c, &["ZPOPMAX", "z"]), v(&["e", "5"]));
    assert_eq!(strs(&mut c, &["ZPOPMIN", "z", "2"]), v(&["b", "2", "c", "3"]));
    assert_eq!(strs(&mut c, &["ZPOPMIN", "z", "0"]), v(&[]));
    assert_eq!(strs(&mut c, &["ZPOPMAX", "z", "10"]), v(&["d", "4"]));
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "z"]), 0);
    assert_eq!(strs(&mut c, &["ZPOPMIN", "z"]), v(&[]));
    assert_eq!(strs(&mut c, &["ZPOPMIN", "z", "3"]), v(&[]));
    let positive = "ERR value is out of range, must be positive";
    assert_eq!(err(&mut c, &["ZPOPMIN", "z", "-1"]), positive);
    assert_eq!(err(&mut c, &["ZPOPMIN", "z", "x"]), positive);
    assert_eq!(err(&mut c, &["ZPOPMAX", "z", "1.5"]), positive);
    assert_eq!(err(&mut c, &["ZPOPMIN", "z", "1", "2"]), SYNTAX);
    q::<()>(&mut c, &["SET", "s", "x"]);
    assert_eq!(err(&mut c, &["ZPOPMIN", "s", "0"]), WRONGTYPE);
}

#[test]
fn bzpop_serves_at_once_and_times_out_with_a_null_array() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["ZADD", "{q}b", "1", "a", "2", "b"]);
    assert_eq!(strs(&mut c, &["BZPOPMIN", "{q}a", "{q}b", "0"]), v(&["{q}b", "a", "1"]));
    assert_eq!(strs(&mut c, &["BZPOPMAX", "{q}b", "1"]), v(&["{q}b", "b", "2"]));
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "{q}b"]), 0);
    let t = Instant::now();
    assert_eq!(q::<Value>(&mut c, &["BZPOPMIN", "{q}a", "{q}b", "0.2"]), Value::Nil);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(err(&mut c, &["BZPOPMIN", "{q}a", "x"]), "ERR timeout is not a float or out of range");
    assert_eq!(err(&mut c, &["BZPOPMIN", "{q}a", "-1"]), "ERR timeout is negative");
    q::<()>(&mut c, &["SET", "{q}s", "x"]);
    assert_eq!(err(&mut c, &["BZPOPMIN", "{q}a", "{q}s", "0"]), WRONGTYPE);
    q::<()>(&mut c, &["ZADD", "{q}c", "1", "x"]);
    assert_eq!(strs(&mut c, &["BZPOPMAX", "{q}a", "{q}c", "0"]), v(&["{q}c", "x", "1"]));
}

#[test]
fn bzpopmin_wakes_when_a_member_is_added() {
    let s = Server::start(&[]);
    let mut waiter = s.client();
    let mut c = s.client();
    // An empty key: the pop waits out its timeout, then answers nil.
    let t = Instant::now();
    assert_eq!(q::<Value>(&mut waiter, &["BZPOPMIN", "{w}probe", "0.3"]), Value::Nil);
    assert!(t.elapsed() >= Duration::from_millis(250), "BZPOPMIN answered after {:?}, before its timeout", t.elapsed());
    let h = std::thread::spawn(move || {
        let got: Vec<String> = q(&mut waiter, &["BZPOPMIN", "{w}a", "{w}b", "5"]);
        let got2: Value = q(&mut waiter, &["BZMPOP", "5", "1", "{w}a", "MAX", "COUNT", "5"]);
        (got, got2)
    });
    std::thread::sleep(Duration::from_millis(200));
    q::<()>(&mut c, &["ZADD", "{w}b", "3", "x", "1", "y"]);
    std::thread::sleep(Duration::from_millis(200));
    q::<()>(&mut c, &["ZADD", "{w}a", "7", "z"]);
    let (got, got2) = h.join().unwrap();
    assert_eq!(got, v(&["{w}b", "y", "1"]));
    let want = Value::Array(vec![
        Value::BulkString(b"{w}a".to_vec()),
        Value::Array(vec![Value::Array(vec![Value::BulkString(b"z".to_vec()), Value::BulkString(b"7".to_vec())])]),
    ]);
    assert_eq!(got2, want);
    assert_eq!(dump(&mut c, "{w}b"), v(&["x=3"]));
}

#[test]
fn zmpop_and_bzmpop() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["ZADD", "{m}b", "1", "a", "2", "b", "3", "c"]);
    let reply = q::<Value>(&mut c, &["ZMPOP", "2", "{m}a", "{m}b", "MIN", "COUNT", "2"]);
    assert_eq!(
        reply,
        Value::Array(vec![
            Value::BulkString(b"{m}b".to_vec()),
            Value::Array(vec![
                Value::Array(vec![Value::BulkString(b"a".to_vec()), Value::BulkString(b"1".to_vec())]),
                Value::Array(vec![Value::BulkString(b"b".to_vec()), Value::BulkString(b"2".to_vec())]),
            ]),
        ])
    );
    let reply = q::<Value>(&mut c, &["BZMPOP", "0", "1", "{m}b", "max", "count", "10"]);
    assert_eq!(
        reply,
        Value::Array(vec![
            Value::BulkString(b"{m}b".to_vec()),
            Value::Array(vec![Value::Array(vec![Value::BulkString(b"c".to_vec()), Value::BulkString(b"3".to_vec())])]),
        ])
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "{m}b"]), 0);
    assert_eq!(q::<Value>(&mut c, &["ZMPOP", "1", "{m}a", "MIN"]), Value::Nil);
    assert_eq!(q::<Value>(&mut c, &["BZMPOP", "0.1", "1", "{m}a", "MIN"]), Value::Nil);
    for (args, e) in [
        (&["ZMPOP", "0", "{m}a", "MIN"][..], "ERR numkeys should be greater than 0"),
        (&["ZMPOP", "x", "{m}a", "MIN"], "ERR numkeys should be greater than 0"),
        (&["ZMPOP", "1", "{m}a", "FOO"], SYNTAX),
        (&["ZMPOP", "5", "{m}a", "MIN"], SYNTAX),
        (&["ZMPOP", "1", "{m}a", "MIN", "COUNT", "0"], "ERR count should be greater than 0"),
        (&["ZMPOP", "1", "{m}a", "MIN", "COUNT", "x"], "ERR count should be greater than 0"),
        (&["ZMPOP", "1", "{m}a", "MIN", "COUNT", "1", "COUNT", "1"], SYNTAX),
        (&["ZMPOP", "1", "{m}a", "MIN", "FOO"], SYNTAX),
        (&["ZMPOP", "1", "{m}a"], "ERR wrong number of arguments for 'zmpop' command"),
        (&["BZMPOP", "x", "1", "{m}a", "MIN"], "ERR timeout is not a float or out of range"),
        (&["BZMPOP", "x", "0", "{m}a", "MIN"], "ERR numkeys should be greater than 0"),
    ] {
        assert_eq!(err(&mut c, args), e, "{args:?}");
    }
    q::<()>(&mut c, &["SET", "{m}s", "x"]);
    assert_eq!(err(&mut c, &["ZMPOP", "2", "{m}a", "{m}s", "MIN"]), WRONGTYPE);
}

// ---------------------------------------------------------------- ZREMRANGEBY*

#[test]
fn zremrangeby_rank_score_lex() {
    let (_s, mut c) = start();
    let letters = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    let mut add = vec!["ZADD", "z"];
    let scores: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
    for (s, m) in scores.iter().zip(letters) {
        add.push(s);
        add.push(m);
    }
    q::<()>(&mut c, &add);
    assert_eq!(q::<i64>(&mut c, &["ZREMRANGEBYRANK", "z", "0", "0"]), 1);
    assert_eq!(q::<i64>(&mut c, &["ZREMRANGEBYRANK", "z", "-2", "-1"]), 2);
    assert_eq!(q::<i64>(&mut c, &["ZREMRANGEBYRANK", "z", "5", "2"]), 0);
    assert_eq!(q::<i64>(&mut c, &["ZREMRANGEBYRANK", "z", "100", "200"]), 0);
    assert_eq!(q::<i64>(&mut c, &["ZREMRANGEBYSCORE", "z", "(2", "3"]), 1);
    assert_eq!(q::<i64>(&mut c, &["ZREMRANGEBYSCORE", "z", "(4", "(6"]), 1);
    assert_eq!(q::<i64>(&mut c, &["ZREMRANGEBYSCORE", "z", "100", "200"]), 0);
    assert_eq!(dump(&mut c, "z"), v(&["b=2", "d=4", "f=6", "g=7", "h=8"]));
    assert_eq!(err(&mut c, &["ZREMRANGEBYRANK", "z", "x", "1"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["ZREMRANGEBYSCORE", "z", "x", "1"]), MIN_MAX);
    assert_eq!(err(&mut c, &["ZREMRANGEBYLEX", "z", "x", "y"]), LEX);
    q::<()>(&mut c, &["ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e"]);
    assert_eq!(q::<i64>(&mut c, &["ZREMRANGEBYLEX", "l", "[b", "(d"]), 2);
    assert_eq!(q::<i64>(&mut c, &["ZREMRANGEBYLEX", "l", "-", "(a"]), 0);
    assert_eq!(strs(&mut c, &["ZRANGE", "l", "0", "-1"]), v(&["a", "d", "e"]));
    assert_eq!(q::<i64>(&mut c, &["ZREMRANGEBYLEX", "l", "-", "+"]), 3);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "l"]), 0);
    assert_eq!(q::<i64>(&mut c, &["ZREMRANGEBYSCORE", "z", "-inf", "+inf"]), 5);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "z"]), 0);
    for cmd in ["ZREMRANGEBYRANK", "ZREMRANGEBYSCORE"] {
        assert_eq!(q::<i64>(&mut c, &[cmd, "nokey", "0", "1"]), 0);
    }
    assert_eq!(q::<i64>(&mut c, &["ZREMRANGEBYLEX", "nokey", "-", "+"]), 0);
}

// ---------------------------------------------------------------- set operations

#[test]
fn zunion_zinter_zdiff_with_weights_and_aggregates() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["ZADD", "{t}a", "1", "x", "2", "y", "3", "z"]);
    q::<()>(&mut c, &["ZADD", "{t}b", "10", "y", "20", "z", "30", "w"]);
    q::<()>(&mut c, &["ZADD", "{t}c", "-inf", "x", "inf", "y", "5", "q"]);
    assert_eq!(strs(&mut c, &["ZUNION", "2", "{t}a", "{t}b"]), v(&["x", "y", "z", "w"]));
    assert_eq!(strs(&mut c, &["ZUNION", "2", "{t}a", "{t}b", "WITHSCORES"]), v(&["x", "1", "y", "12", "z", "23", "w", "30"]));
    assert_eq!(
        strs(&mut c, &["ZUNION", "2", "{t}a", "{t}b", "WEIGHTS", "2", "3", "AGGREGATE", "MIN", "WITHSCORES"]),
        v(&["x", "2", "y", "4", "z", "6", "w", "90"])
    );
    assert_eq!(
        strs(&mut c, &["ZUNION", "2", "{t}a", "{t}b", "AGGREGATE", "max", "WITHSCORES"]),
        v(&["x", "1", "y", "10", "z", "20", "w", "30"])
    );
    // inf + -inf is 0 in a SUM; 0 * inf is 0.
    assert_eq!(strs(&mut c, &["ZUNION", "2", "{t}c", "{t}c", "WEIGHTS", "1", "-1", "WITHSCORES"]), v(&["q", "0", "x", "0", "y", "0"]));
    assert_eq!(strs(&mut c, &["ZUNION", "3", "{t}a", "{t}b", "{t}c", "WEIGHTS", "1", "1", "0", "WITHSCORES"]).len(), 10);
    assert_eq!(strs(&mut c, &["ZINTER", "2", "{t}a", "{t}b", "WITHSCORES"]), v(&["y", "12", "z", "23"]));
    assert_eq!(strs(&mut c, &["ZINTER", "2", "{t}a", "{t}b", "WEIGHTS", "1", "-1", "WITHSCORES"]), v(&["z", "-17", "y", "-8"]));
    assert_eq!(strs(&mut c, &["ZINTER", "3", "{t}a", "{t}b", "{t}c", "WITHSCORES"]), v(&["y", "inf"]));
    assert_eq!(strs(&mut c, &["ZINTER", "2", "{t}a", "{t}nokey"]), v(&[]));
    assert_eq!(strs(&mut c, &["ZDIFF", "2", "{t}a", "{t}b", "WITHSCORES"]), v(&["x", "1"]));
    assert_eq!(strs(&mut c, &["ZDIFF", "1", "{t}a"]), v(&["x", "y", "z"]));
    assert_eq!(strs(&mut c, &["ZDIFF", "2", "{t}nokey", "{t}a"]), v(&[]));
    assert_eq!(q::<i64>(&mut c, &["ZINTERCARD", "2", "{t}a", "{t}b"]), 2);
    assert_eq!(q::<i64>(&mut c, &["ZINTERCARD", "2", "{t}a", "{t}b", "LIMIT", "1"]), 1);
    assert_eq!(q::<i64>(&mut c, &["ZINTERCARD", "2", "{t}a", "{t}b", "LIMIT", "0"]), 2);
    for (args, e) in [
        (&["ZUNION", "0", "{t}a"][..], "ERR at least 1 input key is needed for 'zunion' command"),
        (&["ZINTER", "-1", "{t}a"], "ERR at least 1 input key is needed for 'zinter' command"),
        (&["ZINTERCARD", "0", "{t}a"], "ERR at least 1 input key is needed for 'zintercard' command"),
        (&["ZUNIONSTORE", "{t}d", "0", "{t}a"], "ERR at least 1 input key is needed for 'zunionstore' command"),
        (&["ZUNION", "x", "{t}a"], NOT_INTEGER),
        (&["ZUNION", "3", "{t}a", "{t}b"], SYNTAX),
        (&["ZUNION", "2", "{t}a", "{t}b", "WEIGHTS", "1"], SYNTAX),
        (&["ZUNION", "2", "{t}a", "{t}b", "WEIGHTS", "1", "x"], "ERR weight value is not a float"),
        (&["ZUNION", "2", "{t}a", "{t}b", "WEIGHTS", "1", "nan"], "ERR weight value is not a float"),
        (&["ZUNION", "2", "{t}a", "{t}b", "AGGREGATE", "avg"], SYNTAX),
        (&["ZUNION", "2", "{t}a", "{t}b", "AGGREGATE"], SYNTAX),
        (&["ZUNION", "2", "{t}a", "{t}b", "FOO"], SYNTAX),
        (&["ZDIFF", "2", "{t}a", "{t}b", "WEIGHTS", "1", "1"], SYNTAX),
        (&["ZDIFF", "2", "{t}a", "{t}b", "AGGREGATE", "SUM"], SYNTAX),
        (&["ZUNIONSTORE", "{t}d", "1", "{t}a", "WITHSCORES"], SYNTAX),
        (&["ZINTERCARD", "2", "{t}a", "{t}b", "WITHSCORES"], SYNTAX),
        (&["ZINTERCARD", "2", "{t}a", "{t}b", "LIMIT", "-1"], "ERR LIMIT can't be negative"),
        (&["ZINTERCARD", "2", "{t}a", "{t}b", "LIMIT", "x"], "ERR LIMIT can't be negative"),
    ] {
        assert_eq!(err(&mut c, args), e, "{args:?}");
    }
    q::<()>(&mut c, &["SET", "{t}s", "x"]);
    assert_eq!(err(&mut c, &["ZUNION", "2", "{t}a", "{t}s"]), WRONGTYPE);
    // Types are checked before the options, as in Redis.
    assert_eq!(err(&mut c, &["ZINTER", "2", "{t}s", "{t}a", "FOO"]), WRONGTYPE);
}

#[test]
fn store_forms_replace_or_delete_the_destination() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["ZADD", "{t}a", "1", "x", "2", "y", "3", "z"]);
    q::<()>(&mut c, &["ZADD", "{t}b", "10", "y", "20", "z", "30", "w"]);
    q::<()>(&mut c, &["SET", "{t}d", "old", "EX", "100"]);
    assert_eq!(q::<i64>(&mut c, &["ZUNIONSTORE", "{t}d", "2", "{t}a", "{t}b", "WEIGHTS", "1", "2", "AGGREGATE", "MAX"]), 4);
    assert_eq!(dump(&mut c, "{t}d"), v(&["x=1", "y=20", "z=40", "w=60"]));
    assert_eq!(q::<i64>(&mut c, &["TTL", "{t}d"]), -1);
    assert_eq!(q::<i64>(&mut c, &["ZINTERSTORE", "{t}d", "2", "{t}a", "{t}b"]), 2);
    assert_eq!(dump(&mut c, "{t}d"), v(&["y=12", "z=23"]));
    assert_eq!(q::<i64>(&mut c, &["ZDIFFSTORE", "{t}d", "2", "{t}b", "{t}a"]), 1);
    assert_eq!(dump(&mut c, "{t}d"), v(&["w=30"]));
    // A source may be the destination.
    assert_eq!(q::<i64>(&mut c, &["ZUNIONSTORE", "{t}a", "2", "{t}a", "{t}a"]), 3);
    assert_eq!(dump(&mut c, "{t}a"), v(&["x=2", "y=4", "z=6"]));
    // An empty result deletes the destination and answers 0.
    assert_eq!(q::<i64>(&mut c, &["ZINTERSTORE", "{t}d", "2", "{t}a", "{t}nokey"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "{t}d"]), 0);
    assert_eq!(q::<i64>(&mut c, &["ZDIFFSTORE", "{t}d", "1", "{t}nokey"]), 0);
    q::<()>(&mut c, &["SET", "{t}s", "x"]);
    q::<()>(&mut c, &["ZADD", "{t}d", "1", "keep"]);
    assert_eq!(err(&mut c, &["ZUNIONSTORE", "{t}d", "2", "{t}a", "{t}s"]), WRONGTYPE);
    assert_eq!(dump(&mut c, "{t}d"), v(&["keep=1"]), "a refused store changed the destination");
}

/// Makes a key of each other type; answers their names.
fn other_types(c: &mut Connection, prefix: &str) -> Vec<String> {
    let mut keys = vec![format!("{prefix}string")];
    q::<()>(c, &["SET", &keys[0], "x"]);
    for (kind, args) in [("list", &["LPUSH", "", "a"][..]), ("hash", &["HSET", "", "f", "v"]), ("set", &["SADD", "", "a"])] {
        let key = format!("{prefix}{kind}");
        let mut a: Vec<&str> = args.to_vec();
        a[1] = &key;
        q::<()>(c, &a);
        keys.push(key);
    }
    keys
}

#[test]
fn plain_sets_count_as_score_one_in_set_operations() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SADD", "{t}set", "b", "c", "d"]);
    q::<()>(&mut c, &["ZADD", "{t}z", "2", "a", "3", "b", "4", "c"]);
    assert_eq!(strs(&mut c, &["ZUNION", "2", "{t}z", "{t}set", "WITHSCORES"]), v(&["d", "1", "a", "2", "b", "4", "c", "5"]));
    assert_eq!(strs(&mut c, &["ZINTER", "2", "{t}z", "{t}set", "WEIGHTS", "1", "10", "WITHSCORES"]), v(&["b", "13", "c", "14"]));
    assert_eq!(strs(&mut c, &["ZDIFF", "2", "{t}set", "{t}z", "WITHSCORES"]), v(&["d", "1"]));
    assert_eq!(q::<i64>(&mut c, &["ZINTERCARD", "2", "{t}set", "{t}z"]), 2);
    assert_eq!(q::<i64>(&mut c, &["ZUNIONSTORE", "{t}d", "1", "{t}set"]), 3);
    assert_eq!(dump(&mut c, "{t}d"), v(&["b=1", "c=1", "d=1"]));
}

#[test]
fn every_command_refuses_other_types() {
    let (_s, mut c) = start();
    for key in other_types(&mut c, "{o}") {
        let k = key.as_str();
        let cmds: Vec<Vec<&str>> = vec![
            vec!["ZADD", k, "1", "a"],
            vec!["ZINCRBY", k, "1", "a"],
            vec!["ZREM", k, "a"],
            vec!["ZSCORE", k, "a"],
            vec!["ZMSCORE", k, "a"],
            vec!["ZCARD", k],
            vec!["ZCOUNT", k, "0", "1"],
            vec!["ZLEXCOUNT", k, "-", "+"],
            vec!["ZRANK", k, "a"],
            vec!["ZREVRANK", k, "a"],
            vec!["ZRANGE", k, "0", "-1"],
            vec!["ZRANGESTORE", "{o}dst", k, "0", "-1"],
            vec!["ZREVRANGE", k, "0", "-1"],
            vec!["ZRANGEBYSCORE", k, "0", "1"],
            vec!["ZREVRANGEBYSCORE", k, "1", "0"],
            vec!["ZRANGEBYLEX", k, "-", "+"],
            vec!["ZREVRANGEBYLEX", k, "+", "-"],
            vec!["ZPOPMIN", k],
            vec!["ZPOPMAX", k, "2"],
            vec!["BZPOPMIN", k, "0"],
            vec!["BZPOPMAX", k, "0"],
            vec!["ZMPOP", "1", k, "MIN"],
            vec!["BZMPOP", "0", "1", k, "MAX"],
            vec!["ZREMRANGEBYRANK", k, "0", "-1"],
            vec!["ZREMRANGEBYSCORE", k, "0", "1"],
            vec!["ZREMRANGEBYLEX", k, "-", "+"],
            vec!["ZRANDMEMBER", k],
            vec!["ZRANDMEMBER", k, "2", "WITHSCORES"],
            vec!["ZSCAN", k, "0"],
        ];
        for args in cmds {
            assert_eq!(err(&mut c, &args), WRONGTYPE, "{args:?}");
        }
        // Set operations take plain sets but nothing else.
        if !key.ends_with("set") {
            for args in [
                vec!["ZUNION", "1", k],
                vec!["ZINTER", "1", k],
                vec!["ZDIFF", "1", k],
                vec!["ZINTERCARD", "1", k],
                vec!["ZUNIONSTORE", "{o}dst", "1", k],
                vec!["ZINTERSTORE", "{o}dst", "1", k],
                vec!["ZDIFFSTORE", "{o}dst", "1", k],
            ] {
                assert_eq!(err(&mut c, &args), WRONGTYPE, "{args:?}");
            }
        }
        assert_eq!(q::<i64>(&mut c, &["EXISTS", "{o}dst"]), 0);
    }
}

/// The algebra over sorted sets on two shards (more in `gather.rs`).
#[test]
fn multi_key_commands_on_two_shards_answer_as_on_one() {
    let (_s, mut c) = start();
    let (a, b) = keys_on_two_shards();
    let (a, b) = (a.as_str(), b.as_str());
    q::<()>(&mut c, &["ZADD", a, "1", "x", "2", "y"]);
    q::<()>(&mut c, &["ZADD", b, "3", "y", "4", "z"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["ZUNION", "2", a, b, "WITHSCORES"]), v(&["x", "1", "z", "4", "y", "5"]));
    assert_eq!(q::<Vec<String>>(&mut c, &["ZINTER", "2", b, a, "WITHSCORES"]), v(&["y", "5"]));
    assert_eq!(q::<Vec<String>>(&mut c, &["ZDIFF", "2", b, a]), v(&["z"]));
    assert_eq!(q::<i64>(&mut c, &["ZINTERCARD", "2", a, b]), 1);
    assert_eq!(q::<i64>(&mut c, &["ZRANGESTORE", a, b, "0", "0"]), 1);
    assert_eq!(dump(&mut c, a), v(&["y=3"]));
    assert_eq!(q::<i64>(&mut c, &["ZUNIONSTORE", b, "2", a, b, "AGGREGATE", "MAX"]), 2);
    assert_eq!(dump(&mut c, b), v(&["y=3", "z=4"]));
}

// ---------------------------------------------------------------- ZRANDMEMBER, ZSCAN

#[test]
fn zrandmember_counts() {
    let (_s, mut c) = start();
    let members = ["a", "b", "c", "d", "e"];
    q::<()>(&mut c, &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"]);
    for _ in 0..20 {
        let m: String = q(&mut c, &["ZRANDMEMBER", "z"]);
        assert!(members.contains(&m.as_str()));
    }
    // Positive: distinct, at most the size.
    for n in [1, 2, 3, 4, 5, 10] {
        let got = strs(&mut c, &["ZRANDMEMBER", "z", &n.to_string()]);
        assert_eq!(got.len(), n.min(5));
        assert_eq!(got.iter().collect::<HashSet<_>>().len(), got.len(), "{got:?}");
    }
    // Negative: exactly that many, with repeats.
    let got = strs(&mut c, &["ZRANDMEMBER", "z", "-50"]);
    assert_eq!(got.len(), 50);
    assert!(got.iter().all(|m| members.contains(&m.as_str())));
    // Every member shows up over enough picks.
    assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), 5);
    let ws = strs(&mut c, &["ZRANDMEMBER", "z", "-4", "WITHSCORES"]);
    assert_eq!(ws.len(), 8);
    for p in ws.chunks(2) {
        let want = (members.iter().position(|m| *m == p[0]).unwrap() + 1).to_string();
        assert_eq!(p[1], want);
    }
    assert_eq!(strs(&mut c, &["ZRANDMEMBER", "z", "0"]), v(&[]));
    assert_eq!(strs(&mut c, &["ZRANDMEMBER", "nokey", "3"]), v(&[]));
    assert_eq!(q::<Option<String>>(&mut c, &["ZRANDMEMBER", "nokey"]), None);
    assert_eq!(
        err(&mut c, &["ZRANDMEMBER", "z", "-9223372036854775808"]),
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    );
    assert_eq!(err(&mut c, &["ZRANDMEMBER", "z", "9223372036854775807", "WITHSCORES"]), "ERR value is out of range");
    assert_eq!(err(&mut c, &["ZRANDMEMBER", "z", "x"]), NOT_INTEGER);
    // strand's own limit (Redis has none): at most 2^22 picks with repeats.
    assert_eq!(strs(&mut c, &["ZRANDMEMBER", "z", "-4194304"]).len(), 4_194_304);
    assert_eq!(err(&mut c, &["ZRANDMEMBER", "z", "-4194305"]), "ERR value is out of range");
    assert_eq!(err(&mut c, &["ZRANDMEMBER", "z", "1", "WITHSCORE"]), SYNTAX);
    assert_eq!(err(&mut c, &["ZRANDMEMBER", "z", "1", "WITHSCORES", "x"]), SYNTAX);
}

#[test]
fn zscan_walks_every_member() {
    let (_s, mut c) = start();
    // Small sets come back whole, in order, as Redis's listpack.
    q::<()>(&mut c, &["ZADD", "small", "1.5", "b", "-inf", "c", "1", "a"]);
    let reply: (String, Vec<String>) = q(&mut c, &["ZSCAN", "small", "0"]);
    assert_eq!(reply, ("0".to_string(), v(&["c", "-inf", "a", "1", "b", "1.5"])));
    let reply: (String, Vec<String>) = q(&mut c, &["ZSCAN", "small", "0", "MATCH", "b*"]);
    assert_eq!(reply.1, v(&["b", "1.5"]));
    // A large one takes several steps; every member comes back with its score.
    let n = 1000;
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("ZADD").arg("big").arg(i).arg(format!("m{i}")).ignore();
    }
    p.query::<()>(&mut c).unwrap();
    let mut seen = std::collections::HashMap::new();
    let mut cursor = "0".to_string();
    let mut steps = 0;
    loop {
        let (next, items): (String, Vec<String>) = q(&mut c, &["ZSCAN", "big", &cursor, "COUNT", "50"]);
        for p in items.chunks(2) {
            seen.insert(p[0].clone(), p[1].clone());
        }
        steps += 1;
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    assert!(steps > 5, "{steps} steps");
    assert_eq!(seen.len(), n);
    assert!((0..n).all(|i| seen.get(&format!("m{i}")) == Some(&i.to_string())));
    let reply: (String, Vec<String>) = q(&mut c, &["ZSCAN", "nokey", "0"]);
    assert_eq!(reply, ("0".to_string(), v(&[])));
    for (args, e) in [
        (&["ZSCAN", "big", "x"][..], "ERR invalid cursor"),
        (&["ZSCAN", "big", "0", "COUNT", "0"], SYNTAX),
        (&["ZSCAN", "big", "0", "COUNT", "x"], NOT_INTEGER),
        (&["ZSCAN", "big", "0", "TYPE", "zset"], SYNTAX),
        (&["ZSCAN", "big", "0", "COUNT"], SYNTAX),
        (&["ZSCAN", "big", "0", "FOO", "1"], SYNTAX),
    ] {
        assert_eq!(err(&mut c, args), e, "{args:?}");
    }
}

// ---------------------------------------------------------------- RESP3 shapes

#[test]
fn resp3_reply_shapes() {
    let s = Server::start(&[]);
    let mut r2 = Raw::connect(s.port, false);
    let mut r3 = Raw::connect(s.port, true);
    r3.cmd(&["ZADD", "{r}z", "1", "a", "2.5", "b", "3", "c", "4", "d", "5", "e", "6", "f"]);
    let both = |r2: &mut Raw, r3: &mut Raw, args: &[&str], resp2: &str, resp3: &str| {
        assert_eq!(r2.cmd(args), resp2, "RESP2 {args:?}");
        assert_eq!(r3.cmd(args), resp3, "RESP3 {args:?}");
    };
    both(&mut r2, &mut r3, &["ZSCORE", "{r}z", "b"], "$3\r\n2.5\r\n", ",2.5\r\n");
    both(&mut r2, &mut r3, &["ZSCORE", "{r}z", "x"], "$-1\r\n", "_\r\n");
    both(&mut r2, &mut r3, &["ZMSCORE", "{r}z", "a", "x"], "*2\r\n$1\r\n1\r\n$-1\r\n", "*2\r\n,1\r\n_\r\n");
    both(&mut r2, &mut r3, &["ZINCRBY", "{r}z", "0", "a"], "$1\r\n1\r\n", ",1\r\n");
    both(&mut r2, &mut r3, &["ZADD", "{r}z", "INCR", "0", "a"], "$1\r\n1\r\n", ",1\r\n");
    both(
        &mut r2,
        &mut r3,
        &["ZRANGE", "{r}z", "0", "1", "WITHSCORES"],
        "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$3\r\n2.5\r\n",
        "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n",
    );
    both(&mut r2, &mut r3, &["ZRANGE", "{r}z", "0", "0"], "*1\r\n$1\r\na\r\n", "*1\r\n$1\r\na\r\n");
    let (all2, all3) = (r2.cmd(&["ZRANGE", "{r}z", "0", "-1", "WITHSCORES"]), r3.cmd(&["ZRANGE", "{r}z", "0", "-1", "WITHSCORES"]));
    assert!(all3.starts_with("*6\r\n*2\r\n$1\r\na\r\n,1\r\n"), "{all3}");
    both(&mut r2, &mut r3, &["ZUNION", "1", "{r}z", "WITHSCORES"], &all2, &all3);
    both(&mut r2, &mut r3, &["ZRANK", "{r}z", "x"], "$-1\r\n", "_\r\n");
    // Pops (each runs twice, once per connection): without a count a flat pair; with one, pairs in RESP3.
    assert_eq!(r2.cmd(&["ZPOPMIN", "{r}z"]), "*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    assert_eq!(r3.cmd(&["ZPOPMIN", "{r}z"]), "*2\r\n$1\r\nb\r\n,2.5\r\n");
    assert_eq!(r2.cmd(&["ZPOPMAX", "{r}z", "1"]), "*2\r\n$1\r\nf\r\n$1\r\n6\r\n");
    assert_eq!(r3.cmd(&["ZPOPMAX", "{r}z", "1"]), "*1\r\n*2\r\n$1\r\ne\r\n,5\r\n");
    assert_eq!(r2.cmd(&["BZPOPMIN", "{r}z", "0"]), "*3\r\n$4\r\n{r}z\r\n$1\r\nc\r\n$1\r\n3\r\n");
    assert_eq!(r3.cmd(&["BZPOPMAX", "{r}z", "0"]), "*3\r\n$4\r\n{r}z\r\n$1\r\nd\r\n,4\r\n");
    r3.cmd(&["ZADD", "{r}z", "1", "a", "2", "b"]);
    assert_eq!(r2.cmd(&["ZMPOP", "1", "{r}z", "MIN"]), "*2\r\n$4\r\n{r}z\r\n*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    assert_eq!(r3.cmd(&["ZMPOP", "1", "{r}z", "MIN"]), "*2\r\n$4\r\n{r}z\r\n*1\r\n*2\r\n$1\r\nb\r\n,2\r\n");
    both(&mut r2, &mut r3, &["ZMPOP", "1", "{r}z", "MIN"], "*-1\r\n", "_\r\n");
    both(&mut r2, &mut r3, &["BZPOPMIN", "{r}z", "0.05"], "*-1\r\n", "_\r\n");
    both(&mut r2, &mut r3, &["ZPOPMIN", "{r}z"], "*0\r\n", "*0\r\n");
    r3.cmd(&["ZADD", "{r}z", "1.5", "a"]);
    both(
        &mut r2,
        &mut r3,
        &["ZRANDMEMBER", "{r}z", "1", "WITHSCORES"],
        "*2\r\n$1\r\na\r\n$3\r\n1.5\r\n",
        "*1\r\n*2\r\n$1\r\na\r\n,1.5\r\n",
    );
    both(&mut r2, &mut r3, &["ZRANDMEMBER", "{r}z", "-2"], "*2\r\n$1\r\na\r\n$1\r\na\r\n", "*2\r\n$1\r\na\r\n$1\r\na\r\n");
    // ZSCAN's scores are strings in both protocols.
    both(
        &mut r2,
        &mut r3,
        &["ZSCAN", "{r}z", "0"],
        "*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$3\r\n1.5\r\n",
        "*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$3\r\n1.5\r\n",
    );
}

// ---------------------------------------------------------------- durability

/// Builds sorted sets with every kind of write; answers the keys to compare.
fn write_everything(c: &mut Connection) -> Vec<&'static str> {
    q::<()>(c, &["ZADD", "{d}a", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "6", "f", "7", "g", "8", "h"]);
    q::<()>(c, &["ZINCRBY", "{d}a", "0.1", "a"]);
    q::<()>(c, &["ZINCRBY", "{d}a", "0.2", "a"]);
    q::<()>(c, &["ZADD", "{d}a", "INCR", "1e-3", "b"]);
    q::<()>(c, &["ZADD", "{d}a", "GT", "CH", "100", "c", "0", "d"]);
    q::<()>(c, &["ZPOPMIN", "{d}a"]);
    q::<()>(c, &["ZPOPMAX", "{d}a", "2"]);
    q::<()>(c, &["ZREM", "{d}a", "e"]);
    q::<()>(c, &["ZADD", "{d}lex", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "f"]);
    q::<()>(c, &["ZREMRANGEBYLEX", "{d}lex", "[b", "(d"]);
    q::<()>(c, &["ZADD", "{d}score", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"]);
    q::<()>(c, &["ZREMRANGEBYSCORE", "{d}score", "(1", "3"]);
    q::<()>(c, &["ZADD", "{d}rank", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"]);
    q::<()>(c, &["ZREMRANGEBYRANK", "{d}rank", "1", "-3"]);
    q::<()>(c, &["ZADD", "{d}b", "10", "b", "0.5", "x", "-inf", "n", "inf", "p"]);
    q::<()>(c, &["ZUNIONSTORE", "{d}union", "2", "{d}a", "{d}b", "WEIGHTS", "2", "0.5"]);
    q::<()>(c, &["ZINTERSTORE", "{d}inter", "2", "{d}a", "{d}b", "AGGREGATE", "MAX"]);
    q::<()>(c, &["ZDIFFSTORE", "{d}diff", "2", "{d}a", "{d}b"]);
    q::<()>(c, &["ZRANGESTORE", "{d}range", "{d}b", "0", "1", "REV"]);
    q::<()>(c, &["ZMPOP", "1", "{d}b", "MAX"]);
    q::<()>(c, &["BZPOPMIN", "{d}b", "0"]);
    // A store that empties its destination, and a set emptied by pops.
    q::<()>(c, &["ZADD", "{d}gone", "1", "a"]);
    q::<()>(c, &["ZINTERSTORE", "{d}gone", "2", "{d}a", "{d}nokey"]);
    q::<()>(c, &["ZADD", "{d}popped", "1", "a", "2", "b"]);
    q::<()>(c, &["ZPOPMIN", "{d}popped", "5"]);
    // A big set, so the skip list has several levels.
    let mut p = redis::pipe();
    for i in 0..3000 {
        p.cmd("ZADD").arg("{d}big").arg(i % 97).arg(format!("m{i}")).ignore();
    }
    p.query::<()>(c).unwrap();
    q::<()>(c, &["ZREMRANGEBYRANK", "{d}big", "100", "1999"]);
    vec!["{d}a", "{d}b", "{d}lex", "{d}score", "{d}rank", "{d}union", "{d}inter", "{d}diff", "{d}range", "{d}gone", "{d}popped", "{d}big"]
}

fn snapshot(c: &mut Connection, keys: &[&str]) -> Vec<(String, Vec<String>)> {
    keys.iter().map(|k| (q::<String>(c, &["TYPE", k]), dump(c, k))).collect()
}

#[test]
fn restart_and_sigkill_keep_every_sorted_set_exactly() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "always"]);
    let mut c = s.client();
    let keys = write_everything(&mut c);
    let before = snapshot(&mut c, &keys);
    assert_eq!(before[0].1, v(&["b=2.001", "d=4", "f=6", "g=7"]));
    assert_eq!(before[9].0, "none");
    assert_eq!(before[10].0, "none");
    assert_eq!(before[11].1.len(), 1100);
    drop(c);
    assert!(s.stop(), "SIGTERM did not exit cleanly");
    s.restart();
    let mut c = s.client();
    assert_eq!(snapshot(&mut c, &keys), before, "after a clean restart");
    // More writes, then SIGKILL: acknowledged writes are back exactly.
    q::<()>(&mut c, &["ZINCRBY", "{d}a", "0.7", "d"]);
    q::<()>(&mut c, &["ZPOPMIN", "{d}big", "3"]);
    q::<()>(&mut c, &["ZREMRANGEBYSCORE", "{d}big", "90", "+inf"]);
    q::<()>(&mut c, &["ZUNIONSTORE", "{d}union", "1", "{d}big"]);
    let before = snapshot(&mut c, &keys);
    assert_eq!(q::<String>(&mut c, &["ZSCORE", "{d}a", "d"]), "4.7");
    drop(c);
    s.kill();
    s.restart();
    let mut c = s.client();
    assert_eq!(snapshot(&mut c, &keys), before, "after SIGKILL");
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "{d}big"]), "skiplist");
}

// ---------------------------------------------------------------- scheduler

/// A delayed-job queue without Lua: jobs scored by due time; workers take
/// due jobs with ZRANGEBYSCORE and claim each with ZREM, which only one of
/// them can win.
#[test]
fn scheduler_claims_every_due_job_exactly_once() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let now = now_ms();
    let due: Vec<String> = (0..600).map(|i| format!("job-{i}")).collect();
    let later: Vec<String> = (0..100).map(|i| format!("later-{i}")).collect();
    let mut p = redis::pipe();
    for (i, j) in due.iter().enumerate() {
        p.cmd("ZADD").arg("jobs").arg(now - 1000 + (i as u64 % 900)).arg(j).ignore();
    }
    for j in &later {
        p.cmd("ZADD").arg("jobs").arg(now + 3_600_000).arg(j).ignore();
    }
    p.query::<()>(&mut c).unwrap();
    // A producer adds jobs that fall due while the workers run.
    let soon: Vec<String> = (0..200).map(|i| format!("soon-{i}")).collect();
    let claimed = Arc::new(Mutex::new(Vec::<String>::new()));
    let producing = Arc::new(AtomicBool::new(true));
    let producer = {
        let mut c = s.client();
        let soon = soon.clone();
        let producing = producing.clone();
        std::thread::spawn(move || {
            for j in soon {
                let _: i64 = redis::cmd("ZADD").arg("jobs").arg(now_ms() + 20).arg(&j).query(&mut c).unwrap();
            }
            producing.store(false, Ordering::SeqCst);
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let mut c = s.client();
            let claimed = claimed.clone();
            let producing = producing.clone();
            std::thread::spawn(move || {
                let mut idle = 0;
                while (idle < 20 || producing.load(Ordering::SeqCst)) && Instant::now() < deadline {
                    let now = now_ms().to_string();
                    let batch: Vec<String> = q(&mut c, &["ZRANGEBYSCORE", "jobs", "-inf", &now, "LIMIT", "0", "5"]);
                    if batch.is_empty() {
                        idle += 1;
                        std::thread::sleep(Duration::from_millis(10 + w));
                        continue;
                    }
                    idle = 0;
                    for j in batch {
                        if q::<i64>(&mut c, &["ZREM", "jobs", &j]) == 1 {
                            claimed.lock().unwrap().push(j);
                        }
                    }
                }
            })
        })
        .collect();
    producer.join().unwrap();
    for w in workers {
        w.join().unwrap();
    }
    let claimed = claimed.lock().unwrap().clone();
    let unique: HashSet<&String> = claimed.iter().collect();
    assert_eq!(unique.len(), claimed.len(), "a job was claimed twice");
    let want: HashSet<&String> = due.iter().chain(&soon).collect();
    assert_eq!(unique, want, "claimed jobs differ from the due ones");
    assert_eq!(q::<i64>(&mut c, &["ZCARD", "jobs"]), 100);
    let left: Vec<String> = q(&mut c, &["ZRANGE", "jobs", "0", "-1"]);
    assert_eq!(left.into_iter().collect::<HashSet<_>>(), later.iter().cloned().collect::<HashSet<_>>());
}

// ---------------------------------------------------------------- side by side with Redis

/// Commands whose replies are fully determined (no random picks, no lex
/// ranges over unequal scores, scores that print the same in every Redis 7).
const SIDE_BY_SIDE: &[&str] = &[
    "ZADD z 1 a 2 b 3 c",
    "ZADD z CH 10 a 2 b 5 e",
    "ZADD z CH 7 dup 8 dup",
    "ZADD z NX 100 a 7 f",
    "ZADD z XX CH 100 a 7 g",
    "ZADD z GT CH 500 a",
    "ZADD z LT 1000 a",
    "ZADD z INCR 1.5 a",
    "ZADD z INCR GT -1 a",
    "ZADD z INCR 5 newone",
    "ZADD z NX XX INCR 1 a 2 b",
    "ZADD z GT LT 1 a",
    "ZADD z INCR 1 a 2 b",
    "ZADD z 1 a 2",
    "ZADD z x a",
    "ZADD z 0x10 hex",
    "ZADD z 1e-400 a",
    "ZADD z inf top -inf bottom",
    "ZADD z INCR -inf top",
    "ZADD z 1 a 1 a 2 a",
    "ZINCRBY z 2.5 a",
    "ZINCRBY z nan a",
    "ZINCRBY z nx a",
    "ZRANGE z 0 -1 WITHSCORES",
    "ZMSCORE z a nosuch b",
    "ZREM z a nosuch a",
    "ZCARD z",
    "ZRANGE z -3 -1 WITHSCORES",
    "ZRANGE z 0 2 REV WITHSCORES",
    "ZRANGE z 0 -1 LIMIT 0 1",
    "ZRANGE z (1 +inf BYSCORE WITHSCORES LIMIT 1 3",
    "ZRANGE z +inf -inf BYSCORE REV LIMIT 1 2",
    "ZRANGE z 1 nan BYSCORE",
    "ZREVRANGEBYSCORE z +inf (2 WITHSCORES",
    "ZRANGEBYSCORE z -inf +inf LIMIT -1 2",
    "ZCOUNT z (2 +inf",
    "ZCOUNT z x 1",
    "ZRANK z hex",
    "ZREVRANK z hex",
    "ZADD l 0 a 0 b 0 bb 0 c 0 d",
    "ZRANGEBYLEX l [b (d",
    "ZREVRANGEBYLEX l + - LIMIT 1 2",
    "ZRANGE l [a [b BYLEX WITHSCORES",
    "ZLEXCOUNT l (a +",
    "ZRANGEBYLEX l a b",
    "ZPOPMIN z",
    "ZPOPMAX z 2",
    "ZPOPMIN z 0",
    "ZPOPMIN z x",
    "ZADD {t}p 1 a",
    "BZPOPMIN {t}nokey {t}p 0",
    "ZMPOP 1 z MAX COUNT 2",
    "ZMPOP 1 nokey MIN",
    "ZMPOP 0 z MIN",
    "BZMPOP x 1 z MIN",
    "ZREMRANGEBYRANK l 0 0",
    "ZREMRANGEBYLEX l [c +",
    "ZREMRANGEBYSCORE z -inf (5",
    "ZADD {t}a 1 x 2 y 3 z",
    "ZADD {t}b 10 y 20 z 30 w",
    "ZUNION 2 {t}a {t}b WEIGHTS 2 3 AGGREGATE MIN WITHSCORES",
    "ZINTER 2 {t}a {t}b WITHSCORES",
    "ZDIFF 2 {t}a {t}b WITHSCORES",
    "ZINTERCARD 2 {t}a {t}b LIMIT 1",
    "ZUNIONSTORE {t}d 2 {t}a {t}b",
    "ZRANGE {t}d 0 -1 WITHSCORES",
    "ZINTERSTORE {t}d 2 {t}a {t}nokey",
    "EXISTS {t}d",
    "ZUNION 0 {t}a",
    "ZUNION 2 {t}a {t}b WEIGHTS 1 x",
    "ZDIFF 2 {t}a {t}b WEIGHTS 1 1",
    "ZINTERCARD 1 {t}a LIMIT -1",
    "ZRANDMEMBER z -9223372036854775808",
    "ZRANDMEMBER z 1 WITHSCORE",
    "ZRANDMEMBER nokey 5 WITHSCORES",
    "ZSCAN {t}a 0",
    "ZSCAN {t}a 0 MATCH y*",
    "ZSCAN {t}a 0 TYPE zset",
    "ZSCAN {t}a x",
    "SET s x",
    "ZADD s 1 a",
    "ZRANGE s 0 -1",
    "ZUNION 1 s",
    "ZRANK z a WITHSCORE",
];

#[test]
fn replies_match_redis_byte_for_byte() {
    let Some(redis) = RedisServer::start() else {
        eprintln!("SKIPPED: redis-server is not installed");
        return;
    };
    let s = Server::start(&[]);
    for resp3 in [false, true] {
        let mut theirs = Raw::connect(redis.port, resp3);
        let mut ours = Raw::connect(s.port, resp3);
        theirs.cmd(&["FLUSHALL"]);
        ours.cmd(&["FLUSHALL"]);
        for line in SIDE_BY_SIDE {
            let args: Vec<&str> = line.split(' ').collect();
            let (want, got) = (theirs.cmd(&args), ours.cmd(&args));
            assert_eq!(got, want, "{} `{line}`", if resp3 { "RESP3" } else { "RESP2" });
        }
    }
}
