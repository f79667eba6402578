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
