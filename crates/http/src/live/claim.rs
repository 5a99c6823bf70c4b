//! Who decides the fate of work a request hands to another task, when the
//! request's deadline passes first.
//!
//! An ingest request hands its transactions to a worker (single posts, see
//! `coalesce.rs`) or to a task of its own (a batch) and waits for the
//! outcome within its deadline. When the deadline passes, the request must
//! answer at once, and truthfully: "nothing is stored" only if the work
//! will never be stored, "the outcome is unknown" if it may be. A [`Claim`]
//! settles the race between the two sides: the one storing
//! [`take`](Claim::take)s it before storing begins, the waiting request
//! [`withdraw`](Claim::withdraw)s it when its deadline passes, and exactly
//! one of them wins (one compare-and-swap).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// Neither side has decided yet.
const OPEN: u8 = 0;
/// Storing has begun (or is about to): the request can no longer withdraw.
const TAKEN: u8 = 1;
/// The request gave up first: the work must not be stored.
const WITHDRAWN: u8 = 2;

/// One piece of handed-off work's fate; clones share it.
#[derive(Debug, Clone)]
pub struct Claim(Arc<AtomicU8>);

impl Claim {
    /// An open claim.
    pub fn new() -> Claim {
        Claim(Arc::new(AtomicU8::new(OPEN)))
    }

    /// The storing side: `true` when it may go on and store (then the
    /// request can no longer withdraw), `false` when the request withdrew
    /// first (then the work must be dropped, unstored).
    pub fn take(&self) -> bool {
        self.settle(TAKEN)
    }

    /// The waiting side: `true` when the work is withdrawn and will never
    /// be stored, `false` when storing has begun (its outcome is the
    /// storing side's to tell).
    pub fn withdraw(&self) -> bool {
        self.settle(WITHDRAWN)
    }

    /// Moves an open claim to `to`; whether the claim ends up there.
    fn settle(&self, to: u8) -> bool {
        match self
            .0
            .compare_exchange(OPEN, to, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(now) => now == to,
        }
    }
}

impl Default for Claim {
    fn default() -> Claim {
        Claim::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_side_to_decide_wins_and_the_other_is_told() {
        let taken = Claim::new();
        assert!(taken.take());
        assert!(taken.take(), "taking again changes nothing");
        assert!(!taken.withdraw());

        let withdrawn = Claim::new();
        assert!(withdrawn.withdraw());
        assert!(withdrawn.clone().withdraw());
        assert!(!withdrawn.take());
    }

    #[test]
    fn racing_sides_never_both_win() {
        for _ in 0..1_000 {
            let claim = Claim::new();
            let other = claim.clone();
            let taker = std::thread::spawn(move || other.take());
            let withdrew = claim.withdraw();
            let took = taker.join().expect("no panic");
            assert!(took ^ withdrew, "took {took}, withdrew {withdrew}");
        }
    }
}
