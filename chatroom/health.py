"""Readiness checks for ``/readyz``: can this process reach its database and Redis right now?

Each check is one cheap round trip with a short timeout (a probe must answer quickly
even when a service hangs). The Redis client is made once per app, with its own small
pool, apart from the broker's and the limiter's, so a probe measures Redis itself.

PostgreSQL gets the same treatment: a hung server (a paused process, a frozen host) does
not refuse, it accepts the connection and never answers, and a probe through the app's
pool waited for it until the kernel gave up (about 150 s) and then said ``ok``. So the
probe opens a connection of its own (an engine without a pool: one connection per probe,
closed after it, never one of the requests' connections), bounded three ways:

- ``connect_timeout`` (libpq's own, for a plain blocking connection);
- ``SET LOCAL statement_timeout``, for a server that is up but too slow (it cancels the
  query itself);
- under gevent (the production worker), psycopg2 waits through psycogreen's callback,
  where libpq ignores ``connect_timeout`` and a paused server cancels nothing: a
  ``gevent.Timeout`` ends the wait, and psycopg2 marks the connection broken, so closing
  it needs no answer from the server.

SQLite is a file: its check is the plain ``SELECT 1`` through the app's session.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator

from flask import current_app
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from .extensions import db

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 2.0


class _TooLate(Exception):
    """The probe's deadline passed (raised by ``gevent.Timeout`` inside psycopg2's wait)."""


def check_database() -> str:
    """``ok`` if the database answers ``SELECT 1`` within ``TIMEOUT_SECONDS``, else ``unreachable`` (logged)."""
    if db.engine.dialect.name == "postgresql":
        return _check_postgresql()
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except Exception:
        log.warning("readiness: the database does not answer", exc_info=True)
        db.session.rollback()
        return "unreachable"
    finally:
        db.session.remove()  # give the connection back at once: probes come every few seconds


def _probe_engine() -> Engine:
    """The probe's own engine on the app's database URL: no pool, a connect timeout (module docstring)."""
    engine = current_app.extensions.get("chatroom.health_db")
    if engine is None:
        engine = create_engine(
            db.engine.url,
            poolclass=NullPool,
            connect_args={"connect_timeout": max(2, math.ceil(TIMEOUT_SECONDS))},  # libpq's minimum is 2
        )
        current_app.extensions["chatroom.health_db"] = engine
    return engine


def _check_postgresql() -> str:
    try:
        with _deadline(TIMEOUT_SECONDS), _probe_engine().begin() as conn:
            conn.execute(text(f"SET LOCAL statement_timeout = {int(TIMEOUT_SECONDS * 1000)}"))
            conn.execute(text("SELECT 1"))
        return "ok"
    except _TooLate:
        log.warning("readiness: the database did not answer within %.1f s", TIMEOUT_SECONDS)
        return "unreachable"
    except Exception:
        log.warning("readiness: the database does not answer", exc_info=True)
        return "unreachable"


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`_TooLate` after ``seconds`` when psycopg2 waits through gevent (else libpq's timeouts hold)."""
    import psycopg2.extensions

    if psycopg2.extensions.get_wait_callback() is None:
        yield
        return
    import gevent

    with gevent.Timeout(seconds, _TooLate):
        yield


def check_redis() -> str:
    """``ok`` if Redis answers PING, ``not configured`` without ``REDIS_URL``, else ``unreachable`` (logged)."""
    url = current_app.config.get("REDIS_URL")
    if not url:
        return "not configured"
    client = current_app.extensions.get("chatroom.health_redis")
    if client is None:
        import redis

        client = redis.Redis.from_url(
            url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS, max_connections=4
        )
        current_app.extensions["chatroom.health_redis"] = client
    try:
        client.ping()
        return "ok"
    except Exception:
        log.warning("readiness: Redis does not answer", exc_info=True)
        return "unreachable"


def health_checks() -> dict[str, str]:
    """Every check by name: ``database`` and ``redis``."""
    return {"database": check_database(), "redis": check_redis()}
