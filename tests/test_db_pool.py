"""``chatroom/db_pool.py``: a checkout asks the socket, not the server, whether the connection is still there.

The peek is checked on real sockets; the pool, on the real PostgreSQL of the suite (with SQLite, the embedded
backend, there is no socket and nothing to watch). The end to end cases are the ones ``pool_pre_ping`` was for:
the server ends a pooled connection between two requests (with a FATAL message first, as PostgreSQL does), or
the connection is cut without a word (a proxy between, a backend killed outright), and the next request is
answered as usual, not with 503.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from psycopg2.extensions import TRANSACTION_STATUS_IDLE, TRANSACTION_STATUS_INTRANS
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from chatroom import create_app, db_pool
from chatroom.extensions import db
from support.app import close_app, make_config
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
def test_peek_never_waits_even_under_a_default_socket_timeout():
    """A process-wide ``socket.setdefaulttimeout`` must not turn the peek into a wait (it would hold the whole
    gevent worker, then call a healthy idle connection closed)."""
    ours, theirs = socket.socketpair()
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(5)
    try:
        assert db_pool.peek(ours.fileno()) == "open"  # at once, not after 5 s and a timeout
    finally:
        socket.setdefaulttimeout(previous)
        ours.close()
        theirs.close()


@pytest.mark.once
def test_peek_on_something_that_is_not_an_open_socket_says_closed(tmp_path):
    with open(tmp_path / "file", "w") as not_a_socket:
        assert db_pool.peek(not_a_socket.fileno()) == "closed"
    assert db_pool.peek(-1) == "closed"  # libpq's fileno() once it has dropped the socket


def _backend_pid() -> int:
    return int(db.session.execute(text("SELECT pg_backend_pid()")).scalar_one())


@contextlib.contextmanager
def _counting_pings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every real ping the pool sends (SQLAlchemy's pre-ping and ours both go through ``dialect.do_ping``)."""
    pings: list[object] = []
    real = db.engine.dialect.do_ping
    monkeypatch.setattr(db.engine.dialect, "do_ping", lambda connection: pings.append(connection) or real(connection))
    yield pings


@pytest.mark.services  # the embedded SQLite has no pool of sockets
def test_a_checkout_sends_nothing_to_the_server(app, monkeypatch):
    """An ordinary request pays no round trip to learn that its connection is alive (no ``SELECT 1``)."""
    with app.app_context():
        assert not db.engine.pool._pre_ping
        first = _backend_pid()
        db.session.remove()  # checked in: the next checkout is a reuse
        with _counting_pings(monkeypatch) as pings:
            assert _backend_pid() == first
        assert pings == []


@pytest.mark.services
def test_a_connection_the_server_ended_is_replaced_before_the_request_uses_it(app, monkeypatch):
    """PostgreSQL ends a pooled connection (a restart, a failover, ``idle_session_timeout``): it says so with a
    FATAL message before it hangs up, the peek finds those bytes, the ping fails, and the next request gets a
    fresh connection and its ordinary answer, not the 503 of a dropped one."""
    with app.app_context():
        db.engine.dispose()
        first = _backend_pid()
        db.session.remove()
        # Not the pool's engine (it would hand out the first connection); autocommit, so that each read of
        # pg_stat_activity is a fresh snapshot rather than the transaction's first one.
        outside = create_engine(db.engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with outside.connect() as other:  # ends the first, as a restart or a timeout would
                assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar_one()
                gone = text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid")
                assert wait_for(lambda: other.execute(gone, {"pid": first}).scalar_one(), timeout=5)
        finally:
            outside.dispose()
        with _counting_pings(monkeypatch) as pings:
            assert app.test_client().get("/r/abcdefghjk").status_code == 404  # an ordinary answer
        assert len(pings) == 1  # the unread FATAL sent the check to the server, and that ping failed
        assert _backend_pid() != first


class _Proxy:
    """A TCP proxy in front of PostgreSQL that can cut every connection through it without a word (FIN only)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.pairs.append((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)

    def cut(self) -> None:
        """Hang up on every client now, saying nothing (and drop the server side)."""
        for client, server in self.pairs:
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self.pairs.clear()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.mark.services
def test_a_connection_cut_without_a_word_is_replaced_without_asking_the_server(_schema, database_url, monkeypatch):
    """Between the app and PostgreSQL, a proxy hangs up without a message: the peek sees the end of the stream,
    the pool connects afresh with no ping sent, and the request gets its ordinary answer."""
    url = make_url(database_url)
    if not url.host or url.host.startswith("/"):
        pytest.skip("the suite's PostgreSQL listens on a unix socket here: nothing to put a TCP proxy in front of")
    proxy = _Proxy((url.host, url.port or 5432))
    app = create_app(make_config(str(url.set(host="127.0.0.1", port=proxy.port)), None))
    try:
        with app.app_context():
            first = _backend_pid()
            db.session.remove()
            proxy.cut()
            seen: list[str] = []
            real_peek = db_pool.peek
            monkeypatch.setattr(db_pool, "peek", lambda fd: seen.append(real_peek(fd)) or seen[-1])
            assert wait_for(lambda: real_peek(db.engine.pool._pool.queue[0].dbapi_connection.fileno()) == "closed")
            with _counting_pings(monkeypatch) as pings:
                assert app.test_client().get("/r/abcdefghjk").status_code == 404
            assert seen == ["closed"] and pings == []
            assert _backend_pid() != first
    finally:
        close_app(app)
        proxy.close()


# -- autocommit: a request whose writes are each one statement skips BEGIN and COMMIT --------------------------


def _fresh_connection():
    """The request's connection, after emptying the pool: the next checkout reuses this very one."""
    db.engine.dispose()
    return db.session.connection().connection.dbapi_connection


@pytest.mark.services
def test_autocommit_sends_no_begin_and_the_pool_turns_it_off_on_the_way_back(app):
    with app.app_context():
        raw = _fresh_connection()
        assert db_pool.autocommit(db.session)
        db.session.execute(text("SELECT 1"))
        assert raw.get_transaction_status() == TRANSACTION_STATUS_IDLE  # no BEGIN went before it
        db.session.commit()  # psycopg2 sends nothing: there is no transaction to end
        db.session.remove()  # back to the pool
        assert raw.autocommit is False
        db.session.execute(text("SELECT 1"))  # the next request on that connection has transactions again
        assert db.session.connection().connection.dbapi_connection is raw
        assert raw.get_transaction_status() == TRANSACTION_STATUS_INTRANS


@pytest.mark.services
def test_autocommit_leaves_a_transaction_that_has_begun_alone(app):
    """Its statements must commit or roll back together: a transaction already open stays one."""
    with app.app_context():
        raw = _fresh_connection()
        db.session.execute(text("SELECT 1"))
        assert not db_pool.autocommit(db.session)
        assert raw.autocommit is False and raw.get_transaction_status() == TRANSACTION_STATUS_INTRANS
        db.session.remove()


@pytest.mark.once
def test_a_connection_that_cannot_be_set_back_is_invalidated_not_reused():
    """If turning autocommit off fails (psycopg2 closed the connection meanwhile), the pool must not hand it out
    again as it is: the next user would get no transactions. (A stand-in connection: psycopg2 raises here only for
    a closed one, which SQLAlchemy never lets us check in.)"""

    class Closed:
        autocommit = property(lambda self: True, lambda self, value: (_ for _ in ()).throw(RuntimeError("closed")))

    class Record:
        invalidated = False

        def invalidate(self) -> None:
            self.invalidated = True

    record = Record()
    db_pool._autocommit_off(Closed(), record)
    assert record.invalidated


@pytest.mark.once
def test_autocommit_changes_nothing_on_the_embedded_database(tmp_path):
    app = create_app(make_config(f"sqlite:///{tmp_path / 'embedded.db'}", None))
    try:
        with app.app_context():
            assert not db_pool.autocommit(db.session)
    finally:
        close_app(app)
