# Shared by the bench scripts: build the release binary, give the run its
# own database, port, Redis database and key prefix (bench_env), start and
# stop the server, clean up at exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Where benchmark databases are created (a server URL without a database).
BENCH_SERVER=${BENCH_SERVER:-postgres://postgres@127.0.0.1:5432}
# The Redis server (host and port; bench_env picks the database number).
BENCH_REDIS=${BENCH_REDIS:-redis://127.0.0.1:6379}
OUT=bench/out
mkdir -p "$OUT"
# The caller's .env or environment must not leak into a benchmark's server.
unset APP_CONFIG_FILE APP_HTTP__API_KEY DATABASE_URL REDIS_URL PORT APP_REDIS__KEY_PREFIX

# at_exit COMMAND: run COMMAND when the script exits, after the ones
# registered before it (one EXIT trap runs them all, last first).
AT_EXIT=()
at_exit() { AT_EXIT=("$1" "${AT_EXIT[@]}"); }
run_at_exit() { for command in "${AT_EXIT[@]}"; do eval "$command" || true; done; }
trap run_at_exit EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# bench_env NAME: this run's own places, exported for the server:
#   PORT       a free port (BENCH_PORT chooses one);
#   DB, URL    database txwatch_bench_NAME on BENCH_SERVER (BENCH_DB
#              chooses another; recreate_db or the script decides whether
#              it starts empty), DATABASE_URL=URL;
#   REDIS      a Redis database of this run's own: the first of 1..15 that is
#              empty, claimed for the run and released at exit
#              (BENCH_REDIS_DB chooses one), REDIS_URL=REDIS;
#   PREFIX     a key prefix unique to the run, APP_REDIS__KEY_PREFIX=PREFIX;
#              its keys are unlinked at exit.
bench_env() {
  local name=$1
  PORT=${BENCH_PORT:-$(free_port)}
  DB=${BENCH_DB:-txwatch_bench_$name}
  URL=$BENCH_SERVER/$DB
  claim_redis_db
  REDIS=$BENCH_REDIS/$REDIS_DB
  PREFIX="txwatch-bench-$name:$(python3 -c 'import secrets; print(secrets.token_hex(4))'):"
  export PORT DATABASE_URL=$URL REDIS_URL=$REDIS APP_REDIS__KEY_PREFIX=$PREFIX
  at_exit 'redis-cli -u "$REDIS" --scan --pattern "$PREFIX*" | xargs -r redis-cli -u "$REDIS" unlink >/dev/null'
}

# claim_redis_db: REDIS_DB, an empty Redis database claimed by a key only
# this run holds (so two benchmarks at once never share one).
claim_redis_db() {
  local claim="txwatch-bench-claim" candidates
  if [[ -n ${BENCH_REDIS_DB:-} ]]; then candidates=$BENCH_REDIS_DB; else candidates=$(seq 1 15); fi
  for n in $candidates; do
    if [[ -n ${BENCH_REDIS_DB:-} || $(redis-cli -u "$BENCH_REDIS/$n" dbsize) == 0 ]] &&
       [[ $(redis-cli -u "$BENCH_REDIS/$n" set "$claim" "$$" nx ex 86400) == OK ]]; then
      REDIS_DB=$n
      at_exit "[[ \$(redis-cli -u '$BENCH_REDIS/$n' get $claim) == $$ ]] && redis-cli -u '$BENCH_REDIS/$n' del $claim >/dev/null"
      return
    fi
  done
  echo "error: no empty Redis database among $candidates on $BENCH_REDIS to claim (set BENCH_REDIS_DB)" >&2
  exit 1
}

# start_server LOG [ENV=VALUE ...]: `txwatch serve` in the background with
# this run's places plus the given settings, on 127.0.0.1; SERVER is its
# pid. Stopped at exit. Waits until it answers /health.
start_server() {
  local log=$1
  shift
  env APP_LOG__FILTER=warn APP_SERVER__HOST=127.0.0.1 "$@" "$BIN" serve >"$log" 2>&1 &
  SERVER=$!
  at_exit "kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null"
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return
    kill -0 "$SERVER" 2>/dev/null || { echo "error: the server exited; see $log" >&2; exit 1; }
    sleep 0.1
  done
  echo "error: the server did not answer within 60 s; see $log" >&2
  exit 1
}

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

# ingest_scripts DIR: wrk scripts over the bodies of ingest_bodies DIR:
# batch.lua posts the 40 batches in turn, single.lua one transaction of a
# random user per request; each prints its count of failed requests.
ingest_scripts() {
  local work=$1
  cat >"$work/batch.lua" <<LUA
local bodies = {}
for i = 1, 40 do
  local f = assert(io.open("$work/batch-" .. i .. ".json"))
  bodies[i] = f:read("*a")
  f:close()
end
local headers = { ["Content-Type"] = "application/json" }
local n = 0
local bad = 0
request = function()
  n = n % #bodies + 1
  return wrk.format("POST", "/transactions/batch", headers, bodies[n])
end
response = function(status)
  if status ~= 200 then bad = bad + 1 end
end
done = function(summary)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("non-200: %d\n", errors))
end
LUA
  cat >"$work/single.lua" <<LUA
dofile("$work/users.lua")
math.randomseed(11)
local headers = { ["Content-Type"] = "application/json" }
request = function()
  local body = string.format('{"user_id":"%s","amount":"%d.%02d"}',
    users[math.random(#users)], math.random(10, 500), math.random(0, 99))
  return wrk.format("POST", "/transactions", headers, body)
end
done = function(summary)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("non-2xx: %d\n", errors))
end
LUA
}
