//! Writes whose answer from Postgres is lost (defect 3 of issue 11): the
//! statement or `COPY` reaches Postgres and commits, but its reply never
//! comes back and the connection is reset. The server must find out what
//! became of the write before it answers: never "nothing is stored" for a
//! stored transaction.

use reqwest::StatusCode;
use serde_json::{Value, json};
use txwatch_cache::WindowStore;
use txwatch_domain::{Origin, UserId};
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app_with, within};
use crate::proxy::CuttableProxy;

/// An app whose Postgres is reached through a proxy that can lose a reply.
async fn app_behind_a_lossy_database() -> (TestApp, CuttableProxy) {
    let proxy = CuttableProxy::start("127.0.0.1:5432".into()).await;
    let proxy_port = proxy.port();
    let app = spawn_app_with(|settings| {
        settings.database.url = settings
            .database
            .url
            .replace(":5432/", &format!(":{proxy_port}/"));
        settings.database.connect_timeout_ms = 1000;
    })
    .await;
    (app, proxy)
}

/// The user's window as Redis holds it, and the user's latest rows as
/// Postgres holds them.
async fn window_and_latest(
    app: &TestApp,
    user: Uuid,
) -> (
    Vec<txwatch_domain::WindowEntry>,
    Vec<txwatch_domain::WindowEntry>,
) {
    let store = WindowStore::new(
        app.redis.pool().clone(),
        app.redis.keys().clone(),
        20,
        std::time::Duration::from_secs(60),
    );
    let window = within(store.read(UserId(user))).await.expect("window");
    let mut latest = within(
        app.repository
            .latest_entries(&[UserId(user)], 20, Origin::Real),
    )
    .await
    .expect("latest rows");
    (window, latest.remove(&UserId(user)).unwrap_or_default())
}

#[tokio::test]
async fn a_single_post_whose_commit_reply_is_lost_is_answered_with_the_stored_row() {
    let (app, proxy) = app_behind_a_lossy_database().await;
    let user = Uuid::new_v4();
    let first = app
        .post("/transactions", &json!({"user_id": user, "amount": "10"}))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);

    proxy.swallow_reply_to(b"lost_reply_single");
    let reply = app
        .post(
            "/transactions",
            &json!({"user_id": user, "amount": "20", "status": "lost_reply_single"}),
        )
        .await;
    assert!(proxy.swallowed(), "the proxy never saw the insert");
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["status"], "lost_reply_single");
    assert_eq!(reply.body["meta_data"]["window_len"], 1);
    assert_eq!(app.count_of(&user.to_string()).await, 2);

    // The window kept it, as Postgres did: the next one is judged against
    // both, and the window is the stored rows.
    let next = app
        .post("/transactions", &json!({"user_id": user, "amount": "30"}))
        .await;
    assert_eq!(next.status, StatusCode::CREATED, "{}", next.body);
    assert_eq!(next.body["meta_data"]["window_len"], 2);
    let (window, latest) = window_and_latest(&app, user).await;
    assert_eq!(window, latest);
}

/// Both ways a batch is stored: one statement for a few rows, binary `COPY`
/// from 64 rows on; each item with a client id or without.
#[tokio::test]
async fn a_batch_whose_commit_reply_is_lost_is_answered_with_the_stored_rows() {
    let (app, proxy) = app_behind_a_lossy_database().await;
    for (size, status) in [(3usize, "lost_reply_small"), (100, "lost_reply_copy")] {
        let user = Uuid::new_v4();
        let given: Vec<Option<Uuid>> = (0..size).map(|i| (i % 2 == 0).then(Uuid::now_v7)).collect();
        let items: Vec<Value> = given
            .iter()
            .map(|id| {
                let mut item = json!({"user_id": user, "amount": "5", "status": status});
                if let Some(id) = id {
                    item["id"] = json!(id);
                }
                item
            })
            .collect();
        proxy.swallow_reply_to(status.as_bytes());
        let reply = app
            .post("/transactions/batch", &json!({"transactions": items}))
            .await;
        assert!(proxy.swallowed(), "{size}: the proxy never saw the rows");
        assert_eq!(reply.status, StatusCode::OK, "{size}: {}", reply.body);
        assert_eq!(reply.body["created"], size, "{size}: {}", reply.body);
        let results = reply.body["results"].as_array().expect("results");
        for (result, id) in results.iter().zip(&given) {
            if let Some(id) = id {
                assert_eq!(result["transaction"]["id"], id.to_string());
            }
        }
        assert_eq!(app.count_of(&user.to_string()).await, size as i64);
        let (window, latest) = window_and_latest(&app, user).await;
        assert_eq!(window, latest, "{size}");
    }
}
