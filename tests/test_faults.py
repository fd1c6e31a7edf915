"""Holding up under abuse and faults (issue 11): a burst of password checks does not freeze a worker,
a paused Redis does not hold requests hostage, and a paused PostgreSQL makes /readyz say so at once.

Live tests talk to a real gunicorn gevent worker on loopback; every one is bounded in
count and in time, and none asserts a duration: they compare what happened while a burst
or an outage lasted with what the burst itself did, or give each request a client timeout
(a request that waited on the paused service raises instead of answering).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from chatroom import create_app
from chatroom.extensions import db
from chatroom.models import Message, Room
from chatroom.passwords import _prehash
from chatroom.services import accounts, tokens
from support.app import close_app, empty_database, make_config
from support.clients import Client, form_token
from support.constants import PASSWORD, ROOM_PASSWORD
from support.live import Browser, Stream, collecting, free_port, message_seqs, wait_for

BURST = 6  # wrong-password joins sent at once
SLOW_ROUNDS = 12  # the production cost: about a quarter of a second per check


def _health(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    finally:
        conn.close()


@pytest.mark.live
@pytest.mark.once  # the worker's event loop, not the backend, is under test
def test_other_requests_keep_flowing_during_a_burst_of_password_checks(app, servers, make_room):
    """BURST joins with a wrong password at once, against a room hashed at production cost, on one gevent
    worker: while they are in flight, /healthz keeps answering, many times over (with bcrypt on the event
    loop, each health check waited for at least one password check: at most about one answer per join)."""
    room = make_room()
    with app.app_context():  # the cost of a check is the cost the hash was made with
        stored = db.session.get(Room, room.id)
        stored.password_hash = bcrypt.hashpw(_prehash("the real one"), bcrypt.gensalt(SLOW_ROUNDS)).decode()
        db.session.commit()
    server = servers(workers=1, redis=None)
    joiners = [Browser(server.port) for _ in range(BURST)]
    for joiner in joiners:
        joiner.get(f"/r/{room.code}")  # a session and its CSRF token
    start = threading.Barrier(BURST + 1)
    statuses: list[int] = []
    lock = threading.Lock()

    def join(browser: Browser) -> None:
        start.wait(30)
        status = browser.post(f"/r/{room.code}/join", {"alias": "Mallory", "password": "a wrong guess"})
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=join, args=(b,), daemon=True) for b in joiners]
    for thread in threads:
        thread.start()
    start.wait(30)
    answered_during_burst = 0
    for _ in range(5000):  # bounded: the burst takes a few seconds at most
        with lock:
            if len(statuses) == BURST:
                break
        assert _health(server.port)
        with lock:
            if len(statuses) < BURST:
                answered_during_burst += 1
    for thread in threads:
        thread.join(60)
    assert statuses == [403] * BURST  # every check ran, and said no
    assert answered_during_burst >= 4 * BURST, answered_during_burst


# -- a paused Redis --------------------------------------------------------------------------------------


@pytest.mark.once  # brings its own Redis
def test_a_paused_redis_does_not_hold_pages_throttles_or_posts(_schema, database_url, own_redis, make_room):
    """Issue 11: with Redis stopped (SIGSTOP), member pages took 5-10 s and each post or typing signal 10-15 s.
    Now presence and throttles give up after one short timeout and then skip Redis (a circuit breaker), rate
    limits fall back to memory, and a post commits and answers while Redis is still stopped."""
    url = own_redis.url
    app = create_app(make_config(database_url, url, RATELIMIT_ENABLED=True))
    app.test_client_class = Client
    try:
        with app.app_context():
            empty_database(app)
        room = make_room()
        client = app.test_client()
        assert client.form(f"/r/{room.code}/join", {"alias": "Pat", "password": ROOM_PASSWORD}).status_code == 303
        token = form_token(client.get(f"/r/{room.code}").get_data(as_text=True))
        presence = app.extensions["chatroom.presence"]
        tries: list[str] = []
        for name in ("zrangebyscore", "set"):
            real = getattr(presence.redis, name)
            setattr(presence.redis, name, lambda *a, _real=real, _name=name, **k: tries.append(_name) or _real(*a, **k))

        own_redis.pause()
        pages = [client.get(f"/r/{room.code}").status_code for _ in range(6)]
        assert pages == [200] * 6
        assert tries.count("zrangebyscore") < len(pages)  # one timeout, then the breaker: no wait per page
        with app.test_request_context():
            assert all(presence.claim(f"typing:{n}", 3) for n in range(5))  # throttles allow, at once
        assert tries.count("set") <= 1
        response = client.form(f"/r/{room.code}/messages", {"body": "said while Redis sleeps", "token": token})
        assert response.status_code == 303
        with app.app_context():  # committed before Redis came back
            body = db.session.scalar(select(Message.body).where(Message.room_id == room.id))
            assert body == "said while Redis sleeps"
            db.session.remove()
        assert own_redis.proc.poll() is None  # still stopped, not gone
    finally:
        own_redis.resume()
        app.extensions["chatroom.broker"].close()
        app.extensions["chatroom.presence"].close()


@pytest.mark.services
@pytest.mark.live
def test_posts_answer_commit_and_reach_local_streams_while_redis_is_paused(app, servers, make_room, own_redis):
    """Issue 11, through a real gevent worker: with Redis stopped, publishing gave up only after the broker's
    5 s socket timeout. Now it has its own sub-second client behind a breaker: every request below answers
    within its 3 s client timeout (rate limits on, so the limiter's storage is in the path too), both posts
    commit, and a stream on the same server receives them (local delivery) while Redis is still stopped."""
    url = own_redis.url
    server = servers(workers=1, redis=url, RATELIMIT_ENABLED="1")
    room = make_room()
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    kim = Browser(server.port).join(room.code, "Kim", ROOM_PASSWORD)
    stream = Stream(server.port, f"/r/{room.code}/events?after=0", kim.cookie_header()).open()
    texts = ["said while Redis sleeps", "and again, the breaker open"]
    with collecting(stream) as [reader]:
        own_redis.pause()
        pat.timeout = kim.timeout = 3  # a request held by the paused Redis raises instead of answering
        assert pat.post(f"/r/{room.code}/messages", {"body": texts[0], "token": "a" * 32}) == 303
        assert kim.get(f"/r/{room.code}")[0] == 200
        assert pat.post(f"/r/{room.code}/typing", {}) == 204
        assert pat.post(f"/r/{room.code}/messages", {"body": texts[1], "token": "b" * 32}) == 303
        assert wait_for(lambda: message_seqs(reader.stream.events) == [1, 2])
        assert own_redis.proc.poll() is None  # still stopped, not gone
    with app.app_context():
        bodies = db.session.scalars(select(Message.body).where(Message.room_id == room.id).order_by(Message.seq))
        assert list(bodies) == texts
        db.session.remove()


# -- a paused PostgreSQL ----------------------------------------------------------------------------------


@contextlib.contextmanager
def paused_postgresql() -> Iterator[None]:
    """Stop every process of the suite's PostgreSQL (``tests/services.sh``) with SIGSTOP; SIGCONT on the way out.

    The postmaster first (it forks no backend after that), then its children: the server hangs, as a
    frozen host does, rather than refuse.
    """
    folder = os.environ.get("CHATROOM_SERVICES_DIR")
    if not folder:
        pytest.fail("CHATROOM_SERVICES_DIR is not set: start the services with tests/services.sh")
    postmaster = int((Path(folder) / "pg" / "data" / "postmaster.pid").read_text().split()[0])
    stopped = [postmaster]
    try:
        os.kill(postmaster, signal.SIGSTOP)
        out = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False)
        for pid in map(int, out.stdout.split()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def _ready(port: int, timeout: float) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/readyz")
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.services
@pytest.mark.live
def test_readyz_says_a_paused_postgresql_is_unreachable_and_recovers(servers):
    """Issue 11: with PostgreSQL stopped, /readyz hung about 150 s and then said ok. Its check now has its own
    connection with bounded waits (under gevent, a deadline): 503 naming the database within the client's
    timeout, and 200 again once PostgreSQL runs."""
    server = servers(workers=1, redis=None)
    assert _ready(server.port, 10) == (200, {"status": "ok", "checks": {"database": "ok", "redis": "not configured"}})
    with paused_postgresql():
        status, body = _ready(server.port, 6)
        assert (status, body["checks"]["database"]) == (503, "unreachable")
        assert _health(server.port)  # alive, only not ready
    assert wait_for(lambda: _ready(server.port, 10)[0] == 200, timeout=10, interval=0.2)


@pytest.mark.services
def test_readyz_answers_while_postgresql_is_paused_without_gevent(_schema, database_url):
    """The same check in a plain blocking process (the test client, no psycogreen): libpq's connect timeout
    bounds it. The app's pool already holds a live connection, which the probe must not wait on."""
    app = create_app(make_config(database_url, None))
    try:
        client = app.test_client()
        assert client.get("/readyz").status_code == 200
        with app.app_context():  # a pooled connection to a server about to hang
            db.session.execute(select(1))
            db.session.remove()
        answers: list = []
        probe = threading.Thread(target=lambda: answers.append(client.get("/readyz")), daemon=True)
        with paused_postgresql():
            probe.start()
            probe.join(15)  # the client's timeout: an answer after SIGCONT is too late
            assert answers, "/readyz waited on the paused database"
        [response] = answers
        assert (response.status_code, response.get_json()["checks"]["database"]) == (503, "unreachable")
        assert client.get("/readyz").status_code == 200
    finally:
        app.extensions["chatroom.broker"].close()
        app.extensions["chatroom.presence"].close()


@pytest.mark.services  # SQLite has no pool to wear out (its writers wait on a lock: the next test's error)
def test_a_request_that_finds_every_connection_busy_gets_503_with_retry_after(_schema, database_url, redis_url):
    """A pool worn out by a burst (a reconnect storm, a class of 300 posting) answers 503 with ``Retry-After`` and a
    sentence, for participants, signed-in facilitators (whose page cannot load their account meanwhile), the API
    and the rate-limited post alike (whose limiter would put its own window in ``Retry-After``): the browser's
    retry waits, and no 500 reaches anybody."""
    options = {"pool_pre_ping": True, "pool_size": 1, "max_overflow": 0, "pool_timeout": 1}
    app = create_app(make_config(database_url, redis_url, SQLALCHEMY_ENGINE_OPTIONS=options, RATELIMIT_ENABLED=True))
    app.test_client_class = Client
    try:
        with app.app_context():
            empty_database(app)
            accounts.sign_up("fran@example.org", "Fran Facilitator", PASSWORD)
            db.session.remove()
        fran = app.test_client()
        assert fran.form("/login", {"email": "fran@example.org", "password": PASSWORD}).status_code == 303
        dashboard = fran.get("/rooms/").get_data(as_text=True)  # the CSRF token, read now (its page needs the database)
        fran._csrf = re.search(r'name="csrf-token" content="([^"]+)"', dashboard).group(1)
        pat = app.test_client()
        with app.app_context():
            held = db.engine.connect()  # the pool's only connection, busy elsewhere
        try:  # (outside that context: each request has its own, as under a server)
            page = pat.get("/r/abcdefghjk")
            mine = fran.get("/rooms/")
            post = fran.htmx("POST", "/r/abcdefghjk/messages", {"body": "hello"})
            api = pat.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens.PREFIX}{'x' * 40}"})
        finally:
            held.close()
        for answer in (page, mine, post):
            assert answer.status_code == 503, answer.get_data(as_text=True)[:300]
            assert answer.headers["Retry-After"] == "5"
            assert "busy right now" in answer.get_data(as_text=True)
        assert '<meta http-equiv="refresh" content="5">' in page.get_data(as_text=True)  # it tries again itself
        assert "<html" not in post.get_data(as_text=True)  # htmx: the sentence as a fragment, no reload
        assert api.status_code == 503 and api.headers["Retry-After"] == "5" and api.is_json
        assert pat.get("/r/abcdefghjk").status_code == 404  # the pool is free again: an ordinary answer
        assert fran.get("/rooms/").status_code == 200
    finally:
        close_app(app)


def test_a_request_that_cannot_reach_the_database_gets_503_with_retry_after(database_url, redis_url, tmp_path):
    """A database that does not answer (a restart, a failover, a missing file) is "busy, try again": 503 with
    ``Retry-After`` and a sentence in the page, and JSON under ``/api/``, never a 500."""
    if database_url.startswith("sqlite"):
        gone = f"sqlite:///{tmp_path / 'no-such-folder' / 'db.sqlite3'}"
    else:  # the same server, a port where nothing listens
        gone = str(make_url(database_url).set(host="127.0.0.1", port=free_port()))
    app = create_app(make_config(gone, redis_url))
    client = app.test_client()
    try:
        page = client.get("/r/abcdefghjk")
        assert page.status_code == 503
        assert page.headers["Retry-After"] == "5"
        assert "busy right now" in page.get_data(as_text=True)
        assert '<meta http-equiv="refresh" content="5">' in page.get_data(as_text=True)
        partial = client.get("/r/abcdefghjk", headers={"HX-Request": "true"})
        assert partial.status_code == 503 and "<html" not in partial.get_data(as_text=True)
        api = client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens.PREFIX}{'x' * 40}"})
        assert api.status_code == 503 and api.is_json and api.headers["Retry-After"] == "5"
    finally:
        app.extensions["chatroom.broker"].close()
        app.extensions["chatroom.presence"].close()


@pytest.mark.services  # pauses the suite's PostgreSQL
def test_a_tab_reconnects_from_memory_while_postgresql_is_paused(app, servers, make_room):
    """Every stream of a room dropped at once (a proxy restart) comes back without a query each: the room's
    writer lingers, found the seat active a moment ago and remembers what the tab missed. So a reconnect
    opens even while PostgreSQL is frozen; a browser the writer has not admitted still needs the database."""
    server = servers(workers=1)
    room = make_room()
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    first = Stream(server.port, f"/r/{room.code}/events?after=0", pat.cookie_header()).open()
    list(first.read_events(1))
    first.close()
    with paused_postgresql():
        again = Stream(server.port, f"/r/{room.code}/events", pat.cookie_header(), last_event_id="0.0").open(timeout=5)
        assert again.status == 200
        events = list(again.read_events(1))
        assert any('id="private"' in e.data for e in events)  # the seat's own (empty) thread, from memory
        again.close()


def test_a_database_without_its_tables_is_a_500_not_busy(redis_url, database_url, tmp_path):
    """Only what retrying may cure is "busy": a database nobody migrated answers 500 (and the log has the
    traceback), never "try again in a few seconds" forever."""
    if database_url.startswith("sqlite"):
        bare = f"sqlite:///{tmp_path / 'never-migrated.sqlite3'}"
    else:  # the same server's maintenance database: no tables of ours
        bare = str(make_url(database_url).set(database="postgres"))
    app = create_app(make_config(bare, redis_url))
    try:
        page = app.test_client().get("/r/abcdefghjk")
        assert page.status_code == 500
        assert "busy" not in page.get_data(as_text=True) and "Retry-After" not in page.headers
    finally:
        with app.app_context():
            db.engine.dispose()
        app.extensions["chatroom.broker"].close()
        app.extensions["chatroom.presence"].close()
