//! Client-side deadlines: a call that gets no answer in time gives up and
//! closes its connection, and a write whose answer is lost is settled (or
//! said to be unknown) rather than called failed.

use std::time::{Duration, Instant};

use time::OffsetDateTime;
use txwatch_domain::{Transaction, UserId};
use txwatch_storage::testing::{TestDatabase, transaction};
use txwatch_storage::{StorageConfig, StorageError, TransactionRepository};
use uuid::Uuid;

use crate::within;

/// A repository on `db` whose calls may wait `query_timeout_ms` for answers,
/// without a server-side statement timeout, on at most two connections.
fn repository(db: &TestDatabase, query_timeout_ms: u64) -> TransactionRepository {
    let config = StorageConfig {
        max_connections: 2,
        statement_timeout_ms: 0,
        query_timeout_ms,
        ..db.config().clone()
    };
    TransactionRepository::new(txwatch_storage::connect(&config).expect("pool"))
}

fn rows(n: usize) -> Vec<Transaction> {
    let user = UserId(Uuid::new_v4());
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("a date");
    (0..n).map(|_| transaction(user, now, "12.50")).collect()
}

async fn count(db: &TestDatabase, rows: &[Transaction]) -> i64 {
    let ids: Vec<Uuid> = rows.iter().map(|t| t.id.as_uuid()).collect();
    let client = within(db.pool().get()).await.expect("connection");
    within(client.query_one(
        "select count(*) from transactions where id = any($1)",
        &[&ids],
    ))
    .await
    .expect("count")
    .get(0)
}

/// Stores a row, so the pool's one connection has the insert prepared: an
/// `exclusive` lock then holds the insert itself, not its preparation
/// (which waits for the same lock).
async fn prepare_the_insert(repo: &TransactionRepository) {
    within(repo.insert_many(&rows(1)))
        .await
        .expect("a first insert");
    assert_eq!(repo.pool().status().size, 1);
}

#[tokio::test]
async fn a_read_without_an_answer_in_time_gives_up_and_its_connection_is_closed() {
    let db = TestDatabase::create().await;
    let repo = repository(&db, 500);
    within(repo.users()).await.expect("a first read");
    assert!(repo.pool().status().size >= 1);

    let release = db.lock_table("access exclusive").await;
    let started = Instant::now();
    let error = within(repo.users()).await.expect_err("the table is locked");
    assert!(error.is_unavailable(), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Neither the silent connection nor the idle ones went back to the pool.
    assert_eq!(repo.pool().status().size, 0);

    drop(release);
    within(async {
        while repo.users().await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_write_without_an_answer_is_reported_unknown_and_writing_it_again_stores_it_once() {
    let db = TestDatabase::create().await;
    let repo = repository(&db, 500);
    prepare_the_insert(&repo).await;
    let batch = rows(3);
    let release = db.lock_table("exclusive").await;
    let error = within(repo.insert_many(&batch))
        .await
        .expect_err("the table is locked");
    assert!(error.is_outcome_unknown(), "{error:?}");

    drop(release);
    within(async {
        loop {
            match repo.insert_many(&batch).await {
                Ok(_) => return,
                Err(error) => assert!(error.is_unavailable() || error.is_outcome_unknown()),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(count(&db, &batch).await, 3);
}

/// The lost write is still waiting in Postgres when the server looks for
/// it: the insert that settles it waits for it, and finds it stored.
#[tokio::test]
async fn a_write_whose_answer_is_late_is_settled_as_stored_once_it_commits() {
    let db = TestDatabase::create().await;
    let repo = repository(&db, 2_000);
    prepare_the_insert(&repo).await;
    let batch = rows(3);
    let release = db.lock_table("exclusive").await;
    // Released after the first attempt gave up (2 s), while the settling
    // insert waits (until 4 s at the earliest).
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(3_000)).await;
        let _ = release.send(());
    });
    let stored = within(repo.insert_many(&batch))
        .await
        .expect("settled once the table is free");
    let mut stored: Vec<Uuid> = stored.iter().map(|(_, id)| id.as_uuid()).collect();
    let mut expected: Vec<Uuid> = batch.iter().map(|t| t.id.as_uuid()).collect();
    stored.sort_unstable();
    expected.sort_unstable();
    assert_eq!(stored, expected);
    assert_eq!(count(&db, &batch).await, 3);
}

#[tokio::test]
async fn a_write_refused_by_postgres_is_known_to_have_stored_nothing() {
    let db = TestDatabase::create().await;
    let config = StorageConfig {
        statement_timeout_ms: 300,
        query_timeout_ms: 5_000,
        ..db.config().clone()
    };
    let repo = TransactionRepository::new(txwatch_storage::connect(&config).expect("pool"));
    prepare_the_insert(&repo).await;
    let batch = rows(3);
    let release = db.lock_table("exclusive").await;
    // Postgres cancels the insert after 300 ms: an answer, so the outcome
    // is known.
    let error = within(repo.insert_many(&batch))
        .await
        .expect_err("the table is locked");
    assert!(matches!(error, StorageError::Unavailable(_)), "{error:?}");
    drop(release);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count(&db, &batch).await, 0);
}
