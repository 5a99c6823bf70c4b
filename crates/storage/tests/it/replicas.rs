//! Reads on a real streaming standby (`scripts/pg-cluster.sh`): they go to
//! it while it keeps up, and to the primary while it lags.

use std::time::Duration;

use time::macros::datetime;
use txwatch_domain::{Amount, UserId};
use txwatch_storage::testing::{PgCluster, transaction};
use txwatch_storage::{PageQuery, ReplicaState, Replicas, StorageConfig, TransactionRepository};
use uuid::Uuid;

use crate::within;

fn config(cluster: &PgCluster, name: &str) -> StorageConfig {
    StorageConfig {
        url: cluster.primary_url(name),
        max_connections: 4,
        connect_timeout_ms: 2_000,
        acquire_timeout_ms: 2_000,
        statement_timeout_ms: 5_000,
        query_timeout_ms: 6_000,
        dead_connection_timeout_ms: 5_000,
        read_urls: vec![cluster.standby_url(name)],
        replica_max_lag_ms: 800,
        replica_check_interval_ms: 100,
    }
}

fn history_of(user: UserId) -> PageQuery {
    PageQuery {
        user_id: user,
        from: datetime!(2000-01-01 0:00 UTC),
        to: datetime!(2100-01-01 0:00 UTC),
        min_amount: Amount::try_new(0.into()).expect("amount"),
        max_amount: "10000000000".parse().expect("amount"),
        limit: 1000,
        after: None,
    }
}

/// Waits (up to 20 s) until the standby is in `state`.
async fn until_state(replicas: &Replicas, state: ReplicaState) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = replicas.status()[0].clone();
        if now.state == state {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the standby never became {state:?}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks the standby by hand until it is up (up to 20 s).
async fn until_checked_up(replicas: &Replicas, primary: &txwatch_storage::PgPool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        within(replicas.check(primary)).await;
        let now = replicas.status()[0].clone();
        if now.state == ReplicaState::Up {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the standby never came up: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn on_standby(cluster: &PgCluster, name: &str, sql: &str) {
    let (client, connection) =
        tokio_postgres::connect(&cluster.standby_url(name), tokio_postgres::NoTls)
            .await
            .expect("connect to the standby");
    tokio::spawn(connection);
    within(client.batch_execute(sql)).await.expect(sql);
}

#[tokio::test]
async fn reads_go_to_the_standby_while_it_keeps_up_and_to_the_primary_while_it_lags() {
    let cluster = PgCluster::start().await;
    cluster.create_database("txwatch").await;
    let config = config(&cluster, "txwatch");
    let primary = txwatch_storage::connect(&config).expect("pool");
    let replicas = Replicas::connect(&config).expect("urls").expect("one");
    let monitor = tokio::spawn(replicas.clone().monitor(primary.clone()));
    let repo = TransactionRepository::new(primary).with_replicas(Some(replicas.clone()));

    let user = UserId(Uuid::new_v4());
    let first = transaction(user, datetime!(2026-03-01 10:00 UTC), "10");
    within(repo.insert_many(std::slice::from_ref(&first)))
        .await
        .expect("insert");
    until_state(&replicas, ReplicaState::Up).await;
    // Replicated within the lag bound: the standby answers, with the row.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = within(repo.page(&history_of(user))).await.expect("page");
        if page.transactions == vec![first.clone()] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never replicated");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = (replicas.status()[0].reads, replicas.primary_reads());
    assert_eq!(
        within(repo.users()).await.expect("users"),
        vec![user],
        "the users listing"
    );
    within(repo.page(&history_of(user))).await.expect("page");
    let after = (replicas.status()[0].reads, replicas.primary_reads());
    assert_eq!(after.0, before.0 + 2, "both reads went to the standby");
    assert_eq!(after.1, before.1, "none to the primary");

    // Replay paused, the primary writes on: the standby falls behind past
    // the bound and is skipped; the primary answers, with the new row the
    // standby lacks.
    on_standby(&cluster, "txwatch", "select pg_wal_replay_pause()").await;
    let second = transaction(user, datetime!(2026-03-01 11:00 UTC), "20");
    within(repo.insert_many(std::slice::from_ref(&second)))
        .await
        .expect("insert");
    until_state(&replicas, ReplicaState::Lagging).await;
    // Lagging means more than 800 ms behind; the figure is in whole ms.
    let lag = replicas.status()[0].lag_ms.expect("measured");
    assert!(lag >= 800, "lag {lag} ms");
    let before = (replicas.status()[0].reads, replicas.primary_reads());
    let page = within(repo.page(&history_of(user))).await.expect("page");
    assert_eq!(page.transactions, vec![second.clone(), first.clone()]);
    let after = (replicas.status()[0].reads, replicas.primary_reads());
    assert_eq!(after, (before.0, before.1 + 1), "the primary answered");

    // Replay resumed: back within the bound, reads return to the standby.
    on_standby(&cluster, "txwatch", "select pg_wal_replay_resume()").await;
    until_state(&replicas, ReplicaState::Up).await;
    let before = replicas.status()[0].reads;
    let page = within(repo.page(&history_of(user))).await.expect("page");
    assert_eq!(page.transactions, vec![second, first]);
    assert_eq!(replicas.status()[0].reads, before + 1);
    monitor.abort();
}

#[tokio::test]
async fn a_stopped_standby_is_skipped_at_once_and_used_again_once_back() {
    let cluster = PgCluster::start().await;
    cluster.create_database("txwatch").await;
    let config = config(&cluster, "txwatch");
    let primary = txwatch_storage::connect(&config).expect("pool");
    let replicas = Replicas::connect(&config).expect("urls").expect("one");
    let repo = TransactionRepository::new(primary.clone()).with_replicas(Some(replicas.clone()));
    // Checks by hand: the read that meets the stopped standby is the one
    // that finds it down. The standby may not have replayed the database's
    // creation yet: check until it is up.
    until_checked_up(&replicas, &primary).await;
    within(repo.users()).await.expect("users");
    assert_eq!(replicas.status()[0].reads, 1);

    cluster.stop_standby().await;
    let users = within(repo.users()).await.expect("the primary answers");
    assert!(users.is_empty());
    let status = replicas.status()[0].clone();
    assert_eq!(status.state, ReplicaState::Down, "{status:?}");
    assert_eq!(status.fallbacks, 1);
    assert_eq!(replicas.primary_reads(), 1);
    // Skipped from then on, without trying it.
    within(repo.users()).await.expect("users");
    assert_eq!(replicas.status()[0].fallbacks, 1);
    assert_eq!(replicas.primary_reads(), 2);
    within(replicas.check(&primary)).await;
    assert_eq!(replicas.status()[0].state, ReplicaState::Down);

    cluster.start_standby().await;
    until_checked_up(&replicas, &primary).await;
    within(repo.users()).await.expect("users");
    assert_eq!(replicas.status()[0].reads, 2);
}
