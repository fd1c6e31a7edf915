"""Rate limits: 429 with a human message and Retry-After, checked before any password work,
shared across workers through Redis, and not fooled by a forged X-Forwarded-For."""

from __future__ import annotations

import pytest

from chatroom import create_app
from chatroom.limits import LIMITS
from support.app import empty_database, make_config
from support.clients import Client, form_token
from support.constants import ROOM_PASSWORD
from support.live import Browser


@pytest.fixture
def limited_app(_schema, database_url, redis_url):
    app = create_app(make_config(database_url, redis_url, RATELIMIT_ENABLED=True))
    with app.app_context():
        empty_database(app)
        _reset(app)
    app.test_client_class = Client
    yield app
    app.extensions["chatroom.broker"].close()
    app.extensions["chatroom.presence"].close()


def _reset(app):
    app.extensions["chatroom.limiter"].reset()


def test_every_limited_endpoint_exists(app):
    optional = {"auth.login_code", "auth.forgot_password", "auth.reset_password", "auth.change_password"}
    missing = set(LIMITS) - set(app.view_functions) - optional
    assert missing == set()


def test_sign_in_is_limited_with_a_message_and_retry_after(limited_app):
    client = limited_app.test_client()
    statuses = [
        client.form("/login", {"email": "x@example.org", "password": "wrong password!"}).status_code for _ in range(11)
    ]
    assert statuses[:10] == [403] * 10
    assert statuses[10] == 429
    response = client.form("/login", {"email": "x@example.org", "password": "wrong password!"})
    assert response.status_code == 429
    assert "Too many attempts" in response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) > 0


def test_join_is_limited_per_address_before_any_bcrypt(limited_app, make_room, monkeypatch):
    """Ten wrong passwords from one browser: the eleventh try is refused before the password is looked at."""
    from chatroom import passwords

    room = make_room()
    client = limited_app.test_client()
    for _ in range(10):
        assert client.form(f"/r/{room.code}/join", {"alias": "Mallory", "password": "nope"}).status_code == 403
    calls = []
    monkeypatch.setattr(passwords, "check", lambda *a: calls.append(a) or False)
    response = client.form(f"/r/{room.code}/join", {"alias": "Pat", "password": ROOM_PASSWORD})
    assert response.status_code == 429
    assert calls == []  # refused before the password was looked at


def test_forged_forwarded_for_changes_nothing(limited_app):
    client = limited_app.test_client()
    for i in range(10):
        client.form("/login", {"email": "x@example.org", "password": "p"}, headers={"X-Forwarded-For": f"10.0.0.{i}"})
    response = client.form(
        "/login", {"email": "x@example.org", "password": "p"}, headers={"X-Forwarded-For": "10.9.9.9"}
    )
    assert response.status_code == 429


def test_trusted_proxy_hops_make_forwarded_for_count(_schema, database_url, redis_url):
    app = create_app(make_config(database_url, redis_url, RATELIMIT_ENABLED=True, TRUSTED_PROXY_HOPS=1))
    with app.app_context():
        _reset(app)
    app.test_client_class = Client
    client = app.test_client()
    for i in range(12):
        response = client.form(
            "/login", {"email": "x@example.org", "password": "p"}, headers={"X-Forwarded-For": f"10.0.1.{i}"}
        )
        assert response.status_code == 403  # each its own address, as the proxy says
    app.extensions["chatroom.broker"].close()
    app.extensions["chatroom.presence"].close()


def test_posting_is_limited_per_participant(limited_app, make_room, join):
    room = make_room()
    pat = join(room, "Pat", client=limited_app.test_client())
    page = pat.get(f"/r/{room.code}").get_data(as_text=True)
    token = form_token(page)
    statuses = []
    for i in range(21):
        statuses.append(pat.form(f"/r/{room.code}/messages", {"body": f"m{i}", "token": f"{i:032x}"}).status_code)
    assert statuses[:20] == [303] * 20 and statuses[20] == 429
    kim = join(room, "Kim", client=limited_app.test_client())
    assert kim.form(f"/r/{room.code}/messages", {"body": "hi", "token": token}).status_code == 303


@pytest.mark.services
@pytest.mark.live
def test_limits_are_shared_across_two_gunicorn_workers(servers):
    """Two workers, one Redis: eleven sign-in attempts from one address, the eleventh refused."""
    server = servers(workers=2, RATELIMIT_ENABLED="1")
    statuses = []
    for _ in range(11):
        browser = Browser(server.port)  # a fresh connection each time: the workers take turns
        statuses.append(browser.post("/login", {"email": "x@example.org", "password": "wrong password!"}))
    assert statuses[:10] == [403] * 10 and statuses[10] == 429
