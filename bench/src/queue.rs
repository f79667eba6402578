//! The `queue` and `stream` workloads: producers push messages, consumers
//! pop them and acknowledge them, and the end-to-end latency of each
//! message (push sent to pop received) goes into an HDR histogram.
//!
//! `queue` speaks strand's reliable queue (QPUSH, QPOP ... BLOCK, QACK);
//! `stream` speaks Redis Streams (XADD, XREADGROUP ... BLOCK, XACK), so the
//! same pattern runs on redis-server. Each message carries the Unix
//! microsecond it was sent at, so the consumer can time it. Every
//! connection is a plain blocking socket: producers keep `--pipeline`
//! pushes in flight, consumers pop up to `--batch` at a time and ack them
//! in one command.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use crate::resp::{self, Value};

/// Which commands carry the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// QPUSH, QPOP, QACK.
    Queue,
    /// XADD, XREADGROUP, XACK.
    Stream,
}

impl Flavor {
    /// The workload's name.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Queue => "queue",
            Flavor::Stream => "stream",
        }
    }
}

/// The shape of a run.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Messages in all.
    pub messages: u64,
    /// Producer connections.
    pub producers: usize,
    /// Consumer connections.
    pub consumers: usize,
    /// Pushes in flight per producer.
    pub pipeline: usize,
    /// Most messages per pop.
    pub batch: usize,
    /// Payload bytes.
    pub data_size: usize,
    /// Messages per second over all producers (0: as fast as they go). The
    /// latency of a saturated queue is its backlog; pace it to see delivery.
    pub rate: u64,
}

/// What a run measured.
pub struct Outcome {
    /// Messages pushed, popped and acknowledged per second.
    pub rate: f64,
    /// Push-to-pop latency in microseconds.
    pub latency: Histogram<u64>,
    /// Wall time.
    pub elapsed: Duration,
}

const KEY: &str = "strand-bench:queue";

/// A blocking RESP connection.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// A reply, owned.
#[derive(Debug, Clone, PartialEq)]
enum Reply {
    Int(i64),
    Bytes(Vec<u8>),
    Nil,
    List(Vec<Reply>),
    Error(String),
}

fn own(v: &Value<'_>) -> Reply {
    match v {
        Value::Integer(n) => Reply::Int(*n),
        Value::Simple(b) | Value::Bulk(Some(b)) | Value::Double(b) | Value::BigNumber(b) | Value::Verbatim(b) => Reply::Bytes(b.to_vec()),
        Value::Error(m) | Value::BulkError(m) => Reply::Error(String::from_utf8_lossy(m).into_owned()),
        Value::Bulk(None) | Value::Array(None) | Value::Null => Reply::Nil,
        Value::Boolean(b) => Reply::Int(*b as i64),
        Value::Array(Some(items)) | Value::Set(items) | Value::Push(items) => Reply::List(items.iter().map(own).collect()),
        Value::Map(pairs) => Reply::List(pairs.iter().flat_map(|(k, v)| [own(k), own(v)]).collect()),
    }
}

impl Conn {
    fn open(target: &str) -> Result<Conn, String> {
        let stream = TcpStream::connect(target).map_err(|e| format!("connect {target}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Conn { stream, buf: vec![0; 1 << 16], start: 0, end: 0 })
    }

    fn send(&mut self, args: &[&[u8]]) -> Result<(), String> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&out).map_err(|e| format!("send: {e}"))
    }

    fn read(&mut self) -> Result<Reply, String> {
        loop {
            if let Some((v, used)) = resp::parse(&self.buf[self.start..self.end]).map_err(|e| e.to_string())? {
                let r = own(&v);
                self.start += used;
                return Ok(r);
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = self.stream.read(&mut self.buf[self.end..]).map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("server closed the connection".into());
            }
            self.end += n;
        }
    }

    fn call(&mut self, args: &[&[u8]]) -> Result<Reply, String> {
        self.send(args)?;
        match self.read()? {
            Reply::Error(e) => Err(format!("{}: {e}", String::from_utf8_lossy(args[0]))),
            r => Ok(r),
        }
    }
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The payload: the send time in microseconds, then padding to `size`.
fn payload(size: usize) -> Vec<u8> {
    let mut p = format!("{:020}|", now_us()).into_bytes();
    p.resize(size.max(p.len()), b'x');
    p
}

fn sent_at(payload: &[u8]) -> Option<u64> {
    std::str::from_utf8(payload.get(..20)?).ok()?.parse().ok()
}

/// Runs the pattern against `target` (HOST:PORT).
pub fn run(target: &str, flavor: Flavor, cfg: &Config) -> Result<Outcome, String> {
    let mut admin = Conn::open(target)?;
    admin.call(&[b"DEL", KEY.as_bytes()])?;
    if flavor == Flavor::Stream {
        admin.call(&[b"XGROUP", b"CREATE", KEY.as_bytes(), b"g", b"$", b"MKSTREAM"])?;
    }
    let consumed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let consumers: Vec<_> = (0..cfg.consumers)
        .map(|i| {
            let (target, consumed, cfg) = (target.to_string(), consumed.clone(), *cfg);
            std::thread::spawn(move || consume(&target, flavor, &cfg, i, &consumed))
        })
        .collect();
    let producers: Vec<_> = (0..cfg.producers)
        .map(|i| {
            let (target, cfg) = (target.to_string(), *cfg);
            let share = cfg.messages / cfg.producers as u64 + u64::from((i as u64) < cfg.messages % cfg.producers as u64);
            std::thread::spawn(move || produce(&target, flavor, &cfg, share))
        })
        .collect();
    for p in producers {
        p.join().map_err(|_| "a producer panicked".to_string())??;
    }
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
    for c in consumers {
        let h = c.join().map_err(|_| "a consumer panicked".to_string())??;
        latency.add(&h).map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed();
    admin.call(&[b"DEL", KEY.as_bytes()])?;
    Ok(Outcome { rate: cfg.messages as f64 / elapsed.as_secs_f64(), latency, elapsed })
}

fn produce(target: &str, flavor: Flavor, cfg: &Config, count: u64) -> Result<(), String> {
    let mut c = Conn::open(target)?;
    let mut left = count;
    let per_producer = cfg.rate as f64 / cfg.producers as f64;
    let (start, mut sent) = (Instant::now(), 0u64);
    while left > 0 {
        let n = left.min(cfg.pipeline.max(1) as u64);
        if per_producer > 0.0 {
            let due = start + Duration::from_secs_f64(sent as f64 / per_producer);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        sent += n;
        for _ in 0..n {
            let p = payload(cfg.data_size);
            match flavor {
                Flavor::Queue => c.send(&[b"QPUSH", KEY.as_bytes(), &p])?,
                Flavor::Stream => c.send(&[b"XADD", KEY.as_bytes(), b"*", b"m", &p])?,
            }
        }
        for _ in 0..n {
            if let Reply::Error(e) = c.read()? {
                return Err(format!("push: {e}"));
            }
        }
        left -= n;
    }
    Ok(())
}

fn consume(target: &str, flavor: Flavor, cfg: &Config, index: usize, consumed: &AtomicU64) -> Result<Histogram<u64>, String> {
    let mut c = Conn::open(target)?;
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
    let name = format!("c{index}");
    let batch = cfg.batch.max(1).to_string();
    while consumed.load(Ordering::Relaxed) < cfg.messages {
        let got = match flavor {
            Flavor::Queue => c.call(&[b"QPOP", KEY.as_bytes(), b"COUNT", batch.as_bytes(), b"BLOCK", b"100"])?,
            Flavor::Stream => c.call(&[
                b"XREADGROUP",
                b"GROUP",
                b"g",
                name.as_bytes(),
                b"COUNT",
                batch.as_bytes(),
                b"BLOCK",
                b"100",
                b"STREAMS",
                KEY.as_bytes(),
                b">",
            ])?,
        };
        let received = now_us();
        let messages = match (flavor, got) {
            (_, Reply::Nil) => continue,
            (Flavor::Queue, Reply::List(msgs)) => msgs,
            (Flavor::Stream, Reply::List(streams)) => match streams.into_iter().next() {
                Some(Reply::List(mut kv)) if kv.len() == 2 => match kv.pop() {
                    Some(Reply::List(entries)) => entries,
                    other => return Err(format!("XREADGROUP entries: {other:?}")),
                },
                other => return Err(format!("XREADGROUP reply: {other:?}")),
            },
            (_, other) => return Err(format!("pop reply: {other:?}")),
        };
        let mut ack: Vec<Vec<u8>> = Vec::with_capacity(messages.len());
        for m in &messages {
            let Reply::List(parts) = m else { return Err(format!("message: {m:?}")) };
            let (id, body) = match (flavor, parts.as_slice()) {
                (Flavor::Queue, [Reply::Bytes(id), Reply::Bytes(p), ..]) => (id, p),
                (Flavor::Stream, [Reply::Bytes(id), Reply::List(fv)]) => match fv.as_slice() {
                    [_, Reply::Bytes(p)] => (id, p),
                    other => return Err(format!("entry fields: {other:?}")),
                },
                (_, other) => return Err(format!("message parts: {other:?}")),
            };
            if let Some(t) = sent_at(body) {
                h.record(received.saturating_sub(t).max(1)).map_err(|e| e.to_string())?;
            }
            ack.push(id.clone());
        }
        let mut args: Vec<&[u8]> = match flavor {
            Flavor::Queue => vec![b"QACK", KEY.as_bytes()],
            Flavor::Stream => vec![b"XACK", KEY.as_bytes(), b"g"],
        };
        args.extend(ack.iter().map(Vec::as_slice));
        c.call(&args)?;
        consumed.fetch_add(messages.len() as u64, Ordering::Relaxed);
    }
    Ok(h)
}

/// One line per run: the workload, the target, messages/s, latency percentiles in ms.
pub fn line(target: &str, flavor: Flavor, o: &Outcome) -> String {
    let ms = |q: f64| o.latency.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "{:<8} {:<22} {:>12.0} msg/s   e2e p50 {:>8.3} ms   p99 {:>8.3} ms   max {:>8.3} ms   ({:.2} s)",
        flavor.name(),
        target,
        o.rate,
        ms(0.5),
        ms(0.99),
        o.latency.max() as f64 / 1000.0,
        o.elapsed.as_secs_f64()
    )
}
