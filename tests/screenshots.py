"""Screenshots of the main pages for docs/screenshots/: the room (a participant's, and the host's with its tools),
the join form, the dashboard and a room's owner page, at 375 and 1280 px wide, in the light and the dark theme.
``make screenshots`` runs it (needs what the browser tests need).

It builds a throwaway SQLite database with a room in progress, serves the app with gunicorn as the tests
do, and drives Debian's headless Chromium; nothing is left behind but the PNGs.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # tests/ lives in the checkout root
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from flask_migrate import upgrade  # noqa: E402

from chatroom import create_app  # noqa: E402
from chatroom.models import utcnow  # noqa: E402
from chatroom.services import accounts, members, messages, rooms  # noqa: E402
from config import TestConfig  # noqa: E402
from support import live  # noqa: E402
from support.browser import AppServer, Chrome  # noqa: E402
from support.live import Browser, Stream  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
PASSWORD = "a long enough password"
ROOM_PASSWORD = "open sesame"
LINES = [
    ("Ana", "Morning! Is the agenda the one from the email?"),
    ("Hana Morel", "Yes. We start with last week's questions, then the group work."),
    ("Ben", "Could you share the slides afterwards?"),
    ("Hana Morel", "I will put them in the room before it closes."),
    ("Chloé", "Question 3 was unclear to me: do we compare both studies, or only the second one?"),
    ("Dev", "Both, I think. The second one builds on the first."),
    ("Hana Morel", "Both, yes. Start with what they share, then where they differ."),
    ("Eun", "Thanks, that helps.\nAnd for the group work: groups of three?"),
    ("Ana", "Three or four is fine."),
]


def seed(database_url: str) -> tuple[str, str]:
    """A facilitator, three rooms, and a room in progress with a conversation; returns (email, room code)."""
    config = type("ShotConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": None})
    app = create_app(config)
    with app.test_request_context():
        upgrade()
        host = accounts.sign_up("hana@example.org", "Hana Morel", PASSWORD)
        now = utcnow().replace(second=0, microsecond=0)
        for title, start, hours in (
            ("Thesis clinic", now + timedelta(days=2), 2),
            ("Intro week Q&A", now - timedelta(days=6), 1),
        ):
            rooms.create(
                host, rooms.RoomInput(title, start, start + timedelta(hours=hours), "Europe/Paris", ROOM_PASSWORD)
            )
        room = rooms.create(
            host,
            rooms.RoomInput(
                "Research methods, week 5",
                now - timedelta(minutes=40),
                now + timedelta(hours=1),
                "Europe/Paris",
                ROOM_PASSWORD,
            ),
        )
        seats = {"Hana Morel": room.host_seat()}
        rng = random.Random(5)
        for i, (alias, text) in enumerate(LINES):
            if alias not in seats:
                seats[alias] = members.join(room, alias, ROOM_PASSWORD)
            messages.post(seats[alias], text, f"{i:032x}{rng.random()}"[:32])
        return host.email, room.code


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="chatroom-shots-"))
    OUT.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{work / 'shots.sqlite3'}"
    live.LOG_DIR = work  # the server's log goes with the rest of this run's files
    email, code = seed(database_url)
    server = AppServer(database_url, None).start()
    streams = []
    try:
        base = server.url
        kim = Browser(server.port).join(code, "Kim", ROOM_PASSWORD)
        streams.append(Stream(server.port, f"/r/{code}/events", kim.cookie_header()).open())  # Kim is "here now"
        aliases = iter(["Pat", "Sam", "Noor", "Rui"])
        for theme in ("light", "dark"):
            suffix = f"-{theme}"
            for width, height in ((375, 812), (1280, 860)):
                chrome = Chrome(width=width, height=height)
                try:
                    chrome.emulate(width=width, height=height)
                    chrome.get(f"{base}/healthz")
                    chrome.add_cookie({"name": "theme", "value": theme, "path": "/"})
                    chrome.get(f"{base}/r/{code}")
                    chrome.save_screenshot(str(OUT / f"join-{width}{suffix}.png"))
                    chrome.fill({"alias": next(aliases), "password": ROOM_PASSWORD})
                    chrome.css("form[action$='/join'] button[type=submit]").click()
                    chrome.wait(lambda c=chrome: c.css("#connection").get_attribute("data-state") == "live")
                    Browser(server.port).join(code, f"Lee{width}{theme}", ROOM_PASSWORD).post(f"/r/{code}/typing", {})
                    time.sleep(0.6)
                    chrome.save_screenshot(str(OUT / f"room-{width}{suffix}.png"))
                finally:
                    chrome.quit()
                chrome = Chrome(width=width, height=height)
                try:
                    chrome.emulate(width=width, height=height)
                    chrome.get(f"{base}/healthz")
                    chrome.add_cookie({"name": "theme", "value": theme, "path": "/"})
                    chrome.get(f"{base}/login")
                    chrome.fill({"email": email, "password": PASSWORD})
                    chrome.css("form[action='/login'] button[type=submit]").click()
                    chrome.wait(lambda c=chrome: c.current_url.endswith("/rooms/"))
                    chrome.save_screenshot(str(OUT / f"dashboard-{width}{suffix}.png"))
                    chrome.get(f"{base}/rooms/{code}")
                    chrome.save_screenshot(str(OUT / f"owner-{width}{suffix}.png"))
                    chrome.get(f"{base}/r/{code}")
                    chrome.wait(lambda c=chrome: c.css("#connection").get_attribute("data-state") == "live")
                    if width < 768:  # the host's tools are a drawer on a phone
                        chrome.css("#side-toggle").click()
                    time.sleep(0.4)
                    chrome.save_screenshot(str(OUT / f"host-{width}{suffix}.png"))
                finally:
                    chrome.quit()
    finally:
        for stream in streams:
            stream.close()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    for path in sorted(OUT.glob("*.png")):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
