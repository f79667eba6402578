//! Idempotent production for streams (Redis 8.6's IDMP): per producer, the
//! idempotent IDs (iids) of its recent XADDs and the entry each one added,
//! so that a producer retrying an XADD whose reply it lost gets the first
//! entry's ID back instead of adding a duplicate.
//!
//! An iid is remembered for `duration_s` seconds after its XADD, and a
//! producer keeps at most `maxsize` of them (the oldest go first). Both are
//! per stream (XCFGSET); changing either forgets every iid, as in Redis.
//! Times are the record times of the XADDs, so live apply and replay keep
//! the same iids. `iids_added` and `iids_duplicates` are lifetime counters.
//!
//! This module holds data only; the stream owns one ([`super::stream::Stream`]).

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::stream::StreamId;
use crate::codec::{DecodeError, Reader, Writer};

/// Seconds an iid is remembered when XCFGSET never set it.
pub const DEFAULT_DURATION_S: u32 = 100;
/// Iids kept per producer when XCFGSET never set it.
pub const DEFAULT_MAXSIZE: u32 = 100;
/// XCFGSET's ranges.
pub const DURATION_RANGE: std::ops::RangeInclusive<u32> = 1..=86_400;
/// XCFGSET's ranges.
pub const MAXSIZE_RANGE: std::ops::RangeInclusive<u32> = 1..=10_000;

/// Heap bytes charged per remembered iid beyond its bytes (map and queue slots).
const IID_COST: usize = 64;

/// One remembered iid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    /// The entry its XADD added.
    id: StreamId,
    /// The record time of that XADD.
    at: u64,
    /// Its place in the producer's `order`.
    seq: u64,
}

/// One producer's recent iids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Producer {
    iids: HashMap<Box<[u8]>, Slot>,
    /// Iids oldest first, by `seq`; a slot whose `seq` no longer matches
    /// `iids` is stale (the iid was recorded again) and is skipped.
    order: VecDeque<(Box<[u8]>, u64)>,
    next_seq: u64,
}

/// A stream's IDMP state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idmp {
    /// Seconds an iid is remembered.
    pub duration_s: u32,
    /// Iids kept per producer.
    pub maxsize: u32,
    /// Iids ever added (not duplicates).
    pub iids_added: u64,
    /// XADDs answered with an earlier entry's ID.
    pub iids_duplicates: u64,
    producers: BTreeMap<Box<[u8]>, Producer>,
    heap: usize,
}

impl Default for Idmp {
    fn default() -> Idmp {
        Idmp {
            duration_s: DEFAULT_DURATION_S,
            maxsize: DEFAULT_MAXSIZE,
            iids_added: 0,
            iids_duplicates: 0,
            producers: BTreeMap::new(),
            heap: 0,
        }
    }
}

impl Idmp {
    fn live(&self, at: u64, now: u64) -> bool {
        at.saturating_add(u64::from(self.duration_s) * 1000) > now
    }

    /// The entry that `pid`'s `iid` added, if it is still remembered at `now`.
    pub fn lookup(&self, pid: &[u8], iid: &[u8], now: u64) -> Option<StreamId> {
        let slot = self.producers.get(pid)?.iids.get(iid)?;
        self.live(slot.at, now).then_some(slot.id)
    }

    /// Remembers that `pid`'s `iid` added entry `id` at `now`, forgetting the
    /// producer's expired iids and its oldest beyond `maxsize`.
    pub fn record(&mut self, pid: &[u8], iid: &[u8], id: StreamId, now: u64) {
        let (duration_ms, maxsize) = (u64::from(self.duration_s) * 1000, self.maxsize as usize);
        if !self.producers.contains_key(pid) {
            self.heap += IID_COST + pid.len();
        }
        let p = self.producers.entry(pid.into()).or_default();
        let mut freed = 0;
        while let Some((old, seq)) = p.order.front() {
            match p.iids.get(old) {
                Some(s) if s.seq == *seq => {
                    let expired = s.at.saturating_add(duration_ms) <= now;
                    if !expired && p.iids.len() < maxsize {
                        break;
                    }
                    p.iids.remove(old);
                    freed += IID_COST + old.len();
                }
                _ => {}
            }
            p.order.pop_front();
        }
        let seq = p.next_seq;
        p.next_seq += 1;
        if p.iids.insert(iid.into(), Slot { id, at: now, seq }).is_none() {
            self.heap += IID_COST + iid.len();
        }
        p.order.push_back((iid.into(), seq));
        self.heap -= freed;
        self.iids_added += 1;
        self.sweep_after(pid, now);
    }

    /// Forgets the producer after `pid` (in name order, wrapping) when all its
    /// iids expired by `now`: one per XADD, so idle producers do not pile up.
    fn sweep_after(&mut self, pid: &[u8], now: u64) {
        use std::ops::Bound::{Excluded, Unbounded};
        let next = self.producers.range::<[u8], _>((Excluded(pid), Unbounded)).next().or_else(|| self.producers.iter().next());
        let Some((name, p)) = next else { return };
        if &name[..] == pid || p.iids.values().any(|s| self.live(s.at, now)) {
            return;
        }
        let name = name.clone();
        if let Some(p) = self.producers.remove(&name) {
            self.heap -= IID_COST + name.len() + p.iids.keys().map(|k| IID_COST + k.len()).sum::<usize>();
        }
    }

    /// Sets the limits; a change of either forgets every iid (XCFGSET). The counters stay.
    pub fn configure(&mut self, duration_s: u32, maxsize: u32) {
        if (duration_s, maxsize) != (self.duration_s, self.maxsize) {
            self.producers.clear();
            self.heap = 0;
        }
        self.duration_s = duration_s;
        self.maxsize = maxsize;
    }

    /// Producers with an iid still remembered at `now`.
    pub fn pids_tracked(&self, now: u64) -> usize {
        self.producers.values().filter(|p| p.iids.values().any(|s| self.live(s.at, now))).count()
    }

    /// Iids still remembered at `now`, over every producer.
    pub fn iids_tracked(&self, now: u64) -> usize {
        self.producers.values().map(|p| p.iids.values().filter(|s| self.live(s.at, now)).count()).sum()
    }

    /// Heap bytes owned.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Idmp>() + self.heap
    }

    /// Bytes [`Idmp::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let iids = |p: &Producer| p.iids.keys().map(|iid| 4 + iid.len() + 16 + 8).sum::<usize>();
        4 + 4 + 8 + 8 + 4 + self.producers.iter().map(|(pid, p)| 4 + pid.len() + 4 + iids(p)).sum::<usize>()
    }

    /// Writes the state (inside a checkpointed stream): each producer's iids, oldest first.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.u32(self.duration_s);
        w.u32(self.maxsize);
        w.u64(self.iids_added);
        w.u64(self.iids_duplicates);
        w.u32(self.producers.len() as u32);
        for (pid, p) in &self.producers {
            w.bytes(pid);
            w.u32(p.iids.len() as u32);
            for (iid, seq) in &p.order {
                if let Some(s) = p.iids.get(iid).filter(|s| s.seq == *seq) {
                    w.bytes(iid);
                    s.id.encode(w);
                    w.u64(s.at);
                }
            }
        }
    }

    /// Reads a state written by [`Idmp::encode`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Idmp, DecodeError> {
        let mut s = Idmp { duration_s: r.u32()?, maxsize: r.u32()?, iids_added: r.u64()?, iids_duplicates: r.u64()?, ..Idmp::default() };
        if !DURATION_RANGE.contains(&s.duration_s) || !MAXSIZE_RANGE.contains(&s.maxsize) {
            return Err(DecodeError::Invalid("stream IDMP limits out of range"));
        }
        for _ in 0..r.u32()? {
            let pid: Box<[u8]> = r.bytes()?.into();
            let mut p = Producer::default();
            s.heap += IID_COST + pid.len();
            for _ in 0..r.u32()? {
                let iid: Box<[u8]> = r.bytes()?.into();
                let (id, at) = (StreamId::decode(r)?, r.u64()?);
                s.heap += IID_COST + iid.len();
                let seq = p.next_seq;
                p.next_seq += 1;
                p.order.push_back((iid.clone(), seq));
                if p.iids.insert(iid, Slot { id, at, seq }).is_some() {
                    return Err(DecodeError::Invalid("stream IDMP producer lists an iid twice"));
                }
            }
            s.producers.insert(pid, p);
        }
        Ok(s)
    }
}

/// The iid IDMPAUTO derives from an entry's content: independent of the
/// order of the field/value pairs (an XOR of one xxh3-128 per pair), as Redis does.
pub fn auto_iid(fields: &[&[u8]]) -> [u8; 16] {
    let mut acc = 0u128;
    let mut buf = Vec::new();
    for pair in fields.chunks(2) {
        buf.clear();
        for part in pair {
            buf.extend_from_slice(&(part.len() as u64).to_le_bytes());
            buf.extend_from_slice(part);
        }
        acc ^= xxhash_rust::xxh3::xxh3_128(&buf);
    }
    acc.to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> StreamId {
        StreamId::new(n, 0)
    }

    #[test]
    fn iids_expire_by_duration_and_the_oldest_go_beyond_maxsize() {
        let mut m = Idmp::default();
        m.configure(2, 3);
        for (i, iid) in [b"a", b"b", b"c"].iter().enumerate() {
            m.record(b"p", *iid, id(i as u64), 1000);
        }
        assert_eq!(m.lookup(b"p", b"a", 1000), Some(id(0)));
        assert_eq!(m.lookup(b"q", b"a", 1000), None, "producers are separate");
        m.record(b"p", b"d", id(3), 1500);
        assert_eq!(m.lookup(b"p", b"a", 1500), None, "the oldest went at maxsize");
        assert_eq!((m.iids_tracked(1500), m.pids_tracked(1500), m.iids_added), (3, 1, 4));
        assert_eq!(m.lookup(b"p", b"b", 2999), Some(id(1)));
        assert_eq!(m.lookup(b"p", b"b", 3000), None, "two seconds after its XADD");
        assert_eq!(m.iids_tracked(3000), 1);
        // An expired iid may come back; its stale queue slot is skipped.
        m.record(b"p", b"b", id(9), 3000);
        assert_eq!(m.lookup(b"p", b"b", 3000), Some(id(9)));
        m.configure(2, 3);
        assert_eq!(m.lookup(b"p", b"b", 3000), Some(id(9)), "the same limits forget nothing");
        m.configure(5, 3);
        assert_eq!((m.lookup(b"p", b"b", 3000), m.iids_added), (None, 5), "new limits forget the iids, not the counters");
        // Idle producers are forgotten once their iids expire.
        m.record(b"idle", b"x", id(10), 3000);
        m.record(b"p", b"z", id(11), 9000);
        assert_eq!(m.pids_tracked(9000), 1);
        assert_eq!(m.producers.len(), 1, "the sweep dropped the idle producer");
    }

    #[test]
    fn the_state_round_trips() {
        let mut m = Idmp::default();
        m.record(b"p1", b"x", id(1), 10);
        m.record(b"p2", &[0, 1, 255], id(2), 20);
        m.record(b"p1", b"y", id(3), 30);
        m.iids_duplicates = 7;
        let mut buf = vec![0u8; m.encoded_len()];
        let mut w = Writer::new(&mut buf);
        m.encode(&mut w);
        assert_eq!(w.position(), buf.len());
        let back = Idmp::decode(&mut Reader::new(&buf)).expect("decodes");
        let mut again = vec![0u8; back.encoded_len()];
        back.encode(&mut Writer::new(&mut again));
        assert_eq!(again, buf);
        assert_eq!((back.heap_bytes(), back.lookup(b"p2", &[0, 1, 255], 20)), (m.heap_bytes(), Some(id(2))));
    }

    #[test]
    fn auto_iids_ignore_pair_order_but_not_pairing() {
        let a = auto_iid(&[b"f1", b"a", b"f2", b"b"]);
        assert_eq!(a, auto_iid(&[b"f2", b"b", b"f1", b"a"]));
        assert_ne!(a, auto_iid(&[b"f1", b"b", b"f2", b"a"]));
        assert_ne!(auto_iid(&[b"ab", b"c"]), auto_iid(&[b"a", b"bc"]));
    }
}
