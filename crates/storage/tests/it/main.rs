//! Storage against a real PostgreSQL: each test creates its own database.

use std::time::Duration;

mod deadlines;
mod partitioning;
mod replicas;
mod repository;

const LIMIT: Duration = Duration::from_secs(30);

/// Awaits `future`, failing the test if it takes longer than 30 s.
pub(crate) async fn within<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .expect("timed out")
}
