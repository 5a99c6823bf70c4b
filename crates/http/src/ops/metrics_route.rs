//! `GET /metrics`: the Prometheus text of this process's [`Metrics`](super::metrics::Metrics).

use actix_web::HttpResponse;
use actix_web::web::Data;

use crate::ops::metrics::PoolUsage;
use crate::state::AppState;

/// `GET /metrics`: the Prometheus text exposition of this process.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    operation_id = "metrics",
    summary = "Prometheus metrics",
    description = "This process's counters, gauges and histograms in the Prometheus text \
                   exposition format (version 0.0.4): requests by route and status, \
                   transactions scored, anomalies flagged, pipeline stage latency, SSE \
                   streams, lagged events, dependency errors, pool usage, and with read \
                   replicas, which database answered each history or users read and each \
                   replica's state and lag.",
    responses((status = 200, description = "The metrics.", body = String,
               content_type = "text/plain")),
)]
pub(crate) async fn metrics(state: Data<AppState>) -> HttpResponse {
    let postgres = state.transactions.pool().status();
    let redis = state.redis.status();
    let pools = [
        PoolUsage {
            pool: "postgres",
            open: postgres.size,
            idle: postgres.available,
            max: postgres.max_size,
            waiting: postgres.waiting,
        },
        PoolUsage {
            pool: "redis",
            open: redis.size,
            idle: redis.available,
            max: redis.max_size,
            waiting: redis.waiting,
        },
    ];
    if let Some(replicas) = state.transactions.replicas() {
        state.metrics().replicas(replicas);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics().render(&pools))
}
