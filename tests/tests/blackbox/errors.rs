//! Every command in the command table, called wrongly, against strand and a
//! real redis-server side by side: too few and too many arguments, and
//! keys of every other type. Where Redis knows the command, both must
//! answer the same error, byte for byte; strand's own commands (Q*, TS.*,
//! FT.*) must answer Redis's arity and WRONGTYPE errors. Differences that
//! are deliberate are listed in [`KNOWN`] with the reason.

#![allow(clippy::unwrap_used)]

use strand_server::command::{flags, table, Command};
use strand_tests::raw::Raw;
use strand_tests::{RedisServer, Server};

/// Calls whose error differs from Redis 7.0.15 on purpose: (command, why).
const KNOWN: &[(&str, &str)] = &[];

/// Commands not called here: they end or change the session, or wait.
const SKIP: &[&str] = &["shutdown", "quit", "hello", "reset", "monitor", "sync", "psync", "debug", "subscribe", "psubscribe", "ssubscribe"];

/// Keys of every type, named after it, in db 0 of both servers.
fn fill(c: &mut Raw) {
    for args in [
        &["SET", "{k}string", "v"][..],
        &["RPUSH", "{k}list", "a"],
        &["SADD", "{k}set", "a"],
        &["ZADD", "{k}zset", "1", "a"],
        &["HSET", "{k}hash", "f", "v"],
        &["XADD", "{k}stream", "1-1", "f", "v"],
    ] {
        c.cmd(args);
    }
}

/// The arguments of a call of `cmd` with `n` words in all (name and subcommand included), keys set to `key`.
fn call(cmd: &Command, n: usize, key: &str) -> Vec<String> {
    let mut args: Vec<String> = cmd.name.split('|').map(str::to_uppercase).collect();
    while args.len() < n {
        let pos = args.len() as i32;
        let last = if cmd.last_key < 0 { i32::MAX } else { cmd.last_key };
        let is_key = cmd.first_key > 0 && pos >= cmd.first_key && pos <= last && (pos - cmd.first_key) % cmd.step.max(1) == 0;
        args.push(if is_key { key.to_string() } else { "1".to_string() });
    }
    args.truncate(n.max(1));
    args
}

fn exists_in_redis(redis: &mut Raw, name: &str) -> bool {
    let reply = redis.cmd(&["COMMAND", "INFO", name]);
    !(reply.starts_with("*1\r\n*-1") || reply.starts_with("*1\r\n$-1"))
}

#[test]
fn wrong_arity_and_wrong_types_answer_redis_errors() {
    let Some(redis_server) = RedisServer::start() else {
        eprintln!("redis-server is not installed: skipped");
        return;
    };
    let s = Server::start(&["--shards", "1"]);
    let (mut strand, mut redis) = (Raw::new(&s), Raw::connect(redis_server.port, false));
    fill(&mut strand);
    fill(&mut redis);
    let mut differences = Vec::new();
    let mut checked = 0;
    for cmd in table::all() {
        if cmd.flags & (flags::CONTAINER | flags::BLOCKING) != 0 || SKIP.contains(&cmd.name) || KNOWN.iter().any(|k| k.0 == cmd.name) {
            continue;
        }
        let ours = !exists_in_redis(&mut redis, cmd.name);
        let need = cmd.arity.unsigned_abs() as usize;
        let mut calls: Vec<Vec<String>> = Vec::new();
        // Too few arguments (never fewer than the name and subcommand), and one too many for a fixed arity.
        let floor = cmd.name.split('|').count();
        if need > floor {
            calls.push(call(cmd, need - 1, "{k}string"));
        }
        if cmd.arity > 0 {
            calls.push(call(cmd, need + 1, "{k}string"));
        }
        // Keys of every type.
        if cmd.first_key > 0 {
            for ty in ["string", "list", "set", "zset", "hash", "stream"] {
                calls.push(call(cmd, need, &format!("{{k}}{ty}")));
            }
        }
        for args in calls {
            let words: Vec<&str> = args.iter().map(String::as_str).collect();
            let a = strand.cmd(&words);
            // Calls that succeed may change data: make the other server do the same.
            let b = if ours { None } else { Some(redis.cmd(&words)) };
            checked += 1;
            let a_err = a.starts_with('-');
            match b {
                Some(b) if a_err || b.starts_with('-') => {
                    if a != b {
                        differences.push(format!("{words:?}\n    strand: {}\n    redis:  {}", a.trim_end(), b.trim_end()));
                    }
                }
                Some(_) => {}
                None => {
                    // strand's own commands: arity errors in Redis's words.
                    if args.len() != need && cmd.arity > 0 || args.len() < need {
                        let want = format!("-ERR wrong number of arguments for '{}' command\r\n", cmd.name);
                        if a != want {
                            differences.push(format!("{words:?}\n    strand: {}\n    want:   {}", a.trim_end(), want.trim_end()));
                        }
                    }
                }
            }
        }
        // Put back what a call may have changed.
        for c in [&mut strand, &mut redis] {
            c.cmd(&["FLUSHALL"]);
            c.cmd(&["SELECT", "0"]);
            fill(c);
        }
    }
    assert!(checked > 500, "only {checked} calls checked");
    assert!(differences.is_empty(), "{} of {checked} calls answer differently from Redis:\n{}", differences.len(), differences.join("\n"));
}
