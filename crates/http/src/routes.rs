//! Route registration and the cross-origin policy.

use actix_cors::Cors;
use actix_web::http::{Method, header};
use actix_web::{HttpResponse, ResponseError, web};

use crate::config::HttpConfig;
use crate::error::ApiError;
use crate::sse;
use crate::state::AppState;

mod health;
mod ingest;
mod transactions;
mod users;

/// Registers every route, the shared state, and the JSON error handlers for
/// malformed query strings. Pair it with [`not_found`] as the app's default
/// service and wrap the app in [`cors`].
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) + Clone {
    move |config: &mut web::ServiceConfig| {
        config
            .app_data(web::Data::new(state))
            .app_data(
                web::QueryConfig::default().error_handler(|error, _request| {
                    ApiError::MalformedQuery(error.to_string()).into()
                }),
            )
            .configure(crate::openapi::configure)
            .service(read_route("/health", health::health))
            .service(read_route("/users", users::list))
            .service(
                web::resource("/transactions")
                    .app_data(json_config(ingest::MAX_SINGLE_BYTES))
                    .route(web::get().to(transactions::history))
                    .route(web::post().to(ingest::create))
                    .default_service(method_not_allowed("GET, POST")),
            )
            .service(
                web::resource("/transactions/batch")
                    .app_data(json_config(ingest::MAX_BATCH_BYTES))
                    .route(web::post().to(ingest::create_batch))
                    .default_service(method_not_allowed("POST")),
            )
            .service(read_route("/sse/transactions", sse::all_stream))
            .service(read_route("/sse/transactions/{user_id}", sse::user_stream));
    }
}

/// JSON bodies up to `limit` bytes, any content type (curl users forget
/// it), with errors in the API's shape: 413 past the limit, 422 otherwise.
fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .content_type_required(false)
        .error_handler(|error, _request| {
            use actix_web::error::JsonPayloadError;
            match error {
                JsonPayloadError::Overflow { limit }
                | JsonPayloadError::OverflowKnownLength { limit, .. } => {
                    ApiError::PayloadTooLarge { limit }.into()
                }
                other => ApiError::InvalidBody(other.to_string()).into(),
            }
        })
}

/// A `GET` resource that answers other methods with a JSON 405.
pub(crate) fn read_route<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler))
        .default_service(method_not_allowed("GET"))
}

/// A JSON 405 that names the methods the path takes in `Allow`, as RFC 9110
/// requires of a 405.
fn method_not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move {
        let mut response = ApiError::MethodNotAllowed.error_response();
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
        response
    })
}

/// The app's default service: a JSON 404 for unknown paths.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// The cross-origin policy: the configured origins (`"*"` for any) may read
/// and post; no credentials (an API key travels in a header).
pub fn cors(config: &HttpConfig) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::HEAD, Method::POST, Method::OPTIONS])
        .allow_any_header()
        .max_age(3600);
    for origin in &config.cors_allowed_origins {
        cors = if origin == "*" {
            cors.allow_any_origin().send_wildcard()
        } else {
            cors.allowed_origin(origin)
        };
    }
    cors
}

// The handlers' OpenAPI descriptions, gathered by `crate::openapi`.
pub(crate) use self::{
    health::__path_health, ingest::__path_create, ingest::__path_create_batch,
    transactions::__path_history, users::__path_list,
};
