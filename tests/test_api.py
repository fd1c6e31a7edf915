"""The JSON API as docs/api.md shows it: a token from the account page, then rooms, messages page by page,
posting as host, moderation and the transcript; problem documents, CSRF for cookies, rate limits per token.

Tests about the API's own behaviour run once (``once``); the walk-through, moderation, disabled accounts and the
per-token limit (shared through Redis) run on both backends."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from chatroom import create_app
from chatroom.extensions import db
from chatroom.models import ApiToken, Facilitator, Room, utcnow
from chatroom.services import admin, messages, tokens
from support.app import empty_database, make_config
from support.clients import Client
from support.constants import ROOM_PASSWORD


def _token_from_account_page(client: Client, name: str = "course script") -> str:
    """Make a token the way a person does: the account page's form, then the page that shows it once."""
    response = client.form("/account/tokens", {"token_name": name})
    assert response.status_code == 303 and response.headers["Location"].endswith("/account/tokens/new")
    page = client.get("/account/tokens/new")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    return re.search(r'id="new-token">(chatroom_[A-Za-z0-9_-]+)<', page.get_data(as_text=True)).group(1)


def _room_body(title: str = "Week 1", starts_in: timedelta = timedelta(minutes=-5)) -> dict[str, Any]:
    start = (utcnow() + starts_in).replace(microsecond=0)
    return {
        "title": title,
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
        "timezone": "Europe/Paris",
        "password": ROOM_PASSWORD,
    }


@pytest.fixture
def api(client, signed_in):
    """(anonymous client, bearer headers, the facilitator) after making a token on the account page."""
    browser, facilitator = signed_in()
    token = _token_from_account_page(browser)
    return client, {"Authorization": f"Bearer {token}"}, facilitator


@pytest.mark.once
def test_the_token_is_shown_once_and_listed_by_name_and_first_characters(client, signed_in):
    browser, _ = signed_in()
    token = _token_from_account_page(browser, "archive")
    again = browser.get("/account/tokens/new")
    assert again.status_code == 303  # shown once only
    account = browser.get("/account").get_data(as_text=True)
    assert "archive" in account and token[:13] in account and token not in account
    assert "never used" in account
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert "never used" not in browser.get("/account").get_data(as_text=True)  # last used, now


@pytest.mark.once
def test_a_stored_token_is_a_hash_not_the_token(app, api):
    _, headers, _ = api
    raw = headers["Authorization"].split()[1]
    with app.app_context():
        row = db.session.scalar(db.select(ApiToken))
        assert row.token_hash == tokens.token_hash(raw) and raw not in (row.token_hash, row.hint)


def test_a_revoked_token_is_refused_at_once(app, client, signed_in):
    browser, _ = signed_in()
    token = _token_from_account_page(browser)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/rooms", headers=headers).status_code == 200
    with app.app_context():
        token_id = db.session.scalar(db.select(ApiToken.id))
    assert browser.form(f"/account/tokens/{token_id}/revoke").status_code == 303
    response = client.get("/api/v1/rooms", headers=headers)
    assert response.status_code == 401 and response.mimetype == "application/problem+json"
    assert "revoked" in response.get_json()["detail"]


@pytest.mark.once
def test_token_names_are_checked_on_the_account_page(signed_in):
    browser, _ = signed_in()
    response = browser.form("/account/tokens", {"token_name": "   "})
    assert response.status_code == 422
    assert "Name the token" in response.get_data(as_text=True)


def test_create_a_room_read_messages_page_by_page_post_and_download(app, api, seat):
    client, headers, _ = api
    created = client.post("/api/v1/rooms", json=_room_body(), headers=headers)
    assert created.status_code == 201, created.get_json()
    room = created.get_json()
    assert created.headers["Location"] == f"/api/v1/rooms/{room['code']}"
    assert room["status"] == "open" and room["timezone"] == "Europe/Paris"
    assert room["starts_at"].endswith("+00:00")  # times come back in UTC
    code = room["code"]
    with app.app_context():
        row = db.session.scalar(db.select(Room).where(Room.code == code))
    pat = seat(row, "Pat")
    with app.test_request_context():
        for i in range(7):
            messages.post(db.session.get(type(pat), pat.id), f"message {i + 1}", f"{i:032x}")

    first = client.get(f"/api/v1/rooms/{code}/messages?limit=3", headers=headers).get_json()
    assert [m["seq"] for m in first["messages"]] == [5, 6, 7]
    assert first["has_older"] and first["before"] == 5 and first["after"] == 7
    second = client.get(f"/api/v1/rooms/{code}/messages?limit=3&before=5", headers=headers).get_json()
    assert [m["seq"] for m in second["messages"]] == [2, 3, 4]
    third = client.get(f"/api/v1/rooms/{code}/messages?limit=3&before=2", headers=headers).get_json()
    assert [m["seq"] for m in third["messages"]] == [1] and not third["has_older"] and third["before"] is None

    posted = client.post(f"/api/v1/rooms/{code}/messages", json={"body": "Welcome!"}, headers=headers)
    assert posted.status_code == 201
    message = posted.get_json()
    assert message["seq"] == 8 and message["author"]["host"] and message["body"] == "Welcome!"
    newer = client.get(f"/api/v1/rooms/{code}/messages?after=7", headers=headers).get_json()
    assert [m["body"] for m in newer["messages"]] == ["Welcome!"] and newer["after"] == 8
    empty = client.get(f"/api/v1/rooms/{code}/messages?after=8", headers=headers).get_json()
    assert empty["messages"] == [] and empty["after"] == 8

    for fmt, media in (
        ("json", "application/json"),
        ("csv", "text/csv"),
        ("md", "text/markdown"),
        ("html", "text/html"),
    ):
        download = client.get(f"/api/v1/rooms/{code}/transcript?format={fmt}", headers=headers)
        assert download.status_code == 200 and download.mimetype == media
        assert "attachment" in download.headers["Content-Disposition"]
        assert "Welcome" in download.get_data(as_text=True)


@pytest.mark.once
def test_posting_twice_with_one_client_token_posts_once(api):
    client, headers, _ = api
    code = client.post("/api/v1/rooms", json=_room_body(), headers=headers).get_json()["code"]
    body = {"body": "Once", "client_token": "ab" * 16}
    first = client.post(f"/api/v1/rooms/{code}/messages", json=body, headers=headers)
    second = client.post(f"/api/v1/rooms/{code}/messages", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json()["id"] == second.get_json()["id"]
    upper = client.post(f"/api/v1/rooms/{code}/messages", json={**body, "client_token": "AB" * 16}, headers=headers)
    assert upper.status_code == 200 and upper.get_json()["id"] == first.get_json()["id"]  # hex in either case
    wrong = client.post(f"/api/v1/rooms/{code}/messages", json={**body, "client_token": "xy" * 16}, headers=headers)
    assert wrong.status_code == 422 and "client_token" in wrong.get_json()["errors"]
    other = client.post(f"/api/v1/rooms/{code}/messages", json={**body, "body": "Twice?"}, headers=headers)
    assert other.status_code == 409 and other.mimetype == "application/problem+json"  # a token is one message
    listed = client.get(f"/api/v1/rooms/{code}/messages", headers=headers).get_json()["messages"]
    assert [m["body"] for m in listed] == ["Once"]


@pytest.mark.once
def test_the_rules_are_the_room_forms_and_come_back_as_problem_documents(api):
    client, headers, _ = api
    body = {**_room_body(), "timezone": "Mars/Olympus", "password": "ab"}
    response = client.post("/api/v1/rooms", json=body, headers=headers)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"] == "about:blank" and problem["status"] == 422 and problem["instance"] == "/api/v1/rooms"
    assert set(problem["errors"]) >= {"timezone", "password"}
    assert client.post("/api/v1/rooms", json=_room_body("Dup"), headers=headers).status_code == 201
    conflict = client.post("/api/v1/rooms", json=_room_body("dup"), headers=headers)
    assert conflict.status_code == 409 and "title" in conflict.get_json()["errors"]
    shape = client.post("/api/v1/rooms", json={"title": 5}, headers=headers)
    assert shape.status_code == 422 and {"title", "starts_at", "password"} <= set(shape.get_json()["errors"])
    broken = client.post("/api/v1/rooms", data="{not json", content_type="application/json", headers=headers)
    assert broken.status_code == 400 and broken.mimetype == "application/problem+json"


@pytest.mark.once
def test_a_room_not_open_refuses_posts_with_403(api):
    client, headers, _ = api
    code = client.post("/api/v1/rooms", json=_room_body(starts_in=timedelta(days=1)), headers=headers).get_json()[
        "code"
    ]
    response = client.post(f"/api/v1/rooms/{code}/messages", json={"body": "early"}, headers=headers)
    assert response.status_code == 403 and "not open" in response.get_json()["detail"]


@pytest.mark.once
def test_changing_the_time_zone_alone_keeps_the_instants(api):
    client, headers, _ = api
    room = client.post("/api/v1/rooms", json=_room_body(), headers=headers).get_json()
    changed = client.patch(f"/api/v1/rooms/{room['code']}", json={"timezone": "America/New_York"}, headers=headers)
    assert changed.status_code == 200
    after = changed.get_json()
    assert after["timezone"] == "America/New_York"
    assert (after["starts_at"], after["ends_at"]) == (room["starts_at"], room["ends_at"])
    renamed = client.patch(f"/api/v1/rooms/{room['code']}", json={"title": "Week one"}, headers=headers).get_json()
    assert renamed["title"] == "Week one" and renamed["starts_at"] == room["starts_at"]


def test_moderation_and_settings_go_through_the_services(app, api, seat):
    client, headers, _ = api
    code = client.post("/api/v1/rooms", json=_room_body(), headers=headers).get_json()["code"]
    with app.app_context():
        room = db.session.scalar(db.select(Room).where(Room.code == code))
    pat = seat(room, "Pat")
    kim = seat(room, "Kim")
    base = f"/api/v1/rooms/{code}"
    assert client.post(f"{base}/premoderation", json={"enabled": True}, headers=headers).get_json()["premoderation"]
    with app.test_request_context():
        held, _ = messages.post(db.session.get(type(pat), pat.id), "please approve", "1" * 32)
        held_id = held.id
    queue = client.get(f"{base}/queue", headers=headers).get_json()["messages"]
    assert [m["id"] for m in queue] == [held_id] and queue[0]["seq"] is None
    approved = client.post(f"{base}/queue/{held_id}/approve", json={}, headers=headers)
    assert approved.status_code == 200 and approved.get_json()["seq"] == 1
    assert client.post(f"{base}/queue/{held_id}/approve", headers=headers).status_code == 409
    removed = client.post(f"{base}/messages/1/remove", headers=headers).get_json()
    assert removed["removed"] and removed["body"] == "" and removed["removed_by"] == "host"
    assert client.post(f"{base}/participants/{kim.id}/ban", headers=headers).status_code == 204
    people = {p["alias"]: p for p in client.get(f"{base}/participants", headers=headers).get_json()["participants"]}
    assert people["Kim"]["banned"] and not people["Kim"]["active"] and people["Pat"]["active"]
    assert client.post(f"{base}/lock", headers=headers).get_json()["locked"]
    assert client.post(f"{base}/slow-mode", json={"seconds": 30}, headers=headers).get_json()["slow_mode_seconds"] == 30
    assert client.post(f"{base}/slow-mode", json={"seconds": 99999}, headers=headers).status_code == 422
    assert client.post(f"{base}/extend", json={"minutes": 0}, headers=headers).status_code == 422
    assert client.post(f"{base}/end", headers=headers).get_json()["status"] == "ended"
    assert client.post(f"{base}/end", headers=headers).status_code == 409
    actions = [e["action"] for e in client.get(f"{base}/audit", headers=headers).get_json()["events"]]
    assert {"message approved", "message removed", "participant banned", "room locked", "room ended early"} <= set(
        actions
    )
    assert client.delete(base, headers=headers).status_code == 204
    assert client.get(base, headers=headers).status_code == 404


@pytest.mark.once
def test_a_signed_in_browser_may_read_but_changes_need_the_csrf_token(signed_in):
    browser, _ = signed_in()
    assert browser.get("/api/v1/rooms").status_code == 200
    refused = browser.post("/api/v1/rooms", json=_room_body())
    assert refused.status_code == 400 and refused.mimetype == "application/problem+json"
    assert "CSRF" in refused.get_json()["detail"]
    allowed = browser.post("/api/v1/rooms", json=_room_body(), headers={"X-CSRFToken": browser.csrf()})
    assert allowed.status_code == 201


def test_a_disabled_accounts_tokens_stop_working(app, api):
    client, headers, facilitator = api
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    with app.app_context():
        admin.disable(None, db.session.get(Facilitator, facilitator.id))
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    with app.app_context():
        admin.enable(db.session.get(Facilitator, facilitator.id))
    assert client.get("/api/v1/me", headers=headers).status_code == 200


@pytest.mark.once
def test_unknown_api_paths_and_methods_are_problem_documents(api):
    client, headers, _ = api
    missing = client.get("/api/v1/nowhere", headers=headers)
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    wrong = client.put("/api/v1/rooms", headers=headers)
    assert wrong.status_code == 405 and wrong.mimetype == "application/problem+json" and "GET" in wrong.headers["Allow"]
    large = client.post("/api/v1/rooms", data="x" * 70_000, content_type="application/json", headers=headers)
    assert large.status_code == 413 and large.mimetype == "application/problem+json"
    assert client.get("/nowhere").mimetype == "text/html"  # pages keep their error pages


@pytest.mark.once
def test_the_document_and_its_page_describe_every_operation(client):
    document = client.get("/api/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    nullable = document["components"]["schemas"]["Message"]["properties"]["seq"]
    assert nullable["type"] == ["integer", "null"]  # OpenAPI 3.1's type lists, not 3.0's nullable
    problem = document["components"]["responses"]["NOT_FOUND"]["content"]
    assert "application/problem+json" in problem
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    operations = [op for item in document["paths"].values() for op in item.values() if isinstance(op, dict)]
    for op in operations:
        if "summary" in op:
            assert op["summary"].replace("'", "&#39;") in html
    assert "<script" not in html and "cdn" not in html.lower()


def test_api_requests_are_limited_per_token(_schema, database_url, redis_url):
    app = create_app(make_config(database_url, redis_url, RATELIMIT_ENABLED=True))
    try:
        with app.app_context():
            empty_database(app)
            app.extensions["chatroom.limiter"].reset()
        with app.test_request_context():
            from chatroom.services import accounts

            one = accounts.sign_up("one@example.org", "One", "correct horse battery")
            two = accounts.sign_up("two@example.org", "Two", "correct horse battery")
            _, first = tokens.create(one, "a")
            _, second = tokens.create(two, "b")
        app.test_client_class = Client
        client = app.test_client()
        statuses = [
            client.post("/api/v1/rooms", json={}, headers={"Authorization": f"Bearer {first}"}).status_code
            for _ in range(61)
        ]
        assert statuses[:60] == [422] * 60 and statuses[60] == 429
        refused = client.post("/api/v1/rooms", json={}, headers={"Authorization": f"Bearer {first}"})
        assert refused.mimetype == "application/problem+json" and int(refused.headers["Retry-After"]) > 0
        other = client.post("/api/v1/rooms", json={}, headers={"Authorization": f"Bearer {second}"})
        assert other.status_code == 422  # another token has its own budget
    finally:
        app.extensions["chatroom.limiter"].reset()
        app.extensions["chatroom.broker"].close()
        app.extensions["chatroom.presence"].close()


@pytest.mark.once
def test_the_host_posts_even_when_the_room_is_locked(api):
    client, headers, _ = api
    code = client.post("/api/v1/rooms", json=_room_body(), headers=headers).get_json()["code"]
    assert client.post(f"/api/v1/rooms/{code}/lock", headers=headers).get_json()["locked"]
    assert client.post(f"/api/v1/rooms/{code}/messages", json={"body": "still me"}, headers=headers).status_code == 201
