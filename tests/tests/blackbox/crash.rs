//! The crash harness (issue 9, item 1): mixed writes from several clients
//! across the views, SIGKILL at random moments, restart on the same
//! directory, and a checker that compares what the server holds with what
//! each client saw acknowledged.
//!
//! Every client owns its keys (a string, keys with TTLs, a counter, an
//! APPEND log, a hash, a list, a sorted set, a stream with a consumer
//! group, a time series and a reliable queue), so the newest value of each
//! is well defined. Each write is recorded as acknowledged (with the time
//! its reply came) or in doubt (sent, reply lost to the crash). After each
//! restart the checker gives every write of the cycle a fate (present,
//! absent, or unknown when a later write hides it) and proves:
//!
//! - nothing appears that was never sent (values, keys, stream entries,
//!   samples, queue messages);
//! - no reordering: per client and shard, no write is present while an
//!   earlier one of the same client on that shard is absent (the log is a
//!   prefix);
//! - queue messages are neither lost nor delivered after a confirmed ack
//!   while the server lives, and a retried push with the same dedup ID
//!   answers the first message's ID;
//! - keys with TTLs are present with a TTL no later than set, or expired;
//! - under `--appendfsync always`, no acknowledged write is lost.
//!
//! Under `everysec` and `no` a SIGKILL may lose acknowledged writes by
//! design; the checker measures the loss window instead (from the ack of
//! the oldest lost acknowledged write to the kill) and prints it.
//!
//! `STRAND_CRASH_CYCLES=N` runs N kill/restart cycles per mode (default 4),
//! `STRAND_CRASH_SEED` fixes the seed, `STRAND_CRASH_CLIENTS` the number of
//! client threads (default 4). Run with `--nocapture` to see the figures.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::{Connection, FromRedisValue, RedisResult, Value};
use strand_engine::slot::SlotMap;
use strand_tests::commands::cmd;
use strand_tests::Server;

/// Shards the server runs with (the checker maps keys to shards).
const SHARDS: usize = 2;
/// Slack for comparing the server's clock with ours.
const CLOCK_SLACK: Duration = Duration::from_millis(100);

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Where a failure happened: printed in every assertion message.
#[derive(Clone, Copy)]
struct Ctx {
    seed: u64,
    mode: &'static str,
    cycle: usize,
}

impl fmt::Display for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed {} (STRAND_CRASH_SEED={}), appendfsync {}, cycle {}", self.seed, self.seed, self.mode, self.cycle)
    }
}

/// One write sent to the server.
#[derive(Clone, Debug)]
struct Sent {
    /// The client's sequence number: the order it sent its writes in.
    seq: u64,
    /// What it wrote (a value, an item, a payload, IDs acknowledged).
    item: String,
    sent_at: Instant,
    /// When its reply came; None: in doubt (the reply was lost to the crash).
    acked: Option<Instant>,
    /// An ID the server answered (stream entry, queue message).
    id: Option<String>,
    /// The TTL it set, for SET EX.
    ttl: Option<Duration>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Fate {
    Present,
    Absent,
    Unknown,
}

/// A write and what the checker found of it.
struct Judged {
    shard: usize,
    object: String,
    sent: Sent,
    fate: Fate,
}

/// A key (or a hash field, or a sorted-set member) that holds one value.
#[derive(Default)]
struct Register {
    key: String,
    field: Option<String>,
    zset: bool,
    /// The value found at the last check.
    base: Option<String>,
    sent: Vec<Sent>,
}

/// An object that grows by appending: APPEND, RPUSH, XADD, TS.ADD, INCR.
#[derive(Default)]
struct Log {
    key: String,
    base: Vec<String>,
    sent: Vec<Sent>,
}

/// The stream's consumer group, as the client believes it.
#[derive(Default)]
struct Group {
    /// Delivered, not yet acknowledged (as of the last check or since).
    pending: Vec<String>,
    reads: Vec<Sent>,
    acks: Vec<Sent>,
}

/// The client's reliable queue.
#[derive(Default)]
struct Queue {
    key: String,
    /// Message ID -> payload, as answered by QPUSH or QPOP.
    ids: HashMap<String, String>,
    /// Payloads whose push was sent (acknowledged or not).
    payloads: HashSet<String>,
    /// IDs whose ack was sent (confirmed or in doubt).
    acked: HashSet<String>,
    /// IDs whose ack the server confirmed in this life of the server.
    confirmed: HashSet<String>,
    /// A push in doubt, retried with the same dedup ID after the restart.
    retry: Option<String>,
    pushes: Vec<Sent>,
    acks: Vec<Sent>,
}

/// One client: its keys and what it sent since the last check.
struct Client {
    t: usize,
    seq: u64,
    regs: Vec<Register>,
    counter: Log,
    append: Log,
    list: Log,
    stream: Log,
    group: Group,
    series: Log,
    queue: Queue,
    /// Error replies (not lost connections): always a failure.
    errors: Vec<String>,
    /// The seed, mode and cycle, for assertion messages in the client's thread.
    tag: String,
}

impl Client {
    fn new(t: usize) -> Client {
        let log = |name: &str| Log { key: format!("c{t}:{name}"), ..Log::default() };
        let mut regs = Vec::new();
        for k in 0..3 {
            regs.push(Register { key: format!("c{t}:s:{k}"), ..Register::default() });
            regs.push(Register { key: format!("c{t}:t:{k}"), ..Register::default() });
            regs.push(Register { key: format!("c{t}:h"), field: Some(format!("f{k}")), ..Register::default() });
            regs.push(Register { key: format!("c{t}:z"), field: Some(format!("m{k}")), zset: true, ..Register::default() });
        }
        Client {
            t,
            seq: 0,
            regs,
            counter: log("n"),
            append: log("a"),
            list: log("l"),
            stream: log("x"),
            group: Group::default(),
            series: log("ts"),
            queue: Queue { key: format!("c{t}:q"), ..Queue::default() },
            errors: Vec::new(),
            tag: String::new(),
        }
    }

    /// Every key name this client may create.
    fn key_names(&self) -> HashSet<String> {
        let mut names: HashSet<String> = self.regs.iter().map(|r| r.key.clone()).collect();
        for l in [&self.counter, &self.append, &self.list, &self.stream, &self.series] {
            names.insert(l.key.clone());
        }
        names.insert(self.queue.key.clone());
        names
    }

    fn next(&mut self, item: String) -> Sent {
        self.seq += 1;
        Sent { seq: self.seq, item, sent_at: Instant::now(), acked: None, id: None, ttl: None }
    }

    /// Sends one random write; Err when the server went away (the write is in doubt).
    fn step(&mut self, c: &mut Connection, rng: &mut StdRng) -> RedisResult<()> {
        let t = self.t;
        match rng.gen_range(0..12) {
            0..=2 => {
                let r = rng.gen_range(0..self.regs.len());
                let mut s = self.next(String::new());
                s.item = if self.regs[r].zset { s.seq.to_string() } else { format!("{t}-{}", s.seq) };
                let reg = &mut self.regs[r];
                let mut command = match (&reg.field, reg.zset) {
                    (Some(f), true) => cmd(&["ZADD", &reg.key, &s.item, f]),
                    (Some(f), false) => cmd(&["HSET", &reg.key, f, &s.item]),
                    (None, _) => cmd(&["SET", &reg.key, &s.item]),
                };
                if reg.key.contains(":t:") {
                    let ttl = Duration::from_millis(rng.gen_range(300..3000));
                    command.arg("PX").arg(ttl.as_millis() as u64);
                    s.ttl = Some(ttl);
                }
                reg.sent.push(s);
                command.query::<Value>(c)?;
                reg.sent.last_mut().unwrap().acked = Some(Instant::now());
            }
            3 => {
                let s = self.next(String::new());
                self.counter.sent.push(s);
                cmd(&["INCR", &self.counter.key]).query::<i64>(c)?;
                self.counter.sent.last_mut().unwrap().acked = Some(Instant::now());
            }
            4 => {
                let s = self.next(String::new());
                let item = format!("{t}-{}", s.seq);
                self.append.sent.push(Sent { item: item.clone(), ..s });
                cmd(&["APPEND", &self.append.key, &format!("{item};")]).query::<i64>(c)?;
                self.append.sent.last_mut().unwrap().acked = Some(Instant::now());
            }
            5 => {
                let s = self.next(String::new());
                let item = format!("{t}-{}", s.seq);
                self.list.sent.push(Sent { item: item.clone(), ..s });
                cmd(&["RPUSH", &self.list.key, &item]).query::<i64>(c)?;
                self.list.sent.last_mut().unwrap().acked = Some(Instant::now());
            }
            6 => {
                let s = self.next(String::new());
                let item = format!("{t}-{}", s.seq);
                self.stream.sent.push(Sent { item: item.clone(), ..s });
                let id: String = cmd(&["XADD", &self.stream.key, "*", "v", &item]).query(c)?;
                let last = self.stream.sent.last_mut().unwrap();
                last.acked = Some(Instant::now());
                last.id = Some(id);
            }
            7 => self.group_step(c, rng)?,
            8 => {
                let s = self.next(String::new());
                // Timestamps grow with the sequence number, so they never repeat.
                let item = format!("{}:{}", 1_000_000 + s.seq, s.seq);
                self.series.sent.push(Sent { item, ..s.clone() });
                cmd(&["TS.ADD", &self.series.key, &(1_000_000 + s.seq).to_string(), &s.seq.to_string()]).query::<i64>(c)?;
                self.series.sent.last_mut().unwrap().acked = Some(Instant::now());
            }
            9 | 10 => self.push(c, None)?,
            _ => self.pop(c, rng)?,
        }
        Ok(())
    }

    /// XREADGROUP new entries, then XACK them (mostly), and what is pending.
    fn group_step(&mut self, c: &mut Connection, rng: &mut StdRng) -> RedisResult<()> {
        let key = self.stream.key.clone();
        if !self.group.pending.is_empty() && rng.gen_bool(0.7) {
            let ids = std::mem::take(&mut self.group.pending);
            let s = self.next(ids.join(","));
            self.group.acks.push(s);
            let mut command = cmd(&["XACK", &key, "g"]);
            for id in &ids {
                command.arg(id);
            }
            command.query::<i64>(c)?;
            self.group.acks.last_mut().unwrap().acked = Some(Instant::now());
            return Ok(());
        }
        let s = self.next(String::new());
        self.group.reads.push(s);
        let v: Value = cmd(&["XREADGROUP", "GROUP", "g", "c", "COUNT", "5", "STREAMS", &key, ">"]).query(c)?;
        let entries = stream_reply_entries(&v);
        let read = self.group.reads.last_mut().unwrap();
        read.acked = Some(Instant::now());
        read.item = entries.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>().join(",");
        for (id, item) in entries {
            assert!(
                item.starts_with(&format!("{}-", self.t)),
                "{}: XREADGROUP delivered {id} {item:?}, not written by client {}",
                self.tag,
                self.t
            );
            self.group.pending.push(id);
        }
        Ok(())
    }

    /// QPUSH a new message, or retry one in doubt with the same dedup ID.
    fn push(&mut self, c: &mut Connection, retry: Option<String>) -> RedisResult<()> {
        let s = self.next(String::new());
        let payload = retry.unwrap_or_else(|| format!("{}-{}", self.t, s.seq));
        self.queue.payloads.insert(payload.clone());
        self.queue.retry = Some(payload.clone());
        self.queue.pushes.push(Sent { item: payload.clone(), ..s });
        let id: String = cmd(&["QPUSH", &self.queue.key, &payload, "ID", &payload]).query(c)?;
        self.queue.retry = None;
        let last = self.queue.pushes.last_mut().unwrap();
        last.acked = Some(Instant::now());
        last.id = Some(id.clone());
        if let Some(old) = self.queue.ids.insert(id.clone(), payload.clone()) {
            assert_eq!(old, payload, "{}: queue message {id} answered for two payloads", self.tag);
        }
        if let Some((other, _)) = self.queue.ids.iter().find(|(i, p)| **p == payload && **i != id) {
            panic!("{}: a retried push of {payload} made a second message {id} beside {other}", self.tag);
        }
        Ok(())
    }

    /// QPOP a few messages and QACK most of them (the rest wait for their lease).
    fn pop(&mut self, c: &mut Connection, rng: &mut StdRng) -> RedisResult<()> {
        let v: Value = cmd(&["QPOP", &self.queue.key, "COUNT", "3", "LEASE", "1000"]).query(c)?;
        let batch: Vec<(String, String, i64)> = if v == Value::Nil { Vec::new() } else { redis::from_redis_value(&v)? };
        for (id, payload, _attempt) in batch {
            let tag = &self.tag;
            assert!(self.queue.payloads.contains(&payload), "{tag}: QPOP delivered {id} ({payload}) that was never pushed");
            assert!(!self.queue.confirmed.contains(&id), "{tag}: QPOP delivered {id} ({payload}) again after a confirmed ack");
            let known = self.queue.ids.entry(id.clone()).or_insert_with(|| payload.clone());
            assert_eq!(known, &payload, "{tag}: queue message {id} changed its payload");
            if rng.gen_bool(0.1) {
                continue; // the consumer dies: the lease runs out
            }
            let s = self.next(id.clone());
            self.queue.acked.insert(id.clone());
            self.queue.acks.push(s);
            let n: i64 = cmd(&["QACK", &self.queue.key, &id]).query(c)?;
            self.queue.acks.last_mut().unwrap().acked = Some(Instant::now());
            if n == 1 {
                self.queue.confirmed.insert(id);
            } else {
                // Its lease ran out first: the ack changed nothing, and it will be delivered again.
                self.queue.acked.remove(&id);
                self.queue.acks.pop();
            }
        }
        Ok(())
    }
}

/// `[[key, [[id, [field, value]] ...]]]` -> (id, value) pairs.
fn stream_reply_entries(v: &Value) -> Vec<(String, String)> {
    let Value::Array(streams) = v else { return Vec::new() };
    let mut out = Vec::new();
    for s in streams {
        let (_key, entries): (String, Vec<(String, Vec<String>)>) = redis::from_redis_value(s).unwrap();
        for (id, fields) in entries {
            out.push((id, fields.get(1).cloned().unwrap_or_default()));
        }
    }
    out
}

/// One client thread for one server life: writes until the server dies or `stop`.
fn run_client(mut cl: Client, port: u16, stop: Arc<AtomicBool>, seed: u64) -> Client {
    let mut rng = StdRng::seed_from_u64(seed);
    let conn =
        redis::Client::open(format!("redis://127.0.0.1:{port}/")).and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)));
    let Ok(mut c) = conn else { return cl };
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    let mut result = match cl.queue.retry.take() {
        Some(p) => cl.push(&mut c, Some(p)),
        None => Ok(()),
    };
    while result.is_ok() && !stop.load(Ordering::Relaxed) {
        result = cl.step(&mut c, &mut rng);
    }
    if let Err(e) = result {
        if e.code().is_some() && !stop.load(Ordering::Relaxed) {
            cl.errors.push(e.to_string());
        }
    }
    cl
}

/// Reads a value from the restarted server: it must answer.
fn read<T: FromRedisValue>(c: &mut Connection, ctx: Ctx, args: &[&str]) -> T {
    cmd(args).query(c).unwrap_or_else(|e| panic!("{ctx}: {args:?} failed after restart: {e}"))
}

/// Fates of a log-like object whose writes were `sent` after `base`, from what is found.
fn prefix_fates(ctx: Ctx, what: &str, base: &[String], sent: &[Sent], found: &[String]) -> Vec<Fate> {
    assert!(found.len() >= base.len() && found[..base.len()] == *base, "{ctx}: {what} lost what the last check saw: {base:?} -> {found:?}");
    let new = &found[base.len()..];
    assert!(new.len() <= sent.len(), "{ctx}: {what} holds {} items more than were sent: {new:?}", new.len() - sent.len());
    for (i, item) in new.iter().enumerate() {
        assert_eq!(item, &sent[i].item, "{ctx}: {what} item {} is not what was sent (out of thin air or reordered)", base.len() + i);
    }
    (0..sent.len()).map(|i| if i < new.len() { Fate::Present } else { Fate::Absent }).collect()
}

/// What the checker learned after one restart.
#[derive(Default)]
struct Cycle {
    judged: Vec<Judged>,
}

impl Cycle {
    fn add(&mut self, object: &str, sent: &[Sent], fates: &[Fate]) {
        let shard = SlotMap::new(SHARDS).shard_of(object.split('#').next().unwrap().as_bytes());
        for (s, f) in sent.iter().zip(fates) {
            self.judged.push(Judged { shard, object: object.to_string(), sent: s.clone(), fate: *f });
        }
    }
}

/// Checks one client's objects against the restarted server, and makes what
/// it found the new base.
fn check_client(c: &mut Connection, ctx: Ctx, cl: &mut Client, cycle: &mut Cycle) {
    check_registers(c, ctx, cl, cycle);
    // INCR: the counter is the number of increments applied.
    let n: Option<i64> = read(c, ctx, &["GET", &cl.counter.key]);
    let n = n.unwrap_or(0) as usize;
    let base = cl.counter.base.len();
    assert!(
        n >= base && n <= base + cl.counter.sent.len(),
        "{ctx}: counter {} = {n}, not in {base}..={}",
        cl.counter.key,
        base + cl.counter.sent.len()
    );
    let fates: Vec<Fate> = (0..cl.counter.sent.len()).map(|i| if base + i < n { Fate::Present } else { Fate::Absent }).collect();
    cycle.add(&cl.counter.key, &cl.counter.sent, &fates);
    cl.counter.base = (0..n).map(|_| String::new()).collect();
    cl.counter.sent.clear();
    // APPEND and RPUSH: a prefix of what was sent, in order.
    let text: Option<String> = read(c, ctx, &["GET", &cl.append.key]);
    let found: Vec<String> = text.unwrap_or_default().split(';').filter(|s| !s.is_empty()).map(String::from).collect();
    check_log(ctx, &mut cl.append, found, cycle);
    let found: Vec<String> = read(c, ctx, &["LRANGE", &cl.list.key, "0", "-1"]);
    check_log(ctx, &mut cl.list, found, cycle);
    // TS.ADD: samples in order.
    let exists: i64 = read(c, ctx, &["EXISTS", &cl.series.key]);
    let samples: Vec<(i64, String)> = if exists == 1 { read(c, ctx, &["TS.RANGE", &cl.series.key, "-", "+"]) } else { Vec::new() };
    let found = samples.iter().map(|(ts, v)| format!("{ts}:{}", v.parse::<f64>().unwrap_or(f64::NAN))).collect();
    check_log(ctx, &mut cl.series, found, cycle);
    check_stream(c, ctx, cl, cycle);
    check_queue(c, ctx, cl, cycle);
}

fn check_log(ctx: Ctx, log: &mut Log, found: Vec<String>, cycle: &mut Cycle) {
    let fates = prefix_fates(ctx, &log.key, &log.base, &log.sent, &found);
    cycle.add(&log.key, &log.sent, &fates);
    log.base = found;
    log.sent.clear();
}

fn check_registers(c: &mut Connection, ctx: Ctx, cl: &mut Client, cycle: &mut Cycle) {
    for reg in &mut cl.regs {
        let before = Instant::now();
        let (found, pttl): (Option<String>, i64) = match (&reg.field, reg.zset) {
            (Some(f), true) => {
                let score: Option<f64> = read(c, ctx, &["ZSCORE", &reg.key, f]);
                (score.map(|s| (s as u64).to_string()), -1)
            }
            (Some(f), false) => (read(c, ctx, &["HGET", &reg.key, f]), -1),
            (None, _) => (read(c, ctx, &["GET", &reg.key]), read(c, ctx, &["PTTL", &reg.key])),
        };
        // Expired between the two reads.
        let found = if pttl == -2 { None } else { found };
        let name = match &reg.field {
            Some(f) => format!("{}#{f}", reg.key),
            None => reg.key.clone(),
        };
        let mut fates = vec![Fate::Unknown; reg.sent.len()];
        match &found {
            Some(v) => {
                if let Some(j) = reg.sent.iter().rposition(|s| &s.item == v) {
                    fates[j] = Fate::Present;
                    fates[j + 1..].iter_mut().for_each(|f| *f = Fate::Absent);
                    if let Some(ttl) = reg.sent[j].ttl {
                        // The deadline is at most the reply's time (or the kill's) plus the TTL.
                        let acked = reg.sent[j].acked.unwrap_or(before);
                        let left = (acked + ttl).saturating_duration_since(before) + CLOCK_SLACK;
                        assert!(
                            pttl > 0 && pttl as u128 <= left.as_millis(),
                            "{ctx}: {name} = {v:?} has PTTL {pttl}, set {ttl:?}, at most {left:?} left"
                        );
                    }
                } else {
                    assert_eq!(Some(v), reg.base.as_ref(), "{ctx}: {name} = {v:?}: never written (out of thin air)");
                    fates.iter_mut().for_each(|f| *f = Fate::Absent);
                }
                if reg.key.contains(":t:") {
                    assert!(pttl > 0, "{ctx}: {name} = {v:?} lost its TTL (PTTL {pttl})");
                }
            }
            None => {
                // Gone: the newest write is lost unless its TTL may have run out.
                if let Some(last) = reg.sent.last() {
                    let may_have_expired = last.ttl.is_some_and(|ttl| before + CLOCK_SLACK >= last.sent_at + ttl);
                    if !may_have_expired {
                        *fates.last_mut().unwrap() = Fate::Absent;
                    }
                }
                if reg.base.is_some() {
                    assert!(reg.key.contains(":t:"), "{ctx}: {name} held {:?} at the last check and is gone", reg.base);
                }
            }
        }
        cycle.add(&name, &reg.sent, &fates);
        reg.base = found;
        reg.sent.clear();
    }
}

fn check_stream(c: &mut Connection, ctx: Ctx, cl: &mut Client, cycle: &mut Cycle) {
    let key = cl.stream.key.clone();
    let entries: Vec<(String, Vec<String>)> = read(c, ctx, &["XRANGE", &key, "-", "+"]);
    let ids: Vec<String> = entries.iter().map(|e| e.0.clone()).collect();
    let found: Vec<String> = entries.iter().map(|e| e.1.get(1).cloned().unwrap_or_default()).collect();
    // Entries XADD acknowledged keep the ID it answered.
    let base = cl.stream.base.len();
    for (i, s) in cl.stream.sent.iter().enumerate() {
        if let (Some(id), Some(got)) = (&s.id, ids.get(base + i)) {
            assert_eq!(id, got, "{ctx}: stream {key} entry {} ({}) has another ID", base + i, s.item);
        }
    }
    assert!(ids.windows(2).all(|w| stream_id(&w[0]) < stream_id(&w[1])), "{ctx}: stream {key} IDs out of order: {ids:?}");
    check_log(ctx, &mut cl.stream, found, cycle);
    // The group: pending entries exist, were delivered, and were not acked.
    let pending: Vec<(String, String, i64, i64)> = read(c, ctx, &["XPENDING", &key, "g", "-", "+", "100000"]);
    let pending: HashSet<String> = pending.into_iter().map(|p| p.0).collect();
    let delivered: HashSet<&str> = cl
        .group
        .pending
        .iter()
        .map(String::as_str)
        .chain(cl.group.reads.iter().chain(&cl.group.acks).flat_map(|s| s.item.split(',')).filter(|s| !s.is_empty()))
        .collect();
    let read_in_doubt = cl.group.reads.iter().any(|r| r.acked.is_none());
    for p in &pending {
        assert!(ids.contains(p), "{ctx}: stream {key}: pending entry {p} is not in the stream");
        assert!(read_in_doubt || delivered.contains(p.as_str()), "{ctx}: stream {key}: {p} pending but never delivered");
    }
    let ack_fates: Vec<Fate> = cl
        .group
        .acks
        .iter()
        .map(|a| if a.acked.is_some() && a.item.split(',').any(|id| pending.contains(id)) { Fate::Absent } else { Fate::Unknown })
        .collect();
    cycle.add(&key, &cl.group.acks, &ack_fates);
    let acked_ids: HashSet<&str> = cl.group.acks.iter().flat_map(|a| a.item.split(',')).collect();
    let read_fates: Vec<Fate> = cl
        .group
        .reads
        .iter()
        .map(|r| {
            let got: Vec<&str> = r.item.split(',').filter(|s| !s.is_empty()).collect();
            if r.acked.is_none() || got.is_empty() {
                Fate::Unknown
            } else if got.iter().any(|id| pending.contains(*id)) {
                Fate::Present
            } else if got.iter().any(|id| !acked_ids.contains(id)) {
                Fate::Absent
            } else {
                Fate::Unknown
            }
        })
        .collect();
    cycle.add(&key, &cl.group.reads, &read_fates);
    let mut pending: Vec<String> = pending.into_iter().collect();
    pending.sort_by_key(|id| stream_id(id));
    cl.group = Group { pending, ..Group::default() };
}

fn stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// Rows of a queue reply: `[[id, payload, ...] ...]`.
type Rows = Vec<Vec<Value>>;

/// `[[id, payload, ...] ...]` -> (id, payload or "").
fn id_rows(v: Rows) -> Vec<(String, String)> {
    v.into_iter()
        .map(|row| {
            let id: String = redis::from_redis_value(&row[0]).unwrap();
            let payload = row.get(1).and_then(|p| redis::from_redis_value::<String>(p).ok()).unwrap_or_default();
            (id, payload)
        })
        .collect()
}

fn check_queue(c: &mut Connection, ctx: Ctx, cl: &mut Client, cycle: &mut Cycle) {
    let q = &mut cl.queue;
    let key = q.key.clone();
    // One transaction: a lease running out between two reads would hide a message.
    let mut p = redis::pipe();
    p.atomic();
    for args in [
        &["QPEEK", &key, "COUNT", "100000"][..],
        &["QPENDING", &key, "COUNT", "100000"],
        &["QDLQ", &key, "LIST", "COUNT", "100000"],
        &["QLEN", &key],
    ] {
        p.add_command(cmd(args));
    }
    let (ready, leased, dead, qlen): (Rows, Rows, Rows, i64) =
        p.query(c).unwrap_or_else(|e| panic!("{ctx}: reading queue {key} failed after restart: {e}"));
    let (ready, leased, dead) = (id_rows(ready), id_rows(leased), id_rows(dead));
    // The client pushes without DELAY, so QLEN is what the two lists hold. (A
    // transaction sees one time: a lease cannot run out between its reads.)
    assert_eq!(
        qlen as usize,
        ready.len() + leased.len(),
        "{ctx}: queue {key}: QLEN against {} ready and {} leased",
        ready.len(),
        leased.len()
    );
    let unresolved = q.pushes.iter().any(|p| p.acked.is_none()) || q.retry.is_some();
    let mut present: HashSet<String> = HashSet::new();
    for (id, payload) in ready.iter().chain(&dead) {
        assert!(q.payloads.contains(payload), "{ctx}: queue {key}: {id} ({payload}) was never pushed");
        let known = q.ids.entry(id.clone()).or_insert_with(|| payload.clone());
        assert_eq!(known, payload, "{ctx}: queue {key}: {id} changed its payload");
        present.insert(id.clone());
    }
    for (id, _) in &leased {
        assert!(q.ids.contains_key(id) || unresolved, "{ctx}: queue {key}: leased {id} was never pushed");
        present.insert(id.clone());
    }
    // At least once: every message whose push was answered is still there, or its ack was sent.
    let lost: Vec<&String> = q.ids.keys().filter(|id| !present.contains(*id) && !q.acked.contains(*id)).collect();
    for id in &lost {
        // A message the last check saw is on disk: only this cycle's pushes may be lost, in any mode.
        let this_cycle = q.pushes.iter().any(|p| p.id.as_ref() == Some(*id));
        assert!(this_cycle, "{ctx}: queue {key}: message {id} ({}) vanished, never acked", q.ids[*id]);
    }
    let push_fates: Vec<Fate> = q
        .pushes
        .iter()
        .map(|p| match &p.id {
            Some(id) if present.contains(id) => Fate::Present,
            Some(id) if lost.contains(&id) => Fate::Absent,
            None if ready.iter().any(|r| r.1 == p.item) => Fate::Present,
            _ => Fate::Unknown,
        })
        .collect();
    cycle.add(&key, &q.pushes, &push_fates);
    // Not beyond at least once: a confirmed ack is not undone (unless the mode may lose it).
    let ack_fates: Vec<Fate> =
        q.acks.iter().map(|a| if a.acked.is_some() && present.contains(&a.item) { Fate::Absent } else { Fate::Unknown }).collect();
    cycle.add(&key, &q.acks, &ack_fates);
    // The new base: only what is there. A message gone (acked, or lost under
    // everysec) is forgotten: its ID may be given again if its push was lost.
    q.ids.retain(|id, _| present.contains(id));
    q.acked.retain(|id| !present.contains(id));
    q.confirmed.clear();
    q.pushes.clear();
    q.acks.clear();
}

/// The figures of one mode's run.
#[derive(Default)]
struct Figures {
    cycles: usize,
    acked: usize,
    in_doubt: usize,
    lost: usize,
    lost_cycles: usize,
    window: Duration,
}

/// Judges one cycle: no reordering, no acknowledged loss under `always`; returns (lost, window).
fn judge(ctx: Ctx, clients: &[Client], cycles: &[Cycle], killed_at: Instant) -> (usize, Duration) {
    let mut lost = 0;
    let mut window = Duration::ZERO;
    let mut oldest: Option<String> = None;
    for (cl, cy) in clients.iter().zip(cycles) {
        let mut by_shard: BTreeMap<usize, Vec<&Judged>> = BTreeMap::new();
        for j in &cy.judged {
            by_shard.entry(j.shard).or_default().push(j);
        }
        for (shard, js) in by_shard {
            let first_absent = js.iter().filter(|j| j.fate == Fate::Absent).min_by_key(|j| j.sent.seq);
            let last_present = js.iter().filter(|j| j.fate == Fate::Present).max_by_key(|j| j.sent.seq);
            if let (Some(a), Some(p)) = (first_absent, last_present) {
                assert!(
                    p.sent.seq < a.sent.seq,
                    "{ctx}: client {} shard {shard}: write {} to {} ({}) is present, but the earlier write {} to {} ({}, acked {}) is lost: not a prefix",
                    cl.t,
                    p.sent.seq,
                    p.object,
                    p.sent.item,
                    a.sent.seq,
                    a.object,
                    a.sent.item,
                    a.sent.acked.is_some()
                );
            }
        }
        for j in cy.judged.iter().filter(|j| j.fate == Fate::Absent) {
            if let Some(acked) = j.sent.acked {
                assert!(
                    ctx.mode != "always",
                    "{ctx}: client {} lost acknowledged write {} to {} ({:?}), acked {:?} before the kill",
                    cl.t,
                    j.sent.seq,
                    j.object,
                    j.sent.item,
                    killed_at.saturating_duration_since(acked)
                );
                lost += 1;
                let ago = killed_at.saturating_duration_since(acked);
                if ago >= window {
                    window = ago;
                    oldest = Some(format!("client {} write {} to {}", cl.t, j.sent.seq, j.object));
                }
            }
        }
    }
    if let Some(oldest) = oldest {
        eprintln!("crash harness: {ctx}: {lost} acknowledged writes lost, the oldest acked {window:?} before the kill ({oldest})");
    }
    (lost, window)
}

/// Runs the workload under one appendfsync mode for the configured cycles.
fn crash_run(mode: &'static str) {
    let seed = std::env::var("STRAND_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random::<u64>);
    let cycles = env_num("STRAND_CRASH_CYCLES", 4) as usize;
    let nclients = env_num("STRAND_CRASH_CLIENTS", 4) as usize;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut s = Server::start(&["--appendfsync", mode, "--shards", &SHARDS.to_string()]);
    let ctx0 = Ctx { seed, mode, cycle: 0 };
    {
        let mut c = s.client();
        for t in 0..nclients {
            let _: Value = read(&mut c, ctx0, &["XGROUP", "CREATE", &format!("c{t}:x"), "g", "$", "MKSTREAM"]);
            let _: Value = read(&mut c, ctx0, &["TS.CREATE", &format!("c{t}:ts")]);
        }
        // Let the set-up reach the log before the first kill.
        let _: Value = read(&mut c, ctx0, &["SAVE"]);
    }
    let mut clients: Vec<Client> = (0..nclients).map(Client::new).collect();
    let names: HashSet<String> = clients.iter().flat_map(Client::key_names).collect();
    let mut fig = Figures::default();
    let started = Instant::now();
    for cycle in 1..=cycles {
        let ctx = Ctx { seed, mode, cycle };
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = clients
            .drain(..)
            .map(|mut cl| {
                cl.tag = ctx.to_string();
                let (port, stop, cseed) = (s.port, stop.clone(), rng.gen());
                thread::spawn(move || run_client(cl, port, stop, cseed))
            })
            .collect();
        thread::sleep(Duration::from_millis(rng.gen_range(100..500)));
        let killed_at = Instant::now();
        s.kill();
        stop.store(true, Ordering::Relaxed);
        clients = handles.into_iter().map(|h| h.join().unwrap_or_else(|_| panic!("{ctx}: a client thread panicked (see above)"))).collect();
        for cl in &clients {
            assert!(cl.errors.is_empty(), "{ctx}: client {} got error replies: {:?}", cl.t, cl.errors);
        }
        s.restart();
        let mut c = s.client();
        let keys: Vec<String> = read(&mut c, ctx, &["KEYS", "*"]);
        for k in keys {
            assert!(names.contains(&k), "{ctx}: key {k} appeared that no client wrote");
        }
        let mut results: Vec<Cycle> = Vec::new();
        for cl in &mut clients {
            let mut cy = Cycle::default();
            check_client(&mut c, ctx, cl, &mut cy);
            results.push(cy);
        }
        let (lost, window) = judge(ctx, &clients, &results, killed_at);
        let judged = results.iter().flat_map(|r| &r.judged);
        fig.acked += judged.clone().filter(|j| j.sent.acked.is_some()).count();
        fig.in_doubt += judged.filter(|j| j.sent.acked.is_none()).count();
        fig.lost += lost;
        fig.lost_cycles += usize::from(lost > 0);
        fig.window = fig.window.max(window);
        fig.cycles = cycle;
    }
    eprintln!(
        "crash harness: appendfsync {mode}: seed {seed}, {} cycles in {:.1?}, {nclients} clients, {} writes acknowledged, {} in doubt, {} acknowledged lost in {} cycles, largest loss window {:?}",
        fig.cycles,
        started.elapsed(),
        fig.acked,
        fig.in_doubt,
        fig.lost,
        fig.lost_cycles,
        fig.window
    );
    assert!(fig.acked > 0, "seed {seed}: appendfsync {mode}: nothing was acknowledged");
}

#[test]
fn always_loses_no_acknowledged_write_across_sigkills() {
    crash_run("always");
}

#[test]
fn everysec_loses_only_a_recent_suffix_across_sigkills() {
    crash_run("everysec");
}

#[test]
fn no_loses_only_a_recent_suffix_across_sigkills() {
    crash_run("no");
}
