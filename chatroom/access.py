"""Who may see a room: the loaders that authorize by scoping.

Every lookup starts from the room's public code and the caller's own seat or
ownership, so another room's data is unreachable: a view asks for "the room this
caller may use" and gets it, or the request ends here with 403 or 404.

- ``room_or_404``: any room, by code (the join page is public).
- ``owned_room_or_404``: a room the signed-in facilitator owns; someone else's looks missing.
- ``member_room_or_403``: a room and the caller's active seat in it (the host's seat for its owner).
- ``room_owned_by_or_404``: a room a given facilitator owns (the JSON API's caller, by token or cookie).
- ``message_or_404``: a visible message of a room already loaded by one of the above.

Seats are remembered in the signed session cookie: ``{room id: membership id}``.
"""

from __future__ import annotations

import re

from flask import abort, session
from flask_login import current_user
from sqlalchemy import bindparam, select

from .extensions import db
from .models import Facilitator, Membership, Message, Room
from .services import accounts, messages

SEATS = "seats"  # session key: {room id: membership id}
# Session key: the facilitator whose password was right, waiting for the second factor (auth/sessions.py).
PENDING_SIGN_IN = "two_factor_pending"
SIGN_IN = "login"  # session key: this browser's sign-in token (a LoginSession row; signing out deletes it)
MAX_SEATS_LOOKED_UP = 50  # a browser's seats in other rooms are in the same cookie; a forged list stays short
_CODE = re.compile(r"[a-z0-9]{1,16}")  # what passwords.room_code makes; anything else cannot be a room


def room_code(code: str) -> str | None:
    """``code`` as rooms' codes are written (lower case), or None when it cannot be one (no query needed)."""
    code = code.lower()
    return code if _CODE.fullmatch(code) else None


def room_or_404(code: str) -> Room:
    """The room with this public code, typed in any case (codes are lower case). :raise 404: no such room."""
    code = code.lower()
    room = db.session.scalar(select(Room).where(Room.code == code)) if _CODE.fullmatch(code) else None
    if room is None:
        abort(404)
    return room


def is_owner(room: Room) -> bool:
    """Whether the signed-in facilitator owns ``room``."""
    return bool(current_user.is_authenticated and room.owner_id == current_user.id)


def owned_room_or_404(code: str) -> Room:
    """A room the signed-in facilitator owns. :raise 404: missing or someone else's (no hint which)."""
    room = room_or_404(code)
    if not is_owner(room):
        abort(404)
    return room


def room_owned_by_or_404(code: str, owner: Facilitator) -> Room:
    """A room ``owner`` owns. :raise 404: missing or someone else's (no hint which), as ``owned_room_or_404``."""
    room = room_or_404(code)
    if room.owner_id != owner.id:
        abort(404)
    return room


def member_room_or_403(code: str) -> tuple[Room, Membership]:
    """The room and the caller's active seat in it (``room_and_seat``). :raise 404: no such room; 403: no seat."""
    room, seat = room_and_seat(code)
    if seat is None:
        abort(403)
    return room, seat


def room_and_seat(code: str) -> tuple[Room, Membership | None]:
    """The room and the caller's active seat in it, or None for the seat (``seat_for``). :raise 404: no such room.

    A participant's usual case is one query, the room and the seat together (every post and every stream
    opened pays for it); anything else (no seat, a facilitator) takes the two-step path.
    """
    found = _participant_seat(code)
    if found is not None:
        return found
    room = room_or_404(code)
    return room, seat_for(room)


def held_seats() -> list[tuple[int, int]]:
    """The (room id, seat id) pairs this browser's session holds, at most ``MAX_SEATS_LOOKED_UP``; empty for a
    signed-in facilitator (whose seat is the host's, found by ownership: ``seat_for``) or a session with none.
    For a statement that finds the caller's seat itself (``messages.post_at_once``)."""
    seats = session.get(SEATS)
    if not seats or not isinstance(seats, dict) or current_user.is_authenticated:
        return []
    held = [(int(room), seat) for room, seat in seats.items() if room.isdecimal() and isinstance(seat, int)]
    return held[:MAX_SEATS_LOOKED_UP]


def _participant_seat(code: str) -> tuple[Room, Membership] | None:
    """The room ``code`` and the active seat the session holds in it, in one query; None when that is not
    simply so (no session seats, a signed-in facilitator, a wrong code, a seat gone), for the full check."""
    held = held_seats()
    code = code.lower()
    if not held or not _CODE.fullmatch(code):
        return None
    row = db.session.execute(_ROOM_AND_SEAT, {"code": code, "held": [seat for _, seat in held]}).first()
    if row is None or (row[0].id, row[1].id) not in held:
        return None
    return row[0], row[1]


# Built once (every post and stream open runs it): its cache key is kept, so no statement is built per request.
_ROOM_AND_SEAT = (
    select(Room, Membership)
    .join(Membership, Membership.room_id == Room.id)
    .where(
        Room.code == bindparam("code"),
        Membership.id.in_(bindparam("held", expanding=True)),
        Membership.left_at.is_(None),
    )
)


def participant_or_404(room: Room, membership_id: int) -> Membership:
    """A participant's seat (not the host's) in ``room``, active or not. :raise 404: not one of this room's."""
    membership = db.session.get(Membership, membership_id)
    if membership is None or membership.room_id != room.id or membership.is_host:
        abort(404)
    return membership


def message_or_404(room: Room, seq: int) -> Message:
    """The visible message at ``seq`` in ``room`` (``messages.find``). :raise 404: no such message in this room."""
    message = messages.find(room, seq)
    if message is None:
        abort(404)
    return message


def seat_for(room: Room) -> Membership | None:
    """The caller's active seat in ``room``: the host seat for its owner, else the session's membership."""
    if is_owner(room):
        return room.host_seat()
    membership_id = _seat_in_session(room.id)
    if membership_id is None:
        return None
    seat = db.session.scalar(select(Membership).where(Membership.id == membership_id, Membership.room_id == room.id))
    if seat is None or not seat.active:
        return None
    return seat


def sign_in_fingerprint() -> str:
    """This browser's facilitator sign-in as host streams remember it (``accounts.sign_in_fingerprint``), or
    ``""`` when no facilitator is signed in here."""
    token = session.get(SIGN_IN) if current_user.is_authenticated else None
    return accounts.sign_in_fingerprint(token) if isinstance(token, str) and token else ""


def _seat_in_session(room_id: int) -> int | None:
    """The membership id the signed session keeps for room ``room_id`` (``remember_seat``), or None."""
    value = session.get(SEATS, {}).get(str(room_id))
    return value if isinstance(value, int) else None


def session_seat(room_id: int) -> int | None:
    """The seat this browser's signed session holds in room ``room_id`` (not checked against the database), or
    None; always None for a signed-in facilitator, whose seat is the host's (``seat_for``)."""
    return None if current_user.is_authenticated else _seat_in_session(room_id)


def previous_seat(room: Room) -> int | None:
    """The membership this browser last held in ``room``, active or not (bans are checked against it)."""
    return _seat_in_session(room.id)


def remember_seat(room: Room, membership: Membership) -> None:
    """Keep ``membership`` as this browser's seat in ``room`` (in the signed session cookie)."""
    seats = dict(session.get(SEATS, {}))
    seats[str(room.id)] = membership.id
    session[SEATS] = seats


def forget_seat(room: Room) -> None:
    """Drop this browser's seat in ``room`` from the session."""
    seats = dict(session.get(SEATS, {}))
    seats.pop(str(room.id), None)
    session[SEATS] = seats
