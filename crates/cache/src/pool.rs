//! The connection pool, its health check, and how connections that stop
//! answering are kept out of it.

use std::time::Duration;

use deadpool_redis::redis::io::tcp::TcpSettings;
use deadpool_redis::redis::io::tcp::socket2::TcpKeepalive;
use deadpool_redis::redis::{self, AsyncConnectionConfig, IntoConnectionInfo, RedisResult};
use deadpool_redis::{Connection, Manager, Pool, Runtime};

use crate::config::CacheConfig;
use crate::error::CacheError;

/// Keepalive probes sent to a silent idle peer before its connection is
/// given up.
const KEEPALIVE_PROBES: u32 = 3;

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
/// time on top). A connection on which a command got no answer is closed
/// rather than returned to the pool, and every socket gives up on a silent
/// peer within `dead_connection_timeout_ms` (TCP user timeout and
/// keepalive).
///
/// # Errors
/// [`CacheError::InvalidUrl`] when the URL cannot be parsed.
pub fn connect(config: &CacheConfig) -> Result<RedisPool, CacheError> {
    let timeout = Duration::from_millis(config.connect_timeout_ms);
    let connection = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let mut info = config
        .url
        .as_str()
        .into_connection_info()
        .map_err(CacheError::InvalidUrl)?;
    if let Some(tcp) = silent_peer(config.dead_connection_timeout_ms, info.tcp_settings()) {
        info = info.set_tcp_settings(tcp);
    }
    let manager = Manager::new_with_config(info, connection).map_err(CacheError::InvalidUrl)?;
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
    let mut held = Held::get(pool).await?;
    let reply = redis::cmd("PING")
        .query_async::<()>(held.connection())
        .await;
    held.settle(reply)?;
    Ok(())
}

/// `current` TCP settings that also give up on a silent peer within `ms`
/// milliseconds: an idle connection is probed after a third of it, three
/// probes a ninth of it apart (so a dead one is found out after about two
/// thirds); data left unacknowledged is given up after all of it
/// (TCP_USER_TIMEOUT, Linux). Keepalive times are whole seconds, as the
/// socket options take them. `None` for 0: the operating system's defaults.
fn silent_peer(ms: u64, current: &TcpSettings) -> Option<TcpSettings> {
    if ms == 0 {
        return None;
    }
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(ms.div_ceil(3_000).max(1)))
        .with_interval(Duration::from_secs(ms.div_ceil(9_000).max(1)));
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    let keepalive = keepalive.with_retries(KEEPALIVE_PROBES);
    let settings = current.clone().set_keepalive(keepalive);
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    let settings = settings.set_user_timeout(Duration::from_millis(ms));
    Some(settings)
}

/// A pooled connection that goes back to the pool only when told to, after
/// Redis answered on it. Dropped otherwise (no answer in time, a lost
/// connection, a call abandoned half-way), it is taken out of the pool and
/// closed: handed to the next caller, a connection that stopped answering
/// would cost it the whole response timeout again, and a blocking read may
/// still hold it.
pub(crate) struct Held(Option<Connection>);

impl Held {
    /// A connection from `pool`.
    pub(crate) async fn get(pool: &RedisPool) -> Result<Held, CacheError> {
        Ok(Held(Some(pool.get().await?)))
    }

    pub(crate) fn connection(&mut self) -> &mut Connection {
        self.0
            .as_mut()
            .expect("the connection is only taken by `give_back`, which consumes the holder")
    }

    /// Gives the connection back to the pool.
    pub(crate) fn give_back(mut self) {
        // Dropping the pooled handle returns it to the pool.
        self.0.take();
    }

    /// Gives the connection back if `result` came from Redis (a reply, or
    /// an error Redis sent), and passes `result` on; otherwise the
    /// connection is closed.
    pub(crate) fn settle<T>(self, result: RedisResult<T>) -> RedisResult<T> {
        let answered = match &result {
            Ok(_) => true,
            Err(error) => error.code().is_some(),
        };
        if answered {
            self.give_back();
        }
        result
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(connection) = self.0.take() {
            // Out of the pool, the last handle goes, and with it the socket.
            drop(Connection::take(connection));
        }
    }
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
            dead_connection_timeout_ms: 15_000,
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
    fn a_silent_peer_is_given_up_within_the_configured_time() {
        assert!(silent_peer(0, &TcpSettings::default()).is_none());
        let settings = silent_peer(15_000, &TcpSettings::default()).expect("settings");
        assert!(settings.keepalive().is_some());
        #[cfg(target_os = "linux")]
        assert_eq!(settings.user_timeout(), Some(Duration::from_millis(15_000)));
        // What the URL asked for stays.
        let nodelay = TcpSettings::default().set_nodelay(true);
        assert!(silent_peer(15_000, &nodelay).expect("settings").nodelay());
    }

    #[test]
    fn the_pool_is_built_without_reaching_redis() {
        let pool = connect(&config("redis://127.0.0.1:1")).expect("no connection is opened");
        assert_eq!(pool.status().max_size, 4);
        assert_eq!(pool.status().size, 0);
    }
}
