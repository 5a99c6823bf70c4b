use actix_web::web::Json;

use crate::dto::HealthJson;

/// `GET /health`: liveness only; touches no dependency.
pub(super) async fn health() -> Json<HealthJson> {
    Json(HealthJson { health: "ok" })
}
