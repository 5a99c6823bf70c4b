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

# build_release: the release binary in BIN; BENCH_BIN names another one
# instead (an earlier build, for comparing two builds in the same minutes).
build_release() {
  if [[ -n ${BENCH_BIN:-} ]]; then
    BIN=$(realpath "$BENCH_BIN")
    return
  fi
  cargo build --release --locked -q -p txwatch-server --bin txwatch
  BIN=$PWD/target/release/txwatch
}

# recreate_db NAME: an empty database.
recreate_db() {
  psql "$BENCH_SERVER/postgres" -qc "drop database if exists $1 with (force)"
  psql "$BENCH_SERVER/postgres" -qc "create database $1"
}

# ingest_bodies DIR USERS: the ingest benchmarks' request bodies in DIR: 40
# batches of 1,000 transactions over USERS users (batch-1.json ..
# batch-40.json; 5% large amounts) and the user list as a Lua table
# (users.lua). Seeded, so every run posts the same transactions.
ingest_bodies() {
  python3 - "$1" "$2" <<'PY'
import json, random, sys, uuid
work, users = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(users)]
def amount():
    cents = rng.randint(1000, 50000) if rng.random() > 0.05 else rng.randint(500000, 5000000)
    return f"{cents // 100}.{cents % 100:02d}"
for b in range(40):
    items = [{"user_id": rng.choice(ids), "amount": amount()} for _ in range(1000)]
    with open(f"{work}/batch-{b + 1}.json", "w") as f:
        json.dump({"transactions": items}, f, separators=(",", ":"))
with open(f"{work}/users.lua", "w") as f:
    f.write("users = {\n" + "".join(f'  "{u}",\n' for u in ids) + "}\n")
PY
}
