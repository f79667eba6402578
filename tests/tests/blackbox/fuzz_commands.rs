//! The command dispatcher under random commands: every entry of the command
//! table, called with random arguments drawn from keys of every type,
//! edge-case numbers, option words and junk, through the real server.
//! Every reply must be well-formed RESP, the server must stay up, and after
//! a SIGKILL (`appendfsync always`) the log must replay to the same data.
//!
//! `STRAND_FUZZ_ROUNDS` scales the number of commands (default 1: three
//! rounds of 1000 commands, each followed by a SIGKILL and a comparison).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::{Connection, ErrorKind, Value};
use strand_server::command::{flags, table};
use strand_tests::Server;

/// Commands that would end the session, change its protocol, stop replies,
/// park it, or answer once per argument (UNSUBSCRIBE): not fuzzed here (each
/// has its own tests).
const SKIP: &[&str] = &[
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
    "shutdown",
    "quit",
    "hello",
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "monitor",
    "sync",
    "psync",
    "debug",
    "client|kill",
    "client|pause",
    "client|reply",
    "client|tracking",
    "script|kill",
    "config|set",
    "wait",
    "waitaof",
    "failover",
    "replicaof",
    "slaveof",
];

const KEYS: &[&str] = &["{f}s", "{f}h", "{f}l", "{f}set", "{f}z", "{f}st", "{f}q", "{f}ts", "{f}new", "{f}n", "plain", "doc:1"];
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "10",
    "100",
    "-100",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "1.5",
    "-0.5",
    "inf",
    "-inf",
    "nan",
    "1e308",
    "0x10",
    "",
];
const WORDS: &[&str] = &[
    "EX",
    "PX",
    "EXAT",
    "PXAT",
    "NX",
    "XX",
    "GT",
    "LT",
    "CH",
    "INCR",
    "KEEPTTL",
    "GET",
    "COUNT",
    "MATCH",
    "TYPE",
    "LIMIT",
    "WITHSCORES",
    "BYSCORE",
    "BYLEX",
    "REV",
    "BY",
    "STORE",
    "ASC",
    "DESC",
    "ALPHA",
    "LEFT",
    "RIGHT",
    "BEFORE",
    "AFTER",
    "MAXLEN",
    "MINID",
    "~",
    "=",
    "*",
    "$",
    "-",
    "+",
    "(1",
    "[a",
    "ID",
    "STREAMS",
    "GROUP",
    "NOACK",
    "JUSTID",
    "FORCE",
    "IDLE",
    "RETENTION",
    "LABELS",
    "AGGREGATION",
    "avg",
    "sum",
    "FILTER",
    "SCHEMA",
    "TEXT",
    "TAG",
    "NUMERIC",
    "PREFIX",
    "ON",
    "HASH",
    "RETURN",
    "SORTBY",
    "DIALECT",
    "NOCONTENT",
    "WEIGHTS",
    "AGGREGATE",
    "MIN",
    "MAX",
    "LEN",
    "IDX",
    "DB",
    "REPLACE",
    "ABSTTL",
    "FREQ",
    "SYNC",
    "ASYNC",
    "ALL",
    "0-1",
    "1-0",
    "9999999999999-0",
    "DELAY",
    "PRIORITY",
    "LEASE",
    "FAIL",
    "FATAL",
    "idx",
    "g",
    "c1",
    "hello",
    "@title:hello",
    "f",
    "v",
];

fn rounds() -> usize {
    std::env::var("STRAND_FUZZ_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

fn arg(rng: &mut StdRng) -> Vec<u8> {
    match rng.gen_range(0..10) {
        0..=2 => KEYS[rng.gen_range(0..KEYS.len())].into(),
        3..=5 => NUMBERS[rng.gen_range(0..NUMBERS.len())].into(),
        6..=8 => WORDS[rng.gen_range(0..WORDS.len())].into(),
        _ => match rng.gen_range(0..3) {
            0 => (0..rng.gen_range(0..12)).map(|_| rng.gen::<u8>()).collect(),
            1 => vec![b'x'; rng.gen_range(100..3000)],
            _ => b"a\r\nb\0c".to_vec(),
        },
    }
}

/// A random call of `name` (`a|b` is a subcommand) with about its arity's number of arguments.
fn call(rng: &mut StdRng, name: &str, arity: i32) -> redis::Cmd {
    let mut parts = name.split('|');
    let mut cmd = redis::cmd(parts.next().unwrap_or(name));
    let fixed = name.split('|').count();
    for p in parts {
        cmd.arg(p);
    }
    let want = arity.unsigned_abs() as usize;
    let n = want.saturating_sub(fixed) + if arity < 0 || rng.gen_ratio(1, 8) { rng.gen_range(0..6) } else { 0 };
    for i in 0..n {
        // The first argument is usually a key.
        if i == 0 && rng.gen_ratio(2, 3) {
            cmd.arg(KEYS[rng.gen_range(0..KEYS.len())]);
        } else {
            cmd.arg(arg(rng));
        }
    }
    cmd
}

/// Data that must come back after a restart: every key without a TTL, with its content.
fn digest(port: u16) -> Vec<String> {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    let mut out = Vec::new();
    for db in 0..16 {
        redis::cmd("SELECT").arg(db).query::<()>(&mut c).unwrap();
        let mut keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
        keys.sort();
        for k in keys {
            if redis::cmd("PTTL").arg(&k).query::<i64>(&mut c).unwrap() != -1 {
                continue;
            }
            let ty: String = redis::cmd("TYPE").arg(&k).query(&mut c).unwrap();
            let read: &[&str] = match ty.as_str() {
                "string" => &["GET"],
                "hash" => &["HGETALL"],
                "list" => &["LRANGE", "0", "-1"],
                "set" => &["SMEMBERS"],
                "zset" => &["ZRANGE", "0", "-1", "WITHSCORES"],
                "stream" => &["XRANGE", "-", "+"],
                _ => &["TYPE"],
            };
            let mut cmd = redis::cmd(read[0]);
            cmd.arg(&k);
            for a in &read[1..] {
                cmd.arg(*a);
            }
            let mut v: Value = cmd.query(&mut c).unwrap();
            if let ("set" | "hash", Value::Array(items)) = (ty.as_str(), &mut v) {
                items.sort_by_key(|i| format!("{i:?}"));
            }
            out.push(format!("{db} {} {ty} {v:?}", String::from_utf8_lossy(&k)));
        }
    }
    out
}

/// Keys of every type (creations that fail because the key exists are fine).
fn setup(c: &mut Connection) {
    for args in [
        &["SET", "{f}s", "hello"][..],
        &["HSET", "{f}h", "f", "v", "g", "1"],
        &["RPUSH", "{f}l", "a", "b", "c"],
        &["SADD", "{f}set", "a", "b"],
        &["ZADD", "{f}z", "1", "a", "2", "b"],
        &["XADD", "{f}st", "1-1", "f", "v"],
        &["XGROUP", "CREATE", "{f}st", "g", "0"],
        &["QPUSH", "{f}q", "job"],
        &["TS.CREATE", "{f}ts"],
        &["HSET", "doc:1", "title", "hello world"],
        &["FT.CREATE", "idx", "PREFIX", "1", "doc:", "SCHEMA", "title", "TEXT"],
    ] {
        let _ = redis::cmd(args[0]).arg(&args[1..]).query::<Value>(c);
    }
}

#[test]
fn random_commands_get_well_formed_replies_and_replay_to_the_same_data() {
    let mut s = Server::start(&["--appendfsync", "always"]);
    let mut c = s.client();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    setup(&mut c);
    let commands: Vec<_> =
        table::all().into_iter().filter(|cmd| cmd.flags & (flags::BLOCKING | flags::CONTAINER) == 0 && !SKIP.contains(&cmd.name)).collect();
    assert!(commands.len() > 200, "{} commands in the table", commands.len());
    let seed: u64 = std::env::var("STRAND_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut errors, mut total, mut compared, mut rescues) = (0, 0, 0, 0);
    for cycle in 0..3 * rounds() {
        let mut sent = Vec::new();
        for _ in 0..1000 {
            let entry = commands[rng.gen_range(0..commands.len())];
            // Wiping everything often would leave little to compare after a restart.
            if entry.name.starts_with("flush") && !rng.gen_ratio(1, 20) {
                continue;
            }
            total += 1;
            let cmd = call(&mut rng, entry.name, entry.arity);
            let reply = cmd.query::<Value>(&mut c);
            sent.push(format!(
                "{:?} -> {reply:?}",
                cmd.args_iter()
                    .map(|a| match a {
                        redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                        redis::Arg::Cursor => "<cursor>".into(),
                    })
                    .collect::<Vec<_>>()
            ));
            // One reply per command: an ECHO after it must get its own answer (or QUEUED in MULTI).
            let marker = format!("sync-{total}");
            match redis::cmd("ECHO").arg(&marker).query::<Value>(&mut c) {
                Ok(Value::BulkString(b)) if b == marker.as_bytes() => {}
                Ok(Value::SimpleString(q)) if q == "QUEUED" => {}
                other => panic!(
                    "seed {seed}: after command {total} the replies are out of step: ECHO got {other:?}\nlast commands: {:#?}",
                    &sent[sent.len().saturating_sub(3)..]
                ),
            }
            match reply {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::IoError | ErrorKind::ParseError | ErrorKind::ClientError) => {
                    panic!("seed {seed}: command {total} ({}) broke the connection: {e}\nlog: {}", entry.name, s.log_text())
                }
                Err(_) => errors += 1,
            }
        }
        // Leave any transaction and come back to db 0, then crash and compare.
        let _ = redis::cmd("DISCARD").query::<Value>(&mut c);
        assert_eq!(redis::cmd("PING").query::<String>(&mut s.client()).unwrap(), "PONG");
        let info: redis::InfoDict = redis::cmd("INFO").arg("stats").query(&mut s.client()).unwrap();
        rescues += info.get::<u64>("executor_rescues").unwrap_or(0);
        let before = digest(s.port);
        s.kill();
        s.restart();
        let after = digest(s.port);
        if before != after {
            let gone: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
            let new: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
            let keys: Vec<&str> = gone.iter().chain(&new).filter_map(|l| l.split(' ').nth(1)).collect();
            let related: Vec<_> = sent.iter().filter(|c| keys.iter().any(|k| c.contains(k))).collect();
            panic!("seed {seed}, cycle {cycle}: the replayed data differs\nbefore only: {gone:#?}\nafter only: {new:#?}\ncommands naming those keys: {related:#?}");
        }
        compared += before.len();
        c = s.client();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        setup(&mut c);
    }
    // Random arguments mostly earn errors; enough must succeed for the replay check to mean something.
    eprintln!(
        "seed {seed}: {} of {total} commands succeeded; {compared} keys compared after restarts; {rescues} shard wake-ups by the watchdog",
        total - errors
    );
    assert!(errors * 10 < total * 9, "seed {seed}: only {} of {total} commands succeeded", total - errors);
    assert!(compared >= 10, "seed {seed}: only {compared} keys to compare");
}
