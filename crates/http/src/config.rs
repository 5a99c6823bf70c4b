//! Settings of the HTTP layer.

use std::fmt;

use serde::Deserialize;

/// What the HTTP layer needs to know; gathered and validated by `server`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Origins allowed to call the read routes from a browser; `"*"` allows
    /// any origin (the old service's behaviour). Empty disables CORS.
    pub cors_allowed_origins: Vec<String>,
    /// Key that signs pagination cursors so a tampered or foreign cursor is
    /// rejected. Every process behind one load balancer needs the same key.
    pub cursor_secret: String,
    /// When not empty, the write routes (`POST /transactions...`) require
    /// this key in `X-API-Key` or `Authorization: Bearer`; without it they
    /// answer 401 and store nothing.
    #[serde(default)]
    pub api_key: String,
    /// Live events buffered per SSE subscriber. One that falls further
    /// behind catches up from the Redis event stream by id, so this trades
    /// memory for fewer catch-up reads; it never loses events.
    #[serde(default = "default_stream_buffer")]
    pub stream_buffer: usize,
}

fn default_stream_buffer() -> usize {
    4096
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("cursor_secret", &"***")
            .field("api_key", &if self.api_key.is_empty() { "" } else { "***" })
            .finish()
    }
}
