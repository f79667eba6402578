//! Micro-benchmarks of the keyspace index: SET and GET as the command table
//! calls them (`Keyspace::write` of an `Op::Set`, `Keyspace::lookup`), on
//! 100,000 keys and without a log (`--persistence off`), so the figures are
//! the index's: the dict, the entry, expiry checks, the access clock for
//! eviction and the counters. The bare dict is in the `codec` bench.
//!
//! Run: `cargo bench -p strand-bench --bench keyspace` (a quick smoke run of
//! every benchmark: append `-- --test`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use strand_engine::keyspace::op::Op;
use strand_engine::keyspace::Keyspace;

const N: usize = 100_000;
const NOW: u64 = 1_700_000_000_000;

/// Walks 0..N with a stride so consecutive keys land in unrelated buckets.
fn strider() -> impl FnMut() -> usize {
    let mut i = 0usize;
    move || {
        i = (i + 7919) % N;
        i
    }
}

fn set(ks: &mut Keyspace, key: &[u8], value: &[u8]) {
    if let Err(e) = ks.write(Op::Set { db: 0, key, value, expire_ms: 0 }, NOW) {
        panic!("{e}");
    }
}

fn keyspace(c: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..N).map(|i| format!("key:{i:012}").into_bytes()).collect();
    let misses: Vec<Vec<u8>> = (0..N).map(|i| format!("nop:{i:012}").into_bytes()).collect();
    let small = [b'v'; 16];
    let large = [b'v'; 64];
    let mut ks = Keyspace::new(None);
    for k in &keys {
        set(&mut ks, k, &small);
    }

    let mut g = c.benchmark_group("keyspace");
    let mut next = strider();
    g.bench_function("get_hit_100k", |b| b.iter(|| ks.lookup(0, black_box(&keys[next()]), NOW).map(|e| e.expire_ms)));
    g.bench_function("get_miss_100k", |b| b.iter(|| ks.lookup(0, black_box(&misses[next()]), NOW).is_some()));
    // Values up to 22 bytes live inside the entry; 64 bytes take an allocation.
    g.bench_function("set_replace_16b_100k", |b| b.iter(|| set(&mut ks, black_box(&keys[next()]), &small)));
    g.bench_function("set_replace_64b_100k", |b| b.iter(|| set(&mut ks, black_box(&keys[next()]), &large)));
    g.bench_function("set_del_100k", |b| {
        b.iter(|| {
            let k = &misses[next()];
            set(&mut ks, black_box(k), &small);
            if let Err(e) = ks.write(Op::Del { db: 0, key: k }, NOW) {
                panic!("{e}");
            }
        })
    });
    // About 20 ms an iteration: fewer samples keep the run short.
    g.sample_size(10);
    g.bench_function("fill_100k", |b| {
        b.iter(|| {
            let mut ks = Keyspace::new(None);
            for k in &keys {
                set(&mut ks, k, &small);
            }
            ks.dbsize(0)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = keyspace
}
criterion_main!(benches);
