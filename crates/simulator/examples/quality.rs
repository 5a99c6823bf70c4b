//! Precision, recall and F1 of every detector at its default settings, on
//! each labelled scenario, as markdown tables.
//!
//! `cargo run --release -q -p txwatch-simulator --example quality` (or
//! `just quality`). Fixed seeds: the same build prints the same figures.
//! Every value counts; an anomaly met before a detector has enough history
//! is a miss (the `warm-up misses` column says how many of the misses).

use txwatch_domain::{AnyDetector, DetectorKind};
use txwatch_simulator::{Scenario, SeriesPlan, evaluate};

const ENTITIES: usize = 200;
const LEN: usize = 500;
const SEED: u64 = 2026;

fn main() {
    let plan = SeriesPlan {
        entities: ENTITIES,
        len: LEN,
        seed: SEED,
    };
    for scenario in Scenario::ALL {
        let series = scenario.generate(&plan);
        let values = series.iter().map(Vec::len).sum::<usize>();
        let anomalies = series.iter().flatten().filter(|l| l.is_anomaly).count();
        println!("### {}\n", scenario.as_str());
        println!(
            "{}. {ENTITIES} entities x {LEN} values, seed {SEED}: {anomalies} anomalies in {values} values ({:.1}%).\n",
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
