//! The HTTP API: actix-web routes, request validation, JSON types and the
//! mapping of every error to a status code.
//!
//! Main items: [`configure`] registers the routes on an actix `App`,
//! [`AppState`] holds the cheap, clonable handles they use, [`HttpConfig`]
//! their settings, [`cors`] the cross-origin policy, and [`ApiError`] the one
//! error type whose `ResponseError` impl decides every error response
//! (`{"error": "<snake_case_code>", "message": "..."}`).
//!
//! Handlers are thin: they extract and validate input, call one repository
//! function, and convert domain values to JSON types here, at the edge.
//!
//! Depends on `domain` and `storage`. It must never read
//! configuration files or environment variables, install a tracing
//! subscriber, or spawn long-lived tasks: the `server` crate does that.

mod config;
mod cursor;
mod dto;
mod error;
mod query;
mod routes;
mod state;

pub use config::HttpConfig;
pub use cursor::{CursorCodec, CursorError};
pub use error::ApiError;
pub use routes::{configure, cors, not_found};
pub use state::AppState;
