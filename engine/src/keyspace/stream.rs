//! The stream container (Redis Streams) and the changes that write it.
//!
//! A stream is an ordered map from [`StreamId`] to an entry (field/value
//! pairs), plus the bookkeeping Redis keeps beside it: the last ID ever
//! given, the largest deleted ID, the count of entries ever added, and the
//! consumer groups. A group has a last-delivered ID, a counter of entries
//! read (for the lag of XINFO GROUPS), its pending entries list (PEL: ID →
//! owner, last delivery time, delivery count) and its consumers, each with
//! the IDs it holds pending.
//!
//! Every write is one [`StreamChange`], decided in full by the command
//! before it is logged: an XADD carries the ID it chose, a trim the number
//! of entries it drops, a delivery the IDs, times and counts it gives, a
//! group's new entries-read counter. Applying one needs no clock and no
//! arithmetic beyond bookkeeping, so live apply and replay agree, and the
//! consumer-group state after a restart is exactly the state before it.
//! The one clock a change reads is the record's own time (`now`), for a
//! consumer's seen and active times.
//!
//! This module holds data only; it never touches files or the network.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::idmp::Idmp;
use crate::bytes::SmallBytes;
use crate::codec::{DecodeError, Reader, Writer};

/// A stream entry ID: milliseconds, then a sequence number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// `0-0`.
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest ID.
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    /// An ID from its parts.
    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID, None after [`StreamId::MAX`].
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId::new(self.ms, seq)),
            None => self.ms.checked_add(1).map(|ms| StreamId::new(ms, 0)),
        }
    }

    /// The previous ID, None before `0-0`.
    pub fn prev(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId::new(self.ms, seq)),
            None => self.ms.checked_sub(1).map(|ms| StreamId::new(ms, u64::MAX)),
        }
    }

    /// Whether it is `0-0`.
    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    pub(super) fn encode(self, w: &mut Writer<'_>) {
        w.u64(self.ms);
        w.u64(self.seq);
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<StreamId, DecodeError> {
        Ok(StreamId::new(r.u64()?, r.u64()?))
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A pending entry of a group: delivered, not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The consumer that holds it.
    pub consumer: SmallBytes,
    /// Unix ms of its last delivery.
    pub delivered_ms: u64,
    /// How many times it was delivered.
    pub deliveries: u64,
}

/// A consumer of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consumer {
    /// Unix ms it was last seen (any read or claim attempt).
    pub seen_ms: u64,
    /// Unix ms it last got entries (read or claimed), None if never.
    pub active_ms: Option<u64>,
    /// The IDs it holds pending.
    pub pending: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    /// The last ID delivered to the group.
    pub last_id: StreamId,
    /// Entries the group has read (its logical position), None when unknown.
    pub entries_read: Option<u64>,
    /// Pending entries, by ID.
    pub pel: BTreeMap<StreamId, Pending>,
    /// Consumers, by name.
    pub consumers: BTreeMap<Box<[u8]>, Consumer>,
}

/// An entry's field/value pairs, flattened: `[f1, v1, f2, v2 ...]`.
pub type Fields = Box<[SmallBytes]>;

/// Heap bytes charged per entry, pending entry or consumer beyond their
/// strings: a share of a B-tree node and the boxed pair slice.
const NODE_COST: usize = 48;

/// A stream value.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    entries: BTreeMap<StreamId, Fields>,
    /// The largest ID ever added (or set by XSETID).
    pub last_id: StreamId,
    /// The largest ID ever deleted by XDEL (0-0 when none).
    pub max_deleted: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    /// Consumer groups, by name.
    pub groups: BTreeMap<Box<[u8]>, Group>,
    /// Idempotent production (XADD IDMP/IDMPAUTO, XCFGSET): None until used.
    pub idmp: Option<Box<Idmp>>,
    /// How long and how much the stream keeps (XCFGSET RETENTION-MS/-BYTES).
    pub retention: Retention,
    /// Bytes of the entries: 16 per ID plus their fields and values (what RETENTION-BYTES bounds).
    data_bytes: u64,
    /// Running heap bytes, for O(1) memory accounting.
    heap: usize,
}

/// A stream's retention, as Kafka's `retention.ms` and `retention.bytes`
/// (0: no limit). Entries older than `ms` (by their ID's time) or beyond
/// `bytes` (oldest first) are trimmed as later records, so replay agrees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Most age, in ms, by the entry ID's time part.
    pub ms: u64,
    /// Most entry bytes ([`Stream::data_bytes`]).
    pub bytes: u64,
}

impl Retention {
    /// Whether either limit is set.
    pub fn is_set(&self) -> bool {
        self.ms > 0 || self.bytes > 0
    }
}

/// The bytes an entry counts for [`Stream::data_bytes`].
pub fn entry_bytes<B: AsRef<[u8]>>(fields: &[B]) -> u64 {
    16 + fields.iter().map(|f| f.as_ref().len() as u64).sum::<u64>()
}

fn fields_bytes(f: &[SmallBytes]) -> usize {
    NODE_COST + std::mem::size_of_val(f) + f.iter().map(SmallBytes::heap_bytes).sum::<usize>()
}

fn name_bytes(name: &[u8]) -> usize {
    NODE_COST + if name.len() > crate::bytes::INLINE { name.len() } else { 0 }
}

impl Stream {
    /// Entries in the stream.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it has no entries (a stream with none still exists).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Heap bytes owned. O(1).
    pub fn heap_bytes(&self) -> usize {
        self.heap + self.idmp.as_ref().map_or(0, |m| m.heap_bytes())
    }

    /// The entry at `id`.
    pub fn get(&self, id: StreamId) -> Option<&Fields> {
        self.entries.get(&id)
    }

    /// The first entry.
    pub fn first(&self) -> Option<(StreamId, &Fields)> {
        self.entries.first_key_value().map(|(k, v)| (*k, v))
    }

    /// The last entry.
    pub fn last(&self) -> Option<(StreamId, &Fields)> {
        self.entries.last_key_value().map(|(k, v)| (*k, v))
    }

    /// The ID of the first entry, 0-0 when empty (Redis's `first_id`).
    pub fn first_id(&self) -> StreamId {
        self.first().map_or(StreamId::MIN, |(id, _)| id)
    }

    /// Entries with IDs in `start..=end`, in order (or reversed).
    pub fn range(&self, start: StreamId, end: StreamId, rev: bool) -> Box<dyn Iterator<Item = (StreamId, &Fields)> + '_> {
        if start > end {
            return Box::new(std::iter::empty());
        }
        let it = self.entries.range(start..=end).map(|(k, v)| (*k, v));
        if rev {
            Box::new(it.rev())
        } else {
            Box::new(it)
        }
    }

    /// IDs of the first `n` entries' successor: the ID of entry `n` (0-based), if any.
    pub fn nth_id(&self, n: usize) -> Option<StreamId> {
        self.entries.keys().nth(n).copied()
    }

    /// How many entries have IDs below `id`.
    pub fn count_below(&self, id: StreamId) -> usize {
        self.entries.range(..id).count()
    }

    /// Whether an XDEL tombstone lies in `start..=end` (Redis's `streamRangeHasTombstones`).
    pub fn has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.entries.is_empty() || self.max_deleted.is_zero() || self.first_id() > self.max_deleted {
            return false;
        }
        start <= self.max_deleted && self.max_deleted <= end
    }

    /// The logical position (count of entries added up to it) of `id`, None
    /// when it cannot be known (Redis's `streamEstimateDistanceFromFirstEverEntry`).
    pub fn estimate_position(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.entries.is_empty() && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        let first = self.first_id();
        if self.max_deleted.is_zero() || self.max_deleted < first {
            let len = self.entries.len() as u64;
            if id < first {
                return Some(self.entries_added - len);
            }
            if id == first {
                return Some(self.entries_added - len + 1);
            }
        }
        None
    }

    /// Whether some group still needs the entry `id`: holds it pending, or
    /// has not been delivered up to it yet (the ACKED test of XDELEX and XACKDEL).
    pub fn referenced(&self, id: StreamId) -> bool {
        self.groups.values().any(|g| g.last_id < id || g.pel.contains_key(&id))
    }

    /// The lag of a group (entries not yet read by it), None when unknown.
    pub fn lag(&self, g: &Group) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = g.entries_read.filter(|_| !self.has_tombstones(g.last_id, StreamId::MAX)) {
            return Some(self.entries_added.saturating_sub(read));
        }
        self.estimate_position(g.last_id).map(|read| self.entries_added.saturating_sub(read))
    }

    /// A group's entries-read counter `read` after it reads the entry `id`
    /// (Redis's update in `streamReplyWithRange`, once per entry read).
    pub fn entries_read_after(&self, read: Option<u64>, id: StreamId) -> Option<u64> {
        match read {
            Some(n) if !self.has_tombstones(id, StreamId::MAX) => Some(n + 1),
            _ if self.entries_added > 0 => self.estimate_position(id),
            old => old,
        }
    }

    fn insert(&mut self, id: StreamId, fields: Fields) {
        self.heap += fields_bytes(&fields);
        self.data_bytes += entry_bytes(&fields);
        if let Some(old) = self.entries.insert(id, fields) {
            self.forget(&old);
        }
    }

    fn forget(&mut self, old: &Fields) {
        self.heap -= fields_bytes(old);
        self.data_bytes -= entry_bytes(old);
    }

    fn remove(&mut self, id: StreamId) -> bool {
        match self.entries.remove(&id) {
            Some(old) => {
                self.forget(&old);
                true
            }
            None => false,
        }
    }

    /// Bytes of the entries (16 per ID plus fields and values).
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// How many of the oldest entries retention drops at `now` once an entry
    /// of `adding` bytes joins (0 when none does): those older than
    /// `retention.ms`, then the oldest until the rest fits `retention.bytes`.
    /// Never more than the entries there now, so the new entry stays.
    pub fn retention_trim(&self, now: u64, adding: u64) -> u64 {
        self.retention_trim_with(self.retention, now, adding)
    }

    /// [`Stream::retention_trim`] under retention `r` (XCFGSET, before it applies).
    pub fn retention_trim_with(&self, r: Retention, now: u64, adding: u64) -> u64 {
        let mut count = 0u64;
        if r.ms > 0 {
            let oldest_kept = StreamId::new(now.saturating_sub(r.ms), 0);
            count = self.entries.range(..oldest_kept).count() as u64;
        }
        if r.bytes > 0 {
            let mut total = self.data_bytes + adding;
            let mut n = 0u64;
            for f in self.entries.values() {
                if total <= r.bytes {
                    break;
                }
                total -= entry_bytes(f);
                n += 1;
            }
            count = count.max(n);
        }
        count
    }

    fn group_mut(&mut self, name: &[u8]) -> Option<&mut Group> {
        self.groups.get_mut(name)
    }

    fn consumer_mut<'g>(g: &'g mut Group, heap: &mut usize, name: &[u8], now: u64) -> &'g mut Consumer {
        if !g.consumers.contains_key(name) {
            *heap += name_bytes(name);
        }
        g.consumers.entry(name.into()).or_insert_with(|| Consumer { seen_ms: now, active_ms: None, pending: BTreeSet::new() })
    }

    /// Applies a change. `now` is the record's time.
    pub fn apply(&mut self, change: &StreamChange<'_>, now: u64) {
        match change {
            StreamChange::Add { id, fields } => self.add(*id, fields),
            StreamChange::IdmpAdd { id, fields, pid, iid } => {
                self.add(*id, fields);
                self.idmp.get_or_insert_with(Default::default).record(pid, iid, *id, now);
            }
            StreamChange::IdmpConfig { duration_s, maxsize } => {
                self.idmp.get_or_insert_with(Default::default).configure(*duration_s, *maxsize);
            }
            StreamChange::IdmpDuplicate => self.idmp.get_or_insert_with(Default::default).iids_duplicates += 1,
            StreamChange::Retention(r) => self.retention = *r,
            StreamChange::Trim { count } => {
                for _ in 0..*count {
                    match self.entries.pop_first() {
                        Some((_, old)) => self.forget(&old),
                        None => break,
                    }
                }
            }
            StreamChange::Del(ids) => {
                for id in ids {
                    if self.remove(*id) {
                        self.max_deleted = self.max_deleted.max(*id);
                    }
                }
            }
            StreamChange::SetId { last_id, entries_added, max_deleted } => {
                self.last_id = *last_id;
                if let Some(n) = entries_added {
                    self.entries_added = *n;
                }
                if let Some(id) = max_deleted {
                    self.max_deleted = *id;
                }
            }
            StreamChange::GroupCreate { group, last_id, entries_read } => {
                if !self.groups.contains_key(*group) {
                    self.heap += name_bytes(group);
                    self.groups.insert((*group).into(), Group { last_id: *last_id, entries_read: *entries_read, ..Group::default() });
                }
            }
            StreamChange::GroupSetId { group, last_id, entries_read } => {
                if let Some(g) = self.group_mut(group) {
                    g.last_id = *last_id;
                    g.entries_read = *entries_read;
                }
            }
            StreamChange::GroupDestroy { group } => {
                if let Some((key, g)) = self.groups.remove_entry(*group) {
                    self.heap -= name_bytes(&key) + group_bytes(&g);
                }
            }
            StreamChange::ConsumerCreate { group, consumer } => {
                if let Some(g) = self.groups.get_mut(*group) {
                    Stream::consumer_mut(g, &mut self.heap, consumer, now);
                }
            }
            StreamChange::ConsumerDel { group, consumer } => {
                if let Some(g) = self.groups.get_mut(*group) {
                    if let Some((key, c)) = g.consumers.remove_entry(*consumer) {
                        self.heap -= name_bytes(&key);
                        for id in &c.pending {
                            if let Some(p) = g.pel.remove(id) {
                                self.heap -= name_bytes(&p.consumer);
                            }
                        }
                    }
                }
            }
            StreamChange::Deliver(d) => self.deliver(d, now),
            StreamChange::Ack { group, ids } => {
                if let Some(g) = self.groups.get_mut(*group) {
                    for id in ids {
                        unpend(g, &mut self.heap, *id);
                    }
                }
            }
            StreamChange::Unref(ids) => {
                for g in self.groups.values_mut() {
                    for id in ids {
                        unpend(g, &mut self.heap, *id);
                    }
                }
            }
        }
    }

    fn add(&mut self, id: StreamId, fields: &[&[u8]]) {
        self.insert(id, fields.iter().map(|f| SmallBytes::new(f)).collect());
        self.last_id = self.last_id.max(id);
        self.entries_added += 1;
    }

    fn deliver(&mut self, d: &Delivery<'_>, now: u64) {
        let Some(g) = self.groups.get_mut(d.group) else { return };
        if let Some((id, read)) = d.last_id {
            g.last_id = id;
            g.entries_read = read;
        }
        for id in &d.unpend {
            unpend(g, &mut self.heap, *id);
        }
        let Some(name) = d.consumer else { return };
        let c = Stream::consumer_mut(g, &mut self.heap, name, now);
        c.seen_ms = now;
        if d.active {
            c.active_ms = Some(now);
        }
        let owner = SmallBytes::new(name);
        for &(id, delivered_ms, deliveries) in &d.pending {
            let c = Stream::consumer_mut(g, &mut self.heap, name, now);
            c.pending.insert(id);
            let new = Pending { consumer: owner.clone(), delivered_ms, deliveries };
            match g.pel.insert(id, new) {
                Some(old) if old.consumer != owner => {
                    if let Some(prev) = g.consumers.get_mut(&old.consumer[..]) {
                        prev.pending.remove(&id);
                    }
                }
                Some(_) => {}
                None => self.heap += name_bytes(&owner),
            }
        }
    }

    /// Bytes [`Stream::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let b = |s: &[u8]| 4 + s.len();
        let entries: usize = self.entries.values().map(|f| 16 + 4 + f.iter().map(|s| b(s)).sum::<usize>()).sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|(name, g)| {
                let pel: usize = g.pel.values().map(|p| 16 + 16 + b(&p.consumer)).sum();
                let consumers: usize = g.consumers.keys().map(|n| b(n) + 8 + 1 + 8).sum();
                b(name) + 16 + 1 + 8 + 4 + pel + 4 + consumers
            })
            .sum();
        16 + 16 + 8 + 4 + entries + 4 + groups
    }

    /// Writes the whole stream (for checkpoints and whole-value records).
    pub fn encode(&self, w: &mut Writer<'_>) {
        self.last_id.encode(w);
        self.max_deleted.encode(w);
        w.u64(self.entries_added);
        w.u32(self.entries.len() as u32);
        for (id, fields) in &self.entries {
            id.encode(w);
            w.u32(fields.len() as u32);
            fields.iter().for_each(|f| w.bytes(f));
        }
        w.u32(self.groups.len() as u32);
        for (name, g) in &self.groups {
            w.bytes(name);
            g.last_id.encode(w);
            encode_opt(w, g.entries_read);
            w.u32(g.pel.len() as u32);
            for (id, p) in &g.pel {
                id.encode(w);
                w.u64(p.delivered_ms);
                w.u64(p.deliveries);
                w.bytes(&p.consumer);
            }
            w.u32(g.consumers.len() as u32);
            for (name, c) in &g.consumers {
                w.bytes(name);
                w.u64(c.seen_ms);
                encode_opt(w, c.active_ms);
            }
        }
    }

    /// Reads a stream written by [`Stream::encode`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Stream, DecodeError> {
        let mut s =
            Stream { last_id: StreamId::decode(r)?, max_deleted: StreamId::decode(r)?, entries_added: r.u64()?, ..Stream::default() };
        for _ in 0..r.u32()? {
            let id = StreamId::decode(r)?;
            let n = r.u32()? as usize;
            if !n.is_multiple_of(2) {
                return Err(DecodeError::Invalid("stream entry has an odd number of fields and values"));
            }
            let mut fields = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                fields.push(SmallBytes::new(r.bytes()?));
            }
            s.insert(id, fields.into_boxed_slice());
        }
        for _ in 0..r.u32()? {
            let name: Box<[u8]> = r.bytes()?.into();
            let mut g = Group { last_id: StreamId::decode(r)?, entries_read: decode_opt(r)?, ..Group::default() };
            for _ in 0..r.u32()? {
                let id = StreamId::decode(r)?;
                let (delivered_ms, deliveries) = (r.u64()?, r.u64()?);
                let consumer = SmallBytes::new(r.bytes()?);
                s.heap += name_bytes(&consumer);
                g.pel.insert(id, Pending { consumer, delivered_ms, deliveries });
            }
            for _ in 0..r.u32()? {
                let cname: Box<[u8]> = r.bytes()?.into();
                let c = Consumer { seen_ms: r.u64()?, active_ms: decode_opt(r)?, pending: BTreeSet::new() };
                s.heap += name_bytes(&cname);
                g.consumers.insert(cname, c);
            }
            for (id, p) in &g.pel {
                let c = g.consumers.get_mut(&p.consumer[..]).ok_or(DecodeError::Invalid("pending entry of an unknown consumer"))?;
                c.pending.insert(*id);
            }
            s.heap += name_bytes(&name);
            s.groups.insert(name, g);
        }
        Ok(s)
    }
}

fn group_bytes(g: &Group) -> usize {
    g.pel.values().map(|p| name_bytes(&p.consumer)).sum::<usize>() + g.consumers.keys().map(|k| name_bytes(k)).sum::<usize>()
}

fn unpend(g: &mut Group, heap: &mut usize, id: StreamId) {
    if let Some(p) = g.pel.remove(&id) {
        *heap -= name_bytes(&p.consumer);
        if let Some(c) = g.consumers.get_mut(&p.consumer[..]) {
            c.pending.remove(&id);
        }
    }
}

fn encode_opt(w: &mut Writer<'_>, v: Option<u64>) {
    match v {
        Some(n) => {
            w.u8(1);
            w.u64(n);
        }
        None => {
            w.u8(0);
            w.u64(0);
        }
    }
}

fn decode_opt(r: &mut Reader<'_>) -> Result<Option<u64>, DecodeError> {
    let present = r.u8()?;
    let n = r.u64()?;
    match present {
        0 => Ok(None),
        1 => Ok(Some(n)),
        _ => Err(DecodeError::Invalid("option flag is neither 0 nor 1")),
    }
}

/// What one read or claim does to a group: the delivery of XREADGROUP,
/// XCLAIM and XAUTOCLAIM, decided in full by the command.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Delivery<'a> {
    /// The group.
    pub group: &'a [u8],
    /// The consumer that reads or claims (created if absent; its seen time
    /// becomes the record's time). None: no consumer is touched.
    pub consumer: Option<&'a [u8]>,
    /// Whether the consumer got entries (its active time becomes the record's time).
    pub active: bool,
    /// The group's new last-delivered ID and entries-read counter.
    pub last_id: Option<(StreamId, Option<u64>)>,
    /// Entries now pending for the consumer: (ID, delivery time, delivery count).
    pub pending: Vec<(StreamId, u64, u64)>,
    /// Entries leaving the PEL (deleted from the stream, claimed by XAUTOCLAIM).
    pub unpend: Vec<StreamId>,
}

/// One command's change to one stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamChange<'a> {
    /// Adds an entry (flattened field/value pairs) with the ID the command chose.
    Add { id: StreamId, fields: Vec<&'a [u8]> },
    /// Adds an entry and remembers that producer `pid`'s idempotent ID `iid` added it (XADD IDMP/IDMPAUTO).
    IdmpAdd { id: StreamId, fields: Vec<&'a [u8]>, pid: &'a [u8], iid: &'a [u8] },
    /// XCFGSET: the IDMP limits (a change forgets every iid).
    IdmpConfig { duration_s: u32, maxsize: u32 },
    /// An XADD IDMP answered with an earlier entry's ID (counted for XINFO STREAM).
    IdmpDuplicate,
    /// XCFGSET RETENTION-MS/RETENTION-BYTES (strand's own).
    Retention(Retention),
    /// Drops the first `count` entries (XTRIM, XADD's MAXLEN/MINID).
    Trim { count: u64 },
    /// Deletes entries by ID (XDEL); deleted IDs raise the max-deleted ID.
    Del(Vec<StreamId>),
    /// XSETID.
    SetId { last_id: StreamId, entries_added: Option<u64>, max_deleted: Option<StreamId> },
    /// XGROUP CREATE (MKSTREAM creates the stream).
    GroupCreate { group: &'a [u8], last_id: StreamId, entries_read: Option<u64> },
    /// XGROUP SETID.
    GroupSetId { group: &'a [u8], last_id: StreamId, entries_read: Option<u64> },
    /// XGROUP DESTROY.
    GroupDestroy { group: &'a [u8] },
    /// XGROUP CREATECONSUMER.
    ConsumerCreate { group: &'a [u8], consumer: &'a [u8] },
    /// XGROUP DELCONSUMER: the consumer and its pending entries go.
    ConsumerDel { group: &'a [u8], consumer: &'a [u8] },
    /// XREADGROUP, XCLAIM, XAUTOCLAIM.
    Deliver(Delivery<'a>),
    /// XACK.
    Ack { group: &'a [u8], ids: Vec<StreamId> },
    /// Removes IDs from every group's pending entries list (the DELREF of XDELEX and XACKDEL).
    Unref(Vec<StreamId>),
}

mod tag {
    pub const ADD: u8 = 1;
    pub const TRIM: u8 = 2;
    pub const DEL: u8 = 3;
    pub const SETID: u8 = 4;
    pub const GROUP_CREATE: u8 = 5;
    pub const GROUP_SETID: u8 = 6;
    pub const GROUP_DESTROY: u8 = 7;
    pub const CONSUMER_CREATE: u8 = 8;
    pub const CONSUMER_DEL: u8 = 9;
    pub const DELIVER: u8 = 10;
    pub const ACK: u8 = 11;
    pub const UNREF: u8 = 12;
    pub const IDMP_ADD: u8 = 13;
    pub const IDMP_CONFIG: u8 = 14;
    pub const IDMP_DUPLICATE: u8 = 15;
    pub const RETENTION: u8 = 16;
}

impl<'a> StreamChange<'a> {
    /// Whether it can create the stream when the key is absent.
    pub fn creates(&self) -> bool {
        matches!(self, StreamChange::Add { .. } | StreamChange::IdmpAdd { .. } | StreamChange::GroupCreate { .. })
    }

    fn tag(&self) -> u8 {
        match self {
            StreamChange::Add { .. } => tag::ADD,
            StreamChange::Trim { .. } => tag::TRIM,
            StreamChange::Del(_) => tag::DEL,
            StreamChange::SetId { .. } => tag::SETID,
            StreamChange::GroupCreate { .. } => tag::GROUP_CREATE,
            StreamChange::GroupSetId { .. } => tag::GROUP_SETID,
            StreamChange::GroupDestroy { .. } => tag::GROUP_DESTROY,
            StreamChange::ConsumerCreate { .. } => tag::CONSUMER_CREATE,
            StreamChange::ConsumerDel { .. } => tag::CONSUMER_DEL,
            StreamChange::Deliver(_) => tag::DELIVER,
            StreamChange::Ack { .. } => tag::ACK,
            StreamChange::Unref(_) => tag::UNREF,
            StreamChange::IdmpAdd { .. } => tag::IDMP_ADD,
            StreamChange::IdmpConfig { .. } => tag::IDMP_CONFIG,
            StreamChange::IdmpDuplicate => tag::IDMP_DUPLICATE,
            StreamChange::Retention(_) => tag::RETENTION,
        }
    }

    /// Payload bytes: a tag byte, then the fields.
    pub fn encoded_len(&self) -> usize {
        let b = |s: &[u8]| 4 + s.len();
        let ids = |v: &[StreamId]| 4 + 16 * v.len();
        1 + match self {
            StreamChange::Add { fields, .. } => 16 + 4 + fields.iter().map(|f| b(f)).sum::<usize>(),
            StreamChange::IdmpAdd { fields, pid, iid, .. } => 16 + 4 + fields.iter().map(|f| b(f)).sum::<usize>() + b(pid) + b(iid),
            StreamChange::IdmpConfig { .. } => 8,
            StreamChange::IdmpDuplicate => 0,
            StreamChange::Retention(_) => 16,
            StreamChange::Trim { .. } => 8,
            StreamChange::Del(v) | StreamChange::Unref(v) => ids(v),
            StreamChange::SetId { .. } => 16 + 9 + 1 + 16,
            StreamChange::GroupCreate { group, .. } | StreamChange::GroupSetId { group, .. } => b(group) + 16 + 9,
            StreamChange::GroupDestroy { group } => b(group),
            StreamChange::ConsumerCreate { group, consumer } | StreamChange::ConsumerDel { group, consumer } => b(group) + b(consumer),
            StreamChange::Deliver(d) => {
                b(d.group) + 1 + d.consumer.map_or(0, b) + 1 + 1 + 16 + 9 + 4 + 32 * d.pending.len() + ids(&d.unpend)
            }
            StreamChange::Ack { group, ids: v } => b(group) + ids(v),
        }
    }

    /// Writes the payload.
    pub fn encode(&self, w: &mut Writer<'_>) {
        let ids = |w: &mut Writer<'_>, v: &[StreamId]| {
            w.u32(v.len() as u32);
            v.iter().for_each(|id| id.encode(w));
        };
        w.u8(self.tag());
        match self {
            StreamChange::Add { id, fields } => {
                id.encode(w);
                w.u32(fields.len() as u32);
                fields.iter().for_each(|f| w.bytes(f));
            }
            StreamChange::IdmpAdd { id, fields, pid, iid } => {
                id.encode(w);
                w.u32(fields.len() as u32);
                fields.iter().for_each(|f| w.bytes(f));
                w.bytes(pid);
                w.bytes(iid);
            }
            StreamChange::IdmpConfig { duration_s, maxsize } => {
                w.u32(*duration_s);
                w.u32(*maxsize);
            }
            StreamChange::IdmpDuplicate => {}
            StreamChange::Retention(r) => {
                w.u64(r.ms);
                w.u64(r.bytes);
            }
            StreamChange::Trim { count } => w.u64(*count),
            StreamChange::Del(v) | StreamChange::Unref(v) => ids(w, v),
            StreamChange::SetId { last_id, entries_added, max_deleted } => {
                last_id.encode(w);
                encode_opt(w, *entries_added);
                w.u8(max_deleted.is_some() as u8);
                max_deleted.unwrap_or_default().encode(w);
            }
            StreamChange::GroupCreate { group, last_id, entries_read } | StreamChange::GroupSetId { group, last_id, entries_read } => {
                w.bytes(group);
                last_id.encode(w);
                encode_opt(w, *entries_read);
            }
            StreamChange::GroupDestroy { group } => w.bytes(group),
            StreamChange::ConsumerCreate { group, consumer } | StreamChange::ConsumerDel { group, consumer } => {
                w.bytes(group);
                w.bytes(consumer);
            }
            StreamChange::Deliver(d) => {
                w.bytes(d.group);
                w.u8(d.consumer.is_some() as u8);
                if let Some(c) = d.consumer {
                    w.bytes(c);
                }
                w.u8(d.active as u8);
                w.u8(d.last_id.is_some() as u8);
                let (id, read) = d.last_id.unwrap_or_default();
                id.encode(w);
                encode_opt(w, read);
                w.u32(d.pending.len() as u32);
                for (id, time, count) in &d.pending {
                    id.encode(w);
                    w.u64(*time);
                    w.u64(*count);
                }
                ids(w, &d.unpend);
            }
            StreamChange::Ack { group, ids: v } => {
                w.bytes(group);
                ids(w, v);
            }
        }
    }

    /// Reads a payload written by [`StreamChange::encode`].
    pub fn decode(r: &mut Reader<'a>) -> Result<StreamChange<'a>, DecodeError> {
        fn ids(r: &mut Reader<'_>) -> Result<Vec<StreamId>, DecodeError> {
            let n = r.u32()? as usize;
            let mut v = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                v.push(StreamId::decode(r)?);
            }
            Ok(v)
        }
        fn entry<'a>(r: &mut Reader<'a>) -> Result<(StreamId, Vec<&'a [u8]>), DecodeError> {
            let id = StreamId::decode(r)?;
            let n = r.u32()? as usize;
            if n == 0 || !n.is_multiple_of(2) {
                return Err(DecodeError::Invalid("stream entry needs field/value pairs"));
            }
            let mut fields = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                fields.push(r.bytes()?);
            }
            Ok((id, fields))
        }
        Ok(match r.u8()? {
            tag::ADD => {
                let (id, fields) = entry(r)?;
                StreamChange::Add { id, fields }
            }
            tag::IDMP_ADD => {
                let (id, fields) = entry(r)?;
                StreamChange::IdmpAdd { id, fields, pid: r.bytes()?, iid: r.bytes()? }
            }
            tag::IDMP_CONFIG => {
                let (duration_s, maxsize) = (r.u32()?, r.u32()?);
                if !super::idmp::DURATION_RANGE.contains(&duration_s) || !super::idmp::MAXSIZE_RANGE.contains(&maxsize) {
                    return Err(DecodeError::Invalid("stream IDMP limits out of range"));
                }
                StreamChange::IdmpConfig { duration_s, maxsize }
            }
            tag::IDMP_DUPLICATE => StreamChange::IdmpDuplicate,
            tag::RETENTION => StreamChange::Retention(Retention { ms: r.u64()?, bytes: r.u64()? }),
            tag::TRIM => StreamChange::Trim { count: r.u64()? },
            tag::DEL => StreamChange::Del(ids(r)?),
            tag::SETID => {
                let last_id = StreamId::decode(r)?;
                let entries_added = decode_opt(r)?;
                let has = r.flag()?;
                let id = StreamId::decode(r)?;
                StreamChange::SetId { last_id, entries_added, max_deleted: has.then_some(id) }
            }
            t @ (tag::GROUP_CREATE | tag::GROUP_SETID) => {
                let (group, last_id, entries_read) = (r.bytes()?, StreamId::decode(r)?, decode_opt(r)?);
                if t == tag::GROUP_CREATE {
                    StreamChange::GroupCreate { group, last_id, entries_read }
                } else {
                    StreamChange::GroupSetId { group, last_id, entries_read }
                }
            }
            tag::GROUP_DESTROY => StreamChange::GroupDestroy { group: r.bytes()? },
            tag::CONSUMER_CREATE => StreamChange::ConsumerCreate { group: r.bytes()?, consumer: r.bytes()? },
            tag::CONSUMER_DEL => StreamChange::ConsumerDel { group: r.bytes()?, consumer: r.bytes()? },
            tag::DELIVER => {
                let group = r.bytes()?;
                let consumer = if r.flag()? { Some(r.bytes()?) } else { None };
                let active = r.flag()?;
                let has_last = r.flag()?;
                let (id, read) = (StreamId::decode(r)?, decode_opt(r)?);
                let n = r.u32()? as usize;
                let mut pending = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    pending.push((StreamId::decode(r)?, r.u64()?, r.u64()?));
                }
                let unpend = ids(r)?;
                if consumer.is_none() && !pending.is_empty() {
                    return Err(DecodeError::Invalid("stream delivery of pending entries without a consumer"));
                }
                StreamChange::Deliver(Delivery { group, consumer, active, last_id: has_last.then_some((id, read)), pending, unpend })
            }
            tag::ACK => StreamChange::Ack { group: r.bytes()?, ids: ids(r)? },
            tag::UNREF => StreamChange::Unref(ids(r)?),
            _ => return Err(DecodeError::Invalid("unknown stream change tag")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(c: &StreamChange<'_>) {
        let mut buf = vec![0u8; c.encoded_len()];
        let mut w = Writer::new(&mut buf);
        c.encode(&mut w);
        assert_eq!(w.position(), buf.len(), "{c:?}: encoded_len disagrees with encode");
        let mut r = Reader::new(&buf);
        assert_eq!(&StreamChange::decode(&mut r).expect("decodes"), c);
        r.finish().expect("no trailing bytes");
    }

    fn sample() -> (Stream, Vec<StreamChange<'static>>) {
        let changes = vec![
            StreamChange::Add { id: StreamId::new(1, 0), fields: vec![b"f", b"v"] },
            StreamChange::Add { id: StreamId::new(2, 0), fields: vec![b"a-long-field-name-over-22-bytes", b"v"] },
            StreamChange::Add { id: StreamId::new(3, 5), fields: vec![b"f", b"v", b"g", b"w"] },
            StreamChange::GroupCreate { group: b"g1", last_id: StreamId::MIN, entries_read: Some(0) },
            StreamChange::Deliver(Delivery {
                group: b"g1",
                consumer: Some(b"alice"),
                active: true,
                last_id: Some((StreamId::new(2, 0), Some(2))),
                pending: vec![(StreamId::new(1, 0), 100, 1), (StreamId::new(2, 0), 100, 1)],
                unpend: vec![],
            }),
            StreamChange::Deliver(Delivery {
                group: b"g1",
                consumer: Some(b"bob"),
                active: true,
                last_id: None,
                pending: vec![(StreamId::new(2, 0), 150, 2)],
                unpend: vec![],
            }),
            StreamChange::Del(vec![StreamId::new(2, 0), StreamId::new(9, 9)]),
            StreamChange::Ack { group: b"g1", ids: vec![StreamId::new(1, 0)] },
            StreamChange::SetId { last_id: StreamId::new(10, 0), entries_added: Some(7), max_deleted: Some(StreamId::new(2, 0)) },
            StreamChange::ConsumerCreate { group: b"g1", consumer: b"carol" },
            StreamChange::Trim { count: 1 },
        ];
        let mut s = Stream::default();
        for (i, c) in changes.iter().enumerate() {
            s.apply(c, 1000 + i as u64);
        }
        (s, changes)
    }

    #[test]
    fn changes_round_trip_through_their_payloads() {
        let (_, changes) = sample();
        changes.iter().for_each(roundtrip);
        roundtrip(&StreamChange::GroupDestroy { group: b"g" });
        roundtrip(&StreamChange::Unref(vec![StreamId::new(1, 2)]));
        roundtrip(&StreamChange::IdmpAdd { id: StreamId::new(5, 1), fields: vec![b"f", b"v"], pid: b"p", iid: &[0, 255] });
        roundtrip(&StreamChange::IdmpConfig { duration_s: 86_400, maxsize: 1 });
        roundtrip(&StreamChange::IdmpDuplicate);
        roundtrip(&StreamChange::Retention(Retention { ms: 60_000, bytes: 1 << 30 }));
        roundtrip(&StreamChange::ConsumerDel { group: b"g", consumer: b"c" });
        roundtrip(&StreamChange::SetId { last_id: StreamId::MAX, entries_added: None, max_deleted: None });
    }

    #[test]
    fn applying_changes_keeps_group_state_consistent() {
        let (s, _) = sample();
        assert_eq!(s.len(), 1);
        assert_eq!(s.first_id(), StreamId::new(3, 5));
        assert_eq!((s.last_id, s.entries_added, s.max_deleted), (StreamId::new(10, 0), 7, StreamId::new(2, 0)));
        let g = &s.groups[&b"g1"[..]];
        // 1-0 was acked, 2-0 moved to bob and then left the stream but stays pending (as in Redis).
        assert_eq!(g.pel.keys().copied().collect::<Vec<_>>(), vec![StreamId::new(2, 0)]);
        assert_eq!(g.pel[&StreamId::new(2, 0)].consumer, SmallBytes::new(b"bob"));
        assert!(g.consumers[&b"alice"[..]].pending.is_empty());
        assert_eq!(g.consumers[&b"bob"[..]].pending.len(), 1);
        assert_eq!(g.consumers[&b"carol"[..]].active_ms, None);
    }

    #[test]
    fn a_stream_round_trips_whole_with_its_heap_count() {
        let (s, _) = sample();
        let mut buf = vec![0u8; s.encoded_len()];
        let mut w = Writer::new(&mut buf);
        s.encode(&mut w);
        assert_eq!(w.position(), buf.len());
        let back = Stream::decode(&mut Reader::new(&buf)).expect("decodes");
        assert_eq!(back.entries, s.entries);
        assert_eq!(back.groups, s.groups);
        assert_eq!((back.last_id, back.max_deleted, back.entries_added), (s.last_id, s.max_deleted, s.entries_added));
        assert_eq!(back.heap_bytes(), s.heap_bytes());
    }

    #[test]
    fn heap_count_returns_to_zero_when_everything_goes() {
        let (mut s, _) = sample();
        s.apply(&StreamChange::ConsumerDel { group: b"g1", consumer: b"bob" }, 0);
        s.apply(&StreamChange::GroupDestroy { group: b"g1" }, 0);
        s.apply(&StreamChange::Trim { count: 10 }, 0);
        assert_eq!(s.heap_bytes(), 0);
    }

    #[test]
    fn positions_follow_redis_estimates() {
        let mut s = Stream::default();
        for ms in 1..=5 {
            s.apply(&StreamChange::Add { id: StreamId::new(ms, 0), fields: vec![b"f", b"v"] }, 0);
        }
        assert_eq!(s.estimate_position(StreamId::new(5, 0)), Some(5));
        assert_eq!(s.estimate_position(StreamId::new(1, 0)), Some(1));
        assert_eq!(s.estimate_position(StreamId::new(0, 1)), Some(0));
        assert_eq!(s.estimate_position(StreamId::new(3, 0)), None);
        assert_eq!(s.estimate_position(StreamId::new(6, 0)), None);
        s.apply(&StreamChange::Del(vec![StreamId::new(3, 0)]), 0);
        assert!(s.has_tombstones(StreamId::new(2, 0), StreamId::MAX));
        assert!(!s.has_tombstones(StreamId::new(4, 0), StreamId::MAX));
    }
}

#[cfg(test)]
mod retention_tests {
    use super::*;
    use crate::keyspace::Value;

    fn add(s: &mut Stream, ms: u64, value: &'static [u8]) {
        s.apply(&StreamChange::Add { id: StreamId::new(ms, 0), fields: vec![b"f", value] }, ms);
    }

    #[test]
    fn retention_trims_the_oldest_by_age_then_by_bytes() {
        let mut s = Stream::default();
        for ms in 1..=10 {
            add(&mut s, ms * 1000, b"0123456789");
        }
        // Each entry: 16 + 1 + 10 bytes.
        assert_eq!(s.data_bytes(), 270);
        assert_eq!(s.retention_trim(20_000, 27), 0, "no limits, nothing goes");
        s.apply(&StreamChange::Retention(Retention { ms: 5000, bytes: 0 }), 0);
        // At 12 s, entries of 6 s and before are more than 5 s old.
        assert_eq!(s.retention_trim(12_000, 27), 6);
        s.apply(&StreamChange::Retention(Retention { ms: 0, bytes: 100 }), 0);
        // 270 + 27 must fit 100: drop 8 (297 - 216 = 81).
        assert_eq!(s.retention_trim(12_000, 27), 8);
        s.apply(&StreamChange::Retention(Retention { ms: 1, bytes: 1 }), 0);
        assert_eq!(s.retention_trim(99_000, 27), 10, "never the entry being added");
        s.apply(&StreamChange::Trim { count: 8 }, 0);
        assert_eq!(s.data_bytes(), 54);
        s.apply(&StreamChange::Del(vec![StreamId::new(9000, 0)]), 0);
        assert_eq!(s.data_bytes(), 27);
    }

    #[test]
    fn a_stream_with_retention_round_trips_as_a_value() {
        let mut s = Stream::default();
        add(&mut s, 1000, b"v");
        s.apply(&StreamChange::Retention(Retention { ms: 7, bytes: 9 }), 0);
        s.apply(&StreamChange::IdmpConfig { duration_s: 5, maxsize: 6 }, 0);
        let v = Value::Stream(Box::new(s));
        let mut buf = vec![0u8; v.encoded_len()];
        let mut w = Writer::new(&mut buf);
        v.encode(&mut w);
        assert_eq!(w.position(), buf.len());
        let Ok(Value::Stream(back)) = Value::decode(&mut Reader::new(&buf)) else { panic!("decodes as a stream") };
        assert_eq!((back.retention, back.data_bytes(), back.len()), (Retention { ms: 7, bytes: 9 }, 18, 1));
        assert_eq!(back.idmp.as_ref().map(|m| (m.duration_s, m.maxsize)), Some((5, 6)));
    }
}
