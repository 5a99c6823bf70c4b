//! Shared handles for the routes.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use txwatch_cache::{EventLog, RedisPool};
use txwatch_storage::TransactionRepository;

use crate::coalesce::IngestQueue;
use crate::config::HttpConfig;
use crate::cursor::CursorCodec;
use crate::hub::EventHub;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::simulation::Simulations;
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
    /// The shared event stream, read back by resuming subscribers.
    pub events: EventLog,
    /// This process's live subscribers.
    pub hub: EventHub,
    /// Who watches which user's simulation here.
    pub simulations: Simulations,
    /// SHA-256 of the API key the write routes require, if any.
    pub api_key_digest: Option<Arc<[u8]>>,
    /// Origins whose pages may write; `"*"` for any.
    pub write_origins: Arc<[String]>,
    /// The Redis pool, for readiness checks and pool metrics.
    pub redis: RedisPool,
    /// How many SSE streams are open, and how many may be.
    pub streams: StreamSlots,
    /// How long a non-streaming request may take.
    pub request_timeout: Duration,
    /// How long an ingest request takes at most to answer.
    pub ingest_timeout: Duration,
    /// Cancelled when the server starts shutting down: streams end, and
    /// simulations stop.
    pub shutdown: CancellationToken,
}

impl AppState {
    /// State for the given repository, pipeline, queue of single posts,
    /// Redis pool and settings, with an empty hub and no simulations; the
    /// caller runs [`run_relay`](crate::run_relay),
    /// [`run_simulations`](crate::run_simulations) and
    /// [`run_ingest_worker`](crate::run_ingest_worker) on them, and cancels
    /// [`shutdown`](AppState::shutdown) to stop.
    pub fn new(
        transactions: TransactionRepository,
        pipeline: Pipeline,
        single: IngestQueue,
        redis: RedisPool,
        config: &HttpConfig,
    ) -> AppState {
        let api_key_digest = (!config.api_key.trim().is_empty())
            .then(|| Arc::from(&Sha256::digest(config.api_key.trim().as_bytes())[..]));
        let hub = EventHub::new(config.stream_buffer, pipeline.metrics().clone());
        AppState {
            transactions,
            cursors: CursorCodec::new(config.cursor_secret.as_bytes()),
            events: pipeline.events().clone(),
            pipeline,
            single,
            hub,
            simulations: Simulations::new(),
            api_key_digest,
            write_origins: config
                .cors_write_origins
                .iter()
                .map(|origin| origin.trim().to_owned())
                .filter(|origin| !origin.is_empty())
                .collect(),
            redis,
            streams: StreamSlots::new(config.max_streams),
            request_timeout: Duration::from_millis(config.request_timeout_ms),
            ingest_timeout: Duration::from_millis(config.ingest_timeout_ms.max(1)),
            shutdown: CancellationToken::new(),
        }
    }

    /// Where this process records what it does.
    pub fn metrics(&self) -> &Metrics {
        self.pipeline.metrics()
    }
}
