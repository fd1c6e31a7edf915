"""Who is here now, and who may say they are typing: ephemeral, never in the database.

(One module: the memory and Redis trackers share one interface, and the roster and announcer read them.)

A seat is *present* while at least one of its streams is open, on any process of any
instance. Each open stream is one entry ``membership:connection`` with an expiry,
refreshed by its process every third of ``PRESENCE_TTL_SECONDS``, so a crashed
instance's connections fade out on their own. Two implementations share one interface:
``MemoryPresence`` (the embedded default, one process) and ``RedisPresence`` (a sorted
set per room, scored by expiry, shared by every process).

Nothing is announced from the request path. A background thread per process announces
each room whose presence may have changed at most every ``ANNOUNCE_INTERVAL`` seconds,
and only when its member list really differs from what this process announced last:
a thousand people arriving at once cost a few announcements, not a thousand. The
announcement is ``events.presence_changed``, published through the broker.

``claim`` is the small throttle the typing signal uses: true once per interval per key,
across every process.

What makes the list true (the room's "Here now"):

- A tab names itself (``tab``, random per page load) when it opens its stream, and says goodbye
  with a beacon when it closes (``depart``): its entries go at once, and the stream that still holds
  its socket is told to end (``events.tab_departed``). The server cannot see a closed socket until
  it writes to it, so without the goodbye a closed tab would linger until the next heartbeat.
- A reader without JavaScript has no stream: each room page they load counts them as here for
  ``PRESENCE_PAGE_SECONDS`` (``page_seen``, an entry named ``page``).
- A tab whose page is hidden says so (Page Visibility API): a seat whose every tab is hidden is
  *away* (``set_away``, ``states``).
- Every entry written or removed notes when its seat was last seen (``last_seen``), so the list can
  show someone offline since 14:05.

A Redis that hangs instead of failing (paused, overloaded) must not hold requests: every
Redis call here has a sub-second socket timeout (``REDIS_TIMEOUT_SECONDS``), and after one
failure a circuit breaker (``chatroom/breaker.py``) skips Redis for a few seconds
(``REDIS_COOLDOWN_SECONDS``), answering with the fallback at once.

Longer than our ~400-line guide on purpose: the two storages sit side by side so each
rule (entries, expiry, away, last seen, the breaker) reads once for memory and once
for Redis, next to the interface they share.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from flask import Flask, current_app
from sqlalchemy import select

from . import events
from .breaker import Breaker
from .broker import Broker
from .extensions import db
from .models import Membership, Room

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

KEY_PREFIX = "chatroom:"
PAGE = "page"  # the connection name of a page load: a reader without a live stream
AWAY_SECONDS = 6 * 3600  # an away mark outlives any hidden tab; a goodbye or a visible page removes it
OFFLINE_SHOWN = 10  # how many people who were here lately the list still shows, offline, with when


class Presence:
    """Open streams per room, with expiring entries and a batched announcer; see the module docstring."""

    ANNOUNCE_INTERVAL = 0.5

    def __init__(self, ttl: float = 40.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        # Entries this process owns: (room_id, membership_id, conn_id).
        self._local_conns: set[tuple[int, int, str]] = set()
        self._refresher: threading.Thread | None = None
        self._closed = False
        self._dirty: set[int] = set()  # rooms whose presence may have changed
        self._announced: dict[int, frozenset[int]] = {}  # what this process last announced
        self._announced_states: dict[int, frozenset[tuple[int, str]]] = {}  # and who of them was away
        self.on_change: Callable[[int], None] | None = None

    def enter(self, room_id: int, membership_id: int, tab: str | None = None) -> str:
        """Record an open stream of ``membership_id`` in ``room_id``; returns its connection id.

        ``tab`` is the page's own name for itself (``depart`` and ``set_away`` find its entries by it).
        """
        conn_id = f"{tab}.{uuid.uuid4().hex[:6]}" if tab else uuid.uuid4().hex[:12]
        with self._lock:
            self._local_conns.add((room_id, membership_id, conn_id))
            self._dirty.add(room_id)
        self._ensure_refresher()
        # The page that opened this stream is counted by it now: its entry goes in the same call.
        self._add(room_id, [(membership_id, conn_id)], replaces=PAGE)
        return conn_id

    def leave(self, room_id: int, membership_id: int, conn_id: str) -> None:
        """Forget an open stream (the seat stays present while another of its tabs is open)."""
        with self._lock:
            self._local_conns.discard((room_id, membership_id, conn_id))
            self._dirty.add(room_id)
        self._remove(room_id, membership_id, conn_id)

    def present(self, room_id: int) -> set[int]:
        """Membership ids with at least one live stream in the room, on any instance."""
        return {int(entry.split(":", 1)[0]) for entry in self._entries(room_id)}

    def page_seen(self, room_id: int, membership_id: int, ttl: float) -> None:
        """A room page was loaded: the seat counts as here for ``ttl`` seconds (a reader without JavaScript)."""
        self._add(room_id, [(membership_id, PAGE)], ttl)
        with self._lock:
            self._dirty.add(room_id)
        self._ensure_refresher()

    def depart(self, room_id: int, membership_id: int, tab: str) -> None:
        """Tab ``tab`` of the seat is closing: forget its entries now (and the page load's, which it made)."""
        prefix = f"{membership_id}:{tab}."
        gone = [entry.split(":", 1)[1] for entry in self._entries(room_id) if entry.startswith(prefix)]
        with self._lock:
            self._local_conns = {
                c for c in self._local_conns if not (c[0] == room_id and c[1] == membership_id and c[2] in gone)
            }
            self._dirty.add(room_id)
        for conn_id in [*gone, PAGE]:
            self._remove(room_id, membership_id, conn_id)
        self._mark_away(room_id, f"{membership_id}:{tab}", False)

    def set_away(self, room_id: int, membership_id: int, tab: str, away: bool) -> None:
        """Tab ``tab`` of the seat was hidden (``away``) or shown again."""
        self._mark_away(room_id, f"{membership_id}:{tab}", away)
        with self._lock:
            self._dirty.add(room_id)

    def states(self, room_id: int) -> dict[int, str]:
        """Present membership ids -> "online", or "away" when every one of their tabs is hidden.

        A page load (a reader without JavaScript) counts as online.
        """
        away = self._away_tabs(room_id)
        states: dict[int, str] = {}
        for entry in self._entries(room_id):
            member, _, conn = entry.partition(":")
            tab = conn.split(".", 1)[0]
            online = conn == PAGE or f"{member}:{tab}" not in away
            if online or int(member) not in states:
                states[int(member)] = "online" if online else "away"
        return states

    def last_seen(self, room_id: int) -> dict[int, float]:
        """Membership id -> when (Unix time) an entry of theirs was last written or removed."""
        raise NotImplementedError

    def forget(self, room_id: int) -> None:
        """Drop everything kept about a deleted room (SQLite gives its id, and its seats' ids, to the next ones:
        "last seen" of the old room's people must not appear in a new room)."""
        raise NotImplementedError

    def _mark_away(self, room_id: int, tab_key: str, away: bool) -> None:
        raise NotImplementedError

    def _away_tabs(self, room_id: int) -> set[str]:
        raise NotImplementedError

    def _ensure_refresher(self) -> None:
        with self._lock:
            if self._refresher is not None:
                return
            self._refresher = threading.Thread(target=self._refresh_loop, name="presence", daemon=True)
        self._refresher.start()

    def _refresh_loop(self) -> None:
        next_refresh = time.monotonic() + self.ttl / 3
        while not self._closed:
            time.sleep(min(self.ANNOUNCE_INTERVAL, self.ttl / 3))
            if self._closed:
                return
            try:
                if time.monotonic() >= next_refresh:
                    next_refresh = time.monotonic() + self.ttl / 3
                    self.refresh()
                self.announce_changes()
            except Exception:  # keep the heartbeat alive through a Redis blip
                log.warning("presence refresh failed", exc_info=True)

    def refresh(self) -> None:
        """Extend this process's entries; rooms where others' entries expired are marked for announcing."""
        with self._lock:
            by_room: dict[int, list[tuple[int, str]]] = defaultdict(list)
            for room_id, membership_id, conn_id in self._local_conns:
                by_room[room_id].append((membership_id, conn_id))
        for room_id, entries in by_room.items():
            self._add(room_id, entries)
        expired = self._expire()
        with self._lock:
            self._dirty.update(expired)

    def announce_changes(self) -> list[int]:
        """Announce every room whose member list changed since this process last announced it; returns them."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        changed = []
        for room_id in dirty:
            states = self.states(room_id)
            members, with_states = frozenset(states), frozenset(states.items())
            if self._announced.get(room_id) == members and self._announced_states.get(room_id) == with_states:
                continue
            self._announced[room_id] = members
            self._announced_states[room_id] = with_states
            if not members:
                self._announced.pop(room_id, None)
                self._announced_states.pop(room_id, None)
            changed.append(room_id)
            if self.on_change is not None:
                self.on_change(room_id)
        return changed

    def claim(self, key: str, ttl: float) -> bool:
        """True once per ``ttl`` seconds for ``key``, across every process."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop the refresher (tests build many apps)."""
        self._closed = True

    def _entries(self, room_id: int) -> list[str]:
        raise NotImplementedError

    def _add(
        self, room_id: int, entries: Iterable[tuple[int, str]], ttl: float | None = None, replaces: str | None = None
    ) -> None:
        """Record ``entries`` (membership id, connection id) for ``ttl`` seconds (default: the TTL), and mark their
        seats seen now; ``replaces``: also drop each seat's entry under that connection id (one round trip)."""
        raise NotImplementedError

    def _remove(self, room_id: int, membership_id: int, conn_id: str) -> None:
        raise NotImplementedError

    def _expire(self) -> list[int]:
        """Drop expired entries everywhere; return the rooms whose presence changed."""
        raise NotImplementedError


class MemoryPresence(Presence):
    """Presence for the embedded default: one process, plain dictionaries."""

    def __init__(self, ttl: float = 40.0) -> None:
        super().__init__(ttl)
        self._rooms: dict[int, dict[str, float]] = defaultdict(dict)
        self._claims: dict[str, float] = {}
        self._away: dict[int, dict[str, float]] = defaultdict(dict)
        self._seen: dict[int, dict[int, float]] = defaultdict(dict)

    def _entries(self, room_id: int) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return [e for e, exp in self._rooms.get(room_id, {}).items() if exp > now]

    def _add(
        self, room_id: int, entries: Iterable[tuple[int, str]], ttl: float | None = None, replaces: str | None = None
    ) -> None:
        expiry = time.monotonic() + (ttl or self.ttl)
        now = time.time()
        with self._lock:
            for membership_id, conn_id in entries:
                if replaces is not None:
                    self._rooms[room_id].pop(f"{membership_id}:{replaces}", None)
                self._rooms[room_id][f"{membership_id}:{conn_id}"] = expiry
                self._seen[room_id][membership_id] = now

    def _remove(self, room_id: int, membership_id: int, conn_id: str) -> None:
        with self._lock:
            if self._rooms.get(room_id, {}).pop(f"{membership_id}:{conn_id}", None) is not None:
                self._seen[room_id][membership_id] = time.time()

    def last_seen(self, room_id: int) -> dict[int, float]:
        with self._lock:
            return dict(self._seen.get(room_id, {}))

    def forget(self, room_id: int) -> None:
        """Drop the room's entries, away marks and last-seen times (``Presence.forget``)."""
        with self._lock:
            for kept in (self._rooms, self._away, self._seen):
                kept.pop(room_id, None)

    def _mark_away(self, room_id: int, tab_key: str, away: bool) -> None:
        with self._lock:
            if away:
                self._away[room_id][tab_key] = time.monotonic() + AWAY_SECONDS
            else:
                self._away.get(room_id, {}).pop(tab_key, None)

    def _away_tabs(self, room_id: int) -> set[str]:
        now = time.monotonic()
        with self._lock:
            return {key for key, expiry in self._away.get(room_id, {}).items() if expiry > now}

    def _expire(self) -> list[int]:
        now = time.monotonic()
        changed = []
        with self._lock:
            for room_id, entries in list(self._rooms.items()):
                dead = [e for e, exp in entries.items() if exp <= now]
                for e in dead:
                    del entries[e]
                if dead:
                    changed.append(room_id)
                if not entries:
                    del self._rooms[room_id]
        return changed

    def claim(self, key: str, ttl: float) -> bool:
        """True once per ``ttl`` seconds for ``key`` (this process only, which is all there is)."""
        now = time.monotonic()
        with self._lock:
            if self._claims.get(key, 0) > now:
                return False
            self._claims[key] = now + ttl
            if len(self._claims) > 10_000:
                self._claims = {k: v for k, v in self._claims.items() if v > now}
            return True


class RedisPresence(Presence):
    """Presence held in Redis, shared by every process and instance.

    Best effort: while Redis is away (or hangs), rooms show nobody and throttles allow, at
    once, rather than fail or hold a request; see the module docstring for the breaker.
    """

    def __init__(self, url: str, ttl: float = 40.0, timeout: float = 0.5, cooldown: float = 5.0) -> None:
        import redis as redis_lib

        super().__init__(ttl)
        self._error = redis_lib.RedisError
        self.redis: redis.Redis = redis_lib.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=10
        )
        self.breaker = Breaker(cooldown)

    def _key(self, room_id: int) -> str:
        return f"{KEY_PREFIX}presence:{room_id}"

    def _entries(self, room_id: int) -> list[str]:
        if self.breaker.open:
            return []
        try:
            raw = self.redis.zrangebyscore(self._key(room_id), time.time(), "+inf")
        except self._error:
            self.breaker.failed()
            log.warning("presence unavailable: redis is unreachable")
            return []
        self.breaker.succeeded()
        return [e.decode() for e in cast(list[bytes], raw)]

    def _add(
        self, room_id: int, entries: Iterable[tuple[int, str]], ttl: float | None = None, replaces: str | None = None
    ) -> None:
        now = time.time()
        expiry = now + (ttl or self.ttl)
        pairs = list(entries)
        mapping: dict[str, float] = {f"{m}:{c}": expiry for m, c in pairs}
        if not mapping or self.breaker.open:
            return  # the refresher adds this process's entries again every third of the TTL
        try:
            pipe = self.redis.pipeline(transaction=False)
            if replaces is not None:
                pipe.zrem(self._key(room_id), *{f"{m}:{replaces}" for m, _ in pairs})
            pipe.zadd(self._key(room_id), mapping)
            pipe.sadd(f"{KEY_PREFIX}presence-rooms", room_id)
            pipe.hset(self._seen_key(room_id), mapping={str(m): now for m, _ in pairs})
            pipe.expire(self._seen_key(room_id), 86400)
            pipe.execute()
        except self._error:
            self.breaker.failed()
            log.warning("presence not recorded: redis is unreachable")
        else:
            self.breaker.succeeded()

    def _remove(self, room_id: int, membership_id: int, conn_id: str) -> None:
        if self.breaker.open:
            return  # the entry expires on its own
        try:
            if self.redis.zrem(self._key(room_id), f"{membership_id}:{conn_id}"):
                self.redis.hset(self._seen_key(room_id), str(membership_id), time.time())
        except self._error:
            self.breaker.failed()
            log.warning("presence not removed: redis is unreachable (the entry expires)")

    def forget(self, room_id: int) -> None:
        """Delete the room's keys (``Presence.forget``); while Redis is away they expire on their own."""
        if self.breaker.open:
            return
        try:
            self.redis.delete(self._key(room_id), self._seen_key(room_id), self._away_key(room_id))
        except self._error:
            self.breaker.failed()
            log.warning("presence not forgotten: redis is unreachable (the keys expire)")

    def _seen_key(self, room_id: int) -> str:
        return f"{KEY_PREFIX}presence-seen:{room_id}"

    def _away_key(self, room_id: int) -> str:
        return f"{KEY_PREFIX}presence-away:{room_id}"

    def last_seen(self, room_id: int) -> dict[int, float]:
        if self.breaker.open:
            return {}
        try:
            raw = cast(dict[bytes, bytes], self.redis.hgetall(self._seen_key(room_id)))
        except self._error:
            self.breaker.failed()
            return {}
        return {int(k): float(v) for k, v in raw.items()}

    def _mark_away(self, room_id: int, tab_key: str, away: bool) -> None:
        if self.breaker.open:
            return  # best effort: the tab says it again when it is shown or hidden next
        try:
            if away:
                pipe = self.redis.pipeline(transaction=False)
                pipe.zadd(self._away_key(room_id), {tab_key: time.time() + AWAY_SECONDS})
                pipe.expire(self._away_key(room_id), AWAY_SECONDS)
                pipe.execute()
            else:
                self.redis.zrem(self._away_key(room_id), tab_key)
        except self._error:
            self.breaker.failed()
            log.warning("away mark not recorded: redis is unreachable")

    def _away_tabs(self, room_id: int) -> set[str]:
        if self.breaker.open:
            return set()
        try:
            raw = self.redis.zrangebyscore(self._away_key(room_id), time.time(), "+inf")
        except self._error:
            self.breaker.failed()
            return set()
        return {e.decode() for e in cast(list[bytes], raw)}

    def _expire(self) -> list[int]:
        if self.breaker.open:
            return []
        changed = []
        now = time.time()
        rooms_key = f"{KEY_PREFIX}presence-rooms"
        try:
            for raw in cast(set[bytes], self.redis.smembers(rooms_key)):
                room_id = int(raw)
                key = self._key(room_id)
                if self.redis.zremrangebyscore(key, "-inf", now):
                    changed.append(room_id)
                self.redis.zremrangebyscore(self._away_key(room_id), "-inf", now)
                if not self.redis.exists(key):
                    self.redis.srem(rooms_key, room_id)
        except self._error:
            self.breaker.failed()
            raise
        return changed

    def claim(self, key: str, ttl: float) -> bool:
        """True once per ``ttl`` seconds for ``key`` across every process (true at once while Redis is away)."""
        if self.breaker.open:
            return True  # typing signals are harmless; do not hold the request over them
        try:
            claimed = bool(self.redis.set(f"{KEY_PREFIX}claim:{key}", 1, nx=True, px=int(ttl * 1000)))
        except self._error:
            self.breaker.failed()
            return True
        self.breaker.succeeded()
        return claimed

    def close(self) -> None:
        """Stop the refresher and close the connection pool."""
        super().close()
        self.redis.close()


def current_presence() -> Presence:
    """The presence tracker of the app handling this request."""
    return current_app.extensions["chatroom.presence"]


def claim(key: str, ttl: float) -> bool:
    """True once per ``ttl`` seconds for ``key``, across every process (the typing throttle, one-time TOTP steps)."""
    return current_presence().claim(key, ttl)


@dataclass(frozen=True)
class Here:
    """One person in a room's "Here now" list: online, away (every tab hidden) or offline, and when last seen."""

    member: Membership
    state: str  # "online", "away" or "offline"
    last_seen: datetime | None

    @property
    def id(self) -> int:
        return self.member.id

    @property
    def alias(self) -> str:
        return self.member.alias

    @property
    def is_host(self) -> bool:
        return self.member.is_host


def roster(room: Room) -> list[Here]:
    """The room's "Here now": every active seat with a live tab or a recent page load (the host first, then by
    alias), then up to ``OFFLINE_SHOWN`` others who were here lately, most recent first, offline."""
    tracker = current_presence()
    states = tracker.states(room.id)
    seen = tracker.last_seen(room.id)
    recent = sorted((t, m) for m, t in seen.items() if m not in states)[-OFFLINE_SHOWN:]
    ids = set(states) | {m for _, m in recent}
    if not ids:
        return []
    rows = {
        m.id: m
        for m in db.session.scalars(
            select(Membership).where(
                Membership.room_id == room.id, Membership.id.in_(ids), Membership.left_at.is_(None)
            )
        )
    }
    when = {m: datetime.fromtimestamp(t, UTC) for m, t in seen.items()}
    here = sorted(
        (Here(rows[m], state, when.get(m)) for m, state in states.items() if m in rows),
        key=lambda h: (not h.is_host, h.member.alias_key),
    )
    gone = [Here(rows[m], "offline", when.get(m)) for _, m in reversed(recent) if m in rows]
    return here + gone


def seat_states(room: Room) -> dict[int, Here]:
    """Every seat the tracker knows in ``room`` -> online, away or offline with when it was last seen (for the
    host's participant list); a seat never seen is absent."""
    tracker = current_presence()
    states, seen = tracker.states(room.id), tracker.last_seen(room.id)
    ids = set(states) | set(seen)
    if not ids:
        return {}
    rows = db.session.scalars(select(Membership).where(Membership.room_id == room.id, Membership.id.in_(ids)))
    return {
        m.id: Here(m, states.get(m.id, "offline"), datetime.fromtimestamp(seen[m.id], UTC) if m.id in seen else None)
        for m in rows
    }


def page_seen(room: Room, membership: Membership) -> None:
    """A member loaded a room page: they count as here for ``PRESENCE_PAGE_SECONDS`` (best effort)."""
    try:
        current_presence().page_seen(room.id, membership.id, current_app.config["PRESENCE_PAGE_SECONDS"])
    except Exception:  # presence never fails a page
        log.warning("page presence not recorded", exc_info=True)


def present_members(room: Room) -> list[Membership]:
    """Members with a live stream in the room now (any instance), the host first, then by alias."""
    ids = current_presence().present(room.id)
    if not ids:
        return []
    rows = db.session.scalars(select(Membership).where(Membership.room_id == room.id, Membership.id.in_(ids)))
    return sorted(rows, key=lambda m: (not m.is_host, m.alias_key))


def announce(room_id: int, broker: Broker) -> None:
    """Publish the room's "here now" list (rendered once for everyone); call inside an app context."""
    try:
        room = db.session.get(Room, room_id)
        if room is not None:
            broker.publish(events.channel(room.id), events.presence_changed(room, roster(room)))
    finally:
        db.session.remove()


def init_app(app: Flask, broker: Broker) -> Presence:
    """Attach a presence tracker to ``app`` (Redis when ``REDIS_URL`` is set) that announces through ``broker``."""
    ttl = app.config["PRESENCE_TTL_SECONDS"]
    presence: Presence
    if app.config.get("REDIS_URL"):
        timeout, cooldown = app.config["REDIS_TIMEOUT_SECONDS"], app.config["REDIS_COOLDOWN_SECONDS"]
        presence = RedisPresence(app.config["REDIS_URL"], ttl, timeout, cooldown)
    else:
        presence = MemoryPresence(ttl)

    def changed(room_id: int) -> None:
        with app.app_context():
            announce(room_id, broker)

    presence.on_change = changed
    app.extensions["chatroom.presence"] = presence
    return presence
