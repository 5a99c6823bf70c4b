# Shared by the bench scripts: build the release binary, reach Postgres.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Where benchmark databases are created (a server URL without a database).
BENCH_SERVER=${BENCH_SERVER:-postgres://postgres@127.0.0.1:5432}
OUT=bench/out
# Benchmark seeds warm windows under their own Redis prefix.
export APP_REDIS__KEY_PREFIX=${APP_REDIS__KEY_PREFIX:-txwatch-bench:}
mkdir -p "$OUT"

need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "error: $tool is required (Debian: apt-get install $tool)" >&2; exit 1; }
  done
}

build_release() {
  cargo build --release --locked -q -p txwatch-server --bin txwatch
  BIN=$PWD/target/release/txwatch
}

# recreate_db NAME: an empty database.
recreate_db() {
  psql "$BENCH_SERVER/postgres" -qc "drop database if exists $1 with (force)"
  psql "$BENCH_SERVER/postgres" -qc "create database $1"
}
