"""``chatroom/db_pool.py``: a checkout asks the socket, not the server, whether the connection is still there.

The peek is checked on real sockets; the pool, on the real PostgreSQL of the suite (with SQLite, the embedded
backend, there is no socket and nothing to watch). The end to end case is the one ``pool_pre_ping`` was for: the
server ends a pooled connection between two requests, and the next request is answered as usual, not with 503.
"""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import NullPool

from chatroom import db_pool
from chatroom.extensions import db
from support.live import wait_for


@pytest.mark.once
def test_peek_tells_an_idle_socket_from_one_the_peer_wrote_to_or_hung_up():
    ours, theirs = socket.socketpair()
    try:
        assert db_pool.peek(ours.fileno()) == "open"
        theirs.sendall(b"E")  # an error message the client did not ask for
        assert db_pool.peek(ours.fileno()) == "unread"
        assert ours.recv(1) == b"E"  # peeking consumed nothing
        theirs.close()
        assert db_pool.peek(ours.fileno()) == "closed"
        ours.getsockname()  # and the descriptor is still ours: the peek did not close it
    finally:
        ours.close()
        theirs.close()


@pytest.mark.once
def test_peek_on_a_descriptor_that_is_not_a_socket_says_closed(tmp_path):
    with open(tmp_path / "file", "w") as not_a_socket:
        assert db_pool.peek(not_a_socket.fileno()) == "closed"


def _backend_pid() -> int:
    return int(db.session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _statements(engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


@pytest.mark.services  # the embedded SQLite has no pool of sockets
def test_a_checkout_sends_nothing_to_the_server(app):
    """An ordinary request pays no round trip to learn that its connection is alive (no ``SELECT 1``)."""
    with app.app_context():
        db.session.execute(text("SELECT 2")).scalar_one()
        db.session.remove()  # checked in: the next checkout is a reuse
        seen = _statements(db.engine)
        assert db.session.execute(text("SELECT 3")).scalar_one() == 3
        assert seen == ["SELECT 3"]


@pytest.mark.services  # the embedded SQLite has no pool of sockets
def test_a_connection_the_server_ended_is_replaced_before_the_request_uses_it(app):
    """PostgreSQL ends a pooled connection (a restart, a failover, ``idle_session_timeout``): the next
    request gets a fresh connection and its ordinary answer, not the 503 of a dropped one."""
    with app.app_context():
        db.engine.dispose()
        first = _backend_pid()
        db.session.remove()
        outside = create_engine(db.engine.url, poolclass=NullPool)  # not the pool's: it would hand out the first
        try:
            with outside.connect() as other:  # ends the first, as a restart or a timeout would
                assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar_one()
                gone = text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid")
                assert wait_for(lambda: other.execute(gone, {"pid": first}).scalar_one(), timeout=5)
        finally:
            outside.dispose()
        assert app.test_client().get("/r/abcdefghjk").status_code == 404  # an ordinary answer
        assert _backend_pid() != first


@pytest.mark.services  # the embedded SQLite has no pool of sockets
def test_a_connection_idle_past_the_limit_is_pinged_and_kept_when_it_answers(app, monkeypatch):
    """Past ``PING_AFTER_IDLE_SECONDS`` the real ping runs (a NAT may have forgotten the flow silently)."""
    with app.app_context():
        first = _backend_pid()
        db.session.remove()
        monkeypatch.setattr(db_pool, "PING_AFTER_IDLE_SECONDS", 0.0)
        pings: list[object] = []
        monkeypatch.setattr(db.engine.dialect, "do_ping", lambda connection: pings.append(connection) or True)
        assert _backend_pid() == first  # the same connection, still good
        assert len(pings) == 1
