#!/usr/bin/env bash
# Server instructions per transaction on the batch route, counted by
# callgrind: unlike the rates of `just bench-ingest`, the count does not move
# with what else the machine is doing, so it shows small changes of the
# server's own cost (Postgres and Redis are not counted). The release server
# runs under callgrind on a fresh database; 40 batches of 1,000 transactions
# over 10,000 users warm every window, then the count covers the next 40
# batches, sent one at a time. BIN=path measures another build.
# MODE=single counts single posts instead: after the same warm-up, 4,000
# `POST /transactions` over one kept-alive connection, one at a time (so
# each is a group commit of one: the route's whole cost per post).
source "$(dirname "$0")/common.sh"
need psql redis-cli python3 curl valgrind callgrind_control
if [[ -n ${BIN:-} ]]; then BIN=$(realpath "$BIN"); else build_release; fi

USERS=${USERS:-10000}
bench_env instructions
work=$OUT/instructions
rm -rf "$work" && mkdir -p "$work"

recreate_db $DB

ingest_bodies "$work" "$USERS"

APP_LOG__FILTER=warn APP_SERVER__HOST=127.0.0.1 \
  valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" "$BIN" serve >"$work/server.log" 2>&1 &
server=$!
at_exit "kill $server 2>/dev/null"
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done

send_all() {
  for i in $(seq 1 40); do
    curl -sf -o /dev/null -H 'Content-Type: application/json' \
      --data-binary @"$work/batch-$i.json" "http://127.0.0.1:$PORT/transactions/batch"
  done
}
stored() { psql "$URL" -tAc "select count(*) from transactions"; }
# 4,000 single posts over one connection, one after another, from the
# batches' own items.
send_singles() {
  python3 - "$work" "$PORT" <<'PY'
import http.client, json, sys
work, port = sys.argv[1], int(sys.argv[2])
items = []
for i in range(1, 5):
    with open(f"{work}/batch-{i}.json") as f:
        items += json.load(f)["transactions"]
conn = http.client.HTTPConnection("127.0.0.1", port)
for item in items:
    conn.request("POST", "/transactions", json.dumps(item), {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    assert response.status == 201, response.status
PY
}
send_all
callgrind_control -z $server >/dev/null 2>&1
before=$(stored)
if [[ ${MODE:-batch} == single ]]; then send_singles; else send_all; fi
callgrind_control -d $server >/dev/null 2>&1
after=$(stored)
kill -INT $server; wait $server 2>/dev/null || true
counted=$(grep -h '^summary:' "$work"/callgrind.out.1 | awk '{print $2}')
rows=$((after - before))
if [[ ${MODE:-batch} == single ]]; then
  echo "server instructions for $rows transactions (single posts, one at a time, after a warm-up of 40 batches): $counted"
else
  echo "server instructions for $rows transactions (40 batches of 1,000 after a warm-up of 40): $counted"
fi
echo "per transaction: $((counted / rows))"
