//! Time as the engine sees it: Unix milliseconds that never go backwards within a shard.
//!
//! Every write record carries the time its command saw, and replay uses
//! that time as "now", so lazy expiry decides the same way live and on
//! replay. A wall clock that steps back is held at its last value.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Current Unix time in milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Current Unix time in microseconds.
pub fn unix_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// A per-shard monotonic view of the wall clock.
#[derive(Debug, Default)]
pub struct Clock {
    last: Cell<u64>,
}

impl Clock {
    /// Unix milliseconds, never less than any value returned before.
    pub fn now_ms(&self) -> u64 {
        let now = unix_ms().max(self.last.get());
        self.last.set(now);
        now
    }

    /// Moves the clock forward to at least `ms` (used by replay).
    pub fn observe(&self, ms: u64) {
        if ms > self.last.get() {
            self.last.set(ms);
        }
    }
}
