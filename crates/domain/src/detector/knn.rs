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
    /// For each earlier lagged vector, its distance to the next query over
    /// all but the last coordinate (which the next value fills): updated in
    /// O(window) per value along the diagonals, so a value costs O(window)
    /// rather than O(window x 6). Empty in a state saved before it existed:
    /// then recomputed.
    #[serde(default)]
    partial: Vec<f64>,
    /// Updates since `partial` was last recomputed from scratch, so
    /// rounding cannot accumulate.
    #[serde(default)]
    since_resync: usize,
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
    /// values in `state`, and the value that closed its nearest neighbour
    /// (what the same trajectory led to before: the baseline); `None` with
    /// fewer than `K` earlier vectors.
    fn nonconformity(&self, state: &KnnState, value: f64) -> Option<(f64, f64)> {
        let held = state.values.len();
        if held < DIM - 1 + K || state.partial.len() != held + 1 - DIM {
            return None;
        }
        if state.run.flat_over(held) == Some(value) {
            // Every vector equals the query: exactly 0, whatever rounding
            // the running distances carry.
            return Some((0.0, value));
        }
        let values = state.values.as_slice();
        let flags = state.flagged.as_slice();
        let mut nearest = [f64::INFINITY; K];
        // The value that closed the nearest vector: the baseline.
        let mut closing = value;
        // The vector starting at s ends at s + DIM - 1: its last coordinate
        // meets `value` (weight 0 where that value was flagged).
        let lasts = values[DIM - 1..].iter().zip(&flags[DIM - 1..]);
        // The K-th smallest so far, kept in a register: most vectors are
        // farther and cost one comparison.
        let mut worst = f64::INFINITY;
        for (partial, (last, flag)) in state.partial.iter().zip(lasts).rev() {
            let distance = partial + (1.0 - flag) * (value - last).abs();
            if distance < worst {
                if distance < nearest[0] {
                    closing = *last;
                }
                let mut k = K - 1;
                while k > 0 && nearest[k - 1] > distance {
                    nearest[k] = nearest[k - 1];
                    k -= 1;
                }
                nearest[k] = distance;
                worst = nearest[K - 1];
            }
        }
        // Finite, so states keep serializing as numbers.
        let a = nearest.iter().sum::<f64>().min(f64::MAX);
        Some((a, closing))
    }

    /// `partial` from scratch for the values held now.
    fn resync(state: &mut KnnState) {
        state.since_resync = 0;
        state.partial.clear();
        let values = state.values.as_slice();
        let flags = state.flagged.as_slice();
        let held = values.len();
        if held < DIM {
            return;
        }
        let query = held + 1 - DIM;
        for start in 0..=held - DIM {
            let mut distance = 0.0;
            for j in 0..DIM - 1 {
                distance += pair(
                    values[query + j],
                    flags[query + j],
                    values[start + j],
                    flags[start + j],
                );
            }
            state.partial.push(distance.min(f64::MAX));
        }
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
        let flag = if flagged { 1.0 } else { 0.0 };
        let held = state.values.len();
        let incremental = held >= DIM
            && state.partial.len() == held + 1 - DIM
            && state.since_resync < self.window + DIM;
        if incremental {
            // The query `value` closed, now complete, slides one step: each
            // diagonal gains the pair (value, the vector's last value) and
            // loses the pair of first coordinates. Entry s then belongs to
            // the vector one later; so with the oldest value leaving, entry
            // s is again the vector at s, and otherwise the oldest vector's
            // entry goes in front.
            let values = state.values.as_slice();
            let flags = state.flagged.as_slice();
            let first = held + 1 - DIM;
            let (q0, f0) = (values[first], flags[first]);
            let lasts = values[DIM - 1..].iter().zip(&flags[DIM - 1..]);
            let firsts = values.iter().zip(flags);
            for (partial, ((lv, lf), (fv, ff))) in state.partial.iter_mut().zip(lasts.zip(firsts)) {
                let next = *partial + pair(value, flag, *lv, *lf) - pair(q0, f0, *fv, *ff);
                // Rounding may leave a true 0 a hair below it (and a NaN,
                // from values near f64::MAX, becomes 0 until the next
                // recompute).
                *partial = next.max(0.0);
            }
        }
        let evicted = state.values.len() == state.values.capacity;
        state.values.push(value);
        state.flagged.push(flag);
        state.seen = state.seen.saturating_add(1);
        state.run.push(value);
        state.since_resync += 1;
        if incremental {
            if !evicted {
                // The oldest vector against the next query, directly.
                let values = state.values.as_slice();
                let flags = state.flagged.as_slice();
                let query = values.len() + 1 - DIM;
                let oldest = (0..DIM - 1)
                    .map(|j| pair(values[query + j], flags[query + j], values[j], flags[j]))
                    .sum::<f64>()
                    .min(f64::MAX);
                state.partial.insert(0, oldest);
            }
            if state.partial.iter().any(|d| !d.is_finite()) {
                Self::resync(state);
            }
        } else {
            Self::resync(state);
        }
    }
}

/// The weighted distance of two coordinates: 0 where either value was
/// flagged (`flag` 1), else their absolute difference. (A product, not a
/// branch: for values near `f64::MAX` it can be NaN, and then the running
/// distances are recomputed.)
fn pair(a: f64, a_flag: f64, b: f64, b_flag: f64) -> f64 {
    (1.0 - a_flag) * (1.0 - b_flag) * (a - b).abs()
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
            partial: Vec::with_capacity(self.window + 1),
            since_resync: 0,
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The nonconformity from scratch: every lagged vector, every
    /// coordinate, flagged values left out.
    fn brute_force(state: &KnnState, value: f64) -> Option<f64> {
        let values = state.values.as_slice();
        let flags = state.flagged.as_slice();
        let held = values.len();
        if held < DIM - 1 + K {
            return None;
        }
        let query_start = held + 1 - DIM;
        let query = |j: usize| {
            if j + 1 == DIM {
                (value, 0.0)
            } else {
                (values[query_start + j], flags[query_start + j])
            }
        };
        let mut distances: Vec<f64> = (0..=held - DIM)
            .map(|start| {
                (0..DIM)
                    .map(|j| {
                        let (q, qf) = query(j);
                        pair(q, qf, values[start + j], flags[start + j])
                    })
                    .sum()
            })
            .collect();
        distances.sort_by(f64::total_cmp);
        Some(distances[..K].iter().sum())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn running_distances_equal_a_from_scratch_computation(
            values in prop::collection::vec(
                prop_oneof![8 => -1e4..1e4_f64, 1 => Just(5.0), 1 => 1e6..1e7_f64],
                0..300,
            ),
            window in 10usize..40,
        ) {
            let detector = KnnConformal::try_new(window, 16).expect("valid");
            let mut state = detector.new_state();
            for value in values {
                if let (Some((running, _)), Some(exact)) =
                    (detector.nonconformity(&state, value), brute_force(&state, value))
                {
                    let scale = state.values.as_slice().iter().fold(value.abs(), |m, v| m.max(v.abs()));
                    prop_assert!(
                        (running - exact).abs() <= 1e-9 * scale.max(1.0),
                        "running {} vs exact {}", running, exact
                    );
                }
                detector.observe(&mut state, value);
            }
        }
    }
}
