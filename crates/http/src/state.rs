//! Shared handles for the routes.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::HeaderMap;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use txwatch_cache::{EventLog, RedisPool};
use txwatch_storage::TransactionRepository;

use crate::api::cursor::CursorCodec;
use crate::api::origin::{InvalidProxy, TrustedProxies};
use crate::config::HttpConfig;
use crate::live::coalesce::IngestQueue;
use crate::live::hub::EventHub;
use crate::live::pipeline::Pipeline;
use crate::live::simulation::Simulations;
use crate::ops::metrics::Metrics;
use crate::sse::StreamSlots;

/// What handlers need, as cheap clonable handles (pools are reference
/// counted).
#[derive(Clone)]
pub struct AppState {
    /// Stored transactions.
    pub transactions: TransactionRepository,
    /// Signs and checks pagination cursors.
    pub cursors: CursorCodec,
    /// Where every transaction goes in.
    pub pipeline: Pipeline,
    /// Where single posted transactions wait to share a pipeline call.
    pub single: IngestQueue,
    /// The shared event log (its shards), read back by resuming subscribers.
    pub events: EventLog,
    /// This process's live subscribers.
    pub hub: EventHub,
    /// The simulated feeds running here.
    pub simulations: Simulations,
    /// Whether `GET /sse/transactions/{user_id}` simulates (see `sse`).
    pub simulation_enabled: bool,
    /// SHA-256 of the API key that writes require, if any.
    pub api_key_digest: Option<Arc<[u8]>>,
    /// Origins whose pages may write; `"*"` for any.
    pub write_origins: Arc<[String]>,
    /// Peers whose forwarded headers are believed.
    pub(crate) trusted_proxies: TrustedProxies,
    /// Host names writes are taken for without an API key, besides loopback
    /// names and IP literals; `"*"` for any.
    pub allowed_hosts: Arc<[String]>,
    /// The Redis pool, for readiness checks and pool metrics.
    pub redis: RedisPool,
    /// How many SSE streams are open, and how many may be.
    pub streams: StreamSlots,
    /// How long a non-streaming request may take.
    pub request_timeout: Duration,
    /// How long a client may take to send a write's body (zero: no limit).
    pub body_timeout: Duration,
    /// Whether cursors are signed with the public built-in secret; `/ready`
    /// says so.
    pub built_in_cursor_secret: bool,
    /// How long an ingest request takes at most to answer.
    pub ingest_timeout: Duration,
    /// Cancelled when the server starts shutting down: streams end, and
    /// simulations stop.
    pub shutdown: CancellationToken,
}

impl AppState {
    /// State for the given repository, pipeline, queue of single posts,
    /// Redis pool and settings, with an empty hub and no simulated feeds
    /// (`simulation_enabled` says whether streams may start them); the
    /// caller runs [`run_relay`](crate::run_relay),
    /// [`run_simulations`](crate::run_simulations) and
    /// [`run_ingest_worker`](crate::run_ingest_worker) on them, and cancels
    /// [`shutdown`](AppState::shutdown) to stop.
    ///
    /// # Errors
    /// [`InvalidProxy`] when `config.trusted_proxies` holds something that
    /// is neither an address nor a CIDR range.
    pub fn new(
        transactions: TransactionRepository,
        pipeline: Pipeline,
        single: IngestQueue,
        redis: RedisPool,
        config: &HttpConfig,
        simulation_enabled: bool,
    ) -> Result<AppState, InvalidProxy> {
        let api_key_digest = (!config.api_key.trim().is_empty())
            .then(|| Arc::from(&Sha256::digest(config.api_key.trim().as_bytes())[..]));
        let hub = EventHub::new(
            config.stream_buffer,
            pipeline.events().shards(),
            pipeline.metrics().clone(),
        );
        Ok(AppState {
            transactions,
            cursors: CursorCodec::new(config.cursor_secret.as_bytes()),
            events: pipeline.events().clone(),
            pipeline,
            single,
            hub,
            simulations: Simulations::new(),
            simulation_enabled,
            api_key_digest,
            write_origins: config
                .cors_write_origins
                .iter()
                .map(|origin| origin.trim().to_owned())
                .filter(|origin| !origin.is_empty())
                .collect(),
            trusted_proxies: TrustedProxies::parse(&config.trusted_proxies)?,
            allowed_hosts: config
                .allowed_hosts
                .iter()
                .map(|host| host.trim().to_owned())
                .filter(|host| !host.is_empty())
                .collect(),
            redis,
            streams: StreamSlots::new(config.max_streams),
            request_timeout: Duration::from_millis(config.request_timeout_ms),
            body_timeout: Duration::from_millis(config.body_timeout_ms),
            built_in_cursor_secret: config.uses_built_in_cursor_secret(),
            ingest_timeout: Duration::from_millis(config.ingest_timeout_ms.max(1)),
            shutdown: CancellationToken::new(),
        })
    }

    /// Where this process records what it does.
    pub fn metrics(&self) -> &Metrics {
        self.pipeline.metrics()
    }

    /// Whether a request with these headers may write: no API key is
    /// configured, or it sent the key as `X-API-Key` or
    /// `Authorization: Bearer` (the scheme in any case).
    pub(crate) fn may_write(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = self.api_key_digest.as_deref() else {
            return true;
        };
        let sent = headers
            .get("X-API-Key")
            .and_then(|value| value.to_str().ok())
            .or_else(|| {
                headers
                    .get("Authorization")
                    .and_then(|value| value.to_str().ok())
                    .and_then(bearer_token)
            });
        // Comparing digests keeps the comparison's timing independent of how
        // much of the key a guess got right.
        sent.is_some_and(|key| Sha256::digest(key.trim().as_bytes())[..] == expected[..])
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme's case
/// does not matter (RFC 9110, section 11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(char::is_whitespace)?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}
