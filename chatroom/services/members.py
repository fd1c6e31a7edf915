"""Seats in a room: joining with an alias and the room password, leaving, removal, bans and typing."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import events, passwords
from ..extensions import db
from ..models import Membership, Message, Room, RoomStatus, utcnow
from ..presence import claim
from ..text import clean_line, key_of
from . import Invalid
from ._core import audit, host_name, publish, refuses_cleanly

ALIAS_MAX = 32


@refuses_cleanly
def join(room: Room, alias: str, password: str, previous_seat: int | None = None) -> Membership:
    """Give a participant a seat in an open room.

    ``previous_seat`` is the membership this browser held before, if any: a ban
    on it keeps the browser out.

    :raise Invalid 403: the room is not open, the browser is banned, or the password is wrong.
    :raise Invalid 422: the alias breaks a rule. :raise Invalid 409: the alias is taken.
    """
    status = room.status()
    if status is RoomStatus.SCHEDULED:
        raise Invalid({"room": "This room is not open yet"}, 403)
    if status is RoomStatus.ENDED:
        raise Invalid({"room": "This room has ended"}, 403)
    if previous_seat is not None:
        seat = db.session.get(Membership, previous_seat)
        if seat is not None and seat.room_id == room.id and seat.banned:
            raise Invalid({"room": "The host has removed you from this room, and you cannot join it again"}, 403)
    alias = clean_line(alias)
    if not 1 <= len(alias) <= ALIAS_MAX:
        raise Invalid({"alias": f"Choose an alias of 1 to {ALIAS_MAX} characters"})
    if not password or not passwords.check(password, room.password_hash):
        raise Invalid({"password": "The room password is not right: check it with your facilitator"}, 403)
    key = key_of(alias)
    taken = select(Membership.id).where(Membership.room_id == room.id, Membership.alias_key == key)
    if db.session.scalar(taken):
        raise Invalid({"alias": "Someone in this room already uses this alias: choose another"}, 409)
    membership = Membership(room_id=room.id, alias=alias, alias_key=key)
    db.session.add(membership)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Invalid({"alias": "Someone in this room already uses this alias: choose another"}, 409) from None
    publish(room, events.member_changed(room, membership, 0, new=True))
    return membership


@refuses_cleanly
def leave(membership: Membership) -> None:
    """A participant leaves: their seat is closed and their streams end."""
    membership.left_at = utcnow()
    db.session.commit()
    publish(membership.room_id, events.seat_closed(membership.id))
    _publish_row(membership.room, membership)


@refuses_cleanly
def remove(room: Room, membership: Membership, *, ban: bool = False) -> None:
    """The host removes a participant: their streams end at once. Unless banned, they may join again.

    :raise Invalid 404: not a participant of this room.
    """
    if membership.room_id != room.id or membership.is_host:
        raise Invalid({"member": "That person is not a participant of this room"}, 404)
    membership.left_at = membership.left_at or utcnow()
    membership.banned = membership.banned or ban
    audit(room, host_name(room), "participant banned" if ban else "participant removed", membership.alias)
    db.session.commit()
    publish(room, events.seat_closed(membership.id))
    _publish_row(room, membership)


def _publish_row(room: Room, membership: Membership) -> None:
    """The host's People row for ``membership``, as it is now."""
    mine = select(func.count()).select_from(Message).where(Message.membership_id == membership.id)
    count = db.session.scalar(mine.where(Message.seq.is_not(None)))
    publish(room, events.member_changed(room, membership, count or 0))


@refuses_cleanly
def ban(room: Room, membership: Membership) -> None:
    """Remove a participant and keep their browser from joining this room again."""
    remove(room, membership, ban=True)


@refuses_cleanly
def signal_typing(membership: Membership) -> bool:
    """Tell the room this member is typing, at most once per interval; nothing is stored.

    Returns whether a signal went out (False: one went out less than an interval ago).
    :raise Invalid 403: the seat is closed or the room is not open.
    """
    config = current_app.config
    if not membership.active or membership.room.status() is not RoomStatus.OPEN:
        raise Invalid({"typing": "You are not in an open room"}, 403)
    if not claim(f"typing:{membership.id}", config["TYPING_MIN_INTERVAL_SECONDS"] - 0.5):
        return False
    publish(membership.room, events.typing(membership, config["TYPING_TTL_SECONDS"]))
    return True
