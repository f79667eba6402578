//! Durability: restarts in every appendfsync mode, SIGKILL under load,
//! torn tails and damaged segments, built on the real files.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use redis::Commands;
use strand_engine::log::segment;
use strand_engine::slot::SlotMap;
use strand_tests::{data_dir, Server};

fn write_keys(s: &Server, prefix: &str, n: usize) {
    let mut c = s.client();
    let mut p = redis::pipe();
    for i in 0..n {
        p.set(format!("{prefix}{i}"), format!("value-{i}")).ignore();
    }
    p.query::<()>(&mut c).unwrap();
}

fn assert_keys(s: &Server, prefix: &str, n: usize) {
    let mut c = s.client();
    for i in 0..n {
        let v: Option<String> = c.get(format!("{prefix}{i}")).unwrap();
        assert_eq!(v.as_deref(), Some(format!("value-{i}").as_str()), "key {prefix}{i} lost");
    }
}

#[test]
fn clean_restart_keeps_everything_in_every_mode() {
    for mode in ["always", "everysec", "no"] {
        let dir = data_dir();
        let mut s = Server::start_in(dir.path(), &["--appendfsync", mode]);
        write_keys(&s, "k", 2000);
        let mut c = s.client();
        let _: () = c.set_ex("ttl", "x", 100).unwrap();
        let _: () = redis::cmd("MSET").arg("{t}a").arg("1").arg("{t}b").arg("2").query(&mut c).unwrap();
        let _: i64 = c.incr("counter", 5).unwrap();
        let _: i64 = c.append("counter", "0").unwrap();
        let _: () = c.rename("k0", "{k0}renamed").unwrap();
        let _: i64 = c.del("k1").unwrap();
        drop(c);
        assert!(s.stop(), "SIGTERM did not exit cleanly in mode {mode}");
        s.restart();
        let mut c = s.client();
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
        assert_eq!(n, 2000 - 2 + 1 + 1 + 2 + 1, "mode {mode}");
        assert_eq!(c.get::<_, Option<String>>("{k0}renamed").unwrap().as_deref(), Some("value-0"));
        assert_eq!(c.get::<_, Option<String>>("k1").unwrap(), None);
        assert_eq!(c.get::<_, String>("counter").unwrap(), "50");
        let ttl: i64 = c.ttl("ttl").unwrap();
        assert!(ttl > 90 && ttl <= 100, "ttl {ttl} after restart in mode {mode}");
        drop(c);
        assert_keys(&s, "k", 0);
        let mut c = s.client();
        for i in 2..2000 {
            let v: String = c.get(format!("k{i}")).unwrap();
            assert_eq!(v, format!("value-{i}"));
        }
    }
}

#[test]
fn keys_that_expired_while_down_stay_gone() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "always"]);
    let mut c = s.client();
    let _: () = redis::cmd("SET").arg("short").arg("1").arg("PX").arg(300).query(&mut c).unwrap();
    let _: () = redis::cmd("SET").arg("long").arg("1").arg("EX").arg(100).query(&mut c).unwrap();
    // Re-created after expiry: the new value must win on replay.
    let _: () = redis::cmd("SET").arg("again").arg("old").arg("PX").arg(50).query(&mut c).unwrap();
    std::thread::sleep(Duration::from_millis(120));
    let _: i64 = c.append("again", "new").unwrap();
    drop(c);
    s.kill();
    std::thread::sleep(Duration::from_millis(400));
    s.restart();
    let mut c = s.client();
    assert_eq!(c.get::<_, Option<String>>("short").unwrap(), None);
    assert_eq!(c.get::<_, Option<String>>("long").unwrap().as_deref(), Some("1"));
    assert_eq!(c.get::<_, Option<String>>("again").unwrap().as_deref(), Some("new"));
    assert_eq!(c.ttl::<_, i64>("again").unwrap(), -1);
}

#[test]
fn everysec_keeps_writes_a_moment_old_across_sigkill() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "everysec"]);
    write_keys(&s, "e", 5000);
    std::thread::sleep(Duration::from_millis(200));
    s.kill();
    s.restart();
    assert_keys(&s, "e", 5000);
}

#[test]
fn persistence_off_keeps_nothing() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--persistence", "off"]);
    write_keys(&s, "p", 100);
    assert!(s.stop());
    assert!(segment::list_segments(&segment::shard_dir(dir.path(), 0)).unwrap().is_empty());
    s.restart();
    let n: i64 = redis::cmd("DBSIZE").query(&mut s.client()).unwrap();
    assert_eq!(n, 0);
}

/// What one writer thread saw acknowledged.
#[derive(Default, Clone)]
struct Acked {
    /// key -> value acknowledged last.
    values: HashMap<String, String>,
    /// A write sent but not acknowledged when the server died: it may or may not be there.
    in_flight: Option<(String, String)>,
}

fn writer(port: u16, t: usize, round: usize, stop: Arc<AtomicBool>) -> Acked {
    let mut acked = Acked::default();
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else { return acked };
    let Ok(mut c) = client.get_connection() else { return acked };
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        // New keys, and overwrites of a small set of hot keys.
        let key = if i.is_multiple_of(3) { format!("hot:{t}:{}", i % 7) } else { format!("w:{t}:{round}:{i}") };
        let value = format!("{round}-{i}");
        acked.in_flight = Some((key.clone(), value.clone()));
        match c.set::<_, _, ()>(&key, &value) {
            Ok(()) => {
                acked.values.insert(key, value);
                acked.in_flight = None;
            }
            Err(_) => break,
        }
        i += 1;
    }
    acked
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_write() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "always"]);
    let mut expected: HashMap<String, String> = HashMap::new();
    let mut rng = rand::thread_rng();
    for round in 0..4 {
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (port, stop) = (s.port, stop.clone());
                std::thread::spawn(move || writer(port, t, round, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.gen_range(150..600)));
        s.kill();
        stop.store(true, Ordering::Relaxed);
        let results: Vec<Acked> = threads.into_iter().map(|h| h.join().unwrap()).collect();
        s.restart();
        let mut c = s.client();
        let mut maybe: HashMap<String, String> = HashMap::new();
        for r in &results {
            expected.extend(r.values.clone());
            if let Some((k, v)) = &r.in_flight {
                maybe.insert(k.clone(), v.clone());
            }
        }
        let acked_now: usize = results.iter().map(|r| r.values.len()).sum();
        assert!(acked_now > 0, "round {round}: no write was acknowledged before the kill");
        let mut landed = Vec::new();
        for (k, v) in &expected {
            let got: Option<String> = c.get(k).unwrap();
            match (&got, maybe.get(k)) {
                (Some(g), _) if g == v => {}
                // The in-flight write reached the log: it is now the newest value.
                (Some(g), Some(m)) if g == m => landed.push((k.clone(), m.clone())),
                _ => panic!("round {round}: key {k}: expected {v:?}, found {got:?}"),
            }
        }
        expected.extend(landed);
        // Nothing appears that no one wrote.
        let keys: Vec<String> = c.keys("*").unwrap();
        for k in keys {
            assert!(expected.contains_key(&k) || maybe.contains_key(&k), "round {round}: key {k} appeared from nowhere");
            if let Some(m) = maybe.get(&k) {
                expected.entry(k).or_insert_with(|| m.clone());
            }
        }
    }
}

/// The segment of shard `shard` written last (highest sequence number).
fn last_segment(dir: &Path, shard: u32) -> PathBuf {
    segment::list_segments(&segment::shard_dir(dir, shard)).unwrap().pop().unwrap().1
}

/// End of the non-zero data in a file.
fn data_end(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1)
}

/// Writes keys one by one (each its own flush), so the log holds many blocks.
fn write_one_by_one(s: &Server, n: usize) -> Vec<String> {
    let mut c = s.client();
    (0..n)
        .map(|i| {
            let k = format!("t{i}");
            let _: () = c.set(&k, format!("value-{i}")).unwrap();
            k
        })
        .collect()
}

/// After damage to shard 0's tail, shard 0's keys must be a prefix of the order they were written in,
/// and shard 1's must all be there.
fn assert_prefix_recovered(s: &Server, keys: &[String]) -> usize {
    let map = SlotMap::new(2);
    let mut c = s.client();
    let mut lost_started = false;
    let mut kept0 = 0;
    for (i, k) in keys.iter().enumerate() {
        let v: Option<String> = c.get(k).unwrap();
        if map.shard_of(k.as_bytes()) == 1 {
            assert_eq!(v, Some(format!("value-{i}")), "shard 1 lost {k}");
            continue;
        }
        match v {
            Some(v) => {
                assert!(!lost_started, "{k} survived although an earlier key of shard 0 was cut: not a prefix");
                assert_eq!(v, format!("value-{i}"));
                kept0 += 1;
            }
            None => lost_started = true,
        }
    }
    kept0
}

#[test]
fn torn_tail_cut_at_random_byte_recovers_the_prefix() {
    let mut rng = rand::thread_rng();
    for _ in 0..3 {
        let dir = data_dir();
        let mut s = Server::start_in(dir.path(), &["--appendfsync", "always"]);
        let keys = write_one_by_one(&s, 300);
        s.kill();
        let seg = last_segment(dir.path(), 0);
        let end = data_end(&seg);
        let cut = rng.gen_range(segment::BLOCK + 1..end);
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(cut as u64).unwrap();
        drop(f);
        s.restart();
        let kept = assert_prefix_recovered(&s, &keys);
        let total0 = keys.iter().filter(|k| SlotMap::new(2).shard_of(k.as_bytes()) == 0).count();
        assert!(kept < total0 || cut >= end - 64, "cut at {cut} of {end} lost nothing");
    }
}

/// A server under `always` that wrote `n` keys one by one and was killed:
/// its directory, the server, the keys, shard 0's last segment and where its data ends.
fn killed_after_writes(n: usize) -> (tempfile::TempDir, Server, Vec<String>, PathBuf, usize) {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "always"]);
    let keys = write_one_by_one(&s, n);
    s.kill();
    let seg = last_segment(dir.path(), 0);
    let end = data_end(&seg);
    (dir, s, keys, seg, end)
}

/// Overwrites the 4 KiB block of `seg` at `start` with what `fill` puts there.
fn rewrite_block(seg: &Path, start: usize, fill: impl FnOnce(&mut [u8])) {
    let mut bytes = std::fs::read(seg).unwrap();
    fill(&mut bytes[start..start + segment::BLOCK]);
    std::fs::write(seg, &bytes).unwrap();
}

/// After a restart over a damaged tail: the cut is reported, the server
/// takes writes, and the next restart is clean. Returns shard 0's keys kept.
fn assert_cut_then_clean(s: &mut Server, keys: &[String]) -> usize {
    let kept = assert_prefix_recovered(s, keys);
    assert!(s.log_text().contains("cut a torn tail"), "recovery did not report the cut:\n{}", s.log_text());
    let _: () = s.client().set("after", "1").unwrap();
    s.restart();
    assert_eq!(s.client().get::<_, Option<String>>("after").unwrap().as_deref(), Some("1"));
    assert_eq!(assert_prefix_recovered(s, keys), kept, "the second restart changed what was kept");
    kept
}

#[test]
fn garbage_in_the_last_block_is_cut_and_reported() {
    let (_dir, mut s, keys, seg, end) = killed_after_writes(200);
    let mut rng = rand::thread_rng();
    rewrite_block(&seg, (end - 1) / segment::BLOCK * segment::BLOCK, |b| rng.fill(b));
    s.restart();
    assert!(assert_cut_then_clean(&mut s, &keys) > 0);
}

/// The log writes the buffers of one group all at once, so they may land in
/// any order: a crash can leave a later block on disk and an earlier one not.
/// Recovery ends the log at the hole and cuts what follows (records nobody
/// was told were durable), instead of refusing to start.
#[test]
fn a_block_that_did_not_land_before_later_ones_ends_the_log_there() {
    let (_dir, mut s, keys, seg, end) = killed_after_writes(300);
    let blocks = end.div_ceil(segment::BLOCK);
    assert!(blocks > 8, "expected many blocks of data, found {blocks}");
    // A block in the middle of the data, after the segment's header block.
    rewrite_block(&seg, blocks / 2 * segment::BLOCK, |b| b.fill(0));
    s.restart();
    let kept = assert_cut_then_clean(&mut s, &keys);
    let total0 = keys.iter().filter(|k| SlotMap::new(2).shard_of(k.as_bytes()) == 0).count();
    assert!(kept > 0 && kept < total0, "kept {kept} of shard 0's {total0} keys: the hole should cut the rest");
}

#[test]
fn damage_before_the_tail_refuses_to_start_and_names_the_place() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "always"]);
    write_one_by_one(&s, 200);
    s.restart();
    write_one_by_one(&s, 10);
    s.kill();
    let segs = segment::list_segments(&segment::shard_dir(dir.path(), 0)).unwrap();
    assert!(segs.len() >= 2, "expected a sealed segment and a newer one: {segs:?}");
    let (_, sealed) = &segs[0];
    let mut bytes = std::fs::read(sealed).unwrap();
    let at = segment::BLOCK + 100;
    bytes[at] ^= 0x55;
    std::fs::write(sealed, &bytes).unwrap();
    let log = s.restart_expect_failure();
    let name = sealed.file_name().unwrap().to_str().unwrap();
    assert!(log.contains(name) && log.contains("offset"), "error does not name the file and offset:\n{log}");

    // strand-tools finds the same place, and its repair lets the server start
    // with every record before the damage.
    let tools = |args: &[&str]| {
        let out = std::process::Command::new(strand_tests::tools_binary())
            .args(args)
            .args(["--dir", dir.path().to_str().unwrap()])
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let (code, out) = tools(&["check"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains(name) && out.contains("offset"), "{out}");
    let (code, out) = tools(&["repair", "--yes"]);
    assert_eq!(code, Some(0), "{out}");
    s.restart();
    // Shard 1 is untouched; shard 0 keeps what precedes the damage.
    let map = SlotMap::new(2);
    let mut c = s.client();
    for i in 0..200 {
        let k = format!("t{i}");
        let v: Option<String> = c.get(&k).unwrap();
        if map.shard_of(k.as_bytes()) == 1 {
            assert_eq!(v, Some(format!("value-{i}")), "shard 1 lost {k}");
        }
    }
    assert!(c.get::<_, Option<String>>("t0").unwrap().is_some() || map.shard_of(b"t0") == 1);
}

#[test]
fn segments_prepared_ahead_of_need_are_used_and_recovered() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "always", "--segment-size", "256kb"]);
    let mut c = s.client();
    let value = vec![b'p'; 2000];
    for i in 0..1500 {
        let _: () = c.set(format!("big{i}"), &value).unwrap();
    }
    let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
    let prepared: u64 = info.lines().find_map(|l| l.strip_prefix("log_segments_prepared:")).unwrap().trim().parse().unwrap();
    assert!(prepared >= 2, "no segment was prepared ahead of need:\n{info}");
    drop(c);
    s.kill();
    s.restart();
    let mut c = s.client();
    for i in 0..1500 {
        let v: Vec<u8> = c.get(format!("big{i}")).unwrap();
        assert_eq!(v, value, "big{i}");
    }
}

/// Under `always` the log leaves the first segment after start-up (created
/// with fallocate, so every fdatasync there also journals extent
/// conversions) as soon as the next one is written full of zeros, long
/// before the first is full; a crash after that loses nothing on either side
/// of the early roll.
#[test]
fn always_rolls_early_into_the_first_prepared_segment() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "always", "--segment-size", "1mb", "--shards", "1"]);
    let mut c = s.client();
    let prepared = |c: &mut redis::Connection| -> u64 {
        let info: String = redis::cmd("INFO").arg("persistence").query(c).unwrap();
        info.lines().find_map(|l| l.strip_prefix("log_segments_prepared:")).unwrap().trim().parse().unwrap()
    };
    // Each SET under `always` fills one 4 KiB block: 100 of them take well
    // under half of the 1 MiB segment.
    let mut n = 0;
    while prepared(&mut c) == 0 {
        assert!(n < 100, "no early roll after {n} writes");
        let _: () = c.set(format!("k{n}"), n).unwrap();
        n += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in n..n + 10 {
        let _: () = c.set(format!("k{i}"), i).unwrap();
    }
    drop(c);
    s.kill();
    s.restart();
    let mut c = s.client();
    for i in 0..n + 10 {
        assert_eq!(c.get::<_, Option<u64>>(format!("k{i}")).unwrap(), Some(i), "k{i}");
    }
}

#[test]
fn everysec_bounds_what_replies_leave_unwritten() {
    // Many connections pipelining large writes outrun the disk; replies must then wait for
    // the write, so what a crash of the process could take stays bounded.
    let s = Server::start(&["--appendfsync", "everysec", "--shards", "1"]);
    let value = "v".repeat(16 * 1024);
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let mut c = s.client();
            let value = value.clone();
            std::thread::spawn(move || {
                for round in 0..40 {
                    let mut p = redis::pipe();
                    for i in 0..32 {
                        p.set(format!("w{t}:{}", (round * 32 + i) % 200), &value).ignore();
                    }
                    p.query::<()>(&mut c).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let mut c = s.client();
    let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
    let peak: u64 = info.lines().find_map(|l| l.strip_prefix("log_unwritten_peak_bytes:")).unwrap().trim().parse().unwrap();
    // The bound, plus one pipeline of each connection appended before its reply waits.
    let slack = 8 * 32 * (16 * 1024 + 100);
    eprintln!("unwritten peak {peak} bytes");
    assert!(peak <= strand_engine::log::MAX_UNWRITTEN + slack as u64, "{peak} bytes waited to be written at once");
}
