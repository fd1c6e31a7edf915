"""The live stream: one server-sent events response per open room tab.

(Long on purpose: the protocol below and its two runners share private helpers; the room writer is
``chatroom/fanout.py``, the caps ``chatroom/stream_caps.py`` and taking the socket from gunicorn
``chatroom/handover.py``.)

Protocol (the part that is easy to get subtly wrong; ``docs/architecture.md``):

A client's position is a cursor ``seq.rev``: the last message number it has
(messages are numbered gap-free in room order) and the last change number it
has (edits and removals are numbered the same way, separately). Every event
that moves the cursor carries it as its SSE ``id``, so the browser sends it
back as ``Last-Event-ID`` when it reconnects; a first connection takes the
``after``/``rev`` the page rendered.

1. subscribe to the room's channel, so live events queue up locally;
2. catch up from the database: every message after ``seq`` (in its current
   state), then every change after ``rev`` to a message the client already had;
3. give the database connection back to the pool (an idle stream holds none);
4. drain the queue. A message at or below ``seq`` was already sent: dropped.
   One that jumps ahead, or whose id claims changes we have not sent, makes
   us catch up from the database first; changes likewise. A ``resync`` (the
   Redis listener reconnected, or this stream fell too far behind) catches up
   the same way. We never send an id that claims more than the client has.

So every message reaches every tab exactly once, in room order, and a tab that
reconnects converges to the same page as one that never left, whatever happens to the
connection or to Redis. Presence, typing, host and private events carry no id (a
typist's own streams skip their typing events; only host streams forward host events;
only the streams of a private event's seat forward it). Reactions, votes and answered
questions are changes like edits: they replay with the message. A stream sends its first
bytes at once and a comment at least every ``STREAM_HEARTBEAT_SECONDS``, and ends itself
with a ``close`` event when the room ends or the participant is removed (the page stops
on that event instead of retrying). A tab that says goodbye (``?tab=`` and its beacon) ends
its own stream at once.

The seat is re-checked. The ``removed`` event travels through Redis pub/sub, which
is at most once, so a stream does not rely on it: after a ``resync``, after a
missing message is read from the database, and every ``RECHECK_EVERY`` heartbeats,
the seat and the room are read again, and a stream whose seat is gone (or whose
room has ended) closes with the ``close`` event.

Reconnects from memory. Under gunicorn's gevent worker a room's writer lingers ``LINGER_SECONDS`` after its
last stream, remembering the recent events, the room's state and which seats it found active: a participant's
reconnect (it sends its cursor) to a seat read from the database within the last re-checks opens with no
query (``_admitted``). A removal, a ``resync`` or a re-check that misses the seat ends that at once; hosts and
first connections always read. A reconnect storm then costs Flask and the socket, not the database.

Two ways to run, one protocol. Under gunicorn's gevent worker (production, the live
and browser tests) the request sends the head, the room's state and the catch-up,
then hands its socket to the room's writer (``chatroom/fanout.py``) and ends: an
idle stream holds no greenlet, request context, database connection or queue, and
each event is written to every socket of the room by one writer. Anywhere else (the
Flask test client, a threaded server) the stream is a plain generator with its own
inbox (``_run``). Both run ``_forward`` and ``_catch_up`` below.

Caps (``chatroom/stream_caps.py``). A seat may hold ``STREAMS_PER_SEAT`` streams (tabs and devices), an address
``STREAMS_PER_ADDRESS`` (generous: a class shares one address), and a worker
``STREAMS_PER_WORKER`` (below its open-files limit, so ordinary pages are still
served when it is full; ``gunicorn.conf.py`` works it out). Over a cap the answer is
``429`` (seat, address) or ``503`` (worker) with ``Retry-After`` and a sentence: a
refusal the page treats as "live updates unavailable for now", not a reason to
retry at once.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request, stream_with_context
from flask.blueprints import BlueprintSetupState
from sqlalchemy import select

from . import stream_caps
from .access import member_room_or_403, session_seat, sign_in_fingerprint
from .broker import Broker
from .events import (
    SEAT_NOTICES,
    Event,
    EventKind,
    change_frame,
    channel,
    closing,
    cursor_id,
    ends_sign_in,
    host_controls_html,
    message_frame,
    parse_cursor,
    presence_changed,
    room_state_html,
    seat_notice,
)
from .extensions import db
from .fanout import HOLD_SECONDS, RECHECK_EVERY, Fanout, LiveStream, RoomWriter, StreamState
from .handover import can_take_over, capture_start_response, take_socket
from .models import Membership, Note, Room, RoomStatus, closed_as
from .presence import Presence, present_members
from .services import messages, moderation, participation
from .sse import comment, cursor, frame, retry
from .stream_caps import Ticket
from .text import is_number

bp = Blueprint("stream", __name__)
log = logging.getLogger(__name__)

HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}

# How long a catch-up read from the database may serve other streams of the same room.
REPLAY_SECONDS = 2.0
REPLAY_BATCH = 500

_StreamState = StreamState  # the protocol's name for it (tests and this module)


@dataclass
class _Replay:
    """Messages after ``after`` as of ``built_at``, framed with the room's ``rev`` then; shared by streams."""

    built_at: float
    after: int
    rev: int
    frames: list[tuple[int, bytes]]
    complete: bool  # False when there were more than one batch: streams then page on their own


@dataclass
class _State:
    """The room's state notice as framed at ``built_at``: the first event of every (re)connect, shared."""

    built_at: float
    data: bytes


@dataclass
class _ReplayCache:
    """Per process: a burst of streams that must catch up on one room (a reconnect storm, a
    Redis resync) costs one database read and one render per message, not one per stream."""

    _guard: threading.Lock = field(default_factory=threading.Lock)
    _locks: dict[int, threading.Lock] = field(default_factory=dict)
    entries: dict[int, _Replay] = field(default_factory=dict)
    states: dict[int, _State] = field(default_factory=dict)

    def lock(self, room_id: int) -> threading.Lock:
        with self._guard:
            if len(self._locks) > 10_000:
                self._locks.clear()
                self.entries.clear()
                self.states.clear()
            return self._locks.setdefault(room_id, threading.Lock())


def _replay_cache() -> _ReplayCache:
    return current_app.extensions.setdefault("chatroom.replay", _ReplayCache())


# -- the view ------------------------------------------------------------------------------------------------


def _client_cursor() -> tuple[int, int] | None:
    """The cursor the client sent: ``Last-Event-ID`` (a reconnect), else ``?after=&rev=`` (the page's), else None.

    :raise 400: a malformed one.
    """
    raw = request.headers.get("Last-Event-ID")
    if raw:
        parsed = parse_cursor(raw)
        if parsed is None:
            abort(400)
        return parsed
    after, rev = request.args.get("after"), request.args.get("rev", "0")
    if after is None:
        return None
    if not (is_number(after) and is_number(rev)) or len(after) > 12 or len(rev) > 12:
        abort(400)
    return int(after), int(rev)


def _cursor(room: Room) -> tuple[int, int]:
    """Where the stream starts: the client's cursor, never beyond the room's newest message and change (a
    cursor from the future would skip everything until the room caught up with it, behind heartbeats that
    look healthy); the room's newest when the client sent none."""
    cursor = _client_cursor()
    if cursor is None:
        return room.last_seq, room.last_rev
    return min(cursor[0], room.last_seq), min(cursor[1], room.last_rev)


def _tab() -> str:
    tab = request.args.get("tab", "")
    return tab if _TAB.fullmatch(tab) else ""


def _admitted(code: str) -> tuple[RoomWriter, int, tuple[int, int]] | None:
    """A participant's stream this process may open from memory: (the room's writer, the seat, the cursor).

    Under gunicorn's gevent worker only, for a stream that sends its cursor, to a room whose writer here holds
    (or lingers after) streams and found the session's seat active within the last re-checks
    (``RoomWriter.admits``; a removal ends that at once). A reconnect storm then costs no database query
    for the seat. None: the ordinary path, which reads the room and the seat.
    """
    fanout: Fanout | None = current_app.extensions.get("chatroom.fanout")
    if fanout is None or not can_take_over(request.environ):
        return None
    writer = fanout.codes.get(code.lower())
    if writer is None:
        return None
    seat = session_seat(writer.room_id)
    if seat is None or not writer.admits(seat):
        return None
    cursor = _client_cursor()
    if cursor is None or not writer.knows(*cursor):
        return None  # a cursor ahead of what this process has seen: the ordinary path checks it
    return writer, seat, cursor


@bp.get("/r/<code>/events")
def events(code: str) -> Response:
    """The room's live event stream (``text/event-stream``), from the client's cursor on.

    :raise 403: not a member; 404: no such room; 400: a malformed cursor.
    Over a cap (module docstring): 429 or 503 with ``Retry-After``.
    """
    admitted = _admitted(code)
    if admitted is not None:
        writer, seat_id, (last, rev) = admitted
        return _open(_StreamState(writer.room_id, seat_id, False, last, rev, writer.ends_at, _tab()), writer.code)
    room, seat = member_room_or_403(code)
    if room.status() is RoomStatus.ENDED:
        # A 200 with a close event: an error status would only make the client retry.
        return Response(retry(60_000) + closing("ended"), headers=HEADERS)
    last, rev = _cursor(room)
    state = _StreamState(room.id, seat.id, seat.is_host, last, rev, room.ends_at.timestamp(), _tab())
    if seat.is_host:
        state.sign_in = sign_in_fingerprint()  # signing out there ends this stream
    return _open(state, room.code, checked=True)


def _open(state: _StreamState, code: str, *, checked: bool = False) -> Response:
    """The stream's response, within the caps; ``checked``: the seat was just read from the database."""
    ticket = stream_caps.slots().take(state.membership_id, request.remote_addr or "")
    if isinstance(ticket, str):
        return stream_caps.refusal(ticket)
    body: Iterator[bytes] | None = None
    try:
        if can_take_over(request.environ):
            body = _Handover(state, ticket, code, checked)  # subscribes and reads the first bytes now
        else:
            db.session.remove()
            body = _run(state)
        return Response(stream_with_context(_Releasing(body, ticket)), headers=HEADERS)
    except BaseException:
        if isinstance(body, _Handover):
            body.close()
        ticket.release()
        raise


class _Releasing:
    """The response body: gives the stream's slot back when the server closes it (unless handed over)."""

    def __init__(self, body: Iterator[bytes], ticket: Ticket) -> None:
        self.body, self.ticket = body, ticket

    def __iter__(self) -> _Releasing:
        return self

    def __next__(self) -> bytes:
        return next(self.body)

    def close(self) -> None:
        try:
            self.body.close()  # type: ignore[attr-defined]
        finally:
            if not getattr(self.body, "handed_over", False):
                self.ticket.release()


# -- the protocol ------------------------------------------------------------------------------------------------


def _usable(entry: _Replay | None, state: _StreamState) -> bool:
    # Built after we subscribed (so anything committed later reaches our queue), from a cursor
    # at or before ours, with every change we have, and fresh.
    return (
        entry is not None
        and entry.complete
        and entry.built_at > state.subscribed_at
        and entry.after <= state.last
        and entry.rev >= state.rev
        and time.monotonic() - entry.built_at < REPLAY_SECONDS
    )


def _shared_replay(state: _StreamState) -> _Replay | None:
    cache = _replay_cache()
    entry = cache.entries.get(state.room_id)
    if _usable(entry, state):
        return entry
    with cache.lock(state.room_id):
        entry = cache.entries.get(state.room_id)
        if _usable(entry, state):
            return entry  # another stream of this room read it while we waited
        built_at = time.monotonic()
        room = db.session.get(Room, state.room_id)
        if room is None:
            return None
        rev = room.last_rev
        rows = messages.after(state.room_id, state.last, REPLAY_BATCH)
        frames = [(m.seq or 0, message_frame(room, m, rev)) for m in rows]
        entry = _Replay(built_at, state.last, rev, frames, complete=len(rows) < REPLAY_BATCH)
        cache.entries[state.room_id] = entry
        return entry


def _catch_up(state: _StreamState) -> Generator[bytes]:
    """Send what the database has beyond the client's cursor, then let the connection go.

    First the changes the client lacks to messages it already has (so its cursor
    may claim the room's current ``rev``), then every newer message as it is now.
    The room is read only when a change or a long catch-up needs it: a shared
    replay alone costs a stream no query.
    """
    try:
        replay = _shared_replay(state)
        if replay is None:
            return
        room: Room | None = None
        moved = False
        while state.rev < replay.rev:
            room = room or db.session.get(Room, state.room_id)
            if room is None:
                return
            changes = messages.changes_after(state.room_id, state.rev, state.last, REPLAY_BATCH)
            for message in changes:
                state.rev = message.rev
                yield change_frame(room, message, state.last, state.rev)
            if len(changes) < REPLAY_BATCH:
                moved = state.rev < replay.rev
                state.rev = max(state.rev, replay.rev)
                break
        for seq, data in replay.frames:
            if seq > state.last:
                state.last = seq
                moved = False
                yield data
        if not replay.complete:  # a long way behind: page through the rest on our own
            room = room or db.session.get(Room, state.room_id)
            if room is None:
                return
            while True:
                batch = messages.after(state.room_id, state.last, REPLAY_BATCH)
                for message in batch:
                    state.last = message.seq or state.last
                    moved = False
                    yield message_frame(room, message, state.rev)
                if len(batch) < REPLAY_BATCH:
                    break
        if moved:
            yield cursor(cursor_id(state.last, state.rev))  # the rev moved with no frame to carry it
        yield from _release_held(state, replay.built_at)
    finally:
        db.session.remove()


def _release_held(state: _StreamState, read_at: float | None = None) -> Iterator[bytes]:
    """Send the held messages that now follow the cursor, and settle what stays held.

    After a catch-up that read the database at ``read_at`` (monotonic), a held message that had
    arrived before that read and is still beyond the cursor is not in the database: messages
    commit in ``seq`` order and are published after their commit, so it cannot be real (a room
    writer's memory of a room deleted behind its back, in tests whose database is emptied). It is
    dropped. What stays held (arrived after the read) waits one more ``HOLD_SECONDS`` from now,
    so the next catch-up reads afresh instead of reusing the same read in a loop.
    """
    for seq in [seq for seq in state.held if seq <= state.last]:
        del state.held[seq]
        state.held_at.pop(seq, None)
    while state.last + 1 in state.held:
        state.held_at.pop(state.last + 1, None)
        yield from _send_message(state, state.held.pop(state.last + 1))
    if read_at is not None:
        for seq in [seq for seq, at in state.held_at.items() if at < read_at]:
            log.warning("dropping held message %s of room %s: the database does not have it", seq, state.room_id)
            state.held.pop(seq, None)
            del state.held_at[seq]
        if state.held:
            state.hold_until = time.monotonic() + HOLD_SECONDS
    if not state.held:
        state.forget_held()


def _forward(state: _StreamState, event: Event) -> Iterator[bytes]:
    """What one live event means for this stream; see the module docstring."""
    if event.kind == EventKind.MESSAGE:
        if event.seq <= state.last:
            return  # already sent by a catch-up
        if event.seq > state.last + 1:
            now = time.monotonic()
            state.held[event.seq] = event  # early: wait a moment for the one before it
            state.held_at[event.seq] = now
            state.hold_until = state.hold_until or now + HOLD_SECONDS
            return
        yield from _send_message(state, event)
        yield from _release_held(state)
    elif event.kind == EventKind.CHANGE:
        if event.rev <= state.rev:
            return
        if event.rev > state.rev + 1 or event.seq > state.last:
            yield from _catch_up(state)
            if event.rev <= state.rev:
                return
        yield event.frame
        state.rev = event.rev
    elif event.kind == EventKind.RESYNC:
        yield from _catch_up(state)
    elif event.kind == EventKind.TYPING:
        if event.target != state.membership_id:  # the typist never sees their own
            yield event.frame
    elif event.kind == EventKind.HOST:
        if state.is_host:
            yield event.frame
    elif event.kind == EventKind.PRIVATE:
        if event.target == state.membership_id:  # a private thread: its participant's streams only
            yield event.frame
    elif event.kind == EventKind.HELD:
        if event.target == state.membership_id:  # the author's own streams only
            yield event.frame
    elif event.kind == EventKind.DEPART or event.kind == EventKind.SIGNED_OUT:
        return  # handled in _run (it ends this stream when it names this tab or sign-in); never sent
    elif event.frame:
        yield event.frame  # presence, room notices


_TAB = re.compile(r"[A-Za-z0-9]{8,32}")


def _departed(state: _StreamState, event: Event) -> bool:
    """Whether ``event`` is this stream's own tab saying goodbye (``events.tab_departed``)."""
    return (
        event.kind == EventKind.DEPART
        and bool(state.tab)
        and event.target == state.membership_id
        and event.frame.decode() == state.tab
    )


def _send_message(state: _StreamState, event: Event) -> Iterator[bytes]:
    if event.seq <= state.last:
        return
    if event.rev > state.rev:
        yield from _catch_up(state)  # its id would claim changes we have not sent: the database has them
        return
    yield event.frame
    state.last = event.seq


def _current_state(state: _StreamState, *, release: bool = True) -> bytes:
    """The room's state as of now, first on every (re)connect: a reconnecting tab converges.

    Participants' streams share one rendering per room, read after they subscribed (a
    reconnect storm renders it once); a host's adds the host's panels, its own. ``release``:
    give the database connection back afterwards (a caller that reads more keeps it).
    """
    cache = _replay_cache()
    entry = cache.states.get(state.room_id)
    if (
        not state.is_host
        and entry is not None
        and entry.built_at > state.subscribed_at
        and time.monotonic() - entry.built_at < REPLAY_SECONDS
    ):
        return entry.data + _viewer_state(state, release)
    try:
        built_at = time.monotonic()
        room = db.session.get(Room, state.room_id)
        if room is None:
            return b""
        html = room_state_html(room)
        if state.is_host:
            return frame(html + moderation.host_panels(room) + host_controls_html(room) + _panels(state, room))
        data = frame(html)
        cache.states[state.room_id] = _State(built_at, data)
        return data + frame(_panels(state, room))
    finally:
        if release:
            db.session.remove()


def _panels(state: _StreamState, room: Room) -> str:
    """This viewer's own part of the state: its private thread, or the host's threads and questions."""
    return participation.panels(room, state.membership_id, state.is_host)


def _viewer_state(state: _StreamState, release: bool = True) -> bytes:
    """``_panels`` framed, for a participant whose shared part of the state came from memory."""
    try:
        room = db.session.get(Room, state.room_id)
        return frame(_panels(state, room)) if room is not None else b""
    finally:
        if release:
            db.session.remove()


def _ends_at(state: _StreamState) -> float:
    try:
        room = db.session.get(Room, state.room_id)
        return room.ends_at.timestamp() if room is not None else 0.0
    finally:
        db.session.remove()


def _seat_gone(state: _StreamState) -> str | None:
    """Why this stream must end now (``ended``, or why its seat closed: ``Membership.closed_as``), from the
    database; None while it may go on."""
    try:
        room = db.session.get(Room, state.room_id)
        if room is None or room.status() is RoomStatus.ENDED:
            return "ended"
        seat = db.session.get(Membership, state.membership_id)
        if seat is None or seat.room_id != room.id:
            return "removed"
        return None if seat.active else seat.closed_as
    finally:
        db.session.remove()


def _presence(room_id: int) -> bytes:
    """The room's "here now" list as SSE bytes, or nothing when presence is unavailable.

    Presence announcements are not durable (``chatroom/events.py``): one published while a
    listener was away is lost, and the announcer only speaks again when the list changes.
    After a resync the stream says the list again itself.
    """
    try:
        room = db.session.get(Room, room_id)
        return presence_changed(room, present_members(room)).frame if room is not None else b""
    except Exception:  # best effort, like presence itself
        log.warning("could not render presence after a resync", exc_info=True)
        return b""
    finally:
        db.session.remove()


def _enter(tracker: Presence, state: _StreamState) -> str | None:
    try:
        return tracker.enter(state.room_id, state.membership_id, state.tab or None)  # it announces, batched
    except Exception:  # presence is best effort; the messages must keep flowing
        log.warning("presence enter failed", exc_info=True)
        return None


def _leave(tracker: Presence, state: _StreamState, conn_id: str) -> None:
    try:
        tracker.leave(state.room_id, state.membership_id, conn_id)
    except Exception:
        log.warning("presence leave failed", exc_info=True)


# -- anywhere: a generator with its own inbox ----------------------------------------------------------------


def _run(state: _StreamState) -> Iterator[bytes]:
    config = current_app.config
    broker: Broker = current_app.extensions["chatroom.broker"]
    tracker: Presence = current_app.extensions["chatroom.presence"]
    heartbeat = config["STREAM_HEARTBEAT_SECONDS"]
    sub = broker.subscribe(channel(state.room_id))
    state.subscribed_at = time.monotonic()
    conn_id: str | None = None
    beats = 0
    try:
        yield retry(config["STREAM_RETRY_MS"]) + comment("connected")
        yield _current_state(state)
        yield from _catch_up(state)
        conn_id = _enter(tracker, state)
        while True:
            wait = min(heartbeat, state.ends_at - time.time())
            if wait <= 0:
                yield closing("ended")
                return
            if state.hold_until:
                wait = min(wait, max(state.hold_until - time.monotonic(), 0))
            event = sub.get(timeout=wait)
            if event is None:
                if state.hold_until and time.monotonic() >= state.hold_until:
                    # The missing message never came: ask the database (read after the early one arrived).
                    if gone := _seat_gone(state):
                        yield closing(gone)
                        return
                    state.subscribed_at = max(state.subscribed_at, state.hold_until - HOLD_SECONDS)
                    yield from _catch_up(state)
                    state.stop_holding_if_overdue()
                else:
                    beats += 1
                    if beats % RECHECK_EVERY == 0 and (gone := _seat_gone(state)):
                        yield closing(gone)
                        return
                    yield comment("heartbeat")
                continue
            out: list[bytes] = []
            while event is not None:  # everything already waiting goes out in one write
                if event.kind == EventKind.REMOVED and event.target == state.membership_id:
                    yield b"".join(out) + closing(seat_notice(event))
                    return
                if _departed(state, event):
                    yield b"".join(out)
                    return  # the tab said goodbye: its socket is closed or closing
                if state.is_host and ends_sign_in(event, state.sign_in):
                    yield b"".join(out) + closing("signed_out")
                    return
                if event.kind == EventKind.ROOM:
                    state.ends_at = _ends_at(state)
                if event.kind == EventKind.RESYNC:
                    # What came before may be lost, the "removed" event too: check the seat, then
                    # catch up from a read made after the loss.
                    if gone := _seat_gone(state):
                        yield b"".join(out) + closing(gone)
                        return
                    state.subscribed_at = max(state.subscribed_at, broker.resynced_at, sub.resync_at)
                    out.extend(_forward(state, event))
                    out.append(_presence(state.room_id))
                else:
                    out.extend(_forward(state, event))
                event = sub.get_nowait() if len(out) < 64 else None
            if out:
                yield b"".join(out)
    finally:
        sub.close()
        if conn_id is not None:
            _leave(tracker, state, conn_id)


# -- under gunicorn's gevent worker: the socket goes to the room's writer --------------------------------------------


def _capture_start_response(setup: BlueprintSetupState) -> None:
    app: Any = setup.app
    app.wsgi_app = capture_start_response(app.wsgi_app)


bp.record_once(_capture_start_response)


class _LiveWeb:
    """What the room writers of one app ask of the web layer (``chatroom.fanout.WebSide``)."""

    ENVIRON_KEYS = ("SCRIPT_NAME", "SERVER_NAME", "SERVER_PORT", "HTTP_HOST", "wsgi.url_scheme", "SERVER_PROTOCOL")

    def __init__(self, app: Flask, environ: dict[str, Any]) -> None:
        self.app = app
        self.environ = {key: environ[key] for key in self.ENVIRON_KEYS if key in environ}
        self.tracker: Presence = app.extensions["chatroom.presence"]
        self.words = {notice: closing(notice) for notice in ("ended", "signed_out", *SEAT_NOTICES)}  # rendered once

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """An app and request context (templates build URLs), the session released at the end."""
        environ = {
            **self.environ,
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/",
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
        }
        with self.app.app_context(), self.app.request_context(environ):
            try:
                yield
            finally:
                db.session.remove()

    def forward(self, state: StreamState, event: Event) -> bytes:
        """``_forward`` for one event, as one piece of bytes."""
        return b"".join(_forward(state, event))

    def catch_up(self, state: StreamState) -> bytes:
        """``_catch_up``, as one piece of bytes."""
        return b"".join(_catch_up(state))

    def check(self, room_id: int, seats: set[int]) -> tuple[float | None, dict[int, str]]:
        """The room's end (None: gone) and why each of ``seats`` no longer held closed, in two queries (a seat
        the room does not have counts as ``removed``)."""
        try:
            room = db.session.get(Room, room_id)
            if room is None:
                return None, {}
            ends_at = room.ends_at.timestamp()
            if not seats:
                return ends_at, {}
            rows = db.session.execute(
                select(Membership.id, Membership.left_at, Membership.banned, Membership.removed).where(
                    Membership.room_id == room_id
                )
            )
            known = {row.id: row for row in rows}
            gone: dict[int, str] = {}
            for seat in seats:
                row = known.get(seat)
                if row is None:
                    gone[seat] = "removed"
                elif row.left_at is not None:
                    gone[seat] = closed_as(row.banned, row.removed)
            return ends_at, gone
        finally:
            db.session.remove()

    def closing(self, notice: str) -> bytes:
        """A stream's last words (rendered once per process)."""
        return self.words.get(notice) or self.words["ended"]

    def presence(self, room_id: int) -> bytes:
        """The room's "here now" list, rendered once for the room's streams in this process."""
        return _presence(room_id)

    def leave(self, stream: LiveStream) -> None:
        """Forget the stream's presence and give its slot back."""
        try:
            if stream.conn_id is not None:
                _leave(self.tracker, stream.state, stream.conn_id)
        finally:
            if stream.ticket is not None:
                stream.ticket.release()


def _fanout() -> Fanout:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    fanout = app.extensions.get("chatroom.fanout")
    if fanout is None:
        broker: Broker = app.extensions["chatroom.broker"]
        web = _LiveWeb(app, request.environ)
        fanout = Fanout(web, broker.attach, broker.detach, app.config["STREAM_HEARTBEAT_SECONDS"])
        app.extensions["chatroom.fanout"] = fanout
    return fanout


class _Handover:
    """The live path's response body: opens the stream in the request, then hands its socket to the room's writer.

    Made in the view, it subscribes and reads the first bytes (the room's state and the catch-up) in the view's
    own database session, the one that found the seat: the body runs after Flask's teardown, which would cost a
    second connection, its ping and its rollback for every stream opened.
    """

    def __init__(self, state: StreamState, ticket: Ticket, code: str, checked: bool) -> None:
        self.state, self.ticket = state, ticket
        self.handed_over = False
        self.environ = request.environ
        self.tracker: Presence = current_app.extensions["chatroom.presence"]
        self.retry = current_app.config["STREAM_RETRY_MS"]
        self.writer = _fanout().room(state.room_id, channel(state.room_id), state.ends_at, code)
        if checked and not state.is_host:
            self.writer.admit(state.membership_id)
        self.stream = LiveStream(self.writer, state, ticket)
        self.writer.add(self.stream)  # busy: live events wait in its pending list until the hand-over
        state.subscribed_at = time.monotonic()
        # What the view read (the room, the seat) was read before subscribing: a change committed between
        # then and now reached no queue of ours, so everything the first bytes show is read again from here.
        db.session.expire_all()
        self.more = False  # the catch-up went on past the first bytes: the body reads the rest
        self._left = False
        try:
            self.first = self._first_bytes()
        except BaseException:
            self._leave()
            raise
        self._body: Generator[bytes] = self._run()

    def __iter__(self) -> _Handover:
        return self

    def __next__(self) -> bytes:
        return next(self._body)

    def close(self) -> None:
        self._body.close()
        if not self.handed_over:
            self._leave()  # also when the body never started

    def _first_bytes(self) -> bytes:
        """The head comment, the room's state and the catch-up, read after subscribing. A writer that has listened
        long enough remembers what the client lacks (no database read at all); otherwise one read serves the
        state and the catch-up, up to 256 KiB (the body pages through the rest)."""
        state, writer = self.state, self.writer
        first = [retry(self.retry) + comment("connected"), _live_state(writer, state)]
        recent = writer.recent_for(state)
        if recent is not None:
            for past in recent:
                first.extend(_forward(state, past))
            return b"".join(first)
        size = 0
        catch_up: Generator[bytes] = _catch_up(state)
        for data in catch_up:
            first.append(data)
            size += len(data)
            if size >= 256 * 1024:
                catch_up.close()  # the cursor in ``state`` says how far it got
                self.more = True
                break
        else:
            writer.caught_up_to(state.last, state.rev)
        return b"".join(first)

    def _run(self) -> Generator[bytes]:
        state, stream = self.state, self.stream
        try:
            yield self.first
            self.first = b""
            if self.more:
                yield from _catch_up(state)  # it lets the connection go when it is done
                self.writer.caught_up_to(state.last, state.rev)
            stream.conn_id = _enter(self.tracker, state)
            while not stream.closed:
                event = stream.next_pending()
                if event is None:
                    break
                if _departed(state, event):
                    return  # the tab said goodbye while its stream was opening
                out = b"".join(_forward(state, event))
                if out:
                    yield out
            if stream.closed:
                if stream.notice:  # removed or ended; none when its tab said goodbye
                    yield closing(stream.notice)
                return
            if time.time() >= state.ends_at:
                yield closing("ended")
                return
            # The hand-over. Nothing pending and no switch from here on, so no event slips between.
            fd, chunked = take_socket(self.environ)
            stream.start(fd, chunked)
            self.handed_over = True
        finally:
            if not self.handed_over:
                self._leave()
            db.session.remove()

    def _leave(self) -> None:
        """The stream never went live: out of the writer, and out of presence if it got in (once)."""
        if self._left:
            return
        self._left = True
        self.stream.closed = True
        self.writer.remove(self.stream)
        if self.stream.conn_id is not None:
            _leave(self.tracker, self.state, self.stream.conn_id)


def _live_state(writer: RoomWriter, state: StreamState) -> bytes:
    """The room's state for a stream that just joined ``writer``: its shared part remembered by the writer while
    nothing changed, then the viewer's own part (``_own_panel``). The caller releases the database session."""
    if state.is_host:
        return _current_state(state, release=False)
    shared = writer.state_frame
    if shared is None:
        version = writer.state_version
        room = db.session.get(Room, state.room_id)
        if room is None:
            return b""
        shared = frame(room_state_html(room))
        writer.keep_state(shared, version)
    return shared + _own_panel(writer, state)


def _own_panel(writer: RoomWriter, state: StreamState) -> bytes:
    """A participant's private thread, framed: while the writer knows the seat has none, the empty one it keeps
    (no query); otherwise read. The writer learns which seats have a thread once, then from private events."""
    if writer.noted is None:
        passed = writer.private_events
        query = select(Note.membership_id).where(Note.room_id == state.room_id).distinct()
        writer.know_noted(set(db.session.scalars(query)), passed)
    none_here = writer.noted is not None and state.membership_id not in writer.noted
    if none_here and writer.empty_panel is not None:
        return writer.empty_panel
    panel = _viewer_state(state, release=False)
    if none_here and panel:
        writer.empty_panel = panel
    return panel
