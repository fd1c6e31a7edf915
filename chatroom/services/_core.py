"""What every service shares: the refusal type, the broker, the audit trail and the room locks."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import update
from sqlalchemy.orm import InstrumentedAttribute

from ..broker import Broker, Event
from ..extensions import db
from ..models import AuditEvent, Room


@dataclass
class Invalid(Exception):
    """A request the rules refuse: field -> message, and the HTTP status to answer with."""

    errors: dict[str, str] = field(default_factory=dict)
    status: int = 422

    def __str__(self) -> str:
        return "; ".join(self.errors.values())


def broker() -> Broker:
    return current_app.extensions["chatroom.broker"]


def publish(room: Room | int, event: Event) -> None:
    """Hand an event to every stream of the room. Call only after the commit it reports."""
    room_id = room if isinstance(room, int) else room.id
    broker().publish(f"room:{room_id}", event)


def audit(room: Room, actor: str, action: str, detail: str = "") -> None:
    """Record a moderation action or settings change in the caller's transaction."""
    db.session.add(AuditEvent(room_id=room.id, actor=actor[:64], action=action, detail=detail[:500]))


def next_seq(room_id: int) -> tuple[int, int]:
    """Take the room's next message number under its row lock; returns (seq, current rev).

    The lock is held until the caller's commit, so commit order is ``seq`` order
    and there are no gaps (a rolled-back insert gives its number back).
    """
    return _bump(room_id, Room.last_seq, Room.last_rev)


def next_rev(room_id: int) -> tuple[int, int]:
    """Take the room's next change number under its row lock; returns (rev, current seq)."""
    return _bump(room_id, Room.last_rev, Room.last_seq)


def _bump(room_id: int, counter: InstrumentedAttribute[int], other: InstrumentedAttribute[int]) -> tuple[int, int]:
    new, current = db.session.execute(
        update(Room)
        .where(Room.id == room_id)
        .values({counter: counter + 1})
        .returning(counter, other)
        .execution_options(synchronize_session=False)
    ).one()
    return new, current


def cursor_id(seq: int, rev: int) -> str:
    """The SSE event id: how far a client has got in messages and in changes."""
    return f"{seq}.{rev}"
