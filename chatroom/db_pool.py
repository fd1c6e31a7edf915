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

A request whose writes are each one statement can also skip ``BEGIN`` and ``COMMIT``, two round trips
more (psycopg2 sends ``BEGIN`` on its own before the first statement of a transaction): ``autocommit``
lets each statement on the session's connection commit by itself, until the connection goes back to the
pool, which turns it off again on the way in. A participant's common post is then one round trip, a
statement that checks and inserts at once; any other post two more, the room and seat, and the insert that
takes the next ``seq`` (``chatroom/services/messages.py``).
"""

from __future__ import annotations

import _socket  # the C socket module: never monkey-patched, so recv() is one system call
import time
from typing import Any

from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, scoped_session

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
    _reset_autocommit_on_checkin(engine)


def autocommit(session: Session | scoped_session[Any]) -> bool:
    """From now until its connection goes back to the pool, each statement ``session`` sends commits by
    itself: no ``BEGIN`` and no ``COMMIT`` round trip (psycopg2's ``autocommit``). Returns whether it did.

    Only for code whose writes are each one statement, so that no rollback is ever needed to undo half
    of one (a post: ``chatroom/chat.py``), and which expects nothing after a write to undo it: a write is
    committed when its statement ends, whatever fails later in the request. Under PostgreSQL's default
    READ COMMITTED each statement of a transaction sees its own snapshot anyway, so reads mean what they
    meant. Nothing changes (False) on another database, or once the session's transaction has sent a
    statement (it must commit as a whole).
    """
    connection = session.connection()
    raw = connection.connection.dbapi_connection
    if connection.dialect.name != "postgresql" or raw is None:
        return False
    if raw.get_transaction_status() != TRANSACTION_STATUS_IDLE:  # a statement has begun a transaction
        return False
    _reset_autocommit_on_checkin(connection.engine)
    raw.autocommit = True  # psycopg2 keeps this on the client: no round trip
    return True


def _autocommit_off(dbapi_connection: Any, record: Any) -> None:
    if getattr(dbapi_connection, "autocommit", False):
        try:
            dbapi_connection.autocommit = False  # client-side again; the next user gets transactions as usual
        except Exception:  # closed under us: a connection psycopg2 cannot set is one the pool replaces
            record.invalidate()


def _reset_autocommit_on_checkin(engine: Engine) -> None:
    """Make sure ``engine``'s pool turns ``autocommit`` off on every connection that comes back."""
    if not event.contains(engine, "checkin", _autocommit_off):
        event.listen(engine, "checkin", _autocommit_off)


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
