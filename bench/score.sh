#!/usr/bin/env bash
# Throughput of the CSV scoring tool (crates/domain/examples/score.rs), stdin
# to stdout, release build: 5,000,000 rows of one series with each detector,
# then 5,000,000 rows spread over 1,000 entities (--entities). Inputs are
# generated once, deterministically, into bench/out/; delete them to remake
# them. Each figure is the best of RUNS wall-clock runs (default 3), process
# start-up included, output to /dev/null.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROWS=5000000
ENTITIES=1000
RUNS=${RUNS:-3}
OUT=bench/out
SERIES=$OUT/series.csv
BY_ENTITY=$OUT/entities.csv
mkdir -p "$OUT"

cargo build --release --locked -q -p txwatch-domain --example score
BIN=$PWD/target/release/examples/score

# generate ROWS ENTITIES: a level around 100 with noise (sum of three
# uniforms), 1 row in 1,000 a spike of 5-10x; entity mode picks one of
# ENTITIES users per row. Park-Miller's generator keeps the numbers exact in
# any awk's doubles, so the file is the same everywhere.
generate() {
  awk -v rows="$1" -v entities="$2" 'BEGIN {
    seed = 20240101
    print (entities > 0 ? "entity,timestamp,value" : "timestamp,value")
    for (i = 0; i < rows; i++) {
      value = 100 + 20 * (rnd() + rnd() + rnd() - 1.5)
      if (rnd() < 0.001) value *= 5 + 5 * rnd()
      ts = 1704067200000 + i * 1000
      if (entities > 0)
        printf "user-%04d,%d,%.2f\n", int(rnd() * entities), ts, value
      else
        printf "%d,%.2f\n", ts, value
    }
  }
  function rnd() { seed = (16807 * seed) % 2147483647; return seed / 2147483647 }'
}

[[ -s $SERIES ]] || generate "$ROWS" 0 >"$SERIES"
[[ -s $BY_ENTITY ]] || generate "$ROWS" "$ENTITIES" >"$BY_ENTITY"

# run LABEL INPUT ARGS...: best wall time of RUNS, then rows/s.
run() {
  local label=$1 input=$2
  shift 2
  # One output row per input row, header included.
  local lines
  lines=$("$BIN" "$@" <"$input" | wc -l)
  if ((lines != ROWS + 1)); then
    echo "error: $label wrote $lines lines for $((ROWS + 1))" >&2
    exit 1
  fi
  local best="" wall
  for _ in $(seq "$RUNS"); do
    wall=$({ /usr/bin/time -f %e "$BIN" "$@" <"$input" >/dev/null; } 2>&1)
    if [[ -z $best ]] || awk -v a="$wall" -v b="$best" 'BEGIN { exit !(a < b) }'; then
      best=$wall
    fi
  done
  awk -v label="$label" -v rows="$ROWS" -v wall="$best" 'BEGIN {
    printf "%-40s %9d rows  %6.2f s  %10.0f rows/s\n", label, rows, wall, rows / wall
  }'
}

echo "score example, $(nproc) cores, $(du -h "$SERIES" | cut -f1) series / $(du -h "$BY_ENTITY" | cut -f1) by entity; best of $RUNS"
for detector in rolling_mean zscore robust ewma seasonal relative_entropy knn auto; do
  run "$detector" "$SERIES" --detector "$detector"
done
for detector in rolling_mean zscore robust ewma seasonal relative_entropy knn auto; do
  run "$detector --entities ($ENTITIES entities)" "$BY_ENTITY" --entities --detector "$detector"
done
