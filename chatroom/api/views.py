"""The JSON API's operations: each loads the caller's room (`core.owned_room`) and calls one service.

The rules live in the services, as for the pages; a refusal (`Invalid`) becomes a
problem document with its status and the fields it names (`chatroom/errors.py`).
The part of each docstring above `---` is the operation's text in the OpenAPI
document; below it, notes for this code's readers.

Longer than our ~400-line guide on purpose: every operation of the API is here, in the
order of the published document (docs/api.md), each a few lines that call one service.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, available_timezones

import marshmallow as ma
from flask import Response, g, stream_with_context, url_for
from sqlalchemy import select
from webargs.flaskparser import abort

from .. import presence
from ..access import participant_or_404
from ..extensions import db
from ..models import AuditEvent, Membership, Message, Note, Report, Room, utcnow
from ..services import export, members, messages, moderation, notes, participation, rooms, search
from . import schemas as s
from .core import bp, caller, owned_room

F = TypeVar("F", bound=Callable[..., Any])
ROOMS, MESSAGES, PARTICIPATION, PEOPLE, MODERATION, SETTINGS, ACCOUNT = (
    "Rooms",
    "Messages",
    "Reactions, questions and private notes",
    "Participants",
    "Moderation",
    "Room settings",
    "Account",
)


def refusals(*statuses: int) -> Callable[[F], F]:
    """Document the problem documents an operation may answer with (401 and 429 always)."""

    def decorate(view: F) -> F:
        for status in sorted({401, 429, *statuses}, reverse=True):
            view = bp.alt_response(status, response=_RESPONSE_NAMES[status])(view)
        return view

    return decorate


_RESPONSE_NAMES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    422: "UNPROCESSABLE_ENTITY",
    429: "TOO_MANY_REQUESTS",
}


# -- shaping rows for the schemas ----------------------------------------------------------


def room_json(room: Room) -> dict[str, Any]:
    """A room as `RoomSchema` shows it."""
    return {
        "code": room.code,
        "url": url_for("chat.room", code=room.code, _external=True),
        "title": room.title,
        "status": room.status().value,
        "starts_at": room.starts_at.astimezone(UTC),
        "ends_at": room.ends_at.astimezone(UTC),
        "timezone": room.timezone,
        "locked": room.locked,
        "slow_mode_seconds": room.slow_mode_seconds,
        "premoderation": room.premoderation,
        "retention_days": room.retention_days,
        "search_language": room.search_language,
        "messages": messages.count(room.id),
        "created_at": room.created_at,
    }


def _author(membership: Membership) -> dict[str, Any]:
    return {"membership_id": membership.id, "alias": membership.alias, "host": membership.is_host}


def _host_seat_id(room_id: int) -> int | None:
    """The id of the host seat of a room (once per request and room)."""
    known: dict[int, int | None] = g.setdefault("api_host_seats", {})
    if room_id not in known:
        known[room_id] = db.session.scalar(
            select(Membership.id).where(Membership.room_id == room_id, Membership.is_host.is_(True))
        )
    return known[room_id]


def _reactions_json(message: Message) -> list[dict[str, Any]]:
    host = _host_seat_id(message.room_id)
    return [
        {
            "emoji": kind.value,
            "symbol": kind.emoji,
            "label": kind.label,
            "count": len(seats),
            "host_reacted": host in seats,
        }
        for kind, seats in message.reaction_counts()
    ]


def message_json(message: Message) -> dict[str, Any]:
    """A message as `MessageSchema` shows it (a removed one without its text), with its reactions and votes."""
    return {
        "id": message.id,
        "seq": message.seq,
        "status": message.status,
        "author": _author(message.author),
        "body": "" if message.removed else message.body,
        "created_at": message.created_at,
        "published_at": message.published_at,
        "edited_at": message.edited_at,
        "removed": message.removed,
        "removed_by": message.removed_by,
        "reactions": _reactions_json(message),
        "question": message.question,
        "answered": message.answered_at is not None,
        "answered_at": message.answered_at,
        "votes": len(message.votes),
    }


def _report_json(report: Report) -> dict[str, Any]:
    return {
        "id": report.id,
        "message": message_json(report.message),
        "reporter": _author(report.reporter),
        "reason": report.reason,
        "created_at": report.created_at,
        "resolved_at": report.resolved_at,
    }


def _local_text(moment: datetime, tz_name: str) -> str:
    """A time as the room form takes it: naive, in the room's time zone (times with an offset are converted).

    When the zone is unknown or the time cannot move into it, the time is passed on as
    given and the form's rules refuse it, with their message.
    """
    if moment.tzinfo is None:
        return moment.isoformat()
    if tz_name not in available_timezones() and tz_name != "UTC":
        return moment.isoformat()
    try:
        return moment.astimezone(ZoneInfo(tz_name)).replace(tzinfo=None).isoformat()
    except (OverflowError, ValueError):
        return moment.isoformat()


def _room_form(data: dict[str, Any], room: Room | None = None) -> dict[str, str]:
    """The room form's fields from an API body, on top of `room`'s current values when editing."""
    tz_name = str(data.get("timezone") or (room.timezone if room else "UTC"))
    form = {"timezone": tz_name}
    if room is not None:
        form["title"] = room.title
        for name in ("starts_at", "ends_at"):
            form[name] = _local_text(getattr(room, name), tz_name)  # the same instants, in the (new) zone
    if "title" in data:
        form["title"] = data["title"]
    for name in ("starts_at", "ends_at"):
        if name in data:
            form[name] = _local_text(data[name], tz_name)
    form["password"] = data.get("password") or ""
    form["search_language"] = str(data.get("search_language") or (room.search_language if room else ""))
    return form


# -- the account --------------------------------------------------------------------------------


@bp.route("/me", methods=["GET"], tags=[ACCOUNT])
@bp.response(200, s.FacilitatorSchema)
@refusals()
def me() -> dict[str, Any]:
    """Who this token belongs to

    The account the request acts for: a quick check that a token works.
    """
    account = caller()
    return {"id": account.id, "name": account.name, "email": account.email, "admin": account.is_admin}


# -- rooms -------------------------------------------------------------------------------------


@bp.route("/rooms", methods=["GET"], tags=[ROOMS])
@bp.arguments(s.RoomQuerySchema, location="query", as_kwargs=True, unknown=ma.RAISE)
@bp.response(200, s.RoomListSchema)
@refusals(422)
def list_rooms(status: str | None = None) -> dict[str, Any]:
    """List your rooms

    Newest start first, with their state: scheduled, open or ended.
    """
    now = utcnow()
    owned = caller().rooms  # ordered by start, newest first
    return {"rooms": [room_json(room) for room in owned if status is None or room.status(now).value == status]}


@bp.route("/rooms", methods=["POST"], tags=[ROOMS])
@bp.arguments(s.RoomCreateSchema)
@bp.response(201, s.RoomSchema, headers={"Location": {"description": "The new room", "schema": {"type": "string"}}})
@refusals(400, 409, 422)
def create_room(data: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Create a room

    The same rules as the room form: a title of 1 to 120 characters that none of your
    rooms has (409 if one does), an end after the start, a known time zone, a room
    password of 4 to 128 characters, and a search language from the list. Rooms made
    count against your rooms per hour, the room form's and the API's together (429).
    ---
    Takes a `RoomCreateSchema` body; returns the room (201) with its `Location`.
    Errors: 400 not JSON, 409 title taken, 422 a field wrong, 429 too many rooms this hour.
    """
    room = rooms.create(caller(), rooms.parse_form(_room_form(data), editing=False))
    return room_json(room), 201, {"Location": url_for("api.get_room", code=room.code)}


@bp.route("/rooms/<code>", methods=["GET"], tags=[ROOMS])
@bp.response(200, s.RoomSchema)
@refusals(404)
def get_room(code: str) -> dict[str, Any]:
    """Read a room

    Another facilitator's room answers 404, as a room that does not exist.
    """
    return room_json(owned_room(code))


@bp.route("/rooms/<code>", methods=["PATCH"], tags=[ROOMS])
@bp.arguments(s.RoomUpdateSchema)
@bp.response(200, s.RoomSchema)
@refusals(400, 404, 409, 422)
def update_room(data: dict[str, Any], code: str) -> dict[str, Any]:
    """Change a room

    Send only what changes: title, start, end, time zone, password, search language.
    A new time zone alone keeps the start and end instants. The room form's rules apply.
    A new search language applies to messages written from now on.
    """
    room = owned_room(code)
    rooms.update(room, rooms.parse_form(_room_form(data, room), editing=True))
    return room_json(room)


@bp.route("/rooms/<code>", methods=["DELETE"], tags=[ROOMS])
@bp.response(204)
@refusals(404)
def delete_room(code: str) -> Response:
    """Delete a room

    With all its participants, messages, reports and audit log, at once: there is no undo.
    ---
    The page asks to type the title; for the API the DELETE request is that confirmation.
    """
    room = owned_room(code)
    rooms.delete(room, room.title)
    return Response(status=204)


@bp.route("/rooms/<code>/transcript", methods=["GET"], tags=[ROOMS])
@bp.arguments(s.TranscriptQuerySchema, location="query", as_kwargs=True, unknown=ma.RAISE)
@bp.doc(
    responses={
        "200": {
            "description": "The transcript, streamed: JSON, CSV, Markdown or a printable HTML page",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
                "text/markdown": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
            },
        }
    }
)
@refusals(404, 422)
def transcript(code: str, format: str) -> Response:
    """Download the transcript

    Every visible message in order, as the room's owner page offers it: json (the
    default), csv, md or html. Removed messages show as removed, without their text.
    """
    room = owned_room(code)
    body = stream_with_context(export.transcript(room, format))
    response = Response(body, content_type=export.TRANSCRIPT_FORMATS[format])
    response.headers["Content-Disposition"] = export.content_disposition(*export.download_name(room, format))
    return response


@bp.route("/rooms/<code>/audit", methods=["GET"], tags=[ROOMS])
@bp.response(200, s.AuditListSchema)
@refusals(404)
def audit(code: str) -> dict[str, Any]:
    """Read the audit log

    Every moderation action and settings change, newest first.
    """
    events: Iterable[AuditEvent] = moderation.audit_log(owned_room(code))
    return {
        "events": [
            {"actor": e.actor, "action": e.action, "detail": e.detail, "created_at": e.created_at} for e in events
        ]
    }


# -- messages ----------------------------------------------------------------------------------


@bp.route("/rooms/<code>/messages", methods=["GET"], tags=[MESSAGES])
@bp.arguments(s.MessageQuerySchema, location="query", as_kwargs=True, unknown=ma.RAISE)
@bp.response(200, s.MessagePageSchema)
@refusals(404, 422)
def list_messages(code: str, limit: int, before: int | None = None, after: int | None = None) -> dict[str, Any]:
    """Read messages, a page at a time

    Without a cursor: the newest page. `before=N`: the page before message N (send
    the previous answer's `before` to go back through the history). `after=N`: the
    messages after N, oldest first (send the previous answer's `after` to poll for
    new ones). The cursors are the messages' `seq`, as in the room's own pages.
    ---
    messages.before / messages.after are the page's and the stream's own queries.
    """
    room = owned_room(code)
    if before is not None and after is not None:
        abort(422, message="Send before or after, not both.", errors={"after": "Send before or after, not both"})
    page = messages.after(room.id, after, limit) if after is not None else messages.before(room.id, before, limit)
    first = page[0].seq if page else None
    has_older = bool(first and first > 1)
    return {
        "messages": [message_json(m) for m in page],
        "has_older": has_older,
        "before": first if has_older else None,
        "after": page[-1].seq if page else (after if after is not None else min(room.last_seq, (before or 1) - 1)),
    }


@bp.route("/rooms/<code>/messages", methods=["POST"], tags=[MESSAGES])
@bp.arguments(s.PostSchema)
@bp.response(201, s.MessageSchema)
@bp.alt_response(200, schema=s.MessageSchema, description="Sent before with this client_token", success=True)
@refusals(403, 404, 409, 422)
def post_message(data: dict[str, Any], code: str) -> tuple[dict[str, Any], int]:
    """Post as the host

    The message appears in the room at once, under your name as host. The room must be
    open (403 otherwise); the host is not held by slow mode, a lock or pre-moderation. A
    `client_token` sent before with a different body is refused (409).
    """
    room = owned_room(code)
    token = (data.get("client_token") or secrets.token_hex(16)).lower()  # hex: AB… and ab… are one token
    message, created = messages.post(room.host_seat(), data["body"], token)
    return message_json(message), 201 if created else 200


def _visible_message(room: Room, seq: int) -> Message:
    message = messages.find(room, seq)
    if message is None:
        abort(404, message="There is no message with that number in this room.")
    return message


@bp.route("/rooms/<code>/messages/<id:seq>/remove", methods=["POST"], tags=[MODERATION])
@bp.response(200, s.MessageSchema)
@refusals(404, 409)
def remove_message(code: str, seq: int) -> dict[str, Any]:
    """Remove a message

    For everyone: it shows as removed, in the room, replays and transcripts alike.
    Its open reports are resolved. 409 if it was already removed.
    """
    room = owned_room(code)
    return message_json(moderation.remove_message(room, _visible_message(room, seq)))


@bp.route("/rooms/<code>/queue", methods=["GET"], tags=[MODERATION])
@bp.response(200, s.MessageListSchema)
@refusals(404)
def queue(code: str) -> dict[str, Any]:
    """Read the approval queue

    Participants' messages held for approval (pre-moderation), oldest first.
    """
    return {"messages": [message_json(m) for m in owned_room(code).pending_messages()]}


@bp.route("/rooms/<code>/queue/<id:message_id>/approve", methods=["POST"], tags=[MODERATION])
@bp.response(200, s.MessageSchema)
@refusals(404, 409)
def approve(code: str, message_id: int) -> dict[str, Any]:
    """Approve a held message

    It appears now, after everything already visible. 409 if already decided.
    """
    return message_json(moderation.approve(owned_room(code), message_id))


@bp.route("/rooms/<code>/queue/<id:message_id>/reject", methods=["POST"], tags=[MODERATION])
@bp.response(200, s.MessageSchema)
@refusals(404, 409)
def reject(code: str, message_id: int) -> dict[str, Any]:
    """Decline a held message

    It is never shown. 409 if already decided.
    """
    return message_json(moderation.reject(owned_room(code), message_id))


@bp.route("/rooms/<code>/reports", methods=["GET"], tags=[MODERATION])
@bp.response(200, s.ReportListSchema)
@refusals(404)
def reports(code: str) -> dict[str, Any]:
    """Read open reports

    Participants' reports the host has not dealt with yet, oldest first.
    """
    return {"reports": [_report_json(r) for r in owned_room(code).open_reports()]}


@bp.route("/rooms/<code>/reports/<id:report_id>/dismiss", methods=["POST"], tags=[MODERATION])
@bp.response(200, s.ReportSchema)
@refusals(404)
def dismiss_report(code: str, report_id: int) -> dict[str, Any]:
    """Dismiss a report

    The message stays. Dismissing twice changes nothing.
    """
    return _report_json(moderation.dismiss_report(owned_room(code), report_id))


# -- reactions, questions, search and private notes ---------------------------------------------


def _thread_json(participant: Membership, thread: Iterable[Note]) -> dict[str, Any]:
    return {
        "participant": {"id": participant.id, "alias": participant.alias, "active": participant.active},
        "notes": [_note_json(note) for note in thread],
    }


def _note_json(note: Note) -> dict[str, Any]:
    return {"id": note.id, "from_host": note.from_host, "body": note.body, "created_at": note.created_at}


@bp.route("/rooms/<code>/messages/<id:seq>/react", methods=["POST"], tags=[PARTICIPATION])
@bp.arguments(s.ReactSchema)
@bp.response(200, s.MessageSchema)
@refusals(403, 404, 409, 422)
def react(data: dict[str, Any], code: str, seq: int) -> dict[str, Any]:
    """React as the host

    Toggles the host's reaction on a message: sent once it is on, sent again it is off
    (the answer's `host_reacted` says which). `emoji` is one of the room's reactions:
    thumbs_up, heart, laugh, party, eyes, question (422 otherwise). The room must be
    open (403), the message not removed (409). Counts as a post for the rate limits.
    ---
    Takes {"emoji"}; returns the message with its reactions. participation.react with
    the host seat (Room.host_seat), as the room page's reaction buttons do for the host.
    """
    room = owned_room(code)
    message = _visible_message(room, seq)
    participation.react(room.host_seat(), message, data["emoji"])
    return message_json(message)


@bp.route("/rooms/<code>/questions", methods=["GET"], tags=[PARTICIPATION])
@bp.response(200, s.QuestionListSchema)
@refusals(404)
def list_questions(code: str) -> dict[str, Any]:
    """Read the questions

    Every question of the room (not removed): unanswered first, then by votes (most
    first), newest first among equals, as the room's questions page lists them.
    ---
    Returns {"questions": [Message]}; participation.questions.
    """
    return {"questions": [message_json(m) for m in participation.questions(owned_room(code))]}


@bp.route("/rooms/<code>/messages/<id:seq>/question", methods=["POST"], tags=[PARTICIPATION])
@bp.arguments(s.QuestionMarkSchema)
@bp.response(200, s.MessageSchema)
@refusals(404, 409, 422)
def mark_question(data: dict[str, Any], code: str, seq: int) -> dict[str, Any]:
    """Mark a message as a question

    `{"question": true}` (the default) makes it a question participants may upvote;
    `false` makes it a plain message again (its answered mark goes too). Marking what
    is already so changes nothing. 409 if the message was removed.
    ---
    Takes {"question"}; returns the message. participation.set_question.
    """
    room = owned_room(code)
    return message_json(participation.set_question(room, _visible_message(room, seq), bool(data["question"])))


@bp.route("/rooms/<code>/messages/<id:seq>/answered", methods=["POST"], tags=[PARTICIPATION])
@bp.arguments(s.AnsweredMarkSchema)
@bp.response(200, s.MessageSchema)
@refusals(404, 409, 422)
def mark_answered(data: dict[str, Any], code: str, seq: int) -> dict[str, Any]:
    """Mark a question answered

    `{"answered": true}` (the default) marks the question answered for everyone;
    `false` makes it unanswered again. 409 if the message is not a question, or was removed.
    ---
    Takes {"answered"}; returns the message. participation.set_answered.
    """
    room = owned_room(code)
    return message_json(participation.set_answered(room, _visible_message(room, seq), bool(data["answered"])))


@bp.route("/rooms/<code>/search", methods=["GET"], tags=[PARTICIPATION])
@bp.arguments(s.SearchQuerySchema, location="query", as_kwargs=True, unknown=ma.RAISE)
@bp.response(200, s.MessageListSchema)
@refusals(404, 422)
def search_messages(code: str, q: str, limit: int) -> dict[str, Any]:
    """Search the messages

    The room's visible messages containing every word of `q`, newest first: never a
    removed, held or declined one. Words match in the room's search language. 422 when
    `q` has no word to look for, or is over 200 characters.
    ---
    Returns {"messages": [Message]}; services.search.search, as the room's search page.
    """
    return {"messages": [message_json(m) for m in search.search(owned_room(code), q, limit=limit)]}


@bp.route("/rooms/<code>/private", methods=["GET"], tags=[PARTICIPATION])
@bp.response(200, s.ThreadListSchema)
@refusals(404)
def private_threads(code: str) -> dict[str, Any]:
    """Read the private threads

    Every participant's private thread with the host, the most recently active first,
    each with its latest 50 notes, oldest first. Nobody but the host sees them.
    ---
    Returns {"threads": [Thread]}; notes.threads.
    """
    return {"threads": [_thread_json(p, thread) for p, thread in notes.threads(owned_room(code))]}


@bp.route("/rooms/<code>/private/<id:member_id>", methods=["GET"], tags=[PARTICIPATION])
@bp.response(200, s.ThreadSchema)
@refusals(404)
def private_thread(code: str, member_id: int) -> dict[str, Any]:
    """Read one private thread

    The private thread with one participant (their membership id, as listed by
    participants), latest 50 notes, oldest first; empty if none was written yet.
    ---
    Returns a Thread; notes.thread. 404: not a participant of this room (the host seat is not one).
    """
    room = owned_room(code)
    participant = participant_or_404(room, member_id)
    return _thread_json(participant, notes.thread(participant))


@bp.route("/rooms/<code>/private/<id:member_id>", methods=["POST"], tags=[PARTICIPATION])
@bp.arguments(s.ReplySchema)
@bp.response(201, s.NoteSchema)
@refusals(403, 404, 422)
def reply_privately(data: dict[str, Any], code: str, member_id: int) -> tuple[dict[str, Any], int]:
    """Answer a participant privately

    The note reaches that participant's open pages only (and the host's). The room
    must be open (403); `note` is 1 to 1000 characters (422).
    ---
    Takes {"note"}; returns the note (201). notes.reply, as the host's thread page.
    """
    room = owned_room(code)
    return _note_json(notes.reply(room, participant_or_404(room, member_id), data["note"])), 201


# -- participants --------------------------------------------------------------------------------


@bp.route("/rooms/<code>/participants", methods=["GET"], tags=[PEOPLE])
@bp.response(200, s.ParticipantListSchema)
@refusals(404)
def participants(code: str) -> dict[str, Any]:
    """List participants

    Everyone who joined, with the host's own seat first; `present` is whether they
    have the room open right now.
    """
    room = owned_room(code)
    here = {m.id for m in presence.present_members(room)}
    seats = sorted(room.memberships, key=lambda m: (not m.is_host, m.joined_at, m.id))
    return {
        "participants": [
            {
                "id": m.id,
                "alias": m.alias,
                "host": m.is_host,
                "active": m.active,
                "banned": m.banned,
                "present": m.id in here,
                "joined_at": m.joined_at,
                "left_at": m.left_at,
            }
            for m in seats
        ]
    }


@bp.route("/rooms/<code>/participants/<id:member_id>/remove", methods=["POST"], tags=[PEOPLE])
@bp.response(204)
@refusals(404)
def remove_participant(code: str, member_id: int) -> Response:
    """Remove a participant

    Their open pages leave the room at once. They may join again.
    """
    room = owned_room(code)
    members.remove(room, participant_or_404(room, member_id))
    return Response(status=204)


@bp.route("/rooms/<code>/participants/<id:member_id>/ban", methods=["POST"], tags=[PEOPLE])
@bp.response(204)
@refusals(404)
def ban_participant(code: str, member_id: int) -> Response:
    """Ban a participant

    Removed, and their browser cannot join this room again.
    """
    room = owned_room(code)
    members.ban(room, participant_or_404(room, member_id))
    return Response(status=204)


# -- settings of a running room --------------------------------------------------------------------


@bp.route("/rooms/<code>/lock", methods=["POST"], tags=[SETTINGS])
@bp.response(200, s.RoomSchema)
@refusals(404)
def lock(code: str) -> dict[str, Any]:
    """Lock the room

    Participants can read but not post.
    """
    return room_json(rooms.set_locked(owned_room(code), True))


@bp.route("/rooms/<code>/unlock", methods=["POST"], tags=[SETTINGS])
@bp.response(200, s.RoomSchema)
@refusals(404)
def unlock(code: str) -> dict[str, Any]:
    """Unlock the room"""
    return room_json(rooms.set_locked(owned_room(code), False))


@bp.route("/rooms/<code>/slow-mode", methods=["POST"], tags=[SETTINGS])
@bp.arguments(s.SecondsSchema)
@bp.response(200, s.RoomSchema)
@refusals(404, 422)
def slow_mode(data: dict[str, Any], code: str) -> dict[str, Any]:
    """Set slow mode

    One message per this many seconds per participant; 0 turns it off.
    """
    return room_json(rooms.set_slow_mode(owned_room(code), str(data["seconds"])))


@bp.route("/rooms/<code>/premoderation", methods=["POST"], tags=[SETTINGS])
@bp.arguments(s.EnabledSchema)
@bp.response(200, s.RoomSchema)
@refusals(404, 422)
def premoderation(data: dict[str, Any], code: str) -> dict[str, Any]:
    """Turn pre-moderation on or off

    While on, participants' messages wait in the queue for the host's approval.
    """
    return room_json(rooms.set_premoderation(owned_room(code), bool(data["enabled"])))


@bp.route("/rooms/<code>/extend", methods=["POST"], tags=[SETTINGS])
@bp.arguments(s.MinutesSchema)
@bp.response(200, s.RoomSchema)
@refusals(404, 422)
def extend(data: dict[str, Any], code: str) -> dict[str, Any]:
    """Extend the room

    Move the end later by 1 to 1440 minutes (from now, if it has already ended).
    """
    return room_json(rooms.extend(owned_room(code), str(data["minutes"])))


@bp.route("/rooms/<code>/end", methods=["POST"], tags=[SETTINGS])
@bp.response(200, s.RoomSchema)
@refusals(404, 409)
def end(code: str) -> dict[str, Any]:
    """End the room now

    Open pages close, nobody can join or post. 409 if it has already ended.
    """
    return room_json(rooms.end_now(owned_room(code)))
