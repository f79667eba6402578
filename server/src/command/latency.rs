//! The latency monitor: [LATENCY](https://redis.io/commands/latency/) LATEST,
//! HISTORY, RESET, DOCTOR and HELP.
//!
//! With `latency-monitor-threshold` N > 0 (milliseconds), a command whose
//! time on its shard reaches N ms is a sample of the event `command`, or
//! `fast-command` for commands flagged fast (O(1) or O(log n)), as in Redis.
//! Under `appendfsync always`, an fdatasync of the log that takes N ms or
//! more is a sample of `aof-fsync-always`.
//! Each shard keeps, per event, one sample per second (the largest of that
//! second), the last [`HISTORY_LEN`] of them, and the largest ever. The
//! commands ask every shard and merge: LATEST takes each event's newest
//! sample and the largest ever, HISTORY joins the samples by second.
//! DOCTOR is a short plain report of the same figures, not Redis's prose.

use std::collections::{BTreeMap, VecDeque};

use super::server::{help, unknown_sub};
use super::table::CmdId;
use super::{flags::*, keyless, Command, Ctx, Merge, Route};
use crate::reply::Reply;
use crate::shard::ShardState;

/// Samples kept per event, as Redis's LATENCY_TS_LEN.
pub const HISTORY_LEN: usize = 160;

/// One event's samples on one shard.
#[derive(Debug, Default, Clone)]
pub struct Event {
    /// (unix seconds, milliseconds), oldest first, one per second.
    pub samples: VecDeque<(u64, u64)>,
    /// Largest latency ever seen, in milliseconds.
    pub max: u64,
}

/// One shard's latency events by name.
#[derive(Debug, Default)]
pub struct Monitor {
    events: BTreeMap<&'static str, Event>,
}

impl Monitor {
    /// Adds a sample of `ms` milliseconds to `event` at unix second `now`.
    pub fn add(&mut self, event: &'static str, now: u64, ms: u64) {
        let e = self.events.entry(event).or_default();
        e.max = e.max.max(ms);
        match e.samples.back_mut() {
            Some((t, v)) if *t == now => *v = (*v).max(ms),
            _ => {
                e.samples.push_back((now, ms));
                if e.samples.len() > HISTORY_LEN {
                    e.samples.pop_front();
                }
            }
        }
    }
}

/// Records a command that took `ms` milliseconds (the caller checked the threshold).
pub fn record_command(st: &mut ShardState, id: CmdId, ms: u64) {
    let fast = super::table::by_id(id).is_some_and(|c| c.flags & FAST != 0);
    let event = if fast { "fast-command" } else { "command" };
    st.latency.add(event, strand_engine::clock::unix_ms() / 1000, ms);
}

/// Records the log's slowest fdatasync since the last call as Redis's
/// `aof-fsync-always` event, under `appendfsync always` when it reached
/// the threshold (the shard's expiry tick calls this every 100 ms).
pub fn record_sync_peak(st: &mut ShardState, now_ms: u64) {
    let Some(log) = st.ks.log() else { return };
    let peak = log.take_sync_peak().as_millis() as u64;
    let threshold = st.config.latency_monitor_threshold;
    if threshold > 0 && peak >= threshold && log.policy() == strand_engine::log::FsyncPolicy::Always {
        st.latency.add("aof-fsync-always", now_ms / 1000, peak);
    }
}

fn latency_container(_: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    unknown_sub(args[1], "LATENCY")
}

fn latency_help(_: &mut Ctx<'_>, _: &[&[u8]]) -> Reply {
    help(&[
        "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return a human readable latency analysis report.",
        "HISTORY <event>",
        "    Return time-latency samples for the <event> class.",
        "LATEST",
        "    Return the latest latency samples for all events.",
        "RESET [<event> ...]",
        "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)",
        "HELP",
        "    Prints this help.",
    ])
}

/// One shard's events: `[[name, max, [time, ms, time, ms ...]] ...]`.
fn dump(ctx: &mut Ctx<'_>, _: &[&[u8]]) -> Reply {
    let events = ctx.shard.latency.events.iter().map(|(name, e)| {
        let flat = e.samples.iter().flat_map(|&(t, ms)| [Reply::Int(t as i64), Reply::Int(ms as i64)]).collect();
        Reply::Array(vec![Reply::bulk(name), Reply::Int(e.max as i64), Reply::Array(flat)])
    });
    let c = &ctx.shard.config;
    let settings = Reply::Array(vec![Reply::Int(c.latency_monitor_threshold as i64), Reply::Int(c.slowlog_log_slower_than)]);
    Reply::Array(std::iter::once(settings).chain(events).collect())
}

/// The shards' dumps joined: (threshold ms, slowlog-log-slower-than) and every event.
fn join(parts: Vec<Reply>) -> ((i64, i64), BTreeMap<String, Event>) {
    let mut settings = (0, 0);
    let mut out: BTreeMap<String, Event> = BTreeMap::new();
    for p in parts {
        let Reply::Array(items) = p else { continue };
        let mut items = items.into_iter();
        if let Some(Reply::Array(s)) = items.next() {
            if let [Reply::Int(t), Reply::Int(sl)] = s[..] {
                settings = (t, sl);
            }
        }
        for item in items {
            let Reply::Array(f) = item else { continue };
            let [Reply::Bulk(name), Reply::Int(max), Reply::Array(flat)] = &f[..] else { continue };
            let e = out.entry(String::from_utf8_lossy(name).into_owned()).or_default();
            e.max = e.max.max(*max as u64);
            for pair in flat.chunks(2) {
                if let [Reply::Int(t), Reply::Int(ms)] = pair {
                    e.samples.push_back((*t as u64, *ms as u64));
                }
            }
        }
    }
    for e in out.values_mut() {
        let mut v: Vec<(u64, u64)> = e.samples.drain(..).collect();
        v.sort_unstable();
        // One sample per second: the largest.
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for (t, ms) in v {
            match merged.last_mut() {
                Some((lt, lms)) if *lt == t => *lms = (*lms).max(ms),
                _ => merged.push((t, ms)),
            }
        }
        let skip = merged.len().saturating_sub(HISTORY_LEN);
        e.samples = merged.into_iter().skip(skip).collect();
    }
    (settings, out)
}

/// LATEST: `[event, time of the newest sample, its ms, largest ms ever]` per event.
fn merge_latest(parts: Vec<Reply>) -> Reply {
    if let Some(e) = parts.iter().find(|p| p.is_error()) {
        return e.clone();
    }
    let (_, events) = join(parts);
    Reply::Array(
        events
            .iter()
            .filter_map(|(name, e)| {
                let &(t, ms) = e.samples.back()?;
                Some(Reply::Array(vec![Reply::bulk(name), Reply::Int(t as i64), Reply::Int(ms as i64), Reply::Int(e.max as i64)]))
            })
            .collect(),
    )
}

/// One shard's part of HISTORY: the dump, with the event asked for in front.
fn history(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let Reply::Array(mut v) = dump(ctx, args) else { return Reply::Array(Vec::new()) };
    v.insert(0, Reply::bulk(args[2].to_ascii_lowercase()));
    Reply::Array(v)
}

/// HISTORY: `[time, ms]` pairs of one event, oldest first.
fn merge_history(mut parts: Vec<Reply>) -> Reply {
    if let Some(e) = parts.iter().find(|p| p.is_error()) {
        return e.clone();
    }
    let mut wanted = String::new();
    for p in parts.iter_mut() {
        if let Reply::Array(v) = p {
            if !v.is_empty() {
                if let Reply::Bulk(name) = v.remove(0) {
                    wanted = String::from_utf8_lossy(&name).into_owned();
                }
            }
        }
    }
    let (_, events) = join(parts);
    let samples = events.get(&wanted).map(|e| e.samples.iter().copied().collect::<Vec<_>>()).unwrap_or_default();
    Reply::Array(samples.into_iter().map(|(t, ms)| Reply::Array(vec![Reply::Int(t as i64), Reply::Int(ms as i64)])).collect())
}

/// One shard's part of RESET: the names of the events it dropped.
fn reset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let events = &mut ctx.shard.latency.events;
    let dropped: Vec<&'static str> = if args.len() == 2 {
        let all = events.keys().copied().collect();
        events.clear();
        all
    } else {
        let names: Vec<String> = args[2..].iter().map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
        let hit: Vec<&'static str> = events.keys().copied().filter(|k| names.iter().any(|n| n == k)).collect();
        for k in &hit {
            events.remove(k);
        }
        hit
    };
    Reply::Array(dropped.into_iter().map(Reply::bulk).collect())
}

/// RESET: how many distinct events were dropped on any shard.
fn merge_reset(parts: Vec<Reply>) -> Reply {
    if let Some(e) = parts.iter().find(|p| p.is_error()) {
        return e.clone();
    }
    let mut names: Vec<Vec<u8>> = parts
        .into_iter()
        .flat_map(|p| if let Reply::Array(v) = p { v } else { Vec::new() })
        .filter_map(|r| if let Reply::Bulk(b) = r { Some(b) } else { None })
        .collect();
    names.sort();
    names.dedup();
    Reply::Int(names.len() as i64)
}

/// DOCTOR: a short report of every event and what to look at next.
fn merge_doctor(parts: Vec<Reply>) -> Reply {
    if let Some(e) = parts.iter().find(|p| p.is_error()) {
        return e.clone();
    }
    let ((threshold, slower), events) = join(parts);
    Reply::Verbatim("txt", doctor_report(threshold, slower, &events).into_bytes())
}

/// The text of LATENCY DOCTOR.
pub fn doctor_report(threshold: i64, slowlog_slower_than: i64, events: &BTreeMap<String, Event>) -> String {
    let mut out = String::new();
    if events.is_empty() {
        if threshold == 0 {
            out.push_str("The latency monitor is off (latency-monitor-threshold is 0), so no latency spike was recorded.\n");
            out.push_str("Turn it on with CONFIG SET latency-monitor-threshold <milliseconds>, for example 100.\n");
        } else {
            out.push_str(&format!("No latency spike of {threshold} ms or more was observed since the start or the last LATENCY RESET.\n"));
        }
        return out;
    }
    out.push_str(&format!("Latency spikes of {threshold} ms or more (latency-monitor-threshold), by event, over all shards:\n\n"));
    for (i, (name, e)) in events.iter().enumerate() {
        let n = e.samples.len() as u64;
        let avg = e.samples.iter().map(|s| s.1).sum::<u64>() / n.max(1);
        let dev = e.samples.iter().map(|s| s.1.abs_diff(avg)).sum::<u64>() / n.max(1);
        let (first, last) = (e.samples.front().map_or(0, |s| s.0), e.samples.back().map_or(0, |s| s.0));
        let period = if n > 1 { (last - first) as f64 / (n - 1) as f64 } else { 0.0 };
        out.push_str(&format!(
            "{}. {name}: {n} latency spikes (average {avg}ms, mean deviation {dev}ms, period {period:.2} sec). Worst all time event {}ms.\n",
            i + 1,
            e.max
        ));
    }
    out.push_str("\nWhat to look at:\n\n");
    if slowlog_slower_than < 0 || slowlog_slower_than > threshold.saturating_mul(1000) {
        out.push_str(&format!(
            "- The slow log does not record commands as slow as these (slowlog-log-slower-than is {slowlog_slower_than}); CONFIG SET slowlog-log-slower-than {} to see them.\n",
            threshold.saturating_mul(1000)
        ));
    }
    out.push_str("- SLOWLOG GET lists the slow commands with their arguments and clients.\n");
    out.push_str("- INFO latencystats gives each command's p50, p99 and p99.9; INFO commandstats its calls and average time.\n");
    if events.contains_key("fast-command") {
        out.push_str("- O(1) and O(log n) commands were slow: a shard's core may be shared with other busy processes, or its thread preempted; each shard is pinned to one core.\n");
    }
    if events.contains_key("command") {
        out.push_str("- Slow O(N) commands (KEYS, SORT, big ZUNIONSTORE, Lua scripts, large DEL) hold their shard: every client of that shard waits meanwhile.\n");
    }
    out
}

const CATS: &[&str] = &["@admin", "@slow", "@dangerous"];

/// The LATENCY commands.
pub const COMMANDS: &[Command] = &[
    keyless("latency", -2, CONTAINER, Route::Local(latency_container), &["@slow"], "A container for latency diagnostics commands."),
    keyless(
        "latency|latest",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Route::All(dump, Merge::Custom(merge_latest)),
        CATS,
        "Returns the latest latency samples for all events.",
    ),
    keyless(
        "latency|history",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Route::All(history, Merge::Custom(merge_history)),
        CATS,
        "Returns timestamp-latency samples for an event.",
    ),
    keyless(
        "latency|reset",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Route::All(reset, Merge::Custom(merge_reset)),
        CATS,
        "Resets the latency data for one or more events.",
    ),
    keyless(
        "latency|doctor",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Route::All(dump, Merge::Custom(merge_doctor)),
        CATS,
        "Returns a human-readable latency analysis report.",
    ),
    keyless(
        "latency|help",
        2,
        LOADING | STALE,
        Route::Local(latency_help),
        &["@slow"],
        "Show helpful text about the different subcommands.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_second_and_bounded() {
        let mut m = Monitor::default();
        m.add("command", 10, 5);
        m.add("command", 10, 7);
        m.add("command", 11, 3);
        let e = &m.events["command"];
        assert_eq!(e.samples.iter().copied().collect::<Vec<_>>(), vec![(10, 7), (11, 3)]);
        assert_eq!(e.max, 7);
        for t in 0..500 {
            m.add("command", 100 + t, 1);
        }
        assert_eq!(m.events["command"].samples.len(), HISTORY_LEN);
    }

    #[test]
    fn doctor_says_when_off() {
        assert!(doctor_report(0, 10000, &BTreeMap::new()).contains("off"));
        let mut ev = BTreeMap::new();
        ev.insert("command".to_string(), Event { samples: [(1, 50), (3, 70)].into_iter().collect(), max: 70 });
        let r = doctor_report(5, 10000, &ev);
        assert!(r.contains("command: 2 latency spikes (average 60ms"), "{r}");
        assert!(r.contains("slowlog-log-slower-than 5000"), "{r}");
    }
}
