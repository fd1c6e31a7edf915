"""The live stream: one server-sent events response per open room tab.

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
reconnects converges to the same page as one that never left, whatever happens
to the connection or to Redis. Presence, typing and host events carry no id (a
typist's own streams skip their typing events; only host streams forward host
events). A stream sends its first bytes at once and a comment at least every
``STREAM_HEARTBEAT_SECONDS``, and ends itself with a ``close`` event when the
room ends or the participant is removed (the page stops on that event instead
of retrying).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from flask import Blueprint, Response, abort, current_app, request, stream_with_context

from .access import member_room_or_403
from .broker import Broker
from .events import (
    Event,
    EventKind,
    change_frame,
    channel,
    closing,
    cursor_id,
    host_controls_html,
    message_frame,
    parse_cursor,
    room_state_html,
)
from .extensions import db
from .models import Room, RoomStatus
from .presence import Presence
from .services import messages, moderation
from .sse import comment, cursor, frame, retry
from .text import is_number

bp = Blueprint("stream", __name__)
log = logging.getLogger(__name__)

HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}


# A message that arrives before the one ahead of it (two posts committed in order can be
# published out of order) waits this long for it before the stream asks the database.
HOLD_SECONDS = 0.3
# How long a catch-up read from the database may serve other streams of the same room.
REPLAY_SECONDS = 2.0
REPLAY_BATCH = 500


@dataclass
class _StreamState:
    room_id: int
    membership_id: int
    is_host: bool
    last: int  # the last message seq this client has
    rev: int  # the last change number this client has
    ends_at: float
    subscribed_at: float = 0.0  # monotonic
    held: dict[int, Event] = field(default_factory=dict)  # early messages, by seq
    hold_until: float = 0.0  # monotonic; 0 when nothing is held


@dataclass
class _Replay:
    """Messages after ``after`` as of ``built_at``, framed with the room's ``rev`` then; shared by streams."""

    built_at: float
    after: int
    rev: int
    frames: list[tuple[int, bytes]]
    complete: bool  # False when there were more than one batch: streams then page on their own


class _ReplayCache:
    """Per process: a burst of streams that must catch up on one room (a reconnect storm, a
    Redis resync) costs one database read and one render per message, not one per stream."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[int, threading.Lock] = {}
        self.entries: dict[int, _Replay] = {}

    def lock(self, room_id: int) -> threading.Lock:
        with self._guard:
            if len(self._locks) > 10_000:
                self._locks.clear()
                self.entries.clear()
            return self._locks.setdefault(room_id, threading.Lock())


def _cursor(room: Room) -> tuple[int, int]:
    raw = request.headers.get("Last-Event-ID")
    if raw:
        parsed = parse_cursor(raw)
        if parsed is None:
            abort(400)
        return parsed
    after, rev = request.args.get("after"), request.args.get("rev", "0")
    if after is None:
        return room.last_seq, room.last_rev
    if not (is_number(after) and is_number(rev)) or len(after) > 12 or len(rev) > 12:
        abort(400)
    return int(after), int(rev)


@bp.get("/r/<code>/events")
def events(code: str) -> Response:
    """The room's live event stream (``text/event-stream``), from the client's cursor on.

    :raise 403: not a member; 404: no such room; 400: a malformed cursor.
    """
    room, seat = member_room_or_403(code)
    if room.status() is RoomStatus.ENDED:
        # A 200 with a close event: an error status would only make the client retry.
        return Response(retry(60_000) + closing("ended"), headers=HEADERS)
    last, rev = _cursor(room)
    state = _StreamState(room.id, seat.id, seat.is_host, last, rev, room.ends_at.timestamp())
    db.session.remove()
    return Response(stream_with_context(_run(state)), headers=HEADERS)


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
    cache: _ReplayCache = current_app.extensions.setdefault("chatroom.replay", _ReplayCache())
    entry = cache.entries.get(state.room_id)
    if _usable(entry, state):
        return entry
    with cache.lock(state.room_id):
        entry = cache.entries.get(state.room_id)
        if _usable(entry, state):
            return entry  # another stream of this room read it while we waited
        room = db.session.get(Room, state.room_id)
        if room is None:
            return None
        built_at, rev = time.monotonic(), room.last_rev
        rows = messages.after(state.room_id, state.last, REPLAY_BATCH)
        frames = [(m.seq or 0, message_frame(room, m, rev)) for m in rows]
        entry = _Replay(built_at, state.last, rev, frames, complete=len(rows) < REPLAY_BATCH)
        cache.entries[state.room_id] = entry
        return entry


def _catch_up(state: _StreamState) -> Iterator[bytes]:
    """Send what the database has beyond the client's cursor, then let the connection go.

    First the changes the client lacks to messages it already has (so its cursor
    may claim the room's current ``rev``), then every newer message as it is now.
    """
    try:
        replay = _shared_replay(state)
        if replay is None:
            return
        room = db.session.get(Room, state.room_id)
        if room is None:
            return
        moved = False
        while state.rev < replay.rev:
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
        state.held = {seq: e for seq, e in state.held.items() if seq > state.last + 1}
        if not state.held:
            state.hold_until = 0.0
    finally:
        db.session.remove()


def _run(state: _StreamState) -> Iterator[bytes]:
    config = current_app.config
    broker: Broker = current_app.extensions["chatroom.broker"]
    tracker: Presence = current_app.extensions["chatroom.presence"]
    heartbeat = config["STREAM_HEARTBEAT_SECONDS"]
    sub = broker.subscribe(channel(state.room_id))
    state.subscribed_at = time.monotonic()
    conn_id: str | None = None
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
                    yield from _catch_up(state)  # the missing message never came: ask the database
                else:
                    yield comment("heartbeat")
                continue
            out: list[bytes] = []
            while event is not None:  # everything already waiting goes out in one write
                if event.kind == EventKind.REMOVED and event.target == state.membership_id:
                    yield b"".join(out) + closing("removed")
                    return
                if event.kind == EventKind.ROOM:
                    state.ends_at = _ends_at(state)
                out.extend(_forward(state, event))
                event = sub.get_nowait() if len(out) < 64 else None
            if out:
                yield b"".join(out)
    finally:
        sub.close()
        if conn_id is not None:
            _leave(tracker, state, conn_id)


def _forward(state: _StreamState, event: Event) -> Iterator[bytes]:
    """What one live event means for this stream; see the module docstring."""
    if event.kind == EventKind.MESSAGE:
        if event.seq <= state.last:
            return  # already sent by a catch-up
        if event.seq > state.last + 1:
            state.held[event.seq] = event  # early: wait a moment for the one before it
            state.hold_until = state.hold_until or time.monotonic() + HOLD_SECONDS
            return
        yield from _send_message(state, event)
        while state.last + 1 in state.held:
            yield from _send_message(state, state.held.pop(state.last + 1))
        if not state.held:
            state.hold_until = 0.0
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
    elif event.frame:
        yield event.frame  # presence, room notices


def _send_message(state: _StreamState, event: Event) -> Iterator[bytes]:
    if event.seq <= state.last:
        return
    if event.rev > state.rev:
        yield from _catch_up(state)  # its id would claim changes we have not sent: the database has them
        return
    yield event.frame
    state.last = event.seq


def _current_state(state: _StreamState) -> bytes:
    """The room's state as of now, first on every (re)connect: a reconnecting tab converges."""
    try:
        room = db.session.get(Room, state.room_id)
        if room is None:
            return b""
        html = room_state_html(room)
        if state.is_host:
            html += moderation.host_panels(room) + host_controls_html(room)
        return frame(html)
    finally:
        db.session.remove()


def _ends_at(state: _StreamState) -> float:
    try:
        room = db.session.get(Room, state.room_id)
        return room.ends_at.timestamp() if room is not None else 0.0
    finally:
        db.session.remove()


def _enter(tracker: Presence, state: _StreamState) -> str | None:
    try:
        return tracker.enter(state.room_id, state.membership_id)  # the tracker announces, batched
    except Exception:  # presence is best effort; the messages must keep flowing
        log.warning("presence enter failed", exc_info=True)
        return None


def _leave(tracker: Presence, state: _StreamState, conn_id: str) -> None:
    try:
        tracker.leave(state.room_id, state.membership_id, conn_id)
    except Exception:
        log.warning("presence leave failed", exc_info=True)
