//! Choosing a detector and its parameters by name, as configuration does.

use serde::{Deserialize, Serialize};

use super::{
    AnyDetector, Auto, DetectorConfigError, DetectorKind, Ewma, KnnConformal, RelativeEntropy,
    RobustScale, RobustZScore, RollingMean, Seasonal, ZScore,
};

/// A detector by name with optional parameters: what a settings file or a
/// command line gives. A parameter left out takes that detector's default;
/// one the detector does not take is an error rather than silently ignored.
///
/// ```
/// use txwatch_domain::{AnyDetector, DetectorKind, DetectorParams};
///
/// let params = DetectorParams { kind: DetectorKind::ZScore, threshold: Some(4.0), ..Default::default() };
/// assert!(matches!(params.build(), Ok(AnyDetector::ZScore(_))));
/// let wrong = DetectorParams { kind: DetectorKind::ZScore, multiplier: Some(4.0), ..Default::default() };
/// assert!(wrong.build().is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorParams {
    /// Which detector; the old rule when left out.
    #[serde(default)]
    pub kind: DetectorKind,
    /// Earlier values kept (`rolling_mean`, `zscore`, `robust`), compared
    /// (`relative_entropy`) or searched for neighbours (`knn`).
    pub window: Option<usize>,
    /// Earlier values needed before judging (all but `auto`).
    pub min_history: Option<usize>,
    /// Flag values above this many times the mean (`rolling_mean`).
    pub multiplier: Option<f64>,
    /// Standard units beyond which a value is flagged (`zscore`, `robust`, `ewma`).
    pub threshold: Option<f64>,
    /// Weight of the newest value (`ewma`).
    pub alpha: Option<f64>,
    /// `log` or `linear` (`robust`).
    pub scale: Option<RobustScale>,
}

/// Why [`DetectorParams`] could not be built into a detector.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DetectorParamsError {
    /// A parameter the chosen detector does not take.
    #[error("`{parameter}` does not apply to the {} detector, which takes {}", .kind.as_str(), .kind.parameters().join(", "))]
    NotApplicable {
        /// The parameter given.
        parameter: &'static str,
        /// The detector chosen.
        kind: DetectorKind,
    },
    /// Values the detector rejects.
    #[error("invalid {} parameters", .kind.as_str())]
    Invalid {
        /// The detector chosen.
        kind: DetectorKind,
        /// What it rejected.
        #[source]
        source: DetectorConfigError,
    },
}

impl DetectorKind {
    /// The parameters this detector takes, by name.
    pub fn parameters(&self) -> &'static [&'static str] {
        match self {
            DetectorKind::RollingMean => &["window", "min_history", "multiplier"],
            DetectorKind::ZScore => &["window", "min_history", "threshold"],
            DetectorKind::Robust => &["window", "min_history", "threshold", "scale"],
            DetectorKind::Ewma => &["alpha", "min_history", "threshold"],
            DetectorKind::Seasonal => &["min_history"],
            DetectorKind::RelativeEntropy | DetectorKind::Knn => &["window", "min_history"],
            DetectorKind::Auto => &[],
        }
    }
}

impl DetectorParams {
    /// The parameters given, by name.
    fn given(&self) -> [(&'static str, bool); 6] {
        [
            ("window", self.window.is_some()),
            ("min_history", self.min_history.is_some()),
            ("multiplier", self.multiplier.is_some()),
            ("threshold", self.threshold.is_some()),
            ("alpha", self.alpha.is_some()),
            ("scale", self.scale.is_some()),
        ]
    }

    /// The detector these parameters describe.
    ///
    /// # Errors
    /// [`DetectorParamsError::NotApplicable`] for a parameter the detector
    /// does not take, [`DetectorParamsError::Invalid`] for values it rejects.
    pub fn build(&self) -> Result<AnyDetector, DetectorParamsError> {
        let kind = self.kind;
        if let Some((parameter, _)) = self
            .given()
            .into_iter()
            .find(|(name, given)| *given && !kind.parameters().contains(name))
        {
            return Err(DetectorParamsError::NotApplicable { parameter, kind });
        }
        let invalid = |source| DetectorParamsError::Invalid { kind, source };
        Ok(match kind {
            DetectorKind::RollingMean => {
                let d = RollingMean::default();
                AnyDetector::RollingMean(
                    RollingMean::try_new(
                        self.window.unwrap_or(d.window()),
                        self.min_history.unwrap_or(d.min_history()),
                        self.multiplier.unwrap_or(d.multiplier()),
                    )
                    .map_err(invalid)?,
                )
            }
            DetectorKind::ZScore => {
                let d = ZScore::default();
                AnyDetector::ZScore(
                    ZScore::try_new(
                        self.window.unwrap_or(d.window()),
                        self.min_history.unwrap_or(d.min_history()),
                        self.threshold.unwrap_or(d.threshold()),
                    )
                    .map_err(invalid)?,
                )
            }
            DetectorKind::Robust => {
                let d = RobustZScore::default();
                AnyDetector::Robust(
                    RobustZScore::try_new(
                        self.window.unwrap_or(d.window()),
                        self.min_history.unwrap_or(d.min_history()),
                        self.threshold.unwrap_or(d.threshold()),
                    )
                    .map_err(invalid)?
                    .with_scale(self.scale.unwrap_or(d.scale())),
                )
            }
            DetectorKind::Ewma => {
                let d = Ewma::default();
                AnyDetector::Ewma(
                    Ewma::try_new(
                        self.alpha.unwrap_or(d.alpha()),
                        self.min_history.unwrap_or(d.min_history()),
                        self.threshold.unwrap_or(d.threshold()),
                    )
                    .map_err(invalid)?,
                )
            }
            DetectorKind::Seasonal => AnyDetector::Seasonal(
                Seasonal::try_new(
                    self.min_history
                        .unwrap_or(Seasonal::default().min_history()),
                )
                .map_err(invalid)?,
            ),
            DetectorKind::RelativeEntropy => {
                let d = RelativeEntropy::default();
                AnyDetector::RelativeEntropy(
                    RelativeEntropy::try_new(
                        self.window.unwrap_or(d.window()),
                        self.min_history.unwrap_or(d.min_history()),
                    )
                    .map_err(invalid)?,
                )
            }
            DetectorKind::Knn => {
                let d = KnnConformal::default();
                AnyDetector::Knn(
                    KnnConformal::try_new(
                        self.window.unwrap_or(d.window()),
                        self.min_history.unwrap_or(d.min_history()),
                    )
                    .map_err(invalid)?,
                )
            }
            DetectorKind::Auto => AnyDetector::Auto(Auto::default()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_parameters_build_each_detectors_defaults() {
        for kind in DetectorKind::ALL {
            let params = DetectorParams {
                kind,
                ..DetectorParams::default()
            };
            assert_eq!(params.build(), Ok(AnyDetector::with_defaults(kind)));
        }
    }

    #[test]
    fn given_parameters_override_defaults() {
        let params = DetectorParams {
            kind: DetectorKind::Robust,
            window: Some(40),
            threshold: Some(4.0),
            scale: Some(RobustScale::Linear),
            ..DetectorParams::default()
        };
        let expected =
            RobustZScore::try_new(40, 10, 4.0).map(|d| d.with_scale(RobustScale::Linear));
        assert_eq!(
            params.build(),
            Ok(AnyDetector::Robust(expected.expect("valid")))
        );
    }

    #[test]
    fn a_parameter_the_detector_does_not_take_is_named_in_the_error() {
        let params = DetectorParams {
            kind: DetectorKind::Ewma,
            window: Some(5),
            ..DetectorParams::default()
        };
        let error = params.build().expect_err("ewma has no window");
        assert_eq!(
            error,
            DetectorParamsError::NotApplicable {
                parameter: "window",
                kind: DetectorKind::Ewma
            }
        );
        assert_eq!(
            error.to_string(),
            "`window` does not apply to the ewma detector, which takes alpha, min_history, threshold"
        );
    }

    #[test]
    fn rejected_values_keep_the_detectors_reason() {
        let params = DetectorParams {
            window: Some(5),
            min_history: Some(6),
            ..DetectorParams::default()
        };
        assert!(matches!(
            params.build(),
            Err(DetectorParamsError::Invalid {
                kind: DetectorKind::RollingMean,
                source: DetectorConfigError::MinHistory { .. }
            })
        ));
    }
}
