"""The facilitator's side: dashboard, creating and editing rooms."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from datetime import timedelta

import segno
from flask import Blueprint, Response, abort, flash, render_template, request, stream_with_context, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.utils import secure_filename
from werkzeug.wrappers import Response as BaseResponse

from . import services
from .access import owned_room_or_404
from .extensions import db
from .htmx import is_htmx, see_other
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


def _dashboard_rows() -> list[dict[str, object]]:
    rooms = db.session.scalars(select(Room).where(Room.owner_id == current_user.id).order_by(Room.starts_at.desc()))
    return [
        {"room": room, "present": len(services.broker().present(room.id)), "messages": services.message_count(room.id)}
        for room in rooms
    ]


@bp.get("/")
def dashboard() -> str:
    """The facilitator's rooms, newest start first, with status, people here now and messages.

    htmx polls it for the list alone, so the counts stay live.
    """
    template = "rooms/_room_list.html" if is_htmx() else "rooms/dashboard.html"
    return render_template(template, rows=_dashboard_rows(), now=utcnow())


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
def create() -> BaseResponse | tuple[str, int]:
    """Create a room. :raise 422/409: re-render the form with the reasons."""
    try:
        data = services.parse_room_form(request.form, editing=False)
        room = services.create_room(current_user, data)
    except services.Invalid as invalid:
        return render_template("rooms/form.html", form=request.form, errors=invalid.errors, room=None), invalid.status
    flash(f"Room “{room.title}” created. Share its link with your participants.", "success")
    return see_other(url_for("rooms.show", code=room.code))


def _console(room: Room, status: int = 200, errors: dict[str, str] | None = None) -> tuple[str, int]:
    context = {
        "room": room,
        "now": utcnow(),
        "messages": services.message_count(room.id),
        "present": services.present_members(room),
        "pending": services.pending_messages(room),
        "reports": services.open_reports(room),
        "errors": errors or {},
        "form": request.form,
    }
    return render_template("rooms/show.html", **context), status


@bp.get("/<code>")
def show(code: str) -> tuple[str, int]:
    """The host's console for one room: share link, settings, queue, reports, participants, export.

    :raise 404: not the caller's room.
    """
    return _console(owned_room_or_404(code))


SETTINGS: dict[str, tuple[Callable[[Room, Mapping[str, str]], Room], str]] = {
    "lock": (lambda room, form: services.set_locked(room, True), "Room locked: participants can read but not post."),
    "unlock": (lambda room, form: services.set_locked(room, False), "Room unlocked."),
    "end": (lambda room, form: services.end_room_now(room), "Room ended."),
    "extend": (lambda room, form: services.extend_room(room, form.get("minutes", "")), "End time extended."),
    "slow-mode": (lambda room, form: services.set_slow_mode(room, form.get("seconds", "")), "Slow mode saved."),
    "premoderation": (
        lambda room, form: services.set_premoderation(room, form.get("enabled") == "1"),
        "Pre-moderation saved.",
    ),
    "retention": (lambda room, form: services.set_retention(room, form.get("days", "")), "Retention saved."),
}


@bp.post("/<code>/settings/<name>")
def setting(code: str, name: str) -> BaseResponse | tuple[str, int]:
    """Change one moderation setting (lock, end, extend, slow mode, pre-moderation, retention).

    :raise 404: not the caller's room or no such setting; 409/422: the console again with why.
    """
    room = owned_room_or_404(code)
    if name not in SETTINGS:
        abort(404)
    change, done = SETTINGS[name]
    try:
        change(room, request.form)
    except services.Invalid as invalid:
        db.session.rollback()
        return _console(room, invalid.status, invalid.errors)
    flash(done, "success")
    if request.form.get("next") == "room":
        return see_other(url_for("chat.room", code=code))
    return see_other(url_for("rooms.show", code=code))


@bp.route("/<code>/delete", methods=["GET", "POST"])
def delete(code: str) -> str | BaseResponse | tuple[str, int]:
    """Delete a room and everything in it, after typing its title to confirm. :raise 404: not the caller's room."""
    room = owned_room_or_404(code)
    if request.method == "POST":
        title = room.title
        try:
            services.delete_room(room, request.form.get("confirm", ""))
        except services.Invalid as invalid:
            return render_template("rooms/delete.html", room=room, errors=invalid.errors, form=request.form), 422
        flash(f"Room “{title}” and all its messages were deleted.", "success")
        return see_other(url_for("rooms.dashboard"))
    return render_template("rooms/delete.html", room=room, errors={}, form={})


@bp.get("/<code>/audit")
def audit(code: str) -> str:
    """The room's audit log: every moderation action and settings change. :raise 404: not the caller's room."""
    room = owned_room_or_404(code)
    return render_template("rooms/audit.html", room=room, events=services.audit_log(room))


@bp.get("/<code>/transcript.<fmt>")
def transcript(code: str, fmt: str) -> Response:
    """The transcript as CSV, JSON, Markdown or a print-friendly page, streamed. :raise 404: unknown format."""
    room = owned_room_or_404(code)
    if fmt not in services.TRANSCRIPT_FORMATS:
        abort(404)
    body = stream_with_context(services.transcript(room, fmt))
    response = Response(body, mimetype=services.TRANSCRIPT_FORMATS[fmt])
    if fmt != "html":
        filename = f"{secure_filename(room.title) or 'transcript'}-{room.code}.{fmt}"
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/<code>/qr.svg")
def qr(code: str) -> Response:
    """The share link as a QR code (SVG, drawn on the server), for a slide. :raise 404: not the caller's room."""
    room = owned_room_or_404(code)
    link = url_for("chat.room", code=room.code, _external=True)
    svg = io.BytesIO()  # a standalone SVG document (with its namespace), not the inline form
    segno.make(link, error="m").save(svg, kind="svg", scale=6, border=2, dark="#000", light="#fff", title=link)
    return Response(svg.getvalue(), mimetype="image/svg+xml", headers={"Cache-Control": "private, max-age=3600"})


@bp.get("/<code>/edit")
def edit(code: str) -> str:
    """The room form, filled in. :raise 404: not the caller's room."""
    room = owned_room_or_404(code)
    return render_template("rooms/form.html", form=_local_input(room), errors={}, room=room)


@bp.post("/<code>")
def update(code: str) -> BaseResponse | tuple[str, int]:
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
