"""The admin area (``/admin``): instance statistics, facilitator accounts, and who may sign up.

Only admins (``Facilitator.is_admin``, granted with ``flask facilitators admin``) get
in; anyone else signed in gets 404, as if there were nothing here, and the signed-out
are asked to sign in. Every change is one call into ``services.admin``.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, abort, current_app, flash, render_template, request, session, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from .broker import current_broker
from .extensions import db
from .htmx import see_other
from .models import Facilitator, utcnow
from .services import Invalid, admin

bp = Blueprint("admin", __name__, url_prefix="/admin")

NEW_INVITATION = "invitation_once"  # session: the link just made, until the page that shows it once


@bp.before_request
@login_required
def _admins_only() -> None:
    """Admins only; for everyone else signed in there is nothing here (404)."""
    if not current_user.is_admin:
        abort(404)


def _me() -> Facilitator:
    facilitator = db.session.get(Facilitator, current_user.id)
    assert facilitator is not None
    return facilitator


def open_streams() -> int | None:
    """Event streams open in *this process* (each gunicorn worker has its own), or None if the broker cannot say."""
    counter = getattr(current_broker(), "local_stream_count", None)
    return counter() if callable(counter) else None


@bp.get("/")
def index() -> str:
    """Instance statistics: accounts, rooms by state, messages today, and this process's open streams."""
    return render_template(
        "admin/index.html",
        stats=admin.stats(),
        streams=open_streams(),
        pid=os.getpid(),
        mode=admin.signup_mode(),
        modes=admin.SIGNUP_MODES,
        now=utcnow(),
    )


@bp.get("/facilitators")
def facilitators() -> str:
    """Every facilitator account, with its rooms, role, two-factor and whether it is disabled."""
    return render_template("admin/facilitators.html", rows=admin.facilitators(), me=current_user.id)


ACTIONS: dict[str, tuple[Any, str]] = {
    "disable": (lambda me, target: admin.disable(me, target), "{email} is disabled and signed out everywhere."),
    "enable": (lambda me, target: admin.enable(target), "{email} can sign in again."),
    "reset-two-factor": (
        lambda me, target: admin.reset_two_factor(target),
        "Two-factor sign-in is off for {email}; they sign in with their password alone until they turn it on again.",
    ),
}


@bp.post("/facilitators/<id:facilitator_id>/<action>")
def facilitator_action(facilitator_id: int, action: str) -> Response:
    """Disable, re-enable, or reset the two-factor sign-in of an account.

    :raise 404: no such account or action. :raise 409: disabling yourself, or resetting two-factor that is off.
    """
    target = admin.facilitator_or_none(facilitator_id)
    if target is None or action not in ACTIONS:
        abort(404)
    change, done = ACTIONS[action]
    change(_me(), target)
    flash(done.format(email=target.email), "success")
    return see_other(url_for("admin.facilitators"))


def _signup_page(errors: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    link = session.pop(NEW_INVITATION, None)
    page = render_template(
        "admin/signup.html",
        mode=admin.signup_mode(),
        modes=admin.SIGNUP_MODES,
        invitations=admin.invitations(),
        new_link=link if isinstance(link, str) else None,
        now=utcnow(),
        errors=errors or {},
        form=request.form,
        days=admin.INVITATION_DAYS,
    )
    return page, status


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> Response | tuple[str, int]:
    """Who may create an account (open, by invitation, closed), and the invitation links.

    :raise 422: an unknown mode (the page again, with why).
    """
    if request.method == "POST":
        try:
            mode = admin.set_signup_mode(request.form.get("mode", ""))
        except Invalid as invalid:
            return _signup_page(invalid.errors, invalid.status)
        flash(f"Sign-up: {admin.SIGNUP_MODES[mode]}.", "success")
        return see_other(url_for("admin.signup"))
    return _signup_page()


def _signup_link(token: str) -> str:
    """The invitation's sign-up link: from ``PUBLIC_URL`` when set, so a forged Host header cannot change it."""
    base = current_app.config.get("PUBLIC_URL")
    if base:
        return str(base).rstrip("/") + url_for("auth.signup", invite=token)
    return url_for("auth.signup", invite=token, _external=True)


@bp.post("/invitations")
def create_invitation() -> Response | tuple[str, int]:
    """Make a single-use sign-up link, shown once on the sign-up page. :raise 422: the page again, with why."""
    try:
        _, token = admin.create_invitation(
            _me(), request.form.get("note", ""), request.form.get("days", str(admin.INVITATION_DAYS))
        )
    except Invalid as invalid:
        return _signup_page(invalid.errors, invalid.status)
    session[NEW_INVITATION] = _signup_link(token)
    if admin.signup_mode() != "invitation":
        flash("The link works only while sign-up is set to “by invitation”.", "info")
    return see_other(url_for("admin.signup"))


@bp.post("/invitations/<id:invitation_id>/revoke")
def revoke_invitation(invitation_id: int) -> Response:
    """Make an unused invitation link stop working. :raise 404: no such invitation."""
    admin.revoke_invitation(invitation_id)
    flash("Invitation revoked.", "success")
    return see_other(url_for("admin.signup"))
