//! The list container: a ring buffer of elements. Pushes and pops at
//! either end are O(1), LINDEX and LSET are O(1) too (Redis's quicklist
//! walks); LINSERT and LREM shift elements, O(n) as in Redis.
//!
//! This module holds data only; the log records that change a list are the
//! `L*` variants of [`super::change::Change`]. Reads see the ring buffer
//! itself (through `Deref`); every change goes through a method of [`List`],
//! which keeps a running count of the elements' heap bytes, so the list's
//! size for memory accounting is O(1).

use std::collections::VecDeque;
use std::ops::Deref;

use crate::bytes::SmallBytes;

/// A list value: the elements and the sum of their heap bytes.
#[derive(Debug, Clone, Default)]
pub struct List {
    elems: VecDeque<SmallBytes>,
    /// Σ heap bytes of the elements (short ones are inline: 0).
    elem_heap: usize,
}

impl Deref for List {
    type Target = VecDeque<SmallBytes>;
    fn deref(&self) -> &VecDeque<SmallBytes> {
        &self.elems
    }
}

impl FromIterator<SmallBytes> for List {
    fn from_iter<I: IntoIterator<Item = SmallBytes>>(iter: I) -> List {
        let mut l = List::default();
        iter.into_iter().for_each(|e| l.push_back(e));
        l
    }
}

impl List {
    /// An empty list with room for `n` elements.
    pub fn with_capacity(n: usize) -> List {
        List { elems: VecDeque::with_capacity(n), elem_heap: 0 }
    }

    /// Heap bytes owned: the ring buffer's capacity and the long elements' bytes. O(1).
    pub fn heap_bytes(&self) -> usize {
        self.elems.capacity() * std::mem::size_of::<SmallBytes>() + self.elem_heap
    }

    /// Adds an element at the head.
    pub fn push_front(&mut self, e: SmallBytes) {
        self.elem_heap += e.heap_bytes();
        self.elems.push_front(e);
    }

    /// Adds an element at the tail.
    pub fn push_back(&mut self, e: SmallBytes) {
        self.elem_heap += e.heap_bytes();
        self.elems.push_back(e);
    }

    /// Removes the first `n` elements (all if fewer).
    pub fn drop_front(&mut self, n: usize) {
        let n = n.min(self.elems.len());
        self.elem_heap -= self.elems.drain(..n).map(|e| e.heap_bytes()).sum::<usize>();
    }

    /// Keeps the first `n` elements.
    pub fn truncate(&mut self, n: usize) {
        if n < self.elems.len() {
            self.elem_heap -= self.elems.range(n..).map(SmallBytes::heap_bytes).sum::<usize>();
            self.elems.truncate(n);
        }
    }

    /// Replaces the element at `i` (which must exist).
    pub fn set(&mut self, i: usize, e: SmallBytes) {
        self.elem_heap += e.heap_bytes();
        self.elem_heap -= std::mem::replace(&mut self.elems[i], e).heap_bytes();
    }

    /// Inserts an element before index `i` (`i` = len appends).
    pub fn insert(&mut self, i: usize, e: SmallBytes) {
        self.elem_heap += e.heap_bytes();
        self.elems.insert(i, e);
    }

    /// Keeps the elements for which `keep` is true, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&SmallBytes) -> bool) {
        let mut freed = 0;
        self.elems.retain(|e| {
            let k = keep(e);
            if !k {
                freed += e.heap_bytes();
            }
            k
        });
        self.elem_heap -= freed;
    }

    /// Removes every element.
    pub fn clear(&mut self) {
        self.elems.clear();
        self.elem_heap = 0;
    }
}

/// Redis's index rule: negative counts from the end; None when out of range.
pub fn index(len: usize, i: i64) -> Option<usize> {
    let i = if i < 0 { len as i64 + i } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

/// Redis's range rule for LRANGE/LTRIM: clamps `start`/`stop` (inclusive,
/// negative from the end) to the list; None when the range is empty.
pub fn range(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let stop = if stop < 0 { len + stop } else { stop.min(len - 1) };
    (start <= stop && start < len).then_some((start as usize, stop as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_heap_count_matches_a_recount() {
        let next = rand::random::<u64>;
        let mut l = List::default();
        for _ in 0..20_000 {
            let e = SmallBytes::new(&vec![b'x'; (next() % 60) as usize]);
            let len = l.len();
            match next() % 8 {
                0 => l.push_front(e),
                1 | 2 => l.push_back(e),
                3 => l.drop_front((next() % 3) as usize),
                4 => l.truncate(len.saturating_sub((next() % 3) as usize)),
                5 if len > 0 => l.set((next() as usize) % len, e),
                6 => l.insert((next() as usize) % (len + 1), e),
                7 if next().is_multiple_of(50) => l.retain(|e| e.len().is_multiple_of(2)),
                _ => {}
            }
            let recount: usize = l.iter().map(SmallBytes::heap_bytes).sum();
            assert_eq!(l.elem_heap, recount);
        }
        l.clear();
        assert_eq!(l.elem_heap, 0);
    }

    #[test]
    fn ranges_follow_redis() {
        assert_eq!(range(5, 0, -1), Some((0, 4)));
        assert_eq!(range(5, -100, 100), Some((0, 4)));
        assert_eq!(range(5, 3, 1), None);
        assert_eq!(range(5, 5, 10), None);
        assert_eq!(range(0, 0, -1), None);
        assert_eq!(range(5, -2, -1), Some((3, 4)));
        assert_eq!(index(3, -1), Some(2));
        assert_eq!(index(3, 3), None);
        assert_eq!(index(3, -4), None);
    }
}
