"""The app as the suite builds it: its configuration, an empty database between tests, and a faster variant
for the table-driven modules that build hundreds of small worlds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, text

from chatroom import create_app
from chatroom.extensions import db
from config import TestConfig

# Every table, children first (SQLite deletes in this order; PostgreSQL truncates them together).
TABLES = [
    "audit_events",
    "reports",
    "reactions",
    "votes",
    "notes",
    "messages",
    "memberships",
    "rooms",
    "recovery_codes",
    "pending_secrets",
    "api_tokens",
    "invitations",
    "settings",
    "login_sessions",
    "facilitators",
]


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


def close_app(app: Flask) -> None:
    """Give back what an app built by a test holds: its pooled database connections, and its broker's and
    presence's threads and Redis connections."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    app.extensions["chatroom.broker"].close()
    app.extensions["chatroom.presence"].close()


def fast_app(database_url: str, redis_url: str | None) -> Flask:
    """An app for many small worlds: on SQLite, commits skip fsync (a throwaway database; ~20x faster here)."""
    app = create_app(make_config(database_url, redis_url))
    with app.app_context():
        if db.engine.dialect.name == "sqlite":

            @event.listens_for(db.engine, "connect")
            def _no_fsync(connection: Any, record: Any) -> None:
                connection.execute("PRAGMA synchronous = OFF")
                connection.execute("PRAGMA journal_mode = MEMORY")

    return app


def fast_app_fixture() -> Any:
    """A module-scoped fixture serving one ``fast_app`` to every test of a module, closed after them.

    Assign it to a name in the test module (``matrix_app = fast_app_fixture()``): that name is the fixture.
    """

    @pytest.fixture(scope="module")
    def fixture(_schema: None, database_url: str, redis_url: str | None) -> Iterator[Flask]:
        app = fast_app(database_url, redis_url)
        yield app
        close_app(app)

    return fixture
