//! Per-command statistics of one shard: calls, time, rejected and failed
//! calls, a latency histogram per command, and error replies by kind.
//!
//! The counters are a `Vec` indexed by the command table's dense index
//! ([`crate::command::table::CmdId`]), so recording a call is an array
//! access, not a name lookup. Each shard keeps its own; `INFO commandstats`,
//! `INFO latencystats`, `INFO errorstats` and `/metrics` gather every shard
//! and sum (or merge the histograms). The meaning follows Redis's
//! ([INFO](https://redis.io/commands/info/)): `calls` counts commands that
//! ran, `usec` their time on the shard, `failed_calls` those that ran and
//! answered an error, `rejected_calls` those refused before they ran (arity,
//! authentication, CROSSSLOT, out of memory).
//!
//! A command whose keys live on several shards (MGET, DEL, DBSIZE ...) runs
//! in parts: every part adds its time, but only one counts the call.
//!
//! Timing: a clock read costs 30-70 ns on a virtual machine, as much as a
//! pipelined GET, so a run of commands that execute back to back on a shard
//! (the commands of one read of a connection, a batch from another shard)
//! is timed with three reads, whatever its length: its first command is
//! timed alone (from the start of the run, so its time also holds its
//! parsing and routing), and the rest share the remaining time evenly. A
//! command alone in its run (no pipelining) is timed exactly. With
//! `slowlog-log-slower-than 0` every command is timed alone, one read each.
//! A command whose time is shared reaches the slow log only when its share
//! does, with its name and a note instead of its arguments.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::command::table::CmdId;
use crate::dispatch::Shard;
use crate::reply::Reply;
use crate::shard::ShardState;

/// A command of a run whose time is shared.
#[derive(Debug, Clone, Copy)]
struct Pending {
    call: Call,
    caller: u64,
}

/// The shard's clock for timing commands (see the module's doc).
#[derive(Debug, Default)]
pub struct Clock {
    mark: Option<Instant>,
    first: bool,
    pending: Vec<Pending>,
}

impl Clock {
    /// Starts a run of commands executed back to back, with no await between them.
    pub fn start_run(&mut self) {
        self.mark = Some(Instant::now());
        self.first = true;
    }

    /// Whether the next command shares the run's time instead of reading the clock.
    pub fn shares(&self, every_command: bool) -> bool {
        self.mark.is_some() && !self.first && !every_command
    }

    /// When the next command starts: the end of the previous one in a run, else now.
    pub fn begin(&self) -> Instant {
        self.mark.unwrap_or_else(Instant::now)
    }

    /// Ends a command that began at `started`: its time. In a run, now is
    /// where the next command begins.
    pub fn end(&mut self, started: Instant) -> Duration {
        let now = Instant::now();
        if self.mark.is_some() {
            self.mark = Some(now);
            self.first = false;
        }
        now.saturating_duration_since(started)
    }
}

/// Runs a command on `st` with `run`, timing and accounting it; the reply
/// and whatever `run` returns beside it.
pub fn timed<T>(
    st: &mut ShardState,
    call: Call,
    caller: u64,
    args: &[&[u8]],
    run: impl FnOnce(&mut ShardState) -> (Reply, T),
    blocked: impl Fn(&T) -> bool,
) -> (Reply, T) {
    if st.clock.shares(st.config.slowlog_log_slower_than == 0) {
        let (reply, extra) = run(st);
        let call = if blocked(&extra) { call.as_part() } else { call };
        st.cmdstats.count(call, &reply);
        st.clock.pending.push(Pending { call, caller });
        return (reply, extra);
    }
    flush(st);
    let started = st.clock.begin();
    let (reply, extra) = run(st);
    let took = st.clock.end(started);
    let call = if blocked(&extra) { call.as_part() } else { call };
    observe(st, call, took, caller, args, &reply);
    (reply, extra)
}

/// Shares the time since the last read among the commands waiting for it.
fn flush(st: &mut ShardState) {
    if st.clock.pending.is_empty() {
        return;
    }
    let Some(mark) = st.clock.mark else { return };
    let now = Instant::now();
    st.clock.mark = Some(now);
    let pending = std::mem::take(&mut st.clock.pending);
    let share = now.saturating_duration_since(mark) / pending.len() as u32;
    let us = share.as_micros().min(u64::MAX as u128) as u64;
    let (slower, threshold) = (st.config.slowlog_log_slower_than, st.config.latency_monitor_threshold);
    for p in &pending {
        st.cmdstats.time(p.call, share);
        let (Call::Command(id) | Call::Part(id)) = p.call else { continue };
        if slower > 0 && us >= slower as u64 && matches!(p.call, Call::Command(_)) {
            let name = crate::command::table::by_id(id).map_or("", |c| c.name).to_ascii_uppercase();
            let note = format!("... (arguments not kept: its time is shared with the {} commands of its pipeline)", pending.len());
            crate::command::slowlog::record(st, id, us, p.caller, &[name.as_bytes(), note.as_bytes()]);
        }
        if threshold > 0 && us / 1000 >= threshold {
            crate::command::latency::record_command(st, id, us / 1000);
        }
    }
    let mut pending = pending;
    pending.clear();
    st.clock.pending = pending;
}

impl Call {
    /// The same command, counted as a part (its time only).
    fn as_part(self) -> Call {
        match self {
            Call::Command(id) => Call::Part(id),
            other => other,
        }
    }
}

/// How an execution on a shard is accounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// A command a client sent: counts a call, its time, its error.
    Command(CmdId),
    /// One more part of a command that runs on several shards: its time only.
    Part(CmdId),
    /// Work on behalf of a command accounted elsewhere (the rounds of
    /// FT.SEARCH, WATCH's bookkeeping): not counted.
    Untracked,
}

/// Largest latency a histogram holds, in nanoseconds (longer ones saturate): 100 s.
const HIST_MAX_NS: u64 = 100_000_000_000;

/// Distinct error kinds kept, as Redis (more are counted in the total only).
pub const MAX_ERROR_KINDS: usize = 128;

/// One command's figures on one shard.
#[derive(Debug, Clone, Default)]
pub struct CommandStats {
    /// Executions that answered.
    pub calls: u64,
    /// Time on the shard, in nanoseconds.
    pub nanos: u64,
    /// Refused before running.
    pub rejected: u64,
    /// Ran and answered an error.
    pub failed: u64,
    /// Latency of each call in nanoseconds; created on the first call.
    pub hist: Option<Box<Histogram<u64>>>,
}

/// A shard's per-command and per-error counters.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Per command, by [`CmdId`].
    pub commands: Vec<CommandStats>,
    /// Error replies by kind (the first word: `ERR`, `WRONGTYPE` ...).
    pub errors: BTreeMap<String, u64>,
    /// Every error reply, kinds beyond [`MAX_ERROR_KINDS`] included.
    pub total_errors: u64,
}

/// Accounts one execution on the shard `st`: its counters, and the slow log
/// and the latency monitor when it took long enough. Cheap when it was fast:
/// two comparisons beyond the counters.
pub fn observe(st: &mut ShardState, call: Call, took: Duration, caller: u64, args: &[&[u8]], reply: &Reply) {
    st.cmdstats.record(call, took, reply);
    let (Call::Command(id) | Call::Part(id)) = call else { return };
    let us = took.as_micros().min(u64::MAX as u128) as u64;
    let slower = st.config.slowlog_log_slower_than;
    // One entry per command: the part that counts the call logs it.
    if slower >= 0 && us >= slower as u64 && matches!(call, Call::Command(_)) {
        crate::command::slowlog::record(st, id, us, caller, args);
    }
    let threshold = st.config.latency_monitor_threshold;
    if threshold > 0 && us / 1000 >= threshold {
        crate::command::latency::record_command(st, id, us / 1000);
    }
}

impl Shard {
    /// When a command the connection runs itself begins (see [`Clock::begin`]);
    /// the commands before it in the run get their share of the time first.
    pub fn begin(&self) -> Instant {
        let mut st = self.state.borrow_mut();
        flush(&mut st);
        st.clock.begin()
    }

    /// Accounts a command the connection ran itself (CLIENT, HELLO, EXEC, FT.SEARCH ...), begun at `started`.
    pub fn account(&self, call: Call, started: Instant, caller: u64, args: &[&[u8]], reply: &Reply) {
        let mut st = self.state.borrow_mut();
        let took = st.clock.end(started);
        observe(&mut st, call, took, caller, args, reply);
    }

    /// Starts or ends a run of commands executed back to back (see [`Clock`]).
    pub fn run_of_commands(&self, start: bool) {
        let mut st = self.state.borrow_mut();
        st.ks.clock_run(start);
        if start {
            st.clock.start_run();
        } else {
            flush(&mut st);
            st.clock.mark = None;
        }
    }

    /// Counts a command refused before it ran (arity, NOAUTH, CROSSSLOT, OOM).
    pub fn reject(&self, id: CmdId, reply: &Reply) {
        self.state.borrow_mut().cmdstats.reject(id, reply);
    }

    /// Counts an error reply that belongs to no command (an unknown command).
    pub fn note_error(&self, reply: &Reply) {
        if let Reply::Error(msg) = reply {
            self.state.borrow_mut().cmdstats.error(msg);
        }
    }
}

/// A new, empty latency histogram (nanoseconds, two significant digits, as Redis).
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; the fallback is never taken.
    Histogram::new_with_bounds(1, HIST_MAX_NS, 2).unwrap_or_else(|_| Histogram::new(2).unwrap_or_else(|_| unreachable!()))
}

impl Stats {
    fn entry(&mut self, id: CmdId) -> &mut CommandStats {
        let i = id as usize;
        if i >= self.commands.len() {
            self.commands.resize_with(crate::command::table::entries().len().max(i + 1), CommandStats::default);
        }
        &mut self.commands[i]
    }

    /// Records an execution that took `took`; `reply` tells whether it failed.
    pub fn record(&mut self, call: Call, took: Duration, reply: &Reply) {
        self.count(call, reply);
        self.time(call, took);
    }

    /// Counts an execution (a call, and a failure if `reply` is an error), not its time.
    pub fn count(&mut self, call: Call, reply: &Reply) {
        let Call::Command(id) = call else { return };
        let e = self.entry(id);
        e.calls += 1;
        if let Reply::Error(msg) = reply {
            e.failed += 1;
            self.error(msg);
        }
    }

    /// Counts a call and nothing else (a command a script ran: its time is the
    /// script's, and its error goes to the script, which may catch it).
    pub fn count_call(&mut self, id: CmdId) {
        self.entry(id).calls += 1;
    }

    /// Adds an execution's time (and, for a counted call, a histogram sample).
    pub fn time(&mut self, call: Call, took: Duration) {
        let (id, counts) = match call {
            Call::Command(id) => (id, true),
            Call::Part(id) => (id, false),
            Call::Untracked => return,
        };
        let nanos = took.as_nanos().min(u64::MAX as u128) as u64;
        let e = self.entry(id);
        e.nanos += nanos;
        if counts {
            e.hist.get_or_insert_with(|| Box::new(new_histogram())).saturating_record(nanos.max(1));
        }
    }

    /// Counts a command refused before it ran, and its error.
    pub fn reject(&mut self, id: CmdId, reply: &Reply) {
        self.entry(id).rejected += 1;
        if let Reply::Error(msg) = reply {
            self.error(msg);
        }
    }

    /// Counts an error reply by its kind, the first word of the message.
    pub fn error(&mut self, msg: &str) {
        self.total_errors += 1;
        let kind = error_kind(msg);
        if let Some(n) = self.errors.get_mut(kind) {
            *n += 1;
        } else if self.errors.len() < MAX_ERROR_KINDS {
            self.errors.insert(kind.to_string(), 1);
        }
    }
}

/// The kind of an error message: its first word (`ERR`, `WRONGTYPE`, `NOAUTH` ...).
pub fn error_kind(msg: &str) -> &str {
    let msg = msg.strip_prefix('-').unwrap_or(msg);
    msg.split(' ').next().filter(|k| !k.is_empty()).unwrap_or("ERR")
}

/// A histogram as `value:count` pairs (`v1:c1,v2:c2`), to travel between shards in INFO.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    for v in h.iter_recorded() {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&format!("{}:{}", v.value_iterated_to(), v.count_at_value()));
    }
    out
}

/// Adds what [`encode_histogram`] wrote into `into`.
pub fn merge_encoded(into: &mut Histogram<u64>, text: &str) {
    for pair in text.split(',') {
        if let Some((v, c)) = pair.split_once(':') {
            if let (Ok(v), Ok(c)) = (v.parse::<u64>(), c.parse::<u64>()) {
                let _ = into.record_n(v.clamp(1, HIST_MAX_NS), c);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(error_kind("ERR syntax error"), "ERR");
        assert_eq!(error_kind("WRONGTYPE Operation against"), "WRONGTYPE");
        assert_eq!(error_kind("-NOAUTH x"), "NOAUTH");
        assert_eq!(error_kind(""), "ERR");
    }

    #[test]
    fn record_and_reject() {
        let mut s = Stats::default();
        s.record(Call::Command(3), Duration::from_micros(5), &Reply::Ok);
        s.record(Call::Part(3), Duration::from_micros(5), &Reply::Ok);
        s.record(Call::Command(3), Duration::from_micros(5), &Reply::error("WRONGTYPE x"));
        s.record(Call::Untracked, Duration::from_micros(5), &Reply::error("ERR x"));
        s.reject(3, &Reply::error("ERR wrong number"));
        let c = &s.commands[3];
        assert_eq!((c.calls, c.nanos, c.failed, c.rejected), (2, 15_000, 1, 1));
        assert_eq!(s.errors.get("WRONGTYPE"), Some(&1));
        assert_eq!(s.errors.get("ERR"), Some(&1));
        assert_eq!(s.total_errors, 2);
    }

    /// The cost of accounting one command in a run (one clock read, the
    /// counters, the histogram): `cargo test --release -p strand-server --lib
    /// accounting_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn accounting_cost() {
        let mut s = Stats::default();
        let mut clock = Clock::default();
        let n = 10_000_000u32;
        let t = Instant::now();
        clock.start_run();
        for i in 0..n {
            let started = clock.begin();
            let took = clock.end(started);
            s.record(Call::Command((i % 4) as CmdId), took, &Reply::Ok);
        }
        let with = t.elapsed().as_nanos() as f64 / n as f64;
        let t = Instant::now();
        for i in 0..n {
            s.record(Call::Command((i % 4) as CmdId), Duration::from_nanos(i as u64 % 1000), &Reply::Ok);
        }
        let counters = t.elapsed().as_nanos() as f64 / n as f64;
        println!("per command: {with:.1} ns in all, {counters:.1} ns of it counters and histogram");
    }

    #[test]
    fn histograms_travel() {
        let mut h = new_histogram();
        h.record(1000).unwrap();
        h.record(2000).unwrap();
        let mut m = new_histogram();
        merge_encoded(&mut m, &encode_histogram(&h));
        merge_encoded(&mut m, &encode_histogram(&h));
        assert_eq!(m.len(), 4);
        assert!(m.value_at_quantile(0.99) >= 1990);
    }
}
