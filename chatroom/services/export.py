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

from ..extensions import db
from ..models import Message, MessageStatus, Note, Report, Room, utcnow
from ._core import audit
from .notes import all_notes

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
        "reactions": {kind.value: len(by) for kind, by in m.reaction_counts()},
        "question": m.question,
        "votes": len(m.votes),
        "answered": m.answered_at is not None,
    }


def _note(room: Room, note: Note) -> dict[str, object]:
    return {
        "participant": note.participant.alias,
        "from_host": note.from_host,
        "time": room.local(note.created_at).isoformat(timespec="seconds"),
        "text": note.body,
    }


def _extras(m: Message) -> str:
    """Reactions and question state in words, for the Markdown transcript: " (question, 2 votes; 👍 3)"."""
    parts = []
    if m.question:
        votes = len(m.votes)
        parts.append(f"question, {votes} vote{'' if votes == 1 else 's'}" + (", answered" if m.answered_at else ""))
    reactions = " ".join(f"{kind.emoji} {len(by)}" for kind, by in m.reaction_counts())
    if reactions:
        parts.append(reactions)
    return f" ({'; '.join(parts)})" if parts and not m.removed else ""


def _csv(room: Room, private: bool) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    fields = ["seq", "time", "alias", "host", "text", "edited", "removed", "removed_by"]
    fields += ["reactions", "question", "votes", "answered"]
    writer.writerow(fields)
    for m in _rows(room):
        record = _record(room, m)
        reactions = cast(dict[str, int], record["reactions"])
        record["reactions"] = " ".join(f"{name}:{count}" for name, count in reactions.items())
        writer.writerow([_cell(record[f]) for f in fields])
        if buffer.tell() > 32_768:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if private:  # rows of their own: "private" in place of a seq, the participant's alias, who wrote it
        for note in all_notes(room):
            who = f"{note.participant.alias} (from the host)" if note.from_host else note.participant.alias
            writer.writerow(["private", _note(room, note)["time"], _cell(who), note.from_host, _cell(note.body)])
    yield buffer.getvalue()


def _cell(value: object) -> object:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _json(room: Room, private: bool) -> Iterator[str]:
    head = {"room": room.title, "timezone": room.timezone, "starts_at": room.local(room.starts_at).isoformat()}
    yield json.dumps(head)[:-1] + ', "messages": [\n'
    first = True
    for m in _rows(room):
        yield ("" if first else ",\n") + json.dumps(_record(room, m), ensure_ascii=False)
        first = False
    if private:
        notes = [_note(room, note) for note in all_notes(room)]
        yield '\n], "private": ' + json.dumps(notes, ensure_ascii=False) + "}\n"
    else:
        yield "\n]}\n"


def _markdown(room: Room, private: bool) -> Iterator[str]:
    yield f"# {_md(room.title)}\n\n"
    yield f"{room.local(room.starts_at):%A %d %B %Y, %H:%M} to {room.local(room.ends_at):%H:%M} ({room.timezone})\n\n"
    for m in _rows(room):
        who = _md(m.author.alias) + (" (host)" if m.author.is_host else "")
        if m.removed:
            text = "*message removed*"
        else:
            text = _md(m.body).replace("\n", "  \n  ") + (" *(edited)*" if m.edited_at else "")
        yield f"- **{room.local(m.shown_at):%H:%M}** {who}: {text}{_md(_extras(m))}\n"
    if private:
        yield "\n## Private messages with the host\n\n"
        for note in all_notes(room):
            who = f"host to {_md(note.participant.alias)}" if note.from_host else _md(note.participant.alias)
            text = _md(note.body).replace("\n", "  \n  ")
            yield f"- **{room.local(note.created_at):%H:%M}** {who}: {text}\n"


def _md(text: str) -> str:
    """Escape Markdown so a message cannot format the transcript (or hide text in it)."""
    return "".join("\\" + c if c in "\\`*_{}[]()#+-.!|<>~" else c for c in text)


def transcript(room: Room, fmt: str, private: bool = False) -> Iterator[str]:
    """The room's transcript in ``fmt`` (csv, json, md, html), produced as it is sent.

    ``private``: with the private notes between participants and the host (only when the host asks).
    """
    if fmt == "csv":
        return _csv(room, private)
    if fmt == "json":
        return _json(room, private)
    if fmt == "md":
        return _markdown(room, private)
    notes = all_notes(room) if private else []
    return stream_template("rooms/transcript.html", room=room, messages=_rows(room), notes=notes)


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
