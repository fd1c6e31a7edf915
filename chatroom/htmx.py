"""Progressive enhancement: the same endpoint answers a full page or an htmx fragment; where to go next."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse


def is_htmx() -> bool:
    """True when htmx sent the request (it expects a fragment, not a page)."""
    return request.headers.get("HX-Request") == "true"


def page_or_fragment(page: str, fragment: str, status: int = 200, **context: Any) -> Response:
    """Render ``fragment`` for htmx and ``page`` otherwise, with the given status."""
    return make_response(render_template(fragment if is_htmx() else page, **context), status)


def see_other(location: str) -> BaseResponse:
    """Post/redirect/get: a 303 that makes the browser GET ``location``."""
    return redirect(location, 303)


def safe_next(target: str | None) -> str:
    """``target`` when it is a path on this site, else the dashboard (no open redirects)."""
    fallback = url_for("rooms.dashboard")
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or any(ord(c) < 32 for c in target):
        return fallback
    return target


def external_url(endpoint: str, **values: Any) -> str:
    """An absolute link (for mail, the share link, the QR code), built on ``PUBLIC_URL`` when it is set.

    Never from a forged ``Host`` header: production refuses to start without either
    ``PUBLIC_URL`` or ``ALLOWED_HOSTS`` (Flask's ``TRUSTED_HOSTS``, which refuses other hosts
    with 400 before a link is built); see ``chatroom/__init__.py``.
    """
    base = current_app.config.get("PUBLIC_URL")
    if base:
        return base.rstrip("/") + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


def _vary(response: Response) -> Response:
    # Pages and fragments share URLs: caches must key on the header that tells them apart. Static files
    # and script bundles are the same bytes either way.
    if request.endpoint not in ("static", "views.asset"):
        response.vary.add("HX-Request")
    return response


def init_app(app: Flask) -> None:
    """``Vary: HX-Request`` on every response; ``external_url`` and ``safe_next`` for templates."""
    app.after_request(_vary)
    app.jinja_env.globals["external_url"] = external_url
    app.jinja_env.globals["safe_next"] = safe_next
