//! `strand-bench`: a RESP load generator for strand, Redis or anything that
//! speaks RESP.
//!
//! Design: every connection is opened up front (so connection errors show
//! before the clock starts), then split over `--threads` OS threads. A thread
//! drives its connections in rounds: it sends one pipeline batch on each of
//! its connections, then reads every reply of every batch. Sockets stay
//! blocking; a batch is written with `MSG_DONTWAIT` and, whenever the socket
//! is full, the replies that have arrived are taken in first, so a large
//! pipeline can never deadlock against a server that stops reading while its
//! replies go unread. A request's latency is the time from the start of
//! sending its batch to the read that completed its reply, recorded in an
//! HDR histogram per command (microseconds).
//!
//! Modules (inline for now, each a file once it grows): [`resp`] (the reply
//! parser), [`workload`] (which commands to send), [`client`] (the
//! connections and the threads), [`report`] (results, tables, JSON);
//! `keys` chooses key numbers (uniform or Zipfian); `sampler` takes the
//! interval samples and draws the live progress line; `chart` is the
//! `report` subcommand (an SVG chart of --json files);
//! `tsload` is the `--tsdata` time-series loader; `searchload` the
//! `--search-data` full-text loader and query runner.
//!
//! `--compare HOST:PORT` runs the same workload (same seed) against a second
//! server right after the first and prints both side by side.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

mod chart;
mod keys;
mod sampler;
mod searchload;
mod tsload;

/// Command-line flags.
#[derive(Parser, Debug, Clone)]
#[command(name = "strand-bench", version, about = "RESP load generator: latency percentiles and throughput per command")]
struct Args {
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(short = 'p', long, default_value_t = 6379)]
    port: u16,
    /// Connections, spread evenly over the threads.
    #[arg(short = 'c', long, default_value_t = 50)]
    connections: usize,
    /// Client threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Requests per batch on each connection (1: no pipelining).
    #[arg(short = 'P', long, default_value_t = 1)]
    pipeline: usize,
    /// Total requests over all connections (ignored with --duration).
    #[arg(short = 'n', long, default_value_t = 100_000)]
    requests: u64,
    /// Run for this many seconds instead of a request count.
    #[arg(long)]
    duration: Option<f64>,
    /// Number of distinct keys (`key:NNNNNNNNNNNN`).
    #[arg(long, default_value_t = 10_000)]
    keyspace: u64,
    /// How keys are chosen: `uniform`, or `zipfian` (key 0 hottest; YCSB's request distribution).
    #[arg(long, default_value = "uniform", value_parser = keys::Pattern::parse)]
    key_pattern: keys::Pattern,
    /// The exponent of --key-pattern zipfian (YCSB's default).
    #[arg(long, default_value_t = 0.99)]
    zipf_exponent: f64,
    /// Seconds per interval sample (ops/s, p50/p99/p99.9, errors, the server's RSS when it is
    /// on this machine), written to --json under each run's "intervals"; 0: no samples.
    #[arg(long, default_value_t = 1.0)]
    report_interval: f64,
    /// Value size of SET in bytes.
    #[arg(short = 'd', long, default_value_t = 64)]
    data_size: usize,
    /// SET:GET ratio.
    #[arg(long, default_value = "1:10", value_parser = workload::Ratio::parse)]
    ratio: workload::Ratio,
    /// Seed of the key and command choice (the same for both runs of --compare).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run the same workload against this second server (HOST:PORT) and compare.
    #[arg(long)]
    compare: Option<String>,
    /// `kv` (SET/GET), `queue` (QPUSH, QPOP, QACK) or `stream` (XADD, XREADGROUP, XACK).
    #[arg(long, default_value = "kv")]
    workload: String,
    /// queue/stream: messages in all.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// queue/stream: producer connections.
    #[arg(long, default_value_t = 4)]
    producers: usize,
    /// queue/stream: consumer connections.
    #[arg(long, default_value_t = 4)]
    consumers: usize,
    /// queue/stream: most messages per pop (acknowledged in one command).
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// queue/stream: messages per second over all producers (0: unpaced).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// The `timeseries` workload: load this VictoriaMetrics JSON-lines export
    /// (`.zst` read through `zstd -dc`) with TS.CREATE + TS.MADD, then report
    /// samples/s and bytes per sample; --connections senders.
    #[arg(long)]
    tsdata: Option<PathBuf>,
    /// With --tsdata: samples of each series per TS.MADD command.
    #[arg(long, default_value_t = 10)]
    ts_window: usize,
    /// With --tsdata: series per TS.MADD command.
    #[arg(long, default_value_t = 200)]
    ts_series: usize,
    /// With --tsdata: the server's data directory, to measure its checkpoint after SAVE.
    #[arg(long)]
    ts_data_dir: Option<PathBuf>,
    /// With --tsdata: TS.RANGE calls timed over a day of 1-second samples (0: none).
    #[arg(long, default_value_t = 200)]
    ts_range_runs: usize,
    /// The `search` workload: the corpus folder (../shared/data/search); loads it and runs its queries.
    #[arg(long)]
    search_data: Option<PathBuf>,
    /// With --search-data: write the queries' ids and hit counts here (JSON lines, for overlap_md.py).
    #[arg(long)]
    search_out: Option<PathBuf>,
    /// With --search-data: timed rounds over the query list.
    #[arg(long, default_value_t = 20)]
    search_rounds: usize,
    /// With --search-data: do not load; query the index already there.
    #[arg(long)]
    search_no_load: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Subcommands; without one, strand-bench runs a load.
#[derive(clap::Subcommand, Debug, Clone)]
enum Command {
    /// Draws the runs of --json result files as one SVG chart: throughput, latency
    /// percentiles and, where the runs have interval samples, p99 and RSS over time.
    Report {
        /// --json files written by strand-bench.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// The SVG file to write.
        #[arg(long, default_value = "strand-bench.svg")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run_main(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("strand-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_main(args: &Args) -> Result<ExitCode, String> {
    if let Some(Command::Report { inputs, out }) = &args.command {
        chart::render(inputs, out)?;
        println!("wrote {}", out.display());
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(dir) = &args.search_data {
        searchload::run(&searchload::Options {
            dir: dir.clone(),
            target: format!("{}:{}", args.host, args.port),
            connections: args.connections,
            out: args.search_out.clone(),
            rounds: args.search_rounds,
            load: !args.search_no_load,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(path) = &args.tsdata {
        tsload::run(&tsload::Options {
            path: path.clone(),
            target: format!("{}:{}", args.host, args.port),
            connections: args.connections,
            window: args.ts_window,
            series_per_command: args.ts_series,
            data_dir: args.ts_data_dir.clone(),
            range_runs: args.ts_range_runs,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.connections == 0 || args.threads == 0 || args.pipeline == 0 {
        return Err("--connections, --threads and --pipeline must be at least 1".into());
    }
    let interval = match args.report_interval {
        0.0 => None,
        s if s > 0.0 && s.is_finite() => Some(Duration::from_secs_f64(s)),
        _ => return Err("--report-interval must be 0 or a positive number of seconds".into()),
    };
    let duration = match args.duration {
        Some(s) if !(s > 0.0 && s.is_finite()) => return Err("--duration must be a positive number of seconds".into()),
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => None,
    };
    let mut targets = vec![format!("{}:{}", args.host, args.port)];
    if let Some(other) = &args.compare {
        if other.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).is_none() {
            return Err(format!("--compare {other}: expected HOST:PORT"));
        }
        targets.push(other.clone());
    }
    if args.workload != "kv" {
        return run_messages(args, &targets);
    }
    let cfg = client::Config {
        connections: args.connections,
        threads: args.threads.min(args.connections),
        pipeline: args.pipeline,
        requests: if duration.is_some() { None } else { Some(args.requests) },
        duration,
        seed: args.seed,
    };
    let keys = keys::Keys::new(args.key_pattern, args.keyspace, args.zipf_exponent)?;
    let workload = workload::Workload::new(args.ratio, keys, args.data_size);
    println!("{}", report::describe(&cfg, &workload));
    let mut runs = Vec::new();
    for target in &targets {
        let run = client::run(target, &cfg, &workload, interval)?;
        print!("{}", report::table(&run));
        runs.push(run);
    }
    if let [a, b] = runs.as_slice() {
        print!("{}", report::compare(a, b));
    }
    if let Some(path) = &args.json {
        let text = report::json(&cfg, &workload, &runs);
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let failed = runs.iter().any(|r| !r.io_errors.is_empty());
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The `queue` and `stream` workloads: one line per target, and their ratio.
fn run_messages(args: &Args, targets: &[String]) -> Result<ExitCode, String> {
    let flavor = match args.workload.as_str() {
        "queue" => queue::Flavor::Queue,
        "stream" => queue::Flavor::Stream,
        other => return Err(format!("--workload {other}: expected kv, queue or stream")),
    };
    if args.producers == 0 || args.consumers == 0 || args.messages == 0 {
        return Err("--producers, --consumers and --messages must be at least 1".into());
    }
    let cfg = queue::Config {
        messages: args.messages,
        producers: args.producers,
        consumers: args.consumers,
        pipeline: args.pipeline,
        batch: args.batch,
        data_size: args.data_size,
        rate: args.rate,
    };
    println!(
        "{} workload: {} messages of {} bytes, {} producers (pipeline {}), {} consumers (batch {})",
        flavor.name(),
        cfg.messages,
        cfg.data_size,
        cfg.producers,
        cfg.pipeline,
        cfg.consumers,
        cfg.batch
    );
    let mut rates = Vec::new();
    for target in targets {
        let o = queue::run(target, flavor, &cfg)?;
        println!("{}", queue::line(target, flavor, &o));
        rates.push(o.rate);
    }
    if let [a, b] = rates.as_slice() {
        println!("ratio (first / second): {:.2}", a / b);
    }
    Ok(ExitCode::SUCCESS)
}

mod queue;

/// Parsing RESP2 and RESP3 replies.
pub mod resp {
    use std::fmt;

    /// One reply, borrowing from the read buffer.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value<'a> {
        /// `+text`
        Simple(&'a [u8]),
        /// `-ERR text`
        Error(&'a [u8]),
        /// `:123`
        Integer(i64),
        /// `$n` (None: the RESP2 null bulk `$-1`)
        Bulk(Option<&'a [u8]>),
        /// `*n` (None: the RESP2 null array `*-1`)
        Array(Option<Vec<Value<'a>>>),
        /// RESP3 `_`
        Null,
        /// RESP3 `,` (the text)
        Double(&'a [u8]),
        /// RESP3 `#t` / `#f`
        Boolean(bool),
        /// RESP3 `(` (the digits)
        BigNumber(&'a [u8]),
        /// RESP3 `=` (with its `txt:` prefix)
        Verbatim(&'a [u8]),
        /// RESP3 `!`
        BulkError(&'a [u8]),
        /// RESP3 `%`
        Map(Vec<(Value<'a>, Value<'a>)>),
        /// RESP3 `~`
        Set(Vec<Value<'a>>),
        /// RESP3 `>`
        Push(Vec<Value<'a>>),
    }

    impl<'a> Value<'a> {
        /// The message of an error reply.
        pub fn error_message(&self) -> Option<&'a [u8]> {
            match self {
                Value::Error(m) | Value::BulkError(m) => Some(m),
                _ => None,
            }
        }
    }

    /// A reply that is not valid RESP.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ParseError(pub String);

    impl fmt::Display for ParseError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "protocol error in reply: {}", self.0)
        }
    }

    impl std::error::Error for ParseError {}

    const MAX_DEPTH: usize = 128;

    /// Parses one reply from the start of `buf`: `Ok(None)` if it is not
    /// complete yet, else the reply and how many bytes it took.
    pub fn parse(buf: &[u8]) -> Result<Option<(Value<'_>, usize)>, ParseError> {
        value(buf, 0, 0)
    }

    fn err<T>(what: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError(what.into()))
    }

    /// The line starting at `pos` without its CRLF, and the position after it.
    fn line(buf: &[u8], pos: usize) -> Result<Option<(&[u8], usize)>, ParseError> {
        let rest = buf.get(pos..).unwrap_or(&[]);
        let Some(rel) = rest.iter().position(|&b| b == b'\n') else { return Ok(None) };
        if rel == 0 || rest[rel - 1] != b'\r' {
            return err(format!("line at byte {pos} not terminated by CRLF"));
        }
        Ok(Some((&rest[..rel - 1], pos + rel + 1)))
    }

    fn int(text: &[u8]) -> Result<i64, ParseError> {
        let s = std::str::from_utf8(text).map_err(|_| ParseError("non-ASCII number".into()))?;
        s.parse::<i64>().map_err(|_| ParseError(format!("bad number {s:?}")))
    }

    fn count(text: &[u8], what: &str) -> Result<usize, ParseError> {
        let n = int(text)?;
        usize::try_from(n).map_err(|_| ParseError(format!("negative {what} {n}")))
    }

    fn value(buf: &[u8], pos: usize, depth: usize) -> Result<Option<(Value<'_>, usize)>, ParseError> {
        if depth > MAX_DEPTH {
            return err("replies nested too deep");
        }
        let Some(&tag) = buf.get(pos) else { return Ok(None) };
        let Some((text, next)) = line(buf, pos + 1)? else { return Ok(None) };
        let v = match tag {
            b'+' => (Value::Simple(text), next),
            b'-' => (Value::Error(text), next),
            b':' => (Value::Integer(int(text)?), next),
            b'_' if text.is_empty() => (Value::Null, next),
            b',' => (Value::Double(text), next),
            b'#' => match text {
                b"t" => (Value::Boolean(true), next),
                b"f" => (Value::Boolean(false), next),
                _ => return err("bad boolean"),
            },
            b'(' => (Value::BigNumber(text), next),
            b'$' | b'=' | b'!' => {
                if tag == b'$' && text == b"-1" {
                    return Ok(Some((Value::Bulk(None), next)));
                }
                let len = count(text, "bulk length")?;
                let end = next.checked_add(len).ok_or_else(|| ParseError("bulk length overflows".into()))?;
                if buf.len() < end + 2 {
                    return Ok(None);
                }
                if &buf[end..end + 2] != b"\r\n" {
                    return err(format!("bulk of {len} bytes at byte {pos} not followed by CRLF"));
                }
                let body = &buf[next..end];
                let v = match tag {
                    b'$' => Value::Bulk(Some(body)),
                    b'=' => Value::Verbatim(body),
                    _ => Value::BulkError(body),
                };
                (v, end + 2)
            }
            b'*' | b'~' | b'>' => {
                if tag == b'*' && text == b"-1" {
                    return Ok(Some((Value::Array(None), next)));
                }
                let n = count(text, "aggregate length")?;
                let mut items = Vec::with_capacity(n.min(1024));
                let mut p = next;
                for _ in 0..n {
                    let Some((v, after)) = value(buf, p, depth + 1)? else { return Ok(None) };
                    items.push(v);
                    p = after;
                }
                let v = match tag {
                    b'*' => Value::Array(Some(items)),
                    b'~' => Value::Set(items),
                    _ => Value::Push(items),
                };
                (v, p)
            }
            b'%' | b'|' => {
                let n = count(text, "map length")?;
                let mut pairs = Vec::with_capacity(n.min(1024));
                let mut p = next;
                for _ in 0..n {
                    let Some((k, after)) = value(buf, p, depth + 1)? else { return Ok(None) };
                    let Some((v, after)) = value(buf, after, depth + 1)? else { return Ok(None) };
                    pairs.push((k, v));
                    p = after;
                }
                if tag == b'|' {
                    // Attributes annotate the reply that follows: return that one.
                    return value(buf, p, depth + 1);
                }
                (Value::Map(pairs), p)
            }
            other => return err(format!("unknown reply type byte 0x{other:02x} at byte {pos}")),
        };
        Ok(Some(v))
    }

    #[cfg(test)]
    #[allow(clippy::unwrap_used)]
    mod tests {
        use super::*;

        fn one(buf: &[u8]) -> Value<'_> {
            let (v, used) = parse(buf).unwrap().unwrap();
            assert_eq!(used, buf.len(), "{:?}", String::from_utf8_lossy(buf));
            v
        }

        #[test]
        fn resp2_types() {
            assert_eq!(one(b"+OK\r\n"), Value::Simple(b"OK"));
            assert_eq!(one(b"-ERR wrong type\r\n"), Value::Error(b"ERR wrong type"));
            assert_eq!(one(b"-ERR x\r\n").error_message(), Some(&b"ERR x"[..]));
            assert_eq!(one(b":-42\r\n"), Value::Integer(-42));
            assert_eq!(one(b"$3\r\nfoo\r\n"), Value::Bulk(Some(b"foo")));
            assert_eq!(one(b"$0\r\n\r\n"), Value::Bulk(Some(b"")));
            assert_eq!(one(b"$4\r\na\r\nb\r\n"), Value::Bulk(Some(b"a\r\nb")));
            assert_eq!(one(b"$-1\r\n"), Value::Bulk(None));
            assert_eq!(one(b"*-1\r\n"), Value::Array(None));
            assert_eq!(one(b"*0\r\n"), Value::Array(Some(vec![])));
            assert_eq!(
                one(b"*3\r\n:1\r\n$-1\r\n*1\r\n+x\r\n"),
                Value::Array(Some(vec![Value::Integer(1), Value::Bulk(None), Value::Array(Some(vec![Value::Simple(b"x")]))]))
            );
        }

        #[test]
        fn resp3_types() {
            assert_eq!(one(b"_\r\n"), Value::Null);
            assert_eq!(one(b",3.5\r\n"), Value::Double(b"3.5"));
            assert_eq!(one(b"#t\r\n"), Value::Boolean(true));
            assert_eq!(one(b"(123456789012345678901234567890\r\n"), Value::BigNumber(b"123456789012345678901234567890"));
            assert_eq!(one(b"=7\r\ntxt:abc\r\n"), Value::Verbatim(b"txt:abc"));
            assert_eq!(one(b"!5\r\nERR x\r\n").error_message(), Some(&b"ERR x"[..]));
            assert_eq!(one(b"%1\r\n+a\r\n:1\r\n"), Value::Map(vec![(Value::Simple(b"a"), Value::Integer(1))]));
            assert_eq!(one(b"~1\r\n#f\r\n"), Value::Set(vec![Value::Boolean(false)]));
            assert_eq!(one(b">1\r\n+m\r\n"), Value::Push(vec![Value::Simple(b"m")]));
            assert_eq!(one(b"|1\r\n+ttl\r\n:3\r\n+OK\r\n"), Value::Simple(b"OK"));
        }

        #[test]
        fn incomplete_replies_wait_for_more() {
            let full: &[u8] = b"*2\r\n$5\r\nhello\r\n:7\r\n";
            for cut in 0..full.len() {
                assert_eq!(parse(&full[..cut]).unwrap(), None, "cut at {cut}");
            }
            assert!(parse(full).unwrap().is_some());
        }

        #[test]
        fn several_replies_in_one_buffer() {
            let buf: &[u8] = b"+OK\r\n$2\r\nhi\r\n-ERR no\r\n$-1\r\n";
            let mut pos = 0;
            let mut seen = Vec::new();
            while let Some((v, used)) = parse(&buf[pos..]).unwrap() {
                seen.push(v);
                pos += used;
            }
            assert_eq!(pos, buf.len());
            assert_eq!(seen, vec![Value::Simple(b"OK"), Value::Bulk(Some(b"hi")), Value::Error(b"ERR no"), Value::Bulk(None)]);
        }

        #[test]
        fn malformed_replies_are_errors() {
            assert!(parse(b"?x\r\n").is_err());
            assert!(parse(b"+OK\n").is_err());
            assert!(parse(b":12a\r\n").is_err());
            assert!(parse(b"$3\r\nfooXY").is_err());
            assert!(parse(b"$-2\r\n").is_err());
            assert!(parse(b"*-5\r\n").is_err());
            assert!(parse(b"#x\r\n").is_err());
            let deep = "*1\r\n".repeat(200) + ":1\r\n";
            assert!(parse(deep.as_bytes()).is_err());
        }
    }
}

/// What the clients send.
pub mod workload {
    use rand::rngs::StdRng;
    use rand::Rng;

    use crate::keys::Keys;

    /// The commands a workload is made of.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Kind {
        /// `SET key value`
        Set,
        /// `GET key`
        Get,
    }

    impl Kind {
        /// Every kind, in report order.
        pub const ALL: [Kind; 2] = [Kind::Set, Kind::Get];

        /// The command name.
        pub fn name(self) -> &'static str {
            match self {
                Kind::Set => "SET",
                Kind::Get => "GET",
            }
        }

        /// Position in [`Kind::ALL`].
        pub fn index(self) -> usize {
            self as usize
        }
    }

    /// SET:GET weights.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Ratio {
        /// Weight of SET.
        pub set: u32,
        /// Weight of GET.
        pub get: u32,
    }

    impl Ratio {
        /// Parses `SET:GET`, e.g. `1:10`.
        pub fn parse(s: &str) -> Result<Ratio, String> {
            let (a, b) = s.split_once(':').ok_or_else(|| format!("{s:?}: expected SET:GET, e.g. 1:10"))?;
            let set = a.trim().parse::<u32>().map_err(|e| format!("{a:?}: {e}"))?;
            let get = b.trim().parse::<u32>().map_err(|e| format!("{b:?}: {e}"))?;
            if set.checked_add(get).unwrap_or(0) == 0 {
                return Err(format!("{s:?}: at least one weight must be positive"));
            }
            Ok(Ratio { set, get })
        }
    }

    impl std::fmt::Display for Ratio {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}:{}", self.set, self.get)
        }
    }

    /// Digits of a key's number: `key:` plus these make the key.
    const KEY_DIGITS: usize = 12;

    /// The request mix and its pre-encoded pieces.
    #[derive(Debug, Clone)]
    pub struct Workload {
        /// SET:GET weights.
        pub ratio: Ratio,
        /// Distinct keys and how they are chosen.
        pub keys: Keys,
        /// SET value size.
        pub data_size: usize,
        /// `$<size>\r\n<value>\r\n`
        set_value: Vec<u8>,
        digits: usize,
    }

    impl Workload {
        /// A workload; keys are `key:` and at least 12 digits.
        pub fn new(ratio: Ratio, keys: Keys, data_size: usize) -> Workload {
            let mut set_value = format!("${data_size}\r\n").into_bytes();
            set_value.resize(set_value.len() + data_size, b'x');
            set_value.extend_from_slice(b"\r\n");
            let digits = KEY_DIGITS.max(keys.keyspace.saturating_sub(1).to_string().len());
            Workload { ratio, keys, data_size, set_value, digits }
        }

        /// Appends one request to `out`, chosen at random; returns its kind.
        pub fn push_request(&self, rng: &mut StdRng, out: &mut Vec<u8>) -> Kind {
            let total = self.ratio.set + self.ratio.get;
            let kind = if rng.gen_range(0..total) < self.ratio.set { Kind::Set } else { Kind::Get };
            let key = self.keys.next(rng);
            match kind {
                Kind::Set => out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n"),
                Kind::Get => out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n"),
            }
            self.push_key(key, out);
            if kind == Kind::Set {
                out.extend_from_slice(&self.set_value);
            }
            kind
        }

        /// Appends `$len\r\nkey:NNN…\r\n`.
        fn push_key(&self, mut n: u64, out: &mut Vec<u8>) {
            out.push(b'$');
            out.extend_from_slice((4 + self.digits).to_string().as_bytes());
            out.extend_from_slice(b"\r\nkey:");
            let start = out.len();
            out.resize(start + self.digits, b'0');
            for d in out[start..].iter_mut().rev() {
                *d = b'0' + (n % 10) as u8;
                n /= 10;
            }
            out.extend_from_slice(b"\r\n");
        }
    }

    #[cfg(test)]
    #[allow(clippy::unwrap_used)]
    mod tests {
        use super::*;
        use rand::SeedableRng;

        #[test]
        fn requests_are_well_formed() {
            let keys = Keys::new(crate::keys::Pattern::Uniform, 1000, 0.99).unwrap();
            let w = Workload::new(Ratio::parse("1:1").unwrap(), keys, 5);
            let mut rng = StdRng::seed_from_u64(3);
            let (mut sets, mut gets) = (0, 0);
            for _ in 0..200 {
                let mut out = Vec::new();
                match w.push_request(&mut rng, &mut out) {
                    Kind::Set => {
                        sets += 1;
                        let s = String::from_utf8(out).unwrap();
                        assert!(s.starts_with("*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000"), "{s:?}");
                        assert!(s.ends_with("\r\n$5\r\nxxxxx\r\n"), "{s:?}");
                    }
                    Kind::Get => {
                        gets += 1;
                        assert_eq!(out.len(), "*2\r\n$3\r\nGET\r\n$16\r\nkey:000000000123\r\n".len());
                    }
                }
            }
            assert!(sets > 50 && gets > 50);
        }

        #[test]
        fn ratios() {
            assert_eq!(Ratio::parse("1:10").unwrap(), Ratio { set: 1, get: 10 });
            assert_eq!(Ratio::parse("0:1").unwrap(), Ratio { set: 0, get: 1 });
            assert!(Ratio::parse("0:0").is_err());
            assert!(Ratio::parse("1").is_err());
            assert!(Ratio::parse("a:b").is_err());
        }
    }
}

/// Connections, threads and the measurement loop.
pub mod client {
    use std::io;
    use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
    use std::os::fd::{AsRawFd, RawFd};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Barrier};
    use std::time::{Duration, Instant};

    use hdrhistogram::Histogram;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use crate::report::Run;
    use crate::resp;
    use crate::sampler::{RssProbe, Sampler, Window, FLUSH};
    use crate::workload::{Kind, Workload};

    /// How to run the load.
    #[derive(Debug, Clone)]
    pub struct Config {
        /// Connections in all.
        pub connections: usize,
        /// Threads (at most one per connection).
        pub threads: usize,
        /// Requests per batch.
        pub pipeline: usize,
        /// Total requests, or None to run for `duration`.
        pub requests: Option<u64>,
        /// How long to run when `requests` is None.
        pub duration: Option<Duration>,
        /// RNG seed.
        pub seed: u64,
    }

    /// A latency histogram in microseconds, from 1 µs to an hour.
    pub fn histogram() -> Histogram<u64> {
        match Histogram::new_with_bounds(1, 3_600_000_000, 3) {
            Ok(h) => h,
            Err(e) => unreachable!("constant histogram bounds are valid: {e}"),
        }
    }

    /// What one thread measured.
    pub struct Stats {
        /// Latency per [`Kind`].
        pub hist: Vec<Histogram<u64>>,
        /// Error replies per [`Kind`].
        pub errors: Vec<u64>,
        /// The first error reply per [`Kind`].
        pub first_error: Vec<Option<String>>,
        /// Connection failures.
        pub io_errors: Vec<String>,
        /// Every kind's latencies since the last hand-over to the sampler.
        pub window: Histogram<u64>,
        /// Error replies since the last hand-over.
        pub window_errors: u64,
    }

    impl Stats {
        /// Empty stats.
        pub fn new() -> Stats {
            let n = Kind::ALL.len();
            Stats {
                hist: (0..n).map(|_| histogram()).collect(),
                errors: vec![0; n],
                first_error: vec![None; n],
                io_errors: Vec::new(),
                window: histogram(),
                window_errors: 0,
            }
        }

        /// Counts one reply of `kind` that took `micros`; `error` is its message if it was an error reply.
        pub fn record(&mut self, kind: Kind, micros: u64, error: Option<&[u8]>) {
            let i = kind.index();
            self.hist[i].saturating_record(micros.max(1));
            self.window.saturating_record(micros.max(1));
            if let Some(msg) = error {
                self.errors[i] += 1;
                self.window_errors += 1;
                if self.first_error[i].is_none() {
                    self.first_error[i] = Some(String::from_utf8_lossy(&msg[..msg.len().min(200)]).into_owned());
                }
            }
        }

        /// Adds another thread's stats.
        pub fn merge(&mut self, other: Stats) {
            for (i, h) in other.hist.iter().enumerate() {
                // Same bounds on both sides: adding cannot fail.
                let _ = self.hist[i].add(h);
                self.errors[i] += other.errors[i];
            }
            for (mine, theirs) in self.first_error.iter_mut().zip(other.first_error) {
                if mine.is_none() {
                    *mine = theirs;
                }
            }
            self.io_errors.extend(other.io_errors);
        }
    }

    impl Default for Stats {
        fn default() -> Self {
            Stats::new()
        }
    }

    /// Hands out requests to the connections.
    struct Budget {
        issued: AtomicU64,
        total: Option<u64>,
    }

    impl Budget {
        /// Claims up to `want` requests; 0 when the total is used up.
        fn claim(&self, want: usize) -> usize {
            let Some(total) = self.total else { return want };
            let before = self.issued.fetch_add(want as u64, Ordering::Relaxed);
            total.saturating_sub(before).min(want as u64) as usize
        }
    }

    /// One connection and its buffers.
    struct Conn {
        stream: TcpStream,
        fd: RawFd,
        rbuf: Vec<u8>,
        start: usize,
        end: usize,
        wbuf: Vec<u8>,
        /// The kinds of the requests in the current batch, in order.
        kinds: Vec<Kind>,
        /// How many replies of the batch have arrived.
        replied: usize,
        sent_at: Instant,
    }

    const READ_CHUNK: usize = 64 * 1024;

    impl Conn {
        fn new(stream: TcpStream) -> Conn {
            let fd = stream.as_raw_fd();
            Conn {
                stream,
                fd,
                rbuf: vec![0; READ_CHUNK],
                start: 0,
                end: 0,
                wbuf: Vec::new(),
                kinds: Vec::new(),
                replied: 0,
                sent_at: Instant::now(),
            }
        }

        fn outstanding(&self) -> bool {
            self.replied < self.kinds.len()
        }

        /// Writes the batch in `wbuf`; if the socket fills up, takes in replies meanwhile.
        fn send(&mut self, stats: &mut Stats) -> io::Result<()> {
            let mut off = 0;
            while off < self.wbuf.len() {
                let rest = &self.wbuf[off..];
                // SAFETY: `fd` is the open socket owned by `self.stream`; the pointer and
                // length describe the initialized bytes of `rest`.
                let n = unsafe { libc::send(self.fd, rest.as_ptr().cast(), rest.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
                if n > 0 {
                    off += n as usize;
                    continue;
                }
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => {}
                    _ => return Err(e),
                }
                // The send buffer is full: the server may be waiting for us to read.
                if self.fill(false)? {
                    self.consume(Instant::now(), stats)?;
                } else {
                    wait(self.fd, libc::POLLIN | libc::POLLOUT)?;
                }
            }
            Ok(())
        }

        /// Reads until every reply of the batch has arrived.
        fn receive(&mut self, stats: &mut Stats) -> io::Result<()> {
            while self.outstanding() {
                self.fill(true)?;
                self.consume(Instant::now(), stats)?;
            }
            Ok(())
        }

        /// One read into the buffer (blocking, or not). Returns whether bytes arrived.
        fn fill(&mut self, block: bool) -> io::Result<bool> {
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            } else if self.end == self.rbuf.len() {
                if self.start > 0 {
                    self.rbuf.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                } else {
                    self.rbuf.resize(self.rbuf.len() * 2, 0);
                }
            }
            let room = &mut self.rbuf[self.end..];
            let flags = if block { 0 } else { libc::MSG_DONTWAIT };
            loop {
                // SAFETY: `fd` is the open socket owned by `self.stream`; `room` is a
                // writable slice of the given length.
                let n = unsafe { libc::recv(self.fd, room.as_mut_ptr().cast(), room.len(), flags) };
                if n > 0 {
                    self.end += n as usize;
                    return Ok(true);
                }
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection"));
                }
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock if !block => return Ok(false),
                    _ => return Err(e),
                }
            }
        }

        /// Takes every complete reply out of the buffer, timing each as read at `now`.
        fn consume(&mut self, now: Instant, stats: &mut Stats) -> io::Result<()> {
            while self.start < self.end {
                let parsed = resp::parse(&self.rbuf[self.start..self.end]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let Some((value, used)) = parsed else { break };
                let Some(&kind) = self.kinds.get(self.replied) else {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "a reply arrived for no request"));
                };
                let micros = now.duration_since(self.sent_at).as_micros() as u64;
                stats.record(kind, micros, value.error_message());
                self.start += used;
                self.replied += 1;
            }
            Ok(())
        }
    }

    impl std::fmt::Debug for Conn {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Conn({:?})", self.stream.peer_addr().ok())
        }
    }

    /// Blocks until the socket is ready for `events`.
    fn wait(fd: RawFd, events: libc::c_short) -> io::Result<()> {
        let mut p = libc::pollfd { fd, events, revents: 0 };
        loop {
            // SAFETY: one valid pollfd for the duration of the call.
            let r = unsafe { libc::poll(&mut p, 1, -1) };
            if r >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Opens `n` connections to `addr` (named `target` in errors).
    fn connect(target: &str, addr: SocketAddr, n: usize) -> Result<Vec<Conn>, String> {
        let mut conns = Vec::with_capacity(n);
        for i in 0..n {
            let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                .map_err(|e| format!("connect to {target} (connection {} of {n}; over about 1000, see `ulimit -n`): {e}", i + 1))?;
            stream.set_nodelay(true).map_err(|e| format!("{target}: set TCP_NODELAY: {e}"))?;
            conns.push(Conn::new(stream));
        }
        Ok(conns)
    }

    /// What every client thread shares.
    struct Shared {
        budget: Budget,
        barrier: Barrier,
        window: Arc<Window>,
    }

    /// Runs the workload against `target` (HOST:PORT), sampling every `interval` if given.
    pub fn run(target: &str, cfg: &Config, workload: &Workload, interval: Option<Duration>) -> Result<Run, String> {
        let addr = target.to_socket_addrs().map_err(|e| format!("{target}: {e}"))?.next().ok_or_else(|| format!("{target}: no address"))?;
        let conns = connect(target, addr, cfg.connections)?;
        let threads = cfg.threads.clamp(1, cfg.connections);
        let mut groups: Vec<Vec<Conn>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, c) in conns.into_iter().enumerate() {
            groups[i % threads].push(c);
        }
        let probe = interval.and_then(|_| RssProbe::connect(addr));
        let shared = Arc::new(Shared {
            budget: Budget { issued: AtomicU64::new(0), total: cfg.requests },
            barrier: Barrier::new(threads + 1),
            window: Arc::new(Window::new()),
        });
        let mut handles = Vec::with_capacity(threads);
        for (t, group) in groups.into_iter().enumerate() {
            let shared = shared.clone();
            let workload = workload.clone();
            let cfg = cfg.clone();
            let seed = cfg.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(t as u64);
            let h = std::thread::Builder::new()
                .name(format!("bench-{t}"))
                .spawn(move || drive(group, &workload, &shared, &cfg, seed))
                .map_err(|e| format!("spawn thread: {e}"))?;
            handles.push(h);
        }
        shared.barrier.wait();
        let started = Instant::now();
        let mut sampler = Sampler::new(shared.window.clone(), interval, probe);
        sampler.watch(|| handles.iter().all(|h| h.is_finished()));
        let mut stats = Stats::new();
        for h in handles {
            match h.join() {
                Ok(s) => stats.merge(s),
                Err(_) => stats.io_errors.push("a client thread panicked".into()),
            }
        }
        let elapsed = started.elapsed();
        Ok(Run::new(target.to_string(), elapsed, stats, sampler.finish()))
    }

    /// One thread: rounds of "send a batch on every connection, then read every reply".
    fn drive(mut conns: Vec<Conn>, workload: &Workload, shared: &Shared, cfg: &Config, seed: u64) -> Stats {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut stats = Stats::new();
        let mut active = vec![true; conns.len()];
        shared.barrier.wait();
        let deadline = cfg.duration.map(|d| Instant::now() + d);
        let mut next_flush = Instant::now() + FLUSH;
        loop {
            let now = Instant::now();
            if now >= next_flush {
                shared.window.hand_over(&mut stats.window, &mut stats.window_errors);
                next_flush = now + FLUSH;
            }
            if deadline.is_some_and(|d| now >= d) {
                break;
            }
            match round(&mut conns, &mut active, workload, &shared.budget, cfg.pipeline, &mut rng, &mut stats) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    stats.io_errors.push(e);
                    break;
                }
            }
        }
        shared.window.hand_over(&mut stats.window, &mut stats.window_errors);
        stats
    }

    /// One round: a batch on every live connection, then every reply.
    /// `Ok(false)` when no connection had requests left.
    fn round(
        conns: &mut [Conn],
        active: &mut [bool],
        workload: &Workload,
        budget: &Budget,
        pipeline: usize,
        rng: &mut StdRng,
        stats: &mut Stats,
    ) -> Result<bool, String> {
        let mut any = false;
        for (c, live) in conns.iter_mut().zip(active.iter_mut()) {
            if !*live {
                continue;
            }
            let n = budget.claim(pipeline);
            if n == 0 {
                *live = false;
                continue;
            }
            c.wbuf.clear();
            c.kinds.clear();
            c.replied = 0;
            for _ in 0..n {
                let kind = workload.push_request(rng, &mut c.wbuf);
                c.kinds.push(kind);
            }
            c.sent_at = Instant::now();
            c.send(stats).map_err(|e| format!("{c:?}: send: {e}"))?;
            any = true;
        }
        if !any {
            return Ok(false);
        }
        for (c, live) in conns.iter_mut().zip(active.iter()) {
            if *live {
                c.receive(stats).map_err(|e| format!("{c:?}: receive: {e}"))?;
            }
        }
        Ok(true)
    }
}

/// Results: the tables and the JSON file.
pub mod report {
    use std::fmt::Write as _;
    use std::time::Duration;

    use hdrhistogram::Histogram;

    use crate::client::{histogram, Config, Stats};
    use crate::keys::Pattern;
    use crate::sampler::Sample;
    use crate::workload::{Kind, Workload};

    /// The figures of one command (or of all).
    #[derive(Debug, Clone)]
    pub struct Figures {
        /// `SET`, `GET` or `total`.
        pub name: String,
        /// Replies received.
        pub requests: u64,
        /// Error replies.
        pub errors: u64,
        /// The first error reply, if any.
        pub first_error: Option<String>,
        /// Replies per second of wall time.
        pub ops_per_sec: f64,
        /// Latency percentiles and maximum, microseconds.
        pub p50: u64,
        /// 90th percentile.
        pub p90: u64,
        /// 99th percentile.
        pub p99: u64,
        /// 99.9th percentile.
        pub p999: u64,
        /// Slowest.
        pub max: u64,
        /// Mean, microseconds.
        pub mean: f64,
    }

    impl Figures {
        fn new(name: &str, h: &Histogram<u64>, errors: u64, first_error: Option<String>, elapsed: Duration) -> Figures {
            let secs = elapsed.as_secs_f64().max(1e-9);
            let q = |p: f64| if h.is_empty() { 0 } else { h.value_at_quantile(p) };
            Figures {
                name: name.to_string(),
                requests: h.len(),
                errors,
                first_error,
                ops_per_sec: h.len() as f64 / secs,
                p50: q(0.50),
                p90: q(0.90),
                p99: q(0.99),
                p999: q(0.999),
                max: h.max(),
                mean: if h.is_empty() { 0.0 } else { h.mean() },
            }
        }
    }

    /// One run against one server.
    #[derive(Debug, Clone)]
    pub struct Run {
        /// HOST:PORT.
        pub target: String,
        /// Wall time from start to the last reply.
        pub elapsed: Duration,
        /// Per command, in [`Kind::ALL`] order (commands not sent left out).
        pub commands: Vec<Figures>,
        /// Every command together.
        pub total: Figures,
        /// Connection failures.
        pub io_errors: Vec<String>,
        /// One sample per `--report-interval`, oldest first.
        pub samples: Vec<Sample>,
    }

    impl Run {
        /// Summarizes merged stats.
        pub fn new(target: String, elapsed: Duration, stats: Stats, samples: Vec<Sample>) -> Run {
            let mut all = histogram();
            let mut commands = Vec::new();
            let mut errors = 0;
            let mut first = None;
            for kind in Kind::ALL {
                let i = kind.index();
                let h = &stats.hist[i];
                let _ = all.add(h);
                errors += stats.errors[i];
                if first.is_none() {
                    first.clone_from(&stats.first_error[i]);
                }
                if !h.is_empty() {
                    commands.push(Figures::new(kind.name(), h, stats.errors[i], stats.first_error[i].clone(), elapsed));
                }
            }
            let total = Figures::new("total", &all, errors, first, elapsed);
            Run { target, elapsed, commands, total, io_errors: stats.io_errors, samples }
        }

        fn rows(&self) -> impl Iterator<Item = &Figures> {
            self.commands.iter().chain(std::iter::once(&self.total))
        }
    }

    fn ms(us: u64) -> String {
        format!("{:.3}", us as f64 / 1000.0)
    }

    /// The settings line printed before the runs.
    pub fn describe(cfg: &Config, w: &Workload) -> String {
        let amount = match (cfg.requests, cfg.duration) {
            (Some(n), _) => format!("{n} requests"),
            (None, Some(d)) => format!("{:.1} s", d.as_secs_f64()),
            (None, None) => "unbounded".into(),
        };
        format!(
            "strand-bench: {amount}, {} connections on {} threads, pipeline {}, keyspace {} ({}), {}-byte values, SET:GET {}",
            cfg.connections,
            cfg.threads,
            cfg.pipeline,
            w.keys.keyspace,
            key_pattern(w),
            w.data_size,
            w.ratio
        )
    }

    /// `uniform` or `zipfian 0.99`.
    fn key_pattern(w: &Workload) -> String {
        match w.keys.pattern {
            Pattern::Uniform => "uniform".into(),
            Pattern::Zipfian => format!("zipfian {}", w.keys.exponent),
        }
    }

    /// The result table of one run.
    pub fn table(run: &Run) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "\n== {}: {} requests in {:.3} s", run.target, run.total.requests, run.elapsed.as_secs_f64());
        let _ = writeln!(
            s,
            "{:<8} {:>10} {:>8} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "command", "requests", "errors", "ops/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
        );
        for f in run.rows() {
            let _ = writeln!(
                s,
                "{:<8} {:>10} {:>8} {:>12.0} {:>9} {:>9} {:>9} {:>9} {:>9}",
                f.name,
                f.requests,
                f.errors,
                f.ops_per_sec,
                ms(f.p50),
                ms(f.p90),
                ms(f.p99),
                ms(f.p999),
                ms(f.max)
            );
        }
        for f in &run.commands {
            if let Some(e) = &f.first_error {
                let _ = writeln!(s, "{} errors: {} (first: {e})", f.name, f.errors);
            }
        }
        for e in &run.io_errors {
            let _ = writeln!(s, "connection error: {e}");
        }
        s
    }

    /// Two runs side by side, with the ratio first / second.
    pub fn compare(a: &Run, b: &Run) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "\n== comparison (ratio = first / second)");
        let _ = writeln!(s, "{:<16} {:>18} {:>18} {:>8}", "", a.target, b.target, "ratio");
        let ratio = |x: f64, y: f64| if y > 0.0 { format!("{:.2}", x / y) } else { "-".into() };
        for fa in a.rows() {
            let Some(fb) = b.rows().find(|f| f.name == fa.name) else { continue };
            let _ = writeln!(
                s,
                "{:<16} {:>18.0} {:>18.0} {:>8}",
                format!("{} ops/s", fa.name),
                fa.ops_per_sec,
                fb.ops_per_sec,
                ratio(fa.ops_per_sec, fb.ops_per_sec)
            );
            for (label, x, y) in [
                ("p50", fa.p50, fb.p50),
                ("p90", fa.p90, fb.p90),
                ("p99", fa.p99, fb.p99),
                ("p99.9", fa.p999, fb.p999),
                ("max", fa.max, fb.max),
            ] {
                let _ =
                    writeln!(s, "{:<16} {:>18} {:>18} {:>8}", format!("{} {label} ms", fa.name), ms(x), ms(y), ratio(x as f64, y as f64));
            }
            if fa.errors + fb.errors > 0 {
                let _ = writeln!(s, "{:<16} {:>18} {:>18}", format!("{} errors", fa.name), fa.errors, fb.errors);
            }
        }
        s
    }

    fn json_str(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    fn json_figures(f: &Figures, out: &mut String) {
        let _ = write!(
            out,
            "{{\"requests\":{},\"errors\":{},\"ops_per_sec\":{:.1},\"latency_us\":{{\"p50\":{},\"p90\":{},\"p99\":{},\"p99_9\":{},\"max\":{},\"mean\":{:.1}}},\"first_error\":",
            f.requests, f.errors, f.ops_per_sec, f.p50, f.p90, f.p99, f.p999, f.max, f.mean
        );
        match &f.first_error {
            Some(e) => json_str(e, out),
            None => out.push_str("null"),
        }
        out.push('}');
    }

    /// One interval sample: `{"t":1.0,"ops_per_sec":…,"latency_us":{"p50":…,"p99":…,"p99_9":…},"errors":0,"rss_bytes":…|null}`.
    fn json_sample(x: &Sample, out: &mut String) {
        let rss = x.rss_bytes.map_or("null".into(), |b| b.to_string());
        let _ = write!(
            out,
            "{{\"t\":{:.3},\"ops_per_sec\":{:.1},\"latency_us\":{{\"p50\":{},\"p99\":{},\"p99_9\":{}}},\"errors\":{},\"rss_bytes\":{rss}}}",
            x.t, x.ops_per_sec, x.p50, x.p99, x.p999, x.errors
        );
    }

    /// Every run as a JSON document.
    pub fn json(cfg: &Config, w: &Workload, runs: &[Run]) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "{{\"config\":{{\"connections\":{},\"threads\":{},\"pipeline\":{},\"requests\":{},\"duration_s\":{},\"keyspace\":{},\"key_pattern\":\"{}\",\"zipf_exponent\":{},\"data_size\":{},\"ratio\":\"{}\",\"seed\":{}}},\"runs\":[",
            cfg.connections,
            cfg.threads,
            cfg.pipeline,
            cfg.requests.map_or("null".into(), |n| n.to_string()),
            cfg.duration.map_or("null".into(), |d| format!("{:.3}", d.as_secs_f64())),
            w.keys.keyspace,
            w.keys.pattern.name(),
            w.keys.exponent,
            w.data_size,
            w.ratio,
            cfg.seed
        );
        for (i, run) in runs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"target\":");
            json_str(&run.target, &mut out);
            let _ = write!(out, ",\"elapsed_s\":{:.6},\"commands\":{{", run.elapsed.as_secs_f64());
            for (j, f) in run.commands.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                json_str(&f.name, &mut out);
                out.push(':');
                json_figures(f, &mut out);
            }
            out.push_str("},\"total\":");
            json_figures(&run.total, &mut out);
            out.push_str(",\"io_errors\":[");
            for (j, e) in run.io_errors.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                json_str(e, &mut out);
            }
            out.push_str("],\"intervals\":[");
            for (j, sample) in run.samples.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                json_sample(sample, &mut out);
            }
            out.push_str("]}");
        }
        out.push_str("]}\n");
        out
    }
}
