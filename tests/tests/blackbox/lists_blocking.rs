//! Blocking list commands that really wait: BLPOP, BRPOP, BLMOVE,
//! BRPOPLPUSH and BLMPOP woken by pushes from other connections (on either
//! shard), first blocked first served, each element delivered to exactly
//! one waiter, timeouts with Redis 7.0's replies, clients that leave while
//! blocked, blocking commands inside MULTI, and a job queue (producer,
//! workers moving jobs into processing lists, acknowledgements with LREM)
//! that loses and repeats no job across a SIGKILL.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redis::{Connection, Value};
use strand_tests::commands::{cmd, error_text, q};
use strand_tests::raw::Raw;
use strand_tests::Server;

fn lrange(c: &mut Connection, key: &str) -> Vec<String> {
    q(c, &["LRANGE", key, "0", "-1"])
}

/// A key owned by each shard of a 2-shard server.
fn key_per_shard() -> [String; 2] {
    let map = strand_engine::slot::SlotMap::new(2);
    let find = |shard: usize| (0..).map(|i| format!("k{i}")).find(|k| map.shard_of(k.as_bytes()) == shard).unwrap();
    [find(0), find(1)]
}

/// How many clients INFO reports blocked, if it reports them.
fn blocked_clients(s: &Server) -> Option<usize> {
    let info: String = q(&mut s.client(), &["INFO", "clients"]);
    info.lines().find_map(|l| l.strip_prefix("blocked_clients:")).and_then(|v| v.trim().parse().ok())
}

/// Waits until `n` clients are blocked (where INFO tells), else a pause long enough for them to block.
fn settle(s: &Server, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match blocked_clients(s) {
            Some(b) if b >= n => return,
            Some(_) => std::thread::sleep(Duration::from_millis(10)),
            None => {
                std::thread::sleep(Duration::from_millis(300));
                return;
            }
        }
    }
}

/// Runs a command on a fresh connection in a thread; answers its reply (or error line) and how long it took.
fn spawn_try(s: &Server, args: &[&str]) -> JoinHandle<(Result<Value, String>, Duration)> {
    let mut c = s.client();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let t = Instant::now();
        let v = cmd(&args).query::<Value>(&mut c).map_err(|e| error_text(&e));
        (v, t.elapsed())
    })
}

/// [`spawn_try`] for a command that must succeed.
fn spawn_cmd(s: &Server, args: &[&str]) -> JoinHandle<(Value, Duration)> {
    let h = spawn_try(s, args);
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    std::thread::spawn(move || {
        let (r, took) = h.join().unwrap();
        (r.unwrap_or_else(|e| panic!("{args:?}: {e}")), took)
    })
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

fn pair(k: &str, v: &str) -> Value {
    Value::Array(vec![bulk(k), bulk(v)])
}

// ---------------------------------------------------------------- waking

#[test]
fn blpop_wakes_on_a_push_from_another_connection_on_either_shard() {
    let s = Server::start(&[]);
    // One connection blocks on a key of each shard in turn, so at least one
    // of the two waits on a shard other than its own.
    let mut waiter = s.client();
    for key in key_per_shard() {
        let pusher = {
            let (url, key) = (s.url(), key.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                q::<i64>(&mut c, &["RPUSH", &key, "v1", "v2"])
            })
        };
        let t = Instant::now();
        let v: (String, String) = q(&mut waiter, &["BLPOP", &key, "10"]);
        assert_eq!(v, (key.clone(), "v1".to_string()));
        assert!(t.elapsed() >= Duration::from_millis(250), "BLPOP on {key} answered before the push");
        assert_eq!(pusher.join().unwrap(), 2);
        assert_eq!(lrange(&mut s.client(), &key), ["v2"]);
    }
}

#[test]
fn every_blocking_command_is_served_by_a_later_push() {
    let s = Server::start(&[]);
    let mut c = s.client();

    let h = spawn_cmd(&s, &["BRPOP", "{w}a", "{w}b", "10"]);
    settle(&s, 1);
    q::<()>(&mut c, &["RPUSH", "{w}b", "x", "y"]);
    assert_eq!(h.join().unwrap().0, pair("{w}b", "y"));
    assert_eq!(lrange(&mut c, "{w}b"), ["x"]);
    q::<()>(&mut c, &["DEL", "{w}b"]);

    let h = spawn_cmd(&s, &["BLMOVE", "{w}src", "{w}dst", "RIGHT", "LEFT", "10"]);
    settle(&s, 1);
    q::<()>(&mut c, &["RPUSH", "{w}dst", "old"]);
    q::<()>(&mut c, &["LPUSH", "{w}src", "job"]);
    assert_eq!(h.join().unwrap().0, bulk("job"));
    assert_eq!(lrange(&mut c, "{w}dst"), ["job", "old"]);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "{w}src"]), 0);

    let h = spawn_cmd(&s, &["BRPOPLPUSH", "{w}src", "{w}dst", "0"]);
    settle(&s, 1);
    q::<()>(&mut c, &["RPUSH", "{w}src", "a", "b"]);
    assert_eq!(h.join().unwrap().0, bulk("b"));
    assert_eq!(lrange(&mut c, "{w}dst"), ["b", "job", "old"]);
    assert_eq!(lrange(&mut c, "{w}src"), ["a"]);
    q::<()>(&mut c, &["DEL", "{w}src"]);

    let h = spawn_cmd(&s, &["BLMPOP", "10", "2", "{w}a", "{w}b", "LEFT", "COUNT", "2"]);
    settle(&s, 1);
    q::<()>(&mut c, &["RPUSH", "{w}b", "1", "2", "3"]);
    assert_eq!(h.join().unwrap().0, Value::Array(vec![bulk("{w}b"), Value::Array(vec![bulk("1"), bulk("2")])]));
    assert_eq!(lrange(&mut c, "{w}b"), ["3"]);

    // A waiter on a list is woken by a move into it, and a rotation of the same list is served too.
    let h = spawn_cmd(&s, &["BLPOP", "{w}target", "10"]);
    settle(&s, 1);
    q::<()>(&mut c, &["LMOVE", "{w}b", "{w}target", "LEFT", "LEFT"]);
    assert_eq!(h.join().unwrap().0, pair("{w}target", "3"));
    let h = spawn_cmd(&s, &["BLMOVE", "{w}ring", "{w}ring", "LEFT", "RIGHT", "10"]);
    settle(&s, 1);
    q::<()>(&mut c, &["RPUSH", "{w}ring", "r1", "r2"]);
    assert_eq!(h.join().unwrap().0, bulk("r1"));
    assert_eq!(lrange(&mut c, "{w}ring"), ["r2", "r1"]);
}

#[test]
fn timeout_zero_waits_until_served() {
    let s = Server::start(&[]);
    let mut r = Raw::new(&s);
    r.send(&["BLPOP", "forever", "0"]);
    assert!(r.quiet_for(Duration::from_millis(700)), "BLPOP with timeout 0 answered before any push");
    q::<()>(&mut s.client(), &["RPUSH", "forever", "at last"]);
    assert_eq!(r.reply(), "*2\r\n$7\r\nforever\r\n$7\r\nat last\r\n");
}

#[test]
fn first_blocked_first_served() {
    let s = Server::start(&[]);
    let mut c = s.client();
    // One element at a time: the earliest waiter gets it, the next one keeps waiting.
    let first = spawn_cmd(&s, &["BLPOP", "fifo", "10"]);
    settle(&s, 1);
    let second = spawn_cmd(&s, &["BLPOP", "fifo", "10"]);
    settle(&s, 2);
    q::<()>(&mut c, &["RPUSH", "fifo", "one"]);
    assert_eq!(first.join().unwrap().0, pair("fifo", "one"));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!second.is_finished(), "the second waiter was answered without an element for it");
    q::<()>(&mut c, &["RPUSH", "fifo", "two"]);
    assert_eq!(second.join().unwrap().0, pair("fifo", "two"));

    // Several elements in one push: each waiter in turn takes one, in blocking order.
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let h = spawn_cmd(&s, &["BRPOP", "fifo", "10"]);
            settle(&s, i + 1);
            h
        })
        .collect();
    q::<()>(&mut c, &["LPUSH", "fifo", "a", "b", "c", "d"]);
    let got: Vec<Value> = waiters.into_iter().map(|h| h.join().unwrap().0).collect();
    assert_eq!(got, [pair("fifo", "a"), pair("fifo", "b"), pair("fifo", "c")]);
    assert_eq!(lrange(&mut c, "fifo"), ["d"]);
}

#[test]
fn each_element_goes_to_exactly_one_waiter() {
    let s = Server::start(&[]);
    let [k0, k1] = key_per_shard();
    for key in [k0, k1] {
        let waiters: Vec<_> = (0..6).map(|_| spawn_cmd(&s, &["BLPOP", &key, "2"])).collect();
        settle(&s, 6);
        q::<()>(&mut s.client(), &["RPUSH", &key, "e1", "e2"]);
        q::<()>(&mut s.client(), &["RPUSH", &key, "e3"]);
        let mut served = Vec::new();
        let mut timed_out = 0;
        for h in waiters {
            match h.join().unwrap() {
                (Value::Nil, took) => {
                    assert!(took >= Duration::from_millis(1900), "a waiter timed out after {took:?}");
                    timed_out += 1;
                }
                (Value::Array(v), _) => served.push(v[1].clone()),
                (other, _) => panic!("BLPOP answered {other:?}"),
            }
        }
        served.sort_by_key(|v| format!("{v:?}"));
        assert_eq!(served, [bulk("e1"), bulk("e2"), bulk("e3")], "on {key}");
        assert_eq!(timed_out, 3);
        assert_eq!(q::<i64>(&mut s.client(), &["EXISTS", &key]), 0);
    }
}

#[test]
fn timeouts_answer_redis_replies_after_the_timeout() {
    let s = Server::start(&[]);
    // Redis 7.0 answers a null array to every blocked list command that
    // times out, BLMOVE and BRPOPLPUSH included.
    let cases: &[&[&str]] = &[
        &["BLPOP", "{t}none", "{t}other", "0.2"],
        &["BRPOP", "{t}none", "0.2"],
        &["BLMOVE", "{t}none", "{t}dst", "LEFT", "RIGHT", "0.2"],
        &["BRPOPLPUSH", "{t}none", "{t}dst", "0.2"],
        &["BLMPOP", "0.2", "2", "{t}none", "{t}other", "LEFT", "COUNT", "3"],
    ];
    for resp3 in [false, true] {
        let mut r = Raw::new(&s);
        if resp3 {
            assert!(r.cmd(&["HELLO", "3"]).starts_with('%'));
        }
        for args in cases {
            let t = Instant::now();
            let got = r.cmd(args);
            let took = t.elapsed();
            assert_eq!(got, if resp3 { "_\r\n" } else { "*-1\r\n" }, "{args:?} resp3={resp3}");
            assert!(took >= Duration::from_millis(190) && took < Duration::from_secs(3), "{args:?} timed out after {took:?}");
        }
    }
    assert_eq!(q::<i64>(&mut s.client(), &["EXISTS", "{t}dst"]), 0);
}

#[test]
fn a_client_that_leaves_while_blocked_takes_nothing() {
    let s = Server::start(&[]);
    let mut r = Raw::new(&s);
    r.send(&["BLPOP", "left", "0"]);
    settle(&s, 1);
    drop(r);
    std::thread::sleep(Duration::from_millis(200));
    let mut c = s.client();
    q::<()>(&mut c, &["RPUSH", "left", "kept"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(lrange(&mut c, "left"), ["kept"]);
    let v: (String, String) = q(&mut c, &["BLPOP", "left", "1"]);
    assert_eq!(v.1, "kept");
}

#[test]
fn a_client_that_leaves_while_blocked_forever_is_forgotten_without_a_push() {
    let s = Server::start(&[]);
    for key in key_per_shard() {
        let mut r = Raw::new(&s);
        r.send(&["BLPOP", &key, "0"]);
        settle(&s, 1);
        assert_eq!(blocked_clients(&s), Some(1));
        drop(r);
        let deadline = Instant::now() + Duration::from_secs(5);
        while blocked_clients(&s) != Some(0) {
            assert!(Instant::now() < deadline, "the waiter of a closed connection on {key} stays blocked");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_woken_blmove_with_a_wrong_destination_answers_wrongtype_and_moves_nothing() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let h = spawn_try(&s, &["BLMOVE", "{d}src", "{d}dst", "LEFT", "LEFT", "10"]);
    settle(&s, 1);
    q::<()>(&mut c, &["SET", "{d}dst", "string"]);
    q::<()>(&mut c, &["RPUSH", "{d}src", "a"]);
    assert_eq!(h.join().unwrap().0, Err("WRONGTYPE Operation against a key holding the wrong kind of value".to_string()));
    assert_eq!(lrange(&mut c, "{d}src"), ["a"]);
    assert_eq!(q::<String>(&mut c, &["GET", "{d}dst"]), "string");
}

#[test]
fn blocking_commands_inside_multi_answer_their_timeout_reply_at_once() {
    let s = Server::start(&[]);
    for (resp3, want) in [(false, "*5\r\n*-1\r\n$-1\r\n$-1\r\n*-1\r\n*-1\r\n"), (true, "*5\r\n_\r\n_\r\n_\r\n_\r\n_\r\n")] {
        let mut r = Raw::new(&s);
        if resp3 {
            assert!(r.cmd(&["HELLO", "3"]).starts_with('%'));
        }
        assert_eq!(r.cmd(&["MULTI"]), "+OK\r\n");
        for args in [
            &["BLPOP", "{m}none", "0"][..],
            &["BLMOVE", "{m}none", "{m}d", "LEFT", "LEFT", "0"],
            &["BRPOPLPUSH", "{m}none", "{m}d", "0"],
            &["BLMPOP", "0", "1", "{m}none", "LEFT"],
            &["BRPOP", "{m}none", "0"],
        ] {
            assert_eq!(r.cmd(args), "+QUEUED\r\n");
        }
        let t = Instant::now();
        assert_eq!(r.cmd(&["EXEC"]), want, "resp3={resp3}");
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}

// ---------------------------------------------------------------- a job queue across SIGKILL

const QUEUE: &str = "{jobs}queue";
const WORKERS: usize = 4;

fn processing(w: usize) -> String {
    format!("{{jobs}}processing:{w}")
}

/// What the producer had acknowledged, and the push it was waiting on.
#[derive(Default)]
struct Produced {
    jobs: Vec<String>,
    in_flight: Option<String>,
}

fn producer(url: String, stop: Arc<AtomicBool>) -> Produced {
    let mut p = Produced::default();
    let Ok(mut c) = redis::Client::open(url).and_then(|c| c.get_connection()) else { return p };
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let job = format!("job:{i}");
        p.in_flight = Some(job.clone());
        if cmd(&["LPUSH", QUEUE, &job]).query::<i64>(&mut c).is_err() {
            break;
        }
        p.jobs.push(job);
        p.in_flight = None;
        i += 1;
    }
    p
}

/// What one worker had acknowledged, and the LREM it was waiting on.
#[derive(Default)]
struct Worked {
    acked: Vec<String>,
    in_flight: Option<String>,
}

/// Takes jobs into its processing list (BRPOPLPUSH or BLMOVE) and
/// acknowledges them with LREM, until stopped or the server goes away.
fn worker(url: String, w: usize, stop: Arc<AtomicBool>) -> Worked {
    let mut done = Worked::default();
    let Ok(mut c) = redis::Client::open(url).and_then(|c| c.get_connection()) else { return done };
    let mine = processing(w);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let taken = if (w + n).is_multiple_of(2) {
            cmd(&["BRPOPLPUSH", QUEUE, &mine, "0.1"]).query::<Option<String>>(&mut c)
        } else {
            cmd(&["BLMOVE", QUEUE, &mine, "RIGHT", "LEFT", "0.1"]).query::<Option<String>>(&mut c)
        };
        let job = match taken {
            Ok(Some(job)) => job,
            Ok(None) => continue,
            Err(_) => break,
        };
        done.in_flight = Some(job.clone());
        match cmd(&["LREM", &mine, "1", &job]).query::<i64>(&mut c) {
            Ok(1) => {
                done.acked.push(job);
                done.in_flight = None;
            }
            Ok(n) => panic!("worker {w}: LREM of {job}, which it had just taken, removed {n}"),
            Err(_) => break,
        }
    }
    done
}

fn start_workers(s: &Server, stop: &Arc<AtomicBool>) -> Vec<JoinHandle<Worked>> {
    (0..WORKERS)
        .map(|w| {
            let (url, stop) = (s.url(), stop.clone());
            std::thread::spawn(move || worker(url, w, stop))
        })
        .collect()
}

/// Every job in the queue and the processing lists, with how often it appears.
fn jobs_in_lists(c: &mut Connection) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    let lists = std::iter::once(QUEUE.to_string()).chain((0..WORKERS).map(processing));
    for list in lists {
        for job in lrange(c, &list) {
            *seen.entry(job).or_insert(0) += 1;
        }
    }
    seen
}

#[test]
fn job_queue_loses_and_repeats_no_job_across_sigkill() {
    let mut s = Server::start(&["--appendfsync", "always"]);

    // Phase 1: a producer and workers run until the server is killed.
    let stop = Arc::new(AtomicBool::new(false));
    let prod = {
        let (url, stop) = (s.url(), stop.clone());
        std::thread::spawn(move || producer(url, stop))
    };
    let workers = start_workers(&s, &stop);
    std::thread::sleep(Duration::from_millis(rand::random::<u64>() % 500 + 500));
    s.kill();
    stop.store(true, Ordering::Relaxed);
    let produced = prod.join().unwrap();
    let worked: Vec<Worked> = workers.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(!produced.jobs.is_empty(), "no job was pushed before the kill");
    let acked: Vec<&String> = worked.iter().flat_map(|w| &w.acked).collect();
    assert!(!acked.is_empty(), "no job was acknowledged before the kill");
    let unsure_acks: Vec<&String> = worked.iter().filter_map(|w| w.in_flight.as_ref()).collect();

    s.restart();
    let mut c = s.client();
    let seen = jobs_in_lists(&mut c);
    for (job, n) in &seen {
        assert_eq!(*n, 1, "{job} is in the lists {n} times");
        assert!(produced.jobs.contains(job) || produced.in_flight.as_ref() == Some(job), "{job} appeared from nowhere");
    }
    let mut acked_once = std::collections::HashSet::new();
    for job in &acked {
        assert!(acked_once.insert(job.as_str()), "{job} was acknowledged twice");
        assert!(!seen.contains_key(job.as_str()), "{job} was acknowledged and came back after SIGKILL");
    }
    for job in &produced.jobs {
        let accounted = acked_once.contains(job.as_str()) || seen.contains_key(job) || unsure_acks.contains(&job);
        assert!(accounted, "{job} was lost: neither acknowledged nor in the queue or a processing list");
    }

    // Phase 2: what the dead workers held goes back to the queue; new workers drain it.
    for w in 0..WORKERS {
        while q::<Option<String>>(&mut c, &["LMOVE", &processing(w), QUEUE, "LEFT", "RIGHT"]).is_some() {}
    }
    let stop = Arc::new(AtomicBool::new(false));
    let workers = start_workers(&s, &stop);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !jobs_in_lists(&mut c).is_empty() {
        assert!(Instant::now() < deadline, "the workers did not drain the queue");
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let worked2: Vec<Worked> = workers.into_iter().map(|h| h.join().unwrap()).collect();
    for job in worked2.iter().flat_map(|w| &w.acked) {
        assert!(acked_once.insert(job.as_str()), "{job} was acknowledged twice");
    }
    // Every job was acknowledged exactly once, but for an acknowledgement the
    // kill interrupted after it took effect.
    for job in &produced.jobs {
        assert!(acked_once.contains(job.as_str()) || unsure_acks.contains(&job), "{job} was never acknowledged");
    }
}
