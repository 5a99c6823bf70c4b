#!/usr/bin/env bash
# Soak: SOAK_SECONDS (10 minutes by default) of a steady mixed load on one
# server process (crates/loadtest/src/bin/soak.rs): 1,000 SSE streams held
# over 250 simulated users plus a few all-users and moving ones, about 200
# reads/s (history pages, /users, /ready, /metrics), 200 single posts/s and
# a batch of 100 every second, on a seeded history. Passes when every
# request was answered 2xx (as expected) and no stream failed, the server's
# RSS at the end is within MAX_GROWTH_PCT (10%) of its RSS after
# WARMUP_SECONDS (60), every stream is released once the client leaves, and
# the server exits 0 on SIGTERM. Samples VmRSS every 5 s into
# bench/out/soak-rss.txt. SOAK_SECONDS=90 WARMUP_SECONDS=30 for a quick try.
source "$(dirname "$0")/common.sh"
need psql curl redis-cli
build_release
cargo build --release --locked -q -p txwatch-loadtest --bin soak

SOAK_SECONDS=${SOAK_SECONDS:-600}
WARMUP_SECONDS=${WARMUP_SECONDS:-60}
MAX_GROWTH_PCT=${MAX_GROWTH_PCT:-10}
STREAMS=${STREAMS:-1000}
RSS_LOG=$OUT/soak-rss.txt
if [ "$WARMUP_SECONDS" -ge "$SOAK_SECONDS" ]; then
  echo "error: WARMUP_SECONDS ($WARMUP_SECONDS) must be below SOAK_SECONDS ($SOAK_SECONDS)" >&2
  exit 1
fi

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((STREAMS + 1000)) ]; then
  echo "error: open-file limit $(ulimit -n) is below $((STREAMS + 1000)); raise the hard limit (ulimit -Hn)" >&2
  exit 1
fi
bench_env soak
recreate_db $DB
APP_LOG__FILTER=warn "$BIN" seed --users 50 --rows-per-user 2000 --quiet

start_server "$OUT/soak-server.log"
server=$SERVER
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
mb() { awk -v kb="$1" 'BEGIN {printf "%.1f MB", kb / 1024}'; }
echo "server RSS at rest: $(mb "$(rss)")"

# One line every 5 s: seconds since the client started, VmRSS in kB.
start=$(date +%s)
(while kill -0 "$server" 2>/dev/null; do echo "$(($(date +%s) - start)) $(rss)"; sleep 5; done) >"$RSS_LOG" &
sampler=$!

status=0
TIMEFORMAT="client CPU: %U s user + %S s system in %R s"
time target/release/soak --url "http://127.0.0.1:$PORT" --seconds "$SOAK_SECONDS" \
  --streams "$STREAMS" | tee "$OUT/soak-client.txt" || status=1
kill $sampler 2>/dev/null || true
wait $sampler 2>/dev/null || true

# After warm-up: the first sample at or past WARMUP_SECONDS. At the end: the
# last sample taken while the load still ran.
read -r warm_at warm < <(awk -v w="$WARMUP_SECONDS" '$1 >= w {print; exit}' "$RSS_LOG")
read -r end_at end < <(awk -v s="$SOAK_SECONDS" '$1 <= s {t = $1; r = $2} END {print t, r}' "$RSS_LOG")
peak=$(awk 'm < $2 {m = $2} END {print m}' "$RSS_LOG")
growth=$(awk -v a="$warm" -v b="$end" 'BEGIN {printf "%+.1f", (b - a) * 100 / a}')
echo "server RSS: after warm-up (${warm_at} s) $(mb "$warm"), max $(mb "$peak"), end (${end_at} s) $(mb "$end"): ${growth}% (limit ${MAX_GROWTH_PCT}%)"

ticks=$(awk '{print $14 + $15}' "/proc/$server/stat")
echo "server CPU: $((ticks / $(getconf CLK_TCK))) s during the run (seeding aside)"

# A stream is dropped when the server next writes to it (an event, or the
# keep-alive every 15 s): every one must be gone well within 20 s.
open_streams() { curl -sf "http://127.0.0.1:$PORT/metrics" | awk '/^txwatch_sse_connections\{/ {n += $2} END {print n + 0}'; }
left=$SECONDS
while [ "$(open_streams)" != 0 ] && [ $((SECONDS - left)) -lt 20 ]; do sleep 1; done
if [ "$(open_streams)" = 0 ]; then
  echo "every stream released within $((SECONDS - left + 1)) s of the client leaving"
else
  echo "error: $(open_streams) streams still counted open 20 s after the client left" >&2
  status=1
fi
echo "server /metrics after the client left:"
curl -sf "http://127.0.0.1:$PORT/metrics" | grep -E '^txwatch_(transactions_scored_total|anomalies_flagged_total|events_published_total|events_unpublished_total|sse_connections|sse_connections_rejected_total|sse_lagged_events_total|sse_notices_total|dependency_errors_total)' || true
echo "server RSS with no load: $(mb "$(rss)")"

kill -TERM $server
code=0
wait $server || code=$?
echo "server stopped on SIGTERM with exit status $code"
[ $code -eq 0 ] || status=1
if awk -v g="$growth" -v m="$MAX_GROWTH_PCT" 'BEGIN {exit !(g > m)}'; then
  echo "error: server memory grew ${growth}% after warm-up (limit ${MAX_GROWTH_PCT}%)" >&2
  status=1
fi
[ $status -eq 0 ] && echo "soak passed" || echo "soak FAILED" >&2
exit $status
