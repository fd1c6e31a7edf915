"""A removal or a ban always lands: streams re-check the seat and the room, never relying on the "removed" event.

Redis pub/sub is at most once, so the event that ends a removed participant's stream can be lost.
The stream re-checks its seat against the database after every catch-up (a Redis reconnect makes
one) and every few heartbeats (``RECHECK_EVERY`` × ``STREAM_HEARTBEAT_SECONDS``: 4 s on the live
test servers).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import pytest
from sqlalchemy import select, update

from chatroom.extensions import db
from chatroom.models import LoginSession, Membership, Room, utcnow
from support.constants import PASSWORD, ROOM_PASSWORD
from support.live import Browser, Server, Stream, collecting, message_seqs, presence_aliases, wait_for

pytestmark = pytest.mark.live


def _stream(server: Server, browser: Browser, code: str) -> Stream:
    return Stream(server.port, f"/r/{code}/events?after=0", browser.cookie_header())


def _seat(app, room, alias: str) -> int:
    with app.app_context():
        return db.session.query(Membership).filter_by(room_id=room.id, alias=alias).one().id


def test_a_closed_seat_or_an_ended_room_ends_streams_without_any_event(app, servers, make_room):
    """The database changes and nothing is published: the periodic re-check ends the streams, saying why each
    seat closed (the host removed Pat; Ann left)."""
    server = servers()
    room = make_room()
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    kim = Browser(server.port).join(room.code, "Kim", ROOM_PASSWORD)
    ann = Browser(server.port).join(room.code, "Ann", ROOM_PASSWORD)
    pat_id, ann_id = _seat(app, room, "Pat"), _seat(app, room, "Ann")
    pats, kims, anns = (_stream(server, who, room.code).open() for who in (pat, kim, ann))
    try:
        list(pats.read_events(0.5))
        with app.app_context():
            closed = update(Membership).values(left_at=utcnow())
            db.session.execute(closed.where(Membership.id == pat_id).values(removed=True))
            db.session.execute(closed.where(Membership.id == ann_id))
            db.session.commit()
        events = list(pats.read_events(8))
        assert pats.closed, "the stream of a closed seat must end without being told"
        assert events[-1].event == "close" and events[-1].data == "removed"
        events = list(anns.read_events(8))
        assert anns.closed and events[-1].event == "close" and events[-1].data == "left"
        assert not kims.closed
        with app.app_context():
            db.session.execute(update(Room).where(Room.id == room.id).values(ends_at=utcnow()))
            db.session.commit()
        events = list(kims.read_events(8))
        assert kims.closed
        assert events[-1].event == "close" and events[-1].data == "ended"
    finally:
        for stream in (pats, kims, anns):
            stream.close()


@pytest.mark.services
def test_a_removal_during_a_redis_pubsub_outage_still_ends_the_stream(
    app, servers, make_room, make_facilitator, own_redis
):
    """The listener's pub/sub connection is killed around the removal, so the "removed" event is lost.

    The stream still ends (the reconnected listener makes every stream catch up, which re-checks the
    seat), later messages do not reach the removed participant, and "here now" forgets them.
    """
    url, port = own_redis.url, own_redis.port
    cli = shutil.which("redis-cli")
    assert cli, "redis-cli is not installed"
    server = servers(workers=1, redis=url, STREAM_HEARTBEAT_SECONDS="15")  # no periodic re-check in time
    host = make_facilitator(name="Hana Host")
    room = make_room(owner=host)
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    kim = Browser(server.port).join(room.code, "Kim", ROOM_PASSWORD)
    hana = Browser(server.port).sign_in(host.email, PASSWORD)
    pat_id = _seat(app, room, "Pat")
    with collecting(_stream(server, pat, room.code).open(), _stream(server, kim, room.code).open()) as (
        pats,
        kims,
    ):
        assert wait_for(lambda: presence_aliases(kims.stream.events) == ["Kim", "Pat"])
        # Keep killing the listener's pub/sub connection while the host removes Pat.
        stop = threading.Event()

        def kill() -> None:
            while not stop.is_set():
                subprocess.run([cli, "-p", str(port), "CLIENT", "KILL", "TYPE", "pubsub"], capture_output=True)
                time.sleep(0.02)

        killer = threading.Thread(target=kill)
        killer.start()
        try:
            time.sleep(0.3)
            assert hana.post(f"/r/{room.code}/members/{pat_id}/remove", {}) == 303
            time.sleep(0.3)
        finally:
            stop.set()
            killer.join()
        assert wait_for(lambda: pats.stream.closed, timeout=10), "the removed participant's stream stayed open"
        assert [e for e in pats.stream.events if e.event == "close"][-1].data == "removed"
        kim.say(room.code, "after the removal")
        assert wait_for(lambda: message_seqs(kims.stream.events) == [1])
        assert message_seqs(pats.stream.events) == []
        assert wait_for(lambda: presence_aliases(kims.stream.events) == ["Kim"])  # not lost with the outage
    again = _stream(server, pat, room.code).open()
    assert again.status == 403
    again.close()


def test_leaving_ends_the_seats_other_tabs_with_the_words_for_leaving(app, servers, make_room):
    """Leaving in one tab closes the seat: its other tabs' streams end saying so, not that the host removed them."""
    server = servers()
    room = make_room()
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    other_tab = _stream(server, pat, room.code).open()
    try:
        list(other_tab.read_events(0.5))
        pat.get(f"/r/{room.code}")
        assert pat.post(f"/r/{room.code}/leave", {}) == 303
        events = list(other_tab.read_events(8))
        assert other_tab.closed
        assert events[-1].event == "close" and events[-1].data == "left"
        said = " ".join(event.data for event in events)
        assert "You left this room" in said and "host removed" not in said
    finally:
        other_tab.close()


def test_signing_out_ends_the_host_streams_of_that_browser_and_everywhere_all_of_them(
    app, servers, make_room, make_facilitator
):
    """A host page stops following the room when its sign-in ends: signing out on one browser ends that
    browser's host streams (another browser of the same account goes on), and signing out everywhere ends
    the rest. A participant's stream is not touched, and every page says what happened."""
    server = servers()
    host = make_facilitator()
    room = make_room(owner=host)
    laptop = Browser(server.port).sign_in(host.email, PASSWORD)
    phone = Browser(server.port).sign_in(host.email, PASSWORD)
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    laptop_stream, phone_stream, pat_stream = (
        _stream(server, browser, room.code).open() for browser in (laptop, phone, pat)
    )
    try:
        for stream in (laptop_stream, phone_stream, pat_stream):
            assert stream.status == 200
            list(stream.read_events(0.5))
        laptop.get("/rooms/")
        assert laptop.post("/logout", {}) == 303
        events = list(laptop_stream.read_events(8))
        assert laptop_stream.closed
        assert events[-1].event == "close" and events[-1].data == "signed_out"
        assert "Your sign-in here ended" in " ".join(event.data for event in events)
        assert not phone_stream.closed and not pat_stream.closed
        phone.get("/account")
        assert phone.post("/account/sign-out-everywhere", {}) == 303
        events = list(phone_stream.read_events(8))
        assert phone_stream.closed and events[-1].data == "signed_out"
        pat.say(room.code, "still here")
        assert wait_for(lambda: (list(pat_stream.read_events(0.2)), message_seqs(pat_stream.events))[1] == [1], 8)
        assert not pat_stream.closed
        again = _stream(server, laptop, room.code).open()
        assert again.status == 403  # and it cannot open another
        again.close()
    finally:
        for stream in (laptop_stream, phone_stream, pat_stream):
            stream.close()


def test_a_sign_in_that_ended_unheard_still_ends_its_host_streams(app, servers, make_room, make_facilitator):
    """The sign-out event can be lost like a removal (Redis pub/sub, or a command run in another process on
    the embedded backend): the re-check reads the account's sign-ins and ends the host streams of one that
    is gone, saying so; the account's other browser goes on."""
    server = servers()
    host = make_facilitator()
    room = make_room(owner=host)
    laptop = Browser(server.port).sign_in(host.email, PASSWORD)
    phone = Browser(server.port).sign_in(host.email, PASSWORD)
    laptops, phones = _stream(server, laptop, room.code).open(), _stream(server, phone, room.code).open()
    try:
        list(laptops.read_events(0.5))
        with app.app_context():
            sign_ins = db.session.scalars(
                select(LoginSession).where(LoginSession.facilitator_id == host.id).order_by(LoginSession.id)
            ).all()
            db.session.delete(sign_ins[0])  # the laptop's, signed in first; nothing is published
            db.session.commit()
        events = list(laptops.read_events(10))
        assert laptops.closed and events[-1].event == "close" and events[-1].data == "signed_out"
        assert not phones.closed
    finally:
        laptops.close()
        phones.close()
