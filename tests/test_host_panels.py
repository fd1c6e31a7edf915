"""The host's approval queue and reports under load (issue 11): one small fragment per change, a capped list
with a count of the rest, a cap on what one participant may have waiting, and pages that converge.

The panels are applied the way htmx applies the stream's out-of-band fragments (``_Panel``), then compared
with the panels a fresh page shows."""

from __future__ import annotations

import re
import secrets

import pytest

from chatroom import events
from chatroom.events import EventKind
from chatroom.extensions import db
from chatroom.models import Membership, Message, MessageStatus, Room
from chatroom.services import members, messages, moderation, rooms
from support.constants import ROOM_PASSWORD

SHOWN = 5


class _Panel:
    """A host page's list of one panel (ids in order), its heading and note, changed as htmx changes them."""

    def __init__(self, html: str, panel: str) -> None:
        self.panel, self.prefix = panel, "queue-item" if panel == "queue" else "report-item"
        self.ids = re.findall(rf'<li id="{self.prefix}-(\d+)"', html)
        self.heading = self._one(html, f"host-{panel}-heading", "h2")
        self.note = self._one(html, f"host-{panel}-note", "p")

    @staticmethod
    def _one(html: str, element_id: str, tag: str) -> str:
        found = re.search(rf'<{tag} id="{element_id}"[^>]*>(.*?)</{tag}>', html, re.S)
        assert found, element_id
        return " ".join(re.sub(r"<[^>]+>", "", found.group(1)).split())

    def apply(self, fragment: str) -> None:
        for item_id in re.findall(rf'<li id="{self.prefix}-(\d+)" hx-swap-oob="delete">', fragment):
            self.ids.remove(item_id)
        for block in re.findall(rf'<ul hx-swap-oob="beforeend:#host-{self.panel}-list">(.*?)</ul>', fragment, re.S):
            self.ids += re.findall(rf'<li id="{self.prefix}-(\d+)"', block)
        if f'id="host-{self.panel}-heading" hx-swap-oob="true"' in fragment:
            self.heading = self._one(fragment, f"host-{self.panel}-heading", "h2")
            self.note = self._one(fragment, f"host-{self.panel}-note", "p")

    def state(self) -> tuple[list[str], str, str]:
        return self.ids, self.heading, self.note


@pytest.fixture
def world(app, make_room):
    """A pre-moderated room, its host's stream inbox, and three participants."""
    app.config.update(HOST_PANEL_SHOWN=SHOWN, PENDING_PER_PARTICIPANT=100)
    room = make_room()
    ctx = app.test_request_context()
    ctx.push()
    stored = db.session.get(Room, room.id)
    rooms.set_premoderation(stored, True)
    people = [members.join(stored, alias, ROOM_PASSWORD) for alias in ("Pat", "Kim", "Lee")]
    inbox = app.extensions["chatroom.broker"].subscribe(events.channel(room.id))
    yield stored, people, inbox
    inbox.close()
    db.session.remove()
    ctx.pop()


def _host_frames(inbox, count: int) -> list[str]:
    """The next ``count`` changes to the host's queue or reports panel (the data lines of each SSE frame, joined).

    Other host events (the room's controls, People rows) are not about these panels and are skipped.
    """
    frames = []
    while len(frames) < count:
        event = inbox.get(timeout=5)
        assert event is not None, f"only {len(frames)} of {count} host events came"
        if event.kind == EventKind.HOST:
            data = "\n".join(line[6:] for line in event.frame.decode().splitlines() if line.startswith("data: "))
            if "host-queue" in data or "host-reports" in data:
                frames.append(data)
    return frames


def _hold(person: Membership, text: str) -> Message:
    message, _ = messages.post(person, text, secrets.token_hex(16))
    assert message.status == MessageStatus.PENDING.value
    return message


def test_each_held_message_costs_one_small_fragment_however_long_the_queue(world):
    """Issue 11: 383 held messages pushed 202 MB down the host's stream, each fragment the whole queue (1.15 MB
    at the end). Now a fragment holds at most the one new item, and the page lists the oldest SHOWN."""
    room, people, inbox = world
    page = moderation.host_panels(room)
    queue = _Panel(page, "queue")
    held = [_hold(people[i % 3], f"held message number {i} " + "x" * 200) for i in range(4 * SHOWN)]
    frames = _host_frames(inbox, len(held))
    for frame in frames:
        queue.apply(frame)
        assert frame.count('<li id="queue-item-') <= 1
    assert max(len(f) for f in frames) < 2 * len(frames[0])  # the last is no bigger than the first, give or take
    assert all("queue-item" in f for f in frames[:SHOWN]) and not any("queue-item" in f for f in frames[SHOWN:])
    assert queue.state() == _Panel(moderation.host_panels(room), "queue").state()
    assert queue.ids == [str(m.id) for m in held[:SHOWN]]
    assert queue.heading == f"Waiting for approval ({4 * SHOWN})"
    assert queue.note.startswith(f"And {3 * SHOWN} more waiting")


def test_approving_and_rejecting_remove_one_item_and_bring_the_next_into_view(world):
    room, people, inbox = world
    held = [_hold(people[i % 3], f"m{i}") for i in range(SHOWN + 2)]
    _host_frames(inbox, len(held))
    queue = _Panel(moderation.host_panels(room), "queue")
    moderation.approve(room, held[0].id)
    moderation.reject(room, held[3].id)
    for frame in _host_frames(inbox, 2):
        assert frame.count('hx-swap-oob="delete"') == 1 and frame.count('<li id="queue-item-') == 2
        queue.apply(frame)
    assert queue.ids == [str(m.id) for m in held[1:3] + held[4 : SHOWN + 2]]
    assert queue.state() == _Panel(moderation.host_panels(room), "queue").state()
    assert queue.heading == f"Waiting for approval ({SHOWN})" and queue.note == ""
    for message in held[1:3] + held[4 : SHOWN + 2]:
        moderation.reject(room, message.id)
    for frame in _host_frames(inbox, SHOWN):
        queue.apply(frame)
    assert queue.state() == ([], "Waiting for approval (0)", "No messages are waiting.")


def test_reports_travel_one_at_a_time_too(world):
    room, people, inbox = world
    rooms.set_premoderation(room, False)
    posted = [messages.post(people[0], f"said {i}", secrets.token_hex(16))[0] for i in range(SHOWN + 1)]
    reports = _Panel(moderation.host_panels(room), "reports")
    for message in posted:
        moderation.report(people[1], message, "rude")
        moderation.report(people[2], message, "")
    frames = _host_frames(inbox, 2 * len(posted))
    for frame in frames:
        reports.apply(frame)
        assert frame.count('<li id="report-item-') <= 1
    assert reports.state() == _Panel(moderation.host_panels(room), "reports").state()
    moderation.remove_message(room, posted[0])  # resolves both its reports at once
    moderation.dismiss_report(room, moderation.panels(room)["reports"][0].id)
    for frame in _host_frames(inbox, 2):
        reports.apply(frame)
    assert reports.state() == _Panel(moderation.host_panels(room), "reports").state()
    assert reports.heading == f"Reports ({2 * len(posted) - 3})"


def test_a_participant_may_have_only_so_many_messages_waiting(app, world):
    room, people, _ = world
    app.config["PENDING_PER_PARTICIPANT"] = 3
    for i in range(3):
        _hold(people[0], f"waiting {i}")
    with pytest.raises(messages.Invalid) as refused:
        messages.post(people[0], "one more", secrets.token_hex(16))
    assert refused.value.status == 429
    assert "3 messages waiting for the host's approval" in refused.value.errors["body"]
    _hold(people[1], "someone else may")  # the cap is per participant
    first = moderation.panels(room)["pending"][0]
    moderation.approve(room, first.id)
    _hold(people[0], "room again")  # one was approved: there is room again


def test_the_pages_show_the_capped_panels(app, hosted_pages):
    host, code = hosted_pages
    console = host.get(f"/rooms/{code}").get_data(as_text=True)
    in_room = host.get(f"/r/{code}").get_data(as_text=True)
    for page in (console, in_room):
        assert page.count('<li id="queue-item-') == SHOWN
        assert f"Waiting for approval ({SHOWN + 3})" in page and "And 3 more waiting" in page


@pytest.fixture
def hosted_pages(app, signed_in, make_room):
    app.config.update(HOST_PANEL_SHOWN=SHOWN, PENDING_PER_PARTICIPANT=100)
    host, facilitator = signed_in()
    room = make_room(owner=facilitator)
    with app.test_request_context():
        stored = db.session.get(Room, room.id)
        rooms.set_premoderation(stored, True)
        pat = members.join(stored, "Pat", ROOM_PASSWORD)
        for i in range(SHOWN + 3):
            _hold(pat, f"held {i}")
        db.session.remove()
    return host, room.code
