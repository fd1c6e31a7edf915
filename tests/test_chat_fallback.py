"""``chat.newer``: what the page polls when its stream cannot get through, and where a reader without
JavaScript goes for newer messages (keeping their place); and the room page's parts for both."""

from __future__ import annotations

import re
from datetime import timedelta

from chatroom.extensions import db
from chatroom.models import Membership, Room
from chatroom.services import members, messages
from support.constants import ROOM_PASSWORD
from support.factories import end_room


def _fill(app, room, count, alias="Writer"):
    with app.test_request_context():
        membership = members.join(db.session.get(Room, room.id), alias, ROOM_PASSWORD)
        for i in range(1, count + 1):
            messages.post(membership, f"message {i}", f"{i:032x}")
        return membership.id


def _seqs(html):
    return [int(s) for s in re.findall(r'<li class="message[^"]*" id="message-(\d+)"', html)]


def _poll(client, room, query):
    return client.get(f"/r/{room.code}/newer?{query}", headers={"HX-Request": "true"})


def _last_rev(app, room):
    with app.app_context():
        return db.session.get(Room, room.id).last_rev


# -- the polling fragment -------------------------------------------------------------------------


def test_poll_answers_the_messages_after_the_cursor_and_the_new_cursor(app, make_room, join):
    room = make_room()
    _fill(app, room, 10)
    pat = join(room)
    response = _poll(pat, room, "after=7&rev=0")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert _seqs(html) == [8, 9, 10]
    assert 'hx-swap-oob="true"' not in re.search(r'<li[^>]*id="message-8"[^>]*>', html).group(0)
    assert response.headers["Chatroom-Cursor"] == f"10.{_last_rev(app, room)}"
    assert response.headers["Chatroom-Room-Status"] == "open"
    assert response.headers["Cache-Control"] == "no-store"
    # Out of band, as the stream would send them: who is here, and the room's state.
    assert re.search(r'<ul id="presence"[^>]*hx-swap-oob="true"', html)
    assert re.search(r'<div id="room-status"[^>]*hx-swap-oob="innerHTML"', html)


def test_poll_with_nothing_new_keeps_the_cursor(app, make_room, join):
    room = make_room()
    _fill(app, room, 3)
    pat = join(room)
    response = _poll(pat, room, "after=3&rev=0")
    assert _seqs(response.get_data(as_text=True)) == []
    assert response.headers["Chatroom-Cursor"].startswith("3.")


def test_poll_sends_changes_to_messages_the_page_has_out_of_band(app, make_room, join):
    room = make_room()
    writer_id = _fill(app, room, 5)
    with app.test_request_context():
        writer = db.session.get(Membership, writer_id)
        message = messages.find(db.session.get(Room, room.id), 2)
        messages.edit(writer, message, "message 2, corrected")
    rev = _last_rev(app, room)
    assert rev > 0
    pat = join(room)
    html = _poll(pat, room, "after=5&rev=0").get_data(as_text=True)
    changed = re.search(r'<li[^>]*id="message-2"[^>]*>', html).group(0)
    assert 'hx-swap-oob="true"' in changed
    assert "message 2, corrected" in html
    assert _poll(pat, room, "after=5&rev=0").headers["Chatroom-Cursor"] == f"5.{rev}"
    # A page that has the change already gets nothing again.
    assert 'id="message-2"' not in _poll(pat, room, f"after=5&rev={rev}").get_data(as_text=True)


def test_poll_tells_the_page_when_the_room_has_ended(app, make_room, join):
    room = make_room(starts_in=timedelta(minutes=-10), lasts=timedelta(minutes=20))
    pat = join(room)
    end_room(app, room)
    response = _poll(pat, room, "after=0&rev=0")
    assert response.headers["Chatroom-Room-Status"] == "ended"
    assert "This room has ended" in response.get_data(as_text=True)


def test_poll_is_for_members_of_the_room_only(app, client, make_room, join):
    room = make_room()
    other = make_room()
    assert _poll(client, room, "after=0").status_code == 403
    assert _poll(join(other), room, "after=0").status_code == 403


def test_poll_refuses_a_malformed_or_missing_cursor(app, make_room, join):
    room = make_room()
    pat = join(room)
    assert _poll(pat, room, "after=abc").status_code == 400
    assert _poll(pat, room, "after=1&rev=-1").status_code == 400
    assert _poll(pat, room, "").status_code == 400


# -- the page, without JavaScript --------------------------------------------------------------------


def test_newer_page_starts_after_the_cursor_and_links_on(app, make_room, join):
    room = make_room()
    _fill(app, room, 120)
    pat = join(room)
    html = pat.get(f"/r/{room.code}/newer?after=30").get_data(as_text=True)
    assert _seqs(html) == list(range(31, 81))
    assert re.search(r'<p id="since" class="since">50\+ new messages since you last looked</p>', html)
    assert f"/r/{room.code}/newer?after=80#since" in html  # read on from here
    assert f"/r/{room.code}?before=31" in html  # and back
    assert 'id="live"' not in html  # not the newest: no live stream here


def test_newer_page_that_reaches_the_newest_is_live(app, make_room, join):
    room = make_room()
    _fill(app, room, 120)
    pat = join(room)
    html = pat.get(f"/r/{room.code}/newer?after=100").get_data(as_text=True)
    assert _seqs(html) == list(range(101, 121))
    assert "20 new messages since you last looked" in html
    assert re.search(r'id="live"[^>]*hx-sse:connect="[^"]*after=120', html)


def test_newer_page_with_nothing_new_says_so_by_the_composer(app, make_room, join):
    room = make_room()
    _fill(app, room, 60)
    pat = join(room)
    html = pat.get(f"/r/{room.code}/newer?after=60").get_data(as_text=True)
    assert _seqs(html) == list(range(11, 61))
    assert '<p id="since" class="hint">No new messages since you last looked.</p>' in html
    assert html.index('id="since"') < html.index('id="composer"')


def test_newer_page_without_a_cursor_goes_to_the_room(app, make_room, join):
    room = make_room()
    pat = join(room)
    response = pat.get(f"/r/{room.code}/newer")
    assert response.status_code == 303
    assert response.location.endswith(f"/r/{room.code}")


def test_history_page_links_to_the_messages_after_it(app, make_room, join):
    room = make_room()
    _fill(app, room, 120)
    pat = join(room)
    html = pat.get(f"/r/{room.code}?before=21").get_data(as_text=True)
    assert _seqs(html) == list(range(1, 21))
    assert f"/r/{room.code}/newer?after=20#since" in html


# -- the room page's parts for live updates and for readers without JavaScript ---------------------------


def test_room_page_has_the_live_element_a_newer_link_and_auto_refresh_off(app, make_room, join):
    room = make_room()
    _fill(app, room, 5)
    pat = join(room)
    html = pat.get(f"/r/{room.code}").get_data(as_text=True)
    live = re.search(r'<div id="live"[^>]*>', html, re.S).group(0)
    assert "after=5" in live and "rev=" in live and f'data-newer-url="/r/{room.code}/newer"' in live
    # The log is there from the start; messages go into the list inside it (axe: li needs a list). It is not
    # itself live: announce.js says one sentence per event in #announcer and #alerts, there from the start too.
    assert re.search(
        r'<div id="messages" class="log" role="log" aria-live="off" aria-labelledby="messages-heading" tabindex="0">'
        r'\s*<ol id="log"',
        html,
    )
    assert '<div id="announcer" class="visually-hidden" aria-live="polite" aria-atomic="false"' in html
    assert '<div id="alerts" class="visually-hidden" role="alert"></div>' in html
    assert f'<a href="/r/{room.code}/newer?after=5#since">Newer messages</a>' in html
    assert "Refresh every 30 seconds" in html
    assert 'http-equiv="refresh"' not in html  # off by default (WCAG 2.2.1, 2.2.2)
    assert 'id="jump"' in html and 'id="mute"' in html and 'id="announcer"' in html
    assert re.search(r'<script src="/assets/room\.js\?v=[0-9a-f]{16}" defer></script>', html)


def test_auto_refresh_when_switched_on_refreshes_to_the_newer_messages(app, make_room, join):
    room = make_room()
    _fill(app, room, 5)
    pat = join(room)
    pat.set_cookie("autorefresh", "on")
    html = pat.get(f"/r/{room.code}").get_data(as_text=True)
    assert (
        f'<noscript><meta http-equiv="refresh" content="30; url=/r/{room.code}/newer?after=5#since"></noscript>' in html
    )
    assert "Stop refreshing" in html
    # Only where the page ends at the newest message: not on a page of history.
    assert 'http-equiv="refresh"' not in pat.get(f"/r/{room.code}?before=3").get_data(as_text=True)


def test_room_page_of_an_ended_room_has_no_stream_and_skips_to_the_messages(app, make_room, join):
    room = make_room(starts_in=timedelta(minutes=-10), lasts=timedelta(minutes=20))
    pat = join(room)
    end_room(app, room)
    html = pat.get(f"/r/{room.code}").get_data(as_text=True)
    assert 'id="live"' not in html and 'id="composer"' not in html
    assert '<a class="skip-link" href="#messages">Skip to the messages</a>' in html
