"""Server-sent events framing (pure functions, no Flask).

A frame is ``id:``/``event:`` fields, one ``data:`` line per line of the
payload, and a blank line. Payload lines are split on every line ending the
SSE spec knows (CR, LF, CRLF), so no text can end a field early or smuggle in
a field of its own; ``id`` and ``event`` are ours and never user text.
"""

from __future__ import annotations

import re

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FIELD_SAFE = re.compile(r"[A-Za-z0-9_:.-]+")


def frame(data: str, *, id: int | str | None = None, event: str | None = None) -> bytes:
    """Frame one event. ``data`` may hold any text; ``id`` and ``event`` must be plain tokens."""
    parts: list[str] = []
    if id is not None:
        if not _FIELD_SAFE.fullmatch(str(id)):
            raise ValueError(f"unsafe SSE id: {id!r}")
        parts.append(f"id: {id}\n")
    if event is not None:
        if not _FIELD_SAFE.fullmatch(event):
            raise ValueError(f"unsafe SSE event name: {event!r}")
        parts.append(f"event: {event}\n")
    for line in _LINE_BREAK.split(data):
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def cursor(id: str) -> bytes:
    """An event with only an id: moves the client's Last-Event-ID, shows nothing."""
    if not _FIELD_SAFE.fullmatch(id):
        raise ValueError(f"unsafe SSE id: {id!r}")
    return f"id: {id}\n\n".encode()


def comment(text: str = "") -> bytes:
    """A comment line: ignored by clients, keeps proxies from cutting an idle stream."""
    return f": {_LINE_BREAK.sub(' ', text)}\n\n".encode()


def retry(milliseconds: int) -> bytes:
    return f"retry: {int(milliseconds)}\n\n".encode()


def parse(stream: bytes) -> list[dict[str, str]]:
    """Parse SSE bytes into events (``id``, ``event``, ``data``), as a browser would; for tests and tools."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    data: list[str] = []
    for line in _LINE_BREAK.split(stream.decode("utf-8")):
        if line == "":
            if data or current:
                if data:
                    current["data"] = "\n".join(data)
                events.append(current)
            current, data = {}, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name in ("id", "event", "retry"):
            current[name] = value
    return events
