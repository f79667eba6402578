//! INFO: per-shard figures gathered from every shard and summed into Redis's format.
//!
//! Each shard answers [`shard_info`] with `(section, field, value)` triples;
//! [`render`] adds integers with the same section and field (or takes the
//! smallest or largest, for the few fields where a sum means nothing), keeps
//! the first text value, and prints the sections the client asked for in Redis's
//! `# Section` / `field:value` format. The `shards` section lists each shard.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use crate::command::Ctx;
use crate::reply::Reply;

fn int(section: &str, field: &str, v: u64) -> Reply {
    Reply::Array(vec![Reply::bulk(section), Reply::bulk(field), Reply::Int(v as i64)])
}

fn text(section: &str, field: &str, v: impl Into<String>) -> Reply {
    Reply::Array(vec![Reply::bulk(section), Reply::bulk(field), Reply::Bulk(v.into().into_bytes())])
}

/// Resident set size of this process, from /proc/self/statm (0 if unreadable).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// Checkpoints, under Redis's RDB names where they mean the same.
fn persistence(s: &crate::shard::ShardState, out: &mut Vec<Reply>) {
    let c = &s.checkpoints;
    let last_lsn = s.ks.log().map_or(0, |l| l.last_lsn());
    out.push(int("persistence", "rdb_changes_since_last_save", last_lsn.saturating_sub(c.lsn)));
    out.push(int("persistence", "rdb_bgsave_in_progress", c.running as u64));
    out.push(int("persistence", "rdb_last_save_time", s.lastsave));
    out.push(text("persistence", "rdb_last_bgsave_status", if c.last_ok { "ok" } else { "err" }));
    out.push(int("persistence", "rdb_last_bgsave_time_sec", c.last_duration.as_secs()));
    out.push(int("persistence", "rdb_saves", c.taken));
    out.push(int("persistence", "checkpoints_failed", c.failed));
    out.push(int("persistence", "checkpoint_bytes", c.bytes));
    out.push(int("persistence", "checkpoint_entries", c.entries));
    out.push(int("persistence", "checkpoint_bytes_written", c.bytes_written));
}

/// The cold tier (`tiered` policy): how much is on disk and how often it is read.
fn tiering(s: &crate::shard::ShardState, out: &mut Vec<Reply>) {
    let t = s.ks.tier().map(|t| t.stats()).unwrap_or_default();
    let (segments, disk) = s.ks.tier().map_or((0, 0), |t| t.disk());
    out.push(int("memory", "tiered_keys", s.ks.cold_keys() as u64));
    out.push(int("memory", "tier_segments", segments as u64));
    out.push(int("memory", "tier_disk_bytes", disk));
    out.push(int("stats", "tiered_out_values", s.ks.stats().tiered_out));
    out.push(int("stats", "tier_bytes_written", t.bytes_written));
    out.push(int("stats", "tier_reads", t.reads));
    out.push(int("stats", "tier_bytes_read", t.bytes_read));
    out.push(int("stats", "tier_read_errors", t.read_errors));
    out.push(int("stats", "tier_records_moved", t.moved));
    out.push(int("stats", "tier_segments_removed", t.segments_removed));
}

/// Per command: `name.calls`, `name.nanos`, `name.rejected`, `name.failed`
/// (summed over shards), the latency histogram as text (merged), and errors by kind.
fn command_stats(s: &crate::shard::ShardState, out: &mut Vec<Reply>) {
    let entries = crate::command::table::entries();
    for (c, cmd) in s.cmdstats.commands.iter().zip(entries) {
        if c.calls == 0 && c.rejected == 0 && c.failed == 0 {
            continue;
        }
        let name = cmd.name;
        out.push(int("commandstats", &format!("{name}.calls"), c.calls));
        out.push(int("commandstats", &format!("{name}.nanos"), c.nanos));
        out.push(int("commandstats", &format!("{name}.rejected"), c.rejected));
        out.push(int("commandstats", &format!("{name}.failed"), c.failed));
        if let Some(h) = &c.hist {
            out.push(text("latencystats", name, crate::stats::encode_histogram(h)));
        }
    }
    for (kind, n) in &s.cmdstats.errors {
        out.push(int("errorstats", kind, *n));
    }
}

/// Fields whose shard values join as the smallest, or the largest, rather than the sum.
const MIN_FIELDS: &[&str] = &["rdb_last_save_time"];
const MAX_FIELDS: &[&str] = &["rdb_bgsave_in_progress", "rdb_last_bgsave_time_sec"];

/// One shard's part of INFO. The first element carries the requested sections.
pub fn shard_info(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let s = &*ctx.shard;
    let mut out = vec![Reply::Array(args[1..].iter().map(|a| Reply::bulk(a.to_ascii_lowercase())).collect())];
    let uptime = s.shared.started.elapsed().as_secs();
    if s.id == 0 {
        out.push(text("server", "redis_version", crate::command::server::redis_version()));
        out.push(text("server", "strand_version", crate::command::server::strand_version()));
        out.push(text("server", "redis_mode", "standalone"));
        out.push(text("server", "os", std::env::consts::OS));
        out.push(text("server", "arch_bits", "64"));
        out.push(text("server", "multiplexing_api", "io_uring"));
        out.push(text("server", "process_id", std::process::id().to_string()));
        out.push(text("server", "run_id", s.shared.run_id.clone()));
        out.push(text("server", "tcp_port", s.config.port.to_string()));
        out.push(text("server", "tls_port", s.config.tls_port.to_string()));
        out.push(text("server", "server_time_usec", strand_engine::clock::unix_us().to_string()));
        out.push(text("server", "uptime_in_seconds", uptime.to_string()));
        out.push(text("server", "uptime_in_days", (uptime / 86400).to_string()));
        out.push(text("server", "shards", s.nshards.to_string()));
        out.push(text("server", "executable", std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default()));
        out.push(text("server", "config_file", s.config.config_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default()));
        out.push(text("clients", "maxclients", s.config.maxclients.to_string()));
        let rss = rss_bytes();
        out.push(text("memory", "used_memory_rss", rss.to_string()));
        out.push(text("memory", "used_memory_rss_human", human(rss)));
        out.push(text("memory", "maxmemory", s.config.maxmemory.to_string()));
        out.push(text("memory", "maxmemory_human", human(s.config.maxmemory)));
        out.push(text("memory", "maxmemory_policy", s.config.maxmemory_policy.name()));
        out.push(text("persistence", "loading", "0"));
        out.push(text("persistence", "aof_enabled", if s.config.persistence { "1" } else { "0" }));
        out.push(text("persistence", "appendfsync", s.config.appendfsync.name()));
        out.push(text("replication", "role", "master"));
        out.push(text("replication", "connected_slaves", "0"));
    }
    out.push(int("clients", "connected_clients", s.clients.len() as u64));
    out.push(int("clients", "blocked_clients", s.blocked.len() as u64));
    out.push(int("clients", "total_blocking_keys", s.blocked.keys() as u64));
    out.push(int("stats", "pubsub_channels", s.pubsub.channels(None).len() as u64));
    out.push(int("stats", "pubsub_patterns", s.pubsub.patterns().len() as u64));
    let used = s.ks.used_memory() as u64;
    out.push(int("memory", "used_memory", used));
    out.push(int("memory", "used_memory_index", s.ks.index_bytes() as u64));
    // Search indexes: part of used_memory (and so of the maxmemory budget), also shown on their own.
    out.push(int("memory", "used_memory_search", s.ks.search_bytes() as u64));
    let ks = s.ks.stats();
    out.push(int("stats", "total_connections_received", s.stats.connections));
    out.push(int("stats", "total_commands_processed", s.stats.commands));
    out.push(int("stats", "total_net_input_bytes", s.stats.net_in));
    out.push(int("stats", "total_net_output_bytes", s.stats.net_out));
    out.push(int("stats", "rejected_connections", s.stats.rejected));
    out.push(int("stats", "client_query_buffer_limit_disconnections", s.stats.qbuf_disconnections));
    out.push(int("stats", "client_output_buffer_limit_disconnections", s.stats.obuf_disconnections));
    out.push(int("stats", "tls_handshake_failures", s.stats.tls_handshake_failures));
    out.push(int("stats", "expired_keys", ks.expired_keys));
    out.push(int("stats", "evicted_keys", ks.evicted_keys));
    tiering(s, &mut out);
    out.push(int("stats", "keyspace_hits", ks.hits));
    out.push(int("stats", "keyspace_misses", ks.misses));
    out.push(int("stats", "total_error_replies", s.cmdstats.total_errors));
    out.push(int("stats", "cross_shard_batches_sent", s.stats.sent_batches));
    out.push(int("stats", "cross_shard_batches_received", s.stats.remote_batches));
    out.push(int("stats", "cross_shard_transactions", s.stats.cross_transactions));
    out.push(int("stats", "cross_shard_transaction_parts", s.stats.cross_parts));
    out.push(int("stats", "cross_shard_lock_waits", s.stats.lock_waits));
    out.push(int("stats", "connections_migrated", s.stats.migrated));
    out.push(int("stats", "executor_rescues", s.shared.heartbeats.rescues(s.id)));
    persistence(s, &mut out);
    command_stats(s, &mut out);
    let log = s.ks.log().map(|l| l.stats()).unwrap_or_default();
    out.push(int("persistence", "log_records_written", log.records));
    out.push(int("persistence", "log_bytes_written", log.bytes_written));
    out.push(int("persistence", "log_flushes", log.flushes));
    out.push(int("persistence", "log_fsyncs", log.fsyncs));
    out.push(int("persistence", "log_segments_created", log.segments_created));
    out.push(int("persistence", "log_segments_prepared", log.segments_prepared));
    out.push(int("persistence", "log_segments", log.segments_on_disk));
    out.push(int("persistence", "log_unwritten_bytes", log.unwritten));
    out.push(int("persistence", "log_unwritten_peak_bytes", log.unwritten_peak));
    out.push(int("persistence", "log_segments_removed", log.segments_removed));
    out.push(int("persistence", "log_disk_bytes", s.ks.log().map_or(0, |l| l.disk_bytes())));
    let writable = s.ks.log().is_none_or(|l| l.check_writable().is_ok());
    out.push(text("persistence", "aof_last_write_status", if writable { "ok" } else { "err" }));
    out.push(int("persistence", "log_write_errors", log.write_errors));
    out.push(int("persistence", "log_write_recoveries", log.write_recoveries));
    out.push(int("persistence", "recovery_records", s.recovery.records));
    out.push(int("persistence", "recovery_bytes", s.recovery.bytes));
    out.push(int("persistence", "recovery_checkpoint_entries", s.recovery.checkpoint.as_ref().map_or(0, |c| c.entries)));
    let mut keys = 0;
    for db in 0..strand_engine::keyspace::DATABASES {
        let n = s.ks.dbsize(db) as u64;
        keys += n;
        if n > 0 {
            out.push(int("keyspace", &format!("db{db}.keys"), n));
            out.push(int("keyspace", &format!("db{db}.expires"), s.ks.expires_count(db) as u64));
        }
    }
    out.push(text(
        "shards",
        &format!("shard{}", s.id),
        format!(
            "keys={keys},used_memory={used},maxmemory={},evicted_keys={},commands={},clients={},log_bytes={},fsyncs={},recovered_records={},recovery_ms={}",
            s.ks.limits().budget,
            ks.evicted_keys,
            s.stats.commands,
            s.clients.len(),
            log.bytes_written,
            log.fsyncs,
            s.recovery.records,
            s.recovery.elapsed.as_millis()
        ),
    ));
    let _ = s.shared.clients.load(Ordering::Relaxed);
    Reply::Array(out)
}

fn human(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.2}G", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.2}M", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.2}K", b as f64 / 1024.0),
        b => format!("{b}B"),
    }
}

const ORDER: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "commandstats",
    "errorstats",
    "latencystats",
    "keyspace",
    "shards",
];
const DEFAULT: &[&str] = &["server", "clients", "memory", "persistence", "stats", "replication", "cpu", "keyspace"];

/// Joins the shards' parts into INFO's text.
pub fn render(parts: Vec<Reply>) -> Reply {
    let mut wanted: Vec<String> = Vec::new();
    let mut fields: Vec<(String, String, Reply)> = Vec::new();
    let mut latency: BTreeMap<String, hdrhistogram::Histogram<u64>> = BTreeMap::new();
    for part in parts {
        let Reply::Array(items) = part else { continue };
        let mut items = items.into_iter();
        if let Some(Reply::Array(w)) = items.next() {
            wanted = w.into_iter().filter_map(|r| if let Reply::Bulk(b) = r { String::from_utf8(b).ok() } else { None }).collect();
        }
        for item in items {
            let Reply::Array(t) = item else { continue };
            let mut t = t.into_iter();
            let (Some(Reply::Bulk(sec)), Some(Reply::Bulk(field)), Some(value)) = (t.next(), t.next(), t.next()) else { continue };
            let (sec, field) = (String::from_utf8_lossy(&sec).into_owned(), String::from_utf8_lossy(&field).into_owned());
            if sec == "latencystats" {
                if let Reply::Bulk(b) = &value {
                    let h = latency.entry(field).or_insert_with(crate::stats::new_histogram);
                    crate::stats::merge_encoded(h, &String::from_utf8_lossy(b));
                }
                continue;
            }
            match fields.iter_mut().find(|(s, f, _)| *s == sec && *f == field) {
                Some((_, _, Reply::Int(acc))) => {
                    if let Reply::Int(v) = value {
                        *acc = match field.as_str() {
                            f if MIN_FIELDS.contains(&f) => (*acc).min(v),
                            f if MAX_FIELDS.contains(&f) => (*acc).max(v),
                            _ => *acc + v,
                        };
                    }
                }
                // Text keeps the first shard's value, except that any shard's `err` wins.
                Some((_, _, kept)) => {
                    if matches!(&value, Reply::Bulk(b) if b == b"err") {
                        *kept = value;
                    }
                }
                None => fields.push((sec, field, value)),
            }
        }
    }
    add_used_memory_human(&mut fields);
    let sections: Vec<&str> = if wanted.is_empty() || wanted.iter().any(|w| w == "default") {
        DEFAULT.to_vec()
    } else if wanted.iter().any(|w| w == "all" || w == "everything") {
        ORDER.to_vec()
    } else {
        ORDER.iter().copied().filter(|s| wanted.iter().any(|w| w == s)).collect()
    };
    let mut out = String::new();
    for sec in sections {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        out.push_str(&format!("# {}{}\r\n", sec[..1].to_uppercase(), &sec[1..]));
        match sec {
            "keyspace" => render_keyspace(&fields, &mut out),
            "commandstats" => render_commandstats(&fields, &mut out),
            "errorstats" => render_errorstats(&fields, &mut out),
            "latencystats" => render_latencystats(&latency, &mut out),
            _ => {}
        }
        if matches!(sec, "keyspace" | "commandstats" | "errorstats" | "latencystats") {
            continue;
        }
        for (s, f, v) in &fields {
            if s == sec {
                match v {
                    Reply::Int(n) => out.push_str(&format!("{f}:{n}\r\n")),
                    Reply::Bulk(b) => out.push_str(&format!("{f}:{}\r\n", String::from_utf8_lossy(b))),
                    _ => {}
                }
            }
        }
    }
    Reply::Verbatim("txt", out.into_bytes())
}

/// `used_memory_human` of the summed `used_memory`, placed right after it.
fn add_used_memory_human(fields: &mut Vec<(String, String, Reply)>) {
    let Some(i) = fields.iter().position(|(s, f, _)| s == "memory" && f == "used_memory") else { return };
    let Reply::Int(total) = fields[i].2 else { return };
    fields.insert(i + 1, ("memory".into(), "used_memory_human".into(), Reply::Bulk(human(total as u64).into_bytes())));
}

fn field_int(fields: &[(String, String, Reply)], sec: &str, name: &str) -> i64 {
    fields.iter().find(|(s, f, _)| s == sec && f == name).map_or(0, |(_, _, v)| if let Reply::Int(n) = v { *n } else { 0 })
}

/// `cmdstat_<name>:calls=..,usec=..,usec_per_call=..,rejected_calls=..,failed_calls=..`, by name.
fn render_commandstats(fields: &[(String, String, Reply)], out: &mut String) {
    let mut names: Vec<&str> =
        fields.iter().filter(|(s, _, _)| s == "commandstats").filter_map(|(_, f, _)| f.strip_suffix(".calls")).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let get = |what: &str| field_int(fields, "commandstats", &format!("{name}.{what}"));
        let (calls, usec) = (get("calls"), get("nanos") / 1000);
        let per_call = if calls > 0 { get("nanos") as f64 / 1000.0 / calls as f64 } else { 0.0 };
        out.push_str(&format!(
            "cmdstat_{name}:calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
            get("rejected"),
            get("failed")
        ));
    }
}

/// `errorstat_<KIND>:count=..`, by kind.
fn render_errorstats(fields: &[(String, String, Reply)], out: &mut String) {
    let mut kinds: Vec<(&str, i64)> = fields
        .iter()
        .filter(|(s, _, _)| s == "errorstats")
        .map(|(_, f, v)| (f.as_str(), if let Reply::Int(n) = v { *n } else { 0 }))
        .collect();
    kinds.sort_unstable();
    for (f, n) in kinds {
        out.push_str(&format!("errorstat_{f}:count={n}\r\n"));
    }
}

/// `latency_percentiles_usec_<name>:p50=..,p99=..,p99.9=..` from the merged histograms.
fn render_latencystats(latency: &BTreeMap<String, hdrhistogram::Histogram<u64>>, out: &mut String) {
    for (name, h) in latency {
        let p = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        out.push_str(&format!("latency_percentiles_usec_{name}:p50={:.3},p99={:.3},p99.9={:.3}\r\n", p(0.50), p(0.99), p(0.999)));
    }
}

fn render_keyspace(fields: &[(String, String, Reply)], out: &mut String) {
    for db in 0..strand_engine::keyspace::DATABASES {
        let get = |name: String| {
            fields.iter().find(|(s, f, _)| s == "keyspace" && *f == name).map_or(0, |(_, _, v)| if let Reply::Int(n) = v { *n } else { 0 })
        };
        let keys = get(format!("db{db}.keys"));
        if keys > 0 {
            out.push_str(&format!("db{db}:keys={keys},expires={},avg_ttl=0\r\n", get(format!("db{db}.expires"))));
        }
    }
}
