//! How well a detector finds the anomalies of labelled series: a confusion
//! matrix and its precision, recall and F1.
//!
//! Every value counts. A value judged with too little history
//! ([`Verdict::NotEnoughHistory`](txwatch_domain::Verdict::NotEnoughHistory))
//! counts as not flagged, as the service treats it: an anomaly that arrives
//! during a detector's warm-up is a miss and lowers its recall, so a detector
//! that waits longer before judging pays for it. [`Evaluation`] also says how
//! many anomalies were missed that way.

use txwatch_domain::Detector;

use crate::scenario::Series;

/// Counts of flagged and not flagged values against the ground truth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Confusion {
    /// Anomalies flagged.
    pub tp: u64,
    /// Ordinary values flagged.
    pub fp: u64,
    /// Anomalies not flagged (including those met without enough history).
    pub fn_: u64,
    /// Ordinary values not flagged.
    pub tn: u64,
}

impl Confusion {
    /// Counts one value.
    pub fn record(&mut self, flagged: bool, is_anomaly: bool) {
        match (flagged, is_anomaly) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }

    /// Values counted.
    pub fn total(&self) -> u64 {
        self.tp + self.fp + self.fn_ + self.tn
    }

    /// Share of flagged values that are anomalies; 0 when nothing was
    /// flagged.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// Share of anomalies that were flagged; 0 when there were none.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// Harmonic mean of precision and recall, `2tp / (2tp + fp + fn)`; 0
    /// when there were no anomalies and nothing was flagged.
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

impl std::ops::AddAssign for Confusion {
    fn add_assign(&mut self, other: Confusion) {
        self.tp += other.tp;
        self.fp += other.fp;
        self.fn_ += other.fn_;
        self.tn += other.tn;
    }
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// What [`evaluate`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Every value, those judged without enough history as not flagged.
    pub confusion: Confusion,
    /// Values met without enough history to judge them.
    pub unscored: u64,
    /// Anomalies among them: misses counted in
    /// [`fn_`](Confusion::fn_) that no detector of that warm-up could catch.
    pub unscored_anomalies: u64,
}

/// Runs `detector` over every series, with a fresh state per series (one
/// entity each), and counts its verdicts against the labels.
pub fn evaluate<D: Detector>(detector: &D, series: &[Series]) -> Evaluation {
    let mut evaluation = Evaluation::default();
    for entity in series {
        let mut state = detector.new_state();
        for labeled in entity {
            let verdict = detector.observe(&mut state, labeled.value);
            if verdict.score().is_none() {
                evaluation.unscored += 1;
                evaluation.unscored_anomalies += u64::from(labeled.is_anomaly);
            }
            evaluation
                .confusion
                .record(verdict.is_anomaly(), labeled.is_anomaly);
        }
    }
    evaluation
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Labeled;
    use txwatch_domain::RollingMean;

    fn confusion(tp: u64, fp: u64, fn_: u64, tn: u64) -> Confusion {
        Confusion { tp, fp, fn_, tn }
    }

    #[test]
    fn precision_recall_and_f1_follow_their_definitions_with_zero_for_zero_over_zero() {
        let check = |c: Confusion, precision: f64, recall: f64, f1: f64| {
            let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
            assert!(close(c.precision(), precision), "{c:?} precision");
            assert!(close(c.recall(), recall), "{c:?} recall");
            assert!(close(c.f1(), f1), "{c:?} f1");
        };
        check(confusion(8, 2, 8, 82), 0.8, 0.5, 2.0 * 0.8 * 0.5 / 1.3);
        check(confusion(5, 0, 0, 95), 1.0, 1.0, 1.0);
        check(confusion(0, 0, 0, 100), 0.0, 0.0, 0.0);
        check(confusion(0, 3, 0, 97), 0.0, 0.0, 0.0);
        check(confusion(0, 0, 4, 96), 0.0, 0.0, 0.0);
        check(Confusion::default(), 0.0, 0.0, 0.0);
    }

    #[test]
    fn recording_and_adding_count_every_value_once() {
        let mut a = Confusion::default();
        for (flagged, is_anomaly) in [(true, true), (true, false), (false, true), (false, false)] {
            a.record(flagged, is_anomaly);
        }
        assert_eq!(a, confusion(1, 1, 1, 1));
        a += confusion(1, 2, 3, 4);
        assert_eq!(a, confusion(2, 3, 4, 5));
        assert_eq!(a.total(), 14);
    }

    #[test]
    fn an_anomaly_during_warm_up_counts_as_a_miss() {
        let value = |value: f64, is_anomaly: bool| Labeled { value, is_anomaly };
        // The rule needs 10 earlier values: the spike at 3 is unscored, the
        // one at 12 is flagged.
        let mut entity: Vec<Labeled> = (0..15).map(|_| value(100.0, false)).collect();
        entity[3] = value(10_000.0, true);
        entity[12] = value(10_000.0, true);
        let evaluation = evaluate(&RollingMean::default(), &[entity.clone(), entity]);
        assert_eq!(evaluation.confusion, confusion(2, 0, 2, 26));
        assert_eq!(evaluation.unscored, 20);
        assert_eq!(evaluation.unscored_anomalies, 2);
    }
}
