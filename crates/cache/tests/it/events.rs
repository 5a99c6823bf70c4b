use std::time::{Duration, Instant};

use deadpool_redis::redis;
use txwatch_cache::testing::TestRedis;
use txwatch_cache::{CacheConfig, CacheError, EventId, EventLog, FeedId, NewEvent, connect, ping};
use txwatch_domain::UserId;

use crate::{new_user, within};

fn log(redis: &TestRedis, retention: usize) -> EventLog {
    EventLog::new(redis.pool().clone(), redis.keys(), retention)
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
    xadd.arg(redis.keys().events()).arg("*");
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
            .arg(redis.keys().events())
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

    let read = within(events.read_after(EventId::ZERO, 10, None))
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

    let after_second = within(events.read_after(ids[1], 10, None))
        .await
        .expect("read after the second");
    assert_eq!(after_second, read[2..]);
    let limited = within(events.read_after(EventId::ZERO, 2, None))
        .await
        .expect("read two");
    assert_eq!(limited, read[..2]);
    assert_eq!(
        within(events.read_after(ids[2], 10, None))
            .await
            .expect("read after the last"),
        []
    );
    assert_eq!(within(events.last_id()).await.expect("last"), Some(ids[2]));
    assert_eq!(
        within(events.first_id()).await.expect("first"),
        Some(ids[0])
    );
    assert_eq!(within(events.append(&[])).await.expect("nothing"), []);
}

#[tokio::test]
async fn an_empty_or_missing_stream_has_no_ids_and_no_events() {
    let redis = within(TestRedis::create()).await;
    let events = log(&redis, 1_000);
    assert_eq!(within(events.last_id()).await.expect("last"), None);
    assert_eq!(within(events.first_id()).await.expect("first"), None);
    assert_eq!(
        within(events.read_after(EventId::ZERO, 10, None))
            .await
            .expect("read"),
        []
    );
    assert_eq!(
        within(events.read_after(EventId::ZERO, 10, Some(Duration::from_millis(50))))
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
                .read_after(EventId::ZERO, 10, Some(Duration::from_secs(8)))
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
    let read = within(events.read_after(EventId::ZERO, 10, Some(Duration::from_millis(2_500))))
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
    let events = EventLog::new(pool.clone(), redis.keys(), 1_000);
    within(ping(&pool)).await.expect("ping");
    assert_eq!(pool.status().size, 1);

    let cut_short = tokio::time::timeout(
        Duration::from_millis(100),
        events.read_after(EventId::ZERO, 10, Some(Duration::from_secs(5))),
    )
    .await;
    assert!(cut_short.is_err(), "the read should still be waiting");
    // Taken out of the pool rather than returned to it blocked.
    assert_eq!(pool.status().size, 0);
    let started = Instant::now();
    within(ping(&pool)).await.expect("ping on a new connection");
    assert!(started.elapsed() < Duration::from_secs(2));

    // A read that completes hands its connection back.
    within(events.read_after(EventId::ZERO, 10, Some(Duration::from_millis(10))))
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
    let first = within(events.first_id())
        .await
        .expect("first")
        .expect("some");
    assert!(first > all[0], "{first} was not trimmed past {}", all[0]);
    assert_eq!(
        within(events.last_id()).await.expect("last"),
        all.last().copied()
    );
    // A reader from the beginning gets what is left, oldest first.
    let read = within(events.read_after(EventId::ZERO, 10_000, None))
        .await
        .expect("read");
    assert_eq!(read.len(), length);
    assert_eq!(read[0].id, first);
}

#[tokio::test]
async fn an_event_key_holding_something_else_is_reported_as_corrupt() {
    let redis = within(TestRedis::create()).await;
    let events = log(&redis, 100);
    let key = redis.keys().events();
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
    match within(events.read_after(EventId::ZERO, 10, Some(Duration::from_millis(10)))).await {
        Err(CacheError::CorruptEntry { key: at, .. }) => assert_eq!(at, key),
        other => panic!("read: expected CorruptEntry, got {other:?}"),
    }
    match within(events.last_id()).await {
        Err(CacheError::CorruptEntry { key: at, .. }) => assert_eq!(at, key),
        other => panic!("last id: expected CorruptEntry, got {other:?}"),
    }
}

#[tokio::test]
async fn an_entry_without_the_fields_this_log_writes_is_reported_as_corrupt() {
    let redis = within(TestRedis::create()).await;
    let events = log(&redis, 100);
    let key = redis.keys().events();
    xadd_raw(
        &redis,
        &[("u", new_user().to_string().as_bytes()), ("d", b"{}")],
    )
    .await;
    match within(events.read_after(EventId::ZERO, 10, None)).await {
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
    let read = within(events.read_after(EventId::ZERO, 10, None))
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
    let key = redis.keys().events();
    xadd_raw(&redis, &[("e", &[7u8; 16][..])]).await;
    match within(events.read_after(EventId::ZERO, 10, None)).await {
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
    let read = within(events.read_after(EventId::ZERO, 10, None))
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
    match within(events.read_after(EventId::ZERO, 10, None)).await {
        Err(CacheError::CorruptEntry { reason, .. }) => {
            assert!(reason.contains("feed id"), "{reason}");
        }
        other => panic!("expected CorruptEntry, got {other:?}"),
    }
}
