//! A Redis that stops answering without closing anything, as in a network
//! partition: writes paused (`CLIENT PAUSE ... WRITE`, so the pool's
//! checkout `PING` still answers and the write itself gets no reply), or
//! its process frozen (SIGSTOP: connections stay open and nothing comes
//! back). Commands give up in time, and the connections they gave up on do
//! not go back to the pool.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use deadpool_redis::redis;
use txwatch_cache::testing::TestRedis;
use txwatch_cache::{CacheConfig, Keys, StepRequest, WindowStore, connect, ping};

use crate::{entry, new_user, within};

/// A `redis-server` of the test's own on a free port, which it can freeze
/// and thaw; killed on drop.
struct FreezableRedis {
    child: Child,
    port: u16,
}

impl FreezableRedis {
    async fn start() -> FreezableRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (see docs/testing.md)");
        within(async {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        FreezableRedis { child, port }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal}");
    }
}

impl Drop for FreezableRedis {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_command_without_an_answer_gives_up_in_time_and_its_connection_is_closed() {
    let redis = FreezableRedis::start().await;
    let config = CacheConfig {
        url: format!("redis://127.0.0.1:{}", redis.port),
        max_connections: 2,
        connect_timeout_ms: 500,
        // this test's own single Redis, also when the others run on a cluster
        cluster_nodes: Vec::new(),
        ..within(TestRedis::create()).await.config().clone()
    };
    let pool = connect(&config).expect("pool");
    let store = WindowStore::new(
        pool.clone(),
        Keys::new(config.key_prefix.as_str()),
        20,
        Duration::from_secs(60),
    );
    let user = new_user();
    within(ping(&pool)).await.expect("ping");
    within(store.read(user)).await.expect("a read");
    assert_eq!(pool.status().size, 1);

    // Writes paused: the connection passes the pool's check, and its
    // command gets no answer.
    let admin = redis::Client::open(config.url.as_str()).expect("client");
    let mut admin = within(admin.get_multiplexed_async_connection())
        .await
        .expect("admin connection");
    within(
        redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(4_000)
            .arg("WRITE")
            .query_async::<()>(&mut admin),
    )
    .await
    .expect("writes paused");
    let started = Instant::now();
    let error = within(store.replace(user, &[entry(0, "5")]))
        .await
        .expect_err("no answer");
    assert!(error.is_unavailable(), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // The connection that did not answer was closed, not pooled.
    assert_eq!(pool.status().size, 0);
    within(
        redis::cmd("CLIENT")
            .arg("UNPAUSE")
            .query_async::<()>(&mut admin),
    )
    .await
    .expect("writes resumed");

    // Frozen: nothing answers at all.
    within(store.read(user)).await.expect("a read");
    redis.signal("-STOP");
    let started = Instant::now();
    let error = within(store.read(user)).await.expect_err("no answer");
    assert!(error.is_unavailable(), "{error:?}");
    let step = StepRequest {
        user_id: user,
        entry: entry(1, "10"),
        rebuild: Some(&[]),
    };
    let error = within(store.step(&step)).await.expect_err("no answer");
    assert!(error.is_unavailable(), "{error:?}");
    // Each gave up after the 2 s response timeout, not later.
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );

    redis.signal("-CONT");
    within(async {
        while store.step(&step).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    within(ping(&pool)).await.expect("ping once thawed");
}
