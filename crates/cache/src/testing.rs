//! Isolated Redis key spaces for tests: each test gets its own `test:<uuid>:`
//! key prefix on the shared Redis, and its keys are unlinked when it goes out
//! of scope. Nothing else is touched: never `FLUSHDB` or `FLUSHALL`.
//!
//! With `TEST_REDIS_CLUSTER_NODES` set (comma-separated node URLs, as
//! `scripts/redis-cluster.sh up` prints them), the same tests run on that
//! Redis Cluster instead, and fail if it cannot be reached.

use std::time::Duration;

use deadpool_redis::redis;

use crate::config::{CacheConfig, redact_password};
use crate::keys::Keys;
use crate::pool::{RedisPool, connect};

/// How long the drop cleanup may take before it gives up.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where tests find Redis: `TEST_REDIS_URL`, else the local server.
pub fn server_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The Redis Cluster nodes tests use: `TEST_REDIS_CLUSTER_NODES`
/// (comma-separated URLs), or none (the single Redis of [`server_url`]).
pub fn cluster_nodes() -> Vec<String> {
    std::env::var("TEST_REDIS_CLUSTER_NODES")
        .map(|nodes| {
            nodes
                .split(',')
                .map(str::trim)
                .filter(|node| !node.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A key prefix of a test's own on the test Redis, with a pool; every key
/// under the prefix is unlinked on drop.
pub struct TestRedis {
    config: CacheConfig,
    keys: Keys,
    pool: RedisPool,
}

impl TestRedis {
    /// Picks a fresh `test:<uuid>:` prefix and checks that Redis answers.
    ///
    /// # Panics
    /// When Redis cannot be reached: a test cannot run without it, and the
    /// message says how to start it.
    pub async fn create() -> TestRedis {
        TestRedis::create_on(cluster_nodes()).await
    }

    /// Like [`create`](Self::create), on the Redis Cluster of
    /// `cluster_nodes` (none: the single test Redis), whatever the
    /// environment says.
    ///
    /// # Panics
    /// When that Redis or cluster cannot be reached.
    pub async fn create_on(cluster_nodes: Vec<String>) -> TestRedis {
        let config = CacheConfig {
            url: server_url(),
            key_prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
            // The server's relay may hold one per event shard on a cluster.
            max_connections: 16,
            connect_timeout_ms: 5_000,
            window_idle_ttl_secs: 3_600,
            event_retention: 10_000,
            event_shards: 8,
            dead_connection_timeout_ms: 15_000,
            cluster_nodes,
        };
        let pool = connect(&config).expect("build the test pool");
        if let Err(error) = crate::ping(&pool).await {
            if !config.cluster_nodes.is_empty() {
                panic!(
                    "cannot reach the Redis Cluster at {:?} ({error}). Start one: \
                     `scripts/redis-cluster.sh up`, and set TEST_REDIS_CLUSTER_NODES to its nodes",
                    config.cluster_nodes
                );
            }
            panic!(
                "cannot reach Redis at {} ({error}). Start it: \
                 `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no`, \
                 or set TEST_REDIS_URL",
                redact_password(&config.url)
            );
        }
        let keys = Keys::new(config.key_prefix.as_str());
        TestRedis { config, keys, pool }
    }

    /// Key naming under this test's prefix.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A pool on the test Redis.
    pub fn pool(&self) -> &RedisPool {
        &self.pool
    }

    /// Settings that reach the test Redis with this test's prefix.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// Removes every key under this test's prefix now, as if Redis had lost
    /// its data (a restart without persistence, or an eviction).
    ///
    /// # Errors
    /// The Redis error when the keys cannot be scanned or removed.
    pub async fn lose_everything(&self) -> Result<(), redis::RedisError> {
        unlink_matching(&self.config, &self.keys.pattern()).await
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.pool.close();
        let config = self.config.clone();
        let pattern = self.keys.pattern();
        // Drop runs outside async code, and the pool's connections belong to
        // the test's runtime, which is blocked here: a small runtime on its
        // own thread, with its own connection, does the cleanup.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            // The timeout needs the runtime's timer, so it is made inside.
            runtime.block_on(async move {
                tokio::time::timeout(CLEANUP_TIMEOUT, unlink_matching(&config, &pattern)).await
            })??;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not remove test keys: {error}"),
            Err(_) => eprintln!("could not remove test keys: the cleanup thread panicked"),
        }
    }
}

/// Unlinks every key matching `pattern`, one `SCAN` batch at a time; on a
/// cluster, the keys every node lists, each unlinked on its master.
async fn unlink_matching(config: &CacheConfig, pattern: &str) -> Result<(), redis::RedisError> {
    if config.cluster_nodes.is_empty() {
        let client = redis::Client::open(config.url.as_str())?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        return scan_unlink(&mut connection, pattern, None).await;
    }
    let pool = connect(config).map_err(cache_error)?;
    let mut cluster = pool.get().await.map_err(cache_error)?;
    for node in &config.cluster_nodes {
        let client = redis::Client::open(node.as_str())?;
        // A node that is down (a test killed it) has a replica that took
        // over its keys, and is scanned there.
        let Ok(mut connection) = client.get_multiplexed_async_connection().await else {
            continue;
        };
        scan_unlink(&mut connection, pattern, Some(&mut cluster)).await?;
    }
    Ok(())
}

/// Scans `connection` for keys matching `pattern` and unlinks them there,
/// or through `cluster`.
async fn scan_unlink(
    connection: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
    mut cluster: Option<&mut crate::RedisConnection>,
) -> Result<(), redis::RedisError> {
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1_000)
            .query_async(connection)
            .await?;
        if !keys.is_empty() {
            match cluster.as_deref_mut() {
                // One UNLINK per key: the keys live in many slots.
                Some(cluster) => {
                    let mut pipe = redis::Pipeline::with_capacity(keys.len());
                    for key in keys {
                        pipe.cmd("UNLINK").arg(key).ignore();
                    }
                    pipe.query_async::<()>(cluster).await?;
                }
                None => {
                    redis::cmd("UNLINK")
                        .arg(keys)
                        .query_async::<()>(connection)
                        .await?;
                }
            }
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

fn cache_error(error: crate::CacheError) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Io,
        "the test cluster cannot be reached",
        error.to_string(),
    ))
}
