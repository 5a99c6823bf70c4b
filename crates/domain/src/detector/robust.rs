//! Median / MAD modified z-score.

use serde::{Deserialize, Serialize};

use super::calibration::RELATIVE_FLOOR;
use super::sorted_window::SortedWindow;
use super::{
    Detector, DetectorConfigError, Score, Verdict, check_positive, check_window, normal_score,
    standard_units,
};

/// The largest floor on the log scale: a 1% move of a large value.
pub(crate) const LOG_FLOOR_MAX: f64 = 0.009_950_330_853_168_083; // ln(1.01)
/// MAD of a normal distribution is 0.6745 of its standard deviation.
const MAD_TO_SIGMA: f64 = 1.0 / 0.674_489_750_196_081_7;
/// Mean absolute deviation of a normal distribution is 0.7979 of it.
pub(crate) const MEAN_AD_TO_SIGMA: f64 = 1.253_314_137_315_500_3;

/// Flags a value whose modified z-score (Iglewicz and Hoaglin) exceeds
/// `threshold`: its distance from the median of the last `window` values, in
/// units of their median absolute deviation scaled to a standard deviation.
/// A minority of outliers moves neither the median nor the MAD, so earlier
/// spikes do not hide later ones. When more than half the window is one
/// value (MAD 0), the mean absolute deviation stands in, and the spread is
/// never below that of a 1% move off the median (so after repeated values a
/// small move is judged by that floor, and a repeat scores 0).
///
/// By default it works on a log scale ([`RobustScale::Log`]): spending is
/// heavy-tailed (an ordinary purchase ten times the median is common), and on
/// a linear scale the MAD, which assumes a symmetric spread, would flag that
/// whole upper tail. [`RobustScale::Linear`] suits values whose ordinary
/// spread is even, such as amounts uniform over a range. Defaults: window
/// 30, minimum 10, threshold 3.5, log scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RobustZScore {
    window: usize,
    min_history: usize,
    threshold: f64,
    scale: RobustScale,
}

/// The scale on which [`RobustZScore`] measures distances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RobustScale {
    /// `sign(x) * ln(1 + |x|)`: a factor above the median counts as much as
    /// the same factor below it; defined for zero and negative values too.
    #[default]
    Log,
    /// The values as they are.
    Linear,
}

impl RobustScale {
    pub(crate) fn forward(self, value: f64) -> f64 {
        match self {
            RobustScale::Log => value.signum() * value.abs().ln_1p(),
            RobustScale::Linear => value,
        }
    }

    pub(crate) fn back(self, value: f64) -> f64 {
        match self {
            RobustScale::Log => (value.signum() * value.abs().exp_m1()).clamp(f64::MIN, f64::MAX),
            RobustScale::Linear => value,
        }
    }
}

/// What [`RobustZScore`] remembers: the window, also kept sorted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustState(SortedWindow);

impl Default for RobustZScore {
    fn default() -> Self {
        RobustZScore {
            window: 30,
            min_history: 10,
            threshold: 3.5,
            scale: RobustScale::Log,
        }
    }
}

impl RobustZScore {
    /// A detector with the given parameters.
    ///
    /// # Errors
    /// [`DetectorConfigError`] when `window` is below 2, `min_history` is 0
    /// or above `window`, or `threshold` is not a positive finite number.
    pub fn try_new(
        window: usize,
        min_history: usize,
        threshold: f64,
    ) -> Result<RobustZScore, DetectorConfigError> {
        check_window(window, min_history)?;
        check_positive("threshold", threshold)?;
        Ok(RobustZScore {
            window,
            min_history,
            threshold,
            scale: RobustScale::default(),
        })
    }
}

impl RobustZScore {
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

    /// The scale distances are measured on.
    pub fn scale(&self) -> RobustScale {
        self.scale
    }

    /// The same detector measuring on `scale`.
    pub fn with_scale(self, scale: RobustScale) -> RobustZScore {
        RobustZScore { scale, ..self }
    }
}

impl Detector for RobustZScore {
    type State = RobustState;

    fn new_state(&self) -> RobustState {
        RobustState(SortedWindow::new(self.window))
    }

    fn score(&self, state: &RobustState, value: f64) -> Verdict {
        self.score_scaled(state, self.scale.forward(value))
    }

    fn update(&self, state: &mut RobustState, value: f64) {
        if value.is_finite() {
            state.0.push(self.scale.forward(value));
        }
    }

    /// Scores and learns with one scale conversion instead of two.
    fn observe(&self, state: &mut RobustState, value: f64) -> Verdict {
        let scaled = self.scale.forward(value);
        let verdict = self.score_scaled(state, scaled);
        if value.is_finite() {
            state.0.push(scaled);
        }
        verdict
    }
}

impl RobustZScore {
    /// The least spread, on the detector's scale, around `center` (on that
    /// scale): that of a move of 1% of the level in the values' own units.
    fn floor(&self, center: f64) -> f64 {
        match self.scale {
            RobustScale::Linear => RELATIVE_FLOOR * center.abs(),
            RobustScale::Log => {
                let level = self.scale.back(center);
                (self.scale.forward(level * (1.0 + RELATIVE_FLOOR)) - center).abs()
            }
        }
    }

    /// Judges a value already converted to the detector's scale.
    fn score_scaled(&self, state: &RobustState, scaled: f64) -> Verdict {
        let window = &state.0;
        if window.len() < self.min_history {
            return Verdict::NotEnoughHistory { have: window.len() };
        }
        let (median, spread) = match window.flat() {
            Some(flat) => (flat, 0.0),
            None => {
                let median = window.median();
                let mad = window.median_abs_deviation(median);
                let spread = if mad > 0.0 {
                    mad * MAD_TO_SIGMA
                } else {
                    window.mean_abs_deviation(median) * MEAN_AD_TO_SIGMA
                };
                (median, spread)
            }
        };
        // On the log scale no floor exceeds ln(1.01): skip its exp and ln
        // when the spread is above that anyway.
        let spread = if self.scale == RobustScale::Log && spread >= LOG_FLOOR_MAX {
            spread
        } else {
            spread.max(self.floor(median))
        };
        let z = standard_units(scaled, median, spread);
        Verdict::Scored(Score {
            is_anomaly: z > self.threshold,
            score: normal_score(z),
            window_len: window.len(),
            // In the values' own units.
            baseline: self.scale.back(median),
            threshold: self.scale.back(median + self.threshold * spread),
        })
    }
}
