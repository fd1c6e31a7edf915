"""A real class, a real session (issue 17), in Debian's headless Chromium against gunicorn with the production
rate limits on: a class of 60 joining from one address, a removal and a lock while someone types, a send while
offline, a room in the spring gap, input methods' Enter in both engines' orders, presence that is true (a closed
tab leaves "Here now" within 5 s, away, quiet notices), typing that clears, and refused requests that leave the
page usable. Each test starts its browsers itself and bounds every wait. See tests/test_session.py for the same
rules at the service and view level."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from selenium.webdriver.common.keys import Keys
from sqlalchemy import select

from chatroom.extensions import db
from chatroom.models import Membership, Message
from support.browser import AppServer, Chrome, connection_state, join_room, require_tools
from support.constants import PASSWORD, ROOM_PASSWORD
from support.live import Browser

pytestmark = [pytest.mark.live, pytest.mark.once]

LIVE = {"LIVE_STALL_SECONDS": 4, "LIVE_POLL_SECONDS": 1, "LIVE_RETRY_SECONDS": 3}


@pytest.fixture
def server(_schema: None, database_url: str, redis_url: str | None) -> Iterator[AppServer]:
    """A fresh server per test: presence lives in the process, and the embedded pass reuses row ids."""
    require_tools()
    app_server = AppServer(database_url, redis_url, LIVE)
    app_server.env["RATELIMIT_ENABLED"] = "1"  # production limits: the class must get in anyway
    app_server.env["PRESENCE_PAGE_SECONDS"] = "60"  # a page load counts as here for a minute
    app_server.start()
    yield app_server
    app_server.stop()


@pytest.fixture
def host(server, make_facilitator):
    """The room's facilitator, signed in over plain HTTP (their actions are not what is under test here)."""
    facilitator = make_facilitator(name="Hana Host")
    return facilitator, Browser(server.port).sign_in(facilitator.email, PASSWORD)


def _live(chrome: Chrome) -> None:
    chrome.wait(lambda: connection_state(chrome) == "live", message="live")


def _box(chrome: Chrome) -> str:
    return str(chrome.execute_script("var b = document.getElementById('field-body'); return b ? b.value : null"))


def _seat(app: Any, code: str, alias: str) -> int:
    with app.app_context():
        from chatroom.models import Room

        room_id = db.session.scalar(select(Room.id).where(Room.code == code))
        return int(
            db.session.scalar(
                select(Membership.id).where(
                    Membership.room_id == room_id, Membership.alias == alias, Membership.left_at.is_(None)
                )
            )
        )


def _count(app: Any, body: str) -> int:
    with app.app_context():
        return len(db.session.scalars(select(Message.id).where(Message.body == body)).all())


# -- everyone gets in ---------------------------------------------------------------------------------------


def test_a_class_of_60_joins_one_room_from_one_address_with_limits_on(app, server, browsers, host, make_room):
    """59 students over plain HTTP and one in Chromium, all from 127.0.0.1, some mistyping the password first:
    all 60 get in, and the room's "Here now" counts them (the ones without JavaScript by their page loads)."""
    facilitator, _ = host
    room = make_room(owner=facilitator, title="Class 4B")
    for n in range(59):
        student = Browser(server.port)
        student.get(f"/r/{room.code}")
        if n % 8 == 0:
            assert student.post(f"/r/{room.code}/join", {"alias": f"S{n}", "password": "open sesam"}) == 403
        assert student.post(f"/r/{room.code}/join", {"alias": f"Student {n}", "password": ROOM_PASSWORD}) == 303
        assert student.get(f"/r/{room.code}")[0] == 200
    chrome = browsers()
    join_room(chrome, server.url, room.code, "Last one in")
    _live(chrome)
    # Above 50 here, "Here now" is a count and a link to the list (each arrival costs every reader a line).
    chrome.wait(lambda: "60 people here now" in chrome.text_of("#presence"), message="60 here now")
    # (The link is read, not clicked: "Here now" is swapped live, and a click can land on the list it replaced.)
    chrome.get(chrome.wait(lambda: chrome.css("#presence a").get_attribute("href"), message="the link"))
    chrome.wait(lambda: chrome.css("h1").text.startswith("Here now in"), message="the list page")
    names = [li.text for li in chrome.all("#presence li[data-member]")]
    assert len(names) == 60 and "Student 58" in names and "Last one in" in names
    assert chrome.errors() == []


# -- nothing typed is lost ----------------------------------------------------------------------------------


def test_removed_while_typing_the_text_is_given_back(app, server, browsers, host, make_room):
    facilitator, hana = host
    room = make_room(owner=facilitator, title="Removal")
    chrome = browsers()
    join_room(chrome, server.url, room.code, "Pat")
    _live(chrome)
    chrome.css("#field-body").send_keys("my long careful answer")
    assert hana.post(f"/r/{room.code}/members/{_seat(app, room.code, 'Pat')}/remove", {}) == 303
    chrome.wait(lambda: connection_state(chrome) == "closed", message="the stream closed")
    chrome.wait(lambda: chrome.css("#field-body").get_attribute("readonly") is not None, message="composer shut")
    assert _box(chrome) == "my long careful answer"
    assert "The host removed you" in chrome.text_of("#composer")
    assert chrome.css("#composer button[type=submit]").get_attribute("disabled") is not None
    assert "not connected" in chrome.text_of("#presence") and chrome.text_of("#typing") == ""
    assert not chrome.css("form[action$='/leave']").is_displayed()
    chrome.css("#field-body").send_keys(Keys.ENTER)
    time.sleep(0.5)
    assert _count(app, "my long careful answer") == 0 and _box(chrome) == "my long careful answer"
    # If the post goes out anyway (the notice had not arrived yet), the answer gives the text back too.
    chrome.execute_script(
        "var b = document.getElementById('field-body'), f = b.form; b.readOnly = false;"
        "f.querySelector('button[type=submit]').disabled = false; delete f.dataset.closed; f.requestSubmit()"
    )
    chrome.wait(lambda: "so your message was not sent" in chrome.text_of("#composer"), message="refused, kept")
    assert _box(chrome) == "my long careful answer"
    chrome.refresh()  # the next page load says the same, and welcomes them back under their alias
    assert "The host removed you from this room. You can join again" in chrome.text_of("main")
    assert chrome.css("#field-alias").get_attribute("value") == "Pat"


def test_locked_while_typing_the_composer_waits_with_the_text(app, server, browsers, host, make_room):
    facilitator, hana = host
    room = make_room(owner=facilitator, title="Lock")
    chrome = browsers()
    join_room(chrome, server.url, room.code, "Pat")
    _live(chrome)
    chrome.css("#field-body").send_keys("half a thought")
    assert hana.post(f"/rooms/{room.code}/settings/lock", {}) == 303
    chrome.wait(lambda: chrome.css("#field-body").get_attribute("readonly") is not None, message="composer shut")
    assert "locked the room" in chrome.text_of("#composer-state") and _box(chrome) == "half a thought"
    chrome.css("#field-body").send_keys(Keys.ENTER)
    time.sleep(0.3)
    assert _count(app, "half a thought") == 0
    assert hana.post(f"/rooms/{room.code}/settings/unlock", {}) == 303
    chrome.wait(lambda: chrome.css("#field-body").get_attribute("readonly") is None, message="composer open")
    chrome.css("#field-body").send_keys(", finished", Keys.ENTER)
    chrome.wait(lambda: "half a thought, finished" in chrome.text_of("#log"), message="sent after unlocking")
    assert chrome.errors() == []


def test_an_offline_send_is_kept_marked_not_sent_and_retried_once(app, server, browsers, make_room):
    room = make_room(title="Offline")
    chrome = browsers()
    join_room(chrome, server.url, room.code, "Pat")
    _live(chrome)
    token = chrome.css("#composer input[name=token]").get_attribute("value")
    chrome.execute_cdp_cmd("Network.enable", {})
    offline = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    chrome.execute_cdp_cmd("Network.emulateNetworkConditions", offline)
    chrome.css("#field-body").send_keys("sent on the train", Keys.ENTER)
    chrome.wait(lambda: "Not sent" in chrome.text_of("#composer .refusal"), message="not sent")
    assert _box(chrome) == "sent on the train"
    chrome.wait(lambda: connection_state(chrome) in ("offline", "reconnecting"), message="not 'live' any more")
    assert "Offline" in chrome.text_of("#connection") or "Reconnecting" in chrome.text_of("#connection")
    assert _count(app, "sent on the train") == 0
    chrome.execute_cdp_cmd("Network.emulateNetworkConditions", {**offline, "offline": False})
    chrome.css("#composer .refusal .retry").click()
    chrome.wait(lambda: "sent on the train" in chrome.text_of("#log"), message="sent on retry")
    _live(chrome)
    # The same form again (as a retry whose answer was lost would send it): still one message.
    status = chrome.execute_async_script(
        "var done = arguments[arguments.length - 1], body = new URLSearchParams({body: 'sent on the train',"
        " token: arguments[0], csrf_token: document.querySelector('meta[name=csrf-token]').content});"
        "fetch(arguments[1], {method: 'POST', body, headers: {'HX-Request': 'true'}}).then(r => done(r.status))",
        token,
        f"/r/{room.code}/messages",
    )
    assert status == 200 and _count(app, "sent on the train") == 1
    assert chrome.text_of("#log").count("sent on the train") == 1


def test_a_refused_request_leaves_the_form_usable_and_retry_after_is_honoured(app, server, browsers, host, make_room):
    facilitator, hana = host
    room = make_room(owner=facilitator, title="Refusals")
    assert hana.post(f"/rooms/{room.code}/settings/slow-mode", {"seconds": "3"}) == 303
    chrome = browsers()
    join_room(chrome, server.url, room.code, "Pat")
    _live(chrome)
    chrome.css("#field-body").send_keys("first", Keys.ENTER)
    chrome.wait(lambda: "first" in chrome.text_of("#log"))
    chrome.css("#field-body").send_keys("second", Keys.ENTER)
    chrome.wait(lambda: "Slow mode is on" in chrome.text_of("#composer"), message="slow mode, beside the box")
    assert _box(chrome) == "second"
    chrome.wait(lambda: chrome.css("#composer button[type=submit]").get_attribute("disabled") is not None)
    chrome.wait(lambda: chrome.css("#composer button[type=submit]").get_attribute("disabled") is None, timeout=6)
    assert "You can send again now" in chrome.text_of("#composer")
    chrome.css("#field-body").send_keys(Keys.ENTER)
    chrome.wait(lambda: "second" in chrome.text_of("#log"), message="sent after Retry-After")
    # An answer that is not the composer (an expired form: 400) is not swapped in: the form stays, with why.
    chrome.execute_script(
        "document.querySelector('meta[name=csrf-token]').content = 'expired';"
        "document.querySelector('#composer input[name=csrf_token]').value = 'expired'"
    )
    chrome.css("#field-body").send_keys("third", Keys.ENTER)
    chrome.wait(lambda: "expired" in chrome.text_of("#composer .refusal"), message="the reason beside the form")
    assert _box(chrome) == "third" and chrome.css("#field-body").is_enabled()
    assert chrome.css("#composer .refusal").get_attribute("role") == "alert"


# -- input methods ------------------------------------------------------------------------------------------

IME = """
var box = document.getElementById('field-body'), sent = 0, done = arguments[arguments.length - 1];
document.addEventListener('submit', function (e) {
  if (e.target.id === 'composer') { sent++; e.preventDefault(); e.stopPropagation(); }
}, true);
function key(code, composing) {
  var e = new KeyboardEvent('keydown', {key: 'Enter', bubbles: true, cancelable: true, isComposing: composing});
  Object.defineProperty(e, 'keyCode', {get: function () { return code; }});
  box.dispatchEvent(e);
}
function comp(type) { box.dispatchEvent(new CompositionEvent(type, {bubbles: true, data: '日本'})); }
box.focus(); box.value = '日本';
var seen = [];
// Chromium (and Firefox): the committing Enter comes while composing, keyCode 229, then compositionend.
comp('compositionstart'); key(229, true); comp('compositionend'); seen.push(sent);
// Safari: compositionend first, then the Enter keydown, not composing, keyCode 229...
comp('compositionstart'); comp('compositionend'); key(229, false); seen.push(sent);
// ... or with keyCode 13, in the same task right after compositionend.
comp('compositionstart'); comp('compositionend'); key(13, false); seen.push(sent);
// A plain Enter, later: that one sends.
setTimeout(function () { key(13, false); seen.push(sent); done(seen); }, 20);
"""


def test_an_enter_that_ends_a_composition_never_sends_in_either_engines_order(app, server, browsers, make_room):
    room = make_room(title="Input methods")
    chrome = browsers()
    join_room(chrome, server.url, room.code, "Aki")
    assert chrome.execute_async_script(IME) == [0, 0, 0, 1]


# -- times mean what they say -------------------------------------------------------------------------------


def _last_sunday(year: int, month: int) -> str:
    day = datetime(year, month + 1, 1) - timedelta(days=1)
    while day.weekday() != 6:
        day -= timedelta(days=1)
    return day.strftime("%Y-%m-%d")


def test_a_dst_gap_room_is_refused_and_an_overlap_asks_which(app, server, browsers, make_facilitator):
    facilitator = make_facilitator(email="dst@example.org")
    chrome = browsers()
    chrome.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Europe/Paris"})
    chrome.get(f"{server.url}/login")
    chrome.fill({"email": facilitator.email, "password": PASSWORD})
    chrome.css("form[action='/login'] button[type=submit]").click()
    chrome.wait(lambda: chrome.current_url.endswith("/rooms/"))
    chrome.get(f"{server.url}/rooms/new")
    assert chrome.css("#field-timezone").get_attribute("value") == "Europe/Paris"  # the browser's zone
    year = datetime.now().year + 1
    spring, autumn = _last_sunday(year, 3), _last_sunday(year, 10)
    chrome.fill({"title": "Night owls", "password": ROOM_PASSWORD})
    chrome.set_value("#field-starts_at", f"{spring}T02:30")
    chrome.set_value("#field-ends_at", f"{spring}T03:10")
    chrome.css("form[action='/rooms/'] button[type=submit]").click()
    summary = chrome.wait(lambda: chrome.css(".error-summary").text, message="refused")
    assert "02:30 does not exist" in summary and "It would mean 03:30" in summary
    assert "clocks go forward from 02:00 to 03:00" in summary
    chrome.set_value("#field-starts_at", f"{autumn}T02:30")
    chrome.set_value("#field-ends_at", f"{autumn}T04:00")
    chrome.fill({"password": ROOM_PASSWORD})
    chrome.css("form[action='/rooms/'] button[type=submit]").click()
    chrome.wait(lambda: "happens twice" in chrome.css(".error-summary").text, message="which 02:30?")
    second = chrome.css("input[name=starts_at_fold][value='1']")
    assert "The second 02:30 (CET, UTC+01:00)" in chrome.css(f"label[for='{second.get_attribute('id')}']").text
    second.click()
    chrome.fill({"password": ROOM_PASSWORD})
    chrome.css("form[action='/rooms/'] button[type=submit]").click()
    chrome.wait(lambda: chrome.all(".share"), message="created")
    assert re.search(r"02:30\s+to\s+04:00", chrome.text_of("main"))
    assert [e for e in chrome.errors() if "422" not in e] == []  # the refused forms' own answers


# -- presence and typing ------------------------------------------------------------------------------------


def test_presence_is_true_closed_tabs_leave_within_5_s_away_and_quiet_notices(app, server, browsers, make_room):
    room = make_room(title="Presence")
    kim, pat = browsers(), browsers()
    join_room(kim, server.url, room.code, "Kim")
    _live(kim)
    join_room(pat, server.url, room.code, "Pat")
    _live(pat)
    kim.wait(lambda: "Pat" in kim.text_of("#presence"), message="Pat here")
    kim.wait(lambda: "Pat joined." in kim.text_of("#log .log-notice"), message="a join notice")
    assert kim.all("#log .log-notice")[0].get_attribute("class") == "log-notice"
    assert "message" not in (kim.all("#log .log-notice")[0].get_attribute("class") or "").split()
    # Hidden, the tab is away (the Page Visibility API, as the browser would report it).
    pat.execute_script(
        "Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    kim.wait(lambda: re.search(r"Pat\s+away", kim.text_of("#presence")), message="Pat away")
    pat.get("about:blank")  # the tab goes away: its goodbye beacon
    states = (
        "return [...document.querySelectorAll('#presence li[data-member]')]"
        ".map(li => li.dataset.state + ' ' + li.textContent.trim())"
    )
    kim.wait(
        lambda: any(s.startswith("offline Pat") for s in kim.execute_script(states)), timeout=5, message="gone in 5 s"
    )
    assert not any(s.startswith(("online Pat", "away Pat")) for s in kim.execute_script(states))
    assert re.search(r"Pat\s+offline, last seen \d\d:\d\d", kim.text_of("#presence"))
    kim.wait(lambda: "Pat left." in kim.text_of("#log"), message="a leave notice")
    assert kim.errors() == []


def test_typing_clears_when_the_typists_message_arrives(app, server, browsers, make_room):
    room = make_room(title="Typing")
    kim, pat = browsers(), browsers()
    join_room(kim, server.url, room.code, "Kim")
    join_room(pat, server.url, room.code, "Pat")
    _live(kim)
    _live(pat)
    kim.css("#field-body").send_keys("Hel")
    pat.wait(lambda: "Kim is typing" in pat.text_of("#typing"), message="Kim typing")
    kim.css("#field-body").send_keys("lo", Keys.ENTER)
    pat.wait(lambda: "Hello" in pat.text_of("#log"), message="Kim's message")
    assert pat.text_of("#typing") == ""
    last = pat.all("#log .message")[-1]
    assert last.get_attribute("data-author") == str(_seat(app, room.code, "Kim"))  # who wrote it, for scripts


def test_a_held_message_waits_for_the_host_beside_its_authors_box(app, server, browsers, host, make_room):
    facilitator, hana = host
    room = make_room(owner=facilitator, title="Held")
    assert hana.post(f"/rooms/{room.code}/settings/premoderation", {"enabled": "1"}) == 303
    pat = browsers()
    join_room(pat, server.url, room.code, "Pat")
    _live(pat)
    pat.css("#field-body").send_keys("may I?", Keys.ENTER)
    pat.wait(lambda: "Waiting for the host: may I?" in pat.text_of("#held"), message="held, shown to Pat")
    pat.css("#field-body").send_keys("and this?", Keys.ENTER)
    pat.wait(lambda: "and this?" in pat.text_of("#held"))
    with app.app_context():
        held = {m.body: m.id for m in db.session.scalars(select(Message).where(Message.seq.is_(None)))}
    assert hana.post(f"/r/{room.code}/queue/{held['may I?']}/approve", {}) == 303
    pat.wait(lambda: "may I?" in pat.text_of("#log") and "may I?" not in pat.text_of("#held"), message="approved")
    assert hana.post(f"/r/{room.code}/queue/{held['and this?']}/reject", {}) == 303
    pat.wait(lambda: "The host declined your message." in pat.text_of("#held"), message="declined")
    assert pat.errors() == []
