//! `GET /health` (the process answers) and `GET /ready` (Postgres and Redis
//! answer, and what the operator should know).

use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::{Data, Json};
use serde::Serialize;
use txwatch_storage::StorageError;

use crate::api::dto::{HealthJson, json_response};
use crate::api::error::{ApiError, error_chain};
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
    responses((status = 200, description = "The process is alive.", body = crate::api::openapi::Health)),
)]
pub(crate) async fn health() -> Json<HealthJson> {
    Json(HealthJson { health: "ok" })
}

/// `GET /ready`'s body: `{"ready": true, "postgres": "ok", "redis": "ok",
/// "warnings": []}`, or with 503 the error shape plus the same fields, each
/// `"ok"` or what is wrong in plain words (the details go to the log, not
/// to whoever asks).
#[derive(Serialize)]
struct ReadyJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    ready: bool,
    postgres: &'static str,
    redis: &'static str,
    warnings: Vec<WarningJson>,
    replicas: Vec<ReplicaJson>,
}

/// A read replica as its last check found it.
#[derive(Serialize)]
struct ReplicaJson {
    name: String,
    state: &'static str,
    lag_ms: Option<u64>,
}

/// Something an operator should fix that does not stop serving.
#[derive(Serialize)]
struct WarningJson {
    code: &'static str,
    message: &'static str,
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
                   200; `/health` is the liveness check. `warnings` lists settings an \
                   operator should fix that do not stop serving, such as \
                   `default_cursor_secret` while cursors are signed with the built-in, \
                   public secret. `replicas` shows each read replica's state and lag; a \
                   replica that is down or lags does not make the process unready, since \
                   the primary answers its reads.",
    responses(
        (status = 200, description = "Postgres and Redis are reachable.",
         body = crate::api::openapi::Readiness),
        (status = 503, description = "Something is down: `error` is `not_ready`, `message` \
                                      names what, and `postgres` and `redis` say `ok` or, in \
                                      plain words, why not (the details are logged).",
         body = crate::api::openapi::Readiness),
    ),
)]
pub(crate) async fn ready(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    // The ping keeps its own deadline, so that a connection that gives no
    // answer is closed rather than handed back to the pool.
    let postgres = async {
        match txwatch_storage::ping(state.transactions.pool(), CHECK_TIMEOUT).await {
            Ok(()) => Ok(()),
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "readiness: postgres is not usable");
                Err(match error {
                    StorageError::Unavailable(_) => UNREACHABLE,
                    StorageError::Query(_) => "answering, but its schema is not in place yet",
                    _ => "not usable",
                })
            }
        }
    };
    let redis = async {
        match tokio::time::timeout(CHECK_TIMEOUT, txwatch_cache::ping(&state.redis)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                tracing::warn!(error = %error_chain(&error), "readiness: redis is not usable");
                Err(if matches!(error, txwatch_cache::CacheError::ClusterDown) {
                    "a cluster that is not ok (slots without a reachable master)"
                } else if error.is_unavailable() {
                    UNREACHABLE
                } else {
                    "answering unexpectedly"
                })
            }
            Err(_) => Err(NO_ANSWER),
        }
    };
    let (postgres, redis) = tokio::join!(postgres, redis);
    let down: Vec<String> = [("postgres", &postgres), ("redis", &redis)]
        .into_iter()
        .filter_map(|(name, check)| check.err().map(|why| format!("{name} {why}")))
        .collect();
    let shown = |check: Result<(), &'static str>| check.err().unwrap_or("ok");
    let ready = down.is_empty();
    let mut warnings = Vec::new();
    if state.built_in_cursor_secret {
        warnings.push(WarningJson {
            code: "default_cursor_secret",
            message: "pagination cursors are signed with the built-in secret, which is public; \
                      set APP_HTTP__CURSOR_SECRET (the same on every replica)",
        });
    }
    let body = ReadyJson {
        error: (!ready).then_some("not_ready"),
        message: (!ready).then(|| format!("not ready: {}", down.join("; "))),
        ready,
        postgres: shown(postgres),
        redis: shown(redis),
        warnings,
        // Not part of readiness: the primary answers what a replica cannot.
        replicas: state
            .transactions
            .replicas()
            .map(|replicas| {
                replicas
                    .status()
                    .into_iter()
                    .map(|replica| ReplicaJson {
                        name: replica.name,
                        state: replica.state.as_str(),
                        lag_ms: replica.lag_ms,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &body, 512)
}

/// What readiness says of a dependency that refuses connections.
const UNREACHABLE: &str = "unreachable";
/// What readiness says of a dependency that does not answer in time.
const NO_ANSWER: &str = "no answer within 2 s";
