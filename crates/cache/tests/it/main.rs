//! The cache against a real Redis: each test works under its own key prefix.

mod events;
mod pool;
mod silent;
mod test_redis;
mod window;

use std::future::Future;
use std::time::Duration;

use time::OffsetDateTime;
use time::macros::datetime;
use txwatch_domain::{Amount, TransactionId, UserId, WindowEntry};
use uuid::Uuid;

const LIMIT: Duration = Duration::from_secs(10);

/// Awaits `future`, failing the test if it takes longer than [`LIMIT`].
async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .expect("timed out")
}

fn new_user() -> UserId {
    UserId(Uuid::new_v4())
}

fn amount(text: &str) -> Amount {
    text.parse().expect("fixture amounts are valid")
}

fn amounts(texts: &[&str]) -> Vec<Amount> {
    texts.iter().map(|text| amount(text)).collect()
}

/// `seconds` after a fixed moment.
fn at(seconds: i64) -> OffsetDateTime {
    datetime!(2024-09-10 12:00:00.5 UTC) + time::Duration::seconds(seconds)
}

/// A transaction of `amount` at `at(seconds)`, with a fresh id.
fn entry(seconds: i64, amount_text: &str) -> WindowEntry {
    WindowEntry {
        id: TransactionId(Uuid::new_v4()),
        txn_date: at(seconds),
        amount: amount(amount_text),
    }
}

/// The latest `capacity` of `entries`, oldest first, in the order of the
/// database's history index: `(txn_date, amount, id)`.
fn latest(entries: &[WindowEntry], capacity: usize) -> Vec<WindowEntry> {
    let mut sorted = entries.to_vec();
    sorted.sort_by_key(|entry| (entry.txn_date, entry.amount, entry.id));
    sorted.split_off(sorted.len().saturating_sub(capacity))
}

/// The amounts of `entries`, in their order.
fn amounts_of(entries: &[WindowEntry]) -> Vec<Amount> {
    entries.iter().map(|entry| entry.amount).collect()
}

/// Numbers from a fixed seed (splitmix64), so failures repeat.
struct Numbers(u64);

impl Numbers {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// A transaction at one of `dates` seconds, with one of `amounts` whole
    /// amounts (some negative), and a seeded id: small ranges make ties.
    fn entry(&mut self, dates: u64, amounts: u64) -> WindowEntry {
        let seconds = i64::try_from(self.below(dates)).expect("small");
        let cents = i128::from(self.below(amounts)) * 100 - 200;
        WindowEntry {
            id: TransactionId(Uuid::from_u64_pair(self.next(), self.next())),
            txn_date: at(seconds),
            amount: Amount::from_cents(cents).expect("small amounts are valid"),
        }
    }
}
