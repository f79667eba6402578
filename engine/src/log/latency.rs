//! A fixed-bucket latency histogram, for the log's fdatasync times.
//!
//! Buckets are upper bounds in seconds ([`BOUNDS`]), as a Prometheus
//! histogram has them; counts are kept per bucket (not cumulative) and the
//! overflow past the last bound in a final bucket. It is `Copy` so that it
//! travels inside [`super::LogStats`].

use std::time::Duration;

/// Upper bounds of the buckets, in seconds: 50 µs to 1 s.
pub const BOUNDS: [f64; 14] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Counts of durations per bucket, with their sum.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket: `counts[i]` fell in `(BOUNDS[i-1], BOUNDS[i]]`; the last one above every bound.
    pub counts: [u64; BOUNDS.len() + 1],
    /// Sum of the observations, in nanoseconds.
    pub sum_ns: u64,
}

impl Histogram {
    /// Records one duration.
    pub fn record(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BOUNDS.iter().position(|&b| secs <= b).unwrap_or(BOUNDS.len());
        self.counts[i] += 1;
        self.sum_ns = self.sum_ns.saturating_add(d.as_nanos().min(u64::MAX as u128) as u64);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sum of the observations in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_ns as f64 / 1e9
    }

    /// Cumulative counts per bound, as Prometheus's `le` buckets (without `+Inf`, which is [`Histogram::count`]).
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        BOUNDS.iter().zip(self.counts.iter()).scan(0u64, |acc, (&b, &n)| {
            *acc += n;
            Some((b, *acc))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_by_upper_bound() {
        let mut h = Histogram::default();
        h.record(Duration::from_micros(50));
        h.record(Duration::from_micros(700));
        h.record(Duration::from_millis(1));
        h.record(Duration::from_secs(3));
        assert_eq!(h.count(), 4);
        assert_eq!(h.counts[0], 1);
        assert_eq!(h.counts[4], 2);
        assert_eq!(h.counts[BOUNDS.len()], 1);
        let cum: Vec<u64> = h.cumulative().map(|(_, n)| n).collect();
        assert_eq!(cum.len(), BOUNDS.len());
        assert_eq!(cum[0], 1);
        assert_eq!(cum[3], 1);
        assert_eq!(cum[4], 3);
        assert_eq!(*cum.last().unwrap_or(&0), 3);
        assert!((h.sum_seconds() - 3.00175).abs() < 1e-9);
    }
}
