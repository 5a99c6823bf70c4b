//! Calibrated scores: every detector's score is a function of one number,
//! an estimate of the tail probability `p` of the value given the entity's
//! past ("a value at least this unusual happens with probability `p`").
//!
//! The score is `s = u / (u + 3)` with `u = -log10(p)`, the surprise in
//! decimal digits: 0 for an ordinary value (`p = 1`), 0.5 at `p = 1/1000`,
//! 0.67 at one in a million, 0.8 at 10^-12, approaching 1. It keeps the order
//! of the probabilities over their whole range (a plain `1 - p` would round
//! every `p` below 10^-16 to 1), so one global threshold ranks the values of
//! many entities, whatever their scale, shape or detector.

/// Surprise (decimal digits) that scores 0.5: one in a thousand.
pub(crate) const SURPRISE_AT_HALF: f64 = 3.0;

/// The spread a flat history is given, relative to its level: a move of 1%
/// of the level off a flat line is one standard unit.
pub(crate) const RELATIVE_FLOOR: f64 = 0.01;

/// The score of a tail probability given by its natural logarithm (at most
/// 0; larger values count as 0, NaN as no evidence).
pub(crate) fn score_from_ln_p(ln_p: f64) -> f64 {
    if ln_p.is_nan() || ln_p >= 0.0 {
        return 0.0;
    }
    let surprise = -ln_p / std::f64::consts::LN_10;
    if surprise.is_infinite() {
        return 1.0;
    }
    surprise / (surprise + SURPRISE_AT_HALF)
}

/// The natural logarithm of `p` whose score is `score` (the inverse of
/// [`score_from_ln_p`]): how [`auto`](super::Auto) reads its members back.
pub(crate) fn ln_p_from_score(score: f64) -> f64 {
    if score.is_nan() || score <= 0.0 {
        return 0.0;
    }
    if score >= 1.0 {
        return f64::NEG_INFINITY;
    }
    -SURPRISE_AT_HALF * score / (1.0 - score) * std::f64::consts::LN_10
}

/// `ln P(|Z| >= z)` for a standard normal `Z`: the two-sided tail.
///
/// `erfc(x) = t exp(-x^2 + P(t))` with `t = 1 / (1 + x/2)` and a
/// ninth-degree polynomial `P` (the Chebyshev fit in Press et al.,
/// Numerical Recipes, section 6.2: relative error below 1.2e-7 for every
/// `x >= 0`), taken in logarithms so that it never underflows.
pub(crate) fn ln_normal_two_sided(z: f64) -> f64 {
    let x = z.abs() * std::f64::consts::FRAC_1_SQRT_2;
    if x.is_nan() {
        return 0.0;
    }
    if x.is_infinite() {
        return f64::NEG_INFINITY;
    }
    let t = 1.0 / (1.0 + 0.5 * x);
    const C: [f64; 10] = [
        -1.265_512_23,
        1.000_023_68,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_203_98,
        1.488_515_87,
        -0.822_152_23,
        0.170_872_77,
    ];
    let poly = C.iter().rev().fold(0.0, |acc, c| acc * t + c);
    (t.ln() - x * x + poly).min(0.0)
}

/// `ln P(X >= x)` for `X` chi-square with an even number of degrees of
/// freedom `2m`: `e^(-x/2) sum_{k<m} (x/2)^k / k!`.
pub(crate) fn ln_chi_square_even(x: f64, half_df: usize) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return 0.0;
    }
    let half = x / 2.0;
    let mut term = 1.0_f64;
    let mut sum = 1.0_f64;
    for k in 1..half_df.max(1) {
        term *= half / k as f64;
        sum += term;
    }
    (sum.ln() - half).min(0.0)
}

/// The spread to measure distances from `center` with: `spread`, but at
/// least [`RELATIVE_FLOOR`] of the level, so a flat or nearly flat history
/// does not turn rounding-sized moves into certainties.
pub(crate) fn floored_spread(spread: f64, center: f64) -> f64 {
    let floor = RELATIVE_FLOOR * center.abs();
    if spread.is_nan() {
        floor
    } else {
        spread.max(floor)
    }
}

/// A one-sided score is ranked only when at least this many past scores were
/// as large; beyond the `TAIL_RANK`-th largest, the tail is extrapolated, so
/// up to three earlier anomalies among the past scores do not hide the next.
pub(crate) const TAIL_RANK: usize = 4;
/// Where the `TAIL_RANK`-th largest of 50 half-normal scores lies, in
/// spreads (its two-sided tail, 4/51, is at 1.76); both users of
/// [`conformal_ln_p`] keep 50 past scores.
pub(crate) const ANCHOR_UNITS: f64 = 1.75;

/// `ln p` of a non-negative score `a` (larger: more unusual) given the
/// `past` scores of the same kind (conformal): `(1 + #{past >= a}) / (n + 1)`
/// when at least [`TAIL_RANK`] past scores were as large; beyond, that share
/// at the `TAIL_RANK`-th largest past score times the decay of a normal
/// tail whose spread puts that score at [`ANCHOR_UNITS`] spreads (or
/// `spread_floor()` when it is 0). Exact for exchangeable scores within its
/// range, and still able to say "far beyond anything seen".
pub(crate) fn conformal_ln_p(
    past: &super::ring::Ring,
    a: f64,
    spread_floor: impl FnOnce() -> f64,
) -> f64 {
    if a == 0.0 || a.is_nan() {
        return 0.0;
    }
    let n = past.len();
    let (older, newer) = past.as_slices();
    let at_least = older.iter().chain(newer).filter(|c| **c >= a).count();
    let slots = (n + 1) as f64;
    if at_least >= TAIL_RANK || n < TAIL_RANK {
        return ((at_least + 1) as f64 / slots).ln();
    }
    // The TAIL_RANK largest past scores, largest first (only needed here).
    let mut top = [f64::NEG_INFINITY; TAIL_RANK];
    for &c in older.iter().chain(newer) {
        if c > top[TAIL_RANK - 1] {
            let mut k = TAIL_RANK - 1;
            while k > 0 && top[k - 1] < c {
                top[k] = top[k - 1];
                k -= 1;
            }
            top[k] = c;
        }
    }
    let anchor = top[TAIL_RANK - 1].max(0.0);
    let mut spread = anchor / ANCHOR_UNITS;
    if spread.is_nan() || spread <= 0.0 {
        spread = spread_floor();
    }
    ((TAIL_RANK as f64 / slots).ln() + ln_normal_two_sided(a / spread)
        - ln_normal_two_sided(anchor / spread))
    .min(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tails_match_published_values() {
        // P(|Z| >= z): 1, 0.3173, 0.0455, 0.0027, 6.334e-5, 5.733e-7, 1.973e-9, 1.524e-23.
        let cases = [
            (0.0, 1.0),
            (1.0, 0.317_310_507_862_914),
            (2.0, 0.045_500_263_896_358),
            (3.0, 0.002_699_796_063_260),
            (4.0, 6.334_248_366_623_996e-5),
            (5.0, 5.733_031_437_583_878e-7),
            (6.0, 1.973_175_290_075_2e-9),
            (10.0, 1.523_970_604_832_105e-23),
        ];
        for (z, p) in cases {
            let got = ln_normal_two_sided(z).exp();
            assert!((got / p - 1.0).abs() < 1e-6, "z {z}: {got} vs {p}");
        }
        assert!(ln_normal_two_sided(100.0) < -4000.0);
        assert_eq!(ln_normal_two_sided(f64::INFINITY), f64::NEG_INFINITY);
    }

    #[test]
    fn chi_square_tails_match_published_values() {
        // Survival of chi-square with 2 and 4 degrees of freedom.
        let cases = [
            (13.277, 2, 0.01),
            (9.488, 2, 0.05),
            (9.210, 1, 0.01),
            (5.991, 1, 0.05),
        ];
        for (x, half_df, p) in cases {
            let got = ln_chi_square_even(x, half_df).exp();
            assert!((got / p - 1.0).abs() < 1e-3, "x {x}: {got} vs {p}");
        }
    }

    #[test]
    fn scores_are_one_half_at_one_in_a_thousand_and_keep_the_order_of_probabilities() {
        let check = |p: f64, score: f64| {
            let got = score_from_ln_p(p.ln());
            assert!((got - score).abs() < 1e-12, "p {p}: {got} vs {score}");
            let back = ln_p_from_score(got).exp();
            assert!((back / p - 1.0).abs() < 1e-9, "p {p}: back {back}");
        };
        check(1.0, 0.0);
        check(1e-3, 0.5);
        check(1e-6, 2.0 / 3.0);
        check(1e-12, 0.8);
        assert_eq!(score_from_ln_p(f64::NEG_INFINITY), 1.0);
        assert_eq!(score_from_ln_p(f64::NAN), 0.0);
        assert!(score_from_ln_p((1e-300_f64).ln()) < score_from_ln_p(-700.0 * 10.0));
    }
}
