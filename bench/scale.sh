#!/usr/bin/env bash
# Scale-out: 1, 2 and 3 `txwatch serve` processes over a Redis Cluster (3
# masters, 1 replica each) and a partitioned Postgres primary with one
# streaming standby (reads go to it), all started here on free ports.
#
# For each process count: the batch ingest rate (POST /transactions/batch,
# 1,000 per request, BATCH_CONNECTIONS over all processes), single-post
# latency (SINGLE_CONNECTIONS over all processes), SSE deliveries across
# processes (sse_load, a user's viewers on other processes than its feed:
# none may be missing), and the cost of one transaction in each component:
# server CPU, Redis commands and Redis time on each master (INFO
# commandstats), Postgres CPU and WAL bytes on the primary. Then where the
# keys live: events and windows per master.
#
# On this 2-core machine every process (servers, Redis nodes, Postgres,
# clients) shares the same cores, so the rates show the cost model, not
# the speed of a real cluster; docs/scaling.md turns the costs into sizes.
source "$(dirname "$0")/common.sh"
need psql wrk redis-cli python3 curl bc
build_release
cargo build --release --locked -q -p txwatch-loadtest --bin sse_load

USERS=${USERS:-10000}
BATCH_CONNECTIONS=${BATCH_CONNECTIONS:-4}
SINGLE_CONNECTIONS=${SINGLE_CONNECTIONS:-32}
DURATION=${DURATION:-15}
SSE_CONNECTIONS=${SSE_CONNECTIONS:-2000}
SSE_USERS=${SSE_USERS:-800}
SSE_SECONDS=${SSE_SECONDS:-15}
PROCESSES=${PROCESSES:-"1 2 3"}
work=$OUT/scale
rm -rf "$work" && mkdir -p "$work"

echo "--- starting a Redis Cluster and a Postgres primary with a standby"
redis_dir=$(mktemp -d /tmp/txwatch-bench-redis.XXXXXX)
pg_dir=$(mktemp -d /tmp/txwatch-bench-pg.XXXXXX)
at_exit "scripts/redis-cluster.sh down '$redis_dir' >/dev/null 2>&1"
at_exit "scripts/pg-cluster.sh stop '$pg_dir' >/dev/null 2>&1"
eval "$(scripts/redis-cluster.sh up "$redis_dir" | grep '^export ')"
# shellcheck disable=SC1090,SC1091
scripts/pg-cluster.sh start "$pg_dir" >/dev/null
# shellcheck disable=SC1091
source "$pg_dir/env"
primary=${PG_PRIMARY_URL%/postgres}
standby=${PG_STANDBY_URL%/postgres}
DB=txwatch_bench_scale
psql "$primary/postgres" -qc "create database $DB"
export DATABASE_URL=$primary/$DB APP_DATABASE__READ_URLS=$standby/$DB
export APP_REDIS__KEY_PREFIX="txwatch-bench-scale:"
unset REDIS_URL
masters() { # the master ports, one per line
  redis-cli -p "$(head -1 "$redis_dir/ports")" cluster nodes | awk '$3 ~ /master/ {split($2, a, "[:@]"); print a[2]}' | sort -n
}
mapfile -t master_ports < <(masters)
echo "Redis masters: ${master_ports[*]}; Postgres primary $primary, standby $standby"

ingest_bodies "$work" "$USERS"
ingest_scripts "$work"

stored() { psql "$DATABASE_URL" -tAc "select count(*) from transactions"; }
wal_lsn() { psql "$primary/postgres" -tAc "select pg_current_wal_lsn()"; }
wal_bytes() { psql "$primary/postgres" -tAc "select pg_wal_lsn_diff('$2', '$1')::bigint"; }
# CPU seconds (user + system) of the given pids and their threads.
cpu_of() {
  local ticks=0
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] && ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "scale=3; $ticks / $(getconf CLK_TCK)" | bc
}
postgres_pids() { pgrep -f "postgres" -u postgres | while read -r pid; do
  grep -q "$pg_dir/primary" "/proc/$pid/cmdline" 2>/dev/null && { echo "$pid"; pgrep -P "$pid"; }
done | sort -u; }
# Per master: "calls usec" summed over every command (INFO commandstats).
redis_totals() {
  for port in "${master_ports[@]}"; do
    redis-cli -p "$port" info commandstats | awk -F'[=,:]' -v port="$port" \
      '/^cmdstat_/ && $1 !~ /cmdstat_(info|config|cluster|ping|client|command)$/ {calls += $3; usec += $5} END {print port, calls + 0, usec + 0}'
  done
}
reset_redis_stats() { for port in "${master_ports[@]}"; do redis-cli -p "$port" config resetstat >/dev/null; done; }

# split TOTAL N: N numbers summing to TOTAL, as even as they can be.
split() { for i in $(seq 0 $(($2 - 1))); do echo $(($1 / $2 + (i < $1 % $2 ? 1 : 0))); done; }

summary=$work/summary.txt
: >"$summary"
for n in $PROCESSES; do
  echo
  echo "=== $n server process(es)"
  pids=() urls=()
  for i in $(seq 1 "$n"); do
    export PORT; PORT=$(free_port)
    start_server "$work/server-$n-$i.log"
    pids+=("$SERVER") urls+=("http://127.0.0.1:$PORT")
  done
  # Warm-up: every user's window built once.
  mapfile -t shares < <(split "$BATCH_CONNECTIONS" "$n")
  clients=()
  for i in "${!urls[@]}"; do
    [ "${shares[$i]}" -gt 0 ] || continue
    wrk -t1 -c"${shares[$i]}" -d3s -s "$work/batch.lua" "${urls[$i]}" >/dev/null &
    clients+=($!)
  done
  wait "${clients[@]}"

  # Batch ingest.
  psql "$primary/postgres" -qc checkpoint
  reset_redis_stats
  before=$(stored) lsn_before=$(wal_lsn)
  server_cpu_before=$(cpu_of "${pids[@]}") pg_cpu_before=$(cpu_of $(postgres_pids))
  clients=()
  for i in "${!urls[@]}"; do
    [ "${shares[$i]}" -gt 0 ] || continue
    wrk -t1 -c"${shares[$i]}" -d"${DURATION}s" -s "$work/batch.lua" "${urls[$i]}" >"$work/batch-$n-$i.txt" &
    clients+=($!)
  done
  wait "${clients[@]}"
  after=$(stored) lsn_after=$(wal_lsn)
  server_cpu=$(echo "$(cpu_of "${pids[@]}") - $server_cpu_before" | bc)
  pg_cpu=$(echo "$(cpu_of $(postgres_pids)) - $pg_cpu_before" | bc)
  tx=$((after - before))
  rate=$((tx / DURATION))
  wal=$(wal_bytes "$lsn_before" "$lsn_after")
  echo "batch: $tx transactions stored in ${DURATION} s: $rate/s"
  echo "  server CPU $(echo "scale=2; $server_cpu * 1000000 / $tx" | bc) us/transaction; Postgres CPU $(echo "scale=2; $pg_cpu * 1000000 / $tx" | bc) us and $((wal / tx)) WAL bytes/transaction"
  redis_line=""
  while read -r port calls usec; do
    echo "  Redis master :$port: $(echo "scale=2; $calls / $tx" | bc) commands and $(echo "scale=2; $usec / $tx" | bc) us per transaction ($calls commands)"
    redis_line+=" :$port $(echo "scale=2; $calls / $tx" | bc) cmd $(echo "scale=2; $usec / $tx" | bc) us;"
  done < <(redis_totals)

  # Single posts.
  mapfile -t shares < <(split "$SINGLE_CONNECTIONS" "$n")
  clients=()
  for i in "${!urls[@]}"; do
    wrk -t1 -c"${shares[$i]}" -d"${DURATION}s" --latency -s "$work/single.lua" "${urls[$i]}" >"$work/single-$n-$i.txt" &
    clients+=($!)
  done
  wait "${clients[@]}"
  single_rate=0 single_p99=0
  for i in "${!urls[@]}"; do
    r=$(awk '/Requests\/sec/ {print $2}' "$work/single-$n-$i.txt")
    p=$(awk '/^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms/, "", v)} else if (v ~ /s$/) {sub(/s/, "", v); v *= 1000}; print v}' "$work/single-$n-$i.txt")
    single_rate=$(echo "$single_rate + $r" | bc)
    single_p99=$(echo "if ($p > $single_p99) $p else $single_p99" | bc)
  done
  echo "single: $single_rate req/s over $SINGLE_CONNECTIONS connections, p99 $single_p99 ms (worst process)"

  # SSE across processes.
  url_list=$(IFS=,; echo "${urls[*]}")
  target/release/sse_load --url "$url_list" --connections "$SSE_CONNECTIONS" --users "$SSE_USERS" \
    --seconds "$SSE_SECONDS" >"$work/sse-$n.txt" 2>&1 || true
  missing=$(grep -oP 'missing \K[0-9]+' "$work/sse-$n.txt" || echo "?")
  sse_p99=$(grep -oP 'creation-to-receipt latency: .*p99 \K[0-9.]+' "$work/sse-$n.txt" || echo "?")
  delivered=$(grep -oP '[0-9]+(?= events delivered)' "$work/sse-$n.txt" || echo "?")
  echo "sse: $delivered events delivered, $missing missing, p99 $sse_p99 ms ($SSE_CONNECTIONS connections over ${n} process(es))"
  printf "| %d | %s/s | %.1f | %.1f | %d | %s req/s, p99 %s ms | %s delivered, %s missing, p99 %s ms |%s\n" \
    "$n" "$rate" "$(echo "scale=2; $server_cpu * 1000000 / $tx" | bc)" "$(echo "scale=2; $pg_cpu * 1000000 / $tx" | bc)" \
    "$((wal / tx))" "$single_rate" "$single_p99" "$delivered" "$missing" "$sse_p99" "$redis_line" >>"$summary"

  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; done
done

echo
echo "=== where the keys live (per master: event streams, windows, other)"
for port in "${master_ports[@]}"; do
  redis-cli -p "$port" --scan --pattern "${APP_REDIS__KEY_PREFIX}*" | awk -v port="$port" '
    /events/ {e++} /window:/ {w++} !/events/ && !/window:/ {o++}
    END {printf "master :%s: %d event streams, %d windows, %d other keys\n", port, e, w, o}'
done
echo
echo "=== summary"
echo "| processes | batch ingest | server CPU us/tx | Postgres CPU us/tx | WAL bytes/tx | single posts | SSE | Redis per master (commands, us per tx) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
cat "$summary"
grep -q "| ? missing\|, [1-9][0-9]* missing" "$summary" && { echo "error: SSE deliveries missing" >&2; exit 1; }
exit 0
