"""The facilitator's rooms: dashboard, create, edit, delete, the owner page, audit log, exports and QR code.

Every page here is a signed-in facilitator's, and every room is loaded through
``access.owned_room_or_404``. What the host does to a *running* room (moderation and
settings) is in ``chatroom/host.py``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import segno
from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    make_response,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from . import charts, presence
from .access import owned_room_or_404
from .extensions import db
from .htmx import external_url, is_htmx, see_other
from .models import Room, utcnow
from .services import Invalid, export, messages, moderation, rooms

bp = Blueprint("rooms", __name__, url_prefix="/rooms")


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here is a facilitator's."""


def _local_input(room: Room) -> dict[str, str]:
    fmt = "%Y-%m-%dT%H:%M"
    start, end = room.local(room.starts_at), room.local(room.ends_at)
    form = {
        "title": room.title,
        "starts_at": start.strftime(fmt),
        "ends_at": end.strftime(fmt),
        "timezone": room.timezone,
        "search_language": room.search_language,
    }
    for name, moment in (("starts_at", start), ("ends_at", end)):
        if rooms.fold_choices(form[name], room.timezone):
            form[f"{name}_fold"] = str(moment.fold)  # a time that happens twice: keep which one it is
    return form


def _form_page(
    form: Mapping[str, str], errors: dict[str, str], room: Room | None, status: int = 200, suggest: bool = False
) -> tuple[str, int]:
    """The room form: the zones to choose from, and for a time that happens twice (autumn), which one.

    ``suggest``: the times are only a suggestion (a new form), which the page's script may move to the
    browser's own zone (static/js/zone.js).
    """
    tz_name = form.get("timezone", "UTC")
    folds = {name: rooms.fold_choices(form.get(name, ""), tz_name) for name in ("starts_at", "ends_at")}
    page = render_template(
        "rooms/form.html",
        form=form,
        errors=errors,
        room=room,
        zones=rooms.zone_names(),
        languages=rooms.language_choices(),
        folds=folds,
        suggest=suggest,
    )
    return page, status


@dataclass(frozen=True, slots=True)
class DashboardRow:
    """One room on the dashboard: the room, people here now, messages shown."""

    room: Room
    present: int
    messages: int


def _dashboard_rows() -> list[DashboardRow]:
    owned = db.session.scalars(select(Room).where(Room.owner_id == current_user.id).order_by(Room.starts_at.desc()))
    tracker = presence.current_presence()
    return [DashboardRow(room, len(tracker.present(room.id)), messages.count(room.id)) for room in owned]


@bp.get("/")
def dashboard() -> BaseResponse | str:
    """The facilitator's rooms, newest start first, with status, people here now and messages.

    Kept live by a conditional poll: the list asks again every few seconds (htmx) with the ETag of what it
    shows, and the answer is an empty 304 unless a number changed. Why not a stream per facilitator: these
    counts change at human pace, and a stream would mean a held connection per open dashboard, fed by every
    one of the facilitator's rooms; the poll costs one small query batch and a few hundred bytes.
    """
    rows, now = _dashboard_rows(), utcnow()
    if not is_htmx():
        return render_template("rooms/dashboard.html", rows=rows, now=now)
    shown = [(r.room.id, r.room.title, r.room.status(now).value, r.present, r.messages) for r in rows]
    tag = hashlib.sha256(repr(shown).encode()).hexdigest()[:20]
    if request.if_none_match.contains(tag):
        response = make_response("", 304)
    else:
        response = make_response(render_template("rooms/_room_list.html", rows=rows, now=now))
    response.set_etag(tag)
    response.cache_control.no_cache = True
    response.cache_control.private = True
    return response


@bp.get("/new")
def new() -> str:
    """The empty room form, starting in five minutes and lasting an hour."""
    start = utcnow().replace(second=0, microsecond=0) + timedelta(minutes=5)
    form = {
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "timezone": "UTC",
    }
    return _form_page(form, {}, None, suggest=True)[0]


@bp.post("/")
def create() -> BaseResponse | tuple[str, int]:
    """Create a room, then show its owner page (303). :raise 409/422: the form again with the reasons.

    A start already past is allowed (a room that opens at once), and said plainly, with when it ends.
    """
    try:
        room = rooms.create(current_user, rooms.parse_form(request.form, editing=False))
    except Invalid as invalid:
        return _form_page(request.form, invalid.errors, None, invalid.status)
    flash(f"Room “{room.title}” created. Share its link with your participants.", "success")
    now = utcnow()
    if room.starts_at < now - timedelta(minutes=1):
        left = max(1, int((room.ends_at - now).total_seconds() // 60))
        flash(
            f"Its start, {room.local(room.starts_at):%H:%M on %A %-d %B} ({room.timezone}), had already passed, so "
            f"it is open now. It ends at {room.local(room.ends_at):%H:%M on %A %-d %B}, in {left} minute"
            f"{'' if left == 1 else 's'}. Edit the times if that is not what you meant.",
            "info",
        )
    return see_other(url_for("rooms.show", code=room.code))


def console(room: Room, status: int = 200, errors: dict[str, str] | None = None) -> tuple[str, int]:
    """The room's owner page (share link, settings, the session's charts, queue, reports, participants, exports),
    with ``errors``."""
    now = utcnow()
    context = {
        "room": room,
        "now": now,
        "activity": charts.activity_chart(room, charts.activity(room, now)),
        "people": charts.participation(room),
        "messages": messages.count(room.id),
        "present": presence.present_members(room),
        "states": presence.seat_states(room),
        **moderation.panels(room),
        "errors": errors or {},
        "form": request.form,
    }
    return render_template("rooms/show.html", **context), status


@bp.get("/<code>")
def show(code: str) -> tuple[str, int]:
    """The owner page for one room. :raise 404: not the caller's room."""
    return console(owned_room_or_404(code))


@bp.route("/<code>/delete", methods=["GET", "POST"])
def delete(code: str) -> str | BaseResponse | tuple[str, int]:
    """Delete a room and everything in it, after typing its title to confirm.

    :raise 404: not the caller's room. :raise 422: the confirmation is not the title (the form again).
    """
    room = owned_room_or_404(code)
    if request.method == "POST":
        title = room.title
        try:
            rooms.delete(room, request.form.get("confirm", ""))
        except Invalid as invalid:
            page = render_template("rooms/delete.html", room=room, errors=invalid.errors, form=request.form)
            return page, invalid.status
        flash(f"Room “{title}” and all its messages were deleted.", "success")
        return see_other(url_for("rooms.dashboard"))
    return render_template("rooms/delete.html", room=room, errors={}, form={})


@bp.get("/<code>/audit")
def audit(code: str) -> str:
    """The room's audit log: every moderation action and settings change. :raise 404: not the caller's room."""
    room = owned_room_or_404(code)
    return render_template("rooms/audit.html", room=room, events=moderation.audit_log(room))


@bp.get("/<code>/transcript.<fmt>")
def transcript(code: str, fmt: str) -> Response:
    """The transcript as CSV, JSON, Markdown or a print-friendly page, streamed; ``private=1`` adds the private
    notes between participants and the host (only when the host asks for them).

    :raise 404: not the caller's room, or an unknown format.
    """
    room = owned_room_or_404(code)
    if fmt not in export.TRANSCRIPT_FORMATS:
        abort(404)
    body = stream_with_context(export.transcript(room, fmt, private=request.args.get("private") == "1"))
    response = Response(body, content_type=export.TRANSCRIPT_FORMATS[fmt])
    if fmt != "html":  # named after the room's title as written, with an ASCII fallback (RFC 6266)
        response.headers["Content-Disposition"] = export.content_disposition(*export.download_name(room, fmt))
    return response


@bp.get("/<code>/qr.svg")
def qr(code: str) -> Response:
    """The share link as a QR code (SVG, drawn on the server), for a slide. :raise 404: not the caller's room."""
    room = owned_room_or_404(code)
    link = external_url("chat.room", code=room.code)
    svg = io.BytesIO()  # a standalone SVG document (with its namespace), not the inline form
    segno.make(link, error="m").save(svg, kind="svg", scale=6, border=2, dark="#000", light="#fff", title=link)
    return Response(svg.getvalue(), mimetype="image/svg+xml")  # no-store, as every personal page (headers.py)


@bp.get("/<code>/edit")
def edit(code: str) -> str:
    """The room form, filled in. :raise 404: not the caller's room."""
    room = owned_room_or_404(code)
    return _form_page(_local_input(room), {}, room)[0]


@bp.post("/<code>")
def update(code: str) -> BaseResponse | tuple[str, int]:
    """Save a room's changes, then show its owner page (303). :raise 404: not the caller's room; 409/422: the form."""
    room = owned_room_or_404(code)
    try:
        rooms.update(room, rooms.parse_form(request.form, editing=True))
    except Invalid as invalid:
        return _form_page(request.form, invalid.errors, room, invalid.status)
    flash("Room saved.", "success")
    return see_other(url_for("rooms.show", code=room.code))
