//! Postings lists: for one term, the documents that hold it, in increasing
//! document id, with the term's weighted frequency, the text fields it is in
//! (a bit mask) and its positions.
//!
//! # Layout
//!
//! Postings are grouped in blocks of [`BLOCK`]. A full block is *packed*:
//!
//! | bytes | what |
//! |---|---|
//! | 4 | bit widths of the four columns below (0..=32 each) |
//! | ⌈128·Σwidths / 8⌉ | the columns, 128 values each at its width, LSB first, back to back: document gaps (from the previous block's last document, 0 for the first block), frequencies, field masks, position counts |
//! | rest | each posting's positions as LEB128 varints: the first, then the gaps |
//!
//! and has a skip entry: its last document (a seek binary-searches these and
//! decodes only the block it lands in), its byte offset, and its highest
//! frequency (the *block max*: an upper bound on any of its postings'
//! scores, so a top-k search can pass over documents that cannot make the
//! cut without decoding their postings, see [`Cursor::max_freq_at`]).
//!
//! The last, partial block (the *tail*) takes appends as varints, per
//! posting: gap, frequency, field mask, position count, positions. It is
//! packed when it fills. Most terms are rare, so a list with a few postings
//! costs one small allocation.
//!
//! Document ids only grow (an updated document gets a new id), so a list is
//! only ever appended to; dead postings are dropped by copying a list
//! without them ([`Postings::copy_from`], a slice at a time: the index's
//! background cleaner, `super::clean`, decides when).

/// Postings per block.
pub const BLOCK: usize = 128;

/// Where a packed block is and what it holds.
#[derive(Debug, Clone, Copy, Default)]
struct Skip {
    /// Its last document.
    last: u32,
    /// Its first byte in [`Packed::data`].
    offset: u32,
    /// Its highest frequency.
    max_freq: u32,
}

/// The packed blocks of a list.
#[derive(Debug, Clone, Default)]
struct Packed {
    skips: Vec<Skip>,
    data: Vec<u8>,
    /// Bytes of `data` that are positions.
    positions: usize,
}

/// One term's postings.
#[derive(Debug, Clone, Default)]
pub struct Postings {
    /// Full blocks; None until the first fills (most lists never do).
    packed: Option<Box<Packed>>,
    /// The partial block, as varints.
    tail: Vec<u8>,
    /// Postings in the list (dead ones included until retained away).
    len: u32,
    /// Postings in the tail.
    tail_len: u32,
    /// The last document (meaningless when empty).
    last: u32,
    /// The highest frequency in the tail.
    tail_max: u32,
}

/// One posting, as a cursor reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Posting {
    /// The document.
    pub doc: u32,
    /// Weighted frequency of the term in the document.
    pub freq: u32,
    /// Text fields (by text-field number) the term is in.
    pub fields: u32,
}

fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `*at`; the data is ours (written by `put_varint`), so a
/// malformed one is a bug: it reads as 0 rather than panicking.
fn get_varint(data: &[u8], at: &mut usize) -> u32 {
    let mut v = 0u32;
    let mut shift = 0;
    while let Some(&b) = data.get(*at) {
        *at += 1;
        v |= u32::from(b & 0x7f) << shift;
        if b < 0x80 || shift >= 28 {
            break;
        }
        shift += 7;
    }
    v
}

/// Steps over `n` varints from `at`.
fn skip_varints(data: &[u8], mut at: usize, n: u32) -> usize {
    let mut left = n;
    while left > 0 {
        match data.get(at) {
            Some(&b) => {
                at += 1;
                if b < 0x80 {
                    left -= 1;
                }
            }
            None => break,
        }
    }
    at
}

fn width(v: u32) -> u8 {
    (32 - v.leading_zeros()) as u8
}

/// Appends `vals` at `w` bits each, LSB first, continuing the bit stream in `acc`/`n`.
fn pack(out: &mut Vec<u8>, acc: &mut u64, n: &mut u32, vals: &[u32], w: u8) {
    for &v in vals {
        *acc |= u64::from(v) << *n;
        *n += u32::from(w);
        while *n >= 8 {
            out.push(*acc as u8);
            *acc >>= 8;
            *n -= 8;
        }
    }
}

/// The `w`-bit value at bit `bit` of `data` (bits past the end read as 0).
#[inline]
fn read_bits(data: &[u8], bit: usize, w: u8) -> u32 {
    if w == 0 {
        return 0;
    }
    let (byte, shift) = (bit >> 3, bit & 7);
    let word = match data.get(byte..byte + 8) {
        Some(b) => u64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
        None => {
            let mut word = [0u8; 8];
            let avail = data.len().saturating_sub(byte).min(8);
            if let Some(tail) = data.get(byte..byte + avail) {
                word[..avail].copy_from_slice(tail);
            }
            u64::from_le_bytes(word)
        }
    };
    let mask = if w >= 32 { u64::from(u32::MAX) } else { (1u64 << w) - 1 };
    ((word >> shift) & mask) as u32
}

/// Column numbers of a packed block.
const GAP: usize = 0;
const FREQ: usize = 1;
const FIELDS: usize = 2;
const COUNT: usize = 3;

/// One block, ready to read: document ids decoded (seeks search them),
/// the other columns read in place (packed) or decoded (tail).
#[derive(Debug, Clone, Default)]
struct Columns {
    docs: Vec<u32>,
    /// Packed: the column widths and the bit where each column starts.
    widths: [u8; 4],
    starts: [usize; 4],
    /// Where the positions begin (packed).
    pos_start: usize,
    /// Tail: frequencies, field masks and position counts, decoded.
    rest: [Vec<u32>; 3],
    /// Where each posting's positions start in the block's bytes (filled
    /// on demand for packed blocks: only phrases and SLOP read positions).
    pos_at: Vec<u32>,
    packed: bool,
}

impl Columns {
    fn clear(&mut self) {
        self.docs.clear();
        self.rest.iter_mut().for_each(Vec::clear);
        self.pos_at.clear();
    }

    /// Value `i` of column `col` (FREQ, FIELDS or COUNT); `block` is the block's bytes when packed.
    #[inline]
    fn get(&self, block: &[u8], col: usize, i: usize) -> u32 {
        if self.packed {
            let w = self.widths[col];
            read_bits(block, self.starts[col] + i * usize::from(w), w)
        } else {
            self.rest[col - 1][i]
        }
    }

    /// Reads a tail: varints, positions interleaved.
    fn read_tail(&mut self, data: &[u8], count: u32, base: u32) {
        self.clear();
        self.packed = false;
        let (mut at, mut prev) = (0, base);
        for _ in 0..count {
            prev = prev.wrapping_add(get_varint(data, &mut at));
            self.docs.push(prev);
            for col in &mut self.rest {
                col.push(get_varint(data, &mut at));
            }
            let n = self.rest[COUNT - 1].last().copied().unwrap_or(0);
            self.pos_at.push(at as u32);
            at = skip_varints(data, at, n);
        }
    }

    /// Reads a packed block: its document ids, and where the rest lies.
    fn read_packed(&mut self, block: &[u8], base: u32) {
        self.clear();
        self.packed = true;
        let mut widths = [0u8; 4];
        widths.copy_from_slice(block.get(..4).unwrap_or(&[0; 4]));
        self.widths = widths;
        let mut bit = 32;
        for (start, &w) in self.starts.iter_mut().zip(&widths) {
            *start = bit;
            bit += BLOCK * usize::from(w);
        }
        self.pos_start = bit.div_ceil(8);
        let (w, mut prev) = (widths[GAP], base);
        for i in 0..BLOCK {
            prev = prev.wrapping_add(read_bits(block, 32 + i * usize::from(w), w));
            self.docs.push(prev);
        }
    }

    /// Fills `pos_at` for a packed block.
    fn locate_positions(&mut self, block: &[u8]) {
        let mut at = self.pos_start;
        self.pos_at.clear();
        for i in 0..self.docs.len() {
            self.pos_at.push(at as u32);
            at = skip_varints(block, at, self.get(block, COUNT, i));
        }
    }
}

impl Postings {
    /// Postings in the list (dead ones included until retained away).
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes (spare capacity included).
    pub fn heap_bytes(&self) -> usize {
        let packed = self
            .packed
            .as_ref()
            .map_or(0, |p| std::mem::size_of::<Packed>() + p.skips.capacity() * std::mem::size_of::<Skip>() + p.data.capacity());
        packed + self.tail.capacity()
    }

    /// Heap bytes of positions (of packed blocks: a tail's are not told apart).
    pub fn position_bytes(&self) -> usize {
        self.packed.as_ref().map_or(0, |p| p.positions)
    }

    /// The last document id, if any.
    pub fn last_doc(&self) -> Option<u32> {
        (self.len > 0).then_some(self.last)
    }

    fn packed_blocks(&self) -> usize {
        self.packed.as_ref().map_or(0, |p| p.skips.len())
    }

    /// Blocks, the tail included when it holds any.
    fn blocks(&self) -> usize {
        self.packed_blocks() + usize::from(self.tail_len > 0)
    }

    /// The bytes of packed block `b`.
    fn block_bytes(&self, b: usize) -> &[u8] {
        let Some(p) = &self.packed else { return &[] };
        let start = p.skips.get(b).map_or(p.data.len(), |s| s.offset as usize);
        let end = p.skips.get(b + 1).map_or(p.data.len(), |s| s.offset as usize);
        p.data.get(start..end).unwrap_or(&[])
    }

    /// The document block `b`'s first gap is taken from.
    fn block_base(&self, b: usize) -> u32 {
        match (b, &self.packed) {
            (0, _) | (_, None) => 0,
            (_, Some(p)) => p.skips.get(b - 1).map_or(0, |s| s.last),
        }
    }

    /// Last document and highest frequency of block `b` (the tail when `b` is past the packed ones).
    fn block_summary(&self, b: usize) -> (u32, u32) {
        match self.packed.as_ref().and_then(|p| p.skips.get(b)) {
            Some(s) => (s.last, s.max_freq),
            None => (self.last, self.tail_max),
        }
    }

    /// Appends a posting; `doc` must be above every document in the list.
    pub fn push(&mut self, doc: u32, freq: u32, fields: u32, positions: &[u32]) {
        debug_assert!(self.last_doc().is_none_or(|l| doc > l), "postings must be appended in document order");
        let base = if self.len == 0 { 0 } else { self.last };
        put_varint(&mut self.tail, doc.wrapping_sub(base));
        put_varint(&mut self.tail, freq);
        put_varint(&mut self.tail, fields);
        put_varint(&mut self.tail, positions.len() as u32);
        let mut last = 0;
        for &p in positions {
            put_varint(&mut self.tail, p.wrapping_sub(last));
            last = p;
        }
        self.last = doc;
        self.len += 1;
        self.tail_len += 1;
        self.tail_max = self.tail_max.max(freq);
        if self.tail_len as usize == BLOCK {
            self.pack_tail();
        }
    }

    /// Packs the full tail into a block.
    fn pack_tail(&mut self) {
        let base = self.block_base(self.packed_blocks());
        let mut cols = Columns::default();
        cols.read_tail(&self.tail, self.tail_len, base);
        let mut gaps = Vec::with_capacity(BLOCK);
        let mut prev = base;
        for &d in &cols.docs {
            gaps.push(d.wrapping_sub(prev));
            prev = d;
        }
        let [freqs, fields, counts] = &cols.rest;
        let columns = [&gaps, freqs, fields, counts];
        let widths = columns.map(|c| c.iter().copied().map(width).max().unwrap_or(0));
        let bits: usize = widths.iter().map(|&w| usize::from(w) * BLOCK).sum();
        let positions: usize = cols.pos_at.iter().zip(counts).map(|(&at, &n)| skip_varints(&self.tail, at as usize, n) - at as usize).sum();
        let need = 4 + bits.div_ceil(8) + positions;
        let packed = self.packed.get_or_insert_with(Box::default);
        // Grow by a quarter, not by doubling: long lists are most of the index's bytes.
        if packed.data.capacity() - packed.data.len() < need {
            packed.data.reserve_exact(need.max(packed.data.len() / 4));
        }
        if packed.skips.len() == packed.skips.capacity() {
            packed.skips.reserve_exact((packed.skips.len() / 4).max(1));
        }
        let offset = packed.data.len() as u32;
        let out = &mut packed.data;
        out.extend_from_slice(&widths);
        let (mut acc, mut n) = (0u64, 0u32);
        for (c, &w) in columns.iter().zip(&widths) {
            pack(out, &mut acc, &mut n, c, w);
        }
        if n > 0 {
            out.push(acc as u8);
        }
        for (&at, &count) in cols.pos_at.iter().zip(counts) {
            let end = skip_varints(&self.tail, at as usize, count);
            out.extend_from_slice(&self.tail[at as usize..end]);
        }
        packed.positions += positions;
        packed.skips.push(Skip { last: self.last, offset, max_freq: self.tail_max });
        self.tail = Vec::new();
        self.tail_len = 0;
        self.tail_max = 0;
    }

    /// Keeps only the postings whose document `keep` says is alive.
    pub fn retain(&mut self, keep: impl Fn(u32) -> bool) {
        self.rebuild(|d| keep(d).then_some(d));
    }

    /// Rewrites the list with each document mapped by `map` (None: dropped);
    /// the map must keep the order of the documents it keeps.
    pub fn rebuild(&mut self, map: impl Fn(u32) -> Option<u32>) {
        *self = self.rebuilt(map);
    }

    /// A copy with each document mapped by `map`, as [`Postings::rebuild`].
    pub fn rebuilt(&self, map: impl Fn(u32) -> Option<u32>) -> Postings {
        let mut out = Postings::default();
        self.copy_from(0, usize::MAX, &mut out, map);
        out.shrink();
        out
    }

    /// Appends to `out` the postings of documents `from` and after, each
    /// mapped by `map` (None: left out; the map must keep order), reading
    /// at most `max` of them: a long list is copied a slice at a time.
    /// Returns how many it read and the document to go on from (None: the
    /// list is done).
    pub fn copy_from(&self, from: u32, max: usize, out: &mut Postings, map: impl Fn(u32) -> Option<u32>) -> (usize, Option<u32>) {
        let mut c = self.cursor();
        let mut read = 0;
        let mut at = c.seek(from).map(|p| p.doc);
        while let Some(doc) = at {
            if read == max {
                return (read, Some(doc));
            }
            read += 1;
            if let Some(to) = map(doc) {
                let (freq, fields) = (c.cur.freq, c.cur.fields);
                out.push(to, freq, fields, c.positions());
            }
            at = c.next().map(|p| p.doc);
        }
        (read, None)
    }

    /// Frees spare capacity.
    pub fn shrink(&mut self) {
        self.tail.shrink_to_fit();
        if let Some(p) = &mut self.packed {
            p.data.shrink_to_fit();
            p.skips.shrink_to_fit();
        }
    }

    /// A cursor at the start.
    pub fn cursor(&self) -> Cursor<'_> {
        Cursor { list: self, block: 0, loaded: false, i: 0, cols: Columns::default(), cur: Posting::default(), positions: Vec::new() }
    }
}

/// Reads a list forward, with seeks.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    list: &'a Postings,
    /// The block it is in (the tail after the packed ones; past the end when done).
    block: usize,
    /// Whether `cols` holds `block`.
    loaded: bool,
    /// The next posting of the block to read (the current one is `i - 1`).
    i: usize,
    cols: Columns,
    cur: Posting,
    positions: Vec<u32>,
}

impl<'a> Cursor<'a> {
    fn load(&mut self) {
        let list = self.list;
        let base = list.block_base(self.block);
        if self.block < list.packed_blocks() {
            self.cols.read_packed(list.block_bytes(self.block), base);
        } else {
            self.cols.read_tail(&list.tail, list.tail_len, base);
        }
        self.loaded = true;
        self.i = 0;
    }

    /// The bytes of the block it is in (a packed block's, or the tail's).
    fn data(&self) -> &'a [u8] {
        let list = self.list;
        if self.block < list.packed_blocks() {
            list.block_bytes(self.block)
        } else {
            &list.tail
        }
    }

    /// Moves to block `b`, not yet decoded.
    fn enter(&mut self, b: usize) {
        if b != self.block {
            self.block = b;
            self.loaded = false;
            self.i = 0;
        }
    }

    /// Makes posting `i` of the loaded block the current one.
    fn take(&mut self, i: usize) -> &Posting {
        let block = self.data();
        self.cur = Posting { doc: self.cols.docs[i], freq: self.cols.get(block, FREQ, i), fields: self.cols.get(block, FIELDS, i) };
        self.i = i + 1;
        &self.cur
    }

    /// The next posting, or None at the end.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<&Posting> {
        loop {
            if self.block >= self.list.blocks() {
                return None;
            }
            if !self.loaded {
                self.load();
            }
            if self.i < self.cols.docs.len() {
                return Some(self.take(self.i));
            }
            self.enter(self.block + 1);
        }
    }

    /// The positions of the current posting (empty before the first `next`).
    pub fn positions(&mut self) -> &[u32] {
        self.positions.clear();
        if !self.loaded || self.i == 0 {
            return &self.positions;
        }
        let data = self.data();
        if self.cols.pos_at.is_empty() {
            self.cols.locate_positions(data);
        }
        let k = self.i - 1;
        let mut at = self.cols.pos_at[k] as usize;
        let mut p = 0u32;
        for _ in 0..self.cols.get(data, COUNT, k) {
            p = p.wrapping_add(get_varint(data, &mut at));
            self.positions.push(p);
        }
        &self.positions
    }

    /// Moves to the first block whose last document is at or after `doc`
    /// (past the end if none), without decoding it.
    fn skip_to(&mut self, doc: u32) {
        let list = self.list;
        let n = list.blocks();
        if self.block >= n || list.block_summary(self.block).0 >= doc {
            return;
        }
        let packed = list.packed.as_ref().map_or(&[][..], |p| &p.skips[..]);
        let from = self.block.min(packed.len());
        let b = from + packed[from..].partition_point(|s| s.last < doc);
        let b = if b < packed.len() || list.block_summary(b).0 >= doc { b } else { n };
        self.enter(b.min(n));
    }

    /// The first posting with a document at or after `doc`.
    pub fn seek(&mut self, doc: u32) -> Option<&Posting> {
        if self.loaded && self.i > 0 && self.cur.doc >= doc {
            return Some(&self.cur);
        }
        self.skip_to(doc);
        if self.block >= self.list.blocks() {
            return None;
        }
        if !self.loaded {
            self.load();
        }
        let i = self.i + self.cols.docs[self.i..].partition_point(|&d| d < doc);
        if i < self.cols.docs.len() {
            Some(self.take(i))
        } else {
            // Only when the block's last is below `doc`, which skip_to rules out; step on for safety.
            self.enter(self.block + 1);
            self.seek(doc)
        }
    }

    /// The posting of exactly `doc`, if the list has it.
    pub fn find(&mut self, doc: u32) -> Option<&Posting> {
        match self.seek(doc) {
            Some(p) if p.doc == doc => Some(&self.cur),
            _ => None,
        }
    }

    /// A bound on the term's frequency in `doc`, decoding nothing new: the
    /// highest frequency of the block where `doc` would be, or the exact
    /// frequency (0 if absent) when that block is already decoded. None when
    /// the list ends before `doc`. Moves the cursor forward like a seek.
    pub fn max_freq_at(&mut self, doc: u32) -> Option<u32> {
        if !(self.loaded && self.i > 0 && self.cur.doc >= doc) {
            self.skip_to(doc);
            if self.block >= self.list.blocks() {
                return None;
            }
            if !self.loaded {
                return Some(self.list.block_summary(self.block).1);
            }
        }
        Some(self.seek(doc).filter(|p| p.doc == doc).map_or(0, |p| p.freq))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn build(n: u32) -> Postings {
        let mut p = Postings::default();
        for i in 0..n {
            p.push(i * 3 + 1, i % 7 + 1, 1 << (i % 3), &[i, i + 5, i + 1000]);
        }
        p
    }

    #[test]
    fn reads_back_across_blocks() {
        let p = build(1000);
        let mut c = p.cursor();
        for i in 0..1000 {
            let got = c.next().unwrap();
            assert_eq!(got, &Posting { doc: i * 3 + 1, freq: i % 7 + 1, fields: 1 << (i % 3) });
            assert_eq!(c.positions(), [i, i + 5, i + 1000]);
        }
        assert!(c.next().is_none());
    }

    #[test]
    fn seeks_forward_and_finds() {
        let p = build(1000);
        let mut c = p.cursor();
        assert_eq!(c.seek(0).unwrap().doc, 1);
        assert_eq!(c.seek(2).unwrap().doc, 4);
        assert_eq!(c.seek(4).unwrap().doc, 4);
        assert_eq!(c.seek(1500).unwrap().doc, 1501);
        assert!(c.find(1502).is_none());
        assert_eq!(c.find(1504).unwrap().freq, 501 % 7 + 1);
        assert_eq!(c.seek(2998).unwrap().doc, 2998);
        assert!(c.seek(2999).is_none());
        assert!(c.seek(5000).is_none());
    }

    /// Random lists (wide gaps, huge frequencies and masks, many or no
    /// positions) against a plain vector: every read, seek, find, bound and
    /// position list agrees, across packed blocks and the tail.
    #[test]
    fn random_lists_read_back_like_a_vector() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(0x9057);
        for round in 0..150 {
            let n = [0, 1, 127, 128, 129, 300, 1000][round % 7] + rng.gen_range(0..3);
            let mut model: Vec<(u32, u32, u32, Vec<u32>)> = Vec::new();
            let mut doc = rng.gen_range(0..3u32);
            for _ in 0..n {
                let gap = if rng.gen_bool(0.05) { rng.gen_range(1..1 << 24) } else { rng.gen_range(1..20) };
                let Some(d) = doc.checked_add(gap) else { break };
                doc = d;
                let freq = if rng.gen_bool(0.02) { rng.gen::<u32>() } else { rng.gen_range(1..6) };
                let fields = if rng.gen_bool(0.02) { rng.gen::<u32>() } else { 1 << rng.gen_range(0..3) };
                let mut at = 0u32;
                let positions = (0..rng.gen_range(0..5))
                    .map(|_| {
                        at = at.saturating_add(if rng.gen_bool(0.05) { rng.gen::<u32>() >> 1 } else { rng.gen_range(1..50) });
                        at
                    })
                    .collect();
                model.push((doc, freq, fields, positions));
            }
            let mut p = Postings::default();
            for (d, f, m, pos) in &model {
                p.push(*d, *f, *m, pos);
            }
            assert_eq!(p.len() as usize, model.len());
            let mut c = p.cursor();
            for (d, f, m, pos) in &model {
                assert_eq!(c.next().unwrap(), &Posting { doc: *d, freq: *f, fields: *m });
                assert_eq!(c.positions(), &pos[..]);
            }
            assert!(c.next().is_none());
            // Seeks, finds and bounds at random increasing targets.
            let mut c = p.cursor();
            let mut bounds = p.cursor();
            let top = model.last().map_or(10, |e| e.0 + 10);
            let mut target = 0u32;
            while target < top {
                target = target.saturating_add(rng.gen_range(0..top / 50 + 2));
                let want = model.iter().find(|e| e.0 >= target);
                let here = model.iter().find(|e| e.0 == target);
                match bounds.max_freq_at(target) {
                    None => assert!(want.is_none(), "bound says the list ended before {target}"),
                    Some(b) => assert!(b >= here.map_or(0, |e| e.1), "bound {b} under the frequency at {target}"),
                }
                if rng.gen_bool(0.5) {
                    assert_eq!(c.find(target).map(|x| x.doc), here.map(|e| e.0));
                } else {
                    assert_eq!(c.seek(target).map(|x| x.doc), want.map(|e| e.0));
                    if let Some(e) = want {
                        assert_eq!(c.positions(), &e.3[..]);
                    }
                }
            }
            // Rebuilding with a map keeps what it maps, renumbered.
            p.rebuild(|d| (d % 2 == 0).then_some(d / 2));
            let mut c = p.cursor();
            for (d, f, m, pos) in model.iter().filter(|e| e.0 % 2 == 0) {
                assert_eq!(c.next().unwrap(), &Posting { doc: d / 2, freq: *f, fields: *m });
                assert_eq!(c.positions(), &pos[..]);
            }
            assert!(c.next().is_none());
        }
    }

    #[test]
    fn retain_drops_dead_documents() {
        let mut p = build(500);
        p.retain(|d| d % 2 == 0);
        let mut c = p.cursor();
        let mut n = 0;
        while let Some(x) = c.next() {
            assert_eq!(x.doc % 2, 0);
            n += 1;
        }
        assert_eq!(n, 250);
        assert_eq!(p.len(), 250);
    }
}
