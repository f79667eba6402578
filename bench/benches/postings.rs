//! Micro-benchmarks of full-text search postings
//! (`strand_engine::search::postings`): appending postings (bit-packed blocks
//! of 128 with skip data, a varint tail), reading a list back with a cursor, with and without
//! positions, and intersecting two lists by leapfrogging `Cursor::seek`, as
//! an AND of two words does.
//!
//! The lists are generated over 63,675 documents (the size of the shared
//! Debian corpus): a common word in 30% of them, a medium one in 3%, a rare
//! one in 0.1%, each with 1-4 occurrences at increasing positions.
//!
//! Run: `cargo bench -p strand-bench --bench postings` (a quick smoke run of
//! every benchmark: append `-- --test`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strand_engine::search::postings::Postings;

const DOCS: u32 = 63_675;

/// One posting: document, frequency, field mask, positions.
type Entry = (u32, u32, u32, Vec<u32>);

/// Postings of a word found in about `share` of the documents.
fn entries(rng: &mut StdRng, share: f64) -> Vec<Entry> {
    let mut out = Vec::new();
    for doc in 1..=DOCS {
        if !rng.gen_bool(share) {
            continue;
        }
        let freq = rng.gen_range(1..=4);
        let mut at = 0;
        let positions = (0..freq)
            .map(|_| {
                at += rng.gen_range(1..40);
                at
            })
            .collect();
        out.push((doc, freq, 1 << rng.gen_range(0..2), positions));
    }
    out
}

fn build(entries: &[Entry]) -> Postings {
    let mut p = Postings::default();
    for (doc, freq, fields, positions) in entries {
        p.push(*doc, *freq, *fields, positions);
    }
    p
}

/// Documents in both lists: the shorter one leads, the other seeks to each of its documents.
fn intersect(a: &Postings, b: &Postings) -> usize {
    let (a, b) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let (mut ca, mut cb) = (a.cursor(), b.cursor());
    let mut found = 0;
    let Some(mut doc) = ca.next().map(|p| p.doc) else { return 0 };
    while let Some(other) = cb.seek(doc).map(|p| p.doc) {
        let next = if other == doc {
            found += 1;
            ca.next()
        } else {
            ca.seek(other)
        };
        match next {
            Some(p) => doc = p.doc,
            None => break,
        }
    }
    found
}

fn postings(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0x5ea7c4);
    let words: Vec<(&str, Vec<Entry>)> = [("common_30pct", 0.30), ("medium_3pct", 0.03), ("rare_0.1pct", 0.001)]
        .into_iter()
        .map(|(name, share)| (name, entries(&mut rng, share)))
        .collect();
    let lists: Vec<Postings> = words.iter().map(|(_, e)| build(e)).collect();
    for ((name, e), p) in words.iter().zip(&lists) {
        println!(
            "postings {name}: {} postings, {:.2} heap bytes a posting (positions included)",
            e.len(),
            p.heap_bytes() as f64 / e.len() as f64
        );
    }

    let mut g = c.benchmark_group("postings");
    for ((name, e), p) in words.iter().zip(&lists) {
        g.throughput(Throughput::Elements(e.len() as u64));
        g.bench_with_input(BenchmarkId::new("push", name), e, |b, e| b.iter(|| build(black_box(e)).len()));
        g.bench_with_input(BenchmarkId::new("read", name), p, |b, p| {
            b.iter(|| {
                let mut c = black_box(p).cursor();
                let mut sum = 0u64;
                while let Some(x) = c.next() {
                    sum += u64::from(x.doc ^ x.freq);
                }
                sum
            })
        });
        g.bench_with_input(BenchmarkId::new("read_positions", name), p, |b, p| {
            b.iter(|| {
                let mut c = black_box(p).cursor();
                let mut sum = 0u64;
                while c.next().is_some() {
                    sum += c.positions().iter().map(|&x| u64::from(x)).sum::<u64>();
                }
                sum
            })
        });
    }
    for (i, j) in [(0, 1), (0, 2), (1, 1), (1, 2)] {
        let (a, b) = (&lists[i], &lists[j]);
        let b_owned;
        // A word with itself would be trivial: intersect with a second list of the same share.
        let b = if i == j {
            b_owned = build(&entries(&mut rng, [0.30, 0.03, 0.001][j]));
            &b_owned
        } else {
            b
        };
        let name = format!("{}_and_{}", words[i].0, words[j].0);
        println!("postings intersect {name}: {} and {} postings, {} in both", a.len(), b.len(), intersect(a, b));
        g.throughput(Throughput::Elements(u64::from(a.len().min(b.len()))));
        g.bench_function(BenchmarkId::new("intersect", name), |bench| bench.iter(|| intersect(black_box(a), black_box(b))));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = postings
}
criterion_main!(benches);
