//! `POST /transactions` and `POST /transactions/batch`: client transactions
//! into the pipeline.
//!
//! A transaction is a JSON object with `user_id` and `amount` (a string such
//! as `"271.62"` or a number, at most two decimals, not negative) and,
//! optionally, `id` (a UUID: posting the same id again answers the stored
//! transaction), `currency` (default `INR`), `txn_date` (RFC 3339, default
//! now; not before 1970 nor more than a day ahead) and `status` (default
//! `paid`). Unknown fields are rejected, so a misspelt one is not silently
//! ignored.

use std::borrow::Cow;
use std::future::{Ready, ready};
use std::io::Write;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::web::Data;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, dev::Payload};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::time::Instant;
use txwatch_domain::{Amount, Currency, Status, TransactionId, UserId};

use crate::api::body::Body;
use crate::api::dto::{TransactionJson, json_response};
use crate::api::error::{ApiError, IngestIds, echo, quoting};
use crate::api::json::{BatchShape, Object, strict_value};
use crate::api::origin::{Origin, host_may_write, origin_may_write, own_origin};
use crate::api::query::parse_instant;
use crate::live::claim::Claim;
use crate::live::pipeline::{IdOrigin, NewTransaction, Outcome};
use crate::ops::observe::TimeLimit;
use crate::state::AppState;

/// Most transactions one batch may hold.
pub(crate) const MAX_BATCH: usize = 1000;
/// Largest body of a single transaction.
pub(crate) const MAX_SINGLE_BYTES: usize = 64 * 1024;
/// Largest body of a batch: room for 1,000 generous transactions.
pub(crate) const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

const FIELDS: &str = "id, user_id, amount, currency, txn_date, status";
/// Bytes of JSON per answered transaction, roughly; sizes the buffer.
const BYTES_PER_ITEM: usize = 360;

/// Proof that the request may write: a browser page may (see
/// `crate::api::origin`), the host name is known or an API key is configured,
/// and the configured API key was sent. Extract it first so a request
/// without the key is refused before its body is read.
pub(crate) struct WriteAccess;

impl FromRequest for WriteAccess {
    type Error = ApiError;
    type Future = Ready<Result<WriteAccess, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = request.app_data::<Data<AppState>>() else {
            return ready(Err(ApiError::Internal(
                "app state is not registered".into(),
            )));
        };
        ready(check_access(request, state))
    }
}

fn check_access(request: &HttpRequest, state: &AppState) -> Result<WriteAccess, ApiError> {
    let own = own_origin(request, &state.trusted_proxies);
    // Clients that send no `Origin` (curl, servers) are not browsers acting
    // for a visitor; a browser always sends it on a cross-origin post.
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        if !origin_may_write(&origin, own.as_ref(), &state.write_origins) {
            return Err(ApiError::OriginNotAllowed(echo(&origin)));
        }
    }
    if state.api_key_digest.is_none() {
        let host = own.as_ref().map_or("", Origin::host);
        if !host_may_write(host, &state.allowed_hosts) {
            return Err(ApiError::HostNotAllowed(echo(host)));
        }
        return Ok(WriteAccess);
    }
    if state.may_write(request.headers()) {
        Ok(WriteAccess)
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// `POST /transactions`: 201 with the scored transaction, or 200 with the
/// stored one when its id was seen before.
#[utoipa::path(
    post,
    path = "/transactions",
    tag = "transactions",
    operation_id = "create_transaction",
    summary = "Score, store and publish one transaction",
    description = "Judges the amount against the user's previous transactions, stores it \
                   with its verdict and publishes it to the live streams. An `id` makes \
                   the post idempotent: posting the same id again answers the stored \
                   transaction, unchanged, with 200; send one, so that a post whose \
                   answer is lost can be sent again safely. The body may be sent without \
                   a `Content-Type`. The answer comes within `APP_HTTP__INGEST_TIMEOUT_MS` \
                   (8 s by default); a 503 says whether the transaction is stored, is not, \
                   or may be, and names its id.",
    request_body(content = crate::api::openapi::NewTransaction, content_type = "application/json"),
    security((), ("api_key" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "Scored and stored now.", body = crate::api::openapi::Transaction),
        (status = 200, description = "The id was stored before: the stored transaction.",
         body = crate::api::openapi::Transaction),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 408, response = crate::api::openapi::BodyTimeout),
        (status = 409, response = crate::api::openapi::InProgress),
        (status = 413, response = crate::api::openapi::PayloadTooLarge),
        (status = 415, response = crate::api::openapi::UnsupportedEncoding),
        (status = 422, description = "The body is not a transaction (`invalid_body`: not a JSON \
                                      object, an unknown field, or a repeated key), or a field \
                                      is missing (`missing_field`) or invalid \
                                      (`invalid_field`).",
         body = crate::api::openapi::ErrorBody),
        (status = 500, response = crate::api::openapi::InternalError),
        (status = 503, response = crate::api::openapi::IngestUnavailable),
    ),
)]
pub(super) async fn create(
    _access: WriteAccess,
    state: Data<AppState>,
    request: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let deadline = ingest_deadline(&state, &request);
    let item = read_transaction(body.text()?, OffsetDateTime::now_utc())?;
    let id = IngestIds::One(item.id.as_uuid());
    let outcome = state
        .single
        .submit(item, deadline)
        .await
        .map_err(|error| error.with_ids(id))?;
    match outcome {
        Outcome::Created { json, .. } => Ok(HttpResponse::Created()
            .content_type(ContentType::json())
            .body(json)),
        Outcome::Existing(t) => json_response(StatusCode::OK, &TransactionJson(&t), BYTES_PER_ITEM),
        Outcome::InProgress(id) => Err(ApiError::InProgress(id.as_uuid())),
    }
}

/// `POST /transactions/batch` with `{"transactions": [...]}` (or a bare
/// array): up to 1,000 transactions, each user's scored in the given order.
/// Answers 200 with one result per item, in order; an item that is invalid
/// gets its own 422 result and does not stop the others. When Redis or
/// Postgres is down the whole batch answers 503 with every item's id,
/// saying whether nothing is stored or whether that is unknown.
#[utoipa::path(
    post,
    path = "/transactions/batch",
    tag = "transactions",
    operation_id = "create_transactions",
    summary = "Score, store and publish up to 1,000 transactions",
    description = "Takes `{\"transactions\": [...]}` or a bare array of up to 1,000 \
                   transactions, shaped as for `POST /transactions`. Each user's transactions \
                   are judged in the order given. The answer has one result per item, in \
                   order: `201` with the transaction when stored now, `200` with the stored \
                   one when its id was seen before, or an error status with `error` and \
                   `message` for an item that is invalid (`422`) or whose id another request \
                   is storing right now (`409`); a rejected item does not stop the others. \
                   The answer comes within `APP_HTTP__INGEST_TIMEOUT_MS` (8 s by default). \
                   One statement stores the batch, so a 503 concerns all of it: it says \
                   whether nothing is stored (`service_unavailable`) or whether that is \
                   unknown (`outcome_unknown`), and names each item's id.",
    request_body(content = crate::api::openapi::Batch, content_type = "application/json"),
    security((), ("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "One result per item, in order, and their counts.",
         body = crate::api::openapi::BatchResult),
        (status = 401, response = crate::api::openapi::Unauthorized),
        (status = 403, response = crate::api::openapi::Forbidden),
        (status = 408, response = crate::api::openapi::BodyTimeout),
        (status = 413, response = crate::api::openapi::PayloadTooLarge),
        (status = 415, response = crate::api::openapi::UnsupportedEncoding),
        (status = 422, description = "The body is neither an array nor `{\"transactions\": [...]}` \
                                      (`invalid_body`, such as a repeated key, `missing_field`, \
                                      `invalid_field`), or it holds more than 1,000 items \
                                      (`invalid_field`). An item that is not a JSON object, or \
                                      repeats a key, gets its own 422 result instead.",
         body = crate::api::openapi::ErrorBody),
        (status = 500, response = crate::api::openapi::InternalError),
        (status = 503, response = crate::api::openapi::BatchUnavailable),
    ),
)]
pub(super) async fn create_batch(
    _access: WriteAccess,
    state: Data<AppState>,
    request: HttpRequest,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let deadline = ingest_deadline(&state, &request);
    let parsed = read_batch(body.text()?, OffsetDateTime::now_utc())?;
    ingest_batch(&state, parsed, deadline).await
}

/// How long the answer to a write may take before it can no longer say
/// what it knows: at most `http.ingest_timeout_ms` from now (the body is
/// read), and early enough to answer before the request's own time limit
/// passes (whose generic `timeout` names no ids), however long the body
/// took to arrive.
fn ingest_deadline(state: &AppState, request: &HttpRequest) -> Instant {
    let ingest = Instant::now() + state.ingest_timeout;
    match request.extensions().get::<TimeLimit>() {
        Some(TimeLimit(limit)) => ingest.min(limit.checked_sub(ANSWER_TIME).unwrap_or(*limit)),
        None => ingest,
    }
}

/// Left, within the request's time limit, for answering once the ingest
/// deadline has passed.
const ANSWER_TIME: Duration = Duration::from_millis(250);

/// One transaction from a body: read plainly when it is a plainly
/// well-formed transaction object, else by the general reading, which says
/// exactly what is wrong with it. Both take only an object, and refuse a
/// repeated key (see `crate::api::json`).
fn read_transaction(body: &str, now: OffsetDateTime) -> Result<NewTransaction, ApiError> {
    match serde_json::from_str::<Object<SentTransaction<'_>>>(body) {
        Ok(Object(sent)) => check(sent.fields(), now),
        Err(_) => parse_transaction(&strict_value(body).map_err(invalid_body)?, now),
    }
}

/// A batch's items from a body, each checked on its own; as
/// [`read_transaction`], the general reading explains what the plain one
/// does not take.
fn read_batch(
    body: &str,
    now: OffsetDateTime,
) -> Result<Vec<Result<NewTransaction, ApiError>>, ApiError> {
    match sent_batch(body) {
        Some(sent) => {
            check_batch_size(sent.len())?;
            Ok(sent
                .into_iter()
                .map(|item| check(item.fields(), now))
                .collect())
        }
        None => parse_batch(body, now),
    }
}

/// A batch whose every item is a plainly well-formed transaction object,
/// read without building a JSON tree; `None` for anything else, which the
/// general reading ([`parse_batch`]) then explains item by item.
fn sent_batch(body: &str) -> Option<Vec<SentTransaction<'_>>> {
    let items: Vec<Object<SentTransaction<'_>>> = if body.trim_start().starts_with('[') {
        serde_json::from_str(body).ok()?
    } else {
        serde_json::from_str::<Object<SentBatch<'_>>>(body)
            .ok()?
            .0
            .transactions
    };
    Some(items.into_iter().map(|Object(item)| item).collect())
}

/// The general reading of a batch body: its items, each read and checked
/// on its own, so that one malformed item (a repeated key, say) rejects
/// that item only.
fn parse_batch(
    body: &str,
    now: OffsetDateTime,
) -> Result<Vec<Result<NewTransaction, ApiError>>, ApiError> {
    let items = match serde_json::from_str::<BatchShape<'_>>(body).map_err(invalid_body)? {
        BatchShape::Items(items) => items,
        BatchShape::Object(members) => {
            let mut transactions = None;
            let mut others = false;
            for (key, value) in members {
                if key == "transactions" {
                    transactions = Some(value);
                } else {
                    others = true;
                }
            }
            let Some(transactions) = transactions else {
                return Err(ApiError::MissingField("transactions"));
            };
            let items: Vec<&RawValue> = serde_json::from_str(transactions.get())
                .map_err(|_| ApiError::invalid_field("transactions", "it must be an array"))?;
            if others {
                return Err(ApiError::InvalidBody(
                    "the batch object takes only `transactions`".to_owned(),
                ));
            }
            items
        }
    };
    check_batch_size(items.len())?;
    Ok(items
        .iter()
        .map(|item| {
            let value = strict_value(item.get()).map_err(invalid_body)?;
            parse_transaction(&value, now)
        })
        .collect())
}

fn check_batch_size(items: usize) -> Result<(), ApiError> {
    if items > MAX_BATCH {
        return Err(ApiError::invalid_field(
            "transactions",
            format!("{items} items is more than the {MAX_BATCH} a batch may hold"),
        ));
    }
    Ok(())
}

fn invalid_body(error: serde_json::Error) -> ApiError {
    ApiError::InvalidBody(error.to_string())
}

/// Scores, stores and publishes the valid items of a batch and answers
/// every item, in order, by `deadline`.
async fn ingest_batch(
    state: &AppState,
    parsed: Vec<Result<NewTransaction, ApiError>>,
    deadline: Instant,
) -> Result<HttpResponse, ApiError> {
    let ids = || {
        IngestIds::Batch(
            parsed
                .iter()
                .map(|p| p.as_ref().ok().map(|t| t.id.as_uuid()))
                .collect(),
        )
    };
    let valid: Vec<NewTransaction> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().cloned())
        .collect();
    // In a task of its own, so a client that goes away (or the time limit)
    // cannot stop the pipeline half-way, between window step and store.
    let pipeline = state.pipeline.clone();
    let gate = Claim::new();
    let storing = gate.clone();
    let mut task = tokio::spawn(async move { pipeline.ingest_gated(valid, &storing).await });
    let joined = match tokio::time::timeout_at(deadline, &mut task).await {
        Ok(joined) => joined,
        // It has just finished: its answer is the truth.
        Err(_) if task.is_finished() => task.await,
        // Storing has not begun, and now never will.
        Err(_) if gate.withdraw() => return Err(ApiError::NotStoredInTime.with_ids(ids())),
        Err(_) => {
            return Err(ApiError::OutcomeUnknown(
                "the request's deadline passed while its transactions were being stored".into(),
            )
            .with_ids(ids()));
        }
    };
    let mut outcomes = joined
        .map_err(|error| ApiError::Internal(Box::new(error)))?
        .map_err(|error| error.with_ids(ids()))?
        .into_iter();

    // `{"created":n,"existing":n,"rejected":n,"results":[...]}`, written
    // here so that a created transaction's JSON, made once for its event,
    // is copied in rather than serialized again.
    let mut summary = Summary::default();
    let mut results: Vec<u8> = Vec::with_capacity(parsed.len() * BYTES_PER_ITEM);
    results.push(b'[');
    for (index, item) in parsed.iter().enumerate() {
        if index > 0 {
            results.push(b',');
        }
        let outcome = match item {
            Ok(_) => outcomes
                .next()
                .ok_or_else(|| ApiError::Internal("the pipeline answered too few items".into()))?,
            Err(error) => {
                summary.rejected += 1;
                write_item(&mut results, &ItemJson::error(error))?;
                continue;
            }
        };
        match &outcome {
            Outcome::Created { json, .. } => {
                summary.created += 1;
                results.extend_from_slice(br#"{"status":201,"transaction":"#);
                results.extend_from_slice(json);
                results.push(b'}');
            }
            Outcome::Existing(t) => {
                summary.existing += 1;
                write_item(&mut results, &ItemJson::transaction(200, t))?;
            }
            Outcome::InProgress(id) => {
                summary.rejected += 1;
                write_item(
                    &mut results,
                    &ItemJson::error(&ApiError::InProgress(id.as_uuid())),
                )?;
            }
        }
    }
    results.push(b']');
    let mut body = Vec::with_capacity(results.len() + 80);
    write!(
        body,
        r#"{{"created":{},"existing":{},"rejected":{},"results":"#,
        summary.created, summary.existing, summary.rejected
    )
    .map_err(|error| ApiError::Internal(Box::new(error)))?;
    body.extend_from_slice(&results);
    body.push(b'}');
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body))
}

fn write_item(results: &mut Vec<u8>, item: &ItemJson<'_>) -> Result<(), ApiError> {
    serde_json::to_writer(results, item).map_err(|error| ApiError::Internal(Box::new(error)))
}

#[derive(Default)]
struct Summary {
    created: usize,
    existing: usize,
    rejected: usize,
}

/// One batch item's answer: `{"status": 201|200, "transaction": {...}}` or
/// `{"status": 4xx, "error": code, "message": ...}`.
#[derive(Serialize)]
struct ItemJson<'a> {
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction: Option<TransactionJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl<'a> ItemJson<'a> {
    fn transaction(status: u16, t: &'a txwatch_domain::Transaction) -> ItemJson<'a> {
        ItemJson {
            status,
            transaction: Some(TransactionJson(t)),
            error: None,
            message: None,
        }
    }

    fn error(error: &ApiError) -> ItemJson<'a> {
        use actix_web::ResponseError;
        ItemJson {
            status: error.status_code().as_u16(),
            transaction: None,
            error: Some(error.code()),
            message: Some(error.to_string()),
        }
    }
}

/// Reads and checks one transaction object, whatever was sent: anything
/// that is not a transaction gets an error naming what is wrong.
pub(crate) fn parse_transaction(
    value: &Value,
    now: OffsetDateTime,
) -> Result<NewTransaction, ApiError> {
    let Value::Object(object) = value else {
        return Err(ApiError::InvalidBody(format!(
            "a transaction must be a JSON object with {FIELDS}"
        )));
    };
    if let Some(unknown) = object
        .keys()
        .find(|key| !FIELDS.split(", ").any(|f| f == *key))
    {
        return Err(ApiError::InvalidBody(format!(
            "unknown field `{}`; a transaction has {FIELDS}",
            echo(unknown)
        )));
    }
    let amount = match object.get("amount") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(SentAmount::Text(Cow::Borrowed(text))),
        Some(Value::Number(number)) => Some(SentAmount::Number(number.clone())),
        Some(other) => {
            return Err(ApiError::invalid_field(
                "amount",
                format!(
                    "`{}` is not an amount: send a string such as \"271.62\" or a number",
                    echo(&other.to_string())
                ),
            ));
        }
    };
    check(
        Fields {
            id: optional_text(object, "id")?,
            user_id: optional_text(object, "user_id")?,
            amount: amount.as_ref(),
            currency: optional_text(object, "currency")?,
            txn_date: optional_text(object, "txn_date")?,
            status: optional_text(object, "status")?,
        },
        now,
    )
}

/// A transaction object with only known fields, each a string (the amount a
/// string or a number) or null: what clients send. Strings without escapes
/// are borrowed from the body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SentTransaction<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    amount: Option<SentAmount<'a>>,
    #[serde(borrow, default)]
    currency: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    txn_date: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
}

impl SentTransaction<'_> {
    fn fields(&self) -> Fields<'_> {
        Fields {
            id: self.id.as_deref(),
            user_id: self.user_id.as_deref(),
            amount: self.amount.as_ref(),
            currency: self.currency.as_deref(),
            txn_date: self.txn_date.as_deref(),
            status: self.status.as_deref(),
        }
    }
}

/// `{"transactions": [...]}` of plainly well-formed transaction objects.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SentBatch<'a> {
    #[serde(borrow)]
    transactions: Vec<Object<SentTransaction<'a>>>,
}

/// An amount as sent: text, or a JSON number.
enum SentAmount<'a> {
    Text(Cow<'a, str>),
    Number(serde_json::Number),
}

impl<'de: 'a, 'a> Deserialize<'de> for SentAmount<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AmountVisitor;
        impl<'de> serde::de::Visitor<'de> for AmountVisitor {
            type Value = SentAmount<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an amount as a string or a number")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(SentAmount::Text(Cow::Borrowed(text)))
            }
            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(SentAmount::Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
                Ok(SentAmount::Text(Cow::Owned(text)))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                Ok(SentAmount::Number(n.into()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                Ok(SentAmount::Number(n.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Self::Value, E> {
                serde_json::Number::from_f64(n)
                    .map(SentAmount::Number)
                    .ok_or_else(|| E::custom("not a finite number"))
            }
        }
        deserializer.deserialize_any(AmountVisitor)
    }
}

/// A transaction's fields as sent, each present or not.
struct Fields<'a> {
    id: Option<&'a str>,
    user_id: Option<&'a str>,
    amount: Option<&'a SentAmount<'a>>,
    currency: Option<&'a str>,
    txn_date: Option<&'a str>,
    status: Option<&'a str>,
}

/// Checks a transaction's fields and fills in the defaults.
fn check(fields: Fields<'_>, now: OffsetDateTime) -> Result<NewTransaction, ApiError> {
    let id = fields
        .id
        .map(|text| {
            text.parse::<TransactionId>().map_err(|e| {
                ApiError::invalid_field("id", format!("`{}` is not a UUID: {e}", echo(text)))
            })
        })
        .transpose()?;
    let user_id = fields.user_id.ok_or(ApiError::MissingField("user_id"))?;
    let user_id = user_id.parse::<UserId>().map_err(|e| {
        ApiError::invalid_field("user_id", format!("`{}` is not a UUID: {e}", echo(user_id)))
    })?;
    let amount = parse_amount(fields.amount)?;
    let currency = match fields.currency {
        None => Currency::INR,
        Some(text) => text
            .parse::<Currency>()
            .map_err(|e| ApiError::invalid_field("currency", quoting(&e, text)))?,
    };
    let status = match fields.status {
        None => Status::PAID,
        Some(text) => text
            .parse::<Status>()
            .map_err(|e| ApiError::invalid_field("status", quoting(&e, text)))?,
    };
    let txn_date = match fields.txn_date {
        None => now,
        Some(text) => {
            let at = parse_instant(text).map_err(|e| ApiError::invalid_field("txn_date", e))?;
            let latest = now + time::Duration::days(1);
            if at < datetime!(1970-01-01 0:00 UTC) || at > latest {
                return Err(ApiError::invalid_field(
                    "txn_date",
                    format!("`{}` is outside 1970-01-01 to a day from now", echo(text)),
                ));
            }
            at
        }
    };
    // The id is fixed here, at the edge, so that every answer can name it.
    let (id, id_origin) = match id {
        Some(id) => (id, IdOrigin::Client),
        None => (NewTransaction::generated_id(), IdOrigin::Generated),
    };
    Ok(NewTransaction {
        id,
        id_origin,
        user_id,
        amount,
        currency,
        txn_date,
        status,
        feed: None,
    })
}

fn optional_text<'a>(
    object: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, ApiError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(ApiError::invalid_field(
            name,
            format!("`{}` is not a string", echo(&other.to_string())),
        )),
    }
}

fn parse_amount(sent: Option<&SentAmount<'_>>) -> Result<Amount, ApiError> {
    let number;
    let text: &str = match sent {
        None => return Err(ApiError::MissingField("amount")),
        Some(SentAmount::Text(text)) => text,
        Some(SentAmount::Number(n)) => {
            number = n.to_string();
            &number
        }
    };
    let amount = text
        .trim()
        .parse::<Amount>()
        .map_err(|e| ApiError::invalid_field("amount", quoting(&e, text.trim())))?;
    if amount < Amount::ZERO {
        return Err(ApiError::invalid_field(
            "amount",
            format!("`{}` is negative; amounts are zero or more", echo(text)),
        ));
    }
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    /// The answer of the plain reading when it takes `body`, and of the
    /// general one, as comparable text.
    fn both_readings(body: &str) -> (Option<String>, String) {
        let now = datetime!(2026-12-01 12:00 UTC);
        let show = |result: Result<NewTransaction, ApiError>| match result {
            // Each reading generates an id of its own for a transaction sent
            // without one.
            Ok(mut transaction) if transaction.id_origin == IdOrigin::Generated => {
                transaction.id = TransactionId(uuid::Uuid::nil());
                format!("{transaction:?}")
            }
            Ok(transaction) => format!("{transaction:?}"),
            Err(error) => format!("{}: {error}", error.code()),
        };
        let plain = serde_json::from_str::<Object<SentTransaction<'_>>>(body)
            .ok()
            .map(|Object(sent)| show(check(sent.fields(), now)));
        let general = match strict_value(body) {
            Ok(value) => show(parse_transaction(&value, now)),
            Err(error) => format!("invalid_body: {error}"),
        };
        (plain, general)
    }

    #[test]
    fn the_plain_reading_answers_exactly_as_the_general_one_wherever_it_applies() {
        let user = r#""user_id":"0f8b6e4a-3c2d-4b1a-9e8f-7d6c5b4a3f2e""#;
        let cases = [
            format!(r#"{{{user},"amount":"271.62"}}"#),
            format!(r#"{{{user},"amount":" 271.6 "}}"#),
            format!(r#"{{{user},"amount":271.62}}"#),
            format!(r#"{{{user},"amount":27162}}"#),
            format!(r#"{{{user},"amount":-3}}"#),
            format!(r#"{{{user},"amount":1e3}}"#),
            format!(r#"{{{user},"amount":1.4e-45}}"#),
            format!(r#"{{{user},"amount":"1.005"}}"#),
            format!(r#"{{{user},"amount":"-1"}}"#),
            format!(r#"{{{user},"amount":null}}"#),
            format!(r#"{{{user}}}"#),
            r#"{"amount":"5"}"#.to_owned(),
            r#"{"user_id":"not-a-uuid","amount":"5"}"#.to_owned(),
            r#"{"user_id":"0f8b6e4a-3c2d-4b1a-9e8f-7d6c5b4a3f2\u0065","amount":"5"}"#.to_owned(),
            format!(
                r#"{{"id":"018f2b6e-0000-7000-8000-000000000001",{user},"amount":"5","currency":"USD","status":"failed","txn_date":"2026-11-30T10:00:00+05:30"}}"#
            ),
            format!(r#"{{{user},"amount":"5","txn_date":"2030-01-01"}}"#),
            format!(r#"{{{user},"amount":"5","currency":"rupees"}}"#),
            format!(r#"{{{user},"amount":"5","status":null,"currency":null,"id":null}}"#),
            format!(r#"{{{user},"amount":"5","id":""}}"#),
            format!(r#"{{{user},"amount":"5","amount":"6"}}"#),
            format!(r#"{{{user},"amount":"5","extra":1}}"#),
            format!(r#"{{{user},"amount":true}}"#),
            format!(r#"{{{user},"amount":"5","status":7}}"#),
            "[1]".to_owned(),
            r#"[null,"0f8b6e4a-3c2d-4b1a-9e8f-7d6c5b4a3f2e","7.77"]"#.to_owned(),
        ];
        let mut plain_read = 0;
        for body in &cases {
            let (plain, general) = both_readings(body);
            if let Some(plain) = plain {
                plain_read += 1;
                assert_eq!(plain, general, "{body}");
            }
        }
        // The plain reading must take the ordinary bodies, or it would never
        // save anything; the malformed ones are left to the general reading.
        assert_eq!(plain_read, cases.len() - 6);
    }

    #[test]
    fn a_batch_is_read_plainly_only_when_every_item_is_plain() {
        let item = r#"{"user_id":"0f8b6e4a-3c2d-4b1a-9e8f-7d6c5b4a3f2e","amount":"5"}"#;
        assert_eq!(
            sent_batch(&format!("[{item},{item}]")).map(|b| b.len()),
            Some(2)
        );
        assert_eq!(
            sent_batch(&format!(r#" {{"transactions":[{item}]}}"#)).map(|b| b.len()),
            Some(1)
        );
        assert!(sent_batch(&format!(r#"[{item},{{"amount":[1]}}]"#)).is_none());
        assert!(sent_batch(&format!(r#"{{"transactions":[{item}],"more":1}}"#)).is_none());
        assert!(sent_batch(r#"{"items":[]}"#).is_none());
    }
}
