//! The `search` workload: loads the Debian package corpus
//! (`../shared/data/search`) as hashes with the canonical index live, then
//! runs the developer queries: their top-10 ids and hit counts go to a
//! JSON-lines file that `overlap_md.py` compares with the reference engines,
//! and their latency (top 10, over loopback, one query at a time) is
//! measured with hdrhistogram.
//!
//! Documents are loaded verbatim: strand splits words on every whitespace
//! character, newlines included.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::resp::Value;
use crate::tsload::{push_command, read_replies, send_all};

/// What the loader is asked.
pub struct Options {
    /// The corpus folder (holds debian-packages.jsonl.zst and dev-queries.txt).
    pub dir: PathBuf,
    /// HOST:PORT.
    pub target: String,
    /// Connections loading documents.
    pub connections: usize,
    /// Where to write the queries' answers (JSON lines).
    pub out: Option<PathBuf>,
    /// Timed rounds over the query list.
    pub rounds: usize,
    /// Load the corpus (false: only query an index loaded before).
    pub load: bool,
}

/// One document: field name → value, as the hash gets it.
type Doc = Vec<(String, String)>;

/// Reads a JSON string starting at the opening quote; returns it and the index after it.
fn json_string(s: &[u8], mut i: usize) -> Result<(String, usize), String> {
    let mut out = Vec::new();
    i += 1;
    while i < s.len() {
        match s[i] {
            b'"' => return String::from_utf8(out).map(|t| (t, i + 1)).map_err(|e| e.to_string()),
            b'\\' => {
                let c = *s.get(i + 1).ok_or("truncated escape")?;
                i += 2;
                match c {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => {
                        let hex = |at: usize| {
                            s.get(at..at + 4)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .ok_or("bad \\u escape")
                        };
                        let mut cp = hex(i)?;
                        i += 4;
                        if (0xd800..0xdc00).contains(&cp) && s.get(i..i + 2) == Some(b"\\u") {
                            let lo = hex(i + 2)?;
                            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                            i += 6;
                        }
                        let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                        out.extend_from_slice(ch.to_string().as_bytes());
                    }
                    other => out.push(other),
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Err("unterminated string".into())
}

/// Parses one flat JSON object of strings, numbers and arrays of strings (joined with ",").
fn parse_doc(line: &[u8]) -> Result<Doc, String> {
    let mut doc = Vec::new();
    let mut i = line.iter().position(|&b| b == b'{').ok_or("no object")? + 1;
    let skip_ws = |i: &mut usize| {
        while *i < line.len() && (line[*i] as char).is_ascii_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        match line.get(i) {
            Some(b'}') | None => return Ok(doc),
            Some(b',') => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let (key, next) = json_string(line, i)?;
        i = next;
        skip_ws(&mut i);
        i += 1; // ':'
        skip_ws(&mut i);
        let value = match line.get(i) {
            Some(b'"') => {
                let (v, next) = json_string(line, i)?;
                i = next;
                v
            }
            Some(b'[') => {
                i += 1;
                let mut items = Vec::new();
                loop {
                    skip_ws(&mut i);
                    match line.get(i) {
                        Some(b']') => {
                            i += 1;
                            break;
                        }
                        Some(b',') => i += 1,
                        Some(b'"') => {
                            let (v, next) = json_string(line, i)?;
                            items.push(v);
                            i = next;
                        }
                        _ => return Err(format!("unexpected array item in field {key}")),
                    }
                }
                items.join(",")
            }
            Some(_) => {
                let end = line[i..].iter().position(|&b| b == b',' || b == b'}').map_or(line.len(), |p| i + p);
                let v = String::from_utf8_lossy(&line[i..end]).trim().to_string();
                i = end;
                v
            }
            None => return Err("truncated object".into()),
        };
        doc.push((key, value));
    }
}

fn read_corpus(o: &Options) -> Result<Vec<Doc>, String> {
    let path = o.dir.join("debian-packages.jsonl.zst");
    let mut child = Command::new("zstd")
        .arg("-dc")
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("zstd -dc {}: {e} (is zstd installed?)", path.display()))?;
    let stdout = child.stdout.take().ok_or("zstd gave no output")?;
    let mut docs = Vec::new();
    for (n, line) in BufReader::new(stdout).lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if !line.trim().is_empty() {
            docs.push(parse_doc(line.as_bytes()).map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?);
        }
    }
    child.wait().map_err(|e| e.to_string())?;
    Ok(docs)
}

/// Sends one command and reads its reply (owned, as a tree of strings).
fn call(stream: &mut TcpStream, args: &[&[u8]]) -> Result<Reply, String> {
    let mut out = Vec::new();
    push_command(&mut out, args);
    stream.write_all(&out).map_err(|e| e.to_string())?;
    let mut got = None;
    read_replies(stream, 1, |v| got = Some(own(v)))?;
    got.ok_or_else(|| "no reply".to_string())
}

/// A reply, owned.
#[derive(Debug, Clone)]
enum Reply {
    Int(i64),
    Text(Vec<u8>),
    Error(String),
    List(Vec<Reply>),
    Nil,
}

fn own(v: &Value<'_>) -> Reply {
    match v {
        Value::Integer(i) => Reply::Int(*i),
        Value::Simple(s) | Value::Double(s) | Value::Bulk(Some(s)) => Reply::Text(s.to_vec()),
        Value::Error(e) | Value::BulkError(e) => Reply::Error(String::from_utf8_lossy(e).into_owned()),
        Value::Array(Some(items)) => Reply::List(items.iter().map(own).collect()),
        _ => Reply::Nil,
    }
}

const CREATE: &[&str] = &[
    "FT.CREATE",
    "pkgs",
    "ON",
    "HASH",
    "PREFIX",
    "1",
    "pkg:",
    "SCHEMA",
    "name",
    "TEXT",
    "WEIGHT",
    "2.0",
    "description",
    "TEXT",
    "section",
    "TAG",
    "priority",
    "TAG",
    "tags",
    "TAG",
    "SEPARATOR",
    ",",
    "installed_size",
    "NUMERIC",
    "SORTABLE",
];

fn load(o: &Options, docs: &[Doc]) -> Result<(), String> {
    let mut s = TcpStream::connect(&o.target).map_err(|e| format!("{}: {e}", o.target))?;
    let args: Vec<&[u8]> = CREATE.iter().map(|a| a.as_bytes()).collect();
    if let Reply::Error(e) = call(&mut s, &args)? {
        return Err(format!("FT.CREATE: {e}"));
    }
    let conns = o.connections.max(1);
    let mut parts: Vec<Vec<Vec<u8>>> = (0..conns).map(|_| Vec::new()).collect();
    for (n, d) in docs.iter().enumerate() {
        let id = d.iter().find(|(k, _)| k == "id").map_or("", |(_, v)| v.as_str());
        let key = format!("pkg:{id}");
        let mut args: Vec<&[u8]> = vec![b"HSET", key.as_bytes(), b"name", id.as_bytes()];
        for (k, v) in d.iter().filter(|(k, _)| k != "id") {
            args.push(k.as_bytes());
            args.push(v.as_bytes());
        }
        let mut cmd = Vec::new();
        push_command(&mut cmd, &args);
        parts[n % conns].push(cmd);
    }
    let t = Instant::now();
    let handles: Vec<_> = parts
        .into_iter()
        .map(|p| {
            let target = o.target.clone();
            std::thread::spawn(move || send_all(&target, p))
        })
        .collect();
    let mut errors = 0;
    for h in handles {
        errors += h.join().map_err(|_| "loader thread panicked".to_string())??;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "loaded {} documents in {:.2} s: {:.0} documents/s with the index live ({errors} errors)",
        docs.len(),
        secs,
        docs.len() as f64 / secs
    );
    if let Reply::List(info) = call(&mut s, &[b"FT.INFO", b"pkgs"])? {
        for pair in info.chunks(2) {
            if let [Reply::Text(k), v] = pair {
                if matches!(k.as_slice(), b"num_docs" | b"num_terms" | b"num_records" | b"index_bytes" | b"total_doc_len") {
                    println!("  {}: {v:?}", String::from_utf8_lossy(k));
                }
            }
        }
    }
    Ok(())
}

fn query_args(q: &str) -> Vec<&[u8]> {
    vec![b"FT.SEARCH", b"pkgs", q.as_bytes(), b"NOCONTENT", b"LIMIT", b"0", b"10", b"DIALECT", b"2"]
}

fn json_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn run_queries(o: &Options) -> Result<(), String> {
    let mut text = String::new();
    std::fs::File::open(o.dir.join("dev-queries.txt"))
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| format!("dev-queries.txt: {e}"))?;
    let queries: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut s = TcpStream::connect(&o.target).map_err(|e| format!("{}: {e}", o.target))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    for q in &queries {
        let (hits, ids) = match call(&mut s, &query_args(q))? {
            Reply::List(v) => {
                let hits = match v.first() {
                    Some(Reply::Int(n)) => *n,
                    _ => 0,
                };
                let ids: Vec<String> = v[1..]
                    .iter()
                    .filter_map(|r| {
                        if let Reply::Text(k) = r {
                            Some(String::from_utf8_lossy(k.strip_prefix(b"pkg:").unwrap_or(k)).into_owned())
                        } else {
                            None
                        }
                    })
                    .collect();
                (hits, ids)
            }
            Reply::Error(e) => return Err(format!("query {q:?}: {e}")),
            other => return Err(format!("query {q:?}: unexpected reply {other:?}")),
        };
        let ids: Vec<String> = ids.iter().map(|i| json_escape(i)).collect();
        lines.push(format!("{{\"query\": {}, \"ids\": [{}], \"hits\": {hits}}}", json_escape(q), ids.join(", ")));
    }
    if let Some(out) = &o.out {
        std::fs::write(out, lines.join("\n") + "\n").map_err(|e| format!("{}: {e}", out.display()))?;
        println!("wrote the answers to {}", out.display());
    }
    let mut h = hdrhistogram::Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    for _ in 0..o.rounds {
        for q in &queries {
            let t = Instant::now();
            call(&mut s, &query_args(q))?;
            h.record(t.elapsed().as_nanos() as u64).map_err(|e| e.to_string())?;
        }
    }
    if o.rounds > 0 {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1e6;
        println!(
            "FT.SEARCH top 10 over loopback, {} queries x {} rounds: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            queries.len(),
            o.rounds,
            ms(0.5),
            ms(0.9),
            ms(0.99),
            h.max() as f64 / 1e6
        );
    }
    Ok(())
}

/// Runs the workload.
pub fn run(o: &Options) -> Result<(), String> {
    if o.load {
        let t = Instant::now();
        let docs = read_corpus(o)?;
        println!("read {} documents in {:.1} s", docs.len(), t.elapsed().as_secs_f64());
        load(o, &docs)?;
    }
    run_queries(o)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_corpus_line() {
        let d = parse_doc(br#"{"id": "a\"b", "tags": ["x::y", "z"], "installed_size": 12, "description": "one\ntwo \u00e9\ud83d\ude00"}"#)
            .unwrap();
        assert_eq!(d[0], ("id".into(), "a\"b".into()));
        assert_eq!(d[1], ("tags".into(), "x::y,z".into()));
        assert_eq!(d[2], ("installed_size".into(), "12".into()));
        assert_eq!(d[3], ("description".into(), "one\ntwo é😀".into()));
    }
}
