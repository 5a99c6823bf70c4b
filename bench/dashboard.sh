#!/usr/bin/env bash
# Dashboard under load: the page at `/` in a headless Chromium while
# RATE (50) transactions/s are posted for SECONDS_MEASURED (20) s over USERS
# (20) users (crates/loadtest/src/bin/dashboard_load.rs). Reports the rows
# shown against those posted, frames per second, long tasks, how long two
# controls take to respond mid-load, and the page's JS heap. Fails when
# fewer than 99% were shown, a 1-second window had fewer than 20 frames, or
# a long task took more than 200 ms.
source "$(dirname "$0")/common.sh"
need psql curl redis-cli
build_release
cargo build --release --locked -q -p txwatch-loadtest --bin dashboard_load

RATE=${RATE:-50}
SECONDS_MEASURED=${SECONDS_MEASURED:-20}
USERS=${USERS:-20}
bench_env dashboard
recreate_db $DB
start_server "$OUT/dashboard-server.log"
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done

target/release/dashboard_load --url "http://127.0.0.1:$PORT" \
  --rate "$RATE" --seconds "$SECONDS_MEASURED" --users "$USERS"
