//! Time series: the view behind the TS.* commands.
//!
//! A [`Series`] is a key's value: its [`Config`] (retention, duplicate
//! policy, chunk size, labels), its compaction [`Rule`]s, and its samples in
//! chunks. New samples append to one open chunk ([`codec::OpenChunk`],
//! Gorilla bits); when it holds [`OPEN_SAMPLES`] samples or `chunk_size`
//! bytes it is sealed: re-encoded with the smallest codec and merged into
//! the last sealed chunk while that stays within `chunk_size` bytes and
//! [`SEALED_SAMPLES`] samples. A sample at or before the last one rewrites
//! the chunk that holds its time. Retention drops whole chunks that ended
//! before `last - retention`; reads hide the older samples of the chunk
//! that straddles the cut.
//!
//! Every change is decided by the command before it is logged
//! ([`crate::keyspace::Change`]'s `Ts*` variants carry final values), so
//! applying it is the same live and on replay.
//!
//! - [`bits`]: bit-level writer and reader.
//! - [`codec`]: chunk codecs (Gorilla for the open chunk; constant, scaled
//!   decimal and XOR for sealed chunks, the smallest chosen per chunk).
//! - [`agg`]: aggregations over buckets (TS.RANGE AGGREGATION, rules).
//! - [`index`]: the label index of a database.

pub mod agg;
pub mod bits;
pub mod codec;
pub mod index;

use crate::bytes::SmallBytes;
use crate::codec::{DecodeError, Reader, Writer};
use codec::{OpenChunk, Sample};

/// Samples an open chunk takes before it is sealed.
pub const OPEN_SAMPLES: usize = 128;
/// Samples a sealed chunk holds at most.
pub const SEALED_SAMPLES: usize = 16384;
/// Set in the sample count of an open chunk written in the sealed form
/// (smaller on disk; older files hold the Gorilla bytes).
const OPEN_AS_SEALED: u32 = 1 << 31;
/// RedisTimeSeries's default CHUNK_SIZE in bytes.
pub const DEFAULT_CHUNK_SIZE: u32 = 4096;

/// What a sample at a time that already has one does (DUPLICATE_POLICY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicate {
    /// Refuse it.
    Block,
    /// Keep the old value.
    First,
    /// Keep the new value.
    Last,
    /// Keep the smaller.
    Min,
    /// Keep the larger.
    Max,
    /// Keep the sum.
    Sum,
}

impl Duplicate {
    const ALL: [Duplicate; 6] = [Duplicate::Block, Duplicate::First, Duplicate::Last, Duplicate::Min, Duplicate::Max, Duplicate::Sum];

    /// The policy's name, as TS.INFO answers it.
    pub fn name(self) -> &'static str {
        match self {
            Duplicate::Block => "block",
            Duplicate::First => "first",
            Duplicate::Last => "last",
            Duplicate::Min => "min",
            Duplicate::Max => "max",
            Duplicate::Sum => "sum",
        }
    }

    /// The policy a name names (case-insensitive).
    pub fn parse(name: &[u8]) -> Option<Duplicate> {
        Duplicate::ALL.into_iter().find(|d| d.name().as_bytes().eq_ignore_ascii_case(name))
    }

    fn tag(self) -> u8 {
        self as u8
    }

    fn from_tag(t: u8) -> Option<Duplicate> {
        Duplicate::ALL.get(t as usize).copied()
    }

    /// The value kept when `new` arrives at a time that holds `old`; None: refused (BLOCK).
    pub fn resolve(self, old: f64, new: f64) -> Option<f64> {
        match self {
            Duplicate::Block => None,
            Duplicate::First => Some(old),
            Duplicate::Last => Some(new),
            Duplicate::Min => Some(if new < old { new } else { old }),
            Duplicate::Max => Some(if new > old { new } else { old }),
            Duplicate::Sum => Some(old + new),
        }
    }
}

/// A series' labels in one allocation: each name and value as a LEB128
/// length then its bytes, in the order given (any bytes; names unique).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(Box<[u8]>);

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn take_field(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (mut n, mut shift, mut i) = (0usize, 0, 0);
    loop {
        let byte = *b.get(i)?;
        n |= ((byte & 0x7f) as usize) << shift;
        i += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 56 {
            return None;
        }
    }
    let end = i.checked_add(n)?;
    Some((b.get(i..end)?, &b[end..]))
}

impl Labels {
    /// Labels from name/value pairs.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Labels {
        let mut out = Vec::new();
        for (n, v) in pairs {
            put_len(&mut out, n.len());
            out.extend_from_slice(n);
            put_len(&mut out, v.len());
            out.extend_from_slice(v);
        }
        Labels(out.into_boxed_slice())
    }

    /// The (name, value) pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let mut rest = &self.0[..];
        std::iter::from_fn(move || {
            let (n, r) = take_field(rest)?;
            let (v, r) = take_field(r)?;
            rest = r;
            Some((n, v))
        })
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of label `name`.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.0.len()
    }
}

/// A series' settings (TS.CREATE / TS.ALTER options).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Samples older than the newest minus this are dropped (0: kept forever).
    pub retention_ms: u64,
    /// Most bytes of a sealed chunk.
    pub chunk_size: u32,
    /// DUPLICATE_POLICY; None: not set (the server's default applies).
    pub duplicate: Option<Duplicate>,
    /// IGNORE maxTimeDiff: a sample this close in time to the last one ...
    pub ignore_ms: u64,
    /// ... and this close in value is dropped (with DUPLICATE_POLICY LAST).
    pub ignore_value: f64,
    /// ENCODING UNCOMPRESSED was asked for (recorded; chunks are compressed either way, losslessly).
    pub uncompressed: bool,
    /// Labels, in the order given.
    pub labels: Labels,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            retention_ms: 0,
            chunk_size: DEFAULT_CHUNK_SIZE,
            duplicate: None,
            ignore_ms: 0,
            ignore_value: 0.0,
            uncompressed: false,
            labels: Labels::default(),
        }
    }
}

impl Config {
    /// Payload bytes of [`Config::encode`].
    pub fn encoded_len(&self) -> usize {
        8 + 4 + 1 + 8 + 8 + 1 + 4 + self.labels.iter().map(|(n, v)| 8 + n.len() + v.len()).sum::<usize>()
    }

    /// Writes the settings.
    pub fn encode(&self, w: &mut Writer<'_>) {
        w.u64(self.retention_ms);
        w.u32(self.chunk_size);
        w.u8(self.duplicate.map_or(0xff, Duplicate::tag));
        w.u64(self.ignore_ms);
        w.u64(self.ignore_value.to_bits());
        w.u8(self.uncompressed as u8);
        w.u32(self.labels.len() as u32);
        for (n, v) in self.labels.iter() {
            w.bytes(n);
            w.bytes(v);
        }
    }

    /// Reads settings written by [`Config::encode`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Config, DecodeError> {
        let retention_ms = r.u64()?;
        let chunk_size = r.u32()?;
        let duplicate = match r.u8()? {
            0xff => None,
            t => Some(Duplicate::from_tag(t).ok_or(DecodeError::Invalid("unknown duplicate policy"))?),
        };
        let ignore_ms = r.u64()?;
        let ignore_value = f64::from_bits(r.u64()?);
        let uncompressed = r.u8()? != 0;
        let n = r.u32()? as usize;
        let mut pairs = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            pairs.push((r.bytes()?, r.bytes()?));
        }
        let labels = Labels::new(pairs);
        Ok(Config { retention_ms, chunk_size, duplicate, ignore_ms, ignore_value, uncompressed, labels })
    }

    /// The value of a label.
    pub fn label(&self, name: &[u8]) -> Option<&[u8]> {
        self.labels.get(name)
    }
}

/// A compaction rule: this series' samples, aggregated per bucket, go to `dest`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Destination key (same database, same shard).
    pub dest: SmallBytes,
    /// Aggregation.
    pub agg: agg::Agg,
    /// Bucket duration.
    pub bucket_ms: u64,
    /// Buckets start at multiples of `bucket_ms` after this.
    pub align_ms: i64,
}

impl Rule {
    /// Start of the bucket that holds `ts`.
    pub fn bucket_of(&self, ts: i64) -> i64 {
        agg::bucket_start(ts, self.bucket_ms, self.align_ms)
    }
}

/// A sealed chunk: compressed samples and their time span.
#[derive(Debug, Clone, PartialEq)]
struct Sealed {
    first: i64,
    last: i64,
    count: u32,
    data: Box<[u8]>,
}

impl Sealed {
    fn new(samples: &[Sample]) -> Sealed {
        Sealed { first: samples[0].0, last: samples[samples.len() - 1].0, count: samples.len() as u32, data: codec::encode(samples).into() }
    }

    fn samples(&self) -> Vec<Sample> {
        let mut out = Vec::with_capacity(self.count as usize);
        // Sealed chunks were encoded by this process or checked when read back.
        if let Err(e) = codec::decode(&self.data, &mut out) {
            debug_assert!(false, "sealed chunk does not decode: {e}");
        }
        out
    }
}

/// A series' compaction links.
#[derive(Debug, Clone, Default, PartialEq)]
struct Links {
    /// Compaction rules with this series as their source.
    rules: Vec<Rule>,
    /// The series whose rule writes into this one.
    source: Option<SmallBytes>,
}

/// A time series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Settings.
    pub config: Config,
    /// Its compaction rules and source, boxed: most series have neither.
    links: Option<Box<Links>>,
    sealed: Vec<Sealed>,
    /// The open chunk; it also knows the newest sample when it is empty.
    open: OpenChunk,
}

impl Series {
    /// An empty series with these settings.
    pub fn new(config: Config) -> Series {
        Series { config, ..Series::default() }
    }

    /// Compaction rules with this series as their source.
    pub fn rules(&self) -> &[Rule] {
        self.links.as_ref().map_or(&[], |l| &l.rules)
    }

    /// The series whose rule writes into this one.
    pub fn source(&self) -> Option<&[u8]> {
        self.links.as_ref()?.source.as_deref()
    }

    /// Adds a rule, replacing any to the same destination.
    pub fn add_rule(&mut self, rule: Rule) {
        let links = self.links.get_or_insert_with(Box::default);
        links.rules.retain(|r| r.dest != rule.dest);
        links.rules.push(rule);
    }

    /// Removes the rule to `dest`, if any.
    pub fn remove_rule(&mut self, dest: &[u8]) {
        if let Some(l) = &mut self.links {
            l.rules.retain(|r| &r.dest[..] != dest);
        }
        self.tidy_links();
    }

    /// Sets (or clears) the series whose rule writes into this one.
    pub fn set_source(&mut self, source: Option<&[u8]>) {
        match source {
            Some(s) => self.links.get_or_insert_with(Box::default).source = Some(SmallBytes::new(s)),
            None => {
                if let Some(l) = &mut self.links {
                    l.source = None;
                }
                self.tidy_links();
            }
        }
    }

    fn tidy_links(&mut self) {
        if self.links.as_ref().is_some_and(|l| l.rules.is_empty() && l.source.is_none()) {
            self.links = None;
        }
    }

    /// The newest sample.
    pub fn last(&self) -> Option<Sample> {
        (!self.is_empty()).then(|| self.open.last_sample())
    }

    /// The oldest sample a read shows.
    pub fn first(&self) -> Option<Sample> {
        let cut = self.cutoff();
        self.range(cut, i64::MAX).into_iter().next()
    }

    /// Samples stored (a chunk straddling the retention cut counts whole).
    pub fn len(&self) -> usize {
        self.sealed.iter().map(|c| c.count as usize).sum::<usize>() + self.open.len()
    }

    /// Whether it holds no samples.
    pub fn is_empty(&self) -> bool {
        self.sealed.is_empty() && self.open.is_empty()
    }

    /// Chunks (sealed and open).
    pub fn chunk_count(&self) -> usize {
        self.sealed.len() + 1
    }

    /// (first ts, last ts, samples, data bytes, codec) of each chunk, the open one last, for TS.INFO DEBUG.
    pub fn chunks(&self) -> Vec<(i64, i64, usize, usize, &'static str)> {
        let mut v: Vec<_> = self
            .sealed
            .iter()
            .map(|c| (c.first, c.last, c.count as usize, c.data.len(), codec::tag_name(codec::header(&c.data).map_or(0xff, |h| h.0))))
            .collect();
        let (f, l) = self.open.span();
        v.push((f, l, self.open.len(), self.open.data_bytes(), "gorilla-open"));
        v
    }

    /// Heap bytes: chunks, labels, rules.
    pub fn heap_bytes(&self) -> usize {
        let sealed = self.sealed.capacity() * std::mem::size_of::<Sealed>() + self.sealed.iter().map(|c| c.data.len()).sum::<usize>();
        let labels = self.config.labels.heap_bytes();
        let links = self.links.as_ref().map_or(0, |l| {
            std::mem::size_of::<Links>()
                + l.rules.capacity() * std::mem::size_of::<Rule>()
                + l.rules.iter().map(|r| r.dest.heap_bytes()).sum::<usize>()
                + l.source.as_ref().map_or(0, |s| s.heap_bytes())
        });
        std::mem::size_of::<Series>() + sealed + self.open.heap_bytes() + labels + links
    }

    /// Samples older than this are hidden and dropped (retention).
    pub fn cutoff(&self) -> i64 {
        match (self.last(), self.config.retention_ms) {
            (Some((t, _)), r) if r > 0 => t.saturating_sub(r.min(i64::MAX as u64) as i64),
            _ => i64::MIN,
        }
    }

    /// The value at exactly `ts`.
    pub fn get(&self, ts: i64) -> Option<f64> {
        self.range(ts, ts).first().map(|s| s.1)
    }

    /// Samples with `from <= ts <= to`, oldest first, retention applied.
    pub fn range(&self, from: i64, to: i64) -> Vec<Sample> {
        let from = from.max(self.cutoff());
        let mut out = Vec::new();
        if from > to {
            return out;
        }
        for c in self.sealed.iter().filter(|c| c.last >= from && c.first <= to) {
            out.extend(c.samples().into_iter().filter(|s| s.0 >= from && s.0 <= to));
        }
        let (f, l) = self.open.span();
        if !self.open.is_empty() && l >= from && f <= to {
            let mut s = Vec::with_capacity(self.open.len());
            if let Err(e) = self.open.decode_into(&mut s) {
                debug_assert!(false, "open chunk does not decode: {e}");
            }
            out.extend(s.into_iter().filter(|s| s.0 >= from && s.0 <= to));
        }
        out
    }

    /// Writes samples at their times, replacing any value already there
    /// (the command resolved duplicates), then applies retention.
    pub fn upsert(&mut self, samples: &[Sample]) {
        for &(ts, v) in samples {
            match self.last() {
                Some((l, _)) if ts <= l => self.rewrite(ts, ts, Some((ts, v))),
                _ => {
                    self.open.push(ts, v);
                    if self.open.len() >= OPEN_SAMPLES || self.open.data_bytes() >= self.config.chunk_size as usize {
                        self.seal();
                    }
                }
            }
        }
        self.trim();
    }

    /// Removes samples with `from <= ts <= to`; returns how many (visible ones).
    pub fn delete_range(&mut self, from: i64, to: i64) -> usize {
        let n = self.range(from, to).len();
        if n > 0 {
            self.rewrite(from, to, None);
        }
        n
    }

    /// Replaces the samples in `from..=to` with `put` (if any), in whichever chunks hold them.
    fn rewrite(&mut self, from: i64, to: i64, put: Option<Sample>) {
        let n = self.sealed.len();
        let open_first = (!self.open.is_empty()).then(|| self.open.span().0);
        // The chunk that takes `put`: the last one starting at or before it, else the first (n: the open one).
        let home = put.map(|(t, _)| match open_first {
            Some(f) if f <= t => n,
            _ if n == 0 => n,
            _ => self.sealed.iter().rposition(|c| c.first <= t).unwrap_or(0),
        });
        let outside = |x: &Sample| x.0 < from || x.0 > to;
        let insert = |s: &mut Vec<Sample>, p: Sample| {
            let at = s.partition_point(|x| x.0 < p.0);
            s.insert(at, p);
        };
        let mut kept = Vec::with_capacity(n);
        for (i, c) in std::mem::take(&mut self.sealed).into_iter().enumerate() {
            if !(c.last >= from && c.first <= to) && home != Some(i) {
                kept.push(c);
                continue;
            }
            let mut s = c.samples();
            s.retain(outside);
            if let (true, Some(p)) = (home == Some(i), put) {
                insert(&mut s, p);
            }
            if !s.is_empty() {
                kept.push(Sealed::new(&s));
            }
        }
        kept.shrink_to_fit();
        self.sealed = kept;
        if home == Some(n) || open_first.is_some_and(|f| f <= to) {
            let mut s = Vec::with_capacity(self.open.len() + 1);
            if let Err(e) = self.open.decode_into(&mut s) {
                debug_assert!(false, "open chunk does not decode: {e}");
            }
            s.retain(outside);
            if let (true, Some(p)) = (home == Some(n), put) {
                insert(&mut s, p);
            }
            self.open = OpenChunk::from_samples(&s);
        }
        if self.open.is_empty() {
            self.open = OpenChunk::after(self.sealed.last().and_then(|c| c.samples().last().copied()));
        }
    }

    /// Seals the open chunk: merged into the last sealed chunk while that stays small enough.
    fn seal(&mut self) {
        let mut samples = Vec::with_capacity(self.open.len());
        if self.open.decode_into(&mut samples).is_err() || samples.is_empty() {
            return;
        }
        self.open = OpenChunk::after(samples.last().copied());
        let limit = self.config.chunk_size.max(64) as usize;
        if let Some(prev) = self.sealed.last_mut() {
            if prev.count as usize + samples.len() <= SEALED_SAMPLES && prev.data.len() < limit {
                let mut all = prev.samples();
                all.extend_from_slice(&samples);
                let merged = Sealed::new(&all);
                if merged.data.len() <= limit {
                    *prev = merged;
                    return;
                }
            }
        }
        // Series hold few sealed chunks: grow the list one at a time, not by doubling.
        self.sealed.reserve_exact(1);
        self.sealed.push(Sealed::new(&samples));
    }

    /// Drops whole sealed chunks that ended before the retention cut.
    fn trim(&mut self) {
        let cut = self.cutoff();
        let dead = self.sealed.iter().take_while(|c| c.last < cut).count();
        if dead > 0 {
            self.sealed.drain(..dead);
        }
    }

    /// Bytes [`Series::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let b = |s: &[u8]| 4 + s.len();
        self.config.encoded_len()
            + 4
            + self.rules().iter().map(|r| b(&r.dest) + 1 + 8 + 8).sum::<usize>()
            + 1
            + self.source().map_or(0, b)
            + 4
            + self.sealed.iter().map(|c| b(&c.data)).sum::<usize>()
            + 4
            + b(&self.open_record().1)
    }

    /// The open chunk as [`Series::encode`] writes it: its sample count and
    /// Gorilla bytes, or, when smaller, the count with [`OPEN_AS_SEALED`]
    /// set and the samples in the sealed form.
    fn open_record(&self) -> (u32, std::borrow::Cow<'_, [u8]>) {
        let (n, bytes) = self.open.parts();
        let mut samples = Vec::with_capacity(n as usize);
        if n == 0 || self.open.decode_into(&mut samples).is_err() {
            return (n, bytes.into());
        }
        let sealed = codec::encode(&samples);
        if sealed.len() < bytes.len() {
            (n | OPEN_AS_SEALED, sealed.into())
        } else {
            (n, bytes.into())
        }
    }

    /// Writes the whole series (checkpoints): settings, rules, source, chunks.
    pub fn encode(&self, w: &mut Writer<'_>) {
        self.config.encode(w);
        w.u32(self.rules().len() as u32);
        for r in self.rules() {
            w.bytes(&r.dest);
            w.u8(r.agg.tag());
            w.u64(r.bucket_ms);
            w.u64(r.align_ms as u64);
        }
        w.u8(self.source().is_some() as u8);
        if let Some(s) = self.source() {
            w.bytes(s);
        }
        w.u32(self.sealed.len() as u32);
        self.sealed.iter().for_each(|c| w.bytes(&c.data));
        let (n, bytes) = self.open_record();
        w.u32(n);
        w.bytes(&bytes);
    }

    /// Reads a series written by [`Series::encode`], checking that every chunk decodes in order.
    pub fn decode(r: &mut Reader<'_>) -> Result<Series, DecodeError> {
        let config = Config::decode(r)?;
        let n = r.u32()? as usize;
        let mut rules = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let dest = SmallBytes::new(r.bytes()?);
            let agg = agg::Agg::from_tag(r.u8()?).ok_or(DecodeError::Invalid("unknown aggregation"))?;
            let bucket_ms = r.u64()?;
            if bucket_ms == 0 {
                return Err(DecodeError::Invalid("compaction rule with an empty bucket"));
            }
            rules.push(Rule { dest, agg, bucket_ms, align_ms: r.u64()? as i64 });
        }
        let source = if r.u8()? != 0 { Some(SmallBytes::new(r.bytes()?)) } else { None };
        let n = r.u32()? as usize;
        let mut sealed = Vec::with_capacity(n.min(1 << 16));
        let mut prev = None;
        for _ in 0..n {
            let data = r.bytes()?;
            let mut s = Vec::new();
            codec::decode(data, &mut s)?;
            let chunk = Sealed::new_checked(&s, data, prev)?;
            prev = Some(chunk.last);
            sealed.push(chunk);
        }
        let count = r.u32()?;
        let bytes = r.bytes()?;
        let open = if count & OPEN_AS_SEALED != 0 {
            let mut s = Vec::new();
            codec::decode(bytes, &mut s)?;
            let chunk = Sealed::new_checked(&s, bytes, prev)?;
            if chunk.count != count & !OPEN_AS_SEALED {
                return Err(DecodeError::Invalid("open chunk sample count differs from its data"));
            }
            OpenChunk::from_samples(&s)
        } else {
            OpenChunk::from_parts(count, bytes)?
        };
        let open = if open.is_empty() { OpenChunk::after(sealed.last().and_then(|c| c.samples().last().copied())) } else { open };
        let links = (!rules.is_empty() || source.is_some()).then(|| Box::new(Links { rules, source }));
        let series = Series { config, links, sealed, open };
        Ok(series)
    }
}

impl Sealed {
    fn new_checked(s: &[Sample], data: &[u8], prev: Option<i64>) -> Result<Sealed, DecodeError> {
        let ordered = s.windows(2).all(|p| p[0].0 < p[1].0) && prev.is_none_or(|p| s.first().is_some_and(|f| f.0 > p));
        if s.is_empty() || !ordered {
            return Err(DecodeError::Invalid("series chunk samples out of order"));
        }
        Ok(Sealed { first: s[0].0, last: s[s.len() - 1].0, count: s.len() as u32, data: data.into() })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn check(s: &Series, want: &BTreeMap<i64, u64>) {
        let got: Vec<(i64, u64)> = s.range(i64::MIN, i64::MAX).into_iter().map(|(t, v)| (t, v.to_bits())).collect();
        let want: Vec<(i64, u64)> = want.iter().filter(|(t, _)| **t >= s.cutoff()).map(|(t, v)| (*t, *v)).collect();
        assert_eq!(got, want);
        assert_eq!(s.last().map(|l| l.0), want.last().map(|l| l.0));
        let mut buf = vec![0u8; s.encoded_len()];
        s.encode(&mut Writer::new(&mut buf));
        let mut r = Reader::new(&buf);
        let back = Series::decode(&mut r).unwrap();
        r.finish().unwrap();
        assert_eq!(&back, s);
    }

    #[test]
    fn upserts_and_deletes_match_a_map() {
        let mut rng = StdRng::seed_from_u64(11);
        for round in 0..20 {
            let config = Config { chunk_size: [64, 256, 4096][round % 3], ..Config::default() };
            let mut s = Series::new(config);
            let mut want = BTreeMap::new();
            let mut t = 1_000_000i64;
            for step in 0..3000 {
                let ts = if rng.gen_bool(0.1) { rng.gen_range(0..t + 10) } else { t };
                t += rng.gen_range(1..2000);
                let v = if rng.gen_bool(0.5) { (rng.gen_range(0..100) as f64) / 4.0 } else { f64::from_bits(rng.gen()) };
                s.upsert(&[(ts, v)]);
                want.insert(ts, v.to_bits());
                if step % 500 == 499 {
                    let a = rng.gen_range(0..t);
                    let b = a + rng.gen_range(0..200_000);
                    let n = want.range(a..=b).count();
                    assert_eq!(s.delete_range(a, b), n);
                    want.retain(|k, _| *k < a || *k > b);
                    check(&s, &want);
                }
            }
            check(&s, &want);
            assert!(s.chunk_count() > 1);
        }
    }

    /// The open chunk goes to checkpoints in whichever form is smaller, and both forms read back.
    #[test]
    fn open_chunks_are_written_in_the_smaller_form() {
        let encoded = |s: &Series| {
            let mut buf = vec![0u8; s.encoded_len()];
            s.encode(&mut Writer::new(&mut buf));
            let back = Series::decode(&mut Reader::new(&buf)).unwrap();
            assert_eq!(&back, s);
            buf.len()
        };
        let mut one = Series::new(Config::default());
        one.upsert(&[(1_795_903_076_378, 0.5)]);
        assert!(one.open_record().0 & OPEN_AS_SEALED == 0, "one sample stays in the Gorilla form");
        encoded(&one);
        let mut steady = Series::new(Config::default());
        let samples: Vec<Sample> = (0..OPEN_SAMPLES as i64 - 1).map(|i| (1_000 * i, (i / 5) as f64 * 4096.0)).collect();
        steady.upsert(&samples);
        let (n, bytes) = steady.open_record();
        assert_eq!(n, (OPEN_SAMPLES as u32 - 1) | OPEN_AS_SEALED);
        assert!(bytes.len() < steady.open.data_bytes() / 2, "{} sealed bytes, {} Gorilla", bytes.len(), steady.open.data_bytes());
        encoded(&steady);
    }

    #[test]
    fn labels_keep_any_bytes_in_one_allocation() {
        let long = vec![b'x'; 300];
        let pairs: Vec<(&[u8], &[u8])> = vec![(b"a", b"="), (b"\x00\xff", &long), (b"e", b"(1, 2)")];
        let l = Labels::new(pairs.clone());
        assert_eq!(l.iter().collect::<Vec<_>>(), pairs);
        assert_eq!(l.len(), 3);
        assert_eq!(l.get(b"e"), Some(&b"(1, 2)"[..]));
        assert_eq!(l.get(b"z"), None);
        assert_eq!(l.heap_bytes(), 2 + 2 + 3 + 302 + 2 + 7);
    }

    #[test]
    fn retention_hides_and_drops_old_samples() {
        let mut s = Series::new(Config { retention_ms: 10_000, ..Config::default() });
        let samples: Vec<Sample> = (0..5000).map(|i| (i * 1000, i as f64)).collect();
        s.upsert(&samples);
        let r = s.range(i64::MIN, i64::MAX);
        assert_eq!(r.first().unwrap().0, 4_989_000);
        assert_eq!(r.len(), 11);
        assert!(s.len() <= OPEN_SAMPLES + 11 + SEALED_SAMPLES, "old chunks are dropped");
    }
}
