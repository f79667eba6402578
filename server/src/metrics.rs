//! Prometheus metrics: `GET /metrics` on `--metrics-port`, in text exposition format 0.0.4.
//!
//! Shard 0 runs one small HTTP/1.1 listener ([`serve`]) on the `--bind`
//! address. For each scrape it asks every shard for its figures over the bus
//! ([`crate::dispatch::Msg::Metrics`], answered by [`gather`]), and
//! [`render`] turns them into text: one series per shard with a `shard`
//! label (and a `db` label for key counts), plus a few process-wide gauges.
//! Sums over shards are left to PromQL, as Prometheus prefers. The request
//! line is all that is parsed; every answer closes the connection.
//!
//! Per-command figures come from [`crate::stats`] (counters indexed by the
//! command table's dense index): calls, failures and refusals by `cmd`, and
//! a latency histogram per command whose buckets are read from the shard's
//! HDR histogram at scrape time; errors by `kind` (`ERR`, `WRONGTYPE` ...).

use std::fmt::Write as _;
use std::rc::Rc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use strand_engine::log::latency::Histogram;
use strand_engine::runtime;

use crate::dispatch::{Msg, Shard};
use crate::shard::ShardState;

/// One shard's figures at the moment of a scrape.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ShardMetrics {
    /// Shard index.
    pub shard: usize,
    /// Per command that was called or refused on this shard.
    pub commands: Vec<CommandMetrics>,
    /// Error replies by kind.
    pub errors: Vec<(String, u64)>,
    /// Connections living on this shard now.
    pub connections: u64,
    /// Connections accepted.
    pub connections_received: u64,
    /// Connections refused by maxclients.
    pub connections_rejected: u64,
    /// Keys per database: (db, keys), databases with keys only (db 0 always).
    pub keys: Vec<(usize, u64)>,
    /// Keys removed because their TTL passed.
    pub expired_keys: u64,
    /// Keys evicted by maxmemory.
    pub evicted_keys: u64,
    /// Lookups that found their key.
    pub keyspace_hits: u64,
    /// Lookups that did not.
    pub keyspace_misses: u64,
    /// Dataset bytes accounted on this shard.
    pub used_memory: u64,
    /// This shard's share of maxmemory (0: no limit).
    pub maxmemory: u64,
    /// Log records appended.
    pub log_records: u64,
    /// Bytes written to log segments.
    pub log_written_bytes: u64,
    /// fdatasync calls on the log.
    pub log_fsyncs: u64,
    /// How long they took.
    pub fsync_latency: Histogram,
    /// Log segment files on disk.
    pub log_segments: u64,
    /// Bytes of log segment files on disk.
    pub log_disk_bytes: u64,
    /// Bytes of acknowledged records not yet written.
    pub log_unwritten_bytes: u64,
    /// Checkpoints taken.
    pub checkpoints: u64,
    /// Checkpoints that failed.
    pub checkpoints_failed: u64,
    /// Size of the newest checkpoint file.
    pub checkpoint_bytes: u64,
    /// Command batches sent to other shards.
    pub batches_sent: u64,
    /// Command batches received from other shards.
    pub batches_received: u64,
}

/// One command's figures on one shard.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CommandMetrics {
    /// Its name as INFO commandstats writes it (`get`, `client|list`).
    pub name: &'static str,
    /// Calls that ran.
    pub calls: u64,
    /// Calls that ran and answered an error.
    pub failed: u64,
    /// Calls refused before they ran.
    pub rejected: u64,
    /// Calls at or under each bound of [`COMMAND_BUCKETS`], cumulative.
    pub buckets: Vec<u64>,
    /// Sum of the calls' durations, in seconds.
    pub sum_seconds: f64,
}

/// Upper bounds of the command duration histogram's buckets, in seconds.
pub const COMMAND_BUCKETS: &[f64] =
    &[0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Reads one shard's per-command figures.
fn commands(s: &ShardState) -> Vec<CommandMetrics> {
    let entries = crate::command::table::entries();
    s.cmdstats
        .commands
        .iter()
        .zip(entries)
        .filter(|(c, _)| c.calls > 0 || c.rejected > 0)
        .map(|(c, cmd)| {
            let (buckets, sum_seconds) = match &c.hist {
                Some(h) => {
                    let buckets = COMMAND_BUCKETS.iter().map(|b| h.count_between(0, (b * 1e9) as u64)).collect();
                    (buckets, h.mean() * h.len() as f64 / 1e9)
                }
                None => (vec![0; COMMAND_BUCKETS.len()], 0.0),
            };
            CommandMetrics { name: cmd.name, calls: c.calls, failed: c.failed, rejected: c.rejected, buckets, sum_seconds }
        })
        .collect()
}

/// Figures of the whole process, not of one shard.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ProcessMetrics {
    /// Resident set size in bytes.
    pub resident_memory: u64,
    /// Seconds since start.
    pub uptime_seconds: f64,
}

/// Reads this shard's figures.
pub fn gather(s: &ShardState) -> ShardMetrics {
    let ks = s.ks.stats();
    let log = s.ks.log().map(|l| l.stats()).unwrap_or_default();
    let keys = (0..strand_engine::keyspace::DATABASES).map(|db| (db, s.ks.dbsize(db) as u64)).filter(|&(db, n)| db == 0 || n > 0).collect();
    ShardMetrics {
        shard: s.id,
        commands: commands(s),
        errors: s.cmdstats.errors.iter().map(|(k, n)| (k.clone(), *n)).collect(),
        connections: s.clients.len() as u64,
        connections_received: s.stats.connections,
        connections_rejected: s.stats.rejected,
        keys,
        expired_keys: ks.expired_keys,
        evicted_keys: ks.evicted_keys,
        keyspace_hits: ks.hits,
        keyspace_misses: ks.misses,
        used_memory: s.ks.used_memory() as u64,
        maxmemory: s.ks.limits().budget as u64,
        log_records: log.records,
        log_written_bytes: log.bytes_written,
        log_fsyncs: log.fsyncs,
        fsync_latency: log.fsync_latency,
        log_segments: log.segments_on_disk,
        log_disk_bytes: s.ks.log().map_or(0, |l| l.disk_bytes()),
        log_unwritten_bytes: s.ks.log().map_or(0, |l| l.stats().unwritten),
        checkpoints: s.checkpoints.taken,
        checkpoints_failed: s.checkpoints.failed,
        checkpoint_bytes: s.checkpoints.bytes,
        batches_sent: s.stats.sent_batches,
        batches_received: s.stats.remote_batches,
    }
}

/// This process's figures.
pub fn process(s: &ShardState) -> ProcessMetrics {
    ProcessMetrics { resident_memory: crate::info::rss_bytes(), uptime_seconds: s.shared.started.elapsed().as_secs_f64() }
}

/// Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A per-shard family: name, type, help, and how to read it from one shard.
type Family = (&'static str, Kind, &'static str, fn(&ShardMetrics) -> u64);

/// Every per-shard family with one series per shard, in output order.
const SHARD_FAMILIES: &[Family] = &[
    ("strand_connections", Kind::Gauge, "Client connections living on the shard.", |m| m.connections),
    ("strand_connections_received_total", Kind::Counter, "Client connections accepted by the shard.", |m| m.connections_received),
    ("strand_connections_rejected_total", Kind::Counter, "Client connections refused by maxclients.", |m| m.connections_rejected),
    ("strand_expired_keys_total", Kind::Counter, "Keys removed because their TTL passed.", |m| m.expired_keys),
    ("strand_evicted_keys_total", Kind::Counter, "Keys evicted to stay under maxmemory.", |m| m.evicted_keys),
    ("strand_keyspace_hits_total", Kind::Counter, "Key lookups that found the key.", |m| m.keyspace_hits),
    ("strand_keyspace_misses_total", Kind::Counter, "Key lookups that did not find the key.", |m| m.keyspace_misses),
    ("strand_used_memory_bytes", Kind::Gauge, "Dataset memory accounted on the shard.", |m| m.used_memory),
    ("strand_maxmemory_bytes", Kind::Gauge, "The shard's share of maxmemory (0: no limit).", |m| m.maxmemory),
    ("strand_log_records_total", Kind::Counter, "Records appended to the shard's log.", |m| m.log_records),
    ("strand_log_written_bytes_total", Kind::Counter, "Bytes written to the shard's log segments, padding included.", |m| {
        m.log_written_bytes
    }),
    ("strand_log_fsyncs_total", Kind::Counter, "fdatasync calls completed on the shard's log.", |m| m.log_fsyncs),
    ("strand_log_segments", Kind::Gauge, "Log segment files on disk.", |m| m.log_segments),
    ("strand_log_disk_bytes", Kind::Gauge, "Bytes of log segment files on disk.", |m| m.log_disk_bytes),
    ("strand_log_unwritten_bytes", Kind::Gauge, "Bytes of records appended and not yet written.", |m| m.log_unwritten_bytes),
    ("strand_checkpoints_total", Kind::Counter, "Checkpoints taken since start.", |m| m.checkpoints),
    ("strand_checkpoints_failed_total", Kind::Counter, "Checkpoints that failed since start.", |m| m.checkpoints_failed),
    ("strand_checkpoint_bytes", Kind::Gauge, "Size of the newest checkpoint file.", |m| m.checkpoint_bytes),
    ("strand_cross_shard_batches_sent_total", Kind::Counter, "Command batches sent to other shards.", |m| m.batches_sent),
    ("strand_cross_shard_batches_received_total", Kind::Counter, "Command batches received from other shards.", |m| m.batches_received),
];

/// Escapes a label value: backslash, double quote and line feed.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: Kind, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {}", kind.name());
}

/// A sample line; `labels` are (name, value) pairs, escaped here.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))).collect();
        let _ = write!(out, "{{{}}}", inner.join(","));
    }
    let _ = writeln!(out, " {value}");
}

/// The exposition text for the shards' figures and the process's.
pub fn render(shards: &[ShardMetrics], proc: &ProcessMetrics) -> String {
    let mut out = String::new();
    render_commands(&mut out, shards);
    for &(name, kind, help, get) in SHARD_FAMILIES {
        header(&mut out, name, kind, help);
        for m in shards {
            sample(&mut out, name, &[("shard", &m.shard.to_string())], get(m));
        }
    }
    header(&mut out, "strand_keys", Kind::Gauge, "Keys in each database of the shard.");
    for m in shards {
        for (db, n) in &m.keys {
            sample(&mut out, "strand_keys", &[("shard", &m.shard.to_string()), ("db", &db.to_string())], n);
        }
    }
    histogram(&mut out, FSYNC, "Time of each fdatasync of the shard's log.", shards, |m| &m.fsync_latency);
    header(&mut out, "strand_resident_memory_bytes", Kind::Gauge, "Resident set size of the process.");
    sample(&mut out, "strand_resident_memory_bytes", &[], proc.resident_memory);
    header(&mut out, "strand_uptime_seconds", Kind::Gauge, "Seconds since the process started.");
    sample(&mut out, "strand_uptime_seconds", &[], format_args!("{:.3}", proc.uptime_seconds));
    out
}

/// Per command: calls, failures, refusals and the duration histogram; errors by kind.
fn render_commands(out: &mut String, shards: &[ShardMetrics]) {
    type Get = fn(&CommandMetrics) -> u64;
    let counters: [(&str, &str, Get); 3] = [
        ("strand_commands_total", "Commands that ran, by command (INFO commandstats calls).", |c| c.calls),
        ("strand_command_failed_total", "Commands that ran and answered an error, by command.", |c| c.failed),
        ("strand_command_rejected_total", "Commands refused before they ran (arity, auth, CROSSSLOT, OOM), by command.", |c| c.rejected),
    ];
    for (name, help, get) in counters {
        header(out, name, Kind::Counter, help);
        for m in shards {
            let shard = m.shard.to_string();
            for c in &m.commands {
                sample(out, name, &[("shard", &shard), ("cmd", c.name)], get(c));
            }
        }
    }
    let name = "strand_command_duration_seconds";
    header(out, name, Kind::Histogram, "Time of each command on its shard, by command.");
    let (bucket, sum, count) = (format!("{name}_bucket"), format!("{name}_sum"), format!("{name}_count"));
    for m in shards {
        let shard = m.shard.to_string();
        for c in &m.commands {
            for (le, n) in COMMAND_BUCKETS.iter().zip(&c.buckets) {
                sample(out, &bucket, &[("shard", &shard), ("cmd", c.name), ("le", &le.to_string())], n);
            }
            sample(out, &bucket, &[("shard", &shard), ("cmd", c.name), ("le", "+Inf")], c.calls);
            sample(out, &sum, &[("shard", &shard), ("cmd", c.name)], c.sum_seconds);
            sample(out, &count, &[("shard", &shard), ("cmd", c.name)], c.calls);
        }
    }
    header(out, "strand_errors_total", Kind::Counter, "Error replies by kind (the first word: ERR, WRONGTYPE ...).");
    for m in shards {
        let shard = m.shard.to_string();
        for (kind, n) in &m.errors {
            sample(out, "strand_errors_total", &[("shard", &shard), ("kind", kind)], n);
        }
    }
}

/// Name of the fsync latency histogram.
const FSYNC: &str = "strand_log_fsync_duration_seconds";

/// A histogram family: per shard, cumulative `_bucket` series by `le`, then `_sum` and `_count`.
fn histogram(out: &mut String, name: &str, help: &str, shards: &[ShardMetrics], get: fn(&ShardMetrics) -> &Histogram) {
    header(out, name, Kind::Histogram, help);
    let (bucket, sum, count) = (format!("{name}_bucket"), format!("{name}_sum"), format!("{name}_count"));
    for m in shards {
        let (h, shard) = (get(m), m.shard.to_string());
        for (le, n) in h.cumulative() {
            sample(out, &bucket, &[("shard", &shard), ("le", &le.to_string())], n);
        }
        sample(out, &bucket, &[("shard", &shard), ("le", "+Inf")], h.count());
        sample(out, &sum, &[("shard", &shard)], h.sum_seconds());
        sample(out, &count, &[("shard", &shard)], h.count());
    }
}

/// Every shard's figures, in shard order: this one's read here, the others' over the bus.
pub async fn collect(shard: &Rc<Shard>) -> Vec<ShardMetrics> {
    let mut waits = Vec::new();
    for to in (0..shard.outbox.shards()).filter(|&to| to != shard.id) {
        let (tx, rx) = futures::channel::oneshot::channel();
        shard.outbox.send(to, Msg::Metrics { reply: tx }).await;
        waits.push(rx);
    }
    let mut all = vec![gather(&shard.state.borrow())];
    for rx in waits {
        // A shard that stopped before it answered is left out of this scrape.
        if let Ok(m) = rx.await {
            all.push(m);
        }
    }
    all.sort_by_key(|m| m.shard);
    all
}

/// What a request line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (a query string is ignored).
    Metrics,
    /// Any other path.
    NotFound,
    /// A method other than GET or HEAD.
    BadMethod,
    /// Not an HTTP request line.
    BadRequest,
}

/// Parses an HTTP/1.x request line such as `GET /metrics HTTP/1.1`.
pub fn route(line: &str) -> Route {
    let mut parts = line.split_ascii_whitespace();
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    if method != "GET" && method != "HEAD" {
        return Route::BadMethod;
    }
    match target.split('?').next() {
        Some("/metrics") => Route::Metrics,
        _ => Route::NotFound,
    }
}

/// The full HTTP response: status line, headers, and `body` unless `head_only`.
pub fn response(status: &str, content_type: &str, body: &str, head_only: bool) -> Vec<u8> {
    let mut out =
        format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
            .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Content type of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Largest request head read; anything longer is answered 400.
const MAX_HEAD: usize = 8192;

/// Reads up to the end of the request head (or [`MAX_HEAD`] bytes, or EOF) and returns the request line.
async fn request_line(stream: &mut runtime::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_HEAD {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let end = buf.iter().position(|&b| b == b'\n')?;
    String::from_utf8(buf[..end].to_vec()).ok().map(|l| l.trim_end_matches('\r').to_string())
}

/// Answers one HTTP connection.
async fn answer(shard: Rc<Shard>, mut stream: runtime::TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let line = request_line(&mut stream).await.unwrap_or_default();
    let head_only = line.starts_with("HEAD ");
    let reply = match route(&line) {
        Route::Metrics => {
            let shards = collect(&shard).await;
            let proc = process(&shard.state.borrow());
            response("200 OK", CONTENT_TYPE, &render(&shards, &proc), head_only)
        }
        Route::NotFound => response("404 Not Found", "text/plain", "not found: try /metrics\n", head_only),
        Route::BadMethod => response("405 Method Not Allowed", "text/plain", "only GET and HEAD\n", false),
        Route::BadRequest => response("400 Bad Request", "text/plain", "bad request\n", false),
    };
    let _ = stream.write_all(&reply).await;
    let _ = stream.close().await;
}

/// Binds the metrics listener on `bind:port`.
pub fn bind(bind: &str, port: u16) -> Result<runtime::TcpListener, String> {
    runtime::TcpListener::bind((bind, port)).map_err(|e| format!("cannot listen for metrics on {bind}:{port}: {e}"))
}

/// Accepts scrapes until the process stops.
pub async fn serve(shard: Rc<Shard>, listener: runtime::TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => runtime::spawn(answer(shard.clone(), stream)),
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                runtime::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn one() -> ShardMetrics {
        let get = CommandMetrics {
            name: "get",
            calls: 7,
            failed: 1,
            rejected: 0,
            buckets: vec![7; COMMAND_BUCKETS.len()],
            sum_seconds: 0.000035,
        };
        ShardMetrics {
            shard: 1,
            commands: vec![get],
            errors: vec![("WRONGTYPE".into(), 1)],
            keys: vec![(0, 3), (2, 1)],
            log_fsyncs: 2,
            ..ShardMetrics::default()
        }
    }

    #[test]
    fn exact_lines_for_a_small_input() {
        let text = render(&[one()], &ProcessMetrics { resident_memory: 4096, uptime_seconds: 1.5 });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            &lines[..3],
            [
                "# HELP strand_commands_total Commands that ran, by command (INFO commandstats calls).",
                "# TYPE strand_commands_total counter",
                "strand_commands_total{shard=\"1\",cmd=\"get\"} 7"
            ]
        );
        assert!(lines.contains(&"strand_command_failed_total{shard=\"1\",cmd=\"get\"} 1"));
        assert!(lines.contains(&"strand_command_duration_seconds_bucket{shard=\"1\",cmd=\"get\",le=\"0.00001\"} 7"));
        assert!(lines.contains(&"strand_command_duration_seconds_bucket{shard=\"1\",cmd=\"get\",le=\"+Inf\"} 7"));
        assert!(lines.contains(&"strand_command_duration_seconds_count{shard=\"1\",cmd=\"get\"} 7"));
        assert!(lines.contains(&"strand_errors_total{shard=\"1\",kind=\"WRONGTYPE\"} 1"));
        assert!(lines.contains(&"strand_log_fsyncs_total{shard=\"1\"} 2"));
        assert!(lines.contains(&"strand_keys{shard=\"1\",db=\"0\"} 3"));
        assert!(lines.contains(&"strand_keys{shard=\"1\",db=\"2\"} 1"));
        assert!(lines.contains(&"strand_resident_memory_bytes 4096"));
        assert!(lines.contains(&"strand_uptime_seconds 1.500"));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn fsync_histogram_is_cumulative_with_inf_sum_and_count() {
        let mut m = one();
        m.fsync_latency.record(Duration::from_micros(80));
        m.fsync_latency.record(Duration::from_secs(2));
        let text = render(&[m], &ProcessMetrics::default());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.contains(&"# TYPE strand_log_fsync_duration_seconds histogram"));
        assert!(lines.contains(&"strand_log_fsync_duration_seconds_bucket{shard=\"1\",le=\"0.00005\"} 0"));
        assert!(lines.contains(&"strand_log_fsync_duration_seconds_bucket{shard=\"1\",le=\"0.0001\"} 1"));
        assert!(lines.contains(&"strand_log_fsync_duration_seconds_bucket{shard=\"1\",le=\"1\"} 1"));
        assert!(lines.contains(&"strand_log_fsync_duration_seconds_bucket{shard=\"1\",le=\"+Inf\"} 2"));
        assert!(lines.contains(&"strand_log_fsync_duration_seconds_sum{shard=\"1\"} 2.00008"));
        assert!(lines.contains(&"strand_log_fsync_duration_seconds_count{shard=\"1\"} 2"));
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        let mut out = String::new();
        sample(&mut out, "m", &[("l", "q\"")], 1);
        assert_eq!(out, "m{l=\"q\\\"\"} 1\n");
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let text = render(&[one(), ShardMetrics { shard: 0, ..ShardMetrics::default() }], &ProcessMetrics::default());
        let mut typed: Vec<(String, String)> = Vec::new();
        let mut helped: Vec<String> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                helped.push(rest.split(' ').next().unwrap().to_string());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                typed.push((name.to_string(), kind.to_string()));
            } else {
                let series = line.split(['{', ' ']).next().unwrap();
                let name = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| series.strip_suffix(s))
                    .filter(|n| n == &FSYNC || n == &"strand_command_duration_seconds")
                    .unwrap_or(series);
                assert_eq!(typed.last().map(|t| t.0.as_str()), Some(name), "{line}: sample outside its family");
                assert_eq!(helped.last().map(String::as_str), Some(name));
            }
        }
        // The fixed families, plus strand_keys, the fsync histogram, RSS, uptime, and the five per-command families.
        assert_eq!(typed.len(), SHARD_FAMILIES.len() + 4 + 5);
        for (name, kind) in &typed {
            assert_eq!(name.ends_with("_total"), kind == "counter", "{name} is a {kind}");
        }
    }

    #[test]
    fn routes_request_lines() {
        assert_eq!(route("GET /metrics HTTP/1.1"), Route::Metrics);
        assert_eq!(route("GET /metrics?x=1 HTTP/1.0"), Route::Metrics);
        assert_eq!(route("HEAD /metrics HTTP/1.1"), Route::Metrics);
        assert_eq!(route("GET /other HTTP/1.1"), Route::NotFound);
        assert_eq!(route("POST /metrics HTTP/1.1"), Route::BadMethod);
        assert_eq!(route("GET /metrics"), Route::BadRequest);
        assert_eq!(route(""), Route::BadRequest);
    }

    #[test]
    fn response_has_length_and_closes() {
        let r = String::from_utf8(response("200 OK", CONTENT_TYPE, "a 1\n", false)).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(r.contains("Content-Type: text/plain; version=0.0.4"));
        assert!(r.contains("Content-Length: 4\r\n"));
        assert!(r.contains("Connection: close\r\n"));
        assert!(r.ends_with("\r\n\r\na 1\n"));
    }
}
