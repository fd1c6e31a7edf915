"""The stream under gunicorn's gevent worker: the request sends the head, the room's state and the catch-up,
then hands its socket to the room's writer (``chatroom/fanout.py``) and ends.

An idle stream then holds no greenlet, request context, database connection or queue, and each event is
written to every socket of the room by one writer. ``LiveWeb`` is what the writers ask of the web layer (the
protocol steps of ``chatroom/stream_protocol.py``, in an app context); ``Handover`` is the response body that
does the hand-over. Taking the socket from gunicorn is ``chatroom/handover.py``.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from collections.abc import Generator, Iterator
from collections.abc import Set as AbstractSet
from typing import Any

from flask import Flask, current_app, request
from sqlalchemy import select

from .broker import Broker
from .events import SEAT_NOTICES, Event, channel, closing, room_state_html
from .extensions import db
from .fanout import Fanout, LiveStream, RoomWriter, StreamState
from .handover import take_socket
from .models import Membership, Note, Room, closed_as
from .presence import Presence
from .services import accounts
from .sse import comment, frame, retry
from .stream_caps import Ticket
from .stream_protocol import (
    catch_up,
    current_state,
    departed,
    enter,
    forward,
    leave,
    presence_frame,
    viewer_state,
)


class LiveWeb:
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
        """``forward`` for one event, as one piece of bytes."""
        return b"".join(forward(state, event))

    def catch_up(self, state: StreamState) -> bytes:
        """``catch_up``, as one piece of bytes."""
        return b"".join(catch_up(state))

    def check(
        self, room_id: int, seats: set[int], sign_ins: AbstractSet[str] = frozenset()
    ) -> tuple[float | None, dict[int, str], set[str]]:
        """The room's end (None: gone), why each of ``seats`` no longer held closed (a seat the room does not
        have counts as ``removed``), and which of the host streams' ``sign_ins`` ended; a query for each part."""
        try:
            room = db.session.get(Room, room_id)
            if room is None:
                return None, {}, set()
            ends_at = room.ends_at.timestamp()
            gone: dict[int, str] = {}
            if seats:
                rows = db.session.execute(
                    select(Membership.id, Membership.left_at, Membership.banned, Membership.removed).where(
                        Membership.room_id == room_id
                    )
                )
                known = {row.id: row for row in rows}
                for seat in seats:
                    row = known.get(seat)
                    if row is None:
                        gone[seat] = "removed"
                    elif row.left_at is not None:
                        gone[seat] = closed_as(row.banned, row.removed)
            signed_out = set(sign_ins) - accounts.current_sign_ins(room.owner_id) if sign_ins else set()
            return ends_at, gone, signed_out
        finally:
            db.session.remove()

    def closing(self, notice: str) -> bytes:
        """A stream's last words (rendered once per process)."""
        return self.words.get(notice) or self.words["ended"]

    def presence(self, room_id: int) -> bytes:
        """The room's "here now" list, rendered once for the room's streams in this process."""
        return presence_frame(room_id)

    def leave(self, stream: LiveStream) -> None:
        """Forget the stream's presence and give its slot back."""
        try:
            if stream.conn_id is not None:
                leave(self.tracker, stream.state, stream.conn_id)
        finally:
            if stream.ticket is not None:
                stream.ticket.release()


def fanout_of_app() -> Fanout:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    fanout = app.extensions.get("chatroom.fanout")
    if fanout is None:
        broker: Broker = app.extensions["chatroom.broker"]
        web = LiveWeb(app, request.environ)
        fanout = Fanout(web, broker.attach, broker.detach, app.config["STREAM_HEARTBEAT_SECONDS"])
        app.extensions["chatroom.fanout"] = fanout
    return fanout


class Handover:
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
        self.writer = fanout_of_app().room(state.room_id, channel(state.room_id), state.ends_at, code)
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

    def __iter__(self) -> Handover:
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
                first.extend(forward(state, past))
            return b"".join(first)
        size = 0
        reading: Generator[bytes] = catch_up(state)
        for data in reading:
            first.append(data)
            size += len(data)
            if size >= 256 * 1024:
                reading.close()  # the cursor in ``state`` says how far it got
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
                yield from catch_up(state)  # it lets the connection go when it is done
                self.writer.caught_up_to(state.last, state.rev)
            stream.conn_id = enter(self.tracker, state)
            while not stream.closed:
                event = stream.next_pending()
                if event is None:
                    break
                if departed(state, event):
                    return  # the tab said goodbye while its stream was opening
                out = b"".join(forward(state, event))
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
            leave(self.tracker, self.state, self.stream.conn_id)


def _live_state(writer: RoomWriter, state: StreamState) -> bytes:
    """The room's state for a stream that just joined ``writer``: its shared part remembered by the writer while
    nothing changed, then the viewer's own part (``_own_panel``). The caller releases the database session."""
    if state.is_host:
        return current_state(state, release=False)
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
    panel = viewer_state(state, release=False)
    if none_here and panel:
        writer.empty_panel = panel
    return panel
