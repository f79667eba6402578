//! The search index over the shared Debian corpus, in process: builds the
//! canonical index of `../shared/data/search/README.md` (or
//! `$STRAND_SEARCHDATA`) straight into an [`Index`], prints where its bytes
//! go, then runs the 50 developer queries (top 10, BM25STD) and prints their
//! latency without the network: what the engine itself costs. With
//! `--churn` it first writes every document twice more and reports the slowest
//! write and the slowest background cleaning slice.
//!
//! Run: `cargo run --release -p strand-bench --example search_index`
//! (`-- -v` prints every query's time and hit count).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use strand_engine::search::exec::Request;
use strand_engine::search::query::{self, ParseOptions};
use strand_engine::search::schema::{Field, Kind};
use strand_engine::search::{Index, Schema};

/// Postings a cleaning slice reads, as the server's background task does.
const CLEAN_SLICE: usize = 50_000;

fn schema() -> Schema {
    let mut name = Field::new(b"name", Kind::Text);
    name.weight = 2.0;
    let mut installed = Field::new(b"installed_size", Kind::Numeric);
    installed.sortable = true;
    let fields = vec![
        name,
        Field::new(b"description", Kind::Text),
        Field::new(b"section", Kind::Tag),
        Field::new(b"priority", Kind::Tag),
        Field::new(b"tags", Kind::Tag),
        installed,
    ];
    Schema { name: "pkgs".into(), prefixes: vec![b"pkg:".to_vec()], stopwords: None, score: 1.0, fields }
}

/// The hash fields of one corpus line, as the loader writes them.
fn fields(v: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(obj) = v.as_object() else { return out };
    for (k, x) in obj {
        let text = match x {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(a) => a.iter().filter_map(|t| t.as_str()).collect::<Vec<_>>().join(","),
            other => other.to_string(),
        };
        out.push((if k == "id" { "name".to_string() } else { k.clone() }, text));
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let verbose = std::env::args().any(|a| a == "-v");
    let dir = std::env::var_os("STRAND_SEARCHDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/search"));
    let mut child = Command::new("zstd").arg("-dc").arg(dir.join("debian-packages.jsonl.zst")).stdout(Stdio::piped()).spawn()?;
    let out = child.stdout.take().ok_or("zstd gave no stdout")?;
    let mut docs = Vec::new();
    for line in BufReader::new(out).lines() {
        docs.push(fields(&serde_json::from_str(&line?)?));
    }
    child.wait()?;

    let mut ix = Index::new(schema());
    let start = Instant::now();
    for d in &docs {
        let key = format!("pkg:{}", d.iter().find(|(k, _)| k == "name").map_or("", |(_, v)| v));
        ix.add(key.as_bytes(), |f| d.iter().find(|(k, _)| k.as_bytes() == f).map(|(_, v)| v.as_bytes()))?;
    }
    let took = start.elapsed().as_secs_f64();
    println!("indexed {} documents in {took:.2} s: {:.0} documents/s on one core", docs.len(), docs.len() as f64 / took);
    let f = ix.footprint();
    let mb = |b: usize| b as f64 / 1e6;
    println!(
        "index {:.1} MB: postings {:.1} MB ({} postings, {:.2} bytes each; positions {:.1} MB), terms {:.1} MB ({} terms), documents {:.1} MB, tags {:.1} MB, numbers {:.1} MB",
        mb(f.total()),
        mb(f.postings),
        ix.num_records(),
        f.postings as f64 / ix.num_records().max(1) as f64,
        mb(f.positions),
        mb(f.terms),
        ix.num_terms(),
        mb(f.docs),
        mb(f.tags),
        mb(f.numbers)
    );

    if std::env::args().any(|a| a == "--churn") {
        // Every document written again: the old ones die. The cleaner runs
        // as the server's background task does, in slices between writes.
        let (mut write, mut slice) = ((0.0f64, 0), 0.0f64);
        let start = Instant::now();
        // Twice, so that dead ids outnumber live ones and the ids are renumbered.
        for (n, d) in docs.iter().chain(&docs).enumerate() {
            let key = format!("pkg:{}", d.iter().find(|(k, _)| k == "name").map_or("", |(_, v)| v));
            let t = Instant::now();
            ix.add(key.as_bytes(), |f| d.iter().find(|(k, _)| k.as_bytes() == f).map(|(_, v)| v.as_bytes()))?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            if ms > write.0 {
                write = (ms, n);
            }
            if n % 100 == 99 {
                let t = Instant::now();
                ix.clean_step(CLEAN_SLICE);
                slice = slice.max(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        while ix.cleaning() {
            let t = Instant::now();
            ix.clean_step(CLEAN_SLICE);
            slice = slice.max(t.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "rewrote every document twice and cleaned up in {:.2} s; slowest write {:.2} ms (document {}), slowest cleaning slice of {CLEAN_SLICE} postings {:.2} ms; index {:.1} MB, {} ids",
            start.elapsed().as_secs_f64(),
            write.0,
            write.1,
            slice,
            ix.footprint().total() as f64 / 1e6,
            ix.max_doc_id()
        );
    }

    let queries = std::fs::read_to_string(dir.join("dev-queries.txt"))?;
    let mut all = Vec::new();
    for q in queries.lines().filter(|l| !l.trim().is_empty()) {
        let node = query::parse(q, &ParseOptions::default()).map_err(|e| format!("{q}: {e}"))?;
        let stats = ix.stats(&ix.query_terms(&node));
        let req = Request { top: 10, ..Request::default() };
        let mut times = Vec::new();
        let mut total = 0;
        for _ in 0..30 {
            let t = Instant::now();
            total = ix.search(&node, &stats, &req)?.total;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        if verbose {
            println!("{:>8.3} ms {total:>6} hits  {q}", times[times.len() / 2]);
        }
        all.extend(times);
    }
    all.sort_by(f64::total_cmp);
    let at = |p: f64| all[((all.len() - 1) as f64 * p) as usize];
    println!(
        "search in process, 50 queries x 30: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    Ok(())
}
