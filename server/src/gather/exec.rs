//! MULTI/EXEC transactions that hold a command whose own keys live on
//! several shards and cannot be split per shard: RENAME, COPY, LMOVE,
//! SMOVE, the set algebra's *STORE forms, an EVAL over such keys, and the
//! like. (Transactions whose commands each stay on one shard, or split like
//! MGET and MSET, run in place: [`crate::transaction`].)
//!
//! The whole transaction runs as one cross-shard transaction of the
//! [`crate::coordinator`], as a script over several shards does
//! ([`super::script`]):
//!
//! 1. Every key a queued command names is locked on its shard (shared when
//!    no command writes) and read whole with its expiry; the WATCHed keys
//!    are checked there too, and a change makes EXEC answer nil.
//! 2. The values are loaded into a scratch shard, where the queued commands
//!    run one after the other at one time, with their own handlers: the
//!    replies, errors and their order are those of one shard. An EVAL that
//!    reaches for a key no command names makes the run void (nothing is
//!    written), and the transaction runs again holding that key too, as a
//!    script over several shards does (not under WATCH: a run consumes it).
//! 3. Each key whose version moved in the scratch shard is written back to
//!    its shard, whole or as a delete: one record per shard, kept or dropped
//!    together after a crash. The keyspace notifications the commands
//!    raised are published once the writes are applied.
//!
//! Only commands that name their keys take part: a transaction that also
//! holds a command without keys (other than PING, ECHO and TIME: SCAN,
//! CONFIG ... run on a shard's own state), a TS.CREATERULE (rules join
//! keys of one shard), MOVE or COPY ... DB (they write a key of another
//! database) is refused with CROSSSLOT. Should a command still write a key
//! the transaction does not name, the transaction fails whole and nothing
//! is written ([`super::stray`]). A transaction that only reads writes
//! nothing back (a read may settle a queue's lease in the copy). Whole values cross shards, so a transaction
//! over large keys costs in proportion to their size; the scratch shard's
//! counters (INFO commandstats) are dropped.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use strand_engine::keyspace::{Op, Value};

use super::script::{held, Held};
use crate::coordinator::{self, LockKey, Part, Participant};
use crate::dispatch::{OwnedArgs, RemoteCmd, Shard};
use crate::notify::Event;
use crate::reply::Reply;
use crate::stats::Call;
use crate::transaction::{Outcome, Watched};

/// A queued command as the transaction runs it.
pub struct Queued {
    /// Handler, database, caller and arguments.
    pub cmd: RemoteCmd,
    /// The keys it names.
    pub keys: Vec<LockKey>,
    /// Whether it may write.
    pub writes: bool,
    /// Whether it may add data (refused whole on a shard out of memory).
    pub denyoom: bool,
}

/// Whether a command (`args`, naming `has_keys`) may run in a gathered transaction (see the module doc).
pub fn takes_part(name: &str, args: &[&[u8]], has_keys: bool) -> bool {
    match name {
        // A compaction rule joins keys of one shard.
        "ts.createrule" => false,
        // They write keys of another database than the one their key positions are read in.
        "move" => false,
        "copy" => !args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"db")),
        "ping" | "echo" | "time" => true,
        _ => has_keys,
    }
}

/// A key the transaction names, once.
struct Key {
    db: u8,
    key: Vec<u8>,
    shard: usize,
}

/// What the scratch run gives: every reply, the write back per key, the
/// notifications, and the keys an EVAL reached for that no command names.
type Ran = (Vec<Reply>, Vec<Option<super::script::Write>>, Vec<Event>, Vec<LockKey>);

/// Runs the queued commands (in order) and the WATCH checks over every shard they touch.
pub async fn run(shard: &Rc<Shard>, cmds: Vec<Queued>, watches: Vec<Watched>) -> Outcome {
    // An EVAL that reaches for a key nobody named runs again holding it, as a
    // script over several shards does; not under WATCH, which a run consumes.
    let mut extra: Vec<LockKey> = Vec::new();
    let mut seen: HashSet<LockKey> = HashSet::new();
    let mut run = 1;
    loop {
        let last = run >= super::script::DISCOVERY_RUNS || extra.len() >= super::MAX_WANTED || !watches.is_empty();
        match attempt(shard, &cmds, &watches, &extra, last).await {
            Ok(outcome) => return outcome,
            Err(wanted) => extra.extend(wanted.into_iter().filter(|k| seen.insert(k.clone()))),
        }
        run += 1;
    }
}

/// One run of [`run`] holding the commands' keys and `extra`: how it
/// ended, or (unless `last`) the keys it reached for, nothing written.
async fn attempt(shard: &Rc<Shard>, cmds: &[Queued], watches: &[Watched], extra: &[LockKey], last: bool) -> Result<Outcome, Vec<LockKey>> {
    let mut named: Vec<Key> = Vec::new();
    let mut seen: HashSet<LockKey> = HashSet::new();
    for (db, key) in cmds.iter().flat_map(|c| c.keys.iter()).chain(extra) {
        if seen.insert((*db, key.clone())) {
            named.push(Key { db: *db, key: key.clone(), shard: shard.shared.slots.shard_of(key) });
        }
    }
    // Every shard with a key or a WATCH takes part, in shard order (the order of the checks' replies).
    let mut by_shard: BTreeMap<usize, Vec<usize>> = watches.iter().map(|w| (w.shard, Vec::new())).collect();
    named.iter().enumerate().for_each(|(i, k)| by_shard.entry(k.shard).or_default().push(i));
    let writes = cmds.iter().any(|c| c.writes);
    let denyoom = cmds.iter().any(|c| c.denyoom);
    let caller = cmds.first().map_or(0, |c| c.cmd.caller);
    let parts = by_shard
        .iter()
        .map(|(&s, idx)| Participant {
            shard: s,
            part: Part {
                keys: idx.iter().map(|&i| (named[i].db, named[i].key.clone())).collect(),
                shared: !writes,
                watches: watches.iter().filter(|w| w.shard == s).cloned().collect(),
                denyoom,
                checks: idx.iter().map(|&i| check(&named[i], caller)).collect(),
            },
            cmds: Vec::new(),
            writes,
        })
        .collect();
    let mut ran: Option<Result<Ran, Reply>> = None;
    let mut retry = Vec::new();
    let plan = |checks: &[Vec<Reply>], out: &mut [Vec<RemoteCmd>]| {
        let rand = crate::scripting::rand_state(shard.state.borrow().lua.as_deref());
        let result = held(named.len(), &by_shard, checks).and_then(|held| execute(shard, cmds, &named, &held));
        if let Ok((_, _, _, wanted)) = &result {
            if !wanted.is_empty() && !last {
                // A void run drew nothing from math.random either.
                crate::scripting::set_rand_state(shard.state.borrow().lua.as_deref(), rand);
                retry = wanted.clone();
                return false;
            }
        }
        let mut any = false;
        if let Ok((_, writes, _, _)) = &result {
            for (idx, out) in by_shard.values().zip(out.iter_mut()) {
                for &i in idx {
                    if let Some((handler, w)) = &writes[i] {
                        let w: Vec<&[u8]> = w.iter().map(Vec::as_slice).collect();
                        let db = named[i].db;
                        out.push(RemoteCmd {
                            handler: *handler,
                            call: Call::Untracked,
                            db,
                            caller,
                            args: OwnedArgs::new(&w),
                            blocking: false,
                        });
                        any = true;
                    }
                }
            }
        }
        ran = Some(result);
        any
    };
    let outcome = coordinator::run_planned(shard, parts, plan).await;
    if !retry.is_empty() {
        return Err(retry);
    }
    let applied = match outcome {
        coordinator::Outcome::Done(parts) => parts.into_iter().flatten().find(Reply::is_error),
        coordinator::Outcome::Declined => None,
        coordinator::Outcome::Dirty => return Ok(Ok(None)),
        coordinator::Outcome::Full => return Ok(Err(crate::oom::exec_abort())),
        coordinator::Outcome::Refused(r) => return Ok(Err(r)),
    };
    let (replies, _, events, _) = match ran {
        Some(Ok(ran)) => ran,
        Some(Err(e)) => return Ok(Err(e)),
        None => return Ok(Err(Reply::error("ERR transaction ran nowhere"))),
    };
    if let Some(e) = applied {
        // A shard could not apply its part (its log refused the write): every reply says so.
        return Ok(Ok(Some(vec![e; replies.len()])));
    }
    if !events.is_empty() {
        shard.state.borrow_mut().publish_events(&events);
    }
    Ok(Ok(Some(replies)))
}

/// The check that reads `k` whole on its shard (a time series with rules stays there).
fn check(k: &Key, caller: u64) -> RemoteCmd {
    RemoteCmd {
        handler: crate::moves::dump,
        call: Call::Untracked,
        db: k.db,
        caller,
        args: OwnedArgs::new(&[b"exec", &k.key]),
        blocking: false,
    }
}

/// Runs the commands on a scratch shard holding the keys: the replies, the
/// write back per key of `named` (None: unchanged), the notifications.
fn execute(shard: &Shard, cmds: &[Queued], named: &[Key], held: &[Held]) -> Result<Ran, Reply> {
    let (mut scratch, now) = {
        let mut st = shard.state.borrow_mut();
        let mut scratch = st.scratch();
        // This shard's Lua engine runs an EVAL of the transaction.
        scratch.lua = st.lua.take();
        (scratch, st.frozen_now.unwrap_or_else(|| st.ks.now()))
    };
    let give_back = |scratch: &mut crate::shard::ShardState| shard.state.borrow_mut().lua = scratch.lua.take();
    for (k, h) in named.iter().zip(held) {
        let Some((expire_ms, bytes)) = h else { continue };
        let mut r = strand_engine::codec::Reader::new(bytes);
        let loaded = Value::decode(&mut r).and_then(|v| r.finish().map(|()| v)).map_err(|e| e.to_string()).and_then(|value| {
            let op = Op::Store { db: k.db, key: &k.key, value: Cow::Owned(value), expire_ms: *expire_ms };
            scratch.ks.write(op, now).map_err(|e| e.to_string())
        });
        if let Err(e) = loaded {
            give_back(&mut scratch);
            let key = String::from_utf8_lossy(&k.key);
            return Err(Reply::error(format!("ERR the value of key '{key}' could not be loaded for the transaction: {e}")));
        }
    }
    // Every write bumps a watched key's version: the keys to write back are the ones whose version moved.
    let versions: Vec<u64> = named.iter().map(|k| scratch.ks.watch(k.db, &k.key)).collect();
    scratch.held = Some(named.iter().map(|k| (k.db as usize, k.key.clone())).collect::<HashSet<_>>());
    scratch.captured = Some(Vec::new());
    scratch.frozen_now = Some(now);
    let notify = crate::notify::enabled(scratch.config.notify);
    let replies: Vec<Reply> = cmds
        .iter()
        .map(|q| {
            q.cmd.args.with(|args| {
                let name = notify.then(|| String::from_utf8_lossy(args[0]).to_ascii_lowercase());
                let mut ctx = crate::command::Ctx {
                    shard: &mut scratch,
                    db: q.cmd.db as usize,
                    now,
                    caller: q.cmd.caller,
                    may_block: false,
                    blocked: None,
                    cmd: name,
                };
                (q.cmd.handler)(&mut ctx, args)
            })
        })
        .collect();
    give_back(&mut scratch);
    // A transaction whose EVAL was stopped is not run again.
    let wanted: Vec<LockKey> = match replies.iter().any(crate::scripting::stopped) {
        true => Vec::new(),
        false => scratch.wanted.drain().map(|(db, k)| (db as u8, k)).collect(),
    };
    if let Some(key) = super::stray(&scratch, now) {
        return Err(Reply::error(format!("ERR a command of the transaction wrote {key}, which no command names; nothing was written")));
    }
    // A read-only transaction writes nothing back, and an EVAL stopped by SHUTDOWN keeps none of its writes.
    let readonly = !cmds.iter().any(|c| c.writes);
    if readonly || replies.iter().any(|r| matches!(r, Reply::Error(e) if e == crate::scripting::KILLED_BY_SHUTDOWN)) {
        return Ok((replies, named.iter().map(|_| None).collect(), Vec::new(), wanted));
    }
    let writes = named
        .iter()
        .zip(held)
        .zip(versions)
        .map(|((k, h), v)| {
            let moved = scratch.ks.version(k.db, &k.key) != v;
            moved.then(|| super::script::write_back(&scratch, k.db as usize, now, b"exec", &k.key, h.is_some())).flatten()
        })
        .collect();
    Ok((replies, writes, scratch.captured.take().unwrap_or_default(), wanted))
}
