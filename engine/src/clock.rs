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

/// Reads of the clock a run of commands may answer from the last one
/// before it reads the wall clock again: bounds how far a run's time trails.
const RUN_REUSE: u32 = 64;

/// A per-shard monotonic view of the wall clock.
///
/// During a run of commands executed back to back (a pipeline's batch, no
/// await between them) one read serves up to [`RUN_REUSE`] commands: the
/// clock read was 3-4% of a shard's time under `redis-benchmark -P 16`.
/// Whoever runs a command that may be slow calls [`Clock::fresh`] after it,
/// so only quick commands share a reading. Every caller sees the same
/// value until the next read, so time stays monotonic within the shard.
#[derive(Debug, Default)]
pub struct Clock {
    last: Cell<u64>,
    /// In a run: reads left before the wall clock is read again.
    run: Cell<Option<u32>>,
}

impl Clock {
    /// Unix milliseconds, never less than any value returned before.
    pub fn now_ms(&self) -> u64 {
        match self.run.get() {
            Some(left) if left > 0 => {
                self.run.set(Some(left - 1));
                return self.last.get();
            }
            Some(_) => self.run.set(Some(RUN_REUSE)),
            None => {}
        }
        let now = unix_ms().max(self.last.get());
        self.last.set(now);
        now
    }

    /// Starts (`true`) or ends a run of commands that share readings.
    pub fn run(&self, on: bool) {
        self.run.set(on.then_some(0));
    }

    /// In a run, the next [`Clock::now_ms`] reads the wall clock.
    pub fn fresh(&self) {
        if self.run.get().is_some() {
            self.run.set(Some(0));
        }
    }

    /// Moves the clock forward to at least `ms` (used by replay).
    pub fn observe(&self, ms: u64) {
        if ms > self.last.get() {
            self.last.set(ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_reuses_a_reading_a_bounded_number_of_times() {
        let pause = || std::thread::sleep(std::time::Duration::from_millis(3));
        let c = Clock::default();
        c.run(true);
        let first = c.now_ms();
        pause();
        for _ in 0..RUN_REUSE {
            assert_eq!(c.now_ms(), first, "reused within the run");
        }
        let second = c.now_ms();
        assert!(second >= first + 2, "read again after {RUN_REUSE} reuses");
        pause();
        assert_eq!(c.now_ms(), second);
        c.fresh();
        let third = c.now_ms();
        assert!(third >= second + 2, "fresh makes the next read real");
        c.run(false);
        pause();
        assert!(c.now_ms() >= third + 2, "outside a run every read is real");
    }

    #[test]
    fn outside_a_run_it_follows_the_wall_clock() {
        let c = Clock::default();
        let a = c.now_ms();
        std::thread::sleep(std::time::Duration::from_millis(3));
        assert!(c.now_ms() >= a + 2);
    }
}
