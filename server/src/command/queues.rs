//! Reliable queue commands (strand's own, after Amazon SQS and RabbitMQ
//! quorum queues): QPUSH, QPOP, QMPOP, QACK, QNACK, QEXTEND, QDLQ, QLEN,
//! QPEEK, QPENDING, QINFO, QCONFIG, QDEL and QPURGE.
//!
//! A message is delivered to one consumer at a time under a lease
//! (visibility timeout). Acknowledged, it is gone; not acknowledged before
//! the lease ends, it is delivered again, and after `max-deliveries`
//! deliveries that failed it moves to the queue's dead-letter list with its
//! history (attempts, last reason). Every transition is a
//! [`QueueChange`] record stamped with the command's time; before a command
//! looks at a queue whose earliest deadline has passed, it logs a settle
//! record, and a shard timer does the same for queues nobody touches, so
//! blocked consumers wake when a delayed message comes due or a lease runs
//! out ([`tick`]).
//!
//! Durability follows `--appendfsync`: under `always` a push is durable
//! before its confirm and a lease before its messages go out (so attempt
//! counts are exact across a crash); under `everysec` they ride the next
//! group commit. A queue with `QCONFIG queue DURABILITY strict` has every
//! write synced before its reply under any policy (`Log::require_sync`).

use std::collections::{BTreeSet, HashMap};

use strand_engine::keyspace::queue::{Config, Message, NackKind, Overflow, Push, Queue, QueueChange, QueueOp};
use strand_engine::keyspace::{Change, Op, Value};

use super::strings::{db8, int_arg};
use super::typed::{self, change};
use super::{err, flags, one_key, timeout_ms_arg, Command, Ctx};
use crate::reply::Reply;

fn reply(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

/// Queues with a deadline ahead: what [`tick`] settles. One entry per
/// queue, at its earliest known deadline, however many writes move it
/// (a busy queue leases thousands of messages a second).
#[derive(Debug, Default)]
pub struct Timers {
    by_time: BTreeSet<(u64, u8, Vec<u8>)>,
    by_key: HashMap<(u8, Vec<u8>), u64>,
}

impl Timers {
    /// Notes that the queue at `key` has something to do at `t`.
    pub fn note(&mut self, t: u64, db: u8, key: &[u8]) {
        let slot = (db, key.to_vec());
        match self.by_key.get(&slot) {
            Some(&old) if old <= t => {}
            old => {
                if let Some(&old) = old {
                    self.by_time.remove(&(old, db, key.to_vec()));
                }
                self.by_time.insert((t, db, key.to_vec()));
                self.by_key.insert(slot, t);
            }
        }
    }

    /// Takes the earliest entry due at `now`.
    fn pop_due(&mut self, now: u64) -> Option<(u8, Vec<u8>)> {
        let &(t, _, _) = self.by_time.first()?;
        if t > now {
            return None;
        }
        let (_, db, key) = self.by_time.pop_first()?;
        self.by_key.remove(&(db, key.clone()));
        Some((db, key))
    }

    /// Queues waiting.
    pub fn len(&self) -> usize {
        self.by_time.len()
    }

    /// Whether no queue waits.
    pub fn is_empty(&self) -> bool {
        self.by_time.is_empty()
    }
}

/// The queue at `key` before a write or a read, without touching it.
fn peek<'a>(ctx: &'a Ctx<'_>, key: &[u8]) -> Result<Option<&'a Queue>, Reply> {
    typed::peek(ctx, key)
}

/// Writes one queue change stamped with the command's time, then notes the
/// queue's next deadline for the timer; a strict queue's record is synced
/// before the reply, whatever `--appendfsync` says.
fn write(ctx: &mut Ctx<'_>, key: &[u8], op: QueueOp<'_>) -> Result<(), Reply> {
    change(ctx, key, Change::Queue(QueueChange { at: ctx.now, op }))?;
    let Some(q) = peek(ctx, key)? else { return Ok(()) };
    let (next, strict) = (q.next_event(), q.config.strict);
    if let Some(t) = next {
        let db = db8(ctx);
        ctx.shard.queue_timers.note(t, db, key);
    }
    if let (true, Some(log)) = (strict, ctx.shard.ks.log()) {
        log.require_sync(log.last_lsn());
    }
    Ok(())
}

/// The queue at `key` as of the command's time: when a deadline has
/// passed, a settle record goes to the log first.
fn settled<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a Queue>, Reply> {
    let now = ctx.now;
    let due = peek(ctx, key)?.and_then(Queue::next_event).is_some_and(|t| t <= now);
    if due {
        write(ctx, key, QueueOp::Settle)?;
    }
    peek(ctx, key)
}

/// Settles the queues whose deadlines passed (the shard's timer, every 100 ms).
/// Returns whether any queue changed (blocked consumers may be served).
pub fn tick(st: &mut crate::shard::ShardState, now: u64) -> bool {
    let mut changed = false;
    while let Some((db, key)) = st.queue_timers.pop_due(now) {
        let next = |st: &crate::shard::ShardState| match st.ks.peek(db as usize, &key, now).map(|e| &e.value) {
            Some(Value::Queue(q)) => q.next_event(),
            _ => None,
        };
        match next(st) {
            Some(t) if t <= now => {}
            // The deadline moved later (a lease extended, a message acked): wait for it.
            Some(t) => {
                st.queue_timers.note(t, db, &key);
                continue;
            }
            None => continue,
        }
        let op = Op::Coll { db, key: &key, change: Change::Queue(QueueChange { at: now, op: QueueOp::Settle }) };
        if st.ks.write(op, now).is_err() {
            // The log refuses writes: try again in a second.
            st.queue_timers.note(now + 1000, db, &key);
            break;
        }
        changed = true;
        if let Some(t) = next(st) {
            st.queue_timers.note(t, db, &key);
        }
    }
    changed
}

fn id_arg(arg: &[u8]) -> Result<u64, Reply> {
    std::str::from_utf8(arg).ok().and_then(|s| s.parse::<u64>().ok()).ok_or_else(|| Reply::error("ERR invalid message ID"))
}

fn id_reply(id: u64) -> Reply {
    Reply::Bulk(id.to_string().into_bytes())
}

/// A non-negative integer option, named in its error.
fn non_negative(arg: &[u8], name: &str) -> Result<u64, Reply> {
    let n = int_arg(arg)?;
    u64::try_from(n).map_err(|_| Reply::error(format!("ERR {name} must be >= 0")))
}

/// `[COUNT n]` at `args[at..]`, default 1 (0: all for the listing commands).
fn count_opt(args: &[&[u8]], at: usize, default: u64) -> Result<u64, Reply> {
    match &args[at.min(args.len())..] {
        [] => Ok(default),
        [opt, n] if opt.eq_ignore_ascii_case(b"count") => non_negative(n, "COUNT"),
        _ => Err(Reply::error(err::SYNTAX)),
    }
}

fn message_reply(id: u64, m: &Message) -> Reply {
    Reply::Array(vec![id_reply(id), Reply::bulk(&m.payload), Reply::Int(i64::from(m.attempts))])
}

// ---------------------------------------------------------------------------
// QPUSH
// ---------------------------------------------------------------------------

/// QPUSH queue payload [ID dedup-id] [DELAY ms] [PRIORITY p] [TTL ms]:
/// enqueues a message; answers its ID. A dedup-id seen inside the queue's
/// window answers the first message's ID and enqueues nothing.
pub fn qpush(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(qpush_inner(ctx, args))
}

fn qpush_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let (key, payload) = (args[1], args[2]);
    let mut p = Push { id: 0, payload, priority: 0, delay_ms: 0, ttl_ms: 0, dedup: None, drop_head: None };
    let mut i = 3;
    while i < args.len() {
        let (opt, value) = (args[i], args.get(i + 1).copied().ok_or_else(|| Reply::error(err::SYNTAX))?);
        if opt.eq_ignore_ascii_case(b"id") {
            p.dedup = Some(value);
        } else if opt.eq_ignore_ascii_case(b"delay") {
            p.delay_ms = non_negative(value, "DELAY")?;
        } else if opt.eq_ignore_ascii_case(b"priority") {
            p.priority = u8::try_from(int_arg(value)?).map_err(|_| Reply::error("ERR PRIORITY must be between 0 and 255"))?;
        } else if opt.eq_ignore_ascii_case(b"ttl") {
            p.ttl_ms = non_negative(value, "TTL")?;
        } else {
            return Err(Reply::error(err::SYNTAX));
        }
        i += 2;
    }
    let now = ctx.now;
    if let Some(q) = settled(ctx, key)? {
        if let Some(first) = p.dedup.and_then(|d| q.dedup(d, now)) {
            // The first push may still be on its way to disk: a (settle)
            // record makes this reply wait for it as the policy says, so a
            // retry is never confirmed before the message it names is durable.
            write(ctx, key, QueueOp::Settle)?;
            return Ok(id_reply(first));
        }
        let c = q.config;
        if c.max_len > 0 && q.len() as u64 >= c.max_len {
            let head = q.ready_ids().next().filter(|_| c.overflow == Overflow::DropHead);
            if head.is_none() {
                return Err(Reply::error(format!(
                    "QFULL queue '{}' holds its MAXLEN of {} messages",
                    String::from_utf8_lossy(key),
                    c.max_len
                )));
            }
            p.drop_head = head;
        }
        p.id = q.next_id;
    }
    let id = p.id;
    write(ctx, key, QueueOp::Push(p))?;
    Ok(id_reply(id))
}

// ---------------------------------------------------------------------------
// QPOP, QACK, QNACK, QEXTEND
// ---------------------------------------------------------------------------

/// QPOP queue [COUNT n] [LEASE ms] [BLOCK ms] [NOACK]: delivers up to n ready
/// messages, each as `[id, payload, attempt]`, leased to this consumer (or
/// removed at once with NOACK: at-most-once). BLOCK waits for a message
/// (0: forever), first blocked first served; a nil array when none came.
pub fn qpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(qpop_inner(ctx, args))
}

fn qpop_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let key = args[1];
    let opts = PopOptions::parse(&args[2..])?;
    Ok(match deliver(ctx, key, &opts)? {
        Some(out) => Reply::Array(out),
        None => match opts.block {
            Some(timeout) => ctx.block(&[key], timeout, Reply::NilArray),
            None => Reply::NilArray,
        },
    })
}

/// The options of QPOP and QMPOP.
struct PopOptions {
    count: u64,
    lease: Option<u64>,
    block: Option<Option<u64>>,
    noack: bool,
}

impl PopOptions {
    /// Parses `[COUNT n] [LEASE ms] [BLOCK ms] [NOACK]` in any order.
    fn parse(args: &[&[u8]]) -> Result<PopOptions, Reply> {
        let mut o = PopOptions { count: 1, lease: None, block: None, noack: false };
        let mut i = 0;
        while i < args.len() {
            let opt = args[i];
            if opt.eq_ignore_ascii_case(b"noack") {
                o.noack = true;
                i += 1;
                continue;
            }
            let value = args.get(i + 1).copied().ok_or_else(|| Reply::error(err::SYNTAX))?;
            if opt.eq_ignore_ascii_case(b"count") {
                o.count = non_negative(value, "COUNT")?.max(1);
            } else if opt.eq_ignore_ascii_case(b"lease") {
                o.lease = Some(non_negative(value, "LEASE")?.max(1));
            } else if opt.eq_ignore_ascii_case(b"block") {
                o.block = Some(timeout_ms_arg(value)?);
            } else {
                return Err(Reply::error(err::SYNTAX));
            }
            i += 2;
        }
        Ok(o)
    }
}

/// Delivers up to `count` ready messages of one queue, each as `[id,
/// payload, attempt]`; None when none is ready (or the queue is missing).
fn deliver(ctx: &mut Ctx<'_>, key: &[u8], o: &PopOptions) -> Result<Option<Vec<Reply>>, Reply> {
    let picked = match settled(ctx, key)? {
        Some(q) => {
            let ids: Vec<u64> = q.ready_ids().take(o.count as usize).collect();
            (!ids.is_empty()).then(|| (ids, o.lease.unwrap_or(q.config.lease_ms)))
        }
        None => None,
    };
    let Some((ids, lease_ms)) = picked else { return Ok(None) };
    // The reply is built before NOACK removes the messages; attempts count this delivery.
    let out: Vec<Reply> = {
        let q = peek(ctx, key)?.ok_or_else(|| Reply::error(err::NO_SUCH_KEY))?;
        ids.iter()
            .filter_map(|id| q.get(*id).map(|m| (id, m)))
            .map(|(id, m)| Reply::Array(vec![id_reply(*id), Reply::bulk(&m.payload), Reply::Int(i64::from(m.attempts) + 1)]))
            .collect()
    };
    write(ctx, key, QueueOp::Lease { ids, lease_ms, noack: o.noack })?;
    Ok(Some(out))
}

/// QMPOP numkeys queue [queue ...] [COUNT n] [LEASE ms] [BLOCK ms] [NOACK]:
/// QPOP from the first of the queues (in the order given) that has ready
/// messages, answered as `[queue, [[id, payload, attempt] ...]]`; BLOCK
/// waits for a push to any of them. Queues on several shards are served by
/// [`crate::pops`], which runs this on each shard's share of them.
pub fn qmpop(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(qmpop_inner(ctx, args))
}

fn qmpop_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let n = int_arg(args[1])?;
    if n <= 0 {
        return Err(Reply::error("ERR numkeys should be greater than 0"));
    }
    let keys = usize::try_from(n).ok().and_then(|n| args.get(2..2 + n)).ok_or_else(|| Reply::error(err::SYNTAX))?;
    let opts = PopOptions::parse(&args[2 + keys.len()..])?;
    for key in keys {
        if let Some(out) = deliver(ctx, key, &opts)? {
            return Ok(Reply::Array(vec![Reply::bulk(key), Reply::Array(out)]));
        }
    }
    Ok(match opts.block {
        Some(timeout) => ctx.block(keys, timeout, Reply::NilArray),
        None => Reply::NilArray,
    })
}

/// QMPOP's BLOCK: None if it does not block, else its timeout (None: forever).
/// Used where QMPOP's queues live on several shards ([`crate::pops`]).
pub fn qmpop_block(args: &[&[u8]]) -> Result<Option<Option<u64>>, Reply> {
    let n = usize::try_from(int_arg(args[1])?).map_err(|_| Reply::error("ERR numkeys should be greater than 0"))?;
    let opts = args.get(2 + n..).ok_or_else(|| Reply::error(err::SYNTAX))?;
    Ok(PopOptions::parse(opts)?.block)
}

/// Whether the queue at `key` has a message to deliver now (or a deadline
/// due, which delivering settles first), or holds another type.
pub fn has_ready(ctx: &Ctx<'_>, key: &[u8]) -> bool {
    match peek(ctx, key) {
        Ok(Some(q)) => q.ready_ids().next().is_some() || q.next_event().is_some_and(|t| t <= ctx.now),
        Ok(None) => false,
        Err(_) => true,
    }
}

/// QACK queue id [id ...]: acknowledges leased messages; answers how many were leased.
pub fn qack(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(qack_inner(ctx, args))
}

fn qack_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let ids = args[2..].iter().map(|a| id_arg(a)).collect::<Result<Vec<_>, _>>()?;
    let Some(q) = settled(ctx, args[1])? else { return Ok(Reply::Int(0)) };
    let mut leased: Vec<u64> = ids
        .into_iter()
        .filter(|id| q.get(*id).is_some_and(|m| matches!(m.state, strand_engine::keyspace::queue::State::Leased(_))))
        .collect();
    leased.sort_unstable();
    leased.dedup();
    let n = leased.len();
    if n > 0 {
        write(ctx, args[1], QueueOp::Ack(leased))?;
    }
    Ok(Reply::Int(n as i64))
}

fn is_leased(q: &Queue, id: u64) -> bool {
    q.get(id).is_some_and(|m| matches!(m.state, strand_engine::keyspace::queue::State::Leased(_)))
}

/// QNACK queue id [DELAY ms] [FAIL | FATAL]: hands a leased message back.
/// Plain: not processed, redelivered (the delivery does not count); FAIL:
/// processing failed, redelivered or dead-lettered after max-deliveries;
/// FATAL: dead-lettered now. Answers 1, or 0 if the message was not leased.
pub fn qnack(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(qnack_inner(ctx, args))
}

fn qnack_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let id = id_arg(args[2])?;
    let (mut delay_ms, mut kind) = (0, NackKind::Release);
    let mut i = 3;
    while i < args.len() {
        let opt = args[i];
        if opt.eq_ignore_ascii_case(b"fail") {
            kind = NackKind::Fail;
        } else if opt.eq_ignore_ascii_case(b"fatal") {
            kind = NackKind::Fatal;
        } else if opt.eq_ignore_ascii_case(b"delay") && i + 1 < args.len() {
            delay_ms = non_negative(args[i + 1], "DELAY")?;
            i += 1;
        } else {
            return Err(Reply::error(err::SYNTAX));
        }
        i += 1;
    }
    if !settled(ctx, args[1])?.is_some_and(|q| is_leased(q, id)) {
        return Ok(Reply::Int(0));
    }
    write(ctx, args[1], QueueOp::Nack { id, delay_ms, kind })?;
    Ok(Reply::Int(1))
}

/// QEXTEND queue id ms: the lease of a leased message now ends ms from now; 1, or 0 if not leased.
pub fn qextend(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(qextend_inner(ctx, args))
}

fn qextend_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let id = id_arg(args[2])?;
    let lease_ms = non_negative(args[3], "LEASE")?.max(1);
    if !settled(ctx, args[1])?.is_some_and(|q| is_leased(q, id)) {
        return Ok(Reply::Int(0));
    }
    write(ctx, args[1], QueueOp::Extend { id, lease_ms })?;
    Ok(Reply::Int(1))
}

// ---------------------------------------------------------------------------
// QDLQ, QLEN, QPEEK, QPENDING, QINFO, QCONFIG, QDEL, QPURGE
// ---------------------------------------------------------------------------

/// QDLQ queue LIST [COUNT n] | REDRIVE [COUNT n] | PURGE: the dead-letter
/// list: each message as `[id, payload, attempts, reason]`; REDRIVE moves
/// them back to ready with their attempts reset; PURGE drops them.
pub fn qdlq(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(qdlq_inner(ctx, args))
}

fn qdlq_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let key = args[1];
    let sub = args[2].to_ascii_lowercase();
    let count = match sub.as_slice() {
        b"list" | b"redrive" => count_opt(args, 3, 0)?,
        b"purge" if args.len() == 3 => 0,
        _ => {
            return Err(Reply::error(format!("ERR unknown QDLQ subcommand '{}': LIST, REDRIVE or PURGE", String::from_utf8_lossy(args[2]))))
        }
    };
    let n = if count == 0 { usize::MAX } else { count as usize };
    let Some(q) = settled(ctx, key)? else {
        return Ok(if sub == b"list" { Reply::Array(Vec::new()) } else { Reply::Int(0) });
    };
    let dead: Vec<u64> = q.dead_ids().take(n).collect();
    match sub.as_slice() {
        b"list" => Ok(Reply::Array(
            dead.iter()
                .filter_map(|id| q.get(*id).map(|m| (id, m)))
                .map(|(id, m)| {
                    let reason = m.reason.as_ref().map_or(Reply::Nil, Reply::bulk);
                    Reply::Array(vec![id_reply(*id), Reply::bulk(&m.payload), Reply::Int(i64::from(m.attempts)), reason])
                })
                .collect(),
        )),
        b"redrive" => {
            let moved = dead.len();
            if moved > 0 {
                write(ctx, key, QueueOp::Redrive(dead))?;
            }
            Ok(Reply::Int(moved as i64))
        }
        _ => {
            let all = q.counts().dead;
            if all > 0 {
                write(ctx, key, QueueOp::PurgeDead)?;
            }
            Ok(Reply::Int(all as i64))
        }
    }
}

/// QLEN queue: messages ready, delayed or leased (dead letters not counted).
pub fn qlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(settled(ctx, args[1]).map(|q| Reply::Int(q.map_or(0, |q| q.len() as i64))))
}

/// QPEEK queue [COUNT n]: the next ready messages, in delivery order, without delivering them.
pub fn qpeek(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(qpeek_inner(ctx, args))
}

fn qpeek_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let n = count_opt(args, 2, 1)?.max(1) as usize;
    let Some(q) = settled(ctx, args[1])? else { return Ok(Reply::Array(Vec::new())) };
    Ok(Reply::Array(q.ready_ids().take(n).filter_map(|id| q.get(id).map(|m| message_reply(id, m))).collect()))
}

/// QPENDING queue [COUNT n]: leased messages, soonest deadline first, as `[id, attempts, ms left]`.
pub fn qpending(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(qpending_inner(ctx, args))
}

fn qpending_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let n = count_opt(args, 2, 0)?;
    let n = if n == 0 { usize::MAX } else { n as usize };
    let now = ctx.now;
    let Some(q) = settled(ctx, args[1])? else { return Ok(Reply::Array(Vec::new())) };
    let rows = q
        .leased_ids()
        .take(n)
        .filter_map(|id| q.get(id).map(|m| (id, m)))
        .map(|(id, m)| {
            let left = match m.state {
                strand_engine::keyspace::queue::State::Leased(t) => t.saturating_sub(now),
                _ => 0,
            };
            Reply::Array(vec![id_reply(id), Reply::Int(i64::from(m.attempts)), Reply::Int(left as i64)])
        })
        .collect();
    Ok(Reply::Array(rows))
}

fn config_reply(c: &Config) -> Vec<(Reply, Reply)> {
    let overflow = match c.overflow {
        Overflow::DropHead => "drop-head",
        Overflow::RejectPublish => "reject-publish",
    };
    vec![
        (Reply::bulk("max-deliveries"), Reply::Int(i64::from(c.max_deliveries))),
        (Reply::bulk("lease"), Reply::Int(c.lease_ms as i64)),
        (Reply::bulk("maxlen"), Reply::Int(c.max_len as i64)),
        (Reply::bulk("overflow"), Reply::bulk(overflow)),
        (Reply::bulk("dedup-window"), Reply::Int(c.dedup_window_ms as i64)),
        (Reply::bulk("durability"), Reply::bulk(if c.strict { "strict" } else { "default" })),
    ]
}

/// QINFO queue: counts by state, totals since creation, and the settings.
pub fn qinfo(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(qinfo_inner(ctx, args))
}

fn qinfo_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let q = settled(ctx, args[1])?.ok_or_else(|| Reply::error(err::NO_SUCH_KEY))?;
    let (c, t) = (q.counts(), q.totals);
    let int = |name: &'static str, n: u64| (Reply::bulk(name), Reply::Int(n as i64));
    let mut m = vec![
        int("ready", c.ready as u64),
        int("delayed", c.delayed as u64),
        int("leased", c.leased as u64),
        int("dead", c.dead as u64),
        int("pushed", t.pushed),
        int("acked", t.acked),
        int("dead-lettered", t.dead_lettered),
        int("lease-expired", t.lease_expired),
        int("expired", t.expired),
        int("dropped", t.dropped),
        int("dedup-ids", q.dedup_len() as u64),
    ];
    m.extend(config_reply(&q.config));
    Ok(Reply::Map(m))
}

/// QCONFIG queue [MAX-DELIVERIES n] [LEASE ms] [MAXLEN n] [OVERFLOW
/// drop-head|reject-publish] [DEDUP-WINDOW ms]: sets (creating the queue),
/// or without options answers the settings.
pub fn qconfig(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(qconfig_inner(ctx, args))
}

fn qconfig_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let current = settled(ctx, args[1])?.map(|q| q.config);
    if args.len() == 2 {
        let c = current.ok_or_else(|| Reply::error(err::NO_SUCH_KEY))?;
        return Ok(Reply::Map(config_reply(&c)));
    }
    let mut c = current.unwrap_or_default();
    let mut i = 2;
    while i < args.len() {
        let value = args.get(i + 1).copied().ok_or_else(|| Reply::error(err::SYNTAX))?;
        match args[i].to_ascii_lowercase().as_slice() {
            b"max-deliveries" => {
                c.max_deliveries =
                    u32::try_from(non_negative(value, "MAX-DELIVERIES")?.max(1)).map_err(|_| Reply::error(err::NOT_INTEGER))?
            }
            b"lease" => c.lease_ms = non_negative(value, "LEASE")?.max(1),
            b"maxlen" => c.max_len = non_negative(value, "MAXLEN")?,
            b"dedup-window" => c.dedup_window_ms = non_negative(value, "DEDUP-WINDOW")?,
            b"durability" => {
                c.strict = match value.to_ascii_lowercase().as_slice() {
                    b"strict" => true,
                    b"default" => false,
                    _ => return Err(Reply::error("ERR DURABILITY must be strict or default")),
                }
            }
            b"overflow" => {
                c.overflow = match value.to_ascii_lowercase().as_slice() {
                    b"drop-head" => Overflow::DropHead,
                    b"reject-publish" => Overflow::RejectPublish,
                    _ => return Err(Reply::error("ERR OVERFLOW must be drop-head or reject-publish")),
                }
            }
            _ => return Err(Reply::error(err::SYNTAX)),
        }
        i += 2;
    }
    write(ctx, args[1], QueueOp::Configure(c))?;
    Ok(Reply::Ok)
}

/// QDEL queue id [id ...]: deletes messages in any state; answers how many existed.
pub fn qdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(qdel_inner(ctx, args))
}

fn qdel_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let ids = args[2..].iter().map(|a| id_arg(a)).collect::<Result<Vec<_>, _>>()?;
    let Some(q) = settled(ctx, args[1])? else { return Ok(Reply::Int(0)) };
    let mut found: Vec<u64> = ids.into_iter().filter(|id| q.get(*id).is_some()).collect();
    found.sort_unstable();
    found.dedup();
    let n = found.len();
    if n > 0 {
        write(ctx, args[1], QueueOp::Delete(found))?;
    }
    Ok(Reply::Int(n as i64))
}

/// QPURGE queue: deletes every ready and delayed message (leased ones stay with their consumers).
pub fn qpurge(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Reply {
    reply(qpurge_inner(ctx, args))
}

fn qpurge_inner(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> Result<Reply, Reply> {
    let Some(q) = settled(ctx, args[1])? else { return Ok(Reply::Int(0)) };
    let c = q.counts();
    let n = c.ready + c.delayed;
    if n > 0 {
        write(ctx, args[1], QueueOp::Purge)?;
    }
    Ok(Reply::Int(n as i64))
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

const W: u32 = flags::WRITE;
const W_DENY: u32 = flags::WRITE | flags::DENYOOM;
const W_BLOCK: u32 = flags::WRITE | flags::NOSCRIPT | flags::BLOCKING;
const R: u32 = flags::WRITE;
const CATS: &[&str] = &["@write", "@queue", "@fast"];
const CATS_BLOCKING: &[&str] = &["@write", "@queue", "@slow", "@blocking"];

/// The queue commands. Reads are flagged write too: looking at a queue
/// whose deadline passed first logs the transitions that came due.
pub const COMMANDS: &[Command] = &[
    one_key("qpush", -3, W_DENY, qpush, CATS, "Enqueues a message (with dedup ID, delay, priority, TTL); answers its ID."),
    one_key("qpop", -2, W_BLOCK, qpop, CATS_BLOCKING, "Delivers ready messages under a lease (or NOACK), optionally waiting for one."),
    Command {
        name: "qmpop",
        arity: -3,
        flags: W_BLOCK | super::flags::MOVABLEKEYS,
        first_key: 0,
        last_key: 0,
        step: 1,
        route: super::Route::Key(qmpop),
        categories: CATS_BLOCKING,
        summary: "Delivers ready messages of the first of several queues that has some, optionally waiting for one.",
    },
    one_key("qack", -3, W, qack, CATS, "Acknowledges leased messages."),
    one_key("qnack", -3, W, qnack, CATS, "Hands a leased message back: redeliver, count a failure, or dead-letter."),
    one_key("qextend", 4, W, qextend, CATS, "Extends the lease of a leased message."),
    one_key("qdlq", -3, W, qdlq, CATS, "Lists, redrives or purges a queue's dead-letter list."),
    one_key("qlen", 2, R, qlen, CATS, "Messages ready, delayed or leased."),
    one_key("qpeek", -2, R, qpeek, CATS, "The next ready messages, without delivering them."),
    one_key("qpending", -2, R, qpending, CATS, "Leased messages and their lease time left."),
    one_key("qinfo", 2, R, qinfo, CATS, "Counts by state, totals and settings of a queue."),
    one_key("qconfig", -2, W, qconfig, CATS, "Sets or shows a queue's settings."),
    one_key("qdel", -3, W, qdel, CATS, "Deletes messages by ID."),
    one_key("qpurge", 2, W, qpurge, CATS, "Deletes every ready and delayed message."),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_keep_one_entry_per_queue_at_its_earliest_deadline() {
        let mut t = Timers::default();
        for deadline in [500, 300, 900, 300, 400] {
            t.note(deadline, 0, b"q");
        }
        t.note(700, 1, b"q");
        assert_eq!(t.len(), 2);
        assert_eq!(t.pop_due(299), None);
        assert_eq!(t.pop_due(300), Some((0, b"q".to_vec())));
        assert_eq!(t.pop_due(699), None);
        t.note(800, 0, b"q");
        assert_eq!(t.pop_due(10_000), Some((1, b"q".to_vec())));
        assert_eq!(t.pop_due(10_000), Some((0, b"q".to_vec())));
        assert!(t.is_empty());
    }
}
