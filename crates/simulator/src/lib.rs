//! A seedable generator of payment transactions, for live per-user streams
//! and for bulk history.
//!
//! Main types: [`SimulatorConfig`] (the old service's amount and status
//! distribution), [`UserSimulator`] (one user's stream of
//! [`SimulatedTransaction`]s), and [`History`] (many users' back-dated
//! transactions, in time order, for seeding).
//!
//! Every generated transaction records whether the simulator made it large
//! on purpose ([`SimulatedTransaction::is_large`]): the ground truth against
//! which detectors are measured. [`scenario`] turns that and two other
//! generators (heavy-tailed amounts, shifting spending levels) into labelled
//! series ([`Series`]), and [`quality`] scores a detector against them
//! ([`Confusion`]: precision, recall, F1).
//!
//! Randomness comes only from seeds the caller passes in (ChaCha8, stable
//! across platforms and releases), so a seed reproduces a run exactly. Time
//! is passed in too. This crate must never depend on tokio, a database, Redis
//! or HTTP; scoring and storage belong to the caller.

pub mod benchmark;
mod config;
mod history;
pub mod quality;
pub mod scenario;
mod user;
pub mod windowed;

pub use benchmark::{Case, Point, Shape};
pub use config::{SimulatorConfig, SimulatorConfigError};
pub use history::{History, HistoryPlan};
pub use quality::{Confusion, Evaluation, evaluate};
pub use scenario::{Labeled, Scenario, Series, SeriesPlan};
pub use user::{SimulatedTransaction, UserSimulator};
