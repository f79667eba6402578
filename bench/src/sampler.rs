//! What a run looks like while it goes: interval samples and the live
//! progress line.
//!
//! Every client thread records each reply twice: into its own histograms (for
//! the final table) and into a small window that it hands to the shared
//! [`Window`] a few times a second. The main thread drains that window every
//! [`DRAIN`] into the run's running total and the current interval; at each
//! `--report-interval` it turns the interval into a [`Sample`] (ops/s, p50,
//! p99, p99.9, errors and, when the server is on this machine, its RSS from
//! `INFO memory`), and once a second, when stderr is a terminal, it rewrites
//! one progress line (elapsed, ops/s so far, p99 so far). Nothing is printed
//! when stderr is not a terminal (CI, pipes).

use std::io::{IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::client::histogram;
use crate::resp;

/// How often the main thread drains the shared window.
pub const DRAIN: Duration = Duration::from_millis(100);
/// How often a client thread hands its window over.
pub const FLUSH: Duration = Duration::from_millis(100);
/// How often the progress line is rewritten.
const PROGRESS: Duration = Duration::from_secs(1);

/// One interval of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Seconds from the start of the run to the end of the interval.
    pub t: f64,
    /// Replies per second in the interval.
    pub ops_per_sec: f64,
    /// Latency percentiles in the interval, microseconds.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Error replies in the interval.
    pub errors: u64,
    /// The server's `used_memory_rss` at the end of the interval, if asked and answered.
    pub rss_bytes: Option<u64>,
}

/// Latencies handed over by the client threads, not yet drained.
pub struct Window {
    inner: Mutex<(Histogram<u64>, u64)>,
}

impl Window {
    /// An empty window.
    pub fn new() -> Window {
        Window { inner: Mutex::new((histogram(), 0)) }
    }

    /// Moves a thread's latencies and error count into the window and clears them.
    pub fn hand_over(&self, hist: &mut Histogram<u64>, errors: &mut u64) {
        let mut w = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // Same bounds on both sides: adding cannot fail.
        let _ = w.0.add(&*hist);
        w.1 += *errors;
        hist.reset();
        *errors = 0;
    }

    /// Adds the window's contents to each of `into` and clears it; returns the error count.
    fn drain(&self, into: [&mut Histogram<u64>; 2]) -> u64 {
        let mut w = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for h in into {
            let _ = h.add(&w.0);
        }
        w.0.reset();
        std::mem::take(&mut w.1)
    }
}

impl Default for Window {
    fn default() -> Self {
        Window::new()
    }
}

/// Asks a server for its RSS with `INFO memory`.
pub struct RssProbe {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RssProbe {
    /// Opens the probe's own connection when `addr` is on this machine (its RSS means something here).
    pub fn connect(addr: SocketAddr) -> Option<RssProbe> {
        if !addr.ip().is_loopback() {
            return None;
        }
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        Some(RssProbe { stream, buf: Vec::new() })
    }

    /// `used_memory_rss` in bytes, or an error saying why not.
    pub fn rss(&mut self) -> Result<u64, String> {
        self.stream.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nmemory\r\n").map_err(|e| format!("INFO memory: send: {e}"))?;
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some((value, _)) = resp::parse(&self.buf).map_err(|e| format!("INFO memory: {e}"))? {
                return info_field(&value, "used_memory_rss");
            }
            let n = self.stream.read(&mut chunk).map_err(|e| format!("INFO memory: receive: {e}"))?;
            if n == 0 {
                return Err("INFO memory: the server closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// A numeric `name:value` line of an INFO reply.
fn info_field(value: &resp::Value<'_>, name: &str) -> Result<u64, String> {
    let text = match value {
        resp::Value::Bulk(Some(t)) | resp::Value::Verbatim(t) => String::from_utf8_lossy(t),
        other => return Err(format!("INFO memory: unexpected reply {other:?}")),
    };
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')))
        .ok_or_else(|| format!("INFO memory: no {name} line"))?
        .trim()
        .parse::<u64>()
        .map_err(|e| format!("INFO memory: {name}: {e}"))
}

/// The main thread's side while a run goes.
pub struct Sampler {
    window: std::sync::Arc<Window>,
    started: Instant,
    interval: Option<Duration>,
    last_sample: Instant,
    last_progress: Instant,
    /// Every reply so far.
    total: Histogram<u64>,
    /// The replies of the current interval.
    current: Histogram<u64>,
    current_errors: u64,
    probe: Option<RssProbe>,
    progress: bool,
    samples: Vec<Sample>,
}

impl Sampler {
    /// A sampler for a run that starts now; `interval` None takes no samples.
    pub fn new(window: std::sync::Arc<Window>, interval: Option<Duration>, probe: Option<RssProbe>) -> Sampler {
        let now = Instant::now();
        Sampler {
            window,
            started: now,
            interval,
            last_sample: now,
            last_progress: now,
            total: histogram(),
            current: histogram(),
            current_errors: 0,
            probe,
            progress: std::io::stderr().is_terminal(),
            samples: Vec::new(),
        }
    }

    /// Drains, samples and shows progress until `done` says the threads have finished.
    pub fn watch(&mut self, done: impl Fn() -> bool) {
        while !done() {
            std::thread::sleep(DRAIN);
            self.step(Instant::now());
        }
    }

    /// One drain, and a sample and a progress line when their time has come.
    fn step(&mut self, now: Instant) {
        self.drain();
        if self.interval.is_some_and(|i| now.duration_since(self.last_sample) >= i) {
            self.sample(now);
        }
        if self.progress && now.duration_since(self.last_progress) >= PROGRESS {
            self.last_progress = now;
            let line = progress_line(now.duration_since(self.started), &self.total);
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K{line}");
            let _ = err.flush();
        }
    }

    fn drain(&mut self) {
        self.current_errors += self.window.drain([&mut self.total, &mut self.current]);
    }

    /// Closes the current interval.
    fn sample(&mut self, now: Instant) {
        let span = now.duration_since(self.last_sample).as_secs_f64().max(1e-9);
        let q = |h: &Histogram<u64>, p: f64| if h.is_empty() { 0 } else { h.value_at_quantile(p) };
        let rss_bytes = self.probe.as_mut().and_then(|p| p.rss().ok());
        self.samples.push(Sample {
            t: now.duration_since(self.started).as_secs_f64(),
            ops_per_sec: self.current.len() as f64 / span,
            p50: q(&self.current, 0.50),
            p99: q(&self.current, 0.99),
            p999: q(&self.current, 0.999),
            errors: self.current_errors,
            rss_bytes,
        });
        self.current.reset();
        self.current_errors = 0;
        self.last_sample = now;
    }

    /// Takes what the threads handed over last, closes a last interval that
    /// ran at least half its length, clears the progress line, and returns the samples.
    pub fn finish(mut self) -> Vec<Sample> {
        let now = Instant::now();
        self.drain();
        if let Some(i) = self.interval {
            if now.duration_since(self.last_sample) >= i / 2 && !self.current.is_empty() {
                self.sample(now);
            }
        }
        if self.progress {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
        self.samples
    }
}

/// `12 s  45321 ops/s  p99 1.234 ms  (120000 replies)`, over everything so far.
fn progress_line(elapsed: Duration, total: &Histogram<u64>) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let p99 = if total.is_empty() { 0 } else { total.value_at_quantile(0.99) };
    format!("{:>5.0} s  {:>9.0} ops/s  p99 {:.3} ms  ({} replies)", secs, total.len() as f64 / secs, p99 as f64 / 1000.0, total.len())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn info_field_reads_rss() {
        let body = "# Memory\r\nused_memory:100\r\nused_memory_rss:4096\r\n";
        let reply = format!("${}\r\n{body}\r\n", body.len());
        let (v, _) = resp::parse(reply.as_bytes()).unwrap().unwrap();
        assert_eq!(info_field(&v, "used_memory_rss"), Ok(4096));
        assert!(info_field(&v, "used_memory_peak").is_err());
        assert!(info_field(&resp::Value::Integer(1), "used_memory_rss").is_err());
    }

    #[test]
    fn samples_cover_what_the_threads_handed_over() {
        let window = Arc::new(Window::new());
        let mut s = Sampler::new(window.clone(), Some(Duration::from_secs(1)), None);
        s.progress = false;
        let mut h = histogram();
        let mut errors = 2;
        for us in 1..=1000 {
            h.record(us).unwrap();
        }
        window.hand_over(&mut h, &mut errors);
        assert!(h.is_empty() && errors == 0);
        let t0 = s.started;
        s.step(t0 + Duration::from_millis(500));
        assert!(s.samples.is_empty(), "no sample before the interval ends");
        s.step(t0 + Duration::from_millis(1000));
        assert_eq!(s.samples.len(), 1);
        let first = &s.samples[0];
        assert_eq!(first.errors, 2);
        assert!((first.ops_per_sec - 1000.0).abs() < 1e-6);
        assert!(first.p50 >= 499 && first.p50 <= 501, "{first:?}");
        assert!(first.p99 >= 989 && first.p99 <= 991, "{first:?}");
        assert_eq!(first.rss_bytes, None);
        assert_eq!(s.total.len(), 1000);
    }
}
