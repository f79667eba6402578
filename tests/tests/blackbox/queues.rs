//! Reliable queues: QPUSH ... QPURGE against the real binary.
//!
//! Delivery order (priority, then first in first out), deduplication,
//! delays, TTLs, leases that run out, max-deliveries into the dead-letter
//! list and back, the three kinds of nack, length limits, blocking pops woken
//! by pushes and by the timer, and a crash test: producers and consumers
//! with random failures while the server is SIGKILLed, after which every
//! message was acknowledged exactly once or sits in the dead-letter list.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::thread;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use redis::{Connection, Value};
use strand_tests::commands::{err, q, start};
use strand_tests::{send_async, wait_blocked, Server};

/// One delivered message: (id, payload, attempt).
type Delivery = (String, String, i64);

fn pop(c: &mut Connection, args: &[&str]) -> Vec<Delivery> {
    match q::<Value>(c, args) {
        Value::Nil => Vec::new(),
        v => redis::from_redis_value(&v).unwrap(),
    }
}

fn info(c: &mut Connection, queue: &str) -> HashMap<String, Value> {
    let v: Vec<Value> = q(c, &["QINFO", queue]);
    v.chunks(2).map(|p| (redis::from_redis_value::<String>(&p[0]).unwrap(), p[1].clone())).collect()
}

fn info_int(c: &mut Connection, queue: &str, field: &str) -> i64 {
    match info(c, queue).get(field) {
        Some(Value::Int(n)) => *n,
        other => panic!("QINFO {field}: {other:?}"),
    }
}

#[test]
fn delivery_order_dedup_delay_and_ttl() {
    let (_s, mut c) = start();
    let a: String = q(&mut c, &["QPUSH", "jobs", "a"]);
    let b: String = q(&mut c, &["QPUSH", "jobs", "b", "PRIORITY", "5"]);
    let first: String = q(&mut c, &["QPUSH", "jobs", "c", "ID", "order-17"]);
    let again: String = q(&mut c, &["QPUSH", "jobs", "c-again", "ID", "order-17"]);
    assert_eq!(again, first, "a duplicate answers the original ID");
    q::<String>(&mut c, &["QPUSH", "jobs", "later", "DELAY", "300"]);
    q::<String>(&mut c, &["QPUSH", "jobs", "short-lived", "TTL", "100"]);
    assert_eq!(q::<i64>(&mut c, &["QLEN", "jobs"]), 5);
    let peek: Vec<Delivery> = q(&mut c, &["QPEEK", "jobs", "COUNT", "10"]);
    let order: Vec<&str> = peek.iter().map(|d| d.1.as_str()).collect();
    assert_eq!(order, ["b", "a", "c", "short-lived"], "priority first, then push order; the delayed one waits");
    assert_eq!((peek[0].0.as_str(), peek[1].0.as_str()), (b.as_str(), a.as_str()));
    thread::sleep(Duration::from_millis(350));
    let all = pop(&mut c, &["QPOP", "jobs", "COUNT", "10"]);
    let got: Vec<&str> = all.iter().map(|d| d.1.as_str()).collect();
    assert_eq!(got, ["b", "a", "c", "later"], "the TTL ran out before delivery; the delay came due");
    assert!(all.iter().all(|d| d.2 == 1), "first attempts: {all:?}");
    assert_eq!(info_int(&mut c, "jobs", "expired"), 1);
    assert_eq!(info_int(&mut c, "jobs", "leased"), 4);
    assert_eq!(pop(&mut c, &["QPOP", "jobs"]), Vec::new());
}

#[test]
fn leases_run_out_into_redelivery_then_the_dead_letter_list() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["QCONFIG", "q", "MAX-DELIVERIES", "2", "LEASE", "100"]);
    let id: String = q(&mut c, &["QPUSH", "q", "work"]);
    assert_eq!(pop(&mut c, &["QPOP", "q"]), vec![(id.clone(), "work".into(), 1)]);
    thread::sleep(Duration::from_millis(150));
    assert_eq!(pop(&mut c, &["QPOP", "q"]), vec![(id.clone(), "work".into(), 2)], "redelivered after the lease");
    thread::sleep(Duration::from_millis(150));
    assert_eq!(pop(&mut c, &["QPOP", "q"]), Vec::new(), "two deliveries failed: dead-lettered");
    let dead: Vec<(String, String, i64, String)> = q(&mut c, &["QDLQ", "q", "LIST"]);
    assert_eq!(dead, vec![(id.clone(), "work".into(), 2, "lease expired".into())]);
    assert_eq!((info_int(&mut c, "q", "dead"), info_int(&mut c, "q", "lease-expired")), (1, 2));
    assert_eq!(q::<i64>(&mut c, &["QDLQ", "q", "REDRIVE"]), 1);
    let d = pop(&mut c, &["QPOP", "q", "LEASE", "60000"]);
    assert_eq!(d, vec![(id.clone(), "work".into(), 1)], "a redriven message starts its attempts again");
    assert_eq!(q::<i64>(&mut c, &["QEXTEND", "q", &id, "60000"]), 1);
    assert_eq!(q::<i64>(&mut c, &["QACK", "q", &id, &id]), 1);
    assert_eq!(q::<i64>(&mut c, &["QACK", "q", &id]), 0, "acked once only");
    assert_eq!(q::<i64>(&mut c, &["QLEN", "q"]), 0);
}

#[test]
fn nacks_release_fail_or_dead_letter() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["QCONFIG", "q", "MAX-DELIVERIES", "2"]);
    let id: String = q(&mut c, &["QPUSH", "q", "m"]);
    pop(&mut c, &["QPOP", "q"]);
    assert_eq!(q::<i64>(&mut c, &["QNACK", "q", &id]), 1);
    assert_eq!(pop(&mut c, &["QPOP", "q"])[0].2, 1, "a plain nack does not count the delivery");
    assert_eq!(q::<i64>(&mut c, &["QNACK", "q", &id, "FAIL"]), 1);
    assert_eq!(pop(&mut c, &["QPOP", "q"])[0].2, 2);
    assert_eq!(q::<i64>(&mut c, &["QNACK", "q", &id, "FAIL", "DELAY", "10"]), 1);
    assert_eq!(info_int(&mut c, "q", "dead"), 1, "the second failure reached max-deliveries");
    assert_eq!(q::<i64>(&mut c, &["QNACK", "q", &id]), 0, "not leased any more");
    let other: String = q(&mut c, &["QPUSH", "q", "poison"]);
    pop(&mut c, &["QPOP", "q"]);
    assert_eq!(q::<i64>(&mut c, &["QNACK", "q", &other, "FATAL"]), 1);
    let dead: Vec<(String, String, i64, String)> = q(&mut c, &["QDLQ", "q", "LIST", "COUNT", "10"]);
    assert_eq!(dead.iter().map(|d| d.3.as_str()).collect::<Vec<_>>(), ["nack", "fatal nack"]);
    assert_eq!(q::<i64>(&mut c, &["QDLQ", "q", "PURGE"]), 2);
    // With a delay, a released message waits before it is ready again.
    let id: String = q(&mut c, &["QPUSH", "q", "x"]);
    pop(&mut c, &["QPOP", "q"]);
    q::<i64>(&mut c, &["QNACK", "q", &id, "DELAY", "200"]);
    assert_eq!(pop(&mut c, &["QPOP", "q"]), Vec::new());
    thread::sleep(Duration::from_millis(250));
    assert_eq!(pop(&mut c, &["QPOP", "q"]).len(), 1);
}

#[test]
fn noack_length_limits_delete_purge_and_errors() {
    let (_s, mut c) = start();
    q::<String>(&mut c, &["QPUSH", "q", "once"]);
    assert_eq!(pop(&mut c, &["QPOP", "q", "NOACK"]).len(), 1);
    assert_eq!((q::<i64>(&mut c, &["QLEN", "q"]), info_int(&mut c, "q", "acked")), (0, 1), "NOACK: gone at delivery");

    q::<()>(&mut c, &["QCONFIG", "full", "MAXLEN", "2"]);
    q::<String>(&mut c, &["QPUSH", "full", "1"]);
    q::<String>(&mut c, &["QPUSH", "full", "2"]);
    assert!(err(&mut c, &["QPUSH", "full", "3"]).starts_with("QFULL"), "reject-publish by default");
    q::<()>(&mut c, &["QCONFIG", "full", "OVERFLOW", "drop-head"]);
    q::<String>(&mut c, &["QPUSH", "full", "3"]);
    let left: Vec<Delivery> = q(&mut c, &["QPEEK", "full", "COUNT", "5"]);
    assert_eq!(left.iter().map(|d| d.1.as_str()).collect::<Vec<_>>(), ["2", "3"]);
    assert_eq!(info_int(&mut c, "full", "dropped"), 1);

    let id: String = q(&mut c, &["QPUSH", "d", "x"]);
    q::<String>(&mut c, &["QPUSH", "d", "y", "DELAY", "100000"]);
    assert_eq!(q::<i64>(&mut c, &["QDEL", "d", &id, "999"]), 1);
    assert_eq!(q::<i64>(&mut c, &["QPURGE", "d"]), 1);
    assert_eq!(q::<i64>(&mut c, &["QLEN", "d"]), 0);

    q::<()>(&mut c, &["SET", "s", "v"]);
    assert_eq!(err(&mut c, &["QPUSH", "s", "x"]), "WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_eq!(err(&mut c, &["QPUSH", "q", "x", "PRIORITY", "300"]), "ERR PRIORITY must be between 0 and 255");
    assert_eq!(err(&mut c, &["QPUSH", "q", "x", "DELAY"]), "ERR syntax error");
    assert_eq!(err(&mut c, &["QPOP", "q", "BLOCK", "-1"]), "ERR timeout is negative");
    assert_eq!(err(&mut c, &["QACK", "q", "abc"]), "ERR invalid message ID");
    assert_eq!(err(&mut c, &["QCONFIG", "q", "OVERFLOW", "nope"]), "ERR OVERFLOW must be drop-head or reject-publish");
    assert_eq!(err(&mut c, &["QINFO", "missing"]), "ERR no such key");
    assert_eq!(q::<String>(&mut c, &["TYPE", "q"]), "queue");
}

#[test]
fn blocked_pops_wake_on_pushes_in_order_and_on_due_messages() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.client();
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let w = send_async(s.port, &["QPOP", "work", "BLOCK", "0"]);
            wait_blocked(&mut c, i + 1);
            w
        })
        .collect();
    for i in 0..3 {
        q::<String>(&mut c, &["QPUSH", "work", &format!("job{i}")]);
    }
    for (i, w) in waiters.into_iter().enumerate() {
        let got = w.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(got.contains(&format!("job{i}")), "waiter {i}: {got:?}");
    }
    // A delayed message wakes a blocked consumer when it comes due, with no write to the queue.
    q::<String>(&mut c, &["QPUSH", "timed", "soon", "DELAY", "300"]);
    let started = Instant::now();
    let got = send_async(s.port, &["QPOP", "timed", "BLOCK", "5000"]).recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(got.contains("soon"), "{got:?}");
    assert!(started.elapsed() >= Duration::from_millis(250), "served before it was due");
    // And a timeout answers a nil array.
    assert_eq!(send_async(s.port, &["QPOP", "empty", "BLOCK", "100"]).recv_timeout(Duration::from_secs(5)).unwrap(), "*-1\r\n");
}

/// QMPOP: the first queue with ready messages, in the order given; BLOCK
/// waits on all of them. (Queues on two shards: `pops.rs`.)
#[test]
fn qmpop_serves_the_first_queue_with_messages_and_blocks_on_all() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.client();
    assert_eq!(q::<Value>(&mut c, &["QMPOP", "2", "{j}hi", "{j}lo"]), Value::Nil);
    q::<String>(&mut c, &["QPUSH", "{j}lo", "low-1"]);
    q::<String>(&mut c, &["QPUSH", "{j}lo", "low-2"]);
    let (queue, got): (String, Vec<Delivery>) = q(&mut c, &["QMPOP", "2", "{j}hi", "{j}lo", "COUNT", "5", "LEASE", "60000"]);
    assert_eq!(queue, "{j}lo");
    assert_eq!(got.iter().map(|d| d.1.as_str()).collect::<Vec<_>>(), ["low-1", "low-2"]);
    q::<String>(&mut c, &["QPUSH", "{j}lo", "low-3"]);
    q::<String>(&mut c, &["QPUSH", "{j}hi", "high-1"]);
    let (queue, got): (String, Vec<Delivery>) = q(&mut c, &["QMPOP", "2", "{j}hi", "{j}lo", "NOACK"]);
    assert_eq!((queue.as_str(), got[0].1.as_str()), ("{j}hi", "high-1"), "the first queue listed goes first");
    // A blocked QMPOP wakes on a push to its second queue.
    let w = send_async(s.port, &["QMPOP", "2", "{j}hi", "{j}idle", "BLOCK", "0"]);
    wait_blocked(&mut c, 1);
    q::<String>(&mut c, &["QPUSH", "{j}idle", "woke"]);
    let got = w.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(got.contains("{j}idle") && got.contains("woke"), "{got:?}");
    assert_eq!(send_async(s.port, &["QMPOP", "1", "{j}none", "BLOCK", "100"]).recv_timeout(Duration::from_secs(5)).unwrap(), "*-1\r\n");
    assert_eq!(err(&mut c, &["QMPOP", "0", "{j}hi"]), "ERR numkeys should be greater than 0");
    assert_eq!(err(&mut c, &["QMPOP", "3", "{j}hi", "{j}lo"]), "ERR syntax error");
    assert_eq!(err(&mut c, &["QMPOP", "1", "{j}hi", "COUNT"]), "ERR syntax error");
}

fn log_fsyncs(c: &mut Connection) -> i64 {
    let info: String = q(c, &["INFO", "persistence"]);
    info.lines().find_map(|l| l.strip_prefix("log_fsyncs:")).and_then(|v| v.trim().parse().ok()).expect("INFO has log_fsyncs")
}

/// `QCONFIG q DURABILITY strict`: under `--appendfsync no`, which never
/// syncs on its own, each write to that queue is synced before its reply;
/// other queues are not.
#[test]
fn a_strict_queue_syncs_each_write_before_its_reply_under_any_policy() {
    let mut s = Server::start(&["--shards", "1", "--appendfsync", "no", "--enable-debug-command", "yes"]);
    let mut c = s.client();
    q::<String>(&mut c, &["QPUSH", "plain", "a"]);
    q::<()>(&mut c, &["QCONFIG", "strict", "DURABILITY", "strict"]);
    let base = log_fsyncs(&mut c);
    q::<String>(&mut c, &["QPUSH", "plain", "b"]);
    q::<String>(&mut c, &["SET", "k", "v"]);
    assert_eq!(log_fsyncs(&mut c), base, "under `no` a plain write is not synced");
    q::<String>(&mut c, &["QPUSH", "strict", "m"]);
    assert!(log_fsyncs(&mut c) > base, "the strict push was answered before a sync");
    let before = log_fsyncs(&mut c);
    let got = pop(&mut c, &["QPOP", "strict"]);
    assert_eq!(q::<i64>(&mut c, &["QACK", "strict", &got[0].0]), 1);
    assert!(log_fsyncs(&mut c) >= before + 2, "the lease and the ack were each synced");
    // The reply waits for the sync: a slow fdatasync delays it.
    q::<()>(&mut c, &["DEBUG", "FAULT", "SYNC", "SLOW", "COUNT", "1"]);
    let started = Instant::now();
    q::<String>(&mut c, &["QPUSH", "strict", "slow"]);
    assert!(started.elapsed() >= Duration::from_millis(90), "answered before the (slow) sync finished");
    assert_eq!(err(&mut c, &["QCONFIG", "strict", "DURABILITY", "sometimes"]), "ERR DURABILITY must be strict or default");
    s.kill();
    s.restart();
    let mut c = s.client();
    let config: HashMap<String, Value> = q(&mut c, &["QCONFIG", "strict"]);
    assert_eq!(config.get("durability"), Some(&Value::BulkString(b"strict".to_vec())), "{config:?}");
    assert_eq!(info_int(&mut c, "strict", "ready"), 1, "the synced push survived");
}

/// A retried push (same dedup ID) answers the first message's ID only once
/// that message is durable as the policy says: under `always` its reply
/// waits for a sync, as the first push's did (here a slow injected one).
#[test]
fn a_duplicate_push_is_confirmed_only_once_durable() {
    let s = Server::start(&["--shards", "1", "--appendfsync", "always", "--enable-debug-command", "yes"]);
    let mut c = s.client();
    let id: String = q(&mut c, &["QPUSH", "q", "m", "ID", "d1"]);
    q::<()>(&mut c, &["DEBUG", "FAULT", "SYNC", "SLOW", "COUNT", "1"]);
    let started = Instant::now();
    assert_eq!(q::<String>(&mut c, &["QPUSH", "q", "again", "ID", "d1"]), id);
    assert!(started.elapsed() >= Duration::from_millis(90), "the retry was confirmed without waiting for a sync");
    assert_eq!(q::<i64>(&mut c, &["QLEN", "q"]), 1);
}

#[test]
fn queue_state_survives_sigkill_and_checkpoints() {
    let mut s = Server::start(&["--appendfsync", "always"]);
    let mut c = s.client();
    q::<()>(&mut c, &["QCONFIG", "q", "MAX-DELIVERIES", "3", "LEASE", "600000"]);
    for i in 0..20 {
        q::<String>(&mut c, &["QPUSH", "q", &format!("m{i}"), "ID", &format!("d{i}"), "PRIORITY", &(i % 3).to_string()]);
    }
    let leased = pop(&mut c, &["QPOP", "q", "COUNT", "6"]);
    q::<i64>(&mut c, &["QACK", "q", &leased[0].0, &leased[1].0]);
    q::<i64>(&mut c, &["QNACK", "q", &leased[2].0, "FATAL"]);
    q::<String>(&mut c, &["QPUSH", "q", "later", "DELAY", "600000"]);
    let snapshot = |c: &mut Connection| -> (Vec<Value>, Vec<Value>, Vec<Value>, Vec<Value>) {
        (q(c, &["QINFO", "q"]), q(c, &["QPEEK", "q", "COUNT", "100"]), q(c, &["QDLQ", "q", "LIST"]), q(c, &["QPENDING", "q"]))
    };
    let strip = |mut v: (Vec<Value>, Vec<Value>, Vec<Value>, Vec<Value>)| {
        // Lease time left moves with the clock: keep id and attempts only.
        v.3 = v.3.into_iter().map(|row| if let Value::Array(r) = row { Value::Array(r[..2].to_vec()) } else { row }).collect();
        v
    };
    let before = strip(snapshot(&mut c));
    s.kill();
    s.restart();
    let mut c = s.client();
    assert_eq!(strip(snapshot(&mut c)), before, "replayed from the log");
    q::<()>(&mut c, &["SAVE"]);
    s.kill();
    s.restart();
    let mut c = s.client();
    assert_eq!(strip(snapshot(&mut c)), before, "loaded from a checkpoint");
    let dup: String = q(&mut c, &["QPUSH", "q", "again", "ID", "d7"]);
    assert_eq!(q::<i64>(&mut c, &["QLEN", "q"]), 18, "dedup IDs survive too ({dup})");
}

/// What the crash test knows about the messages.
#[derive(Default)]
struct Ledger {
    /// Message id -> payload (its dedup ID).
    ids: HashMap<String, String>,
    /// Payloads a QPUSH was sent for (its reply may have been lost to a crash).
    sent: HashSet<String>,
    /// Acks the server confirmed.
    acked: HashSet<String>,
    /// Acks whose reply was lost to a crash: done or not.
    in_doubt: HashSet<String>,
    /// The last attempt number each message was delivered with.
    attempts: HashMap<String, i64>,
    pushed: usize,
}

/// One producer or consumer step; Err when the server went away.
fn crash_step(c: &mut Connection, rng: &mut impl Rng, l: &mut Ledger, n: usize, seed: u64) -> Result<(), redis::RedisError> {
    if l.pushed < n && rng.gen_bool(0.5) {
        let payload = format!("m{}", l.pushed);
        l.sent.insert(payload.clone());
        let id: String = redis::cmd("QPUSH").arg("{q}jobs").arg(&payload).arg("ID").arg(&payload).query(c)?;
        if let Some(old) = l.ids.insert(id.clone(), payload.clone()) {
            assert_eq!(old, payload, "seed {seed}: message id {id} reused");
        }
        l.pushed += 1;
        return Ok(());
    }
    let v: Value = redis::cmd("QPOP").arg("{q}jobs").arg("COUNT").arg(3).query(c)?;
    let batch: Vec<Delivery> = if v == Value::Nil { Vec::new() } else { redis::from_redis_value(&v).unwrap() };
    for (id, payload, attempt) in batch {
        assert!(!l.acked.contains(&id), "seed {seed}: {id} delivered again after a confirmed ack");
        // A push whose reply a crash ate is known by its payload only.
        assert!(l.sent.contains(&payload), "seed {seed}: {id} ({payload}) came out of thin air");
        let known = l.ids.entry(id.clone()).or_insert_with(|| payload.clone());
        assert_eq!(known, &payload, "seed {seed}: {id} changed its payload");
        // Delivered again: an ack in doubt did not happen.
        l.in_doubt.remove(&id);
        let last = l.attempts.insert(id.clone(), attempt).unwrap_or(0);
        assert!(attempt > last, "seed {seed}: {id} attempt {attempt} after {last}");
        match rng.gen_range(0..10) {
            0 => {} // the consumer dies: the lease runs out
            1 => {
                redis::cmd("QNACK").arg("{q}jobs").arg(&id).arg("FAIL").query::<i64>(c)?;
            }
            _ => match redis::cmd("QACK").arg("{q}jobs").arg(&id).query::<i64>(c) {
                Ok(1) => assert!(l.acked.insert(id.clone()), "seed {seed}: {id} acked twice"),
                Ok(_) => {}
                Err(e) => {
                    l.in_doubt.insert(id);
                    return Err(e);
                }
            },
        }
    }
    Ok(())
}

/// The crash test of issue 4: producers push N messages with dedup IDs,
/// consumers pop and ack with random failures while the server is SIGKILLed
/// at random moments (mid-request); at the end every message was acked
/// exactly once or sits in the dead-letter list, none is lost, none was
/// delivered after a confirmed ack, and attempt numbers only grow.
#[test]
fn messages_are_acked_exactly_once_or_dead_lettered_across_sigkills() {
    let n: usize = std::env::var("STRAND_QUEUE_CRASH_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let mut s = Server::start(&["--appendfsync", "always", "--shards", "2"]);
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    q::<()>(&mut s.client(), &["QCONFIG", "{q}jobs", "MAX-DELIVERIES", "4", "LEASE", "200"]);
    let mut l = Ledger::default();
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    // Work while a killer thread SIGKILLs the server at a random moment, then
    // restart; at least three times, even when the pushes are done sooner.
    while (l.pushed < n || kills < 3) && Instant::now() < deadline {
        let pid = s.pid();
        let delay = Duration::from_millis(rng.gen_range(5..100));
        let killer = thread::spawn(move || {
            thread::sleep(delay);
            let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
        });
        let mut c = s.client();
        while crash_step(&mut c, &mut rng, &mut l, n, seed).is_ok() && Instant::now() < deadline {}
        killer.join().unwrap();
        kills += 1;
        s.restart();
    }
    assert_eq!(l.pushed, n, "seed {seed}: the run timed out");
    // Drain without crashes: leases run out, failures reach the dead-letter list.
    let mut c = s.client();
    while q::<i64>(&mut c, &["QLEN", "{q}jobs"]) > 0 && Instant::now() < deadline {
        crash_step(&mut c, &mut rng, &mut l, n, seed).unwrap();
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(q::<i64>(&mut c, &["QLEN", "{q}jobs"]), 0, "seed {seed}: work left over");
    let dead: Vec<(String, String, i64, String)> = q(&mut c, &["QDLQ", "{q}jobs", "LIST"]);
    let dead: HashSet<String> = dead.into_iter().map(|d| d.0).collect();
    for id in l.ids.keys() {
        // An ack whose reply a crash ate may not have happened: then the
        // lease ran out and, on the last attempt, the message went dead.
        let (confirmed, in_doubt, dead) = (l.acked.contains(id), l.in_doubt.contains(id), dead.contains(id));
        assert!(!(confirmed && dead), "seed {seed}: {id} dead-lettered after a confirmed ack");
        assert!(confirmed || in_doubt || dead, "seed {seed}: {id} neither acked nor dead-lettered");
    }
    let distinct: HashSet<&String> = l.ids.values().collect();
    assert_eq!(distinct.len(), n, "seed {seed}: a dedup ID made two messages");
    assert!(kills >= 3, "seed {seed}: only {kills} crashes");
}
