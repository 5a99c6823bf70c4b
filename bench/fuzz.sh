#!/usr/bin/env bash
# Fuzzes the HTTP API from its own OpenAPI document with Schemathesis.
#
# Builds the release server and starts it on a free port with a fresh
# database (txwatch_fuzz, created and migrated by the server) and a Redis key
# prefix of its own, seeds a little history, then lets Schemathesis generate
# requests for every operation except the two SSE streams (they never end)
# and check each answer: no 5xx, a documented status, a documented content
# type, a body matching the documented schema. At the end it stops the
# server, unlinks the prefix's Redis keys and drops the database, prints the
# number of requests and failures, and exits non-zero on any failure.
#
# Options (environment): FUZZ_EXAMPLES (examples per operation and phase,
# 150), FUZZ_SEED (Schemathesis seed, 1), FUZZ_WORKERS (2), FUZZ_CHECKS
# (Schemathesis checks, comma-separated; `all` adds stricter ones such as
# negative_data_rejection), FUZZ_PORT (a free
# port), FUZZ_BIN (a txwatch binary to fuzz instead of building the release
# one). Schemathesis is installed from PyPI into target/fuzz-venv when
# missing.
source "$(dirname "$0")/common.sh"
need psql redis-cli python3 curl

EXAMPLES=${FUZZ_EXAMPLES:-150}
SEED=${FUZZ_SEED:-1}
WORKERS=${FUZZ_WORKERS:-2}
CHECKS=${FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance}
SCHEMATHESIS=${SCHEMATHESIS_VERSION:-4.32.5}
BENCH_PORT=${FUZZ_PORT:-${BENCH_PORT:-}}
bench_env fuzz
VENV=$PWD/target/fuzz-venv
BASE=http://127.0.0.1:$PORT
work=$OUT/fuzz
rm -rf "$work" && mkdir -p "$work"

if [[ ! -x $VENV/bin/schemathesis ]] || [[ $("$VENV/bin/schemathesis" --version) != *"$SCHEMATHESIS"* ]]; then
  echo "installing schemathesis $SCHEMATHESIS into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS"
fi
if [[ -n ${FUZZ_BIN:-} ]]; then BIN=$(realpath "$FUZZ_BIN"); else build_release; fi

at_exit 'psql "$BENCH_SERVER/postgres" -qc "drop database if exists $DB with (force)" 2>/dev/null'

PGOPTIONS=--client-min-messages=warning psql "$BENCH_SERVER/postgres" -qc "drop database if exists $DB with (force)"
export APP_SERVER__WORKERS=2 RUST_LOG=${RUST_LOG:-warn}
start_server "$work/server.log"
server_pid=$SERVER
for _ in $(seq 100); do
  curl -fs "$BASE/health" >/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; echo "error: the server did not start" >&2; exit 1; }
  sleep 0.2
done
curl -fs "$BASE/health" >/dev/null || { echo "error: the server did not answer" >&2; exit 1; }

# A little history: 5 users x 200 rows, and 150 rows over the past 20 days
# for the user that the document gives as the example of `user_id`, so the
# generated queries that use it read full pages of scored transactions.
"$BIN" seed --users 5 --rows-per-user 200 --days 30 --seed 1 --quiet >"$work/seed.log"
example_user=$(curl -fs "$BASE/openapi.json" | python3 -c '
import json, sys
params = json.load(sys.stdin)["paths"]["/transactions"]["get"]["parameters"]
print(next(p["example"] for p in params if p["name"] == "user_id"))')
python3 - "$example_user" >"$work/example-batch.json" <<'PY'
import datetime, json, random, sys
rng = random.Random(1)
now = datetime.datetime.now(datetime.timezone.utc)
items = []
for i in range(150):
    at = now - datetime.timedelta(days=20) + datetime.timedelta(hours=3 * i)
    cents = rng.randint(1000, 50000) if i % 10 else rng.randint(500000, 900000)
    items.append({"user_id": sys.argv[1], "amount": f"{cents // 100}.{cents % 100:02d}",
                  "txn_date": at.strftime("%Y-%m-%dT%H:%M:%SZ")})
json.dump({"transactions": items}, sys.stdout)
PY
curl -fs -o /dev/null -X POST "$BASE/transactions/batch" -H 'Content-Type: application/json' \
  --data-binary "@$work/example-batch.json"

echo "fuzzing $BASE/openapi.json: $EXAMPLES examples per operation, seed $SEED"
set +e
# From the work folder, which starts empty: Schemathesis keeps the failures
# it found in ./.schemathesis and replays them first on the next run.
(
  cd "$work"
  "$VENV/bin/schemathesis" run "$BASE/openapi.json" \
    --checks "$CHECKS" \
    --exclude-path-regex '^/sse/' \
    --max-examples "$EXAMPLES" --seed "$SEED" --workers "$WORKERS" \
    --request-timeout 10 --max-redirects 0 \
    --suppress-health-check all --generation-database none --no-color \
    --report har,junit --report-har-path requests.har --report-junit-path junit.xml \
    >schemathesis.txt 2>&1
)
status=$?
set -e
sed -n '/SUMMARY/,$p' "$work/schemathesis.txt"

# Requests made and failures, from the reports.
python3 - "$work" "$status" <<'PY'
import collections, glob, json, sys, xml.etree.ElementTree as ET
work, status = sys.argv[1], int(sys.argv[2])
entries = []
for path in glob.glob(f"{work}/requests.har"):
    with open(path) as f:
        entries += json.load(f)["log"]["entries"]
by_status = collections.Counter(e["response"]["status"] for e in entries)
failures = 0
for path in glob.glob(f"{work}/junit.xml"):
    root = ET.parse(path).getroot()
    failures += sum(len(case.findall("failure")) + len(case.findall("error")) for case in root.iter("testcase"))
statuses = ", ".join(f"{code}: {n}" for code, n in sorted(by_status.items()))
print(f"requests: {len(entries)} ({statuses})")
print(f"failures: {failures} (schemathesis exit code {status})")
server_errors = sum(n for code, n in by_status.items() if code >= 500)
sys.exit(1 if status != 0 or failures or server_errors or len(entries) < 1000 else 0)
PY
