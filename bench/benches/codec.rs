//! Micro-benchmarks of the hot codecs: RESP request parsing and reply
//! encoding (server), log records and keyspace op payloads, the dict, and the
//! key → slot hash (engine).
//!
//! Run: `cargo bench -p strand-bench --bench codec` (a quick smoke run of
//! every benchmark: append `-- --test`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use strand_engine::codec::Writer;
use strand_engine::dict::Dict;
use strand_engine::keyspace::op::Op;
use strand_engine::log::record::{self, RecordHeader, HEADER_LEN};
use strand_engine::slot::key_slot;
use strand_server::reply::Reply;
use strand_server::resp::{encode, parse_command, Limits, Parsed, Protocol};

const KEY16: &[u8; 16] = b"key:000000001234";

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        bulk(&mut out, a);
    }
    out
}

/// Parses every command in `buf`; returns how many.
fn parse_all(buf: &[u8], limits: &Limits, args: &mut Vec<(usize, usize)>) -> usize {
    let mut pos = 0;
    let mut n = 0;
    while pos < buf.len() {
        match parse_command(&buf[pos..], limits, args) {
            Ok(Parsed::Command { consumed }) | Ok(Parsed::Inline { consumed, .. }) | Ok(Parsed::Skip { consumed }) => {
                pos += consumed;
                n += 1;
            }
            other => panic!("unexpected parse result {other:?}"),
        }
    }
    n
}

fn resp_parse(c: &mut Criterion) {
    let limits = Limits::default();
    let mut args = Vec::with_capacity(16);
    let value = [b'x'; 64];
    let set = command(&[b"SET", KEY16, &value]);
    let mut pipeline = Vec::new();
    for i in 0..16 {
        pipeline.extend_from_slice(&command(&[b"GET", format!("key:{i:012}").as_bytes()]));
    }
    let ping = b"PING\r\n".to_vec();

    let mut g = c.benchmark_group("resp_parse");
    for (name, buf, count) in [("set_16b_key_64b_value", &set, 1), ("pipeline_16_get", &pipeline, 16), ("inline_ping", &ping, 1)] {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let n = parse_all(black_box(buf), &limits, &mut args);
                debug_assert_eq!(n, count);
                n
            })
        });
    }
    g.finish();
}

fn resp_encode(c: &mut Criterion) {
    let bulk64 = Reply::Bulk(vec![b'x'; 64]);
    let array16 = Reply::Array((0..16).map(|i| Reply::Bulk(format!("value-{i:010}").into_bytes())).collect());
    let int = Reply::Int(1_234_567_890);
    let map = Reply::Map((0..8).map(|i| (Reply::Bulk(format!("field-{i}").into_bytes()), Reply::Int(i))).collect());
    let mut out = Vec::with_capacity(4096);

    let mut g = c.benchmark_group("resp_encode");
    for (name, reply, proto) in [
        ("bulk_64", &bulk64, Protocol::Resp2),
        ("array_16_bulks", &array16, Protocol::Resp2),
        ("integer", &int, Protocol::Resp2),
        ("map_8_resp2", &map, Protocol::Resp2),
        ("map_8_resp3", &map, Protocol::Resp3),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                encode(black_box(reply), proto, &mut out);
                out.len()
            })
        });
    }
    g.finish();
}

fn record_codec(c: &mut Criterion) {
    let seed = 0x1234_5678_9abc_def0;
    let mut g = c.benchmark_group("record");
    for size in [64usize, 1024, 64 * 1024] {
        let payload: Vec<u8> = (0..size).map(|i| (i * 31) as u8).collect();
        let mut buf = vec![0u8; HEADER_LEN + size];
        g.throughput(Throughput::Bytes((HEADER_LEN + size) as u64));
        g.bench_with_input(BenchmarkId::new("encode_into", size), &payload, |b, payload| {
            b.iter(|| {
                let header = RecordHeader::new(0x10, 0, 42, 1_700_000_000_000, payload.len());
                record::encode_into(&mut buf, seed, header, black_box(payload));
            })
        });
        record::encode_into(&mut buf, seed, RecordHeader::new(0x10, 0, 42, 1_700_000_000_000, size), &payload);
        g.bench_with_input(BenchmarkId::new("decode", size), &buf, |b, buf| {
            b.iter(|| match record::decode(black_box(buf), seed) {
                Ok((h, p)) => h.lsn() + p.len() as u64,
                Err(e) => panic!("{e}"),
            })
        });
    }
    g.finish();
}

fn op_codec(c: &mut Criterion) {
    let value = [b'v'; 64];
    let op = Op::Set { db: 0, key: KEY16, value: &value, expire_ms: 1_700_000_000_000 };
    let mut buf = vec![0u8; op.encoded_len()];
    let mut g = c.benchmark_group("op_codec");
    g.throughput(Throughput::Bytes(buf.len() as u64));
    g.bench_function("set_encode", |b| {
        b.iter(|| {
            let op = black_box(&op);
            let mut w = Writer::new(&mut buf[..op.encoded_len()]);
            op.encode(&mut w);
            w.position()
        })
    });
    op.encode(&mut Writer::new(&mut buf));
    g.bench_function("set_decode", |b| {
        b.iter(|| match Op::decode(op.kind(), black_box(&buf)) {
            Ok(Op::Set { value, .. }) => value.len(),
            other => panic!("{other:?}"),
        })
    });
    g.finish();
}

fn dict(c: &mut Criterion) {
    const N: usize = 100_000;
    let keys: Vec<Vec<u8>> = (0..N).map(|i| format!("key:{i:012}").into_bytes()).collect();
    let misses: Vec<Vec<u8>> = (0..N).map(|i| format!("nop:{i:012}").into_bytes()).collect();
    let mut d: Dict<u64> = Dict::new(0x9e37_79b9_7f4a_7c15);
    for (i, k) in keys.iter().enumerate() {
        d.insert(k, i as u64);
    }
    // Finish any rehash so every benchmark sees the steady state.
    while d.rehash_steps(1024) {}

    let mut g = c.benchmark_group("dict");
    // Walk the keys with a stride so consecutive lookups touch unrelated buckets.
    let mut i = 0usize;
    let mut next = move || {
        i = (i + 7919) % N;
        i
    };
    g.bench_function("get_hit_100k", |b| b.iter(|| d.get(black_box(&keys[next()])).copied()));
    g.bench_function("get_miss_100k", |b| b.iter(|| d.get(black_box(&misses[next()])).copied()));
    g.bench_function("insert_replace_100k", |b| b.iter(|| d.insert(black_box(&keys[next()]), 7)));
    g.bench_function("insert_remove_100k", |b| {
        b.iter(|| {
            let k = &misses[next()];
            d.insert(black_box(k), 1);
            d.remove(k)
        })
    });
    // About 10 ms an iteration: fewer samples keep the run short.
    g.sample_size(10);
    g.bench_function("fill_100k", |b| {
        b.iter(|| {
            let mut d: Dict<u64> = Dict::new(1);
            for (i, k) in keys.iter().enumerate() {
                d.insert(k, i as u64);
            }
            d.len()
        })
    });
    g.finish();
}

fn slot(c: &mut Criterion) {
    let mut g = c.benchmark_group("slot");
    g.bench_function("key_slot_16b", |b| b.iter(|| key_slot(black_box(KEY16))));
    g.bench_function("key_slot_16b_hash_tag", |b| b.iter(|| key_slot(black_box(b"{user1000}.ab:cd"))));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = resp_parse, resp_encode, record_codec, op_codec, dict, slot
}
criterion_main!(benches);
