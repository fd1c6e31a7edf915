"""What every test module may need to know: the passwords the factories use, and what this run is on.

The suite runs twice (tests/run.sh): on real PostgreSQL + Redis (``CHATROOM_BACKEND=services``) and on the
embedded default (``CHATROOM_BACKEND=embedded``: SQLite + the in-process broker). With
``CHATROOM_REQUIRE_SERVICES=1`` an unreachable service fails the run instead of skipping its tests.
"""

from __future__ import annotations

import os
from pathlib import Path

PASSWORD = "correct horse battery"  # every facilitator the factories make
ROOM_PASSWORD = "open sesame"  # every room the factories make

BACKEND = os.environ.get("CHATROOM_BACKEND") or ("services" if os.environ.get("DATABASE_URL") else "embedded")
REQUIRE = os.environ.get("CHATROOM_REQUIRE_SERVICES") == "1"

ROOT = Path(__file__).resolve().parents[2]  # the checkout (tests/support/ -> tests/ -> root)
