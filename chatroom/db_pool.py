"""Whether a pooled PostgreSQL connection is still there, asked at each checkout without a round trip.

SQLAlchemy's ``pool_pre_ping`` asks with a ``SELECT 1`` at every checkout: one round trip more on every
request (a post made five: ping, BEGIN, the room and seat, the insert, COMMIT). Yet a server that restarts,
fails over or ends an idle session hangs up first (FIN or RST, perhaps after an error message), and the
kernel keeps that on the socket. So a checkout looks there instead (one ``recv`` with ``MSG_PEEK`` and
``MSG_DONTWAIT``, answered by the kernel alone):

- nothing to read: the server has said nothing, as it should to an idle connection; use it;
- the end of the stream, or a reset: it hung up; the pool drops the connection and opens another
  (a checkout refused with ``DisconnectionError`` is retried on a new one);
- bytes waiting (an error before a hang-up, a notice): the real ping decides. This is the usual way out: a
  server that shuts down, restarts or ends a session (``pg_terminate_backend``, ``idle_session_timeout``) sends
  a FATAL message before it hangs up; only a backend that dies outright, or a proxy between, just hangs up.

A connection idle longer than ``PING_AFTER_IDLE_SECONDS`` gets the real ping anyway: a NAT or firewall
that forgets an idle flow says nothing until the next packet, which it answers with a reset (their idle
timeouts are minutes; 60 s stays well inside them). On a busy server connections go back and forth in
milliseconds, so a request pays no round trip for this. A path that dies silently defeats a ping too:
the query fails, SQLAlchemy invalidates the pool and the request gets the 503 of ``chatroom/errors.py``.
"""

from __future__ import annotations

import _socket  # the C socket module: never monkey-patched, so recv() is one system call
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

PING_AFTER_IDLE_SECONDS = 60.0
_RETURNED = "chatroom.returned_at"  # monotonic seconds, in the pool record's info: when it was checked in


def watch(engine: Engine) -> None:
    """Check each PostgreSQL connection as it leaves ``engine``'s pool (module docstring); others are left alone.

    Replaces ``pool_pre_ping`` for this engine (if both are on, the pre-ping runs first, as SQLAlchemy does).
    """
    if engine.dialect.name != "postgresql":
        return
    dialect = engine.dialect

    def checkin(dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned = record.info.get(_RETURNED)
        if returned is None:  # new from connect(): nothing to ask yet
            return
        try:
            state = peek(dbapi_connection.fileno())
        except dialect.loaded_dbapi.Error:  # psycopg2 closed it already
            state = "closed"
        if state == "open" and time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
            return
        if state == "closed":
            raise DisconnectionError("the database closed this connection")
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            raise DisconnectionError("the database did not answer a ping on this connection") from error

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)


def peek(fd: int) -> str:
    """What the socket ``fd`` holds for an idle client, by the kernel alone: ``"open"`` (nothing to read),
    ``"closed"`` (end of stream, reset, or not a socket) or ``"unread"`` (bytes the server sent unasked)."""
    try:
        sock = _socket.socket(fileno=fd)
    except (OSError, ValueError):  # ValueError: -1, what libpq reports once it has dropped the socket
        return "closed"
    try:
        sock.settimeout(0.0)  # never socket.getdefaulttimeout(): a timeout would make recv wait, holding the worker
        data = sock.recv(1, _socket.MSG_PEEK | _socket.MSG_DONTWAIT)
    except BlockingIOError:
        return "open"
    except OSError:
        return "closed"
    finally:
        sock.detach()  # the descriptor stays psycopg2's
    return "unread" if data else "closed"
