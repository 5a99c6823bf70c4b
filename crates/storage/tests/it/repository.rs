use std::time::Duration;

use time::OffsetDateTime;
use time::macros::datetime;
use txwatch_domain::{Amount, Origin, Score, Transaction, TransactionId, UserId, Verdict};
use txwatch_storage::testing::{TestDatabase, transaction};
use txwatch_storage::{PageQuery, StorageError, TransactionRepository, key_of};
use uuid::Uuid;

use crate::within;

fn new_user() -> UserId {
    UserId(Uuid::new_v4())
}

async fn store_all(repo: &TransactionRepository, rows: &[Transaction]) {
    let mut bulk = within(repo.bulk_insert()).await.expect("start copy");
    for row in rows {
        within(bulk.write(row)).await.expect("write row");
    }
    assert_eq!(
        within(bulk.finish()).await.expect("finish copy"),
        rows.len() as u64
    );
}

fn everything(user_id: UserId, limit: u32) -> PageQuery {
    PageQuery {
        user_id,
        from: datetime!(2000-01-01 0:00 UTC),
        to: datetime!(2100-01-01 0:00 UTC),
        min_amount: Amount::ZERO,
        max_amount: Amount::max_value(),
        limit,
        after: None,
    }
}

/// Rows where many share a `txn_date`: `groups` dates with `per_group` rows each.
fn tied_rows(user_id: UserId, groups: i64, per_group: usize) -> Vec<Transaction> {
    let base = datetime!(2026-03-01 12:00 UTC);
    (0..groups)
        .flat_map(|g| {
            let at = base - time::Duration::minutes(g);
            (0..per_group)
                .map(move |i| transaction(user_id, at, &format!("{}.{:02}", 10 + i, g % 100)))
        })
        .collect()
}

#[tokio::test]
async fn a_stored_transaction_reads_back_with_its_verdict() {
    let db = TestDatabase::create().await;
    let repo = TransactionRepository::new(db.pool().clone());
    let user = new_user();
    let mut row = transaction(user, datetime!(2026-01-02 03:04:05.123456 UTC), "271.62");
    row.verdict = Verdict::Scored(Score {
        is_anomaly: true,
        score: 0.75,
        window_len: 20,
        baseline: 12.5,
        threshold: 62.5,
    });
    within(repo.insert(&row)).await.expect("insert");
    let page = within(repo.page(&everything(user, 10)))
        .await
        .expect("page");
    assert_eq!(page.transactions, vec![row]);
    assert!(!page.has_more);
}

#[tokio::test]
async fn inserting_the_same_id_twice_is_reported_as_a_duplicate() {
    let db = TestDatabase::create().await;
    let repo = TransactionRepository::new(db.pool().clone());
    let row = transaction(new_user(), OffsetDateTime::now_utc(), "1");
    within(repo.insert(&row)).await.expect("first insert");
    match within(repo.insert(&row)).await {
        Err(StorageError::Duplicate) => {}
        other => panic!("expected a duplicate, got {other:?}"),
    }
}

#[tokio::test]
async fn walking_pages_returns_every_row_once_in_order_even_with_tied_dates() {
    let db = TestDatabase::create().await;
    let repo = TransactionRepository::new(db.pool().clone());
    let user = new_user();
    let other_user = new_user();
    store_all(&repo, &tied_rows(user, 23, 7)).await;
    store_all(&repo, &tied_rows(other_user, 5, 3)).await;

    let unbounded = within(repo.page(&everything(user, 100_000)))
        .await
        .expect("all rows");
    assert_eq!(unbounded.transactions.len(), 23 * 7);
    for pair in unbounded.transactions.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(a.txn_date > b.txn_date || (a.txn_date == b.txn_date && a.id < b.id));
    }
    for page_size in [1, 2, 3, 5, 7, 10, 50, 161, 1000] {
        let mut query = everything(user, page_size);
        let mut walked = Vec::new();
        loop {
            let page = within(repo.page(&query)).await.expect("page");
            if page.transactions.is_empty() {
                break;
            }
            assert!(page.transactions.len() <= page_size as usize);
            query.after = page.end();
            walked.extend(page.transactions);
        }
        assert_eq!(walked, unbounded.transactions, "page size {page_size}");
    }
}

#[tokio::test]
async fn filters_include_their_bounds_and_exclude_what_lies_beyond() {
    let db = TestDatabase::create().await;
    let repo = TransactionRepository::new(db.pool().clone());
    let user = new_user();
    let day = |d: u8| {
        datetime!(2026-05-01 0:00 UTC)
            .replace_day(d)
            .expect("valid day")
    };
    let rows = vec![
        transaction(user, day(1), "10.00"),
        transaction(user, day(2), "9.99"),
        transaction(user, day(3), "20.00"),
        transaction(user, day(4), "20.01"),
        transaction(user, day(5), "15.00"),
    ];
    store_all(&repo, &rows).await;
    let query = PageQuery {
        from: day(1),
        to: day(4),
        min_amount: "10".parse().expect("amount"),
        max_amount: "20".parse().expect("amount"),
        ..everything(user, 100)
    };
    let page = within(repo.page(&query)).await.expect("page");
    let dates: Vec<_> = page.transactions.iter().map(|t| t.txn_date.day()).collect();
    assert_eq!(dates, [3, 1]);
}

#[tokio::test]
async fn has_more_tells_whether_another_page_follows() {
    let db = TestDatabase::create().await;
    let repo = TransactionRepository::new(db.pool().clone());
    let user = new_user();
    store_all(&repo, &tied_rows(user, 2, 2)).await;
    assert!(
        within(repo.page(&everything(user, 3)))
            .await
            .expect("page")
            .has_more
    );
    assert!(
        !within(repo.page(&everything(user, 4)))
            .await
            .expect("page")
            .has_more
    );
}

#[tokio::test]
async fn users_lists_each_user_with_transactions_once_in_id_order() {
    let db = TestDatabase::create().await;
    let repo = TransactionRepository::new(db.pool().clone());
    assert_eq!(within(repo.users()).await.expect("users"), vec![]);
    let mut users: Vec<UserId> = (0..5).map(|_| new_user()).collect();
    for user in &users {
        store_all(&repo, &tied_rows(*user, 3, 2)).await;
    }
    users.sort();
    assert_eq!(within(repo.users()).await.expect("users"), users);
}

#[tokio::test]
async fn latest_amounts_are_the_newest_n_oldest_first() {
    let db = TestDatabase::create().await;
    let repo = TransactionRepository::new(db.pool().clone());
    let user = new_user();
    let base = datetime!(2026-01-01 0:00 UTC);
    let rows: Vec<_> = (1..=30)
        .map(|i| transaction(user, base + time::Duration::hours(i), &format!("{i}")))
        .collect();
    store_all(&repo, &rows).await;
    let latest = within(repo.latest_amounts(user, 20, Origin::Real))
        .await
        .expect("amounts");
    let expected: Vec<Amount> = (11..=30)
        .map(|i| i.to_string().parse().expect("amount"))
        .collect();
    assert_eq!(latest, expected);
    assert!(
        within(repo.latest_amounts(new_user(), 20, Origin::Real))
            .await
            .expect("amounts")
            .is_empty()
    );
}

#[tokio::test]
async fn a_bulk_insert_with_a_stored_id_stores_nothing() {
    let db = TestDatabase::create().await;
    let repo = TransactionRepository::new(db.pool().clone());
    let user = new_user();
    let existing = transaction(user, OffsetDateTime::now_utc(), "5");
    within(repo.insert(&existing)).await.expect("insert");
    let mut bulk = within(repo.bulk_insert()).await.expect("start copy");
    let fresh = transaction(user, OffsetDateTime::now_utc(), "6");
    within(bulk.write(&fresh)).await.expect("write");
    within(bulk.write(&existing)).await.expect("write");
    assert!(matches!(
        within(bulk.finish()).await,
        Err(StorageError::Duplicate)
    ));
    let page = within(repo.page(&everything(user, 10)))
        .await
        .expect("page");
    assert_eq!(
        page.transactions
            .iter()
            .map(|t| t.id)
            .collect::<Vec<TransactionId>>(),
        [existing.id]
    );
}

#[tokio::test]
async fn concurrent_migrations_apply_each_migration_once() {
    let db = TestDatabase::create_unmigrated().await;
    let url = db.config().url.clone();
    let runs = (0..4).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { txwatch_storage::migrate(&url).await })
    });
    for run in runs {
        within(run).await.expect("task").expect("migration");
    }
    let client = db.pool().get().await.expect("connection");
    let applied: i64 = client
        .query_one("select count(*) from refinery_schema_history", &[])
        .await
        .expect("history")
        .get(0);
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations"))
        .expect("migrations folder")
        .count();
    assert_eq!(applied as usize, files);
}

#[tokio::test]
async fn an_unreachable_database_is_reported_as_unavailable() {
    let config = txwatch_storage::StorageConfig {
        url: "postgres://postgres@127.0.0.1:1/nowhere".into(),
        max_connections: 1,
        connect_timeout_ms: 1000,
        acquire_timeout_ms: 1000,
        statement_timeout_ms: 0,
        query_timeout_ms: 1000,
        dead_connection_timeout_ms: 0,
        read_urls: Vec::new(),
        replica_max_lag_ms: 2_000,
        replica_check_interval_ms: 500,
    };
    let repo = TransactionRepository::new(txwatch_storage::connect(&config).expect("pool"));
    let error = within(repo.users())
        .await
        .expect_err("nothing listens on port 1");
    assert!(error.is_unavailable(), "{error:?}");
}

#[tokio::test]
async fn latest_entries_follow_the_index_order_for_each_user() {
    let db = TestDatabase::create().await;
    let repo = TransactionRepository::new(db.pool().clone());
    let (alice, bob, nobody) = (new_user(), new_user(), new_user());
    let at = datetime!(2026-02-01 0:00 UTC);
    // Ties on the date are ordered by amount, then id.
    let mut rows: Vec<Transaction> = (0..12)
        .map(|i| {
            transaction(
                alice,
                at + time::Duration::minutes(i / 3),
                &format!("{}", 9 - i % 3),
            )
        })
        .collect();
    rows.extend((0..3).map(|i| transaction(bob, at, &format!("{i}"))));
    store_all(&repo, &rows).await;
    let latest = within(repo.latest_entries(&[alice, bob, nobody], 5, Origin::Real))
        .await
        .expect("entries");
    let mut expected: Vec<&Transaction> = rows.iter().filter(|t| t.user_id == alice).collect();
    expected.sort_by_key(|t| (t.txn_date, t.amount, t.id));
    let expected: Vec<_> = expected[expected.len() - 5..]
        .iter()
        .map(|t| (t.id, t.txn_date, t.amount))
        .collect();
    let got: Vec<_> = latest[&alice]
        .iter()
        .map(|e| (e.id, e.txn_date, e.amount))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(latest[&bob].len(), 3);
    assert!(latest[&nobody].is_empty());
}

#[tokio::test]
async fn insert_many_skips_stored_ids_and_says_which_it_stored() {
    let db = TestDatabase::create().await;
    let repo = TransactionRepository::new(db.pool().clone());
    let user = new_user();
    let existing = transaction(user, datetime!(2026-03-01 10:00:00.5 UTC), "5");
    within(repo.insert(&existing)).await.expect("insert");
    let mut fresh = transaction(user, datetime!(2026-03-01 10:00:01.25 UTC), "6");
    fresh.verdict = Verdict::Scored(Score {
        is_anomaly: true,
        score: 1.5,
        window_len: 20,
        baseline: 1.0,
        threshold: 5.0,
    });
    let stored = within(repo.insert_many(&[fresh.clone(), existing.clone()]))
        .await
        .expect("insert many");
    assert_eq!(stored, vec![(user, fresh.id)]);
    let mut found = within(repo.find_many(&[
        (user, fresh.id),
        (user, existing.id),
        (user, TransactionId(Uuid::new_v4())),
        // A stored id asked for another user: not that user's.
        (new_user(), existing.id),
    ]))
    .await
    .expect("find");
    found.sort_by_key(|t| t.amount);
    assert_eq!(found, vec![existing, fresh]);
    assert!(
        within(repo.insert_many(&[]))
            .await
            .expect("empty")
            .is_empty()
    );
}

#[tokio::test]
async fn a_database_without_the_schema_is_not_ready_until_it_is_migrated() {
    let db = TestDatabase::create_unmigrated().await;
    match within(txwatch_storage::ping(db.pool(), Duration::from_secs(5))).await {
        Err(StorageError::Unavailable(_)) => {}
        other => panic!("expected Unavailable before migrating, got {other:?}"),
    }
    // Queries meanwhile are a wait for the schema, not a query failure.
    let repo = TransactionRepository::new(db.pool().clone());
    match within(repo.users()).await {
        Err(StorageError::Unavailable(_)) => {}
        other => panic!("expected Unavailable from a query, got {other:?}"),
    }
    within(txwatch_storage::migrate(&db.config().url))
        .await
        .expect("migration");
    within(txwatch_storage::ping(db.pool(), Duration::from_secs(5)))
        .await
        .expect("ready once migrated");
}

#[tokio::test]
async fn the_origin_of_a_transaction_is_stored_and_windows_read_one_origin_only() {
    let db = TestDatabase::create().await;
    let repo = TransactionRepository::new(db.pool().clone());
    let user = new_user();
    let base = datetime!(2026-03-01 0:00 UTC);
    // Real and simulated rows interleaved in time; the simulated ones newer
    // at the end, as when someone watches a user's simulation.
    let rows: Vec<Transaction> = (0..10)
        .map(|i| {
            let mut row = transaction(user, base + time::Duration::minutes(i), &format!("{i}"));
            if i % 2 == 1 || i >= 8 {
                row.origin = Origin::Simulated;
            }
            row
        })
        .collect();
    // One statement for some, COPY for the rest: both paths store the origin.
    within(repo.insert_many(&rows[..5])).await.expect("insert");
    store_all(&repo, &rows[5..]).await;
    let mut found = within(repo.find_many(&rows.iter().map(key_of).collect::<Vec<_>>()))
        .await
        .expect("found");
    found.sort_by_key(|t| t.txn_date);
    assert_eq!(found, rows);

    let real = within(repo.latest_amounts(user, 3, Origin::Real))
        .await
        .expect("real amounts");
    assert_eq!(
        real,
        ["2", "4", "6"].map(|a| a.parse::<Amount>().expect("amount"))
    );
    let simulated = within(repo.latest_entries(&[user], 3, Origin::Simulated))
        .await
        .expect("simulated entries");
    let amounts: Vec<String> = simulated[&user]
        .iter()
        .map(|e| e.amount.to_string())
        .collect();
    assert_eq!(amounts, ["7.00", "8.00", "9.00"]);
}

/// Amounts read back exactly, from a cent to the column's largest value, by
/// the page query, the window query and the latest amounts alike (each
/// reads the binary NUMERIC straight into cents).
#[tokio::test]
async fn amounts_of_every_size_read_back_exactly() {
    let db = TestDatabase::create().await;
    let repo = TransactionRepository::new(db.pool().clone());
    let user = new_user();
    let texts = [
        "0.00",
        "0.01",
        "0.10",
        "1",
        "12.30",
        "100.05",
        "9999.99",
        "10000",
        "100000000.01",
        "123456789012345678.90",
        "999999999999999999.99",
    ];
    let base = datetime!(2026-03-01 12:00 UTC);
    let rows: Vec<Transaction> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| transaction(user, base + time::Duration::minutes(i as i64), text))
        .collect();
    store_all(&repo, &rows).await;

    let page = within(repo.page(&everything(user, 100)))
        .await
        .expect("page");
    let mut read: Vec<Amount> = page.transactions.iter().map(|t| t.amount).collect();
    read.reverse(); // newest first
    let wanted: Vec<Amount> = texts.iter().map(|t| t.parse().expect("amount")).collect();
    assert_eq!(read, wanted);

    let latest = within(repo.latest_amounts(user, texts.len(), Origin::Real))
        .await
        .expect("latest amounts");
    assert_eq!(latest, wanted);
    let entries = within(repo.latest_entries(&[user], texts.len(), Origin::Real))
        .await
        .expect("latest entries");
    let amounts: Vec<Amount> = entries[&user].iter().map(|e| e.amount).collect();
    assert_eq!(amounts, wanted);
}

#[tokio::test]
async fn an_id_is_unique_per_user_so_another_users_same_id_is_another_transaction() {
    let db = TestDatabase::create().await;
    let repo = TransactionRepository::new(db.pool().clone());
    let (alice, bob) = (new_user(), new_user());
    let theirs = transaction(alice, datetime!(2026-03-01 10:00:00 UTC), "5");
    within(repo.insert(&theirs)).await.expect("insert");
    // Alice's id again: a duplicate, by the one statement and by insert.
    let again = within(repo.insert_many(std::slice::from_ref(&theirs)))
        .await
        .expect("insert many");
    assert!(again.is_empty(), "{again:?}");
    match within(repo.insert(&theirs)).await {
        Err(StorageError::Duplicate) => {}
        other => panic!("expected a duplicate, got {other:?}"),
    }
    // The same id for Bob, by both paths of insert_many (statement and COPY).
    let mut bobs = transaction(bob, datetime!(2026-03-02 10:00:00 UTC), "7");
    bobs.id = theirs.id;
    let stored = within(repo.insert_many(&[bobs.clone()]))
        .await
        .expect("insert many");
    assert_eq!(stored, vec![(bob, theirs.id)]);
    let carol = new_user();
    let many: Vec<Transaction> = (0..70)
        .map(|i| {
            let mut row = transaction(carol, datetime!(2026-03-03 10:00:00 UTC), &format!("{i}"));
            if i == 0 {
                row.id = theirs.id;
            }
            row
        })
        .collect();
    let stored = within(repo.insert_many(&many)).await.expect("copy");
    assert_eq!(stored.len(), 70);
    let found = within(repo.find_many(&[(alice, theirs.id), (bob, theirs.id)]))
        .await
        .expect("find");
    assert_eq!(found.len(), 2);
    assert!(
        found.contains(&theirs) && found.contains(&bobs),
        "{found:?}"
    );
}
