//! Windowed z-score.

use serde::{Deserialize, Serialize};

use super::moments::WindowMoments;
use super::{Detector, DetectorConfigError, Verdict, check_positive, check_window, two_sided};

/// Flags a value more than `threshold` standard deviations from the mean of
/// the last `window` values (either side), once `min_history` are known.
/// Defaults: window 20, minimum 10, threshold 3.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZScore {
    window: usize,
    min_history: usize,
    threshold: f64,
}

/// What [`ZScore`] remembers: the window and its running moments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZScoreState(WindowMoments);

impl Default for ZScore {
    fn default() -> Self {
        ZScore {
            window: 20,
            min_history: 10,
            threshold: 3.0,
        }
    }
}

impl ZScore {
    /// A detector with the given parameters.
    ///
    /// # Errors
    /// [`DetectorConfigError`] when `window` is below 2, `min_history` is
    /// below 2 or above `window` (a spread needs two values), or `threshold`
    /// is not a positive finite number.
    pub fn try_new(
        window: usize,
        min_history: usize,
        threshold: f64,
    ) -> Result<ZScore, DetectorConfigError> {
        check_window(window, min_history)?;
        if min_history < 2 {
            return Err(DetectorConfigError::MinHistoryTooSmall {
                min_history,
                least: 2,
            });
        }
        check_positive("threshold", threshold)?;
        Ok(ZScore {
            window,
            min_history,
            threshold,
        })
    }
}

impl ZScore {
    /// Earlier values kept.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Earlier values needed before anything is judged.
    pub fn min_history(&self) -> usize {
        self.min_history
    }

    /// Standard units from the baseline beyond which a value is flagged.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }
}

impl Detector for ZScore {
    type State = ZScoreState;

    fn new_state(&self) -> ZScoreState {
        ZScoreState(WindowMoments::new(self.window))
    }

    fn score(&self, state: &ZScoreState, value: f64) -> Verdict {
        let moments = &state.0;
        if moments.len() < self.min_history {
            return Verdict::NotEnoughHistory {
                have: moments.len(),
            };
        }
        two_sided(
            value,
            moments.mean(),
            moments.std_dev(),
            self.threshold,
            moments.len(),
        )
    }

    fn update(&self, state: &mut ZScoreState, value: f64) {
        if value.is_finite() {
            state.0.push(value);
        }
    }
}
