//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! While a connection is in MULTI, the commands it sends are checked
//! (name, arity, auth) and queued, not run; an error at queue time makes
//! EXEC answer EXECABORT. When the queued commands and the WATCHed keys all
//! live on one shard, the transaction travels there as one message
//! ([`Exec`]), which checks the watched keys' versions and runs the commands
//! back to back, with nothing in between, and logs their writes as one GROUP
//! record, so a crash keeps all of it or none. When they span shards, EXEC
//! hands the commands, grouped per shard, to the [`crate::coordinator`],
//! which locks their keys on every shard in order and makes the whole
//! atomic, also across a crash. A command whose own keys span shards is
//! split like the dispatcher splits it (MGET, DEL ..., and MSET into
//! per-shard MSETs); when one cannot be split (RENAME, LMOVE, SUNIONSTORE,
//! an EVAL ...), the whole transaction runs on copies of its keys in a
//! scratch shard and writes back what changed ([`crate::gather::exec`]).
//!
//! WATCH registers each key on its owner shard, which bumps the key's
//! version on every write and on expiry; EXEC aborts (null reply) when a
//! version moved or a key that existed at WATCH has expired since.

use std::rc::Rc;

use futures::channel::oneshot;

use crate::command::{err, flags, Command, Ctx, Merge, Route, ShardFn};
use crate::conn::{ConnCtx, ConnState};
use crate::coordinator;
use crate::dispatch::{Msg, OwnedArgs, RemoteCmd, Shard};
use crate::reply::Reply;

/// Commands queued since MULTI.
#[derive(Default)]
pub struct Multi {
    /// The queue, in order.
    queued: Vec<OwnedArgs>,
    /// An error happened at queue time: EXEC answers EXECABORT.
    pub dirty: bool,
}

impl Multi {
    /// Queues a command.
    pub fn push(&mut self, args: &[&[u8]]) {
        self.queued.push(OwnedArgs::new(args));
    }
}

/// A WATCHed key, as its shard saw it at WATCH.
#[derive(Clone, Debug)]
pub struct Watched {
    /// Owner shard.
    pub shard: usize,
    /// Database.
    pub db: u8,
    /// Key.
    pub key: Vec<u8>,
    /// The key's version at WATCH.
    pub version: u64,
    /// Whether it existed at WATCH.
    pub existed: bool,
}

/// A transaction as its shard runs it.
pub struct Exec {
    /// The commands.
    pub cmds: Vec<RemoteCmd>,
    /// Keys to check first.
    pub watches: Vec<Watched>,
    /// Whether a command may add data (DENYOOM): refused whole when the shard is out of memory.
    pub denyoom: bool,
}

/// What EXEC answers: every reply, None if a watched key changed, Err when refused whole.
pub type Outcome = Result<Option<Vec<Reply>>, Reply>;

impl Shard {
    /// Runs a transaction whose keys all live on this shard: None if a
    /// watched key changed, else every reply; Err (EXECABORT) if it may add
    /// data and the shard is out of memory.
    pub async fn exec_tx(&self, tx: &Exec) -> Outcome {
        if !self.watches_hold(&tx.watches) {
            return Ok(None);
        }
        if let Some(refused) = crate::oom::admit_exec(&mut self.state.borrow_mut(), tx.denyoom) {
            return Err(refused);
        }
        let before = self.last_lsn();
        let mut replies = self.run_grouped(&tx.cmds, None);
        self.serve_ready();
        let after = self.last_lsn();
        if after > before {
            if let Err(e) = self.wait_durable(after).await {
                replies = vec![Reply::error(e); replies.len()];
            }
        }
        Ok(Some(replies))
    }

    /// Checks the WATCHed keys of `watches` that live here (their versions
    /// did not move, and a key that existed still does), then drops them.
    pub(crate) fn watches_hold(&self, watches: &[Watched]) -> bool {
        let clean = {
            let st = self.state.borrow();
            let now = st.ks.now();
            watches
                .iter()
                .filter(|w| w.shard == self.id)
                .all(|w| st.ks.version(w.db, &w.key) == w.version && (!w.existed || st.ks.contains(w.db as usize, &w.key, now)))
        };
        self.drop_watches(watches);
        clean
    }

    /// Runs commands back to back and logs their writes as one GROUP record
    /// (a TX record with `tag`, for a part of a cross-shard transaction).
    pub(crate) fn run_grouped(&self, cmds: &[RemoteCmd], tag: Option<&strand_engine::keyspace::tx::TxTag>) -> Vec<Reply> {
        // A log that refuses writes still lets a read-only transaction run; its writes then fail one by one.
        let grouped = self.state.borrow_mut().ks.begin_group().is_ok();
        if let (true, Some(tag)) = (grouped, tag) {
            self.state.borrow_mut().ks.tag_group(tag.clone());
        }
        // Every command of the transaction sees one time, as in Redis: a
        // deadline (a TTL, a queue lease) cannot pass between two of them.
        {
            let mut st = self.state.borrow_mut();
            st.frozen_now = Some(st.ks.now());
        }
        let mut replies: Vec<Reply> =
            cmds.iter().map(|c| c.args.with(|a| self.exec_with(c.handler, c.call, c.db as usize, c.caller, a, false).0)).collect();
        self.state.borrow_mut().frozen_now = None;
        if grouped {
            let ended = {
                let mut st = self.state.borrow_mut();
                let now = st.ks.now();
                st.ks.end_group(now)
            };
            if let Err(e) = ended {
                replies = vec![Reply::error(e.to_string()); replies.len()];
            }
        }
        replies
    }

    /// Drops the WATCHes of `watches` that live on this shard.
    fn drop_watches(&self, watches: &[Watched]) {
        let mut st = self.state.borrow_mut();
        for w in watches.iter().filter(|w| w.shard == self.id) {
            st.ks.unwatch(w.db, &w.key);
        }
    }
}

/// Runs one handler on shard `to` (here, or one hop away) and returns its reply.
pub async fn run_on(shard: &Rc<Shard>, to: usize, handler: ShardFn, db: usize, caller: u64, args: &[&[u8]]) -> Reply {
    if to == shard.id {
        return shard.exec(handler, crate::stats::Call::Untracked, db, caller, args);
    }
    let cmd = RemoteCmd { handler, call: crate::stats::Call::Untracked, db: db as u8, caller, args: OwnedArgs::new(args), blocking: false };
    crate::dispatch::send_one(shard, to, cmd).await
}

/// [MULTI](https://redis.io/commands/multi/): starts queueing.
pub fn multi(c: &mut ConnCtx<'_>, _: &[&[u8]]) -> Reply {
    if c.conn.multi.is_some() {
        return Reply::error("ERR MULTI calls can not be nested");
    }
    c.conn.multi = Some(Multi::default());
    Reply::Ok
}

/// [DISCARD](https://redis.io/commands/discard/): drops the queue and the WATCHes.
pub fn discard(c: &mut ConnCtx<'_>, _: &[&[u8]]) -> Reply {
    if c.conn.multi.take().is_none() {
        return Reply::error("ERR DISCARD without MULTI");
    }
    c.conn.unwatch_later = true;
    Reply::Ok
}

/// Shard side of WATCH: registers each key and answers [version, existed] per key.
fn watch_keys(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let db = ctx.db as u8;
    let now = ctx.now;
    let replies = args[1..]
        .iter()
        .map(|k| {
            let existed = ctx.shard.ks.contains(db as usize, k, now);
            let version = ctx.shard.ks.watch(db, k);
            Reply::Array(vec![Reply::Int(version as i64), Reply::Int(existed as i64)])
        })
        .collect();
    Reply::Array(replies)
}

/// Shard side of UNWATCH: drops one WATCH per key given.
fn unwatch_keys(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    for k in &args[1..] {
        ctx.shard.ks.unwatch(ctx.db as u8, k);
    }
    Reply::Ok
}

/// [WATCH](https://redis.io/commands/watch/): registers keys on their shards.
pub async fn watch(shard: &Rc<Shard>, st: &mut ConnState, args: &[&[u8]]) -> Reply {
    if st.multi.is_some() {
        return Reply::error("ERR WATCH inside MULTI is not allowed");
    }
    let mut by_shard: Vec<(usize, Vec<&[u8]>)> = Vec::new();
    for k in &args[1..] {
        let to = shard.shared.slots.shard_of(k);
        match by_shard.iter_mut().find(|(s, _)| *s == to) {
            Some((_, keys)) => keys.push(k),
            None => by_shard.push((to, vec![b"watch", k])),
        }
    }
    for (to, keys) in by_shard {
        let reply = run_on(shard, to, watch_keys, st.db, st.id, &keys).await;
        let Reply::Array(items) = reply else { return reply };
        for (k, item) in keys[1..].iter().zip(items) {
            if let Reply::Array(v) = item {
                if let [Reply::Int(version), Reply::Int(existed)] = v[..] {
                    st.watched.push(Watched {
                        shard: to,
                        db: st.db as u8,
                        key: k.to_vec(),
                        version: version as u64,
                        existed: existed != 0,
                    });
                }
            }
        }
    }
    Reply::Ok
}

/// Drops every WATCH of the connection (UNWATCH, EXEC, DISCARD, close).
pub async fn unwatch_all(shard: &Rc<Shard>, st: &mut ConnState) {
    st.unwatch_later = false;
    let watched = std::mem::take(&mut st.watched);
    let mut shards: Vec<usize> = watched.iter().map(|w| w.shard).collect();
    shards.sort_unstable();
    shards.dedup();
    for to in shards {
        for db in 0..strand_engine::keyspace::DATABASES as u8 {
            let mut args: Vec<&[u8]> = vec![b"unwatch"];
            args.extend(watched.iter().filter(|w| w.shard == to && w.db == db).map(|w| &w.key[..]));
            if args.len() > 1 {
                run_on(shard, to, unwatch_keys, db as usize, st.id, &args).await;
            }
        }
    }
}

/// Where one queued command's reply comes from.
enum Step {
    /// Answered on the connection already (SELECT, PING's conn-level kin ...).
    Done(Reply),
    /// The queued commands (indexes into the list sent to shards) it became;
    /// several when its keys span shards, then merged.
    Queued(Vec<usize>, Option<(Merge, Vec<Vec<usize>>)>),
}

/// A queued command bound for a shard (None: any shard will do).
struct Bound {
    to: Option<usize>,
    cmd: RemoteCmd,
    denyoom: bool,
    /// The keys it names, for the locks of a cross-shard transaction.
    keys: Vec<coordinator::LockKey>,
    /// Whether it may write.
    writes: bool,
    /// Its name, for [`crate::gather::exec::takes_part`].
    name: &'static str,
}

/// [EXEC](https://redis.io/commands/exec/): runs the queue atomically, on one
/// shard or, through the [`crate::coordinator`], on every shard it touches.
pub async fn exec(shard: &Rc<Shard>, st: &mut ConnState) -> Reply {
    let Some(multi) = st.multi.take() else {
        return Reply::error("ERR EXEC without MULTI");
    };
    if multi.dirty {
        unwatch_all(shard, st).await;
        return Reply::error("EXECABORT Transaction discarded because of previous errors.");
    }
    let mut steps = Vec::with_capacity(multi.queued.len());
    let mut bound: Vec<Bound> = Vec::new();
    let mut refusal = None;
    // A command whose keys span shards and cannot be split: the transaction runs gathered.
    let mut gather = false;
    for q in &multi.queued {
        let step = q.with(|args| {
            let Some((id, cmd)) = crate::command::table::lookup_id(args) else {
                return Step::Done(crate::conn::unknown_command(args));
            };
            let call = crate::stats::Call::Command(id);
            let denyoom = cmd.flags & flags::DENYOOM != 0;
            let writes = cmd.flags & flags::WRITE != 0;
            let (db, caller) = (st.db as u8, st.id);
            let mut bind = |to: Option<usize>, handler: ShardFn, call, args: OwnedArgs| {
                let keys = args.with(|a| coordinator::keys_of(cmd, db, a));
                let cmd_ = RemoteCmd { handler, call, db, caller, args, blocking: false };
                bound.push(Bound { to, cmd: cmd_, denyoom, keys, writes, name: cmd.name });
                bound.len() - 1
            };
            match placement(shard, cmd, args) {
                Placement::Conn(f) => Step::Done(f(&mut ConnCtx { conn: st, shard }, args)),
                Placement::Refused(r) => {
                    refusal.get_or_insert(r);
                    Step::Done(Reply::Nil)
                }
                Placement::Shard(handler, to) => Step::Queued(vec![bind(to, handler, call, q.clone())], None),
                Placement::Across(handler) => {
                    gather = true;
                    Step::Queued(vec![bind(None, handler, call, q.clone())], None)
                }
                Placement::Split(handler, merge, groups) => {
                    let mut at = Vec::with_capacity(groups.len());
                    let mut positions = Vec::with_capacity(groups.len());
                    for (n, (to, part, pos)) in groups.into_iter().enumerate() {
                        // The first part counts the call; the others add their time.
                        let call = if n == 0 { call } else { crate::stats::Call::Part(id) };
                        at.push(bind(Some(to), handler, call, part));
                        positions.push(pos);
                    }
                    Step::Queued(at, Some((merge, positions)))
                }
            }
        });
        steps.push(step);
    }
    if gather && bound.iter().any(|b| !b.cmd.args.with(|a| crate::gather::exec::takes_part(b.name, a, !b.keys.is_empty()))) {
        refusal.get_or_insert(Reply::error(err::CROSSSLOT_TX));
    }
    if let Some(r) = refusal {
        unwatch_all(shard, st).await;
        return r;
    }
    let watches = std::mem::take(&mut st.watched);
    if gather {
        let cmds = bound
            .into_iter()
            .map(|b| crate::gather::exec::Queued { cmd: b.cmd, keys: b.keys, writes: b.writes, denyoom: b.denyoom })
            .collect();
        let outcome = crate::gather::exec::run(shard, cmds, watches).await;
        return answer(steps, outcome);
    }
    let mut targets: Vec<usize> = watches.iter().map(|w| w.shard).chain(bound.iter().filter_map(|b| b.to)).collect();
    targets.sort_unstable();
    targets.dedup();
    let replies = match &targets[..] {
        [] | [_] => exec_on_one(shard, targets.first().copied().unwrap_or(shard.id), bound, watches).await,
        _ => exec_across(shard, &targets, bound, watches).await,
    };
    answer(steps, replies)
}

/// EXEC's reply: each step's reply from the transaction's, in queue order.
fn answer(steps: Vec<Step>, outcome: Outcome) -> Reply {
    let mut replies = match outcome {
        Ok(Some(replies)) => replies,
        Ok(None) => return Reply::NilArray,
        Err(refused) => return refused,
    };
    let mut take = |i: usize| {
        replies.get_mut(i).map(|r| std::mem::replace(r, Reply::Nil)).unwrap_or_else(|| Reply::error("ERR transaction reply missing"))
    };
    Reply::Array(
        steps
            .into_iter()
            .map(|s| match s {
                Step::Done(r) => r,
                Step::Queued(at, None) => at.first().map_or(Reply::Nil, |&i| take(i)),
                Step::Queued(at, Some((merge, positions))) => {
                    crate::dispatch::merge_parts(merge, at.into_iter().map(&mut take).collect(), &positions)
                }
            })
            .collect(),
    )
}

/// Runs a transaction whose keys all live on shard `to`, as one message.
async fn exec_on_one(shard: &Rc<Shard>, to: usize, bound: Vec<Bound>, watches: Vec<Watched>) -> Outcome {
    let denyoom = bound.iter().any(|b| b.denyoom);
    if to == shard.id {
        // Keys a cross-shard transaction has locked here are waited for.
        while bound.iter().any(|b| b.keys.iter().any(|(db, k)| shard.names_locked_key(*db, k))) {
            shard.wait_release().await;
        }
    }
    let tx = Exec { cmds: bound.into_iter().map(|b| b.cmd).collect(), watches, denyoom };
    if to == shard.id {
        return shard.exec_tx(&tx).await;
    }
    let (reply, rx) = oneshot::channel();
    shard.outbox.send(to, Msg::Tx { tx, reply }).await;
    rx.await.unwrap_or_else(|_| Err(Reply::error(format!("ERR shard {to} did not answer"))))
}

/// Runs a transaction over several shards through the coordinator; replies in queue order.
async fn exec_across(shard: &Rc<Shard>, targets: &[usize], bound: Vec<Bound>, watches: Vec<Watched>) -> Outcome {
    // Commands that may run anywhere (TIME, ECHO ...) run here if this shard takes part.
    let anywhere = if targets.contains(&shard.id) { shard.id } else { targets[0] };
    let mut parts: Vec<coordinator::Participant> = targets
        .iter()
        .map(|&t| coordinator::Participant {
            shard: t,
            part: coordinator::Part {
                keys: Vec::new(),
                shared: false,
                watches: watches.iter().filter(|w| w.shard == t).cloned().collect(),
                denyoom: false,
                checks: Vec::new(),
            },
            cmds: Vec::new(),
            writes: false,
        })
        .collect();
    let mut at = Vec::with_capacity(bound.len());
    for b in bound {
        let t = b.to.unwrap_or(anywhere);
        let n = targets.iter().position(|&x| x == t).unwrap_or(0);
        let p = &mut parts[n];
        p.part.denyoom |= b.denyoom;
        p.writes |= b.writes;
        p.part.keys.extend(b.keys);
        at.push((n, p.cmds.len()));
        p.cmds.push(b.cmd);
    }
    match coordinator::run(shard, parts, |_| true).await {
        coordinator::Outcome::Done(mut per_shard) => Ok(Some(
            at.into_iter()
                .map(|(n, k)| {
                    per_shard.get_mut(n).and_then(|r| r.get_mut(k)).map(|r| std::mem::replace(r, Reply::Nil)).unwrap_or(Reply::Nil)
                })
                .collect(),
        )),
        coordinator::Outcome::Dirty => Ok(None),
        coordinator::Outcome::Full => Err(crate::oom::exec_abort()),
        coordinator::Outcome::Refused(r) => Err(r),
        coordinator::Outcome::Declined => Err(Reply::error("ERR transaction declined")),
    }
}

enum Placement {
    Conn(crate::conn::ConnFn),
    /// The handler and the shard its keys need (None: any).
    Shard(ShardFn, Option<usize>),
    /// Keys on several shards, split as the dispatcher splits them; the parts' replies are merged.
    Split(ShardFn, Merge, Vec<(usize, OwnedArgs, Vec<usize>)>),
    /// Keys on several shards that cannot be split: the transaction runs gathered.
    Across(ShardFn),
    Refused(Reply),
}

/// Where a queued command can run inside a transaction.
fn placement(shard: &Shard, cmd: &Command, args: &[&[u8]]) -> Placement {
    let owner = |k: &[u8]| shard.shared.slots.shard_of(k);
    let spans = || {
        let mut owners = cmd.keys_of(args).map(|i| owner(args[i]));
        let first = owners.next();
        (first, owners.any(|o| Some(o) != first))
    };
    let split = |h: ShardFn, merge: Merge| {
        let groups =
            crate::dispatch::split_keys(cmd, args, &owner).into_iter().map(|g| (g.shard, OwnedArgs::new(&g.args), g.positions)).collect();
        Placement::Split(h, merge, groups)
    };
    match cmd.route {
        Route::Conn(f) => Placement::Conn(f),
        // A partial last group: one shard answers the arity error, nothing is written.
        Route::Split(h, _) | Route::Key(h) if crate::dispatch::uneven(cmd, args) => Placement::Shard(h, spans().0),
        Route::Split(h, merge) => match spans() {
            (_, true) => split(h, merge),
            (first, false) => Placement::Shard(h, first),
        },
        Route::Key(h) => match spans() {
            // MSET's parts are MSETs, each atomic on its shard, and the transaction makes them one.
            (_, true) if cmd.name == "mset" => split(h, Merge::FirstError),
            (_, true) => Placement::Across(h),
            (first, false) => Placement::Shard(h, first),
        },
        Route::Local(h) => Placement::Shard(h, None),
        Route::Cursor(h) => {
            let c = std::str::from_utf8(args.get(1).copied().unwrap_or_default()).ok().and_then(|c| c.parse::<u64>().ok());
            Placement::Shard(h, c.map(|c| (c & 0xff) as usize))
        }
        Route::All(h, _) if shard.outbox.shards() == 1 => Placement::Shard(h, Some(0)),
        Route::All(..) => {
            Placement::Refused(Reply::error("ERR this command runs on every shard and cannot be part of a transaction when --shards > 1"))
        }
        Route::Async(_) => Placement::Refused(Reply::error("ERR this command is not allowed inside a transaction")),
    }
}
