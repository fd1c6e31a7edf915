"""The front page."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

bp = Blueprint("views", __name__)


@bp.get("/")
def index() -> str | Response:
    """What Chatroom is; signed-in facilitators go straight to their rooms."""
    if current_user.is_authenticated:
        return redirect(url_for("rooms.dashboard"))
    return render_template("index.html")


@bp.get("/healthz")
def health() -> dict[str, str]:
    """A cheap liveness probe for the platform's router."""
    return {"status": "ok"}
