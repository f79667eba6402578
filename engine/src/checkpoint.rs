//! Checkpoint files: a view's state as of one LSN, so start-up replays only
//! the log after it.
//!
//! This module frames and checks bytes; what the entries mean belongs to the
//! view that wrote them (the keyspace: see `keyspace::snapshot`). Like the
//! log, it writes with O_DIRECT through the runtime's `DmaFile`, and it
//! never rewrites a finished file: a checkpoint is written under a `.tmp`
//! name, synced, renamed into place and the directory synced, so a crash at
//! any moment leaves either the complete file or no file under the final name.
//!
//! Byte layout of `DIR/shard-NNN/LLLLLLLLLLLLLLLL.ckp` (L: the LSN, 16 hex digits):
//!
//! ```text
//! offset 0     block 0: CheckpointHeader (64 bytes), the rest of the block zero
//! offset 4096  chunks, back to back, each:
//!                ChunkHeader (16 bytes): len u32, entries u32, checksum u64
//!                len payload bytes: whole entries, encoded by the view,
//!                  or (version 2, top bit of `entries` set) one zstd frame
//!                  holding them, with its content size in the frame header
//!              the last chunk has len 0 and entries = the total entry count:
//!              the end mark; zeros follow up to the next 4096-byte boundary
//! ```
//!
//! A chunk's checksum is xxh3-64 over its payload as stored (compressed or
//! not) and its `len` and `entries` fields, seeded with the file's random
//! seed plus the chunk's index, so a chunk that is damaged, lost, repeated
//! or moved never validates, and nothing damaged reaches the decompressor.
//! A chunk is stored compressed only when that makes it smaller. Version 1
//! files (no compression) are still read. All integers are little-endian.

use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::{xxh3_64, Xxh3};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::log::segment::{align_up, BLOCK};
use crate::runtime::{self, DmaBuffer, DmaFile};

/// The magic bytes at the start of every checkpoint.
pub const MAGIC: [u8; 8] = *b"STRNDCKP";

/// On-disk format version written (2: chunks may be zstd frames).
pub const VERSION: u32 = 2;

/// The oldest version still read.
const OLDEST_VERSION: u32 = 1;

/// The top bit of a chunk's `entries`: its payload is a zstd frame (version 2).
const COMPRESSED: u32 = 1 << 31;

/// Bytes handed to the compressor between yields to the shard's other tasks.
const COMPRESS_STEP: usize = 64 << 10;

/// Bytes written per request.
const WRITE_BUFFER: usize = 1 << 20;

/// Size of [`ChunkHeader`].
pub const CHUNK_HEADER_LEN: usize = 16;

/// Block 0 of a checkpoint.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct CheckpointHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`VERSION`].
    pub version: U32,
    /// The shard whose state this is.
    pub shard: U32,
    /// The state includes every log record up to and including this LSN, and none after.
    pub lsn: U64,
    /// Unix milliseconds when the checkpoint began.
    pub time_ms: U64,
    /// Random seed of the chunk checksums.
    pub seed: U64,
    /// The cross-shard transaction epoch the checkpoint began in (see
    /// `keyspace::tx`): parts of earlier epochs are in it, later ones are not.
    /// Zero in files written before it existed.
    pub tx_epoch: U64,
    /// Zero.
    pub reserved: [u8; 8],
    /// xxh3-64 of the bytes before this field.
    pub checksum: U64,
}

const HEADER_LEN: usize = std::mem::size_of::<CheckpointHeader>();
const _: () = assert!(HEADER_LEN == 64);

impl CheckpointHeader {
    fn new(shard: u32, lsn: u64, time_ms: u64, seed: u64, tx_epoch: u64) -> CheckpointHeader {
        let mut h = CheckpointHeader {
            magic: MAGIC,
            version: U32::new(VERSION),
            shard: U32::new(shard),
            lsn: U64::new(lsn),
            time_ms: U64::new(time_ms),
            seed: U64::new(seed),
            tx_epoch: U64::new(tx_epoch),
            reserved: [0; 8],
            checksum: U64::new(0),
        };
        h.checksum = U64::new(xxh3_64(&h.as_bytes()[..HEADER_LEN - 8]));
        h
    }

    fn decode(bytes: &[u8]) -> Result<CheckpointHeader, &'static str> {
        let (h, _) = CheckpointHeader::read_from_prefix(bytes).map_err(|_| "file shorter than a checkpoint header")?;
        if h.magic != MAGIC {
            return Err("bad magic (not a strand checkpoint)");
        }
        if xxh3_64(&h.as_bytes()[..HEADER_LEN - 8]) != h.checksum.get() {
            return Err("checkpoint header checksum mismatch");
        }
        if !(OLDEST_VERSION..=VERSION).contains(&h.version.get()) {
            return Err("unsupported checkpoint format version");
        }
        Ok(h)
    }
}

/// The header of one chunk.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct ChunkHeader {
    len: U32,
    entries: U32,
    checksum: U64,
}

const _: () = assert!(std::mem::size_of::<ChunkHeader>() == CHUNK_HEADER_LEN);

fn chunk_checksum(seed: u64, index: u64, len: u32, entries: u32, payload: &[u8]) -> u64 {
    let mut h = Xxh3::with_seed(seed.wrapping_add(index));
    h.update(payload);
    h.update(&len.to_le_bytes());
    h.update(&entries.to_le_bytes());
    h.digest()
}

/// The path of the checkpoint at `lsn` in a shard directory.
pub fn checkpoint_path(shard_dir: &Path, lsn: u64) -> PathBuf {
    shard_dir.join(format!("{lsn:016x}.ckp"))
}

fn temp_path(shard_dir: &Path, lsn: u64) -> PathBuf {
    shard_dir.join(format!("{lsn:016x}.ckp.tmp"))
}

/// The checkpoints of a shard directory, newest (highest LSN) first.
pub fn list(shard_dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(shard_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".ckp")) else { continue };
        if let (16, Ok(lsn)) = (hex.len(), u64::from_str_radix(hex, 16)) {
            out.push((lsn, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(lsn, _)| std::cmp::Reverse(*lsn));
    Ok(out)
}

/// Removes `.ckp.tmp` files left by a checkpoint that a crash interrupted.
pub fn remove_stale_temps(shard_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(shard_dir) else { return };
    for e in entries.flatten() {
        if e.file_name().to_str().is_some_and(|n| n.ends_with(".ckp.tmp")) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Why a checkpoint file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The bytes at `offset` are not what the format says.
    #[error("{path} at offset {offset}: {reason}")]
    Damaged { path: PathBuf, offset: u64, reason: String },
    /// The view refused an entry.
    #[error("{path} in the chunk at offset {offset}: {reason}")]
    Entry { path: PathBuf, offset: u64, reason: String },
}

/// A checkpoint that was read and verified.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file.
    pub path: PathBuf,
    /// The LSN its state includes.
    pub lsn: u64,
    /// When it began, in Unix milliseconds.
    pub time_ms: u64,
    /// Entries read.
    pub entries: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// The cross-shard transaction epoch it began in.
    pub tx_epoch: u64,
}

/// One verified chunk handed to [`load`]'s callback.
pub struct Chunk<'a> {
    /// Whole entries, encoded by the view.
    pub payload: &'a [u8],
    /// How many.
    pub entries: u32,
    /// When the checkpoint began, in Unix milliseconds.
    pub time_ms: u64,
}

/// Reads a checkpoint, verifying every chunk before handing it to `apply`. Fails on the first
/// damaged byte. `apply` sees whole chunks in file order; a chunk after a
/// damaged one is never applied, but earlier ones have been: a caller that
/// falls back to another checkpoint must start from an empty state.
pub fn load(path: &Path, mut apply: impl FnMut(Chunk<'_>) -> Result<(), String>) -> Result<Loaded, CheckpointError> {
    let io = |source| CheckpointError::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        return Err(CheckpointError::Damaged { path: path.into(), offset: 0, reason: "empty file".into() });
    }
    // SAFETY: finished checkpoints are never written again, and this server owns the directory.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
    let bytes: &[u8] = &map;
    let damaged =
        |offset: usize, reason: &str| CheckpointError::Damaged { path: path.into(), offset: offset as u64, reason: reason.into() };
    let header = CheckpointHeader::decode(bytes).map_err(|r| damaged(0, r))?;
    let seed = header.seed.get();
    let mut pos = BLOCK;
    let mut entries = 0u64;
    for index in 0u64.. {
        let Ok((chunk, _)) = ChunkHeader::read_from_prefix(bytes.get(pos..).unwrap_or(&[])) else {
            return Err(damaged(pos, "file ends before the end mark"));
        };
        let (clen, count) = (chunk.len.get(), chunk.entries.get());
        let start = pos + CHUNK_HEADER_LEN;
        let Some(payload) = bytes.get(start..start + clen as usize) else {
            return Err(damaged(pos, "chunk runs past the end of the file"));
        };
        if chunk_checksum(seed, index, clen, count, payload) != chunk.checksum.get() {
            return Err(damaged(pos, "chunk checksum mismatch"));
        }
        let (count, packed) = match header.version.get() {
            1 => (count, false),
            _ => (count & !COMPRESSED, count & COMPRESSED != 0),
        };
        if clen == 0 {
            if packed {
                return Err(damaged(pos, "the end mark is flagged as compressed"));
            }
            let mask = if header.version.get() == 1 { u32::MAX } else { COMPRESSED - 1 };
            if count as u64 != entries & mask as u64 {
                return Err(damaged(pos, &format!("end mark counts {count} entries, chunks held {entries}")));
            }
            return Ok(Loaded {
                path: path.into(),
                lsn: header.lsn.get(),
                time_ms: header.time_ms.get(),
                entries,
                bytes: len,
                tx_epoch: header.tx_epoch.get(),
            });
        }
        let unpacked;
        let payload = if packed {
            unpacked = decompress(payload).map_err(|reason| damaged(pos, &reason))?;
            &unpacked[..]
        } else {
            payload
        };
        apply(Chunk { payload, entries: count, time_ms: header.time_ms.get() }).map_err(|reason| CheckpointError::Entry {
            path: path.into(),
            offset: pos as u64,
            reason,
        })?;
        entries += count as u64;
        pos = start + clen as usize;
    }
    unreachable!("the chunk loop only ends by returning")
}

/// The entries of a compressed chunk (its checksum already verified).
fn decompress(frame: &[u8]) -> Result<Vec<u8>, String> {
    let size = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) if n <= u32::MAX as u64 => n as usize,
        Ok(Some(n)) => return Err(format!("compressed chunk claims {n} bytes, over 4 GiB")),
        Ok(None) | Err(_) => return Err("compressed chunk without a readable content size".into()),
    };
    let out = zstd::bulk::decompress(frame, size).map_err(|e| format!("compressed chunk does not decompress: {e}"))?;
    if out.len() != size {
        return Err(format!("compressed chunk holds {} bytes, its frame says {size}", out.len()));
    }
    Ok(out)
}

/// `payload` as one zstd frame at `level`, compressed in steps with a yield
/// between them so the shard's requests run; None when that is not smaller.
async fn compress(payload: &[u8], level: i32) -> Result<Option<Vec<u8>>, String> {
    use std::io::Write;
    let err = |e: std::io::Error| format!("zstd compression of a checkpoint chunk: {e}");
    let mut enc = zstd::stream::write::Encoder::new(Vec::with_capacity(payload.len() / 2), level).map_err(err)?;
    enc.include_contentsize(true).map_err(err)?;
    enc.set_pledged_src_size(Some(payload.len() as u64)).map_err(err)?;
    for (i, step) in payload.chunks(COMPRESS_STEP).enumerate() {
        if i > 0 {
            runtime::yield_now().await;
        }
        enc.write_all(step).map_err(err)?;
    }
    let frame = enc.finish().map_err(err)?;
    Ok((frame.len() < payload.len()).then_some(frame))
}

/// Writes one checkpoint file, chunk by chunk, then [`Writer::finish`]es it.
/// Dropping an unfinished writer leaves a `.tmp` file that
/// [`remove_stale_temps`] (or [`Writer::abandon`]) removes.
pub struct Writer {
    dir: PathBuf,
    lsn: u64,
    seed: u64,
    file: DmaFile,
    buf: DmaBuffer,
    buf_len: usize,
    /// File offset where `buf` starts.
    pos: u64,
    chunks: u64,
    entries: u64,
    /// zstd level of the chunks (0: stored as they are).
    level: i32,
}

impl Writer {
    /// Creates `LSN.ckp.tmp` in `shard_dir` and writes its header.
    pub async fn create(shard_dir: &Path, shard: u32, lsn: u64, time_ms: u64, tx_epoch: u64) -> Result<Writer, String> {
        let path = temp_path(shard_dir, lsn);
        let file = runtime::create_dma_file(&path).await.map_err(|e| format!("create {}: {e}", path.display()))?;
        let seed: u64 = rand::random();
        let mut buf = runtime::dma_buffer(WRITE_BUFFER);
        let header = CheckpointHeader::new(shard, lsn, time_ms, seed, tx_epoch);
        buf.as_bytes_mut()[..BLOCK].fill(0);
        buf.as_bytes_mut()[..HEADER_LEN].copy_from_slice(header.as_bytes());
        Ok(Writer { dir: shard_dir.into(), lsn, seed, file, buf, buf_len: BLOCK, pos: 0, chunks: 0, entries: 0, level: 0 })
    }

    /// Compresses the chunks that follow with zstd at `level` (0: off; 1 to 22).
    pub fn compression(mut self, level: i32) -> Writer {
        self.level = level;
        self
    }

    /// Bytes of the file so far (written or buffered).
    pub fn bytes(&self) -> u64 {
        self.pos + self.buf_len as u64
    }

    /// Appends a chunk of `entries` whole entries (fewer than 2^31).
    pub async fn chunk(&mut self, payload: &[u8], entries: u32) -> Result<(), String> {
        if payload.is_empty() {
            return Ok(());
        }
        if entries >= COMPRESSED {
            return Err(format!("checkpoint chunk of {entries} entries: at most {} fit one chunk", COMPRESSED - 1));
        }
        u32::try_from(payload.len()).map_err(|_| format!("checkpoint chunk of {} bytes is over 4 GiB", payload.len()))?;
        let frame = if self.level > 0 { compress(payload, self.level).await? } else { None };
        match &frame {
            Some(f) => self.frame(f.len() as u32, entries | COMPRESSED, f).await?,
            None => self.frame(payload.len() as u32, entries, payload).await?,
        }
        self.entries += entries as u64;
        Ok(())
    }

    async fn frame(&mut self, len: u32, entries: u32, payload: &[u8]) -> Result<(), String> {
        let header = ChunkHeader {
            len: U32::new(len),
            entries: U32::new(entries),
            checksum: U64::new(chunk_checksum(self.seed, self.chunks, len, entries, payload)),
        };
        self.chunks += 1;
        self.put(header.as_bytes()).await?;
        self.put(payload).await
    }

    async fn put(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        while !bytes.is_empty() {
            let room = self.buf.len() - self.buf_len;
            let n = room.min(bytes.len());
            self.buf.as_bytes_mut()[self.buf_len..self.buf_len + n].copy_from_slice(&bytes[..n]);
            self.buf_len += n;
            bytes = &bytes[n..];
            if self.buf_len == self.buf.len() {
                self.write_buffer().await?;
            }
        }
        Ok(())
    }

    /// Writes the buffer, zero-padded to a block; keeps a partial last block in memory.
    async fn write_buffer(&mut self) -> Result<(), String> {
        let padded = align_up(self.buf_len as u64) as usize;
        self.buf.as_bytes_mut()[self.buf_len..padded].fill(0);
        let full = self.buf_len / BLOCK * BLOCK;
        let mut next = runtime::dma_buffer(WRITE_BUFFER);
        let tail = self.buf_len - full;
        next.as_bytes_mut()[..tail].copy_from_slice(&self.buf.as_bytes()[full..self.buf_len]);
        let mut out = std::mem::replace(&mut self.buf, next);
        out.trim_to_size(padded);
        let n =
            self.file.write_at(out, self.pos).await.map_err(|e| format!("write of checkpoint {} at offset {}: {e}", self.lsn, self.pos))?;
        if n != padded {
            return Err(format!("short write of checkpoint {} at offset {}: {n} of {padded} bytes", self.lsn, self.pos));
        }
        self.pos += full as u64;
        self.buf_len = tail;
        Ok(())
    }

    /// Writes the end mark, syncs, and renames the file into place; the
    /// caller must have made the log durable up to the checkpoint's LSN first.
    /// Returns the final path and the file size. On failure the temporary
    /// file is removed.
    pub async fn finish(mut self) -> Result<(PathBuf, u64), String> {
        match self.write_end().await {
            Ok(size) => self.publish(size).await,
            Err(e) => {
                self.abandon().await;
                Err(e)
            }
        }
    }

    /// The end mark and the buffered tail, written and synced; the file's size.
    async fn write_end(&mut self) -> Result<u64, String> {
        let total = (self.entries & (COMPRESSED - 1) as u64) as u32;
        self.frame(0, total, &[]).await?;
        if self.buf_len > 0 {
            self.write_buffer().await?;
            self.pos += self.buf_len as u64;
        }
        self.file.fdatasync().await.map_err(|e| format!("fdatasync of checkpoint {}: {e}", self.lsn))?;
        Ok(align_up(self.pos))
    }

    /// Closes the synced file and renames it into place.
    async fn publish(self, size: u64) -> Result<(PathBuf, u64), String> {
        let _ = self.file.close().await;
        let (tmp, path) = (temp_path(&self.dir, self.lsn), checkpoint_path(&self.dir, self.lsn));
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("rename {} to {}: {e}", tmp.display(), path.display())
        })?;
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| format!("fsync directory {}: {e}", self.dir.display()))?;
        Ok((path, size))
    }

    /// Gives up: closes and removes the temporary file.
    pub async fn abandon(self) {
        let _ = self.file.close().await;
        let _ = std::fs::remove_file(temp_path(&self.dir, self.lsn));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Runs `f` on a glommio executor, as a shard would.
    fn on_executor<T: Send + 'static, F: std::future::Future<Output = T> + 'static>(f: impl FnOnce() -> F + Send + 'static) -> T {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound).spawn(move || async move { f().await }).unwrap().join().unwrap()
    }

    /// Writes a checkpoint of the given chunks; returns its path.
    fn write(dir: &Path, lsn: u64, chunks: Vec<(Vec<u8>, u32)>) -> PathBuf {
        write_at_level(dir, lsn, chunks, 0)
    }

    /// Writes a checkpoint of the given chunks with zstd at `level` (0: off).
    fn write_at_level(dir: &Path, lsn: u64, chunks: Vec<(Vec<u8>, u32)>, level: i32) -> PathBuf {
        let dir = dir.to_path_buf();
        on_executor(move || async move {
            let mut w = Writer::create(&dir, 7, lsn, 1234, 0).await.unwrap().compression(level);
            for (bytes, n) in &chunks {
                w.chunk(bytes, *n).await.unwrap();
            }
            w.finish().await.unwrap().0
        })
    }

    type Chunks = Vec<(Vec<u8>, u32)>;

    fn read(path: &Path) -> Result<(Loaded, Chunks), CheckpointError> {
        let mut got = Vec::new();
        let loaded = load(path, |c| {
            assert_eq!(c.time_ms, 1234);
            got.push((c.payload.to_vec(), c.entries));
            Ok(())
        })?;
        Ok((loaded, got))
    }

    #[test]
    fn chunks_come_back_as_written_across_write_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let chunks: Vec<(Vec<u8>, u32)> = (0..40u32).map(|i| (vec![i as u8; 1 + (i as usize * 77_777) % 300_000], i)).collect();
        let path = write(dir.path(), 99, chunks.clone());
        assert_eq!(path, checkpoint_path(dir.path(), 99));
        let (loaded, got) = read(&path).unwrap();
        assert_eq!(got, chunks);
        assert_eq!((loaded.lsn, loaded.entries), (99, (0..40).sum::<u64>()));
        assert_eq!(loaded.bytes % BLOCK as u64, 0);
        assert_eq!(list(dir.path()).unwrap(), vec![(99, path)]);
    }

    #[test]
    fn every_flipped_bit_and_every_cut_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), 5, vec![(b"first chunk".to_vec(), 2), (b"second".to_vec(), 1)]);
        let good = std::fs::read(&path).unwrap();
        let end = BLOCK + 3 * CHUNK_HEADER_LEN + b"first chunk".len() + b"second".len();
        for at in (0..HEADER_LEN).chain(BLOCK..end) {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            std::fs::write(&path, &bad).unwrap();
            assert!(read(&path).is_err(), "flip at {at} went unnoticed");
        }
        for cut in [0, 10, BLOCK, BLOCK + 20, end - 1] {
            std::fs::write(&path, &good[..cut]).unwrap();
            assert!(read(&path).is_err(), "cut at {cut} went unnoticed");
        }
        // Swapping two chunks of equal length is caught by the per-chunk seed.
        let path = write(dir.path(), 6, vec![(b"aaaa".to_vec(), 1), (b"bbbb".to_vec(), 1)]);
        let mut bad = std::fs::read(&path).unwrap();
        let (a, b) = (BLOCK, BLOCK + CHUNK_HEADER_LEN + 4);
        let first: Vec<u8> = bad[a..b].to_vec();
        bad.copy_within(b..b + (b - a), a);
        bad[b..b + first.len()].copy_from_slice(&first);
        std::fs::write(&path, &bad).unwrap();
        assert!(read(&path).is_err());
    }

    /// Chunks that shrink are stored as zstd frames, those that do not are
    /// stored as they are, and both read back as written.
    #[test]
    fn compressed_chunks_come_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let text: Vec<u8> = (0..300_000u32).flat_map(|i| format!("key:{} ", i % 977).into_bytes()).collect();
        let noise: Vec<u8> = (0..200_000u64).map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8).collect();
        let chunks = vec![(text.clone(), 3), (noise.clone(), 1), (b"tiny".to_vec(), 1), (text, 2)];
        let path = write_at_level(dir.path(), 11, chunks.clone(), 1);
        let size = std::fs::metadata(&path).unwrap().len() as usize;
        let raw: usize = chunks.iter().map(|c| c.0.len()).sum();
        assert!(size < raw / 2, "compressible chunks were not compressed: {size} bytes for {raw}");
        let (loaded, got) = read(&path).unwrap();
        assert_eq!(got, chunks);
        assert_eq!(loaded.entries, 7);
        // Damage inside a compressed frame is caught by the checksum, before decompression.
        let good = std::fs::read(&path).unwrap();
        for at in (BLOCK..BLOCK + 2000).step_by(37) {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            std::fs::write(&path, &bad).unwrap();
            assert!(read(&path).is_err(), "flip at {at} went unnoticed");
        }
    }

    /// A file of format version 1 (before compression) still loads.
    #[test]
    fn version_one_files_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), 12, vec![(b"old entries".to_vec(), 2)]);
        let mut bytes = std::fs::read(&path).unwrap();
        let mut h = CheckpointHeader::decode(&bytes).unwrap();
        h.version = U32::new(1);
        h.checksum = U64::new(xxh3_64(&h.as_bytes()[..HEADER_LEN - 8]));
        bytes[..HEADER_LEN].copy_from_slice(h.as_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let (loaded, got) = read(&path).unwrap();
        assert_eq!((loaded.entries, got), (2, vec![(b"old entries".to_vec(), 2)]));
    }

    #[test]
    fn an_abandoned_writer_leaves_nothing_under_the_final_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        on_executor(move || async move {
            let mut w = Writer::create(&d, 1, 3, 0, 0).await.unwrap();
            w.chunk(b"x", 1).await.unwrap();
            w.abandon().await;
        });
        assert!(list(dir.path()).unwrap().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        std::fs::write(temp_path(dir.path(), 8), b"partial").unwrap();
        remove_stale_temps(dir.path());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
