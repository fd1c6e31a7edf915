"""The live core under gevent: one writer per room per process, the same bytes to every socket.

(Longer than our ~400-line guide on purpose: the room's writer, the streams it writes and the hub that owns the
writers keep one set of invariants together: one writer per room, never a blocking write, a cursor per socket
that only the writer moves, a stream busy with the database never written to. Split apart, each piece would
reach into the others' state. It imports neither Flask nor the database; ``chatroom/stream_live.py`` is its
web side.)

``chatroom/stream.py`` opens a stream as an ordinary WSGI response: the head, the room's
state and the catch-up go out through the server in the request's own greenlet. Then,
under gunicorn's gevent worker, ``chatroom/stream_live.py`` hands the connection's socket over to
this module and the request ends: its greenlet, its Flask request context and its database session are
gone. What remains of an idle stream is a :class:`LiveStream`: the socket, the cursor
(:class:`StreamState`), one read watcher (to notice at once when the client hangs up) and
a few numbers, about two kilobytes.

Delivery. The broker calls :meth:`RoomWriter.deliver` with each event of the room as it
arrives (one call per event per process: a *sink*, ``chatroom/broker.py``). The writer
frames the event as an HTTP chunk once and, for each socket of the room, decides from the
stream's cursor whether the event is the next one it needs; if so it writes those same
bytes with one non-blocking ``send``. No per-stream queue, no greenlet switch, no timeout
per delivery. A per-viewer filter (typing skips the typist, host events reach hosts) is a
flag on the event compared with the stream's seat, never a re-render.

Anything else (a message that arrives early, a change the stream cannot place, a Redis
``resync``) needs the database: the stream is marked *busy*, later events wait in its
small pending list, and the room's one worker greenlet runs the protocol of
``chatroom/stream_protocol.py`` for it (``WebSide.forward``), shared catch-ups included, then
drains the pending list and makes it live again. While the worker runs, the writer keeps
serving every other socket.

Memory for reconnects. A writer whose last stream left lingers ``LINGER_SECONDS``, still listening, so a room
whose every stream dropped at once comes back to what it remembers: the recent events (``recent_for``), the
room's state frame, the participants' seats a database read found active (``admits``, renewed by each
re-check, ended by a removal or a resync) and which seats have a private thread (``noted``).

Presence. A "here now" list is the whole list, so only the newest matters: each room writer
sends one at most every ``PRESENCE_EVERY`` seconds (the first at once, then the newest when
its turn comes), whatever the announcers of every process publish meanwhile; a big room's,
which is only a count (the event's ``target`` says so), at most every ``PRESENCE_COUNT_EVERY``.

Back-pressure. A socket that cannot take all the bytes keeps the rest in a small backlog
(references to the shared bytes, not copies) and a write watcher sends it when the socket
drains. A stream whose backlog passes ``BACKLOG_LIMIT`` is cut: the client reconnects
with ``Last-Event-ID`` and catches up from the database, so cutting loses nothing.

Time. One heartbeat greenlet per process writes a comment to every socket every
``heartbeat`` seconds, ends the streams of a room whose end time has passed (a timer per
room does it on time; the heartbeat is the backstop), and every ``RECHECK_EVERY`` beats
asks each room's worker to re-check the seats and the room against the database: the
``removed`` event travels through Redis pub/sub, which is at most once, so a stream never
relies on it alone. The worker re-checks after every catch-up too.

Nothing here imports Flask or the database: the web side comes in as a :class:`WebSide`.
"""

from __future__ import annotations

import _socket  # the C socket module: never monkey-patched, so send() is one system call
import contextlib
import itertools
import logging
import socket as pysocket
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Protocol

import gevent

from .events import RESYNC, Event, EventKind, ends_sign_in, seat_notice

log = logging.getLogger(__name__)

# A stream whose unsent bytes pass this is cut (it resumes by Last-Event-ID). The bytes are
# shared with every other stream of the room, so this bounds what one socket pins, not a copy.
BACKLOG_LIMIT = 1 << 20
# Events that may wait while a stream is busy with the database; past this it re-reads instead.
PENDING_LIMIT = 512
# Re-check seats and the room against the database every this many heartbeats.
RECHECK_EVERY = 4
# How long the last words of a stream (a close event) may take to drain before the socket goes.
CLOSE_GRACE_SECONDS = 5.0
HOLD_SECONDS = 0.3  # see chatroom/stream_protocol.py: an early message waits this long for the one before it
# A room's "here now" list reaches each stream at most this often (the newest list wins): a crowd
# arriving costs a few lists per stream, not one per announcement of every process.
PRESENCE_EVERY = 2.0
PRESENCE_COUNT_EVERY = 10.0  # a big room's "here now" is only a count (events.presence_changed): it can wait
# The room's recent messages and changes, kept by its writer so a stream that (re)connects near the
# end of the room catches up from memory instead of the database (a reconnect storm costs no reads).
RECENT_LIMIT = 2000
# A writer whose last stream left keeps listening this long (seconds) before it goes: every stream of a
# room dropped at once (a proxy restart, a network blip) comes back to a writer that remembers what they
# missed, so the reconnect storm reads nothing from the database.
LINGER_SECONDS = 60.0
# A seat the database found active is admitted again from memory (a reconnect needs no query) for this many
# heartbeat re-check rounds; each round that finds it still held renews it, a removal ends it at once.
ADMIT_ROUNDS = 2

HEARTBEAT = b": heartbeat\n\n"
LAST_CHUNK = b"0\r\n\r\n"
_READ, _WRITE = 1, 2


def chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk (the transfer coding of a response of unknown length)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


@dataclass(slots=True)
class StreamState:
    """One stream's place in the room (the cursor ``seq.rev``) and what it holds back; see ``chatroom/stream.py``."""

    room_id: int
    membership_id: int
    is_host: bool
    last: int  # the last message seq this client has
    rev: int  # the last change number this client has
    ends_at: float
    tab: str = ""  # the page's name for itself (?tab=): its goodbye beacon ends this stream
    sign_in: str = ""  # a host stream: the fingerprint of the sign-in it was opened under (signing out ends it)
    # A shared catch-up is usable only if read from the database after this moment (monotonic): the
    # subscription, or the arrival of the latest event that sent this stream to the database.
    subscribed_at: float = 0.0
    held: dict[int, Event] = field(default_factory=dict)  # early messages, by seq
    held_at: dict[int, float] = field(default_factory=dict)  # when each arrived (monotonic), by seq
    hold_until: float = 0.0  # monotonic; 0 when nothing is held

    def forget_held(self) -> None:
        """Nothing is held any more, and no hold runs."""
        self.held.clear()
        self.held_at.clear()
        self.hold_until = 0.0

    def stop_holding_if_overdue(self) -> None:
        """After a catch-up: if the hold is still overdue, the database had nothing to give (the room is
        gone), so forget what is held rather than ask it again in a loop that never yields."""
        if self.held and time.monotonic() >= self.hold_until:
            self.forget_held()


class WebSide(Protocol):
    """What the room writer asks of the web layer (``chatroom/stream.py``): the database and the templates."""

    def context(self) -> contextlib.AbstractContextManager[None]:
        """App and request context for the worker greenlet; the database session is released when it exits."""
        ...

    def forward(self, state: StreamState, event: Event) -> bytes:
        """The protocol step for one event (may read the database): the SSE bytes to send."""
        ...

    def catch_up(self, state: StreamState) -> bytes:
        """Everything the database has beyond the cursor (an early message waited in vain)."""
        ...

    def check(
        self, room_id: int, seats: set[int], sign_ins: AbstractSet[str] = frozenset()
    ) -> tuple[float | None, dict[int, str], set[str]]:
        """The room's end time (None: the room is gone); for each of ``seats`` no longer held, why it closed
        (``left``, ``removed`` or ``banned``: the words its streams end with); and which of the host streams'
        ``sign_ins`` (fingerprints) have ended."""
        ...

    def closing(self, notice: str) -> bytes:
        """A stream's last words: the notice and the ``close`` event (``ended`` or ``removed``)."""
        ...

    def presence(self, room_id: int) -> bytes:
        """The room's "here now" list as SSE bytes (after a resync: an announcement may have been lost)."""
        ...

    def leave(self, stream: LiveStream) -> None:
        """The stream is gone: forget its presence and give back its slot (may block: runs in a greenlet)."""
        ...


class LiveStream:
    """One open stream after the hand-over: its socket, its cursor, and its place in the room's writer."""

    __slots__ = (
        "_closing_timer",
        "_hold_timer",
        "_reader",
        "_writer",
        "backlog",
        "backlog_bytes",
        "busy",
        "chunked",
        "closed",
        "conn_id",
        "notice",
        "pending",
        "room",
        "sock",
        "state",
        "ticket",
    )

    def __init__(self, room: RoomWriter, state: StreamState, ticket: Any = None) -> None:
        self.room = room
        self.state = state
        self.ticket = ticket  # its slot under the stream caps (chatroom/stream.py), given back when it ends
        self.sock: Any = None  # the raw socket once handed over; None while the request still serves it
        self.chunked = True
        self.busy = True  # opening, or waiting for the worker: events go to ``pending``
        self.closed = False
        self.notice: str | None = None  # why it closed (while opening, the request sends the close event)
        self.pending: deque[tuple[Event, float]] | None = None  # (event, when it arrived)
        self.backlog: deque[bytes | memoryview] | None = None
        self.backlog_bytes = 0
        self.conn_id: str | None = None  # its presence entry
        self._reader: Any = None
        self._writer: Any = None
        self._hold_timer: Any = None
        self._closing_timer: Any = None

    # -- while busy ---------------------------------------------------------------------------------------

    def keep(self, event: Event, now: float) -> None:
        """Keep ``event`` (arrived ``now``) for later; past ``PENDING_LIMIT`` the stream re-reads the database."""
        pending = self.pending
        if pending is None:
            pending = self.pending = deque()
        if len(pending) >= PENDING_LIMIT:
            pending.clear()
            event = RESYNC
        pending.append((event, now))

    def next_pending(self) -> Event | None:
        """The oldest event kept while busy, or None.

        Whatever it makes the stream read from the database must be read after it arrived,
        so a shared catch-up from before then no longer serves this stream.
        """
        if not self.pending:
            return None
        event, arrived = self.pending.popleft()
        self.state.subscribed_at = max(self.state.subscribed_at, arrived)
        return event

    # -- the socket ------------------------------------------------------------------------------------------

    def start(self, fd: int, chunked: bool) -> None:
        """Take over the connection's socket (file descriptor ``fd``) and go live."""
        sock = _socket.socket(fileno=fd)
        sock.setblocking(False)
        self.sock = sock
        self.chunked = chunked
        loop = gevent.get_hub().loop
        self._reader = loop.io(fd, _READ)
        self._reader.start(self._readable)
        self.busy = False
        if self.state.hold_until:
            self.arm_hold()

    def write(self, data: bytes | memoryview) -> None:
        """Send ``data`` now, or as much as the socket takes and the rest when it drains; never blocks."""
        if not self.closed:
            self._send(data)

    def _send(self, data: bytes | memoryview) -> None:
        if self.backlog is not None:
            self.backlog.append(data)
            self.backlog_bytes += len(data)
            if self.backlog_bytes > BACKLOG_LIMIT:
                self.cut()
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._close()
            return
        if sent < len(data):
            self.backlog = deque((memoryview(data)[sent:],))
            self.backlog_bytes = len(data) - sent
            self._writer = gevent.get_hub().loop.io(self.sock.fileno(), _WRITE)
            self._writer.start(self._writable)

    def send_event(self, data: bytes) -> None:
        """Frame SSE bytes for this connection (a chunk, unless it is HTTP/1.0) and write them."""
        if data:
            self.write(chunk(data) if self.chunked else data)

    def _writable(self) -> None:
        backlog = self.backlog
        if backlog is None or self.sock is None:
            return
        try:
            sent = self.sock.sendmsg(list(itertools.islice(backlog, 64)))
        except BlockingIOError:
            return
        except OSError:
            self._close()
            return
        self.backlog_bytes -= sent
        while sent and backlog:
            head = backlog[0]
            if len(head) <= sent:
                sent -= len(head)
                backlog.popleft()
            else:
                backlog[0] = memoryview(head)[sent:]
                sent = 0
        if not backlog:
            self.backlog = None
            self.backlog_bytes = 0
            self._writer.stop()
            self._writer.close()
            self._writer = None
            if self.closed:
                self._close()

    def _readable(self) -> None:
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client hung up (a closed tab, a reconnect, a hidden tab pausing)
            self._close()
        # Anything a client sends on an event stream is ignored.

    # -- ends ------------------------------------------------------------------------------------------------

    def finish(self, notice: str | None) -> None:
        """End the stream: with ``notice`` (``ended``, ``removed``) its last words and a clean end, else just close."""
        if self.closed:
            return
        self.closed = True
        self.notice = notice
        if self.sock is None:
            return  # still opening: its request sends the notice and lets go (chatroom/stream.py)
        if notice is None:
            self._close()
            return
        words = self.room.fanout.web.closing(notice)
        self._send(chunk(words) + LAST_CHUNK if self.chunked else words)
        if self.backlog is None:
            self._close()
        elif self._closing_timer is None and self.sock is not _CLOSED:
            self._closing_timer = gevent.get_hub().loop.timer(CLOSE_GRACE_SECONDS)
            self._closing_timer.start(self._close)

    def cut(self) -> None:
        """Drop a stream too far behind at once (a reset, not a polite end): it resumes by Last-Event-ID."""
        if self.sock is not None and self.sock is not _CLOSED:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_LINGER, struct.pack("ii", 1, 0))
        self.closed = True
        self._close()

    def _close(self) -> None:
        self.closed = True
        for name in ("_reader", "_writer", "_hold_timer", "_closing_timer"):
            watcher = getattr(self, name)
            if watcher is not None:
                watcher.stop()
                watcher.close()
            setattr(self, name, None)
        self.backlog = None
        self.pending = None
        sock, self.sock = self.sock, _CLOSED
        if sock is not None and sock is not _CLOSED:
            with contextlib.suppress(OSError):
                sock.close()
            self.room.remove(self)
            self.room.fanout.gone(self)

    # -- holding back an early message ------------------------------------------------------------------------------

    def arm_hold(self) -> None:
        """Wake the room's worker when the wait for a missing message is over."""
        if self._hold_timer is not None or self.closed:
            return
        delay = max(self.state.hold_until - time.monotonic(), 0.0)
        self._hold_timer = gevent.get_hub().loop.timer(delay)
        self._hold_timer.start(self._hold_expired)

    def _hold_expired(self) -> None:
        timer, self._hold_timer = self._hold_timer, None
        if timer is not None:
            timer.stop()
            timer.close()
        if not self.closed and self.state.held:
            self.room.work_on(self)


class _Closed:
    """The socket of a stream that has ended (so a late callback finds nothing to write to)."""

    def fileno(self) -> int:
        return -1


_CLOSED = _Closed()


class RoomWriter:
    """Every live stream of one room in this process, and the one writer that feeds them (the broker's sink)."""

    def __init__(self, fanout: Fanout, room_id: int, channel: str, ends_at: float, code: str = "") -> None:
        self.fanout = fanout
        self.room_id = room_id
        self.channel = channel
        self.code = code
        self.streams: set[LiveStream] = set()
        self.ends_at = ends_at
        self._jobs: deque[Callable[[], None]] = deque()
        self._queued: set[LiveStream] = set()
        self._worker: gevent.Greenlet | None = None
        self._caught_up = False
        self._end_timer: Any = None
        self._schedule_end()
        # Every message and change that reached this writer since ``floor`` (seq, rev), in arrival order:
        # complete once a catch-up from the database set the floor, until a resync loses events.
        self.recent: deque[Event] = deque()
        self.floor: tuple[int, int] | None = None
        self.top = (0, 0)  # the newest message seq and change rev this writer has remembered
        # The room's state frame as read while this writer listened, until a room event changes it.
        self.state_frame: bytes | None = None
        self.state_version = 0
        self._presence_frame: bytes | None = None  # the newest list, waiting for its turn
        self._presence_sent = 0.0  # monotonic
        self._presence_timer: Any = None
        self._linger_timer: Any = None
        self.ended = False  # the room ended: its last stream out takes the writer away at once
        # Participants' seats the database found active, and when (monotonic): see ``admits``.
        self.admitted: dict[int, float] = {}
        self.closed_seats: set[int] = set()  # seats a removed event named: never admitted from memory again
        # The seats with a private thread (None: not known yet), kept up by the private events that pass by;
        # ``private_events`` counts them, so a read of the set made meanwhile is not kept (``know_noted``).
        self.noted: set[int] | None = None
        self.private_events = 0
        self.empty_panel: bytes | None = None  # a private thread with nothing in it, framed (the same for all)

    # -- what the writer remembers for streams that join -------------------------------------------------------------

    def recent_for(self, state: StreamState) -> list[Event] | None:
        """Every event after the cursor of ``state``, from memory, in arrival order; None when memory does not reach
        back that far. (Only messages and changes are remembered: one is after the cursor by its ``seq`` or ``rev``.)
        """
        floor = self.floor
        last, rev = state.last, state.rev
        if floor is None or last < floor[0] or rev < floor[1]:
            return None
        message = EventKind.MESSAGE
        lacks = [e for e in self.recent if (e.seq > last if e.kind is message else e.rev > rev)]
        if any(e.kind is EventKind.CHANGE and e.target > last for e in lacks):
            # A message it lacks was edited or removed since it was posted: memory has its first text, which
            # must never reach a reader who did not see it live. The database has it as it is now.
            return None
        return lacks

    def knows(self, seq: int, rev: int) -> bool:
        """Whether a cursor (seq, rev) is within what this writer has seen of the room: its memory is complete
        from some point (``caught_up_to``) and nothing in the cursor is beyond its newest message and change."""
        if self.floor is None:
            return False
        return seq <= max(self.floor[0], self.top[0]) and rev <= max(self.floor[1], self.top[1])

    def caught_up_to(self, seq: int, rev: int) -> None:
        """A catch-up read the database after this writer was listening: from (seq, rev) on, memory is complete."""
        if self.floor is None:
            self.floor = (seq, rev)

    def _remember(self, event: Event) -> None:
        recent = self.recent
        recent.append(event)
        self.top = (max(self.top[0], event.seq), max(self.top[1], event.rev))
        if len(recent) > RECENT_LIMIT:
            dropped = recent.popleft()
            if self.floor is not None:
                seq, rev = self.floor
                if dropped.kind is EventKind.MESSAGE:
                    seq = max(seq, dropped.seq)
                else:
                    rev = max(rev, dropped.rev)
                self.floor = (seq, rev)

    def admit(self, seat: int) -> None:
        """The database found participant ``seat`` active just now: its reconnects may skip the query (unless a
        removed event for it has passed by meanwhile: the read may have been older than the removal)."""
        if seat not in self.closed_seats:
            self.admitted[seat] = time.monotonic()

    def admits(self, seat: int) -> bool:
        """Whether ``seat`` may open a stream from memory: found active within ``ADMIT_ROUNDS`` re-checks, no
        removal or lost events since, and the room not over."""
        found = self.admitted.get(seat)
        return (
            found is not None
            and time.monotonic() - found < self.fanout.admit_seconds
            and not self.ended
            and time.time() < self.ends_at
        )

    def know_noted(self, seats: set[int], private_events: int) -> None:
        """The seats with a private thread, as read when ``private_events`` had passed (kept if none since)."""
        if private_events == self.private_events:
            self.noted = seats

    def keep_state(self, frame: bytes, version: int) -> None:
        """Keep the room's state frame, read at ``version`` (dropped if the room changed meanwhile)."""
        if version == self.state_version:
            self.state_frame = frame

    # -- the fast path: one event, every socket ------------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        """Write ``event`` to every stream of the room that needs it next; see the module docstring."""
        kind = event.kind
        now = time.monotonic()
        if kind is EventKind.PRIVATE:
            self.private_events += 1
            if self.noted is not None:
                self.noted.add(event.target)
        if kind is EventKind.REMOVED:
            self.admitted.pop(event.target, None)
            self.closed_seats.add(event.target)
            for stream in [s for s in self.streams if s.state.membership_id == event.target]:
                stream.finish(seat_notice(event))  # one still opening: by its own request
            return
        if kind is EventKind.SIGNED_OUT:  # the owner signed out: the host streams of that sign-in end
            for stream in [s for s in self.streams if s.state.is_host and ends_sign_in(event, s.state.sign_in)]:
                stream.finish("signed_out")
            return
        if kind is EventKind.DEPART:  # a tab said goodbye: its socket is closed or closing
            tab = event.frame.decode()
            for stream in [s for s in self.streams if s.state.membership_id == event.target and s.state.tab == tab]:
                stream.finish(None)
            return
        if kind is EventKind.RESYNC:
            self.recent.clear()  # events may have been lost: memory is no longer complete
            self.floor = None
            self.admitted.clear()  # a removal among them, perhaps
            self.noted, self.private_events = None, self.private_events + 1
            self.state_frame = None
            self.state_version += 1
            for stream in tuple(self.streams):
                if stream.busy:
                    stream.keep(event, now)
                else:
                    self.work_on(stream, event, now)
            self.recheck()
            self.queue(self._presence)  # presence is never replayed: say it again, once for the room
            return
        if kind is EventKind.ROOM:
            self.state_frame = None
            self.state_version += 1
            self.queue(self._refresh)
        elif kind is EventKind.MESSAGE or kind is EventKind.CHANGE:
            self._remember(event)
        elif kind is EventKind.PRESENCE:
            self._presence_frame = event.frame
            if self._presence_timer is None:
                every = PRESENCE_COUNT_EVERY if event.target else PRESENCE_EVERY
                wait = self._presence_sent + every - now
                if wait <= 0:
                    self._send_presence()
                else:
                    self._presence_timer = gevent.get_hub().loop.timer(wait)
                    self._presence_timer.start(self._send_presence)
            return
        frame = event.frame
        data = chunk(frame) if frame else b""
        for stream in tuple(self.streams):
            if stream.busy:
                stream.keep(event, now)
                continue
            state = stream.state
            if kind is EventKind.MESSAGE:
                seq = event.seq
                if seq <= state.last:
                    continue  # sent already, by a catch-up
                if seq == state.last + 1 and event.rev <= state.rev and not state.held:
                    state.last = seq
                    stream.write(data if stream.chunked else frame)
                    continue
                self.work_on(stream, event, now)  # early, or claims changes we have not sent
            elif kind is EventKind.CHANGE:
                rev = event.rev
                if rev <= state.rev:
                    continue
                if rev == state.rev + 1 and event.seq <= state.last:
                    state.rev = rev
                    stream.write(data if stream.chunked else frame)
                    continue
                self.work_on(stream, event, now)  # a change we cannot place: the database has it
            elif kind is EventKind.TYPING:
                if event.target != state.membership_id:  # the typist never sees their own
                    stream.write(data if stream.chunked else frame)
            elif kind is EventKind.HOST:
                if state.is_host:
                    stream.write(data if stream.chunked else frame)
            elif kind is EventKind.PRIVATE or kind is EventKind.HELD:
                if event.target == state.membership_id:  # that seat's streams only
                    stream.write(data if stream.chunked else frame)
            elif frame:
                stream.write(data if stream.chunked else frame)  # presence, room notices

    # -- the slow path: the room's one worker greenlet --------------------------------------------------------------

    def work_on(self, stream: LiveStream, event: Event | None = None, now: float = 0.0) -> None:
        """Mark ``stream`` busy and have the worker run the protocol for it (``event``, arrived ``now``, first)."""
        stream.busy = True
        if event is not None:
            stream.keep(event, now)
        if stream not in self._queued:
            self._queued.add(stream)
            self.queue(lambda: self._process(stream))

    def queue(self, job: Callable[[], None]) -> None:
        """Run ``job`` in the room's worker greenlet (started when there is work, gone when there is none)."""
        self._jobs.append(job)
        if self._worker is None:
            self._worker = gevent.spawn(self._work)

    def _work(self) -> None:
        try:
            with self.fanout.web.context():
                while self._jobs:
                    job = self._jobs.popleft()
                    try:
                        job()
                    except Exception:
                        log.exception("stream worker job failed in room %s", self.room_id)
                    if not self._jobs and self._caught_up:
                        self._caught_up = False
                        self._recheck()  # after every catch-up: the seats and the room are checked again
        except Exception:
            log.exception("stream worker failed in room %s", self.room_id)
        finally:
            self._worker = None
            if self._jobs:  # queued while we were leaving
                self._worker = gevent.spawn(self._work)

    def _process(self, stream: LiveStream) -> None:
        self._queued.discard(stream)
        web, state = self.fanout.web, stream.state
        try:
            while not stream.closed:
                event = stream.next_pending()
                if event is not None:
                    out = web.forward(state, event)
                    self._caught_up = True
                    if event.kind is EventKind.RESYNC:
                        self.caught_up_to(state.last, state.rev)  # read after the resync: memory restarts here
                elif state.held and time.monotonic() >= state.hold_until:
                    # The missing message never came: ask the database (read after the early one arrived).
                    state.subscribed_at = max(state.subscribed_at, state.hold_until - HOLD_SECONDS)
                    out = web.catch_up(state)
                    self._caught_up = True
                    state.stop_holding_if_overdue()
                else:
                    break
                stream.send_event(out)
        except Exception:
            log.exception("stream protocol failed; cutting the stream (it resumes by Last-Event-ID)")
            stream.cut()
            return
        if stream.closed:
            return
        stream.busy = False  # nothing pending: no switch since the check above, so no event slips by
        if state.hold_until:
            stream.arm_hold()

    def recheck(self) -> None:
        """Have the worker check the room and every seat with a stream against the database, soon."""
        self._caught_up = True
        if self._worker is None:
            self.queue(lambda: None)

    def _recheck(self) -> None:
        seats = {s.state.membership_id for s in self.streams if s.sock is not None}
        sign_ins = {s.state.sign_in for s in self.streams if s.sock is not None and s.state.is_host}
        admitted = set(self.admitted)
        checked_at = time.monotonic()
        ends_at, gone, signed_out = self.fanout.web.check(self.room_id, seats | admitted, sign_ins)
        if ends_at is None or ends_at <= time.time():
            self.end("ended")
            return
        self._set_end(ends_at)
        for seat in admitted:
            if seat not in gone and seat in self.admitted:
                self.admitted[seat] = max(self.admitted[seat], checked_at)
            else:
                self.admitted.pop(seat, None)
        for stream in [s for s in self.streams if s.sock is not None and s.state.membership_id in gone]:
            if stream.state.membership_id in seats:
                stream.finish(gone[stream.state.membership_id])
        for stream in [s for s in self.streams if s.sock is not None and s.state.is_host]:
            if stream.state.sign_in in signed_out:  # the event that said so was lost
                stream.finish("signed_out")

    def _send_presence(self) -> None:
        timer, self._presence_timer = self._presence_timer, None
        if timer is not None:
            timer.stop()
            timer.close()
        frame, self._presence_frame = self._presence_frame, None
        if not frame:
            return
        self._presence_sent = time.monotonic()
        data, event = chunk(frame), Event(EventKind.PRESENCE, frame)
        for stream in tuple(self.streams):
            if stream.busy:
                stream.keep(event, self._presence_sent)
            else:
                stream.write(data if stream.chunked else frame)

    def _presence(self) -> None:
        data = self.fanout.web.presence(self.room_id)
        if not data:
            return
        event, now = Event(EventKind.PRESENCE, data), time.monotonic()
        for stream in tuple(self.streams):
            if stream.busy:
                stream.keep(event, now)
            else:
                stream.send_event(data)

    def _refresh(self) -> None:
        ends_at, _, _ = self.fanout.web.check(self.room_id, set())
        if ends_at is None or ends_at <= time.time():
            self.end("ended")
        else:
            self._set_end(ends_at)

    # -- the room's end ----------------------------------------------------------------------------------------------

    def _set_end(self, ends_at: float) -> None:
        for stream in self.streams:
            stream.state.ends_at = ends_at
        if ends_at != self.ends_at:
            self.ends_at = ends_at
            self._schedule_end()

    def _schedule_end(self) -> None:
        if self._end_timer is not None:
            self._end_timer.stop()
            self._end_timer.close()
        self._end_timer = gevent.get_hub().loop.timer(max(self.ends_at - time.time(), 0.0) + 0.05)
        self._end_timer.start(self._end_due)

    def _end_due(self) -> None:
        if time.time() >= self.ends_at:
            self.end("ended")
        else:
            self._schedule_end()  # moved later meanwhile

    def end(self, notice: str) -> None:
        """End every stream of the room with ``notice`` (the room ended or is gone)."""
        self.ended = True
        if not self.streams:
            self.fanout.drop(self)
        for stream in tuple(self.streams):
            stream.finish(notice)  # one still opening is ended by its own request

    # -- membership ----------------------------------------------------------------------------------------------------

    def add(self, stream: LiveStream) -> None:
        """A stream joins the room (busy until its request hands it over); a lingering writer stays."""
        self.streams.add(stream)
        self._stop_timer("_linger_timer")

    def remove(self, stream: LiveStream) -> None:
        """A stream leaves. After the last one out the writer lingers ``LINGER_SECONDS``, still listening, then
        goes (at once when the room has ended)."""
        self.streams.discard(stream)
        self._queued.discard(stream)
        if self.streams:
            return
        if self.ended:
            self.fanout.drop(self)
        elif self._linger_timer is None:
            self._linger_timer = gevent.get_hub().loop.timer(LINGER_SECONDS)
            self._linger_timer.start(self._linger_over)

    def _linger_over(self) -> None:
        self._stop_timer("_linger_timer")
        if not self.streams:
            self.fanout.drop(self)

    def _stop_timer(self, name: str) -> None:
        timer = getattr(self, name)
        if timer is not None:
            timer.stop()
            timer.close()
            setattr(self, name, None)

    def close(self) -> None:
        """Stop the room's timers (it has no streams left)."""
        for name in ("_end_timer", "_presence_timer", "_linger_timer"):
            self._stop_timer(name)


class Fanout:
    """Every room writer of this process, the heartbeat, and the bookkeeping of streams that end."""

    def __init__(
        self,
        web: WebSide,
        attach: Callable[[str, Callable[[Event], None]], None],
        detach: Callable[..., None],
        heartbeat: float,
    ) -> None:
        self.web = web
        self._attach = attach
        self._detach = detach
        self.heartbeat = heartbeat
        self.rooms: dict[int, RoomWriter] = {}
        self.codes: dict[str, RoomWriter] = {}  # the same writers, by the room's public code
        self.admit_seconds = ADMIT_ROUNDS * RECHECK_EVERY * heartbeat
        self._beats: gevent.Greenlet | None = None
        self._gone: list[LiveStream] = []
        self._janitor: gevent.Greenlet | None = None

    def room(self, room_id: int, channel: str, ends_at: float, code: str = "") -> RoomWriter:
        """The writer of ``room_id`` (public ``code``) in this process (made, and attached to the broker, on first
        use)."""
        writer = self.rooms.get(room_id)
        if writer is not None and code and writer.code and writer.code != code:
            # The id names another room now: the old one went without its writer hearing of it (SQLite
            # reuses the highest id once that row is deleted). Its memory must not reach the new room.
            writer.end("ended")
            self.drop(writer)
            writer = None
        if writer is None:
            writer = self.rooms[room_id] = RoomWriter(self, room_id, channel, ends_at, code)
            if code:
                self.codes[code] = writer
            self._attach(channel, writer.deliver)
            if self._beats is None:
                self._beats = gevent.spawn(self._beat)
        return writer

    def drop(self, writer: RoomWriter) -> None:
        """Forget a room with no streams left."""
        if self.rooms.get(writer.room_id) is writer:
            del self.rooms[writer.room_id]
            if self.codes.get(writer.code) is writer:
                del self.codes[writer.code]
            self._detach(writer.channel, writer.deliver)
            writer.close()

    def streams(self) -> Iterator[LiveStream]:
        """Every live stream of this process."""
        for writer in list(self.rooms.values()):
            yield from tuple(writer.streams)

    def count(self) -> int:
        """How many streams this process holds after the hand-over."""
        return sum(len(w.streams) for w in self.rooms.values())

    def gone(self, stream: LiveStream) -> None:
        """A stream closed: its presence and its slot are given back by a greenlet (they may block)."""
        self._gone.append(stream)
        if self._janitor is None:
            self._janitor = gevent.spawn(self._sweep)

    def _sweep(self) -> None:
        try:
            while self._gone:
                batch, self._gone = self._gone, []
                for stream in batch:
                    try:
                        self.web.leave(stream)
                    except Exception:
                        log.warning("could not release a closed stream", exc_info=True)
        finally:
            self._janitor = None
            if self._gone:
                self._janitor = gevent.spawn(self._sweep)

    def _beat(self) -> None:
        beats = 0
        beat = chunk(HEARTBEAT)
        while True:
            gevent.sleep(self.heartbeat)
            beats += 1
            try:
                now = time.time()
                for writer in list(self.rooms.values()):
                    if now >= writer.ends_at:
                        writer.end("ended")
                        continue
                    for stream in tuple(writer.streams):
                        if stream.sock is not None:
                            stream.write(beat if stream.chunked else HEARTBEAT)
                    if beats % RECHECK_EVERY == 0:
                        writer.recheck()
            except Exception:
                log.exception("stream heartbeat failed")
