use actix_web::HttpResponse;
use actix_web::web::Data;

use crate::dto::{UsersJson, json_ok};
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /users`: every user that has transactions.
pub(super) async fn list(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let users = state.transactions.users().await?;
    json_ok(&UsersJson { users: &users }, 16 + users.len() * 40)
}
