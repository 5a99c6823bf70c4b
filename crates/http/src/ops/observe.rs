//! What happens around every request: a request id, one log line, metrics,
//! and a time limit for the routes that are not streams.
//!
//! The request id is the client's `X-Request-Id` when it sent a usable one
//! (up to 128 visible ASCII characters), else a fresh UUID; either way it
//! comes back in the response's `X-Request-Id` and is a field of every log
//! line written while the request is handled. Logged: method, matched
//! route, path (never the query string or the body), status, latency and
//! the request id.

use std::time::Instant;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{Error, HttpMessage, ResponseError};
use tracing::Instrument;

use crate::api::error::ApiError;
use crate::state::AppState;

/// The request id header, in and out.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The app-wide middleware: request id, metrics and the log line. Install
/// it outermost with `actix_web::middleware::from_fn(observe)`.
///
/// # Errors
/// What an inner middleware fails with (not our handlers: their errors are
/// responses by now), after it is counted and logged; actix answers it.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .filter(|value| usable_request_id(value.as_bytes()))
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .expect("a UUID is a valid header value")
        });
    let state = request.app_data::<Data<AppState>>().cloned();
    let method = method_label(request.method().as_str());
    let path = request.path().to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %String::from_utf8_lossy(request_id.as_bytes())
    );

    let outcome = next
        .call(request)
        .instrument(span.clone())
        .await
        .map(in_our_error_shape);
    let elapsed = started.elapsed();
    let (status, route, dependency) = match &outcome {
        Ok(response) => (
            response.status(),
            response.request().match_pattern(),
            response
                .response()
                .error()
                .and_then(|error| error.as_error::<ApiError>())
                .and_then(ApiError::dependency),
        ),
        Err(error) => (error.as_response_error().status_code(), None, None),
    };
    let route = route.unwrap_or_else(|| "unmatched".to_owned());
    if let Some(state) = &state {
        state
            .metrics()
            .observe_request(method, &route, status.as_str(), elapsed);
        if let Some(dependency) = dependency {
            state.metrics().dependency_error(dependency);
        }
    }
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            route = %route,
            path = %path,
            status = status.as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    });
    outcome.map(|mut response| {
        response.headers_mut().insert(REQUEST_ID, request_id);
        response
    })
}

/// `response`, or, when it is actix-cors's refusal of a preflight (plain
/// text), the same refusal in the API's JSON error shape.
fn in_our_error_shape<B>(response: ServiceResponse<B>) -> ServiceResponse<EitherBody<B>> {
    let refusal = response
        .response()
        .error()
        .and_then(|error| error.as_error::<actix_cors::CorsError>())
        .map(ApiError::from);
    match refusal {
        None => response.map_into_left_body(),
        Some(error) => {
            let (request, _) = response.into_parts();
            ServiceResponse::new(request, error.error_response()).map_into_right_body()
        }
    }
}

/// The time limit of a non-streaming route: past `http.request_timeout_ms`
/// the client gets a 503 `timeout`, or a 408 `body_timeout` when it had not
/// yet sent the whole body of a write. Install it on routed resources only
/// (`Resource::wrap`), where the request may be shared.
///
/// The handler stops when the limit passes, but work it handed off goes on:
/// ingest runs in tasks of its own, so a transaction is stored completely
/// or not at all, and posting it again with its id is safe.
///
/// # Errors
/// What the inner service fails with.
pub async fn time_limit(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let limit = request
        .app_data::<Data<AppState>>()
        .map(|state| state.request_timeout)
        .filter(|limit| !limit.is_zero());
    let Some(limit) = limit else {
        return next
            .call(request)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let http_request = request.request().clone();
    request
        .extensions_mut()
        .insert(TimeLimit(tokio::time::Instant::now() + limit));
    match tokio::time::timeout(limit, next.call(request)).await {
        Ok(outcome) => outcome.map(ServiceResponse::map_into_boxed_body),
        Err(_) => {
            // A client that has not sent its whole body yet is the one to
            // blame, not the server.
            let error = if crate::api::body::still_reading(&http_request) {
                ApiError::BodyTimeout(limit)
            } else {
                ApiError::Timeout(limit)
            };
            Ok(ServiceResponse::new(http_request, error.error_response()))
        }
    }
}

/// When a request's time limit passes, in its extensions while
/// [`time_limit`] applies one: a route that can say more than the generic
/// `timeout` (the ingest routes name the ids posted) answers before it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeLimit(pub(crate) tokio::time::Instant);

/// Known methods as themselves, anything else as `OTHER`, so a client
/// cannot add label values.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

/// An incoming id is kept when it is short, visible ASCII: enough for any
/// tracing scheme, and safe to log and echo.
fn usable_request_id(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= 128 && value.iter().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_visible_ascii_request_ids_are_kept() {
        assert!(usable_request_id(b"abc-123"));
        assert!(usable_request_id(&[b'a'; 128]));
        assert!(!usable_request_id(&[b'a'; 129]));
        assert!(!usable_request_id(b""));
        assert!(!usable_request_id(b"has space"));
        assert!(!usable_request_id("é".as_bytes()));
    }
}
