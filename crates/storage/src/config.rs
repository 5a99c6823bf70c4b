//! Connection settings.

use std::fmt;

use serde::Deserialize;

/// How to reach PostgreSQL and how many connections to keep.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// A libpq-style URL, `postgres://user:password@host:port/database`.
    pub url: String,
    /// Most connections the pool opens.
    pub max_connections: usize,
    /// How long to wait for a new connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// How long a request waits for a free pooled connection, in milliseconds.
    pub acquire_timeout_ms: u64,
    /// Longest a single statement may run, in milliseconds (0: no limit).
    /// Postgres enforces it: a statement past it is cancelled and stores
    /// nothing.
    pub statement_timeout_ms: u64,
    /// Longest one database call may wait for answers once it has a
    /// connection, in milliseconds: the client's own deadline, for when
    /// Postgres or the network stops answering, which `statement_timeout_ms`
    /// cannot catch. A call past it gives up and closes its connection
    /// rather than return it to the pool. Keep it longer than
    /// `statement_timeout_ms`, so a merely slow statement is cancelled by
    /// Postgres (it then surely stored nothing) before the client gives up
    /// on it (a write it gave up on may or may not have been stored).
    #[serde(default = "default_query_timeout_ms")]
    pub query_timeout_ms: u64,
    /// How long a connection whose peer went silent (no FIN, no RST: a
    /// network partition, a failover behind a load balancer) may live, in
    /// milliseconds: unacknowledged data is given up after this long (TCP
    /// user timeout), and an idle connection is probed after a third of it
    /// (TCP keepalive, three probes a ninth of it apart). Postgres is asked
    /// to do the same on its side, so it drops a dead client and releases
    /// its locks. 0 leaves the operating system's defaults (hours).
    #[serde(default = "default_dead_connection_timeout_ms")]
    pub dead_connection_timeout_ms: u64,
    /// Read replicas (streaming standbys of `url`) for the reads that may be
    /// slightly stale: the history page and the users listing go to them
    /// in turn; everything else goes to `url`. Empty: every read goes to
    /// `url`.
    #[serde(default)]
    pub read_urls: Vec<String>,
    /// A replica further behind the primary than this, in milliseconds, is
    /// skipped until it catches up.
    #[serde(default = "default_replica_max_lag_ms")]
    pub replica_max_lag_ms: u64,
    /// How often each replica's health and lag are checked, in
    /// milliseconds; lag is known to within about this.
    #[serde(default = "default_replica_check_interval_ms")]
    pub replica_check_interval_ms: u64,
}

// Defaults for settings that older configuration files do not mention.

fn default_query_timeout_ms() -> u64 {
    6_000
}

fn default_dead_connection_timeout_ms() -> u64 {
    15_000
}

fn default_replica_max_lag_ms() -> u64 {
    2_000
}

fn default_replica_check_interval_ms() -> u64 {
    500
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageConfig")
            .field("url", &redact_password(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .field("query_timeout_ms", &self.query_timeout_ms)
            .field(
                "dead_connection_timeout_ms",
                &self.dead_connection_timeout_ms,
            )
            .field(
                "read_urls",
                &self
                    .read_urls
                    .iter()
                    .map(|url| redact_password(url))
                    .collect::<Vec<_>>(),
            )
            .field("replica_max_lag_ms", &self.replica_max_lag_ms)
            .field("replica_check_interval_ms", &self.replica_check_interval_ms)
            .finish()
    }
}

/// The URL with any password replaced by `***`, for logs.
pub(crate) fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_debug_output() {
        let config = StorageConfig {
            url: "postgres://app:s3cret@db:5432/txwatch".into(),
            max_connections: 4,
            connect_timeout_ms: 1,
            acquire_timeout_ms: 1,
            statement_timeout_ms: 0,
            query_timeout_ms: 1,
            dead_connection_timeout_ms: 0,
            read_urls: vec!["postgres://app:s3cret@replica:5432/txwatch".into()],
            replica_max_lag_ms: 1,
            replica_check_interval_ms: 1,
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://app:***@replica:5432/txwatch"),
            "{shown}"
        );
        assert!(
            shown.contains("postgres://app:***@db:5432/txwatch"),
            "{shown}"
        );
        assert_eq!(
            redact_password("postgres://app@db/x"),
            "postgres://app@db/x"
        );
    }
}
