//! Redis for the service: the connection pool, the naming of every key, and
//! each user's window of recent amounts.
//!
//! Main types: [`CacheConfig`] and [`connect`] for the pool ([`RedisPool`]),
//! with [`ping`] for readiness checks; [`Keys`], the one place Redis keys are
//! built (`<prefix><kind>:{<user_id>}`, hash-tagged so a Redis Cluster keeps
//! a user's keys in one slot); and [`WindowStore`], which reads and replaces a
//! user's window, stored as a list of decimal strings. [`CacheError`]
//! classifies Redis errors where they arise, so callers only ask
//! [`CacheError::is_unavailable`].
//!
//! Depends on `domain` for the types it stores. It must never depend on
//! PostgreSQL (`storage`), HTTP (`http`, actix) or configuration loading:
//! callers hand it a [`CacheConfig`].

mod config;
mod error;
mod keys;
mod pool;
mod window;

#[cfg(feature = "test-helpers")]
pub mod testing;

pub use config::CacheConfig;
pub use error::CacheError;
pub use keys::Keys;
pub use pool::{RedisPool, connect, ping};
pub use window::WindowStore;
