#!/usr/bin/env bash
# The test command (make test): the suite on real PostgreSQL + Redis, then on the embedded default.
# With CHATROOM_REQUIRE_SERVICES=1 (CI), a test that cannot reach PostgreSQL or Redis fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin

eval "$(tests/services.sh start)"
trap 'tests/services.sh stop >/dev/null 2>&1 || true' EXIT

echo "== PostgreSQL + Redis =="
CHATROOM_BACKEND=services "$bin/pytest" -m "not once" "$@"

echo "== embedded: SQLite + in-process broker =="
env -u DATABASE_URL -u REDIS_URL CHATROOM_BACKEND=embedded "$bin/pytest" -m "not services" "$@"
