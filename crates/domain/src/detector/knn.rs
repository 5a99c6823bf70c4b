//! k-nearest-neighbour conformal anomaly detection over lagged vectors.

use serde::{Deserialize, Serialize};

use super::calibration::{RELATIVE_FLOOR, conformal_ln_p, score_from_ln_p};
use super::ring::Ring;
use super::run::Run;
use super::{Detector, DetectorConfigError, Score, Verdict};

/// Values per lagged vector (the paper's `L`).
const DIM: usize = 6;
/// Neighbours whose distances make the nonconformity (the paper's `k`).
const K: usize = 5;
/// Flags a value whose recent trajectory is unlike its past ones, after
/// Burnaev and Ishimtsev, "Conformalized density- and distance-based
/// anomaly detection in time-series data" (2016): each value closes a
/// lagged vector of the last 6 values; its nonconformity is the sum of the
/// distances to its 5 nearest neighbours among the previous
/// `window` lagged vectors; its conformal p-value is the share of the last
/// `window` nonconformities (of earlier values) at least as large, counting
/// itself: `(1 + #{a_i >= a}) / (window + 1)`.
///
/// Choices the paper leaves open or that a stream needs:
/// - Manhattan (L1) rather than Mahalanobis distance: no covariance to
///   keep, and no squares to underflow or overflow at extreme magnitudes
///   (1e-300 or 1e300), so the state is the last `window + 5` values and `window`
///   nonconformities, O(`window` x 6) per value.
/// - A conformal p-value cannot go below `1 / (window + 1)`, and earlier
///   anomalies among the calibration scores would hide later ones. So a
///   score is ranked only when at least 4 calibration scores were as large;
///   beyond the fourth largest, the tail follows the decay of a normal tail
///   whose spread puts that fourth largest where it would be among normal
///   scores (1.75 spreads), so a value far beyond everything seen still
///   reaches a high score. When the calibration scores are all 0 (a flat or
///   exactly repeating series) the spread is 1% of the level per neighbour.
/// - A flagged value is left out of the distances of the lagged vectors
///   that hold it afterwards, so one spike raises one alarm and not six
///   (the "reduce false positives" step of the published detector).
///
/// Flags a value when its score is above 0.5. Defaults: window 50, minimum
/// history 30.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnnConformal {
    window: usize,
    min_history: usize,
}

/// What [`KnnConformal`] remembers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnnState {
    /// The last `window + DIM - 1` values.
    values: Slide,
    /// 1.0 where the value at the same place in `values` was flagged.
    flagged: Slide,
    /// Nonconformities of the last `window` values.
    calibration: Ring,
    seen: usize,
    run: Run,
}

impl Default for KnnConformal {
    fn default() -> Self {
        KnnConformal {
            window: 50,
            min_history: 30,
        }
    }
}

impl KnnConformal {
    /// A detector over `window` past lagged vectors and nonconformities,
    /// judging once `min_history` values were seen.
    ///
    /// # Errors
    /// [`DetectorConfigError`] when `window` is below 10 or `min_history`
    /// below 16 (a first lagged vector, 5 neighbours and 5 calibration
    /// scores).
    pub fn try_new(window: usize, min_history: usize) -> Result<KnnConformal, DetectorConfigError> {
        if window < 10 {
            return Err(DetectorConfigError::Window(window));
        }
        let least = DIM + K + 5;
        if min_history < least {
            return Err(DetectorConfigError::MinHistoryTooSmall { min_history, least });
        }
        Ok(KnnConformal {
            window,
            min_history,
        })
    }

    /// Past lagged vectors and nonconformities kept.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Values needed before anything is judged.
    pub fn min_history(&self) -> usize {
        self.min_history
    }

    /// The nonconformity of `value` closing a lagged vector after the
    /// values in `state`, and the mean of the values that closed its nearest
    /// neighbours (what the trajectory led to before: the baseline); `None`
    /// with fewer than `K` earlier vectors.
    fn nonconformity(&self, state: &KnnState, value: f64) -> Option<(f64, f64)> {
        let held = state.values.len();
        if held < DIM - 1 + K {
            return None;
        }
        let values = state.values.as_slice();
        let flags = state.flagged.as_slice();
        let any_flagged = flags.iter().any(|f| *f != 0.0);
        // The query: the last DIM - 1 values, then `value`.
        let query_start = held + 1 - DIM;
        let mut query = [0.0; DIM];
        query[..DIM - 1].copy_from_slice(&values[query_start..]);
        query[DIM - 1] = value;
        // Weights: 0 for a coordinate holding a flagged value, else 1
        // (branchless, so the loop stays as fast with flags as without).
        let mut query_kept = [1.0; DIM];
        for j in 0..DIM - 1 {
            query_kept[j] = 1.0 - flags[query_start + j];
        }
        let mut nearest = [f64::INFINITY; K];
        let mut closing = [0.0; K];
        // Earlier vectors: every window of DIM values before the query's
        // last one (the query itself is not among them).
        for (earlier, kept) in values.windows(DIM).zip(flags.windows(DIM)) {
            let (Ok(earlier), Ok(kept)) = (
                <&[f64; DIM]>::try_from(earlier),
                <&[f64; DIM]>::try_from(kept),
            ) else {
                continue;
            };
            let mut distance = 0.0;
            if any_flagged {
                for j in 0..DIM {
                    distance += query_kept[j] * (1.0 - kept[j]) * (query[j] - earlier[j]).abs();
                }
            } else {
                for j in 0..DIM {
                    distance += (query[j] - earlier[j]).abs();
                }
            }
            if distance < nearest[K - 1] {
                let mut k = K - 1;
                while k > 0 && nearest[k - 1] > distance {
                    nearest[k] = nearest[k - 1];
                    closing[k] = closing[k - 1];
                    k -= 1;
                }
                nearest[k] = distance;
                closing[k] = earlier[DIM - 1];
            }
        }
        // Finite, so states keep serializing as numbers.
        let a = nearest.iter().sum::<f64>().min(f64::MAX);
        Some((a, closing.iter().sum::<f64>() / K as f64))
    }

    /// The calibrated score of nonconformity `a`.
    fn judge(&self, state: &KnnState, a: f64) -> f64 {
        let floor = || K as f64 * RELATIVE_FLOOR * level(state).abs();
        score_from_ln_p(conformal_ln_p(&state.calibration, a, floor))
    }

    fn verdict(&self, state: &KnnState, value: f64) -> (Verdict, Option<f64>) {
        if state.seen < self.min_history || state.calibration.len() < 5 {
            return (Verdict::NotEnoughHistory { have: state.seen }, None);
        }
        let Some((a, expected)) = self.nonconformity(state, value) else {
            return (Verdict::NotEnoughHistory { have: state.seen }, None);
        };
        let score = if state.run.flat_over(DIM + K).is_some() && a == 0.0 {
            0.0
        } else {
            self.judge(state, a)
        };
        (
            Verdict::Scored(Score {
                is_anomaly: score > 0.5,
                score,
                window_len: state.seen.min(self.window + DIM - 1),
                baseline: expected,
                threshold: expected,
            }),
            Some(a),
        )
    }

    fn learn(&self, state: &mut KnnState, value: f64, a: Option<f64>, flagged: bool) {
        if !value.is_finite() {
            return;
        }
        let a = a.or_else(|| self.nonconformity(state, value).map(|(a, _)| a));
        if let Some(a) = a {
            state.calibration.push(a);
        }
        state.values.push(value);
        state.flagged.push(if flagged { 1.0 } else { 0.0 });
        state.seen = state.seen.saturating_add(1);
        state.run.push(value);
    }
}

/// The mean of the values held: the level the floor is relative to.
fn level(state: &KnnState) -> f64 {
    let values = state.values.as_slice();
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The last `capacity` values in one contiguous slice, oldest first: a
/// buffer of twice the capacity that moves its newest values to the front
/// when full (O(1) amortized, and no allocation after the first). Serialized
/// as a [`Ring`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "Ring", into = "Ring")]
struct Slide {
    capacity: usize,
    buffer: Vec<f64>,
    start: usize,
}

impl Slide {
    fn new(capacity: usize) -> Slide {
        Slide {
            capacity: capacity.max(1),
            buffer: Vec::with_capacity(2 * capacity.max(1)),
            start: 0,
        }
    }

    fn len(&self) -> usize {
        self.buffer.len() - self.start
    }

    fn as_slice(&self) -> &[f64] {
        &self.buffer[self.start..]
    }

    fn push(&mut self, value: f64) {
        if self.buffer.len() == 2 * self.capacity {
            self.buffer.drain(..self.buffer.len() - (self.capacity - 1));
            self.start = 0;
        }
        self.buffer.push(value);
        if self.len() > self.capacity {
            self.start += 1;
        }
    }
}

impl PartialEq for Slide {
    fn eq(&self, other: &Slide) -> bool {
        self.capacity == other.capacity
            && self.len() == other.len()
            && self
                .as_slice()
                .iter()
                .zip(other.as_slice())
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }
}

impl From<Ring> for Slide {
    fn from(ring: Ring) -> Slide {
        let mut slide = Slide::new(ring.capacity());
        for value in ring.iter() {
            slide.push(value);
        }
        slide
    }
}

impl From<Slide> for Ring {
    fn from(slide: Slide) -> Ring {
        let mut ring = Ring::new(slide.capacity);
        for value in slide.as_slice() {
            ring.push(*value);
        }
        ring
    }
}

impl Detector for KnnConformal {
    type State = KnnState;

    fn new_state(&self) -> KnnState {
        KnnState {
            values: Slide::new(self.window + DIM - 1),
            flagged: Slide::new(self.window + DIM - 1),
            calibration: Ring::new(self.window),
            seen: 0,
            run: Run::default(),
        }
    }

    fn score(&self, state: &KnnState, value: f64) -> Verdict {
        self.verdict(state, value).0
    }

    fn update(&self, state: &mut KnnState, value: f64) {
        let (verdict, a) = self.verdict(state, value);
        self.learn(state, value, a, verdict.is_anomaly());
    }

    fn observe(&self, state: &mut KnnState, value: f64) -> Verdict {
        let (verdict, a) = self.verdict(state, value);
        self.learn(state, value, a, verdict.is_anomaly());
        verdict
    }
}
