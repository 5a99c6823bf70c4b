//! One multiplexed connection shared by every caller of a store, for the hot
//! paths (window steps, event appends).
//!
//! A pooled connection is checked with a `PING` round trip each time it is
//! handed out; at thousands of steps a second that doubles the round trips.
//! A multiplexed connection can carry many callers' commands at once (each
//! pipeline goes out whole and its replies come back in order), so the hot
//! paths share one, taken from the pool once. When it breaks (Redis
//! restarted, connection reset), the next caller takes a fresh one from the
//! pool.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::connection::Conn;

use crate::error::CacheError;
use crate::pool::RedisPool;

/// A shared connection, reopened when broken; cheap to clone.
#[derive(Clone)]
pub(crate) struct Shared {
    pool: RedisPool,
    current: Arc<Mutex<Option<Conn>>>,
}

impl Shared {
    pub(crate) fn new(pool: RedisPool) -> Shared {
        Shared {
            pool,
            current: Arc::new(Mutex::new(None)),
        }
    }

    /// The shared connection, opened (through the pool, with its timeouts)
    /// if there is none.
    pub(crate) async fn get(&self) -> Result<Conn, CacheError> {
        if let Some(connection) = self.slot().clone() {
            return Ok(connection);
        }
        let connection = self.pool.get().await?.take();
        *self.slot() = Some(connection.clone());
        Ok(connection)
    }

    /// Runs `work` on the shared connection. If that connection turns out to
    /// be dead (Redis restarted or reset it since it was opened), it is
    /// dropped and `work` runs once more on a fresh one: a dead connection
    /// sent nothing, so nothing runs twice. A timeout is not retried, since
    /// Redis may have run the commands.
    pub(crate) async fn run<T, F, Fut>(&self, work: F) -> Result<T, CacheError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<T, CacheError>>,
    {
        let reused = self.slot().is_some();
        let result = self.check(work(self.get().await?).await);
        match result {
            Err(error) if reused && is_dead_connection(&error) => {
                self.check(work(self.get().await?).await)
            }
            other => other,
        }
    }

    /// Drops the shared connection if `result` says Redis could not be
    /// reached over it, so the next caller opens a new one.
    pub(crate) fn check<T>(&self, result: Result<T, CacheError>) -> Result<T, CacheError> {
        if result.as_ref().is_err_and(CacheError::is_unavailable) {
            *self.slot() = None;
        }
        result
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Conn>> {
        // An `Option` swap cannot be left half-done by a panic.
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether the error is a connection that was already closed, as opposed to
/// one that timed out waiting for an answer.
fn is_dead_connection(error: &CacheError) -> bool {
    match error {
        CacheError::Unavailable(source) => source
            .downcast_ref::<deadpool_redis::redis::RedisError>()
            .is_some_and(|error| !error.is_timeout()),
        _ => false,
    }
}
