//! Checkpoints of a shard: loading the newest at start-up, taking one
//! (SAVE, BGSAVE, SHUTDOWN, the interval, log growth), and removing the log
//! segments and older checkpoints it makes unnecessary.
//!
//! A checkpoint is the keyspace as of one LSN (`Keyspace::snapshot_*`),
//! written with `strand_engine::checkpoint`. It is taken while the shard
//! serves, in a task queue of its own whose shares follow the backlog
//! (see [`adjust_shares`]), paced by `--compaction-rate`. Once
//! it is durable (and the log is durable up to its LSN), the two newest
//! checkpoints stay and every segment whose records the older of them holds
//! is removed: a damaged newest checkpoint then falls back to the one before
//! it plus a longer replay. This is how the log stays bounded: live data
//! is rewritten into a checkpoint, and whole segments are dropped.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use strand_engine::checkpoint::{self as file, Loaded};
use strand_engine::keyspace::Keyspace;
use strand_engine::log::recovery::Base;
use strand_engine::runtime;

use crate::dispatch::Shard;
use crate::reply::Reply;

/// Most bytes of encoded entries gathered per slice of the walk.
const SLICE: usize = 1 << 20;

/// The slice for a pace of `rate` bytes per second: about 1/16 s of writing,
/// so pacing is smooth, within 4 KiB ..= [`SLICE`].
fn slice(rate: u64) -> usize {
    if rate == 0 {
        SLICE
    } else {
        ((rate / 16) as usize).clamp(4096, SLICE)
    }
}

/// How often the shard checks whether a checkpoint is due.
const TICK: Duration = Duration::from_millis(100);

/// A shard's checkpoint state, for INFO and for deciding when to take the next one.
#[derive(Debug, Default, Clone)]
pub struct Checkpoints {
    /// A checkpoint is being taken.
    pub running: bool,
    /// BGSAVE SCHEDULE asked for one while another ran.
    pub scheduled: bool,
    /// LSN of the newest checkpoint (0: none).
    pub lsn: u64,
    /// Its file size.
    pub bytes: u64,
    /// Log bytes (replayed at start-up plus written since) when it began.
    pub log_bytes_base: u64,
    /// Log bytes replayed at start-up.
    pub replayed: u64,
    /// When the last checkpoint finished (or the shard started).
    pub last: Option<Instant>,
    /// Checkpoints taken since start.
    pub taken: u64,
    /// Checkpoints that failed since start.
    pub failed: u64,
    /// Whether the last attempt succeeded.
    pub last_ok: bool,
    /// How long the last checkpoint took.
    pub last_duration: Duration,
    /// Entries in the last checkpoint.
    pub entries: u64,
    /// Bytes of checkpoint files written since start (for write amplification).
    pub bytes_written: u64,
    /// What start-up loaded.
    pub loaded: Option<Loaded>,
}

impl Checkpoints {
    /// The state after start-up recovery.
    pub fn started(recovery: &crate::shard::RecoveryStats) -> Checkpoints {
        let loaded = recovery.checkpoint.clone();
        Checkpoints {
            lsn: loaded.as_ref().map_or(0, |c| c.lsn),
            bytes: loaded.as_ref().map_or(0, |c| c.bytes),
            // What was replayed counts as growth since the checkpoint, so a long tail gets folded in soon.
            replayed: recovery.bytes,
            last: Some(Instant::now()),
            last_ok: true,
            loaded,
            ..Checkpoints::default()
        }
    }
}

/// Loads the newest valid checkpoint of `dir` into `ks`, falling back to
/// older ones; a damaged one is renamed `*.damaged` and reported. Returns
/// where log replay must begin.
pub fn load_newest(shard: usize, dir: &Path, ks: &mut Keyspace) -> Result<(Base, Option<Loaded>), String> {
    file::remove_stale_temps(dir);
    let list = file::list(dir).map_err(|e| format!("listing checkpoints in {}: {e}", dir.display()))?;
    for (lsn, path) in list {
        let mut fresh = Keyspace::new(None);
        let result = file::load(&path, |c| fresh.load_snapshot_chunk(c.payload, c.entries, c.time_ms).map_err(|e| e.to_string()));
        match result {
            Ok(loaded) => {
                tracing::info!(shard, file = %path.display(), lsn, entries = loaded.entries, bytes = loaded.bytes, "checkpoint loaded");
                *ks = fresh;
                return Ok((Base::Checkpoint(lsn), Some(loaded)));
            }
            Err(e) => {
                let aside = PathBuf::from(format!("{}.damaged", path.display()));
                tracing::error!(shard, error = %e, renamed_to = %aside.display(), "checkpoint is damaged; falling back to an older one or the full log");
                std::fs::rename(&path, &aside).map_err(|e| format!("rename {} to {}: {e}", path.display(), aside.display()))?;
            }
        }
    }
    Ok((Base::Empty, None))
}

/// Why a checkpoint could not be started.
pub const IN_PROGRESS: &str = "ERR Background save already in progress";

/// Takes a checkpoint of this shard now and waits for it; `paced` keeps to
/// `--compaction-rate`. Errors are Redis-style error strings.
pub async fn take(shard: &Rc<Shard>, paced: bool) -> Result<(), String> {
    let started = Instant::now();
    // Begin while no cross-shard transaction runs anywhere, in a new epoch:
    // each transaction is then wholly before the snapshot or wholly after it.
    let shared = shard.shared.clone();
    let (tx_epoch, paused) = shared.tx.cut().await?;
    let begun = begin(shard, paced);
    drop(paused);
    let Some((log, lsn, time_ms, rate)) = begun? else {
        // Nothing changed since the newest checkpoint: it is this one.
        return Ok(());
    };
    let bytes_before = log.stats().bytes_written;
    let result = write(shard, &log, lsn, time_ms, rate, tx_epoch).await;
    let (previous, tier, tier_refs) = {
        let mut st = shard.state.borrow_mut();
        let tier_refs = st.ks.take_tier_refs();
        let tier = st.ks.tier().cloned();
        st.ks.snapshot_end();
        let c = &mut st.checkpoints;
        c.running = false;
        c.last = Some(Instant::now());
        c.last_ok = result.is_ok();
        match result {
            Ok((path, bytes, entries)) => {
                c.taken += 1;
                c.log_bytes_base = bytes_before + c.replayed;
                c.last_duration = started.elapsed();
                c.entries = entries;
                let previous = std::mem::replace(&mut c.lsn, lsn);
                c.bytes = bytes;
                c.bytes_written += bytes;
                st.lastsave = time_ms / 1000;
                tracing::info!(shard = shard.id, file = %path.display(), lsn, bytes, entries, ms = started.elapsed().as_millis() as u64, "checkpoint written");
                (previous, tier, tier_refs)
            }
            Err(e) => {
                c.failed += 1;
                tracing::error!(shard = shard.id, error = %e, "checkpoint failed");
                return Err(format!("ERR checkpoint of shard {} failed: {e}", shard.id));
            }
        }
    };
    let pruned = prune(&log, previous).await;
    // Whether or not pruning went through, this checkpoint is on disk and
    // the newest: the tier's account of what the kept ones refer to moves on.
    if let (Some(tier), Some((refs, head))) = (tier, tier_refs) {
        let sparse = tier.after_checkpoint(refs, head);
        crate::tiering::compact(shard, sparse);
    }
    pruned
}

/// Starts the snapshot: the log, its LSN, the time and the pace; None if nothing changed since the newest checkpoint.
fn begin(shard: &Shard, paced: bool) -> Result<Option<(strand_engine::log::Log, u64, u64, u64)>, String> {
    let mut st = shard.state.borrow_mut();
    let Some(log) = st.ks.log().cloned() else {
        return Err("ERR persistence is off (--persistence off): there is no log to checkpoint".into());
    };
    if st.checkpoints.running {
        return Err(IN_PROGRESS.into());
    }
    if st.checkpoints.lsn == log.last_lsn() {
        return Ok(None);
    }
    st.checkpoints.running = true;
    let time_ms = st.ks.now();
    let lsn = st.ks.snapshot_begin();
    let rate = if paced { st.config.compaction_rate } else { 0 };
    Ok(Some((log, lsn, time_ms, rate)))
}

/// Walks the snapshot into a checkpoint file, makes the log durable up to
/// its LSN, then finishes the file. Returns its path, size and entry count.
async fn write(
    shard: &Rc<Shard>,
    log: &strand_engine::log::Log,
    lsn: u64,
    time_ms: u64,
    rate: u64,
    tx_epoch: u64,
) -> Result<(PathBuf, u64, u64), String> {
    let level = shard.state.borrow().config.checkpoint_compression;
    let mut w = file::Writer::create(&log.dir(), log.shard(), lsn, time_ms, tx_epoch).await?.compression(level);
    let started = Instant::now();
    let mut entries = 0u64;
    loop {
        let (bytes, n, done) = {
            let mut st = shard.state.borrow_mut();
            let done = st.ks.snapshot_step(slice(rate));
            let (bytes, n) = st.ks.snapshot_take();
            (bytes, n, done)
        };
        entries += n as u64;
        if let Err(e) = w.chunk(&bytes, n).await {
            w.abandon().await;
            return Err(e);
        }
        if done {
            break;
        }
        adjust_shares(shard);
        pace(started, w.bytes(), rate).await;
    }
    // The checkpoint vouches for every record up to `lsn`, and for the other
    // shards' parts of the cross-shard transactions it holds: they must be durable before it is.
    if let Err(e) = log.sync_all().await {
        w.abandon().await;
        return Err(e.to_string());
    }
    if let Err(e) = crate::coordinator::sync_everywhere(shard).await {
        w.abandon().await;
        return Err(e);
    }
    // The cold values it refers to, too.
    let tier = shard.state.borrow().ks.tier().cloned();
    if let Some(tier) = tier {
        if let Err(e) = tier.sync_all().await {
            w.abandon().await;
            return Err(e.to_string());
        }
    }
    let (path, size) = w.finish().await?;
    Ok((path, size, entries))
}

/// Sleeps as long as needed to keep `written` bytes since `started` under `rate` bytes/s (0: no limit).
async fn pace(started: Instant, written: u64, rate: u64) {
    if rate == 0 {
        runtime::yield_now().await;
        return;
    }
    let due = Duration::from_secs_f64(written as f64 / rate as f64);
    match due.checked_sub(started.elapsed()) {
        Some(wait) if !wait.is_zero() => runtime::sleep(wait).await,
        _ => runtime::yield_now().await,
    }
}

/// After a checkpoint: keeps the two newest checkpoint files, and removes the
/// segments whose records the older of the two (`previous`) holds.
/// The unlinks run on the blocking thread: a large file takes long to free.
async fn prune(log: &strand_engine::log::Log, previous: u64) -> Result<(), String> {
    let dir = log.dir();
    let list = file::list(&dir).map_err(|e| format!("ERR listing checkpoints in {}: {e}", dir.display()))?;
    let old: Vec<PathBuf> = list.into_iter().skip(2).map(|(_, path)| path).collect();
    // A checkpoint taken meanwhile may prune too: a file already gone is fine.
    runtime::blocking(move || {
        old.iter().try_for_each(|path| match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("ERR removing {}: {e}", path.display())),
            _ => Ok(()),
        })
    })
    .await?;
    if previous > 0 {
        log.remove_through(previous).await.map_err(|e| format!("ERR {e}"))?;
    }
    Ok(())
}

/// Shares of the checkpoint queue while it keeps up; a tenth of the requests'.
const CALM_SHARES: usize = 100;

thread_local! {
    /// This shard's checkpoint task queue and its shares.
    static QUEUE: std::cell::OnceCell<(runtime::TaskQueueHandle, Rc<runtime::DynamicShares>)> = const { std::cell::OnceCell::new() };
}

fn queue() -> (runtime::TaskQueueHandle, Rc<runtime::DynamicShares>) {
    QUEUE.with(|q| {
        q.get_or_init(|| {
            let shares = Rc::new(runtime::DynamicShares::new(CALM_SHARES));
            (runtime::dynamic_queue("checkpoint", shares.clone()), shares)
        })
        .clone()
    })
}

/// Runs a task in this shard's checkpoint queue.
pub fn spawn(task: impl std::future::Future<Output = ()> + 'static) {
    if let Err(e) = runtime::spawn_into(task, queue().0) {
        tracing::error!(error = %e, "cannot start a checkpoint task");
    }
}

/// The log written since the newest checkpoint, as a multiple of what
/// `--compaction-threshold` allows before the next one is due (0: no limit).
fn backlog(shard: &Shard) -> f64 {
    let st = shard.state.borrow();
    let (Some(log), threshold) = (st.ks.log(), st.config.compaction_threshold) else { return 0.0 };
    if threshold <= 0.0 {
        return 0.0;
    }
    let c = &st.checkpoints;
    let growth = (log.stats().bytes_written + c.replayed).saturating_sub(c.log_bytes_base);
    let allowed = (c.bytes as f64 * (1.0 - threshold) / threshold).max((2 * st.config.segment_size) as f64);
    growth as f64 / allowed
}

/// The backlog controller: the checkpoint queue keeps a tenth of the
/// requests' shares while the log is within bounds, and gains up to as
/// many as requests have as the log grows to four times the allowance, so
/// a write-heavy load cannot outrun compaction for long.
fn adjust_shares(shard: &Shard) {
    let r = backlog(shard);
    let shares = if r <= 1.0 { CALM_SHARES } else { (CALM_SHARES as f64 + 300.0 * (r - 1.0)).min(1000.0) as usize };
    queue().1.set(shares);
}

/// Whether a checkpoint is due: the interval passed with writes since the
/// last one, or the log grew past what `--compaction-threshold` allows.
fn due(shard: &Shard) -> bool {
    let st = shard.state.borrow();
    let Some(log) = st.ks.log() else { return false };
    let c = &st.checkpoints;
    if c.running {
        return false;
    }
    if c.scheduled {
        return true;
    }
    let changed = log.last_lsn() > c.lsn;
    let interval = st.config.checkpoint_interval;
    if changed && interval > 0 && c.last.is_some_and(|t| t.elapsed() >= Duration::from_secs(interval)) {
        return true;
    }
    drop(st);
    // Live data is about the checkpoint's size; the log holds it plus what was
    // written since. Checkpoint when the live fraction falls under the threshold
    // (and at least two segments were written, since whole segments are dropped).
    backlog(shard) >= 1.0
}

/// Runs for the shard's life: takes a checkpoint whenever one is due.
pub async fn auto(shard: Rc<Shard>) {
    loop {
        runtime::sleep(TICK).await;
        if shard.state.borrow().shared.shutdown.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        adjust_shares(&shard);
        if due(&shard) {
            shard.state.borrow_mut().checkpoints.scheduled = false;
            // Failures are counted and logged by `take`; the next tick tries again.
            let _ = take(&shard, true).await;
        }
    }
}

/// BGSAVE on this shard: starts a checkpoint in the background; with
/// `schedule`, one already running is followed by another instead of an error.
pub fn start(shard: &Rc<Shard>, schedule: bool) -> Result<&'static str, String> {
    {
        let mut st = shard.state.borrow_mut();
        if st.ks.log().is_none() {
            return Err("ERR persistence is off (--persistence off): there is no log to checkpoint".into());
        }
        if st.checkpoints.running {
            if schedule {
                st.checkpoints.scheduled = true;
                return Ok("Background saving scheduled");
            }
            return Err(IN_PROGRESS.into());
        }
    }
    let me = shard.clone();
    spawn(async move {
        let _ = take(&me, true).await;
    });
    Ok("Background saving started")
}

/// What SAVE and BGSAVE ask of each shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// SAVE: take one now and wait for it.
    Save,
    /// BGSAVE: start one.
    Start,
    /// BGSAVE SCHEDULE: start one, or take one after the one running.
    Schedule,
}

/// Runs what SAVE or BGSAVE asks on this shard.
pub async fn ask(shard: &Rc<Shard>, ask: Ask) -> Result<&'static str, String> {
    match ask {
        Ask::Save => save(shard).await.map(|()| "OK"),
        Ask::Start => start(shard, false),
        Ask::Schedule => start(shard, true),
    }
}

/// SAVE or BGSAVE on every shard. Replies with the first error, else the
/// status of this shard (every shard answers alike unless one is busy).
pub async fn everywhere(shard: &Rc<Shard>, what: Ask) -> Reply {
    let mut waits = Vec::new();
    for to in 0..shard.outbox.shards() {
        if to == shard.id {
            continue;
        }
        let (tx, rx) = futures::channel::oneshot::channel();
        shard.outbox.send(to, crate::dispatch::Msg::Checkpoint { ask: what, reply: tx }).await;
        waits.push(rx);
    }
    let mut results = vec![ask(shard, what).await];
    for rx in waits {
        results.push(rx.await.unwrap_or_else(|_| Err("ERR a shard stopped before it answered".into())));
    }
    merge(what, results)
}

fn merge(what: Ask, results: Vec<Result<&'static str, String>>) -> Reply {
    // BGSAVE: shards already saving carry on; it is an error only if none started.
    let busy = |r: &Result<&str, String>| matches!(r, Err(e) if e == IN_PROGRESS);
    if what == Ask::Start && results.iter().any(|r| r.is_ok()) && results.iter().all(|r| r.is_ok() || busy(r)) {
        return Reply::Simple("Background saving started".into());
    }
    match results.into_iter().find(|r| r.is_err()) {
        Some(Err(e)) => Reply::error(e),
        _ => match what {
            Ask::Save => Reply::Ok,
            Ask::Start => Reply::Simple("Background saving started".into()),
            Ask::Schedule => Reply::Simple("Background saving scheduled".into()),
        },
    }
}

/// BGSAVE [SCHEDULE].
pub async fn bgsave(shard: &Rc<Shard>, args: &[&[u8]]) -> Reply {
    match args {
        [_] => everywhere(shard, Ask::Start).await,
        [_, opt] if opt.eq_ignore_ascii_case(b"schedule") => everywhere(shard, Ask::Schedule).await,
        _ => Reply::error(crate::command::err::SYNTAX),
    }
}

/// SAVE on this shard: waits for a running checkpoint, then takes one at full speed.
pub async fn save(shard: &Rc<Shard>) -> Result<(), String> {
    loop {
        match take(shard, false).await {
            Err(e) if e == IN_PROGRESS => runtime::sleep(Duration::from_millis(5)).await,
            other => return other,
        }
    }
}
