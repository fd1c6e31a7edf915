#!/usr/bin/env bash
# Throwaway PostgreSQL and Redis for the test suite, in .services/<run>/ of the checkout.
#   eval "$(tests/services.sh start)"  -> starts both on free ports (or TEST_PG_PORT / TEST_REDIS_PORT),
#                                         exports DATABASE_URL, REDIS_URL and CHATROOM_SERVICES_DIR
#   tests/services.sh stop             -> stops the ones CHATROOM_SERVICES_DIR names and removes their data
#   tests/services.sh stop --all       -> stops every run in .services/ (from a shell that lost the variable)
# Each run's exports are also in .services/<run>/env (source it to use those servers from another shell).
# Several runs can share a machine: each has its own ports and folder.
# Installs redis-server (Debian) when it is missing and we are root. PostgreSQL 15 must be on the machine.
# Also installs what the browser tests need (chromium, chromium-driver, nginx) the same way, and their npm
# packages (tests/package.json: the virtual screen reader) with npm ci; tests never touch the network.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

pg_bin() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  echo "PostgreSQL server binaries (initdb) not found: install postgresql" >&2; exit 1
}

as_pg() {  # initdb and postgres refuse to run as root: use the postgres account then
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

need_redis() {
  command -v redis-server >/dev/null 2>&1 && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing redis-server" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2
  else
    echo "redis-server is missing: install it (Debian: apt-get install redis-server)" >&2; exit 1
  fi
}

need_browser_tools() {  # the browser tests: Debian's chromium and chromedriver, and nginx as the middlebox
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]}" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >&2
    # Debian starts nginx on port 80 when it installs it; the tests run their own, so stop that one.
    case " ${missing[*]} " in *" nginx "*) /usr/sbin/nginx -s quit >/dev/null 2>&1 || true ;; esac
  else
    echo "browser tests need ${missing[*]}: install them (Debian: apt-get install ${missing[*]})" >&2
  fi
}

need_test_node_modules() {  # what the browser tests load into pages (tests/package.json): pinned, from npm, once
  local lock="$here/tests/package-lock.json" stamp="$here/tests/node_modules/.package-lock.json"
  [ -f "$stamp" ] && [ "$stamp" -nt "$lock" ] && return
  if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing npm" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm) >&2
  fi
  if command -v npm >/dev/null 2>&1; then
    echo "installing the browser tests' npm packages (tests/package-lock.json)" >&2
    (cd "$here/tests" && npm ci --no-audit --no-fund --loglevel=error) >&2
  else
    echo "the screen reader tests need npm (Debian: apt-get install npm), then: (cd tests && npm ci)" >&2
  fi
}

start() {
  need_browser_tools
  need_test_node_modules
  pg_port=${TEST_PG_PORT:-$(free_port)}
  redis_port=${TEST_REDIS_PORT:-$(free_port)}
  dir="$here/.services/run-$pg_port"
  rm -rf "$dir"
  mkdir -p "$dir"
  local bin; bin=$(pg_bin)
  mkdir -p "$dir/pg" "$dir/sock"
  [ "$(id -u)" = 0 ] && chown -R postgres "$dir/pg" "$dir/sock"
  as_pg "$bin/initdb" -D "$dir/pg/data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_pg "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 30 \
    -o "-p $pg_port -k $dir/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >&2
  "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres chatroom_test

  need_redis
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir"
  for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$redis_port" ping >/dev/null

  {
    echo "export DATABASE_URL=postgresql://postgres@127.0.0.1:$pg_port/chatroom_test"
    echo "export REDIS_URL=redis://127.0.0.1:$redis_port/0"
    echo "export CHATROOM_SERVICES_DIR=$dir"
  } | tee "$dir/env"
}

stop() {
  if [ "${1:-}" = --all ]; then
    for run in "$here"/.services/run-*/; do [ -d "$run" ] && stop_run "${run%/}"; done
    return 0
  fi
  if [ -z "${CHATROOM_SERVICES_DIR:-}" ]; then
    echo "CHATROOM_SERVICES_DIR is not set: nothing to stop. Runs here:" >&2
    ls -d "$here"/.services/run-*/ >&2 2>/dev/null || echo "  (none)" >&2
    echo "stop one with CHATROOM_SERVICES_DIR=<run> $0 stop, or all of them with $0 stop --all" >&2
    exit 1
  fi
  stop_run "$CHATROOM_SERVICES_DIR"
}

stop_run() {
  local dir=$1
  case "$dir" in run-*) dir="$here/.services/$dir" ;; esac  # a run's folder name alone
  dir=$(cd "$dir" 2>/dev/null && pwd) || { echo "no such run: $1" >&2; exit 1; }
  case "$dir" in
    "$here"/.services/run-*) ;;
    *) echo "not a run of tests/services.sh (those are $here/.services/run-*): $1" >&2; exit 1 ;;
  esac
  local bin; bin=$(pg_bin)
  # A test run killed while it had PostgreSQL paused (SIGSTOP, tests/test_faults.py) leaves it stopped: wake it.
  if [ -f "$dir/pg/data/postmaster.pid" ]; then
    local pm; pm=$(head -1 "$dir/pg/data/postmaster.pid")
    # shellcheck disable=SC2046
    kill -CONT "$pm" $(pgrep -P "$pm") 2>/dev/null || true
  fi
  [ -d "$dir/pg/data" ] && as_pg "$bin/pg_ctl" -D "$dir/pg/data" -m immediate stop >/dev/null 2>&1 || true
  [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 start|stop [--all]" >&2; exit 2 ;;
esac
