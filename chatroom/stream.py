"""The live stream: one server-sent events response per open room tab.

Protocol (the part that is easy to get subtly wrong; ``shared/design.md``):

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
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

from flask import Blueprint, Response, abort, current_app, render_template, request, stream_with_context

from . import services
from .access import room_or_404, seat_for
from .broker import Broker, Event
from .extensions import db
from .models import Room, RoomStatus
from .services._core import cursor_id
from .sse import comment, cursor, frame, retry

bp = Blueprint("stream", __name__)
log = logging.getLogger(__name__)

HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}
_CURSOR = re.compile(r"(\d{1,12})(?:\.(\d{1,12}))?")


@dataclass
class _StreamState:
    room_id: int
    membership_id: int
    is_host: bool
    last: int  # the last message seq this client has
    rev: int  # the last change number this client has
    ends_at: float


def _cursor(room: Room) -> tuple[int, int]:
    raw = request.headers.get("Last-Event-ID")
    if raw:
        found = _CURSOR.fullmatch(raw.strip())
        if found is None:
            abort(400)
        return int(found.group(1)), int(found.group(2) or 0)
    after, rev = request.args.get("after"), request.args.get("rev", "0")
    if after is None:
        return room.last_seq, room.last_rev
    if not (after.isdigit() and rev.isdigit()) or len(after) > 12 or len(rev) > 12:
        abort(400)
    return int(after), int(rev)


def closing(notice: str) -> bytes:
    """The last words of a stream: a visible notice, then the ``close`` event the page stops on."""
    return frame(render_template("chat/_notice.html", notice=notice)) + frame(notice, event="close")


@bp.get("/r/<code>/events")
def events(code: str) -> Response:
    """The room's live event stream. :raise 403: not a member; 404: no such room."""
    room = room_or_404(code)
    seat = seat_for(room)
    if seat is None:
        abort(403)
    if room.status() is RoomStatus.ENDED:
        # A 200 with a close event: an error status would only make the client retry.
        return Response(retry(60_000) + closing("ended"), headers=HEADERS)
    last, rev = _cursor(room)
    state = _StreamState(room.id, seat.id, seat.is_host, last, rev, room.ends_at.timestamp())
    db.session.remove()
    return Response(stream_with_context(_run(state)), headers=HEADERS)


def _catch_up(state: _StreamState) -> Iterator[bytes]:
    """Send what the database has beyond the client's cursor, then let the connection go."""
    try:
        room = db.session.get(Room, state.room_id)
        if room is None:
            return
        snapshot_rev = room.last_rev
        had = state.last
        while True:
            batch = services.messages_after(state.room_id, state.last)
            for message in batch:
                assert message.seq is not None
                state.last = message.seq
                yield services.message_frame(room, message, state.rev)
            if len(batch) < 500:
                break
        # Changes to messages the client had before this catch-up (newer ones were sent as they are now).
        while True:
            changes = services.changes_after(state.room_id, state.rev, had)
            for message in changes:
                state.rev = message.rev
                yield frame(
                    render_template("chat/_message.html", room=room, message=message, oob=True),
                    id=cursor_id(state.last, state.rev),
                )
            if len(changes) < 500:
                break
        if snapshot_rev > state.rev:
            state.rev = snapshot_rev
            yield cursor(cursor_id(state.last, state.rev))
    finally:
        db.session.remove()


def _run(state: _StreamState) -> Iterator[bytes]:
    config = current_app.config
    broker: Broker = current_app.extensions["chatroom.broker"]
    heartbeat = config["STREAM_HEARTBEAT_SECONDS"]
    sub = broker.subscribe(f"room:{state.room_id}")
    conn_id: str | None = None
    try:
        yield retry(config["STREAM_RETRY_MS"]) + comment("connected")
        yield _current_state(state)
        yield from _catch_up(state)
        conn_id = _enter(broker, state)
        while True:
            wait = min(heartbeat, state.ends_at - time.time())
            if wait <= 0:
                yield closing("ended")
                return
            event = sub.get(timeout=wait)
            if event is None:
                yield comment("heartbeat")
                continue
            if event.kind == "removed" and event.target == state.membership_id:
                yield closing("removed")
                return
            if event.kind == "room":
                state.ends_at = _ends_at(state)
            yield from _forward(state, event)
    finally:
        sub.close()
        if conn_id is not None:
            _leave(broker, state, conn_id)


def _forward(state: _StreamState, event: Event) -> Iterator[bytes]:
    """What one live event means for this stream; see the module docstring."""
    if event.kind == "message":
        if event.seq <= state.last:
            return  # already sent by a catch-up
        if event.seq > state.last + 1 or event.rev > state.rev:
            yield from _catch_up(state)  # a gap, or changes we have not sent: the database has them
            if event.seq <= state.last:
                return
        yield event.frame
        state.last = event.seq
    elif event.kind == "change":
        if event.rev <= state.rev:
            return
        if event.rev > state.rev + 1 or event.seq > state.last:
            yield from _catch_up(state)
            if event.rev <= state.rev:
                return
        yield event.frame
        state.rev = event.rev
    elif event.kind == "resync":
        yield from _catch_up(state)
    elif event.kind == "typing":
        if event.target != state.membership_id:  # the typist never sees their own
            yield event.frame
    elif event.kind == "host":
        if state.is_host:
            yield event.frame
    elif event.frame:
        yield event.frame  # presence, room notices


def _current_state(state: _StreamState) -> bytes:
    """The room's state as of now, first on every (re)connect: a reconnecting tab converges."""
    try:
        room = db.session.get(Room, state.room_id)
        if room is None:
            return b""
        html = render_template("chat/_room_state.html", room=room, oob=True)
        if state.is_host:
            html += services.host_panels(room)
        return frame(html)
    finally:
        db.session.remove()


def _ends_at(state: _StreamState) -> float:
    try:
        room = db.session.get(Room, state.room_id)
        return room.ends_at.timestamp() if room is not None else 0.0
    finally:
        db.session.remove()


def _enter(broker: Broker, state: _StreamState) -> str | None:
    try:
        conn_id, arrived = broker.enter(state.room_id, state.membership_id)
        if arrived:
            services.announce_presence_by_id(state.room_id)
        return conn_id
    except Exception:  # presence is best effort; the messages must keep flowing
        log.warning("presence enter failed", exc_info=True)
        return None


def _leave(broker: Broker, state: _StreamState, conn_id: str) -> None:
    try:
        if broker.leave(state.room_id, state.membership_id, conn_id):
            services.announce_presence_by_id(state.room_id)
    except Exception:
        log.warning("presence leave failed", exc_info=True)
