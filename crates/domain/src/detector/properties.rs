//! Property tests: incremental statistics against from-scratch ones,
//! restored state against uninterrupted state, and scores for any input.

use proptest::prelude::*;

use super::moments::WindowMoments;
use super::sorted_window::{SortedWindow, median_of_sorted};
use super::*;

/// Finite values of every magnitude and sign, zeros included.
fn any_finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -1e6..1e6_f64,
        1 => Just(0.0),
        1 => Just(-0.0),
        1 => prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
        1 => prop_oneof![Just(f64::MAX), Just(f64::MIN), Just(f64::MIN_POSITIVE), Just(1e300), Just(-1e300)],
    ]
}

/// Values of everyday magnitudes, for comparing arithmetic within a tolerance.
fn moderate() -> impl Strategy<Value = f64> {
    prop_oneof![8 => -1e7..1e7_f64, 1 => Just(0.0), 1 => 0.0..1e-3_f64]
}

fn kinds() -> impl Strategy<Value = DetectorKind> {
    prop::sample::select(DetectorKind::ALL.to_vec())
}

fn close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 1e-9 * scale.max(1.0)
}

/// Mean and sample variance, two-pass.
fn from_scratch(window: &[f64]) -> (f64, f64) {
    let n = window.len() as f64;
    let mean = window.iter().sum::<f64>() / n;
    let m2: f64 = window.iter().map(|v| (v - mean).powi(2)).sum();
    let variance = if window.len() < 2 {
        0.0
    } else {
        m2 / (n - 1.0)
    };
    (mean, variance)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn windowed_moments_equal_a_from_scratch_computation(
        values in prop::collection::vec(moderate(), 1..300),
        capacity in 2usize..40,
    ) {
        let mut moments = WindowMoments::new(capacity);
        for (i, value) in values.iter().enumerate() {
            moments.push(*value);
            let window = &values[(i + 1).saturating_sub(capacity)..=i];
            let (mean, variance) = from_scratch(window);
            // Tolerances relative to the values in the window now, however
            // large the values that passed through before.
            let scale = window.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            prop_assert!(close(moments.mean(), mean, scale), "mean {} vs {}", moments.mean(), mean);
            prop_assert!(
                close(moments.variance(), variance, scale * scale),
                "variance {} vs {}", moments.variance(), variance
            );
        }
    }

    #[test]
    fn the_sorted_window_median_is_the_exact_median(
        values in prop::collection::vec(any_finite(), 1..200),
        capacity in 2usize..40,
    ) {
        let mut window = SortedWindow::new(capacity);
        for (i, value) in values.iter().enumerate() {
            window.push(*value);
            let mut held = values[(i + 1).saturating_sub(capacity)..=i].to_vec();
            held.sort_by(f64::total_cmp);
            prop_assert_eq!(window.median().to_bits(), median_of_sorted(&held).to_bits());
        }
    }

    #[test]
    fn rolling_mean_baselines_equal_the_window_mean_and_verdicts_the_old_rule(
        values in prop::collection::vec(moderate(), 11..200),
    ) {
        let detector = RollingMean::default();
        let mut state = detector.new_state();
        for (i, value) in values.iter().enumerate() {
            let window = &values[i.saturating_sub(20)..i];
            let verdict = detector.observe(&mut state, *value);
            if let Verdict::Scored(score) = verdict {
                let exact = window.iter().sum::<f64>() / window.len() as f64;
                let scale = window.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
                prop_assert!(close(score.baseline, exact, scale));
                prop_assert_eq!(score.is_anomaly, *value > 5.0 * exact);
            }
        }
    }

    #[test]
    fn ewma_means_equal_their_closed_form(
        values in prop::collection::vec(moderate(), 1..150),
    ) {
        let detector = Ewma::default();
        let state = detector.state_from_history(values.iter().copied());
        // m_n = (1-a)^(n-1) x_1 + sum over k >= 2 of a (1-a)^(n-k) x_k
        let alpha = detector.alpha();
        let n = values.len();
        let mut exact = (1.0 - alpha).powi(n as i32 - 1) * values[0];
        for (k, value) in values.iter().enumerate().skip(1) {
            exact += alpha * (1.0 - alpha).powi((n - 1 - k) as i32) * value;
        }
        let scale = values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let mean = serde_json::to_value(state).expect("serializes")["mean"].as_f64().expect("a mean");
        prop_assert!(close(mean, exact, scale), "{} vs {}", mean, exact);
    }

    #[test]
    fn a_restored_state_continues_exactly_like_an_uninterrupted_one(
        kind in kinds(),
        values in prop::collection::vec(any_finite(), 0..120),
        split in 0usize..120,
    ) {
        let detector = AnyDetector::with_defaults(kind);
        let split = split.min(values.len());
        let mut uninterrupted = detector.new_state();
        let mut before: Vec<Verdict> = values[..split].iter().map(|v| detector.observe(&mut uninterrupted, *v)).collect();
        let saved = serde_json::to_string(&uninterrupted).expect("serializes");
        let mut restored: AnyState = serde_json::from_str(&saved).expect("deserializes");
        prop_assert_eq!(&restored, &uninterrupted);
        for value in &values[split..] {
            let a = detector.observe(&mut uninterrupted, *value);
            let b = detector.observe(&mut restored, *value);
            prop_assert_eq!(format!("{a:?}"), format!("{b:?}")); // bitwise, NaN-safe
            before.push(a);
        }
        prop_assert_eq!(restored, uninterrupted);
    }

    #[test]
    fn scores_are_finite_and_within_0_and_1_for_any_finite_input(
        kind in kinds(),
        values in prop::collection::vec(any_finite(), 0..150),
    ) {
        let detector = AnyDetector::with_defaults(kind);
        let mut state = detector.new_state();
        for value in values {
            let verdict = detector.observe(&mut state, value);
            let score = verdict.graded();
            prop_assert!(score.is_finite() && (0.0..=1.0).contains(&score), "{:?} scored {} for {}", kind, score, value);
        }
    }
}

/// Constants of every sign and magnitude, the extremes the issue names
/// included.
fn any_constant() -> impl Strategy<Value = f64> {
    prop_oneof![
        1 => Just(0.0),
        1 => Just(-0.0),
        1 => Just(1e-300),
        1 => Just(1e300),
        1 => Just(-1e300),
        1 => Just(0.1),
        4 => -1e9..1e9_f64,
        2 => (1u32..10_000_000).prop_map(|cents| f64::from(cents) / 100.0),
        1 => prop::num::f64::NORMAL,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_constant_series_scores_zero_after_warm_up_for_every_detector(
        kind in kinds(),
        value in any_constant(),
        len in 1usize..150,
        before in prop::collection::vec(-1e6..1e6_f64, 0..40),
    ) {
        let detector = AnyDetector::with_defaults(kind);
        // Whatever came before, once the series has been flat for longer
        // than any detector remembers, an equal value is no surprise.
        let mut state = detector.state_from_history(before.iter().copied());
        for _ in 0..200 {
            detector.update(&mut state, value);
        }
        for i in 0..len {
            let verdict = detector.observe(&mut state, value);
            prop_assert_eq!(verdict.graded(), 0.0, "{:?} scored {:?} for value {} at {}", kind, verdict, value, i);
            // The old rule's flag is kept as it was: it flags a negative
            // constant (any value above 5x a negative mean).
            let old_rule_on_negatives = kind == DetectorKind::RollingMean && value < 0.0;
            prop_assert!(!verdict.is_anomaly() || old_rule_on_negatives);
        }
    }

    #[test]
    fn a_jump_of_ten_times_the_level_after_a_constant_series_scores_above_one_half(
        kind in kinds(),
        value in any_constant().prop_filter("a level to multiply", |v| v.abs() >= 1e-300 && v.abs() <= 1e300),
        len in 100usize..200,
    ) {
        let detector = AnyDetector::with_defaults(kind);
        let state = detector.state_from_history(std::iter::repeat_n(value, len));
        let verdict = detector.score(&state, value * 10.0);
        prop_assert!(verdict.graded() > 0.5, "{:?} scored {:?} for {} after {}", kind, verdict, value * 10.0, value);
    }
}

/// Times a minute to a week apart, in several offsets, from 2024.
fn times(len: usize) -> impl Strategy<Value = Vec<time::OffsetDateTime>> {
    (
        prop::collection::vec(60i64..7 * 86_400, len),
        prop::sample::select(vec![0i32, 19_800, -18_000]),
    )
        .prop_map(|(gaps, offset)| {
            let offset = time::UtcOffset::from_whole_seconds(offset).expect("a valid offset");
            let mut at = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(19_723);
            gaps.into_iter()
                .map(|gap| {
                    at += time::Duration::seconds(gap);
                    at.to_offset(offset)
                })
                .collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn with_times_a_restored_state_continues_exactly_and_observe_equals_score_then_update(
        kind in kinds(),
        (values, at) in prop::collection::vec(any_finite(), 0..150)
            .prop_flat_map(|values| { let n = values.len(); (Just(values), times(n)) }),
        split in 0usize..150,
    ) {
        let detector = AnyDetector::with_defaults(kind);
        let split = split.min(values.len());
        let mut observed = detector.new_state();
        let mut stepwise = detector.new_state();
        for (value, at) in values[..split].iter().zip(&at) {
            let a = detector.observe_at(&mut observed, *at, *value);
            let b = detector.score_at(&stepwise, *at, *value);
            detector.update_at(&mut stepwise, *at, *value);
            prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
            prop_assert!((0.0..=1.0).contains(&a.graded()), "{:?} scored {:?}", kind, a);
        }
        prop_assert_eq!(&observed, &stepwise);
        let saved = serde_json::to_string(&observed).expect("serializes");
        let mut restored: AnyState = serde_json::from_str(&saved).expect("deserializes");
        prop_assert_eq!(&restored, &observed);
        for (value, at) in values[split..].iter().zip(&at[split..]) {
            let a = detector.observe_at(&mut observed, *at, *value);
            let b = detector.observe_at(&mut restored, *at, *value);
            prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
        prop_assert_eq!(restored, observed);
    }

    #[test]
    fn detectors_that_ignore_time_judge_the_same_with_or_without_it(
        kind in kinds().prop_filter("ignores time", |k| !AnyDetector::with_defaults(*k).uses_time()),
        (values, at) in prop::collection::vec(moderate(), 0..80)
            .prop_flat_map(|values| { let n = values.len(); (Just(values), times(n)) }),
    ) {
        let detector = AnyDetector::with_defaults(kind);
        let mut timed = detector.new_state();
        let mut plain = detector.new_state();
        for (value, at) in values.iter().zip(&at) {
            let a = detector.observe_at(&mut timed, *at, *value);
            let b = detector.observe(&mut plain, *value);
            prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
    }
}
