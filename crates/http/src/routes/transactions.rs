use actix_web::HttpResponse;
use actix_web::web::{Data, Query};
use time::OffsetDateTime;

use crate::dto::{PageJson, json_ok};
use crate::error::ApiError;
use crate::query::RawHistoryQuery;
use crate::state::AppState;

/// Bytes of JSON per transaction, roughly; sizes the response buffer.
const BYTES_PER_ROW: usize = 330;

/// `GET /transactions`: one page of a user's history, newest first.
pub(super) async fn history(
    state: Data<AppState>,
    Query(raw): Query<RawHistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = raw.validate(OffsetDateTime::now_utc(), &state.cursors)?;
    let page = state.transactions.page(&query).await?;
    let cursor = page
        .end()
        .map(|end| state.cursors.encode(query.user_id, &end))
        .unwrap_or_default();
    let body = PageJson {
        transactions: &page.transactions,
        cursor,
        has_more: page.has_more,
    };
    json_ok(&body, 96 + page.transactions.len() * BYTES_PER_ROW)
}
