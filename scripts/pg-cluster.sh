#!/usr/bin/env bash
# A PostgreSQL primary with one streaming standby of its own, in a temporary
# folder on free local ports, for the read-replica tests and for trying
# APP_DATABASE__READ_URLS by hand. Never touches the machine's own
# PostgreSQL (port 5432) or its configuration.
#
#   scripts/pg-cluster.sh start [DIR]     create DIR (default: a new temp folder),
#                                         init a primary, clone a standby with
#                                         pg_basebackup -R, start both, wait until
#                                         the standby streams; print the URLs and
#                                         write them to DIR/env
#   scripts/pg-cluster.sh stop-standby DIR    stop the standby (fast shutdown)
#   scripts/pg-cluster.sh start-standby DIR   start it again, wait until it streams
#   scripts/pg-cluster.sh status DIR          who runs, and the replication state
#   scripts/pg-cluster.sh stop DIR            stop both and delete DIR
#
# Ports: the first free ones from a random point of PG_CLUSTER_PORTS
# (default 20000-29999). Runs the PostgreSQL binaries as the `postgres` OS
# user (initdb refuses root): directly when run as it, else by runuser (as
# root) or sudo. PG_BIN overrides /usr/lib/postgresql/<newest>/bin.
set -euo pipefail

die() { echo "pg-cluster: $*" >&2; exit 1; }

pg_bin() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  local version
  version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1)
  [ -n "$version" ] || die "no PostgreSQL under /usr/lib/postgresql (set PG_BIN)"
  echo "/usr/lib/postgresql/$version/bin"
}
BIN=$(pg_bin)

# Runs a command as the postgres OS user.
as_postgres() {
  if [ "$(id -un)" = postgres ]; then
    "$@"
  elif [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    sudo -n -u postgres -- "$@"
  fi
}

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A free port from PG_CLUSTER_PORTS, starting at a random point so that
# clusters started together rarely try the same one (a start that loses the
# race picks again).
free_port() {
  local range=${PG_CLUSTER_PORTS:-20000-29999}
  local low=${range%-*} high=${range#*-}
  local span=$((high - low + 1)) start=$((RANDOM * 32768 + RANDOM))
  local i port
  for ((i = 0; i < span; i++)); do
    port=$((low + (start + i) % span))
    if port_free "$port"; then
      echo "$port"
      return
    fi
  done
  die "no free port in $range"
}

sql() { # port, query
  as_postgres "$BIN/psql" -h 127.0.0.1 -p "$1" -U postgres -d postgres -tAqc "$2"
}

# Starts the server in $1 on a free port, picking another if the chosen one
# was taken meanwhile; echoes the port.
start_on_free_port() {
  local dir=$1 name=$2 attempt port
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    # The last `port` line wins.
    echo "port = $port" | as_postgres tee -a "$dir/postgresql.auto.conf" >/dev/null
    if as_postgres "$BIN/pg_ctl" -D "$dir" -l "$dir/../$name.log" -w -t 60 start >/dev/null; then
      echo "$port"
      return
    fi
    echo "pg-cluster: $name did not start on port $port (attempt $attempt)" >&2
    tail -5 "$dir/../$name.log" >&2 || true
  done
  die "$name would not start"
}

wait_streaming() { # dir
  local primary_port i
  primary_port=$(cat "$1/primary.port")
  for i in $(seq 1 300); do
    if [ "$(sql "$primary_port" "select count(*) from pg_stat_replication where state = 'streaming'" 2>/dev/null)" = 1 ]; then
      return
    fi
    sleep 0.2
  done
  tail -20 "$1/standby.log" >&2 || true
  die "the standby did not start streaming within 60 s"
}

print_env() { # dir
  cat "$1/env"
}

start() {
  local dir=${1:-}
  if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/txwatch-pg-cluster.XXXXXX")
  else
    mkdir -p "$dir"
  fi
  [ ! -e "$dir/primary" ] || die "$dir holds a cluster already"
  chmod 755 "$dir"
  chown postgres "$dir" 2>/dev/null || [ "$(id -un)" = postgres ] || [ -O "$dir" ] || die "cannot give $dir to postgres"
  as_postgres "$BIN/initdb" -D "$dir/primary" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  as_postgres tee -a "$dir/primary/postgresql.conf" >/dev/null <<CONF
# pg-cluster.sh: a throwaway primary for tests
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
wal_level = replica
max_wal_senders = 4
wal_keep_size = '128MB'
hot_standby = on
max_connections = 60
shared_buffers = '32MB'
fsync = off
synchronous_commit = off
full_page_writes = off
wal_receiver_status_interval = '1s'
CONF
  local primary_port standby_port
  primary_port=$(start_on_free_port "$dir/primary" primary)
  echo "$primary_port" > "$dir/primary.port"
  as_postgres "$BIN/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$dir/standby" -R -X stream -c fast \
    || die "pg_basebackup failed"
  standby_port=$(start_on_free_port "$dir/standby" standby)
  echo "$standby_port" > "$dir/standby.port"
  wait_streaming "$dir"
  cat > "$dir/env" <<ENV
PG_CLUSTER_DIR=$dir
PG_PRIMARY_URL=postgres://postgres@127.0.0.1:$primary_port/postgres
PG_STANDBY_URL=postgres://postgres@127.0.0.1:$standby_port/postgres
ENV
  print_env "$dir"
}

need_dir() {
  [ -n "${1:-}" ] && [ -f "$1/primary.port" ] || die "usage: $0 <command> DIR (a folder made by start)"
}

stop_standby() {
  need_dir "${1:-}"
  as_postgres "$BIN/pg_ctl" -D "$1/standby" -m fast -w -t 60 stop >/dev/null
}

start_standby() {
  need_dir "${1:-}"
  as_postgres "$BIN/pg_ctl" -D "$1/standby" -l "$1/standby.log" -w -t 60 start >/dev/null
  wait_streaming "$1"
}

status() {
  need_dir "${1:-}"
  as_postgres "$BIN/pg_ctl" -D "$1/primary" status | head -1 || true
  as_postgres "$BIN/pg_ctl" -D "$1/standby" status | head -1 || true
  sql "$(cat "$1/primary.port")" "select application_name, state, replay_lsn from pg_stat_replication" || true
}

stop() {
  need_dir "${1:-}"
  local node
  for node in standby primary; do
    if [ -f "$1/$node/postmaster.pid" ]; then
      as_postgres "$BIN/pg_ctl" -D "$1/$node" -m immediate -w -t 60 stop >/dev/null || true
    fi
  done
  rm -rf "$1"
}

command=${1:-}
shift || true
case "$command" in
  start) start "$@" ;;
  stop-standby) stop_standby "$@" ;;
  start-standby) start_standby "$@" ;;
  status) status "$@" ;;
  stop) stop "$@" ;;
  *) die "usage: $0 start [DIR] | stop-standby DIR | start-standby DIR | status DIR | stop DIR" ;;
esac
