"""Holding up under abuse and faults (issue 11): a burst of password checks does not freeze a worker,
and a paused Redis does not hold requests hostage.

Live tests talk to a real gunicorn gevent worker on loopback; every one is bounded in
count and in time, and none asserts a duration: they compare what happened while a burst
or an outage lasted with what the burst itself did.
"""

from __future__ import annotations

import http.client
import threading

import bcrypt
import pytest

from chatroom.extensions import db
from chatroom.models import Room
from chatroom.passwords import _prehash
from support.live import Browser

pytestmark = pytest.mark.live

BURST = 6  # wrong-password joins sent at once
SLOW_ROUNDS = 12  # the production cost: about a quarter of a second per check


def _health(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    finally:
        conn.close()


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
