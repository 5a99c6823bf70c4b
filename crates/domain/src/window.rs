//! A user's most recent amounts, oldest first.

use std::collections::VecDeque;

use time::OffsetDateTime;

use crate::money::Amount;
use crate::transaction::TransactionId;

/// One transaction as a window remembers it: enough to order it among the
/// user's history (`txn_date`, then `amount`, then `id`, the order of the
/// history index) and to recognise it when the same id comes again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowEntry {
    /// The transaction's id.
    pub id: TransactionId,
    /// When it happened.
    pub txn_date: OffsetDateTime,
    /// How much.
    pub amount: Amount,
}

/// The last `capacity` amounts of one user, oldest first: the history a
/// [`Detector`](crate::Detector) judges the next amount against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    capacity: usize,
    amounts: VecDeque<Amount>,
}

impl Window {
    /// An empty window that keeps at most `capacity` amounts (at least one).
    pub fn new(capacity: usize) -> Window {
        let capacity = capacity.max(1);
        Window {
            capacity,
            amounts: VecDeque::with_capacity(capacity),
        }
    }

    /// Appends the newest amount, dropping the oldest when full.
    pub fn push(&mut self, amount: Amount) {
        if self.amounts.len() == self.capacity {
            self.amounts.pop_front();
        }
        self.amounts.push_back(amount);
    }

    /// The amounts, oldest first, as one slice.
    pub fn as_slice(&mut self) -> &[Amount] {
        self.amounts.make_contiguous()
    }

    /// The amounts, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Amount> {
        self.amounts.iter()
    }

    /// How many amounts are held.
    pub fn len(&self) -> usize {
        self.amounts.len()
    }

    /// Whether no amount is held yet.
    pub fn is_empty(&self) -> bool {
        self.amounts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_drops_its_oldest_amount() {
        let mut window = Window::new(3);
        for cents in 1..=5 {
            window.push(Amount::from_cents(cents).expect("in range"));
        }
        let held: Vec<String> = window.iter().map(ToString::to_string).collect();
        assert_eq!(held, ["0.03", "0.04", "0.05"]);
        assert_eq!(window.as_slice().len(), 3);
    }
}
