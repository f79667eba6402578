//! Chunk codecs: how a run of samples (timestamp, value) becomes bytes.
//!
//! Two forms. The *open* form ([`OpenChunk`]) is Gorilla's: timestamps as
//! delta-of-delta in prefix-coded buckets, values XORed with the previous
//! value; samples are appended bit by bit as they arrive. The *sealed*
//! form ([`encode`]) is columnar and picks, per chunk, the smallest of:
//!
//! - `CONSTANT`: one value for every sample;
//! - `DECIMAL`: every value is an integer `m` scaled by `10^-k` (counters,
//!   fixed-decimal gauges), stored as deltas of `m`, deltas of deltas, or
//!   distances above the smallest `m` (values scattered around a level);
//! - `BITS_DOD`: the float bits taken as integers, deltas of deltas
//!   (clocks and other steadily moving values with many digits);
//! - `XOR`: Gorilla's XOR of the float bits (anything, NaN included).
//!
//! Timestamps of a sealed chunk are delta-of-delta too. Integers are
//! zigzagged and written by [`put_ints`] in blocks of 128, each in the
//! smallest of five codes: all zero (1 bit), bit-packed at the block's
//! widest width, sparse (a flag bit per value, the width only for non-zero
//! ones), Exp-Golomb, or runs (the zeros before each non-zero value, then
//! the value, each in Exp-Golomb code). Chunks written before these codes
//! (blocks of 64, four codes; no [`BLOCKS_V2`] in the tag) still read. Every
//! codec is lossless bit for bit: the decimal form is chosen only after
//! checking that every value reads back with the same bits, so NaN, ±0.0
//! and infinities fall back to XOR or CONSTANT.

use super::bits::{unzigzag, width, zigzag, BitReader, BitWriter};
use crate::codec::DecodeError;
use crate::thin::ThinBytes;

/// One sample: Unix milliseconds and value.
pub type Sample = (i64, f64);

/// Value codec tags, the first byte of a sealed chunk.
pub mod tag {
    /// Gorilla XOR of the float bits.
    pub const XOR: u8 = 0;
    /// One value repeated.
    pub const CONSTANT: u8 = 1;
    /// Scaled integers, deltas.
    pub const DECIMAL_DELTA: u8 = 2;
    /// Scaled integers, deltas of deltas.
    pub const DECIMAL_DOD: u8 = 3;
    /// The float bits as integers, deltas of deltas (clocks, uptimes: values
    /// with too many digits for DECIMAL that still move steadily).
    pub const BITS_DOD: u8 = 4;
    /// Scaled integers as their distance above the smallest (values that
    /// scatter around a level).
    pub const DECIMAL_BASE: u8 = 5;
}

/// Set in the tag byte of chunks whose integer blocks have the codes of
/// [`put_ints`]; chunks written before it have the older two-bit codes.
pub const BLOCKS_V2: u8 = 0x80;

/// The order of differences a DECIMAL codec stores.
fn decimal_order(tag: u8) -> u32 {
    match tag {
        tag::DECIMAL_DOD => 2,
        tag::DECIMAL_BASE => 0,
        _ => 1,
    }
}

/// Names of the value codecs, for TS.INFO DEBUG.
pub fn tag_name(tag: u8) -> &'static str {
    match tag {
        tag::XOR => "xor",
        tag::CONSTANT => "constant",
        tag::DECIMAL_DELTA => "decimal-delta",
        tag::DECIMAL_DOD => "decimal-dod",
        tag::BITS_DOD => "bits-dod",
        tag::DECIMAL_BASE => "decimal-base",
        _ => "unknown",
    }
}

/// Integers per block of [`put_ints`]; chunks before [`BLOCKS_V2`] had [`BLOCK_V1`].
const BLOCK: usize = 128;
const BLOCK_V1: usize = 64;
const MAX_SCALE: u32 = 15;

fn put_var(w: &mut BitWriter, v: u64) {
    let n = width(v);
    w.write(n as u64, 7);
    w.write(v, n);
}

fn get_var(r: &mut BitReader<'_>) -> Result<u64, DecodeError> {
    let n = r.read(7)? as u32;
    if n > 64 {
        return Err(DecodeError::Invalid("integer wider than 64 bits"));
    }
    r.read(n)
}

/// Bits of `v` in Exp-Golomb code of order `k` (None: too wide to code).
fn golomb_bits(v: u64, k: u32) -> Option<u64> {
    let x = v.checked_add(1u64 << k)?;
    let n = width(x) - 1;
    Some((2 * n + 1 - k) as u64)
}

fn put_golomb(w: &mut BitWriter, v: u64, k: u32) {
    let x = v + (1u64 << k);
    let n = width(x) - 1;
    w.write(0, n - k);
    w.write(x, n + 1);
}

fn get_golomb(r: &mut BitReader<'_>, k: u32) -> Result<u64, DecodeError> {
    let mut zeros = 0;
    while !r.bit()? {
        zeros += 1;
        if zeros + k > 63 {
            return Err(DecodeError::Invalid("Exp-Golomb code longer than 64 bits"));
        }
    }
    let n = zeros + k;
    let x = (1u64 << n) | r.read(n)?;
    Ok(x - (1u64 << k))
}

/// Bits of `vals` in Exp-Golomb code of order `k` (None: a value too wide to code).
fn golomb_total(vals: &[u64], k: u32) -> Option<u64> {
    let mut bits = 0;
    for &v in vals {
        bits += golomb_bits(v, k)?;
    }
    Some(bits)
}

/// The median width of `vals` (at most a block of them, not empty).
fn median_width(vals: &[u64]) -> u32 {
    let mut widths = [0u8; BLOCK];
    let widths = &mut widths[..vals.len()];
    widths.iter_mut().zip(vals).for_each(|(w, &v)| *w = width(v) as u8);
    let mid = widths.len() / 2;
    *widths.select_nth_unstable(mid).1 as u32
}

/// The cheapest Exp-Golomb order of `vals` among `ks`, with its size in bits.
fn cheapest_golomb(vals: &[u64], ks: std::ops::RangeInclusive<u32>) -> Option<(u32, u64)> {
    ks.filter_map(|k| golomb_total(vals, k).map(|b| (k, b))).min_by_key(|&(_, b)| b)
}

/// The best Exp-Golomb order for a block and its size in bits, among the
/// orders near the median width of its values.
fn best_golomb(block: &[u64], widest: u32) -> Option<(u32, u64)> {
    let median = median_width(block);
    cheapest_golomb(block, median.saturating_sub(3)..=(median + 1).min(widest).min(62))
}

/// How a block of [`put_ints`] is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// Every value zero.
    Zero,
    /// Each value in `width` bits.
    Packed(u32),
    /// A flag per value, `width` bits for each one that is not zero.
    Sparse(u32),
    /// Each value in Exp-Golomb code of this order.
    Golomb(u32),
    /// The runs of zeros before each non-zero value and the value less
    /// one, each in Exp-Golomb code of its own order; a last run ends the
    /// block (values that change every few samples, timestamps with a rare jitter).
    Runs(u32, u32),
}

/// The block's code and its size in bits: the smallest that can hold it.
fn choose_block(block: &[u64]) -> (Block, u64) {
    let wd = block.iter().map(|&v| width(v)).max().unwrap_or(0);
    if wd == 0 {
        return (Block::Zero, 1);
    }
    let nonzero = block.iter().filter(|&&v| v != 0).count() as u64;
    let mut best = (Block::Packed(wd), 3 + 7 + block.len() as u64 * wd as u64);
    let sparse = 3 + 7 + block.len() as u64 + nonzero * wd as u64;
    if sparse < best.1 {
        best = (Block::Sparse(wd), sparse);
    }
    if let Some((k, b)) = best_golomb(block, wd) {
        if 3 + 6 + b < best.1 {
            best = (Block::Golomb(k), 3 + 6 + b);
        }
    }
    if let Some((kg, kv, b)) = runs_bits(block) {
        if 3 + 5 + 6 + b < best.1 {
            best = (Block::Runs(kg, kv), 3 + 5 + 6 + b);
        }
    }
    best
}

/// A block split into its runs of zeros (the last one only if the block
/// ends in zeros) and its non-zero values less one.
struct Runs {
    gaps: [u64; BLOCK + 1],
    vals: [u64; BLOCK],
    gap_count: usize,
    val_count: usize,
}

impl Runs {
    fn of(block: &[u64]) -> Runs {
        let mut r = Runs { gaps: [0; BLOCK + 1], vals: [0; BLOCK], gap_count: 0, val_count: 0 };
        let mut gap = 0u64;
        for &v in block {
            if v == 0 {
                gap += 1;
            } else {
                r.gaps[r.gap_count] = gap;
                r.vals[r.val_count] = v - 1;
                (r.gap_count, r.val_count, gap) = (r.gap_count + 1, r.val_count + 1, 0);
            }
        }
        if gap > 0 {
            r.gaps[r.gap_count] = gap;
            r.gap_count += 1;
        }
        r
    }

    fn gaps(&self) -> &[u64] {
        &self.gaps[..self.gap_count]
    }

    fn vals(&self) -> &[u64] {
        &self.vals[..self.val_count]
    }
}

/// The best orders of a [`Block::Runs`] code of `block` and its bits (without the block header).
fn runs_bits(block: &[u64]) -> Option<(u32, u32, u64)> {
    let runs = Runs::of(block);
    if runs.vals().is_empty() {
        return None;
    }
    let (kg, bg) = cheapest_golomb(runs.gaps(), 0..=6)?;
    let median = median_width(runs.vals());
    let (kv, bv) = cheapest_golomb(runs.vals(), median.saturating_sub(3)..=(median + 1).min(62))?;
    Some((kg, kv, bg + bv))
}

/// Writes zigzagged integers in blocks of 128, each in whichever
/// [`Block`] code is smallest, after a prefix naming it: `0` zero, `100`
/// packed, `101` Exp-Golomb, `110` runs, `111` sparse.
pub fn put_ints(w: &mut BitWriter, vals: &[u64]) {
    for block in vals.chunks(BLOCK) {
        match choose_block(block).0 {
            Block::Zero => w.write(0, 1),
            Block::Packed(wd) => {
                w.write(0b100, 3);
                w.write(wd as u64, 7);
                block.iter().for_each(|&v| w.write(v, wd));
            }
            Block::Golomb(k) => {
                w.write(0b101, 3);
                w.write(k as u64, 6);
                block.iter().for_each(|&v| put_golomb(w, v, k));
            }
            Block::Runs(kg, kv) => {
                w.write(0b110, 3);
                w.write(kg as u64, 5);
                w.write(kv as u64, 6);
                let runs = Runs::of(block);
                for (i, &g) in runs.gaps().iter().enumerate() {
                    put_golomb(w, g, kg);
                    if let Some(&v) = runs.vals().get(i) {
                        put_golomb(w, v, kv);
                    }
                }
            }
            Block::Sparse(wd) => {
                w.write(0b111, 3);
                w.write(wd as u64, 7);
                for &v in block {
                    w.bit(v != 0);
                    if v != 0 {
                        w.write(v, wd);
                    }
                }
            }
        }
    }
}

fn read_width(r: &mut BitReader<'_>) -> Result<u32, DecodeError> {
    let wd = r.read(7)? as u32;
    if wd > 64 {
        return Err(DecodeError::Invalid("block width over 64 bits"));
    }
    Ok(wd)
}

fn read_order(r: &mut BitReader<'_>, bits: u32) -> Result<u32, DecodeError> {
    let k = r.read(bits)? as u32;
    if k > 62 {
        return Err(DecodeError::Invalid("Exp-Golomb order over 62"));
    }
    Ok(k)
}

/// Reads `n` integers written by [`put_ints`], or, for chunks written
/// before [`BLOCKS_V2`], by its older form (a two-bit code per block:
/// zero, packed, sparse, Exp-Golomb).
pub fn get_ints(r: &mut BitReader<'_>, n: usize, out: &mut Vec<u64>, v2: bool) -> Result<(), DecodeError> {
    let mut left = n;
    while left > 0 {
        let len = left.min(if v2 { BLOCK } else { BLOCK_V1 });
        let block = if v2 {
            if !r.bit()? {
                Block::Zero
            } else {
                match r.read(2)? {
                    0 => Block::Packed(read_width(r)?),
                    1 => Block::Golomb(read_order(r, 6)?),
                    2 => Block::Runs(read_order(r, 5)?, read_order(r, 6)?),
                    _ => Block::Sparse(read_width(r)?),
                }
            }
        } else {
            match r.read(2)? {
                0 => Block::Zero,
                1 => Block::Packed(read_width(r)?),
                2 => Block::Sparse(read_width(r)?),
                _ => Block::Golomb(read_order(r, 6)?),
            }
        };
        match block {
            Block::Zero => out.extend(std::iter::repeat_n(0, len)),
            Block::Packed(wd) => {
                for _ in 0..len {
                    out.push(r.read(wd)?);
                }
            }
            Block::Sparse(wd) => {
                for _ in 0..len {
                    out.push(if r.bit()? { r.read(wd)? } else { 0 });
                }
            }
            Block::Golomb(k) => {
                for _ in 0..len {
                    out.push(get_golomb(r, k)?);
                }
            }
            Block::Runs(kg, kv) => {
                let mut at = 0;
                while at < len {
                    let gap = get_golomb(r, kg)?;
                    if gap > (len - at) as u64 {
                        return Err(DecodeError::Invalid("run of zeros past the end of its block"));
                    }
                    out.extend(std::iter::repeat_n(0, gap as usize));
                    at += gap as usize;
                    if at < len {
                        let v = get_golomb(r, kv)?.checked_add(1).ok_or(DecodeError::Invalid("run value out of range"))?;
                        out.push(v);
                        at += 1;
                    }
                }
            }
        }
        left -= len;
    }
    Ok(())
}

/// Deltas (`order` 1) or deltas of deltas (`order` 2) of `v`, zigzagged,
/// after the first `order` values (which the caller writes itself).
fn differences(v: &[i64], order: u32) -> Vec<u64> {
    let mut d: Vec<i64> = v.windows(2).map(|p| p[1].wrapping_sub(p[0])).collect();
    if order == 2 {
        d = d.windows(2).map(|p| p[1].wrapping_sub(p[0])).collect();
    }
    d.into_iter().map(zigzag).collect()
}

fn undo_differences(first: &[i64], diffs: &[u64], order: u32, out: &mut Vec<i64>) {
    out.extend_from_slice(first);
    let (mut prev, mut delta) = (first.last().copied().unwrap_or(0), 0i64);
    if order == 2 && first.len() == 2 {
        delta = first[1].wrapping_sub(first[0]);
    }
    for &z in diffs {
        let d = unzigzag(z);
        if order == 2 {
            delta = delta.wrapping_add(d);
        } else {
            delta = d;
        }
        prev = prev.wrapping_add(delta);
        out.push(prev);
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Writes `v` as its first `order` values, then the greatest common divisor
/// of its differences of that order, then those differences divided by it
/// (gauges in pages or kilobytes change by multiples of 4096 or 1024).
/// Order 0 writes the smallest value, then each value's distance above
/// it, divided by their greatest common divisor (values that scatter
/// around a level, such as durations, where differences are twice as wide).
fn put_series(w: &mut BitWriter, v: &[i64], order: u32) {
    if order == 0 {
        let min = v.iter().copied().min().unwrap_or(0);
        put_var(w, zigzag(min));
        let above: Vec<u64> = v.iter().map(|&x| x.wrapping_sub(min) as u64).collect();
        let g = above.iter().fold(0, |g, &x| gcd(g, x));
        let g = if g == 0 || g > i64::MAX as u64 { 1 } else { g };
        put_var(w, g);
        put_ints(w, &above.iter().map(|&x| x / g).collect::<Vec<_>>());
        return;
    }
    let head = v.len().min(order as usize);
    v[..head].iter().enumerate().for_each(|(i, &x)| put_var(w, zigzag(if i == 0 { x } else { x.wrapping_sub(v[0]) })));
    if v.len() > head {
        let d = differences(v, order);
        let g = d.iter().fold(0, |g, &z| gcd(g, unzigzag(z).unsigned_abs()));
        let g = if g == 0 || g > i64::MAX as u64 { 1 } else { g };
        put_var(w, g);
        if g == 1 {
            put_ints(w, &d);
        } else {
            put_ints(w, &d.iter().map(|&z| zigzag(unzigzag(z) / g as i64)).collect::<Vec<_>>());
        }
    }
}

/// Reads `n` values written by [`put_series`] (`v2`: with [`BLOCKS_V2`] blocks).
fn get_series(r: &mut BitReader<'_>, n: usize, order: u32, out: &mut Vec<i64>, v2: bool) -> Result<(), DecodeError> {
    let divisor = |r: &mut BitReader<'_>| match get_var(r)? {
        g if g == 0 || g > i64::MAX as u64 => Err(DecodeError::Invalid("difference divisor out of range")),
        g => Ok(g),
    };
    if order == 0 {
        let min = unzigzag(get_var(r)?);
        let g = divisor(r)?;
        let mut above = Vec::with_capacity(n.min(1 << 16));
        get_ints(r, n, &mut above, v2)?;
        out.extend(above.into_iter().map(|x| min.wrapping_add(x.wrapping_mul(g) as i64)));
        return Ok(());
    }
    let head = n.min(order as usize);
    let mut first = Vec::with_capacity(head);
    for i in 0..head {
        let x = unzigzag(get_var(r)?);
        first.push(if i == 0 { x } else { x.wrapping_add(first[0]) });
    }
    let mut diffs = Vec::with_capacity((n - head).min(1 << 16));
    if n > head {
        let g = divisor(r)?;
        get_ints(r, n - head, &mut diffs, v2)?;
        if g > 1 {
            diffs.iter_mut().for_each(|z| *z = zigzag(unzigzag(*z).wrapping_mul(g as i64)));
        }
    }
    undo_differences(&first, &diffs, order, out);
    Ok(())
}

fn pow10(k: u32) -> f64 {
    10f64.powi(k as i32)
}

/// The scaled integer of `v` at scale `k`, if it reads back with the same bits.
fn scaled(v: f64, k: u32) -> Option<i64> {
    let p = pow10(k);
    let m = (v * p).round();
    if !m.is_finite() || m.abs() > (1u64 << 53) as f64 {
        return None;
    }
    let m = m as i64;
    (from_decimal(m, k).to_bits() == v.to_bits()).then_some(m)
}

/// The smallest scale at which every value is a scaled integer, with the integers.
pub fn decimal_form(values: &[f64]) -> Option<(u32, Vec<i64>)> {
    let mut k = 0;
    for &v in values {
        while scaled(v, k).is_none() {
            k += 1;
            if k > MAX_SCALE {
                return None;
            }
        }
    }
    let ints: Option<Vec<i64>> = values.iter().map(|&v| scaled(v, k)).collect();
    ints.map(|m| (k, m))
}

fn from_decimal(m: i64, k: u32) -> f64 {
    if k == 0 {
        m as f64
    } else {
        m as f64 / pow10(k)
    }
}

/// Gorilla's XOR state: the previous value's bits and the last window.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Xor {
    prev: u64,
    lead: u32,
    trail: u32,
    started: bool,
}

impl Xor {
    /// Appends a value.
    pub fn put(&mut self, w: &mut BitWriter, v: f64) {
        let bits = v.to_bits();
        if !self.started {
            w.write(bits, 64);
            *self = Xor { prev: bits, lead: u32::MAX, trail: 0, started: true };
            return;
        }
        let x = bits ^ self.prev;
        self.prev = bits;
        if x == 0 {
            w.bit(false);
            return;
        }
        w.bit(true);
        let lead = x.leading_zeros().min(31);
        let trail = x.trailing_zeros();
        if self.lead != u32::MAX && lead >= self.lead && trail >= self.trail {
            w.bit(false);
            w.write(x >> self.trail, 64 - self.lead - self.trail);
        } else {
            w.bit(true);
            let len = 64 - lead - trail;
            w.write(lead as u64, 5);
            w.write((len - 1) as u64, 6);
            w.write(x >> trail, len);
            (self.lead, self.trail) = (lead, trail);
        }
    }

    /// Reads a value.
    pub fn get(&mut self, r: &mut BitReader<'_>) -> Result<f64, DecodeError> {
        if !self.started {
            let bits = r.read(64)?;
            *self = Xor { prev: bits, lead: u32::MAX, trail: 0, started: true };
            return Ok(f64::from_bits(bits));
        }
        if r.bit()? {
            let x = if r.bit()? {
                let lead = r.read(5)? as u32;
                let len = r.read(6)? as u32 + 1;
                if lead + len > 64 {
                    return Err(DecodeError::Invalid("XOR window past 64 bits"));
                }
                (self.lead, self.trail) = (lead, 64 - lead - len);
                r.read(len)? << self.trail
            } else {
                if self.lead == u32::MAX {
                    return Err(DecodeError::Invalid("XOR window reused before one was set"));
                }
                r.read(64 - self.lead - self.trail)? << self.trail
            };
            self.prev ^= x;
        }
        Ok(f64::from_bits(self.prev))
    }
}

/// Gorilla's delta-of-delta timestamp state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dod {
    prev: i64,
    delta: i64,
    n: u64,
}

impl Dod {
    /// Appends a timestamp.
    pub fn put(&mut self, w: &mut BitWriter, ts: i64) {
        match self.n {
            0 => w.write(ts as u64, 64),
            1 => put_var(w, zigzag(ts.wrapping_sub(self.prev))),
            _ => {
                let dod = ts.wrapping_sub(self.prev).wrapping_sub(self.delta);
                match dod {
                    0 => w.bit(false),
                    -63..=64 => w.write((0b10 << 7) | (dod + 63) as u64, 9),
                    -255..=256 => w.write((0b110 << 9) | (dod + 255) as u64, 12),
                    -2047..=2048 => w.write((0b1110 << 12) | (dod + 2047) as u64, 16),
                    _ => {
                        w.write(0b1111, 4);
                        w.write(dod as u64, 64);
                    }
                }
            }
        }
        if self.n > 0 {
            self.delta = ts.wrapping_sub(self.prev);
        }
        self.prev = ts;
        self.n += 1;
    }

    /// Reads a timestamp.
    pub fn get(&mut self, r: &mut BitReader<'_>) -> Result<i64, DecodeError> {
        let ts = match self.n {
            0 => r.read(64)? as i64,
            1 => self.prev.wrapping_add(unzigzag(get_var(r)?)),
            _ => {
                let dod = if !r.bit()? {
                    0
                } else if !r.bit()? {
                    r.read(7)? as i64 - 63
                } else if !r.bit()? {
                    r.read(9)? as i64 - 255
                } else if !r.bit()? {
                    r.read(12)? as i64 - 2047
                } else {
                    r.read(64)? as i64
                };
                self.prev.wrapping_add(self.delta).wrapping_add(dod)
            }
        };
        if self.n > 0 {
            self.delta = ts.wrapping_sub(self.prev);
        }
        self.prev = ts;
        self.n += 1;
        Ok(ts)
    }
}

/// A chunk that takes appends: Gorilla's interleaved timestamps and values.
///
/// It keeps only the bits and the encoders' state that the bits do not
/// already say (the first timestamp is at the head of the bits; the
/// previous timestamp and value are the last sample), so an open chunk
/// costs 40 bytes besides its bits: every series has one. It also holds
/// its series' newest sample after a seal empties it. Its form (see
/// `decode_open`) lives only in memory: checkpoints write the sealed form.
#[derive(Debug, Clone)]
pub struct OpenChunk {
    /// The bits, in a roomy [`ThinBytes`]: its length is in its
    /// allocation, and a push rewrites it in place until it crosses the
    /// next multiple of [`crate::thin::ROOM`] bytes.
    buf: ThinBytes,
    /// Bits used in the last byte (0: all 8 or none).
    used: u8,
    /// Samples held (a series seals at [`super::OPEN_SAMPLES`]; at most
    /// [`OPEN_MAX`], and 64 KiB of bits).
    count: u16,
    /// The value code's state ([`OpenValues`]).
    scale: u8,
    lead: u8,
    trail: u8,
    /// The last timestamp, the delta before it, and the last value's bits.
    last: i64,
    delta: i64,
    prev_bits: u64,
}

/// [`OpenValues::lead`] before a window or width is set.
const NO_WINDOW: u8 = u8::MAX;
/// [`OpenValues::scale`] of a chunk whose first value has no decimal form.
const NO_SCALE: u8 = u8::MAX;

/// How an open chunk writes the values after its first. If the first has
/// a decimal form (`scale`: its digits after the point), a value with a
/// form at that scale is the difference of its scaled integer from the
/// previous value's: `0` and the difference zigzagged in the last width
/// (when it fits, at most 3 bits wider than needed), or `10`, a new width
/// (7 bits) and the difference; any other value is `11` and its XOR with
/// the previous value, trimmed. Without a scale, values are Gorilla's XOR.
#[derive(Debug, Clone, Copy)]
struct OpenValues {
    scale: u8,
    /// Decimal: the width ([`NO_WINDOW`]: none yet). XOR: the window's leading zeros.
    lead: u8,
    /// XOR: the window's trailing zeros.
    trail: u8,
    /// The previous value's bits.
    prev: u64,
}

impl OpenValues {
    fn put(&mut self, w: &mut BitWriter, bits: u64) {
        if self.scale == NO_SCALE {
            let lead = if self.lead == NO_WINDOW { u32::MAX } else { self.lead as u32 };
            let mut x = Xor { prev: self.prev, lead, trail: self.trail as u32, started: true };
            x.put(w, f64::from_bits(bits));
            self.lead = if x.lead == u32::MAX { NO_WINDOW } else { x.lead as u8 };
            self.trail = x.trail as u8;
        } else {
            let k = self.scale as u32;
            let base = scaled(f64::from_bits(self.prev), k).unwrap_or(0);
            match scaled(f64::from_bits(bits), k) {
                Some(m) => {
                    let z = zigzag(m.wrapping_sub(base));
                    let wd = width(z);
                    if self.lead != NO_WINDOW && (wd..=wd + 3).contains(&(self.lead as u32)) {
                        w.bit(false);
                        w.write(z, self.lead as u32);
                    } else {
                        w.write(0b10, 2);
                        w.write(wd as u64, 7);
                        w.write(z, wd);
                        self.lead = wd as u8;
                    }
                }
                None => {
                    w.write(0b11, 2);
                    put_bits_trimmed(w, bits ^ self.prev);
                }
            }
        }
        self.prev = bits;
    }

    fn get(&mut self, r: &mut BitReader<'_>) -> Result<u64, DecodeError> {
        let bits = if self.scale == NO_SCALE {
            let lead = if self.lead == NO_WINDOW { u32::MAX } else { self.lead as u32 };
            let mut x = Xor { prev: self.prev, lead, trail: self.trail as u32, started: true };
            let v = x.get(r)?.to_bits();
            self.lead = if x.lead == u32::MAX { NO_WINDOW } else { x.lead as u8 };
            self.trail = x.trail as u8;
            v
        } else if !r.bit()? {
            if self.lead == NO_WINDOW {
                return Err(DecodeError::Invalid("decimal width reused before one was set"));
            }
            let z = r.read(self.lead as u32)?;
            self.after_difference(z)
        } else if !r.bit()? {
            let wd = r.read(7)? as u32;
            if wd > 64 {
                return Err(DecodeError::Invalid("decimal difference wider than 64 bits"));
            }
            self.lead = wd as u8;
            let z = r.read(wd)?;
            self.after_difference(z)
        } else {
            self.prev ^ get_bits_trimmed(r)?
        };
        self.prev = bits;
        Ok(bits)
    }

    /// The bits of the value whose scaled integer is the previous one's plus zigzagged `z`.
    fn after_difference(&self, z: u64) -> u64 {
        let k = self.scale as u32;
        let base = scaled(f64::from_bits(self.prev), k).unwrap_or(0);
        from_decimal(base.wrapping_add(unzigzag(z)), k).to_bits()
    }
}

thread_local! {
    /// The vector [`OpenChunk::push`] writes a sample's bits into before
    /// splicing them onto its chunk: one per thread, so a push allocates
    /// only when its chunk's room grows.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

impl Default for OpenChunk {
    fn default() -> OpenChunk {
        OpenChunk { buf: ThinBytes::EMPTY, used: 0, count: 0, scale: NO_SCALE, lead: NO_WINDOW, trail: 0, last: 0, delta: 0, prev_bits: 0 }
    }
}

// Every series has an open chunk; see its doc.
const _: () = assert!(std::mem::size_of::<OpenChunk>() <= 40);

/// The most samples an open chunk holds: at most 148 bits a sample (and
/// 153 for the first), so their bits stay within 64 KiB. A series seals
/// far sooner; files that claim more are refused.
pub const OPEN_MAX: usize = 3000;

/// Equal when they hold the same bits and state, whatever room each has.
impl PartialEq for OpenChunk {
    fn eq(&self, o: &OpenChunk) -> bool {
        self.bytes() == o.bytes()
            && (self.used, self.count, self.scale, self.lead, self.trail) == (o.used, o.count, o.scale, o.lead, o.trail)
            && (self.last, self.delta, self.prev_bits) == (o.last, o.delta, o.prev_bits)
    }
}

impl OpenChunk {
    /// Appends a sample; its timestamp must be after the last one's.
    pub fn push(&mut self, ts: i64, v: f64) {
        debug_assert!(self.count == 0 || ts > self.last, "open chunk appends out of order");
        assert!((self.count as usize) < OPEN_MAX, "an open chunk holds at most {OPEN_MAX} samples");
        let v = v.to_bits();
        if self.count >= 2 && ts.wrapping_sub(self.last) == self.delta && v == self.prev_bits {
            // The same step and value again, the common case of a scraped
            // series: one zero bit. The last byte's free bits are zero
            // already (see `BitWriter::bytes`), so only a full last byte
            // needs another.
            if self.used == 0 {
                self.buf.splice_tail(self.buf.len(), &[0]);
            }
            self.used = (self.used + 1) % 8;
            self.last = ts;
            self.count += 1;
            return;
        }
        // Only the last byte, when partly filled, is rewritten: the bits
        // go into the scratch from there and are spliced back on.
        let keep = self.buf.len() - (self.used != 0) as usize;
        let mut room = SCRATCH.take();
        room.clear();
        room.extend_from_slice(&self.buf[keep..]);
        let mut w = BitWriter::from_parts(room, self.used as u64);
        if self.count == 0 {
            put_var(&mut w, zigzag(ts));
            put_bits_trimmed(&mut w, v);
            self.scale = (0..=MAX_SCALE).find(|&k| scaled(f64::from_bits(v), k).is_some()).map_or(NO_SCALE, |k| k as u8);
            w.bit(self.scale != NO_SCALE);
            if self.scale != NO_SCALE {
                w.write(self.scale as u64, 4);
            }
            (self.delta, self.lead, self.trail) = (0, NO_WINDOW, 0);
        } else {
            if self.count >= 2 {
                w.bit(true);
            }
            let mut dod = Dod { prev: self.last, delta: self.delta, n: self.count as u64 };
            dod.put(&mut w, ts);
            self.delta = dod.delta;
            let mut values = OpenValues { scale: self.scale, lead: self.lead, trail: self.trail, prev: self.prev_bits };
            values.put(&mut w, v);
            (self.lead, self.trail) = (values.lead, values.trail);
        }
        let (bytes, bits) = w.into_parts();
        debug_assert!(keep + bytes.len() < 1 << 16, "{OPEN_MAX} samples take less than 64 KiB");
        self.used = (bits % 8) as u8;
        self.buf.splice_tail(keep, &bytes);
        SCRATCH.set(bytes);
        self.prev_bits = v;
        self.last = ts;
        self.count += 1;
    }

    /// An empty chunk that remembers `last` as its series' newest sample
    /// (what [`OpenChunk::last_sample`] answers until the next push).
    pub fn after(last: Option<Sample>) -> OpenChunk {
        let mut c = OpenChunk::default();
        if let Some((t, v)) = last {
            c.last = t;
            c.prev_bits = v.to_bits();
        }
        c
    }

    /// The newest sample pushed, or the one given to [`OpenChunk::after`]
    /// (meaningless for a chunk that never had either).
    pub fn last_sample(&self) -> Sample {
        (self.last, f64::from_bits(self.prev_bits))
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// First and last timestamps (meaningless when empty).
    pub fn span(&self) -> (i64, i64) {
        let first = get_var(&mut BitReader::new(self.bytes())).map_or(self.last, unzigzag);
        (first, self.last)
    }

    /// The encoded bits.
    fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes of encoded data.
    pub fn data_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Heap bytes (room included).
    pub fn heap_bytes(&self) -> usize {
        self.buf.heap_bytes()
    }

    /// Appends every sample to `out`.
    pub fn decode_into(&self, out: &mut Vec<Sample>) -> Result<(), DecodeError> {
        decode_open(self.bytes(), self.count as u32, out)
    }

    /// Rebuilds an open chunk from the Gorilla form that checkpoints held
    /// before they wrote open chunks in the sealed form (a sample count and
    /// the bits of [`Dod`] and [`Xor`]), checking it decodes.
    pub fn from_gorilla(count: u32, bytes: &[u8]) -> Result<OpenChunk, DecodeError> {
        if count as usize > OPEN_MAX {
            return Err(DecodeError::Invalid("open chunk over 3000 samples"));
        }
        let mut samples = Vec::with_capacity((count as usize).min(bytes.len() * 8));
        let mut r = BitReader::new(bytes);
        let (mut dod, mut xor) = (Dod::default(), Xor::default());
        for _ in 0..count {
            let t = dod.get(&mut r)?;
            samples.push((t, xor.get(&mut r)?));
        }
        if samples.windows(2).any(|p| p[0].0 >= p[1].0) {
            return Err(DecodeError::Invalid("open chunk samples out of order"));
        }
        Ok(OpenChunk::from_samples(&samples))
    }

    /// An open chunk holding `samples` (sorted by timestamp, no repeats).
    pub fn from_samples(samples: &[Sample]) -> OpenChunk {
        let mut c = OpenChunk::after(None);
        samples.iter().for_each(|&(t, v)| c.push(t, v));
        c
    }
}

/// Reads an open chunk's samples: the first as a zigzag varint time, its
/// trimmed bits and its decimal scale (`1` and 4 bits, or `0` for none);
/// after it, `0` for a sample one delta later with the same value (from
/// the third on), else the [`Dod`] and [`OpenValues`] codes (with a `1`
/// before them from the third on).
fn decode_open(bytes: &[u8], count: u32, out: &mut Vec<Sample>) -> Result<(), DecodeError> {
    if count == 0 {
        return Ok(());
    }
    let mut r = BitReader::new(bytes);
    let ts = unzigzag(get_var(&mut r)?);
    let bits = get_bits_trimmed(&mut r)?;
    let scale = if r.bit()? { r.read(4)? as u8 } else { NO_SCALE };
    out.push((ts, f64::from_bits(bits)));
    let mut dod = Dod { prev: ts, delta: 0, n: 1 };
    let mut values = OpenValues { scale, lead: NO_WINDOW, trail: 0, prev: bits };
    for i in 1..count {
        if i >= 2 && !r.bit()? {
            dod.prev = dod.prev.wrapping_add(dod.delta);
            dod.n += 1;
            out.push((dod.prev, f64::from_bits(values.prev)));
        } else {
            let t = dod.get(&mut r)?;
            out.push((t, f64::from_bits(values.get(&mut r)?)));
        }
    }
    Ok(())
}

/// Writes 64 bits without their leading and trailing zeros: `0` for none
/// set, else `1`, the leading zeros (6 bits), the length less one (6 bits)
/// and the bits between (a constant 0 takes 1 bit, 1.0 takes 23).
fn put_bits_trimmed(w: &mut BitWriter, x: u64) {
    if x == 0 {
        w.bit(false);
        return;
    }
    let (lead, trail) = (x.leading_zeros(), x.trailing_zeros());
    let len = 64 - lead - trail;
    w.bit(true);
    w.write(lead as u64, 6);
    w.write((len - 1) as u64, 6);
    w.write(x >> trail, len);
}

fn get_bits_trimmed(r: &mut BitReader<'_>) -> Result<u64, DecodeError> {
    if !r.bit()? {
        return Ok(0);
    }
    let lead = r.read(6)? as u32;
    let len = r.read(6)? as u32 + 1;
    if lead + len > 64 {
        return Err(DecodeError::Invalid("trimmed value wider than 64 bits"));
    }
    Ok(r.read(len)? << (64 - lead - len))
}

/// Encodes samples (sorted by timestamp, at least one) with the value codec `tag`;
/// None if that codec cannot hold these values exactly.
pub fn encode_with(samples: &[Sample], tag: u8) -> Option<Vec<u8>> {
    let mut w = BitWriter::new();
    let ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
    put_series(&mut w, &ts, 2);
    let values: Vec<f64> = samples.iter().map(|s| s.1).collect();
    let decimal = matches!(tag, tag::DECIMAL_DELTA | tag::DECIMAL_DOD | tag::DECIMAL_BASE).then(|| decimal_form(&values)).flatten();
    put_values(w, &values, tag, decimal.as_ref())
}

/// Finishes a chunk whose timestamps are in `w`: the values with codec
/// `tag` (`decimal`: their decimal form, for the DECIMAL codecs), then the header.
fn put_values(mut w: BitWriter, values: &[f64], tag: u8, decimal: Option<&(u32, Vec<i64>)>) -> Option<Vec<u8>> {
    match tag {
        tag::CONSTANT => {
            let first = values.first()?.to_bits();
            if values.iter().any(|v| v.to_bits() != first) {
                return None;
            }
            put_bits_trimmed(&mut w, first);
        }
        tag::DECIMAL_DELTA | tag::DECIMAL_DOD | tag::DECIMAL_BASE => {
            let (k, m) = decimal?;
            w.write(*k as u64, 4);
            put_series(&mut w, m, decimal_order(tag));
        }
        tag::XOR => {
            let mut x = Xor::default();
            values.iter().for_each(|&v| x.put(&mut w, v));
        }
        tag::BITS_DOD => {
            let bits: Vec<i64> = values.iter().map(|v| v.to_bits() as i64).collect();
            put_series(&mut w, &bits, 2);
        }
        _ => return None,
    }
    let mut out = Vec::with_capacity(w.bytes().len() + 6);
    out.push(tag | BLOCKS_V2);
    put_u32_var(&mut out, values.len() as u32);
    out.extend_from_slice(w.bytes());
    Some(out)
}

/// Encodes samples (sorted by timestamp, at least one) with whichever codec
/// is smallest. The timestamps and the decimal form are worked out once.
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    let mut head = BitWriter::new();
    let ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
    put_series(&mut head, &ts, 2);
    let values: Vec<f64> = samples.iter().map(|s| s.1).collect();
    if let Some(c) = put_values(head.clone(), &values, tag::CONSTANT, None) {
        return c;
    }
    let decimal = decimal_form(&values);
    let mut best = put_values(head.clone(), &values, tag::XOR, None).unwrap_or_default();
    for t in [tag::DECIMAL_DELTA, tag::DECIMAL_DOD, tag::DECIMAL_BASE, tag::BITS_DOD] {
        if t != tag::BITS_DOD && decimal.is_none() {
            continue;
        }
        if let Some(b) = put_values(head.clone(), &values, t, decimal.as_ref()) {
            if b.len() < best.len() {
                best = b;
            }
        }
    }
    best
}

fn put_u32_var(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_u32_var(bytes: &[u8]) -> Result<(u32, usize), DecodeError> {
    let mut v: u32 = 0;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        v |= ((b & 0x7f) as u32) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(DecodeError::Invalid("sample count is not a varint"))
}

/// The codec tag (without [`BLOCKS_V2`]) and sample count of a sealed chunk.
pub fn header(bytes: &[u8]) -> Result<(u8, u32), DecodeError> {
    let (&t, rest) = bytes.split_first().ok_or(DecodeError::Truncated { at: 0, need: 1 })?;
    Ok((t & !BLOCKS_V2, get_u32_var(rest)?.0))
}

/// The time of the first sample of a sealed chunk: the head of its
/// timestamps, which come first after the header in every form.
pub fn first_time(bytes: &[u8]) -> Result<i64, DecodeError> {
    let used = 1 + get_u32_var(bytes.get(1..).unwrap_or_default())?.1;
    Ok(unzigzag(get_var(&mut BitReader::new(&bytes[used..]))?))
}

/// Appends the samples of a sealed chunk to `out`.
pub fn decode(bytes: &[u8], out: &mut Vec<Sample>) -> Result<(), DecodeError> {
    let (&t, rest) = bytes.split_first().ok_or(DecodeError::Truncated { at: 0, need: 1 })?;
    let (v2, t) = (t & BLOCKS_V2 != 0, t & !BLOCKS_V2);
    let (n, used) = get_u32_var(rest)?;
    let n = n as usize;
    if n == 0 {
        return Err(DecodeError::Invalid("sealed chunk without samples"));
    }
    let mut r = BitReader::new(&rest[used..]);
    let mut ts = Vec::with_capacity(n.min(1 << 20));
    get_series(&mut r, n, 2, &mut ts, v2)?;
    out.reserve(n.min(1 << 16));
    match t {
        tag::CONSTANT => {
            let v = f64::from_bits(if v2 { get_bits_trimmed(&mut r)? } else { r.read(64)? });
            out.extend(ts.into_iter().map(|t| (t, v)));
        }
        tag::DECIMAL_DELTA | tag::DECIMAL_DOD | tag::DECIMAL_BASE => {
            let k = r.read(4)? as u32;
            if k > MAX_SCALE {
                return Err(DecodeError::Invalid("decimal scale over 15"));
            }
            let mut m = Vec::with_capacity(n.min(1 << 16));
            get_series(&mut r, n, decimal_order(t), &mut m, v2)?;
            out.extend(ts.into_iter().zip(m).map(|(t, m)| (t, from_decimal(m, k))));
        }
        tag::XOR => {
            let mut x = Xor::default();
            for t in ts {
                out.push((t, x.get(&mut r)?));
            }
        }
        tag::BITS_DOD => {
            let mut bits = Vec::with_capacity(n.min(1 << 16));
            get_series(&mut r, n, 2, &mut bits, v2)?;
            out.extend(ts.into_iter().zip(bits).map(|(t, b)| (t, f64::from_bits(b as u64))));
        }
        _ => return Err(DecodeError::Invalid("unknown chunk codec")),
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn same(a: &[Sample], b: &[Sample]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
    }

    /// Every codec that accepts the samples, the best one and the open form read them back exactly.
    fn round_trips(samples: &[Sample]) {
        for t in [tag::XOR, tag::CONSTANT, tag::DECIMAL_DELTA, tag::DECIMAL_DOD, tag::DECIMAL_BASE, tag::BITS_DOD] {
            if let Some(b) = encode_with(samples, t) {
                let mut out = Vec::new();
                decode(&b, &mut out).unwrap();
                assert!(same(samples, &out), "codec {} lost samples", tag_name(t));
                assert_eq!(header(&b).unwrap(), (t, samples.len() as u32));
                for cut in [0, 1, b.len() / 3, b.len() / 2, b.len().saturating_sub(2), b.len().saturating_sub(1)] {
                    let mut out = Vec::new();
                    // A cut chunk is an error, or (cut in padding) fewer bytes but still exact.
                    if decode(&b[..cut], &mut out).is_ok() {
                        assert!(same(samples, &out));
                    }
                }
            }
        }
        let best = encode(samples);
        let mut out = Vec::new();
        decode(&best, &mut out).unwrap();
        assert!(same(samples, &out));
        let open = OpenChunk::from_samples(samples);
        let mut out = Vec::new();
        open.decode_into(&mut out).unwrap();
        assert!(same(samples, &out));
        assert_eq!(OpenChunk::from_samples(&out), open);
        let mut again = OpenChunk::after(None);
        samples.iter().for_each(|&(t, v)| again.push(t, v));
        assert_eq!(again.span(), (samples[0].0, samples[samples.len() - 1].0));
    }

    fn timestamps(rng: &mut StdRng, n: usize, kind: u32) -> Vec<i64> {
        let mut t: i64 = match kind % 3 {
            0 => rng.gen_range(0..2_000_000_000_000),
            1 => rng.gen(),
            _ => i64::MIN + rng.gen_range(0..10),
        };
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(t);
            let step = match kind {
                0 => 1000,
                1 => rng.gen_range(1..3000),
                2 => 1 + rng.gen_range(0..4) * 1_000_000_000_000,
                _ => {
                    if rng.gen_bool(0.02) {
                        rng.gen_range(1..i64::MAX / 4096)
                    } else {
                        1000 + rng.gen_range(-3..4)
                    }
                }
            };
            t = t.wrapping_add(step);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    const SPECIAL: [f64; 8] = [f64::NAN, -f64::NAN, 0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::MIN_POSITIVE, f64::MAX];

    fn value(rng: &mut StdRng, kind: u32, i: usize, prev: f64) -> f64 {
        match kind {
            0 => rng.gen::<f64>() * 1e6 - 5e5,
            1 => 42.5,
            2 => (i as f64) * 3.0 + if rng.gen_bool(0.01) { -1e4 } else { 0.0 },
            3 => (rng.gen_range(0..100_000) as f64) / 100.0,
            4 => SPECIAL[rng.gen_range(0..SPECIAL.len())],
            5 => f64::from_bits(rng.gen()),
            6 => {
                if rng.gen_bool(0.05) {
                    rng.gen_range(-1e300..1e300)
                } else {
                    prev
                }
            }
            7 => {
                if rng.gen_bool(0.001) {
                    0.0
                } else {
                    prev + rng.gen_range(0..50) as f64
                }
            }
            _ => (rng.gen_range(-1_000_000i64..1_000_000) as f64) / 1e3 + if rng.gen_bool(0.01) { f64::NAN } else { 0.0 },
        }
    }

    #[test]
    fn random_and_adversarial_series_round_trip() {
        let mut rng = StdRng::seed_from_u64(0x5eed_7135);
        for case in 0..600 {
            let n = match case % 4 {
                0 => 1,
                1 => rng.gen_range(2..5),
                2 => rng.gen_range(5..200),
                _ => rng.gen_range(200..3000),
            };
            let kind = rng.gen_range(0..4);
            let ts = timestamps(&mut rng, n, kind);
            let kind = rng.gen_range(0..9);
            let mut prev = 0.0;
            let samples: Vec<Sample> = ts
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    prev = value(&mut rng, kind, i, prev);
                    (t, prev)
                })
                .collect();
            round_trips(&samples);
        }
    }

    #[test]
    fn picks_the_compact_codecs() {
        let constant: Vec<Sample> = (0..1000).map(|i| (1_700_000_000_000 + i * 1000, 7.25)).collect();
        let b = encode(&constant);
        assert_ne!(header(&b).unwrap().0, tag::XOR);
        assert!(b.len() < 40, "constant chunk of 1000 samples took {} bytes", b.len());
        let counter: Vec<Sample> = (0..1000).map(|i| (1_700_000_000_000 + i * 1000, (i * 17 + i % 3) as f64)).collect();
        assert_eq!(header(&encode(&counter)).unwrap().0 & 2, 2, "an integer counter is stored as decimal");
        let cents: Vec<Sample> = (0..1000).map(|i| (i * 1000, (110 + i % 7) as f64 / 100.0)).collect();
        let b = encode(&cents);
        assert_eq!(header(&b).unwrap().0 & 2, 2, "a fixed-decimal gauge is stored as decimal");
        assert!(b.len() < 1000, "fixed-decimal series took {} bytes", b.len());
        // Negative zero and NaN are not scaled integers.
        assert!(decimal_form(&[1.0, -0.0]).is_none());
        assert!(decimal_form(&[1.0, f64::NAN]).is_none());
        assert_eq!(decimal_form(&[0.1, 2.25, -3.0]).unwrap(), (2, vec![10, 225, -300]));
    }

    #[test]
    fn damaged_chunks_are_errors_not_panics() {
        let mut rng = StdRng::seed_from_u64(7);
        let samples: Vec<Sample> = (0..300).map(|i| (i * 1000, rng.gen_range(0..1000) as f64 / 10.0)).collect();
        let good = encode(&samples);
        for _ in 0..2000 {
            let mut b = good.clone();
            let i = rng.gen_range(0..b.len());
            b[i] ^= 1 << rng.gen_range(0..8);
            let _ = decode(&b, &mut Vec::new());
        }
        assert!(decode(&[], &mut Vec::new()).is_err());
        assert!(decode(&[9, 1, 0], &mut Vec::new()).is_err());
    }

    /// Chunks as the codec wrote them before [`BLOCKS_V2`] (two-bit block
    /// codes, 64 per block), as checkpoints from then hold them: they read back.
    #[test]
    fn chunks_written_before_blocks_v2_still_decode() {
        let samples = |kind: u32| -> Vec<Sample> {
            (0..300i64)
                .map(|i| {
                    let t = 1_795_903_076_378 + i * 1000 + if i % 97 == 5 { 125 } else { 0 };
                    let v = match kind {
                        0 => ((i / 5) * 4096) as f64,
                        1 => (i * i % 1000) as f64 / 100.0,
                        2 => f64::from_bits(0x4000_0000_0000_0000 ^ ((i as u64 * 2654435761) << 20)),
                        _ => 1e9 + (i * 37) as f64,
                    };
                    (t, v)
                })
                .collect()
        };
        let written = [
            "02ac0255a2242a381a0bfa01fec086f800000000000000810000000006f80000004081be00000000000000810000000001be0001b00081060c183060c183060c183040b060c183060c183060c1830813060c183060c183060c1831023060c183060c183060c1832043060c183060c180",
            "03ac0255a2242a381a0bfa01fec086f800000000000000810000000006f80000004081be00000000000000810000000001be1000502b0b6db6db6db6db6db6db6db601f480fbb6db6db6c03e901f76db6db00fa407ddb6db601f480fbb0b6db00fa407ddb6d807d203eedb601f480fbb6d807d203eedb00fa407ddb601f480fbb6c03e901f76d807d203eedb00fa407ddb00fa407ddb00fa407ddb00fa407dd914017cbf5004017cbf5005f2fd401005f2fd4017cbf5004017cbf5005f2fd4017cbf5004017cbf5005f2fd4017cbf5005f2fd4017cbf5005f2fd4017cbf57cbf5005f2fd4017cbf5005f2fd5f2fd4017ca8afabe5fa802f97eaf97ea00be5fabe5fa802f97eaf97ea00be5fabe5fabe5fa802f97eaf97eaf97eaf97ea00be5fabe5fabe5fabe5fabe5fabe5fabe5fabe5fabe5fabe5fabe5fabe5fabe5fabe5fabe5457d5f2fd5f2fd5f2fd5f2fd5f2fd5f2fd5f2fd5f2805f57cbf57cbf57cbf57ca017d5f2fd5f2fd5f2805f57cbf57ca017d5f2fd5f28",
            "04ac0255a2242a381a0bfa01fec086f800000000000000810000000006f80000004081be00000000000000810000000001be4080000000000000006b3c6ef3620000003000",
            "03ac0255a2242a381a0bfa01fec086f800000000000000810000000006f80000004081be00000000000000810000000001be01fee6b28001e5018000",
        ];
        let unhex = |h: &str| -> Vec<u8> { (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect() };
        for (kind, hex) in written.iter().enumerate() {
            let bytes = unhex(hex);
            assert_eq!(bytes[0] & BLOCKS_V2, 0);
            let mut out = Vec::new();
            decode(&bytes, &mut out).unwrap();
            assert!(same(&samples(kind as u32), &out), "old chunk {kind} reads back");
            assert!(encode(&out).len() <= bytes.len(), "the new codes are no larger for chunk {kind}");
        }
    }

    /// Each block code is chosen where it is the smallest, and reads back.
    #[test]
    fn blocks_take_the_code_that_fits_them() {
        let mut rng = StdRng::seed_from_u64(3);
        let steps: Vec<u64> = (0..BLOCK).map(|i| if i % 10 == 9 { rng.gen_range(1000..3000) } else { 0 }).collect();
        let jitter: Vec<u64> = (0..BLOCK).map(|i| if i == 40 || i == 41 { 250 } else { 0 }).collect();
        let dense: Vec<u64> = (0..BLOCK).map(|_| rng.gen_range(0..1 << 20)).collect();
        let mixed: Vec<u64> = (0..BLOCK).map(|i| if i % 2 == 0 { 0 } else { (1 << 19) + rng.gen_range(0..1 << 19) }).collect();
        let cases = [(vec![0; BLOCK], "zero"), (steps, "runs"), (jitter, "runs"), (dense, "packed"), (mixed, "sparse")];
        for (block, want) in &cases {
            let got = match choose_block(block).0 {
                Block::Zero => "zero",
                Block::Packed(_) => "packed",
                Block::Sparse(_) => "sparse",
                Block::Golomb(_) => "golomb",
                Block::Runs(..) => "runs",
            };
            assert_eq!(got, *want, "{block:?}");
            let mut w = BitWriter::new();
            put_ints(&mut w, block);
            assert_eq!(w.bit_len(), choose_block(block).1, "{want}: the size chosen is the size written");
            let mut out = Vec::new();
            get_ints(&mut BitReader::new(w.bytes()), block.len(), &mut out, true).unwrap();
            assert_eq!(&out, block);
        }
    }

    /// The open form: a counter costs its differences, a value without the
    /// chunk's decimal form falls back to XOR, repeats cost a bit, and all
    /// read back exactly.
    #[test]
    fn open_chunks_code_decimal_differences() {
        let t0 = 1_795_903_076_378;
        let counter: Vec<Sample> = (0..127).map(|i| (t0 + i * 1000, (1_000_000 + i * i * 7) as f64)).collect();
        let c = OpenChunk::from_samples(&counter);
        assert!(c.data_bytes() < 127 * 2, "a counter took {} bytes for 127 samples", c.data_bytes());
        let odd = [0.25, 0.5, 1.0 / 3.0, f64::NAN, -0.0, 0.75, f64::INFINITY, 0.75, 0.75, 1e300, 1.25];
        let mixed: Vec<Sample> = odd.iter().enumerate().map(|(i, &v)| (t0 + i as i64 * 1000, v)).collect();
        let steady: Vec<Sample> = (0..100).map(|i| (t0 + i * 1000, 42.0)).collect();
        for samples in [&counter, &mixed, &steady] {
            let c = OpenChunk::from_samples(samples);
            let mut out = Vec::new();
            c.decode_into(&mut out).unwrap();
            assert!(same(samples, &out));
        }
        assert!(OpenChunk::from_samples(&steady).data_bytes() < 28, "a repeated value costs a bit a sample");
    }
}
