"""Readiness checks for ``/readyz``: can this process reach its database and Redis right now?

Each check is one cheap round trip with a short timeout (a probe must answer quickly
even when a service hangs). The Redis client is made once per app, with its own small
pool, apart from the broker's and the limiter's, so a probe measures Redis itself.
"""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import text

from .extensions import db

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 2.0


def check_database() -> str:
    """``ok`` if the database answers ``SELECT 1``, else ``unreachable`` (logged)."""
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except Exception:
        log.warning("readiness: the database does not answer", exc_info=True)
        db.session.rollback()
        return "unreachable"
    finally:
        db.session.remove()  # give the connection back at once: probes come every few seconds


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
