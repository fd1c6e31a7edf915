"""The room writer on its own (chatroom/fanout.py): real sockets (socket pairs), a fake web side, gevent's loop.

What the live tests cannot pin down cheaply: the per-viewer flags, a socket that stops reading (backlog,
then a cut), a client that hangs up, and the last words of a stream.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from collections.abc import Set as AbstractSet

import gevent
import pytest

from chatroom import events, fanout
from chatroom.events import Event, EventKind
from chatroom.fanout import Fanout, LiveStream, StreamState
from chatroom.sse import parse

pytestmark = pytest.mark.once


class FakeWeb:
    def __init__(self) -> None:
        self.forwarded: list[tuple[int, str]] = []
        self.left: list[LiveStream] = []
        self.seats: set[int] | None = None  # None: every seat is still held
        self.closed_as: dict[int, str] = {}  # why a seat not held closed; "removed" unless said
        self.signed_out: set[str] = set()  # host sign-ins that ended (fingerprints)

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        yield

    def forward(self, state: StreamState, event: Event) -> bytes:
        self.forwarded.append((state.membership_id, event.kind))
        if event.kind == EventKind.MESSAGE:
            state.last = event.seq
            return event.frame
        return b""

    def catch_up(self, state: StreamState) -> bytes:
        return b""

    def check(
        self, room_id: int, seats: set[int], sign_ins: AbstractSet[str] = frozenset()
    ) -> tuple[float | None, dict[int, str], set[str]]:
        gone = set() if self.seats is None else seats - self.seats
        return 4e9, {seat: self.closed_as.get(seat, "removed") for seat in gone}, set(sign_ins) & self.signed_out

    def closing(self, notice: str) -> bytes:
        return b"event: close\ndata: " + notice.encode() + b"\n\n"

    def presence(self, room_id: int) -> bytes:
        return b""

    def leave(self, stream: LiveStream) -> None:
        self.left.append(stream)


@pytest.fixture
def world():
    web = FakeWeb()
    sinks: dict[str, object] = {}
    hub = Fanout(web, sinks.__setitem__, lambda channel, sink: sinks.pop(channel, None), heartbeat=3600)
    pairs: list[socket.socket] = []

    def open_stream(seat: int, *, host: bool = False, last: int = 0) -> tuple[LiveStream, socket.socket]:
        writer = hub.room(1, "room:1", 4e9)
        stream = LiveStream(writer, StreamState(1, seat, host, last, 0, 4e9))
        writer.add(stream)
        ours, theirs = socket.socketpair()
        pairs.append(theirs)
        stream.start(ours.detach(), chunked=False)
        return stream, theirs

    yield hub, web, open_stream
    for writer in list(hub.rooms.values()):
        for stream in tuple(writer.streams):
            stream.cut()
    for sock in pairs:
        sock.close()


def _read(sock: socket.socket) -> list[dict[str, str]]:
    sock.setblocking(False)
    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := sock.recv(65536):
            data += chunk
    return parse(data)


def _message(seq: int) -> Event:
    return Event(EventKind.MESSAGE, f"id: {seq}.0\ndata: m{seq}\n\n".encode(), seq=seq)


def test_each_socket_gets_the_next_message_once_and_per_viewer_flags_hold(world):
    hub, web, open_stream = world
    (pat, pat_sock), (host, host_sock) = open_stream(7), open_stream(8, host=True)
    writer = hub.rooms[1]
    writer.deliver(_message(1))
    writer.deliver(_message(1))  # a duplicate: dropped
    writer.deliver(Event(EventKind.TYPING, b"event: typing\ndata: {}\n\n", target=7))  # Pat typing
    writer.deliver(Event(EventKind.HOST, b"data: queue\n\n"))
    assert [e.get("id") for e in _read(pat_sock)] == ["1.0"]
    assert [e.get("event") or e["data"] for e in _read(host_sock)] == ["m1", "typing", "queue"]
    assert pat.state.last == host.state.last == 1
    assert web.forwarded == []  # all on the fast path: no worker, no database


def test_an_early_message_goes_to_the_worker_and_others_are_not_held_up(world):
    hub, web, open_stream = world
    (pat, pat_sock), (_, kim_sock) = open_stream(7), open_stream(9, last=1)
    hub.rooms[1].deliver(_message(2))  # the next one for Kim, early for Pat
    assert [e["id"] for e in _read(kim_sock)] == ["2.0"]
    assert pat.busy
    gevent.sleep(0.01)  # the room's worker runs the protocol for Pat
    assert web.forwarded == [(7, EventKind.MESSAGE)]
    assert [e["id"] for e in _read(pat_sock)] == ["2.0"] and not pat.busy


def test_a_socket_that_stops_reading_keeps_a_backlog_then_is_cut(world, monkeypatch):
    monkeypatch.setattr(fanout, "BACKLOG_LIMIT", 256 * 1024)
    hub, web, open_stream = world
    (slow, slow_sock), (fast, fast_sock) = open_stream(7), open_stream(9)
    slow_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer = hub.rooms[1]
    body = "x" * 4000
    seq = 0
    while not slow.closed and seq < 2000:
        seq += 1
        writer.deliver(Event(EventKind.MESSAGE, f"id: {seq}.0\ndata: {body}\n\n".encode(), seq=seq))
        _read(fast_sock)  # the other reader keeps up
        if seq == 5:
            assert slow.backlog is None or slow.backlog_bytes < 32 * 1024
    assert slow.closed and slow not in writer.streams, "a stream too far behind is cut"
    assert fast.state.last == seq and not fast.closed
    gevent.sleep(0.01)
    assert web.left == [slow]  # its slot and presence are given back


def test_a_client_that_hangs_up_is_noticed_at_once(world):
    hub, web, open_stream = world
    stream, sock = open_stream(7)
    sock.close()
    gevent.sleep(0.01)  # the read watcher fires
    assert stream.closed and not hub.rooms[1].streams
    assert web.left == [stream]


def test_a_writer_lingers_after_its_last_stream_and_remembers_for_the_reconnect(world, monkeypatch):
    """Every stream of a room dropped at once (a proxy restart) comes back to a writer that kept listening:
    what they missed meanwhile is served from its memory, not read from the database by each of them."""
    monkeypatch.setattr(fanout, "LINGER_SECONDS", 0.2)
    hub, _web, open_stream = world
    _stream, sock = open_stream(7)
    writer = hub.rooms[1]
    writer.caught_up_to(0, 0)  # what a catch-up from the database does for the first stream
    writer.deliver(_message(1))
    sock.close()
    gevent.sleep(0.01)
    assert hub.rooms.get(1) is writer  # no streams, still listening
    writer.deliver(_message(2))  # posted while nobody was connected here
    writer.deliver(Event(EventKind.CHANGE, b"id: 2.1\ndata: m1 edited\n\n", seq=1, rev=1))  # and an edit of #1
    back = StreamState(1, 7, False, 1, 0, 4e9)  # the tab reconnects with Last-Event-ID 1.0
    assert [(e.kind, e.seq, e.rev) for e in writer.recent_for(back) or []] == [
        (EventKind.MESSAGE, 2, 0),
        (EventKind.CHANGE, 1, 1),
    ]  # only what it lacks
    assert writer.recent_for(StreamState(1, 7, False, 2, 1, 4e9)) == []
    again, again_sock = open_stream(7, last=1)
    gevent.sleep(0.3)  # past the linger: a writer with a stream stays
    assert hub.rooms.get(1) is writer
    again.cut()
    again_sock.close()
    gevent.sleep(0.3)
    assert 1 not in hub.rooms  # the linger is over: it went


def test_an_ended_rooms_writer_goes_with_its_last_stream(world):
    hub, _web, open_stream = world
    _stream, sock = open_stream(7)
    writer = hub.rooms[1]
    writer.end("ended")
    assert _read(sock)[-1] == {"event": "close", "data": "ended"}
    assert 1 not in hub.rooms


def test_a_reused_room_id_gets_a_new_writer_without_the_old_rooms_memory(world):
    """SQLite gives a deleted room's id to the next room; a writer still lingering for the old room (its
    deletion unheard) must not serve its messages to the new one: asked for by another code, it ends."""
    hub, _web, _open_stream = world
    old = hub.room(1, "room:1", 4e9, code="oldroom")
    old.caught_up_to(0, 0)
    old.deliver(_message(1))
    new = hub.room(1, "room:1", 4e9, code="newroom")
    assert new is not old and old.ended and hub.rooms[1] is new
    assert hub.codes.get("newroom") is new and "oldroom" not in hub.codes
    assert not new.recent_for(StreamState(1, 7, False, 0, 0, 4e9))  # nothing of the old room's
    assert hub.room(1, "room:1", 4e9, code="newroom") is new


def test_a_closed_seats_streams_are_told_why_it_closed(world):
    """Leaving (from another tab), a removal and a ban each end the seat's streams with their own words."""
    hub, _web, open_stream = world
    (_pat, pat_sock), (_kim, kim_sock), (_ann, ann_sock) = open_stream(7), open_stream(9), open_stream(11)
    writer = hub.rooms[1]
    for seat, notice in ((7, "left"), (9, "removed"), (11, "banned")):
        writer.deliver(events.seat_closed(seat, notice))
    assert [_read(sock)[-1]["data"] for sock in (pat_sock, kim_sock, ann_sock)] == ["left", "removed", "banned"]
    with pytest.raises(ValueError):
        events.seat_closed(7, "vanished")


def test_signing_out_ends_that_sign_ins_host_streams_and_no_one_elses(world):
    """The owner signing out on one browser ends the host streams opened under that sign-in; signing out
    everywhere ends all of them. Participants' streams, with no sign-in, go on; the fingerprint is never sent."""
    hub, _web, open_stream = world
    (laptop, laptop_sock), (phone, phone_sock) = open_stream(1, host=True), open_stream(1, host=True)
    laptop.state.sign_in, phone.state.sign_in = "a" * 32, "b" * 32
    pat, pat_sock = open_stream(7)
    writer = hub.rooms[1]
    writer.deliver(events.signed_out("a" * 32))
    assert laptop.closed and not phone.closed and not pat.closed
    assert _read(laptop_sock)[-1] == {"event": "close", "data": "signed_out"}
    writer.deliver(events.signed_out())  # everywhere
    assert phone.closed and not pat.closed
    assert _read(phone_sock)[-1] == {"event": "close", "data": "signed_out"}
    assert _read(pat_sock) == []  # nothing reached a participant, the fingerprint least of all


def test_removed_and_rechecked_seats_end_with_their_last_words(world):
    hub, web, open_stream = world
    (pat, pat_sock), (kim, kim_sock), (ann, ann_sock) = open_stream(7), open_stream(9), open_stream(11)
    writer = hub.rooms[1]
    writer.deliver(Event(EventKind.REMOVED, target=7))
    assert pat.closed
    assert _read(pat_sock)[-1] == {"event": "close", "data": "removed"}
    web.seats = {9}  # Ann's seat is gone and nobody said so
    writer.recheck()
    gevent.sleep(0.01)
    assert ann.closed and _read(ann_sock)[-1] == {"event": "close", "data": "removed"}
    assert not kim.closed
    writer.end("ended")
    assert _read(kim_sock)[-1] == {"event": "close", "data": "ended"}
    assert not hub.rooms


def test_a_recheck_ends_the_host_streams_of_a_sign_in_that_ended_unheard(world):
    """The sign-out event was lost: the re-check finds the sign-in gone and ends its host streams only."""
    hub, web, open_stream = world
    (laptop, laptop_sock), (phone, _phone_sock) = open_stream(1, host=True), open_stream(1, host=True)
    laptop.state.sign_in, phone.state.sign_in = "a" * 32, "b" * 32
    pat, _pat_sock = open_stream(7)
    web.signed_out = {"a" * 32}
    hub.rooms[1].recheck()
    gevent.sleep(0.01)
    assert laptop.closed and not phone.closed and not pat.closed
    assert _read(laptop_sock)[-1] == {"event": "close", "data": "signed_out"}


def test_a_recheck_ends_each_closed_seats_streams_with_why_it_closed(world):
    """When the event that closed a seat was lost, the database's answer says why: a seat that left is told
    "left", not that the host removed it."""
    hub, web, open_stream = world
    (pat, pat_sock), (kim, kim_sock), (ann, ann_sock) = open_stream(7), open_stream(9), open_stream(11)
    web.seats, web.closed_as = set(), {7: "left", 9: "banned"}  # Ann's seat (11) is not in the room at all
    hub.rooms[1].recheck()
    gevent.sleep(0.01)
    assert pat.closed and kim.closed and ann.closed
    assert [_read(sock)[-1]["data"] for sock in (pat_sock, kim_sock, ann_sock)] == ["left", "banned", "removed"]


def test_presence_lists_reach_each_stream_at_most_once_per_interval_newest_first(world, monkeypatch):
    monkeypatch.setattr(fanout, "PRESENCE_EVERY", 0.2)
    hub, _web, open_stream = world
    _, sock = open_stream(7)
    writer = hub.rooms[1]
    for n in range(5):  # a crowd arriving: five announcements at once
        writer.deliver(Event(EventKind.PRESENCE, f"data: here {n}\n\n".encode()))
    assert [e["data"] for e in _read(sock)] == ["here 0"]  # the first at once
    gevent.sleep(0.3)
    assert [e["data"] for e in _read(sock)] == ["here 4"]  # then only the newest


def test_a_big_rooms_count_waits_longer_than_a_list(world, monkeypatch):
    """Above PRESENCE_LIST_MAX people "here now" is a count (``target`` 1): it reaches a stream at most every
    PRESENCE_COUNT_EVERY, so a class of thousands arriving is a few updates per reader, not one every 2 s."""
    monkeypatch.setattr(fanout, "PRESENCE_EVERY", 0.05)
    monkeypatch.setattr(fanout, "PRESENCE_COUNT_EVERY", 0.4)
    hub, _web, open_stream = world
    _, sock = open_stream(7)
    writer = hub.rooms[1]
    writer.deliver(Event(EventKind.PRESENCE, b"data: 60 here\n\n", seq=60, target=1))
    assert [e["data"] for e in _read(sock)] == ["60 here"]
    writer.deliver(Event(EventKind.PRESENCE, b"data: 61 here\n\n", seq=61, target=1))
    gevent.sleep(0.15)  # past a list's interval, not a count's
    assert _read(sock) == []
    gevent.sleep(0.35)
    assert [e["data"] for e in _read(sock)] == ["61 here"]


def test_a_seat_is_admitted_from_memory_until_a_removal_a_resync_or_a_failed_recheck(world):
    """What lets a reconnect skip the database (``stream._admitted``): the seat was found active by a real read
    within the last re-checks; a removal, a lost event (resync) or a re-check that misses it ends that at once."""
    hub, web, open_stream = world
    open_stream(7)
    writer = hub.rooms[1]
    assert not writer.admits(7)  # nothing read yet
    writer.admit(7)
    writer.admit(9)
    writer.admit(11)
    assert writer.admits(7) and writer.admits(9) and writer.admits(11)
    writer.deliver(Event(EventKind.REMOVED, target=9))
    assert not writer.admits(9) and writer.admits(7)
    web.seats = {7}  # Ann's seat (11) closed, and nobody said so
    writer.recheck()
    gevent.sleep(0.01)
    assert writer.admits(7) and not writer.admits(11)
    writer.deliver(Event(EventKind.RESYNC))
    assert not writer.admits(7)


def test_an_admission_expires_without_a_recheck_and_never_outlives_the_room(world, monkeypatch):
    hub, _web, open_stream = world
    open_stream(7)
    writer = hub.rooms[1]
    writer.admit(7)
    hub.admit_seconds = 0.05
    gevent.sleep(0.1)
    assert not writer.admits(7)
    hub.admit_seconds = 60
    writer.admit(7)
    writer.end("ended")
    assert not writer.admits(7)


def test_the_writer_keeps_which_seats_have_a_private_thread(world):
    """A participant with no private thread gets the empty one from memory on a reconnect; a private event (a
    note) makes its seat one to read; a read made while a note passed by is not kept."""
    hub, _web, open_stream = world
    open_stream(7)
    writer = hub.rooms[1]
    passed = writer.private_events
    writer.deliver(Event(EventKind.PRIVATE, b"data: note\n\n", target=9))  # while the read was under way
    writer.know_noted(set(), passed)
    assert writer.noted is None  # that read may have missed it: ask again
    writer.know_noted({3}, writer.private_events)
    writer.deliver(Event(EventKind.PRIVATE, b"data: note\n\n", target=7))
    assert writer.noted == {3, 7}
    writer.deliver(Event(EventKind.RESYNC))
    assert writer.noted is None


def test_memory_never_replays_the_first_text_of_a_message_changed_since(world):
    """A tab that lacks a message which was edited or removed since it was posted must get it as it is now: the
    writer's memory holds its first text, so such a reconnect reads the database instead."""
    hub, _web, open_stream = world
    open_stream(7)
    writer = hub.rooms[1]
    writer.caught_up_to(0, 0)
    writer.deliver(_message(1))
    writer.deliver(_message(2))
    removed = Event(EventKind.CHANGE, b"id: 2.1\ndata: removed\n\n", seq=2, rev=1, target=2)
    writer.deliver(removed)
    assert writer.recent_for(StreamState(1, 9, False, 1, 0, 4e9)) is None  # lacks #2: its text is stale here
    had_it = writer.recent_for(StreamState(1, 9, False, 2, 0, 4e9))  # saw #2 live: only the change
    assert had_it is not None and [e.rev for e in had_it] == [1]


def test_a_seat_removed_while_its_read_was_under_way_is_not_admitted(world):
    hub, _web, open_stream = world
    open_stream(7)
    writer = hub.rooms[1]
    writer.deliver(Event(EventKind.REMOVED, target=9))  # arrives after the database said "active"...
    writer.admit(9)  # ...and before the stream is admitted
    assert not writer.admits(9)
