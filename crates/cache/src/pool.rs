//! The connection pool and its health check.

use std::time::Duration;

use deadpool_redis::redis::{self, AsyncConnectionConfig};
use deadpool_redis::{Manager, Pool, Runtime};

use crate::config::CacheConfig;
use crate::error::CacheError;

/// A pool of multiplexed Redis connections; cheap to clone.
pub type RedisPool = Pool;

/// How long any one command (or pipeline) may wait for its reply. Set here
/// rather than left to the Redis client's default (500 ms), because
/// [`EventLog::read_after`](crate::EventLog::read_after) must wait longer than
/// its `BLOCK` time and adds this on top, and because a pipeline of a
/// thousand window steps on a busy machine can take longer than 500 ms
/// without anything being wrong. A Redis that is down is noticed at once
/// anyway (refused or reset connections); this only bounds a hung one.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Builds the pool. No connection is opened until one is needed, so this
/// succeeds while Redis is still down, and the pool recovers by itself when it
/// comes back.
///
/// Opening a connection and waiting for a free one are both bounded by
/// `connect_timeout_ms`; each command, or pipeline of commands, must be
/// answered within 2 s (blocking reads of the event stream get their block
/// time on top).
///
/// # Errors
/// [`CacheError::InvalidUrl`] when the URL cannot be parsed.
pub fn connect(config: &CacheConfig) -> Result<RedisPool, CacheError> {
    let timeout = Duration::from_millis(config.connect_timeout_ms);
    let connection = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let manager = Manager::new_with_config(config.url.as_str(), connection)
        .map_err(CacheError::InvalidUrl)?;
    let pool = Pool::builder(manager)
        .max_size(config.max_connections.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .build()
        .expect("a runtime is set, the only thing building a pool can lack");
    Ok(pool)
}

/// Checks that Redis answers, for readiness probes.
///
/// # Errors
/// [`CacheError::Unavailable`] when no connection can be had or Redis does not
/// answer in time; [`CacheError::Command`] for an unexpected reply.
pub async fn ping(pool: &RedisPool) -> Result<(), CacheError> {
    let mut connection = pool.get().await?;
    redis::cmd("PING")
        .query_async::<()>(&mut connection)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> CacheConfig {
        CacheConfig {
            url: url.into(),
            key_prefix: "txwatch:".into(),
            max_connections: 4,
            connect_timeout_ms: 1_000,
            window_idle_ttl_secs: 60,
            event_retention: 100,
        }
    }

    #[test]
    fn a_url_that_does_not_parse_is_rejected_up_front() {
        for url in ["not a url", "http://127.0.0.1:6379", "redis://"] {
            match connect(&config(url)) {
                Err(CacheError::InvalidUrl(_)) => {}
                Err(other) => panic!("{url}: expected InvalidUrl, got {other:?}"),
                Ok(_) => panic!("{url}: expected InvalidUrl, got a pool"),
            }
        }
    }

    #[test]
    fn the_pool_is_built_without_reaching_redis() {
        let pool = connect(&config("redis://127.0.0.1:1")).expect("no connection is opened");
        assert_eq!(pool.status().max_size, 4);
        assert_eq!(pool.status().size, 0);
    }
}
