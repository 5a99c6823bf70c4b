//! The server with a read replica: a real primary and streaming standby
//! started by `scripts/pg-cluster.sh`. History and users reads go to the
//! standby while it is up, to the primary while it is stopped, with no
//! failed request, and back to the standby once it streams again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use txwatch_cache::testing::TestRedis;
use txwatch_server::{Application, Settings};
use txwatch_storage::testing::PgCluster;

use crate::helpers::within;

struct App {
    address: String,
    client: reqwest::Client,
}

impl App {
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = within(self.client.get(format!("{}{path}", self.address)).send())
            .await
            .expect("request sent");
        let status = response.status();
        let body = within(response.json::<Value>()).await.expect("a JSON body");
        (status, body)
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = within(
            self.client
                .post(format!("{}{path}", self.address))
                .json(body)
                .send(),
        )
        .await
        .expect("request sent");
        let status = response.status();
        let body = within(response.json::<Value>()).await.expect("a JSON body");
        (status, body)
    }

    /// `txwatch_db_reads_total` for `backend`.
    async fn reads(&self, backend: &str) -> u64 {
        let text = within(
            within(self.client.get(format!("{}/metrics", self.address)).send())
                .await
                .expect("metrics")
                .text(),
        )
        .await
        .expect("metrics text");
        let prefix = format!("txwatch_db_reads_total{{backend=\"{backend}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0, |n| n.trim().parse().expect("a count"))
    }

    /// The standby as `/ready` shows it; `/ready` must say ready.
    async fn standby(&self) -> Value {
        let (status, body) = self.get("/ready").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["replicas"][0].clone()
    }

    async fn until_standby(&self, state: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let standby = self.standby().await;
            if standby["state"] == state {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the standby never became {state}: {standby}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn reads_come_from_the_standby_while_it_is_up_and_from_the_primary_while_it_is_stopped_with_no_failed_request()
 {
    let cluster = PgCluster::start().await;
    cluster.create_database("txwatch").await;
    let redis = TestRedis::create().await;
    let mut settings = Settings::load_from(Default::default()).expect("default settings");
    settings.server.host = "127.0.0.1".into();
    settings.server.port = 0;
    settings.server.workers = 2;
    settings.database.url = cluster.primary_url("txwatch");
    settings.database.read_urls = vec![cluster.standby_url("txwatch")];
    settings.database.replica_check_interval_ms = 100;
    settings.database.replica_max_lag_ms = 1_000;
    settings.redis = redis.config().clone();
    let application = within(Application::build(settings))
        .await
        .expect("server starts");
    let app = Arc::new(App {
        address: format!("http://127.0.0.1:{}", application.port()),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
    });
    tokio::spawn(application.run_until_stopped());
    let standby = cluster
        .standby_url("txwatch")
        .trim_start_matches("postgres://postgres@")
        .to_owned();

    let users: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    for user in &users {
        let items: Vec<Value> = (0..30)
            .map(|i| json!({"user_id": user, "amount": format!("{}.50", 10 + i)}))
            .collect();
        let (status, body) = app
            .post("/transactions/batch", &json!({"transactions": items}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["created"], 30, "{body}");
    }
    let mut sorted = users.clone();
    sorted.sort();
    let expected_users = json!({ "users": sorted });

    app.until_standby("up").await;
    // Each user's history as the primary holds it, read once replicated.
    let mut expected = Vec::new();
    for user in &users {
        let path = format!("/transactions?user_id={user}&limit=1000");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = app.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if body["transactions"].as_array().map(Vec::len) == Some(30) {
                expected.push((path, body["transactions"].clone()));
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "not replicated");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // Up: the standby answers history and users reads, the primary none.
    let (on_standby, on_primary) = (app.reads(&standby).await, app.reads("primary").await);
    for (path, rows) in &expected {
        let (status, body) = app.get(path).await;
        assert_eq!((status, &body["transactions"]), (StatusCode::OK, rows));
    }
    assert_eq!(app.get("/users").await.1, expected_users);
    assert_eq!(app.reads(&standby).await, on_standby + 4);
    assert_eq!(app.reads("primary").await, on_primary);

    // A steady stream of reads while the standby stops and starts again.
    let running = Arc::new(AtomicBool::new(true));
    let stream = {
        let (app, running, expected, expected_users) = (
            app.clone(),
            running.clone(),
            expected.clone(),
            expected_users.clone(),
        );
        tokio::spawn(async move {
            let mut answered = 0_usize;
            let mut i = 0;
            while running.load(Ordering::SeqCst) {
                let (path, rows) = &expected[i % expected.len()];
                let (status, body) = app.get(path).await;
                assert_eq!(status, StatusCode::OK, "{path}: {body}");
                assert_eq!(&body["transactions"], rows, "{path}");
                let (status, body) = app.get("/users").await;
                assert_eq!(status, StatusCode::OK, "{body}");
                assert_eq!(body, expected_users);
                answered += 2;
                i += 1;
            }
            answered
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.stop_standby().await;
    let stopped = app.reads("primary").await;
    // Down: /ready still says ready (the primary is up) and shows it down;
    // the primary answers.
    app.until_standby("down").await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let answered_by_primary = app.reads("primary").await - stopped;
    assert!(
        answered_by_primary >= 10,
        "only {answered_by_primary} reads while the standby was down"
    );
    let standby_reads = app.reads(&standby).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.reads(&standby).await, standby_reads, "none to it");

    cluster.start_standby().await;
    app.until_standby("up").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.store(false, Ordering::SeqCst);
    let answered = within(stream)
        .await
        .expect("every read answered 200, right");
    assert!(answered >= 20, "{answered} reads in the stream");

    // Back: reads return to the standby.
    let (on_standby, on_primary) = (app.reads(&standby).await, app.reads("primary").await);
    for (path, rows) in &expected {
        let (status, body) = app.get(path).await;
        assert_eq!((status, &body["transactions"]), (StatusCode::OK, rows));
    }
    assert_eq!(app.reads(&standby).await, on_standby + 3);
    assert_eq!(app.reads("primary").await, on_primary);
    let standby_now = app.standby().await;
    assert_eq!(standby_now["state"], "up");
    assert!(standby_now["lag_ms"].as_u64().is_some(), "{standby_now}");
}
