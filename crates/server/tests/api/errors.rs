use reqwest::{Method, StatusCode};
use time::macros::datetime;
use txwatch_domain::UserId;
use txwatch_storage::testing::transaction;
use uuid::Uuid;

use crate::helpers::{Reply, spawn_app};

fn assert_error(reply: &Reply, status: StatusCode, code: &str, case: &str) {
    assert_eq!(reply.status, status, "{case}: {:?}", reply.body);
    let body = reply.body.as_object().expect("an object");
    assert_eq!(body.len(), 2, "{case}: {body:?}");
    assert_eq!(body["error"], code, "{case}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{case}"
    );
}

#[tokio::test]
async fn every_bad_query_parameter_answers_422_with_a_json_error() {
    let app = spawn_app().await;
    let user = UserId(Uuid::new_v4());
    app.store(&[transaction(user, datetime!(2026-02-01 0:00 UTC), "5")])
        .await;
    let u = user.to_string();

    // A real cursor, for another user and tampered.
    let page = app
        .transactions(&[
            ("user_id", &u),
            ("from_date", "2026-01-01"),
            ("to_date", "2026-03-01"),
        ])
        .await;
    let cursor = page.body["cursor"].as_str().expect("cursor").to_owned();
    let mut tampered = cursor.clone().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let other_user = Uuid::new_v4().to_string();
    let foreign = "eyJ0eG5fZGF0ZSI6IjIwMjYtMDEtMDEiLCJpZCI6MX0"; // base64 JSON, not ours

    // (what is wrong, the parameters sent, the error code expected)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "invalid user_id",
            vec![("user_id", "not-a-uuid")],
            "invalid_parameter",
        ),
        ("missing user_id", vec![], "missing_parameter"),
        (
            "cursor=abc",
            vec![("user_id", &u), ("cursor", "abc")],
            "invalid_cursor",
        ),
        (
            "foreign base64 cursor",
            vec![("user_id", &u), ("cursor", foreign)],
            "invalid_cursor",
        ),
        (
            "tampered cursor",
            vec![("user_id", &u), ("cursor", &tampered)],
            "invalid_cursor",
        ),
        (
            "another user's cursor",
            vec![("user_id", &other_user), ("cursor", &cursor)],
            "invalid_cursor",
        ),
        (
            "limit=-1",
            vec![("user_id", &u), ("limit", "-1")],
            "invalid_parameter",
        ),
        (
            "limit=0",
            vec![("user_id", &u), ("limit", "0")],
            "invalid_parameter",
        ),
        (
            "limit=100000",
            vec![("user_id", &u), ("limit", "100000")],
            "invalid_parameter",
        ),
        (
            "limit=1001",
            vec![("user_id", &u), ("limit", "1001")],
            "invalid_parameter",
        ),
        (
            "limit=abc",
            vec![("user_id", &u), ("limit", "abc")],
            "invalid_parameter",
        ),
        (
            "unparsable from_date",
            vec![("user_id", &u), ("from_date", "yesterday")],
            "invalid_parameter",
        ),
        (
            "unparsable to_date",
            vec![("user_id", &u), ("to_date", "2026-02-30")],
            "invalid_parameter",
        ),
        (
            "from_date before what Postgres holds",
            vec![("user_id", &u), ("from_date", "-5000-01-01")],
            "invalid_parameter",
        ),
        (
            "to_date past 9999 once in UTC",
            vec![("user_id", &u), ("to_date", "9999-12-31T23:59:59-23:59")],
            "invalid_parameter",
        ),
        (
            "from_date after to_date",
            vec![
                ("user_id", &u),
                ("from_date", "2026-03-01"),
                ("to_date", "2026-02-01"),
            ],
            "invalid_range",
        ),
        (
            "min_amount=abc",
            vec![("user_id", &u), ("min_amount", "abc")],
            "invalid_parameter",
        ),
        (
            "min_amount above max_amount",
            vec![
                ("user_id", &u),
                ("min_amount", "10"),
                ("max_amount", "9.99"),
            ],
            "invalid_range",
        ),
        (
            "max_amount=1e18",
            vec![("user_id", &u), ("max_amount", "1e18")],
            "invalid_parameter",
        ),
        (
            "min_amount=1e400",
            vec![("user_id", &u), ("min_amount", "1e400")],
            "invalid_parameter",
        ),
        (
            "max_amount=NaN",
            vec![("user_id", &u), ("max_amount", "NaN")],
            "invalid_parameter",
        ),
        (
            "min_amount=inf",
            vec![("user_id", &u), ("min_amount", "inf")],
            "invalid_parameter",
        ),
        (
            "max_amount=-Infinity",
            vec![("user_id", &u), ("max_amount", "-Infinity")],
            "invalid_parameter",
        ),
        (
            "amount with 3 decimals",
            vec![("user_id", &u), ("min_amount", "1.001")],
            "invalid_parameter",
        ),
    ];
    for (case, params, code) in cases {
        let reply = app.transactions(&params).await;
        assert_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, code, case);
    }
}

#[tokio::test]
async fn a_malformed_query_string_answers_422() {
    let app = spawn_app().await;
    let reply = app
        .get(&format!(
            "/transactions?user_id={}&limit=1&limit=2",
            Uuid::new_v4()
        ))
        .await;
    assert_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "malformed_query",
        "duplicate limit",
    );
}

#[tokio::test]
async fn unknown_routes_answer_404_and_wrong_methods_405_in_the_same_shape() {
    let app = spawn_app().await;
    assert_error(
        &app.get("/nope").await,
        StatusCode::NOT_FOUND,
        "not_found",
        "GET /nope",
    );
    assert_error(
        &app.get("/transactions/extra").await,
        StatusCode::NOT_FOUND,
        "not_found",
        "GET /transactions/extra",
    );
    for (method, path) in [
        (Method::POST, "/users"),
        (Method::DELETE, "/transactions"),
        (Method::PUT, "/health"),
        (Method::PATCH, "/users"),
    ] {
        let reply = app.request(method.clone(), path).await;
        assert_error(
            &reply,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &format!("{method} {path}"),
        );
    }
}

#[tokio::test]
async fn a_cursor_signed_with_the_built_in_secret_but_out_of_range_answers_422_not_500() {
    let app = spawn_app().await;
    let user = UserId(Uuid::new_v4());
    // Anyone can sign a cursor with the built-in secret: the server must
    // still refuse what its database cannot hold, never answer 500.
    let secret = txwatch_server::Settings::load_from(Default::default())
        .expect("default settings")
        .http
        .cursor_secret;
    let codec = txwatch_http::CursorCodec::new(secret.as_bytes());
    for year_start in [
        datetime!(-5000-01-01 0:00 UTC),
        datetime!(-0001-12-31 23:59 UTC),
    ] {
        let cursor = codec.encode(
            user,
            &txwatch_storage::Position {
                txn_date: year_start,
                id: txwatch_domain::TransactionId(Uuid::new_v4()),
            },
        );
        let reply = app
            .transactions(&[("user_id", &user.to_string()), ("cursor", &cursor)])
            .await;
        assert_error(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_cursor",
            &format!("cursor at {year_start}"),
        );
    }
}

/// Sends raw bytes on a fresh connection and reads the answer until the
/// server closes the connection or `wait` passes.
pub(crate) async fn raw_exchange(
    address: &str,
    request: &[u8],
    wait: std::time::Duration,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = address.trim_start_matches("http://");
    let mut socket = crate::helpers::within(tokio::net::TcpStream::connect(host))
        .await
        .expect("connected");
    crate::helpers::within(socket.write_all(request))
        .await
        .expect("request written");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, socket.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status code and JSON body of a raw HTTP/1.1 answer.
pub(crate) fn raw_status_and_body(answer: &str) -> (u16, serde_json::Value) {
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let body = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {answer:?}"));
    (status, body)
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_gets_408_in_json_not_a_503() {
    let app = crate::helpers::spawn_app_with(|s| s.http.request_timeout_ms = 1000).await;
    let request = b"POST /transactions HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                    Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user_id\":";
    let started = std::time::Instant::now();
    let answer = raw_exchange(&app.address, request, std::time::Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "{answer}"
    );
    let (status, body) = raw_status_and_body(&answer);
    assert_eq!(status, 408, "{answer}");
    assert_eq!(body["error"], "body_timeout", "{answer}");
}

#[tokio::test]
async fn long_inputs_are_not_echoed_in_full_in_error_messages() {
    let app = spawn_app().await;
    let user = Uuid::new_v4().to_string();
    let long = "9".repeat(20_000);
    let replies = [
        (
            "from_date",
            app.transactions(&[("user_id", &user), ("from_date", &long)])
                .await,
        ),
        ("user_id", app.transactions(&[("user_id", &long)]).await),
        (
            "txn_date",
            app.post(
                "/transactions",
                &serde_json::json!({"user_id": user, "amount": "1", "txn_date": long}),
            )
            .await,
        ),
        (
            "status",
            app.post(
                "/transactions",
                &serde_json::json!({"user_id": user, "amount": "1", "status": [long.clone()]}),
            )
            .await,
        ),
        (
            "amount",
            app.post(
                "/transactions",
                &serde_json::json!({"user_id": user, "amount": long}),
            )
            .await,
        ),
    ];
    for (field, reply) in replies {
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        let message = reply.body["message"].as_str().expect("a message");
        assert!(message.contains(field), "{field}: {message}");
        assert!(
            message.len() < 400,
            "{field}: a {} byte message",
            message.len()
        );
    }
}

#[tokio::test]
async fn requests_the_http_parser_refuses_are_answered_in_json_too() {
    let app = spawn_app().await;
    let wait = std::time::Duration::from_secs(5);
    let huge = format!(
        "GET /health?{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "a".repeat(140 * 1024)
    );
    for (request, status, code) in [
        (&b"GARBAGE / HTTP/1.1\r\n\r\n"[..], 400, "bad_request"),
        (
            b"GET /health HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n",
            400,
            "bad_request",
        ),
        (huge.as_bytes(), 431, "headers_too_large"),
    ] {
        let answer = raw_exchange(&app.address, request, wait).await;
        let (got, body) = raw_status_and_body(&answer);
        assert_eq!(got, status, "{answer}");
        assert_eq!(body["error"], code, "{answer}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(
            answer.contains("content-type: application/json"),
            "{answer}"
        );
    }
    // After an answer on a kept-alive connection, the bad request's answer
    // is rewritten all the same, and the good one is left as it was.
    let answer = raw_exchange(
        &app.address,
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nBAD LINE\r\n\r\n",
        wait,
    )
    .await;
    let (first, second) = answer
        .split_once("{\"health\":\"ok\"}")
        .unwrap_or_else(|| panic!("the health answer first: {answer}"));
    assert!(first.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let (status, body) = raw_status_and_body(second);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("bad_request")),
        "{answer}"
    );
}
