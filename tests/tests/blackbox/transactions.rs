//! MULTI, EXEC, DISCARD, WATCH, UNWATCH: queued replies, EXECABORT, WATCH
//! aborts on writes and on expiry, runtime errors that do not abort, the
//! transactions across shards (the coordinator; more in `cross_shard`),
//! transactions with a command whose own keys span shards (run on copies of
//! the keys: the same replies and writes as on one shard, atomic for other
//! clients and across SIGKILL), and crash atomicity of a transaction's writes.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::time::Duration;

use redis::{Connection, Value};
use strand_tests::commands::{cmd, err, q, start};
use strand_tests::Server;

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

fn okay() -> Value {
    Value::Okay
}

fn queued(c: &mut Connection, args: &[&str]) {
    let v: Value = cmd(args).query(c).unwrap();
    assert_eq!(v, Value::SimpleString("QUEUED".into()), "{args:?}");
}

/// A key that lives on another shard than `key` (2 shards by default).
fn other_shard_key(_c: &mut Connection, key: &str) -> String {
    let map = strand_engine::slot::SlotMap::new(2);
    (0..100)
        .map(|i| format!("other{i}"))
        .find(|k| map.shard_of(k.as_bytes()) != map.shard_of(key.as_bytes()))
        .expect("some key lives on the other shard")
}

#[test]
fn exec_runs_the_queue_in_order() {
    let (_s, mut c) = start();
    assert_eq!(q::<String>(&mut c, &["MULTI"]), "OK");
    queued(&mut c, &["SET", "{t}a", "1"]);
    queued(&mut c, &["INCR", "{t}a"]);
    queued(&mut c, &["GET", "{t}a"]);
    queued(&mut c, &["MGET", "{t}a", "{t}missing"]);
    let v: Value = q(&mut c, &["EXEC"]);
    assert_eq!(v, Value::Array(vec![okay(), Value::Int(2), bulk("2"), Value::Array(vec![bulk("2"), Value::Nil])]));
    // The redis crate's atomic pipeline is MULTI ... EXEC too.
    let (a, b): (i64, i64) = redis::pipe().atomic().cmd("INCR").arg("{t}n").cmd("INCRBY").arg("{t}n").arg(10).query(&mut c).unwrap();
    assert_eq!((a, b), (1, 11));
}

#[test]
fn empty_transaction_answers_an_empty_array() {
    let (_s, mut c) = start();
    let _: () = q(&mut c, &["MULTI"]);
    assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Array(vec![]));
}

#[test]
fn misuse_errors_match_redis() {
    let (_s, mut c) = start();
    assert_eq!(err(&mut c, &["EXEC"]), "ERR EXEC without MULTI");
    assert_eq!(err(&mut c, &["DISCARD"]), "ERR DISCARD without MULTI");
    let _: () = q(&mut c, &["MULTI"]);
    assert_eq!(err(&mut c, &["MULTI"]), "ERR MULTI calls can not be nested");
    assert_eq!(err(&mut c, &["WATCH", "x"]), "ERR WATCH inside MULTI is not allowed");
    // Neither error made the transaction dirty.
    queued(&mut c, &["SET", "x", "1"]);
    assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Array(vec![okay()]));
}

#[test]
fn queue_time_errors_abort_the_whole_transaction() {
    let (_s, mut c) = start();
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["SET", "k", "1"]);
    assert!(err(&mut c, &["NOSUCHCOMMAND", "x"]).starts_with("ERR unknown command 'NOSUCHCOMMAND'"));
    assert_eq!(err(&mut c, &["GET"]), "ERR wrong number of arguments for 'get' command");
    assert_eq!(err(&mut c, &["EXEC"]), "EXECABORT Transaction discarded because of previous errors.");
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "k"]), None);
    // The connection is out of MULTI again.
    assert_eq!(q::<String>(&mut c, &["SET", "k", "2"]), "OK");
}

#[test]
fn runtime_errors_do_not_abort_the_others() {
    // Raw bytes: the redis crate turns an error inside EXEC's array into an error for all of it.
    let (s, mut c) = start();
    let _: () = q(&mut c, &["SET", "{t}s", "text"]);
    let mut raw = std::net::TcpStream::connect(s.url().trim_start_matches("redis://").trim_end_matches('/')).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(b"MULTI\r\nINCR {t}s\r\nSET {t}b 2\r\nEXEC\r\n").unwrap();
    let want = "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n-ERR value is not an integer or out of range\r\n+OK\r\n";
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.len() < want.len() {
        let n = raw.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(String::from_utf8_lossy(&got), want);
    assert_eq!(q::<String>(&mut c, &["GET", "{t}b"]), "2");
}

#[test]
fn discard_drops_the_queue() {
    let (_s, mut c) = start();
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["SET", "k", "1"]);
    assert_eq!(q::<String>(&mut c, &["DISCARD"]), "OK");
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "k"]), None);
}

#[test]
fn select_inside_multi_applies_to_the_commands_after_it() {
    let (_s, mut c) = start();
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["SELECT", "3"]);
    queued(&mut c, &["SET", "k", "in3"]);
    assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Array(vec![okay(), okay()]));
    assert_eq!(q::<String>(&mut c, &["GET", "k"]), "in3");
    let _: () = q(&mut c, &["SELECT", "0"]);
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "k"]), None);
}

#[test]
fn watch_aborts_when_another_client_writes() {
    let (s, mut c) = start();
    let mut other = s.client();
    let _: () = q(&mut c, &["SET", "{w}k", "1"]);
    let _: () = q(&mut c, &["WATCH", "{w}k"]);
    let _: () = q(&mut other, &["SET", "{w}k", "2"]);
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["SET", "{w}k", "3"]);
    queued(&mut c, &["SET", "{w}j", "3"]);
    assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Nil);
    assert_eq!(q::<String>(&mut c, &["GET", "{w}k"]), "2");
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "{w}j"]), None);
    // EXEC dropped the WATCH: the next transaction runs.
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["SET", "{w}k", "4"]);
    assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Array(vec![okay()]));
}

#[test]
fn watch_without_changes_lets_exec_run_and_deletes_count_as_changes() {
    let (s, mut c) = start();
    let mut other = s.client();
    let _: () = q(&mut c, &["SET", "{w}k", "1"]);
    let _: () = q(&mut c, &["WATCH", "{w}k", "{w}absent"]);
    let _: () = q(&mut other, &["GET", "{w}k"]);
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["INCR", "{w}k"]);
    assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Array(vec![Value::Int(2)]));

    let _: () = q(&mut c, &["WATCH", "{w}k"]);
    let _: () = q(&mut other, &["DEL", "{w}k"]);
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["INCR", "{w}k"]);
    assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Nil);
}

#[test]
fn watch_aborts_when_the_key_expires() {
    let (_s, mut c) = start();
    let _: () = q(&mut c, &["SET", "{w}k", "1", "PX", "50"]);
    let _: () = q(&mut c, &["WATCH", "{w}k"]);
    std::thread::sleep(Duration::from_millis(120));
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["SET", "{w}j", "1"]);
    assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Nil);
}

#[test]
fn unwatch_and_discard_forget_the_watched_keys() {
    let (s, mut c) = start();
    let mut other = s.client();
    for forget in [&["UNWATCH"][..], &["MULTI"][..]] {
        let _: () = q(&mut c, &["WATCH", "{w}k"]);
        if forget[0] == "MULTI" {
            let _: () = q(&mut c, &["MULTI"]);
            let _: () = q(&mut c, &["DISCARD"]);
        } else {
            let _: () = q(&mut c, forget);
        }
        let _: () = q(&mut other, &["SET", "{w}k", "x"]);
        let _: () = q(&mut c, &["MULTI"]);
        queued(&mut c, &["GET", "{w}k"]);
        assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Array(vec![bulk("x")]), "after {forget:?}");
    }
}

#[test]
fn watch_works_when_the_key_lives_on_another_shard() {
    let (s, mut c) = start();
    let mut other = s.client();
    // Whichever shard this connection is on, one of these keys is remote.
    for key in ["{a}k", "{b}k", "{c}k", "{d}k"] {
        let _: () = q(&mut c, &["WATCH", key]);
        let _: () = q(&mut other, &["SET", key, "changed"]);
        let _: () = q(&mut c, &["MULTI"]);
        queued(&mut c, &["SET", key, "mine"]);
        assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Nil, "{key}");
        let _: () = q(&mut c, &["WATCH", key]);
        let _: () = q(&mut c, &["MULTI"]);
        queued(&mut c, &["SET", key, "mine"]);
        assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Array(vec![okay()]), "{key}");
    }
}

#[test]
fn keys_on_two_shards_run_as_one_transaction() {
    let (_s, mut c) = start();
    let far = other_shard_key(&mut c, "{t}a");
    let _: () = q(&mut c, &["DEL", "{t}a", &far]);
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["SET", "{t}a", "1"]);
    queued(&mut c, &["SET", &far, "2"]);
    queued(&mut c, &["INCR", "{t}a"]);
    queued(&mut c, &["MGET", "{t}a", &far]);
    let v: Value = q(&mut c, &["EXEC"]);
    assert_eq!(v, Value::Array(vec![okay(), okay(), Value::Int(2), Value::Array(vec![bulk("2"), bulk("2")])]));
    // A WATCH on one shard and commands on the other: a change to the watched key aborts the whole.
    let _: () = q(&mut c, &["WATCH", &far]);
    let mut other = _s.client();
    let _: () = q(&mut other, &["SET", &far, "changed"]);
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["SET", "{t}a", "from-tx"]);
    assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Nil);
    assert_eq!(q::<String>(&mut c, &["GET", "{t}a"]), "2", "nothing of an aborted transaction runs");
    // Unchanged, it runs.
    let _: () = q(&mut c, &["WATCH", &far]);
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["SET", "{t}a", "from-tx"]);
    assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Array(vec![okay()]));
    assert_eq!(q::<String>(&mut c, &["GET", "{t}a"]), "from-tx");
    // One command whose own keys span shards and cannot be split: the transaction runs on copies of its keys.
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["SET", "{t}x", "1"]);
    queued(&mut c, &["RENAME", "{t}a", &far]);
    queued(&mut c, &["GET", &far]);
    assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Array(vec![okay(), okay(), bulk("from-tx")]));
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "{t}x", "{t}a", &far]), 2);
    // With a command that cannot run on copies (SCAN names no keys), it is refused whole.
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["SET", "{t}y", "1"]);
    queued(&mut c, &["RENAME", &far, "{t}a"]);
    queued(&mut c, &["SCAN", "0"]);
    assert!(err(&mut c, &["EXEC"]).starts_with("CROSSSLOT"));
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "{t}y", "{t}a"]), 0, "nothing of a refused transaction runs");
}

#[test]
fn blocking_commands_inside_multi_do_not_block() {
    let (_s, mut c) = start();
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["BLPOP", "{q}empty", "0"]);
    queued(&mut c, &["SET", "{q}x", "1"]);
    let v: Value = q(&mut c, &["EXEC"]);
    assert_eq!(v, Value::Array(vec![Value::Nil, okay()]));
}

#[test]
fn a_transaction_survives_sigkill_whole() {
    let mut s = Server::start(&["--appendfsync", "always"]);
    let mut c = s.client();
    let _: () = q(&mut c, &["MULTI"]);
    for i in 0..50 {
        queued(&mut c, &["SET", &format!("{{tx}}k{i}"), &i.to_string()]);
    }
    queued(&mut c, &["INCRBY", "{tx}sum", "1225"]);
    let _: Value = q(&mut c, &["EXEC"]);
    s.kill();
    s.restart();
    let mut c = s.client();
    for i in 0..50 {
        assert_eq!(q::<String>(&mut c, &["GET", &format!("{{tx}}k{i}")]), i.to_string());
    }
    assert_eq!(q::<i64>(&mut c, &["GET", "{tx}sum"]), 1225);
}

#[test]
fn a_store_destination_on_another_shard_runs_inside_a_transaction() {
    let (_s, mut c) = start();
    let far = other_shard_key(&mut c, "{t}a");
    let _: () = q(&mut c, &["DEL", "{t}a", &far]);
    let _: () = q(&mut c, &["ZADD", "{t}a", "1", "m"]);
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["SET", "{t}x", "1"]);
    queued(&mut c, &["ZUNIONSTORE", &far, "1", "{t}a"]);
    queued(&mut c, &["ZADD", "{t}a", "2", "n"]);
    assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Array(vec![okay(), Value::Int(1), Value::Int(1)]));
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "{t}x", &far]), 2);
    assert_eq!(q::<Vec<String>>(&mut c, &["ZRANGE", &far, "0", "-1"]), ["m"]);
    // Outside MULTI it runs through the coordinator (`gather.rs`), and COMMAND GETKEYS names the destination.
    assert_eq!(q::<i64>(&mut c, &["ZUNIONSTORE", &far, "1", "{t}a"]), 2);
    let keys: Vec<String> = q(&mut c, &["COMMAND", "GETKEYS", "ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"]);
    assert_eq!(keys, ["d", "a", "b"]);
}

/// As in Redis, a transaction runs at one time: a TTL or a queue lease
/// cannot run out between two of its commands, however long it takes. (The
/// crash harness caught a lease passing between QPEEK and QPENDING, which
/// hid the message from both.)
#[test]
fn every_command_of_a_transaction_sees_one_time() {
    let (_s, mut c) = start();
    let _: String = q(&mut c, &["QPUSH", "{t}q", "m"]);
    let mut p = redis::pipe();
    p.atomic();
    p.cmd("SET").arg("{t}k").arg("v").arg("PX").arg(100_000);
    p.cmd("QPOP").arg("{t}q").arg("LEASE").arg(3);
    // Enough commands that the transaction takes several milliseconds.
    for _ in 0..20_000 {
        p.cmd("PTTL").arg("{t}k");
    }
    p.cmd("QPENDING").arg("{t}q");
    let replies: Vec<Value> = p.query(&mut c).unwrap();
    let pttls: Vec<&Value> = replies[2..replies.len() - 1].iter().collect();
    assert!(
        pttls.iter().all(|v| **v == Value::Int(100_000)),
        "a PTTL inside the transaction moved: {:?}",
        pttls.iter().find(|v| ***v != Value::Int(100_000))
    );
    let pending: Vec<(String, i64, i64)> = redis::from_redis_value(&replies[replies.len() - 1]).unwrap();
    assert_eq!(pending.len(), 1, "the lease ran out inside the transaction");
    assert_eq!((pending[0].1, pending[0].2), (1, 3), "attempts and ms left, at the transaction's time");
}

// ---------------------------------------------------------------- commands whose keys span shards

/// A key `shard` owns (servers here run 2 shards).
fn key_on(shard: usize, prefix: &str) -> String {
    let map = strand_engine::slot::SlotMap::new(2);
    (0..).map(|i| format!("{prefix}{i}")).find(|k| map.shard_of(k.as_bytes()) == shard).unwrap()
}

/// What a key holds: type, contents and whether it has a TTL.
fn held(c: &mut Connection, k: &str) -> String {
    let kind: String = q(c, &["TYPE", k]);
    let contents = match kind.as_str() {
        "list" => format!("{:?}", q::<Vec<String>>(c, &["LRANGE", k, "0", "-1"])),
        "set" => {
            let mut m: Vec<String> = q(c, &["SMEMBERS", k]);
            m.sort();
            format!("{m:?}")
        }
        "zset" => format!("{:?}", q::<Vec<String>>(c, &["ZRANGE", k, "0", "-1", "WITHSCORES"])),
        "string" => q::<String>(c, &["GET", k]),
        _ => String::new(),
    };
    format!("{kind} {contents} ttl:{}", q::<i64>(c, &["TTL", k]) > 0)
}

/// One transaction over keys A, B and C: moves, algebra, a script, TTLs,
/// runtime errors after writes, and reads of what the earlier commands left.
const OVER_SHARDS: &[&[&str]] = &[
    &["RPUSH", "A", "a1", "a2", "a3"],
    &["SADD", "B", "m1", "m2"],
    &["LMOVE", "A", "C", "LEFT", "RIGHT"],
    &["RPOPLPUSH", "A", "C"],
    &["SMOVE", "B", "A", "m1"],
    &["SUNIONSTORE", "B", "B", "B"],
    &["LRANGE", "C", "0", "-1"],
    &["RENAME", "C", "B"],
    &["EXPIRE", "B", "500"],
    &["COPY", "B", "C"],
    &["INCR", "A"],
    &["EVAL", "return redis.call('rpush', KEYS[1], 'e') + redis.call('llen', KEYS[2])", "2", "C", "B"],
    &["TTL", "C"],
    &["ZUNIONSTORE", "A", "1", "A"],
    &["DEL", "B"],
    &["SET", "B", "last", "EX", "100"],
    &["MGET", "A", "B", "C"],
];

#[test]
fn transactions_over_keys_on_several_shards_answer_and_write_as_on_one() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let apart = [key_on(0, "a"), key_on(1, "b"), key_on(0, "c")];
    let together = ["{t}a".to_string(), "{t}b".to_string(), "{t}c".to_string()];
    let mut runs = Vec::new();
    for keys in [&apart, &together] {
        let _: () = q(&mut c, &["MULTI"]);
        for command in OVER_SHARDS {
            let args: Vec<&str> = command.iter().map(|&a| ["A", "B", "C"].iter().position(|&p| p == a).map_or(a, |i| &keys[i])).collect();
            queued(&mut c, &args);
        }
        // `query` would turn the errors inside EXEC's array into one error for all of it.
        let reply = redis::ConnectionLike::req_command(&mut c, &redis::cmd("EXEC")).unwrap();
        let state: Vec<String> = keys.iter().map(|k| held(&mut c, k)).collect();
        runs.push((format!("{reply:?}"), state));
    }
    assert_eq!(runs[0], runs[1], "keys on two shards / under one hash tag");
    // Runtime errors (SMOVE, INCR and ZUNIONSTORE meet a list) did not stop the commands after them.
    assert_eq!(runs[0].0.matches("WRONGTYPE").count(), 3, "{}", runs[0].0);
    assert_eq!(runs[0].1, [r#"list ["a2"] ttl:false"#, "string last ttl:true", r#"list ["a3", "a1", "e"] ttl:true"#]);
}

#[test]
fn transactions_over_several_shards_in_other_databases_and_read_only() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let (a, b) = (key_on(0, "a"), key_on(1, "b"));
    // SELECT inside MULTI applies to the gathered commands after it.
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["SELECT", "3"]);
    queued(&mut c, &["SADD", &a, "x", "y"]);
    queued(&mut c, &["SMOVE", &a, &b, "x"]);
    queued(&mut c, &["SELECT", "0"]);
    queued(&mut c, &["SADD", &b, "z"]);
    assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Array(vec![okay(), Value::Int(2), Value::Int(1), okay(), Value::Int(1)]));
    assert_eq!(q::<Vec<String>>(&mut c, &["SMEMBERS", &b]), ["z"]);
    let _: () = q(&mut c, &["SELECT", "3"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["SMEMBERS", &b]), ["x"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["SMEMBERS", &a]), ["y"]);
    // Only reads: they run, and a WATCH on the keys they read still holds afterwards.
    let mut w = s.client();
    let _: () = q(&mut w, &["SELECT", "3"]);
    let _: () = q(&mut w, &["WATCH", &a, &b]);
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["SUNION", &a, &b]);
    queued(&mut c, &["SINTERCARD", "2", &a, &b]);
    let v: Value = q(&mut c, &["EXEC"]);
    let Value::Array(v) = v else { panic!("{v:?}") };
    assert_eq!(v[1], Value::Int(0));
    let _: () = q(&mut w, &["MULTI"]);
    queued(&mut w, &["SADD", &b, "w"]);
    assert_eq!(q::<Value>(&mut w, &["EXEC"]), Value::Array(vec![Value::Int(1)]), "a read-only transaction touched a watched key");
    // MOVE and COPY ... DB write a key of another database than the one named: refused whole.
    for cmd in [vec!["MOVE", a.as_str(), "5"], vec!["COPY", a.as_str(), b.as_str(), "DB", "5"]] {
        let _: () = q(&mut c, &["MULTI"]);
        queued(&mut c, &["SMOVE", &a, &b, "y"]);
        queued(&mut c, &cmd);
        assert!(err(&mut c, &["EXEC"]).starts_with("CROSSSLOT"), "{cmd:?}");
        assert_eq!(q::<i64>(&mut c, &["SCARD", &a]), 1, "nothing of a refused transaction runs");
    }
    // COPY within the database runs.
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["COPY", &a, &b, "REPLACE"]);
    assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Array(vec![Value::Int(1)]));
    assert_eq!(q::<Vec<String>>(&mut c, &["SMEMBERS", &b]), ["y"]);
}

#[test]
fn an_eval_in_a_transaction_over_several_shards_reaches_undeclared_keys() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let (a, b, far) = (key_on(0, "a"), key_on(1, "b"), key_on(1, "far"));
    let _: () = q(&mut c, &["SET", &a, "1"]);
    let _: () = q(&mut c, &["SET", &far, "undeclared"]);
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["RENAME", &a, &b]);
    queued(&mut c, &["EVAL", "redis.call('incr', KEYS[1]) return redis.call('get', ARGV[1])", "1", &b, &far]);
    assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Array(vec![okay(), bulk("undeclared")]));
    assert_eq!(q::<i64>(&mut c, &["GET", &b]), 2, "the transaction ran more than once for good");
}

#[test]
fn a_watched_key_aborts_a_transaction_over_several_shards() {
    let s = Server::start(&[]);
    let (mut c, mut other) = (s.client(), s.client());
    let (src, dst, watched) = (key_on(0, "src"), key_on(1, "dst"), key_on(1, "w"));
    let _: () = q(&mut c, &["RPUSH", &src, "x", "y"]);
    let tx = |c: &mut Connection| -> Value {
        let _: () = q(c, &["WATCH", &watched]);
        let _: () = q(c, &["MULTI"]);
        queued(c, &["LMOVE", &src, &dst, "LEFT", "LEFT"]);
        q(c, &["EXEC"])
    };
    let _: () = q(&mut c, &["WATCH", &watched]);
    let _: () = q(&mut other, &["SET", &watched, "changed"]);
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["LMOVE", &src, &dst, "LEFT", "LEFT"]);
    assert_eq!(q::<Value>(&mut c, &["EXEC"]), Value::Nil, "a change to a watched key aborts");
    assert_eq!(q::<i64>(&mut c, &["LLEN", &src]), 2, "nothing of an aborted transaction runs");
    assert_eq!(tx(&mut c), Value::Array(vec![bulk("x")]), "an unchanged watched key lets it run");
    assert_eq!(q::<Vec<String>>(&mut c, &["LRANGE", &dst, "0", "-1"]), ["x"]);
}

/// Transactions that move a member between two sets on different shards,
/// and readers counting both sets in one transaction: the sum never moves.
#[test]
fn transactions_over_several_shards_are_atomic_for_each_other() {
    let s = Server::start(&[]);
    let (a, b) = (key_on(0, "left"), key_on(1, "right"));
    let mut c = s.client();
    let members: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    let mut sadd = vec!["SADD", &a];
    sadd.extend(members.iter().map(String::as_str));
    let _: () = q(&mut c, &sadd);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let movers: Vec<_> = (0..3)
        .map(|t| {
            let (mut c, a, b, stop) = (s.client(), a.clone(), b.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut moved = 0;
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let m = format!("m{}", (i * 7 + t) % 20);
                    let (from, to) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
                    let v: Value = redis::pipe().atomic().cmd("SMOVE").arg(from).arg(to).arg(&m).query(&mut c).unwrap();
                    moved += (v == Value::Array(vec![Value::Int(1)])) as usize;
                }
                moved
            })
        })
        .collect();
    for _ in 0..300 {
        let (x, y): (i64, i64) = redis::pipe().atomic().cmd("SCARD").arg(&a).cmd("SCARD").arg(&b).query(&mut c).unwrap();
        assert_eq!(x + y, 20, "a reader saw a member in both sets or in neither: {x} + {y}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let moved: usize = movers.into_iter().map(|m| m.join().unwrap()).sum();
    assert!(moved > 0, "no transaction moved a member");
}

#[test]
fn a_transaction_over_several_shards_keeps_all_or_none_across_sigkill() {
    let dir = strand_tests::data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "always"]);
    let (src, dst, count) = (key_on(0, "jobs"), key_on(1, "done"), key_on(1, "count"));
    let mut c = s.client();
    // Each transaction rewrites both lists whole: kept short, they still outlast the runs.
    let jobs: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
    for chunk in jobs.chunks(5_000) {
        let mut push = redis::cmd("RPUSH");
        push.arg(&src).arg(chunk);
        let _: i64 = push.query(&mut c).unwrap();
    }
    let mut acked = 0;
    for round in 0..3 {
        let mut c = s.client();
        let writer = {
            let (src, dst, count) = (src.clone(), dst.clone(), count.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                let tx = |c: &mut Connection| -> redis::RedisResult<Value> {
                    redis::pipe().atomic().cmd("LMOVE").arg(&src).arg(&dst).arg("LEFT").arg("RIGHT").cmd("INCR").arg(&count).query(c)
                };
                while tx(&mut c).is_ok() {
                    n += 1;
                }
                n
            })
        };
        std::thread::sleep(Duration::from_millis(150 + 100 * round));
        s.kill();
        acked += writer.join().unwrap();
        s.restart();
        let mut c = s.client();
        let (left, done) = (q::<i64>(&mut c, &["LLEN", &src]), q::<i64>(&mut c, &["LLEN", &dst]));
        let n = q::<Option<i64>>(&mut c, &["GET", &count]).unwrap_or(0);
        assert_eq!(left + done, 10_000, "round {round}: a job lost or doubled by the crash");
        assert_eq!(done, n, "round {round}: a transaction's writes split by the crash");
        assert!(n >= acked && n <= acked + 1, "round {round}: {n} kept, {acked} acknowledged");
        acked = n;
    }
    assert!(acked > 10, "only {acked} transactions ran");
}

#[test]
fn a_transaction_over_several_shards_publishes_its_notifications() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = q(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let (k0, k1) = (key_on(0, "n"), key_on(1, "n"));
    let _: () = q(&mut c, &["SET", &k0, "v"]);
    let mut sub = s.client();
    sub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sub = sub.as_pubsub();
    sub.psubscribe("__keyevent@0__:*").unwrap();
    let _: Value = redis::pipe().atomic().cmd("RENAME").arg(&k0).arg(&k1).cmd("EXPIRE").arg(&k1).arg(100).query(&mut c).unwrap();
    let mut got = std::collections::HashSet::new();
    while got.len() < 3 {
        let m = sub.get_message().unwrap();
        let payload: String = m.get_payload().unwrap();
        got.insert(format!("{} {payload}", m.get_channel_name()));
    }
    let want: std::collections::HashSet<String> =
        [format!("__keyevent@0__:rename_from {k0}"), format!("__keyevent@0__:rename_to {k1}"), format!("__keyevent@0__:expire {k1}")]
            .into();
    assert_eq!(got, want);
}
