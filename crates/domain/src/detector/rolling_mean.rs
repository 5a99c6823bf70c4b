//! The old service's rule.

use serde::{Deserialize, Serialize};

use super::calibration::floored_spread;
use super::ring::Ring;
use super::run::Run;
use super::{
    Detector, DetectorConfigError, Score, Verdict, check_positive, check_window, normal_score,
    standard_units,
};

/// Flags a value above `multiplier` x the mean of the last `window` values,
/// once at least `min_history` are known: the old service's rule (window 20,
/// minimum 10, multiplier 5 by default).
///
/// Verdicts are bit-compatible with the old service, which summed the window
/// in order in floating point: a running sum decides in O(1) whenever the
/// value is clearly on one side of the threshold, and only a value within
/// rounding distance of it is decided by that exact ordered sum.
///
/// Its score is calibrated like every detector's (see the
/// [`detector`](super) module): the two-sided normal tail of the value's
/// distance from the window mean in sample standard deviations (floored at
/// 1% of the mean). The flag is the old rule, so here, unlike for the other
/// detectors, a score above 0.5 does not mean "flagged": a value can be
/// flagged with a low score (the window is erratic, so 5x its mean is not
/// rare) or score high unflagged (far below the mean, or above it but under
/// 5x in a steady window).
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
    /// Sums of the values' deviations from `shift`, and of their squares,
    /// for the spread behind the calibrated score (deviations keep the
    /// squares small: no cancellation for large levels). NaN in a state
    /// saved before they existed: then recomputed.
    #[serde(default = "unknown", with = "super::finite")]
    shift: f64,
    #[serde(default = "unknown", with = "super::finite")]
    deviations: f64,
    #[serde(default = "unknown", with = "super::finite")]
    squares: f64,
    /// The equal values at the end, to know a flat window exactly.
    #[serde(default)]
    run: Run,
}

fn unknown() -> f64 {
    f64::NAN
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
            shift: 0.0,
            deviations: 0.0,
            squares: 0.0,
            run: Run::default(),
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
        let (center, spread) = match state.run.flat_over(n) {
            Some(flat) => (flat, 0.0),
            None => (mean, state.std_dev()),
        };
        let score = normal_score(standard_units(
            value,
            center,
            floored_spread(spread, center),
        ));
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
        let pushed_out = state.values.push(value);
        let evicted = pushed_out.unwrap_or(0.0);
        state.sum += value - evicted;
        // Each of the two roundings is at most eps times its result.
        state.sum_error += f64::EPSILON * ((value - evicted).abs() + state.sum.abs());
        state.magnitude += value.abs() - evicted.abs();
        state.since_resync += 1;
        state.run.push(value);
        if state.values.len() == 1 {
            // The first value: measure from it, not from 0.
            state.shift = value;
            state.deviations = 0.0;
            state.squares = 0.0;
        } else if !(state.shift.is_finite()
            && state.deviations.is_finite()
            && state.squares.is_finite())
        {
            // A state saved before these sums existed, or one they
            // overflowed: recompute them over the window as it is now.
            state.resync_spread();
        } else {
            let added = value - state.shift;
            state.deviations += added;
            state.squares += added * added;
            if let Some(out) = pushed_out {
                let removed = out - state.shift;
                state.deviations -= removed;
                state.squares -= removed * removed;
            }
            state.settle_spread_sums();
        }
        // Recompute now and then so rounding cannot accumulate.
        if state.since_resync >= self.window
            || !state.sum.is_finite()
            || !state.magnitude.is_finite()
        {
            state.sum = state.values.iter().sum();
            state.magnitude = state.values.iter().map(f64::abs).sum();
            state.sum_error = count_error(state.values.len(), state.magnitude);
            state.since_resync = 0;
            state.resync_spread();
        }
    }
}

impl RollingMeanState {
    /// Sample standard deviation of the window; 0 below two values.
    fn std_dev(&self) -> f64 {
        let n = self.values.len();
        if n < 2 {
            return 0.0;
        }
        let (deviations, squares) = if self.squares.is_finite() && self.deviations.is_finite() {
            (self.deviations, self.squares)
        } else {
            self.spread_sums(self.shift_of())
        };
        let count = n as f64;
        ((squares - deviations * deviations / count).max(0.0) / (count - 1.0)).sqrt()
    }

    /// A shift near the values: their mean, or 0 if it is not finite.
    fn shift_of(&self) -> f64 {
        let mean = self.sum / self.values.len().max(1) as f64;
        if mean.is_finite() { mean } else { 0.0 }
    }

    fn spread_sums(&self, shift: f64) -> (f64, f64) {
        self.values.iter().fold((0.0, 0.0), |(d, q), v| {
            let x = v - shift;
            (d + x, q + x * x)
        })
    }

    fn resync_spread(&mut self) {
        self.shift = self.shift_of();
        (self.deviations, self.squares) = self.spread_sums(self.shift);
        self.settle_spread_sums();
    }

    /// Overflowed sums (values near `f64::MAX`) become infinite, never NaN,
    /// so states stay comparable; the next update recomputes them.
    fn settle_spread_sums(&mut self) {
        if !(self.deviations.is_finite() && self.squares.is_finite()) {
            self.deviations = f64::INFINITY;
            self.squares = f64::INFINITY;
        }
    }
}

/// The error bound of an in-order sum of `n` values of total magnitude
/// `magnitude`.
fn count_error(n: usize, magnitude: f64) -> f64 {
    n as f64 * f64::EPSILON * magnitude
}
