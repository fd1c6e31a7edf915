"""The live stream: one server-sent events response per open room tab.

Protocol (the part that is easy to get subtly wrong; ``shared/design.md``):

1. subscribe to the room's channel, so live events queue up locally;
2. replay from the database every message with ``seq`` > the cursor, in
   order — the cursor is ``Last-Event-ID`` on a reconnect, else the ``after``
   the page rendered;
3. give the database connection back to the pool (an idle stream holds none);
4. drain the queue: drop a message whose ``seq`` was already sent, and when one
   jumps ahead, fetch the gap from the database first. A ``resync`` (the Redis
   listener reconnected, or this stream fell too far behind) re-reads the
   database the same way.

So every message reaches every tab exactly once, in room order, whatever
happens to the connection or to Redis. Message events carry ``id: <seq>``;
presence and typing carry no id (a typist's own streams skip their typing
events). A stream sends its first bytes at once and a comment at least every
``STREAM_HEARTBEAT_SECONDS``, and ends itself with a
``close`` event when the room ends or the participant is removed (the page
closes its connection on that event instead of retrying).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from flask import Blueprint, Response, abort, current_app, render_template, request, stream_with_context

from . import services
from .access import room_or_404, seat_for
from .broker import Broker
from .extensions import db
from .models import Room, RoomStatus
from .sse import comment, frame, retry

bp = Blueprint("stream", __name__)
log = logging.getLogger(__name__)

HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}


def _cursor(room: Room) -> int:
    raw = request.headers.get("Last-Event-ID") or request.args.get("after")
    if raw is None:
        return room.last_seq
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 12:
        abort(400)
    return int(raw)


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
    state = _StreamState(room_id=room.id, membership_id=seat.id, last=_cursor(room), ends_at=room.ends_at.timestamp())
    db.session.remove()
    return Response(stream_with_context(_run(state)), headers=HEADERS)


@dataclass
class _StreamState:
    room_id: int
    membership_id: int
    last: int
    ends_at: float


def _catch_up(state: _StreamState) -> Iterator[bytes]:
    """Send every stored message after ``state.last``, in order, then let the connection go."""
    try:
        while True:
            room = db.session.get(Room, state.room_id)
            if room is None:
                return
            batch = services.messages_after(state.room_id, state.last)
            for message in batch:
                yield services.message_frame(room, message)
                state.last = message.seq
            if len(batch) < 500:
                return
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
            if event.kind == "message":
                if event.seq <= state.last:
                    continue  # already sent by the replay
                if event.seq > state.last + 1:
                    yield from _catch_up(state)  # a gap: the database has what we missed
                    if event.seq <= state.last:
                        continue
                yield event.frame
                state.last = event.seq
            elif event.kind == "resync":
                yield from _catch_up(state)
            elif event.kind == "removed":
                if event.target == state.membership_id:
                    yield closing("removed")
                    return
            elif event.kind == "room":
                state.ends_at = _ends_at(state)
            elif event.kind == "typing":
                if event.target != state.membership_id:  # the typist never sees their own
                    yield event.frame
            else:
                yield event.frame
    finally:
        sub.close()
        if conn_id is not None:
            _leave(broker, state, conn_id)


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
