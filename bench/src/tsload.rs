//! The `timeseries` workload: loads a VictoriaMetrics JSON-lines export
//! (`/api/v1/export` format, optionally zstd-compressed: read through
//! `zstd -dc`) into strand over the wire with TS.CREATE and TS.MADD, then
//! reports ingest samples/s and bytes per sample: TS.INFO memoryUsage summed
//! over the series, the compressed chunk bytes (TS.INFO DEBUG), and, given
//! the server's data directory, the checkpoint files written by SAVE; then
//! times TS.RANGE, plain and aggregated, over a day of 1-second samples.
//!
//! Each series' key is `ts:` and its sorted `label=value` pairs joined with
//! `,`; all its labels (`__name__` included) become TS labels as they are,
//! since strand takes any bytes in label values. Samples go out time-major
//! (a window of each series' samples per command, as scrapes arrive), and
//! values are sent as the export's own text, so nothing is rounded.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::resp::{self, Value};

/// One series of the export.
struct Series {
    key: String,
    labels: Vec<(String, String)>,
    timestamps: Vec<String>,
    values: Vec<String>,
}

/// Where and how to load.
pub struct Options {
    /// The export file (`.zst` is decompressed with `zstd -dc`).
    pub path: PathBuf,
    /// Server `HOST:PORT`.
    pub target: String,
    /// Connections sending TS.MADD.
    pub connections: usize,
    /// Samples per series per command.
    pub window: usize,
    /// Series per command.
    pub series_per_command: usize,
    /// The server's data directory, to measure its checkpoint files after SAVE.
    pub data_dir: Option<PathBuf>,
    /// TS.RANGE calls timed over a day of 1-second data (0: none).
    pub range_runs: usize,
}

/// Reads a JSON string starting after its opening quote; returns it and the index after its closing quote.
fn json_string(s: &[u8], mut i: usize) -> Result<(String, usize), String> {
    let mut out = Vec::new();
    while i < s.len() {
        match s[i] {
            b'"' => return Ok((String::from_utf8_lossy(&out).into_owned(), i + 1)),
            b'\\' => {
                let c = *s.get(i + 1).ok_or("string ends in a backslash")?;
                match c {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'u' => {
                        let hex = std::str::from_utf8(s.get(i + 2..i + 6).ok_or("short \\u escape")?).map_err(|e| e.to_string())?;
                        let cp = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                        let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                        out.extend_from_slice(ch.to_string().as_bytes());
                        i += 4;
                    }
                    other => out.push(other),
                }
                i += 2;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Err("unterminated string".into())
}

/// The text of the JSON array after `"name":[`, split at commas.
fn json_array(line: &[u8], name: &str) -> Result<Vec<String>, String> {
    let tag = format!("\"{name}\":[");
    let at = find(line, tag.as_bytes()).ok_or(format!("no \"{name}\" array"))? + tag.len();
    let end = line[at..].iter().position(|&b| b == b']').ok_or(format!("unterminated \"{name}\" array"))? + at;
    let body = std::str::from_utf8(&line[at..end]).map_err(|e| e.to_string())?;
    Ok(body.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses one export line.
fn parse_line(line: &[u8]) -> Result<Series, String> {
    let at = find(line, b"\"metric\":{").ok_or("no \"metric\" object")? + 10;
    let mut labels = Vec::new();
    let mut i = at;
    loop {
        while i < line.len() && matches!(line[i], b' ' | b',') {
            i += 1;
        }
        match line.get(i) {
            Some(b'}') => break,
            Some(b'"') => {}
            _ => return Err(format!("bad metric object at byte {i}")),
        }
        let (name, j) = json_string(line, i + 1)?;
        let q = line[j..].iter().position(|&b| b == b'"').ok_or("label without a value")? + j;
        let (value, k) = json_string(line, q + 1)?;
        labels.push((name, value));
        i = k;
    }
    labels.sort();
    let key = format!("ts:{}", labels.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(","));
    let values = json_array(line, "values")?;
    let timestamps = json_array(line, "timestamps")?;
    if values.len() != timestamps.len() {
        return Err(format!("{key}: {} values but {} timestamps", values.len(), timestamps.len()));
    }
    Ok(Series { key, labels, timestamps, values })
}

fn read_export(path: &Path) -> Result<Vec<Series>, String> {
    let input: Box<dyn Read> = if path.extension().is_some_and(|e| e == "zst") {
        let child = Command::new("zstd")
            .arg("-dc")
            .arg(path)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("zstd -dc {}: {e} (is zstd installed?)", path.display()))?;
        Box::new(child.stdout.ok_or("zstd: no output pipe")?)
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?)
    };
    let mut out = Vec::new();
    for (n, line) in BufReader::with_capacity(1 << 20, input).split(b'\n').enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if !line.is_empty() {
            out.push(parse_line(&line).map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?);
        }
    }
    Ok(out)
}

pub(crate) fn push_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Reads `n` replies; calls `f` on each. Errors inside arrays count as
/// errors too. The buffer is parsed only once the socket has nothing more
/// to read right now, so a large reply is not re-parsed for every read.
pub(crate) fn read_replies(stream: &mut TcpStream, n: usize, mut f: impl FnMut(&Value<'_>)) -> Result<u64, String> {
    let mut buf = Vec::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 16];
    let (mut got, mut errors) = (0, 0u64);
    while got < n {
        match resp::parse(&buf).map_err(|e| e.to_string())? {
            Some((v, used)) => {
                errors += count_errors(&v);
                f(&v);
                buf.drain(..used);
                got += 1;
            }
            None => {
                let r = stream.read(&mut chunk).map_err(|e| format!("reading replies: {e}"))?;
                if r == 0 {
                    return Err(format!("server closed the connection after {got} of {n} replies"));
                }
                buf.extend_from_slice(&chunk[..r]);
                drain_ready(stream, &mut buf, &mut chunk)?;
            }
        }
    }
    Ok(errors)
}

/// Appends whatever the socket holds right now, without waiting. It reads
/// with `MSG_DONTWAIT` rather than making the socket non-blocking: the
/// socket shares its file status flags with the clone that sends, which
/// would then fail with EAGAIN on a full send buffer.
fn drain_ready(stream: &mut TcpStream, buf: &mut Vec<u8>, chunk: &mut [u8]) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: `chunk` is valid for writes of its length for the whole call.
        let r = unsafe { libc::recv(stream.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len(), libc::MSG_DONTWAIT) };
        match r {
            0 => return Ok(()),
            r if r > 0 => buf.extend_from_slice(&chunk[..r as usize]),
            _ => {
                let e = std::io::Error::last_os_error();
                match e.kind() {
                    std::io::ErrorKind::WouldBlock => return Ok(()),
                    std::io::ErrorKind::Interrupted => continue,
                    _ => return Err(format!("reading replies: {e}")),
                }
            }
        }
    }
}

fn count_errors(v: &Value<'_>) -> u64 {
    match v {
        Value::Error(_) | Value::BulkError(_) => 1,
        Value::Array(Some(items)) => items.iter().map(count_errors).sum(),
        _ => 0,
    }
}

/// Sends `commands` (each already RESP-encoded) on one connection, reading replies on another thread.
pub(crate) fn send_all(target: &str, commands: Vec<Vec<u8>>) -> Result<u64, String> {
    let stream = TcpStream::connect(target).map_err(|e| format!("{target}: {e}"))?;
    let mut reader = stream.try_clone().map_err(|e| e.to_string())?;
    let n = commands.len();
    let replies = std::thread::spawn(move || read_replies(&mut reader, n, |_| {}));
    let mut w = BufWriter::with_capacity(1 << 20, stream);
    for c in &commands {
        w.write_all(c).map_err(|e| format!("sending: {e}"))?;
    }
    w.flush().map_err(|e| format!("sending: {e}"))?;
    replies.join().map_err(|_| "reply reader panicked".to_string())?
}

/// The TS.MADD commands, time-major: a window of samples of a group of series each.
fn madd_commands(series: &[Series], window: usize, per_command: usize) -> Vec<Vec<u8>> {
    let longest = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let mut out = Vec::new();
    for start in (0..longest).step_by(window) {
        for group in series.chunks(per_command) {
            let mut args: Vec<&[u8]> = vec![b"TS.MADD"];
            for s in group {
                let end = (start + window).min(s.values.len());
                for i in start.min(end)..end {
                    args.extend([s.key.as_bytes(), s.timestamps[i].as_bytes(), s.values[i].as_bytes()]);
                }
            }
            if args.len() > 1 {
                let mut c = Vec::new();
                push_command(&mut c, &args);
                out.push(c);
            }
        }
    }
    out
}

/// Sums of TS.INFO DEBUG over every series: (memoryUsage, totalSamples, chunk bytes).
fn info_sums(target: &str, series: &[Series]) -> Result<(i64, i64, i64), String> {
    let mut stream = TcpStream::connect(target).map_err(|e| format!("{target}: {e}"))?;
    let mut req = Vec::new();
    for s in series {
        push_command(&mut req, &[b"TS.INFO", s.key.as_bytes(), b"DEBUG"]);
    }
    stream.write_all(&req).map_err(|e| e.to_string())?;
    let (mut mem, mut samples, mut chunk_bytes) = (0, 0, 0);
    read_replies(&mut stream, series.len(), |v| {
        let Value::Array(Some(items)) = v else { return };
        for pair in items.chunks(2) {
            match (&pair[0], pair.get(1)) {
                (Value::Simple(b"memoryUsage"), Some(Value::Integer(n))) => mem += n,
                (Value::Simple(b"totalSamples"), Some(Value::Integer(n))) => samples += n,
                (Value::Simple(b"Chunks"), Some(Value::Array(Some(chunks)))) => {
                    for c in chunks {
                        let Value::Array(Some(f)) = c else { continue };
                        for p in f.chunks(2) {
                            if let (Value::Simple(b"size"), Some(Value::Integer(n))) = (&p[0], p.get(1)) {
                                chunk_bytes += n;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    })?;
    Ok((mem, samples, chunk_bytes))
}

/// Bytes of the newest checkpoint file of each shard under `dir`.
fn checkpoint_bytes(dir: &Path) -> Result<u64, String> {
    let mut total = 0;
    for shard in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let shard = shard.map_err(|e| e.to_string())?.path();
        if !shard.is_dir() {
            continue;
        }
        let mut ckps: Vec<PathBuf> = std::fs::read_dir(&shard)
            .map_err(|e| format!("{}: {e}", shard.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "ckp"))
            .collect();
        ckps.sort();
        if let Some(newest) = ckps.last() {
            total += std::fs::metadata(newest).map_err(|e| format!("{}: {e}", newest.display()))?.len();
        }
    }
    Ok(total)
}

/// Writes a day of 1-second samples into one new series (its values taken
/// cyclically from a real series of the export), then times TS.RANGE over
/// all of it, plain and with AGGREGATION avg 60000: p50 and p99 of `runs` calls each.
fn range_latency(target: &str, like: &Series, runs: usize) -> Result<(), String> {
    const DAY: usize = 86_400;
    let key = format!("ts-range-bench:{}", std::process::id());
    let mut stream = TcpStream::connect(target).map_err(|e| format!("{target}: {e}"))?;
    let mut req = Vec::new();
    push_command(&mut req, &[b"TS.CREATE", key.as_bytes()]);
    let base: i64 = 1_700_000_000_000;
    let (mut ts, mut cmds) = (Vec::with_capacity(DAY), 1);
    for i in 0..DAY {
        ts.push((base + 1000 * i as i64).to_string());
    }
    for chunk in (0..DAY).collect::<Vec<_>>().chunks(2000) {
        let mut args: Vec<&[u8]> = vec![b"TS.MADD"];
        for &i in chunk {
            args.extend([key.as_bytes(), ts[i].as_bytes(), like.values[i % like.values.len()].as_bytes()]);
        }
        push_command(&mut req, &args);
        cmds += 1;
    }
    stream.write_all(&req).map_err(|e| e.to_string())?;
    if read_replies(&mut stream, cmds, |_| {})? > 0 {
        return Err("loading the day series failed".into());
    }
    for (name, extra) in [
        ("TS.RANGE - + (86,400 samples)", &[][..]),
        ("TS.RANGE - + AGGREGATION avg 60000 (1,440 buckets)", &[&b"AGGREGATION"[..], b"avg", b"60000"][..]),
    ] {
        let mut args: Vec<&[u8]> = vec![b"TS.RANGE", key.as_bytes(), b"-", b"+"];
        args.extend_from_slice(extra);
        let mut one = Vec::new();
        push_command(&mut one, &args);
        let mut micros = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            stream.write_all(&one).map_err(|e| e.to_string())?;
            read_replies(&mut stream, 1, |_| {})?;
            micros.push(t.elapsed().as_micros() as u64);
        }
        micros.sort_unstable();
        let at = |p: f64| micros[((micros.len() as f64 * p) as usize).min(micros.len() - 1)] as f64 / 1000.0;
        println!("{name}: p50 {:.3} ms, p99 {:.3} ms over {runs} calls", at(0.5), at(0.99));
    }
    let mut del = Vec::new();
    push_command(&mut del, &[b"DEL", key.as_bytes()]);
    stream.write_all(&del).map_err(|e| e.to_string())?;
    read_replies(&mut stream, 1, |_| {})?;
    Ok(())
}

/// Loads the export and prints the figures.
pub fn run(o: &Options) -> Result<(), String> {
    let t = Instant::now();
    let series = read_export(&o.path)?;
    let samples: usize = series.iter().map(|s| s.values.len()).sum();
    println!("read {} series, {samples} samples from {} in {:.1} s", series.len(), o.path.display(), t.elapsed().as_secs_f64());
    let mut creates = Vec::with_capacity(series.len());
    for s in &series {
        let mut args: Vec<&[u8]> = vec![b"TS.CREATE", s.key.as_bytes(), b"LABELS"];
        for (n, v) in &s.labels {
            args.extend([n.as_bytes(), v.as_bytes()]);
        }
        let mut c = Vec::new();
        push_command(&mut c, &args);
        creates.push(c);
    }
    let errors = send_all(&o.target, creates)?;
    if errors > 0 {
        return Err(format!("{errors} TS.CREATE calls failed (load into an empty server)"));
    }
    let commands = madd_commands(&series, o.window.max(1), o.series_per_command.max(1));
    let ncmd = commands.len();
    let mut per_conn: Vec<Vec<Vec<u8>>> = (0..o.connections.max(1)).map(|_| Vec::new()).collect();
    let n = per_conn.len();
    for (i, c) in commands.into_iter().enumerate() {
        per_conn[i % n].push(c);
    }
    let t = Instant::now();
    let workers: Vec<_> = per_conn
        .into_iter()
        .map(|cmds| {
            let target = o.target.clone();
            std::thread::spawn(move || send_all(&target, cmds))
        })
        .collect();
    let mut errors = 0;
    for w in workers {
        errors += w.join().map_err(|_| "sender panicked".to_string())??;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "TS.MADD: {samples} samples in {ncmd} commands over {} connections: {secs:.2} s, {:.0} samples/s, {errors} errors",
        o.connections.max(1),
        samples as f64 / secs
    );
    let (mem, stored, chunk_bytes) = info_sums(&o.target, &series)?;
    let per = |b: f64| b / samples as f64;
    println!("TS.INFO totalSamples summed: {stored}");
    println!("TS.INFO memoryUsage summed: {mem} bytes, {:.3} bytes/sample", per(mem as f64));
    println!("compressed chunk data (TS.INFO DEBUG sizes): {chunk_bytes} bytes, {:.3} bytes/sample", per(chunk_bytes as f64));
    let mut stream = TcpStream::connect(&o.target).map_err(|e| format!("{}: {e}", o.target))?;
    let mut req = Vec::new();
    push_command(&mut req, &[b"SAVE"]);
    stream.write_all(&req).map_err(|e| e.to_string())?;
    if read_replies(&mut stream, 1, |_| {})? > 0 {
        return Err("SAVE failed".into());
    }
    if let Some(dir) = &o.data_dir {
        let bytes = checkpoint_bytes(dir)?;
        println!("checkpoint files after SAVE: {bytes} bytes, {:.3} bytes/sample", per(bytes as f64));
    }
    // The changing series with the most samples stands in for a day of data.
    let like = series.iter().filter(|s| s.values.iter().any(|v| *v != s.values[0])).max_by_key(|s| s.values.len());
    if let Some(like) = like {
        range_latency(&o.target, like, o.range_runs)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_export_line() {
        let line = br#"{"metric":{"__name__":"up","job":"a \"q\"","x":"\u0041"},"values":[1,2.5,-0],"timestamps":[10,20,30]}"#;
        let s = parse_line(line).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.key, "ts:__name__=up,job=a \"q\",x=A");
        assert_eq!(s.values, ["1", "2.5", "-0"]);
        assert_eq!(s.timestamps, ["10", "20", "30"]);
        assert!(parse_line(br#"{"metric":{"a":"b"},"values":[1],"timestamps":[]}"#).is_err());
    }
}
