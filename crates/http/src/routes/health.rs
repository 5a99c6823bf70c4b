use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::{Data, Json};
use serde::Serialize;

use crate::dto::{HealthJson, json_response};
use crate::error::{ApiError, error_chain};
use crate::state::AppState;

/// How long readiness waits for each dependency to answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /health`: liveness only; touches no dependency.
#[utoipa::path(
    get,
    path = "/health",
    tag = "service",
    operation_id = "health",
    summary = "Liveness",
    description = "Answers as long as the process serves HTTP. It touches neither Postgres \
                   nor Redis: readiness is a separate question.",
    responses((status = 200, description = "The process is alive.", body = crate::openapi::Health)),
)]
pub(super) async fn health() -> Json<HealthJson> {
    Json(HealthJson { health: "ok" })
}

/// `GET /ready`'s body: `{"ready": true, "postgres": "ok", "redis": "ok"}`,
/// or with 503 the error shape plus the same fields, each `"ok"` or what
/// is wrong.
#[derive(Serialize)]
struct ReadyJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    ready: bool,
    postgres: String,
    redis: String,
}

/// `GET /ready`: 200 when Postgres (with its schema) and Redis answer, else
/// 503 naming what is down. Both are checked at once, each within 2 s.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "service",
    operation_id = "ready",
    summary = "Readiness",
    description = "Whether this process can serve every route: Postgres answers with its \
                   schema in place, and Redis answers; both are checked at once, each within \
                   2 s. Route a load balancer's traffic to a process only while it answers \
                   200; `/health` is the liveness check.",
    responses(
        (status = 200, description = "Postgres and Redis are reachable.",
         body = crate::openapi::Readiness),
        (status = 503, description = "Something is down: `error` is `not_ready`, `message` \
                                      names what, and `postgres` and `redis` say `ok` or why \
                                      not.",
         body = crate::openapi::Readiness),
    ),
)]
pub(super) async fn ready(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    // The ping keeps its own deadline, so that a connection that gives no
    // answer is closed rather than handed back to the pool.
    let postgres = async {
        txwatch_storage::ping(state.transactions.pool(), CHECK_TIMEOUT)
            .await
            .map_err(|error| error_chain(&error))
    };
    let redis = async {
        match tokio::time::timeout(CHECK_TIMEOUT, txwatch_cache::ping(&state.redis)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error_chain(&error)),
            Err(_) => Err("no answer within 2 s".to_owned()),
        }
    };
    let (postgres, redis) = tokio::join!(postgres, redis);
    let down: Vec<String> = [("postgres", &postgres), ("redis", &redis)]
        .into_iter()
        .filter_map(|(name, check)| check.as_ref().err().map(|why| format!("{name}: {why}")))
        .collect();
    let shown = |check: Result<(), String>| check.err().unwrap_or_else(|| "ok".to_owned());
    let ready = down.is_empty();
    let body = ReadyJson {
        error: (!ready).then_some("not_ready"),
        message: (!ready).then(|| format!("not ready: {}", down.join("; "))),
        ready,
        postgres: shown(postgres),
        redis: shown(redis),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &body, 160)
}
