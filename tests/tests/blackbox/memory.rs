//! The memory budget: `--maxmemory`, the eviction policies, the OOM error,
//! MULTI under OOM, CONFIG SET at run time, INFO memory, and evicted keys
//! staying gone across a SIGKILL.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use redis::{Commands, Connection};
use strand_tests::commands::{err, q};
use strand_tests::raw::Raw;
use strand_tests::{data_dir, Server};

const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
const KB10: usize = 10 * 1024;

/// A field of INFO (all sections) as a number.
fn info_u64(c: &mut Connection, field: &str) -> u64 {
    info_text(c, field).parse().unwrap_or_else(|_| panic!("INFO {field} is not a number"))
}

fn info_text(c: &mut Connection, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg("everything").query(c).unwrap();
    let prefix = format!("{field}:");
    info.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("INFO has no {field}:\n{info}")).to_string()
}

fn value(tag: &str, len: usize) -> String {
    format!("{tag}:").chars().cycle().take(len).collect()
}

/// SETs `n` keys `{prefix}0` ... of `len` bytes each.
fn set_many(c: &mut Connection, prefix: &str, n: usize, len: usize) {
    for i in 0..n {
        let _: () = c.set(format!("{prefix}{i}"), value(prefix, len)).unwrap();
    }
}

/// SETs 10 KiB values until one answers an error (at most `limit`); returns how many succeeded and the error.
fn fill_until_error(c: &mut Connection, prefix: &str, limit: usize) -> (usize, String) {
    for i in 0..limit {
        let r: redis::RedisResult<()> = c.set(format!("{prefix}{i}"), value(prefix, KB10));
        if let Err(e) = r {
            return (i, strand_tests::commands::error_text(&e));
        }
    }
    panic!("{limit} SETs of 10 KiB never hit the memory limit");
}

fn one_shard(extra: &[&str]) -> Server {
    let mut args = vec!["--shards", "1", "--persistence", "off"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// One shard with a 1 MiB budget, filled with `k0`, `k1` ... until a SET answered OOM; also how many fit.
fn full_server(extra: &[&str]) -> (Server, Connection, usize) {
    let mut args = vec!["--maxmemory", "1mb"];
    args.extend_from_slice(extra);
    let s = one_shard(&args);
    let mut c = s.client();
    let (n, e) = fill_until_error(&mut c, "k", 1000);
    assert_eq!(e, OOM);
    (s, c, n)
}

#[test]
fn allkeys_lru_keeps_used_memory_near_the_budget_and_hot_keys_survive() {
    let s = one_shard(&["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut c = s.client();
    let hot: Vec<String> = (0..20).map(|i| format!("hot:{i}")).collect();
    for k in &hot {
        let _: () = c.set(k, value(k, 1024)).unwrap();
    }
    set_many(&mut c, "cold:", 100, 1024);
    // About 40 MB of filler, ten times the budget, reading the hot keys between batches.
    for batch in 0..160 {
        let mut p = redis::pipe();
        for i in 0..25 {
            p.set(format!("fill:{batch}:{i}"), value("fill", KB10)).ignore();
        }
        p.query::<()>(&mut c).unwrap();
        let _: Vec<Option<String>> = c.mget(&hot).unwrap();
    }
    let used = info_u64(&mut c, "used_memory");
    assert!(used <= (4 << 20) + 2 * KB10 as u64, "used_memory {used} over the 4 MiB budget");
    assert!(used >= 3 << 20, "used_memory {used}: far more was evicted than needed");
    assert!(info_u64(&mut c, "evicted_keys") > 3000);
    let cold_left = (0..100).filter(|i| c.exists::<_, bool>(format!("cold:{i}")).unwrap()).count();
    assert!(cold_left <= 5, "{cold_left} of 100 cold keys survived");
    // Sampled LRU is approximate (as in Redis): nearly all, not necessarily all, hot keys stay.
    let hot_left: Vec<Option<String>> = c.mget(&hot).unwrap();
    let kept = hot_left.iter().zip(&hot).filter(|(v, k)| v.as_deref() == Some(value(k, 1024).as_str())).count();
    assert!(kept >= 18, "only {kept} of 20 hot keys survived");
    assert_eq!(info_text(&mut c, "maxmemory_policy"), "allkeys-lru");
    assert_eq!(info_text(&mut c, "maxmemory_human"), "4.00M");
}

#[test]
fn noeviction_answers_oom_reads_and_del_still_work() {
    let (_s, mut c, n) = full_server(&[]);
    assert!(n > 50, "only {n} keys of 10 KiB fit in 1 MiB");
    assert!(!c.exists::<_, bool>(format!("k{n}")).unwrap(), "the refused SET changed something");
    // Every DENYOOM write is refused; reads, EXPIRE and DEL are not.
    assert_eq!(err(&mut c, &["LPUSH", "l", "x"]), OOM);
    assert_eq!(err(&mut c, &["HSET", "h", "f", "v"]), OOM);
    assert_eq!(err(&mut c, &["INCR", "k0"]), OOM);
    assert_eq!(err(&mut c, &["APPEND", "k0", "more"]), OOM);
    let v: String = c.get("k0").unwrap();
    assert_eq!(v, value("k", KB10));
    assert_eq!(q::<i64>(&mut c, &["EXPIRE", "k1", "1000"]), 1);
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]), n as i64);
    assert_eq!(info_u64(&mut c, "evicted_keys"), 0);
    for i in 0..5 {
        let _: () = c.del(format!("k{i}")).unwrap();
    }
    let _: () = c.set("after-del", "fits again").unwrap();
    assert_eq!(q::<String>(&mut c, &["GET", "after-del"]), "fits again");
    assert_eq!(q::<i64>(&mut c, &["LPUSH", "l", "x"]), 1);
}

#[test]
fn volatile_ttl_evicts_the_shortest_ttls_first_and_wakes_watchers() {
    let s = one_shard(&["--maxmemory", "2mb", "--maxmemory-policy", "volatile-ttl"]);
    let mut c = s.client();
    for i in 0..100 {
        let _: () = c.set_ex(format!("t{i}"), value("t", KB10), 1000 + i).unwrap();
    }
    set_many(&mut c, "p", 50, KB10);
    let mut watcher = s.client();
    let _: () = redis::cmd("WATCH").arg("t0").query(&mut watcher).unwrap();
    for i in 0..100 {
        let _: () = c.set_ex(format!("long{i}"), value("l", KB10), 100_000).unwrap();
    }
    assert!(info_u64(&mut c, "evicted_keys") > 0);
    for i in 0..50 {
        assert!(c.exists::<_, bool>(format!("p{i}")).unwrap(), "p{i} has no TTL but was evicted");
    }
    let alive: Vec<bool> = (0..100).map(|i| c.exists::<_, bool>(format!("t{i}")).unwrap()).collect();
    let first_alive = alive.iter().position(|a| *a).unwrap_or(100);
    assert!(first_alive > 0, "nothing with a short TTL was evicted");
    assert!(alive[first_alive..].iter().all(|a| *a), "evicted out of TTL order: {alive:?}");
    // The eviction of a WATCHed key aborts the transaction.
    let r: Option<Vec<String>> = redis::pipe().atomic().get("p0").query(&mut watcher).unwrap();
    assert_eq!(r, None);
}

#[test]
fn volatile_lru_without_volatile_keys_answers_oom() {
    let (_s, mut c, _) = full_server(&["--maxmemory-policy", "volatile-lru"]);
    assert_eq!(info_u64(&mut c, "evicted_keys"), 0);
}

#[test]
fn config_set_maxmemory_evicts_on_the_next_writes() {
    let s = one_shard(&[]);
    let mut c = s.client();
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory*").query(&mut c).unwrap();
    assert_eq!(got, ["maxmemory", "0", "maxmemory-policy", "noeviction", "maxmemory-samples", "5"]);
    set_many(&mut c, "k", 200, KB10);
    assert!(info_u64(&mut c, "used_memory") > 3 << 19);
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "maxmemory-policy", "lru"]),
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: \
         volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction, tiered"
    );
    q::<()>(&mut c, &["CONFIG", "SET", "maxmemory", "1mb", "maxmemory-policy", "allkeys-lru"]);
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory").query(&mut c).unwrap();
    assert_eq!(got, ["maxmemory", "1048576"]);
    let _: () = c.set("trigger", "x").unwrap();
    assert!(info_u64(&mut c, "evicted_keys") > 80);
    let used = info_u64(&mut c, "used_memory");
    assert!(used <= (1 << 20) + 1024, "used_memory {used} after CONFIG SET maxmemory 1mb");
    assert_eq!(info_u64(&mut c, "maxmemory"), 1 << 20);
    // Back to no limit: nothing more is evicted.
    q::<()>(&mut c, &["CONFIG", "SET", "maxmemory", "0"]);
    let before = info_u64(&mut c, "evicted_keys");
    set_many(&mut c, "again", 200, KB10);
    assert_eq!(info_u64(&mut c, "evicted_keys"), before);
}

#[test]
fn allkeys_random_evicts() {
    let s = one_shard(&["--maxmemory", "1mb", "--maxmemory-policy", "allkeys-random"]);
    let mut c = s.client();
    set_many(&mut c, "k", 300, KB10);
    assert!(info_u64(&mut c, "evicted_keys") > 150);
    assert!(q::<i64>(&mut c, &["DBSIZE"]) < 120);
    assert!(info_u64(&mut c, "used_memory") <= (1 << 20) + KB10 as u64 * 2);
}

#[test]
fn allkeys_lfu_keeps_frequently_read_keys() {
    let s = one_shard(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lfu"]);
    let mut c = s.client();
    set_many(&mut c, "freq", 10, KB10);
    for _ in 0..200 {
        let _: Vec<Option<String>> = c.mget((0..10).map(|i| format!("freq{i}")).collect::<Vec<_>>()).unwrap();
    }
    set_many(&mut c, "once", 600, KB10);
    assert!(info_u64(&mut c, "evicted_keys") > 300);
    let kept = (0..10).filter(|i| c.exists::<_, bool>(format!("freq{i}")).unwrap()).count();
    assert_eq!(kept, 10, "frequently read keys were evicted under allkeys-lfu");
}

#[test]
fn evicted_keys_stay_gone_after_sigkill_and_restart() {
    let dir = data_dir();
    let args = ["--shards", "1", "--appendfsync", "always", "--maxmemory", "1mb", "--maxmemory-policy", "allkeys-lru"];
    let mut s = Server::start_in(dir.path(), &args);
    let mut c = s.client();
    for i in 0..300 {
        let _: () = c.set(format!("k{i}"), value(&format!("k{i}"), KB10)).unwrap();
    }
    let alive: HashSet<usize> = (0..300).filter(|i| c.exists::<_, bool>(format!("k{i}")).unwrap()).collect();
    assert!(alive.len() < 150 && !alive.is_empty(), "{} keys alive", alive.len());
    s.kill();
    s.restart();
    let mut c = s.client();
    for i in 0..300 {
        let v: Option<String> = c.get(format!("k{i}")).unwrap();
        if alive.contains(&i) {
            assert_eq!(v, Some(value(&format!("k{i}"), KB10)), "k{i} lost");
        } else {
            assert_eq!(v, None, "evicted key k{i} came back after restart");
        }
    }
}

#[test]
fn multi_exec_under_oom() {
    let s = one_shard(&["--maxmemory", "1mb"]);
    let mut c = s.client();
    let mut tx = Raw::new(&s);
    assert_eq!(tx.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(tx.cmd(&["SET", "queued-early", "v"]), "+QUEUED\r\n");
    let (_, e) = fill_until_error(&mut c, "k", 1000);
    assert_eq!(e, OOM);
    // At EXEC the shard is full and the transaction may add data: refused whole.
    assert_eq!(tx.cmd(&["EXEC"]), format!("-EXECABORT Transaction discarded because of: {OOM}\r\n"));
    assert!(!c.exists::<_, bool>("queued-early").unwrap());
    // Queueing while full is refused, reads included, and EXEC then aborts.
    assert_eq!(tx.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(tx.cmd(&["SET", "x", "y"]), format!("-{OOM}\r\n"));
    assert_eq!(tx.cmd(&["GET", "k0"]), format!("-{OOM}\r\n"));
    assert_eq!(tx.cmd(&["EXEC"]), "-EXECABORT Transaction discarded because of previous errors.\r\n");
    // Once memory is freed, transactions run again.
    for i in 0..5 {
        let _: () = c.del(format!("k{i}")).unwrap();
    }
    assert_eq!(tx.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(tx.cmd(&["SET", "x", "y"]), "+QUEUED\r\n");
    assert_eq!(tx.cmd(&["EXEC"]), "*1\r\n+OK\r\n");
}

#[test]
fn two_shards_split_the_budget() {
    let s = Server::start(&["--shards", "2", "--persistence", "off", "--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut c = s.client();
    // Every key on one shard (one hash tag): that shard keeps to half of maxmemory.
    set_many(&mut c, "{a}:", 300, KB10);
    assert!(info_u64(&mut c, "evicted_keys") > 150);
    let used = info_u64(&mut c, "used_memory");
    assert!(used <= (1 << 20) + 2 * KB10 as u64, "used_memory {used}: one shard holds more than half of maxmemory");
    let info: String = redis::cmd("INFO").arg("shards").query(&mut c).unwrap();
    assert_eq!(info.matches("maxmemory=1048576").count(), 2, "{info}");
    assert_eq!(info_u64(&mut c, "maxmemory"), 2 << 20);
}

#[test]
fn evictions_are_notified() {
    let s = one_shard(&["--maxmemory", "1mb", "--maxmemory-policy", "allkeys-random", "--notify-keyspace-events", "Ee"]);
    let mut sub = Raw::new(&s);
    sub.cmd(&["SUBSCRIBE", "__keyevent@0__:evicted"]);
    let mut c = s.client();
    set_many(&mut c, "k", 200, KB10);
    let msg = sub.reply();
    assert!(msg.starts_with("*3\r\n$7\r\nmessage\r\n$22\r\n__keyevent@0__:evicted\r\n$"), "{msg}");
    assert!(msg.split("\r\n").nth(6).is_some_and(|k| k.starts_with('k')), "{msg}");
    assert!(!sub.quiet_for(Duration::from_millis(500)), "only one eviction was notified");
}

#[test]
fn write_commands_that_add_data_carry_denyoom() {
    let s = one_shard(&[]);
    let mut c = s.client();
    for name in [
        "set",
        "setnx",
        "setex",
        "psetex",
        "append",
        "setrange",
        "incr",
        "decr",
        "incrby",
        "decrby",
        "incrbyfloat",
        "getset",
        "mset",
        "msetnx",
        "lpush",
        "rpush",
        "lpushx",
        "rpushx",
        "linsert",
        "lset",
        "lmove",
        "rpoplpush",
        "blmove",
        "brpoplpush",
        "sadd",
        "sinterstore",
        "sunionstore",
        "sdiffstore",
        "zadd",
        "zincrby",
        "zunionstore",
        "zinterstore",
        "zdiffstore",
        "zrangestore",
        "hset",
        "hsetnx",
        "hmset",
        "hincrby",
        "hincrbyfloat",
        "copy",
    ] {
        let info: redis::Value = redis::cmd("COMMAND").arg("INFO").arg(name).query(&mut c).unwrap();
        assert!(format!("{info:?}").contains("denyoom"), "{name} lacks the denyoom flag: {info:?}");
    }
    for name in ["get", "del", "expire", "lpop", "srem", "hdel", "zrem"] {
        let info: redis::Value = redis::cmd("COMMAND").arg("INFO").arg(name).query(&mut c).unwrap();
        assert!(!format!("{info:?}").contains("denyoom"), "{name} should not be denyoom");
    }
}

#[test]
fn memory_flags_come_from_the_config_file_too() {
    let dir = data_dir();
    let file = dir.path().join("strand.toml");
    std::fs::write(&file, "maxmemory = \"3mb\"\nmaxmemory-policy = \"volatile-lfu\"\nmaxmemory-samples = 10\n").unwrap();
    let s = Server::start(&["--shards", "1", "--persistence", "off", "--config", file.to_str().unwrap()]);
    let mut c = s.client();
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory*").query(&mut c).unwrap();
    assert_eq!(got, ["maxmemory", "3145728", "maxmemory-policy", "volatile-lfu", "maxmemory-samples", "10"]);
    assert_eq!(info_text(&mut c, "maxmemory_policy"), "volatile-lfu");
    // MEMORY USAGE still answers.
    let _: () = c.set("k", value("k", KB10)).unwrap();
    assert!(q::<i64>(&mut c, &["MEMORY", "USAGE", "k"]) > KB10 as i64);
}

#[test]
fn object_freq_and_idletime_follow_the_policy() {
    let s = one_shard(&["--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lfu"]);
    let mut c = s.client();
    let _: () = c.set("k", "v").unwrap();
    let fresh: i64 = q(&mut c, &["OBJECT", "FREQ", "k"]);
    for _ in 0..200 {
        let _: String = c.get("k").unwrap();
    }
    let read: i64 = q(&mut c, &["OBJECT", "FREQ", "k"]);
    assert!(read > fresh, "OBJECT FREQ {fresh} -> {read} after 200 reads");
    assert!(err(&mut c, &["OBJECT", "IDLETIME", "k"]).starts_with("ERR An LFU maxmemory policy is selected, idle time not tracked."));
    q::<()>(&mut c, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    assert_eq!(q::<i64>(&mut c, &["OBJECT", "IDLETIME", "k"]), 0);
    assert!(err(&mut c, &["OBJECT", "FREQ", "k"]).starts_with("ERR An LFU maxmemory policy is not selected"));
}

#[test]
fn scripts_started_out_of_memory_refuse_denyoom_calls() {
    let (_s, mut c, _) = full_server(&[]);
    let e = err(&mut c, &["EVAL", "return redis.call('SET', KEYS[1], 'v')", "1", "new"]);
    assert!(e.starts_with(OOM) && e.contains("@user_script:1"), "{e}");
    let got: String = q(&mut c, &["EVAL", "return redis.call('GET', KEYS[1])", "1", "k0"]);
    assert_eq!(got, value("k", KB10));
    assert_eq!(q::<i64>(&mut c, &["EVAL", "return redis.call('DEL', KEYS[1])", "1", "k1"]), 1);
}

#[test]
fn every_type_is_counted_and_evicted() {
    let s = one_shard(&["--maxmemory", "1mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut c = s.client();
    let item = |i: usize| format!("{i:04}{}", "x".repeat(200));
    for n in 0..60 {
        let items: Vec<String> = (0..50).map(item).collect();
        let mut hset = redis::cmd("HSET");
        hset.arg(format!("h{n}"));
        items.iter().for_each(|f| {
            hset.arg(f).arg(f);
        });
        let _: i64 = hset.query(&mut c).unwrap();
        let _: i64 = c.rpush(format!("l{n}"), &items).unwrap();
        let _: i64 = c.sadd(format!("s{n}"), &items).unwrap();
        let scored: Vec<(f64, &String)> = items.iter().enumerate().map(|(i, m)| (i as f64, m)).collect();
        let _: i64 = c.zadd_multiple(format!("z{n}"), &scored).unwrap();
    }
    assert!(info_u64(&mut c, "evicted_keys") > 100);
    let used = info_u64(&mut c, "used_memory");
    assert!(used <= (1 << 20) + 64 * 1024, "used_memory {used}");
    for prefix in ["h", "l", "s", "z"] {
        let alive = (0..60).filter(|n| c.exists::<_, bool>(format!("{prefix}{n}")).unwrap()).count();
        assert!(alive > 0, "every {prefix} key was evicted");
    }
}

#[test]
fn accounting_returns_to_zero_after_every_kind_of_write() {
    let s = one_shard(&[]);
    let mut c = s.client();
    let long = "y".repeat(300);
    for script in [
        vec!["HSET", "h", "f1", &long, "f2", "v"],
        vec!["HDEL", "h", "f1"],
        vec!["HINCRBY", "h", "n", "5"],
        vec!["RPUSH", "l", &long, "a", "b", &long],
        vec!["LPOP", "l"],
        vec!["LSET", "l", "0", &long],
        vec!["LINSERT", "l", "BEFORE", "b", &long],
        vec!["LREM", "l", "1", &long],
        vec!["LTRIM", "l", "0", "1"],
        vec!["SADD", "s", &long, "m"],
        vec!["SREM", "s", "m"],
        vec!["ZADD", "z", "1", &long, "2", "m"],
        vec!["ZINCRBY", "z", "5", "m"],
        vec!["ZREM", "z", "m"],
        vec!["SET", "str", &long, "EX", "100"],
        vec!["APPEND", "str", &long],
        vec!["SETRANGE", "str", "700", "z"],
        vec!["EXPIRE", "str", "200"],
        vec!["COPY", "str", "str2"],
        vec!["RENAME", "str2", "str3"],
        vec!["SINTERSTORE", "s2", "s", "s"],
        vec!["ZUNIONSTORE", "z2", "1", "z"],
        vec!["MOVE", "str3", "1"],
        vec!["SWAPDB", "0", "2"],
        vec!["SWAPDB", "0", "2"],
        vec!["PERSIST", "str"],
    ] {
        let _: redis::Value = strand_tests::commands::cmd(&script).query(&mut c).unwrap();
    }
    assert!(info_u64(&mut c, "used_memory") > info_u64(&mut c, "used_memory_index") + 1000);
    for db in ["0", "1"] {
        q::<()>(&mut c, &["SELECT", db]);
        let keys: Vec<String> = q(&mut c, &["KEYS", "*"]);
        for k in keys {
            let _: i64 = c.del(k).unwrap();
        }
    }
    // With every key gone, only the hash tables' own arrays are left.
    assert_eq!(info_u64(&mut c, "used_memory"), info_u64(&mut c, "used_memory_index"));
}

#[test]
fn evicted_keys_stay_gone_after_a_checkpoint_and_restart() {
    let dir = data_dir();
    let args = ["--shards", "1", "--appendfsync", "always", "--maxmemory", "1mb", "--maxmemory-policy", "allkeys-lru"];
    let mut s = Server::start_in(dir.path(), &args);
    let mut c = s.client();
    set_many(&mut c, "k", 300, KB10);
    q::<()>(&mut c, &["SAVE"]);
    set_many(&mut c, "after", 50, KB10);
    let alive: HashSet<String> =
        (0..300).map(|i| format!("k{i}")).chain((0..50).map(|i| format!("after{i}"))).filter(|k| c.exists::<_, bool>(k).unwrap()).collect();
    let values = info_u64(&mut c, "used_memory") - info_u64(&mut c, "used_memory_index");
    s.kill();
    s.restart();
    let mut c = s.client();
    for k in (0..300).map(|i| format!("k{i}")).chain((0..50).map(|i| format!("after{i}"))) {
        assert_eq!(c.exists::<_, bool>(&k).unwrap(), alive.contains(&k), "{k} after the checkpoint and the tail were loaded");
    }
    // The checkpoint and the replayed tail rebuild the same count of value bytes.
    assert_eq!(info_u64(&mut c, "used_memory") - info_u64(&mut c, "used_memory_index"), values);
}
