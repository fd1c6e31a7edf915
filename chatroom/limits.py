"""Rate limits (Flask-Limiter), in one table so they can be read, documented and tested together.

Counters live in Redis when ``REDIS_URL`` is set, so every worker and instance
shares them; on the embedded default they live in the process. If Redis goes
away, each process falls back to counting in memory (``in_memory_fallback``)
rather than letting everything through or refusing everything, and logs it.

A request over a limit gets 429, a human sentence, and a ``Retry-After`` that
tells the truth: the whole seconds (rounded up) until every limit this request
is over has room again, so a client that waits that long is let through
(``retry_after``). Limits are checked before the view runs, so a flood of
join attempts never reaches bcrypt. Client addresses come from the socket
unless ``TRUSTED_PROXY_HOPS`` says how many proxies in front of us append to
``X-Forwarded-For`` (see ``chatroom/headers.py``); a forged header from a
client changes nothing.

A shared address is normal for our users: a class behind one school NAT, a
workshop on one conference Wi-Fi. So the password endpoints count *failures*
only (a view calls ``count_failure`` when a password was wrong), per browser and
per address, and a right password never spends anything. A browser is its
session's CSRF secret (every form post carries one): a fresh browser costs an
attacker one page load, which is why every per-browser limit has a per-address
one behind it. Second factors and password re-checks are limited per *account* as
well (``_signed_in_account``): someone who has the password can spread guesses at
the 6-digit code over many addresses, but not over many accounts. Creating rooms is
limited per account (``ROOMS_PER_HOUR``), one counter for the room form and the JSON
API's ``POST /rooms`` (the ``rooms`` scope). Posting, reacting, voting and a private
word to the host share one counter per seat (the ``posts`` scope); the API's host
posts and reactions count in that scope too, per room and account (``API_LIMITS``).
``Retry-After`` goes on refusals only (429, 503): Flask-Limiter puts one on every
response of a limited endpoint, which would tell a client whose request worked to wait.
What each limit is for is in ``docs/limits.md``.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from flask import Flask, Response, current_app, g, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import current_user
from sqlalchemy import select

from .access import PENDING_SIGN_IN, SEATS
from .extensions import db
from .models import Room
from .text import key_of


def _code() -> str:
    return str((request.view_args or {}).get("code", ""))


def _room_key() -> str:
    return "room:" + _code()


def _seat_key() -> str:
    """The participant (their seat in this room), or the client address when there is none."""
    seats = session.get(SEATS, {})
    return f"seat:{_code()}:{sorted(seats.items())}" if seats else "addr:" + get_remote_address()


def _browser() -> str:
    """This browser: a digest of its session's CSRF secret (every form post has one)."""
    secret = str(session.get("csrf_token", ""))
    return hashlib.sha256(secret.encode()).hexdigest()[:16] if secret else "none"


def _join_address_key() -> str:
    return f"join:{_code()}:{get_remote_address()}"


def _join_browser_key() -> str:
    return f"join:{_code()}:{get_remote_address()}:{_browser()}"


def _returning_participant() -> bool:
    """A browser that has held a seat in this room (left or removed) has shown it knows the password.

    It is spared the per-address count (its own per-browser count still applies), so a
    returning participant is never kept out by someone else's failures on their network.
    """
    seats = session.get(SEATS, {})
    if not seats:
        return False
    room_id = db.session.scalar(select(Room.id).where(Room.code == _code()))
    return room_id is not None and str(room_id) in seats


def _account_key() -> str:
    return f"login:{get_remote_address()}:{key_of(request.form.get('email', ''))}"


def _pending_key() -> str:
    pending = session.get(PENDING_SIGN_IN)
    account = pending.get("id") if isinstance(pending, dict) else None
    return f"code:{get_remote_address()}:{account}"


def _browser_key() -> str:
    return f"{get_remote_address()}:{_browser()}"


def _signed_in_account() -> str:
    """The account being checked: the one an API token acts for (``g.api_caller``, set by ``chatroom/api/core.py``
    before the view, so before a view's own limits are counted), the signed-in facilitator, or the one waiting
    for its second factor.

    Without any (the view will refuse anyway), the client address.
    """
    caller = g.get("api_caller")
    if caller is not None:
        return f"account:{caller.id}"
    if current_user.is_authenticated:
        return f"account:{current_user.id}"
    pending = session.get(PENDING_SIGN_IN)
    if isinstance(pending, dict) and isinstance(pending.get("id"), int):
        return f"account:{pending['id']}"
    return "addr:" + get_remote_address()


def _rooms_per_hour() -> str:
    return f"{int(current_app.config.get('ROOMS_PER_HOUR', 20))} per hour"


def _api_host_key() -> str:
    """The host seat the API acts as: this room's, for this account (``_signed_in_account``)."""
    return f"seat:{_code()}:host:{_signed_in_account()}"


class Rule(NamedTuple):
    """One limit: its windows, what it counts per, whether only failures count, who is spared it, and
    the ``scope`` whose endpoints share one counter (None: this endpoint's own)."""

    limit: str | Callable[[], str]
    key: Callable[[], str]
    failures_only: bool = False  # count only requests the view marked with count_failure()
    exempt: Callable[[], bool] | None = None
    scope: str | None = None
    successes_only: bool = False  # count only requests that were not refused (a form sent back with errors)


# Posting, reacting, voting and a private word to the host are all "posts" of a seat.
POSTS = Rule("20 per 10 seconds;120 per minute", _seat_key, scope="posts")
RECHECK = "10 per 15 minutes"  # a password asked again on the account pages
# Rooms made per account and hour, through the form or the API alike (only rooms made count).
ROOMS = Rule(_rooms_per_hour, _signed_in_account, successes_only=True, scope="rooms")
# The API's host acts in a room: the same windows as a seat's posts, in the same scope.
API_POSTS = Rule(POSTS.limit, _api_host_key, scope="posts")

# endpoint -> the limits that apply (a plain (limit, key) pair counts every POST).
LIMITS: dict[str, list[Rule] | list[tuple[str, Callable[[], str]]]] = {
    # Guessing an account's password: per address and account, and per address across accounts.
    "auth.login": [
        Rule("10 per minute;50 per hour", _account_key, failures_only=True),
        Rule("30 per minute;300 per hour", get_remote_address, failures_only=True),
    ],
    "auth.login_code": [
        Rule("10 per minute;50 per hour", _pending_key, failures_only=True),
        Rule("30 per minute;300 per hour", get_remote_address, failures_only=True),
        Rule("6 per minute;30 per hour", _signed_in_account, failures_only=True),  # across addresses
    ],
    # Accounts are made rarely: a handful per browser, and a workshop's worth per address.
    "auth.signup": [Rule("10 per minute;30 per hour", _browser_key), Rule("60 per hour", get_remote_address)],
    "auth.forgot_password": [("5 per 15 minutes", get_remote_address)],
    "auth.reset_password": [("10 per 15 minutes", get_remote_address)],
    "auth.change_password": [(RECHECK, get_remote_address), (RECHECK, _signed_in_account)],
    "auth.two_factor_disable": [(RECHECK, get_remote_address), (RECHECK, _signed_in_account)],
    "auth.recovery_codes": [(RECHECK, get_remote_address), (RECHECK, _signed_in_account)],
    "rooms.create": [ROOMS],
    # Guessing a room's password: per browser, and per address (a returning participant is spared that one).
    # A class of 60 behind one address joins freely: right passwords never count.
    "chat.join": [
        Rule("10 per minute;50 per hour", _join_browser_key, failures_only=True),
        Rule("30 per minute;200 per hour", _join_address_key, failures_only=True, exempt=_returning_participant),
    ],
    "chat.post": [POSTS],
    "participation.react": [POSTS],
    "participation.vote": [POSTS],
    "participation.send_note": [POSTS],
    "participation.reply_note": [("60 per minute", _seat_key)],
    "participation.seen": [("30 per minute", _seat_key)],
    "chat.typing": [("30 per minute", _seat_key)],
    "chat.here": [("120 per minute", _seat_key)],  # a tab hidden and shown, and its goodbye
    "chat.report_message": [("10 per minute", _seat_key)],
}

# The JSON API's own endpoints, on top of its per-token limits (``chatroom/api/core.py``); applied by the API
# when it registers (``apply``), as it registers after the pages. Changes only (POST).
API_LIMITS: dict[str, list[Rule]] = {
    "api.create_room": [ROOMS],
    "api.post_message": [API_POSTS],
    "api.react": [API_POSTS],
    "api.reply_privately": [Rule("60 per minute", _api_host_key)],  # as participation.reply_note
}


def wait_at_least(seconds: int) -> None:
    """The view's own 429 (a room's slow mode) says when: ``Retry-After`` is at least ``seconds``.

    Flask-Limiter rewrites the header on the way out (rounding down), so the view says it here.
    """
    g.retry_after = seconds


def count_failure() -> None:
    """Mark this request as a failed attempt: the endpoint's ``failures_only`` limits count it."""
    g.limit_failure = True


def _failed(response: Response) -> bool:
    return bool(g.get("limit_failure", False))


def _succeeded(response: Response) -> bool:
    return response.status_code < 400


def limiter_of(app: Flask) -> Limiter:
    return app.extensions["chatroom.limiter"]


def retry_after() -> int:
    """Whole seconds until the same request would pass every limit it is over now (at least 1).

    Every limit of this request that has nothing left counts, not only the one that
    refused it: waiting for the shortest window while a longer one is full would only
    earn another refusal.
    """
    return max(1, _limits_wait())


def _limits_wait() -> int:
    """Whole seconds until every exhausted limit of this request has room (0: none is exhausted)."""
    limiter = limiter_of(current_app)
    now = time.time()
    wait = 0.0
    for current in limiter.current_limits:
        try:
            reset, remaining = limiter.limiter.get_window_stats(current.limit, *current.request_args)
        except Exception:  # storage away: the fallback's next window is as good a guess as any
            reset, remaining = now + current.limit.get_expiry(), 0
        if remaining <= 0 or current.breached:
            wait = max(wait, reset - now, 1)
    return math.ceil(wait)


def _truthful_headers(response: Response) -> Response:
    """Replace Flask-Limiter's rounded-down ``Retry-After`` (0 in a window's last second) with ``retry_after``.

    A 429 of the view's own (a room's slow mode) keeps its ``Retry-After`` unless a limit asks for longer.
    """
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)  # Flask-Limiter's, on an answer that refused nothing
        return response
    if response.status_code == 503 and g.get("busy_retry_after"):
        response.headers["Retry-After"] = str(g.busy_retry_after)  # a busy database's, not the window's
        return response
    if response.status_code != 429 or not _limited(request.endpoint) or not limiter_of(current_app).current_limits:
        return response
    seconds = max(_limits_wait(), int(g.get("retry_after", 0)), 1)
    response.headers["Retry-After"] = str(seconds)
    response.headers["X-RateLimit-Reset"] = str(math.ceil(time.time()) + seconds)
    return response


def _limited(endpoint: str | None) -> bool:
    return endpoint in LIMITS or endpoint in API_LIMITS


def init_app(app: Flask) -> Limiter:
    """Attach the limiter and wrap every endpoint in ``LIMITS`` (call after the blueprints).

    Only POSTs count: showing a form is cheap, submitting it is what an attacker repeats.
    """
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    if app.config["RATELIMIT_STORAGE_URI"].startswith(("redis://", "rediss://")):
        # A paused Redis must not hold every limited request: a short timeout, then Flask-Limiter's own
        # breaker (in-memory counters, the storage retried after 1, 2, 4... seconds).
        timeout = app.config.get("REDIS_TIMEOUT_SECONDS", 0.5)
        app.config.setdefault(
            "RATELIMIT_STORAGE_OPTIONS", {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        )
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "chatroom-limits")
    # Registered before the limiter's own: after_request functions run in reverse, so this one has the last word.
    app.after_request(_truthful_headers)
    # One limiter per app, not a module singleton: Flask-Limiter keeps its settings on the
    # instance, so a second app (tests build many) would switch the first one's limits.
    limiter = Limiter(key_func=get_remote_address, headers_enabled=True, in_memory_fallback_enabled=True)
    limiter.init_app(app)
    app.extensions["chatroom.limiter"] = limiter  # the view wrappers hold it only weakly
    apply(app, LIMITS)
    return limiter


RuleTable = Mapping[str, Sequence[Rule | tuple[str, Callable[[], str]]]]


def apply(app: Flask, table: RuleTable) -> None:
    """Wrap each endpoint of ``table`` that the app has in its limits (POSTs only; see ``init_app``).

    Call once per table, after ``init_app`` and after the endpoints are registered.
    """
    limiter = limiter_of(app)
    for endpoint, rules in table.items():
        view: Any = app.view_functions.get(endpoint)
        if view is None:
            continue  # an optional feature that this build does not have
        for raw in rules:
            rule = Rule(*raw)
            options: dict[str, Any] = {
                "key_func": rule.key,
                "methods": ["POST"],
                "deduct_when": _failed if rule.failures_only else (_succeeded if rule.successes_only else None),
                "exempt_when": rule.exempt,
                "override_defaults": False,  # on top of a blueprint's limits (the API's per token), not instead
            }
            if rule.scope is None:
                view = limiter.limit(rule.limit, **options)(view)
            else:  # one counter for every endpoint of the scope
                view = limiter.shared_limit(rule.limit, rule.scope, **options)(view)
        app.view_functions[endpoint] = view
