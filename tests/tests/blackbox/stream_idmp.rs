//! Idempotent production for streams (Redis 8.6's XADD IDMP/IDMPAUTO and
//! XCFGSET) against the real binary: the error strings of Redis's own
//! tests, retries answered with the first entry's ID, producers kept
//! apart, the window by count and by time, XCFGSET clearing the iids, the
//! XINFO STREAM counters, and all of it surviving SIGKILL and checkpoints.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::thread;
use std::time::Duration;

use redis::{Connection, Value};
use strand_tests::commands::{err, int_fields, q, start};
use strand_tests::Server;

fn xadd(c: &mut Connection, args: &[&str]) -> String {
    let mut all = vec!["XADD", "s"];
    all.extend_from_slice(args);
    q(c, &all)
}

/// XINFO STREAM's integer fields by name.
fn info(c: &mut Connection, key: &str) -> HashMap<String, i64> {
    int_fields(c, &["XINFO", "STREAM", key])
}

fn idmp_info(c: &mut Connection, key: &str) -> [i64; 6] {
    let m = info(c, key);
    ["idmp-duration", "idmp-maxsize", "pids-tracked", "iids-tracked", "iids-added", "iids-duplicates"]
        .map(|f| *m.get(f).unwrap_or_else(|| panic!("XINFO STREAM has no {f}: {m:?}")))
}

#[test]
fn bad_idmp_options_answer_redis_errors() {
    let (_s, mut c) = start();
    for (args, want) in [
        (&["XADD", "s", "IDMP", "p1", "*", "f", "v"][..], "ERR Invalid stream ID specified as stream command argument"),
        (&["XADD", "s", "IDMP", "p1", "iid1", "1-1", "f", "v"], "ERR IDMP/IDMPAUTO can be used only with auto-generated IDs"),
        (&["XADD", "s", "IDMPAUTO", "p1", "1-1", "f", "v"], "ERR IDMP/IDMPAUTO can be used only with auto-generated IDs"),
        (&["XADD", "s", "IDMP", "p1", "i1", "IDMP", "p2", "i2", "*", "f", "v"], "ERR IDMP/IDMPAUTO specified multiple times"),
        (&["XADD", "s", "IDMPAUTO", "p1", "IDMP", "p2", "i2", "*", "f", "v"], "ERR IDMP/IDMPAUTO specified multiple times"),
        (&["XADD", "s", "IDMP", "p1", "i1", "IDMPAUTO", "p2", "*", "f", "v"], "ERR IDMP/IDMPAUTO specified multiple times"),
        (&["XADD", "s", "IDMP", "", "i1", "*", "f", "v"], "ERR IDMP requires a non-empty producer ID"),
        (&["XADD", "s", "IDMP", "p1", "", "*", "f", "v"], "ERR IDMP requires a non-empty idempotent ID"),
        (&["XADD", "s", "IDMPAUTO", "", "*", "f", "v"], "ERR IDMPAUTO requires a non-empty producer ID"),
    ] {
        assert_eq!(err(&mut c, args), want, "{args:?}");
    }
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "s"]), 0, "no error created the stream");
    // XCFGSET's errors.
    q::<String>(&mut c, &["XADD", "s", "*", "f", "v"]);
    for (args, want) in [
        (
            &["XCFGSET", "s"][..],
            "ERR At least one parameter must be specified: IDMP-DURATION, IDMP-MAXSIZE, RETENTION-MS or RETENTION-BYTES",
        ),
        (&["XCFGSET", "s", "IDMP-DURATION"], "ERR syntax error"),
        (&["XCFGSET", "s", "INVALID"], "ERR syntax error"),
        (&["XCFGSET", "s", "IDMP-DURATION", "3.14"], "ERR value is not an integer or out of range"),
        (&["XCFGSET", "s", "IDMP-MAXSIZE", "000000000"], "ERR value is not an integer or out of range"),
        (&["XCFGSET", "s", "IDMP-DURATION", "INVALID", "IDMP-MAXSIZE"], "ERR value is not an integer or out of range"),
        (&["XCFGSET", "s", "IDMP-DURATION", "0"], "ERR IDMP-DURATION must be between 1 and 86400"),
        (&["XCFGSET", "s", "IDMP-DURATION", "86401"], "ERR IDMP-DURATION must be between 1 and 86400"),
        (&["XCFGSET", "s", "IDMP-MAXSIZE", "-50"], "ERR IDMP-MAXSIZE must be between 1 and 10000"),
        (&["XCFGSET", "s", "IDMP-MAXSIZE", "10001"], "ERR IDMP-MAXSIZE must be between 1 and 10000"),
        (&["XCFGSET", "missing", "IDMP-DURATION", "5"], "ERR no such key"),
    ] {
        assert_eq!(err(&mut c, args), want, "{args:?}");
    }
    q::<()>(&mut c, &["SET", "str", "x"]);
    assert!(err(&mut c, &["XCFGSET", "str", "IDMP-MAXSIZE", "5"]).starts_with("WRONGTYPE"));
    // A stream that never used IDMP answers XINFO STREAM as Redis 7.4 does.
    assert!(!info(&mut c, "s").contains_key("idmp-duration"));
}

#[test]
fn a_retry_answers_the_first_entry_and_adds_nothing() {
    let (_s, mut c) = start();
    let first = xadd(&mut c, &["IDMP", "p1", "payment-abc", "*", "amount", "100", "currency", "USD"]);
    assert_eq!(xadd(&mut c, &["IDMP", "p1", "payment-abc", "*", "amount", "200", "currency", "EUR"]), first);
    assert_eq!(xadd(&mut c, &["IDMP", "p1", "payment-abc", "MAXLEN", "~", "100", "*", "x", "y"]), first);
    assert_eq!(q::<i64>(&mut c, &["XLEN", "s"]), 1);
    let entries: Vec<(String, Vec<String>)> = q(&mut c, &["XRANGE", "s", "-", "+"]);
    assert_eq!(entries, vec![(first.clone(), vec!["amount".into(), "100".into(), "currency".into(), "USD".into()])]);
    // Producers are separate; binary IDs are fine.
    let other = xadd(&mut c, &["IDMP", "p2", "payment-abc", "*", "f", "v"]);
    assert_ne!(other, first);
    let bin = xadd(&mut c, &["IDMP", "\u{0}\u{1}", "\u{ff}", "*", "f", "v"]);
    assert_eq!(xadd(&mut c, &["IDMP", "\u{0}\u{1}", "\u{ff}", "*", "f", "w"]), bin);
    // IDMPAUTO: the content is the iid, whatever the order of the pairs.
    let auto = xadd(&mut c, &["IDMPAUTO", "p3", "*", "f1", "a", "f2", "b"]);
    assert_eq!(xadd(&mut c, &["IDMPAUTO", "p3", "*", "f2", "b", "f1", "a"]), auto);
    assert_ne!(xadd(&mut c, &["IDMPAUTO", "p3", "*", "f1", "b", "f2", "a"]), auto);
    // NOMKSTREAM still answers nil on a missing stream.
    assert_eq!(q::<Value>(&mut c, &["XADD", "none", "NOMKSTREAM", "IDMP", "p", "i", "*", "f", "v"]), Value::Nil);
    // Inside MULTI, the second of two equal XADDs is the retry.
    let mut p = redis::pipe();
    p.atomic();
    for (iid, value) in [("r1", "1"), ("r2", "2"), ("r1", "3")] {
        p.cmd("XADD").arg("t").arg("IDMP").arg("p").arg(iid).arg("*").arg("f").arg(value);
    }
    let (a, b, dup): (String, String, String) = p.query(&mut c).unwrap();
    assert_eq!(dup, a);
    assert_ne!(a, b);
    assert_eq!(q::<i64>(&mut c, &["XLEN", "t"]), 2);
    // [duration, maxsize, pids, iids, added, duplicates]
    assert_eq!(idmp_info(&mut c, "s"), [100, 100, 4, 5, 5, 4]);
}

#[test]
fn the_window_keeps_maxsize_iids_per_producer_for_duration_seconds() {
    let (_s, mut c) = start();
    xadd(&mut c, &["IDMP", "p1", "init", "*", "f", "v"]);
    q::<()>(&mut c, &["XCFGSET", "s", "IDMP-MAXSIZE", "3"]);
    assert_eq!(idmp_info(&mut c, "s"), [100, 3, 0, 0, 1, 0], "XCFGSET forgot the iids, not the counters");
    let ids: Vec<String> = (1..=4).map(|i| xadd(&mut c, &["IDMP", "p1", &format!("req-{i}"), "*", "f", "v"])).collect();
    let p2 = xadd(&mut c, &["IDMP", "p2", "req-1", "*", "f", "v"]);
    assert_ne!(xadd(&mut c, &["IDMP", "p1", "req-1", "*", "f", "v"]), ids[0], "req-1 left p1's window of 3");
    assert_eq!(xadd(&mut c, &["IDMP", "p2", "req-1", "*", "f", "v"]), p2, "p2 has its own window");
    // Setting the same limits forgets nothing; another value forgets all.
    q::<()>(&mut c, &["XCFGSET", "s", "IDMP-MAXSIZE", "3", "IDMP-DURATION", "100"]);
    assert_eq!(xadd(&mut c, &["IDMP", "p1", "req-4", "*", "f", "v"]), ids[3]);
    q::<()>(&mut c, &["XCFGSET", "s", "IDMP-DURATION", "1"]);
    assert_ne!(xadd(&mut c, &["IDMP", "p1", "req-4", "*", "f", "v"]), ids[3]);
    // By time: one second after its XADD an iid is forgotten.
    let t = xadd(&mut c, &["IDMP", "p9", "timed", "*", "f", "v"]);
    assert_eq!(xadd(&mut c, &["IDMP", "p9", "timed", "*", "f", "v"]), t);
    thread::sleep(Duration::from_millis(1100));
    assert_ne!(xadd(&mut c, &["IDMP", "p9", "timed", "*", "f", "v"]), t);
    let [duration, maxsize, ..] = idmp_info(&mut c, "s");
    assert_eq!((duration, maxsize), (1, 3));
}

#[test]
fn iids_survive_sigkill_and_checkpoints() {
    let mut s = Server::start(&["--appendfsync", "always"]);
    let mut c = s.client();
    let first = xadd(&mut c, &["IDMP", "p1", "order-1", "*", "f", "v"]);
    let auto = xadd(&mut c, &["IDMPAUTO", "p2", "*", "f", "v"]);
    xadd(&mut c, &["IDMP", "p1", "order-1", "*", "f", "dup"]);
    q::<()>(&mut c, &["XCFGSET", "s", "IDMP-MAXSIZE", "500"]);
    let after = xadd(&mut c, &["IDMP", "p1", "order-2", "*", "f", "v"]);
    xadd(&mut c, &["IDMP", "p1", "order-2", "*", "f", "dup"]);
    let before = idmp_info(&mut c, "s");
    assert_eq!(before, [100, 500, 1, 1, 3, 2]);
    let check = |c: &mut Connection, how: &str| {
        assert_eq!(idmp_info(c, "s"), before, "{how}");
        assert_eq!(xadd(c, &["IDMP", "p1", "order-2", "*", "f", "retry"]), after, "{how}: a retry after the restart");
        assert_ne!(xadd(c, &["IDMP", "p1", "order-1", "*", "f", "v"]), first, "{how}: XCFGSET's clearing is replayed too");
        assert_ne!(xadd(c, &["IDMPAUTO", "p2", "*", "f", "v"]), auto, "{how}");
    };
    s.kill();
    s.restart();
    let mut c = s.client();
    check(&mut c, "replayed from the log");
    // Again from a checkpoint: the state after the writes `check` made.
    let before = idmp_info(&mut c, "s");
    q::<()>(&mut c, &["SAVE"]);
    s.kill();
    s.restart();
    let mut c = s.client();
    assert_eq!(idmp_info(&mut c, "s"), before, "loaded from a checkpoint");
    assert_eq!(xadd(&mut c, &["IDMP", "p1", "order-2", "*", "f", "again"]), after, "loaded from a checkpoint");
}
