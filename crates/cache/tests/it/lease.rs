use std::time::Duration;

use deadpool_redis::redis;
use txwatch_cache::testing::TestRedis;
use txwatch_cache::{CacheError, Leases};

use crate::{new_user, within};

fn leases(redis: &TestRedis, ttl: Duration) -> Leases {
    Leases::new(redis.pool().clone(), redis.keys().clone(), ttl)
}

async fn pttl(redis: &TestRedis, key: &str) -> i64 {
    let mut connection = within(redis.pool().get()).await.expect("connection");
    within(redis::cmd("PTTL").arg(key).query_async(&mut connection))
        .await
        .expect("pttl")
}

#[tokio::test]
async fn a_lease_goes_to_the_first_holder_and_is_refused_to_others_until_released() {
    let redis = within(TestRedis::create()).await;
    let leases = leases(&redis, Duration::from_secs(30));
    let user = new_user();
    assert_eq!(
        within(leases.acquire_or_renew(&[user], "server-a"))
            .await
            .expect("a takes it"),
        [true]
    );
    assert_eq!(
        within(leases.acquire_or_renew(&[user], "server-b"))
            .await
            .expect("b asks"),
        [false]
    );
    assert_eq!(
        within(leases.acquire_or_renew(&[user], "server-a"))
            .await
            .expect("a renews"),
        [true]
    );
    within(leases.release(&[user], "server-b"))
        .await
        .expect("b cannot release it");
    assert_eq!(
        within(leases.acquire_or_renew(&[user], "server-b"))
            .await
            .expect("b asks again"),
        [false]
    );
    within(leases.release(&[user], "server-a"))
        .await
        .expect("a releases it");
    assert_eq!(
        within(leases.acquire_or_renew(&[user], "server-b"))
            .await
            .expect("b takes it"),
        [true]
    );
}

#[tokio::test]
async fn renewing_a_lease_restarts_its_ttl() {
    let redis = within(TestRedis::create()).await;
    let ttl = Duration::from_secs(30);
    let leases = leases(&redis, ttl);
    let user = new_user();
    let key = redis.keys().lease(user);
    within(leases.acquire_or_renew(&[user], "server-a"))
        .await
        .expect("take");
    let mut connection = within(redis.pool().get()).await.expect("connection");
    within(
        redis::cmd("PEXPIRE")
            .arg(&key)
            .arg(1_000)
            .query_async::<()>(&mut connection),
    )
    .await
    .expect("shorten");
    drop(connection);
    within(leases.acquire_or_renew(&[user], "server-a"))
        .await
        .expect("renew");
    let left = pttl(&redis, &key).await;
    assert!(1_000 < left && left <= 30_000, "PTTL {left} ms");
}

#[tokio::test]
async fn a_lease_not_renewed_expires_and_goes_to_the_next_holder() {
    let redis = within(TestRedis::create()).await;
    let leases = leases(&redis, Duration::from_millis(200));
    let user = new_user();
    assert_eq!(
        within(leases.acquire_or_renew(&[user], "server-a"))
            .await
            .expect("a takes it"),
        [true]
    );
    assert_eq!(
        within(leases.acquire_or_renew(&[user], "server-b"))
            .await
            .expect("b asks"),
        [false]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        within(leases.acquire_or_renew(&[user], "server-b"))
            .await
            .expect("b takes it"),
        [true]
    );
}

#[tokio::test]
async fn many_leases_are_answered_one_by_one_in_one_call() {
    let redis = within(TestRedis::create()).await;
    let leases = leases(&redis, Duration::from_secs(30));
    let (mine, theirs, free) = (new_user(), new_user(), new_user());
    within(leases.acquire_or_renew(&[mine], "server-a"))
        .await
        .expect("a takes one");
    within(leases.acquire_or_renew(&[theirs], "server-b"))
        .await
        .expect("b takes one");
    assert_eq!(
        within(leases.acquire_or_renew(&[mine, theirs, free], "server-a"))
            .await
            .expect("a asks for three"),
        [true, false, true]
    );
    within(leases.release(&[mine, theirs, free], "server-a"))
        .await
        .expect("a releases what it has");
    assert_eq!(
        within(leases.acquire_or_renew(&[mine, theirs, free], "server-c"))
            .await
            .expect("c asks for three"),
        [true, false, true]
    );
    assert_eq!(
        within(leases.acquire_or_renew(&[], "server-a"))
            .await
            .expect("no users"),
        Vec::<bool>::new()
    );
    within(leases.release(&[], "server-a"))
        .await
        .expect("release no users");
}

#[tokio::test]
async fn leases_still_work_after_redis_forgets_its_scripts() {
    let redis = within(TestRedis::create()).await;
    let leases = leases(&redis, Duration::from_secs(30));
    let user = new_user();
    let mut connection = within(redis.pool().get()).await.expect("connection");
    within(
        redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async::<()>(&mut connection),
    )
    .await
    .expect("script flush");
    drop(connection);
    assert_eq!(
        within(leases.acquire_or_renew(&[user], "server-a"))
            .await
            .expect("take"),
        [true]
    );
    within(leases.release(&[user], "server-a"))
        .await
        .expect("release");
}

#[tokio::test]
async fn a_lease_key_holding_something_else_is_reported_as_corrupt() {
    let redis = within(TestRedis::create()).await;
    let leases = leases(&redis, Duration::from_secs(30));
    let user = new_user();
    let key = redis.keys().lease(user);
    let mut connection = within(redis.pool().get()).await.expect("connection");
    within(
        redis::cmd("RPUSH")
            .arg(&key)
            .arg("server-a")
            .query_async::<()>(&mut connection),
    )
    .await
    .expect("rpush");
    drop(connection);
    match within(leases.acquire_or_renew(&[user], "server-a")).await {
        Err(CacheError::CorruptEntry { key: at, .. }) => assert_eq!(at, key),
        other => panic!("expected CorruptEntry, got {other:?}"),
    }
}
