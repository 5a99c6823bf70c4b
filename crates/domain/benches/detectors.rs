//! Detector throughput: how many values per second one core scores and
//! learns.
//!
//! Every benchmark feeds the same pre-generated series of 4,096 amounts (a
//! level around 100 with noise and an occasional spike, from a fixed
//! xorshift seed) through [`Detector::observe`] (score, then update) on a
//! state that has already learned the series, so it measures the steady
//! state with a full window. Criterion reports elements/s, i.e. values
//! observed per second.
//!
//! - `observe/<detector>`: each detector at its default settings, called
//!   directly (the time-aware ones, `seasonal` and `auto`, through
//!   `observe_at` with a value every 5 minutes).
//! - `any/<detector>`: the same through [`AnyDetector`], to show what the
//!   run-time dispatch costs.
//! - `observe/old_rule_recompute`: the old rule as the Python service
//!   computed it, for comparison: per value, copy the last 20 values into a
//!   fresh window (like `history[-20:]`), sum it from scratch and compare
//!   with 5x the mean.
//!
//! - `rebuild/<detector>`: what the server pays per transaction, building
//!   the state from the user's window (`window_len` values, as
//!   `txwatch_server::window_len` sizes it) and scoring one value;
//!   elements are transactions.
//!
//! Targets: at least 50 million values per second for `rolling_mean` and
//! `zscore` (an earlier issue), 5 million for every simple detector and 1
//! million for `seasonal`, `relative_entropy`, `knn` and `auto`. Run with:
//!
//! ```text
//! cargo bench -p txwatch-domain --bench detectors
//! just bench-detectors
//! ```
//!
//! Add a filter to run a subset, e.g.
//! `cargo bench -p txwatch-domain --bench detectors -- observe/zscore`.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use time::OffsetDateTime;
use txwatch_domain::{
    AnyDetector, Auto, Detector, DetectorKind, Ewma, KnnConformal, RelativeEntropy, RobustZScore,
    RollingMean, Seasonal, ZScore,
};

/// Values per benchmark iteration.
const SERIES_LEN: usize = 4096;

/// The old rule's parameters (the defaults of [`RollingMean`]).
const OLD_WINDOW: usize = 20;
const OLD_MIN_HISTORY: usize = 10;
const OLD_MULTIPLIER: f64 = 5.0;

/// A deterministic series of amounts: a level of 100 with noise of standard
/// deviation about 10, and one value in 64 a spike of 8 to 16 times the level.
fn series(len: usize, seed: u64) -> Vec<f64> {
    let mut rng = XorShift(seed.max(1));
    (0..len)
        .map(|_| {
            // The sum of three uniforms: roughly normal, no dependency needed.
            let noise = rng.unit() + rng.unit() + rng.unit() - 1.5;
            let value = 100.0 + 20.0 * noise;
            if rng.next().is_multiple_of(64) {
                value * (8.0 + 8.0 * rng.unit())
            } else {
                value
            }
        })
        .collect()
}

/// Marsaglia's xorshift64: enough randomness for a benchmark input.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

/// Benchmarks `detector.observe` over `input` on a state warmed up with it.
fn bench_observe<D: Detector>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    detector: D,
    input: &[f64],
) {
    // Opaque parameters, as they would be when read from configuration.
    let detector = black_box(detector);
    let mut state = detector.state_from_history(input.iter().copied());
    group.bench_function(name, |b| {
        b.iter(|| {
            for &value in input {
                black_box(detector.observe(&mut state, value));
            }
        });
    });
}

/// Like [`bench_observe`], with a time 5 minutes after the previous one for
/// each value ([`Detector::observe_at`]).
fn bench_observe_at<D: Detector>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    detector: D,
    input: &[f64],
) {
    let detector = black_box(detector);
    let start = OffsetDateTime::UNIX_EPOCH + time::Duration::days(19_723);
    let times: Vec<OffsetDateTime> = (0..input.len())
        .map(|i| start + time::Duration::minutes(5 * i as i64))
        .collect();
    let mut state =
        detector.state_from_timed_history(times.iter().copied().zip(input.iter().copied()));
    group.bench_function(name, |b| {
        b.iter(|| {
            for (at, &value) in times.iter().zip(input) {
                black_box(detector.observe_at(&mut state, *at, value));
            }
        });
    });
}

/// The server's cost per transaction: a state rebuilt from a window of
/// `window` values (with times), then one score.
fn bench_rebuild(
    group: &mut BenchmarkGroup<'_, WallTime>,
    detector: AnyDetector,
    window: usize,
    input: &[f64],
) {
    let detector = black_box(detector);
    let start = OffsetDateTime::UNIX_EPOCH + time::Duration::days(19_723);
    let history: Vec<(OffsetDateTime, f64)> = input[..window]
        .iter()
        .enumerate()
        .map(|(i, v)| (start + time::Duration::hours(3 * i as i64), *v))
        .collect();
    let at = start + time::Duration::hours(3 * window as i64);
    group.bench_function(format!("{}_{window}", detector.kind().as_str()), |b| {
        b.iter(|| {
            let verdict = if detector.uses_time() {
                let state = detector.state_from_timed_history(history.iter().copied());
                detector.score_at(&state, at, input[window])
            } else {
                let state = detector.state_from_history(history.iter().map(|(_, v)| *v));
                detector.score(&state, input[window])
            };
            black_box(verdict)
        });
    });
}

/// The old service's computation, one value: the window is a fresh copy of
/// the last `OLD_WINDOW` values, summed from scratch. Returns whether the
/// value was flagged, and the mean (`None` without enough history).
fn old_rule_observe(history: &mut Vec<f64>, value: f64) -> Option<(bool, f64)> {
    let window: Vec<f64> = history[history.len().saturating_sub(OLD_WINDOW)..].to_vec();
    let verdict = (window.len() >= OLD_MIN_HISTORY).then(|| {
        let mean = window.iter().sum::<f64>() / window.len() as f64;
        (value > OLD_MULTIPLIER * mean, mean)
    });
    history.push(value);
    // Keep memory bounded over millions of iterations; amortized, this
    // costs nothing per value.
    if history.len() >= 4 * SERIES_LEN {
        history.drain(..history.len() - OLD_WINDOW);
    }
    verdict
}

fn detectors(c: &mut Criterion) {
    let input = series(SERIES_LEN, 0x5eed_cafe_f00d_d00d);
    let elements = u64::try_from(input.len()).expect("the series length fits in u64");

    let mut group = c.benchmark_group("observe");
    group.throughput(Throughput::Elements(elements));
    bench_observe(&mut group, "rolling_mean", RollingMean::default(), &input);
    bench_observe(&mut group, "zscore", ZScore::default(), &input);
    bench_observe(&mut group, "robust", RobustZScore::default(), &input);
    bench_observe(&mut group, "ewma", Ewma::default(), &input);
    bench_observe_at(&mut group, "seasonal", Seasonal::default(), &input);
    bench_observe(
        &mut group,
        "relative_entropy",
        RelativeEntropy::default(),
        &input,
    );
    bench_observe(&mut group, "knn", KnnConformal::default(), &input);
    bench_observe_at(&mut group, "auto", Auto::default(), &input);

    let mut history = Vec::with_capacity(4 * SERIES_LEN);
    for &value in &input {
        old_rule_observe(&mut history, value);
    }
    group.bench_function("old_rule_recompute", |b| {
        b.iter(|| {
            for &value in &input {
                black_box(old_rule_observe(&mut history, value));
            }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("any");
    group.throughput(Throughput::Elements(elements));
    for kind in DetectorKind::ALL {
        let detector = AnyDetector::with_defaults(kind);
        if detector.uses_time() {
            bench_observe_at(&mut group, kind.as_str(), detector, &input);
        } else {
            bench_observe(&mut group, kind.as_str(), detector, &input);
        }
    }
    group.finish();

    // The Redis windows `txwatch_server::window_len` gives each default.
    let mut group = c.benchmark_group("rebuild");
    group.throughput(Throughput::Elements(1));
    for (kind, window) in [
        (DetectorKind::RollingMean, 20),
        (DetectorKind::Robust, 30),
        (DetectorKind::Seasonal, 200),
        (DetectorKind::RelativeEntropy, 160),
        (DetectorKind::Knn, 105),
        (DetectorKind::Auto, 200),
    ] {
        bench_rebuild(&mut group, AnyDetector::with_defaults(kind), window, &input);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = detectors
}
criterion_main!(benches);
