use actix_web::web::{Data, Json};

use crate::dto::UsersJson;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /users`: every user that has transactions.
pub(super) async fn list(state: Data<AppState>) -> Result<Json<UsersJson>, ApiError> {
    let users = state.transactions.users().await?;
    Ok(Json(UsersJson::new(users)))
}
