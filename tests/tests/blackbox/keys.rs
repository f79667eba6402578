//! Generic key commands, checked against what Redis 7.4 answers: DEL, UNLINK,
//! EXISTS, TOUCH, TYPE, the EXPIRE family and TTLs, PERSIST, KEYS, SCAN,
//! RANDOMKEY, RENAME, RENAMENX, COPY, MOVE, SWAPDB, DBSIZE, FLUSHDB,
//! FLUSHALL, SELECT, OBJECT and MEMORY USAGE, and expiry (lazy and active).

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::Connection;
use strand_tests::commands::{err, q, start};

fn set(c: &mut Connection, key: &str, value: &str) {
    q::<()>(c, &["SET", key, value]);
}

fn get(c: &mut Connection, key: &str) -> Option<String> {
    q(c, &["GET", key])
}

fn ttl(c: &mut Connection, key: &str) -> i64 {
    q(c, &["TTL", key])
}

fn pttl(c: &mut Connection, key: &str) -> i64 {
    q(c, &["PTTL", key])
}

fn exists(c: &mut Connection, key: &str) -> bool {
    q::<i64>(c, &["EXISTS", key]) == 1
}

fn dbsize(c: &mut Connection) -> i64 {
    q(c, &["DBSIZE"])
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Runs `name key...` with many keys.
fn multi(c: &mut Connection, name: &str, keys: &[String]) -> i64 {
    let mut args = vec![name];
    args.extend(keys.iter().map(String::as_str));
    q(c, &args)
}

fn many(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}:{i}")).collect()
}

fn set_all(c: &mut Connection, keys: &[String]) {
    let mut p = redis::pipe();
    for k in keys {
        p.cmd("SET").arg(k).arg("v").ignore();
    }
    let () = p.query(c).unwrap();
}

/// A full SCAN with extra arguments; returns every key seen (with repeats) and the number of calls.
fn scan_all(c: &mut Connection, extra: &[&str]) -> (Vec<String>, usize) {
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    let mut calls = 0;
    loop {
        let mut args = vec!["SCAN", cursor.as_str()];
        args.extend_from_slice(extra);
        let (next, keys): (String, Vec<String>) = q(c, &args);
        seen.extend(keys);
        calls += 1;
        assert!(calls < 100_000, "SCAN never ended");
        if next == "0" {
            return (seen, calls);
        }
        cursor = next;
    }
}

const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";
const DB_INDEX: &str = "ERR DB index is out of range";

// ---------------------------------------------------------------- DEL / UNLINK / EXISTS / TOUCH / TYPE

#[test]
fn del_unlink_exists_touch() {
    let (_s, mut c) = start();
    set(&mut c, "a", "1");
    set(&mut c, "b", "2");
    set(&mut c, "c", "3");
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "a", "b", "nope"]), 2);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "a", "a", "a"]), 3);
    assert_eq!(q::<i64>(&mut c, &["TOUCH", "a", "b", "nope"]), 2);
    assert_eq!(q::<i64>(&mut c, &["DEL", "a", "nope"]), 1);
    assert_eq!(q::<i64>(&mut c, &["DEL", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["UNLINK", "b", "c", "nope"]), 2);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "a", "b", "c"]), 0);
    assert_eq!(dbsize(&mut c), 0);
}

#[test]
fn del_exists_touch_across_shards() {
    let (_s, mut c) = start();
    let keys = many("k", 200);
    set_all(&mut c, &keys);
    assert_eq!(dbsize(&mut c), 200);
    assert_eq!(multi(&mut c, "EXISTS", &keys), 200);
    assert_eq!(multi(&mut c, "TOUCH", &keys), 200);
    let half: Vec<String> = keys.iter().step_by(2).cloned().collect();
    assert_eq!(multi(&mut c, "DEL", &half), 100);
    assert_eq!(multi(&mut c, "EXISTS", &keys), 100);
    assert_eq!(multi(&mut c, "UNLINK", &keys), 100);
    assert_eq!(dbsize(&mut c), 0);
}

#[test]
fn type_of_keys() {
    let (_s, mut c) = start();
    set(&mut c, "s", "v");
    assert_eq!(q::<String>(&mut c, &["TYPE", "s"]), "string");
    assert_eq!(q::<String>(&mut c, &["TYPE", "nope"]), "none");
}

// ---------------------------------------------------------------- EXPIRE family / TTL

#[test]
fn ttl_and_pttl_of_missing_and_persistent_keys() {
    let (_s, mut c) = start();
    assert_eq!(ttl(&mut c, "nope"), -2);
    assert_eq!(pttl(&mut c, "nope"), -2);
    assert_eq!(q::<i64>(&mut c, &["EXPIRETIME", "nope"]), -2);
    assert_eq!(q::<i64>(&mut c, &["PEXPIRETIME", "nope"]), -2);
    set(&mut c, "k", "v");
    assert_eq!(ttl(&mut c, "k"), -1);
    assert_eq!(pttl(&mut c, "k"), -1);
    assert_eq!(q::<i64>(&mut c, &["EXPIRETIME", "k"]), -1);
    assert_eq!(q::<i64>(&mut c, &["PEXPIRETIME", "k"]), -1);
}

#[test]
fn expire_pexpire_expireat_pexpireat() {
    let (_s, mut c) = start();
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "nope", "10"]), 0);
    assert_eq!(q::<i64>(&mut c, &["PEXPIRE", "nope", "10"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXPIREAT", "nope", "9999999999"]), 0);
    assert_eq!(q::<i64>(&mut c, &["PEXPIREAT", "nope", "9999999999999"]), 0);
    set(&mut c, "k", "v");
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "100"]), 1);
    assert!((99..=100).contains(&ttl(&mut c, "k")));
    assert_eq!(q::<i64>(&mut c, &["PEXPIRE", "k", "200000"]), 1);
    let p = pttl(&mut c, "k");
    assert!((198_000..=200_000).contains(&p), "pttl {p}");
    assert!((198..=200).contains(&ttl(&mut c, "k")));
    let at = now_ms() / 1000 + 300;
    assert_eq!(q::<i64>(&mut c, &["EXPIREAT", "k", &at.to_string()]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXPIRETIME", "k"]), at as i64);
    assert_eq!(q::<i64>(&mut c, &["PEXPIRETIME", "k"]), at as i64 * 1000);
    assert!((298..=300).contains(&ttl(&mut c, "k")));
    let pat = now_ms() + 400_123;
    assert_eq!(q::<i64>(&mut c, &["PEXPIREAT", "k", &pat.to_string()]), 1);
    assert_eq!(q::<i64>(&mut c, &["PEXPIRETIME", "k"]), pat as i64);
    // Redis rounds to the nearest second: (ms + 500) / 1000.
    assert_eq!(q::<i64>(&mut c, &["EXPIRETIME", "k"]), ((pat + 500) / 1000) as i64);
    // The value is untouched.
    assert_eq!(get(&mut c, "k").as_deref(), Some("v"));
}

#[test]
fn expire_in_the_past_deletes() {
    let (_s, mut c) = start();
    for args in [
        &["EXPIRE", "k", "0"][..],
        &["EXPIRE", "k", "-10"],
        &["PEXPIRE", "k", "-1"],
        &["EXPIREAT", "k", "1"],
        &["PEXPIREAT", "k", "1000"],
        &["PEXPIREAT", "k", "0"],
    ] {
        set(&mut c, "k", "v");
        assert_eq!(q::<i64>(&mut c, args), 1, "{args:?}");
        assert!(!exists(&mut c, "k"), "{args:?} left the key");
        assert_eq!(get(&mut c, "k"), None);
    }
}

#[test]
fn expire_nx_xx_gt_lt() {
    let (_s, mut c) = start();
    set(&mut c, "k", "v");
    // No TTL yet: XX and GT fail (no TTL counts as infinite), NX and LT succeed.
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "100", "XX"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "100", "GT"]), 0);
    assert_eq!(ttl(&mut c, "k"), -1);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "100", "LT"]), 1);
    assert!((99..=100).contains(&ttl(&mut c, "k")));
    assert_eq!(q::<i64>(&mut c, &["PERSIST", "k"]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "100", "NX"]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "500", "NX"]), 0);
    assert!((99..=100).contains(&ttl(&mut c, "k")));
    // With a TTL of 100.
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "50", "GT"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "200", "GT"]), 1);
    assert!((199..=200).contains(&ttl(&mut c, "k")));
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "300", "LT"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "150", "LT"]), 1);
    assert!((149..=150).contains(&ttl(&mut c, "k")));
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "120", "XX"]), 1);
    assert!((119..=120).contains(&ttl(&mut c, "k")));
    // XX with GT/LT together, options in any case, repeated options.
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "130", "xx", "gt"]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "110", "XX", "LT"]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k", "100", "XX", "XX"]), 1);
    assert!((99..=100).contains(&ttl(&mut c, "k")));
    // The same for the other three commands.
    assert_eq!(q::<i64>(&mut c, &["PEXPIRE", "k", "500000", "GT"]), 1);
    assert_eq!(q::<i64>(&mut c, &["PEXPIRE", "k", "600000", "LT"]), 0);
    assert_eq!(q::<i64>(&mut c, &["PEXPIRE", "k", "1000", "NX"]), 0);
    let far = (now_ms() / 1000 + 10_000).to_string();
    let near = (now_ms() / 1000 + 10).to_string();
    assert_eq!(q::<i64>(&mut c, &["EXPIREAT", "k", &far, "GT"]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXPIREAT", "k", &far, "NX"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXPIREAT", "k", &near, "LT"]), 1);
    assert!((8..=10).contains(&ttl(&mut c, "k")));
    let pfar = (now_ms() + 20_000_000).to_string();
    assert_eq!(q::<i64>(&mut c, &["PEXPIREAT", "k", &pfar, "LT"]), 0);
    assert_eq!(q::<i64>(&mut c, &["PEXPIREAT", "k", &pfar, "XX"]), 1);
    assert_eq!(q::<i64>(&mut c, &["PEXPIRETIME", "k"]), pfar.parse::<i64>().unwrap());
}

#[test]
fn expire_errors() {
    let (_s, mut c) = start();
    set(&mut c, "k", "v");
    let incompatible = "ERR NX and XX, GT or LT options at the same time are not compatible";
    assert_eq!(err(&mut c, &["EXPIRE", "k", "10", "NX", "XX"]), incompatible);
    assert_eq!(err(&mut c, &["EXPIRE", "k", "10", "NX", "GT"]), incompatible);
    assert_eq!(err(&mut c, &["PEXPIRE", "k", "10", "LT", "NX"]), incompatible);
    assert_eq!(err(&mut c, &["EXPIRE", "k", "10", "GT", "LT"]), "ERR GT and LT options at the same time are not compatible");
    assert_eq!(err(&mut c, &["EXPIRE", "k", "10", "FOO"]), "ERR Unsupported option FOO");
    assert_eq!(err(&mut c, &["EXPIREAT", "k", "10", "bar"]), "ERR Unsupported option bar");
    assert_eq!(err(&mut c, &["EXPIRE", "k", "abc"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["PEXPIRE", "k", "1.5"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["EXPIRE", "k", "9223372036854775807"]), "ERR invalid expire time in 'expire' command");
    assert_eq!(err(&mut c, &["PEXPIRE", "k", "9223372036854775807"]), "ERR invalid expire time in 'pexpire' command");
    assert_eq!(err(&mut c, &["EXPIREAT", "k", "9223372036854775807"]), "ERR invalid expire time in 'expireat' command");
    assert_eq!(err(&mut c, &["EXPIRE", "k", "-9223372036854775808"]), "ERR invalid expire time in 'expire' command");
    assert_eq!(ttl(&mut c, "k"), -1);
    assert!(exists(&mut c, "k"));
}

#[test]
fn persist() {
    let (_s, mut c) = start();
    assert_eq!(q::<i64>(&mut c, &["PERSIST", "nope"]), 0);
    set(&mut c, "k", "v");
    assert_eq!(q::<i64>(&mut c, &["PERSIST", "k"]), 0);
    q::<()>(&mut c, &["EXPIRE", "k", "100"]);
    assert_eq!(q::<i64>(&mut c, &["PERSIST", "k"]), 1);
    assert_eq!(ttl(&mut c, "k"), -1);
    assert_eq!(q::<i64>(&mut c, &["PERSIST", "k"]), 0);
}

#[test]
fn expired_key_is_gone_when_read() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["SET", "k", "v", "PX", "100"]);
    q::<()>(&mut c, &["SET", "t", "v", "PX", "100"]);
    q::<()>(&mut c, &["SET", "l", "v", "PX", "100"]);
    assert_eq!(get(&mut c, "k").as_deref(), Some("v"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(&mut c, "k"), None);
    assert!(!exists(&mut c, "t"));
    assert_eq!(ttl(&mut c, "l"), -2);
    assert_eq!(q::<String>(&mut c, &["TYPE", "l"]), "none");
    // An expired key does not block NX.
    assert_eq!(q::<Option<String>>(&mut c, &["SET", "k", "w", "NX"]).as_deref(), Some("OK"));
}

#[test]
fn expired_keys_are_removed_actively() {
    let (_s, mut c) = start();
    let keys = many("e", 100);
    let mut p = redis::pipe();
    for k in &keys {
        p.cmd("SET").arg(k).arg("v").arg("PX").arg(100).ignore();
    }
    p.cmd("SET").arg("stay").arg("v").ignore();
    let () = p.query(&mut c).unwrap();
    assert_eq!(dbsize(&mut c), 101);
    // Never read the keys: only active expiry can remove them.
    let deadline = Instant::now() + Duration::from_millis(2500);
    loop {
        let n = dbsize(&mut c);
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "DBSIZE still {n} long after every TTL passed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(exists(&mut c, "stay"));
}

// ---------------------------------------------------------------- KEYS / SCAN / RANDOMKEY

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn keys_patterns() {
    let (_s, mut c) = start();
    for k in ["hello", "hallo", "hxllo", "hllo", "heeello", "h*llo", "other"] {
        set(&mut c, k, "1");
    }
    let keys = |c: &mut Connection, pat: &str| sorted(q::<Vec<String>>(c, &["KEYS", pat]));
    assert_eq!(keys(&mut c, "h?llo"), ["h*llo", "hallo", "hello", "hxllo"]);
    assert_eq!(keys(&mut c, "h*llo"), ["h*llo", "hallo", "heeello", "hello", "hllo", "hxllo"]);
    assert_eq!(keys(&mut c, "h[ae]llo"), ["hallo", "hello"]);
    assert_eq!(keys(&mut c, "h[^e]llo"), ["h*llo", "hallo", "hxllo"]);
    assert_eq!(keys(&mut c, "h[a-b]llo"), ["hallo"]);
    assert_eq!(keys(&mut c, "h\\*llo"), ["h*llo"]);
    assert_eq!(keys(&mut c, "*"), ["h*llo", "hallo", "heeello", "hello", "hllo", "hxllo", "other"]);
    assert_eq!(keys(&mut c, "nomatch*"), Vec::<String>::new());
    assert_eq!(keys(&mut c, "other"), ["other"]);
}

#[test]
fn keys_across_shards() {
    let (_s, mut c) = start();
    let ks = many("k", 200);
    set_all(&mut c, &ks);
    set(&mut c, "x", "1");
    assert_eq!(sorted(q(&mut c, &["KEYS", "k:*"])), sorted(ks.clone()));
    assert_eq!(q::<Vec<String>>(&mut c, &["KEYS", "*"]).len(), 201);
}

#[test]
fn scan_full_iteration_over_1000_keys() {
    let (_s, mut c) = start();
    let keys = many("s", 1000);
    set_all(&mut c, &keys);
    let (seen, calls) = scan_all(&mut c, &[]);
    let got: HashSet<String> = seen.into_iter().collect();
    assert_eq!(got, keys.iter().cloned().collect::<HashSet<_>>());
    assert!(calls > 1, "a default SCAN (COUNT 10) returned 1000 keys in one call");
}

#[test]
fn scan_with_count() {
    let (_s, mut c) = start();
    let keys = many("s", 300);
    set_all(&mut c, &keys);
    for count in ["1", "7", "100", "5000"] {
        let (seen, _) = scan_all(&mut c, &["COUNT", count]);
        let got: HashSet<String> = seen.into_iter().collect();
        assert_eq!(got.len(), 300, "COUNT {count}");
    }
    let (_, calls_small) = scan_all(&mut c, &["COUNT", "5"]);
    let (_, calls_big) = scan_all(&mut c, &["COUNT", "1000"]);
    assert!(calls_big < calls_small, "COUNT 1000 took {calls_big} calls, COUNT 5 {calls_small}");
}

#[test]
fn scan_with_match_and_type() {
    let (_s, mut c) = start();
    let m = many("m", 150);
    let o = many("o", 150);
    set_all(&mut c, &m);
    set_all(&mut c, &o);
    let (seen, _) = scan_all(&mut c, &["MATCH", "m:*"]);
    let got: HashSet<String> = seen.into_iter().collect();
    assert_eq!(got, m.iter().cloned().collect::<HashSet<_>>());
    let (seen, _) = scan_all(&mut c, &["MATCH", "o:1?", "COUNT", "50"]);
    assert_eq!(sorted(seen.into_iter().collect::<HashSet<_>>().into_iter().collect()), sorted(many("o", 20)[10..].to_vec()));
    let (seen, _) = scan_all(&mut c, &["TYPE", "string"]);
    assert_eq!(seen.into_iter().collect::<HashSet<_>>().len(), 300);
    let (seen, _) = scan_all(&mut c, &["TYPE", "list"]);
    assert!(seen.is_empty(), "TYPE list returned {seen:?}");
    let (seen, _) = scan_all(&mut c, &["MATCH", "m:1*", "TYPE", "STRING", "COUNT", "20"]);
    assert_eq!(seen.into_iter().collect::<HashSet<_>>().len(), 1 + 10 + 50);
}

#[test]
fn scan_while_keys_change() {
    let (_s, mut c) = start();
    let stable = many("stable", 500);
    let doomed = many("doomed", 300);
    set_all(&mut c, &stable);
    set_all(&mut c, &doomed);
    let mut cursor = "0".to_string();
    let mut seen = HashSet::new();
    let mut calls = 0;
    loop {
        let (next, keys): (String, Vec<String>) = q(&mut c, &["SCAN", &cursor, "COUNT", "20"]);
        seen.extend(keys);
        calls += 1;
        // Change the keyspace while the scan runs: add keys, remove keys.
        if calls == 3 {
            multi(&mut c, "DEL", &doomed);
            set_all(&mut c, &many("added", 300));
        }
        if next == "0" {
            break;
        }
        cursor = next;
        assert!(calls < 10_000, "SCAN never ended");
    }
    for k in &stable {
        assert!(seen.contains(k), "{k} was there for the whole scan but SCAN never returned it");
    }
    for k in &seen {
        assert!(k.starts_with("stable:") || k.starts_with("doomed:") || k.starts_with("added:"), "SCAN returned unknown key {k}");
    }
}

#[test]
fn scan_errors() {
    let (_s, mut c) = start();
    assert_eq!(err(&mut c, &["SCAN", "abc"]), "ERR invalid cursor");
    assert_eq!(err(&mut c, &["SCAN", "18446744073709551616"]), "ERR invalid cursor");
    assert_eq!(err(&mut c, &["SCAN", "0", "COUNT", "0"]), SYNTAX);
    assert_eq!(err(&mut c, &["SCAN", "0", "COUNT", "abc"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["SCAN", "0", "COUNT"]), SYNTAX);
    assert_eq!(err(&mut c, &["SCAN", "0", "MATCH"]), SYNTAX);
    assert_eq!(err(&mut c, &["SCAN", "0", "TYPE"]), SYNTAX);
    assert_eq!(err(&mut c, &["SCAN", "0", "FOO", "bar"]), SYNTAX);
    // An empty database: no keys, and the iteration ends (SCAN may take a
    // call per shard: a non-zero cursor with no keys is allowed).
    let (keys, calls) = scan_all(&mut c, &[]);
    assert!(keys.is_empty(), "{keys:?}");
    assert!(calls <= 16, "{calls} calls to scan an empty database");
}

#[test]
fn randomkey() {
    let (_s, mut c) = start();
    assert_eq!(q::<Option<String>>(&mut c, &["RANDOMKEY"]), None);
    set(&mut c, "only", "v");
    assert_eq!(q::<Option<String>>(&mut c, &["RANDOMKEY"]).as_deref(), Some("only"));
    let keys = many("r", 200);
    set_all(&mut c, &keys);
    let all: HashSet<String> = keys.into_iter().chain(["only".to_string()]).collect();
    let mut seen = HashSet::new();
    for _ in 0..100 {
        let k: String = q(&mut c, &["RANDOMKEY"]);
        assert!(all.contains(&k), "RANDOMKEY returned {k}");
        seen.insert(k);
    }
    assert!(seen.len() > 10, "RANDOMKEY is not very random: {} distinct of 100", seen.len());
}

// ---------------------------------------------------------------- RENAME / RENAMENX / COPY / MOVE

#[test]
fn rename_and_renamenx() {
    let (_s, mut c) = start();
    assert_eq!(err(&mut c, &["RENAME", "{r}nope", "{r}b"]), "ERR no such key");
    assert_eq!(err(&mut c, &["RENAMENX", "{r}nope", "{r}b"]), "ERR no such key");
    q::<()>(&mut c, &["SET", "{r}a", "1", "EX", "100"]);
    assert_eq!(q::<String>(&mut c, &["RENAME", "{r}a", "{r}b"]), "OK");
    assert!(!exists(&mut c, "{r}a"));
    assert_eq!(get(&mut c, "{r}b").as_deref(), Some("1"));
    assert!((99..=100).contains(&ttl(&mut c, "{r}b")), "RENAME keeps the TTL");
    // Overwrites the destination, and its TTL.
    set(&mut c, "{r}c", "3");
    assert_eq!(q::<String>(&mut c, &["RENAME", "{r}c", "{r}b"]), "OK");
    assert_eq!(get(&mut c, "{r}b").as_deref(), Some("3"));
    assert_eq!(ttl(&mut c, "{r}b"), -1);
    // Onto itself.
    assert_eq!(q::<String>(&mut c, &["RENAME", "{r}b", "{r}b"]), "OK");
    assert_eq!(get(&mut c, "{r}b").as_deref(), Some("3"));
    assert_eq!(q::<i64>(&mut c, &["RENAMENX", "{r}b", "{r}b"]), 0);
    // RENAMENX.
    set(&mut c, "{r}d", "4");
    assert_eq!(q::<i64>(&mut c, &["RENAMENX", "{r}b", "{r}d"]), 0);
    assert_eq!(get(&mut c, "{r}b").as_deref(), Some("3"));
    assert_eq!(q::<i64>(&mut c, &["RENAMENX", "{r}b", "{r}e"]), 1);
    assert!(!exists(&mut c, "{r}b"));
    assert_eq!(get(&mut c, "{r}e").as_deref(), Some("3"));
}

#[test]
fn rename_across_shards_moves_the_value_and_its_ttl() {
    let (_s, mut c) = start();
    let map = strand_engine::slot::SlotMap::new(2);
    let mut apart = 0;
    for i in 0..20 {
        let src = format!("src:{i}");
        let dst = format!("dst:{i}");
        apart += usize::from(map.shard_of(src.as_bytes()) != map.shard_of(dst.as_bytes()));
        q::<()>(&mut c, &["SET", &src, &format!("v{i}"), "EX", "100"]);
        assert_eq!(q::<String>(&mut c, &["RENAME", &src, &dst]), "OK");
        assert!(!exists(&mut c, &src));
        assert_eq!(get(&mut c, &dst), Some(format!("v{i}")));
        assert!((99..=100).contains(&ttl(&mut c, &dst)), "RENAME {src} {dst} keeps the TTL");
    }
    assert!(apart >= 5, "only {apart} of the pairs live on different shards");
}

#[test]
fn copy() {
    let (_s, mut c) = start();
    assert_eq!(q::<i64>(&mut c, &["COPY", "{c}nope", "{c}b"]), 0);
    q::<()>(&mut c, &["SET", "{c}a", "1", "EX", "100"]);
    assert_eq!(q::<i64>(&mut c, &["COPY", "{c}a", "{c}b"]), 1);
    assert_eq!(get(&mut c, "{c}a").as_deref(), Some("1"));
    assert_eq!(get(&mut c, "{c}b").as_deref(), Some("1"));
    assert!((99..=100).contains(&ttl(&mut c, "{c}b")), "COPY keeps the TTL");
    // The copy is independent of the source.
    q::<()>(&mut c, &["APPEND", "{c}b", "x"]);
    assert_eq!(get(&mut c, "{c}a").as_deref(), Some("1"));
    // Existing destination: 0 unless REPLACE.
    set(&mut c, "{c}a", "2");
    assert_eq!(q::<i64>(&mut c, &["COPY", "{c}a", "{c}b"]), 0);
    assert_eq!(get(&mut c, "{c}b").as_deref(), Some("1x"));
    assert_eq!(q::<i64>(&mut c, &["COPY", "{c}a", "{c}b", "REPLACE"]), 1);
    assert_eq!(get(&mut c, "{c}b").as_deref(), Some("2"));
    assert_eq!(ttl(&mut c, "{c}b"), -1);
    // To another database.
    assert_eq!(q::<i64>(&mut c, &["COPY", "{c}a", "{c}a", "DB", "3"]), 1);
    assert_eq!(q::<i64>(&mut c, &["COPY", "{c}a", "{c}a", "DB", "3"]), 0);
    assert_eq!(q::<i64>(&mut c, &["COPY", "{c}a", "{c}a", "db", "3", "replace"]), 1);
    assert_eq!(q::<i64>(&mut c, &["COPY", "{c}a", "{c}z", "REPLACE", "DB", "3"]), 1);
    q::<()>(&mut c, &["SELECT", "3"]);
    assert_eq!(get(&mut c, "{c}a").as_deref(), Some("2"));
    assert_eq!(get(&mut c, "{c}z").as_deref(), Some("2"));
    assert_eq!(dbsize(&mut c), 2);
    q::<()>(&mut c, &["SELECT", "0"]);
    // Errors.
    assert_eq!(err(&mut c, &["COPY", "{c}a", "{c}a"]), "ERR source and destination objects are the same");
    assert_eq!(err(&mut c, &["COPY", "{c}a", "{c}a", "DB", "0"]), "ERR source and destination objects are the same");
    assert_eq!(err(&mut c, &["COPY", "{c}a", "{c}b", "DB", "16"]), DB_INDEX);
    assert_eq!(err(&mut c, &["COPY", "{c}a", "{c}b", "DB", "-1"]), DB_INDEX);
    assert_eq!(err(&mut c, &["COPY", "{c}a", "{c}b", "DB", "abc"]), NOT_INTEGER);
    assert_eq!(err(&mut c, &["COPY", "{c}a", "{c}b", "FOO"]), SYNTAX);
    assert_eq!(err(&mut c, &["COPY", "{c}a", "{c}b", "DB"]), SYNTAX);
}

#[test]
fn copy_across_shards_copies() {
    let (_s, mut c) = start();
    for i in 0..20 {
        let src = format!("src:{i}");
        let dst = format!("dst:{i}");
        set(&mut c, &src, &format!("v{i}"));
        assert_eq!(q::<i64>(&mut c, &["COPY", &src, &dst]), 1, "COPY {src} {dst}");
        assert_eq!(get(&mut c, &dst), Some(format!("v{i}")));
        assert_eq!(get(&mut c, &src), Some(format!("v{i}")));
    }
}

#[test]
fn move_between_databases() {
    let (_s, mut c) = start();
    assert_eq!(q::<i64>(&mut c, &["MOVE", "nope", "1"]), 0);
    q::<()>(&mut c, &["SET", "k", "v", "EX", "100"]);
    assert_eq!(q::<i64>(&mut c, &["MOVE", "k", "1"]), 1);
    assert!(!exists(&mut c, "k"));
    q::<()>(&mut c, &["SELECT", "1"]);
    assert_eq!(get(&mut c, "k").as_deref(), Some("v"));
    assert!((99..=100).contains(&ttl(&mut c, "k")), "MOVE keeps the TTL");
    // Back to 0, where a key with the same name now exists: nothing moves.
    let mut c0 = _s.client();
    set(&mut c0, "k", "other");
    assert_eq!(q::<i64>(&mut c, &["MOVE", "k", "0"]), 0);
    assert_eq!(get(&mut c, "k").as_deref(), Some("v"));
    assert_eq!(get(&mut c0, "k").as_deref(), Some("other"));
    assert_eq!(err(&mut c, &["MOVE", "k", "1"]), "ERR source and destination objects are the same");
    assert_eq!(err(&mut c, &["MOVE", "k", "16"]), DB_INDEX);
    assert_eq!(err(&mut c, &["MOVE", "k", "-1"]), DB_INDEX);
    assert_eq!(err(&mut c, &["MOVE", "k", "abc"]), NOT_INTEGER);
}

// ---------------------------------------------------------------- SELECT / SWAPDB / DBSIZE / FLUSH

#[test]
fn select_databases_are_separate() {
    let (s, mut c) = start();
    for db in 0..16 {
        assert_eq!(q::<String>(&mut c, &["SELECT", &db.to_string()]), "OK");
        for i in 0..=db {
            set(&mut c, &format!("k:{i}"), &format!("db{db}"));
        }
    }
    for db in 0..16 {
        q::<()>(&mut c, &["SELECT", &db.to_string()]);
        assert_eq!(dbsize(&mut c), db + 1, "db {db}");
        assert_eq!(get(&mut c, "k:0"), Some(format!("db{db}")));
    }
    // A new connection starts in db 0.
    let mut c2 = s.client();
    assert_eq!(dbsize(&mut c2), 1);
    assert_eq!(err(&mut c, &["SELECT", "16"]), DB_INDEX);
    assert_eq!(err(&mut c, &["SELECT", "-1"]), DB_INDEX);
    assert_eq!(err(&mut c, &["SELECT", "abc"]), NOT_INTEGER);
    // A failed SELECT keeps the current database (15).
    assert_eq!(dbsize(&mut c), 16);
}

#[test]
fn dbsize_counts_every_shard() {
    let (_s, mut c) = start();
    assert_eq!(dbsize(&mut c), 0);
    set_all(&mut c, &many("k", 500));
    assert_eq!(dbsize(&mut c), 500);
    q::<()>(&mut c, &["SELECT", "2"]);
    assert_eq!(dbsize(&mut c), 0);
}

#[test]
fn flushdb_and_flushall() {
    let (_s, mut c) = start();
    set_all(&mut c, &many("k", 100));
    q::<()>(&mut c, &["SELECT", "1"]);
    set_all(&mut c, &many("k", 50));
    assert_eq!(q::<String>(&mut c, &["FLUSHDB"]), "OK");
    assert_eq!(dbsize(&mut c), 0);
    q::<()>(&mut c, &["SELECT", "0"]);
    assert_eq!(dbsize(&mut c), 100);
    assert_eq!(q::<String>(&mut c, &["FLUSHDB", "ASYNC"]), "OK");
    assert_eq!(dbsize(&mut c), 0);
    set_all(&mut c, &many("k", 10));
    assert_eq!(q::<String>(&mut c, &["FLUSHDB", "SYNC"]), "OK");
    assert_eq!(dbsize(&mut c), 0);
    set_all(&mut c, &many("k", 10));
    q::<()>(&mut c, &["SELECT", "5"]);
    set_all(&mut c, &many("k", 10));
    assert_eq!(q::<String>(&mut c, &["FLUSHALL"]), "OK");
    assert_eq!(dbsize(&mut c), 0);
    q::<()>(&mut c, &["SELECT", "0"]);
    assert_eq!(dbsize(&mut c), 0);
    assert_eq!(q::<String>(&mut c, &["FLUSHALL", "ASYNC"]), "OK");
    assert_eq!(q::<String>(&mut c, &["FLUSHALL", "SYNC"]), "OK");
    assert_eq!(err(&mut c, &["FLUSHDB", "FOO"]), SYNTAX);
    assert_eq!(err(&mut c, &["FLUSHALL", "FOO"]), SYNTAX);
}

#[test]
fn swapdb() {
    let (s, mut c) = start();
    set(&mut c, "a", "db0");
    q::<()>(&mut c, &["SELECT", "1"]);
    set_all(&mut c, &many("k", 100));
    let mut other = s.client();
    q::<()>(&mut other, &["SELECT", "1"]);
    assert_eq!(q::<String>(&mut c, &["SWAPDB", "0", "1"]), "OK");
    // Both connections see the swap at once.
    assert_eq!(dbsize(&mut c), 1);
    assert_eq!(get(&mut other, "a").as_deref(), Some("db0"));
    q::<()>(&mut c, &["SELECT", "0"]);
    assert_eq!(dbsize(&mut c), 100);
    assert_eq!(q::<String>(&mut c, &["SWAPDB", "0", "0"]), "OK");
    assert_eq!(dbsize(&mut c), 100);
    assert_eq!(err(&mut c, &["SWAPDB", "0", "16"]), DB_INDEX);
    assert_eq!(err(&mut c, &["SWAPDB", "-1", "0"]), DB_INDEX);
    assert_eq!(err(&mut c, &["SWAPDB", "a", "1"]), "ERR invalid first DB index");
    assert_eq!(err(&mut c, &["SWAPDB", "0", "b"]), "ERR invalid second DB index");
}

// ---------------------------------------------------------------- OBJECT / MEMORY USAGE

#[test]
fn object_encoding() {
    let (_s, mut c) = start();
    let enc = |c: &mut Connection, k: &str| q::<Option<String>>(c, &["OBJECT", "ENCODING", k]);
    assert_eq!(enc(&mut c, "nope"), None);
    for (value, want) in [
        ("12345", "int"),
        ("-5", "int"),
        ("0", "int"),
        ("9223372036854775807", "int"),
        ("hello", "embstr"),
        ("01", "embstr"),
        (" 1", "embstr"),
        ("123456789012345678901", "embstr"),
        ("01234567890123456789012345678901234567890123", "embstr"),
        ("012345678901234567890123456789012345678901234", "raw"),
    ] {
        set(&mut c, "k", value);
        assert_eq!(enc(&mut c, "k").as_deref(), Some(want), "OBJECT ENCODING of {value:?}");
    }
    let long = "x".repeat(1000);
    set(&mut c, "k", &long);
    assert_eq!(enc(&mut c, "k").as_deref(), Some("raw"));
}

#[test]
fn object_refcount_idletime_freq() {
    let (_s, mut c) = start();
    set(&mut c, "k", "hello");
    assert_eq!(q::<i64>(&mut c, &["OBJECT", "REFCOUNT", "k"]), 1);
    assert_eq!(q::<Option<i64>>(&mut c, &["OBJECT", "REFCOUNT", "nope"]), None);
    assert_eq!(q::<Option<i64>>(&mut c, &["OBJECT", "IDLETIME", "nope"]), None);
    assert_eq!(q::<Option<i64>>(&mut c, &["OBJECT", "FREQ", "nope"]), None);
    let idle = q::<i64>(&mut c, &["OBJECT", "IDLETIME", "k"]);
    assert!((0..=1).contains(&idle), "idle {idle}");
    std::thread::sleep(Duration::from_millis(1600));
    // OBJECT IDLETIME itself does not count as an access.
    let idle = q::<i64>(&mut c, &["OBJECT", "IDLETIME", "k"]);
    assert!((1..=3).contains(&idle), "idle {idle} after 1.6 s");
    let idle = q::<i64>(&mut c, &["OBJECT", "IDLETIME", "k"]);
    assert!(idle >= 1, "OBJECT IDLETIME reset the idle time");
    get(&mut c, "k");
    assert_eq!(q::<i64>(&mut c, &["OBJECT", "IDLETIME", "k"]), 0);
    // With the default noeviction policy, FREQ is not tracked.
    assert_eq!(
        err(&mut c, &["OBJECT", "FREQ", "k"]),
        "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."
    );
    assert_eq!(err(&mut c, &["OBJECT", "FOO", "k"]), "ERR unknown subcommand 'FOO'. Try OBJECT HELP.");
    assert_eq!(err(&mut c, &["OBJECT"]), "ERR wrong number of arguments for 'object' command");
    assert_eq!(err(&mut c, &["OBJECT", "ENCODING"]), "ERR wrong number of arguments for 'object|encoding' command");
    let help: Vec<String> = q(&mut c, &["OBJECT", "HELP"]);
    assert!(!help.is_empty());
}

#[test]
fn memory_usage() {
    let (_s, mut c) = start();
    assert_eq!(q::<Option<i64>>(&mut c, &["MEMORY", "USAGE", "nope"]), None);
    set(&mut c, "small", "v");
    let small: i64 = q(&mut c, &["MEMORY", "USAGE", "small"]);
    assert!(small > 0);
    set(&mut c, "big", &"x".repeat(10_000));
    let big: i64 = q(&mut c, &["MEMORY", "USAGE", "big"]);
    assert!(big >= 10_000, "MEMORY USAGE of a 10,000-byte value: {big}");
    assert!(big < 20_000, "MEMORY USAGE of a 10,000-byte value: {big}");
    assert!(small < big);
    assert_eq!(q::<i64>(&mut c, &["MEMORY", "USAGE", "big", "SAMPLES", "5"]), big);
    assert_eq!(err(&mut c, &["MEMORY", "USAGE", "big", "FOO"]), SYNTAX);
    assert_eq!(err(&mut c, &["MEMORY", "USAGE"]), "ERR wrong number of arguments for 'memory|usage' command");
    assert_eq!(err(&mut c, &["MEMORY", "FOO"]), "ERR unknown subcommand 'FOO'. Try MEMORY HELP.");
}

// ---------------------------------------------------------------- arity

#[test]
fn wrong_number_of_arguments() {
    let (_s, mut c) = start();
    let cases: &[(&[&str], &str)] = &[
        (&["DEL"], "del"),
        (&["UNLINK"], "unlink"),
        (&["EXISTS"], "exists"),
        (&["TOUCH"], "touch"),
        (&["TYPE"], "type"),
        (&["TYPE", "a", "b"], "type"),
        (&["EXPIRE", "a"], "expire"),
        (&["PEXPIRE", "a"], "pexpire"),
        (&["EXPIREAT", "a"], "expireat"),
        (&["PEXPIREAT", "a"], "pexpireat"),
        (&["TTL"], "ttl"),
        (&["TTL", "a", "b"], "ttl"),
        (&["PTTL"], "pttl"),
        (&["EXPIRETIME"], "expiretime"),
        (&["PEXPIRETIME"], "pexpiretime"),
        (&["PERSIST"], "persist"),
        (&["KEYS"], "keys"),
        (&["KEYS", "a", "b"], "keys"),
        (&["SCAN"], "scan"),
        (&["RANDOMKEY", "x"], "randomkey"),
        (&["RENAME", "a"], "rename"),
        (&["RENAME", "a", "b", "c"], "rename"),
        (&["RENAMENX", "a"], "renamenx"),
        (&["COPY", "a"], "copy"),
        (&["MOVE", "a"], "move"),
        (&["SWAPDB", "0"], "swapdb"),
        (&["DBSIZE", "x"], "dbsize"),
        (&["SELECT"], "select"),
        (&["SELECT", "0", "1"], "select"),
    ];
    for (args, name) in cases {
        assert_eq!(err(&mut c, args), format!("ERR wrong number of arguments for '{name}' command"), "{args:?}");
    }
}
