"""The API blueprint, who is calling, and how much: bearer tokens, cookies with CSRF, per-token rate limits.

Every ``/api/v1`` request is authenticated before its view runs:

- ``Authorization: Bearer <token>``: a personal access token (``services.tokens``). Such
  requests need no CSRF token: a page on another site cannot make a browser send this
  header, so it proves the request was meant. A header that is not a valid, active
  token is refused (401) even if a session cookie rides along.
- Otherwise a signed-in facilitator's session cookie, as the pages use; then every
  request that changes something must carry the CSRF token (``X-CSRFToken``), exactly
  as for the pages (the blueprint is exempt from the global check and checks here).
- Neither: 401, with ``WWW-Authenticate: Bearer``.

Authorization is the pages' (``chatroom/access.py``): a room is looked up through its
owner, so another facilitator's room answers 404, as if it did not exist.

A body must be JSON (``Content-Type: application/json`` and JSON that parses): anything
else is refused with 400 "The body is not JSON" before the operation reads it; JSON of
the wrong shape is 422, naming the fields (``docs/api.md``).
"""

from __future__ import annotations

import json

from flask import Flask, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import current_user
from flask_smorest import Blueprint
from webargs.flaskparser import abort  # flask-smorest's abort, typed: HTTP errors with a message
from werkzeug.exceptions import RequestEntityTooLarge

from .. import limits
from ..access import room_owned_by_or_404
from ..extensions import csrf, db
from ..models import Facilitator, Room
from ..services import tokens

bp = Blueprint(
    "api",
    __name__,
    url_prefix="/api/v1",
    description="Rooms, their messages and their moderation, for the facilitator who owns them.",
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BAD_HEADER = "Send the token as: Authorization: Bearer <token>."
NOT_JSON = "The body is not JSON: send JSON with Content-Type: application/json."
BAD_TOKEN = "This token is not valid: it may have been revoked, or its account disabled. Make a new one."  # noqa: S105

# Per token (or signed-in account): every call, and on top of that every change.
RATE_LIMITS = {"all": "300 per minute", "changes": "60 per minute;1000 per hour"}


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None when there is no such header.

    :raise 401: an Authorization header of another kind, or an empty one.
    """
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, raw = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        abort(401, message=BAD_HEADER)
    return raw.strip()


@bp.before_request
def _authenticate() -> None:
    """Find the caller (token, or session cookie with CSRF for changes), or refuse with 401; then check the body.

    :raise 413: a body over ``MAX_CONTENT_LENGTH``, whether or not the operation reads one.
    :raise 400: a body that is not JSON (``_check_json_body``), or a cookie's change without its CSRF token.
    """
    limit = request.max_content_length
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()
    raw = bearer_token()
    if raw is not None:
        token = tokens.authenticate(raw)
        if token is None:
            abort(401, message=BAD_TOKEN)
        g.api_caller = token.facilitator
    elif current_user.is_authenticated:
        if request.method not in SAFE_METHODS:
            csrf.protect()  # raises CSRFError (400) without a valid token
        g.api_caller = db.session.get(Facilitator, current_user.id)
    else:
        abort(401)
    _check_json_body()


def _check_json_body() -> None:
    """A body, if any, is JSON: a JSON content type and text that parses.

    :raise 400: a body of another type (a form, plain text), or one that does not parse as JSON.
    """
    body = request.get_data(cache=True)
    if not body:
        return  # no body: the operation's schema says what is missing (422)
    if not request.is_json:
        abort(400, message=NOT_JSON)
    try:
        json.loads(body)
    except (ValueError, UnicodeDecodeError):
        abort(400, message=NOT_JSON)


def caller() -> Facilitator:
    """The facilitator this request acts for (set before every view)."""
    facilitator: Facilitator = g.api_caller
    return facilitator


def owned_room(code: str) -> Room:
    """The caller's room with this code. :raise 404: missing or someone else's."""
    return room_owned_by_or_404(code, caller())


def _rate_key() -> str:
    """What a limit counts per: the token (by its hash), else the signed-in account, else the address."""
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.strip().partition(" ")
    if scheme.lower() == "bearer" and raw.strip():
        return "api-token:" + tokens.token_hash(raw.strip())[:32]
    if current_user.is_authenticated:
        return f"api-account:{current_user.id}"
    return "api-addr:" + get_remote_address()


def init_app(app: Flask) -> None:
    """Exempt the blueprint from the global CSRF check (it checks cookie requests itself) and limit it.

    Call after ``limits.init_app`` and after the blueprint is registered: the limits use that limiter, so they
    share its storage, and the operations' own limits (``limits.API_LIMITS``: rooms per hour with the room form,
    the host's posts and reactions in the ``posts`` scope) wrap the registered views.
    """
    csrf.exempt(bp)
    limiter: Limiter | None = app.extensions.get("chatroom.limiter")
    if limiter is not None:
        limiter.limit(RATE_LIMITS["all"], key_func=_rate_key)(bp)
        limiter.limit(RATE_LIMITS["changes"], key_func=_rate_key, methods=["POST", "PATCH", "PUT", "DELETE"])(bp)
        limits.apply(app, limits.API_LIMITS)
