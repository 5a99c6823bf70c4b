//! The V3 migration: `transactions` hash-partitioned by `user_id`,
//! converted in place with its rows; and the history query on one
//! partition through `ix_user_date_amount_id`.

use std::collections::BTreeMap;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use txwatch_domain::{Amount, Origin, Transaction, UserId};
use txwatch_storage::testing::{FIRST_PAGE_SQL, TestDatabase, transaction};
use txwatch_storage::{PageQuery, TransactionRepository};
use uuid::Uuid;

use crate::within;

const USERS: usize = 12;

/// A history with ties on dates and both origins: `rows` per user.
fn history(users: &[UserId], rows: usize) -> Vec<Transaction> {
    let start = datetime!(2025-01-01 0:00 UTC);
    let mut all = Vec::new();
    for (u, &user) in users.iter().enumerate() {
        for i in 0..rows {
            // Every third date repeats the one before: ties the cursor
            // must break by id.
            let step = i64::try_from(i - i / 3).expect("small");
            let date = start + Duration::minutes(step * 17 + u as i64);
            let amount = format!("{}.{:02}", 10 + (i * 37 + u) % 900, i % 100);
            let mut row = transaction(user, date, &amount);
            if i % 5 == 0 {
                row.origin = Origin::Simulated;
            }
            all.push(row);
        }
    }
    all
}

/// What a reader can see of the table through the repository: the users
/// listing, and each user's whole history walked page by page.
async fn snapshot(
    repo: &TransactionRepository,
) -> (Vec<UserId>, BTreeMap<UserId, Vec<Transaction>>) {
    let users = within(repo.users()).await.expect("users");
    let mut walks = BTreeMap::new();
    for &user in &users {
        let mut walk = Vec::new();
        let mut after = None;
        loop {
            let page = within(repo.page(&PageQuery {
                user_id: user,
                from: datetime!(2000-01-01 0:00 UTC),
                to: datetime!(2100-01-01 0:00 UTC),
                min_amount: Amount::try_new(0.into()).expect("amount"),
                max_amount: "10000000000".parse().expect("amount"),
                limit: 37,
                after,
            }))
            .await
            .expect("page");
            walk.extend(page.transactions.iter().cloned());
            after = page.end();
            if !page.has_more {
                break;
            }
        }
        walks.insert(user, walk);
    }
    (users, walks)
}

async fn count(db: &TestDatabase) -> i64 {
    let client = within(db.pool().get()).await.expect("connection");
    within(client.query_one("select count(*) from transactions", &[]))
        .await
        .expect("count")
        .get(0)
}

#[tokio::test]
async fn the_partitioning_migration_converts_a_seeded_database_with_nothing_lost() {
    let db = TestDatabase::create_at_version(2).await;
    let repo = TransactionRepository::new(db.pool().clone());
    let users: Vec<UserId> = (0..USERS).map(|_| UserId(Uuid::new_v4())).collect();
    let rows = history(&users, 400);
    // Binary COPY, as `txwatch seed` stores history.
    let mut bulk = within(repo.bulk_insert()).await.expect("copy");
    for row in &rows {
        within(bulk.write(row)).await.expect("row");
    }
    within(bulk.finish()).await.expect("finish");
    let before_count = count(&db).await;
    let before = snapshot(&repo).await;
    assert_eq!(before_count, (USERS * 400) as i64);
    assert_eq!(before.0.len(), USERS);
    assert!(before.1.values().all(|walk| walk.len() == 400));

    within(txwatch_storage::migrate(&db.config().url))
        .await
        .expect("V3 applies");
    // The pool's connections prepared statements on the old table.
    db.pool().close();
    let pool = txwatch_storage::connect(db.config()).expect("pool");
    let repo = TransactionRepository::new(pool.clone());

    let client = within(pool.get()).await.expect("connection");
    let kind: i8 = within(client.query_one(
        "select relkind::\"char\" as kind from pg_class where relname = 'transactions'",
        &[],
    ))
    .await
    .expect("kind")
    .get(0);
    assert_eq!(kind as u8, b'p', "transactions is a partitioned table");
    let partitions: i64 = within(client.query_one(
        "select count(*) from pg_inherits where inhparent = 'transactions'::regclass",
        &[],
    ))
    .await
    .expect("partitions")
    .get(0);
    assert_eq!(partitions, 16);
    let key: String = within(client.query_one(
        "select pg_get_constraintdef(oid) from pg_constraint \
         where conrelid = 'transactions'::regclass and contype = 'p'",
        &[],
    ))
    .await
    .expect("primary key")
    .get(0);
    assert_eq!(key, "PRIMARY KEY (id, user_id)");
    let indexed: i64 = within(client.query_one(
        "select count(*) from pg_inherits where inhparent = 'ix_user_date_amount_id'::regclass",
        &[],
    ))
    .await
    .expect("index partitions")
    .get(0);
    assert_eq!(
        indexed, 16,
        "ix_user_date_amount_id exists on every partition"
    );
    // Rows spread over the partitions.
    let used: i64 =
        within(client.query_one("select count(distinct tableoid) from transactions", &[]))
            .await
            .expect("partitions used")
            .get(0);
    assert!(used > 4, "{USERS} users landed in only {used} partitions");

    let db_count = {
        let row = within(client.query_one("select count(*) from transactions", &[]))
            .await
            .expect("count");
        row.get::<_, i64>(0)
    };
    assert_eq!(db_count, before_count);
    let after = snapshot(&repo).await;
    assert_eq!(after.0, before.0, "the users listing is unchanged");
    for (user, walk) in &before.1 {
        assert_eq!(
            after.1.get(user),
            Some(walk),
            "the cursor walk of {user:?} is unchanged"
        );
    }
    // And the converted table takes writes as before, idempotently.
    let more = transaction(users[0], OffsetDateTime::now_utc(), "12.00");
    let stored = within(repo.insert_many(&[more.clone(), more.clone()]))
        .await
        .expect("insert");
    assert_eq!(stored, vec![(users[0], more.id)]);
}

#[tokio::test]
async fn the_history_query_reads_one_partition_through_ix_user_date_amount_id() {
    let db = TestDatabase::create().await;
    let repo = TransactionRepository::new(db.pool().clone());
    let users: Vec<UserId> = (0..USERS).map(|_| UserId(Uuid::new_v4())).collect();
    within(repo.insert_many(&history(&users, 300)))
        .await
        .expect("insert");
    let client = within(db.pool().get()).await.expect("connection");
    within(client.batch_execute("analyze transactions"))
        .await
        .expect("analyze");
    let user = users[3].as_uuid();
    // The partition the user's rows are in, and the index of it that
    // belongs to ix_user_date_amount_id.
    let partition: String = within(client.query_one(
        "select tableoid::regclass::text from transactions where user_id = $1 limit 1",
        &[&user],
    ))
    .await
    .expect("partition")
    .get(0);
    let index: String = within(client.query_one(
        "select i.inhrelid::regclass::text from pg_inherits i \
         join pg_index x on x.indexrelid = i.inhrelid \
         where i.inhparent = 'ix_user_date_amount_id'::regclass \
           and x.indrelid = $1::text::regclass",
        &[&partition],
    ))
    .await
    .expect("the partition's index")
    .get(0);

    // The server's statement, prepared, under the generic plan a
    // long-running server ends up with: pruning then happens when it runs.
    for mode in ["force_custom_plan", "force_generic_plan"] {
        within(client.batch_execute(&format!(
            "set plan_cache_mode = {mode}; deallocate all; \
             prepare first_page(uuid, timestamptz, timestamptz, numeric, numeric, bigint) as {FIRST_PAGE_SQL}"
        )))
        .await
        .expect("prepare");
        let plan: Vec<String> = within(client.query(
            &format!(
                "explain (analyze, costs off, timing off, summary off) \
                 execute first_page('{user}', '2000-01-01', '2100-01-01', 0, 10000000000, 101)"
            ),
            &[],
        ))
        .await
        .expect("explain")
        .iter()
        .map(|row| row.get(0))
        .collect();
        let plan = plan.join("\n");
        eprintln!("{mode}:\n{plan}");
        let scans: Vec<&str> = plan.lines().filter(|l| l.contains(" Scan")).collect();
        assert_eq!(scans.len(), 1, "one scan node ({mode}):\n{plan}");
        assert!(
            scans[0].contains(&format!("Index Scan Backward using {index} on {partition}")),
            "a backward scan of {index} on {partition} ({mode}):\n{plan}"
        );
        assert!(!plan.contains("Seq Scan"), "{plan}");
    }
}
