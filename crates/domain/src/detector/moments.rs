//! Mean and variance of a sliding window, maintained in O(1) per value.

use serde::{Deserialize, Serialize};

use super::ring::Ring;

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
}

impl WindowMoments {
    pub(crate) fn new(capacity: usize) -> WindowMoments {
        WindowMoments {
            values: Ring::new(capacity),
            mean: 0.0,
            m2: 0.0,
            since_resync: 0,
            peak: 0.0,
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
        // A value far larger than what the window now holds has left
        // rounding error of its own size behind (cancellation): recompute.
        let scale = self.mean.abs() + self.std_dev();
        if self.since_resync >= self.values.len().max(1)
            || !self.mean.is_finite()
            || !self.m2.is_finite()
            || self.peak > 30.0 * scale
        {
            self.resync();
        }
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
        let scaled_mean = self.values.iter().map(|v| v / scale).sum::<f64>() / n as f64;
        self.mean = scaled_mean * scale;
        let scaled_m2: f64 = self
            .values
            .iter()
            .map(|v| (v / scale - scaled_mean).powi(2))
            .sum();
        // May overflow to infinity for extreme spreads: then nothing looks
        // unusual against it, which is the honest answer.
        self.m2 = scaled_m2 * scale * scale;
    }
}
