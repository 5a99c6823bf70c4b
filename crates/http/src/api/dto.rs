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

use crate::api::error::ApiError;

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

impl TransactionJson<'_> {
    /// Appends exactly the JSON that `Serialize` writes, without serde's
    /// per-byte escaping: every string in a transaction is known to need
    /// none (ids, dates and amounts are digits, letters and punctuation; a
    /// currency is three uppercase letters; a status is `[a-z0-9_]`).
    /// Serializing was half of the server's instructions for a page of
    /// history, most of it that escaping scan.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        let t = self.0;
        let mut uuid = uuid::Uuid::encode_buffer();
        out.extend_from_slice(br#"{"id":""#);
        out.extend_from_slice(
            t.id.as_uuid()
                .hyphenated()
                .encode_lower(&mut uuid)
                .as_bytes(),
        );
        out.extend_from_slice(br#"","user_id":""#);
        out.extend_from_slice(
            t.user_id
                .as_uuid()
                .hyphenated()
                .encode_lower(&mut uuid)
                .as_bytes(),
        );
        out.extend_from_slice(br#"","amount":""#);
        write_amount(out, t.amount.cents());
        out.extend_from_slice(br#"","currency":""#);
        out.extend_from_slice(t.currency.as_str().as_bytes());
        out.extend_from_slice(br#"","txn_date":"#);
        write_instant(out, t.txn_date);
        out.extend_from_slice(br#","status":""#);
        out.extend_from_slice(t.status.as_str().as_bytes());
        out.extend_from_slice(br#"","meta_data":{"is_anomaly":"#);
        let verdict = &t.verdict;
        out.extend_from_slice(if verdict.is_anomaly() {
            b"true"
        } else {
            b"false"
        });
        out.extend_from_slice(br#","simulated":"#);
        out.extend_from_slice(if t.origin.is_simulated() {
            b"true"
        } else {
            b"false"
        });
        out.extend_from_slice(br#","window_len":"#);
        out.extend_from_slice(itoa::Buffer::new().format(verdict.window_len()).as_bytes());
        if let Some(score) = verdict.score() {
            for (name, value) in [
                (&br#","score":"#[..], score.score),
                (br#","baseline":"#, score.baseline),
                (br#","threshold":"#, score.threshold),
            ] {
                out.extend_from_slice(name);
                write_f64(out, value);
            }
        }
        out.extend_from_slice(b"}}");
    }
}

/// `cents` as a two-decimal string, as `Amount`'s `Display` writes it.
fn write_amount(out: &mut Vec<u8>, cents: i128) {
    if cents < 0 {
        out.push(b'-');
    }
    let cents = cents.unsigned_abs();
    out.extend_from_slice(itoa::Buffer::new().format(cents / 100).as_bytes());
    let fraction = (cents % 100) as u8;
    out.extend_from_slice(&[b'.', b'0' + fraction / 10, b'0' + fraction % 10]);
}

/// A float as serde_json writes it (`null` when not finite).
fn write_f64(out: &mut Vec<u8>, value: f64) {
    serde_json::to_writer(out, &value).expect("a float serializes into a Vec");
}

/// An instant as a quoted RFC 3339 string in UTC, as [`Rfc3339Utc`] writes
/// it: the fraction of a second with its trailing zeros dropped, none when
/// it is zero. Years outside 0000-9999 take the general formatter.
fn write_instant(out: &mut Vec<u8>, at: OffsetDateTime) {
    let at = at.to_offset(time::UtcOffset::UTC);
    let year = at.year();
    if !(0..=9999).contains(&year) {
        serde_json::to_writer(out, &Rfc3339Utc(at))
            .expect("an RFC 3339 date serializes into a Vec");
        return;
    }
    let two = |n: u8| [b'0' + n / 10, b'0' + n % 10];
    let year = year as u16;
    out.push(b'"');
    out.extend_from_slice(&[
        b'0' + (year / 1000) as u8,
        b'0' + (year / 100 % 10) as u8,
        b'0' + (year / 10 % 10) as u8,
        b'0' + (year % 10) as u8,
        b'-',
    ]);
    out.extend_from_slice(&two(u8::from(at.month())));
    out.push(b'-');
    out.extend_from_slice(&two(at.day()));
    out.push(b'T');
    out.extend_from_slice(&two(at.hour()));
    out.push(b':');
    out.extend_from_slice(&two(at.minute()));
    out.push(b':');
    out.extend_from_slice(&two(at.second()));
    let mut nanos = at.nanosecond();
    if nanos != 0 {
        let mut digits = [0u8; 9];
        for digit in digits.iter_mut().rev() {
            *digit = b'0' + (nanos % 10) as u8;
            nanos /= 10;
        }
        let kept = 9 - digits.iter().rev().take_while(|&&d| d == b'0').count();
        out.push(b'.');
        out.extend_from_slice(&digits[..kept]);
    }
    out.extend_from_slice(b"Z\"");
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

/// `GET /transactions`: `{"transactions":[...],"cursor":"...","has_more":...}`.
pub(crate) struct PageJson<'a> {
    /// The rows, newest first.
    pub(crate) transactions: &'a [Transaction],
    /// Continue after the last row; `""` for an empty page. A cursor is
    /// URL-safe base64: nothing to escape.
    pub(crate) cursor: String,
    /// Whether another non-empty page follows.
    pub(crate) has_more: bool,
}

impl PageJson<'_> {
    /// The page's JSON, each row written by [`TransactionJson::write_to`].
    pub(crate) fn to_json(&self, size_hint: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(size_hint);
        out.extend_from_slice(br#"{"transactions":["#);
        for (index, row) in self.transactions.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            TransactionJson(row).write_to(&mut out);
        }
        out.extend_from_slice(br#"],"cursor":""#);
        out.extend_from_slice(self.cursor.as_bytes());
        out.extend_from_slice(br#"","has_more":"#);
        out.extend_from_slice(if self.has_more { b"true" } else { b"false" });
        out.push(b'}');
        out
    }
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

#[cfg(test)]
mod tests {
    use time::macros::datetime;
    use txwatch_domain::{
        Amount, Currency, Origin, Score, Status, Transaction, TransactionId, UserId, Verdict,
    };
    use uuid::Uuid;

    use super::*;

    fn transaction(n: u64) -> Transaction {
        let nanos = [0, 500_000_000, 123_456_000, 1_000, 999_999_000][n as usize % 5];
        let dates = [
            datetime!(2026-03-01 10:00 UTC),
            datetime!(0001-01-01 00:00 UTC),
            datetime!(9999-12-31 23:59:59 UTC),
            datetime!(1970-01-01 00:00 +05:30),
        ];
        let txn_date = dates[n as usize % 4] + time::Duration::nanoseconds(nanos);
        let cents = [0_i128, 1, 99, 100, 27162, -5, 99_999_999_999_999_999_999][n as usize % 7];
        let verdict = if n.is_multiple_of(3) {
            Verdict::NotEnoughHistory {
                have: n as usize % 10,
            }
        } else {
            let floats = [0.0, 1.0 / 3.0, 1e-300, 12345.678, f64::NAN, 5e20];
            Verdict::Scored(Score {
                is_anomaly: n.is_multiple_of(2),
                score: floats[n as usize % 6],
                window_len: 20,
                baseline: floats[(n as usize + 1) % 6],
                threshold: floats[(n as usize + 2) % 6],
            })
        };
        Transaction {
            id: TransactionId(Uuid::from_u64_pair(n.wrapping_mul(0x9e37_79b9), n)),
            user_id: UserId(Uuid::from_u128(u128::from(n) << 64 | 0xabc)),
            amount: Amount::from_cents(cents).expect("in range"),
            currency: if n.is_multiple_of(2) {
                Currency::INR
            } else {
                "USD".parse().expect("a code")
            },
            txn_date,
            status: if n.is_multiple_of(4) {
                Status::FAILED
            } else {
                "charged_back_2".parse().expect("a status")
            },
            origin: if n.is_multiple_of(5) {
                Origin::Simulated
            } else {
                Origin::Real
            },
            verdict,
        }
    }

    #[test]
    fn the_fast_writer_writes_exactly_what_serde_writes() {
        for n in 0..420 {
            let t = transaction(n);
            let mut fast = Vec::new();
            TransactionJson(&t).write_to(&mut fast);
            let serde = serde_json::to_vec(&TransactionJson(&t)).expect("serializes");
            assert_eq!(
                String::from_utf8(fast).expect("utf-8"),
                String::from_utf8(serde).expect("utf-8"),
                "transaction {n}"
            );
        }
    }

    #[test]
    fn a_page_is_its_rows_its_cursor_and_whether_more_follow() {
        let rows: Vec<Transaction> = (1..4).map(transaction).collect();
        let json = PageJson {
            transactions: &rows,
            cursor: "AQID_-x".to_owned(),
            has_more: true,
        }
        .to_json(0);
        let page: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
        let expected: Vec<serde_json::Value> = rows
            .iter()
            .map(|t| serde_json::to_value(TransactionJson(t)).expect("serializes"))
            .collect();
        assert_eq!(page["transactions"], serde_json::Value::Array(expected));
        assert_eq!(page["cursor"], "AQID_-x");
        assert_eq!(page["has_more"], true);
        let empty = PageJson {
            transactions: &[],
            cursor: String::new(),
            has_more: false,
        }
        .to_json(0);
        assert_eq!(
            empty,
            br#"{"transactions":[],"cursor":"","has_more":false}"#
        );
    }
}
