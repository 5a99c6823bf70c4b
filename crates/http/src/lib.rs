//! The HTTP server's application: the API's routes and the live engine
//! behind them, in four rooms plus the shared state.
//!
//! - `api/`: the request/response edge. [`configure`] registers every route
//!   on an actix `App` (`api/routes.rs`), [`cors`] is the cross-origin
//!   policy, the handlers of `/transactions`, `/transactions/batch` and
//!   `/users` live here with body and query reading, cursors
//!   ([`CursorCodec`]), JSON shapes, the OpenAPI document, origin checks and
//!   [`ApiError`], the one error type whose `ResponseError` impl decides every
//!   error response (`{"error": "<snake_case_code>", "message": "..."}`).
//! - `live/`: the live engine. [`Pipeline`] is the one ingest path
//!   (validate, Redis window step, verdict, store, publish) used by the
//!   ingest routes and the simulations alike; [`IngestQueue`] gathers
//!   concurrent single posts into shared pipeline calls; [`Claim`] decides,
//!   when a request's deadline passes, whether its transactions are
//!   withdrawn unstored or their outcome is unknown; [`EventHub`] fans
//!   events out to this process's SSE subscribers, fed by [`run_relay`] from
//!   the Redis event log every process shares; [`Simulations`] holds the
//!   simulated feeds, one per connection to a user's simulated stream, which
//!   [`run_simulations`] drives.
//! - `sse/`: the stream routes, their ids, resume by `Last-Event-ID`, the
//!   cap on open streams ([`StreamSlots`]) and noticing a client that hung up.
//! - `ops/`: [`observe`] gives every request an id, a log line and its
//!   metrics ([`Metrics`], served at `/metrics`); `/health` and `/ready`;
//!   [`time_limit`] answers 503 `timeout` past a route's time limit.
//!
//! [`AppState`] holds the cheap, clonable handles the routes use, built from
//! [`HttpConfig`]; cancelling [`AppState::shutdown`] ends every stream and
//! simulation. The live dashboard at `/` is served from files compiled into
//! the binary (`dashboard.rs`).
//!
//! Depends on `domain`, `storage`, `cache` and `simulator`. It must never
//! read configuration files or environment variables, install a tracing
//! subscriber, or spawn long-lived tasks: the `server` crate spawns
//! [`run_relay`], [`run_simulations`] and [`run_ingest_worker`].

mod api;
mod config;
mod dashboard;
mod live;
mod ops;
mod sse;
mod state;

pub use api::cursor::{CursorCodec, CursorError};
pub use api::error::{ApiError, IngestIds};
pub use api::head_errors::HeadErrorsAsJson;
pub use api::origin::InvalidProxy;
pub use api::routes::{configure, cors, not_found};
pub use config::{BUILT_IN_CURSOR_SECRET, HttpConfig};
pub use live::claim::Claim;
pub use live::coalesce::{IngestJobs, IngestQueue, run_ingest_worker};
pub use live::hub::{
    AllSubscription, EventHub, Live, Notice, Registered, UserSubscription, run_relay,
};
pub use live::pipeline::{IdOrigin, NewTransaction, Outcome, Pipeline, Publication};
pub use live::simulation::{FeedGuard, SimulationSettings, Simulations, run_simulations};
pub use ops::metrics::{Metrics, PoolUsage, Stage};
pub use ops::observe::{observe, time_limit};
pub use sse::StreamSlots;
pub use sse::all_users_position;
pub use sse::hangup::record_connection;
pub use state::AppState;
