//! The cold tier: where string values go when their shard is over its
//! memory budget under the `tiered` policy, so that a data set larger than
//! RAM stays whole: hot values in memory, cold ones on disk, read back with
//! io_uring.
//!
//! **What it holds.** Each shard owns its tier: files `NNNNNNNN.cold` in the
//! shard's directory, `--segment-size` at most (as the log's), appended to and never
//! rewritten. A value leaving memory is appended as one record and its key
//! keeps only a [`ColdRef`] (segment, offset, length: 12 bytes). The tier
//! is storage, like the log: it knows records, not views. The keyspace
//! decides what goes cold and when it comes back; the checkpoint writes
//! [`ColdRef`]s instead of the values, so a checkpoint of a large data set
//! stays small and start-up does not read cold values at all.
//!
//! **On disk, byte by byte** (little-endian):
//! - Block 0 (4096 bytes): `STRNDCLD`, version u32 (1), shard u32, segment
//!   u32, 4 zero bytes, seed u64, then xxh3-64 of the 32 bytes before it;
//!   zeros to the end of the block.
//! - Records from offset 4096: value length u32, key length u16, database
//!   u8, marker `0xC0`, xxh3-64 (seeded with the segment's seed) of the
//!   first 8 header bytes, the key and the value; then the key and the
//!   value. Records are packed; each write ends with zeros up to its last
//!   4096-byte block, and the next write starts on a fresh block, so a
//!   record is never rewritten in place. A zero marker means padding: the
//!   next record is on the next block.
//!
//! **Writes.** [`Tier::put`] is synchronous (eviction runs inside a
//! command): it appends the record to an in-memory chunk and returns its
//! address at once. A flusher task writes chunks in order with O_DIRECT;
//! until a chunk is written, reads of its records are served from memory.
//! At most [`MAX_PENDING`] bytes wait; beyond that `put` answers
//! [`TierError::Busy`] and eviction pauses until the flusher catches up.
//!
//! **Durability.** Cold values need no durability of their own until a
//! checkpoint refers to them: before that, the log (or an older checkpoint)
//! still holds them. [`Tier::sync_all`] makes every record put so far
//! durable, and the checkpoint calls it before it publishes its file.
//!
//! **Space.** A segment is deleted once neither of the two checkpoints kept
//! on disk refers to it and no key in memory can ([`Tier::after_checkpoint`]).
//! Segments whose live bytes, as the newest checkpoint counted them, fall
//! under half are compacted: the keyspace moves their live records to the
//! head ([`Tier::scan_segment`] reads them back), after which the next two
//! checkpoints let the file go.
//!
//! **Reads** go through io_uring with O_DIRECT: glommio reads the 4 KiB
//! blocks that hold the record into an aligned buffer, and the shard goes
//! on serving meanwhile. (glommio decides per device and thread whether
//! O_DIRECT I/O uses the polled ring by probing a read; the server settles
//! that probe on a block of real data first, `runtime::settle_polling`.)
//! Compaction's whole-segment scans read buffered, with the kernel's
//! read-ahead. Reads check the record's checksum, lengths, database and
//! key, and name the file and offset when something is wrong.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use crate::runtime::{self, BufferedFile, DmaFile};

/// Largest size of a tier segment file (the log's `--segment-size`, up to this).
pub const MAX_SEGMENT_SIZE: u32 = 1 << 30;
/// I/O block: O_DIRECT alignment and the unit of a write.
pub const BLOCK: u32 = 4096;
/// Bytes of a record's header.
pub const HEADER: usize = 16;
/// The longest value that may go cold (longer ones stay in memory).
pub const MAX_VALUE: usize = 16 << 20;
/// Bytes of records waiting for the flusher before [`Tier::put`] refuses.
pub const MAX_PENDING: usize = 32 << 20;
/// How long the flusher gathers records before it writes.
pub const GATHER: Duration = Duration::from_millis(1);
/// A segment is compacted when less than this share of its bytes is live.
pub const COMPACT_BELOW: f64 = 0.5;

const MAGIC: &[u8; 8] = b"STRNDCLD";
const VERSION: u32 = 1;
const MARKER: u8 = 0xC0;
const EXT: &str = "cold";

/// Where a cold value is: its tier segment, the record's offset and the value's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ColdRef {
    /// Segment number.
    pub seg: u32,
    /// Offset of the record in the segment.
    pub off: u32,
    /// Length of the value.
    pub len: u32,
}

/// What went wrong with the tier.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TierError {
    /// Too many records wait for the flusher; try again once it catches up.
    #[error("the cold tier's write queue is full")]
    Busy,
    /// A write or sync failed: the tier takes no more values (reads still work).
    #[error("the cold tier failed: {0}")]
    Failed(String),
    /// A read failed or read something that is not the record asked for.
    #[error("cold value at {file} offset {offset}: {what}")]
    Read {
        /// The segment file.
        file: PathBuf,
        /// The record's offset.
        offset: u64,
        /// What was wrong.
        what: String,
    },
}

/// Counters for INFO.
#[derive(Debug, Default, Clone, Copy)]
pub struct TierStats {
    /// Values written to the tier (evictions and compaction moves).
    pub puts: u64,
    /// Bytes of records written.
    pub bytes_written: u64,
    /// Cold values read back.
    pub reads: u64,
    /// Bytes of values read back.
    pub bytes_read: u64,
    /// Reads that failed (I/O or checksum).
    pub read_errors: u64,
    /// Segment files deleted.
    pub segments_removed: u64,
    /// Records moved out of sparse segments.
    pub moved: u64,
}

struct Segment {
    seed: u64,
    /// End of the last record put (the file's useful length).
    end: u32,
    /// Whether the file exists on disk with its header.
    created: bool,
    /// For writing (O_DIRECT), in the segment being filled.
    dma: Option<Rc<DmaFile>>,
    /// For reading through io_uring (see the module comment on why not O_DIRECT).
    reader: Option<Rc<DmaFile>>,
    std: Option<Rc<std::fs::File>>,
}

struct Chunk {
    /// Sequence number: chunks are written in this order.
    seq: u64,
    seg: u32,
    /// Offset of `data[0]` in the segment (block-aligned).
    base: u32,
    data: Vec<u8>,
    /// Taken by the flusher: no more records go into it.
    sealed: bool,
}

struct Inner {
    dir: PathBuf,
    shard: u32,
    segs: BTreeMap<u32, Segment>,
    /// The segment records go to.
    head: u32,
    /// Where the next record goes in `head`.
    head_end: u32,
    chunks: VecDeque<Chunk>,
    next_chunk: u64,
    /// Chunks with a lower sequence number are written.
    written_below: u64,
    pending: usize,
    /// Segments written since their last fdatasync.
    dirty: BTreeSet<u32>,
    failed: Option<String>,
    flusher: Option<Waker>,
    waiters: Vec<Waker>,
    /// Largest size of a segment file.
    segment_size: u32,
    /// Segments (and their live bytes) the newest checkpoint refers to.
    newest: BTreeMap<u32, u64>,
    /// The same for the checkpoint before it; None: unknown (after a restart), so every segment is kept.
    previous: Option<BTreeMap<u32, u64>>,
    stats: TierStats,
    /// Whether the flusher task runs.
    flushing: bool,
}

/// One shard's cold tier. Cheap to clone (shared within the shard's thread).
#[derive(Clone)]
pub struct Tier {
    inner: Rc<RefCell<Inner>>,
}

impl std::fmt::Debug for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.inner.borrow();
        f.debug_struct("Tier").field("dir", &i.dir).field("head", &i.head).field("segments", &i.segs.len()).finish()
    }
}

/// The path of tier segment `seg` in `dir`.
pub fn segment_path(dir: &Path, seg: u32) -> PathBuf {
    dir.join(format!("{seg:08}.{EXT}"))
}

/// The tier segments in `dir`, by number.
pub fn list(dir: &Path) -> std::io::Result<Vec<u32>> {
    let mut segs = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name.strip_suffix(&format!(".{EXT}")).and_then(|n| n.parse::<u32>().ok()) {
            segs.push(n);
        }
    }
    segs.sort_unstable();
    Ok(segs)
}

fn header_block(shard: u32, seg: u32, seed: u64) -> Vec<u8> {
    let mut b = vec![0u8; BLOCK as usize];
    b[..8].copy_from_slice(MAGIC);
    b[8..12].copy_from_slice(&VERSION.to_le_bytes());
    b[12..16].copy_from_slice(&shard.to_le_bytes());
    b[16..20].copy_from_slice(&seg.to_le_bytes());
    b[24..32].copy_from_slice(&seed.to_le_bytes());
    let sum = xxh3_64(&b[..32]);
    b[32..40].copy_from_slice(&sum.to_le_bytes());
    b
}

/// Reads a segment's header block: its seed, or what is wrong with it.
fn read_header(file: &std::fs::File, seg: u32) -> Result<u64, String> {
    let mut b = [0u8; 40];
    file.read_exact_at(&mut b, 0).map_err(|e| format!("reading the header: {e}"))?;
    if &b[..8] != MAGIC {
        return Err("not a tier segment (bad magic)".into());
    }
    if u64::from_le_bytes(b[32..40].try_into().unwrap_or_default()) != xxh3_64(&b[..32]) {
        return Err("header checksum mismatch".into());
    }
    let num = u32::from_le_bytes(b[16..20].try_into().unwrap_or_default());
    if num != seg {
        return Err(format!("header names segment {num}"));
    }
    Ok(u64::from_le_bytes(b[24..32].try_into().unwrap_or_default()))
}

fn checksum(seed: u64, head: &[u8], key: &[u8], value: &[u8]) -> u64 {
    let mut h = Xxh3::with_seed(seed);
    h.update(head);
    h.update(key);
    h.update(value);
    h.digest()
}

/// Whether a value of this size under a key of this size can go cold.
pub fn fits(key_len: usize, value_len: usize) -> bool {
    key_len <= u16::MAX as usize && value_len <= MAX_VALUE
}

/// A record read back from a segment by [`Tier::scan_segment`].
#[derive(Debug)]
pub struct Scanned {
    /// Its address.
    pub at: ColdRef,
    /// Database.
    pub db: u8,
    /// Key.
    pub key: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
}

impl Tier {
    /// Opens the tier in `dir` (a shard's directory): existing segments stay
    /// readable and new records go to a new segment after them. Needs no
    /// executor until the first [`Tier::put`], which spawns the flusher on
    /// the current one (so tools can read a tier offline).
    pub fn open(dir: &Path, shard: u32, segment_size: u64) -> std::io::Result<Tier> {
        let segment_size = (segment_size.min(MAX_SEGMENT_SIZE as u64) as u32 / BLOCK * BLOCK).max(2 * BLOCK);
        let mut segs = BTreeMap::new();
        for seg in list(dir)? {
            let path = segment_path(dir, seg);
            let file = std::fs::File::open(&path)?;
            let end = file.metadata()?.len().min(MAX_SEGMENT_SIZE as u64) as u32;
            // A segment whose header cannot be read is kept (never written to);
            // reads of it fail with the reason, naming the file.
            let seed = match read_header(&file, seg) {
                Ok(seed) => seed,
                Err(e) => {
                    tracing::error!(shard, file = %path.display(), error = %e, "cold tier segment is damaged");
                    0
                }
            };
            segs.insert(seg, Segment { seed, end, created: true, dma: None, reader: None, std: Some(Rc::new(file)) });
        }
        let head = segs.keys().next_back().map_or(1, |s| s + 1);
        segs.insert(head, Segment { seed: rand::random(), end: BLOCK, created: false, dma: None, reader: None, std: None });
        Ok(Tier {
            inner: Rc::new(RefCell::new(Inner {
                dir: dir.to_path_buf(),
                shard,
                segs,
                head,
                head_end: BLOCK,
                chunks: VecDeque::new(),
                next_chunk: 0,
                written_below: 0,
                pending: 0,
                dirty: BTreeSet::new(),
                failed: None,
                flusher: None,
                waiters: Vec::new(),
                segment_size,
                newest: BTreeMap::new(),
                previous: None,
                stats: TierStats::default(),
                flushing: false,
            })),
        })
    }

    /// Appends a value; its address at once (see the module comment).
    pub fn put(&self, db: u8, key: &[u8], value: &[u8]) -> Result<ColdRef, TierError> {
        debug_assert!(fits(key.len(), value.len()));
        let mut guard = self.inner.borrow_mut();
        let i = &mut *guard;
        if let Some(e) = &i.failed {
            return Err(TierError::Failed(e.clone()));
        }
        let len = HEADER + key.len() + value.len();
        if i.pending + len > MAX_PENDING {
            return Err(TierError::Busy);
        }
        if i.head_end as usize + len > i.segment_size as usize && i.head_end > BLOCK {
            i.head += 1;
            i.head_end = BLOCK;
            i.segs.insert(i.head, Segment { seed: rand::random(), end: BLOCK, created: false, dma: None, reader: None, std: None });
        }
        let (seg, off) = (i.head, i.head_end);
        let open = i.chunks.back().is_some_and(|c| !c.sealed && c.seg == seg);
        if !open {
            let seq = i.next_chunk;
            i.next_chunk += 1;
            i.chunks.push_back(Chunk { seq, seg, base: off, data: Vec::new(), sealed: false });
        }
        let seed = i.segs.get(&seg).map_or(0, |s| s.seed);
        let mut head = [0u8; HEADER];
        head[..4].copy_from_slice(&(value.len() as u32).to_le_bytes());
        head[4..6].copy_from_slice(&(key.len() as u16).to_le_bytes());
        head[6] = db;
        head[7] = MARKER;
        let sum = checksum(seed, &head[..8], key, value);
        head[8..16].copy_from_slice(&sum.to_le_bytes());
        let Some(chunk) = i.chunks.back_mut() else { unreachable!("a chunk was pushed above") };
        debug_assert_eq!(chunk.base as usize + chunk.data.len(), off as usize);
        chunk.data.extend_from_slice(&head);
        chunk.data.extend_from_slice(key);
        chunk.data.extend_from_slice(value);
        i.head_end += len as u32;
        if let Some(s) = i.segs.get_mut(&seg) {
            s.end = i.head_end;
        }
        i.pending += len;
        i.stats.puts += 1;
        if let Some(w) = i.flusher.take() {
            w.wake();
        }
        let start = !std::mem::replace(&mut i.flushing, true);
        drop(guard);
        if start {
            let flusher = self.clone();
            runtime::spawn(async move { flusher.flush_loop().await });
        }
        Ok(ColdRef { seg, off, len: value.len() as u32 })
    }

    /// Reads a cold value back without waiting on I/O asynchronously (a
    /// blocking `pread`); for the rare paths that cannot wait ([`Tier::read`] otherwise).
    pub fn read_sync(&self, r: ColdRef, key: &[u8]) -> Result<Vec<u8>, TierError> {
        let total = HEADER + key.len() + r.len as usize;
        if let Some(pending) = self.read_pending(r, key, total) {
            return pending;
        }
        let file = {
            let mut i = self.inner.borrow_mut();
            let path = segment_path(&i.dir, r.seg);
            let Some(s) = i.segs.get_mut(&r.seg) else {
                return Err(i.read_error(r, "the segment is gone".into()));
            };
            if s.std.is_none() {
                match std::fs::File::open(&path) {
                    Ok(f) => s.std = Some(Rc::new(f)),
                    Err(e) => return Err(i.read_error(r, format!("open: {e}"))),
                }
            }
            s.std.clone()
        };
        let Some(file) = file else { unreachable!("opened above") };
        let mut bytes = vec![0u8; total];
        let read = file.read_exact_at(&mut bytes, r.off as u64).map_err(|e| format!("read of {total} bytes: {e}"));
        self.finish_read(r, key, read.map(|()| &bytes[..]))
    }

    /// The record if it still waits in memory (checked and counted).
    fn read_pending(&self, r: ColdRef, key: &[u8], total: usize) -> Option<Result<Vec<u8>, TierError>> {
        let mut i = self.inner.borrow_mut();
        let bytes = i.pending_bytes(r, total)?;
        let result = i.verified(r, key, &bytes);
        Some(i.count(result))
    }

    /// Checks and counts what a read of `r` brought back.
    fn finish_read(&self, r: ColdRef, key: &[u8], read: Result<&[u8], String>) -> Result<Vec<u8>, TierError> {
        let mut i = self.inner.borrow_mut();
        let result = match read {
            Ok(b) => i.verified(r, key, b),
            Err(what) => Err(i.read_error(r, what)),
        };
        i.count(result)
    }

    /// Reads a cold value back through io_uring; the shard serves others meanwhile.
    pub async fn read(&self, r: ColdRef, key: &[u8]) -> Result<Vec<u8>, TierError> {
        let total = HEADER + key.len() + r.len as usize;
        if let Some(pending) = self.read_pending(r, key, total) {
            return pending;
        }
        let file = {
            let i = self.inner.borrow();
            match i.segs.get(&r.seg) {
                None => return Err(i.read_error(r, "the segment is gone".into())),
                Some(s) => s.reader.clone(),
            }
        };
        let file = match file {
            Some(f) => f,
            None => {
                let path = segment_path(&self.inner.borrow().dir, r.seg);
                let opened = DmaFile::open(&path).await;
                let mut i = self.inner.borrow_mut();
                match opened {
                    Ok(f) => {
                        let f = Rc::new(f);
                        if let Some(s) = i.segs.get_mut(&r.seg) {
                            s.reader.get_or_insert_with(|| f.clone());
                        }
                        f
                    }
                    Err(e) => return Err(i.read_error(r, format!("open: {e}"))),
                }
            }
        };
        match file.read_at(r.off as u64, total).await {
            Ok(b) if b.len() == total => self.finish_read(r, key, Ok(&b)),
            Ok(b) => self.finish_read(r, key, Err(format!("short read: {} of {total} bytes", b.len()))),
            Err(e) => self.finish_read(r, key, Err(format!("read of {total} bytes: {e}"))),
        }
    }

    /// Makes every record put so far durable (written and synced).
    pub async fn sync_all(&self) -> Result<(), TierError> {
        let target = self.inner.borrow().next_chunk;
        std::future::poll_fn(|cx| {
            let mut i = self.inner.borrow_mut();
            if let Some(e) = &i.failed {
                return Poll::Ready(Err(TierError::Failed(e.clone())));
            }
            if i.written_below >= target {
                return Poll::Ready(Ok(()));
            }
            i.waiters.push(cx.waker().clone());
            if let Some(w) = i.flusher.take() {
                w.wake();
            }
            Poll::Pending
        })
        .await?;
        let dirty: Vec<(u32, Option<Rc<DmaFile>>)> = {
            let mut i = self.inner.borrow_mut();
            let dirty = std::mem::take(&mut i.dirty);
            dirty.into_iter().map(|s| (s, i.segs.get(&s).and_then(|g| g.dma.clone()))).collect()
        };
        for (seg, file) in dirty {
            if let Some(f) = file {
                if let Err(e) = f.fdatasync().await {
                    let mut i = self.inner.borrow_mut();
                    let msg = format!("fdatasync of {}: {e}", segment_path(&i.dir, seg).display());
                    i.failed = Some(msg.clone());
                    return Err(TierError::Failed(msg));
                }
            }
        }
        if let Ok(d) = std::fs::File::open(&self.inner.borrow().dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The segment records go to now.
    pub fn head(&self) -> u32 {
        self.inner.borrow().head
    }

    /// Counters.
    pub fn stats(&self) -> TierStats {
        self.inner.borrow().stats
    }

    /// Counts a record moved by compaction.
    pub fn count_moved(&self) {
        self.inner.borrow_mut().stats.moved += 1;
    }

    /// Segment files and their total size on disk.
    pub fn disk(&self) -> (usize, u64) {
        let i = self.inner.borrow();
        let created = i.segs.values().filter(|s| s.created || s.end > BLOCK);
        created.fold((0, 0), |(n, b), s| (n + 1, b + s.end as u64))
    }

    /// After start-up: the segments (and live bytes) the loaded checkpoint refers to.
    pub fn loaded(&self, refs: BTreeMap<u32, u64>) {
        let mut i = self.inner.borrow_mut();
        i.newest = refs;
        i.previous = None;
    }

    /// After a checkpoint is durable: `refs` are the segments it refers to
    /// (with their live bytes), `head_at_begin` the head when its walk began.
    /// Deletes the segments no kept checkpoint and no key can refer to, and
    /// returns those worth compacting.
    pub fn after_checkpoint(&self, refs: BTreeMap<u32, u64>, head_at_begin: u32) -> Vec<u32> {
        let mut guard = self.inner.borrow_mut();
        let i = &mut *guard;
        let older = std::mem::replace(&mut i.newest, refs);
        i.previous = Some(older);
        let busy: BTreeSet<u32> = i.chunks.iter().map(|c| c.seg).collect();
        // A key can refer only to segments that the walk counted, or to ones
        // written since it began (head_at_begin and later): see the module comment.
        let removable: Vec<u32> = i
            .segs
            .keys()
            .copied()
            .filter(|&s| {
                s < head_at_begin
                    && s != i.head
                    && !busy.contains(&s)
                    && !i.newest.contains_key(&s)
                    && i.previous.as_ref().is_some_and(|p| !p.contains_key(&s))
            })
            .collect();
        for s in removable {
            let path = segment_path(&i.dir, s);
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    i.segs.remove(&s);
                    i.stats.segments_removed += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    i.segs.remove(&s);
                }
                Err(e) => tracing::error!(shard = i.shard, file = %path.display(), error = %e, "removing a cold tier segment failed"),
            }
        }
        i.segs
            .iter()
            .filter(|(&s, seg)| {
                let size = seg.end.saturating_sub(BLOCK) as f64;
                s < head_at_begin && s != i.head && size > 0.0 && (i.newest.get(&s).copied().unwrap_or(0) as f64) < COMPACT_BELOW * size
            })
            .map(|(&s, _)| s)
            .collect()
    }

    /// Reads every intact record of segment `seg` (for compaction) and hands
    /// each to `f`; stops with an error at the first damaged one.
    pub async fn scan_segment(&self, seg: u32, mut f: impl FnMut(Scanned)) -> Result<(), TierError> {
        let (path, end, seed) = {
            let i = self.inner.borrow();
            let Some(s) = i.segs.get(&seg) else { return Ok(()) };
            (segment_path(&i.dir, seg), s.end as usize, s.seed)
        };
        let fail = |off: usize, what: String| self.inner.borrow().read_error(ColdRef { seg, off: off as u32, len: 0 }, what);
        let file = BufferedFile::open(&path).await.map_err(|e| fail(0, format!("open: {e}")))?;
        let want = end.saturating_sub(BLOCK as usize);
        let read = file.read_at(BLOCK as u64, want).await;
        let _ = file.close().await;
        let buf = read.map_err(|e| fail(BLOCK as usize, format!("read of {want} bytes: {e}")))?;
        let mut pos = 0usize;
        while pos + HEADER <= buf.len() {
            let h = &buf[pos..];
            if h[7] != MARKER {
                pos = (pos / BLOCK as usize + 1) * BLOCK as usize;
                continue;
            }
            let len = record_len(h);
            if h.len() < len {
                return Err(fail(pos + BLOCK as usize, "a record runs past the end of the segment".into()));
            }
            let key_len = u16::from_le_bytes([h[4], h[5]]) as usize;
            let (key, value) = (&h[HEADER..HEADER + key_len], &h[HEADER + key_len..len]);
            if u64::from_le_bytes(h[8..16].try_into().unwrap_or_default()) != checksum(seed, &h[..8], key, value) {
                return Err(fail(pos + BLOCK as usize, "checksum mismatch while compacting".into()));
            }
            let at = ColdRef { seg, off: (pos + BLOCK as usize) as u32, len: value.len() as u32 };
            f(Scanned { at, db: h[6], key: key.to_vec(), value: value.to_vec() });
            pos += len;
        }
        Ok(())
    }

    /// Waits until the flusher has room again (after [`TierError::Busy`]).
    pub async fn wait_room(&self) {
        std::future::poll_fn(|cx| {
            let mut i = self.inner.borrow_mut();
            if i.pending < MAX_PENDING / 2 || i.failed.is_some() {
                return Poll::Ready(());
            }
            i.waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    async fn flush_loop(self) {
        loop {
            std::future::poll_fn(|cx| {
                let mut i = self.inner.borrow_mut();
                if i.failed.is_none() && i.chunks.front().is_some_and(|c| !c.data.is_empty()) {
                    return Poll::Ready(());
                }
                i.flusher = Some(cx.waker().clone());
                Poll::Pending
            })
            .await;
            runtime::sleep(GATHER).await;
            if let Err(e) = self.write_front().await {
                let mut i = self.inner.borrow_mut();
                tracing::error!(shard = i.shard, error = %e, "cold tier write failed; values stay in memory from now on");
                i.failed = Some(e);
                i.waiters.drain(..).for_each(Waker::wake);
            }
        }
    }

    /// Writes the oldest chunk (creating its segment first if needed).
    async fn write_front(&self) -> Result<(), String> {
        let (seq, seg, base, buf, create) = {
            let mut guard = self.inner.borrow_mut();
            let i = &mut *guard;
            let Some(c) = i.chunks.front_mut() else { return Ok(()) };
            c.sealed = true;
            let (seq, seg, base) = (c.seq, c.seg, c.base);
            let len = c.data.len();
            let aligned = len.div_ceil(BLOCK as usize) * BLOCK as usize;
            let mut buf = runtime::dma_buffer(aligned);
            buf.as_bytes_mut()[..len].copy_from_slice(&c.data);
            buf.as_bytes_mut()[len..].fill(0);
            if i.head == seg {
                i.head_end = base + aligned as u32;
            }
            let create = i.segs.get(&seg).filter(|s| !s.created).map(|s| header_block(i.shard, seg, s.seed));
            (seq, seg, base, buf, create)
        };
        let path = segment_path(&self.inner.borrow().dir, seg);
        let open = self.inner.borrow().segs.get(&seg).and_then(|s| s.dma.clone());
        let file = match open {
            Some(f) if create.is_none() => f,
            _ => {
                let f = if create.is_some() {
                    runtime::create_dma_file(&path).await
                } else {
                    runtime::OpenOptions::new().read(true).write(true).dma_open(&path).await
                };
                Rc::new(f.map_err(|e| format!("open {}: {e}", path.display()))?)
            }
        };
        if let Some(header) = create {
            let mut hb = runtime::dma_buffer(BLOCK as usize);
            hb.as_bytes_mut().copy_from_slice(&header);
            let n = file.write_at(hb, 0).await.map_err(|e| format!("write of the header of {}: {e}", path.display()))?;
            if n != BLOCK as usize {
                return Err(format!("short write of the header of {}", path.display()));
            }
        }
        let len = buf.len();
        let n = file.write_at(buf, base as u64).await.map_err(|e| format!("write of {len} bytes at {base} in {}: {e}", path.display()))?;
        if n != len {
            return Err(format!("short write at {base} in {}: {n} of {len} bytes", path.display()));
        }
        let mut guard = self.inner.borrow_mut();
        let i = &mut *guard;
        if let Some(s) = i.segs.get_mut(&seg) {
            s.created = true;
            s.dma.get_or_insert(file);
        }
        let c = i.chunks.pop_front();
        debug_assert_eq!(c.as_ref().map(|c| c.seq), Some(seq));
        let written = c.map_or(0, |c| c.data.len());
        i.pending -= written;
        i.stats.bytes_written += written as u64;
        i.written_below = seq + 1;
        i.dirty.insert(seg);
        i.waiters.drain(..).for_each(Waker::wake);
        Ok(())
    }
}

fn record_len(h: &[u8]) -> usize {
    HEADER + u16::from_le_bytes([h[4], h[5]]) as usize + u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize
}

impl Inner {
    /// The record's bytes if it still waits in memory.
    fn pending_bytes(&self, r: ColdRef, total: usize) -> Option<Vec<u8>> {
        let c = self.chunks.iter().find(|c| c.seg == r.seg && r.off >= c.base && (r.off as usize) < c.base as usize + c.data.len())?;
        let at = (r.off - c.base) as usize;
        c.data.get(at..at + total).map(<[u8]>::to_vec)
    }

    /// Counts a read's outcome in the stats and passes it on.
    fn count(&mut self, result: Result<Vec<u8>, TierError>) -> Result<Vec<u8>, TierError> {
        match &result {
            Ok(v) => {
                self.stats.reads += 1;
                self.stats.bytes_read += v.len() as u64;
            }
            Err(_) => self.stats.read_errors += 1,
        }
        result
    }

    fn read_error(&self, r: ColdRef, what: String) -> TierError {
        TierError::Read { file: segment_path(&self.dir, r.seg), offset: r.off as u64, what }
    }

    /// The value of a record read for `r` under `key`, once its checksum, lengths and key agree.
    fn verified(&self, r: ColdRef, key: &[u8], b: &[u8]) -> Result<Vec<u8>, TierError> {
        let seed = self.segs.get(&r.seg).map_or(0, |s| s.seed);
        let bad = |what: &str| Err(self.read_error(r, what.to_string()));
        if b.len() != HEADER + key.len() + r.len as usize {
            return bad("short read");
        }
        // The checksum first, over what the reference says is there: a damaged
        // header then reads as damage, not as someone else's record.
        let (k, v) = (&b[HEADER..HEADER + key.len()], &b[HEADER + key.len()..]);
        if u64::from_le_bytes(b[8..16].try_into().unwrap_or_default()) != checksum(seed, &b[..8], k, v) {
            return bad("checksum mismatch");
        }
        let (value_len, key_len) = (u32::from_le_bytes([b[0], b[1], b[2], b[3]]), u16::from_le_bytes([b[4], b[5]]) as usize);
        // The database byte is checked by the checksum, not compared: SWAPDB
        // moves keys between databases without rewriting their records.
        if value_len != r.len || key_len != key.len() || k != key {
            return bad("the record belongs to another key");
        }
        Ok(v.to_vec())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Runs `f` on a glommio executor whose polled-I/O probe is settled, as a shard's is.
    fn on_executor<T: Send + 'static, F: std::future::Future<Output = T> + 'static>(f: impl FnOnce() -> F + Send + 'static) -> T {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(move || async move {
                let probe = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
                runtime::settle_polling(probe.path()).await.unwrap();
                f().await
            })
            .unwrap()
            .join()
            .unwrap()
    }

    fn value(i: usize) -> Vec<u8> {
        let len = 30 + (i * 7919) % 5000;
        format!("{i}-").bytes().cycle().take(len).collect()
    }

    fn key(i: usize) -> Vec<u8> {
        format!("key:{i}").into_bytes()
    }

    /// Puts 600 values (segments of 64 KiB: several rolls), reading each
    /// back while it waits in memory, after it is written, and after sync,
    /// both ways; then scans every segment and finds every record once.
    #[test]
    fn values_read_back_from_memory_and_disk_and_scan_finds_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        on_executor(move || async move {
            let tier = Tier::open(&path, 3, 64 << 10).unwrap();
            let mut refs = Vec::new();
            for i in 0..600 {
                let r = tier.put((i % 16) as u8, &key(i), &value(i)).unwrap();
                assert_eq!(tier.read(r, &key(i)).await.unwrap(), value(i), "pending {i}");
                refs.push(r);
                if i % 50 == 0 {
                    runtime::sleep(Duration::from_millis(3)).await;
                }
            }
            tier.sync_all().await.unwrap();
            assert!(tier.head() > 5, "segments rolled: head {}", tier.head());
            for (i, r) in refs.iter().enumerate() {
                assert_eq!(tier.read(*r, &key(i)).await.unwrap(), value(i), "async {i}");
                assert_eq!(tier.read_sync(*r, &key(i)).unwrap(), value(i), "sync {i}");
                assert!(tier.read(*r, b"other").await.is_err());
            }
            let mut seen = Vec::new();
            for seg in 1..=tier.head() {
                tier.scan_segment(seg, |s| seen.push((s.at, s.db, s.key, s.value))).await.unwrap();
            }
            assert_eq!(seen.len(), 600);
            for (i, (at, db, k, v)) in seen.into_iter().enumerate() {
                assert_eq!((at, db as usize, k, v), (refs[i], i % 16, key(i), value(i)));
            }
            // Reopened (a restart): the old segments read the same, new records go to a new one.
            let again = Tier::open(&path, 3, 64 << 10).unwrap();
            assert!(again.head() > tier.head());
            for (i, r) in refs.iter().enumerate().step_by(7) {
                assert_eq!(again.read(*r, &key(i)).await.unwrap(), value(i));
            }
        });
    }

    /// Damage anywhere in a segment: a read returns the exact value or an
    /// error that names the file, never other bytes.
    #[test]
    fn damaged_bytes_are_never_returned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        on_executor(move || async move {
            let tier = Tier::open(&path, 0, 1 << 20).unwrap();
            let refs: Vec<ColdRef> = (0..200).map(|i| tier.put(0, &key(i), &value(i)).unwrap()).collect();
            tier.sync_all().await.unwrap();
            let file = segment_path(&path, refs[0].seg);
            let good = std::fs::read(&file).unwrap();
            for round in 0..40u64 {
                let mut bad = good.clone();
                let at = BLOCK as usize + (round as usize * 104_729) % (bad.len() - BLOCK as usize);
                bad[at] ^= 1 << (round % 8);
                std::fs::write(&file, &bad).unwrap();
                let reader = Tier::open(&path, 0, 1 << 20).unwrap();
                let mut failed = 0;
                for (i, r) in refs.iter().enumerate() {
                    match reader.read(*r, &key(i)).await {
                        Ok(v) => assert_eq!(v, value(i), "round {round}: damaged bytes returned for {i}"),
                        Err(e) => {
                            assert!(e.to_string().contains(&file.display().to_string()), "{e}");
                            failed += 1;
                        }
                    }
                }
                // Unless the flip hit padding, exactly the record holding it fails.
                assert!(failed <= 1, "round {round}: {failed} reads failed for one flipped bit");
            }
        });
    }

    /// Segments go only when neither kept checkpoint refers to them and
    /// they are older than the walk.
    #[test]
    fn segments_are_deleted_only_when_nothing_can_refer_to_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        on_executor(move || async move {
            let tier = Tier::open(&path, 0, 16 << 10).unwrap();
            for i in 0..40 {
                tier.put(0, &key(i), &value(i)).unwrap();
            }
            tier.sync_all().await.unwrap();
            let head = tier.head();
            assert!(head >= 4);
            let files = || list(&path).unwrap();
            // Started with a checkpoint that refers to nothing; the first one after refers to 1 and 3.
            tier.loaded(BTreeMap::new());
            tier.after_checkpoint([(1, 100), (3, 100)].into(), head);
            let left = files();
            assert_eq!(left, vec![1, 3, head], "kept: referred to, or the head");
            // The next refers to 1 only: 3 stays, since the checkpoint before still refers to it.
            let sparse = tier.after_checkpoint([(1, 100)].into(), head);
            assert_eq!(files(), vec![1, 3, head]);
            assert!(sparse.contains(&1), "segment 1 is nearly empty: {sparse:?}");
            // And the one after that: neither kept checkpoint refers to 3.
            tier.after_checkpoint([(1, 100)].into(), head);
            assert_eq!(files(), vec![1, head]);
            // Segments written since a walk began are never removed by it.
            tier.put(0, b"late", &value(1)).unwrap();
            tier.sync_all().await.unwrap();
            tier.after_checkpoint(BTreeMap::new(), head);
            assert!(files().contains(&head));
        });
    }
}
