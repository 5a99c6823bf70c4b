//! The transaction model and anomaly detection, as a pure library.
//!
//! Main types: [`Transaction`] (with [`TransactionId`], [`UserId`], [`Amount`],
//! [`Currency`], [`Status`]), the [`Detector`] trait with its default
//! [`RollingMean`] rule, and the [`Verdict`] a detector returns, and the [`Window`] of a user's recent
//! amounts it judges against.
//!
//! This crate must never depend on tokio, async code, a database, Redis, HTTP,
//! a clock or a random number generator: time and randomness are passed in by
//! the caller, so everything here is deterministic and can be reused as a
//! library.
//!
//! ```
//! use txwatch_domain::{Amount, Detector, RollingMean, Verdict};
//!
//! let detector = RollingMean::default(); // window 20, minimum 10, multiplier 5
//! let history: Vec<Amount> = (0..10).map(|_| "100.00".parse().unwrap()).collect();
//! let spike: Amount = "900.00".parse().unwrap();
//! match detector.assess(&history, spike) {
//!     Verdict::Scored(score) => assert!(score.is_anomaly),
//!     Verdict::NotEnoughHistory { .. } => unreachable!("ten amounts are enough"),
//! }
//! ```

mod detector;
mod money;
mod transaction;
mod window;

pub use detector::{Detector, DetectorConfigError, RollingMean, Score, Verdict};
pub use money::{Amount, AmountError};
pub use transaction::{
    Currency, CurrencyError, Status, StatusError, Transaction, TransactionId, UserId,
};
pub use window::Window;
