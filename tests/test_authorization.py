"""Who may do what: every endpoint of the URL map, every method it accepts, every kind of caller.

The table ``EXPECTED`` is the authorization policy written down: for each endpoint
and method, the status each role gets. It is checked against ``app.url_map``, so a
new endpoint fails ``test_every_endpoint_has_a_row`` until someone decides who may
call it. Each row runs in a fresh world (two facilitators, two rooms, members
removed and banned, a message of each kind, a held message, a report), the roles
one after the other from the least privileged to the owner, each with a real CSRF
token and a valid body: the status is then only about *who* asks. A refused call
must leave the database exactly as it was.

Every answer is also searched for "canaries", text that only some roles may see
(a room's messages, the host's queue and reports, the other room's messages), so a
page that leaks another room's or the host's data fails even when its status is right.

Roles (each a browser with its own cookies):

- ``anonymous``: no cookies at all;
- ``outsider``: a participant of room B (another facilitator's room), not of room A;
- ``participant``: a participant of room A, author of message 1;
- ``removed``: removed from room A by the host (their cookie still names the seat);
- ``banned``: banned from room A (likewise);
- ``other_facilitator``: signed in, owner of room B;
- ``owner``: signed in, owner of room A.

Every request is made against room A unless the table says otherwise.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask, url_for
from sqlalchemy import event

from chatroom import create_app
from chatroom import services as svc
from chatroom.access import SEATS
from chatroom.extensions import db
from chatroom.models import AuditEvent, Facilitator, Membership, Message, Report, Room, utcnow
from support.app import empty_database, make_config
from support.clients import Client
from support.constants import PASSWORD, ROOM_PASSWORD

ROLES = ("anonymous", "outsider", "participant", "removed", "banned", "other_facilitator", "owner")
FACILITATORS = ("other_facilitator", "owner")

# Text only some roles may see. A role sees a canary only if it is listed here.
CANARIES = {
    "canary-a-message-7f3e": {"participant", "owner"},  # message 1 of room A (by the participant)
    "canary-a-held-91bd": {"owner"},  # a message waiting in room A's pre-moderation queue
    "canary-a-reason-c4a0": {"owner"},  # the reason of a report in room A
    "canary-b-message-5d21": {"outsider", "other_facilitator"},  # a message of room B
    "canary-b-held-e8f6": {"other_facilitator"},  # room B's queue
}


def _same(status: int) -> tuple[int, ...]:
    return (status,) * len(ROLES)


def _signed_in(status: int) -> tuple[int, ...]:
    """Pages for any facilitator: everyone else is sent to sign in (302)."""
    return (302, 302, 302, 302, 302, status, status)


def _owner_only(status: int, others: int = 404) -> tuple[int, ...]:
    """A host action or page of room A: 404 for everyone but its owner (no hint the room exists)."""
    return (others,) * (len(ROLES) - 1) + (status,)


def _owner_console(status: int) -> tuple[int, ...]:
    """The /rooms/<code> pages: sign in first (302); another facilitator gets 404."""
    return (302, 302, 302, 302, 302, 404, status)


def _members(status: int, host: int | None = None) -> tuple[int, ...]:
    """Room A's members only: the participant and the owner (the host seat); 403 for the rest."""
    return (403, 403, status, 403, 403, 403, status if host is None else host)


# fmt: off
# endpoint -> method -> status per role, in ROLES order:
#   (anonymous, outsider, participant, removed, banned, other_facilitator, owner)
EXPECTED: dict[str, dict[str, tuple[int, ...]]] = {
    "views.index":             {"GET": (200, 200, 200, 200, 200, 302, 302)},  # facilitators go to their rooms
    "views.health":            {"GET": _same(200)},
    "views.theme":             {"POST": _same(303)},
    "views.autorefresh":       {"POST": _same(303)},
    "views.asset":             {"GET": _same(200)},  # the room page's script bundle

    "auth.login":              {"GET": _same(200), "POST": _same(303)},  # POST: the owner's credentials
    "auth.signup":             {"GET": _same(200), "POST": _same(303)},  # POST: a new account
    "auth.logout":             {"POST": _signed_in(303)},
    "auth.login_code":         {"GET": _same(303), "POST": _same(303)},  # no password step pending: to sign in
    "auth.account":            {"GET": _signed_in(200)},
    "auth.change_password":    {"GET": _signed_in(200), "POST": _signed_in(303)},
    "auth.two_factor_setup":   {"GET": _signed_in(200), "POST": _signed_in(303)},  # no key in the session yet
    "auth.recovery_codes":     {"GET": _signed_in(303), "POST": _signed_in(409)},  # nothing to show; 2FA is off
    "auth.two_factor_disable": {"POST": _signed_in(303)},
    "auth.forgot_password":    {"GET": _same(200), "POST": _same(200)},  # the same answer for any address
    "auth.reset_password":     {"GET": _same(200), "POST": _same(303)},  # the mailed link is the credential

    "rooms.dashboard":         {"GET": _signed_in(200)},  # each facilitator sees their own rooms
    "rooms.new":               {"GET": _signed_in(200)},
    "rooms.create":            {"POST": _signed_in(303)},
    "rooms.show":              {"GET": _owner_console(200)},
    "rooms.update":            {"POST": _owner_console(303)},
    "rooms.edit":              {"GET": _owner_console(200)},
    "rooms.setting":           {"POST": _owner_console(303)},
    "rooms.delete":            {"GET": _owner_console(200), "POST": _owner_console(303)},
    "rooms.audit":             {"GET": _owner_console(200)},
    "rooms.transcript":        {"GET": _owner_console(200)},
    "rooms.qr":                {"GET": _owner_console(200)},

    "chat.room":               {"GET": _same(200)},  # non-members get the join form, without the messages
    "chat.join":               {"POST": (303, 303, 303, 303, 403, 303, 303)},  # members: back to the room
    "chat.post":               {"POST": _members(303)},
    "chat.history":            {"GET": _members(303)},  # without htmx: to the room page at that point
    "chat.newer":              {"GET": _members(200)},
    "chat.typing":             {"POST": _members(204)},
    "chat.leave":              {"POST": _same(303)},  # only a participant's own seat closes
    "chat.message":            {"GET": _members(200)},
    "chat.edit_message":       {"POST": _members(303, host=403)},  # authors only, even for the host
    "chat.delete_message":     {"POST": _members(303, host=403)},
    "chat.report_message":     {"POST": _members(303, host=403)},  # the host removes instead
    "chat.remove_message":     {"POST": _owner_only(303)},
    "chat.remove_member":      {"POST": _owner_only(303)},
    "chat.ban_member":         {"POST": _owner_only(303)},
    "chat.approve":            {"POST": _owner_only(303)},
    "chat.reject":             {"POST": _owner_only(303)},
    "chat.dismiss_report":     {"POST": _owner_only(303)},

    "stream.events":           {"GET": _members(200)},
}
# fmt: on

# Where a 302 goes, when it is not to the sign-in page.
REDIRECTS = {"views.index": "/rooms/"}
STREAMED = {"stream.events", "rooms.transcript"}


# -- the world ---------------------------------------------------------------------------


@dataclass
class World:
    owner_email: str
    other_email: str
    room_a: str  # codes
    room_b: str
    room_a_id: int
    room_b_id: int
    room_a_title: str
    seats: dict[str, tuple[int, int]]  # role -> (room id, membership id) its cookie holds
    pat_seq: int  # message 1 of room A, by the participant
    kim_seq: int  # message 2 of room A, by another participant
    kim_id: int
    held_id: int  # a message held for approval in room A
    report_id: int  # Kim's report of message 1
    b_member_id: int
    b_held_id: int
    b_report_id: int
    reset_token: str  # a password reset link's token, for the owner


def _token() -> str:
    return secrets.token_hex(16)


def build_world(app: Flask) -> World:
    """Empty the database and set the scene through the services (no HTTP: it is fast)."""
    with app.app_context():
        empty_database(app)
    with app.test_request_context():
        owner = svc.sign_up("owner@example.org", "Olive Owner", PASSWORD)
        other = svc.sign_up("other@example.org", "Otto Other", PASSWORD)
        start = utcnow() - timedelta(hours=1)
        room_a = svc.create_room(
            owner, svc.RoomInput("Room A", start, start + timedelta(hours=3), "UTC", ROOM_PASSWORD)
        )
        room_b = svc.create_room(
            other, svc.RoomInput("Room B", start, start + timedelta(hours=3), "UTC", ROOM_PASSWORD)
        )
        pat, kim, rem, ban = (svc.join_room(room_a, alias, ROOM_PASSWORD) for alias in ("Pat", "Kim", "Rem", "Ban"))
        out, lee = (svc.join_room(room_b, alias, ROOM_PASSWORD) for alias in ("Out", "Lee"))
        first, _ = svc.post_message(pat, "canary-a-message-7f3e", _token())
        second, _ = svc.post_message(kim, "Kim's message", _token())
        svc.set_premoderation(room_a, True)
        held, _ = svc.post_message(kim, "canary-a-held-91bd", _token())
        svc.set_premoderation(room_a, False)
        report = svc.report_message(kim, first, "canary-a-reason-c4a0")
        svc.remove_member(room_a, rem)
        svc.ban_member(room_a, ban)
        b_first, _ = svc.post_message(out, "canary-b-message-5d21", _token())
        svc.set_premoderation(room_b, True)
        b_held, _ = svc.post_message(out, "canary-b-held-e8f6", _token())
        svc.set_premoderation(room_b, False)
        b_report = svc.report_message(lee, b_first, "")
        world = World(
            owner_email=owner.email,
            other_email=other.email,
            room_a=room_a.code,
            room_b=room_b.code,
            room_a_id=room_a.id,
            room_b_id=room_b.id,
            room_a_title=room_a.title,
            seats={
                "participant": (room_a.id, pat.id),
                "removed": (room_a.id, rem.id),
                "banned": (room_a.id, ban.id),
                "outsider": (room_b.id, out.id),
            },
            pat_seq=first.seq,
            kim_seq=second.seq,
            kim_id=kim.id,
            held_id=held.id,
            report_id=report.id,
            b_member_id=lee.id,
            b_held_id=b_held.id,
            b_report_id=b_report.id,
            reset_token=svc.password_reset_token(owner) if hasattr(svc, "password_reset_token") else "",
        )
        db.session.remove()
    return world


def client_for(app: Flask, world: World, role: str) -> Client:
    """A browser in ``role``: a seat in its cookie, as joining leaves it, or signed in through the real form."""
    app.test_client_class = Client
    client: Client = app.test_client()
    if role in world.seats:
        room_id, member_id = world.seats[role]
        with client.session_transaction() as session:
            session[SEATS] = {str(room_id): member_id}
    elif role in FACILITATORS:
        email = world.owner_email if role == "owner" else world.other_email
        response = client.form("/login", {"email": email, "password": PASSWORD})
        assert response.status_code == 303, f"cannot sign in as {role}"
    return client


# -- what each request carries -------------------------------------------------------------

# A value for each URL argument, by name; ``ARGUMENTS_BY_ENDPOINT`` overrides it for one endpoint.
ARGUMENTS: dict[str, Callable[[World], Any]] = {
    "code": lambda w: w.room_a,
    "seq": lambda w: w.pat_seq,
    "member_id": lambda w: w.kim_id,
    "message_id": lambda w: w.held_id,
    "report_id": lambda w: w.report_id,
    "fmt": lambda w: "csv",
    "name": lambda w: "lock",
    "token": lambda w: w.reset_token,
}
ARGUMENTS_BY_ENDPOINT: dict[str, dict[str, Callable[[World], Any]]] = {
    "chat.report_message": {"seq": lambda w: w.kim_seq},  # someone else's message
    "views.asset": {"name": lambda w: "room.js"},
}
QUERY: dict[str, dict[str, str]] = {"chat.newer": {"after": "0"}}

NEW_PASSWORD = "a brand new passphrase"

# A valid body for each (endpoint, method) that needs one.
BODIES: dict[tuple[str, str], Callable[[World, str], dict[str, str]]] = {
    ("views.theme", "POST"): lambda w, r: {"theme": "dark", "next": "/"},
    ("views.autorefresh", "POST"): lambda w, r: {"autorefresh": "on", "next": "/"},
    ("auth.login", "POST"): lambda w, r: {"email": w.owner_email, "password": PASSWORD},
    ("auth.signup", "POST"): lambda w, r: {
        "email": f"new-{r}@example.org",
        "name": "Nia New",
        "password": NEW_PASSWORD,
    },
    ("auth.login_code", "POST"): lambda w, r: {"code": "123456"},
    ("auth.change_password", "POST"): lambda w, r: {"current_password": PASSWORD, "password": NEW_PASSWORD},
    ("auth.two_factor_setup", "POST"): lambda w, r: {"code": "123456"},
    ("auth.recovery_codes", "POST"): lambda w, r: {"codes_password": PASSWORD},
    ("auth.two_factor_disable", "POST"): lambda w, r: {"disable_password": PASSWORD},
    ("auth.forgot_password", "POST"): lambda w, r: {"email": w.owner_email},
    ("auth.reset_password", "POST"): lambda w, r: {"password": NEW_PASSWORD},
    ("rooms.create", "POST"): lambda w, r: _room_form(f"Room C of {r}"),
    ("rooms.update", "POST"): lambda w, r: _room_form("Room A, renamed"),
    ("rooms.delete", "POST"): lambda w, r: {"confirm": w.room_a_title},
    ("chat.join", "POST"): lambda w, r: {"alias": f"New {r}", "password": ROOM_PASSWORD},
    ("chat.post", "POST"): lambda w, r: {"body": "hello", "token": _token()},
    ("chat.edit_message", "POST"): lambda w, r: {"body": "corrected"},
    ("chat.report_message", "POST"): lambda w, r: {"reason": "rude"},
}


def _room_form(title: str) -> dict[str, str]:
    start = utcnow().replace(second=0, microsecond=0) - timedelta(minutes=30)
    return {
        "title": title,
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "timezone": "UTC",
        "password": ROOM_PASSWORD,
    }


def url_of(app: Flask, world: World, endpoint: str, overrides: dict[str, Any] | None = None) -> str:
    """The URL of ``endpoint`` with every argument filled from the world (or ``overrides``)."""
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    values: dict[str, Any] = {}
    for name in rule.arguments:
        getter = ARGUMENTS_BY_ENDPOINT.get(endpoint, {}).get(name) or ARGUMENTS.get(name)
        assert getter is not None, f"{endpoint}: add a value for its URL argument <{name}> to ARGUMENTS"
        values[name] = getter(world)
    values.update(QUERY.get(endpoint, {}))
    values.update(overrides or {})
    with app.test_request_context():
        return url_for(endpoint, **values)


@dataclass
class Answer:
    status: int
    location: str
    body: str
    content_type: str


def call(client: Client, method: str, url: str, data: dict[str, str] | None = None, **kwargs: Any) -> Answer:
    """One request; a streamed answer (the event stream) is closed at once, unread, so it cannot hang."""
    if method == "GET":
        response = client.get(url, buffered=False, **kwargs)
    else:
        response = client.form(url, data or {}, buffered=False, **kwargs)
    try:
        body = "" if response.mimetype == "text/event-stream" else response.get_data(as_text=True)
        return Answer(response.status_code, response.headers.get("Location", ""), body, response.mimetype)
    finally:
        response.close()  # a streamed response keeps its request context pushed until closed


# -- the app, once for this module; a new world for every cell ---------------------------------


def fast_app(database_url: str, redis_url: str | None) -> Flask:
    """An app for many small worlds: on SQLite, commits skip fsync (a throwaway database; ~20x faster here)."""
    app = create_app(make_config(database_url, redis_url))
    with app.app_context():
        if db.engine.dialect.name == "sqlite":

            @event.listens_for(db.engine, "connect")
            def _no_fsync(connection: Any, record: Any) -> None:
                connection.execute("PRAGMA synchronous = OFF")
                connection.execute("PRAGMA journal_mode = MEMORY")

    return app


def fast_app_fixture() -> Any:
    """A module-scoped fixture serving one ``fast_app`` to every test of a module, closed after them."""

    @pytest.fixture(scope="module")
    def fixture(_schema: None, database_url: str, redis_url: str | None) -> Iterator[Flask]:
        app = fast_app(database_url, redis_url)
        yield app
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        app.extensions["chatroom.broker"].close()

    return fixture


matrix_app = fast_app_fixture()


def _routes(app: Flask) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint != "static":
            routes.setdefault(rule.endpoint, set()).update((rule.methods or set()) - {"HEAD", "OPTIONS"})
    return routes


def test_every_endpoint_has_a_row(matrix_app):
    routes = _routes(matrix_app)
    missing = sorted(set(routes) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(routes))
    assert not missing, (
        f"New endpoints without a row in EXPECTED (tests/test_authorization.py): {missing}. "
        "Decide which roles may call them, add the row (and a body in BODIES if the POST needs one)."
    )
    assert not stale, f"EXPECTED has rows for endpoints that no longer exist: {stale}"
    methods = {name: set(by_method) for name, by_method in EXPECTED.items()}
    wrong = {name: (sorted(routes[name]), sorted(methods[name])) for name in routes if routes[name] != methods[name]}
    assert not wrong, f"Methods differ (url map, table): {wrong}"
    for name, by_method in EXPECTED.items():
        for method, statuses in by_method.items():
            assert len(statuses) == len(ROLES), f"{name} {method}: one status per role in {ROLES}"


# A successful POST here changes what the next role would meet: those cells get a world of their own.
FRESH_WORLD_PER_ROLE = {("auth.reset_password", "POST")}  # the link works once


def run_row(app: Flask, endpoint: str, method: str) -> list[str]:
    """Every role's call of one endpoint and method; the list of what went wrong.

    The roles run in ``ROLES`` order, from least to most privileged, in one world: a
    refused call changes nothing (a wrong status says so if it did), and the bodies
    are unique per role (aliases, e-mail addresses), so one role's success does not
    change the next one's answer.
    """
    problems: list[str] = []
    world = build_world(app)
    for index, role in enumerate(ROLES):
        if index and (endpoint, method) in FRESH_WORLD_PER_ROLE:
            world = build_world(app)
        expected = EXPECTED[endpoint][method][index]
        client = client_for(app, world, role)
        url = url_of(app, world, endpoint)
        body = BODIES.get((endpoint, method), lambda w, r: {})(world, role)
        before = db_state(app)
        answer = call(client, method, url, body)
        where = f"{role:>17}  {method} {url}"
        if answer.status in REFUSALS and db_state(app) != before:
            problems.append(f"{where}: refused with {answer.status}, but the database changed")
        if answer.status != expected:
            problems.append(f"{where}: {answer.status}, expected {expected}  {_gist(answer.body)}")
        elif answer.status == 302 and urlsplit(answer.location).path != REDIRECTS.get(endpoint, "/login"):
            problems.append(f"{where}: redirects to {answer.location}")
        if endpoint == "stream.events" and answer.status == 200 and answer.content_type != "text/event-stream":
            problems.append(f"{where}: {answer.content_type}, not an event stream")
        problems += [
            f"{where}: shows {c!r}" for c, allowed in CANARIES.items() if role not in allowed and c in answer.body
        ]
    return problems


REFUSALS = {302, 400, 403, 404, 405, 409, 422, 429}


def db_state(app: Flask) -> tuple[Any, ...]:
    """What a refused request must leave as it was: rooms, seats, messages, reports, accounts, the audit log."""
    with app.app_context():
        rows = (
            db.session.execute(db.select(*columns).order_by(columns[0])).all()
            for columns in (
                (Room.id, Room.title, Room.locked, Room.slow_mode_seconds, Room.premoderation, Room.ends_at),
                (Room.id, Room.retention_days, Room.last_seq, Room.last_rev, Room.password_hash),
                (Membership.id, Membership.left_at, Membership.banned, Membership.alias),
                (Message.id, Message.seq, Message.status, Message.body, Message.rev, Message.removed_at),
                (Report.id, Report.resolved_at),
                (Facilitator.id, Facilitator.password_hash, Facilitator.session_token, Facilitator.totp_secret),
                (AuditEvent.id,),
            )
        )
        state = tuple(tuple(r) for r in rows)
        db.session.remove()
        return state


def _gist(html: str) -> str:
    """The human sentence of an error page, for the failure message."""
    text = re.sub(r"<[^>]+>", " ", html.split("<main", 1)[-1])
    return " ".join(text.split())[:160]


ROWS = [
    pytest.param(endpoint, method, id=f"{endpoint}-{method}")
    for endpoint, by_method in EXPECTED.items()
    for method in by_method
]


@pytest.mark.parametrize(("endpoint", "method"), ROWS)
def test_authorization(matrix_app, endpoint, method):
    if endpoint not in _routes(matrix_app):
        pytest.skip(f"{endpoint} is not in this build")
    problems = run_row(matrix_app, endpoint, method)
    assert not problems, f"{endpoint} {method}:\n" + "\n".join(problems)


# -- the same actions against the other room's objects (IDOR) ------------------------------------

# The owner of room A names room B's records through room A's address: none of them is reachable.
CROSS_ROOM = [
    ("chat.remove_member", {"member_id": "b_member_id"}),
    ("chat.ban_member", {"member_id": "b_member_id"}),
    ("chat.approve", {"message_id": "b_held_id"}),
    ("chat.reject", {"message_id": "b_held_id"}),
    ("chat.dismiss_report", {"report_id": "b_report_id"}),
]


@pytest.mark.parametrize(("endpoint", "names"), CROSS_ROOM, ids=[c[0] for c in CROSS_ROOM])
def test_another_rooms_records_are_unreachable_through_your_own_room(matrix_app, endpoint, names):
    world = build_world(matrix_app)
    owner = client_for(matrix_app, world, "owner")
    url = url_of(matrix_app, world, endpoint, {arg: getattr(world, attr) for arg, attr in names.items()})
    assert call(owner, "POST", url).status == 404
    with matrix_app.app_context():
        room_b = db.session.get(Room, world.room_b_id)
        assert all(m.active and not m.banned for m in room_b.memberships)
        held = db.session.get(Message, world.b_held_id)
        assert held.status == "pending"
        done = {e.action for e in svc.audit_log(room_b)}
        assert not done & {"participant removed", "participant banned", "message rejected", "report dismissed"}


def test_a_seat_in_one_room_is_no_seat_in_another(matrix_app):
    """A cookie naming room B's seat under room A's id (as if forged) does not seat anyone in room A.

    Cookies are signed, so this cannot be forged from outside; the check is that the
    lookup is scoped by room, not that the signature holds.
    """
    world = build_world(matrix_app)
    app = matrix_app
    app.test_client_class = Client
    client: Client = app.test_client()
    with client.session_transaction() as session:
        session[SEATS] = {str(world.room_a_id): world.seats["outsider"][1]}
    assert call(client, "GET", f"/r/{world.room_a}/messages/1").status == 403
    assert call(client, "POST", f"/r/{world.room_a}/messages", {"body": "x", "token": _token()}).status == 403


def test_the_hosts_seat_is_not_a_participants(matrix_app):
    """The owner's host seat id in a participant's cookie gives no host powers, and no seat."""
    world = build_world(matrix_app)
    with matrix_app.app_context():
        host_seat_id = db.session.scalar(
            db.select(Membership.id).where(Membership.room_id == world.room_a_id, Membership.is_host.is_(True))
        )
    matrix_app.test_client_class = Client
    client: Client = matrix_app.test_client()
    with client.session_transaction() as session:
        session[SEATS] = {str(world.room_a_id): host_seat_id}
    assert call(client, "POST", f"/r/{world.room_a}/messages/{world.pat_seq}/remove").status == 404
    assert call(client, "POST", f"/rooms/{world.room_a}/settings/lock").status == 302


def test_signing_out_ends_the_copied_cookie(matrix_app):
    """A stolen login cookie stops working when its owner signs out (the session token rotates)."""
    world = build_world(matrix_app)
    owner = client_for(matrix_app, world, "owner")
    stolen = owner.get_cookie("session")
    assert stolen is not None
    assert call(owner, "POST", "/logout").status == 303
    matrix_app.test_client_class = Client
    thief: Client = matrix_app.test_client()
    thief.set_cookie("session", stolen.value)
    assert call(thief, "GET", f"/rooms/{world.room_a}").status == 302


def test_other_facilitators_rooms_are_not_in_my_dashboard(matrix_app):
    world = build_world(matrix_app)
    other = client_for(matrix_app, world, "other_facilitator")
    page = call(other, "GET", "/rooms/").body
    assert "Room B" in page and "Room A" not in page and world.room_a not in page
    fragment = call(other, "GET", "/rooms/", headers={"HX-Request": "true"}).body
    assert world.room_b in fragment and world.room_a not in fragment


def test_owner_row_sanity(matrix_app):
    """The fixture world is what the table assumes (so a wrong status means the app changed, not the world)."""
    world = build_world(matrix_app)
    with matrix_app.app_context():
        assert db.session.get(Message, world.held_id).seq is None
        assert (
            db.session.scalar(db.select(Facilitator).where(Facilitator.email == world.owner_email)).two_factor is False
        )
        assert {m.alias: (m.active, m.banned) for m in db.session.get(Room, world.room_a_id).memberships} == {
            "Olive Owner": (True, False),
            "Pat": (True, False),
            "Kim": (True, False),
            "Rem": (False, False),
            "Ban": (False, True),
        }
