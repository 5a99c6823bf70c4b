//! `POST /transactions` and `POST /transactions/batch`.

use reqwest::StatusCode;
use serde_json::{Value, json};
use txwatch_cache::WindowStore;
use txwatch_domain::UserId;

use crate::helpers::{TestApp, spawn_app, spawn_app_with, within};

fn new_user() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn post_amounts(app: &TestApp, user: &str, amounts: &[&str]) -> Vec<Value> {
    let mut answers = Vec::new();
    for amount in amounts {
        let reply = app
            .post("/transactions", &json!({"user_id": user, "amount": amount}))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        answers.push(reply.body);
    }
    answers
}

#[tokio::test]
async fn a_posted_transaction_is_scored_stored_and_answered_201_and_its_id_again_200() {
    let app = spawn_app().await;
    let user = new_user();
    let id = uuid::Uuid::new_v4().to_string();
    let body = json!({
        "id": id, "user_id": user, "amount": "271.62", "currency": "USD",
        "txn_date": "2026-03-01T10:00:00.123456Z", "status": "failed",
    });
    let first = app.post("/transactions", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(
        first.body,
        json!({
            "id": id, "user_id": user, "amount": "271.62", "currency": "USD",
            "txn_date": "2026-03-01T10:00:00.123456Z", "status": "failed",
            "meta_data": {"is_anomaly": false, "simulated": false, "window_len": 0},
        })
    );
    // The same id with other values: the stored transaction, unchanged.
    let again = app
        .post(
            "/transactions",
            &json!({"id": id, "user_id": user, "amount": 5}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, first.body);
    assert_eq!(app.count_of(&user).await, 1);
    // Counted once in the window too.
    let window = app_window(&app, &user).await;
    assert_eq!(window.len(), 1);

    let page = app
        .transactions(&[("user_id", &user), ("from_date", "2026-01-01")])
        .await;
    assert_eq!(page.body["transactions"][0], first.body);
}

#[tokio::test]
async fn an_id_is_unique_per_user_so_another_user_posting_it_gets_a_transaction_of_its_own() {
    let app = spawn_app().await;
    let (alice, bob) = (new_user(), new_user());
    let id = uuid::Uuid::new_v4().to_string();
    let first = app
        .post(
            "/transactions",
            &json!({"id": id, "user_id": alice, "amount": "10"}),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    // The same id under Bob: his own transaction, not Alice's answered back.
    let other = app
        .post(
            "/transactions",
            &json!({"id": id, "user_id": bob, "amount": "20"}),
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.body);
    assert_eq!(other.body["user_id"], json!(bob));
    assert_eq!(other.body["amount"], json!("20.00"));
    // Each is idempotent for its own user, in one batch too.
    let batch = app
        .post(
            "/transactions/batch",
            &json!({"transactions": [
                {"id": id, "user_id": alice, "amount": "30"},
                {"id": id, "user_id": bob, "amount": "40"},
            ]}),
        )
        .await;
    assert_eq!(batch.status, StatusCode::OK, "{}", batch.body);
    assert_eq!(batch.body["existing"], 2, "{}", batch.body);
    assert_eq!(app.count_of(&alice).await, 1);
    assert_eq!(app.count_of(&bob).await, 1);
}

async fn app_window(app: &TestApp, user: &str) -> Vec<txwatch_domain::WindowEntry> {
    let store = WindowStore::new(
        app.redis.pool().clone(),
        app.redis.keys().clone(),
        20,
        std::time::Duration::from_secs(60),
    );
    within(store.read(UserId(user.parse().expect("uuid"))))
        .await
        .expect("window read")
}

#[tokio::test]
async fn defaults_fill_currency_status_and_a_current_date() {
    let app = spawn_app().await;
    let user = new_user();
    let before = time::OffsetDateTime::now_utc();
    let reply = app
        .post("/transactions", &json!({"user_id": user, "amount": 12.5}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["amount"], "12.50");
    assert_eq!(reply.body["currency"], "INR");
    assert_eq!(reply.body["status"], "paid");
    let date = time::OffsetDateTime::parse(
        reply.body["txn_date"].as_str().expect("a date"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    assert!(date >= before - time::Duration::milliseconds(1));
    assert!(date <= time::OffsetDateTime::now_utc());
    let id: uuid::Uuid = reply.body["id"]
        .as_str()
        .expect("an id")
        .parse()
        .expect("a uuid");
    assert_eq!(id.get_version_num(), 7);
}

#[tokio::test]
async fn a_verdict_is_judged_against_the_users_previous_transactions() {
    let app = spawn_app().await;
    let user = new_user();
    let history = post_amounts(&app, &user, &["100"; 10]).await;
    for (i, answer) in history.iter().enumerate() {
        assert_eq!(answer["meta_data"]["window_len"], i, "{answer}");
        assert_eq!(answer["meta_data"]["is_anomaly"], false);
    }
    // Mean 100, multiplier 5: 500 is the limit, 500.01 is beyond it.
    let at_limit = post_amounts(&app, &user, &["500"]).await.remove(0);
    assert_eq!(at_limit["meta_data"]["is_anomaly"], false, "{at_limit}");
    assert_eq!(at_limit["meta_data"]["window_len"], 10);
    assert_eq!(at_limit["meta_data"]["baseline"], 100.0);
    assert_eq!(at_limit["meta_data"]["threshold"], 500.0);
    // Mean of ten 100s and one 500 is 136.36...; 5x is 681.8.
    let spike = post_amounts(&app, &user, &["681.82"]).await.remove(0);
    assert_eq!(spike["meta_data"]["is_anomaly"], true, "{spike}");
    assert_eq!(spike["meta_data"]["window_len"], 11);
}

#[tokio::test]
async fn invalid_transactions_get_422_naming_the_field_and_store_nothing() {
    let app = spawn_app().await;
    let user = new_user();
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"amount": "1"}), "missing_field", "user_id"),
        (json!({"user_id": user}), "missing_field", "amount"),
        (
            json!({"user_id": "nope", "amount": "1"}),
            "invalid_field",
            "user_id",
        ),
        (
            json!({"user_id": 5, "amount": "1"}),
            "invalid_field",
            "user_id",
        ),
        (
            json!({"user_id": user, "amount": "1.234"}),
            "invalid_field",
            "amount",
        ),
        (
            json!({"user_id": user, "amount": "-1"}),
            "invalid_field",
            "amount",
        ),
        (
            json!({"user_id": user, "amount": "1e30"}),
            "invalid_field",
            "amount",
        ),
        (
            json!({"user_id": user, "amount": "lots"}),
            "invalid_field",
            "amount",
        ),
        (
            json!({"user_id": user, "amount": true}),
            "invalid_field",
            "amount",
        ),
        (
            json!({"user_id": user, "amount": "1", "id": "x"}),
            "invalid_field",
            "id",
        ),
        (
            json!({"user_id": user, "amount": "1", "currency": "rupees"}),
            "invalid_field",
            "currency",
        ),
        (
            json!({"user_id": user, "amount": "1", "status": "PAID!"}),
            "invalid_field",
            "status",
        ),
        (
            json!({"user_id": user, "amount": "1", "txn_date": "yesterday"}),
            "invalid_field",
            "txn_date",
        ),
        (
            json!({"user_id": user, "amount": "1", "txn_date": "1969-12-31T23:59:59Z"}),
            "invalid_field",
            "txn_date",
        ),
        (
            json!({"user_id": user, "amount": "1", "txn_date": "9999-12-31T23:59:59-23:59"}),
            "invalid_field",
            "txn_date",
        ),
        (
            json!({"user_id": user, "amount": "1", "txn_date": "2999-01-01T00:00:00Z"}),
            "invalid_field",
            "txn_date",
        ),
        (
            json!({"user_id": user, "amount": "1", "ammount": "1"}),
            "invalid_body",
            "ammount",
        ),
        (json!([1, 2]), "invalid_body", "object"),
    ];
    for (body, code, mentions) in cases {
        let reply = app.post("/transactions", &body).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            reply.body
        );
        assert_eq!(reply.body["error"], code, "{body}: {}", reply.body);
        let message = reply.body["message"].as_str().expect("a message");
        assert!(message.contains(mentions), "{body}: {message}");
    }
    let reply = app
        .post_with("/transactions", &json!(null), |r| r.body("{\"user_id\":"))
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.body["error"], "invalid_body");
    assert_eq!(app.count_of(&user).await, 0);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let app = spawn_app().await;
    let user = new_user();
    let padding = "x".repeat(70 * 1024);
    let reply = app
        .post(
            "/transactions",
            &json!({"user_id": user, "amount": "1", "status": padding}),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["error"], "payload_too_large");
    let big = "y".repeat(5 * 1024 * 1024);
    let reply = app
        .post(
            "/transactions/batch",
            &json!({"transactions": [{"user_id": user, "amount": "1", "status": big}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.count_of(&user).await, 0);
}

#[tokio::test]
async fn a_batch_answers_each_item_in_order_and_scores_each_users_items_in_order() {
    let app = spawn_app().await;
    let (alice, bob) = (new_user(), new_user());
    let repeated = uuid::Uuid::new_v4().to_string();
    let mut items: Vec<Value> = (0..10)
        .map(|_| json!({"user_id": alice, "amount": "100"}))
        .collect();
    items.push(json!({"user_id": bob, "amount": "7"}));
    items.push(json!({"user_id": alice, "amount": "not money"}));
    items.push(json!({"id": repeated, "user_id": alice, "amount": "900"}));
    items.push(json!({"id": repeated, "user_id": alice, "amount": "900"}));
    let reply = app
        .post("/transactions/batch", &json!({"transactions": items}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let results = reply.body["results"].as_array().expect("results");
    assert_eq!(results.len(), 14);
    for (i, result) in results[..10].iter().enumerate() {
        assert_eq!(result["status"], 201);
        assert_eq!(result["transaction"]["meta_data"]["window_len"], i);
    }
    assert_eq!(results[10]["status"], 201);
    assert_eq!(results[10]["transaction"]["meta_data"]["window_len"], 0);
    assert_eq!(results[11]["status"], 422);
    assert_eq!(results[11]["error"], "invalid_field");
    assert_eq!(results[12]["status"], 201);
    assert_eq!(results[12]["transaction"]["meta_data"]["is_anomaly"], true);
    assert_eq!(results[13]["status"], 200);
    assert_eq!(results[13]["transaction"], results[12]["transaction"]);
    assert_eq!(reply.body["created"], 12);
    assert_eq!(reply.body["existing"], 1);
    assert_eq!(reply.body["rejected"], 1);
    assert_eq!(app.count_of(&alice).await, 11);
    assert_eq!(app.count_of(&bob).await, 1);
    assert_eq!(app_window(&app, &alice).await.len(), 11);
}

#[tokio::test]
async fn batches_over_1000_items_or_of_the_wrong_shape_get_422() {
    let app = spawn_app().await;
    let user = new_user();
    let items: Vec<Value> = (0..1001)
        .map(|_| json!({"user_id": user, "amount": "1"}))
        .collect();
    for (body, code) in [
        (json!({"transactions": items}), "invalid_field"),
        (json!({"transactions": "all"}), "invalid_field"),
        (json!({}), "missing_field"),
        (json!({"transactions": [], "extra": 1}), "invalid_body"),
        (json!("hello"), "invalid_body"),
    ] {
        let reply = app.post("/transactions/batch", &body).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.body["error"], code, "{}", reply.body);
    }
    let bare = app
        .post(
            "/transactions/batch",
            &json!([{"user_id": user, "amount": "1"}]),
        )
        .await;
    assert_eq!(bare.status, StatusCode::OK);
    assert_eq!(app.count_of(&user).await, 1);
}

#[tokio::test]
async fn with_an_api_key_writes_need_it_and_reads_do_not() {
    let app = spawn_app_with(|settings| settings.http.api_key = "s3cret-key".into()).await;
    let user = new_user();
    let body = json!({"user_id": user, "amount": "1"});
    for header in [
        None,
        Some(("X-API-Key", "wrong")),
        Some(("Authorization", "Bearer wrong")),
    ] {
        let reply = app
            .post_with("/transactions", &body, |r| match header {
                Some((name, value)) => r.header(name, value),
                None => r,
            })
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(reply.body["error"], "unauthorized");
    }
    let batch = app
        .post(
            "/transactions/batch",
            &json!({"transactions": [body.clone()]}),
        )
        .await;
    assert_eq!(batch.status, StatusCode::UNAUTHORIZED);
    // Refused before the body is read: an oversized body still gets 401.
    let big = app
        .post(
            "/transactions",
            &json!({"user_id": user, "amount": "1", "status": "x".repeat(100_000)}),
        )
        .await;
    assert_eq!(big.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.count_of(&user).await, 0);

    let by_header = app
        .post_with("/transactions", &body, |r| {
            r.header("X-API-Key", "s3cret-key")
        })
        .await;
    assert_eq!(by_header.status, StatusCode::CREATED);
    let by_bearer = app
        .post_with("/transactions", &body, |r| {
            r.header("Authorization", "Bearer s3cret-key")
        })
        .await;
    assert_eq!(by_bearer.status, StatusCode::CREATED);
    assert_eq!(
        app.transactions(&[("user_id", &user)]).await.status,
        StatusCode::OK
    );
    assert_eq!(app.count_of(&user).await, 2);
}

#[tokio::test]
async fn a_lost_window_is_rebuilt_from_postgres_and_gives_the_same_verdict() {
    let app = spawn_app().await;
    let user = new_user();
    let amounts: Vec<String> = (1..=25).map(|i| format!("{}", i * 10)).collect();
    let refs: Vec<&str> = amounts.iter().map(String::as_str).collect();
    post_amounts(&app, &user, &refs).await;
    let before = app_window(&app, &user).await;
    assert_eq!(before.len(), 20);

    // Redis loses everything of ours.
    within(app.redis.lose_everything())
        .await
        .expect("keys removed");
    assert!(app_window(&app, &user).await.is_empty());

    let after_loss = post_amounts(&app, &user, &["1500"]).await.remove(0);
    // Latest 20 were 60..250, mean 155: 5x is 775, so 1500 is flagged.
    assert_eq!(after_loss["meta_data"]["window_len"], 20);
    assert_eq!(after_loss["meta_data"]["baseline"], 155.0);
    assert_eq!(after_loss["meta_data"]["is_anomaly"], true);
    let rebuilt = app_window(&app, &user).await;
    assert_eq!(rebuilt.len(), 20);
    assert_eq!(&rebuilt[..19], &before[1..]);
}

/// Simulated traffic through the live pipeline, judged against the
/// simulator's ground truth: the pipeline's verdicts equal the detector
/// library replaying each user's amounts in order, and precision and recall
/// stay within the bounds `just quality` reports for the default settings.
#[tokio::test]
async fn simulated_traffic_through_the_pipeline_is_judged_as_the_library_judges_it() {
    use txwatch_domain::{AnyDetector, Detector};
    use txwatch_simulator::{SimulatorConfig, UserSimulator};

    let app = spawn_app().await;
    let start = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    let mut simulators: Vec<UserSimulator> = (0..20u64)
        .map(|seed| {
            let user = UserId(uuid::Uuid::new_v4());
            UserSimulator::new(user, SimulatorConfig::default(), seed)
        })
        .collect();
    let detector = AnyDetector::default();
    let mut states: Vec<_> = simulators.iter().map(|_| detector.new_state()).collect();
    let (mut true_pos, mut false_pos, mut false_neg) = (0u32, 0u32, 0u32);
    for round in 0..10 {
        let mut items = Vec::new();
        let mut expected = Vec::new();
        for step in 0..30 {
            for (simulator, state) in simulators.iter_mut().zip(&mut states) {
                let at = start + time::Duration::seconds(round * 30 + step);
                let t = simulator.next_at(at);
                expected.push((
                    detector.observe(state, t.amount.to_f64()).is_anomaly(),
                    t.is_large,
                ));
                items.push(json!({
                    "id": t.id.to_string(), "user_id": t.user_id.to_string(),
                    "amount": t.amount.to_string(), "status": t.status.as_str(),
                    "txn_date": at.format(&time::format_description::well_known::Rfc3339).expect("date"),
                }));
            }
        }
        let reply = app
            .post("/transactions/batch", &json!({"transactions": items}))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        let results = reply.body["results"].as_array().expect("results");
        for (result, (library, is_large)) in results.iter().zip(expected) {
            assert_eq!(result["status"], 201);
            let flagged = result["transaction"]["meta_data"]["is_anomaly"] == true;
            assert_eq!(flagged, library, "{result}");
            match (flagged, is_large) {
                (true, true) => true_pos += 1,
                (true, false) => false_pos += 1,
                (false, true) => false_neg += 1,
                (false, false) => {}
            }
        }
    }
    let precision = f64::from(true_pos) / f64::from(true_pos + false_pos).max(1.0);
    let recall = f64::from(true_pos) / f64::from(true_pos + false_neg).max(1.0);
    // The old rule on the simulator's own traffic: a flag is always right,
    // but large amounts fill the window and mask the next ones.
    assert!(precision > 0.99, "precision {precision}");
    assert!((0.02..0.3).contains(&recall), "recall {recall}");
}

#[tokio::test]
async fn only_json_objects_are_transactions_whatever_serde_would_take() {
    let app = spawn_app().await;
    let user = new_user();
    let sequence = json!([null, user, "7.77"]);
    let reply = app.post("/transactions", &sequence).await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["error"], "invalid_body");
    let batch = app
        .post(
            "/transactions/batch",
            &json!([sequence, {"user_id": user, "amount": "1.00"}]),
        )
        .await;
    assert_eq!(batch.status, StatusCode::OK, "{}", batch.body);
    assert_eq!(batch.body["results"][0]["status"], 422, "{}", batch.body);
    assert_eq!(batch.body["results"][0]["error"], "invalid_body");
    assert_eq!(batch.body["results"][1]["status"], 201);
    assert_eq!(app.count_of(&user).await, 1);
}

#[tokio::test]
async fn a_repeated_key_is_refused_naming_it_at_every_level_read() {
    let app = spawn_app().await;
    let user = new_user();
    let one = format!(r#"{{"user_id":"{user}","amount":"1.00","amount":"99999.00"}}"#);
    let cases = [
        ("/transactions", one.clone(), "amount"),
        (
            "/transactions",
            format!(
                r#"{{"user_id":"{user}","user_id":"{}","amount":"1"}}"#,
                new_user()
            ),
            "user_id",
        ),
        (
            "/transactions/batch",
            format!(r#"{{"transactions":[],"transactions":[{one}]}}"#),
            "transactions",
        ),
    ];
    for (path, body, key) in cases {
        let reply = app
            .post_with(path, &Value::Null, |r| r.body(body.clone()))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            reply.body
        );
        assert_eq!(reply.body["error"], "invalid_body", "{body}");
        let message = reply.body["message"].as_str().expect("a message");
        assert!(message.contains(&format!("`{key}`")), "{body}: {message}");
    }
    let batch = app
        .post_with("/transactions/batch", &Value::Null, |r| {
            r.body(format!(r#"[{one},{{"user_id":"{user}","amount":"2"}}]"#))
        })
        .await;
    assert_eq!(batch.status, StatusCode::OK, "{}", batch.body);
    assert_eq!(batch.body["results"][0]["status"], 422);
    assert!(
        batch.body["results"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`amount`")),
        "{}",
        batch.body
    );
    assert_eq!(batch.body["results"][1]["status"], 201);
    assert_eq!(app.count_of(&user).await, 1);
}

#[tokio::test]
async fn an_encoded_body_is_refused_with_415() {
    let app = spawn_app().await;
    let user = new_user();
    let body = json!({"user_id": user, "amount": "1.00"});
    for (path, encoding) in [
        ("/transactions", "gzip"),
        ("/transactions/batch", "br"),
        ("/transactions", "deflate, identity"),
    ] {
        let sent = if path.ends_with("batch") {
            json!([body])
        } else {
            body.clone()
        };
        let reply = app
            .post_with(path, &sent, |r| r.header("Content-Encoding", encoding))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{path} {encoding}: {}",
            reply.body
        );
        assert_eq!(reply.body["error"], "unsupported_encoding");
    }
    assert_eq!(app.count_of(&user).await, 0);
    let plain = app
        .post_with("/transactions", &body, |r| {
            r.header("Content-Encoding", "identity")
        })
        .await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.body);
}

#[tokio::test]
async fn a_refused_api_key_gets_a_challenge_and_the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app_with(|settings| settings.http.api_key = "s3cret-key".into()).await;
    let user = new_user();
    let body = json!({"user_id": user, "amount": "1"});
    let refused = within(
        app.client
            .post(format!("{}/transactions", app.address))
            .json(&body)
            .send(),
    )
    .await
    .expect("sent");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .expect("ascii");
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    for scheme in ["bearer", "BEARER", "Bearer  "] {
        let reply = app
            .post_with("/transactions", &body, |r| {
                r.header("Authorization", format!("{scheme} s3cret-key"))
            })
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{scheme}: {}",
            reply.body
        );
    }
}

/// A time-aware detector in the server: each transaction is judged with the
/// dates of the user's previous ones from the Redis window (its latest 200),
/// exactly as the library judges the same amounts at the same times.
#[tokio::test]
async fn a_time_aware_detector_judges_each_transaction_with_the_windows_dates() {
    use time::format_description::well_known::Rfc3339;
    use txwatch_domain::{AnyDetector, Detector, DetectorKind};

    let app = spawn_app_with(|settings| settings.detector.kind = DetectorKind::Auto).await;
    let detector = AnyDetector::with_defaults(DetectorKind::Auto);
    let user = UserId(uuid::Uuid::new_v4());
    let start = (time::OffsetDateTime::now_utc() - time::Duration::days(11))
        .date()
        .midnight()
        .assume_utc();
    // Hourly for ten days: 300 by day, 30 at night; then, at 02:00, a
    // daytime amount.
    let window = txwatch_server::window_len(&detector);
    let mut history: Vec<(time::OffsetDateTime, f64)> = Vec::new();
    let mut items = Vec::new();
    let mut expected = Vec::new();
    for hour in 0..243i64 {
        let at = start + time::Duration::hours(hour);
        let busy = (9..18).contains(&at.hour());
        let cents = if busy { 30_000 } else { 3_000 } + (hour * 37) % 500;
        let mut amount = cents as f64 / 100.0;
        if hour == 242 {
            amount = 300.0;
        }
        let previous = &history[history.len().saturating_sub(window)..];
        let state = detector.state_from_timed_history(previous.iter().copied());
        expected.push(detector.score_at(&state, at, amount));
        history.push((at, amount));
        items.push(json!({
            "user_id": user.to_string(), "amount": format!("{amount:.2}"), "status": "paid",
            "txn_date": at.format(&Rfc3339).expect("date"),
        }));
    }
    let reply = app
        .post("/transactions/batch", &json!({"transactions": items}))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let results = reply.body["results"].as_array().expect("results");
    assert_eq!(results.len(), expected.len());
    for (result, library) in results.iter().zip(&expected) {
        let meta = &result["transaction"]["meta_data"];
        assert_eq!(meta["is_anomaly"], library.is_anomaly(), "{result}");
        if let Some(score) = library.score() {
            assert_eq!(meta["score"].as_f64(), Some(score.score), "{result}");
        }
    }
    // The daytime amount at night is the most unusual of the last day.
    let (last, day) = expected[expected.len() - 24..]
        .split_last()
        .expect("a day of verdicts");
    assert!(
        day.iter().all(|v| v.graded() < last.graded()),
        "a daytime amount at night: {last:?}"
    );
}
