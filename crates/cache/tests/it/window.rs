use deadpool_redis::redis;
use txwatch_cache::testing::TestRedis;
use txwatch_cache::{CacheError, WindowStore};
use txwatch_domain::Amount;

use crate::{amounts, new_user, within};

fn store(redis: &TestRedis, capacity: usize) -> WindowStore {
    WindowStore::new(redis.pool().clone(), redis.keys().clone(), capacity)
}

/// The raw entries of a list, as Redis holds them.
async fn raw_list(redis: &TestRedis, key: &str) -> Vec<String> {
    let mut connection = within(redis.pool().get()).await.expect("connection");
    within(
        redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query_async(&mut connection),
    )
    .await
    .expect("lrange")
}

#[tokio::test]
async fn a_replaced_window_reads_back_oldest_first_as_exact_decimal_strings() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 5);
    let user = new_user();
    let window = amounts(&["271.62", "10", "0.5", "1999999.99"]);
    within(windows.replace(user, &window))
        .await
        .expect("replace");
    assert_eq!(within(windows.read(user)).await.expect("read"), window);
    assert_eq!(
        raw_list(&redis, &redis.keys().window(user)).await,
        ["271.62", "10.00", "0.50", "1999999.99"]
    );
}

#[tokio::test]
async fn a_replaced_window_keeps_only_the_newest_amounts_up_to_capacity() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 3);
    let user = new_user();
    let window = amounts(&["1.00", "2.00", "3.00", "4.00", "5.00"]);
    within(windows.replace(user, &window))
        .await
        .expect("replace");
    assert_eq!(
        within(windows.read(user)).await.expect("read"),
        amounts(&["3.00", "4.00", "5.00"])
    );
    assert_eq!(raw_list(&redis, &redis.keys().window(user)).await.len(), 3);
}

#[tokio::test]
async fn replacing_twice_leaves_only_the_second_set() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 20);
    let user = new_user();
    within(windows.replace(user, &amounts(&["1.00", "2.00", "3.00"])))
        .await
        .expect("first replace");
    within(windows.replace(user, &amounts(&["7.00", "8.00"])))
        .await
        .expect("second replace");
    assert_eq!(
        within(windows.read(user)).await.expect("read"),
        amounts(&["7.00", "8.00"])
    );
}

#[tokio::test]
async fn replacing_with_no_amounts_empties_the_window() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 20);
    let user = new_user();
    within(windows.replace(user, &amounts(&["1.00"])))
        .await
        .expect("replace");
    within(windows.replace(user, &[])).await.expect("empty");
    assert_eq!(
        within(windows.read(user)).await.expect("read"),
        Vec::<Amount>::new()
    );
}

#[tokio::test]
async fn windows_of_different_users_are_kept_apart() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 20);
    let (alice, bob) = (new_user(), new_user());
    within(windows.replace(alice, &amounts(&["1.00"])))
        .await
        .expect("replace alice");
    within(windows.replace(bob, &amounts(&["2.00"])))
        .await
        .expect("replace bob");
    assert_eq!(
        within(windows.read(alice)).await.expect("read alice"),
        amounts(&["1.00"])
    );
    assert_eq!(
        within(windows.read(bob)).await.expect("read bob"),
        amounts(&["2.00"])
    );
}

#[tokio::test]
async fn reading_the_window_of_an_unknown_user_gives_no_amounts() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 20);
    assert_eq!(
        within(windows.read(new_user())).await.expect("read"),
        Vec::<Amount>::new()
    );
}

#[tokio::test]
async fn an_entry_that_is_not_an_amount_is_reported_as_corrupt() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 20);
    let user = new_user();
    let key = redis.keys().window(user);
    let mut connection = within(redis.pool().get()).await.expect("connection");
    within(
        redis::cmd("RPUSH")
            .arg(&key)
            .arg("12.50")
            .arg("twelve")
            .query_async::<()>(&mut connection),
    )
    .await
    .expect("rpush");
    match within(windows.read(user)).await {
        Err(CacheError::CorruptEntry { key: at, reason }) => {
            assert_eq!(at, key);
            assert!(reason.contains("twelve"), "{reason}");
        }
        other => panic!("expected CorruptEntry, got {other:?}"),
    }
}

#[tokio::test]
async fn a_window_key_holding_something_other_than_a_list_is_reported_as_corrupt() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 20);
    let user = new_user();
    let key = redis.keys().window(user);
    let mut connection = within(redis.pool().get()).await.expect("connection");
    within(
        redis::cmd("SET")
            .arg(&key)
            .arg("12.50")
            .query_async::<()>(&mut connection),
    )
    .await
    .expect("set");
    match within(windows.read(user)).await {
        Err(CacheError::CorruptEntry { key: at, .. }) => assert_eq!(at, key),
        other => panic!("expected CorruptEntry, got {other:?}"),
    }
}
