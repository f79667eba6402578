//! Where the bytes of the shared time-series dataset go, without a server:
//! every series of `../shared/data/tsdata/node-1s.jsonl.zst` (or
//! `$STRAND_TSDATA`) is fed to a [`Series`] as TS.MADD would feed it, then
//! the chunk data (by codec), the open chunks and the series' own memory
//! are summed and printed per sample.
//!
//! Run: `cargo run --release -p strand-bench --example ts_bytes`

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use strand_engine::series::{Config, Labels, Series};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var_os("STRAND_TSDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/tsdata/node-1s.jsonl.zst"));
    let mut child = Command::new("zstd").arg("-dc").arg(&path).stdout(Stdio::piped()).spawn()?;
    let out = child.stdout.take().ok_or("zstd gave no stdout")?;
    let (mut samples, mut series_n, mut heap, mut labels) = (0usize, 0usize, 0usize, 0usize);
    let mut by_codec: BTreeMap<&'static str, (usize, usize, usize)> = BTreeMap::new();
    for line in BufReader::new(out).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        let metric = v["metric"].as_object().ok_or("no metric")?;
        let pairs: Vec<(Vec<u8>, Vec<u8>)> =
            metric.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_str().unwrap_or_default().as_bytes().to_vec())).collect();
        let ts = v["timestamps"].as_array().ok_or("no timestamps")?;
        let vals = v["values"].as_array().ok_or("no values")?;
        let s: Vec<(i64, f64)> = ts.iter().zip(vals).map(|(t, v)| (t.as_i64().unwrap_or(0), v.as_f64().unwrap_or(0.0))).collect();
        let config = Config { labels: Labels::new(pairs.iter().map(|(k, v)| (&k[..], &v[..]))), ..Config::default() };
        labels += config.labels.heap_bytes();
        let mut series = Series::new(config);
        for part in s.chunks(10) {
            series.upsert(part);
        }
        for (_, _, n, bytes, codec) in series.chunks() {
            let e = by_codec.entry(codec).or_default();
            e.0 += 1;
            e.1 += n;
            e.2 += bytes;
        }
        heap += series.heap_bytes();
        samples += s.len();
        series_n += 1;
    }
    child.wait()?;
    let per = |b: usize| b as f64 / samples.max(1) as f64;
    println!(
        "{series_n} series, {samples} samples; size_of::<Series>() = {} (Config {}, OpenChunk {})",
        std::mem::size_of::<Series>(),
        std::mem::size_of::<Config>(),
        std::mem::size_of::<strand_engine::series::codec::OpenChunk>()
    );
    let mut data = 0;
    for (codec, (chunks, n, bytes)) in &by_codec {
        data += bytes;
        println!(
            "  {codec:>14}: {chunks:>5} chunks, {n:>8} samples, {bytes:>8} bytes, {:.3} bytes/sample of its own",
            *bytes as f64 / (*n).max(1) as f64
        );
    }
    println!("chunk data {data} bytes: {:.3} bytes/sample", per(data));
    println!("labels {labels} bytes: {:.3} bytes/sample ({:.0} per series)", per(labels), labels as f64 / series_n as f64);
    println!(
        "heap_bytes summed {heap}: {:.3} bytes/sample ({:.0} per series beyond chunk data)",
        per(heap),
        (heap - data) as f64 / series_n as f64
    );
    Ok(())
}
