"""The front page, the health probes, and the reader's preferences: colour theme, auto-refresh without JavaScript.

``/healthz`` says the process answers (liveness: restart it if not); ``/readyz`` says it
can do its work (readiness: PostgreSQL, and Redis when configured, answer), else 503
naming what does not, so a platform stops routing to it without restarting it.

Preferences live in cookies set by small POST forms that work without JavaScript
(post/redirect/get back to the page they were chosen on). They change only the page
around the room, through ``base.html``; fragments broadcast to a room never depend on
them (render once, the same bytes to everyone).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, has_request_context, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from . import metrics
from .health import health_checks
from .htmx import is_htmx, safe_next, see_other

# The blueprint keeps its first name, "views": endpoint names (views.index, views.theme) are part of our URLs' API.
bp = Blueprint("views", __name__)

THEMES = ("light", "dark", "system")
THEME_COOKIE = "theme"
AUTO_REFRESH_COOKIE = "autorefresh"
AUTO_REFRESH_SECONDS = 30
PREFERENCE_MAX_AGE = 400 * 24 * 3600  # the longest a browser keeps a cookie


@bp.get("/")
def index() -> str | Response:
    """What Chatroom is; signed-in facilitators go straight to their rooms."""
    if current_user.is_authenticated:
        return redirect(url_for("rooms.dashboard"))
    return render_template("index.html")


@bp.get("/healthz")
def health() -> dict[str, str]:
    """A cheap liveness probe for the platform's router."""
    return {"status": "ok"}


@bp.get("/readyz")
def ready() -> tuple[dict[str, Any], int]:
    """Readiness: PostgreSQL (or SQLite) and Redis (when configured) answer; else 503 naming which does not.

    ``{"status": "ok", "checks": {"database": "ok", "redis": "ok"}}``; a failed check says
    ``"unreachable"`` (the reason goes to the log, not to the caller). Redis is ``"not configured"``
    on the embedded default.
    """
    checks = health_checks()
    ok = all(value in ("ok", "not configured") for value in checks.values())
    response = {"status": "ok" if ok else "unavailable", "checks": checks}
    return response, 200 if ok else 503


@bp.get("/metrics")
def metrics_view() -> Response:
    """Prometheus metrics (``chatroom/metrics.py``), for a scraper sending ``METRICS_TOKEN`` as a bearer token.

    :raise 404: metrics are off (no ``METRICS_TOKEN``). :raise 401: the token is missing or wrong.
    """
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        abort(404)
    if not metrics.authorized(request.headers.get("Authorization"), str(token)):
        response = Response("Send the metrics token as: Authorization: Bearer <token>\n", 401, mimetype="text/plain")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})


@bp.post("/theme")
def theme() -> Response:
    """Remember the colour theme (light, dark, or the system's) and go back to the page it was chosen on.

    With htmx (the room page's script switches the page itself) the answer is 204.
    :raise 400: an unknown theme.
    """
    choice = request.form.get("theme", "")
    if choice not in THEMES:
        abort(400)
    response = Response(status=204) if is_htmx() else see_other(safe_next(request.form.get("next")))
    _remember(response, THEME_COOKIE, choice)
    return response


@bp.post("/autorefresh")
def autorefresh() -> Response:
    """Switch on or off the room page's automatic refresh for readers without JavaScript (off by default)."""
    response = see_other(safe_next(request.form.get("next")))
    if request.form.get("autorefresh") == "on":
        _remember(response, AUTO_REFRESH_COOKIE, "on")
    else:
        response.delete_cookie(AUTO_REFRESH_COOKIE, samesite="Lax", secure=_secure())
    return response


def _remember(response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name, value, max_age=PREFERENCE_MAX_AGE, samesite="Lax", secure=_secure(), httponly=True, path="/"
    )


def _secure() -> bool:
    return bool(current_app.config.get("SESSION_COOKIE_SECURE", False))


@bp.app_context_processor
def _preferences() -> dict[str, Any]:
    """The reader's preferences and where their forms come back to, for the page layout."""
    if not has_request_context():
        return {}
    chosen = request.cookies.get(THEME_COOKIE)
    return {
        "theme": chosen if chosen in THEMES else "system",
        "autorefresh": request.cookies.get(AUTO_REFRESH_COOKIE) == "on",
        "auto_refresh_seconds": AUTO_REFRESH_SECONDS,
        "back_to": _back_to(),
    }


def _back_to() -> str:
    """This page's path, or for a page rendered by a POST (a form with errors) the page that sent it."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    sender = urlsplit(request.referrer or "")
    if sender.netloc == request.host and sender.path:
        return sender.path + (f"?{sender.query}" if sender.query else "")
    return url_for("views.index")
