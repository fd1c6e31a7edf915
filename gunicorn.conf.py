"""Gunicorn settings for Chatroom: gevent workers, tuned for long-lived event streams.

Every open room tab holds one connection open, so a worker must carry thousands
of them: gevent greenlets, not threads. gevent patches the standard library
here, before gunicorn or the app import anything that would capture the
unpatched socket/threading modules, and psycogreen makes psycopg2 yield to
other greenlets while it waits on PostgreSQL (otherwise one slow query stalls
every stream in the worker).

File descriptors. Each open stream is one socket. Once a stream is open its
socket leaves gunicorn's connection pool for the room's writer
(``chatroom/fanout.py``), so a worker's descriptors are: requests in flight
(at most ``worker_connections``), open streams (at most ``STREAMS_PER_WORKER``,
refused with 503 beyond), and a reserve for the database pool, Redis and logs.
The open-files limit is raised to the hard limit (or ``MAX_OPEN_FILES``) and
split that way, so ordinary pages are still served when the streams are full.
A PaaS dyno's hard limit is what it is (Heroku: 10,000 on most dynos): there a
worker holds about 7,200 streams (10,000 less 2,500 requests in flight and the reserve).

Slow clients. A connection that has not sent a complete request head within
``HEADER_TIMEOUT_SECONDS`` is closed (a slowloris guard; later requests on a
keep-alive connection get ``keepalive``), and one client address may hold at most
``CONNECTIONS_PER_ADDRESS`` connections in flight per worker; beyond that new
ones are closed at once. Behind proxies (``TRUSTED_PROXY_HOPS`` above 0) that cap is
off: every connection's peer is then the proxy (a whole class would share 200), and
the proxy guards its own side; the app's caps per address read the client's address
from ``X-Forwarded-For`` there. Open streams do not count against it: they have their
own caps in ``chatroom/stream.py``.
"""

import contextlib
import os
import resource
from typing import Any

from gevent import monkey

monkey.patch_all()

from psycogreen.gevent import patch_psycopg  # noqa: E402

patch_psycopg()

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"  # noqa: S104 - a PaaS routes to $PORT
# The in-process broker (no REDIS_URL) reaches only its own process: one worker then.
workers = int(os.environ.get("WEB_CONCURRENCY", "2")) if os.environ.get("REDIS_URL") else 1
worker_class = "gevent"

# Descriptors for the database pool, Redis, log files and the listening socket.
RESERVED_FILES = 256


def _raise_open_files_limit() -> int:
    """Raise the soft open-files limit to the hard one (or ``MAX_OPEN_FILES``, lower); return the limit now."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = int(os.environ.get("MAX_OPEN_FILES") or 0) or (hard if hard != resource.RLIM_INFINITY else 1 << 20)
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


open_files = _raise_open_files_limit()
# Requests in flight (page loads, posts, streams until they are handed over, slow headers).
worker_connections = int(os.environ.get("WORKER_CONNECTIONS") or max(64, min(10_000, open_files // 4)))
# The rest is for open streams; the app reads this (config.py) and refuses streams beyond it.
os.environ.setdefault("STREAMS_PER_WORKER", str(max(16, open_files - worker_connections - RESERVED_FILES)))

from config import Config  # noqa: E402  # after STREAMS_PER_WORKER: its class attributes read the environment

# Connections waiting to be accepted: a reconnect storm (thousands of tabs at once) must not overflow it.
backlog = int(os.environ.get("GUNICORN_BACKLOG", "4096"))
# Streams send a heartbeat every 15 s; this only bounds how long a worker may block the loop.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 10
keepalive = 75
accesslog = os.environ.get("ACCESS_LOG") or None
# Forwarded headers are read by the app's ProxyFix alone, for TRUSTED_PROXY_HOPS proxies: gunicorn trusts no peer.
forwarded_allow_ips = Config.FORWARDED_ALLOW_IPS
# gunicorn's control socket lives at one fixed path per user: off, so several instances can share a host.
control_socket_disable = True

# Prometheus metrics (chatroom/metrics.py): with METRICS_TOKEN set, every worker keeps its values in files
# under PROMETHEUS_MULTIPROC_DIR (a fresh temporary folder unless set), so /metrics adds up all workers.
# Set here, in the master, before any worker imports prometheus_client (it reads the variable on import).
if os.environ.get("METRICS_TOKEN") and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    import tempfile

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="chatroom-metrics-")


def on_starting(server: object) -> None:
    """A new server starts its counters at zero: old workers' files would add to them forever."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder and os.path.isdir(folder):
        for name in os.listdir(folder):
            if name.endswith(".db"):
                os.remove(os.path.join(folder, name))


def child_exit(server: object, worker: Any) -> None:
    """A worker ended: its open-streams gauge no longer counts (prometheus_client's multiprocess clean-up)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker: Any) -> None:
    """The app is loaded: move everything it made so far out of the collector's sight (``gc.freeze``).

    A worker holds thousands of streams in one process; a full collection that also walked the
    templates, models and libraries loaded at start would pause every stream and post of the
    worker at once. Frozen, they are never scanned again; what requests and streams make still is.
    """
    import gc

    gc.collect()
    gc.freeze()


HEADER_TIMEOUT_SECONDS = float(os.environ.get("HEADER_TIMEOUT_SECONDS", "10"))
CONNECTIONS_PER_ADDRESS = int(os.environ.get("CONNECTIONS_PER_ADDRESS", "200"))


def post_fork(server, worker):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    """Guard the new worker's connections: a header timeout and a cap per client address (module docstring).

    gunicorn's async worker reads each request head under ``timeout_ctx()`` (the keep-alive
    time) in the connection's own greenlet; the first head of a connection gets
    ``HEADER_TIMEOUT_SECONDS`` instead. ``handle`` is looked up when the worker starts
    serving, so wrapping it here covers every connection.
    """
    if not hasattr(worker, "timeout_ctx") or not hasattr(worker, "handle"):
        return  # not an async worker
    from collections import Counter

    import gevent

    behind_proxies = Config.TRUSTED_PROXY_HOPS > 0
    in_flight: Counter[str] = Counter()
    first_request: set[object] = set()
    handle, keepalive_timeout = worker.handle, worker.timeout_ctx

    def guarded_handle(listener, client, addr):  # noqa: ANN001
        host = addr[0] if isinstance(addr, tuple) and addr else ""
        capped = bool(host) and not behind_proxies
        if capped and in_flight[host] >= CONNECTIONS_PER_ADDRESS:
            with contextlib.suppress(OSError):
                client.close()
            return
        me = gevent.getcurrent()
        first_request.add(me)
        if capped:
            in_flight[host] += 1
        try:
            handle(listener, client, addr)
        finally:
            first_request.discard(me)
            if capped:
                in_flight[host] -= 1
                if in_flight[host] <= 0:
                    del in_flight[host]

    def timeout_ctx():
        me = gevent.getcurrent()
        if me in first_request:
            first_request.discard(me)
            return gevent.Timeout(HEADER_TIMEOUT_SECONDS, False)
        return keepalive_timeout()

    worker.handle = guarded_handle
    worker.timeout_ctx = timeout_ctx
