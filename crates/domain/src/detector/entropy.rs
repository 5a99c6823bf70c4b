//! Relative entropy (multinomial goodness of fit) over sliding windows.

use serde::{Deserialize, Serialize};

use super::calibration::{
    RELATIVE_FLOOR, conformal_ln_p, floored_spread, ln_chi_square_even, ln_normal_two_sided,
    score_from_ln_p,
};
use super::ring::Ring;
use super::run::Run;
use super::{Detector, DetectorConfigError, Score, Verdict, standard_units};

/// Bins the values are quantized into; 4 degrees of freedom.
const BINS: usize = 5;
/// Reference distributions kept at most.
const MAX_HYPOTHESES: usize = 12;
/// Windows a reference must have matched before it counts as normal
/// behaviour (the paper's `c_th`).
const ESTABLISHED: u32 = 4;
/// Significance at which a window is taken to match a reference.
const MATCH_LN_P: f64 = -4.605_170_185_988_091; // ln 0.01
/// Statistics kept to rank a new one among (see [`conformal_ln_p`]).
const STATISTICS: usize = 50;
/// Pseudo-count added to every bin, so no probability is 0.
const PSEUDO: f64 = 0.5;

/// Flags a change in the distribution of recent values, after Wang et al.,
/// "Statistical techniques for online anomaly detection in data centers"
/// (2011): values are quantized into 5 bins (edges at the quintiles of the
/// first `window` values); the histogram of the last `window` values is
/// compared with each reference distribution learned so far by relative
/// entropy, and `2 W D(P || Q)` is tested against a chi-square distribution
/// with 4 degrees of freedom (the multinomial goodness-of-fit test). Every
/// quarter window the detector learns: a window that matches no reference
/// (at 1%) becomes a new one, and a reference matched by at least 4 windows
/// is normal behaviour. Up to 12 references are kept (the least matched
/// gives way).
///
/// The score is the chi-square tail probability of the best-matching
/// normal reference: it sees level shifts and changes of spread and shape,
/// not a single spike among `window` values (one value moves a histogram
/// little). A flat window (every value equal) has no distribution to
/// compare: a value is then judged by the floor of 1% of the level.
/// Flags a value when its score is above 0.5. Defaults: window 32,
/// minimum history 64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelativeEntropy {
    window: usize,
    min_history: usize,
}

/// One learned distribution of the values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reference {
    /// Natural logarithms of its (smoothed) bin probabilities.
    ln_q: [f64; BINS],
    /// Windows that matched it.
    matched: u32,
}

/// What [`RelativeEntropy`] remembers: the last `window` values, the bin
/// edges and up to 12 references.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelativeEntropyState {
    values: Ring,
    /// Inner bin edges, set from the first full window.
    edges: Vec<f64>,
    counts: [u32; BINS],
    references: Vec<Reference>,
    since_learned: usize,
    seen: usize,
    run: Run,
    /// The statistic of the last 50 values judged, to calibrate by rank.
    statistics: Ring,
}

impl Default for RelativeEntropy {
    fn default() -> Self {
        RelativeEntropy {
            window: 32,
            min_history: 64,
        }
    }
}

impl RelativeEntropy {
    /// A detector comparing windows of `window` values, judging once
    /// `min_history` values were seen.
    ///
    /// # Errors
    /// [`DetectorConfigError`] when `window` is below 8 (too few values for
    /// 5 bins) or `min_history` below `window`.
    pub fn try_new(
        window: usize,
        min_history: usize,
    ) -> Result<RelativeEntropy, DetectorConfigError> {
        if window < 8 {
            return Err(DetectorConfigError::Window(window));
        }
        if min_history < window {
            return Err(DetectorConfigError::MinHistoryTooSmall {
                min_history,
                least: window,
            });
        }
        Ok(RelativeEntropy {
            window,
            min_history,
        })
    }

    /// Values per compared window.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Values needed before anything is judged.
    pub fn min_history(&self) -> usize {
        self.min_history
    }

    fn hop(&self) -> usize {
        (self.window / 4).max(1)
    }

    /// `2 W D(P || Q)` against `reference`, for a window whose
    /// distribution is `window`.
    fn statistic(&self, window: &Distribution, reference: &Reference) -> f64 {
        let cross: f64 = window
            .p
            .iter()
            .zip(&reference.ln_q)
            .map(|(p, lq)| p * lq)
            .sum();
        2.0 * self.window as f64 * (window.neg_entropy - cross).max(0.0)
    }

    fn distribution(&self, counts: &[u32; BINS]) -> Distribution {
        let total = self.window as f64 + PSEUDO * BINS as f64;
        let p = counts.map(|c| (f64::from(c) + PSEUDO) / total);
        let ln_p = p.map(f64::ln);
        let neg_entropy = p.iter().zip(&ln_p).map(|(p, lp)| p * lp).sum();
        Distribution {
            ln_p,
            p,
            neg_entropy,
        }
    }

    /// The counts once `value` joins the window (and the oldest leaves).
    fn counts_with(&self, state: &RelativeEntropyState, value: f64) -> [u32; BINS] {
        let mut counts = state.counts;
        counts[bin(&state.edges, value)] += 1;
        if state.values.len() == self.window
            && let Some(oldest) = state.values.iter().next()
        {
            let at = bin(&state.edges, oldest);
            counts[at] = counts[at].saturating_sub(1);
        }
        counts
    }
}

/// A window's smoothed distribution, with what every comparison needs.
struct Distribution {
    ln_p: [f64; BINS],
    p: [f64; BINS],
    /// `sum p ln p`.
    neg_entropy: f64,
}

impl RelativeEntropy {
    /// The statistic of the window `value` closes against the best-matching
    /// normal reference (any reference while none is normal yet); infinite
    /// when there is none.
    fn best_statistic(&self, state: &RelativeEntropyState, value: f64) -> f64 {
        let window = self.distribution(&self.counts_with(state, value));
        let any_established = state.references.iter().any(|r| r.matched >= ESTABLISHED);
        state
            .references
            .iter()
            .filter(|r| !any_established || r.matched >= ESTABLISHED)
            .map(|r| self.statistic(&window, r))
            .fold(f64::INFINITY, f64::min)
    }
}

fn bin(edges: &[f64], value: f64) -> usize {
    edges.partition_point(|edge| *edge < value).min(BINS - 1)
}

impl Detector for RelativeEntropy {
    type State = RelativeEntropyState;

    fn new_state(&self) -> RelativeEntropyState {
        RelativeEntropyState {
            values: Ring::new(self.window),
            edges: Vec::with_capacity(BINS - 1),
            counts: [0; BINS],
            references: Vec::with_capacity(MAX_HYPOTHESES),
            since_learned: 0,
            seen: 0,
            run: Run::default(),
            statistics: Ring::new(STATISTICS),
        }
    }

    fn score(&self, state: &RelativeEntropyState, value: f64) -> Verdict {
        self.judge(state, value).0
    }

    fn update(&self, state: &mut RelativeEntropyState, value: f64) {
        self.learn(state, value, None);
    }

    /// Judges and learns with one comparison against the references.
    fn observe(&self, state: &mut RelativeEntropyState, value: f64) -> Verdict {
        let (verdict, statistic) = self.judge(state, value);
        self.learn(state, value, statistic);
        verdict
    }
}

impl RelativeEntropy {
    /// The verdict on `value`, and the statistic it was judged by (when it
    /// was compared with the references).
    fn judge(&self, state: &RelativeEntropyState, value: f64) -> (Verdict, Option<f64>) {
        if state.seen < self.min_history || state.edges.is_empty() {
            return (Verdict::NotEnoughHistory { have: state.seen }, None);
        }
        let window_len = state.values.len();
        if let Some(flat) = state.run.flat_over(window_len) {
            // No distribution to compare: the floor rule every detector shares.
            let z = standard_units(value, flat, floored_spread(0.0, flat));
            let score = if z == 0.0 {
                0.0
            } else {
                score_from_ln_p(ln_normal_two_sided(z))
            };
            let verdict = Verdict::Scored(Score {
                is_anomaly: score > 0.5,
                score,
                window_len,
                baseline: flat,
                threshold: flat * (1.0 + 3.29 * RELATIVE_FLOOR),
            });
            return (verdict, None);
        }
        let best = self.best_statistic(state, value);
        let ln_tail = if best.is_finite() {
            // The chi-square tail assumes independent values; overlapping
            // windows of real series are not, so the statistic is also
            // ranked among its own recent values, and the larger tail holds.
            ln_chi_square_even(best, (BINS - 1) / 2).max(conformal_ln_p(
                &state.statistics,
                best,
                || 1.0,
            ))
        } else {
            0.0
        };
        let score = score_from_ln_p(ln_tail);
        let verdict = Verdict::Scored(Score {
            is_anomaly: score > 0.5,
            score,
            window_len,
            baseline: state.edges[BINS / 2 - 1],
            threshold: state.edges[BINS - 2],
        });
        (verdict, Some(best))
    }

    /// Learns `value`; `statistic` is its window's, if already computed.
    fn learn(&self, state: &mut RelativeEntropyState, value: f64, statistic: Option<f64>) {
        if !value.is_finite() {
            return;
        }
        if state.seen >= self.min_history && !state.edges.is_empty() {
            let best = statistic.unwrap_or_else(|| self.best_statistic(state, value));
            if best.is_finite() {
                state.statistics.push(best);
            }
        }
        state.seen = state.seen.saturating_add(1);
        state.run.push(value);
        if state.edges.is_empty() {
            state.values.push(value);
            if state.values.len() == self.window {
                let mut sorted: Vec<f64> = state.values.iter().collect();
                sorted.sort_by(f64::total_cmp);
                state
                    .edges
                    .extend((1..BINS).map(|i| sorted[i * self.window / BINS]));
                state.counts = [0; BINS];
                for v in state.values.iter() {
                    state.counts[bin(&state.edges, v)] += 1;
                }
                state.since_learned = self.hop();
            } else {
                return;
            }
        } else {
            state.counts = self.counts_with(state, value);
            state.values.push(value);
            state.since_learned += 1;
        }
        if state.since_learned < self.hop() {
            return;
        }
        state.since_learned = 0;
        let window = self.distribution(&state.counts);
        let best = state
            .references
            .iter_mut()
            .map(|r| (self.statistic(&window, r), r))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        match best {
            Some((statistic, reference))
                if ln_chi_square_even(statistic, (BINS - 1) / 2) >= MATCH_LN_P =>
            {
                reference.matched = reference.matched.saturating_add(1);
            }
            _ => {
                let fresh = Reference {
                    ln_q: window.ln_p,
                    matched: 1,
                };
                if state.references.len() < MAX_HYPOTHESES {
                    state.references.push(fresh);
                } else if let Some(least) = state.references.iter_mut().min_by_key(|r| r.matched) {
                    *least = fresh;
                }
            }
        }
    }
}
