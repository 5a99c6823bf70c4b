//! The routing table: every route, its method guards and limits, and the
//! cross-origin policy.

use actix_cors::Cors;
use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};

use crate::api::body::BodyLimit;
use crate::api::error::ApiError;
use crate::config::HttpConfig;
use crate::ops::observe::time_limit;
use crate::sse;
use crate::state::AppState;

use super::{history, ingest, users};
use crate::ops::{health, metrics_route};

/// Registers every route, the shared state, and the JSON error handlers for
/// malformed query strings. Pair it with [`not_found`] as the app's default
/// service, and wrap the app in [`cors`] and then
/// `actix_web::middleware::from_fn(`[`observe`](crate::observe)`)`
/// (outermost).
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) + Clone {
    move |config: &mut web::ServiceConfig| {
        config
            .app_data(web::Data::new(state))
            .app_data(
                web::QueryConfig::default().error_handler(|error, _request| {
                    ApiError::MalformedQuery(error.to_string()).into()
                }),
            )
            .configure(crate::api::openapi::configure)
            .service(read_route("/health", health::health))
            .service(read_route("/ready", health::ready))
            .service(read_route("/metrics", metrics_route::metrics))
            .service(read_route("/users", users::list))
            .service(
                web::resource("/transactions")
                    .app_data(BodyLimit(ingest::MAX_SINGLE_BYTES))
                    .wrap(from_fn(time_limit))
                    .route(web::get().to(history::history))
                    .route(web::head().to(history::history))
                    .route(web::post().to(ingest::create))
                    .default_service(web::to(|| not_allowed("GET, HEAD, POST"))),
            )
            .service(
                web::resource("/transactions/batch")
                    .app_data(BodyLimit(ingest::MAX_BATCH_BYTES))
                    .wrap(from_fn(time_limit))
                    .route(web::post().to(ingest::create_batch))
                    .default_service(web::to(|| not_allowed("POST"))),
            )
            .service(stream_route("/sse/transactions", sse::all_stream))
            .service(stream_route(
                "/sse/transactions/{user_id}",
                sse::user_stream,
            ))
            .configure(crate::dashboard::register);
    }
}

/// A `GET` (and `HEAD`) resource under the request time limit, answering
/// other methods with a JSON 405.
pub(crate) fn read_route<F, Args>(
    path: &str,
    handler: F,
) -> actix_web::Resource<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<actix_web::body::BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
>
where
    F: actix_web::Handler<Args> + Clone,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .wrap(from_fn(time_limit))
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
        .default_service(web::to(|| not_allowed("GET, HEAD")))
}

/// A `GET` stream: no time limit, no `HEAD` (it would hold the connection
/// open for nothing), other methods a JSON 405.
fn stream_route<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler))
        .default_service(web::to(|| not_allowed("GET")))
}

async fn not_allowed(allow: &'static str) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed { allow })
}

/// The app's default service: a JSON 404 for unknown paths.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// The cross-origin policy: pages on `cors_allowed_origins` may read, pages
/// on `cors_write_origins` may also post (`"*"` allows any origin); no
/// credentials (an API key travels in a header). A write from any other
/// origin gets no CORS approval, and the write routes refuse it with 403
/// even when the browser sends it without asking first.
pub fn cors(config: &HttpConfig) -> Cors {
    let read = origin_list(&config.cors_allowed_origins);
    let write = origin_list(&config.cors_write_origins);
    Cors::default()
        .allowed_origin_fn(move |origin, head| {
            let writing = head.method == Method::POST
                || (head.method == Method::OPTIONS
                    && head
                        .headers()
                        .get("Access-Control-Request-Method")
                        .is_some_and(|method| method.as_bytes() == b"POST"));
            let allowed = if writing { &write } else { &read };
            allowed
                .iter()
                .any(|o| o == "*" || o.as_bytes().eq_ignore_ascii_case(origin.as_bytes()))
        })
        .allowed_methods([Method::GET, Method::HEAD, Method::POST, Method::OPTIONS])
        .allow_any_header()
        .expose_headers(["X-Request-Id"])
        .max_age(3600)
}

fn origin_list(origins: &[String]) -> Vec<String> {
    origins
        .iter()
        .map(|origin| origin.trim().to_owned())
        .filter(|origin| !origin.is_empty())
        .collect()
}

// The handlers' OpenAPI descriptions, gathered by `crate::api::openapi`.
pub(crate) use self::{
    health::__path_health, health::__path_ready, history::__path_history, ingest::__path_create,
    ingest::__path_create_batch, metrics_route::__path_metrics, users::__path_list,
};
