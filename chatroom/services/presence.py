"""Who is here now, and who is typing: ephemeral, kept in the broker, never in the database."""

from __future__ import annotations

import json

from flask import current_app, render_template
from sqlalchemy import select

from ..broker import Event
from ..extensions import db
from ..models import Membership, Room, RoomStatus
from ..sse import frame
from ._core import Invalid, broker, publish


def present_members(room: Room) -> list[Membership]:
    """Members with a live stream in the room now (any instance), the host first."""
    ids = broker().present(room.id)
    if not ids:
        return []
    rows = db.session.scalars(select(Membership).where(Membership.room_id == room.id, Membership.id.in_(ids)))
    return sorted(rows, key=lambda m: (not m.is_host, m.alias_key))


def announce_presence(room: Room) -> None:
    """Publish the room's "here now" list, rendered once for everyone."""
    members = present_members(room)
    html = render_template("chat/_presence.html", room=room, members=members, oob=True)
    publish(room, Event("presence", frame(html)))


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
    publish(membership.room, Event("typing", frame(data, event="typing"), target=membership.id))
    return True
