//! Storage against a real PostgreSQL: each test creates its own database.

mod repository;
