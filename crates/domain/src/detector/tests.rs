//! Behaviour shared by every detector, and the old rule's exact arithmetic.

use super::*;

fn all() -> Vec<AnyDetector> {
    DetectorKind::ALL
        .into_iter()
        .map(AnyDetector::with_defaults)
        .collect()
}

/// Feeds `history`, then returns the verdict on `value`.
fn verdict_after(detector: &AnyDetector, history: &[f64], value: f64) -> Verdict {
    let state = detector.state_from_history(history.iter().copied());
    detector.score(&state, value)
}

fn quiet(n: usize) -> Vec<f64> {
    // Around 100, with a little deterministic wobble.
    (0..n)
        .map(|i| 100.0 + ((i * 7919) % 13) as f64 - 6.0)
        .collect()
}

/// Every detector but the relative-entropy one, which judges distributions
/// of whole windows and is not meant to see one spike.
fn point_detectors() -> Vec<AnyDetector> {
    all()
        .into_iter()
        .filter(|d| d.kind() != DetectorKind::RelativeEntropy)
        .collect()
}

#[test]
fn every_point_detector_flags_an_obvious_spike_after_a_quiet_window() {
    for detector in point_detectors() {
        let verdict = verdict_after(&detector, &quiet(80), 5_000.0);
        assert!(
            verdict.is_anomaly(),
            "{:?} missed the spike: {verdict:?}",
            detector.kind()
        );
        assert!(verdict.graded() > 0.9, "{:?}: {verdict:?}", detector.kind());
    }
}

#[test]
fn every_detector_stays_silent_on_a_constant_series() {
    for detector in all() {
        let mut state = detector.new_state();
        for i in 0..200 {
            let verdict = detector.observe(&mut state, 42.5);
            assert!(
                !verdict.is_anomaly(),
                "{:?} flagged value {i} of a constant series",
                detector.kind()
            );
            assert_eq!(verdict.graded(), 0.0, "{:?}", detector.kind());
        }
    }
}

#[test]
fn every_detector_stays_silent_on_ordinary_values_after_a_quiet_window() {
    for detector in all() {
        for value in [95.0, 100.0, 104.0] {
            let verdict = verdict_after(&detector, &quiet(80), value);
            assert!(
                !verdict.is_anomaly(),
                "{:?} flagged {value}: {verdict:?}",
                detector.kind()
            );
        }
    }
}

#[test]
fn nothing_is_judged_before_the_minimum_history() {
    for detector in all() {
        let mut state = detector.new_state();
        for i in 0..9 {
            let verdict = detector.observe(&mut state, 1e9 * f64::from(i));
            assert_eq!(
                verdict,
                Verdict::NotEnoughHistory { have: i as usize },
                "{:?}",
                detector.kind()
            );
        }
    }
}

#[test]
fn scoring_uses_only_earlier_values_and_changes_no_state() {
    for detector in all() {
        let state = detector.state_from_history(quiet(30));
        let before = state.clone();
        let first = detector.score(&state, 777.0);
        assert_eq!(detector.score(&state, 777.0), first);
        assert_eq!(state, before, "{:?}", detector.kind());
    }
}

#[test]
fn non_finite_values_are_scored_but_never_learned() {
    for detector in all() {
        let mut state = detector.state_from_history(quiet(30));
        let before = state.clone();
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let verdict = detector.observe(&mut state, value);
            assert!(
                (0.0..=1.0).contains(&verdict.graded()),
                "{:?}",
                detector.kind()
            );
        }
        assert_eq!(state, before, "{:?}", detector.kind());
    }
}

#[test]
fn a_saved_state_restores_to_one_that_continues_identically() {
    for detector in all() {
        let mut live = detector.state_from_history(quiet(25));
        let saved = serde_json::to_string(&live).expect("serializes");
        let mut restored: AnyState = serde_json::from_str(&saved).expect("deserializes");
        for value in [90.0, 3_000.0, 101.0, 99.0, -5.0, 100.5] {
            assert_eq!(
                detector.observe(&mut live, value),
                detector.observe(&mut restored, value)
            );
        }
        assert_eq!(live, restored);
    }
}

#[test]
fn another_detectors_state_is_treated_as_empty_and_replaced() {
    let zscore = AnyDetector::with_defaults(DetectorKind::ZScore);
    let mut foreign = AnyDetector::default().state_from_history(quiet(30));
    assert_eq!(
        zscore.score(&foreign, 1.0),
        Verdict::NotEnoughHistory { have: 0 }
    );
    zscore.update(&mut foreign, 1.0);
    assert!(matches!(foreign, AnyState::ZScore(_)));
}

#[test]
fn detector_names_round_trip_through_text() {
    for kind in DetectorKind::ALL {
        assert_eq!(kind.as_str().parse::<DetectorKind>(), Ok(kind));
    }
    assert!("mean".parse::<DetectorKind>().is_err());
}

fn check_rolling(detector: RollingMean, history: &[f64], value: f64, expect_anomaly: Option<bool>) {
    let state = detector.state_from_history(history.iter().copied());
    match (expect_anomaly, detector.score(&state, value)) {
        (None, Verdict::NotEnoughHistory { .. }) => {}
        (Some(want), Verdict::Scored(score)) => {
            assert_eq!(score.is_anomaly, want, "history {history:?}, value {value}");
            assert!((0.0..=1.0).contains(&score.score), "{score:?}");
        }
        (want, got) => panic!("history {history:?}, value {value}: want {want:?}, got {got:?}"),
    }
}

#[test]
fn the_default_rule_flags_values_above_five_times_the_mean_of_ten_or_more() {
    let d = RollingMean::default();
    check_rolling(d, &[100.0; 10], 500.01, Some(true));
    check_rolling(d, &[100.0; 10], 500.0, Some(false)); // strictly greater
    check_rolling(d, &[100.0; 10], 20.0, Some(false));
    check_rolling(d, &[100.0; 9], 100_000.0, None);
    check_rolling(d, &[], 1.0, None);
    // Only the last 20 count: five huge old values are out of the window.
    let mut history = vec![1e6; 5];
    history.extend([10.0; 20]);
    check_rolling(d, &history, 60.0, Some(true));
    // A window of zeros flags any positive value.
    check_rolling(d, &[0.0; 10], 0.01, Some(true));
}

#[test]
fn parameters_are_validated() {
    assert!(RollingMean::try_new(3, 2, 2.0).is_ok());
    assert_eq!(
        RollingMean::try_new(1, 1, 5.0),
        Err(DetectorConfigError::Window(1))
    );
    assert!(RollingMean::try_new(5, 6, 5.0).is_err());
    assert!(RollingMean::try_new(5, 0, 5.0).is_err());
    assert!(RollingMean::try_new(5, 5, 0.0).is_err());
    assert!(RollingMean::try_new(5, 5, f64::NAN).is_err());
    assert!(ZScore::try_new(20, 1, 3.0).is_err());
    assert!(ZScore::try_new(20, 10, -3.0).is_err());
    assert!(RobustZScore::try_new(20, 10, f64::INFINITY).is_err());
    assert!(Ewma::try_new(0.0, 10, 3.0).is_err());
    assert!(Ewma::try_new(1.0, 10, 3.0).is_err());
    assert!(Ewma::try_new(0.2, 0, 3.0).is_err());
    assert!(Ewma::try_new(0.2, 5, 3.0).is_ok());
}

/// The old service: the window summed in order, divided by its length.
fn old_rule(window: &[f64], value: f64, multiplier: f64) -> bool {
    value > multiplier * (window.iter().sum::<f64>() / window.len() as f64)
}

#[test]
fn rolling_mean_verdicts_equal_the_old_in_order_sum_even_at_the_boundary() {
    let detector = RollingMean::default();
    let mut state = detector.new_state();
    let mut window: Vec<f64> = Vec::new();
    // Values whose sums round differently in different orders, and values
    // placed exactly on and one ulp around each threshold.
    let mut x: u64 = 88_172_645_463_325_252;
    for i in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let magnitude = [0.01, 1.0, 1e3, 1e9, 1e15][(x % 5) as usize];
        let value = (x >> 11) as f64 / (1u64 << 53) as f64 * magnitude;
        if window.len() >= 10 {
            let threshold = 5.0 * (window.iter().sum::<f64>() / window.len() as f64);
            for probe in [threshold, threshold.next_up(), threshold.next_down(), value] {
                let got = detector.score(&state, probe).is_anomaly();
                assert_eq!(
                    got,
                    old_rule(&window, probe, 5.0),
                    "step {i}, probe {probe}"
                );
            }
        }
        detector.update(&mut state, value);
        window.push(value);
        if window.len() > 20 {
            window.remove(0);
        }
    }
}

#[test]
fn observe_equals_score_then_update_for_every_detector() {
    let mut series = quiet(60);
    series.extend([5_000.0, -3.0, 0.0, f64::NAN, 1e12, 99.0]);
    for detector in all() {
        let mut observed = detector.new_state();
        let mut stepwise = detector.new_state();
        for value in &series {
            let verdict = detector.observe(&mut observed, *value);
            let expected = detector.score(&stepwise, *value);
            detector.update(&mut stepwise, *value);
            assert_eq!(
                format!("{verdict:?}"),
                format!("{expected:?}"),
                "{:?}",
                detector.kind()
            );
        }
        assert_eq!(observed, stepwise, "{:?}", detector.kind());
    }
}
