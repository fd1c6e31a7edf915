"""Error pages: every refusal is a human sentence with the right status, never a bare 500.

One rule for refusals: a service that refuses (:class:`~chatroom.services.Invalid`)
has already left the database session clean (``services._core.refuses_cleanly``), and
a view either re-renders its form with the reasons beside the fields, or lets the
refusal reach the handler here, which shows its human message with its status. An
unexpected error rolls the session back before the 500 page renders, so nothing half
done is committed by a later flush.

With htmx the answer is a small fragment (htmx 4 swaps 4xx/5xx answers by default),
without it a full page. Under ``/api/`` it is a problem document (RFC 9457, ``chatroom/problems.py``)
with the same sentence.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3

from flask import Flask, g, render_template, request
from flask.globals import request_ctx
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from . import problems
from .extensions import db, login_manager
from .htmx import is_htmx
from .services import Invalid

log = logging.getLogger(__name__)

MESSAGES = {
    400: "The request could not be understood. Go back, reload the page and try again.",
    401: "Sign in first: send a personal access token as Authorization: Bearer (make one on your account page).",
    403: "You do not have access to this page.",
    404: "There is nothing here. Check the link you were given.",
    405: "That action is not available here.",
    409: "That was already done, or it conflicts with a change made meanwhile. Reload the page to see the latest.",
    413: "That was too large to send. Shorten it and try again.",
    429: "Too many attempts. Wait a moment and try again.",
    500: "Something went wrong on our side. Your last action may not have been saved; try again.",
    503: "The server is busy right now, and your last action was not saved. Try again in a few seconds.",
}
# How long a client should wait after a 503 for a busy or unreachable database (RFC 9110 §10.2.3), in seconds.
BUSY_RETRY_SECONDS = 5
# PostgreSQL's SQLSTATE classes that retrying may cure (PostgreSQL manual, appendix A, "Error Codes").
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57"})


def render_error(
    status: int,
    message: str | None = None,
    errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    refresh: int | None = None,
) -> tuple[str, int] | Response:
    """The error page (or htmx fragment) for ``status``, with ``message`` or the standard sentence for it.

    Under ``/api/`` a problem document instead, with the field ``errors`` and extra ``headers`` if given.
    ``refresh``: a full page reloads itself after that many seconds (a busy server, for readers without JavaScript).
    A request whose ``Host`` header cannot be read (a label over 63 characters, ``a..b``,
    a host outside ``TRUSTED_HOSTS``) has no URL adapter, so no page with links can be
    drawn for it: it gets the sentence as plain text instead, and nothing is logged.
    """
    text = message or MESSAGES.get(status, "Something went wrong.")
    if request_ctx.url_adapter is None:
        return Response(text + "\n", status, mimetype="text/plain")
    if problems.wants_problem():
        return problems.problem(status, text, errors, headers)
    template = "errors/_error.html" if is_htmx() else "errors/error.html"
    return render_template(template, status=status, message=text, refresh=refresh), status


def init_app(app: Flask) -> None:
    """Register the error handlers: CSRF failures, HTTP errors, refused service calls and the unexpected."""

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str, int] | Response:
        if problems.wants_problem():  # a signed-in browser calling the API without the token
            return render_error(400, "Send the CSRF token (X-CSRFToken) with a signed-in browser's request.")
        return render_error(400, "This form has expired or was sent from elsewhere. Reload the page and try again.")

    @app.errorhandler(Invalid)
    def refused(error: Invalid) -> tuple[str, int] | Response:
        db.session.rollback()  # the service did already; a view may have changed something since
        return render_error(error.status, error.message or None, error.errors)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int] | Response:
        if problems.wants_problem():
            return _http_problem(error)
        return render_error(error.code or 500)

    @app.errorhandler(PoolTimeout)
    @app.errorhandler(OperationalError)
    def database_busy(error: Exception) -> tuple[str, int] | Response:
        """Every pooled connection stayed busy for ``DB_POOL_TIMEOUT_SECONDS``, or the database did not answer
        (a restart, a failover, a lock held too long): 503 with ``Retry-After`` (RFC 9110 §15.6.4), not a 500.
        Nothing was committed. A database error that retrying cannot cure (a missing table) is a 500."""
        if not transient(error):
            return unexpected(error)
        log.warning("database busy or unreachable: %s", str(error).splitlines()[0][:200])
        return _busy()

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[str, int] | Response:
        log.exception("unhandled error")
        db.session.rollback()
        return render_error(500)


def transient(error: Exception) -> bool:
    """Whether a database error means "busy or unreachable: try again soon" rather than a fault of ours.

    A worn-out pool; a connection that dropped or never opened (no server code: the client gave up); on
    PostgreSQL the SQLSTATE classes 08 (connection), 40 (rolled back: deadlock, serialization), 53 (out of
    resources) and 57 (shut down, cancelled); on SQLite a locked or unreachable file. Not a missing table.
    """
    if isinstance(error, PoolTimeout):
        return True
    if not isinstance(error, OperationalError):
        return False
    if error.connection_invalidated:
        return True
    original = error.orig
    if isinstance(original, sqlite3.Error):
        text = str(original).lower()
        return any(words in text for words in ("locked", "busy", "unable to open", "disk i/o"))
    code = getattr(original, "pgcode", None)
    return code is None or code[:2] in TRANSIENT_SQLSTATE_CLASSES


def _busy() -> Response:
    """The 503 of a busy database, drawn without asking it anything: the page shows no signed-in account (that
    would be a query), and a page asked for with GET reloads itself after ``Retry-After``."""
    if "_login_user" not in g:
        g._login_user = login_manager.anonymous_user()  # Flask-Login's loader would query the database
    g.busy_retry_after = BUSY_RETRY_SECONDS  # limits._truthful_headers keeps it over Flask-Limiter's window
    try:
        answer = render_error(503, refresh=BUSY_RETRY_SECONDS if request.method == "GET" else None)
        response = answer if isinstance(answer, Response) else Response(answer[0], answer[1], mimetype="text/html")
    except Exception:  # a template still needed the database: the sentence alone
        log.warning("could not draw the busy page", exc_info=True)
        response = Response(MESSAGES[503] + "\n", 503, mimetype="text/plain")
    with contextlib.suppress(Exception):  # the connection may be gone as well
        db.session.rollback()
    response.headers["Retry-After"] = str(BUSY_RETRY_SECONDS)
    return response


def _http_problem(error: HTTPException) -> Response:
    """An HTTP error under ``/api/``: its standard sentence, the fields a schema refused, and its headers."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}  # webargs puts the refused fields here (flask-smorest's abort)
    errors = problems.flatten(data.get("messages") or data.get("errors") or {})
    if status in (400, 422) and errors:
        lead = "Some fields are not right" if status == 422 else "The request could not be understood"
        detail = lead + ": " + "; ".join(f"{name}: {text}" for name, text in errors.items())
    else:
        detail = str(data.get("message") or MESSAGES.get(status) or error.description or "Something went wrong.")
    headers = {k: v for k, v in error.get_headers() if k.lower() in ("allow", "retry-after")}
    headers.update(data.get("headers") or {})
    return problems.problem(status, detail, errors, headers)
