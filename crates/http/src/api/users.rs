//! `GET /users`: every user with stored transactions.

use actix_web::HttpResponse;
use actix_web::web::Data;

use crate::api::dto::{UsersJson, json_ok};
use crate::api::error::ApiError;
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
        (status = 200, description = "The users.", body = crate::api::openapi::Users),
        (status = 500, response = crate::api::openapi::InternalError),
        (status = 503, response = crate::api::openapi::Unavailable),
    ),
)]
pub(super) async fn list(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let users = state.transactions.users().await?;
    json_ok(&UsersJson { users: &users }, 16 + users.len() * 40)
}
