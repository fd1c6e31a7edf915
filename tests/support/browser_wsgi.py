"""The app as the browser tests serve it: ``wsgi.py``'s, plus settings from ``CHATROOM_TEST_SETTINGS`` (JSON).

The live-update timings (``LIVE_POLL_SECONDS`` and friends, read by ``chat/room.html``) are shortened
this way, so a test of the fallback needs seconds, not minutes.
"""

import json
import os

from chatroom import create_app

app = create_app()
app.config.update(json.loads(os.environ.get("CHATROOM_TEST_SETTINGS", "{}")))
