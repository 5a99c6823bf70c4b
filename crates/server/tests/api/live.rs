//! Live streams: events with ids, resuming, the all-users stream, and a
//! connection's simulated feed (more of which in `simulation`).

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app, spawn_app_with, within};
use crate::sse_client::{SseEvent, SseStream, open};

pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) fn new_user() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `GET /sse/transactions/{user}`, answered 200.
pub(crate) async fn user_stream(
    app: &TestApp,
    user: &str,
    last_event_id: Option<&str>,
) -> SseStream {
    let stream = open(
        &format!("{}/sse/transactions/{user}", app.address),
        last_event_id,
    )
    .await;
    assert_eq!(stream.status, StatusCode::OK);
    stream
}

async fn all_stream(app: &TestApp, query: &str, last_event_id: Option<&str>) -> SseStream {
    let stream = open(
        &format!("{}/sse/transactions{query}", app.address),
        last_event_id,
    )
    .await;
    assert_eq!(stream.status, StatusCode::OK);
    stream
}

async fn post(app: &TestApp, user: &str, amount: &str) -> serde_json::Value {
    let reply = app
        .post("/transactions", &json!({"user_id": user, "amount": amount}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

#[tokio::test]
async fn a_stream_opens_with_a_comment_and_the_headers_proxies_need() {
    let app = spawn_app().await;
    let mut stream = all_stream(&app, "", None).await;
    assert_eq!(
        stream.headers["content-type"].to_str().expect("text"),
        "text/event-stream"
    );
    assert_eq!(stream.headers["x-accel-buffering"], "no");
    assert_eq!(stream.headers["cache-control"], "no-cache");
    let first = stream.next(WAIT).await.expect("something at once");
    assert!(first.comment.is_some(), "{first:?}");
}

#[tokio::test]
async fn a_connections_simulated_feed_stops_when_it_leaves() {
    let app = spawn_app_with(|s| s.simulator.interval_ms = 200).await;
    let user = new_user();
    let mut stream = user_stream(&app, &user, None).await;
    stream
        .next_transaction(WAIT)
        .await
        .expect("a simulated event");
    drop(stream);
    // Let the server notice the closed connection and the driver its tick.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let settled = app.count_of(&user).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(app.count_of(&user).await, settled, "still generating");
}

#[tokio::test]
async fn posted_and_simulated_transactions_reach_the_filtered_all_streams() {
    let app = spawn_app_with(|s| s.simulator.interval_ms = 3_600_000).await;
    let (alice, bob) = (new_user(), new_user());
    let mut everything = all_stream(&app, "", None).await;
    let mut alice_only = all_stream(&app, &format!("?user_id={alice}"), None).await;
    let mut anomalies = all_stream(&app, "?anomalies_only=true", None).await;
    // Viewing alice drives a simulated feed of this connection's own; with
    // an hour's interval it makes one transaction now and no more during
    // the test.
    let mut alice_stream = user_stream(&app, &alice, None).await;
    let simulated = alice_stream
        .next_transaction(WAIT)
        .await
        .expect("first simulated");

    let mut posted = Vec::new();
    for _ in 0..10 {
        posted.push(post(&app, &bob, "100").await);
    }
    let spike = post(&app, &bob, "100000").await;
    assert_eq!(spike["meta_data"]["is_anomaly"], true);
    let alices = post(&app, &alice, "5").await;

    // The feed's stream carries its feed only, not what clients post.
    assert!(
        alice_stream
            .next_transaction(Duration::from_millis(500))
            .await
            .is_none()
    );

    let mut seen = Vec::new();
    while seen.len() < 13 {
        let event = everything.next_transaction(WAIT).await.expect("all events");
        seen.push(event.json());
    }
    assert!(seen.contains(&simulated.json()));
    assert!(seen.contains(&spike));
    assert!(seen.contains(&alices));

    let first = alice_only.next_transaction(WAIT).await.expect("alice's");
    assert_eq!(first.json(), simulated.json());
    let second = alice_only.next_transaction(WAIT).await.expect("alice's");
    assert_eq!(second.json(), alices);

    let flagged = anomalies.next_transaction(WAIT).await.expect("the spike");
    assert_eq!(flagged.json(), spike);
    assert!(
        anomalies
            .next_transaction(Duration::from_millis(500))
            .await
            .is_none(),
        "only anomalies"
    );
}

#[tokio::test]
async fn reconnecting_with_last_event_id_delivers_every_missed_event_once_in_order() {
    // With the simulation off the per-user route streams the user's real
    // transactions, and resumes like the all-users stream.
    let app = spawn_app_with(|s| s.simulator.enabled = false).await;
    let user = new_user();
    let mut stream = all_stream(&app, &format!("?user_id={user}"), None).await;
    post(&app, &user, "1").await;
    let seen = stream.next_transaction(WAIT).await.expect("first event");
    let last_id = seen.id.clone().expect("an id");
    drop(stream);

    let mut missed = Vec::new();
    for i in 0..50 {
        missed.push(post(&app, &user, &format!("{}", i + 2)).await);
    }
    // Someone else's events in between are not ours to receive.
    post(&app, &new_user(), "3").await;

    let mut resumed = all_stream(&app, &format!("?user_id={user}"), Some(&last_id)).await;
    let mut got = Vec::new();
    let mut ids = Vec::new();
    while got.len() < 50 {
        let event = resumed
            .next_transaction(WAIT)
            .await
            .expect("a missed event");
        ids.push(event.id.clone().expect("an id"));
        got.push(event.json());
    }
    assert_eq!(got, missed);
    // Then live ones, and nothing twice.
    let live = post(&app, &user, "99").await;
    let next = resumed.next_transaction(WAIT).await.expect("live event");
    assert_eq!(next.json(), live);
    assert!(
        resumed
            .next_transaction(Duration::from_millis(300))
            .await
            .is_none()
    );
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());

    // The per-user route resumes the same way.
    let mut by_route = user_stream(&app, &user, Some(&ids[47])).await;
    let a = by_route.next_transaction(WAIT).await.expect("missed 49th");
    let b = by_route.next_transaction(WAIT).await.expect("missed 50th");
    assert_eq!(
        (a.json(), b.json()),
        (missed[48].clone(), missed[49].clone())
    );
}

#[tokio::test]
async fn bad_stream_parameters_get_422() {
    let app = spawn_app().await;
    for (path, code) in [
        ("/sse/transactions/not-a-uuid", "invalid_parameter"),
        ("/sse/transactions?user_id=nope", "invalid_parameter"),
        (
            "/sse/transactions?anomalies_only=maybe",
            "invalid_parameter",
        ),
        ("/sse/transactions?colour=red", "malformed_query"),
    ] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(reply.body["error"], code, "{path}");
    }
    let reply = app
        .client
        .get(format!("{}/sse/transactions", app.address))
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .expect("sent");
    assert_eq!(reply.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_catches_up_without_skipping_or_repeating() {
    // A live channel of 16 events: the relay hands over up to 1,000 at a
    // time, so this subscriber falls behind again and again.
    let app = spawn_app_with(|s| s.http.stream_buffer = 16).await;
    let user = new_user();
    // This client reads nothing while 8,000 events are published.
    let mut stream = all_stream(&app, &format!("?user_id={user}"), None).await;
    stream.next(WAIT).await.expect("greeting");
    let mut posted: Vec<String> = Vec::new();
    for batch in 0..8 {
        let items: Vec<serde_json::Value> = (0..1000)
            .map(|i| json!({"user_id": user, "amount": format!("{}.{:02}", batch + 1, i % 100)}))
            .collect();
        let reply = app
            .post("/transactions/batch", &json!({"transactions": items}))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        posted.extend(
            reply.body["results"]
                .as_array()
                .expect("results")
                .iter()
                .map(|r| r["transaction"]["id"].as_str().expect("id").to_owned()),
        );
    }
    let mut received: Vec<String> = Vec::with_capacity(posted.len());
    let mut event_ids: Vec<String> = Vec::with_capacity(posted.len());
    while received.len() < posted.len() {
        let event = stream
            .next_transaction(WAIT)
            .await
            .unwrap_or_else(|| panic!("only {} of {} arrived", received.len(), posted.len()));
        received.push(event.json()["id"].as_str().expect("id").to_owned());
        event_ids.push(event.id.expect("an event id"));
    }
    assert_eq!(received, posted, "every event once, in order");
    assert!(
        stream
            .next_transaction(Duration::from_millis(300))
            .await
            .is_none()
    );
    let ordered: Vec<txwatch_cache::EventId> = event_ids
        .iter()
        .map(|id| id.parse().expect("an event id"))
        .collect();
    assert!(ordered.windows(2).all(|pair| pair[0] < pair[1]));
}

/// Streams opened and closed while transactions keep arriving: the process's
/// relay goes idle (reading no events) whenever the last stream closes, and
/// each new stream must still get every event after its start, then live
/// ones, with no gap at the hand-over from its catch-up read to the relay.
#[tokio::test]
async fn streams_opened_while_the_relay_is_idle_miss_nothing_after_their_start() {
    use rand::{Rng, SeedableRng};
    use txwatch_cache::EventId;

    // Every event kept, so the check below sees all of them.
    let app = spawn_app_with(|settings| settings.redis.event_retention = 1_000_000).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poster = {
        let (client, address, stop) = (app.client.clone(), app.address.clone(), stop.clone());
        tokio::spawn(async move {
            let users: Vec<String> = (0..10).map(|_| new_user()).collect();
            let mut posted = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let items: Vec<serde_json::Value> = (0..20)
                    .map(|i| json!({"user_id": users[(posted + i) % users.len()], "amount": "12.50"}))
                    .collect();
                let reply = client
                    .post(format!("{address}/transactions/batch"))
                    .json(&json!({ "transactions": items }))
                    .send()
                    .await
                    .expect("batch sent");
                assert_eq!(reply.status(), StatusCode::OK);
                posted += 20;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            posted
        })
    };

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    // (resumed after, ids received) per stream.
    // (SSE id, transaction id) of one event received.
    type Received = (String, String);
    let mut sessions: Vec<(Option<String>, Vec<Received>)> = Vec::new();
    let mut last_seen: Option<String> = None;
    for session in 0..16 {
        // Every other stream resumes from the last id the previous one saw.
        let resume = if session % 2 == 1 {
            last_seen.clone()
        } else {
            None
        };
        let mut stream = all_stream(&app, "", resume.as_deref()).await;
        let span = Duration::from_millis(rng.random_range(50..250));
        // (SSE id, transaction id) of each event received.
        let ids: Vec<(String, String)> = stream
            .collect_for(span)
            .await
            .into_iter()
            .filter(SseEvent::is_transaction)
            .map(|event| {
                let txn = event.json()["id"].as_str().expect("an id").to_owned();
                (event.id.expect("transactions carry ids"), txn)
            })
            .collect();
        drop(stream);
        assert!(!ids.is_empty(), "stream {session} received nothing");
        last_seen = ids.last().map(|(id, _)| id.clone());
        sessions.push((resume, ids));
        // Long enough, often, for the relay to go idle and move its position.
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let posted = within(poster).await.expect("poster");

    let stored = crate::helpers::every_event(&app.redis, app.event_shards).await;
    assert_eq!(
        stored.len(),
        posted,
        "every posted transaction is on the event log"
    );
    // Where each transaction is: (shard, id).
    let place: std::collections::HashMap<String, (usize, EventId)> = stored
        .iter()
        .map(|event| {
            let body: serde_json::Value = serde_json::from_slice(&event.data).expect("JSON");
            (
                body["id"].as_str().expect("an id").to_owned(),
                (event.shard, event.id),
            )
        })
        .collect();
    let positions =
        |id: &str| txwatch_http::all_users_position(id).expect("an all-users stream id");

    for (session, (resume, got)) in sessions.iter().enumerate() {
        let (first_id, first_txn) = got.first().expect("not empty");
        let (last_id, _) = got.last().expect("not empty");
        let last = positions(last_id);
        // Where the stream started in each shard: after the resumed id, or
        // (a new stream) where the first event's id says the other shards
        // were; in the first event's own shard, at that event.
        let (start, inclusive) = match resume {
            Some(after) => (positions(after), None),
            None => (positions(first_id), Some(place[first_txn])),
        };
        for shard in 0..app.event_shards {
            let got_here: Vec<EventId> = got
                .iter()
                .map(|(_, txn)| place[txn])
                .filter(|(at, _)| *at == shard)
                .map(|(_, id)| id)
                .collect();
            let expected: Vec<EventId> = stored
                .iter()
                .filter(|event| event.shard == shard)
                .map(|event| event.id)
                .filter(|id| match inclusive {
                    Some((first_shard, first)) if first_shard == shard => *id >= first,
                    _ => start[shard].is_none_or(|start| *id > start),
                })
                .filter(|id| last[shard].is_some_and(|last| *id <= last))
                .collect();
            assert_eq!(
                got_here, expected,
                "stream {session} (resume {resume:?}), shard {shard}"
            );
        }
    }
}

#[tokio::test]
async fn a_batchs_answer_carries_each_created_transaction_as_its_stream_event_does() {
    let app = spawn_app().await;
    let user = new_user();
    let mut stream = all_stream(&app, &format!("?user_id={user}"), None).await;
    let items: Vec<serde_json::Value> = ["10", "20.5", "99999", "not money", "3"]
        .iter()
        .map(|amount| json!({"user_id": user, "amount": amount}))
        .collect();
    let reply = app
        .post("/transactions/batch", &json!({ "transactions": items }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let answered: Vec<serde_json::Value> = reply.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|item| item["status"] == 201)
        .map(|item| item["transaction"].clone())
        .collect();
    assert_eq!(answered.len(), 4);
    for expected in &answered {
        let event = stream.next_transaction(WAIT).await.expect("an event");
        assert_eq!(&event.json(), expected);
    }

    let empty = app
        .post("/transactions/batch", &json!({ "transactions": [] }))
        .await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.body);
    assert_eq!(
        empty.body,
        json!({"created": 0, "existing": 0, "rejected": 0, "results": []})
    );
}

#[tokio::test]
async fn a_last_event_id_from_the_future_is_refused_with_422() {
    let app = spawn_app().await;
    post(&app, &new_user(), "1").await;
    let hour_ahead = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let hour_ahead = format!("{}-0", hour_ahead.unix_timestamp_nanos() / 1_000_000);
    for id in ["18446744073709551615-0", hour_ahead.as_str()] {
        for path in [
            "/sse/transactions".to_owned(),
            format!("/sse/transactions/{}", new_user()),
        ] {
            let reply = within(
                app.client
                    .get(format!("{}{path}", app.address))
                    .header("Last-Event-ID", id)
                    .send(),
            )
            .await
            .expect("sent");
            assert_eq!(
                reply.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{path} {id}"
            );
            let body: serde_json::Value = within(reply.json()).await.expect("json");
            assert_eq!(body["error"], "invalid_event_id", "{path} {id}");
        }
    }
}

#[tokio::test]
async fn a_last_event_id_newer_than_the_stream_keeps_is_announced_and_the_stream_goes_on() {
    // As after Redis lost its stream: the client's id is recent, but the
    // stream holds nothing as new.
    let app = spawn_app().await;
    let user = new_user();
    let recent = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    let recent = format!("{}-0", recent.unix_timestamp_nanos() / 1_000_000);
    let mut stream = all_stream(&app, &format!("?user_id={user}"), Some(&recent)).await;
    let notice = stream.next_where(|event| event.comment.is_none()).await;
    assert_eq!(notice.event.as_deref(), Some("error"), "{notice:?}");
    assert_eq!(notice.json()["error"], "events_lost", "{notice:?}");
    let posted = post(&app, &user, "4").await;
    let event = stream.next_transaction(WAIT).await.expect("the live event");
    assert_eq!(event.json(), posted);
}
