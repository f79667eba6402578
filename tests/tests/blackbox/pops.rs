//! BLPOP, BRPOP, BLMPOP, LMPOP, BZPOPMIN, BZPOPMAX, BZMPOP, ZMPOP and
//! QMPOP over keys on different shards (the server's `pops` module): the
//! first key with something, in the order given, the same errors as on one
//! shard, waits woken from either shard, and no element taken twice or lost
//! when many consumers pop over lists on both shards at once.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use redis::{Connection, Value};
use strand_tests::commands::{err, q};
use strand_tests::raw::Raw;
use strand_tests::{send_async, wait_blocked, Server};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn alternating(prefix: &str, n: usize) -> Vec<String> {
    strand_tests::alternating_keys(prefix, n, 2)
}

fn lrange(c: &mut Connection, k: &str) -> Vec<String> {
    q(c, &["LRANGE", k, "0", "-1"])
}

#[test]
fn list_pops_take_from_the_first_key_with_elements() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let k = alternating("l", 3);
    let (a, b, d) = (k[0].as_str(), k[1].as_str(), k[2].as_str());
    q::<()>(&mut c, &["RPUSH", b, "b1", "b2", "b3"]);
    let got: (String, String) = q(&mut c, &["BLPOP", a, b, d, "0"]);
    assert_eq!(got, (b.to_string(), "b1".to_string()));
    q::<()>(&mut c, &["RPUSH", d, "d1"]);
    let got: (String, String) = q(&mut c, &["BRPOP", d, b, "0"]);
    assert_eq!(got, (d.to_string(), "d1".to_string()), "the first key listed goes first");
    let got: (String, Vec<String>) = q(&mut c, &["LMPOP", "3", a, d, b, "RIGHT", "COUNT", "5"]);
    assert_eq!(got, (b.to_string(), vec!["b3".to_string(), "b2".to_string()]));
    assert!(!q::<bool>(&mut c, &["EXISTS", b]), "the last element popped deletes the list");
    // Nothing anywhere: nil at once, or after the timeout.
    assert_eq!(q::<Value>(&mut c, &["LMPOP", "2", a, b, "LEFT"]), Value::Nil);
    let started = Instant::now();
    assert_eq!(q::<Value>(&mut c, &["BLMPOP", "0.2", "2", a, b, "LEFT"]), Value::Nil);
    assert!(started.elapsed() >= Duration::from_millis(190), "answered before the timeout");
    q::<()>(&mut c, &["RPUSH", a, "a1", "a2"]);
    let got: (String, Vec<String>) = q(&mut c, &["BLMPOP", "0", "2", b, a, "LEFT", "COUNT", "1"]);
    assert_eq!(got, (a.to_string(), vec!["a1".to_string()]));
    assert_eq!(lrange(&mut c, a), ["a2"]);
}

#[test]
fn list_pops_across_shards_answer_errors_as_on_one_shard() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let k = alternating("e", 2);
    let (a, b) = (k[0].as_str(), k[1].as_str());
    q::<()>(&mut c, &["SET", b, "string"]);
    // A key of another type answers WRONGTYPE once the keys before it are empty ...
    assert_eq!(err(&mut c, &["BLPOP", a, b, "0"]), WRONGTYPE);
    assert_eq!(err(&mut c, &["LMPOP", "2", a, b, "LEFT"]), WRONGTYPE);
    // ... and is never reached while one before it has elements.
    q::<()>(&mut c, &["RPUSH", a, "x"]);
    let got: (String, String) = q(&mut c, &["BLPOP", a, b, "0"]);
    assert_eq!(got.1, "x");
    for (args, want) in [
        (vec!["BLPOP", a, b, "soon"], "ERR timeout is not a float or out of range"),
        (vec!["BLPOP", a, b, "-1"], "ERR timeout is negative"),
        (vec!["BLMPOP", "0", "2", a, b, "UP"], "ERR syntax error"),
        (vec!["LMPOP", "2", a, b, "LEFT", "COUNT", "0"], "ERR count should be greater than 0"),
        (vec!["BZMPOP", "0", "2", a, b, "MIN", "COUNT"], "ERR syntax error"),
        (vec!["ZMPOP", "2", a, b, "MIDDLE"], "ERR syntax error"),
        (vec!["QMPOP", "2", a, b, "LEASE"], "ERR syntax error"),
    ] {
        assert_eq!(err(&mut c, &args), want, "{args:?}");
    }
    assert_eq!(q::<String>(&mut c, &["GET", b]), "string");
}

#[test]
fn sorted_set_pops_across_shards() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let k = alternating("z", 2);
    let (a, b) = (k[0].as_str(), k[1].as_str());
    q::<()>(&mut c, &["ZADD", b, "1", "one", "2", "two", "3", "three"]);
    let got: (String, String, f64) = q(&mut c, &["BZPOPMIN", a, b, "0"]);
    assert_eq!(got, (b.to_string(), "one".to_string(), 1.0));
    let got: (String, String, f64) = q(&mut c, &["BZPOPMAX", a, b, "0"]);
    assert_eq!(got, (b.to_string(), "three".to_string(), 3.0));
    q::<()>(&mut c, &["ZADD", a, "5", "five"]);
    let got: (String, Vec<(String, f64)>) = q(&mut c, &["ZMPOP", "2", b, a, "MAX", "COUNT", "9"]);
    assert_eq!(got, (b.to_string(), vec![("two".to_string(), 2.0)]));
    let got: (String, Vec<(String, f64)>) = q(&mut c, &["BZMPOP", "0", "2", b, a, "MIN"]);
    assert_eq!(got, (a.to_string(), vec![("five".to_string(), 5.0)]));
    assert_eq!(q::<Value>(&mut c, &["ZMPOP", "2", a, b, "MIN"]), Value::Nil);
    assert_eq!(q::<Value>(&mut c, &["BZPOPMIN", a, b, "0.05"]), Value::Nil);
    // A wait woken by ZADD on either shard.
    for (n, key) in [a, b].into_iter().enumerate() {
        let w = send_async(s.port, &["BZPOPMIN", a, b, "5"]);
        wait_blocked(&mut c, 2);
        q::<()>(&mut c, &["ZADD", key, "7", &format!("m{n}")]);
        let got = w.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(got.contains(key) && got.contains(&format!("m{n}")), "{got:?}");
    }
}

#[test]
fn blocked_pops_across_shards_wake_on_a_push_to_either() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let k = alternating("w", 2);
    let (a, b) = (k[0].as_str(), k[1].as_str());
    for (n, key) in [b, a].into_iter().enumerate() {
        let w = send_async(s.port, &["BLPOP", a, b, "0"]);
        // The wait is parked on both shards.
        wait_blocked(&mut c, 2);
        q::<()>(&mut c, &["RPUSH", key, &format!("v{n}")]);
        let got = w.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(got, format!("*2\r\n${}\r\n{key}\r\n$2\r\nv{n}\r\n", key.len()));
        wait_blocked(&mut c, 0);
    }
    // The timeout answers a nil array, after it passed.
    let started = Instant::now();
    assert_eq!(send_async(s.port, &["BRPOP", a, b, "0.3"]).recv_timeout(Duration::from_secs(5)).unwrap(), "*-1\r\n");
    assert!(started.elapsed() >= Duration::from_millis(290), "answered before the timeout");
    wait_blocked(&mut c, 0);
}

#[test]
fn a_client_blocked_on_one_shard_earlier_is_served_first() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let k = alternating("f", 2);
    let (a, b) = (k[0].as_str(), k[1].as_str());
    let first = send_async(s.port, &["BLPOP", b, "0"]);
    wait_blocked(&mut c, 1);
    let across = send_async(s.port, &["BLPOP", a, b, "0"]);
    wait_blocked(&mut c, 3);
    q::<()>(&mut c, &["RPUSH", b, "one"]);
    assert!(first.recv_timeout(Duration::from_secs(5)).unwrap().contains("one"));
    // The push the first client took leaves the pop across shards waiting.
    assert!(across.recv_timeout(Duration::from_millis(200)).is_err());
    q::<()>(&mut c, &["RPUSH", b, "two"]);
    assert!(across.recv_timeout(Duration::from_secs(5)).unwrap().contains("two"));
    assert!(!q::<bool>(&mut c, &["EXISTS", b]));
}

#[test]
fn a_client_that_leaves_a_pop_across_shards_takes_nothing() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let k = alternating("g", 2);
    let (a, b) = (k[0].as_str(), k[1].as_str());
    let mut r = Raw::connect(s.port, false);
    r.send(&["BLPOP", a, b, "0"]);
    wait_blocked(&mut c, 2);
    drop(r);
    wait_blocked(&mut c, 0);
    q::<()>(&mut c, &["RPUSH", a, "kept"]);
    q::<()>(&mut c, &["RPUSH", b, "kept"]);
    assert_eq!(lrange(&mut c, a), ["kept"]);
    assert_eq!(lrange(&mut c, b), ["kept"]);
}

#[test]
fn qmpop_across_shards_delivers_from_the_first_queue_with_messages() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let k = alternating("q", 2);
    let (a, b) = (k[0].as_str(), k[1].as_str());
    q::<String>(&mut c, &["QPUSH", b, "m1"]);
    let (queue, got): (String, Vec<(String, String, i64)>) = q(&mut c, &["QMPOP", "2", a, b, "LEASE", "60000"]);
    assert_eq!((queue.as_str(), got[0].1.as_str(), got[0].2), (b, "m1", 1));
    assert_eq!(q::<Vec<Value>>(&mut c, &["QPENDING", b]).len(), 1, "the delivery is leased on its own shard");
    assert_eq!(q::<Value>(&mut c, &["QMPOP", "2", a, b]), Value::Nil);
    // BLOCK waits for a push to either queue ...
    let w = send_async(s.port, &["QMPOP", "2", a, b, "BLOCK", "0", "NOACK"]);
    wait_blocked(&mut c, 2);
    q::<String>(&mut c, &["QPUSH", a, "m2"]);
    let got = w.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(got.contains(a) && got.contains("m2"), "{got:?}");
    // ... and for a delayed message to come due.
    q::<String>(&mut c, &["QPUSH", b, "later", "DELAY", "300"]);
    let started = Instant::now();
    let (queue, got): (String, Vec<(String, String, i64)>) = q(&mut c, &["QMPOP", "2", a, b, "BLOCK", "5000"]);
    assert_eq!((queue.as_str(), got[0].1.as_str()), (b, "later"));
    assert!(started.elapsed() >= Duration::from_millis(250), "served before it was due");
    assert_eq!(send_async(s.port, &["QMPOP", "2", a, b, "BLOCK", "100"]).recv_timeout(Duration::from_secs(5)).unwrap(), "*-1\r\n");
}

/// Producers push to four lists on both shards while consumers pop over
/// all four with BLPOP: every element is taken exactly once.
#[test]
fn consumers_popping_across_shards_take_every_element_once() {
    let s = Server::start(&[]);
    let lists = alternating("work", 4);
    let (producers, per_producer, consumers) = (3, 300, 4);
    let takers: Vec<_> = (0..consumers)
        .map(|_| {
            let mut c = s.client();
            let mut args: Vec<String> = vec!["BLPOP".into()];
            args.extend(lists.iter().cloned());
            args.push("1".into());
            thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                    match q::<Option<(String, String)>>(&mut c, &argv) {
                        Some((_, v)) => got.push(v),
                        None => return got,
                    }
                }
            })
        })
        .collect();
    let pushers: Vec<_> = (0..producers)
        .map(|p| {
            let mut c = s.client();
            let lists = lists.clone();
            thread::spawn(move || {
                for i in 0..per_producer {
                    let list = &lists[(i * 7 + p) % lists.len()];
                    q::<()>(&mut c, &["RPUSH", list, &format!("{p}-{i}")]);
                }
            })
        })
        .collect();
    for p in pushers {
        p.join().unwrap();
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for t in takers {
        for v in t.join().unwrap() {
            *seen.entry(v).or_default() += 1;
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "taken twice: {twice:?}");
    assert_eq!(seen.len(), producers * per_producer, "elements lost");
    let mut c = s.client();
    for l in &lists {
        assert!(!q::<bool>(&mut c, &["EXISTS", l]));
    }
}

/// The time a pop across shards spends waiting is not counted as its run
/// time (INFO commandstats), as Redis counts a blocked command.
#[test]
fn the_wait_of_a_pop_across_shards_is_not_its_run_time() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let k = alternating("t", 2);
    assert_eq!(q::<Value>(&mut c, &["BLPOP", &k[0], &k[1], "0.3"]), Value::Nil);
    let stats: String = q(&mut c, &["INFO", "commandstats"]);
    let line = stats.lines().find(|l| l.starts_with("cmdstat_blpop:")).expect("BLPOP in commandstats");
    let usec: u64 = line.split(',').find_map(|f| f.strip_prefix("usec=")).unwrap().parse().unwrap();
    assert!(line.contains("calls=1,"), "{line}");
    assert!(usec < 150_000, "the 300 ms wait was counted: {line}");
}
