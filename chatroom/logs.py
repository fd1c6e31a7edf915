"""Logs: one line per request with a request id, as text or as JSON (``LOG_FORMAT=json``).

Every request gets an id: the ``X-Request-ID`` a trusted proxy sent (only when
``TRUSTED_PROXY_HOPS`` says a proxy is in front; a short token of letters, digits and
``._-``), or a new random one. It goes back in the response's ``X-Request-ID``, into
the request's log line (``chatroom.request``: method, path, status, duration, the
client address, the endpoint) and into every other line logged while the request
runs, so one id finds everything a request did across the proxy's and our logs.

``LOG_FORMAT=json`` writes one JSON object per line (``time``, ``level``, ``logger``,
``message``, ``request_id`` and the request line's fields), for platforms that index
logs; the default is plain text.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, has_request_context, request

HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
request_log = logging.getLogger("chatroom.request")
REQUEST_FIELDS = ("method", "path", "status", "duration_ms", "client", "endpoint")


def current_request_id() -> str | None:
    """The id of the request being handled, or None outside a request."""
    if not has_request_context():
        return None
    value = g.get("request_id")
    return value if isinstance(value, str) else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request id, request fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line (exceptions as a ``exception`` string)."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            entry["request_id"] = request_id
        for name in REQUEST_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(app: Flask) -> None:
    """Set up the root logger once per process: text, or JSON when ``LOG_FORMAT=json``.

    If something (gunicorn, a test runner) already configured logging, only the
    formatter of its handlers changes, and only for JSON.
    """
    json_format = str(app.config.get("LOG_FORMAT", "text")).lower() == "json"
    formatter: logging.Formatter = JsonFormatter() if json_format else logging.Formatter(TEXT_FORMAT)
    root = logging.getLogger()
    if not root.handlers:
        stream = logging.StreamHandler()
        stream.setFormatter(formatter)
        root.addHandler(stream)
        root.setLevel(logging.INFO)
    elif json_format:
        for handler in root.handlers:
            handler.setFormatter(formatter)


def _request_id() -> str:
    """The proxy's id when a trusted proxy is in front and it looks like one, else a new one."""
    from flask import current_app

    incoming = request.headers.get(HEADER, "")
    if current_app.config.get("TRUSTED_PROXY_HOPS", 0) > 0 and _VALID_ID.fullmatch(incoming):
        return incoming
    return secrets.token_hex(8)


def _start() -> None:
    g.request_id = _request_id()
    g.request_started = time.perf_counter()


def _finish(response: Response) -> Response:
    request_id = current_request_id()
    if request_id is None:  # a request that failed before _start ran
        request_id = g.request_id = _request_id()
    if request.endpoint not in ("static", "views.asset"):  # files, the same for every request: no id to quote
        response.headers[HEADER] = request_id
    started = g.get("request_started")
    duration = round((time.perf_counter() - started) * 1000, 1) if isinstance(started, float) else None
    fields = {
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "duration_ms": duration,
        "client": request.remote_addr,
        "endpoint": request.endpoint,
        "request_id": request_id,
    }
    took = "-" if duration is None else f"{duration}ms"  # None: refused before _start ran (CSRF, size)
    request_log.info(
        "%s %s %s %s id=%s", request.method, request.path, response.status_code, took, request_id, extra=fields
    )
    return response


def init_app(app: Flask) -> None:
    """Give every request an id and log one line for it (register early, so every answer carries the id).

    ``create_app`` calls :func:`configure` first, before anything logs.
    """
    app.before_request(_start)
    app.after_request(_finish)
