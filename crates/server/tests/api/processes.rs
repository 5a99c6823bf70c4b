//! Two real server processes (the `txwatch` binary) sharing one Postgres
//! database and one Redis key prefix, as behind a load balancer.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use txwatch_cache::testing::TestRedis;
use txwatch_cache::{EventId, EventLog, WindowStore};
use txwatch_domain::{Origin, UserId};
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
    let latest = within(repository.latest_entries(&[UserId(user)], 20, Origin::Real))
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
async fn each_process_drives_its_own_connections_feeds_and_a_feed_resumes_on_the_other() {
    let db = TestDatabase::create().await;
    let redis = TestRedis::create().await;
    let fast = [("APP_SIMULATOR__INTERVAL_MS", "200")];
    let a = ServerProcess::start_with(&db, &redis, &fast).await;
    let b = ServerProcess::start_with(&db, &redis, &fast).await;
    let user = uuid::Uuid::new_v4();
    let url = |process: &ServerProcess| format!("{}/sse/transactions/{user}", process.address);
    let mut on_a = open(&url(&a), None).await;
    let mut on_b = open(&url(&b), None).await;
    let span = Duration::from_secs(2);
    let (seen_a, seen_b) = tokio::join!(on_a.collect_for(span), on_b.collect_for(span));
    let transactions = |events: Vec<crate::sse_client::SseEvent>| -> Vec<(String, String)> {
        events
            .into_iter()
            .filter(|e| e.is_transaction())
            .map(|e| {
                let id = e.json()["id"].as_str().expect("an id").to_owned();
                (e.id.expect("an event id"), id)
            })
            .collect()
    };
    let (seen_a, seen_b) = (transactions(seen_a), transactions(seen_b));
    // Two connections, two feeds: neither sees the other's transactions.
    let ids_a: HashSet<&String> = seen_a.iter().map(|(_, id)| id).collect();
    assert!(
        seen_a.len() >= 5 && seen_b.len() >= 5,
        "{} and {}",
        seen_a.len(),
        seen_b.len()
    );
    assert!(seen_b.iter().all(|(_, id)| !ids_a.contains(id)));
    drop(on_b);

    // The client of a's feed stops reading, goes away, and reconnects to
    // b with the id of the last event it read.
    let (last_event_id, _) = seen_a.last().cloned().expect("an event");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    drop(on_a);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let feed_of = |event_id: &str| event_id.split_once('.').map(|(_, feed)| feed.to_owned());
    let old_feed = feed_of(&last_event_id).expect("a feed id in the event id");
    // What a's feed published after that event, from the event log itself.
    let after: EventId = last_event_id
        .split_once('.')
        .map(|(at, _)| at)
        .expect("an event id")
        .parse()
        .expect("a position");
    let log = EventLog::new(redis.pool().clone(), redis.keys(), 10_000, 8);
    let shard = log.shard_of(UserId(user));
    let published: Vec<String> = within(log.read_after(shard, after, 10_000, None))
        .await
        .expect("the event log")
        .into_iter()
        .filter(|event| event.feed.map(|feed| feed.to_string()) == Some(old_feed.clone()))
        .map(|event| {
            serde_json::from_slice::<Value>(&event.data).expect("JSON")["id"]
                .as_str()
                .expect("an id")
                .to_owned()
        })
        .collect();
    assert!(published.len() >= 3, "{} published unread", published.len());

    let mut resumed = open(&url(&b), Some(&last_event_id)).await;
    let events = transactions(resumed.collect_for(Duration::from_millis(1000)).await);
    let replayed: Vec<String> = events
        .iter()
        .filter(|(event_id, _)| feed_of(event_id).as_deref() == Some(old_feed.as_str()))
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(
        replayed, published,
        "a's feed after {last_event_id}, once, in order"
    );
    // Then the resumed connection goes on with a feed of its own.
    assert!(
        events.len() > replayed.len(),
        "no new feed after the replay"
    );
}
