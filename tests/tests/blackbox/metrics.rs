//! Prometheus metrics: `--metrics-port` serves `/metrics` as text exposition
//! format 0.0.4, counters move with commands, and other paths are 404.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use strand_tests::{free_port, Server};

/// A plain HTTP/1.1 GET; returns (status code, headers, body).
fn get(port: u16, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read the response until the server closes");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status code");
    (status, head.to_string(), body.to_string())
}

/// Parses exposition text line by line: every sample `name{labels} value`,
/// every family announced by `# HELP` and `# TYPE`. Returns samples by name.
fn parse(text: &str) -> BTreeMap<String, Vec<(String, f64)>> {
    let mut samples: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    let mut typed = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "{line}");
            typed.push(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "unexpected line {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => {
                let l = l.strip_suffix('}').unwrap_or_else(|| panic!("labels of {line:?}"));
                for pair in l.split(',') {
                    let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("label in {line:?}"));
                    assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line:?}");
                    assert!(v.starts_with('"') && v.ends_with('"') && v.len() >= 2, "{line:?}");
                }
                (n, l.to_string())
            }
            None => (series, String::new()),
        };
        assert!(name.starts_with("strand_") && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line:?}");
        let family = typed.last().map(String::as_str).unwrap_or_else(|| panic!("{line:?} before any # TYPE"));
        let in_family = name == family || ["_bucket", "_sum", "_count"].iter().any(|s| name.strip_suffix(s) == Some(family));
        assert!(in_family, "{line:?} outside its family {family}");
        samples.entry(name.to_string()).or_default().push((labels, value));
    }
    samples
}

fn sum(samples: &BTreeMap<String, Vec<(String, f64)>>, name: &str) -> f64 {
    samples.get(name).unwrap_or_else(|| panic!("{name} missing")).iter().map(|(_, v)| v).sum()
}

/// The sum over shards of the series of `name` whose labels contain `label`.
fn sum_with(samples: &BTreeMap<String, Vec<(String, f64)>>, name: &str, label: &str) -> f64 {
    samples.get(name).map_or(0.0, |s| s.iter().filter(|(l, _)| l.split(',').any(|p| p == label)).map(|(_, v)| v).sum())
}

#[test]
fn metrics_endpoint_counts_commands_and_keys() {
    let mport = free_port();
    let server = Server::start(&["--metrics-port", &mport.to_string(), "--appendfsync", "always"]);
    let mut c = server.client();
    let port: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("metrics-port").query(&mut c).unwrap();
    assert_eq!(port, vec!["metrics-port".to_string(), mport.to_string()]);

    let (status, head, body) = get(mport, "/metrics");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    assert!(head.contains("Connection: close"), "{head}");
    let before = parse(&body);
    let commands_before = sum(&before, "strand_commands_total");

    const KEYS: usize = 50;
    for i in 0..KEYS {
        let _: () = redis::cmd("SET").arg(format!("key:{i}")).arg(i).query(&mut c).unwrap();
    }
    let _: Option<String> = redis::cmd("GET").arg("key:1").query(&mut c).unwrap();
    let _: Option<String> = redis::cmd("GET").arg("absent").query(&mut c).unwrap();
    assert!(redis::cmd("LPUSH").arg("key:1").arg("x").query::<i64>(&mut c).is_err());
    assert!(redis::cmd("GET").query::<()>(&mut c).is_err());

    let (status, _, body) = get(mport, "/metrics");
    assert_eq!(status, 200);
    let after = parse(&body);
    assert!(sum(&after, "strand_commands_total") >= commands_before + KEYS as f64 + 2.0, "{body}");
    // By command, summed over shards: calls, failures, refusals, durations, errors by kind.
    assert_eq!(sum_with(&after, "strand_commands_total", "cmd=\"set\""), KEYS as f64, "{body}");
    assert_eq!(sum_with(&after, "strand_commands_total", "cmd=\"get\""), 2.0, "{body}");
    assert_eq!(sum_with(&after, "strand_command_failed_total", "cmd=\"lpush\""), 1.0, "{body}");
    assert_eq!(sum_with(&after, "strand_command_rejected_total", "cmd=\"get\""), 1.0, "{body}");
    assert_eq!(sum_with(&after, "strand_command_duration_seconds_count", "cmd=\"set\""), KEYS as f64, "{body}");
    let set_buckets: Vec<&(String, f64)> =
        after["strand_command_duration_seconds_bucket"].iter().filter(|(l, _)| l.contains("cmd=\"set\"")).collect();
    let inf: f64 = set_buckets.iter().filter(|(l, _)| l.contains("le=\"+Inf\"")).map(|(_, v)| v).sum();
    assert_eq!(inf, KEYS as f64, "{body}");
    assert!(sum_with(&after, "strand_command_duration_seconds_sum", "cmd=\"set\"") > 0.0, "{body}");
    assert_eq!(sum_with(&after, "strand_errors_total", "kind=\"WRONGTYPE\""), 1.0, "{body}");
    assert_eq!(sum_with(&after, "strand_errors_total", "kind=\"ERR\""), 1.0, "{body}");
    assert_eq!(sum(&after, "strand_keys"), KEYS as f64, "{body}");
    assert!(sum(&after, "strand_keyspace_hits_total") >= 1.0, "{body}");
    assert!(sum(&after, "strand_keyspace_misses_total") >= 1.0, "{body}");
    assert!(sum(&after, "strand_log_records_total") >= KEYS as f64, "{body}");
    assert!(sum(&after, "strand_connections") >= 1.0, "{body}");
    assert!(sum(&after, "strand_connections_received_total") >= 1.0, "{body}");
    assert!(sum(&after, "strand_resident_memory_bytes") > 0.0, "{body}");
    // Under appendfsync always every write was synced, and each sync was timed.
    assert!(sum(&after, "strand_log_fsyncs_total") >= 1.0, "{body}");
    assert_eq!(sum(&after, "strand_log_fsync_duration_seconds_count"), sum(&after, "strand_log_fsyncs_total"), "{body}");
    let inf: f64 =
        after["strand_log_fsync_duration_seconds_bucket"].iter().filter(|(l, _)| l.contains("le=\"+Inf\"")).map(|(_, v)| v).sum();
    assert_eq!(inf, sum(&after, "strand_log_fsyncs_total"), "{body}");
    // One series per shard (the harness starts 2), labelled shard="0" and shard="1".
    let shards: Vec<&str> = after["strand_used_memory_bytes"].iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(shards, ["shard=\"0\"", "shard=\"1\""]);
    for family in ["strand_used_memory_bytes", "strand_log_fsyncs_total", "strand_checkpoints_total", "strand_uptime_seconds"] {
        assert!(after.contains_key(family), "{family} missing");
    }
}

#[test]
fn other_paths_are_404_and_metrics_are_off_by_default() {
    let mport = free_port();
    let server = Server::start(&["--metrics-port", &mport.to_string()]);
    let (status, _, _) = get(mport, "/other");
    assert_eq!(status, 404);
    let (status, _, _) = get(mport, "/");
    assert_eq!(status, 404);
    drop(server);

    let plain = Server::start(&[]);
    let mut c = plain.client();
    let port: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("metrics-port").query(&mut c).unwrap();
    assert_eq!(port, vec!["metrics-port".to_string(), "0".to_string()]);
}
