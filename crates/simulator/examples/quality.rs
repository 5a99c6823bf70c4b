//! Detection quality as a user with many series sees it: every detector at
//! its default settings (one parameter set for every shape), one alert
//! threshold swept over all shapes together, scored by the windowed metric
//! of `txwatch_simulator::windowed` in two profiles (false alarms at 0.11
//! and 0.22 a row), with F1 of each detector's own flags beside it. Then
//! each shape's score at each detector's standard-profile threshold.
//!
//! After them, each detector's own flags on the three earlier scenarios
//! (precision, recall, F1 of every value; an anomaly met before a detector
//! has enough history is a miss, counted in `warm-up misses`).
//!
//! `cargo run --release -q -p txwatch-simulator --example quality` (or
//! `just quality`). Fixed seeds: the same build prints the same figures.

use txwatch_domain::{AnyDetector, DetectorKind};
use txwatch_simulator::windowed::{PROFILES, best_threshold, f1, normalized, score_cases};
use txwatch_simulator::{Scenario, SeriesPlan, Shape, evaluate};

const ENTITIES: usize = 50;
const LEN: usize = 1000;
const SEED: u64 = 2026;

fn main() {
    let plan = SeriesPlan {
        entities: ENTITIES,
        len: LEN,
        seed: SEED,
    };
    let shapes: Vec<(Shape, Vec<txwatch_simulator::Case>)> =
        Shape::ALL.iter().map(|s| (*s, s.generate(&plan))).collect();
    let windows: usize = shapes
        .iter()
        .flat_map(|(_, cases)| cases.iter().map(|c| c.windows.len()))
        .sum();
    println!(
        "{} shapes x {ENTITIES} entities x {LEN} values, seed {SEED}: {windows} labelled anomalies. \
         One threshold per detector over all shapes; score 0 = never alert, 100 = perfect.\n",
        shapes.len()
    );
    println!(
        "| detector | standard (fp 0.11) | threshold | low FP (fp 0.22) | threshold | F1 (own flags) | precision | recall |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut per_shape: Vec<(DetectorKind, Vec<f64>)> = Vec::new();
    for kind in DetectorKind::ALL {
        let detector = AnyDetector::with_defaults(kind);
        let scored: Vec<_> = shapes
            .iter()
            .map(|(_, cases)| (cases.clone(), score_cases(&detector, cases)))
            .collect();
        let [standard, low_fp] = PROFILES.map(|p| best_threshold(&scored, p.fp_cost));
        let (precision, recall, f1) = f1(&scored);
        let name = match kind {
            DetectorKind::RollingMean => "rolling_mean (old rule)",
            other => other.as_str(),
        };
        println!(
            "| {name} | {:.1} | {} | {:.1} | {} | {f1:.3} | {precision:.3} | {recall:.3} |",
            standard.1,
            threshold_text(standard.0),
            low_fp.1,
            threshold_text(low_fp.0),
        );
        per_shape.push((
            kind,
            scored
                .iter()
                .map(|(cases, s)| normalized(cases, s, standard.0, PROFILES[0].fp_cost))
                .collect(),
        ));
    }
    println!("\nEach shape at the detector's standard-profile threshold:\n");
    let names: Vec<&str> = per_shape.iter().map(|(k, _)| k.as_str()).collect();
    println!("| shape | {} |", names.join(" | "));
    println!("| --- |{}", " ---: |".repeat(names.len()));
    for (i, (shape, _)) in shapes.iter().enumerate() {
        let cells: Vec<String> = per_shape
            .iter()
            .map(|(_, s)| format!("{:.1}", s[i]))
            .collect();
        println!("| {} | {} |", shape.as_str(), cells.join(" | "));
    }
    println!("\nShapes:\n");
    for shape in Shape::ALL {
        println!("- `{}`: {}.", shape.as_str(), shape.description());
    }
    println!();
    earlier_scenarios();
}

/// Each detector's own flags on the three earlier scenarios, 200 entities
/// x 500 values each.
fn earlier_scenarios() {
    let plan = SeriesPlan {
        entities: 200,
        len: 500,
        seed: SEED,
    };
    for scenario in Scenario::ALL {
        let series = scenario.generate(&plan);
        let values = series.iter().map(Vec::len).sum::<usize>();
        let anomalies = series.iter().flatten().filter(|l| l.is_anomaly).count();
        println!("#### {}\n", scenario.as_str());
        println!(
            "{}. 200 entities x 500 values, seed {SEED}: {anomalies} anomalies in {values} values ({:.1}%).\n",
            scenario.description(),
            100.0 * anomalies as f64 / values as f64
        );
        println!(
            "| detector | precision | recall | F1 | flagged | TP | FP | FN | warm-up misses |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for kind in DetectorKind::ALL {
            let evaluation = evaluate(&AnyDetector::with_defaults(kind), &series);
            let c = evaluation.confusion;
            let name = match kind {
                DetectorKind::RollingMean => "rolling_mean (old rule)",
                other => other.as_str(),
            };
            println!(
                "| {name} | {:.3} | {:.3} | {:.3} | {} | {} | {} | {} | {} |",
                c.precision(),
                c.recall(),
                c.f1(),
                c.tp + c.fp,
                c.tp,
                c.fp,
                c.fn_,
                evaluation.unscored_anomalies
            );
        }
        println!();
    }
}

fn threshold_text(threshold: f64) -> String {
    if threshold.is_finite() {
        format!("{threshold:.4}")
    } else {
        "never".to_owned()
    }
}
