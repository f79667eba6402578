//! Micro-benchmarks of the time-series chunk codecs (`strand_engine::series`):
//! ingest through `Series::upsert` (appends into the open chunk, bit by bit,
//! sealing every 128 samples into the columnar form), the sealed chunks'
//! `codec::encode` (which tries every value codec and keeps the smallest)
//! and `codec::decode`, and the open chunk's push and decode. Figures are
//! samples/s; the bytes per sample of each data set are printed once.
//!
//! Data: a generated gauge (a random walk with two decimals) and counter
//! (integers rising in bursts), and every 8th series of the shared dataset
//! `../shared/data/tsdata/node-1s.jsonl.zst` (real 1-s host and server
//! metrics; read with `zstd -dc`) when it is there; `$STRAND_TSDATA` names
//! another file. Each set is cut into chunks as a series cuts it.
//!
//! Run: `cargo bench -p strand-bench --bench series` (a quick smoke run of
//! every benchmark: append `-- --test`).

use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strand_engine::series::codec::{self, OpenChunk, Sample};
use strand_engine::series::{Config, Series, OPEN_SAMPLES};

/// Every how many series of the dataset are taken.
const DATASET_STRIDE: usize = 8;
/// Generated series per set, and samples in each (the dataset's median).
const GENERATED_SERIES: usize = 64;
const GENERATED_SAMPLES: usize = 1712;
const START_MS: i64 = 1_795_903_076_378;

/// One data set: whole series, and the same samples cut into chunks as a series cuts them.
struct Set {
    name: &'static str,
    series: Vec<Vec<Sample>>,
    sealed: Vec<Vec<Sample>>,
    open: Vec<Vec<Sample>>,
}

impl Set {
    fn new(name: &'static str, series: Vec<Vec<Sample>>) -> Set {
        let (mut sealed, mut open) = (Vec::new(), Vec::new());
        for s in &series {
            let mut ts = Series::new(Config::default());
            ts.upsert(s);
            let chunks = ts.chunks();
            let mut at = 0;
            for (i, &(_, _, n, _, _)) in chunks.iter().enumerate() {
                let part = s[at..at + n].to_vec();
                at += n;
                match (i + 1 == chunks.len(), part.is_empty()) {
                    (_, true) => {}
                    (true, false) => open.push(part),
                    (false, false) => sealed.push(part),
                }
            }
            assert_eq!(at, s.len(), "chunks of {name} do not add up");
        }
        Set { name, series, sealed, open }
    }

    fn samples(chunks: &[Vec<Sample>]) -> u64 {
        chunks.iter().map(|c| c.len() as u64).sum()
    }

    /// Prints the bytes per sample of its sealed and open chunks.
    fn report(&self) {
        let sealed_bytes: usize = self.sealed.iter().map(|c| codec::encode(c).len()).sum();
        let open_bytes: usize = self.open.iter().map(|c| OpenChunk::from_samples(c).data_bytes()).sum();
        let (ns, no) = (Set::samples(&self.sealed), Set::samples(&self.open));
        println!(
            "series data set {}: {} series, {} samples; sealed chunks {} ({} samples) {:.3} bytes/sample; open chunks {} ({} samples) {:.3} bytes/sample",
            self.name,
            self.series.len(),
            ns + no,
            self.sealed.len(),
            ns,
            sealed_bytes as f64 / ns.max(1) as f64,
            self.open.len(),
            no,
            open_bytes as f64 / no.max(1) as f64,
        );
    }
}

/// Integer milliseconds one second apart with a little jitter, as a scraper takes them.
fn timestamps(rng: &mut StdRng, n: usize) -> Vec<i64> {
    let mut t = START_MS;
    (0..n)
        .map(|_| {
            t += 1000 + if rng.gen_ratio(1, 500) { rng.gen_range(-200..200) } else { 0 };
            t
        })
        .collect()
}

/// `GENERATED_SERIES` series: a value that starts at `start` and moves by `step`, divided by `scale`.
fn generated(rng: &mut StdRng, start: fn(&mut StdRng) -> i64, step: fn(&mut StdRng, i64) -> i64, scale: f64) -> Vec<Vec<Sample>> {
    (0..GENERATED_SERIES)
        .map(|_| {
            let mut v = start(rng);
            timestamps(rng, GENERATED_SAMPLES)
                .into_iter()
                .map(|t| {
                    v = step(rng, v);
                    (t, v as f64 / scale)
                })
                .collect()
        })
        .collect()
}

/// A gauge with two decimals, a random walk.
fn gauges(rng: &mut StdRng) -> Vec<Vec<Sample>> {
    generated(rng, |r| r.gen_range(0..10_000), |r, v| (v + r.gen_range(-25..=25)).max(0), 100.0)
}

/// A counter rising in bursts (one sample in five).
fn counters(rng: &mut StdRng) -> Vec<Vec<Sample>> {
    generated(rng, |r| r.gen_range(0..1_000_000), |r, v| if r.gen_ratio(1, 5) { v + r.gen_range(1..5_000) } else { v }, 1.0)
}

/// Every `DATASET_STRIDE`th series of the dataset, if the file is there.
fn dataset() -> Option<Vec<Vec<Sample>>> {
    let path = std::env::var_os("STRAND_TSDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/tsdata/node-1s.jsonl.zst"));
    if !path.exists() {
        println!("series: {} not found; generated data only", path.display());
        return None;
    }
    let mut child = match Command::new("zstd").arg("-dc").arg(&path).stdout(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => {
            println!("series: zstd -dc {}: {e}; generated data only", path.display());
            return None;
        }
    };
    let stdout = child.stdout.take()?;
    let mut out = Vec::new();
    for (i, line) in BufReader::with_capacity(1 << 20, stdout).split(b'\n').enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        if i % DATASET_STRIDE != 0 || line.is_empty() {
            continue;
        }
        let v: serde_json::Value = match serde_json::from_slice(&line) {
            Ok(v) => v,
            Err(e) => panic!("{} line {}: {e}", path.display(), i + 1),
        };
        let nums = |field: &str| v[field].as_array().cloned().unwrap_or_default();
        let samples: Vec<Sample> =
            nums("timestamps").iter().zip(nums("values").iter()).filter_map(|(t, x)| Some((t.as_i64()?, x.as_f64()?))).collect();
        if !samples.is_empty() {
            out.push(samples);
        }
    }
    let _ = child.wait();
    Some(out)
}

fn sets() -> Vec<Set> {
    let mut rng = StdRng::seed_from_u64(0x7153_e7e5);
    let mut sets = vec![Set::new("gauge", gauges(&mut rng)), Set::new("counter", counters(&mut rng))];
    if let Some(d) = dataset() {
        sets.push(Set::new("node-1s", d));
    }
    for s in &sets {
        s.report();
    }
    sets
}

fn series(c: &mut Criterion) {
    let sets = sets();
    let mut g = c.benchmark_group("series");
    // Each iteration codes a whole set (tens to hundreds of thousands of samples).
    g.sample_size(10);
    for set in &sets {
        let all: u64 = set.series.iter().map(|s| s.len() as u64).sum();
        g.throughput(Throughput::Elements(all));
        g.bench_with_input(BenchmarkId::new("ingest", set.name), &set.series, |b, series| {
            b.iter(|| {
                series
                    .iter()
                    .map(|s| {
                        let mut ts = Series::new(Config::default());
                        ts.upsert(black_box(s));
                        ts.chunk_count()
                    })
                    .sum::<usize>()
            })
        });

        g.throughput(Throughput::Elements(Set::samples(&set.sealed)));
        g.bench_with_input(BenchmarkId::new("sealed_encode", set.name), &set.sealed, |b, chunks| {
            b.iter(|| chunks.iter().map(|c| codec::encode(black_box(c)).len()).sum::<usize>())
        });
        let encoded: Vec<Vec<u8>> = set.sealed.iter().map(|c| codec::encode(c)).collect();
        let mut out = Vec::with_capacity(16384);
        g.bench_with_input(BenchmarkId::new("sealed_decode", set.name), &encoded, |b, chunks| {
            b.iter(|| {
                chunks
                    .iter()
                    .map(|c| {
                        out.clear();
                        match codec::decode(black_box(c), &mut out) {
                            Ok(()) => out.len(),
                            Err(e) => panic!("{e}"),
                        }
                    })
                    .sum::<usize>()
            })
        });

        // The open chunk: samples pushed in runs of OPEN_SAMPLES, as they arrive.
        let runs: Vec<&[Sample]> = set.series.iter().flat_map(|s| s.chunks(OPEN_SAMPLES)).collect();
        g.throughput(Throughput::Elements(all));
        g.bench_with_input(BenchmarkId::new("open_push", set.name), &runs, |b, runs| {
            b.iter(|| {
                runs.iter()
                    .map(|run| {
                        let mut c = OpenChunk::default();
                        run.iter().for_each(|&(t, v)| c.push(t, v));
                        c.data_bytes()
                    })
                    .sum::<usize>()
            })
        });
        let open: Vec<OpenChunk> = runs.iter().map(|r| OpenChunk::from_samples(r)).collect();
        g.bench_with_input(BenchmarkId::new("open_decode", set.name), &open, |b, chunks| {
            b.iter(|| {
                chunks
                    .iter()
                    .map(|c| {
                        out.clear();
                        match black_box(c).decode_into(&mut out) {
                            Ok(()) => out.len(),
                            Err(e) => panic!("{e}"),
                        }
                    })
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = series
}
criterion_main!(benches);
