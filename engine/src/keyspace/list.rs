//! The list container: a ring buffer of elements. Pushes and pops at
//! either end are O(1), LINDEX and LSET are O(1) too (Redis's quicklist
//! walks); LINSERT and LREM shift elements, O(n) as in Redis.
//!
//! This module holds data only; the log records that change a list are the
//! `L*` variants of [`super::change::Change`].

use std::collections::VecDeque;

use crate::bytes::SmallBytes;

/// A list value.
pub type List = VecDeque<SmallBytes>;

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
