"""The live stream's view: one server-sent events response per open room tab, ``GET /r/<code>/events``.

The protocol (cursors, catch-up, what each event means for a stream, the seat re-check) is
``chatroom/stream_protocol.py``; the room writer ``chatroom/fanout.py``; the hand-over of the socket to it
under gunicorn's gevent worker ``chatroom/stream_live.py`` and ``chatroom/handover.py``; the caps
``chatroom/stream_caps.py``. ``docs/architecture.md`` tells the whole of it.

Two ways to run, one protocol. Under gunicorn's gevent worker (production, the live
and browser tests) the request sends the head, the room's state and the catch-up,
then hands its socket to the room's writer and ends. Anywhere else (the
Flask test client, a threaded server) the stream is a plain generator with its own
inbox (``portable_stream``).

Reconnects from memory. Under gunicorn's gevent worker a room's writer lingers ``LINGER_SECONDS`` after its
last stream, remembering the recent events, the room's state and which seats it found active: a participant's
reconnect (it sends its cursor) to a seat read from the database within the last re-checks opens with no
query (``_admitted``). A removal, a ``resync`` or a re-check that misses the seat ends that at once; hosts and
first connections always read. A reconnect storm then costs Flask and the socket, not the database.

Caps (``chatroom/stream_caps.py``). A seat may hold ``STREAMS_PER_SEAT`` streams (tabs and devices), an address
``STREAMS_PER_ADDRESS`` (generous: a class shares one address), and a worker
``STREAMS_PER_WORKER`` (below its open-files limit, so ordinary pages are still
served when it is full; ``gunicorn.conf.py`` works it out). Over a cap the answer is
``429`` (seat, address) or ``503`` (worker) with ``Retry-After`` and a sentence: a
refusal the page treats as "live updates unavailable for now", not a reason to
retry at once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, abort, current_app, request, stream_with_context
from flask.blueprints import BlueprintSetupState

from . import stream_caps
from .access import member_room_or_403, session_seat, sign_in_fingerprint
from .broker import Broker
from .events import EventKind, channel, closing, ends_sign_in, parse_cursor, seat_notice
from .extensions import db
from .fanout import HOLD_SECONDS, RECHECK_EVERY, Fanout, RoomWriter, StreamState
from .handover import can_take_over, capture_start_response
from .models import Room, RoomStatus
from .presence import Presence
from .sse import comment, retry
from .stream_caps import Ticket
from .stream_live import Handover
from .stream_protocol import (
    catch_up,
    current_state,
    departed,
    enter,
    forward,
    leave,
    presence_frame,
    room_end,
    seat_gone,
)
from .text import is_number

bp = Blueprint("stream", __name__)

HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}
_TAB = re.compile(r"[A-Za-z0-9]{8,32}")


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
        return _open(StreamState(writer.room_id, seat_id, False, last, rev, writer.ends_at, _tab()), writer.code)
    room, seat = member_room_or_403(code)
    if room.status() is RoomStatus.ENDED:
        # A 200 with a close event: an error status would only make the client retry.
        return Response(retry(60_000) + closing("ended"), headers=HEADERS)
    last, rev = _cursor(room)
    state = StreamState(room.id, seat.id, seat.is_host, last, rev, room.ends_at.timestamp(), _tab())
    if seat.is_host:
        state.sign_in = sign_in_fingerprint()  # signing out there ends this stream
    return _open(state, room.code, checked=True)


def _open(state: StreamState, code: str, *, checked: bool = False) -> Response:
    """The stream's response, within the caps; ``checked``: the seat was just read from the database."""
    ticket = stream_caps.slots().take(state.membership_id, request.remote_addr or "")
    if isinstance(ticket, str):
        return stream_caps.refusal(ticket)
    body: Iterator[bytes] | None = None
    try:
        if can_take_over(request.environ):
            body = Handover(state, ticket, code, checked)  # subscribes and reads the first bytes now
        else:
            db.session.remove()
            body = portable_stream(state)
        return Response(stream_with_context(_Releasing(body, ticket)), headers=HEADERS)
    except BaseException:
        if isinstance(body, Handover):
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


# -- anywhere: a generator with its own inbox ----------------------------------------------------------------


def portable_stream(state: StreamState) -> Iterator[bytes]:
    config = current_app.config
    broker: Broker = current_app.extensions["chatroom.broker"]
    tracker: Presence = current_app.extensions["chatroom.presence"]
    heartbeat = config["STREAM_HEARTBEAT_SECONDS"]
    sub = broker.subscribe(channel(state.room_id))
    state.subscribed_at = time.monotonic()
    conn_id: str | None = None
    # The seat (and a host's sign-in) is read again every RECHECK_EVERY heartbeats' time, busy or idle: in a room
    # that talks more often than a heartbeat, a check counted in idle heartbeats would never come.
    recheck_every = RECHECK_EVERY * heartbeat
    recheck_at = time.monotonic() + recheck_every
    try:
        yield retry(config["STREAM_RETRY_MS"]) + comment("connected")
        yield current_state(state)
        yield from catch_up(state)
        conn_id = enter(tracker, state)
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
                    if gone := seat_gone(state):
                        yield closing(gone)
                        return
                    state.subscribed_at = max(state.subscribed_at, state.hold_until - HOLD_SECONDS)
                    yield from catch_up(state)
                    state.stop_holding_if_overdue()
                else:
                    yield comment("heartbeat")
            else:
                out: list[bytes] = []
                while event is not None:  # everything already waiting goes out in one write
                    if event.kind == EventKind.REMOVED and event.target == state.membership_id:
                        yield b"".join(out) + closing(seat_notice(event))
                        return
                    if departed(state, event):
                        yield b"".join(out)
                        return  # the tab said goodbye: its socket is closed or closing
                    if state.is_host and ends_sign_in(event, state.sign_in):
                        yield b"".join(out) + closing("signed_out")
                        return
                    if event.kind == EventKind.ROOM:
                        state.ends_at = room_end(state)
                    if event.kind == EventKind.RESYNC:
                        # What came before may be lost, the "removed" event too: check the seat, then
                        # catch up from a read made after the loss.
                        if gone := seat_gone(state):
                            yield b"".join(out) + closing(gone)
                            return
                        state.subscribed_at = max(state.subscribed_at, broker.resynced_at, sub.resync_at)
                        out.extend(forward(state, event))
                        out.append(presence_frame(state.room_id))
                    else:
                        out.extend(forward(state, event))
                    event = sub.get_nowait() if len(out) < 64 else None
                if out:
                    yield b"".join(out)
            if time.monotonic() >= recheck_at:
                recheck_at = time.monotonic() + recheck_every
                if gone := seat_gone(state):
                    yield closing(gone)
                    return
    finally:
        sub.close()
        if conn_id is not None:
            leave(tracker, state, conn_id)


def _capture_start_response(setup: BlueprintSetupState) -> None:
    app: Any = setup.app
    app.wsgi_app = capture_start_response(app.wsgi_app)


bp.record_once(_capture_start_response)
