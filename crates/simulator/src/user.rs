//! One user's stream of simulated transactions.

use std::collections::VecDeque;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use time::OffsetDateTime;
use txwatch_domain::{Amount, Currency, Status, TransactionId, UserId};

use crate::config::SimulatorConfig;

/// A generated, not yet scored, transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedTransaction {
    /// A fresh UUIDv7 id whose timestamp is `txn_date`.
    pub id: TransactionId,
    /// The user it belongs to.
    pub user_id: UserId,
    /// The amount drawn.
    pub amount: Amount,
    /// Always the configured currency.
    pub currency: Currency,
    /// When it happened, truncated to microseconds (what Postgres stores).
    pub txn_date: OffsetDateTime,
    /// `paid` or `failed`.
    pub status: Status,
    /// Ground truth: the simulator made this amount large on purpose.
    pub is_large: bool,
}

/// Generates one user's transactions.
///
/// A large amount is drawn relative to the user's *typical* mean: the mean of
/// the last `typical_window` ordinary (not large) amounts it generated. Using
/// the mean of all recent amounts instead, large ones included, would feed
/// each large amount into the next one's minimum and make amounts grow
/// without bound (with the default 35% of large amounts the mean more than
/// doubles every window).
#[derive(Debug, Clone)]
pub struct UserSimulator {
    user_id: UserId,
    config: SimulatorConfig,
    rng: ChaCha8Rng,
    typical: VecDeque<f64>,
}

impl UserSimulator {
    /// A simulator for `user_id` whose draws are fixed by `seed`.
    pub fn new(user_id: UserId, config: SimulatorConfig, seed: u64) -> UserSimulator {
        let typical = VecDeque::with_capacity(config.typical_window);
        UserSimulator {
            user_id,
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            typical,
        }
    }

    /// The user this simulator generates for.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// Draws the next transaction, dated `txn_date`.
    pub fn next_at(&mut self, txn_date: OffsetDateTime) -> SimulatedTransaction {
        let txn_date = truncate_to_micros(txn_date);
        let is_large = self.rng.random_bool(self.config.large_probability);
        let value = if is_large {
            let m = (self.config.large_mean_multiple * self.typical_mean())
                .max(self.config.large_floor);
            self.rng.random_range(m..=2.0 * m)
        } else {
            let value = self
                .rng
                .random_range(self.config.normal_min..=self.config.normal_max);
            if self.typical.len() == self.config.typical_window {
                self.typical.pop_front();
            }
            self.typical.push_back(value);
            value
        };
        let paid = self.rng.random_bool(self.config.paid_probability);
        SimulatedTransaction {
            id: self.id_at(txn_date),
            user_id: self.user_id,
            amount: to_amount(value),
            currency: self.config.currency,
            txn_date,
            status: self.config.status(paid),
            is_large,
        }
    }

    /// A uniform draw in `[0, 1)` from this user's generator (for jitter).
    pub(crate) fn unit(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    fn typical_mean(&self) -> f64 {
        if self.typical.is_empty() {
            (self.config.normal_min + self.config.normal_max) / 2.0
        } else {
            self.typical.iter().sum::<f64>() / self.typical.len() as f64
        }
    }

    fn id_at(&mut self, txn_date: OffsetDateTime) -> TransactionId {
        let millis = (txn_date.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
        let mut random = [0u8; 10];
        self.rng.fill_bytes(&mut random);
        TransactionId(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
    }
}

fn truncate_to_micros(at: OffsetDateTime) -> OffsetDateTime {
    let nanos = at.unix_timestamp_nanos();
    OffsetDateTime::from_unix_timestamp_nanos(nanos - nanos.rem_euclid(1000)).unwrap_or(at)
}

fn to_amount(value: f64) -> Amount {
    // Validated configs keep values within [0, 2e12], far inside the range.
    let cents = (value * 100.0).round() as i128;
    Amount::from_cents(cents).expect("simulated amounts are within NUMERIC(20,2)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn user() -> UserId {
        UserId(uuid::Uuid::from_u128(7))
    }

    #[test]
    fn the_same_seed_draws_the_same_transactions() {
        let at = datetime!(2026-01-01 00:00:00.123456789 UTC);
        let mut a = UserSimulator::new(user(), SimulatorConfig::default(), 42);
        let mut b = UserSimulator::new(user(), SimulatorConfig::default(), 42);
        let mut c = UserSimulator::new(user(), SimulatorConfig::default(), 43);
        let (xs, ys, zs): (Vec<_>, Vec<_>, Vec<_>) = (0..50)
            .map(|_| (a.next_at(at), b.next_at(at), c.next_at(at)))
            .fold(
                (vec![], vec![], vec![]),
                |(mut xs, mut ys, mut zs), (x, y, z)| {
                    xs.push(x);
                    ys.push(y);
                    zs.push(z);
                    (xs, ys, zs)
                },
            );
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        assert_eq!(xs[0].txn_date, datetime!(2026-01-01 00:00:00.123456 UTC));
    }

    #[test]
    fn amounts_follow_the_old_distribution_and_stay_bounded() {
        let mut sim = UserSimulator::new(user(), SimulatorConfig::default(), 1);
        let at = datetime!(2026-01-01 0:00 UTC);
        let drawn: Vec<_> = (0..20_000).map(|_| sim.next_at(at)).collect();
        let large = drawn.iter().filter(|t| t.is_large).count() as f64 / drawn.len() as f64;
        assert!((0.33..0.37).contains(&large), "large share {large}");
        for t in &drawn {
            let v = t.amount.to_f64();
            if t.is_large {
                assert!((5000.0..=10000.0).contains(&v), "large amount {v}");
            } else {
                assert!((10.0..=500.0).contains(&v), "ordinary amount {v}");
            }
        }
        let paid = drawn.iter().filter(|t| t.status == Status::PAID).count() as f64;
        assert!((0.48..0.52).contains(&(paid / drawn.len() as f64)));
    }

    #[test]
    fn large_amounts_scale_with_the_typical_amount() {
        let config = SimulatorConfig {
            normal_min: 2000.0,
            normal_max: 2000.01,
            large_probability: 0.5,
            ..SimulatorConfig::default()
        };
        let mut sim = UserSimulator::new(user(), config, 3);
        let at = datetime!(2026-01-01 0:00 UTC);
        let large: Vec<f64> = (0..200)
            .map(|_| sim.next_at(at))
            .filter(|t| t.is_large)
            .map(|t| t.amount.to_f64())
            .collect();
        // m = 5 x 2000 = 10000 beats the 5000 floor.
        assert!(
            large
                .iter()
                .skip(1)
                .all(|v| (10_000.0..=20_000.1).contains(v)),
            "{large:?}"
        );
    }

    #[test]
    fn ids_are_version_7_and_carry_the_transaction_time() {
        let mut sim = UserSimulator::new(user(), SimulatorConfig::default(), 9);
        let at = datetime!(2025-06-01 12:00 UTC);
        let t = sim.next_at(at);
        assert_eq!(t.id.as_uuid().get_version_num(), 7);
        let (secs, _) =
            t.id.as_uuid()
                .get_timestamp()
                .expect("v7 has a timestamp")
                .to_unix();
        assert_eq!(secs as i64, at.unix_timestamp());
    }
}
