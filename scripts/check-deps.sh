#!/usr/bin/env bash
# `domain` is pure: its normal dependency tree must not reach IO crates.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(cargo tree --locked -p txwatch-domain -e normal --prefix none --format '{p}')
bad=$(grep -Ei '^(tokio|tokio-postgres|postgres|postgres-types|redis|deadpool|actix)' <<<"$tree" || true)
if [ -n "$bad" ]; then
  echo "error: txwatch-domain must stay pure, but depends on:" >&2
  sort -u <<<"$bad" >&2
  exit 1
fi
echo "domain is pure: $(sort -u <<<"$tree" | wc -l) crates, none of them IO"
