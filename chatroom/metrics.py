"""Prometheus metrics: what the streams, the broker and the services report, and ``/metrics`` to read them.

Off unless ``METRICS_TOKEN`` is set: then every function here is a no-op costing one
check, and ``/metrics`` answers 404. When on, ``/metrics`` wants
``Authorization: Bearer <METRICS_TOKEN>`` (a scraper's ``bearer_token``).

Under gunicorn each worker is its own process with its own counters. With
``PROMETHEUS_MULTIPROC_DIR`` set (``gunicorn.conf.py`` sets it when ``METRICS_TOKEN``
is set and it is not), prometheus_client keeps every worker's values in files there
and ``/metrics`` adds them up, whichever worker answers; the open-streams gauge sums
the live workers only. Without it (one process, ``make run``), the process's own
registry is read.

The hooks, one line each where the thing happens (they never raise):

- ``stream_opened()`` / ``stream_closed()``: an event stream starts / ends (``chatroom/stream.py``);
- ``delivered(n)``: ``n`` events written to a stream;
- ``caught_up(n)``: a stream's catch-up from the database replayed ``n`` messages;
- ``redis_reconnected()``: the broker's Redis listener came back after losing its connection;
- ``timed_post``: decorates ``services.messages.post`` (posts by outcome, and their latency);
- refusals with 429 are counted per endpoint by an ``after_request`` hook here.
"""

from __future__ import annotations

import functools
import hmac
import os
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client import generate_latest as _generate_latest

P = ParamSpec("P")
R = TypeVar("R")

_state = {"enabled": False}

OPEN_STREAMS = Gauge(
    "chatroom_open_streams", "Event streams open now (live workers, summed)", multiprocess_mode="livesum"
)
DELIVERIES = Counter("chatroom_deliveries_total", "Events written to event streams")
POSTS = Counter("chatroom_posts_total", "Messages posted, by outcome (created, duplicate, refused)", ["outcome"])
POST_SECONDS = Histogram(
    "chatroom_post_seconds",
    "Time to check, store and publish a message",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CATCHUPS = Counter("chatroom_catchups_total", "Stream catch-ups from the database (connects and reconnects)")
CATCHUP_MESSAGES = Histogram(
    "chatroom_catchup_messages",
    "Messages replayed per catch-up",
    buckets=(0, 1, 5, 10, 50, 100, 500, 1000, 5000),
)
REDIS_RECONNECTS = Counter("chatroom_redis_reconnects_total", "Times the Redis listener reconnected")
RATE_LIMITED = Counter(
    "chatroom_rate_limited_total", "Requests refused with 429 (rate limits, slow mode)", ["endpoint"]
)


def enabled() -> bool:
    """Whether metrics are collected (``METRICS_TOKEN`` is set)."""
    return _state["enabled"]


def stream_opened() -> None:
    """An event stream started."""
    if _state["enabled"]:
        OPEN_STREAMS.inc()


def stream_closed() -> None:
    """An event stream ended (call once per ``stream_opened``, in a ``finally``)."""
    if _state["enabled"]:
        OPEN_STREAMS.dec()


def delivered(count: int = 1) -> None:
    """``count`` events were written to a stream."""
    if _state["enabled"] and count > 0:
        DELIVERIES.inc(count)


def caught_up(messages: int) -> None:
    """A stream's catch-up from the database replayed ``messages`` messages."""
    if _state["enabled"]:
        CATCHUPS.inc()
        CATCHUP_MESSAGES.observe(messages)


def redis_reconnected() -> None:
    """The broker's Redis listener reconnected."""
    if _state["enabled"]:
        REDIS_RECONNECTS.inc()


def timed_post(post: Callable[P, R]) -> Callable[P, R]:
    """Decorate the posting service: count posts by outcome, and time those that store a message.

    The service returns ``(message, created)``: created, or a duplicate of one already
    stored (the same form sent twice); a refusal (any exception) counts as refused. None (a fast path
    that hands the post to the full one) counts nothing.
    """

    @functools.wraps(post)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not _state["enabled"]:
            return post(*args, **kwargs)
        started = time.perf_counter()
        try:
            result = post(*args, **kwargs)
        except Exception:
            POSTS.labels("refused").inc()
            raise
        if result is None:  # a fast path that passed the post on (``messages.post_at_once``): the full path counts it
            return result
        created = bool(result[1]) if isinstance(result, tuple) and len(result) == 2 else True
        POSTS.labels("created" if created else "duplicate").inc()
        if created:
            POST_SECONDS.observe(time.perf_counter() - started)
        return result

    return wrapper


def _count_refusals(response: Response) -> Response:
    if response.status_code == 429 and _state["enabled"]:
        RATE_LIMITED.labels(request.endpoint or "unknown").inc()
    return response


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus's text format, and its content type (every worker's, in multiprocess mode)."""
    registry: Any = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return _generate_latest(registry), CONTENT_TYPE_LATEST


def authorized(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries the metrics token (compared in constant time)."""
    scheme, _, value = (header or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def init_app(app: Flask) -> None:
    """Switch collection on when ``METRICS_TOKEN`` is set (for the process: the counters are process-wide)."""
    _state["enabled"] = bool(app.config.get("METRICS_TOKEN"))
    app.after_request(_count_refusals)
