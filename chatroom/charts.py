"""A picture of a session: messages per five minutes, and who took part, as numbers and as chart geometry.

The charts are drawn on the server, as SVG written by two small templates (``rooms/_chart_activity.html``,
``rooms/_chart_people.html``), for the owner page and the printable transcript: no script and no chart
library in the browser, and each chart sits beside a table of the same numbers (the text alternative, for
screen readers and for copying). This module only counts and lays out; the templates draw.

Why templates rather than a plotting library: the charts are a row of bars and a few labels, which is
a few dozen lines of SVG; a library (matplotlib, pygal) would add megabytes to the dyno for them, draw its
own fonts and colours (ours come from the page's CSS, so both themes and print work), and make the
accessible markup (``role="img"``, a title and a summary, the table) harder to control.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from .extensions import db
from .models import Membership, Message, MessageStatus, Room, utcnow

BUCKET = timedelta(minutes=5)
MAX_BUCKETS = 24 * 12  # a day: longer sessions show their last day (the transcript keeps everything)

# Geometry of the activity chart, in SVG user units (it scales to its box).
BAR_WIDTH = 12
BAR_GAP = 4
PLOT_HEIGHT = 120
LEFT = 32  # room for the count labels
BOTTOM = 22  # room for the time labels
TOP = 8


@dataclass(frozen=True, slots=True)
class Bucket:
    """Five minutes of a session: when they start (UTC) and how many messages appeared in them."""

    start: datetime
    count: int


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of the activity chart: its box, and the bucket it stands for."""

    x: float
    y: float
    width: float
    height: float
    bucket: Bucket


@dataclass(frozen=True, slots=True)
class Tick:
    """A labelled line on an axis: ``at`` in SVG units, ``label`` its text."""

    at: float
    label: str


@dataclass(frozen=True, slots=True)
class ActivityChart:
    """Everything ``rooms/_chart_activity.html`` draws: the bars, the axes' ticks, the size and a summary."""

    buckets: list[Bucket]
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    width: float
    height: float
    plot_bottom: float
    total: int
    busiest: Bucket | None


@dataclass(frozen=True, slots=True)
class Participant:
    """One person's part in a session: messages sent (``count``), and the first and last time they were seen
    (joining, posting or leaving); ``share`` is their count as a fraction of the busiest person's."""

    seat: Membership
    count: int
    first: datetime
    last: datetime
    share: float


def _shown_times(room: Room) -> list[datetime]:
    shown = func.coalesce(Message.published_at, Message.created_at)
    query = select(shown).where(Message.room_id == room.id, Message.status == MessageStatus.PUBLISHED.value)
    return [moment for moment in db.session.scalars(query.order_by(shown)) if moment is not None]


def activity(room: Room, now: datetime | None = None) -> list[Bucket]:
    """Messages per five minutes from the room's start to its end (or to ``now``, while it runs).

    A session that has not started has no buckets. At most ``MAX_BUCKETS``: the latest ones.
    """
    now = now or utcnow()
    end = min(now, room.ends_at)
    if end <= room.starts_at:
        return []
    count = min(MAX_BUCKETS, int((end - room.starts_at) / BUCKET) + 1)
    first = room.starts_at + BUCKET * (int((end - room.starts_at) / BUCKET) + 1 - count)
    counts = [0] * count
    for moment in _shown_times(room):
        index = int((moment - first) / BUCKET)
        if 0 <= index < count:
            counts[index] += 1
    return [Bucket(first + BUCKET * i, n) for i, n in enumerate(counts)]


def _nice_top(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that is at least ``value`` (a round top for the axis)."""
    power = 1
    while True:
        for step in (1, 2, 5):
            if power * step >= value:
                return power * step
        power *= 10


def activity_chart(room: Room, buckets: list[Bucket]) -> ActivityChart:
    """Lay out ``buckets`` as bars: heights scaled to a round maximum, a tick for 0, half and the top,
    and a time label (in the room's zone) every half hour, or on the first bar of a short session."""
    peak = max((b.count for b in buckets), default=0)
    top = _nice_top(max(peak, 1))
    width = LEFT + len(buckets) * (BAR_WIDTH + BAR_GAP) + BAR_GAP
    bottom = TOP + PLOT_HEIGHT
    bars = []
    for i, bucket in enumerate(buckets):
        height = PLOT_HEIGHT * bucket.count / top
        x = LEFT + BAR_GAP + i * (BAR_WIDTH + BAR_GAP)
        bars.append(Bar(x, bottom - height, BAR_WIDTH, height, bucket))
    y_ticks = [Tick(bottom - PLOT_HEIGHT * value / top, str(value)) for value in sorted({0, top // 2, top})]
    every = 6 if len(buckets) <= 48 else 12  # half-hourly, or hourly on long sessions
    x_ticks = [
        Tick(bar.x + BAR_WIDTH / 2, room.local(bar.bucket.start).strftime("%H:%M"))
        for i, bar in enumerate(bars)
        if i % every == 0
    ]
    busiest = max(buckets, key=lambda b: b.count) if peak else None
    total = sum(b.count for b in buckets)
    return ActivityChart(buckets, bars, y_ticks, x_ticks, width, bottom + BOTTOM, bottom, total, busiest)


def participation(room: Room) -> list[Participant]:
    """Everyone who joined (the host's seat only if it posted), most messages first, then by alias.

    First seen is when they joined; last seen is the latest of their last message and their leaving.
    """
    shown = func.coalesce(Message.published_at, Message.created_at)
    stats = {
        seat_id: (count, last)
        for seat_id, count, last in db.session.execute(
            select(Message.membership_id, func.count(), func.max(shown))
            .where(Message.room_id == room.id, Message.status == MessageStatus.PUBLISHED.value)
            .group_by(Message.membership_id)
        )
    }
    seats = db.session.scalars(select(Membership).where(Membership.room_id == room.id))
    rows = []
    for seat in seats:
        count, last_message = stats.get(seat.id, (0, None))
        if seat.is_host and not count:
            continue
        moments = [m for m in (seat.joined_at, last_message, seat.left_at) if m is not None]
        rows.append((seat, int(count), seat.joined_at, max(moments)))
    peak = max((count for _, count, _, _ in rows), default=0) or 1
    people = [Participant(seat, count, first, last, count / peak) for seat, count, first, last in rows]
    return sorted(people, key=lambda p: (-p.count, p.seat.alias_key))


def counts_by_seat(room: Room) -> dict[int, int]:
    """Messages shown per seat id (the host's People list)."""
    query = (
        select(Message.membership_id, func.count())
        .where(Message.room_id == room.id, Message.status == MessageStatus.PUBLISHED.value)
        .group_by(Message.membership_id)
    )
    return {seat_id: int(count) for seat_id, count in db.session.execute(query)}
