//! Storage errors, classified where they arise.

use std::time::Duration;

/// What went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Nothing was done: no connection could be had (the database is down,
    /// unreachable, or the pool is exhausted), Postgres cancelled the
    /// statement (`statement_timeout`), no answer came to a read in time,
    /// or the schema is not there yet (a server that started while the
    /// database was down migrates it once it is back). A write that fails
    /// so stored nothing. Worth retrying later.
    #[error("database unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A write was sent and its answer never came: the connection was lost
    /// or the call's deadline passed while Postgres had it. It may have
    /// been stored or not; writing it again with the same ids is safe.
    #[error("the outcome of the write is unknown")]
    OutcomeUnknown(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A row with the same primary key exists already.
    #[error("transaction already stored")]
    Duplicate,
    /// The database URL could not be parsed.
    #[error("invalid database url")]
    InvalidUrl(#[source] tokio_postgres::Error),
    /// A stored row holds a value the domain model rejects.
    #[error("stored row {id} is invalid: {reason}")]
    CorruptRow {
        /// Which row.
        id: uuid::Uuid,
        /// What is wrong with it.
        reason: String,
    },
    /// A migration failed to apply.
    #[error("migration failed")]
    Migration(#[source] refinery::Error),
    /// Any other database error.
    #[error("database query failed")]
    Query(#[source] tokio_postgres::Error),
}

impl StorageError {
    /// Whether the failure is the database being unreachable rather than
    /// something about the request.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StorageError::Unavailable(_))
    }

    /// Whether a write may or may not have been stored.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, StorageError::OutcomeUnknown(_))
    }
}

/// The call's deadline passed with no answer from Postgres.
#[derive(Debug, thiserror::Error)]
#[error("no answer from the database within {} ms", .0.as_millis())]
pub(crate) struct NoAnswer(pub(crate) Duration);

impl From<tokio_postgres::Error> for StorageError {
    fn from(error: tokio_postgres::Error) -> StorageError {
        use tokio_postgres::error::SqlState;
        if error.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            return StorageError::Duplicate;
        }
        let lost_connection = error.is_closed()
            || error.code().is_some_and(|code| {
                // Class 08 (connection exception), 57P01..57P03 (shutdown,
                // cannot connect now).
                code.code().starts_with("08")
                    || [
                        SqlState::ADMIN_SHUTDOWN,
                        SqlState::CRASH_SHUTDOWN,
                        SqlState::CANNOT_CONNECT_NOW,
                    ]
                    .contains(code)
            })
            || std::error::Error::source(&error)
                .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some());
        // The table is missing: the database came up after this process and
        // has not been migrated yet. A wait, not a fault of the request.
        let not_migrated = error.code() == Some(&SqlState::UNDEFINED_TABLE);
        // `statement_timeout` (or an operator) cancelled the statement: it
        // was rolled back, so a write stored nothing. Postgres is too slow
        // right now, which is no fault of the request either.
        let cancelled = error.code() == Some(&SqlState::QUERY_CANCELED);
        if lost_connection || not_migrated || cancelled {
            StorageError::Unavailable(Box::new(error))
        } else {
            StorageError::Query(error)
        }
    }
}

impl From<deadpool_postgres::PoolError> for StorageError {
    fn from(error: deadpool_postgres::PoolError) -> StorageError {
        match error {
            deadpool_postgres::PoolError::Backend(backend) => StorageError::from(backend),
            other => StorageError::Unavailable(Box::new(other)),
        }
    }
}

/// `error: cause: cause ...`, for logs.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
