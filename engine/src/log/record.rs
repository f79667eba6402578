//! Log records: the fixed header and its checksum.
//!
//! Every record in a segment is a 32-byte little-endian [`RecordHeader`]
//! followed by `len` payload bytes. The checksum is xxh3-64, seeded with the
//! segment's random seed, over header bytes 8..32 and the payload, so stale
//! bytes left from an earlier use of a file never validate. This module only
//! frames bytes; what a payload means belongs to the view that owns its
//! [`kind`](RecordHeader::kind).

use xxhash_rust::xxh3::Xxh3;
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Size of [`RecordHeader`] on disk.
pub const HEADER_LEN: usize = 32;

/// The largest payload one record may carry (a little under 4 GiB, bounded
/// further by the segment size).
pub const MAX_PAYLOAD: usize = u32::MAX as usize - HEADER_LEN;

/// Record kinds. Each belongs to one owner: the log itself (`PAD`) or a view.
/// Unknown kinds are an error on replay, never skipped.
pub mod kind {
    /// Padding written by the log to fill a block before a flush; no LSN.
    pub const PAD: u8 = 0x01;
    /// Keyspace view: first kind number.
    pub const KEYSPACE_FIRST: u8 = 0x10;
    /// Keyspace view: last kind number (inclusive).
    pub const KEYSPACE_LAST: u8 = 0x2f;
}

/// The on-disk header of one record.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RecordHeader {
    /// xxh3-64 (seeded) over bytes 8..32 of this header and the payload.
    pub checksum: U64,
    /// Payload length in bytes.
    pub len: U32,
    /// What the payload is; see [`kind`].
    pub kind: u8,
    /// Kind-specific flags.
    pub flags: u8,
    /// Zero; reserved for future use.
    pub reserved: U16,
    /// Log sequence number: consecutive within a shard, 0 for `PAD`.
    pub lsn: U64,
    /// Wall-clock time of the write in Unix milliseconds; replay uses it as "now".
    pub time_ms: U64,
}

const _: () = assert!(std::mem::size_of::<RecordHeader>() == HEADER_LEN);

impl RecordHeader {
    /// A header for a payload, checksum not yet computed.
    pub fn new(kind: u8, flags: u8, lsn: u64, time_ms: u64, len: usize) -> RecordHeader {
        debug_assert!(len <= MAX_PAYLOAD);
        RecordHeader {
            checksum: U64::new(0),
            len: U32::new(len as u32),
            kind,
            flags,
            reserved: U16::new(0),
            lsn: U64::new(lsn),
            time_ms: U64::new(time_ms),
        }
    }

    /// Payload length.
    pub fn payload_len(&self) -> usize {
        self.len.get() as usize
    }

    /// Log sequence number.
    pub fn lsn(&self) -> u64 {
        self.lsn.get()
    }

    /// Unix milliseconds of the write.
    pub fn time_ms(&self) -> u64 {
        self.time_ms.get()
    }
}

/// The checksum of a record: header bytes 8..32, then the payload.
pub fn checksum(seed: u64, header_tail: &[u8], payload: &[u8]) -> u64 {
    debug_assert_eq!(header_tail.len(), HEADER_LEN - 8);
    let mut h = Xxh3::with_seed(seed);
    h.update(header_tail);
    h.update(payload);
    h.digest()
}

/// Writes a complete record (header with checksum, then payload) into `out`,
/// which must be exactly `HEADER_LEN + payload.len()` bytes.
pub fn encode_into(out: &mut [u8], seed: u64, mut header: RecordHeader, payload: &[u8]) {
    debug_assert_eq!(out.len(), HEADER_LEN + payload.len());
    header.len = U32::new(payload.len() as u32);
    let (head, body) = out.split_at_mut(HEADER_LEN);
    body.copy_from_slice(payload);
    seal_in_place(head, body, seed, header);
}

/// Finishes a record whose payload is already in `body`: computes the
/// checksum and writes the header into `head`.
pub fn seal_in_place(head: &mut [u8], body: &[u8], seed: u64, mut header: RecordHeader) {
    header.len = U32::new(body.len() as u32);
    header.checksum = U64::new(0);
    let sum = checksum(seed, &header.as_bytes()[8..], body);
    header.checksum = U64::new(sum);
    head.copy_from_slice(header.as_bytes());
}

/// Why bytes at some position are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Fewer than [`HEADER_LEN`] bytes remain.
    ShortHeader,
    /// The header claims more payload than remains.
    ShortPayload { len: usize },
    /// The checksum does not match.
    Checksum,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::ShortHeader => write!(f, "truncated record header"),
            Invalid::ShortPayload { len } => write!(f, "record payload of {len} bytes runs past the end"),
            Invalid::Checksum => write!(f, "record checksum mismatch"),
        }
    }
}

/// Decodes and verifies the record at the start of `bytes`.
/// Returns the header and its payload.
pub fn decode(bytes: &[u8], seed: u64) -> Result<(RecordHeader, &[u8]), Invalid> {
    let (header, rest) = RecordHeader::read_from_prefix(bytes).map_err(|_| Invalid::ShortHeader)?;
    let len = header.payload_len();
    let payload = rest.get(..len).ok_or(Invalid::ShortPayload { len })?;
    let sum = checksum(seed, &bytes[8..HEADER_LEN], payload);
    if sum != header.checksum.get() {
        return Err(Invalid::Checksum);
    }
    Ok((header, payload))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(seed: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN + payload.len()];
        encode_into(&mut out, seed, RecordHeader::new(0x10, 0, 7, 1234, payload.len()), payload);
        out
    }

    #[test]
    fn round_trip() {
        let bytes = record(42, b"hello world");
        let (h, p) = decode(&bytes, 42).unwrap();
        assert_eq!(p, b"hello world");
        assert_eq!(h.lsn(), 7);
        assert_eq!(h.time_ms(), 1234);
        assert_eq!(h.kind, 0x10);
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = record(9, b"some payload bytes");
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert!(decode(&b, 9).is_err(), "flip of bit {i} not detected");
        }
    }

    #[test]
    fn another_seed_never_validates() {
        let bytes = record(1, b"x");
        assert_eq!(decode(&bytes, 2).unwrap_err(), Invalid::Checksum);
    }

    #[test]
    fn truncation_is_detected() {
        let bytes = record(3, b"0123456789");
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], 3).is_err(), "cut at {cut} accepted");
        }
    }

    #[test]
    fn zeros_are_not_a_record() {
        assert!(decode(&[0u8; 64], 0).is_err());
        assert!(decode(&[0u8; 64], 5).is_err());
    }
}
