//! Micro-benchmarks of the per-core log (`strand_engine::log::Log`): appending
//! records into its in-memory buffer, and appending them end to end to real
//! segment files (O_DIRECT `DmaFile`s through io_uring) under each fsync
//! policy. The log runs on a glommio `LocalExecutor` driven from the bench
//! thread; async work is timed with criterion's `iter_custom`.
//!
//! Segments go to a temporary directory under `$STRAND_BENCH_DIR` (default:
//! the system's temporary directory), which must support O_DIRECT (not
//! tmpfs). Segments are 64 MiB and are removed as the bench goes.
//!
//! Run: `cargo bench -p strand-bench --bench log` (a quick smoke run of every
//! benchmark: append `-- --test`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};
use strand_engine::log::record::{kind, HEADER_LEN};
use strand_engine::log::recovery::Recovered;
use strand_engine::log::{FsyncPolicy, Log, LogConfig};
use strand_engine::runtime;

/// The record kind appended (the log never parses payloads).
const KIND: u8 = kind::KEYSPACE_FIRST;
const SEGMENT_SIZE: u64 = 64 << 20;
/// What the server uses.
const BUFFER_SIZE: usize = 64 * 1024;
/// Bytes of records appended between two flushes in the in-memory bench.
const MEMORY_BATCH: u64 = 4 << 20;

/// A log on its own executor and temporary directory.
struct Bench {
    ex: LocalExecutor,
    log: Log,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn new(policy: FsyncPolicy) -> Bench {
        let base = std::env::var_os("STRAND_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
        let dir = match tempfile::Builder::new().prefix("strand-bench-log").tempdir_in(&base) {
            Ok(d) => d,
            Err(e) => panic!("temporary directory under {}: {e}", base.display()),
        };
        let ex = match LocalExecutorBuilder::new(Placement::Unbound).make() {
            Ok(ex) => ex,
            Err(e) => panic!("glommio executor: {e}"),
        };
        let cfg =
            LogConfig { dir: dir.path().to_path_buf(), shard: 0, segment_size: SEGMENT_SIZE, fsync: policy, buffer_size: BUFFER_SIZE };
        let log = ex.run(async move { Log::start(cfg, &Recovered { next_lsn: 1, ..Recovered::default() }) });
        Bench { ex, log, _dir: dir }
    }

    /// Waits until everything appended is written (synced under `always`),
    /// then removes the segments behind it, so the disk holds about one.
    async fn settle(&self) {
        let lsn = self.log.last_lsn();
        if let Err(e) = self.log.durable(lsn).await {
            panic!("log write failed (does {} support O_DIRECT?): {e}", self.log.dir().display());
        }
        if let Err(e) = self.log.remove_through(lsn).await {
            panic!("{e}");
        }
    }
}

/// Appends records into the log's buffers and nothing else: the timer stops
/// while the flusher writes each few MiB.
fn append_memory(c: &mut Criterion) {
    let b = Bench::new(FsyncPolicy::No);
    let mut g = c.benchmark_group("log_append_memory");
    for size in [64usize, 1024, 16 * 1024] {
        let payload: Vec<u8> = (0..size).map(|i| (i * 31) as u8).collect();
        let batch = (MEMORY_BATCH / (HEADER_LEN + size) as u64).max(1);
        g.throughput(Throughput::Bytes((HEADER_LEN + size) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &payload, |bench, payload| {
            bench.iter_custom(|iters| {
                b.ex.run(async {
                    let mut timed = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let n = left.min(batch);
                        let start = Instant::now();
                        for i in 0..n {
                            if let Err(e) = b.log.append(KIND, 0, i, black_box(payload)) {
                                panic!("{e}");
                            }
                        }
                        timed += start.elapsed();
                        left -= n;
                        b.settle().await;
                    }
                    timed
                })
            })
        });
    }
    g.finish();
}

/// A stream of appends written to the segment files as the server writes
/// them: the flusher runs whenever a buffer's worth has been appended (as it
/// would between turns of the event loop), and the time counts until the
/// last record is written (`no`, `everysec`) or durable (`always`).
fn write_stream(c: &mut Criterion) {
    const SIZE: usize = 1024;
    let payload = vec![0x5au8; SIZE];
    let per_buffer = (BUFFER_SIZE / (HEADER_LEN + SIZE)) as u64;
    let mut g = c.benchmark_group("log_write_stream");
    g.throughput(Throughput::Bytes((HEADER_LEN + SIZE) as u64));
    for policy in [FsyncPolicy::No, FsyncPolicy::EverySec, FsyncPolicy::Always] {
        let b = Bench::new(policy);
        g.bench_function(BenchmarkId::new(policy.name(), SIZE), |bench| {
            bench.iter_custom(|iters| {
                b.ex.run(async {
                    let start = Instant::now();
                    for i in 0..iters {
                        if let Err(e) = b.log.append(KIND, 0, i, &payload) {
                            panic!("{e}");
                        }
                        if (i + 1) % per_buffer == 0 {
                            runtime::yield_now().await;
                        }
                    }
                    b.settle().await;
                    start.elapsed()
                })
            })
        });
    }
    g.finish();
}

/// Commits: `n` records appended together (one client's record, or a group
/// from many connections), then waiting until they are durable under
/// `always`: one write and one fdatasync per iteration.
fn commit_always(c: &mut Criterion) {
    const SIZE: usize = 1024;
    let payload = vec![0xa5u8; SIZE];
    let b = Bench::new(FsyncPolicy::Always);
    let mut g = c.benchmark_group("log_commit_always");
    for n in [1u64, 16, 64] {
        g.throughput(Throughput::Bytes(n * (HEADER_LEN + SIZE) as u64));
        g.bench_function(BenchmarkId::new(format!("records_{SIZE}b"), n), |bench| {
            bench.iter_custom(|iters| {
                b.ex.run(async {
                    let start = Instant::now();
                    for it in 0..iters {
                        let mut last = 0;
                        for i in 0..n {
                            last = match b.log.append(KIND, 0, it * n + i, &payload) {
                                Ok(lsn) => lsn,
                                Err(e) => panic!("{e}"),
                            };
                        }
                        if let Err(e) = b.log.durable(last).await {
                            panic!("{e}");
                        }
                    }
                    let t = start.elapsed();
                    b.settle().await;
                    t
                })
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = append_memory, write_stream, commit_always
}
criterion_main!(benches);
