#!/usr/bin/env bash
# SSE at scale: one server process, 10,000 concurrent connections to
# GET /sse/transactions/{user} over 4,000 users, whose simulations (one
# transaction per user every 2 s) make 2,000 transactions/s. Reports the
# creation-to-receipt latency, whether every event reached every viewer,
# and the server's peak memory.
source "$(dirname "$0")/common.sh"
need psql curl redis-cli
build_release
cargo build --release --locked -q -p txwatch-loadtest --bin sse_load

CONNECTIONS=${CONNECTIONS:-10000}
USERS=${USERS:-4000}
SECONDS_MEASURED=${SECONDS_MEASURED:-30}
bench_env sse

# Each process (server, client) holds one socket per connection: raise the
# open-file limit as far as this machine allows, and check it is enough.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((CONNECTIONS + 1000)) ]; then
  echo "error: open-file limit $(ulimit -n) is below $((CONNECTIONS + 1000)); raise the hard limit (ulimit -Hn)" >&2
  exit 1
fi
recreate_db $DB
start_server "$OUT/sse-server.log"

target/release/sse_load --url "http://127.0.0.1:$PORT" \
  --connections "$CONNECTIONS" --users "$USERS" --seconds "$SECONDS_MEASURED"
echo "server peak RSS: $(awk '/VmHWM/ {printf "%.1f MB", $2 / 1024}' /proc/$SERVER/status)"
