//! Back-dated history for many users, for seeding.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use time::{Duration, OffsetDateTime};
use txwatch_domain::UserId;

use crate::config::SimulatorConfig;
use crate::user::{SimulatedTransaction, UserSimulator};

/// What history to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPlan {
    /// How many users.
    pub users: usize,
    /// Transactions per user.
    pub rows_per_user: u64,
    /// The history ends here (usually now)...
    pub end: OffsetDateTime,
    /// ...and spans this long before it.
    pub span: Duration,
    /// Fixes user ids, amounts, dates and ids: the same seed and plan give
    /// the same history.
    pub seed: u64,
}

impl HistoryPlan {
    /// All rows the plan makes.
    pub fn total_rows(&self) -> u64 {
        self.users as u64 * self.rows_per_user
    }

    /// The user ids this plan generates for, in order.
    pub fn user_ids(&self) -> Vec<UserId> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        (0..self.users)
            .map(|_| {
                let mut bytes = [0u8; 16];
                rng.fill_bytes(&mut bytes);
                UserId(uuid::Builder::from_random_bytes(bytes).into_uuid())
            })
            .collect()
    }

    /// A generator for the users at `positions` (indexes into
    /// [`user_ids`](HistoryPlan::user_ids)). Splitting the users between
    /// several generators yields exactly the rows one generator would.
    pub fn generate(&self, config: &SimulatorConfig, positions: &[usize]) -> History {
        let ids = self.user_ids();
        let simulators = positions
            .iter()
            .map(|&i| {
                let user_seed = self.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                UserSimulator::new(ids[i], config.clone(), user_seed)
            })
            .collect();
        let start = self.end - self.span;
        let slot_nanos = self.span.whole_nanoseconds() / self.rows_per_user.max(1) as i128;
        History {
            simulators,
            rows_per_user: self.rows_per_user,
            start,
            slot_nanos,
            round: 0,
            pending: Vec::new(),
        }
    }
}

/// Generates history round by round: in round `i` every user gets its
/// `i`-th transaction, dated at a random point of the `i`-th of
/// `rows_per_user` equal slots of the span, and each round is emitted in time
/// order. The whole stream is therefore in time order, and so are the UUIDv7
/// ids: a database appends them at the right edge of its primary key index
/// instead of searching the tree for each.
#[derive(Debug, Clone)]
pub struct History {
    simulators: Vec<UserSimulator>,
    rows_per_user: u64,
    start: OffsetDateTime,
    slot_nanos: i128,
    round: u64,
    /// The rest of the current round, latest first (popped from the end).
    pending: Vec<SimulatedTransaction>,
}

impl Iterator for History {
    type Item = SimulatedTransaction;

    fn next(&mut self) -> Option<SimulatedTransaction> {
        if self.pending.is_empty() {
            self.generate_round();
        }
        self.pending.pop()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let rounds_left = self.rows_per_user.saturating_sub(self.round) as usize;
        let left = rounds_left * self.simulators.len() + self.pending.len();
        (left, Some(left))
    }
}

impl History {
    fn generate_round(&mut self) {
        if self.round >= self.rows_per_user {
            return;
        }
        let slot_start =
            self.start + Duration::nanoseconds_i128(self.round as i128 * self.slot_nanos);
        for sim in &mut self.simulators {
            let jitter = (sim.unit() * self.slot_nanos as f64) as i128;
            self.pending
                .push(sim.next_at(slot_start + Duration::nanoseconds_i128(jitter)));
        }
        // Latest first, so `pop` yields the earliest.
        self.pending
            .sort_unstable_by_key(|t| std::cmp::Reverse((t.txn_date, t.id)));
        self.round += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use time::macros::datetime;

    fn plan(users: usize, rows: u64, seed: u64) -> HistoryPlan {
        HistoryPlan {
            users,
            rows_per_user: rows,
            end: datetime!(2026-06-01 0:00 UTC),
            span: Duration::days(365),
            seed,
        }
    }

    #[test]
    fn each_user_gets_its_rows_in_increasing_time_within_the_span() {
        let p = plan(3, 1000, 5);
        let rows: Vec<_> = p
            .generate(&SimulatorConfig::default(), &[0, 1, 2])
            .collect();
        assert_eq!(rows.len(), 3000);
        let mut last: HashMap<UserId, OffsetDateTime> = HashMap::new();
        for row in &rows {
            assert!(row.txn_date >= p.end - p.span && row.txn_date < p.end);
            if let Some(previous) = last.insert(row.user_id, row.txn_date) {
                assert!(
                    row.txn_date > previous,
                    "user {} went back in time",
                    row.user_id
                );
            }
        }
        assert_eq!(last.len(), 3);
    }

    #[test]
    fn the_stream_is_in_time_order_so_ids_ascend() {
        let p = plan(7, 300, 8);
        let rows: Vec<_> = p
            .generate(&SimulatorConfig::default(), &[0, 1, 2, 3, 4, 5, 6])
            .collect();
        assert_eq!(rows.len(), 2100);
        for pair in rows.windows(2) {
            assert!(pair[0].txn_date <= pair[1].txn_date);
            let millis =
                |t: &SimulatedTransaction| t.id.as_uuid().get_timestamp().map(|ts| ts.to_unix());
            assert!(millis(&pair[0]) <= millis(&pair[1]));
        }
    }

    #[test]
    fn splitting_users_between_generators_changes_no_row() {
        let p = plan(4, 50, 11);
        let config = SimulatorConfig::default();
        let mut whole: Vec<_> = p.generate(&config, &[0, 1, 2, 3]).collect();
        let mut split: Vec<_> = p.generate(&config, &[0, 2]).collect();
        split.extend(p.generate(&config, &[1, 3]));
        let key = |t: &SimulatedTransaction| (t.user_id, t.txn_date);
        whole.sort_by_key(key);
        split.sort_by_key(key);
        assert_eq!(whole, split);
    }

    #[test]
    fn a_seed_reproduces_users_and_rows_and_another_seed_does_not() {
        let config = SimulatorConfig::default();
        let a: Vec<_> = plan(2, 20, 1).generate(&config, &[0, 1]).collect();
        let b: Vec<_> = plan(2, 20, 1).generate(&config, &[0, 1]).collect();
        let c: Vec<_> = plan(2, 20, 2).generate(&config, &[0, 1]).collect();
        assert_eq!(a, b);
        assert_ne!(a[0].user_id, c[0].user_id);
        assert_ne!(a[0].id, c[0].id);
    }
}
