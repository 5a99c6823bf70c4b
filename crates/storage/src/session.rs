//! One database call on one pooled connection, within a deadline.
//!
//! Postgres's own `statement_timeout` cannot help when Postgres or the
//! network stops answering: a connection whose packets vanish (a partition,
//! a failover behind a load balancer) waits forever. So every round trip of
//! a call is awaited within the call's deadline, and a connection that
//! missed it, or lost its peer, or whose call was abandoned mid-trip, is
//! closed rather than handed to the next caller, who would wait on it in
//! turn. A missed deadline also closes the pool's idle connections, which
//! were probably opened over the same dead path.
//!
//! Each trip is awaited as what it is:
//! - [`read`](Session::read): a trip that stores nothing (a query, a
//!   prepare, rows of a `COPY` not yet finished). Whatever goes wrong, the
//!   call stored nothing: [`StorageError::Unavailable`] when there was no
//!   answer.
//! - [`commit`](Session::commit): the trip whose arrival commits a write.
//!   When Postgres answers with an error, the write failed and stored
//!   nothing. When no answer comes (the connection was lost, the deadline
//!   passed), the write may have committed: [`StorageError::OutcomeUnknown`].

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};

use deadpool_postgres::{ClientWrapper, Object};
use tokio::time::Instant;

use crate::error::{NoAnswer, StorageError};
use crate::pool::PgPool;

/// No trip in flight, every answer received: the connection can be reused.
const IDLE: u8 = 0;
/// A trip is in flight: if the call is dropped now, its answer is still due
/// on the connection.
const BUSY: u8 = 1;
/// The connection failed without an answer from Postgres.
const BROKEN: u8 = 2;
/// A trip missed the deadline.
const SILENT: u8 = 3;

/// A pooled connection checked out for one call, with the call's deadline.
/// Dropping it returns the connection to the pool only if it is known to be
/// in order.
pub(crate) struct Session {
    client: Option<Object>,
    pool: PgPool,
    /// When the current deadline was set, to say how long was waited.
    since: Instant,
    deadline: Instant,
    state: AtomicU8,
}

impl Session {
    pub(crate) fn new(client: Object, pool: PgPool, deadline: Instant) -> Session {
        Session {
            client: Some(client),
            pool,
            since: Instant::now(),
            deadline,
            state: AtomicU8::new(IDLE),
        }
    }

    /// The connection.
    pub(crate) fn client(&self) -> &ClientWrapper {
        self.client
            .as_ref()
            .expect("the connection is only taken out when the session is dropped")
    }

    /// Moves the deadline: a long call (a bulk `COPY`) gives each trip the
    /// query timeout of its own.
    pub(crate) fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// Moves the deadline to one query timeout from now.
    pub(crate) fn renew(&mut self) {
        self.since = Instant::now();
        self.deadline = self.since + self.pool.query_timeout();
    }

    /// Awaits a trip that stores nothing.
    ///
    /// # Errors
    /// Postgres's error, classified; [`StorageError::Unavailable`] when the
    /// connection is lost or the deadline passes.
    pub(crate) async fn read<T>(
        &self,
        trip: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, StorageError> {
        match self.trip(trip).await {
            Some(Ok(value)) => Ok(value),
            Some(Err(error)) => Err(StorageError::from(error)),
            None => Err(StorageError::Unavailable(Box::new(self.no_answer()))),
        }
    }

    /// Awaits the trip that commits a write.
    ///
    /// # Errors
    /// Postgres's error, classified, when it answered one (then nothing was
    /// stored); [`StorageError::OutcomeUnknown`] when no answer came.
    pub(crate) async fn commit<T>(
        &self,
        trip: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, StorageError> {
        match self.trip(trip).await {
            Some(Ok(value)) => Ok(value),
            Some(Err(error)) if error.code().is_some() => Err(StorageError::from(error)),
            Some(Err(error)) => Err(StorageError::OutcomeUnknown(Box::new(error))),
            None => Err(StorageError::OutcomeUnknown(Box::new(self.no_answer()))),
        }
    }

    /// The trip's result, or `None` past the deadline; records what it says
    /// about the connection.
    async fn trip<T>(
        &self,
        trip: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Option<Result<T, tokio_postgres::Error>> {
        self.state.store(BUSY, Ordering::SeqCst);
        let result = tokio::time::timeout_at(self.deadline, trip).await.ok();
        let state = match &result {
            None => SILENT,
            // No SQLSTATE: the error did not come from Postgres, so the
            // connection lost its peer or its footing.
            Some(Err(error)) if error.code().is_none() => BROKEN,
            Some(_) => IDLE,
        };
        // Only from BUSY: a connection found broken stays broken.
        let _ = self
            .state
            .compare_exchange(BUSY, state, Ordering::SeqCst, Ordering::SeqCst);
        result
    }

    fn no_answer(&self) -> NoAnswer {
        NoAnswer(self.deadline.saturating_duration_since(self.since))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        match self.state.load(Ordering::SeqCst) {
            // Dropping the pooled handle returns the connection.
            IDLE => drop(client),
            state => {
                // Out of the pool, the connection's last handle goes, and
                // with it the socket.
                drop(Object::take(client));
                if state == SILENT {
                    tracing::warn!(
                        timeout_ms = self.pool.query_timeout().as_millis(),
                        "no answer from the database in time; its connection is closed"
                    );
                    self.pool.drop_idle();
                }
            }
        }
    }
}
