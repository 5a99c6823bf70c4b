//! Embedded migrations, safe to run from several processes at once.

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::NoTls;
use tracing::info;

use crate::config::redact_password;
use crate::error::{NoAnswer, StorageError};
use crate::pool::SilentPeer;

/// How long opening a migration connection may take, handshake included,
/// unless the URL sets a `connect_timeout`. The migrations themselves have
/// no deadline: one that rebuilds an index on a large table must be able
/// to finish. A silent server is still noticed, by the socket's keepalive
/// and user timeout.
const SETUP: Duration = Duration::from_secs(10);
/// Milliseconds after which a migration connection gives up on a silent
/// server: the default of `database.dead_connection_timeout_ms`.
const SILENT_PEER_MS: u64 = 15_000;

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Any fixed number: all our processes take the same advisory lock while
/// migrating, so two that start together apply each migration once.
const MIGRATION_LOCK: i64 = 0x7478_7761_7463_6801;

/// Applies every migration in `migrations/` that the database lacks, holding
/// an advisory lock so concurrent start-ups wait for each other.
///
/// # Errors
/// [`StorageError::Unavailable`] when the database cannot be reached,
/// [`StorageError::Migration`] when a migration fails.
pub async fn migrate(url: &str) -> Result<(), StorageError> {
    migrate_to(url, None).await
}

/// [`migrate`], up to and including migration `version` when given: tests
/// build a database as an older release left it, then migrate it.
pub(crate) async fn migrate_to(url: &str, version: Option<i32>) -> Result<(), StorageError> {
    let mut client = connect_once(url).await?;
    client
        .execute("select pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let target = version.map_or(refinery::Target::Latest, refinery::Target::Version);
    let report = embedded::migrations::runner()
        .set_target(target)
        .run_async(&mut client)
        .await
        .map_err(StorageError::Migration);
    // Closing the connection releases the lock too; unlocking is just tidy.
    let _ = client
        .execute("select pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    for migration in report?.applied_migrations() {
        info!(
            version = migration.version(),
            name = migration.name(),
            "migration applied"
        );
    }
    Ok(())
}

/// Creates the database named in `url` when it does not exist yet, by
/// connecting to the `postgres` maintenance database on the same server.
///
/// # Errors
/// [`StorageError::Unavailable`] when the server cannot be reached.
pub async fn ensure_database(url: &str) -> Result<(), StorageError> {
    let config = tokio_postgres::Config::from_str(url).map_err(StorageError::InvalidUrl)?;
    let Some(name) = config.get_dbname().map(str::to_owned) else {
        return Ok(());
    };
    let mut maintenance = config.clone();
    maintenance.dbname("postgres");
    let client = open(maintenance).await?;
    let exists = client
        .query_opt("select 1 from pg_database where datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        let quoted = name.replace('"', "\"\"");
        match client
            .batch_execute(&format!("create database \"{quoted}\""))
            .await
        {
            Ok(()) => info!(database = %name, url = %redact_password(url), "database created"),
            // Another process created it in the meantime.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn connect_once(url: &str) -> Result<tokio_postgres::Client, StorageError> {
    let config = tokio_postgres::Config::from_str(url).map_err(StorageError::InvalidUrl)?;
    open(config).await
}

/// Opens a connection within [`SETUP`] (or the URL's `connect_timeout`), with
/// sockets that notice a silent server.
async fn open(mut config: tokio_postgres::Config) -> Result<tokio_postgres::Client, StorageError> {
    let setup = config.get_connect_timeout().copied().unwrap_or(SETUP);
    if config.get_tcp_user_timeout().is_none()
        && let Some(peer) = SilentPeer::within(SILENT_PEER_MS)
    {
        peer.apply(&mut config);
    }
    let (client, connection) = tokio::time::timeout(setup, config.connect(NoTls))
        .await
        .map_err(|_| StorageError::Unavailable(Box::new(NoAnswer(setup))))??;
    tokio_spawn_connection(connection);
    Ok(client)
}

fn tokio_spawn_connection<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio_postgres::tls::TlsStream + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "migration connection closed");
        }
    });
}
