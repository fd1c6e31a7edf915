"""Taking part: reactions, questions and votes, search, a private word with the host, and "seen up to".

Every action is a plain form (post/redirect/get back to the message in the room); with htmx it
answers 204 and the room's stream brings the change to every page, the sender's included. Views
start from the caller's seat (``access.member_room_or_403``) or ownership (``owned_room_or_404``),
and call one service in ``services/participation.py``, ``services/notes.py`` or ``services/search.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, abort, flash, make_response, render_template, request, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from . import mentions
from .access import member_room_or_403, message_or_404, owned_room_or_404, participant_or_404
from .htmx import is_htmx, see_other
from .links import linkify
from .models import Membership, Message, Reactions, Room
from .services import Invalid, notes, participation, search
from .text import is_number

bp = Blueprint("participation", __name__, url_prefix="/r")


def _done(room: Room, seq: int | None, text: str = "") -> Response:
    """After an action: nothing for htmx (the stream shows the change), else back to the message."""
    if is_htmx():
        return make_response("", 204)
    if text:
        flash(text, "success")
    if request.form.get("next") == "questions":
        return see_other(url_for("participation.questions", code=room.code))
    anchor = f"message-{seq}" if seq else None
    return see_other(url_for("chat.room", code=room.code, _anchor=anchor))


@bp.post("/<code>/messages/<id:seq>/react")
def react(code: str, seq: int) -> Response:
    """Toggle one's reaction (form field ``emoji``, a ``Reactions`` value) on a message.

    :raise 403: not a member, or the room is not open; 404: no such message; 409: removed; 422: no such reaction.
    """
    room, seat = member_room_or_403(code)
    on = participation.react(seat, message_or_404(room, seq), request.form.get("emoji", ""))
    return _done(room, seq, "Reaction added." if on else "Reaction taken back.")


@bp.post("/<code>/messages/<id:seq>/vote")
def vote(code: str, seq: int) -> Response:
    """Toggle one's upvote of a question. :raise 403: one's own question, the host, or not open; 404; 409."""
    room, seat = member_room_or_403(code)
    on = participation.vote(seat, message_or_404(room, seq))
    return _done(room, seq, "Upvoted." if on else "Upvote taken back.")


@bp.post("/<code>/messages/<id:seq>/question")
def mark_question(code: str, seq: int) -> Response:
    """The host marks a message as a question (``question=1``) or not (``0``). :raise 404: not theirs; 409."""
    said = ("Marked as a question.", "No longer a question.")
    return _host_mark(code, seq, "question", participation.set_question, said)


@bp.post("/<code>/messages/<id:seq>/answered")
def mark_answered(code: str, seq: int) -> Response:
    """The host marks a question answered (``answered=1``) or not (``0``). :raise 404: not theirs; 409."""
    return _host_mark(code, seq, "answered", participation.set_answered, ("Marked answered.", "Marked not answered."))


def _host_mark(
    code: str, seq: int, field: str, mark: Callable[[Room, Message, bool], Message], said: tuple[str, str]
) -> Response:
    """One of the host's two-way marks on a message: ``field`` is ``1`` (the default) or ``0`` in the form."""
    room = owned_room_or_404(code)
    on = request.form.get(field, "1") == "1"
    mark(room, message_or_404(room, seq), on)
    return _done(room, seq, said[0] if on else said[1])


@bp.get("/<code>/questions")
def questions(code: str) -> str:
    """The room's questions, unanswered first, by votes, newest first among equals. :raise 403: not a member."""
    room, seat = member_room_or_403(code)
    return render_template("chat/questions.html", room=room, seat=seat, questions=participation.questions(room))


@bp.get("/<code>/search")
def search_room(code: str) -> tuple[str, int]:
    """Find messages by words (``q``), or a member's messages (``by``: a seat id), newest first, each with a link
    to it in the conversation. :raise 403: not a member; 400: a malformed ``by``; 422: a query too long."""
    room, seat = member_room_or_403(code)
    words, by = request.args.get("q", ""), request.args.get("by", "")
    if by and (not is_number(by) or len(by) > 12):
        abort(400)
    author = _room_member(room, int(by)) if by else None
    context: dict[str, Any] = {"room": room, "seat": seat, "q": words, "author": author, "errors": {}}
    if not words.strip() and author is None:
        return render_template("chat/search.html", results=None, **context), 200
    try:
        found = search.search(room, words, author)
    except Invalid as invalid:
        return render_template("chat/search.html", results=None, **{**context, "errors": invalid.errors}), 422
    return render_template("chat/search.html", results=found, **context), 200


def _room_member(room: Room, member_id: int) -> Membership:
    """A seat of ``room``, the host's included (mentions link to anyone's messages). :raise 404: not this room's."""
    host = room.host_seat()
    return host if member_id == host.id else participant_or_404(room, member_id)


@bp.post("/<code>/seen")
def seen(code: str) -> tuple[str, int]:
    """The page has shown the room up to message ``seq`` (sent as the tab is hidden or left): 204.

    :raise 403: not a member. :raise 400: ``seq`` is not a number.
    """
    _, seat = member_room_or_403(code)
    raw = request.form.get("seq", "")
    if not is_number(raw) or len(raw) > 12:
        abort(400)
    participation.seen(seat, int(raw))
    return "", 204


@bp.post("/<code>/private")
def send_note(code: str) -> Response:
    """A participant's private word to the host (field ``note``): with htmx a fresh form, else back to the room.

    :raise 403: the host, or the room is not open; 422: empty or too long (the error page says why).
    """
    room, seat = member_room_or_403(code)
    notes.send(seat, request.form.get("note", ""))
    if is_htmx():
        return make_response(render_template("chat/_private_form.html", room=room, form={}, errors={}))
    flash("Sent to the host, privately.", "success")
    return see_other(url_for("chat.room", code=code, _anchor="private"))


@bp.get("/<code>/private/<id:member_id>")
def private_thread(code: str, member_id: int) -> str:
    """The host's private thread with one participant, and a form to answer. :raise 404: not theirs."""
    room = owned_room_or_404(code)
    participant = participant_or_404(room, member_id)
    return render_template("chat/private.html", room=room, participant=participant, notes=notes.thread(participant))


@bp.post("/<code>/private/<id:member_id>")
def reply_note(code: str, member_id: int) -> Response:
    """The host answers a participant privately (field ``note``), then sees the thread again (303).

    :raise 404: not the caller's room or participant. :raise 403: not open; 422: empty or too long.
    """
    room = owned_room_or_404(code)
    participant = participant_or_404(room, member_id)
    notes.reply(room, participant, request.form.get("note", ""))
    flash(f"Sent to {participant.alias}, privately.", "success")
    return see_other(url_for("participation.private_thread", code=code, member_id=member_id))


# -- rendering -----------------------------------------------------------------------------------------


def message_html(message: Message, room: Room) -> Markup:
    """A message's text, escaped, with its http(s) addresses as links (``links.linkify``) and its mentions
    linked to the person's messages in the room's search."""
    if not message.mentions:  # most messages: no link to build (every live message is rendered at its post)
        return linkify(message.body)
    link = url_for("participation.search_room", code=room.code, by="MEMBER").replace("MEMBER", "{member}")
    return mentions.render(message.body, message.mentions, link, plain=linkify)


def init_app(app: Flask) -> None:
    """Template helpers: ``message|message_html(room)`` and the list of reactions."""
    app.add_template_filter(message_html, "message_html")
    app.jinja_env.globals["REACTIONS"] = list(Reactions)
