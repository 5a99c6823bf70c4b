//! The request/response edge: the routing table, the route handlers of the
//! query and ingest API, and everything that turns bytes into checked input
//! and results into answers (body and query reading, cursors, JSON shapes,
//! the one error type, origin checks, the OpenAPI document).
//!
//! Handlers are thin: they read and check input, call one function of the
//! live engine ([`crate::live`]) or of storage, and write the answer here.
//! This room decides what the API looks like on the wire; it must not decide
//! how a transaction is judged or stored (that is `live`), and it spawns no
//! tasks.

pub(crate) mod body;
pub(crate) mod cursor;
pub(crate) mod dto;
pub(crate) mod error;
pub(crate) mod head_errors;
pub(crate) mod history;
pub(crate) mod ingest;
pub(crate) mod json;
pub(crate) mod openapi;
pub(crate) mod origin;
pub(crate) mod query;
pub(crate) mod routes;
pub(crate) mod users;
