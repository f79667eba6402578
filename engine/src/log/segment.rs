//! Segment files: naming, the header block, and the layout of a shard's directory.
//!
//! A shard's log lives in `DIR/shard-NNN/` as files `SSSSSSSSSSSSSSSS.seg`
//! (the segment's sequence number, 16 hex digits). Byte layout of a segment:
//!
//! ```text
//! offset 0      block 0: SegmentHeader (64 bytes), the rest of the block zero
//! offset 4096   records, each HEADER_LEN + payload bytes; a record header never
//!               starts in the last HEADER_LEN-1 bytes of a block (those are
//!               zero-filled), and flushes end with a PAD record or zeros up to
//!               the next 4096-byte boundary
//! ```
//!
//! The header of segment `n+1` records `prev_end`, the offset at which the
//! valid data of segment `n` ends, so recovery knows exactly how far every
//! segment but the last must validate. Only the last segment may end in a
//! torn tail.

use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

use super::record::{self, Invalid, RecordHeader, HEADER_LEN};
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The I/O block: O_DIRECT alignment and the unit of a flush.
pub const BLOCK: usize = 4096;

/// Where records begin in a segment.
pub const DATA_START: u64 = BLOCK as u64;

/// The magic bytes at the start of every segment.
pub const MAGIC: [u8; 8] = *b"STRNDLOG";

/// On-disk format version.
pub const VERSION: u32 = 1;

/// The smallest segment size accepted.
pub const MIN_SEGMENT_SIZE: u64 = 64 * 1024;

/// Block 0 of a segment.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct SegmentHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`VERSION`].
    pub version: U32,
    /// The shard that owns this segment.
    pub shard: U32,
    /// Sequence number; also the file name.
    pub seq: U64,
    /// Random seed for the checksums of records in this segment.
    pub seed: U64,
    /// LSN of the first record written into this segment.
    pub first_lsn: U64,
    /// Where the valid data of the previous segment ends (0: no previous segment).
    pub prev_end: U64,
    /// Size of the file, as created.
    pub size: U64,
    /// xxh3-64 of the bytes before this field.
    pub checksum: U64,
}

/// Size of [`SegmentHeader`].
pub const SEGMENT_HEADER_LEN: usize = std::mem::size_of::<SegmentHeader>();
const _: () = assert!(SEGMENT_HEADER_LEN == 64);

impl SegmentHeader {
    /// A header with its checksum filled in.
    pub fn new(shard: u32, seq: u64, seed: u64, first_lsn: u64, prev_end: u64, size: u64) -> Self {
        let mut h = SegmentHeader {
            magic: MAGIC,
            version: U32::new(VERSION),
            shard: U32::new(shard),
            seq: U64::new(seq),
            seed: U64::new(seed),
            first_lsn: U64::new(first_lsn),
            prev_end: U64::new(prev_end),
            size: U64::new(size),
            checksum: U64::new(0),
        };
        h.checksum = U64::new(xxh3_64(&h.as_bytes()[..SEGMENT_HEADER_LEN - 8]));
        h
    }

    /// Reads and verifies a header from the first bytes of a segment.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, &'static str> {
        let (h, _) = SegmentHeader::read_from_prefix(bytes).map_err(|_| "file shorter than a segment header")?;
        if h.magic != MAGIC {
            return Err("bad magic (not a strand segment, or never written)");
        }
        if xxh3_64(&h.as_bytes()[..SEGMENT_HEADER_LEN - 8]) != h.checksum.get() {
            return Err("segment header checksum mismatch");
        }
        if h.version.get() != VERSION {
            return Err("unsupported segment format version");
        }
        Ok(h)
    }

    /// The header as a full, zero-padded block ready to write.
    pub fn to_block(&self) -> [u8; BLOCK] {
        let mut block = [0u8; BLOCK];
        block[..SEGMENT_HEADER_LEN].copy_from_slice(self.as_bytes());
        block
    }
}

/// The directory of one shard's log.
pub fn shard_dir(root: &Path, shard: u32) -> PathBuf {
    root.join(format!("shard-{shard:03}"))
}

/// The path of segment `seq` in a shard directory.
pub fn segment_path(shard_dir: &Path, seq: u64) -> PathBuf {
    shard_dir.join(format!("{seq:016x}.seg"))
}

/// Parses a segment file name back into its sequence number.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".seg")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The segments of a shard directory, sorted by sequence number.
pub fn list_segments(shard_dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(shard_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_segment_name) {
            out.push((seq, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(out)
}

/// One step of a walk over a segment's records.
#[derive(Debug)]
pub enum Step<'a> {
    /// A valid record (PAD included) at `offset`.
    Record { offset: usize, header: RecordHeader, payload: &'a [u8] },
    /// The bytes at `offset` are not a valid record; the walk stops.
    Invalid { offset: usize, why: Invalid },
    /// The walk reached its limit.
    End { offset: usize },
}

/// Walks the records of a segment's bytes from [`DATA_START`] up to a limit,
/// applying the framing rules: a header never starts in the last
/// `HEADER_LEN - 1` bytes of a block. Recovery and `strand-tools` both walk
/// segments with it, so they always agree on where records are.
pub struct Walk<'a> {
    bytes: &'a [u8],
    seed: u64,
    pos: usize,
    limit: usize,
}

impl<'a> Walk<'a> {
    /// A walk over `bytes[..limit]` with the segment's checksum seed.
    pub fn new(bytes: &'a [u8], seed: u64, limit: usize) -> Walk<'a> {
        Walk { bytes, seed, pos: DATA_START as usize, limit: limit.min(bytes.len()) }
    }

    /// The next record, the first invalid bytes, or the end.
    pub fn next_step(&mut self) -> Step<'a> {
        loop {
            if self.pos >= self.limit {
                return Step::End { offset: self.limit };
            }
            let room = BLOCK - self.pos % BLOCK;
            if room < HEADER_LEN {
                self.pos += room;
                continue;
            }
            let offset = self.pos;
            return match record::decode(&self.bytes[offset..self.limit], self.seed) {
                Ok((header, payload)) => {
                    self.pos = offset + HEADER_LEN + payload.len();
                    Step::Record { offset, header, payload }
                }
                Err(why) => {
                    self.pos = self.limit;
                    Step::Invalid { offset, why }
                }
            };
        }
    }
}

/// Rounds up to the next block boundary.
pub fn align_up(v: u64) -> u64 {
    v.div_ceil(BLOCK as u64) * BLOCK as u64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_corruption() {
        let h = SegmentHeader::new(3, 17, 0xdead, 100, 8192, 1 << 20);
        let block = h.to_block();
        let back = SegmentHeader::decode(&block).unwrap();
        assert_eq!(back.seq.get(), 17);
        assert_eq!(back.prev_end.get(), 8192);
        for i in 0..SEGMENT_HEADER_LEN {
            let mut b = block;
            b[i] ^= 0x40;
            assert!(SegmentHeader::decode(&b).is_err(), "byte {i}");
        }
        assert!(SegmentHeader::decode(&[0u8; BLOCK]).is_err());
    }

    #[test]
    fn names() {
        let p = segment_path(Path::new("/x"), 0x2a);
        assert_eq!(p, Path::new("/x/000000000000002a.seg"));
        assert_eq!(parse_segment_name("000000000000002a.seg"), Some(42));
        assert_eq!(parse_segment_name("2a.seg"), None);
        assert_eq!(parse_segment_name("000000000000002a.tmp"), None);
    }
}
