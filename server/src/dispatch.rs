//! Routing commands to the shards that own their keys, and gathering replies.
//!
//! A connection hands every command it parsed from one read to a [`Batch`].
//! Commands whose keys this shard owns run at once; commands for other
//! shards are copied into one message per shard ([`Msg::Batch`]) and sent
//! over the bus when the batch is finished, so a pipeline costs one hop per
//! shard, not per command. Replies are kept in request order: each command
//! has a slot, filled locally or from the remote shard's answer, then the
//! parts of split commands are merged.

use std::cell::RefCell;
use std::rc::Rc;

use futures::channel::oneshot;
use strand_engine::bus::Outbox;

use crate::command::table::CmdId;
use crate::command::{err, Block, Command, Ctx, Merge, Route, ShardFn};
use crate::reply::Reply;
use crate::resp::Protocol;
use crate::shard::ShardState;
use crate::stats::Call;

/// A message between shards.
pub enum Msg {
    /// Commands to run in order; the replies go back on `reply`.
    Batch { cmds: Vec<RemoteCmd>, reply: oneshot::Sender<Vec<Reply>> },
    /// A transaction (MULTI/EXEC): the WATCHed keys are checked, then the
    /// commands run back to back as one atomic log record; None if a watched key changed.
    Tx { tx: crate::transaction::Exec, reply: oneshot::Sender<crate::transaction::Outcome> },
    /// A connection moving to the shard that owns the keys it uses.
    Adopt(Box<crate::conn::Migrating>),
    /// A keyspace notification from another shard, for this shard's subscribers.
    Publish { channel: Vec<u8>, message: Vec<u8> },
    /// SAVE or BGSAVE reaching this shard; the reply says how it went.
    Checkpoint { ask: crate::checkpoint::Ask, reply: oneshot::Sender<Result<&'static str, String>> },
    /// A metrics scrape asking for this shard's figures.
    Metrics { reply: oneshot::Sender<crate::metrics::ShardMetrics> },
    /// A cross-shard transaction asks to lock its keys here (granted in turn) and checks its part.
    Lock {
        tx: u64,
        part: crate::coordinator::Part,
        apply: Option<(Vec<RemoteCmd>, Option<strand_engine::keyspace::tx::TxTag>)>,
        reply: oneshot::Sender<crate::coordinator::Granted>,
    },
    /// A lock holder's commands for this shard, run as one write group
    /// (with `release`, the keys are unlocked right after).
    Apply {
        tx: u64,
        cmds: Vec<RemoteCmd>,
        tag: Option<strand_engine::keyspace::tx::TxTag>,
        release: bool,
        reply: oneshot::Sender<crate::coordinator::Applied>,
    },
    /// A checkpoint elsewhere asks this shard to make its log durable up to now.
    SyncLog { reply: oneshot::Sender<Result<(), String>> },
    /// A lock holder unlocks its keys; the reply (if asked) comes once its part is durable.
    Release { tx: u64, reply: Option<oneshot::Sender<Result<(), String>>> },
}

/// One command shipped to another shard.
pub struct RemoteCmd {
    /// Its handler.
    pub handler: ShardFn,
    /// How it is accounted in the per-command statistics.
    pub call: Call,
    /// The database it runs in.
    pub db: u8,
    /// The client that sent it.
    pub caller: u64,
    /// Its arguments.
    pub args: OwnedArgs,
    /// Whether it may block (then it travels alone).
    pub blocking: bool,
}

/// Arguments copied into one allocation.
#[derive(Clone, Default)]
pub struct OwnedArgs {
    data: Vec<u8>,
    ends: Vec<u32>,
}

impl OwnedArgs {
    /// Copies `args`.
    pub fn new(args: &[&[u8]]) -> OwnedArgs {
        let total = args.iter().map(|a| a.len()).sum();
        let mut data = Vec::with_capacity(total);
        let mut ends = Vec::with_capacity(args.len());
        for a in args {
            data.extend_from_slice(a);
            ends.push(data.len() as u32);
        }
        OwnedArgs { data, ends }
    }

    /// Calls `f` with the arguments as slices.
    pub fn with<R>(&self, f: impl FnOnce(&[&[u8]]) -> R) -> R {
        let mut v: Vec<&[u8]> = Vec::with_capacity(self.ends.len());
        let mut start = 0usize;
        for &end in &self.ends {
            v.push(&self.data[start..end as usize]);
            start = end as usize;
        }
        f(&v)
    }
}

/// The shard as a connection sees it: its state and its way to the others.
pub struct Shard {
    /// The state handlers work on.
    pub state: RefCell<ShardState>,
    /// Sending half of the bus.
    pub outbox: Outbox<Msg>,
    /// This shard's index.
    pub id: usize,
    /// What all shards share (the slot map above all), without a RefCell borrow per command.
    pub shared: std::sync::Arc<crate::shard::Shared>,
    /// Keys locked by cross-shard transactions, and what waits for them.
    pub locks: RefCell<crate::coordinator::Locks>,
}

/// Whether a command may have taken long enough that the commands after
/// it in a run should not share the clock reading taken before it: every
/// command but Redis's `fast` ones and SET and MSET of small values (whose
/// cost is that of copying their arguments).
pub(crate) fn may_be_slow(command: Option<&Command>, args: &[&[u8]]) -> bool {
    const SMALL: usize = 16 << 10;
    match command {
        Some(c) if c.flags & crate::command::flags::FAST != 0 => false,
        Some(c) if matches!(c.name, "set" | "mset") => args.iter().map(|a| a.len()).sum::<usize>() > SMALL,
        _ => true,
    }
}

impl Shard {
    /// Runs a handler on this shard's state.
    pub fn exec(&self, handler: ShardFn, call: Call, db: usize, caller: u64, args: &[&[u8]]) -> Reply {
        let refused = crate::oom::admit(&mut self.state.borrow_mut(), args);
        if let Some(refused) = refused {
            if let Call::Command(id) = call {
                self.reject(id, &refused);
            }
            return refused;
        }
        let reply = self.exec_with(handler, call, db, caller, args, false).0;
        self.serve_ready();
        reply
    }

    /// Runs a handler; with `may_block`, also what it waits for if it blocked
    /// (blocked clients are not served here: callers run [`Shard::serve_ready`]).
    /// Its time and outcome go to the shard's [`crate::stats`] as `call` says,
    /// and to the slow log and the latency monitor when it was slow.
    #[allow(clippy::too_many_arguments)]
    pub fn exec_with(
        &self,
        handler: ShardFn,
        call: Call,
        db: usize,
        caller: u64,
        args: &[&[u8]],
        may_block: bool,
    ) -> (Reply, Option<Block>) {
        let mut st = self.state.borrow_mut();
        let command = match call {
            Call::Command(id) | Call::Part(id) => crate::command::table::by_id(id),
            _ => None,
        };
        if let Some(refused) = crate::tiering::resident(&mut st, command, db, args) {
            return (refused, None);
        }
        let now = st.frozen_now.unwrap_or_else(|| st.ks.now());
        st.stats.commands += 1;
        let cmd = crate::notify::enabled(st.config.notify).then(|| String::from_utf8_lossy(args[0]).to_ascii_lowercase());
        // A command that blocked answers later: its time counts now, its call when it is served.
        let (reply, blocked) = crate::stats::timed(
            &mut st,
            call,
            caller,
            args,
            |shard| {
                let mut ctx = Ctx { shard, db, now, caller, may_block, blocked: None, cmd };
                let reply = handler(&mut ctx, args);
                (reply, ctx.blocked.take())
            },
            Option::is_some,
        );
        if reply.is_error() {
            st.stats.errors += 1;
        }
        if may_be_slow(command, args) {
            // The next command in the run reads the clock again.
            st.ks.clock_fresh();
        }
        st.publish_key_events();
        (reply, blocked)
    }

    /// Sequence number of the last record this shard logged (0 without a log).
    pub fn last_lsn(&self) -> u64 {
        self.state.borrow().ks.log().map_or(0, |l| l.last_lsn())
    }

    /// Waits until `lsn` is durable when the policy asks for it; an error if the log failed.
    pub async fn wait_durable(&self, lsn: u64) -> Result<(), String> {
        let log = self.state.borrow().ks.log().cloned();
        match log {
            Some(log) if log.must_wait() => log.durable(lsn).await.map_err(|e| e.to_string()),
            _ => Ok(()),
        }
    }

    /// Serves one message from another shard.
    pub fn serve(self: &Rc<Self>, msg: Msg) {
        self.serve_checked(msg, true);
    }

    /// [`Shard::serve`]; with `warm`, a batch naming cold keys of this shard
    /// has them read back first, without stalling the shard (see [`crate::tiering`]).
    fn serve_checked(self: &Rc<Self>, msg: Msg, warm: bool) {
        let Some(msg) = self.through_locks(msg) else { return };
        let (cmds, reply) = match msg {
            Msg::Batch { cmds, reply } if warm && !matches!(&cmds[..], [c] if c.blocking) => {
                let cold = self.cold_keys_of(&cmds);
                if cold.is_empty() {
                    (cmds, reply)
                } else {
                    let me = self.clone();
                    strand_engine::runtime::spawn(async move {
                        for (db, keys) in cold {
                            crate::tiering::warm(&me, db, keys).await;
                        }
                        // The locks are checked again: one may have been taken meanwhile.
                        me.serve_checked(Msg::Batch { cmds, reply }, false);
                    });
                    return;
                }
            }
            Msg::Batch { cmds, reply } => (cmds, reply),
            Msg::Adopt(conn) => {
                strand_engine::runtime::spawn(crate::conn::adopt(self.clone(), *conn));
                return;
            }
            Msg::Publish { channel, message } => {
                let st = &mut *self.state.borrow_mut();
                st.pubsub.publish(&channel, &message, &st.config.client_output_buffer_limit);
                return;
            }
            Msg::Checkpoint { ask, reply } => {
                let me = self.clone();
                strand_engine::runtime::spawn(async move {
                    let _ = reply.send(crate::checkpoint::ask(&me, ask).await);
                });
                return;
            }
            Msg::Metrics { reply } => {
                let _ = reply.send(crate::metrics::gather(&self.state.borrow()));
                return;
            }
            Msg::SyncLog { reply } => {
                let log = self.state.borrow().ks.log().cloned();
                strand_engine::runtime::spawn(async move {
                    let synced = match log {
                        Some(log) => log.sync_all().await.map_err(|e| e.to_string()),
                        None => Ok(()),
                    };
                    let _ = reply.send(synced);
                });
                return;
            }
            Msg::Tx { tx, reply } => {
                let me = self.clone();
                strand_engine::runtime::spawn(async move {
                    let _ = reply.send(me.exec_tx(&tx).await);
                });
                return;
            }
            Msg::Lock { .. } | Msg::Apply { .. } | Msg::Release { .. } => unreachable!("handled by through_locks"),
        };
        self.state.borrow_mut().stats.remote_batches += 1;
        let before = self.last_lsn();
        let replies: Vec<Reply> = match &cmds[..] {
            [c] if c.blocking => match c.args.with(|a| self.exec_blocking(c.handler, c.call, c.db as usize, c.caller, a)) {
                Ok(r) => {
                    self.serve_ready();
                    vec![r]
                }
                Err(rx) => {
                    strand_engine::runtime::spawn(async move {
                        let mut reply = reply;
                        let cancel = reply.cancellation();
                        futures::pin_mut!(cancel);
                        if let futures::future::Either::Left((Ok(r), _)) = futures::future::select(rx, cancel).await {
                            let _ = reply.send(vec![r]);
                        }
                    });
                    return;
                }
            },
            _ => {
                self.run_of_commands(true);
                let replies = cmds.iter().map(|c| c.args.with(|a| self.exec(c.handler, c.call, c.db as usize, c.caller, a))).collect();
                self.run_of_commands(false);
                replies
            }
        };
        let after = self.last_lsn();
        let wait = self.state.borrow().ks.log().is_some_and(|l| l.must_wait());
        if after > before && wait {
            let me = self.clone();
            strand_engine::runtime::spawn(async move {
                let replies = match me.wait_durable(after).await {
                    Ok(()) => replies,
                    Err(e) => replies.into_iter().map(|_| Reply::error(e.clone())).collect(),
                };
                let _ = reply.send(replies);
            });
        } else {
            let _ = reply.send(replies);
        }
    }
}

impl Shard {
    /// The cold keys a batch from another shard names, by database.
    fn cold_keys_of(&self, cmds: &[RemoteCmd]) -> Vec<(usize, ColdKeys)> {
        let st = self.state.borrow();
        let mut out: Vec<(usize, ColdKeys)> = Vec::new();
        for c in cmds {
            let (Call::Command(id) | Call::Part(id)) = c.call else { continue };
            let Some(cmd) = crate::command::table::by_id(id) else { continue };
            let keys = c.args.with(|a| crate::tiering::cold_keys(&st, cmd, c.db as usize, a));
            if !keys.is_empty() {
                out.push((c.db as usize, keys));
            }
        }
        out
    }
}

/// Keys and where their cold values are.
type ColdKeys = Vec<(Vec<u8>, strand_engine::tier::ColdRef)>;

/// Where a part of a command's reply is.
enum Part {
    Ready(Reply),
    Remote { shard: usize, index: usize },
}

/// How a split command's parts are joined: the merge and, per part, the key indexes it holds.
type Join = Option<(Merge, Vec<Vec<usize>>)>;

/// A command's parts: one, held inline (nearly every command: no
/// allocation per command), or one per shard for a split or all-shard command.
enum Parts {
    One(Part),
    Many(Vec<Part>),
}

struct Slot {
    proto: Protocol,
    parts: Parts,
    merge: Join,
}

/// The keys of a split command that one shard owns.
pub struct Group<'a> {
    /// The shard.
    pub shard: usize,
    /// The command's name and this shard's keys (each with the values that follow it).
    pub args: Vec<&'a [u8]>,
    /// Which of the command's keys these are (0 = its first key).
    pub positions: Vec<usize>,
}

/// Splits a command's keys by owner shard, in order of first appearance.
pub fn split_keys<'a>(cmd: &Command, args: &[&'a [u8]], owner: &dyn Fn(&[u8]) -> usize) -> Vec<Group<'a>> {
    let step = cmd.step.max(1) as usize;
    let mut groups: Vec<Group<'a>> = Vec::new();
    for (n, i) in cmd.keys_of(args).enumerate() {
        let to = owner(args[i]);
        let g = match groups.iter().position(|g| g.shard == to) {
            Some(p) => &mut groups[p],
            None => {
                groups.push(Group { shard: to, args: vec![args[0]], positions: Vec::new() });
                let last = groups.len() - 1;
                &mut groups[last]
            }
        };
        g.args.extend_from_slice(&args[i..(i + step).min(args.len())]);
        g.positions.push(n);
    }
    groups
}

/// Whether a command whose keys come in groups of `step` (MSET, TS.MADD)
/// ends with a partial group. Such a command is not split across shards:
/// one shard runs it whole and its handler answers the arity error before
/// anything is written, where split parts would write on the other shards.
pub fn uneven(cmd: &Command, args: &[&[u8]]) -> bool {
    let step = cmd.step.max(1) as usize;
    step > 1 && !args.len().saturating_sub(cmd.first_key.max(0) as usize).is_multiple_of(step)
}

/// The commands of one read, in order, and the messages for other shards.
pub struct Batch {
    slots: Vec<Slot>,
    remote: Vec<Vec<RemoteCmd>>,
    lsn_before: u64,
    target: Target,
}

/// Where the keyed commands of a batch went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// No keyed command yet.
    None,
    /// All to this shard.
    One(usize),
    /// To several shards, or to all.
    Many,
}

impl Batch {
    /// An empty batch on `shard`.
    pub fn new(shard: &Shard) -> Batch {
        Batch {
            slots: Vec::new(),
            remote: (0..shard.outbox.shards()).map(|_| Vec::new()).collect(),
            lsn_before: shard.last_lsn(),
            target: Target::None,
        }
    }

    /// Where the keyed commands went so far.
    pub fn target(&self) -> Target {
        self.target
    }

    /// Notes that a command of the batch goes to shard `to`.
    pub fn aim(&mut self, to: usize) {
        self.target = match self.target {
            Target::None => Target::One(to),
            Target::One(s) if s == to => Target::One(s),
            _ => Target::Many,
        };
    }

    /// Commands in the batch.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Adds a reply that is already known (errors, connection commands).
    pub fn push_reply(&mut self, reply: Reply, proto: Protocol) {
        self.slots.push(Slot { proto, parts: Parts::One(Part::Ready(reply)), merge: None });
    }

    #[allow(clippy::too_many_arguments)]
    fn part(&mut self, shard: &Shard, to: usize, handler: ShardFn, call: Call, db: usize, caller: u64, args: &[&[u8]]) -> Part {
        self.aim(to);
        if to == shard.id {
            Part::Ready(shard.exec(handler, call, db, caller, args))
        } else {
            let cmds = &mut self.remote[to];
            cmds.push(RemoteCmd { handler, call, db: db as u8, caller, args: OwnedArgs::new(args), blocking: false });
            Part::Remote { shard: to, index: cmds.len() - 1 }
        }
    }

    /// Routes one command (arity and auth already checked); `id` is its [`CmdId`].
    #[allow(clippy::too_many_arguments)]
    pub fn route(&mut self, shard: &Shard, cmd: &Command, id: CmdId, args: &[&[u8]], db: usize, caller: u64, proto: Protocol) {
        let nshards = shard.outbox.shards();
        let owner = |k: &[u8]| shard.shared.slots.shard_of(k);
        let call = Call::Command(id);
        let (parts, merge) = match cmd.route {
            Route::Conn(_) | Route::Async(_) => unreachable!("connection commands are run by the connection"),
            Route::Local(h) => (Parts::One(Part::Ready(shard.exec(h, call, db, caller, args))), None),
            Route::Key(h) => {
                let mut keys = cmd.keys_of(args).map(|i| owner(args[i]));
                let to = keys.next().unwrap_or(shard.id);
                if keys.any(|s| s != to) {
                    let refused = Reply::error(err::CROSSSLOT);
                    shard.reject(id, &refused);
                    (Parts::One(Part::Ready(refused)), None)
                } else {
                    (Parts::One(self.part(shard, to, h, call, db, caller, args)), None)
                }
            }
            Route::Cursor(h) => {
                let cursor = args.get(1).and_then(|c| std::str::from_utf8(c).ok()).and_then(|c| c.parse::<u64>().ok());
                match cursor {
                    Some(c) if ((c & 0xff) as usize) < nshards => {
                        (Parts::One(self.part(shard, (c & 0xff) as usize, h, call, db, caller, args)), None)
                    }
                    _ => (Parts::One(Part::Ready(Reply::error("ERR invalid cursor"))), None),
                }
            }
            Route::All(h, merge) => {
                self.target = Target::Many;
                // The part on this shard counts the call; the others add their time.
                let parts = (0..nshards)
                    .map(|s| {
                        let call = if s == shard.id { call } else { Call::Part(id) };
                        self.part(shard, s, h, call, db, caller, args)
                    })
                    .collect();
                (Parts::Many(parts), Some((merge, Vec::new())))
            }
            Route::Split(h, merge) => self.split(shard, cmd, id, args, db, caller, h, merge, &owner),
        };
        self.slots.push(Slot { proto, parts, merge });
    }

    #[allow(clippy::too_many_arguments)]
    fn split(
        &mut self,
        shard: &Shard,
        cmd: &Command,
        id: CmdId,
        args: &[&[u8]],
        db: usize,
        caller: u64,
        h: ShardFn,
        merge: Merge,
        owner: &dyn Fn(&[u8]) -> usize,
    ) -> (Parts, Join) {
        let groups = split_keys(cmd, args, owner);
        if groups.len() <= 1 || uneven(cmd, args) {
            let to = groups.first().map_or(shard.id, |g| g.shard);
            return (Parts::One(self.part(shard, to, h, Call::Command(id), db, caller, args)), None);
        }
        let mut parts = Vec::with_capacity(groups.len());
        let mut positions = Vec::with_capacity(groups.len());
        for (n, g) in groups.into_iter().enumerate() {
            // The first part counts the call; the others add their time.
            let call = if n == 0 { Call::Command(id) } else { Call::Part(id) };
            parts.push(self.part(shard, g.shard, h, call, db, caller, &g.args));
            positions.push(g.positions);
        }
        (Parts::Many(parts), Some((merge, positions)))
    }

    /// Sends the remote parts, waits for every reply and for durability,
    /// then encodes all replies in order into `out`.
    pub async fn finish(mut self, shard: &Rc<Shard>, out: &mut Vec<u8>) {
        let mut waiting = Vec::new();
        let mut answers: Vec<Vec<Option<Reply>>> = (0..self.remote.len()).map(|_| Vec::new()).collect();
        for (to, cmds) in self.remote.iter_mut().enumerate() {
            if cmds.is_empty() {
                continue;
            }
            // A shard running a script past busy-reply-threshold serves nothing until it ends: answer BUSY now.
            if crate::scripting::is_busy(&shard.shared, to) {
                answers[to] = cmds.drain(..).map(|_| Some(Reply::error(crate::scripting::BUSY))).collect();
                continue;
            }
            let (tx, rx) = oneshot::channel();
            shard.outbox.send(to, Msg::Batch { cmds: std::mem::take(cmds), reply: tx }).await;
            waiting.push((to, rx));
        }
        shard.state.borrow_mut().stats.sent_batches += waiting.len() as u64;
        for (to, rx) in waiting {
            answers[to] = match rx.await {
                Ok(replies) => replies.into_iter().map(Some).collect(),
                Err(_) => Vec::new(),
            };
        }
        let after = shard.last_lsn();
        let durable = if after > self.lsn_before { shard.wait_durable(after).await } else { Ok(()) };
        for slot in self.slots {
            let mut answer = |p: Part| match p {
                Part::Ready(r) => r,
                Part::Remote { shard, index } => answers[shard]
                    .get_mut(index)
                    .and_then(Option::take)
                    .unwrap_or_else(|| Reply::error(format!("ERR shard {shard} did not answer"))),
            };
            let reply = match (slot.parts, slot.merge) {
                (Parts::One(p), None) => answer(p),
                (Parts::One(p), Some((merge, positions))) => merge_parts(merge, vec![answer(p)], &positions),
                (Parts::Many(ps), None) => ps.into_iter().map(answer).next().unwrap_or(Reply::Nil),
                (Parts::Many(ps), Some((merge, positions))) => merge_parts(merge, ps.into_iter().map(answer).collect(), &positions),
            };
            let reply = match (&durable, reply.is_error()) {
                (Err(e), false) => Reply::error(e.clone()),
                _ => reply,
            };
            crate::resp::encode(&reply, slot.proto, out);
        }
    }
}

/// Starts a command that may block (BLPOP ...) on the shard that owns its
/// keys; the future answers when it is served or times out. Dropping the
/// future (the client went away) cancels the wait without losing anything.
pub fn blocking(
    shard: &Rc<Shard>,
    cmd: &Command,
    args: &[&[u8]],
    db: usize,
    caller: u64,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Reply>>> {
    let ready = |r: Reply| -> std::pin::Pin<Box<dyn std::future::Future<Output = Reply>>> { Box::pin(std::future::ready(r)) };
    let Route::Key(handler) = cmd.route else {
        return ready(Reply::error(format!("ERR '{}' cannot block", cmd.name)));
    };
    let call = crate::command::table::id_of(cmd.name).map_or(Call::Untracked, Call::Command);
    let mut owners = cmd.keys_of(args).map(|i| shard.shared.slots.shard_of(args[i]));
    let to = owners.next().unwrap_or(shard.id);
    if owners.any(|s| s != to) {
        return ready(Reply::error(err::CROSSSLOT));
    }
    blocking_on(shard, to, handler, call, args, db, caller)
}

/// Runs one part of a command on shard `to` as a client's command runs
/// there: it waits while a cross-shard transaction holds one of its keys,
/// reads cold keys back, and answers once its writes are durable when the
/// log says replies wait. `handler` runs with `args`, whose keys are found
/// as command `id`'s; its time counts as a part of that command.
#[allow(clippy::too_many_arguments)]
pub async fn run_part(shard: &Rc<Shard>, to: usize, handler: ShardFn, id: CmdId, db: usize, caller: u64, args: &[&[u8]]) -> Reply {
    if to != shard.id {
        if crate::scripting::is_busy(&shard.shared, to) {
            return Reply::error(crate::scripting::BUSY);
        }
        let cmd = RemoteCmd { handler, call: Call::Part(id), db: db as u8, caller, args: OwnedArgs::new(args), blocking: false };
        return send_one(shard, to, cmd).await;
    }
    if let Some(cmd) = crate::command::table::by_id(id) {
        shard.wait_unlocked(cmd, db, args).await;
    }
    let before = shard.last_lsn();
    let reply = shard.exec(handler, Call::Part(id), db, caller, args);
    let after = shard.last_lsn();
    if after > before && !reply.is_error() {
        if let Err(e) = shard.wait_durable(after).await {
            return Reply::error(e);
        }
    }
    reply
}

/// Sends one command to shard `to` and waits for its reply.
pub async fn send_one(shard: &Shard, to: usize, cmd: RemoteCmd) -> Reply {
    let (tx, rx) = oneshot::channel();
    shard.outbox.send(to, Msg::Batch { cmds: vec![cmd], reply: tx }).await;
    rx.await.ok().and_then(|v| v.into_iter().next()).unwrap_or_else(|| Reply::error(format!("ERR shard {to} did not answer")))
}

/// [`blocking`] with its handler, run on shard `to`.
pub fn blocking_on(
    shard: &Rc<Shard>,
    to: usize,
    handler: ShardFn,
    call: Call,
    args: &[&[u8]],
    db: usize,
    caller: u64,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Reply>>> {
    let ready = |r: Reply| -> std::pin::Pin<Box<dyn std::future::Future<Output = Reply>>> { Box::pin(std::future::ready(r)) };
    if to == shard.id {
        let before = shard.last_lsn();
        return match shard.exec_blocking(handler, call, db, caller, args) {
            Ok(reply) => {
                shard.serve_ready();
                let after = shard.last_lsn();
                let me = shard.clone();
                Box::pin(async move {
                    match (after > before, reply.is_error()) {
                        (true, false) => me.wait_durable(after).await.map_or_else(Reply::error, |()| reply),
                        _ => reply,
                    }
                })
            }
            Err(rx) => Box::pin(async move { rx.await.unwrap_or_else(|_| Reply::error("ERR blocked command was dropped")) }),
        };
    }
    if crate::scripting::is_busy(&shard.shared, to) {
        return ready(Reply::error(crate::scripting::BUSY));
    }
    let (tx, rx) = oneshot::channel();
    let remote = RemoteCmd { handler, call, db: db as u8, caller, args: OwnedArgs::new(args), blocking: true };
    let me = shard.clone();
    Box::pin(async move {
        me.outbox.send(to, Msg::Batch { cmds: vec![remote], reply: tx }).await;
        me.state.borrow_mut().stats.sent_batches += 1;
        rx.await.ok().and_then(|v| v.into_iter().next()).unwrap_or_else(|| Reply::error(format!("ERR shard {to} did not answer")))
    })
}

/// Joins the replies of a command's parts.
pub fn merge_parts(merge: Merge, parts: Vec<Reply>, positions: &[Vec<usize>]) -> Reply {
    if let Some(e) = parts.iter().find(|p| p.is_error()) {
        return e.clone();
    }
    match merge {
        Merge::KeyedArray => {
            let total = positions.iter().map(Vec::len).sum();
            let mut out = vec![Reply::Nil; total];
            for (part, pos) in parts.into_iter().zip(positions) {
                if let Reply::Array(items) = part {
                    for (item, &p) in items.into_iter().zip(pos) {
                        out[p] = item;
                    }
                }
            }
            Reply::Array(out)
        }
        Merge::SumInt => Reply::Int(parts.iter().map(|p| if let Reply::Int(n) = p { *n } else { 0 }).sum()),
        Merge::FirstError => parts.into_iter().next().unwrap_or(Reply::Ok),
        Merge::ConcatArray => {
            Reply::Array(parts.into_iter().flat_map(|p| if let Reply::Array(items) = p { items } else { Vec::new() }).collect())
        }
        Merge::AnyNonNil => {
            let found: Vec<Reply> = parts.into_iter().filter(|p| !matches!(p, Reply::Nil)).collect();
            if found.is_empty() {
                Reply::Nil
            } else {
                let i = rand::random::<usize>() % found.len();
                found.into_iter().nth(i).unwrap_or(Reply::Nil)
            }
        }
        Merge::Custom(f) => f(parts),
    }
}
