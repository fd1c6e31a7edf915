"""Taking part beyond posting: reactions, questions and their votes, and where a seat stopped reading.

A reaction, a vote, asking or answering a question changes what a message shows, so each is a
change in the room's lossless stream exactly like an edit: it takes the room's next change number
``rev`` under the room's row lock (``_core.next_rev``), sets it on the message, and publishes the
message's partial again, out of band (``events.message_changed``). A reconnecting tab replays it
with the other changes (``messages.changes_after``); reactions and votes are part of the partial.

Per-viewer differences ("including yours", "you voted") are not in those bytes: the partial lists
the seats (``data-by``) and the page marks the viewer's own (``static/js/participation.js``), or the
server does on the page it renders for one viewer (``seat`` in the template context).

The host's questions panel (questions by votes) is re-sent to the host's streams on each change.
"""

from __future__ import annotations

from sqlalchemy import func, select, update

from .. import events
from ..extensions import db
from ..models import Membership, Message, MessageStatus, Reaction, Reactions, Room, RoomStatus, Vote, utcnow
from . import Invalid, notes
from ._core import audit, host_name, next_rev, publish, refuses_cleanly

PUBLISHED = MessageStatus.PUBLISHED.value
QUESTIONS_SHOWN = 50  # in the host's live panel; the questions page shows them all


def _check_open(membership: Membership, message: Message, field: str) -> Room:
    room = membership.room
    if not membership.active:
        raise Invalid({field: "You are no longer in this room: join again"}, 403)
    if room.status() is not RoomStatus.OPEN:
        raise Invalid({field: "This room is not open"}, 403)
    if message.room_id != room.id or message.status != PUBLISHED:
        raise Invalid({field: "There is no such message in this room"}, 404)
    if message.removed:
        raise Invalid({field: "This message was removed"}, 409)
    return room


@refuses_cleanly
def react(membership: Membership, message: Message, emoji: str) -> bool:
    """Toggle ``membership``'s reaction ``emoji`` (a ``Reactions`` value) on ``message``; True when it is now on.

    :raise Invalid 422: not one of the reactions. :raise Invalid 403: the seat is closed or the room not open.
    :raise Invalid 404: not a visible message of the room. :raise Invalid 409: the message was removed.
    """
    if emoji not in {r.value for r in Reactions}:
        raise Invalid({"emoji": "Choose one of the reactions offered"})
    room = _check_open(membership, message, "emoji")
    rev, seq = next_rev(room.id)  # the row lock first: toggles of one message are taken one at a time
    db.session.refresh(message)
    mine = next((r for r in message.reactions if r.membership_id == membership.id and r.emoji == emoji), None)
    if mine is None:
        message.reactions.append(Reaction(membership_id=membership.id, emoji=emoji))
    else:
        message.reactions.remove(mine)
    message.rev = rev
    db.session.flush()
    event = events.message_changed(room, message, seq, rev)
    db.session.commit()
    publish(room, event)
    return mine is None


@refuses_cleanly
def vote(membership: Membership, message: Message) -> bool:
    """Toggle ``membership``'s upvote of the question ``message``; True when it now counts.

    :raise Invalid 409: not a question, or already answered. :raise Invalid 403: one's own question, the
    host (who answers rather than votes), a closed seat or a room not open. :raise Invalid 404/409: as ``react``.
    """
    room = _check_open(membership, message, "vote")
    if not message.question:
        raise Invalid({"vote": "Only questions can be upvoted"}, 409)
    if message.membership_id == membership.id:
        raise Invalid({"vote": "You cannot upvote your own question"}, 403)
    if membership.is_host:
        raise Invalid({"vote": "The host answers questions rather than voting on them"}, 403)
    if message.answered_at is not None:
        raise Invalid({"vote": "This question was answered already"}, 409)
    rev, seq = next_rev(room.id)
    db.session.refresh(message)
    mine = next((v for v in message.votes if v.membership_id == membership.id), None)
    if mine is None:
        message.votes.append(Vote(membership_id=membership.id))
    else:
        message.votes.remove(mine)
    message.rev = rev
    db.session.flush()
    event = events.message_changed(room, message, seq, rev)
    panel = events.host_questions_changed(room, top_questions(room))
    db.session.commit()
    publish(room, event)
    publish(room, panel)
    return mine is None


@refuses_cleanly
def set_question(room: Room, message: Message, question: bool) -> Message:
    """The host marks ``message`` as a question (others may then upvote it), or not.

    :raise Invalid 404: not a visible message of ``room``. :raise Invalid 409: removed.
    """
    _check_host_message(room, message)
    if message.question == question:
        return message
    rev, seq = next_rev(room.id)
    db.session.refresh(message)
    message.question, message.rev = question, rev
    if not question:
        message.answered_at = None
    audit(room, host_name(room), "question marked" if question else "question unmarked", f"message {message.seq}")
    return _commit_question_change(room, message, seq, rev)


@refuses_cleanly
def set_answered(room: Room, message: Message, answered: bool) -> Message:
    """The host marks the question ``message`` answered (everyone sees it marked), or not answered after all.

    :raise Invalid 409: not a question, or removed. :raise Invalid 404: not a visible message of ``room``.
    """
    _check_host_message(room, message)
    if not message.question:
        raise Invalid({"question": "Only a question can be marked answered"}, 409)
    if (message.answered_at is not None) == answered:
        return message
    rev, seq = next_rev(room.id)
    db.session.refresh(message)
    message.answered_at, message.rev = (utcnow() if answered else None), rev
    return _commit_question_change(room, message, seq, rev)


def _commit_question_change(room: Room, message: Message, seq: int, rev: int) -> Message:
    """Commit a change to a question, then publish it: the message for everyone, the host's questions panel."""
    db.session.flush()
    event = events.message_changed(room, message, seq, rev)
    panel = events.host_questions_changed(room, top_questions(room))
    db.session.commit()
    publish(room, event)
    publish(room, panel)
    return message


def _check_host_message(room: Room, message: Message) -> None:
    if message.room_id != room.id or message.status != PUBLISHED:
        raise Invalid({"question": "There is no such message in this room"}, 404)
    if message.removed:
        raise Invalid({"question": "This message was removed"}, 409)


def questions(room: Room, limit: int | None = None) -> list[Message]:
    """The room's questions, unanswered first, then by votes (most first), newest first among equals."""
    votes = select(func.count(Vote.id)).where(Vote.message_id == Message.id).correlate(Message).scalar_subquery()
    query = (
        select(Message)
        .where(Message.room_id == room.id, Message.question.is_(True), Message.status == PUBLISHED)
        .where(Message.removed_at.is_(None))
        .order_by(Message.answered_at.is_not(None), votes.desc(), Message.seq.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def top_questions(room: Room) -> list[Message]:
    """The questions the host's live panel shows (``QUESTIONS_SHOWN`` of them, in ``questions`` order)."""
    return questions(room, QUESTIONS_SHOWN)


def host_questions(room: Room) -> str:
    """The host's questions panel as it is now (out of band, first on a host's stream)."""
    return events.host_questions_html(room, top_questions(room))


def seen(membership: Membership, seq: int) -> int:
    """Remember that ``membership`` has seen the room up to ``seq`` (never backwards); returns what it had before.

    One conditional UPDATE, no lock on the room: "new since you left" reads it (``since_left``).
    """
    before = membership.last_seen_seq
    seq = min(seq, membership.room.last_seq)
    if seq > before:
        db.session.execute(
            update(Membership)
            .where(Membership.id == membership.id, Membership.last_seen_seq < seq)
            .values(last_seen_seq=seq)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    return before


def since_left(room: Room, membership: Membership) -> tuple[int, int]:
    """Where "new since you left" starts for ``membership``: (first unseen seq, how many), or (0, 0).

    A seat that has never seen anything (just joined) has nothing new: everything is.
    """
    last = membership.last_seen_seq
    if last <= 0 or last >= room.last_seq:
        return 0, 0
    count = db.session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.room_id == room.id, Message.seq > last, Message.membership_id != membership.id)
    )
    if not count:
        return 0, 0
    first = db.session.scalar(
        select(func.min(Message.seq)).where(
            Message.room_id == room.id, Message.seq > last, Message.membership_id != membership.id
        )
    )
    return int(first or 0), int(count)


def panels(room: Room, membership_id: int, is_host: bool) -> str:
    """What a stream sends first on every (re)connect, beyond the room's state: the host's private threads
    and questions panels, or this seat's private thread (so a reconnecting tab converges)."""
    if is_host:
        return events.host_notes_html(room, notes.threads(room)) + host_questions(room)
    participant = db.session.get(Membership, membership_id)
    if participant is None:
        return ""
    return events.private_html(room, participant, notes.thread(participant))


def aside(room: Room, membership: Membership) -> dict[str, object]:
    """What the room page's aside shows this seat: the host's questions and private threads, or the seat's own
    private thread (``chat/_room_extras.html``)."""
    if membership.is_host:
        return {"host_questions": top_questions(room), "host_threads": notes.threads(room), "private_notes": []}
    return {"host_questions": [], "host_threads": [], "private_notes": notes.thread(membership)}
