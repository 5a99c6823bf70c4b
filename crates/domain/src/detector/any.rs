//! Choosing a detector at run time.

use serde::{Deserialize, Serialize};

use super::{
    Detector, Ewma, EwmaState, RobustState, RobustZScore, RollingMean, RollingMeanState, Verdict,
    ZScore, ZScoreState,
};

/// The detectors by name, as configuration spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum DetectorKind {
    /// [`RollingMean`], the old service's rule (the default).
    #[default]
    #[serde(rename = "rolling_mean")]
    RollingMean,
    /// [`ZScore`].
    #[serde(rename = "zscore")]
    ZScore,
    /// [`RobustZScore`].
    #[serde(rename = "robust")]
    Robust,
    /// [`Ewma`].
    #[serde(rename = "ewma")]
    Ewma,
}

impl DetectorKind {
    /// Every kind, in the order documented.
    pub const ALL: [DetectorKind; 4] = [
        DetectorKind::RollingMean,
        DetectorKind::ZScore,
        DetectorKind::Robust,
        DetectorKind::Ewma,
    ];

    /// The name configuration uses.
    pub fn as_str(&self) -> &'static str {
        match self {
            DetectorKind::RollingMean => "rolling_mean",
            DetectorKind::ZScore => "zscore",
            DetectorKind::Robust => "robust",
            DetectorKind::Ewma => "ewma",
        }
    }
}

impl std::str::FromStr for DetectorKind {
    type Err = String;
    fn from_str(text: &str) -> Result<DetectorKind, String> {
        DetectorKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| {
                format!("unknown detector `{text}`: use rolling_mean, zscore, robust or ewma")
            })
    }
}

/// One of the detectors, chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AnyDetector {
    /// See [`RollingMean`].
    RollingMean(RollingMean),
    /// See [`ZScore`].
    ZScore(ZScore),
    /// See [`RobustZScore`].
    Robust(RobustZScore),
    /// See [`Ewma`].
    Ewma(Ewma),
}

/// The state of whichever detector an [`AnyDetector`] is. Serialized with
/// the detector's name, so a state saved by one detector is never read as
/// another's: an [`AnyDetector`] given a state of another kind starts afresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "detector", content = "state")]
pub enum AnyState {
    /// See [`RollingMeanState`].
    #[serde(rename = "rolling_mean")]
    RollingMean(RollingMeanState),
    /// See [`ZScoreState`].
    #[serde(rename = "zscore")]
    ZScore(ZScoreState),
    /// See [`RobustState`].
    #[serde(rename = "robust")]
    Robust(RobustState),
    /// See [`EwmaState`].
    #[serde(rename = "ewma")]
    Ewma(EwmaState),
}

impl Default for AnyDetector {
    /// The old service's rule.
    fn default() -> Self {
        AnyDetector::RollingMean(RollingMean::default())
    }
}

impl AnyDetector {
    /// The detector of this kind with its default parameters.
    pub fn with_defaults(kind: DetectorKind) -> AnyDetector {
        match kind {
            DetectorKind::RollingMean => AnyDetector::RollingMean(RollingMean::default()),
            DetectorKind::ZScore => AnyDetector::ZScore(ZScore::default()),
            DetectorKind::Robust => AnyDetector::Robust(RobustZScore::default()),
            DetectorKind::Ewma => AnyDetector::Ewma(Ewma::default()),
        }
    }

    /// Which detector this is.
    pub fn kind(&self) -> DetectorKind {
        match self {
            AnyDetector::RollingMean(_) => DetectorKind::RollingMean,
            AnyDetector::ZScore(_) => DetectorKind::ZScore,
            AnyDetector::Robust(_) => DetectorKind::Robust,
            AnyDetector::Ewma(_) => DetectorKind::Ewma,
        }
    }
}

impl Detector for AnyDetector {
    type State = AnyState;

    fn new_state(&self) -> AnyState {
        match self {
            AnyDetector::RollingMean(d) => AnyState::RollingMean(d.new_state()),
            AnyDetector::ZScore(d) => AnyState::ZScore(d.new_state()),
            AnyDetector::Robust(d) => AnyState::Robust(d.new_state()),
            AnyDetector::Ewma(d) => AnyState::Ewma(d.new_state()),
        }
    }

    fn score(&self, state: &AnyState, value: f64) -> Verdict {
        match (self, state) {
            (AnyDetector::RollingMean(d), AnyState::RollingMean(s)) => d.score(s, value),
            (AnyDetector::ZScore(d), AnyState::ZScore(s)) => d.score(s, value),
            (AnyDetector::Robust(d), AnyState::Robust(s)) => d.score(s, value),
            (AnyDetector::Ewma(d), AnyState::Ewma(s)) => d.score(s, value),
            // Another detector's state: nothing this one has learned.
            _ => Verdict::NotEnoughHistory { have: 0 },
        }
    }

    fn observe(&self, state: &mut AnyState, value: f64) -> Verdict {
        // Forwarded, so a detector's own `observe` (one scale conversion for
        // the robust one) serves here too.
        match (self, &mut *state) {
            (AnyDetector::RollingMean(d), AnyState::RollingMean(s)) => d.observe(s, value),
            (AnyDetector::ZScore(d), AnyState::ZScore(s)) => d.observe(s, value),
            (AnyDetector::Robust(d), AnyState::Robust(s)) => d.observe(s, value),
            (AnyDetector::Ewma(d), AnyState::Ewma(s)) => d.observe(s, value),
            _ => {
                let verdict = self.score(state, value);
                self.update(state, value);
                verdict
            }
        }
    }

    fn update(&self, state: &mut AnyState, value: f64) {
        match (self, &mut *state) {
            (AnyDetector::RollingMean(d), AnyState::RollingMean(s)) => d.update(s, value),
            (AnyDetector::ZScore(d), AnyState::ZScore(s)) => d.update(s, value),
            (AnyDetector::Robust(d), AnyState::Robust(s)) => d.update(s, value),
            (AnyDetector::Ewma(d), AnyState::Ewma(s)) => d.update(s, value),
            _ => {
                *state = self.new_state();
                self.update(state, value);
            }
        }
    }
}
