//! The old service's rule.

use serde::{Deserialize, Serialize};

use super::ring::Ring;
use super::{Detector, DetectorConfigError, Score, Verdict, check_positive, check_window, graded};

/// Flags a value above `multiplier` x the mean of the last `window` values,
/// once at least `min_history` are known: the old service's rule (window 20,
/// minimum 10, multiplier 5 by default).
///
/// Verdicts are bit-compatible with the old service, which summed the window
/// in order in floating point: a running sum decides in O(1) whenever the
/// value is clearly on one side of the threshold, and only a value within
/// rounding distance of it is decided by that exact ordered sum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollingMean {
    window: usize,
    min_history: usize,
    multiplier: f64,
}

/// What [`RollingMean`] remembers: the last `window` values and their sums.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollingMeanState {
    values: Ring,
    /// Sum of the values, updated incrementally.
    #[serde(with = "super::finite")]
    sum: f64,
    /// A bound on how far `sum` may be from the exact sum.
    #[serde(with = "super::finite")]
    sum_error: f64,
    /// Sum of the values' magnitudes: bounds the error of an in-order sum.
    #[serde(with = "super::finite")]
    magnitude: f64,
    /// Updates since the sums were last recomputed from scratch.
    since_resync: usize,
}

impl Default for RollingMean {
    /// Window 20, minimum history 10, multiplier 5: the old service's rule.
    fn default() -> Self {
        RollingMean {
            window: 20,
            min_history: 10,
            multiplier: 5.0,
        }
    }
}

impl RollingMean {
    /// A rule with the given parameters.
    ///
    /// # Errors
    /// [`DetectorConfigError`] when `window` is below 2, `min_history` is 0
    /// or above `window`, or `multiplier` is not a positive finite number.
    pub fn try_new(
        window: usize,
        min_history: usize,
        multiplier: f64,
    ) -> Result<RollingMean, DetectorConfigError> {
        check_window(window, min_history)?;
        check_positive("multiplier", multiplier)?;
        Ok(RollingMean {
            window,
            min_history,
            multiplier,
        })
    }

    /// Earlier values kept.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Earlier values needed before anything is judged.
    pub fn min_history(&self) -> usize {
        self.min_history
    }

    /// How many times the mean a value may reach before it is flagged.
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }
}

impl Detector for RollingMean {
    type State = RollingMeanState;

    fn new_state(&self) -> RollingMeanState {
        RollingMeanState {
            values: Ring::new(self.window),
            sum: 0.0,
            sum_error: 0.0,
            magnitude: 0.0,
            since_resync: 0,
        }
    }

    fn score(&self, state: &RollingMeanState, value: f64) -> Verdict {
        let n = state.values.len();
        if n < self.min_history {
            return Verdict::NotEnoughHistory { have: n };
        }
        let count = n as f64;
        let mut mean = state.sum / count;
        let mut threshold = self.multiplier * mean;
        // The old service's threshold came from an in-order sum, within
        // n * eps * magnitude of the exact sum; ours is within `sum_error`.
        // Beyond twice their combined distance (plus the rounding of the
        // division and product) both sides give the same verdict, so only a
        // value that close to the threshold pays for the in-order sum.
        let sum_gap = state.sum_error + count * f64::EPSILON * state.magnitude;
        // Compared after multiplying through by `count`: no division.
        let margin = 2.0 * self.multiplier * sum_gap + 4.0 * f64::EPSILON * threshold.abs() * count;
        if (value - threshold).abs() * count <= margin || !threshold.is_finite() {
            mean = state.values.iter().sum::<f64>() / count;
            threshold = self.multiplier * mean;
        }
        let is_anomaly = value > threshold;
        // How far above the mean, in units of the threshold's distance from
        // it: 0 at or below the mean, 0.5 at the threshold.
        let reach = threshold - mean;
        let above = value - mean;
        let total = reach + above;
        let score = if reach > 0.0 && reach.is_finite() {
            if above > 0.0 && total.is_finite() {
                // graded(above / reach), with one division instead of two.
                above / total
            } else {
                graded(above / reach)
            }
        } else if is_anomaly {
            1.0
        } else {
            0.0
        };
        // Keep flag and score in step where rounding near 0.5 could split them.
        let score = if is_anomaly {
            score.max(0.5f64.next_up())
        } else {
            score.min(0.5)
        };
        Verdict::Scored(Score {
            is_anomaly,
            score,
            window_len: n,
            baseline: mean,
            threshold,
        })
    }

    fn update(&self, state: &mut RollingMeanState, value: f64) {
        if !value.is_finite() {
            return;
        }
        let evicted = state.values.push(value).unwrap_or(0.0);
        state.sum += value - evicted;
        // Each of the two roundings is at most eps times its result.
        state.sum_error += f64::EPSILON * ((value - evicted).abs() + state.sum.abs());
        state.magnitude += value.abs() - evicted.abs();
        state.since_resync += 1;
        // Recompute now and then so rounding cannot accumulate.
        if state.since_resync >= self.window
            || !state.sum.is_finite()
            || !state.magnitude.is_finite()
        {
            state.sum = state.values.iter().sum();
            state.magnitude = state.values.iter().map(f64::abs).sum();
            state.sum_error = count_error(state.values.len(), state.magnitude);
            state.since_resync = 0;
        }
    }
}

/// The error bound of an in-order sum of `n` values of total magnitude
/// `magnitude`.
fn count_error(n: usize, magnitude: f64) -> f64 {
    n as f64 * f64::EPSILON * magnitude
}
