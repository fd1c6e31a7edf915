"""The participant's side: join a room, read it, post, page back through history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, current_app, flash, make_response, render_template, request, url_for
from werkzeug.wrappers import Response

from . import services
from .access import forget_seat, is_owner, previous_seat, remember_seat, room_or_404, seat_for
from .extensions import db
from .htmx import is_htmx, page_or_fragment, see_other
from .models import Membership, Room, utcnow
from .security import form_token
from .services._core import cursor_id
from .text import is_number

bp = Blueprint("chat", __name__, url_prefix="/r")


def _cursor(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if not is_number(raw) or len(raw) > 12:
        abort(400)
    return int(raw)


def _room_context(room: Room, seat: Membership, before: int | None = None, **extra: Any) -> dict[str, Any]:
    per_page = current_app.config["MESSAGES_PER_PAGE"]
    rev = room.last_rev  # read before the messages: a change made meanwhile is replayed, never missed
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
        "last_rev": rev,
        "present": services.present_members(room),
        "is_owner": is_owner(room),
        "host_pending": services.pending_messages(room) if seat.is_host else [],
        "host_reports": services.open_reports(room) if seat.is_host else [],
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
        membership = services.join_room(
            room, request.form.get("alias", ""), request.form.get("password", ""), previous_seat(room)
        )
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


def _member_or_404(room: Room, member_id: int) -> Membership:
    membership = db.session.get(Membership, member_id)
    if membership is None or membership.room_id != room.id or membership.is_host:
        abort(404)
    return membership


def _owned(code: str) -> Room:
    room = room_or_404(code)
    if not is_owner(room):
        abort(404)
    return room


def _back(room: Room) -> Response:
    """After a host action: nothing for htmx (the stream updates the page), else back to where it came from."""
    if is_htmx():
        return make_response("", 204)
    target = request.form.get("next", "")
    if target == "console":
        return see_other(url_for("rooms.show", code=room.code))
    return see_other(url_for("chat.room", code=room.code))


@bp.post("/<code>/members/<id:member_id>/remove")
def remove_member(code: str, member_id: int) -> Response:
    """The host removes a participant; their live stream ends. :raise 404: not the caller's room or member."""
    room = _owned(code)
    membership = _member_or_404(room, member_id)
    services.remove_member(room, membership)
    flash(f"{membership.alias} was removed from the room. They can join again.", "success")
    return _back(room)


@bp.post("/<code>/members/<id:member_id>/ban")
def ban_member(code: str, member_id: int) -> Response:
    """The host removes a participant and keeps their browser out. :raise 404: not the caller's room or member."""
    room = _owned(code)
    membership = _member_or_404(room, member_id)
    services.ban_member(room, membership)
    flash(f"{membership.alias} was removed and cannot join this room again from that browser.", "success")
    return _back(room)


# -- one message: edit, delete, report, remove ------------------------------------


def _message_or_404(room: Room, seq: int) -> Any:
    message = services.message_for(room, seq)
    if message is None:
        abort(404)
    return message


def _message_page(room: Room, seat: Membership, message: Any, status: int = 200, **extra: Any) -> tuple[str, int]:
    own = message.membership_id == seat.id
    editable = own and not message.removed and utcnow() - message.created_at <= services.EDIT_WINDOW
    context = {
        "room": room,
        "seat": seat,
        "message": message,
        "editable": editable,
        "reportable": not own and not message.removed and not seat.is_host,
        "removable": seat.is_host and not message.removed,
        "form": {},
        "errors": {},
        **extra,
    }
    return render_template("chat/message.html", **context), status


@bp.get("/<code>/messages/<id:seq>")
def message(code: str, seq: int) -> tuple[str, int]:
    """One message and what the viewer may do with it. :raise 403: not a member; 404: no such message."""
    room = room_or_404(code)
    seat = seat_for(room)
    if seat is None:
        abort(403)
    return _message_page(room, seat, _message_or_404(room, seq))


def _message_action(code: str, seq: int, action: Any, done: str) -> Response | tuple[str, int]:
    room = room_or_404(code)
    seat = seat_for(room)
    if seat is None:
        abort(403)
    message = _message_or_404(room, seq)
    try:
        action(room, seat, message)
    except services.Invalid as invalid:
        db.session.rollback()
        form = {k: request.form.get(k, "") for k in ("body", "reason")}
        return _message_page(room, seat, message, invalid.status, errors=invalid.errors, form=form)
    flash(done, "success")
    return see_other(url_for("chat.room", code=code, _anchor=f"message-{seq}"))


@bp.post("/<code>/messages/<id:seq>/edit")
def edit_message(code: str, seq: int) -> Response | tuple[str, int]:
    """The author corrects their message (within 5 minutes). :raise 403/404/422: the message page with why."""
    return _message_action(
        code, seq, lambda room, seat, m: services.edit_message(seat, m, request.form.get("body", "")), "Message edited."
    )


@bp.post("/<code>/messages/<id:seq>/delete")
def delete_message(code: str, seq: int) -> Response | tuple[str, int]:
    """The author deletes their message (within 5 minutes). :raise 403/404: the message page with why."""
    return _message_action(code, seq, lambda room, seat, m: services.delete_own_message(seat, m), "Message deleted.")


@bp.post("/<code>/messages/<id:seq>/report")
def report_message(code: str, seq: int) -> Response | tuple[str, int]:
    """A participant reports a message to the host. :raise 409/422: the message page with why."""
    return _message_action(
        code,
        seq,
        lambda room, seat, m: services.report_message(seat, m, request.form.get("reason", "")),
        "Thank you. The host has been told.",
    )


@bp.post("/<code>/messages/<id:seq>/remove")
def remove_message(code: str, seq: int) -> Response | tuple[str, int]:
    """The host removes a message for everyone. :raise 404: not the caller's room or message."""
    room = _owned(code)
    message = _message_or_404(room, seq)
    try:
        services.remove_message(room, message)
    except services.Invalid:
        db.session.rollback()
    flash("Message removed.", "success")
    return _back(room)


# -- the host's queue and reports ---------------------------------------------------


def _host_action(code: str, action: Callable[[Room], object]) -> Response:
    room = _owned(code)
    try:
        action(room)
    except services.Invalid as invalid:
        db.session.rollback()
        abort(invalid.status)
    return _back(room)


@bp.post("/<code>/queue/<id:message_id>/approve")
def approve(code: str, message_id: int) -> Response:
    """Publish a held message now. :raise 404: not the caller's room or message; 409: already decided."""
    return _host_action(code, lambda room: services.approve_message(room, message_id))


@bp.post("/<code>/queue/<id:message_id>/reject")
def reject(code: str, message_id: int) -> Response:
    """Drop a held message. :raise 404: not the caller's room or message; 409: already decided."""
    return _host_action(code, lambda room: services.reject_message(room, message_id))


@bp.post("/<code>/reports/<id:report_id>/dismiss")
def dismiss_report(code: str, report_id: int) -> Response:
    """Dismiss a report, keeping the message. :raise 404: not the caller's room or report."""
    return _host_action(code, lambda room: services.resolve_report(room, report_id))


# -- newer messages: the polling fallback, and reading on without JavaScript ----------------------------

NEWER_BATCH = 200  # messages per polling answer; the next poll fetches the rest


@bp.get("/<code>/newer")
def newer(code: str) -> str | Response:
    """Messages after the ``after`` cursor, for a page whose live stream cannot get through, or without JavaScript.

    For htmx (the room page polls here when a proxy refuses or holds back its stream): the new messages, the
    changes after ``rev`` to messages it already has (out of band), the presence list and the room's state,
    all from the same partials as the stream; the new cursor ``seq.rev`` is in the ``Chatroom-Cursor`` header.
    Without JavaScript: the room page from the first message after ``after``, so the reader keeps their place.

    :raise 403: not a member. :raise 400: a malformed or (for htmx) missing cursor.
    """
    room = room_or_404(code)
    seat = seat_for(room)
    if seat is None:
        abort(403)
    after = _cursor("after")
    if not is_htmx():
        if after is None:
            return see_other(url_for("chat.room", code=code))
        return _newer_page(room, seat, after)
    if after is None:
        abort(400)
    rev = _cursor("rev") or 0
    claimed = room.last_rev  # read first: a change made meanwhile is sent again later, never missed
    messages = services.messages_after(room.id, after, limit=NEWER_BATCH)
    changes = services.changes_after(room.id, rev, after) if rev < claimed else []
    if len(changes) >= 500:  # changes_after's page: claim only what we send
        claimed = changes[-1].rev
    html = render_template(
        "chat/_newer.html", room=room, messages=messages, changes=changes, present=services.present_members(room)
    )
    response = make_response(html)
    response.headers["Chatroom-Cursor"] = cursor_id((messages[-1].seq or after) if messages else after, claimed)
    response.headers["Chatroom-Room-Status"] = room.status().value
    response.headers["Cache-Control"] = "no-store"
    return response


def _newer_page(room: Room, seat: Membership, after: int) -> str:
    """The room page from the first message after ``after`` (or the latest, marked, when there is none)."""
    per_page = current_app.config["MESSAGES_PER_PAGE"]
    batch = services.messages_after(room.id, after, limit=per_page + 1)
    shown = batch[:per_page]
    if not shown:
        return render_template("chat/room.html", **_room_context(room, seat, newer_view=True, new_count=0))
    first, last = shown[0].seq or 0, shown[-1].seq or 0
    context = _room_context(
        room,
        seat,
        messages=shown,
        has_older=first > 1,
        older_cursor=first,
        last_seq=last,
        newer_view=True,
        new_count=len(shown),
        has_newer=len(batch) > per_page,
    )
    return render_template("chat/room.html", **context)
