#!/usr/bin/env bash
# Instructions per value of each detector (crates/domain/examples/observe_loop.rs),
# counted by callgrind: the count for N values less the count for none, over
# N. Unlike times, instructions do not drift with the machine's load, so
# they show a change in a detector's cost on a shared machine. Needs valgrind.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${N:-100000}
cargo build --release --locked -q -p txwatch-domain --example observe_loop
BIN=$PWD/target/release/examples/observe_loop
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

count() { # DETECTOR VALUES: instructions of one run
  valgrind --tool=callgrind --callgrind-out-file="$OUT/cg" "$BIN" "$1" "$2" 2>&1 >/dev/null |
    awk '/Collected/ { print $4 }'
}

echo "instructions per value, $N values (callgrind; the loop without a detector subtracted)"
base=$(count none "$N")
for detector in rolling_mean zscore robust ewma seasonal relative_entropy knn auto; do
  full=$(count "$detector" "$N")
  awk -v d="$detector" -v b="$base" -v f="$full" -v n="$N" \
    'BEGIN { printf "%-18s %8.0f\n", d, (f - b) / n }'
done
