"""Who may see a room. Access is by scoping: every lookup starts from the room's code
and the caller's own seat or ownership, so another room's data is unreachable."""

from __future__ import annotations

import re

from flask import abort, session
from flask_login import current_user
from sqlalchemy import select

from .extensions import db
from .models import Membership, Room

SEATS = "seats"  # session key: {room id: membership id}
_CODE = re.compile(r"[a-z0-9]{1,16}")  # what security.room_code makes; anything else cannot be a room


def room_or_404(code: str) -> Room:
    """The room with this public code. :raise 404: no such room."""
    room = db.session.scalar(select(Room).where(Room.code == code)) if _CODE.fullmatch(code) else None
    if room is None:
        abort(404)
    return room


def is_owner(room: Room) -> bool:
    return bool(current_user.is_authenticated and room.owner_id == current_user.id)


def owned_room_or_404(code: str) -> Room:
    """A room the signed-in facilitator owns. :raise 404: missing or someone else's (no hint which)."""
    room = room_or_404(code)
    if not is_owner(room):
        abort(404)
    return room


def seat_for(room: Room) -> Membership | None:
    """The caller's active seat in ``room``: the host seat for its owner, else the session's membership."""
    if is_owner(room):
        from .services import host_seat

        return host_seat(room)
    membership_id = session.get(SEATS, {}).get(str(room.id))
    if membership_id is None:
        return None
    seat = db.session.scalar(select(Membership).where(Membership.id == membership_id, Membership.room_id == room.id))
    if seat is None or not seat.active:
        return None
    return seat


def previous_seat(room: Room) -> int | None:
    """The membership this browser last held in ``room``, active or not (bans are checked against it)."""
    value = session.get(SEATS, {}).get(str(room.id))
    return value if isinstance(value, int) else None


def remember_seat(room: Room, membership: Membership) -> None:
    seats = dict(session.get(SEATS, {}))
    seats[str(room.id)] = membership.id
    session[SEATS] = seats


def forget_seat(room: Room) -> None:
    seats = dict(session.get(SEATS, {}))
    seats.pop(str(room.id), None)
    session[SEATS] = seats
