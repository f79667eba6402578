//! The gate between cross-shard transactions and checkpoints, shared by
//! every shard's thread.
//!
//! A checkpoint must see each cross-shard transaction wholly before its
//! snapshot or wholly after it. A transaction enters the gate (counting
//! itself in `running`) unless a checkpoint is beginning (`pausers`); a
//! checkpoint raises `pausers`, waits until `running` is 0, and moves the
//! epoch on, so a transaction that entered under the old epoch has ended
//! before the snapshot begins, and one that enters later carries the new
//! epoch. Each side stores its own counter, then a SeqCst fence, then loads
//! the other's (Dekker's pattern): at least one of them sees the other.
//! loom checks it in `loom_tests`; without the fences it finds a
//! transaction of the old epoch still running when the epoch moves on
//! (loom models SeqCst accesses as acquire/release, so only the fences
//! order the two sides for it, as in the bus).
//!
//! This module holds the counters only; the server's coordinator waits
//! (asynchronously) around [`Gate::try_enter`] and [`Gate::drained`].

use super::sync::{fence, AtomicU64, Ordering};

/// The counters of the gate.
#[derive(Debug)]
pub struct Gate {
    next_id: AtomicU64,
    epoch: AtomicU64,
    running: AtomicU64,
    pausers: AtomicU64,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate { next_id: AtomicU64::new(1), epoch: AtomicU64::new(1), running: AtomicU64::new(0), pausers: AtomicU64::new(0) }
    }
}

impl Gate {
    /// A transaction tries to begin: its id and epoch, or None while a
    /// checkpoint begins (try again later). Each Some needs one [`Gate::exit`].
    pub fn try_enter(&self) -> Option<(u64, u64)> {
        self.running.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.pausers.load(Ordering::SeqCst) == 0 {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            return Some((id, self.epoch.load(Ordering::SeqCst)));
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        None
    }

    /// A transaction that entered has ended.
    pub fn exit(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    /// A checkpoint begins: from now on no transaction enters until [`Gate::resume`].
    pub fn pause(&self) {
        self.pausers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Whether every transaction that entered has ended (after [`Gate::pause`]).
    pub fn drained(&self) -> bool {
        self.running.load(Ordering::SeqCst) == 0
    }

    /// Moves the epoch on (once drained); returns the new epoch.
    pub fn advance(&self) -> u64 {
        self.epoch.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Lets transactions enter again.
    pub fn resume(&self) {
        self.pausers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Start-up: later epochs and ids start above those recovery found.
    pub fn raise(&self, epoch_above: u64, id_above: u64) {
        self.epoch.fetch_max(epoch_above + 1, Ordering::SeqCst);
        self.next_id.fetch_max(id_above + 1, Ordering::SeqCst);
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_holds_new_transactions_and_moves_the_epoch() {
        let g = Gate::default();
        let (id, epoch) = g.try_enter().expect("open");
        assert_eq!((id, epoch), (1, 1));
        g.pause();
        assert_eq!(g.try_enter(), None, "paused");
        assert!(!g.drained(), "the first transaction still runs");
        g.exit();
        assert!(g.drained());
        assert_eq!(g.advance(), 2);
        g.resume();
        assert_eq!(g.try_enter(), Some((2, 2)));
        g.exit();
        g.raise(9, 40);
        assert_eq!(g.try_enter(), Some((41, 10)));
    }
}

#[cfg(all(test, feature = "loom"))]
mod loom_tests {
    use super::*;
    use crate::bus::sync::{Arc, AtomicBool};
    use loom::thread;

    /// A transaction that entered under the old epoch has finished its work
    /// before the checkpoint moves the epoch on; one that did not enter
    /// before the pause enters only after, under the new epoch.
    #[test]
    fn no_transaction_straddles_a_checkpoint() {
        loom::model(|| {
            let gate = Arc::new(Gate::default());
            let done = Arc::new(AtomicBool::new(false));
            let (g, d) = (gate.clone(), done.clone());
            let tx = thread::spawn(move || {
                let entered = g.try_enter();
                if entered.is_some() {
                    d.store(true, Ordering::SeqCst);
                    g.exit();
                }
                entered.map(|(_, epoch)| epoch)
            });
            gate.pause();
            while !gate.drained() {
                thread::yield_now();
            }
            let saw_done = done.load(Ordering::SeqCst);
            let new_epoch = gate.advance();
            gate.resume();
            match tx.join() {
                // Entered after the checkpoint let transactions in again: the new epoch.
                Ok(Some(epoch)) if epoch == new_epoch => assert!(!saw_done, "entered while paused"),
                Ok(Some(epoch)) => {
                    assert!(saw_done, "a transaction of epoch {epoch} was still running when the epoch moved to {new_epoch}")
                }
                _ => {}
            }
        });
    }
}
