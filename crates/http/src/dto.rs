//! JSON shapes of the API, written straight from domain types at the edge.
//!
//! The history route sends up to 1,000 rows per response, so these types
//! borrow the domain values and serialize them without intermediate strings:
//! amounts and dates are written into the output as they are formatted.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use txwatch_domain::{Transaction, UserId};

use crate::error::ApiError;

/// A transaction as the old service sent it, plus the verdict's details in
/// `meta_data` so a flag can be explained:
/// `{"id","user_id","amount":"271.62","currency","txn_date","status","meta_data"}`.
pub(crate) struct TransactionJson<'a>(pub(crate) &'a Transaction);

impl Serialize for TransactionJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut out = serializer.serialize_struct("Transaction", 7)?;
        out.serialize_field("id", &t.id.as_uuid())?;
        out.serialize_field("user_id", &t.user_id.as_uuid())?;
        out.serialize_field("amount", &t.amount)?; // a two-decimal string
        out.serialize_field("currency", t.currency.as_str())?;
        out.serialize_field("txn_date", &Rfc3339Utc(t.txn_date))?;
        out.serialize_field("status", t.status.as_str())?;
        out.serialize_field("meta_data", &MetaDataJson(t))?;
        out.end()
    }
}

/// `meta_data`: `is_anomaly` as before; `simulated` and `window_len`
/// always, and `score`, `baseline` and `threshold` once the user had enough
/// history (of the transaction's origin).
struct MetaDataJson<'a>(&'a Transaction);

impl Serialize for MetaDataJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let verdict = &self.0.verdict;
        let score = verdict.score();
        let fields = if score.is_some() { 6 } else { 3 };
        let mut out = serializer.serialize_struct("MetaData", fields)?;
        out.serialize_field("is_anomaly", &verdict.is_anomaly())?;
        out.serialize_field("simulated", &self.0.origin.is_simulated())?;
        out.serialize_field("window_len", &verdict.window_len())?;
        if let Some(score) = score {
            out.serialize_field("score", &score.score)?;
            out.serialize_field("baseline", &score.baseline)?;
            out.serialize_field("threshold", &score.threshold)?;
        }
        out.end()
    }
}

/// An instant as RFC 3339 in UTC, formatted on the stack.
struct Rfc3339Utc(OffsetDateTime);

impl Serialize for Rfc3339Utc {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // "-YYYYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" is at most 35 bytes.
        let mut buffer = [0u8; 40];
        let mut cursor = std::io::Cursor::new(&mut buffer[..]);
        self.0
            .to_offset(time::UtcOffset::UTC)
            .format_into(&mut cursor, &Rfc3339)
            .map_err(serde::ser::Error::custom)?;
        // The cursor's position, not `format_into`'s own count, which can
        // fall short of what it wrote.
        let written = usize::try_from(cursor.position()).map_err(serde::ser::Error::custom)?;
        let text = std::str::from_utf8(&buffer[..written]).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(text)
    }
}

/// `GET /transactions`.
#[derive(Serialize)]
pub(crate) struct PageJson<'a> {
    #[serde(serialize_with = "transactions")]
    pub(crate) transactions: &'a [Transaction],
    /// Continue after the last row; `""` for an empty page.
    pub(crate) cursor: String,
    /// Whether another non-empty page follows.
    pub(crate) has_more: bool,
}

fn transactions<S: Serializer>(rows: &&[Transaction], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(rows.iter().map(TransactionJson))
}

/// `GET /users`.
#[derive(Serialize)]
pub(crate) struct UsersJson<'a> {
    pub(crate) users: &'a [UserId],
}

/// `GET /health`.
#[derive(Serialize)]
pub(crate) struct HealthJson {
    pub(crate) health: &'static str,
}

/// A `200` JSON response, serialized into a buffer of `size_hint` bytes so a
/// large body is not copied as it grows.
pub(crate) fn json_ok<T: Serialize>(value: &T, size_hint: usize) -> Result<HttpResponse, ApiError> {
    json_response(StatusCode::OK, value, size_hint)
}

/// A JSON response with `status`, serialized like [`json_ok`].
pub(crate) fn json_response<T: Serialize>(
    status: StatusCode,
    value: &T,
    size_hint: usize,
) -> Result<HttpResponse, ApiError> {
    let mut body = Vec::with_capacity(size_hint);
    value
        .serialize(&mut serde_json::Serializer::new(&mut body))
        .map_err(|error| ApiError::Internal(Box::new(error)))?;
    Ok(HttpResponse::build(status)
        .content_type(ContentType::json())
        .body(body))
}
