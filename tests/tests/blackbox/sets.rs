//! Set commands, checked against what redis-server 7.0.15 answers (replies,
//! error lines, RESP2 and RESP3 shapes): SADD, SREM, SMEMBERS, SISMEMBER,
//! SMISMEMBER, SCARD, SPOP, SRANDMEMBER, SMOVE, SINTER, SUNION, SDIFF, their
//! *STORE forms, SINTERCARD, SSCAN; wrong types, arity, keys on different
//! shards, and what survives a restart or a SIGKILL.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::{Connection, Value};
use strand_engine::slot::SlotMap;
use strand_tests::commands::{cmd, err, q, start};
use strand_tests::{data_dir, Server};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";
const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";

fn members(c: &mut Connection, key: &str) -> BTreeSet<String> {
    q(c, &["SMEMBERS", key])
}

fn set_of(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn exists(c: &mut Connection, key: &str) -> bool {
    q::<i64>(c, &["EXISTS", key]) == 1
}

fn sadd(c: &mut Connection, key: &str, items: &[&str]) {
    let mut args = vec!["SADD", key];
    args.extend(items);
    q::<()>(c, &args);
}

fn many(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn sadd_all(c: &mut Connection, key: &str, items: &[String]) {
    let mut cmd = redis::cmd("SADD");
    cmd.arg(key).arg(items);
    cmd.query::<()>(c).unwrap();
}

fn hello3(c: &mut Connection) {
    let reply: Value = redis::cmd("HELLO").arg(3).query(c).unwrap();
    assert!(matches!(reply, Value::Map(_)), "HELLO 3 answered {reply:?}");
}

/// Keys holding every type but a set: a string, a hash, a list and a sorted set.
fn not_sets(c: &mut Connection) -> Vec<&'static str> {
    q::<()>(c, &["SET", "{t}str", "x"]);
    q::<()>(c, &["HSET", "{t}hash", "f", "v"]);
    q::<()>(c, &["RPUSH", "{t}list", "e"]);
    q::<()>(c, &["ZADD", "{t}zset", "1", "m"]);
    vec!["{t}str", "{t}hash", "{t}list", "{t}zset"]
}

/// Two keys that the default two shards own apart.
fn apart() -> (String, String) {
    let map = SlotMap::new(2);
    let a = "apart:a".to_string();
    let b = (0..).map(|i| format!("apart:b{i}")).find(|b| map.shard_of(b.as_bytes()) != map.shard_of(a.as_bytes())).unwrap();
    (a, b)
}

// ---------------------------------------------------------------- members

#[test]
fn sadd_srem_and_membership() {
    let (_s, mut c) = start();
    assert_eq!(q::<i64>(&mut c, &["SADD", "s", "a"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SADD", "s", "a", "b", "c", "c"]), 2);
    assert_eq!(q::<i64>(&mut c, &["SADD", "s", "a"]), 0);
    assert_eq!(q::<String>(&mut c, &["TYPE", "s"]), "set");
    assert_eq!(members(&mut c, "s"), set_of(&["a", "b", "c"]));
    assert_eq!(q::<i64>(&mut c, &["SCARD", "s"]), 3);
    assert_eq!(q::<i64>(&mut c, &["SCARD", "nope"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "s", "a"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "s", "z"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "nope", "a"]), 0);
    assert_eq!(q::<Vec<i64>>(&mut c, &["SMISMEMBER", "s", "a", "z", "c", "a"]), [1, 0, 1, 1]);
    assert_eq!(q::<Vec<i64>>(&mut c, &["SMISMEMBER", "nope", "a", "b"]), [0, 0]);
    assert_eq!(q::<i64>(&mut c, &["SREM", "s", "z"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SREM", "s", "a", "a", "z"]), 1);
    assert_eq!(members(&mut c, "s"), set_of(&["b", "c"]));
    assert_eq!(q::<i64>(&mut c, &["SREM", "nope", "a"]), 0);
    // The last member takes the key with it.
    assert_eq!(q::<i64>(&mut c, &["SREM", "s", "b", "c"]), 2);
    assert!(!exists(&mut c, "s"));
    assert_eq!(members(&mut c, "s"), BTreeSet::new());
}

#[test]
fn binary_and_empty_members() {
    let (_s, mut c) = start();
    let m: &[u8] = b"m\0\r\n\xff";
    let n: i64 = redis::cmd("SADD").arg("s").arg(m).arg("").query(&mut c).unwrap();
    assert_eq!(n, 2);
    let got: BTreeSet<Vec<u8>> = redis::cmd("SMEMBERS").arg("s").query(&mut c).unwrap();
    assert_eq!(got, [m.to_vec(), Vec::new()].into_iter().collect());
    let is: i64 = redis::cmd("SISMEMBER").arg("s").arg(m).query(&mut c).unwrap();
    assert_eq!(is, 1);
}

#[test]
fn a_set_keeps_its_ttl_when_changed() {
    let (_s, mut c) = start();
    sadd(&mut c, "s", &["a", "b"]);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "s", "100"]), 1);
    sadd(&mut c, "s", &["c"]);
    q::<()>(&mut c, &["SREM", "s", "a"]);
    q::<()>(&mut c, &["SPOP", "s"]);
    assert!((99..=100).contains(&q::<i64>(&mut c, &["TTL", "s"])));
    assert_eq!(q::<i64>(&mut c, &["PEXPIRE", "s", "30"]), 1);
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(q::<i64>(&mut c, &["SCARD", "s"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SADD", "s", "x"]), 1);
    assert_eq!(q::<i64>(&mut c, &["TTL", "s"]), -1);
}

// ---------------------------------------------------------------- random members

#[test]
fn spop_without_count() {
    let (_s, mut c) = start();
    assert_eq!(q::<Option<String>>(&mut c, &["SPOP", "nope"]), None);
    sadd(&mut c, "s", &["a", "b", "c"]);
    let mut popped = BTreeSet::new();
    for left in (0..3).rev() {
        let m: String = q(&mut c, &["SPOP", "s"]);
        assert!(popped.insert(m.clone()), "{m} popped twice");
        assert_eq!(q::<i64>(&mut c, &["SCARD", "s"]), left);
        assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "s", &m]), 0);
    }
    assert_eq!(popped, set_of(&["a", "b", "c"]));
    assert!(!exists(&mut c, "s"));
    assert_eq!(q::<Option<String>>(&mut c, &["SPOP", "s"]), None);
}

#[test]
fn spop_with_count() {
    let (_s, mut c) = start();
    let all = many("m", 100);
    sadd_all(&mut c, "s", &all);
    let mut left: BTreeSet<String> = all.iter().cloned().collect();
    for n in [1usize, 10, 30, 40] {
        let got: Vec<String> = q(&mut c, &["SPOP", "s", &n.to_string()]);
        assert_eq!(got.len(), n);
        for m in &got {
            assert!(left.remove(m), "{m} popped but not in the set");
        }
        assert_eq!(members(&mut c, "s"), left);
    }
    assert_eq!(q::<Vec<String>>(&mut c, &["SPOP", "s", "0"]), Vec::<String>::new());
    // More than there are: the whole set, and the key is gone.
    let got: BTreeSet<String> = q(&mut c, &["SPOP", "s", "1000"]);
    assert_eq!(got, left);
    assert!(!exists(&mut c, "s"));
    assert_eq!(q::<Vec<String>>(&mut c, &["SPOP", "s", "5"]), Vec::<String>::new());
    // Errors.
    sadd(&mut c, "s", &["a"]);
    for bad in ["-1", "x", "1.5", "-9223372036854775808"] {
        assert_eq!(err(&mut c, &["SPOP", "s", bad]), NOT_POSITIVE, "{bad}");
        assert_eq!(err(&mut c, &["SPOP", "nope", bad]), NOT_POSITIVE, "{bad}");
    }
    assert_eq!(err(&mut c, &["SPOP", "s", "1", "2"]), SYNTAX);
    assert_eq!(members(&mut c, "s"), set_of(&["a"]));
}

#[test]
fn srandmember() {
    let (_s, mut c) = start();
    assert_eq!(q::<Option<String>>(&mut c, &["SRANDMEMBER", "nope"]), None);
    assert_eq!(q::<Vec<String>>(&mut c, &["SRANDMEMBER", "nope", "3"]), Vec::<String>::new());
    assert_eq!(q::<Vec<String>>(&mut c, &["SRANDMEMBER", "nope", "-3"]), Vec::<String>::new());
    let all = many("m", 40);
    sadd_all(&mut c, "s", &all);
    let all: HashSet<String> = all.into_iter().collect();
    let mut seen = HashSet::new();
    for _ in 0..400 {
        let m: String = q(&mut c, &["SRANDMEMBER", "s"]);
        assert!(all.contains(&m));
        seen.insert(m);
    }
    assert!(seen.len() > 30, "400 picks of 40 members found {}", seen.len());
    for n in [1usize, 5, 13, 14, 39, 40, 41, 1000] {
        let got: Vec<String> = q(&mut c, &["SRANDMEMBER", "s", &n.to_string()]);
        assert_eq!(got.len(), n.min(40), "count {n}");
        let distinct: HashSet<String> = got.iter().cloned().collect();
        assert_eq!(distinct.len(), got.len(), "count {n}: repeats");
        assert!(distinct.is_subset(&all));
    }
    let got: Vec<String> = q(&mut c, &["SRANDMEMBER", "s", "-300"]);
    assert_eq!(got.len(), 300);
    assert!(got.iter().all(|m| all.contains(m)));
    assert!(got.iter().collect::<HashSet<_>>().len() < 300);
    assert_eq!(q::<Vec<String>>(&mut c, &["SRANDMEMBER", "s", "0"]), Vec::<String>::new());
    // Nothing was removed.
    assert_eq!(q::<i64>(&mut c, &["SCARD", "s"]), 40);
    assert_eq!(err(&mut c, &["SRANDMEMBER", "s", "x"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["SRANDMEMBER", "nope", "x"]), NOT_INTEGER);
    assert_eq!(
        err(&mut c, &["SRANDMEMBER", "s", "-9223372036854775808"]),
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    );
    assert_eq!(err(&mut c, &["SRANDMEMBER", "s", "1", "2"]), SYNTAX);
}

// ---------------------------------------------------------------- SMOVE

#[test]
fn smove() {
    let (_s, mut c) = start();
    sadd(&mut c, "{m}src", &["a", "b", "c"]);
    sadd(&mut c, "{m}dst", &["c"]);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "{m}src", "{m}dst", "a"]), 1);
    assert_eq!(members(&mut c, "{m}src"), set_of(&["b", "c"]));
    assert_eq!(members(&mut c, "{m}dst"), set_of(&["a", "c"]));
    // Already in the destination: still moved out of the source.
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "{m}src", "{m}dst", "c"]), 1);
    assert_eq!(members(&mut c, "{m}src"), set_of(&["b"]));
    assert_eq!(members(&mut c, "{m}dst"), set_of(&["a", "c"]));
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "{m}src", "{m}dst", "zz"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "{m}nope", "{m}dst", "a"]), 0);
    // Onto itself: 1 if a member, nothing changes.
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "{m}dst", "{m}dst", "a"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "{m}dst", "{m}dst", "zz"]), 0);
    assert_eq!(members(&mut c, "{m}dst"), set_of(&["a", "c"]));
    // The last member: the source goes, a new destination is made.
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "{m}src", "{m}new", "b"]), 1);
    assert!(!exists(&mut c, "{m}src"));
    assert_eq!(members(&mut c, "{m}new"), set_of(&["b"]));
}

#[test]
fn smove_type_checks() {
    let (_s, mut c) = start();
    sadd(&mut c, "{t}set", &["a"]);
    for other in not_sets(&mut c) {
        assert_eq!(err(&mut c, &["SMOVE", "{t}set", other, "a"]), WRONGTYPE, "{other}");
        assert_eq!(err(&mut c, &["SMOVE", "{t}set", other, "zz"]), WRONGTYPE, "{other}");
        assert_eq!(err(&mut c, &["SMOVE", other, "{t}set", "a"]), WRONGTYPE, "{other}");
        // A missing source answers 0 before any type check.
        assert_eq!(q::<i64>(&mut c, &["SMOVE", "{t}nope", other, "a"]), 0, "{other}");
    }
    assert_eq!(members(&mut c, "{t}set"), set_of(&["a"]));
    assert_eq!(q::<String>(&mut c, &["GET", "{t}str"]), "x");
}

// ---------------------------------------------------------------- algebra

#[test]
fn sinter_sunion_sdiff() {
    let (_s, mut c) = start();
    sadd(&mut c, "{a}1", &["1", "2", "3", "4"]);
    sadd(&mut c, "{a}2", &["2", "3", "4", "5"]);
    sadd(&mut c, "{a}3", &["3", "4", "9"]);
    assert_eq!(q::<BTreeSet<String>>(&mut c, &["SINTER", "{a}1", "{a}2", "{a}3"]), set_of(&["3", "4"]));
    assert_eq!(q::<BTreeSet<String>>(&mut c, &["SINTER", "{a}1"]), set_of(&["1", "2", "3", "4"]));
    assert_eq!(q::<BTreeSet<String>>(&mut c, &["SINTER", "{a}1", "{a}1"]), set_of(&["1", "2", "3", "4"]));
    assert_eq!(q::<Vec<String>>(&mut c, &["SINTER", "{a}1", "{a}nope"]), Vec::<String>::new());
    assert_eq!(q::<Vec<String>>(&mut c, &["SINTER", "{a}nope"]), Vec::<String>::new());
    let union: Vec<String> = q(&mut c, &["SUNION", "{a}1", "{a}2", "{a}nope", "{a}3"]);
    assert_eq!(union.len(), 6, "{union:?}");
    assert_eq!(union.into_iter().collect::<BTreeSet<_>>(), set_of(&["1", "2", "3", "4", "5", "9"]));
    assert_eq!(q::<Vec<String>>(&mut c, &["SUNION", "{a}nope"]), Vec::<String>::new());
    assert_eq!(q::<BTreeSet<String>>(&mut c, &["SDIFF", "{a}1", "{a}2"]), set_of(&["1"]));
    assert_eq!(q::<BTreeSet<String>>(&mut c, &["SDIFF", "{a}2", "{a}1", "{a}3"]), set_of(&["5"]));
    assert_eq!(q::<BTreeSet<String>>(&mut c, &["SDIFF", "{a}1", "{a}nope"]), set_of(&["1", "2", "3", "4"]));
    assert_eq!(q::<Vec<String>>(&mut c, &["SDIFF", "{a}nope", "{a}1"]), Vec::<String>::new());
    assert_eq!(q::<Vec<String>>(&mut c, &["SDIFF", "{a}1", "{a}1"]), Vec::<String>::new());
    // Every key's type is checked, even after a missing one.
    q::<()>(&mut c, &["SET", "{a}str", "x"]);
    for op in ["SINTER", "SUNION", "SDIFF"] {
        assert_eq!(err(&mut c, &[op, "{a}nope", "{a}str"]), WRONGTYPE, "{op}");
        assert_eq!(err(&mut c, &[op, "{a}str", "{a}nope"]), WRONGTYPE, "{op}");
        assert_eq!(err(&mut c, &[op, "{a}1", "{a}str"]), WRONGTYPE, "{op}");
    }
}

#[test]
fn store_variants_replace_the_destination() {
    let (_s, mut c) = start();
    sadd(&mut c, "{s}1", &["1", "2", "3"]);
    sadd(&mut c, "{s}2", &["2", "3", "4"]);
    assert_eq!(q::<i64>(&mut c, &["SINTERSTORE", "{s}d", "{s}1", "{s}2"]), 2);
    assert_eq!(members(&mut c, "{s}d"), set_of(&["2", "3"]));
    assert_eq!(q::<i64>(&mut c, &["SUNIONSTORE", "{s}d", "{s}1", "{s}2"]), 4);
    assert_eq!(members(&mut c, "{s}d"), set_of(&["1", "2", "3", "4"]));
    assert_eq!(q::<i64>(&mut c, &["SDIFFSTORE", "{s}d", "{s}1", "{s}2"]), 1);
    assert_eq!(members(&mut c, "{s}d"), set_of(&["1"]));
    // Any old value is replaced, and its TTL goes with it.
    q::<()>(&mut c, &["SET", "{s}str", "v", "EX", "100"]);
    assert_eq!(q::<i64>(&mut c, &["SUNIONSTORE", "{s}str", "{s}1"]), 3);
    assert_eq!(q::<String>(&mut c, &["TYPE", "{s}str"]), "set");
    assert_eq!(q::<i64>(&mut c, &["TTL", "{s}str"]), -1);
    q::<()>(&mut c, &["HSET", "{s}hash", "f", "v"]);
    assert_eq!(q::<i64>(&mut c, &["SINTERSTORE", "{s}hash", "{s}1", "{s}1"]), 3);
    assert_eq!(members(&mut c, "{s}hash"), set_of(&["1", "2", "3"]));
    q::<()>(&mut c, &["SADD", "{s}ttl", "old"]);
    q::<()>(&mut c, &["EXPIRE", "{s}ttl", "100"]);
    assert_eq!(q::<i64>(&mut c, &["SDIFFSTORE", "{s}ttl", "{s}2"]), 3);
    assert_eq!(q::<i64>(&mut c, &["TTL", "{s}ttl"]), -1);
    // The destination may be a source.
    assert_eq!(q::<i64>(&mut c, &["SUNIONSTORE", "{s}1", "{s}1", "{s}2"]), 4);
    assert_eq!(members(&mut c, "{s}1"), set_of(&["1", "2", "3", "4"]));
    // An empty result deletes the destination, whatever it held.
    for op in ["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"] {
        q::<()>(&mut c, &["SET", "{s}e", "v"]);
        let sources: &[&str] = if op == "SDIFFSTORE" { &["{s}2", "{s}2"] } else { &["{s}nope"] };
        let mut args = vec![op, "{s}e"];
        args.extend(sources);
        assert_eq!(q::<i64>(&mut c, &args), 0, "{op}");
        assert!(!exists(&mut c, "{s}e"), "{op}");
        assert_eq!(q::<i64>(&mut c, &args), 0, "{op} again");
    }
    // A source of the wrong type: an error, and the destination is untouched.
    q::<()>(&mut c, &["SET", "{s}x", "x"]);
    for op in ["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"] {
        assert_eq!(err(&mut c, &[op, "{s}d", "{s}1", "{s}x"]), WRONGTYPE, "{op}");
        assert_eq!(err(&mut c, &[op, "{s}d", "{s}nope", "{s}x"]), WRONGTYPE, "{op}");
        assert_eq!(members(&mut c, "{s}d"), set_of(&["1"]), "{op}");
    }
    // A destination of another type is not a source: no type error.
    assert_eq!(q::<i64>(&mut c, &["SINTERSTORE", "{s}x", "{s}2"]), 3);
}

#[test]
fn sintercard() {
    let (_s, mut c) = start();
    sadd(&mut c, "{c}1", &["1", "2", "3", "4"]);
    sadd(&mut c, "{c}2", &["2", "3", "4", "5"]);
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", "{c}1", "{c}2"]), 3);
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "1", "{c}1"]), 4);
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", "{c}1", "{c}1"]), 4);
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", "{c}1", "{c}nope"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "1", "{c}nope"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", "{c}1", "{c}2", "LIMIT", "2"]), 2);
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", "{c}1", "{c}2", "limit", "0"]), 3);
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", "{c}1", "{c}2", "LIMIT", "100"]), 3);
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", "{c}1", "{c}2", "LIMIT", "1", "LIMIT", "0"]), 3);
    // Fewer keys than arguments: the rest are options.
    assert_eq!(err(&mut c, &["SINTERCARD", "1", "{c}1", "{c}2"]), SYNTAX);
    for bad in ["0", "-1", "x", "9223372036854775808"] {
        assert_eq!(err(&mut c, &["SINTERCARD", bad, "{c}1"]), "ERR numkeys should be greater than 0", "{bad}");
    }
    assert_eq!(err(&mut c, &["SINTERCARD", "3", "{c}1", "{c}2"]), "ERR Number of keys can't be greater than number of args");
    assert_eq!(err(&mut c, &["SINTERCARD", "1", "{c}1", "LIMIT"]), SYNTAX);
    assert_eq!(err(&mut c, &["SINTERCARD", "1", "{c}1", "FOO", "1"]), SYNTAX);
    for bad in ["-1", "x"] {
        assert_eq!(err(&mut c, &["SINTERCARD", "1", "{c}1", "LIMIT", bad]), "ERR LIMIT can't be negative");
    }
    q::<()>(&mut c, &["SET", "{c}str", "x"]);
    assert_eq!(err(&mut c, &["SINTERCARD", "2", "{c}nope", "{c}str"]), WRONGTYPE);
    assert_eq!(err(&mut c, &["SINTERCARD", "1", "{c}str"]), WRONGTYPE);
}

#[test]
fn sintercard_routes_by_its_keys_only() {
    let (_s, mut c) = start();
    let map = SlotMap::new(2);
    // A tag whose keys live on the other shard than the words LIMIT and 1.
    let tag = (0..).map(|i| format!("{{k{i}}}")).find(|t| map.shard_of(t.as_bytes()) != map.shard_of(b"LIMIT")).unwrap();
    let (a, b) = (format!("{tag}a"), format!("{tag}b"));
    sadd(&mut c, &a, &["1", "2", "3"]);
    sadd(&mut c, &b, &["2", "3"]);
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", &a, &b, "LIMIT", "1"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", &b, &a, "LIMIT", "5"]), 2);
    // Keys on different shards count the same, whichever comes first.
    let (x, y) = apart();
    sadd(&mut c, &x, &["1", "2"]);
    sadd(&mut c, &y, &["1", "2"]);
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", &x, &y]), 2);
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", &y, &x, "LIMIT", "1"]), 1);
}

/// The algebra over sets on two shards (more in `gather.rs`).
#[test]
fn commands_over_sets_on_two_shards_answer_as_on_one() {
    let (_s, mut c) = start();
    let (x, y) = apart();
    sadd(&mut c, &x, &["1", "2"]);
    sadd(&mut c, &y, &["2", "3"]);
    assert_eq!(q::<BTreeSet<String>>(&mut c, &["SINTER", &x, &y]), set_of(&["2"]));
    assert_eq!(q::<BTreeSet<String>>(&mut c, &["SUNION", &x, &y]), set_of(&["1", "2", "3"]));
    assert_eq!(q::<BTreeSet<String>>(&mut c, &["SDIFF", &x, &y]), set_of(&["1"]));
    assert_eq!(q::<i64>(&mut c, &["SUNIONSTORE", &x, &x, &y]), 3);
    assert_eq!(members(&mut c, &x), set_of(&["1", "2", "3"]));
    assert_eq!(q::<i64>(&mut c, &["SDIFFSTORE", &y, &y, &x]), 0);
    assert!(!exists(&mut c, &y));
}

// ---------------------------------------------------------------- SSCAN

#[test]
fn sscan() {
    let (_s, mut c) = start();
    let all = many("m", 1000);
    sadd_all(&mut c, "s", &all);
    let scan = |c: &mut Connection, extra: &[&str]| -> (Vec<String>, usize) {
        let mut cursor = "0".to_string();
        let (mut out, mut calls) = (Vec::new(), 0);
        loop {
            let mut args = vec!["SSCAN", "s", cursor.as_str()];
            args.extend(extra);
            let (next, items): (String, Vec<String>) = q(c, &args);
            calls += 1;
            out.extend(items);
            if next == "0" {
                return (out, calls);
            }
            cursor = next;
        }
    };
    let (got, calls) = scan(&mut c, &[]);
    assert_eq!(got.len(), 1000);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 1000);
    assert!(calls > 10);
    let (matched, _) = scan(&mut c, &["MATCH", "m9?", "COUNT", "100"]);
    assert_eq!(matched.into_iter().collect::<BTreeSet<_>>(), (90..100).map(|i| format!("m{i}")).collect());
    let (next, items): (String, Vec<String>) = q(&mut c, &["SSCAN", "nope", "0", "COUNT", "0"]);
    assert_eq!((next.as_str(), items.len()), ("0", 0));
    assert_eq!(err(&mut c, &["SSCAN", "s", "x"]), "ERR invalid cursor");
    assert_eq!(err(&mut c, &["SSCAN", "nope", "x"]), "ERR invalid cursor");
    for args in [
        &["SSCAN", "s", "0", "COUNT", "0"][..],
        &["SSCAN", "s", "0", "MATCH"],
        &["SSCAN", "s", "0", "TYPE", "set"],
        &["SSCAN", "s", "0", "NOVALUES"],
    ] {
        assert_eq!(err(&mut c, args), SYNTAX, "{args:?}");
    }
    assert_eq!(err(&mut c, &["SSCAN", "s", "0", "COUNT", "x"]), NOT_INTEGER);
}

// ---------------------------------------------------------------- types, arity, COMMAND INFO

#[test]
fn every_set_command_refuses_other_types() {
    let (_s, mut c) = start();
    sadd(&mut c, "{t}set", &["m"]);
    for key in not_sets(&mut c) {
        for args in [
            &["SADD", key, "m"][..],
            &["SREM", key, "m"],
            &["SMEMBERS", key],
            &["SISMEMBER", key, "m"],
            &["SMISMEMBER", key, "m"],
            &["SCARD", key],
            &["SPOP", key],
            &["SPOP", key, "1"],
            &["SPOP", key, "0"],
            &["SRANDMEMBER", key],
            &["SRANDMEMBER", key, "-1"],
            &["SINTER", key],
            &["SUNION", "{t}set", key],
            &["SDIFF", key, "{t}set"],
            &["SINTERSTORE", "{t}d", key],
            &["SUNIONSTORE", "{t}d", key],
            &["SDIFFSTORE", "{t}d", "{t}set", key],
            &["SINTERCARD", "1", key],
            &["SSCAN", key, "0"],
        ] {
            assert_eq!(err(&mut c, args), WRONGTYPE, "{args:?}");
        }
    }
    assert!(!exists(&mut c, "{t}d"));
    assert_eq!(q::<String>(&mut c, &["GET", "{t}str"]), "x");
    assert_eq!(q::<String>(&mut c, &["HGET", "{t}hash", "f"]), "v");
    assert_eq!(members(&mut c, "{t}set"), set_of(&["m"]));
}

#[test]
fn wrong_number_of_arguments() {
    let (_s, mut c) = start();
    let cases: &[&[&str]] = &[
        &["SADD", "s"],
        &["SREM", "s"],
        &["SMEMBERS"],
        &["SMEMBERS", "s", "x"],
        &["SISMEMBER", "s"],
        &["SISMEMBER", "s", "m", "x"],
        &["SMISMEMBER", "s"],
        &["SCARD"],
        &["SPOP"],
        &["SRANDMEMBER"],
        &["SMOVE", "a", "b"],
        &["SMOVE", "a", "b", "m", "x"],
        &["SINTER"],
        &["SUNION"],
        &["SDIFF"],
        &["SINTERSTORE", "d"],
        &["SUNIONSTORE", "d"],
        &["SDIFFSTORE", "d"],
        &["SINTERCARD", "1"],
        &["SSCAN", "s"],
    ];
    for args in cases {
        let name = args[0].to_ascii_lowercase();
        assert_eq!(err(&mut c, args), format!("ERR wrong number of arguments for '{name}' command"), "{args:?}");
    }
}

#[test]
fn command_info_key_positions() {
    let (_s, mut c) = start();
    for (name, arity, keys) in [
        ("sadd", -3, [1, 1, 1]),
        ("smove", 4, [1, 2, 1]),
        ("sinter", -2, [1, -1, 1]),
        ("sdiffstore", -3, [1, -1, 1]),
        ("spop", -2, [1, 1, 1]),
        ("sscan", -3, [1, 1, 1]),
        // Redis says 0 0 0 (movablekeys); strand routes by the first key and checks the rest itself.
        ("sintercard", -3, [2, 2, 1]),
    ] {
        let info: Vec<Vec<Value>> = q(&mut c, &["COMMAND", "INFO", name]);
        let entry = &info[0];
        assert_eq!(entry[1], Value::Int(arity), "{name}");
        assert_eq!(&entry[3..6], &keys.map(Value::Int), "{name}");
    }
}

// ---------------------------------------------------------------- RESP3

#[test]
fn resp3_reply_types() {
    let (_s, mut c) = start();
    hello3(&mut c);
    sadd(&mut c, "{r}a", &["1", "2", "3"]);
    sadd(&mut c, "{r}b", &["2", "3", "4"]);
    let is_set = |v: &Value, n: usize| matches!(v, Value::Set(items) if items.len() == n);
    for (args, n) in [
        (&["SMEMBERS", "{r}a"][..], 3),
        (&["SMEMBERS", "{r}nope"], 0),
        (&["SINTER", "{r}a", "{r}b"], 2),
        (&["SINTER", "{r}a", "{r}nope"], 0),
        (&["SUNION", "{r}a", "{r}b"], 4),
        (&["SDIFF", "{r}a", "{r}b"], 1),
        (&["SDIFF", "{r}nope", "{r}b"], 0),
        (&["SPOP", "{r}nope", "2"], 0),
        (&["SPOP", "{r}b", "0"], 0),
        (&["SPOP", "{r}b", "1"], 1),
    ] {
        let reply = q::<Value>(&mut c, args);
        assert!(is_set(&reply, n), "{args:?} answered {reply:?}");
    }
    // SPOP taking the whole set is a set too.
    let reply = q::<Value>(&mut c, &["SPOP", "{r}b", "10"]);
    assert!(is_set(&reply, 2), "{reply:?}");
    // SRANDMEMBER with a count is an array, even for a missing key.
    assert!(matches!(q::<Value>(&mut c, &["SRANDMEMBER", "{r}a", "2"]), Value::Array(v) if v.len() == 2));
    assert!(matches!(q::<Value>(&mut c, &["SRANDMEMBER", "{r}a", "-5"]), Value::Array(v) if v.len() == 5));
    assert_eq!(q::<Value>(&mut c, &["SRANDMEMBER", "{r}nope", "2"]), Value::Array(vec![]));
    assert_eq!(q::<Value>(&mut c, &["SRANDMEMBER", "{r}nope"]), Value::Nil);
    assert_eq!(q::<Value>(&mut c, &["SPOP", "{r}nope"]), Value::Nil);
    assert_eq!(q::<Value>(&mut c, &["SISMEMBER", "{r}a", "1"]), Value::Int(1));
    assert_eq!(q::<Value>(&mut c, &["SMISMEMBER", "{r}a", "1", "9"]), Value::Array(vec![Value::Int(1), Value::Int(0)]));
    assert_eq!(q::<Value>(&mut c, &["SINTERSTORE", "{r}d", "{r}a"]), Value::Int(3));
    assert_eq!(q::<Value>(&mut c, &["SINTERCARD", "1", "{r}a"]), Value::Int(3));
}

#[test]
fn resp2_and_resp3_bytes() {
    let s = Server::start(&[]);
    let mut t = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let expect = |t: &mut TcpStream, expected: &[u8]| {
        let mut got = vec![0u8; expected.len()];
        t.read_exact(&mut got).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(expected));
    };
    t.write_all(b"SADD s m\r\nSMEMBERS s\r\nSMEMBERS nope\r\nSPOP nope 1\r\nSRANDMEMBER s 1\r\nSPOP nope\r\n").unwrap();
    expect(&mut t, b":1\r\n*1\r\n$1\r\nm\r\n*0\r\n*0\r\n*1\r\n$1\r\nm\r\n$-1\r\n");
    t.write_all(b"HELLO 3\r\n").unwrap();
    let mut buf = [0u8; 512];
    let n = t.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"%7\r\n"));
    t.write_all(b"SMEMBERS s\r\nSINTER s s\r\nSUNION nope\r\nSPOP nope 1\r\nSRANDMEMBER s 1\r\nSPOP nope\r\nSPOP s 1\r\n").unwrap();
    expect(&mut t, b"~1\r\n$1\r\nm\r\n~1\r\n$1\r\nm\r\n~0\r\n~0\r\n*1\r\n$1\r\nm\r\n_\r\n~1\r\n$1\r\nm\r\n");
}

// ---------------------------------------------------------------- durability

#[test]
fn sets_survive_a_clean_restart_and_a_sigkill() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "always"]);
    let mut c = s.client();
    let all = many("m", 50);
    sadd_all(&mut c, "{d}s", &all);
    q::<()>(&mut c, &["SREM", "{d}s", "m0", "m1"]);
    let mut want: BTreeSet<String> = all[2..].iter().cloned().collect();
    // SPOP: exactly the members it answered are gone.
    let one: String = q(&mut c, &["SPOP", "{d}s"]);
    let some: Vec<String> = q(&mut c, &["SPOP", "{d}s", "7"]);
    for m in std::iter::once(&one).chain(&some) {
        assert!(want.remove(m));
    }
    // SMOVE: out of one, into the other.
    let moved = want.iter().next().unwrap().clone();
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "{d}s", "{d}t", &moved]), 1);
    want.remove(&moved);
    sadd(&mut c, "{d}u", &["only"]);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "{d}u", "{d}t", "only"]), 1);
    // *STORE: over a string with a TTL, and an empty result that deletes.
    q::<()>(&mut c, &["SET", "{d}store", "x", "EX", "100"]);
    assert_eq!(q::<i64>(&mut c, &["SUNIONSTORE", "{d}store", "{d}t", "{d}s"]) as usize, want.len() + 2);
    q::<()>(&mut c, &["SADD", "{d}inter", "stale"]);
    assert_eq!(q::<i64>(&mut c, &["SINTERSTORE", "{d}inter", "{d}s", "{d}t"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SDIFFSTORE", "{d}diff", "{d}t", "{d}s"]), 2);
    // A whole-set SPOP deletes the key.
    sadd(&mut c, "{d}whole", &["a", "b"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["SPOP", "{d}whole", "5"]).len(), 2);
    let t_want = set_of(&[moved.as_str(), "only"]);
    let mut store_want = want.clone();
    store_want.extend(t_want.iter().cloned());
    drop(c);
    for kill in [false, true] {
        if kill {
            s.kill();
        } else {
            assert!(s.stop());
        }
        s.restart();
        let mut c = s.client();
        assert_eq!(members(&mut c, "{d}s"), want, "kill: {kill}");
        assert_eq!(members(&mut c, "{d}t"), t_want, "kill: {kill}");
        assert!(!exists(&mut c, "{d}u"));
        assert_eq!(members(&mut c, "{d}store"), store_want);
        assert_eq!(q::<i64>(&mut c, &["TTL", "{d}store"]), -1);
        assert!(!exists(&mut c, "{d}inter"));
        assert_eq!(members(&mut c, "{d}diff"), t_want);
        assert!(!exists(&mut c, "{d}whole"));
    }
}

/// One call of a writer thread: the members it was told it popped or moved.
type Step = Box<dyn Fn(&mut Connection, usize) -> redis::RedisResult<Vec<String>> + Send>;

#[test]
fn spop_and_smove_under_sigkill_keep_exactly_what_was_acknowledged() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "always"]);
    let all = many("m", 20_000);
    let all_set: BTreeSet<String> = all.iter().cloned().collect();
    for round in 0..3 {
        let (pool, from, to) = (format!("{{p}}pool{round}"), format!("{{v}}from{round}"), format!("{{v}}to{round}"));
        {
            let mut c = s.client();
            sadd_all(&mut c, &pool, &all);
            sadd_all(&mut c, &from, &all);
        }
        let stop = Arc::new(AtomicBool::new(false));
        // Runs `f` until stopped or cut off; answers the members it was told it popped or moved, and whether a call was cut.
        let spawn = |f: Step| {
            let (port, stop) = (s.port, stop.clone());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else { return (acked, false) };
                let Ok(mut c) = client.get_connection() else { return (acked, false) };
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    match f(&mut c, i) {
                        Ok(v) => acked.extend(v),
                        Err(_) => return (acked, true),
                    }
                    i += 1;
                }
                (acked, false)
            })
        };
        // Pops of 1 and of 3 members; moves of one member at a time, by name.
        let key = pool.clone();
        let popper = spawn(Box::new(move |c, i| {
            if i % 2 == 0 {
                Ok(cmd(&["SPOP", &key]).query::<Option<String>>(c)?.into_iter().collect())
            } else {
                cmd(&["SPOP", &key, "3"]).query(c)
            }
        }));
        let (src, dst) = (from.clone(), to.clone());
        let mover = spawn(Box::new(move |c, _| {
            let Some(m) = cmd(&["SRANDMEMBER", &src]).query::<Option<String>>(c)? else { return Ok(vec![]) };
            let n: i64 = cmd(&["SMOVE", &src, &dst, &m]).query(c)?;
            Ok(if n == 1 { vec![m] } else { vec![] })
        }));
        std::thread::sleep(Duration::from_millis(300));
        s.kill();
        stop.store(true, Ordering::Relaxed);
        let (popped, p_cut) = popper.join().unwrap();
        let (moved, m_cut) = mover.join().unwrap();
        assert!(
            !popped.is_empty() && !moved.is_empty(),
            "round {round}: nothing acknowledged ({} pops, {} moves)",
            popped.len(),
            moved.len()
        );
        s.restart();
        let mut c = s.client();
        // The pool: every member not acknowledged as popped, less at most the one call cut by the kill.
        let left = members(&mut c, &pool);
        let popped: BTreeSet<String> = popped.into_iter().collect();
        let expected: BTreeSet<String> = all_set.difference(&popped).cloned().collect();
        assert!(left.is_subset(&expected), "round {round}: a popped member came back");
        let lost = expected.len() - left.len();
        assert!(lost <= if p_cut { 3 } else { 0 }, "round {round}: {lost} unacknowledged pops");
        // The moves: each member in exactly one of the two sets, every acknowledged move done.
        let (from, to) = (members(&mut c, &from), members(&mut c, &to));
        assert!(from.is_disjoint(&to), "round {round}: a member is in both sets");
        assert_eq!(from.len() + to.len(), all_set.len(), "round {round}: a member was lost or made up");
        let moved: BTreeSet<String> = moved.into_iter().collect();
        assert!(moved.is_subset(&to), "round {round}: an acknowledged move was lost");
        let extra = to.len() - moved.len();
        assert!(extra <= usize::from(m_cut), "round {round}: {extra} unacknowledged moves");
    }
}
