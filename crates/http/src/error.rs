//! The API's one error type and its mapping to HTTP responses.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use txwatch_storage::StorageError;

use crate::cursor::CursorError;

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
    /// No route has this path.
    #[error("no route matches this path")]
    NotFound,
    /// The path exists but not for this method.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// A dependency is down; retrying later may succeed.
    #[error("{service} is unavailable; retry shortly")]
    Unavailable {
        /// Which dependency.
        service: &'static str,
        /// The underlying failure, logged but never sent.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A failure on our side; the details are logged, not sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// The stable, machine-readable code sent as `"error"`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MissingParameter(_) => "missing_parameter",
            ApiError::InvalidParameter { .. } => "invalid_parameter",
            ApiError::MalformedQuery(_) => "malformed_query",
            ApiError::InvalidCursor(_) => "invalid_cursor",
            ApiError::InvalidRange { .. } => "invalid_range",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Unavailable { .. } => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
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

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> ApiError {
        if error.is_unavailable() {
            ApiError::Unavailable {
                service: "the database",
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
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MissingParameter(_)
            | ApiError::InvalidParameter { .. }
            | ApiError::MalformedQuery(_)
            | ApiError::InvalidCursor(_)
            | ApiError::InvalidRange { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %error_chain(self), code = self.code(), "request failed");
        }
        let mut response = HttpResponse::build(status);
        if matches!(self, ApiError::Unavailable { .. }) {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        response.json(ErrorBody {
            error: self.code(),
            message: self.to_string(),
        })
    }
}

/// `error: cause: cause ...`, for logs.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
