"""What every service shares: publishing after commit, the audit trail and the room counters."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar, cast

from flask import current_app
from sqlalchemy import Table, Update, bindparam, update

from .. import events
from ..broker import current_broker
from ..extensions import db
from ..models import AuditEvent, Message, Report, Room
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


def panel_size() -> int:
    """How many items each host panel shows (``HOST_PANEL_SHOWN``); the rest are a count."""
    return max(1, int(current_app.config.get("HOST_PANEL_SHOWN", 50)))


def _view(room: Room, panel: str) -> list[Message] | list[Report]:
    if panel == "queue":
        return room.pending_messages(limit=panel_size())
    return room.open_reports(limit=panel_size())


def panel_view(room: Room, panel: str) -> list[int]:
    """The ids a host page shows in ``panel`` ("queue" or "reports") now: read it before a change."""
    return [item.id for item in _view(room, panel)]


def publish_panel_change(room: Room, panel: str, before: Sequence[int]) -> None:
    """Tell the host's streams what changed in ``panel`` since ``before`` (``panel_view``), after the commit.

    Every host page shows the oldest ``panel_size()`` items of a panel, so the change is the
    same for all of them: ids that left the view are deleted, items that came into view (a
    new one, or the next ones moving up) are appended, and the count is updated. Two changes
    committed at the same instant may both append an item that moved up; a reconnect (which
    sends the whole panels) tidies that.
    """
    after = _view(room, panel)
    now, then = {item.id for item in after}, set(before)
    added = [item for item in after if item.id not in then]
    removed = [item_id for item_id in before if item_id not in now]
    total = room.pending_count() if panel == "queue" else room.open_report_count()
    publish(room, events.host_panel_changed(room, panel, added, removed, total, panel_size()))


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

    :raise Invalid 404: the room was deleted meanwhile.
    """
    return _bump(_BUMP_SEQ, room_id)


def next_rev(room_id: int) -> tuple[int, int]:
    """Take the room's next change number under its row lock; returns (rev, current seq).

    :raise Invalid 404: the room was deleted meanwhile.
    """
    return _bump(_BUMP_REV, room_id)


ROOMS = cast(Table, Room.__table__)


# Built once: a Core statement with bound parameters keeps its cache key, so a bump costs one round trip
# and no ORM bookkeeping (it runs on every post, edit, reaction and vote).
def seq_bump(room_param: str = "room_id") -> Update:
    """``UPDATE rooms SET last_seq = last_seq + 1 … RETURNING last_seq, last_rev`` for the room id bound as
    ``room_param`` (``next_seq``, and the one-statement post in ``messages``, which names its parameters)."""
    return (
        update(ROOMS)
        .where(ROOMS.c.id == bindparam(room_param))
        .values(last_seq=ROOMS.c.last_seq + 1)
        .returning(ROOMS.c.last_seq, ROOMS.c.last_rev)
    )


_BUMP_SEQ = seq_bump()
_BUMP_REV = (
    update(ROOMS)
    .where(ROOMS.c.id == bindparam("room_id"))
    .values(last_rev=ROOMS.c.last_rev + 1)
    .returning(ROOMS.c.last_rev, ROOMS.c.last_seq)
)


def _bump(statement: Update, room_id: int) -> tuple[int, int]:
    row = db.session.execute(statement, {"room_id": room_id}).first()
    if row is None:
        raise room_gone()
    return row[0], row[1]


def room_gone() -> Invalid:
    """The refusal for a write into a room deleted while the request ran (404, a sentence for the page)."""
    return Invalid({"body": "This room no longer exists"}, 404)
