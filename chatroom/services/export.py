"""Transcripts (streamed, never loaded whole) and the retention clean-up."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import quote

from flask import stream_template
from sqlalchemy import CursorResult, delete, select
from werkzeug.utils import secure_filename

from .. import charts
from ..extensions import db
from ..models import Message, MessageStatus, Note, Report, Room, utcnow
from ..text import length, truncate
from ._core import audit
from .notes import all_notes

# Whole Content-Type values: give them as ``content_type`` (werkzeug appends a second charset to a
# ``mimetype`` that already has one).
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
    """The transcript as CSV, starting with the UTF-8 byte-order mark: without it, spreadsheet programs
    read the file as Windows-1252 and turn "Café" into "CafÃ©"."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
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
    yield f"# {markdown_text(room.title)}\n\n"
    yield f"{room.local(room.starts_at):%A %d %B %Y, %H:%M} to {room.local(room.ends_at):%H:%M} ({room.timezone})\n\n"
    for m in _rows(room):
        yield markdown_item(
            f"{room.local(m.shown_at):%H:%M}",
            m.author.alias,
            host=m.author.is_host,
            body=None if m.removed else m.body,
            edited=m.edited_at is not None,
            extras=_extras(m),
        )
    if private:
        yield "\n## Private messages with the host\n\n"
        for note in all_notes(room):
            who = f"host to {note.participant.alias}" if note.from_host else note.participant.alias
            yield markdown_item(f"{room.local(note.created_at):%H:%M}", who, host=False, body=note.body, edited=False)


def markdown_item(time: str, alias: str, *, host: bool, body: str | None, edited: bool, extras: str = "") -> str:
    """One message as a Markdown list item: ``- **14:03** Pat: text``; ``body`` None for a removed one.

    ``extras`` (reactions, question state: " (question, 2 votes)") follows the text, escaped like it.

    The lines of a message end in a backslash (CommonMark's hard line break) and continue indented under
    the item, so the rendered item reads exactly "14:03 Pat: text" with the message's own line breaks.
    """
    who = markdown_text(alias) + (" (host)" if host else "")
    if body is None:
        text = "*message removed*"
    else:
        text = "\\\n  ".join(markdown_text(line) for line in body.split("\n")) + (" *(edited)*" if edited else "")
    return f"- **{time}** {who}: {text}{markdown_text(extras)}\n"


# Punctuation that means something anywhere in a line (CommonMark lets a backslash escape any of it):
# code spans, emphasis, links and images, raw HTML and autolinks, entities, GFM strikethrough and tables,
# ATX heading closers.
_MD_INLINE = re.compile(r"([\\`*_\[\]<>&~|#])")
# What starts a block at the beginning of a line: list items (-, +, "1." or "1)"), setext underlines (=).
_MD_LINE_START = re.compile(r"^(?:([-+=])|(\d{1,9})([.)]))")
_MD_LEADING_SPACE = re.compile(r"^\s+")


def markdown_text(line: str) -> str:
    """One line of user text, escaped so that a CommonMark renderer shows it as the same plain text.

    Leading white space becomes numeric character references (Markdown would strip it, or read four
    spaces as code); everything that Markdown would interpret gets a backslash.
    """
    line = _MD_INLINE.sub(r"\\\1", line)
    line = _MD_LINE_START.sub(lambda m: "\\" + m.group(1) if m.group(1) else m.group(2) + "\\" + m.group(3), line)
    return _MD_LEADING_SPACE.sub(lambda m: "".join(f"&#{ord(ch)};" for ch in m.group()), line)


def download_name(room: Room, fmt: str) -> tuple[str, str]:
    """The transcript's file name, and an ASCII one for clients that cannot take more.

    The name is the room's title as written, its code and the format's extension; characters file
    systems refuse (``/ \\ : * ? " < > |``) become "-", and the title is cut to whole characters so the
    name stays within 200 bytes of UTF-8 (file systems allow 255). The ASCII name drops accents and
    other characters (werkzeug's ``secure_filename``), and is "transcript" when nothing is left.
    """
    title = re.sub(r'[/\\:*?"<>|\x00-\x1f\x7f]', "-", room.title).strip(" .") or "transcript"
    while len(title.encode()) > 200:
        title = truncate(title, length(title) - 1)
    fallback = secure_filename(title).strip("-_") or "transcript"
    return f"{title}-{room.code}.{fmt}", f"{fallback}-{room.code}.{fmt}"


def content_disposition(filename: str, fallback: str) -> str:
    """A Content-Disposition header for a download named ``filename`` (RFC 6266): ``filename*`` carries
    it in UTF-8 (RFC 8187, formerly RFC 5987), ``filename`` the ASCII ``fallback`` for old clients."""
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def transcript(room: Room, fmt: str, private: bool = False) -> Iterator[str]:
    """The room's transcript in ``fmt`` (csv, json, md, html), produced as it is sent; the printable page
    (html) opens with the picture of the session (``chatroom/charts.py``).

    Every format carries each message's text exactly (CSV: formulas neutralised with a leading quote).
    ``private``: with the private notes between participants and the host (only when the host asks).
    """
    if fmt == "csv":
        return _csv(room, private)
    if fmt == "json":
        return _json(room, private)
    if fmt == "md":
        return _markdown(room, private)
    notes = all_notes(room) if private else []
    activity = charts.activity_chart(room, charts.activity(room))
    people = charts.participation(room)
    return stream_template(
        "rooms/transcript.html", room=room, messages=_rows(room), notes=notes, activity=activity, people=people
    )


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
