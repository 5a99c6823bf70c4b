//! Two real server processes (the `txwatch` binary) sharing one Postgres
//! database and one Redis key prefix, as behind a load balancer.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use txwatch_cache::WindowStore;
use txwatch_cache::testing::TestRedis;
use txwatch_domain::UserId;
use txwatch_storage::TransactionRepository;
use txwatch_storage::testing::TestDatabase;

use crate::helpers::within;
use crate::server_process::ServerProcess;
use crate::sse_client::open;

#[tokio::test]
async fn two_processes_store_concurrent_posts_once_and_keep_the_window_exact() {
    let db = TestDatabase::create().await;
    let redis = TestRedis::create().await;
    let a = ServerProcess::start(&db, &redis).await;
    let b = ServerProcess::start(&db, &redis).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let user = uuid::Uuid::new_v4();

    // An event posted to A arrives on a stream opened on B.
    let mut on_b = open(
        &format!("{}/sse/transactions?user_id={user}", b.address),
        None,
    )
    .await;
    on_b.next(Duration::from_secs(5)).await.expect("greeting");
    let first = client
        .post(format!("{}/transactions", a.address))
        .json(&json!({"user_id": user, "amount": "42"}))
        .send()
        .await
        .expect("posted");
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("json");
    let event = on_b
        .next_transaction(Duration::from_secs(10))
        .await
        .expect("the event crossed processes");
    assert_eq!(event.json(), first);

    // 2,000 posts of one user, 64 at a time, alternating between processes,
    // with distinct dates in shuffled order and some ids posted twice.
    let base = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let posts: Vec<(String, Value)> = (0..2000u64)
        .map(|i| {
            let address = if i % 2 == 0 { &a.address } else { &b.address };
            // A permutation of 0..2000, so arrival order is not date order.
            let slot = (i * 7919) % 2000;
            let date = base + time::Duration::milliseconds(slot as i64);
            let body = json!({
                "id": uuid::Uuid::from_u64_pair(user.as_u64_pair().0, slot),
                "user_id": user,
                "amount": format!("{}.{:02}", 10 + slot % 90, slot % 100),
                "txn_date": date.format(&time::format_description::well_known::Rfc3339).expect("date"),
            });
            (format!("{address}/transactions"), body)
        })
        .collect();
    let send = |(url, body): (String, Value)| {
        let client = client.clone();
        async move {
            let response = client.post(url).json(&body).send().await.expect("posted");
            response.status()
        }
    };
    let statuses: Vec<StatusCode> = within(async {
        use futures_util::StreamExt;
        // Every tenth post is sent twice, concurrently.
        let doubled = posts
            .iter()
            .enumerate()
            .flat_map(|(i, post)| {
                let times = if i % 10 == 0 { 2 } else { 1 };
                std::iter::repeat_n(post.clone(), times)
            })
            .collect::<Vec<_>>();
        futures_util::stream::iter(doubled)
            .map(send)
            .buffer_unordered(64)
            .collect()
            .await
    })
    .await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 2000, "each id created exactly once");
    assert!(
        statuses
            .iter()
            .all(|s| [StatusCode::CREATED, StatusCode::OK, StatusCode::CONFLICT].contains(s)),
        "{statuses:?}"
    );

    let pg = within(db.pool().get()).await.expect("connection");
    let row = within(pg.query_one(
        "select count(*), count(distinct id) from transactions where user_id = $1",
        &[&user],
    ))
    .await
    .expect("count");
    let (rows, distinct): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!((rows, distinct), (2001, 2001));

    let repository = TransactionRepository::new(db.pool().clone());
    let latest = within(repository.latest_entries(&[UserId(user)], 20))
        .await
        .expect("latest");
    let store = WindowStore::new(
        redis.pool().clone(),
        redis.keys().clone(),
        20,
        Duration::from_secs(60),
    );
    let window = within(store.read(UserId(user))).await.expect("window");
    assert_eq!(window, latest[&UserId(user)]);
    let ids: HashSet<_> = window.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 20);
}

#[tokio::test]
async fn viewers_of_one_user_on_two_processes_share_one_simulation() {
    let db = TestDatabase::create().await;
    let redis = TestRedis::create().await;
    let fast = [("APP_SIMULATOR__INTERVAL_MS", "500")];
    let a = ServerProcess::start_with(&db, &redis, &fast).await;
    let b = ServerProcess::start_with(&db, &redis, &fast).await;
    let user = uuid::Uuid::new_v4();
    let mut on_a = open(&format!("{}/sse/transactions/{user}", a.address), None).await;
    let mut on_b = open(&format!("{}/sse/transactions/{user}", b.address), None).await;
    let span = Duration::from_secs(5);
    let (seen_a, seen_b) = tokio::join!(on_a.collect_for(span), on_b.collect_for(span));
    let ids = |events: Vec<crate::sse_client::SseEvent>| -> Vec<String> {
        events
            .into_iter()
            .filter(|e| e.is_transaction())
            .map(|e| e.id.expect("an id"))
            .collect()
    };
    let (seen_a, seen_b) = (ids(seen_a), ids(seen_b));
    let pg = within(db.pool().get()).await.expect("connection");
    let stored: i64 = within(pg.query_one(
        "select count(*) from transactions where user_id = $1",
        &[&user],
    ))
    .await
    .expect("count")
    .get(0);
    // One simulation at one transaction per 500 ms: about 10 in 5 s, where
    // two simulations would make about 20.
    assert!((8..=12).contains(&stored), "{stored} stored");
    // Both viewers see every one of them, whichever process made it.
    for seen in [&seen_a, &seen_b] {
        assert!(
            seen.len() as i64 >= stored - 2,
            "{} of {stored} seen",
            seen.len()
        );
    }
    let shared: HashSet<&String> = seen_a.iter().collect();
    assert!(seen_b.iter().filter(|id| shared.contains(id)).count() >= seen_b.len() - 1);
}
