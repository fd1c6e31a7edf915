#!/usr/bin/env bash
# The SSE load benchmark (make bench): throwaway PostgreSQL + Redis, gunicorn on loopback, then bench/sse_load.py;
# then the same load against bench/reference_server.py (the floor: a minimal gevent server writing each event
# straight to every socket), and both side by side with their ratio.
#   bench/run.sh                                   K=1000 streams, 10 msg/s for 20 s
#   bench/run.sh -k 5000 -r 10 --json /tmp/k5000.json     (every sse_load.py option passes through)
#   BENCH_REF=HEAD bench/run.sh                    serve that commit (git archive), not the working tree
#   BENCH_REFERENCE=0 bench/run.sh                 the app only
#   BENCH_RUNS=5 bench/run.sh                      five pairs (app, then reference), and the median ratio
# Environment: BENCH_PORT (first port tried, 5055), WEB_CONCURRENCY (gevent workers, 2),
# BENCH_LOG (where the server log is kept). PostgreSQL and Redis come from tests/services.sh, on free ports.
# --json FILE gets {"app": ..., "reference": ...}; with BENCH_RUNS above 1, {"runs": [{"app": ..., ...}, ...]}.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin="$root/.venv/bin"
log_copy=${BENCH_LOG:-/tmp/chatroom-bench-gunicorn.log}

# Thousands of streams need thousands of descriptors, on both sides (gunicorn inherits this limit).
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ]; then ulimit -n 1048576 2>/dev/null || true; else ulimit -n "$hard"; fi
echo "open files limit: $(ulimit -n)" >&2

work=$(mktemp -d /tmp/chatroom-bench.XXXXXX)
services="$root/tests/services.sh"  # its own ports and folder: never touches a test run's servers
gunicorn_pid=""
reference_pid=""

# --json is ours (both results go in it); every other argument goes to sse_load.py as it is.
json_out=""
load_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --json) json_out=$2; shift 2 ;;
    --json=*) json_out=${1#--json=}; shift ;;
    *) load_args+=("$1"); shift ;;
  esac
done

stop_gunicorn() {
  [ -n "$gunicorn_pid" ] || return 0
  kill -INT "$gunicorn_pid" 2>/dev/null || true  # INT: quick shutdown (TERM would wait for every stream)
  for _ in $(seq 100); do kill -0 "$gunicorn_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$gunicorn_pid" 2>/dev/null || true
  wait "$gunicorn_pid" 2>/dev/null || true
  gunicorn_pid=""
}

stop_reference() {
  [ -n "$reference_pid" ] || return 0
  kill "$reference_pid" 2>/dev/null || true
  wait "$reference_pid" 2>/dev/null || true
  reference_pid=""
}

cleanup() {
  stop_gunicorn
  stop_reference
  [ -f "$work/gunicorn.log" ] && cp "$work/gunicorn.log" "$log_copy"
  "$services" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The app to serve: the working tree, or a clean export of BENCH_REF (the load tool always comes from here).
app="$root"
if [ -n "${BENCH_REF:-}" ]; then
  app="$work/app"
  mkdir "$app"
  git -C "$root" archive "$BENCH_REF" | tar -x -C "$app"
  echo "serving $(git -C "$root" rev-parse --short "$BENCH_REF") ($BENCH_REF), not the working tree" >&2
fi

eval "$("$services" start)"

# The first free loopback port from $1 on.
free_port() {
  "$bin/python" - "$1" <<'EOF'
import socket, sys
for port in range(int(sys.argv[1]), int(sys.argv[1]) + 100):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(port)
        break
else:
    sys.exit("no free port")
EOF
}
port=$(free_port "${BENCH_PORT:-5055}")

export CHATROOM_ENV=production
SECRET_KEY=$("$bin/python" -c 'import secrets; print(secrets.token_hex(32))')
export SECRET_KEY
export SESSION_COOKIE_SECURE=0 WTF_CSRF_SSL_STRICT=0 BCRYPT_ROUNDS=4
export RATELIMIT_ENABLED=0  # K joins and R posts a second from one address are the point here, not abuse
export PUBLIC_URL="http://127.0.0.1:$port"  # production refuses to start without it (links are built on it)
# The same goes for the stream caps: K streams from a few addresses, many per participant with --members.
export STREAMS_PER_SEAT=1000000 STREAMS_PER_ADDRESS=1000000 CONNECTIONS_PER_ADDRESS=100000
export MEMBERS_PER_ROOM=1000000  # one room of K participants is the point (the production cap is 500)
export HOST=127.0.0.1 PORT="$port" WEB_CONCURRENCY=${WEB_CONCURRENCY:-2} FLASK_APP=wsgi
unset ACCESS_LOG

(cd "$app" && "$bin/flask" db upgrade) >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; exit 1; }

# One run of the app: gunicorn up, the load, gunicorn down, its log looked over; the results in $work/app-$1.json.
run_app() {
  (cd "$app" && exec "$bin/gunicorn" -c gunicorn.conf.py --pid "$work/gunicorn.pid" wsgi:app) >"$work/gunicorn.log" 2>&1 &
  gunicorn_pid=$!
  "$bin/python" - "$port" <<'EOF' || { echo "gunicorn did not come up:" >&2; tail -n 30 "$work/gunicorn.log" >&2; exit 1; }
import sys, time, urllib.request
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=2) as answer:
            if answer.status == 200:
                sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
EOF
  for _ in $(seq 50); do [ -s "$work/gunicorn.pid" ] && break; sleep 0.1; done
  echo "gunicorn on 127.0.0.1:$port, $WEB_CONCURRENCY gevent workers (log: $log_copy)" >&2

  "$bin/python" bench/sse_load.py --url "http://127.0.0.1:$port" --server-pidfile "$work/gunicorn.pid" \
    --database-url "$DATABASE_URL" "${load_args[@]}" --json "$work/app-$1.json" || status=$?
  stop_gunicorn

  problems=$(grep -cE "Traceback|ERROR|WORKER TIMEOUT|CRITICAL" "$work/gunicorn.log" || true)
  if [ "$problems" != 0 ]; then
    echo "the server log has $problems error lines; the most frequent:" >&2
    # || true: with pipefail, a grep that finds nothing would end the script here, before the JSON is written.
    grep -E "^[a-zA-Z_.]+(Error|Exception)|WORKER TIMEOUT|CRITICAL|WARNING| ERROR " "$work/gunicorn.log" \
      | sed -E 's/^[0-9-]+ [0-9:,]+ //' | cut -c1-200 | sort | uniq -c | sort -rn | head -n 6 >&2 || true
  fi
}

# One run of the reference under the same load; its results in $work/reference-$1.json.
run_reference() {
  ref_port=$(free_port $((port + 1)))
  "$bin/python" bench/reference_server.py --port "$ref_port" >"$work/reference.log" 2>&1 &
  reference_pid=$!
  for _ in $(seq 50); do
    "$bin/python" -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1).close()" \
      "$ref_port" 2>/dev/null && break
    sleep 0.1
  done
  echo >&2
  echo "the reference server (bench/reference_server.py) on 127.0.0.1:$ref_port, the same load:" >&2
  "$bin/python" bench/sse_load.py --url "http://127.0.0.1:$ref_port" --server-pids "$reference_pid" \
    "${load_args[@]}" --json "$work/reference-$1.json" || true
  stop_reference
}

# BENCH_RUNS pairs, app then reference, one after the other: the host's speed drifts over minutes, so each
# ratio is taken within its pair, and the median of the pairs is the figure to quote.
status=0
runs=${BENCH_RUNS:-1}
pairs=()
for run in $(seq "$runs"); do
  [ "$runs" = 1 ] || echo "== run $run of $runs" >&2
  run_app "$run"
  if [ "${BENCH_REFERENCE:-1}" = 1 ] && [ -s "$work/app-$run.json" ]; then
    run_reference "$run"
    "$bin/python" bench/compare.py "$work/app-$run.json" "$work/reference-$run.json"
  fi
  pairs+=("$work/app-$run.json" "$work/reference-$run.json")
done
if [ "$runs" != 1 ] && [ "${BENCH_REFERENCE:-1}" = 1 ]; then
  "$bin/python" bench/compare.py --series "${pairs[@]}"
fi
if [ -n "$json_out" ]; then
  "$bin/python" bench/compare.py --combine "$json_out" "${pairs[@]}"
fi
exit "$status"
