use actix_web::web::{Data, Json, Query};
use time::OffsetDateTime;

use crate::dto::{PageJson, TransactionJson};
use crate::error::ApiError;
use crate::query::RawHistoryQuery;
use crate::state::AppState;

/// `GET /transactions`: one page of a user's history, newest first.
pub(super) async fn history(
    state: Data<AppState>,
    Query(raw): Query<RawHistoryQuery>,
) -> Result<Json<PageJson>, ApiError> {
    let query = raw.validate(OffsetDateTime::now_utc(), &state.cursors)?;
    let page = state.transactions.page(&query).await?;
    let cursor = page
        .end()
        .map(|end| state.cursors.encode(query.user_id, &end))
        .unwrap_or_default();
    Ok(Json(PageJson {
        transactions: page
            .transactions
            .iter()
            .map(TransactionJson::from)
            .collect(),
        cursor,
        has_more: page.has_more,
    }))
}
