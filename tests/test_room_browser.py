"""The room as a chat, in Debian's headless Chromium: how many messages a phone and a laptop show, grouping and
one's own messages, the message menu acting in place, the host running the session from the room (seen live by
participants), the picture of the session on the owner page, and every action with JavaScript off.

The page's behaviour is the same on either backend, so these run once (the embedded pass of tests/run.sh; the
live path through Redis is tests/test_browser.py's two participants and tests/test_stream.py). Each test bounds
every wait.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.keys import Keys

from chatroom.extensions import db
from chatroom.models import Membership
from support.browser import AppServer, Chrome
from support.constants import PASSWORD, ROOM_PASSWORD
from support.live import Browser

pytestmark = pytest.mark.live
once = pytest.mark.once

LIVE = {"LIVE_STALL_SECONDS": 4, "LIVE_POLL_SECONDS": 1, "LIVE_RETRY_SECONDS": 3}
VISIBLE = """
const pane = document.getElementById('messages').getBoundingClientRect();
return [...document.querySelectorAll('#log .message')].filter((m) => {
  const r = m.getBoundingClientRect(); return r.top >= pane.top - 1 && r.bottom <= pane.bottom + 1;
}).length;
"""


@pytest.fixture(scope="module")
def server(browser_tools: None, _schema: None, database_url: str, redis_url: str | None) -> Iterator[AppServer]:
    app_server = AppServer(database_url, redis_url, LIVE).start()
    yield app_server
    app_server.stop()


# Every state a People row takes, as it is added or changed (host.js must not say a joiner is offline at first).
RECORD_PRESENCE = """
window.__presence = [];
new MutationObserver((records) => records.forEach((r) => {
  if (r.type === "attributes") window.__presence.push(r.target.dataset.presence);
  r.addedNodes.forEach((n) => {
    if (n.nodeType === 1 && n.dataset.member) window.__presence.push(n.dataset.presence);
  });
})).observe(document.getElementById("host-people"),
  { attributes: true, attributeFilter: ["data-presence"], subtree: true, childList: true });
"""


def _join(chrome: Chrome, base: str, code: str, alias: str, live: bool = True) -> None:
    chrome.get(f"{base}/r/{code}")
    chrome.fill({"alias": alias, "password": ROOM_PASSWORD})
    chrome.css("form[action$='/join'] button[type=submit]").click()
    chrome.wait(lambda: chrome.all("#log"), message=f"{alias} in the room")
    if live:
        chrome.wait(lambda: chrome.css("#connection").get_attribute("data-state") == "live", message="live")


def _sign_in(chrome: Chrome, base: str, email: str) -> None:
    chrome.get(f"{base}/login")
    chrome.fill({"email": email, "password": PASSWORD})
    chrome.css("form[action='/login'] button[type=submit]").click()
    chrome.wait(lambda: chrome.current_url.endswith("/rooms/"), message=f"{email} signed in")


def _say(chrome: Chrome, text: str) -> None:
    box = chrome.css("#field-body")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def _seat_id(app: Any, code: str, alias: str) -> int:
    with app.app_context():
        from chatroom.models import Room

        room = db.session.query(Room).filter_by(code=code).one()
        return int(db.session.query(Membership).filter_by(room_id=room.id, alias=alias).one().id)


def _menu(chrome: Chrome, li: Any, action: str) -> None:
    li.find_element("css selector", ".message__more").click()
    chrome.wait(lambda: chrome.all(f"#message-menu [data-do='{action}']"), message=f"the menu's {action}")
    chrome.css(f"#message-menu [data-do='{action}']").click()


# -- layout ------------------------------------------------------------------------------------------------


@once
def test_the_log_shows_8_messages_on_a_phone_and_14_on_a_laptop(server, browsers, make_room):
    """One-line messages from people taking turns (so none is grouped): at least 8 in view on a 375 × 667 phone,
    14 at 1366 × 768; the message box is in view at both, and the page itself does not scroll."""
    room = make_room(title="Counting")
    ana, ben = (Browser(server.port).join(room.code, alias, ROOM_PASSWORD) for alias in ("Ana", "Ben"))
    for n in range(30):
        (ana if n % 2 else ben).say(room.code, f"Short message {n}.")
    for (width, height), least in (((375, 667), 8), ((1366, 768), 14)):
        chrome = browsers(width=width, height=height)
        chrome.emulate(width=width, height=height)
        _join(chrome, server.url, room.code, f"Reader{width}")
        seen = chrome.execute_script(VISIBLE)
        assert seen >= least, f"{seen} messages in view at {width} × {height}"
        box = chrome.css("#field-body").rect
        assert box["y"] + box["height"] <= height, f"the message box is below the fold at {width} × {height}"
        assert chrome.execute_script("return document.documentElement.scrollHeight") <= height + 1
        print(f"{width} × {height}: {seen} messages in view")


@once
def test_messages_group_by_person_and_ones_own_are_marked(server, browsers, make_room):
    """Consecutive messages from one person share one name and time (on the page and as they arrive); one's
    own messages have their own background, from the page's style; the name stays for screen readers."""
    room = make_room(title="Grouping")
    kim = Browser(server.port).join(room.code, "Kim", ROOM_PASSWORD)
    kim.say(room.code, "First from Kim")
    kim.say(room.code, "Second from Kim")
    chrome = browsers()
    _join(chrome, server.url, room.code, "Pat")
    _say(chrome, "Mine, one")
    chrome.wait(lambda: "Mine, one" in chrome.text_of("#log"), message="the first of mine")
    _say(chrome, "Mine, two")
    chrome.wait(lambda: "Mine, two" in chrome.text_of("#log"), message="the second of mine")
    kim.say(room.code, "Third from Kim")
    chrome.wait(lambda: len(chrome.all("#log .message")) == 5, message="five messages")
    classes = [li.get_attribute("class") for li in chrome.all("#log .message")]
    grouped = ["message--cont" in c for c in classes]
    assert grouped == [False, True, False, True, False], classes
    second = chrome.all("#log .message")[1]
    assert second.find_element("css selector", ".message__alias").get_attribute("textContent") == "Kim"
    assert (
        not second.find_element("css selector", ".message__meta").is_displayed()
        or second.find_element("css selector", ".message__meta").size["width"] <= 1
    )
    backgrounds = chrome.execute_script(
        "return [...document.querySelectorAll('#log .message')].map(m => getComputedStyle(m).backgroundColor)"
    )
    mine, others = {backgrounds[2], backgrounds[3]}, {backgrounds[0], backgrounds[1], backgrounds[4]}
    assert len(mine) == 1 and mine.isdisjoint(others), backgrounds
    assert chrome.errors() == []


# -- the message menu ----------------------------------------------------------------------------------------


@once
def test_the_message_menu_edits_in_place_without_a_page_load(server, browsers, make_room):
    """Edit opens a form inside one's own message; saving shows the change to everyone, with no navigation,
    and the focus goes back to the message's menu button. Escape closes the menu; delete works in place too."""
    room = make_room(title="Editing")
    pat, kim = browsers(), browsers()
    _join(pat, server.url, room.code, "Pat")
    _join(kim, server.url, room.code, "Kim")
    _say(pat, "Helo everyone")
    for chrome in (pat, kim):
        chrome.wait(lambda c=chrome: "Helo everyone" in c.text_of("#log"), message="the message")
    pat.execute_script("window.__stayed = true")
    url = pat.current_url
    li = pat.all("#log .message")[-1]

    more = li.find_element("css selector", ".message__more")
    more.send_keys(Keys.ENTER)
    pat.wait(lambda: pat.switch_to.active_element.get_attribute("data-do") == "copy", message="menu focused")
    assert more.get_attribute("aria-expanded") == "true"
    focused = lambda: pat.switch_to.active_element.get_attribute("aria-label") or ""  # noqa: E731
    pat.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    first_reaction = focused()
    assert first_reaction.startswith("React: ")
    pat.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)  # along the row of reactions
    assert focused().startswith("React: ") and focused() != first_reaction
    pat.switch_to.active_element.send_keys(Keys.ARROW_LEFT)
    assert focused() == first_reaction
    pat.switch_to.active_element.send_keys(Keys.ESCAPE)
    assert pat.switch_to.active_element == more and more.get_attribute("aria-expanded") == "false"

    _menu(pat, li, "edit")
    pat.wait(lambda: pat.switch_to.active_element.tag_name == "textarea", message="the edit box, focused")
    box = pat.switch_to.active_element
    assert box.get_attribute("value") == "Helo everyone"
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("Hello everyone")
    box.send_keys(Keys.ENTER)
    for chrome in (pat, kim):
        chrome.wait(lambda c=chrome: "Hello everyone" in c.text_of("#log .message:last-child"), message="edited")
        assert "(edited)" in chrome.text_of("#log .message:last-child")
    assert pat.current_url == url and pat.execute_script("return window.__stayed === true")
    assert pat.all("#log .message__form") == []
    pat.wait(
        lambda: pat.execute_script("return document.activeElement.classList.contains('message__more')"),
        message="the focus back on the message's button",
    )

    _menu(pat, pat.all("#log .message")[-1], "delete")
    kim.wait(lambda: "Message removed." in kim.text_of("#log .message:last-child"), message="deleted, live")
    assert pat.execute_script("return window.__stayed === true")
    assert pat.errors() == [] and kim.errors() == []


# -- the host in the room ----------------------------------------------------------------------------------


@once
def test_the_host_runs_the_session_from_the_room(app, server, browsers, make_room, make_facilitator):
    """From the panel: hold messages, approve one, remove a message and then a person; participants see each
    change live, and the host's People list follows (online, then left). Removed, Pat's menu offers only copying."""
    hana = make_facilitator(email="hana.room@example.org", name="Hana Host")
    room = make_room(owner=hana, title="Hosted")
    host, pat = browsers(), browsers()
    _sign_in(host, server.url, hana.email)
    host.get(f"{server.url}/r/{room.code}")
    host.wait(lambda: host.css("#connection").get_attribute("data-state") == "live", message="host live")
    host.execute_script(RECORD_PRESENCE)
    _join(pat, server.url, room.code, "Pat")
    pat_id = _seat_id(app, room.code, "Pat")
    row = f"#member-{pat_id}"
    host.wait(lambda: host.all(row), message="Pat in the People list")
    host.wait(lambda: host.css(row).get_attribute("data-presence") == "online", message="Pat online")
    assert "offline" not in host.execute_script("return window.__presence")  # a joiner is here from the start

    host.css("#host-premoderation").click()
    pat.wait(lambda: "once the host approves" in pat.text_of("#room-status"), message="held, said to Pat")
    host.wait(lambda: host.css("#host-premoderation").get_attribute("aria-pressed") == "true")
    _say(pat, "Please approve me")
    host.wait(lambda: "Please approve me" in host.text_of("#host-queue"), message="held, in the host's queue")
    assert "Please approve me" not in pat.text_of("#log")
    host.css("#host-queue form[action*='/approve'] button").click()
    pat.wait(lambda: "Please approve me" in pat.text_of("#log"), message="approved, live")
    host.wait(lambda: "Please approve me" not in host.text_of("#host-queue"), message="the queue empties")
    host.css("#host-premoderation").click()
    pat.wait(lambda: "approves" not in pat.text_of("#room-status"))

    Browser(server.port).join(room.code, "Kim", ROOM_PASSWORD).say(room.code, "Something rude")
    host.wait(lambda: "Something rude" in host.text_of("#log"))
    _menu(host, host.all("#log .message")[-1], "remove")
    pat.wait(lambda: "Message removed by the host." in pat.text_of("#log .message:last-child"), message="removed")
    assert "Something rude" not in pat.text_of("#log")

    pat.all("#log .message .message__more")[0].click()  # Pat's own message: the menu offers edit and delete
    pat.wait(lambda: pat.all("#message-menu [data-do='edit']"), message="Pat's menu")
    pat.switch_to.active_element.send_keys(Keys.ESCAPE)
    host.css(f"{row} form[action$='/remove'] button").click()
    pat.wait(lambda: "The host removed you" in pat.text_of("#room-status"), message="Pat removed, live")
    pat.wait(lambda: pat.css("#connection").get_attribute("data-state") == "closed")
    host.wait(lambda: "left" in host.text_of(row), message="the row says Pat left")
    pat.all("#log .message .message__more")[0].click()
    pat.wait(lambda: pat.all("#message-menu [role=menuitem]"), message="Pat's menu, after the removal")
    assert [b.get_attribute("data-do") for b in pat.all("#message-menu [role=menuitem]")] == ["copy"]  # no more
    assert host.errors() == []


@once
def test_a_removed_reader_stays_on_the_page_when_the_menu_cannot_load(
    app, server, browsers, make_room, make_facilitator
):
    """Sam never opened a message's menu; removed, Sam's page can no longer load it (403). The "…" then says
    why and stays on the room page (where the box kept Sam's text) instead of opening a "No access" page."""
    hana = make_facilitator(email="hana.removed@example.org")
    room = make_room(owner=hana, title="Removed")
    sam = browsers()
    _join(sam, server.url, room.code, "Sam")
    _say(sam, "Hello from Sam")
    sam.wait(lambda: "Hello from Sam" in sam.text_of("#log"), message="Sam's message")
    url = sam.current_url
    host = Browser(server.port).sign_in(hana.email, PASSWORD)
    host.get(f"/r/{room.code}")
    assert host.post(f"/r/{room.code}/members/{_seat_id(app, room.code, 'Sam')}/remove", {"next": "room"}) == 303
    sam.wait(lambda: "The host removed you" in sam.text_of("#room-status"), message="Sam removed, live")
    sam.all("#log .message .message__more")[0].click()
    sam.wait(lambda: "no longer follows the room" in sam.text_of("#alerts"), message="why the menu cannot open")
    assert sam.current_url == url and sam.all("#message-menu") == []
    sam.all("#log .message .message__more")[0].click()  # and again: still here
    assert sam.current_url == url
    sam.execute_script("document.dispatchEvent(new Event('visibilitychange'))")  # no seat to report on: no POST
    time.sleep(0.5)
    assert [e for e in sam.errors() if "/presence" in e] == []


@once
def test_the_owner_page_draws_the_session_with_its_table(server, browsers, make_room, make_facilitator):
    """Two columns on a wide screen; the chart of messages per five minutes, its summary and table; who took part."""
    hana = make_facilitator(email="hana.chart@example.org")
    room = make_room(owner=hana, title="Charted")
    for alias, count in (("Ana", 3), ("Ben", 1)):
        writer = Browser(server.port).join(room.code, alias, ROOM_PASSWORD)
        for n in range(count):
            writer.say(room.code, f"{alias} {n}")
    chrome = browsers(width=1280, height=900)
    _sign_in(chrome, server.url, hana.email)
    chrome.get(f"{server.url}/rooms/{room.code}")
    main, side = chrome.css(".overview__main").rect, chrome.css(".overview__side").rect
    assert side["x"] > main["x"] + main["width"] - 1  # side by side
    svg = chrome.css("svg.chart__svg")
    assert svg.get_attribute("role") == "img" and svg.is_displayed()
    assert len(chrome.all("svg.chart__svg rect.chart__bar")) >= 1
    assert "4 messages" in chrome.text_of("#activity-summary")
    chrome.css(".chart__data summary").click()
    cells = [td.text for td in chrome.all(".chart__data tbody td")]
    assert sum(int(c) for c in cells) == 4
    people = [
        [c.text for c in tr.find_elements("css selector", "th, td")][:2] for tr in chrome.all(".people-table tbody tr")
    ]
    assert people == [["Ana", "3"], ["Ben", "1"]]
    assert chrome.errors() == []


# -- without JavaScript -------------------------------------------------------------------------------------


@once
def test_every_room_action_works_without_javascript(app, server, browsers, make_room, make_facilitator):
    """The host's tools in the room and the message page, as plain forms: hold and approve, slow mode, edit,
    delete, report and dismiss, remove a message, remove and ban a person, lock, unlock, extend and end."""
    hana = make_facilitator(email="hana.nojs@example.org")
    room = make_room(owner=hana, title="Plain forms")
    code = room.code
    host, pat = browsers(javascript=False), browsers(javascript=False)
    _sign_in(host, server.url, hana.email)
    room_url = f"{server.url}/r/{code}"
    host.get(room_url)
    _join(pat, server.url, code, "Pat", live=False)
    kim = Browser(server.port).join(code, "Kim", ROOM_PASSWORD)

    def submit(chrome: Chrome, selector: str, text: str | None = None) -> None:
        chrome.css(selector).click()
        if text:
            chrome.wait(lambda: text in chrome.css("body").text, message=f"{text!r} after {selector}")

    # Hold messages for approval, approve one.
    host.get(room_url)
    submit(host, "#host-premoderation", "Pre-moderation saved.")
    pat.get(room_url)
    pat.fill({"body": "Held without JavaScript"})
    submit(pat, "#composer button[type=submit]", "Waiting for the host: Held without JavaScript")
    host.get(room_url)
    assert "Held without JavaScript" in host.text_of("#host-queue")
    submit(host, "#host-queue form[action*='/approve'] button", "Waiting for approval (0)")
    pat.get(room_url)
    assert "Held without JavaScript" in pat.text_of("#log")
    host.get(room_url)
    submit(host, "#host-premoderation", "Pre-moderation saved.")

    # Slow mode: on, then off.
    host.css("#host-seconds").clear()
    host.css("#host-seconds").send_keys("5")
    submit(host, "#host-slow-mode", "Slow mode: one message every 5 s.")
    host.css("#host-seconds").clear()
    host.css("#host-seconds").send_keys("0")
    submit(host, "#host-slow-mode", "Slow mode saved.")

    # Pat edits and deletes their own message from its page.
    pat.get(room_url)
    pat.fill({"body": "Helo"})
    submit(pat, "#composer button[type=submit]")
    pat.wait(lambda: "Helo" in pat.text_of("#log"), message="the post, back on the room page")
    pat.all("#log .message__more")[-1].click()
    pat.wait(lambda: "/messages/" in pat.current_url)
    pat.fill({"body": "Hello"})
    submit(pat, "form[action$='/edit'] button[type=submit]", "Message edited.")
    assert "Hello" in pat.text_of("#log") and "(edited)" in pat.text_of("#log")
    pat.all("#log .message__more")[-1].click()
    submit(pat, "form[action$='/delete'] button", "Message deleted.")

    # Pat reports Kim's message; the host dismisses the report, then removes the message from its page.
    kim.say(code, "A rude remark")
    pat.get(room_url)
    pat.all("#log .message__more")[-1].click()
    pat.fill({"reason": "Rude"})
    submit(pat, "form[action$='/report'] button[type=submit]", "The host has been told.")
    host.get(room_url)
    assert "Rude" in host.text_of("#host-reports")
    submit(host, "#host-reports form[action*='/dismiss'] button")
    host.wait(lambda: "Rude" not in host.text_of("#host-reports"), message="the report dismissed")
    host.get(room_url)
    host.all("#log .message__more")[-1].click()
    submit(host, "form[action$='/remove'] button", "Message removed.")

    # The host removes Pat and bans Kim from the People list.
    pat_id, kim_id = _seat_id(app, code, "Pat"), _seat_id(app, code, "Kim")
    host.get(room_url)
    submit(host, f"#member-{pat_id} form[action$='/remove'] button", "Pat was removed from the room.")
    submit(host, f"#member-{kim_id} form[action$='/ban'] button", "Kim was removed and cannot join")
    pat.get(room_url)
    assert pat.all("form[action$='/join']")

    # Lock, unlock, extend and end.
    submit(host, "#host-lock", "Room locked")
    assert host.css("#host-lock").get_attribute("aria-pressed") == "true"
    submit(host, "#host-lock", "Room unlocked.")
    submit(host, "#host-extend", "End time extended.")
    submit(host, "#host-end", "Room ended.")
    assert "This room has ended" in host.text_of("#room-status")
    assert host.errors() == [] and pat.errors() == []
