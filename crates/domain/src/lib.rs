//! The transaction model and anomaly detection, as a pure library.
//!
//! Main types: [`Transaction`] (with [`TransactionId`], [`UserId`], [`Amount`],
//! [`Currency`], [`Status`]); the [`Detector`] trait (values alone, or with
//! their times: [`Detector::observe_at`]) with eight streaming detectors,
//! [`RollingMean`] (the old service's rule, the server's default),
//! [`ZScore`], [`RobustZScore`], [`Ewma`], [`Seasonal`] (daily and weekly
//! rhythm), [`RelativeEntropy`], [`KnnConformal`] and [`Auto`] (the one for
//! series nobody has studied), chosen at run time through [`AnyDetector`];
//! the [`Verdict`] a detector returns, whose score is calibrated (the same
//! meaning for every detector and series); and the [`Window`] of a user's
//! recent amounts. The [`detector`] module docs say what each parameter
//! means and when to choose which detector.
//!
//! This crate must never depend on tokio, async code, a database, Redis, HTTP,
//! a clock or a random number generator: time and randomness are passed in by
//! the caller, so everything here is deterministic and can be reused as a
//! library.
//!
//! ```
//! use txwatch_domain::{Detector, RobustZScore, Verdict};
//!
//! // One detector, one state per entity (here a single series).
//! let detector = RobustZScore::default(); // window 30, minimum 10, threshold 3.5
//! let mut state = detector.new_state();
//! for amount in [120.0, 95.5, 101.0, 99.9, 130.0, 87.0, 110.0, 104.2, 98.0, 115.0] {
//!     detector.observe(&mut state, amount); // scored, then learned
//! }
//! let verdict = detector.observe(&mut state, 2_400.0);
//! assert!(verdict.is_anomaly());
//! assert!(verdict.graded() > 0.8); // calibrated in [0, 1]: 0.5 is one in a thousand
//!
//! // States are serde values: keep them anywhere, restore them later.
//! let saved = serde_json::to_string(&state).unwrap();
//! let restored = serde_json::from_str(&saved).unwrap();
//! assert_eq!(state, restored);
//! assert!(matches!(detector.score(&restored, 100.0), Verdict::Scored(s) if !s.is_anomaly));
//! ```

pub mod detector;
mod money;
mod transaction;
mod window;

pub use detector::{
    AnyDetector, AnyState, Auto, AutoState, Detector, DetectorConfigError, DetectorKind,
    DetectorParams, DetectorParamsError, Ewma, EwmaState, KnnConformal, KnnState, RelativeEntropy,
    RelativeEntropyState, RobustScale, RobustState, RobustZScore, RollingMean, RollingMeanState,
    Score, Seasonal, SeasonalState, Verdict, ZScore, ZScoreState,
};
pub use money::{Amount, AmountError};
pub use transaction::{
    Currency, CurrencyError, Origin, Status, StatusError, Transaction, TransactionId, UserId,
};
pub use window::{Window, WindowEntry};
