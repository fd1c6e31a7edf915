"""Rooms: creating, editing, settings the host changes while it runs, and deleting."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import events, passwords
from ..extensions import db
from ..models import Facilitator, Membership, Room, RoomStatus, utcnow
from ..presence import current_presence
from ..text import Limit, clean_line, is_number, key_of, length, problem, truncate
from . import Invalid
from ._core import audit, host_name, publish, refuses_cleanly
from .search import DEFAULT_LANGUAGE, LANGUAGE_NAMES, LANGUAGES

ALIAS_MAX = 32
TITLE_MAX = 120
ROOM_PASSWORD_MIN = 4
SLOW_MODE_MAX = 3600
YEARS = (2000, 2200)  # beyond these, times overflow when moved to UTC, and nobody means them
RETENTION_MAX = 3650
TITLE = Limit(
    label="The title",
    maximum=TITLE_MAX,
    empty=f"Enter a title of 1 to {TITLE_MAX} characters",
    too_long="Enter a title of 1 to {maximum} characters (it has {count})",
    storage=120,  # Room.title and title_key hold 120 code points
)


@dataclass
class RoomInput:
    title: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    password: str | None  # None on edit: keep the current password
    search_language: str = DEFAULT_LANGUAGE  # a PostgreSQL text search configuration (services/search.py)


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """The IANA zones to offer (``Area/Location`` names and UTC), sorted; every IANA name is accepted."""
    legacy = ("Etc/", "SystemV/", "US/", "Canada/", "Mexico/", "Brazil/", "Chile/", "posix", "right/")
    names = {n for n in available_timezones() if "/" in n and not n.startswith(legacy)}
    return ("UTC", *sorted(names))


# In the tz database but not places: the server's own zone, and a placeholder meaning "no zone set".
NOT_PLACES = frozenset({"localtime", "Factory"})


def _zone(name: str) -> ZoneInfo | None:
    """The IANA zone ``name`` (a place, or UTC); None for anything else, ``localtime`` and ``Factory`` too."""
    if name in NOT_PLACES or (name != "UTC" and name not in available_timezones()):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _wall(moment: datetime, tz: ZoneInfo) -> datetime:
    """``moment`` as a naive wall-clock time in ``tz``."""
    return moment.astimezone(tz).replace(tzinfo=None)


def _transition(naive: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Around a gap or an overlap at ``naive``: the wall-clock times just before and just after the change."""
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    low, high = min(first, second), max(first, second)
    offset = low.astimezone(tz).utcoffset()
    moment = low
    while moment <= high and moment.astimezone(tz).utcoffset() == offset:  # minutes: a gap is at most a day
        moment += timedelta(minutes=1)
    return _wall(moment - timedelta(minutes=1), tz) + timedelta(minutes=1), _wall(moment, tz)


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def _day(moment: datetime) -> str:
    return moment.strftime("%A %-d %B %Y")


def _offset_name(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    sign, minutes = ("+" if offset >= timedelta(0) else "-"), abs(int(offset.total_seconds())) // 60
    return f"{moment.tzname()}, UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def fold_choices(raw: str, tz_name: str) -> list[tuple[str, str]]:
    """For a wall-clock time that happens twice in ``tz_name`` (the autumn overlap): the two meanings, as
    (fold value, label) pairs for the form to ask which; empty for any other time."""
    tz = _zone(tz_name.strip() or "UTC")
    try:
        naive = datetime.fromisoformat(raw.strip())
    except ValueError:
        return []
    if tz is None or naive.tzinfo is not None or not YEARS[0] <= naive.year <= YEARS[1]:
        return []
    first, second = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset() or _wall(first.astimezone(UTC), tz) != naive:
        return []  # one meaning, or none (the spring gap)
    return [
        ("0", f"The first {_clock(naive)} ({_offset_name(first)}), before the clocks go back"),
        ("1", f"The second {_clock(naive)} ({_offset_name(second)}), after the clocks go back"),
    ]


def local_moment(naive: datetime, tz: ZoneInfo, tz_name: str, fold: str | None, field: str) -> datetime:
    """The instant a wall-clock time in ``tz`` means, refusing one that does not exist or that needs a choice.

    A time in the spring gap never shows on a clock there: refused, with what it would otherwise mean.
    A time in the autumn overlap shows twice: ``fold`` ("0" the first, "1" the second) says which.

    :raise Invalid 422: the time falls in a gap, or in an overlap with no ``fold``.
    """
    first, second = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    before, after = _transition(naive, tz)
    if _wall(first.astimezone(UTC), tz) != naive:  # not on any clock: the spring gap
        meant = _wall(first.astimezone(UTC), tz)
        raise Invalid(
            {
                field: (
                    f"{_clock(naive)} does not exist on {_day(naive)} in {tz_name}: the clocks go forward from "
                    f"{_clock(before)} to {_clock(after)}. It would mean {_clock(meant)}; choose a time before "
                    f"{_clock(before)} or from {_clock(after)}"
                )
            }
        )
    if fold not in ("0", "1"):
        raise Invalid(
            {
                f"{field}_fold": (
                    f"{_clock(naive)} happens twice on {_day(naive)} in {tz_name}: the clocks go back from "
                    f"{_clock(before)} to {_clock(after)}. Choose which {_clock(naive)} you mean"
                )
            }
        )
    return second if fold == "1" else first


def parse_form(form: Mapping[str, str], *, editing: bool) -> RoomInput:
    """Read and check the room form; times are read in the room's time zone and compared as instants.

    A time that does not exist in the zone (the spring gap) is refused with what it would mean; one that
    happens twice (the autumn overlap) needs ``starts_at_fold``/``ends_at_fold`` ("0" the first, "1" the
    second). A new room may not end in the past. ``search_language`` is one of ``search.LANGUAGES``
    ("simple" when left out or empty).

    :raise Invalid 422: with a message per field that is wrong.
    """
    errors: dict[str, str] = {}
    raw_title = form.get("title", "")
    title = clean_line(raw_title)
    wrong_title = problem(raw_title, title, TITLE, key=key_of(title))
    if wrong_title:
        errors["title"] = wrong_title
    tz_name = form.get("timezone", "").strip() or "UTC"
    tz = _zone(tz_name)
    if tz is None:
        errors["timezone"] = "Choose a time zone name like Europe/Paris or America/New_York from the list"
    times: dict[str, datetime] = {}
    for name, label in (("starts_at", "start"), ("ends_at", "end")):
        raw = form.get(name, "").strip()
        try:
            naive = datetime.fromisoformat(raw)
            if naive.tzinfo is not None:
                raise ValueError
        except ValueError:
            errors[name] = f"Enter the {label} date and time, like 2026-12-01 14:30"
            continue
        if not YEARS[0] <= naive.year <= YEARS[1]:
            errors[name] = f"The {label} must fall between the years {YEARS[0]} and {YEARS[1]}"
            continue
        if tz is None:
            continue
        try:
            times[name] = local_moment(naive, tz, tz_name, form.get(f"{name}_fold"), name)
        except Invalid as invalid:
            errors.update(invalid.errors)
    if "starts_at" in times and "ends_at" in times:
        start, end = times["starts_at"].astimezone(UTC), times["ends_at"].astimezone(UTC)
        if end <= start:
            errors["ends_at"] = "The end must be after the start"
        elif not editing and end <= utcnow():
            assert tz is not None
            now = utcnow().astimezone(tz)
            errors["ends_at"] = (
                f"That end, {_clock(_wall(end, tz))} on {_day(_wall(end, tz))} in {tz_name}, has already passed: "
                f"it is {_clock(now)} on {_day(now)} there now. Check the time zone and the times"
            )
    password = form.get("password", "")
    room_password: str | None = None
    if editing and not password:
        room_password = None
    elif not ROOM_PASSWORD_MIN <= len(password) <= 128:
        errors["password"] = f"Choose a room password of {ROOM_PASSWORD_MIN} to 128 characters"
    else:
        room_password = password
    language = form.get("search_language", "").strip() or DEFAULT_LANGUAGE
    if language not in LANGUAGES:
        names = ", ".join(LANGUAGES)
        errors["search_language"] = f"Choose a search language from the list: one of {names}"
    if errors:
        raise Invalid(errors)
    return RoomInput(
        title,
        times["starts_at"].astimezone(UTC),
        times["ends_at"].astimezone(UTC),
        tz_name,
        room_password,
        language,
    )


def language_choices() -> list[tuple[str, str]]:
    """The search languages the room form offers: (value, what a person reads), the default first."""
    return list(LANGUAGE_NAMES.items())


def _check_title_free(owner_id: int, key: str, room_id: int | None = None) -> None:
    query = select(Room.id).where(Room.owner_id == owner_id, Room.title_key == key)
    if room_id is not None:
        query = query.where(Room.id != room_id)
    if db.session.scalar(query):
        raise Invalid({"title": "You already have a room with this title: choose another"}, 409)


def _host_alias(name: str) -> str:
    """The owner's alias in their room: their name, cut to ``ALIAS_MAX`` whole characters that fit the column."""
    alias = truncate(name, ALIAS_MAX)
    while len(alias) > 64 or len(key_of(alias)) > 64:  # Membership.alias and alias_key hold 64 code points
        alias = truncate(alias, length(alias) - 1)
    return alias


@refuses_cleanly
def create(owner: Facilitator, data: RoomInput) -> Room:
    """Create a room and the owner's host seat in it.

    :raise Invalid 409: the owner already has a room with this title.
    """
    key = key_of(data.title)
    _check_title_free(owner.id, key)
    assert data.password is not None
    room = Room(
        code=passwords.room_code(),
        owner=owner,
        title=data.title,
        title_key=key,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        timezone=data.timezone,
        password_hash=passwords.hash(data.password),
        search_language=data.search_language,
    )
    alias = _host_alias(owner.name)
    room.memberships.append(Membership(alias=alias, alias_key=key_of(alias), is_host=True, facilitator_id=owner.id))
    db.session.add(room)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Invalid({"title": "You already have a room with this title: choose another"}, 409) from None
    return room


@refuses_cleanly
def update(room: Room, data: RoomInput) -> Room:
    """Change a room's title, times, time zone and (when given) password.

    :raise Invalid 409: the owner already has another room with this title.
    """
    key = key_of(data.title)
    _check_title_free(room.owner_id, key, room.id)
    changes = []
    if room.title != data.title:
        changes.append(f"title “{data.title}”")
    if room.starts_at != data.starts_at or room.ends_at != data.ends_at or room.timezone != data.timezone:
        changes.append("schedule")
    if data.password is not None:
        changes.append("password")
        room.password_hash = passwords.hash(data.password)
    if room.search_language != data.search_language:
        changes.append(f"search language {data.search_language}")
        room.search_language = data.search_language
    room.title, room.title_key = data.title, key
    room.starts_at, room.ends_at, room.timezone = data.starts_at, data.ends_at, data.timezone
    audit(room, host_name(room), "room edited", ", ".join(changes) or "no change")
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Invalid({"title": "You already have a room with this title: choose another"}, 409) from None
    _announce_settings(room)
    return room


def _announce_settings(room: Room) -> None:
    """Tell open streams the room changed: the end time they wait for, a visible notice, the host's controls."""
    publish(room, events.room_changed(room))
    publish(room, events.host_controls_changed(room))


def _save_setting(room: Room, action: str, detail: str = "") -> Room:
    audit(room, host_name(room), action, detail)
    db.session.commit()
    _announce_settings(room)
    return room


@refuses_cleanly
def set_locked(room: Room, locked: bool) -> Room:
    """Lock the room (read-only for participants) or unlock it."""
    room.locked = locked
    return _save_setting(room, "room locked" if locked else "room unlocked")


@refuses_cleanly
def end_now(room: Room) -> Room:
    """End the room at once: open streams close, nobody can join or post.

    :raise Invalid 409: it has already ended.
    """
    now = utcnow()
    if room.status(now) is RoomStatus.ENDED:
        raise Invalid({"room": "This room has already ended"}, 409)
    room.ends_at = max(now, room.starts_at + timedelta(seconds=1))
    return _save_setting(room, "room ended early")


@refuses_cleanly
def extend(room: Room, minutes: str) -> Room:
    """Move the end time later by a number of minutes (from now, if it already ended).

    :raise Invalid 422: not a whole number of minutes from 1 to 1440.
    """
    if not is_number(minutes.strip()) or not 1 <= int(minutes) <= 1440:
        raise Invalid({"minutes": "Enter a number of minutes from 1 to 1440"})
    base = max(room.ends_at, utcnow())
    if base.year >= YEARS[1]:
        raise Invalid({"minutes": "This room already ends as late as it can"})
    room.ends_at = base + timedelta(minutes=int(minutes))
    return _save_setting(room, "end time extended", f"by {int(minutes)} minutes")


@refuses_cleanly
def set_slow_mode(room: Room, seconds: str) -> Room:
    """One message per N seconds per participant (0 turns it off).

    :raise Invalid 422: not a whole number of seconds from 0 to 3600.
    """
    if not is_number(seconds.strip()) or int(seconds) > SLOW_MODE_MAX:
        raise Invalid({"seconds": f"Enter a number of seconds from 0 (off) to {SLOW_MODE_MAX}"})
    room.slow_mode_seconds = int(seconds)
    detail = f"{room.slow_mode_seconds} s" if room.slow_mode_seconds else "off"
    return _save_setting(room, "slow mode", detail)


@refuses_cleanly
def set_premoderation(room: Room, enabled: bool) -> Room:
    """Hold participants' messages for the host's approval, or stop doing so."""
    room.premoderation = enabled
    return _save_setting(room, "pre-moderation on" if enabled else "pre-moderation off")


@refuses_cleanly
def set_retention(room: Room, days: str) -> Room:
    """Delete the room's messages N days after it ends (empty keeps them).

    :raise Invalid 422: not a whole number of days from 0 to 3650.
    """
    days = days.strip()
    if days and (not is_number(days) or int(days) > RETENTION_MAX):
        raise Invalid({"days": f"Enter a number of days from 0 to {RETENTION_MAX}, or leave it empty to keep messages"})
    room.retention_days = int(days) if days else None
    detail = f"{room.retention_days} days after the end" if days else "keep"
    return _save_setting(room, "retention", detail)


@refuses_cleanly
def delete(room: Room, confirmation: str) -> None:
    """Delete a room with all its members, messages, reports and audit log.

    :raise Invalid 422: the typed confirmation is not the room's title.
    """
    if key_of(confirmation) != room.title_key:
        raise Invalid({"confirm": "Type the room's title exactly to confirm"})
    room_id = room.id
    db.session.delete(room)
    db.session.commit()
    current_presence().forget(room_id)
    publish(room_id, events.room_deleted(room_id))
