"""Rate limits: 429 with a human message and Retry-After, checked before any password work,
shared across workers through Redis, and not fooled by a forged X-Forwarded-For."""

from __future__ import annotations

import pytest

from chatroom import create_app
from chatroom.limits import LIMITS
from support.app import empty_database, make_config
from support.clients import Client, form_token
from support.constants import PASSWORD, ROOM_PASSWORD
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


def test_reactions_and_votes_count_as_posts(limited_app, make_room, join):
    """One counter for posting, reacting, voting and a private word: 20 of them in 10 s, then 429."""
    room = make_room()
    pat = join(room, "Pat", client=limited_app.test_client())
    kim = join(room, "Kim", client=limited_app.test_client())
    question = {"body": "Why?", "token": "f" * 32, "question": "1"}
    assert kim.form(f"/r/{room.code}/messages", question).status_code == 303
    statuses = [
        pat.form(f"/r/{room.code}/messages", {"body": f"m{i}", "token": f"{i:032x}"}).status_code for i in range(10)
    ]
    statuses += [pat.form(f"/r/{room.code}/messages/1/react", {"emoji": "heart"}).status_code for _ in range(6)]
    statuses += [pat.form(f"/r/{room.code}/messages/1/vote").status_code for _ in range(3)]
    statuses.append(pat.form(f"/r/{room.code}/private", {"note": "hello"}).status_code)
    assert statuses == [303] * 20
    response = pat.form(f"/r/{room.code}/messages/1/react", {"emoji": "eyes"})
    assert response.status_code == 429 and "Retry-After" in response.headers
    assert kim.form(f"/r/{room.code}/messages/1/react", {"emoji": "eyes"}).status_code == 303  # per seat


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


# -- per account: second factors, password re-checks, room creation --------------------------------------


def _from(address: str) -> dict[str, dict[str, str]]:
    return {"environ_base": {"REMOTE_ADDR": address}}


def test_wrong_second_factor_codes_are_limited_per_account_across_addresses(limited_app, make_facilitator):
    """Six addresses that all have the password share one account's budget of code guesses (issue 11: 60 wrong
    TOTP codes in 2 s from 6 addresses); another account is not affected."""
    from chatroom.extensions import db
    from chatroom.models import Facilitator

    victim, bystander = make_facilitator(), make_facilitator()
    with limited_app.app_context():
        for facilitator in (victim, bystander):
            db.session.get(Facilitator, facilitator.id).totp_secret = "A" * 32
        db.session.commit()
    statuses = []
    for i in range(6):
        attacker = limited_app.test_client()
        address = f"198.51.100.{i}"
        assert (
            attacker.form("/login", {"email": victim.email, "password": PASSWORD}, **_from(address)).status_code == 303
        )
        for _ in range(2):
            statuses.append(attacker.form("/login/code", {"code": "000000"}, **_from(address)).status_code)
    assert statuses[:6] == [403] * 6  # wrong codes, each address well under its own limit
    assert set(statuses[6:]) == {429}
    other = limited_app.test_client()
    assert other.form("/login", {"email": bystander.email, "password": PASSWORD}).status_code == 303
    assert other.form("/login/code", {"code": "000000"}).status_code == 403


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/account/two-factor/disable", "disable_password"),
        ("/account/password", "current_password"),
        ("/account/recovery-codes", "codes_password"),
    ],
)
def test_password_re_checks_are_limited_per_account_across_addresses(limited_app, make_facilitator, path, field):
    client = _signed_in(limited_app, make_facilitator())
    if path == "/account/recovery-codes":
        from chatroom.extensions import db
        from chatroom.models import Facilitator

        with limited_app.app_context():  # new codes need two-factor sign-in on
            db.session.get(Facilitator, client.facilitator_id).totp_secret = "A" * 32
            db.session.commit()
    statuses = [
        client.form(
            path, {field: "not my password", "password": "a brand new passphrase"}, **_from(f"203.0.113.{i}")
        ).status_code
        for i in range(11)
    ]
    assert 429 not in statuses[:10]
    assert statuses[10] == 429


def _signed_in(app, facilitator):
    client = app.test_client()
    assert client.form("/login", {"email": facilitator.email, "password": PASSWORD}).status_code == 303
    client.facilitator_id = facilitator.id
    return client


def test_room_creation_is_limited_per_account(limited_app, make_facilitator):
    from support.world import _room_form

    limited_app.config["ROOMS_PER_HOUR"] = 3
    client = _signed_in(limited_app, make_facilitator())
    statuses = [client.form("/rooms/", _room_form(f"Room {i}")).status_code for i in range(4)]
    assert statuses == [303, 303, 303, 429]
    other = _signed_in(limited_app, make_facilitator())
    assert other.form("/rooms/", _room_form("Someone else's")).status_code == 303


def test_a_full_room_refuses_joins_with_a_clear_message(app, make_room, join, new_client):
    app.config["MEMBERS_PER_ROOM"] = 3  # the host's seat and two more
    room = make_room()
    pat = join(room, "Pat")
    join(room, "Kim")
    late = new_client()
    response = late.form(f"/r/{room.code}/join", {"alias": "Lee", "password": ROOM_PASSWORD})
    assert response.status_code == 403
    assert "This room is full" in response.get_data(as_text=True)
    assert pat.form(f"/r/{room.code}/leave").status_code == 303  # a place frees up
    assert late.form(f"/r/{room.code}/join", {"alias": "Lee", "password": ROOM_PASSWORD}).status_code == 303
