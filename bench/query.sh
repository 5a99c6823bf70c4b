#!/usr/bin/env bash
# History query throughput at 32 connections: the same SQL through pgbench
# (the database alone) and GET /transactions?limit=100 through wrk (the whole
# server, at its default settings), on 100 users x 15,000 rows (1.5M) seeded
# once and reused. Both clients get the same threads (THREADS, 2) and
# connections (CONNECTIONS, 32); they alternate RUNS (5) times in the same
# minutes and the medians are compared.
source "$(dirname "$0")/common.sh"
need psql pgbench wrk curl bc
build_release

USERS=${USERS:-100}
ROWS=${ROWS_PER_USER:-15000}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-15}
RUNS=${RUNS:-5}
THREADS=${THREADS:-2}
bench_env query

psql "$BENCH_SERVER/postgres" -tAc "select 1 from pg_database where datname = '$DB'" | grep -q 1 \
  || psql "$BENCH_SERVER/postgres" -qc "create database $DB"
$BIN migrate >/dev/null 2>&1
have=$(psql "$URL" -tAc "select count(*) from transactions")
if [ "$have" != $((USERS * ROWS)) ]; then
  echo "seeding $USERS users x $ROWS rows..."
  APP_LOG__FILTER=warn $BIN seed --users "$USERS" --rows-per-user "$ROWS" --seed 1 --reset --quiet
  psql "$URL" -qc "vacuum analyze transactions"
fi

# A year back from now, as the query's date range.
FROM=$(date -u -d '365 days ago' +%Y-%m-%dT%H:%M:%SZ)
TO=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
mapfile -t users < <(psql "$URL" -tAc "
  with recursive u(user_id) as (
    (select user_id from transactions order by user_id limit 1)
    union all
    select (select t.user_id from transactions t where t.user_id > u.user_id order by t.user_id limit 1)
    from u where u.user_id is not null)
  select user_id from u where user_id is not null")

# The server's query, with the parameters a first page of 100 binds
# (limit 101: the extra row tells whether more follow).
sql() {
  echo "select * from (select id, user_id, amount, currency, txn_date, status, is_anomaly, anomaly_score, window_len, baseline, threshold from transactions where user_id = '$1' and txn_date between '$FROM' and '$TO' and amount between 0 and 10000000000 order by txn_date desc fetch first (101) rows with ties) page order by txn_date desc, id asc limit 101;"
}

rm -rf "$OUT/pgbench" && mkdir -p "$OUT/pgbench"
scripts=()
for u in "${users[@]}"; do sql "$u" >"$OUT/pgbench/$u.sql"; scripts+=(-f "$PWD/$OUT/pgbench/$u.sql"); done

lua=$OUT/transactions.lua
{
  echo "local users = {"
  printf '  "%s",\n' "${users[@]}"
  echo "}"
  cat <<LUA
math.randomseed(os.time())
request = function()
  local user = users[math.random(#users)]
  return wrk.format("GET", "/transactions?user_id=" .. user .. "&from_date=$FROM&to_date=$TO&limit=100")
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT rate=%.1f p50=%.2f p90=%.2f p99=%.2f non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
} >"$lua"

# The server at its default settings (workers: one per core; pool: 8);
# SERVER_ENV adds settings (e.g. "APP_SERVER__WORKERS=1") to try others.
# shellcheck disable=SC2086
start_server "$OUT/server.log" ${SERVER_ENV:-}
curl -fs "localhost:$PORT/transactions?user_id=${users[0]}&limit=1" | grep -q '"transactions"'
wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s "$lua" "http://127.0.0.1:$PORT" >/dev/null # warm-up
pgbench -n -M prepared -c "$CONNECTIONS" -j "$THREADS" -T 3 "${scripts[@]}" "$URL" >/dev/null 2>&1

# This machine's speed drifts by tens of percent from minute to minute, so
# the two measurements alternate, and the medians are compared.
echo "$RUNS rounds of: pgbench -M prepared (the server's SQL, random users), then wrk GET /transactions?limit=100;"
echo "$CONNECTIONS connections and $THREADS client threads each, ${DURATION}s each"
: >"$OUT/rounds.txt"
: >"$OUT/rounds.raw"
for round in $(seq 1 "$RUNS"); do
  rm -rf "$OUT/pgbench-latency" && mkdir -p "$OUT/pgbench-latency"
  (cd "$OUT/pgbench-latency" && pgbench -n -M prepared -c "$CONNECTIONS" -j "$THREADS" -T "$DURATION" -l \
    "${scripts[@]}" "$URL") >"$OUT/pgbench-$round.log" 2>&1
  pg_rate=$(grep -oP 'tps = \K[0-9.]+' "$OUT/pgbench-$round.log" | head -1)
  # pgbench's own latency of each query (its per-transaction log, in us).
  pg_p99=$(cat "$OUT"/pgbench-latency/pgbench_log.* | awk '{print $3}' | sort -n |
    awk '{v[NR] = $1} END {print v[int(NR * 0.99)] / 1000}')
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$lua" "http://127.0.0.1:$PORT" >"$OUT/wrk-$round.log"
  result=$(grep RESULT "$OUT/wrk-$round.log")
  field() { grep -oP "$1=\K[0-9.]+" <<<"$result"; }
  printf "round %d: pgbench %7.0f q/s, p99 %5.2f ms | HTTP %7.0f req/s, p50 %5.2f ms, p90 %5.2f ms, p99 %5.2f ms, non-2xx %d, socket errors %d\n" \
    "$round" "$pg_rate" "$pg_p99" "$(field rate)" "$(field p50)" "$(field p90)" "$(field p99)" "$(field non2xx)" "$(field errors)" \
    | tee -a "$OUT/rounds.txt"
  echo "$pg_rate $(field rate) $(field p50) $(field p99) $pg_p99" >>"$OUT/rounds.raw"
done
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
pg=$(tail -n "$RUNS" "$OUT/rounds.raw" | awk '{print $1}' | median)
http=$(tail -n "$RUNS" "$OUT/rounds.raw" | awk '{print $2}' | median)
p50=$(tail -n "$RUNS" "$OUT/rounds.raw" | awk '{print $3}' | median)
p99=$(tail -n "$RUNS" "$OUT/rounds.raw" | awk '{print $4}' | median)
pg_p99=$(tail -n "$RUNS" "$OUT/rounds.raw" | awk '{print $5}' | median)
printf "median:  pgbench %.0f q/s, p99 %.2f ms | HTTP %.0f req/s, p50 %.2f ms, p99 %.2f ms\n" "$pg" "$pg_p99" "$http" "$p50" "$p99"
echo "ratio of medians: HTTP / pgbench = $(echo "scale=2; $http / $pg" | bc) (target >= 0.80); median p99 $p99 ms (target < 10 ms)"
