//! Time-series commands (RedisTimeSeries's TS.* interface): syntax, options
//! and errors of every command; label values with any bytes; duplicate
//! policies; aggregations checked against a straightforward reference on
//! random data (empty buckets, ALIGN, BUCKETTIMESTAMP, twa); compaction
//! rules; multi-series queries across shards; values read back bit for bit;
//! and series, labels, rules and retention after a restart or a SIGKILL.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::{Connection, Value};
use strand_tests::commands::{err, q, start};
use strand_tests::raw::Raw;
use strand_tests::{data_dir, Server};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

type Samples = Vec<(i64, f64)>;
/// A TS.MGET item: key, labels, newest sample.
type MgetItem = (String, Vec<(String, String)>, (i64, String));
/// A TS.MRANGE item: key, labels, samples.
type MrangeItem = (String, Vec<(String, String)>, Vec<(i64, String)>);

/// A range reply as (timestamp, value) pairs; values are parsed from the reply text.
fn range(c: &mut Connection, args: &[&str]) -> Samples {
    let raw: Vec<(i64, String)> = q(c, args);
    raw.into_iter().map(|(t, v)| (t, v.parse::<f64>().unwrap())).collect()
}

fn same(a: &Samples, b: &Samples) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && (x.1.to_bits() == y.1.to_bits() || (x.1.is_nan() && y.1.is_nan())))
}

fn close(a: &Samples, b: &Samples) -> bool {
    let near = |x: f64, y: f64| (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0);
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && near(x.1, y.1))
}

/// TS.INFO as a map from field name to value.
fn info(c: &mut Connection, key: &str) -> BTreeMap<String, Value> {
    let v: Vec<Value> = q(c, &["TS.INFO", key]);
    v.chunks(2).map(|p| (redis::from_redis_value::<String>(&p[0]).unwrap(), p[1].clone())).collect()
}

fn int(v: &Value) -> i64 {
    redis::from_redis_value(v).unwrap()
}

#[test]
fn create_add_get_range_and_their_errors() {
    let (_s, mut c) = start();
    assert_eq!(q::<String>(&mut c, &["TS.CREATE", "t", "RETENTION", "0", "CHUNK_SIZE", "128", "DUPLICATE_POLICY", "LAST"]), "OK");
    assert_eq!(err(&mut c, &["TS.CREATE", "t"]), "ERR TSDB: key already exists");
    assert_eq!(q::<String>(&mut c, &["TYPE", "t"]), "TSDB-TYPE");
    assert_eq!(q::<Vec<i64>>(&mut c, &["TS.GET", "t"]), Vec::<i64>::new());
    assert_eq!(q::<i64>(&mut c, &["TS.ADD", "t", "1000", "1.5"]), 1000);
    assert_eq!(q::<i64>(&mut c, &["TS.ADD", "t", "3000", "3"]), 3000);
    assert_eq!(q::<i64>(&mut c, &["TS.ADD", "t", "2000", "2"]), 2000, "out-of-order samples are taken");
    assert_eq!(q::<(i64, String)>(&mut c, &["TS.GET", "t"]), (3000, "3".into()));
    assert_eq!(range(&mut c, &["TS.RANGE", "t", "-", "+"]), vec![(1000, 1.5), (2000, 2.0), (3000, 3.0)]);
    assert_eq!(range(&mut c, &["TS.REVRANGE", "t", "1500", "+"]), vec![(3000, 3.0), (2000, 2.0)]);
    assert_eq!(range(&mut c, &["TS.RANGE", "t", "-", "+", "COUNT", "2"]), vec![(1000, 1.5), (2000, 2.0)]);
    assert_eq!(range(&mut c, &["TS.RANGE", "t", "-", "+", "FILTER_BY_TS", "1000", "3000", "5"]), vec![(1000, 1.5), (3000, 3.0)]);
    assert_eq!(range(&mut c, &["TS.RANGE", "t", "-", "+", "FILTER_BY_VALUE", "1.6", "3"]), vec![(2000, 2.0), (3000, 3.0)]);
    let now: i64 = q(&mut c, &["TS.ADD", "t", "*", "4"]);
    assert!(now > 1_600_000_000_000);

    let errors: &[(&[&str], &str)] = &[
        (&["TS.ADD", "t", "-1", "1"], "ERR TSDB: invalid timestamp, must be a nonnegative integer"),
        (&["TS.ADD", "t", "x", "1"], "ERR TSDB: invalid timestamp, must be a nonnegative integer"),
        (&["TS.ADD", "t", "1", "one"], "ERR TSDB: invalid value"),
        (&["TS.ADD", "t", "1", "1", "FOO", "1"], "ERR TSDB: unknown option 'FOO'"),
        (&["TS.CREATE", "u", "RETENTION", "-5"], "ERR TSDB: invalid RETENTION value"),
        (&["TS.CREATE", "u", "CHUNK_SIZE", "20"], "ERR TSDB: CHUNK_SIZE value must be a multiple of 8 in the range [48 .. 1048576]"),
        (&["TS.CREATE", "u", "DUPLICATE_POLICY", "newest"], "ERR TSDB: Unknown DUPLICATE_POLICY"),
        (&["TS.CREATE", "u", "ENCODING", "zip"], "ERR TSDB: unknown ENCODING parameter"),
        (&["TS.CREATE", "u", "LABELS", "a"], "ERR TSDB: LABELS takes label-value pairs"),
        (&["TS.CREATE", "u", "LABELS", "a", ""], "ERR TSDB: label names and values must not be empty"),
        (&["TS.GET", "nope"], "ERR TSDB: the key does not exist"),
        (&["TS.RANGE", "nope", "-", "+"], "ERR TSDB: the key does not exist"),
        (&["TS.INFO", "nope"], "ERR TSDB: the key does not exist"),
        (&["TS.ALTER", "nope", "RETENTION", "1"], "ERR TSDB: the key does not exist"),
        (&["TS.DEL", "nope", "-", "+"], "ERR TSDB: the key does not exist"),
        (&["TS.RANGE", "t", "x", "+"], "ERR TSDB: wrong fromTimestamp"),
        (&["TS.RANGE", "t", "-", "y"], "ERR TSDB: wrong toTimestamp"),
        (&["TS.RANGE", "t", "-", "+", "COUNT", "0"], "ERR TSDB: Invalid COUNT value"),
        (&["TS.RANGE", "t", "-", "+", "AGGREGATION", "median", "10"], "ERR TSDB: Unknown aggregation type"),
        (&["TS.RANGE", "t", "-", "+", "AGGREGATION", "avg", "0"], "ERR TSDB: bucketDuration must be greater than zero"),
        (&["TS.RANGE", "t", "-", "+", "ALIGN", "start"], "ERR TSDB: ALIGN parameter can only be used with AGGREGATION"),
        (&["TS.RANGE", "t", "-", "+", "EMPTY"], "ERR TSDB: EMPTY comes after AGGREGATION"),
        (&["TS.RANGE", "t", "-", "+", "BOGUS"], "ERR TSDB: unknown option 'BOGUS'"),
        (&["TS.GET", "t", "NOW"], "ERR syntax error"),
        (&["TS.ADD", "t", "1"], "ERR wrong number of arguments for 'ts.add' command"),
        (&["TS.MADD", "t", "1", "1", "t"], "ERR wrong number of arguments for 'ts.madd' command"),
    ];
    for (args, want) in errors {
        assert_eq!(err(&mut c, args), *want, "{args:?}");
    }
    q::<()>(&mut c, &["SET", "str", "x"]);
    for args in
        [&["TS.ADD", "str", "1", "1"][..], &["TS.GET", "str"], &["TS.RANGE", "str", "-", "+"], &["TS.INFO", "str"], &["TS.CREATE", "str"]]
    {
        let e = err(&mut c, args);
        assert!(e == WRONGTYPE || e == "ERR TSDB: key already exists", "{args:?}: {e}");
    }
}

#[test]
fn label_values_take_any_bytes() {
    let (_s, mut c) = start();
    let odd: Vec<&[u8]> = vec![b"encoding", b"LABELS", b"a=(b, c)", b"with space", b"\"quoted\"", b"\x00\xff\r\n", b"RETENTION"];
    let mut create = redis::cmd("TS.CREATE");
    create.arg("odd").arg("RETENTION").arg(7).arg("LABELS");
    for (i, v) in odd.iter().enumerate() {
        create.arg(format!("l{i}")).arg(*v);
    }
    create.query::<()>(&mut c).unwrap();
    let all: Vec<Value> = q(&mut c, &["TS.INFO", "odd"]);
    let pos = all.iter().position(|v| redis::from_redis_value::<String>(v).is_ok_and(|s| s == "labels")).unwrap();
    let labels: Vec<(Vec<u8>, Vec<u8>)> = redis::from_redis_value(&all[pos + 1]).unwrap();
    let want: Vec<(Vec<u8>, Vec<u8>)> = odd.iter().enumerate().map(|(i, v)| (format!("l{i}").into_bytes(), v.to_vec())).collect();
    assert_eq!(labels, want);
    assert_eq!(int(&info(&mut c, "odd")["retentionTime"]), 7, "RETENTION among label values is a value, not an option");
    // Filters split at the first '=', so values with '=' and spaces match.
    let keys: Vec<String> = redis::cmd("TS.QUERYINDEX").arg(&b"l2=a=(b, c)"[..]).query(&mut c).unwrap();
    assert_eq!(keys, vec!["odd"]);
    let keys: Vec<String> = redis::cmd("TS.QUERYINDEX").arg(&b"l5=\x00\xff\r\n"[..]).query(&mut c).unwrap();
    assert_eq!(keys, vec!["odd"]);
    // TS.ALTER LABELS replaces them all.
    q::<()>(&mut c, &["TS.ALTER", "odd", "LABELS", "x", "y"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["TS.QUERYINDEX", "x=y"]), vec!["odd"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["TS.QUERYINDEX", "l0=encoding"]), Vec::<String>::new());
}

#[test]
fn values_read_back_bit_for_bit() {
    let (_s, mut c) = start();
    let values = ["nan", "inf", "-inf", "-0", "0", "5e-324", "1.7976931348623157e308", "0.1", "3.0000000000000004", "-123456789.125"];
    for (i, v) in values.iter().enumerate() {
        q::<()>(&mut c, &["TS.ADD", "v", &(1000 * (i + 1)).to_string(), v]);
    }
    let got = range(&mut c, &["TS.RANGE", "v", "-", "+"]);
    let want: Samples = values.iter().enumerate().map(|(i, v)| (1000 * (i as i64 + 1), v.parse::<f64>().unwrap())).collect();
    assert!(same(&got, &want), "{got:?}");
    assert_eq!(got[3].1.to_bits(), (-0.0f64).to_bits());
}

#[test]
fn duplicate_policies_and_ignore() {
    let (_s, mut c) = start();
    let cases = [("BLOCK", None), ("FIRST", Some(1.0)), ("LAST", Some(5.0)), ("MIN", Some(1.0)), ("MAX", Some(5.0)), ("SUM", Some(6.0))];
    for (policy, want) in cases {
        let key = format!("d:{policy}");
        q::<()>(&mut c, &["TS.CREATE", &key, "DUPLICATE_POLICY", policy]);
        q::<()>(&mut c, &["TS.ADD", &key, "10", "1"]);
        match want {
            None => assert_eq!(
                err(&mut c, &["TS.ADD", &key, "10", "5"]),
                "ERR TSDB: Error at upsert, update is not supported when DUPLICATE_POLICY is set to BLOCK mode"
            ),
            Some(w) => {
                q::<()>(&mut c, &["TS.ADD", &key, "10", "5"]);
                assert_eq!(range(&mut c, &["TS.RANGE", &key, "-", "+"]), vec![(10, w)], "{policy}");
            }
        }
    }
    // ON_DUPLICATE overrides the series' policy for one call; the default is BLOCK.
    q::<()>(&mut c, &["TS.ADD", "dflt", "10", "1"]);
    assert!(err(&mut c, &["TS.ADD", "dflt", "10", "2"]).contains("BLOCK"));
    q::<()>(&mut c, &["TS.ADD", "dflt", "10", "2", "ON_DUPLICATE", "SUM"]);
    assert_eq!(range(&mut c, &["TS.RANGE", "dflt", "-", "+"]), vec![(10, 3.0)]);
    // IGNORE drops samples close in time and value to the newest one (with LAST).
    q::<()>(&mut c, &["TS.CREATE", "ign", "DUPLICATE_POLICY", "LAST", "IGNORE", "100", "0.5"]);
    assert_eq!(q::<i64>(&mut c, &["TS.ADD", "ign", "1000", "1"]), 1000);
    assert_eq!(q::<i64>(&mut c, &["TS.ADD", "ign", "1050", "1.2"]), 1000, "ignored: answers the newest timestamp");
    assert_eq!(q::<i64>(&mut c, &["TS.ADD", "ign", "1060", "3"]), 1060);
    assert_eq!(q::<i64>(&mut c, &["TS.ADD", "ign", "1300", "3"]), 1300);
    assert_eq!(range(&mut c, &["TS.RANGE", "ign", "-", "+"]), vec![(1000, 1.0), (1060, 3.0), (1300, 3.0)]);
}

#[test]
fn madd_incrby_del_alter_info() {
    let (s, mut c) = start();
    for k in ["a", "b", "c", "d"] {
        q::<()>(&mut c, &["TS.CREATE", k]);
    }
    // Keys on both shards; one reply per sample, errors in place.
    let mut raw = Raw::new(&s);
    let r = raw.cmd(&["TS.MADD", "a", "1", "1", "b", "1", "2", "nope", "1", "3", "c", "x", "4", "d", "2", "5", "a", "1", "9"]);
    assert_eq!(
        r,
        "*6\r\n:1\r\n:1\r\n-ERR TSDB: the key does not exist\r\n-ERR TSDB: invalid timestamp, must be a nonnegative integer\r\n:2\r\n\
         -ERR TSDB: Error at upsert, update is not supported when DUPLICATE_POLICY is set to BLOCK mode\r\n"
    );
    assert_eq!(range(&mut c, &["TS.RANGE", "a", "-", "+"]), vec![(1, 1.0)]);
    // A partial last triple is an arity error for the whole command: no shard writes its part,
    // in a pipeline or inside MULTI.
    let partial = ["TS.MADD", "a", "50", "1", "b", "50", "2", "c", "50", "3", "d", "50"];
    assert_eq!(raw.cmd(&partial), "-ERR wrong number of arguments for 'ts.madd' command\r\n");
    assert_eq!(raw.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(raw.cmd(&partial), "+QUEUED\r\n");
    assert_eq!(raw.cmd(&["EXEC"]), "*1\r\n-ERR wrong number of arguments for 'ts.madd' command\r\n");
    for k in ["a", "b", "c", "d"] {
        assert!(range(&mut c, &["TS.RANGE", k, "50", "50"]).is_empty(), "{k} took a sample of a malformed TS.MADD");
    }

    assert_eq!(q::<i64>(&mut c, &["TS.INCRBY", "n", "5", "TIMESTAMP", "100", "LABELS", "kind", "counter"]), 100);
    assert_eq!(q::<i64>(&mut c, &["TS.INCRBY", "n", "2.5", "TIMESTAMP", "100"]), 100);
    assert_eq!(q::<i64>(&mut c, &["TS.DECRBY", "n", "1", "TIMESTAMP", "200"]), 200);
    assert_eq!(range(&mut c, &["TS.RANGE", "n", "-", "+"]), vec![(100, 7.5), (200, 6.5)]);
    assert_eq!(
        err(&mut c, &["TS.INCRBY", "n", "1", "TIMESTAMP", "150"]),
        "ERR TSDB: timestamp must be equal to or higher than the maximum existing timestamp"
    );
    assert_eq!(q::<Vec<String>>(&mut c, &["TS.QUERYINDEX", "kind=counter"]), vec!["n"]);

    for t in 0..100 {
        q::<()>(&mut c, &["TS.ADD", "del", &(t * 10).to_string(), &t.to_string()]);
    }
    assert_eq!(q::<i64>(&mut c, &["TS.DEL", "del", "100", "199"]), 10);
    assert_eq!(q::<i64>(&mut c, &["TS.DEL", "del", "100", "199"]), 0);
    assert_eq!(range(&mut c, &["TS.RANGE", "del", "90", "200"]), vec![(90, 9.0), (200, 20.0)]);

    q::<()>(&mut c, &["TS.ALTER", "del", "RETENTION", "500", "DUPLICATE_POLICY", "MAX", "LABELS", "x", "1"]);
    let i = info(&mut c, "del");
    assert_eq!(int(&i["retentionTime"]), 500);
    assert_eq!(int(&i["totalSamples"]), 90);
    assert_eq!(int(&i["firstTimestamp"]), 490, "reads hide samples past retention");
    assert_eq!(int(&i["lastTimestamp"]), 990);
    assert!(int(&i["memoryUsage"]) > 0);
    assert_eq!(redis::from_redis_value::<String>(&i["duplicatePolicy"]).unwrap(), "max");
    assert_eq!(err(&mut c, &["TS.ADD", "del", "100", "1"]), "ERR TSDB: Timestamp is older than retention");
    let debug: Vec<Value> = q(&mut c, &["TS.INFO", "del", "DEBUG"]);
    assert!(debug.iter().any(|v| redis::from_redis_value::<String>(v).is_ok_and(|s| s == "Chunks")));
}

/// Straightforward aggregation: every bucket from the first sample's to the last's, one by one.
fn reference(samples: &Samples, agg: &str, d: i64, align: i64, bts: &str, empty: bool) -> Samples {
    if samples.is_empty() {
        return Vec::new();
    }
    let start_of = |t: i64| t - (t - align).rem_euclid(d);
    let (first, last) = (start_of(samples[0].0), start_of(samples[samples.len() - 1].0));
    let mut out = Vec::new();
    let mut b = first;
    while b <= last {
        let inside: Samples = samples.iter().copied().filter(|s| s.0 >= b && s.0 < b + d).collect();
        let before = samples.iter().copied().rfind(|s| s.0 < b);
        let after = samples.iter().copied().find(|s| s.0 >= b + d);
        let ts = match bts {
            "+" => b + d,
            "~" => b + d / 2,
            _ => b,
        };
        let v: Vec<f64> = inside.iter().map(|s| s.1).collect();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = |k: f64| if v.len() < 2 { 0.0 } else { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - k) };
        let lerp = |a: (i64, f64), c: (i64, f64), t: i64| a.1 + (c.1 - a.1) * (t - a.0) as f64 / (c.0 - a.0) as f64;
        let value = if v.is_empty() {
            match agg {
                "sum" | "count" => Some(0.0),
                "last" => before.map(|p| p.1),
                "twa" => before.zip(after).map(|(p, a)| lerp(p, a, b + d / 2)),
                _ => Some(f64::NAN),
            }
            .filter(|_| empty)
            .or(if empty { Some(f64::NAN) } else { None })
        } else {
            Some(match agg {
                "avg" => mean,
                "sum" => v.iter().sum(),
                "min" => v.iter().copied().fold(f64::INFINITY, f64::min),
                "max" => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                "range" => v.iter().copied().fold(f64::NEG_INFINITY, f64::max) - v.iter().copied().fold(f64::INFINITY, f64::min),
                "count" => n,
                "first" => v[0],
                "last" => v[v.len() - 1],
                "std.p" => var(0.0).sqrt(),
                "std.s" => var(1.0).sqrt(),
                "var.p" => var(0.0),
                "var.s" => var(1.0),
                _ => {
                    // twa: the polyline through the samples, cut at the bucket's edges by interpolation.
                    let mut pts = Vec::new();
                    if let Some(p) = before {
                        pts.push((b, lerp(p, inside[0], b)));
                    }
                    pts.extend(inside.iter().copied());
                    if let Some(a) = after {
                        pts.push((b + d, lerp(inside[inside.len() - 1], a, b + d)));
                    }
                    let span = (pts[pts.len() - 1].0 - pts[0].0) as f64;
                    if span == 0.0 {
                        inside[0].1
                    } else {
                        pts.windows(2).map(|w| (w[1].0 - w[0].0) as f64 * (w[0].1 + w[1].1) / 2.0).sum::<f64>() / span
                    }
                }
            })
        };
        if let Some(v) = value {
            out.push((ts, v));
        }
        b += d;
    }
    out
}

#[test]
fn aggregations_match_a_reference_on_random_data() {
    let (_s, mut c) = start();
    let mut rng = StdRng::seed_from_u64(0x7135);
    let aggs = ["avg", "sum", "min", "max", "range", "count", "first", "last", "std.p", "std.s", "var.p", "var.s", "twa"];
    for round in 0..6 {
        let key = format!("r{round}");
        let mut samples: Samples = Vec::new();
        let mut t = rng.gen_range(0..10_000i64);
        for _ in 0..rng.gen_range(50..400) {
            samples.push((t, (rng.gen_range(-1000..1000) as f64) / 8.0));
            // Gaps leave empty buckets.
            t += if rng.gen_bool(0.05) { rng.gen_range(2_000..20_000) } else { rng.gen_range(1..700) };
        }
        let mut madd = vec!["TS.MADD".to_string()];
        for (t, v) in &samples {
            madd.extend([key.clone(), t.to_string(), v.to_string()]);
        }
        let args: Vec<&str> = madd.iter().map(String::as_str).collect();
        q::<()>(&mut c, &["TS.CREATE", &key]);
        q::<Vec<i64>>(&mut c, &args);
        assert!(same(&range(&mut c, &["TS.RANGE", &key, "-", "+"]), &samples));
        for agg in aggs {
            let d = rng.gen_range(1..5000i64);
            let align = if rng.gen_bool(0.5) { 0 } else { rng.gen_range(0..d * 3) };
            let bts = ["-", "+", "~"][rng.gen_range(0..3)];
            let empty = rng.gen_bool(0.5);
            let (ds, als) = (d.to_string(), align.to_string());
            let mut a = vec!["TS.RANGE", &key, "-", "+", "ALIGN", &als, "AGGREGATION", agg, &ds, "BUCKETTIMESTAMP", bts];
            if empty {
                a.push("EMPTY");
            }
            let got = range(&mut c, &a);
            let want = reference(&samples, agg, d, align, bts, empty);
            assert!(close(&got, &want), "{agg} d={d} align={align} bts={bts} empty={empty}\n got {got:?}\nwant {want:?}");
            // REVRANGE: the same buckets, newest first, COUNT from the newest.
            a[0] = "TS.REVRANGE";
            a.extend(["COUNT", "3"]);
            let mut rev_want = want.clone();
            rev_want.reverse();
            rev_want.truncate(3);
            assert!(close(&range(&mut c, &a), &rev_want), "rev {agg}");
        }
    }
    // ALIGN start/end name the range's bounds.
    q::<()>(&mut c, &["TS.MADD", "r0", "100000", "1", "r0", "100007", "2", "r0", "100012", "3"]);
    assert_eq!(
        range(&mut c, &["TS.RANGE", "r0", "100003", "100012", "ALIGN", "start", "AGGREGATION", "count", "5"]),
        vec![(99998, 0.0), (100003, 1.0), (100008, 1.0)][1..].to_vec()
    );
}

#[test]
fn rules_downsample_incrementally() {
    let (_s, mut c) = start();
    q::<()>(&mut c, &["TS.CREATE", "{m}raw"]);
    q::<()>(&mut c, &["TS.CREATE", "{m}avg"]);
    q::<()>(&mut c, &["TS.CREATE", "{m}max", "LABELS", "res", "10s"]);
    assert_eq!(q::<String>(&mut c, &["TS.CREATERULE", "{m}raw", "{m}avg", "AGGREGATION", "avg", "10000"]), "OK");
    q::<()>(&mut c, &["TS.CREATERULE", "{m}raw", "{m}max", "AGGREGATION", "MAX", "10000", "5000"]);
    assert_eq!(
        err(&mut c, &["TS.CREATERULE", "{m}raw", "{m}avg", "AGGREGATION", "avg", "10000"]),
        "ERR TSDB: the destination key already has a src rule"
    );
    assert_eq!(
        err(&mut c, &["TS.CREATERULE", "{m}raw", "{m}raw", "AGGREGATION", "avg", "1"]),
        "ERR TSDB: the source key and destination key should be different"
    );
    assert!(
        err(&mut c, &["TS.CREATERULE", "raw1", "avg1", "AGGREGATION", "avg", "10000"]).starts_with("CROSSSLOT"),
        "rules stay on one shard"
    );
    let mut samples = Samples::new();
    for i in 0..60 {
        let s = (i * 1000 + 10_500, (i % 7) as f64);
        samples.push(s);
        q::<()>(&mut c, &["TS.ADD", "{m}raw", &s.0.to_string(), &s.1.to_string()]);
    }
    // Closed buckets only: the one holding the newest sample is still open.
    let avg = range(&mut c, &["TS.RANGE", "{m}avg", "-", "+"]);
    assert_eq!(avg, reference(&samples, "avg", 10_000, 0, "-", false)[..5].to_vec());
    let max = range(&mut c, &["TS.RANGE", "{m}max", "-", "+"]);
    assert_eq!(max, reference(&samples, "max", 10_000, 5000, "-", false)[..6].to_vec());
    // LATEST adds the open bucket.
    assert_eq!(q::<(i64, String)>(&mut c, &["TS.GET", "{m}avg", "LATEST"]).0, 60_000);
    // A late sample into a closed bucket updates it.
    q::<()>(&mut c, &["TS.ADD", "{m}raw", "10200", "100"]);
    samples.insert(1, (10200, 100.0));
    assert_eq!(range(&mut c, &["TS.RANGE", "{m}avg", "10000", "10000"]), reference(&samples, "avg", 10_000, 0, "-", false)[..1].to_vec());
    // TS.DEL of a closed bucket's samples removes or recomputes it.
    q::<()>(&mut c, &["TS.DEL", "{m}raw", "20000", "29999"]);
    assert!(range(&mut c, &["TS.RANGE", "{m}avg", "20000", "20000"]).is_empty());
    q::<()>(&mut c, &["TS.DEL", "{m}raw", "30000", "34999"]);
    samples.retain(|s| s.0 < 20_000 || s.0 >= 35_000);
    assert_eq!(range(&mut c, &["TS.RANGE", "{m}avg", "30000", "30000"]), vec![reference(&samples, "avg", 10_000, 0, "-", false)[1]]);
    let i = info(&mut c, "{m}raw");
    let rules: Vec<(String, i64, String, i64)> = redis::from_redis_value(&i["rules"]).unwrap();
    assert_eq!(rules, vec![("{m}avg".into(), 10000, "AVG".into(), 0), ("{m}max".into(), 10000, "MAX".into(), 5000)]);
    assert_eq!(redis::from_redis_value::<String>(&info(&mut c, "{m}avg")["sourceKey"]).unwrap(), "{m}raw");
    assert_eq!(q::<String>(&mut c, &["TS.DELETERULE", "{m}raw", "{m}avg"]), "OK");
    assert_eq!(err(&mut c, &["TS.DELETERULE", "{m}raw", "{m}avg"]), "ERR TSDB: compaction rule does not exist");
    let before = range(&mut c, &["TS.RANGE", "{m}avg", "-", "+"]);
    q::<()>(&mut c, &["TS.ADD", "{m}raw", "90000", "1"]);
    assert_eq!(range(&mut c, &["TS.RANGE", "{m}avg", "-", "+"]), before, "a deleted rule writes nothing");
}

#[test]
fn multi_series_queries_span_shards() {
    let (_s, mut c) = start();
    for i in 0..12 {
        let key = format!("cpu:{i}");
        let host = format!("h{}", i % 3);
        let dc = if i < 6 { "east" } else { "west" };
        q::<()>(&mut c, &["TS.CREATE", &key, "LABELS", "metric", "cpu", "host", &host, "dc", dc]);
        q::<()>(&mut c, &["TS.MADD", &key, "1000", &i.to_string(), &key, "2000", &(i * 10).to_string()]);
    }
    q::<()>(&mut c, &["TS.CREATE", "mem", "LABELS", "metric", "mem"]);
    let keys: Vec<String> = q(&mut c, &["TS.QUERYINDEX", "metric=cpu", "dc=east", "host!=(h0,h1)"]);
    assert_eq!(keys, vec!["cpu:2", "cpu:5"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["TS.QUERYINDEX", "metric=(mem,disk)"]), vec!["mem"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["TS.QUERYINDEX", "metric=mem", "host="]), vec!["mem"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["TS.QUERYINDEX", "metric=(cpu,mem)", "metric!=cpu", "host!="]), Vec::<String>::new());
    assert_eq!(err(&mut c, &["TS.QUERYINDEX", "host!=h1"]), "ERR TSDB: please provide at least one matcher");
    assert_eq!(err(&mut c, &["TS.MGET", "WITHLABELS", "LATEST"]), "ERR TSDB: missing FILTER argument");

    let mget: Vec<MgetItem> = q(&mut c, &["TS.MGET", "SELECTED_LABELS", "host", "FILTER", "dc=west", "host=h0"]);
    assert_eq!(
        mget,
        vec![
            ("cpu:6".into(), vec![("host".into(), "h0".into())], (2000, "60".into())),
            ("cpu:9".into(), vec![("host".into(), "h0".into())], (2000, "90".into()))
        ]
    );
    let mr: Vec<MrangeItem> = q(&mut c, &["TS.MREVRANGE", "-", "+", "WITHLABELS", "COUNT", "1", "FILTER", "host=h1", "dc=east"]);
    assert_eq!(mr.len(), 2);
    assert_eq!(mr[0].0, "cpu:1");
    assert_eq!(mr[0].1.len(), 3);
    assert_eq!(mr[0].2, vec![(2000, "10".into())]);
    // GROUPBY host REDUCE sum, over series on both shards.
    let g: Vec<MrangeItem> = q(&mut c, &["TS.MRANGE", "-", "+", "WITHLABELS", "FILTER", "metric=cpu", "GROUPBY", "host", "REDUCE", "sum"]);
    assert_eq!(g.len(), 3);
    assert_eq!(g[0].0, "host=h0");
    assert_eq!(g[0].2, vec![(1000, (3 + 6 + 9).to_string()), (2000, (30 + 60 + 90).to_string())]);
    assert!(g[0].1.contains(&("__source__".into(), "cpu:0,cpu:3,cpu:6,cpu:9".into())));
    let m: Vec<MrangeItem> =
        q(&mut c, &["TS.MRANGE", "0", "1500", "AGGREGATION", "max", "1000", "FILTER", "metric=cpu", "GROUPBY", "dc", "REDUCE", "max"]);
    assert_eq!(
        m.iter().map(|x| (x.0.as_str(), x.2.clone())).collect::<Vec<_>>(),
        vec![("dc=east", vec![(1000, "5".into())]), ("dc=west", vec![(1000, "11".into())])]
    );
}

#[test]
fn series_labels_rules_and_retention_survive_restart_and_sigkill() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "always"]);
    let mut c = s.client();
    q::<()>(
        &mut c,
        &[
            "TS.CREATE",
            "{k}src",
            "RETENTION",
            "100000",
            "DUPLICATE_POLICY",
            "SUM",
            "CHUNK_SIZE",
            "256",
            "LABELS",
            "a",
            "x=(1, 2)",
            "b",
            "encoding",
        ],
    );
    q::<()>(&mut c, &["TS.CREATE", "{k}dst", "LABELS", "res", "1m"]);
    q::<()>(&mut c, &["TS.CREATERULE", "{k}src", "{k}dst", "AGGREGATION", "sum", "60000"]);
    let mut rng = StdRng::seed_from_u64(3);
    let mut add = |c: &mut Connection, from: i64, n: i64| {
        let mut m = vec!["TS.MADD".to_string()];
        for i in 0..n {
            let v =
                if rng.gen_bool(0.1) { f64::from_bits(rng.gen()).to_string() } else { (rng.gen_range(0..1000) as f64 / 100.0).to_string() };
            m.extend(["{k}src".to_string(), ((from + i) * 1000).to_string(), v]);
        }
        let args: Vec<&str> = m.iter().map(String::as_str).collect();
        q::<Vec<Value>>(c, &args);
    };
    add(&mut c, 0, 3000);
    q::<()>(&mut c, &["SAVE"]);
    add(&mut c, 3000, 1500);
    q::<()>(&mut c, &["TS.ADD", "{k}src", "4499000", "5"]);
    let src = range(&mut c, &["TS.RANGE", "{k}src", "-", "+"]);
    let dst = range(&mut c, &["TS.RANGE", "{k}dst", "-", "+"]);
    let src_info = info(&mut c, "{k}src");
    assert_eq!(src.len(), 101, "retention keeps the last 100 s");
    assert_eq!(dst.len(), 74, "every closed minute of 4500 s");
    drop(c);
    for kill in [false, true] {
        if kill {
            s.kill();
        } else {
            assert!(s.stop());
        }
        s.restart();
        let mut c = s.client();
        assert!(same(&range(&mut c, &["TS.RANGE", "{k}src", "-", "+"]), &src), "kill: {kill}");
        assert!(same(&range(&mut c, &["TS.RANGE", "{k}dst", "-", "+"]), &dst), "kill: {kill}");
        let i = info(&mut c, "{k}src");
        for f in ["labels", "rules", "retentionTime", "duplicatePolicy", "chunkSize", "totalSamples", "lastTimestamp", "firstTimestamp"] {
            assert_eq!(i[f], src_info[f], "{f} after restart (kill: {kill})");
        }
        assert_eq!(q::<Vec<String>>(&mut c, &["TS.QUERYINDEX", "b=encoding"]), vec!["{k}src"]);
        // Still the rule's source, still SUM for duplicates.
        let last = *src.last().unwrap();
        q::<()>(&mut c, &["TS.ADD", "{k}src", "4499000", "1"]);
        let got: (i64, String) = q(&mut c, &["TS.GET", "{k}src"]);
        assert!(same(&vec![(got.0, got.1.parse().unwrap())], &vec![(last.0, last.1 + 1.0)]));
        q::<()>(&mut c, &["TS.ADD", "{k}src", "4499000", &last.1.to_string(), "ON_DUPLICATE", "LAST"]);
    }
}

#[test]
fn label_index_follows_deletes_renames_flushes_and_restarts() {
    let dir = data_dir();
    let mut s = Server::start_in(dir.path(), &["--appendfsync", "always"]);
    let mut c = s.client();
    for k in ["{a}1", "{a}2", "{a}3", "{a}4"] {
        q::<()>(&mut c, &["TS.CREATE", k, "LABELS", "app", "web"]);
    }
    let web = |c: &mut Connection| q::<Vec<String>>(c, &["TS.QUERYINDEX", "app=web"]);
    assert_eq!(web(&mut c), vec!["{a}1", "{a}2", "{a}3", "{a}4"]);
    q::<()>(&mut c, &["DEL", "{a}1"]);
    q::<()>(&mut c, &["RENAME", "{a}2", "{a}9"]);
    q::<()>(&mut c, &["TS.ALTER", "{a}3", "LABELS", "app", "db"]);
    q::<()>(&mut c, &["SET", "{a}4", "not a series any more"]);
    assert_eq!(web(&mut c), vec!["{a}9"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["TS.QUERYINDEX", "app=db"]), vec!["{a}3"]);
    // Another database has its own index; FLUSHDB empties it.
    q::<()>(&mut c, &["SELECT", "1"]);
    q::<()>(&mut c, &["TS.CREATE", "x", "LABELS", "app", "web"]);
    assert_eq!(web(&mut c), vec!["x"]);
    q::<()>(&mut c, &["FLUSHDB"]);
    assert!(web(&mut c).is_empty());
    q::<()>(&mut c, &["TS.CREATE", "y", "LABELS", "app", "web"]);
    q::<()>(&mut c, &["SWAPDB", "0", "1"]);
    assert_eq!(web(&mut c), vec!["{a}9"], "SWAPDB moves the index with its database");
    q::<()>(&mut c, &["SELECT", "0"]);
    assert_eq!(web(&mut c), vec!["y"]);
    drop(c);
    s.kill();
    s.restart();
    let mut c = s.client();
    assert_eq!(web(&mut c), vec!["y"], "replay rebuilds the index");
    q::<()>(&mut c, &["SELECT", "1"]);
    assert_eq!(web(&mut c), vec!["{a}9"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["TS.QUERYINDEX", "app=db"]), vec!["{a}3"]);
}

fn used_memory(c: &mut Connection) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query(c).unwrap();
    info.lines().find_map(|l| l.strip_prefix("used_memory:")).unwrap().parse().unwrap()
}

/// Series that carry the same label strings share them: memoryUsage gives
/// each its share, a series deleted gives its share back, and strings no
/// series holds any more leave used_memory.
#[test]
fn label_strings_are_shared_and_given_back() {
    let (_s, mut c) = start();
    let big = "v".repeat(1000);
    q::<()>(&mut c, &["TS.CREATE", "{m}a", "LABELS", "big", &big]);
    let alone = int(&info(&mut c, "{m}a")["memoryUsage"]);
    assert!(alone > 1000, "memoryUsage {alone} counts the label string");
    let usage = q::<i64>(&mut c, &["MEMORY", "USAGE", "{m}a"]);
    assert!(usage > alone, "MEMORY USAGE {usage} counts what memoryUsage {alone} does, and the key");
    q::<()>(&mut c, &["TS.CREATE", "{m}b", "LABELS", "big", &big]);
    let shared = int(&info(&mut c, "{m}a")["memoryUsage"]);
    assert!(shared < alone - 450, "two holders: {shared} against {alone} alone");
    assert_eq!(q::<Vec<String>>(&mut c, &["TS.QUERYINDEX", &format!("big={big}")]), vec!["{m}a", "{m}b"]);
    q::<()>(&mut c, &["DEL", "{m}b"]);
    assert_eq!(int(&info(&mut c, "{m}a")["memoryUsage"]), alone);

    let before = used_memory(&mut c);
    for i in 0..500 {
        q::<()>(&mut c, &["TS.CREATE", &format!("{{m}}k{i}"), "LABELS", "unique", &format!("{i}:{}", "u".repeat(2000))]);
    }
    let full = used_memory(&mut c);
    assert!(full > before + 1_000_000, "500 distinct 2 KB strings: used_memory {before} -> {full}");
    q::<()>(&mut c, &["FLUSHALL"]);
    let after = used_memory(&mut c);
    assert!(after < before + 100_000, "the strings went with their series: used_memory {before} -> {full} -> {after}");
}
