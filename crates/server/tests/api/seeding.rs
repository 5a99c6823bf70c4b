use std::collections::HashMap;

use indicatif::ProgressBar;
use time::macros::datetime;
use txwatch_cache::WindowStore;
use txwatch_cache::testing::TestRedis;
use txwatch_domain::{Detector, Origin, RollingMean, Verdict};
use txwatch_server::seed::{SeedError, SeedOptions, SeedReport, seed, warm_windows};
use txwatch_simulator::SimulatorConfig;
use txwatch_storage::TransactionRepository;
use txwatch_storage::testing::TestDatabase;
use uuid::Uuid;

use crate::helpers::within;

fn small(seed_value: Option<u64>, reset: bool) -> SeedOptions {
    SeedOptions {
        users: 3,
        rows_per_user: 700,
        days: 30,
        seed: seed_value,
        end: Some(datetime!(2026-06-01 0:00 UTC)),
        reset,
        workers: 2,
        window_len: 20,
    }
}

async fn try_run(
    repository: &TransactionRepository,
    options: &SeedOptions,
) -> Result<SeedReport, SeedError> {
    let (detector, simulator) = (RollingMean::default(), SimulatorConfig::default());
    within(seed(
        repository,
        detector,
        &simulator,
        options,
        &ProgressBar::hidden(),
    ))
    .await
}

async fn run(repository: &TransactionRepository, options: &SeedOptions) -> u64 {
    try_run(repository, options)
        .await
        .expect("seeding succeeds")
        .rows
}

async fn count(db: &TestDatabase) -> (i64, i64) {
    let client = within(db.pool().get()).await.expect("connection");
    let row = within(client.query_one(
        "select count(*), count(distinct user_id) from transactions",
        &[],
    ))
    .await
    .expect("count");
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn seeding_twice_adds_rows_and_reset_replaces_them() {
    let db = TestDatabase::create().await;
    let repository = TransactionRepository::new(db.pool().clone());
    assert_eq!(run(&repository, &small(None, false)).await, 2100);
    assert_eq!(count(&db).await, (2100, 3));
    assert_eq!(run(&repository, &small(None, false)).await, 2100);
    assert_eq!(count(&db).await, (4200, 6));
    assert_eq!(run(&repository, &small(None, true)).await, 2100);
    assert_eq!(count(&db).await, (2100, 3));
}

#[tokio::test]
async fn stored_flags_equal_a_replay_of_each_users_rows_in_time_order() {
    let db = TestDatabase::create().await;
    let repository = TransactionRepository::new(db.pool().clone());
    run(&repository, &small(Some(7), false)).await;
    let client = within(db.pool().get()).await.expect("connection");
    let rows = within(client.query(
        "select user_id, amount, is_anomaly, anomaly_score, window_len \
         from transactions order by user_id, txn_date, id",
        &[],
    ))
    .await
    .expect("rows");
    let detector = RollingMean::default();
    let mut states = HashMap::new();
    let mut flagged = 0;
    for row in &rows {
        let user: Uuid = row.get(0);
        let amount: rust_decimal::Decimal = row.get(1);
        let amount = txwatch_domain::Amount::try_new(amount).expect("valid amount");
        let state = states.entry(user).or_insert_with(|| detector.new_state());
        let verdict = detector.observe(state, amount.to_f64());
        let stored_flag: bool = row.get(2);
        let stored_score: Option<f64> = row.get(3);
        let stored_len: i32 = row.get(4);
        assert_eq!(stored_flag, verdict.is_anomaly());
        assert_eq!(stored_score, verdict.score().map(|s| s.score));
        assert_eq!(stored_len as usize, verdict.window_len());
        if matches!(verdict, Verdict::NotEnoughHistory { .. }) {
            assert!(!stored_flag);
        }
        flagged += usize::from(stored_flag);
    }
    assert_eq!(rows.len(), 2100);
    assert!(
        flagged > 0,
        "the generated history should contain flagged rows"
    );
}

#[tokio::test]
async fn the_same_seed_and_end_reproduce_a_run_exactly() {
    let (first, second) = (TestDatabase::create().await, TestDatabase::create().await);
    for db in [&first, &second] {
        run(
            &TransactionRepository::new(db.pool().clone()),
            &small(Some(42), false),
        )
        .await;
    }
    let dump = |db: &TestDatabase| {
        let pool = db.pool().clone();
        async move {
            let client = within(pool.get()).await.expect("connection");
            let rows = within(client.query(
                "select id, user_id, amount::text, txn_date, status, is_anomaly from transactions order by id",
                &[],
            ))
            .await
            .expect("rows");
            rows.iter()
                .map(|r| {
                    format!(
                        "{}|{}|{}|{:?}|{}|{}",
                        r.get::<_, Uuid>(0),
                        r.get::<_, Uuid>(1),
                        r.get::<_, String>(2),
                        r.get::<_, time::OffsetDateTime>(3),
                        r.get::<_, String>(4),
                        r.get::<_, bool>(5)
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let (a, b) = (dump(&first).await, dump(&second).await);
    assert_eq!(a.len(), 2100);
    assert_eq!(a, b);
}

#[tokio::test]
async fn seeding_the_same_rows_again_fails_and_stores_nothing_new() {
    let db = TestDatabase::create().await;
    let repository = TransactionRepository::new(db.pool().clone());
    run(&repository, &small(Some(5), false)).await;
    let again = try_run(&repository, &small(Some(5), false)).await;
    assert!(again.is_err(), "duplicate ids must be refused");
    assert_eq!(count(&db).await, (2100, 3));
}

#[tokio::test]
async fn warmed_windows_equal_each_users_latest_amounts_in_postgres() {
    let db = TestDatabase::create().await;
    let redis = TestRedis::create().await;
    let repository = TransactionRepository::new(db.pool().clone());
    let report = try_run(&repository, &small(Some(3), false))
        .await
        .expect("seeding succeeds");
    let store = WindowStore::new(
        redis.pool().clone(),
        redis.keys().clone(),
        20,
        std::time::Duration::from_secs(3600),
    );
    assert_eq!(
        within(warm_windows(&store, &repository, &report))
            .await
            .expect("warmed"),
        3
    );
    for (user, replayed) in &report.windows {
        let cached = within(store.read(*user)).await.expect("window");
        let cached: Vec<_> = cached.iter().map(|entry| entry.amount).collect();
        let stored = within(repository.latest_amounts(*user, 20, Origin::Real))
            .await
            .expect("amounts");
        assert_eq!(cached.len(), 20);
        assert_eq!(cached, stored, "user {user}");
        // The seeder's own replay ends with the same window.
        assert_eq!(&cached, replayed, "user {user}");
    }
}
