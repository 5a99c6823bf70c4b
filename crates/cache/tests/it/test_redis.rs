use std::time::Duration;

use deadpool_redis::redis;
use txwatch_cache::testing::TestRedis;
use txwatch_cache::{EventLog, NewEvent, RedisPool, WindowStore};
use txwatch_domain::Origin;

use crate::{entry, new_user, within};

/// How many keys exist under `pattern`, counted with `SCAN` as the cleanup
/// finds them (on a cluster, on every master).
async fn count_matching(pool: &RedisPool, pattern: &str) -> usize {
    let nodes = txwatch_cache::testing::cluster_nodes();
    if nodes.is_empty() {
        let mut connection = within(pool.get()).await.expect("connection");
        return count_on(&mut connection, pattern).await;
    }
    let mut count = 0;
    for node in nodes {
        let client = redis::Client::open(node.as_str()).expect("node url");
        let mut connection = within(client.get_multiplexed_async_connection())
            .await
            .expect("node connection");
        let role: Vec<redis::Value> = within(redis::cmd("ROLE").query_async(&mut connection))
            .await
            .expect("role");
        if matches!(role.first(), Some(redis::Value::BulkString(name)) if name == b"master") {
            count += count_on(&mut connection, pattern).await;
        }
    }
    count
}

async fn count_on(connection: &mut impl redis::aio::ConnectionLike, pattern: &str) -> usize {
    let mut cursor: u64 = 0;
    let mut count = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = within(
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1_000)
                .query_async(connection),
        )
        .await
        .expect("scan");
        count += keys.len();
        if next == 0 {
            return count;
        }
        cursor = next;
    }
}

#[tokio::test]
async fn each_test_redis_has_a_fresh_prefix_of_its_own() {
    let first = within(TestRedis::create()).await;
    let second = within(TestRedis::create()).await;
    assert!(first.keys().prefix().starts_with("test:"));
    assert!(first.keys().prefix().ends_with(':'));
    assert_ne!(first.keys().prefix(), second.keys().prefix());
    assert_eq!(first.config().key_prefix, first.keys().prefix());
}

#[tokio::test]
async fn dropping_a_test_redis_removes_its_keys_and_no_others() {
    let neighbour = within(TestRedis::create()).await;
    let neighbours_windows = WindowStore::new(
        neighbour.pool().clone(),
        neighbour.keys().clone(),
        5,
        Duration::from_secs(60),
    );
    let kept_user = new_user();
    let kept = [entry(0, "9.00")];
    within(neighbours_windows.replace(kept_user, &kept))
        .await
        .expect("replace the neighbour's window");

    let doomed = within(TestRedis::create()).await;
    let pattern = doomed.keys().pattern();
    let windows = WindowStore::new(
        doomed.pool().clone(),
        doomed.keys().clone(),
        5,
        Duration::from_secs(60),
    );
    for _ in 0..3 {
        within(windows.replace(new_user(), &[entry(0, "1.00"), entry(1, "2.00")]))
            .await
            .expect("replace");
    }
    let simulated = windows.clone().with_origin(Origin::Simulated);
    within(simulated.replace(new_user(), &[entry(0, "1.00")]))
        .await
        .expect("replace a simulated window");
    let events = EventLog::new(doomed.pool().clone(), doomed.keys(), 100, 8);
    let event = NewEvent {
        user_id: new_user(),
        is_anomaly: false,
        feed: None,
        data: b"{}",
    };
    within(events.append(&[event])).await.expect("append");
    assert_eq!(count_matching(neighbour.pool(), &pattern).await, 5);

    drop((windows, simulated, events));
    drop(doomed);

    // Checked over the neighbour's connection, which the drop did not touch.
    assert_eq!(count_matching(neighbour.pool(), &pattern).await, 0);
    assert_eq!(
        within(neighbours_windows.read(kept_user))
            .await
            .expect("read the neighbour's window"),
        kept
    );
}
