use actix_web::web::Json;

use crate::dto::HealthJson;

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
