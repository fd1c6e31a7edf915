"""Facilitator sign-up, sign-in and sign-out."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from chatroom import passwords
from chatroom.events import EventKind, channel
from chatroom.extensions import db
from chatroom.htmx import safe_next
from chatroom.models import Facilitator
from chatroom.services import accounts
from support.constants import PASSWORD


def _sign_up(client, caplog, email, name="Ann", password=PASSWORD):
    """Sign up through the form; returns the response, the page it leads to, and the mail it sent."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="chatroom.mail"):
        response = client.form("/signup", {"email": email, "name": name, "password": password})
    return response, client.get(response.location).get_data(as_text=True), caplog.text


def _shape(page):
    """A page with its CSRF tokens (random in every response) blanked out."""
    return re.sub(r'(name="csrf[-_]token" (?:content|value)=")[^"]+"', r'\1"', page)


def test_sign_up_creates_the_account_mails_it_and_asks_to_sign_in(client, caplog):
    response, page, mail = _sign_up(client, caplog, "Ann@Example.org")
    assert response.status_code == 303 and response.location == "/login"
    assert "We have sent a mail to Ann@Example.org" in page
    assert "To: Ann@Example.org" in mail and "Your Chatroom account is ready" in mail
    assert client.get("/rooms/").status_code == 302  # not signed in by signing up
    assert client.form("/login", {"email": "ann@example.org", "password": PASSWORD}).status_code == 303
    assert client.get("/rooms/").status_code == 200


def test_an_address_with_an_account_gets_the_same_answer_after_the_same_work(client, caplog, monkeypatch):
    """Issue 11: an existing address answered 409 at once, a new one 303 after hashing. Now: the same status,
    redirect and page, one bcrypt hash each, and a mail to the address (the owner learns someone tried)."""
    hashes = []
    real_hash = passwords.hash
    monkeypatch.setattr(passwords, "hash", lambda password: hashes.append(password) or real_hash(password))
    new, new_page, _ = _sign_up(client, caplog, "new@example.org", password="first passphrase")
    assert hashes == ["first passphrase"]
    client.form("/logout")
    again, again_page, mail = _sign_up(client, caplog, "NEW@example.ORG", name="Mallory", password="other passphrase")
    assert hashes == ["first passphrase", "other passphrase"]
    assert (again.status_code, again.location) == (new.status_code, new.location) == (303, "/login")
    assert _shape(again_page).replace("NEW@example.ORG", "new@example.org") == _shape(new_page)
    assert "To: new@example.org" in mail and "Someone tried to create a Chatroom account" in mail
    # Nothing about the account changed: the first password still works, the second does not.
    assert client.form("/login", {"email": "new@example.org", "password": "other passphrase"}).status_code == 403
    assert client.form("/login", {"email": "new@example.org", "password": "first passphrase"}).status_code == 303


def test_sign_up_checks_every_field(client):
    response = client.form("/signup", {"email": "nope", "name": " ", "password": "short"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'href="#field-email"' in html
    assert 'href="#field-name"' in html
    assert "at least 12 characters" in html
    assert 'aria-invalid="true"' in html


def test_password_longer_than_72_bytes_works_and_every_byte_counts(client):
    long_password = "é" * 64  # 128 bytes in UTF-8
    response = client.form("/signup", {"email": "long@example.org", "name": "Lee", "password": long_password})
    assert response.status_code == 303
    client.form("/logout")
    assert client.form("/login", {"email": "long@example.org", "password": long_password}).status_code == 303
    client.form("/logout")
    near_miss = "é" * 63 + "e"  # same first 72 bytes would fool plain bcrypt
    assert client.form("/login", {"email": "long@example.org", "password": near_miss}).status_code == 403


def test_sign_in_and_out(client, make_facilitator):
    facilitator = make_facilitator()
    response = client.form("/login", {"email": facilitator.email.upper(), "password": PASSWORD})
    assert response.status_code == 303
    assert client.get("/rooms/").status_code == 200
    assert client.form("/logout").status_code == 303
    response = client.get("/rooms/")
    assert response.status_code == 302
    assert "/login" in response.location


def test_the_sign_in_page_tells_a_signed_in_browser_where_to_go_on(client, make_facilitator):
    """A page whose sign-in ended links to /login; a browser signed in again (a new password) is offered its
    way on (to ``next`` when it is a path of this site, else its rooms)."""
    facilitator = make_facilitator()
    assert "You are signed in" not in client.get("/login").get_data(as_text=True)
    client.form("/login", {"email": facilitator.email, "password": PASSWORD})
    page = client.get("/login").get_data(as_text=True)
    assert f"You are signed in as {facilitator.name}" in page and '<a href="/rooms/">Go on</a>' in page
    assert '<a href="/account">Go on</a>' in client.get("/login?next=/account").get_data(as_text=True)
    assert '<a href="/rooms/">' in client.get("/login?next=//evil.example").get_data(as_text=True)  # never off-site


def test_wrong_password_and_unknown_email_get_the_same_answer(client, make_facilitator):
    facilitator = make_facilitator()
    wrong = client.form("/login", {"email": facilitator.email, "password": "not the password"})
    unknown = client.form("/login", {"email": "nobody@example.org", "password": "not the password"})
    assert wrong.status_code == unknown.status_code == 403
    assert "The email or password is not right" in wrong.get_data(as_text=True)
    assert "The email or password is not right" in unknown.get_data(as_text=True)


def test_post_without_csrf_token_is_refused(client, make_facilitator):
    facilitator = make_facilitator()
    response = client.post("/login", data={"email": facilitator.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)


def test_session_cookie_flags(client, make_facilitator):
    facilitator = make_facilitator()
    response = client.form("/login", {"email": facilitator.email, "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_next_only_redirects_on_this_site(app):
    with app.test_request_context():
        assert safe_next("/rooms/abc") == "/rooms/abc"
        for hostile in ("//evil.example", "https://evil.example", "/\\evil.example", "javascript:alert(1)", None, ""):
            assert safe_next(hostile) == "/rooms/"


def test_a_copied_cookie_stops_working_after_sign_out(app, client, make_facilitator):
    facilitator = make_facilitator()
    client.form("/login", {"email": facilitator.email, "password": PASSWORD})
    copied = client.get_cookie("session").value
    assert client.form("/logout").status_code == 303
    thief = app.test_client()
    thief.set_cookie("session", copied)
    response = thief.get("/rooms/")
    assert response.status_code == 302 and "/login" in response.location


def test_sign_in_starts_a_fresh_session(app, client, make_facilitator):
    facilitator = make_facilitator()
    client.get("/login")
    before = client.get_cookie("session").value
    client.form("/login", {"email": facilitator.email, "password": PASSWORD})
    after = client.get_cookie("session").value
    assert before != after
    # A token planted before sign-in does not survive it.
    serializer = app.session_interface.get_signing_serializer(app)
    assert serializer.loads(after).get("csrf_token") != serializer.loads(before).get("csrf_token")


def test_idle_and_absolute_session_lifetimes(app, client, make_facilitator):
    """Past either limit the cookie stops working, and its sign-in ends for good (the row goes, so the host
    streams it opened end at their next re-check)."""
    facilitator = make_facilitator()
    client.form("/login", {"email": facilitator.email, "password": PASSWORD})
    with client.session_transaction() as session:
        session["seen_at"] -= app.config["SESSION_IDLE_MINUTES"] * 60 + 5
        token = session["login"]
    assert client.get("/rooms/").status_code == 302
    with app.app_context():
        assert accounts.sign_in_fingerprint(token) not in accounts.current_sign_ins(facilitator.id)
    client.form("/login", {"email": facilitator.email, "password": PASSWORD})
    with client.session_transaction() as session:
        session["login_at"] -= app.config["SESSION_MAX_HOURS"] * 3600 + 5
    assert client.get("/rooms/").status_code == 302


def test_signing_out_tells_the_rooms_streams_which_sign_in_ended(app, broker, make_facilitator, make_room):
    """One browser's sign-out names that sign-in (a fingerprint, never the token); everywhere names none (all of
    them); a browser with no sign-in token ends nothing. Only rooms that have not ended are told."""
    owner = make_facilitator()
    room = make_room(owner=owner)
    ended = make_room(owner=owner, title="Over", starts_in=timedelta(hours=-3), lasts=timedelta(hours=1))
    live, over = broker.subscribe(channel(room.id)), broker.subscribe(channel(ended.id))
    with app.test_request_context():
        account = db.session.get(Facilitator, owner.id)
        token = accounts.start_session(account)
        accounts.end_session(account, "")
        assert live.get(timeout=0.2) is None
        accounts.end_session(account, token)
        event = live.get(timeout=1)
        assert event.kind is EventKind.SIGNED_OUT and event.frame == accounts.sign_in_fingerprint(token).encode()
        assert token.encode() not in event.frame
        accounts.end_sessions(account)
        assert live.get(timeout=1).frame == b""
        assert over.get(timeout=0.2) is None
    live.close()
    over.close()
