//! The ingest routes' own deadline (`http.ingest_timeout_ms`): past it
//! they answer at once, naming the ids posted, and say truthfully whether
//! the transactions will never be stored (withdrawn before storing began)
//! or may be (storing had begun). A table lock stands in for a database
//! that does not answer.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Reply, TestApp, spawn_app_with, within};

/// The ingest deadline in these tests.
const DEADLINE: Duration = Duration::from_millis(1000);
/// What an answer may take beyond its deadline on a loaded machine.
const MARGIN: Duration = Duration::from_millis(1500);

/// An app whose ingest requests answer within [`DEADLINE`], with one
/// ingest worker, so that a second single post waits in the queue while
/// the first is being stored.
async fn app_with_one_worker() -> TestApp {
    spawn_app_with(|settings| {
        settings.server.ingest_workers = 1;
        settings.http.ingest_timeout_ms = DEADLINE.as_millis() as u64;
        settings.http.request_timeout_ms = 5_000;
    })
    .await
}

/// Waits until `n` statements of the app wait for a lock.
async fn waiting_for_the_lock(app: &TestApp, n: i64) {
    let client = within(app.db.pool().get()).await.expect("connection");
    within(async {
        loop {
            let waiting: i64 = client
                .query_one(
                    "select count(*) from pg_stat_activity \
                     where datname = current_database() and wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .expect("activity")
                .get(0);
            if waiting >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// How many of `ids` are stored.
async fn stored(app: &TestApp, ids: &[Uuid]) -> i64 {
    let client = within(app.db.pool().get()).await.expect("connection");
    within(client.query_one(
        "select count(*) from transactions where id = any($1)",
        &[&ids],
    ))
    .await
    .expect("count")
    .get(0)
}

/// Posts `body` to `path`, returning the answer and how long it took.
async fn timed_post(app: &TestApp, path: &str, body: Value) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = app.post(path, &body).await;
    (reply, started.elapsed())
}

fn id_in(reply: &Reply, field: &str) -> Uuid {
    reply.body[field]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no `{field}` in {}", reply.body))
}

#[tokio::test]
async fn a_single_post_still_queued_at_its_deadline_is_withdrawn_and_one_being_stored_is_unknown() {
    let app = app_with_one_worker().await;
    let user = Uuid::new_v4();
    let release = app.db.lock_table("exclusive").await;

    // The worker takes the first and waits on the table; the second waits
    // for the worker.
    let first = {
        let (address, client) = (app.address.clone(), app.client.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let response = client
                .post(format!("{address}/transactions"))
                .json(&json!({"user_id": user, "amount": "10"}))
                .send()
                .await
                .expect("answered");
            let status = response.status();
            let body: Value = response.json().await.expect("JSON");
            (status, body, started.elapsed())
        })
    };
    waiting_for_the_lock(&app, 1).await;
    let queued = Uuid::now_v7();
    let (second, took) = timed_post(
        &app,
        "/transactions",
        json!({"id": queued, "user_id": user, "amount": "20"}),
    )
    .await;
    assert_eq!(
        second.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        second.body
    );
    assert_eq!(
        second.body["error"], "service_unavailable",
        "{}",
        second.body
    );
    assert_eq!(id_in(&second, "id"), queued);
    let message = second.body["message"].as_str().expect("a message");
    assert!(message.contains("nothing is stored"), "{message}");
    assert!(took < DEADLINE + MARGIN, "answered after {took:?}");

    let (status, body, took) = within(first).await.expect("the first post");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "outcome_unknown", "{body}");
    assert!(took < DEADLINE + MARGIN, "answered after {took:?}");
    let taken: Uuid = body["id"]
        .as_str()
        .expect("its id")
        .parse()
        .expect("a uuid");
    let message = body["message"].as_str().expect("a message");
    assert!(message.contains("same ids"), "{message}");

    // Once the table is free the first is stored (the unknown was honest),
    // once; the withdrawn one never is, though the worker has moved on.
    drop(release);
    within(async {
        while stored(&app, &[taken]).await == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let after = app
        .post("/transactions", &json!({"user_id": user, "amount": "30"}))
        .await;
    assert_eq!(after.status, StatusCode::CREATED, "{}", after.body);
    assert_eq!(
        after.body["meta_data"]["window_len"], 1,
        "only the first is in the window"
    );
    assert_eq!(stored(&app, &[taken]).await, 1);
    assert_eq!(stored(&app, &[queued]).await, 0);
    assert_eq!(app.count_of(&user.to_string()).await, 2);
}

#[tokio::test]
async fn a_batch_past_its_deadline_says_nothing_is_stored_before_storing_and_unknown_after() {
    let app = app_with_one_worker().await;
    let user = Uuid::new_v4();
    let given = Uuid::now_v7();
    let batch = json!({"transactions": [
        {"id": given, "user_id": user, "amount": "1"},
        {"user_id": user, "amount": "not money"},
        {"user_id": user, "amount": "2"},
    ]});
    let ids = |reply: &Reply| -> Vec<Option<Uuid>> {
        reply.body["ids"]
            .as_array()
            .unwrap_or_else(|| panic!("no ids in {}", reply.body))
            .iter()
            .map(|id| id.as_str().map(|id| id.parse().expect("a uuid")))
            .collect()
    };

    // Even reads wait: the client id's lookup holds the batch before it
    // could store anything.
    let release = app.db.lock_table("access exclusive").await;
    let (early, took) = timed_post(&app, "/transactions/batch", batch.clone()).await;
    assert_eq!(
        early.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        early.body
    );
    assert_eq!(early.body["error"], "service_unavailable", "{}", early.body);
    assert!(took < DEADLINE + MARGIN, "answered after {took:?}");
    let early_ids = ids(&early);
    assert_eq!(early_ids.len(), 3);
    assert_eq!(early_ids[0], Some(given));
    assert_eq!(early_ids[1], None, "the invalid item has no id");
    drop(release);
    // The withdrawn batch goes on once the table is free, and stops short
    // of storing: nothing of it is stored, and no window keeps it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let generated = early_ids[2].expect("a generated id");
    assert_eq!(stored(&app, &[given, generated]).await, 0);
    let window = txwatch_cache::WindowStore::new(
        app.redis.pool().clone(),
        app.redis.keys().clone(),
        20,
        Duration::from_secs(60),
    );
    let kept = within(window.read(txwatch_domain::UserId(user)))
        .await
        .expect("window");
    assert!(kept.is_empty(), "{kept:?}");

    // Only writes wait: the batch is being stored when its deadline passes.
    let release = app.db.lock_table("exclusive").await;
    let (late, took) = timed_post(&app, "/transactions/batch", batch.clone()).await;
    assert_eq!(
        late.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        late.body
    );
    assert_eq!(late.body["error"], "outcome_unknown", "{}", late.body);
    assert!(took < DEADLINE + MARGIN, "answered after {took:?}");
    let late_ids = ids(&late);
    assert_eq!(late_ids[0], Some(given));
    let generated = late_ids[2].expect("a generated id");
    drop(release);
    // It was stored after all, once; posting the client's id again is safe.
    within(async {
        while stored(&app, &[given, generated]).await < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let again = app
        .post(
            "/transactions/batch",
            &json!([{"id": given, "user_id": user, "amount": "1"}]),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["existing"], 1, "{}", again.body);
    assert_eq!(app.count_of(&user.to_string()).await, 2);
}

#[tokio::test]
async fn a_slow_body_does_not_push_the_ingest_answer_past_the_request_time_limit() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The ingest deadline counts from when the body is in; the request's
    // time limit from when it arrived. A body that took its time must not
    // leave the generic `timeout` (which names no ids) to answer first.
    let limit = Duration::from_millis(3000);
    let app = spawn_app_with(|settings| {
        settings.http.request_timeout_ms = limit.as_millis() as u64;
        settings.http.ingest_timeout_ms = 2500;
        settings.http.body_timeout_ms = 2500;
    })
    .await;
    let release = app.db.lock_table("exclusive").await;
    let id = Uuid::now_v7();
    let body = json!({"id": id, "user_id": Uuid::new_v4(), "amount": "10"}).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    let host = app.address.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let mut socket = within(tokio::net::TcpStream::connect(&host))
        .await
        .expect("connected");
    let request = format!(
        "POST /transactions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{head}",
        body.len()
    );
    within(socket.write_all(request.as_bytes()))
        .await
        .expect("head sent");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    within(socket.write_all(tail.as_bytes()))
        .await
        .expect("rest sent");
    let mut answer = Vec::new();
    within(async {
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("\"error\"") {
            let n = socket.read(&mut chunk).await.expect("readable");
            assert!(n > 0, "closed without an answer");
            answer.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    let took = started.elapsed();
    drop(release);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"outcome_unknown\""), "{answer}");
    assert!(answer.contains(&id.to_string()), "{answer}");
    assert!(took < limit, "answered after {took:?}");
}
