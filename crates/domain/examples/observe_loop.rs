//! Runs one detector over a fixed series, for counting its instructions per
//! value with callgrind (`bench/detector-instructions.sh`, `just
//! bench-detectors-instructions`): instructions do not drift with the
//! machine's load as times do.
//!
//! ```text
//! cargo run --release -p txwatch-domain --example observe_loop -- auto 200000
//! ```
//!
//! The series is the criterion benchmark's (a level of 100, noise, one value
//! in 64 a spike of 8 to 16 times), a value every 5 minutes; time-aware
//! detectors get the times ([`Detector::observe_at`]). Prints the number of
//! values, flags and the sum of the scores, so nothing is optimized away.
//! `none` as the detector runs the same loop without one: the script
//! subtracts its count, so what remains is the detector's cost per value.

use std::process::ExitCode;

use time::{Duration, OffsetDateTime};
use txwatch_domain::{AnyDetector, Detector, DetectorKind};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(kind), Some(count)) = (args.next(), args.next()) else {
        eprintln!("usage: observe_loop DETECTOR COUNT");
        return ExitCode::from(2);
    };
    let Ok(count) = count.parse::<u64>() else {
        eprintln!("observe_loop: COUNT must be a whole number");
        return ExitCode::from(2);
    };
    let detector = match kind.as_str() {
        "none" => None,
        name => match name.parse::<DetectorKind>() {
            Ok(kind) => Some(AnyDetector::with_defaults(kind)),
            Err(error) => {
                eprintln!("observe_loop: {error}");
                return ExitCode::from(2);
            }
        },
    };
    let mut state = detector.map(|d| d.new_state());
    let start = OffsetDateTime::UNIX_EPOCH + Duration::days(19_723);
    let mut rng: u64 = 0x5eed_cafe_f00d_d00d;
    let mut unit = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut flags, mut total) = (0u64, 0.0);
    for i in 0..count {
        let noise = unit() + unit() + unit() - 1.5;
        let mut value = 100.0 + 20.0 * noise;
        if unit() < 1.0 / 64.0 {
            value *= 8.0 + 8.0 * unit();
        }
        let at = start + Duration::minutes(5 * i as i64);
        let (Some(detector), Some(state)) = (&detector, &mut state) else {
            // The harness alone: the same inputs, kept alive.
            total += std::hint::black_box(value) + f64::from(std::hint::black_box(at).minute());
            continue;
        };
        let verdict = if detector.uses_time() {
            detector.observe_at(state, at, value)
        } else {
            detector.observe(state, value)
        };
        flags += u64::from(verdict.is_anomaly());
        total += verdict.graded();
    }
    println!("{count} values, {flags} flagged, scores sum {total}");
    ExitCode::SUCCESS
}
