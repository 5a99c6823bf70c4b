//! The dashboard at `/`: its files are served with their types and
//! validators, and in a real headless Chromium (driven through
//! chromedriver) it shows live transactions, marks anomalies with their
//! reason, charts a user, pages through that user's history, recovers
//! from a lost connection, and keeps its live table bounded.
//!
//! The browser comes from [`crate::browser`].

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::browser::Browser;
use crate::helpers::{TestApp, spawn_app, spawn_app_with, within};
use crate::proxy::CuttableProxy;

/// The longest wait for anything to show up in the page.
const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn the_dashboard_and_its_assets_are_served_with_their_types_and_validators() {
    let app = spawn_app().await;
    for (path, content_type) in [
        ("/", "text/html"),
        ("/assets/dashboard.js", "text/javascript"),
        ("/assets/dashboard.css", "text/css"),
    ] {
        let url = format!("{}{path}", app.address);
        let response = within(app.client.get(&url).send()).await.expect("sent");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .unwrap_or_else(|| panic!("{path} has {name}"))
                .to_str()
                .expect("text")
                .to_owned()
        };
        assert!(header("content-type").starts_with(content_type), "{path}");
        assert_eq!(header("cache-control"), "no-cache", "{path}");
        let etag = header("etag");
        if path == "/" {
            let policy = header("content-security-policy");
            assert!(policy.contains("connect-src 'self'"), "{policy}");
        }
        let body = within(response.text()).await.expect("body");
        assert!(!body.is_empty(), "{path}");

        let again = within(app.client.get(&url).header("If-None-Match", &etag).send())
            .await
            .expect("sent");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }

    let missing = app.get("/assets/nope.js").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["error"], "not_found");
    for path in ["/", "/assets/dashboard.js"] {
        let reply = app.request(Method::POST, path).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "POST {path}");
        assert_eq!(reply.body["error"], "method_not_allowed");
    }
}

#[tokio::test]
async fn the_dashboard_shows_live_anomalies_with_their_reason_and_pages_through_history() {
    let app = spawn_app().await;
    // The browser reaches the server through a proxy the test can cut.
    let port = app.address.rsplit(':').next().expect("a port");
    let proxy = CuttableProxy::start(format!("127.0.0.1:{port}")).await;
    let browser = Browser::start().await;
    browser
        .run(exercise_dashboard(&app, &proxy, &browser.client))
        .await;
}

async fn exercise_dashboard(app: &TestApp, proxy: &CuttableProxy, page: &Client) {
    within(page.goto(&format!("http://127.0.0.1:{}/", proxy.port())))
        .await
        .expect("the dashboard opens");
    wait_for(
        page,
        "the live stream to connect",
        "return document.getElementById('stream-state').dataset.state === 'live'",
    )
    .await;
    wait_for(
        page,
        "the server to be shown as up",
        "return document.getElementById('health').dataset.state === 'ok'",
    )
    .await;

    // Twelve ordinary amounts a minute apart, then a spike.
    let user = uuid::Uuid::new_v4().to_string();
    let start = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("zero nanoseconds")
        - time::Duration::hours(1);
    let mut posted = Vec::new(); // ids, oldest first
    for i in 0..13_i64 {
        let amount = if i == 12 {
            "99999.00".to_owned()
        } else {
            format!("{}.00", 100 + i)
        };
        let date = (start + time::Duration::minutes(i))
            .format(&Rfc3339)
            .expect("a date");
        let reply = app
            .post(
                "/transactions",
                &json!({"user_id": user, "amount": amount, "txn_date": date}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        posted.push(reply.body["id"].as_str().expect("an id").to_owned());
    }
    let spike = posted.last().expect("posted").clone();

    // Every one arrives live; the spike is marked, with its reason.
    wait_for(
        page,
        "13 live rows",
        "return document.querySelectorAll('#live-rows tr[data-id]').length >= 13",
    )
    .await;
    let shown: HashSet<String> = strings(
        &run(
            page,
            "return [...document.querySelectorAll('#live-rows tr')].map(r => r.dataset.id)",
        )
        .await,
    )
    .into_iter()
    .collect();
    for id in &posted {
        assert!(shown.contains(id), "{id} is not among the live rows");
    }
    let row = |id: &str| {
        format!(
            "const r = document.querySelector('#live-rows tr[data-id=\"{id}\"]'); \
             return {{anomaly: r.dataset.anomaly, class: r.className, \
                      reason: r.querySelector('.reason').textContent}}"
        )
    };
    let flagged = run(page, &row(&spike)).await;
    assert_eq!(flagged["anomaly"], "true", "{flagged}");
    assert!(
        flagged["class"]
            .as_str()
            .is_some_and(|c| c.contains("anomaly")),
        "{flagged}"
    );
    let reason = flagged["reason"].as_str().expect("a reason");
    assert!(
        reason.starts_with("amount 99,999.00 > threshold ") && reason.contains("(5 × mean "),
        "{reason}"
    );
    let ordinary = run(page, &row(&posted[11])).await;
    assert_eq!(ordinary["anomaly"], "false", "{ordinary}");
    assert!(
        ordinary["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("≤ threshold ")),
        "{ordinary}"
    );

    // The connection drops: the page says so, reconnects by itself, and
    // gets what it missed meanwhile.
    proxy.cut();
    wait_for(
        page,
        "the stream to be shown reconnecting",
        "return ['reconnecting', 'down'].includes(\
             document.getElementById('stream-state').dataset.state)",
    )
    .await;
    let missed = app
        .post(
            "/transactions",
            &json!({"user_id": uuid::Uuid::new_v4(), "amount": "42.00"}),
        )
        .await;
    assert_eq!(missed.status, StatusCode::CREATED, "{}", missed.body);
    let missed = missed.body["id"].as_str().expect("an id").to_owned();
    proxy.restore();
    wait_for(
        page,
        "the stream to be live again with the missed transaction",
        &format!(
            "return document.getElementById('stream-state').dataset.state === 'live' \
                 && !!document.querySelector('#live-rows tr[data-id=\"{missed}\"]') \
                 && !!document.querySelector('#notices li[data-code=reconnected]')"
        ),
    )
    .await;

    // Pick the user: the chart shows the spike above the threshold line,
    // and the live table keeps that user's rows only.
    click(page, "#refresh-users").await;
    wait_for(
        page,
        "the user in the picker",
        &format!("return !!document.querySelector('#user option[value=\"{user}\"]')"),
    )
    .await;
    within(find(page, "#user").await.select_by_value(&user))
        .await
        .expect("user picked");
    wait_for(
        page,
        "the chart of the user",
        "return document.querySelectorAll('#chart circle.dot').length === 13 \
             && !!document.querySelector('#chart circle.anomaly') \
             && !!document.querySelector('#chart [data-series=threshold]')",
    )
    .await;
    wait_for(
        page,
        "the live rows of the user only",
        &format!(
            "return document.querySelectorAll('#live-rows tr').length === 13 \
                 && !!document.querySelector('#live-rows tr.anomaly[data-id=\"{spike}\"]')"
        ),
    )
    .await;

    // History, five a page, newest first; next and back again.
    within(find(page, "#page-size").await.select_by_value("5"))
        .await
        .expect("page size chosen");
    click(page, "#history-load").await;
    let first = history_page(page, 1).await;
    let newest_first: Vec<String> = posted.iter().rev().cloned().collect();
    assert_eq!(first, newest_first[..5]);
    click(page, "#history-next").await;
    let second = history_page(page, 2).await;
    assert!(
        second.iter().all(|id| !first.contains(id)),
        "page 2 repeats page 1: {first:?} {second:?}"
    );
    assert_eq!(second, newest_first[5..10]);
    click(page, "#history-prev").await;
    assert_eq!(history_page(page, 1).await, first);

    run(page, "window.scrollTo(0, 0)").await;
    let png = within(page.screenshot()).await.expect("a screenshot");
    let folder = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&folder).expect("screenshot folder");
    let path = folder.join("live-anomaly-and-history.png");
    std::fs::write(&path, &png).expect("screenshot written");
    let written = std::fs::metadata(&path).expect("screenshot exists").len();
    assert!(written > 0, "{} is empty", path.display());
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");

    // A burst larger than the table: it keeps the newest 200 rows, the
    // chart the newest 120 points.
    let burst: Vec<Value> = (0..250)
        .map(|_| json!({"user_id": user, "amount": "100.00"}))
        .collect();
    let reply = app
        .post("/transactions/batch", &json!({"transactions": burst}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["created"], 250, "{}", reply.body);
    wait_for(
        page,
        "the burst to be shown",
        "return document.getElementById('stat-received').textContent === '264' \
             && document.querySelectorAll('#live-rows tr').length === 200 \
             && document.querySelectorAll('#chart circle.dot').length === 120",
    )
    .await;
}

#[tokio::test]
async fn a_link_to_a_user_filters_their_history_reports_bad_input_and_simulates_them() {
    let app = spawn_app_with(|settings| settings.simulator.interval_ms = 200).await;
    let user = uuid::Uuid::new_v4().to_string();
    let start = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("zero nanoseconds")
        - time::Duration::hours(1);
    let mut posted = Vec::new(); // (id, date), oldest first
    for i in 0..6_i64 {
        let date = start + time::Duration::minutes(i);
        let reply = app
            .post(
                "/transactions",
                &json!({
                    "user_id": user,
                    "amount": format!("{}.00", 10 * (i + 1)),
                    "txn_date": date.format(&Rfc3339).expect("a date"),
                }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        posted.push((reply.body["id"].as_str().expect("an id").to_owned(), date));
    }
    let browser = Browser::start().await;
    browser
        .run(exercise_filters_and_simulation(
            &app,
            &user,
            &posted,
            &browser.client,
        ))
        .await;
}

async fn exercise_filters_and_simulation(
    app: &TestApp,
    user: &str,
    posted: &[(String, OffsetDateTime)],
    page: &Client,
) {
    // A link to the user's view opens with that user picked.
    within(page.goto(&format!("{}/#user={user}", app.address)))
        .await
        .expect("the dashboard opens");
    wait_for(
        page,
        "the user to be picked",
        &format!("return document.getElementById('user').value === '{user}'"),
    )
    .await;
    let rows_script =
        "return [...document.querySelectorAll('#history-rows tr')].map(r => r.dataset.id)";
    wait_for(
        page,
        "the user's history",
        "return document.querySelectorAll('#history-rows tr[data-id]').length === 6",
    )
    .await;

    // Amounts 20.00 to 40.00: 40, 30, 20, newest first, on one page.
    set_value(page, "#min-amount", "20").await;
    set_value(page, "#max-amount", "40.00").await;
    click(page, "#history-load").await;
    wait_for(
        page,
        "three rows",
        "return document.querySelectorAll('#history-rows tr[data-id]').length === 3",
    )
    .await;
    let want: Vec<String> = posted[1..4]
        .iter()
        .rev()
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(strings(&run(page, rows_script).await), want);
    assert_eq!(
        run(
            page,
            "return document.getElementById('history-next').disabled"
        )
        .await,
        true
    );

    // From the fifth transaction's time on (the picker is in local time).
    set_value(page, "#min-amount", "").await;
    set_value(page, "#max-amount", "").await;
    let from = posted[4].1.format(&Rfc3339).expect("a date");
    run(
        page,
        &format!(
            "const d = new Date('{from}'); const p = n => String(n).padStart(2, '0'); \
             document.getElementById('from-date').value = \
               `${{d.getFullYear()}}-${{p(d.getMonth() + 1)}}-${{p(d.getDate())}}T` + \
               `${{p(d.getHours())}}:${{p(d.getMinutes())}}:${{p(d.getSeconds())}}`; return 1"
        ),
    )
    .await;
    click(page, "#history-load").await;
    wait_for(
        page,
        "two rows",
        "return document.querySelectorAll('#history-rows tr[data-id]').length === 2",
    )
    .await;
    let want: Vec<String> = posted[4..].iter().rev().map(|(id, _)| id.clone()).collect();
    assert_eq!(strings(&run(page, rows_script).await), want);

    // A bad amount: the API's message is shown, not a blank table.
    set_value(page, "#min-amount", "lots").await;
    click(page, "#history-load").await;
    let message = wait_for(
        page,
        "the error message",
        "const e = document.getElementById('history-empty'); \
         return !e.hidden && e.textContent.includes('min_amount') && e.textContent",
    )
    .await;
    assert!(
        message
            .as_str()
            .is_some_and(|m| m.starts_with("Could not load: ")),
        "{message}"
    );

    // Simulating the user: its transactions stream in until stopped, each
    // saying it was simulated.
    click(page, "#simulate").await;
    wait_for(
        page,
        "simulated transactions",
        &format!(
            "return document.querySelectorAll('#live-rows tr[data-user=\"{user}\"]').length >= 3"
        ),
    )
    .await;
    let reasons = run(
        page,
        &format!(
            "return [...document.querySelectorAll('#live-rows tr[data-user=\"{user}\"] .reason')]\
             .map(cell => cell.textContent)"
        ),
    )
    .await;
    let reasons = strings(&reasons);
    assert!(
        reasons.len() >= 3 && reasons.iter().all(|r| r.starts_with("simulated: ")),
        "{reasons:?}"
    );
    click(page, "#simulate").await;
    assert_eq!(
        run(
            page,
            "return document.getElementById('simulate').textContent"
        )
        .await,
        "Simulate user"
    );
    assert!(app.count_of(user).await >= 9);
}

/// Replaces the text of the input at `selector`.
async fn set_value(page: &Client, selector: &str, text: &str) {
    let input = find(page, selector).await;
    within(input.clear()).await.expect("input cleared");
    if !text.is_empty() {
        within(input.send_keys(text)).await.expect("text typed");
    }
}

/// Waits until history page `number` shows five rows; their ids.
async fn history_page(page: &Client, number: usize) -> Vec<String> {
    wait_for(
        page,
        &format!("history page {number}"),
        &format!(
            "return document.getElementById('history-page').dataset.page === '{number}' \
                 && document.querySelectorAll('#history-rows tr[data-id]').length === 5"
        ),
    )
    .await;
    strings(
        &run(
            page,
            "return [...document.querySelectorAll('#history-rows tr')].map(r => r.dataset.id)",
        )
        .await,
    )
}

/// Runs `script` in the page; what it returned.
async fn run(page: &Client, script: &str) -> Value {
    within(page.execute(script, vec![]))
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// Polls `script` until it returns something truthy, for at most [`WAIT`].
async fn wait_for(page: &Client, what: &str, script: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let value = run(page, script).await;
        let truthy = match &value {
            Value::Null | Value::Bool(false) => false,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            _ => true,
        };
        if truthy {
            return value;
        }
        if Instant::now() > deadline {
            let text = run(page, "return document.body.innerText").await;
            panic!(
                "waited {WAIT:?} for {what}; the page shows:\n{}",
                text.as_str().unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn find(page: &Client, selector: &str) -> fantoccini::elements::Element {
    within(page.find(Locator::Css(selector)))
        .await
        .unwrap_or_else(|e| panic!("{selector} is on the page: {e}"))
}

async fn click(page: &Client, selector: &str) {
    within(find(page, selector).await.click())
        .await
        .unwrap_or_else(|e| panic!("{selector} clicked: {e}"));
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}
