#!/usr/bin/env bash
# EXPLAIN (ANALYZE, BUFFERS) of the history query and the users query on the
# bench-query database (run `just bench-query` first to create it).
source "$(dirname "$0")/common.sh"
URL=$BENCH_SERVER/txwatch_bench_query
user=$(psql "$URL" -tAc "select user_id from transactions limit 1")
FROM=$(date -u -d '365 days ago' +%Y-%m-%dT%H:%M:%SZ)
TO=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "rows: $(psql "$URL" -tAc 'select count(*) from transactions')"
echo "== GET /transactions (first page, limit 100)"
psql "$URL" -qAtc "explain (analyze, buffers, costs off) select id, user_id, amount, currency, txn_date, status, is_anomaly, anomaly_score, window_len, window_mean, threshold from transactions where user_id = '$user' and txn_date between '$FROM' and '$TO' and amount between 0 and 10000000000 order by txn_date desc, id asc limit 101"
last=$(psql "$URL" -tAc "select txn_date || '|' || id from transactions where user_id = '$user' order by txn_date desc, id asc offset 5000 limit 1")
echo "== GET /transactions (a later page, after a cursor)"
psql "$URL" -qAtc "explain (analyze, buffers, costs off) select id, user_id, amount, currency, txn_date, status, is_anomaly, anomaly_score, window_len, window_mean, threshold from transactions where user_id = '$user' and txn_date between '$FROM' and '$TO' and amount between 0 and 10000000000 and txn_date <= '${last%%|*}' and (txn_date < '${last%%|*}' or id > '${last##*|}') order by txn_date desc, id asc limit 101"
echo "== GET /users"
psql "$URL" -qAtc "explain (analyze, buffers, costs off) with recursive users(user_id) as ((select user_id from transactions order by user_id limit 1) union all select (select t.user_id from transactions t where t.user_id > users.user_id order by t.user_id limit 1) from users where users.user_id is not null) select user_id from users where user_id is not null"
