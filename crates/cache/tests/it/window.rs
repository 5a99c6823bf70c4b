use std::collections::BTreeMap;
use std::time::Duration;

use deadpool_redis::redis;
use txwatch_cache::testing::TestRedis;
use txwatch_cache::{CacheError, Step, StepRequest, WindowStore};
use txwatch_domain::{Amount, Origin, TransactionId, UserId, WindowEntry};
use uuid::Uuid;

use crate::{Numbers, amounts, amounts_of, at, entry, latest, new_user, within};

const IDLE: Duration = Duration::from_secs(60);

fn store(redis: &TestRedis, capacity: usize) -> WindowStore {
    WindowStore::new(redis.pool().clone(), redis.keys().clone(), capacity, IDLE)
}

/// A step that rebuilds from `history` if the window is missing.
fn request(user_id: UserId, entry: WindowEntry, history: &[WindowEntry]) -> StepRequest<'_> {
    StepRequest {
        user_id,
        entry,
        rebuild: Some(history),
    }
}

/// A step that does not rebuild.
fn plain(user_id: UserId, entry: WindowEntry) -> StepRequest<'static> {
    StepRequest {
        user_id,
        entry,
        rebuild: None,
    }
}

fn pushed(step: Step) -> Vec<Amount> {
    match step {
        Step::Pushed { previous, .. } => previous,
        other => panic!("expected Pushed, got {other:?}"),
    }
}

async fn command<T: redis::FromRedisValue>(redis: &TestRedis, cmd: &redis::Cmd) -> T {
    let mut connection = within(redis.pool().get()).await.expect("connection");
    within(cmd.query_async(&mut connection))
        .await
        .expect("command")
}

/// A valid window starts with a header of 33 `0xff` bytes.
const HEADER: [u8; 33] = [0xff; 33];

/// The window's records as hex, as Redis holds them.
async fn raw_window(redis: &TestRedis, user: UserId) -> Vec<String> {
    let packed: Option<Vec<u8>> =
        command(redis, redis::cmd("GET").arg(redis.keys().window(user))).await;
    let packed = packed.unwrap_or_default();
    let Some(records) = packed.strip_prefix(&HEADER[..]) else {
        return Vec::new();
    };
    records
        .chunks(33)
        .map(|record| record.iter().map(|b| format!("{b:02x}")).collect())
        .collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

async fn exists(redis: &TestRedis, key: &str) -> bool {
    command::<i64>(redis, redis::cmd("EXISTS").arg(key)).await == 1
}

async fn pttl(redis: &TestRedis, key: &str) -> i64 {
    command(redis, redis::cmd("PTTL").arg(key)).await
}

#[tokio::test]
async fn a_replaced_window_reads_back_in_history_order_whatever_order_it_came_in() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 5);
    let user = new_user();
    let window = [
        entry(3, "0.50"),
        entry(1, "271.62"),
        entry(4, "1999999.99"),
        entry(2, "10"),
    ];
    within(windows.replace(user, &window))
        .await
        .expect("replace");
    let read = within(windows.read(user)).await.expect("read");
    assert_eq!(read, latest(&window, 5));
    assert_eq!(
        amounts_of(&read),
        amounts(&["271.62", "10", "0.50", "1999999.99"])
    );
}

#[tokio::test]
async fn each_transaction_is_stored_as_its_microseconds_its_cents_and_its_id() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 5);
    let user = new_user();
    let id = TransactionId(Uuid::from_u128(0x0191_2c3a_7b4e_7c1d_8e2f_3a4b_5c6d_7e8f));
    let stored = WindowEntry {
        id,
        txn_date: time::macros::datetime!(2024-09-10 12:00:00.123456 UTC),
        amount: "271.62".parse().expect("an amount"),
    };
    within(windows.replace(user, &[stored]))
        .await
        .expect("replace");
    assert_eq!(
        raw_window(&redis, user).await,
        // Date, amount and id, big-endian, sign bits flipped.
        ["800621c29ce89240800000000000006a1a01912c3a7b4e7c1d8e2f3a4b5c6d7e8f"]
    );
}

#[tokio::test]
async fn a_replaced_window_keeps_only_the_latest_transactions_up_to_capacity() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 3);
    let user = new_user();
    let window = [
        entry(5, "5.00"),
        entry(1, "1.00"),
        entry(4, "4.00"),
        entry(2, "2.00"),
        entry(3, "3.00"),
    ];
    within(windows.replace(user, &window))
        .await
        .expect("replace");
    assert_eq!(
        amounts_of(&within(windows.read(user)).await.expect("read")),
        amounts(&["3.00", "4.00", "5.00"])
    );
    assert_eq!(raw_window(&redis, user).await.len(), 3);
}

#[tokio::test]
async fn replacing_twice_leaves_only_the_second_set() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 20);
    let user = new_user();
    within(windows.replace(user, &[entry(1, "1.00"), entry(2, "2.00")]))
        .await
        .expect("first replace");
    let second = [entry(0, "7.00"), entry(1, "8.00")];
    within(windows.replace(user, &second))
        .await
        .expect("second replace");
    assert_eq!(within(windows.read(user)).await.expect("read"), second);
}

#[tokio::test]
async fn replacing_with_no_entries_deletes_the_window() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 20);
    let user = new_user();
    within(windows.replace(user, &[entry(1, "1.00")]))
        .await
        .expect("replace");
    within(windows.replace(user, &[])).await.expect("empty");
    assert_eq!(
        within(windows.read(user)).await.expect("read"),
        Vec::<WindowEntry>::new()
    );
    assert_eq!(
        within(windows.step(&plain(user, entry(2, "2.00"))))
            .await
            .expect("step"),
        Step::Missing
    );
}

#[tokio::test]
async fn windows_of_different_users_are_kept_apart() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 20);
    let (alice, bob) = (new_user(), new_user());
    let (alices, bobs) = ([entry(1, "1.00")], [entry(1, "2.00")]);
    within(windows.replace(alice, &alices))
        .await
        .expect("replace alice");
    within(windows.replace(bob, &bobs))
        .await
        .expect("replace bob");
    assert_eq!(
        within(windows.read(alice)).await.expect("read alice"),
        alices
    );
    assert_eq!(within(windows.read(bob)).await.expect("read bob"), bobs);
}

#[tokio::test]
async fn reading_the_window_of_an_unknown_user_gives_no_entries() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 20);
    assert_eq!(
        within(windows.read(new_user())).await.expect("read"),
        Vec::<WindowEntry>::new()
    );
}

#[tokio::test]
async fn negative_amounts_at_one_moment_sort_below_positive_ones_in_numeric_order() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 20);
    let user = new_user();
    let window: Vec<WindowEntry> = ["1.00", "-0.01", "0", "-2.00", "-271.62", "-1.00", "0.01"]
        .iter()
        .map(|amount| entry(0, amount))
        .collect();
    within(windows.replace(user, &window))
        .await
        .expect("replace");
    assert_eq!(
        amounts_of(&within(windows.read(user)).await.expect("read")),
        amounts(&["-271.62", "-2.00", "-1.00", "-0.01", "0", "0.01", "1.00"])
    );
}

#[tokio::test]
async fn an_entry_this_store_did_not_write_is_reported_as_corrupt() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 20);
    let user = new_user();
    let key = redis.keys().window(user);
    // A good record, then one whose amount is out of range.
    let good = unhex("800621c29ce89240800000000000004e2001912c3a7b4e7c1d8e2f3a4b5c6d7e8f");
    let bad_hex = "800621c29ce89240ffffffffffffffffff01912c3a7b4e7c1d8e2f3a4b5c6d7e8f";
    let mut value = HEADER.to_vec();
    value.extend_from_slice(&good);
    value.extend_from_slice(&unhex(bad_hex));
    command::<()>(&redis, redis::cmd("SET").arg(&key).arg(value)).await;
    match within(windows.read(user)).await {
        Err(CacheError::CorruptEntry { key: at, reason }) => {
            assert_eq!(at, key);
            assert!(reason.contains(bad_hex), "{reason}");
        }
        other => panic!("expected CorruptEntry, got {other:?}"),
    }
    match within(windows.step(&plain(user, entry(3, "1.00")))).await {
        Err(CacheError::CorruptEntry { key: at, reason }) => {
            assert_eq!(at, key);
            assert!(reason.contains(bad_hex), "{reason}");
        }
        other => panic!("expected CorruptEntry, got {other:?}"),
    }
    // Not a whole number of records.
    command::<()>(
        &redis,
        redis::cmd("SET")
            .arg(&key)
            .arg([&HEADER[..], b"12.50"].concat()),
    )
    .await;
    assert!(matches!(
        within(windows.read(user)).await,
        Err(CacheError::CorruptEntry { .. })
    ));
}

#[tokio::test]
async fn a_window_key_holding_something_other_than_a_string_is_reported_as_corrupt() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 20);
    let user = new_user();
    let key = redis.keys().window(user);
    command::<()>(&redis, redis::cmd("RPUSH").arg(&key).arg("12.50")).await;
    match within(windows.read(user)).await {
        Err(CacheError::CorruptEntry { key: at, .. }) => assert_eq!(at, key),
        other => panic!("read: expected CorruptEntry, got {other:?}"),
    }
    match within(windows.step(&request(user, entry(1, "1.00"), &[]))).await {
        Err(CacheError::CorruptEntry { key: at, .. }) => assert_eq!(at, key),
        other => panic!("step: expected CorruptEntry, got {other:?}"),
    }
}

#[tokio::test]
async fn a_step_on_a_missing_window_answers_missing_and_makes_no_window() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 20);
    let user = new_user();
    for second in [1, 2] {
        assert_eq!(
            within(windows.step(&plain(user, entry(second, "1.00"))))
                .await
                .expect("step"),
            Step::Missing
        );
    }
    assert!(within(windows.read(user)).await.expect("read").is_empty());
    // What the steps appended is not a window, expires, and is replaced by
    // the rebuild.
    let key = redis.keys().window(user);
    assert!(pttl(&redis, &key).await > 0);
    let history = [entry(0, "5.00")];
    assert_eq!(
        pushed(
            within(windows.step(&request(user, entry(3, "1.00"), &history)))
                .await
                .expect("step")
        ),
        amounts(&["5.00"])
    );
    assert_eq!(raw_window(&redis, user).await.len(), 2);
}

#[tokio::test]
async fn a_step_with_history_rebuilds_the_window_and_reports_the_history_as_previous() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 5);
    let user = new_user();
    let history = [entry(3, "3.00"), entry(1, "1.00"), entry(2, "2.00")];
    let new = entry(4, "4.00");
    let previous = pushed(
        within(windows.step(&request(user, new, &history)))
            .await
            .expect("step"),
    );
    assert_eq!(previous, amounts(&["1.00", "2.00", "3.00"]));
    let mut all = history.to_vec();
    all.push(new);
    assert_eq!(
        within(windows.read(user)).await.expect("read"),
        latest(&all, 5)
    );
}

#[tokio::test]
async fn a_rebuild_longer_than_capacity_keeps_and_reports_only_the_latest() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 3);
    let user = new_user();
    let history: Vec<WindowEntry> = (0..8)
        .rev()
        .map(|second| entry(second, &format!("{second}.00")))
        .collect();
    let new = entry(4, "100.00");
    let previous = pushed(
        within(windows.step(&request(user, new, &history)))
            .await
            .expect("step"),
    );
    assert_eq!(previous, amounts(&["5.00", "6.00", "7.00"]));
    let mut all = history.clone();
    all.push(new);
    assert_eq!(
        within(windows.read(user)).await.expect("read"),
        latest(&all, 3)
    );
}

#[tokio::test]
async fn history_sent_for_a_window_someone_else_rebuilt_first_is_ignored() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 5);
    let user = new_user();
    let first = entry(1, "1.00");
    pushed(
        within(windows.step(&request(user, first, &[])))
            .await
            .expect("first step"),
    );
    let stale_history = [entry(0, "50.00")];
    let previous = pushed(
        within(windows.step(&request(user, entry(2, "2.00"), &stale_history)))
            .await
            .expect("second step"),
    );
    assert_eq!(previous, amounts(&["1.00"]));
}

#[tokio::test]
async fn pushing_past_capacity_keeps_the_latest_by_date_then_amount_then_id() {
    let redis = within(TestRedis::create()).await;
    let capacity = 20;
    let windows = store(&redis, capacity);
    let user = new_user();
    let mut numbers = Numbers(7);
    let mut all: Vec<WindowEntry> = Vec::new();
    for _ in 0..300 {
        // Few dates and amounts, so ties on both are common.
        let new = numbers.entry(40, 5);
        let step = within(windows.step(&request(user, new, &[])))
            .await
            .expect("step");
        assert_eq!(pushed(step), amounts_of(&latest(&all, capacity)));
        all.push(new);
        assert_eq!(
            within(windows.read(user)).await.expect("read"),
            latest(&all, capacity)
        );
    }
    // Older than everything in a full window: pushed and dropped at once.
    let before = within(windows.read(user)).await.expect("read");
    let ancient = entry(-1_000, "1.00");
    let previous = pushed(
        within(windows.step(&request(user, ancient, &[])))
            .await
            .expect("step"),
    );
    assert_eq!(previous, amounts_of(&before));
    assert_eq!(within(windows.read(user)).await.expect("read"), before);
}

#[tokio::test]
async fn ties_on_date_are_ordered_by_amount_then_id() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 3);
    let user = new_user();
    let id = |n: u128| TransactionId(Uuid::from_u128(n << 64));
    let at_noon = |n: u128, amount: &str| WindowEntry {
        id: id(n),
        txn_date: at(0),
        amount: amount.parse().expect("an amount"),
    };
    // Sorted: (5.00, id 9), (7.00, id 1), (7.00, id 2), (7.00, id 3), (8.00, id 0).
    for new in [
        at_noon(2, "7.00"),
        at_noon(0, "8.00"),
        at_noon(9, "5.00"),
        at_noon(3, "7.00"),
        at_noon(1, "7.00"),
    ] {
        pushed(
            within(windows.step(&request(user, new, &[])))
                .await
                .expect("step"),
        );
    }
    let read = within(windows.read(user)).await.expect("read");
    assert_eq!(
        read,
        [at_noon(2, "7.00"), at_noon(3, "7.00"), at_noon(0, "8.00")]
    );
}

#[tokio::test]
async fn a_repeated_id_answers_duplicate_and_changes_nothing() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 5);
    let user = new_user();
    let first = entry(1, "1.00");
    pushed(
        within(windows.step(&request(user, first, &[])))
            .await
            .expect("first"),
    );
    pushed(
        within(windows.step(&request(user, entry(2, "2.00"), &[])))
            .await
            .expect("second"),
    );
    let before = raw_window(&redis, user).await;
    let window_before = within(windows.read(user)).await.expect("read");
    // The same id again, exactly: nothing changes in the window it holds.
    assert_eq!(
        within(windows.step(&request(user, first, &[])))
            .await
            .expect("same again"),
        Step::Duplicate
    );
    assert_eq!(
        within(windows.read(user)).await.expect("read"),
        window_before
    );
    // The same id with another date and amount.
    let again = WindowEntry {
        txn_date: at(3),
        amount: "3.00".parse().expect("an amount"),
        ..first
    };
    assert_eq!(
        within(windows.step(&request(user, again, &[])))
            .await
            .expect("again"),
        Step::Duplicate
    );
    // Its record was appended before the step could tell, so the window is
    // dropped and rebuilt from the database by the next step.
    assert!(!before.is_empty());
    assert!(raw_window(&redis, user).await.is_empty());
}

#[tokio::test]
async fn a_transaction_already_in_the_rebuilt_history_is_a_duplicate() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 5);
    let user = new_user();
    let persisted = entry(1, "1.00");
    assert_eq!(
        within(windows.step(&request(user, persisted, &[persisted])))
            .await
            .expect("step"),
        Step::Duplicate
    );
    assert_eq!(within(windows.read(user)).await.expect("read"), [persisted]);
    let ttl = pttl(&redis, &redis.keys().window(user)).await;
    assert!(ttl > 0, "a rebuilt window expires too, got {ttl}");
}

#[tokio::test]
async fn concurrent_steps_for_one_user_are_all_counted_and_none_is_lost() {
    const TASKS: u64 = 8;
    const STEPS: usize = 250;
    const CAPACITY: usize = 20;
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, CAPACITY);
    let user = new_user();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let windows = windows.clone();
        tasks.push(tokio::spawn(async move {
            let mut numbers = Numbers(1_000 + task);
            let mut results = Vec::with_capacity(STEPS);
            for _ in 0..STEPS {
                let new = numbers.entry(600, 50);
                let step = windows.step(&request(user, new, &[])).await.expect("step");
                results.push((new, step));
            }
            results
        }));
    }
    let mut all = Vec::new();
    let mut lengths: BTreeMap<usize, usize> = BTreeMap::new();
    for task in tasks {
        for (new, step) in within(task).await.expect("task") {
            *lengths.entry(pushed(step).len()).or_default() += 1;
            all.push(new);
        }
    }
    assert_eq!(all.len(), 2_000);
    // Step k (from 0) saw min(k, 20) earlier transactions.
    let mut expected: BTreeMap<usize, usize> = BTreeMap::new();
    for k in 0..all.len() {
        *expected.entry(k.min(CAPACITY)).or_default() += 1;
    }
    assert_eq!(lengths, expected);
    assert_eq!(
        within(windows.read(user)).await.expect("read"),
        latest(&all, CAPACITY)
    );
}

#[tokio::test]
async fn many_steps_in_one_call_run_in_order_and_see_each_other() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 5);
    let (alice, bob) = (new_user(), new_user());
    let (first, second, bobs) = (entry(1, "1.00"), entry(2, "2.00"), entry(1, "9.00"));
    let steps = within(windows.step_many(&[
        request(alice, first, &[]),
        plain(bob, bobs),
        request(alice, second, &[]),
        request(alice, first, &[]),
    ]))
    .await
    .expect("steps");
    assert_eq!(
        steps,
        [
            Step::Pushed {
                previous: vec![],
                dates: vec![]
            },
            Step::Missing,
            Step::Pushed {
                previous: amounts(&["1.00"]),
                dates: vec![]
            },
            Step::Duplicate,
        ]
    );
    assert_eq!(
        within(windows.step_many(&[])).await.expect("no steps"),
        Vec::<Step>::new()
    );
}

#[tokio::test]
async fn steps_still_work_after_redis_forgets_its_scripts() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 5);
    let user = new_user();
    pushed(
        within(windows.step(&request(user, entry(1, "1.00"), &[])))
            .await
            .expect("a step loads the script"),
    );
    // Global, but harmless to other tests: they load their scripts again.
    command::<()>(&redis, redis::cmd("SCRIPT").arg("FLUSH")).await;
    let steps = within(windows.step_many(&[
        request(user, entry(2, "2.00"), &[]),
        request(user, entry(3, "3.00"), &[]),
    ]))
    .await
    .expect("steps after SCRIPT FLUSH");
    assert_eq!(
        steps,
        [
            Step::Pushed {
                previous: amounts(&["1.00"]),
                dates: vec![]
            },
            Step::Pushed {
                previous: amounts(&["1.00", "2.00"]),
                dates: vec![]
            },
        ]
    );
    command::<()>(&redis, redis::cmd("SCRIPT").arg("FLUSH")).await;
    pushed(
        within(windows.step(&request(user, entry(4, "4.00"), &[])))
            .await
            .expect("a single step after SCRIPT FLUSH"),
    );
}

#[tokio::test]
async fn every_write_restarts_the_idle_ttl() {
    let redis = within(TestRedis::create()).await;
    let ttl = Duration::from_secs(30);
    let windows = WindowStore::new(redis.pool().clone(), redis.keys().clone(), 5, ttl);
    let limit = i64::try_from(ttl.as_millis()).expect("small");
    let (stepped, replaced) = (new_user(), new_user());
    pushed(
        within(windows.step(&request(stepped, entry(1, "1.00"), &[])))
            .await
            .expect("step"),
    );
    within(windows.replace(replaced, &[entry(1, "1.00")]))
        .await
        .expect("replace");
    for user in [stepped, replaced] {
        let left = pttl(&redis, &redis.keys().window(user)).await;
        assert!(0 < left && left <= limit, "PTTL {left} ms");
    }
    let key = redis.keys().window(stepped);
    command::<()>(&redis, redis::cmd("PEXPIRE").arg(&key).arg(1_000)).await;
    pushed(
        within(windows.step(&request(stepped, entry(2, "2.00"), &[])))
            .await
            .expect("step"),
    );
    let left = pttl(&redis, &key).await;
    assert!(1_000 < left && left <= limit, "PTTL {left} ms");
}

#[tokio::test]
async fn forgetting_users_deletes_their_windows_and_no_others() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 5);
    let users = [new_user(), new_user(), new_user()];
    for user in users {
        within(windows.replace(user, &[entry(1, "1.00")]))
            .await
            .expect("replace");
    }
    within(windows.forget(&users[..2])).await.expect("forget");
    within(windows.forget(&[])).await.expect("forget no one");
    assert!(!exists(&redis, &redis.keys().window(users[0])).await);
    assert!(!exists(&redis, &redis.keys().window(users[1])).await);
    assert!(exists(&redis, &redis.keys().window(users[2])).await);
}

#[tokio::test]
async fn a_window_written_with_a_larger_capacity_is_cut_to_this_one() {
    let redis = within(TestRedis::create()).await;
    let user = new_user();
    let history: Vec<WindowEntry> = (1..=5)
        .map(|second| entry(second, &format!("{second}.00")))
        .collect();
    within(store(&redis, 5).replace(user, &history))
        .await
        .expect("replace");
    let windows = store(&redis, 3);
    let new = entry(6, "6.00");
    let previous = pushed(within(windows.step(&plain(user, new))).await.expect("step"));
    assert_eq!(previous, amounts(&["3.00", "4.00", "5.00"]));
    let mut all = history.clone();
    all.push(new);
    assert_eq!(raw_window(&redis, user).await.len(), 3);
    assert_eq!(
        within(windows.read(user)).await.expect("read"),
        latest(&all, 3)
    );
}

#[tokio::test]
async fn withdrawing_a_push_takes_its_record_back_and_nothing_else() {
    let redis = TestRedis::create().await;
    let store = store(&redis, 3);
    let user = new_user();
    let history: Vec<WindowEntry> = (10..13).map(|s| entry(s, "5")).collect();
    within(store.replace(user, &history))
        .await
        .expect("replace");

    // An id no window holds changes nothing.
    within(store.withdraw(&[(user, entry(1, "7"))]))
        .await
        .expect("withdraw");
    assert_eq!(within(store.read(user)).await.expect("read"), history);

    // A pushed one, newest or oldest: the window is as before.
    for new in [entry(20, "9"), entry(1, "7")] {
        pushed(within(store.step(&plain(user, new))).await.expect("step"));
        within(store.withdraw(&[(user, new)]))
            .await
            .expect("withdraw");
        assert_eq!(within(store.read(user)).await.expect("read"), history);
    }
    // Pushed twice (two requests with one id), withdrawn once: once.
    let twice = entry(30, "3");
    pushed(within(store.step(&plain(user, twice))).await.expect("step"));
    assert_eq!(
        within(store.step(&plain(user, twice))).await.expect("step"),
        Step::Duplicate
    );
    within(store.withdraw(&[(user, twice)]))
        .await
        .expect("withdraw");
    let mut expected = history.clone();
    expected.push(twice);
    assert_eq!(
        within(store.read(user)).await.expect("read"),
        latest(&expected, 3)
    );
    within(store.withdraw(&[])).await.expect("nothing to do");
}

#[tokio::test]
async fn a_users_simulated_window_is_kept_apart_from_their_real_one() {
    let redis = within(TestRedis::create()).await;
    let real = store(&redis, 5);
    let simulated = store(&redis, 5).with_origin(Origin::Simulated);
    assert_eq!(simulated.origin(), Origin::Simulated);
    let user = new_user();
    let history = [entry(0, "100.00"), entry(1, "100.00")];
    within(real.replace(user, &history))
        .await
        .expect("real window");
    let step = within(simulated.step(&request(user, entry(2, "9000.00"), &[])))
        .await
        .expect("a simulated step");
    // The simulated window was built from no history, not from the real one.
    assert_eq!(pushed(step), amounts(&[]));
    let step = within(real.step(&plain(user, entry(3, "50.00"))))
        .await
        .expect("a real step");
    assert_eq!(pushed(step), amounts(&["100.00", "100.00"]));
    within(simulated.forget(&[user])).await.expect("forget");
    assert_eq!(
        amounts_of(&within(real.read(user)).await.expect("read")),
        amounts(&["100.00", "100.00", "50.00"])
    );
    assert!(exists(&redis, &redis.keys().window(user)).await);
    assert!(!exists(&redis, &redis.keys().simulated_window(user)).await);
}

#[tokio::test]
async fn a_store_asked_for_dates_reports_when_each_previous_transaction_happened() {
    let redis = within(TestRedis::create()).await;
    let windows = store(&redis, 3).with_dates(true);
    let user = new_user();
    let history = [entry(30, "3.00"), entry(10, "1.00"), entry(20, "2.00")];
    let step = within(windows.step(&request(user, entry(40, "4.00"), &history)))
        .await
        .expect("a step");
    assert_eq!(
        step,
        Step::Pushed {
            previous: amounts(&["1.00", "2.00", "3.00"]),
            dates: [10, 20, 30]
                .map(|s| history[0].txn_date + time::Duration::seconds(s - 30))
                .to_vec(),
        }
    );
    // Without asking, no dates are decoded.
    let plain_store = store(&redis, 3);
    match within(plain_store.step(&plain(user, entry(50, "5.00"))))
        .await
        .expect("a step")
    {
        Step::Pushed { previous, dates } => {
            assert_eq!(previous, amounts(&["2.00", "3.00", "4.00"]));
            assert!(dates.is_empty());
        }
        other => panic!("expected Pushed, got {other:?}"),
    }
}
