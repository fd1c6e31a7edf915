"""Everything the host does to a running room: people, messages, the queue, reports and settings.

Every view here starts from ``access.owned_room_or_404`` (another facilitator's room
looks missing) and calls one service. The routes keep the URLs and endpoint names they
have always had, so they are attached to the blueprints whose URL space they live in:
actions on the room's people and messages under ``/r/<code>/…`` (``chat.*``), settings
under ``/rooms/<code>/settings/…`` (``rooms.*``, signed-in facilitators only).

With htmx an action answers 204 (the room's stream brings the change to every page,
the host's included); without JavaScript it redirects back to the room or, when the
form says ``next=console``, to the room's owner page. A refused action re-renders the
owner page with the reason (settings), or shows the refusal's message with its status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import abort, flash, make_response, render_template, request, url_for
from werkzeug.wrappers import Response

from .access import message_or_404, owned_room_or_404, participant_or_404
from .chat import bp as room_bp
from .htmx import is_htmx, see_other
from .models import Room
from .rooms import bp as rooms_bp
from .rooms import console
from .services import Invalid, members, moderation, rooms


def _back(room: Room, done: str | None = None) -> Response:
    """After a host action: nothing for htmx (the stream updates the page), else ``done`` as the next page's
    status message and back where the form came from."""
    if is_htmx():
        return make_response("", 204)
    if done:
        flash(done, "success")
    if request.form.get("next") == "console":
        return see_other(url_for("rooms.show", code=room.code))
    return see_other(url_for("chat.room", code=room.code))


@room_bp.post("/<code>/members/<id:member_id>/remove")
def remove_member(code: str, member_id: int) -> Response:
    """The host removes a participant; their live streams end. :raise 404: not the caller's room or participant."""
    room = owned_room_or_404(code)
    membership = participant_or_404(room, member_id)
    members.remove(room, membership)
    return _back(room, f"{membership.alias} was removed from the room. They can join again.")


@room_bp.post("/<code>/members/<id:member_id>/ban")
def ban_member(code: str, member_id: int) -> Response:
    """The host removes a participant and keeps their browser out. :raise 404: not the caller's room or participant."""
    room = owned_room_or_404(code)
    membership = participant_or_404(room, member_id)
    members.ban(room, membership)
    return _back(room, f"{membership.alias} was removed and cannot join this room again from that browser.")


@room_bp.post("/<code>/messages/<id:seq>/remove")
def remove_message(code: str, seq: int) -> Response:
    """The host removes a message for everyone. :raise 404: not the caller's room or message; 409: already removed."""
    room = owned_room_or_404(code)
    moderation.remove_message(room, message_or_404(room, seq))
    return _back(room, "Message removed.")


@room_bp.post("/<code>/queue/<id:message_id>/approve")
def approve(code: str, message_id: int) -> Response:
    """Publish a held message now. :raise 404: not the caller's room or message; 409: already decided."""
    room = owned_room_or_404(code)
    moderation.approve(room, message_id)
    return _back(room)


@room_bp.post("/<code>/queue/<id:message_id>/reject")
def reject(code: str, message_id: int) -> Response:
    """Drop a held message. :raise 404: not the caller's room or message; 409: already decided."""
    room = owned_room_or_404(code)
    moderation.reject(room, message_id)
    return _back(room)


@room_bp.post("/<code>/reports/<id:report_id>/dismiss")
def dismiss_report(code: str, report_id: int) -> Response:
    """Dismiss a report, keeping the message. :raise 404: not the caller's room or report."""
    room = owned_room_or_404(code)
    moderation.dismiss_report(room, report_id)
    return _back(room)


# -- settings of a running room ------------------------------------------------------------------------

SETTINGS: dict[str, tuple[Callable[[Room, Mapping[str, str]], Room], str]] = {
    "lock": (lambda room, form: rooms.set_locked(room, True), "Room locked: participants can read but not post."),
    "unlock": (lambda room, form: rooms.set_locked(room, False), "Room unlocked."),
    "end": (lambda room, form: rooms.end_now(room), "Room ended."),
    "extend": (lambda room, form: rooms.extend(room, form.get("minutes", "")), "End time extended."),
    "slow-mode": (lambda room, form: rooms.set_slow_mode(room, form.get("seconds", "")), "Slow mode saved."),
    "premoderation": (
        lambda room, form: rooms.set_premoderation(room, form.get("enabled") == "1"),
        "Pre-moderation saved.",
    ),
    "retention": (lambda room, form: rooms.set_retention(room, form.get("days", "")), "Retention saved."),
}


@rooms_bp.post("/<code>/settings/<name>")
def setting(code: str, name: str) -> Response | tuple[str, int]:
    """Change one setting of a room (lock, unlock, end, extend, slow mode, pre-moderation, retention).

    With htmx (the host's tools in the room): 204, the stream bringing the new state and controls; refused,
    the reason as an out-of-band error beside the control's field (``chat/_control_error.html``).

    :raise 404: not the caller's room, or no such setting. :raise 409/422: the owner page again with why.
    """
    room = owned_room_or_404(code)
    if name not in SETTINGS:
        abort(404)
    change, done = SETTINGS[name]
    try:
        change(room, request.form)
    except Invalid as invalid:
        if is_htmx():
            html = render_template("chat/_control_error.html", errors=invalid.errors)
            return make_response(html, invalid.status)
        return console(room, invalid.status, invalid.errors)
    if is_htmx():
        return make_response("", 204)
    flash(done, "success")
    if request.form.get("next") == "room":
        return see_other(url_for("chat.room", code=code))
    return see_other(url_for("rooms.show", code=code))
