"""The participant's side: join a room, read it, post, page back through history."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, make_response, render_template, request, url_for
from werkzeug.wrappers import Response

from . import services
from .access import forget_seat, is_owner, remember_seat, room_or_404, seat_for
from .extensions import db
from .htmx import is_htmx, page_or_fragment, see_other
from .models import Membership, Room
from .security import form_token

bp = Blueprint("chat", __name__, url_prefix="/r")


def _cursor(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 12:
        abort(400)
    return int(raw)


def _room_context(room: Room, seat: Membership, before: int | None = None, **extra: Any) -> dict[str, Any]:
    per_page = current_app.config["MESSAGES_PER_PAGE"]
    messages = services.messages_before(room.id, before, per_page)
    first_seq = messages[0].seq if messages else None
    return {
        "room": room,
        "seat": seat,
        "messages": messages,
        "has_older": bool(first_seq and first_seq > 1),
        "older_cursor": first_seq,
        "before": before,
        "last_seq": messages[-1].seq if messages and before is None else room.last_seq,
        "present": services.present_members(room),
        "is_owner": is_owner(room),
        "token": form_token(),
        "form": {},
        "errors": {},
        **extra,
    }


@bp.get("/<code>")
def room(code: str) -> str | tuple[str, int]:
    """The room for members; for everyone else the join form, or when it opens or that it ended.

    :raise 404: no such room.
    """
    room = room_or_404(code)
    seat = seat_for(room)
    if seat is None:
        return render_template("chat/join.html", room=room, status=room.status(), form={}, errors={})
    return render_template("chat/room.html", **_room_context(room, seat, before=_cursor("before")))


@bp.post("/<code>/join")
def join(code: str) -> Response | tuple[str, int]:
    """Join with an alias and the room password. :raise 403/409/422: the join form again, with the reason."""
    room = room_or_404(code)
    if seat_for(room) is not None:
        return see_other(url_for("chat.room", code=code))
    try:
        membership = services.join_room(room, request.form.get("alias", ""), request.form.get("password", ""))
    except services.Invalid as invalid:
        form = {"alias": request.form.get("alias", "")}
        page = render_template("chat/join.html", room=room, status=room.status(), form=form, errors=invalid.errors)
        return page, invalid.status
    remember_seat(room, membership)
    return see_other(url_for("chat.room", code=code))


@bp.post("/<code>/messages")
def post(code: str) -> Response | tuple[str, int]:
    """Post a message. The stream, not this response, shows it, in the sender's tab too.

    With htmx the answer is a fresh composer; without, a 303 back to the room.
    :raise 403: not a member, or the room is not open; 422: empty or too long.
    """
    room = room_or_404(code)
    seat = seat_for(room)
    if seat is None:
        abort(403)
    body = request.form.get("body", "")
    try:
        services.post_message(seat, body, request.form.get("token", ""))
    except services.Invalid as invalid:
        db.session.rollback()
        context = _room_context(room, seat, form={"body": body}, errors=invalid.errors)
        return page_or_fragment("chat/room.html", "chat/_composer.html", invalid.status, **context)
    if is_htmx():
        return make_response(render_template("chat/_composer.html", room=room, token=form_token(), form={}, errors={}))
    return see_other(url_for("chat.room", code=code, _anchor="composer"))


@bp.get("/<code>/messages")
def history(code: str) -> str | Response:
    """Older messages before the ``before`` cursor: a fragment for htmx, the room page otherwise.

    :raise 403: not a member. :raise 400: a malformed cursor.
    """
    room = room_or_404(code)
    seat = seat_for(room)
    if seat is None:
        abort(403)
    before = _cursor("before")
    if not is_htmx():
        return see_other(url_for("chat.room", code=code, before=before))
    context = _room_context(room, seat, before=before)
    return render_template("chat/_history.html", **context)


@bp.post("/<code>/typing")
def typing(code: str) -> tuple[str, int]:
    """A typing signal from the composer: nothing is stored; 204 either way."""
    room = room_or_404(code)
    seat = seat_for(room)
    if seat is None:
        abort(403)
    try:
        services.signal_typing(seat)
    except services.Invalid:
        abort(403)
    return "", 204


@bp.post("/<code>/leave")
def leave(code: str) -> Response:
    """Leave the room: the seat closes and this browser forgets it."""
    room = room_or_404(code)
    seat = seat_for(room)
    if seat is not None and not seat.is_host:
        services.leave_room(seat)
        forget_seat(room)
        flash(f"You left “{room.title}”.", "success")
        return see_other(url_for("chat.room", code=code))
    return see_other(url_for("rooms.show", code=code) if is_owner(room) else url_for("chat.room", code=code))


@bp.post("/<code>/members/<int:member_id>/remove")
def remove_member(code: str, member_id: int) -> Response:
    """The host removes a participant; their live stream ends. :raise 404: not the caller's room or member."""
    room = room_or_404(code)
    if not is_owner(room):
        abort(404)
    membership = db.session.get(Membership, member_id)
    if membership is None or membership.room_id != room.id or membership.is_host:
        abort(404)
    if membership.active:
        services.remove_member(room, membership)
    flash(f"{membership.alias} was removed from the room.", "success")
    return see_other(url_for("chat.room", code=code))
