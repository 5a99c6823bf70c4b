//! The connection pool (of one Redis, or of a Redis Cluster), its health
//! check, and how connections that stop answering are kept out of it.

use std::time::Duration;

use deadpool_redis::redis::aio::ConnectionLike;
use deadpool_redis::redis::io::tcp::TcpSettings;
use deadpool_redis::redis::io::tcp::socket2::TcpKeepalive;
use deadpool_redis::redis::{
    self, AsyncConnectionConfig, Cmd, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisFuture,
    RedisResult, Value,
};
use deadpool_redis::{Connection, Manager, Pool, Runtime, Status, cluster};

use crate::config::CacheConfig;
use crate::connection::Conn;
use crate::error::CacheError;

/// Keepalive probes sent to a silent idle peer before its connection is
/// given up.
const KEEPALIVE_PROBES: u32 = 3;

/// A pool of multiplexed connections to one Redis or to a Redis Cluster
/// (see [`CacheConfig::cluster_nodes`]); cheap to clone. The rest of the
/// crate uses either the same way.
#[derive(Clone)]
pub struct RedisPool {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Single(Pool),
    Cluster(cluster::Pool),
}

impl RedisPool {
    /// How many connections the pool holds, and how many are in use.
    pub fn status(&self) -> Status {
        match &self.backend {
            Backend::Single(pool) => pool.status(),
            Backend::Cluster(pool) => pool.status(),
        }
    }

    /// Closes the pool: its idle connections go, and no new ones are handed out.
    pub fn close(&self) {
        match &self.backend {
            Backend::Single(pool) => pool.close(),
            Backend::Cluster(pool) => pool.close(),
        }
    }

    /// Whether this is a pool of Redis Cluster connections.
    pub fn is_cluster(&self) -> bool {
        matches!(self.backend, Backend::Cluster(_))
    }

    /// A pooled connection, for commands of the caller's own (tests,
    /// tools); it goes back to the pool when dropped.
    ///
    /// # Errors
    /// [`CacheError::Unavailable`] when no connection can be had in time.
    pub async fn get(&self) -> Result<RedisConnection, CacheError> {
        let pooled = match &self.backend {
            Backend::Single(pool) => Pooled::Single(pool.get().await?),
            Backend::Cluster(pool) => {
                Pooled::Cluster(pool.get().await.map_err(cluster_pool_error)?)
            }
        };
        Ok(RedisConnection {
            handle: pooled.handle(),
            pooled: Some(pooled),
        })
    }
}

impl std::fmt::Debug for RedisPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPool")
            .field("cluster", &self.is_cluster())
            .field("status", &self.status())
            .finish()
    }
}

/// A connection on loan from a [`RedisPool`], to one Redis or to a
/// cluster; commands and pipelines go through it as through any Redis
/// connection ([`ConnectionLike`]). Back to the pool when dropped.
pub struct RedisConnection {
    handle: Conn,
    /// `None` once taken out of the pool.
    pooled: Option<Pooled>,
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.handle.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.handle.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.handle.get_db()
    }
}

impl RedisConnection {
    /// Takes the connection out of the pool for good.
    pub(crate) fn take(mut self) -> Conn {
        if let Some(pooled) = self.pooled.take() {
            drop(pooled.take());
        }
        self.handle.clone()
    }
}

/// A connection on loan from a [`RedisPool`].
enum Pooled {
    Single(Connection),
    Cluster(cluster::Connection),
}

impl Pooled {
    /// A handle sharing the pooled connection.
    fn handle(&self) -> Conn {
        match self {
            Pooled::Single(connection) => Conn::Single((**connection).clone()),
            Pooled::Cluster(connection) => Conn::Cluster {
                connection: (**connection).clone(),
                timeout: RESPONSE_TIMEOUT,
            },
        }
    }

    /// Takes the connection out of the pool for good.
    fn take(self) -> Conn {
        match self {
            Pooled::Single(connection) => Conn::Single(Connection::take(connection)),
            Pooled::Cluster(connection) => Conn::Cluster {
                connection: cluster::Connection::take(connection),
                timeout: RESPONSE_TIMEOUT,
            },
        }
    }
}

fn cluster_pool_error(error: cluster::PoolError) -> CacheError {
    match error {
        cluster::PoolError::Backend(backend) => CacheError::from(backend),
        other => CacheError::Unavailable(Box::new(other)),
    }
}

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
/// With [`CacheConfig::cluster_nodes`] set, the pool's connections are
/// Redis Cluster connections (each one reaches every master it needs), and
/// a cluster request (retries after a failover included) is bounded by the
/// same 2 s.
///
/// # Errors
/// [`CacheError::InvalidUrl`] when a URL cannot be parsed.
pub fn connect(config: &CacheConfig) -> Result<RedisPool, CacheError> {
    let timeout = Duration::from_millis(config.connect_timeout_ms);
    if !config.cluster_nodes.is_empty() {
        let nodes = config
            .cluster_nodes
            .iter()
            .map(|url| connection_info(url, config))
            .collect::<Result<Vec<_>, _>>()?;
        let manager = cluster::Manager::new(nodes, false).map_err(CacheError::InvalidUrl)?;
        let pool = cluster::Pool::builder(manager)
            .max_size(config.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .expect("a runtime is set, the only thing building a pool can lack");
        return Ok(RedisPool {
            backend: Backend::Cluster(pool),
        });
    }
    let connection = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let info = connection_info(&config.url, config)?;
    let manager = Manager::new_with_config(info, connection).map_err(CacheError::InvalidUrl)?;
    let pool = Pool::builder(manager)
        .max_size(config.max_connections.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .build()
        .expect("a runtime is set, the only thing building a pool can lack");
    Ok(RedisPool {
        backend: Backend::Single(pool),
    })
}

/// `url` parsed, its sockets set to give up on a silent peer.
fn connection_info(url: &str, config: &CacheConfig) -> Result<ConnectionInfo, CacheError> {
    let mut info = url.into_connection_info().map_err(CacheError::InvalidUrl)?;
    if let Some(tcp) = silent_peer(config.dead_connection_timeout_ms, info.tcp_settings()) {
        info = info.set_tcp_settings(tcp);
    }
    Ok(info)
}

/// Checks that Redis answers, for readiness probes. On a cluster, the node
/// asked must also say `cluster_state:ok` (every slot served by a
/// reachable master); otherwise the cluster counts as unavailable.
///
/// # Errors
/// [`CacheError::Unavailable`] when no connection can be had or Redis does
/// not answer in time, [`CacheError::ClusterDown`] when the cluster is not
/// ok, [`CacheError::Command`] for an unexpected reply.
pub async fn ping(pool: &RedisPool) -> Result<(), CacheError> {
    let mut held = Held::get(pool).await?;
    if pool.is_cluster() {
        let reply = redis::cmd("CLUSTER")
            .arg("INFO")
            .query_async::<String>(held.connection())
            .await;
        let info = held.settle(reply)?;
        if !info.lines().any(|line| line.trim() == "cluster_state:ok") {
            return Err(CacheError::ClusterDown);
        }
        return Ok(());
    }
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
pub(crate) struct Held(RedisConnection);

impl Held {
    /// A connection from `pool`.
    pub(crate) async fn get(pool: &RedisPool) -> Result<Held, CacheError> {
        Ok(Held(pool.get().await?))
    }

    /// The held connection. Its response timeout may be changed: it is
    /// this handle's own.
    pub(crate) fn connection(&mut self) -> &mut Conn {
        &mut self.0.handle
    }

    /// Gives the connection back to the pool.
    pub(crate) fn give_back(mut self) {
        // Dropping the pooled handle returns it to the pool.
        self.0.pooled.take();
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
        if let Some(connection) = self.0.pooled.take() {
            // Out of the pool, the last handle goes, and with it the socket.
            drop(connection.take());
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
            event_shards: 8,
            dead_connection_timeout_ms: 15_000,
            cluster_nodes: Vec::new(),
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
