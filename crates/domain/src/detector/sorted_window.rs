//! A sliding window kept in sorted order, for medians.

use serde::{Deserialize, Serialize};

use super::ring::Ring;

/// The last `capacity` values, both in arrival order (to know which leaves)
/// and sorted (for order statistics). Serialized as the ring alone; the
/// sorted copy is rebuilt on load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Ring", into = "Ring")]
pub(crate) struct SortedWindow {
    arrivals: Ring,
    sorted: Vec<f64>,
}

impl SortedWindow {
    pub(crate) fn new(capacity: usize) -> SortedWindow {
        SortedWindow {
            arrivals: Ring::new(capacity),
            sorted: Vec::with_capacity(capacity),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Adds a finite value: O(log W) to find places, O(W) to shift.
    pub(crate) fn push(&mut self, value: f64) {
        if let Some(evicted) = self.arrivals.push(value) {
            let at = self
                .sorted
                .partition_point(|v| v.total_cmp(&evicted).is_lt());
            self.sorted.remove(at);
        }
        let at = self.sorted.partition_point(|v| v.total_cmp(&value).is_lt());
        self.sorted.insert(at, value);
    }

    /// The value every held value equals, if there is one.
    pub(crate) fn flat(&self) -> Option<f64> {
        match (self.sorted.first(), self.sorted.last()) {
            (Some(low), Some(high)) if low.to_bits() == high.to_bits() => Some(*low),
            _ => None,
        }
    }

    /// The median; 0 when empty.
    pub(crate) fn median(&self) -> f64 {
        median_of_sorted(&self.sorted)
    }

    /// The median absolute deviation from `center` (the median), in O(W):
    /// deviations grow outwards from the median on both sides, so merging the
    /// two sides yields them in order without sorting.
    pub(crate) fn median_abs_deviation(&self, center: f64) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return 0.0;
        }
        let split = self.sorted.partition_point(|v| *v < center);
        let (mut left, mut right) = (split, split); // left: next is left - 1
        let (low_rank, high_rank) = ((n - 1) / 2, n / 2);
        let mut low = 0.0;
        for rank in 0..=high_rank {
            let take_left = match (left > 0, right < n) {
                (true, true) => center - self.sorted[left - 1] <= self.sorted[right] - center,
                (true, false) => true,
                _ => false,
            };
            let deviation = if take_left {
                left -= 1;
                center - self.sorted[left]
            } else {
                right += 1;
                self.sorted[right - 1] - center
            };
            if rank == low_rank {
                low = deviation;
            }
            if rank == high_rank {
                return (low + deviation) / 2.0;
            }
        }
        low
    }

    /// Mean absolute deviation from `center`.
    pub(crate) fn mean_abs_deviation(&self, center: f64) -> f64 {
        if self.sorted.is_empty() {
            return 0.0;
        }
        self.sorted.iter().map(|v| (v - center).abs()).sum::<f64>() / self.sorted.len() as f64
    }
}

pub(crate) fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2],
        _ if sorted[n / 2 - 1] == sorted[n / 2] => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

impl From<Ring> for SortedWindow {
    fn from(arrivals: Ring) -> SortedWindow {
        let mut sorted: Vec<f64> = arrivals.iter().collect();
        sorted.sort_by(f64::total_cmp);
        SortedWindow { arrivals, sorted }
    }
}

impl From<SortedWindow> for Ring {
    fn from(window: SortedWindow) -> Ring {
        window.arrivals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_mad(values: &[f64]) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let median = median_of_sorted(&sorted);
        let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
        deviations.sort_by(f64::total_cmp);
        median_of_sorted(&deviations)
    }

    #[test]
    fn median_and_mad_match_a_brute_force_computation() {
        let series = [
            5.0, 1.0, 9.0, 3.0, 3.0, 100.0, -4.0, 2.5, 7.0, 3.0, 8.0, 0.0,
        ];
        let mut window = SortedWindow::new(5);
        for (i, value) in series.iter().enumerate() {
            window.push(*value);
            let held = &series[(i + 1).saturating_sub(5)..=i];
            let mut sorted = held.to_vec();
            sorted.sort_by(f64::total_cmp);
            assert_eq!(window.median(), median_of_sorted(&sorted));
            assert_eq!(
                window.median_abs_deviation(window.median()),
                brute_mad(held),
                "after {i}"
            );
        }
    }
}
