//! Streaming anomaly detectors and their verdicts.
//!
//! A [`Detector`] holds only parameters; what it has learned about one
//! entity (a user, a sensor, a series) lives in a separate
//! [`Detector::State`] that the caller keeps, one per entity, and that can be
//! serialized and restored. Scoring a value looks only at values seen before
//! it: [`Detector::score`] judges, [`Detector::update`] then learns, and
//! [`Detector::observe`] does both. The `*_at` forms
//! ([`Detector::observe_at`]) take each value's time too; detectors that
//! learn daily and weekly rhythm ([`Detector::uses_time`]) use it, the
//! others ignore it.
//!
//! | detector | judges a value against | state | cost per value |
//! | --- | --- | --- | --- |
//! | [`RollingMean`] (the server's default) | `multiplier` x the mean of the last `window` values | last `window` values, running sums | O(1) |
//! | [`ZScore`] | mean and standard deviation of the last `window` values | last `window` values, running moments | O(1) |
//! | [`RobustZScore`] | median and MAD of the last `window` values (log scale by default) | last `window` values, kept sorted | O(W) |
//! | [`Ewma`] | exponentially weighted mean and variance | a few numbers | O(1) |
//! | [`Seasonal`] | level + time of day + weekday (log scale), robust spread, ranked against its own residuals | about 160 numbers | O(100) |
//! | [`RelativeEntropy`] | the last `window` values' histogram against learned distributions (Wang et al., 2011) | `window` values, up to 12 histograms | O(references + 50) |
//! | [`KnnConformal`] | the nearest earlier trajectories, conformal p-value (Burnaev and Ishimtsev, 2016) | `2 window + 5` values and distances | O(`window`) |
//! | [`Auto`] | [`Seasonal`], [`KnnConformal`] and [`RelativeEntropy`] combined | their states | their sum |
//!
//! Which to choose (docs/detectors.md, Detection quality, has the figures):
//! - [`Auto`] for series nobody has studied: the best or within a point of
//!   it at one setting over nine everyday shapes.
//! - [`Seasonal`] alone, a third of `Auto`'s cost, for payment-like and
//!   monitoring series; give it times.
//! - [`Ewma`], the best of the simple ones and the cheapest, when a series
//!   has no daily rhythm and speed matters most.
//! - [`RollingMean`] reproduces the old service's rule exactly. It only sees
//!   spikes far above the mean, and a few earlier spikes in the window raise
//!   the mean enough to hide the next ones.
//! - [`ZScore`] adapts to each entity's spread. Outliers in the window
//!   inflate the standard deviation, so bursts of anomalies mask each other.
//! - [`RobustZScore`] uses the median and the median absolute deviation,
//!   which a minority of outliers cannot move: heavy-tailed amounts in
//!   bursts. On values spread evenly over a range, its linear scale
//!   ([`RobustScale::Linear`]) separates spikes better. It suffers on
//!   mixtures of fixed amounts (a MAD of 0 around one repeated amount).
//! - [`KnnConformal`] and [`RelativeEntropy`] are best as members of
//!   [`Auto`]: the first sees unusual trajectories and copes with mixtures
//!   of fixed amounts, the second changes of distribution, not single
//!   spikes.
//!
//! Every detector's score ([`Score::score`]) is calibrated: `u / (u + 3)`
//! for an estimated tail probability `p = 10^-u` of the value given the
//! entity's past, so 0.5 is one in a thousand for every detector and entity
//! and one threshold ranks values across many of them. The four new
//! detectors flag exactly above 0.5. [`RollingMean`] keeps the old rule and
//! [`ZScore`], [`RobustZScore`] and [`Ewma`] `|z| > threshold`, so for them
//! the flag and "score above 0.5" differ. A flat history (one repeated
//! value) scores that value 0 exactly and measures a move off it against a
//! spread of at least 1% of the level. [`AnyDetector`] picks a detector at
//! run time, from configuration.

mod any;
mod auto;
mod calibration;
mod entropy;
mod ewma;
mod finite;
mod knn;
mod moments;
mod params;
mod ring;
mod robust;
mod rolling_mean;
mod run;
mod seasonal;
mod sorted_window;
mod zscore;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use any::{AnyDetector, AnyState, DetectorKind};
pub use auto::{Auto, AutoState};
pub use entropy::{RelativeEntropy, RelativeEntropyState};
pub use ewma::{Ewma, EwmaState};
pub use knn::{KnnConformal, KnnState};
pub use params::{DetectorParams, DetectorParamsError};
pub use robust::{RobustScale, RobustState, RobustZScore};
pub use rolling_mean::{RollingMean, RollingMeanState};
pub use seasonal::{Seasonal, SeasonalState};
pub use zscore::{ZScore, ZScoreState};

/// A streaming detector: parameters here, per-entity learning in
/// [`State`](Detector::State).
pub trait Detector {
    /// What the detector remembers about one entity.
    type State: Clone + std::fmt::Debug + PartialEq + Serialize + for<'de> Deserialize<'de>;

    /// The state of an entity nothing is known about yet.
    fn new_state(&self) -> Self::State;

    /// Judges `value` against what `state` holds (values seen before it),
    /// without learning from it.
    fn score(&self, state: &Self::State, value: f64) -> Verdict;

    /// Learns `value`. Non-finite values are ignored: they carry nothing to
    /// learn and would poison the statistics.
    fn update(&self, state: &mut Self::State, value: f64);

    /// Judges `value`, then learns it.
    fn observe(&self, state: &mut Self::State, value: f64) -> Verdict {
        let verdict = self.score(state, value);
        self.update(state, value);
        verdict
    }

    /// A state that has learned `history`, oldest first.
    fn state_from_history(&self, history: impl IntoIterator<Item = f64>) -> Self::State {
        let mut state = self.new_state();
        for value in history {
            self.update(&mut state, value);
        }
        state
    }

    /// Whether the detector learns from when values happen (daily and
    /// weekly rhythm). Such a detector should be given times through the
    /// `*_at` methods; the others ignore times.
    fn uses_time(&self) -> bool {
        false
    }

    /// Judges `value`, which happened `at`, without learning from it. The
    /// time counts in its own offset: a daily rhythm is learned in the
    /// wall-clock time the timestamps carry.
    fn score_at(&self, state: &Self::State, at: OffsetDateTime, value: f64) -> Verdict {
        let _ = at;
        self.score(state, value)
    }

    /// Learns `value`, which happened `at`.
    fn update_at(&self, state: &mut Self::State, at: OffsetDateTime, value: f64) {
        let _ = at;
        self.update(state, value);
    }

    /// Judges `value`, which happened `at`, then learns it. By default the
    /// time is ignored and this is [`observe`](Detector::observe) (with
    /// whatever shortcut a detector's own `observe` takes); a detector that
    /// uses time overrides it.
    fn observe_at(&self, state: &mut Self::State, at: OffsetDateTime, value: f64) -> Verdict {
        let _ = at;
        self.observe(state, value)
    }

    /// A state that has learned `history` of `(time, value)`, oldest first.
    fn state_from_timed_history(
        &self,
        history: impl IntoIterator<Item = (OffsetDateTime, f64)>,
    ) -> Self::State {
        let mut state = self.new_state();
        for (at, value) in history {
            self.update_at(&mut state, at, value);
        }
        state
    }
}

/// What a detector concluded about one value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// Too few earlier values to judge; never an anomaly.
    NotEnoughHistory {
        /// Earlier values available.
        have: usize,
    },
    /// The value was judged.
    Scored(Score),
}

impl Verdict {
    /// Whether the value was flagged as anomalous.
    pub fn is_anomaly(&self) -> bool {
        matches!(self, Verdict::Scored(score) if score.is_anomaly)
    }

    /// How many earlier values the verdict was based on.
    pub fn window_len(&self) -> usize {
        match self {
            Verdict::NotEnoughHistory { have } => *have,
            Verdict::Scored(score) => score.window_len,
        }
    }

    /// The score details, when the value was judged.
    pub fn score(&self) -> Option<&Score> {
        match self {
            Verdict::NotEnoughHistory { .. } => None,
            Verdict::Scored(score) => Some(score),
        }
    }

    /// The graded score: 0 without enough history.
    pub fn graded(&self) -> f64 {
        self.score().map_or(0.0, |score| score.score)
    }
}

/// The details of a judged value, enough to explain the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Flagged or not.
    pub is_anomaly: bool,
    /// Calibrated suspicion in `[0, 1]`: `u / (u + 3)` for a value whose
    /// estimated tail probability given the entity's past is `p = 10^-u`
    /// (0 for an ordinary value, 0.5 at one in a thousand, 0.8 at 10^-12).
    /// Comparable across entities and detectors; see the module docs for
    /// how it relates to [`is_anomaly`](Score::is_anomaly).
    pub score: f64,
    /// Number of earlier values used.
    pub window_len: usize,
    /// What the detector took as typical: the mean (rolling mean, z-score),
    /// the median (robust), the weighted mean (EWMA), the expected value at
    /// that time (seasonal), the value that followed the nearest earlier
    /// trajectory (k-NN), the middle bin edge (relative entropy; a flat
    /// history's value when flat); for auto, that of the member that found
    /// the value most unusual.
    pub baseline: f64,
    /// The value above which a value is flagged (for the two-sided
    /// detectors, the upper one of the two bounds; for seasonal, the upper
    /// value scoring 0.5 by the normal tail alone). The window detectors of
    /// the new kind have none in the values' units: k-NN reports its
    /// baseline, relative entropy its upper bin edge.
    pub threshold: f64,
}

/// Why detector parameters were rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DetectorConfigError {
    /// The window must hold at least two values.
    #[error("window must be at least 2, got {0}")]
    Window(usize),
    /// Minimum history must be between 1 and the window size.
    #[error("min_history must be between 1 and the window size {window}, got {min_history}")]
    MinHistory {
        /// The configured minimum.
        min_history: usize,
        /// The configured window.
        window: usize,
    },
    /// Too little history to estimate what the detector needs.
    #[error("min_history must be at least {least}, got {min_history}")]
    MinHistoryTooSmall {
        /// The configured minimum.
        min_history: usize,
        /// The least that works.
        least: usize,
    },
    /// A multiplier or threshold must be a positive finite number.
    #[error("{name} must be a positive finite number, got {value}")]
    NotPositive {
        /// Which parameter.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// The smoothing factor must lie in (0, 1).
    #[error("alpha must be between 0 and 1 (exclusive), got {0}")]
    Alpha(f64),
}

pub(crate) fn check_window(window: usize, min_history: usize) -> Result<(), DetectorConfigError> {
    if window < 2 {
        return Err(DetectorConfigError::Window(window));
    }
    if min_history == 0 || min_history > window {
        return Err(DetectorConfigError::MinHistory {
            min_history,
            window,
        });
    }
    Ok(())
}

pub(crate) fn check_positive(name: &'static str, value: f64) -> Result<(), DetectorConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(DetectorConfigError::NotPositive { name, value })
    }
}

/// A verdict for a two-sided deviation test: `|value - center| / spread`
/// against `limit` standard units. The spread is floored at
/// [`RELATIVE_FLOOR`](calibration::RELATIVE_FLOOR) of the level, so a flat
/// history judges a small move by that floor instead of as infinitely
/// unusual; a value equal to the center scores 0. The score is calibrated:
/// the normal two-sided tail probability of the distance, see
/// [`calibration`].
pub(crate) fn two_sided(
    value: f64,
    center: f64,
    spread: f64,
    limit: f64,
    window_len: usize,
) -> Verdict {
    let spread = calibration::floored_spread(spread, center);
    let z = standard_units(value, center, spread);
    Verdict::Scored(Score {
        is_anomaly: z > limit,
        score: normal_score(z),
        window_len,
        baseline: center,
        threshold: center + limit * spread,
    })
}

/// `|value - center| / spread`: 0 at the center (and for NaN), infinite for
/// any other value when the spread is 0.
pub(crate) fn standard_units(value: f64, center: f64, spread: f64) -> f64 {
    let distance = (value - center).abs();
    if distance == 0.0 || distance.is_nan() {
        0.0
    } else {
        distance / spread
    }
}

/// The calibrated score of a distance of `z` standard units under a normal
/// model, both tails.
pub(crate) fn normal_score(z: f64) -> f64 {
    if z == 0.0 {
        0.0
    } else {
        calibration::score_from_ln_p(calibration::ln_normal_two_sided(z))
    }
}
