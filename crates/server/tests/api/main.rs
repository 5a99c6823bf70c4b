//! The whole server, started exactly as in production against a real
//! PostgreSQL database and Redis key prefix of each test's own.

mod browser;
mod commits;
mod dashboard;
mod deadlines;
mod docs;
mod errors;
mod failover;
mod helpers;
mod history;
mod ingest;
mod live;
mod openapi;
mod operations;
mod origin;
mod outage;
mod processes;
mod proxy;
mod replicas;
mod routes;
mod seeding;
mod server_process;
mod shutdown;
mod simulation;
mod sse_client;
mod sse_shards;
mod steady;
