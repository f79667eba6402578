//! String commands, checked against what Redis 7.4 answers: GET, SET and its
//! options, SETNX, SETEX, PSETEX, GETSET, GETDEL, GETEX, MGET, MSET, MSETNX,
//! INCR/DECR and friends, INCRBYFLOAT, APPEND, STRLEN, GETRANGE, SETRANGE.

#![allow(clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use redis::{Connection, ConnectionLike, Value};
use strand_tests::commands::{err, error_text, q, start};

fn get(c: &mut Connection, key: &str) -> Option<String> {
    q(c, &["GET", key])
}

fn get_bytes(c: &mut Connection, key: &[u8]) -> Option<Vec<u8>> {
    redis::cmd("GET").arg(key).query(c).unwrap()
}

fn ttl(c: &mut Connection, key: &str) -> i64 {
    q(c, &["TTL", key])
}

fn pttl(c: &mut Connection, key: &str) -> i64 {
    q(c, &["PTTL", key])
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const NOT_FLOAT: &str = "ERR value is not a valid float";
const SYNTAX: &str = "ERR syntax error";
const OVERFLOW: &str = "ERR increment or decrement would overflow";

// ---------------------------------------------------------------- GET / SET

#[test]
fn set_and_get() {
    let (_s, mut c) = start();
    assert_eq!(get(&mut c, "missing"), None);
    assert_eq!(q::<String>(&mut c, &["SET", "k", "v"]), "OK");
    assert_eq!(get(&mut c, "k").as_deref(), Some("v"));
    assert_eq!(q::<String>(&mut c, &["SET", "k", "v2"]), "OK");
    assert_eq!(get(&mut c, "k").as_deref(), Some("v2"));
    // Commands and options are case-insensitive.
    assert_eq!(q::<Option<String>>(&mut c, &["sEt", "k", "v3", "xX"]).as_deref(), Some("OK"));
    assert_eq!(q::<Option<String>>(&mut c, &["gEt", "k"]).as_deref(), Some("v3"));
}

#[test]
fn set_overwrite_clears_ttl() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "k", "v", "EX", "100"]);
    assert!((99..=100).contains(&ttl(&mut c, "k")));
    q::<()>(&mut c, &["SET", "k", "w"]);
    assert_eq!(ttl(&mut c, "k"), -1);
}

#[test]
fn empty_string_value_and_key() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "e", ""]);
    assert_eq!(get(&mut c, "e").as_deref(), Some(""));
    assert_eq!(q::<i64>(&mut c, &["STRLEN", "e"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "e"]), 1);
    q::<()>(&mut c, &["SET", "", "empty key"]);
    assert_eq!(get(&mut c, "").as_deref(), Some("empty key"));
}

#[test]
fn binary_values_and_keys_round_trip() {
    let (_s, mut c) = start();
    let value: Vec<u8> = b"a\0b\r\nc\r\n$3\r\n*1\r\n\xff\xfe\x00".to_vec();
    let key: &[u8] = b"bin\0key\r\n";
    let () = redis::cmd("SET").arg(key).arg(&value).query(&mut c).unwrap();
    assert_eq!(get_bytes(&mut c, key), Some(value.clone()));
    assert_eq!(redis::cmd("STRLEN").arg(key).query::<usize>(&mut c).unwrap(), value.len());
    // Every byte value survives.
    let all: Vec<u8> = (0..=255u8).collect();
    let () = redis::cmd("SET").arg("all").arg(&all).query(&mut c).unwrap();
    assert_eq!(get_bytes(&mut c, b"all"), Some(all));
    // A large value.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let () = redis::cmd("SET").arg("big").arg(&big).query(&mut c).unwrap();
    assert_eq!(get_bytes(&mut c, b"big"), Some(big));
}

#[test]
fn set_nx_and_xx() {
    let (_s, mut c) = start();
    assert_eq!(q::<Option<String>>(&mut c, &["SET", "k", "v1", "XX"]), None);
    assert_eq!(get(&mut c, "k"), None);
    assert_eq!(q::<Option<String>>(&mut c, &["SET", "k", "v1", "NX"]).as_deref(), Some("OK"));
    assert_eq!(q::<Option<String>>(&mut c, &["SET", "k", "v2", "NX"]), None);
    assert_eq!(get(&mut c, "k").as_deref(), Some("v1"));
    assert_eq!(q::<Option<String>>(&mut c, &["SET", "k", "v3", "XX"]).as_deref(), Some("OK"));
    assert_eq!(get(&mut c, "k").as_deref(), Some("v3"));
}

#[test]
fn set_get_option_returns_old_value() {
    let (_s, mut c) = start();
    assert_eq!(q::<Option<String>>(&mut c, &["SET", "k", "v1", "GET"]), None);
    assert_eq!(get(&mut c, "k").as_deref(), Some("v1"));
    assert_eq!(q::<Option<String>>(&mut c, &["SET", "k", "v2", "GET"]).as_deref(), Some("v1"));
    assert_eq!(get(&mut c, "k").as_deref(), Some("v2"));
    // NX + GET: answers the old value and does not set.
    assert_eq!(q::<Option<String>>(&mut c, &["SET", "k", "v3", "NX", "GET"]).as_deref(), Some("v2"));
    assert_eq!(get(&mut c, "k").as_deref(), Some("v2"));
    assert_eq!(q::<Option<String>>(&mut c, &["SET", "n", "v", "NX", "GET"]), None);
    assert_eq!(get(&mut c, "n").as_deref(), Some("v"));
    // XX + GET on a missing key: nil, nothing set.
    assert_eq!(q::<Option<String>>(&mut c, &["SET", "x", "v", "XX", "GET"]), None);
    assert_eq!(get(&mut c, "x"), None);
    assert_eq!(q::<Option<String>>(&mut c, &["SET", "k", "v4", "XX", "GET"]).as_deref(), Some("v2"));
    assert_eq!(get(&mut c, "k").as_deref(), Some("v4"));
    // GET with an expiry.
    assert_eq!(q::<Option<String>>(&mut c, &["SET", "k", "v5", "GET", "EX", "100"]).as_deref(), Some("v4"));
    assert!((99..=100).contains(&ttl(&mut c, "k")));
}

#[test]
fn set_ex_px_exat_pxat() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "ex", "v", "EX", "100"]);
    assert!((99..=100).contains(&ttl(&mut c, "ex")));
    q::<()>(&mut c, &["SET", "px", "v", "PX", "100000"]);
    let p = pttl(&mut c, "px");
    assert!((98_000..=100_000).contains(&p), "pttl {p}");
    let at = now_ms() / 1000 + 200;
    q::<()>(&mut c, &["SET", "exat", "v", "EXAT", &at.to_string()]);
    assert!((198..=200).contains(&ttl(&mut c, "exat")));
    assert_eq!(q::<i64>(&mut c, &["EXPIRETIME", "exat"]), at as i64);
    let pat = now_ms() + 300_000;
    q::<()>(&mut c, &["SET", "pxat", "v", "PXAT", &pat.to_string()]);
    assert_eq!(q::<i64>(&mut c, &["PEXPIRETIME", "pxat"]), pat as i64);
    assert!((298..=300).contains(&ttl(&mut c, "pxat")));
}

#[test]
fn set_with_time_in_the_past_deletes() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "k", "v"]);
    assert_eq!(q::<String>(&mut c, &["SET", "k", "v", "PXAT", "1"]), "OK");
    assert_eq!(get(&mut c, "k"), None);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "k"]), 0);
    assert_eq!(q::<String>(&mut c, &["SET", "k", "v", "EXAT", "1"]), "OK");
    assert_eq!(get(&mut c, "k"), None);
}

#[test]
fn set_short_ttl_expires() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "k", "v", "PX", "50"]);
    assert_eq!(get(&mut c, "k").as_deref(), Some("v"));
    std::thread::sleep(std::time::Duration::from_millis(120));
    assert_eq!(get(&mut c, "k"), None);
}

#[test]
fn set_keepttl() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "k", "v", "EX", "100"]);
    q::<()>(&mut c, &["SET", "k", "v2", "KEEPTTL"]);
    assert_eq!(get(&mut c, "k").as_deref(), Some("v2"));
    assert!((99..=100).contains(&ttl(&mut c, "k")));
    q::<()>(&mut c, &["SET", "k", "v3", "XX", "KEEPTTL", "GET"]);
    assert!((99..=100).contains(&ttl(&mut c, "k")));
    // KEEPTTL on a key without a TTL, and on a new key.
    q::<()>(&mut c, &["SET", "p", "v", "KEEPTTL"]);
    assert_eq!(ttl(&mut c, "p"), -1);
    q::<()>(&mut c, &["SET", "k", "v4"]);
    assert_eq!(ttl(&mut c, "k"), -1);
}

#[test]
fn set_syntax_errors() {
    let (_s, mut c) = start();
    for args in [
        &["SET", "k", "v", "EX"][..],
        &["SET", "k", "v", "PX"],
        &["SET", "k", "v", "NX", "XX"],
        &["SET", "k", "v", "EX", "10", "PX", "100"],
        &["SET", "k", "v", "EX", "10", "EXAT", "100"],
        &["SET", "k", "v", "KEEPTTL", "EX", "10"],
        &["SET", "k", "v", "PXAT", "10", "KEEPTTL"],
        &["SET", "k", "v", "FOO"],
        &["SET", "k", "v", "EX", "10", "FOO"],
    ] {
        assert_eq!(err(&mut c, args), SYNTAX, "{args:?}");
    }
    assert_eq!(err(&mut c, &["SET", "k", "v", "EX", "abc"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["SET", "k", "v", "PX", "1.5"]), NOT_INTEGER);
    for args in [
        &["SET", "k", "v", "EX", "0"][..],
        &["SET", "k", "v", "EX", "-1"],
        &["SET", "k", "v", "PX", "0"],
        &["SET", "k", "v", "PX", "-100"],
        &["SET", "k", "v", "EXAT", "0"],
        &["SET", "k", "v", "PXAT", "0"],
        &["SET", "k", "v", "EX", "9223372036854775807"],
        &["SET", "k", "v", "PX", "9223372036854775807"],
        &["SET", "k", "v", "EX", "9223372036854776"],
    ] {
        assert_eq!(err(&mut c, args), "ERR invalid expire time in 'set' command", "{args:?}");
    }
    // Nothing was written by the failed commands.
    assert_eq!(get(&mut c, "k"), None);
}

// ---------------------------------------------------------------- SETNX / SETEX / PSETEX

#[test]
fn setnx() {
    let (_s, mut c) = start();
    assert_eq!(q::<i64>(&mut c, &["SETNX", "k", "v1"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SETNX", "k", "v2"]), 0);
    assert_eq!(get(&mut c, "k").as_deref(), Some("v1"));
}

#[test]
fn setex_and_psetex() {
    let (_s, mut c) = start();
    assert_eq!(q::<String>(&mut c, &["SETEX", "k", "100", "v"]), "OK");
    assert_eq!(get(&mut c, "k").as_deref(), Some("v"));
    assert!((99..=100).contains(&ttl(&mut c, "k")));
    assert_eq!(q::<String>(&mut c, &["PSETEX", "p", "100000", "v"]), "OK");
    let p = pttl(&mut c, "p");
    assert!((98_000..=100_000).contains(&p), "pttl {p}");
    assert_eq!(err(&mut c, &["SETEX", "k", "0", "v"]), "ERR invalid expire time in 'setex' command");
    assert_eq!(err(&mut c, &["SETEX", "k", "-5", "v"]), "ERR invalid expire time in 'setex' command");
    assert_eq!(err(&mut c, &["SETEX", "k", "9223372036854776", "v"]), "ERR invalid expire time in 'setex' command");
    assert_eq!(err(&mut c, &["SETEX", "k", "abc", "v"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["PSETEX", "k", "0", "v"]), "ERR invalid expire time in 'psetex' command");
    assert_eq!(err(&mut c, &["PSETEX", "k", "-1", "v"]), "ERR invalid expire time in 'psetex' command");
    assert_eq!(err(&mut c, &["PSETEX", "k", "1x", "v"]), NOT_INTEGER);
    // The failed calls left the key as it was.
    assert_eq!(get(&mut c, "k").as_deref(), Some("v"));
}

// ---------------------------------------------------------------- GETSET / GETDEL / GETEX

#[test]
fn getset() {
    let (_s, mut c) = start();
    assert_eq!(q::<Option<String>>(&mut c, &["GETSET", "k", "v1"]), None);
    assert_eq!(q::<Option<String>>(&mut c, &["GETSET", "k", "v2"]).as_deref(), Some("v1"));
    assert_eq!(get(&mut c, "k").as_deref(), Some("v2"));
    // GETSET drops the TTL.
    q::<()>(&mut c, &["SET", "k", "v", "EX", "100"]);
    q::<()>(&mut c, &["GETSET", "k", "v3"]);
    assert_eq!(ttl(&mut c, "k"), -1);
}

#[test]
fn getdel() {
    let (_s, mut c) = start();
    assert_eq!(q::<Option<String>>(&mut c, &["GETDEL", "k"]), None);
    q::<()>(&mut c, &["SET", "k", "v"]);
    assert_eq!(q::<Option<String>>(&mut c, &["GETDEL", "k"]).as_deref(), Some("v"));
    assert_eq!(get(&mut c, "k"), None);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "k"]), 0);
}

#[test]
fn getex_options() {
    let (_s, mut c) = start();
    assert_eq!(q::<Option<String>>(&mut c, &["GETEX", "missing", "EX", "10"]), None);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "missing"]), 0);
    q::<()>(&mut c, &["SET", "k", "v"]);
    assert_eq!(q::<Option<String>>(&mut c, &["GETEX", "k"]).as_deref(), Some("v"));
    assert_eq!(ttl(&mut c, "k"), -1);
    assert_eq!(q::<Option<String>>(&mut c, &["GETEX", "k", "EX", "100"]).as_deref(), Some("v"));
    assert!((99..=100).contains(&ttl(&mut c, "k")));
    // Plain GETEX leaves the TTL alone.
    q::<()>(&mut c, &["GETEX", "k"]);
    assert!((99..=100).contains(&ttl(&mut c, "k")));
    q::<()>(&mut c, &["GETEX", "k", "PX", "200000"]);
    assert!((198..=200).contains(&ttl(&mut c, "k")));
    let at = now_ms() / 1000 + 300;
    q::<()>(&mut c, &["GETEX", "k", "EXAT", &at.to_string()]);
    assert_eq!(q::<i64>(&mut c, &["EXPIRETIME", "k"]), at as i64);
    let pat = now_ms() + 400_000;
    q::<()>(&mut c, &["GETEX", "k", "PXAT", &pat.to_string()]);
    assert_eq!(q::<i64>(&mut c, &["PEXPIRETIME", "k"]), pat as i64);
    assert_eq!(q::<Option<String>>(&mut c, &["GETEX", "k", "PERSIST"]).as_deref(), Some("v"));
    assert_eq!(ttl(&mut c, "k"), -1);
    // A time in the past deletes the key after answering it.
    assert_eq!(q::<Option<String>>(&mut c, &["GETEX", "k", "PXAT", "1"]).as_deref(), Some("v"));
    assert_eq!(get(&mut c, "k"), None);
}

#[test]
fn getex_errors() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "k", "v"]);
    assert_eq!(err(&mut c, &["GETEX", "k", "EX", "0"]), "ERR invalid expire time in 'getex' command");
    assert_eq!(err(&mut c, &["GETEX", "k", "PX", "-1"]), "ERR invalid expire time in 'getex' command");
    assert_eq!(err(&mut c, &["GETEX", "k", "EXAT", "0"]), "ERR invalid expire time in 'getex' command");
    assert_eq!(err(&mut c, &["GETEX", "k", "EX", "9223372036854775807"]), "ERR invalid expire time in 'getex' command");
    assert_eq!(err(&mut c, &["GETEX", "k", "EX", "x"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["GETEX", "k", "PERSIST", "EX", "10"]), SYNTAX);
    assert_eq!(err(&mut c, &["GETEX", "k", "EX", "10", "PX", "10"]), SYNTAX);
    assert_eq!(err(&mut c, &["GETEX", "k", "EX"]), SYNTAX);
    assert_eq!(err(&mut c, &["GETEX", "k", "FOO"]), SYNTAX);
    assert_eq!(err(&mut c, &["GETEX", "k", "KEEPTTL"]), SYNTAX);
    assert_eq!(ttl(&mut c, "k"), -1);
}

// ---------------------------------------------------------------- MGET / MSET / MSETNX

#[test]
fn mget_with_missing_keys() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "a", "1"]);
    q::<()>(&mut c, &["SET", "c", "3"]);
    let v: Vec<Option<String>> = q(&mut c, &["MGET", "a", "b", "c", "a"]);
    assert_eq!(v, vec![Some("1".into()), None, Some("3".into()), Some("1".into())]);
}

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("k:{i}")).collect()
}

#[test]
fn mget_across_shards_keeps_request_order() {
    let (_s, mut c) = start();
    let ks = keys(200);
    for (i, k) in ks.iter().enumerate() {
        if i % 3 != 0 {
            q::<()>(&mut c, &["SET", k, &format!("v:{i}")]);
        }
    }
    let mut args = vec!["MGET"];
    args.extend(ks.iter().map(String::as_str));
    // Twice, and in reverse, so that the order of the answer is checked.
    args.extend(ks.iter().rev().map(String::as_str));
    let got: Vec<Option<String>> = q(&mut c, &args);
    let mut want: Vec<Option<String>> = (0..200).map(|i| (i % 3 != 0).then(|| format!("v:{i}"))).collect();
    want.extend(want.clone().into_iter().rev());
    assert_eq!(got, want);
}

#[test]
fn mset_same_hash_tag_always_works() {
    let (_s, mut c) = start();
    assert_eq!(q::<String>(&mut c, &["MSET", "{user1}:a", "1", "{user1}:b", "2", "{user1}:c", "3"]), "OK");
    let v: Vec<Option<String>> = q(&mut c, &["MGET", "{user1}:a", "{user1}:b", "{user1}:c"]);
    assert_eq!(v, vec![Some("1".into()), Some("2".into()), Some("3".into())]);
    // Later pairs win over earlier ones for the same key.
    assert_eq!(q::<String>(&mut c, &["MSET", "{user1}:a", "x", "{user1}:a", "y"]), "OK");
    assert_eq!(get(&mut c, "{user1}:a").as_deref(), Some("y"));
    // MSET drops TTLs.
    q::<()>(&mut c, &["SET", "{user1}:t", "v", "EX", "100"]);
    q::<()>(&mut c, &["MSET", "{user1}:t", "w", "{user1}:a", "z"]);
    assert_eq!(ttl(&mut c, "{user1}:t"), -1);
}

#[test]
fn mset_across_shards_sets_every_key() {
    let (_s, mut c) = start();
    let ks = keys(200);
    let mut args = vec!["MSET".to_string()];
    for (i, k) in ks.iter().enumerate() {
        args.push(k.clone());
        args.push(format!("v:{i}"));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut exists = vec!["EXISTS"];
    exists.extend(ks.iter().map(String::as_str));
    assert_eq!(q::<String>(&mut c, &refs), "OK");
    assert_eq!(q::<i64>(&mut c, &exists), 200);
    for (i, k) in ks.iter().enumerate() {
        assert_eq!(get(&mut c, k), Some(format!("v:{i}")));
    }
    // An odd argument count is refused before any shard writes.
    assert_eq!(err(&mut c, &["MSET", "k:0", "x", "k:1"]), "ERR wrong number of arguments for 'mset' command");
    assert_eq!(get(&mut c, "k:0").as_deref(), Some("v:0"));
}

#[test]
fn msetnx() {
    let (_s, mut c) = start();
    assert_eq!(q::<i64>(&mut c, &["MSETNX", "{t}a", "1", "{t}b", "2"]), 1);
    assert_eq!(q::<i64>(&mut c, &["MSETNX", "{t}b", "x", "{t}c", "3"]), 0);
    let v: Vec<Option<String>> = q(&mut c, &["MGET", "{t}a", "{t}b", "{t}c"]);
    assert_eq!(v, vec![Some("1".into()), Some("2".into()), None]);
}

#[test]
fn msetnx_across_shards_sets_all_or_nothing() {
    let (_s, mut c) = start();
    let ks = keys(200);
    q::<()>(&mut c, &["SET", "k:199", "old"]);
    let mut args = vec!["MSETNX".to_string()];
    for k in &ks {
        args.push(k.clone());
        args.push("new".into());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut exists = vec!["EXISTS"];
    exists.extend(ks.iter().map(String::as_str));
    assert_eq!(q::<i64>(&mut c, &refs), 0, "MSETNX with one existing key must set nothing");
    assert_eq!(q::<i64>(&mut c, &exists), 1);
    assert_eq!(get(&mut c, "k:199").as_deref(), Some("old"));
    q::<()>(&mut c, &["DEL", "k:199"]);
    assert_eq!(q::<i64>(&mut c, &refs), 1);
    assert_eq!(q::<i64>(&mut c, &exists), 200);
}

#[test]
fn del_and_exists_across_shards() {
    let (_s, mut c) = start();
    let ks = keys(200);
    for k in &ks {
        q::<()>(&mut c, &["SET", k, "v"]);
    }
    let mut exists = vec!["EXISTS"];
    exists.extend(ks.iter().map(String::as_str));
    exists.push("nope");
    exists.push("k:7");
    assert_eq!(q::<i64>(&mut c, &exists), 201);
    let mut del = vec!["DEL"];
    del.extend(ks.iter().step_by(2).map(String::as_str));
    del.push("nope");
    assert_eq!(q::<i64>(&mut c, &del), 100);
    // The odd keys are left, k:7 counted twice.
    assert_eq!(q::<i64>(&mut c, &exists), 101);
    let mut del_all = vec!["DEL"];
    del_all.extend(ks.iter().map(String::as_str));
    assert_eq!(q::<i64>(&mut c, &del_all), 100);
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]), 0);
}

// ---------------------------------------------------------------- INCR family

#[test]
fn incr_decr_incrby_decrby() {
    let (_s, mut c) = start();
    assert_eq!(q::<i64>(&mut c, &["INCR", "n"]), 1);
    assert_eq!(q::<i64>(&mut c, &["INCR", "n"]), 2);
    assert_eq!(q::<i64>(&mut c, &["DECR", "n"]), 1);
    assert_eq!(q::<i64>(&mut c, &["INCRBY", "n", "10"]), 11);
    assert_eq!(q::<i64>(&mut c, &["INCRBY", "n", "-20"]), -9);
    assert_eq!(q::<i64>(&mut c, &["DECRBY", "n", "1"]), -10);
    assert_eq!(q::<i64>(&mut c, &["DECRBY", "n", "-15"]), 5);
    assert_eq!(get(&mut c, "n").as_deref(), Some("5"));
    assert_eq!(q::<i64>(&mut c, &["DECR", "m"]), -1);
    assert_eq!(q::<i64>(&mut c, &["DECRBY", "o", "5"]), -5);
    assert_eq!(q::<i64>(&mut c, &["INCRBY", "p", "0"]), 0);
    // A value set as a string is a number if it looks like one.
    q::<()>(&mut c, &["SET", "s", "-42"]);
    assert_eq!(q::<i64>(&mut c, &["INCR", "s"]), -41);
}

#[test]
fn incr_keeps_ttl() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "n", "1", "EX", "100"]);
    q::<()>(&mut c, &["INCR", "n"]);
    assert!((99..=100).contains(&ttl(&mut c, "n")));
    q::<()>(&mut c, &["INCRBYFLOAT", "n", "1.5"]);
    assert!((99..=100).contains(&ttl(&mut c, "n")));
    assert_eq!(get(&mut c, "n").as_deref(), Some("3.5"));
}

#[test]
fn incr_limits_and_overflow() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "n", "9223372036854775806"]);
    assert_eq!(q::<i64>(&mut c, &["INCR", "n"]), i64::MAX);
    assert_eq!(err(&mut c, &["INCR", "n"]), OVERFLOW);
    assert_eq!(err(&mut c, &["INCRBY", "n", "1"]), OVERFLOW);
    assert_eq!(get(&mut c, "n").as_deref(), Some("9223372036854775807"));
    q::<()>(&mut c, &["SET", "m", "-9223372036854775807"]);
    assert_eq!(q::<i64>(&mut c, &["DECR", "m"]), i64::MIN);
    assert_eq!(err(&mut c, &["DECR", "m"]), OVERFLOW);
    assert_eq!(err(&mut c, &["DECRBY", "m", "1"]), OVERFLOW);
    assert_eq!(err(&mut c, &["INCRBY", "m", "-1"]), OVERFLOW);
    q::<()>(&mut c, &["SET", "o", "1"]);
    assert_eq!(err(&mut c, &["INCRBY", "o", "9223372036854775807"]), OVERFLOW);
    assert_eq!(err(&mut c, &["DECRBY", "o", "-9223372036854775808"]), "ERR decrement would overflow");
    assert_eq!(err(&mut c, &["DECRBY", "o", "9223372036854775808"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["INCRBY", "o", "9223372036854775808"]), NOT_INTEGER);
    assert_eq!(get(&mut c, "o").as_deref(), Some("1"));
}

#[test]
fn incr_on_non_integer_values() {
    let (_s, mut c) = start();
    for v in ["abc", "1.5", " 1", "1 ", "01", "+1", "", "9223372036854775808", "-9223372036854775809", "1e3", "0x10"] {
        q::<()>(&mut c, &["SET", "s", v]);
        assert_eq!(err(&mut c, &["INCR", "s"]), NOT_INTEGER, "INCR on {v:?}");
        assert_eq!(err(&mut c, &["DECRBY", "s", "1"]), NOT_INTEGER, "DECRBY on {v:?}");
        assert_eq!(get(&mut c, "s").as_deref(), Some(v));
    }
    q::<()>(&mut c, &["SET", "n", "5"]);
    for inc in ["abc", "1.0", "", " 1", "1e2"] {
        assert_eq!(err(&mut c, &["INCRBY", "n", inc]), NOT_INTEGER, "INCRBY by {inc:?}");
        assert_eq!(err(&mut c, &["DECRBY", "n", inc]), NOT_INTEGER, "DECRBY by {inc:?}");
    }
    assert_eq!(get(&mut c, "n").as_deref(), Some("5"));
    // Binary junk.
    let () = redis::cmd("SET").arg("b").arg(&b"1\0"[..]).query(&mut c).unwrap();
    assert_eq!(error_text(&redis::cmd("INCR").arg("b").query::<i64>(&mut c).unwrap_err()), NOT_INTEGER);
}

#[test]
fn incrbyfloat() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "f", "10.50"]);
    assert_eq!(q::<String>(&mut c, &["INCRBYFLOAT", "f", "0.1"]), "10.6");
    assert_eq!(q::<String>(&mut c, &["INCRBYFLOAT", "f", "-5"]), "5.6");
    assert_eq!(get(&mut c, "f").as_deref(), Some("5.6"));
    q::<()>(&mut c, &["SET", "g", "5.0e3"]);
    assert_eq!(q::<String>(&mut c, &["INCRBYFLOAT", "g", "2.0e2"]), "5200");
    assert_eq!(get(&mut c, "g").as_deref(), Some("5200"));
    assert_eq!(q::<String>(&mut c, &["INCRBYFLOAT", "new", "3"]), "3");
    assert_eq!(q::<String>(&mut c, &["INCRBYFLOAT", "new", "1.5"]), "4.5");
    q::<()>(&mut c, &["SET", "i", "3"]);
    assert_eq!(q::<String>(&mut c, &["INCRBYFLOAT", "i", "-3"]), "0");
    // The result is stored as text that INCR can read again when it is whole.
    q::<()>(&mut c, &["SET", "w", "1.5"]);
    assert_eq!(q::<String>(&mut c, &["INCRBYFLOAT", "w", "0.5"]), "2");
    assert_eq!(q::<i64>(&mut c, &["INCR", "w"]), 3);
}

#[test]
fn incrbyfloat_errors() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "s", "abc"]);
    assert_eq!(err(&mut c, &["INCRBYFLOAT", "s", "1"]), NOT_FLOAT);
    q::<()>(&mut c, &["SET", "f", "1"]);
    assert_eq!(err(&mut c, &["INCRBYFLOAT", "f", "abc"]), NOT_FLOAT);
    assert_eq!(err(&mut c, &["INCRBYFLOAT", "f", "nan"]), NOT_FLOAT);
    assert_eq!(err(&mut c, &["INCRBYFLOAT", "f", ""]), NOT_FLOAT);
    assert_eq!(err(&mut c, &["INCRBYFLOAT", "f", "inf"]), "ERR increment would produce NaN or Infinity");
    assert_eq!(err(&mut c, &["INCRBYFLOAT", "f", "-inf"]), "ERR increment would produce NaN or Infinity");
    assert_eq!(get(&mut c, "f").as_deref(), Some("1"));
    q::<()>(&mut c, &["SET", "e", ""]);
    assert_eq!(err(&mut c, &["INCRBYFLOAT", "e", "1"]), NOT_FLOAT);
}

// ---------------------------------------------------------------- APPEND / STRLEN

#[test]
fn append_and_strlen() {
    let (_s, mut c) = start();
    assert_eq!(q::<i64>(&mut c, &["STRLEN", "k"]), 0);
    assert_eq!(q::<i64>(&mut c, &["APPEND", "k", "Hello"]), 5);
    assert_eq!(q::<i64>(&mut c, &["APPEND", "k", " World"]), 11);
    assert_eq!(q::<i64>(&mut c, &["APPEND", "k", ""]), 11);
    assert_eq!(get(&mut c, "k").as_deref(), Some("Hello World"));
    assert_eq!(q::<i64>(&mut c, &["STRLEN", "k"]), 11);
    // APPEND of nothing to a missing key creates an empty string.
    assert_eq!(q::<i64>(&mut c, &["APPEND", "e", ""]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "e"]), 1);
    // Binary appends, and appends to a number.
    assert_eq!(redis::cmd("APPEND").arg("b").arg(&b"\0\r\n"[..]).query::<i64>(&mut c).unwrap(), 3);
    assert_eq!(redis::cmd("APPEND").arg("b").arg(&b"\xff\0"[..]).query::<i64>(&mut c).unwrap(), 5);
    assert_eq!(get_bytes(&mut c, b"b"), Some(b"\0\r\n\xff\0".to_vec()));
    q::<()>(&mut c, &["SET", "n", "12"]);
    assert_eq!(q::<i64>(&mut c, &["APPEND", "n", "3"]), 3);
    assert_eq!(q::<i64>(&mut c, &["INCR", "n"]), 124);
    assert_eq!(q::<i64>(&mut c, &["STRLEN", "n"]), 3);
    // APPEND keeps the TTL.
    q::<()>(&mut c, &["SET", "t", "a", "EX", "100"]);
    q::<()>(&mut c, &["APPEND", "t", "b"]);
    assert!((99..=100).contains(&ttl(&mut c, "t")));
}

// ---------------------------------------------------------------- GETRANGE / SETRANGE

#[test]
fn getrange() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "k", "This is a string"]);
    let r = |c: &mut Connection, a: &str, b: &str| q::<String>(c, &["GETRANGE", "k", a, b]);
    assert_eq!(r(&mut c, "0", "3"), "This");
    assert_eq!(r(&mut c, "-3", "-1"), "ing");
    assert_eq!(r(&mut c, "0", "-1"), "This is a string");
    assert_eq!(r(&mut c, "10", "100"), "string");
    assert_eq!(r(&mut c, "-100", "3"), "This");
    assert_eq!(r(&mut c, "-100", "-100"), "T");
    assert_eq!(r(&mut c, "5", "3"), "");
    assert_eq!(r(&mut c, "16", "20"), "");
    assert_eq!(r(&mut c, "100", "200"), "");
    assert_eq!(r(&mut c, "-1", "-2"), "");
    assert_eq!(r(&mut c, "15", "15"), "g");
    assert_eq!(r(&mut c, "0", "0"), "T");
    assert_eq!(q::<String>(&mut c, &["GETRANGE", "missing", "0", "-1"]), "");
    assert_eq!(err(&mut c, &["GETRANGE", "k", "a", "1"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["GETRANGE", "k", "0", "1.5"]), NOT_INTEGER);
    q::<()>(&mut c, &["SET", "e", ""]);
    assert_eq!(q::<String>(&mut c, &["GETRANGE", "e", "0", "-1"]), "");
    // Integers are ranged over their text.
    q::<()>(&mut c, &["SET", "n", "12345"]);
    assert_eq!(q::<String>(&mut c, &["GETRANGE", "n", "1", "2"]), "23");
}

#[test]
fn setrange() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "k", "Hello World"]);
    assert_eq!(q::<i64>(&mut c, &["SETRANGE", "k", "6", "Redis"]), 11);
    assert_eq!(get(&mut c, "k").as_deref(), Some("Hello Redis"));
    assert_eq!(q::<i64>(&mut c, &["SETRANGE", "k", "11", "!!"]), 13);
    assert_eq!(get(&mut c, "k").as_deref(), Some("Hello Redis!!"));
    // Past the end pads with zero bytes.
    assert_eq!(q::<i64>(&mut c, &["SETRANGE", "z", "5", "x"]), 6);
    assert_eq!(get_bytes(&mut c, b"z"), Some(b"\0\0\0\0\0x".to_vec()));
    assert_eq!(q::<i64>(&mut c, &["SETRANGE", "k", "15", "y"]), 16);
    assert_eq!(get_bytes(&mut c, b"k"), Some(b"Hello Redis!!\0\0y".to_vec()));
    // An empty value changes nothing and creates nothing.
    assert_eq!(q::<i64>(&mut c, &["SETRANGE", "k", "100", ""]), 16);
    assert_eq!(q::<i64>(&mut c, &["STRLEN", "k"]), 16);
    assert_eq!(q::<i64>(&mut c, &["SETRANGE", "none", "5", ""]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "none"]), 0);
    // Errors.
    assert_eq!(err(&mut c, &["SETRANGE", "k", "-1", "x"]), "ERR offset is out of range");
    assert_eq!(err(&mut c, &["SETRANGE", "k", "abc", "x"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["SETRANGE", "k", "536870912", "x"]), "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    assert_eq!(err(&mut c, &["SETRANGE", "new", "536870912", "x"]), "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "new"]), 0);
    // 512mb is also the most proto-max-bulk-len may be: replay refuses longer strings.
    assert!(err(&mut c, &["CONFIG", "SET", "proto-max-bulk-len", "1gb"]).contains("at most 512mb"));
    // Binary overwrite, and SETRANGE keeps the TTL.
    q::<()>(&mut c, &["SET", "t", "abcdef", "EX", "100"]);
    assert_eq!(redis::cmd("SETRANGE").arg("t").arg(2).arg(&b"\0\r\n"[..]).query::<i64>(&mut c).unwrap(), 6);
    assert_eq!(get_bytes(&mut c, b"t"), Some(b"ab\0\r\nf".to_vec()));
    assert!((99..=100).contains(&ttl(&mut c, "t")));
}

// ---------------------------------------------------------------- arity

#[test]
fn wrong_number_of_arguments() {
    let (_s, mut c) = start();
    let cases: &[(&[&str], &str)] = &[
        (&["GET"], "get"),
        (&["GET", "a", "b"], "get"),
        (&["get"], "get"),
        (&["SET", "a"], "set"),
        (&["SET"], "set"),
        (&["SETNX", "a"], "setnx"),
        (&["SETNX", "a", "b", "c"], "setnx"),
        (&["SETEX", "a", "10"], "setex"),
        (&["PSETEX", "a", "10"], "psetex"),
        (&["GETSET", "a"], "getset"),
        (&["GETDEL"], "getdel"),
        (&["GETDEL", "a", "b"], "getdel"),
        (&["GETEX"], "getex"),
        (&["MGET"], "mget"),
        (&["MSET"], "mset"),
        (&["MSET", "a"], "mset"),
        (&["MSET", "a", "b", "c"], "mset"),
        (&["MSETNX", "a"], "msetnx"),
        (&["MSETNX", "a", "b", "c"], "msetnx"),
        (&["INCR"], "incr"),
        (&["INCR", "a", "b"], "incr"),
        (&["DECR"], "decr"),
        (&["INCRBY", "a"], "incrby"),
        (&["DECRBY", "a"], "decrby"),
        (&["INCRBYFLOAT", "a"], "incrbyfloat"),
        (&["APPEND", "a"], "append"),
        (&["STRLEN"], "strlen"),
        (&["STRLEN", "a", "b"], "strlen"),
        (&["GETRANGE", "a", "0"], "getrange"),
        (&["GETRANGE", "a", "0", "1", "2"], "getrange"),
        (&["SETRANGE", "a", "0"], "setrange"),
    ];
    for (args, name) in cases {
        assert_eq!(err(&mut c, args), format!("ERR wrong number of arguments for '{name}' command"), "{args:?}");
    }
    // None of them wrote anything.
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]), 0);
}

#[test]
fn pipelined_errors_do_not_break_the_connection() {
    let (_s, mut c) = start();
    let mut p = redis::pipe();
    p.cmd("SET").arg("a").arg("x").cmd("INCR").arg("a").cmd("GET").arg("a").cmd("SET").arg("b");
    let r = c.req_packed_commands(&p.get_packed_pipeline(), 0, 4).unwrap();
    assert_eq!(r.len(), 4);
    assert!(matches!(r[1], Value::ServerError(_)), "{:?}", r[1]);
    assert_eq!(r[2], Value::BulkString(b"x".to_vec()));
    assert!(matches!(r[3], Value::ServerError(_)), "{:?}", r[3]);
    assert_eq!(get(&mut c, "a").as_deref(), Some("x"));
}
