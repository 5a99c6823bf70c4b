use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{spawn_app_with, within};
use crate::proxy::CuttableProxy;

#[tokio::test]
async fn an_unreachable_database_answers_503_and_the_server_recovers_by_itself() {
    let proxy = CuttableProxy::start("127.0.0.1:5432".into()).await;
    let proxy_port = proxy.port();
    let app = spawn_app_with(|settings| {
        settings.database.url = settings
            .database
            .url
            .replace(":5432/", &format!(":{proxy_port}/"));
        settings.database.connect_timeout_ms = 500;
        settings.database.acquire_timeout_ms = 500;
    })
    .await;
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
