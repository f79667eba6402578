//! RENAME, RENAMENX, COPY, LMOVE, RPOPLPUSH and SMOVE between keys on
//! different shards (the server's `moves` module, run by the cross-shard
//! coordinator): the same answers and errors as on one shard, values of
//! every type with their TTL, and a crash in the middle of a storm of
//! moves that keeps every element exactly once.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::thread;
use std::time::Duration;

use redis::Connection;
use strand_engine::slot::SlotMap;
use strand_tests::commands::{err, q, start};
use strand_tests::raw::Raw;
use strand_tests::{send_async, wait_blocked, Server};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn pair(prefix: &str) -> (String, String) {
    let v = strand_tests::alternating_keys(prefix, 2, 2);
    (v[0].clone(), v[1].clone())
}

fn lrange(c: &mut Connection, k: &str) -> Vec<String> {
    q(c, &["LRANGE", k, "0", "-1"])
}

#[test]
fn list_moves_across_shards() {
    let (_s, mut c) = start();
    let (a, b) = pair("l");
    q::<()>(&mut c, &["RPUSH", &a, "1", "2", "3"]);
    assert_eq!(q::<String>(&mut c, &["RPOPLPUSH", &a, &b]), "3");
    assert_eq!(q::<String>(&mut c, &["LMOVE", &a, &b, "LEFT", "RIGHT"]), "1");
    assert_eq!(q::<String>(&mut c, &["LMOVE", &b, &a, "right", "left"]), "1");
    assert_eq!(lrange(&mut c, &a), ["1", "2"]);
    assert_eq!(lrange(&mut c, &b), ["3"]);
    // The last element moved away deletes the source.
    assert_eq!(q::<String>(&mut c, &["LMOVE", &b, &a, "LEFT", "LEFT"]), "3");
    assert_eq!(q::<i64>(&mut c, &["EXISTS", &b]), 0);
    // Missing source: nil, even when the destination has another type.
    q::<()>(&mut c, &["SET", &b, "x"]);
    assert_eq!(q::<Option<String>>(&mut c, &["RPOPLPUSH", &other_of(&a), &a]), None);
    assert_eq!(q::<Option<String>>(&mut c, &["RPOPLPUSH", &other_of(&b), &b]), None);
    // Wrong types, the source's first; nothing moves.
    assert_eq!(err(&mut c, &["RPOPLPUSH", &a, &b]), WRONGTYPE);
    assert_eq!(err(&mut c, &["LMOVE", &b, &a, "LEFT", "LEFT"]), WRONGTYPE);
    assert_eq!(lrange(&mut c, &a), ["3", "1", "2"]);
    // Syntax and arity.
    assert_eq!(err(&mut c, &["LMOVE", &a, &b, "UP", "LEFT"]), "ERR syntax error");
    assert_eq!(err(&mut c, &["LMOVE", &a, &b, "LEFT"]), "ERR wrong number of arguments for 'lmove' command");
}

/// A key on the other shard from `k` (2 shards).
fn other_of(k: &str) -> String {
    let map = SlotMap::new(2);
    (0..).map(|i| format!("other{i}")).find(|o| map.shard_of(o.as_bytes()) != map.shard_of(k.as_bytes())).unwrap()
}

#[test]
fn blocking_moves_across_shards_wait_for_a_push() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let (a, b) = pair("bl");
    // An element there: moved at once.
    q::<()>(&mut c, &["RPUSH", &a, "now"]);
    assert_eq!(q::<String>(&mut c, &["BRPOPLPUSH", &a, &b, "1"]), "now");
    // None: the client waits on the source's shard until a push.
    let waiting = send_async(s.port, &["BLMOVE", &a, &b, "LEFT", "RIGHT", "0"]);
    wait_blocked(&mut c, 1);
    q::<()>(&mut c, &["RPUSH", &a, "later"]);
    assert_eq!(waiting.recv_timeout(Duration::from_secs(10)).unwrap(), "$5\r\nlater\r\n");
    assert_eq!(lrange(&mut c, &b), ["now", "later"]);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", &a]), 0);
    // A BLPOP waiting first on the source takes the element; the move waits on.
    let popper = send_async(s.port, &["BLPOP", &a, "0"]);
    wait_blocked(&mut c, 1);
    let mover = send_async(s.port, &["BRPOPLPUSH", &a, &b, "0"]);
    wait_blocked(&mut c, 2);
    q::<()>(&mut c, &["RPUSH", &a, "first"]);
    assert!(popper.recv_timeout(Duration::from_secs(10)).unwrap().contains("first"));
    wait_blocked(&mut c, 1);
    q::<()>(&mut c, &["RPUSH", &a, "second"]);
    assert_eq!(mover.recv_timeout(Duration::from_secs(10)).unwrap(), "$6\r\nsecond\r\n");
    assert_eq!(lrange(&mut c, &b), ["second", "now", "later"]);
    // The timeout: nil.
    let started = std::time::Instant::now();
    let timed_out = send_async(s.port, &["BLMOVE", &a, &b, "LEFT", "LEFT", "0.2"]);
    assert_eq!(timed_out.recv_timeout(Duration::from_secs(5)).unwrap(), "*-1\r\n", "a null array, as on one shard");
    // (Less a little: the server's clock counts whole milliseconds.)
    assert!(started.elapsed() >= Duration::from_millis(195), "{:?}", started.elapsed());
    // Errors, as on one shard.
    assert_eq!(err(&mut c, &["BLMOVE", &a, &b, "UP", "LEFT", "0"]), "ERR syntax error");
    assert_eq!(err(&mut c, &["BRPOPLPUSH", &a, &b, "-1"]), "ERR timeout is negative");
    assert_eq!(err(&mut c, &["BRPOPLPUSH", &a, &b, "x"]), "ERR timeout is not a float or out of range");
    q::<()>(&mut c, &["SET", &b, "string"]);
    q::<()>(&mut c, &["RPUSH", &a, "x"]);
    assert_eq!(err(&mut c, &["BLMOVE", &a, &b, "LEFT", "LEFT", "0"]), WRONGTYPE);
    assert_eq!(lrange(&mut c, &a), ["x"]);
}

#[test]
fn a_blocking_move_whose_client_leaves_takes_nothing() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let (a, b) = pair("gone");
    let mut r = Raw::new(&s);
    r.send(&["BRPOPLPUSH", &a, &b, "0"]);
    wait_blocked(&mut c, 1);
    drop(r);
    wait_blocked(&mut c, 0);
    q::<()>(&mut c, &["RPUSH", &a, "kept"]);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(lrange(&mut c, &a), ["kept"]);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", &b]), 0);
}

#[test]
fn smove_across_shards() {
    let (_s, mut c) = start();
    let (a, b) = pair("s");
    q::<()>(&mut c, &["SADD", &a, "x", "y"]);
    q::<()>(&mut c, &["SADD", &b, "y"]);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", &a, &b, "x"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", &a, &b, "nope"]), 0);
    // Already in the destination: it leaves the source all the same.
    assert_eq!(q::<i64>(&mut c, &["SMOVE", &a, &b, "y"]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", &a]), 0);
    let mut m: Vec<String> = q(&mut c, &["SMEMBERS", &b]);
    m.sort();
    assert_eq!(m, ["x", "y"]);
    // Missing source: 0 even against a wrong-typed destination; else the types are checked.
    q::<()>(&mut c, &["SET", &a, "str"]);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", &other_of(&a), &a, "x"]), 0);
    assert_eq!(err(&mut c, &["SMOVE", &b, &a, "x"]), WRONGTYPE);
    assert_eq!(err(&mut c, &["SMOVE", &a, &b, "x"]), WRONGTYPE);
    assert_eq!(q::<i64>(&mut c, &["SCARD", &b]), 2);
}

/// A whole value of any type, written out so that two keys can be compared
/// (hash fields and set members sorted: their order is the table's).
fn read_all(c: &mut Connection, key: &str) -> String {
    let ty: String = q(c, &["TYPE", key]);
    match ty.as_str() {
        "hash" => format!("{:?}", q::<BTreeMap<String, String>>(c, &["HGETALL", key])),
        "set" => {
            let mut m: Vec<String> = q(c, &["SMEMBERS", key]);
            m.sort();
            format!("{m:?}")
        }
        _ => {
            let args: Vec<&str> = match ty.as_str() {
                "string" => vec!["GET", key],
                "list" => vec!["LRANGE", key, "0", "-1"],
                "zset" => vec!["ZRANGE", key, "0", "-1", "WITHSCORES"],
                "stream" => vec!["XRANGE", key, "-", "+"],
                "TSDB-TYPE" => vec!["TS.RANGE", key, "-", "+"],
                other => panic!("no reader for type {other}"),
            };
            format!("{:?}", q::<redis::Value>(c, &args))
        }
    }
}

#[test]
fn rename_and_copy_move_every_type_with_its_ttl() {
    let (_s, mut c) = start();
    let (src, dst) = pair("t");
    let fills: &[&[&str]] = &[
        &["SET", "K", "plain"],
        &["HSET", "K", "f", "v", "g", "w"],
        &["RPUSH", "K", "1", "2", "3"],
        &["SADD", "K", "a", "b", "c"],
        &["ZADD", "K", "1", "a", "2.5", "b"],
        &["XADD", "K", "1-1", "f", "v"],
        &["TS.ADD", "K", "1000", "1.5", "LABELS", "host", "h1"],
    ];
    for fill in fills {
        let args: Vec<&str> = fill.iter().map(|a| if *a == "K" { src.as_str() } else { a }).collect();
        q::<()>(&mut c, &["DEL", &src, &dst]);
        q::<()>(&mut c, &args);
        q::<()>(&mut c, &["PEXPIRE", &src, "100000"]);
        let ty: String = q(&mut c, &["TYPE", &src]);
        let value = read_all(&mut c, &src);
        assert_eq!(q::<i64>(&mut c, &["COPY", &src, &dst]), 1, "{fill:?}");
        assert_eq!(q::<String>(&mut c, &["TYPE", &dst]), ty, "{fill:?}");
        assert_eq!(read_all(&mut c, &dst), value, "{fill:?}");
        assert_eq!(q::<i64>(&mut c, &["COPY", &src, &dst]), 0, "{fill:?}: the destination exists");
        assert_eq!(q::<i64>(&mut c, &["RENAMENX", &src, &dst]), 0, "{fill:?}: the destination exists");
        q::<()>(&mut c, &["DEL", &dst]);
        assert_eq!(q::<String>(&mut c, &["RENAME", &src, &dst]), "OK", "{fill:?}");
        assert_eq!(q::<i64>(&mut c, &["EXISTS", &src]), 0, "{fill:?}");
        assert_eq!(read_all(&mut c, &dst), value, "{fill:?}");
        let pttl: i64 = q(&mut c, &["PTTL", &dst]);
        assert!((90_000..=100_000).contains(&pttl), "{fill:?}: PTTL {pttl}");
        assert_eq!(q::<i64>(&mut c, &["RENAMENX", &dst, &src]), 1, "{fill:?}");
        assert_eq!(read_all(&mut c, &src), value, "{fill:?}");
    }
    // The moved series is found by its labels where it now lives.
    let found: Vec<String> = q(&mut c, &["TS.QUERYINDEX", "host=h1"]);
    assert_eq!(found, std::slice::from_ref(&src));
    assert_eq!(err(&mut c, &["RENAME", &dst, &src]), "ERR no such key");
    assert_eq!(q::<i64>(&mut c, &["COPY", &dst, &src]), 0);
    // COPY's options, to another database too.
    q::<()>(&mut c, &["SET", &dst, "other"]);
    assert_eq!(q::<i64>(&mut c, &["COPY", &src, &dst, "REPLACE"]), 1);
    assert_eq!(q::<String>(&mut c, &["TYPE", &dst]), "TSDB-TYPE");
    assert_eq!(q::<i64>(&mut c, &["COPY", &src, &dst, "DB", "2"]), 1);
    assert_eq!(err(&mut c, &["COPY", &src, &dst, "DB", "16"]), "ERR DB index is out of range");
    assert_eq!(err(&mut c, &["COPY", &src, &dst, "NOPE"]), "ERR syntax error");
    q::<()>(&mut c, &["SELECT", "2"]);
    assert_eq!(q::<String>(&mut c, &["TYPE", &dst]), "TSDB-TYPE");
}

#[test]
fn a_series_with_compaction_rules_stays_on_its_shard() {
    let (_s, mut c) = start();
    let raw = "{r}raw";
    q::<()>(&mut c, &["TS.CREATE", raw]);
    q::<()>(&mut c, &["TS.CREATE", "{r}avg"]);
    q::<()>(&mut c, &["TS.CREATERULE", raw, "{r}avg", "AGGREGATION", "avg", "1000"]);
    let away = other_of(raw);
    for args in [&["RENAME", raw, &away][..], &["COPY", raw, &away], &["RENAME", "{r}avg", &away]] {
        let e = err(&mut c, args);
        assert!(e.starts_with("CROSSSLOT a time series with compaction rules"), "{args:?}: {e}");
    }
    assert_eq!(q::<i64>(&mut c, &["EXISTS", raw, "{r}avg", &away]), 2);
}

/// Several clients move the elements of lists on 3 shards around a ring
/// with RPOPLPUSH and LMOVE, and the server is killed (SIGKILL) in the
/// middle. After the restart every element is in exactly one list: no move
/// was kept on one shard and lost on the other.
#[test]
fn a_crash_among_moves_keeps_every_element_once() {
    let mut s = Server::start(&["--shards", "3", "--appendfsync", "always"]);
    let lists = strand_tests::alternating_keys("ring", 6, 3);
    let mut c = s.client();
    let total = 600;
    for (i, l) in lists.iter().enumerate() {
        let elems: Vec<String> = (0..total / lists.len()).map(|j| format!("e{i}-{j}")).collect();
        let mut args = vec!["RPUSH", l.as_str()];
        args.extend(elems.iter().map(String::as_str));
        q::<()>(&mut c, &args);
    }
    let movers: Vec<_> = (0..6)
        .map(|w| {
            let mut c = s.client();
            c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let lists = lists.clone();
            thread::spawn(move || {
                for i in 0.. {
                    let (from, to) = (&lists[(w + i) % lists.len()], &lists[(w + i + 1) % lists.len()]);
                    let moved = if i % 2 == 0 {
                        redis::cmd("RPOPLPUSH").arg(from).arg(to).query::<Option<String>>(&mut c)
                    } else {
                        redis::cmd("LMOVE").arg(from).arg(to).arg("LEFT").arg("RIGHT").query::<Option<String>>(&mut c)
                    };
                    if moved.is_err() {
                        return i;
                    }
                }
                unreachable!()
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(1500));
    s.kill();
    let moves: usize = movers.into_iter().map(|m| m.join().unwrap()).sum();
    assert!(moves > 100, "only {moves} moves ran before the crash");
    eprintln!("{moves} moves before the crash");
    s.restart();
    let mut c = s.client();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for l in &lists {
        for e in lrange(&mut c, l) {
            *seen.entry(e).or_default() += 1;
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "elements in two lists after the crash: {twice:?}");
    assert_eq!(seen.len(), total, "elements lost in the crash");
}

/// A queue or a stream renamed onto another shard keeps its deadlines: the
/// new shard's timer returns a lease that ran out to a waiting consumer,
/// and ages the stream out, with nothing else writing to either.
#[test]
fn a_queue_and_a_stream_renamed_across_shards_keep_their_timers() {
    let (_s, mut c) = start();
    let (q0, q1) = pair("queue");
    let _: String = q(&mut c, &["QPUSH", &q0, "work"]);
    let leased: redis::Value = q(&mut c, &["QPOP", &q0, "LEASE", "300"]);
    assert_ne!(leased, redis::Value::Nil);
    let _: () = q(&mut c, &["RENAME", &q0, &q1]);
    // Nothing is ready now: only the lease running out on the new shard's timer serves this pop.
    let again: redis::Value = q(&mut c, &["QPOP", &q1, "BLOCK", "5000"]);
    assert_ne!(again, redis::Value::Nil, "the lease never ran out on the destination's shard");
    let (s0, s1) = pair("stream");
    let _: String = q(&mut c, &["XADD", &s0, "*", "f", "v"]);
    let _: () = q(&mut c, &["XCFGSET", &s0, "RETENTION-MS", "300"]);
    let _: () = q(&mut c, &["RENAME", &s0, &s1]);
    let aged = (0..50).any(|_| {
        thread::sleep(Duration::from_millis(100));
        q::<i64>(&mut c, &["XLEN", &s1]) == 0
    });
    assert!(aged, "the stream's retention was not enforced on the destination's shard");
}
