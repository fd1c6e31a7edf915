"""Facilitator accounts: sign up, sign in, sign out."""

from __future__ import annotations

import hmac
import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from . import services
from .extensions import db, login_manager
from .htmx import see_other
from .models import Facilitator

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.login_message = "Sign in to see your rooms."
login_manager.login_message_category = "info"


@login_manager.user_loader
def load_user(user_id: str) -> Facilitator | None:
    """The signed-in facilitator, if the cookie's session token is current and the session has not expired.

    The cookie carries ``id:token``; signing out (or changing the password)
    gives the account a new token, so a copied cookie stops working. Sessions
    also end after ``SESSION_IDLE_MINUTES`` without a request and
    ``SESSION_MAX_HOURS`` after sign-in, whatever happens.
    """
    raw_id, _, token = user_id.partition(":")
    if not raw_id.isdigit() or not token:
        return None
    facilitator = db.session.get(Facilitator, int(raw_id))
    if facilitator is None or not hmac.compare_digest(facilitator.session_token, token):
        return None
    now = int(time.time())
    config = current_app.config
    login_at, seen_at = session.get("login_at", 0), session.get("seen_at", 0)
    if now - login_at > config["SESSION_MAX_HOURS"] * 3600 or now - seen_at > config["SESSION_IDLE_MINUTES"] * 60:
        session.clear()
        return None
    if now - seen_at > 60:
        session["seen_at"] = now
    return facilitator


def safe_next(target: str | None) -> str:
    """``target`` when it is a path on this site, else the dashboard (no open redirects)."""
    fallback = url_for("rooms.dashboard")
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or any(ord(c) < 32 for c in target):
        return fallback
    return target


def _sign_in(facilitator: Facilitator) -> None:
    seats = session.get("seats")
    session.clear()  # a fresh session on sign-in: nothing planted before it survives
    if seats:
        session["seats"] = seats
    if not facilitator.session_token:
        services.end_sessions(facilitator)
    session["login_at"] = session["seen_at"] = int(time.time())
    login_user(facilitator)


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> str | Response | tuple[str, int]:
    """Create a facilitator account, then sign in."""
    form = request.form
    if request.method == "POST":
        try:
            facilitator = services.sign_up(form.get("email", ""), form.get("name", ""), form.get("password", ""))
        except services.Invalid as invalid:
            return render_template("auth/signup.html", form=form, errors=invalid.errors), invalid.status
        _sign_in(facilitator)
        flash("Your account is ready. Create your first room.", "success")
        return see_other(url_for("rooms.dashboard"))
    return render_template("auth/signup.html", form={}, errors={})


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    """Sign a facilitator in; unknown e-mail and wrong password get the same answer."""
    form = request.form
    if request.method == "POST":
        facilitator = services.authenticate(form.get("email", ""), form.get("password", ""))
        if facilitator is None:
            errors = {"email": "The email or password is not right"}
            return render_template("auth/login.html", form=form, errors=errors, next=form.get("next")), 403
        _sign_in(facilitator)
        return see_other(safe_next(form.get("next")))
    return render_template("auth/login.html", form={}, errors={}, next=request.args.get("next"))


@bp.post("/logout")
@login_required
def logout() -> Response:
    """Sign out: the account's session token changes, so this cookie (and any copy of it) is worthless."""
    services.end_sessions(current_user)
    logout_user()
    session.clear()
    flash("You are signed out.", "success")
    return see_other(url_for("views.index"))
