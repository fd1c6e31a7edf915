"""Every write in Chatroom happens in this package.

Views parse a request and call one service function; the function checks the rules,
commits, and only *then* publishes to the broker (``_core.publish`` is the only way to
the broker from here). An event's HTML is rendered once, when it is published
(``chatroom/events.py``), and the same bytes go to every stream.

Import the modules and call through them: ``messages.post(seat, body, token)``,
``rooms.create(owner, data)``. The modules are ``accounts`` (facilitators), ``rooms``
(rooms and the settings the host changes), ``members`` (joining, leaving, removal,
typing), ``messages`` (posting, editing, reading by cursor), ``moderation``
(pre-moderation, reports, audit log) and ``export`` (transcripts, retention).

A refused call raises :class:`Invalid` before anything is written, or after rolling
its own transaction back: the caller's session is always clean afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Invalid(Exception):
    """A request the rules refuse: field name -> a human message, and the HTTP status to answer with."""

    errors: dict[str, str] = field(default_factory=dict)
    status: int = 422
    retry_after: int | None = None  # for a 429: whole seconds after which the same request is accepted

    def __str__(self) -> str:
        return "; ".join(self.errors.values())

    @property
    def message(self) -> str:
        """All the reasons as one sentence, for a page that has no field to put them beside."""
        return str(self)
