//! Isolated Redis key spaces for tests: each test gets its own `test:<uuid>:`
//! key prefix on the shared Redis, and its keys are unlinked when it goes out
//! of scope. Nothing else is touched: never `FLUSHDB` or `FLUSHALL`.

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
        let config = CacheConfig {
            url: server_url(),
            key_prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
            max_connections: 8,
            connect_timeout_ms: 5_000,
            window_idle_ttl_secs: 3_600,
            event_retention: 10_000,
            dead_connection_timeout_ms: 15_000,
        };
        let pool = connect(&config).expect("build the test pool");
        if let Err(error) = crate::ping(&pool).await {
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
        unlink_matching(&self.config.url, &self.keys.pattern()).await
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.pool.close();
        let url = self.config.url.clone();
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
                tokio::time::timeout(CLEANUP_TIMEOUT, unlink_matching(&url, &pattern)).await
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

/// Unlinks every key matching `pattern`, one `SCAN` batch at a time.
async fn unlink_matching(url: &str, pattern: &str) -> Result<(), redis::RedisError> {
    let client = redis::Client::open(url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1_000)
            .query_async(&mut connection)
            .await?;
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(keys)
                .query_async::<()>(&mut connection)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
