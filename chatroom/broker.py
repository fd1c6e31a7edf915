"""Fan-out of room events to live streams, and nothing else.

Services publish an :class:`~chatroom.events.Event` (already rendered and framed as
SSE bytes) on a room's channel *after* they commit; every stream on every process that
watches the room gets those same bytes. Two implementations share one interface:

``MemoryBroker``
    The embedded default: one process, a dict of local queues.

``RedisBroker``
    One pub/sub connection and one listener thread (a greenlet under gevent) per
    process, pattern-subscribed to every room channel (read by ``chatroom/pubsub.py``), fanning each message out to the
    in-process queue of every local stream of that room. Never one Redis connection per
    browser. Redis pub/sub is at most once: a publish during a Redis blip is lost for
    live listeners, so when the listener reconnects it hands every local stream a
    ``resync`` event and the streams re-read the database (see ``chatroom/stream_protocol.py``).
    A publish that fails is delivered locally at once and, for the durable kinds
    (``chatroom.events.DURABLE_KINDS``), published again in order once Redis is back.

    Publishing happens inside requests (a post answers after its publish), so it has a
    client of its own with a sub-second timeout (``REDIS_TIMEOUT_SECONDS``) behind a
    circuit breaker (``chatroom/breaker.py``): a Redis that hangs rather than refuses (a
    paused process, a frozen host) costs one request one short timeout, and for the next
    ``REDIS_COOLDOWN_SECONDS`` publishes skip Redis at once (local delivery, durable
    events kept for the retrier). The listener has its own client and longer timeouts: it
    runs in the background and waits on purpose.

Two kinds of receiver. A *subscription* is one stream's own inbox (a queue it drains): the
portable path, used where the stream view runs as a plain WSGI generator (the Flask test
client, any non-gevent server). A *sink* is one callable per channel per process, called
synchronously with each event as it arrives: the room's writer (``chatroom/fanout.py``),
which writes the event's bytes to every socket of the room without a queue or a greenlet
switch per stream. A sink must not block; an exception in one is logged, never fatal to
the listener.

Who is here and who is typing live in ``chatroom/presence.py``, above this module.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from flask import Flask, current_app

from .breaker import Breaker
from .events import RESYNC, Event, EventKind
from .pubsub import PatternSubscription, Publisher

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "chatroom:"
QUEUE_LIMIT = 2000  # a stream this far behind re-reads the database instead
# The listener pings a Redis quiet this long (redis-py's health check did too), and gives up after twice it:
# long enough that a Redis busy for seconds (a fork, a slow command) does not make every stream resync.
LISTENER_IDLE_SECONDS = 10.0

Sink = Callable[[Event], None]


@dataclass(eq=False)
class Subscription:
    """One stream's inbox: a local queue the broker fills and the stream drains."""

    channel: str
    _unsubscribe: Callable[[Subscription], None]
    _queue: queue.Queue[Event] = field(default_factory=queue.Queue)
    _overflowed: bool = False
    resync_at: float = 0.0  # monotonic: when this inbox last overflowed (it lost what came before)

    def put(self, event: Event) -> None:
        """Queue ``event``; a stream ``QUEUE_LIMIT`` events behind gets one ``resync`` instead of more."""
        if self._queue.qsize() >= QUEUE_LIMIT:
            # A stuck client must not grow memory without bound: drop what it has
            # not read and let it catch up from the database when it wakes.
            if not self._overflowed:
                self._overflowed = True
                self.resync_at = time.monotonic()
                self._drain()
                self._queue.put(RESYNC)
            return
        self._queue.put(event)

    def get(self, timeout: float) -> Event | None:
        """The next event, waiting up to ``timeout`` seconds; None when none came."""
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
        """Stop receiving: the broker forgets this inbox."""
        self._unsubscribe(self)


class Broker:
    """The interface the services and the stream view use; see the module docstring."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._sinks: dict[str, Sink] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.resynced_at = 0.0  # monotonic: when the listener last came back (what came before may be lost)

    def publish(self, channel: str, event: Event) -> None:
        """Hand ``event`` to every subscriber of ``channel`` in every process. Call after the commit it reports."""
        raise NotImplementedError

    def subscribe(self, channel: str) -> Subscription:
        """A new inbox for ``channel``; close it when the stream ends."""
        sub = Subscription(channel, self._unsubscribe)
        with self._lock:
            self._subs[channel].add(sub)
        self._started()
        return sub

    def attach(self, channel: str, sink: Sink) -> None:
        """Call ``sink(event)`` with every event of ``channel`` in this process, as it arrives (module docstring).

        One sink per channel per process. :raise ValueError: the channel already has one.
        """
        with self._lock:
            if channel in self._sinks:
                raise ValueError(f"{channel} already has a sink in this process")
            self._sinks[channel] = sink
        self._started()

    def detach(self, channel: str, sink: Sink) -> None:
        """Stop calling ``sink`` (a no-op when it is not the channel's sink)."""
        with self._lock:
            if self._sinks.get(channel) == sink:  # equal, not identical: a bound method is made anew each time
                del self._sinks[channel]

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
            sink = self._sinks.get(channel)
        for sub in subs:
            sub.put(event)
        if sink is not None:
            _call(sink, event)

    def _deliver_all(self, event: Event) -> None:
        if event.kind == EventKind.RESYNC:
            self.resynced_at = time.monotonic()
        with self._lock:
            subs = [s for group in self._subs.values() for s in group]
            sinks = list(self._sinks.values())
        for sub in subs:
            sub.put(event)
        for sink in sinks:
            _call(sink, event)

    def local_stream_count(self) -> int:
        """How many inboxes this process holds (open streams on the portable path)."""
        with self._lock:
            return sum(len(s) for s in self._subs.values())

    def _started(self) -> None:
        """Hook: start background work lazily, on the first subscriber of a process."""

    def close(self) -> None:
        """Stop background work and release connections (tests build many apps)."""
        self._closed = True


def _call(sink: Sink, event: Event) -> None:
    try:
        sink(event)
    except Exception:  # one room's writer must not take the listener (and every other room) down
        log.exception("a stream sink failed on a %s event", event.kind)


class MemoryBroker(Broker):
    """The embedded, single-process broker."""

    def publish(self, channel: str, event: Event) -> None:
        """Deliver to this process's subscribers at once."""
        self._deliver(channel, event)


class RedisBroker(Broker):
    """Redis pub/sub fan-out, shared by every process and instance."""

    PENDING_LIMIT = 10_000

    def __init__(self, url: str, timeout: float = 0.5, cooldown: float = 5.0) -> None:
        """Connect lazily to ``url``; a publish waits at most ``timeout`` s, then skips Redis for ``cooldown`` s."""
        import redis as redis_lib

        super().__init__()
        # The listener's client (and the one the test suite flushes): it waits on purpose, in the background;
        # redis-py only connects it, chatroom/pubsub.py reads it and pings it when quiet (LISTENER_IDLE_SECONDS),
        # so redis-py's own health check has nothing left to do here. RESP2 on the broker's two clients: pub/sub
        # and PUBLISH need nothing RESP3 adds.
        self.redis: redis.Redis = redis_lib.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, protocol=2)
        # The publisher's: called inside requests, so it gives up quickly (module docstring). redis-py connects
        # it; chatroom/pubsub.py writes each PUBLISH and reads its answer (every post pays for this write).
        self._publishing: redis.Redis = redis_lib.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, protocol=2
        )
        self.publisher = Publisher(self._publishing)
        self.breaker = Breaker(cooldown)
        self._listener: threading.Thread | None = None
        self._subscription: PatternSubscription | None = None
        self._pending: deque[tuple[str, Event]] = deque(maxlen=self.PENDING_LIMIT)
        self._retrier: threading.Thread | None = None
        self.connected = threading.Event()

    def publish(self, channel: str, event: Event) -> None:
        """Publish through Redis; while Redis is away, deliver locally and keep durable events to publish again.

        Never waits longer than one short timeout (``timeout``), and not at all while the
        breaker is open. Once anything waits to be published again, later durable events
        queue behind it, so other processes receive them in the order they happened.
        """
        if (self._pending and event.durable) or self.breaker.open:
            self._fall_back(channel, event)
            return
        try:
            self.publisher.publish(CHANNEL_PREFIX + channel, event.encode())
        except Exception:  # RedisError, or a client torn down under us: the commit stands either way
            self.breaker.failed()
            log.warning("redis publish failed; delivering locally and retrying", exc_info=True)
            self._fall_back(channel, event)
        else:
            self.breaker.succeeded()

    def _fall_back(self, channel: str, event: Event) -> None:
        # Already committed. Our own streams get it now; the other processes get it when
        # Redis is back (published again, or re-read from the database when their
        # listener reconnects). Streams drop what they already sent (a publish that timed
        # out may have reached Redis after all).
        self._deliver(channel, event)
        if event.durable:
            self._keep(channel, event)

    def _keep(self, channel: str, event: Event) -> None:
        self._pending.append((channel, event))
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
                    self.publisher.publish(CHANNEL_PREFIX + channel, event.encode())
                    self._pending.popleft()
                    self.breaker.succeeded()
                delay = 0.2
            except Exception:
                # Besides RedisError: redis-py raises AttributeError when close() disconnects
                # the pool under a publish in flight. Closed means done; otherwise try again later.
                if self._closed:
                    return
                log.warning("redis publish retry failed; trying again", exc_info=True)
                self.breaker.failed()
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
        prefix = len(CHANNEL_PREFIX)
        while not self._closed:
            subscription: PatternSubscription | None = None
            try:
                subscription = PatternSubscription(self.redis, CHANNEL_PREFIX + "room:*", LISTENER_IDLE_SECONDS)
                self._subscription = subscription
                if self._closed:  # close() ran while this one was connecting
                    break
                while not self._closed:
                    for frame in subscription.read():
                        kind = frame[0]
                        if kind == b"pmessage":
                            channel, data = cast(bytes, frame[2]), cast(bytes, frame[3])  # ["pmessage", pattern, …]
                            self._deliver(channel[prefix:].decode(), Event.decode(data))
                        elif kind == b"psubscribe":
                            self.connected.set()
                            delay = 0.1
                            if not first:
                                log.info("redis listener reconnected; streams re-check the database")
                                self._deliver_all(RESYNC)
                            first = False
            except Exception:
                if self._closed:
                    break
                self.connected.clear()
                log.warning("redis listener lost its connection; retrying in %.1fs", delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                if subscription is not None:
                    subscription.close()
        # Closed. The pool may still hold a connection a retry made while close() ran; that socket is
        # closed here, by the thread that made it, rather than left to the garbage collector.
        with contextlib.suppress(Exception):
            self.redis.connection_pool.disconnect()

    def close(self) -> None:
        """Stop the listener and close the connection pool."""
        self._closed = True
        if self._subscription is not None:
            self._subscription.close()
        self.redis.close()
        self.publisher.close()
        self._publishing.close()


def init_app(app: Flask) -> Broker:
    """Attach a broker to ``app``: Redis when ``REDIS_URL`` is set, else the in-process one."""
    broker: Broker
    if app.config.get("REDIS_URL"):
        timeout = app.config.get("REDIS_TIMEOUT_SECONDS", 0.5)
        broker = RedisBroker(app.config["REDIS_URL"], timeout, app.config.get("REDIS_COOLDOWN_SECONDS", 5.0))
    else:
        broker = MemoryBroker()
        log.info("REDIS_URL is not set: using the in-process broker (one process only)")
    app.extensions["chatroom.broker"] = broker
    return broker


def current_broker() -> Broker:
    """The broker of the app handling this request (or CLI command)."""
    return current_app.extensions["chatroom.broker"]
