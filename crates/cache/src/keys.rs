//! Key naming: every Redis key the service uses is built here.

use std::sync::Arc;

use txwatch_domain::UserId;

/// Builds Redis keys under one prefix; cheap to clone.
///
/// A per-user key looks like `<prefix><kind>:{<user_id>}`. The braces are a
/// Redis Cluster hash tag: only the user id decides the slot, so every key of
/// one user lives on one node and a script may touch several of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: Arc<str>,
}

impl Keys {
    /// Keys under `prefix`, which is used verbatim (end it with a separator
    /// such as `:`). It must not contain `{` or `}`, which would take over
    /// the hash tag.
    pub fn new(prefix: impl Into<Arc<str>>) -> Keys {
        Keys {
            prefix: prefix.into(),
        }
    }

    /// The prefix every key starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The window of a user's most recent real transactions (see
    /// [`WindowStore`](crate::WindowStore)).
    pub fn window(&self, user_id: UserId) -> String {
        self.per_user("window", user_id)
    }

    /// The window of a user's simulated transactions, kept apart from the
    /// real ones' (see [`WindowStore::with_origin`](crate::WindowStore::with_origin)).
    pub fn simulated_window(&self, user_id: UserId) -> String {
        self.per_user("simwindow", user_id)
    }

    /// One shard of the live event log (see [`EventLog`](crate::EventLog)):
    /// `<prefix>events:{<shard>}`. The shard number is the hash tag, so on a
    /// Redis Cluster the shards land in different slots, and so spread over
    /// the masters; every event of one user goes to one shard.
    pub fn event_shard(&self, shard: usize) -> String {
        format!("{}events:{{{shard}}}", self.prefix)
    }

    /// A `SCAN ... MATCH` pattern for every key under the prefix, with glob
    /// characters in the prefix escaped.
    pub fn pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.prefix.len() + 1);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }

    fn per_user(&self, kind: &str, user_id: UserId) -> String {
        format!("{}{kind}:{{{user_id}}}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    const USER: UserId = UserId(Uuid::from_u128(0x0191_2c3a_7b4e_7c1d_8e2f_3a4b_5c6d_7e8f));

    /// The part of `key` Redis Cluster hashes: the first non-empty `{...}`.
    fn hash_tag(key: &str) -> &str {
        key.find('{')
            .and_then(|open| {
                let rest = &key[open + 1..];
                rest.find('}')
                    .filter(|&close| close > 0)
                    .map(|close| &rest[..close])
            })
            .unwrap_or(key)
    }

    #[test]
    fn a_window_key_is_the_prefix_the_kind_and_the_hash_tagged_user() {
        let keys = Keys::new("txwatch:");
        assert_eq!(
            keys.window(USER),
            "txwatch:window:{01912c3a-7b4e-7c1d-8e2f-3a4b5c6d7e8f}"
        );
        assert_eq!(keys.prefix(), "txwatch:");
    }

    #[test]
    fn a_simulated_window_key_is_the_prefix_simwindow_and_the_hash_tagged_user() {
        assert_eq!(
            Keys::new("txwatch:").simulated_window(USER),
            "txwatch:simwindow:{01912c3a-7b4e-7c1d-8e2f-3a4b5c6d7e8f}"
        );
    }

    #[test]
    fn an_event_shard_is_hash_tagged_by_its_number() {
        assert_eq!(Keys::new("txwatch:").event_shard(3), "txwatch:events:{3}");
        assert_eq!(Keys::new("").event_shard(0), "events:{0}");
        assert_eq!(hash_tag(&Keys::new("test:4f1c:").event_shard(12)), "12");
    }

    #[test]
    fn a_user_s_keys_hash_to_the_user_id_alone() {
        let keys = Keys::new("test:4f1c:");
        assert_eq!(hash_tag(&keys.window(USER)), USER.to_string());
        assert_eq!(hash_tag(&keys.simulated_window(USER)), USER.to_string());
    }

    #[test]
    fn an_empty_prefix_leaves_the_kind_first() {
        assert_eq!(
            Keys::new("").window(USER),
            "window:{01912c3a-7b4e-7c1d-8e2f-3a4b5c6d7e8f}"
        );
    }

    #[test]
    fn the_scan_pattern_matches_the_prefix_literally() {
        assert_eq!(Keys::new("txwatch:").pattern(), "txwatch:*");
        assert_eq!(Keys::new(r"a*b?[c]\:").pattern(), r"a\*b\?\[c\]\\:*");
    }
}
