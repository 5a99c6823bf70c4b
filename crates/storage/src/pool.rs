//! The connection pool, and how its sockets notice a silent peer.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, Status,
};
use tokio::time::Instant;
use tokio_postgres::NoTls;

use crate::config::StorageConfig;
use crate::error::{NoAnswer, StorageError};
use crate::session::Session;

/// Keepalive probes sent to a silent idle peer before its connection is
/// given up.
const KEEPALIVE_PROBES: u32 = 3;

/// A pool of PostgreSQL connections, with the deadline of every call made
/// on them; cheap to clone.
#[derive(Clone)]
pub struct PgPool {
    pool: Pool,
    query_timeout: Duration,
}

impl PgPool {
    /// A connection of the pool, without any deadline: for tools and tests
    /// that run statements of their own. The repository's calls go
    /// through sessions that give each call a deadline.
    ///
    /// # Errors
    /// The pool's error when no connection can be had in time.
    pub async fn get(&self) -> Result<Object, PoolError> {
        self.pool.get().await
    }

    /// How many connections are open, idle and awaited.
    pub fn status(&self) -> Status {
        self.pool.status()
    }

    /// Closes every connection and refuses new checkouts.
    pub fn close(&self) {
        self.pool.close();
    }

    /// How long one call may wait for answers once it has a connection.
    pub fn query_timeout(&self) -> Duration {
        self.query_timeout
    }

    /// A connection for one call, which must be done within the query
    /// timeout.
    pub(crate) async fn session(&self) -> Result<Session, StorageError> {
        self.session_until(Instant::now() + self.query_timeout)
            .await
    }

    /// A connection for one call that must be done by `deadline`, waiting
    /// for the connection itself no later than that either.
    pub(crate) async fn session_until(&self, deadline: Instant) -> Result<Session, StorageError> {
        let client = tokio::time::timeout_at(deadline, self.pool.get())
            .await
            .map_err(|_| {
                StorageError::Unavailable(Box::new(NoAnswer(
                    deadline.saturating_duration_since(Instant::now()),
                )))
            })??;
        Ok(Session::new(client, self.clone(), deadline))
    }

    /// Closes every idle connection, after one went silent: they were
    /// probably opened over the same path (a partitioned network, a
    /// database that failed over), and each would otherwise cost a request
    /// a whole deadline before it is found out. Fresh ones are opened as
    /// needed.
    pub(crate) fn drop_idle(&self) {
        let dropped = self.pool.retain(|_, _| false).removed.len();
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "idle database connections closed after one went silent"
            );
        }
    }
}

/// Builds the pool. No connection is opened until one is needed, so this
/// succeeds while the database is still down, and the pool recovers by itself
/// when it comes back.
///
/// Every socket gives up on a silent peer within
/// [`StorageConfig::dead_connection_timeout_ms`], and asks Postgres to do
/// the same on its side.
///
/// # Errors
/// [`StorageError::InvalidUrl`] when the URL cannot be parsed.
pub fn connect(config: &StorageConfig) -> Result<PgPool, StorageError> {
    let mut pg = tokio_postgres::Config::from_str(&config.url).map_err(StorageError::InvalidUrl)?;
    pg.connect_timeout(Duration::from_millis(config.connect_timeout_ms));
    if pg.get_application_name().is_none() {
        pg.application_name("txwatch");
    }
    // Server settings for our sessions, after any the URL asks for.
    let mut options: Vec<String> = pg.get_options().map(str::to_owned).into_iter().collect();
    if config.statement_timeout_ms > 0 {
        options.push(format!(
            "-c statement_timeout={}",
            config.statement_timeout_ms
        ));
    }
    if let Some(peer) = SilentPeer::within(config.dead_connection_timeout_ms) {
        peer.apply(&mut pg);
        options.push(peer.server_options());
    }
    if !options.is_empty() {
        pg.options(options.join(" "));
    }
    // `Fast` recycling skips a round trip per checkout; a connection that died
    // is noticed by its first query and replaced.
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(config.max_connections.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_millis(config.acquire_timeout_ms)))
        .create_timeout(Some(Duration::from_millis(config.connect_timeout_ms)))
        .recycle_timeout(Some(Duration::from_millis(config.connect_timeout_ms)))
        .build()
        .map_err(|error| StorageError::Unavailable(Box::new(error)))?;
    Ok(PgPool {
        pool,
        query_timeout: Duration::from_millis(config.query_timeout_ms.max(1)),
    })
}

/// Checks that the database answers and holds our schema, for readiness
/// probes: one cheap query that reads no rows, on a connection of the pool,
/// all within `within` (and the query timeout). A pool that cannot hand
/// out a working connection in that time is not ready.
///
/// # Errors
/// [`StorageError::Unavailable`] when no connection can be had or no answer
/// comes in time, or the `transactions` table does not exist yet
/// (migrations pending).
pub async fn ping(pool: &PgPool, within: Duration) -> Result<(), StorageError> {
    let started = Instant::now();
    let within = within.min(pool.query_timeout);
    let mut session = tokio::time::timeout(within, pool.session())
        .await
        .map_err(|_| StorageError::Unavailable(Box::new(NoAnswer(within))))??;
    session.set_deadline(started + within);
    session
        .read(
            session
                .client()
                .query("select 1 from transactions limit 0", &[]),
        )
        .await?;
    Ok(())
}

/// Socket settings that give up on a silent peer within a given time.
///
/// An idle connection is probed after a third of it, three probes a ninth
/// of it apart, so a dead one is found out after about two thirds; data
/// left unacknowledged is given up after all of it (TCP_USER_TIMEOUT,
/// Linux). Keepalive times are whole seconds, as the socket options and
/// Postgres's settings take them.
pub(crate) struct SilentPeer {
    idle: Duration,
    interval: Duration,
    user_timeout: Duration,
}

impl SilentPeer {
    /// The settings for `ms` milliseconds; none for 0.
    pub(crate) fn within(ms: u64) -> Option<SilentPeer> {
        (ms > 0).then(|| SilentPeer {
            idle: Duration::from_secs(ms.div_ceil(3_000).max(1)),
            interval: Duration::from_secs(ms.div_ceil(9_000).max(1)),
            user_timeout: Duration::from_millis(ms),
        })
    }

    /// Sets them on our end of a connection.
    pub(crate) fn apply(&self, config: &mut tokio_postgres::Config) {
        config
            .keepalives(true)
            .keepalives_idle(self.idle)
            .keepalives_interval(self.interval)
            .keepalives_retries(KEEPALIVE_PROBES)
            .tcp_user_timeout(self.user_timeout);
    }

    /// The same for Postgres's end of the connection, as startup options:
    /// a server that sees its client vanish closes the session and releases
    /// whatever it held (an in-flight write's row locks above all).
    fn server_options(&self) -> String {
        format!(
            "-c tcp_keepalives_idle={} -c tcp_keepalives_interval={} \
             -c tcp_keepalives_count={KEEPALIVE_PROBES} -c tcp_user_timeout={}",
            self.idle.as_secs(),
            self.interval.as_secs(),
            self.user_timeout.as_millis(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_peer_is_given_up_within_the_configured_time() {
        assert!(SilentPeer::within(0).is_none());
        let peer = SilentPeer::within(15_000).expect("settings");
        assert_eq!(peer.idle, Duration::from_secs(5));
        assert_eq!(peer.interval, Duration::from_secs(2));
        assert_eq!(peer.user_timeout, Duration::from_millis(15_000));
        assert!(peer.idle + peer.interval * KEEPALIVE_PROBES < peer.user_timeout);
        assert_eq!(
            peer.server_options(),
            "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 \
             -c tcp_keepalives_count=3 -c tcp_user_timeout=15000"
        );
        // Below a second the keepalive times are a second: the smallest
        // the socket options take.
        let short = SilentPeer::within(500).expect("settings");
        assert_eq!(
            (short.idle, short.interval),
            (Duration::from_secs(1), Duration::from_secs(1))
        );
    }
}
