//! `GET /openapi.json` and `/docs`: the document lists every route, and
//! every route's real answers match what it says about them.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::macros::datetime;
use txwatch_domain::{Score, UserId, Verdict};
use txwatch_storage::testing::transaction;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app, spawn_app_with, within};

/// Every route the server registers, as `(method, OpenAPI path)`.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/metrics"),
    ("get", "/"),
    ("get", "/assets/{file}"),
    ("get", "/users"),
    ("get", "/transactions"),
    ("post", "/transactions"),
    ("post", "/transactions/batch"),
    ("get", "/sse/transactions"),
    ("get", "/sse/transactions/{user_id}"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
    ("get", "/docs/"),
    ("get", "/docs/{file}"),
];

/// A raw answer: status, media type (without parameters) and body.
struct Answer {
    status: StatusCode,
    media_type: String,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = within(request.send()).await.expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let media_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    let media_type = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let body = within(response.bytes()).await.expect("body read").to_vec();
    Answer {
        status,
        media_type,
        headers,
        body,
    }
}

async fn fetch_document(app: &TestApp) -> Value {
    let answer = send(app.client.get(format!("{}/openapi.json", app.address))).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.media_type, "application/json");
    serde_json::from_slice(&answer.body).expect("the document is JSON")
}

/// Checks an answer against the document: its status is listed for the
/// operation, its media type is one the status lists, and a JSON body
/// validates against that schema, with `$ref`s resolved in the document.
struct Checker {
    doc: Value,
    checked: BTreeSet<(String, String, u16)>,
}

impl Checker {
    fn response(&self, method: &str, path: &str, status: StatusCode) -> &Value {
        let responses = &self.doc["paths"][path][method]["responses"];
        assert!(responses.is_object(), "{method} {path} is not documented");
        let code = status.as_str();
        let response = responses
            .get(code)
            .unwrap_or_else(|| panic!("{method} {path} does not document status {code}"));
        match response.get("$ref").and_then(Value::as_str) {
            Some(target) => self
                .doc
                .pointer(target.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("{target} does not resolve")),
            None => response,
        }
    }

    fn check(&mut self, method: &str, path: &str, answer: &Answer) {
        let body = String::from_utf8_lossy(&answer.body);
        let case = format!(
            "{method} {path} -> {}: {}",
            answer.status,
            body.chars().take(300).collect::<String>()
        );
        let response = self.response(method, path, answer.status);
        let content = &response["content"];
        if answer.body.is_empty() && content.is_null() {
            self.record(method, path, answer.status);
            return;
        }
        let media = content
            .get(&answer.media_type)
            .unwrap_or_else(|| panic!("{case}: media type {} not documented", answer.media_type));
        if answer.media_type == "application/json" {
            let body: Value = serde_json::from_slice(&answer.body).expect("a JSON body");
            let schema = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "components": self.doc["components"],
                "allOf": [media["schema"]],
            });
            let validator = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("{case}: the schema does not compile: {e}"));
            let errors: Vec<String> = validator
                .iter_errors(&body)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{case}: {errors:#?}");
        }
        self.record(method, path, answer.status);
    }

    fn record(&mut self, method: &str, path: &str, status: StatusCode) {
        self.checked
            .insert((method.to_owned(), path.to_owned(), status.as_u16()));
    }
}

#[tokio::test]
async fn the_document_lists_every_route_the_server_serves_and_no_other() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("a path item")
                .keys()
                .filter(|key| !matches!(key.as_str(), "parameters" | "summary" | "description"))
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, served);

    // Each documented path exists: another method answers 405, not 404,
    // and its `Allow` names the documented methods (and HEAD).
    for (_, path) in ROUTES {
        let concrete = path
            .replace("{user_id}", &Uuid::new_v4().to_string())
            .replace("{file}", "index.css");
        let answer = send(app.client.delete(format!("{}{concrete}", app.address))).await;
        assert_eq!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "DELETE {path}"
        );
        let allow: BTreeSet<String> = answer
            .headers
            .get("allow")
            .map(|v| v.to_str().expect("ascii"))
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_lowercase())
            .collect();
        let mut methods: BTreeSet<String> = documented
            .iter()
            .filter(|(_, p)| p == path)
            .map(|(m, _)| m.clone())
            .collect();
        // HEAD comes with GET (RFC 9110) on every route but the streams,
        // where it would only hold a connection open.
        if methods.contains("get") && !path.starts_with("/sse/") {
            methods.insert("head".to_owned());
        }
        assert_eq!(allow, methods, "Allow of {path}");
    }
}

#[tokio::test]
async fn every_route_answers_as_the_document_says() {
    let app = spawn_app().await;
    let mut checker = Checker {
        doc: fetch_document(&app).await,
        checked: BTreeSet::new(),
    };
    let url = |path: &str| format!("{}{path}", app.address);

    // Stored history: one row scored, one without enough history.
    let user = UserId(Uuid::new_v4());
    let mut scored = transaction(user, datetime!(2026-03-04 05:06:07.5 +05:30), "271.6");
    scored.verdict = Verdict::Scored(Score {
        is_anomaly: true,
        score: 0.8,
        window_len: 20,
        baseline: 10.0,
        threshold: 50.0,
    });
    let plain = transaction(user, datetime!(2026-03-05 0:00 UTC), "-5");
    app.store(&[scored, plain]).await;

    let answer = send(app.client.get(url("/health"))).await;
    checker.check("get", "/health", &answer);
    let answer = send(app.client.get(url("/ready"))).await;
    assert_eq!(answer.status, StatusCode::OK);
    checker.check("get", "/ready", &answer);
    let answer = send(app.client.get(url("/metrics"))).await;
    checker.check("get", "/metrics", &answer);
    let answer = send(app.client.get(url("/"))).await;
    checker.check("get", "/", &answer);
    for (file, status) in [
        ("dashboard.js", StatusCode::OK),
        ("dashboard.css", StatusCode::OK),
        ("nothing.js", StatusCode::NOT_FOUND),
    ] {
        let answer = send(app.client.get(url(&format!("/assets/{file}")))).await;
        assert_eq!(answer.status, status, "{file}");
        checker.check("get", "/assets/{file}", &answer);
    }
    let answer = send(app.client.get(url("/users"))).await;
    checker.check("get", "/users", &answer);

    let history = |query: String| app.client.get(url(&format!("/transactions?{query}")));
    let answer = send(history(format!(
        "user_id={user}&from_date=2026-01-01&limit=1"
    )))
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    checker.check("get", "/transactions", &answer);
    let page: Value = serde_json::from_slice(&answer.body).expect("JSON");
    let cursor = page["cursor"].as_str().expect("a cursor").to_owned();
    let answer = send(history(format!(
        "user_id={user}&from_date=2026-01-01&cursor={cursor}"
    )))
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    checker.check("get", "/transactions", &answer);
    for query in [
        String::new(),
        "user_id=nope".to_owned(),
        format!("user_id={user}&cursor=abc"),
        format!("user_id={user}&limit=1&limit=2"),
    ] {
        let answer = send(history(query)).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        checker.check("get", "/transactions", &answer);
    }

    // Ingest: created, existing, invalid, too large.
    let id = Uuid::new_v4();
    let new = json!({"id": id, "user_id": user, "amount": "12.34", "txn_date": "2026-03-06"});
    for (body, status) in [
        (new.clone(), StatusCode::CREATED),
        (new, StatusCode::OK),
        (json!({"user_id": user}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"user_id": user, "amount": 1, "colour": "red"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"user_id": user, "amount": "x".repeat(70_000)}),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let answer = send(app.client.post(url("/transactions")).json(&body)).await;
        assert_eq!(answer.status, status);
        checker.check("post", "/transactions", &answer);
    }
    let batch = json!({"transactions": [
        {"id": id, "user_id": user, "amount": "1"},
        {"user_id": user, "amount": 99.5},
        {"user_id": user, "amount": "-1"},
    ]});
    for (body, status) in [
        (batch, StatusCode::OK),
        (json!([{"user_id": user, "amount": "3"}]), StatusCode::OK),
        (json!({"items": []}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!(vec![json!({}); 1001]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let answer = send(app.client.post(url("/transactions/batch")).json(&body)).await;
        assert_eq!(answer.status, status);
        checker.check("post", "/transactions/batch", &answer);
    }
    for path in ["/transactions", "/transactions/batch"] {
        let answer = send(
            app.client
                .post(url(path))
                .header("Content-Encoding", "gzip")
                .json(&json!([])),
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        checker.check("post", path, &answer);
    }
    let huge = format!("[{}]", vec!["\"padding\""; 500_000].join(","));
    let answer = send(app.client.post(url("/transactions/batch")).body(huge)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    checker.check("post", "/transactions/batch", &answer);

    // Streams: the first bytes of a stream, and refusals.
    for (path, template) in [
        (
            format!("/sse/transactions/{user}"),
            "/sse/transactions/{user_id}",
        ),
        (
            format!("/sse/transactions?user_id={user}&anomalies_only=true"),
            "/sse/transactions",
        ),
    ] {
        let mut response = within(app.client.get(url(&path)).send())
            .await
            .expect("stream opened");
        let media_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().expect("ascii").to_owned())
            .unwrap_or_default();
        let mut opening = String::new();
        while !opening.contains(": connected") {
            let chunk = within(response.chunk())
                .await
                .expect("a chunk")
                .expect("not the end");
            opening.push_str(&String::from_utf8_lossy(&chunk));
        }
        checker.check(
            "get",
            template,
            &Answer {
                status: response.status(),
                media_type,
                headers: response.headers().clone(),
                body: Vec::new(),
            },
        );
    }
    for (path, template) in [
        (
            "/sse/transactions/nope".to_owned(),
            "/sse/transactions/{user_id}",
        ),
        (
            "/sse/transactions?anomalies_only=maybe".to_owned(),
            "/sse/transactions",
        ),
        (
            "/sse/transactions?colour=red".to_owned(),
            "/sse/transactions",
        ),
    ] {
        let answer = send(app.client.get(url(&path))).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        checker.check("get", template, &answer);
    }
    let answer = send(
        app.client
            .get(url("/sse/transactions"))
            .header("Last-Event-ID", "yesterday"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    checker.check("get", "/sse/transactions", &answer);

    // The documentation itself.
    let answer = send(app.client.get(url("/openapi.json"))).await;
    checker.check("get", "/openapi.json", &answer);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let answer = send(no_redirects.get(url("/docs"))).await;
    assert_eq!(answer.status, StatusCode::PERMANENT_REDIRECT);
    checker.check("get", "/docs", &answer);
    let answer = send(app.client.get(url("/docs/"))).await;
    assert_eq!(answer.status, StatusCode::OK);
    checker.check("get", "/docs/", &answer);
    for (file, status) in [
        ("swagger-ui.css", StatusCode::OK),
        ("swagger-ui-bundle.js", StatusCode::OK),
        ("swagger-initializer.js", StatusCode::OK),
        ("favicon-32x32.png", StatusCode::OK),
        ("swagger-ui.css.map", StatusCode::OK),
        ("oauth2-redirect.html", StatusCode::OK),
        ("nope.js", StatusCode::NOT_FOUND),
    ] {
        let answer = send(app.client.get(url(&format!("/docs/{file}")))).await;
        assert_eq!(answer.status, status, "{file}");
        checker.check("get", "/docs/{file}", &answer);
    }

    // Writes from another site's page; a full process; readiness without
    // Redis.
    for path in ["/transactions", "/transactions/batch"] {
        let answer = send(
            app.client
                .post(url(path))
                .header("Origin", "https://elsewhere.example")
                .json(&json!([])),
        )
        .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
        checker.check("post", path, &answer);
    }
    let full = spawn_app_with(|s| s.http.max_streams = 0).await;
    for path in [
        "/sse/transactions".to_owned(),
        format!("/sse/transactions/{user}"),
    ] {
        let answer = send(full.client.get(format!("{}{path}", full.address))).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        let documented = if path == "/sse/transactions" {
            "/sse/transactions"
        } else {
            "/sse/transactions/{user_id}"
        };
        checker.check("get", documented, &answer);
    }
    let no_redis = spawn_app_with(|s| {
        s.redis.url = "redis://127.0.0.1:1".into();
        s.redis.connect_timeout_ms = 200;
    })
    .await;
    let answer = send(no_redis.client.get(format!("{}/ready", no_redis.address))).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    checker.check("get", "/ready", &answer);
    // Ingest without Redis: nothing stored, and the ids posted named.
    for (path, body, names) in [
        (
            "/transactions",
            json!({"user_id": user, "amount": "1"}),
            "id",
        ),
        (
            "/transactions/batch",
            json!([{"id": Uuid::now_v7(), "user_id": user, "amount": "1"}, {"amount": "x"}]),
            "ids",
        ),
    ] {
        let answer = send(
            no_redis
                .client
                .post(format!("{}{path}", no_redis.address))
                .json(&body),
        )
        .await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        let reply: Value = serde_json::from_slice(&answer.body).expect("JSON");
        assert_eq!(reply["error"], "service_unavailable", "{reply}");
        assert!(!reply[names].is_null(), "{reply}");
        checker.check("post", path, &answer);
    }

    // A write route with an API key configured.
    let locked = spawn_app_with(|s| s.http.api_key = "secret".into()).await;
    let answer = send(
        locked
            .client
            .post(format!("{}/transactions", locked.address))
            .json(&json!({"user_id": user, "amount": "1"})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    checker.check("post", "/transactions", &answer);
    let answer = send(
        locked
            .client
            .post(format!("{}/transactions/batch", locked.address))
            .json(&json!([])),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    checker.check("post", "/transactions/batch", &answer);

    // Every documented operation was exercised.
    let operations: BTreeSet<(String, String)> = checker
        .checked
        .iter()
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(operations, routes);
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_the_documented_error_shape() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    for (name, method, path, status) in [
        ("NotFound", Method::GET, "/nope", StatusCode::NOT_FOUND),
        (
            "MethodNotAllowed",
            Method::PUT,
            "/users",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ] {
        let answer = send(app.client.request(method, format!("{}{path}", app.address))).await;
        assert_eq!(answer.status, status);
        let schema = &doc["components"]["responses"][name]["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{name} is documented");
        let schema = json!({"components": doc["components"], "allOf": [schema]});
        let body: Value = serde_json::from_slice(&answer.body).expect("JSON");
        assert!(
            jsonschema::draft202012::is_valid(&schema, &body),
            "{name}: {body}"
        );
    }
}

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary_and_reads_our_document() {
    let app = spawn_app().await;
    let answer = send(app.client.get(format!("{}/docs", app.address))).await;
    assert_eq!(answer.status, StatusCode::OK, "/docs is followed to /docs/");
    assert_eq!(answer.media_type, "text/html");
    let page = String::from_utf8_lossy(&answer.body);
    assert!(page.contains("swagger-ui"), "{page}");
    let answer = send(
        app.client
            .get(format!("{}/docs/swagger-initializer.js", app.address)),
    )
    .await;
    assert!(String::from_utf8_lossy(&answer.body).contains("/openapi.json"));
}
