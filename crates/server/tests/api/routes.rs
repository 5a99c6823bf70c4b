use reqwest::StatusCode;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use txwatch_domain::{Score, UserId, Verdict};
use txwatch_storage::testing::transaction;
use uuid::Uuid;

use crate::helpers::{ids, spawn_app, within};

#[tokio::test]
async fn health_answers_ok() {
    let app = spawn_app().await;
    let reply = app.health().await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, serde_json::json!({"health": "ok"}));
}

#[tokio::test]
async fn users_lists_every_user_with_transactions_once() {
    let app = spawn_app().await;
    assert_eq!(app.users().await.body, serde_json::json!({"users": []}));
    let users: Vec<UserId> = (0..3).map(|_| UserId(Uuid::new_v4())).collect();
    for user in &users {
        let rows: Vec<_> = (0..4)
            .map(|i| {
                transaction(
                    *user,
                    datetime!(2026-01-01 0:00 UTC) + Duration::days(i),
                    "5",
                )
            })
            .collect();
        app.store(&rows).await;
    }
    let mut want: Vec<String> = users.iter().map(ToString::to_string).collect();
    want.sort();
    let reply = app.users().await;
    assert_eq!(reply.status, StatusCode::OK);
    let got: Vec<String> = reply.body["users"]
        .as_array()
        .expect("array")
        .iter()
        .map(|u| u.as_str().expect("str").to_owned())
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_transaction_is_sent_in_the_old_services_json_shape_with_its_verdict() {
    let app = spawn_app().await;
    let user = UserId(Uuid::new_v4());
    let mut row = transaction(user, datetime!(2026-03-04 05:06:07.5 +05:30), "271.6");
    row.verdict = Verdict::Scored(Score {
        is_anomaly: true,
        score: 0.8,
        window_len: 20,
        baseline: 10.0,
        threshold: 50.0,
    });
    app.store(&[row.clone()]).await;
    let reply = app
        .transactions(&[
            ("user_id", &user.to_string()),
            ("from_date", "2026-01-01"),
            ("to_date", "2026-12-31"),
        ])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let sent = &reply.body["transactions"][0];
    assert_eq!(sent["id"], row.id.to_string());
    assert_eq!(sent["user_id"], user.to_string());
    assert_eq!(sent["amount"], "271.60");
    assert_eq!(sent["currency"], "INR");
    assert_eq!(sent["txn_date"], "2026-03-03T23:36:07.5Z");
    assert_eq!(sent["status"], "paid");
    assert_eq!(sent["meta_data"]["is_anomaly"], true);
    assert_eq!(sent["meta_data"]["baseline"], 10.0);
    assert_eq!(sent["meta_data"]["threshold"], 50.0);
    assert!(reply.body["cursor"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(reply.body["has_more"], false);
}

#[tokio::test]
async fn an_empty_page_has_an_empty_cursor() {
    let app = spawn_app().await;
    let reply = app
        .transactions(&[("user_id", &Uuid::new_v4().to_string())])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        serde_json::json!({"transactions": [], "cursor": "", "has_more": false})
    );
}

#[tokio::test]
async fn default_dates_are_computed_for_each_request() {
    let app = spawn_app().await;
    let user = UserId(Uuid::new_v4());
    let now = OffsetDateTime::now_utc();
    let recent = transaction(user, now - Duration::days(29), "1");
    let too_old = transaction(user, now - Duration::days(31), "2");
    let soon = transaction(user, now + Duration::seconds(2), "3");
    app.store(&[recent.clone(), too_old, soon.clone()]).await;
    let params = [("user_id", user.to_string())];
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        ids(&app.transactions(&params).await),
        [recent.id.to_string()]
    );
    // Once the clock passes `soon`, a new request's default `to_date` covers it.
    within(tokio::time::sleep(std::time::Duration::from_millis(2500))).await;
    assert_eq!(
        ids(&app.transactions(&params).await),
        [soon.id.to_string(), recent.id.to_string()]
    );
}

#[tokio::test]
async fn read_routes_allow_any_origin_by_default() {
    let app = spawn_app().await;
    let response = within(
        app.client
            .get(format!("{}/users", app.address))
            .header("Origin", "https://dashboard.example")
            .send(),
    )
    .await
    .expect("request sent");
    assert_eq!(response.status(), StatusCode::OK);
    // The origin is echoed (with `Vary: Origin`), which browsers treat as
    // `*` for requests without credentials.
    assert_eq!(
        response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().expect("ascii")),
        Some("https://dashboard.example")
    );
}
