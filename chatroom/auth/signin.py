"""Signing up, in (with an optional second factor) and out."""

from __future__ import annotations

from flask import flash, render_template, request, session, url_for
from flask_login import current_user, login_required, logout_user
from werkzeug.wrappers import Response

from .. import limits
from ..errors import render_error
from ..htmx import safe_next, see_other
from ..services import Invalid, accounts
from .sessions import LOGIN, PENDING, await_second_factor, bp, pending_facilitator, sign_in


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> str | Response | tuple[str, int]:
    """Create a facilitator account, then sign in."""
    form = request.form
    if request.method == "POST":
        try:
            facilitator = accounts.sign_up(form.get("email", ""), form.get("name", ""), form.get("password", ""))
        except Invalid as invalid:
            return render_template("auth/signup.html", form=form, errors=invalid.errors), invalid.status
        sign_in(facilitator)
        flash("Your account is ready. Create your first room.", "success")
        return see_other(url_for("rooms.dashboard"))
    return render_template("auth/signup.html", form={}, errors={})


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    """Sign a facilitator in; unknown e-mail and wrong password get the same answer."""
    form = request.form
    if request.method == "POST":
        facilitator = accounts.authenticate(form.get("email", ""), form.get("password", ""))
        if facilitator is None:
            limits.count_failure()  # only failures count against the sign-in limits
            errors = {"email": "The email or password is not right"}
            return render_template("auth/login.html", form=form, errors=errors, next=form.get("next")), 403
        if facilitator.two_factor:
            await_second_factor(facilitator, form.get("next"))
            return see_other(url_for("auth.login_code"))
        sign_in(facilitator)
        return see_other(safe_next(form.get("next")))
    return render_template("auth/login.html", form={}, errors={}, next=request.args.get("next"))


@bp.post("/logout")
@login_required
def logout() -> Response:
    """Sign out this browser: its sign-in is deleted, so this cookie (and any copy of it) is worthless.

    The account's other browsers stay signed in; ``logout_everywhere`` ends them all.
    """
    accounts.end_session(current_user, str(session.get(LOGIN, "")))
    logout_user()
    session.clear()
    flash("You are signed out on this device.", "success")
    return see_other(url_for("views.index"))


@bp.post("/account/sign-out-everywhere")
@login_required
def logout_everywhere() -> Response:
    """Sign out on every browser and device, this one included (the account's session token changes)."""
    accounts.end_sessions(current_user)
    logout_user()
    session.clear()
    flash("You are signed out everywhere, on this device too.", "success")
    return see_other(url_for("views.index"))


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> str | Response | tuple[str, int]:
    """Second step of signing in: a code from the authenticator app, or a recovery code.

    ``?method=recovery`` asks for a recovery code instead (a separate field, since
    app codes are digits and recovery codes are not). :raise 403: wrong or reused code.
    """
    facilitator = pending_facilitator()
    if facilitator is None:
        if session.pop(PENDING, None) is not None:
            flash("Signing in took too long. Enter your email and password again.", "info")
        return see_other(url_for("auth.login"))
    recovery = request.args.get("method") == "recovery"
    form = request.form
    if request.method == "POST":
        if recovery:
            ok = accounts.use_recovery_code(facilitator, form.get("recovery_code", ""))
            problem = "That recovery code is not right, or it was used already. Check it and try again"
            errors = {} if ok else {"recovery_code": problem}
        else:
            ok = accounts.check_totp(facilitator, form.get("code", ""))
            problem = "That code is not right, or it was used already. Enter the 6-digit code your app shows now"
            errors = {} if ok else {"code": problem}
        if errors:
            limits.count_failure()
            return render_template("auth/login_code.html", errors=errors, recovery=recovery), 403
        next_url = session[PENDING].get("next")
        sign_in(facilitator)
        if recovery:
            left = accounts.recovery_codes_left(facilitator)
            flash(
                f"You signed in with a recovery code; it cannot be used again. You have {left} left: "
                "make new ones on your account page if you are running low.",
                "info",
            )
        return see_other(safe_next(next_url))
    return render_template("auth/login_code.html", errors={}, recovery=recovery)


@bp.errorhandler(429)
def too_many(error: Exception) -> tuple[str, int]:
    """Over a sign-in or sign-up limit (``chatroom/limits.py``): the form again, with what was typed and when to
    try again (``Retry-After`` is set on the way out)."""
    seconds = limits.retry_after()
    problem = f"Too many attempts from this browser or network. Wait {seconds} s, then try again"
    form = {k: v for k, v in request.form.items() if k in ("email", "name")}
    if request.endpoint == "auth.login":
        page = render_template("auth/login.html", form=form, errors={"email": problem}, next=request.form.get("next"))
        return page, 429
    if request.endpoint == "auth.signup":
        return render_template("auth/signup.html", form=form, errors={"email": problem}), 429
    return render_error(429, f"Too many attempts. Wait {seconds} s and try again.")
