"""What every service shares: publishing after commit, the audit trail and the room counters."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy import update
from sqlalchemy.orm import InstrumentedAttribute

from .. import events
from ..broker import current_broker
from ..extensions import db
from ..models import AuditEvent, Room
from . import Invalid

P = ParamSpec("P")
R = TypeVar("R")


def refuses_cleanly(service: Callable[P, R]) -> Callable[P, R]:
    """Decorate a service that writes: when it refuses (``Invalid``), its session is rolled back first.

    So a refusal never leaves half a change in the session for a later commit to flush,
    whichever view called it and whatever that view does next (see ``chatroom/errors.py``).
    """

    @functools.wraps(service)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return service(*args, **kwargs)
        except Invalid:
            db.session.rollback()
            raise

    return wrapper


def publish(room: Room | int, event: events.Event) -> None:
    """Hand an event to every stream of the room. Call only after the commit it reports."""
    room_id = room if isinstance(room, int) else room.id
    current_broker().publish(events.channel(room_id), event)


def publish_host_panels(room: Room) -> None:
    """Send the host's streams the current approval queue and open reports."""
    publish(room, events.host_panels_changed(room, room.pending_messages(), room.open_reports()))


def audit(room: Room, actor: str, action: str, detail: str = "") -> None:
    """Record a moderation action or settings change in the caller's transaction."""
    db.session.add(AuditEvent(room_id=room.id, actor=actor[:64], action=action, detail=detail[:500]))


def host_name(room: Room) -> str:
    """How the audit log names the room's host."""
    return f"{room.owner.name} (host)"


def next_seq(room_id: int) -> tuple[int, int]:
    """Take the room's next message number under its row lock; returns (seq, current rev).

    The lock is held until the caller's commit, so commit order is ``seq`` order and
    there are no gaps (a rolled-back insert gives its number back).
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
