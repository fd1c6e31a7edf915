"""The stream protocol: what one stream sends, from a cursor, whatever runs it.

A client's position is a cursor ``seq.rev``: the last message number it has
(messages are numbered gap-free in room order) and the last change number it
has (edits and removals are numbered the same way, separately). Every event
that moves the cursor carries it as its SSE ``id``, so the browser sends it
back as ``Last-Event-ID`` when it reconnects; a first connection takes the
``after``/``rev`` the page rendered.

1. subscribe to the room's channel, so live events queue up locally;
2. catch up from the database (``catch_up``): every message after ``seq`` (in its current
   state), then every change after ``rev`` to a message the client already had;
3. give the database connection back to the pool (an idle stream holds none);
4. drain the queue (``forward``). A message at or below ``seq`` was already sent: dropped.
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
with a ``close`` event when the room ends, the participant is removed or leaves, or the host
signs out (the page stops on that event instead of retrying). A tab that says goodbye
(``?tab=`` and its beacon) ends its own stream at once.

The seat is re-checked (``seat_gone``). The ``removed`` event travels through Redis pub/sub, which
is at most once, so a stream does not rely on it: after a ``resync``, after a
missing message is read from the database, and every ``RECHECK_EVERY`` heartbeats,
the seat and the room are read again, and a stream whose seat is gone (or whose
room has ended) closes with the ``close`` event.

Two runners share this: ``stream.portable_stream`` (a plain generator with its own inbox: the Flask test
client, a threaded server) and the room writers under gunicorn's gevent worker (``chatroom/stream_live.py``,
``chatroom/fanout.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field

from flask import current_app

from .events import (
    Event,
    EventKind,
    change_frame,
    cursor_id,
    host_controls_html,
    message_frame,
    presence_changed,
    room_state_html,
)
from .extensions import db
from .fanout import HOLD_SECONDS, StreamState
from .models import Membership, Room, RoomStatus
from .presence import Presence, present_members
from .services import accounts, messages, moderation, participation
from .sse import cursor, frame

log = logging.getLogger(__name__)

# How long a catch-up read from the database may serve other streams of the same room.
REPLAY_SECONDS = 2.0
REPLAY_BATCH = 500


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


# -- the protocol ------------------------------------------------------------------------------------------------


def _usable(entry: _Replay | None, state: StreamState) -> bool:
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


def _shared_replay(state: StreamState) -> _Replay | None:
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


def catch_up(state: StreamState) -> Generator[bytes]:
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
        yield from release_held(state, replay.built_at)
    finally:
        db.session.remove()


def release_held(state: StreamState, read_at: float | None = None) -> Iterator[bytes]:
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


def forward(state: StreamState, event: Event) -> Iterator[bytes]:
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
        yield from release_held(state)
    elif event.kind == EventKind.CHANGE:
        if event.rev <= state.rev:
            return
        if event.rev > state.rev + 1 or event.seq > state.last:
            yield from catch_up(state)
            if event.rev <= state.rev:
                return
        yield event.frame
        state.rev = event.rev
    elif event.kind == EventKind.RESYNC:
        yield from catch_up(state)
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


def departed(state: StreamState, event: Event) -> bool:
    """Whether ``event`` is this stream's own tab saying goodbye (``events.tab_departed``)."""
    return (
        event.kind == EventKind.DEPART
        and bool(state.tab)
        and event.target == state.membership_id
        and event.frame.decode() == state.tab
    )


def _send_message(state: StreamState, event: Event) -> Iterator[bytes]:
    if event.seq <= state.last:
        return
    if event.rev > state.rev:
        yield from catch_up(state)  # its id would claim changes we have not sent: the database has them
        return
    yield event.frame
    state.last = event.seq


def current_state(state: StreamState, *, release: bool = True) -> bytes:
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
        return entry.data + viewer_state(state, release)
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


def _panels(state: StreamState, room: Room) -> str:
    """This viewer's own part of the state: its private thread, or the host's threads and questions."""
    return participation.panels(room, state.membership_id, state.is_host)


def viewer_state(state: StreamState, release: bool = True) -> bytes:
    """``_panels`` framed, for a participant whose shared part of the state came from memory."""
    try:
        room = db.session.get(Room, state.room_id)
        return frame(_panels(state, room)) if room is not None else b""
    finally:
        if release:
            db.session.remove()


def room_end(state: StreamState) -> float:
    try:
        room = db.session.get(Room, state.room_id)
        return room.ends_at.timestamp() if room is not None else 0.0
    finally:
        db.session.remove()


def seat_gone(state: StreamState) -> str | None:
    """Why this stream must end now (``ended``; why its seat closed: ``Membership.closed_as``; for a host's,
    ``signed_out`` when its sign-in ended), from the database; None while it may go on."""
    try:
        room = db.session.get(Room, state.room_id)
        if room is None or room.status() is RoomStatus.ENDED:
            return "ended"
        seat = db.session.get(Membership, state.membership_id)
        if seat is None or seat.room_id != room.id:
            return "removed"
        if not seat.active:
            return seat.closed_as
        if state.is_host and state.sign_in not in accounts.current_sign_ins(room.owner_id):
            return "signed_out"  # the event that said so was lost
        return None
    finally:
        db.session.remove()


def presence_frame(room_id: int) -> bytes:
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


def enter(tracker: Presence, state: StreamState) -> str | None:
    try:
        return tracker.enter(state.room_id, state.membership_id, state.tab or None)  # it announces, batched
    except Exception:  # presence is best effort; the messages must keep flowing
        log.warning("presence enter failed", exc_info=True)
        return None


def leave(tracker: Presence, state: StreamState, conn_id: str) -> None:
    try:
        tracker.leave(state.room_id, state.membership_id, conn_id)
    except Exception:
        log.warning("presence leave failed", exc_info=True)
