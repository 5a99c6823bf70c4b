//! Labelled, timestamped series in the shapes real monitoring and payment
//! series take, for the windowed quality benchmark ([`crate::windowed`]).
//!
//! Each [`Shape`] makes one [`Case`] per entity: points with times, and the
//! anomaly windows, one per labelled anomaly, starting at the anomalous
//! row. Entity `i` draws from its own ChaCha8 generator seeded from the
//! plan's seed, as in [`crate::scenario`], so a seed reproduces every value.
//! Anomalies are placed after a settled start (a fifth of the series, at
//! least 100 points), and windows never overlap.

use std::ops::Range;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Poisson, StandardNormal};
use time::{Duration, OffsetDateTime};

use crate::scenario::{SeriesPlan, between, chance};

/// One observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// When it happened.
    pub at: OffsetDateTime,
    /// The value a detector sees.
    pub value: f64,
}

/// One entity's series and its labelled anomalies.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Oldest first.
    pub points: Vec<Point>,
    /// One window of rows per labelled anomaly, starting at the anomalous
    /// row, in order, not overlapping.
    pub windows: Vec<Range<usize>>,
}

/// The shapes, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// A constant (to the cent) that steps to another level once.
    FlatStep,
    /// A constant with jitter of 0.05%, and rare jumps of 20-100%.
    FlatJitter,
    /// Half-hourly values with a daytime hump and quiet weekends; spikes,
    /// and daytime amounts at night.
    DailyWeekly,
    /// Normal noise at scales from 0.1 to 1000; spikes of 5-10 sd.
    SpikesInNoise,
    /// Normal noise whose level shifts by 4-8 sd once or twice.
    LevelShifts,
    /// Normal noise whose spread grows 3-6 times once.
    SpreadChange,
    /// A level that drifts up by 50-200% over the series; a late spike.
    SlowDrift,
    /// Poisson counts (mean 1-20); bursts of 4-8 times the mean.
    IntegerCounts,
    /// A subscription-like amount repeated exactly, a few other fixed
    /// amounts, and a rare large payment; irregular times.
    RepeatedAmounts,
}

impl Shape {
    /// Every shape, in the order documented.
    pub const ALL: [Shape; 9] = [
        Shape::FlatStep,
        Shape::FlatJitter,
        Shape::DailyWeekly,
        Shape::SpikesInNoise,
        Shape::LevelShifts,
        Shape::SpreadChange,
        Shape::SlowDrift,
        Shape::IntegerCounts,
        Shape::RepeatedAmounts,
    ];

    /// A short snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Shape::FlatStep => "flat_step",
            Shape::FlatJitter => "flat_jitter",
            Shape::DailyWeekly => "daily_weekly",
            Shape::SpikesInNoise => "spikes_in_noise",
            Shape::LevelShifts => "level_shifts",
            Shape::SpreadChange => "spread_change",
            Shape::SlowDrift => "slow_drift",
            Shape::IntegerCounts => "integer_counts",
            Shape::RepeatedAmounts => "repeated_amounts",
        }
    }

    /// What the shape generates and what is labelled, in a line.
    pub fn description(&self) -> &'static str {
        match self {
            Shape::FlatStep => {
                "a constant (5-5000, to the cent) that steps once to 1.3-3x or 0.3-0.75x; the step is the anomaly (window 24)"
            }
            Shape::FlatJitter => {
                "a constant with 0.05% jitter (to the cent); 0.5% jumps to 1.2-2x or 0.3-0.8x (window 6)"
            }
            Shape::DailyWeekly => {
                "half-hourly, a daytime hump (x3.3 at 13:00) and weekends at half; 0.4% anomalies: spikes of 2.5-5x the hour's level, or the day's peak at night (window 4)"
            }
            Shape::SpikesInNoise => {
                "N(100 s, 10 s), s from 0.1 to 1000 per entity; 1% spikes of 5-10 sd either way (window 4)"
            }
            Shape::LevelShifts => {
                "N(m, 2-10% of m) shifting once or twice by 4-8 sd; the shifts are the anomalies (window 24)"
            }
            Shape::SpreadChange => {
                "N(m, 3% of m) whose sd grows 3-6x once; the change is the anomaly (window 48)"
            }
            Shape::SlowDrift => {
                "a level drifting up 50-200% over the series, noise 3%; one spike of 6-10 sd in the last 15% (window 4)"
            }
            Shape::IntegerCounts => {
                "Poisson counts, mean 1-20; 0.5% bursts of 4-8x the mean plus 5 (window 4)"
            }
            Shape::RepeatedAmounts => {
                "payments every 4 h on average: 85% one subscription amount exactly, the rest 3 other fixed amounts; 0.5% at 10-40x it (window 3)"
            }
        }
    }

    /// One case per entity of `plan`.
    pub fn generate(&self, plan: &SeriesPlan) -> Vec<Case> {
        plan.entity_rngs()
            .map(|mut rng| {
                let mut maker = Maker::new(plan.len);
                self.fill(&mut rng, &mut maker);
                maker.case
            })
            .collect()
    }

    fn fill(&self, rng: &mut ChaCha8Rng, m: &mut Maker) {
        let len = m.len;
        match self {
            Shape::FlatStep => {
                let level = cents(between(rng, 5.0, 5000.0));
                let step = rng.random_range(m.settled..len - 50);
                let factor = if chance(rng, 0.5) {
                    between(rng, 1.3, 3.0)
                } else {
                    between(rng, 0.3, 0.75)
                };
                let after = cents(level * factor);
                m.window(step, 24);
                for i in 0..len {
                    m.push_every(300, if i < step { level } else { after });
                }
            }
            Shape::FlatJitter => {
                let level = between(rng, 5.0, 5000.0);
                for i in 0..len {
                    let mut value = level * (1.0 + 0.0005 * normal(rng));
                    if m.spike(rng, i, 0.005, 6) {
                        value = level
                            * if chance(rng, 0.5) {
                                between(rng, 1.2, 2.0)
                            } else {
                                between(rng, 0.3, 0.8)
                            };
                    }
                    m.push_every(300, cents(value));
                }
            }
            Shape::DailyWeekly => {
                let base = between(rng, 50.0, 500.0);
                for i in 0..len {
                    let at = m.start + Duration::minutes(30 * i as i64);
                    let hour = f64::from(at.hour()) + f64::from(at.minute()) / 60.0;
                    let weekend = matches!(
                        at.weekday(),
                        time::Weekday::Saturday | time::Weekday::Sunday
                    );
                    let hump = 0.3 + 0.7 * (-((hour - 13.0) / 4.0).powi(2)).exp();
                    let level = base * hump * if weekend { 0.5 } else { 1.0 };
                    let mut value = level * (1.0 + 0.08 * normal(rng));
                    if hump < 0.4 && chance(rng, 0.5) {
                        // The day's peak at night: ordinary at noon.
                        if m.spike(rng, i, 0.008, 4) {
                            value = base * (1.0 + 0.05 * normal(rng));
                        }
                    } else if m.spike(rng, i, 0.004, 4) {
                        value = level * between(rng, 2.5, 5.0);
                    }
                    m.push_at(at, cents(value.max(0.01)));
                }
            }
            Shape::SpikesInNoise => {
                let scale = 10f64.powf(between(rng, -1.0, 3.0));
                for i in 0..len {
                    let mut value = scale * (100.0 + 10.0 * normal(rng));
                    if m.spike(rng, i, 0.01, 4) {
                        let sign = if chance(rng, 0.5) { 1.0 } else { -1.0 };
                        value = scale * (100.0 + sign * 10.0 * between(rng, 5.0, 10.0));
                    }
                    m.push_every(300, value);
                }
            }
            Shape::LevelShifts => {
                let mean = between(rng, 50.0, 5000.0);
                let sd = mean * between(rng, 0.02, 0.1);
                let shifts = rng.random_range(1..=2);
                let mut points: Vec<usize> = Vec::new();
                while points.len() < shifts {
                    let p = rng.random_range(m.settled..len - 60);
                    if points.iter().all(|q| q.abs_diff(p) > 150) {
                        points.push(p);
                    }
                }
                points.sort_unstable();
                let mut level = mean;
                let mut next = points.iter().peekable();
                for i in 0..len {
                    if next.peek().is_some_and(|p| **p == i) {
                        next.next();
                        let sign = if chance(rng, 0.5) { 1.0 } else { -1.0 };
                        level += sign * sd * between(rng, 4.0, 8.0);
                        m.window(i, 24);
                    }
                    m.push_every(300, level + sd * normal(rng));
                }
            }
            Shape::SpreadChange => {
                let mean = between(rng, 50.0, 5000.0);
                let sd = mean * 0.03;
                let change = rng.random_range(m.settled..len - 100);
                let factor = between(rng, 3.0, 6.0);
                m.window(change, 48);
                for i in 0..len {
                    let spread = if i < change { sd } else { sd * factor };
                    m.push_every(300, mean + spread * normal(rng));
                }
            }
            Shape::SlowDrift => {
                let start = between(rng, 50.0, 5000.0);
                let growth = between(rng, 0.5, 2.0);
                let sd = start * 0.03;
                let late = rng.random_range(len * 85 / 100..len * 95 / 100);
                m.window(late, 4);
                for i in 0..len {
                    let level = start * (1.0 + growth * i as f64 / len as f64);
                    let mut value = level + sd * normal(rng);
                    if i == late {
                        let sign = if chance(rng, 0.5) { 1.0 } else { -1.0 };
                        value = level + sign * sd * between(rng, 6.0, 10.0);
                    }
                    m.push_every(300, value);
                }
            }
            Shape::IntegerCounts => {
                let mean = between(rng, 1.0, 20.0);
                let poisson = Poisson::new(mean).expect("a positive mean");
                for i in 0..len {
                    let mut value: f64 = poisson.sample(rng);
                    if m.spike(rng, i, 0.005, 4) {
                        value = (mean * between(rng, 4.0, 8.0) + 5.0).round();
                    }
                    m.push_every(300, value);
                }
            }
            Shape::RepeatedAmounts => {
                let prices = [4.99, 9.99, 14.99, 19.99, 49.0, 120.0];
                let price = prices[rng.random_range(0..prices.len())];
                let others = [cents(price * 2.0), cents(price / 2.0), 1.5];
                let gap = Exp::new(1.0 / (4.0 * 3600.0)).expect("a positive rate");
                let mut at = m.start;
                for i in 0..len {
                    at += Duration::seconds(gap.sample(rng) as i64 + 1);
                    let mut value = if chance(rng, 0.85) {
                        price
                    } else {
                        others[rng.random_range(0..others.len())]
                    };
                    if m.spike(rng, i, 0.005, 3) {
                        value = cents(price * between(rng, 10.0, 40.0));
                    }
                    m.push_at(at, value);
                }
            }
        }
    }
}

/// Builds one case.
struct Maker {
    len: usize,
    settled: usize,
    start: OffsetDateTime,
    case: Case,
}

impl Maker {
    fn new(len: usize) -> Maker {
        Maker {
            len,
            settled: (len / 5).max(100).min(len.saturating_sub(60)),
            // A Monday, midnight UTC.
            start: OffsetDateTime::UNIX_EPOCH + Duration::days(19_723),
            case: Case {
                points: Vec::with_capacity(len),
                windows: Vec::new(),
            },
        }
    }

    /// Opens a window of `width` rows at `at` (cut at the series' end).
    fn window(&mut self, at: usize, width: usize) {
        self.case.windows.push(at..(at + width).min(self.len));
    }

    /// Whether row `i` becomes an anomaly, with `probability`, once the
    /// series has settled and outside any earlier window; opens its window.
    fn spike(&mut self, rng: &mut ChaCha8Rng, i: usize, probability: f64, width: usize) -> bool {
        let free = self.case.windows.last().is_none_or(|w| w.end <= i);
        if i >= self.settled && free && chance(rng, probability) {
            self.window(i, width);
            true
        } else {
            false
        }
    }

    /// Appends a value `seconds` after the previous one.
    fn push_every(&mut self, seconds: i64, value: f64) {
        let at = self.start + Duration::seconds(seconds * self.case.points.len() as i64);
        self.push_at(at, value);
    }

    fn push_at(&mut self, at: OffsetDateTime, value: f64) {
        self.case.points.push(Point { at, value });
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample(StandardNormal)
}

/// Rounded to the cent, as amounts are.
fn cents(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
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

    #[test]
    fn every_shape_makes_the_planned_cases_with_windows_inside_and_apart() {
        for shape in Shape::ALL {
            let cases = shape.generate(&plan(6, 600, 1));
            assert_eq!(cases.len(), 6, "{}", shape.as_str());
            assert_eq!(cases, shape.generate(&plan(6, 600, 1)));
            assert_ne!(cases, shape.generate(&plan(6, 600, 2)));
            let windows: usize = cases.iter().map(|c| c.windows.len()).sum();
            assert!(windows >= 6, "{}: {windows} windows", shape.as_str());
            for case in &cases {
                assert_eq!(case.points.len(), 600);
                assert!(case.points.windows(2).all(|p| p[0].at < p[1].at));
                assert!(case.points.iter().all(|p| p.value.is_finite()));
                for pair in case.windows.windows(2) {
                    assert!(pair[0].end <= pair[1].start, "{}", shape.as_str());
                }
                for window in &case.windows {
                    assert!(window.start >= 100 && window.end <= 600 && !window.is_empty());
                }
            }
        }
    }

    #[test]
    fn flat_shapes_are_exact_constants_between_their_anomalies() {
        for case in Shape::FlatStep.generate(&plan(5, 400, 3)) {
            let step = case.windows[0].start;
            let before = case.points[0].value;
            assert!(case.points[..step].iter().all(|p| p.value == before));
            let after = case.points[step].value;
            assert_ne!(after, before);
            assert!(case.points[step..].iter().all(|p| p.value == after));
        }
    }
}
