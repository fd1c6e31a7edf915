"""The caps on open event streams (``chatroom/stream.py``): per seat, per client address and per worker.

A seat may hold ``STREAMS_PER_SEAT`` streams (tabs and devices), an address ``STREAMS_PER_ADDRESS`` (generous:
a class shares one address), and a worker ``STREAMS_PER_WORKER`` (below its open-files limit, so ordinary pages
are still served when it is full; ``gunicorn.conf.py`` works it out). Over a cap the answer is ``429`` (seat,
address) or ``503`` (worker) with ``Retry-After`` and a sentence: a refusal the page treats as "live updates
unavailable for now", not a reason to retry at once (static/js/live.js).
"""

from __future__ import annotations

import resource
import threading
from collections import Counter
from typing import Any

from flask import Response, current_app

from .errors import render_error


class Slots:
    """Open streams of this process per seat, per address and in all, against the caps (module docstring)."""

    def __init__(self, per_seat: int, per_address: int, total: int) -> None:
        self.per_seat, self.per_address, self.total = per_seat, per_address, total
        self._lock = threading.Lock()
        self.seats: Counter[int] = Counter()
        self.addresses: Counter[str] = Counter()
        self.count = 0

    def take(self, seat: int, address: str) -> Ticket | str:
        """A ticket for one more stream, or why not: ``full``, ``seat`` or ``address``."""
        with self._lock:
            if self.count >= self.total:
                return "full"
            if self.seats[seat] >= self.per_seat:
                return "seat"
            if self.addresses[address] >= self.per_address:
                return "address"
            self.count += 1
            self.seats[seat] += 1
            self.addresses[address] += 1
        return Ticket(self, seat, address)

    def give_back(self, seat: int, address: str) -> None:
        """One stream of ``seat`` from ``address`` ended (``Ticket.release`` calls it, once)."""
        with self._lock:
            self.count -= 1
            self.seats[seat] -= 1
            if self.seats[seat] <= 0:
                del self.seats[seat]
            self.addresses[address] -= 1
            if self.addresses[address] <= 0:
                del self.addresses[address]


class Ticket:
    """One stream's place under the caps; given back exactly once, when the stream ends."""

    __slots__ = ("address", "done", "seat", "slots")

    def __init__(self, slots: Slots, seat: int, address: str) -> None:
        self.slots, self.seat, self.address, self.done = slots, seat, address, False

    def release(self) -> None:
        """Give the place back; a second call does nothing."""
        if not self.done:
            self.done = True
            self.slots.give_back(self.seat, self.address)


def worker_stream_limit(config: dict[str, Any]) -> int:
    """``STREAMS_PER_WORKER``, or (0) what the open-files limit leaves after room for ordinary requests."""
    configured = int(config.get("STREAMS_PER_WORKER") or 0)
    if configured > 0:
        return configured
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 100_000
    return max(soft - max(256, soft // 5), 16)


def slots() -> Slots:
    """This process's ``Slots`` for the current app, made from its configuration on first use."""
    app = current_app
    slots = app.extensions.get("chatroom.stream_slots")
    if slots is None:
        config = app.config
        slots = Slots(
            int(config.get("STREAMS_PER_SEAT", 6)),
            int(config.get("STREAMS_PER_ADDRESS", 500)),
            worker_stream_limit(config),
        )
        app.extensions["chatroom.stream_slots"] = slots
    return slots


REFUSALS = {
    "seat": (429, "This room is open in too many tabs or devices with your seat. Close one, then reload this page."),
    "address": (429, "Too many live connections come from your network. New messages still appear, a little later."),
    "full": (503, "The server is at capacity for live updates. New messages still appear, a little later."),
}


def refusal(reason: str) -> Response:
    """The refusal of a stream over a cap: its status, sentence and ``Retry-After`` (RFC 9110 §10.2.3)."""
    status, message = REFUSALS[reason]
    headers = {
        "Retry-After": str(int(current_app.config.get("STREAM_REFUSAL_RETRY_SECONDS", 60))),
        "Cache-Control": "no-store",
    }
    rendered = render_error(status, message, headers=headers)
    if isinstance(rendered, tuple):
        return Response(rendered[0], status=status, headers=headers)
    return rendered  # type: ignore[return-value]  # a plain-text answer: no page could be drawn
