use std::time::Duration;

use txwatch_cache::testing::TestRedis;
use txwatch_cache::{CacheConfig, CacheError, Keys, WindowStore, connect, ping};

use crate::{new_user, within};

#[tokio::test]
async fn a_running_redis_answers_a_ping() {
    let redis = within(TestRedis::create()).await;
    within(ping(redis.pool())).await.expect("ping");
}

#[tokio::test]
async fn an_unreachable_redis_is_reported_as_unavailable() {
    let config = CacheConfig {
        url: "redis://127.0.0.1:1".into(),
        key_prefix: "test:unreachable:".into(),
        max_connections: 2,
        connect_timeout_ms: 1_000,
        window_idle_ttl_secs: 60,
        event_retention: 100,
        event_shards: 8,
        dead_connection_timeout_ms: 15_000,
        cluster_nodes: Vec::new(),
    };
    // Building the pool must not need Redis, so the server can start first.
    let pool = connect(&config).expect("the pool is built without connecting");
    match within(ping(&pool)).await {
        Err(error) => assert!(error.is_unavailable(), "{error:?}"),
        Ok(()) => panic!("nothing listens on port 1, yet the ping succeeded"),
    }
    let store = WindowStore::new(
        pool,
        Keys::new(config.key_prefix),
        20,
        Duration::from_secs(60),
    );
    match within(store.read(new_user())).await {
        Err(error @ CacheError::Unavailable(_)) => assert!(error.is_unavailable()),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
