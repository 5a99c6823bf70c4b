//! The OpenAPI 3.1 description of the HTTP API, generated from the code,
//! served as `GET /openapi.json`, and the Swagger UI that reads it at
//! `/docs`, served from the binary (its files are compiled in).
//!
//! The routes' own `#[utoipa::path]` attributes describe their parameters
//! and responses; this module gathers them into [`document`] and holds the
//! schemas they refer to. The JSON the server sends is written by
//! hand-tuned `Serialize` impls (see `dto.rs`), so the schemas are not
//! derived from those types: they are described here, on types that exist
//! only for the description. The API tests check every route's real
//! responses against this document, so the two cannot drift apart silently.
//!

use std::sync::{Arc, LazyLock};

use actix_web::HttpResponse;
use actix_web::http::header::{self, ContentType};
use actix_web::web::{self, Path};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{
    ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{KnownFormat, Ref, RefOr, Response};
use utoipa::{IntoParams, Modify, OpenApi, PartialSchema, ToResponse, ToSchema};
use utoipa_swagger_ui::Config;

use crate::api::error::ApiError;

/// Where the document is served.
const DOCUMENT_PATH: &str = "/openapi.json";
/// Where the Swagger UI is served; its files live under `/docs/`.
const DOCS_PATH: &str = "/docs";

/// The API's description, as served at `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "txwatch",
        description = "Real-time transaction anomaly detection: every transaction is scored \
                       against its user's recent history, stored with its verdict, and \
                       streamed live.\n\n\
                       Every error answers `{\"error\": \"<snake_case_code>\", \"message\": \
                       \"<what to fix>\"}` (schema `ErrorBody`). Besides the statuses listed \
                       for each operation, a path that no route has answers 404 \
                       (`not_found`), a method that a path does not take answers 405 \
                       (`method_not_allowed`), and a CORS preflight (`OPTIONS`) that the \
                       policy refuses answers 403 (`origin_not_allowed`) or, when malformed, \
                       400 (`invalid_preflight`), all in the same shape.",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(
        crate::api::routes::health,
        crate::api::routes::ready,
        crate::api::routes::metrics,
        crate::api::routes::list,
        crate::api::routes::history,
        crate::api::routes::create,
        crate::api::routes::create_batch,
        crate::sse::user_stream,
        crate::sse::all_stream,
        openapi_json,
        docs_redirect,
        docs_index,
        docs_file,
        crate::dashboard::index,
        crate::dashboard::asset,
    ),
    components(
        schemas(ErrorBody, ErrorCode, IngestError, BatchIngestError),
        responses(
            NotFound,
            MethodNotAllowed,
            Unauthorized,
            Forbidden,
            InProgress,
            PayloadTooLarge,
            UnsupportedEncoding,
            BodyTimeout,
            Unavailable,
            IngestUnavailable,
            BatchUnavailable,
            InternalError,
            EventStream,
        ),
    ),
    modifiers(&WriteSecurity),
    tags(
        (name = "transactions", description = "History, users and ingest."),
        (name = "live", description = "Server-Sent Event streams of stored transactions."),
        (name = "service", description = "Liveness and the API's own description."),
    ),
)]
struct ApiDoc;

/// The whole OpenAPI document of the routes [`configure`] and
/// [`crate::configure`] register.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as served, serialized once.
static DOCUMENT_JSON: LazyLock<Vec<u8>> = LazyLock::new(|| {
    serde_json::to_vec(&document()).expect("an OpenAPI document always serializes to JSON")
});

/// The Swagger UI's settings: it reads the document from [`DOCUMENT_PATH`].
static SWAGGER_CONFIG: LazyLock<Arc<Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        Config::new([DOCUMENT_PATH])
            .try_it_out_enabled(true)
            .display_request_duration(true),
    )
});

/// Registers `/openapi.json` and the Swagger UI at `/docs`, answering other
/// methods with the API's JSON 405.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .service(crate::api::routes::read_route(DOCUMENT_PATH, openapi_json))
        .service(crate::api::routes::read_route(DOCS_PATH, docs_redirect))
        .service(crate::api::routes::read_route("/docs/", docs_index))
        .service(crate::api::routes::read_route("/docs/{file}", docs_file));
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    operation_id = "openapi",
    summary = "This document",
    description = "The OpenAPI 3.1 description of every route, generated from the code.",
    responses((status = 200, description = "The OpenAPI document.", body = Object,
               content_type = "application/json")),
)]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(DOCUMENT_JSON.as_slice())
}

/// `GET /docs`: the UI's files are addressed relative to `/docs/`.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "service",
    operation_id = "docs_redirect",
    summary = "The interactive documentation",
    description = "Redirects to `/docs/`, the Swagger UI, whose files are addressed relative \
                   to it.",
    responses((status = 308, description = "The Swagger UI is at `/docs/`.",
               headers(("Location" = String, description = "`/docs/`")))),
)]
async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// `GET /docs/`: the Swagger UI's page.
#[utoipa::path(
    get,
    path = "/docs/",
    tag = "service",
    operation_id = "docs",
    summary = "The interactive documentation (Swagger UI)",
    description = "An HTML page that reads `/openapi.json` and lets you try every route. It \
                   needs no internet access: its files are served from the binary.",
    responses((status = 200, description = "The Swagger UI page.", body = String,
               content_type = "text/html")),
)]
async fn docs_index() -> Result<HttpResponse, ApiError> {
    swagger_file("index.html")
}

/// `GET /docs/{file}`: the Swagger UI's scripts, styles and images.
#[utoipa::path(
    get,
    path = "/docs/{file}",
    tag = "service",
    operation_id = "docs_file",
    summary = "A file of the Swagger UI",
    description = "The scripts, style sheets, images and source maps (JSON) that the Swagger \
                   UI page loads.",
    params(("file" = String, Path, example = "swagger-ui.css",
            description = "The file's name, such as `swagger-ui.css`.")),
    responses(
        (status = 200, description = "The file.", content(
            (String = "text/html"),
            (String = "text/css"),
            (String = "text/javascript"),
            (String = "image/png"),
            (Object = "application/json"),
        )),
        (status = 404, response = NotFound),
    ),
)]
async fn docs_file(file: Path<String>) -> Result<HttpResponse, ApiError> {
    swagger_file(&file)
}

fn swagger_file(name: &str) -> Result<HttpResponse, ApiError> {
    let file = utoipa_swagger_ui::serve(name, SWAGGER_CONFIG.clone())
        .map_err(|error| ApiError::Internal(error.to_string().into()))?
        .ok_or(ApiError::NotFound)?;
    // Source maps are JSON; the file-name guess knows no `.map`.
    let content_type = if name.ends_with(".map") {
        mime_json()
    } else {
        file.content_type
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(file.bytes.into_owned()))
}

fn mime_json() -> String {
    ContentType::json().0.to_string()
}

/// Adds the API key schemes of the write routes.
struct WriteSecurity;

impl Modify for WriteSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "The configured API key (`APP_HTTP__API_KEY`); needed only when one is set.",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The configured API key as a bearer token; needed only when one is set.",
                    ))
                    .build(),
            ),
        );
    }
}

// ---------------------------------------------------------------------------
// Schemas. These types describe JSON; the server never builds them.
// ---------------------------------------------------------------------------

/// `GET /health`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct Health {
    health: HealthState,
}

/// Always `ok`.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum HealthState {
    Ok,
}

/// `GET /users`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct Users {
    /// Every user id with at least one transaction, ascending.
    users: Vec<uuid::Uuid>,
}

/// A scored transaction, in the old service's shape plus the verdict's
/// details in `meta_data`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct Transaction {
    /// Unique id within its user's history, also the idempotency key of posts.
    id: uuid::Uuid,
    /// Whose transaction.
    user_id: uuid::Uuid,
    /// A decimal string with exactly two decimals (`NUMERIC(20,2)`).
    #[schema(pattern = r"^-?[0-9]{1,18}\.[0-9]{2}$", example = "271.62")]
    amount: String,
    /// Three uppercase letters.
    #[schema(pattern = "^[A-Z]{3}$", example = "INR")]
    currency: String,
    /// When it happened: RFC 3339 in UTC, to the microsecond.
    #[schema(format = DateTime, example = "2026-03-03T23:36:07.5Z")]
    txn_date: String,
    /// `paid`, `failed`, or another status a client sent.
    #[schema(pattern = "^[a-z0-9_]{1,32}$", example = "paid")]
    status: String,
    meta_data: MetaData,
}

/// The verdict. `score`, `baseline` and `threshold` are present together,
/// once the user had enough earlier transactions to judge this one.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct MetaData {
    /// Whether the amount was flagged as anomalous.
    is_anomaly: bool,
    /// Whether the live simulation made it up. Simulated transactions are
    /// judged against the user's earlier simulated ones only, and real ones
    /// never against simulated ones.
    simulated: bool,
    /// How many earlier transactions of the user (of the same origin: real
    /// or simulated) it was judged against.
    #[schema(minimum = 0)]
    window_len: u32,
    /// Calibrated suspicion in [0, 1]: 0.5 is a tail probability of one in
    /// a thousand given the user's history, for every detector. With the
    /// default rule the flag is the old rule's, not "score above 0.5".
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1)]
    score: f64,
    /// What the detector took as typical (the window's mean by default).
    #[serde(default)]
    baseline: f64,
    /// The amount above which a transaction is flagged.
    #[serde(default)]
    threshold: f64,
}

/// `GET /transactions`: one page.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct Page {
    /// Newest first; ties on `txn_date` by `id`.
    transactions: Vec<Transaction>,
    /// Pass it as `cursor` to read the next page; `""` for an empty page.
    cursor: String,
    /// Whether another non-empty page follows.
    has_more: bool,
}

/// The parameters of `GET /transactions`. An empty parameter counts as
/// absent.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct HistoryParams {
    /// Whose history.
    #[param(example = "0190c9a4-7b5e-7c1e-9a57-3f5d0e4c2a10")]
    user_id: uuid::Uuid,
    /// Earliest `txn_date` (inclusive); default 30 days before now. RFC 3339
    /// (`2026-01-31T12:00:00Z`, `2026-01-31T12:00:00+05:30`); a date alone
    /// means its midnight UTC, a time without offset means UTC.
    #[param(example = "2026-01-01")]
    from_date: Option<String>,
    /// Latest `txn_date` (inclusive); default now. Same forms as `from_date`.
    #[param(example = "2026-01-31T23:59:59Z")]
    to_date: Option<String>,
    /// Smallest amount (inclusive); default `0`. A decimal with at most two
    /// decimals, below 10^18 in magnitude (`NUMERIC(20,2)`).
    #[param(pattern = r"^(-?[0-9]{1,18}(\.[0-9]{1,2})?)?$", example = "100.00")]
    min_amount: Option<String>,
    /// Largest amount (inclusive); default `10000000000.00`. Same form as
    /// `min_amount`.
    #[param(pattern = r"^(-?[0-9]{1,18}(\.[0-9]{1,2})?)?$", example = "5000")]
    max_amount: Option<String>,
    /// Rows per page.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u32>,
    /// The `cursor` of the previous page, to read the next one; absent or
    /// empty for the first page. Opaque, and valid only for the same user.
    cursor: Option<String>,
}

/// A transaction to score and store. Unknown fields are rejected; `null`
/// counts as absent.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct NewTransaction {
    /// Makes the post idempotent: the same id again for the same user
    /// answers the stored transaction (an id is unique per user; under
    /// another user it is another transaction). Absent: a new UUIDv7.
    id: Option<uuid::Uuid>,
    /// Whose transaction.
    user_id: uuid::Uuid,
    #[schema(schema_with = amount_input)]
    amount: String,
    /// Three uppercase letters; default `INR`.
    #[schema(pattern = "^[A-Z]{3}$", example = "INR")]
    currency: Option<String>,
    /// When it happened, RFC 3339 (a date alone or a time without offset
    /// is taken as UTC); default now. Not before 1970 nor more than a day
    /// ahead; stored to the microsecond.
    #[schema(format = DateTime, example = "2026-03-01T10:00:00Z")]
    txn_date: Option<String>,
    /// 1 to 32 lowercase letters, digits or underscores; default `paid`.
    #[schema(pattern = "^[a-z0-9_]{1,32}$", example = "paid")]
    status: Option<String>,
}

/// `amount` of a posted transaction: a decimal string or a number.
fn amount_input() -> Schema {
    let text = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^[0-9]{1,18}(\.[0-9]{1,2})?$"))
        .examples(["271.62"]);
    let number = ObjectBuilder::new()
        .schema_type(Type::Number)
        .minimum(Some(0))
        .exclusive_maximum(Some(1e18));
    OneOfBuilder::new()
        .item(text)
        .item(number)
        .description(Some(
            "How much: zero or more, at most two decimals, below 10^18. A string such as \
             `\"271.62\"` (scientific notation such as `\"1.5e3\"` is read too) or a number.",
        ))
        .into()
}

/// `POST /transactions/batch`: the wrapped or the bare form, up to 1,000
/// transactions either way.
pub(crate) struct Batch;

impl utoipa::PartialSchema for Batch {
    fn schema() -> RefOr<Schema> {
        let bare = ArrayBuilder::new()
            .items(Ref::from_schema_name("NewTransaction"))
            .max_items(Some(1000));
        OneOfBuilder::new()
            .item(Ref::from_schema_name("BatchObject"))
            .item(bare)
            .description(Some(
                "`{\"transactions\": [...]}` or a bare array of up to 1,000 transactions.",
            ))
            .into()
    }
}

impl ToSchema for Batch {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push(("BatchObject".to_owned(), BatchObject::schema()));
        schemas.push(("NewTransaction".to_owned(), NewTransaction::schema()));
    }
}

/// `{"transactions": [...]}`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct BatchObject {
    /// Up to 1,000 transactions.
    #[schema(max_items = 1000)]
    transactions: Vec<NewTransaction>,
}

/// The answer to a batch.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct BatchResult {
    /// Items stored now.
    #[schema(minimum = 0)]
    created: u32,
    /// Items whose id was stored before.
    #[schema(minimum = 0)]
    existing: u32,
    /// Items rejected.
    #[schema(minimum = 0)]
    rejected: u32,
    /// One per item, in the order sent.
    results: Vec<BatchItem>,
}

/// One item's result.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum BatchItem {
    Stored(StoredItem),
    Rejected(RejectedItem),
}

/// A stored item: `201` stored now, `200` stored before.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct StoredItem {
    #[schema(minimum = 200, maximum = 201)]
    status: u16,
    transaction: Transaction,
}

/// A rejected item: `422` invalid, `409` its id is being stored by another
/// request.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RejectedItem {
    #[schema(minimum = 400, maximum = 499)]
    status: u16,
    error: ErrorCode,
    #[schema(min_length = 1)]
    message: String,
}

/// Every error response.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct ErrorBody {
    error: ErrorCode,
    /// What went wrong and what would be accepted.
    #[schema(min_length = 1)]
    message: String,
}

/// A failure of `POST /transactions` to store: the error shape, plus the
/// transaction's id (the one sent, or the one the server gave it), so it
/// can be posted again under the same id or looked up. The `timeout` of the
/// request time limit carries no id.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct IngestError {
    error: ErrorCode,
    /// What happened, and whether anything is stored.
    #[schema(min_length = 1)]
    message: String,
    /// The transaction's id.
    #[schema(required = false)]
    id: uuid::Uuid,
}

/// A failure of `POST /transactions/batch` to store: the error shape,
/// plus one id per item, in order (the one sent, or the one the server
/// gave it; `null` for an item rejected as invalid, which nothing would
/// store). The `timeout` of the request time limit carries no ids.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct BatchIngestError {
    error: ErrorCode,
    /// What happened, and whether anything is stored.
    #[schema(min_length = 1)]
    message: String,
    /// One per item, in order.
    #[schema(required = false)]
    ids: Vec<Option<uuid::Uuid>>,
}

/// The machine-readable error codes.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum ErrorCode {
    MissingParameter,
    InvalidParameter,
    MalformedQuery,
    InvalidCursor,
    InvalidRange,
    MissingField,
    InvalidField,
    InvalidBody,
    UnsupportedEncoding,
    BodyTimeout,
    PayloadTooLarge,
    Unauthorized,
    InProgress,
    InvalidEventId,
    NotFound,
    MethodNotAllowed,
    ServiceUnavailable,
    OutcomeUnknown,
    Timeout,
    TooManyStreams,
    OriginNotAllowed,
    HostNotAllowed,
    InvalidPreflight,
    InternalError,
}

/// The parameters of `GET /sse/transactions`; any other is refused.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct StreamParams {
    /// Only this user's transactions.
    user_id: Option<uuid::Uuid>,
    /// Only flagged transactions: `true` or `1`; `false` or `0` (the
    /// default) for all.
    #[param(value_type = Option<String>, pattern = "^(true|false|1|0)$")]
    anomalies_only: Option<String>,
}

/// The header a reconnecting `EventSource` sends.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub(crate) struct ResumeHeader {
    /// The `id:` of the last event received: the stream first replays every
    /// later event it still keeps, in order, without duplicates. An id that
    /// is not one this route sends (`<ms>-<seq>` on a stream of one user, an
    /// opaque position on the all-users stream), or lies further in the
    /// future than clocks drift (5 minutes), is refused with 422
    /// `invalid_event_id`.
    #[param(rename = "Last-Event-ID", example = "1767225600000-0")]
    last_event_id: Option<String>,
}

/// The event format, shared by both streams' descriptions.
macro_rules! event_format {
    () => {
        "\n\nThe response is `text/event-stream` and never ends by itself. It opens with \
         `retry: 2000` (browsers reconnect after 2 s) and the comment `: connected`; a comment \
         follows every 15 s. Each transaction is a default (unnamed) event, so \
         `EventSource.onmessage` receives it: `id:` is its position in the event log \
         (opaque: send it back as `Last-Event-ID`; on a stream of one user `<ms>-<seq>`, on \
         the all-users stream a short base64url text holding a position per event shard), \
         `data:` one `Transaction` JSON on one line.\n\n\
         ```\nretry: 2000\n\n: connected\n\nid: 1767225600000-0\ndata: {\"id\":\"...\",\
         \"user_id\":\"...\",\"amount\":\"271.62\",...}\n\n```\n\n\
         Problems are `event: error` with `data: {\"error\": code, \"message\": text}`: \
         `events_expired` (a resume asked for events no longer kept; the stream goes on \
         from the oldest kept), `events_lost` (a resume asked for events after an id newer \
         than every event kept, as when Redis lost its stream, or an id the stream cannot \
         resume from exactly, as after the number of event shards changed; the stream goes \
         on after the newest), `lagged` (events were missed; reconnect), \
         `service_unavailable` (Redis is down while catching up; retried).\n\n\
         Resuming: a client sending `Last-Event-ID` first receives every matching event \
         after that id still kept (about `APP_REDIS__EVENT_RETENTION` events), in order, then \
         live ones, none twice."
    };
}

/// `GET /sse/transactions/{user_id}`.
pub(crate) const USER_STREAM_DESCRIPTION: &str = concat!(
    "The old service's live route. With the simulation on (`APP_SIMULATOR__ENABLED`, the \
     default) each connection drives a simulated feed of its own (one transaction every \
     2 s by default, stored as simulated and marked `meta_data.simulated`) and receives \
     exactly that feed, as each connection to the old service did; the feed stops when \
     the connection ends. Its event ids carry the feed (`<ms>-<seq>.<feed>`), so a \
     reconnection with `Last-Event-ID` first receives what the old feed published after \
     that id, then its new feed. When an API key is set, only a request with the key \
     (`X-API-Key` or `Authorization: Bearer`) simulates. Otherwise (simulation off, or no \
     key) the route streams the user's real transactions and writes nothing. The shared \
     view of a user, real and simulated, is `GET /sse/transactions?user_id=`.",
    event_format!()
);

/// `GET /sse/transactions`.
pub(crate) const ALL_STREAM_DESCRIPTION: &str = concat!(
    "Every transaction stored by any server process, real and simulated \
     (`meta_data.simulated`), optionally of one user only or flagged ones only. It starts \
     no simulation and writes nothing.",
    event_format!()
);

// ---------------------------------------------------------------------------
// Shared responses.
// ---------------------------------------------------------------------------

fn error_response(description: &str, retry_after: bool) -> RefOr<Response> {
    error_response_of("ErrorBody", description, retry_after)
}

/// An error response whose body is the schema `body`.
fn error_response_of(body: &str, description: &str, retry_after: bool) -> RefOr<Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(body)))
            .build(),
    );
    if retry_after {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
                        .minimum(Some(0)),
                )
                .description(Some("Seconds to wait before retrying."))
                .build(),
        );
    }
    response.build().into()
}

/// Declares a reusable error response named after the type.
macro_rules! error_response {
    ($name:ident, $retry_after:expr, $description:literal) => {
        #[doc = $description]
        pub(crate) struct $name;

        impl<'s> ToResponse<'s> for $name {
            fn response() -> (&'s str, RefOr<Response>) {
                (
                    stringify!($name),
                    error_response($description, $retry_after),
                )
            }
        }
    };
}

error_response!(
    NotFound,
    false,
    "No route has this path, or no such file (`not_found`)."
);
/// The path does not take this method (`method_not_allowed`); `Allow` names
/// the methods it takes.
pub(crate) struct MethodNotAllowed;

impl<'s> ToResponse<'s> for MethodNotAllowed {
    fn response() -> (&'s str, RefOr<Response>) {
        let mut response = error_response(
            "The path does not take this method (`method_not_allowed`).",
            false,
        );
        if let RefOr::T(response) = &mut response {
            response.headers.insert(
                "Allow".to_owned(),
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some("The methods the path takes, such as `GET, POST`."))
                    .build(),
            );
        }
        ("MethodNotAllowed", response)
    }
}
/// A write without the configured API key (`unauthorized`), with the
/// challenge RFC 9110 asks for.
pub(crate) struct Unauthorized;

impl<'s> ToResponse<'s> for Unauthorized {
    fn response() -> (&'s str, RefOr<Response>) {
        let mut response = error_response(
            "An API key is configured and the request did not send it in `X-API-Key` or \
             `Authorization: Bearer` (the scheme in any case) (`unauthorized`).",
            false,
        );
        if let RefOr::T(response) = &mut response {
            response.headers.insert(
                "WWW-Authenticate".to_owned(),
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some("`Bearer realm=\"txwatch\"`."))
                    .build(),
            );
        }
        ("Unauthorized", response)
    }
}
error_response!(
    InProgress,
    true,
    "Another request is storing a transaction with the same id right now; retry \
     shortly (`in_progress`)."
);
error_response!(
    PayloadTooLarge,
    false,
    "The body is larger than the route takes: 64 KiB for one transaction, 4 MiB for a \
     batch (`payload_too_large`)."
);
error_response!(
    UnsupportedEncoding,
    false,
    "The body carries a `Content-Encoding` other than `identity`; the server reads only \
     unencoded bodies (`unsupported_encoding`). Nothing is stored."
);
error_response!(
    BodyTimeout,
    false,
    "The body did not arrive in full within `APP_HTTP__BODY_TIMEOUT_MS` (or the request's \
     time limit): the client sent less than its `Content-Length`, or stalled \
     (`body_timeout`). Nothing is stored; the connection is closed."
);
error_response!(
    Forbidden,
    false,
    "A browser page on another origin (scheme, host and port) tried to write, and \
     `APP_HTTP__CORS_WRITE_ORIGINS` does not list that origin (`origin_not_allowed`); or, \
     with no API key set, the request names a host the server does not know \
     (`host_not_allowed`: not `localhost`, an IP literal, nor one of \
     `APP_HTTP__ALLOWED_HOSTS`), as a DNS-rebinding page would. Nothing is stored."
);
error_response!(
    Unavailable,
    true,
    "Retry shortly: Postgres or Redis cannot be reached, or the server is shutting down \
     (`service_unavailable`); the request ran past `APP_HTTP__REQUEST_TIMEOUT_MS` (`timeout`; \
     an ingest under way still completes, so posting it again with its ids is safe); or, for \
     streams, the process holds its maximum of streams (`too_many_streams`)."
);
/// What the ingest routes' 503s say, shared by both descriptions.
macro_rules! ingest_unavailable {
    () => {
        "Retry shortly. The answer says what became of the transactions posted, and names \
         their ids, those the server generated included:\n\n\
         - `service_unavailable`: nothing is stored. Postgres or Redis could not be reached, \
         the request's deadline (`APP_HTTP__INGEST_TIMEOUT_MS`) passed before storing began, \
         or the server is shutting down.\n\
         - `outcome_unknown`: the transactions may or may not be stored: they reached Postgres, \
         or may have, and no answer came (the connection was lost, or the deadline passed), \
         and the server could not find out. Each is stored once or not at all; posting them \
         again with the same ids is safe (those stored answer 200).\n\
         - `timeout` (no ids): the request ran past `APP_HTTP__REQUEST_TIMEOUT_MS`, a backstop \
         the ingest deadline normally beats; posting again with the same ids is safe."
    };
}

/// 503 from `POST /transactions`.
pub(crate) struct IngestUnavailable;

impl<'s> ToResponse<'s> for IngestUnavailable {
    fn response() -> (&'s str, RefOr<Response>) {
        (
            "IngestUnavailable",
            error_response_of("IngestError", ingest_unavailable!(), true),
        )
    }
}

/// 503 from `POST /transactions/batch`.
pub(crate) struct BatchUnavailable;

impl<'s> ToResponse<'s> for BatchUnavailable {
    fn response() -> (&'s str, RefOr<Response>) {
        (
            "BatchUnavailable",
            error_response_of("BatchIngestError", ingest_unavailable!(), true),
        )
    }
}

error_response!(
    InternalError,
    false,
    "A failure on the server's side, never caused by what the client sent; the details \
     are logged, not sent (`internal_error`)."
);

/// A `text/event-stream` response.
pub(crate) struct EventStream;

impl<'s> ToResponse<'s> for EventStream {
    fn response() -> (&'s str, RefOr<Response>) {
        let response = ResponseBuilder::new()
            .description(
                "A never-ending stream of Server-Sent Events; see the operation's \
                 description for the event format.",
            )
            .content(
                "text/event-stream",
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .build(),
            )
            .build();
        ("EventStream", response.into())
    }
}

/// `GET /ready`'s answer, 200 or 503.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Readiness {
    /// `not_ready`, in a 503 only.
    #[schema(value_type = String, required = false, pattern = "^not_ready$")]
    error: Option<String>,
    /// What is down, in a 503 only.
    #[schema(value_type = String, required = false)]
    message: Option<String>,
    /// Whether both answer.
    ready: bool,
    /// `ok`, or why Postgres cannot be used, in plain words.
    postgres: String,
    /// `ok`, or why Redis cannot be used, in plain words.
    redis: String,
    /// Settings an operator should fix; they do not make the process
    /// unready.
    warnings: Vec<ReadinessWarning>,
    /// Each read replica (`APP_DATABASE__READ_URLS`) as its last check
    /// found it; empty without replicas. A replica down or lagging never
    /// makes the process unready: the primary answers its reads.
    replicas: Vec<ReadinessReplica>,
}

/// A read replica in `/ready`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct ReadinessReplica {
    /// `host:port/database`.
    name: String,
    /// `up` (reads go to it), `lagging` (behind the bound: skipped),
    /// `down` (not answering: skipped) or `starting` (not checked yet).
    #[schema(pattern = "^(up|lagging|down|starting)$")]
    state: String,
    /// How far behind the primary it was at its last check, in
    /// milliseconds; null before any check reached it.
    #[schema(value_type = Option<u64>)]
    lag_ms: Option<u64>,
}

/// A setting an operator should fix.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct ReadinessWarning {
    /// `default_cursor_secret`: cursors are signed with the built-in secret,
    /// which is public; set `APP_HTTP__CURSOR_SECRET`.
    code: WarningCode,
    /// What to do about it.
    message: String,
}

/// The machine-readable warning codes of `/ready`.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum WarningCode {
    DefaultCursorSecret,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Every error code of [`ApiError`], to check [`ErrorCode`] against.
    fn every_error_code() -> std::collections::BTreeMap<&'static str, u16> {
        use actix_web::ResponseError;
        let errors = [
            ApiError::MissingParameter("user_id"),
            ApiError::invalid("limit", "too large"),
            ApiError::MalformedQuery("twice".into()),
            ApiError::InvalidCursor(crate::api::cursor::CursorError::Format),
            ApiError::InvalidRange {
                low: "a",
                low_value: "2".into(),
                high: "b",
                high_value: "1".into(),
            },
            ApiError::MissingField("amount"),
            ApiError::invalid_field("amount", "negative"),
            ApiError::InvalidBody("not an object".into()),
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::UnsupportedEncoding("gzip".into()),
            ApiError::BodyTimeout(std::time::Duration::from_secs(1)),
            ApiError::Unauthorized,
            ApiError::InProgress(uuid::Uuid::nil()),
            ApiError::InvalidEventId("x".into()),
            ApiError::NotFound,
            ApiError::MethodNotAllowed { allow: "GET" },
            ApiError::Timeout(std::time::Duration::from_secs(1)),
            ApiError::TooManyStreams { limit: 1 },
            ApiError::OriginNotAllowed("https://elsewhere.example".into()),
            ApiError::HostNotAllowed("evil.example".into()),
            ApiError::PreflightRefused("no"),
            ApiError::InvalidPreflight("no method".into()),
            ApiError::Unavailable {
                service: "redis",
                source: "down".into(),
            },
            ApiError::OutcomeUnknown("no answer".into()),
            ApiError::NotStoredInTime,
            ApiError::NotStoredInTime
                .with_ids(crate::api::error::IngestIds::One(uuid::Uuid::nil())),
            ApiError::Internal("bug".into()),
        ];
        errors
            .iter()
            .map(|error| (error.code(), error.status_code().as_u16()))
            .collect()
    }

    fn document_json() -> Value {
        serde_json::from_slice(&DOCUMENT_JSON).expect("the document is JSON")
    }

    #[test]
    fn the_error_code_schema_lists_exactly_the_codes_the_api_sends() {
        let doc = document_json();
        let listed: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .expect("an enum")
            .iter()
            .map(|code| code.as_str().expect("a string"))
            .collect();
        let mut listed_sorted = listed.clone();
        listed_sorted.sort_unstable();
        let sent: Vec<&str> = every_error_code().into_keys().collect();
        assert_eq!(listed_sorted, sent);
    }

    #[test]
    fn every_reference_in_the_document_resolves() {
        fn check(value: &Value, doc: &Value) {
            match value {
                Value::Object(object) => {
                    if let Some(Value::String(target)) = object.get("$ref") {
                        let pointer = target.strip_prefix('#').expect("a local reference");
                        assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
                    }
                    object.values().for_each(|v| check(v, doc));
                }
                Value::Array(items) => items.iter().for_each(|v| check(v, doc)),
                _ => {}
            }
        }
        let doc = document_json();
        check(&doc, &doc);
    }

    #[test]
    fn the_document_is_openapi_3_1_with_a_version() {
        let doc = document_json();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn the_swagger_ui_is_compiled_in_and_reads_our_document() {
        let index = utoipa_swagger_ui::serve("", SWAGGER_CONFIG.clone())
            .expect("served")
            .expect("an index page");
        assert_eq!(index.content_type, "text/html");
        let init = utoipa_swagger_ui::serve("swagger-initializer.js", SWAGGER_CONFIG.clone())
            .expect("served")
            .expect("the initializer");
        let text = String::from_utf8_lossy(&init.bytes);
        assert!(text.contains(DOCUMENT_PATH), "{text}");
    }
}
