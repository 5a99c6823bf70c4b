//! Connection settings.

use std::fmt;

use serde::Deserialize;

/// How to reach Redis, how to name keys, and how many connections to keep.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// A Redis URL: `redis://[user][:password@]host[:port][/db]` or
    /// `redis+unix:///path?pass=...`. (`rediss://` needs a TLS feature of the
    /// Redis client that is not enabled.)
    pub url: String,
    /// Put in front of every key (for example `txwatch:`), so several
    /// deployments or tests can share one Redis. It must not contain `{` or
    /// `}`: those would take over the per-user hash tag.
    pub key_prefix: String,
    /// Most connections the pool opens. Each one is multiplexed, so a few go a
    /// long way.
    pub max_connections: usize,
    /// How long to wait for a new connection, and for a free pooled one, in
    /// milliseconds.
    pub connect_timeout_ms: u64,
    /// Seconds after its last transaction that a user's window expires, so
    /// idle users do not hold memory forever; an expired window is rebuilt
    /// from history when the user comes back. Defaults to a day.
    #[serde(default = "default_window_idle_ttl_secs")]
    pub window_idle_ttl_secs: u64,
    /// About how many events the event stream keeps (trimming is approximate
    /// and lets it grow a little beyond this). A reader that falls further
    /// behind misses events. Defaults to 100,000.
    #[serde(default = "default_event_retention")]
    pub event_retention: usize,
    /// How many Redis Streams the event log is split into (a user's events
    /// always in one of them; see [`EventLog`](crate::EventLog)). Defaults
    /// to 8: enough to spread events over the masters of a small cluster
    /// (the default 8 shard keys hash to all three masters of a 3-master
    /// cluster), few enough that an all-users reader's position stays short
    /// and its reads hold few connections.
    #[serde(default = "default_event_shards")]
    pub event_shards: usize,
    /// How long a connection whose peer went silent (no FIN, no RST: a
    /// network partition, a failover) may live, in milliseconds:
    /// unacknowledged data is given up after this long (TCP user timeout),
    /// and an idle connection is probed after a third of it (TCP
    /// keepalive, three probes a ninth of it apart). 0 leaves the operating
    /// system's defaults (hours). Commands have their own deadline besides
    /// (2 s).
    #[serde(default = "default_dead_connection_timeout_ms")]
    pub dead_connection_timeout_ms: u64,
    /// The nodes of a Redis Cluster (URLs as for [`url`](Self::url); a few
    /// are enough, the rest are discovered). Empty: one Redis at `url`.
    /// Non-empty: every key goes to the cluster, and `url` is not used.
    #[serde(default)]
    pub cluster_nodes: Vec<String>,
}

// Defaults for settings that older configuration files do not mention.

fn default_window_idle_ttl_secs() -> u64 {
    86_400
}

fn default_event_retention() -> usize {
    100_000
}

fn default_event_shards() -> usize {
    8
}

fn default_dead_connection_timeout_ms() -> u64 {
    15_000
}

impl fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheConfig")
            .field("url", &redact_password(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("window_idle_ttl_secs", &self.window_idle_ttl_secs)
            .field("event_retention", &self.event_retention)
            .field("event_shards", &self.event_shards)
            .field(
                "dead_connection_timeout_ms",
                &self.dead_connection_timeout_ms,
            )
            .field(
                "cluster_nodes",
                &self
                    .cluster_nodes
                    .iter()
                    .map(|url| redact_password(url))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The URL with any password replaced by `***`, for logs: the one in the
/// user info (`redis://:pw@host`, `redis://user:pw@host`) and a `pass` query
/// parameter (`redis+unix:///socket?pass=pw`).
pub(crate) fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    format!("{scheme}://{authority}{}", redact_pass_parameter(tail))
}

/// `tail` (path, query, fragment) with the value of any `pass` query
/// parameter replaced by `***`.
fn redact_pass_parameter(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query, None),
    };
    let query = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("pass", _)) => "pass=***".to_owned(),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    match fragment {
        Some(fragment) => format!("{path}?{query}#{fragment}"),
        None => format!("{path}?{query}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> CacheConfig {
        CacheConfig {
            url: url.into(),
            key_prefix: "txwatch:".into(),
            max_connections: 4,
            connect_timeout_ms: 1,
            window_idle_ttl_secs: 86_400,
            event_retention: 100_000,
            event_shards: 8,
            dead_connection_timeout_ms: 15_000,
            cluster_nodes: Vec::new(),
        }
    }

    #[test]
    fn passwords_never_reach_debug_output() {
        for (url, shown_url) in [
            ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
            ("redis://app:s3cret@cache", "redis://app:***@cache"),
            (
                "rediss://app:s3cret@cache?db=1",
                "rediss://app:***@cache?db=1",
            ),
            (
                "redis+unix:///run/redis.sock?db=1&pass=s3cret",
                "redis+unix:///run/redis.sock?db=1&pass=***",
            ),
        ] {
            let shown = format!("{:?}", config(url));
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains(shown_url), "{shown}");
        }
    }

    #[test]
    fn urls_without_a_password_are_shown_as_they_are() {
        for url in [
            "redis://127.0.0.1:6379",
            "redis://app@cache/2",
            "redis+unix:///run/redis.sock?db=1",
            "not a url",
        ] {
            assert_eq!(redact_password(url), url);
        }
    }

    #[test]
    fn settings_parse_and_unknown_fields_are_rejected() {
        let parsed: CacheConfig = serde_json::from_str(
            r#"{"url":"redis://127.0.0.1","key_prefix":"txwatch:","max_connections":4,"connect_timeout_ms":1}"#,
        )
        .expect("valid settings");
        assert_eq!(parsed, config("redis://127.0.0.1"));
        let error = serde_json::from_str::<CacheConfig>(
            r#"{"url":"redis://127.0.0.1","key_prefix":"txwatch:","max_connections":4,"connect_timeout_ms":1,"pool_size":4}"#,
        )
        .expect_err("an unknown field");
        assert!(
            error.to_string().contains("unknown field `pool_size`"),
            "{error}"
        );
    }

    #[test]
    fn the_window_ttl_and_event_retention_can_be_set_and_default_otherwise() {
        let parsed: CacheConfig = serde_json::from_str(
            r#"{"url":"redis://127.0.0.1","key_prefix":"txwatch:","max_connections":4,"connect_timeout_ms":1,
                "window_idle_ttl_secs":60,"event_retention":500}"#,
        )
        .expect("valid settings");
        assert_eq!(parsed.window_idle_ttl_secs, 60);
        assert_eq!(parsed.event_retention, 500);
        let shown = format!("{parsed:?}");
        assert!(shown.contains("window_idle_ttl_secs: 60"), "{shown}");
        assert!(shown.contains("event_retention: 500"), "{shown}");
    }
}
