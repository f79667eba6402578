//! `strand-tools`: check, dump, repair, stats and compact strand data directories.
//!
//! A data directory holds one `shard-NNN/` directory per shard, each with the
//! shard's log segments `SSSSSSSSSSSSSSSS.seg` (see
//! `strand_engine::log::segment` for the byte layout). Every subcommand works
//! on every shard directory, or on one with `--shard N`, and never needs the
//! server:
//!
//! - `check` replays each shard's log exactly as start-up recovery does
//!   (`strand_engine::log::recovery::recover`), decoding every record's
//!   payload to validate it but building no keyspace. Exit code: 0 when every
//!   shard is clean, 1 when a torn tail would be cut from a last segment (the
//!   server does that itself at start-up), 2 when a log is damaged anywhere
//!   else or cannot be read (the server refuses to start).
//! - `dump` prints one line per record: shard, segment, offset, LSN, time,
//!   and an op summary such as `SET db=0 key="foo" len=3 expire=0`.
//! - `repair` deals with damage the server will not cut by itself: with
//!   `--yes` it renames the damaged segment and every later segment of that
//!   shard to `*.seg.damaged`, so the server starts from the log up to the
//!   last good segment, after printing exactly which records and bytes that
//!   drops. Without `--yes` it only says what it would do (exit 1); with
//!   nothing to do it exits 0.
//!
//! - `stats` (module [`stats`]) reports segments, checkpoints, records and
//!   bytes per kind, keys per database and type, and live against disk
//!   bytes; `--json` for a machine-readable document. Read-only.
//! - `compact` (module [`compact`]) compacts a stopped server's directory
//!   offline: a checkpoint at the last LSN, then what the server's own
//!   compaction removes.
//!
//! Long runs draw a progress line on stderr when it is a terminal
//! (module [`progress`]). Every error names the file and the offset. Nothing read from disk is
//! trusted: no `unwrap` on it, every length is bounds-checked.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod compact;
mod progress;
mod state;
mod stats;

use clap::{Parser, Subcommand};
use strand_engine::keyspace::change::{kinds as change, Change};
use strand_engine::keyspace::op::{kinds, Op};
use strand_engine::keyspace::stream::StreamChange;
use strand_engine::log::record::kind;
use strand_engine::log::recovery::{self, Recovered, RecoveryError};
use strand_engine::log::segment::{self, SegmentHeader, Step, DATA_START, SEGMENT_HEADER_LEN};

/// Exit code: every shard is clean (or there was nothing to do).
const EXIT_CLEAN: u8 = 0;
/// Exit code: a torn tail would be cut (check), or repair has work it was not allowed to do.
const EXIT_TAIL: u8 = 1;
/// Exit code: damage beyond a torn tail, or an unreadable directory.
const EXIT_DAMAGED: u8 = 2;

#[derive(Parser, Debug)]
#[command(name = "strand-tools", version, about = "Check, dump, repair, inspect and compact strand data directories")]
struct Cli {
    /// The data directory (the server's `--dir`); also accepted as the
    /// subcommand's DIR argument. Default: ./strand-data.
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    /// Only this shard (the NNN of `shard-NNN`); default: every shard directory.
    #[arg(long, global = true)]
    shard: Option<u32>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Replay every shard's log as recovery does and report what it finds.
    /// Exit 0: clean; 1: a torn tail would be cut; 2: damaged beyond the tail.
    Check {
        /// The data directory (same as --dir).
        #[arg(value_name = "DIR")]
        path: Option<PathBuf>,
    },
    /// Print every record, one per line: shard segment offset lsn time kind op-summary.
    Dump {
        /// The data directory (same as --dir).
        #[arg(value_name = "DIR")]
        path: Option<PathBuf>,
        /// Stop after this many records (over all shards).
        #[arg(long)]
        limit: Option<u64>,
        /// Also print values (escaped, the first 64 bytes).
        #[arg(long)]
        values: bool,
    },
    /// Set aside a damaged segment and every later one of its shard as `*.seg.damaged`.
    /// Without --yes only says what it would do.
    Repair {
        /// The data directory (same as --dir).
        #[arg(value_name = "DIR")]
        path: Option<PathBuf>,
        /// Actually rename the files.
        #[arg(long)]
        yes: bool,
    },
    /// Segments, checkpoints, records and bytes per kind, keys per database and
    /// type at the end of the log, live bytes against disk bytes. Read-only.
    Stats {
        /// The data directory (same as --dir).
        #[arg(value_name = "DIR")]
        path: Option<PathBuf>,
        /// One JSON document on stdout instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Offline compaction of a stopped server's directory: a checkpoint at the
    /// last LSN, then removes what the server's own compaction would.
    /// Refuses while DIR/LOCK is held.
    Compact {
        /// The data directory (same as --dir).
        #[arg(value_name = "DIR")]
        path: Option<PathBuf>,
    },
}

impl Cmd {
    /// The DIR argument, if given.
    fn path(&self) -> Option<&PathBuf> {
        match self {
            Cmd::Check { path } | Cmd::Dump { path, .. } | Cmd::Repair { path, .. } | Cmd::Stats { path, .. } | Cmd::Compact { path } => {
                path.as_ref()
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dir = match (cli.cmd.path(), &cli.dir) {
        (Some(a), Some(b)) if a != b => {
            eprintln!("strand-tools: two data directories given: {} and --dir {}", a.display(), b.display());
            return ExitCode::from(EXIT_DAMAGED);
        }
        (Some(d), _) | (None, Some(d)) => d.clone(),
        (None, None) => PathBuf::from("./strand-data"),
    };
    let shards = match shard_dirs(&dir, cli.shard) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("strand-tools: {e}");
            return ExitCode::from(EXIT_DAMAGED);
        }
    };
    let code = match cli.cmd {
        Cmd::Check { .. } => check(&shards),
        Cmd::Dump { limit, values, .. } => dump(&shards, limit, values),
        Cmd::Repair { yes, .. } => repair(&shards, yes),
        Cmd::Stats { json, .. } => stats::stats(&shards, json),
        Cmd::Compact { .. } => compact::compact(&dir, &shards),
    };
    ExitCode::from(code)
}

/// The shard directories to work on, sorted by shard number.
fn shard_dirs(dir: &Path, only: Option<u32>) -> Result<Vec<(u32, PathBuf)>, String> {
    if let Some(n) = only {
        let path = segment::shard_dir(dir, n);
        if !path.is_dir() {
            return Err(format!("{}: no such shard directory", path.display()));
        }
        return Ok(vec![(n, path)]);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = entry.file_name();
        let Some(n) = name.to_str().and_then(|s| s.strip_prefix("shard-")).and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if entry.path().is_dir() {
            out.push((n, entry.path()));
        }
    }
    if out.is_empty() {
        return Err(format!("{}: no shard-NNN directories (is this a strand data directory?)", dir.display()));
    }
    out.sort_unstable_by_key(|(n, _)| *n);
    Ok(out)
}

/// The replay callback of `check` and `repair`: every payload must decode.
fn validate(r: recovery::Replayed<'_>) -> Result<(), String> {
    Op::decode(r.header.kind, r.payload).map(|_| ()).map_err(|e| format!("invalid {} payload: {e}", kind_name(r.header.kind)))
}

/// Replays a shard with [`validate`], drawing a progress line on a terminal.
fn validate_with_progress(n: u32, what: &str, dir: &Path) -> Result<Recovered, RecoveryError> {
    let mut pos = progress::SegmentPosition::new(dir);
    let mut bar = progress::Progress::new(format!("shard-{n:03} {what}"), pos.total());
    let result = recovery::recover(dir, recovery::Base::Any, |r| {
        bar.set(pos.done(r.path, r.offset));
        validate(r)
    });
    bar.finish();
    result
}

/// A recovery error as one line that names the file and the offset.
fn describe(e: &RecoveryError) -> String {
    match e {
        RecoveryError::Io { path, source } => format!("{}: {source}", path.display()),
        RecoveryError::Header { path, reason } => format!("{} at offset 0: invalid segment header: {reason}", path.display()),
        RecoveryError::Corrupt { path, offset, reason } => {
            format!("{} at offset {offset}: {reason} (inside a sealed segment: damage, not a torn tail)", path.display())
        }
        RecoveryError::Gap { path, offset, expected, found } => {
            format!("{} at offset {offset}: expected LSN {expected}, found {found}", path.display())
        }
        RecoveryError::Apply { path, offset, lsn, reason } => format!("{} at offset {offset} (LSN {lsn}): {reason}", path.display()),
        RecoveryError::Missing { .. } | RecoveryError::Short { .. } => e.to_string(),
    }
}

/// The segment file a recovery error puts the damage in, if it is one.
fn damaged_file(e: &RecoveryError) -> Option<&Path> {
    match e {
        RecoveryError::Io { .. } | RecoveryError::Missing { .. } | RecoveryError::Short { .. } => None,
        RecoveryError::Header { path, .. }
        | RecoveryError::Corrupt { path, .. }
        | RecoveryError::Gap { path, .. }
        | RecoveryError::Apply { path, .. } => Some(path),
    }
}

/// Reads and verifies the header block of a segment file.
fn read_header(path: &Path) -> Result<SegmentHeader, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut head = Vec::with_capacity(SEGMENT_HEADER_LEN);
    file.take(SEGMENT_HEADER_LEN as u64).read_to_end(&mut head).map_err(|e| format!("{}: {e}", path.display()))?;
    SegmentHeader::decode(&head).map_err(|reason| format!("{} at offset 0: {reason}", path.display()))
}

/// Last segments whose header never became valid: recovery ignores them.
fn ignored_tail_segments(shard_dir: &Path) -> Vec<String> {
    let Ok(list) = segment::list_segments(shard_dir) else { return Vec::new() };
    let mut out = Vec::new();
    for (_, path) in list.iter().rev() {
        match read_header(path) {
            Ok(_) => break,
            Err(e) => out.push(e),
        }
    }
    out.reverse();
    out
}

fn summary(r: &Recovered) -> String {
    format!("{} segments, {} records, {} bytes, next LSN {}", r.segments, r.records, r.bytes, r.next_lsn)
}

// ---------------------------------------------------------------------------
// check

fn check(shards: &[(u32, PathBuf)]) -> u8 {
    let mut worst = EXIT_CLEAN;
    let (mut records, mut bytes) = (0u64, 0u64);
    for (n, dir) in shards {
        let code = check_shard(*n, dir, &mut records, &mut bytes);
        worst = worst.max(code);
    }
    let verdict = match worst {
        EXIT_CLEAN => "clean",
        EXIT_TAIL => "torn tail(s) that the server cuts at start-up",
        _ => "DAMAGED (the server will not start; see `strand-tools repair`)",
    };
    println!("total: {} shards, {records} records, {bytes} bytes: {verdict}", shards.len());
    worst
}

fn check_shard(n: u32, dir: &Path, records: &mut u64, bytes: &mut u64) -> u8 {
    for note in ignored_tail_segments(dir) {
        println!("shard-{n:03}: note: {note}; creation of this last segment was interrupted, recovery ignores it");
    }
    check_checkpoints(n, dir);
    let replayed = validate_with_progress(n, "check", dir);
    match replayed {
        Ok(r) => {
            *records += r.records;
            *bytes += r.bytes;
            match &r.cut {
                None => {
                    println!("shard-{n:03}: {}: clean", summary(&r));
                    EXIT_CLEAN
                }
                Some(cut) => {
                    println!(
                        "shard-{n:03}: {}: torn tail would be cut: {} at offset {}: {} ({} non-zero bytes from there on; never acknowledged, the server cuts it at start-up)",
                        summary(&r),
                        cut.file.display(),
                        cut.offset,
                        cut.reason,
                        cut.nonzero_bytes
                    );
                    EXIT_TAIL
                }
            }
        }
        Err(e) => {
            println!("shard-{n:03}: DAMAGED: {}", describe(&e));
            EXIT_DAMAGED
        }
    }
}

/// Verifies every checkpoint of a shard, decoding each entry. A damaged one
/// does not stop the server (it falls back to an older one or the log), so it is a note.
fn check_checkpoints(n: u32, dir: &Path) {
    let list = match strand_engine::checkpoint::list(dir) {
        Ok(l) => l,
        Err(e) => return println!("shard-{n:03}: note: cannot list checkpoints: {e}"),
    };
    for (lsn, path) in list {
        let mut scratch = strand_engine::keyspace::Keyspace::new(None);
        let loaded = strand_engine::checkpoint::load(&path, |c| {
            scratch.load_snapshot_chunk(c.payload, c.entries, c.time_ms).map_err(|e| e.to_string())
        });
        match loaded {
            Ok(l) => println!(
                "shard-{n:03}: checkpoint {} (state up to LSN {lsn}): {} entries, {} bytes: ok",
                path.display(),
                l.entries,
                l.bytes
            ),
            Err(e) => println!("shard-{n:03}: note: checkpoint DAMAGED, the server sets it aside and falls back: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------
// dump

const STOP: &str = "\u{0}strand-tools: stop";

fn dump(shards: &[(u32, PathBuf)], limit: Option<u64>, values: bool) -> u8 {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let mut worst = EXIT_CLEAN;
    let mut line = String::new();
    for (n, dir) in shards {
        if limit.is_some_and(|l| printed >= l) {
            break;
        }
        let mut stopped = false;
        let result = recovery::recover(dir, recovery::Base::Any, |r| {
            if limit.is_some_and(|l| printed >= l) {
                stopped = true;
                return Err(STOP.into());
            }
            line.clear();
            let file = r.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            let _ = write!(line, "{n:03} {file} {} {} {} ", r.offset, r.header.lsn(), format_time(r.header.time_ms()));
            match Op::decode(r.header.kind, r.payload) {
                Ok(op) => summarize(&op, values, &mut line),
                Err(e) => {
                    let _ = write!(line, "{} <invalid payload of {} bytes: {e}>", kind_name(r.header.kind), r.payload.len());
                }
            }
            line.push('\n');
            if out.write_all(line.as_bytes()).is_err() {
                // stdout closed (e.g. piped into `head`): stop quietly.
                stopped = true;
                return Err(STOP.into());
            }
            printed += 1;
            Ok(())
        });
        let _ = out.flush();
        match result {
            Ok(r) => {
                if let Some(cut) = &r.cut {
                    eprintln!(
                        "shard-{n:03}: torn tail: {} at offset {}: {} (the server cuts it at start-up)",
                        cut.file.display(),
                        cut.offset,
                        cut.reason
                    );
                    worst = worst.max(EXIT_TAIL);
                }
            }
            Err(RecoveryError::Apply { ref reason, .. }) if stopped && reason == STOP => break,
            Err(e) => {
                eprintln!("shard-{n:03}: DAMAGED: {}", describe(&e));
                worst = worst.max(EXIT_DAMAGED);
            }
        }
    }
    let _ = out.flush();
    worst
}

/// The name of a record kind.
fn kind_name(k: u8) -> String {
    let name = match k {
        kind::PAD => "PAD",
        kinds::SET => "SET",
        kinds::DEL => "DEL",
        kinds::EXPIRE => "EXPIRE",
        kinds::APPEND => "APPEND",
        kinds::SETRANGE => "SETRANGE",
        kinds::MSET => "MSET",
        kinds::RENAME => "RENAME",
        kinds::COPY => "COPY",
        kinds::MOVE => "MOVE",
        kinds::SWAPDB => "SWAPDB",
        kinds::FLUSHDB => "FLUSHDB",
        kinds::FLUSHALL => "FLUSHALL",
        kinds::STORE => "STORE",
        kinds::GROUP => "GROUP",
        kinds::TX => "TX",
        kinds::SEARCH => "SEARCH",
        change::HSET => "HSET",
        change::HDEL => "HDEL",
        change::LPUSH => "LPUSH",
        change::LPOP => "LPOP",
        change::LSET => "LSET",
        change::LINSERT => "LINSERT",
        change::LREM => "LREM",
        change::LTRIM => "LTRIM",
        change::SADD => "SADD",
        change::SREM => "SREM",
        change::ZADD => "ZADD",
        change::ZREM => "ZREM",
        change::STREAM => "STREAM",
        change::QUEUE => "QUEUE",
        other => return format!("kind-0x{other:02x}"),
    };
    name.to_string()
}

/// One op as `NAME field=value ...`.
fn summarize(op: &Op<'_>, values: bool, out: &mut String) {
    let value = |v: &[u8], out: &mut String| {
        if values {
            out.push_str(" value=");
            escape(&v[..v.len().min(64)], out);
            if v.len() > 64 {
                out.push_str("...");
            }
        }
    };
    let key = |name: &str, k: &[u8], out: &mut String| {
        let _ = write!(out, " {name}=");
        escape(k, out);
    };
    out.push_str(&kind_name(op.kind()));
    match op {
        Op::Set { db, key: k, value: v, expire_ms } => {
            let _ = write!(out, " db={db}");
            key("key", k, out);
            let _ = write!(out, " len={} expire={expire_ms}", v.len());
            value(v, out);
        }
        Op::Del { db, key: k } => {
            let _ = write!(out, " db={db}");
            key("key", k, out);
        }
        Op::Expire { db, key: k, expire_ms } => {
            let _ = write!(out, " db={db}");
            key("key", k, out);
            let _ = write!(out, " expire={expire_ms}");
        }
        Op::Append { db, key: k, data } => {
            let _ = write!(out, " db={db}");
            key("key", k, out);
            let _ = write!(out, " len={}", data.len());
            value(data, out);
        }
        Op::SetRange { db, key: k, offset, data } => {
            let _ = write!(out, " db={db}");
            key("key", k, out);
            let _ = write!(out, " offset={offset} len={}", data.len());
            value(data, out);
        }
        Op::MSet { db, pairs } => {
            let _ = write!(out, " db={db} pairs={}", pairs.len());
            for (k, v) in pairs.iter().take(8) {
                key("key", k, out);
                let _ = write!(out, " len={}", v.len());
                value(v, out);
            }
            if pairs.len() > 8 {
                out.push_str(" ...");
            }
        }
        Op::Rename { db, src, dst } => {
            let _ = write!(out, " db={db}");
            key("src", src, out);
            key("dst", dst, out);
        }
        Op::Copy { src_db, src, dst_db, dst } => {
            let _ = write!(out, " src_db={src_db}");
            key("src", src, out);
            let _ = write!(out, " dst_db={dst_db}");
            key("dst", dst, out);
        }
        Op::Move { db, key: k, dst_db } => {
            let _ = write!(out, " db={db}");
            key("key", k, out);
            let _ = write!(out, " dst_db={dst_db}");
        }
        Op::SwapDb { a, b } => {
            let _ = write!(out, " a={a} b={b}");
        }
        Op::FlushDb { db } => {
            let _ = write!(out, " db={db}");
        }
        Op::FlushAll => {}
        Op::Coll { db, key: k, change } => {
            let _ = write!(out, " db={db}");
            key("key", k, out);
            summarize_change(change, values, out);
        }
        Op::Store { db, key: k, value: v, expire_ms } => {
            let _ = write!(out, " db={db}");
            key("key", k, out);
            let _ = write!(out, " type={} len={} expire={expire_ms}", v.type_name(), v.len());
        }
        Op::Search { db, tag, body } => {
            let what = if *tag == strand_engine::keyspace::op::search_tag::DROP { "drop" } else { "define" };
            let _ = write!(out, " db={db} {what} len={}", body.len());
        }
        Op::Group(ops) => {
            let _ = write!(out, " ops={}", ops.len());
            for op in ops {
                out.push_str(" [");
                summarize(op, values, out);
                out.push(']');
            }
        }
    }
}

/// The fields of a collection change.
fn summarize_change(change: &Change<'_>, values: bool, out: &mut String) {
    let elems = |v: &[&[u8]], out: &mut String| {
        let _ = write!(out, " n={}", v.len());
        if values {
            for e in v.iter().take(8) {
                out.push(' ');
                escape(&e[..e.len().min(64)], out);
            }
        }
    };
    match change {
        Change::HSet(pairs) => {
            let _ = write!(out, " fields={}", pairs.len());
            if values {
                for (f, v) in pairs.iter().take(8) {
                    out.push(' ');
                    escape(f, out);
                    out.push('=');
                    escape(&v[..v.len().min(64)], out);
                }
            }
        }
        Change::HDel(v) | Change::SAdd(v) | Change::SRem(v) | Change::ZRem(v) => elems(v, out),
        Change::LPush { left, elems: v } => {
            let _ = write!(out, " side={}", if *left { "left" } else { "right" });
            elems(v, out);
        }
        Change::LPop { left, count } => {
            let _ = write!(out, " side={} count={count}", if *left { "left" } else { "right" });
        }
        Change::LSet { index, .. } => {
            let _ = write!(out, " index={index}");
        }
        Change::LInsert { before, .. } => {
            let _ = write!(out, " where={}", if *before { "before" } else { "after" });
        }
        Change::LRem { count, .. } => {
            let _ = write!(out, " count={count}");
        }
        Change::LTrim { start, stop } => {
            let _ = write!(out, " start={start} stop={stop}");
        }
        Change::ZAdd(pairs) => {
            let _ = write!(out, " n={}", pairs.len());
            if values {
                for (score, m) in pairs.iter().take(8) {
                    out.push(' ');
                    escape(m, out);
                    let _ = write!(out, "={score}");
                }
            }
        }
        Change::Stream(c) => summarize_stream(c, values, out),
        Change::Queue(c) => {
            let _ = write!(out, " queue={:?} at={}", c.op, c.at);
        }
        series => summarize_series(series, values, out),
    }
}

/// The fields of a time-series change.
fn summarize_series(change: &Change<'_>, values: bool, out: &mut String) {
    let key = |name: &str, k: &[u8], out: &mut String| {
        let _ = write!(out, " {name}=");
        escape(k, out);
    };
    match change {
        Change::TsCreate(c) | Change::TsAlter(c) => {
            let what = if matches!(change, Change::TsCreate(_)) { "create" } else { "alter" };
            let _ = write!(out, " ts={what} retention={} labels={}", c.settings.retention_ms, c.labels.len());
        }
        Change::TsAdd(samples) => {
            let _ = write!(out, " ts=add n={}", samples.len());
            if values {
                for (t, v) in samples.iter().take(8) {
                    let _ = write!(out, " {t}={v}");
                }
            }
        }
        Change::TsDel { from, to } => {
            let _ = write!(out, " ts=del from={from} to={to}");
        }
        Change::TsRule { dest, agg, bucket_ms, .. } => {
            out.push_str(" ts=rule");
            key("dest", dest, out);
            let _ = write!(out, " agg={} bucket={bucket_ms}", agg.name());
        }
        Change::TsUnrule(dest) => {
            out.push_str(" ts=unrule");
            key("dest", dest, out);
        }
        Change::TsSource(src) => {
            out.push_str(" ts=source");
            if let Some(s) = src {
                key("src", s, out);
            }
        }
        _ => {}
    }
}

/// The fields of a stream change.
fn summarize_stream(c: &StreamChange<'_>, values: bool, out: &mut String) {
    let named = |what: &str, name: &[u8], out: &mut String| {
        let _ = write!(out, " {what}=");
        escape(name, out);
    };
    match c {
        StreamChange::Add { id, fields } | StreamChange::IdmpAdd { id, fields, .. } => {
            let _ = write!(out, " stream=add id={id} fields={}", fields.len() / 2);
            if let StreamChange::IdmpAdd { pid, iid, .. } = c {
                named("pid", pid, out);
                named("iid", iid, out);
            }
            if values {
                for pair in fields.chunks(2).take(8) {
                    out.push(' ');
                    escape(pair[0], out);
                    out.push('=');
                    escape(&pair[1][..pair[1].len().min(64)], out);
                }
            }
        }
        StreamChange::Trim { count } => {
            let _ = write!(out, " stream=trim count={count}");
        }
        StreamChange::IdmpConfig { duration_s, maxsize } => {
            let _ = write!(out, " stream=idmp-config duration={duration_s}s maxsize={maxsize}");
        }
        StreamChange::IdmpDuplicate => out.push_str(" stream=idmp-duplicate"),
        StreamChange::Retention(r) => {
            let _ = write!(out, " stream=retention ms={} bytes={}", r.ms, r.bytes);
        }
        StreamChange::Del(ids) => {
            let _ = write!(out, " stream=del n={}", ids.len());
        }
        StreamChange::Unref(ids) => {
            let _ = write!(out, " stream=unref n={}", ids.len());
        }
        StreamChange::SetId { last_id, entries_added, max_deleted } => {
            let _ = write!(out, " stream=setid last={last_id} entries_added={entries_added:?} max_deleted={max_deleted:?}");
        }
        StreamChange::GroupCreate { group, last_id, .. } | StreamChange::GroupSetId { group, last_id, .. } => {
            out.push_str(if matches!(c, StreamChange::GroupCreate { .. }) { " stream=group-create" } else { " stream=group-setid" });
            named("group", group, out);
            let _ = write!(out, " last={last_id}");
        }
        StreamChange::GroupDestroy { group } => {
            out.push_str(" stream=group-destroy");
            named("group", group, out);
        }
        StreamChange::ConsumerCreate { group, consumer } | StreamChange::ConsumerDel { group, consumer } => {
            out.push_str(if matches!(c, StreamChange::ConsumerCreate { .. }) { " stream=consumer-create" } else { " stream=consumer-del" });
            named("group", group, out);
            named("consumer", consumer, out);
        }
        StreamChange::Deliver(d) => {
            out.push_str(" stream=deliver");
            named("group", d.group, out);
            if let Some(name) = d.consumer {
                named("consumer", name, out);
            }
            let _ = write!(out, " pending={} unpend={}", d.pending.len(), d.unpend.len());
            if let Some((id, _)) = d.last_id {
                let _ = write!(out, " last={id}");
            }
        }
        StreamChange::Ack { group, ids } => {
            out.push_str(" stream=ack");
            named("group", group, out);
            let _ = write!(out, " n={}", ids.len());
        }
    }
}

/// Bytes as a double-quoted string: printable ASCII as is, `"` and `\`
/// backslash-escaped, everything else as `\xNN`.
fn escape(bytes: &[u8], out: &mut String) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
fn format_time(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem / 60 % 60, rem % 60, ms % 1000)
}

// ---------------------------------------------------------------------------
// repair

fn repair(shards: &[(u32, PathBuf)], yes: bool) -> u8 {
    let mut worst = EXIT_CLEAN;
    for (n, dir) in shards {
        worst = worst.max(repair_shard(*n, dir, yes));
    }
    worst
}

fn repair_shard(n: u32, dir: &Path, yes: bool) -> u8 {
    let err = match validate_with_progress(n, "repair", dir) {
        Ok(r) => {
            match &r.cut {
                Some(cut) => println!(
                    "shard-{n:03}: nothing to do: torn tail in {} at offset {} ({}) is cut by the server at start-up",
                    cut.file.display(),
                    cut.offset,
                    cut.reason
                ),
                None => println!("shard-{n:03}: nothing to do: {}: clean", summary(&r)),
            }
            return EXIT_CLEAN;
        }
        Err(e) => e,
    };
    println!("shard-{n:03}: DAMAGED: {}", describe(&err));
    let Some(bad) = damaged_file(&err) else {
        println!("shard-{n:03}: cannot repair: the directory or a file cannot be read; fix that first");
        return EXIT_DAMAGED;
    };
    let list = match segment::list_segments(dir) {
        Ok(l) => l,
        Err(e) => {
            println!("shard-{n:03}: cannot repair: {}: {e}", dir.display());
            return EXIT_DAMAGED;
        }
    };
    let Some(first) = list.iter().position(|(_, p)| p == bad) else {
        println!("shard-{n:03}: cannot repair: {} is not a segment of {}", bad.display(), dir.display());
        return EXIT_DAMAGED;
    };
    // Damage inside a sealed segment: keep that segment and move only the later
    // ones aside. It then is the last segment, and the server cuts it at the
    // damage, keeping every record before it. Other damage (a bad header, an
    // LSN gap, a record a view refuses) moves the damaged segment aside too.
    let keep = match &err {
        RecoveryError::Corrupt { offset, .. } => Some(*offset),
        _ => None,
    };
    let affected = match keep {
        Some(offset) => {
            println!(
                "shard-{n:03}: keeping {}: its records before offset {offset} stay, and the server cuts it there at start-up",
                bad.display()
            );
            &list[first + 1..]
        }
        None => &list[first..],
    };
    let verb = if yes { "moving" } else { "would move" };
    let (mut records, mut data_bytes, mut file_bytes) = (0u64, 0u64, 0u64);
    for (i, (_, path)) in affected.iter().enumerate() {
        let this = read_header(path).ok();
        let next = affected.get(i + 1).and_then(|(_, next)| read_header(next).ok());
        // Where the next segment says this one's data ends, if it says so.
        let scan = scan_segment(path, next.map(|h| h.prev_end.get()));
        let target = damaged_name(path);
        let mut line = format!("shard-{n:03}: {verb} {} -> {}: ", path.display(), target.display());
        match &scan {
            Ok(s) => {
                file_bytes += s.file_len;
                // The next segment's header tells exactly which LSNs and bytes this one holds,
                // even past the damage; without it only what is readable can be counted.
                let exact = match (this, next) {
                    (Some(h), Some(nx)) if nx.first_lsn.get() >= h.first_lsn.get() => {
                        Some((h.first_lsn.get(), nx.first_lsn.get(), nx.prev_end.get()))
                    }
                    _ => None,
                };
                let (count, lsns, data) = match exact {
                    Some((lo, hi, end)) => (hi - lo, (hi > lo).then(|| (lo, hi - 1)), end.saturating_sub(DATA_START)),
                    None => (s.records, s.lsns, s.end.saturating_sub(DATA_START)),
                };
                records += count;
                data_bytes += data;
                let _ = write!(line, "drops {count} records");
                if let Some((lo, hi)) = lsns {
                    let _ = write!(line, " (LSN {lo}..={hi})");
                }
                let _ = write!(line, ", {data} bytes of record data, {} bytes of file", s.file_len);
                if let Some((offset, reason)) = &s.stop {
                    let _ = write!(line, "; {} readable before offset {offset}: {reason}", s.records);
                    if exact.is_none() {
                        let _ = write!(line, " (what follows cannot be counted)");
                    }
                }
            }
            Err(e) => {
                let _ = write!(line, "unreadable: {e}");
            }
        }
        println!("{line}");
    }
    println!(
        "shard-{n:03}: {} {} segment(s): {records} records, {data_bytes} bytes of record data, {file_bytes} bytes of files; the server then starts from the log before {}",
        if yes { "dropping" } else { "would drop" },
        affected.len(),
        match keep {
            Some(offset) => format!("offset {offset} of {}", bad.display()),
            None => bad.display().to_string(),
        }
    );
    if !yes {
        println!("shard-{n:03}: run `strand-tools repair --yes` to do it (the files are renamed, not deleted)");
        return EXIT_TAIL;
    }
    // Last segment first: if interrupted, what remains is still a prefix of the log.
    for (_, path) in affected.iter().rev() {
        let target = damaged_name(path);
        if let Err(e) = std::fs::rename(path, &target) {
            println!("shard-{n:03}: rename {} -> {}: {e}", path.display(), target.display());
            return EXIT_DAMAGED;
        }
    }
    if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        println!("shard-{n:03}: fsync of directory {}: {e}", dir.display());
        return EXIT_DAMAGED;
    }
    match recovery::recover(dir, recovery::Base::Any, validate) {
        Ok(r) => {
            println!("shard-{n:03}: repaired: {}", summary(&r));
            if let Some(cut) = &r.cut {
                println!(
                    "shard-{n:03}: the server will cut {} at offset {} ({}) when it starts",
                    cut.file.display(),
                    cut.offset,
                    cut.reason
                );
            }
            EXIT_CLEAN
        }
        Err(e) => {
            println!("shard-{n:03}: still DAMAGED after the repair: {}; run repair again", describe(&e));
            EXIT_DAMAGED
        }
    }
}

/// A free `*.seg.damaged` name for a segment (`.damaged.1`, `.2` ... if taken).
fn damaged_name(path: &Path) -> PathBuf {
    let base = path.as_os_str().to_owned();
    let mut name = base.clone();
    name.push(".damaged");
    let mut i = 1;
    while Path::new(&name).exists() {
        name = base.clone();
        name.push(format!(".damaged.{i}"));
        i += 1;
    }
    PathBuf::from(name)
}

/// What one segment file holds, read on its own.
struct Scan {
    /// Valid records (PAD excluded) before the first invalid one.
    records: u64,
    /// Their first and last LSN.
    lsns: Option<(u64, u64)>,
    /// Where the valid records end.
    end: u64,
    /// The first invalid record (offset, reason), if non-zero bytes follow it.
    stop: Option<(u64, String)>,
    /// Size of the file.
    file_len: u64,
}

/// Reads a segment's valid records, up to `sealed_end` if given, the way recovery does.
fn scan_segment(path: &Path, sealed_end: Option<u64>) -> Result<Scan, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file_len = bytes.len() as u64;
    let header = match SegmentHeader::decode(&bytes) {
        Ok(h) => h,
        Err(reason) => return Ok(Scan { records: 0, lsns: None, end: DATA_START, stop: Some((0, reason.to_string())), file_len }),
    };
    let seed = header.seed.get();
    let limit = sealed_end.map_or(bytes.len(), |e| usize::try_from(e).unwrap_or(usize::MAX).min(bytes.len()));
    let mut scan = Scan { records: 0, lsns: None, end: DATA_START, stop: None, file_len };
    let mut walk = segment::Walk::new(&bytes, seed, limit);
    loop {
        match walk.next_step() {
            Step::Record { header: rec, .. } => {
                if rec.kind != kind::PAD {
                    scan.records += 1;
                    let lsn = rec.lsn();
                    scan.lsns = Some(scan.lsns.map_or((lsn, lsn), |(lo, _)| (lo, lsn)));
                }
            }
            Step::Invalid { offset, why } => {
                if bytes[offset..].iter().any(|b| *b != 0) {
                    scan.stop = Some((offset as u64, why.to_string()));
                }
                scan.end = offset as u64;
                return Ok(scan);
            }
            Step::End { offset } => {
                scan.end = offset as u64;
                return Ok(scan);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_keys() {
        let mut s = String::new();
        escape(b"a\"b\\c\x00\xff d", &mut s);
        assert_eq!(s, r#""a\"b\\c\x00\xff d""#);
    }

    #[test]
    fn formats_time() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(format_time(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
    }
}
