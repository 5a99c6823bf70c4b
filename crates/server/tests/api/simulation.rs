//! The live simulation behind `GET /sse/transactions/{user_id}`: reads
//! never write unless it is on (and, with an API key, unless the key was
//! sent); simulated transactions are marked and judged against a window of
//! their own; and each connection drives and receives its own feed, as the
//! old service did, so its web client shows every row once.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_with, within};
use crate::live::{WAIT, new_user, user_stream};
use crate::sse_client::{SseEvent, open};

/// The transactions among `events`, in order.
fn transactions(events: Vec<SseEvent>) -> Vec<SseEvent> {
    events
        .into_iter()
        .filter(SseEvent::is_transaction)
        .collect()
}

fn id_of(event: &SseEvent) -> String {
    event.json()["id"].as_str().expect("an id").to_owned()
}

/// The ids of `user`'s stored transactions that are simulated (`true`) or
/// not (`false`).
async fn stored_ids(app: &TestApp, user: &str, simulated: bool) -> HashSet<String> {
    let client = within(app.db.pool().get()).await.expect("connection");
    let user: uuid::Uuid = user.parse().expect("a uuid");
    within(client.query(
        "select id from transactions where user_id = $1 and simulated = $2",
        &[&user, &simulated],
    ))
    .await
    .expect("ids")
    .iter()
    .map(|row| row.get::<_, uuid::Uuid>(0).to_string())
    .collect()
}

/// Waits until `user` has had no new transaction for `quiet`: every feed of
/// theirs has stopped.
async fn settled_count(app: &TestApp, user: &str, quiet: Duration) -> i64 {
    within(async {
        let mut last = app.count_of(user).await;
        loop {
            tokio::time::sleep(quiet).await;
            let now = app.count_of(user).await;
            if now == last {
                return now;
            }
            last = now;
        }
    })
    .await
}

#[tokio::test]
async fn with_an_api_key_a_stream_without_the_key_writes_nothing() {
    let app = spawn_app_with(|s| {
        s.http.api_key = "s3cret-key".into();
        s.simulator.interval_ms = 100;
    })
    .await;
    let users: Vec<String> = (0..5).map(|_| new_user()).collect();
    let mut streams = Vec::new();
    for user in &users {
        streams.push(user_stream(&app, user, None).await);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(streams);
    for user in &users {
        assert_eq!(app.count_of(user).await, 0, "rows stored for {user}");
    }
    let listed = app.users().await;
    assert_eq!(listed.body["users"], json!([]), "{}", listed.body);
}

#[tokio::test]
async fn with_an_api_key_only_a_stream_that_sends_it_simulates_and_the_others_see_real_ones() {
    let key = "s3cret-key";
    let app = spawn_app_with(|s| {
        s.http.api_key = key.into();
        s.simulator.interval_ms = 100;
    })
    .await;
    let user = new_user();
    let mut reader = user_stream(&app, &user, None).await;
    let posted = app
        .post_with(
            "/transactions",
            &json!({"user_id": user, "amount": "42.00"}),
            |request| request.header("X-API-Key", key),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.body);
    let event = reader.next_transaction(WAIT).await.expect("the posted one");
    assert_eq!(event.json(), posted.body);

    // EventSource cannot send headers, but other clients can.
    let client = reqwest::Client::new();
    let response = within(
        client
            .get(format!("{}/sse/transactions/{user}", app.address))
            .header("Authorization", format!("Bearer {key}"))
            .send(),
    )
    .await
    .expect("stream opens");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response;
    within(async {
        let mut text = String::new();
        while !text.contains("\"simulated\":true") {
            let chunk = body.chunk().await.expect("readable").expect("open");
            text.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    })
    .await;
    drop(body);
    // The keyless reader saw no simulated transaction.
    let seen = transactions(reader.collect_for(Duration::from_millis(500)).await);
    assert!(
        seen.iter()
            .all(|e| e.json()["meta_data"]["simulated"] == false),
        "{seen:?}"
    );
}

#[tokio::test]
async fn with_the_simulation_off_a_users_stream_writes_nothing_and_carries_their_real_ones() {
    let app = spawn_app_with(|s| {
        s.simulator.enabled = false;
        s.simulator.interval_ms = 100;
    })
    .await;
    let (user, stranger) = (new_user(), new_user());
    let mut stream = user_stream(&app, &user, None).await;
    let mut idle = user_stream(&app, &stranger, None).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app.count_of(&user).await, 0);
    assert_eq!(app.count_of(&stranger).await, 0);
    let posted = app
        .post("/transactions", &json!({"user_id": user, "amount": "7.50"}))
        .await;
    assert_eq!(posted.status, StatusCode::CREATED);
    let event = stream.next_transaction(WAIT).await.expect("the posted one");
    assert_eq!(event.json(), posted.body);
    // Its id is a plain position, resumable as on the all-users stream.
    let id = event.id.expect("an id");
    assert!(!id.contains('.'), "{id}");
    assert!(
        idle.next_transaction(Duration::from_millis(300))
            .await
            .is_none()
    );
    assert_eq!(app.count_of(&stranger).await, 0);
}

#[tokio::test]
async fn simulated_transactions_never_enter_the_window_posted_ones_are_judged_against() {
    let app = spawn_app_with(|s| s.simulator.interval_ms = 100).await;
    let user = new_user();
    for _ in 0..10 {
        let reply = app
            .post("/transactions", &json!({"user_id": user, "amount": "100"}))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let mut stream = user_stream(&app, &user, None).await;
    for _ in 0..8 {
        stream.next_transaction(WAIT).await.expect("simulated");
    }
    drop(stream);
    settled_count(&app, &user, Duration::from_millis(500)).await;
    let reply = app
        .post("/transactions", &json!({"user_id": user, "amount": "100"}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    // Judged against the ten posted amounts only.
    assert_eq!(reply.body["meta_data"]["window_len"], 10, "{}", reply.body);
    assert_eq!(reply.body["meta_data"]["baseline"], 100.0, "{}", reply.body);
}

#[tokio::test]
async fn simulated_transactions_are_marked_in_storage_and_in_their_json() {
    let app = spawn_app_with(|s| s.simulator.interval_ms = 100).await;
    let user = new_user();
    let posted = app
        .post(
            "/transactions",
            &json!({"user_id": user, "amount": "12.50"}),
        )
        .await;
    assert_eq!(
        posted.body["meta_data"]["simulated"], false,
        "{}",
        posted.body
    );
    let mut stream = user_stream(&app, &user, None).await;
    let event = stream.next_transaction(WAIT).await.expect("simulated");
    assert_eq!(
        event.json()["meta_data"]["simulated"],
        true,
        "{}",
        event.data
    );
    drop(stream);
    settled_count(&app, &user, Duration::from_millis(500)).await;

    let posted_id = posted.body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        stored_ids(&app, &user, false).await,
        HashSet::from([posted_id.clone()])
    );
    let simulated = stored_ids(&app, &user, true).await;
    assert!(simulated.contains(&id_of(&event)));
    // The history says the same.
    let page = app
        .transactions(&[("user_id", &user), ("limit", "1000")])
        .await;
    for row in page.body["transactions"].as_array().expect("rows") {
        let id = row["id"].as_str().expect("id");
        assert_eq!(row["meta_data"]["simulated"], id != posted_id, "{row}");
    }
}

#[tokio::test]
async fn each_connection_drives_its_own_feed_and_receives_only_that() {
    let app = spawn_app_with(|s| s.simulator.interval_ms = 200).await;
    let user = new_user();
    let mut a = user_stream(&app, &user, None).await;
    let mut b = user_stream(&app, &user, None).await;
    let span = Duration::from_secs(3);
    let (seen_a, seen_b) = tokio::join!(a.collect_for(span), b.collect_for(span));
    drop((a, b));
    let seen_a: Vec<String> = transactions(seen_a).iter().map(id_of).collect();
    let seen_b: Vec<String> = transactions(seen_b).iter().map(id_of).collect();
    // About one transaction per 200 ms each.
    for seen in [&seen_a, &seen_b] {
        assert!((10..=18).contains(&seen.len()), "{} events", seen.len());
        assert_eq!(
            seen.iter().collect::<HashSet<_>>().len(),
            seen.len(),
            "repeats"
        );
    }
    let (set_a, set_b): (HashSet<_>, HashSet<_>) =
        (seen_a.into_iter().collect(), seen_b.into_iter().collect());
    assert!(set_a.is_disjoint(&set_b), "both got the same transactions");
    settled_count(&app, &user, Duration::from_millis(500)).await;
    let stored = stored_ids(&app, &user, true).await;
    assert!(set_a.is_subset(&stored) && set_b.is_subset(&stored));
    // Both feeds stored everything they sent, and little more: a feed stops
    // once the server notices its client left, which takes up to a second
    // (sse/hangup.rs), so each may make up to six more at one per 200 ms.
    let extra = stored.len() - set_a.len() - set_b.len();
    assert!(extra <= 12, "{extra} made after the clients left");
}

#[tokio::test]
async fn resuming_a_feed_delivers_what_it_published_before_the_disconnect_was_noticed() {
    let app = spawn_app_with(|s| s.simulator.interval_ms = 100).await;
    let user = new_user();
    let mut first = user_stream(&app, &user, None).await;
    let seen = first.next_transaction(WAIT).await.expect("first event");
    let last_id = seen.id.clone().expect("an event id");
    // The client stops reading (its feed goes on into the socket), then
    // goes away; the server notices at its next writes.
    tokio::time::sleep(Duration::from_millis(800)).await;
    drop(first);
    settled_count(&app, &user, Duration::from_millis(500)).await;
    let published: HashSet<String> = stored_ids(&app, &user, true).await;
    assert!(published.len() >= 5, "{} published", published.len());

    // A newcomer without Last-Event-ID gets a feed of its own, none of
    // the first one's transactions.
    let mut newcomer = user_stream(&app, &user, None).await;
    let fresh = transactions(newcomer.collect_for(Duration::from_millis(600)).await);
    assert!(!fresh.is_empty());
    assert!(fresh.iter().all(|e| !published.contains(&id_of(e))));
    drop(newcomer);

    let mut resumed = user_stream(&app, &user, Some(&last_id)).await;
    let events = transactions(resumed.collect_for(Duration::from_millis(1500)).await);
    let replayed: Vec<String> = events
        .iter()
        .map(id_of)
        .filter(|id| published.contains(id))
        .collect();
    let mut expected: Vec<String> = published
        .iter()
        .filter(|id| **id != id_of(&seen))
        .cloned()
        .collect();
    // UUIDv7 ids of one feed sort as they were made.
    expected.sort();
    assert_eq!(
        replayed, expected,
        "everything after {last_id}, once, in order"
    );
    // Then the resumed stream goes on with new transactions.
    assert!(
        events.len() > replayed.len(),
        "nothing new after the replay"
    );
}

/// The old service's web client (Vue), as the issue describes it: each
/// page of history it loads opens one more `EventSource` on
/// `/sse/transactions/{user_id}` and never closes the earlier ones; every
/// message becomes a row. It is served from an origin of its own, as it
/// was.
const OLD_CLIENT: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>old client</title></head>
<body><table><tbody id="rows"></tbody></table>
<script>
const api = new URLSearchParams(location.search).get('api');
const user = new URLSearchParams(location.search).get('user');
const rows = [];
let cursor = '';
window.rows = rows;
window.loadPage = async function () {
  const params = new URLSearchParams({user_id: user, limit: '5'});
  if (cursor) params.set('cursor', cursor);
  const page = await (await fetch(`${api}/transactions?${params}`)).json();
  cursor = page.cursor;
  rows.push(...page.transactions);
  const source = new EventSource(`${api}/sse/transactions/${user}`);
  source.onmessage = (message) => {
    rows.unshift(JSON.parse(message.data));
    const tr = document.createElement('tr');
    tr.textContent = rows[0].id;
    document.getElementById('rows').prepend(tr);
  };
  return page.transactions.length;
};
</script></body></html>"#;

#[tokio::test]
async fn the_old_web_client_unchanged_shows_each_live_row_once() {
    let app = spawn_app_with(|s| s.simulator.interval_ms = 250).await;
    let user = new_user();
    for i in 0..20 {
        let reply = app
            .post(
                "/transactions",
                &json!({"user_id": user, "amount": format!("{}.00", 10 + i)}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    let page_origin = crate::browser::serve_page(OLD_CLIENT).await;
    let browser = crate::browser::Browser::start().await;
    let page = browser.client.clone();
    browser
        .run(async {
            let url = format!("{page_origin}/?api={}&user={user}", app.address);
            within(page.goto(&url)).await.expect("page loads");
            // Three pages of history: three EventSources left open.
            for _ in 0..3 {
                let loaded = within(page.execute_async(
                    "const done = arguments[arguments.length - 1]; \
                     window.loadPage().then(done, (e) => done(String(e)));",
                    vec![],
                ))
                .await
                .expect("a page loads");
                assert_eq!(loaded, json!(5), "history page: {loaded}");
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
            let rows = within(page.execute("return window.rows.map(r => r.id);", vec![]))
                .await
                .expect("rows");
            let ids: Vec<String> = rows
                .as_array()
                .expect("an array")
                .iter()
                .map(|v| v.as_str().expect("an id").to_owned())
                .collect();
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for id in &ids {
                *counts.entry(id).or_default() += 1;
            }
            let repeated: Vec<(&&str, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
            assert!(
                repeated.is_empty(),
                "rows shown more than once: {repeated:?}"
            );
            // 15 history rows, and live rows from three feeds.
            assert!(ids.len() >= 15 + 3 * 5, "{} rows", ids.len());
        })
        .await;
}

#[tokio::test]
async fn a_feed_streams_last_event_id_is_checked_like_any_other() {
    let app = spawn_app_with(|s| s.simulator.interval_ms = 100).await;
    let user = new_user();
    for id in [
        "18446744073709551615-0.00000000000000ff",
        "1-0.not-a-feed",
        "1-0.",
    ] {
        let stream = open(
            &format!("{}/sse/transactions/{user}", app.address),
            Some(id),
        )
        .await;
        assert_eq!(stream.status, StatusCode::UNPROCESSABLE_ENTITY, "{id}");
    }
    // Nothing was simulated for the refused streams.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.count_of(&user).await, 0);
}
