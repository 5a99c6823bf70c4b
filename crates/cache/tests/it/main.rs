//! The cache against a real Redis: each test works under its own key prefix.

mod pool;
mod test_redis;
mod window;

use std::future::Future;
use std::time::Duration;

use txwatch_domain::{Amount, UserId};
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

fn amounts(texts: &[&str]) -> Vec<Amount> {
    texts
        .iter()
        .map(|text| text.parse().expect("fixture amounts are valid"))
        .collect()
}
