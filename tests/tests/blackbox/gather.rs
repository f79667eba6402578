//! Set and sorted-set algebra over keys on several shards (`server/src/gather.rs`):
//! SINTER, SUNION, SDIFF, SINTERCARD, ZUNION, ZINTER, ZDIFF, ZINTERCARD,
//! their *STORE forms and ZRANGESTORE answer and store what they do when
//! the keys share a shard, read every key at one moment, and a store
//! survives a SIGKILL.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use redis::{Connection, Value};
use strand_engine::slot::SlotMap;
use strand_tests::commands::{cmd, error_text, q};
use strand_tests::{alternating_keys, Server};

/// The names the command templates use, in the order the keys are made.
const NAMES: [&str; 7] = ["S1", "S2", "Z1", "Z2", "STR", "DEST", "MISSING"];

/// Loads the same data under `keys` (one per name of [`NAMES`]).
fn fill(c: &mut Connection, keys: &[String]) {
    q::<()>(c, &["FLUSHALL"]);
    q::<()>(c, &["SADD", &keys[0], "a", "b", "c", "d"]);
    q::<()>(c, &["SADD", &keys[1], "c", "d", "e"]);
    q::<()>(c, &["ZADD", &keys[2], "1", "a", "2", "b", "3", "c"]);
    q::<()>(c, &["ZADD", &keys[3], "10", "b", "20", "c", "30", "x"]);
    q::<()>(c, &["SET", &keys[4], "text"]);
    q::<()>(c, &["SET", &keys[5], "old", "EX", "1000"]);
}

/// `template` with each name of [`NAMES`] replaced by its key.
fn instantiate(template: &[&str], keys: &[String]) -> Vec<String> {
    template.iter().map(|w| NAMES.iter().position(|n| n == w).map_or_else(|| w.to_string(), |i| keys[i].clone())).collect()
}

/// A reply with set members sorted (their order is the set's own).
fn normalized(v: Result<Value, redis::RedisError>, sets: bool) -> String {
    match v {
        Err(e) => format!("error {}", error_text(&e)),
        Ok(Value::Array(items)) if sets => {
            let mut words: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
            words.sort();
            format!("{words:?}")
        }
        Ok(v) => format!("{v:?}"),
    }
}

/// What every key holds: type, contents (sets sorted, sorted sets with
/// scores) and whether it has a TTL.
fn state(c: &mut Connection, keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|k| {
            let kind: String = q(c, &["TYPE", k]);
            let contents = match kind.as_str() {
                "set" => format!("{:?}", q::<BTreeSet<String>>(c, &["SMEMBERS", k])),
                "zset" => format!("{:?}", q::<Vec<String>>(c, &["ZRANGE", k, "0", "-1", "WITHSCORES"])),
                "string" => q::<String>(c, &["GET", k]),
                _ => String::new(),
            };
            let ttl = q::<i64>(c, &["TTL", k]) > 0;
            format!("{kind} {contents} ttl={ttl}")
        })
        .collect()
}

#[test]
fn algebra_across_shards_answers_and_stores_as_on_one_shard() {
    let s = Server::start(&["--shards", "2"]);
    let mut c = s.client();
    let apart = alternating_keys("g", NAMES.len(), 2);
    let together: Vec<String> = NAMES.iter().map(|n| format!("{{t}}{n}")).collect();
    let map = SlotMap::new(2);
    let templates: &[&[&str]] = &[
        &["SINTER", "S1", "S2"],
        &["SUNION", "S1", "S2", "MISSING"],
        &["SDIFF", "S1", "S2"],
        &["SDIFF", "S2", "S1", "MISSING"],
        &["SINTER", "S1", "MISSING"],
        &["SUNION", "S1", "STR"],
        &["SDIFF", "MISSING", "STR"],
        &["SINTERCARD", "2", "S1", "S2"],
        &["SINTERCARD", "2", "S1", "S2", "LIMIT", "1"],
        &["SINTERCARD", "2", "S1", "S2", "LIMIT", "-1"],
        &["SINTERCARD", "2", "S1", "STR"],
        &["SINTERSTORE", "DEST", "S1", "S2"],
        &["SUNIONSTORE", "DEST", "S1", "S2"],
        &["SDIFFSTORE", "DEST", "S1", "S2"],
        &["SINTERSTORE", "DEST", "S1", "MISSING"],
        &["SINTERSTORE", "MISSING", "S1", "Z1"],
        &["SUNIONSTORE", "S1", "S1", "S2"],
        &["SDIFFSTORE", "S2", "S1", "S2"],
        &["SDIFFSTORE", "DEST", "STR", "S1"],
        &["ZUNION", "2", "Z1", "Z2", "WITHSCORES"],
        &["ZINTER", "2", "Z1", "Z2", "WEIGHTS", "2", "3", "AGGREGATE", "MAX", "WITHSCORES"],
        &["ZDIFF", "2", "Z1", "Z2", "WITHSCORES"],
        &["ZUNION", "2", "Z1", "S2", "WITHSCORES"],
        &["ZUNION", "2", "Z1", "STR"],
        &["ZINTERCARD", "2", "Z1", "Z2"],
        &["ZINTERCARD", "2", "Z1", "Z2", "LIMIT", "1"],
        &["ZUNIONSTORE", "DEST", "2", "Z1", "Z2"],
        &["ZINTERSTORE", "DEST", "2", "Z1", "Z2", "AGGREGATE", "MIN"],
        &["ZDIFFSTORE", "DEST", "2", "Z1", "Z2"],
        &["ZINTERSTORE", "DEST", "2", "Z1", "MISSING"],
        &["ZUNIONSTORE", "Z1", "2", "Z1", "Z2", "WEIGHTS", "1", "-1"],
        &["ZUNIONSTORE", "DEST", "2", "Z1", "Z2", "WEIGHTS", "1"],
        &["ZUNIONSTORE", "DEST", "2", "Z1", "STR"],
        &["ZRANGESTORE", "DEST", "Z2", "0", "-1"],
        &["ZRANGESTORE", "DEST", "Z1", "(1", "+inf", "BYSCORE", "LIMIT", "0", "1"],
        &["ZRANGESTORE", "DEST", "Z2", "5", "9"],
        &["ZRANGESTORE", "DEST", "STR", "0", "-1"],
    ];
    let mut spanning = 0;
    for template in templates {
        let sets = template[0].starts_with('S') && !template[0].ends_with("STORE") && template[0] != "SINTERCARD";
        let mut seen = Vec::new();
        for keys in [&together, &apart] {
            fill(&mut c, keys);
            let args = instantiate(template, keys);
            let words: Vec<&str> = args.iter().map(String::as_str).collect();
            let reply = normalized(cmd(&words).query::<Value>(&mut c), sets);
            seen.push((reply, state(&mut c, keys)));
        }
        let apart_args = instantiate(template, &apart);
        let shards: BTreeSet<usize> = apart_args.iter().filter(|a| apart.contains(a)).map(|k| map.shard_of(k.as_bytes())).collect();
        spanning += (shards.len() == 2) as usize;
        assert_eq!(seen[1], seen[0], "{template:?}: across shards (right) and on one shard (left)");
    }
    // The keys alternate between the shards: three in four templates name keys on both.
    assert!(spanning * 4 >= templates.len() * 3, "only {spanning} of {} commands spanned two shards", templates.len());
}

/// SMOVE across shards moves a member atomically, and SUNION / SINTER over
/// the two sets lock both: no read sees a member in neither set or in both.
const MOVERS: usize = 4;
const READS: usize = 300;

#[test]
fn reads_across_shards_see_every_key_at_one_moment() {
    let s = Server::start(&["--shards", "2"]);
    let keys = alternating_keys("m", 2, 2);
    let (a, b) = (keys[0].clone(), keys[1].clone());
    let mut c = s.client();
    let members: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    let mut args = vec!["SADD", a.as_str()];
    args.extend(members.iter().map(String::as_str));
    q::<()>(&mut c, &args);
    let (stop, moved) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    // Movers, each with its own members, so moves overlap the reads often.
    let movers: Vec<_> = (0..MOVERS)
        .map(|t| {
            let (stop, moved, mut c, a, b) = (stop.clone(), moved.clone(), s.client(), a.clone(), b.clone());
            let mine: Vec<String> = members.iter().skip(t).step_by(MOVERS).cloned().collect();
            thread::spawn(move || {
                let mut moves = 0;
                while !stop.load(Ordering::Relaxed) {
                    let m = &mine[moves % mine.len()];
                    let (from, to) = if (moves / mine.len()).is_multiple_of(2) { (&a, &b) } else { (&b, &a) };
                    assert_eq!(q::<i64>(&mut c, &["SMOVE", from, to, m]), 1, "{m} from {from}");
                    moves += 1;
                    moved.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Until both sides made progress side by side (a starved side fails at the deadline).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut reads = 0;
    while (reads < READS || moved.load(Ordering::Relaxed) < READS) && Instant::now() < deadline {
        let union: BTreeSet<String> = q(&mut c, &["SUNION", &a, &b]);
        assert_eq!(union.len(), members.len(), "a union saw a member in neither set: {union:?}");
        let both: Vec<String> = q(&mut c, &["SINTER", &a, &b]);
        assert!(both.is_empty(), "an intersection saw a member in both sets: {both:?}");
        let (in_a, in_b): (i64, i64) = (q(&mut c, &["SCARD", &a]), q(&mut c, &["SCARD", &b]));
        let stored: i64 = q(&mut c, &["SUNIONSTORE", &format!("{{{a}}}copy"), &a, &b]);
        assert_eq!(stored, members.len() as i64, "a stored union saw a member in neither set ({in_a} + {in_b})");
        reads += 1;
    }
    stop.store(true, Ordering::Relaxed);
    movers.into_iter().for_each(|m| m.join().unwrap());
    let moves = moved.load(Ordering::Relaxed);
    assert!(reads >= READS && moves >= READS, "{reads} reads and {moves} moves ran side by side in 30 s");
}

/// A store across shards is one log record on the destination's shard:
/// acknowledged under `appendfsync always`, it is there after a SIGKILL.
#[test]
fn a_store_across_shards_survives_sigkill() {
    let mut s = Server::start(&["--shards", "2", "--appendfsync", "always"]);
    let mut c = s.client();
    let k = alternating_keys("d", 3, 2);
    q::<()>(&mut c, &["SADD", &k[0], "a", "b"]);
    q::<()>(&mut c, &["SADD", &k[1], "b", "c"]);
    assert_eq!(q::<i64>(&mut c, &["SUNIONSTORE", &k[2], &k[0], &k[1]]), 3);
    // An empty result deletes the destination, also across shards.
    q::<()>(&mut c, &["SET", &k[1], "old"]);
    assert_eq!(q::<i64>(&mut c, &["SINTERSTORE", &k[1], &k[0], &k[2], "nothing"]), 0);
    s.kill();
    s.restart();
    let mut c = s.client();
    assert_eq!(q::<BTreeSet<String>>(&mut c, &["SMEMBERS", &k[2]]), ["a", "b", "c"].iter().map(|m| m.to_string()).collect());
    assert_eq!(q::<i64>(&mut c, &["EXISTS", &k[1]]), 0);
}
