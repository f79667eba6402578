//! The cross-shard coordinator under load: MSET, MSETNX and MULTI/EXEC whose
//! keys live on several shards, from many clients at once, on 3 shards.
//! Readers (transactions) never see half of a write, counters never lose an
//! increment, exactly one of several racing MSETNX wins, and overlapping
//! transactions started on every shard finish (a lock cycle would hang them,
//! and the clients' read timeout turns a hang into a failure).

#![allow(clippy::unwrap_used)]

use std::thread;
use std::time::Duration;

use redis::{Connection, Value};
use strand_tests::commands::q;
use strand_tests::Server;

const SHARDS: &str = "3";

fn client(s: &Server) -> Connection {
    let c = s.client();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c
}

/// Keys named `prefix:0..n`, which spread over the shards.
fn group(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}:{i}")).collect()
}

/// Checks that `keys` really span all 3 shards (else the test proves nothing).
fn assert_spread(_c: &mut Connection, keys: &[String]) {
    let map = strand_engine::slot::SlotMap::new(3);
    let shards: std::collections::BTreeSet<usize> = keys.iter().map(|k| map.shard_of(k.as_bytes())).collect();
    assert_eq!(shards.len(), 3, "keys {keys:?} do not span the 3 shards");
}

#[test]
fn transactions_never_see_half_an_mset() {
    let s = Server::start(&["--shards", SHARDS]);
    let keys = group("g", 24);
    assert_spread(&mut client(&s), &keys);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let mut c = client(&s);
            let keys = keys.clone();
            thread::spawn(move || {
                for i in 0..300 {
                    let value = format!("w{w}-{i}");
                    let mut mset = redis::cmd("MSET");
                    for k in &keys {
                        mset.arg(k).arg(&value);
                    }
                    let () = mset.query(&mut c).unwrap();
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut c = client(&s);
            let keys = keys.clone();
            thread::spawn(move || {
                let mut seen = 0;
                for _ in 0..300 {
                    let mut p = redis::pipe();
                    p.atomic();
                    for k in &keys {
                        p.cmd("GET").arg(k);
                    }
                    let values: Vec<Option<String>> = p.query(&mut c).unwrap();
                    assert!(values.windows(2).all(|w| w[0] == w[1]), "a transaction saw half an MSET: {values:?}");
                    seen += usize::from(values[0].is_some());
                }
                seen
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let seen: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(seen > 0, "the readers never saw a write");
    let mut c = client(&s);
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    let last: Vec<String> = q(&mut c, &mget);
    assert!(last.windows(2).all(|w| w[0] == w[1]), "{last:?}");
}

#[test]
fn transactions_across_shards_lose_no_increment_and_do_not_deadlock() {
    let s = Server::start(&["--shards", SHARDS]);
    let counters = group("c", 9);
    assert_spread(&mut client(&s), &counters);
    const CLIENTS: usize = 8;
    const ROUNDS: usize = 150;
    let handles: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let mut c = client(&s);
            let counters = counters.clone();
            thread::spawn(move || {
                for r in 0..ROUNDS {
                    // Overlapping sets of keys, in different orders, so every lock order is tried.
                    let mut mine: Vec<&String> = counters.iter().collect();
                    mine.rotate_left((t + r) % counters.len());
                    let mut p = redis::pipe();
                    p.atomic();
                    for k in &mine {
                        p.cmd("INCR").arg(*k);
                    }
                    // A cross-shard MSET in the same stream of requests.
                    p.cmd("MSET").arg(format!("m{t}:a")).arg(r).arg(format!("m{t}:b")).arg(r).arg(format!("m{t}:c")).arg(r);
                    let _: Vec<Value> = p.query(&mut c).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut c = client(&s);
    for k in &counters {
        assert_eq!(q::<i64>(&mut c, &["GET", k]), (CLIENTS * ROUNDS) as i64, "{k}");
    }
    for t in 0..CLIENTS {
        let v: Vec<i64> = q(&mut c, &["MGET", &format!("m{t}:a"), &format!("m{t}:b"), &format!("m{t}:c")]);
        assert_eq!(v, vec![(ROUNDS - 1) as i64; 3]);
    }
}

#[test]
fn exactly_one_racing_msetnx_wins() {
    let s = Server::start(&["--shards", SHARDS]);
    for round in 0..20 {
        let keys = group(&format!("n{round}"), 6);
        let racers: Vec<_> = (0..4)
            .map(|r| {
                let mut c = client(&s);
                let keys = keys.clone();
                thread::spawn(move || {
                    let mut msetnx = redis::cmd("MSETNX");
                    for k in &keys {
                        msetnx.arg(k).arg(r);
                    }
                    msetnx.query::<i64>(&mut c).unwrap()
                })
            })
            .collect();
        let won: Vec<i64> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        assert_eq!(won.iter().sum::<i64>(), 1, "round {round}: {won:?}");
        let winner = won.iter().position(|&w| w == 1).unwrap();
        let mut c = client(&s);
        let mut mget = vec!["MGET"];
        mget.extend(keys.iter().map(String::as_str));
        let v: Vec<i64> = q(&mut c, &mget);
        assert_eq!(v, vec![winner as i64; keys.len()], "round {round}: the winner's values, all of them");
    }
}

#[test]
fn a_cross_shard_mset_keeps_its_place_in_a_pipeline() {
    let s = Server::start(&["--shards", SHARDS]);
    let mut c = client(&s);
    let keys = group("p", 6);
    let mut p = redis::pipe();
    p.cmd("SET").arg(&keys[0]).arg("before");
    p.cmd("GET").arg(&keys[0]);
    let mut mset = redis::cmd("MSET");
    for k in &keys {
        mset.arg(k).arg("during");
    }
    p.add_command(mset);
    p.cmd("GET").arg(&keys[0]);
    p.cmd("SET").arg(&keys[5]).arg("after");
    p.cmd("MGET").arg(&keys[4]).arg(&keys[5]);
    let v: Vec<Value> = p.query(&mut c).unwrap();
    let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
    assert_eq!(
        v,
        vec![Value::Okay, bulk("before"), Value::Okay, bulk("during"), Value::Okay, Value::Array(vec![bulk("during"), bulk("after")])]
    );
}

/// Writers MSET groups of keys that span the 3 shards, every key of a group
/// to the same value, while the server checkpoints and is SIGKILLed; after
/// each restart every group must be whole: all its keys one value, or all
/// absent. The shards' logs are written by separate flushers, so a kill
/// often lands between the parts of some MSET: recovery must then drop the
/// parts that survived. Under `always`, every acknowledged MSET must also be
/// there.
fn groups_survive_sigkill_whole(fsync: &str) {
    // Small segments: each shard checkpoints on its own as its log grows.
    let mut s = Server::start(&["--shards", SHARDS, "--appendfsync", fsync, "--segment-size", "256kb"]);
    const GROUPS: usize = 8;
    let groups: Vec<Vec<String>> = (0..GROUPS).map(|g| group(&format!("crash{g}"), 24)).collect();
    assert_spread(&mut client(&s), &groups[0]);
    for cycle in 0..10 {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let mut c = client(&s);
                let groups = groups.clone();
                let stop = stop.clone();
                thread::spawn(move || {
                    let mut acked: Vec<Option<String>> = vec![None; GROUPS];
                    let mut i = 0usize;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let g = (w + i) % GROUPS;
                        let value = format!("c{cycle}w{w}i{i}");
                        let mut mset = redis::cmd("MSET");
                        for k in &groups[g] {
                            mset.arg(k).arg(&value);
                        }
                        if mset.query::<()>(&mut c).is_err() {
                            break;
                        }
                        acked[g] = Some(value);
                        i += 1;
                    }
                    acked
                })
            })
            .collect();
        if cycle % 2 == 1 {
            // A checkpoint while transactions run: parts before it are in the
            // checkpoints, the ones after it in the logs, and recovery must tell.
            thread::sleep(Duration::from_millis(60));
            let _ = redis::cmd("BGSAVE").query::<Value>(&mut client(&s));
        }
        thread::sleep(Duration::from_millis(150 + 97 * cycle as u64));
        s.kill();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let acked: Vec<Vec<Option<String>>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        s.restart();
        let mut c = client(&s);
        for (g, keys) in groups.iter().enumerate() {
            let mut mget = vec!["MGET"];
            mget.extend(keys.iter().map(String::as_str));
            let values: Vec<Option<String>> = q(&mut c, &mget);
            if !values.windows(2).all(|w| w[0] == w[1]) {
                let log = s.log_text();
                let notes: Vec<&str> =
                    log.lines().filter(|l| l.contains("transaction") || l.contains("checkpoint") || l.contains("cut")).collect();
                panic!("cycle {cycle}, {fsync}: group {g} is not whole after SIGKILL: {values:?}\nserver log:\n{}", notes.join("\n"));
            }
            if fsync == "always" {
                // Some writer's last acknowledged value for this group, or a later one, is there.
                let any_acked = acked.iter().any(|a| a[g].is_some());
                assert!(!any_acked || values[0].is_some(), "cycle {cycle}: group {g} lost every acknowledged MSET");
            }
        }
    }
}

#[test]
fn cross_shard_msets_survive_sigkill_whole_under_no() {
    groups_survive_sigkill_whole("no");
}

#[test]
fn cross_shard_msets_survive_sigkill_whole_under_always() {
    groups_survive_sigkill_whole("always");
}

#[test]
fn a_full_shard_refuses_a_cross_shard_write_whole() {
    let s = Server::start(&["--shards", SHARDS, "--maxmemory", "3mb", "--maxmemory-policy", "noeviction"]);
    let mut c = client(&s);
    // Fill until some shard refuses a write.
    let big = "x".repeat(16 * 1024);
    let full_key = (0..10_000)
        .map(|i| format!("fill:{i}"))
        .find(|k| redis::cmd("SET").arg(k).arg(&big).query::<()>(&mut c).is_err())
        .expect("the budget fills up");
    let mut keys = group("oom", 24);
    keys.push(full_key.clone());
    let mut mset = redis::cmd("MSET");
    for k in &keys {
        mset.arg(k).arg("v");
    }
    let e = mset.query::<()>(&mut c).unwrap_err();
    assert_eq!(e.to_string().split_once(": ").map_or("", |x| x.1).trim(), "command not allowed when used memory > 'maxmemory'.", "{e}");
    assert_eq!(e.code(), Some("OOM"), "{e}");
    let mut exists = vec!["EXISTS"];
    exists.extend(keys.iter().map(String::as_str));
    assert_eq!(q::<i64>(&mut c, &exists), 0, "a refused MSET wrote nothing");
    // The same writes in MULTI/EXEC: EXECABORT (at queue time when the
    // connection's own shard is the full one, else when the full shard is
    // asked for its locks), nothing written.
    let () = q(&mut c, &["MULTI"]);
    for k in &keys {
        let _ = redis::cmd("SET").arg(k).arg("v").query::<Value>(&mut c);
    }
    let e = redis::cmd("EXEC").query::<Value>(&mut c).unwrap_err();
    assert_eq!(e.code(), Some("EXECABORT"), "{e}");
    assert_eq!(q::<i64>(&mut c, &exists), 0, "a refused transaction wrote nothing");
}
