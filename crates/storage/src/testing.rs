//! Throwaway databases for tests: each test gets its own `test_<uuid>`
//! database with the real migrations applied, dropped when it goes out of
//! scope.

use tokio_postgres::NoTls;

use crate::config::StorageConfig;
use crate::pool::{PgPool, connect};

/// The history query's first page, exactly as the repository sends it
/// (`$1` user, `$2`/`$3` dates, `$4`/`$5` amounts, `$6` rows), for tests
/// that EXPLAIN it.
pub const FIRST_PAGE_SQL: &str = crate::transactions::FIRST_PAGE;

/// Where tests find PostgreSQL: `TEST_DATABASE_URL`, else the local server
/// with the `postgres` user.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A migrated database of a test's own, dropped (with force) on drop.
pub struct TestDatabase {
    name: String,
    config: StorageConfig,
    pool: PgPool,
}

impl TestDatabase {
    /// Creates and migrates a fresh database.
    ///
    /// # Panics
    /// When PostgreSQL cannot be reached: a test cannot run without it, and
    /// the message says how to start it.
    pub async fn create() -> TestDatabase {
        let db = TestDatabase::create_unmigrated().await;
        crate::migrate(&db.config.url)
            .await
            .expect("migrate the test database");
        db
    }

    /// Creates a fresh database migrated up to and including `version`, as
    /// an older release left it.
    ///
    /// # Panics
    /// When PostgreSQL cannot be reached.
    pub async fn create_at_version(version: i32) -> TestDatabase {
        let db = TestDatabase::create_unmigrated().await;
        crate::migrate::migrate_to(&db.config.url, Some(version))
            .await
            .expect("migrate the test database");
        db
    }

    /// Creates a fresh, empty database without running migrations.
    ///
    /// # Panics
    /// When PostgreSQL cannot be reached.
    pub async fn create_unmigrated() -> TestDatabase {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let admin = admin_client().await;
        admin
            .batch_execute(&format!("create database {name}"))
            .await
            .expect("create a test database");
        let url = database_url(&server_url(), &name);
        let config = StorageConfig {
            url: url.clone(),
            max_connections: 8,
            connect_timeout_ms: 5_000,
            acquire_timeout_ms: 5_000,
            statement_timeout_ms: 30_000,
            // Longer than the statement timeout, as in production; generous
            // for a loaded machine.
            query_timeout_ms: 40_000,
            dead_connection_timeout_ms: 15_000,
            read_urls: Vec::new(),
            replica_max_lag_ms: 2_000,
            replica_check_interval_ms: 500,
        };
        let pool = connect(&config).expect("build the test pool");
        TestDatabase { name, config, pool }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Settings that reach this database.
    pub fn config(&self) -> &StorageConfig {
        &self.config
    }

    /// A pool on this database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Holds `lock table transactions in <mode> mode` on a connection of
    /// its own until the returned sender is sent to or dropped, then rolls
    /// back: a stand-in for a database that does not answer.
    ///
    /// # Panics
    /// When the lock cannot be taken within 30 s.
    pub async fn lock_table(&self, mode: &'static str) -> tokio::sync::oneshot::Sender<()> {
        let pool = self.pool.clone();
        let (locked, is_locked) = tokio::sync::oneshot::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let mut client = pool.get().await.expect("connection");
            let lock = client.transaction().await.expect("begin");
            lock.batch_execute(&format!("lock table transactions in {mode} mode"))
                .await
                .expect("table locked");
            let _ = locked.send(());
            let _ = released.await;
            lock.rollback().await.expect("table unlocked");
        });
        tokio::time::timeout(std::time::Duration::from_secs(30), is_locked)
            .await
            .expect("the lock is taken in time")
            .expect("the lock is taken");
        release
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        self.pool.close();
        let name = self.name.clone();
        // Drop runs outside async code; a small runtime on its own thread
        // does the cleanup whichever runtime (if any) is current.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let admin = admin_client().await;
                admin
                    .batch_execute(&format!("drop database if exists {name} with (force)"))
                    .await
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        });
        if let Ok(Err(error)) = cleanup.join() {
            eprintln!("could not drop test database: {error}");
        }
    }
}

async fn admin_client() -> tokio_postgres::Client {
    let url = server_url();
    let (client, connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach PostgreSQL at {url} ({e}). Start it: \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
             or `just up-services` with Docker, or set TEST_DATABASE_URL"
            )
        });
    tokio::spawn(connection);
    client
}

/// `url` with its database replaced by `name`.
pub fn database_url(url: &str, name: &str) -> String {
    match url.rsplit_once('/') {
        Some((server, rest)) if !server.ends_with('/') => {
            let query = rest
                .split_once('?')
                .map(|(_, q)| format!("?{q}"))
                .unwrap_or_default();
            format!("{server}/{name}{query}")
        }
        _ => format!("{}/{name}", url.trim_end_matches('/')),
    }
}

/// A transaction for fixtures: `paid`, `INR`, not simulated, not judged,
/// with a fresh id.
pub fn transaction(
    user_id: txwatch_domain::UserId,
    txn_date: time::OffsetDateTime,
    amount: &str,
) -> txwatch_domain::Transaction {
    txwatch_domain::Transaction {
        id: txwatch_domain::TransactionId(uuid::Uuid::new_v4()),
        user_id,
        amount: amount.parse().expect("fixture amounts are valid"),
        currency: txwatch_domain::Currency::INR,
        txn_date,
        status: txwatch_domain::Status::PAID,
        origin: txwatch_domain::Origin::Real,
        verdict: txwatch_domain::Verdict::NotEnoughHistory { have: 0 },
    }
}

/// A PostgreSQL primary with one streaming standby of its own, started by
/// `scripts/pg-cluster.sh` in a temporary folder on free ports, and torn
/// down on drop. Tests that need it fail (never skip) when it cannot start.
pub struct PgCluster {
    dir: String,
    primary: String,
    standby: String,
}

/// The cluster script, found from this crate's folder (cargo runs tests
/// from their crate's folder, but the path does not depend on it).
const CLUSTER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg-cluster.sh");

impl PgCluster {
    /// Starts the primary and the standby and waits until it streams.
    ///
    /// # Panics
    /// When the script fails: the message carries its output.
    pub async fn start() -> PgCluster {
        let out = run_script(vec!["start".to_owned()]).await;
        let value = |key: &str| {
            out.lines()
                .find_map(|line| line.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("pg-cluster.sh printed no {key}: {out}"))
                .to_owned()
        };
        PgCluster {
            dir: value("PG_CLUSTER_DIR"),
            primary: value("PG_PRIMARY_URL"),
            standby: value("PG_STANDBY_URL"),
        }
    }

    /// The primary's URL for database `name`.
    pub fn primary_url(&self, name: &str) -> String {
        database_url(&self.primary, name)
    }

    /// The standby's URL for database `name`.
    pub fn standby_url(&self, name: &str) -> String {
        database_url(&self.standby, name)
    }

    /// Stops the standby (fast shutdown: its connections are closed).
    ///
    /// # Panics
    /// When the script fails.
    pub async fn stop_standby(&self) {
        run_script(vec!["stop-standby".to_owned(), self.dir.clone()]).await;
    }

    /// Starts the standby again and waits until it streams.
    ///
    /// # Panics
    /// When the script fails.
    pub async fn start_standby(&self) {
        run_script(vec!["start-standby".to_owned(), self.dir.clone()]).await;
    }

    /// Creates database `name` on the primary, migrated; the standby
    /// receives it by replication.
    ///
    /// # Panics
    /// When the primary refuses.
    pub async fn create_database(&self, name: &str) {
        let (client, connection) = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            tokio_postgres::connect(&self.primary, NoTls),
        )
        .await
        .expect("the cluster's primary answered in time")
        .expect("connect to the cluster's primary");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("create database {name}"))
            .await
            .expect("create a database on the primary");
        crate::migrate(&self.primary_url(name))
            .await
            .expect("migrate the primary");
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let status = std::process::Command::new("bash")
            .args([CLUSTER_SCRIPT, "stop", &self.dir])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!(
                "could not tear down the cluster in {}: {status:?}",
                self.dir
            );
        }
    }
}

/// Runs the cluster script off the async threads (it waits for servers),
/// answering its standard output; panics with its output when it fails.
async fn run_script(args: Vec<String>) -> String {
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg(CLUSTER_SCRIPT)
            .args(&args)
            .output()
    });
    // The script bounds each of its own waits; this bounds them all.
    let output = tokio::time::timeout(std::time::Duration::from_secs(300), run)
        .await
        .expect("pg-cluster.sh finished within 5 minutes")
        .expect("the script's thread")
        .unwrap_or_else(|e| panic!("cannot run {CLUSTER_SCRIPT}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{CLUSTER_SCRIPT} failed ({}): {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
