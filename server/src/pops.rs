//! BLPOP, BRPOP, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP, LMPOP, ZMPOP and QMPOP
//! over keys that live on several shards.
//!
//! Each of these takes from the first of its keys, in the order given, that
//! has something to take. Across shards it goes in two steps:
//!
//! 1. **Try.** The keys are cut into runs of neighbours on one shard (`a b`
//!    on shard 0, `c` on shard 1 and `d` on shard 0 make three runs). A run
//!    is the command itself with only its keys, run without blocking on its
//!    shard ([`crate::dispatch::run_part`]); the runs go one after another,
//!    in the keys' order, until one takes something. Each take is atomic on
//!    its shard and logged and replayed as there; a key is passed over only
//!    when it had nothing an instant before. The first run answers the
//!    syntax errors, since every run carries the same options.
//! 2. **Wait** (the blocking forms, when nothing was taken). Every shard
//!    parks a waiter on its keys that takes nothing ([`until_ready`]): it
//!    answers as soon as one of them has something, or holds another type
//!    (which the next try answers with WRONGTYPE). The first answer ends
//!    every wait and the connection tries again, until the timeout. A
//!    client that goes away ends the waits, and nothing was taken for it.
//!
//! What one shard gives and this does not: the whole is not atomic (a push
//! to an earlier key landing while a later key is taken is not seen), and a
//! client waiting across shards keeps no place in line: a client blocked
//! later on one shard's key may take the element whose arrival woke it.
//!
//! Nothing here touches a shard's state except through the command's own
//! handler and [`until_ready`], which run on the owning shard.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use strand_engine::keyspace::list::List;
use strand_engine::keyspace::stream::Stream;
use strand_engine::keyspace::zset::ZSet;

use crate::command::table::CmdId;
use crate::command::{err, typed, Command, Ctx, Route, ShardFn};
use crate::dispatch::Shard;
use crate::reply::Reply;
use crate::stats::Call;

/// The commands this module runs when their keys live on several shards.
pub fn pops(name: &str) -> bool {
    matches!(name, "blpop" | "brpop" | "blmpop" | "bzpopmin" | "bzpopmax" | "bzmpop" | "lmpop" | "zmpop" | "qmpop")
}

/// What the keys hold, which says when a waiter has something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    List,
    ZSet,
    Queue,
    /// Streams read by a consumer group with `>`: something once a stream
    /// has an entry after the group's last-delivered ID
    /// ([`crate::stream_reads`]).
    StreamGroup,
}

impl Kind {
    fn of(name: &str) -> Kind {
        match name {
            "bzpopmin" | "bzpopmax" | "bzmpop" | "zmpop" => Kind::ZSet,
            "qmpop" => Kind::Queue,
            _ => Kind::List,
        }
    }

    fn name(self) -> &'static [u8] {
        match self {
            Kind::List => b"list",
            Kind::ZSet => b"zset",
            Kind::Queue => b"queue",
            Kind::StreamGroup => b"stream-group",
        }
    }

    fn parse(b: &[u8]) -> Kind {
        match b {
            b"zset" => Kind::ZSet,
            b"queue" => Kind::Queue,
            b"stream-group" => Kind::StreamGroup,
            _ => Kind::List,
        }
    }
}

/// A pop cut by shard.
pub struct Plan {
    handler: ShardFn,
    id: CmdId,
    kind: Kind,
    /// Runs of neighbouring keys on one shard, in the keys' order: the
    /// shard, and the command with only those keys.
    runs: Vec<(usize, Vec<Vec<u8>>)>,
    /// Per shard, in order of first appearance: the keys its waiter watches.
    watch: Vec<(usize, Vec<Vec<u8>>)>,
}

/// Where a command's keys are: `args[first..end]`, and the place of its
/// `numkeys` if it has one.
fn layout(name: &str, args: &[&[u8]]) -> Option<(usize, usize, Option<usize>)> {
    let numkeys_at = match name {
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => return (args.len() >= 3).then(|| (1, args.len() - 1, None)),
        "blmpop" | "bzmpop" => 2,
        _ => 1,
    };
    let n: usize = std::str::from_utf8(args.get(numkeys_at)?).ok()?.parse().ok().filter(|&n| n > 0)?;
    let first = numkeys_at + 1;
    let end = first.checked_add(n).filter(|&e| e <= args.len())?;
    Some((first, end, Some(numkeys_at)))
}

/// Cuts `args` into runs by the shards of their keys.
pub fn plan(shard: &Shard, cmd: &Command, args: &[&[u8]]) -> Result<Plan, Reply> {
    let (Route::Key(handler), Some(id)) = (cmd.route, crate::command::table::id_of(cmd.name)) else {
        return Err(Reply::error(format!("ERR '{}' cannot run across shards", cmd.name)));
    };
    let (first, end, numkeys_at) = layout(cmd.name, args).ok_or_else(|| Reply::error(err::SYNTAX))?;
    let keys = &args[first..end];
    let run_of = |keys: &[&[u8]]| -> Vec<Vec<u8>> {
        let count = keys.len().to_string();
        let head = args[..first].iter().enumerate().map(|(i, a)| if Some(i) == numkeys_at { count.as_bytes() } else { a });
        head.chain(keys.iter().copied()).chain(args[end..].iter().copied()).map(<[u8]>::to_vec).collect()
    };
    let mut plan = Plan { handler, id, kind: Kind::of(cmd.name), runs: Vec::new(), watch: Vec::new() };
    let mut start = 0;
    for i in 1..=keys.len() {
        let to = shard.shared.slots.shard_of(keys[start]);
        if i < keys.len() && shard.shared.slots.shard_of(keys[i]) == to {
            continue;
        }
        plan.runs.push((to, run_of(&keys[start..i])));
        let watched = match plan.watch.iter().position(|(s, _)| *s == to) {
            Some(p) => &mut plan.watch[p].1,
            None => {
                plan.watch.push((to, Vec::new()));
                &mut plan.watch.last_mut().expect("just pushed").1
            }
        };
        watched.extend(keys[start..i].iter().map(|k| k.to_vec()));
        start = i;
    }
    Ok(plan)
}

/// How long the command blocks when nothing is there: None if it does not
/// block, else its timeout in milliseconds (None: forever).
pub fn timeout(cmd: &Command, args: &[&[u8]]) -> Result<Option<Option<u64>>, Reply> {
    match cmd.name {
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => crate::command::timeout_arg(args[args.len() - 1]).map(Some),
        "blmpop" | "bzmpop" => crate::command::timeout_arg(args[1]).map(Some),
        "qmpop" => crate::command::queues::qmpop_block(args),
        _ => Ok(None),
    }
}

/// Runs the runs in order until one takes something: its reply (or the
/// first error); None when every key had nothing.
pub async fn try_once(shard: &Rc<Shard>, plan: &Plan, db: usize, caller: u64) -> Option<Reply> {
    for (to, run) in &plan.runs {
        let args: Vec<&[u8]> = run.iter().map(Vec::as_slice).collect();
        let reply = crate::dispatch::run_part(shard, *to, plan.handler, plan.id, db, caller, &args).await;
        if !matches!(reply, Reply::NilArray | Reply::Nil) {
            return Some(reply);
        }
    }
    None
}

/// Waits on every shard of the plan until one of its keys has something
/// (OK), or `timeout_ms` passes (nil). Dropping the future ends every wait.
pub fn wait(shard: &Rc<Shard>, plan: &Plan, db: usize, caller: u64, timeout_ms: Option<u64>) -> Pin<Box<dyn Future<Output = Reply>>> {
    let waits: Vec<_> = plan.watch.iter().map(|(to, keys)| wait_on(shard, *to, plan.kind, b"", keys, db, caller, timeout_ms)).collect();
    Box::pin(async move { futures::future::select_all(waits).await.0 })
}

/// Waits on shard `to` until one of `keys` (of `kind`) has something;
/// `group` names the consumer group of [`Kind::StreamGroup`].
#[allow(clippy::too_many_arguments)]
pub fn wait_on(
    shard: &Rc<Shard>,
    to: usize,
    kind: Kind,
    group: &[u8],
    keys: &[Vec<u8>],
    db: usize,
    caller: u64,
    timeout_ms: Option<u64>,
) -> Pin<Box<dyn Future<Output = Reply>>> {
    let timeout = timeout_ms.unwrap_or(0).to_string();
    let head = [kind.name(), timeout.as_bytes(), group];
    let args: Vec<&[u8]> = head.into_iter().chain(keys.iter().map(Vec::as_slice)).collect();
    crate::dispatch::blocking_on(shard, to, until_ready, Call::Untracked, &args, db, caller)
}

/// Blocking check: `[kind, timeout_ms, group, key ...]` → OK once one of
/// the keys has something to take, or holds another type; waits otherwise
/// (0: forever), nil at the timeout. Takes nothing.
fn until_ready(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let (kind, group) = (Kind::parse(args[0]), args[2]);
    let keys = &args[3..];
    let ready = |key: &[u8]| match kind {
        Kind::List => typed::peek::<List>(ctx, key).map_or(true, |l| l.is_some_and(|l| l.front().is_some())),
        Kind::ZSet => !matches!(typed::peek::<ZSet>(ctx, key), Ok(None)),
        Kind::Queue => crate::command::queues::has_ready(ctx, key),
        // A missing stream or group is "something": the next read answers the error.
        Kind::StreamGroup => typed::peek::<Stream>(ctx, key)
            .map_or(true, |s| s.is_none_or(|s| s.groups.get(group).is_none_or(|g| s.last().is_some_and(|(id, _)| id > g.last_id)))),
    };
    if keys.iter().any(|k| ready(k)) {
        return Reply::Ok;
    }
    let ms = std::str::from_utf8(args[1]).ok().and_then(|t| t.parse::<u64>().ok()).filter(|&t| t > 0);
    ctx.block(keys, ms, Reply::Nil)
}
