//! The HTTP API: actix-web routes, request validation, JSON types and the
//! mapping of every error to a status code.
//!
//! Main items: [`configure`] registers the routes on an actix `App`,
//! [`AppState`] holds the cheap, clonable handles they use, [`HttpConfig`]
//! their settings, [`cors`] the cross-origin policy, and [`ApiError`] the one
//! error type whose `ResponseError` impl decides every error response
//! (`{"error": "<snake_case_code>", "message": "..."}`).
//!
//! Handlers are thin: they extract and validate input, call one function,
//! and convert domain values to JSON types here, at the edge.
//!
//! The live half: [`Pipeline`] is the one ingest path (validate, Redis
//! window step, verdict, store, publish) used by the ingest routes and the
//! simulations alike, with [`IngestQueue`] gathering concurrent single
//! posts into shared pipeline calls and [`Claim`] deciding, when a
//! request's deadline passes, whether its transactions are withdrawn
//! unstored or their outcome is unknown; [`EventHub`] fans events out to this process's SSE
//! subscribers, fed by [`run_relay`] from the Redis event stream that every
//! process shares; [`Simulations`] holds the simulated feeds, one per
//! connection to a user's simulated stream, which [`run_simulations`]
//! drives.
//!
//! Operations: [`observe`] gives every request an id, a log line and its
//! metrics ([`Metrics`], served at `/metrics`); `/ready` checks Postgres and
//! Redis; the ingest routes answer within `http.ingest_timeout_ms`, saying
//! what became of each transaction, and other non-streaming routes answer
//! 503 `timeout` past their time limit ([`time_limit`]); [`StreamSlots`] caps the open SSE streams; and
//! cancelling [`AppState::shutdown`] ends every stream and simulation. The
//! live dashboard at `/` is served from files compiled into the binary.
//!
//! Depends on `domain`, `storage`, `cache` and `simulator`. It must never
//! read configuration files or environment variables, install a tracing
//! subscriber, or spawn long-lived tasks: the `server` crate spawns
//! [`run_relay`], [`run_simulations`] and [`run_ingest_worker`].

mod body;
mod claim;
mod coalesce;
mod config;
mod cursor;
mod dashboard;
mod dto;
mod error;
mod hangup;
mod head_errors;
mod hub;
mod json;
mod metrics;
mod observe;
mod openapi;
mod origin;
mod pipeline;
mod query;
mod routes;
mod simulation;
mod sse;
mod state;

pub use claim::Claim;
pub use coalesce::{IngestJobs, IngestQueue, run_ingest_worker};
pub use config::{BUILT_IN_CURSOR_SECRET, HttpConfig};
pub use cursor::{CursorCodec, CursorError};
pub use error::{ApiError, IngestIds};
pub use hangup::record_connection;
pub use head_errors::HeadErrorsAsJson;
pub use hub::{EventHub, Live, Notice, UserSubscription, run_relay};
pub use metrics::{Metrics, PoolUsage, Stage};
pub use observe::{observe, time_limit};
pub use origin::InvalidProxy;
pub use pipeline::{IdOrigin, NewTransaction, Outcome, Pipeline, Publication};
pub use routes::{configure, cors, not_found};
pub use simulation::{FeedGuard, SimulationSettings, Simulations, run_simulations};
pub use sse::StreamSlots;
pub use state::AppState;
