"""Password reset by mail.

``/password/forgot`` answers the same whether or not the address has an account; the
mailed link carries a signed one-hour token that stops working once used (see
``accounts.accounts``). The mail's text and HTML bodies are templates in ``templates/email/``.
"""

from __future__ import annotations

from flask import flash, make_response, render_template, request, url_for
from werkzeug.wrappers import Response

from .. import mail
from ..htmx import external_url, see_other
from ..services import Invalid, accounts
from ..text import valid_email
from .account import private
from .sessions import await_second_factor, bp, sign_in


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
        facilitator = accounts.find_facilitator(email)
        if facilitator is not None:
            link = external_url("auth.reset_password", token=accounts.password_reset_token(facilitator))
            text = render_template("email/password_reset.txt", name=facilitator.name, link=link)
            html = render_template("email/password_reset.html", name=facilitator.name, link=link)
            mail.send_mail_soon(facilitator.email, "Reset your Chatroom password", text, html)
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
        facilitator = accounts.facilitator_for_reset_token(token)
    except Invalid as invalid:
        page = render_template("auth/reset_invalid.html", message=invalid.errors["token"])
        return private(make_response(page, 400))
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        try:
            accounts.set_password(facilitator, request.form.get("password", ""))
        except Invalid as invalid:
            errors, status = invalid.errors, invalid.status
        else:
            if facilitator.two_factor:
                await_second_factor(facilitator, None)
                flash("Your password is changed. To sign in, enter a code from your authenticator app.", "success")
                return see_other(url_for("auth.login_code"))
            sign_in(facilitator)
            flash("Your password is changed and you are signed in. Anywhere else, you are signed out.", "success")
            return see_other(url_for("rooms.dashboard"))
    page = render_template("auth/reset_password.html", token=token, errors=errors)
    return private(make_response(page, status))
