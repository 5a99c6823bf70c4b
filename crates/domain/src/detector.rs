//! Anomaly detectors and their verdicts.

use serde::{Deserialize, Serialize};

use crate::money::Amount;

/// Scores a new amount against the amounts of the same user that came before
/// it.
///
/// A detector is pure and stateless between calls: the caller keeps the
/// user's recent amounts (in Redis, or in memory when replaying history) and
/// passes them in, oldest first.
pub trait Detector {
    /// How many of the most recent previous amounts the detector looks at;
    /// callers keep at least this many.
    fn window_len(&self) -> usize;

    /// Judges `amount` against `previous` (oldest first; only the last
    /// [`window_len`](Detector::window_len) are used). Never looks at `amount`
    /// itself as history.
    fn assess(&self, previous: &[Amount], amount: Amount) -> Verdict;
}

/// What a detector concluded about one amount.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// Too few earlier amounts to judge; never an anomaly.
    NotEnoughHistory {
        /// Earlier amounts available.
        have: usize,
    },
    /// The amount was judged.
    Scored(Score),
}

impl Verdict {
    /// Whether the amount was flagged as anomalous.
    pub fn is_anomaly(&self) -> bool {
        matches!(self, Verdict::Scored(score) if score.is_anomaly)
    }

    /// How many earlier amounts the verdict was based on.
    pub fn window_len(&self) -> usize {
        match self {
            Verdict::NotEnoughHistory { have, .. } => *have,
            Verdict::Scored(score) => score.window_len,
        }
    }

    /// The score details, when the amount was judged.
    pub fn score(&self) -> Option<&Score> {
        match self {
            Verdict::NotEnoughHistory { .. } => None,
            Verdict::Scored(score) => Some(score),
        }
    }
}

/// The details of a judged amount, enough to explain the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Flagged or not.
    pub is_anomaly: bool,
    /// Graded suspicion in `[0, 1]`; above 0.5 exactly when flagged.
    pub score: f64,
    /// Number of earlier amounts used.
    pub window_len: usize,
    /// Mean of those amounts.
    pub window_mean: f64,
    /// The amount above which a transaction is flagged.
    pub threshold: f64,
}

/// Why detector parameters were rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DetectorConfigError {
    /// The window must hold at least one amount.
    #[error("window must be at least 1, got {0}")]
    Window(usize),
    /// Minimum history must be between 1 and the window size.
    #[error("min_history must be between 1 and the window size {window}, got {min_history}")]
    MinHistory {
        /// The configured minimum.
        min_history: usize,
        /// The configured window.
        window: usize,
    },
    /// The multiplier must be a positive finite number.
    #[error("multiplier must be a positive finite number, got {0}")]
    Multiplier(f64),
}

/// The old service's rule: once at least `min_history` earlier amounts are
/// known, an amount is anomalous when it exceeds `multiplier` times the mean
/// of the last `window` of them.
///
/// The arithmetic matches the old service exactly: the mean is the `f64` sum
/// of the window divided by its length, and the comparison is strict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollingMean {
    window: usize,
    min_history: usize,
    multiplier: f64,
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
    /// [`DetectorConfigError`] when `window` is 0, `min_history` is 0 or above
    /// `window`, or `multiplier` is not a positive finite number.
    pub fn try_new(
        window: usize,
        min_history: usize,
        multiplier: f64,
    ) -> Result<RollingMean, DetectorConfigError> {
        if window == 0 {
            return Err(DetectorConfigError::Window(window));
        }
        if min_history == 0 || min_history > window {
            return Err(DetectorConfigError::MinHistory {
                min_history,
                window,
            });
        }
        if !(multiplier.is_finite() && multiplier > 0.0) {
            return Err(DetectorConfigError::Multiplier(multiplier));
        }
        Ok(RollingMean {
            window,
            min_history,
            multiplier,
        })
    }

    /// Earlier amounts needed before anything is judged.
    pub fn min_history(&self) -> usize {
        self.min_history
    }

    /// How many times the mean an amount may reach before it is flagged.
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }
}

impl Detector for RollingMean {
    fn window_len(&self) -> usize {
        self.window
    }

    fn assess(&self, previous: &[Amount], amount: Amount) -> Verdict {
        let window = &previous[previous.len().saturating_sub(self.window)..];
        if window.len() < self.min_history {
            return Verdict::NotEnoughHistory { have: window.len() };
        }
        let sum: f64 = window.iter().map(Amount::to_f64).sum();
        let mean = sum / window.len() as f64;
        let threshold = self.multiplier * mean;
        let value = amount.to_f64();
        let is_anomaly = value > threshold;
        Verdict::Scored(Score {
            is_anomaly,
            score: graded_score(value, threshold, is_anomaly),
            window_len: window.len(),
            window_mean: mean,
            threshold,
        })
    }
}

/// Maps "value against threshold" into `[0, 1]` so that the score is above
/// one half exactly when the value exceeds the threshold, and grows with the
/// ratio: `r / (1 + r)` for `r = value / threshold`.
fn graded_score(value: f64, threshold: f64, is_anomaly: bool) -> f64 {
    if threshold <= 0.0 || !threshold.is_finite() {
        return if is_anomaly { 1.0 } else { 0.0 };
    }
    let ratio = (value / threshold).max(0.0);
    let score = ratio / (1.0 + ratio);
    if score.is_finite() { score } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amounts(values: &[&str]) -> Vec<Amount> {
        values
            .iter()
            .map(|v| v.parse().expect("valid amount"))
            .collect()
    }

    fn check(detector: RollingMean, history: &[&str], amount: &str, expect_anomaly: Option<bool>) {
        let verdict = detector.assess(&amounts(history), amount.parse().expect("valid amount"));
        match (expect_anomaly, verdict) {
            (None, Verdict::NotEnoughHistory { .. }) => {}
            (Some(want), Verdict::Scored(score)) => {
                assert_eq!(
                    score.is_anomaly, want,
                    "history {history:?}, amount {amount}"
                );
                assert!((0.0..=1.0).contains(&score.score));
                assert_eq!(
                    score.score > 0.5,
                    want,
                    "score {} disagrees with flag",
                    score.score
                );
            }
            (want, got) => {
                panic!("history {history:?}, amount {amount}: want {want:?}, got {got:?}")
            }
        }
    }

    #[test]
    fn the_default_rule_flags_amounts_above_five_times_the_mean_of_ten_or_more() {
        let d = RollingMean::default();
        let ten_hundreds = ["100"; 10];
        check(d, &ten_hundreds, "500.01", Some(true));
        check(d, &ten_hundreds, "500.00", Some(false)); // strictly greater
        check(d, &ten_hundreds, "20", Some(false));
        check(d, &["100"; 9], "100000", None);
        check(d, &[], "1", None);
    }

    #[test]
    fn only_the_last_window_of_amounts_counts() {
        let d = RollingMean::default();
        // 5 huge old amounts followed by 20 small ones: the huge ones are out
        // of the window, so the mean is 10 and 60 is flagged.
        let mut history = vec!["1000000"; 5];
        history.extend(["10"; 20]);
        check(d, &history, "60", Some(true));
    }

    #[test]
    fn parameters_are_configurable_and_validated() {
        let strict = RollingMean::try_new(3, 2, 2.0).expect("valid");
        check(strict, &["10", "10"], "20.01", Some(true));
        check(strict, &["10"], "1000", None);
        assert_eq!(
            RollingMean::try_new(0, 1, 5.0),
            Err(DetectorConfigError::Window(0))
        );
        assert!(RollingMean::try_new(5, 6, 5.0).is_err());
        assert!(RollingMean::try_new(5, 0, 5.0).is_err());
        assert!(RollingMean::try_new(5, 5, 0.0).is_err());
        assert!(RollingMean::try_new(5, 5, f64::NAN).is_err());
    }

    #[test]
    fn a_window_of_zeros_flags_any_positive_amount_with_full_score() {
        let d = RollingMean::default();
        let verdict = d.assess(&amounts(&["0"; 10]), "0.01".parse().expect("valid"));
        assert_eq!(
            verdict.score().map(|s| (s.is_anomaly, s.score)),
            Some((true, 1.0))
        );
    }
}
