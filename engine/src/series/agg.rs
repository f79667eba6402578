//! Aggregations over time buckets: TS.RANGE's AGGREGATION and compaction rules.
//!
//! A bucket of duration `d` aligned to `a` holds the samples with
//! `start <= ts < start + d`, where `start = ts - (ts - a) mod d`. Each
//! [`Agg`] reduces a bucket's samples to one value; `twa` (time-weighted
//! average) also looks at the samples just outside the bucket, interpolating
//! linearly to the bucket's edges.

use super::codec::Sample;

/// An aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    /// Mean.
    Avg,
    /// Sum.
    Sum,
    /// Smallest.
    Min,
    /// Largest.
    Max,
    /// Largest minus smallest.
    Range,
    /// Number of samples.
    Count,
    /// Oldest value.
    First,
    /// Newest value.
    Last,
    /// Population standard deviation.
    StdP,
    /// Sample standard deviation.
    StdS,
    /// Population variance.
    VarP,
    /// Sample variance.
    VarS,
    /// Time-weighted average.
    Twa,
}

impl Agg {
    const ALL: [Agg; 13] = [
        Agg::Avg,
        Agg::Sum,
        Agg::Min,
        Agg::Max,
        Agg::Range,
        Agg::Count,
        Agg::First,
        Agg::Last,
        Agg::StdP,
        Agg::StdS,
        Agg::VarP,
        Agg::VarS,
        Agg::Twa,
    ];

    /// The name the commands take and TS.INFO answers.
    pub fn name(self) -> &'static str {
        match self {
            Agg::Avg => "avg",
            Agg::Sum => "sum",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Range => "range",
            Agg::Count => "count",
            Agg::First => "first",
            Agg::Last => "last",
            Agg::StdP => "std.p",
            Agg::StdS => "std.s",
            Agg::VarP => "var.p",
            Agg::VarS => "var.s",
            Agg::Twa => "twa",
        }
    }

    /// The aggregation a name names (case-insensitive).
    pub fn parse(name: &[u8]) -> Option<Agg> {
        Agg::ALL.into_iter().find(|a| a.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// Its tag in records.
    pub fn tag(self) -> u8 {
        self as u8
    }

    /// The aggregation of a tag.
    pub fn from_tag(t: u8) -> Option<Agg> {
        Agg::ALL.get(t as usize).copied()
    }

    /// Reduces the values of a non-empty bucket (not for [`Agg::Twa`], see [`twa`]).
    pub fn reduce(self, v: &[f64]) -> f64 {
        let n = v.len() as f64;
        let mean = || v.iter().sum::<f64>() / n;
        let var = |sample: bool| {
            if v.len() < 2 {
                return 0.0;
            }
            let m = mean();
            v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / if sample { n - 1.0 } else { n }
        };
        let min = || v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = || v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        match self {
            Agg::Avg | Agg::Twa => mean(),
            Agg::Sum => v.iter().sum(),
            Agg::Min => min(),
            Agg::Max => max(),
            Agg::Range => max() - min(),
            Agg::Count => n,
            Agg::First => v[0],
            Agg::Last => v[v.len() - 1],
            Agg::StdP => var(false).sqrt(),
            Agg::StdS => var(true).sqrt(),
            Agg::VarP => var(false),
            Agg::VarS => var(true),
        }
    }
}

/// Start of the bucket of duration `d` (> 0), aligned to `align`, that holds `ts`.
pub fn bucket_start(ts: i64, d: u64, align: i64) -> i64 {
    let d = d.min(i64::MAX as u64) as i128;
    let off = (ts as i128 - align as i128).rem_euclid(d);
    (ts as i128 - off) as i64
}

fn lerp(a: Sample, b: Sample, t: i64) -> f64 {
    if b.0 == a.0 {
        return b.1;
    }
    a.1 + (b.1 - a.1) * ((t - a.0) as f64 / (b.0 - a.0) as f64)
}

/// Time-weighted average of the bucket `[start, end)` holding `inside`
/// (sorted, may be empty), with the samples just before and at/after it.
pub fn twa(inside: &[Sample], start: i64, end: i64, before: Option<Sample>, after: Option<Sample>) -> f64 {
    let (Some(&first), Some(&last)) = (inside.first(), inside.last()) else {
        return match (before, after) {
            (Some(b), Some(a)) => lerp(b, a, start + (end - start) / 2),
            _ => f64::NAN,
        };
    };
    let mut pts: Vec<Sample> = Vec::with_capacity(inside.len() + 2);
    if let Some(b) = before {
        pts.push((start, lerp(b, first, start)));
    }
    pts.extend_from_slice(inside);
    if let Some(a) = after {
        pts.push((end, lerp(last, a, end)));
    }
    let span = (pts[pts.len() - 1].0 - pts[0].0) as f64;
    if span == 0.0 {
        return first.1;
    }
    let area: f64 = pts.windows(2).map(|p| (p[1].0 - p[0].0) as f64 * (p[0].1 + p[1].1) / 2.0).sum();
    area / span
}

/// Which timestamp a bucket is reported at (BUCKETTIMESTAMP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketTs {
    /// `-`: its start.
    Start,
    /// `+`: its end.
    End,
    /// `~`: its middle.
    Mid,
}

/// How samples are aggregated (TS.RANGE's AGGREGATION and its options).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregation {
    /// The aggregation.
    pub agg: Agg,
    /// Bucket duration (> 0).
    pub bucket_ms: u64,
    /// Alignment.
    pub align: i64,
    /// Reported timestamp.
    pub bucket_ts: BucketTs,
    /// EMPTY: report empty buckets between the first and last non-empty ones.
    pub empty: bool,
}

impl Aggregation {
    fn report_ts(&self, start: i64) -> i64 {
        let d = self.bucket_ms.min(i64::MAX as u64) as i64;
        match self.bucket_ts {
            BucketTs::Start => start,
            BucketTs::End => start.saturating_add(d),
            BucketTs::Mid => start.saturating_add(d / 2),
        }
    }

    /// Aggregates `samples` (sorted) into buckets, oldest first. `before` and
    /// `after` are the samples just outside them (for twa).
    pub fn run(&self, samples: &[Sample], before: Option<Sample>, after: Option<Sample>) -> Vec<Sample> {
        let mut out = Vec::new();
        let d = self.bucket_ms.min(i64::MAX as u64) as i64;
        let mut i = 0;
        let mut prev_bucket: Option<(i64, Sample)> = None; // (start, last sample) of the previous non-empty bucket
        while i < samples.len() {
            let start = bucket_start(samples[i].0, self.bucket_ms, self.align);
            let end = start.saturating_add(d);
            let j = i + samples[i..].partition_point(|s| s.0 < end);
            if let (true, Some((ps, last))) = (self.empty, prev_bucket) {
                let mut s = ps.saturating_add(d);
                while s < start {
                    out.push((self.report_ts(s), self.empty_value(s, d, last, samples[i])));
                    s = s.saturating_add(d);
                }
            }
            let bucket = &samples[i..j];
            let v = if self.agg == Agg::Twa {
                let b = if i > 0 { Some(samples[i - 1]) } else { before };
                let a = samples.get(j).copied().or(after);
                twa(bucket, start, end, b, a)
            } else {
                let vals: Vec<f64> = bucket.iter().map(|s| s.1).collect();
                self.agg.reduce(&vals)
            };
            out.push((self.report_ts(start), v));
            prev_bucket = Some((start, samples[j - 1]));
            i = j;
        }
        out
    }

    fn empty_value(&self, start: i64, d: i64, before: Sample, after: Sample) -> f64 {
        match self.agg {
            Agg::Sum | Agg::Count => 0.0,
            Agg::Last => before.1,
            Agg::Twa => twa(&[], start, start.saturating_add(d), Some(before), Some(after)),
            _ => f64::NAN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_align() {
        assert_eq!(bucket_start(1234, 100, 0), 1200);
        assert_eq!(bucket_start(1234, 100, 50), 1150);
        assert_eq!(bucket_start(-1, 100, 0), -100);
        assert_eq!(bucket_start(i64::MAX, 1000, 0), i64::MAX - i64::MAX % 1000);
    }

    #[test]
    fn twa_weights_by_time() {
        // 0 for 10 ms, then 10 for 30 ms: a step, linearly interpolated between samples.
        let v = twa(&[(0, 0.0), (10, 10.0), (40, 10.0)], 0, 40, None, None);
        assert!((v - (50.0 + 300.0) / 40.0).abs() < 1e-9);
        assert_eq!(twa(&[(5, 3.0)], 0, 10, None, None), 3.0);
        assert!(twa(&[], 0, 10, None, None).is_nan());
    }

    #[test]
    fn empty_buckets_are_filled() {
        let q = Aggregation { agg: Agg::Sum, bucket_ms: 10, align: 0, bucket_ts: BucketTs::Start, empty: true };
        let got = q.run(&[(1, 1.0), (2, 2.0), (35, 5.0)], None, None);
        assert_eq!(got, vec![(0, 3.0), (10, 0.0), (20, 0.0), (30, 5.0)]);
        let q = Aggregation { agg: Agg::Max, bucket_ts: BucketTs::End, empty: false, ..q };
        assert_eq!(q.run(&[(1, 1.0), (2, 2.0), (35, 5.0)], None, None), vec![(10, 2.0), (40, 5.0)]);
    }
}
