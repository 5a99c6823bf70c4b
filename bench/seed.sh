#!/usr/bin/env bash
# Seeding speed and peak memory: 150,000 rows (the old loader took 15.2 s and
# 635 MB for these) and 10M rows. Each run starts from an empty database.
source "$(dirname "$0")/common.sh"
need psql bc
build_release
bench_env seed

run() { # label users rows_per_user
  local db=txwatch_bench_seed
  recreate_db $db
  DATABASE_URL=$BENCH_SERVER/$db $BIN migrate >/dev/null 2>&1
  local log=$OUT/seed-$2x$3.log
  DATABASE_URL=$BENCH_SERVER/$db APP_LOG__FILTER=warn \
    /usr/bin/time -f "wall=%e rss_kb=%M" "$BIN" seed --users "$2" --rows-per-user "$3" --seed 1 --quiet \
    >"$log" 2>&1
  local rows rate wall rss
  rows=$(grep -oP 'seeded \K[0-9]+' "$log")
  rate=$(grep -oP '[0-9]+(?= rows/s)' "$log")
  wall=$(grep -oP 'wall=\K[0-9.]+' "$log")
  rss=$(grep -oP 'rss_kb=\K[0-9]+' "$log")
  printf "%-22s run %d: %10s rows  %7.2f s wall  %9s rows/s  peak RSS %6.1f MB\n" \
    "$1" "$4" "$rows" "$wall" "$rate" "$(echo "$rss / 1024" | bc -l)"
  echo "$rate $wall $rss" >>"$OUT/seed-$2x$3.runs"
  psql "$BENCH_SERVER/postgres" -qc "drop database if exists $db with (force)"
}

median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

# This machine's speed drifts by tens of percent between minutes: each size
# runs RUNS times and the medians are reported.
RUNS=${RUNS:-3}
echo "txwatch seed, 2 COPY workers, $(nproc) cores; rows/s counts generate+score+COPY, wall includes start-up"
for size in "150k (10 x 15,000)|10|15000" "10M (100 x 100,000)|100|100000"; do
  IFS='|' read -r label users rows <<<"$size"
  rm -f "$OUT/seed-${users}x${rows}.runs"
  for run_number in $(seq 1 "$RUNS"); do run "$label" "$users" "$rows" "$run_number"; done
  runs=$OUT/seed-${users}x${rows}.runs
  printf "%-22s median: %.0f rows/s, %.2f s wall, peak RSS %.1f MB (max %.1f MB)\n" "$label" \
    "$(awk '{print $1}' "$runs" | median)" "$(awk '{print $2}' "$runs" | median)" \
    "$(awk '{print $3 / 1024}' "$runs" | median)" "$(awk '{print $3 / 1024}' "$runs" | sort -n | tail -1)"
done
