"""Fan-out of room events to live streams, and the ephemeral state around them.

Services publish an :class:`Event` (already rendered and framed as SSE bytes)
on a room's channel *after* they commit; every stream on every process that
watches the room gets those same bytes. Two implementations share one
interface:

``MemoryBroker``
    The embedded default: one process, a dict of local queues.

``RedisBroker``
    One pub/sub connection and one listener thread (a greenlet under gevent)
    per process, pattern-subscribed to every room channel, fanning each
    message out to the in-process queue of every local stream of that room.
    Never one Redis connection per browser. Redis pub/sub is at-most-once: a
    publish during a Redis blip is lost for live listeners, so when the
    listener reconnects it hands every local stream a ``resync`` event and the
    streams re-read the database (see ``chatroom/stream.py``). Nothing is lost;
    it is only late.

Both also keep *presence* (which memberships have an open stream in a room,
with expiring heartbeats so a crashed instance's connections fade out) and a
small ``claim`` primitive used to throttle typing signals.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from flask import Flask

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "chatroom:"
QUEUE_LIMIT = 2000  # a stream this far behind re-reads the database instead


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened in a room; ``frame`` is the SSE bytes to send as they are.

    ``kind`` is one of:
    ``message`` (``seq`` its number, ``rev`` the room's change number then),
    ``change`` (an edit or removal: ``rev`` its change number, ``seq`` the room's
    last message number then, ``target`` the message changed),
    ``presence``, ``typing`` (``target`` the typist), ``removed`` (``target`` the
    membership removed), ``room`` (settings changed), ``host`` (for the host's
    streams only) or the local-only ``resync``.
    """

    kind: str
    frame: bytes = b""
    seq: int = 0
    rev: int = 0
    target: int = 0

    def encode(self) -> bytes:
        return f"{self.kind} {self.seq} {self.rev} {self.target}\n".encode() + self.frame

    @classmethod
    def decode(cls, data: bytes) -> Event:
        head, _, frame = data.partition(b"\n")
        kind, seq, rev, target = head.decode().split(" ")
        return cls(kind, frame, int(seq), int(rev), int(target))


RESYNC = Event("resync")


@dataclass(eq=False)
class Subscription:
    """One stream's inbox: a local queue the broker fills and the stream drains."""

    channel: str
    _unsubscribe: Callable[[Subscription], None]
    _queue: queue.Queue[Event] = field(default_factory=queue.Queue)
    _overflowed: bool = False

    def put(self, event: Event) -> None:
        if self._queue.qsize() >= QUEUE_LIMIT:
            # A stuck client must not grow memory without bound: drop what it has
            # not read and let it catch up from the database when it wakes.
            if not self._overflowed:
                self._overflowed = True
                self._drain()
                self._queue.put(RESYNC)
            return
        self._queue.put(event)

    def get(self, timeout: float) -> Event | None:
        try:
            event = self._queue.get(timeout=max(timeout, 0))
        except queue.Empty:
            return None
        if event is RESYNC:
            self._overflowed = False
        return event

    def get_nowait(self) -> Event | None:
        """The next event if one is already waiting (to send a burst in one write)."""
        try:
            event = self._queue.get_nowait()
        except queue.Empty:
            return None
        if event is RESYNC:
            self._overflowed = False
        return event

    def _drain(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass

    def close(self) -> None:
        self._unsubscribe(self)


class Broker:
    """The interface the services and the stream view use; see the module docstring."""

    def __init__(self, presence_ttl: float = 40.0) -> None:
        self.presence_ttl = presence_ttl
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._lock = threading.Lock()
        # Presence entries this process owns: (room_id, membership_id, conn_id).
        self._local_conns: set[tuple[int, int, str]] = set()
        self._refresher: threading.Thread | None = None
        self._closed = False
        self._dirty: set[int] = set()  # rooms whose presence may have changed
        self._announced: dict[int, frozenset[int]] = {}  # what this process last announced
        self.on_presence_changed: Callable[[int], None] | None = None

    # -- fan-out -------------------------------------------------------------

    def publish(self, channel: str, event: Event) -> None:
        raise NotImplementedError

    def subscribe(self, channel: str) -> Subscription:
        sub = Subscription(channel, self._unsubscribe)
        with self._lock:
            self._subs[channel].add(sub)
        self._started()
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.channel]

    def _deliver(self, channel: str, event: Event) -> None:
        with self._lock:
            subs = list(self._subs.get(channel, ()))
        for sub in subs:
            sub.put(event)

    def _deliver_all(self, event: Event) -> None:
        with self._lock:
            subs = [s for group in self._subs.values() for s in group]
        for sub in subs:
            sub.put(event)

    def local_stream_count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subs.values())

    def _started(self) -> None:
        """Hook: start background work lazily, on the first subscriber of a process."""

    # -- presence ------------------------------------------------------------
    #
    # Streams enter and leave; nothing is announced from the request path. A
    # background thread per process announces each room whose presence may have
    # changed at most every ANNOUNCE_INTERVAL seconds, and only when its list of
    # members really differs from what this process announced last: a thousand
    # people arriving at once cost a few announcements, not a thousand.

    ANNOUNCE_INTERVAL = 0.5

    def enter(self, room_id: int, membership_id: int) -> str:
        """Record an open stream; returns its connection id."""
        conn_id = uuid.uuid4().hex[:12]
        with self._lock:
            self._local_conns.add((room_id, membership_id, conn_id))
            self._dirty.add(room_id)
        self._ensure_refresher()
        self._presence_add(room_id, [(membership_id, conn_id)])
        return conn_id

    def leave(self, room_id: int, membership_id: int, conn_id: str) -> None:
        """Forget an open stream (the member stays present while another tab is open)."""
        with self._lock:
            self._local_conns.discard((room_id, membership_id, conn_id))
            self._dirty.add(room_id)
        self._presence_remove(room_id, membership_id, conn_id)

    def present(self, room_id: int) -> set[int]:
        """Membership ids with at least one live stream in the room, on any instance."""
        return {int(entry.split(":", 1)[0]) for entry in self._presence_entries(room_id)}

    def _ensure_refresher(self) -> None:
        with self._lock:
            if self._refresher is not None:
                return
            self._refresher = threading.Thread(target=self._refresh_loop, name="presence", daemon=True)
        self._refresher.start()

    def _refresh_loop(self) -> None:
        next_refresh = time.monotonic() + self.presence_ttl / 3
        while not self._closed:
            time.sleep(min(self.ANNOUNCE_INTERVAL, self.presence_ttl / 3))
            if self._closed:
                return
            try:
                if time.monotonic() >= next_refresh:
                    next_refresh = time.monotonic() + self.presence_ttl / 3
                    self.refresh_presence()
                self.announce_changes()
            except Exception:  # keep the heartbeat alive through a Redis blip
                log.warning("presence refresh failed", exc_info=True)

    def refresh_presence(self) -> None:
        """Extend this process's presence entries; rooms where others' entries expired get re-announced."""
        with self._lock:
            by_room: dict[int, list[tuple[int, str]]] = defaultdict(list)
            for room_id, membership_id, conn_id in self._local_conns:
                by_room[room_id].append((membership_id, conn_id))
        for room_id, entries in by_room.items():
            self._presence_add(room_id, entries)
        expired = self._expire_presence()
        with self._lock:
            self._dirty.update(expired)

    def announce_changes(self) -> list[int]:
        """Announce every room whose member list changed since this process last announced it."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        changed = []
        for room_id in dirty:
            members = frozenset(self.present(room_id))
            if self._announced.get(room_id) == members:
                continue
            self._announced[room_id] = members
            if not members:
                self._announced.pop(room_id, None)
            changed.append(room_id)
            if self.on_presence_changed is not None:
                self.on_presence_changed(room_id)
        return changed

    def _presence_entries(self, room_id: int) -> list[str]:
        raise NotImplementedError

    def _presence_add(self, room_id: int, entries: Iterable[tuple[int, str]]) -> None:
        raise NotImplementedError

    def _presence_remove(self, room_id: int, membership_id: int, conn_id: str) -> None:
        raise NotImplementedError

    def _expire_presence(self) -> list[int]:
        """Drop expired entries everywhere; return the rooms whose presence changed."""
        raise NotImplementedError

    # -- throttling ----------------------------------------------------------

    def claim(self, key: str, ttl: float) -> bool:
        """True once per ``ttl`` seconds for ``key``, across every process."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop background work and release connections (tests build many apps)."""
        self._closed = True


class MemoryBroker(Broker):
    """The embedded, single-process broker."""

    def __init__(self, presence_ttl: float = 40.0) -> None:
        super().__init__(presence_ttl)
        self._presence: dict[int, dict[str, float]] = defaultdict(dict)
        self._claims: dict[str, float] = {}

    def publish(self, channel: str, event: Event) -> None:
        self._deliver(channel, event)

    def _presence_entries(self, room_id: int) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return [e for e, exp in self._presence.get(room_id, {}).items() if exp > now]

    def _presence_add(self, room_id: int, entries: Iterable[tuple[int, str]]) -> None:
        expiry = time.monotonic() + self.presence_ttl
        with self._lock:
            for membership_id, conn_id in entries:
                self._presence[room_id][f"{membership_id}:{conn_id}"] = expiry

    def _presence_remove(self, room_id: int, membership_id: int, conn_id: str) -> None:
        with self._lock:
            self._presence.get(room_id, {}).pop(f"{membership_id}:{conn_id}", None)

    def _expire_presence(self) -> list[int]:
        now = time.monotonic()
        changed = []
        with self._lock:
            for room_id, entries in list(self._presence.items()):
                dead = [e for e, exp in entries.items() if exp <= now]
                for e in dead:
                    del entries[e]
                if dead:
                    changed.append(room_id)
                if not entries:
                    del self._presence[room_id]
        return changed

    def claim(self, key: str, ttl: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._claims.get(key, 0) > now:
                return False
            self._claims[key] = now + ttl
            if len(self._claims) > 10_000:
                self._claims = {k: v for k, v in self._claims.items() if v > now}
            return True


class RedisBroker(Broker):
    """Redis pub/sub fan-out and Redis-held presence, shared by every process and instance."""

    # Events that change what a reconnecting client must converge to are published
    # again once Redis is back; presence and typing are stale by then and dropped.
    DURABLE_KINDS = frozenset({"message", "removed", "room"})
    PENDING_LIMIT = 10_000

    def __init__(self, url: str, presence_ttl: float = 40.0) -> None:
        import redis as redis_lib

        super().__init__(presence_ttl)
        self._error = redis_lib.RedisError
        self.redis: redis.Redis = redis_lib.Redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=10
        )
        self._listener: threading.Thread | None = None
        self._listener_pubsub: redis.client.PubSub | None = None
        self._pending: deque[tuple[str, Event]] = deque(maxlen=self.PENDING_LIMIT)
        self._retrier: threading.Thread | None = None
        self.connected = threading.Event()

    def publish(self, channel: str, event: Event) -> None:
        try:
            self.redis.publish(CHANNEL_PREFIX + channel, event.encode())
        except self._error:
            # Already committed. Our own streams get it now; the other processes get
            # it when Redis is back (published again, or re-read from the database
            # when their listener reconnects). Streams drop what they already sent.
            log.warning("redis publish failed; delivering locally and retrying", exc_info=True)
            self._deliver(channel, event)
            if event.kind in self.DURABLE_KINDS:
                self._pending.append((channel, event))
                self._ensure_retrier()

    def _ensure_retrier(self) -> None:
        with self._lock:
            if self._retrier is not None and self._retrier.is_alive():
                return
            self._retrier = threading.Thread(target=self._retry_pending, name="redis-retry", daemon=True)
        self._retrier.start()

    def _retry_pending(self) -> None:
        delay = 0.2
        while self._pending and not self._closed:
            time.sleep(delay)
            try:
                while self._pending:
                    channel, event = self._pending[0]
                    self.redis.publish(CHANNEL_PREFIX + channel, event.encode())
                    self._pending.popleft()
                delay = 0.2
            except self._error:
                delay = min(delay * 2, 5.0)

    def _started(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            self._listener = threading.Thread(target=self._listen, name="redis-listener", daemon=True)
        self._listener.start()
        # The first stream must not replay before the subscription is live, or a
        # message committed in between would reach it from neither side.
        self.connected.wait(timeout=2)

    def _listen(self) -> None:
        delay = 0.1
        first = True
        while not self._closed:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=False)
            self._listener_pubsub = pubsub
            try:
                pubsub.psubscribe(CHANNEL_PREFIX + "room:*")
                while not self._closed:
                    msg = pubsub.get_message(timeout=5)
                    if msg is None:
                        continue
                    if msg["type"] == "psubscribe":
                        self.connected.set()
                        delay = 0.1
                        if not first:
                            log.info("redis listener reconnected; streams re-check the database")
                            self._deliver_all(RESYNC)
                        first = False
                    elif msg["type"] == "pmessage":
                        channel = msg["channel"].decode()[len(CHANNEL_PREFIX) :]
                        self._deliver(channel, Event.decode(msg["data"]))
            except Exception:
                if self._closed:
                    break
                self.connected.clear()
                log.warning("redis listener lost its connection; retrying in %.1fs", delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):  # closing a broken connection
                    pubsub.close()

    # Presence is best effort: while Redis is away, rooms show nobody rather than fail.

    def _key(self, room_id: int) -> str:
        return f"{CHANNEL_PREFIX}presence:{room_id}"

    def _presence_entries(self, room_id: int) -> list[str]:
        try:
            raw = self.redis.zrangebyscore(self._key(room_id), time.time(), "+inf")
        except self._error:
            log.warning("presence unavailable: redis is unreachable")
            return []
        return [e.decode() for e in cast(list[bytes], raw)]

    def _presence_add(self, room_id: int, entries: Iterable[tuple[int, str]]) -> None:
        expiry = time.time() + self.presence_ttl
        mapping: dict[str, float] = {f"{m}:{c}": expiry for m, c in entries}
        if not mapping:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zadd(self._key(room_id), mapping)
            pipe.sadd(f"{CHANNEL_PREFIX}presence-rooms", room_id)
            pipe.execute()
        except self._error:
            log.warning("presence not recorded: redis is unreachable")

    def _presence_remove(self, room_id: int, membership_id: int, conn_id: str) -> None:
        try:
            self.redis.zrem(self._key(room_id), f"{membership_id}:{conn_id}")
        except self._error:
            log.warning("presence not removed: redis is unreachable (the entry expires)")

    def _expire_presence(self) -> list[int]:
        changed = []
        now = time.time()
        rooms_key = f"{CHANNEL_PREFIX}presence-rooms"
        for raw in self.redis.smembers(rooms_key):
            room_id = int(raw)
            key = self._key(room_id)
            if self.redis.zremrangebyscore(key, "-inf", now):
                changed.append(room_id)
            if not self.redis.exists(key):
                self.redis.srem(rooms_key, room_id)
        return changed

    def claim(self, key: str, ttl: float) -> bool:
        try:
            return bool(self.redis.set(f"{CHANNEL_PREFIX}claim:{key}", 1, nx=True, px=int(ttl * 1000)))
        except self._error:
            return True  # typing signals are harmless; do not fail the request over them

    def close(self) -> None:
        self._closed = True
        if self._listener_pubsub is not None:
            with contextlib.suppress(Exception):
                self._listener_pubsub.close()
        self.redis.close()


def init_app(app: Flask) -> None:
    """Attach a broker to ``app``: Redis when ``REDIS_URL`` is set, else the in-process one."""
    ttl = app.config["PRESENCE_TTL_SECONDS"]
    broker: Broker
    if app.config.get("REDIS_URL"):
        broker = RedisBroker(app.config["REDIS_URL"], presence_ttl=ttl)
    else:
        broker = MemoryBroker(presence_ttl=ttl)
        log.info("REDIS_URL is not set: using the in-process broker (one process only)")

    def presence_changed(room_id: int) -> None:
        from .services import announce_presence_by_id

        with app.app_context():
            announce_presence_by_id(room_id)

    broker.on_presence_changed = presence_changed
    app.extensions["chatroom.broker"] = broker
