//! Exponentially weighted mean and variance.

use serde::{Deserialize, Serialize};

use super::run::Run;
use super::{Detector, DetectorConfigError, Verdict, check_positive, two_sided};

/// Flags a value more than `threshold` standard deviations from an
/// exponentially weighted moving mean, with an exponentially weighted
/// variance, once `min_history` values were seen. O(1) state: it needs no
/// window and follows a level that drifts or shifts, forgetting old values
/// at rate `alpha` (0.1: a value's weight halves after about 7 more).
/// Defaults: alpha 0.1, minimum 10, threshold 3.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ewma {
    alpha: f64,
    min_history: usize,
    threshold: f64,
}

/// What [`Ewma`] remembers: three numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EwmaState {
    mean: f64,
    variance: f64,
    count: usize,
    /// The equal values at the end: a run as long as the detector's
    /// effective window is a flat history, judged exactly.
    #[serde(default)]
    run: Run,
}

impl Default for Ewma {
    fn default() -> Self {
        Ewma {
            alpha: 0.1,
            min_history: 10,
            threshold: 3.0,
        }
    }
}

impl Ewma {
    /// A detector with the given parameters.
    ///
    /// # Errors
    /// [`DetectorConfigError`] when `alpha` is not strictly between 0 and 1,
    /// `min_history` is 0, or `threshold` is not a positive finite number.
    pub fn try_new(
        alpha: f64,
        min_history: usize,
        threshold: f64,
    ) -> Result<Ewma, DetectorConfigError> {
        if !(alpha > 0.0 && alpha < 1.0) {
            return Err(DetectorConfigError::Alpha(alpha));
        }
        if min_history == 0 {
            return Err(DetectorConfigError::MinHistoryTooSmall {
                min_history,
                least: 1,
            });
        }
        check_positive("threshold", threshold)?;
        Ok(Ewma {
            alpha,
            min_history,
            threshold,
        })
    }
}

impl Ewma {
    /// The window an exponential weighting of `alpha` stands for, `2 /
    /// alpha - 1` values (19 at 0.1): a run of equal values that long is a
    /// flat history.
    fn effective_window(&self) -> usize {
        (2.0 / self.alpha - 1.0).ceil().max(1.0) as usize
    }

    /// Weight of the newest value in the moving mean and variance.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Values needed before anything is judged.
    pub fn min_history(&self) -> usize {
        self.min_history
    }

    /// Standard units from the mean beyond which a value is flagged.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }
}

impl Detector for Ewma {
    type State = EwmaState;

    fn new_state(&self) -> EwmaState {
        EwmaState {
            mean: 0.0,
            variance: 0.0,
            count: 0,
            run: Run::default(),
        }
    }

    fn score(&self, state: &EwmaState, value: f64) -> Verdict {
        if state.count < self.min_history {
            return Verdict::NotEnoughHistory { have: state.count };
        }
        let (center, spread) = match state.run.flat_over(self.effective_window()) {
            Some(flat) => (flat, 0.0),
            None => (state.mean, state.variance.sqrt()),
        };
        two_sided(value, center, spread, self.threshold, state.count)
    }

    fn update(&self, state: &mut EwmaState, value: f64) {
        if !value.is_finite() {
            return;
        }
        state.count = state.count.saturating_add(1);
        state.run.push(value);
        if state.count == 1 {
            state.mean = value;
            state.variance = 0.0;
            return;
        }
        let delta = value - state.mean;
        let increment = self.alpha * delta;
        state.mean += increment;
        state.variance = (1.0 - self.alpha) * (state.variance + delta * increment);
        // Only values near f64::MAX get here; stay finite and carry on.
        if !state.mean.is_finite() {
            state.mean = value;
        }
        if !state.variance.is_finite() {
            state.variance = f64::MAX;
        }
    }
}
