#!/usr/bin/env bash
# The test command (make test): the suite on real PostgreSQL + Redis, and on the embedded default (SQLite + the
# in-process broker). With CHATROOM_REQUIRE_SERVICES=1 (CI), a test that cannot reach PostgreSQL or Redis fails
# instead of skipping. The two passes share nothing (their own database, broker, ports and browsers), so they run
# side by side, each into its own log, printed whole when both are done (TEST_PASSES=sequential: one after the
# other, as they print). The script fails if either fails, including when a pass selects no test at all (pytest's
# exit status 5: a wrong path or marker must not pass silently).
# Arguments go to both pytest runs (tests/run.sh tests/test_chat.py -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin

eval "$(tests/services.sh start)"
logs=$(mktemp -d)
trap 'tests/services.sh stop >/dev/null 2>&1 || true; rm -rf "$logs"' EXIT

names=("PostgreSQL + Redis" "embedded: SQLite + in-process broker")
commands=(
  "env CHATROOM_BACKEND=services $bin/pytest -m 'not once'"
  "env -u DATABASE_URL -u REDIS_URL CHATROOM_BACKEND=embedded $bin/pytest -m 'not services'"
)
args=$(printf ' %q' "$@")

# run I: pass I into its log; its exit status into status-I.
run() {
  local status=0
  eval "${commands[$1]}$args" >"$logs/pass-$1.log" 2>&1 || status=$?
  echo "$status" >"$logs/status-$1"
}

if [ "${TEST_PASSES:-parallel}" = sequential ]; then
  for i in 0 1; do
    echo "== ${names[$i]} =="
    run "$i"
    cat "$logs/pass-$i.log"
  done
else
  echo "== both passes, side by side (their logs follow when both are done) =="
  started=$SECONDS
  run 0 &
  run 1 &
  wait
  for i in 0 1; do
    echo "== ${names[$i]} =="
    cat "$logs/pass-$i.log"
  done
  echo "== both passes took $((SECONDS - started)) s =="
fi

failed=()
for i in 0 1; do
  status=$(cat "$logs/status-$i" 2>/dev/null || echo 1)
  case $status in
    0) ;;
    5) echo "!! ${names[$i]}: no test was selected (pytest exit 5)" >&2; failed+=("${names[$i]} (no tests)") ;;
    *) echo "!! ${names[$i]}: pytest exit $status" >&2; failed+=("${names[$i]}") ;;
  esac
done
if ((${#failed[@]})); then
  printf '!! failed: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "== both passes passed =="
