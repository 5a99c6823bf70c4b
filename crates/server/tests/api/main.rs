//! The whole server, started exactly as in production against a real
//! PostgreSQL database of each test's own.

mod errors;
mod helpers;
mod history;
mod outage;
mod proxy;
mod routes;
mod seeding;
