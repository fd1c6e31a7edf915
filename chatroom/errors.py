"""Error pages: every refusal is a human sentence with the right status, never a bare 500.

One rule for refusals: a service that refuses (:class:`~chatroom.services.Invalid`)
has already left the database session clean (``services._core.refuses_cleanly``), and
a view either re-renders its form with the reasons beside the fields, or lets the
refusal reach the handler here, which shows its human message with its status. An
unexpected error rolls the session back before the 500 page renders, so nothing half
done is committed by a later flush.

With htmx the answer is a small fragment (htmx 4 swaps 4xx/5xx answers by default),
without it a full page.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, render_template
from flask.globals import request_ctx
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .extensions import db
from .htmx import is_htmx
from .services import Invalid

log = logging.getLogger(__name__)

MESSAGES = {
    400: "The request could not be understood. Go back, reload the page and try again.",
    403: "You do not have access to this page.",
    404: "There is nothing here. Check the link you were given.",
    405: "That action is not available here.",
    409: "That was already done, or it conflicts with a change made meanwhile. Reload the page to see the latest.",
    413: "That was too large to send. Shorten it and try again.",
    429: "Too many attempts. Wait a moment and try again.",
    500: "Something went wrong on our side. Your last action may not have been saved; try again.",
}


def render_error(status: int, message: str | None = None) -> tuple[str, int] | Response:
    """The error page (or htmx fragment) for ``status``, with ``message`` or the standard sentence for it.

    A request whose ``Host`` header cannot be read (a label over 63 characters, ``a..b``,
    a host outside ``TRUSTED_HOSTS``) has no URL adapter, so no page with links can be
    drawn for it: it gets the sentence as plain text instead, and nothing is logged.
    """
    text = message or MESSAGES.get(status, "Something went wrong.")
    if request_ctx.url_adapter is None:
        return Response(text + "\n", status, mimetype="text/plain")
    template = "errors/_error.html" if is_htmx() else "errors/error.html"
    return render_template(template, status=status, message=text), status


def init_app(app: Flask) -> None:
    """Register the error handlers: CSRF failures, HTTP errors, refused service calls and the unexpected."""

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str, int] | Response:
        return render_error(400, "This form has expired or was sent from elsewhere. Reload the page and try again.")

    @app.errorhandler(Invalid)
    def refused(error: Invalid) -> tuple[str, int] | Response:
        db.session.rollback()  # the service did already; a view may have changed something since
        return render_error(error.status, error.message or None)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int] | Response:
        return render_error(error.code or 500)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[str, int] | Response:
        log.exception("unhandled error")
        db.session.rollback()
        return render_error(500)
