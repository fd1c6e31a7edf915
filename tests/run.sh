#!/usr/bin/env bash
# The test command (make test): the suite on real PostgreSQL + Redis, then on the embedded default.
# With CHATROOM_REQUIRE_SERVICES=1 (CI), a test that cannot reach PostgreSQL or Redis fails instead of skipping.
# Both passes always run, one after the other; the script fails if either fails, including when a pass
# selects no test at all (pytest's exit status 5: a wrong path or marker must not pass silently).
# Arguments go to both pytest runs (tests/run.sh tests/test_chat.py -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin

eval "$(tests/services.sh start)"
trap 'tests/services.sh stop >/dev/null 2>&1 || true' EXIT

failed=()

# run NAME COMMAND...: one pass; records its failure instead of stopping, so the other pass still runs.
run() {
  local name=$1 status=0
  shift
  echo "== $name =="
  "$@" || status=$?
  case $status in
    0) ;;
    5) echo "!! $name: no test was selected (pytest exit 5)" >&2; failed+=("$name (no tests)") ;;
    *) echo "!! $name: pytest exit $status" >&2; failed+=("$name") ;;
  esac
}

run "PostgreSQL + Redis" env CHATROOM_BACKEND=services "$bin/pytest" -m "not once" "$@"
run "embedded: SQLite + in-process broker" \
  env -u DATABASE_URL -u REDIS_URL CHATROOM_BACKEND=embedded "$bin/pytest" -m "not services" "$@"

if ((${#failed[@]})); then
  printf '!! failed: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "== both passes passed =="
