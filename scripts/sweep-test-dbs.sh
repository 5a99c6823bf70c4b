#!/usr/bin/env bash
# Drops test_<uuid> databases left behind by interrupted test runs.
set -euo pipefail
url=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
dbs=$(psql "$url" -tAc "select datname from pg_database where datname ~ '^test_[0-9a-f]{32}$'")
for db in $dbs; do psql "$url" -qc "drop database if exists $db with (force)"; done
echo "dropped $(wc -w <<<"$dbs") test databases"
