"""Fixtures: an app on the configured backend, clients that speak CSRF, and small factories.

The suite runs twice (tests/run.sh): on real PostgreSQL + Redis
(``CHATROOM_BACKEND=services``) and on the embedded default
(``CHATROOM_BACKEND=embedded``: SQLite + the in-process broker). With
``CHATROOM_REQUIRE_SERVICES=1`` an unreachable service fails the run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from chatroom import create_app
from chatroom.extensions import db as _db
from chatroom.models import Facilitator, Membership, Room, utcnow
from chatroom.services import accounts, members, rooms
from config import TestConfig
from config import database_url as normalise_database_url

PASSWORD = "correct horse battery"
ROOM_PASSWORD = "open sesame"

BACKEND = os.environ.get("CHATROOM_BACKEND") or ("services" if os.environ.get("DATABASE_URL") else "embedded")
REQUIRE = os.environ.get("CHATROOM_REQUIRE_SERVICES") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if BACKEND == "services":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL and Redis: run through tests/run.sh")
    for item in items:
        if "services" in item.keywords:
            if REQUIRE and not config.getoption("-m"):
                raise pytest.UsageError("CHATROOM_REQUIRE_SERVICES=1 but no DATABASE_URL: run make test")
            item.add_marker(skip)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if BACKEND == "services":
        url = os.environ.get("DATABASE_URL")
        if not url or not os.environ.get("REDIS_URL"):
            pytest.fail("CHATROOM_BACKEND=services needs DATABASE_URL and REDIS_URL (tests/run.sh sets them)")
        return normalise_database_url(url)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'chatroom.sqlite3'}"


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    return os.environ.get("REDIS_URL") if BACKEND == "services" else None


def make_config(database_url: str, redis_url: str | None, **overrides: Any) -> type[TestConfig]:
    attrs = {"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url, **overrides}
    return type("SuiteConfig", (TestConfig,), attrs)


@pytest.fixture(scope="session")
def _schema(database_url: str, redis_url: str | None) -> None:
    """Build the schema once, through the migrations (so they are tested on every run)."""
    from flask_migrate import upgrade

    app = create_app(make_config(database_url, redis_url))
    with app.app_context():
        try:
            with _db.engine.begin() as conn:
                if _db.engine.dialect.name == "postgresql":
                    conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        except Exception as error:
            pytest.fail(f"cannot reach the test database {database_url}: {error}")
        upgrade()
        _db.engine.dispose()
    app.extensions["chatroom.broker"].close()
    app.extensions["chatroom.presence"].close()


TABLES = ["audit_events", "reports", "messages", "memberships", "rooms", "recovery_codes", "facilitators"]


@pytest.fixture
def app(_schema: None, database_url: str, redis_url: str | None) -> Iterator[Flask]:
    app = create_app(make_config(database_url, redis_url))
    with app.app_context():
        _empty(app)
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()
    app.extensions["chatroom.broker"].close()
    app.extensions["chatroom.presence"].close()


def _empty(app: Flask) -> None:
    with _db.engine.begin() as conn:
        if _db.engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))
    broker = app.extensions["chatroom.broker"]
    if hasattr(broker, "redis"):
        broker.redis.flushdb()


@pytest.fixture
def broker(app: Flask) -> Any:
    return app.extensions["chatroom.broker"]


@pytest.fixture
def db(app: Flask) -> Iterator[Any]:
    with app.app_context():
        yield _db


class Client(FlaskClient):
    """A test client that reads its CSRF token from a page, as a browser form would carry it."""

    _csrf: str | None = None

    def csrf(self) -> str:
        if self._csrf is None:
            page = self.get("/login").get_data(as_text=True)
            self._csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        return self._csrf

    def form(self, url: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
        response = self.post(url, data={"csrf_token": self.csrf(), **(data or {})}, **kwargs)
        if url in ("/login", "/logout", "/signup"):
            self._csrf = None  # a new session comes with a new token
        return response

    def htmx(self, method: str, url: str, data: dict[str, str] | None = None) -> Any:
        headers = {"HX-Request": "true"}
        if method == "GET":
            return self.get(url, headers=headers)
        headers["X-CSRFToken"] = self.csrf()
        return self.open(url, method=method, data=data or {}, headers=headers)


@pytest.fixture
def client(app: Flask) -> Client:
    app.test_client_class = Client
    return app.test_client()


@pytest.fixture
def new_client(app: Flask) -> Any:
    def make() -> Client:
        app.test_client_class = Client
        return app.test_client()

    return make


# -- factories ----------------------------------------------------------------


@pytest.fixture
def make_facilitator(app: Flask) -> Any:
    count = iter(range(1, 10_000))

    def make(email: str | None = None, name: str = "Fran Facilitator", password: str = PASSWORD) -> Facilitator:
        with app.app_context():
            facilitator = accounts.sign_up(email or f"host{next(count)}@example.org", name, password)
            _db.session.refresh(facilitator)
            _db.session.expunge(facilitator)
            return facilitator

    return make


@pytest.fixture
def make_room(app: Flask, make_facilitator: Any) -> Any:
    def make(
        owner: Facilitator | None = None,
        title: str = "Workshop",
        starts_in: timedelta = timedelta(hours=-1),
        lasts: timedelta = timedelta(hours=2),
        password: str = ROOM_PASSWORD,
        timezone: str = "UTC",
    ) -> Room:
        owner = owner or make_facilitator()
        with app.app_context():
            start = utcnow() + starts_in
            owner_row = _db.session.get(Facilitator, owner.id)
            room = rooms.create(owner_row, rooms.RoomInput(title, start, start + lasts, timezone, password))
            _db.session.refresh(room)
            _db.session.expunge_all()
            return room

    return make


@pytest.fixture
def join(app: Flask) -> Any:
    """Join ``room`` through the real form with a new (or given) client; returns the client."""

    def do(room: Room, alias: str = "Pat", client: Client | None = None) -> Client:
        app.test_client_class = Client
        client = client or app.test_client()
        response = client.form(f"/r/{room.code}/join", {"alias": alias, "password": ROOM_PASSWORD})
        assert response.status_code == 303, response.get_data(as_text=True)
        return client

    return do


@pytest.fixture
def seat(app: Flask) -> Any:
    """A membership created directly through the service (no HTTP)."""

    def make(room: Room, alias: str = "Pat") -> Membership:
        with app.app_context():
            membership = members.join(_db.session.get(Room, room.id), alias, ROOM_PASSWORD)
            _db.session.refresh(membership)
            _db.session.expunge(membership)
            return membership

    return make


@pytest.fixture
def signed_in(app: Flask, make_facilitator: Any) -> Any:
    def do(facilitator: Facilitator | None = None) -> tuple[Client, Facilitator]:
        facilitator = facilitator or make_facilitator()
        app.test_client_class = Client
        client = app.test_client()
        response = client.form("/login", {"email": facilitator.email, "password": PASSWORD})
        assert response.status_code == 303
        return client, facilitator

    return do


def end_room(app: Flask, room: Room) -> None:
    """Move a running room's end into the past, as if its time ran out (it started 10 minutes ago)."""
    with app.app_context():
        row = _db.session.get(Room, room.id)
        row.ends_at = row.starts_at + timedelta(minutes=5)
        _db.session.commit()


def form_token(html: str) -> str:
    return re.search(r'name="token" value="([0-9a-f]{32})"', html).group(1)


ROOT = Path(__file__).resolve().parent.parent


# -- live servers -------------------------------------------------------------


@pytest.fixture
def servers(database_url, redis_url):
    from live import Server

    started: list[Server] = []

    def start(workers: int = 1, redis: str | None = "default", **env: str) -> Any:
        server = Server(database_url, redis_url if redis == "default" else redis, workers=workers, **env)
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()
