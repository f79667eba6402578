//! Stream consumer groups: XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM,
//! XAUTOCLAIM, and XINFO. <https://redis.io/docs/latest/develop/data-types/streams/#consumer-groups>
//!
//! Replies and errors follow Redis 7.4. Every change to a group (a
//! delivery, a claim, an ack, a consumer created) is one
//! [`StreamChange`] holding the times and delivery counts the command
//! decided, so after a restart the pending entries list, each consumer's
//! entries and the group's last-delivered ID and entries-read counter are
//! exactly what they were. One thing is not logged: a consumer's seen time
//! after a read that delivered nothing (a poll). It is kept in memory, as
//! Redis keeps it out of its AOF, so after a restart `idle` counts from
//! the consumer's last logged interaction.

use strand_engine::keyspace::stream::{Delivery, Group, Stream, StreamChange, StreamId};
use strand_engine::keyspace::{Change, Op, Value};

use super::keys::{help, subcommand, Sub};
use super::streams::{entry_reply, id_reply, parse_bound, parse_id, parse_strict_id, peek, read, reply, stream_change, ReadArgs};
use super::strings::{db8, int_arg, parse_i64, write};
use super::{err, flags, Command, Ctx, Route};
use crate::reply::Reply;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `NOGROUP No such key '<key>' or consumer group '<group>'<suffix>`.
fn no_key_or_group(key: &[u8], group: &[u8], suffix: &str) -> Reply {
    Reply::error(format!("NOGROUP No such key '{}' or consumer group '{}'{suffix}", text(key), text(group)))
}

/// `NOGROUP No such consumer group '<group>' for key name '<key>'`.
fn no_group(key: &[u8], group: &[u8]) -> Reply {
    Reply::error(format!("NOGROUP No such consumer group '{}' for key name '{}'", text(group), text(key)))
}

/// The group of the stream at `key`, with Redis's NOGROUP error when either is missing.
fn group_of<'a>(s: Option<&'a Stream>, key: &[u8], group: &[u8], suffix: &str) -> Result<(&'a Stream, &'a Group), Reply> {
    s.and_then(|s| s.groups.get(group).map(|g| (s, g))).ok_or_else(|| no_key_or_group(key, group, suffix))
}

/// Milliseconds from `then` to `now`, never negative.
fn since(now: u64, then: u64) -> i64 {
    now.saturating_sub(then).min(i64::MAX as u64) as i64
}

// ---------------------------------------------------------------------------
// XGROUP
// ---------------------------------------------------------------------------

const XGROUP_SUBS: &[Sub] = &[
    Sub { name: "create", arity: -5 },
    Sub { name: "setid", arity: -5 },
    Sub { name: "destroy", arity: 4 },
    Sub { name: "createconsumer", arity: 5 },
    Sub { name: "delconsumer", arity: 5 },
    Sub { name: "help", arity: 2 },
];

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

/// Redis's `addReplySubcommandSyntaxError`.
fn sub_syntax(args: &[&[u8]]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        text(&args[1][..args[1].len().min(128)]),
        text(args[0]).to_ascii_uppercase()
    ))
}

/// [XGROUP](https://redis.io/commands/xgroup/): CREATE, SETID, DESTROY,
/// CREATECONSUMER, DELCONSUMER and HELP.
pub fn xgroup(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xgroup_inner(ctx, args))
}

/// The options of CREATE and SETID: MKSTREAM (CREATE only) and ENTRIESREAD.
fn xgroup_options(args: &[&[u8]], create: bool) -> Result<(bool, Option<u64>), Reply> {
    let (mut mkstream, mut entries_read) = (false, None);
    let mut i = 5;
    while i < args.len() {
        if create && args[i].eq_ignore_ascii_case(b"mkstream") {
            mkstream = true;
            i += 1;
        } else if args[i].eq_ignore_ascii_case(b"entriesread") && i + 1 < args.len() {
            let n = int_arg(args[i + 1])?;
            if n < -1 {
                return Err(Reply::error("ERR value for ENTRIESREAD must be positive or -1"));
            }
            entries_read = u64::try_from(n).ok();
            i += 2;
        } else {
            return Err(sub_syntax(args));
        }
    }
    Ok((mkstream, entries_read))
}

fn xgroup_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let sub = subcommand("xgroup", XGROUP_SUBS, args)?;
    if sub.name == "help" {
        return Ok(help(XGROUP_HELP));
    }
    let (key, group) = (args[2], args[3]);
    let (mkstream, entries_read) = match sub.name {
        "create" if args.len() <= 8 => xgroup_options(args, true)?,
        "setid" if args.len() == 5 || args.len() == 7 => xgroup_options(args, false)?,
        "create" | "setid" => return Err(sub_syntax(args)),
        _ => (false, None),
    };
    let s = peek(ctx, key)?;
    let Some(s) = s else {
        if !mkstream {
            return Err(Reply::error(
                "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
            ));
        }
        let id = if args[4] == b"$" { StreamId::MIN } else { parse_strict_id(args[4])? };
        stream_change(ctx, key, StreamChange::GroupCreate { group, last_id: id, entries_read: entries_read.map(|_| 0) })?;
        return Ok(Reply::Ok);
    };
    let exists = s.groups.get(group);
    if exists.is_none() && matches!(sub.name, "setid" | "createconsumer" | "delconsumer") {
        return Err(no_group(key, group));
    }
    let change = match sub.name {
        "create" => {
            let id = if args[4] == b"$" { s.last_id } else { parse_strict_id(args[4])? };
            if exists.is_some() {
                return Err(Reply::error("BUSYGROUP Consumer Group name already exists"));
            }
            let entries_read = entries_read.map(|n| n.min(s.entries_added));
            (StreamChange::GroupCreate { group, last_id: id, entries_read }, Reply::Ok)
        }
        "setid" => {
            let id = if args[4] == b"$" { s.last_id } else { parse_id(args[4], 0)? };
            let entries_read = entries_read.map(|n| n.min(s.entries_added));
            (StreamChange::GroupSetId { group, last_id: id, entries_read }, Reply::Ok)
        }
        "destroy" => match exists {
            Some(_) => (StreamChange::GroupDestroy { group }, Reply::Int(1)),
            None => return Ok(Reply::Int(0)),
        },
        "createconsumer" => match exists.map(|g| g.consumers.contains_key(args[4])) {
            Some(false) => (StreamChange::ConsumerCreate { group, consumer: args[4] }, Reply::Int(1)),
            _ => return Ok(Reply::Int(0)),
        },
        _ => match exists.and_then(|g| g.consumers.get(args[4])) {
            Some(c) => (StreamChange::ConsumerDel { group, consumer: args[4] }, Reply::Int(c.pending.len() as i64)),
            None => return Ok(Reply::Int(0)),
        },
    };
    stream_change(ctx, key, change.0)?;
    Ok(change.1)
}

// ---------------------------------------------------------------------------
// XREADGROUP
// ---------------------------------------------------------------------------

/// [XREADGROUP](https://redis.io/commands/xreadgroup/): `>` delivers entries
/// no consumer of the group got yet (and makes them pending for this one
/// unless NOACK); an ID reads this consumer's pending entries after it.
pub fn xreadgroup(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xreadgroup_inner(ctx, args))
}

/// What XREADGROUP reads from each of its streams, checked before anything
/// is served: None for `>`, Some(id) for the consumer's history after id;
/// NOGROUP, WRONGTYPE or a bad ID otherwise.
fn xreadgroup_wants(ctx: &mut Ctx<'_>, r: &ReadArgs<'_>, args: &[&[u8]], group: &[u8]) -> Result<Vec<Option<StreamId>>, Reply> {
    let keys = r.keys(args);
    let mut wants = Vec::with_capacity(keys.len());
    for (&key, &arg) in keys.iter().zip(r.ids(args)) {
        group_of(read(ctx, key)?, key, group, " in XREADGROUP with GROUP option")?;
        wants.push(match arg {
            b"$" => return Err(Reply::error(
                "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
            )),
            b">" => None,
            _ => Some(parse_strict_id(arg)?),
        });
    }
    Ok(wants)
}

/// XREADGROUP's checks alone (the same arguments): OK when it would serve
/// without an error. An XREADGROUP over several shards runs it on each
/// first, so that no shard delivers when another would refuse.
pub fn xreadgroup_check(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    let checked = ReadArgs::parse(args, true).and_then(|r| {
        let (group, _) = r.group.ok_or_else(|| Reply::error("ERR Missing GROUP option for XREADGROUP"))?;
        xreadgroup_wants(ctx, &r, args, group)
    });
    checked.map_or_else(|e| e, |_| Reply::Ok)
}

fn xreadgroup_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let r = ReadArgs::parse(args, true)?;
    let (group, consumer) = r.group.ok_or_else(|| Reply::error("ERR Missing GROUP option for XREADGROUP"))?;
    let keys = r.keys(args);
    let wants = xreadgroup_wants(ctx, &r, args, group)?;
    let count = if r.count == 0 { usize::MAX } else { r.count as usize };
    let now = ctx.now;
    let mut out = Vec::new();
    for (&key, want) in keys.iter().zip(&wants) {
        let (served, delivery, known) = {
            let (s, g) = group_of(peek(ctx, key)?, key, group, " in XREADGROUP with GROUP option")?;
            let known = g.consumers.contains_key(consumer);
            let (served, delivery) = match want {
                None => deliver_new(s, g, group, consumer, count, r.noack, r.claim, now),
                Some(after) => deliver_history(s, g, group, consumer, *after, count, now),
            };
            (served, delivery, known)
        };
        // A reader the group does not know yet is created first, with its
        // own record, as Redis does (and notifies `xgroup-createconsumer`).
        if !known {
            stream_change(ctx, key, StreamChange::ConsumerCreate { group, consumer })?;
        }
        match delivery {
            Some(d) => stream_change(ctx, key, StreamChange::Deliver(d))?,
            None => touch_consumer(ctx, key, group, consumer, now),
        }
        if let Some(entries) = served {
            out.push((Reply::bulk(key), entries));
        }
    }
    if !out.is_empty() {
        return Ok(Reply::Keyed(out));
    }
    match r.block {
        Some(timeout) if wants.iter().any(Option::is_none) => Ok(ctx.block(keys, timeout, Reply::NilArray)),
        _ => Ok(Reply::NilArray),
    }
}

/// `>`: the entries after the group's last-delivered ID; with CLAIM
/// (Redis 8.4), first the pending entries idle at least that long, each
/// answered with its idle time and delivery count before this delivery
/// (new entries answer 0 and 0).
#[allow(clippy::too_many_arguments)]
fn deliver_new<'a>(
    s: &Stream,
    g: &Group,
    group: &'a [u8],
    consumer: &'a [u8],
    count: usize,
    noack: bool,
    claim: Option<u64>,
    now: u64,
) -> (Option<Reply>, Option<Delivery<'a>>) {
    let mut d = Delivery { group, consumer: Some(consumer), ..Delivery::default() };
    let mut out = Vec::new();
    if let Some(min_idle) = claim {
        for (&id, p) in g.pel.iter() {
            if out.len() >= count {
                break;
            }
            let idle = now.saturating_sub(p.delivered_ms);
            let Some(fields) = s.get(id).filter(|_| idle >= min_idle) else { continue };
            out.push(with_counts(entry_reply(id, fields), idle, p.deliveries));
            d.pending.push((id, now, p.deliveries + 1));
        }
    }
    let left = count - out.len();
    let entries: Vec<_> = g.last_id.next().map(|from| s.range(from, StreamId::MAX, false).take(left).collect()).unwrap_or_default();
    if let Some(&(last, _)) = entries.last() {
        let read = entries.iter().fold(g.entries_read, |read, (id, _)| s.entries_read_after(read, *id));
        d.last_id = Some((last, read));
        if !noack {
            d.pending.extend(entries.iter().map(|(id, _)| (*id, now, 1)));
        }
        for (id, f) in &entries {
            let e = entry_reply(*id, f);
            out.push(if claim.is_some() { with_counts(e, 0, 0) } else { e });
        }
    }
    if out.is_empty() {
        let created = (!g.consumers.contains_key(consumer)).then_some(d);
        return (None, created);
    }
    d.active = true;
    (Some(Reply::Array(out)), Some(d))
}

/// An entry answered by XREADGROUP ... CLAIM: `[id, fields, idle ms, delivery count]`.
fn with_counts(entry: Reply, idle: u64, deliveries: u64) -> Reply {
    match entry {
        Reply::Array(mut v) => {
            v.push(Reply::Int(idle.min(i64::MAX as u64) as i64));
            v.push(Reply::Int(deliveries as i64));
            Reply::Array(v)
        }
        other => other,
    }
}

/// An ID: the consumer's pending entries after it, each delivered again
/// (`[id, nil]` for one deleted from the stream since).
fn deliver_history<'a>(
    s: &Stream,
    g: &Group,
    group: &'a [u8],
    consumer: &'a [u8],
    after: StreamId,
    count: usize,
    now: u64,
) -> (Option<Reply>, Option<Delivery<'a>>) {
    let mine = g.consumers.get(consumer);
    let ids: Vec<StreamId> = match (mine, after.next()) {
        (Some(c), Some(from)) => c.pending.range(from..).take(count).copied().collect(),
        _ => Vec::new(),
    };
    let mut entries = Vec::with_capacity(ids.len());
    let mut pending = Vec::new();
    for id in ids {
        match s.get(id) {
            Some(f) => {
                entries.push(entry_reply(id, f));
                let times = g.pel.get(&id).map_or(0, |p| p.deliveries);
                pending.push((id, now, times + 1));
            }
            None => entries.push(Reply::Array(vec![id_reply(id), Reply::NilArray])),
        }
    }
    let d = (mine.is_none() || !pending.is_empty()).then(|| Delivery { group, consumer: Some(consumer), pending, ..Delivery::default() });
    (Some(Reply::Array(entries)), d)
}

/// A read that changed nothing else still refreshes the consumer's seen time (in memory only).
fn touch_consumer(ctx: &mut Ctx<'_>, key: &[u8], group: &[u8], consumer: &[u8], now: u64) {
    if let Some(e) = ctx.shard.ks.lookup(ctx.db, key, now) {
        if let Value::Stream(s) = &mut e.value {
            if let Some(c) = s.groups.get_mut(group).and_then(|g| g.consumers.get_mut(consumer)) {
                c.seen_ms = now;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// XDELEX, XACKDEL (Redis 8.2)
// ---------------------------------------------------------------------------

/// What deleting an entry does to the groups' references to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefMode {
    /// Delete; pending entries lists keep the ID.
    KeepRef,
    /// Delete, and drop the ID from every pending entries list.
    DelRef,
    /// Delete only when no group holds it pending or has yet to be delivered it.
    Acked,
}

/// Parses `[KEEPREF | DELREF | ACKED] IDS numids id...` from `args[from..]`.
fn parse_ref_ids(args: &[&[u8]], from: usize) -> Result<(RefMode, Vec<StreamId>), Reply> {
    let (mut mode, mut ids) = (None, None);
    let mut i = from;
    while i < args.len() {
        let a = args[i];
        let named = [(&b"keepref"[..], RefMode::KeepRef), (b"delref", RefMode::DelRef), (b"acked", RefMode::Acked)];
        if let Some(&(_, m)) = named.iter().find(|(name, _)| a.eq_ignore_ascii_case(name)) {
            if mode.is_some() {
                return Err(Reply::error(err::SYNTAX));
            }
            mode = Some(m);
            i += 1;
        } else if a.eq_ignore_ascii_case(b"ids") && i + 1 < args.len() && ids.is_none() {
            let n =
                parse_i64(args[i + 1]).filter(|&n| n >= 1).ok_or_else(|| Reply::error("ERR Number of IDs must be a positive integer"))?;
            let start = i + 2;
            if n as u64 > (args.len() - start) as u64 {
                return Err(Reply::error("ERR The `numids` parameter must match the number of arguments"));
            }
            let end = start + n as usize;
            ids = Some(args[start..end].iter().map(|a| parse_strict_id(a)).collect::<Result<Vec<_>, _>>()?);
            i = end;
        } else {
            return Err(Reply::error(err::SYNTAX));
        }
    }
    let ids = ids.ok_or_else(|| Reply::error(err::SYNTAX))?;
    Ok((mode.unwrap_or(RefMode::KeepRef), ids))
}

/// The changes that delete `ids` under `mode`, and each one's code: 1
/// deleted (or already gone), 2 kept because a group still needs it (ACKED).
/// `acking`: the group this command acknowledges the IDs in (they no longer count as pending there).
fn delete_with_refs(s: &Stream, ids: &[StreamId], mode: RefMode, acking: Option<&[u8]>) -> (Vec<StreamChange<'static>>, Vec<i64>) {
    let mut gone = Vec::new();
    let mut codes = Vec::with_capacity(ids.len());
    for &id in ids {
        let needed = || s.groups.iter().any(|(name, g)| g.last_id < id || (g.pel.contains_key(&id) && Some(&name[..]) != acking));
        if mode == RefMode::Acked && needed() {
            codes.push(2);
            continue;
        }
        if s.get(id).is_some() && !gone.contains(&id) {
            gone.push(id);
        }
        codes.push(1);
    }
    let mut changes = Vec::new();
    if !gone.is_empty() {
        if mode == RefMode::DelRef {
            changes.push(StreamChange::Unref(gone.clone()));
        }
        changes.push(StreamChange::Del(gone));
    }
    (changes, codes)
}

/// Writes several changes to one stream as one record.
fn write_changes(ctx: &mut Ctx<'_>, key: &[u8], changes: Vec<StreamChange<'_>>) -> Result<(), Reply> {
    let db = db8(ctx);
    let mut ops: Vec<Op<'_>> = changes.into_iter().map(|c| Op::Coll { db, key, change: Change::Stream(c) }).collect();
    match ops.len() {
        0 => Ok(()),
        1 => write(ctx, ops.remove(0)),
        _ => write(ctx, Op::Group(ops)),
    }
}

/// [XDELEX](https://redis.io/commands/xdelex/): XDEL with a say over the
/// groups' references: one code per ID (-1 no such entry, 1 deleted, 2 kept
/// because a group still needs it under ACKED).
pub fn xdelex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xdelex_inner(ctx, args))
}

fn xdelex_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let (mode, ids) = parse_ref_ids(args, 2)?;
    let Some(s) = peek(ctx, args[1])? else { return Ok(Reply::Array(ids.iter().map(|_| Reply::Int(-1)).collect())) };
    let mut codes = Vec::with_capacity(ids.len());
    let mut changes = Vec::new();
    for &id in &ids {
        if s.get(id).is_none() || changes.iter().any(|c| matches!(c, StreamChange::Del(v) if v.contains(&id))) {
            codes.push(Reply::Int(-1));
            continue;
        }
        let (c, code) = delete_with_refs(s, &[id], mode, None);
        changes.extend(c);
        codes.push(Reply::Int(code[0]));
    }
    write_changes(ctx, args[1], changes)?;
    Ok(Reply::Array(codes))
}

/// [XACKDEL](https://redis.io/commands/xackdel/): XACK and XDEL at once, one
/// code per ID (-1 not pending in the group, 1 acked and deleted, 2 acked and
/// kept because another group still needs it under ACKED).
pub fn xackdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xackdel_inner(ctx, args))
}

fn xackdel_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let (key, group) = (args[1], args[2]);
    let (mode, ids) = parse_ref_ids(args, 3)?;
    let none = Reply::Array(ids.iter().map(|_| Reply::Int(-1)).collect());
    let Some(s) = peek(ctx, key)? else { return Ok(none) };
    let Some(g) = s.groups.get(group) else { return Ok(none) };
    let mut acked: Vec<StreamId> = Vec::new();
    let mut changes = Vec::new();
    let mut codes = Vec::with_capacity(ids.len());
    for &id in &ids {
        if !g.pel.contains_key(&id) || acked.contains(&id) {
            codes.push(Reply::Int(-1));
            continue;
        }
        acked.push(id);
        let (c, code) = delete_with_refs(s, &[id], mode, Some(group));
        changes.extend(c);
        codes.push(Reply::Int(code[0]));
    }
    if !acked.is_empty() {
        changes.insert(0, StreamChange::Ack { group, ids: acked });
    }
    write_changes(ctx, key, changes)?;
    Ok(Reply::Array(codes))
}

// ---------------------------------------------------------------------------
// XACK, XPENDING
// ---------------------------------------------------------------------------

/// [XACK](https://redis.io/commands/xack/): removes entries from a group's
/// pending entries list; answers how many were pending.
pub fn xack(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xack_inner(ctx, args))
}

fn xack_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let (key, group) = (args[1], args[2]);
    let Some(g) = peek(ctx, key)?.and_then(|s| s.groups.get(group)) else { return Ok(Reply::Int(0)) };
    let ids = args[3..].iter().map(|a| parse_strict_id(a)).collect::<Result<Vec<_>, _>>()?;
    let mut acked: Vec<StreamId> = ids.into_iter().filter(|id| g.pel.contains_key(id)).collect();
    acked.sort_unstable();
    acked.dedup();
    let n = acked.len();
    if n > 0 {
        stream_change(ctx, key, StreamChange::Ack { group, ids: acked })?;
    }
    Ok(Reply::Int(n as i64))
}

/// [XPENDING](https://redis.io/commands/xpending/): the summary of a
/// group's pending entries, or (with a range) the entries themselves.
pub fn xpending(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xpending_inner(ctx, args))
}

fn xpending_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let (key, group) = (args[1], args[2]);
    let n = args.len();
    if n != 3 && !(6..=9).contains(&n) {
        return Err(Reply::error(err::SYNTAX));
    }
    let mut range = None;
    if n >= 6 {
        let mut at = 3;
        let mut min_idle = 0;
        if args[3].eq_ignore_ascii_case(b"idle") {
            min_idle = int_arg(args[4])?;
            if n < 8 {
                return Err(Reply::error(err::SYNTAX));
            }
            at += 2;
        }
        let count = int_arg(args[at + 2])?.max(0) as usize;
        let start = parse_bound(args[at], 0, true)?;
        let end = parse_bound(args[at + 1], u64::MAX, false)?;
        range = Some((min_idle, start, end, count, args.get(at + 3).copied()));
    }
    let now = ctx.now;
    let (_, g) = group_of(read(ctx, key)?, key, group, "")?;
    let Some((min_idle, start, end, count, consumer)) = range else { return Ok(pending_summary(g)) };
    let ids: Box<dyn Iterator<Item = &StreamId>> = match consumer {
        Some(name) => match g.consumers.get(name) {
            Some(c) if start <= end => Box::new(c.pending.range(start..=end)),
            Some(_) => Box::new(std::iter::empty()),
            None => return Ok(Reply::Array(Vec::new())),
        },
        None if start <= end => Box::new(g.pel.range(start..=end).map(|(id, _)| id)),
        None => Box::new(std::iter::empty()),
    };
    let rows = ids
        .filter_map(|id| g.pel.get(id).map(|p| (id, p)))
        .filter(|(_, p)| min_idle <= 0 || since(now, p.delivered_ms) >= min_idle)
        .take(count)
        .map(|(id, p)| {
            Reply::Array(vec![
                id_reply(*id),
                Reply::bulk(&p.consumer),
                Reply::Int(since(now, p.delivered_ms)),
                Reply::Int(p.deliveries as i64),
            ])
        })
        .collect();
    Ok(Reply::Array(rows))
}

/// XPENDING's summary: count, first and last IDs, and pending per consumer.
fn pending_summary(g: &Group) -> Reply {
    let (Some((first, _)), Some((last, _))) = (g.pel.first_key_value(), g.pel.last_key_value()) else {
        return Reply::Array(vec![Reply::Int(0), Reply::Nil, Reply::Nil, Reply::NilArray]);
    };
    let consumers = g
        .consumers
        .iter()
        .filter(|(_, c)| !c.pending.is_empty())
        .map(|(name, c)| Reply::Array(vec![Reply::bulk(name), Reply::Bulk(c.pending.len().to_string().into_bytes())]))
        .collect();
    Reply::Array(vec![Reply::Int(g.pel.len() as i64), id_reply(*first), id_reply(*last), Reply::Array(consumers)])
}

// ---------------------------------------------------------------------------
// XCLAIM, XAUTOCLAIM
// ---------------------------------------------------------------------------

/// XCLAIM's options after the IDs.
struct ClaimOptions {
    force: bool,
    justid: bool,
    /// Delivery time to set (IDLE or TIME), None for now.
    time: Option<i64>,
    retrycount: Option<u64>,
    last_id: StreamId,
}

fn claim_options(args: &[&[u8]], now: u64) -> Result<ClaimOptions, Reply> {
    let mut o = ClaimOptions { force: false, justid: false, time: None, retrycount: None, last_id: StreamId::MIN };
    let mut j = 0;
    let num = |a: &[u8], what: &str| parse_i64(a).ok_or_else(|| Reply::error(format!("ERR Invalid {what} option argument for XCLAIM")));
    while j < args.len() {
        let more = j + 1 < args.len();
        let is = |name: &str| args[j].eq_ignore_ascii_case(name.as_bytes());
        if is("force") {
            o.force = true;
        } else if is("justid") {
            o.justid = true;
        } else if is("idle") && more {
            j += 1;
            o.time = Some((now as i64).saturating_sub(num(args[j], "IDLE")?));
        } else if is("time") && more {
            j += 1;
            o.time = Some(num(args[j], "TIME")?);
        } else if is("retrycount") && more {
            j += 1;
            o.retrycount = Some(num(args[j], "RETRYCOUNT")?.max(0) as u64);
        } else if is("lastid") && more {
            j += 1;
            o.last_id = parse_strict_id(args[j])?;
        } else {
            return Err(Reply::error(format!("ERR Unrecognized XCLAIM option '{}'", text(args[j]))));
        }
        j += 1;
    }
    Ok(o)
}

/// [XCLAIM](https://redis.io/commands/xclaim/): moves pending entries idle
/// for at least min-idle-time to another consumer.
pub fn xclaim(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xclaim_inner(ctx, args))
}

fn xclaim_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let (key, group, consumer) = (args[1], args[2], args[3]);
    let now = ctx.now;
    group_of(read(ctx, key)?, key, group, "")?;
    let min_idle = parse_i64(args[4]).ok_or_else(|| Reply::error("ERR Invalid min-idle-time argument for XCLAIM"))?.max(0);
    let ids_end = 5 + args[5..].iter().take_while(|a| parse_strict_id(a).is_ok()).count();
    let ids: Vec<StreamId> = args[5..ids_end].iter().filter_map(|a| parse_strict_id(a).ok()).collect();
    let o = claim_options(&args[ids_end..], now)?;
    let time = o.time.filter(|&t| t >= 0 && t <= now as i64).map_or(now, |t| t as u64);
    let (s, g) = group_of(peek(ctx, key)?, key, group, "")?;
    let mut d = Delivery { group, consumer: Some(consumer), active: false, ..Delivery::default() };
    if o.last_id > g.last_id {
        d.last_id = Some((o.last_id, g.entries_read));
    }
    let mut out = Vec::new();
    for id in ids {
        let nack = g.pel.get(&id);
        let Some(fields) = s.get(id) else {
            if nack.is_some() && !d.unpend.contains(&id) {
                d.unpend.push(id);
            }
            continue;
        };
        let deliveries = match nack {
            Some(p) if min_idle > 0 && since(now, p.delivered_ms) < min_idle => continue,
            Some(p) => p.deliveries,
            None if o.force => 1,
            None => continue,
        };
        let deliveries = match o.retrycount {
            Some(n) => n,
            None if o.justid => deliveries,
            None => deliveries + 1,
        };
        d.pending.retain(|(p, _, _)| *p != id);
        d.pending.push((id, time, deliveries));
        d.active = true;
        out.push(if o.justid { id_reply(id) } else { entry_reply(id, fields) });
    }
    if d.active || !d.unpend.is_empty() || d.last_id.is_some() {
        if !d.active {
            d.consumer = None;
        }
        stream_change(ctx, key, StreamChange::Deliver(d))?;
    }
    Ok(Reply::Array(out))
}

/// [XAUTOCLAIM](https://redis.io/commands/xautoclaim/): XCLAIM over the
/// group's pending entries from a start ID; answers the next start, the
/// claimed entries, and the IDs dropped because their entries are gone.
pub fn xautoclaim(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xautoclaim_inner(ctx, args))
}

fn xautoclaim_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let (key, group, consumer) = (args[1], args[2], args[3]);
    let min_idle = parse_i64(args[4]).ok_or_else(|| Reply::error("ERR Invalid min-idle-time argument for XAUTOCLAIM"))?.max(0);
    let start = parse_bound(args[5], 0, true)?;
    let (mut count, mut justid) = (100usize, false);
    let mut j = 6;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            let max = (i64::MAX / 16) as usize;
            count = parse_i64(args[j + 1]).filter(|&n| n >= 1 && n as usize <= max).ok_or_else(|| Reply::error("ERR COUNT must be > 0"))?
                as usize;
            j += 1;
        } else if args[j].eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else {
            return Err(Reply::error(err::SYNTAX));
        }
        j += 1;
    }
    let now = ctx.now;
    let (s, g) = group_of(read(ctx, key)?, key, group, "")?;
    let mut d = Delivery { group, consumer: Some(consumer), ..Delivery::default() };
    let (mut claimed, mut deleted) = (Vec::new(), Vec::new());
    let mut attempts = count.saturating_mul(10);
    let mut left = count;
    let mut pel = g.pel.range(start..).peekable();
    while attempts > 0 && left > 0 {
        let Some((&id, p)) = pel.next() else { break };
        attempts -= 1;
        let Some(fields) = s.get(id) else {
            d.unpend.push(id);
            deleted.push(id_reply(id));
            left -= 1;
            continue;
        };
        if min_idle > 0 && since(now, p.delivered_ms) < min_idle {
            continue;
        }
        d.pending.push((id, now, if justid { p.deliveries } else { p.deliveries + 1 }));
        claimed.push(if justid { id_reply(id) } else { entry_reply(id, fields) });
        left -= 1;
    }
    let next = pel.next().map_or(StreamId::MIN, |(id, _)| *id);
    d.active = !d.pending.is_empty();
    if d.active || !d.unpend.is_empty() {
        if !d.active {
            d.consumer = None;
        }
        stream_change(ctx, key, StreamChange::Deliver(d))?;
    }
    Ok(Reply::Array(vec![id_reply(next), Reply::Array(claimed), Reply::Array(deleted)]))
}

// ---------------------------------------------------------------------------
// XINFO
// ---------------------------------------------------------------------------

const XINFO_SUBS: &[Sub] = &[
    Sub { name: "stream", arity: -3 },
    Sub { name: "groups", arity: 3 },
    Sub { name: "consumers", arity: 4 },
    Sub { name: "help", arity: 2 },
];

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

/// [XINFO](https://redis.io/commands/xinfo/): STREAM [FULL [COUNT n]], GROUPS, CONSUMERS and HELP.
pub fn xinfo(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(xinfo_inner(ctx, args))
}

fn xinfo_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let sub = subcommand("xinfo", XINFO_SUBS, args)?;
    if sub.name == "help" {
        return Ok(help(XINFO_HELP));
    }
    let now = ctx.now;
    let key = args[2];
    let s = read(ctx, key)?.ok_or_else(|| Reply::error(err::NO_SUCH_KEY))?;
    match sub.name {
        "groups" => Ok(Reply::Array(s.groups.iter().map(|(name, g)| group_info(s, name, g)).collect())),
        "consumers" => {
            let g = s.groups.get(args[3]).ok_or_else(|| no_group(key, args[3]))?;
            let rows = g
                .consumers
                .iter()
                .map(|(name, c)| {
                    Reply::Map(vec![
                        (Reply::bulk("name"), Reply::bulk(name)),
                        (Reply::bulk("pending"), Reply::Int(c.pending.len() as i64)),
                        (Reply::bulk("idle"), Reply::Int(since(now, c.seen_ms))),
                        (Reply::bulk("inactive"), Reply::Int(c.active_ms.map_or(-1, |t| since(now, t)))),
                    ])
                })
                .collect();
            Ok(Reply::Array(rows))
        }
        _ => match args.len() {
            3 => Ok(stream_info(s, now)),
            4 | 6 if args[3].eq_ignore_ascii_case(b"full") => {
                let count = match args.get(4) {
                    Some(opt) if opt.eq_ignore_ascii_case(b"count") => int_arg(args[5])?,
                    Some(_) => return Err(Reply::error(err::SYNTAX)),
                    None => 10,
                };
                let count = if count < 0 { 10 } else { count as usize };
                Ok(stream_info_full(s, now, if count == 0 { usize::MAX } else { count }))
            }
            _ => Err(Reply::error(err::SYNTAX)),
        },
    }
}

fn field(name: &'static str, v: Reply) -> (Reply, Reply) {
    (Reply::bulk(name), v)
}

fn opt_int(v: Option<u64>) -> Reply {
    v.map_or(Reply::Nil, |n| Reply::Int(n as i64))
}

/// The fields XINFO STREAM and XINFO STREAM FULL share. Redis's
/// radix-tree figures describe its own layout; strand answers the number of
/// 100-entry blocks its trimming works in as the keys, and one more (the
/// root) as the nodes, which is what Redis shows for small streams.
fn stream_head(s: &Stream, now: u64) -> Vec<(Reply, Reply)> {
    let blocks = s.len().div_ceil(100) as i64;
    let mut head = vec![
        field("length", Reply::Int(s.len() as i64)),
        field("radix-tree-keys", Reply::Int(blocks)),
        field("radix-tree-nodes", Reply::Int(blocks + 1)),
        field("last-generated-id", id_reply(s.last_id)),
        field("max-deleted-entry-id", id_reply(s.max_deleted)),
        field("entries-added", Reply::Int(s.entries_added as i64)),
        field("recorded-first-entry-id", id_reply(s.first_id())),
    ];
    head.extend(super::stream_config::info_fields(s, now));
    head
}

fn stream_info(s: &Stream, now: u64) -> Reply {
    let mut m = stream_head(s, now);
    m.push(field("groups", Reply::Int(s.groups.len() as i64)));
    m.push(field("first-entry", s.first().map_or(Reply::Nil, |(id, f)| entry_reply(id, f))));
    m.push(field("last-entry", s.last().map_or(Reply::Nil, |(id, f)| entry_reply(id, f))));
    Reply::Map(m)
}

fn group_info(s: &Stream, name: &[u8], g: &Group) -> Reply {
    Reply::Map(vec![
        field("name", Reply::bulk(name)),
        field("consumers", Reply::Int(g.consumers.len() as i64)),
        field("pending", Reply::Int(g.pel.len() as i64)),
        field("last-delivered-id", id_reply(g.last_id)),
        field("entries-read", opt_int(g.entries_read)),
        field("lag", opt_int(s.lag(g))),
    ])
}

fn stream_info_full(s: &Stream, now: u64, count: usize) -> Reply {
    let mut m = stream_head(s, now);
    m.push(field(
        "entries",
        Reply::Array(s.range(StreamId::MIN, StreamId::MAX, false).take(count).map(|(id, f)| entry_reply(id, f)).collect()),
    ));
    let groups = s
        .groups
        .iter()
        .map(|(name, g)| {
            let pel = g
                .pel
                .iter()
                .take(count)
                .map(|(id, p)| {
                    Reply::Array(vec![
                        id_reply(*id),
                        Reply::bulk(&p.consumer),
                        Reply::Int(p.delivered_ms as i64),
                        Reply::Int(p.deliveries as i64),
                    ])
                })
                .collect();
            let consumers = g
                .consumers
                .iter()
                .map(|(cname, c)| {
                    let pending = c
                        .pending
                        .iter()
                        .take(count)
                        .filter_map(|id| g.pel.get(id).map(|p| (id, p)))
                        .map(|(id, p)| {
                            Reply::Array(vec![id_reply(*id), Reply::Int(p.delivered_ms as i64), Reply::Int(p.deliveries as i64)])
                        })
                        .collect();
                    Reply::Map(vec![
                        field("name", Reply::bulk(cname)),
                        field("seen-time", Reply::Int(c.seen_ms as i64)),
                        field("active-time", Reply::Int(c.active_ms.map_or(-1, |t| t as i64))),
                        field("pel-count", Reply::Int(c.pending.len() as i64)),
                        field("pending", Reply::Array(pending)),
                    ])
                })
                .collect();
            Reply::Map(vec![
                field("name", Reply::bulk(name)),
                field("last-delivered-id", id_reply(g.last_id)),
                field("entries-read", opt_int(g.entries_read)),
                field("lag", opt_int(s.lag(g))),
                field("pel-count", Reply::Int(g.pel.len() as i64)),
                field("pending", Reply::Array(pel)),
                field("consumers", Reply::Array(consumers)),
            ])
        })
        .collect();
    m.push(field("groups", Reply::Array(groups)));
    Reply::Map(m)
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

const fn entry(
    name: &'static str,
    arity: i32,
    flags: u32,
    first_key: i32,
    route: Route,
    categories: &'static [&'static str],
    summary: &'static str,
) -> Command {
    let (last_key, step) = if first_key == 0 { (0, 1) } else { (first_key, 1) };
    Command { name, arity, flags, first_key, last_key, step, route, categories, summary }
}

const W: u32 = flags::WRITE;
const W_FAST: u32 = flags::WRITE | flags::FAST;
const W_BLOCK: u32 = flags::WRITE | flags::BLOCKING;
const R: u32 = flags::READONLY;
const WRITE_FAST: &[&str] = &["@write", "@stream", "@fast"];
const WRITE_SLOW: &[&str] = &["@write", "@stream", "@slow"];
const READ_SLOW: &[&str] = &["@read", "@stream", "@slow"];

/// The consumer-group commands.
pub const COMMANDS: &[Command] = &[
    entry("xgroup", -2, flags::CONTAINER | W, 2, Route::Key(xgroup), WRITE_SLOW, "A container for consumer groups commands."),
    entry(
        "xreadgroup",
        -7,
        W_BLOCK | flags::MOVABLEKEYS,
        0,
        Route::Key(xreadgroup),
        &["@write", "@stream", "@slow", "@blocking"],
        "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.",
    ),
    entry(
        "xack",
        -4,
        W_FAST,
        1,
        Route::Key(xack),
        WRITE_FAST,
        "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.",
    ),
    entry(
        "xackdel",
        -6,
        W_FAST,
        1,
        Route::Key(xackdel),
        WRITE_FAST,
        "Acknowledges and conditionally deletes one or multiple entries for a stream consumer group.",
    ),
    entry("xdelex", -5, W_FAST, 1, Route::Key(xdelex), WRITE_FAST, "Deletes one or multiple entries from the stream."),
    entry(
        "xpending",
        -3,
        R,
        1,
        Route::Key(xpending),
        READ_SLOW,
        "Returns the information and entries from a stream consumer group's pending entries list.",
    ),
    entry(
        "xclaim",
        -6,
        W_FAST,
        1,
        Route::Key(xclaim),
        WRITE_FAST,
        "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.",
    ),
    entry(
        "xautoclaim",
        -6,
        W_FAST,
        1,
        Route::Key(xautoclaim),
        WRITE_FAST,
        "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.",
    ),
    entry("xinfo", -2, flags::CONTAINER | R, 2, Route::Key(xinfo), READ_SLOW, "A container for stream introspection commands."),
];
