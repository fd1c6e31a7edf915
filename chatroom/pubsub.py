"""The broker's hot read and hot write: one Redis pattern subscription whose replies we parse ourselves, and
``PUBLISH`` sent and answered the same way (:class:`Publisher`, at the end).

Every process wakes once per room event to read it from Redis, so this read is paid by every
worker for every message. redis-py's ``PubSub.get_message`` gets there through its connection,
parser, socket-buffer and message-handler layers. On a host whose caches go cold between
events, the listener cost about 350 µs of CPU per event that way, and about 250 µs with this
reader, which only knows pub/sub frames (``docs/benchmarks.md``, 2026-12-01 evening).

Who does what:

- redis-py still makes the connection: TCP or TLS, ``AUTH``, ``SELECT`` and its handshake
  (``ConnectionPool.get_connection``), so every ``redis://`` and ``rediss://`` URL it accepts works.
- From the ``PSUBSCRIBE`` on, :class:`PatternSubscription` writes that socket and reads it.
- :class:`FrameReader` turns the bytes into frames. A subscribed connection only ever
  receives arrays of bulk strings and integers (the subscribe confirmation, each message, the
  answer to a ``PING``) or an error. That is the subset of the Redis serialization protocol
  parsed here (its specification, "RESP protocol description"): RESP2, which the broker's
  clients speak, and the two forms RESP3 sends instead (the same items as a push, ``>``, and
  ``+PONG``). Anything else is a :class:`ProtocolError`.

Nothing is lost by being strict. A connection that errs, closes or stays silent through a
``PING`` raises ``ConnectionError``. The broker then subscribes again, and every local stream
re-reads the database (``chatroom/broker.py``).
"""

from __future__ import annotations

import contextlib
import socket
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import redis
    from redis.connection import Connection

Frame = list[bytes | int]

RECV_BYTES = 65536
REPLY_BYTES = 64  # ":<subscriber count>\r\n" fits; a longer answer is an error message, read this far
MAX_BUFFERED_BYTES = 8 * 1024 * 1024  # an unfinished frame longer than this is not one of ours
PING = b"*1\r\n$4\r\nPING\r\n"
_CRLF = b"\r\n"
_ARRAY, _PUSH, _BULK, _INTEGER, _SIMPLE, _ERROR = 0x2A, 0x3E, 0x24, 0x3A, 0x2B, 0x2D  # "*", ">", "$", ":", "+", "-"


class ProtocolError(ConnectionError):
    """Bytes that are not a pub/sub frame, or an error reply: the connection cannot be trusted any further.

    ``frames``: the good frames that came before the bad bytes in the same ``feed``, still to be handled.
    """

    def __init__(self, message: str, frames: list[Frame] | None = None) -> None:
        """``message`` says what was wrong; ``frames`` as above (none by default)."""
        super().__init__(message)
        self.frames: list[Frame] = frames or []


class FrameReader:
    """Incremental parser for a subscribed connection's replies (RESP2, and RESP3's two other forms of them).

    ``feed`` takes whatever ``recv`` returned and gives back the frames it completed, in order;
    an unfinished frame waits for the next ``feed``. A frame is the list of its items: ``bytes``
    for a bulk string, ``int`` for an integer.
    """

    def __init__(self, limit: int = MAX_BUFFERED_BYTES) -> None:
        """``limit``: bytes an unfinished frame may hold before it is refused (:class:`ProtocolError`)."""
        self._rest = b""
        self._limit = limit

    def feed(self, data: bytes) -> list[Frame]:
        """The frames ``data`` completes, oldest first (often exactly one).

        :raise ProtocolError: an error reply (``-ERR …``), anything but an array of bulk strings and
            integers (an empty one included), a malformed length, or an unfinished frame longer than
            ``limit`` bytes. The frames completed before the bad bytes are on the error (``frames``).
        """
        buf = self._rest + data if self._rest else data
        frames: list[Frame] = []
        pos, end = 0, len(buf)
        while pos < end:
            try:
                frame, after = _frame(buf, pos)
            except ProtocolError as error:
                raise ProtocolError(str(error), frames) from None
            if frame is None:
                break
            frames.append(frame)
            pos = after
        self._rest = buf[pos:] if pos < end else b""
        if len(self._rest) > self._limit:
            raise ProtocolError(f"an unfinished reply of more than {self._limit} bytes")
        return frames


def _frame(buf: bytes, pos: int) -> tuple[Frame | None, int]:
    """The frame starting at ``pos`` and the offset after it, or (None, pos) while it is incomplete."""
    head = buf.find(_CRLF, pos)
    if head < 0:
        return None, pos
    kind = buf[pos]
    if kind == _ERROR:
        raise ProtocolError("Redis answered with an error: " + buf[pos + 1 : head].decode(errors="replace"))
    if kind == _SIMPLE:  # RESP3 answers a PING on a subscribed connection so: a frame of one item
        return [buf[pos + 1 : head]], head + 2
    if kind != _ARRAY and kind != _PUSH:
        raise ProtocolError(f"a reply that is not an array: {buf[pos : pos + 40]!r}")
    count = _length(buf, pos + 1, head)
    if count == 0:
        raise ProtocolError("an empty array")
    items: Frame = []
    at = head + 2
    for _ in range(count):
        eol = buf.find(_CRLF, at)
        if eol < 0:
            return None, pos
        mark = buf[at]
        if mark == _BULK:
            start = eol + 2
            stop = start + _length(buf, at + 1, eol)
            if stop + 2 > len(buf):
                return None, pos
            if buf[stop : stop + 2] != _CRLF:
                raise ProtocolError("a bulk string longer than its stated length")
            items.append(buf[start:stop])
            at = stop + 2
        elif mark == _INTEGER:
            items.append(_integer(buf, at + 1, eol))
            at = eol + 2
        else:
            raise ProtocolError(f"an array item that is not a bulk string or an integer: {buf[at : at + 40]!r}")
    return items, at


def _integer(buf: bytes, start: int, stop: int) -> int:
    """An integer field: ASCII digits, perhaps after a minus sign, nothing else (Python's ``int`` alone would
    take spaces, ``+`` and ``_``)."""
    field = buf[start:stop]
    digits = field[1:] if field[:1] == b"-" else field
    if not digits.isdigit():
        raise ProtocolError(f"not a number: {field[:40]!r}")
    return int(field)


def _length(buf: bytes, start: int, stop: int) -> int:
    """A length field; null (-1) never reaches a subscribed connection, so it is refused like garbage."""
    length = _integer(buf, start, stop)
    if length < 0:
        raise ProtocolError(f"a null or negative length: {length}")
    return length


def _command(*parts: bytes) -> bytes:
    """One command in RESP2: an array of bulk strings."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)


class PatternSubscription:
    """One ``PSUBSCRIBE`` on a connection of its own, taken from ``client``'s pool.

    ``read`` blocks until Redis sends something and returns the frames that completed, the
    ``psubscribe`` confirmation first. After ``idle_seconds`` (seconds) without a byte it sends a
    ``PING``; if nothing comes within another ``idle_seconds``, the connection is dead (a host
    gone, a NAT that forgot the flow) and ``read`` raises ``ConnectionError``; so does a bad frame, after
    the good frames that came before it have been returned. ``close`` may be
    called from any thread or greenlet, also while another one waits in ``read``.
    """

    def __init__(self, client: redis.Redis, pattern: str, idle_seconds: float = 10.0) -> None:
        """Connect through ``client``'s pool and subscribe to ``pattern``.

        :raise redis.RedisError, OSError: Redis cannot be reached, or refused the handshake.
        """
        self._pool = client.connection_pool
        self._connection: Connection | None = self._pool.get_connection()
        self._reader = FrameReader()
        self._pinged = False
        self._broken: ProtocolError | None = None  # bad bytes came after good frames: raised on the next read
        try:
            self._sock = _socket_of(self._connection)
            self._sock.settimeout(idle_seconds)
            self._sock.sendall(_command(b"PSUBSCRIBE", pattern.encode()))
        except BaseException:
            self.close()
            raise

    def read(self) -> list[Frame]:
        """The next frames from Redis, at least one; waits as long as Redis is quiet and answers a ``PING``.

        :raise ConnectionError: closed (by Redis, the network or ``close``), no answer to a ``PING``,
            or bytes that are not a pub/sub frame (:class:`ProtocolError`).
        """
        if self._broken is not None:
            raise self._broken
        while True:
            try:
                data = self._sock.recv(RECV_BYTES)
            except TimeoutError:
                if self._pinged:
                    raise ConnectionError("Redis did not answer a PING") from None
                self._sock.sendall(PING)
                self._pinged = True
                continue
            except OSError as error:  # reset, or closed under us by close()
                raise ConnectionError(f"the pub/sub connection failed: {error}") from error
            if not data:
                raise ConnectionError("Redis closed the pub/sub connection")
            self._pinged = False
            try:
                frames = self._reader.feed(data)
            except ProtocolError as error:
                if not error.frames:
                    raise
                self._broken = error  # the good frames first; the connection is given up on the next read
                return error.frames
            if frames:
                return frames

    def close(self) -> None:
        """Disconnect (waking a ``read`` in progress) and give the connection back to the pool; idempotent."""
        connection, self._connection = self._connection, None
        if connection is not None:
            _give_back(self._pool, connection)


def _socket_of(connection: Connection) -> socket.socket:
    """redis-py's connected socket; private, so ``tests/test_pubsub.py`` checks it is still where we read it.

    :raise ConnectionError: the connection has none.
    """
    sock = getattr(connection, "_sock", None)
    if sock is None:
        raise ConnectionError("redis-py returned a connection without a socket")
    return cast("socket.socket", sock)


def _give_back(pool: redis.ConnectionPool, connection: Connection) -> None:
    """Disconnect ``connection`` and return it to ``pool``; whatever state it is in, nothing is raised."""
    with contextlib.suppress(Exception):  # already broken: nothing left to close cleanly
        connection.disconnect()
    with contextlib.suppress(Exception):
        pool.release(connection)


class Publisher:
    """``PUBLISH`` written and read here, over connections opened by ``client``'s pool (redis-py: TCP or TLS,
    ``AUTH``, ``SELECT``, the handshake), kept between publishes, the last used first.

    Every post publishes once, on a host where code goes cold between posts: redis-py's ``publish`` cost
    about 410 µs of CPU there, against about 150 µs for the same round trip written and read directly
    (``docs/benchmarks.md``, 2026-12-01, night). The reply to ``PUBLISH`` is one integer (RESP2 and RESP3 alike).
    A connection that fails, or answers anything else, is closed and dropped. When the one that failed had
    been kept idle, and it failed for another reason than a timeout (Redis restarted meanwhile, say), the
    publish is tried once more on a new connection, as redis-py would; a timeout is not waited out twice.
    Safe to share between threads and greenlets: a connection is used by one publish at a time.
    """

    def __init__(self, client: redis.Redis) -> None:
        """Publish through ``client``'s pool, whose socket timeout bounds each wait (seconds)."""
        self._pool = client.connection_pool
        self._idle: list[Connection] = []
        self._closed = False

    def publish(self, channel: str, message: bytes) -> int:
        """Publish ``message`` on ``channel``; returns how many subscribers Redis handed it to.

        :raise ConnectionError: Redis closed the connection, or answered with an error or anything but an
            integer (:class:`ProtocolError`). :raise TimeoutError: no answer within the socket timeout.
        :raise redis.RedisError: the pool could not connect, authenticate or answer in time on a new
            connection (redis-py's ``ConnectionError`` and ``TimeoutError``). The broker catches them all.
        """
        command = _command(b"PUBLISH", channel.encode(), message)
        try:
            kept = self._idle.pop()
        except IndexError:
            pass
        else:
            try:
                return self._round_trip(kept, command)
            except TimeoutError:
                raise
            except ConnectionError:  # perhaps only gone stale while idle: once more on a fresh connection
                pass
        return self._round_trip(self._pool.get_connection(), command)

    def _round_trip(self, connection: Connection, command: bytes) -> int:
        try:
            sock = _socket_of(connection)
            sock.sendall(command)
            reply = b""
            while not reply.endswith(_CRLF) and len(reply) < REPLY_BYTES:
                data = sock.recv(REPLY_BYTES)
                if not data:
                    raise ConnectionError("Redis closed the connection")
                reply += data
            if reply[:1] != b":" or not reply.endswith(_CRLF):
                raise ProtocolError("not an answer to PUBLISH: " + reply[:REPLY_BYTES].decode(errors="replace"))
            count = _integer(reply, 1, len(reply) - 2)
        except BaseException as error:
            _give_back(self._pool, connection)
            if isinstance(error, OSError) and not isinstance(error, ConnectionError | TimeoutError):
                raise ConnectionError(f"the publish failed: {error}") from error
            raise
        if self._closed:
            _give_back(self._pool, connection)
        else:
            self._idle.append(connection)
        return count

    def close(self) -> None:
        """Close the idle connections; a publish in flight closes its own when it ends. Idempotent."""
        self._closed = True
        while self._idle:
            _give_back(self._pool, self._idle.pop())
