#!/usr/bin/env bash
# Ingest throughput and latency, end to end (validated, window step,
# scored, stored, published), for 10,000 users:
#   batch:  POST /transactions/batch, 1,000 transactions per request
#   single: POST /transactions at 32 connections, p50/p99 latency
# Fresh database and Redis prefix; a warm-up gives every user a window
# first. Runs each RUNS times, alternating, and reports medians; checks
# afterwards that every acknowledged transaction is stored and published.
source "$(dirname "$0")/common.sh"
need psql wrk redis-cli python3 curl
build_release

USERS=${USERS:-10000}
BATCH_CONNECTIONS=${BATCH_CONNECTIONS:-4}
SINGLE_CONNECTIONS=${SINGLE_CONNECTIONS:-32}
DURATION=${DURATION:-15}
RUNS=${RUNS:-3}
bench_env ingest
work=$OUT/ingest
rm -rf "$work" && mkdir -p "$work"

recreate_db $DB

# Request bodies: 40 batches of 1,000 transactions over USERS users, and the
# user list for single posts.
ingest_bodies "$work" "$USERS"

ingest_scripts "$work"

start_server "$work/server.log"
server=$SERVER

stored() { psql "$URL" -tAc "select count(*) from transactions"; }
# Events ever added, summed over the event shards (`${PREFIX}events:{0}` ...).
published() {
    local shard total=0 added
    for shard in $(seq 0 $(( ${APP_REDIS__EVENT_SHARDS:-8} - 1 ))); do
        added=$(redis-cli -u "$REDIS" xinfo stream "${PREFIX}events:{$shard}" 2>/dev/null | awk 'f{print; exit} /entries-added/{f=1}')
        total=$(( total + ${added:-0} ))
    done
    echo "$total"
}

echo "warm-up: every user's window built once"
wrk -t2 -c"$BATCH_CONNECTIONS" -d5s -s "$work/batch.lua" "http://127.0.0.1:$PORT" >/dev/null

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Each round starts from a checkpointed database, so it does not pay for
# writing out what the round before it stored (a batch round leaves about a
# million rows' worth of dirty pages and WAL behind). CHECKPOINT=0 skips it.
settle() { if [ "${CHECKPOINT:-1}" != 0 ]; then psql "$URL" -qc checkpoint; fi; }
for run in $(seq "$RUNS"); do
  settle
  before=$(stored)
  wrk -t2 -c"$BATCH_CONNECTIONS" -d"${DURATION}s" -s "$work/batch.lua" "http://127.0.0.1:$PORT" >"$work/batch-$run.txt"
  after=$(stored)
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/batch-$run.txt")
  p99=$(awk '/99%/ {print $2}' "$work/batch-$run.txt")
  echo "run $run batch:  $(echo "$rps * 1000" | bc | cut -d. -f1) transactions/s acknowledged, $(( (after - before) / DURATION )) stored/s, $(grep non-200 "$work/batch-$run.txt")"
  echo "$rps * 1000" | bc >>"$work/batch-tps"

  settle
  wrk -t2 -c"$SINGLE_CONNECTIONS" -d"${DURATION}s" --latency -s "$work/single.lua" "http://127.0.0.1:$PORT" >"$work/single-$run.txt"
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/single-$run.txt")
  p50=$(awk '/^ +50%/ {print $2}' "$work/single-$run.txt")
  p99=$(awk '/^ +99%/ {print $2}' "$work/single-$run.txt")
  echo "run $run single: $rps req/s, p50 $p50, p99 $p99, $(grep non-2xx "$work/single-$run.txt")"
  echo "$rps" >>"$work/single-rps"
  echo "$p50" | sed 's/ms//' >>"$work/single-p50"
  echo "$p99" | sed 's/ms//' >>"$work/single-p99"
done

sleep 1
total=$(stored)
events=$(published)
rss=$(awk '/VmHWM/ {printf "%.1f MB", $2 / 1024}' /proc/$server/status)
echo
echo "== ingest, $USERS users, medians of $RUNS runs =="
echo "batch (1,000 per request, $BATCH_CONNECTIONS connections): $(median <"$work/batch-tps" | cut -d. -f1) transactions/s"
echo "single ($SINGLE_CONNECTIONS connections): $(median <"$work/single-rps") req/s, p50 $(median <"$work/single-p50") ms, p99 $(median <"$work/single-p99") ms"
echo "stored $total rows, published $events events (equal: every stored transaction was published)"
echo "server peak RSS: $rss"
[ "$total" = "$events" ] || { echo "error: stored and published differ" >&2; exit 1; }
