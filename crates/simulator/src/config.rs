//! The distribution of generated transactions.

use txwatch_domain::{Currency, Status};

/// How amounts, statuses and currencies are drawn. The defaults are the old
/// service's: with probability 0.35 a large amount, uniform in `[m, 2m]`
/// where `m = max(5 x typical mean, 5000)`; otherwise uniform in `[10, 500]`;
/// `paid` or `failed` with equal odds; currency `INR`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatorConfig {
    /// Smallest ordinary amount.
    pub normal_min: f64,
    /// Largest ordinary amount.
    pub normal_max: f64,
    /// Probability that an amount is made large on purpose.
    pub large_probability: f64,
    /// How many times the user's typical mean a large amount is at least.
    pub large_mean_multiple: f64,
    /// The least a large amount can be.
    pub large_floor: f64,
    /// How many recent ordinary amounts make the user's typical mean.
    pub typical_window: usize,
    /// Probability that a transaction is `paid` rather than `failed`.
    pub paid_probability: f64,
    /// Currency of every generated transaction.
    pub currency: Currency,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            normal_min: 10.0,
            normal_max: 500.0,
            large_probability: 0.35,
            large_mean_multiple: 5.0,
            large_floor: 5000.0,
            typical_window: 20,
            paid_probability: 0.5,
            currency: Currency::INR,
        }
    }
}

/// Why a [`SimulatorConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid simulator setting: {0}")]
pub struct SimulatorConfigError(&'static str);

impl SimulatorConfig {
    /// Checks that every parameter makes sense.
    ///
    /// # Errors
    /// [`SimulatorConfigError`] naming the first bad parameter.
    pub fn validate(&self) -> Result<(), SimulatorConfigError> {
        let probability = |p: f64| (0.0..=1.0).contains(&p);
        if !(self.normal_min.is_finite() && self.normal_min >= 0.0) {
            return Err(SimulatorConfigError(
                "normal_min must be a finite number >= 0",
            ));
        }
        if !(self.normal_max.is_finite() && self.normal_max > self.normal_min) {
            return Err(SimulatorConfigError(
                "normal_max must be finite and above normal_min",
            ));
        }
        if !probability(self.large_probability) || !probability(self.paid_probability) {
            return Err(SimulatorConfigError("probabilities must be within [0, 1]"));
        }
        if !(self.large_mean_multiple.is_finite() && self.large_mean_multiple > 0.0) {
            return Err(SimulatorConfigError("large_mean_multiple must be positive"));
        }
        // Keep 2m well inside NUMERIC(20,2).
        if !(self.large_floor.is_finite() && self.large_floor > 0.0 && self.large_floor < 1e12) {
            return Err(SimulatorConfigError("large_floor must be within (0, 1e12)"));
        }
        if self.typical_window == 0 {
            return Err(SimulatorConfigError("typical_window must be at least 1"));
        }
        Ok(())
    }

    pub(crate) fn status(&self, paid: bool) -> Status {
        if paid { Status::PAID } else { Status::FAILED }
    }
}
