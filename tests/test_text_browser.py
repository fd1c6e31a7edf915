"""Text in a real browser (issue 10, docs/text.md): direction and layout safety in Debian's headless Chromium,
at a phone's width (375 px) and a desktop's (1280 px).

- Direction: a right-to-left alias keeps the time where it is (after the name), and a right-to-left
  message reads right-aligned.
- Layout: a "zalgo" message and a zalgo alias paint nothing outside their own box (checked on the pixels of a
  screenshot, with the zalgo text in a colour nothing else on the page has); message boxes do not overlap;
  a long URL wraps instead of widening the page.

The page does not depend on the backend, so this runs once (in the embedded pass of tests/run.sh).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from chatroom.extensions import db
from chatroom.models import Room
from chatroom.services import members, messages
from support.browser import AppServer, Chrome, require_tools
from support.constants import ROOM_PASSWORD

pytestmark = [pytest.mark.live, pytest.mark.once]

MARKS = "\u0336\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308\u0309\u030a\u030b\u0316\u0317\u0318\u0319"
ZALGO = " ".join("".join(ch + MARKS * 3 for ch in word) for word in ("He", "comes", "from", "below"))
RTL_ALIAS = "مريم"
RTL_BODY = "שלום לכולם"
LONG_URL = "https://example.org/" + "a1b2c3" * 60
MAGENTA = "rgb(255, 0, 255)"


@pytest.fixture(scope="module")
def server(_schema: None, database_url: str, redis_url: str | None) -> Iterator[AppServer]:
    require_tools()
    app_server = AppServer(database_url, redis_url).start()
    yield app_server
    app_server.stop()


def _seed(app: Any, room: Room) -> None:
    """The conversation, posted through the services: seq 1..7 in this order."""
    with app.test_request_context():
        row = db.session.get(Room, room.id)
        pat = members.join(row, "Pat", ROOM_PASSWORD)
        maryam = members.join(row, RTL_ALIAS, ROOM_PASSWORD)
        zed = members.join(row, "Z" + MARKS * 2 + "ed" + MARKS, ROOM_PASSWORD)
        for seat, body in (
            (pat, "Before the storm"),
            (pat, ZALGO),
            (pat, "After the storm"),
            (maryam, "Hello from the right"),
            (pat, RTL_BODY),
            (pat, LONG_URL),
            (zed, "A name with marks"),
        ):
            messages.post(seat, body, secrets.token_hex(16))


def _rect(chrome: Chrome, seq: int, selector: str) -> dict[str, float]:
    return dict(
        chrome.execute_script(
            "var r = document.querySelector('#message-' + arguments[0] + ' ' + arguments[1]).getBoundingClientRect();"
            "return {left: r.left, right: r.right, top: r.top, bottom: r.bottom};",
            seq,
            selector,
        )
    )


def _ink_outside(chrome: Chrome, seq: int, selector: str) -> tuple[int, int]:
    """Paint the element magenta, screenshot the viewport, count magenta pixels inside and outside its box."""
    chrome.execute_script(
        "var e = document.querySelector('#message-' + arguments[0] + ' ' + arguments[1]);"
        "e.closest('.message').scrollIntoView({block: 'center'}); e.style.color = arguments[2];",
        seq,
        selector,
        MAGENTA,
    )
    box = _rect(chrome, seq, selector)
    png = chrome.get_screenshot_as_base64()
    chrome.execute_script(
        "document.querySelector('#message-' + arguments[0] + ' ' + arguments[1]).style.color = '';", seq, selector
    )
    counts = chrome.execute_async_script(
        """
        var png = arguments[0], box = arguments[1], done = arguments[arguments.length - 1];
        var img = new Image();
        img.onload = function () {
          var canvas = document.createElement('canvas');
          canvas.width = img.width; canvas.height = img.height;
          var g = canvas.getContext('2d');
          g.drawImage(img, 0, 0);
          var d = g.getImageData(0, 0, img.width, img.height).data, inside = 0, outside = 0;
          for (var y = 0; y < img.height; y++) {
            for (var x = 0; x < img.width; x++) {
              var i = (y * img.width + x) * 4;
              if (d[i] > 180 && d[i + 1] < 90 && d[i + 2] > 180) {
                if (x >= box.left - 1 && x <= box.right + 1 && y >= box.top - 1 && y <= box.bottom + 1) inside++;
                else outside++;
              }
            }
          }
          done([inside, outside]);
        };
        img.onerror = function () { done([-1, -1]); };
        img.src = 'data:image/png;base64,' + png;
        """,
        png,
        box,
    )
    return int(counts[0]), int(counts[1])


@pytest.mark.parametrize("width", [375, 1280])
def test_user_text_keeps_its_direction_and_its_box(app, server, make_room, width):
    room = make_room(title="Text that behaves")
    _seed(app, room)
    chrome = Chrome(width=width, height=900)
    try:
        chrome.emulate(width=width, height=900)
        chrome.get(f"{server.url}/r/{room.code}")
        chrome.fill({"alias": "Reader", "password": ROOM_PASSWORD})
        chrome.css("form[action$='/join'] button[type=submit]").click()
        chrome.wait(lambda: len(chrome.all("#log .message")) == 7, message="the seven messages")

        # Direction: the time follows the name whatever the name's direction.
        for seq in (1, 4):
            alias, time = _rect(chrome, seq, ".message__alias"), _rect(chrome, seq, "time")
            assert time["left"] >= alias["right"] - 1, f"message {seq}: time at {time}, alias at {alias}"
        # A right-to-left message reads right-aligned: its text ends at the right edge of its box.
        body = _rect(chrome, 5, ".message__body")
        text = dict(
            chrome.execute_script(
                "var b = document.querySelector('#message-5 .message__body'), r = document.createRange();"
                "r.selectNodeContents(b); var t = r.getBoundingClientRect();"
                "return {left: t.left, right: t.right, direction: getComputedStyle(b).direction};"
            )
        )
        assert text["direction"] == "rtl"
        assert abs(body["right"] - text["right"]) <= 2 and text["left"] - body["left"] > 40, (body, text)
        # A left-to-right message stays left-aligned.
        assert (
            chrome.execute_script("return getComputedStyle(document.querySelector('#message-1 p[dir]')).direction")
            == "ltr"
        )

        # Layout: message boxes follow each other without overlapping...
        tops = [_rect(chrome, seq, "") for seq in range(1, 8)]
        for above, below in itertools.pairwise(tops):
            assert above["bottom"] <= below["top"] + 0.5, (above, below)
        # ...the zalgo message and the zalgo alias paint nothing outside their own box...
        for seq, selector in ((2, ".message__body"), (7, ".message__alias")):
            inside, outside = _ink_outside(chrome, seq, selector)
            assert inside > 0, f"message {seq} {selector}: the test did not see the text ({inside})"
            assert outside == 0, f"message {seq} {selector}: {outside} pixels painted outside its box at {width} px"
        # ...and a long URL wraps inside its box instead of widening the page.
        assert chrome.execute_script(
            "var b = document.querySelector('#message-6 .message__body');"
            "return b.scrollWidth <= b.clientWidth && document.documentElement.scrollWidth <= window.innerWidth;"
        )
        assert chrome.errors() == []
    finally:
        chrome.quit()
