"""Rate limits (Flask-Limiter), in one table so they can be read, documented and tested together.

Counters live in Redis when ``REDIS_URL`` is set, so every worker and instance
shares them; on the embedded default they live in the process. If Redis goes
away, each process falls back to counting in memory (``in_memory_fallback``)
rather than letting everything through or refusing everything, and logs it; a Redis
that hangs instead costs one ``REDIS_TIMEOUT_SECONDS`` wait, then the same fallback, and
Flask-Limiter retries the storage after 1, 2, 4... seconds (its own circuit breaker).

A request over a limit gets 429, a human sentence, and ``Retry-After``. Limits
are checked before the view runs, so a flood of join attempts never reaches
bcrypt.

Second factors and password re-checks are limited per *account* as well as per
address (``_account_key``): an attacker who has the password can spread guesses at
the 6-digit code over many addresses, but not over many accounts. Creating rooms is
limited per account too (``ROOMS_PER_HOUR``). Client addresses come from the socket unless ``TRUSTED_PROXY_HOPS``
says how many proxies in front of us append to ``X-Forwarded-For`` (see
``chatroom/headers.py``); a forged header from a client changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import current_user

from .access import SEATS
from .auth.sessions import PENDING


def _room_key() -> str:
    return "room:" + str((request.view_args or {}).get("code", ""))


def _seat_key() -> str:
    """The participant (their seat in this room), or the client address when there is none."""
    code = str((request.view_args or {}).get("code", ""))
    seats = session.get(SEATS, {})
    return f"seat:{code}:{sorted(seats.items())}" if seats else "addr:" + get_remote_address()


def _account_key() -> str:
    """The account being checked: the signed-in facilitator, or the one waiting for its second factor.

    Without either (the view will refuse anyway), the client address.
    """
    if current_user.is_authenticated:
        return f"account:{current_user.id}"
    pending = session.get(PENDING)
    if isinstance(pending, dict) and isinstance(pending.get("id"), int):
        return f"account:{pending['id']}"
    return "addr:" + get_remote_address()


def _rooms_per_hour() -> str:
    return f"{int(current_app.config.get('ROOMS_PER_HOUR', 20))} per hour"


Rule = tuple[str | Callable[[], str], Callable[[], str]]

# Limits that several endpoints share, counting together: scope -> (limit, what it counts per).
SHARED: dict[str, Rule] = {
    # Posting, reacting, voting and a private word to the host are all "posts" of a seat.
    "posts": ("20 per 10 seconds;120 per minute", _seat_key),
}

# endpoint -> the limits that apply, each with what it counts per.
LIMITS: dict[str, list[Rule]] = {
    "auth.login": [("10 per minute;50 per hour", get_remote_address)],
    "auth.login_code": [("10 per minute;50 per hour", get_remote_address), ("6 per minute;30 per hour", _account_key)],
    "auth.signup": [("5 per minute;20 per hour", get_remote_address)],
    "auth.forgot_password": [("5 per 15 minutes", get_remote_address)],
    "auth.reset_password": [("10 per 15 minutes", get_remote_address)],
    "auth.change_password": [("10 per 15 minutes", get_remote_address), ("10 per 15 minutes", _account_key)],
    "auth.two_factor_disable": [("10 per 15 minutes", get_remote_address), ("10 per 15 minutes", _account_key)],
    "auth.recovery_codes": [("10 per 15 minutes", get_remote_address), ("10 per 15 minutes", _account_key)],
    "rooms.create": [(_rooms_per_hour, _account_key)],
    "chat.join": [("10 per minute;60 per hour", get_remote_address), ("120 per minute", _room_key)],
    "chat.post": [SHARED["posts"]],
    "participation.react": [SHARED["posts"]],
    "participation.vote": [SHARED["posts"]],
    "participation.send_note": [SHARED["posts"]],
    "participation.reply_note": [("60 per minute", _seat_key)],
    "participation.seen": [("30 per minute", _seat_key)],
    "chat.typing": [("30 per minute", _seat_key)],
    "chat.report_message": [("10 per minute", _seat_key)],
}


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
    # One limiter per app, not a module singleton: Flask-Limiter keeps its settings on the
    # instance, so a second app (tests build many) would switch the first one's limits.
    limiter = Limiter(key_func=get_remote_address, headers_enabled=True, in_memory_fallback_enabled=True)
    limiter.init_app(app)
    app.extensions["chatroom.limiter"] = limiter  # the view wrappers hold it only weakly
    for endpoint, rules in LIMITS.items():
        view: Any = app.view_functions.get(endpoint)
        if view is None:
            continue  # an optional feature that this build does not have
        for rule in rules:
            limit, key = rule
            scope = next((name for name, shared in SHARED.items() if shared is rule), None)
            if scope is None:
                view = limiter.limit(limit, key_func=key, methods=["POST"])(view)
            else:  # one counter for every endpoint of the scope
                view = limiter.shared_limit(limit, scope, key_func=key, methods=["POST"])(view)
        app.view_functions[endpoint] = view
    return limiter
