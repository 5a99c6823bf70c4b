use actix_web::HttpResponse;
use actix_web::web::Data;

use crate::dto::{UsersJson, json_ok};
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /users`: every user that has transactions.
#[utoipa::path(
    get,
    path = "/users",
    tag = "transactions",
    operation_id = "list_users",
    summary = "Every user that has transactions",
    description = "The id of every user with at least one stored transaction, each once, in \
                   ascending order.",
    responses(
        (status = 200, description = "The users.", body = crate::openapi::Users),
        (status = 500, response = crate::openapi::InternalError),
        (status = 503, response = crate::openapi::Unavailable),
    ),
)]
pub(super) async fn list(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let users = state.transactions.users().await?;
    json_ok(&UsersJson { users: &users }, 16 + users.len() * 40)
}
