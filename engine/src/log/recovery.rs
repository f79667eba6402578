//! Recovery: replays a shard's segments in order, verifying every record.
//!
//! Every segment but the last must validate up to the `prev_end` that the
//! next segment's header records; damage there stops start-up with an error
//! naming the file and offset. The last segment is read until its first
//! invalid record: that is the end of the log, and whatever non-zero bytes
//! follow are a torn tail that is cut (reported in [`Recovered::cut`]).
//! LSNs must be consecutive across the whole log. This module reads files
//! with `mmap` and never writes; it hands each record to a callback that
//! belongs to the views.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::record::{kind, RecordHeader};
use super::segment::{self, SegmentHeader, Step, DATA_START};

/// What recovery found.
#[derive(Debug, Default, Clone)]
pub struct Recovered {
    /// The LSN the next record must carry.
    pub next_lsn: u64,
    /// The last valid segment: its sequence number and where its data ends.
    pub last_segment: Option<(u64, u64)>,
    /// Records applied (those a checkpoint already held are verified, not counted).
    pub records: u64,
    /// Bytes of segment data scanned (headers, payloads, padding).
    pub bytes: u64,
    /// Segments replayed.
    pub segments: u64,
    /// A torn tail that was cut, if any.
    pub cut: Option<Cut>,
    /// Every segment replayed: (sequence number, LSN of its first record), oldest first.
    pub segments_found: Vec<(u64, u64)>,
}

/// Where replay begins: what state the views hold before the first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// Empty state: the log must begin at LSN 1.
    Empty,
    /// A checkpoint holds every record up to this LSN: the log must begin at
    /// or before the next one; segments wholly before it are not read, and
    /// the records up to it in the first segment read are verified, not applied.
    Checkpoint(u64),
    /// Wherever the log begins (inspection tools).
    Any,
}

/// A torn tail cut from the last segment.
#[derive(Debug, Clone)]
pub struct Cut {
    /// The segment file.
    pub file: PathBuf,
    /// Offset of the first invalid record.
    pub offset: u64,
    /// Why the record there is invalid.
    pub reason: String,
    /// Non-zero bytes found after that offset in the rest of the file.
    pub nonzero_bytes: u64,
}

/// Why a log could not be recovered.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A segment header (not the last one's) is invalid.
    #[error("{path}: invalid segment header: {reason}")]
    Header { path: PathBuf, reason: &'static str },
    /// A record before the end of a sealed segment is invalid.
    #[error("{path} at offset {offset}: {reason}; the segment is followed by newer segments, so this is damage, not a torn tail (inspect with `strand-tools check`)")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    /// LSNs are not consecutive.
    #[error("{path} at offset {offset}: expected LSN {expected}, found {found}")]
    Gap { path: PathBuf, offset: u64, expected: u64, found: u64 },
    /// The log does not reach back to where the state recovery starts from ends.
    #[error("{path}: the log begins at LSN {first} but {need}; segments were removed and nothing else holds those records")]
    Missing { path: PathBuf, first: u64, need: String },
    /// The log ends before the checkpoint it should follow.
    #[error("{dir}: the log ends at LSN {last}, before checkpoint LSN {checkpoint}; records the checkpoint vouched for are missing")]
    Short { dir: PathBuf, last: u64, checkpoint: u64 },
    /// A view refused a record.
    #[error("{path} at offset {offset} (LSN {lsn}): {reason}")]
    Apply { path: PathBuf, offset: u64, lsn: u64, reason: String },
}

/// One record handed to the replay callback.
pub struct Replayed<'a> {
    /// The record header.
    pub header: &'a RecordHeader,
    /// Its payload.
    pub payload: &'a [u8],
    /// The segment file.
    pub path: &'a Path,
    /// Offset of the record in the file.
    pub offset: u64,
}

struct Segment {
    seq: u64,
    path: PathBuf,
    map: Option<memmap2::Mmap>,
    header: Result<SegmentHeader, &'static str>,
}

fn open_segment(seq: u64, path: PathBuf) -> Result<Segment, RecoveryError> {
    let io = |source| RecoveryError::Io { path: path.clone(), source };
    let file = File::open(&path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    // SAFETY: the segment files of a shard are only written by the running
    // server that owns this data directory, which is not running during recovery.
    let map = if len == 0 { None } else { Some(unsafe { memmap2::Mmap::map(&file) }.map_err(io)?) };
    let bytes: &[u8] = map.as_deref().unwrap_or(&[]);
    let header = SegmentHeader::decode(bytes);
    Ok(Segment { seq, path, map, header })
}

/// Replays every segment of `shard_dir` on top of `base`, calling `apply`
/// for each record after it in LSN order (PAD records are skipped).
pub fn recover(
    shard_dir: &Path,
    base: Base,
    mut apply: impl FnMut(Replayed<'_>) -> Result<(), String>,
) -> Result<Recovered, RecoveryError> {
    let list = segment::list_segments(shard_dir).map_err(|source| RecoveryError::Io { path: shard_dir.to_path_buf(), source })?;
    let mut segments = Vec::with_capacity(list.len());
    for (seq, path) in list {
        segments.push(open_segment(seq, path)?);
    }
    // A last segment whose header never became valid was being created when the
    // process died: it holds nothing acknowledged.
    while segments.last().is_some_and(|s| s.header.is_err()) {
        if let Some(s) = segments.pop() {
            tracing::warn!(file = %s.path.display(), "ignoring a last segment with no valid header (creation was interrupted)");
        }
    }
    let mut out = Recovered { next_lsn: 1, ..Recovered::default() };
    let count = segments.len();
    for i in 0..count {
        let seg = &segments[i];
        let header = match seg.header {
            Ok(h) => h,
            Err(reason) => return Err(RecoveryError::Header { path: seg.path.clone(), reason }),
        };
        if header.seq.get() != seg.seq {
            return Err(RecoveryError::Header { path: seg.path.clone(), reason: "header sequence number differs from the file name" });
        }
        if i == 0 {
            check_start(&seg.path, header.first_lsn.get(), base)?;
            out.next_lsn = header.first_lsn.get();
        } else if header.first_lsn.get() != out.next_lsn {
            return Err(RecoveryError::Gap { path: seg.path.clone(), offset: 0, expected: out.next_lsn, found: header.first_lsn.get() });
        }
        let next = segments.get(i + 1).and_then(|n| n.header.ok());
        if let (Base::Checkpoint(lsn), Some(next)) = (base, next) {
            if next.first_lsn.get() <= lsn + 1 {
                // Every record here is in the checkpoint: the segment is kept only as a
                // fallback should the checkpoint be damaged, so it is not read now.
                out.next_lsn = next.first_lsn.get();
                out.last_segment = Some((seg.seq, next.prev_end.get()));
                out.segments += 1;
                out.segments_found.push((seg.seq, header.first_lsn.get()));
                continue;
            }
        }
        let sealed_end = next.map(|next| next.prev_end.get());
        let bytes: &[u8] = seg.map.as_deref().unwrap_or(&[]);
        let skip = match base {
            Base::Checkpoint(lsn) => lsn,
            Base::Empty | Base::Any => 0,
        };
        let end = replay_segment(seg, &header, bytes, sealed_end, skip, &mut out, &mut apply)?;
        out.last_segment = Some((seg.seq, end));
        out.segments += 1;
        out.segments_found.push((seg.seq, header.first_lsn.get()));
    }
    if let Base::Checkpoint(lsn) = base {
        if count == 0 {
            out.next_lsn = lsn + 1;
        } else if out.next_lsn <= lsn {
            return Err(RecoveryError::Short { dir: shard_dir.to_path_buf(), last: out.next_lsn - 1, checkpoint: lsn });
        }
    }
    Ok(out)
}

/// Checks that the first segment's first LSN joins the state recovery starts from.
fn check_start(path: &Path, first: u64, base: Base) -> Result<(), RecoveryError> {
    let need = match base {
        Base::Empty if first != 1 => "there is no valid checkpoint, so replay must start at LSN 1".to_string(),
        Base::Checkpoint(lsn) if first > lsn + 1 => format!("the checkpoint holds records up to LSN {lsn} only"),
        _ => return Ok(()),
    };
    Err(RecoveryError::Missing { path: path.to_path_buf(), first, need })
}

fn replay_segment(
    seg: &Segment,
    header: &SegmentHeader,
    bytes: &[u8],
    sealed_end: Option<u64>,
    skip: u64,
    out: &mut Recovered,
    apply: &mut impl FnMut(Replayed<'_>) -> Result<(), String>,
) -> Result<u64, RecoveryError> {
    let seed = header.seed.get();
    let limit = match sealed_end {
        Some(end) if end as usize > bytes.len() => {
            return Err(RecoveryError::Corrupt {
                path: seg.path.clone(),
                offset: bytes.len() as u64,
                reason: format!("segment is {} bytes but its successor says its data ends at {end}", bytes.len()),
            })
        }
        Some(end) => end as usize,
        None => bytes.len(),
    };
    let mut walk = segment::Walk::new(bytes, seed, limit);
    loop {
        let (pos, rec, payload) = match walk.next_step() {
            Step::Record { offset, header, payload } => (offset, header, payload),
            Step::End { offset } => {
                out.bytes += (offset as u64).saturating_sub(DATA_START);
                return Ok(offset as u64);
            }
            Step::Invalid { offset: pos, why: invalid } => {
                if sealed_end.is_some() {
                    return Err(RecoveryError::Corrupt { path: seg.path.clone(), offset: pos as u64, reason: invalid.to_string() });
                }
                let nonzero = count_nonzero(&bytes[pos..]);
                if nonzero > 0 {
                    out.cut = Some(Cut { file: seg.path.clone(), offset: pos as u64, reason: invalid.to_string(), nonzero_bytes: nonzero });
                }
                out.bytes += (pos as u64).saturating_sub(DATA_START);
                return Ok(pos as u64);
            }
        };
        if rec.kind != kind::PAD {
            if rec.lsn() != out.next_lsn {
                if sealed_end.is_none() && rec.lsn() < out.next_lsn {
                    // A stale, validly-checksummed record can only appear past the end in the
                    // last segment if the seed repeated; treat it as the end.
                    out.cut =
                        Some(Cut { file: seg.path.clone(), offset: pos as u64, reason: "LSN goes backwards".into(), nonzero_bytes: 0 });
                    return Ok(pos as u64);
                }
                return Err(RecoveryError::Gap { path: seg.path.clone(), offset: pos as u64, expected: out.next_lsn, found: rec.lsn() });
            }
            if rec.lsn() > skip {
                apply(Replayed { header: &rec, payload, path: &seg.path, offset: pos as u64 }).map_err(|reason| RecoveryError::Apply {
                    path: seg.path.clone(),
                    offset: pos as u64,
                    lsn: rec.lsn(),
                    reason,
                })?;
                out.records += 1;
            }
            out.next_lsn += 1;
        }
    }
}

/// Non-zero bytes in `bytes`, a word at a time: the unused rest of a segment
/// is mostly zeros, and start-up should not crawl through it byte by byte.
fn count_nonzero(bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    let mut n = 0u64;
    for w in &mut words {
        let v = u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        if v != 0 {
            n += w.iter().filter(|b| **b != 0).count() as u64;
        }
    }
    n + words.remainder().iter().filter(|b| **b != 0).count() as u64
}
