"""The JSON API under ``/api/v1``, its OpenAPI 3.1 document at ``/api/openapi.json`` and its docs at ``/api/docs``.

Built with flask-smorest (marshmallow schemas, apispec for the document), because it
works on a plain ``Flask`` app with ordinary blueprints (our app factory stays as it
is: no app subclass), writes OpenAPI 3.1 (apispec's 3.1 converter writes nullable
fields as type lists), is maintained, and is tested upstream against Flask 3.1. See
``docs/api.md`` for how to use the API and why this library.

- ``core``: the blueprint, authentication (tokens; cookies with CSRF), rate limits;
- ``schemas``: request and response shapes;
- ``views``: the operations, one service call each;
- ``docs``: the document and a server-rendered page from it (nothing from a CDN).

Errors are problem documents (RFC 9457, ``chatroom/problems.py``), rendered by
``chatroom/errors.py`` for every path under ``/api/``.
"""

from __future__ import annotations

import http
from typing import Any

from flask import Flask
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from .. import problems
from . import core, docs, views  # noqa: F401 - views attaches the routes to core.bp
from .schemas import ProblemSchema

TITLE = "Chatroom API"
VERSION = "1"
OPENAPI_VERSION = "3.1.0"


class ChatroomApi(Api):  # type: ignore[misc]  # flask-smorest has no type hints
    """flask-smorest's ``Api``, with errors as problem documents and no app-wide JSON error handler.

    flask-smorest registers a JSON handler for every ``HTTPException`` of the app, which
    would turn our HTML error pages into JSON; ``chatroom/errors.py`` answers errors
    instead (problem documents under ``/api/`` only), so that registration is skipped,
    and the error responses it documents say ``application/problem+json``.
    """

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        """Nothing: chatroom/errors.py renders every error (problem documents under /api/)."""

    def _register_responses(self) -> None:
        """The reusable error responses of the document, as problem documents (flask-smorest's, re-typed)."""
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, problems.MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        default: dict[str, Any] = {"description": "A problem document (RFC 9457)", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, problems.MEDIA_TYPE)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)


def init_app(app: Flask) -> ChatroomApi:
    """Register the API and its docs on ``app``; call after ``limits.init_app`` (the API's limits use it)."""
    app.config.setdefault("API_TITLE", TITLE)
    app.config.setdefault("API_VERSION", VERSION)
    app.config.setdefault("OPENAPI_VERSION", OPENAPI_VERSION)
    app.config.setdefault(
        "API_SPEC_OPTIONS",
        {
            "info": {
                "description": "Rooms, messages and moderation for facilitators, with a personal access token "
                "(make one on your account page). Errors are problem documents (RFC 9457). "
                "See also /api/docs.",
            },
            "security": [{"token": []}],
            "components": {
                "securitySchemes": {
                    "token": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "A personal access token from your account page",
                    }
                }
            },
        },
    )
    # One Api per app (tests build many apps); the blueprints are shared, as Flask allows.
    api = ChatroomApi(app)
    api.register_blueprint(core.bp)
    core.init_app(app)
    app.register_blueprint(docs.bp)
    app.extensions["chatroom.api"] = api
    return api
