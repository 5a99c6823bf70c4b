//! The API's one error type and its mapping to HTTP responses.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use txwatch_storage::StorageError;

use crate::api::cursor::CursorError;

/// Everything a route can fail with. The `ResponseError` impl below is the
/// only place that decides statuses and error bodies.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A required query parameter is absent.
    #[error("query parameter `{0}` is required")]
    MissingParameter(&'static str),
    /// A parameter is present but unusable.
    #[error("query parameter `{name}` is invalid: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// The query string itself could not be read.
    #[error("the query string is malformed: {0}")]
    MalformedQuery(String),
    /// A pagination cursor that this server did not issue for this query.
    #[error("query parameter `cursor` is invalid: {0}; omit it to start from the first page")]
    InvalidCursor(#[from] CursorError),
    /// A range whose lower bound lies above its upper bound.
    #[error("`{low}` ({low_value}) is after `{high}` ({high_value})")]
    InvalidRange {
        /// The lower bound's parameter.
        low: &'static str,
        /// Its value.
        low_value: String,
        /// The upper bound's parameter.
        high: &'static str,
        /// Its value.
        high_value: String,
    },
    /// A required field of a JSON body is absent.
    #[error("field `{0}` is required")]
    MissingField(&'static str),
    /// A field of a JSON body is present but unusable.
    #[error("field `{name}` is invalid: {reason}")]
    InvalidField {
        /// The field.
        name: &'static str,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// The body is not the JSON the route takes.
    #[error("the request body is invalid: {0}")]
    InvalidBody(String),
    /// The body is compressed or otherwise encoded; the server reads only
    /// plain bodies.
    #[error("content encoding `{0}` is not supported: send the body unencoded (identity)")]
    UnsupportedEncoding(String),
    /// The body did not arrive in full in time: the client sent less than
    /// it announced, or stalled.
    #[error("the request body did not arrive in full within {} ms; send all of it, as long as its Content-Length says", .0.as_millis())]
    BodyTimeout(std::time::Duration),
    /// The body is larger than the route accepts.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The most bytes accepted.
        limit: usize,
    },
    /// A write route was called without the configured API key.
    #[error("a valid API key is required: send it as `X-API-Key` or `Authorization: Bearer`")]
    Unauthorized,
    /// The same transaction id is being stored by another request right now.
    #[error("transaction {0} is being processed by another request; retry shortly")]
    InProgress(uuid::Uuid),
    /// A `Last-Event-ID` header that no stream of ours sent.
    #[error("header `Last-Event-ID` is invalid: {0}; omit it to start with live events")]
    InvalidEventId(String),
    /// No route has this path.
    #[error("no route matches this path")]
    NotFound,
    /// The path exists but not for this method.
    #[error("method not allowed on this path; it takes {allow}")]
    MethodNotAllowed {
        /// The methods it takes, as sent in `Allow`.
        allow: &'static str,
    },
    /// A dependency is down; retrying later may succeed. From the ingest
    /// pipeline it also means that nothing was stored.
    #[error("{service} is unavailable; retry shortly")]
    Unavailable {
        /// Which dependency.
        service: &'static str,
        /// The underlying failure, logged but never sent.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Transactions were sent to Postgres, or may have been, and no answer
    /// came: each is stored once or not at all, and which is unknown.
    #[error(
        "whether the transactions were stored is unknown (they may have reached the database, \
         and no answer came in time); post them again with the same ids, which is safe: \
         those stored answer 200 with the stored transaction"
    )]
    OutcomeUnknown(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The request's deadline passed before storing began, and the
    /// transactions were withdrawn: they will never be stored.
    #[error(
        "the transactions could not be stored in time (Postgres or Redis is slow or \
         unreachable); nothing is stored; retry shortly"
    )]
    NotStoredInTime,
    /// An ingest failure, answered with the ids of the transactions it
    /// concerns (those the server generated too), so that the client can
    /// post them again under the same ids, or look them up.
    #[error("{}", ingest_message(error))]
    Ingest {
        /// What failed.
        error: Box<ApiError>,
        /// The ids of the transactions posted.
        ids: IngestIds,
    },
    /// A non-streaming request ran past the configured time limit. What it
    /// was doing may still complete: posting the same id again is safe.
    #[error("the request took longer than {} ms; retry shortly (re-posting a transaction with its id is safe)", .0.as_millis())]
    Timeout(std::time::Duration),
    /// This process holds as many SSE streams as it is configured to.
    #[error(
        "this server holds its maximum of {limit} live streams; retry shortly or use another server"
    )]
    TooManyStreams {
        /// The configured maximum.
        limit: usize,
    },
    /// A write from a browser page on an origin the write routes do not
    /// accept.
    #[error(
        "writes from origin `{0}` are not allowed; configure http.cors_write_origins to allow it"
    )]
    OriginNotAllowed(String),
    /// A write without an API key for a host name the server does not
    /// know: what a DNS-rebinding page sends.
    #[error(
        "writes for host `{0}` are not taken without an API key; list the name in http.allowed_hosts or set http.api_key"
    )]
    HostNotAllowed(String),
    /// A browser's CORS preflight that the policy does not approve.
    #[error("this cross-origin request is not allowed: {0}")]
    PreflightRefused(&'static str),
    /// A CORS preflight that is malformed.
    #[error("the CORS preflight is malformed: {0}")]
    InvalidPreflight(String),
    /// A failure on our side; the details are logged, not sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The ids of the transactions an ingest request posted, as its error
/// answers name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestIds {
    /// `POST /transactions`: `"id"`.
    One(uuid::Uuid),
    /// `POST /transactions/batch`: `"ids"`, one per item in order; `null`
    /// for an item rejected as invalid.
    Batch(Vec<Option<uuid::Uuid>>),
}

/// The message of an ingest failure: a dependency being down means here
/// that nothing was stored, and the answer says so.
fn ingest_message(error: &ApiError) -> String {
    match error {
        ApiError::Unavailable { service, .. } => format!(
            "{service} is unavailable; nothing is stored; retry shortly \
             (posting again with the same ids is safe)"
        ),
        other => other.to_string(),
    }
}

impl ApiError {
    /// This error with the ids of the transactions an ingest request
    /// posted, when it is one whose answer must name them: a failure to
    /// store (`service_unavailable`, `outcome_unknown`). Other errors are
    /// returned as they are.
    pub fn with_ids(self, ids: IngestIds) -> ApiError {
        match self {
            ApiError::Unavailable { .. }
            | ApiError::OutcomeUnknown(_)
            | ApiError::NotStoredInTime => ApiError::Ingest {
                error: Box::new(self),
                ids,
            },
            other => other,
        }
    }

    /// The stable, machine-readable code sent as `"error"`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MissingParameter(_) => "missing_parameter",
            ApiError::InvalidParameter { .. } => "invalid_parameter",
            ApiError::MalformedQuery(_) => "malformed_query",
            ApiError::InvalidCursor(_) => "invalid_cursor",
            ApiError::InvalidRange { .. } => "invalid_range",
            ApiError::MissingField(_) => "missing_field",
            ApiError::InvalidField { .. } => "invalid_field",
            ApiError::InvalidBody(_) => "invalid_body",
            ApiError::UnsupportedEncoding(_) => "unsupported_encoding",
            ApiError::BodyTimeout(_) => "body_timeout",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Unauthorized => "unauthorized",
            ApiError::InProgress(_) => "in_progress",
            ApiError::InvalidEventId(_) => "invalid_event_id",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Unavailable { .. } | ApiError::NotStoredInTime => "service_unavailable",
            ApiError::OutcomeUnknown(_) => "outcome_unknown",
            ApiError::Ingest { error, .. } => error.code(),
            ApiError::Timeout(_) => "timeout",
            ApiError::TooManyStreams { .. } => "too_many_streams",
            ApiError::OriginNotAllowed(_) => "origin_not_allowed",
            ApiError::HostNotAllowed(_) => "host_not_allowed",
            ApiError::PreflightRefused(_) => "origin_not_allowed",
            ApiError::InvalidPreflight(_) => "invalid_preflight",
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// Which dependency could not be reached (`postgres` or `redis`), for
    /// metrics; `None` for every other error.
    pub fn dependency(&self) -> Option<&'static str> {
        match self {
            ApiError::Unavailable { service: REDIS, .. } => Some("redis"),
            ApiError::Unavailable {
                service: DATABASE, ..
            }
            | ApiError::OutcomeUnknown(_) => Some("postgres"),
            ApiError::Ingest { error, .. } => error.dependency(),
            _ => None,
        }
    }

    /// Shorthand for [`ApiError::InvalidField`].
    pub fn invalid_field(name: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError::InvalidField {
            name,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`ApiError::InvalidParameter`].
    pub fn invalid(name: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError::InvalidParameter {
            name,
            reason: reason.into(),
        }
    }
}

/// How [`ApiError::Unavailable`] names Redis.
const REDIS: &str = "redis";
/// How [`ApiError::Unavailable`] names Postgres.
const DATABASE: &str = "the database";

impl From<txwatch_cache::CacheError> for ApiError {
    fn from(error: txwatch_cache::CacheError) -> ApiError {
        if error.is_unavailable() {
            ApiError::Unavailable {
                service: REDIS,
                source: Box::new(error),
            }
        } else {
            ApiError::Internal(Box::new(error))
        }
    }
}

impl From<&actix_cors::CorsError> for ApiError {
    fn from(error: &actix_cors::CorsError) -> ApiError {
        use actix_cors::CorsError;
        match error {
            CorsError::OriginNotAllowed => ApiError::PreflightRefused(
                "pages on this origin may not make it (see http.cors_allowed_origins for reads \
                 and http.cors_write_origins for writes)",
            ),
            CorsError::MethodNotAllowed => {
                ApiError::PreflightRefused("the method is not one this API takes")
            }
            CorsError::HeadersNotAllowed => {
                ApiError::PreflightRefused("a requested header is not allowed")
            }
            other => ApiError::InvalidPreflight(other.to_string()),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> ApiError {
        if error.is_outcome_unknown() {
            ApiError::OutcomeUnknown(Box::new(error))
        } else if error.is_unavailable() {
            ApiError::Unavailable {
                service: DATABASE,
                source: Box::new(error),
            }
        } else {
            ApiError::Internal(Box::new(error))
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<uuid::Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ids: Option<&'a [Option<uuid::Uuid>]>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MissingParameter(_)
            | ApiError::InvalidParameter { .. }
            | ApiError::MalformedQuery(_)
            | ApiError::InvalidCursor(_)
            | ApiError::InvalidRange { .. }
            | ApiError::MissingField(_)
            | ApiError::InvalidField { .. }
            | ApiError::InvalidBody(_)
            | ApiError::InvalidEventId(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::InProgress(_) => StatusCode::CONFLICT,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable { .. }
            | ApiError::OutcomeUnknown(_)
            | ApiError::NotStoredInTime
            | ApiError::Timeout(_)
            | ApiError::TooManyStreams { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::OriginNotAllowed(_)
            | ApiError::HostNotAllowed(_)
            | ApiError::PreflightRefused(_) => StatusCode::FORBIDDEN,
            ApiError::InvalidPreflight(_) => StatusCode::BAD_REQUEST,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Ingest { error, .. } => error.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (error, ids) = match self {
            ApiError::Ingest { error, ids } => (&**error, Some(ids)),
            other => (other, None),
        };
        let status = error.status_code();
        if status.is_server_error() {
            tracing::error!(error = %error_chain(error), code = error.code(), "request failed");
        }
        let mut response = HttpResponse::build(status);
        if matches!(
            error,
            ApiError::Unavailable { .. }
                | ApiError::OutcomeUnknown(_)
                | ApiError::NotStoredInTime
                | ApiError::InProgress(_)
                | ApiError::Timeout(_)
                | ApiError::TooManyStreams { .. }
        ) {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        if let ApiError::MethodNotAllowed { allow } = error {
            response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
        }
        if let ApiError::Unauthorized = error {
            // RFC 9110: a 401 says how to authenticate.
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"txwatch\""),
            ));
        }
        response.json(ErrorBody {
            error: error.code(),
            message: capped(self.to_string()),
            id: match ids {
                Some(IngestIds::One(id)) => Some(*id),
                _ => None,
            },
            ids: match ids {
                Some(IngestIds::Batch(ids)) => Some(ids),
                _ => None,
            },
        })
    }
}

/// The most characters of a client's input quoted back in a message.
const ECHO_CHARS: usize = 64;
/// The most characters of a message, whatever it quotes: a safety net for
/// messages that quote what another library said about the input.
const MESSAGE_CHARS: usize = 1024;

/// `text`, a client's input, as an error message may quote it: whole when
/// short, else its start and its length, so a 20 KB value does not make a
/// 20 KB answer.
pub(crate) fn echo(text: &str) -> String {
    let mut chars = text.chars();
    let start: String = chars.by_ref().take(ECHO_CHARS).collect();
    if chars.next().is_none() {
        start
    } else {
        format!("{start}... ({} bytes)", text.len())
    }
}

/// `error`'s message, with the client's `input` in it quoted by [`echo`]:
/// for errors of other crates that quote what they were given in full.
pub(crate) fn quoting(error: &dyn std::fmt::Display, input: &str) -> String {
    let message = error.to_string();
    if input.chars().nth(ECHO_CHARS).is_none() {
        return message;
    }
    message.replacen(input, &echo(input), 1)
}

/// `message` cut at [`MESSAGE_CHARS`].
fn capped(message: String) -> String {
    match message.char_indices().nth(MESSAGE_CHARS) {
        None => message,
        Some((end, _)) => format!("{}... (cut)", &message[..end]),
    }
}

/// `error: cause: cause ...`, for logs and readiness reports.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_inputs_are_quoted_by_their_start_and_length() {
        assert_eq!(echo("2026-01-31"), "2026-01-31");
        let long = "é".repeat(1000);
        let quoted = echo(&long);
        assert!(quoted.starts_with(&"é".repeat(ECHO_CHARS)), "{quoted}");
        assert!(quoted.ends_with("... (2000 bytes)"), "{quoted}");
        let error = "`x` is not a number".replace('x', &long);
        let message = quoting(&error, &long);
        assert!(
            message.len() < 200 && message.ends_with("is not a number"),
            "{message}"
        );
        assert_eq!(
            capped("m".repeat(5000)).chars().count(),
            MESSAGE_CHARS + "... (cut)".len()
        );
    }
}
