//! A combination of calibrated detectors, for series nobody has studied.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::calibration::{ln_p_from_score, score_from_ln_p};
use super::entropy::{RelativeEntropy, RelativeEntropyState};
use super::knn::{KnnConformal, KnnState};
use super::seasonal::{Seasonal, SeasonalState};
use super::{Detector, RobustState, RobustZScore, Score, Verdict};

/// Runs four detectors with their defaults and combines their calibrated
/// scores into one: [`RobustZScore`] (spikes against a median, log scale),
/// [`Seasonal`] (daily and weekly rhythm, when given times), [`KnnConformal`]
/// (unusual trajectories) and [`RelativeEntropy`] (changes of distribution).
/// The combined tail probability is the smallest of theirs times the number
/// that judged the value (Bonferroni): still a valid bound on the chance of
/// a false alarm, however the four depend on each other, so the score keeps
/// its meaning. It judges once one of them has enough history (10 values,
/// the robust detector's minimum), and flags a value when its score is above
/// 0.5; the baseline and threshold reported are those of the member that
/// found the value most unusual.
///
/// The default for series nobody has studied: it has no parameters.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Auto {
    robust: RobustZScore,
    seasonal: Seasonal,
    knn: KnnConformal,
    entropy: RelativeEntropy,
}

/// What [`Auto`] remembers: its members' states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoState {
    robust: RobustState,
    seasonal: SeasonalState,
    knn: KnnState,
    entropy: RelativeEntropyState,
}

impl Auto {
    fn combine(verdicts: [Verdict; 4]) -> Verdict {
        let mut judged = 0usize;
        let mut have = 0usize;
        let mut most: Option<Score> = None;
        for verdict in verdicts {
            match verdict {
                Verdict::NotEnoughHistory { have: h } => have = have.max(h),
                Verdict::Scored(score) => {
                    judged += 1;
                    if most.is_none_or(|m| score.score > m.score) {
                        most = Some(score);
                    }
                }
            }
        }
        let Some(most) = most else {
            return Verdict::NotEnoughHistory { have };
        };
        let ln_p = (ln_p_from_score(most.score) + (judged as f64).ln()).min(0.0);
        let score = score_from_ln_p(ln_p);
        Verdict::Scored(Score {
            is_anomaly: score > 0.5,
            score,
            ..most
        })
    }
}

impl Detector for Auto {
    type State = AutoState;

    fn new_state(&self) -> AutoState {
        AutoState {
            robust: self.robust.new_state(),
            seasonal: self.seasonal.new_state(),
            knn: self.knn.new_state(),
            entropy: self.entropy.new_state(),
        }
    }

    fn score(&self, state: &AutoState, value: f64) -> Verdict {
        Auto::combine([
            self.robust.score(&state.robust, value),
            self.seasonal.score(&state.seasonal, value),
            self.knn.score(&state.knn, value),
            self.entropy.score(&state.entropy, value),
        ])
    }

    fn update(&self, state: &mut AutoState, value: f64) {
        self.robust.update(&mut state.robust, value);
        self.seasonal.update(&mut state.seasonal, value);
        self.knn.update(&mut state.knn, value);
        self.entropy.update(&mut state.entropy, value);
    }

    fn observe(&self, state: &mut AutoState, value: f64) -> Verdict {
        Auto::combine([
            self.robust.observe(&mut state.robust, value),
            self.seasonal.observe(&mut state.seasonal, value),
            self.knn.observe(&mut state.knn, value),
            self.entropy.observe(&mut state.entropy, value),
        ])
    }

    fn uses_time(&self) -> bool {
        true
    }

    fn score_at(&self, state: &AutoState, at: OffsetDateTime, value: f64) -> Verdict {
        Auto::combine([
            self.robust.score(&state.robust, value),
            self.seasonal.score_at(&state.seasonal, at, value),
            self.knn.score(&state.knn, value),
            self.entropy.score(&state.entropy, value),
        ])
    }

    fn update_at(&self, state: &mut AutoState, at: OffsetDateTime, value: f64) {
        self.robust.update(&mut state.robust, value);
        self.seasonal.update_at(&mut state.seasonal, at, value);
        self.knn.update(&mut state.knn, value);
        self.entropy.update(&mut state.entropy, value);
    }

    fn observe_at(&self, state: &mut AutoState, at: OffsetDateTime, value: f64) -> Verdict {
        Auto::combine([
            self.robust.observe(&mut state.robust, value),
            self.seasonal.observe_at(&mut state.seasonal, at, value),
            self.knn.observe(&mut state.knn, value),
            self.entropy.observe(&mut state.entropy, value),
        ])
    }
}
