//! The windowed quality metric: how a detector would serve someone who sets
//! one alert threshold for many series.
//!
//! Each labelled anomaly owns a window of rows ([`Case::windows`]). At a
//! threshold, a row alarms when its score is at least the threshold. The
//! earliest alarm in a window earns `r(y) = (1 + e^-2.5) / (1 + e^(5 (y -
//! 0.5)))`, where `y` is its position in the window (0 for the first row,
//! so 1.0 there, 0.54 half way, 0.08 at the end); later alarms in the same
//! window cost nothing. A window without an alarm costs 1. Each alarm row
//! outside every window costs [`Profile::fp_cost`]. A shape's score is
//! normalized so that never alerting is 0 and a perfect detector (each
//! window's first row, nothing else) is 100: `100 (raw + N) / (2 N)` for
//! `N` windows. It can be negative (more false alarms than help).
//!
//! One threshold is swept over every shape together, and a detector's
//! result is its best mean of the shapes' normalized scores: each shape
//! weighs the same however many anomalies it has. [`f1`] counts the
//! detector's own flags beside it.

use txwatch_domain::Detector;

use crate::benchmark::Case;

/// How much a false alarm costs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// A name for reports.
    pub name: &'static str,
    /// Cost of one alarm row outside every window.
    pub fp_cost: f64,
}

/// The two profiles reported: false alarms at 0.11 and at 0.22 a row.
pub const PROFILES: [Profile; 2] = [
    Profile {
        name: "standard",
        fp_cost: 0.11,
    },
    Profile {
        name: "low_fp",
        fp_cost: 0.22,
    },
];

/// A detector's scores and flags for every row of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The graded score of each row (0 without enough history).
    pub scores: Vec<f64>,
    /// The detector's own flag on each row.
    pub flags: Vec<bool>,
}

/// Runs `detector` over each case with a fresh state, giving it each
/// point's time ([`Detector::observe_at`]).
pub fn score_cases<D: Detector>(detector: &D, cases: &[Case]) -> Vec<Scored> {
    cases
        .iter()
        .map(|case| {
            let mut state = detector.new_state();
            let mut scored = Scored {
                scores: Vec::with_capacity(case.points.len()),
                flags: Vec::with_capacity(case.points.len()),
            };
            for point in &case.points {
                let verdict = detector.observe_at(&mut state, point.at, point.value);
                scored.scores.push(verdict.graded());
                scored.flags.push(verdict.is_anomaly());
            }
            scored
        })
        .collect()
}

/// The reward of the earliest alarm at `offset` rows into a window of
/// `width` rows.
pub fn reward(offset: usize, width: usize) -> f64 {
    let y = offset as f64 / width.max(1) as f64;
    (1.0 + (-2.5_f64).exp()) / (1.0 + (5.0 * (y - 0.5)).exp())
}

/// The raw score and window count of `cases` when rows alarm where
/// `alarm(case, row)`.
fn raw(cases: &[Case], alarm: impl Fn(usize, usize) -> bool, fp_cost: f64) -> (f64, usize) {
    let mut total = 0.0;
    let mut windows = 0;
    for (c, case) in cases.iter().enumerate() {
        let mut next_window = 0;
        for row in 0..case.points.len() {
            while next_window < case.windows.len() && case.windows[next_window].end <= row {
                next_window += 1;
            }
            let inside = case
                .windows
                .get(next_window)
                .is_some_and(|w| w.contains(&row));
            if alarm(c, row) && !inside {
                total -= fp_cost;
            }
        }
        for window in &case.windows {
            windows += 1;
            match window.clone().find(|row| alarm(c, *row)) {
                Some(row) => total += reward(row - window.start, window.len()),
                None => total -= 1.0,
            }
        }
    }
    (total, windows)
}

/// The normalized score (0 never alerting, 100 perfect) of one shape's
/// cases when rows scoring at least `threshold` alarm.
pub fn normalized(cases: &[Case], scored: &[Scored], threshold: f64, fp_cost: f64) -> f64 {
    let (raw, windows) = raw(cases, |c, row| scored[c].scores[row] >= threshold, fp_cost);
    if windows == 0 {
        return 0.0;
    }
    100.0 * (raw + windows as f64) / (2.0 * windows as f64)
}

/// The threshold, swept over every shape together, that maximizes the mean
/// of the shapes' normalized scores; and that mean. `shapes` holds each
/// shape's cases with the detector's scores. Never alerting (threshold
/// above 1) scores 0 and is among the candidates.
pub fn best_threshold(shapes: &[(Vec<Case>, Vec<Scored>)], fp_cost: f64) -> (f64, f64) {
    let mut candidates: Vec<f64> = shapes
        .iter()
        .flat_map(|(_, scored)| scored.iter().flat_map(|s| s.scores.iter().copied()))
        .filter(|s| *s > 0.0)
        .collect();
    candidates.sort_by(|a, b| b.total_cmp(a));
    candidates.dedup();
    // The useful thresholds alarm on few rows: the top 3% of the scores,
    // at most 600 of them, evenly spaced by rank.
    let top = candidates.len().div_ceil(33).max(1).min(candidates.len());
    let step = top.div_ceil(600).max(1);
    let mut best = (f64::INFINITY, 0.0);
    for threshold in candidates[..top].iter().step_by(step) {
        let mean = mean_score(shapes, *threshold, fp_cost);
        if mean > best.1 {
            best = (*threshold, mean);
        }
    }
    best
}

/// The mean over shapes of their normalized scores at `threshold`.
pub fn mean_score(shapes: &[(Vec<Case>, Vec<Scored>)], threshold: f64, fp_cost: f64) -> f64 {
    let total: f64 = shapes
        .iter()
        .map(|(cases, scored)| normalized(cases, scored, threshold, fp_cost))
        .sum();
    total / shapes.len().max(1) as f64
}

/// Precision, recall and F1 of the detector's own flags, by windows: a
/// flagged row inside a window is a true alarm, outside a false one; a
/// window is found when one of its rows is flagged.
pub fn f1(shapes: &[(Vec<Case>, Vec<Scored>)]) -> (f64, f64, f64) {
    let (mut true_alarms, mut alarms, mut found, mut windows) = (0u64, 0u64, 0u64, 0u64);
    for (cases, scored) in shapes {
        for (case, s) in cases.iter().zip(scored) {
            for (row, flag) in s.flags.iter().enumerate() {
                if *flag {
                    alarms += 1;
                    true_alarms += u64::from(case.windows.iter().any(|w| w.contains(&row)));
                }
            }
            for window in &case.windows {
                windows += 1;
                found += u64::from(window.clone().any(|row| s.flags[row]));
            }
        }
    }
    let precision = ratio(true_alarms, alarms);
    let recall = ratio(found, windows);
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    (precision, recall, f1)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::benchmark::Point;

    fn case(len: usize, windows: Vec<std::ops::Range<usize>>) -> Case {
        Case {
            points: (0..len)
                .map(|_| Point {
                    at: OffsetDateTime::UNIX_EPOCH,
                    value: 1.0,
                })
                .collect(),
            windows,
        }
    }

    fn scored(scores: &[f64]) -> Scored {
        Scored {
            scores: scores.to_vec(),
            flags: scores.iter().map(|s| *s > 0.5).collect(),
        }
    }

    #[test]
    fn never_alerting_scores_zero_and_a_perfect_detector_one_hundred() {
        let cases = vec![case(10, vec![2..4, 6..9])];
        let nothing = scored(&[0.0; 10]);
        assert_eq!(normalized(&cases, &[nothing], 0.5, 0.11), 0.0);
        let perfect = scored(&[0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
        assert!((normalized(&cases, &[perfect], 0.5, 0.11) - 100.0).abs() < 1e-12);
    }

    #[test]
    fn later_alarms_earn_less_and_false_alarms_cost_their_profile() {
        assert!((reward(0, 10) - 1.0).abs() < 1e-12);
        assert!(reward(5, 10) < reward(1, 10) && reward(9, 10) > 0.0);
        let cases = vec![case(10, std::iter::once(2..6).collect())];
        // Found at its second row, plus two false alarms.
        let s = scored(&[1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        for fp_cost in [0.11, 0.22] {
            let expected = 100.0 * (reward(1, 4) - 2.0 * fp_cost + 1.0) / 2.0;
            let got = normalized(&cases, std::slice::from_ref(&s), 0.5, fp_cost);
            assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
        }
    }

    #[test]
    fn the_sweep_finds_the_threshold_that_separates_anomalies_from_noise() {
        let cases = vec![case(10, std::iter::once(5..7).collect())];
        let s = scored(&[0.3, 0.4, 0.35, 0.2, 0.1, 0.9, 0.0, 0.3, 0.45, 0.2]);
        let shapes = vec![(cases, vec![s])];
        let (threshold, score) = best_threshold(&shapes, 0.11);
        assert_eq!(threshold, 0.9);
        assert!((score - 100.0).abs() < 1e-9);
        let (precision, recall, f1) = f1(&shapes);
        assert_eq!((precision, recall, f1), (1.0, 1.0, 1.0));
    }
}
