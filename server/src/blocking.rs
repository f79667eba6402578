//! Blocked clients: commands such as BLPOP that wait for a key to be written.
//!
//! A blocking handler that finds nothing calls [`crate::command::Ctx::block`].
//! The command is then parked here, on the shard that owns its keys, as a
//! [`Waiter`]: its handler and arguments, the keys it waits on, and where its
//! reply goes. The keyspace reports keys with waiters that were written
//! ([`strand_engine::keyspace::Keyspace::take_ready`]); after every command the
//! shard runs the waiters of those keys again, first blocked first served,
//! until one answers or the key has nothing left. A timer on the same shard
//! answers the timeout reply, so a waiter is either served or timed out,
//! never both. A waiter whose client went away (its reply channel closed)
//! is dropped without running, so nothing is popped for nobody.
//!
//! A waiter lives on the shard that owns its keys, so a push from any
//! connection, on any shard, runs on the shard where the waiters are. A
//! command whose keys live on several shards (XREAD, BLPOP, BLMOVE ...)
//! parks one waiter on each ([`crate::stream_reads`], [`crate::pops`],
//! [`crate::moves`]).

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use futures::channel::oneshot;

use crate::command::ShardFn;
use crate::dispatch::{OwnedArgs, Shard};
use crate::reply::Reply;

/// A parked command.
pub struct Waiter {
    handler: ShardFn,
    call: crate::stats::Call,
    db: u8,
    caller: u64,
    args: OwnedArgs,
    keys: Vec<Vec<u8>>,
    timeout_reply: Reply,
    tx: oneshot::Sender<Reply>,
}

/// The blocked clients of one shard.
#[derive(Default)]
pub struct Waiters {
    next_id: u64,
    waiters: HashMap<u64, Waiter>,
    /// Per (db, key): waiter ids in the order they blocked.
    queues: HashMap<(u8, Vec<u8>), VecDeque<u64>>,
}

impl Waiters {
    /// Clients blocked on this shard.
    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    /// Whether no client is blocked.
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Keys with blocked clients.
    pub fn keys(&self) -> usize {
        self.queues.len()
    }
}

impl Shard {
    /// Runs a command that may block. `Ok` is its answer now; `Err` is where
    /// its answer will arrive once a key it waits on is written or it times out.
    pub fn exec_blocking(
        self: &Rc<Self>,
        handler: ShardFn,
        call: crate::stats::Call,
        db: usize,
        caller: u64,
        args: &[&[u8]],
    ) -> Result<Reply, oneshot::Receiver<Reply>> {
        let refused = crate::oom::admit(&mut self.state.borrow_mut(), args);
        if let Some(refused) = refused {
            if let crate::stats::Call::Command(id) = call {
                self.reject(id, &refused);
            }
            return Ok(refused);
        }
        let (reply, block) = self.exec_with(handler, call, db, caller, args, true);
        let Some(block) = block else { return Ok(reply) };
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut st = self.state.borrow_mut();
            let st = &mut *st;
            let w = &mut st.blocked;
            w.next_id += 1;
            let id = w.next_id;
            for key in &block.keys {
                st.ks.block_on(db as u8, key);
                w.queues.entry((db as u8, key.clone())).or_default().push_back(id);
            }
            let args = match &block.rerun {
                Some(rerun) => OwnedArgs::new(&rerun.iter().map(Vec::as_slice).collect::<Vec<_>>()),
                None => OwnedArgs::new(args),
            };
            w.waiters.insert(id, Waiter { handler, call, db: db as u8, caller, args, keys: block.keys, timeout_reply: reply, tx });
            id
        };
        if let Some(deadline) = block.deadline_ms {
            let me = self.clone();
            strand_engine::runtime::spawn(async move {
                let wait = deadline.saturating_sub(strand_engine::clock::unix_ms());
                strand_engine::runtime::sleep(std::time::Duration::from_millis(wait)).await;
                if let Some(w) = me.unpark(id) {
                    let _ = w.tx.send(w.timeout_reply);
                }
            });
        }
        Err(rx)
    }

    /// Removes a waiter from every queue it is in.
    fn unpark(&self, id: u64) -> Option<Waiter> {
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        let w = st.blocked.waiters.remove(&id)?;
        for key in &w.keys {
            st.ks.unblock(w.db, key);
            let k = (w.db, key.clone());
            if let Some(q) = st.blocked.queues.get_mut(&k) {
                q.retain(|&x| x != id);
                if q.is_empty() {
                    st.blocked.queues.remove(&k);
                }
            }
        }
        Some(w)
    }

    /// Drops the waiters whose client went away (their reply channel closed).
    /// Serving skips them anyway; this frees them when no write comes.
    pub fn drop_abandoned_waiters(&self) {
        let gone: Vec<u64> = {
            let st = self.state.borrow();
            if st.blocked.is_empty() {
                return;
            }
            st.blocked.waiters.iter().filter(|(_, w)| w.tx.is_canceled()).map(|(&id, _)| id).collect()
        };
        for id in gone {
            self.unpark(id);
        }
    }

    /// Serves the waiters of keys that were written, until none is ready.
    /// Called after every command; cheap when nothing is blocked.
    pub fn serve_ready(&self) {
        loop {
            let ready = self.state.borrow_mut().ks.take_ready();
            if ready.is_empty() {
                return;
            }
            for (db, key) in ready {
                self.serve_key(db, &key);
            }
        }
    }

    /// Runs the waiters of one key in the order they blocked, while they
    /// find something. On a stream every waiter runs: readers do not take
    /// what they read, and one that still waits (an XREAD after a later ID,
    /// a group whose last-delivered ID is ahead) must not hold back the
    /// others.
    fn serve_key(&self, db: u8, key: &[u8]) {
        // Waiters at the front of the queue that ran and still wait.
        let mut passed = 0;
        loop {
            let next = {
                let st = self.state.borrow();
                let id = st.blocked.queues.get(&(db, key.to_vec())).and_then(|q| q.get(passed).copied());
                id.map(|id| {
                    (
                        id,
                        st.blocked
                            .waiters
                            .get(&id)
                            .filter(|w| !w.tx.is_canceled())
                            .map(|w| (w.handler, w.call, w.db, w.caller, w.args.clone())),
                    )
                })
            };
            let Some((id, live)) = next else { return };
            let Some((handler, call, wdb, caller, args)) = live else {
                // Its client went away: drop it without running it.
                self.unpark(id);
                continue;
            };
            let (reply, block) = args.with(|a| self.exec_with(handler, call, wdb as usize, caller, a, true));
            if block.is_some() {
                // Still nothing for it: it keeps its place in every queue.
                if !self.holds_stream(db, key) {
                    return;
                }
                passed += 1;
                continue;
            }
            if let Some(w) = self.unpark(id) {
                self.answer_when_durable(w.tx, reply);
            }
        }
    }

    /// Whether `key` holds a stream now.
    fn holds_stream(&self, db: u8, key: &[u8]) -> bool {
        let st = self.state.borrow();
        let now = st.ks.now();
        st.ks.peek(db as usize, key, now).is_some_and(|e| matches!(e.value, strand_engine::keyspace::Value::Stream(_)))
    }

    /// Sends a served waiter its reply, after its writes are durable when the log says replies wait.
    fn answer_when_durable(&self, tx: oneshot::Sender<Reply>, reply: Reply) {
        let log = self.state.borrow().ks.log().cloned();
        match log {
            Some(log) if log.must_wait() => {
                let lsn = log.last_lsn();
                strand_engine::runtime::spawn(async move {
                    let reply = match log.durable(lsn).await {
                        Ok(()) => reply,
                        Err(e) => Reply::error(e.to_string()),
                    };
                    let _ = tx.send(reply);
                });
            }
            _ => {
                let _ = tx.send(reply);
            }
        }
    }
}
