"""Signing up, in (with an optional second factor) and out."""

from __future__ import annotations

from flask import flash, render_template, request, session, url_for
from flask_login import current_user, login_required, logout_user
from werkzeug.wrappers import Response

from .. import limits, mail
from ..access import SEATS
from ..errors import render_error
from ..htmx import external_url, safe_next, see_other
from ..services import Invalid, accounts, admin
from ..text import seconds_phrase
from .sessions import LOGIN, PENDING, await_second_factor, bp, pending_facilitator, sign_in

# created -> (mail template, subject)
SIGN_UP_MAILS = {
    True: ("signup_welcome", "Your Chatroom account is ready"),
    False: ("signup_existing", "Someone tried to create a Chatroom account with your address"),
}
SIGNED_UP = (
    "Thank you. We have sent a mail to {email}. Sign in below with that address and your password; "
    "if that does not work, the mail says what to do."
)

DISABLED = "This account is disabled. Ask the people who run this Chatroom to enable it again"


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> str | Response | tuple[str, int]:
    """Create a facilitator account, as the sign-up mode allows; the same answer whether or not it is new.

    A new address gets its account and a welcome mail; an address with an account gets a
    mail saying someone tried to sign up with it (with links to sign in and to reset the
    password), and no account. Both answers are a 303 to the sign-in page with the same
    message, after the same work (``accounts.register``), so the form cannot be used to
    find out who has an account. Nobody is signed in by signing up: the new user signs in
    with the password they just chose. ``?invite=<token>`` carries an invitation link's token.

    :raise 403: sign-up is closed, or needs an invitation this request does not have (the page
        says so, with no form). :raise 422: a field breaks a rule (the form again).
    """
    form = request.form
    invite = request.values.get("invite") or None
    mode = admin.signup_mode()
    if request.method == "POST":
        try:
            facilitator, created = admin.register(
                form.get("email", ""), form.get("name", ""), form.get("password", ""), invitation=invite
            )
        except Invalid as invalid:
            if invalid.status == 403:
                return render_template("auth/signup_closed.html", message=invalid.message), 403
            page = render_template("auth/signup.html", form=form, errors=invalid.errors, invite=invite)
            return page, invalid.status
        kind, subject = SIGN_UP_MAILS[created]
        links = {
            "name": facilitator.name,
            "login": external_url("auth.login"),
            "reset": external_url("auth.forgot_password"),
        }
        text, html = render_template(f"email/{kind}.txt", **links), render_template(f"email/{kind}.html", **links)
        mail.send_mail_soon(facilitator.email, subject, text, html)
        flash(SIGNED_UP.format(email=form.get("email", "").strip()), "success")
        return see_other(url_for("auth.login"))
    if mode == "closed":
        return render_template("auth/signup_closed.html", message=admin.SIGNUP_CLOSED), 403
    if mode == "invitation" and admin.invitation_for(invite) is None:
        message = admin.INVITATION_BAD if invite else admin.INVITATION_NEEDED
        return render_template("auth/signup_closed.html", message=message), 403
    return render_template("auth/signup.html", form={}, errors={}, invite=invite)


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
        if not facilitator.is_active:
            errors = {"email": DISABLED}
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
    seats = session.get(SEATS)
    session.clear()
    if seats:  # a participant's seats in rooms are this browser's, not the facilitator's: they stay
        session[SEATS] = seats
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
def too_many(error: Exception) -> tuple[str, int] | Response:
    """Over a sign-in or sign-up limit (``chatroom/limits.py``): the form again, with what was typed and when to
    try again (``Retry-After`` is set on the way out)."""
    seconds = limits.retry_after()
    problem = f"Too many attempts from this browser or network. Wait {seconds_phrase(seconds)}, then try again"
    form = {k: v for k, v in request.form.items() if k in ("email", "name")}
    if request.endpoint == "auth.login":
        page = render_template("auth/login.html", form=form, errors={"email": problem}, next=request.form.get("next"))
        return page, 429
    if request.endpoint == "auth.signup":
        page = render_template(
            "auth/signup.html", form=form, errors={"email": problem}, invite=request.values.get("invite")
        )
        return page, 429
    return render_error(429, f"Too many attempts. Wait {seconds_phrase(seconds)} and try again.")
