//! The sharded event log through the server: an idle process reads no
//! events, the all-users stream resumes exactly across shards, and ids that
//! cannot resume exactly say so.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};
use crate::live::new_user;
use crate::outage::OwnRedis;
use crate::sse_client::{SseEvent, SseStream, open};

const WAIT: Duration = Duration::from_secs(10);

async fn all_stream(app: &TestApp, query: &str, last_event_id: Option<&str>) -> SseStream {
    let stream = open(
        &format!("{}/sse/transactions{query}", app.address),
        last_event_id,
    )
    .await;
    assert_eq!(stream.status, StatusCode::OK);
    stream
}

/// Posts `rounds` transactions for each of `users` (round by round) in one
/// batch; answers their ids in order.
async fn post_rounds(app: &TestApp, users: &[String], rounds: usize) -> Vec<(String, String)> {
    let items: Vec<Value> = (0..rounds)
        .flat_map(|round| {
            users
                .iter()
                .map(move |user| json!({"user_id": user, "amount": format!("{}.00", 10 + round)}))
        })
        .collect();
    let reply = app
        .post("/transactions/batch", &json!({ "transactions": items }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["results"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            let transaction = &item["transaction"];
            (
                transaction["user_id"].as_str().expect("user").to_owned(),
                transaction["id"].as_str().expect("id").to_owned(),
            )
        })
        .collect()
}

/// `INFO commandstats` calls of each command, by lowercase name, asked
/// with `redis-cli` of the Redis at `url` (`redis://host:port`).
async fn command_calls(url: &str) -> HashMap<String, u64> {
    let port = url.rsplit(':').next().expect("a port");
    let output = tokio::process::Command::new("redis-cli")
        .args(["-p", port, "INFO", "commandstats"])
        .output()
        .await
        .expect("redis-cli is installed (see docs/testing.md)");
    assert!(output.status.success(), "redis-cli failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let (name, stats) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats
                .split(',')
                .find_map(|part| part.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

const READS: [&str; 3] = ["xread", "xrevrange", "xrange"];

#[tokio::test]
async fn an_idle_process_reads_no_events_until_a_stream_opens_and_after_it_closes() {
    let redis = OwnRedis::start().await;
    let url = redis.url();
    // A Redis of its own (also in the cluster run), whose command counts
    // no other test touches.
    let app = spawn_app_with(|settings| {
        settings.redis.url = url.clone();
        settings.redis.cluster_nodes = Vec::new();
    })
    .await;
    let users: Vec<String> = (0..40).map(|_| new_user()).collect();
    post_rounds(&app, &users, 3).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let calls = command_calls(&url).await;
    assert!(calls.get("xadd").is_some_and(|&n| n >= 1), "{calls:?}");
    for read in READS {
        assert_eq!(
            calls.get(read),
            None,
            "an idle process called {read}: {calls:?}"
        );
    }

    // A stream of one user: its relay reads, and the events come.
    let user = &users[0];
    let mut stream = all_stream(&app, &format!("?user_id={user}"), None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    post_rounds(&app, std::slice::from_ref(user), 1).await;
    stream.next_transaction(WAIT).await.expect("its event");
    let calls = command_calls(&url).await;
    assert!(calls.get("xread").is_some_and(|&n| n >= 1), "{calls:?}");
    drop(stream);

    // Once it closed, reading stops again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = command_calls(&url).await;
    post_rounds(&app, &users, 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = command_calls(&url).await;
    for read in READS {
        assert_eq!(
            before.get(read),
            after.get(read),
            "{read} called while idle"
        );
    }
}

/// 24 new users, three of each of `shards` shards (random users leave a
/// shard empty about one time in three).
fn three_users_in_each_of(shards: usize) -> Vec<String> {
    let mut per_shard = vec![0; shards];
    let mut users = Vec::new();
    while users.len() < 3 * shards {
        let user = new_user();
        let id = txwatch_domain::UserId(user.parse().expect("a uuid"));
        let shard = txwatch_cache::shard_of(id, shards);
        if per_shard[shard] < 3 {
            per_shard[shard] += 1;
            users.push(user);
        }
    }
    users
}

#[tokio::test]
async fn the_all_users_stream_resumes_across_shards_with_exactly_the_missed_events() {
    let app = spawn_app_with(|_| {}).await;
    assert_eq!(app.event_shards, 8);
    let users = three_users_in_each_of(8);
    let mut stream = all_stream(&app, "", None).await;
    let first = post_rounds(&app, &users, 3).await;
    let mut seen: Vec<SseEvent> = Vec::new();
    while seen.len() < first.len() {
        seen.push(stream.next_transaction(WAIT).await.expect("an event"));
    }
    drop(stream);
    let shards: HashSet<usize> = crate::helpers::every_event(&app.redis, 8)
        .await
        .iter()
        .map(|event| event.shard)
        .collect();
    assert_eq!(shards.len(), 8, "24 users' events in every shard");

    // Resume after the 30th event: the rest of the first batch and all of
    // the second, each once, each user's in order.
    let resume_at = 30;
    let last_id = seen[resume_at - 1].id.clone().expect("an id");
    assert!(last_id.len() <= 48, "a short id: {last_id}");
    let second = post_rounds(&app, &users, 2).await;
    let mut resumed = all_stream(&app, "", Some(&last_id)).await;
    let expected = first.len() - resume_at + second.len();
    let mut got: Vec<(String, String)> = Vec::new();
    while got.len() < expected {
        let event = resumed.next(WAIT).await.expect("an event");
        assert!(
            event.is_transaction() || event.comment.is_some(),
            "{event:?}"
        );
        if event.is_transaction() {
            let body = event.json();
            got.push((
                body["user_id"].as_str().expect("user").to_owned(),
                body["id"].as_str().expect("id").to_owned(),
            ));
        }
    }
    assert!(
        resumed
            .next_transaction(Duration::from_millis(500))
            .await
            .is_none(),
        "nothing more"
    );
    let already: HashSet<String> = seen[..resume_at]
        .iter()
        .map(|event| event.json()["id"].as_str().expect("id").to_owned())
        .collect();
    let mut want: Vec<(String, String)> = first
        .iter()
        .filter(|(_, id)| !already.contains(id))
        .chain(&second)
        .cloned()
        .collect();
    for user in &users {
        let of = |list: &[(String, String)]| -> Vec<String> {
            list.iter()
                .filter(|(owner, _)| owner == user)
                .map(|(_, id)| id.clone())
                .collect()
        };
        assert_eq!(
            of(&got),
            of(&want),
            "user {user}: exactly the missed, in order"
        );
    }
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn ids_that_cannot_resume_the_all_users_stream_get_a_notice_or_a_422() {
    let eight = spawn_app_with(|_| {}).await;
    let four = spawn_app_with(|settings| settings.redis.event_shards = 4).await;
    let user = new_user();
    let mut stream = all_stream(&eight, "", None).await;
    post_rounds(&eight, std::slice::from_ref(&user), 1).await;
    let event = stream.next_transaction(WAIT).await.expect("an event");
    let all_users_id = event.id.expect("an id");

    for id in [all_users_id.as_str(), "1725969600123-7"] {
        let mut resumed = all_stream(&four, "", Some(id)).await;
        let notice = resumed
            .next_where(|event| event.event.as_deref() == Some("error") || event.is_transaction())
            .await;
        assert_eq!(notice.event.as_deref(), Some("error"), "{id}");
        assert_eq!(notice.json()["error"], "events_lost", "{id}");
        // ...and it goes on with new events.
        post_rounds(&four, std::slice::from_ref(&user), 1).await;
        resumed
            .next_transaction(WAIT)
            .await
            .expect("live events after the notice");
    }

    for id in ["not-an-id", "AQ", "Zm9v"] {
        let reply = open(&format!("{}/sse/transactions", four.address), Some(id)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{id}");
    }
    // An all-users id on a stream of one user is not an id of that stream.
    let reply = open(
        &format!("{}/sse/transactions?user_id={user}", eight.address),
        Some(&all_users_id),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_user_id_from_another_shard_gets_a_notice_instead_of_a_silent_gap() {
    let app = spawn_app_with(|_| {}).await;
    let log = txwatch_cache::EventLog::new(app.redis.pool().clone(), app.redis.keys(), 1000, 8);
    let user = new_user();
    let shard = log.shard_of(user.parse().expect("uuid"));
    // Another user whose events are in another shard.
    let other = std::iter::repeat_with(new_user)
        .find(|other| log.shard_of(other.parse().expect("uuid")) != shard)
        .expect("some user in another shard");
    post_rounds(&app, &[user.clone(), other.clone()], 1).await;
    let mut others = all_stream(&app, &format!("?user_id={other}"), None).await;
    post_rounds(&app, std::slice::from_ref(&other), 1).await;
    let foreign_id = others
        .next_transaction(WAIT)
        .await
        .expect("event")
        .id
        .expect("id");

    let mut stream = all_stream(&app, &format!("?user_id={user}"), Some(&foreign_id)).await;
    let notice = stream
        .next_where(|event| event.event.as_deref() == Some("error") || event.is_transaction())
        .await;
    assert_eq!(notice.event.as_deref(), Some("error"));
    assert_eq!(notice.json()["error"], "events_lost");
    post_rounds(&app, std::slice::from_ref(&user), 1).await;
    let event = stream
        .next_transaction(WAIT)
        .await
        .expect("live events after the notice");
    assert_eq!(event.json()["user_id"], user.as_str());

    // The user's own id resumes without a notice.
    let own_id = event.id.expect("id");
    drop(stream);
    post_rounds(&app, std::slice::from_ref(&user), 1).await;
    let mut resumed = all_stream(&app, &format!("?user_id={user}"), Some(&own_id)).await;
    let next = resumed
        .next_where(|event| event.event.as_deref() == Some("error") || event.is_transaction())
        .await;
    assert!(next.is_transaction(), "{next:?}");
}
