//! Settings of the HTTP layer.

use std::fmt;

use serde::Deserialize;

use crate::api::origin::{InvalidProxy, TrustedProxies};

/// The cursor secret of the built-in settings. It is public (it is in the
/// source), so anyone can sign cursors with it: the server warns at start-up
/// and in `/ready` while it is in use.
pub const BUILT_IN_CURSOR_SECRET: &str = "change-me-txwatch-cursor-key";

/// What the HTTP layer needs to know; gathered and validated by `server`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Origins allowed to call the read routes from a browser; `"*"` allows
    /// any origin (the old service's behaviour). Empty disables CORS.
    pub cors_allowed_origins: Vec<String>,
    /// Origins whose pages may call the write routes (`POST
    /// /transactions...`); `"*"` allows any. Empty (the default) allows
    /// none: a write carrying another site's `Origin` header answers 403.
    /// Same-origin pages (the dashboard) and clients that send no `Origin`
    /// (curl, servers) are not affected.
    #[serde(default)]
    pub cors_write_origins: Vec<String>,
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
    /// Most SSE streams one process holds; one more answers 503
    /// `too_many_streams`. Each stream holds a socket: keep the open-file
    /// limit (`ulimit -n`) above this.
    #[serde(default = "default_max_streams")]
    pub max_streams: usize,
    /// Milliseconds a non-streaming request may take before it answers 503
    /// `timeout`; 0 disables the limit.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Milliseconds a client has to send the whole body of a write; past
    /// it (it sent less than its `Content-Length`, or stalls) the request
    /// answers 408 `body_timeout`. 0 disables the limit.
    #[serde(default = "default_body_timeout_ms")]
    pub body_timeout_ms: u64,
    /// Peers (addresses or CIDR ranges) whose `Forwarded`,
    /// `X-Forwarded-Host` and `X-Forwarded-Proto` headers say what origin a
    /// request was made to. Empty (the default): nobody's; the request's
    /// own `Host` and this server's scheme count.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Host names, besides `localhost` and IP literals, for which writes
    /// are taken without an API key (`"*"`: any). Refusing other names
    /// stops DNS-rebinding pages; with an API key set this does not apply.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Milliseconds the ingest routes take at most to answer: past it they
    /// answer 503 with the ids posted, saying whether anything is stored
    /// (`service_unavailable`: nothing) or whether that is unknown
    /// (`outcome_unknown`). Keep it shorter than `request_timeout_ms`,
    /// whose answer cannot say.
    #[serde(default = "default_ingest_timeout_ms")]
    pub ingest_timeout_ms: u64,
}

impl HttpConfig {
    /// Whether cursors are signed with [`BUILT_IN_CURSOR_SECRET`], which
    /// anyone can read.
    pub fn uses_built_in_cursor_secret(&self) -> bool {
        self.cursor_secret == BUILT_IN_CURSOR_SECRET
    }

    /// Checks what only this crate can read.
    ///
    /// # Errors
    /// [`InvalidProxy`] for a `trusted_proxies` entry that is neither an
    /// address nor a CIDR range.
    pub fn validate(&self) -> Result<(), InvalidProxy> {
        TrustedProxies::parse(&self.trusted_proxies).map(drop)
    }
}

fn default_stream_buffer() -> usize {
    4096
}

fn default_max_streams() -> usize {
    16_384
}

fn default_request_timeout_ms() -> u64 {
    10_000
}

fn default_body_timeout_ms() -> u64 {
    5_000
}

fn default_ingest_timeout_ms() -> u64 {
    8_000
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("cors_write_origins", &self.cors_write_origins)
            .field("cursor_secret", &"***")
            .field("api_key", &if self.api_key.is_empty() { "" } else { "***" })
            .field("stream_buffer", &self.stream_buffer)
            .field("max_streams", &self.max_streams)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("body_timeout_ms", &self.body_timeout_ms)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("ingest_timeout_ms", &self.ingest_timeout_ms)
            .finish()
    }
}
