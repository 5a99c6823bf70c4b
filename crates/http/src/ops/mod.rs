//! Operating the server: the middleware around every request (request id,
//! log line, metrics, time limit), the Prometheus metrics, and the health
//! and readiness routes.
//!
//! It observes the rest and must not change what any route answers, except
//! for the time limit's 503.

pub(crate) mod health;
pub(crate) mod metrics;
pub(crate) mod metrics_route;
pub(crate) mod observe;
