//! Cache errors, classified where they arise.

use deadpool_redis::redis::{ErrorKind, RedisError, RetryMethod, Value};

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// No answer could be had: Redis is down, unreachable, too slow, still
    /// loading its data, or the pool is exhausted. Worth retrying later.
    #[error("redis unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The Redis Cluster answers but does not say `cluster_state:ok`: some
    /// slots have no reachable master (a failover under way, or too many
    /// nodes lost). Worth retrying later.
    #[error("redis cluster state is not ok")]
    ClusterDown,
    /// The Redis URL could not be parsed.
    #[error("invalid redis url")]
    InvalidUrl(#[source] RedisError),
    /// A stored value is not what this crate writes there.
    #[error("stored entry in {key} is invalid: {reason}")]
    CorruptEntry {
        /// The key holding it.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Any other Redis error.
    #[error("redis command failed")]
    Command(#[source] RedisError),
}

impl CacheError {
    /// Whether the failure is Redis being unreachable rather than something
    /// about the request or the data.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CacheError::Unavailable(_) | CacheError::ClusterDown)
    }

    /// `error`, from a command on `key`, classified like any other, except
    /// that `WRONGTYPE` (the key holds another kind of value than the
    /// `expected` one this crate writes there) is a [`CacheError::CorruptEntry`].
    pub(crate) fn at_key(error: RedisError, key: &str, expected: &str) -> CacheError {
        match error.code() {
            Some("WRONGTYPE") => CacheError::CorruptEntry {
                key: key.to_owned(),
                reason: format!("the key does not hold a {expected}"),
            },
            _ => CacheError::from(error),
        }
    }

    /// A reply that does not have the shape the command promises.
    pub(crate) fn unexpected_reply(what: &'static str, reply: &Value) -> CacheError {
        const SHOWN: usize = 200;
        let mut shown = format!("{reply:?}");
        if let Some((cut, _)) = shown.char_indices().nth(SHOWN) {
            shown.truncate(cut);
            shown.push_str("...");
        }
        CacheError::Command(RedisError::from((
            ErrorKind::UnexpectedReturnType,
            what,
            shown,
        )))
    }
}

impl From<RedisError> for CacheError {
    fn from(error: RedisError) -> CacheError {
        // Refused, reset or timed-out connections are IO errors; LOADING,
        // MASTERDOWN, CLUSTERDOWN and TRYAGAIN are a server that will answer
        // once it has recovered.
        let unavailable = error.is_io_error()
            || error.is_timeout()
            || error.is_connection_refusal()
            || error.is_connection_dropped()
            || matches!(error.retry_method(), RetryMethod::WaitAndRetry);
        if unavailable {
            CacheError::Unavailable(Box::new(error))
        } else {
            CacheError::Command(error)
        }
    }
}

impl From<deadpool_redis::PoolError> for CacheError {
    fn from(error: deadpool_redis::PoolError) -> CacheError {
        match error {
            deadpool_redis::PoolError::Backend(backend) => CacheError::from(backend),
            other => CacheError::Unavailable(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use deadpool_redis::redis::ServerErrorKind;

    use super::*;

    #[test]
    fn lost_connections_and_recovering_servers_are_unavailable() {
        for error in [
            RedisError::from(io::Error::from(io::ErrorKind::ConnectionRefused)),
            RedisError::from(io::Error::from(io::ErrorKind::TimedOut)),
            RedisError::from(io::Error::from(io::ErrorKind::ConnectionReset)),
            RedisError::from((ErrorKind::Io, "connection closed")),
            RedisError::from((
                ErrorKind::Server(ServerErrorKind::BusyLoading),
                "loading the dataset in memory",
            )),
        ] {
            let shown = format!("{error:?}");
            assert!(CacheError::from(error).is_unavailable(), "{shown}");
        }
    }

    #[test]
    fn other_redis_errors_are_command_failures() {
        for error in [
            RedisError::from((ErrorKind::Server(ServerErrorKind::ResponseError), "bad")),
            RedisError::from((ErrorKind::UnexpectedReturnType, "not a list")),
            RedisError::from((ErrorKind::AuthenticationFailed, "wrong password")),
        ] {
            let shown = format!("{error:?}");
            assert!(
                matches!(CacheError::from(error), CacheError::Command(_)),
                "{shown}"
            );
        }
    }

    #[test]
    fn pool_timeouts_are_unavailable() {
        let error = deadpool_redis::PoolError::Timeout(deadpool_redis::TimeoutType::Wait);
        assert!(CacheError::from(error).is_unavailable());
    }
}
