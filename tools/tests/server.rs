//! `strand-tools stats` and `compact` on data directories written by the real
//! server (`target/release/strand`, started by the `strand-tests` harness),
//! checked against what the server itself answers.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use redis::Connection;
use strand_tests::Server;

/// Runs the strand-tools binary of this build: (exit code, stdout, stderr).
fn tools(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strand-tools")).args(args).args(["--dir", dir.to_str().unwrap()]).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn q<T: redis::FromRedisValue>(c: &mut Connection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap()
}

/// Writes strings, hashes, lists, sets and sorted sets into databases 0 and 5,
/// with overwrites and deletes, and a SAVE in the middle.
fn fill(c: &mut Connection, rounds: usize) {
    let value = "x".repeat(200);
    for round in 0..rounds {
        for db in ["0", "5"] {
            let _: () = q(c, &["SELECT", db]);
            let mut p = redis::pipe();
            for i in 0..400 {
                p.cmd("SET").arg(format!("s{i}")).arg(format!("{value}-{round}-{i}")).ignore();
                if i % 10 == 0 {
                    p.cmd("HSET").arg(format!("h{i}")).arg(format!("f{round}")).arg(i).ignore();
                    p.cmd("RPUSH").arg(format!("l{i}")).arg(format!("e{round}")).ignore();
                    p.cmd("SADD").arg(format!("t{i}")).arg(format!("m{round}")).ignore();
                    p.cmd("ZADD").arg(format!("z{i}")).arg(round).arg(format!("m{i}")).ignore();
                }
                if i % 7 == round % 7 {
                    p.cmd("DEL").arg(format!("s{i}")).ignore();
                }
            }
            let _: () = p.query(c).unwrap();
        }
        if round == rounds / 2 {
            let _: () = q(c, &["SAVE"]);
        }
    }
    let _: () = q(c, &["SELECT", "0"]);
}

/// Every key of databases 0 and 5 with its type and value, readably.
fn everything(c: &mut Connection) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for db in ["0", "5"] {
        let _: () = q(c, &["SELECT", db]);
        let keys: Vec<String> = q(c, &["KEYS", "*"]);
        for k in keys {
            let t: String = q(c, &["TYPE", &k]);
            let v = match t.as_str() {
                "string" => q::<String>(c, &["GET", &k]),
                "hash" => format!("{:?}", q::<BTreeMap<String, String>>(c, &["HGETALL", &k])),
                "list" => format!("{:?}", q::<Vec<String>>(c, &["LRANGE", &k, "0", "-1"])),
                "set" => {
                    let mut m: Vec<String> = q(c, &["SMEMBERS", &k]);
                    m.sort();
                    format!("{m:?}")
                }
                "zset" => format!("{:?}", q::<Vec<String>>(c, &["ZRANGE", &k, "0", "-1", "WITHSCORES"])),
                other => panic!("unexpected type {other} of {k}"),
            };
            out.insert((db.to_string(), k), format!("{t}:{v}"));
        }
    }
    let _: () = q(c, &["SELECT", "0"]);
    out
}

fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(dir).unwrap() {
        let shard = shard.unwrap().path();
        if shard.is_dir() {
            for f in std::fs::read_dir(&shard).unwrap() {
                let f = f.unwrap();
                out.push(format!("{} {}", f.path().display(), f.metadata().unwrap().len()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn stats_agrees_with_the_server() {
    // appendfsync always: what DBSIZE counted is on disk when the SIGKILL comes.
    let mut s = Server::start(&["--segment-size", "64kb", "--appendfsync", "always"]);
    let mut c = s.client();
    fill(&mut c, 6);
    let mut dbsize = BTreeMap::new();
    let mut types: BTreeMap<String, u64> = BTreeMap::new();
    for db in ["0", "5"] {
        let _: () = q(&mut c, &["SELECT", db]);
        dbsize.insert(db.parse::<u64>().unwrap(), q::<u64>(&mut c, &["DBSIZE"]));
        for k in q::<Vec<String>>(&mut c, &["KEYS", "*"]) {
            *types.entry(q::<String>(&mut c, &["TYPE", &k])).or_default() += 1;
        }
    }
    s.kill();
    let before = files(&s.dir);

    let (code, out, err) = tools(&s.dir, &["stats", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.is_empty(), "progress must be quiet when stderr is not a terminal: {err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let shards = doc["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    let mut keys_per_db: BTreeMap<u64, u64> = BTreeMap::new();
    let mut keys_per_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut total_records = 0;
    for sh in shards {
        assert!(sh["errors"].as_array().unwrap().is_empty(), "{sh}");
        // Records per kind sum to the shard's records.
        let kinds = sh["kinds"].as_object().unwrap();
        let sum: u64 = kinds.values().map(|k| k["records"].as_u64().unwrap()).sum();
        assert_eq!(sum, sh["records"].as_u64().unwrap(), "{sh}");
        for name in ["SET", "DEL", "HSET", "LPUSH", "SADD", "ZADD"] {
            assert!(kinds.contains_key(name), "no {name} in {kinds:?}");
        }
        total_records += sh["records"].as_u64().unwrap();
        // Segments: several, LSN ranges consecutive.
        let segs = sh["segments"].as_array().unwrap();
        assert!(segs.len() > 2, "{segs:?}");
        let seg_bytes: u64 = segs.iter().map(|s| s["bytes"].as_u64().unwrap()).sum();
        assert_eq!(seg_bytes, sh["segment_bytes"].as_u64().unwrap());
        let mut next = None;
        for s in segs {
            if let Some(r) = s["lsn_range"].as_array() {
                let (lo, hi) = (r[0].as_u64().unwrap(), r[1].as_u64().unwrap());
                assert!(next.is_none_or(|n| n == lo), "{segs:?}");
                next = Some(hi + 1);
            }
        }
        assert_eq!(next.map(|n| n - 1), sh["end_lsn"].as_u64(), "{sh}");
        // The SAVE left a checkpoint that verifies.
        let ckps = sh["checkpoints"].as_array().unwrap();
        assert!(!ckps.is_empty() && ckps.iter().all(|c| c["ok"] == true), "{ckps:?}");
        for db in sh["databases"].as_array().unwrap() {
            *keys_per_db.entry(db["db"].as_u64().unwrap()).or_default() += db["keys"].as_u64().unwrap();
            for (t, n) in db["types"].as_object().unwrap() {
                *keys_per_type.entry(t.clone()).or_default() += n.as_u64().unwrap();
            }
        }
        let (live, disk) = (sh["live_bytes"].as_u64().unwrap(), sh["disk_bytes"].as_u64().unwrap());
        assert!(live > 0 && disk > 0);
        assert!((sh["live_ratio"].as_f64().unwrap() - live as f64 / disk as f64).abs() < 1e-9);
    }
    assert_eq!(keys_per_db, dbsize, "keys per database against DBSIZE");
    assert_eq!(keys_per_type, types, "keys per type against TYPE");
    assert_eq!(doc["total"]["records"].as_u64().unwrap(), total_records);
    assert_eq!(doc["total"]["keys"].as_u64().unwrap(), dbsize.values().sum::<u64>());

    // The text form says the same, and neither changed the directory.
    let (code, text, _) = tools(&s.dir, &["stats"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("{} keys", dbsize.values().sum::<u64>())), "{text}");
    assert_eq!(files(&s.dir), before, "stats changed the directory");
}

#[test]
fn compact_then_the_server_starts_with_identical_data() {
    // appendfsync always: every acknowledged write is on disk before the SIGKILLs below.
    // No automatic checkpoints: the SAVE in `fill` is the only one, so compaction has work.
    let mut s =
        Server::start(&["--segment-size", "64kb", "--appendfsync", "always", "--compaction-threshold", "0", "--checkpoint-interval", "0"]);
    let mut c = s.client();
    fill(&mut c, 8);
    let want = everything(&mut c);
    assert!(want.len() > 500, "{}", want.len());
    // SIGKILL: no shutdown checkpoint, so the log after the SAVE is what compaction folds in.
    s.kill();
    let disk = |dir: &Path| files(dir).iter().map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap()).sum::<u64>();
    let before = disk(&s.dir);

    let (code, out, err) = tools(&s.dir, &["compact"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("wrote checkpoint") && out.contains("removed segment"), "{out}");
    assert!(out.contains("total: disk"), "{out}");
    assert!(disk(&s.dir) < before, "compaction freed nothing:\n{out}");
    let (code, out, _) = tools(&s.dir, &["check"]);
    assert_eq!(code, 0, "{out}");
    // A second run finds nothing to do.
    let (code, out, _) = tools(&s.dir, &["compact"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to do"), "{out}");

    s.restart();
    let mut c = s.client();
    let got = everything(&mut c);
    assert_eq!(got.len(), want.len());
    assert!(got == want, "data differs after compaction");
    // And the server goes on writing on top of it.
    let _: () = q(&mut c, &["SET", "after", "1"]);
    s.kill();
    s.restart();
    let mut c = s.client();
    assert_eq!(q::<String>(&mut c, &["GET", "after"]), "1");
    s.kill();
}

#[test]
fn compact_refuses_while_the_server_runs() {
    let mut s = Server::start(&["--segment-size", "64kb"]);
    let mut c = s.client();
    fill(&mut c, 2);
    let before = files(&s.dir);
    let (code, out, err) = tools(&s.dir, &["compact"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("LOCK") && err.contains("in use"), "{err}");
    assert_eq!(files(&s.dir), before, "compact touched a directory in use");
    s.kill();
}
