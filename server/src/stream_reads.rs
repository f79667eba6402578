//! XREAD and XREADGROUP over streams that live on several shards.
//!
//! The request is split by owner: each shard gets the same options and
//! its own streams with their IDs, and the answers are put back in the
//! order of the request's streams.
//!
//! - **XREAD** is a read: the parts run at once. With BLOCK each part goes
//!   to its shard as a blocking read (which resolves `$` and tries
//!   atomically there, as on one shard); the first to answer ends the
//!   wait, parts already answered join it, and the others are dropped,
//!   which costs nothing since XREAD takes nothing.
//! - **XREADGROUP** delivers, so it first runs its checks on every shard
//!   (NOGROUP, WRONGTYPE, IDs), and serves only when none refuses. Then a
//!   read without BLOCK, and if nothing came and BLOCK was asked, a wait
//!   on every shard that delivers nothing ([`wait_group`], the waiter of
//!   [`crate::pops`]) until one of its streams has a new entry for the
//!   group; then the read again, until the timeout. So nothing is
//!   delivered that the client is not answered.
//!
//! Not atomic across shards: a read may see one shard before a write and
//! another after it, as MGET may.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use futures::FutureExt;

use crate::command::table::CmdId;
use crate::command::{Command, Route, ShardFn};
use crate::dispatch::Shard;
use crate::reply::Reply;
use crate::stats::Call;

/// The commands this module runs when their streams live on several shards.
pub fn reads(name: &str) -> bool {
    matches!(name, "xread" | "xreadgroup")
}

/// One shard's part of a request.
struct Part {
    shard: usize,
    /// Its streams.
    keys: Vec<Vec<u8>>,
    /// Its arguments without BLOCK ...
    now: Vec<Vec<u8>>,
    /// ... and with it.
    blocking: Vec<Vec<u8>>,
}

/// A request split by shard.
pub struct Split {
    /// Per shard, in order of first appearance.
    parts: Vec<Part>,
    /// Where each stream key stands in the request (its first place).
    order: HashMap<Vec<u8>, usize>,
    /// BLOCK was given.
    blocks: bool,
    /// BLOCK's timeout in ms (None: forever, or no BLOCK).
    timeout: Option<u64>,
    /// XREADGROUP's group: the checks run first.
    group: Option<Vec<u8>>,
}

impl Split {
    /// BLOCK's timeout in ms; None for forever (or without BLOCK).
    pub fn timeout(&self) -> Option<u64> {
        self.timeout
    }
}

/// Splits `args` by the shards of their streams; the syntax errors the
/// command answers on one shard.
pub fn split(shard: &Shard, cmd: &Command, args: &[&[u8]]) -> Result<Split, Reply> {
    let group = cmd.name == "xreadgroup";
    let r = crate::command::streams::ReadArgs::parse(args, group)?;
    let (keys, ids) = (r.keys(args), r.ids(args));
    // The options as given, and without BLOCK and its value.
    let opts = &args[1..r.streams_at - 1];
    let mut unblocked: Vec<&[u8]> = Vec::with_capacity(opts.len());
    let mut i = 0;
    while i < opts.len() {
        let takes = match opts[i] {
            o if o.eq_ignore_ascii_case(b"group") => 2,
            o if o.eq_ignore_ascii_case(b"noack") => 0,
            _ => 1,
        };
        if !opts[i].eq_ignore_ascii_case(b"block") {
            unblocked.extend_from_slice(&opts[i..(i + 1 + takes).min(opts.len())]);
        }
        i += 1 + takes;
    }
    // Per shard: its streams, then their IDs.
    let (mut shards, mut keys_of, mut ids_of) = (Vec::new(), Vec::<Vec<&[u8]>>::new(), Vec::<Vec<&[u8]>>::new());
    for (&key, &id) in keys.iter().zip(ids) {
        let to = shard.shared.slots.shard_of(key);
        let p = shards.iter().position(|&s| s == to).unwrap_or_else(|| {
            shards.push(to);
            keys_of.push(Vec::new());
            ids_of.push(Vec::new());
            shards.len() - 1
        });
        keys_of[p].push(key);
        ids_of[p].push(id);
    }
    let build = |options: &[&[u8]], keys: &[&[u8]], ids: &[&[u8]]| -> Vec<Vec<u8>> {
        let head = std::iter::once(args[0]).chain(options.iter().copied()).chain(std::iter::once(&b"STREAMS"[..]));
        head.chain(keys.iter().copied()).chain(ids.iter().copied()).map(<[u8]>::to_vec).collect()
    };
    let mut order = HashMap::with_capacity(keys.len());
    for (n, &key) in keys.iter().enumerate() {
        order.entry(key.to_vec()).or_insert(n);
    }
    Ok(Split {
        parts: shards
            .into_iter()
            .zip(keys_of.iter().zip(&ids_of))
            .map(|(shard, (k, i))| Part {
                shard,
                keys: k.iter().map(|k| k.to_vec()).collect(),
                now: build(&unblocked, k, i),
                blocking: build(opts, k, i),
            })
            .collect(),
        order,
        blocks: r.block.is_some(),
        timeout: r.block.flatten(),
        group: group.then(|| r.group.map(|(g, _)| g.to_vec())).flatten(),
    })
}

/// The command's handler and id.
fn handler(cmd: &Command) -> Result<(ShardFn, CmdId), Reply> {
    match (cmd.route, crate::command::table::id_of(cmd.name)) {
        (Route::Key(h), Some(id)) => Ok((h, id)),
        _ => Err(Reply::error(format!("ERR '{}' cannot run across shards", cmd.name))),
    }
}

/// Runs `h` with each part's arguments without BLOCK at once, each on its
/// shard as a part of command `id` (so a locked stream is waited for).
async fn on_each(shard: &Rc<Shard>, s: &Split, h: ShardFn, id: CmdId, db: usize, caller: u64) -> Vec<Reply> {
    let runs = s.parts.iter().map(|p| {
        let args: Vec<&[u8]> = p.now.iter().map(Vec::as_slice).collect();
        let to = p.shard;
        let shard = shard.clone();
        async move { crate::dispatch::run_part(&shard, to, h, id, db, caller, &args).await }
    });
    futures::future::join_all(runs).await
}

/// The parts' answers as one: the first error, else every stream that
/// answered entries, in the request's order; a nil array when none did.
fn merge(s: &Split, parts: Vec<Reply>) -> Reply {
    if let Some(e) = parts.iter().find(|p| p.is_error()) {
        return e.clone();
    }
    let mut streams: Vec<(Reply, Reply)> = parts.into_iter().flat_map(|p| if let Reply::Keyed(v) = p { v } else { Vec::new() }).collect();
    if streams.is_empty() {
        return Reply::NilArray;
    }
    let place = |k: &Reply| match k {
        Reply::Bulk(b) => s.order.get(b).copied().unwrap_or(usize::MAX),
        _ => usize::MAX,
    };
    streams.sort_by_key(|(k, _)| place(k));
    Reply::Keyed(streams)
}

/// The answer when no part waits: the checks (XREADGROUP), then the reads
/// without BLOCK. None: nothing came and BLOCK was asked, so the caller waits with [`wait`].
pub async fn try_now(shard: &Rc<Shard>, cmd: &Command, s: &Split, db: usize, caller: u64) -> Option<Reply> {
    let (h, id) = match handler(cmd) {
        Ok(h) => h,
        Err(e) => return Some(e),
    };
    if s.group.is_some() {
        let checks = on_each(shard, s, crate::command::stream_groups::xreadgroup_check, id, db, caller).await;
        if let Some(e) = checks.into_iter().find(Reply::is_error) {
            return Some(e);
        }
    }
    // XREAD with BLOCK goes straight to the blocking parts: they resolve `$` where they wait.
    if s.blocks && s.group.is_none() {
        return None;
    }
    let reply = merge(s, on_each(shard, s, h, id, db, caller).await);
    match (&reply, s.blocks) {
        (Reply::NilArray, true) => None,
        _ => Some(reply),
    }
}

/// XREADGROUP with BLOCK: waits on every shard until one of its streams
/// has an entry after the group's last-delivered ID, delivering nothing
/// (OK, or nil after `timeout_ms`); the caller reads again with
/// [`try_now`]. Dropping the future ends every wait.
pub fn wait_group(shard: &Rc<Shard>, s: &Split, db: usize, caller: u64, timeout_ms: Option<u64>) -> Pin<Box<dyn Future<Output = Reply>>> {
    let group = s.group.clone().unwrap_or_default();
    let waits: Vec<_> = s
        .parts
        .iter()
        .map(|p| crate::pops::wait_on(shard, p.shard, crate::pops::Kind::StreamGroup, &group, &p.keys, db, caller, timeout_ms))
        .collect();
    Box::pin(async move { futures::future::select_all(waits).await.0 })
}

/// XREAD with BLOCK: waits on every shard at once (the parts with BLOCK)
/// until one answers; parts answered by then join it. Dropping the future
/// ends every wait.
pub fn wait(shard: &Rc<Shard>, cmd: &Command, s: Split, db: usize, caller: u64) -> Pin<Box<dyn Future<Output = Reply>>> {
    let h = match handler(cmd) {
        Ok((h, _)) => h,
        Err(e) => return Box::pin(std::future::ready(e)),
    };
    let waits: Vec<_> = s
        .parts
        .iter()
        .map(|p| {
            let args: Vec<&[u8]> = p.blocking.iter().map(Vec::as_slice).collect();
            crate::dispatch::blocking_on(shard, p.shard, h, Call::Untracked, &args, db, caller)
        })
        .collect();
    Box::pin(async move {
        let (first, _, rest) = futures::future::select_all(waits).await;
        // Let answers already on their way arrive before the rest are dropped.
        strand_engine::runtime::yield_now().await;
        let mut parts = vec![first];
        parts.extend(rest.into_iter().filter_map(|w| w.now_or_never()));
        merge(&s, parts)
    })
}
