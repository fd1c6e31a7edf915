"""Errors for machines: ``application/problem+json`` (RFC 9457) for everything under ``/api/``.

The JSON API answers every refusal as a problem document instead of an error page::

    {"type": "about:blank", "title": "Not Found", "status": 404,
     "detail": "There is nothing here. Check the link you were given.", "instance": "/api/v1/rooms/x"}

``type`` is ``about:blank`` (the status says what kind of problem it is; ``title`` is
its standard phrase), ``detail`` is the same human sentence a page would show, and a
refusal that names fields (a service's :class:`~chatroom.services.Invalid`, or a body
that does not match the schema) adds ``errors``: ``{field: message}``. ``401`` answers
carry ``WWW-Authenticate: Bearer``. ``chatroom/errors.py`` decides when to answer this
way (:func:`wants_problem`) and which sentence to use; this module only renders.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Response, has_request_context, request

MEDIA_TYPE = "application/problem+json"
API_PREFIX = "/api/"
# webargs's locations, and how a message about a whole location names it.
LOCATIONS = {
    "json": "body",
    "form": "body",
    "query": "query",
    "querystring": "query",
    "path": "path",
    "headers": "headers",
}
BEARER_CHALLENGE = 'Bearer realm="chatroom"'


def wants_problem() -> bool:
    """Whether this request is the API's (its path is under ``/api/``), so errors are problem documents."""
    return has_request_context() and request.path.startswith(API_PREFIX)


def flatten(errors: Any, prefix: str = "") -> dict[str, str]:
    """Field errors as ``{field: message}``, whatever their shape.

    webargs nests them by location and field (``{"json": {"title": ["Missing data…"]}}``),
    services give them flat; nested fields are joined with dots, lists of messages with spaces.
    """
    if isinstance(errors, Mapping):
        flat: dict[str, str] = {}
        for key, value in errors.items():
            name = str(key)
            if not prefix and name in LOCATIONS:
                # The location is not part of a field's name; a message about the whole location names it.
                name = LOCATIONS[name] if isinstance(value, list | tuple) else ""
            flat.update(flatten(value, f"{prefix}.{name}" if prefix and name else prefix or name))
        return flat
    if isinstance(errors, list | tuple):
        if all(isinstance(item, str) for item in errors):
            return {prefix or "request": " ".join(errors)}
        flat = {}
        for item in errors:
            flat.update(flatten(item, prefix))
        return flat
    return {prefix or "request": str(errors)}


def problem(
    status: int,
    detail: str,
    errors: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A problem document response for ``status`` with the human ``detail`` and optional field ``errors``."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if has_request_context():
        body["instance"] = request.path
    if errors:
        body["errors"] = dict(errors)
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=MEDIA_TYPE)
    response.headers["Cache-Control"] = "no-store"
    if status == 401:
        response.headers["WWW-Authenticate"] = BEARER_CHALLENGE
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
