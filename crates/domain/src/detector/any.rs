//! Choosing a detector at run time.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{
    Auto, AutoState, Detector, Ewma, EwmaState, KnnConformal, KnnState, RelativeEntropy,
    RelativeEntropyState, RobustState, RobustZScore, RollingMean, RollingMeanState, Seasonal,
    SeasonalState, Verdict, ZScore, ZScoreState,
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
    /// [`Seasonal`].
    #[serde(rename = "seasonal")]
    Seasonal,
    /// [`RelativeEntropy`].
    #[serde(rename = "relative_entropy")]
    RelativeEntropy,
    /// [`KnnConformal`].
    #[serde(rename = "knn")]
    Knn,
    /// [`Auto`].
    #[serde(rename = "auto")]
    Auto,
}

impl DetectorKind {
    /// Every kind, in the order documented.
    pub const ALL: [DetectorKind; 8] = [
        DetectorKind::RollingMean,
        DetectorKind::ZScore,
        DetectorKind::Robust,
        DetectorKind::Ewma,
        DetectorKind::Seasonal,
        DetectorKind::RelativeEntropy,
        DetectorKind::Knn,
        DetectorKind::Auto,
    ];

    /// The name configuration uses.
    pub fn as_str(&self) -> &'static str {
        match self {
            DetectorKind::RollingMean => "rolling_mean",
            DetectorKind::ZScore => "zscore",
            DetectorKind::Robust => "robust",
            DetectorKind::Ewma => "ewma",
            DetectorKind::Seasonal => "seasonal",
            DetectorKind::RelativeEntropy => "relative_entropy",
            DetectorKind::Knn => "knn",
            DetectorKind::Auto => "auto",
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
                let names: Vec<&str> = DetectorKind::ALL.iter().map(DetectorKind::as_str).collect();
                format!("unknown detector `{text}`: use {}", names.join(", "))
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
    /// See [`Seasonal`].
    Seasonal(Seasonal),
    /// See [`RelativeEntropy`].
    RelativeEntropy(RelativeEntropy),
    /// See [`KnnConformal`].
    Knn(KnnConformal),
    /// See [`Auto`].
    Auto(Auto),
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
    /// See [`SeasonalState`].
    #[serde(rename = "seasonal")]
    Seasonal(SeasonalState),
    /// See [`RelativeEntropyState`].
    #[serde(rename = "relative_entropy")]
    RelativeEntropy(RelativeEntropyState),
    /// See [`KnnState`].
    #[serde(rename = "knn")]
    Knn(KnnState),
    /// See [`AutoState`] (boxed: it is several times the others' size).
    #[serde(rename = "auto")]
    Auto(Box<AutoState>),
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
            DetectorKind::Seasonal => AnyDetector::Seasonal(Seasonal::default()),
            DetectorKind::RelativeEntropy => {
                AnyDetector::RelativeEntropy(RelativeEntropy::default())
            }
            DetectorKind::Knn => AnyDetector::Knn(KnnConformal::default()),
            DetectorKind::Auto => AnyDetector::Auto(Auto::default()),
        }
    }

    /// Which detector this is.
    pub fn kind(&self) -> DetectorKind {
        match self {
            AnyDetector::RollingMean(_) => DetectorKind::RollingMean,
            AnyDetector::ZScore(_) => DetectorKind::ZScore,
            AnyDetector::Robust(_) => DetectorKind::Robust,
            AnyDetector::Ewma(_) => DetectorKind::Ewma,
            AnyDetector::Seasonal(_) => DetectorKind::Seasonal,
            AnyDetector::RelativeEntropy(_) => DetectorKind::RelativeEntropy,
            AnyDetector::Knn(_) => DetectorKind::Knn,
            AnyDetector::Auto(_) => DetectorKind::Auto,
        }
    }
}

/// Calls `$call` on the detector and its own state, when they match.
macro_rules! dispatch {
    ($detector:expr, $state:expr, |$d:ident, $s:ident| $call:expr, else $fallback:expr) => {
        match ($detector, $state) {
            (AnyDetector::RollingMean($d), AnyState::RollingMean($s)) => $call,
            (AnyDetector::ZScore($d), AnyState::ZScore($s)) => $call,
            (AnyDetector::Robust($d), AnyState::Robust($s)) => $call,
            (AnyDetector::Ewma($d), AnyState::Ewma($s)) => $call,
            (AnyDetector::Seasonal($d), AnyState::Seasonal($s)) => $call,
            (AnyDetector::RelativeEntropy($d), AnyState::RelativeEntropy($s)) => $call,
            (AnyDetector::Knn($d), AnyState::Knn($s)) => $call,
            (AnyDetector::Auto($d), AnyState::Auto($s)) => $call,
            _ => $fallback,
        }
    };
}

impl Detector for AnyDetector {
    type State = AnyState;

    fn new_state(&self) -> AnyState {
        match self {
            AnyDetector::RollingMean(d) => AnyState::RollingMean(d.new_state()),
            AnyDetector::ZScore(d) => AnyState::ZScore(d.new_state()),
            AnyDetector::Robust(d) => AnyState::Robust(d.new_state()),
            AnyDetector::Ewma(d) => AnyState::Ewma(d.new_state()),
            AnyDetector::Seasonal(d) => AnyState::Seasonal(d.new_state()),
            AnyDetector::RelativeEntropy(d) => AnyState::RelativeEntropy(d.new_state()),
            AnyDetector::Knn(d) => AnyState::Knn(d.new_state()),
            AnyDetector::Auto(d) => AnyState::Auto(Box::new(d.new_state())),
        }
    }

    fn score(&self, state: &AnyState, value: f64) -> Verdict {
        // Another detector's state: nothing this one has learned.
        dispatch!(self, state, |d, s| d.score(s, value), else Verdict::NotEnoughHistory { have: 0 })
    }

    fn observe(&self, state: &mut AnyState, value: f64) -> Verdict {
        // Forwarded, so a detector's own `observe` (one scale conversion for
        // the robust one) serves here too.
        dispatch!(self, &mut *state, |d, s| d.observe(s, value), else {
            let verdict = self.score(state, value);
            self.update(state, value);
            verdict
        })
    }

    fn update(&self, state: &mut AnyState, value: f64) {
        dispatch!(self, &mut *state, |d, s| d.update(s, value), else {
            *state = self.new_state();
            self.update(state, value);
        })
    }

    fn uses_time(&self) -> bool {
        matches!(self, AnyDetector::Seasonal(_) | AnyDetector::Auto(_))
    }

    fn score_at(&self, state: &AnyState, at: OffsetDateTime, value: f64) -> Verdict {
        dispatch!(self, state, |d, s| d.score_at(s, at, value), else Verdict::NotEnoughHistory { have: 0 })
    }

    fn update_at(&self, state: &mut AnyState, at: OffsetDateTime, value: f64) {
        dispatch!(self, &mut *state, |d, s| d.update_at(s, at, value), else {
            *state = self.new_state();
            self.update_at(state, at, value);
        })
    }

    fn observe_at(&self, state: &mut AnyState, at: OffsetDateTime, value: f64) -> Verdict {
        dispatch!(self, &mut *state, |d, s| d.observe_at(s, at, value), else {
            let verdict = self.score_at(state, at, value);
            self.update_at(state, at, value);
            verdict
        })
    }
}
