//! Scores a CSV series for anomalies with one of the library's detectors.
//!
//! Reads `timestamp,value` rows on stdin and writes `timestamp,value,anomaly_score`
//! rows on stdout: one output row per input row, in input order. Each value
//! is judged against the values before it ([`Detector::observe`]), so the
//! tool streams: memory does not grow with the input (in `--entities` mode
//! it grows with the number of entities).
//!
//! ```text
//! cargo run --release -p txwatch-domain --example score -- --detector robust < series.csv > scored.csv
//! cargo run --release -p txwatch-domain --example score -- --detector zscore --window 50 --threshold 4 < series.csv
//! cargo run --release -p txwatch-domain --example score -- --entities --detector ewma --alpha 0.05 < by_user.csv
//! ```
//!
//! # Options
//!
//! | option | applies to | default |
//! | --- | --- | --- |
//! | `--detector NAME` | | `rolling_mean`; also `zscore`, `robust`, `ewma`, `seasonal`, `relative_entropy`, `knn`, `auto` |
//! | `--window N` | rolling_mean, zscore, robust, relative_entropy, knn | 20, 20, 30, 32, 50 |
//! | `--min-history N` | all but auto | 10; seasonal 30, relative_entropy 64, knn 30 |
//! | `--multiplier X` | rolling_mean | 5 |
//! | `--threshold X` | zscore, robust, ewma | 3, 3.5, 3 |
//! | `--alpha X` | ewma | 0.1 |
//! | `--scale log\|linear` | robust | `log` |
//! | `--entities` | | off |
//!
//! A parameter left out takes the detector's default. A parameter the chosen
//! detector does not take (`--multiplier` with `zscore`, say) is an error
//! rather than silently ignored, and so are values the detector rejects
//! ([`DetectorConfigError`]); the [`detector`](txwatch_domain::detector)
//! module says what each parameter means.
//!
//! # Input
//!
//! - CSV, comma-separated, fields optionally quoted (RFC 4180); blank lines
//!   are skipped; `\n` or `\r\n` line ends.
//! - Each row is `timestamp,value`, or with `--entities`
//!   `entity,timestamp,value`. The entity may be any text. So may the
//!   timestamp for detectors that judge values alone: it is passed through
//!   unread. The time-aware detectors (`seasonal`, `auto`) read it, to learn
//!   daily and weekly rhythm: RFC 3339 (`2024-01-01T09:30:00Z`, or with an
//!   offset, whose wall-clock time then counts), `YYYY-MM-DD HH:MM:SS` or
//!   `YYYY-MM-DDTHH:MM:SS` (UTC, fractions allowed), `YYYY-MM-DD HH:MM`, a
//!   date alone (its midnight UTC), or whole seconds since 1970
//!   (milliseconds from 10^11 on). For them a timestamp that is none of
//!   these is an error. With `--entities` each entity
//!   gets its own detector state, so entities never influence each other;
//!   rows of different entities may be interleaved in any way.
//! - The value is a decimal number as Rust's `f64` parser reads it (`12`,
//!   `-3.5`, `1e6`; surrounding spaces are ignored). It must be finite:
//!   `NaN`, `inf` and numbers beyond the `f64` range are errors, since there
//!   is no meaningful score for them (the detectors would skip them without
//!   learning, which would hide broken input).
//! - Header: if the value field of the first row does not parse as a number
//!   (`timestamp,value`, `ts,amount`, ...), that row is a header; the output
//!   then starts with the header `timestamp,value,anomaly_score` (or
//!   `entity,timestamp,value,anomaly_score`). Without an input header no
//!   header is written, so output lines match input lines one for one.
//!   Only the first row can be a header: a non-number later is an error.
//!   A leading UTF-8 byte-order mark is dropped.
//!
//! # Output
//!
//! `timestamp,value,anomaly_score` (or `entity,timestamp,value,anomaly_score`):
//! the timestamp, entity and value exactly as they were in the input (quoted
//! only where CSV needs it, e.g. a timestamp containing a comma), and the
//! detector's calibrated score in `[0, 1]` ([`Verdict::graded`]) in the
//! shortest representation that reads back as the same `f64`: `u / (u + 3)`
//! for an estimated tail probability `10^-u`, so 0.5 is one in a thousand,
//! the same for every detector and series (one threshold serves them all).
//! The new detectors (seasonal, relative_entropy, knn, auto) flag exactly
//! above 0.5; rolling_mean, zscore, robust and ewma flag by their own rules
//! (the old multiplier, `--threshold` standard units). Rows judged before
//! the detector had enough history (`--min-history` earlier values of the
//! series or entity) score `0.0`.
//!
//! # Errors
//!
//! A row with the wrong number of fields, a value that is not a finite
//! number, or (for a time-aware detector) a timestamp it cannot read stops
//! the tool with a message naming the line (1-based, counting
//! the header and blank lines; for a row spanning several lines, its first)
//! and exit code 2; rows before it have been written. Bad options also exit
//! with 2, failures to read or write with 1. A closed output pipe (`| head`)
//! ends the tool quietly with 0.

use std::collections::HashMap;
use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;

use clap::Parser;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};
use txwatch_domain::{
    AnyDetector, Detector, DetectorConfigError, DetectorKind, DetectorParams, DetectorParamsError,
    RobustScale, Verdict,
};

/// Bytes csv reads from the input at a time.
const INPUT_BUFFER: usize = 256 * 1024;
/// Bytes gathered before each write to the output.
const OUTPUT_BUFFER: usize = 1024 * 1024;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Scores a CSV series (timestamp,value on stdin) for anomalies; writes
/// timestamp,value,anomaly_score on stdout.
///
/// A first line whose value is not a number is taken as a header and
/// answered with an output header. Warm-up rows score 0; above 0.5 means
/// flagged. Parameters left out take the chosen detector's defaults.
#[derive(Debug, Parser)]
#[command(name = "score", version, about)]
struct Args {
    /// The detector that scores the values.
    #[arg(long, value_name = "NAME", default_value = "rolling_mean", value_parser = detector_kind())]
    detector: DetectorKind,

    /// Earlier values kept (rolling_mean, zscore, robust; default 20, 20,
    /// 30), compared (relative_entropy; 32) or searched (knn; 50).
    #[arg(long, value_name = "N")]
    window: Option<usize>,

    /// Earlier values needed before a value is judged (all but auto;
    /// default 10; seasonal 30, relative_entropy 64, knn 30).
    #[arg(long, value_name = "N")]
    min_history: Option<usize>,

    /// Flag values above this many times the mean (rolling_mean; default 5).
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    multiplier: Option<f64>,

    /// Flag values more than this many standard units from the baseline
    /// (zscore, robust, ewma; default 3, 3.5, 3).
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    threshold: Option<f64>,

    /// Weight of the newest value, between 0 and 1 (ewma; default 0.1).
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    alpha: Option<f64>,

    /// The scale distances are measured on: log or linear (robust; default
    /// log).
    #[arg(long, value_name = "SCALE", value_parser = scale())]
    scale: Option<RobustScale>,

    /// Input rows are entity,timestamp,value; each entity is scored on its
    /// own, and the output gains an entity column.
    #[arg(long)]
    entities: bool,
}

/// Parses a detector name, listing the names in `--help` and in errors.
fn detector_kind() -> impl TypedValueParser<Value = DetectorKind> {
    PossibleValuesParser::new(DetectorKind::ALL.map(|kind| kind.as_str()))
        .try_map(|name| name.parse::<DetectorKind>())
}

/// Parses `log` or `linear`.
fn scale() -> impl TypedValueParser<Value = RobustScale> {
    PossibleValuesParser::new(["log", "linear"]).map(|name| match name.as_str() {
        "linear" => RobustScale::Linear,
        _ => RobustScale::Log,
    })
}

/// The options (spelled as on the command line) that `kind` takes.
fn parameters(kind: DetectorKind) -> Vec<&'static str> {
    kind.parameters().iter().map(|name| option(name)).collect()
}

/// The command-line option for a detector parameter.
fn option(parameter: &str) -> &'static str {
    match parameter {
        "window" => "--window",
        "min_history" => "--min-history",
        "multiplier" => "--multiplier",
        "threshold" => "--threshold",
        "alpha" => "--alpha",
        "scale" => "--scale",
        _ => "--(unknown)",
    }
}

/// What to score and how.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Options {
    detector: AnyDetector,
    input: Input,
}

/// The shape of the input rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// `timestamp,value`: one series.
    Series,
    /// `entity,timestamp,value`: one series per entity.
    Entities,
}

impl Input {
    fn fields(self) -> usize {
        match self {
            Input::Series => 2,
            Input::Entities => 3,
        }
    }

    fn columns(self) -> &'static str {
        match self {
            Input::Series => "timestamp,value",
            Input::Entities => "entity,timestamp,value",
        }
    }

    fn output_header(self) -> &'static [u8] {
        match self {
            Input::Series => b"timestamp,value,anomaly_score\n",
            Input::Entities => b"entity,timestamp,value,anomaly_score\n",
        }
    }
}

/// Why scoring stopped.
#[derive(Debug, thiserror::Error)]
enum ScoreError {
    /// An option the chosen detector does not take.
    #[error(
        "{option} does not apply to the {} detector, which takes {}",
        .detector.as_str(),
        parameters(*.detector).join(", ")
    )]
    Parameter {
        option: &'static str,
        detector: DetectorKind,
    },
    /// Parameters the detector rejected.
    #[error("invalid {} parameters", .detector.as_str())]
    Config {
        detector: DetectorKind,
        #[source]
        source: DetectorConfigError,
    },
    /// A row with too few or too many fields.
    #[error("line {line}: expected {} fields ({}), found {found}", .input.fields(), .input.columns())]
    FieldCount {
        line: u64,
        input: Input,
        found: usize,
    },
    /// A value that is not a number.
    #[error("line {line}: value `{text}` is not a number")]
    NotANumber { line: u64, text: String },
    /// `NaN`, an infinity, or a number beyond the f64 range.
    #[error("line {line}: value `{text}` is not a finite number")]
    NotFinite { line: u64, text: String },
    /// A timestamp a time-aware detector cannot read.
    #[error(
        "line {line}: timestamp `{text}` is not a time (RFC 3339, `YYYY-MM-DD HH:MM:SS` in UTC, \
         or seconds or milliseconds since 1970)"
    )]
    NotATime { line: u64, text: String },
    /// The input could not be read.
    #[error("reading the input")]
    Read(#[source] io::Error),
    /// The output could not be written.
    #[error("writing the output")]
    Write(#[source] io::Error),
}

impl ScoreError {
    /// 2 for what the user can fix in the options or the input, 1 for I/O.
    fn exit_code(&self) -> u8 {
        match self {
            ScoreError::Read(_) | ScoreError::Write(_) => 1,
            _ => 2,
        }
    }

    /// The reader of the output went away (`score < big.csv | head`).
    fn is_broken_pipe(&self) -> bool {
        matches!(self, ScoreError::Write(error) if error.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl Args {
    /// The detector and input shape the arguments ask for.
    ///
    /// # Errors
    /// [`ScoreError::Parameter`] for a parameter the detector does not take,
    /// [`ScoreError::Config`] for values it rejects.
    fn options(&self) -> Result<Options, ScoreError> {
        let params = DetectorParams {
            kind: self.detector,
            window: self.window,
            min_history: self.min_history,
            multiplier: self.multiplier,
            threshold: self.threshold,
            alpha: self.alpha,
            scale: self.scale,
        };
        let detector = params.build().map_err(|error| match error {
            DetectorParamsError::NotApplicable { parameter, kind } => ScoreError::Parameter {
                option: option(parameter),
                detector: kind,
            },
            DetectorParamsError::Invalid { kind, source } => ScoreError::Config {
                detector: kind,
                source,
            },
        })?;
        let input = if self.entities {
            Input::Entities
        } else {
            Input::Series
        };
        Ok(Options { detector, input })
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = args
        .options()
        .and_then(|options| score_csv(io::stdin().lock(), io::stdout().lock(), &options));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is_broken_pipe() => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("score: error: {}", with_sources(&error));
            ExitCode::from(error.exit_code())
        }
    }
}

/// The error's message followed by those of its sources.
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Scores the CSV rows of `input` and writes them with their scores to
/// `output` (buffered here), as the module docs describe.
///
/// # Errors
/// A [`ScoreError`] naming the line for a malformed row (the rows before it
/// are written and flushed), or the I/O error of the input or output.
fn score_csv(input: impl Read, output: impl Write, options: &Options) -> Result<(), ScoreError> {
    let mut reader = csv::ReaderBuilder::new()
        // Whether the first row is a header is decided from its value.
        .has_headers(false)
        // Field counts are checked per row, to report the line.
        .flexible(true)
        // Only `\n` ends a record (`score_rows` drops the `\r` of `\r\n`),
        // so that the reader's line count is exact, see `start_line`.
        .terminator(csv::Terminator::Any(b'\n'))
        .buffer_capacity(INPUT_BUFFER)
        // The last record ends in a `\n` too: an extra one after a final
        // `\n` is a blank line, which csv skips.
        .from_reader(input.chain(b"\n".as_slice()));
    let mut out = BufWriter::with_capacity(OUTPUT_BUFFER, output);
    // One monomorphized loop per detector: no dispatch per row.
    let scored = match options.detector {
        AnyDetector::RollingMean(d) => score_rows(&d, options.input, &mut reader, &mut out),
        AnyDetector::ZScore(d) => score_rows(&d, options.input, &mut reader, &mut out),
        AnyDetector::Robust(d) => score_rows(&d, options.input, &mut reader, &mut out),
        AnyDetector::Ewma(d) => score_rows(&d, options.input, &mut reader, &mut out),
        AnyDetector::Seasonal(d) => score_rows(&d, options.input, &mut reader, &mut out),
        AnyDetector::RelativeEntropy(d) => score_rows(&d, options.input, &mut reader, &mut out),
        AnyDetector::Knn(d) => score_rows(&d, options.input, &mut reader, &mut out),
        AnyDetector::Auto(d) => score_rows(&d, options.input, &mut reader, &mut out),
    };
    // Rows before a bad line go out too, as they would have in a longer
    // stream whose buffer had already been written.
    let flushed = out.flush().map_err(ScoreError::Write);
    scored.and(flushed)
}

fn score_rows<D: Detector>(
    detector: &D,
    input: Input,
    reader: &mut csv::Reader<impl Read>,
    out: &mut impl Write,
) -> Result<(), ScoreError> {
    let mut record = csv::ByteRecord::new();
    let mut series = detector.new_state();
    let mut entities: HashMap<Vec<u8>, D::State> = HashMap::new();
    let mut score_text = ryu::Buffer::new();
    let mut first = true;
    while reader.read_byte_record(&mut record).map_err(read_error)? {
        if record.len() == 1 && field(&record, 0).is_empty() {
            // A blank `\r\n` line (csv skips blank `\n` lines itself).
            continue;
        }
        if record.len() != input.fields() {
            return Err(ScoreError::FieldCount {
                line: start_line(reader, &record),
                input,
                found: record.len(),
            });
        }
        let lead = field(&record, 0);
        let lead = if first {
            lead.strip_prefix(UTF8_BOM).unwrap_or(lead)
        } else {
            lead
        };
        let (entity, timestamp, value_text) = match input {
            Input::Series => (None, lead, field(&record, 1)),
            Input::Entities => (Some(lead), field(&record, 1), field(&record, 2)),
        };
        let value = match parse_value(value_text) {
            Ok(value) => value,
            Err(ValueProblem::NotANumber) if first => {
                first = false;
                out.write_all(input.output_header())
                    .map_err(ScoreError::Write)?;
                continue;
            }
            Err(problem) => return Err(problem.at(start_line(reader, &record), value_text)),
        };
        first = false;
        let at = if detector.uses_time() {
            Some(parse_time(timestamp).ok_or_else(|| ScoreError::NotATime {
                line: start_line(reader, &record),
                text: String::from_utf8_lossy(timestamp).into_owned(),
            })?)
        } else {
            None
        };
        let verdict = match entity {
            None => observe(detector, &mut series, at, value),
            Some(entity) => observe_entity(detector, &mut entities, entity, at, value),
        };
        let score = score_text.format(verdict.graded()).as_bytes();
        write_row(out, entity, timestamp, value_text, score).map_err(ScoreError::Write)?;
    }
    Ok(())
}

/// The line (1-based) on which the record just read started.
///
/// The record's own position is no help: csv takes it before skipping the
/// blank lines ahead of the record (and, in its default `\r\n` mode, before
/// the `\n` of the previous line end). The reader's line count after the
/// record is exact, though, since each record ends with the `\n` it consumed,
/// after any line breaks inside its quoted fields.
fn start_line(reader: &csv::Reader<impl Read>, record: &csv::ByteRecord) -> u64 {
    let breaks = record
        .as_slice()
        .iter()
        .filter(|&&byte| byte == b'\n')
        .count();
    reader
        .position()
        .line()
        .saturating_sub(1 + u64::try_from(breaks).unwrap_or(u64::MAX))
}

/// Field `index` of `record`; the last field without the `\r` of a `\r\n`
/// line end.
fn field(record: &csv::ByteRecord, index: usize) -> &[u8] {
    let field = &record[index];
    if index + 1 == record.len() {
        field.strip_suffix(b"\r").unwrap_or(field)
    } else {
        field
    }
}

/// Scores `value`, with its time when the detector uses one.
fn observe<D: Detector>(
    detector: &D,
    state: &mut D::State,
    at: Option<OffsetDateTime>,
    value: f64,
) -> Verdict {
    match at {
        Some(at) => detector.observe_at(state, at, value),
        None => detector.observe(state, value),
    }
}

/// Scores `value` with the state of `entity`, created on its first row.
fn observe_entity<D: Detector>(
    detector: &D,
    states: &mut HashMap<Vec<u8>, D::State>,
    entity: &[u8],
    at: Option<OffsetDateTime>,
    value: f64,
) -> Verdict {
    if let Some(state) = states.get_mut(entity) {
        return observe(detector, state, at, value);
    }
    let mut state = detector.new_state();
    let verdict = observe(detector, &mut state, at, value);
    states.insert(entity.to_vec(), state);
    verdict
}

/// A timestamp as RFC 3339 (`2024-01-01T09:30:00Z`, `...+05:30`), as
/// `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS` (UTC; fractions of a
/// second allowed), as a date (its midnight UTC), or as a whole number of
/// seconds since 1970 (milliseconds from 10^11 on, i.e. from 1973 in
/// milliseconds).
fn parse_time(text: &[u8]) -> Option<OffsetDateTime> {
    let text = std::str::from_utf8(text).ok()?.trim_ascii();
    if let Ok(number) = text.parse::<i64>() {
        let seconds = if number.abs() >= 100_000_000_000 {
            number.div_euclid(1000)
        } else {
            number
        };
        return OffsetDateTime::from_unix_timestamp(seconds).ok();
    }
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(at);
    }
    let naive = text.replacen('T', " ", 1);
    let formats = [
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]"),
    ];
    for format in formats {
        if let Ok(at) = PrimitiveDateTime::parse(&naive, format) {
            return Some(at.assume_utc());
        }
    }
    Date::parse(text, format_description!("[year]-[month]-[day]"))
        .ok()
        .map(|date| date.midnight().assume_utc())
}

fn read_error(error: csv::Error) -> ScoreError {
    ScoreError::Read(match error.into_kind() {
        csv::ErrorKind::Io(error) => error,
        // Byte records with flexible field counts fail only on I/O.
        other => io::Error::other(format!("{other:?}")),
    })
}

/// Why a value field was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueProblem {
    NotANumber,
    NotFinite,
}

impl ValueProblem {
    fn at(self, line: u64, text: &[u8]) -> ScoreError {
        let text = String::from_utf8_lossy(text).into_owned();
        match self {
            ValueProblem::NotANumber => ScoreError::NotANumber { line, text },
            ValueProblem::NotFinite => ScoreError::NotFinite { line, text },
        }
    }
}

fn parse_value(text: &[u8]) -> Result<f64, ValueProblem> {
    let value: f64 = std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.trim_ascii().parse().ok())
        .ok_or(ValueProblem::NotANumber)?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ValueProblem::NotFinite)
    }
}

fn write_row(
    out: &mut impl Write,
    entity: Option<&[u8]>,
    timestamp: &[u8],
    value: &[u8],
    score: &[u8],
) -> io::Result<()> {
    if let Some(entity) = entity {
        write_field(out, entity)?;
        out.write_all(b",")?;
    }
    write_field(out, timestamp)?;
    out.write_all(b",")?;
    write_field(out, value)?;
    out.write_all(b",")?;
    out.write_all(score)?;
    out.write_all(b"\n")
}

/// Writes a field as it was read, quoted only if it must be (it holds a
/// comma, quote or line break), so it reads back as the same text.
fn write_field(out: &mut impl Write, field: &[u8]) -> io::Result<()> {
    if !field
        .iter()
        .any(|&byte| matches!(byte, b',' | b'"' | b'\n' | b'\r'))
    {
        return out.write_all(field);
    }
    out.write_all(b"\"")?;
    for (index, part) in field.split(|&byte| byte == b'"').enumerate() {
        if index > 0 {
            out.write_all(b"\"\"")?;
        }
        out.write_all(part)?;
    }
    out.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use txwatch_domain::{Ewma, RobustZScore, RollingMean, ZScore};

    /// Runs the tool on `input` with command-line `args`.
    fn run(args: &[&str], input: &str) -> Result<String, ScoreError> {
        let args = Args::try_parse_from(std::iter::once("score").chain(args.iter().copied()))
            .expect("test arguments parse");
        let options = args.options()?;
        let mut output = Vec::new();
        score_csv(input.as_bytes(), &mut output, &options)?;
        Ok(String::from_utf8(output).expect("output is UTF-8 for UTF-8 input"))
    }

    fn scored(args: &[&str], input: &str) -> String {
        run(args, input).expect("input scores")
    }

    /// The last field of each output line, as a number.
    fn scores(output: &str) -> Vec<f64> {
        output
            .lines()
            .map(|line| {
                let (_, score) = line.rsplit_once(',').expect("a score column");
                score.parse().expect("scores are numbers")
            })
            .collect()
    }

    /// A quiet series around 100, `len` rows, `t<i>,<value>` without header.
    fn quiet(len: usize) -> Vec<(String, f64)> {
        (0..len)
            .map(|i| (format!("t{i}"), 100.0 + [0.0, 1.5, -1.0, 0.5, -2.0][i % 5]))
            .collect()
    }

    fn csv_of(rows: &[(String, f64)]) -> String {
        rows.iter().map(|(t, v)| format!("{t},{v}\n")).collect()
    }

    const DETECTORS: [&str; 4] = ["rolling_mean", "zscore", "robust", "ewma"];

    #[test]
    fn every_input_row_gets_one_output_row_in_order_with_its_text() {
        let input = "2024-01-01T00:00:00Z,12\nlater, 7.50 \nx,1e2\n\"Jan 1, 2024\",+3\n\"say \"\"hi\"\"\",007\n";
        let output = scored(&[], input);
        let echoed: Vec<&str> = output
            .lines()
            .map(|line| line.rsplit_once(',').expect("a score column").0)
            .collect();
        assert_eq!(
            echoed,
            [
                "2024-01-01T00:00:00Z,12",
                "later, 7.50 ",
                "x,1e2",
                "\"Jan 1, 2024\",+3",
                "\"say \"\"hi\"\"\",007",
            ]
        );
    }

    #[test]
    fn crlf_line_ends_and_blank_lines_read_like_lf() {
        let crlf = scored(
            &[],
            "timestamp,value\r\n\r\nt,1\r\n\r\n\"u\",\"2\"\r\nv, 3\r\n",
        );
        let lf = scored(&[], "timestamp,value\n\nt,1\n\n\"u\",\"2\"\nv, 3");
        assert_eq!(
            crlf,
            "timestamp,value,anomaly_score\nt,1,0.0\nu,2,0.0\nv, 3,0.0\n"
        );
        assert_eq!(crlf, lf);
    }

    #[test]
    fn scores_are_the_detectors_graded_verdicts_exactly() {
        let mut rows = quiet(60);
        rows.push(("spike".into(), 180.0));
        rows.extend(quiet(20));
        for name in DETECTORS {
            let options = Args::try_parse_from(["score", "--detector", name])
                .expect("arguments parse")
                .options()
                .expect("defaults are valid");
            let mut state = options.detector.new_state();
            let expected: Vec<f64> = rows
                .iter()
                .map(|(_, value)| options.detector.observe(&mut state, *value).graded())
                .collect();
            let got = scores(&scored(&["--detector", name], &csv_of(&rows)));
            assert_eq!(got.len(), expected.len(), "{name}");
            for (got, expected) in got.iter().zip(&expected) {
                assert_eq!(got.to_bits(), expected.to_bits(), "{name}");
                assert!((0.0..=1.0).contains(got), "{name}");
            }
        }
    }

    #[test]
    fn warm_up_rows_score_zero() {
        for name in DETECTORS {
            let output = scored(&["--detector", name], &csv_of(&quiet(30)));
            let lines: Vec<&str> = output.lines().collect();
            assert_eq!(lines.len(), 30);
            // Every default needs 10 earlier values.
            for line in &lines[..10] {
                assert!(line.ends_with(",0.0"), "{name}: {line}");
            }
        }
        let output = scored(
            &["--detector", "zscore", "--min-history", "3"],
            &csv_of(&quiet(5)),
        );
        let warm_up: Vec<&str> = output.lines().filter(|l| l.ends_with(",0.0")).collect();
        assert_eq!(warm_up, ["t0,100,0.0", "t1,101.5,0.0", "t2,99,0.0"]);
    }

    #[test]
    fn a_spike_after_a_quiet_series_scores_above_one_half() {
        let mut rows = quiet(40);
        rows.push(("spike".into(), 1_000.0));
        for name in DETECTORS {
            let got = scores(&scored(&["--detector", name], &csv_of(&rows)));
            let (spike, before) = got.split_last().expect("rows");
            assert!(*spike > 0.5, "{name}: {spike}");
            assert!(before.iter().all(|score| *score <= 0.5), "{name}");
        }
    }

    #[test]
    fn a_first_line_without_a_number_is_a_header_and_gets_the_output_header() {
        let cases: [(&[&str], &str, &str); 6] = [
            (
                &[],
                "timestamp,value\nt,1\n",
                "timestamp,value,anomaly_score\nt,1,0.0\n",
            ),
            (
                &[],
                "ts,amount\nt,1\n",
                "timestamp,value,anomaly_score\nt,1,0.0\n",
            ),
            (
                &[],
                "\u{feff}timestamp,value\n",
                "timestamp,value,anomaly_score\n",
            ),
            (&[], "t,1\nu,2\n", "t,1,0.0\nu,2,0.0\n"),
            (&[], "", ""),
            (
                &["--entities"],
                "entity,timestamp,value\r\na,t,1\r\n",
                "entity,timestamp,value,anomaly_score\na,t,1,0.0\n",
            ),
        ];
        for (args, input, expected) in cases {
            assert_eq!(scored(args, input), expected, "{input:?}");
        }
    }

    #[test]
    fn entities_are_scored_independently() {
        let mut spiky = quiet(40);
        spiky[30].1 = 1_000.0;
        let calm = quiet(40);
        let mut input = String::new();
        for (a, b) in spiky.iter().zip(&calm) {
            input.push_str(&format!("a,{},{}\nb,{},{}\n", a.0, a.1, b.0, b.1));
        }
        for name in DETECTORS {
            let output = scored(&["--entities", "--detector", name], &input);
            let alone = |entity: &str| -> String {
                output
                    .lines()
                    .filter_map(|line| line.strip_prefix(entity))
                    .map(|rest| format!("{rest}\n"))
                    .collect()
            };
            let spiky_alone = scored(&["--detector", name], &csv_of(&spiky));
            let calm_alone = scored(&["--detector", name], &csv_of(&calm));
            assert_eq!(alone("a,"), spiky_alone, "{name}");
            assert_eq!(alone("b,"), calm_alone, "{name}");
            assert!(scores(&alone("a,"))[30] > 0.5, "{name}");
            assert!(scores(&alone("b,")).iter().all(|s| *s <= 0.5), "{name}");
        }
    }

    #[test]
    fn bad_lines_are_reported_with_their_line_number() {
        #[derive(Debug, PartialEq)]
        enum Kind {
            Fields(usize),
            NotANumber,
            NotFinite,
        }
        let cases: [(&[&str], &str, u64, Kind); 18] = [
            (&[], "t,1\nt,abc\n", 2, Kind::NotANumber),
            (&[], "timestamp,value\nt,1\nt,NaN\n", 3, Kind::NotFinite),
            (&[], "t,inf\n", 1, Kind::NotFinite),
            (&[], "t,1\nt,-infinity\n", 2, Kind::NotFinite),
            (&[], "t,1\nt,1e999\n", 2, Kind::NotFinite),
            (&[], "t,1\nt,\n", 2, Kind::NotANumber),
            (&[], "t,1\nt\n", 2, Kind::Fields(1)),
            (&[], "t,1\r\nt,1,2\r\n", 2, Kind::Fields(3)),
            (
                &[],
                "timestamp,value\ntimestamp,value\n",
                2,
                Kind::NotANumber,
            ),
            (&[], "t,1\n\n\nt,x\n", 4, Kind::NotANumber),
            (&[], "t,1\n\"multi\nline\",x\n", 2, Kind::NotANumber),
            (&[], "t,1\r\n\r\nt,2\r\n\r\nt,x\r\n", 5, Kind::NotANumber),
            (
                &[],
                "t,1\r\n\"multi\r\nline\",2\r\nt,\"x\"\r\n",
                4,
                Kind::NotANumber,
            ),
            (&["--entities"], "a,t,1\nt,2\n", 2, Kind::Fields(2)),
            (&[], "t,1\nt,x", 2, Kind::NotANumber),
            (&[], "\n\r\n\nt,inf\n", 4, Kind::NotFinite),
            (&[], "\"a\nb\nc\",1\nt,x\n", 4, Kind::NotANumber),
            (
                &["--entities"],
                "\"a\r\nb\",t,1\r\n\r\na,t\r\n",
                4,
                Kind::Fields(2),
            ),
        ];
        for (args, input, expected_line, expected_kind) in cases {
            let (line, kind) = match run(args, input) {
                Err(ScoreError::FieldCount { line, found, .. }) => (line, Kind::Fields(found)),
                Err(ScoreError::NotANumber { line, .. }) => (line, Kind::NotANumber),
                Err(ScoreError::NotFinite { line, .. }) => (line, Kind::NotFinite),
                other => panic!("{input:?}: expected a bad line, got {other:?}"),
            };
            assert_eq!((line, kind), (expected_line, expected_kind), "{input:?}");
        }
    }

    #[test]
    fn a_bad_line_message_names_the_line_and_exits_with_2() {
        let error = run(&[], "timestamp,value\nt,1\nt,abc\n").expect_err("abc is refused");
        assert_eq!(error.to_string(), "line 3: value `abc` is not a number");
        assert_eq!(error.exit_code(), 2);
        let error = run(&["--entities"], "a,t,1,9\n").expect_err("four fields");
        assert_eq!(
            error.to_string(),
            "line 1: expected 3 fields (entity,timestamp,value), found 4"
        );
    }

    #[test]
    fn rows_before_a_bad_line_are_written() {
        let options = Args::try_parse_from(["score"])
            .expect("no arguments parse")
            .options()
            .expect("defaults are valid");
        let mut output = Vec::new();
        let result = score_csv("t,1\nu,2\nv,oops\n".as_bytes(), &mut output, &options);
        assert!(matches!(
            result,
            Err(ScoreError::NotANumber { line: 3, .. })
        ));
        assert_eq!(output, b"t,1,0.0\nu,2,0.0\n");
    }

    #[test]
    fn a_parameter_the_detector_does_not_take_is_rejected() {
        // The detector, then the option it does not take and its value.
        let cases: [(DetectorKind, [&str; 2]); 5] = [
            (DetectorKind::ZScore, ["--multiplier", "3"]),
            (DetectorKind::RollingMean, ["--threshold", "3"]),
            (DetectorKind::Robust, ["--alpha", "0.2"]),
            (DetectorKind::Ewma, ["--window", "5"]),
            (DetectorKind::Ewma, ["--multiplier", "2"]),
        ];
        for (detector, extra) in cases {
            let mut args = vec!["score", "--detector", detector.as_str()];
            args.extend_from_slice(&extra);
            let result = Args::try_parse_from(&args)
                .expect("arguments parse")
                .options();
            match result {
                Err(ScoreError::Parameter {
                    option,
                    detector: d,
                }) => {
                    assert_eq!((option, d), (extra[0], detector), "{args:?}");
                }
                other => panic!("{args:?}: expected a parameter error, got {other:?}"),
            }
        }
        let error = run(&["--detector", "zscore", "--multiplier", "3"], "")
            .expect_err("zscore has no multiplier");
        assert_eq!(
            error.to_string(),
            "--multiplier does not apply to the zscore detector, \
             which takes --window, --min-history, --threshold"
        );
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn invalid_parameters_report_the_detector_config_error() {
        let cases: [(&[&str], DetectorConfigError); 4] = [
            (&["--window", "1"], DetectorConfigError::Window(1)),
            (
                &["--window", "5"],
                DetectorConfigError::MinHistory {
                    min_history: 10,
                    window: 5,
                },
            ),
            (
                &["--detector", "robust", "--threshold", "-1"],
                DetectorConfigError::NotPositive {
                    name: "threshold",
                    value: -1.0,
                },
            ),
            (
                &["--detector", "ewma", "--alpha", "1"],
                DetectorConfigError::Alpha(1.0),
            ),
        ];
        for (args, expected) in cases {
            match run(args, "") {
                Err(ScoreError::Config { source, .. }) => assert_eq!(source, expected, "{args:?}"),
                other => panic!("{args:?}: expected a config error, got {other:?}"),
            }
        }
        let error = run(&["--window", "1"], "").expect_err("window 1 is too small");
        assert_eq!(
            with_sources(&error),
            "invalid rolling_mean parameters: window must be at least 2, got 1"
        );
    }

    #[test]
    fn parameters_given_replace_the_defaults_and_the_rest_stay() {
        let cases: [(&[&str], AnyDetector); 6] = [
            (&[], AnyDetector::default()),
            (
                &["--window", "50", "--multiplier", "3"],
                AnyDetector::RollingMean(RollingMean::try_new(50, 10, 3.0).expect("valid")),
            ),
            (
                &["--detector", "zscore", "--min-history", "4"],
                AnyDetector::ZScore(ZScore::try_new(20, 4, 3.0).expect("valid")),
            ),
            (
                &["--detector", "robust", "--threshold", "5"],
                AnyDetector::Robust(RobustZScore::try_new(30, 10, 5.0).expect("valid")),
            ),
            (
                &["--detector", "ewma", "--alpha", "0.3"],
                AnyDetector::Ewma(Ewma::try_new(0.3, 10, 3.0).expect("valid")),
            ),
            (
                &["--detector", "robust", "--scale", "linear"],
                AnyDetector::Robust(RobustZScore::default().with_scale(RobustScale::Linear)),
            ),
        ];
        for (args, expected) in cases {
            let options = Args::try_parse_from(std::iter::once(&"score").chain(args))
                .expect("arguments parse")
                .options()
                .expect("parameters are valid");
            assert_eq!(options.detector, expected, "{args:?}");
            assert_eq!(options.input, Input::Series);
        }
    }

    #[test]
    fn scale_applies_to_the_robust_detector_only() {
        let error =
            run(&["--detector", "zscore", "--scale", "log"], "1,1\n").expect_err("rejected");
        assert!(
            matches!(
                error,
                ScoreError::Parameter {
                    option: "--scale",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(
            Args::try_parse_from(["score", "--detector", "robust", "--scale", "cubic"]).is_err()
        );
    }

    #[test]
    fn the_documented_defaults_are_the_libraries() {
        let rolling = RollingMean::default();
        let zscore = ZScore::default();
        let robust = RobustZScore::default();
        let ewma = Ewma::default();
        assert_eq!(
            [rolling.window(), zscore.window(), robust.window()],
            [20, 20, 30]
        );
        assert_eq!(
            [
                rolling.min_history(),
                zscore.min_history(),
                robust.min_history(),
                ewma.min_history()
            ],
            [10; 4]
        );
        assert_eq!(rolling.multiplier(), 5.0);
        assert_eq!(
            [zscore.threshold(), robust.threshold(), ewma.threshold()],
            [3.0, 3.5, 3.0]
        );
        assert_eq!(ewma.alpha(), 0.1);
    }

    #[test]
    fn an_unknown_detector_is_a_usage_error() {
        let error = Args::try_parse_from(["score", "--detector", "median"])
            .expect_err("median is not a detector");
        assert_eq!(error.kind(), clap::error::ErrorKind::InvalidValue);
        assert!(error.to_string().contains("rolling_mean"), "{error}");
    }

    #[test]
    fn time_aware_detectors_read_each_rows_timestamp_in_every_documented_form() {
        // One series written four ways: the scores must equal the library's
        // judging the same values at the same times.
        let start = OffsetDateTime::UNIX_EPOCH + time::Duration::days(19_723);
        let rows: Vec<(OffsetDateTime, f64)> = (0..120i64)
            .map(|i| {
                let at = start + time::Duration::minutes(30 * i);
                let busy = (9..17).contains(&at.hour());
                (at, if busy { 900.0 } else { 90.0 } + (i % 7) as f64)
            })
            .collect();
        let forms: [fn(OffsetDateTime) -> String; 4] = [
            |at| at.format(&Rfc3339).expect("formats"),
            |at| {
                at.format(format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second]"
                ))
                .expect("formats")
            },
            |at| at.unix_timestamp().to_string(),
            |at| (at.unix_timestamp() * 1000).to_string(),
        ];
        for name in ["seasonal", "auto"] {
            let options = Args::try_parse_from(["score", "--detector", name])
                .expect("arguments parse")
                .options()
                .expect("defaults are valid");
            let mut state = options.detector.new_state();
            let expected: Vec<f64> = rows
                .iter()
                .map(|(at, v)| options.detector.observe_at(&mut state, *at, *v).graded())
                .collect();
            for form in forms {
                let input: String = rows
                    .iter()
                    .map(|(at, v)| format!("{},{v}\n", form(*at)))
                    .collect();
                let got = scores(&scored(&["--detector", name], &input));
                assert_eq!(got, expected, "{name}: {}", form(start));
            }
        }
        let offset = "2024-01-01T09:30:00+05:30";
        assert_eq!(
            parse_time(offset.as_bytes()).map(|at| (at.hour(), at.offset().whole_seconds())),
            Some((9, 19_800))
        );
        assert_eq!(
            parse_time(b"2024-01-01"),
            Some(start),
            "a date alone is its midnight UTC"
        );
    }

    #[test]
    fn a_timestamp_a_time_aware_detector_cannot_read_is_an_error_naming_the_line() {
        let error = run(&["--detector", "auto"], "2024-01-01T00:00:00Z,1\nlater,2\n")
            .expect_err("`later` is no time");
        assert!(
            matches!(error, ScoreError::NotATime { line: 2, .. }),
            "{error:?}"
        );
        assert_eq!(error.exit_code(), 2);
        // Detectors that judge values alone pass any text through.
        assert!(run(&["--detector", "knn"], "later,2\n").is_ok());
    }

    #[test]
    fn every_detector_is_accepted_with_the_parameters_it_takes_and_no_others() {
        for kind in DetectorKind::ALL {
            let options = Args::try_parse_from(["score", "--detector", kind.as_str()])
                .expect("every name parses")
                .options()
                .expect("defaults are valid");
            assert_eq!(options.detector, AnyDetector::with_defaults(kind));
        }
        let knn = Args::try_parse_from(["score", "--detector", "knn", "--window", "80"])
            .expect("parses")
            .options()
            .expect("knn takes a window");
        assert_eq!(knn.detector.kind(), DetectorKind::Knn);
        let error =
            run(&["--detector", "auto", "--threshold", "3"], "").expect_err("auto takes none");
        assert!(
            matches!(
                error,
                ScoreError::Parameter {
                    option: "--threshold",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Args::command().debug_assert();
    }
}
