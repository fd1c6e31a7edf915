"""The admin area and who may sign up: statistics, accounts (disable, enable, reset two-factor), sign-up modes
and invitation links; a disabled account cannot sign in and its sessions end."""

from __future__ import annotations

import re

import pyotp
import pytest

from chatroom.extensions import db
from chatroom.models import Facilitator
from chatroom.services import accounts, admin
from support.clients import Client
from support.constants import PASSWORD


@pytest.fixture
def as_admin(app, signed_in, make_facilitator):
    """A signed-in admin's browser, and the admin."""
    facilitator = make_facilitator(email="admin@example.org", name="Ada Admin")
    with app.app_context():
        admin.set_admin(db.session.get(Facilitator, facilitator.id), True)
    client, _ = signed_in(facilitator)
    return client, facilitator


# Every admin endpoint as an admin (test_authorization's roles are none of them admins: they get 302/404).
ADMIN_CALLS = [
    ("GET", "/admin/", None, 200),
    ("GET", "/admin/facilitators", None, 200),
    ("POST", "/admin/facilitators/{other}/disable", {}, 303),
    ("POST", "/admin/facilitators/{other}/enable", {}, 303),
    ("POST", "/admin/facilitators/{other}/reset-two-factor", {}, 409),  # two-factor is off
    ("POST", "/admin/facilitators/{other}/explode", {}, 404),
    ("POST", "/admin/facilitators/999999/disable", {}, 404),
    ("GET", "/admin/signup", None, 200),
    ("POST", "/admin/signup", {"mode": "invitation"}, 303),
    ("POST", "/admin/signup", {"mode": "sometimes"}, 422),
    ("POST", "/admin/invitations", {"note": "Nia", "days": "7"}, 303),
    ("POST", "/admin/invitations", {"note": "Nia", "days": "0"}, 422),
    ("POST", "/admin/invitations/1/revoke", {}, 303),
    ("POST", "/admin/invitations/999999/revoke", {}, 404),
]


@pytest.mark.once
def test_every_admin_endpoint_answers_an_admin(app, as_admin, make_facilitator):
    client, _ = as_admin
    other = make_facilitator(email="other@example.org")
    admin_endpoints = {r.endpoint for r in app.url_map.iter_rules() if r.endpoint.startswith("admin.")}
    called = set()
    for method, path, form, expected in ADMIN_CALLS:
        url = path.format(other=other.id)
        response = client.get(url) if method == "GET" else client.form(url, form)
        assert response.status_code == expected, f"{method} {url}: {response.status_code}"
        called.add(app.url_map.bind("localhost").match(url, method=method)[0])
    assert called == admin_endpoints


@pytest.mark.once
def test_a_facilitator_who_is_not_an_admin_finds_nothing(signed_in):
    client, _ = signed_in()
    assert client.get("/admin/").status_code == 404
    assert "Admin" not in client.get("/rooms/").get_data(as_text=True).split("<main", 1)[0]


@pytest.mark.once
def test_statistics_count_accounts_rooms_messages_and_say_streams_are_per_process(as_admin, make_room):
    client, _ = as_admin
    make_room()
    page = client.get("/admin/").get_data(as_text=True)
    assert "Rooms open now</th><td>1<" in page
    assert "Facilitator accounts</th><td>2 (1 admin, 0 disabled)" in page
    assert "per process" in page


def test_disabling_an_account_signs_it_out_everywhere_and_keeps_it_out(app, as_admin, signed_in, make_facilitator):
    client, me = as_admin
    victim = make_facilitator(email="victim@example.org")
    their_browser, _ = signed_in(victim)
    assert their_browser.get("/rooms/").status_code == 200
    assert client.form(f"/admin/facilitators/{victim.id}/disable").status_code == 303
    assert their_browser.get("/rooms/").status_code == 302  # the session ended
    app.test_client_class = Client
    again = app.test_client().form("/login", {"email": victim.email, "password": PASSWORD})
    assert again.status_code == 403 and "disabled" in again.get_data(as_text=True)
    assert client.form(f"/admin/facilitators/{me.id}/disable").status_code == 409  # not yourself
    assert client.form(f"/admin/facilitators/{victim.id}/enable").status_code == 303
    assert app.test_client().form("/login", {"email": victim.email, "password": PASSWORD}).status_code == 303


@pytest.mark.once
def test_resetting_two_factor_lets_them_sign_in_with_the_password(app, as_admin, make_facilitator):
    client, _ = as_admin
    lost = make_facilitator(email="lost@example.org")
    with app.test_request_context():
        row = db.session.get(Facilitator, lost.id)
        secret = accounts.new_totp_secret()
        accounts.enable_two_factor(row, secret, pyotp.TOTP(secret).now())
    listing = client.get("/admin/facilitators").get_data(as_text=True)
    assert "two-factor on" in listing
    assert client.form(f"/admin/facilitators/{lost.id}/reset-two-factor").status_code == 303
    with app.app_context():
        assert db.session.get(Facilitator, lost.id).totp_secret is None


def test_sign_up_closed_and_by_invitation(app, as_admin):
    client, _ = as_admin
    app.test_client_class = Client
    visitor = app.test_client()
    new = {"email": "nia@example.org", "name": "Nia", "password": PASSWORD}
    assert client.form("/admin/signup", {"mode": "closed"}).status_code == 303
    assert visitor.get("/signup").status_code == 403
    assert visitor.form("/signup", new).status_code == 403

    assert client.form("/admin/signup", {"mode": "invitation"}).status_code == 303
    assert visitor.get("/signup").status_code == 403
    assert client.form("/admin/invitations", {"note": "Nia", "days": "7"}).status_code == 303
    page = client.get("/admin/signup").get_data(as_text=True)
    link = re.search(r'<code class="token">([^<]+)</code>', page).group(1)
    assert "shown only once" in page and link not in client.get("/admin/signup").get_data(as_text=True)
    path = link.replace("http://localhost", "").replace("&amp;", "&")
    assert visitor.get(path).status_code == 200
    invite = path.split("invite=")[1]
    assert visitor.form("/signup", {**new, "invite": invite, "password": "short"}).status_code == 422
    assert visitor.form("/signup", {**new, "invite": invite}).status_code == 303  # the refusal kept the link
    app.test_client_class = Client
    second = app.test_client()
    used = second.form("/signup", {**new, "email": "eve@example.org", "invite": invite})
    assert used.status_code == 403 and "not valid" in used.get_data(as_text=True)

    assert client.form("/admin/signup", {"mode": "open"}).status_code == 303
    assert app.test_client().get("/signup").status_code == 200
