"""Progressive enhancement: the same endpoint answers a full page or an htmx fragment."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, make_response, redirect, render_template, request
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


def _vary(response: Response) -> Response:
    # Pages and fragments share URLs: caches must key on the header that tells them apart.
    response.vary.add("HX-Request")
    return response


def init_app(app: Flask) -> None:
    app.after_request(_vary)
