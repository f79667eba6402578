//! Parts of cross-shard transactions in the log, and the rule that decides,
//! after a crash, which of them recovery keeps.
//!
//! A transaction that writes on several shards logs one TX record (sub-tag
//! PART) on each of them: a [`TxTag`] (the transaction's id, its epoch, and
//! the shards that write a part) followed by a GROUP body. The shards' logs are
//! written and synced independently, so a crash can keep some parts and lose
//! others. Recovery therefore replays every shard, gathers what each one
//! holds ([`Recovered`], with the epoch of the checkpoint it started from),
//! and keeps a part only if every shard of its tag holds its own part too
//! ([`incomplete`]); the others are replayed again without the parts that
//! lost a sibling, and a TX record with sub-tag ABORT makes that decision stick.
//!
//! Epochs tell whether a part is inside a shard's checkpoint. A checkpoint
//! begins only while no cross-shard transaction is running anywhere, and
//! bumps the epoch then, so every transaction lies wholly before or wholly
//! after it: a part with an epoch below a shard's checkpoint epoch is in
//! that checkpoint, and one at or above it is in that shard's log, or lost.
//!
//! Byte layout (little-endian) of a TX record's payload:
//!
//! ```text
//! PART:  1 u8 | id u64 | epoch u64 | n u32 | n × shard u32 | GROUP payload (count u32, framed ops)
//! ABORT: 2 u8 | id u64
//! ```
//!
//! This module touches no files.

use std::collections::HashSet;

use crate::codec::{DecodeError, Reader, Writer};

/// Sub-tag of a part of a transaction.
pub const PART: u8 = 1;
/// Sub-tag of an abort of a transaction.
pub const ABORT: u8 = 2;

/// A TX record, decoded.
pub enum TxRecord<'a> {
    /// One shard's part: the tag and the GROUP payload after it.
    Part(TxTag, &'a [u8]),
    /// Recovery dropped this transaction.
    Abort(u64),
}

/// Reads a TX record's payload.
pub fn decode(payload: &[u8]) -> Result<TxRecord<'_>, DecodeError> {
    match payload.first() {
        Some(&PART) => TxTag::decode(payload).map(|(tag, rest)| TxRecord::Part(tag, rest)),
        Some(&ABORT) => {
            let mut r = Reader::new(&payload[1..]);
            let id = r.u64()?;
            r.finish()?;
            Ok(TxRecord::Abort(id))
        }
        _ => Err(DecodeError::Invalid("unknown transaction record sub-tag")),
    }
}

/// The payload of an abort of transaction `id`.
pub fn abort_payload(id: u64) -> [u8; 9] {
    let mut out = [ABORT, 0, 0, 0, 0, 0, 0, 0, 0];
    out[1..].copy_from_slice(&id.to_le_bytes());
    out
}

/// What a PART record says about its transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxTag {
    /// The transaction: unique among every part and abort in the logs (the
    /// server starts counting above the largest id recovery saw).
    pub id: u64,
    /// The epoch it ran in (see the module comment).
    pub epoch: u64,
    /// The shards that log a part of it, this one included.
    pub shards: Vec<u32>,
}

impl TxTag {
    /// Bytes [`TxTag::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + 8 + 8 + 4 + 4 * self.shards.len()
    }

    /// Writes the sub-tag and the tag (the GROUP payload follows it).
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.u8(PART);
        w.u64(self.id);
        w.u64(self.epoch);
        w.u32(self.shards.len() as u32);
        for &s in &self.shards {
            w.u32(s);
        }
    }

    /// Reads a PART's tag; returns it and the GROUP payload after it.
    pub fn decode(payload: &[u8]) -> Result<(TxTag, &[u8]), DecodeError> {
        let mut r = Reader::new(payload);
        if r.u8()? != PART {
            return Err(DecodeError::Invalid("not a transaction part"));
        }
        let id = r.u64()?;
        let epoch = r.u64()?;
        let n = r.u32()? as usize;
        if n > 1 << 16 {
            return Err(DecodeError::Invalid("transaction part names more than 65536 shards"));
        }
        let shards = (0..n).map(|_| r.u32()).collect::<Result<Vec<u32>, _>>()?;
        let tag = TxTag { id, epoch, shards };
        let used = tag.encoded_len();
        Ok((tag, &payload[used..]))
    }
}

/// What one shard's recovery found: the epoch of the checkpoint it began
/// from, the transaction parts it replayed, and the transactions aborted.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// Epoch of the checkpoint recovery started from (0: none).
    pub checkpoint_epoch: u64,
    /// Tags of the parts replayed (skipped ones included), in log order.
    pub parts: Vec<TxTag>,
    /// Transactions an ABORT record in this log dropped.
    pub aborts: Vec<u64>,
}

impl Recovered {
    /// The highest epoch seen (checkpoint or part).
    pub fn max_epoch(&self) -> u64 {
        self.parts.iter().map(|p| p.epoch).max().unwrap_or(0).max(self.checkpoint_epoch)
    }
}

/// Which of `own`'s parts (shard `me`) recovery must drop, given what every
/// shard found (`all[s]` for shard `s`): those whose transaction was aborted
/// anywhere, or that some other shard of the tag neither holds in its
/// checkpoint nor replayed. Shards beyond `all` (the server now runs fewer)
/// are taken as holding their part.
pub fn incomplete(me: usize, all: &[Recovered]) -> HashSet<u64> {
    let aborted: HashSet<u64> = all.iter().flat_map(|r| r.aborts.iter().copied()).collect();
    let replayed: Vec<HashSet<u64>> = all.iter().map(|r| r.parts.iter().map(|p| p.id).collect()).collect();
    let Some(own) = all.get(me) else { return HashSet::new() };
    let mut drop = HashSet::new();
    for part in &own.parts {
        let holds = |s: usize| match all.get(s) {
            None => true,
            Some(r) => part.epoch < r.checkpoint_epoch || replayed[s].contains(&part.id),
        };
        if aborted.contains(&part.id) || !part.shards.iter().all(|&s| s as usize == me || holds(s as usize)) {
            drop.insert(part.id);
        }
    }
    drop
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(id: u64, epoch: u64, shards: &[u32]) -> TxTag {
        TxTag { id, epoch, shards: shards.to_vec() }
    }

    fn rec(checkpoint_epoch: u64, parts: Vec<TxTag>, aborts: Vec<u64>) -> Recovered {
        Recovered { checkpoint_epoch, parts, aborts }
    }

    #[test]
    fn a_tag_round_trips_and_leaves_the_group_payload() {
        let t = tag(0x0001_0000_0000_002a, 7, &[0, 2, 5]);
        let mut buf = vec![0u8; t.encoded_len() + 3];
        let mut w = Writer::new(&mut buf);
        t.encode(&mut w);
        let n = t.encoded_len();
        buf[n..].copy_from_slice(b"abc");
        let (back, rest) = TxTag::decode(&buf).expect("a whole tag decodes");
        assert_eq!(back, t);
        assert_eq!(rest, b"abc");
        for cut in 0..n {
            assert!(TxTag::decode(&buf[..cut]).is_err(), "a tag cut at {cut} bytes decoded");
        }
        assert!(matches!(decode(&abort_payload(42)), Ok(TxRecord::Abort(42))));
        assert!(decode(&abort_payload(42)[..8]).is_err());
        assert!(decode(&[3, 0, 0]).is_err(), "an unknown sub-tag decoded");
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(first) = bytes.first_mut() {
                *first = 1 + (*first % 2);
            }
            if let Ok(TxRecord::Part(tag, rest)) = decode(&bytes) {
                assert_eq!(tag.encoded_len() + rest.len(), bytes.len());
            }
        }
    }

    #[test]
    fn a_part_is_kept_only_when_every_shard_holds_its_own() {
        // Transaction 1 on shards 0 and 1: both logs hold it. Transaction 2:
        // shard 1 lost its part. Transaction 3: shard 1 holds it in its
        // checkpoint (epoch 3 is below its checkpoint epoch 4).
        let all = vec![
            rec(0, vec![tag(1, 5, &[0, 1]), tag(2, 5, &[0, 1]), tag(3, 3, &[0, 1])], vec![]),
            rec(4, vec![tag(1, 5, &[0, 1])], vec![]),
        ];
        assert_eq!(incomplete(0, &all), HashSet::from([2]));
        assert_eq!(incomplete(1, &all), HashSet::new());
    }

    #[test]
    fn an_abort_anywhere_drops_the_part_everywhere() {
        let all = vec![rec(0, vec![tag(9, 1, &[0, 1])], vec![9]), rec(0, vec![tag(9, 1, &[0, 1])], vec![])];
        assert_eq!(incomplete(0, &all), HashSet::from([9]));
        assert_eq!(incomplete(1, &all), HashSet::from([9]));
    }

    #[test]
    fn a_part_at_the_checkpoint_epoch_is_looked_for_in_the_log() {
        let all = vec![rec(0, vec![tag(1, 4, &[0, 1])], vec![]), rec(4, vec![], vec![])];
        assert_eq!(incomplete(0, &all), HashSet::from([1]));
    }

    #[test]
    fn shards_the_server_no_longer_runs_count_as_holding_their_part() {
        let all = vec![rec(0, vec![tag(1, 1, &[0, 7])], vec![])];
        assert!(incomplete(0, &all).is_empty());
    }
}
