//! Checkpoints and log compaction, on the real binary and real files:
//! checkpoint + tail equals full replay, damaged checkpoints, a bounded log
//! under overwrites, SIGKILL in the middle of a checkpoint, deletes that stay
//! deleted, and SAVE / BGSAVE / LASTSAVE / SHUTDOWN as Redis clients use them.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use rand::Rng;
use redis::{Commands, Connection};
use strand_tests::{data_dir, Server};

/// Every key of every database with its type, value and expiry, as comparable text.
fn dump(s: &Server) -> BTreeMap<(u8, Vec<u8>), String> {
    let mut c = s.client();
    let mut out = BTreeMap::new();
    for db in 0..16u8 {
        let _: () = redis::cmd("SELECT").arg(db).query(&mut c).unwrap();
        let keys: Vec<Vec<u8>> = c.scan::<Vec<u8>>().unwrap().collect();
        for k in keys {
            let ty: String = redis::cmd("TYPE").arg(&k).query(&mut c).unwrap();
            let value = match ty.as_str() {
                "string" => format!("{:?}", c.get::<_, Vec<u8>>(&k).unwrap()),
                "list" => format!("{:?}", c.lrange::<_, Vec<Vec<u8>>>(&k, 0, -1).unwrap()),
                "hash" => format!("{:?}", c.hgetall::<_, BTreeMap<Vec<u8>, Vec<u8>>>(&k).unwrap()),
                "set" => {
                    let mut m: Vec<Vec<u8>> = c.smembers(&k).unwrap();
                    m.sort();
                    format!("{m:?}")
                }
                "zset" => format!("{:?}", c.zrange_withscores::<_, Vec<(Vec<u8>, String)>>(&k, 0, -1).unwrap()),
                other => panic!("unexpected type {other}"),
            };
            let at: i64 = redis::cmd("PEXPIRETIME").arg(&k).query(&mut c).unwrap();
            out.insert((db, k), format!("{ty} {value} expires {at}"));
        }
    }
    out
}

fn info_field(c: &mut Connection, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg("everything").query(c).unwrap();
    info.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap_or_else(|| panic!("no {field} in INFO")).trim().to_string()
}

fn info_u64(c: &mut Connection, field: &str) -> u64 {
    info_field(c, field).parse().unwrap()
}

/// A mixed workload over every type, from one connection; `round` varies it.
fn mixed_writes(c: &mut Connection, round: u32, n: u32) {
    let mut rng = rand::thread_rng();
    for i in 0..n {
        let k = rng.gen_range(0..300);
        let _: () = match rng.gen_range(0..10) {
            0 => c.set(format!("s{k}"), format!("v{round}-{i}")).unwrap(),
            1 => c.set_ex(format!("t{k}"), "ttl", 1000).unwrap(),
            2 => c.rpush(format!("l{}", k % 20), format!("e{i}")).unwrap(),
            3 => c.hset(format!("h{}", k % 20), format!("f{k}"), i).unwrap(),
            4 => c.sadd(format!("z{}", k % 20), k).unwrap(),
            5 => c.zadd(format!("o{}", k % 20), format!("m{k}"), i).unwrap(),
            6 => c.del(format!("s{k}")).unwrap(),
            7 => c.lpop(format!("l{}", k % 20), None).unwrap(),
            8 => redis::pipe().cmd("SELECT").arg(k % 4).ignore().set("x", i).ignore().cmd("SELECT").arg(0).ignore().query(c).unwrap(),
            _ => c.append(format!("s{k}"), "+").unwrap(),
        };
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for shard in std::fs::read_dir(from).unwrap().flatten().filter(|e| e.file_type().unwrap().is_dir()) {
        let dest = to.join(shard.file_name());
        std::fs::create_dir_all(&dest).unwrap();
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            std::fs::copy(f.path(), dest.join(f.file_name())).unwrap();
        }
    }
}

fn files_with(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.file_type().unwrap().is_dir()) {
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            if f.file_name().to_str().unwrap().ends_with(suffix) {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn checkpoint_and_tail_give_the_same_keyspace_as_a_full_replay() {
    let dir = data_dir();
    // Growth-triggered checkpoints off and one checkpoint only: the log stays whole, so a
    // full replay is possible. The slow pace keeps the snapshot walking while writes go on.
    let args = ["--compaction-threshold", "0", "--appendfsync", "always", "--compaction-rate", "64kb"];
    let mut s = Server::start_in(dir.path(), &args);
    let mut c = s.client();
    // Values that compress poorly, so the paced (compressed) checkpoint still takes a while.
    for i in 0..3000u64 {
        let noise: String = (0..4).map(|k| format!("{:016x}", (i * 4 + k).wrapping_mul(0x9E37_79B9_7F4A_7C15))).collect();
        let _: () = c.set(format!("bulk{i}"), noise).unwrap();
    }
    mixed_writes(&mut c, 0, 3000);
    let started: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    assert_eq!(started, "Background saving started");
    // Keep writing while the checkpoint walks: it must still be one moment's state.
    let mut round = 1;
    while info_field(&mut c, "rdb_bgsave_in_progress") != "0" {
        mixed_writes(&mut c, round, 100);
        for i in (round * 7..3000).step_by(97) {
            let _: () = c.set(format!("bulk{i}"), round).unwrap();
        }
        round += 1;
    }
    assert!(round > 3, "the checkpoint finished before writes could race it");
    assert_eq!(info_u64(&mut c, "rdb_saves"), 2, "one checkpoint on each of the 2 shards");
    let _: () = redis::cmd("SWAPDB").arg(1).arg(2).query(&mut c).unwrap();
    mixed_writes(&mut c, 99, 1000);
    let _: () = redis::cmd("FLUSHDB").query(&mut c).unwrap();
    mixed_writes(&mut c, 100, 500);
    drop(c);
    s.kill();

    let full = data_dir();
    copy_dir(dir.path(), full.path());
    let ckps = files_with(full.path(), ".ckp");
    assert!(!ckps.is_empty(), "SAVE wrote no checkpoint files");
    for f in ckps {
        std::fs::remove_file(f).unwrap();
    }
    s.restart();
    let mut c = s.client();
    assert!(info_u64(&mut c, "recovery_checkpoint_entries") > 0, "the restart did not load a checkpoint");
    let from_checkpoint = dump(&s);
    let replayed = Server::start_in(full.path(), &["--compaction-threshold", "0"]);
    let mut r = replayed.client();
    assert_eq!(info_u64(&mut r, "recovery_checkpoint_entries"), 0);
    let from_log = dump(&replayed);
    assert!(from_log.len() > 100, "only {} keys", from_log.len());
    assert_eq!(from_checkpoint, from_log);
}

#[test]
fn a_damaged_checkpoint_is_set_aside_and_the_one_before_it_used() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--shards", "1", "--segment-size", "64kb", "--appendfsync", "always"]);
    let mut c = s.client();
    mixed_writes(&mut c, 0, 2000);
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    mixed_writes(&mut c, 1, 2000);
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    mixed_writes(&mut c, 2, 500);
    let expected = dump(&s);
    drop(c);
    s.kill();
    let ckps = files_with(dir.path(), ".ckp");
    assert_eq!(ckps.len(), 2, "two checkpoints are kept: {ckps:?}");
    // Flip one byte in the middle of the newest.
    let newest = ckps.last().unwrap();
    let mut bytes = std::fs::read(newest).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(newest, bytes).unwrap();
    s.restart();
    assert_eq!(dump(&s), expected);
    let log = s.log_text();
    assert!(log.contains("checkpoint is damaged") && log.contains(newest.file_name().unwrap().to_str().unwrap()), "log:\n{log}");
    assert_eq!(files_with(dir.path(), ".damaged").len(), 1);

    // With every checkpoint damaged and the early log gone, start-up refuses and says why.
    let mut c = s.client();
    mixed_writes(&mut c, 3, 2000);
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    mixed_writes(&mut c, 4, 2000);
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    assert!(info_u64(&mut c, "log_segments_removed") > 0, "no segment was removed");
    drop(c);
    s.kill();
    for f in files_with(dir.path(), ".ckp") {
        let mut bytes = std::fs::read(&f).unwrap();
        bytes[4096 + 20] ^= 1;
        std::fs::write(&f, bytes).unwrap();
    }
    let err = s.restart_expect_failure();
    assert!(err.contains("the log begins at LSN") && err.contains("no valid checkpoint"), "stderr:\n{err}");
}

#[test]
fn overwrites_keep_the_log_bounded_and_lose_nothing_across_sigkill() {
    let dir = data_dir();
    let args = ["--shards", "1", "--segment-size", "64kb", "--appendfsync", "always", "--compaction-rate", "8mb"];
    let mut s = Server::start_in(dir.path(), &args);
    let value = "x".repeat(1000);
    let live = 400usize;
    let mut newest: HashMap<usize, u64> = HashMap::new();
    let mut rng = rand::thread_rng();
    let mut peak_disk = 0u64;
    let mut written = 0u64;
    for cycle in 0..6 {
        let mut c = s.client();
        // Write until a random moment, then SIGKILL: checkpoints run all along at 8 MB/s.
        let writes = rng.gen_range(3000..6000);
        for n in 0..writes {
            let k = rng.gen_range(0..live);
            let version = cycle * 100_000 + n;
            let _: () = c.set(format!("k{k}"), format!("{version}:{value}")).unwrap();
            newest.insert(k, version);
            written += 1000;
            if n % 500 == 0 {
                let disk = info_u64(&mut c, "log_disk_bytes") + info_u64(&mut c, "checkpoint_bytes");
                peak_disk = peak_disk.max(disk);
            }
        }
        let checkpoints = info_u64(&mut c, "rdb_saves");
        drop(c);
        s.kill();
        s.restart();
        let mut c = s.client();
        for (k, version) in &newest {
            let v: String = c.get(format!("k{k}")).unwrap();
            assert!(v.starts_with(&format!("{version}:")), "cycle {cycle}: k{k} is {} not version {version}", &v[..v.len().min(20)]);
        }
        eprintln!("cycle {cycle}: {checkpoints} checkpoints before the kill");
    }
    let live_bytes = (live * 1000) as u64;
    eprintln!("written {written} bytes of values, live {live_bytes}, peak disk {peak_disk}");
    assert!(written > 20 * live_bytes);
    // Two checkpoints and the log since the older: about 4x live at threshold 0.5, plus what a
    // 100 ms tick lets through; under `always` a lone client's every write fills a 4 KiB block.
    // On a loaded machine checkpoints lag the writes: 17x live was seen in CI. Bounded means
    // well under what was written (at least 45x live), not growing with it.
    assert!(peak_disk < 20 * live_bytes + (2 << 20), "disk peaked at {peak_disk} bytes for {live_bytes} live");
}

#[test]
fn deleted_and_expired_keys_stay_gone_after_compaction_and_sigkill() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--shards", "1", "--segment-size", "64kb", "--appendfsync", "always"]);
    let mut c = s.client();
    for i in 0..2000 {
        let _: () = c.set(format!("k{i}"), "v".repeat(100)).unwrap();
    }
    let _: () = c.pset_ex("short", "gone", 300).unwrap();
    for i in (0..2000).step_by(2) {
        let _: i64 = c.del(format!("k{i}")).unwrap();
    }
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    // Enough new writes to roll segments, then a second checkpoint removes the ones the first holds.
    for i in 0..2000 {
        let _: () = c.set(format!("n{i}"), "w".repeat(100)).unwrap();
    }
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    assert!(info_u64(&mut c, "log_segments_removed") > 0);
    std::thread::sleep(Duration::from_millis(400));
    drop(c);
    s.kill();
    s.restart();
    let mut c = s.client();
    for i in 0..2000 {
        let v: Option<String> = c.get(format!("k{i}")).unwrap();
        assert_eq!(v.is_some(), i % 2 == 1, "k{i}");
    }
    assert_eq!(c.get::<_, Option<String>>("short").unwrap(), None);
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 1000 + 2000);
}

#[test]
fn save_bgsave_lastsave_and_shutdown_behave_as_in_redis() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &[]);
    let mut c = s.client();
    for i in 0..500 {
        let _: () = c.set(format!("k{i}"), i).unwrap();
    }
    let before: i64 = redis::cmd("LASTSAVE").query(&mut c).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let _: () = c.set("one-more", 1).unwrap();
    let ok: String = redis::cmd("SAVE").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    let after: i64 = redis::cmd("LASTSAVE").query(&mut c).unwrap();
    assert!(after > before, "LASTSAVE {before} -> {after}");
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    let _: () = c.set("again", 1).unwrap();
    let started: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    assert!(started == "Background saving started", "{started}");
    let scheduled: String = redis::cmd("BGSAVE").arg("SCHEDULE").query(&mut c).unwrap();
    assert!(scheduled.starts_with("Background saving"), "{scheduled}");
    let bad = redis::cmd("BGSAVE").arg("NOW").query::<String>(&mut c).unwrap_err();
    assert_eq!(bad.code(), Some("ERR"));
    // redis-cli style wait for the background save to finish.
    for _ in 0..200 {
        if info_field(&mut c, "rdb_bgsave_in_progress") == "0" {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(c);
    // SHUTDOWN checkpoints: the restart replays no log record.
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut s.client());
    assert!(s.wait_exit(), "SHUTDOWN did not exit cleanly");
    s.restart();
    let mut c = s.client();
    assert_eq!(info_u64(&mut c, "recovery_records"), 0, "SHUTDOWN left records to replay");
    assert_eq!(info_u64(&mut c, "recovery_checkpoint_entries"), 502);
    // SHUTDOWN NOSAVE does not.
    let _: () = c.set("after", 1).unwrap();
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut c);
    assert!(s.wait_exit(), "SHUTDOWN NOSAVE did not exit cleanly");
    s.restart();
    let mut c = s.client();
    assert!(info_u64(&mut c, "recovery_records") >= 1, "SHUTDOWN NOSAVE took a checkpoint; log:\n{}", s.log_text());
    assert_eq!(c.get::<_, i64>("after").unwrap(), 1);

    let cache = Server::start(&["--persistence", "off"]);
    let mut c = cache.client();
    let e = redis::cmd("SAVE").query::<String>(&mut c).unwrap_err();
    assert!(e.to_string().contains("persistence is off"), "{e}");
}

/// Checkpoint chunks are zstd frames by default (`--checkpoint-compression
/// 1`), stored as they are with 0, and a restart loads either.
#[test]
fn checkpoints_are_compressed_unless_asked_not_to() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--shards", "1"]);
    let mut c = s.client();
    let value = |i: u32| format!("{i}:{}", "compressible ".repeat(80));
    for i in 0..2000 {
        let _: () = c.set(format!("k{i}"), value(i)).unwrap();
    }
    let level: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("checkpoint-compression").query(&mut c).unwrap();
    assert_eq!(level, ["checkpoint-compression", "1"]);
    let e = redis::cmd("CONFIG").arg("SET").arg("checkpoint-compression").arg("20").query::<()>(&mut c).unwrap_err();
    assert!(e.to_string().contains("zstd level"), "{e}");
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    let raw = 2000 * value(0).len() as u64;
    let size = |dir: &Path| files_with(dir, ".ckp").iter().map(|f| std::fs::metadata(f).unwrap().len()).max().unwrap();
    assert!(size(dir.path()) < raw / 10, "compressed checkpoint of {} bytes for {raw} bytes of values", size(dir.path()));

    let _: () = redis::cmd("CONFIG").arg("SET").arg("checkpoint-compression").arg("0").query(&mut c).unwrap();
    let _: () = c.set("k-last", "plain").unwrap();
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    assert!(size(dir.path()) > raw, "uncompressed checkpoint of {} bytes for {raw} bytes of values", size(dir.path()));
    drop(c);
    s.kill();
    // The newest (uncompressed) checkpoint holds everything; then damage it so the compressed one is loaded.
    for damage in [false, true] {
        if damage {
            let newest = files_with(dir.path(), ".ckp").into_iter().max_by_key(|f| std::fs::metadata(f).unwrap().len()).unwrap();
            let mut bytes = std::fs::read(&newest).unwrap();
            bytes[4096 + 100] ^= 1;
            std::fs::write(&newest, bytes).unwrap();
        }
        s.restart();
        let mut c = s.client();
        let loaded = info_u64(&mut c, "recovery_checkpoint_entries");
        assert_eq!(loaded, if damage { 2000 } else { 2001 }, "log:\n{}", s.log_text());
        for i in (0..2000).step_by(37) {
            assert_eq!(c.get::<_, String>(format!("k{i}")).unwrap(), value(i));
        }
        assert_eq!(c.get::<_, String>("k-last").unwrap(), "plain");
        drop(c);
        s.kill();
    }
}
