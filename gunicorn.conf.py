"""Gunicorn settings for Chatroom: gevent workers, tuned for long-lived event streams.

Every open room tab holds one request open, so a worker must carry thousands
of them: gevent greenlets, not threads. gevent patches the standard library
here, before gunicorn or the app import anything that would capture the
unpatched socket/threading modules, and psycogreen makes psycopg2 yield to
other greenlets while it waits on PostgreSQL (otherwise one slow query stalls
every stream in the worker).
"""

import os
from typing import Any

from gevent import monkey

monkey.patch_all()

from psycogreen.gevent import patch_psycopg  # noqa: E402

from config import Config  # noqa: E402

patch_psycopg()

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"  # noqa: S104 - a PaaS routes to $PORT
# The in-process broker (no REDIS_URL) reaches only its own process: one worker then.
workers = int(os.environ.get("WEB_CONCURRENCY", "2")) if os.environ.get("REDIS_URL") else 1
worker_class = "gevent"
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "10000"))
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
