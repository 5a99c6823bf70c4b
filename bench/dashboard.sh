#!/usr/bin/env bash
# Dashboard under load: the page at `/` in a headless Chromium while
# RATE (50) transactions/s are posted for SECONDS_MEASURED (20) s over USERS
# (20) users (crates/server/examples/dashboard_load.rs). Reports the rows
# shown against those posted, frames per second, long tasks, how long two
# controls take to respond mid-load, and the page's JS heap. Fails when
# fewer than 99% were shown, a 1-second window had fewer than 20 frames, or
# a long task took more than 200 ms.
source "$(dirname "$0")/common.sh"
need psql curl redis-cli
build_release
cargo build --release --locked -q -p txwatch-server --example dashboard_load

RATE=${RATE:-50}
SECONDS_MEASURED=${SECONDS_MEASURED:-20}
USERS=${USERS:-20}
PORT=${BENCH_PORT:-18185}
DB=txwatch_bench_dashboard
URL=$BENCH_SERVER/$DB
PREFIX=txwatch-bench-dashboard:
REDIS=${REDIS_URL:-redis://127.0.0.1:6379}

clean_redis() {
  redis-cli -u "$REDIS" --scan --pattern "$PREFIX*" | xargs -r redis-cli -u "$REDIS" unlink >/dev/null
}
recreate_db $DB
clean_redis

DATABASE_URL=$URL APP_REDIS__KEY_PREFIX=$PREFIX PORT=$PORT APP_LOG__FILTER=warn \
  APP_SERVER__HOST=127.0.0.1 "$BIN" serve >"$OUT/dashboard-server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; clean_redis' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done

target/release/examples/dashboard_load --url "http://127.0.0.1:$PORT" \
  --rate "$RATE" --seconds "$SECONDS_MEASURED" --users "$USERS"
