//! The body of a write: read whole, unencoded, within a size limit and a
//! time limit, with every refusal in the API's error shape.
//!
//! - `Content-Encoding` other than `identity` answers 415
//!   `unsupported_encoding`: the server decodes nothing, and reading a
//!   compressed body as plain JSON would only give a misleading error (or,
//!   for an encoding label on a plain body, accept what the client did not
//!   mean).
//! - A body over the route's [`BodyLimit`] answers 413, before it is read
//!   when `Content-Length` says so.
//! - A body that does not arrive in full within `http.body_timeout_ms` (a
//!   client that sent less than its `Content-Length`, or stalls) answers 408
//!   `body_timeout`: the client's fault, not the server's. The route's time
//!   limit ([`time_limit`](crate::time_limit)) answers the same while a body
//!   is still being read when it passes first.

use std::future::{Ready, ready};
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut, Data};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use futures_util::future::{Either, LocalBoxFuture};

use crate::api::error::{ApiError, echo};
use crate::state::AppState;

/// The most bytes a route's body may have; set per resource with
/// `app_data`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub(crate) usize);

/// A write route's whole body.
pub(crate) struct Body(Bytes);

impl Body {
    /// The body as text.
    ///
    /// # Errors
    /// [`ApiError::InvalidBody`] when it is not UTF-8 (so not JSON).
    pub(crate) fn text(&self) -> Result<&str, ApiError> {
        std::str::from_utf8(&self.0)
            .map_err(|error| ApiError::InvalidBody(format!("the body is not UTF-8 JSON: {error}")))
    }
}

/// Present in a request's extensions while its body is being read, so the
/// route's time limit can tell a client that stalls from a server that is
/// slow.
pub(crate) struct ReadingBody;

/// Whether `request`'s body was still being read.
pub(crate) fn still_reading(request: &HttpRequest) -> bool {
    request.extensions().contains::<ReadingBody>()
}

impl FromRequest for Body {
    type Error = ApiError;
    type Future =
        Either<Ready<Result<Body, ApiError>>, LocalBoxFuture<'static, Result<Body, ApiError>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = request
            .app_data::<BodyLimit>()
            .map_or(64 * 1024, |limit| limit.0);
        let deadline = request
            .app_data::<Data<AppState>>()
            .map(|state| state.body_timeout)
            .filter(|deadline| !deadline.is_zero());
        if let Err(error) = check_head(request, limit) {
            return Either::Left(ready(Err(error)));
        }
        let mut payload = payload.take();
        let request = request.clone();
        Either::Right(Box::pin(async move {
            request.extensions_mut().insert(ReadingBody);
            let read = async {
                let mut body = BytesMut::new();
                while let Some(chunk) = payload.next().await {
                    let chunk = chunk.map_err(|error| {
                        ApiError::InvalidBody(format!("the body could not be read: {error}"))
                    })?;
                    if body.len() + chunk.len() > limit {
                        return Err(ApiError::PayloadTooLarge { limit });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(Body(body.freeze()))
            };
            let outcome = match deadline {
                Some(deadline) => within(deadline, read).await,
                None => read.await,
            };
            request.extensions_mut().remove::<ReadingBody>();
            outcome
        }))
    }
}

async fn within(
    deadline: Duration,
    read: impl Future<Output = Result<Body, ApiError>>,
) -> Result<Body, ApiError> {
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or(Err(ApiError::BodyTimeout(deadline)))
}

/// What the headers alone say is wrong with the body.
fn check_head(request: &HttpRequest, limit: usize) -> Result<(), ApiError> {
    for value in request.headers().get_all(header::CONTENT_ENCODING) {
        let text = String::from_utf8_lossy(value.as_bytes());
        if text
            .split(',')
            .any(|coding| !coding.trim().eq_ignore_ascii_case("identity"))
        {
            return Err(ApiError::UnsupportedEncoding(echo(text.trim())));
        }
    }
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if length.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(())
}
