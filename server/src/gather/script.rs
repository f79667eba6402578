//! EVAL, EVALSHA, EVAL_RO and EVALSHA_RO whose KEYS live on several shards.
//!
//! The script runs as one cross-shard transaction of the
//! [`crate::coordinator`], like the algebra of [`super`]:
//!
//! 1. Every key in KEYS is locked on its shard (shared for EVAL_RO and
//!    EVALSHA_RO) and read whole, with its expiry.
//! 2. The coordinator loads the keys into a scratch shard and runs the
//!    script there with its own shard's Lua engine: the same sandbox,
//!    replies and errors as on one shard. A key the script did not declare
//!    (one it builds from a prefix and an ID, as BullMQ's job keys are) is
//!    not there ([`crate::shard::ShardState::held`]): the run stops being
//!    one, nothing of it is written, and the coordinator runs the script
//!    again holding that key too, up to [`DISCOVERY_RUNS`] times, after
//!    which the error ("did not pass in KEYS") stands. A script may so pay
//!    a run per key it reaches for undeclared.
//! 3. Each key the script wrote (its version in the scratch shard moved; a
//!    read leaves a key alone, so WATCH on it holds) is written back to
//!    its shard, whole ([`crate::moves::put`]) or deleted, as that shard's part
//!    of the transaction: one record per shard, kept or dropped together
//!    after a crash. As in Redis, what a script wrote before an error stays
//!    written. The keyspace notifications its commands raised are published
//!    once the writes are applied.
//!
//! The keys stay locked until every shard applied its part, so the script is
//! atomic, as on one shard. Whole values cross shards: a script over large
//! keys costs in proportion to their size; a {hash tag} keeps such keys on
//! one shard, where a script runs in place.
//!
//! A compaction rule between keys of two shards is refused (rules stay on
//! one shard). Left out: a script over cold keys that cannot be read back
//! answers the read's error; SCRIPT KILL sees the script as its coordinator
//! shard's; the scratch shard's counters (INFO stats, commandstats) are dropped.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use strand_engine::codec::Writer;
use strand_engine::keyspace::{Op, Value};

use super::{by_shard, names, odd, participants, per_key, Named, Role};
use crate::command::table::CmdId;
use crate::command::{flags, Command, Ctx, ShardFn};
use crate::coordinator;
use crate::dispatch::{OwnedArgs, RemoteCmd, Shard};
use crate::notify::Event;
use crate::reply::Reply;
use crate::stats::Call;

/// A key as its shard held it when the transaction locked it: expiry and serialized value.
pub(super) type Held = Option<(u64, Vec<u8>)>;

/// Runs of a script that reached for keys it was not given, each holding
/// those keys too, before the last one answers the error.
pub(super) const DISCOVERY_RUNS: usize = 8;

/// Runs a script (`handler`, EVAL's or a kin's) whose KEYS live on several shards.
pub async fn run(shard: &Rc<Shard>, cmd: &Command, handler: ShardFn, id: CmdId, db: usize, caller: u64, args: &[&[u8]]) -> Reply {
    let mut extra: Vec<Vec<u8>> = Vec::new();
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut run = 1;
    loop {
        let last = run >= DISCOVERY_RUNS || extra.len() >= super::MAX_WANTED;
        match attempt(shard, cmd, handler, (id, db, caller), args, &extra, last).await {
            Ok(reply) => return reply,
            Err(wanted) => extra.extend(wanted.into_iter().filter(|k| seen.insert(k.clone()))),
        }
        run += 1;
    }
}

/// One run of [`run`] holding KEYS and `extra`: its reply, or (unless
/// `last`) the keys it reached for that it did not hold, nothing written.
async fn attempt<'a>(
    shard: &Rc<Shard>,
    cmd: &Command,
    handler: ShardFn,
    (id, db, caller): (CmdId, usize, u64),
    args: &[&'a [u8]],
    extra: &'a [Vec<u8>],
    last: bool,
) -> Result<Reply, Vec<Vec<u8>>> {
    let readonly = cmd.flags & flags::READONLY != 0;
    let mut named = names(shard, cmd, args, None);
    let mut have: HashSet<&[u8]> = named.iter().map(|n| n.key).collect();
    for k in extra {
        if have.insert(k) {
            named.push(Named { key: k, shard: shard.shared.slots.shard_of(k), source: true });
        }
    }
    let by_shard = by_shard(&named);
    // A time series with compaction rules stays on its shard (its rules write keys there).
    let check = |_: &Named<'_>| crate::moves::dump as ShardFn;
    // As a script without the allow-oom flag: refused whole on a shard out of memory.
    let role = |_| Role { writes: !readonly, denyoom: !readonly };
    let parts = participants(&named, &by_shard, (id, db, caller, args[0]), check, role);
    let mut answer = Reply::Nil;
    let mut events = Vec::new();
    let mut retry = Vec::new();
    let plan = |checks: &[Vec<Reply>], cmds: &mut [Vec<RemoteCmd>]| {
        let held = match held(named.len(), &by_shard, checks) {
            Ok(h) => h,
            Err(e) => {
                answer = e;
                return false;
            }
        };
        let rand = crate::scripting::rand_state(shard.state.borrow().lua.as_deref());
        let ran = execute(shard, handler, (db, caller, readonly), args, &named, &held);
        if !ran.wanted.is_empty() && !last {
            // A void run drew nothing from math.random either: the next run draws the same.
            crate::scripting::set_rand_state(shard.state.borrow().lua.as_deref(), rand);
            retry = ran.wanted;
            return false;
        }
        answer = ran.reply;
        events = ran.events;
        let mut any = false;
        for (idx, out) in by_shard.values().zip(cmds.iter_mut()) {
            for &i in idx {
                if let Some((handler, w)) = &ran.writes[i] {
                    let w: Vec<&[u8]> = w.iter().map(Vec::as_slice).collect();
                    out.push(RemoteCmd {
                        handler: *handler,
                        call: Call::Part(id),
                        db: db as u8,
                        caller,
                        args: OwnedArgs::new(&w),
                        blocking: false,
                    });
                    any = true;
                }
            }
        }
        any
    };
    let outcome = coordinator::run_planned(shard, parts, plan).await;
    if !retry.is_empty() {
        return Err(retry);
    }
    let applied = match &outcome {
        coordinator::Outcome::Done(parts) => !parts.iter().flatten().any(Reply::is_error),
        coordinator::Outcome::Declined => true,
        _ => false,
    };
    let reply = outcome.answer(answer, cmd.name);
    if applied && !events.is_empty() {
        shard.state.borrow_mut().publish_events(&events);
    }
    Ok(reply)
}

/// What each key's shard held (the replies of [`crate::moves::dump`]), per
/// key of a list of `keys`; the first error a shard answered.
pub(super) fn held(keys: usize, by_shard: &BTreeMap<usize, Vec<usize>>, checks: &[Vec<Reply>]) -> Result<Vec<Held>, Reply> {
    per_key(keys, by_shard, checks, |reply| match reply {
        Reply::Nil => Ok(None),
        Reply::Array(v) => match &v[..] {
            [Reply::Int(expire), Reply::Bulk(bytes)] => Ok(Some((*expire as u64, bytes.clone()))),
            _ => Err(odd()),
        },
        _ => Err(odd()),
    })
}

/// A write back to a key's shard: the handler and its arguments.
pub(super) type Write = (ShardFn, Vec<Vec<u8>>);

/// What a run on a scratch shard gave.
struct Ran {
    /// The script's reply.
    reply: Reply,
    /// The write back for each key of `named` (None: unchanged).
    writes: Vec<Option<Write>>,
    /// The keyspace notifications its commands raised.
    events: Vec<Event>,
    /// Keys of its database it reached for that it was not given.
    wanted: Vec<Vec<u8>>,
}

/// Runs the script on a scratch shard holding the keys.
fn execute(
    shard: &Shard,
    handler: ShardFn,
    (db, caller, readonly): (usize, u64, bool),
    args: &[&[u8]],
    named: &[Named<'_>],
    held: &[Held],
) -> Ran {
    let failed = |reply: Reply| Ran { reply, writes: named.iter().map(|_| None).collect(), events: Vec::new(), wanted: Vec::new() };
    let (mut scratch, now) = {
        let mut st = shard.state.borrow_mut();
        let mut scratch = st.scratch();
        // This shard's Lua engine (compiled scripts, SCRIPT KILL's slot) runs the script.
        scratch.lua = st.lua.take();
        (scratch, st.frozen_now.unwrap_or_else(|| st.ks.now()))
    };
    for (n, h) in named.iter().zip(held) {
        let Some((expire_ms, bytes)) = h else { continue };
        let mut r = strand_engine::codec::Reader::new(bytes);
        let value = match Value::decode(&mut r).and_then(|v| r.finish().map(|()| v)) {
            Ok(v) => v,
            Err(e) => {
                shard.state.borrow_mut().lua = scratch.lua.take();
                return failed(Reply::error(format!("ERR the value of key '{}' does not decode: {e}", String::from_utf8_lossy(n.key))));
            }
        };
        let op = Op::Store { db: db as u8, key: n.key, value: Cow::Owned(value), expire_ms: *expire_ms };
        if let Err(e) = scratch.ks.write(op, now) {
            shard.state.borrow_mut().lua = scratch.lua.take();
            return failed(Reply::error(format!("ERR a script's key could not be loaded: {e}")));
        }
    }
    // Every write bumps a watched key's version: the keys to write back are the ones whose version moved.
    let versions: Vec<u64> = named.iter().map(|n| scratch.ks.watch(db as u8, n.key)).collect();
    scratch.held = Some(named.iter().map(|n| (db, n.key.to_vec())).collect::<HashSet<_>>());
    scratch.captured = Some(Vec::new());
    let notify = crate::notify::enabled(scratch.config.notify).then(|| String::from_utf8_lossy(args[0]).to_ascii_lowercase());
    let reply = {
        let mut ctx = Ctx { shard: &mut scratch, db, now, caller, may_block: false, blocked: None, cmd: notify };
        handler(&mut ctx, args)
    };
    shard.state.borrow_mut().lua = scratch.lua.take();
    // A stopped script is not run again. Keys of another database (after SELECT) are not fetched.
    let wanted: Vec<Vec<u8>> = match crate::scripting::stopped(&reply) {
        true => Vec::new(),
        false => scratch.wanted.drain().filter(|(d, _)| *d == db).map(|(_, k)| k).collect(),
    };
    if let Some(key) = super::stray(&scratch, now) {
        let e = format!(
            "ERR the script wrote {key}, which it did not pass in KEYS (its keys live on several shards); none of its writes were kept"
        );
        return failed(Reply::error(e));
    }
    // A script stopped by SHUTDOWN keeps none of its writes; a read-only one has none.
    if readonly || matches!(&reply, Reply::Error(e) if e == crate::scripting::KILLED_BY_SHUTDOWN) {
        return Ran { wanted, ..failed(reply) };
    }
    let writes = named
        .iter()
        .zip(held)
        .zip(versions)
        .map(|((n, h), v)| {
            (scratch.ks.version(db as u8, n.key) != v).then(|| write_back(&scratch, db, now, args[0], n.key, h.is_some())).flatten()
        })
        .collect();
    Ran { reply, writes, events: scratch.captured.take().unwrap_or_default(), wanted }
}

/// What to write on `key`'s shard, which the script wrote, so that it holds
/// what the scratch shard holds now (None: it was missing and still is).
pub(super) fn write_back(scratch: &crate::shard::ShardState, db: usize, now: u64, name: &[u8], key: &[u8], existed: bool) -> Option<Write> {
    match scratch.ks.peek(db, key, now) {
        Some(e) => {
            let mut bytes = vec![0; e.value.encoded_len()];
            e.value.encode(&mut Writer::new(&mut bytes));
            Some((crate::moves::put_quietly as ShardFn, vec![name.to_vec(), key.to_vec(), e.expire_ms.to_string().into_bytes(), bytes]))
        }
        None => existed.then(|| (crate::moves::del_quietly as ShardFn, vec![name.to_vec(), key.to_vec()])),
    }
}
