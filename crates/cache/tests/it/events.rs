use std::time::{Duration, Instant};

use deadpool_redis::redis;
use txwatch_cache::testing::TestRedis;
use txwatch_cache::{CacheConfig, CacheError, EventId, EventLog, FeedId, NewEvent, connect, ping};
use txwatch_domain::UserId;

use crate::{new_user, within};

fn log(redis: &TestRedis, retention: usize) -> EventLog {
    EventLog::new(redis.pool().clone(), redis.keys(), retention, 1)
}

fn event(user_id: UserId, is_anomaly: bool, data: &[u8]) -> NewEvent<'_> {
    NewEvent {
        user_id,
        is_anomaly,
        feed: None,
        data,
    }
}

/// Appends an entry with these fields by hand, as another writer might.
async fn xadd_raw(redis: &TestRedis, fields: &[(&str, &[u8])]) {
    let mut xadd = redis::cmd("XADD");
    xadd.arg(redis.keys().event_shard(0)).arg("*");
    for (name, value) in fields {
        xadd.arg(*name).arg(*value);
    }
    let mut connection = within(redis.pool().get()).await.expect("connection");
    within(xadd.query_async::<()>(&mut connection))
        .await
        .expect("xadd");
}

async fn stream_length(redis: &TestRedis) -> usize {
    let mut connection = within(redis.pool().get()).await.expect("connection");
    within(
        redis::cmd("XLEN")
            .arg(redis.keys().event_shard(0))
            .query_async(&mut connection),
    )
    .await
    .expect("xlen")
}

#[tokio::test]
async fn appended_events_read_back_in_order_with_their_user_flag_and_payload() {
    let redis = within(TestRedis::create()).await;
    let events = log(&redis, 1_000);
    let (alice, bob) = (new_user(), new_user());
    let payloads: [&[u8]; 3] = [br#"{"amount":"1.00"}"#, b"", b"\x00\xffbinary"];
    let ids = within(events.append(&[
        event(alice, false, payloads[0]),
        event(bob, true, payloads[1]),
        event(alice, true, payloads[2]),
    ]))
    .await
    .expect("append");
    assert_eq!(ids.len(), 3);
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "{ids:?}");

    let read = within(events.read_after(0, EventId::ZERO, 10, None))
        .await
        .expect("read");
    let got: Vec<_> = read
        .iter()
        .map(|event| (event.id, event.user_id, event.is_anomaly, &event.data[..]))
        .collect();
    assert_eq!(
        got,
        [
            (ids[0], alice, false, payloads[0]),
            (ids[1], bob, true, payloads[1]),
            (ids[2], alice, true, payloads[2]),
        ]
    );

    let after_second = within(events.read_after(0, ids[1], 10, None))
        .await
        .expect("read after the second");
    assert_eq!(after_second, read[2..]);
    let limited = within(events.read_after(0, EventId::ZERO, 2, None))
        .await
        .expect("read two");
    assert_eq!(limited, read[..2]);
    assert_eq!(
        within(events.read_after(0, ids[2], 10, None))
            .await
            .expect("read after the last"),
        []
    );
    assert_eq!(within(events.last_id(0)).await.expect("last"), Some(ids[2]));
    assert_eq!(
        within(events.first_id(0)).await.expect("first"),
        Some(ids[0])
    );
    assert_eq!(within(events.append(&[])).await.expect("nothing"), []);
}

#[tokio::test]
async fn an_empty_or_missing_stream_has_no_ids_and_no_events() {
    let redis = within(TestRedis::create()).await;
    let events = log(&redis, 1_000);
    assert_eq!(within(events.last_id(0)).await.expect("last"), None);
    assert_eq!(within(events.first_id(0)).await.expect("first"), None);
    assert_eq!(
        within(events.read_after(0, EventId::ZERO, 10, None))
            .await
            .expect("read"),
        []
    );
    assert_eq!(
        within(events.read_after(0, EventId::ZERO, 10, Some(Duration::from_millis(50))))
            .await
            .expect("blocking read"),
        []
    );
}

#[tokio::test]
async fn a_blocked_read_returns_as_soon_as_an_event_is_appended() {
    let redis = within(TestRedis::create()).await;
    let events = log(&redis, 1_000);
    let user = new_user();
    let reader = {
        let events = events.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let read = events
                .read_after(0, EventId::ZERO, 10, Some(Duration::from_secs(8)))
                .await;
            (read, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ids = within(events.append(&[event(user, true, b"now")]))
        .await
        .expect("append");
    let (read, waited) = within(reader).await.expect("reader");
    let read = read.expect("blocking read");
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].id, ids[0]);
    assert_eq!(&read[0].data[..], b"now");
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
}

#[tokio::test]
async fn a_block_longer_than_the_response_timeout_is_not_an_error() {
    let redis = within(TestRedis::create()).await;
    let events = log(&redis, 1_000);
    let started = Instant::now();
    let read = within(events.read_after(0, EventId::ZERO, 10, Some(Duration::from_millis(2_500))))
        .await
        .expect("a quiet stream answers with no events, not a timeout");
    assert_eq!(read, []);
    assert!(started.elapsed() >= Duration::from_millis(2_400));
    // The connection went back to the pool in working order.
    within(ping(redis.pool())).await.expect("ping");
}

#[tokio::test]
async fn a_blocked_read_cut_short_does_not_hand_a_blocked_connection_back_to_the_pool() {
    let redis = within(TestRedis::create()).await;
    let config = CacheConfig {
        max_connections: 1,
        ..redis.config().clone()
    };
    let pool = connect(&config).expect("pool");
    let events = EventLog::new(pool.clone(), redis.keys(), 1_000, 1);
    within(ping(&pool)).await.expect("ping");
    assert_eq!(pool.status().size, 1);

    let cut_short = tokio::time::timeout(
        Duration::from_millis(100),
        events.read_after(0, EventId::ZERO, 10, Some(Duration::from_secs(5))),
    )
    .await;
    assert!(cut_short.is_err(), "the read should still be waiting");
    // Taken out of the pool rather than returned to it blocked.
    assert_eq!(pool.status().size, 0);
    let started = Instant::now();
    within(ping(&pool)).await.expect("ping on a new connection");
    assert!(started.elapsed() < Duration::from_secs(2));

    // A read that completes hands its connection back.
    within(events.read_after(0, EventId::ZERO, 10, Some(Duration::from_millis(10))))
        .await
        .expect("read");
    assert_eq!(pool.status().size, 1);
    assert_eq!(pool.status().available, 1);
}

#[tokio::test]
async fn the_stream_is_trimmed_to_about_its_retention() {
    let redis = within(TestRedis::create()).await;
    let events = log(&redis, 100);
    assert_eq!(events.retention(), 100);
    let user = new_user();
    let payload = [b'x'; 64];
    let batch: Vec<NewEvent<'_>> = (0..500).map(|_| event(user, false, &payload)).collect();
    let mut all = Vec::new();
    for _ in 0..10 {
        all.extend(within(events.append(&batch)).await.expect("append"));
    }
    assert_eq!(all.len(), 5_000);
    let length = stream_length(&redis).await;
    // `MAXLEN ~` drops whole nodes of (by default) 100 entries at a time.
    assert!((100..=1_000).contains(&length), "{length} entries kept");
    let first = within(events.first_id(0))
        .await
        .expect("first")
        .expect("some");
    assert!(first > all[0], "{first} was not trimmed past {}", all[0]);
    assert_eq!(
        within(events.last_id(0)).await.expect("last"),
        all.last().copied()
    );
    // A reader from the beginning gets what is left, oldest first.
    let read = within(events.read_after(0, EventId::ZERO, 10_000, None))
        .await
        .expect("read");
    assert_eq!(read.len(), length);
    assert_eq!(read[0].id, first);
}

#[tokio::test]
async fn an_event_key_holding_something_else_is_reported_as_corrupt() {
    let redis = within(TestRedis::create()).await;
    let events = log(&redis, 100);
    let key = redis.keys().event_shard(0);
    let mut connection = within(redis.pool().get()).await.expect("connection");
    within(
        redis::cmd("SET")
            .arg(&key)
            .arg("x")
            .query_async::<()>(&mut connection),
    )
    .await
    .expect("set");
    drop(connection);
    let user = new_user();
    match within(events.append(&[event(user, false, b"{}")])).await {
        Err(CacheError::CorruptEntry { key: at, .. }) => assert_eq!(at, key),
        other => panic!("append: expected CorruptEntry, got {other:?}"),
    }
    match within(events.read_after(0, EventId::ZERO, 10, Some(Duration::from_millis(10)))).await {
        Err(CacheError::CorruptEntry { key: at, .. }) => assert_eq!(at, key),
        other => panic!("read: expected CorruptEntry, got {other:?}"),
    }
    match within(events.last_id(0)).await {
        Err(CacheError::CorruptEntry { key: at, .. }) => assert_eq!(at, key),
        other => panic!("last id: expected CorruptEntry, got {other:?}"),
    }
}

#[tokio::test]
async fn an_entry_without_the_fields_this_log_writes_is_reported_as_corrupt() {
    let redis = within(TestRedis::create()).await;
    let events = log(&redis, 100);
    let key = redis.keys().event_shard(0);
    xadd_raw(
        &redis,
        &[("u", new_user().to_string().as_bytes()), ("d", b"{}")],
    )
    .await;
    match within(events.read_after(0, EventId::ZERO, 10, None)).await {
        Err(CacheError::CorruptEntry { key: at, reason }) => {
            assert_eq!(at, key);
            assert!(reason.contains("`a`"), "{reason}");
        }
        other => panic!("expected CorruptEntry, got {other:?}"),
    }
}

#[tokio::test]
async fn an_entry_of_the_earlier_three_field_form_is_still_read() {
    let redis = within(TestRedis::create()).await;
    let events = log(&redis, 100);
    let user = new_user();
    xadd_raw(
        &redis,
        &[
            ("u", user.to_string().as_bytes()),
            ("a", b"1"),
            ("d", br#"{"old":true}"#),
        ],
    )
    .await;
    within(events.append(&[event(user, false, b"{\"new\":true}")]))
        .await
        .expect("append");
    let read = within(events.read_after(0, EventId::ZERO, 10, None))
        .await
        .expect("read");
    let seen: Vec<(UserId, bool, &[u8])> = read
        .iter()
        .map(|e| (e.user_id, e.is_anomaly, &e.data[..]))
        .collect();
    assert_eq!(
        seen,
        vec![
            (user, true, &br#"{"old":true}"#[..]),
            (user, false, &br#"{"new":true}"#[..]),
        ]
    );
}

#[tokio::test]
async fn an_entry_too_short_for_its_user_and_flag_is_reported_as_corrupt() {
    let redis = within(TestRedis::create()).await;
    let events = log(&redis, 100);
    let key = redis.keys().event_shard(0);
    xadd_raw(&redis, &[("e", &[7u8; 16][..])]).await;
    match within(events.read_after(0, EventId::ZERO, 10, None)).await {
        Err(CacheError::CorruptEntry { key: at, reason }) => {
            assert_eq!(at, key);
            assert!(reason.contains("`e`"), "{reason}");
        }
        other => panic!("expected CorruptEntry, got {other:?}"),
    }
}

#[tokio::test]
async fn a_simulated_event_reads_back_with_its_feed_and_a_real_one_without() {
    let redis = within(TestRedis::create()).await;
    let events = log(&redis, 100);
    let user = new_user();
    let feed = FeedId(0x0123_4567_89ab_cdef);
    within(events.append(&[
        NewEvent {
            feed: Some(feed),
            ..event(user, true, b"{\"simulated\":true}")
        },
        event(user, false, b"{\"simulated\":false}"),
    ]))
    .await
    .expect("append");
    let read = within(events.read_after(0, EventId::ZERO, 10, None))
        .await
        .expect("read");
    let seen: Vec<(Option<FeedId>, bool, &[u8])> = read
        .iter()
        .map(|e| (e.feed, e.is_anomaly, &e.data[..]))
        .collect();
    assert_eq!(
        seen,
        vec![
            (Some(feed), true, &b"{\"simulated\":true}"[..]),
            (None, false, &b"{\"simulated\":false}"[..]),
        ]
    );
}

#[tokio::test]
async fn a_feed_field_that_is_not_eight_bytes_is_reported_as_corrupt() {
    let redis = within(TestRedis::create()).await;
    let events = log(&redis, 100);
    let mut entry = new_user().as_uuid().as_bytes().to_vec();
    entry.push(0);
    xadd_raw(&redis, &[("e", &entry[..]), ("f", b"short")]).await;
    match within(events.read_after(0, EventId::ZERO, 10, None)).await {
        Err(CacheError::CorruptEntry { reason, .. }) => {
            assert!(reason.contains("feed id"), "{reason}");
        }
        other => panic!("expected CorruptEntry, got {other:?}"),
    }
}

/// Events of many users land in every shard, each user's in one shard in
/// order, and a read of several shards returns each shard's events in order.
#[tokio::test]
async fn events_of_many_users_spread_over_every_shard_each_user_in_one() {
    let redis = within(TestRedis::create()).await;
    let events = EventLog::new(redis.pool().clone(), redis.keys(), 100_000, 8);
    let users: Vec<UserId> = (0..200).map(|_| new_user()).collect();
    let payloads: Vec<Vec<u8>> = (0..users.len() * 3)
        .map(|n| format!("{{\"n\":{n}}}").into_bytes())
        .collect();
    let batch: Vec<NewEvent<'_>> = payloads
        .iter()
        .enumerate()
        .map(|(n, payload)| event(users[n % users.len()], false, payload))
        .collect();
    within(events.append(&batch)).await.expect("append");

    let from: Vec<(usize, EventId)> = (0..8).map(|shard| (shard, EventId::ZERO)).collect();
    let read = within(events.read_shards(&from, 10_000, None))
        .await
        .expect("read every shard");
    assert_eq!(read.len(), batch.len());
    let mut per_shard = [0usize; 8];
    for event in &read {
        per_shard[event.shard] += 1;
        assert_eq!(event.shard, events.shard_of(event.user_id), "{event:?}");
    }
    assert!(per_shard.iter().all(|&count| count > 0), "{per_shard:?}");
    // Per user: the order appended.
    for user in &users {
        let got: Vec<&[u8]> = read
            .iter()
            .filter(|event| event.user_id == *user)
            .map(|event| &event.data[..])
            .collect();
        let want: Vec<&[u8]> = batch
            .iter()
            .filter(|event| event.user_id == *user)
            .map(|event| event.data)
            .collect();
        assert_eq!(got, want);
    }
    // Each shard's last id, in one round trip.
    let lasts = within(events.last_ids(&[0, 3, 7])).await.expect("last ids");
    for (shard, last) in [0, 3, 7].into_iter().zip(lasts) {
        let newest = read
            .iter()
            .filter(|event| event.shard == shard)
            .map(|event| event.id)
            .max();
        assert_eq!(last, newest, "shard {shard}");
        assert!(
            within(events.contains(shard, newest.expect("an event")))
                .await
                .expect("contains")
        );
    }
    assert!(
        !within(events.contains(0, EventId { ms: 1, seq: 1 }))
            .await
            .expect("contains")
    );

    // On a cluster, the shards live on every master.
    let nodes = txwatch_cache::testing::cluster_nodes();
    if !nodes.is_empty() {
        let masters = cluster_masters_of(
            &nodes[0],
            &(0..8)
                .map(|shard| events.key(shard).to_owned())
                .collect::<Vec<_>>(),
        );
        let distinct: std::collections::BTreeSet<_> = masters.iter().collect();
        assert_eq!(
            distinct.len(),
            cluster_master_count(&nodes[0]),
            "{masters:?}"
        );
    }
}

/// A blocking read of several shards (one on a cluster) wakes for an
/// append to any of them.
#[tokio::test]
async fn a_blocked_read_of_several_shards_wakes_for_any_of_them() {
    let redis = within(TestRedis::create()).await;
    let events = EventLog::new(redis.pool().clone(), redis.keys(), 1_000, 8);
    let user = new_user();
    let shard = events.shard_of(user);
    let mut from: Vec<(usize, EventId)> = (0..8).map(|shard| (shard, EventId::ZERO)).collect();
    if redis.pool().is_cluster() {
        // A cluster waits on one shard at a time (one slot per command).
        from = vec![(shard, EventId::ZERO)];
    }
    let reader = {
        let events = events.clone();
        tokio::spawn(async move {
            events
                .read_shards(&from, 10, Some(Duration::from_secs(8)))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    within(events.append(&[event(user, true, b"{}")]))
        .await
        .expect("append");
    let read = within(reader).await.expect("join").expect("read");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].shard, shard);
}

/// The address (`host:port`) of the master serving each key, asked of the
/// cluster node at `node` (`redis://host:port`) with `CLUSTER KEYSLOT` and
/// `CLUSTER SLOTS`.
fn cluster_masters_of(node: &str, keys: &[String]) -> Vec<String> {
    let client = redis::Client::open(node).expect("a node URL");
    let mut connection = client.get_connection().expect("connect to a node");
    let slots: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(&mut connection)
        .expect("slots");
    let ranges: Vec<(i64, i64, String)> = slots
        .iter()
        .filter_map(|range| {
            let redis::Value::Array(parts) = range else {
                return None;
            };
            let int = |value: &redis::Value| match value {
                redis::Value::Int(n) => Some(*n),
                _ => None,
            };
            let redis::Value::Array(master) = parts.get(2)? else {
                return None;
            };
            let host = match master.first()? {
                redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                _ => return None,
            };
            Some((
                int(&parts[0])?,
                int(&parts[1])?,
                format!("{host}:{}", int(master.get(1)?)?),
            ))
        })
        .collect();
    keys.iter()
        .map(|key| {
            let slot: i64 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(key)
                .query(&mut connection)
                .expect("keyslot");
            ranges
                .iter()
                .find(|(low, high, _)| (*low..=*high).contains(&slot))
                .map(|(_, _, master)| master.clone())
                .expect("every slot has a master")
        })
        .collect()
}

/// How many masters serve the cluster `node` belongs to (`cluster_size`).
fn cluster_master_count(node: &str) -> usize {
    let client = redis::Client::open(node).expect("a node URL");
    let mut connection = client.get_connection().expect("connect to a node");
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query(&mut connection)
        .expect("info");
    info.lines()
        .find_map(|line| line.strip_prefix("cluster_size:"))
        .and_then(|size| size.trim().parse().ok())
        .expect("cluster_size")
}
