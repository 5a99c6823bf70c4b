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
}

impl fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheConfig")
            .field("url", &redact_password(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
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
}
