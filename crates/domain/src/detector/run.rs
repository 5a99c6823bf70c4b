//! The run of equal values at the end of a series: how a detector knows its
//! history is flat, exactly, whatever rounding its running figures carry.

use serde::{Deserialize, Serialize};

/// The newest value and how many values in a row, ending with it, were
/// bitwise equal to it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct Run {
    last: f64,
    len: usize,
}

impl Run {
    pub(crate) fn push(&mut self, value: f64) {
        if self.len > 0 && value.to_bits() == self.last.to_bits() {
            self.len = self.len.saturating_add(1);
        } else {
            self.last = value;
            self.len = 1;
        }
    }

    /// The value, when at least the last `n` values all equal it.
    pub(crate) fn flat_over(&self, n: usize) -> Option<f64> {
        (self.len > 0 && self.len >= n).then_some(self.last)
    }
}
