//! Commands over keys on several shards that read whole values into a
//! scratch shard: the set and sorted-set algebra (SINTER, SUNION, SDIFF,
//! SINTERCARD, ZUNION, ZINTER, ZDIFF, ZINTERCARD, their *STORE forms, and
//! ZRANGESTORE), here, and scripts ([`script`]), which follow the same
//! steps and write back every key they changed.
//!
//! Each runs as one cross-shard transaction of the [`crate::coordinator`]:
//!
//! 1. Every key the command names is locked on its shard, and a check
//!    there reads its whole value, serialized as checkpoints write it
//!    ([`crate::moves::read_whole`]); a destination that is not also a
//!    source is only asked whether it exists. Parts that only read lock
//!    their keys shared, so reads of the same keys run side by side.
//! 2. The coordinator loads the values into a scratch shard (in memory, no
//!    log: [`crate::shard::ShardState::scratch`]) and runs the command's own
//!    handler there: the same code, type checks, errors and their order as
//!    when the keys share a shard.
//! 3. A *STORE form writes what the handler left at its destination back
//!    to the destination's shard, the whole value ([`crate::moves::put`])
//!    or its deletion, as that shard's part of the transaction: one log
//!    record, kept or dropped whole after a crash. The keys stay locked
//!    until it is applied, so no command sees a source change in between;
//!    the reads are atomic too (unlike MGET's).
//!
//! Whole values cross shards, so the cost grows with the sources' sizes,
//! not the result's. Nothing here touches a shard's state except through
//! handlers that run on the owning shard; the scratch shard is the
//! coordinator's own and is dropped with the command.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use strand_engine::codec::{Reader, Writer};
use strand_engine::keyspace::{Op, Value};

use crate::command::table::CmdId;
use crate::command::{flags, Command, Ctx, Route, ShardFn};
use crate::coordinator::{self, Part, Participant};
use crate::dispatch::{OwnedArgs, RemoteCmd, Shard};
use crate::reply::Reply;
use crate::stats::Call;

/// Keys a script over several shards may reach for undeclared, over all
/// its runs, before the error stands (each run locks and copies them all).
pub const MAX_WANTED: usize = 1024;

pub mod exec;
pub mod script;

/// The commands this module runs when their keys live on several shards.
pub fn gathers(name: &str) -> bool {
    algebra(name) || scripts(name)
}

/// The scripts this module runs when their KEYS live on several shards.
fn scripts(name: &str) -> bool {
    matches!(name, "eval" | "evalsha" | "eval_ro" | "evalsha_ro")
}

/// The set and sorted-set algebra.
fn algebra(name: &str) -> bool {
    matches!(
        name,
        "sinter"
            | "sunion"
            | "sdiff"
            | "sintercard"
            | "sinterstore"
            | "sunionstore"
            | "sdiffstore"
            | "zunion"
            | "zinter"
            | "zdiff"
            | "zintercard"
            | "zunionstore"
            | "zinterstore"
            | "zdiffstore"
            | "zrangestore"
    )
}

/// A key the command names, once, with what the transaction reads of it.
struct Named<'a> {
    key: &'a [u8],
    shard: usize,
    /// Read as a source: its whole value is fetched (else only whether it exists).
    source: bool,
}

/// What the checks tell of one key.
enum Found {
    Missing,
    /// A destination that exists (its value is not needed).
    Exists,
    /// A source's value (alive on its shard when read).
    Value(Value),
}

/// Runs `cmd` (one of [`gathers`]) whose keys live on several shards.
pub async fn run(shard: &Rc<Shard>, cmd: &Command, id: CmdId, db: usize, caller: u64, args: &[&[u8]]) -> Reply {
    let Route::Key(handler) = cmd.route else {
        return Reply::error(format!("ERR '{}' does not run on keys", cmd.name));
    };
    if scripts(cmd.name) {
        return crate::gather::script::run(shard, cmd, handler, id, db, caller, args).await;
    }
    // Every *STORE form here names its destination first; nothing else writes.
    let dest = (cmd.flags & flags::WRITE != 0).then(|| args.get(1).copied()).flatten();
    let named = names(shard, cmd, args, dest);
    let by_shard = by_shard(&named);
    let dest_shard = dest.map(|d| shard.shared.slots.shard_of(d));
    let check = |n: &Named<'_>| if n.source { crate::moves::read_whole } else { crate::moves::exists as ShardFn };
    let role = |s: usize| {
        let writes = dest_shard == Some(s);
        Role { writes, denyoom: writes && cmd.flags & flags::DENYOOM != 0 }
    };
    let parts = participants(&named, &by_shard, (id, db, caller, args[0]), check, role);
    let mut answer = Reply::Nil;
    let plan = |checks: &[Vec<Reply>], cmds: &mut [Vec<RemoteCmd>]| {
        let found = match found(&named, &by_shard, checks) {
            Ok(f) => f,
            Err(e) => {
                answer = e;
                return false;
            }
        };
        let (reply, write) = compute(shard, handler, db, caller, args, &named, found, dest);
        answer = reply;
        match (write, dest_shard.and_then(|s| by_shard.keys().position(|&k| k == s))) {
            (Some((handler, w)), Some(at)) => {
                let w: Vec<&[u8]> = w.iter().map(Vec::as_slice).collect();
                cmds[at] =
                    vec![RemoteCmd { handler, call: Call::Part(id), db: db as u8, caller, args: OwnedArgs::new(&w), blocking: false }];
                true
            }
            _ => false,
        }
    };
    let outcome = coordinator::run_planned(shard, parts, plan).await;
    outcome.answer(answer, cmd.name)
}

/// The keys of `named` (by index) per shard, in shard order: the order in
/// which the coordinator hands back the participants' checks.
fn by_shard(named: &[Named<'_>]) -> BTreeMap<usize, Vec<usize>> {
    let mut by_shard: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    named.iter().enumerate().for_each(|(i, n)| by_shard.entry(n.shard).or_default().push(i));
    by_shard
}

/// What a participant does besides reading.
struct Role {
    /// It may write (its keys are locked exclusive, else shared).
    writes: bool,
    /// It is refused whole when its shard is out of memory.
    denyoom: bool,
}

/// One participant per shard of `by_shard`: it locks its keys and reads
/// each with the check `check` names; `role` says, per shard, whether it writes.
fn participants(
    named: &[Named<'_>],
    by_shard: &BTreeMap<usize, Vec<usize>>,
    (id, db, caller, name): (CmdId, usize, u64, &[u8]),
    check: impl Fn(&Named<'_>) -> ShardFn,
    role: impl Fn(usize) -> Role,
) -> Vec<Participant> {
    let read = |n: &Named<'_>| RemoteCmd {
        handler: check(n),
        call: Call::Part(id),
        db: db as u8,
        caller,
        args: OwnedArgs::new(&[name, n.key]),
        blocking: false,
    };
    by_shard
        .iter()
        .map(|(&s, idx)| {
            let role = role(s);
            Participant {
                shard: s,
                part: Part {
                    keys: idx.iter().map(|&i| (db as u8, named[i].key.to_vec())).collect(),
                    shared: !role.writes,
                    watches: Vec::new(),
                    denyoom: role.denyoom,
                    checks: idx.iter().map(|&i| read(&named[i])).collect(),
                },
                cmds: Vec::new(),
                writes: role.writes,
            }
        })
        .collect()
}

/// The keys `cmd` names, each once, in order of first mention.
fn names<'a>(shard: &Shard, cmd: &Command, args: &[&'a [u8]], dest: Option<&[u8]>) -> Vec<Named<'a>> {
    let mut named: Vec<Named<'a>> = Vec::new();
    let mut seen: HashMap<&[u8], usize> = HashMap::new();
    for (at, i) in cmd.keys_of(args).enumerate() {
        let key = args[i];
        // The destination is the first key named; any later mention reads it.
        let source = !(at == 0 && dest == Some(key));
        match seen.get(key) {
            Some(&n) => named[n].source |= source,
            None => {
                seen.insert(key, named.len());
                named.push(Named { key, shard: shard.shared.slots.shard_of(key), source });
            }
        }
    }
    named
}

/// What each shard's checks found, per key of `named`; the first error a
/// shard answered (a cold value that cannot be read, a series that stays on its shard).
fn found(named: &[Named<'_>], by_shard: &BTreeMap<usize, Vec<usize>>, checks: &[Vec<Reply>]) -> Result<Vec<Found>, Reply> {
    per_key(named.len(), by_shard, checks, |reply| {
        Ok(match reply {
            Reply::Nil | Reply::Int(0) => Found::Missing,
            Reply::Int(_) => Found::Exists,
            Reply::Array(v) => match &v[..] {
                [Reply::Int(_expire), Reply::Bulk(bytes)] => {
                    let mut r = Reader::new(bytes);
                    let value = Value::decode(&mut r)
                        .and_then(|v| r.finish().map(|()| v))
                        .map_err(|e| Reply::error(format!("ERR a gathered value does not decode: {e}")))?;
                    Found::Value(value)
                }
                _ => return Err(odd()),
            },
            _ => return Err(odd()),
        })
    })
}

/// The error for a check reply of an unexpected shape.
fn odd() -> Reply {
    Reply::error("ERR a shard answered the check of a cross-shard command oddly")
}

/// Each check reply (per shard of `by_shard`, one per key there) read by
/// `read`, put back in the order of the keys; the first error a shard answered.
fn per_key<T>(
    keys: usize,
    by_shard: &BTreeMap<usize, Vec<usize>>,
    checks: &[Vec<Reply>],
    read: impl Fn(&Reply) -> Result<T, Reply>,
) -> Result<Vec<T>, Reply> {
    let mut out: Vec<Option<T>> = (0..keys).map(|_| None).collect();
    for (idx, replies) in by_shard.values().zip(checks) {
        for (&i, reply) in idx.iter().zip(replies) {
            if reply.is_error() {
                return Err(reply.clone());
            }
            out[i] = Some(read(reply)?);
        }
    }
    out.into_iter().map(|f| f.ok_or_else(odd)).collect()
}

/// A key a scratch shard holds that it was not given (`held`), as "key 'k'
/// in database n": a command wrote a key its key positions do not name.
fn stray(scratch: &crate::shard::ShardState, now: u64) -> Option<String> {
    let held = scratch.held.as_ref()?;
    let mut found = None;
    for db in (0..strand_engine::keyspace::DATABASES).filter(|&db| scratch.ks.dbsize(db) > 0) {
        let mut cursor = 0;
        loop {
            cursor = scratch.ks.scan(db, cursor, 1024, now, |k, _| {
                if found.is_none() && !held.contains(&(db, k.to_vec())) {
                    found = Some(format!("key '{}' in database {db}", String::from_utf8_lossy(k)));
                }
            });
            if cursor == 0 || found.is_some() {
                break;
            }
        }
    }
    found
}

/// A write for the destination's shard: the handler and its arguments.
type Write = (ShardFn, Vec<Vec<u8>>);

/// Runs the handler on a scratch shard holding the found values: its reply,
/// and what to write at the destination (None: nothing changes there).
#[allow(clippy::too_many_arguments)]
fn compute(
    shard: &Shard,
    handler: ShardFn,
    db: usize,
    caller: u64,
    args: &[&[u8]],
    named: &[Named<'_>],
    found: Vec<Found>,
    dest: Option<&[u8]>,
) -> (Reply, Option<Write>) {
    let (mut scratch, now) = {
        let st = shard.state.borrow();
        (st.scratch(), st.frozen_now.unwrap_or_else(|| st.ks.now()))
    };
    let mut existed = false;
    for (n, f) in named.iter().zip(found) {
        match f {
            Found::Missing => {}
            Found::Exists => existed |= dest == Some(n.key),
            Found::Value(value) => {
                existed |= dest == Some(n.key);
                // Alive on its shard when read: no expiry here, where the clock is another shard's.
                let op = Op::Store { db: db as u8, key: n.key, value: Cow::Owned(value), expire_ms: 0 };
                if let Err(e) = scratch.ks.write(op, now) {
                    return (Reply::error(format!("ERR a gathered value could not be loaded: {e}")), None);
                }
            }
        }
    }
    let mut ctx = Ctx { shard: &mut scratch, db, now, caller, may_block: false, blocked: None, cmd: None };
    let reply = handler(&mut ctx, args);
    let Some(dest) = dest.filter(|_| !reply.is_error()) else { return (reply, None) };
    let write = match scratch.ks.peek(db, dest, now) {
        Some(e) => {
            let mut bytes = vec![0; e.value.encoded_len()];
            e.value.encode(&mut Writer::new(&mut bytes));
            Some((crate::moves::put as ShardFn, vec![args[0].to_vec(), dest.to_vec(), e.expire_ms.to_string().into_bytes(), bytes]))
        }
        None if existed => Some((crate::moves::del as ShardFn, vec![args[0].to_vec(), dest.to_vec()])),
        None => None,
    };
    (reply, write)
}
