"""A private word with the host: a thread between one participant and the host, seen by nobody else.

Each thread belongs to the participant's seat (``Note.membership_id``), whichever way a note goes.
A new note is published twice after its commit: the participant's thread to that seat's streams
only (``events.private_changed``: an event with the seat as its ``target``, which every other
stream drops), and every thread to the host's streams (a ``host`` event). On each (re)connect a
stream first sends the current threads it may see, so a reconnecting tab converges
(``panels``). Notes are in a transcript only when the host asks for them (``export``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from .. import events
from ..extensions import db
from ..models import Membership, Note, Room, RoomStatus
from ..text import clean_body
from . import Invalid
from ._core import publish, refuses_cleanly

NOTE_MAX = 1000
THREAD_SHOWN = 50  # the latest notes of a thread a page shows


def _check(body: str) -> str:
    text = clean_body(body)
    if not text:
        raise Invalid({"note": "Write something before sending"})
    if len(text) > NOTE_MAX:
        raise Invalid({"note": f"Shorten your message to {NOTE_MAX} characters or fewer (it has {len(text)})"})
    return text


@refuses_cleanly
def send(membership: Membership, body: str) -> Note:
    """A participant's private word to the host.

    :raise Invalid 403: the host (who answers from the thread), a closed seat, or a room not open.
    :raise Invalid 422: empty or too long.
    """
    if membership.is_host:
        raise Invalid({"note": "Answer a participant from their thread"}, 403)
    if not membership.active or membership.room.status() is not RoomStatus.OPEN:
        raise Invalid({"note": "This room is not open, so messages cannot be sent"}, 403)
    return _add(membership.room, membership, _check(body), from_host=False)


@refuses_cleanly
def reply(room: Room, participant: Membership, body: str) -> Note:
    """The host answers ``participant`` privately.

    :raise Invalid 404: not a participant of ``room``. :raise Invalid 403: the room is not open.
    :raise Invalid 422: empty or too long.
    """
    if participant.room_id != room.id or participant.is_host:
        raise Invalid({"note": "That person is not a participant of this room"}, 404)
    if room.status() is not RoomStatus.OPEN:
        raise Invalid({"note": "This room is not open, so messages cannot be sent"}, 403)
    return _add(room, participant, _check(body), from_host=True)


def _add(room: Room, participant: Membership, text: str, from_host: bool) -> Note:
    note = Note(room_id=room.id, membership_id=participant.id, from_host=from_host, body=text)
    db.session.add(note)
    db.session.flush()
    to_them = "The host answered you privately." if from_host else ""
    to_host = "" if from_host else f"{participant.alias} sent you a private message."
    private = events.private_changed(room, participant, thread(participant), to_them)
    host = events.host_notes_changed(room, threads(room), to_host)
    db.session.commit()
    publish(room, private)
    publish(room, host)
    return note


def thread(participant: Membership) -> list[Note]:
    """The latest ``THREAD_SHOWN`` notes between ``participant`` and the host, oldest first."""
    rows = db.session.scalars(
        select(Note).where(Note.membership_id == participant.id).order_by(Note.id.desc()).limit(THREAD_SHOWN)
    )
    return list(reversed(list(rows)))


def threads(room: Room) -> list[tuple[Membership, list[Note]]]:
    """Every thread of the room, the most recently active first, each with its latest notes."""
    rows: Sequence[Note] = list(db.session.scalars(select(Note).where(Note.room_id == room.id).order_by(Note.id)))
    by: dict[int, list[Note]] = {}
    for note in rows:
        by.setdefault(note.membership_id, []).append(note)
    ordered = sorted(by.values(), key=lambda notes: notes[-1].id, reverse=True)
    return [(notes[0].participant, notes[-THREAD_SHOWN:]) for notes in ordered]


def all_notes(room: Room) -> list[Note]:
    """Every note of the room in the order written (for a transcript the host chose to include them in)."""
    return list(db.session.scalars(select(Note).where(Note.room_id == room.id).order_by(Note.id)))
