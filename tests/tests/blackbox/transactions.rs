//! MULTI, EXEC, DISCARD, WATCH, UNWATCH: queued replies, EXECABORT, WATCH
//! aborts on writes and on expiry, runtime errors that do not abort, the
//! transactions across shards (the coordinator; more in `cross_shard`),
//! CROSSSLOT for one command whose own keys span shards, and crash atomicity
//! of a transaction's writes.

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
    // One command whose own keys span shards cannot be split: the transaction is refused whole.
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["SET", "{t}x", "1"]);
    queued(&mut c, &["RENAME", "{t}a", &far]);
    assert!(err(&mut c, &["EXEC"]).starts_with("CROSSSLOT"));
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "{t}x"]), 0, "nothing of a refused transaction runs");
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
fn a_store_destination_on_another_shard_refuses_the_transaction_whole() {
    let (_s, mut c) = start();
    let far = other_shard_key(&mut c, "{t}a");
    let _: () = q(&mut c, &["DEL", "{t}a", &far]);
    let _: () = q(&mut c, &["ZADD", "{t}a", "1", "m"]);
    let _: () = q(&mut c, &["MULTI"]);
    queued(&mut c, &["SET", "{t}x", "1"]);
    queued(&mut c, &["ZUNIONSTORE", &far, "1", "{t}a"]);
    assert!(err(&mut c, &["EXEC"]).starts_with("CROSSSLOT"));
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "{t}x", &far]), 0, "nothing of a refused transaction runs");
    // Outside MULTI it runs through the coordinator (`gather.rs`), and COMMAND GETKEYS names the destination.
    assert_eq!(q::<i64>(&mut c, &["ZUNIONSTORE", &far, "1", "{t}a"]), 1);
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
