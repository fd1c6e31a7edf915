"""The app as the suite builds it: its configuration, and an empty database between tests."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import text

from chatroom.extensions import db
from config import TestConfig

# Every table, children first (SQLite deletes in this order; PostgreSQL truncates them together).
TABLES = ["audit_events", "reports", "messages", "memberships", "rooms", "recovery_codes", "facilitators"]


def make_config(database_url: str, redis_url: str | None, **overrides: Any) -> type[TestConfig]:
    """A ``TestConfig`` subclass on this database and Redis (``None``: the in-process broker), plus ``overrides``."""
    attrs = {"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url, **overrides}
    return type("SuiteConfig", (TestConfig,), attrs)


def empty_database(app: Flask) -> None:
    """Delete every row (identities restart on PostgreSQL) and flush Redis; call inside an app context."""
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))
    broker = app.extensions["chatroom.broker"]
    if hasattr(broker, "redis"):
        broker.redis.flushdb()
