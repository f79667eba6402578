//! The per-core log: append-only segment files written with O_DIRECT through io_uring.
//!
//! Each shard owns one [`Log`]. Views append records synchronously into an
//! aligned in-memory buffer ([`Log::append_with`]); a flusher task writes
//! whatever has gathered as one group of aligned blocks (group commit), and
//! under [`FsyncPolicy::Always`] syncs before any waiter learns its record is
//! durable. A flush pads the last block (a `PAD` record or zeros), and the
//! next record starts on a fresh block, so an acknowledged record is never
//! rewritten in place.
//!
//! **Failures.** A write that fails (EIO, ENOSPC, a short write) or a
//! segment that cannot be created turns the log read-only with
//! [`LogError::Failed`]: appends are refused, so views change nothing, and
//! writers waiting for durability get the error, never an acknowledgement.
//! The group stays in memory and is written again every
//! [`RETRY_INTERVAL`]; once that succeeds the log accepts writes again
//! (Redis does the same with its AOF under `everysec`). A failed fdatasync
//! is different: after one, the kernel and the device no longer promise
//! what earlier writes left on the medium, so retrying it could report
//! success over lost data (PostgreSQL's "fsyncgate"). The log then stays
//! read-only until restart, whose recovery reads the disk back and checks
//! every record. Faults can be injected for tests ([`faults`]).
//!
//! Submodules: [`record`] (header and checksum), [`segment`] (files and
//! their header block), [`recovery`] (replay on start-up), [`faults`]
//! (injected storage faults).

pub mod faults;
pub mod latency;
pub mod record;
pub mod recovery;
pub mod segment;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use crate::runtime::{self, sleep, DmaBuffer, DmaFile, OpenOptions};

use record::{kind, RecordHeader, HEADER_LEN};
use segment::{align_up, SegmentHeader, BLOCK, DATA_START};

/// Under `everysec` and `no`, the longest a record waits in memory before
/// its write is issued (unless a whole buffer fills first).
pub const GATHER: Duration = Duration::from_millis(1);

/// Under `everysec` and `no`, replies to writes do not wait for the write
/// unless more than this many bytes of records wait to be written: that
/// bounds what a crash of the process can take (about the last millisecond
/// of writes at most loads, this much under a load faster than the disk).
pub const MAX_UNWRITTEN: u64 = 4 << 20;

/// How long the flusher waits before it writes a failed group again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// When the log syncs, with Redis's `appendfsync` meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// A write is acknowledged only after the block holding it is durable.
    Always,
    /// Writes are issued at once and synced every second.
    EverySec,
    /// Writes are issued at once; syncing is left to the kernel and device.
    No,
}

impl FsyncPolicy {
    /// Redis's spelling: `always`, `everysec`, `no`.
    pub fn name(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::EverySec => "everysec",
            FsyncPolicy::No => "no",
        }
    }

    /// Parses Redis's spelling.
    pub fn parse(s: &str) -> Option<FsyncPolicy> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Some(FsyncPolicy::Always),
            "everysec" => Some(FsyncPolicy::EverySec),
            "no" => Some(FsyncPolicy::No),
            _ => None,
        }
    }
}

/// Settings of one shard's log.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The shard's directory (`DIR/shard-NNN`).
    pub dir: PathBuf,
    /// The shard number, recorded in segment headers.
    pub shard: u32,
    /// Size of each segment file.
    pub segment_size: u64,
    /// Sync policy.
    pub fsync: FsyncPolicy,
    /// Capacity of one in-memory write buffer (a multiple of [`BLOCK`]).
    pub buffer_size: usize,
}

/// Errors of the log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// A write or sync failed; nothing more is accepted until `until` says.
    #[error("MISCONF Errors writing to the log of shard {shard}: {reason}; writes are refused {until}")]
    Failed { shard: u32, reason: String, until: &'static str },
    /// A record larger than a segment can hold.
    #[error("ERR record of {size} bytes does not fit a log segment of {segment_size} bytes")]
    TooLarge { size: usize, segment_size: u64 },
}

/// Counters for INFO and metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogStats {
    /// Records appended since start.
    pub records: u64,
    /// Bytes written to segment files (including padding).
    pub bytes_written: u64,
    /// Write groups flushed.
    pub flushes: u64,
    /// fdatasync calls completed.
    pub fsyncs: u64,
    /// Segments created since start.
    pub segments_created: u64,
    /// Sequence number of the segment being written.
    pub current_segment: u64,
    /// Segments rolled into that had been written full of zeros ahead of need.
    pub segments_prepared: u64,
    /// Segment files on disk now.
    pub segments_on_disk: u64,
    /// Segment files removed because a checkpoint holds their records.
    pub segments_removed: u64,
    /// Bytes of records appended and not yet written, now.
    pub unwritten: u64,
    /// The most bytes of records that waited to be written at once.
    pub unwritten_peak: u64,
    /// How long each counted fdatasync took.
    pub fsync_latency: latency::Histogram,
    /// Writes, segment creations and syncs that failed (each retry counts).
    pub write_errors: u64,
    /// Times the log accepted writes again after a failed write.
    pub write_recoveries: u64,
}

/// Why the log refuses writes.
#[derive(Debug, Clone)]
struct Failure {
    reason: String,
    /// A failed sync: nothing is retried until restart.
    fatal: bool,
}

impl Failure {
    fn retry(reason: String) -> Failure {
        Failure { reason, fatal: false }
    }

    fn fatal(reason: String) -> Failure {
        Failure { reason, fatal: true }
    }

    fn error(&self, shard: u32) -> LogError {
        let until = if self.fatal {
            "until the server is restarted and recovers from disk"
        } else {
            "until a retry of the write succeeds (one every second)"
        };
        LogError::Failed { shard, reason: self.reason.clone(), until }
    }
}

/// A filled buffer waiting to be written.
struct Pending {
    /// Shared with the write in flight, so a failed write can be issued again.
    buf: Rc<DmaBuffer>,
    len: usize,
    seq: u64,
    pos: u64,
    last_lsn: u64,
}

struct Inner {
    cfg: LogConfig,
    next_lsn: u64,
    /// Segment that the active buffer belongs to, its seed, and where the buffer starts.
    seq: u64,
    seed: u64,
    active: Option<DmaBuffer>,
    active_len: usize,
    active_pos: u64,
    active_last_lsn: u64,
    /// Headers of segments that the appends have started but the flusher has not created.
    new_segments: VecDeque<SegmentHeader>,
    pending: VecDeque<Pending>,
    written_lsn: u64,
    durable_lsn: u64,
    /// The newest record that must be synced before its reply whatever the
    /// policy ([`Log::require_sync`]: a queue with strict durability).
    strict_lsn: u64,
    failed: Option<Failure>,
    flusher: Option<Waker>,
    waiters: Vec<Waker>,
    stats: LogStats,
    /// A segment written full of zeros ahead of need, ready to roll into.
    prepared: Option<u64>,
    /// The first segment this process created, when it was created with
    /// fallocate (no segment was prepared yet).
    unprepared: Option<u64>,
    /// Under `always`: the next append starts the prepared segment now,
    /// leaving the rest of an unprepared one unused ([`Log::prepare`]).
    roll_early: bool,
    /// Segment files on disk with a durable header: (sequence number, first LSN), oldest first.
    on_disk: VecDeque<(u64, u64)>,
    /// The newest segment whose creation has begun: a preparation for it or an older one came too late.
    creating: u64,
    /// Bytes in `pending`.
    pending_bytes: u64,
    /// Bytes of the group being written.
    inflight_bytes: u64,
    /// The longest counted fdatasync since [`Log::take_sync_peak`] last asked.
    sync_peak: Duration,
}

/// One shard's log. Cheap to clone (shared within the shard's thread).
#[derive(Clone)]
pub struct Log {
    inner: Rc<RefCell<Inner>>,
}

impl Log {
    /// Opens the log for appending after recovery: starts a fresh segment
    /// `last_seq + 1` whose header records where the last one's data ends,
    /// and spawns the flusher (and, for `everysec`, the syncer) on the
    /// current executor.
    pub fn start(cfg: LogConfig, recovered: &recovery::Recovered) -> Log {
        assert!(cfg.buffer_size.is_multiple_of(BLOCK) && cfg.buffer_size > 0, "buffer size must be a positive multiple of {BLOCK}");
        assert!(cfg.segment_size >= segment::MIN_SEGMENT_SIZE && cfg.segment_size.is_multiple_of(BLOCK as u64));
        let (last_seq, last_end) = recovered.last_segment.unwrap_or((0, 0));
        let seq = last_seq + 1;
        let seed = new_seed();
        let header = SegmentHeader::new(cfg.shard, seq, seed, recovered.next_lsn, last_end, cfg.segment_size);
        let durable = recovered.next_lsn - 1;
        let inner = Inner {
            cfg,
            next_lsn: recovered.next_lsn,
            seq,
            seed,
            active: None,
            active_len: 0,
            active_pos: DATA_START,
            active_last_lsn: 0,
            new_segments: VecDeque::from([header]),
            pending: VecDeque::new(),
            written_lsn: durable,
            durable_lsn: durable,
            strict_lsn: 0,
            failed: None,
            flusher: None,
            waiters: Vec::new(),
            stats: LogStats { current_segment: seq, segments_on_disk: recovered.segments_found.len() as u64, ..LogStats::default() },
            prepared: None,
            unprepared: None,
            roll_early: false,
            on_disk: recovered.segments_found.iter().copied().collect(),
            creating: last_seq,
            pending_bytes: 0,
            inflight_bytes: 0,
            sync_peak: Duration::ZERO,
        };
        remove_stale_preparations(&inner.cfg.dir);
        let log = Log { inner: Rc::new(RefCell::new(inner)) };
        let flusher = log.clone();
        runtime::spawn(async move { flusher.flush_loop().await });
        if log.policy() == FsyncPolicy::EverySec {
            let syncer = log.clone();
            runtime::spawn(async move { syncer.sync_loop().await });
        }
        log
    }

    /// The sync policy.
    pub fn policy(&self) -> FsyncPolicy {
        self.inner.borrow().cfg.fsync
    }

    /// Whether the log still accepts writes; views check this before they change state.
    pub fn check_writable(&self) -> Result<(), LogError> {
        let inner = self.inner.borrow();
        match &inner.failed {
            Some(f) => Err(f.error(inner.cfg.shard)),
            None => Ok(()),
        }
    }

    /// Counters.
    pub fn stats(&self) -> LogStats {
        let inner = self.inner.borrow();
        LogStats { unwritten: inner.unwritten(), ..inner.stats }
    }

    /// The LSN of the last record appended.
    pub fn last_lsn(&self) -> u64 {
        self.inner.borrow().next_lsn - 1
    }

    /// Whether a reply to a write must wait for [`Log::durable`]: always
    /// under `always`; under `everysec` and `no` only while more than
    /// [`MAX_UNWRITTEN`] bytes wait to be written.
    pub fn must_wait(&self) -> bool {
        let inner = self.inner.borrow();
        inner.cfg.fsync == FsyncPolicy::Always || inner.unwritten() > MAX_UNWRITTEN || inner.strict_lsn > inner.durable_lsn
    }

    /// Asks that the records up to `lsn` be synced before the replies that
    /// wait for them, whatever the policy: the flusher syncs after the group
    /// that holds them, and [`Log::durable`] waits for that sync.
    pub fn require_sync(&self, lsn: u64) {
        let mut inner = self.inner.borrow_mut();
        inner.strict_lsn = inner.strict_lsn.max(lsn);
    }

    /// The longest fdatasync since the last call (the latency monitor's
    /// `aof-fsync-always` event polls it), and starts over.
    pub fn take_sync_peak(&self) -> Duration {
        std::mem::take(&mut self.inner.borrow_mut().sync_peak)
    }

    /// The LSN up to which records are durable.
    pub fn durable_lsn(&self) -> u64 {
        self.inner.borrow().durable_lsn
    }

    /// The shard's log directory.
    pub fn dir(&self) -> PathBuf {
        self.inner.borrow().cfg.dir.clone()
    }

    /// The shard number.
    pub fn shard(&self) -> u32 {
        self.inner.borrow().cfg.shard
    }

    /// Bytes the segment files take on disk (each is created at its full size).
    pub fn disk_bytes(&self) -> u64 {
        let inner = self.inner.borrow();
        inner.on_disk.len() as u64 * inner.cfg.segment_size
    }

    /// Removes every segment file whose records all have LSNs up to `lsn`,
    /// which a durable checkpoint holds. The newest segment on disk always
    /// stays, so the log's chain of headers goes on. Returns how many were removed.
    pub async fn remove_through(&self, lsn: u64) -> Result<u64, String> {
        let (dir, doomed) = {
            let mut inner = self.inner.borrow_mut();
            let mut doomed = Vec::new();
            // A segment holds LSNs up to its successor's first LSN - 1.
            while inner.on_disk.len() >= 2 && inner.on_disk[1].1 <= lsn + 1 {
                if let Some((seq, _)) = inner.on_disk.pop_front() {
                    doomed.push(seq);
                }
            }
            inner.stats.segments_on_disk = inner.on_disk.len() as u64;
            (inner.cfg.dir.clone(), doomed)
        };
        if doomed.is_empty() {
            return Ok(0);
        }
        // Unlinking a full segment frees its extents and can take a quarter of
        // a second: off the shard's thread, so requests go on meanwhile.
        let (removed, result) = runtime::blocking(move || remove_segments(&dir, &doomed)).await;
        self.inner.borrow_mut().stats.segments_removed += removed;
        result.map(|()| removed)
    }

    /// Appends a record whose payload of `len` bytes is written by `fill`.
    /// Returns its LSN. The record is in memory until the flusher writes it;
    /// wait for [`Log::durable`] before acknowledging under `always`.
    pub fn append_with(&self, kind: u8, flags: u8, time_ms: u64, len: usize, fill: impl FnOnce(&mut [u8])) -> Result<u64, LogError> {
        let mut inner = self.inner.borrow_mut();
        if let Some(f) = &inner.failed {
            return Err(f.error(inner.cfg.shard));
        }
        let size = HEADER_LEN + len;
        let capacity = inner.cfg.segment_size - DATA_START;
        if size as u64 > capacity - BLOCK as u64 || len > record::MAX_PAYLOAD {
            return Err(LogError::TooLarge { size, segment_size: inner.cfg.segment_size });
        }
        inner.make_room(size);
        let lsn = inner.next_lsn;
        inner.next_lsn += 1;
        let start = inner.active_len;
        let seed = inner.seed;
        let buf = inner.active.as_mut().map(|b| b.as_bytes_mut());
        let Some(buf) = buf else { unreachable!("make_room always leaves an active buffer") };
        let (head, body) = buf[start..start + size].split_at_mut(HEADER_LEN);
        fill(body);
        record::seal_in_place(head, body, seed, RecordHeader::new(kind, flags, lsn, time_ms, len));
        inner.active_len += size;
        inner.active_last_lsn = lsn;
        inner.stats.records += 1;
        let unwritten = inner.unwritten();
        inner.stats.unwritten_peak = inner.stats.unwritten_peak.max(unwritten);
        if let Some(w) = inner.flusher.take() {
            w.wake();
        }
        Ok(lsn)
    }

    /// Appends a record with the given payload.
    pub fn append(&self, kind: u8, flags: u8, time_ms: u64, payload: &[u8]) -> Result<u64, LogError> {
        self.append_with(kind, flags, time_ms, payload.len(), |b| b.copy_from_slice(payload))
    }

    /// Resolves once the record with `lsn` is durable (under `always`), or
    /// written (under `everysec` and `no`, where waiting is not needed to reply).
    pub async fn durable(&self, lsn: u64) -> Result<(), LogError> {
        futures::future::poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            let done = match inner.cfg.fsync {
                FsyncPolicy::Always => inner.durable_lsn >= lsn,
                _ => inner.written_lsn >= lsn && inner.durable_lsn >= lsn.min(inner.strict_lsn),
            };
            if done {
                Poll::Ready(Ok(()))
            } else if let Some(f) = &inner.failed {
                Poll::Ready(Err(f.error(inner.cfg.shard)))
            } else {
                inner.waiters.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// Writes and syncs everything appended so far (for SHUTDOWN and SIGTERM).
    pub async fn sync_all(&self) -> Result<(), LogError> {
        let lsn = self.last_lsn();
        self.durable(lsn).await?;
        // Under everysec/no, `durable` only waits for the write; sync explicitly.
        let file = self.current_file_path();
        if let Some(path) = file {
            let injected = faults::check(faults::Target::Sync, self.shard()).filter(|k| *k != faults::Kind::Slow);
            let synced = match injected {
                Some(k) => Err(faults::error(k)),
                None => {
                    let p = path.clone();
                    runtime::blocking(move || sync_path(&p)).await
                }
            };
            if let Err(e) = synced {
                return Err(self.fail(Failure::fatal(format!("fsync {}: {e}", path.display()))));
            }
        }
        let mut inner = self.inner.borrow_mut();
        inner.durable_lsn = inner.durable_lsn.max(lsn);
        Ok(())
    }

    fn current_file_path(&self) -> Option<PathBuf> {
        let inner = self.inner.borrow();
        let created = inner.stats.segments_created > 0;
        created.then(|| segment::segment_path(&inner.cfg.dir, inner.stats.current_segment))
    }

    /// Turns the log read-only (a fatal failure is never replaced by a retriable one) and wakes the waiters.
    fn fail(&self, failure: Failure) -> LogError {
        let mut inner = self.inner.borrow_mut();
        let shard = inner.cfg.shard;
        inner.stats.write_errors += 1;
        if failure.fatal {
            tracing::error!(shard, reason = %failure.reason, "log sync failed; refusing writes until restart");
        } else {
            tracing::error!(shard, reason = %failure.reason, "log write failed; refusing writes, retrying every {RETRY_INTERVAL:?}");
        }
        if !inner.failed.as_ref().is_some_and(|f| f.fatal) {
            inner.failed = Some(failure);
        }
        for w in inner.waiters.drain(..) {
            w.wake();
        }
        inner.failed.as_ref().map_or_else(|| unreachable!("set above"), |f| f.error(shard))
    }

    /// A retried write succeeded: the log accepts writes again, unless a sync failed meanwhile.
    fn recovered(&self) {
        let mut inner = self.inner.borrow_mut();
        if inner.failed.as_ref().is_some_and(|f| !f.fatal) {
            inner.failed = None;
            inner.stats.write_recoveries += 1;
            tracing::warn!(shard = inner.cfg.shard, "log write error looks solved: accepting writes again");
        }
    }

    /// Whether a fault is injected into this shard's next `target` operation.
    fn injected(&self, target: faults::Target) -> Option<std::io::Error> {
        faults::check(target, self.shard()).map(faults::error)
    }

    /// Whether a sync failed: the log waits for a restart.
    fn fatally_failed(&self) -> bool {
        self.inner.borrow().failed.as_ref().is_some_and(|f| f.fatal)
    }

    /// Waits until there is something to write, then takes it all.
    async fn next_group(&self) -> Vec<Pending> {
        // Wait for the first record, then let the connections that are ready
        // in this turn of the executor append theirs, so one write and one
        // sync cover them all.
        futures::future::poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            if inner.active_len > 0 || !inner.pending.is_empty() {
                return Poll::Ready(());
            }
            inner.flusher = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        runtime::yield_now().await;
        futures::future::poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            if inner.active_len > 0 {
                inner.seal_active();
            }
            if inner.pending.is_empty() {
                inner.flusher = Some(cx.waker().clone());
                return Poll::Pending;
            }
            inner.inflight_bytes = std::mem::take(&mut inner.pending_bytes);
            Poll::Ready(inner.pending.drain(..).collect())
        })
        .await
    }

    async fn flush_loop(self) {
        let mut file: Option<(u64, DmaFile)> = None;
        let gather = self.policy() != FsyncPolicy::Always;
        let mut last = std::time::Instant::now();
        loop {
            if gather {
                // Without a sync to wait for, nobody waits on the write: let records
                // gather for up to GATHER after the last write, unless a whole buffer is
                // ready, so a busy shard writes full blocks instead of one padded block
                // per event-loop turn.
                let ready = !self.inner.borrow().pending.is_empty();
                let left = GATHER.saturating_sub(last.elapsed());
                if !ready && !left.is_zero() {
                    sleep(left).await;
                }
            }
            let mut group: VecDeque<Pending> = self.next_group().await.into();
            last = std::time::Instant::now();
            if !self.write_until_done(&mut file, &mut group).await {
                return;
            }
        }
    }

    /// Writes `group`, and after a retriable failure writes what is left of
    /// it again every [`RETRY_INTERVAL`], refusing appends meanwhile.
    /// False once a sync has failed: the flusher stops until restart.
    async fn write_until_done(&self, file: &mut Option<(u64, DmaFile)>, group: &mut VecDeque<Pending>) -> bool {
        let mut failed = false;
        loop {
            match self.write_group(file, group).await {
                Ok(()) => {
                    if failed {
                        self.recovered();
                    }
                    return true;
                }
                Err(f) if f.fatal => {
                    self.fail(f);
                    return false;
                }
                Err(f) => {
                    self.fail(f);
                    failed = true;
                    sleep(RETRY_INTERVAL).await;
                    if self.fatally_failed() {
                        return false;
                    }
                }
            }
        }
    }

    /// Writes the buffers of `group`, those of one segment all at once (one
    /// turn of the executor for the lot, not one per buffer), taking each
    /// off the front once it and every one before it are in the file (so a
    /// retry starts at the first failure), then syncs under `always` or when
    /// a record asked for it ([`Log::require_sync`]).
    ///
    /// Writes in flight together may land in any order, so a crash can leave
    /// a later buffer on disk without an earlier one: recovery then ends the
    /// log at the hole and cuts what follows, records that nobody was told
    /// are durable (a reply that waits for them waits for the sync after
    /// this group). A segment is synced before the next one is created, so
    /// the hole can only be in the last segment.
    async fn write_group(&self, file: &mut Option<(u64, DmaFile)>, group: &mut VecDeque<Pending>) -> Result<(), Failure> {
        let policy = self.policy();
        let mut written = false;
        while let Some(p) = group.front() {
            if file.as_ref().map(|(seq, _)| *seq) != Some(p.seq) {
                if let Some((_, old)) = file.take() {
                    // The next segment's header vouches for this one's data: make it durable first.
                    self.sync_file(&old, "fdatasync of segment before roll").await?;
                    let _ = old.close().await;
                }
                *file = Some((p.seq, self.create_segment(p.seq).await?));
            }
            let Some((seq, f)) = file.as_ref() else { unreachable!("segment opened above") };
            let same_segment = group.iter().take_while(|q| q.seq == *seq).count();
            let results = futures::future::join_all(group.iter().take(same_segment).map(|q| self.write_pending(f, q))).await;
            for result in results {
                result?;
                let Some(p) = group.pop_front() else { unreachable!("one result per buffer of the group") };
                let mut inner = self.inner.borrow_mut();
                inner.stats.bytes_written += p.len as u64;
                inner.inflight_bytes = inner.inflight_bytes.saturating_sub(p.len as u64);
                inner.written_lsn = inner.written_lsn.max(p.last_lsn);
                written = true;
            }
        }
        let synced = std::time::Instant::now();
        let sync = written && (policy == FsyncPolicy::Always || self.inner.borrow().strict_lsn > self.inner.borrow().durable_lsn);
        if sync {
            if let Some((_, f)) = file.as_ref() {
                self.sync_file(f, "fdatasync").await?;
            }
        }
        let sync_time = synced.elapsed();
        let mut inner = self.inner.borrow_mut();
        inner.inflight_bytes = 0;
        inner.stats.flushes += 1;
        if sync {
            inner.stats.fsyncs += 1;
            inner.stats.fsync_latency.record(sync_time);
            inner.sync_peak = inner.sync_peak.max(sync_time);
            inner.durable_lsn = inner.written_lsn;
        }
        for w in inner.waiters.drain(..) {
            w.wake();
        }
        Ok(())
    }

    /// Writes one sealed buffer at its position; an injected fault may fail, shorten or tear it.
    async fn write_pending(&self, f: &DmaFile, p: &Pending) -> Result<(), Failure> {
        let at = |e: &dyn std::fmt::Display| Failure::retry(format!("write of {} bytes at offset {}: {e}", p.len, p.pos));
        let n = match faults::check(faults::Target::Write, self.shard()) {
            None => self.write_whole(f, p).await?,
            Some(faults::Kind::Slow) => {
                sleep(faults::SLOW).await;
                self.write_whole(f, p).await?
            }
            Some(kind @ (faults::Kind::Eio | faults::Kind::Enospc)) => return Err(at(&faults::error(kind))),
            Some(kind) => {
                // The first half of the blocks (at least one), the last of them torn if asked.
                let blocks = p.len / BLOCK;
                let keep = (blocks / 2).max(1) * BLOCK;
                let mut part = runtime::dma_buffer(keep);
                part.as_bytes_mut().copy_from_slice(&p.buf.as_bytes()[..keep]);
                if kind == faults::Kind::Torn {
                    part.as_bytes_mut()[keep - BLOCK / 2..].fill(0xA5);
                }
                let n = f.write_at(part, p.pos).await.map_err(|e| at(&e))?;
                if kind == faults::Kind::Torn {
                    faults::crash();
                }
                if keep == p.len {
                    return Err(at(&"short write of the only block (injected)"));
                }
                n
            }
        };
        if n != p.len {
            return Err(Failure::retry(format!("short write at offset {}: {n} of {} bytes", p.pos, p.len)));
        }
        Ok(())
    }

    /// Writes `p`; after a short write (a disk filling up) writes the rest at
    /// once, which completes it or fails with the reason (ENOSPC). Returns
    /// the bytes written.
    async fn write_whole(&self, f: &DmaFile, p: &Pending) -> Result<usize, Failure> {
        let n = f
            .write_rc_at(p.buf.clone(), p.pos)
            .await
            .map_err(|e| Failure::retry(format!("write of {} bytes at offset {}: {e}", p.len, p.pos)))?;
        if n == 0 || n >= p.len || !n.is_multiple_of(BLOCK) {
            return Ok(n);
        }
        let (pos, len) = (p.pos + n as u64, p.len - n);
        let mut rest = runtime::dma_buffer(len);
        rest.as_bytes_mut().copy_from_slice(&p.buf.as_bytes()[n..p.len]);
        let m = f.write_at(rest, pos).await.map_err(|e| {
            Failure::retry(format!("write of {len} bytes at offset {pos} (the rest after a short write of {n} of {} bytes): {e}", p.len))
        })?;
        Ok(n + m)
    }

    /// fdatasync of `f`; a failure is fatal (see the module comment).
    async fn sync_file(&self, f: &DmaFile, what: &str) -> Result<(), Failure> {
        match faults::check(faults::Target::Sync, self.shard()) {
            None => {}
            Some(faults::Kind::Slow) => sleep(faults::SLOW).await,
            Some(kind) => return Err(Failure::fatal(format!("{what}: {}", faults::error(kind)))),
        }
        f.fdatasync().await.map_err(|e| Failure::fatal(format!("{what}: {e}")))
    }

    /// Creates segment `seq` with its header block, durable. Its header
    /// leaves the queue only then, so a failed creation can be retried.
    async fn create_segment(&self, seq: u64) -> Result<DmaFile, Failure> {
        let (header, dir, size, prepared) = {
            let mut inner = self.inner.borrow_mut();
            let header = *inner.new_segments.front().ok_or_else(|| Failure::fatal("no header queued for a new segment".into()))?;
            let prepared = inner.prepared == Some(seq);
            inner.prepared = None;
            inner.creating = seq;
            (header, inner.cfg.dir.clone(), inner.cfg.segment_size, prepared)
        };
        debug_assert_eq!(header.seq.get(), seq);
        let first_lsn = header.first_lsn.get();
        let path = segment::segment_path(&dir, seq);
        let ctx = |what: &str, e: &dyn std::fmt::Display| Failure::retry(format!("{what} {}: {e}", path.display()));
        if let Some(e) = self.injected(faults::Target::Create) {
            return Err(ctx("create", &e));
        }
        let file = if prepared {
            // Written full of zeros ahead of need: its blocks are allocated and
            // initialised, so syncs need not journal extent conversions.
            let prep = prepared_path(&dir, seq);
            std::fs::rename(&prep, &path).map_err(|e| ctx(&format!("rename {} to", prep.display()), &e))?;
            OpenOptions::new().read(true).write(true).dma_open(&path).await.map_err(|e| ctx("open", &e))?
        } else {
            let f = runtime::create_dma_file(&path).await.map_err(|e| ctx("create", &e))?;
            f.pre_allocate(size, false).await.map_err(|e| ctx("allocate", &e))?;
            f
        };
        let mut block = runtime::dma_buffer(BLOCK);
        block.as_bytes_mut().copy_from_slice(&header.to_block());
        file.write_at(block, 0).await.map_err(|e| ctx("write header of", &e))?;
        self.sync_file(&file, &format!("sync {}", path.display())).await?;
        let d = dir.clone();
        runtime::blocking(move || sync_path(&d)).await.map_err(|e| Failure::fatal(format!("fsync directory {}: {e}", dir.display())))?;
        {
            let mut inner = self.inner.borrow_mut();
            inner.new_segments.pop_front();
            if !prepared && inner.stats.segments_created == 0 {
                inner.unprepared = Some(seq);
            }
            inner.stats.segments_created += 1;
            inner.stats.current_segment = seq;
            inner.on_disk.push_back((seq, first_lsn));
            inner.stats.segments_on_disk = inner.on_disk.len() as u64;
            if prepared {
                inner.stats.segments_prepared += 1;
            }
        }
        let next = self.clone();
        runtime::spawn_background(async move { next.prepare(seq + 1).await });
        Ok(file)
    }

    /// Writes the file of segment `seq` full of zeros under a temporary name,
    /// in the background, so it is ready when the log rolls into it.
    ///
    /// Under `always` the log rolls into it as soon as it is ready when the
    /// segment being written is the first this process created, with
    /// fallocate: there every fdatasync also commits the conversion of the
    /// blocks it wrote from unwritten extents, which made a 4 KiB write plus
    /// fdatasync take 223 µs instead of 121 µs on the disk of the machine
    /// this was measured on. Rolling early is what a restart does: the next
    /// segment's header records where this one's data ends. (A later segment
    /// that a preparation missed is filled whole: rolling early from each
    /// would leave unused space in every one under a load faster than the
    /// preparation.)
    async fn prepare(self, seq: u64) {
        let (dir, size) = {
            let inner = self.inner.borrow();
            (inner.cfg.dir.clone(), inner.cfg.segment_size)
        };
        let path = prepared_path(&dir, seq);
        let result: Result<(), String> = async {
            let err = |e: runtime::Error<()>| format!("{}: {e}", path.display());
            let f = runtime::create_dma_file(&path).await.map_err(err)?;
            let mut pos = 0;
            while pos < size {
                let len = PREPARE_CHUNK.min((size - pos) as usize);
                let mut buf = runtime::dma_buffer(len);
                buf.as_bytes_mut().fill(0);
                f.write_at(buf, pos).await.map_err(err)?;
                pos += len as u64;
                if self.inner.borrow().failed.is_some() {
                    return Err("log failed".into());
                }
            }
            f.fdatasync().await.map_err(err)?;
            let _ = f.close().await;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                let mut inner = self.inner.borrow_mut();
                if inner.creating >= seq {
                    // The log rolled into or past it while it was being written.
                    let _ = std::fs::remove_file(&path);
                } else {
                    if let Some(older) = inner.prepared.replace(seq) {
                        let _ = std::fs::remove_file(prepared_path(&inner.cfg.dir, older));
                    }
                    let writing_unprepared = inner.seq + 1 == seq && inner.unprepared == Some(inner.seq);
                    inner.roll_early = writing_unprepared && inner.cfg.fsync == FsyncPolicy::Always;
                }
            }
            Err(e) => {
                // Not fatal: the segment will be created with fallocate instead.
                tracing::warn!(error = %e, "could not prepare the next segment ahead of need");
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    async fn sync_loop(self) {
        loop {
            sleep(Duration::from_secs(1)).await;
            let (written, durable, path) = {
                let inner = self.inner.borrow();
                if inner.failed.as_ref().is_some_and(|f| f.fatal) {
                    return;
                }
                let path = (inner.stats.segments_created > 0).then(|| segment::segment_path(&inner.cfg.dir, inner.stats.current_segment));
                (inner.written_lsn, inner.durable_lsn, path)
            };
            let Some(path) = path else { continue };
            if written <= durable {
                continue;
            }
            match DmaFile::open(&path).await {
                Ok(f) => {
                    let synced = std::time::Instant::now();
                    if let Err(failure) = self.sync_file(&f, &format!("fdatasync {}", path.display())).await {
                        self.fail(failure);
                        return;
                    }
                    let _ = f.close().await;
                    let mut inner = self.inner.borrow_mut();
                    inner.durable_lsn = inner.durable_lsn.max(written);
                    inner.stats.fsyncs += 1;
                    inner.stats.fsync_latency.record(synced.elapsed());
                    inner.sync_peak = inner.sync_peak.max(synced.elapsed());
                }
                Err(e) => {
                    self.fail(Failure::fatal(format!("open {} to sync: {e}", path.display())));
                    return;
                }
            }
        }
    }
}

impl Inner {
    /// Bytes appended and not yet written: the active buffer, the sealed ones, the group being written.
    fn unwritten(&self) -> u64 {
        self.active_len as u64 + self.pending_bytes + self.inflight_bytes
    }

    /// Ensures the active buffer can take `size` more bytes with the record
    /// header starting at least HEADER_LEN before a block end, rolling the
    /// buffer or the segment as needed.
    fn make_room(&mut self, size: usize) {
        if std::mem::take(&mut self.roll_early) && self.prepared == Some(self.seq + 1) {
            self.roll_segment();
        }
        // A header never starts in the last HEADER_LEN-1 bytes of a block.
        let room_in_block = BLOCK - self.active_len % BLOCK;
        if room_in_block < HEADER_LEN && self.active.is_some() {
            self.zero_fill(room_in_block);
        }
        let file_end = self.active_pos + self.active_len as u64;
        if file_end + size as u64 > self.cfg.segment_size {
            self.roll_segment();
        }
        let capacity = self.active.as_ref().map_or(0, |b| b.len());
        if self.active_len + size > capacity {
            if self.active_len > 0 {
                self.seal_active();
            }
            let want = self.cfg.buffer_size.max(align_up(size as u64) as usize);
            // Not zeroed: every byte up to the flushed length is written by a
            // record, a PAD record or an explicit zero fill.
            self.active = Some(runtime::dma_buffer(want));
            self.active_len = 0;
        }
    }

    fn zero_fill(&mut self, n: usize) {
        let start = self.active_len;
        if let Some(buf) = self.active.as_mut() {
            buf.as_bytes_mut()[start..start + n].fill(0);
        }
        self.active_len += n;
    }

    /// Pads the active buffer to a block boundary and queues it for writing.
    fn seal_active(&mut self) {
        let Some(mut buf) = self.active.take() else { return };
        let len = self.active_len;
        let padded = align_up(len as u64) as usize;
        let gap = padded - len;
        if gap >= HEADER_LEN {
            let (head, body) = buf.as_bytes_mut()[len..padded].split_at_mut(HEADER_LEN);
            body.fill(0);
            record::seal_in_place(head, body, self.seed, RecordHeader::new(kind::PAD, 0, 0, 0, gap - HEADER_LEN));
        } else {
            buf.as_bytes_mut()[len..padded].fill(0);
        }
        buf.trim_to_size(padded);
        let buf = Rc::new(buf);
        self.pending.push_back(Pending { buf, len: padded, seq: self.seq, pos: self.active_pos, last_lsn: self.active_last_lsn });
        self.pending_bytes += padded as u64;
        self.active_pos += padded as u64;
        self.active_len = 0;
        self.active_last_lsn = 0;
    }

    /// Starts the next segment: the rest of this one stays unused.
    fn roll_segment(&mut self) {
        if self.active_len > 0 {
            self.seal_active();
        }
        let prev_end = self.active_pos;
        self.seq += 1;
        self.seed = new_seed();
        let header = SegmentHeader::new(self.cfg.shard, self.seq, self.seed, self.next_lsn, prev_end, self.cfg.segment_size);
        self.new_segments.push_back(header);
        self.active_pos = DATA_START;
    }
}

/// Bytes written per request while preparing a segment.
const PREPARE_CHUNK: usize = 1 << 20;

/// Where segment `seq` is prepared before it is renamed into place.
fn prepared_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}.prep"))
}

/// Preparations left by an earlier run may be incomplete: remove them.
fn remove_stale_preparations(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if e.file_name().to_str().is_some_and(|n| n.ends_with(".prep")) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn new_seed() -> u64 {
    loop {
        let s: u64 = rand::random();
        if s != 0 {
            return s;
        }
    }
}

fn sync_path(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

/// Removes segment files `doomed` from `dir` (one already gone is fine),
/// then syncs the directory; how many went, and the first error. Runs on
/// the blocking thread.
fn remove_segments(dir: &Path, doomed: &[u64]) -> (u64, Result<(), String>) {
    let mut removed = 0;
    for seq in doomed {
        let path = segment::segment_path(dir, *seq);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return (removed, Err(format!("remove {}: {e}", path.display()))),
            _ => removed += 1,
        }
    }
    (removed, sync_path(dir).map_err(|e| format!("fsync directory {}: {e}", dir.display())))
}
