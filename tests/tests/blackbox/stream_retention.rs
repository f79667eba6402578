//! Stream retention by age and by size (XCFGSET RETENTION-MS and
//! RETENTION-BYTES, strand's own) against the real binary: XADD trims in
//! the same write, an idle stream ages on the shard's timer, XCFGSET drops
//! what no longer fits at once, and the settings survive SIGKILL and
//! checkpoints (the timer finds the stream again after a restart).

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use redis::Connection;
use strand_tests::commands::{err, int_fields, q, start};
use strand_tests::Server;

/// XINFO STREAM's integer fields by name.
fn info(c: &mut Connection, key: &str) -> HashMap<String, i64> {
    int_fields(c, &["XINFO", "STREAM", key])
}

fn xlen(c: &mut Connection, key: &str) -> i64 {
    q(c, &["XLEN", key])
}

/// Waits up to 3 s for XLEN to reach `n`.
fn wait_len(c: &mut Connection, key: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while xlen(c, key) != n {
        assert!(Instant::now() < deadline, "{key}: XLEN stayed {} (waiting for {n})", xlen(c, key));
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn retention_bytes_keeps_the_newest_entries_that_fit() {
    let (_s, mut c) = start();
    q::<String>(&mut c, &["XADD", "s", "*", "f", "v"]);
    q::<()>(&mut c, &["XCFGSET", "s", "RETENTION-BYTES", "1000"]);
    let value = "x".repeat(50); // each entry: 16 + 1 + 50 = 67 bytes
    let mut last = String::new();
    for _ in 0..100 {
        last = q(&mut c, &["XADD", "s", "*", "f", &value]);
    }
    assert_eq!(xlen(&mut c, "s"), 14, "14 entries of 67 bytes fit in 1000");
    let m = info(&mut c, "s");
    assert_eq!((m["retention-bytes"], m["retention-ms"], m["data-bytes"]), (1000, 0, 14 * 67));
    let newest: Vec<(String, Vec<String>)> = q(&mut c, &["XREVRANGE", "s", "+", "-", "COUNT", "1"]);
    assert_eq!(newest[0].0, last);
    // Lowering the limit trims at once; 0 turns it off.
    q::<()>(&mut c, &["XCFGSET", "s", "RETENTION-BYTES", "200"]);
    assert_eq!(xlen(&mut c, "s"), 2);
    q::<()>(&mut c, &["XCFGSET", "s", "RETENTION-BYTES", "0"]);
    for _ in 0..10 {
        q::<String>(&mut c, &["XADD", "s", "*", "f", &value]);
    }
    assert_eq!(xlen(&mut c, "s"), 12);
    assert!(!info(&mut c, "s").contains_key("retention-bytes"), "no retention, no fields");
}

#[test]
fn retention_ms_trims_by_entry_time_on_writes_and_on_the_timer() {
    let (_s, mut c) = start();
    // Entries from 1970 are older than any retention.
    for id in ["1-0", "2-0", "3-0"] {
        q::<String>(&mut c, &["XADD", "s", id, "f", "v"]);
    }
    q::<String>(&mut c, &["XADD", "s", "*", "f", "now"]);
    q::<()>(&mut c, &["XCFGSET", "s", "RETENTION-MS", "60000"]);
    assert_eq!(xlen(&mut c, "s"), 1, "XCFGSET dropped what is older than a minute");
    // An idle stream ages too: nothing writes to it after this.
    q::<()>(&mut c, &["XCFGSET", "s", "RETENTION-MS", "300"]);
    wait_len(&mut c, "s", 0);
    assert_eq!(q::<String>(&mut c, &["TYPE", "s"]), "stream", "an emptied stream stays, as in Redis");
    // Setting retention alone keeps the IDMP window.
    let id: String = q(&mut c, &["XADD", "t", "IDMP", "p", "i", "*", "f", "v"]);
    q::<()>(&mut c, &["XCFGSET", "t", "RETENTION-MS", "3600000"]);
    assert_eq!(q::<String>(&mut c, &["XADD", "t", "IDMP", "p", "i", "*", "f", "v"]), id);
    assert_eq!(err(&mut c, &["XCFGSET", "t", "RETENTION-MS", "-1"]), "ERR RETENTION-MS must be 0 (no limit) or more");
    assert_eq!(err(&mut c, &["XCFGSET", "t", "RETENTION-BYTES", "x"]), "ERR value is not an integer or out of range");
}

#[test]
fn retention_survives_sigkill_and_checkpoints_and_the_timer_resumes() {
    let mut s = Server::start(&["--appendfsync", "always"]);
    let mut c = s.client();
    q::<String>(&mut c, &["XADD", "a", "*", "f", "v"]);
    q::<()>(&mut c, &["XCFGSET", "a", "RETENTION-MS", "3600000", "RETENTION-BYTES", "4096"]);
    q::<String>(&mut c, &["XADD", "b", "*", "f", "v"]);
    q::<()>(&mut c, &["XCFGSET", "b", "RETENTION-MS", "800"]);
    s.kill();
    s.restart();
    let mut c = s.client();
    let m = info(&mut c, "a");
    assert_eq!((m["retention-ms"], m["retention-bytes"]), (3_600_000, 4096), "replayed from the log");
    // Nothing writes to b after the restart: the rebuilt registry ages it.
    wait_len(&mut c, "b", 0);
    q::<()>(&mut c, &["SAVE"]);
    s.kill();
    s.restart();
    let mut c = s.client();
    let m = info(&mut c, "a");
    assert_eq!((m["retention-ms"], m["retention-bytes"], m["length"]), (3_600_000, 4096, 1), "loaded from a checkpoint");
    assert_eq!(info(&mut c, "b")["retention-ms"], 800);
}

/// Bytes of a server's log segments and checkpoints on disk.
fn data_bytes_on_disk(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for shard in std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("shard-")) {
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".seg") || name.ends_with(".ckp") {
                total += f.metadata().unwrap().len();
            }
        }
    }
    total
}

/// What retention trims leaves the disk too: checkpoints hold only what
/// the stream keeps, and the segments that held the trimmed entries are
/// removed whole behind them (Kafka's segment deletion).
#[test]
fn trimmed_entries_leave_the_disk_with_their_segments() {
    let s = Server::start(&["--shards", "1", "--segment-size", "64kb"]);
    let mut c = s.client();
    q::<String>(&mut c, &["XADD", "s", "*", "f", "v"]);
    q::<()>(&mut c, &["XCFGSET", "s", "RETENTION-BYTES", "20000"]);
    let value = "x".repeat(1000);
    let mut p = redis::pipe();
    for _ in 0..3000 {
        p.cmd("XADD").arg("s").arg("*").arg("f").arg(&value).ignore();
    }
    p.query::<()>(&mut c).unwrap();
    assert!(info(&mut c, "s")["data-bytes"] <= 20_000);
    q::<()>(&mut c, &["SAVE"]);
    q::<String>(&mut c, &["XADD", "s", "*", "f", "after"]);
    q::<()>(&mut c, &["SAVE"]);
    let on_disk = data_bytes_on_disk(&s.dir);
    assert!(on_disk < 512 * 1024, "3 MB written, 20 KB kept, but {on_disk} bytes of segments and checkpoints stay on disk");
}
