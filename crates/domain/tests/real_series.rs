//! Every detector, at its defaults, on a real series with flat stretches:
//! the monthly mean sunspot numbers of 1749-1983 (R's `sunspots` dataset),
//! whose solar minima hold runs of months at exactly 0.0, one of them 21
//! months long.
//!
//! The series is not committed (the data is not ours to relicense):
//! `scripts/datasets.sh`, which `just test` runs first, fetches it from
//! PyPI into `target/datasets/`. Without it this test fails and says so.

use std::path::PathBuf;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use txwatch_domain::{AnyDetector, Detector, DetectorKind};

fn sunspots() -> Vec<(OffsetDateTime, f64)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/datasets/sunspots.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "{} cannot be read ({error}): run scripts/datasets.sh (just test does) to fetch it",
            path.display()
        )
    });
    text.lines()
        .skip(1)
        .map(|line| {
            let (at, value) = line.split_once(',').expect("timestamp,value");
            (
                OffsetDateTime::parse(at, &Rfc3339).expect("an RFC 3339 time"),
                value.parse().expect("a number"),
            )
        })
        .collect()
}

/// Whether position `i` continues a run of at least `run` equal values:
/// it and the `run - 1` values before it are the same.
fn continues_a_run(values: &[f64], i: usize, run: usize) -> bool {
    i + 1 >= run && (1..run).all(|back| values[i - back] == values[i])
}

#[test]
fn no_detector_alarms_inside_a_flat_stretch_of_a_real_series() {
    let series = sunspots();
    assert_eq!(series.len(), 2820, "the monthly series, 1749-1983");
    let values: Vec<f64> = series.iter().map(|(_, value)| *value).collect();
    let flat: Vec<usize> = (0..values.len())
        .filter(|&i| continues_a_run(&values, i, 3))
        .collect();
    // The runs of zeros at the solar minima around 1798 and 1810-1823.
    assert!(
        flat.len() >= 20,
        "{} values inside flat stretches",
        flat.len()
    );
    for kind in DetectorKind::ALL {
        let detector = AnyDetector::with_defaults(kind);
        let mut state = detector.new_state();
        let mut worst = (0.0_f64, 0);
        let mut flagged = Vec::new();
        for (i, (at, value)) in series.iter().enumerate() {
            let verdict = detector.observe_at(&mut state, *at, *value);
            if flat.contains(&i) {
                if verdict.graded() > worst.0 {
                    worst = (verdict.graded(), i);
                }
                if verdict.is_anomaly() {
                    flagged.push(i);
                }
            }
        }
        // From the third equal value on, the stretch is what the series
        // does: no alarm, and a score below one half (one in a thousand).
        assert!(
            flagged.is_empty(),
            "{}: flagged inside a flat stretch at {flagged:?}",
            kind.as_str()
        );
        assert!(
            worst.0 <= 0.5,
            "{}: scored {:.3} at month {} inside a flat stretch",
            kind.as_str(),
            worst.0,
            worst.1
        );
    }
}
