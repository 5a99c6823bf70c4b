//! `GET /transactions`: one page of a user's history, by cursor.

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;
use actix_web::web::{Data, Query};
use time::OffsetDateTime;

use crate::api::dto::PageJson;
use crate::api::error::ApiError;
use crate::api::query::RawHistoryQuery;
use crate::state::AppState;

/// Bytes of JSON per transaction: a little above the 330-350 a row takes,
/// so the response buffer is sized once (growing it copied the whole page).
const BYTES_PER_ROW: usize = 384;

/// `GET /transactions`: one page of a user's history, newest first.
#[utoipa::path(
    get,
    path = "/transactions",
    tag = "transactions",
    operation_id = "list_transactions",
    summary = "One page of a user's history, newest first",
    description = "A user's transactions within a date and amount range (both inclusive), \
                   ordered by `txn_date` descending, then `id` ascending. To read the next \
                   page, repeat the query with the `cursor` of this one; walking every page \
                   yields each matching row exactly once. An empty page has the cursor `\"\"`.",
    params(crate::api::openapi::HistoryParams),
    responses(
        (status = 200, description = "One page.", body = crate::api::openapi::Page),
        (status = 422, description = "A parameter is missing or invalid (`missing_parameter`, \
                                      `invalid_parameter`, `invalid_range`, `invalid_cursor`), \
                                      or the query string is malformed (`malformed_query`, \
                                      such as a parameter given twice).",
         body = crate::api::openapi::ErrorBody),
        (status = 500, response = crate::api::openapi::InternalError),
        (status = 503, response = crate::api::openapi::Unavailable),
    ),
)]
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
    let json = body.to_json(96 + page.transactions.len() * BYTES_PER_ROW);
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(json))
}
