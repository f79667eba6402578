//! Time series: the view behind the TS.* commands.
//!
//! A [`Series`] is a key's value: its [`Config`] (retention, duplicate
//! policy, chunk size, labels), its compaction [`Rule`]s, and its samples in
//! chunks. New samples append to one open chunk ([`codec::OpenChunk`],
//! appended bit by bit); when it holds [`OPEN_SAMPLES`] samples or `chunk_size`
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
//! - [`labels`]: labels as ids into a per-thread table of shared strings.

pub mod agg;
pub mod bits;
pub mod codec;
pub mod index;
pub mod labels;

use crate::bytes::SmallBytes;
use crate::codec::{DecodeError, Reader, Writer};
use crate::thin::ThinBytes;
use codec::{OpenChunk, Sample};
pub use labels::Labels;

/// Samples an open chunk takes before it is sealed.
pub const OPEN_SAMPLES: usize = 128;
/// Samples a sealed chunk holds at most.
pub const SEALED_SAMPLES: usize = 16384;
/// Set in the sample count of an open chunk written in the sealed form
/// (always now; older files may hold it in the Gorilla form).
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

/// A series' settings besides its labels (TS.CREATE / TS.ALTER options).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
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
}

impl Settings {
    /// What a series created without options has.
    pub const DEFAULT: Settings =
        Settings { retention_ms: 0, chunk_size: DEFAULT_CHUNK_SIZE, duplicate: None, ignore_ms: 0, ignore_value: 0.0, uncompressed: false };
}

impl Default for Settings {
    fn default() -> Settings {
        Settings::DEFAULT
    }
}

/// Equal when every field is, the IGNORE value bit for bit (-0.0 is not
/// the default 0.0: TS.INFO shows what was set).
impl PartialEq for Settings {
    fn eq(&self, o: &Settings) -> bool {
        (self.retention_ms, self.chunk_size, self.duplicate, self.ignore_ms, self.uncompressed)
            == (o.retention_ms, o.chunk_size, o.duplicate, o.ignore_ms, o.uncompressed)
            && self.ignore_value.to_bits() == o.ignore_value.to_bits()
    }
}

/// A series' settings and labels, as TS.CREATE and TS.ALTER log them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// Retention, chunk size, duplicate policy, IGNORE, encoding.
    pub settings: Settings,
    /// Labels, in the order given.
    pub labels: Labels,
}

/// Payload bytes of [`write_config`].
fn config_len(labels: &Labels) -> usize {
    8 + 4 + 1 + 8 + 8 + 1 + 4 + labels.iter().map(|(n, v)| 8 + n.len() + v.len()).sum::<usize>()
}

/// Writes settings and labels (the payload of TS.CREATE and TS.ALTER records, and the head of a series in checkpoints).
fn write_config(c: &Settings, labels: &Labels, w: &mut Writer<'_>) {
    w.u64(c.retention_ms);
    w.u32(c.chunk_size);
    w.u8(c.duplicate.map_or(0xff, Duplicate::tag));
    w.u64(c.ignore_ms);
    w.u64(c.ignore_value.to_bits());
    w.u8(c.uncompressed as u8);
    w.u32(labels.len() as u32);
    for (n, v) in labels.iter() {
        w.bytes(n);
        w.bytes(v);
    }
}

impl Config {
    /// Payload bytes of [`Config::encode`].
    pub fn encoded_len(&self) -> usize {
        config_len(&self.labels)
    }

    /// Writes the settings and labels.
    pub fn encode(&self, w: &mut Writer<'_>) {
        write_config(&self.settings, &self.labels, w);
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
        Ok(Config { settings: Settings { retention_ms, chunk_size, duplicate, ignore_ms, ignore_value, uncompressed }, labels })
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

/// A sealed chunk: compressed samples and the time of the last (its first
/// time and its count are at the head of the data).
#[derive(Debug, Clone, PartialEq)]
struct Sealed {
    last: i64,
    data: ThinBytes,
}

impl Sealed {
    fn new(samples: &[Sample]) -> Sealed {
        Sealed { last: samples[samples.len() - 1].0, data: codec::encode(samples).into() }
    }

    /// The time of the first sample (read from the data, checked when the chunk was made or read back).
    fn first(&self) -> i64 {
        codec::first_time(&self.data).unwrap_or(self.last)
    }

    /// Samples held (from the codec header, checked when the chunk was made or read back).
    fn count(&self) -> usize {
        codec::header(&self.data).map_or(0, |h| h.1 as usize)
    }

    fn samples(&self) -> Vec<Sample> {
        let mut out = Vec::with_capacity(self.count());
        // Sealed chunks were encoded by this process or checked when read back.
        if let Err(e) = codec::decode(&self.data, &mut out) {
            debug_assert!(false, "sealed chunk does not decode: {e}");
        }
        out
    }
}

/// What most series do without: settings other than the defaults and
/// compaction links. Boxed in [`Series`], absent while plain.
#[derive(Debug, Clone, Default, PartialEq)]
struct Extra {
    settings: Settings,
    /// Compaction rules with this series as their source.
    rules: Vec<Rule>,
    /// The series whose rule writes into this one.
    source: Option<SmallBytes>,
}

impl Extra {
    fn is_plain(&self) -> bool {
        self.settings == Settings::DEFAULT && self.rules.is_empty() && self.source.is_none()
    }
}

/// A time series. Every series pays for this struct (72 bytes), so what
/// few series use lives in [`Extra`] and the chunk list has no spare capacity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    labels: Labels,
    extra: Option<Box<Extra>>,
    sealed: Box<[Sealed]>,
    /// The open chunk; it also knows the newest sample when it is empty.
    open: OpenChunk,
}

// Every series pays for these; a field added to either should earn its bytes.
const _: () = assert!(std::mem::size_of::<Series>() <= 72);
const _: () = assert!(std::mem::size_of::<Sealed>() <= 16);
const _: () = assert!(OPEN_SAMPLES < codec::OPEN_MAX);

impl Series {
    /// An empty series with these settings.
    pub fn new(config: Config) -> Series {
        let mut s = Series::default();
        s.set_config(config);
        s
    }

    /// Retention, chunk size, duplicate policy, IGNORE, encoding.
    pub fn settings(&self) -> &Settings {
        self.extra.as_deref().map_or(&Settings::DEFAULT, |e| &e.settings)
    }

    /// Labels, in the order given.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The value of a label.
    pub fn label(&self, name: &[u8]) -> Option<&[u8]> {
        self.labels.get(name)
    }

    /// Settings and labels.
    pub fn config(&self) -> Config {
        Config { settings: *self.settings(), labels: self.labels.clone() }
    }

    /// Replaces settings and labels (TS.CREATE over a series made by a rule, TS.ALTER).
    pub fn set_config(&mut self, config: Config) {
        self.labels = config.labels;
        if config.settings != *self.settings() {
            self.extra_mut().settings = config.settings;
            self.tidy_extra();
        }
    }

    /// Compaction rules with this series as their source.
    pub fn rules(&self) -> &[Rule] {
        self.extra.as_ref().map_or(&[], |e| &e.rules)
    }

    /// The series whose rule writes into this one.
    pub fn source(&self) -> Option<&[u8]> {
        self.extra.as_ref()?.source.as_deref()
    }

    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Adds a rule, replacing any to the same destination.
    pub fn add_rule(&mut self, rule: Rule) {
        let e = self.extra_mut();
        e.rules.retain(|r| r.dest != rule.dest);
        e.rules.push(rule);
    }

    /// Removes the rule to `dest`, if any.
    pub fn remove_rule(&mut self, dest: &[u8]) {
        if let Some(e) = &mut self.extra {
            e.rules.retain(|r| &r.dest[..] != dest);
        }
        self.tidy_extra();
    }

    /// Sets (or clears) the series whose rule writes into this one.
    pub fn set_source(&mut self, source: Option<&[u8]>) {
        match source {
            Some(s) => self.extra_mut().source = Some(SmallBytes::new(s)),
            None => {
                if let Some(e) = &mut self.extra {
                    e.source = None;
                }
                self.tidy_extra();
            }
        }
    }

    fn tidy_extra(&mut self) {
        if self.extra.as_ref().is_some_and(|e| e.is_plain()) {
            self.extra = None;
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
        self.sealed.iter().map(Sealed::count).sum::<usize>() + self.open.len()
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
            .map(|c| (c.first(), c.last, c.count(), c.data.len(), codec::tag_name(codec::header(&c.data).map_or(0xff, |h| h.0))))
            .collect();
        let (f, l) = self.open.span();
        v.push((f, l, self.open.len(), self.open.data_bytes(), "open"));
        v
    }

    /// Bytes held: this struct, its chunks, labels and [`Extra`].
    pub fn heap_bytes(&self) -> usize {
        let sealed = self.sealed.len() * std::mem::size_of::<Sealed>() + self.sealed.iter().map(|c| c.data.heap_bytes()).sum::<usize>();
        let extra = self.extra.as_ref().map_or(0, |e| {
            std::mem::size_of::<Extra>()
                + e.rules.capacity() * std::mem::size_of::<Rule>()
                + e.rules.iter().map(|r| r.dest.heap_bytes()).sum::<usize>()
                + e.source.as_ref().map_or(0, |s| s.heap_bytes())
        });
        std::mem::size_of::<Series>() + sealed + self.open.heap_bytes() + self.labels.heap_bytes() + extra
    }

    /// What TS.INFO answers as memoryUsage: [`Series::heap_bytes`] and the
    /// series' share of the label strings it holds with other series.
    pub fn memory_usage(&self) -> usize {
        self.heap_bytes() + self.labels.shared_bytes()
    }

    /// Samples older than this are hidden and dropped (retention).
    pub fn cutoff(&self) -> i64 {
        match (self.last(), self.settings().retention_ms) {
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
        for c in self.sealed.iter().filter(|c| c.last >= from && c.first() <= to) {
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
                    if self.open.len() >= OPEN_SAMPLES || self.open.data_bytes() >= self.settings().chunk_size as usize {
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
            _ => self.sealed.iter().rposition(|c| c.first() <= t).unwrap_or(0),
        });
        let outside = |x: &Sample| x.0 < from || x.0 > to;
        let insert = |s: &mut Vec<Sample>, p: Sample| {
            let at = s.partition_point(|x| x.0 < p.0);
            s.insert(at, p);
        };
        let mut kept = Vec::with_capacity(n);
        for (i, c) in std::mem::take(&mut self.sealed).into_vec().into_iter().enumerate() {
            if !(c.last >= from && c.first() <= to) && home != Some(i) {
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
        self.sealed = kept.into_boxed_slice();
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
        let limit = self.settings().chunk_size.max(64) as usize;
        if let Some(prev) = self.sealed.last_mut() {
            if prev.count() + samples.len() <= SEALED_SAMPLES && prev.data.len() < limit {
                let mut all = prev.samples();
                all.extend_from_slice(&samples);
                let merged = Sealed::new(&all);
                if merged.data.len() <= limit {
                    *prev = merged;
                    return;
                }
            }
        }
        // Series hold few sealed chunks: the list grows by one, without spare room.
        let mut list = std::mem::take(&mut self.sealed).into_vec();
        list.reserve_exact(1);
        list.push(Sealed::new(&samples));
        self.sealed = list.into_boxed_slice();
    }

    /// Drops whole sealed chunks that ended before the retention cut.
    fn trim(&mut self) {
        let cut = self.cutoff();
        let dead = self.sealed.iter().take_while(|c| c.last < cut).count();
        if dead > 0 {
            let mut list = std::mem::take(&mut self.sealed).into_vec();
            list.drain(..dead);
            self.sealed = list.into_boxed_slice();
        }
    }

    /// Bytes [`Series::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let b = |s: &[u8]| 4 + s.len();
        config_len(&self.labels)
            + 4
            + self.rules().iter().map(|r| b(&r.dest) + 1 + 8 + 8).sum::<usize>()
            + 1
            + self.source().map_or(0, b)
            + 4
            + self.sealed.iter().map(|c| b(&c.data)).sum::<usize>()
            + 4
            + b(&self.open_record().1)
    }

    /// The open chunk as [`Series::encode`] writes it: the sample count with
    /// [`OPEN_AS_SEALED`] set and the samples in the sealed form (0 and no
    /// bytes when empty). The open form is not written: it is this
    /// process's, free to change.
    fn open_record(&self) -> (u32, Vec<u8>) {
        let mut samples = Vec::with_capacity(self.open.len());
        if self.open.is_empty() || self.open.decode_into(&mut samples).is_err() {
            return (0, Vec::new());
        }
        (samples.len() as u32 | OPEN_AS_SEALED, codec::encode(&samples))
    }

    /// Writes the whole series (checkpoints): settings, rules, source, chunks.
    pub fn encode(&self, w: &mut Writer<'_>) {
        write_config(self.settings(), &self.labels, w);
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
            if chunk.count() as u32 != count & !OPEN_AS_SEALED {
                return Err(DecodeError::Invalid("open chunk sample count differs from its data"));
            }
            if s.len() > codec::OPEN_MAX {
                return Err(DecodeError::Invalid("open chunk over 3000 samples"));
            }
            OpenChunk::from_samples(&s)
        } else {
            OpenChunk::from_gorilla(count, bytes)?
        };
        let open = if open.is_empty() { OpenChunk::after(sealed.last().and_then(|c| c.samples().last().copied())) } else { open };
        let extra = Box::new(Extra { settings: config.settings, rules, source });
        let extra = (!extra.is_plain()).then_some(extra);
        Ok(Series { labels: config.labels, extra, sealed: sealed.into_boxed_slice(), open })
    }
}

impl Sealed {
    fn new_checked(s: &[Sample], data: &[u8], prev: Option<i64>) -> Result<Sealed, DecodeError> {
        let ordered = s.windows(2).all(|p| p[0].0 < p[1].0) && prev.is_none_or(|p| s.first().is_some_and(|f| f.0 > p));
        if s.is_empty() || !ordered {
            return Err(DecodeError::Invalid("series chunk samples out of order"));
        }
        if codec::header(data)?.1 as usize != s.len() {
            return Err(DecodeError::Invalid("series chunk sample count differs from its data"));
        }
        debug_assert_eq!(codec::first_time(data).ok(), Some(s[0].0));
        Ok(Sealed { last: s[s.len() - 1].0, data: data.into() })
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
            let config = Config { settings: Settings { chunk_size: [64, 256, 4096][round % 3], ..Settings::DEFAULT }, ..Config::default() };
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

    /// Open chunks go to checkpoints in the sealed form; the Gorilla form
    /// that files of older versions hold still reads back.
    #[test]
    fn open_chunks_are_written_sealed_and_old_gorilla_ones_read() {
        let mut s = Series::new(Config::default());
        let samples: Vec<Sample> = (0..OPEN_SAMPLES as i64 - 1).map(|i| (1_000 * i, (i / 5) as f64 * 4096.0)).collect();
        s.upsert(&samples);
        let (n, sealed) = s.open_record();
        assert_eq!(n, (OPEN_SAMPLES as u32 - 1) | OPEN_AS_SEALED);
        let mut buf = vec![0u8; s.encoded_len()];
        s.encode(&mut Writer::new(&mut buf));
        assert_eq!(&Series::decode(&mut Reader::new(&buf)).unwrap(), &s);
        // The same series as an older file holds it: the open chunk's count, then its Gorilla bits.
        let mut w = bits::BitWriter::new();
        let (mut dod, mut xor) = (codec::Dod::default(), codec::Xor::default());
        for &(t, v) in &samples {
            dod.put(&mut w, t);
            xor.put(&mut w, v);
        }
        buf.truncate(buf.len() - 8 - sealed.len());
        let mut tail = vec![0u8; 8 + w.bytes().len()];
        let mut tw = Writer::new(&mut tail);
        tw.u32(samples.len() as u32);
        tw.bytes(w.bytes());
        buf.extend_from_slice(&tail);
        let mut r = Reader::new(&buf);
        assert_eq!(&Series::decode(&mut r).unwrap(), &s);
        r.finish().unwrap();
        assert!(OpenChunk::from_gorilla(3, w.bytes()).is_ok());
        assert!(OpenChunk::from_gorilla(samples.len() as u32 + 1, w.bytes()).is_err(), "more samples than the bits hold");
        // A file whose open chunk claims more samples than an open chunk holds is refused, in either form.
        assert!(OpenChunk::from_gorilla(codec::OPEN_MAX as u32 + 1, w.bytes()).is_err());
        let many: Vec<Sample> = (0..codec::OPEN_MAX as i64 + 1).map(|i| (1_000 * i, 1.0)).collect();
        let sealed_many = codec::encode(&many);
        buf.truncate(buf.len() - tail.len());
        let mut tail = vec![0u8; 8 + sealed_many.len()];
        let mut tw = Writer::new(&mut tail);
        tw.u32(many.len() as u32 | OPEN_AS_SEALED);
        tw.bytes(&sealed_many);
        buf.extend_from_slice(&tail);
        let refused = Series::decode(&mut Reader::new(&buf));
        assert!(matches!(refused, Err(DecodeError::Invalid(m)) if m.contains("over 3000")), "{refused:?}");
    }

    #[test]
    fn retention_hides_and_drops_old_samples() {
        let mut s = Series::new(Config { settings: Settings { retention_ms: 10_000, ..Settings::DEFAULT }, ..Config::default() });
        let samples: Vec<Sample> = (0..5000).map(|i| (i * 1000, i as f64)).collect();
        s.upsert(&samples);
        let r = s.range(i64::MIN, i64::MAX);
        assert_eq!(r.first().unwrap().0, 4_989_000);
        assert_eq!(r.len(), 11);
        assert!(s.len() <= OPEN_SAMPLES + 11 + SEALED_SAMPLES, "old chunks are dropped");
    }
}
