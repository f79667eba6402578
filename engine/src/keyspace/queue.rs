//! The reliable queue container and the changes that write it.
//!
//! A queue holds messages in one of four states: ready (deliverable now,
//! higher priority first, then first in first out), delayed (deliverable
//! from a time), leased (delivered to one consumer until a deadline) and
//! dead (in the queue's dead-letter list after too many failed deliveries
//! or a fatal nack). A delivery that is neither acknowledged nor extended
//! before its lease ends is a failure: the message goes back to ready, or
//! to the dead-letter list once it has been delivered `max_deliveries`
//! times.
//!
//! Every write is one [`QueueChange`] carrying the time it happened at
//! (`at`, the command's clock). Applying a change first *settles* the queue
//! at that time: delayed messages that came due become ready, expired
//! leases count as failures, messages past their TTL and deduplication
//! IDs past their window go. Settling reads only `at`, so live apply and
//! replay reach the same state, and a time-driven transition (a lease that
//! ran out) is logged by the next record of the queue, which the server
//! writes as soon as the earliest deadline passes ([`Queue::next_event`]).
//!
//! This module holds data only; it never touches files or the network.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};

use crate::bytes::SmallBytes;
use crate::codec::{DecodeError, Reader, Writer};

/// Where a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Deliverable now.
    Ready,
    /// Deliverable from this Unix ms.
    Delayed(u64),
    /// Delivered, leased until this Unix ms.
    Leased(u64),
    /// In the dead-letter list.
    Dead,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The payload.
    pub payload: SmallBytes,
    /// Priority: higher is delivered first.
    pub priority: u8,
    /// Deliveries so far.
    pub attempts: u32,
    /// Unix ms it was pushed.
    pub pushed_ms: u64,
    /// Unix ms after which an undelivered message expires (0: never).
    pub expire_ms: u64,
    /// Where it is.
    pub state: State,
    /// Why it last failed or was dead-lettered.
    pub reason: Option<SmallBytes>,
}

/// What a full queue does with a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the message at the head (the next to be delivered).
    DropHead,
    /// Refuse the push.
    RejectPublish,
}

/// A queue's settings (QCONFIG).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Deliveries after which a failure dead-letters the message.
    pub max_deliveries: u32,
    /// Lease of a delivery when QPOP names none, in ms.
    pub lease_ms: u64,
    /// Most messages held (ready, delayed, leased); 0: no limit.
    pub max_len: u64,
    /// What a push to a full queue does.
    pub overflow: Overflow,
    /// How long a deduplication ID is remembered, in ms.
    pub dedup_window_ms: u64,
    /// Every write to the queue is synced to disk before its reply, whatever `--appendfsync` says.
    pub strict: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_deliveries: 10,
            lease_ms: 30_000,
            max_len: 0,
            overflow: Overflow::RejectPublish,
            dedup_window_ms: 300_000,
            strict: false,
        }
    }
}

/// Counters since the queue was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Messages pushed (duplicates not counted).
    pub pushed: u64,
    /// Deliveries acknowledged (and NOACK deliveries).
    pub acked: u64,
    /// Messages moved to the dead-letter list.
    pub dead_lettered: u64,
    /// Messages that expired by their TTL before delivery.
    pub expired: u64,
    /// Messages dropped from the head of a full queue.
    pub dropped: u64,
    /// Lease expiries (deliveries nobody acknowledged in time).
    pub lease_expired: u64,
}

/// Heap bytes charged per message beyond its payload (the map entry and the index entries).
const MESSAGE_COST: usize = 96;

/// A queue value.
#[derive(Debug, Clone, Default)]
pub struct Queue {
    /// The ID the next push gets.
    pub next_id: u64,
    msgs: HashMap<u64, Message>,
    ready: BTreeSet<(Reverse<u8>, u64)>,
    delayed: BTreeSet<(u64, u64)>,
    leased: BTreeSet<(u64, u64)>,
    expiring: BTreeSet<(u64, u64)>,
    dead: BTreeSet<u64>,
    dedup: HashMap<Box<[u8]>, (u64, u64)>,
    dedup_until: BTreeSet<(u64, Box<[u8]>)>,
    /// Settings.
    pub config: Config,
    /// Counters.
    pub totals: Totals,
    heap: usize,
}

/// Counts by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Ready.
    pub ready: usize,
    /// Delayed.
    pub delayed: usize,
    /// Leased.
    pub leased: usize,
    /// Dead-lettered.
    pub dead: usize,
}

impl Queue {
    /// Messages by state.
    pub fn counts(&self) -> Counts {
        Counts { ready: self.ready.len(), delayed: self.delayed.len(), leased: self.leased.len(), dead: self.dead.len() }
    }

    /// Messages ready, delayed or leased (what QLEN answers).
    pub fn len(&self) -> usize {
        self.ready.len() + self.delayed.len() + self.leased.len()
    }

    /// Whether no message is ready, delayed or leased.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes owned. O(1).
    pub fn heap_bytes(&self) -> usize {
        self.heap
    }

    /// A message by ID.
    pub fn get(&self, id: u64) -> Option<&Message> {
        self.msgs.get(&id)
    }

    /// Ready message IDs in delivery order.
    pub fn ready_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.ready.iter().map(|(_, id)| *id)
    }

    /// Leased message IDs, soonest deadline first.
    pub fn leased_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.leased.iter().map(|(_, id)| *id)
    }

    /// Dead-lettered IDs, oldest first.
    pub fn dead_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.dead.iter().copied()
    }

    /// The message a live deduplication ID points at (None when unknown or past its window at `now`).
    pub fn dedup(&self, key: &[u8], now: u64) -> Option<u64> {
        self.dedup.get(key).filter(|(_, until)| *until > now).map(|(id, _)| *id)
    }

    /// Live deduplication IDs.
    pub fn dedup_len(&self) -> usize {
        self.dedup.len()
    }

    /// The earliest time settling would change something (a delay, a lease,
    /// a TTL or a deduplication window ending), None when nothing waits.
    pub fn next_event(&self) -> Option<u64> {
        [
            self.delayed.first().map(|e| e.0),
            self.leased.first().map(|e| e.0),
            self.expiring.first().map(|e| e.0),
            self.dedup_until.first().map(|e| e.0),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn place(&mut self, id: u64, state: State) {
        let Some(m) = self.msgs.get_mut(&id) else { return };
        match m.state {
            State::Ready => {
                self.ready.remove(&(Reverse(m.priority), id));
            }
            State::Delayed(t) => {
                self.delayed.remove(&(t, id));
            }
            State::Leased(t) => {
                self.leased.remove(&(t, id));
            }
            State::Dead => {
                self.dead.remove(&id);
            }
        }
        m.state = state;
        match state {
            State::Ready => self.ready.insert((Reverse(m.priority), id)),
            State::Delayed(t) => self.delayed.insert((t, id)),
            State::Leased(t) => self.leased.insert((t, id)),
            State::Dead => self.dead.insert(id),
        };
        // Only undelivered messages (ready, delayed) expire by TTL.
        if m.expire_ms > 0 {
            if matches!(state, State::Ready | State::Delayed(_)) {
                self.expiring.insert((m.expire_ms, id));
            } else {
                self.expiring.remove(&(m.expire_ms, id));
            }
        }
    }

    fn remove(&mut self, id: u64) -> Option<Message> {
        self.place(id, State::Dead);
        self.dead.remove(&id);
        let m = self.msgs.remove(&id)?;
        if m.expire_ms > 0 {
            self.expiring.remove(&(m.expire_ms, id));
        }
        self.heap -= MESSAGE_COST + m.payload.heap_bytes() + m.reason.as_ref().map_or(0, SmallBytes::heap_bytes);
        Some(m)
    }

    fn set_reason(&mut self, id: u64, reason: &[u8]) {
        if let Some(m) = self.msgs.get_mut(&id) {
            let new = SmallBytes::new(reason);
            self.heap += new.heap_bytes();
            self.heap -= m.reason.as_ref().map_or(0, SmallBytes::heap_bytes);
            m.reason = Some(new);
        }
    }

    /// A delivery failed: back to ready (or delayed until `due`), or dead once it was delivered often enough.
    fn fail(&mut self, id: u64, due: u64, reason: &[u8]) {
        let Some(m) = self.msgs.get(&id) else { return };
        let dead = m.attempts >= self.config.max_deliveries;
        self.set_reason(id, reason);
        if dead {
            self.place(id, State::Dead);
            self.totals.dead_lettered += 1;
        } else if due > 0 {
            self.place(id, State::Delayed(due));
        } else {
            self.place(id, State::Ready);
        }
    }

    /// Brings the queue to time `at`: due delays, expired leases, TTLs and dedup windows.
    pub fn settle(&mut self, at: u64) {
        while let Some(&(due, id)) = self.delayed.first().filter(|e| e.0 <= at) {
            let _ = due;
            self.place(id, State::Ready);
        }
        while let Some(&(_, id)) = self.leased.first().filter(|e| e.0 <= at) {
            self.totals.lease_expired += 1;
            self.fail(id, 0, b"lease expired");
        }
        while let Some(&(_, id)) = self.expiring.first().filter(|e| e.0 <= at) {
            self.remove(id);
            self.totals.expired += 1;
        }
        while let Some((until, key)) = self.dedup_until.first().filter(|e| e.0 <= at).cloned() {
            self.dedup_until.remove(&(until, key.clone()));
            if self.dedup.get(&key).is_some_and(|(_, u)| *u == until) {
                self.heap -= MESSAGE_COST + key.len();
                self.dedup.remove(&key);
            }
        }
    }

    /// Applies a change (settling first at its time).
    pub fn apply(&mut self, change: &QueueChange<'_>) {
        self.settle(change.at);
        let at = change.at;
        match &change.op {
            QueueOp::Settle => {}
            QueueOp::Push(p) => self.push(p, at),
            QueueOp::Lease { ids, lease_ms, noack } => {
                for &id in ids {
                    if !matches!(self.msgs.get(&id).map(|m| m.state), Some(State::Ready)) {
                        continue;
                    }
                    if *noack {
                        self.remove(id);
                        self.totals.acked += 1;
                    } else {
                        if let Some(m) = self.msgs.get_mut(&id) {
                            m.attempts += 1;
                        }
                        self.place(id, State::Leased(at.saturating_add(*lease_ms)));
                    }
                }
            }
            QueueOp::Ack(ids) => {
                for &id in ids {
                    if matches!(self.msgs.get(&id).map(|m| m.state), Some(State::Leased(_))) {
                        self.remove(id);
                        self.totals.acked += 1;
                    }
                }
            }
            QueueOp::Nack { id, delay_ms, kind } => self.nack(*id, at, *delay_ms, *kind),
            QueueOp::Extend { id, lease_ms } => {
                if matches!(self.msgs.get(id).map(|m| m.state), Some(State::Leased(_))) {
                    self.place(*id, State::Leased(at.saturating_add(*lease_ms)));
                }
            }
            QueueOp::Delete(ids) => {
                for &id in ids {
                    self.remove(id);
                }
            }
            QueueOp::Purge => {
                let ids: Vec<u64> = self.ready_ids().chain(self.delayed.iter().map(|e| e.1)).collect();
                for id in ids {
                    self.remove(id);
                }
            }
            QueueOp::Redrive(ids) => {
                for &id in ids {
                    if matches!(self.msgs.get(&id).map(|m| m.state), Some(State::Dead)) {
                        if let Some(m) = self.msgs.get_mut(&id) {
                            m.attempts = 0;
                        }
                        self.place(id, State::Ready);
                    }
                }
            }
            QueueOp::PurgeDead => {
                let ids: Vec<u64> = self.dead.iter().copied().collect();
                for id in ids {
                    self.remove(id);
                }
            }
            QueueOp::Configure(c) => self.config = *c,
        }
    }

    fn push(&mut self, p: &Push<'_>, at: u64) {
        if let Some(head) = p.drop_head {
            if self.remove(head).is_some() {
                self.totals.dropped += 1;
            }
        }
        let m = Message {
            payload: SmallBytes::new(p.payload),
            priority: p.priority,
            attempts: 0,
            pushed_ms: at,
            expire_ms: if p.ttl_ms > 0 { at.saturating_add(p.ttl_ms) } else { 0 },
            state: State::Dead,
            reason: None,
        };
        self.heap += MESSAGE_COST + m.payload.heap_bytes();
        self.msgs.insert(p.id, m);
        self.dead.insert(p.id);
        let state = if p.delay_ms > 0 { State::Delayed(at.saturating_add(p.delay_ms)) } else { State::Ready };
        self.place(p.id, state);
        self.next_id = self.next_id.max(p.id + 1);
        self.totals.pushed += 1;
        if let Some(key) = p.dedup {
            let until = at.saturating_add(self.config.dedup_window_ms);
            if let Some((_, old)) = self.dedup.insert(key.into(), (p.id, until)) {
                self.dedup_until.remove(&(old, key.into()));
            } else {
                self.heap += MESSAGE_COST + key.len();
            }
            self.dedup_until.insert((until, key.into()));
        }
    }

    fn nack(&mut self, id: u64, at: u64, delay_ms: u64, kind: NackKind) {
        if !matches!(self.msgs.get(&id).map(|m| m.state), Some(State::Leased(_))) {
            return;
        }
        let due = if delay_ms > 0 { at.saturating_add(delay_ms) } else { 0 };
        match kind {
            NackKind::Release => {
                // The consumer gave it back unprocessed: this delivery does not count.
                if let Some(m) = self.msgs.get_mut(&id) {
                    m.attempts = m.attempts.saturating_sub(1);
                }
                self.place(id, if due > 0 { State::Delayed(due) } else { State::Ready });
            }
            NackKind::Fail => self.fail(id, due, b"nack"),
            NackKind::Fatal => {
                self.set_reason(id, b"fatal nack");
                self.place(id, State::Dead);
                self.totals.dead_lettered += 1;
            }
        }
    }
}

/// How a consumer hands a leased message back (QNACK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NackKind {
    /// Not processed: redeliver, the delivery does not count.
    Release,
    /// Processing failed: redeliver, or dead-letter after `max_deliveries`.
    Fail,
    /// Processing can never succeed: dead-letter now.
    Fatal,
}

/// A push, decided by the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push<'a> {
    /// The message ID (the queue's next ID).
    pub id: u64,
    /// The payload.
    pub payload: &'a [u8],
    /// Priority, higher first.
    pub priority: u8,
    /// Deliverable only after this many ms (0: now).
    pub delay_ms: u64,
    /// Expires undelivered after this many ms (0: never).
    pub ttl_ms: u64,
    /// Deduplication ID, remembered for the queue's window.
    pub dedup: Option<&'a [u8]>,
    /// A message dropped from the head first (a full queue with drop-head).
    pub drop_head: Option<u64>,
}

/// What a change does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueOp<'a> {
    /// Nothing but settling (a deadline passed).
    Settle,
    /// QPUSH.
    Push(Push<'a>),
    /// QPOP: these ready messages are delivered, leased for `lease_ms` (or removed with NOACK).
    Lease { ids: Vec<u64>, lease_ms: u64, noack: bool },
    /// QACK.
    Ack(Vec<u64>),
    /// QNACK.
    Nack { id: u64, delay_ms: u64, kind: NackKind },
    /// QEXTEND: the lease now ends `lease_ms` after the change.
    Extend { id: u64, lease_ms: u64 },
    /// QDEL.
    Delete(Vec<u64>),
    /// QPURGE: every ready and delayed message goes.
    Purge,
    /// QDLQ REDRIVE: dead messages back to ready, attempts reset.
    Redrive(Vec<u64>),
    /// QDLQ PURGE.
    PurgeDead,
    /// QCONFIG.
    Configure(Config),
}

/// One command's change to one queue, at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueChange<'a> {
    /// Unix ms the change happened at (the queue settles to it first).
    pub at: u64,
    /// What it does.
    pub op: QueueOp<'a>,
}

mod tag {
    pub const SETTLE: u8 = 1;
    pub const PUSH: u8 = 2;
    pub const LEASE: u8 = 3;
    pub const ACK: u8 = 4;
    pub const NACK: u8 = 5;
    pub const EXTEND: u8 = 6;
    pub const DELETE: u8 = 7;
    pub const PURGE: u8 = 8;
    pub const REDRIVE: u8 = 9;
    pub const PURGE_DEAD: u8 = 10;
    pub const CONFIGURE: u8 = 11;
}

fn opt_bytes_len(b: Option<&[u8]>) -> usize {
    1 + b.map_or(0, |b| 4 + b.len())
}

impl<'a> QueueChange<'a> {
    /// Whether it can create the queue when the key is absent.
    pub fn creates(&self) -> bool {
        matches!(self.op, QueueOp::Push(_) | QueueOp::Configure(_))
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        let ids = |v: &[u64]| 4 + 8 * v.len();
        1 + 8
            + match &self.op {
                QueueOp::Settle | QueueOp::Purge | QueueOp::PurgeDead => 0,
                QueueOp::Push(p) => 8 + 4 + p.payload.len() + 1 + 8 + 8 + opt_bytes_len(p.dedup) + 9,
                QueueOp::Lease { ids: v, .. } => ids(v) + 8 + 1,
                QueueOp::Ack(v) | QueueOp::Delete(v) | QueueOp::Redrive(v) => ids(v),
                QueueOp::Nack { .. } => 8 + 8 + 1,
                QueueOp::Extend { .. } => 16,
                QueueOp::Configure(_) => 4 + 8 + 8 + 1 + 8,
            }
    }

    /// Writes the payload: a tag, the time, then the fields.
    pub fn encode(&self, w: &mut Writer<'_>) {
        let ids = |w: &mut Writer<'_>, v: &[u64]| {
            w.u32(v.len() as u32);
            v.iter().for_each(|id| w.u64(*id));
        };
        let tag = match &self.op {
            QueueOp::Settle => tag::SETTLE,
            QueueOp::Push(_) => tag::PUSH,
            QueueOp::Lease { .. } => tag::LEASE,
            QueueOp::Ack(_) => tag::ACK,
            QueueOp::Nack { .. } => tag::NACK,
            QueueOp::Extend { .. } => tag::EXTEND,
            QueueOp::Delete(_) => tag::DELETE,
            QueueOp::Purge => tag::PURGE,
            QueueOp::Redrive(_) => tag::REDRIVE,
            QueueOp::PurgeDead => tag::PURGE_DEAD,
            QueueOp::Configure(_) => tag::CONFIGURE,
        };
        w.u8(tag);
        w.u64(self.at);
        match &self.op {
            QueueOp::Settle | QueueOp::Purge | QueueOp::PurgeDead => {}
            QueueOp::Push(p) => {
                w.u64(p.id);
                w.bytes(p.payload);
                w.u8(p.priority);
                w.u64(p.delay_ms);
                w.u64(p.ttl_ms);
                w.u8(p.dedup.is_some() as u8);
                if let Some(d) = p.dedup {
                    w.bytes(d);
                }
                w.u8(p.drop_head.is_some() as u8);
                w.u64(p.drop_head.unwrap_or(0));
            }
            QueueOp::Lease { ids: v, lease_ms, noack } => {
                ids(w, v);
                w.u64(*lease_ms);
                w.u8(*noack as u8);
            }
            QueueOp::Ack(v) | QueueOp::Delete(v) | QueueOp::Redrive(v) => ids(w, v),
            QueueOp::Nack { id, delay_ms, kind } => {
                w.u64(*id);
                w.u64(*delay_ms);
                w.u8(match kind {
                    NackKind::Release => 0,
                    NackKind::Fail => 1,
                    NackKind::Fatal => 2,
                });
            }
            QueueOp::Extend { id, lease_ms } => {
                w.u64(*id);
                w.u64(*lease_ms);
            }
            QueueOp::Configure(c) => encode_config(c, w),
        }
    }

    /// Reads a payload written by [`QueueChange::encode`].
    pub fn decode(r: &mut Reader<'a>) -> Result<QueueChange<'a>, DecodeError> {
        fn ids(r: &mut Reader<'_>) -> Result<Vec<u64>, DecodeError> {
            let n = r.u32()? as usize;
            let mut v = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                v.push(r.u64()?);
            }
            Ok(v)
        }
        let tag = r.u8()?;
        let at = r.u64()?;
        let op = match tag {
            tag::SETTLE => QueueOp::Settle,
            tag::PUSH => {
                let (id, payload, priority, delay_ms, ttl_ms) = (r.u64()?, r.bytes()?, r.u8()?, r.u64()?, r.u64()?);
                let dedup = if r.flag()? { Some(r.bytes()?) } else { None };
                let has_drop = r.flag()?;
                let drop = r.u64()?;
                QueueOp::Push(Push { id, payload, priority, delay_ms, ttl_ms, dedup, drop_head: has_drop.then_some(drop) })
            }
            tag::LEASE => QueueOp::Lease { ids: ids(r)?, lease_ms: r.u64()?, noack: r.flag()? },
            tag::ACK => QueueOp::Ack(ids(r)?),
            tag::NACK => {
                let (id, delay_ms) = (r.u64()?, r.u64()?);
                let kind = match r.u8()? {
                    0 => NackKind::Release,
                    1 => NackKind::Fail,
                    2 => NackKind::Fatal,
                    _ => return Err(DecodeError::Invalid("unknown nack kind")),
                };
                QueueOp::Nack { id, delay_ms, kind }
            }
            tag::EXTEND => QueueOp::Extend { id: r.u64()?, lease_ms: r.u64()? },
            tag::DELETE => QueueOp::Delete(ids(r)?),
            tag::PURGE => QueueOp::Purge,
            tag::REDRIVE => QueueOp::Redrive(ids(r)?),
            tag::PURGE_DEAD => QueueOp::PurgeDead,
            tag::CONFIGURE => QueueOp::Configure(decode_config(r)?),
            _ => return Err(DecodeError::Invalid("unknown queue change tag")),
        };
        Ok(QueueChange { at, op })
    }
}

/// The bit of a config's overflow byte that says `strict`.
const STRICT_BIT: u8 = 0x80;

fn encode_config(c: &Config, w: &mut Writer<'_>) {
    w.u32(c.max_deliveries);
    w.u64(c.lease_ms);
    w.u64(c.max_len);
    // The overflow byte's top bit carries `strict` (older records have it clear).
    let overflow = match c.overflow {
        Overflow::DropHead => 0,
        Overflow::RejectPublish => 1,
    };
    w.u8(overflow | if c.strict { STRICT_BIT } else { 0 });
    w.u64(c.dedup_window_ms);
}

fn decode_config(r: &mut Reader<'_>) -> Result<Config, DecodeError> {
    let (max_deliveries, lease_ms, max_len) = (r.u32()?, r.u64()?, r.u64()?);
    let byte = r.u8()?;
    let overflow = match byte & !STRICT_BIT {
        0 => Overflow::DropHead,
        1 => Overflow::RejectPublish,
        _ => return Err(DecodeError::Invalid("unknown queue overflow policy")),
    };
    Ok(Config { max_deliveries, lease_ms, max_len, overflow, dedup_window_ms: r.u64()?, strict: byte & STRICT_BIT != 0 })
}

fn encode_state(s: State, w: &mut Writer<'_>) {
    let (tag, t) = match s {
        State::Ready => (0, 0),
        State::Delayed(t) => (1, t),
        State::Leased(t) => (2, t),
        State::Dead => (3, 0),
    };
    w.u8(tag);
    w.u64(t);
}

fn decode_state(r: &mut Reader<'_>) -> Result<State, DecodeError> {
    let (tag, t) = (r.u8()?, r.u64()?);
    Ok(match tag {
        0 => State::Ready,
        1 => State::Delayed(t),
        2 => State::Leased(t),
        3 => State::Dead,
        _ => return Err(DecodeError::Invalid("unknown queue message state")),
    })
}

impl Queue {
    /// Bytes [`Queue::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let msgs: usize = self
            .msgs
            .values()
            .map(|m| 8 + 4 + m.payload.len() + 1 + 4 + 8 + 8 + 9 + 1 + m.reason.as_ref().map_or(0, |r| 4 + r.len()))
            .sum();
        let dedup: usize = self.dedup.keys().map(|k| 4 + k.len() + 16).sum();
        8 + 29 + 6 * 8 + 4 + msgs + 4 + dedup
    }

    /// Writes the whole queue (checkpoints, whole-value records).
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.u64(self.next_id);
        encode_config(&self.config, w);
        let t = &self.totals;
        for n in [t.pushed, t.acked, t.dead_lettered, t.expired, t.dropped, t.lease_expired] {
            w.u64(n);
        }
        let mut ids: Vec<&u64> = self.msgs.keys().collect();
        ids.sort_unstable();
        w.u32(ids.len() as u32);
        for id in ids {
            let m = &self.msgs[id];
            w.u64(*id);
            w.bytes(&m.payload);
            w.u8(m.priority);
            w.u32(m.attempts);
            w.u64(m.pushed_ms);
            w.u64(m.expire_ms);
            encode_state(m.state, w);
            w.u8(m.reason.is_some() as u8);
            if let Some(r) = &m.reason {
                w.bytes(r);
            }
        }
        let mut keys: Vec<_> = self.dedup.iter().collect();
        keys.sort_unstable();
        w.u32(keys.len() as u32);
        for (k, (id, until)) in keys {
            w.bytes(k);
            w.u64(*id);
            w.u64(*until);
        }
    }

    /// Reads a queue written by [`Queue::encode`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Queue, DecodeError> {
        let mut q = Queue { next_id: r.u64()?, config: decode_config(r)?, ..Queue::default() };
        let mut t = [0u64; 6];
        for n in t.iter_mut() {
            *n = r.u64()?;
        }
        q.totals = Totals { pushed: t[0], acked: t[1], dead_lettered: t[2], expired: t[3], dropped: t[4], lease_expired: t[5] };
        for _ in 0..r.u32()? {
            let id = r.u64()?;
            let payload = SmallBytes::new(r.bytes()?);
            let (priority, attempts, pushed_ms, expire_ms) = (r.u8()?, r.u32()?, r.u64()?, r.u64()?);
            let state = decode_state(r)?;
            let reason = match r.u8()? {
                0 => None,
                1 => Some(SmallBytes::new(r.bytes()?)),
                _ => return Err(DecodeError::Invalid("flag is neither 0 nor 1")),
            };
            q.heap += MESSAGE_COST + payload.heap_bytes() + reason.as_ref().map_or(0, SmallBytes::heap_bytes);
            q.msgs.insert(id, Message { payload, priority, attempts, pushed_ms, expire_ms, state: State::Dead, reason });
            q.dead.insert(id);
            q.place(id, state);
        }
        for _ in 0..r.u32()? {
            let key: Box<[u8]> = r.bytes()?.into();
            let (id, until) = (r.u64()?, r.u64()?);
            q.heap += MESSAGE_COST + key.len();
            q.dedup_until.insert((until, key.clone()));
            q.dedup.insert(key, (id, until));
        }
        Ok(q)
    }
}

impl Queue {
    /// Checks the queue's invariants: every index entry names a message in
    /// that state, every message is in exactly the index of its state, and
    /// the TTL index matches. O(n); for tests and `strand-tools check`.
    pub fn verify(&self) -> Result<(), String> {
        let mut indexed = 0;
        for &(Reverse(p), id) in &self.ready {
            match self.msgs.get(&id) {
                Some(m) if (m.state, m.priority) == (State::Ready, p) => {}
                other => return Err(format!("ready entry {id} (priority {p}) names {other:?}")),
            }
            indexed += 1;
        }
        for &(t, id) in &self.delayed {
            if self.msgs.get(&id).map(|m| m.state) != Some(State::Delayed(t)) {
                return Err(format!("delayed entry {id} (until {t}) names {:?}", self.msgs.get(&id)));
            }
            indexed += 1;
        }
        for &(t, id) in &self.leased {
            if self.msgs.get(&id).map(|m| m.state) != Some(State::Leased(t)) {
                return Err(format!("leased entry {id} (until {t}) names {:?}", self.msgs.get(&id)));
            }
            indexed += 1;
        }
        for &id in &self.dead {
            if self.msgs.get(&id).map(|m| m.state) != Some(State::Dead) {
                return Err(format!("dead entry {id} names {:?}", self.msgs.get(&id)));
            }
            indexed += 1;
        }
        if indexed != self.msgs.len() {
            return Err(format!("{} messages but {indexed} index entries", self.msgs.len()));
        }
        for &(t, id) in &self.expiring {
            match self.msgs.get(&id) {
                Some(m) if m.expire_ms == t && matches!(m.state, State::Ready | State::Delayed(_)) => {}
                other => return Err(format!("expiring entry {id} (at {t}) names {other:?}")),
            }
        }
        if let Some(&id) = self.msgs.keys().find(|id| **id >= self.next_id) {
            return Err(format!("message {id} is not below the next ID {}", self.next_id));
        }
        Ok(())
    }
}

/// The dead-letter order is by ID; a map view for listing with the reason.
pub fn dead_list(q: &Queue, count: usize) -> Vec<(u64, &Message)> {
    q.dead.iter().take(count).filter_map(|id| q.msgs.get(id).map(|m| (*id, m))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(id: u64, priority: u8) -> QueueChange<'static> {
        QueueChange {
            at: 1000,
            op: QueueOp::Push(Push { id, payload: b"p", priority, delay_ms: 0, ttl_ms: 0, dedup: None, drop_head: None }),
        }
    }

    fn roundtrip(c: &QueueChange<'_>) {
        let mut buf = vec![0u8; c.encoded_len()];
        let mut w = Writer::new(&mut buf);
        c.encode(&mut w);
        assert_eq!(w.position(), buf.len(), "{c:?}");
        let mut r = Reader::new(&buf);
        assert_eq!(&QueueChange::decode(&mut r).expect("decodes"), c);
        r.finish().expect("no trailing bytes");
    }

    /// The invariants hold ([`Queue::verify`]), and a snapshot decodes to the same queue.
    fn check_invariants(q: &Queue, ctx: &str) {
        if let Err(e) = q.verify() {
            panic!("{ctx}: {e}");
        }
        let mut buf = vec![0u8; q.encoded_len()];
        q.encode(&mut Writer::new(&mut buf));
        let back = Queue::decode(&mut Reader::new(&buf)).expect("a snapshot decodes");
        assert_eq!(
            format!("{:?}", (&back.ready, &back.delayed, &back.leased, &back.dead, &back.expiring, back.heap)),
            format!("{:?}", (&q.ready, &q.delayed, &q.leased, &q.dead, &q.expiring, q.heap)),
            "{ctx}: snapshot"
        );
    }

    #[test]
    fn random_changes_keep_every_index_consistent() {
        let seed: u64 = rand::random();
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
        use rand::Rng;
        let mut q = Queue::default();
        q.config.max_deliveries = 3;
        let mut at = 1_000_000u64;
        let keys: [&[u8]; 3] = [b"a", b"b", b"c"];
        for step in 0..20_000 {
            at += rng.gen_range(0..40);
            let any = |rng: &mut rand::rngs::StdRng, q: &Queue| if q.next_id == 0 { 0 } else { rng.gen_range(0..q.next_id + 1) };
            let op = match rng.gen_range(0..12) {
                0..=2 => QueueOp::Push(Push {
                    id: q.next_id,
                    payload: b"p",
                    priority: rng.gen_range(0..3),
                    delay_ms: if rng.gen_ratio(1, 4) { rng.gen_range(1..100) } else { 0 },
                    ttl_ms: if rng.gen_ratio(1, 4) { rng.gen_range(1..200) } else { 0 },
                    dedup: rng.gen_ratio(1, 3).then(|| keys[rng.gen_range(0..3)]),
                    drop_head: rng.gen_ratio(1, 10).then(|| q.ready_ids().next()).flatten(),
                }),
                3..=4 => QueueOp::Lease {
                    ids: q.ready_ids().take(rng.gen_range(1..4)).collect(),
                    lease_ms: rng.gen_range(1..100),
                    noack: rng.gen_ratio(1, 10),
                },
                5 => QueueOp::Ack(vec![any(&mut rng, &q)]),
                6 => QueueOp::Nack {
                    id: any(&mut rng, &q),
                    delay_ms: rng.gen_range(0..2) * 30,
                    kind: [NackKind::Release, NackKind::Fail, NackKind::Fatal][rng.gen_range(0..3)],
                },
                7 => QueueOp::Extend { id: any(&mut rng, &q), lease_ms: rng.gen_range(1..100) },
                8 => QueueOp::Delete(vec![any(&mut rng, &q)]),
                9 => QueueOp::Redrive(vec![any(&mut rng, &q)]),
                10 if rng.gen_ratio(1, 20) => [QueueOp::Purge, QueueOp::PurgeDead][rng.gen_range(0..2)].clone(),
                _ => QueueOp::Settle,
            };
            q.apply(&QueueChange { at, op });
            check_invariants(&q, &format!("seed {seed}, step {step}"));
        }
    }

    #[test]
    fn changes_round_trip() {
        roundtrip(&push(1, 3));
        let p = Push { id: 9, payload: b"x", priority: 0, delay_ms: 5, ttl_ms: 7, dedup: Some(b"d"), drop_head: Some(2) };
        roundtrip(&QueueChange { at: 5, op: QueueOp::Push(p) });
        for op in [
            QueueOp::Settle,
            QueueOp::Lease { ids: vec![1, 2], lease_ms: 30, noack: true },
            QueueOp::Ack(vec![3]),
            QueueOp::Nack { id: 4, delay_ms: 10, kind: NackKind::Fatal },
            QueueOp::Extend { id: 4, lease_ms: 99 },
            QueueOp::Delete(vec![]),
            QueueOp::Purge,
            QueueOp::Redrive(vec![7]),
            QueueOp::PurgeDead,
            QueueOp::Configure(Config::default()),
            QueueOp::Configure(Config { strict: true, overflow: Overflow::DropHead, ..Config::default() }),
        ] {
            roundtrip(&QueueChange { at: 77, op });
        }
    }

    #[test]
    fn priority_then_fifo_and_leases_fail_into_the_dead_letter_list() {
        let mut q = Queue::default();
        q.apply(&QueueChange { at: 0, op: QueueOp::Configure(Config { max_deliveries: 2, ..Config::default() }) });
        for (id, pri) in [(1, 0), (2, 5), (3, 0), (4, 5)] {
            q.apply(&push(id, pri));
        }
        assert_eq!(q.ready_ids().collect::<Vec<_>>(), vec![2, 4, 1, 3]);
        q.apply(&QueueChange { at: 2000, op: QueueOp::Lease { ids: vec![2], lease_ms: 100, noack: false } });
        assert_eq!(q.next_event(), Some(2100));
        // The lease runs out: first failure, back to ready at the front of its priority.
        q.apply(&QueueChange { at: 2100, op: QueueOp::Settle });
        assert_eq!(q.get(2).map(|m| (m.state, m.attempts)), Some((State::Ready, 1)));
        q.apply(&QueueChange { at: 2200, op: QueueOp::Lease { ids: vec![2], lease_ms: 100, noack: false } });
        q.apply(&QueueChange { at: 2300, op: QueueOp::Settle });
        assert_eq!(q.get(2).map(|m| m.state), Some(State::Dead));
        assert_eq!(q.totals.dead_lettered, 1);
        assert_eq!(q.counts(), Counts { ready: 3, delayed: 0, leased: 0, dead: 1 });
        q.apply(&QueueChange { at: 2400, op: QueueOp::Redrive(vec![2]) });
        assert_eq!(q.get(2).map(|m| (m.state, m.attempts)), Some((State::Ready, 0)));
    }

    #[test]
    fn delays_ttls_and_dedup_windows_settle_by_the_change_time() {
        let mut q = Queue::default();
        let p = Push { id: 1, payload: b"a", priority: 0, delay_ms: 50, ttl_ms: 0, dedup: Some(b"k"), drop_head: None };
        q.apply(&QueueChange { at: 100, op: QueueOp::Push(p) });
        let p = Push { id: 2, payload: b"b", priority: 0, delay_ms: 0, ttl_ms: 10, dedup: None, drop_head: None };
        q.apply(&QueueChange { at: 100, op: QueueOp::Push(p) });
        assert_eq!(q.counts().delayed, 1);
        assert_eq!(q.dedup(b"k", 120), Some(1));
        q.apply(&QueueChange { at: 150, op: QueueOp::Settle });
        assert_eq!(q.ready_ids().collect::<Vec<_>>(), vec![1], "2 expired at 110, 1 came due at 150");
        assert_eq!(q.totals.expired, 1);
        q.apply(&QueueChange { at: 100 + 300_000, op: QueueOp::Settle });
        assert_eq!(q.dedup(b"k", 100 + 300_000), None);
        assert_eq!(q.dedup_len(), 0);
    }

    #[test]
    fn a_queue_round_trips_whole_and_its_heap_count_returns_to_zero() {
        let mut q = Queue::default();
        for id in 0..20 {
            let p = Push {
                id,
                payload: &[b'x'; 40],
                priority: (id % 3) as u8,
                delay_ms: id % 2 * 1000,
                ttl_ms: 0,
                dedup: Some(b"dd"),
                drop_head: None,
            };
            q.apply(&QueueChange { at: 10, op: QueueOp::Push(p) });
        }
        q.apply(&QueueChange { at: 20, op: QueueOp::Lease { ids: vec![0, 2, 4], lease_ms: 500, noack: false } });
        q.apply(&QueueChange { at: 30, op: QueueOp::Nack { id: 2, delay_ms: 0, kind: NackKind::Fatal } });
        let mut buf = vec![0u8; q.encoded_len()];
        let mut w = Writer::new(&mut buf);
        q.encode(&mut w);
        assert_eq!(w.position(), buf.len());
        let back = Queue::decode(&mut Reader::new(&buf)).expect("decodes");
        assert_eq!(back.msgs, q.msgs);
        assert_eq!((back.counts(), back.heap_bytes(), back.next_event()), (q.counts(), q.heap_bytes(), q.next_event()));
        let all: Vec<u64> = (0..20).collect();
        q.apply(&QueueChange { at: 40, op: QueueOp::Delete(all) });
        q.apply(&QueueChange { at: 10 + 300_000, op: QueueOp::Settle });
        assert_eq!((q.len(), q.heap_bytes()), (0, 0));
    }
}
