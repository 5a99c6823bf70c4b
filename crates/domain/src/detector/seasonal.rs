//! A seasonal baseline: level, time of day and day of week, robust spread.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::calibration::{RELATIVE_FLOOR, score_from_ln_p};
use super::robust::{MEAN_AD_TO_SIGMA, RobustScale};
use super::run::Run;
use super::{Detector, DetectorConfigError, Score, Verdict, calibration, standard_units};

/// Slots of the day: half hours.
const DAY_SLOTS: usize = 48;
const SECONDS_PER_SLOT: i64 = 86_400 / DAY_SLOTS as i64;
/// Weight of the newest residual in the level.
const LEVEL_RATE: f64 = 0.05;
/// Weight of the newest residual in its half hour's and its weekday's
/// effect (what the level did not take).
const DAY_RATE: f64 = 0.1;
const WEEK_RATE: f64 = 0.05;
/// Weight of the newest absolute residual in the spread.
const SPREAD_RATE: f64 = 0.05;
/// Residuals are clipped at this many spreads before they are learned, so
/// a spike moves neither the baseline nor the spread much (a Huber-type
/// update), while a lasting change is followed.
const CLIP: f64 = 3.0;
/// Standard units of a two-sided tail of one in a thousand (score 0.5).
const Z_AT_HALF: f64 = 3.290_526_731_491_926;

/// Flags a value far from a baseline that knows the time of day (48 half
/// hours) and the day of the week: `level + day[half hour] + week[weekday]`,
/// on a signed log scale (amounts are multiplicative: a busy hour doubles
/// them rather than adds a constant), with a robust spread (the
/// exponentially weighted mean absolute residual; residuals are clipped at
/// 3 spreads before they are learned, so spikes teach it little). Made for
/// payment-like and monitoring series with a daily and weekly rhythm.
///
/// Given times ([`Detector::observe_at`]) it learns the rhythm in the
/// timestamps' own wall-clock time; without them
/// ([`Detector::observe`]) it is a robust exponentially weighted baseline.
/// Flags a value when its score is above 0.5 (a two-sided normal tail below
/// one in a thousand). Default minimum history: 30 values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seasonal {
    min_history: usize,
}

/// What [`Seasonal`] remembers: 58 numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeasonalState {
    level: f64,
    /// Effect of each half hour of the day.
    day: Vec<f64>,
    /// Effect of each weekday, Monday first.
    week: Vec<f64>,
    /// Mean absolute residual.
    spread: f64,
    count: usize,
    run: Run,
}

impl Default for Seasonal {
    fn default() -> Self {
        Seasonal { min_history: 30 }
    }
}

impl Seasonal {
    /// A detector that judges once `min_history` values were seen.
    ///
    /// # Errors
    /// [`DetectorConfigError::MinHistoryTooSmall`] below 2.
    pub fn try_new(min_history: usize) -> Result<Seasonal, DetectorConfigError> {
        if min_history < 2 {
            return Err(DetectorConfigError::MinHistoryTooSmall {
                min_history,
                least: 2,
            });
        }
        Ok(Seasonal { min_history })
    }

    /// Values needed before anything is judged.
    pub fn min_history(&self) -> usize {
        self.min_history
    }

    fn judge(&self, state: &SeasonalState, at: Option<Slot>, value: f64) -> Verdict {
        if state.count < self.min_history {
            return Verdict::NotEnoughHistory { have: state.count };
        }
        let scale = RobustScale::Log;
        let y = scale.forward(value);
        let (center, sigma) = match state.run.flat_over(self.min_history) {
            Some(flat) => (scale.forward(flat), 0.0),
            None => (state.expected(at), state.spread * MEAN_AD_TO_SIGMA),
        };
        let sigma = sigma.max(floor(center));
        let z = standard_units(y, center, sigma);
        let score = if z == 0.0 {
            0.0
        } else {
            score_from_ln_p(calibration::ln_normal_two_sided(z))
        };
        Verdict::Scored(Score {
            is_anomaly: score > 0.5,
            score,
            window_len: state.count,
            baseline: scale.back(center),
            threshold: scale.back(center + Z_AT_HALF * sigma),
        })
    }

    fn learn(&self, state: &mut SeasonalState, at: Option<Slot>, value: f64) {
        if !value.is_finite() {
            return;
        }
        let y = RobustScale::Log.forward(value);
        state.run.push(value);
        state.count = state.count.saturating_add(1);
        if state.count == 1 {
            state.level = y;
            return;
        }
        let residual = y - state.expected(at);
        let limit = CLIP * (state.spread * MEAN_AD_TO_SIGMA).max(floor(state.level));
        // While it warms up nothing is clipped: the spread is still forming.
        let clipped = if state.count > self.min_history {
            residual.clamp(-limit, limit)
        } else {
            residual
        };
        state.level += LEVEL_RATE * clipped;
        if let Some(slot) = at {
            let rest = (1.0 - LEVEL_RATE) * clipped;
            state.day[slot.day] += DAY_RATE * rest;
            state.week[slot.week] += WEEK_RATE * rest;
        }
        let deviation = if state.count > self.min_history {
            residual.abs().min(2.0 * limit)
        } else {
            residual.abs()
        };
        state.spread += SPREAD_RATE * (deviation - state.spread);
    }
}

/// Where a time falls in the day and the week.
#[derive(Debug, Clone, Copy)]
struct Slot {
    day: usize,
    week: usize,
}

impl Slot {
    fn of(at: OffsetDateTime) -> Slot {
        let local = at.unix_timestamp() + i64::from(at.offset().whole_seconds());
        let days = local.div_euclid(86_400);
        Slot {
            day: (local.rem_euclid(86_400) / SECONDS_PER_SLOT) as usize,
            // 1970-01-01 was a Thursday (index 3, Monday being 0).
            week: (days + 3).rem_euclid(7) as usize,
        }
    }
}

impl SeasonalState {
    fn expected(&self, at: Option<Slot>) -> f64 {
        match at {
            Some(slot) => self.level + self.day[slot.day] + self.week[slot.week],
            None => self.level,
        }
    }
}

/// The least spread on the log scale around `center`: that of a 1% move.
fn floor(center: f64) -> f64 {
    let scale = RobustScale::Log;
    let level = scale.back(center);
    (scale.forward(level * (1.0 + RELATIVE_FLOOR)) - center).abs()
}

impl Detector for Seasonal {
    type State = SeasonalState;

    fn new_state(&self) -> SeasonalState {
        SeasonalState {
            level: 0.0,
            day: vec![0.0; DAY_SLOTS],
            week: vec![0.0; 7],
            spread: 0.0,
            count: 0,
            run: Run::default(),
        }
    }

    fn score(&self, state: &SeasonalState, value: f64) -> Verdict {
        self.judge(state, None, value)
    }

    fn update(&self, state: &mut SeasonalState, value: f64) {
        self.learn(state, None, value);
    }

    fn uses_time(&self) -> bool {
        true
    }

    fn score_at(&self, state: &SeasonalState, at: OffsetDateTime, value: f64) -> Verdict {
        self.judge(state, Some(Slot::of(at)), value)
    }

    fn update_at(&self, state: &mut SeasonalState, at: OffsetDateTime, value: f64) {
        self.learn(state, Some(Slot::of(at)), value);
    }

    fn observe_at(&self, state: &mut SeasonalState, at: OffsetDateTime, value: f64) -> Verdict {
        let slot = Some(Slot::of(at));
        let verdict = self.judge(state, slot, value);
        self.learn(state, slot, value);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn slots_follow_the_timestamps_own_wall_clock() {
        let check = |at: OffsetDateTime, day: usize, week: usize| {
            let slot = Slot::of(at);
            assert_eq!((slot.day, slot.week), (day, week), "{at}");
        };
        check(datetime!(1970-01-01 00:00 UTC), 0, 3);
        check(datetime!(2024-01-01 00:29:59 UTC), 0, 0); // a Monday
        check(datetime!(2024-01-07 23:30 UTC), 47, 6); // a Sunday
        check(datetime!(2024-01-01 09:00 +05:30), 18, 0);
        check(datetime!(1969-12-31 23:45 UTC), 47, 2);
    }

    #[test]
    fn a_value_at_a_busy_hour_is_ordinary_and_the_same_value_at_night_is_not() {
        let detector = Seasonal::default();
        let mut state = detector.new_state();
        let start = datetime!(2024-01-01 00:00 UTC);
        // Four weeks, hourly: 1,000 from 9:00 to 17:00, 100 otherwise.
        for hour in 0..24 * 28 {
            let at = start + time::Duration::hours(hour);
            let busy = (9..17).contains(&(hour % 24));
            let wobble = [0.97, 1.0, 1.04, 0.99, 1.02][(hour % 5) as usize];
            let value = if busy { 1_000.0 } else { 100.0 } * wobble;
            detector.observe_at(&mut state, at, value);
        }
        let noon = start + time::Duration::days(28) + time::Duration::hours(12);
        let night = noon + time::Duration::hours(12);
        assert!(!detector.score_at(&state, noon, 1_000.0).is_anomaly());
        assert!(detector.score_at(&state, night, 1_000.0).is_anomaly());
        assert!(!detector.score_at(&state, night, 100.0).is_anomaly());
    }
}
