#!/usr/bin/env bash
# A throwaway Redis Cluster on this machine: 3 masters with 1 replica each,
# redis-server's own cluster mode, in a temporary folder, on free local ports.
#
#   scripts/redis-cluster.sh up [DIR]     start it; prints `export APP_REDIS__CLUSTER_NODES=...`
#   scripts/redis-cluster.sh down [DIR]   stop it and remove DIR
#   scripts/redis-cluster.sh nodes [DIR]  print the node URLs of a running one
#
# DIR defaults to $REDIS_CLUSTER_DIR, else /tmp/txwatch-redis-cluster. Ports:
# the first six free ones from $REDIS_CLUSTER_BASE_PORT (default 7100) up
# (each node also uses port+10000 for the cluster bus, which is checked too).
# cluster-node-timeout is 2000 ms so a killed master is replaced by its
# replica within a few seconds (the fault tests rely on it). Never touches the
# machine's own Redis.
set -euo pipefail

cmd="${1:-up}"
dir="${2:-${REDIS_CLUSTER_DIR:-/tmp/txwatch-redis-cluster}}"
base="${REDIS_CLUSTER_BASE_PORT:-7100}"
nodes_total=6

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

node_urls() {
  local urls=()
  for port in $(cat "$dir/ports"); do urls+=("redis://127.0.0.1:$port"); done
  (IFS=,; echo "${urls[*]}")
}

case "$cmd" in
  up)
    command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 1; }
    if [ -f "$dir/ports" ] && redis-cli -p "$(head -1 "$dir/ports")" cluster info 2>/dev/null | grep -q cluster_state:ok; then
      echo "export APP_REDIS__CLUSTER_NODES=$(node_urls)"
      exit 0
    fi
    mkdir -p "$dir"
    ports=()
    port="$base"
    while [ "${#ports[@]}" -lt "$nodes_total" ]; do
      if [ "$port" -gt 55000 ]; then echo "no free ports" >&2; exit 1; fi
      if port_free "$port" && port_free $((port + 10000)); then ports+=("$port"); fi
      port=$((port + 1))
    done
    printf '%s\n' "${ports[@]}" >"$dir/ports"
    for port in "${ports[@]}"; do
      mkdir -p "$dir/$port"
      redis-server --port "$port" --bind 127.0.0.1 --daemonize yes \
        --dir "$dir/$port" --pidfile "$dir/$port/redis.pid" --logfile "$dir/$port/redis.log" \
        --cluster-enabled yes --cluster-config-file "$dir/$port/nodes.conf" \
        --cluster-node-timeout 2000 --save "" --appendonly no
    done
    for port in "${ports[@]}"; do
      for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    done
    hosts=()
    for port in "${ports[@]}"; do hosts+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${hosts[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 \
      || { cat "$dir/create.log" >&2; exit 1; }
    for _ in $(seq 1 100); do
      ok=1
      for port in "${ports[@]}"; do
        redis-cli -p "$port" cluster info 2>/dev/null | grep -q cluster_state:ok || ok=0
        # every node sees three replicas, and each replica is in sync
        [ "$(redis-cli -p "$port" cluster nodes 2>/dev/null | grep -c slave)" = 3 ] || ok=0
        if redis-cli -p "$port" info replication 2>/dev/null | grep -q role:slave; then
          redis-cli -p "$port" info replication | grep -q master_link_status:up || ok=0
        fi
      done
      [ "$ok" = 1 ] && break
      sleep 0.2
    done
    [ "$ok" = 1 ] || { echo "the cluster did not reach cluster_state:ok" >&2; exit 1; }
    echo "export APP_REDIS__CLUSTER_NODES=$(node_urls)"
    ;;
  down)
    if [ -f "$dir/ports" ]; then
      for port in $(cat "$dir/ports"); do
        if [ -f "$dir/$port/redis.pid" ]; then
          kill "$(cat "$dir/$port/redis.pid")" 2>/dev/null || true
        fi
      done
      sleep 0.3
    fi
    rm -rf "$dir"
    ;;
  nodes)
    node_urls
    ;;
  *)
    echo "usage: $0 up|down|nodes [DIR]" >&2
    exit 2
    ;;
esac
