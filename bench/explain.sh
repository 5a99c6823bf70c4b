#!/usr/bin/env bash
# EXPLAIN (ANALYZE, BUFFERS) of the history query and the users query on the
# bench-query database (run `just bench-query` first to create it), with the
# server's exact SQL as a prepared statement under its generic plan, the plan
# a long-running server ends up using. Since V3 `transactions` is
# hash-partitioned by user_id: a history page scans one partition's
# ix_user_date_amount_id ("Subplans Removed: 15" under the generic plan; the
# test partitioning::the_history_query_reads_one_partition_through_ix_user_date_amount_id
# checks it), and the users listing probes every partition's index.
source "$(dirname "$0")/common.sh"
URL=$BENCH_SERVER/${BENCH_DB:-txwatch_bench_query}
user=$(psql "$URL" -tAc "select user_id from transactions limit 1")
cursor=$(psql "$URL" -tAc "select txn_date || '|' || id from transactions where user_id = '$user' order by txn_date desc, id asc offset 5000 limit 1")
select="select id, user_id, amount, currency, txn_date, status, is_anomaly, anomaly_score, window_len, baseline, threshold, simulated from transactions"
echo "rows: $(psql "$URL" -tAc 'select count(*) from transactions'), users: $(psql "$URL" -tAc 'select count(distinct user_id) from transactions'), partitions: $(psql "$URL" -tAc "select count(*) from pg_inherits where inhparent = 'transactions'::regclass")"
psql "$URL" -qAt <<SQL
set plan_cache_mode = force_generic_plan;
prepare first_page(uuid, timestamptz, timestamptz, numeric, numeric, bigint) as
  select * from ($select where user_id = \$1 and txn_date between \$2 and \$3 and amount between \$4 and \$5
  order by txn_date desc fetch first (\$6) rows with ties) page order by txn_date desc, id asc limit \$6;
prepare next_page(uuid, timestamptz, timestamptz, numeric, numeric, timestamptz, uuid, bigint) as
  select * from ($select where user_id = \$1 and txn_date between \$2 and \$3 and amount between \$4 and \$5
  and txn_date <= \$6 and (txn_date < \$6 or id > \$7)
  order by txn_date desc fetch first (\$8) rows with ties) page order by txn_date desc, id asc limit \$8;
prepare users as with recursive users(user_id) as (
  (select user_id from transactions order by user_id limit 1) union all
  select (select t.user_id from transactions t where t.user_id > users.user_id order by t.user_id limit 1)
  from users where users.user_id is not null)
  select user_id from users where user_id is not null;
\echo == GET /transactions, first page (limit 100, a year)
explain (analyze, buffers, costs off) execute first_page('$user', now() - interval '365 days', now(), 0, 10000000000, 101);
\echo == GET /transactions, a page after a cursor 5,000 rows in
explain (analyze, buffers, costs off) execute next_page('$user', now() - interval '365 days', now(), 0, 10000000000, '${cursor%%|*}', '${cursor##*|}', 101);
\echo == GET /users
explain (analyze, buffers, costs off) execute users;
SQL
