//! A combination of calibrated detectors, for series nobody has studied.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::calibration::{ln_p_from_score, score_from_ln_p};
use super::entropy::{RelativeEntropy, RelativeEntropyState};
use super::knn::{KnnConformal, KnnState};
use super::seasonal::{Seasonal, SeasonalState};
use super::{Detector, Score, Verdict};

/// Weights of the members in the combined bound, in the order seasonal,
/// k-NN, relative entropy; they sum to 1.
const WEIGHTS: [f64; 3] = [0.8, 0.1, 0.1];

/// Runs three detectors with their defaults and combines their calibrated
/// scores into one: [`Seasonal`] (level, daily and weekly rhythm when given
/// times, robust spread, calibrated by rank against its own recent
/// residuals), [`KnnConformal`] (unusual trajectories) and
/// [`RelativeEntropy`] (changes of distribution). The combined tail
/// probability is the weighted Bonferroni bound `min_i p_i / w_i` with
/// weights 0.8, 0.1 and 0.1 over the members that judged the value: a valid
/// bound on the chance of a false alarm however the members depend on each
/// other, so the score keeps its meaning, while the seasonal member, the
/// best calibrated on its own, pays little for the other two. The weights
/// were chosen on the quality benchmark (`just quality`; docs/detectors.md, Detection
/// quality).
///
/// It judges once one member has enough history (30 values), flags a value
/// when its score is above 0.5, and reports the baseline and threshold of
/// the member that found the value most unusual. It has no parameters:
/// the default for series nobody has studied.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Auto {
    seasonal: Seasonal,
    knn: KnnConformal,
    entropy: RelativeEntropy,
}

/// What [`Auto`] remembers: its members' states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoState {
    seasonal: SeasonalState,
    knn: KnnState,
    entropy: RelativeEntropyState,
}

impl Auto {
    fn combine(verdicts: [Verdict; 3]) -> Verdict {
        let mut have = 0usize;
        let mut most: Option<(f64, Score)> = None;
        for (verdict, weight) in verdicts.into_iter().zip(WEIGHTS) {
            match verdict {
                Verdict::NotEnoughHistory { have: h } => have = have.max(h),
                Verdict::Scored(score) => {
                    let ln_p = ln_p_from_score(score.score) - weight.ln();
                    if most.is_none_or(|(m, _)| ln_p < m) {
                        most = Some((ln_p, score));
                    }
                }
            }
        }
        let Some((ln_p, most)) = most else {
            return Verdict::NotEnoughHistory { have };
        };
        let score = score_from_ln_p(ln_p.min(0.0));
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
            seasonal: self.seasonal.new_state(),
            knn: self.knn.new_state(),
            entropy: self.entropy.new_state(),
        }
    }

    fn score(&self, state: &AutoState, value: f64) -> Verdict {
        Auto::combine([
            self.seasonal.score(&state.seasonal, value),
            self.knn.score(&state.knn, value),
            self.entropy.score(&state.entropy, value),
        ])
    }

    fn update(&self, state: &mut AutoState, value: f64) {
        self.seasonal.update(&mut state.seasonal, value);
        self.knn.update(&mut state.knn, value);
        self.entropy.update(&mut state.entropy, value);
    }

    fn observe(&self, state: &mut AutoState, value: f64) -> Verdict {
        Auto::combine([
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
            self.seasonal.score_at(&state.seasonal, at, value),
            self.knn.score(&state.knn, value),
            self.entropy.score(&state.entropy, value),
        ])
    }

    fn update_at(&self, state: &mut AutoState, at: OffsetDateTime, value: f64) {
        self.seasonal.update_at(&mut state.seasonal, at, value);
        self.knn.update(&mut state.knn, value);
        self.entropy.update(&mut state.entropy, value);
    }

    fn observe_at(&self, state: &mut AutoState, at: OffsetDateTime, value: f64) -> Verdict {
        Auto::combine([
            self.seasonal.observe_at(&mut state.seasonal, at, value),
            self.knn.observe(&mut state.knn, value),
            self.entropy.observe(&mut state.entropy, value),
        ])
    }
}
