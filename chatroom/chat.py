"""The participant's room: join, read, post, page back through history, and leave.

Everything the host does to a running room lives in ``chatroom/host.py``; taking part (reactions, votes,
questions, search, private notes) in ``chatroom/participation.py``; one message's page and the actions on it
(edit, delete, report) in ``chatroom/message_page.py``; what is left here is the seat's own.
Every view here starts from ``access.member_room_or_403``: a room is reachable only
through the caller's own seat in it.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, current_app, flash, make_response, render_template, request, url_for
from werkzeug.wrappers import Response

from . import charts, limits, presence
from .access import (
    held_seats,
    is_owner,
    member_room_or_403,
    previous_seat,
    remember_seat,
    room_and_seat,
    room_code,
    room_or_404,
    seat_for,
)
from .errors import render_error
from .events import cursor_id
from .extensions import db
from .htmx import is_htmx, page_or_fragment, see_other
from .models import Membership, Message, Room, RoomStatus
from .passwords import form_token
from .services import Invalid, members, messages, moderation, participation
from .text import is_number, seconds_phrase

bp = Blueprint("chat", __name__, url_prefix="/r")

NEWER_BATCH = 200  # messages per polling answer; the next poll fetches the rest


def query_cursor(name: str) -> int | None:
    """A ``seq`` cursor from the query string (``before``, ``after``, ``rev``), or None when absent.

    :raise 400: not a whole number of at most 12 digits.
    """
    raw = request.args.get(name)
    if raw is None:
        return None
    if not is_number(raw) or len(raw) > 12:
        abort(400)
    return int(raw)


def _room_context(room: Room, seat: Membership, before: int | None = None, **extra: Any) -> dict[str, Any]:
    per_page = current_app.config["MESSAGES_PER_PAGE"]
    rev = room.last_rev  # read before the messages: a change made meanwhile is replayed, never missed
    present = presence.roster(room)
    shown = messages.before(room.id, before, per_page)
    first_seq = shown[0].seq if shown else None
    return {
        "room": room,
        "seat": seat,
        "messages": shown,
        "has_older": bool(first_seq and first_seq > 1),
        "older_cursor": first_seq,
        "before": before,
        "last_seq": shown[-1].seq if shown and before is None else room.last_seq,
        "last_rev": rev,
        "present": present,
        "is_owner": is_owner(room),
        "host_panels": moderation.panels(room) if seat.is_host else {},
        **participation.aside(room, seat),
        "held": None if seat.is_host else messages.held_for(seat),
        "host_people": host_people(room, {h.id: h.state for h in present}) if seat.is_host else [],
        "token": form_token(),
        "form": {},
        "errors": {},
        **extra,
    }


def _previous(room: Room) -> Membership | None:
    """The closed seat this browser held in ``room`` (it left, or the host removed it), if any."""
    seat_id = previous_seat(room)
    seat = db.session.get(Membership, seat_id) if seat_id is not None else None
    return seat if seat is not None and seat.room_id == room.id and not seat.active else None


def _join_page(room: Room, form: dict[str, str], errors: dict[str, str], status: int = 200) -> tuple[str, int]:
    """The join form; a browser that held a seat here is welcomed back under its alias (or told it is banned)."""
    before = _previous(room)
    if before is not None and "alias" not in form:
        form = {**form, "alias": before.alias}
    page = render_template("chat/join.html", room=room, status=room.status(), form=form, errors=errors, before=before)
    return page, status


def host_people(room: Room, here: dict[int, str]) -> list[dict[str, Any]]:
    """The host's People list: every participant (the active first, then by alias) with their message count,
    and their state in "Here now" (``here``: seat -> ``online``, ``away`` or ``offline``; absent: ``offline``),
    so the rows say it without JavaScript too; a live page keeps it current (``static/js/host.js``)."""
    counts = charts.counts_by_seat(room)
    seats = sorted((m for m in room.memberships if not m.is_host), key=lambda m: (not m.active, m.alias_key))
    return [
        {"seat": m, "count": counts.get(m.id, 0), "new": False, "presence": here.get(m.id, "offline")} for m in seats
    ]


@bp.get("/<code>")
def room(code: str) -> str | tuple[str, int]:
    """The room for members; for everyone else the join form, or when it opens or that it ended.

    A member's page load counts them as here for a while (``presence.page_seen``), so a reader
    without JavaScript, who has no live stream, is in "Here now" too.

    :raise 404: no such room. :raise 400: a malformed ``before`` cursor.
    """
    room, seat = room_and_seat(code)
    if seat is None:
        return _join_page(room, {}, {})
    before = query_cursor("before")
    presence.page_seen(room, seat)
    context = _room_context(room, seat, before=before)
    if before is None:  # the latest messages: mark where the new ones begin, and remember they were seen
        context["since_seq"], context["since_count"] = participation.since_left(room, seat)
        participation.seen(seat, context["last_seq"] or 0)
    return render_template("chat/room.html", **context)


@bp.post("/<code>/join")
def join(code: str) -> Response | tuple[str, int]:
    """Join with an alias and the room password, then see the room (303).

    A wrong password counts against the join limits (``limits.count_failure``); nothing else does.
    :raise 403/409/422: the join form again, with the reason beside the field.
    """
    room = room_or_404(code)
    if seat_for(room) is not None:
        return see_other(url_for("chat.room", code=code))
    try:
        membership = members.join(
            room, request.form.get("alias", ""), request.form.get("password", ""), previous_seat(room)
        )
    except Invalid as invalid:
        if "password" in invalid.errors:
            limits.count_failure()
        return _join_page(room, {"alias": request.form.get("alias", "")}, invalid.errors, invalid.status)
    remember_seat(room, membership)
    return see_other(url_for("chat.room", code=code))


def _closed_reason(room: Room) -> str:
    """Why this browser has no seat in ``room`` to post from, in words."""
    if room.status() is RoomStatus.ENDED:
        return "This room has ended, so your message was not sent"
    before = _previous(room)
    if before is not None and before.banned:
        return "The host removed you from this room, so your message was not sent"
    if before is not None and before.removed:
        return "The host removed you from this room, so your message was not sent. You can join again"
    if before is not None:
        return "You left this room, so your message was not sent. Join again to post"
    return "You are not in this room, so your message was not sent. Join it to post"


def _unsent(room: Room, body: str, reason: str, status: int) -> Response:
    """A post that cannot be sent from this seat: the text comes back with the reason, never lost.

    htmx: the composer with the text kept, closed, and the reason beside it. Without JavaScript:
    a page that shows the text to copy and says what to do.
    """
    errors = {"body": reason}
    if is_htmx():
        html = render_template(
            "chat/_composer.html", room=room, token=form_token(), form={"body": body}, errors=errors, closed=True
        )
    else:
        html = render_template("chat/unsent.html", room=room, body=body, errors=errors)
    return make_response(html, status)


@bp.post("/<code>/messages")
def post(code: str) -> Response | tuple[str, int]:
    """Post a message. The stream, not this response, shows it, in the sender's tab too.

    With htmx the answer is a fresh composer, morphed into the page so the box keeps its focus (and,
    under pre-moderation, the author's own list of held messages, out of band); without, a 303 back
    to the room. A refused post always gives the
    text back, beside the reason: the composer again (htmx), or the room page or ``chat/unsent.html``.

    :raise 403: no seat here (removed, left, ended: the text comes back), the room is not open or locked;
    :raise 422: empty or too long; 429: slow mode or the flood limit (with ``Retry-After``);
    :raise 404: no such room, or it was deleted while the post was on its way; 409: this form already sent other
        words (an edited form sent again after its first answer was lost): it comes back with a fresh token.
    """
    messages.prepare_post()  # before the first query: no BEGIN or COMMIT round trip (services.messages)
    body = request.form.get("body", "")
    question = request.form.get("question") == "1"
    token = request.form.get("token", "")
    known = room_code(code)
    if known and not question and messages.post_at_once(known, held_seats(), body, token) is not None:
        return _posted(code)  # the common case, in one statement; anything else takes the path below
    room, seat = room_and_seat(code)
    if seat is None:
        return _unsent(room, body, _closed_reason(room), 403)
    try:
        message, _ = messages.post(seat, body, token, question=question)
    except Invalid as invalid:
        if invalid.status == 404:  # the room was deleted while this post was on its way
            abort(404)
        if room.status() is not RoomStatus.OPEN:
            return _unsent(room, body, invalid.errors.get("body", invalid.message), invalid.status)
        context = _room_context(room, seat, form={"body": body, "question": question}, errors=invalid.errors)
        response = page_or_fragment("chat/room.html", "chat/_composer.html", invalid.status, **context)
        if invalid.retry_after:
            response.headers["Retry-After"] = str(invalid.retry_after)
            limits.wait_at_least(invalid.retry_after)
        return response
    return _posted(code, room, seat, message)


def _posted(
    code: str, room: Room | None = None, seat: Membership | None = None, message: Message | None = None
) -> Response:
    """The answer to a post that went through: a fresh composer (htmx; with the author's messages waiting for
    the host out of band when ``message`` was held), else a 303 back to the room. ``room`` and ``seat`` are
    loaded when not given (the one-statement post loads neither).

    If the seat closed in the instant after the post (the host removed the person, or they left in another
    tab), the post still went through: the answer is 200, with the composer closed as the room's page would
    show it, never a refusal that would keep the sent text in the box. :raise 404: the room was deleted then.
    """
    if not is_htmx():
        return see_other(url_for("chat.room", code=code, _anchor="composer"))
    if room is None or seat is None:
        room, seat = room_and_seat(code)
    held = messages.held_for(seat) if seat is not None and message is not None and message.seq is None else None
    html = render_template(
        "chat/_composer.html",
        room=room,
        seat=seat,
        token=form_token(),
        form={},
        errors={},
        held=held,
        closed=seat is None,
    )
    return make_response(html)


@bp.errorhandler(429)
def too_many(error: Exception) -> Response | tuple[str, int]:
    """Over a rate limit (``chatroom/limits.py``): the form again with what was typed and when to try again.

    The ``Retry-After`` header is set on the way out (``limits._truthful_headers``).
    """
    seconds = limits.retry_after()
    code = str((request.view_args or {}).get("code", ""))
    if request.endpoint == "chat.join":
        room = room_or_404(code)
        problem = (
            f"Too many wrong passwords from this browser or network. Wait {seconds_phrase(seconds)}, then try again"
        )
        return _join_page(room, {"alias": request.form.get("alias", "")}, {"password": problem}, 429)
    if request.endpoint == "chat.post":
        room, seat = member_room_or_403(code)
        problem = f"You are sending faster than the room allows. Wait {seconds_phrase(seconds)}, then send again"
        context = _room_context(room, seat, form={"body": request.form.get("body", "")}, errors={"body": problem})
        return page_or_fragment("chat/room.html", "chat/_composer.html", 429, **context)
    return render_error(429, f"Too many attempts. Wait {seconds_phrase(seconds)} and try again.")


@bp.get("/<code>/messages")
def history(code: str) -> str | Response:
    """Older messages before the ``before`` cursor: a fragment for htmx, the room page otherwise.

    :raise 403: not a member. :raise 400: a malformed cursor.
    """
    room, seat = member_room_or_403(code)
    before = query_cursor("before")
    if not is_htmx():
        return see_other(url_for("chat.room", code=code, before=before))
    return render_template("chat/_history.html", **_room_context(room, seat, before=before))


@bp.post("/<code>/typing")
def typing(code: str) -> tuple[str, int]:
    """A typing signal from the composer: nothing is stored; 204 either way.

    :raise 403: not a member, or the room is not open.
    """
    _, seat = member_room_or_403(code)
    members.signal_typing(seat)
    return "", 204


TAB = re.compile(r"[A-Za-z0-9]{8,32}")


@bp.post("/<code>/presence")
def here(code: str) -> tuple[str, int]:
    """A tab's presence from its page (Page Visibility API, and a beacon on pagehide): 204 either way.

    ``tab`` is the page's name for itself; ``state`` is ``away`` (hidden), ``online`` (shown again)
    or ``gone`` (the page is going away: it leaves "Here now" at once).
    :raise 403: not a member. :raise 400: no valid tab or state.
    """
    _, seat = member_room_or_403(code)
    tab, state = request.form.get("tab", ""), request.form.get("state", "")
    if not TAB.fullmatch(tab) or state not in ("away", "online", "gone"):
        abort(400)
    if state == "gone":
        members.depart(seat, tab)
    else:
        members.set_away(seat, tab, state == "away")
    return "", 204


@bp.get("/<code>/menu")
def menu(code: str) -> str:
    """The message menu's actions for this viewer (``chat/_menu.html``): what static/js/menu.js offers in each
    message's menu, asked for when a menu is first used.

    :raise 403: not a member. :raise 404: no such room.
    """
    room, seat = member_room_or_403(code)
    return render_template("chat/_menu.html", room=room, seat=seat, open=room.status() is RoomStatus.OPEN)


@bp.get("/<code>/people")
def people(code: str) -> str:
    """Everyone in "Here now" (``presence.roster``), however many: the link that replaces the names in a room
    with more than ``PRESENCE_LIST_MAX`` people here (``chat/_presence.html``).

    :raise 403: not a member. :raise 404: no such room.
    """
    room, seat = member_room_or_403(code)
    return render_template("chat/people.html", room=room, seat=seat, members=presence.roster(room))


@bp.post("/<code>/leave")
def leave(code: str) -> Response:
    """Leave the room: the seat closes and its streams end (303 to the room's page).

    The browser keeps the closed seat in its session, so the join page welcomes it back under its alias.
    """
    room, seat = room_and_seat(code)
    if seat is not None and not seat.is_host:
        members.leave(seat)
        flash(f"You left “{room.title}”.", "success")
        return see_other(url_for("chat.room", code=code))
    return see_other(url_for("rooms.show", code=code) if is_owner(room) else url_for("chat.room", code=code))


# -- newer messages: the polling fallback, and reading on without JavaScript ----------------------------


@bp.get("/<code>/newer")
def newer(code: str) -> str | Response:
    """Messages after the ``after`` cursor, for a page whose live stream cannot get through, or without JavaScript.

    For htmx (the room page polls here when a proxy refuses or holds back its stream): the new messages, the
    changes after ``rev`` to messages it already has (out of band), the presence list and the room's state,
    all from the same partials as the stream; the new cursor ``seq.rev`` is in the ``Chatroom-Cursor`` header.
    Without JavaScript: the room page from the first message after ``after``, so the reader keeps their place.

    :raise 403: not a member. :raise 400: a malformed or (for htmx) missing cursor.
    """
    room, seat = member_room_or_403(code)
    after = query_cursor("after")
    if not is_htmx():
        if after is None:
            return see_other(url_for("chat.room", code=code))
        presence.page_seen(room, seat)
        return _newer_page(room, seat, after)
    if after is None:
        abort(400)
    rev = query_cursor("rev") or 0
    claimed = room.last_rev  # read first: a change made meanwhile is sent again later, never missed
    fresh = messages.after(room.id, after, limit=NEWER_BATCH)
    changes = messages.changes_after(room.id, rev, after) if rev < claimed else []
    if len(changes) >= 500:  # changes_after's page: claim only what we send
        claimed = changes[-1].rev
    html = render_template(
        "chat/_newer.html", room=room, messages=fresh, changes=changes, present=presence.roster(room)
    )
    response = make_response(html)
    response.headers["Chatroom-Cursor"] = cursor_id((fresh[-1].seq or after) if fresh else after, claimed)
    response.headers["Chatroom-Room-Status"] = room.status().value
    response.headers["Cache-Control"] = "no-store"
    return response


def _newer_page(room: Room, seat: Membership, after: int) -> str:
    """The room page from the first message after ``after`` (or the latest, marked, when there is none)."""
    per_page = current_app.config["MESSAGES_PER_PAGE"]
    batch = messages.after(room.id, after, limit=per_page + 1)
    shown = batch[:per_page]
    if not shown:
        return render_template("chat/room.html", **_room_context(room, seat, newer_view=True, new_count=0))
    first, last = shown[0].seq or 0, shown[-1].seq or 0
    participation.seen(seat, last)
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
