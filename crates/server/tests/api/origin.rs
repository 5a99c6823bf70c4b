//! Who may write: the write routes compare a browser's `Origin` with the
//! request's own origin (scheme, host and port), trust forwarded headers
//! only from configured proxies, and, without an API key, take writes only
//! for host names they know (so a DNS-rebinding page cannot write).

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Reply, TestApp, spawn_app, spawn_app_with};

async fn post_with_headers(app: &TestApp, headers: &[(&str, &str)]) -> Reply {
    let body = json!({"user_id": Uuid::new_v4(), "amount": "1.00"});
    app.post_with("/transactions", &body, |mut request| {
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
    })
    .await
}

fn port(app: &TestApp) -> &str {
    app.address.rsplit(':').next().expect("a port")
}

#[tokio::test]
async fn a_page_on_another_scheme_or_a_forged_forwarded_host_may_not_write() {
    let app = spawn_app().await;
    let port = port(&app);
    let https_origin = format!("https://127.0.0.1:{port}");
    let evil_origin = "http://evil.example".to_owned();
    let evil_forwarded = "host=evil.example".to_owned();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("scheme differs", vec![("Origin", &https_origin)]),
        (
            "X-Forwarded-Host from a client",
            vec![
                ("Origin", &evil_origin),
                ("X-Forwarded-Host", "evil.example"),
            ],
        ),
        (
            "Forwarded host= from a client",
            vec![("Origin", &evil_origin), ("Forwarded", &evil_forwarded)],
        ),
    ];
    for (case, headers) in cases {
        let reply = post_with_headers(&app, &headers).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{case}: {}",
            reply.body
        );
        assert_eq!(reply.body["error"], "origin_not_allowed", "{case}");
    }
}

#[tokio::test]
async fn a_dns_rebinding_page_may_not_write_without_an_api_key() {
    let app = spawn_app().await;
    let port = port(&app);
    let host = format!("evil.example:{port}");
    let origin = format!("http://evil.example:{port}");
    for headers in [
        vec![("Host", host.as_str()), ("Origin", origin.as_str())],
        vec![("Host", host.as_str())],
    ] {
        let reply = post_with_headers(&app, &headers).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{headers:?}: {}",
            reply.body
        );
        assert_eq!(reply.body["error"], "host_not_allowed", "{headers:?}");
    }
    // Loopback names and addresses, the server's own pages, still write.
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let origin = format!("http://{host}");
        let reply = post_with_headers(
            &app,
            &[("Host", host.as_str()), ("Origin", origin.as_str())],
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{host}: {}", reply.body);
    }
}

#[tokio::test]
async fn a_listed_host_name_may_write_and_an_api_key_lifts_the_host_check() {
    let listed = spawn_app_with(|s| s.http.allowed_hosts = vec!["txwatch.example".into()]).await;
    let listed_port = port(&listed).to_owned();
    let host = format!("txwatch.example:{listed_port}");
    let origin = format!("http://txwatch.example:{listed_port}");
    let reply = post_with_headers(&listed, &[("Host", &host), ("Origin", &origin)]).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let other = format!("other.example:{listed_port}");
    let reply = post_with_headers(&listed, &[("Host", &other)]).await;
    assert_eq!(reply.body["error"], "host_not_allowed", "{}", reply.body);

    let keyed = spawn_app_with(|s| s.http.api_key = "s3cret-key".into()).await;
    let host = format!("any.example:{}", port(&keyed));
    let reply = post_with_headers(&keyed, &[("Host", &host), ("X-API-Key", "s3cret-key")]).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

#[tokio::test]
async fn a_trusted_proxy_says_which_origin_the_page_was_served_from() {
    let app = spawn_app_with(|s| {
        s.http.trusted_proxies = vec!["127.0.0.0/8".into()];
        s.http.allowed_hosts = vec!["public.example".into()];
    })
    .await;
    // TLS ends at the proxy: the page is https://public.example.
    let forwarded = [
        ("X-Forwarded-Host", "public.example"),
        ("X-Forwarded-Proto", "https"),
        ("Origin", "https://public.example"),
    ];
    let reply = post_with_headers(&app, &forwarded).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let rfc = [
        ("Forwarded", "for=192.0.2.1;proto=https;host=public.example"),
        ("Origin", "https://public.example"),
    ];
    let reply = post_with_headers(&app, &rfc).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    // The proxy's word still decides: a page elsewhere may not write.
    let reply = post_with_headers(
        &app,
        &[
            ("X-Forwarded-Host", "public.example"),
            ("X-Forwarded-Proto", "https"),
            ("Origin", "http://public.example"),
        ],
    )
    .await;
    assert_eq!(reply.body["error"], "origin_not_allowed", "{}", reply.body);
}
