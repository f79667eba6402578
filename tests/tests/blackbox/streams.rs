//! Streams: XADD ... XAUTOCLAIM and XINFO against the real binary.
//!
//! Where `redis-server` is installed, a side-by-side test sends the same
//! commands to both and compares the raw replies byte for byte, in RESP2
//! and RESP3 (every reply that does not depend on the clock). The rest
//! checks what a side-by-side cannot: consumer-group state rebuilt exactly
//! after SIGKILL and after a checkpoint, blocking reads woken by writes from
//! other connections (first blocked, first served), timeouts, trimming of
//! large streams, and the generic key commands on a stream.

#![allow(clippy::unwrap_used)]

use std::thread;
use std::time::{Duration, Instant};

use redis::{Connection, Value};
use strand_tests::commands::{err, q, start};
use strand_tests::raw::Raw;
use strand_tests::{send_async, wait_blocked, RedisServer, Server};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// Replies fully determined by the commands (no idle times, no clock IDs),
/// and identical in Redis 7.0 and 7.4.
const SIDE_BY_SIDE: &[&str] = &[
    "XADD s 1-1 a 1",
    "XADD s 1-1 a 1",
    "XADD s 0-0 a 1",
    "XADD s abc a 1",
    "XADD s 1-1 a",
    "XADD s 1-* b 2",
    "XADD s 1 c 3",
    "XADD s 5-* d 4",
    "XADD s MAXLEN abc * a 1",
    "XADD s MAXLEN -1 * a 1",
    "XADD s LIMIT 10 * a 1",
    "XADD s MAXLEN 1 LIMIT 10 5-9 a 1",
    "XADD s MINID 1 MAXLEN 2 * a 1",
    "XADD x NOMKSTREAM 1-1 a 1",
    "EXISTS x",
    "XADD s 6-0 e 5 f 6",
    "XADD s 7-0 g 7",
    "XADD s 18446744073709551616-0 g 7",
    "XADD s +7-0 g 7",
    "XLEN s",
    "XLEN nosuch",
    "XRANGE s - +",
    "XRANGE s (1-1 +",
    "XRANGE s - + COUNT 2",
    "XRANGE s - + COUNT 0",
    "XRANGE s - + COUNT -1",
    "XRANGE s - + FOO",
    "XRANGE s (- +",
    "XRANGE s - (0-0",
    "XRANGE s 5 5",
    "XRANGE s 7 1",
    "XREVRANGE s + - COUNT 3",
    "XREVRANGE s (7-0 -",
    "XRANGE nosuch - +",
    "XDEL s 1-2 1-2 99-0",
    "XDEL s -",
    "XTRIM s MAXLEN 4",
    "XTRIM s MAXLEN ~ 1",
    "XTRIM s",
    "XTRIM s MINID 6",
    "XTRIM s MINID = 6 LIMIT 5",
    "XTRIM s MAXLEN 1 FOO",
    "XTRIM nosuch MAXLEN 1",
    "XRANGE s - +",
    "XSETID s 1-0",
    "XSETID s 100-0 ENTRIESADDED 1",
    "XSETID s 100-0 ENTRIESADDED 50 MAXDELETEDID 3-0",
    "XSETID s 100-0 MAXDELETEDID 200-0",
    "XSETID nosuch 1-1",
    "XSETID s 100-0 FOO 1",
    "XADD s 99-0 a 1",
    "XADD s 100-* a 1",
    "XREAD STREAMS s 0",
    "XREAD COUNT 1 STREAMS s 6-0",
    "XREAD STREAMS s $",
    "XREAD STREAMS s nosuch 0 0",
    "XREAD STREAMS s",
    "XREAD FOO STREAMS s 0",
    "XREAD STREAMS s >",
    "XREAD GROUP g c STREAMS s 0",
    "XREAD NOACK STREAMS s 0",
    "XREAD BLOCK -1 STREAMS s 0",
    "XREAD BLOCK abc STREAMS s 0",
    "XGROUP CREATE t g $",
    "XGROUP CREATE t g $ MKSTREAM",
    "XGROUP CREATE t g $",
    "XGROUP CREATE t g2 0 ENTRIESREAD 5",
    "XGROUP CREATE t g3 0 ENTRIESREAD -2",
    "XGROUP CREATE t g3 0 FOO",
    "XGROUP CREATE t g3 abc",
    "XGROUP FOO t g",
    "XGROUP CREATE t",
    "XGROUP DESTROY t g3",
    "XGROUP DESTROY t g2",
    "XGROUP SETID t nog 0",
    "XGROUP SETID t g 0 ENTRIESREAD 0",
    "XGROUP CREATECONSUMER t nog c",
    "XGROUP CREATECONSUMER t g alice",
    "XGROUP CREATECONSUMER t g alice",
    "XGROUP DELCONSUMER t g nobody",
    "XGROUP DESTROY nosuch g",
    "XADD t 1-0 a 1",
    "XADD t 2-0 b 2",
    "XADD t 3-0 c 3",
    "XADD t 4-0 d 4",
    "XINFO GROUPS t",
    "XREADGROUP GROUP g alice COUNT 2 STREAMS t >",
    "XINFO GROUPS t",
    "XREADGROUP GROUP g bob STREAMS t >",
    "XREADGROUP GROUP g bob STREAMS t >",
    "XREADGROUP GROUP g alice STREAMS t 0",
    "XREADGROUP GROUP g alice COUNT 1 STREAMS t 0",
    "XREADGROUP GROUP nog alice STREAMS t >",
    "XREADGROUP GROUP g alice STREAMS t $",
    "XREADGROUP GROUP g alice STREAMS nosuch >",
    "XREADGROUP STREAMS t >",
    "XREADGROUP GROUP g alice STREAMS t",
    "XPENDING t g",
    "XPENDING t g IDLE 100000 - + 10",
    "XPENDING t g - + 10 nobody",
    "XPENDING t g - +",
    "XPENDING t g IDLE 10 - +",
    "XPENDING t nog",
    "XPENDING nosuch g",
    "XACK t g 1-0 1-0 9-9",
    "XACK t g abc",
    "XACK t nog abc",
    "XACK nosuch g 1-0",
    "XPENDING t g",
    "XDEL t 2-0",
    "XREADGROUP GROUP g alice STREAMS t 0",
    "XCLAIM t g carol 0 2-0 3-0 JUSTID",
    "XCLAIM t g carol 0 4-0 RETRYCOUNT 7",
    "XCLAIM t g carol abc 4-0",
    "XCLAIM t g carol 0 4-0 FOO",
    "XCLAIM t g carol 0 4-0 IDLE abc",
    "XCLAIM t nog carol 0 4-0",
    "XCLAIM t g dave 0 1-0 FORCE",
    "XCLAIM t g dave 0 1-0 FORCE JUSTID",
    "XPENDING t g",
    "XAUTOCLAIM t g erin 0 0-0 COUNT 1",
    "XAUTOCLAIM t g erin 0 0-0",
    "XAUTOCLAIM t g erin 0 0-0 COUNT 0",
    "XAUTOCLAIM t g erin 0 0-0 JUSTID",
    "XAUTOCLAIM t g erin abc 0-0",
    "XAUTOCLAIM t nog erin 0 0-0",
    "XADD t 5-0 e 5",
    "XDEL t 3-0",
    "XAUTOCLAIM t g erin 0 0-0",
    "XGROUP DELCONSUMER t g erin",
    "XINFO CONSUMERS t nog",
    "XINFO STREAM nosuch",
    "XINFO FOO t",
    "XREADGROUP GROUP g frank NOACK STREAMS t >",
    "XINFO GROUPS t",
    "XPENDING t g",
    "XGROUP SETID t g 0",
    "XINFO GROUPS t",
    "XGROUP SETID t g $",
    "XINFO GROUPS t",
    "XADD t 6-0 f 6",
    "XINFO GROUPS t",
    "XDEL t 5-0",
    "XINFO GROUPS t",
    "XINFO STREAM t",
    "SET str v",
    "XADD str * a 1",
    "XRANGE str - +",
    "XREAD STREAMS str 0",
    "XLEN str",
    "XGROUP CREATE str g $",
    "XREADGROUP GROUP g c STREAMS str >",
    "XINFO STREAM str",
    "XGROUP CREATE e g $ MKSTREAM",
    "XINFO STREAM e",
    "XLEN e",
    "XDEL e 1-1",
    "EXISTS e",
    "TYPE e",
    "XGROUP CREATE e2 g 5-5 MKSTREAM",
    "XINFO GROUPS e2",
    "XINFO HELP",
    "XGROUP HELP",
];

#[test]
fn commands_answer_as_redis_server_does() {
    let Some(redis) = RedisServer::start() else {
        eprintln!("redis-server not installed; skipping");
        return;
    };
    for resp3 in [false, true] {
        let s = Server::start(&[]);
        let mut theirs = Raw::connect(redis.port, resp3);
        theirs.cmd(&["FLUSHALL"]);
        let mut ours = Raw::connect(s.port, resp3);
        for line in SIDE_BY_SIDE {
            let args: Vec<&str> = line.split(' ').collect();
            let (want, got) = (theirs.cmd(&args), ours.cmd(&args));
            assert_eq!(got, want, "{} `{line}`", if resp3 { "RESP3" } else { "RESP2" });
        }
    }
}

// ---------------------------------------------------------------- state that survives

/// XINFO STREAM FULL with every consumer's seen time left out (a read that
/// delivers nothing refreshes it in memory only, as Redis keeps it out of its AOF).
fn full_state(c: &mut Connection, key: &str) -> String {
    let v: Value = q(c, &["XINFO", "STREAM", key, "FULL", "COUNT", "0"]);
    let text = format!("{v:?}");
    // `seen-time` is followed by its integer: blank the integer out.
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("seen-time") {
        let (head, tail) = rest.split_at(at);
        out.push_str(head);
        let after = tail.find("Int(").map(|p| p + 4).unwrap_or(0);
        let end = tail[after..].find(')').map(|p| after + p).unwrap_or(after);
        out.push_str("seen-time\", Int(?");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// A stream with two groups in a varied state: deliveries, acks, claims,
/// deletes, a NOACK read, trimming, and consumers with and without entries.
fn build_group_state(c: &mut Connection) {
    for i in 1..=30 {
        q::<String>(c, &["XADD", "jobs", &format!("{i}-0"), "n", &i.to_string(), "body", &"x".repeat(i * 3)]);
    }
    q::<()>(c, &["XGROUP", "CREATE", "jobs", "workers", "0"]);
    q::<()>(c, &["XGROUP", "CREATE", "jobs", "audit", "$", "ENTRIESREAD", "30"]);
    q::<Value>(c, &["XREADGROUP", "GROUP", "workers", "alice", "COUNT", "7", "STREAMS", "jobs", ">"]);
    q::<Value>(c, &["XREADGROUP", "GROUP", "workers", "bob", "COUNT", "5", "STREAMS", "jobs", ">"]);
    q::<Value>(c, &["XREADGROUP", "GROUP", "workers", "carol", "NOACK", "COUNT", "3", "STREAMS", "jobs", ">"]);
    q::<i64>(c, &["XACK", "jobs", "workers", "1-0", "3-0", "9-0"]);
    q::<Value>(c, &["XCLAIM", "jobs", "workers", "bob", "0", "2-0", "4-0", "RETRYCOUNT", "5"]);
    q::<Value>(c, &["XREADGROUP", "GROUP", "workers", "alice", "STREAMS", "jobs", "0"]);
    q::<i64>(c, &["XDEL", "jobs", "10-0", "11-0"]);
    q::<Value>(c, &["XAUTOCLAIM", "jobs", "workers", "dave", "0", "0-0", "COUNT", "4"]);
    q::<i64>(c, &["XGROUP", "CREATECONSUMER", "jobs", "workers", "erin"]);
    q::<i64>(c, &["XTRIM", "jobs", "MAXLEN", "25"]);
    q::<String>(c, &["XADD", "jobs", "*", "late", "1"]);
    q::<Value>(c, &["XREADGROUP", "GROUP", "audit", "zed", "STREAMS", "jobs", ">"]);
}

#[test]
fn consumer_group_state_survives_sigkill_and_checkpoints() {
    let mut s = Server::start(&["--appendfsync", "always"]);
    let mut c = s.client();
    build_group_state(&mut c);
    let before = full_state(&mut c, "jobs");
    assert!(before.contains("pel-count"), "{before}");
    s.kill();
    s.restart();
    let mut c = s.client();
    assert_eq!(full_state(&mut c, "jobs"), before, "replayed from the log");
    q::<()>(&mut c, &["SAVE"]);
    s.kill();
    s.restart();
    let mut c = s.client();
    assert_eq!(full_state(&mut c, "jobs"), before, "loaded from a checkpoint");
    // And the group goes on from where it was.
    let v: Value = q(&mut c, &["XREADGROUP", "GROUP", "workers", "alice", "STREAMS", "jobs", ">"]);
    // 7 + 5 + 3 (NOACK) entries went out before: the next is 16-0.
    assert!(format!("{v:?}").contains("\"16-0\""), "next undelivered entry after a restart: {v:?}");
}

#[test]
fn an_emptied_stream_keeps_its_key_ids_and_groups() {
    let (_s, mut c) = start();
    q::<String>(&mut c, &["XADD", "s", "5-0", "a", "1"]);
    q::<()>(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    assert_eq!(q::<i64>(&mut c, &["XDEL", "s", "5-0"]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "s"]), 1);
    assert_eq!(q::<String>(&mut c, &["TYPE", "s"]), "stream");
    assert_eq!(
        err(&mut c, &["XADD", "s", "5-0", "a", "1"]),
        "ERR The ID specified in XADD is equal or smaller than the target stream top item"
    );
    assert_eq!(q::<i64>(&mut c, &["DEL", "s"]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "s"]), 0);
}

#[test]
fn generic_key_commands_work_on_streams() {
    let (_s, mut c) = start();
    q::<String>(&mut c, &["XADD", "{k}a", "1-0", "f", "v"]);
    q::<()>(&mut c, &["XGROUP", "CREATE", "{k}a", "g", "0"]);
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "{k}a"]), "stream");
    q::<()>(&mut c, &["SET", "{k}str", "v"]);
    let (mut cursor, mut found) = ("0".to_string(), Vec::new());
    loop {
        let (next, keys): (String, Vec<String>) = q(&mut c, &["SCAN", &cursor, "TYPE", "stream", "COUNT", "1000"]);
        found.extend(keys);
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(found, vec!["{k}a".to_string()]);
    assert_eq!(q::<i64>(&mut c, &["COPY", "{k}a", "{k}b"]), 1);
    q::<()>(&mut c, &["RENAME", "{k}a", "{k}c"]);
    let groups: Value = q(&mut c, &["XINFO", "GROUPS", "{k}b"]);
    assert!(format!("{groups:?}").contains("\"g\""), "COPY keeps the groups: {groups:?}");
    assert_eq!(q::<i64>(&mut c, &["XLEN", "{k}c"]), 1);
    assert!(q::<i64>(&mut c, &["MEMORY", "USAGE", "{k}c"]) > 0);
    q::<()>(&mut c, &["SET", "plain", "v"]);
    for cmd in [&["XLEN", "plain"][..], &["XADD", "plain", "*", "a", "1"], &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "plain", ">"]] {
        assert_eq!(err(&mut c, cmd), WRONGTYPE, "{cmd:?}");
    }
}

#[test]
fn approximate_trimming_drops_whole_blocks_and_exact_trimming_is_exact() {
    let (_s, mut c) = start();
    for i in 1..=1000 {
        q::<String>(&mut c, &["XADD", "big", "*", "i", &i.to_string()]);
    }
    assert_eq!(q::<i64>(&mut c, &["XTRIM", "big", "MAXLEN", "~", "750"]), 200);
    assert_eq!(q::<i64>(&mut c, &["XLEN", "big"]), 800);
    assert_eq!(q::<i64>(&mut c, &["XTRIM", "big", "MAXLEN", "~", "10", "LIMIT", "250"]), 200);
    assert_eq!(q::<i64>(&mut c, &["XTRIM", "big", "MAXLEN", "=", "555"]), 45);
    q::<String>(&mut c, &["XADD", "big", "MAXLEN", "500", "*", "i", "last"]);
    assert_eq!(q::<i64>(&mut c, &["XLEN", "big"]), 500);
    let first: Vec<(String, Vec<String>)> = q(&mut c, &["XRANGE", "big", "-", "+", "COUNT", "1"]);
    assert_eq!(first[0].1, vec!["i".to_string(), "502".to_string()]);
    // MINID keeps every entry at or above the ID.
    let cut = first[0].0.clone();
    assert_eq!(q::<i64>(&mut c, &["XTRIM", "big", "MINID", &cut]), 0);
}

// ---------------------------------------------------------------- blocking reads

#[test]
fn xread_block_with_dollar_wakes_on_a_later_xadd_from_another_connection() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.client();
    q::<String>(&mut c, &["XADD", "feed", "1-0", "old", "1"]);
    let waiter = send_async(s.port, &["XREAD", "BLOCK", "0", "STREAMS", "feed", "$"]);
    wait_blocked(&mut c, 1);
    // A write that is not an entry after `$` wakes nothing.
    q::<i64>(&mut c, &["XDEL", "feed", "1-0"]);
    assert!(waiter.recv_timeout(Duration::from_millis(200)).is_err(), "woken by a delete");
    q::<String>(&mut c, &["XADD", "feed", "2-0", "new", "2"]);
    let got = waiter.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(got, "*1\r\n*2\r\n$4\r\nfeed\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$3\r\nnew\r\n$1\r\n2\r\n");
}

#[test]
fn xread_block_times_out_with_a_nil_array() {
    let s = Server::start(&[]);
    let started = Instant::now();
    let got = send_async(s.port, &["XREAD", "BLOCK", "150", "STREAMS", "quiet", "$"]).recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(got, "*-1\r\n");
    assert!(started.elapsed() >= Duration::from_millis(140));
    let mut c = s.client();
    q::<()>(&mut c, &["MULTI"]);
    q::<()>(&mut c, &["XREAD", "BLOCK", "0", "STREAMS", "quiet", "$"]);
    let v: Value = q(&mut c, &["EXEC"]);
    assert_eq!(v, Value::Array(vec![Value::Nil]), "inside MULTI a blocking read answers at once");
}

#[test]
fn blocked_group_readers_are_served_first_blocked_first_served() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.client();
    q::<()>(&mut c, &["XGROUP", "CREATE", "q", "g", "$", "MKSTREAM"]);
    let mut waiters = Vec::new();
    for i in 0..5 {
        let name = format!("w{i}");
        waiters.push(send_async(s.port, &["XREADGROUP", "GROUP", "g", &name, "COUNT", "1", "BLOCK", "0", "STREAMS", "q", ">"]));
        wait_blocked(&mut c, i + 1);
    }
    for i in 0..5 {
        q::<String>(&mut c, &["XADD", "q", &format!("{}-0", i + 1), "job", &i.to_string()]);
    }
    for (i, w) in waiters.into_iter().enumerate() {
        let got = w.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(got.contains(&format!("{}-0", i + 1)), "waiter {i} got {got:?}");
    }
    let pending: Value = q(&mut c, &["XPENDING", "q", "g"]);
    let count = match &pending {
        Value::Array(items) => items.first().cloned(),
        _ => None,
    };
    assert_eq!(count, Some(Value::Int(5)), "{pending:?}");
}

#[test]
fn a_destroyed_group_answers_its_blocked_readers_with_nogroup() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<()>(&mut c, &["XGROUP", "CREATE", "q", "g", "$", "MKSTREAM"]);
    let w = send_async(s.port, &["XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "q", ">"]);
    wait_blocked(&mut c, 1);
    q::<i64>(&mut c, &["XGROUP", "DESTROY", "q", "g"]);
    let got = w.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(got.starts_with("-NOGROUP"), "{got:?}");
}

// ---------------------------------------------------------------- Redis 8.2 and 8.4

fn ints(c: &mut Connection, args: &[&str]) -> Vec<i64> {
    q(c, args)
}

/// Two groups that each hold 1-0 and 2-0 pending.
fn two_groups_holding_two_entries(c: &mut Connection) {
    q::<i64>(c, &["DEL", "ms"]);
    q::<String>(c, &["XADD", "ms", "1-0", "f", "v"]);
    q::<String>(c, &["XADD", "ms", "2-0", "f", "v"]);
    for (g, consumer) in [("group1", "consumer1"), ("group2", "consumer2")] {
        q::<()>(c, &["XGROUP", "CREATE", "ms", g, "0"]);
        q::<Value>(c, &["XREADGROUP", "GROUP", g, consumer, "STREAMS", "ms", ">"]);
    }
}

fn pending_count(c: &mut Connection, group: &str) -> i64 {
    match q::<Value>(c, &["XPENDING", "ms", group]) {
        Value::Array(v) => match v.first() {
            Some(Value::Int(n)) => *n,
            other => panic!("XPENDING count: {other:?}"),
        },
        other => panic!("XPENDING: {other:?}"),
    }
}

#[test]
fn xackdel_and_xdelex_follow_their_reference_modes() {
    let (_s, mut c) = start();
    assert_eq!(ints(&mut c, &["XACKDEL", "ms", "g", "IDS", "2", "1-1", "2-2"]), vec![-1, -1]);
    assert_eq!(err(&mut c, &["XACKDEL", "ms", "g", "IDS", "0", "1-1"]), "ERR Number of IDs must be a positive integer");
    assert_eq!(
        err(&mut c, &["XACKDEL", "ms", "g", "IDS", "3", "1-1", "2-2"]),
        "ERR The `numids` parameter must match the number of arguments"
    );
    assert_eq!(err(&mut c, &["XACKDEL", "ms", "g", "IDS", "1", "1-1", "2-2"]), "ERR syntax error");
    assert_eq!(err(&mut c, &["XACKDEL", "ms", "g", "KEEPREF", "DELREF", "IDS", "1", "1-1"]), "ERR syntax error");
    assert_eq!(err(&mut c, &["XDELEX", "ms", "IDS", "1", "not-an-id"]), "ERR Invalid stream ID specified as stream command argument");

    // DELREF: acked, deleted, and gone from every group's pending list.
    two_groups_holding_two_entries(&mut c);
    assert_eq!(ints(&mut c, &["XACKDEL", "ms", "group1", "DELREF", "IDS", "2", "1-0", "2-0"]), vec![1, 1]);
    assert_eq!(q::<i64>(&mut c, &["XLEN", "ms"]), 0);
    assert_eq!((pending_count(&mut c, "group1"), pending_count(&mut c, "group2")), (0, 0));
    assert_eq!(ints(&mut c, &["XACKDEL", "ms", "group2", "DELREF", "IDS", "2", "1-0", "2-0"]), vec![-1, -1]);

    // ACKED: deleted only once no group needs the entries.
    two_groups_holding_two_entries(&mut c);
    assert_eq!(ints(&mut c, &["XACKDEL", "ms", "group1", "ACKED", "IDS", "2", "1-0", "2-0"]), vec![2, 2]);
    assert_eq!(q::<i64>(&mut c, &["XLEN", "ms"]), 2);
    assert_eq!((pending_count(&mut c, "group1"), pending_count(&mut c, "group2")), (0, 2));
    assert_eq!(ints(&mut c, &["XACKDEL", "ms", "group2", "ACKED", "IDS", "2", "1-0", "2-0"]), vec![1, 1]);
    assert_eq!(q::<i64>(&mut c, &["XLEN", "ms"]), 0);

    // KEEPREF (the default): deleted, other groups keep their references.
    two_groups_holding_two_entries(&mut c);
    assert_eq!(ints(&mut c, &["XACKDEL", "ms", "group1", "IDS", "2", "1-0", "2-0"]), vec![1, 1]);
    assert_eq!((q::<i64>(&mut c, &["XLEN", "ms"]), pending_count(&mut c, "group2")), (0, 2));
    assert_eq!(ints(&mut c, &["XACKDEL", "ms", "group2", "KEEPREF", "IDS", "2", "1-0", "2-0"]), vec![1, 1]);
    assert_eq!(pending_count(&mut c, "group2"), 0);

    // XDELEX: ACKED waits for the group to be done with the entry.
    q::<i64>(&mut c, &["DEL", "ms"]);
    q::<String>(&mut c, &["XADD", "ms", "1-0", "a", "1"]);
    q::<()>(&mut c, &["XGROUP", "CREATE", "ms", "grp", "0"]);
    assert_eq!(ints(&mut c, &["XDELEX", "ms", "ACKED", "IDS", "1", "1-0"]), vec![2], "not yet delivered to grp");
    q::<Value>(&mut c, &["XREADGROUP", "GROUP", "grp", "c1", "STREAMS", "ms", ">"]);
    assert_eq!(ints(&mut c, &["XDELEX", "ms", "ACKED", "IDS", "1", "1-0"]), vec![2], "pending in grp");
    assert_eq!(q::<i64>(&mut c, &["XACK", "ms", "grp", "1-0"]), 1);
    assert_eq!(ints(&mut c, &["XDELEX", "ms", "ACKED", "IDS", "2", "1-0", "9-9"]), vec![1, -1]);
    assert_eq!(q::<i64>(&mut c, &["XLEN", "ms"]), 0);
}

/// The messages of a one-stream XREADGROUP reply: (id, idle, delivery count) of each.
fn claimed(v: &Value) -> Vec<(String, i64, i64)> {
    let Value::Array(streams) = v else { return Vec::new() };
    let Some(Value::Array(kv)) = streams.first() else { return Vec::new() };
    let Some(Value::Array(msgs)) = kv.get(1) else { return Vec::new() };
    msgs.iter()
        .map(|m| match m {
            Value::Array(f) => match (&f[0], &f[2], &f[3]) {
                (Value::BulkString(id), Value::Int(idle), Value::Int(n)) => (String::from_utf8_lossy(id).into_owned(), *idle, *n),
                other => panic!("claimed entry {other:?}"),
            },
            other => panic!("entry {other:?}"),
        })
        .collect()
}

#[test]
fn xreadgroup_claim_takes_idle_pending_entries_before_new_ones() {
    let (_s, mut c) = start();
    q::<String>(&mut c, &["XADD", "cs", "1-0", "f", "v1"]);
    q::<String>(&mut c, &["XADD", "cs", "2-0", "f", "v2"]);
    q::<()>(&mut c, &["XGROUP", "CREATE", "cs", "g", "0"]);
    q::<Value>(&mut c, &["XREADGROUP", "GROUP", "g", "c1", "COUNT", "1", "STREAMS", "cs", ">"]);
    // Not idle long enough: only the new entry, with zero counts.
    let v: Value = q(&mut c, &["XREADGROUP", "GROUP", "g", "c2", "CLAIM", "60000", "STREAMS", "cs", ">"]);
    assert_eq!(claimed(&v), vec![("2-0".to_string(), 0, 0)]);
    thread::sleep(Duration::from_millis(120));
    let v: Value = q(&mut c, &["XREADGROUP", "GROUP", "g", "c3", "COUNT", "1", "CLAIM", "100", "STREAMS", "cs", ">"]);
    let got = claimed(&v);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0.as_str(), got[0].2), ("1-0", 1), "count before this delivery");
    assert!(got[0].1 >= 100, "idle {}", got[0].1);
    let rows: Vec<(String, String, i64, i64)> = q(&mut c, &["XPENDING", "cs", "g", "-", "+", "10"]);
    assert_eq!((rows[0].1.as_str(), rows[0].3), ("c3", 2));
    // Nothing idle and nothing new: a nil reply.
    assert_eq!(q::<Value>(&mut c, &["XREADGROUP", "GROUP", "g", "c4", "CLAIM", "60000", "STREAMS", "cs", ">"]), Value::Nil);
    assert_eq!(
        err(&mut c, &["XREAD", "CLAIM", "5", "STREAMS", "cs", "0"]),
        "ERR The CLAIM option is only supported by XREADGROUP. You called XREAD instead."
    );
}
