"""The event vocabulary of a room: what can happen, how it is named on the wire, and its bytes.

Services call one constructor per happening (``message_posted``, ``message_changed``,
``seat_closed``, ``signed_out``, ``room_changed``, ``host_panel_changed``, ``host_questions_changed``,
``host_notes_changed``, ``host_controls_changed``, ``member_changed``, ``private_changed``,
``presence_changed``, ``typing``) *after* they commit, and hand the result to the broker.
Each constructor renders the room's own partial and frames it as SSE bytes exactly once;
every stream in every process sends those bytes unchanged (render once, the same bytes to
everyone). Per-viewer differences are flags on the event (``kind``, ``target``), never a re-render.

Cursors. A client's position in a room is ``seq.rev``: the last message number it has
(``Room.last_seq``, gap-free in room order) and the last change number it has
(``Room.last_rev``: edits and removals, numbered the same way). Every event that moves
the position carries it as its SSE ``id``, so the browser sends it back as
``Last-Event-ID`` on reconnect (see ``chatroom/stream.py``).

Durability. Redis pub/sub is at most once. While Redis is unreachable the broker delivers
to its own process at once and keeps the *durable* kinds to publish again, in order, when
Redis is back: everything that changes what a page shows (messages, changes, closed seats,
room settings, the host's panels). Presence and typing are stale by then and are dropped;
the next heartbeat or keystroke says them again. The database replay after a listener
reconnect is what makes the stream lossless; republishing only makes it prompt.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app, has_request_context

from .sse import frame

if TYPE_CHECKING:
    from .models import Membership, Message, Note, Report, Room


class EventKind(enum.StrEnum):
    """What happened in a room; the stream decides per kind what a viewer gets."""

    MESSAGE = "message"  # a message became visible: ``seq`` its number, ``rev`` the room's change number then
    CHANGE = "change"  # an edit or removal: ``rev`` its change number, ``seq`` the room's last message then
    PRESENCE = "presence"  # "here now" changed: ``seq`` people are here; ``target`` 1 when it is only their count
    TYPING = "typing"  # ``target`` is typing (never sent to the typist's own streams)
    REMOVED = "removed"  # the seat ``target`` was closed (``seq``: why, ``seat_notice``): its streams end
    ROOM = "room"  # the room's settings or schedule changed
    HOST = "host"  # for the host's streams only (queue, reports, questions, private threads)
    PRIVATE = "private"  # for the streams of the seat ``target`` only (its private thread with the host)
    HELD = "held"  # the host decided on a held message: for its author's streams only (``target``)
    DEPART = "depart"  # local only, never sent: the tab ``frame`` of seat ``target`` said goodbye (pagehide)
    RESYNC = "resync"  # re-read the database: Redis came back, a stream fell behind, or a post's event failed
    # The owner's sign-in ``frame`` (its fingerprint; empty: every one of them) ended: those host streams end.
    SIGNED_OUT = "signed_out"


DURABLE_KINDS = frozenset(
    {
        EventKind.MESSAGE,
        EventKind.CHANGE,
        EventKind.REMOVED,
        EventKind.ROOM,
        EventKind.HOST,
        EventKind.PRIVATE,
        EventKind.SIGNED_OUT,
    }
)


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened in a room; ``frame`` is the SSE bytes to send as they are."""

    kind: EventKind
    frame: bytes = b""
    seq: int = 0
    rev: int = 0
    target: int = 0

    @property
    def durable(self) -> bool:
        """Whether the broker publishes it again after a Redis outage (see the module docstring)."""
        return self.kind in DURABLE_KINDS

    def encode(self) -> bytes:
        """The wire form between processes: one header line, then the frame bytes."""
        return f"{self.kind} {self.seq} {self.rev} {self.target}\n".encode() + self.frame

    @classmethod
    def decode(cls, data: bytes) -> Event:
        """Read what ``encode`` wrote. :raise ValueError: not an event (an unknown kind or a bad header)."""
        head, _, payload = data.partition(b"\n")
        kind, seq, rev, target = head.decode().split(" ")
        return cls(EventKind(kind), payload, int(seq), int(rev), int(target))


RESYNC = Event(EventKind.RESYNC)


def fragment(template: str, **context: object) -> str:
    """Render one of a room's partials for an event (or a stream's opening state): the same bytes for everyone.

    Through the app's Jinja environment and its globals (``url_for``, ``config``), without Flask's per-request
    context processors (the reader's theme, the signed-in account, where a form returns): an event is never one
    viewer's, and running them cost a post more than the message's own template did.
    """
    return current_app.jinja_env.get_template(template).render(**context)


# -- channels and cursors ------------------------------------------------------------------


def channel(room_id: int) -> str:
    """The broker channel that carries one room's events."""
    return f"room:{room_id}"


_CURSOR = re.compile(r"(\d{1,12})(?:\.(\d{1,12}))?")


def cursor_id(seq: int, rev: int) -> str:
    """The SSE event id: how far a client has got in messages (``seq``) and in changes (``rev``)."""
    return f"{seq}.{rev}"


def parse_cursor(raw: str) -> tuple[int, int] | None:
    """``seq.rev`` (or a bare ``seq``, rev 0) from a ``Last-Event-ID``; None when it is not one."""
    found = _CURSOR.fullmatch(raw.strip())
    if found is None:
        return None
    return int(found.group(1)), int(found.group(2) or 0)


# -- one constructor per happening -----------------------------------------------------------


def message_frame(room: Room, message: Message, rev: int) -> bytes:
    """A visible message as an SSE frame (the page's partial), id ``seq.rev``; the stream's replay uses it too."""
    assert message.seq is not None
    html = fragment("chat/_message.html", room=room, message=message)
    return frame(html, id=cursor_id(message.seq, rev))


def change_frame(room: Room, message: Message, seq: int, rev: int) -> bytes:
    """An edited or removed message as an SSE frame: the same partial, swapped in place of the old (id ``seq.rev``)."""
    html = fragment("chat/_message.html", room=room, message=message, oob=True)
    return frame(html, id=cursor_id(seq, rev))


def message_posted(room: Room, message: Message, rev: int) -> Event:
    """A message became visible (posted, or approved from the queue) with the room's change number ``rev``."""
    assert message.seq is not None
    return Event(EventKind.MESSAGE, message_frame(room, message, rev), seq=message.seq, rev=rev)


def message_changed(room: Room, message: Message, seq: int, rev: int) -> Event:
    """A message was edited or removed; ``rev`` is its new change number, ``seq`` the room's last message."""
    return Event(EventKind.CHANGE, change_frame(room, message, seq, rev), seq=seq, rev=rev, target=message.seq or 0)


def room_state_html(room: Room) -> str:
    """The room's state notice as an out-of-band fragment (first on every stream connect, and on every change)."""
    return fragment("chat/_room_state.html", room=room, oob=True)


def room_changed(room: Room) -> Event:
    """The room's settings or schedule changed: streams re-read its end time and show the new state."""
    return Event(EventKind.ROOM, frame(room_state_html(room)))


def room_deleted(room_id: int) -> Event:
    """The room is gone: its streams find no room when they re-read it, and end."""
    return Event(EventKind.ROOM)


# Why a seat closed, as the REMOVED event's ``seq`` carries it (an index) and the ``close`` event says it.
SEAT_NOTICES = ("removed", "banned", "left")


def seat_closed(membership_id: int, notice: str = "removed") -> Event:
    """A seat was closed: that seat's streams end with a ``close`` event saying ``notice``, one of
    ``SEAT_NOTICES``: ``removed`` by the host, ``banned`` (the browser may not come back), or ``left`` (the
    person left, from another tab). :raise ValueError: another notice."""
    return Event(EventKind.REMOVED, target=membership_id, seq=SEAT_NOTICES.index(notice))


def seat_notice(event: Event) -> str:
    """What a REMOVED event's streams are told (``seat_closed``): ``removed`` for anything unknown."""
    return SEAT_NOTICES[event.seq] if 0 <= event.seq < len(SEAT_NOTICES) else "removed"


def signed_out(sign_in: str = "") -> Event:
    """The room owner's sign-in with fingerprint ``sign_in`` ended (signed out on that browser), or with ``""``
    every sign-in of theirs (signed out everywhere, a new password, the account disabled): the host streams
    opened under it end with a ``close`` event saying ``signed_out``. Never sent as it is: ``frame`` is the
    fingerprint (``accounts.sign_in_fingerprint``), for matching only."""
    return Event(EventKind.SIGNED_OUT, sign_in.encode())


def ends_sign_in(event: Event, sign_in: str) -> bool:
    """Whether a SIGNED_OUT ``event`` ends a host stream opened under the sign-in with fingerprint ``sign_in``."""
    return event.kind is EventKind.SIGNED_OUT and (not event.frame or event.frame.decode() == sign_in)


def host_panels_html(
    room: Room, pending: Sequence[Message], reports: Sequence[Report], pending_total: int, reports_total: int
) -> str:
    """The host's queue and reports panels (the first ``len(pending)``/``len(reports)`` items and the
    totals), as out-of-band fragments: first on every host stream."""
    return fragment(
        "chat/_host_panels.html",
        room=room,
        pending=pending,
        reports=reports,
        pending_total=pending_total,
        reports_total=reports_total,
        oob=True,
    )


def host_panel_changed(
    room: Room, panel: str, added: Sequence[Message | Report], removed: Sequence[int], total: int, shown: int
) -> Event:
    """One change to the host's ``panel`` ("queue" or "reports"): for the host's streams only.

    ``removed`` are the ids that left it, ``added`` the items that came into view (the panel
    shows the oldest ``shown``), ``total`` how many it holds now. One item's worth of bytes,
    however long the queue: never the whole panel again.
    """
    html = fragment(
        "chat/_host_change.html", room=room, panel=panel, added=added, removed=removed, total=total, shown=shown
    )
    return Event(EventKind.HOST, frame(html))


def host_questions_html(room: Room, questions: Sequence[Message]) -> str:
    """The host's questions panel (by votes), as an out-of-band fragment."""
    return fragment("chat/_host_questions.html", room=room, questions=questions, oob=True)


def host_questions_changed(room: Room, questions: Sequence[Message]) -> Event:
    """A question was asked, voted on or answered: the host's streams get the panel again."""
    return Event(EventKind.HOST, frame(host_questions_html(room, questions)))


def host_notes_html(room: Room, threads: Sequence[tuple[Membership, Sequence[Note]]]) -> str:
    """The host's private threads, as an out-of-band fragment."""
    return fragment("chat/_host_notes.html", room=room, threads=threads, oob=True)


def announcement(text: str) -> str:
    """``text`` for the page's polite announcer (``#announcer``), as an out-of-band fragment; empty for none."""
    return fragment("chat/_announce.html", text=text) if text else ""


def host_notes_changed(room: Room, threads: Sequence[tuple[Membership, Sequence[Note]]], announce: str = "") -> Event:
    """A private note was written, either way: the host's streams get every thread again (and ``announce``)."""
    return Event(EventKind.HOST, frame(host_notes_html(room, threads) + announcement(announce)))


def private_html(room: Room, participant: Membership, notes: Sequence[Note]) -> str:
    """A participant's private thread with the host, as an out-of-band fragment."""
    return fragment("chat/_private.html", room=room, notes=notes, oob=True)


def private_changed(room: Room, participant: Membership, notes: Sequence[Note], announce: str = "") -> Event:
    """A private note was written: only ``participant``'s streams get their thread again (and ``announce``)."""
    html = private_html(room, participant, notes) + announcement(announce)
    return Event(EventKind.PRIVATE, frame(html), target=participant.id)


def _render_anywhere(template: str, **context: object) -> str:
    """Render a fragment whose links need a request (``url_for``) even when the happening came from elsewhere
    (a script, the shell, a test's app context): relative URLs are the same either way."""
    if has_request_context():
        return fragment(template, **context)
    with current_app.test_request_context():
        return fragment(template, **context)


def host_controls_html(room: Room) -> str:
    """The host's room controls (lock, pre-moderation, slow mode, extend, end), as an out-of-band fragment."""
    return _render_anywhere("chat/_host_controls.html", room=room, oob=True)


def host_controls_changed(room: Room) -> Event:
    """A setting changed: the host's controls show the new state (host streams only)."""
    return Event(EventKind.HOST, frame(host_controls_html(room)))


def member_changed(room: Room, membership: Membership, count: int, new: bool = False) -> Event:
    """A participant joined (``new``), left, or was removed or banned: their row in the host's People list,
    with ``count`` messages (host streams only)."""
    person = {"seat": membership, "count": count, "new": new, "presence": "online" if new else None}
    html = _render_anywhere("chat/_host_person.html", room=room, person=person, oob=True)
    return Event(EventKind.HOST, frame(html))


def presence_changed(room: Room, members: Sequence[object]) -> Event:
    """The "here now" list, rendered once for everyone (``members``: ``presence.Here`` entries, or memberships).

    Rendered by the presence announcer's thread too, outside any request: the list page's link needs one.
    """
    html = _render_anywhere("chat/_presence.html", room=room, members=members, oob=True)
    here = sum(1 for m in members if getattr(m, "state", "online") != "offline")
    counted = here > int(current_app.config.get("PRESENCE_LIST_MAX", 50))
    return Event(EventKind.PRESENCE, frame(html), seq=here, target=int(counted))


def typing(membership: Membership, ttl_seconds: float) -> Event:
    """``membership`` is typing; the page shows it for ``ttl_seconds`` unless told again."""
    data = json.dumps({"member": membership.id, "alias": membership.alias, "ttl": ttl_seconds})
    return Event(EventKind.TYPING, frame(data, event="typing"), target=membership.id)


def held_decided(message: Message, approved: bool) -> Event:
    """The host approved or declined a held message: a named ``held`` event for its author's streams only.

    Approved, the message itself follows for everyone (``message_posted``); the author's page
    drops it from their "waiting for the host" list. Declined, that list says so.
    """
    data = json.dumps({"id": message.id, "outcome": "approved" if approved else "declined"})
    return Event(EventKind.HELD, frame(data, event="held"), target=message.membership_id)


def tab_departed(membership_id: int, tab: str) -> Event:
    """A tab of seat ``membership_id`` is closing (its page said so): that tab's stream ends at once."""
    return Event(EventKind.DEPART, tab.encode(), target=membership_id)


def closing(notice: str) -> bytes:
    """The last words of a stream: a visible notice, then the ``close`` event the page stops on.

    ``notice`` is ``ended`` (the room ended), one of ``SEAT_NOTICES`` (the seat was closed: ``removed``,
    ``banned`` for good, or ``left``), or ``signed_out`` (the host's sign-in ended: ``events.signed_out``).
    """
    return frame(fragment("chat/_notice.html", notice=notice)) + frame(notice, event="close")
