//! Labelled series for measuring detectors: many entities' values, each
//! marked with whether it was made anomalous on purpose.
//!
//! Three scenarios, each a pure function of a [`SeriesPlan`] (how many
//! entities, how long, which seed):
//!
//! - [`simulator_default`]: the live simulator with [`SimulatorConfig`]'s
//!   defaults, the old service's distribution; a third of the values are
//!   anomalies.
//! - [`heavy_tailed`]: log-normal ordinary amounts, so some ordinary amounts
//!   are legitimately large, plus rare anomalies far beyond them.
//! - [`level_shift`]: entities whose ordinary level changes once or twice
//!   (the change is not an anomaly), plus rare spikes above the current level.
//!
//! Entity `i` of a plan draws from its own ChaCha8 generator, seeded from the
//! plan's seed, so a seed reproduces every value and a plan with more
//! entities or longer series starts with the same values as a smaller one.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use time::{Duration, OffsetDateTime};
use txwatch_domain::UserId;

use crate::config::SimulatorConfig;
use crate::user::UserSimulator;

/// One value and its ground truth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Labeled {
    /// The value a detector sees.
    pub value: f64,
    /// Ground truth: the generator made this value anomalous on purpose.
    pub is_anomaly: bool,
}

/// One entity's values, oldest first.
pub type Series = Vec<Labeled>;

/// How much labelled data to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesPlan {
    /// How many entities (independent series).
    pub entities: usize,
    /// Values per entity.
    pub len: usize,
    /// Fixes every value: the same plan gives the same series.
    pub seed: u64,
}

impl SeriesPlan {
    /// One generator per entity, each seeded by the plan's generator in turn,
    /// so the first entities do not depend on how many follow.
    pub(crate) fn entity_rngs(&self) -> impl Iterator<Item = ChaCha8Rng> {
        let mut plan_rng = ChaCha8Rng::seed_from_u64(self.seed);
        (0..self.entities).map(move |_| ChaCha8Rng::seed_from_u64(plan_rng.next_u64()))
    }
}

/// The scenarios by name, for reports that run them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// [`simulator_default`].
    SimulatorDefault,
    /// [`heavy_tailed`] with [`HeavyTailed::default`].
    HeavyTailed,
    /// [`level_shift`] with [`LevelShift::default`].
    LevelShift,
}

impl Scenario {
    /// Every scenario, in the order documented.
    pub const ALL: [Scenario; 3] = [
        Scenario::SimulatorDefault,
        Scenario::HeavyTailed,
        Scenario::LevelShift,
    ];

    /// A short snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Scenario::SimulatorDefault => "simulator_default",
            Scenario::HeavyTailed => "heavy_tailed",
            Scenario::LevelShift => "level_shift",
        }
    }

    /// What the scenario generates, in a line.
    pub fn description(&self) -> &'static str {
        match self {
            Scenario::SimulatorDefault => {
                "the live simulator's defaults: 35% of amounts uniform in [m, 2m], \
                 m = max(5 x typical mean, 5000), the rest uniform in [10, 500]"
            }
            Scenario::HeavyTailed => {
                "log-normal amounts (median 100, sigma 1.0); 2% anomalies at 30-100x the median"
            }
            Scenario::LevelShift => {
                "N(100, 15) shifting to N(400, 60) and, for half the entities, back; \
                 2% spikes at 6-10x the current level"
            }
        }
    }

    /// The scenario's series, with its default parameters.
    pub fn generate(&self, plan: &SeriesPlan) -> Vec<Series> {
        match self {
            Scenario::SimulatorDefault => simulator_default(plan),
            Scenario::HeavyTailed => heavy_tailed(&HeavyTailed::default(), plan),
            Scenario::LevelShift => level_shift(&LevelShift::default(), plan),
        }
    }
}

/// The live simulator with [`SimulatorConfig::default`]: the ground truth is
/// [`SimulatedTransaction::is_large`](crate::SimulatedTransaction::is_large),
/// so about 35% of the values are anomalies.
pub fn simulator_default(plan: &SeriesPlan) -> Vec<Series> {
    let config = SimulatorConfig::default();
    plan.entity_rngs()
        .enumerate()
        .map(|(i, mut rng)| {
            let user_id = UserId(uuid::Uuid::from_u128(i as u128 + 1));
            let mut simulator = UserSimulator::new(user_id, config.clone(), rng.next_u64());
            (0..plan.len)
                .map(|k| {
                    // Dates only shape the ids, which are dropped here.
                    let at = OffsetDateTime::UNIX_EPOCH + Duration::minutes(k as i64);
                    let transaction = simulator.next_at(at);
                    Labeled {
                        value: transaction.amount.to_f64(),
                        is_anomaly: transaction.is_large,
                    }
                })
                .collect()
        })
        .collect()
}

/// Parameters of [`heavy_tailed`].
#[derive(Debug, Clone, PartialEq)]
pub struct HeavyTailed {
    /// Median of the ordinary amounts.
    pub median: f64,
    /// Standard deviation of the ordinary amounts' logarithm. At 1.0 one
    /// ordinary amount in 10 is above 3.6x the median and one in 100 above
    /// 10x: large, but legitimate.
    pub sigma: f64,
    /// Probability that a value is an anomaly.
    pub anomaly_probability: f64,
    /// An anomaly is uniform in `[min, max]` x the median...
    pub anomaly_min_multiple: f64,
    /// ...with these multiples. At 30x the median an ordinary amount
    /// reaches the smallest anomaly once in about 3,300 draws.
    pub anomaly_max_multiple: f64,
}

impl Default for HeavyTailed {
    /// Median 100, sigma 1.0, 2% anomalies at 30-100x the median.
    fn default() -> Self {
        HeavyTailed {
            median: 100.0,
            sigma: 1.0,
            anomaly_probability: 0.02,
            anomaly_min_multiple: 30.0,
            anomaly_max_multiple: 100.0,
        }
    }
}

/// Log-normal ordinary amounts with rare anomalies far beyond them; see
/// [`HeavyTailed`].
pub fn heavy_tailed(params: &HeavyTailed, plan: &SeriesPlan) -> Vec<Series> {
    plan.entity_rngs()
        .map(|mut rng| {
            (0..plan.len)
                .map(|_| {
                    if chance(&mut rng, params.anomaly_probability) {
                        let multiple = between(
                            &mut rng,
                            params.anomaly_min_multiple,
                            params.anomaly_max_multiple,
                        );
                        Labeled {
                            value: multiple * params.median,
                            is_anomaly: true,
                        }
                    } else {
                        let z: f64 = rng.sample(StandardNormal);
                        Labeled {
                            value: params.median * (params.sigma * z).exp(),
                            is_anomaly: false,
                        }
                    }
                })
                .collect()
        })
        .collect()
}

/// A normal distribution of ordinary amounts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// Mean amount.
    pub mean: f64,
    /// Standard deviation of the amounts.
    pub std_dev: f64,
}

/// Parameters of [`level_shift`].
#[derive(Debug, Clone, PartialEq)]
pub struct LevelShift {
    /// Where every entity starts.
    pub low: Level,
    /// Where it shifts to.
    pub high: Level,
    /// Every entity shifts between 1 and this many times, alternating low,
    /// high, low... at points uniform in the last 80% of its series (the
    /// first 20% is a settled history).
    pub max_shifts: usize,
    /// Ordinary amounts are at least this (amounts are positive).
    pub floor: f64,
    /// Probability that a value is a spike.
    pub anomaly_probability: f64,
    /// A spike is uniform in `[min, max]` x the current level's mean...
    pub spike_min_multiple: f64,
    /// ...with these multiples.
    pub spike_max_multiple: f64,
}

impl Default for LevelShift {
    /// N(100, 15) to N(400, 60), one or two shifts, 2% spikes at 6-10x.
    fn default() -> Self {
        LevelShift {
            low: Level {
                mean: 100.0,
                std_dev: 15.0,
            },
            high: Level {
                mean: 400.0,
                std_dev: 60.0,
            },
            max_shifts: 2,
            floor: 1.0,
            anomaly_probability: 0.02,
            spike_min_multiple: 6.0,
            spike_max_multiple: 10.0,
        }
    }
}

/// Entities whose ordinary level shifts; only spikes above the current level
/// are anomalies, the shifts are not. See [`LevelShift`].
pub fn level_shift(params: &LevelShift, plan: &SeriesPlan) -> Vec<Series> {
    plan.entity_rngs()
        .map(|mut rng| {
            let shifts = rng.random_range(1..=params.max_shifts.max(1));
            let settled = plan.len / 5;
            let mut shift_points: Vec<usize> = (0..shifts)
                .map(|_| settled + (between(&mut rng, 0.0, (plan.len - settled) as f64) as usize))
                .collect();
            shift_points.sort_unstable();
            // Two shifts at one point would cancel out: keep one.
            shift_points.dedup();
            (0..plan.len)
                .map(|k| {
                    let shifted = shift_points.iter().filter(|&&point| point <= k).count();
                    let level = if shifted % 2 == 0 {
                        params.low
                    } else {
                        params.high
                    };
                    if chance(&mut rng, params.anomaly_probability) {
                        let multiple = between(
                            &mut rng,
                            params.spike_min_multiple,
                            params.spike_max_multiple,
                        );
                        Labeled {
                            value: multiple * level.mean,
                            is_anomaly: true,
                        }
                    } else {
                        let z: f64 = rng.sample(StandardNormal);
                        Labeled {
                            value: (level.mean + level.std_dev * z).max(params.floor),
                            is_anomaly: false,
                        }
                    }
                })
                .collect()
        })
        .collect()
}

// Draws are written so that no parameter can make them panic (unlike
// `random_bool` and `random_range`): odd parameters give odd series.

pub(crate) fn chance(rng: &mut ChaCha8Rng, probability: f64) -> bool {
    rng.random::<f64>() < probability
}

pub(crate) fn between(rng: &mut ChaCha8Rng, min: f64, max: f64) -> f64 {
    min + (max - min) * rng.random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(entities: usize, len: usize, seed: u64) -> SeriesPlan {
        SeriesPlan {
            entities,
            len,
            seed,
        }
    }

    fn anomaly_share(series: &[Series]) -> f64 {
        let all: Vec<&Labeled> = series.iter().flatten().collect();
        all.iter().filter(|l| l.is_anomaly).count() as f64 / all.len() as f64
    }

    #[test]
    fn every_scenario_makes_the_planned_shape_and_a_seed_reproduces_it() {
        for scenario in Scenario::ALL {
            let a = scenario.generate(&plan(5, 200, 1));
            assert_eq!(a.len(), 5, "{}", scenario.as_str());
            assert!(a.iter().all(|s| s.len() == 200), "{}", scenario.as_str());
            assert_eq!(a, scenario.generate(&plan(5, 200, 1)));
            assert_ne!(a, scenario.generate(&plan(5, 200, 2)));
        }
    }

    #[test]
    fn a_larger_plan_starts_with_the_smaller_plans_entities() {
        for scenario in Scenario::ALL {
            let small = scenario.generate(&plan(3, 100, 9));
            let large = scenario.generate(&plan(6, 100, 9));
            assert_eq!(small[..], large[..3], "{}", scenario.as_str());
        }
    }

    #[test]
    fn anomaly_shares_match_the_documented_probabilities() {
        let p = plan(20, 1000, 3);
        let check = |scenario: Scenario, expected: std::ops::Range<f64>| {
            let share = anomaly_share(&scenario.generate(&p));
            assert!(
                expected.contains(&share),
                "{}: anomaly share {share}",
                scenario.as_str()
            );
        };
        check(Scenario::SimulatorDefault, 0.33..0.37);
        check(Scenario::HeavyTailed, 0.017..0.023);
        check(Scenario::LevelShift, 0.017..0.023);
    }

    #[test]
    fn heavy_tailed_ordinary_amounts_are_log_normal_around_the_median() {
        let series = heavy_tailed(&HeavyTailed::default(), &plan(20, 1000, 4));
        let mut ordinary: Vec<f64> = series
            .iter()
            .flatten()
            .filter(|l| !l.is_anomaly)
            .map(|l| l.value)
            .collect();
        ordinary.sort_by(f64::total_cmp);
        let median = ordinary[ordinary.len() / 2];
        assert!((90.0..110.0).contains(&median), "median {median}");
        // exp(1.2816) = 3.6: one ordinary amount in ten is above 3.6x the median.
        let above = ordinary.iter().filter(|&&v| v > 360.0).count() as f64;
        let share = above / ordinary.len() as f64;
        assert!((0.08..0.12).contains(&share), "share above 3.6x {share}");
        let anomalies = series.iter().flatten().filter(|l| l.is_anomaly);
        assert!(anomalies.clone().count() > 0);
        assert!(
            anomalies
                .clone()
                .all(|l| (3000.0..=10_000.0).contains(&l.value))
        );
    }

    #[test]
    fn level_shift_entities_shift_up_and_spikes_sit_above_the_current_level() {
        let params = LevelShift::default();
        let series = level_shift(&params, &plan(30, 500, 5));
        for entity in &series {
            let ordinary: Vec<f64> = entity
                .iter()
                .filter(|l| !l.is_anomaly)
                .map(|l| l.value)
                .collect();
            let settled = &ordinary[..90];
            let mean = settled.iter().sum::<f64>() / settled.len() as f64;
            assert!((90.0..110.0).contains(&mean), "settled mean {mean}");
            assert!(
                ordinary.iter().any(|&v| v > 250.0),
                "an entity never reached the high level"
            );
            for spike in entity.iter().filter(|l| l.is_anomaly) {
                assert!(
                    (600.0..=1000.0).contains(&spike.value)
                        || (2400.0..=4000.0).contains(&spike.value),
                    "spike {}",
                    spike.value
                );
            }
        }
    }

    #[test]
    fn simulator_default_labels_are_the_simulators_large_amounts() {
        let series = simulator_default(&plan(3, 500, 6));
        for l in series.iter().flatten() {
            if l.is_anomaly {
                assert!((5000.0..=10_000.0).contains(&l.value), "{}", l.value);
            } else {
                assert!((10.0..=500.0).contains(&l.value), "{}", l.value);
            }
        }
    }
}
