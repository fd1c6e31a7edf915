"""Transcripts (streamed, never loaded whole) and the retention clean-up."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, cast

from flask import stream_template
from sqlalchemy import CursorResult, delete, select

from .. import charts
from ..extensions import db
from ..models import Message, MessageStatus, Report, Room, utcnow
from ._core import audit

TRANSCRIPT_FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
BATCH = 500


def _rows(room: Room) -> Iterator[Message]:
    query = (
        select(Message)
        .where(Message.room_id == room.id, Message.status == MessageStatus.PUBLISHED.value)
        .order_by(Message.seq)
        .execution_options(yield_per=BATCH)
    )
    yield from db.session.scalars(query)


def _record(room: Room, m: Message) -> dict[str, object]:
    return {
        "seq": m.seq,
        "time": room.local(m.shown_at).isoformat(timespec="seconds"),
        "alias": m.author.alias,
        "host": m.author.is_host,
        "text": "" if m.removed else m.body,
        "edited": m.edited_at is not None,
        "removed": m.removed,
        "removed_by": m.removed_by,
    }


def _csv(room: Room) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    fields = ["seq", "time", "alias", "host", "text", "edited", "removed", "removed_by"]
    writer.writerow(fields)
    for m in _rows(room):
        record = _record(room, m)
        writer.writerow([_cell(record[f]) for f in fields])
        if buffer.tell() > 32_768:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _cell(value: object) -> object:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _json(room: Room) -> Iterator[str]:
    head = {"room": room.title, "timezone": room.timezone, "starts_at": room.local(room.starts_at).isoformat()}
    yield json.dumps(head)[:-1] + ', "messages": [\n'
    first = True
    for m in _rows(room):
        yield ("" if first else ",\n") + json.dumps(_record(room, m), ensure_ascii=False)
        first = False
    yield "\n]}\n"


def _markdown(room: Room) -> Iterator[str]:
    yield f"# {_md(room.title)}\n\n"
    yield f"{room.local(room.starts_at):%A %d %B %Y, %H:%M} to {room.local(room.ends_at):%H:%M} ({room.timezone})\n\n"
    for m in _rows(room):
        who = _md(m.author.alias) + (" (host)" if m.author.is_host else "")
        if m.removed:
            text = "*message removed*"
        else:
            text = _md(m.body).replace("\n", "  \n  ") + (" *(edited)*" if m.edited_at else "")
        yield f"- **{room.local(m.shown_at):%H:%M}** {who}: {text}\n"


def _md(text: str) -> str:
    """Escape Markdown so a message cannot format the transcript (or hide text in it)."""
    return "".join("\\" + c if c in "\\`*_{}[]()#+-.!|<>~" else c for c in text)


def transcript(room: Room, fmt: str) -> Iterator[str]:
    """The room's transcript in ``fmt`` (csv, json, md, html), produced as it is sent; the printable page
    (html) opens with the picture of the session (``chatroom/charts.py``)."""
    if fmt == "csv":
        return _csv(room)
    if fmt == "json":
        return _json(room)
    if fmt == "md":
        return _markdown(room)
    activity = charts.activity_chart(room, charts.activity(room))
    people = charts.participation(room)
    return stream_template("rooms/transcript.html", room=room, messages=_rows(room), activity=activity, people=people)


def apply_retention(now: datetime | None = None) -> dict[str, int]:
    """Delete the messages of rooms whose retention period has passed; safe to run again at any time.

    Returns {room code: messages deleted}. Rooms keep their audit log, which records the clean-up.
    """
    now = now or utcnow()
    done: dict[str, int] = {}
    rooms = db.session.scalars(select(Room).where(Room.retention_days.is_not(None)))
    for room in list(rooms):
        assert room.retention_days is not None
        if room.ends_at + timedelta(days=room.retention_days) > now:
            continue
        db.session.execute(delete(Report).where(Report.room_id == room.id))
        result = cast(CursorResult[Any], db.session.execute(delete(Message).where(Message.room_id == room.id)))
        deleted = result.rowcount
        if deleted:
            audit(
                room, "retention", "messages deleted", f"{deleted} messages, {room.retention_days} days after the end"
            )
            done[room.code] = deleted
        db.session.commit()
    return done
