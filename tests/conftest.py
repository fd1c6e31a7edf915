"""Fixtures only: an app on the configured backend, clients that speak CSRF, and small factories.

Helpers that test modules import (constants, the client class, data shapers, live servers) live in
``tests/support/``; test modules never import from this file.

The suite runs twice (tests/run.sh): on real PostgreSQL + Redis
(``CHATROOM_BACKEND=services``) and on the embedded default
(``CHATROOM_BACKEND=embedded``: SQLite + the in-process broker). With
``CHATROOM_REQUIRE_SERVICES=1`` an unreachable service fails the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from chatroom import create_app
from chatroom.extensions import db as _db
from chatroom.models import Facilitator, Membership, Room, utcnow
from chatroom.services import accounts, members, rooms
from config import database_url as normalise_database_url
from support.app import close_app, empty_database, make_config
from support.clients import Client
from support.constants import BACKEND, PASSWORD, REQUIRE, ROOM_PASSWORD


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if BACKEND == "services":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL and Redis: run through tests/run.sh")
    for item in items:
        if "services" in item.keywords:
            if REQUIRE and not config.getoption("-m"):
                raise pytest.UsageError("CHATROOM_REQUIRE_SERVICES=1 but no DATABASE_URL: run make test")
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _server_logs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The live servers log into pytest's temporary folder (kept for the last few runs), not the checkout."""
    from support import live

    live.LOG_DIR = tmp_path_factory.mktemp("servers")


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


@pytest.fixture
def app(_schema: None, database_url: str, redis_url: str | None) -> Iterator[Flask]:
    app = create_app(make_config(database_url, redis_url))
    with app.app_context():
        empty_database(app)
    yield app
    close_app(app)


@pytest.fixture
def broker(app: Flask) -> Any:
    return app.extensions["chatroom.broker"]


@pytest.fixture
def db(app: Flask) -> Iterator[Any]:
    with app.app_context():
        yield _db


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


# -- live servers -------------------------------------------------------------


@pytest.fixture
def servers(database_url, redis_url):
    from support.live import Server

    started: list[Server] = []

    def start(workers: int = 1, redis: str | None = "default", **env: str) -> Any:
        server = Server(database_url, redis_url if redis == "default" else redis, workers=workers, **env)
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def own_redis(tmp_path: Any) -> Iterator[Any]:
    """A redis-server of this test's own (``support.redis_server.RedisServer``): pause it, kill it, restart it."""
    from support.redis_server import RedisServer

    server = RedisServer(tmp_path)
    yield server
    server.kill()


@pytest.fixture
def hosted(signed_in: Any, make_room: Any, join: Any) -> tuple[Any, Any, Any, Any]:
    """A room with its host signed in and two participants: (room, host's client, Pat's, Kim's)."""
    host, facilitator = signed_in()
    room = make_room(owner=facilitator)
    return room, host, join(room, "Pat"), join(room, "Kim")


@pytest.fixture(scope="module")
def browser_tools() -> None:
    """Chromium, chromedriver and nginx are here (else skip, or fail in CI: ``support.browser.require_tools``)."""
    from support.browser import require_tools

    require_tools()


@pytest.fixture
def browsers() -> Iterator[Any]:
    """Start headless Chromium browsers (``browsers()``); all of them quit when the test ends."""
    from support.browser import Chrome

    started: list[Any] = []

    def start(**kwargs: Any) -> Any:
        started.append(Chrome(**kwargs))
        return started[-1]

    yield start
    for chrome in started:
        chrome.quit()
