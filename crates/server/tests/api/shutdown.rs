//! Stopping a real server process with SIGTERM while clients post and watch.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use txwatch_cache::testing::TestRedis;
use txwatch_domain::UserId;
use txwatch_storage::testing::TestDatabase;
use uuid::Uuid;

use crate::helpers::within;
use crate::server_process::ServerProcess;
use crate::sse_client::open;

/// Posters that keep sending single transactions until the server stops
/// answering; what it acknowledged (201) is recorded.
struct Posters {
    acknowledged: Arc<Mutex<Vec<Uuid>>>,
    other: Arc<Mutex<Vec<StatusCode>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Posters {
    fn start(address: &str, user: Uuid, count: usize) -> Posters {
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let other = Arc::new(Mutex::new(Vec::new()));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("client");
        let tasks = (0..count)
            .map(|_| {
                let (client, acknowledged, other) =
                    (client.clone(), acknowledged.clone(), other.clone());
                let url = format!("{address}/transactions");
                tokio::spawn(async move {
                    loop {
                        let id = Uuid::now_v7();
                        let body = json!({"id": id, "user_id": user, "amount": "25.00"});
                        match client.post(&url).json(&body).send().await {
                            Ok(response) if response.status() == StatusCode::CREATED => {
                                acknowledged.lock().expect("ids").push(id);
                            }
                            Ok(response) => other.lock().expect("statuses").push(response.status()),
                            // Refused or reset: the server is gone.
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        Posters {
            acknowledged,
            other,
            tasks,
        }
    }

    fn acknowledged(&self) -> usize {
        self.acknowledged.lock().expect("ids").len()
    }
}

#[tokio::test]
async fn sigterm_ends_streams_cleanly_and_loses_no_acknowledged_transaction() {
    let db = TestDatabase::create().await;
    let redis = TestRedis::create().await;
    let mut server =
        ServerProcess::start_with(&db, &redis, &[("APP_SERVER__SHUTDOWN_TIMEOUT_SECS", "5")]).await;
    let user = Uuid::new_v4();
    let mut stream = open(
        &format!("{}/sse/transactions?user_id={user}", server.address),
        None,
    )
    .await;
    stream
        .next(Duration::from_secs(5))
        .await
        .expect("the greeting comment");

    let posters = Posters::start(&server.address, user, 16);
    within(async {
        while posters.acknowledged() < 300 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // A batch in flight when the signal comes: it waits on a lock this test
    // holds on the table until after the signal, so only a graceful stop
    // lets it finish.
    let mut locker = within(db.pool().get()).await.expect("connection");
    let lock = within(locker.transaction()).await.expect("begin");
    within(lock.batch_execute("lock table transactions in access exclusive mode"))
        .await
        .expect("table locked");
    let batch_ids: Vec<Uuid> = (0..200).map(|_| Uuid::now_v7()).collect();
    let batch = {
        let url = format!("{}/transactions/batch", server.address);
        let items: Vec<_> = batch_ids
            .iter()
            .map(|id| json!({"id": id, "user_id": user, "amount": "30.00"}))
            .collect();
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(url)
                .json(&json!({"transactions": items}))
                .timeout(Duration::from_secs(20))
                .send()
                .await
                .expect("the batch is answered, not cut off");
            let status = response.status();
            let body: serde_json::Value = response.json().await.expect("batch JSON");
            (status, body)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate().await;

    // The stream says why it ends, then ends (rather than hanging until the
    // grace period runs out).
    let goodbye = stream
        .next_where(|event| event.event.as_deref() == Some("error"))
        .await;
    assert_eq!(goodbye.json()["error"], "shutting_down");
    let started = tokio::time::Instant::now();
    let after = stream.next(Duration::from_secs(4)).await;
    assert!(
        after.is_none() && started.elapsed() < Duration::from_secs(3),
        "the stream should end right after saying goodbye, got {after:?}"
    );

    // Streams are gone while requests are still in flight; let them finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    within(lock.rollback()).await.expect("table unlocked");
    let (batch_status, batch_body) = within(batch).await.expect("batch task");
    assert_eq!(batch_status, StatusCode::OK, "{batch_body}");
    assert_eq!(batch_body["created"], 200, "{batch_body}");

    let status = server.exit_within(Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status:?}");
    for task in posters.tasks {
        within(task).await.expect("poster");
    }
    let mut acknowledged: Vec<Uuid> = posters.acknowledged.lock().expect("ids").clone();
    acknowledged.extend(&batch_ids);
    let refused = posters.other.lock().expect("statuses").clone();
    assert!(
        refused
            .iter()
            .all(|status| *status == StatusCode::SERVICE_UNAVAILABLE),
        "only 503s may refuse a post while stopping: {refused:?}"
    );

    // Every acknowledged transaction is stored...
    let pg = within(db.pool().get()).await.expect("connection");
    let stored: HashSet<Uuid> =
        within(pg.query("select id from transactions where user_id = $1", &[&user]))
            .await
            .expect("ids")
            .iter()
            .map(|row| row.get(0))
            .collect();
    let lost: Vec<&Uuid> = acknowledged
        .iter()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    assert!(acknowledged.len() >= 300);

    // ...and every stored one was published before the process exited.
    let mut published: HashSet<Uuid> = HashSet::new();
    for event in crate::helpers::every_event(&redis, 8).await {
        assert_eq!(event.user_id, UserId(user));
        let body: serde_json::Value = serde_json::from_slice(&event.data).expect("event JSON");
        published.insert(body["id"].as_str().expect("id").parse().expect("uuid"));
    }
    assert_eq!(published, stored, "stored and published differ");

    let messages: Vec<String> = server
        .log()
        .iter()
        .filter_map(|entry| entry["message"].as_str().map(str::to_owned))
        .collect();
    for expected in ["shutting down", "stopped"] {
        assert!(
            messages.iter().any(|m| m == expected),
            "no `{expected}` in the log: {messages:?}"
        );
    }
}
