"""Facilitator accounts: sign up, sign in (with an optional second factor), sign out, and account security.

Two-factor sign-in: a correct password for an account with TOTP on does not sign
in. It leaves a *pending* marker in the session (account id, time, and a
fingerprint of the account's password hash and session token) and redirects to
``/login/code``; a current TOTP code or an unused recovery code there completes
the sign-in. The marker lasts ``TWO_FACTOR_PENDING_SECONDS`` and dies with any
password change or sign-out-everywhere.

Password reset by mail: ``/password/forgot`` answers the same whether or not the
address has an account; the mailed link carries a signed one-hour token that
stops working once used (see ``services.accounts``).
"""

from __future__ import annotations

import hmac
import time
from urllib.parse import urlsplit

import segno
from flask import Blueprint, current_app, flash, make_response, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from markupsafe import Markup
from werkzeug.wrappers import Response

from . import mail, services
from .extensions import db, login_manager
from .htmx import see_other
from .models import Facilitator
from .text import valid_email

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
        if facilitator.two_factor:
            _await_second_factor(facilitator, form.get("next"))
            return see_other(url_for("auth.login_code"))
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


# -- two-factor sign-in ------------------------------------------------------------

PENDING = "two_factor_pending"  # session: {"id", "at", "fp", "next"} between the password and the code
TOTP_SETUP = "totp_setup"  # session: the secret being set up, until a code confirms it
SHOW_CODES = "recovery_codes_once"  # session: new recovery codes, until the page that shows them once


def _await_second_factor(facilitator: Facilitator, next_url: str | None) -> None:
    """The password was right: remember that for a few minutes, without signing in."""
    session[PENDING] = {
        "id": facilitator.id,
        "at": int(time.time()),
        "fp": services.account_fingerprint(facilitator),
        "next": next_url or "",
    }


def _pending_facilitator() -> Facilitator | None:
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
    if not hmac.compare_digest(services.account_fingerprint(facilitator), str(pending.get("fp", ""))):
        return None  # the password changed or every session was ended since
    return facilitator


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> str | Response | tuple[str, int]:
    """Second step of signing in: a code from the authenticator app, or a recovery code.

    ``?method=recovery`` asks for a recovery code instead (a separate field, since
    app codes are digits and recovery codes are not). :raise 403: wrong or reused code.
    """
    facilitator = _pending_facilitator()
    if facilitator is None:
        if session.pop(PENDING, None) is not None:
            flash("Signing in took too long. Enter your email and password again.", "info")
        return see_other(url_for("auth.login"))
    recovery = request.args.get("method") == "recovery"
    form = request.form
    if request.method == "POST":
        if recovery:
            ok = services.use_recovery_code(facilitator, form.get("recovery_code", ""))
            problem = "That recovery code is not right, or it was used already. Check it and try again"
            errors = {} if ok else {"recovery_code": problem}
        else:
            ok = services.check_totp(facilitator, form.get("code", ""))
            problem = "That code is not right, or it was used already. Enter the 6-digit code your app shows now"
            errors = {} if ok else {"code": problem}
        if errors:
            return render_template("auth/login_code.html", errors=errors, recovery=recovery), 403
        next_url = session[PENDING].get("next")
        _sign_in(facilitator)
        if recovery:
            left = services.recovery_codes_left(facilitator)
            flash(
                f"You signed in with a recovery code; it cannot be used again. You have {left} left: "
                "make new ones on your account page if you are running low.",
                "info",
            )
        return see_other(safe_next(next_url))
    return render_template("auth/login_code.html", errors={}, recovery=recovery)


# -- account security --------------------------------------------------------------


def _me() -> Facilitator:
    # The model object itself, not the current_user proxy: _sign_in hands it to login_user.
    facilitator = db.session.get(Facilitator, current_user.id)
    assert facilitator is not None  # login_required has just loaded it
    return facilitator


def _private(response: Response) -> Response:
    """Pages that show secrets: never cached, never leaked through the Referer header."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _account_page(form: dict[str, str], errors: dict[str, str], status: int = 200) -> tuple[str, int]:
    facilitator = _me()
    left = services.recovery_codes_left(facilitator) if facilitator.two_factor else 0
    page = render_template(
        "auth/account.html",
        facilitator=facilitator,
        form=form,
        errors=errors,
        codes_left=left,
        codes_total=services.RECOVERY_CODE_COUNT,
    )
    return page, status


@bp.get("/account")
@login_required
def account() -> tuple[str, int]:
    """Account and security: the password, two-factor sign-in and recovery codes."""
    return _account_page({}, {})


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password() -> str | Response | tuple[str, int]:
    """Change the password; every other session ends and this one starts afresh.

    :raise 403: the current password is wrong. :raise 422: the new one breaks a rule.
    """
    if request.method == "POST":
        facilitator = _me()
        form = request.form
        try:
            services.change_password(facilitator, form.get("current_password", ""), form.get("password", ""))
        except services.Invalid as invalid:
            return render_template("auth/change_password.html", errors=invalid.errors), invalid.status
        _sign_in(facilitator)
        flash("Your password is changed. Anywhere else you were signed in, you are now signed out.", "success")
        return see_other(url_for("auth.account"))
    return render_template("auth/change_password.html", errors={})


@bp.route("/account/two-factor", methods=["GET", "POST"])
@login_required
def two_factor_setup() -> Response:
    """Turn on two-factor sign-in: add the secret to an app, then confirm with a code it shows.

    The secret waits in the session until a code proves the app has it; only then
    is it saved. :raise 422: the code is not right.
    """
    facilitator = _me()
    if facilitator.two_factor:
        flash("Two-factor sign-in is already on.", "info")
        return see_other(url_for("auth.account"))
    secret = session.get(TOTP_SETUP)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        if not secret:
            flash("Your set-up expired. Add this new key to your app.", "info")
            return see_other(url_for("auth.two_factor_setup"))
        try:
            codes = services.enable_two_factor(facilitator, secret, request.form.get("code", ""))
        except services.Invalid as invalid:
            errors, status = invalid.errors, invalid.status
        else:
            session.pop(TOTP_SETUP, None)
            session[SHOW_CODES] = codes
            flash("Two-factor sign-in is on. From now on you need a code from your app to sign in.", "success")
            return see_other(url_for("auth.recovery_codes"))
    if not secret:
        secret = session[TOTP_SETUP] = services.new_totp_secret()
    uri = services.totp_uri(facilitator, secret)
    # SVG elements and presentation attributes only: no style attribute, nothing a strict CSP refuses.
    svg = segno.make(uri, error="m").svg_inline(
        scale=5, border=4, dark="#000", light="#fff", svgclass="qr", title="QR code with your two-factor key"
    )
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    page = render_template("auth/two_factor_setup.html", qr=Markup(svg), secret=grouped, errors=errors)  # noqa: S704 - our own SVG
    return _private(make_response(page, status))


@bp.route("/account/recovery-codes", methods=["GET", "POST"])
@login_required
def recovery_codes() -> Response | tuple[str, int]:
    """Show new recovery codes, once (GET); or make new ones, replacing the old (POST, with the password).

    :raise 403: wrong password.
    """
    if request.method == "POST":
        try:
            codes = services.regenerate_recovery_codes(_me(), request.form.get("codes_password", ""))
        except services.Invalid as invalid:
            return _account_page({}, invalid.errors, invalid.status)
        session[SHOW_CODES] = codes
        flash("You have new recovery codes. The old ones no longer work.", "success")
        return see_other(url_for("auth.recovery_codes"))
    codes = session.pop(SHOW_CODES, None)
    if not codes:
        flash("Recovery codes are shown only once. If you have lost yours, make new ones below.", "info")
        return see_other(url_for("auth.account"))
    return _private(make_response(render_template("auth/recovery_codes.html", codes=codes)))


@bp.post("/account/two-factor/disable")
@login_required
def two_factor_disable() -> Response | tuple[str, int]:
    """Turn two-factor sign-in off (needs the password). :raise 403: wrong password."""
    try:
        services.disable_two_factor(_me(), request.form.get("disable_password", ""))
    except services.Invalid as invalid:
        return _account_page({}, invalid.errors, invalid.status)
    flash("Two-factor sign-in is off. Your recovery codes no longer work.", "success")
    return see_other(url_for("auth.account"))


# -- password reset by mail -----------------------------------------------------------


def _external_url(endpoint: str, **values: str) -> str:
    """An absolute link for a mail: from ``PUBLIC_URL`` when set, so a forged Host header cannot redirect it."""
    base = current_app.config.get("PUBLIC_URL")
    if base:
        return base.rstrip("/") + url_for(endpoint, **values)  # type: ignore[arg-type]
    return url_for(endpoint, _external=True, **values)  # type: ignore[arg-type]


RESET_MAIL = """Hello {name},

Someone, we hope you, asked to reset the password of your Chatroom account.
To choose a new password, open this link within the next hour:

{link}

The link works once. If you did not ask for this, ignore this mail: your password has not changed.
"""


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password() -> str | tuple[str, int]:
    """Ask for a reset link by mail; the answer is the same whether or not the address has an account.

    The lookup runs either way and the mail goes out in the background, so the
    time taken does not tell either. :raise 422: not an email address.
    """
    form = request.form
    if request.method == "POST":
        email = form.get("email", "").strip()
        if not valid_email(email):
            errors = {"email": "Enter an email address like name@example.org"}
            return render_template("auth/forgot_password.html", form=form, errors=errors), 422
        facilitator = services.find_facilitator(email)
        if facilitator is not None:
            link = _external_url("auth.reset_password", token=services.password_reset_token(facilitator))
            body = RESET_MAIL.format(name=facilitator.name, link=link)
            mail.send_mail_soon(facilitator.email, "Reset your Chatroom password", body)
        return render_template("auth/forgot_sent.html", email=email)
    return render_template("auth/forgot_password.html", form={}, errors={})


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Response:
    """Choose a new password from a mailed link; every session ends, then this browser signs in.

    With two-factor sign-in on, the link alone does not sign in: the code is asked
    for next, so whoever reads the mail still needs the app.
    :raise 400: the link expired, was altered, or was used already. :raise 422: the password breaks a rule.
    """
    try:
        facilitator = services.facilitator_for_reset_token(token)
    except services.Invalid as invalid:
        page = render_template("auth/reset_invalid.html", message=invalid.errors["token"])
        return _private(make_response(page, 400))
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        try:
            services.set_password(facilitator, request.form.get("password", ""))
        except services.Invalid as invalid:
            errors, status = invalid.errors, invalid.status
        else:
            if facilitator.two_factor:
                _await_second_factor(facilitator, None)
                flash("Your password is changed. To sign in, enter a code from your authenticator app.", "success")
                return see_other(url_for("auth.login_code"))
            _sign_in(facilitator)
            flash("Your password is changed and you are signed in. Anywhere else, you are signed out.", "success")
            return see_other(url_for("rooms.dashboard"))
    page = render_template("auth/reset_password.html", token=token, errors=errors)
    return _private(make_response(page, status))
