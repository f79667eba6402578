//! The `tiered` policy: a data set larger than `--maxmemory` stays whole,
//! hot values in memory and cold ones in the shard's cold tier on disk,
//! read back when used; across checkpoints, SIGTERM and SIGKILL; damaged
//! cold values answered with an error that names the file; the tier's
//! files compacted and deleted as values are overwritten.
#![allow(clippy::unwrap_used)]

use redis::Connection;
use strand_tests::commands::{err, q};
use strand_tests::Server;

/// The value of key `i` (`len` bytes, different for every key and round).
fn value(i: usize, round: usize, len: usize) -> Vec<u8> {
    let seed = format!("{i}:{round}:");
    seed.bytes().cycle().take(len).collect()
}

/// INFO's integer fields.
fn info(c: &mut Connection) -> std::collections::HashMap<String, i64> {
    let text: String = q(c, &["INFO", "everything"]);
    text.lines().filter_map(|l| l.split_once(':')).filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?))).collect()
}

/// SETs keys `k0..kn` to their values of `round`, pipelined.
fn write_all(c: &mut Connection, n: usize, round: usize, len: usize) {
    for start in (0..n).step_by(256) {
        let mut p = redis::pipe();
        for i in start..(start + 256).min(n) {
            p.cmd("SET").arg(format!("k{i}")).arg(value(i, round, len)).ignore();
        }
        let () = p.query(c).unwrap();
    }
}

/// GETs every key in a scrambled order and checks each value of `round`.
fn check_all(c: &mut Connection, n: usize, round: usize, len: usize) {
    let order: Vec<usize> = (0..n).map(|i| (i * 7919) % n).collect();
    for part in order.chunks(256) {
        let mut p = redis::pipe();
        for i in part {
            p.cmd("GET").arg(format!("k{i}"));
        }
        let got: Vec<Option<Vec<u8>>> = p.query(c).unwrap();
        for (i, v) in part.iter().zip(got) {
            let shown = v.as_ref().map(|v| String::from_utf8_lossy(&v[..v.len().min(24)]).into_owned());
            assert!(v.as_deref() == Some(&value(*i, round, len)[..]), "k{i} read back wrong (round {round}): {shown:?}");
        }
    }
}

fn tiered(extra: &[&str]) -> Server {
    let mut args = vec!["--maxmemory", "8mb", "--appendfsync", "no"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

#[test]
fn a_data_set_four_times_the_budget_reads_back_across_restarts() {
    // STRAND_TIER_MB scales it up (the figure: 400 with --maxmemory 100mb).
    let mb: usize = std::env::var("STRAND_TIER_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    let budget = format!("{}mb", mb / 4);
    let (len, n) = (2048, mb * 512);
    let mut s = Server::start(&["--maxmemory", &budget, "--appendfsync", "no"]);
    let mut c = s.client();
    assert_eq!(q::<Vec<String>>(&mut c, &["CONFIG", "GET", "maxmemory-policy"])[1], "tiered", "tiered is the default with persistence on");
    write_all(&mut c, n, 0, len);
    let i = info(&mut c);
    assert!(i["used_memory"] <= i["maxmemory"] + (1 << 20), "used_memory {} over maxmemory {}", i["used_memory"], i["maxmemory"]);
    assert!(i["tiered_keys"] as usize > n / 2, "only {} of {n} keys are cold", i["tiered_keys"]);
    assert!(i["tier_disk_bytes"] as usize >= i["tiered_keys"] as usize * len, "{i:?}");
    assert_eq!(i["evicted_keys"], 0);
    assert_eq!(q::<usize>(&mut c, &["DBSIZE"]), n);
    check_all(&mut c, n, 0, len);
    assert!(info(&mut c)["tier_reads"] as usize >= n / 2);

    // A checkpoint refers to cold values; SIGTERM writes another; both restarts read everything.
    let _: () = q(&mut c, &["SAVE"]);
    drop(c);
    assert!(s.stop());
    s.restart();
    let mut c = s.client();
    let i = info(&mut c);
    assert!(i["tiered_keys"] as usize > n / 2, "a restart from a checkpoint leaves cold keys cold: {}", i["tiered_keys"]);
    assert!(i["used_memory"] <= i["maxmemory"] + (1 << 20), "used_memory {} after restart", i["used_memory"]);
    check_all(&mut c, n, 0, len);

    // Overwrite half, then SIGKILL: the log holds those, the checkpoint the rest.
    write_all(&mut c, n / 2, 1, len);
    drop(c);
    // Under appendfsync no a reply does not wait for the write: give the last millisecond of writes time to reach the file.
    std::thread::sleep(std::time::Duration::from_millis(200));
    s.restart();
    let mut c = s.client();
    check_all(&mut c, n / 2, 1, len);
    for i in n / 2..n {
        let v: Vec<u8> = q(&mut c, &["GET", &format!("k{i}")]);
        assert_eq!(v, value(i, 0, len), "k{i} after SIGKILL");
    }
}

#[test]
fn commands_see_cold_values_as_strings() {
    let s = tiered(&["--shards", "1"]);
    let mut c = s.client();
    write_all(&mut c, 8192, 0, 2048);
    assert!(info(&mut c)["tiered_keys"] > 1000);
    // Most keys are cold now: every kind of access sees the string.
    let key = |i: usize| format!("k{}", (i * 7919) % 8192);
    for i in 0..200 {
        let k = key(i);
        let v = value((i * 7919) % 8192, 0, 2048);
        match i % 8 {
            0 => assert_eq!(q::<usize>(&mut c, &["STRLEN", &k]), 2048),
            1 => assert_eq!(q::<Vec<u8>>(&mut c, &["GETRANGE", &k, "10", "19"]), v[10..20].to_vec()),
            2 => {
                assert_eq!(q::<usize>(&mut c, &["APPEND", &k, "xyz"]), 2051);
                assert_eq!(q::<Vec<u8>>(&mut c, &["GETRANGE", &k, "-3", "-1"]), b"xyz".to_vec());
            }
            3 => {
                let _: usize = q(&mut c, &["SETRANGE", &k, "2", "AB"]);
                assert_eq!(q::<Vec<u8>>(&mut c, &["GETRANGE", &k, "0", "3"]), [&v[..2], b"AB"].concat());
            }
            4 => {
                let got: Vec<Vec<u8>> = q(&mut c, &["EVAL", "return {redis.call('GET', KEYS[1])}", "1", &k]);
                assert_eq!(got, vec![v]);
            }
            5 => {
                let mut p = redis::pipe();
                p.atomic().cmd("GET").arg(&k).cmd("STRLEN").arg(&k);
                let (got, len): (Vec<u8>, usize) = p.query(&mut c).unwrap();
                assert_eq!((got, len), (v, 2048));
            }
            6 => {
                let _: () = q(&mut c, &["RENAME", &k, &format!("renamed{i}")]);
                assert_eq!(q::<Vec<u8>>(&mut c, &["GET", &format!("renamed{i}")]), v);
            }
            _ => {
                let _: bool = q(&mut c, &["COPY", &k, &format!("copy{i}")]);
                assert_eq!(q::<Vec<u8>>(&mut c, &["GETDEL", &format!("copy{i}")]), v);
                assert_eq!(q::<Vec<u8>>(&mut c, &["GETDEL", &k]), v);
            }
        }
    }
    assert!(info(&mut c)["tier_reads"] > 0);
    // SWAPDB moves cold keys to another database without reading them; they still read back.
    let cold_before = info(&mut c)["tiered_keys"];
    let _: () = q(&mut c, &["SWAPDB", "0", "5"]);
    let _: () = q(&mut c, &["SELECT", "5"]);
    assert_eq!(info(&mut c)["tiered_keys"], cold_before);
    let touched: std::collections::HashSet<usize> = (0..200).map(|i| (i * 7919) % 8192).collect();
    for i in (4000..8192).step_by(97).filter(|i| !touched.contains(i)) {
        assert_eq!(q::<Vec<u8>>(&mut c, &["GET", &format!("k{i}")]), value(i, 0, 2048), "k{i} after SWAPDB");
    }
}

#[test]
fn tiered_needs_persistence() {
    let s = Server::start(&["--persistence", "off", "--shards", "1"]);
    let mut c = s.client();
    let e = err(&mut c, &["CONFIG", "SET", "maxmemory-policy", "tiered"]);
    assert!(e.contains("needs persistence on"), "{e}");
    assert_eq!(q::<Vec<String>>(&mut c, &["CONFIG", "GET", "maxmemory-policy"])[1], "noeviction");
}

#[test]
fn a_damaged_cold_value_is_an_error_naming_its_file() {
    let s = tiered(&["--shards", "1"]);
    let mut c = s.client();
    write_all(&mut c, 8192, 0, 2048);
    // The tier's writer writes within milliseconds.
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Flip bytes in the middle of every record of the first tier segment.
    let path = s.dir.join("shard-000").join("00000001.cold");
    let mut bytes = std::fs::read(&path).unwrap();
    for b in bytes[4096..].iter_mut().step_by(1024) {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    let mut errors = 0;
    for i in 0..8192 {
        match redis::cmd("GET").arg(format!("k{i}")).query::<Option<Vec<u8>>>(&mut c) {
            Ok(v) => assert_eq!(v.unwrap(), value(i, 0, 2048), "k{i}: a damaged value must never be returned"),
            Err(e) => {
                let e = e.to_string();
                assert!(e.contains("00000001.cold") && e.contains("checksum mismatch"), "{e}");
                errors += 1;
            }
        }
    }
    assert!(errors > 100, "{errors} errors");
    // SET ... GET reads the old value: a damaged one is the same error, and the SET does not happen.
    let mut set_get_errors = 0;
    for i in 0..8192 {
        let key = format!("k{i}");
        match redis::cmd("SET").arg(&key).arg("new").arg("GET").query::<Option<Vec<u8>>>(&mut c) {
            Ok(v) => assert_eq!(v.unwrap(), value(i, 0, 2048), "{key}: a damaged value must never be returned"),
            Err(e) => {
                let e = e.to_string();
                assert!(e.contains("could not be read from the cold tier") && e.contains("checksum mismatch"), "{key}: {e}");
                set_get_errors += 1;
                let still: redis::Value = redis::cmd("TYPE").arg(&key).query(&mut c).unwrap();
                assert_eq!(still, redis::Value::SimpleString("string".into()), "{key}");
                assert!(redis::cmd("GET").arg(&key).query::<Vec<u8>>(&mut c).is_err(), "{key}: the failed SET ... GET wrote");
            }
        }
    }
    assert_eq!(set_get_errors, errors, "SET ... GET met the same damaged values as GET");
    // The first read failed in the background, the second in the command.
    assert!(info(&mut c)["tier_read_errors"] >= errors);
}

#[test]
fn overwritten_cold_values_free_their_segments() {
    let s = tiered(&["--shards", "1", "--segment-size", "1mb", "--checkpoint-interval", "0"]);
    let mut c = s.client();
    for round in 0..6 {
        write_all(&mut c, 8192, round, 2048);
        let _: String = q(&mut c, &["SAVE"]);
    }
    for _ in 0..20 {
        let _: String = q(&mut c, &["SAVE"]);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let i = info(&mut c);
    assert!(i["tier_segments_removed"] > 0, "{i:?}");
    let live = i["tiered_keys"] * 2048;
    assert!(i["tier_disk_bytes"] < 3 * live + (4 << 20), "tier on disk {} for {live} live bytes", i["tier_disk_bytes"]);
    check_all(&mut c, 8192, 5, 2048);
}

/// SIGKILL while values move to the tier, checkpoints refer to it and
/// sparse tier files are compacted and deleted: after each restart every
/// acknowledged write reads back (under `appendfsync always`), the write in
/// flight at the kill either old or new.
#[test]
fn sigkill_during_tiering_and_its_compaction_loses_nothing_acknowledged() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let (keys, len) = (3000usize, 2048usize);
    let mut s = Server::start(&[
        "--shards",
        "1",
        "--maxmemory",
        "2mb",
        "--appendfsync",
        "always",
        "--segment-size",
        "1mb",
        "--checkpoint-interval",
        "1",
    ]);
    // acked[i]: the last round of key i the server confirmed; pending[i]: a round sent, not yet confirmed.
    let acked = Arc::new(Mutex::new(vec![None::<usize>; keys]));
    let mut round = 0;
    for cycle in 0..4 {
        let stop = Arc::new(AtomicBool::new(false));
        let pending = Arc::new(Mutex::new(vec![None::<usize>; keys]));
        let writer = {
            let (stop, acked, pending, port) = (stop.clone(), acked.clone(), pending.clone(), s.port);
            let first = round;
            std::thread::spawn(move || {
                let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else { return first };
                let Ok(mut c) = client.get_connection() else { return first };
                let mut round = first;
                while !stop.load(Ordering::SeqCst) {
                    round += 1;
                    let batch: Vec<usize> = (0..64).map(|j| (round * 64 + j * 47) % keys).collect();
                    let mut p = redis::pipe();
                    for &i in &batch {
                        pending.lock().unwrap()[i] = Some(round);
                        p.cmd("SET").arg(format!("k{i}")).arg(value(i, round, len));
                    }
                    // Each reply on its own: only a +OK acknowledges (an error leaves the write pending, old or new).
                    let Ok(replies) = p.query::<Vec<redis::Value>>(&mut c) else { return round };
                    let mut a = acked.lock().unwrap();
                    for (&i, reply) in batch.iter().zip(replies) {
                        if reply == redis::Value::Okay {
                            a[i] = Some(round);
                            pending.lock().unwrap()[i] = None;
                        } else {
                            eprintln!("round {round}: SET k{i} answered {reply:?}");
                        }
                    }
                }
                round
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(1500 + 700 * cycle as u64));
        s.kill();
        stop.store(true, Ordering::SeqCst);
        round = writer.join().unwrap() + 1;
        s.restart();
        let mut c = s.client();
        let mut acked = acked.lock().unwrap();
        let pending = pending.lock().unwrap();
        for i in 0..keys {
            let got: Option<Vec<u8>> = q(&mut c, &["GET", &format!("k{i}")]);
            let ok = |r: Option<usize>| match r {
                Some(r) => got.as_deref() == Some(&value(i, r, len)[..]),
                None => got.is_none(),
            };
            let shown = got.as_ref().map(|v| String::from_utf8_lossy(&v[..v.len().min(16)]).into_owned());
            assert!(
                ok(acked[i]) || (pending[i].is_some() && ok(pending[i])),
                "cycle {cycle}: k{i} lost its acknowledged round {:?} (pending {:?}); read {shown:?}",
                acked[i],
                pending[i]
            );
            // A write in flight at the kill that reached the disk is the value from now on.
            if !ok(acked[i]) {
                acked[i] = pending[i];
            }
        }
        let i = info(&mut c);
        assert!(i["tiered_keys"] > 0 || cycle == 0, "cycle {cycle}: {i:?}");
    }
    let i = info(&mut s.client());
    eprintln!(
        "tier after the cycles: {} segments, {} bytes on disk, {} removed",
        i["tier_segments"], i["tier_disk_bytes"], i["tier_segments_removed"]
    );
}
