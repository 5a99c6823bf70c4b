//! The live dashboard: one HTML page at `/` and its script and style sheet
//! under `/assets/`, compiled into the binary from `crates/http/assets/`, so
//! the page works on a machine with no internet access.
//!
//! The page only talks to this server's own API (`/sse/transactions`,
//! `/transactions`, `/users`, `/health`, `/ready`); its
//! `Content-Security-Policy` forbids anything else. Responses carry an
//! `ETag` derived from their content and `Cache-Control: no-cache`, so a
//! browser revalidates (a `304` when unchanged) and never runs a stale
//! script after an upgrade.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, Path};
use actix_web::{HttpRequest, HttpResponse};

use crate::api::error::ApiError;

/// A file served by the dashboard.
struct Asset {
    content_type: &'static str,
    body: &'static str,
}

impl Asset {
    /// A strong validator of the content, known at compile time.
    fn etag(&self) -> String {
        format!("\"{:016x}\"", fnv1a(self.body.as_bytes()))
    }
}

const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_str!("../assets/index.html"),
};

/// The files under `/assets/`, by name.
const ASSETS: [(&str, Asset); 2] = [
    (
        "dashboard.js",
        Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("../assets/dashboard.js"),
        },
    ),
    (
        "dashboard.css",
        Asset {
            content_type: "text/css; charset=utf-8",
            body: include_str!("../assets/dashboard.css"),
        },
    ),
];

/// Same-origin only: the page loads nothing and calls nothing elsewhere.
/// Inline SVG drawn from the script and a `data:` favicon are all it needs
/// beyond its own files.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Registers `GET /` and `GET /assets/{file}` (and `HEAD`); other methods
/// on them get the JSON 405 like every other route.
pub(crate) fn register(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/")
                .route(web::get().to(index))
                .route(web::head().to(index))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/assets/{file}")
                .route(web::get().to(asset))
                .route(web::head().to(asset))
                .default_service(web::to(method_not_allowed)),
        );
}

/// `GET /`: the dashboard page.
#[utoipa::path(
    get,
    path = "/",
    tag = "service",
    operation_id = "dashboard",
    summary = "The live dashboard",
    description = "A web page, served from the binary, that streams every transaction live, \
                   marks anomalies with their reason, charts a user's recent amounts with the \
                   window mean and threshold, and pages through a user's history.",
    responses(
        (status = 200, description = "The page.", body = String, content_type = "text/html"),
        (status = 304, description = "The browser's copy (`If-None-Match`) is current."),
    ),
)]
pub(crate) async fn index(request: HttpRequest) -> HttpResponse {
    let mut response = serve(&request, &INDEX);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `GET /assets/{file}`: the page's script and style sheet.
#[utoipa::path(
    get,
    path = "/assets/{file}",
    tag = "service",
    operation_id = "dashboard_asset",
    summary = "A file of the dashboard",
    params(("file" = String, Path, description = "`dashboard.js` or `dashboard.css`.")),
    responses(
        (status = 200, description = "The file.",
         content((String = "text/javascript"), (String = "text/css"))),
        (status = 304, description = "The browser's copy (`If-None-Match`) is current."),
        (status = 404, response = crate::api::openapi::NotFound),
    ),
)]
pub(crate) async fn asset(
    request: HttpRequest,
    file: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, asset) = ASSETS
        .iter()
        .find(|(name, _)| *name == file.as_str())
        .ok_or(ApiError::NotFound)?;
    Ok(serve(&request, asset))
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" })
}

/// The asset, or `304 Not Modified` when the browser already holds it.
fn serve(request: &HttpRequest, asset: &Asset) -> HttpResponse {
    let etag = asset.etag();
    let status = if matches_etag(request, &etag) {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let mut response = HttpResponse::build(status);
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if status == StatusCode::NOT_MODIFIED {
        response.finish()
    } else {
        response
            .insert_header((header::CONTENT_TYPE, asset.content_type))
            .body(asset.body)
    }
}

/// Whether `If-None-Match` names `etag` (weakly compared, as RFC 9110 asks
/// for this header) or is `*`.
fn matches_etag(request: &HttpRequest, etag: &str) -> bool {
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

/// 64-bit FNV-1a: a cheap, stable fingerprint of an asset for its `ETag`
/// (not a security measure).
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn check(if_none_match: Option<&str>, etag: &str, matches: bool) {
        let mut request = TestRequest::default();
        if let Some(value) = if_none_match {
            request = request.insert_header((header::IF_NONE_MATCH, value));
        }
        assert_eq!(
            matches_etag(&request.to_http_request(), etag),
            matches,
            "If-None-Match {if_none_match:?} against {etag}"
        );
    }

    #[test]
    fn if_none_match_matches_the_same_tag_a_weak_one_a_list_or_a_star() {
        check(None, "\"a\"", false);
        check(Some("\"a\""), "\"a\"", true);
        check(Some("W/\"a\""), "\"a\"", true);
        check(Some("\"b\", \"a\""), "\"a\"", true);
        check(Some("*"), "\"a\"", true);
        check(Some("\"b\""), "\"a\"", false);
        check(Some(""), "\"a\"", false);
    }

    #[test]
    fn every_asset_has_its_own_etag_and_a_text_content_type() {
        let mut tags: Vec<String> = ASSETS.iter().map(|(_, asset)| asset.etag()).collect();
        tags.push(INDEX.etag());
        let count = tags.len();
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), count);
        for (name, asset) in &ASSETS {
            assert!(!asset.body.is_empty(), "{name} is empty");
            assert!(asset.content_type.starts_with("text/"), "{name}");
        }
    }

    #[test]
    fn the_page_loads_only_its_own_assets() {
        for (name, _) in &ASSETS {
            assert!(
                INDEX.body.contains(&format!("/assets/{name}")),
                "index.html does not load {name}"
            );
        }
        for needle in ["http://", "https://", "//cdn", "<script>"] {
            assert!(!INDEX.body.contains(needle), "index.html has `{needle}`");
        }
    }
}
