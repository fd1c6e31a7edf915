"""A real class, a real session (issue 17), at the service and view level: everyone gets in, nothing typed is
lost, times mean what they say, every page knows the room's state, presence is true, and the small things a
facilitator expects. The browser journeys are in tests/test_browser_session.py."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from chatroom import create_app
from chatroom.events import EventKind, held_decided, room_state_html, tab_departed, typing
from chatroom.extensions import db
from chatroom.links import linkify
from chatroom.models import Facilitator, Membership, Message, Room, utcnow
from chatroom.presence import MemoryPresence, RedisPresence, current_presence, roster
from chatroom.services import Invalid, members, rooms
from support.app import empty_database, make_config
from support.clients import Client, form_token
from support.constants import BACKEND, PASSWORD, ROOM_PASSWORD

once = pytest.mark.once


def page(response) -> str:
    return response.get_data(as_text=True)


def _limited(database_url, redis_url, **overrides):
    app = create_app(make_config(database_url, redis_url, RATELIMIT_ENABLED=True, **overrides))
    with app.app_context():
        empty_database(app)
        app.extensions["chatroom.limiter"].reset()
    app.test_client_class = Client
    return app


@pytest.fixture
def limited_app(_schema, database_url, redis_url):
    """Production limits on, shared through Redis on the services backend, as tests/test_limits.py builds it."""
    app = _limited(database_url, redis_url)
    yield app
    app.extensions["chatroom.broker"].close()
    app.extensions["chatroom.presence"].close()


def _from(address: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


def _join(client, room, alias, password=ROOM_PASSWORD, address="127.0.0.1"):
    return client.form(f"/r/{room.code}/join", {"alias": alias, "password": password}, **_from(address))


def _room_form(title):
    """A room form the server accepts (refused ones do not count against the hourly room limit)."""
    start = datetime.now(UTC) + timedelta(hours=1)
    fmt = "%Y-%m-%dT%H:%M"
    return {
        "title": title,
        "timezone": "UTC",
        "starts_at": start.strftime(fmt),
        "ends_at": (start + timedelta(hours=1)).strftime(fmt),
        "password": ROOM_PASSWORD,
    }


def _seat_id(app, room, alias, active=True):
    with app.app_context():
        query = select(Membership.id).where(Membership.room_id == room.id, Membership.alias == alias)
        if active:
            query = query.where(Membership.left_at.is_(None))
        return db.session.scalar(query.order_by(Membership.id.desc()))


def _room_with(limited_app, make_facilitator):
    """A room in the limited app (the factories' app is another one, on the same database)."""
    owner = make_facilitator()
    with limited_app.app_context():
        start = utcnow() - timedelta(minutes=10)
        room = rooms.create(
            db.session.get(Facilitator, owner.id),
            rooms.RoomInput("Class", start, start + timedelta(hours=2), "UTC", ROOM_PASSWORD),
        )
        db.session.refresh(room)
        db.session.expunge_all()
        return room, owner


# -- everyone gets in ---------------------------------------------------------------------------------------


def test_a_class_of_60_behind_one_address_all_get_in(limited_app, make_facilitator):
    """Sixty students from one school address within two minutes, a few mistyping the password first."""
    room, _ = _room_with(limited_app, make_facilitator)
    statuses = []
    for n in range(60):
        student = limited_app.test_client()
        if n % 10 == 0:
            assert _join(student, room, f"Student {n}", "wrong guess").status_code == 403
        statuses.append(_join(student, room, f"Student {n}").status_code)
    assert statuses == [303] * 60


def test_only_wrong_passwords_count_and_never_against_a_right_one_elsewhere(limited_app, make_facilitator, monkeypatch):
    from chatroom import passwords

    room, _ = _room_with(limited_app, make_facilitator)
    # A stranger guesses from many other addresses: a real participant is not kept out.
    for n in range(40):
        assert _join(limited_app.test_client(), room, "Mallory", "guess", f"10.0.{n // 10}.{n}").status_code == 403
    assert _join(limited_app.test_client(), room, "Real", address="10.9.9.9").status_code == 303
    # One browser guessing is stopped after ten, before any bcrypt work, even with the right password then.
    guesser = limited_app.test_client()
    for _ in range(10):
        assert _join(guesser, room, "Mallory", "guess", "10.1.1.1").status_code == 403
    calls = []
    real_check = passwords.check
    monkeypatch.setattr(passwords, "check", lambda *a: calls.append(a) or real_check(*a))
    refused = _join(guesser, room, "Mallory", address="10.1.1.1")
    assert refused.status_code == 429 and calls == []
    assert int(refused.headers["Retry-After"]) > 0
    html = page(refused)
    assert 'value="Mallory"' in html  # what was typed is kept
    assert re.search(r"Wait \d+ seconds?, then try again", html)
    # A classmate in another browser at the same address still gets in with the right password.
    assert _join(limited_app.test_client(), room, "Classmate", address="10.1.1.1").status_code == 303


def test_an_address_full_of_wrong_passwords_is_stopped_but_a_returning_participant_is_not(
    limited_app, make_facilitator
):
    room, _ = _room_with(limited_app, make_facilitator)
    returning = limited_app.test_client()
    assert _join(returning, room, "Returning", address="10.2.2.2").status_code == 303
    assert returning.form(f"/r/{room.code}/leave", **_from("10.2.2.2")).status_code == 303
    for n in range(30):  # a fresh browser for each guess, all from one address
        assert _join(limited_app.test_client(), room, f"Bot {n}", "guess", "10.2.2.2").status_code == 403
    assert _join(limited_app.test_client(), room, "Bot 31", "guess", "10.2.2.2").status_code == 429
    assert _join(returning, room, "Returning", address="10.2.2.2").status_code == 303  # it has been here


def test_sign_in_counts_only_failures_per_account_and_address(limited_app, make_facilitator):
    teachers = [make_facilitator() for _ in range(3)]
    for _ in range(5):  # a staff room signing in and out all day from one address
        for teacher in teachers:
            client = limited_app.test_client()
            assert client.form("/login", {"email": teacher.email, "password": PASSWORD}).status_code == 303
    client = limited_app.test_client()
    for _ in range(10):
        assert client.form("/login", {"email": teachers[0].email, "password": "wrong one!"}).status_code == 403
    refused = client.form("/login", {"email": teachers[0].email, "password": PASSWORD})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert f'value="{teachers[0].email}"' in page(refused)
    other = limited_app.test_client()  # another teacher, same address, is not kept out
    assert other.form("/login", {"email": teachers[1].email, "password": PASSWORD}).status_code == 303


def test_a_workshop_signs_up_from_one_address(limited_app):
    for n in range(15):
        client = limited_app.test_client()
        data = {"email": f"teacher{n}@example.org", "name": f"Teacher {n}", "password": PASSWORD}
        assert client.form("/signup", data).status_code == 303


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@once
def test_every_429_carries_a_retry_after_that_lets_the_same_request_through(
    _schema, database_url, make_facilitator, monkeypatch
):
    """For every limited endpoint: hammer it to a 429, wait exactly Retry-After (on a clock moved by hand), send
    the same request again: it is not refused. Counters in memory, so the clock moves them too."""
    app = _limited(database_url, None, RATELIMIT_STORAGE_URI="memory://")
    clock = FakeClock()
    monkeypatch.setattr(time, "time", clock)
    owner = make_facilitator()
    with app.app_context():
        start = utcnow() - timedelta(minutes=10)
        room = rooms.create(
            db.session.get(Facilitator, owner.id),
            rooms.RoomInput("Limits", start, start + timedelta(hours=2), "UTC", ROOM_PASSWORD),
        )
        code = room.code
    pat = app.test_client()
    assert _join(pat, room, "Pat").status_code == 303
    kim = app.test_client()
    assert _join(kim, room, "Kim").status_code == 303
    host = app.test_client()
    assert host.form("/login", {"email": owner.email, "password": PASSWORD}).status_code == 303
    kim.form(f"/r/{code}/messages", {"body": "report me", "token": "e" * 32})
    pat_id = _seat_id(app, room, "Pat")
    careful = make_facilitator()  # with two-factor sign-in on, waiting for its code
    with app.app_context():
        db.session.get(Facilitator, careful.id).totp_secret = pyotp.random_base32()
        db.session.commit()
    second_step = app.test_client()
    assert second_step.form("/login", {"email": careful.email, "password": PASSWORD}).location.endswith("/login/code")
    tokens = iter(range(10_000))
    requests = {
        "auth.login_code": (second_step, "/login/code", lambda: {"code": "000000"}),
        "auth.login": (app.test_client(), "/login", lambda: {"email": "x@example.org", "password": "wrong one!"}),
        "auth.signup": (
            app.test_client(),
            "/signup",
            lambda: {"email": f"n{next(tokens)}@example.org", "name": "N", "password": PASSWORD},
        ),
        "auth.forgot_password": (app.test_client(), "/password/forgot", lambda: {"email": "x@example.org"}),
        "auth.reset_password": (app.test_client(), "/password/reset/nonsense", lambda: {"password": PASSWORD * 2}),
        "auth.change_password": (host, "/account/password", lambda: {"current_password": "no", "password": "x"}),
        "chat.join": (app.test_client(), f"/r/{code}/join", lambda: {"alias": "M", "password": "guess"}),
        "chat.post": (pat, f"/r/{code}/messages", lambda: {"body": "hi", "token": f"{next(tokens):032x}"}),
        "chat.typing": (pat, f"/r/{code}/typing", dict),
        "chat.report_message": (pat, f"/r/{code}/messages/1/report", lambda: {"reason": "rude"}),
        "chat.here": (pat, f"/r/{code}/presence", lambda: {"tab": "abcdefgh12", "state": "away"}),
        "auth.two_factor_disable": (host, "/account/two-factor/disable", lambda: {"disable_password": "no"}),
        "auth.recovery_codes": (host, "/account/recovery-codes", lambda: {"codes_password": "no"}),
        "rooms.create": (host, "/rooms/", lambda: _room_form(f"Room {next(tokens)}")),
        "participation.react": (kim, f"/r/{code}/messages/1/react", lambda: {"emoji": "heart"}),
        "participation.vote": (pat, f"/r/{code}/messages/1/vote", dict),
        "participation.send_note": (pat, f"/r/{code}/private", lambda: {"note": f"a word {next(tokens)}"}),
        "participation.reply_note": (host, f"/r/{code}/private/{pat_id}", lambda: {"note": f"hi {next(tokens)}"}),
        "participation.seen": (pat, f"/r/{code}/seen", lambda: {"seq": "1"}),
    }
    from chatroom.limits import LIMITS

    missing = set(LIMITS) - set(requests)
    assert not missing, f"add a request for {missing}"
    for endpoint, (client, url, data) in requests.items():
        if endpoint not in app.view_functions:
            continue
        statuses = []
        for _ in range(400):
            response = client.form(url, data())
            statuses.append(response.status_code)
            if response.status_code == 429:
                break
        assert statuses[-1] == 429, f"{endpoint} never refused: {statuses[-5:]}"
        wait = int(response.headers["Retry-After"])
        assert wait >= 1, endpoint
        assert int(response.headers["X-RateLimit-Reset"]) >= int(clock.now) + wait
        clock.now += wait
        again = client.form(url, data())
        assert again.status_code != 429, f"{endpoint}: refused again after Retry-After {wait}"
    app.extensions["chatroom.broker"].close()
    app.extensions["chatroom.presence"].close()


# -- aliases come back --------------------------------------------------------------------------------------


def test_leaving_frees_the_alias_and_the_browser_is_welcomed_back(app, make_room, join):
    room = make_room()
    pat = join(room, "Pat")
    pat.form(f"/r/{room.code}/messages", {"body": "before I left", "token": "a" * 32})
    assert pat.form(f"/r/{room.code}/leave").status_code == 303
    html = page(pat.get(f"/r/{room.code}"))
    assert "Welcome back" in html and 'value="Pat"' in html
    assert pat.form(f"/r/{room.code}/join", {"alias": "Pat", "password": ROOM_PASSWORD}).status_code == 303
    html = page(pat.get(f"/r/{room.code}"))
    assert "you are <strong><bdi>Pat</bdi></strong>" in html and "before I left" in html


def test_removal_frees_the_alias_and_says_you_can_join_again(app, make_room, join, signed_in):
    host, owner = signed_in()
    room = make_room(owner=owner)
    pat = join(room, "Pat")
    host.form(f"/r/{room.code}/members/{_seat_id(app, room, 'Pat')}/remove")
    html = page(pat.get(f"/r/{room.code}"))
    assert "The host removed you from this room. You can join again" in html and 'value="Pat"' in html
    assert pat.form(f"/r/{room.code}/join", {"alias": "Pat", "password": ROOM_PASSWORD}).status_code == 303


def test_a_ban_keeps_the_person_out_not_the_name(app, make_room, join, signed_in, new_client):
    host, owner = signed_in()
    room = make_room(owner=owner)
    pat = join(room, "Pat")
    host.form(f"/r/{room.code}/members/{_seat_id(app, room, 'Pat')}/ban")
    assert "cannot join it again" in page(pat.get(f"/r/{room.code}"))
    assert pat.form(f"/r/{room.code}/join", {"alias": "Pat", "password": ROOM_PASSWORD}).status_code == 403
    assert join(room, "Pat", client=new_client())  # someone else may take the name


def test_an_alias_is_held_by_one_active_seat_only(app, make_room, seat):
    room = make_room()
    first = seat(room, "Pat")
    with app.app_context():
        with pytest.raises(Invalid) as refused:
            members.join(db.session.get(Room, room.id), "PAT", ROOM_PASSWORD)
        assert refused.value.status == 409
        members.leave(db.session.get(Membership, first.id))
        again = members.join(db.session.get(Room, room.id), "Pat", ROOM_PASSWORD)
        members.leave(again)
        members.join(db.session.get(Room, room.id), "Pat", ROOM_PASSWORD)
        # The database holds the rule too: two active seats with one alias cannot be written.
        db.session.add(Membership(room_id=room.id, alias="pat", alias_key="pat"))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
        assert db.session.scalar(select(Message.id)) is None


# -- nothing typed is lost ----------------------------------------------------------------------------------


def _token(client, room) -> str:
    return form_token(page(client.get(f"/r/{room.code}")))


def test_a_removed_participants_unsent_text_comes_back(app, make_room, join, signed_in):
    host, owner = signed_in()
    room = make_room(owner=owner)
    pat = join(room, "Pat")
    token = _token(pat, room)
    host.form(f"/r/{room.code}/members/{_seat_id(app, room, 'Pat')}/remove")
    draft = {"body": "my long careful answer", "token": token}
    fragment = pat.htmx("POST", f"/r/{room.code}/messages", draft)
    assert fragment.status_code == 403
    html = page(fragment)
    assert "<html" not in html and 'id="composer"' in html and "my long careful answer" in html
    assert "The host removed you" in html and "readonly" in html and 'data-closed="closed"' in html
    full = pat.form(f"/r/{room.code}/messages", draft)
    assert full.status_code == 403
    assert "Your message was not sent" in page(full) and "my long careful answer" in page(full)


@pytest.mark.parametrize("change", ["end", "lock"])
def test_a_draft_survives_the_room_ending_or_locking(app, make_room, join, signed_in, change):
    host, owner = signed_in()
    room = make_room(owner=owner)
    pat = join(room, "Pat")
    token = _token(pat, room)
    host.form(f"/rooms/{room.code}/settings/{change}")
    draft = {"body": f"typed before the {change}", "token": token}
    for response in (pat.htmx("POST", f"/r/{room.code}/messages", draft), pat.form(f"/r/{room.code}/messages", draft)):
        assert response.status_code == 403
        assert f"typed before the {change}" in page(response)
    with app.app_context():
        assert db.session.scalar(select(Message.id).where(Message.room_id == room.id)) is None


def test_the_flood_limit_gives_the_composer_back_with_a_truthful_retry_after(limited_app, make_facilitator):
    room, _ = _room_with(limited_app, make_facilitator)
    pat = limited_app.test_client()
    assert _join(pat, room, "Pat").status_code == 303
    for i in range(20):
        assert pat.htmx("POST", f"/r/{room.code}/messages", {"body": f"m{i}", "token": f"{i:032x}"}).status_code == 200
    refused = pat.htmx("POST", f"/r/{room.code}/messages", {"body": "one too many", "token": "f" * 32})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    html = page(refused)
    assert 'id="composer"' in html and "one too many" in html and "Wait" in html


def test_slow_mode_says_when_in_retry_after(app, make_room, join, signed_in):
    host, owner = signed_in()
    room = make_room(owner=owner)
    pat = join(room, "Pat")
    host.form(f"/rooms/{room.code}/settings/slow-mode", {"seconds": "30"})
    pat.htmx("POST", f"/r/{room.code}/messages", {"body": "first", "token": "1" * 32})
    refused = pat.htmx("POST", f"/r/{room.code}/messages", {"body": "second", "token": "2" * 32})
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 30
    assert "second" in page(refused)


# -- times mean what they say -------------------------------------------------------------------------------


def _form(start: str, end: str, zone: str, **extra: str) -> dict[str, str]:
    return {"title": "T", "starts_at": start, "ends_at": end, "timezone": zone, "password": ROOM_PASSWORD, **extra}


def _last_sunday(year: int, month: int) -> str:
    day = datetime(year, month + 1, 1) - timedelta(days=1)
    while day.weekday() != 6:
        day -= timedelta(days=1)
    return day.strftime("%Y-%m-%d")


YEAR = utcnow().year + 1


@once
@pytest.mark.parametrize(
    ("zone", "day", "gap", "after"),
    [
        ("Europe/Paris", _last_sunday(YEAR, 3), "02:30", "03:30"),
        ("America/New_York", None, "02:30", "03:30"),  # the second Sunday of March
    ],
)
def test_a_time_in_the_spring_gap_is_refused_saying_what_it_would_mean(zone, day, gap, after):
    if day is None:
        march = datetime(YEAR, 3, 1)
        day = (march + timedelta(days=(6 - march.weekday()) % 7 + 7)).strftime("%Y-%m-%d")
    with pytest.raises(Invalid) as refused:
        rooms.parse_form(_form(f"{day}T{gap}", f"{day}T05:00", zone), editing=False)
    message = refused.value.errors["starts_at"]
    assert f"{gap} does not exist" in message and zone in message
    assert "the clocks go forward from 02:00 to 03:00" in message and f"It would mean {after}" in message


@once
@pytest.mark.parametrize(
    ("zone", "day", "wall", "first_utc", "second_utc"),
    [
        ("Europe/Paris", _last_sunday(YEAR, 10), "02:30", "00:30", "01:30"),
        ("America/New_York", None, "01:30", "05:30", "06:30"),  # the first Sunday of November
    ],
)
def test_a_time_in_the_autumn_overlap_asks_which_one(zone, day, wall, first_utc, second_utc):
    if day is None:
        november = datetime(YEAR, 11, 1)
        day = (november + timedelta(days=(6 - november.weekday()) % 7)).strftime("%Y-%m-%d")
    form = _form(f"{day}T{wall}", f"{day}T08:00", zone)
    with pytest.raises(Invalid) as refused:
        rooms.parse_form(form, editing=False)
    assert f"{wall} happens twice" in refused.value.errors["starts_at_fold"]
    assert [value for value, _ in rooms.fold_choices(form["starts_at"], zone)] == ["0", "1"]
    first = rooms.parse_form({**form, "starts_at_fold": "0"}, editing=False).starts_at
    second = rooms.parse_form({**form, "starts_at_fold": "1"}, editing=False).starts_at
    assert first.strftime("%H:%M") == first_utc and second.strftime("%H:%M") == second_utc
    assert first.tzinfo == second.tzinfo == UTC


@once
def test_end_after_start_compares_instants_not_wall_clocks():
    day = _last_sunday(YEAR, 10)
    # 02:50 the first time (00:50 UTC) to 02:10 the second time (01:10 UTC): twenty minutes, not negative.
    form = _form(f"{day}T02:50", f"{day}T02:10", "Europe/Paris", starts_at_fold="0", ends_at_fold="1")
    parsed = rooms.parse_form(form, editing=False)
    assert parsed.ends_at - parsed.starts_at == timedelta(minutes=20)
    with pytest.raises(Invalid) as refused:  # the other way round it is before the start
        rooms.parse_form({**form, "starts_at_fold": "1", "ends_at_fold": "0"}, editing=False)
    assert refused.value.errors == {"ends_at": "The end must be after the start"}


def test_an_overlap_room_saves_again_unchanged_from_its_edit_form(app, signed_in):
    host, _ = signed_in()
    day = _last_sunday(YEAR, 10)
    form = _form(f"{day}T02:50", f"{day}T02:10", "Europe/Paris", starts_at_fold="0", ends_at_fold="1")
    assert host.form("/rooms/", form).status_code == 303
    with app.app_context():
        room = db.session.scalar(select(Room))
        code, start, end = room.code, room.starts_at, room.ends_at
    edit = page(host.get(f"/rooms/{code}/edit"))
    assert re.search(r'name="starts_at_fold" value="0" checked', edit)
    assert re.search(r'name="ends_at_fold" value="1" checked', edit)
    saved = host.form(f"/rooms/{code}", {**form, "password": ""})
    assert saved.status_code == 303, page(saved)
    with app.app_context():
        room = db.session.scalar(select(Room))
        assert (room.starts_at, room.ends_at) == (start, end)
        assert room.local(room.starts_at).strftime("%H:%M") == "02:50"


def test_the_room_form_offers_real_zones_and_refuses_a_gap_and_a_past_end(signed_in):
    host, _ = signed_in()
    form_page = page(host.get("/rooms/new"))
    assert 'list="zones"' in form_page and '<option value="Europe/Paris">' in form_page
    assert "data-suggest" in form_page
    day = _last_sunday(YEAR, 3)
    refused = host.form("/rooms/", _form(f"{day}T02:30", f"{day}T03:10", "Europe/Paris"))
    assert refused.status_code == 422
    assert "02:30 does not exist" in page(refused) and "It would mean 03:30" in page(refused)
    yesterday = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    refused = host.form("/rooms/", _form(yesterday, yesterday[:-5] + "23:59", "UTC"))
    assert refused.status_code == 422 and "has already passed" in page(refused)
    refused = host.form("/rooms/", _form(f"{day}T10:00", f"{day}T11:00", "Mars/Olympus"))
    assert refused.status_code == 422 and "Choose a time zone name like" in page(refused)


def test_a_start_already_past_is_said_plainly(signed_in):
    host, _ = signed_in()
    paris = ZoneInfo("Europe/Paris")
    start = (utcnow() - timedelta(minutes=50)).astimezone(paris)
    form = _form(
        start.strftime("%Y-%m-%dT%H:%M"), (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"), "Europe/Paris"
    )
    created = host.form("/rooms/", form)
    assert created.status_code == 303
    shown = page(host.get(created.location))
    assert "had already passed, so it is open now" in shown and re.search(r"in \d+ minutes", shown)


# -- every page knows the room's state ----------------------------------------------------------------------


def test_room_state_tells_pages_to_shut_the_composer_and_moves_the_times(app, make_room, join, signed_in):
    host, owner = signed_in()
    room = make_room(owner=owner)
    pat = join(room, "Pat")
    host.form(f"/rooms/{room.code}/settings/lock")
    with app.test_request_context():
        html = room_state_html(db.session.get(Room, room.id))
    assert 'data-posting="locked"' in html and 'id="room-when" hx-swap-oob="innerHTML"' in html
    # Without JavaScript, the next page load shows the same: a participant's composer is shut, the host's not.
    participant = page(pat.get(f"/r/{room.code}"))
    assert 'data-closed="locked"' in participant and re.search(r"<textarea[^>]* readonly", participant)
    assert 'data-closed="locked"' not in page(host.get(f"/r/{room.code}"))
    host.form(f"/rooms/{room.code}/settings/extend", {"minutes": "90"})
    with app.test_request_context():
        room_row = db.session.get(Room, room.id)
        html = room_state_html(room_row)
        assert room_row.local(room_row.ends_at).strftime("%H:%M") in html


def test_a_participant_header_shows_the_room_not_the_facilitator_sign_in(make_room, join, signed_in):
    room = make_room(title="Biology 101")
    pat = join(room, "Pat")
    html = page(pat.get(f"/r/{room.code}"))
    nav = html.split('<nav aria-label="Your room">', 1)[1].split("</nav>", 1)[0]
    assert "Biology 101" in nav and "as Pat" in nav
    assert "Create an account" not in html and ">Sign in<" not in html
    host, _ = signed_in()
    assert "My rooms" in page(host.get("/rooms/"))


# -- presence that is true ----------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"] if BACKEND == "services" else ["memory"])
def tracker(request, redis_url, app):
    presence = RedisPresence(redis_url, 40) if request.param == "redis" else MemoryPresence(40)
    yield presence
    presence.close()


def test_presence_tabs_say_goodbye_go_away_and_leave_a_last_seen(tracker):
    presence = tracker
    try:
        tab = presence.enter(1, 7, "tabAAAA1111")
        presence.enter(1, 8, "tabBBBB2222")
        assert presence.states(1) == {7: "online", 8: "online"}
        presence.set_away(1, 7, "tabAAAA1111", True)
        assert presence.states(1) == {7: "away", 8: "online"}
        presence.page_seen(1, 7, ttl=60)  # a page load (no JavaScript) counts as online
        assert presence.states(1)[7] == "online"
        presence.depart(1, 7, "tabAAAA1111")
        assert presence.present(1) == {8}
        assert 7 in presence.last_seen(1)
        assert all(c[2] != tab for c in presence._local_conns)  # the refresher will not bring it back
        presence.refresh()
        assert presence.present(1) == {8}
    finally:
        presence.close()


def test_the_hosts_participant_list_says_online_away_or_offline_since(app, make_room, join, signed_in):
    host, owner = signed_in()
    room = make_room(owner=owner)
    pat, kim = join(room, "Pat"), join(room, "Kim")
    pat.get(f"/r/{room.code}")  # a page load: online
    with app.app_context():
        current_presence().enter(room.id, _seat_id(app, room, "Kim"), "kimtab1234")
    kim.form(f"/r/{room.code}/presence", {"tab": "kimtab1234", "state": "away"})
    html = page(host.get(f"/rooms/{room.code}"))
    assert re.search(r'Pat(</bdi>)?\s*<span class="presence__state" data-state="online">online</span>', html)
    assert re.search(r'Kim(</bdi>)?\s*<span class="presence__state" data-state="away">away</span>', html)
    kim.form(f"/r/{room.code}/presence", {"tab": "kimtab1234", "state": "gone"})
    html = page(host.get(f"/rooms/{room.code}"))
    assert re.search(
        r'Kim(</bdi>)?\s*<span class="presence__state" data-state="offline">offline, last seen <time', html
    )


def test_a_reader_without_javascript_is_here_while_loading_the_room(app, make_room, join):
    room = make_room()
    quiet, loud = join(room, "Quiet"), join(room, "Loud")
    quiet.get(f"/r/{room.code}")
    assert re.search(r'data-state="online"><bdi>Quiet</bdi><', page(loud.get(f"/r/{room.code}")))
    with app.app_context():
        assert {h.alias for h in roster(db.session.get(Room, room.id))} == {"Quiet", "Loud"}


def test_the_presence_endpoint_marks_away_and_gone(app, make_room, join):
    room = make_room()
    pat, kim = join(room, "Pat"), join(room, "Kim")
    with app.app_context():
        pat_id = _seat_id(app, room, "Pat")
        tracker = current_presence()
        tracker.enter(room.id, pat_id, "pattab1234")
    assert pat.form(f"/r/{room.code}/presence", {"tab": "pattab1234", "state": "away"}).status_code == 204
    assert re.search(
        r'data-state="away"><bdi>Pat</bdi> <span class="presence__state">away', page(kim.get(f"/r/{room.code}"))
    )
    assert pat.form(f"/r/{room.code}/presence", {"tab": "pattab1234", "state": "gone"}).status_code == 204
    with app.app_context():
        assert pat_id not in tracker.present(room.id)
        offline = [h for h in roster(db.session.get(Room, room.id)) if h.state == "offline"]
        assert [h.alias for h in offline] == ["Pat"] and offline[0].last_seen is not None
    assert re.search(
        r'data-state="offline"><bdi>Pat</bdi> <span class="presence__state">offline, last seen <time',
        page(kim.get(f"/r/{room.code}")),
    )
    assert pat.form(f"/r/{room.code}/presence", {"tab": "no", "state": "away"}).status_code == 400
    assert pat.form(f"/r/{room.code}/presence", {"tab": "pattab1234", "state": "dancing"}).status_code == 400


@once
def test_a_goodbye_ends_only_that_tabs_stream_and_held_outcomes_reach_only_the_author(app):
    from chatroom.stream_protocol import StreamState, departed, forward

    mine = StreamState(1, 7, False, 0, 0, 0.0, tab="tabAAAA1111")
    other_tab = StreamState(1, 7, False, 0, 0, 0.0, tab="tabBBBB2222")
    someone = StreamState(1, 8, False, 0, 0, 0.0)
    goodbye = tab_departed(7, "tabAAAA1111")
    assert departed(mine, goodbye) and not departed(other_tab, goodbye) and not departed(someone, goodbye)
    assert list(forward(mine, goodbye)) == []  # never sent to a browser
    with app.test_request_context():
        message = Message(id=3, membership_id=7)
        event = held_decided(message, approved=False)
    assert event.kind is EventKind.HELD and b"event: held" in event.frame and b'"declined"' in event.frame
    assert list(forward(mine, event)) == [event.frame]
    assert list(forward(someone, event)) == []


def test_typing_lasts_five_seconds(app, make_room, seat):
    room = make_room()
    pat = seat(room, "Pat")
    with app.test_request_context():
        assert b'"ttl": 5' in typing(pat, app.config["TYPING_TTL_SECONDS"]).frame


# -- pre-moderation feedback --------------------------------------------------------------------------------


def test_a_held_message_is_shown_to_its_author_only_and_what_became_of_it(app, make_room, join, signed_in):
    host, owner = signed_in()
    room = make_room(owner=owner)
    pat, kim = join(room, "Pat"), join(room, "Kim")
    host.form(f"/rooms/{room.code}/settings/premoderation", {"enabled": "1"})
    answer = page(pat.htmx("POST", f"/r/{room.code}/messages", {"body": "is this allowed?", "token": "1" * 32}))
    assert 'id="held" class="held"' in answer and 'hx-swap-oob="true"' in answer
    assert 'Waiting for the host:</span> <span class="held__body">is this allowed?' in answer
    assert "is this allowed?" in page(pat.get(f"/r/{room.code}"))
    assert "is this allowed?" not in page(kim.get(f"/r/{room.code}"))
    pat.htmx("POST", f"/r/{room.code}/messages", {"body": "and this?", "token": "2" * 32})
    with app.app_context():
        held = {m.body: m.id for m in db.session.scalars(select(Message).where(Message.seq.is_(None)))}
    host.form(f"/r/{room.code}/queue/{held['is this allowed?']}/approve")
    host.form(f"/r/{room.code}/queue/{held['and this?']}/reject")
    mine = page(pat.get(f"/r/{room.code}"))
    assert "Waiting for the host" not in mine
    assert re.search(r'<p class="message__body" dir="auto">is this allowed\?</p>', mine)  # in its place in the log
    assert "The host declined your message of" in mine


# -- small things a facilitator expects ---------------------------------------------------------------------


def test_signing_out_ends_this_device_only_and_everywhere_ends_all(app, make_facilitator, new_client):
    facilitator = make_facilitator()
    laptop, phone = new_client(), new_client()
    for device in (laptop, phone):
        assert device.form("/login", {"email": facilitator.email, "password": PASSWORD}).status_code == 303
    copied = laptop.get_cookie("session").value
    assert laptop.form("/logout").status_code == 303
    assert laptop.get("/rooms/").status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/rooms/").status_code == 302  # the copy of the signed-out cookie is worthless
    assert phone.get("/rooms/").status_code == 200  # the other device is still signed in
    assert "Sign out everywhere" in page(phone.get("/account"))
    assert phone.form("/account/sign-out-everywhere").status_code == 303
    assert phone.get("/rooms/").status_code == 302


@once
def test_links_are_clickable_http_only_after_escaping():
    html = str(
        linkify('see https://example.org/a?b=1&c=2"><script>x</script> or www.example.org, not javascript:alert(1)')
    )
    assert (
        '<a href="https://example.org/a?b=1&amp;c=2" rel="nofollow noopener ugc">https://example.org/a?b=1&amp;c=2</a>'
        in html
    )
    assert '<a href="http://www.example.org" rel="nofollow noopener ugc">www.example.org</a>' in html
    assert "&lt;script&gt;" in html and "<script>" not in html and 'href="javascript' not in html
    for other in ("ftp://example.org/file", "mailto:a@example.org", "a@example.org", "file:///etc/passwd"):
        assert "<a " not in str(linkify(other)), other
    assert str(linkify("no links here <b>")) == "no links here &lt;b&gt;"


def test_a_message_with_a_link_is_shown_with_it_clickable(make_room, join):
    room = make_room()
    pat = join(room, "Pat")
    pat.form(f"/r/{room.code}/messages", {"body": "slides: https://example.org/slides", "token": "3" * 32})
    html = page(pat.get(f"/r/{room.code}"))
    assert (
        'slides: <a href="https://example.org/slides" rel="nofollow noopener ugc">https://example.org/slides</a>'
        in html
    )


def test_the_share_link_has_a_copy_button_for_scripts_and_is_text_without(signed_in, make_room):
    host, owner = signed_in()
    room = make_room(owner=owner)
    html = page(host.get(f"/rooms/{room.code}"))
    assert re.search(r'<a id="share-link" href="http://localhost/r/\w+">http://localhost/r/\w+</a>', html)
    assert '<button type="button" id="copy-share" class="secondary small" hidden>Copy link</button>' in html
    assert "share.js" in html
