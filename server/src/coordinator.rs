//! The cross-shard coordinator: MSET, MSETNX and MULTI/EXEC whose keys live
//! on several shards run atomically across all of them.
//!
//! A transaction T is run by the task of the connection that sent it, on its
//! shard (the coordinator), in three rounds over the bus:
//!
//! 1. **Lock.** T locks its keys on every shard it touches, one shard after
//!    the other in ascending order, so two transactions never wait for each
//!    other in a cycle. On a shard, a lock request waits while any of its
//!    keys is locked, or asked for by an earlier request still waiting. Once
//!    granted, the shard checks T's WATCHed keys and its memory budget, and
//!    runs T's read-only checks (MSETNX's EXISTS).
//! 2. **Apply** (or abort, when a watched key changed, a shard is out of
//!    memory, or a check says no). Every shard runs its part as one write
//!    group: one log record per shard.
//! 3. **Release.** Each shard unlocks T's keys and serves what waited for
//!    them. Every lock of T is held by the time any part is applied, so a
//!    shard unlocks as soon as it has applied its own part (the apply and
//!    the release are one message); when replies wait for the log
//!    (`appendfsync always`), every shard applies first, then each unlocks
//!    and answers once its part is durable, and T's reply waits for all.
//!
//! While a key is locked no other command touches it: a connection of the
//! shard that meets a locked key stops its pipeline there and waits, and a
//! batch from another shard that names one is held, in arrival order, until
//! the lock goes. A key is locked from before T applies anything anywhere
//! until T has applied its part on that key's shard (two-phase locking), so
//! a command that sees T's writes on one shard and then looks at another
//! shard T wrote finds them there too.
//! Commands that name no key (DBSIZE, KEYS, SCAN, FLUSHALL) do not wait
//! for locks, and may see a transaction applied on one shard and not yet on
//! another.
//!
//! **Crash atomicity.** Every shard that may write logs its part as one
//! TX record tagged with the transaction's id, its epoch and the
//! writing shards (`strand_engine::keyspace::tx`); recovery keeps a part only
//! when every shard of the tag holds its own ([`Epochs::settle`]). A
//! checkpoint begins only while no cross-shard transaction runs anywhere
//! ([`Epochs::cut`]) and moves the epoch on, so every transaction is wholly
//! inside or wholly outside each checkpoint, and before it finishes every
//! shard syncs its log ([`sync_everywhere`]).
//!
//! This module touches the shard's state only through [`Shard`]'s methods,
//! and crosses threads only through the bus.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use futures::channel::oneshot;

use crate::command::table::CmdId;
use crate::command::{Command, Ctx};
use crate::dispatch::{Msg, OwnedArgs, RemoteCmd, Shard};
use crate::reply::Reply;
use crate::stats::Call;
use crate::transaction::Watched;
use strand_engine::bus::epochs::Gate;
use strand_engine::keyspace::tx::{Recovered, TxTag};

/// Process-wide bookkeeping of cross-shard transactions, for crash
/// atomicity: the epoch new transactions run in, how many run now, and the
/// pause a checkpoint sets while it begins (see `strand_engine::keyspace::tx`).
/// Touched once at the start and end of each cross-shard transaction and by
/// checkpoints, never by other commands.
pub struct Epochs {
    /// Transaction ids and epochs, and the gate checkpoints close (loom-checked in the engine).
    gate: Gate,
    /// Start-up: per shard, what its recovery found (None: not yet; Some(None): it failed).
    board: Mutex<Vec<Option<Option<Recovered>>>>,
}

/// How long a checkpoint waits for running cross-shard transactions to end.
const CUT_PATIENCE: Duration = Duration::from_secs(5);

impl Epochs {
    /// Bookkeeping for `shards` shards.
    pub fn new(shards: usize) -> Epochs {
        Epochs { gate: Gate::default(), board: Mutex::new(vec![None; shards]) }
    }

    /// Start-up: leaves what shard `id`'s recovery found (None: it failed)
    /// and waits for every shard's; None if any failed. Later epochs start
    /// above every epoch found.
    pub async fn settle(&self, id: usize, found: Option<Recovered>, heartbeats: &crate::watchdog::Heartbeats) -> Option<Vec<Recovered>> {
        if let Ok(mut board) = self.board.lock() {
            board[id] = Some(found);
        }
        loop {
            let all: Option<Vec<Option<Recovered>>> = match self.board.lock() {
                Ok(board) => board.iter().cloned().collect(),
                Err(_) => return None,
            };
            if let Some(all) = all {
                let all: Option<Vec<Recovered>> = all.into_iter().collect();
                if let Some(all) = &all {
                    let top = all.iter().map(Recovered::max_epoch).max().unwrap_or(0);
                    let ids = all.iter().flat_map(|r| r.parts.iter().map(|p| p.id).chain(r.aborts.iter().copied()));
                    self.gate.raise(top, ids.max().unwrap_or(0));
                }
                return all;
            }
            heartbeats.tick(id);
            strand_engine::runtime::sleep(Duration::from_millis(1)).await;
        }
    }

    /// A transaction begins (waiting while a checkpoint begins): its id, its epoch, and a guard that ends it.
    async fn enter(&self) -> (u64, u64, Running<'_>) {
        loop {
            if let Some((id, epoch)) = self.gate.try_enter() {
                return (id, epoch, Running(self));
            }
            strand_engine::runtime::sleep(Duration::from_micros(200)).await;
        }
    }

    /// A checkpoint begins: new transactions wait, running ones end, and the
    /// epoch moves on. Returns the new epoch and a guard that lets
    /// transactions start again; Err if they did not end in time.
    pub async fn cut(&self) -> Result<(u64, Paused<'_>), String> {
        self.gate.pause();
        let paused = Paused(self);
        let since = std::time::Instant::now();
        while !self.gate.drained() {
            if since.elapsed() > CUT_PATIENCE {
                return Err(format!(
                    "ERR cross-shard transactions did not end within {} s for the checkpoint to begin",
                    CUT_PATIENCE.as_secs()
                ));
            }
            strand_engine::runtime::sleep(Duration::from_micros(200)).await;
        }
        Ok((self.gate.advance(), paused))
    }
}

/// A running cross-shard transaction; ends it when dropped.
struct Running<'a>(&'a Epochs);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.gate.exit();
    }
}

/// A checkpoint beginning; lets transactions start again when dropped.
pub struct Paused<'a>(&'a Epochs);

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.0.gate.resume();
    }
}

/// A key as locks name it: database and key.
pub type LockKey = (u8, Vec<u8>);

/// The keys cross-shard transactions hold on this shard, and what waits for them.
#[derive(Default)]
pub struct Locks {
    /// Locked keys, per database, and how each is held.
    locked: HashMap<u8, HashMap<Vec<u8>, Lock>>,
    /// Transactions holding locks here, with their keys.
    holders: HashMap<u64, Vec<LockKey>>,
    /// Lock requests not granted yet, in arrival order.
    waiting: VecDeque<Request>,
    /// Batches and transactions from other shards that name a locked key, in arrival order.
    held: VecDeque<Msg>,
    /// Local tasks waiting for locks to go.
    waiters: Vec<oneshot::Sender<()>>,
}

/// A lock request waiting for its keys.
pub struct Request {
    tx: u64,
    part: Part,
    /// Commands to run at once when granted, with the part's tag (see [`run`]: only when nothing can refuse them).
    apply: Option<(Vec<RemoteCmd>, Option<TxTag>)>,
    reply: oneshot::Sender<Granted>,
}

/// How a key is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    /// By one transaction that may write it.
    Exclusive,
    /// By this many transactions that only read it.
    Shared(u32),
}

impl Locks {
    /// Whether a transaction holds the key (plain commands wait for shared locks too).
    fn is_locked(&self, db: u8, key: &[u8]) -> bool {
        self.locked.get(&db).is_some_and(|m| m.contains_key(key))
    }

    /// Whether a part may lock `keys` now: none is held exclusively, none is
    /// held at all unless both sides only read, and no earlier request still
    /// waiting asks for one (`claimed`), so a writer is not starved by readers.
    fn free(&self, keys: &[LockKey], shared: bool, claimed: &[&LockKey]) -> bool {
        keys.iter().all(|k| {
            let held = self.locked.get(&k.0).and_then(|m| m.get(&k.1));
            let compatible = match held {
                None => true,
                Some(Lock::Shared(_)) => shared,
                Some(Lock::Exclusive) => false,
            };
            compatible && !claimed.contains(&k)
        })
    }

    /// Takes `keys` for a part (they are [`Locks::free`]).
    fn take(&mut self, keys: &[LockKey], shared: bool) {
        for (db, key) in keys {
            let slot = self.locked.entry(*db).or_default().entry(key.clone());
            match (slot, shared) {
                (Entry::Occupied(mut o), true) => match o.get_mut() {
                    Lock::Shared(n) => *n += 1,
                    Lock::Exclusive => debug_assert!(false, "a shared lock granted on a key held exclusively"),
                },
                (Entry::Occupied(_), false) => debug_assert!(false, "an exclusive lock granted on a held key"),
                (Entry::Vacant(v), _) => {
                    v.insert(if shared { Lock::Shared(1) } else { Lock::Exclusive });
                }
            }
        }
    }

    /// Gives back one holder's hold on `keys`.
    fn give_back(&mut self, keys: Vec<LockKey>) {
        for (db, key) in keys {
            let Some(m) = self.locked.get_mut(&db) else { continue };
            match m.get_mut(&key) {
                Some(Lock::Shared(n)) if *n > 1 => *n -= 1,
                Some(_) => {
                    m.remove(&key);
                }
                None => debug_assert!(false, "a lock given back that was not held"),
            }
        }
    }
}

/// What a transaction asks of one shard when its locks are granted.
pub struct Part {
    /// The keys its commands touch on this shard.
    pub keys: Vec<LockKey>,
    /// Whether the part only reads its keys: they are locked shared, so
    /// other reading parts may hold them at the same time (a part that may
    /// write, and every plain command, still waits for them).
    pub shared: bool,
    /// WATCHed keys on this shard.
    pub watches: Vec<Watched>,
    /// Whether the part may add data (refused whole when the shard is out of memory).
    pub denyoom: bool,
    /// Read-only commands whose replies decide whether the transaction goes on.
    pub checks: Vec<RemoteCmd>,
}

/// A shard's answer to a lock request.
pub enum Granted {
    /// The watches held and memory allows; the checks' replies.
    Ready(Vec<Reply>),
    /// A watched key changed.
    Dirty,
    /// Refused whole: the part may add data and the shard is out of memory.
    Full,
    /// Granted and applied at once: the commands' replies.
    Applied(Vec<Reply>),
}

/// What one shard did with its part.
pub struct Applied {
    /// One reply per command.
    pub replies: Vec<Reply>,
}

/// How a transaction ended.
pub enum Outcome {
    /// Applied everywhere: per participant (in shard order), one reply per command.
    Done(Vec<Vec<Reply>>),
    /// A watched key changed; nothing was applied.
    Dirty,
    /// Refused before anything was applied: a shard it writes on is out of memory.
    Full,
    /// Refused before anything was applied: a shard did not answer.
    Refused(Reply),
    /// The checks said no; nothing was applied.
    Declined,
}

impl Outcome {
    /// The reply of a command that planned its own writes (a move, the
    /// algebra): `answer`, unless a part failed or the transaction was refused.
    pub fn answer(self, answer: Reply, name: &str) -> Reply {
        match self {
            Outcome::Done(replies) => replies.into_iter().flatten().find(Reply::is_error).unwrap_or(answer),
            Outcome::Declined => answer,
            Outcome::Full => Reply::error(crate::oom::OOM),
            Outcome::Refused(r) => r,
            Outcome::Dirty => Reply::error(format!("ERR {} saw a watched key change, which it never watches", name.to_uppercase())),
        }
    }
}

/// The keys a command names, as locks see them (none for commands without keys).
pub fn keys_of(cmd: &Command, db: u8, args: &[&[u8]]) -> Vec<LockKey> {
    cmd.keys_of(args).filter_map(|i| args.get(i)).map(|k| (db, k.to_vec())).collect()
}

impl Shard {
    /// Whether any key of this shard is locked by a cross-shard transaction.
    pub fn has_locks(&self) -> bool {
        !self.locks.borrow().holders.is_empty()
    }

    /// Whether a command names a key locked here.
    pub fn names_locked(&self, cmd: &Command, db: usize, args: &[&[u8]]) -> bool {
        let locks = self.locks.borrow();
        !locks.holders.is_empty() && cmd.keys_of(args).any(|i| args.get(i).is_some_and(|k| locks.is_locked(db as u8, k)))
    }

    /// Whether one key is locked here.
    pub fn names_locked_key(&self, db: u8, key: &[u8]) -> bool {
        self.locks.borrow().is_locked(db, key)
    }

    /// Whether a command shipped from another shard names a key locked here.
    fn remote_names_locked(&self, c: &RemoteCmd) -> bool {
        let (Call::Command(id) | Call::Part(id)) = c.call else { return false };
        crate::command::table::by_id(id).is_some_and(|cmd| c.args.with(|a| self.names_locked(cmd, c.db as usize, a)))
    }

    /// Waits until `cmd` names no locked key here. Call it right before
    /// running a command outside a transaction, with no await in between.
    pub async fn wait_unlocked(&self, cmd: &Command, db: usize, args: &[&[u8]]) {
        if self.names_locked(cmd, db, args) {
            self.state.borrow_mut().stats.lock_waits += 1;
        }
        while self.names_locked(cmd, db, args) {
            self.wait_release().await;
        }
    }

    /// Waits for the next release of locks on this shard.
    pub(crate) async fn wait_release(&self) {
        let (tx, rx) = oneshot::channel();
        self.locks.borrow_mut().waiters.push(tx);
        let _ = rx.await;
    }

    /// Looks at a message from another shard before it is served: None if it
    /// was held (it names a locked key) or handled here (a transaction's own).
    pub(crate) fn through_locks(self: &Rc<Self>, msg: Msg) -> Option<Msg> {
        match msg {
            Msg::Lock { tx, part, apply, reply } => {
                self.locks.borrow_mut().waiting.push_back(Request { tx, part, apply, reply });
                self.grant_waiting();
                None
            }
            Msg::Apply { tx, cmds, tag, release, reply } => {
                let holds = self.locks.borrow().holders.contains_key(&tx);
                let replies = match holds {
                    true => self.run_grouped(&cmds, tag.as_ref()),
                    false => vec![Reply::error(not_holder(self.id, tx)); cmds.len()],
                };
                let _ = reply.send(Applied { replies });
                if release {
                    self.release(tx, None);
                }
                None
            }
            Msg::Release { tx, reply } => {
                self.release(tx, reply);
                None
            }
            Msg::Batch { ref cmds, .. } if self.has_locks() && cmds.iter().any(|c| self.remote_names_locked(c)) => {
                self.hold(msg);
                None
            }
            Msg::Tx { ref tx, .. } if self.has_locks() && tx.cmds.iter().any(|c| self.remote_names_locked(c)) => {
                self.hold(msg);
                None
            }
            other => Some(other),
        }
    }

    /// Keeps a message that names a locked key until a release.
    fn hold(&self, msg: Msg) {
        self.state.borrow_mut().stats.lock_waits += 1;
        self.locks.borrow_mut().held.push_back(msg);
    }

    /// Grants, in order, every waiting request whose keys are free and not
    /// asked for by an earlier request still waiting.
    fn grant_waiting(&self) {
        let mut n = 0;
        loop {
            let request = {
                let mut locks = self.locks.borrow_mut();
                let claimed: Vec<&LockKey> = locks.waiting.iter().take(n).flat_map(|r| r.part.keys.iter()).collect();
                let Some(r) = locks.waiting.get(n) else { return };
                if !locks.free(&r.part.keys, r.part.shared, &claimed) {
                    n += 1;
                    continue;
                }
                let Some(r) = locks.waiting.remove(n) else { return };
                r
            };
            let granted = match (self.grant(request.tx, &request.part), &request.apply) {
                (Granted::Ready(_), Some((cmds, tag))) => Granted::Applied(self.run_grouped(cmds, tag.as_ref())),
                (granted, _) => granted,
            };
            let _ = request.reply.send(granted);
        }
    }

    /// Locks `part`'s keys for `tx` (they are free) and checks the part.
    fn grant(&self, tx: u64, part: &Part) -> Granted {
        {
            let mut locks = self.locks.borrow_mut();
            locks.take(&part.keys, part.shared);
            let previous = locks.holders.insert(tx, part.keys.clone());
            debug_assert!(previous.is_none(), "transaction {tx:#x} granted twice on one shard");
        }
        self.state.borrow_mut().stats.cross_parts += 1;
        if !self.watches_hold(&part.watches) {
            return Granted::Dirty;
        }
        if crate::oom::full(&mut self.state.borrow_mut(), part.denyoom) {
            return Granted::Full;
        }
        Granted::Ready(
            part.checks.iter().map(|c| c.args.with(|a| self.exec_with(c.handler, c.call, c.db as usize, c.caller, a, false).0)).collect(),
        )
    }

    /// Unlocks `tx`'s keys, serves the clients and messages that waited for
    /// them, grants what can be granted, and answers `reply` (if any) once
    /// this shard's log holds the part durably.
    fn release(self: &Rc<Self>, tx: u64, reply: Option<oneshot::Sender<Result<(), String>>>) {
        let waiters = {
            let mut locks = self.locks.borrow_mut();
            let Some(keys) = locks.holders.remove(&tx) else { return };
            locks.give_back(keys);
            std::mem::take(&mut locks.waiters)
        };
        self.serve_ready();
        if let Some(reply) = reply {
            let lsn = self.last_lsn();
            let me = self.clone();
            strand_engine::runtime::spawn(async move {
                let _ = reply.send(me.wait_durable(lsn).await);
            });
        }
        // What was held, in order; what still names a locked key is held again.
        let held = std::mem::take(&mut self.locks.borrow_mut().held);
        for msg in held {
            self.serve(msg);
        }
        self.grant_waiting();
        // Woken tasks look again: their keys may be locked by the next transaction.
        for w in waiters {
            let _ = w.send(());
        }
    }

    /// Locks `part`'s keys here for `tx`, waiting for earlier holders, and checks it.
    async fn lock_here(self: &Rc<Self>, tx: u64, part: Part, apply: Option<(Vec<RemoteCmd>, Option<TxTag>)>) -> Option<Granted> {
        let (reply, rx) = oneshot::channel();
        self.locks.borrow_mut().waiting.push_back(Request { tx, part, apply, reply });
        self.grant_waiting();
        rx.await.ok()
    }
}

fn not_holder(shard: usize, tx: u64) -> String {
    format!("ERR shard {shard} was asked to apply transaction {tx:#x}, which holds no locks there")
}

/// One participant of a transaction: its shard, what it checks, what it runs.
pub struct Participant {
    /// The shard.
    pub shard: usize,
    /// Its checks, watches and memory question.
    pub part: Part,
    /// Its commands.
    pub cmds: Vec<RemoteCmd>,
    /// Whether they may write (then the part is logged, even when they end up writing nothing).
    pub writes: bool,
}

/// Runs a transaction over `parts` (any order; one per shard). `decide` sees
/// every participant's check replies and says whether to apply.
///
/// When nothing can refuse the transaction once its locks are granted (no
/// checks, no WATCH, no memory budget) each shard applies its part as soon
/// as it grants the locks, which saves a round: the keys stay locked until
/// every shard has applied, so it is as atomic as the three-round way.
pub async fn run(shard: &Rc<Shard>, parts: Vec<Participant>, decide: impl FnOnce(&[Vec<Reply>]) -> bool) -> Outcome {
    run_planned(shard, parts, |checks, _| decide(checks)).await
}

/// [`run`] where the checks' replies also decide what each participant
/// writes: `plan` sees them, and may replace the commands, per participant
/// in shard order (a cross-shard move writes what its source's check read).
/// A participant that writes logs its part even when `plan` leaves it no
/// commands.
pub async fn run_planned(
    shard: &Rc<Shard>,
    mut parts: Vec<Participant>,
    plan: impl FnOnce(&[Vec<Reply>], &mut [Vec<RemoteCmd>]) -> bool,
) -> Outcome {
    parts.sort_by_key(|p| p.shard);
    debug_assert!(parts.windows(2).all(|w| w[0].shard < w[1].shard), "one part per shard");
    let shared = shard.shared.clone();
    let (tx, epoch, _running) = shared.tx.enter().await;
    shard.state.borrow_mut().stats.cross_transactions += 1;
    // Shards that may write log their part with a tag naming each other, so recovery keeps all or none.
    let writers: Vec<u32> = parts.iter().filter(|p| p.writes).map(|p| p.shard as u32).collect();
    let tag = (writers.len() > 1).then_some(TxTag { id: tx, epoch, shards: writers });
    let tag_for = |p: &Participant| tag.clone().filter(|_| p.writes);
    let unlimited = shard.state.borrow().ks.limits().budget == 0;
    if unlimited && parts.iter().all(|p| p.part.checks.is_empty() && p.part.watches.is_empty()) {
        return run_eager(shard, tx, parts, tag_for).await;
    }
    let mut held = Vec::with_capacity(parts.len());
    let mut checks = Vec::with_capacity(parts.len());
    let mut stop = None;
    let mut targets = Vec::with_capacity(parts.len());
    let mut cmds = Vec::with_capacity(parts.len());
    for p in parts {
        targets.push((p.shard, tag_for(&p)));
        cmds.push(p.cmds);
        let granted = lock(shard, tx, p.shard, p.part, None).await;
        match granted {
            Some(Granted::Ready(replies) | Granted::Applied(replies)) => {
                held.push(p.shard);
                checks.push(replies);
            }
            Some(Granted::Dirty) => {
                held.push(p.shard);
                stop = Some(Outcome::Dirty);
                break;
            }
            Some(Granted::Full) => {
                held.push(p.shard);
                stop = Some(Outcome::Full);
                break;
            }
            None => {
                stop = Some(Outcome::Refused(Reply::error(format!("ERR shard {} did not answer", p.shard))));
                break;
            }
        }
    }
    let stop = stop.or_else(|| (!plan(&checks, &mut cmds)).then_some(Outcome::Declined));
    if let Some(outcome) = stop {
        // Nothing was applied, so there is nothing to wait for.
        let _ = release_all(shard, tx, &held, false).await;
        return outcome;
    }
    let cmds = targets.into_iter().zip(cmds).map(|((to, tag), c)| (to, c, tag)).collect();
    // Every lock is held now, so each shard may unlock as soon as it has
    // applied its part (two-phase locking: a command that meets a key still
    // locked on another shard waits there, and finds the part applied).
    // When replies wait for the log, the parts are released together, each
    // answering once durable.
    if !shard.state.borrow().ks.log().is_some_and(|l| l.must_wait()) {
        return Outcome::Done(apply_all(shard, tx, cmds, true).await);
    }
    let replies = apply_all(shard, tx, cmds, false).await;
    if let Err(e) = release_all(shard, tx, &held, true).await {
        return Outcome::Done(replies.into_iter().map(|r| vec![Reply::error(e.clone()); r.len()]).collect());
    }
    Outcome::Done(replies)
}

/// Locks `part`'s keys on shard `to` for `tx` (with `apply`, runs it once granted); None if the shard did not answer.
async fn lock(shard: &Rc<Shard>, tx: u64, to: usize, part: Part, apply: Option<(Vec<RemoteCmd>, Option<TxTag>)>) -> Option<Granted> {
    if to == shard.id {
        return shard.lock_here(tx, part, apply).await;
    }
    let (reply, rx) = oneshot::channel();
    shard.outbox.send(to, Msg::Lock { tx, part, apply, reply }).await;
    rx.await.ok()
}

/// [`run`] when nothing can refuse: each shard applies its part when it grants the locks.
async fn run_eager(shard: &Rc<Shard>, tx: u64, parts: Vec<Participant>, tag_for: impl Fn(&Participant) -> Option<TxTag>) -> Outcome {
    let mut held = Vec::with_capacity(parts.len());
    let mut replies = Vec::with_capacity(parts.len());
    for p in parts {
        let n = p.cmds.len();
        let tag = tag_for(&p);
        let granted = lock(shard, tx, p.shard, p.part, Some((p.cmds, tag))).await;
        replies.push(match granted {
            Some(Granted::Applied(r)) => r,
            // Unreachable without checks, watches and a budget; a shard that did not answer is gone.
            Some(Granted::Ready(_) | Granted::Dirty | Granted::Full) | None => {
                vec![Reply::error(format!("ERR shard {} did not apply its part of the transaction", p.shard)); n]
            }
        });
        held.push(p.shard);
    }
    if let Err(e) = release_all(shard, tx, &held, true).await {
        return Outcome::Done(replies.into_iter().map(|r| vec![Reply::error(e.clone()); r.len()]).collect());
    }
    Outcome::Done(replies)
}

/// Sends every remote part its commands, runs the local one meanwhile, and
/// gathers the replies in order; with `release`, each shard unlocks right
/// after it has applied.
async fn apply_all(shard: &Rc<Shard>, tx: u64, cmds: Vec<(usize, Vec<RemoteCmd>, Option<TxTag>)>, release: bool) -> Vec<Vec<Reply>> {
    let mut waiting = Vec::with_capacity(cmds.len());
    let mut local = None;
    for (i, (to, c, tag)) in cmds.into_iter().enumerate() {
        if to == shard.id {
            local = Some((i, c, tag));
            continue;
        }
        let n = c.len();
        let (reply, rx) = oneshot::channel();
        shard.outbox.send(to, Msg::Apply { tx, cmds: c, tag, release, reply }).await;
        waiting.push((i, to, n, rx));
    }
    let mut out: Vec<Vec<Reply>> = vec![Vec::new(); waiting.len() + usize::from(local.is_some())];
    if let Some((i, c, tag)) = local {
        out[i] = shard.run_grouped(&c, tag.as_ref());
        if release {
            shard.release(tx, None);
        }
    }
    for (i, to, n, rx) in waiting {
        out[i] = match rx.await {
            Ok(a) => a.replies,
            Err(_) => vec![Reply::error(format!("ERR shard {to} did not answer")); n],
        };
    }
    out
}

/// Unlocks `tx`'s keys on every shard in `held`; with `durable`, waits until each
/// part is durable when the log's policy asks for it.
async fn release_all(shard: &Rc<Shard>, tx: u64, held: &[usize], durable: bool) -> Result<(), String> {
    let wait = durable && shard.state.borrow().ks.log().is_some_and(|l| l.must_wait());
    let mut waiting = Vec::new();
    let mut here = false;
    for &to in held {
        if to == shard.id {
            here = true;
            continue;
        }
        let (reply, rx) = match wait {
            true => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
            false => (None, None),
        };
        shard.outbox.send(to, Msg::Release { tx, reply }).await;
        waiting.extend(rx.map(|rx| (to, rx)));
    }
    let mut result = Ok(());
    if here {
        let lsn = shard.last_lsn();
        shard.release(tx, None);
        if wait {
            result = shard.wait_durable(lsn).await;
        }
    }
    for (to, rx) in waiting {
        let r = rx.await.unwrap_or_else(|_| Err(format!("ERR shard {to} did not answer")));
        if result.is_ok() {
            result = r;
        }
    }
    result
}

/// Makes every shard's log durable up to what it holds now (a checkpoint
/// vouches for the other shards' parts of the transactions it holds).
pub async fn sync_everywhere(shard: &Rc<Shard>) -> Result<(), String> {
    // Stopping shards no longer serve messages; each syncs its own log as it stops.
    if shard.shared.shutdown.load(Ordering::SeqCst) {
        return Ok(());
    }
    let mut waiting = Vec::new();
    for to in (0..shard.outbox.shards()).filter(|&s| s != shard.id) {
        let (reply, rx) = oneshot::channel();
        shard.outbox.send(to, Msg::SyncLog { reply }).await;
        waiting.push((to, rx));
    }
    for (to, rx) in waiting {
        // A shard that stops meanwhile never answers: give up rather than hang the checkpoint.
        let late = strand_engine::runtime::sleep(SYNC_PATIENCE);
        futures::pin_mut!(late);
        match futures::future::select(rx, late).await {
            futures::future::Either::Left((answer, _)) => answer.unwrap_or_else(|_| Err(format!("ERR shard {to} did not answer")))?,
            futures::future::Either::Right(_) => {
                return Err(format!("ERR shard {to} did not sync its log within {} s", SYNC_PATIENCE.as_secs()))
            }
        }
    }
    Ok(())
}

/// How long a checkpoint waits for another shard to sync its log.
const SYNC_PATIENCE: Duration = Duration::from_secs(30);

/// Whether a command the coordinator runs across shards (MSET, MSETNX, the
/// moves of [`crate::moves`], the pops of [`crate::pops`], and the algebra
/// and scripts of [`crate::gather`]) has keys on several shards.
pub fn spans_shards(shard: &Shard, cmd: &Command, args: &[&[u8]]) -> bool {
    if shard.outbox.shards() == 1
        || !(matches!(cmd.name, "mset" | "msetnx")
            || crate::moves::moves(cmd.name)
            || crate::pops::pops(cmd.name)
            || crate::gather::gathers(cmd.name))
    {
        return false;
    }
    keys_apart(shard, cmd, args)
}

/// Whether the keys `cmd` names live on more than one shard.
pub fn keys_apart(shard: &Shard, cmd: &Command, args: &[&[u8]]) -> bool {
    let mut owners = cmd.keys_of(args).map(|i| shard.shared.slots.shard_of(args[i]));
    let first = owners.next();
    owners.any(|o| Some(o) != first)
}

/// [MSET](https://redis.io/commands/mset/) and [MSETNX](https://redis.io/commands/msetnx/)
/// whose keys live on several shards: each shard sets its keys with one MSET
/// record, and MSETNX first checks on every shard, while its keys are locked, that none exists.
pub async fn mset(shard: &Rc<Shard>, cmd: &Command, id: CmdId, db: usize, caller: u64, args: &[&[u8]]) -> Reply {
    if args.len().is_multiple_of(2) {
        return crate::command::arity_error(cmd.name);
    }
    let nx = cmd.name == "msetnx";
    let owner = |k: &[u8]| shard.shared.slots.shard_of(k);
    let remote = |handler, args: &[&[u8]]| RemoteCmd {
        handler,
        call: Call::Part(id),
        db: db as u8,
        caller,
        args: OwnedArgs::new(args),
        blocking: false,
    };
    let parts = crate::dispatch::split_keys(cmd, args, &owner)
        .into_iter()
        .map(|g| {
            let keys: Vec<&[u8]> = std::iter::once(&b"exists"[..]).chain(g.args[1..].iter().step_by(2).copied()).collect();
            let checks = if nx { vec![remote(count_existing as crate::command::ShardFn, &keys)] } else { Vec::new() };
            let mut set = g.args;
            set[0] = b"mset";
            let keys = set[1..].iter().step_by(2).map(|k| (db as u8, k.to_vec())).collect();
            Participant {
                shard: g.shard,
                part: Part { keys, shared: false, watches: Vec::new(), denyoom: true, checks },
                cmds: vec![remote(crate::command::strings::mset, &set)],
                writes: true,
            }
        })
        .collect();
    let none_exists = |checks: &[Vec<Reply>]| checks.iter().flatten().all(|r| matches!(r, Reply::Int(0)));
    match run(shard, parts, none_exists).await {
        Outcome::Done(replies) => match replies.into_iter().flatten().find(Reply::is_error) {
            Some(e) => e,
            None if nx => Reply::Int(1),
            None => Reply::Ok,
        },
        Outcome::Declined => Reply::Int(0),
        Outcome::Full => Reply::error(crate::oom::OOM),
        Outcome::Refused(r) => r,
        Outcome::Dirty => Reply::error("ERR MSET saw a watched key change, which it never watches"),
    }
}

/// How many of the keys in `args[1..]` exist (MSETNX's check).
fn count_existing(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    Reply::Int(args[1..].iter().filter(|k| ctx.shard.ks.contains(ctx.db, k, ctx.now)).count() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<LockKey> {
        names.iter().map(|k| (0, k.as_bytes().to_vec())).collect()
    }

    #[test]
    fn shared_locks_admit_readers_and_hold_back_writers() {
        let mut l = Locks::default();
        let (ab, b) = (keys(&["a", "b"]), keys(&["b"]));
        assert!(l.free(&ab, true, &[]));
        l.take(&ab, true);
        assert!(l.free(&b, true, &[]), "a second reader shares the key");
        assert!(!l.free(&b, false, &[]), "a writer waits for the readers");
        l.take(&b, true);
        l.give_back(ab.clone());
        assert!(l.is_locked(0, b"b") && !l.is_locked(0, b"a"), "b is still read by the second");
        assert!(!l.free(&b, false, &[]));
        l.give_back(b.clone());
        assert!(!l.is_locked(0, b"b"));
        assert!(l.free(&b, false, &[]));
        l.take(&b, false);
        assert!(!l.free(&b, true, &[]), "a reader waits for the writer");
        l.give_back(b.clone());
        // A waiting writer's claim keeps later readers out.
        let claim = &b[0];
        assert!(!l.free(&b, true, &[claim]));
    }
}
