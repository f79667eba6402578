//! Bit-level writer and reader under the chunk codecs.
//!
//! Bits are packed most-significant first into bytes. The reader checks
//! every bound: a short or damaged chunk is an error, never a panic.

use crate::codec::DecodeError;

/// Appends bit fields to a byte vector.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Bits used in the last byte (0..8; 0 means the last byte is full or there is none).
    used: u8,
}

impl BitWriter {
    /// An empty writer.
    pub fn new() -> BitWriter {
        BitWriter::default()
    }

    /// Continues writing after `bits` bits of `bytes` (as left by [`BitWriter::into_parts`]).
    pub fn from_parts(bytes: Vec<u8>, bits: u64) -> BitWriter {
        BitWriter { bytes, used: (bits % 8) as u8 }
    }

    /// Writes the low `n` bits of `v` (n ≤ 64), most significant first:
    /// the last byte's free bits, then whole bytes, then the rest.
    pub fn write(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 64);
        let mut left = n;
        if self.used != 0 && left > 0 {
            let free = 8 - self.used as u32;
            let take = free.min(left);
            let part = (v >> (left - take)) & ((1u64 << take) - 1);
            if let Some(last) = self.bytes.last_mut() {
                *last |= (part as u8) << (free - take);
            }
            self.used = ((self.used as u32 + take) % 8) as u8;
            left -= take;
        }
        if left >= 8 {
            let whole = (left / 8) as usize;
            self.bytes.extend_from_slice(&(v << (64 - left)).to_be_bytes()[..whole]);
            left %= 8;
        }
        if left > 0 {
            self.bytes.push((v << (8 - left)) as u8);
            self.used = left as u8;
        }
    }

    /// Writes one bit.
    pub fn bit(&mut self, b: bool) {
        self.write(b as u64, 1);
    }

    /// Bits written so far.
    pub fn bit_len(&self) -> u64 {
        if self.used == 0 {
            self.bytes.len() as u64 * 8
        } else {
            (self.bytes.len() as u64 - 1) * 8 + self.used as u64
        }
    }

    /// Bytes allocated.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// The bytes (the last one zero-padded).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes and the number of bits in them.
    pub fn into_parts(self) -> (Vec<u8>, u64) {
        let bits = self.bit_len();
        (self.bytes, bits)
    }
}

/// Reads bit fields written by [`BitWriter`].
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    bytes: &'a [u8],
    pos: u64,
}

impl<'a> BitReader<'a> {
    /// A reader from the first bit of `bytes`.
    pub fn new(bytes: &'a [u8]) -> BitReader<'a> {
        BitReader { bytes, pos: 0 }
    }

    /// Reads `n` bits (n ≤ 64), from a window of up to 16 bytes.
    pub fn read(&mut self, n: u32) -> Result<u64, DecodeError> {
        debug_assert!(n <= 64);
        let end = self.pos + n as u64;
        if end > self.bytes.len() as u64 * 8 {
            return Err(DecodeError::Truncated { at: (self.pos / 8) as usize, need: n.div_ceil(8) as usize });
        }
        if n == 0 {
            return Ok(0);
        }
        let at = (self.pos / 8) as usize;
        let mut window = [0u8; 16];
        let have = (self.bytes.len() - at).min(16);
        window[..have].copy_from_slice(&self.bytes[at..at + have]);
        let x = u128::from_be_bytes(window) << (self.pos % 8);
        self.pos = end;
        Ok((x >> (128 - n)) as u64)
    }

    /// Reads one bit.
    pub fn bit(&mut self) -> Result<bool, DecodeError> {
        // One byte, not `read`'s 16-byte window: Exp-Golomb prefixes and flags read bit by bit.
        let at = (self.pos / 8) as usize;
        let byte = *self.bytes.get(at).ok_or(DecodeError::Truncated { at, need: 1 })?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(b == 1)
    }

    /// Bits read so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Continues at bit `pos`.
    pub fn seek(&mut self, pos: u64) {
        self.pos = pos;
    }
}

/// Maps signed to unsigned so that small magnitudes stay small.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Bits needed to hold `v` (0 for 0).
pub fn width(v: u64) -> u32 {
    64 - v.leading_zeros()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let fields: Vec<(u64, u32)> = vec![(1, 1), (0, 3), (0x7f, 7), (u64::MAX, 64), (5, 3), (0, 0), (1 << 40, 41), (3, 2)];
        let mut w = BitWriter::new();
        for &(v, n) in &fields {
            w.write(v, n);
        }
        let total: u32 = fields.iter().map(|f| f.1).sum();
        assert_eq!(w.bit_len(), total as u64);
        let (bytes, _) = w.into_parts();
        let mut r = BitReader::new(&bytes);
        for &(v, n) in &fields {
            assert_eq!(r.read(n).unwrap(), v);
        }
        assert!(r.read(16).is_err());
    }

    /// Random widths at every alignment, with bits set above the width that
    /// must be ignored, against a bit-at-a-time reference.
    #[test]
    fn random_fields_match_a_bit_at_a_time_reference() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for _ in 0..200 {
            let fields: Vec<(u64, u32)> = (0..rng.gen_range(1..60)).map(|_| (rng.gen(), rng.gen_range(0..=64))).collect();
            let mut w = BitWriter::new();
            let mut reference: Vec<bool> = Vec::new();
            for &(v, n) in &fields {
                w.write(v, n);
                reference.extend((0..n).rev().map(|i| v >> i & 1 == 1));
            }
            assert_eq!(w.bit_len(), reference.len() as u64);
            let mut r = BitReader::new(w.bytes());
            assert!(reference.iter().all(|&b| r.bit().unwrap() == b));
            let mut r = BitReader::new(w.bytes());
            for &(v, n) in &fields {
                let low = if n == 64 { v } else { v & ((1u64 << n) - 1) };
                assert_eq!(r.read(n).unwrap(), low);
            }
        }
    }

    #[test]
    fn zigzag_round_trips() {
        for v in [0, 1, -1, 2, -2, i64::MAX, i64::MIN, 12345, -98765] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }
}
