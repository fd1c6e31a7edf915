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
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask

from chatroom.access import SEATS
from chatroom.extensions import db
from chatroom.models import Facilitator, Membership, Message, Room
from chatroom.services import moderation
from support.app import fast_app_fixture
from support.clients import Client
from support.policy import CANARIES, EXPECTED, REFUSALS, ROLES, db_state
from support.world import BODIES, build_world, client_for, post_token, url_of

# Where a 302 goes, when it is not to the sign-in page.
REDIRECTS = {"views.index": "/rooms/"}
STREAMED = {"stream.events", "rooms.transcript"}


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
    elif url.startswith("/api/"):  # the JSON API: a JSON body, the CSRF token in a header (as a script in a page)
        headers = {"X-CSRFToken": client.csrf(), **kwargs.pop("headers", {})}
        response = client.open(url, method=method, json=data or {}, headers=headers, buffered=False, **kwargs)
    else:
        response = client.form(url, data or {}, buffered=False, **kwargs)
    try:
        body = "" if response.mimetype == "text/event-stream" else response.get_data(as_text=True)
        return Answer(response.status_code, response.headers.get("Location", ""), body, response.mimetype)
    finally:
        response.close()  # a streamed response keeps its request context pushed until closed


# -- the app, once for this module; a new world for every cell ---------------------------------


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
        f"New endpoints without a row in EXPECTED (tests/support/policy.py): {missing}. "
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
    ("participation.reply_note", {"member_id": "b_member_id"}),
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
        done = {e.action for e in moderation.audit_log(room_b)}
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
    assert call(client, "POST", f"/r/{world.room_a}/messages", {"body": "x", "token": post_token()}).status == 403


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
