//! Redis for the service: the connection pool, the naming of every key, each
//! user's windows of recent transactions (one of real transactions, one of
//! simulated ones), and the log of live events shared by every server
//! process.
//!
//! Main types: [`CacheConfig`] and [`connect`] for the pool ([`RedisPool`]),
//! with [`ping`] for readiness checks; [`Keys`], the one place Redis keys are
//! built (`<prefix><kind>:{<user_id>}`, hash-tagged so a Redis Cluster keeps
//! a user's keys in one slot); [`WindowStore`], which keeps each user's
//! latest transactions as one packed binary string in the order of the database's
//! history index and puts new ones through it atomically, one [`Step`] per
//! [`StepRequest`], many to a round trip; and [`EventLog`], a Redis Stream
//! of [`Event`]s ([`NewEvent`] to append) with resumable [`EventId`]s, each
//! tagged with the simulated feed ([`FeedId`]) it came from, if any.
//! [`CacheError`] classifies Redis errors where they arise, so callers only
//! ask [`CacheError::is_unavailable`]. Every command must be answered within
//! 2 s; a connection on which one was not is closed rather than returned to
//! the pool, and every socket gives up on a silent peer
//! ([`CacheConfig::dead_connection_timeout_ms`]).
//!
//! Depends on `domain` for the types it stores. It must never depend on
//! PostgreSQL (`storage`), HTTP (`http`, actix) or configuration loading:
//! callers hand it a [`CacheConfig`].

mod config;
mod connection;
mod error;
mod events;
mod expiry;
mod keys;
mod pool;
mod script;
mod shared;
mod window;

#[cfg(feature = "test-helpers")]
pub mod testing;

pub use config::CacheConfig;
pub use error::CacheError;
pub use events::{Event, EventId, EventIdError, EventLog, FeedId, FeedIdError, NewEvent, shard_of};
pub use keys::Keys;
pub use pool::{RedisConnection, RedisPool, connect, ping};
pub use window::{Step, StepRequest, WindowStore};
