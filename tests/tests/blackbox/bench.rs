//! strand-bench against the real server: a short Zipfian run writes interval
//! samples with the server's RSS into --json, and `strand-bench report` draws
//! that file as an SVG that names the run. Nothing here asserts a speed.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use strand_tests::{binary, Server};

fn bench_binary() -> std::path::PathBuf {
    binary().with_file_name("strand-bench")
}

#[test]
fn bench_samples_rss_and_report_draws_the_run() {
    let s = Server::start(&[]);
    let json = s.dir.join("run.json");
    let out = Command::new(bench_binary())
        .args(["-p", &s.port.to_string(), "-c", "4", "--duration", "2", "--report-interval", "0.5"])
        .args(["--key-pattern", "zipfian", "--keyspace", "1000", "--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "strand-bench failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // stderr is not a terminal here: no progress line.
    assert!(out.stderr.is_empty(), "unexpected stderr: {}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["config"]["key_pattern"], "zipfian");
    let run = &doc["runs"][0];
    assert_eq!(run["total"]["errors"], 0);
    let intervals = run["intervals"].as_array().unwrap();
    assert!(!intervals.is_empty(), "no interval samples: {run}");
    for i in intervals {
        assert!(i["rss_bytes"].as_u64().unwrap() > 0, "a sample without the server's RSS: {i}");
        assert!(i["latency_us"]["p99"].as_u64().is_some() && i["ops_per_sec"].as_f64().is_some(), "{i}");
    }

    let svg = s.dir.join("chart.svg");
    let out = Command::new(bench_binary()).args(["report", json.to_str().unwrap(), "--out", svg.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "strand-bench report failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains(&format!("run 127.0.0.1:{}", s.port)), "the chart does not name the run");
    assert!(text.contains("server RSS"));
}

#[test]
fn a_fixed_request_count_gives_a_consistent_json_result() {
    let s = Server::start(&[]);
    let json = s.dir.join("count.json");
    let out = Command::new(bench_binary())
        .args(["-p", &s.port.to_string(), "-c", "4", "-P", "4", "-n", "2000", "--ratio", "1:3", "--keyspace", "100"])
        .args(["--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "strand-bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let run = &doc["runs"][0];
    let total = &run["total"];
    assert_eq!(total["requests"], 2000, "{total}");
    assert_eq!(total["errors"], 0);
    let commands = run["commands"].as_object().unwrap();
    let per_command: u64 = commands.values().map(|c| c["requests"].as_u64().unwrap()).sum();
    assert_eq!(per_command, 2000, "the commands' requests do not add up to the total: {commands:?}");
    assert!(commands.contains_key("SET") && commands.contains_key("GET"), "{commands:?}");
    for row in commands.values().chain([total]) {
        let l = &row["latency_us"];
        let p: Vec<u64> = ["p50", "p90", "p99", "p99_9", "max"].iter().map(|k| l[*k].as_u64().unwrap()).collect();
        assert!(p.windows(2).all(|w| w[0] <= w[1]), "percentiles out of order: {l}");
        assert!(row["ops_per_sec"].as_f64().unwrap() > 0.0, "{row}");
    }
    assert!(run["elapsed_s"].as_f64().unwrap() > 0.0);
}
