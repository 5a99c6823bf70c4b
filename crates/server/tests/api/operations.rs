//! Operations: readiness, metrics, request ids, limits and cross-origin rules.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use txwatch_storage::testing::TestDatabase;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app, spawn_app_on, spawn_app_with, within};
use crate::outage::OwnRedis;
use crate::proxy::CuttableProxy;
use crate::sse_client::open;

/// Polls `check` every 100 ms until it holds; fails the test after 30 s.
async fn eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    within(async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

/// The value of the sample `line_start` (a metric name with its labels) in
/// a Prometheus text exposition.
fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(line_start))
        .and_then(|rest| rest.trim().parse().ok())
}

async fn metrics(app: &TestApp) -> String {
    let (status, headers, text) = app.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{headers:?}"
    );
    text
}

#[tokio::test]
async fn ready_answers_200_when_postgres_and_redis_answer() {
    let app = spawn_app_with(|s| s.http.cursor_secret = "a-secret-of-our-own".into()).await;
    let reply = app.get("/ready").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({"ready": true, "postgres": "ok", "redis": "ok", "warnings": [], "replicas": []})
    );
}

#[tokio::test]
async fn a_server_started_without_its_services_serves_what_it_can_and_picks_them_up() {
    // Postgres behind a proxy that refuses connections, on a database not
    // migrated yet; Redis on a port where nothing listens yet.
    let db = TestDatabase::create_unmigrated().await;
    let proxy = CuttableProxy::start("127.0.0.1:5432".into()).await;
    proxy.cut();
    let mut redis = OwnRedis::reserve();
    let proxy_port = proxy.port();
    let redis_url = redis.url();
    let app = spawn_app_on(db, |settings| {
        settings.database.url = settings
            .database
            .url
            .replace(":5432/", &format!(":{proxy_port}/"));
        settings.database.connect_timeout_ms = 300;
        settings.database.acquire_timeout_ms = 300;
        settings.redis.url = redis_url;
        settings.redis.connect_timeout_ms = 300;
    })
    .await;

    assert_eq!(app.health().await.status, StatusCode::OK);
    assert!(
        metrics(&app)
            .await
            .contains("txwatch_transactions_scored_total 0")
    );
    let ready = app.get("/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["error"], "not_ready");
    assert_eq!(ready.body["ready"], false);
    let message = ready.body["message"].as_str().expect("a message");
    assert!(
        message.contains("postgres") && message.contains("redis"),
        "{message}"
    );
    let users = app.users().await;
    assert_eq!(users.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(users.body["error"], "service_unavailable");

    // Postgres comes back: the server migrates it by itself; Redis is still
    // missing, and readiness says just that.
    proxy.restore();
    eventually(|| async { app.users().await.status == StatusCode::OK }).await;
    let ready = app.get("/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["postgres"], "ok");
    assert_ne!(ready.body["redis"], "ok");

    redis.start_again().await;
    eventually(|| async { app.get("/ready").await.status == StatusCode::OK }).await;
    let user = Uuid::new_v4();
    let posted = app
        .post(
            "/transactions",
            &json!({"user_id": user, "amount": "12.50"}),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.body);
    assert_eq!(app.users().await.body["users"], json!([user]));
    redis.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_what_the_pipeline_did() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    for amount in ["10", "11", "12", "10", "11", "12", "10", "11", "12", "10"] {
        let reply = app
            .post("/transactions", &json!({"user_id": user, "amount": amount}))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    // Far above 5 x the mean of ten amounts around 11: flagged.
    let spike = app
        .post("/transactions", &json!({"user_id": user, "amount": "900"}))
        .await;
    assert_eq!(spike.body["meta_data"]["is_anomaly"], true);
    app.users().await;
    app.get(&format!("/users/{user}")).await;
    let mut stream = open(&format!("{}/sse/transactions", app.address), None).await;
    stream.next(Duration::from_secs(5)).await.expect("greeting");

    let text = metrics(&app).await;
    let expect = |line: &str, want: f64| {
        assert_eq!(sample(&text, line), Some(want), "`{line}` in:\n{text}");
    };
    expect(
        r#"txwatch_http_requests_total{method="POST",route="/transactions",status="201"}"#,
        11.0,
    );
    expect(
        r#"txwatch_http_requests_total{method="GET",route="/users",status="200"}"#,
        1.0,
    );
    expect(
        r#"txwatch_http_requests_total{method="GET",route="unmatched",status="404"}"#,
        1.0,
    );
    expect(
        r#"txwatch_http_request_duration_seconds_count{method="POST",route="/transactions",status="201"}"#,
        11.0,
    );
    expect("txwatch_transactions_scored_total", 11.0);
    expect("txwatch_anomalies_flagged_total", 1.0);
    expect(r#"txwatch_sse_connections{stream="all"}"#, 1.0);
    for stage in ["window", "score", "store", "publish"] {
        let count = sample(
            &text,
            &format!(r#"txwatch_pipeline_stage_duration_seconds_count{{stage="{stage}"}}"#),
        );
        assert!(count.is_some_and(|n| n >= 1.0), "stage {stage}: {count:?}");
    }
    expect("txwatch_events_published_total", 11.0);
    for pool in ["postgres", "redis"] {
        let max = sample(
            &text,
            &format!(r#"txwatch_pool_max_connections{{pool="{pool}"}}"#),
        );
        assert!(max.is_some_and(|n| n >= 1.0), "{pool}: {max:?}");
        assert!(text.contains(&format!(
            r#"txwatch_pool_connections{{pool="{pool}",state="in_use"}}"#
        )));
    }

    // A closed stream is no longer counted once the server notices, which
    // it does by itself (see `closed_streams_give_back_their_places...`).
    drop(stream);
    eventually(|| async {
        app.post("/transactions", &json!({"user_id": user, "amount": "10"}))
            .await;
        sample(
            &metrics(&app).await,
            r#"txwatch_sse_connections{stream="all"}"#,
        ) == Some(0.0)
    })
    .await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_usable_incoming_one_is_kept() {
    let app = spawn_app().await;
    let send = |id: Option<&'static str>, path: &'static str| {
        let mut request = app.client.get(format!("{}{path}", app.address));
        if let Some(id) = id {
            request = request.header("X-Request-Id", id);
        }
        async move {
            let response = within(request.send()).await.expect("sent");
            response
                .headers()
                .get("x-request-id")
                .map(|v| v.to_str().expect("ascii").to_owned())
        }
    };
    let fresh = send(None, "/health").await.expect("an id");
    assert!(Uuid::parse_str(&fresh).is_ok(), "{fresh}");
    let other = send(None, "/health").await.expect("an id");
    assert_ne!(fresh, other);
    assert_eq!(
        send(Some("trace-abc-123"), "/users").await.as_deref(),
        Some("trace-abc-123")
    );
    // Errors carry it too; an unusable one is replaced.
    assert_eq!(
        send(Some("from-the-edge"), "/nowhere").await.as_deref(),
        Some("from-the-edge")
    );
    let replaced = send(Some("has spaces in it"), "/health")
        .await
        .expect("an id");
    assert!(Uuid::parse_str(&replaced).is_ok(), "{replaced}");
}

#[tokio::test]
async fn a_wrong_method_gets_405_with_allow_and_head_is_served_for_reads() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        (Method::DELETE, "/users", "GET, HEAD"),
        (Method::PUT, "/transactions", "GET, HEAD, POST"),
        (Method::GET, "/transactions/batch", "POST"),
        (Method::POST, "/sse/transactions", "GET"),
    ] {
        let response = within(
            app.client
                .request(method.clone(), format!("{}{path}", app.address))
                .send(),
        )
        .await
        .expect("sent");
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        let body: serde_json::Value = within(response.json()).await.expect("json");
        assert_eq!(body["error"], "method_not_allowed");
    }
    for path in ["/health", "/ready", "/users", "/metrics"] {
        let response = within(app.client.head(format!("{}{path}", app.address)).send())
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::OK, "HEAD {path}");
        assert!(within(response.bytes()).await.expect("body").is_empty());
    }
}

#[tokio::test]
async fn a_write_from_another_sites_page_is_refused_and_stores_nothing() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    let body = json!({"user_id": user, "amount": "5.00"});
    let refused = app
        .post_with("/transactions", &body, |r| {
            r.header("Origin", "https://evil.example")
        })
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.body["error"], "origin_not_allowed");
    let batch = app
        .post_with("/transactions/batch", &json!([body]), |r| {
            r.header("Origin", "https://evil.example")
        })
        .await;
    assert_eq!(batch.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count_of(&user.to_string()).await, 0);

    // A browser asking first is not approved either.
    let preflight = within(
        app.client
            .request(Method::OPTIONS, format!("{}/transactions", app.address))
            .header("Origin", "https://evil.example")
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .send(),
    )
    .await
    .expect("sent");
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    // The server's own pages (the dashboard) and clients without an
    // `Origin` may write.
    let own = app.address.clone();
    let same_origin = app
        .post_with("/transactions", &body, |r| r.header("Origin", own))
        .await;
    assert_eq!(same_origin.status, StatusCode::CREATED);
    let no_origin = app
        .post("/transactions", &json!({"user_id": user, "amount": "6.00"}))
        .await;
    assert_eq!(no_origin.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_configured_write_origin_may_post_from_the_browser() {
    let app = spawn_app_with(|settings| {
        settings.http.cors_write_origins = vec!["https://ops.example".into()];
    })
    .await;
    let preflight = within(
        app.client
            .request(Method::OPTIONS, format!("{}/transactions", app.address))
            .header("Origin", "https://ops.example")
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .send(),
    )
    .await
    .expect("sent");
    assert_eq!(preflight.status(), StatusCode::OK);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://ops.example"
    );
    let posted = app
        .post_with(
            "/transactions",
            &json!({"user_id": Uuid::new_v4(), "amount": "7.00"}),
            |r| r.header("Origin", "https://ops.example"),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED);
}

#[tokio::test]
async fn streams_past_the_configured_maximum_get_503_and_a_closed_one_frees_its_place() {
    let app = spawn_app_with(|settings| settings.http.max_streams = 2).await;
    let url = format!("{}/sse/transactions", app.address);
    let first = open(&url, None).await;
    let _second = open(&format!("{url}/{}", Uuid::new_v4()), None).await;
    assert_eq!(first.status, StatusCode::OK);
    let third = within(app.client.get(&url).send()).await.expect("sent");
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(third.headers().contains_key("retry-after"));
    let body: serde_json::Value = within(third.json()).await.expect("json");
    assert_eq!(body["error"], "too_many_streams");
    assert!(
        sample(
            &metrics(&app).await,
            "txwatch_sse_connections_rejected_total"
        ) == Some(1.0)
    );

    drop(first);
    eventually(|| async {
        let reopened = open(&url, None).await;
        reopened.status == StatusCode::OK
    })
    .await;
}

#[tokio::test]
async fn a_request_past_the_time_limit_gets_503_and_an_ingest_request_answers_first_with_its_ids() {
    let app = spawn_app_with(|settings| settings.http.request_timeout_ms = 600).await;
    let user = Uuid::new_v4();
    let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let items: Vec<_> = ids
        .iter()
        .map(|id| json!({"id": id, "user_id": user, "amount": "3.00"}))
        .collect();

    // Hold the table so reads and the batch's id lookup wait past the limit.
    let mut locker = within(app.db.pool().get()).await.expect("connection");
    let lock = within(locker.transaction()).await.expect("begin");
    within(lock.batch_execute("lock table transactions in access exclusive mode"))
        .await
        .expect("table locked");
    let history = app.transactions(&[("user_id", &user.to_string())]).await;
    assert_eq!(history.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(history.body["error"], "timeout");
    // The batch's own deadline comes before the request's limit, so the
    // answer can say what it knows: withdrawn before storing began, with
    // every item's id.
    let slow = app
        .post("/transactions/batch", &json!({"transactions": items}))
        .await;
    assert_eq!(
        slow.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        slow.body
    );
    assert_eq!(slow.body["error"], "service_unavailable", "{}", slow.body);
    let named: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    assert_eq!(slow.body["ids"], json!(named), "{}", slow.body);
    within(lock.rollback()).await.expect("table unlocked");

    // Nothing of it was stored, and posting it again stores it once.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.count_of(&user.to_string()).await, 0);
    let again = app
        .post("/transactions/batch", &json!({"transactions": items}))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["created"], 5, "{}", again.body);
    let metrics = metrics(&app).await;
    assert_eq!(
        sample(
            &metrics,
            r#"txwatch_http_requests_total{method="POST",route="/transactions/batch",status="503"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn each_request_is_logged_once_with_its_id_and_no_secret_or_body() {
    let db = TestDatabase::create().await;
    let redis = txwatch_cache::testing::TestRedis::create().await;
    let secret = "s3cret-key-for-the-log-test";
    let server = crate::server_process::ServerProcess::start_with(
        &db,
        &redis,
        &[("APP_HTTP__API_KEY", secret)],
    )
    .await;
    let response = within(
        reqwest::Client::new()
            .post(format!("{}/transactions", server.address))
            .header("X-API-Key", secret)
            .json(&json!({"user_id": Uuid::new_v4(), "amount": "4242.42"}))
            .send(),
    )
    .await
    .expect("sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();

    let mut lines = Vec::new();
    eventually(|| {
        lines = server
            .log()
            .into_iter()
            .filter(|entry| {
                entry["message"] == "request" && entry["span"]["request_id"] == request_id.as_str()
            })
            .collect();
        let found = !lines.is_empty();
        async move { found }
    })
    .await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["method"], "POST");
    assert_eq!(line["route"], "/transactions");
    assert_eq!(line["status"], 201);
    assert!(line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    let everything = serde_json::to_string(&server.log()).expect("log as text");
    assert!(!everything.contains(secret), "the API key was logged");
    assert!(!everything.contains("4242.42"), "the body was logged");
}

#[tokio::test]
async fn ready_warns_while_the_cursor_secret_is_the_built_in_one() {
    let app = spawn_app().await;
    let reply = app.get("/ready").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["ready"], true);
    let warnings = reply.body["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w["code"] == "default_cursor_secret" && w["message"].is_string()),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn the_server_warns_at_start_up_while_the_cursor_secret_is_the_built_in_one() {
    let db = TestDatabase::create().await;
    let redis = txwatch_cache::testing::TestRedis::create().await;
    let warned = |server: &crate::server_process::ServerProcess| {
        server.log().iter().any(|entry| {
            entry["level"] == "WARN"
                && entry["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("cursor secret"))
        })
    };
    let default = crate::server_process::ServerProcess::start(&db, &redis).await;
    assert!(warned(&default), "{:?}", default.log());
    let own = crate::server_process::ServerProcess::start_with(
        &db,
        &redis,
        &[("APP_HTTP__CURSOR_SECRET", "a-secret-of-our-own")],
    )
    .await;
    assert!(!warned(&own), "{:?}", own.log());
}

#[tokio::test]
async fn readiness_says_what_is_down_in_plain_words() {
    let app = spawn_app_with(|settings| {
        settings.redis.url = "redis://127.0.0.1:1".into();
        settings.redis.connect_timeout_ms = 200;
    })
    .await;
    let reply = app.get("/ready").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body["postgres"], "ok");
    assert_eq!(reply.body["redis"], "unreachable", "{}", reply.body);
    let text = reply.body.to_string().to_lowercase();
    for raw in ["os error", "refused", "127.0.0.1"] {
        assert!(!text.contains(raw), "{raw} in {text}");
    }
}

/// A stream opened over a plain socket, as a client that reads everything
/// and then closes cleanly (FIN, not a reset): the close the server used to
/// notice only at its next keep-alive comment. `None` when the server
/// refused the stream.
async fn open_raw_stream(address: &str, path: &str) -> Option<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = address.trim_start_matches("http://");
    let mut socket = within(tokio::net::TcpStream::connect(host))
        .await
        .expect("connected");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n");
    within(socket.write_all(request.as_bytes()))
        .await
        .expect("request written");
    let mut answer = Vec::new();
    within(async {
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&answer);
            if text.starts_with("HTTP/1.1 503") && text.contains("too_many_streams") {
                return;
            }
            // Up to the end of the chunk, so nothing is left unread: closing
            // a socket with unread data sends a reset, which the server
            // always noticed.
            if text.contains(": connected\n\n\r\n") {
                return;
            }
            let read = socket.read(&mut chunk).await.expect("readable");
            assert!(read > 0, "closed early: {text}");
            answer.extend_from_slice(&chunk[..read]);
        }
    })
    .await;
    String::from_utf8_lossy(&answer)
        .starts_with("HTTP/1.1 200")
        .then_some(socket)
}

#[tokio::test]
async fn closed_streams_give_back_their_places_within_seconds() {
    const MAX: usize = 6;
    let app = spawn_app_with(|settings| settings.http.max_streams = MAX).await;
    // Streams that carry nothing while the test runs, so no write of the
    // server's finds the clients gone: only noticing the close itself can.
    let paths: Vec<String> = (0..MAX)
        .map(|i| match i % 2 {
            0 => "/sse/transactions?anomalies_only=true".to_owned(),
            _ => format!("/sse/transactions?user_id={}", Uuid::new_v4()),
        })
        .collect();
    let mut streams = Vec::new();
    for path in &paths {
        streams.push(
            open_raw_stream(&app.address, path)
                .await
                .expect("a free place"),
        );
    }
    assert!(open_raw_stream(&app.address, &paths[0]).await.is_none());

    // The clients go away cleanly, having read everything; the server must
    // notice by itself, long before its next keep-alive comment (15 s).
    drop(streams);
    let closed_at = std::time::Instant::now();
    let mut reopened = Vec::new();
    let refilled = tokio::time::timeout(Duration::from_secs(3), async {
        while reopened.len() < MAX {
            match open_raw_stream(&app.address, &paths[reopened.len()]).await {
                Some(stream) => reopened.push(stream),
                None => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await;
    assert!(
        refilled.is_ok(),
        "only {} of {MAX} places were free again {:?} after the clients left",
        reopened.len(),
        closed_at.elapsed()
    );
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, r#"txwatch_sse_connections{stream="all"}"#),
        Some(MAX as f64),
        "{text}"
    );
}

#[tokio::test]
async fn a_refused_preflight_answers_in_the_json_error_shape() {
    let app = spawn_app().await;
    let preflight = within(
        app.client
            .request(Method::OPTIONS, format!("{}/transactions", app.address))
            .header("Origin", "https://evil.example")
            .header("Access-Control-Request-Method", "POST")
            .send(),
    )
    .await
    .expect("sent");
    assert_eq!(preflight.status(), StatusCode::FORBIDDEN);
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(preflight.headers()["content-type"], "application/json");
    let body: serde_json::Value = within(preflight.json()).await.expect("json");
    assert_eq!(body["error"], "origin_not_allowed", "{body}");
}
