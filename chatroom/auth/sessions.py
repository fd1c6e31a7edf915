"""Facilitator sessions: the blueprint, the login cookie's loader, signing in, and the pending second factor.

Sign-in with two-factor: a correct password for an account with TOTP on does not sign
in. It leaves a *pending* marker in the session (account id, time, and a fingerprint of
the account's password hash and session token) and the browser goes to ``/login/code``;
a current TOTP code or an unused recovery code there completes the sign-in. The marker
lasts ``TWO_FACTOR_PENDING_SECONDS`` and dies with any password change or
sign-out-everywhere.
"""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, current_app, session
from flask_login import login_user

from ..access import PENDING_SIGN_IN, SIGN_IN
from ..extensions import db, login_manager
from ..models import Facilitator
from ..services import accounts

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.login_message = "Sign in to see your rooms."
login_manager.login_message_category = "info"

LOGIN = SIGN_IN  # session: this browser's sign-in token (a LoginSession row; sign-out deletes it)
PENDING = PENDING_SIGN_IN  # session: {"id", "at", "fp", "next"} between the password and the code
TOTP_SETUP = "totp_setup"  # session: the key to the secret being set up (accounts.keep_secret), not the secret
SHOW_CODES = "recovery_codes_once"  # session: the key to new recovery codes, until the page shows them once


@login_manager.user_loader
def load_user(user_id: str) -> Facilitator | None:
    """The signed-in facilitator, if the cookie's session token is current and the session has not expired.

    The cookie carries ``id:token`` and this browser's sign-in (``LOGIN``): signing out here
    deletes that sign-in, so this cookie (and any copy of it) stops working while the
    account's other browsers stay signed in; signing out everywhere (or changing the
    password) gives the account a new token and deletes every sign-in. Sessions also end
    after ``SESSION_IDLE_MINUTES`` without a request and ``SESSION_MAX_HOURS`` after
    sign-in, whatever happens, and at once when an admin disables the account.
    """
    raw_id, _, token = user_id.partition(":")
    if not raw_id.isdigit() or not token:
        return None
    facilitator = db.session.get(Facilitator, int(raw_id))
    if facilitator is None or not hmac.compare_digest(facilitator.session_token, token):
        return None
    if facilitator.disabled_at is not None:  # an admin disabled the account: every session ends at once
        session.clear()
        return None
    if not accounts.session_is_current(facilitator, str(session.get(LOGIN, ""))):
        return None
    now = int(time.time())
    config = current_app.config
    login_at, seen_at = session.get("login_at", 0), session.get("seen_at", 0)
    if now - login_at > config["SESSION_MAX_HOURS"] * 3600 or now - seen_at > config["SESSION_IDLE_MINUTES"] * 60:
        # Expired: this sign-in ends for good, its host streams too (accounts.end_session). Only when the request
        # has no writes of its own waiting, which that commit would carry with it; else the next request does it.
        if not (db.session.new or db.session.dirty or db.session.deleted):
            accounts.end_session(facilitator, str(session.get(LOGIN, "")))
        session.clear()
        return None
    if now - seen_at > 60:
        session["seen_at"] = now
    return facilitator


def sign_in(facilitator: Facilitator) -> None:
    """Sign ``facilitator`` in on this browser with a fresh session (the room seats it held are kept)."""
    seats = session.get("seats")
    session.clear()  # a fresh session on sign-in: nothing planted before it survives
    if seats:
        session["seats"] = seats
    if not facilitator.session_token:
        accounts.end_sessions(facilitator)
    session["login_at"] = session["seen_at"] = int(time.time())
    session[LOGIN] = accounts.start_session(facilitator)
    login_user(facilitator)


def await_second_factor(facilitator: Facilitator, next_url: str | None) -> None:
    """The password was right: remember that for a few minutes, without signing in; ``next_url`` comes after."""
    session[PENDING] = {
        "id": facilitator.id,
        "at": int(time.time()),
        "fp": accounts.account_fingerprint(facilitator),
        "next": next_url or "",
    }


def pending_facilitator() -> Facilitator | None:
    """The account waiting for its second factor, if the marker is fresh and the account unchanged since."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or not isinstance(pending.get("id"), int):
        return None
    age = int(time.time()) - int(pending.get("at", 0))
    if not 0 <= age <= current_app.config["TWO_FACTOR_PENDING_SECONDS"]:
        return None
    facilitator = db.session.get(Facilitator, pending["id"])
    if facilitator is None or not facilitator.two_factor:
        return None
    if not hmac.compare_digest(accounts.account_fingerprint(facilitator), str(pending.get("fp", ""))):
        return None  # the password changed or every session was ended since
    return facilitator
