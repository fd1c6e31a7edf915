"""What the people who run Chatroom watch: /healthz and /readyz, Prometheus metrics, request ids and log lines."""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import subprocess
import sys
from datetime import timedelta

import pytest
from flask import Flask

from chatroom import create_app, logs, metrics
from chatroom.logs import JsonFormatter
from chatroom.models import utcnow
from chatroom.services import accounts, members, messages, rooms
from support.app import empty_database, make_config
from support.clients import Client
from support.constants import ROOM_PASSWORD, ROOT

pytestmark = pytest.mark.once


def _app(database_url, redis_url, **overrides):
    app = create_app(make_config(database_url, redis_url, **overrides))
    app.test_client_class = Client
    return app


def _close(app):
    app.extensions["chatroom.broker"].close()
    app.extensions["chatroom.presence"].close()
    metrics.init_app(Flask("metrics-off"))  # collection is per process: off again for the next tests


# -- health ---------------------------------------------------------------------------------------


def test_healthz_and_readyz_when_all_is_well(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["status"] == "ok" and ready.get_json()["checks"]["database"] == "ok"


def test_readyz_names_an_unreachable_redis(_schema, database_url):
    app = _app(database_url, "redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 503
        assert response.get_json()["checks"] == {"database": "ok", "redis": "unreachable"}
        assert app.test_client().get("/healthz").status_code == 200  # alive, only not ready
    finally:
        _close(app)


def test_readyz_names_an_unreachable_database(tmp_path):
    app = _app(f"sqlite:///{tmp_path}/no/such/folder/db.sqlite3", None)
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 503
        assert response.get_json()["checks"] == {"database": "unreachable", "redis": "not configured"}
    finally:
        _close(app)


# -- metrics ----------------------------------------------------------------------------------------


def test_metrics_are_off_without_a_token(client):
    assert client.get("/metrics").status_code == 404
    metrics.stream_opened()  # no-ops: nothing to count into, nothing raised
    metrics.delivered(3)


def _sample(text: str, name: str, labels: str = "") -> float:
    for line in text.splitlines():
        if line.startswith(name + (f"{{{labels}}}" if labels else " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _open_room(app, slow_seconds: str) -> str:
    """A room open now with slow mode on, and one message posted through the service; its code."""
    with app.test_request_context():
        owner = accounts.sign_up("m@example.org", "M", "correct horse battery")
        now = utcnow()
        data = rooms.RoomInput("Metered", now - timedelta(minutes=5), now + timedelta(hours=1), "UTC", ROOM_PASSWORD)
        room = rooms.create(owner, data)
        rooms.set_slow_mode(room, slow_seconds)
        messages.post(members.join(room, "Pat", ROOM_PASSWORD), "one", secrets.token_hex(16))
        return room.code


def test_metrics_need_the_token_and_count_posts_streams_and_refusals(_schema, database_url, redis_url):
    app = _app(database_url, redis_url, METRICS_TOKEN="metrics-secret")
    try:
        with app.app_context():
            empty_database(app)
        client = app.test_client()
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401

        def scrape() -> str:
            response = client.get("/metrics", headers={"Authorization": "Bearer metrics-secret"})
            assert response.status_code == 200 and response.mimetype == "text/plain"
            return response.get_data(as_text=True)

        before = scrape()
        code = _open_room(app, "60")
        kim = app.test_client()
        assert kim.form(f"/r/{code}/join", {"alias": "Kim", "password": ROOM_PASSWORD}).status_code == 303
        assert kim.form(f"/r/{code}/messages", {"body": "first", "token": secrets.token_hex(16)}).status_code == 303
        assert kim.form(f"/r/{code}/messages", {"body": "again", "token": secrets.token_hex(16)}).status_code == 429
        metrics.stream_opened()
        metrics.delivered(5)
        metrics.caught_up(12)
        metrics.redis_reconnected()
        after = scrape()
        metrics.stream_closed()

        def grew(name: str, labels: str = "") -> float:
            return _sample(after, name, labels) - _sample(before, name, labels)

        assert grew("chatroom_posts_total", 'outcome="created"') == 2
        assert grew("chatroom_posts_total", 'outcome="refused"') == 1
        assert grew("chatroom_post_seconds_count") == 2
        assert grew("chatroom_rate_limited_total", 'endpoint="chat.post"') == 1
        assert grew("chatroom_open_streams") == 1
        assert grew("chatroom_deliveries_total") == 5
        assert grew("chatroom_catchups_total") == 1
        assert grew("chatroom_catchup_messages_sum") == 12
        assert grew("chatroom_redis_reconnects_total") == 1
    finally:
        _close(app)


MULTIPROCESS = """
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("chatroom_metrics", sys.argv[1])
metrics = importlib.util.module_from_spec(spec)
spec.loader.exec_module(metrics)
from prometheus_client import multiprocess
metrics._state["enabled"] = True
workers = []
for count in (3, 4):  # two workers, as gunicorn forks them
    pid = os.fork()
    if pid == 0:
        metrics.delivered(count)
        metrics.stream_opened()
        os._exit(0)
    os.waitpid(pid, 0)
    workers.append(pid)
print(metrics.exposition()[0].decode())
print("----")
for pid in workers:  # what gunicorn.conf.py's child_exit does when a worker ends
    multiprocess.mark_process_dead(pid)
print(metrics.exposition()[0].decode())
"""


def test_multiprocess_mode_adds_up_the_workers(tmp_path):
    """Two forked processes count into PROMETHEUS_MULTIPROC_DIR; the parent reads their sum, as /metrics does.

    A fresh interpreter: prometheus_client chooses multiprocess mode when it is imported.
    """
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    command = [sys.executable, "-c", MULTIPROCESS, str(ROOT / "chatroom" / "metrics.py")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    alive, ended = done.stdout.split("----")
    assert _sample(alive, "chatroom_deliveries_total") == 7
    assert _sample(alive, "chatroom_open_streams") == 2
    assert _sample(ended, "chatroom_open_streams") == 0  # livesum: only live workers' streams
    assert _sample(ended, "chatroom_deliveries_total") == 7  # counters keep what ended workers counted


# -- request ids and log lines ------------------------------------------------------------------------------


def test_every_answer_carries_a_request_id_and_one_log_line(client, caplog):
    with caplog.at_level(logging.INFO, logger="chatroom.request"):
        response = client.get("/healthz", headers={"X-Request-ID": "from-a-client"})
    request_id = response.headers["X-Request-ID"]
    assert request_id != "from-a-client" and len(request_id) == 16  # no trusted proxy: ours
    lines = [r for r in caplog.records if r.name == "chatroom.request"]
    assert len(lines) == 1
    line = lines[0]
    assert (line.method, line.path, line.status, line.request_id) == ("GET", "/healthz", 200, request_id)
    assert request_id in line.getMessage()


def test_a_trusted_proxys_request_id_is_kept_when_it_looks_like_one(_schema, database_url, redis_url):
    app = _app(database_url, redis_url, TRUSTED_PROXY_HOPS=1)
    try:
        client = app.test_client()
        assert (
            client.get("/healthz", headers={"X-Request-ID": "abc-123.XYZ_9"}).headers["X-Request-ID"] == "abc-123.XYZ_9"
        )
        forged = client.get("/healthz", headers={"X-Request-ID": "two words; and more"}).headers["X-Request-ID"]
        assert " " not in forged and len(forged) == 16
    finally:
        _close(app)


def test_json_log_lines(client):
    formatter = JsonFormatter()
    record = logging.LogRecord("chatroom.request", logging.INFO, __file__, 1, "GET / 200", None, None)
    record.status = 200
    record.request_id = "r1"
    entry = json.loads(formatter.format(record))
    assert entry["level"] == "INFO" and entry["logger"] == "chatroom.request" and entry["message"] == "GET / 200"
    assert entry["status"] == 200 and entry["request_id"] == "r1" and entry["time"].endswith("+00:00")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("chatroom", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    assert "ValueError: boom" in json.loads(formatter.format(record))["exception"]


def test_log_format_json_is_a_switch(app):
    """LOG_FORMAT=json puts the JSON formatter on the handlers logging already has (gunicorn's, a platform's)."""
    root = logging.getLogger()
    saved = root.handlers[:]
    buffer = io.StringIO()
    root.handlers = [logging.StreamHandler(buffer)]
    try:
        app.config["LOG_FORMAT"] = "json"
        logs.configure(app)
        logging.getLogger("chatroom.test").warning("hello %s", "there")
    finally:
        root.handlers = saved
    entry = json.loads(buffer.getvalue().splitlines()[-1])
    assert entry["message"] == "hello there" and entry["logger"] == "chatroom.test" and entry["level"] == "WARNING"
