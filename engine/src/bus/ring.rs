//! A bounded single-producer, single-consumer ring of messages.
//!
//! The producer owns `tail`, the consumer owns `head`; each publishes its
//! index with Release and reads the other's with Acquire, so a slot is
//! written before it becomes visible and read before it is reused. One
//! slot is never used, to tell full from empty.

use super::sync::{AtomicUsize, Ordering, UnsafeCell};

/// The ring. Safe to share between exactly one producer thread and one consumer thread.
pub struct Ring<T> {
    slots: Box<[UnsafeCell<Option<T>>]>,
    head: AtomicUsize,
    tail: AtomicUsize,
}

// SAFETY: a slot is accessed only by the producer (between reading `head` and
// publishing `tail`) or only by the consumer (between reading `tail` and
// publishing `head`); the Acquire/Release pairs order those accesses.
unsafe impl<T: Send> Sync for Ring<T> {}
unsafe impl<T: Send> Send for Ring<T> {}

impl<T> Ring<T> {
    /// A ring that holds up to `capacity` messages.
    pub fn new(capacity: usize) -> Ring<T> {
        let slots = (0..capacity + 1).map(|_| UnsafeCell::new(None)).collect();
        Ring { slots, head: AtomicUsize::new(0), tail: AtomicUsize::new(0) }
    }

    /// Producer side: appends `v`, or gives it back when the ring is full.
    pub fn push(&self, v: T) -> Result<(), T> {
        let tail = self.tail.load(Ordering::Relaxed);
        let next = (tail + 1) % self.slots.len();
        if next == self.head.load(Ordering::Acquire) {
            return Err(v);
        }
        // SAFETY: the slot at `tail` is not visible to the consumer until `tail` is published.
        self.slots[tail].with_mut(|p| unsafe { *p = Some(v) });
        self.tail.store(next, Ordering::Release);
        Ok(())
    }

    /// Consumer side: takes the oldest message.
    pub fn pop(&self) -> Option<T> {
        let head = self.head.load(Ordering::Relaxed);
        if head == self.tail.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: the producer published this slot (Acquire above) and won't touch it until `head` moves past it.
        let v = self.slots[head].with_mut(|p| unsafe { (*p).take() });
        self.head.store((head + 1) % self.slots.len(), Ordering::Release);
        debug_assert!(v.is_some(), "published slot was empty");
        v
    }

    /// Whether the ring looks empty (exact only on the consumer side).
    pub fn is_empty(&self) -> bool {
        self.head.load(Ordering::Acquire) == self.tail.load(Ordering::Acquire)
    }
}
