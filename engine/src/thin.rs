//! Byte strings behind one pointer.
//!
//! A `Box<[u8]>` takes 16 bytes: a pointer and a length. A time series
//! holds several byte strings (its label ids, each chunk's data, its open
//! chunk's bits), and so does each entry of the label table, so at a
//! thousand series per metric name those 8 bytes add up. A [`ThinBytes`] is
//! the pointer alone: its allocation starts with a prefix, a varint holding
//! the length (shifted left by one) and the kind, then the bytes. The
//! prefix costs one byte up to 63 bytes and two up to 8,191. The empty string
//! allocates nothing.
//!
//! Two kinds, told apart by the prefix's low bit, so the size to free is
//! always known from the allocation itself:
//! - exact ([`ThinBytes::new`]): the prefix and the bytes, nothing more;
//! - roomy ([`ThinBytes::rewrite`]): rounded up to a multiple of [`ROOM`]
//!   bytes, so that a string rewritten a little longer each time (a
//!   series' open chunk, a few bits per sample) is written in place until
//!   it crosses the next multiple.
//!
//! This module allocates and frees by hand, with `unsafe`; each block
//! says why it is sound. It touches nothing but its own allocations.

use std::alloc::{self, Layout};
use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;

/// Roomy allocations are a multiple of this many bytes.
pub const ROOM: usize = 8;

/// An owned byte string behind one pointer (8 bytes; see the module doc).
pub struct ThinBytes {
    /// None: the empty string. Some: an allocation this value owns,
    /// holding the prefix (see [`Prefix`]) and then the bytes.
    ptr: Option<NonNull<u8>>,
}

const _: () = assert!(std::mem::size_of::<ThinBytes>() == 8);

// SAFETY: a ThinBytes owns its allocation alone, as a Box<[u8]> does, and
// hands out shared slices only through `&self`.
unsafe impl Send for ThinBytes {}
// SAFETY: as above: no interior mutability.
unsafe impl Sync for ThinBytes {}

/// The head of an allocation: the length and whether it is roomy, as the
/// varint of `len << 1 | roomy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Prefix {
    len: usize,
    roomy: bool,
}

impl Prefix {
    fn tag(self) -> u64 {
        (self.len as u64) << 1 | self.roomy as u64
    }

    /// Bytes of the varint.
    fn width(self) -> usize {
        let bits = 64 - self.tag().leading_zeros() as usize;
        bits.div_ceil(7).max(1)
    }

    /// Bytes of the whole allocation.
    fn size(self) -> usize {
        let n = self.width() + self.len;
        if self.roomy {
            n.next_multiple_of(ROOM)
        } else {
            n
        }
    }

    fn layout(self) -> Layout {
        Layout::from_size_align(self.size(), 1).unwrap_or_else(|_| panic!("a thin byte string of {} bytes", self.len))
    }

    /// Writes the varint at `p`.
    ///
    /// # Safety
    /// `p` must be valid for writing [`Prefix::width`] bytes.
    unsafe fn write(self, p: *mut u8) {
        let mut tag = self.tag();
        let mut at = 0;
        while tag >= 0x80 {
            // SAFETY: `at` stays below the varint's width, which the caller made room for.
            unsafe { p.add(at).write(tag as u8 | 0x80) };
            tag >>= 7;
            at += 1;
        }
        // SAFETY: as above; this is the varint's last byte.
        unsafe { p.add(at).write(tag as u8) };
    }

    /// Reads the varint at `p`.
    ///
    /// # Safety
    /// `p` must point at a varint written by [`Prefix::write`].
    unsafe fn read(p: *const u8) -> Prefix {
        let (mut tag, mut shift, mut at) = (0u64, 0, 0);
        loop {
            // SAFETY: a written varint ends with a byte below 0x80, and we stop there.
            let b = unsafe { p.add(at).read() };
            tag |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Prefix { len: (tag >> 1) as usize, roomy: tag & 1 == 1 };
            }
            shift += 7;
            at += 1;
        }
    }
}

impl ThinBytes {
    /// The empty string (no allocation).
    pub const EMPTY: ThinBytes = ThinBytes { ptr: None };

    /// An exact copy of `bytes`.
    pub fn new(bytes: &[u8]) -> ThinBytes {
        ThinBytes::make(bytes, false)
    }

    fn make(bytes: &[u8], roomy: bool) -> ThinBytes {
        if bytes.is_empty() {
            return ThinBytes::EMPTY;
        }
        let prefix = Prefix { len: bytes.len(), roomy };
        let layout = prefix.layout();
        // SAFETY: the layout's size is at least 1 (the prefix).
        let p = NonNull::new(unsafe { alloc::alloc(layout) }).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        // SAFETY: `p` was just allocated with room for the prefix and the bytes.
        unsafe { fill(p, prefix, bytes) };
        ThinBytes { ptr: Some(p) }
    }

    fn prefix(&self) -> Option<Prefix> {
        // SAFETY: an owned allocation starts with a prefix written by `fill`.
        self.ptr.map(|p| unsafe { Prefix::read(p.as_ptr()) })
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match (self.ptr, self.prefix()) {
            (Some(p), Some(prefix)) => {
                // SAFETY: `fill` wrote `prefix.len` bytes right after the
                // prefix, inside the allocation, which lives as long as
                // `self` and changes only through `&mut self`.
                unsafe { std::slice::from_raw_parts(p.as_ptr().add(prefix.width()), prefix.len) }
            }
            _ => &[],
        }
    }

    /// Replaces the bytes, leaving the string roomy: in place when the
    /// allocation has the size `bytes` needs, else resized.
    pub fn rewrite(&mut self, bytes: &[u8]) {
        let want = Prefix { len: bytes.len(), roomy: true };
        match (self.ptr, self.prefix()) {
            _ if bytes.is_empty() => *self = ThinBytes::EMPTY,
            (Some(p), Some(old)) => {
                // SAFETY: `p` is this value's allocation, made for `old`.
                let p = unsafe { resized(p, old, want) };
                self.ptr = Some(p);
                // SAFETY: `p` holds `want.size()` bytes; `bytes` cannot point into it (`&mut self` is held).
                unsafe { fill(p, want, bytes) };
            }
            _ => *self = ThinBytes::make(bytes, true),
        }
    }

    /// Keeps the first `keep` bytes and appends `tail` after them, leaving
    /// the string roomy. Only `tail` is copied, unless the prefix grows a
    /// byte (once, at 64 bytes), when the whole string is written again;
    /// so a string built a few bytes at a time costs linear time, not
    /// quadratic.
    ///
    /// # Panics
    /// If `keep` is longer than the string.
    pub fn splice_tail(&mut self, keep: usize, tail: &[u8]) {
        let (p, old) = match (self.ptr, self.prefix()) {
            (Some(p), Some(old)) if keep > 0 => (p, old),
            _ => {
                assert!(keep <= self.len(), "kept {keep} bytes of a {}-byte string", self.len());
                return self.rewrite(tail);
            }
        };
        assert!(keep <= old.len, "kept {keep} bytes of a {}-byte string", old.len);
        let want = Prefix { len: keep + tail.len(), roomy: true };
        if want.width() != old.width() {
            let mut whole = Vec::with_capacity(want.len);
            whole.extend_from_slice(&self.as_slice()[..keep]);
            whole.extend_from_slice(tail);
            return self.rewrite(&whole);
        }
        // SAFETY: `p` is this value's allocation, made for `old`.
        let p = unsafe { resized(p, old, want) };
        self.ptr = Some(p);
        // SAFETY: `p` holds `want.size()` bytes, of which the prefix (the
        // same width as before) and the `keep` bytes after it were kept by
        // `realloc` (both sizes hold them); the tail goes right after them,
        // inside `want.size()`, and `tail` cannot point into the
        // allocation (`&mut self` is held).
        unsafe {
            want.write(p.as_ptr());
            std::ptr::copy_nonoverlapping(tail.as_ptr(), p.as_ptr().add(want.width() + keep), tail.len());
        }
    }

    /// Bytes allocated (0 for the empty string).
    pub fn heap_bytes(&self) -> usize {
        self.prefix().map_or(0, Prefix::size)
    }
}

/// The allocation `p` resized from `old`'s size to `want`'s: itself when
/// they match, else moved or grown by `realloc`, which keeps the bytes
/// both sizes hold.
///
/// # Safety
/// `p` must have been allocated with `old.layout()`; on return that
/// allocation belongs to the result (the old pointer must not be used).
unsafe fn resized(p: NonNull<u8>, old: Prefix, want: Prefix) -> NonNull<u8> {
    if old.size() == want.size() {
        return p;
    }
    // SAFETY: `p` was allocated with `old.layout()` (the caller's word), and the new size is at least 1 and was checked by `want.layout()`.
    let q = unsafe { alloc::realloc(p.as_ptr(), old.layout(), want.layout().size()) };
    NonNull::new(q).unwrap_or_else(|| alloc::handle_alloc_error(want.layout()))
}

/// Writes the prefix and the bytes at `p`.
///
/// # Safety
/// `p` must be valid for writing `prefix.size()` bytes, `prefix.len` must
/// be `bytes.len()`, and `bytes` must not overlap them.
unsafe fn fill(p: NonNull<u8>, prefix: Prefix, bytes: &[u8]) {
    debug_assert_eq!(prefix.len, bytes.len());
    // SAFETY: the caller gives room for the prefix and then the bytes, not overlapping `bytes`.
    unsafe {
        prefix.write(p.as_ptr());
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.as_ptr().add(prefix.width()), bytes.len());
    }
}

impl Drop for ThinBytes {
    fn drop(&mut self) {
        if let (Some(p), Some(prefix)) = (self.ptr, self.prefix()) {
            // SAFETY: `p` was allocated with this prefix's layout (`make` or `rewrite`) and is freed once.
            unsafe { alloc::dealloc(p.as_ptr(), prefix.layout()) };
        }
    }
}

impl Clone for ThinBytes {
    fn clone(&self) -> ThinBytes {
        ThinBytes::make(self.as_slice(), self.prefix().is_some_and(|p| p.roomy))
    }
}

impl Default for ThinBytes {
    fn default() -> ThinBytes {
        ThinBytes::EMPTY
    }
}

impl Deref for ThinBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<&[u8]> for ThinBytes {
    fn from(b: &[u8]) -> ThinBytes {
        ThinBytes::new(b)
    }
}

impl From<Vec<u8>> for ThinBytes {
    fn from(b: Vec<u8>) -> ThinBytes {
        ThinBytes::new(&b)
    }
}

impl PartialEq for ThinBytes {
    fn eq(&self, other: &ThinBytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for ThinBytes {}

impl fmt::Debug for ThinBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + n) as u8).collect()
    }

    #[test]
    fn holds_any_length() {
        for n in [0, 1, 2, 62, 63, 64, 65, 127, 128, 8191, 8192, 70_000, 2_100_000] {
            let b = bytes(n);
            let t = ThinBytes::new(&b);
            assert_eq!(t.as_slice(), &b[..]);
            let want = if n == 0 { 0 } else { Prefix { len: n, roomy: false }.width() + n };
            assert_eq!(t.heap_bytes(), want, "{n} bytes");
            assert_eq!(t.clone(), t);
        }
        assert_eq!(ThinBytes::new(&bytes(63)).heap_bytes(), 64, "one byte of prefix up to 63");
        assert_eq!(ThinBytes::new(&bytes(64)).heap_bytes(), 66, "two from 64");
    }

    /// A roomy string grows in place to the next multiple of ROOM, and
    /// moves (or shrinks) only when its size class changes.
    #[test]
    fn rewrites_in_place_within_the_room() {
        let mut t = ThinBytes::default();
        let mut held = Vec::new();
        let mut moves = 0;
        let mut at = None;
        for n in 0..600 {
            let b = bytes(n);
            t.rewrite(&b);
            assert_eq!(t.as_slice(), &b[..]);
            assert_eq!(t.heap_bytes() % ROOM, 0);
            assert!(t.heap_bytes() < n + 2 + ROOM || n == 0);
            if at != Some(t.as_ptr()) {
                moves += 1;
                at = Some(t.as_ptr());
            }
            // Clones stay valid while the original is rewritten.
            if n % 97 == 0 {
                held.push((t.clone(), b));
            }
        }
        assert!(moves <= 600 / ROOM + 2, "{moves} moves");
        for (c, b) in &held {
            assert_eq!(c.as_slice(), &b[..]);
        }
        t.rewrite(&bytes(3));
        assert_eq!(t.heap_bytes(), ROOM, "shrinks too");
        t.rewrite(&[]);
        assert_eq!(t.heap_bytes(), 0);
        assert_eq!(t, ThinBytes::EMPTY);
    }

    /// Splicing a tail gives what rewriting the whole string gives,
    /// across the prefix's growth, shrinking and the empty string.
    #[test]
    fn splices_tails() {
        let mut t = ThinBytes::default();
        let mut want: Vec<u8> = Vec::new();
        for step in 0..400usize {
            let keep = if step % 7 == 3 { want.len() / 2 } else { want.len().saturating_sub(step % 2) };
            let tail = bytes(step % 5);
            want.truncate(keep);
            want.extend_from_slice(&tail);
            t.splice_tail(keep, &tail);
            assert_eq!(t.as_slice(), &want[..], "step {step}");
            let mut r = ThinBytes::default();
            r.rewrite(&want);
            assert_eq!(t.heap_bytes(), r.heap_bytes(), "step {step}");
        }
        t.splice_tail(0, &[]);
        assert_eq!(t, ThinBytes::EMPTY);
    }

    #[test]
    #[should_panic(expected = "kept 5 bytes of a 4-byte string")]
    fn splicing_past_the_end_panics() {
        ThinBytes::new(&bytes(4)).splice_tail(5, b"x");
    }

    #[test]
    fn an_exact_string_rewritten_becomes_roomy() {
        let mut t = ThinBytes::new(&bytes(10));
        t.rewrite(&bytes(11));
        assert_eq!(t.as_slice(), &bytes(11)[..]);
        assert_eq!(t.heap_bytes(), 16);
        assert_eq!(t.clone().heap_bytes(), 16, "a clone keeps the kind");
    }
}
