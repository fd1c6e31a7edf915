"""Seats in a room: joining with an alias and the room password, leaving, removal, bans and typing."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import events, passwords
from ..extensions import db
from ..models import Membership, Message, Room, RoomStatus, utcnow
from ..presence import claim, current_presence
from ..text import Limit, clean_line, key_of, name_skeleton, problem
from . import Invalid
from ._core import audit, host_name, publish, refuses_cleanly

ALIAS_MAX = 32
ALIAS = Limit(
    label="The alias",
    maximum=ALIAS_MAX,
    empty=f"Choose an alias of 1 to {ALIAS_MAX} characters",
    too_long="Choose an alias of 1 to {maximum} characters (it has {count})",
    storage=64,  # Membership.alias and alias_key hold 64 code points
)
TAKEN = "Someone in this room already uses this alias: choose another"
LOOKS_TAKEN = "Someone in this room already uses an alias that looks the same as this one: choose another"


def _check_not_look_alike(room: Room, alias: str) -> None:
    """Refuse an alias whose confusable skeleton (UTS #39) matches an active member's (``text.skeleton``).

    Compared on joining against the room's active seats (at most a few hundred), so no stored key changes.
    :raise Invalid 409: it looks like an alias in use.
    """
    wanted = name_skeleton(alias)
    active = select(Membership.alias).where(Membership.room_id == room.id, Membership.left_at.is_(None))
    if any(name_skeleton(other) == wanted for other in db.session.scalars(active)):
        raise Invalid({"alias": LOOKS_TAKEN}, 409)


@refuses_cleanly
def join(room: Room, alias: str, password: str, previous_seat: int | None = None) -> Membership:
    """Give a participant a seat in an open room.

    ``previous_seat`` is the membership this browser held before, if any: a ban
    on it keeps the browser out. An alias is held by an active seat only, so one that
    left or was removed frees its alias (its messages keep showing it), and whoever
    comes back may take it again.

    :raise Invalid 403: the room is not open, the browser is banned, the room is full
        (``MEMBERS_PER_ROOM`` open seats, the host's included), or the password is wrong.
    :raise Invalid 422: the alias breaks a rule (``ALIAS``: visible, at most 32 characters as seen).
    :raise Invalid 409: an active seat holds the alias, or looks the same as an active member's (``text.skeleton``).
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
    raw, alias = alias, clean_line(alias)
    key = key_of(alias)
    wrong = problem(raw, alias, ALIAS, key=key)
    if wrong:
        raise Invalid({"alias": wrong})
    if not password or not passwords.check(password, room.password_hash):
        raise Invalid({"password": "The room password is not right: check it with your facilitator"}, 403)
    _check_room_has_space(room)
    taken = select(Membership.id).where(
        Membership.room_id == room.id, Membership.alias_key == key, Membership.left_at.is_(None)
    )
    if db.session.scalar(taken):
        raise Invalid({"alias": TAKEN}, 409)
    _check_not_look_alike(room, alias)
    membership = Membership(room_id=room.id, alias=alias, alias_key=key)
    db.session.add(membership)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Invalid({"alias": TAKEN}, 409) from None
    publish(room, events.member_changed(room, membership, 0, new=True))
    return membership


def _check_room_has_space(room: Room) -> None:
    """:raise Invalid 403: the room has ``MEMBERS_PER_ROOM`` open seats already.

    Checked after the password, so a full room tells only those who may enter. Two joins at
    the same moment may both pass: the cap bounds abuse, it is not a ticket count.
    """
    cap = int(current_app.config.get("MEMBERS_PER_ROOM", 500))
    seats = db.session.scalar(
        select(func.count()).select_from(Membership).where(Membership.room_id == room.id, Membership.left_at.is_(None))
    )
    if (seats or 0) >= cap:
        problem = f"This room is full: it has places for {cap} people. Ask the host to let you know when one frees up"
        raise Invalid({"room": problem}, 403)


@refuses_cleanly
def leave(membership: Membership) -> None:
    """A participant leaves: their seat is closed (its alias is free again) and their streams end."""
    membership.left_at = membership.left_at or utcnow()
    db.session.commit()
    publish(membership.room_id, events.seat_closed(membership.id, "left"))
    _publish_row(membership.room, membership)


@refuses_cleanly
def remove(room: Room, membership: Membership, *, ban: bool = False) -> None:
    """The host removes a participant: their streams end at once and the alias is free. Unless banned, they may join
    again (under that alias too).

    :raise Invalid 404: not a participant of this room.
    """
    if membership.room_id != room.id or membership.is_host:
        raise Invalid({"member": "That person is not a participant of this room"}, 404)
    membership.left_at = membership.left_at or utcnow()
    membership.banned = membership.banned or ban
    membership.removed = True
    audit(room, host_name(room), "participant banned" if ban else "participant removed", membership.alias)
    db.session.commit()
    publish(room, events.seat_closed(membership.id, "banned" if membership.banned else "removed"))
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


def depart(membership: Membership, tab: str) -> None:
    """A tab of this seat is closing (its page's beacon): it leaves "Here now" now, and its stream ends.

    Nothing is stored; the presence tracker announces the new list (batched).
    """
    current_presence().depart(membership.room_id, membership.id, tab)
    publish(membership.room_id, events.tab_departed(membership.id, tab))


def set_away(membership: Membership, tab: str, away: bool) -> None:
    """A tab of this seat was hidden (away) or shown again; nothing is stored."""
    current_presence().set_away(membership.room_id, membership.id, tab, away)
