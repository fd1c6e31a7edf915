"""Messages: posting (idempotent, in room order), editing and deleting one's own, reading by cursor.

A message gets its ``seq`` when it becomes visible: at posting, or at approval
under pre-moderation (see ``moderation.approve``). Edits and removals
take a change number ``rev`` from the room under the same row lock, so a stream
can replay them in order after a reconnect (see ``chatroom/stream.py``).
"""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import events
from ..extensions import db
from ..models import EDIT_WINDOW, Membership, Message, MessageStatus, Room, RoomStatus, utcnow
from ..text import clean_body
from . import Invalid
from ._core import next_rev, next_seq, publish, publish_host_panels, refuses_cleanly

BODY_MAX = 2000
PUBLISHED = MessageStatus.PUBLISHED.value


def _check_body(body: str) -> str:
    text = clean_body(body)
    if not text:
        raise Invalid({"body": "Write a message before sending"})
    if len(text) > BODY_MAX:
        raise Invalid({"body": f"Shorten your message to {BODY_MAX} characters or fewer (it has {len(text)})"})
    return text


def _check_can_post(membership: Membership, room: Room) -> None:
    if not membership.active:
        raise Invalid({"body": "You are no longer in this room: join again to post"}, 403)
    if room.status() is not RoomStatus.OPEN:
        raise Invalid({"body": "This room is not open, so messages cannot be sent"}, 403)
    if membership.is_host:
        return
    if room.locked:
        raise Invalid({"body": "The host has locked the room: you can read but not post"}, 403)
    if room.slow_mode_seconds:
        last = db.session.scalar(
            select(Message.created_at)
            .where(Message.membership_id == membership.id)
            .order_by(Message.created_at.desc())
            .limit(1)
        )
        if last is not None:
            wait = room.slow_mode_seconds - (utcnow() - last).total_seconds()
            if wait > 0:
                seconds = math.ceil(wait)
                raise Invalid({"body": f"Slow mode is on: you can post again in {seconds} s"}, 429, seconds)


@refuses_cleanly
def post(membership: Membership, body: str, token: str) -> tuple[Message, bool]:
    """Store a message and publish it; returns (message, created).

    The room row is locked while the next ``seq`` is taken, so commit order is
    ``seq`` order. A resubmitted form (same ``token``) returns the stored
    message with ``created`` False and publishes nothing. Under pre-moderation a
    participant's message waits in the host's queue with no ``seq``.

    :raise Invalid 422: empty or too long. :raise Invalid 403: not open, locked, or the seat was closed.
    :raise Invalid 429: slow mode. :raise Invalid 400: the form carries no valid token.
    """
    text = _check_body(body)
    if not (len(token) == 32 and all(c in "0123456789abcdef" for c in token)):
        raise Invalid({"body": "This form has expired: reload the page and send again"}, 400)
    room = membership.room
    existing = _message_by_token(room.id, token)
    if existing is not None:
        return existing, False
    _check_can_post(membership, room)

    if room.premoderation and not membership.is_host:
        return _hold(membership, room, text, token)

    seq, rev = next_seq(room.id)
    # Now that we hold the room's row lock, a twin submission has either committed or waits for us.
    existing = _message_by_token(room.id, token)
    if existing is not None:
        db.session.rollback()
        return existing, False
    now = utcnow()
    message = Message(
        room_id=room.id,
        seq=seq,
        membership_id=membership.id,  # set now: the partial is rendered before the flush (data-author)
        author=membership,
        body=text,
        client_token=token,
        created_at=now,
        published_at=now,
    )
    db.session.add(message)
    # Rendered while we hold the lock, so the publish follows the commit at once: the
    # longer that gap, the more often two posts reach the streams out of order.
    event = events.message_posted(room, message, rev)
    db.session.commit()
    publish(room, event)
    return message, True


def _hold(membership: Membership, room: Room, text: str, token: str) -> tuple[Message, bool]:
    """Keep a participant's message in the host's queue (pre-moderation); it has no ``seq`` until approved."""
    message = Message(
        room_id=room.id,
        seq=None,
        membership_id=membership.id,
        body=text,
        client_token=token,
        status=MessageStatus.PENDING.value,
    )
    db.session.add(message)
    try:
        db.session.commit()
    except IntegrityError:  # the same form, submitted twice at once: the other one won
        db.session.rollback()
        existing = _message_by_token(room.id, token)
        assert existing is not None
        return existing, False
    publish_host_panels(room)
    return message, True


HELD_NOTE = timedelta(hours=1)  # how long the author's page still says a held message was declined


def held_for(membership: Membership) -> list[Message]:
    """The author's own messages held for the host (pre-moderation), and those declined in the last hour,
    oldest first: shown to the author alone, beside their composer."""
    since = utcnow() - HELD_NOTE
    return list(
        db.session.scalars(
            select(Message)
            .where(
                Message.membership_id == membership.id,
                (Message.status == MessageStatus.PENDING.value)
                | ((Message.status == MessageStatus.REJECTED.value) & (Message.created_at >= since)),
            )
            .order_by(Message.created_at, Message.id)
        )
    )


def _message_by_token(room_id: int, token: str) -> Message | None:
    return db.session.scalar(select(Message).where(Message.room_id == room_id, Message.client_token == token))


def find(room: Room, seq: int) -> Message | None:
    """The visible message at ``seq`` in ``room`` (scoped: another room's messages are unreachable)."""
    return db.session.scalar(
        select(Message).where(Message.room_id == room.id, Message.seq == seq, Message.status == PUBLISHED)
    )


def _check_own_and_recent(membership: Membership, message: Message) -> None:
    if message.membership_id != membership.id:
        raise Invalid({"body": "You can only change your own messages"}, 403)
    if message.removed:
        raise Invalid({"body": "This message was removed"}, 409)
    if not message.editable_by(membership):
        minutes = EDIT_WINDOW.seconds // 60
        problem = f"Messages can be changed for {minutes} minutes after posting; this one can no longer be"
        raise Invalid({"body": problem}, 403)
    if not membership.active or membership.room.status() is not RoomStatus.OPEN:
        raise Invalid({"body": "This room is not open, so messages cannot be changed"}, 403)


@refuses_cleanly
def edit(membership: Membership, message: Message, body: str) -> Message:
    """The author corrects their message within 5 minutes; everyone sees it marked edited.

    :raise Invalid 403: not theirs, or too late. :raise Invalid 422: empty or too long.
    """
    _check_own_and_recent(membership, message)
    text = _check_body(body)
    if text == message.body:
        return message
    rev, seq = next_rev(message.room_id)
    message.body, message.edited_at, message.rev = text, utcnow(), rev
    event = events.message_changed(membership.room, message, seq, rev)
    db.session.commit()
    publish(membership.room, event)
    return message


@refuses_cleanly
def delete_own(membership: Membership, message: Message) -> Message:
    """The author deletes their message within 5 minutes: it shows "message removed" for everyone.

    :raise Invalid 403: not theirs, or too late.
    """
    _check_own_and_recent(membership, message)
    return mark_removed(membership.room, message, "author")


def mark_removed(room: Room, message: Message, by: str) -> Message:
    """Blank a message's text, commit and publish the change (the text is not kept); ``by`` is author or host."""
    rev, seq = next_rev(room.id)
    message.body, message.removed_at, message.removed_by, message.rev = "", utcnow(), by, rev
    event = events.message_changed(room, message, seq, rev)
    db.session.commit()
    publish(room, event)
    return message


def after(room_id: int, after: int, limit: int = 500) -> list[Message]:
    """Visible messages with ``seq`` > ``after``, in order (the stream's replay)."""
    return list(
        db.session.scalars(
            select(Message).where(Message.room_id == room_id, Message.seq > after).order_by(Message.seq).limit(limit)
        )
    )


def changes_after(room_id: int, rev: int, up_to_seq: int, limit: int = 500) -> list[Message]:
    """Messages up to ``up_to_seq`` changed after change number ``rev``, in change order."""
    return list(
        db.session.scalars(
            select(Message)
            .where(Message.room_id == room_id, Message.rev > rev, Message.seq <= up_to_seq)
            .order_by(Message.rev)
            .limit(limit)
        )
    )


def before(room_id: int, before: int | None, limit: int) -> list[Message]:
    """Up to ``limit`` messages before ``seq`` (or the newest), oldest first: paging by cursor, not offset."""
    query = select(Message).where(Message.room_id == room_id, Message.seq.is_not(None))
    if before is not None:
        query = query.where(Message.seq < before)
    rows = list(db.session.scalars(query.order_by(Message.seq.desc()).limit(limit)))
    rows.reverse()
    return rows


def count(room_id: int) -> int:
    """How many messages the room shows (removed ones included, held and rejected ones not)."""
    return (
        db.session.scalar(
            select(func.count()).select_from(Message).where(Message.room_id == room_id, Message.status == PUBLISHED)
        )
        or 0
    )
