use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with, within};
use crate::proxy::CuttableProxy;
use crate::sse_client::open;

/// An app whose Postgres is reached through a proxy the test can cut, with
/// short timeouts so an outage shows at once; `adjust` changes the rest.
async fn app_behind_a_cuttable_database(
    adjust: impl FnOnce(&mut txwatch_server::Settings),
) -> (TestApp, CuttableProxy) {
    let proxy = CuttableProxy::start("127.0.0.1:5432".into()).await;
    let proxy_port = proxy.port();
    let app = spawn_app_with(|settings| {
        settings.database.url = settings
            .database
            .url
            .replace(":5432/", &format!(":{proxy_port}/"));
        settings.database.connect_timeout_ms = 500;
        settings.database.acquire_timeout_ms = 500;
        adjust(settings);
    })
    .await;
    (app, proxy)
}

#[tokio::test]
async fn an_unreachable_database_answers_503_and_the_server_recovers_by_itself() {
    let (app, proxy) = app_behind_a_cuttable_database(|_| {}).await;
    assert_eq!(app.users().await.status, StatusCode::OK);

    proxy.cut();
    let reply = app.users().await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        reply.body
    );
    assert_eq!(reply.body["error"], "service_unavailable");
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("database"))
    );
    let history = app
        .transactions(&[("user_id", &uuid::Uuid::new_v4().to_string())])
        .await;
    assert_eq!(history.status, StatusCode::SERVICE_UNAVAILABLE);
    // Liveness does not depend on the database.
    assert_eq!(app.health().await.status, StatusCode::OK);

    proxy.restore();
    let recovered = within(async {
        loop {
            if app.users().await.status == StatusCode::OK {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(recovered);
}

/// Ingest and live streams while Postgres is cut off: 503 and nothing
/// stored, `event: error` on the stream, and both carry on by themselves.
#[tokio::test]
async fn without_postgres_ingest_answers_503_streams_say_so_and_both_recover() {
    let (app, proxy) =
        app_behind_a_cuttable_database(|settings| settings.simulator.interval_ms = 300).await;
    let user = uuid::Uuid::new_v4().to_string();
    let mut stream = open(&format!("{}/sse/transactions/{user}", app.address), None).await;
    stream
        .next_transaction(Duration::from_secs(10))
        .await
        .expect("a simulated event while all is well");

    proxy.cut();
    let posted_user = uuid::Uuid::new_v4().to_string();
    let reply = app
        .post(
            "/transactions",
            &json!({"user_id": posted_user, "amount": "10"}),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["error"], "service_unavailable");
    let batch = app
        .post(
            "/transactions/batch",
            &json!({"transactions": [{"user_id": posted_user, "amount": "1"}]}),
        )
        .await;
    assert_eq!(batch.status, StatusCode::SERVICE_UNAVAILABLE);
    let error = stream
        .next_where(|event| event.event.as_deref() == Some("error"))
        .await;
    assert_eq!(
        error.json()["error"],
        "service_unavailable",
        "{}",
        error.data
    );

    proxy.restore();
    // The stream continues with new transactions, without a reconnect.
    let resumed = stream.next_where(|event| event.is_transaction()).await;
    assert_eq!(resumed.json()["user_id"], user.as_str());
    let reply = within(async {
        loop {
            let reply = app
                .post(
                    "/transactions",
                    &json!({"user_id": posted_user, "amount": "10"}),
                )
                .await;
            if reply.status != StatusCode::SERVICE_UNAVAILABLE {
                return reply;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    // Nothing of the refused posts was stored, and the window counts only
    // what was: the first stored transaction saw an empty history.
    assert_eq!(app.count_of(&posted_user).await, 1);
    assert_eq!(reply.body["meta_data"]["window_len"], 0);
}

/// A Redis of the test's own, restarted empty mid-stream.
#[tokio::test]
async fn a_restarted_empty_redis_costs_nothing_but_a_pause() {
    let mut redis = OwnRedis::start().await;
    let redis_url = redis.url();
    let app = spawn_app_with(|settings| {
        settings.redis.url = redis_url;
        settings.redis.connect_timeout_ms = 500;
    })
    .await;
    let user = uuid::Uuid::new_v4().to_string();
    let mut stream = open(
        &format!("{}/sse/transactions?user_id={user}", app.address),
        None,
    )
    .await;
    for i in 1..=20 {
        let reply = app
            .post(
                "/transactions",
                &json!({"user_id": user, "amount": format!("{}", i * 10)}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
        stream
            .next_transaction(Duration::from_secs(10))
            .await
            .expect("its event");
    }

    redis.stop().await;
    let reply = app
        .post("/transactions", &json!({"user_id": user, "amount": "5"}))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("redis"))
    );
    assert_eq!(app.count_of(&user).await, 20);
    let notice = stream
        .next_where(|event| event.event.as_deref() == Some("error"))
        .await;
    assert_eq!(notice.json()["error"], "service_unavailable");

    redis.start_again().await;
    let reply = within(async {
        loop {
            let reply = app
                .post("/transactions", &json!({"user_id": user, "amount": "1500"}))
                .await;
            if reply.status != StatusCode::SERVICE_UNAVAILABLE {
                return reply;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    // The window was rebuilt from Postgres: amounts 10..200, mean 105, so
    // the verdict is the one nothing lost would give.
    assert_eq!(reply.body["meta_data"]["window_len"], 20);
    assert_eq!(reply.body["meta_data"]["baseline"], 105.0);
    assert_eq!(reply.body["meta_data"]["is_anomaly"], true);
    // The same stream, never reconnected, carries on.
    let event = stream.next_where(|event| event.is_transaction()).await;
    assert_eq!(event.json(), reply.body);
}

/// A `redis-server` on a free port, without persistence, that a test can
/// stop and start again (empty).
pub(crate) struct OwnRedis {
    port: u16,
    child: Option<tokio::process::Child>,
}

impl OwnRedis {
    pub(crate) async fn start() -> OwnRedis {
        let mut redis = OwnRedis::reserve();
        redis.start_again().await;
        redis
    }

    /// A free port for a Redis that is not started yet.
    pub(crate) fn reserve() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        OwnRedis { port, child: None }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again, empty).
    pub(crate) async fn start_again(&mut self) {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (see README)");
        self.child = Some(child);
        within(async {
            while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    pub(crate) async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("redis stops");
        }
    }
}
