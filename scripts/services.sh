#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer before tests or the server need them.
# Starts a local installation if one is there, else Docker Compose's, else
# says exactly what to do.
set -euo pipefail
cd "$(dirname "$0")/.."

# Where to look; override to check other servers.
pg_host=${PG_HOST:-127.0.0.1} pg_port=${PG_PORT:-5432}
redis_host=${REDIS_HOST:-127.0.0.1} redis_port=${REDIS_PORT:-6379}

reachable() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() { # name host port
  for _ in $(seq 1 50); do reachable "$2" "$3" && return 0; sleep 0.2; done
  return 1
}

docker_engine() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }

missing=()
reachable $pg_host $pg_port || missing+=(postgres)
reachable $redis_host $redis_port || missing+=(redis)
[ ${#missing[@]} -eq 0 ] && exit 0

for service in "${missing[@]}"; do
  case $service in
    postgres)
      if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null; then
        echo "starting the local PostgreSQL..." >&2
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
      fi ;;
    redis)
      if command -v redis-server >/dev/null; then
        echo "starting the local Redis..." >&2
        redis-server --daemonize yes --bind 127.0.0.1 --port $redis_port --save "" --appendonly no >/dev/null
      fi ;;
  esac
done

still=()
wait_for postgres $pg_host $pg_port || still+=(postgres)
wait_for redis $redis_host $redis_port || still+=(redis)
[ ${#still[@]} -eq 0 ] && exit 0

if docker_engine; then
  echo "starting ${still[*]} with Docker Compose..." >&2
  docker compose -f deploy/docker-compose.yml up -d --wait "${still[@]}"
  echo "note: the Compose Postgres has a password; export" >&2
  echo "  DATABASE_URL=postgres://postgres:txwatch@127.0.0.1:5432/txwatch" >&2
  echo "  TEST_DATABASE_URL=postgres://postgres:txwatch@127.0.0.1:5432/postgres" >&2
  exit 0
fi

cat >&2 <<MSG
error: cannot reach ${still[*]} (PostgreSQL on $pg_host:$pg_port, Redis on $redis_host:$redis_port).
Start them in one of these ways, then run the command again:
  - Docker:  docker compose -f deploy/docker-compose.yml up -d --wait postgres redis
  - Debian/Ubuntu:
      sudo apt-get install -y postgresql redis-server
      sudo pg_ctlcluster \$(ls /etc/postgresql) main start   # trust or password auth for user postgres
      redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  - Elsewhere: point DATABASE_URL / TEST_DATABASE_URL and REDIS_URL / TEST_REDIS_URL at your servers.
MSG
exit 1
