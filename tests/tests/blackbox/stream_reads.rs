//! XREAD and XREADGROUP over streams on different shards (the server's
//! `stream_reads` module): answers in the order of the request, COUNT per
//! stream, BLOCK woken by an append on either shard, and XREADGROUP that
//! delivers nothing anywhere when one shard refuses.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use redis::{Connection, Value};
use strand_engine::slot::SlotMap;
use strand_tests::commands::{err, q};
use strand_tests::raw::Raw;
use strand_tests::{send_async, wait_blocked, Server};

/// Two stream keys on different shards (2 shards).
fn apart(prefix: &str) -> (String, String) {
    let map = SlotMap::new(2);
    let a = format!("{prefix}:a");
    let b = (0..).map(|i| format!("{prefix}:b{i}")).find(|b| map.shard_of(b.as_bytes()) != map.shard_of(a.as_bytes())).unwrap();
    (a, b)
}

/// The stream names of an XREAD reply and the entry IDs under each.
fn streams(v: Value) -> Vec<(String, Vec<String>)> {
    let Value::Array(items) = v else { panic!("not an array: {v:?}") };
    items
        .into_iter()
        .map(|s| {
            let Value::Array(pair) = s else { panic!("not a pair: {s:?}") };
            let name: String = redis::from_redis_value(&pair[0]).unwrap();
            let Value::Array(entries) = &pair[1] else { panic!("no entries: {pair:?}") };
            let ids = entries
                .iter()
                .map(|e| match e {
                    Value::Array(e) => redis::from_redis_value::<String>(&e[0]).unwrap(),
                    other => panic!("not an entry: {other:?}"),
                })
                .collect();
            (name, ids)
        })
        .collect()
}

fn xadd(c: &mut Connection, key: &str, id: &str) {
    q::<String>(c, &["XADD", key, id, "f", "v"]);
}

#[test]
fn xread_across_shards_answers_in_the_order_asked() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let (a, b) = apart("r");
    xadd(&mut c, &a, "1-1");
    xadd(&mut c, &a, "1-2");
    xadd(&mut c, &b, "2-1");
    let got = streams(q(&mut c, &["XREAD", "STREAMS", &b, &a, "0", "0"]));
    assert_eq!(got, [(b.clone(), vec!["2-1".to_string()]), (a.clone(), vec!["1-1".to_string(), "1-2".to_string()])]);
    let got = streams(q(&mut c, &["XREAD", "COUNT", "1", "STREAMS", &a, &b, "0", "0"]));
    assert_eq!(got, [(a.clone(), vec!["1-1".to_string()]), (b.clone(), vec!["2-1".to_string()])]);
    // Only the streams with news answer; none: a nil array.
    let got = streams(q(&mut c, &["XREAD", "STREAMS", &a, &b, "1-1", "2-1"]));
    assert_eq!(got, [(a.clone(), vec!["1-2".to_string()])]);
    assert_eq!(q::<Value>(&mut c, &["XREAD", "STREAMS", &a, &b, "$", "$"]), Value::Nil);
    // Errors as on one shard.
    q::<()>(&mut c, &["SET", &b, "string"]);
    assert_eq!(err(&mut c, &["XREAD", "STREAMS", &a, &b, "0", "0"]), "WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_eq!(err(&mut c, &["XREAD", "STREAMS", &a, &b, "0"]).split(' ').next(), Some("ERR"));
    assert_eq!(err(&mut c, &["XREAD", "COUNT", "x", "STREAMS", &a, &b, "0", "0"]), "ERR value is not an integer or out of range");
}

#[test]
fn xread_block_across_shards_wakes_on_either_shard() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let (a, b) = apart("w");
    xadd(&mut c, &a, "1-1");
    for (wake, id) in [(&b, "5-1"), (&a, "6-1")] {
        let reply = send_async(s.port, &["XREAD", "BLOCK", "0", "STREAMS", &a, &b, "$", "$"]);
        wait_blocked(&mut c, 2);
        xadd(&mut c, wake, id);
        let text = reply.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(text.contains(wake.as_str()) && text.contains(id), "{text}");
        wait_blocked(&mut c, 0);
    }
    // The timeout: nil, and no wait is left behind.
    let started = std::time::Instant::now();
    assert_eq!(q::<Value>(&mut c, &["XREAD", "BLOCK", "200", "STREAMS", &a, &b, "$", "$"]), Value::Nil);
    // (Less a little: the server's clock counts whole milliseconds.)
    assert!(started.elapsed() >= Duration::from_millis(195), "{:?}", started.elapsed());
    wait_blocked(&mut c, 0);
    // A client that leaves ends its waits on both shards.
    let mut r = Raw::new(&s);
    r.send(&["XREAD", "BLOCK", "0", "STREAMS", &a, &b, "$", "$"]);
    wait_blocked(&mut c, 2);
    drop(r);
    wait_blocked(&mut c, 0);
}

#[test]
fn xreadgroup_across_shards_delivers_everywhere_or_nowhere() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let (a, b) = apart("g");
    for k in [&a, &b] {
        q::<()>(&mut c, &["XGROUP", "CREATE", k, "grp", "0", "MKSTREAM"]);
    }
    xadd(&mut c, &a, "1-1");
    xadd(&mut c, &b, "1-1");
    let got = streams(q(&mut c, &["XREADGROUP", "GROUP", "grp", "c1", "STREAMS", &b, &a, ">", ">"]));
    assert_eq!(got, [(b.clone(), vec!["1-1".to_string()]), (a.clone(), vec!["1-1".to_string()])]);
    let pending = |c: &mut Connection, k: &str| q::<Vec<Value>>(c, &["XPENDING", k, "grp"])[0].clone();
    assert_eq!(pending(&mut c, &a), Value::Int(1));
    assert_eq!(pending(&mut c, &b), Value::Int(1));
    // One shard without the group: NOGROUP, and the other delivers nothing.
    let map = SlotMap::new(2);
    let x = (0..).map(|i| format!("nogroup{i}")).find(|x| map.shard_of(x.as_bytes()) != map.shard_of(a.as_bytes())).unwrap();
    xadd(&mut c, &x, "1-1");
    xadd(&mut c, &a, "2-1");
    let e = err(&mut c, &["XREADGROUP", "GROUP", "grp", "c1", "STREAMS", &a, &x, ">", ">"]);
    assert!(e.starts_with("NOGROUP"), "{e}");
    assert_eq!(pending(&mut c, &a), Value::Int(1), "nothing was delivered");
    // BLOCK: woken by an append on either shard; the history form reads back.
    let reply = send_async(s.port, &["XREADGROUP", "GROUP", "grp", "c2", "BLOCK", "0", "STREAMS", &b, &a, ">", ">"]);
    let text = reply.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(text.contains("2-1"), "the entry already there is served at once: {text}");
    let reply = send_async(s.port, &["XREADGROUP", "GROUP", "grp", "c2", "BLOCK", "0", "STREAMS", &b, &a, ">", ">"]);
    wait_blocked(&mut c, 2);
    xadd(&mut c, &b, "3-1");
    let text = reply.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(text.contains("3-1"), "{text}");
    let got = streams(q(&mut c, &["XREADGROUP", "GROUP", "grp", "c2", "STREAMS", &a, &b, "0", "0"]));
    assert_eq!(got, [(a.clone(), vec!["2-1".to_string()]), (b.clone(), vec!["3-1".to_string()])]);
}

/// Consumers blocked in XREADGROUP over streams on both shards while
/// producers append to both: every entry is answered to exactly one
/// consumer, and the group holds no pending entry that no consumer was
/// answered (a wait delivers nothing; the read after it does).
#[test]
fn xreadgroup_across_shards_answers_every_delivery() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let (a, b) = apart("race");
    for k in [&a, &b] {
        q::<()>(&mut c, &["XGROUP", "CREATE", k, "grp", "$", "MKSTREAM"]);
    }
    let per_stream = 300;
    let consumers: Vec<_> = (0..4)
        .map(|n| {
            let mut c = s.client();
            let (a, b) = (a.clone(), b.clone());
            std::thread::spawn(move || {
                let mut got: Vec<(String, String)> = Vec::new();
                let consumer = format!("c{n}");
                loop {
                    let v: Value =
                        q(&mut c, &["XREADGROUP", "GROUP", "grp", &consumer, "COUNT", "3", "BLOCK", "500", "STREAMS", &a, &b, ">", ">"]);
                    if v == Value::Nil {
                        return got;
                    }
                    for (stream, ids) in streams(v) {
                        got.extend(ids.into_iter().map(|id| (stream.clone(), id)));
                    }
                }
            })
        })
        .collect();
    let producers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|k| {
            let mut c = s.client();
            std::thread::spawn(move || {
                for _ in 0..per_stream {
                    q::<String>(&mut c, &["XADD", &k, "*", "f", "v"]);
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut answered: Vec<(String, String)> = consumers.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let total = answered.len();
    answered.sort();
    answered.dedup();
    assert_eq!(answered.len(), total, "an entry was answered twice");
    assert_eq!(total, 2 * per_stream, "entries never answered");
    let pending: i64 = [&a, &b]
        .iter()
        .map(|k| q::<Vec<Value>>(&mut c, &["XPENDING", k, "grp"])[0].clone())
        .map(|v| redis::from_redis_value::<i64>(&v).unwrap())
        .sum();
    assert_eq!(pending as usize, total, "pending entries that no consumer was answered");
    // The timeout: a null array, after it passed.
    let started = std::time::Instant::now();
    let reply = send_async(s.port, &["XREADGROUP", "GROUP", "grp", "late", "BLOCK", "200", "STREAMS", &a, &b, ">", ">"]);
    assert_eq!(reply.recv_timeout(Duration::from_secs(5)).unwrap(), "*-1\r\n");
    assert!(started.elapsed() >= Duration::from_millis(190));
}

/// A reader still waiting after an append (XREAD after an ID the stream
/// has not reached) does not hold back the readers blocked after it, on one
/// shard or across two.
#[test]
fn a_reader_that_still_waits_does_not_hold_back_the_others() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let (a, b) = apart("held");
    for k in [&a, &b] {
        q::<()>(&mut c, &["XGROUP", "CREATE", k, "grp", "$", "MKSTREAM"]);
    }
    let ahead = send_async(s.port, &["XREAD", "BLOCK", "0", "STREAMS", &a, "99999999999999-0"]);
    wait_blocked(&mut c, 1);
    let plain = send_async(s.port, &["XREAD", "BLOCK", "0", "STREAMS", &a, "$"]);
    wait_blocked(&mut c, 2);
    let across = send_async(s.port, &["XREADGROUP", "GROUP", "grp", "c", "BLOCK", "0", "STREAMS", &a, &b, ">", ">"]);
    wait_blocked(&mut c, 4);
    xadd(&mut c, &a, "5-1");
    assert!(plain.recv_timeout(Duration::from_secs(5)).unwrap().contains("5-1"));
    assert!(across.recv_timeout(Duration::from_secs(5)).unwrap().contains("5-1"));
    assert!(ahead.recv_timeout(Duration::from_millis(100)).is_err(), "the reader after a later ID still waits");
}
