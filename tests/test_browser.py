"""The room as people use it, in Debian's headless Chromium: the journeys with JavaScript on and off,
axe-core on every page in both themes and at 320 px, the page weight, and the fallback to polling
behind the two nginx middleboxes our users meet (one that compresses the stream, one that refuses it).

Two participants chatting live runs in both passes of tests/run.sh (the stream goes through Redis in the
first); everything else here is the page's own behaviour, the same on either backend, and runs once, in
the embedded pass. Each test starts its browsers and servers itself and bounds every wait.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from selenium.webdriver.common.keys import Keys

from chatroom.extensions import db
from chatroom.models import Facilitator, Room, utcnow
from chatroom.services import admin, members, messages, tokens
from support.browser import AppServer, Chrome, Nginx, connection_state, describe, join_room, sign_in
from support.constants import PASSWORD, ROOM_PASSWORD
from support.factories import fill_room
from support.live import Browser

pytestmark = pytest.mark.live

once = pytest.mark.once  # page checks do not depend on the backend: tests/run.sh runs them in the embedded pass only

# Short live-update timings for the tests; production defaults are 10 s / 5 s / 30 s (chat/room.html).
LIVE = {"LIVE_STALL_SECONDS": 4, "LIVE_POLL_SECONDS": 1, "LIVE_RETRY_SECONDS": 3}


@pytest.fixture(scope="module")
def server(browser_tools: None, _schema: None, database_url: str, redis_url: str | None) -> Iterator[AppServer]:
    app_server = AppServer(database_url, redis_url, LIVE).start()
    yield app_server
    app_server.stop()


def _room_row(app: Any, code: str) -> Room:
    with app.app_context():
        room = db.session.query(Room).filter_by(code=code).one()
        db.session.expunge(room)
        return room


def _log_text(chrome: Chrome) -> str:
    return chrome.text_of("#log")


def _said(chrome: Chrome) -> str:
    """The last sentence announce.js put in #announcer (each is a paragraph of its own)."""
    return str(
        chrome.execute_script(
            "var a = document.getElementById('announcer').lastElementChild; return a ? a.textContent : ''"
        )
    )


def _seqs(chrome: Chrome) -> list[int]:
    return [
        int(s)
        for s in chrome.execute_script("return [...document.querySelectorAll('#log .message')].map(m => m.dataset.seq)")
    ]


def _type_and_enter(chrome: Chrome, text: str) -> None:
    box = chrome.css("#field-body")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


# -- with JavaScript ------------------------------------------------------------------------------------


def test_two_participants_chat_live(app, server, browsers):
    """Sign up, create a room, two participants in their own browsers join, see each other here and typing,
    and exchange messages live both ways; posting keeps the focus in a cleared message box."""
    host = browsers()
    host.get(f"{server.url}/signup")
    host.fill({"name": "Hana Host", "email": "hana@example.org", "password": PASSWORD})
    host.css("form[action='/signup'] button[type=submit]").click()
    host.wait(lambda: host.current_url.endswith("/login"), message="sign-in page after sign-up")
    host.fill({"email": "hana@example.org", "password": PASSWORD})  # signing up does not sign in (issue 11)
    host.css("form[action='/login'] button[type=submit]").click()
    host.wait(lambda: host.current_url.endswith("/rooms/"), message="dashboard after signing in")
    host.css("a[href='/rooms/new']").click()
    host.fill({"title": "Planning", "password": ROOM_PASSWORD})
    start = utcnow() - timedelta(minutes=10)
    host.set_value("#field-starts_at", start.strftime("%Y-%m-%dT%H:%M"))
    host.set_value("#field-ends_at", (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    host.css("form[action='/rooms/'] button[type=submit]").click()
    link = host.wait(lambda: host.css(".share a").text, message="the share link")
    code = link.rstrip("/").rsplit("/", 1)[1]
    assert host.errors() == []
    host.quit()

    pat, kim = browsers(), browsers()
    join_room(pat, server.url, code, "Pat")
    join_room(kim, server.url, code, "Kim")
    for chrome in (pat, kim):
        chrome.wait(lambda c=chrome: connection_state(c) == "live", message="live")
        chrome.wait(lambda c=chrome: {"Pat", "Kim"} <= set(c.text_of("#presence").split()), message="here now")

    kim.css("#field-body").send_keys("Hel")  # typing is signalled at once, then at most every 3 s
    pat.wait(lambda: "Kim is typing" in pat.text_of("#typing"), message="Kim typing, seen by Pat")
    _type_and_enter(kim, "lo Pat")
    for chrome in (pat, kim):
        chrome.wait(lambda c=chrome: "Hello Pat" in _log_text(c), message="Kim's message")
    kim.wait(lambda: kim.css("#field-body").get_attribute("value") == "", message="a cleared box")
    assert kim.execute_script("return document.activeElement.id") == "field-body"

    box = pat.css("#field-body")
    box.send_keys("Hi Kim,")
    box.send_keys(Keys.SHIFT, Keys.ENTER)  # a new line, not a send
    box.send_keys("two lines")
    assert pat.css("#field-body").get_attribute("value") == "Hi Kim,\ntwo lines"
    box.send_keys(Keys.ENTER)
    kim.wait(lambda: "Hi Kim,\ntwo lines" in _log_text(kim), message="Pat's message, both lines")
    assert pat.execute_script("return document.activeElement.id") == "field-body"

    # Each message: alias, time (as <time datetime>) and text; its menu copies the text and says so.
    last = kim.all("#log .message")[-1]
    assert last.find_element("css selector", ".message__alias").text == "Pat"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", last.find_element("css selector", "time").get_attribute("datetime")
    )
    kim.allow_clipboard(server.url)
    more = last.find_element("css selector", ".message__more")
    more.click()
    kim.wait(lambda: kim.switch_to.active_element.get_attribute("data-do") == "copy", message="the menu, focused")
    kim.switch_to.active_element.send_keys(Keys.ENTER)
    kim.wait(lambda: _said(kim) == "Message copied.", message="the copy announced")
    assert kim.switch_to.active_element == more  # the focus is back on the menu button
    copied = kim.execute_async_script(
        "var done = arguments[0]; navigator.clipboard.readText().then(done, e => done('error ' + e))"
    )
    assert copied == "Hi Kim,\ntwo lines"
    assert kim.css("#messages").get_attribute("role") == "log" and kim.css("#log").tag_name == "ol"
    for chrome in (pat, kim):
        assert chrome.errors() == []


@once
def test_reading_older_and_newer_messages_with_javascript(app, server, browsers, make_room):
    """The view stays put: older messages load at the top (and by the link, keeping the focus), new ones
    are followed only from the bottom, otherwise counted on a button that takes the reader there."""
    room = make_room(title="Reading")
    fill_room(app, room, 120)
    poster = Browser(server.port).join(room.code, "Poster", ROOM_PASSWORD)
    chrome = browsers()
    join_room(chrome, server.url, room.code, "Reader")
    chrome.wait(lambda: connection_state(chrome) == "live", message="live")
    log = "document.getElementById('messages')"  # the live region, which scrolls
    assert chrome.execute_script(f"var l = {log}; return l.scrollHeight - l.scrollTop - l.clientHeight < 48")
    assert _seqs(chrome) == list(range(71, 121))

    # Scrolled up, a new message is counted, not scrolled to.
    chrome.execute_script(f"var l = {log}; l.scrollTop = l.scrollHeight / 2")
    time.sleep(0.3)
    top = chrome.execute_script(f"return {log}.scrollTop")
    poster.say(room.code, "Are you there?")
    chrome.wait(lambda: chrome.css("#jump").is_displayed(), message="the new-messages button")
    assert chrome.css("#jump").text == "1 new message"
    assert abs(chrome.execute_script(f"return {log}.scrollTop") - top) < 2
    chrome.css("#jump").click()
    chrome.wait(
        lambda: chrome.execute_script(f"var l = {log}; return l.scrollHeight - l.scrollTop - l.clientHeight < 1")
    )
    time.sleep(0.5)  # the smooth scroll's last frames
    assert not chrome.css("#jump").is_displayed()
    assert chrome.execute_script("return document.activeElement.id") == "messages"

    # At the top, older messages load and the message that was first stays where it was on screen.
    offset = (
        f"var l = {log}, m = l.querySelector('#message-71');"
        "return m.getBoundingClientRect().top - l.getBoundingClientRect().top"
    )
    before = chrome.execute_script(f"{log}.scrollTop = 0; {offset}")  # measured before the scroll event runs
    chrome.wait(lambda: _seqs(chrome)[0] == 21, message="older messages")
    time.sleep(0.3)
    after = chrome.execute_script(offset)
    assert abs(after - before) < 2, (before, after)

    # By keyboard: the link loads the rest and the focus stays on what replaces it.
    chrome.execute_script("document.getElementById('older-link').focus()")
    chrome.switch_to.active_element.send_keys(Keys.ENTER)
    chrome.wait(lambda: _seqs(chrome)[0] == 1, message="the start of the room")
    chrome.wait(lambda: chrome.execute_script("return document.activeElement.id") == "older-start")
    assert _seqs(chrome) == list(range(1, 122))
    assert chrome.errors() == []


# -- without JavaScript -----------------------------------------------------------------------------------


@once
def test_everything_but_live_updates_works_without_javascript(app, server, browsers, make_room, make_facilitator):
    """Sign up, create and edit a room, switch the theme, sign out and in; join, post, read newer and older
    messages, switch auto-refresh on and off, leave: all with plain forms and links."""
    chrome = browsers(javascript=False)
    chrome.get(f"{server.url}/signup")
    chrome.fill({"name": "Nora Noscript", "email": "nora@example.org", "password": PASSWORD})
    chrome.css("form[action='/signup'] button[type=submit]").click()
    chrome.wait(lambda: chrome.current_url.endswith("/login"))
    chrome.fill({"email": "nora@example.org", "password": PASSWORD})  # signing up does not sign in (issue 11)
    chrome.css("form[action='/login'] button[type=submit]").click()
    chrome.wait(lambda: chrome.current_url.endswith("/rooms/"))
    chrome.get(f"{server.url}/rooms/new")
    chrome.fill({"title": "Offline", "password": ROOM_PASSWORD})
    start = utcnow() - timedelta(minutes=10)
    chrome.set_value("#field-starts_at", start.strftime("%Y-%m-%dT%H:%M"))
    chrome.set_value("#field-ends_at", (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    chrome.css("form[action='/rooms/'] button[type=submit]").click()
    code = chrome.wait(lambda: chrome.css(".share a").text).rstrip("/").rsplit("/", 1)[1]
    chrome.css(f"a[href='/rooms/{code}/edit']").click()
    chrome.fill({"title": "Offline workshop"})
    chrome.css(f"form[action='/rooms/{code}'] button[type=submit]").click()
    chrome.wait(lambda: chrome.css("h1").text == "Offline workshop")

    chrome.css(".theme-switch button[value=dark]").click()
    chrome.wait(lambda: chrome.css("html").get_attribute("data-theme") == "dark")
    assert chrome.css("h1").text == "Offline workshop"  # back on the same page
    chrome.get(f"{server.url}/rooms/")
    assert chrome.css("html").get_attribute("data-theme") == "dark"  # and it stays
    chrome.css(".site-header form[action='/logout'] button").click()
    chrome.wait(lambda: "signed out" in chrome.text_of(".flashes"))
    chrome.get(f"{server.url}/login")
    chrome.fill({"email": "nora@example.org", "password": PASSWORD})
    chrome.css("form[action='/login'] button[type=submit]").click()
    chrome.wait(lambda: chrome.current_url.endswith("/rooms/"))
    chrome.css(".site-header form[action='/logout'] button").click()
    chrome.wait(lambda: "signed out" in chrome.text_of(".flashes"))

    fill_room(app, _room_row(app, code), 60)
    join_room(chrome, server.url, code, "Quiet")
    assert chrome.all("#log [role=button]") == [] and not chrome.css("#mute").is_displayed()  # options are links
    chrome.fill({"body": "Posted without JavaScript"})
    chrome.css("#composer button[type=submit]").click()
    chrome.wait(lambda: chrome.current_url.endswith("#composer"))
    assert chrome.all("#log .message__body")[-1].text == "Posted without JavaScript"
    last_seen = _seqs(chrome)[-1]

    Browser(server.port).join(code, "Loud", ROOM_PASSWORD).say(code, "A newer message")
    chrome.css("#connection a").click()  # "Newer messages", keeping the place
    chrome.wait(lambda: "/newer?after=" in chrome.current_url and chrome.current_url.endswith("#since"))
    assert _seqs(chrome) == [last_seen + 1]
    assert chrome.css("#since").text == "1 new message since you last looked"
    assert "A newer message" in _log_text(chrome)

    chrome.css("form.autorefresh button").click()
    chrome.wait(lambda: "Stop refreshing" in chrome.page_source)
    assert re.search(r'<meta http-equiv="refresh" content="30; url=[^"]+/newer\?after=\d+#since"', chrome.page_source)
    chrome.css("form.autorefresh button").click()
    chrome.wait(lambda: "Refresh every 30 seconds" in chrome.page_source)
    assert 'http-equiv="refresh"' not in chrome.page_source

    shown = _seqs(chrome)
    chrome.css("#older-link").click()
    chrome.wait(lambda: "before=" in chrome.current_url)
    older = _seqs(chrome)
    assert older == list(range(max(1, shown[0] - 50), shown[0]))
    chrome.css("p.newer a").click()
    chrome.wait(lambda: "/newer?after=" in chrome.current_url)
    assert _seqs(chrome)[0] == older[-1] + 1

    chrome.css("form[action$='/leave'] button").click()
    chrome.wait(lambda: chrome.all("form[action$='/join']"))
    assert chrome.errors() == []


# -- restricted networks ----------------------------------------------------------------------------------


@once
@pytest.mark.parametrize("mode", ["gzip", "refuse"])
def test_falls_back_to_polling_behind_a_middlebox(app, server, browsers, make_room, mode):
    """Behind a proxy that compresses the stream (so nothing arrives) or refuses it, the page says so,
    polls for newer messages (posting still works) and tries the stream again later."""
    room = make_room(title="Behind a proxy")
    fill_room(app, room, 3)
    proxy = Nginx(server.port, mode).start()
    try:
        chrome = browsers()
        join_room(chrome, proxy.url, room.code, "Pat")
        chrome.wait(
            lambda: connection_state(chrome) == "fallback", timeout=LIVE["LIVE_STALL_SECONDS"] + 6, message="fallback"
        )
        assert "cannot get through" in chrome.text_of("#connection")
        assert "cannot get through" in _said(chrome)  # and said, once it really engaged

        Browser(server.port).join(room.code, "Kim", ROOM_PASSWORD).say(room.code, "Can you read me?")
        chrome.wait(lambda: "Can you read me?" in _log_text(chrome), timeout=8, message="a polled message")
        _type_and_enter(chrome, "Loud and clear")
        chrome.wait(lambda: "Loud and clear" in _log_text(chrome), timeout=8, message="own message, polled")
        seqs = _seqs(chrome)
        assert seqs == sorted(set(seqs)) == list(range(1, 6))  # each once, in order
        assert connection_state(chrome) == "fallback"
        # It tries the stream again later (the proxy logs a request when it ends).
        chrome.wait(lambda: len(proxy.requests("/events")) >= 2, timeout=2 * LIVE["LIVE_STALL_SECONDS"] + 12)
        assert connection_state(chrome) == "fallback"
        assert not [e for e in chrome.errors() if "/events" not in e]  # only the refused streams
    finally:
        proxy.stop()


@once
def test_a_proxy_that_passes_the_stream_stays_live(app, server, browsers, make_room):
    """The control: the same nginx without the compression passes each event on, so the page is live."""
    room = make_room(title="Plain proxy")
    proxy = Nginx(server.port, "plain").start()
    try:
        chrome = browsers()
        join_room(chrome, proxy.url, room.code, "Pat")
        chrome.wait(lambda: connection_state(chrome) == "live", message="live through the proxy")
        Browser(server.port).join(room.code, "Kim", ROOM_PASSWORD).say(room.code, "Streamed")
        chrome.wait(lambda: "Streamed" in _log_text(chrome), timeout=5)
        time.sleep(LIVE["LIVE_STALL_SECONDS"] + 1)  # heartbeats keep it live
        assert connection_state(chrome) == "live"
    finally:
        proxy.stop()


@once
def test_the_hosts_queue_changes_one_item_at_a_time_in_the_page(app, server, browsers, make_room, make_facilitator):
    """Issue 11: the stream sends the host one item per change (appended, deleted by id) and the new count;
    htmx applies them in the host's page, and approving one publishes it and takes it off the queue."""
    facilitator = make_facilitator(email="quinn@example.org", name="Quinn")
    room = make_room(owner=facilitator, title="Held")
    with app.app_context():
        from chatroom.services import rooms

        rooms.set_premoderation(db.session.get(Room, room.id), True)
    host = browsers()
    sign_in(host, server.url, facilitator.email)
    host.get(f"{server.url}/r/{room.code}")
    host.wait(lambda: connection_state(host) == "live", message="the host's page live")
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    for text in ("first held", "second held", "third held"):
        pat.say(room.code, text)
    host.wait(lambda: len(host.all("#host-queue-list li")) == 3, message="three held messages, appended live")
    assert host.text_of("#host-queue-heading") == "Waiting for approval (3)"
    assert "first held" in host.text_of("#host-queue-list li:first-child")
    host.css("#host-queue-list li:first-child button[type=submit]").click()  # Approve
    host.wait(lambda: len(host.all("#host-queue-list li")) == 2, message="the approved one leaves the queue")
    host.wait(lambda: host.text_of("#host-queue-heading") == "Waiting for approval (2)", message="the count")
    host.wait(lambda: "first held" in _log_text(host), message="the approved message in the room")
    assert "first held" not in host.text_of("#host-queue-list")
    assert host.errors() == []


# -- every page: WCAG 2.2 AA (axe-core), both themes, 320 px ----------------------------------------------


def _submit_empty(chrome: Chrome) -> None:
    chrome.css("main form[method=post] button[type=submit]").click()
    chrome.wait(lambda: chrome.all(".error-summary"), message="the error summary")


def _open_menu(chrome: Chrome) -> None:
    """The message menu, open on the newest message (one's own: edit and delete; the host's: remove, ban)."""
    chrome.all("#log .message__more")[-1].click()
    chrome.wait(lambda: chrome.all("#message-menu [role=menuitem]"), message="the message menu")


def _open_other_menu(chrome: Chrome) -> None:
    """The message menu on someone else's message (report; for the host: remove the person, ban)."""
    chrome.execute_script("document.querySelector('#log .message:not(:last-child) .message__more').click()")
    chrome.wait(lambda: chrome.all("#message-menu [role=menuitem]"), message="the message menu")


def _edit_inline(chrome: Chrome) -> None:
    """One's own newest message, turned into its edit form."""
    _open_menu(chrome)
    chrome.css("#message-menu [data-do=edit]").click()
    chrome.wait(lambda: chrome.all("#log .message__form textarea"), message="the inline edit form")


def _join_wrongly(chrome: Chrome) -> None:
    chrome.fill({"alias": "Mallory", "password": "not the password"})
    _submit_empty(chrome)


@once
def test_every_page_meets_wcag_22_aa_in_both_themes_and_fits_320_px(app, server, browsers, make_room, make_facilitator):
    """axe-core finds no WCAG 2.0, 2.1 or 2.2 A/AA violation on any page, light or dark, and no page
    scrolls sideways at 320 px (a phone, or 1280 px at 400% zoom)."""
    host = make_facilitator(email="axe@example.org", name="Hana Host")
    with app.app_context():  # an admin, so the /admin pages are checked too
        admin.set_admin(db.session.get(Facilitator, host.id), True)
        tokens.create(db.session.get(Facilitator, host.id), "archive script")
    room = make_room(owner=host, title="Accessible room")
    fill_room(app, room, 70)
    scheduled = make_room(owner=host, title="Later", starts_in=timedelta(days=1))
    ended = make_room(owner=host, title="Earlier", starts_in=timedelta(days=-2))
    code = room.code
    who = {"anonymous": browsers(), "host": browsers(), "participant": browsers()}
    sign_in(who["host"], server.url, host.email)
    join_room(who["participant"], server.url, code, "Pat")
    _type_and_enter(who["participant"], "A message of my own")
    mine = 71
    who["participant"].wait(lambda: _seqs(who["participant"])[-1] == mine)
    # Without our scripts (axe itself needs page scripting, so they are blocked rather than all JavaScript).
    no_script = browsers()
    no_script.execute_cdp_cmd("Network.enable", {})
    no_script.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*.js", "*.js?*"]})  # not the stylesheet
    join_room(no_script, server.url, code, "Quiet")
    pages: list[tuple[str, str, Any]] = [
        ("anonymous", "/", None),
        ("anonymous", "/login", None),
        ("anonymous", "/login", _submit_empty),
        ("anonymous", "/signup", None),
        ("anonymous", "/signup", _submit_empty),
        ("anonymous", "/password/forgot", None),
        ("anonymous", f"/r/{code}", None),
        ("anonymous", f"/r/{code}", _join_wrongly),
        ("anonymous", f"/r/{scheduled.code}", None),
        ("anonymous", f"/r/{ended.code}", None),
        ("anonymous", "/r/nosuchroom", None),
        ("host", "/rooms/", None),
        ("host", "/rooms/new", None),
        ("host", "/rooms/new", _submit_empty),
        ("host", f"/rooms/{code}", None),
        ("host", f"/rooms/{code}/edit", None),
        ("host", f"/rooms/{code}/audit", None),
        ("host", f"/rooms/{code}/delete", None),
        ("host", f"/rooms/{code}/transcript.html", None),
        ("host", "/account", None),
        ("host", "/admin/", None),
        ("host", "/admin/facilitators", None),
        ("host", "/admin/signup", None),
        ("anonymous", "/api/docs", None),
        ("host", f"/r/{code}", None),
        ("host", f"/r/{code}", _open_other_menu),
        ("participant", f"/r/{code}", None),
        ("participant", f"/r/{code}", _open_menu),
        ("participant", f"/r/{code}", _open_other_menu),
        ("participant", f"/r/{code}", _edit_inline),
        ("participant", f"/r/{code}?before=30", None),
        ("participant", f"/r/{code}/newer?after=30", None),
        ("participant", f"/r/{code}/messages/{mine}", None),
        ("participant", f"/r/{code}/messages/5", None),
        ("no script", f"/r/{code}", None),
        ("no script", f"/r/{code}/newer?after=71", None),
    ]
    who["no script"] = no_script
    failures: list[str] = []
    for theme in ("light", "dark"):
        for chrome in who.values():
            chrome.get(f"{server.url}/healthz")
            chrome.add_cookie({"name": "theme", "value": theme, "path": "/"})
        for person, path, action in pages:
            chrome = who[person]
            chrome.get(server.url + path)
            if action:
                action(chrome)
            if chrome.all("#connection") and person != "no script":
                chrome.wait(lambda c=chrome: connection_state(c) in ("live", "static"), message=f"{path} settled")
            label = f"{theme} {person} {path}{' (' + action.__name__ + ')' if action else ''}"
            if chrome.all(".theme-switch"):  # the printable transcript is black on white, always
                assert chrome.css("html").get_attribute("data-theme") == theme, label
            found = chrome.axe()
            if found:
                failures.append(f"{label}:\n{describe(found)}")
            if theme == "light":
                chrome.emulate(width=320, height=640)
                wide = chrome.execute_script("return document.documentElement.scrollWidth")
                if wide > 320:
                    failures.append(f"{label}: {wide} px wide at 320 px")
                chrome.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert not failures, "\n".join(failures)


# -- page weight --------------------------------------------------------------------------------------------


@once
def test_room_page_weight_on_the_wire(app, server, browsers, make_room):
    """First load of a room page with 50 messages, headers included: HTML + CSS + JS within 30 KB with
    JavaScript, 12 KB without; every byte from this host, no fonts."""
    room = make_room(title="Weekly planning workshop")
    fill_room(app, room, 60)
    totals = {}
    for javascript in (True, False):
        chrome = browsers(javascript=javascript)
        join_room(chrome, server.url, room.code, "Pat" if javascript else "Quiet")
        chrome.execute_cdp_cmd("Network.clearBrowserCache", {})
        chrome.bytes_received()
        chrome.get(f"{server.url}/r/{room.code}")
        if javascript:
            chrome.wait(lambda c=chrome: connection_state(c) == "live", message="live")
        assert len(chrome.all("#log .message")) == 50
        sizes = {url: n for url, n in chrome.bytes_received().items() if "/events" not in url}
        assert all(url.startswith(server.url) for url in sizes), sizes
        assert not any(url.endswith((".woff", ".woff2", ".ttf", ".otf")) for url in sizes)
        totals[javascript] = sum(sizes.values())
        print(f"room page on the wire, JavaScript {'on' if javascript else 'off'}: {totals[javascript]} B {sizes}")
    assert totals[True] <= 30_000
    assert totals[False] <= 12_000


# -- reconnecting -------------------------------------------------------------------------------------------


def _post_directly(app: Any, code: str, texts: list[str]) -> None:
    with app.test_request_context():
        row = db.session.query(Room).filter_by(code=code).one()
        author = members.join(row, "Offline writer", ROOM_PASSWORD)
        for n, text in enumerate(texts):
            messages.post(author, text, f"{n:032x}")


@once
def test_reconnecting_is_shown_and_the_catch_up_is_announced_as_a_count(
    app, browsers, make_room, database_url, redis_url
):
    """The server goes away: the page says it is reconnecting; when it is back, the messages missed meanwhile
    arrive once each and are announced as "3 new messages", not read one by one. Muting silences the log."""
    room = make_room(title="Flaky server")
    own = AppServer(database_url, redis_url, {**LIVE, "LIVE_STALL_SECONDS": 20}).start()
    try:
        chrome = browsers()
        join_room(chrome, own.url, room.code, "Pat")
        chrome.wait(lambda: connection_state(chrome) == "live")
        own.stop()
        chrome.wait(lambda: connection_state(chrome) == "reconnecting", message="reconnecting")
        assert chrome.text_of("#connection") == "Connection lost. Reconnecting…"
        _post_directly(app, room.code, ["one", "two", "three"])
        own.start()
        chrome.wait(lambda: connection_state(chrome) == "live", timeout=20, message="live again")
        chrome.wait(lambda: _said(chrome) == "3 new messages", message="the burst, as a count")
        assert _seqs(chrome) == [1, 2, 3]
        # The log is never a live region (announce.js words each event in #announcer; tests/test_screen_reader.py
        # listens to it); muting is remembered.
        assert chrome.css("#messages").get_attribute("aria-live") == "off"
        chrome.execute_script("document.getElementById('mute').click()")
        chrome.refresh()
        chrome.wait(lambda: chrome.css("#mute").is_selected(), message="muting is remembered")
    finally:
        own.stop()


@once
def test_keyboard_skip_link_and_live_regions(app, server, browsers, make_room):
    """The first Tab reaches the skip link, which lands in the message box; live regions are never nested."""
    room = make_room(title="Keys")
    fill_room(app, room, 5)
    chrome = browsers()
    join_room(chrome, server.url, room.code, "Pat")
    chrome.wait(lambda: connection_state(chrome) == "live")
    chrome.refresh()
    chrome.wait(lambda: connection_state(chrome) == "live")
    chrome.css("body").send_keys(Keys.TAB)
    skip = chrome.switch_to.active_element
    assert skip.get_attribute("class") == "skip-link" and skip.text == "Skip to the message box"
    assert skip.value_of_css_property("outline-style") != "none"  # focus is visible
    skip.send_keys(Keys.ENTER)
    chrome.wait(lambda: chrome.execute_script("return document.activeElement.id") == "field-body")
    nested = chrome.execute_script(
        "var live = '[role=log],[role=status],[role=alert],[aria-live]';"
        "return [...document.querySelectorAll(live)].filter(e => e.parentElement.closest(live))"
        ".map(e => e.id || e.className)"
    )
    assert nested == []
