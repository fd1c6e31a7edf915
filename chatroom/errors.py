"""Error pages: every refusal is a human sentence with the right status, never a bare 500."""

from __future__ import annotations

import logging

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .htmx import is_htmx

log = logging.getLogger(__name__)

MESSAGES = {
    400: "The request could not be understood. Go back, reload the page and try again.",
    403: "You do not have access to this page.",
    404: "There is nothing here. Check the link you were given.",
    405: "That action is not available here.",
    413: "That was too large to send. Shorten it and try again.",
    429: "Too many attempts. Wait a moment and try again.",
    500: "Something went wrong on our side. Your last action may not have been saved; try again.",
}


def render_error(status: int, message: str | None = None) -> tuple[str, int]:
    text = message or MESSAGES.get(status, "Something went wrong.")
    template = "errors/_error.html" if is_htmx() else "errors/error.html"
    return render_template(template, status=status, message=text), status


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str, int]:
        return render_error(400, "This form has expired or was sent from elsewhere. Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int]:
        status = error.code or 500
        custom = error.description if getattr(error, "human", False) else None
        return render_error(status, custom)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[str, int]:
        log.exception("unhandled error")
        return render_error(500)
