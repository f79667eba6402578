//! Postings lists: for one term, the documents that hold it, in increasing
//! document id, with the term's weighted frequency, the text fields it is in
//! (a bit mask) and its positions.
//!
//! Stored in blocks of up to [`BLOCK`] postings. A block keeps its last document
//! id (the skip data: a seek binary-searches the blocks and
//! decodes only the one it lands in) and its postings as LEB128 varints:
//! `doc - previous doc, freq, field mask, bytes of positions, position
//! deltas`. The byte count lets a cursor step over positions it is not
//! asked for: only phrases and SLOP read them ([`Cursor::positions`]).
//! Document ids only grow (an updated document gets a new id), so a list is
//! only ever appended to; dead postings are dropped by [`Postings::retain`]
//! when the index decides enough of a list is dead.

/// Postings per block.
pub const BLOCK: u32 = 128;

#[derive(Debug, Clone, Default)]
struct Block {
    /// Document id the first delta is taken from (the previous block's last).
    base: u32,
    /// Last document id in the block (the skip data).
    last: u32,
    /// Postings in the block.
    count: u32,
    data: Vec<u8>,
}

/// One term's postings.
#[derive(Debug, Clone, Default)]
pub struct Postings {
    blocks: Vec<Block>,
    len: u32,
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

impl Postings {
    /// Postings in the list (dead ones included until retained away).
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.blocks.capacity() * std::mem::size_of::<Block>() + self.blocks.iter().map(|b| b.data.capacity()).sum::<usize>()
    }

    /// The last document id, if any.
    pub fn last_doc(&self) -> Option<u32> {
        self.blocks.last().map(|b| b.last)
    }

    /// Appends a posting; `doc` must be above every document in the list.
    pub fn push(&mut self, doc: u32, freq: u32, fields: u32, positions: &[u32]) {
        debug_assert!(self.last_doc().is_none_or(|l| doc > l), "postings must be appended in document order");
        let need_new = self.blocks.last().is_none_or(|b| b.count >= BLOCK);
        if need_new {
            let base = self.last_doc().unwrap_or(0);
            self.blocks.push(Block { base, last: doc, count: 0, data: Vec::new() });
        }
        let Some(b) = self.blocks.last_mut() else { return };
        let prev = if b.count == 0 { b.base } else { b.last };
        put_varint(&mut b.data, doc - prev);
        put_varint(&mut b.data, freq);
        put_varint(&mut b.data, fields);
        let mut pos = Vec::with_capacity(positions.len() * 2);
        let mut last = 0;
        for &p in positions {
            put_varint(&mut pos, p.wrapping_sub(last));
            last = p;
        }
        put_varint(&mut b.data, pos.len() as u32);
        b.data.extend_from_slice(&pos);
        b.last = doc;
        b.count += 1;
        self.len += 1;
    }

    /// Keeps only the postings whose document `keep` says is alive.
    pub fn retain(&mut self, keep: impl Fn(u32) -> bool) {
        let mut out = Postings::default();
        let mut c = self.cursor();
        while let Some(p) = c.next() {
            if keep(p.doc) {
                let (doc, freq, fields) = (p.doc, p.freq, p.fields);
                out.push(doc, freq, fields, c.positions());
            }
        }
        for b in &mut out.blocks {
            b.data.shrink_to_fit();
        }
        *self = out;
    }

    /// Frees spare capacity of the last block.
    pub fn shrink(&mut self) {
        if let Some(b) = self.blocks.last_mut() {
            b.data.shrink_to_fit();
        }
    }

    /// A cursor at the start.
    pub fn cursor(&self) -> Cursor<'_> {
        Cursor { list: self, block: 0, at: 0, read: 0, cur: Posting::default(), prev: 0, pos_at: 0, pos_len: 0, positions: Vec::new() }
    }
}

/// Reads a list forward, with seeks.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    list: &'a Postings,
    block: usize,
    /// Byte offset in the block's data.
    at: usize,
    /// Postings of the block read so far.
    read: u32,
    cur: Posting,
    prev: u32,
    /// Where the current posting's positions are in its block, and their bytes.
    pos_at: usize,
    pos_len: usize,
    positions: Vec<u32>,
}

impl<'a> Cursor<'a> {
    /// The next posting, or None at the end.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<&Posting> {
        loop {
            let b = self.list.blocks.get(self.block)?;
            if self.read < b.count {
                break;
            }
            self.enter(self.block + 1);
        }
        let b = &self.list.blocks[self.block];
        if self.read == 0 {
            self.prev = b.base;
        }
        let d = &b.data;
        let doc = self.prev + get_varint(d, &mut self.at);
        self.cur.doc = doc;
        self.cur.freq = get_varint(d, &mut self.at);
        self.cur.fields = get_varint(d, &mut self.at);
        self.pos_len = get_varint(d, &mut self.at) as usize;
        self.pos_at = self.at;
        self.at += self.pos_len;
        self.prev = doc;
        self.read += 1;
        Some(&self.cur)
    }

    /// The positions of the current posting (empty before the first `next`).
    pub fn positions(&mut self) -> &[u32] {
        self.positions.clear();
        let Some(b) = self.list.blocks.get(self.block) else { return &self.positions };
        let end = (self.pos_at + self.pos_len).min(b.data.len());
        let mut at = self.pos_at;
        let mut p = 0u32;
        while at < end {
            p = p.wrapping_add(get_varint(&b.data, &mut at));
            self.positions.push(p);
        }
        &self.positions
    }

    fn enter(&mut self, block: usize) {
        self.block = block;
        self.at = 0;
        self.read = 0;
    }

    /// The first posting with a document at or after `doc`.
    pub fn seek(&mut self, doc: u32) -> Option<&Posting> {
        // Already there?
        if self.read > 0 && self.cur.doc >= doc {
            return Some(&self.cur);
        }
        let blocks = &self.list.blocks;
        let here = blocks.get(self.block)?;
        if here.last < doc {
            let skip = blocks[self.block..].partition_point(|b| b.last < doc);
            if self.block + skip >= blocks.len() {
                self.block = blocks.len();
                return None;
            }
            self.enter(self.block + skip);
        }
        loop {
            let d = self.next()?.doc;
            if d >= doc {
                return Some(&self.cur);
            }
        }
    }

    /// The posting of exactly `doc`, if the list has it.
    pub fn find(&mut self, doc: u32) -> Option<&Posting> {
        match self.seek(doc) {
            Some(p) if p.doc == doc => Some(&self.cur),
            _ => None,
        }
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
