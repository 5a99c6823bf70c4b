//! The live engine: how a transaction is judged, stored and published, and
//! how events reach this process's streams.
//!
//! [`pipeline`] is the one ingest path (validate, Redis window step, verdict,
//! store, publish) for posted and simulated transactions alike;
//! [`coalesce`] gathers concurrent single posts into shared pipeline calls
//! (group commit); [`claim`] decides, when a request's deadline passes,
//! whether its work is withdrawn unstored or its outcome is unknown;
//! [`hub`] fans events out to this process's SSE subscribers from the
//! shared Redis event log; [`simulation`] drives the simulated feeds.
//!
//! It uses the API's error and JSON types (what a verdict looks like on the
//! wire) but never routes, requests or responses: nothing here knows about
//! HTTP. The `server` crate spawns its long-lived tasks.

pub(crate) mod claim;
pub(crate) mod coalesce;
pub(crate) mod hub;
pub(crate) mod pipeline;
pub(crate) mod simulation;
