//! The connection pool.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::config::StorageConfig;
use crate::error::StorageError;

/// A pool of PostgreSQL connections; cheap to clone.
pub type PgPool = Pool;

/// Builds the pool. No connection is opened until one is needed, so this
/// succeeds while the database is still down, and the pool recovers by itself
/// when it comes back.
///
/// # Errors
/// [`StorageError::InvalidUrl`] when the URL cannot be parsed.
pub fn connect(config: &StorageConfig) -> Result<PgPool, StorageError> {
    let mut pg = tokio_postgres::Config::from_str(&config.url).map_err(StorageError::InvalidUrl)?;
    pg.connect_timeout(Duration::from_millis(config.connect_timeout_ms));
    if pg.get_application_name().is_none() {
        pg.application_name("txwatch");
    }
    if config.statement_timeout_ms > 0 {
        pg.options(format!(
            "-c statement_timeout={}",
            config.statement_timeout_ms
        ));
    }
    // `Fast` recycling skips a round trip per checkout; a connection that died
    // is noticed by its first query and replaced.
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(config.max_connections.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_millis(config.acquire_timeout_ms)))
        .create_timeout(Some(Duration::from_millis(config.connect_timeout_ms)))
        .recycle_timeout(Some(Duration::from_millis(config.connect_timeout_ms)))
        .build()
        .map_err(|error| StorageError::Unavailable(Box::new(error)))
}

/// Checks that the database answers and holds our schema, for readiness
/// probes: one cheap query that reads no rows.
///
/// # Errors
/// [`StorageError::Unavailable`] when no connection can be had, or the
/// `transactions` table does not exist yet (migrations pending).
pub async fn ping(pool: &PgPool) -> Result<(), StorageError> {
    let client = pool.get().await?;
    client
        .query("select 1 from transactions limit 0", &[])
        .await?;
    Ok(())
}
