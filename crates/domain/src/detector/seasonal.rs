//! A seasonal baseline: level, time of day and day of week, robust spread.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::calibration::{RELATIVE_FLOOR, score_from_ln_p};
use super::ring::Ring;
use super::robust::{LOG_FLOOR_MAX, MEAN_AD_TO_SIGMA, RobustScale};
use super::run::Run;
use super::{Detector, DetectorConfigError, Score, Verdict, calibration, standard_units};

/// Slots of the day: half hours.
const DAY_SLOTS: usize = 48;
const SECONDS_PER_SLOT: i64 = 86_400 / DAY_SLOTS as i64;
/// Weight of the newest residual in the level.
const LEVEL_RATE: f64 = 0.05;
/// Weight of the newest residual (what the level did not take) in its half
/// hour's effect, per half hour of data, and in its weekday's effect, per
/// day of data: a value stands for the time since the one before it (the
/// typical gap), so the effects learn at the same pace in time whether
/// values come every minute or every few hours.
const DAY_RATE: f64 = 0.1;
const WEEK_RATE: f64 = 0.2;
/// Weight of the newest gap in the typical gap between values.
const GAP_RATE: f64 = 0.05;
/// Residuals kept to calibrate against (see [`Seasonal`]).
const CALIBRATION: usize = 100;
/// A residual is calibrated by rank only when at least this many past ones
/// were as large; rarer ones by the normal tail's decay from the
/// `TAIL_RANK`-th largest, so up to `TAIL_RANK - 1` earlier spikes among
/// the past residuals do not make the next spike look ordinary.
const TAIL_RANK: usize = 4;
/// Standard units of the `TAIL_RANK`-th farthest of [`CALIBRATION`] normal
/// residuals on one side: the two-sided tail `2 x 4 / 101` is at 1.75.
const ANCHOR_UNITS: f64 = 1.75;
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
/// timestamps' own wall-clock time, at a pace set in time rather than in
/// values (it measures the typical gap between values); without times
/// ([`Detector::observe`]) it is a robust exponentially weighted baseline.
///
/// Its tail probability is the larger of the normal tail of the
/// standardized residual and an empirical one: the share of the last 100
/// residuals on the same side at least as large (conformal, counting
/// itself), extended beyond the fourth largest of them by the normal tail's
/// decay (so up to three earlier spikes do not hide the next). So
/// ordinary values that a normal model calls rare, because the series is a
/// mixture (a subscription amount repeated exactly, and now and then
/// another fixed amount), are scored as often as they really come. Flags a
/// value when its score is above 0.5 (below one in a thousand). Default
/// minimum history: 30 values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seasonal {
    min_history: usize,
}

/// What [`Seasonal`] remembers: about 160 numbers.
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
    /// The last time learned, in local seconds, and the typical gap.
    last_at: Option<i64>,
    gap: f64,
    /// The last residuals (signed, on the log scale).
    residuals: Ring,
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

    /// The verdict on `value`, and its residual (0 while warming up).
    fn judge(&self, state: &SeasonalState, at: Option<Slot>, value: f64) -> (Verdict, f64) {
        if state.count < self.min_history {
            return (Verdict::NotEnoughHistory { have: state.count }, 0.0);
        }
        let scale = RobustScale::Log;
        let y = scale.forward(value);
        let (center, sigma) = match state.run.flat_over(self.min_history) {
            Some(flat) => (scale.forward(flat), 0.0),
            None => (state.expected(at), state.spread * MEAN_AD_TO_SIGMA),
        };
        let sigma = floored(sigma, center);
        let z = standard_units(y, center, sigma);
        let score = if z == 0.0 {
            0.0
        } else {
            score_from_ln_p(calibrated_ln_p(&state.residuals, y - center, sigma))
        };
        let verdict = Verdict::Scored(Score {
            is_anomaly: score > 0.5,
            score,
            window_len: state.count,
            baseline: scale.back(center),
            threshold: scale.back(center + Z_AT_HALF * sigma),
        });
        (verdict, if z == 0.0 { 0.0 } else { y - center })
    }

    fn learn(&self, state: &mut SeasonalState, at: Option<(Slot, i64)>, value: f64, r: f64) {
        if !value.is_finite() {
            return;
        }
        let y = RobustScale::Log.forward(value);
        state.run.push(value);
        state.count = state.count.saturating_add(1);
        if let Some((_, seconds)) = at {
            if let Some(last) = state.last_at {
                let gap = (seconds - last).clamp(0, 7 * 86_400) as f64;
                state.gap = if state.gap > 0.0 {
                    state.gap + GAP_RATE * (gap - state.gap)
                } else {
                    gap
                };
            }
            state.last_at = Some(seconds);
        }
        if state.count == 1 {
            state.level = y;
            return;
        }
        if state.count > self.min_history && r.is_finite() {
            state.residuals.push(r);
        }
        let slot = at.map(|(slot, _)| slot);
        let residual = y - state.expected(slot);
        let limit = CLIP * floored(state.spread * MEAN_AD_TO_SIGMA, state.level);
        // While it warms up nothing is clipped: the spread is still forming.
        let clipped = if state.count > self.min_history {
            residual.clamp(-limit, limit)
        } else {
            residual
        };
        state.level += LEVEL_RATE * clipped;
        if let Some(slot) = slot {
            let rest = (1.0 - LEVEL_RATE) * clipped;
            let gap = state.gap.max(1.0);
            state.day[slot.day] += DAY_RATE * (gap / SECONDS_PER_SLOT as f64).min(1.0) * rest;
            state.week[slot.week] += WEEK_RATE * (gap / 86_400.0).min(1.0) * rest;
        }
        let deviation = if state.count > self.min_history {
            residual.abs().min(2.0 * limit)
        } else {
            residual.abs()
        };
        state.spread += SPREAD_RATE * (deviation - state.spread);
    }
}

/// `ln p` for a signed residual `r` (on the log scale) with spread
/// `sigma`: the larger of the normal two-sided tail of `r / sigma` and an
/// empirical two-sided tail from the `past` residuals on the same side: by
/// rank (conformal, `2 (1 + #{same side, at least as far}) / (n + 1)`) when
/// at least [`TAIL_RANK`] past residuals were as far, else `2 TAIL_RANK /
/// (n + 1)` times the normal tail's decay from the `TAIL_RANK`-th farthest
/// on that side (with a spread of at least that residual over
/// [`ANCHOR_UNITS`]). Ranks are of raw residuals, not standardized ones: the
/// spread of a mixture (one amount repeated, another now and then) shrinks
/// during each run of repeats, but the other amount's residual stays what
/// it was. The side matters: a small fixed fee far below the usual amount
/// does not make amounts far above it ordinary.
fn calibrated_ln_p(past: &Ring, r: f64, sigma: f64) -> f64 {
    let distance = r.abs();
    let normal = calibration::ln_normal_two_sided(distance / sigma);
    let n = past.len();
    if n < TAIL_RANK {
        return normal;
    }
    let (older, newer) = past.as_slices();
    // As far on r's side (r is not 0 here: a residual of 0 scores 0): one
    // comparison per residual, which the compiler vectorizes.
    let at_least = if r > 0.0 {
        older
            .iter()
            .chain(newer)
            .filter(|p| **p >= distance)
            .count()
    } else {
        older
            .iter()
            .chain(newer)
            .filter(|p| **p <= -distance)
            .count()
    };
    // The TAIL_RANK farthest on r's side, farthest first (only needed when
    // fewer than TAIL_RANK were as far).
    let mut top = [f64::NEG_INFINITY; TAIL_RANK];
    if at_least < TAIL_RANK {
        let sign = if r > 0.0 { 1.0 } else { -1.0 };
        for p in older.iter().chain(newer) {
            let p = sign * p;
            if p > top[TAIL_RANK - 1] {
                let mut k = TAIL_RANK - 1;
                while k > 0 && top[k - 1] < p {
                    top[k] = top[k - 1];
                    k -= 1;
                }
                top[k] = p;
            }
        }
    }
    let slots = (n + 1) as f64;
    let empirical = if at_least >= TAIL_RANK {
        (2.0 * (at_least + 1) as f64 / slots).ln()
    } else if top[TAIL_RANK - 1] > 0.0 {
        // The normal tail's decay from the TAIL_RANK-th farthest, with a
        // spread of at least what that residual implies: among 100 normal
        // residuals, the fourth farthest on one side is about 1.75 spreads
        // out. A mixture whose spread shrinks between its rarer values is
        // thus judged by how far those values go, not by its quiet runs.
        let anchor = top[TAIL_RANK - 1];
        let spread = sigma.max(anchor / ANCHOR_UNITS);
        (2.0 * TAIL_RANK as f64 / slots).ln() + calibration::ln_normal_two_sided(distance / spread)
            - calibration::ln_normal_two_sided(anchor / spread)
    } else {
        normal
    };
    normal.max(empirical).min(0.0)
}

/// Where a time falls in the day and the week.
#[derive(Debug, Clone, Copy)]
struct Slot {
    day: usize,
    week: usize,
}

impl Slot {
    /// The slot of `at`, and `at` in local seconds since 1970.
    fn at(at: OffsetDateTime) -> (Slot, i64) {
        let local = at.unix_timestamp() + i64::from(at.offset().whole_seconds());
        (Slot::of_local(local), local)
    }

    fn of_local(local: i64) -> Slot {
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

/// `spread`, but at least [`floor`]`(center)`; the floor's exp and ln are
/// skipped when the spread is above the largest floor.
fn floored(spread: f64, center: f64) -> f64 {
    if spread >= LOG_FLOOR_MAX {
        spread
    } else {
        spread.max(floor(center))
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
            last_at: None,
            gap: 0.0,
            residuals: Ring::new(CALIBRATION),
        }
    }

    fn score(&self, state: &SeasonalState, value: f64) -> Verdict {
        self.judge(state, None, value).0
    }

    fn update(&self, state: &mut SeasonalState, value: f64) {
        let (_, z) = self.judge(state, None, value);
        self.learn(state, None, value, z);
    }

    fn observe(&self, state: &mut SeasonalState, value: f64) -> Verdict {
        let (verdict, z) = self.judge(state, None, value);
        self.learn(state, None, value, z);
        verdict
    }

    fn uses_time(&self) -> bool {
        true
    }

    fn score_at(&self, state: &SeasonalState, at: OffsetDateTime, value: f64) -> Verdict {
        self.judge(state, Some(Slot::at(at).0), value).0
    }

    fn update_at(&self, state: &mut SeasonalState, at: OffsetDateTime, value: f64) {
        let at = Slot::at(at);
        let (_, z) = self.judge(state, Some(at.0), value);
        self.learn(state, Some(at), value, z);
    }

    fn observe_at(&self, state: &mut SeasonalState, at: OffsetDateTime, value: f64) -> Verdict {
        let at = Slot::at(at);
        let (verdict, z) = self.judge(state, Some(at.0), value);
        self.learn(state, Some(at), value, z);
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
            let slot = Slot::at(at).0;
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
