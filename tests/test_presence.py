"""Presence on both backends: several tabs, crashed instances, batched announcements, the claim throttle."""

from __future__ import annotations

import time

import pytest

from chatroom import events
from chatroom import presence as here_now
from chatroom.extensions import db
from chatroom.models import Room
from chatroom.presence import MemoryPresence, RedisPresence
from chatroom.services import members
from support.constants import BACKEND, ROOM_PASSWORD


@pytest.fixture(params=["memory", "redis"] if BACKEND == "services" else ["memory"])
def make_presence(request, redis_url, app):
    made = []

    def make(ttl: float = 40.0):
        presence = RedisPresence(redis_url, ttl) if request.param == "redis" else MemoryPresence(ttl)
        made.append(presence)
        return presence

    yield make
    for presence in made:
        presence.close()


def test_presence_counts_tabs_once_and_announces_only_changes(make_presence):
    presence = make_presence()
    announced: list[int] = []
    presence.on_change = announced.append
    tab1 = presence.enter(5, membership_id=7)
    tab2 = presence.enter(5, membership_id=7)
    assert presence.present(5) == {7}
    assert presence.announce_changes() == [5]  # two tabs, one announcement
    presence.leave(5, 7, tab1)
    assert presence.announce_changes() == []  # still here in the other tab: nothing to say
    presence.leave(5, 7, tab2)
    assert presence.present(5) == set()
    assert presence.announce_changes() == [5]
    assert announced == [5, 5]


def test_a_stream_takes_the_place_of_the_page_that_opened_it(make_presence):
    """A page load counts its reader as here (a reader without JavaScript); the stream it opens then counts
    them instead, in the same round trip, so leaving later is not held up by the page's own entry."""
    presence = make_presence()
    presence.page_seen(5, 7, ttl=60)
    presence.page_seen(5, 9, ttl=60)
    assert sorted(presence._entries(5)) == ["7:page", "9:page"]
    tab = presence.enter(5, membership_id=7)
    assert sorted(presence._entries(5)) == [f"7:{tab}", "9:page"]
    presence.leave(5, 7, tab)
    assert presence.present(5) == {9}


def test_a_deleted_room_is_forgotten(make_presence):
    """SQLite gives a deleted room's id (and its seats' ids) to the next ones: a newcomer's run saw the old room's
    "last seen" on the new room's host. Deleting a room forgets its entries, away marks and last-seen times."""
    presence = make_presence()
    tab = presence.enter(5, membership_id=7)
    presence.set_away(5, 7, tab, True)
    presence.leave(5, 7, tab)
    presence.page_seen(5, 9, ttl=60)
    assert presence.last_seen(5) and presence.present(5) == {9}
    presence.forget(5)
    assert presence.last_seen(5) == {} and presence.present(5) == set() and presence.states(5) == {}


def test_a_crashed_instances_connections_expire(make_presence):
    crashed = make_presence(ttl=0.5)
    survivor = make_presence(ttl=0.5)
    if isinstance(crashed, MemoryPresence):
        survivor = crashed  # one process: the 'crash' is a connection that never leaves
    crashed.enter(3, membership_id=11)
    survivor.enter(3, membership_id=12)
    with crashed._lock:
        crashed._local_conns = {c for c in crashed._local_conns if c[1] != 11}  # nobody refreshes 11 any more
    if crashed is not survivor:
        crashed.close()  # the instance is gone: no refreshing, no leaving
    announced: list[int] = []
    survivor.on_change = announced.append
    time.sleep(0.7)
    survivor.refresh()
    survivor.announce_changes()
    assert survivor.present(3) == {12}
    assert 3 in announced or survivor._announced.get(3) == frozenset({12})


def test_claim_is_once_per_interval(make_presence):
    presence = make_presence()
    assert presence.claim("typing:1", 0.3)
    assert not presence.claim("typing:1", 0.3)
    assert presence.claim("typing:2", 0.3)
    time.sleep(0.35)
    assert presence.claim("typing:1", 0.3)


# -- "Here now" in a big room: a count and a link, not every name to every reader --------------------------------


def _present(app, room, count: int) -> None:
    """``count`` participants who loaded the room's page just now (so "Here now" counts them)."""
    with app.test_request_context():
        row = db.session.get(Room, room.id)
        for n in range(count):
            here_now.page_seen(row, members.join(row, f"Student {n}", ROOM_PASSWORD))


def _announced(app, room) -> str:
    with app.test_request_context():
        row = db.session.get(Room, room.id)
        return events.presence_changed(row, here_now.roster(row)).frame.decode()


def test_up_to_the_limit_here_now_names_everyone(app, make_room):
    app.config["PRESENCE_LIST_MAX"] = 5
    room = make_room()
    _present(app, room, 5)
    frame = _announced(app, room)
    assert frame.count("<li data-member=") == 5 and "Student 4" in frame and "people here now" not in frame


def test_the_announcer_renders_the_count_outside_any_request(app, make_room):
    """The presence announcer runs in a thread of its own, with an app context and no request."""
    app.config["PRESENCE_LIST_MAX"] = 5
    room = make_room()
    _present(app, room, 6)
    with app.app_context():
        row = db.session.get(Room, room.id)
        frame = events.presence_changed(row, here_now.roster(row)).frame.decode()
    assert "6 people here now" in frame and f'href="/r/{room.code}/people"' in frame
    with app.app_context():
        row = db.session.get(Room, room.id)
        event = events.presence_changed(row, here_now.roster(row))
    assert (event.seq, event.target) == (6, 1)  # six here, and only their count (the room writers wait longer)


def test_above_the_limit_every_reader_gets_a_count_and_the_list_is_a_link(app, make_room, join):
    """Issue 13: 5,000 arrivals sent every reader the whole list each time (256 MB). Above PRESENCE_LIST_MAX the
    announcement is a count and a link, a few hundred bytes however many are here; the list is a page away."""
    app.config["PRESENCE_LIST_MAX"] = 5
    room = make_room()
    _present(app, room, 6)
    frame = _announced(app, room)
    assert "Student" not in frame and 'data-count="6"' in frame and "6 people here now" in frame
    assert f'href="/r/{room.code}/people"' in frame and len(frame) < 400
    pat = join(room, "Pat")
    page = pat.get(f"/r/{room.code}/people")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert all(f"Student {n}" in html for n in range(6)) and "people here now" not in html
    assert "7 people here now" in pat.get(f"/r/{room.code}").get_data(as_text=True)  # Pat's page load counts too
