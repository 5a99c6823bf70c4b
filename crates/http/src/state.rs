//! Shared handles for the routes.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use txwatch_cache::EventLog;
use txwatch_storage::TransactionRepository;

use crate::coalesce::IngestQueue;
use crate::config::HttpConfig;
use crate::cursor::CursorCodec;
use crate::hub::EventHub;
use crate::pipeline::Pipeline;
use crate::simulation::Simulations;

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
}

impl AppState {
    /// State for the given repository, pipeline, queue of single posts and
    /// settings, with an empty hub and no simulations; the caller runs
    /// [`run_relay`](crate::run_relay),
    /// [`run_simulations`](crate::run_simulations) and
    /// [`run_ingest_worker`](crate::run_ingest_worker) on them.
    pub fn new(
        transactions: TransactionRepository,
        pipeline: Pipeline,
        single: IngestQueue,
        config: &HttpConfig,
    ) -> AppState {
        let api_key_digest = (!config.api_key.trim().is_empty())
            .then(|| Arc::from(&Sha256::digest(config.api_key.trim().as_bytes())[..]));
        AppState {
            transactions,
            cursors: CursorCodec::new(config.cursor_secret.as_bytes()),
            events: pipeline.events().clone(),
            pipeline,
            single,
            hub: EventHub::new(config.stream_buffer),
            simulations: Simulations::new(),
            api_key_digest,
        }
    }
}
