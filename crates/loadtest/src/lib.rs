//! Load clients for txwatch, one binary each (`src/bin/`):
//!
//! - `sse_load`: many SSE viewers while transactions flow; latency from a
//!   transaction's creation to its receipt, deliveries, none missing
//!   (`just bench-sse`).
//! - `soak`: minutes of mixed load (history pages, posts, streams) against
//!   a running server, counting failures and watching its memory
//!   (`just soak`).
//! - `dashboard_load`: the dashboard in headless Chromium while transactions
//!   flow (`just bench-dashboard`).
//!
//! They talk HTTP to a server started by the bench scripts and depend on no
//! txwatch crate, so they measure the server as its clients see it.
