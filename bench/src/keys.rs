//! Which key each request names: uniformly over the keyspace, or skewed by a
//! Zipfian law as YCSB's `requestdistribution=zipfian` (exponent 0.99 by
//! default), drawn by rejection-inversion (`rand_distr::Zipf`, exact for any
//! exponent), so a seed gives the same keys every run.
//!
//! Rank r (counting from 0) is key number r: `key:000000000000` is the
//! hottest. The keys still spread over the shards, since a key's slot is the
//! CRC16 of its text, not its number.

use rand::Rng;
use rand_distr::{Distribution, Zipf};

/// How keys are chosen (`--key-pattern`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Every key equally likely.
    Uniform,
    /// Key r with probability proportional to 1 / (r + 1)^s.
    Zipfian,
}

impl Pattern {
    /// Parses `uniform` or `zipfian`.
    pub fn parse(s: &str) -> Result<Pattern, String> {
        match s {
            "uniform" => Ok(Pattern::Uniform),
            "zipfian" | "zipf" => Ok(Pattern::Zipfian),
            other => Err(format!("{other:?}: expected uniform or zipfian")),
        }
    }

    /// The name as the flag takes it.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Uniform => "uniform",
            Pattern::Zipfian => "zipfian",
        }
    }
}

/// Draws key numbers in `0..keyspace`.
#[derive(Debug, Clone)]
pub struct Keys {
    /// Distinct keys.
    pub keyspace: u64,
    /// The pattern.
    pub pattern: Pattern,
    /// The Zipfian exponent (used only by [`Pattern::Zipfian`]).
    pub exponent: f64,
    zipf: Option<Zipf<f64>>,
}

impl Keys {
    /// A chooser; fails on an empty keyspace or an exponent that is negative or not finite.
    pub fn new(pattern: Pattern, keyspace: u64, exponent: f64) -> Result<Keys, String> {
        if keyspace == 0 {
            return Err("--keyspace must be at least 1".into());
        }
        if !(exponent.is_finite() && exponent >= 0.0) {
            return Err(format!("--zipf-exponent {exponent}: expected a finite number >= 0"));
        }
        let zipf = match pattern {
            Pattern::Uniform => None,
            Pattern::Zipfian => Some(Zipf::new(keyspace, exponent).map_err(|e| format!("zipfian over {keyspace} keys: {e}"))?),
        };
        Ok(Keys { keyspace, pattern, exponent, zipf })
    }

    /// The next key number.
    pub fn next<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match &self.zipf {
            None => rng.gen_range(0..self.keyspace),
            // The draw is a whole number in 1..=keyspace, as an f64.
            Some(z) => (z.sample(rng) as u64).clamp(1, self.keyspace) - 1,
        }
    }
}

/// The share of draws that the `top` hottest of `keyspace` keys get under a
/// Zipfian law of exponent `s`: H(top, s) / H(keyspace, s), where H(n, s) is
/// the sum of 1 / k^s for k = 1..=n.
#[cfg(test)]
pub fn zipf_top_share(keyspace: u64, top: u64, s: f64) -> f64 {
    let h = |n: u64| (1..=n).map(|k| (k as f64).powf(-s)).sum::<f64>();
    h(top.min(keyspace)) / h(keyspace)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// The share of `draws` draws that fall on the `top` lowest key numbers; panics on a key out of range.
    fn drawn_share(keys: &Keys, seed: u64, draws: u32, top: u64) -> f64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut hot = 0u32;
        for _ in 0..draws {
            let k = keys.next(&mut rng);
            assert!(k < keys.keyspace, "key {k} out of 0..{}", keys.keyspace);
            hot += u32::from(k < top);
        }
        f64::from(hot) / f64::from(draws)
    }

    #[test]
    fn zipfian_top_one_percent_gets_the_predicted_share() {
        for (keyspace, s) in [(10_000u64, 0.99), (100_000, 0.99), (10_000, 1.2), (10_000, 0.5)] {
            let keys = Keys::new(Pattern::Zipfian, keyspace, s).unwrap();
            let top = keyspace / 100;
            let expected = zipf_top_share(keyspace, top, s);
            let got = drawn_share(&keys, 7, 200_000, top);
            // 200k draws: the standard error of a share near 0.5 is about 0.0011.
            assert!((got - expected).abs() < 0.01, "keyspace {keyspace}, s {s}: top 1% got {got:.4}, formula {expected:.4}");
        }
        // The skew is real: with s = 0.99 over 10,000 keys, the top 1% take over half of the draws.
        assert!(zipf_top_share(10_000, 100, 0.99) > 0.5);
    }

    #[test]
    fn zipfian_hottest_key_is_key_zero() {
        let keys = Keys::new(Pattern::Zipfian, 1000, 0.99).unwrap();
        let expected = zipf_top_share(1000, 1, 0.99);
        let got = drawn_share(&keys, 11, 100_000, 1);
        assert!((got - expected).abs() < 0.01, "key 0 got {got:.4}, formula {expected:.4}");
    }

    #[test]
    fn uniform_is_flat_and_in_range() {
        let keys = Keys::new(Pattern::Uniform, 10_000, 0.99).unwrap();
        let got = drawn_share(&keys, 5, 200_000, 100);
        assert!((got - 0.01).abs() < 0.002, "uniform top 1% got {got:.4}");
    }

    #[test]
    fn tiny_keyspaces_stay_in_range() {
        for keyspace in [1u64, 2, 3] {
            let keys = Keys::new(Pattern::Zipfian, keyspace, 0.99).unwrap();
            drawn_share(&keys, 1, 10_000, 1);
        }
    }

    #[test]
    fn same_seed_same_keys() {
        let keys = Keys::new(Pattern::Zipfian, 1_000_000, 0.99).unwrap();
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..100).map(|_| keys.next(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(Pattern::parse("hotspot").is_err());
        assert_eq!(Pattern::parse("zipfian").unwrap(), Pattern::Zipfian);
        assert!(Keys::new(Pattern::Zipfian, 0, 0.99).is_err());
        assert!(Keys::new(Pattern::Zipfian, 10, -1.0).is_err());
        assert!(Keys::new(Pattern::Zipfian, 10, f64::NAN).is_err());
    }
}
