//! What strand tells an operator about the commands it runs, in Redis's
//! shapes: INFO commandstats, errorstats and latencystats (summed over the
//! harness's two shards), CONFIG RESETSTAT, SLOWLOG and LATENCY.

#![allow(clippy::unwrap_used)]

use redis::{Connection, Value};
use strand_tests::Server;

fn info(c: &mut Connection, section: &str) -> String {
    redis::cmd("INFO").arg(section).query(c).unwrap()
}

/// The `key=value` pairs of an INFO line `prefix:k=v,k=v`.
fn line(info: &str, prefix: &str) -> Option<Vec<(String, String)>> {
    let rest = info.lines().find_map(|l| l.strip_prefix(&format!("{prefix}:")))?;
    Some(rest.split(',').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn get(pairs: &[(String, String)], key: &str) -> String {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("{key} missing in {pairs:?}"))
}

fn cmdstat(c: &mut Connection, name: &str) -> Option<Vec<(String, String)>> {
    line(&info(c, "commandstats"), &format!("cmdstat_{name}"))
}

fn calls(c: &mut Connection, name: &str) -> u64 {
    cmdstat(c, name).map_or(0, |p| get(&p, "calls").parse().unwrap())
}

fn slowlog(c: &mut Connection, count: i64) -> Vec<Vec<Value>> {
    let v: Vec<Value> = redis::cmd("SLOWLOG").arg("GET").arg(count).query(c).unwrap();
    v.into_iter()
        .map(|e| match e {
            Value::Array(f) => f,
            other => panic!("entry {other:?}"),
        })
        .collect()
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        other => panic!("not an int: {other:?}"),
    }
}

fn bulks(v: &Value) -> Vec<Vec<u8>> {
    match v {
        Value::Array(items) => items.iter().map(|i| if let Value::BulkString(b) = i { b.clone() } else { panic!("{i:?}") }).collect(),
        other => panic!("not an array: {other:?}"),
    }
}

#[test]
fn commandstats_count_every_shard_and_reset() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    // Keys spread over both shards.
    for i in 0..10 {
        let _: () = redis::cmd("SET").arg(format!("key:{i}")).arg(i).query(&mut c).unwrap();
    }
    for i in 0..5 {
        let _: Option<String> = redis::cmd("GET").arg(format!("key:{i}")).query(&mut c).unwrap();
    }
    let _: Vec<Option<String>> = redis::cmd("MGET").arg("key:1").arg("key:2").arg("key:3").arg("key:4").query(&mut c).unwrap();
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 10);
    let _: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();

    let text = info(&mut c, "commandstats");
    assert!(text.starts_with("# Commandstats\r\n"), "{text}");
    let set = line(&text, "cmdstat_set").unwrap();
    assert_eq!(
        set.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["calls", "usec", "usec_per_call", "rejected_calls", "failed_calls"]
    );
    assert_eq!(get(&set, "calls"), "10");
    assert_eq!(get(&set, "failed_calls"), "0");
    let per_call = get(&set, "usec_per_call");
    assert_eq!(per_call.split_once('.').map(|(_, d)| d.len()), Some(2), "{per_call}");
    assert_eq!(calls(&mut c, "get"), 5);
    // A command split over shards, or run on every shard, is one call.
    assert_eq!(calls(&mut c, "mget"), 1);
    assert_eq!(calls(&mut c, "dbsize"), 1);
    assert_eq!(calls(&mut c, "client|list"), 1);
    assert_eq!(calls(&mut c, "config|resetstat"), 1);

    let lat = info(&mut c, "latencystats");
    assert!(lat.starts_with("# Latencystats\r\n"), "{lat}");
    let p = line(&lat, "latency_percentiles_usec_set").unwrap();
    let q: Vec<f64> = ["p50", "p99", "p99.9"].iter().map(|k| get(&p, k).parse().unwrap()).collect();
    assert!(q[0] > 0.0 && q[0] <= q[1] && q[1] <= q[2], "{lat}");

    // INFO all carries the new sections; the default does not.
    let all = info(&mut c, "all");
    assert!(all.contains("# Commandstats") && all.contains("# Errorstats") && all.contains("# Latencystats"));
    let default: String = redis::cmd("INFO").query(&mut c).unwrap();
    assert!(!default.contains("# Commandstats"));

    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    assert_eq!(calls(&mut c, "set"), 0);
    assert_eq!(calls(&mut c, "get"), 0);
    assert!(line(&info(&mut c, "latencystats"), "latency_percentiles_usec_set").is_none());
}

#[test]
fn pipelined_commands_are_each_counted() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    let mut p = redis::pipe();
    for i in 0..50 {
        p.cmd("SET").arg(format!("{{t}}:{i}")).arg(i).ignore();
        p.cmd("GET").arg(format!("{{t}}:{i}")).ignore();
        p.cmd("LPUSH").arg(format!("{{t}}:{i}")).arg("x").ignore();
    }
    let _: () = p.query(&mut c).unwrap_or(());
    let set = cmdstat(&mut c, "set").unwrap();
    assert_eq!(get(&set, "calls"), "50");
    assert_eq!(calls(&mut c, "get"), 50);
    let lpush = cmdstat(&mut c, "lpush").unwrap();
    assert_eq!((get(&lpush, "calls"), get(&lpush, "failed_calls")), ("50".into(), "50".into()));
    let errs = info(&mut c, "errorstats");
    assert_eq!(get(&line(&errs, "errorstat_WRONGTYPE").unwrap(), "count"), "50", "{errs}");
    let lat = info(&mut c, "latencystats");
    assert!(line(&lat, "latency_percentiles_usec_get").is_some(), "{lat}");
}

#[test]
fn errorstats_count_failed_rejected_and_unknown() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let _: () = redis::cmd("SET").arg("s").arg("v").query(&mut c).unwrap();
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    let e = redis::cmd("LPUSH").arg("s").arg("x").query::<i64>(&mut c).unwrap_err();
    assert_eq!(e.code(), Some("WRONGTYPE"));
    assert!(redis::cmd("NOSUCHCOMMAND").arg("a").query::<()>(&mut c).is_err());
    assert!(redis::cmd("GET").query::<()>(&mut c).is_err());

    let text = info(&mut c, "errorstats");
    assert!(text.starts_with("# Errorstats\r\n"), "{text}");
    assert_eq!(get(&line(&text, "errorstat_WRONGTYPE").unwrap(), "count"), "1", "{text}");
    assert_eq!(get(&line(&text, "errorstat_ERR").unwrap(), "count"), "2", "{text}");
    let lpush = cmdstat(&mut c, "lpush").unwrap();
    assert_eq!((get(&lpush, "calls"), get(&lpush, "failed_calls")), ("1".into(), "1".into()));
    let get_ = cmdstat(&mut c, "get").unwrap();
    assert_eq!((get(&get_, "calls"), get(&get_, "rejected_calls")), ("0".into(), "1".into()));
    let stats = info(&mut c, "stats");
    assert!(stats.contains("total_error_replies:3\r\n"), "{stats}");

    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    let stats = info(&mut c, "stats");
    assert!(stats.contains("total_error_replies:0\r\n"), "{stats}");
    assert!(!info(&mut c, "errorstats").contains("errorstat_"));
}

#[test]
fn slowlog_keeps_entries_newest_first_with_cut_arguments() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("slowlog-*").query(&mut c).unwrap();
    assert_eq!(got, ["slowlog-log-slower-than", "10000", "slowlog-max-len", "128"]);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("slowlog-log-slower-than").arg(0).query(&mut c).unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query(&mut c).unwrap();
    for i in 0..3 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg(i).query(&mut c).unwrap();
    }
    let _: () = redis::cmd("SET").arg("big").arg(vec![b'x'; 200]).query(&mut c).unwrap();
    let mut rpush = redis::cmd("RPUSH");
    rpush.arg("list");
    for i in 0..35 {
        rpush.arg(i);
    }
    let _: i64 = rpush.query(&mut c).unwrap();

    let entries = slowlog(&mut c, -1);
    // SLOWLOG RESET logs itself, as in Redis; then three SETs, the big SET and RPUSH.
    assert_eq!(entries.len(), 6, "{entries:?}");
    let ids: Vec<i64> = entries.iter().map(|e| int(&e[0])).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "ids not newest first: {ids:?}");
    for e in &entries {
        assert_eq!(e.len(), 6, "{e:?}");
        assert!(int(&e[1]) > 1_600_000_000);
        assert!(int(&e[2]) >= 0);
    }
    let args = bulks(&entries[0][3]);
    assert_eq!(args.len(), 32);
    assert_eq!(args[0], b"RPUSH");
    assert_eq!(args[30], b"28");
    assert_eq!(args[31], b"... (6 more arguments)");
    let args = bulks(&entries[1][3]);
    assert_eq!(args[1], b"big");
    let mut want = vec![b'x'; 128];
    want.extend_from_slice(b"... (72 more bytes)");
    assert_eq!(args[2], want);
    assert_eq!(bulks(&entries[5][3]), [b"SLOWLOG".to_vec(), b"RESET".to_vec()]);
    // SLOWLOG RESET ran on the client's shard, which knows its address.
    match &entries[5][4] {
        Value::BulkString(addr) => assert!(String::from_utf8_lossy(addr).starts_with("127.0.0.1:"), "{addr:?}"),
        other => panic!("{other:?}"),
    }

    assert_eq!(slowlog(&mut c, 2).len(), 2);
    assert_eq!(slowlog(&mut c, 0).len(), 0);
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut c).unwrap();
    assert_eq!(len, 9); // six, and the three GETs
    let _: () = redis::cmd("CONFIG").arg("SET").arg("slowlog-max-len").arg(3).query(&mut c).unwrap();
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut c).unwrap();
    assert!(len <= 3, "{len}");
    assert!(slowlog(&mut c, -1).len() <= 3);

    let e = redis::cmd("SLOWLOG").arg("GET").arg(-2).query::<()>(&mut c).unwrap_err();
    assert!(e.to_string().contains("count should be greater than or equal to -1"), "{e}");
    let e = redis::cmd("SLOWLOG").arg("NOPE").query::<()>(&mut c).unwrap_err();
    assert!(e.to_string().contains("unknown subcommand 'NOPE'. Try SLOWLOG HELP."), "{e}");
    let help: Vec<String> = redis::cmd("SLOWLOG").arg("HELP").query(&mut c).unwrap();
    assert!(help[0].starts_with("SLOWLOG <subcommand>"));

    // Off: nothing more is logged.
    let _: () = redis::cmd("CONFIG").arg("SET").arg("slowlog-log-slower-than").arg(-1).query(&mut c).unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query(&mut c).unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut c).unwrap();
    assert_eq!(len, 0);
}

#[test]
fn latency_monitor_sees_a_slow_script() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let doctor: String = redis::cmd("LATENCY").arg("DOCTOR").query(&mut c).unwrap();
    assert!(doctor.contains("latency-monitor-threshold is 0"), "{doctor}");
    let latest: Vec<Value> = redis::cmd("LATENCY").arg("LATEST").query(&mut c).unwrap();
    assert!(latest.is_empty());

    let _: () = redis::cmd("CONFIG").arg("SET").arg("latency-monitor-threshold").arg(1).query(&mut c).unwrap();
    let n: i64 = redis::cmd("EVAL").arg("local i = 0 while i < 5000000 do i = i + 1 end return i").arg(0).query(&mut c).unwrap();
    assert_eq!(n, 5_000_000);
    let latest: Vec<Value> = redis::cmd("LATENCY").arg("LATEST").query(&mut c).unwrap();
    let event = latest
        .iter()
        .find_map(|e| match e {
            Value::Array(f) if f.first() == Some(&Value::BulkString(b"command".to_vec())) => Some(f.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no command event: {latest:?}"));
    assert_eq!(event.len(), 4);
    assert!(int(&event[1]) > 1_600_000_000);
    assert!(int(&event[2]) >= 1 && int(&event[3]) >= int(&event[2]), "{event:?}");

    let history: Vec<(i64, i64)> = redis::cmd("LATENCY").arg("HISTORY").arg("command").query(&mut c).unwrap();
    assert!(!history.is_empty() && history.iter().all(|&(_, ms)| ms >= 1), "{history:?}");
    let none: Vec<Value> = redis::cmd("LATENCY").arg("HISTORY").arg("no-such-event").query(&mut c).unwrap();
    assert!(none.is_empty());
    let doctor: String = redis::cmd("LATENCY").arg("DOCTOR").query(&mut c).unwrap();
    assert!(doctor.contains("command: "), "{doctor}");

    // Turned off first, so that nothing slow lands between the reset and the check.
    let _: () = redis::cmd("CONFIG").arg("SET").arg("latency-monitor-threshold").arg(0).query(&mut c).unwrap();
    let reset: i64 = redis::cmd("LATENCY").arg("RESET").query(&mut c).unwrap();
    assert!(reset >= 1);
    let latest: Vec<Value> = redis::cmd("LATENCY").arg("LATEST").query(&mut c).unwrap();
    assert!(latest.is_empty(), "{latest:?}");
    let help: Vec<String> = redis::cmd("LATENCY").arg("HELP").query(&mut c).unwrap();
    assert!(help[0].starts_with("LATENCY <subcommand>"));
}

#[test]
fn commands_run_by_scripts_count_as_calls() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    let v: String =
        redis::cmd("EVAL").arg("redis.call('set', KEYS[1], 'v') return redis.call('get', KEYS[1])").arg(1).arg("k").query(&mut c).unwrap();
    assert_eq!(v, "v");
    assert_eq!(calls(&mut c, "eval"), 1);
    assert_eq!(calls(&mut c, "set"), 1);
    assert_eq!(calls(&mut c, "get"), 1);
}
