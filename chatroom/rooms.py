"""The facilitator's side: dashboard, creating and editing rooms."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from . import services
from .access import owned_room_or_404
from .extensions import db
from .htmx import see_other
from .models import Room, utcnow

bp = Blueprint("rooms", __name__, url_prefix="/rooms")


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here is a facilitator's."""


def _local_input(room: Room) -> dict[str, str]:
    fmt = "%Y-%m-%dT%H:%M"
    return {
        "title": room.title,
        "starts_at": room.local(room.starts_at).strftime(fmt),
        "ends_at": room.local(room.ends_at).strftime(fmt),
        "timezone": room.timezone,
    }


@bp.get("/")
def dashboard() -> str:
    """The facilitator's rooms, newest start first, with their status."""
    rooms = db.session.scalars(select(Room).where(Room.owner_id == current_user.id).order_by(Room.starts_at.desc()))
    return render_template("rooms/dashboard.html", rooms=list(rooms), now=utcnow())


@bp.get("/new")
def new() -> str:
    """The empty room form, starting now and lasting an hour."""
    start = utcnow().replace(second=0, microsecond=0) + timedelta(minutes=5)
    form = {
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "timezone": "UTC",
    }
    return render_template("rooms/form.html", form=form, errors={}, room=None)


@bp.post("/")
def create() -> Response | tuple[str, int]:
    """Create a room. :raise 422/409: re-render the form with the reasons."""
    try:
        data = services.parse_room_form(request.form, editing=False)
        room = services.create_room(current_user, data)
    except services.Invalid as invalid:
        return render_template("rooms/form.html", form=request.form, errors=invalid.errors, room=None), invalid.status
    flash(f"Room “{room.title}” created. Share its link with your participants.", "success")
    return see_other(url_for("rooms.show", code=room.code))


@bp.get("/<code>")
def show(code: str) -> str:
    """One room's details and share link. :raise 404: not the caller's room."""
    room = owned_room_or_404(code)
    return render_template("rooms/show.html", room=room, now=utcnow(), messages=services.message_count(room.id))


@bp.get("/<code>/edit")
def edit(code: str) -> str:
    """The room form, filled in. :raise 404: not the caller's room."""
    room = owned_room_or_404(code)
    return render_template("rooms/form.html", form=_local_input(room), errors={}, room=room)


@bp.post("/<code>")
def update(code: str) -> Response | tuple[str, int]:
    """Save a room's changes. :raise 404: not the caller's room; 422/409: the form again."""
    room = owned_room_or_404(code)
    try:
        data = services.parse_room_form(request.form, editing=True)
        services.update_room(room, data)
    except services.Invalid as invalid:
        db.session.rollback()
        return render_template("rooms/form.html", form=request.form, errors=invalid.errors, room=room), invalid.status
    flash("Room saved.", "success")
    return see_other(url_for("rooms.show", code=room.code))
