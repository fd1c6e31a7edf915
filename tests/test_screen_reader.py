"""What a screen reader hears in the room: Guidepup's virtual screen reader, inside the page in headless
Chromium, records every phrase; each step compares it with the exact sentences the room should say, once
(docs/accessibility.md lists them). Others act over plain HTTP, so the only page is the listener's.

The virtual screen reader comes from npm with the other test tools (tests/package.json; tests/services.sh
runs npm ci), never from the network at test time. Backend-independent: these run once, in the embedded pass.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.keys import Keys

from chatroom.extensions import db
from chatroom.models import Room
from chatroom.services import members, messages
from support import screen_reader
from support.browser import AppServer, Chrome, require_tools
from support.constants import PASSWORD, ROOM_PASSWORD
from support.live import Browser, Stream

pytestmark = [pytest.mark.live, pytest.mark.once]

SETTINGS = {
    "LIVE_STALL_SECONDS": 20,
    "LIVE_POLL_SECONDS": 1,
    "LIVE_RETRY_SECONDS": 3,
    "TYPING_TTL_SECONDS": 2,
    "TYPING_MIN_INTERVAL_SECONDS": 1,
}


@pytest.fixture(scope="module")
def _tools() -> None:
    require_tools([] if screen_reader.available() else [str(screen_reader.BUILD)])


@pytest.fixture
def server(_tools: None, _schema: None, database_url: str, redis_url: str | None) -> Iterator[AppServer]:
    app_server = AppServer(database_url, redis_url, SETTINGS).start()
    yield app_server
    app_server.stop()


@pytest.fixture
def listener() -> Iterator[Chrome]:
    chrome = Chrome()
    screen_reader.install(chrome)
    yield chrome
    chrome.quit()


def _join(chrome: Chrome, base: str, code: str, alias: str) -> None:
    chrome.get(f"{base}/r/{code}")
    chrome.fill({"alias": alias, "password": ROOM_PASSWORD})
    chrome.css("form[action$='/join'] button[type=submit]").click()
    chrome.wait(lambda: chrome.all("#log"), message=f"{alias} in the room")
    chrome.wait(lambda: chrome.css("#connection").get_attribute("data-state") == "live", message="live")


def test_what_a_screen_reader_hears_in_the_room(app, server, listener, make_room, make_facilitator):
    """Page load, a message, five quick ones, typing, one's own message, a refused send, a join and a leave,
    a removal, mute, lock, unlock and the end: each event said once, in the exact words."""
    host_account = make_facilitator(email="hana@example.org", name="Hana Host")
    room = make_room(owner=host_account, title="Listening")
    code = room.code
    bea = Browser(server.port).join(code, "Bea", ROOM_PASSWORD)
    bea.say(code, "Before you came")
    host = Browser(server.port).sign_in(host_account.email, PASSWORD)
    hear = screen_reader.hear

    # Page load: the page's scripts start, connect and settle, and none of it is said (no list of messages,
    # no "Connecting…" then "Live…"): only where the reader starts.
    _join(listener, server.url, code, "Ann")
    time.sleep(1)
    loaded = hear(listener, 0, settle=0.5)
    assert loaded == ["document"]  # where the virtual screen reader starts; no live region said anything

    # One message from someone else: who, then what; once.
    bea.say(code, "Hello Ann")
    assert hear(listener, 1) == ["polite: Bea: Hello Ann"]

    # Five quick messages: five sentences, in order, none twice.
    for n in ("one", "two", "three", "four", "five"):
        bea.say(code, f"Quick {n}")
    assert hear(listener, 5) == [f"polite: Bea: Quick {n}" for n in ("one", "two", "three", "four", "five")]

    # Typing: said when Bea starts, not again while she goes on, nothing when she stops; again on a new start.
    bea.post(f"/r/{code}/typing", {})
    time.sleep(1.2)
    bea.post(f"/r/{code}/typing", {})
    assert hear(listener, 1, settle=3) == ["polite: Bea is typing"]  # the signal runs out meanwhile: silence
    bea.post(f"/r/{code}/typing", {})
    assert hear(listener, 1) == ["polite: Bea is typing"]
    time.sleep(2.5)
    hear(listener, 0, settle=0)

    # One's own message: not read back; the focus stays in the same message box, which is emptied.
    listener.execute_script("window.__box = document.getElementById('field-body'); window.__box.focus()")
    hear(listener, 0, settle=0.3)
    box = listener.css("#field-body")
    box.send_keys("Hi all")
    box.send_keys(Keys.ENTER)
    listener.wait(lambda: "Hi all" in listener.text_of("#log"), message="own message")
    assert hear(listener, 0) == []
    assert listener.execute_script(
        "return document.activeElement === window.__box && window.__box.isConnected && window.__box.value === ''"
    )

    # A refused send (slow mode: 429): its reason, once, as an alert; the slow mode itself was said politely.
    assert host.post(f"/rooms/{code}/settings/slow-mode", {"seconds": "60", "next": "room"}) == 303
    assert hear(listener, 1) == ["polite: Slow mode: one message every 60 s."]
    box.send_keys("Too soon")
    box.send_keys(Keys.ENTER)
    refused = hear(listener, 1)
    assert len(refused) == 1 and re.fullmatch(
        r"assertive: Error: Slow mode is on: you can post again in \d+ seconds?", refused[0]
    ), refused
    assert listener.execute_script("return document.activeElement === window.__box")
    assert host.post(f"/rooms/{code}/settings/slow-mode", {"seconds": "0", "next": "room"}) == 303
    assert hear(listener, 1) == ["polite: Slow mode is off."]

    # A join and a leave: one sentence each (presence is batched; one's own arrival is never told).
    cy = Browser(server.port).join(code, "Cy", ROOM_PASSWORD)
    stream = Stream(server.port, f"/r/{code}/events", cy.cookie_header()).open()
    assert hear(listener, 1, settle=1.5) == ["polite: Cy joined."]
    stream.close()
    assert hear(listener, 1, settle=1.5) == ["polite: Cy left."]

    # A removal: who it was from and who removed it; not a new message.
    bea.say(code, "Oops, wrong room")
    assert hear(listener, 1) == ["polite: Bea: Oops, wrong room"]
    seq = int(listener.execute_script("return document.querySelector('#log .message:last-child').dataset.seq"))
    assert host.post(f"/r/{code}/messages/{seq}/remove", {}) == 303
    assert hear(listener, 1) == ["polite: A message from Bea was removed by the host"]

    # Mute: messages, typing and people go quiet; the room's own state still speaks.
    listener.execute_script("document.getElementById('mute').click()")
    bea.say(code, "Anyone there?")
    bea.post(f"/r/{code}/typing", {})
    listener.wait(lambda: "Anyone there?" in listener.text_of("#log"))
    assert hear(listener, 0, settle=2.5) == []
    listener.execute_script("document.getElementById('mute').click()")

    # Lock, unlock and end: each once; the message box follows the room's state.
    assert host.post(f"/rooms/{code}/settings/lock", {"next": "room"}) == 303
    assert hear(listener, 1) == ["polite: The host has locked the room: you can read but not post."]
    # (read-only with the reason while locked or ended, the text kept; open again when unlocked)
    assert listener.execute_script(CLOSED) == ["locked", True]
    assert host.post(f"/rooms/{code}/settings/unlock", {"next": "room"}) == 303
    assert hear(listener, 1) == ["polite: The host has unlocked the room."]
    assert listener.execute_script(CLOSED) == ["", False]
    assert host.post(f"/rooms/{code}/settings/end", {"next": "room"}) == 303
    assert hear(listener, 1, settle=2) == ["polite: This room has ended. Thank you for taking part."]
    assert listener.css("#connection").get_attribute("data-state") == "closed"
    assert listener.execute_script(CLOSED) == ["closed", True]
    assert [e for e in listener.errors() if "status of 429" not in e] == []  # the refused send is expected


CLOSED = (
    "return [document.getElementById('composer').dataset.closed || '', document.getElementById('field-body').readOnly]"
)


def _post_directly(app: Any, code: str, alias: str, texts: list[str]) -> None:
    with app.test_request_context():
        row = db.session.query(Room).filter_by(code=code).one()
        author = members.join(row, alias, ROOM_PASSWORD)
        for n, text in enumerate(texts):
            messages.post(author, text, f"{alias.encode().hex()}{n:08x}".ljust(32, "0")[:32])


def test_a_burst_after_a_reconnect_is_told_as_a_count_and_a_single_one_in_full(
    app, _tools, listener, make_room, database_url, redis_url
):
    """The server goes away and comes back: the lasting drop is said, then being live again, then what was
    missed: "3 new messages"; after another drop with one message missed, that message in full."""
    room = make_room(title="Flaky")
    own = AppServer(database_url, redis_url, SETTINGS).start()
    try:
        _join(listener, own.url, room.code, "Ann")
        screen_reader.hear(listener, 0, settle=0.5)
        for alias, texts, missed in (
            ("Dee", ["one", "two", "three"], ["polite: 3 new messages"]),
            ("Eve", ["just this"], ["polite: Eve: just this"]),
        ):
            own.stop()
            listener.wait(lambda: listener.css("#connection").get_attribute("data-state") == "reconnecting")
            time.sleep(2.5)  # long enough to be news
            _post_directly(app, room.code, alias, texts)
            own.start()
            listener.wait(lambda: listener.css("#connection").get_attribute("data-state") == "live", timeout=30)
            said = screen_reader.hear(listener, 3, settle=2)
            assert said == [
                "polite: Connection lost. Reconnecting…",
                "polite: Live: new messages appear as they are posted.",
                *missed,
            ], said
    finally:
        own.stop()
