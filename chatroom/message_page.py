"""One message in a room: its own page (what the viewer may do with it: the way without JavaScript) and the
author's and reader's actions on it (edit, delete, report).

The routes attach to the chat blueprint and keep its endpoint names (``chat.message``, ``chat.edit_message``...),
as ``chatroom/host.py`` does for the host's. The message menu (``static/js/menu.js``) asks here for the inline
edit and report forms and posts them with htmx; the host's removal of a message is in ``chatroom/host.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, flash, make_response, render_template, request, url_for
from werkzeug.wrappers import Response

from .access import member_room_or_403, message_or_404
from .chat import bp
from .errors import render_error
from .htmx import is_htmx, see_other
from .models import Membership, Message, Room
from .services import Invalid, messages, moderation


def _message_page(room: Room, seat: Membership, message: Message, status: int = 200, **extra: Any) -> tuple[str, int]:
    own = message.membership_id == seat.id
    context = {
        "room": room,
        "seat": seat,
        "message": message,
        "editable": message.editable_by(seat),
        "reportable": not own and not message.removed and not seat.is_host,
        "removable": seat.is_host and not message.removed,
        "form": {},
        "errors": {},
        **extra,
    }
    return render_template("chat/message.html", **context), status


MESSAGE_FORMS = ("edit", "report")  # the inline forms the message menu asks for (static/js/menu.js)


@bp.get("/<code>/messages/<id:seq>")
def message(code: str, seq: int) -> tuple[str, int]:
    """One message and what the viewer may do with it; for htmx with ``form=edit`` or ``form=report``, that
    form alone, to open inside the message in the room (the page is the same thing without JavaScript).

    :raise 403: not a member; 404: no such message (or, for htmx, no such form).
    """
    room, seat = member_room_or_403(code)
    message = message_or_404(room, seq)
    if is_htmx() and request.args.get("form"):
        kind = request.args["form"]
        if kind not in MESSAGE_FORMS:
            abort(404)
        return _message_form(room, message, kind, {}, {}, 200)
    return _message_page(room, seat, message)


def _message_form(
    room: Room, message: Message, kind: str, form: dict[str, str], errors: dict[str, str], status: int
) -> tuple[str, int]:
    """The inline edit or report form of one message (``chat/_message_form.html``), with ``errors``."""
    context = {"room": room, "message": message, "kind": kind, "form": form, "errors": errors}
    return render_template("chat/_message_form.html", **context), status


def _message_action(
    code: str, seq: int, action: Callable[[Membership, Message], object], done: str, kind: str | None = None
) -> Response | tuple[str, int]:
    """Run one reader's action on a message. Without JavaScript: back to the message in the room (303), or the
    message page with why it was refused. With htmx (the message menu): 204, the stream showing the result;
    refused, the inline ``kind`` form again with the reason, or (no form) the reason alone, with its status."""
    room, seat = member_room_or_403(code)
    message = message_or_404(room, seq)
    try:
        action(seat, message)
    except Invalid as invalid:
        form = {k: request.form.get(k, "") for k in ("body", "reason")}
        if is_htmx():
            if kind is not None:
                return _message_form(room, message, kind, form, invalid.errors, invalid.status)
            return render_error(invalid.status, " ".join(invalid.errors.values()))
        return _message_page(room, seat, message, invalid.status, errors=invalid.errors, form=form)
    if is_htmx():
        return make_response("", 204)
    flash(done, "success")
    return see_other(url_for("chat.room", code=code, _anchor=f"message-{seq}"))


@bp.post("/<code>/messages/<id:seq>/edit")
def edit_message(code: str, seq: int) -> Response | tuple[str, int]:
    """The author corrects their message (within 5 minutes). :raise 403/404/409/422: the message page with why."""
    return _message_action(
        code, seq, lambda seat, m: messages.edit(seat, m, request.form.get("body", "")), "Message edited.", "edit"
    )


@bp.post("/<code>/messages/<id:seq>/delete")
def delete_message(code: str, seq: int) -> Response | tuple[str, int]:
    """The author deletes their message (within 5 minutes). :raise 403/404/409: the message page with why."""
    return _message_action(code, seq, messages.delete_own, "Message deleted.")


@bp.post("/<code>/messages/<id:seq>/report")
def report_message(code: str, seq: int) -> Response | tuple[str, int]:
    """A participant reports a message to the host. :raise 403/409/422: the message page with why."""
    return _message_action(
        code,
        seq,
        lambda seat, m: moderation.report(seat, m, request.form.get("reason", "")),
        "Thank you. The host has been told.",
        "report",
    )
