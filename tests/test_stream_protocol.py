"""The stream's decisions, one event at a time (stream_protocol.forward), against a real database."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import delete

from chatroom.events import Event, ends_sign_in, signed_out
from chatroom.extensions import db
from chatroom.models import Facilitator, LoginSession, Membership, Room
from chatroom.services import accounts, members, messages
from chatroom.sse import parse
from chatroom.stream_protocol import StreamState, catch_up, forward, seat_gone
from support.constants import ROOM_PASSWORD


@pytest.fixture
def room_with_messages(app, make_room):
    room = make_room()
    with app.test_request_context():
        seat = members.join(db.session.get(Room, room.id), "Pat", ROOM_PASSWORD)
        for i in range(1, 6):
            messages.post(seat, f"m{i}", f"{i:032x}")
        db.session.remove()
    return room


def _run(app, state, event):
    with app.test_request_context():
        out = b"".join(forward(state, event))
    return parse(out)


def _state(room, last, rev=0):
    return StreamState(room.id, membership_id=0, is_host=False, last=last, rev=rev, ends_at=2e9)


def test_a_message_already_sent_is_dropped(app, room_with_messages):
    state = _state(room_with_messages, last=3)
    assert _run(app, state, Event("message", b"id: 2.0\ndata: x\n\n", seq=2)) == []
    assert state.last == 3


def test_the_next_message_is_sent_as_published(app, room_with_messages):
    state = _state(room_with_messages, last=3)
    events = _run(app, state, Event("message", b"id: 4.0\ndata: live\n\n", seq=4))
    assert events == [{"id": "4.0", "data": "live"}]
    assert state.last == 4


def test_an_early_message_waits_for_the_one_before_it(app, room_with_messages):
    state = _state(room_with_messages, last=3)
    assert _run(app, state, Event("message", b"id: 5.0\ndata: five\n\n", seq=5)) == []
    assert state.hold_until > 0 and list(state.held) == [5]
    events = _run(app, state, Event("message", b"id: 4.0\ndata: four\n\n", seq=4))
    assert [e["data"] for e in events] == ["four", "five"]  # in room order, no database read
    assert state.last == 5 and state.held == {} and state.hold_until == 0


def test_a_gap_that_does_not_fill_is_read_from_the_database(app, room_with_messages):
    state = _state(room_with_messages, last=1)
    _run(app, state, Event("message", b"id: 5.0\ndata: live\n\n", seq=5))
    with app.test_request_context():
        events = parse(b"".join(catch_up(state)))  # what the stream does when the hold expires
    assert [e["id"] for e in events] == ["2.0", "3.0", "4.0", "5.0"]
    assert "m5" in events[-1]["data"]
    assert state.last == 5 and state.held == {} and state.hold_until == 0


def test_a_held_message_the_database_does_not_have_is_dropped_not_asked_for_forever(app, room_with_messages):
    """Seen in CI: a room writer remembered seq 9 of a room deleted behind its back (the test database emptied,
    the id reused); the hold expired, the catch-up could not fill it, and the writer asked again in a loop that
    never yielded, until gunicorn killed the worker. After a read that came after its arrival, such a message is
    not real: it is dropped and the hold ends."""
    state = _state(room_with_messages, last=1)
    _run(app, state, Event("message", b"id: 9.0\ndata: ghost\n\n", seq=9))
    state.subscribed_at = state.hold_until  # the read below comes after the arrival, as the writer asks
    with app.test_request_context():
        events = parse(b"".join(catch_up(state)))
    assert [e["id"] for e in events] == ["2.0", "3.0", "4.0", "5.0"]  # what the database has
    assert not any("ghost" in e.get("data", "") for e in events)
    assert state.last == 5 and state.held == {} and state.held_at == {} and state.hold_until == 0


def test_a_message_held_after_the_read_waits_once_more_then_is_sent(app, room_with_messages):
    """One that arrived after the database was read is real (committed before it was published): it stays held,
    with a fresh hold, so the next catch-up reads again instead of reusing the same read."""
    state = _state(room_with_messages, last=1)
    _run(app, state, Event("message", b"id: 3.0\ndata: three\n\n", seq=3))
    with app.test_request_context():
        parse(b"".join(catch_up(state)))  # reads 2..5
    assert state.last == 5 and state.held == {}
    _run(app, state, Event("message", b"id: 7.0\ndata: seven\n\n", seq=7))  # early, after that read
    state.held_at[7] = float("inf")  # as if it had arrived after the next read too
    with app.test_request_context():
        assert parse(b"".join(catch_up(state))) == []  # nothing new in the database
    assert list(state.held) == [7] and state.hold_until > 0  # waits again, from now
    events = _run(app, state, Event("message", b"id: 6.0\ndata: six\n\n", seq=6))
    assert [e["data"] for e in events] == ["six", "seven"] and state.held == {} and state.hold_until == 0


def test_a_change_to_an_unsent_message_brings_the_messages_first(app, room_with_messages):
    room = room_with_messages
    state = _state(room, last=2)
    with app.test_request_context():
        from chatroom.models import Membership, Message

        message = db.session.scalar(db.select(Message).where(Message.room_id == room.id, Message.seq == 4))
        seat = db.session.get(Membership, message.membership_id)
        messages.edit(seat, message, "m4, edited")
        db.session.remove()
    events = _run(app, state, Event("change", b"id: 5.1\ndata: <li hx-swap-oob>\n\n", seq=5, rev=1, target=4))
    ids = [e["id"] for e in events if "id" in e]
    assert ids == ["3.1", "4.1", "5.1"]  # messages 3..5 as they are now (4 edited), so they may claim rev 1
    assert "m4, edited" in events[1]["data"]
    assert state.last == 5 and state.rev == 1


def test_resync_reads_the_database(app, room_with_messages):
    state = _state(room_with_messages, last=4)
    events = _run(app, state, Event("resync"))
    assert [e["id"] for e in events] == ["5.0"]


def test_typing_skips_the_typist_and_host_events_skip_participants(app, room_with_messages):
    state = _state(room_with_messages, last=5)
    state.membership_id = 9
    assert _run(app, state, Event("typing", b"event: typing\ndata: {}\n\n", target=9)) == []
    assert _run(app, state, Event("typing", b"event: typing\ndata: {}\n\n", target=8)) != []
    assert _run(app, state, Event("host", b"data: queue\n\n")) == []
    state.is_host = True
    assert _run(app, state, Event("host", b"data: queue\n\n")) == [{"data": "queue"}]


def test_a_sign_out_is_never_sent_and_ends_only_the_host_streams_of_that_sign_in(app, room_with_messages):
    """``events.signed_out`` carries the sign-in's fingerprint for matching: no viewer ever gets it as bytes."""
    host = StreamState(room_with_messages.id, 1, True, 5, 0, 2e9, sign_in="a" * 32)
    for event in (signed_out("a" * 32), signed_out()):
        assert _run(app, host, event) == [] and _run(app, _state(room_with_messages, last=5), event) == []
    assert ends_sign_in(signed_out("a" * 32), host.sign_in) and ends_sign_in(signed_out(), host.sign_in)
    assert not ends_sign_in(signed_out("b" * 32), host.sign_in)


def test_the_portable_runner_re_checks_a_hosts_sign_in(app, make_room, make_facilitator):
    """``seat_gone`` (the re-check of the portable runner): a host stream whose sign-in ended says ``signed_out``."""
    owner = make_facilitator()
    room = make_room(owner=owner)
    with app.test_request_context():
        account = db.session.get(Facilitator, owner.id)
        token = accounts.start_session(account)
        host_seat = db.session.get(Room, room.id).host_seat()
        state = StreamState(room.id, host_seat.id, True, 0, 0, 2e9, sign_in=accounts.sign_in_fingerprint(token))
        assert seat_gone(state) is None
        accounts.end_session(db.session.get(Facilitator, owner.id), token)
        assert seat_gone(state) == "signed_out"


def test_the_portable_runner_re_checks_in_a_room_that_never_falls_quiet(app, make_room, make_facilitator, seat):
    """The portable runner (a threaded server, the test client) re-reads the host's sign-in every few heartbeats'
    time even when a message arrives more often than a heartbeat: counted in idle heartbeats, it never came."""
    from support.clients import Client
    from support.constants import PASSWORD

    owner = make_facilitator()
    room = make_room(owner=owner)
    pat = seat(room, "Pat")
    app.test_client_class = Client
    host = app.test_client()
    host.form("/login", {"email": owner.email, "password": PASSWORD})
    response = host.get(f"/r/{room.code}/events?after=0&rev=0", buffered=False)
    chunks, seen = iter(response.response), ""
    try:
        seen += next(chunks).decode()
        with app.app_context():
            db.session.execute(delete(LoginSession).where(LoginSession.facilitator_id == owner.id))
            db.session.commit()
        deadline = time.monotonic() + 4 * app.config["STREAM_HEARTBEAT_SECONDS"] + 6
        n = 0
        while "signed_out" not in seen and time.monotonic() < deadline:
            n += 1
            with app.test_request_context():
                messages.post(db.session.get(Membership, pat.id), f"busy {n}", f"{n:032x}")
            seen += next(chunks).decode()
            time.sleep(0.1)
        assert "event: close\ndata: signed_out" in seen, seen[-300:]
    finally:
        response.close()
