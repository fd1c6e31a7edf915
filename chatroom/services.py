"""Every write in Chatroom happens here.

Views parse a request and call one of these functions; the function checks the
rules, commits, and only *then* publishes to the broker (the only callers of
``broker.publish`` are in this module). An event's HTML is rendered once, here,
and the same bytes go to every stream.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import current_app, render_template
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from . import security
from .broker import Broker, Event
from .extensions import db
from .models import Facilitator, Membership, Message, Room, RoomStatus, utcnow
from .sse import frame
from .text import clean_body, clean_email, clean_line, key_of, valid_email

ALIAS_MAX = 32
TITLE_MAX = 120
NAME_MAX = 64
BODY_MAX = 2000
PASSWORD_MIN = 12
PASSWORD_MAX = 1024
ROOM_PASSWORD_MIN = 4


@dataclass
class Invalid(Exception):
    """A request the rules refuse: field -> message, and the HTTP status to answer with."""

    errors: dict[str, str] = field(default_factory=dict)
    status: int = 422

    def __str__(self) -> str:
        return "; ".join(self.errors.values())


def broker() -> Broker:
    return current_app.extensions["chatroom.broker"]


def _publish(room: Room, event: Event) -> None:
    broker().publish(room.channel, event)


# -- facilitators -------------------------------------------------------------


def sign_up(email: str, name: str, password: str) -> Facilitator:
    """Create a facilitator account.

    :raise Invalid 422: a field breaks a rule. :raise Invalid 409: the e-mail is taken.
    """
    email = clean_email(email)
    name = clean_line(name)
    errors: dict[str, str] = {}
    if not valid_email(email):
        errors["email"] = "Enter an email address like name@example.org"
    if not 1 <= len(name) <= NAME_MAX:
        errors["name"] = f"Enter your name, up to {NAME_MAX} characters"
    if len(password) < PASSWORD_MIN:
        errors["password"] = f"Choose a password of at least {PASSWORD_MIN} characters"
    elif len(password) > PASSWORD_MAX:
        errors["password"] = f"Choose a password of at most {PASSWORD_MAX} characters"
    if errors:
        raise Invalid(errors)
    key = email.casefold()
    if db.session.scalar(select(Facilitator.id).where(Facilitator.email_key == key)):
        raise Invalid({"email": "An account with this email already exists: sign in instead"}, 409)
    facilitator = Facilitator(email=email, email_key=key, name=name, password_hash=security.hash_password(password))
    db.session.add(facilitator)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Invalid({"email": "An account with this email already exists: sign in instead"}, 409) from None
    return facilitator


def authenticate(email: str, password: str) -> Facilitator | None:
    """The facilitator with this e-mail and password, or None; unknown e-mails take as long as wrong passwords."""
    facilitator = db.session.scalar(select(Facilitator).where(Facilitator.email_key == clean_email(email).casefold()))
    if facilitator is None or len(password) > PASSWORD_MAX:
        security.burn_password_check()
        return None
    return facilitator if security.check_password(password, facilitator.password_hash) else None


# -- rooms --------------------------------------------------------------------


@dataclass
class RoomInput:
    title: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    password: str | None  # None on edit: keep the current password


def parse_room_form(form: Mapping[str, str], *, editing: bool) -> RoomInput:
    """Read and check the room form; times are read in the room's time zone.

    :raise Invalid 422: with a message per field that is wrong.
    """
    errors: dict[str, str] = {}
    title = clean_line(form.get("title", ""))
    if not 1 <= len(title) <= TITLE_MAX:
        errors["title"] = f"Enter a title of 1 to {TITLE_MAX} characters"
    tz_name = form.get("timezone", "").strip() or "UTC"
    tz: ZoneInfo | None = None
    if tz_name in available_timezones() or tz_name == "UTC":
        try:
            tz = ZoneInfo(tz_name)
        except ZoneInfoNotFoundError:
            tz = None
    if tz is None:
        errors["timezone"] = "Enter a time zone name like Europe/Paris or America/New_York"
    times: dict[str, datetime] = {}
    for name, label in (("starts_at", "start"), ("ends_at", "end")):
        raw = form.get(name, "").strip()
        try:
            naive = datetime.fromisoformat(raw)
            if naive.tzinfo is not None:
                raise ValueError
            times[name] = naive.replace(tzinfo=tz or ZoneInfo("UTC"))
        except ValueError:
            errors[name] = f"Enter the {label} date and time, like 2026-12-01 14:30"
    if "starts_at" in times and "ends_at" in times and times["ends_at"] <= times["starts_at"]:
        errors["ends_at"] = "The end must be after the start"
    password = form.get("password", "")
    if editing and not password:
        room_password: str | None = None
    elif not ROOM_PASSWORD_MIN <= len(password) <= 128:
        errors["password"] = f"Choose a room password of {ROOM_PASSWORD_MIN} to 128 characters"
        room_password = None
    else:
        room_password = password
    if errors:
        raise Invalid(errors)
    return RoomInput(title, times["starts_at"], times["ends_at"], tz_name, room_password)


def _check_title_free(owner: Facilitator, key: str, room_id: int | None = None) -> None:
    query = select(Room.id).where(Room.owner_id == owner.id, Room.title_key == key)
    if room_id is not None:
        query = query.where(Room.id != room_id)
    if db.session.scalar(query):
        raise Invalid({"title": "You already have a room with this title: choose another"}, 409)


def create_room(owner: Facilitator, data: RoomInput) -> Room:
    """Create a room and the owner's host seat in it.

    :raise Invalid 409: the owner already has a room with this title.
    """
    key = key_of(data.title)
    _check_title_free(owner, key)
    assert data.password is not None
    room = Room(
        code=security.room_code(),
        owner=owner,
        title=data.title,
        title_key=key,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        timezone=data.timezone,
        password_hash=security.hash_password(data.password),
    )
    alias = owner.name[:ALIAS_MAX]
    room.memberships.append(Membership(alias=alias, alias_key=key_of(alias), is_host=True, facilitator_id=owner.id))
    db.session.add(room)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Invalid({"title": "You already have a room with this title: choose another"}, 409) from None
    return room


def update_room(room: Room, data: RoomInput) -> Room:
    """Change a room's title, times, time zone and (when given) password.

    :raise Invalid 409: the owner already has another room with this title.
    """
    key = key_of(data.title)
    _check_title_free(room.owner, key, room.id)
    room.title, room.title_key = data.title, key
    room.starts_at, room.ends_at, room.timezone = data.starts_at, data.ends_at, data.timezone
    if data.password is not None:
        room.password_hash = security.hash_password(data.password)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Invalid({"title": "You already have a room with this title: choose another"}, 409) from None
    _publish(room, Event("room", target=room.id))
    return room


def host_seat(room: Room) -> Membership:
    """The owner's host membership in their room (created with the room)."""
    return db.session.scalars(
        select(Membership).where(Membership.room_id == room.id, Membership.is_host.is_(True))
    ).one()


# -- participants -------------------------------------------------------------


def join_room(room: Room, alias: str, password: str) -> Membership:
    """Give a participant a seat in an open room.

    :raise Invalid 403: the room is not open, or the password is wrong.
    :raise Invalid 422: the alias breaks a rule. :raise Invalid 409: the alias is taken.
    """
    status = room.status()
    if status is RoomStatus.SCHEDULED:
        raise Invalid({"room": "This room is not open yet"}, 403)
    if status is RoomStatus.ENDED:
        raise Invalid({"room": "This room has ended"}, 403)
    alias = clean_line(alias)
    if not 1 <= len(alias) <= ALIAS_MAX:
        raise Invalid({"alias": f"Choose an alias of 1 to {ALIAS_MAX} characters"})
    if not password or not security.check_password(password, room.password_hash):
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
    return membership


def leave_room(membership: Membership) -> None:
    """A participant leaves: their seat is closed and their streams end."""
    membership.left_at = utcnow()
    db.session.commit()
    _publish(membership.room, Event("removed", target=membership.id))


def remove_member(room: Room, membership: Membership) -> None:
    """The host removes a participant: their streams end at once; they may join again."""
    if membership.room_id != room.id or membership.is_host:
        raise Invalid({"member": "That person cannot be removed"}, 404)
    membership.left_at = utcnow()
    db.session.commit()
    _publish(room, Event("removed", target=membership.id))


# -- messages -----------------------------------------------------------------


def post_message(membership: Membership, body: str, token: str) -> tuple[Message, bool]:
    """Store a message and publish it; returns (message, created).

    The room row is locked while the next ``seq`` is taken, so commit order is
    ``seq`` order. A resubmitted form (same ``token``) returns the stored
    message with ``created`` False and publishes nothing.

    :raise Invalid 422: empty or too long. :raise Invalid 403: the room is not open or the seat was closed.
    :raise Invalid 400: the form carries no valid token.
    """
    text = clean_body(body)
    if not text:
        raise Invalid({"body": "Write a message before sending"})
    if len(text) > BODY_MAX:
        raise Invalid({"body": f"Shorten your message to {BODY_MAX} characters or fewer (it has {len(text)})"})
    if not (len(token) == 32 and all(c in "0123456789abcdef" for c in token)):
        raise Invalid({"body": "This form has expired: reload the page and send again"}, 400)
    room = membership.room
    if not membership.active:
        raise Invalid({"body": "You are no longer in this room: join again to post"}, 403)
    if room.status() is not RoomStatus.OPEN:
        raise Invalid({"body": "This room is not open, so messages cannot be sent"}, 403)

    existing = _message_by_token(room.id, token)
    if existing is not None:
        return existing, False
    seq = db.session.execute(
        update(Room)
        .where(Room.id == room.id)
        .values(last_seq=Room.last_seq + 1)
        .returning(Room.last_seq)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    # Now that we hold the room's row lock, a twin submission has either committed or waits for us.
    existing = _message_by_token(room.id, token)
    if existing is not None:
        db.session.rollback()
        return existing, False
    message = Message(room_id=room.id, seq=seq, membership_id=membership.id, body=text, client_token=token)
    db.session.add(message)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        existing = _message_by_token(room.id, token)
        if existing is None:
            raise
        return existing, False
    _publish(room, Event("message", message_frame(room, message), seq=message.seq))
    return message, True


def _message_by_token(room_id: int, token: str) -> Message | None:
    return db.session.scalar(select(Message).where(Message.room_id == room_id, Message.client_token == token))


def message_frame(room: Room, message: Message) -> bytes:
    """The SSE frame of one message: the same partial as the page, with ``id: seq``."""
    return frame(render_template("chat/_message.html", room=room, message=message), id=message.seq)


def messages_after(room_id: int, after: int, limit: int = 500) -> list[Message]:
    return list(
        db.session.scalars(
            select(Message).where(Message.room_id == room_id, Message.seq > after).order_by(Message.seq).limit(limit)
        )
    )


def messages_before(room_id: int, before: int | None, limit: int) -> list[Message]:
    """Up to ``limit`` messages before ``seq`` (or the newest), oldest first: paging by cursor, not offset."""
    query = select(Message).where(Message.room_id == room_id)
    if before is not None:
        query = query.where(Message.seq < before)
    rows = list(db.session.scalars(query.order_by(Message.seq.desc()).limit(limit)))
    rows.reverse()
    return rows


def message_count(room_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Message).where(Message.room_id == room_id)) or 0


# -- presence and typing ------------------------------------------------------


def present_members(room: Room) -> list[Membership]:
    ids = broker().present(room.id)
    if not ids:
        return []
    rows = db.session.scalars(select(Membership).where(Membership.room_id == room.id, Membership.id.in_(ids)))
    return sorted(rows, key=lambda m: (not m.is_host, m.alias_key))


def announce_presence(room: Room) -> None:
    """Publish the room's "here now" list, rendered once for everyone."""
    members = present_members(room)
    html = render_template("chat/_presence.html", room=room, members=members, oob=True)
    _publish(room, Event("presence", frame(html)))


def announce_presence_by_id(room_id: int) -> None:
    room = db.session.get(Room, room_id)
    if room is not None:
        announce_presence(room)
    db.session.remove()


def signal_typing(membership: Membership) -> bool:
    """Tell the room this member is typing, at most once per interval; nothing is stored."""
    cfg = current_app.config
    if not membership.active or membership.room.status() is not RoomStatus.OPEN:
        raise Invalid({"typing": "You are not in an open room"}, 403)
    if not broker().claim(f"typing:{membership.id}", cfg["TYPING_MIN_INTERVAL_SECONDS"] - 0.5):
        return False
    data = json.dumps({"member": membership.id, "alias": membership.alias, "ttl": cfg["TYPING_TTL_SECONDS"]})
    _publish(membership.room, Event("typing", frame(data, event="typing"), target=membership.id))
    return True
