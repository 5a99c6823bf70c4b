//! PostgreSQL storage of scored transactions.
//!
//! Main types: [`StorageConfig`] and [`connect`] for the connection pool
//! (with [`ping`] for readiness probes),
//! [`migrate`] for the embedded, append-only migrations from `migrations/`,
//! and [`TransactionRepository`] for everything the service reads and writes:
//! one insert, bulk insert by binary `COPY` ([`BulkInsert`]), the keyset
//! history query ([`PageQuery`], [`Page`]), the distinct users, and a user's
//! latest amounts. [`StorageError`] classifies driver errors so no caller
//! inspects SQLSTATEs, and says what a failed write did: nothing
//! ([`StorageError::Unavailable`]) or, when it was sent and its answer
//! lost and what became of it could not be found out,
//! [`StorageError::OutcomeUnknown`].
//!
//! [`Replicas`] sends the history page and the users listing to read
//! replicas, skipping any that is down or lags, with the primary answering
//! in their place.
//!
//! Every call the repository makes has a client-side deadline
//! ([`StorageConfig::query_timeout_ms`]); a connection that missed it, or
//! lost its peer, is closed rather than returned to the pool, and every
//! socket gives up on a silent peer
//! ([`StorageConfig::dead_connection_timeout_ms`]).
//!
//! Depends on `domain` for the types it stores. It must never depend on
//! Redis (`cache`), HTTP (`http`) or configuration loading: callers hand it a
//! [`StorageConfig`].

mod config;
mod error;
mod migrate;
mod numeric;
mod pool;
mod replicas;
mod session;
mod transactions;

#[cfg(feature = "test-helpers")]
pub mod testing;

pub use config::StorageConfig;
pub use error::StorageError;
pub use migrate::{ensure_database, migrate};
pub use pool::{PgPool, connect, ping};
pub use replicas::{ReplicaState, ReplicaStatus, Replicas};
pub use transactions::{BulkInsert, Key, Page, PageQuery, Position, TransactionRepository, key_of};
