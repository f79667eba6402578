//! Pub/sub: SUBSCRIBE, PSUBSCRIBE, their UNSUBSCRIBE forms, PUBLISH across
//! shards (in order per publisher), PUBSUB CHANNELS/NUMSUB/NUMPAT, the
//! RESP2 subscribed context, and RESP3 push messages between replies.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use strand_tests::commands::q;
use strand_tests::Server;

fn raw(s: &Server) -> TcpStream {
    let addr = s.url().trim_start_matches("redis://").trim_end_matches('/').to_string();
    let t = TcpStream::connect(addr).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    t
}

/// Sends `send`, then reads exactly `want.len()` bytes and compares.
fn exchange(t: &mut TcpStream, send: &str, want: &str) {
    t.write_all(send.as_bytes()).unwrap();
    expect(t, want);
}

fn expect(t: &mut TcpStream, want: &str) {
    let mut got = vec![0u8; want.len()];
    t.read_exact(&mut got).unwrap_or_else(|e| panic!("waiting for {want:?}: {e}"));
    assert_eq!(String::from_utf8_lossy(&got), want);
}

#[test]
fn messages_reach_subscribers_on_every_shard_in_order() {
    let s = Server::start(&[]);
    // Enough subscribers that both shards have some (SO_REUSEPORT spreads connections).
    let mut subs: Vec<TcpStream> = (0..6).map(|_| raw(&s)).collect();
    for t in &mut subs {
        exchange(t, "SUBSCRIBE news\r\n", "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    }
    let mut c = s.client();
    for i in 0..50 {
        assert_eq!(q::<i64>(&mut c, &["PUBLISH", "news", &format!("m{i}")]), 6);
    }
    for t in &mut subs {
        for i in 0..50 {
            let m = format!("m{i}");
            expect(t, &format!("*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n${}\r\n{m}\r\n", m.len()));
        }
    }
    assert_eq!(q::<i64>(&mut c, &["PUBLISH", "nobody", "x"]), 0);
}

#[test]
fn patterns_receive_pmessages() {
    let s = Server::start(&[]);
    let mut t = raw(&s);
    exchange(
        &mut t,
        "PSUBSCRIBE n*s h?llo\r\n",
        "*3\r\n$10\r\npsubscribe\r\n$3\r\nn*s\r\n:1\r\n*3\r\n$10\r\npsubscribe\r\n$5\r\nh?llo\r\n:2\r\n",
    );
    let mut c = s.client();
    assert_eq!(q::<i64>(&mut c, &["PUBLISH", "news", "x"]), 1);
    assert_eq!(q::<i64>(&mut c, &["PUBLISH", "other", "x"]), 0);
    expect(&mut t, "*4\r\n$8\r\npmessage\r\n$3\r\nn*s\r\n$4\r\nnews\r\n$1\r\nx\r\n");
    exchange(&mut t, "PUNSUBSCRIBE n*s\r\n", "*3\r\n$12\r\npunsubscribe\r\n$3\r\nn*s\r\n:1\r\n");
    assert_eq!(q::<i64>(&mut c, &["PUBLISH", "news", "y"]), 0);
    assert_eq!(q::<i64>(&mut c, &["PUBLISH", "hello", "z"]), 1);
    expect(&mut t, "*4\r\n$8\r\npmessage\r\n$5\r\nh?llo\r\n$5\r\nhello\r\n$1\r\nz\r\n");
}

#[test]
fn unsubscribe_replies_and_counts_match_redis() {
    let s = Server::start(&[]);
    let mut t = raw(&s);
    exchange(&mut t, "UNSUBSCRIBE\r\n", "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
    exchange(&mut t, "SUBSCRIBE a b\r\n", "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n");
    // Subscribing twice to one channel counts it once.
    exchange(&mut t, "SUBSCRIBE a\r\n", "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n");
    exchange(&mut t, "UNSUBSCRIBE\r\n", "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n");
    // Out of the subscribed context, any command works again.
    exchange(&mut t, "SET k v\r\n", "+OK\r\n");
}

#[test]
fn resp2_subscribed_context_allows_only_pubsub_commands() {
    let s = Server::start(&[]);
    let mut t = raw(&s);
    exchange(&mut t, "SUBSCRIBE a\r\n", "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
    exchange(
        &mut t,
        "GET k\r\n",
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    );
    exchange(&mut t, "PING\r\n", "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    exchange(&mut t, "PING hi\r\n", "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");
    exchange(&mut t, "RESET\r\n", "+RESET\r\n");
    exchange(&mut t, "GET k\r\n", "$-1\r\n");
    let mut c = s.client();
    assert_eq!(q::<i64>(&mut c, &["PUBLISH", "a", "x"]), 0, "RESET dropped the subscription");
}

#[test]
fn resp3_subscribers_get_push_messages_between_replies() {
    let s = Server::start(&[]);
    let mut t = raw(&s);
    t.write_all(b"HELLO 3\r\n").unwrap();
    let mut hello = [0u8; 1];
    t.read_exact(&mut hello).unwrap();
    assert_eq!(&hello, b"%");
    // Drain the rest of the HELLO map by asking for something with a known answer.
    t.write_all(b"ECHO marker\r\n").unwrap();
    let mut seen = Vec::new();
    while !seen.ends_with(b"$6\r\nmarker\r\n") {
        let mut b = [0u8; 1];
        t.read_exact(&mut b).unwrap();
        seen.push(b[0]);
    }
    exchange(&mut t, "SUBSCRIBE a\r\n", ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
    exchange(&mut t, "SET k v\r\n", "+OK\r\n");
    let mut c = s.client();
    assert_eq!(q::<i64>(&mut c, &["PUBLISH", "a", "hi"]), 1);
    expect(&mut t, ">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n");
    exchange(&mut t, "GET k\r\n", "$1\r\nv\r\n");
}

#[test]
fn pubsub_introspection_counts_every_shard() {
    let s = Server::start(&[]);
    let mut subs: Vec<TcpStream> = (0..4).map(|_| raw(&s)).collect();
    for t in &mut subs {
        exchange(t, "SUBSCRIBE ch1 ch2\r\n", "*3\r\n$9\r\nsubscribe\r\n$3\r\nch1\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$3\r\nch2\r\n:2\r\n");
        exchange(t, "PSUBSCRIBE p*\r\n", "*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:3\r\n");
    }
    let mut c = s.client();
    let mut channels: Vec<String> = q(&mut c, &["PUBSUB", "CHANNELS"]);
    channels.sort();
    assert_eq!(channels, vec!["ch1", "ch2"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["PUBSUB", "CHANNELS", "*1"]), vec!["ch1"]);
    let numsub: Vec<redis::Value> = q(&mut c, &["PUBSUB", "NUMSUB", "ch1", "none"]);
    assert_eq!(
        numsub,
        vec![
            redis::Value::BulkString(b"ch1".to_vec()),
            redis::Value::Int(4),
            redis::Value::BulkString(b"none".to_vec()),
            redis::Value::Int(0)
        ]
    );
    assert_eq!(q::<i64>(&mut c, &["PUBSUB", "NUMPAT"]), 1, "one distinct pattern");
    drop(subs);
    // Closed connections leave no subscription behind.
    for _ in 0..100 {
        if q::<i64>(&mut c, &["PUBLISH", "ch1", "x"]) == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("subscriptions of closed connections remain");
}
