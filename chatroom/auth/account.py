"""A facilitator's account and its security: password, two-factor sign-in, recovery codes, API tokens."""

from __future__ import annotations

import segno
from flask import flash, make_response, render_template, request, session, url_for
from flask_login import current_user, login_required
from markupsafe import Markup
from werkzeug.wrappers import Response

from ..extensions import db
from ..htmx import see_other
from ..models import Facilitator
from ..services import Invalid, accounts, tokens
from .sessions import SHOW_CODES, TOTP_SETUP, bp, sign_in

NEW_TOKEN = "api_token_once"  # noqa: S105 - session: the token just made, until the page that shows it once


def _me() -> Facilitator:
    # The model object itself, not the current_user proxy: _sign_in hands it to login_user.
    facilitator = db.session.get(Facilitator, current_user.id)
    assert facilitator is not None  # login_required has just loaded it
    return facilitator


def private(response: Response) -> Response:
    """Pages that show secrets: never cached, never leaked through the Referer header."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _account_page(form: dict[str, str], errors: dict[str, str], status: int = 200) -> tuple[str, int]:
    facilitator = _me()
    left = accounts.recovery_codes_left(facilitator) if facilitator.two_factor else 0
    page = render_template(
        "auth/account.html",
        facilitator=facilitator,
        form=form,
        errors=errors,
        codes_left=left,
        codes_total=accounts.RECOVERY_CODE_COUNT,
        api_tokens=tokens.active_tokens(facilitator),
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
            accounts.change_password(facilitator, form.get("current_password", ""), form.get("password", ""))
        except Invalid as invalid:
            return render_template("auth/change_password.html", errors=invalid.errors), invalid.status
        sign_in(facilitator)
        flash("Your password is changed. Anywhere else you were signed in, you are now signed out.", "success")
        return see_other(url_for("auth.account"))
    return render_template("auth/change_password.html", errors={})


@bp.route("/account/two-factor", methods=["GET", "POST"])
@login_required
def two_factor_setup() -> Response:
    """Turn on two-factor sign-in: add the secret to an app, then confirm with a code it shows.

    The secret waits on the server (``accounts.keep_secret``; the session holds only a key to
    it) until a code proves the app has it; only then is it saved to the account.
    :raise 422: the code is not right.
    """
    facilitator = _me()
    if facilitator.two_factor:
        flash("Two-factor sign-in is already on.", "info")
        return see_other(url_for("auth.account"))
    secret = accounts.pending_secret(facilitator, accounts.TOTP_SETUP, session.get(TOTP_SETUP))
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        if not secret:
            flash("Your set-up expired. Add this new key to your app.", "info")
            return see_other(url_for("auth.two_factor_setup"))
        try:
            codes = accounts.enable_two_factor(facilitator, secret, request.form.get("code", ""))
        except Invalid as invalid:
            errors, status = invalid.errors, invalid.status
        else:
            session.pop(TOTP_SETUP, None)
            session[SHOW_CODES] = accounts.keep_secret(facilitator, accounts.RECOVERY_CODES, "\n".join(codes))
            flash("Two-factor sign-in is on. From now on you need a code from your app to sign in.", "success")
            return see_other(url_for("auth.recovery_codes"))
    if not secret:
        secret = accounts.new_totp_secret()
        session[TOTP_SETUP] = accounts.keep_secret(facilitator, accounts.TOTP_SETUP, secret)
    uri = accounts.totp_uri(facilitator, secret)
    # SVG elements and presentation attributes only: no style attribute, nothing a strict CSP refuses.
    svg = segno.make(uri, error="m").svg_inline(
        scale=5, border=4, dark="#000", light="#fff", svgclass="qr", title="QR code with your two-factor key"
    )
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    page = render_template("auth/two_factor_setup.html", qr=Markup(svg), secret=grouped, errors=errors)  # noqa: S704 - our own SVG
    return private(make_response(page, status))


@bp.route("/account/recovery-codes", methods=["GET", "POST"])
@login_required
def recovery_codes() -> Response | tuple[str, int]:
    """Show new recovery codes, once (GET); or make new ones, replacing the old (POST, with the password).

    :raise 403: wrong password.
    """
    if request.method == "POST":
        try:
            codes = accounts.regenerate_recovery_codes(_me(), request.form.get("codes_password", ""))
        except Invalid as invalid:
            return _account_page({}, invalid.errors, invalid.status)
        session[SHOW_CODES] = accounts.keep_secret(_me(), accounts.RECOVERY_CODES, "\n".join(codes))
        flash("You have new recovery codes. The old ones no longer work.", "success")
        return see_other(url_for("auth.recovery_codes"))
    kept = accounts.pending_secret(_me(), accounts.RECOVERY_CODES, session.pop(SHOW_CODES, None), take=True)
    codes = kept.split("\n") if kept else []
    if not codes:
        flash("Recovery codes are shown only once. If you have lost yours, make new ones below.", "info")
        return see_other(url_for("auth.account"))
    return private(make_response(render_template("auth/recovery_codes.html", codes=codes)))


@bp.post("/account/two-factor/disable")
@login_required
def two_factor_disable() -> Response | tuple[str, int]:
    """Turn two-factor sign-in off (needs the password). :raise 403: wrong password."""
    try:
        accounts.disable_two_factor(_me(), request.form.get("disable_password", ""))
    except Invalid as invalid:
        return _account_page({}, invalid.errors, invalid.status)
    flash("Two-factor sign-in is off. Your recovery codes no longer work.", "success")
    return see_other(url_for("auth.account"))


# -- API tokens ----------------------------------------------------------------------------


@bp.post("/account/tokens")
@login_required
def create_token() -> Response | tuple[str, int]:
    """Make a personal access token for the API, then show it once (303). :raise 409/422: the page with why."""
    try:
        token, raw = tokens.create(_me(), request.form.get("token_name", ""))
    except Invalid as invalid:
        return _account_page({"token_name": request.form.get("token_name", "")}, invalid.errors, invalid.status)
    session[NEW_TOKEN] = {"name": token.name, "token": raw}
    return see_other(url_for("auth.token_created"))


@bp.get("/account/tokens/new")
@login_required
def token_created() -> Response:
    """The token just made, shown this once (never cached); afterwards only its name and first characters."""
    shown = session.pop(NEW_TOKEN, None)
    if not isinstance(shown, dict):
        flash(
            "A token is shown only once, when it is made. If you did not copy it, revoke it and make another.", "info"
        )
        return see_other(url_for("auth.account"))
    page = render_template("auth/token_created.html", name=shown.get("name", ""), token=shown.get("token", ""))
    return private(make_response(page))


@bp.post("/account/tokens/<id:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> Response:
    """Revoke one of your tokens: the API refuses it from now on. :raise 404: not a token of yours."""
    token = tokens.revoke(_me(), token_id)
    flash(f"Token “{token.name}” revoked: the API now refuses it.", "success")
    return see_other(url_for("auth.account"))
