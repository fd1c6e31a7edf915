"""Who may call the JSON API: every /api/v1 operation, with every kind of credential.

The table is ``API_EXPECTED`` in ``tests/support/policy.py`` (made from ``API``, which also
gives the cookie roles' rows in ``EXPECTED``); a new API endpoint fails
``test_every_api_endpoint_has_a_row`` until it has one. Roles, one after the other in a
fresh world per row (the world of ``tests/test_authorization.py``, with API tokens):

- ``no_token``: no Authorization header, no cookie: 401;
- ``revoked_token``: a token of the owner's that was revoked: 401;
- ``other_token``: the other facilitator's token: room A is 404, as if it did not exist;
- ``owner_token``: room A's owner's token: the operation works;
- ``owner_cookie_no_csrf``: the owner signed in, but a change sent without the CSRF token: 400
  (reads work: they need no CSRF token).

A refused call must leave the database as it was, and no answer may show another room's
or the host's data to a role that may not see it (the canaries of test_authorization).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from support.app import fast_app_fixture
from support.clients import Client
from support.policy import API_EXPECTED, API_ROLES, CANARIES, REFUSALS, db_state
from support.world import BODIES, World, build_world, client_for, url_of

# Scoping is the same queries on either backend, and the cookie roles of test_authorization (run on both)
# already call every API endpoint: the token roles run once.
pytestmark = pytest.mark.once

api_app = fast_app_fixture()

# The canaries of room A's owner are the owner token's and cookie's; room B's, the other token's.
CAN_SEE = {
    "no_token": set(),
    "revoked_token": set(),
    "other_token": {"other_facilitator"},
    "owner_token": {"owner"},
    "owner_cookie_no_csrf": {"owner"},
}


def _client(app: Flask, world: World, role: str) -> tuple[Client, dict[str, str]]:
    """A client and the headers it sends in ``role``."""
    if role == "owner_cookie_no_csrf":
        return client_for(app, world, "owner"), {}
    app.test_client_class = Client
    token = {"revoked_token": world.revoked_token, "other_token": world.other_token, "owner_token": world.owner_token}
    headers = {"Authorization": f"Bearer {token[role]}"} if role in token else {}
    return app.test_client(), headers


def call(client: Client, method: str, url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str]:
    kwargs: dict[str, Any] = {"headers": headers, "buffered": False}
    if method != "GET":
        kwargs["json"] = body
    response = client.open(url, method=method, **kwargs)
    try:
        return response.status_code, response.get_data(as_text=True)
    finally:
        response.close()


def test_every_api_endpoint_has_a_row(api_app):
    endpoints = {rule.endpoint for rule in api_app.url_map.iter_rules() if rule.endpoint.startswith("api.")}
    assert endpoints == set(API_EXPECTED), (
        f"API endpoints and the API table (tests/support/policy.py) differ: {endpoints ^ set(API_EXPECTED)}"
    )
    for by_method in API_EXPECTED.values():
        for statuses in by_method.values():
            assert len(statuses) == len(API_ROLES)


ROWS = [pytest.param(e, m, id=f"{e}-{m}") for e, by_method in API_EXPECTED.items() for m in by_method]


@pytest.mark.parametrize(("endpoint", "method"), ROWS)
def test_api_authorization(api_app, endpoint, method):
    world = build_world(api_app)
    problems = []
    for index, role in enumerate(API_ROLES):
        expected = API_EXPECTED[endpoint][method][index]
        client, headers = _client(api_app, world, role)
        url = url_of(api_app, world, endpoint)
        body = BODIES.get((endpoint, method), lambda w, r: {})(world, role)
        before = db_state(api_app)
        status, text = call(client, method, url, body, headers)
        where = f"{role:>21}  {method} {url}"
        if status in REFUSALS and db_state(api_app) != before:
            problems.append(f"{where}: refused with {status}, but the database changed")
        if status != expected:
            problems.append(f"{where}: {status}, expected {expected}  {text[:200]}")
        if status >= 400 and "application/problem+json" not in text and '"status"' not in text:
            problems.append(f"{where}: {status} is not a problem document: {text[:120]}")
        problems += [
            f"{where}: shows {c!r}" for c, allowed in CANARIES.items() if not (CAN_SEE[role] & allowed) and c in text
        ]
    assert not problems, f"{endpoint} {method}:\n" + "\n".join(problems)


def test_a_token_cannot_reach_another_rooms_records_through_its_own_room(api_app):
    """The owner of room A names room B's records through room A's address: none of them is reachable."""
    world = build_world(api_app)
    client, headers = _client(api_app, world, "owner_token")
    for endpoint, names in (
        ("api.remove_participant", {"member_id": world.b_member_id}),
        ("api.ban_participant", {"member_id": world.b_member_id}),
        ("api.approve", {"message_id": world.b_held_id}),
        ("api.reject", {"message_id": world.b_held_id}),
        ("api.dismiss_report", {"report_id": world.b_report_id}),
    ):
        before = db_state(api_app)
        status, _ = call(client, "POST", url_of(api_app, world, endpoint, names), {}, headers)
        assert status == 404, endpoint
        assert db_state(api_app) == before, endpoint


@pytest.mark.parametrize(
    "header",
    ["Basic b3duZXI6cGFzcw==", "Bearer", "Bearer ", "Token abc", "bearer chatroom_nope", "Bearer " + "x" * 5000],
)
def test_a_malformed_authorization_header_is_401_with_a_challenge(api_app, header):
    world = build_world(api_app)
    client = client_for(api_app, world, "owner")  # a valid cookie does not rescue a bad header
    response = client.get(f"/api/v1/rooms/{world.room_a}", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["status"] == 401
