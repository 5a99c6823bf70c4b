//! Mean and variance of a sliding window, maintained in O(1) per value.

use serde::{Deserialize, Serialize};

use super::ring::Ring;
use super::run::Run;

/// The last `capacity` values with their mean and sum of squared deviations
/// (Welford's method, with a removal step for the value leaving the window).
/// Recomputed from scratch every `capacity` updates, and whenever a value
/// overflows the running sums, so rounding cannot accumulate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WindowMoments {
    values: Ring,
    mean: f64,
    #[serde(with = "super::finite")]
    m2: f64,
    since_resync: usize,
    /// The largest magnitude that took part in the running figures since
    /// they were last recomputed: their rounding error scales with it.
    peak: f64,
    /// The equal values at the end: when they fill the window, the mean is
    /// exactly that value and the spread exactly 0, whatever rounding the
    /// running figures held.
    #[serde(default)]
    run: Run,
}

impl WindowMoments {
    pub(crate) fn new(capacity: usize) -> WindowMoments {
        WindowMoments {
            values: Ring::new(capacity),
            mean: 0.0,
            m2: 0.0,
            since_resync: 0,
            peak: 0.0,
            run: Run::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    pub(crate) fn mean(&self) -> f64 {
        self.mean
    }

    /// Sample variance (n - 1 in the denominator); 0 below two values.
    pub(crate) fn variance(&self) -> f64 {
        let n = self.values.len();
        if n < 2 {
            0.0
        } else {
            self.m2.max(0.0) / (n - 1) as f64
        }
    }

    /// Sample standard deviation.
    pub(crate) fn std_dev(&self) -> f64 {
        self.variance().sqrt()
    }

    pub(crate) fn push(&mut self, value: f64) {
        let n_before = self.values.len();
        match self.values.push(value) {
            None => {
                let n = (n_before + 1) as f64;
                let delta = value - self.mean;
                self.mean += delta / n;
                self.m2 += delta * (value - self.mean);
            }
            Some(evicted) => {
                let n = n_before as f64;
                let old_mean = self.mean;
                self.mean += (value - evicted) / n;
                self.m2 += (value - evicted) * (value - self.mean + evicted - old_mean);
            }
        }
        self.since_resync += 1;
        self.peak = self.peak.max(value.abs());
        self.run.push(value);
        if let Some(flat) = self.run.flat_over(self.values.len()) {
            self.mean = flat;
            self.m2 = 0.0;
            return;
        }
        // A value far larger than what the window now holds has left
        // rounding error of its own size behind (cancellation): recompute.
        if self.since_resync >= self.values.len().max(1)
            || !self.mean.is_finite()
            || !self.m2.is_finite()
            || self.peak_exceeds_spread()
        {
            self.resync();
        }
    }

    /// Whether `peak > 30 * (|mean| + std_dev)`, without a square root or
    /// a division: `peak - 30 |mean| > 30 sqrt(m2 / (n - 1))`, squared.
    fn peak_exceeds_spread(&self) -> bool {
        let excess = self.peak - 30.0 * self.mean.abs();
        if excess <= 0.0 {
            return false;
        }
        let n = self.values.len();
        n < 2 || excess * excess * (n - 1) as f64 > 900.0 * self.m2.max(0.0)
    }

    /// Two-pass recomputation, scaled by the largest magnitude so that even
    /// values near `f64::MAX` give a finite mean.
    fn resync(&mut self) {
        self.since_resync = 0;
        let n = self.values.len();
        let scale = self.values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        self.peak = scale;
        if n == 0 || scale == 0.0 {
            self.mean = 0.0;
            self.m2 = 0.0;
            return;
        }
        // A power of two: scaling by it is exact, and a multiplication.
        let scale = power_of_two_above(scale);
        let inverse = 1.0 / scale;
        let scaled_mean = self.values.iter().map(|v| v * inverse).sum::<f64>() / n as f64;
        self.mean = scaled_mean * scale;
        let scaled_m2: f64 = self
            .values
            .iter()
            .map(|v| (v * inverse - scaled_mean).powi(2))
            .sum();
        // May overflow to infinity for extreme spreads: then nothing looks
        // unusual against it, which is the honest answer.
        self.m2 = scaled_m2 * scale * scale;
    }
}

/// A power of two above `x` (a positive finite number), capped
/// at 2^1023 so that its reciprocal stays a normal number.
fn power_of_two_above(x: f64) -> f64 {
    // x < 2^exponent for normal x; subnormal x is below 2^-1022.
    let exponent = ((x.to_bits() >> 52) & 0x7ff) as i32 - 1022;
    2f64.powi(exponent.clamp(-1022, 1023))
}
