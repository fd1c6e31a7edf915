"""Optional two-factor sign-in: TOTP from an authenticator app, and single-use recovery codes."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import types
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import func, select

from chatroom.extensions import db
from chatroom.models import Facilitator, PendingSecret, RecoveryCode
from chatroom.services import accounts
from support.constants import PASSWORD

START = 1_800_000_010  # 10 s into a 30-second step


class Clock:
    """The time the TOTP check sees, moved by hand: codes are then exact, never flaky at a step boundary."""

    def __init__(self) -> None:
        self.now = float(START)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(accounts, "time", types.SimpleNamespace(time=lambda: clock.now))
    return clock


def page(response):
    return response.get_data(as_text=True)


def fresh_csrf(client):
    client._csrf = None
    return client


def code(secret, clock, steps=0):
    return pyotp.TOTP(secret).at(clock.now + 30 * steps)


def row(app, facilitator):
    """The saved secret and the used_at of each recovery code."""
    with app.app_context():
        found = db.session.get(Facilitator, facilitator.id)
        codes = db.session.scalars(select(RecoveryCode).filter_by(facilitator_id=found.id))
        return found.totp_secret, [r.used_at for r in codes]


def enable(client, clock):
    """Turn two-factor sign-in on through the pages; returns the secret and the recovery codes shown."""
    setup = page(client.get("/account/two-factor"))
    secret = re.search(r'<code class="totp-secret">([A-Z2-7 ]+)</code>', setup).group(1).replace(" ", "")
    response = client.form("/account/two-factor", {"code": code(secret, clock)})
    assert response.status_code == 303 and response.location == "/account/recovery-codes"
    codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", page(client.get("/account/recovery-codes")))
    clock.advance(30)  # the confirming code is spent; sign-ins use the next one
    return secret, codes


def sign_in(new_client, facilitator, next_url=None):
    """Password step; returns the client, now waiting for its code."""
    client = new_client()
    form = {"email": facilitator.email, "password": PASSWORD}
    if next_url:
        form["next"] = next_url
    response = client.form("/login", form)
    assert response.status_code == 303 and response.location == "/login/code"
    return client


def recover(new_client, facilitator, recovery_code):
    """Sign in with the password and a recovery code, from a new browser."""
    return sign_in(new_client, facilitator).form("/login/code?method=recovery", {"recovery_code": recovery_code})


# -- turning it on --------------------------------------------------------------


def test_enable_with_confirmation(app, clock, signed_in):
    client, facilitator = signed_in()
    account = page(client.get("/account"))
    assert "Off." in account and 'href="/account/two-factor"' in account
    response = client.get("/account/two-factor")
    setup = page(response)
    assert response.headers["Cache-Control"] == "no-store"
    # A QR code drawn on the server, as inline SVG, with nothing a strict CSP refuses.
    assert '<svg width="' in setup and 'class="qr"' in setup and "<title>QR code" in setup
    assert "style=" not in setup and "<script" not in setup.split("</head>")[1]
    assert 'autocomplete="one-time-code"' in setup and 'inputmode="numeric"' in setup
    secret = re.search(r'<code class="totp-secret">([A-Z2-7 ]+)</code>', setup).group(1)
    assert re.fullmatch(r"([A-Z2-7]{4} )+[A-Z2-7]{1,4}", secret)  # grouped for typing
    secret = secret.replace(" ", "")
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    assert f'<code class="totp-secret">{grouped}</code>' in page(
        client.get("/account/two-factor")
    )  # kept until confirmed
    assert row(app, facilitator) == (None, [])  # nothing saved before the confirmation

    response = client.form(
        "/account/two-factor", {"code": " ".join([code(secret, clock)[:3], code(secret, clock)[3:]])}
    )
    assert response.status_code == 303 and response.location == "/account/recovery-codes"
    shown = client.get("/account/recovery-codes")
    assert shown.headers["Cache-Control"] == "no-store"
    codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", page(shown))
    assert len(set(codes)) == 10
    saved_secret, used = row(app, facilitator)
    assert saved_secret == secret and used == [None] * 10
    with app.app_context():
        hashes = set(db.session.scalars(select(RecoveryCode.code_hash)))
    assert hashes == {hashlib.sha256(c.replace("-", "").encode()).hexdigest() for c in codes}  # hashes only
    # Shown once: a second visit sends you back to the account page.
    again = client.get("/account/recovery-codes")
    assert again.status_code == 303 and again.location == "/account"
    account = page(client.get("/account"))
    assert "On." in account and "10 of 10 recovery codes" in account
    assert client.get("/account/two-factor").status_code == 303  # already on


def test_wrong_confirmation_code_saves_nothing(app, clock, signed_in):
    client, facilitator = signed_in()
    setup = page(client.get("/account/two-factor"))
    secret = re.search(r'<code class="totp-secret">([A-Z2-7 ]+)</code>', setup).group(1)
    for wrong in ("000000", "12345", "abcdef", ""):
        response = client.form("/account/two-factor", {"code": wrong})
        assert response.status_code == 422
        html = page(response)
        assert "<title>Error: " in html and 'href="#field-code"' in html and 'aria-invalid="true"' in html
        assert "That code is not right" in html
        assert secret in html  # the same key, to try again
    other_secret = pyotp.random_base32()
    assert client.form("/account/two-factor", {"code": code(other_secret, clock)}).status_code == 422
    assert row(app, facilitator) == (None, [])


def test_two_factor_needs_sign_in(client):
    for url in ("/account", "/account/two-factor", "/account/recovery-codes"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.location


# -- signing in ---------------------------------------------------------------------


def test_sign_in_needs_the_code(clock, signed_in, new_client):
    client, facilitator = signed_in()
    secret, _ = enable(client, clock)
    waiting = sign_in(new_client, facilitator, next_url="/rooms/new")
    assert waiting.get("/rooms/").status_code == 302  # not signed in yet
    form = page(waiting.get("/login/code"))
    assert 'autocomplete="one-time-code"' in form and 'inputmode="numeric"' in form
    assert 'href="/login/code?method=recovery"' in form
    wrong = waiting.form("/login/code", {"code": "000000" if code(secret, clock) != "000000" else "111111"})
    assert wrong.status_code == 403
    assert "That code is not right" in page(wrong) and "<title>Error: " in page(wrong)
    assert waiting.form("/login/code", {"code": code(secret, clock, steps=-5)}).status_code == 403  # too old
    response = waiting.form("/login/code", {"code": code(secret, clock, steps=1)})  # one step of drift is fine
    assert response.status_code == 303 and response.location == "/rooms/new"
    assert fresh_csrf(waiting).get("/rooms/").status_code == 200


def test_code_page_without_a_password_first_sends_you_to_sign_in(client):
    response = client.get("/login/code")
    assert response.status_code == 303 and response.location == "/login"
    assert client.form("/login/code", {"code": "123456"}).status_code == 303


def test_a_code_cannot_be_used_twice(clock, signed_in, new_client):
    client, facilitator = signed_in()
    secret, _ = enable(client, clock)
    used = code(secret, clock)
    assert sign_in(new_client, facilitator).form("/login/code", {"code": used}).status_code == 303
    # Someone who saw the code replays it at once, from another browser: refused.
    replay = sign_in(new_client, facilitator).form("/login/code", {"code": used})
    assert replay.status_code == 403
    clock.advance(30)  # still inside the drift window: still refused
    assert sign_in(new_client, facilitator).form("/login/code", {"code": used}).status_code == 403
    assert sign_in(new_client, facilitator).form("/login/code", {"code": code(secret, clock)}).status_code == 303


def test_the_confirmation_code_cannot_sign_in(clock, signed_in, new_client):
    client, facilitator = signed_in()
    setup = page(client.get("/account/two-factor"))
    secret = re.search(r'<code class="totp-secret">([A-Z2-7 ]+)</code>', setup).group(1).replace(" ", "")
    confirming = code(secret, clock)
    assert client.form("/account/two-factor", {"code": confirming}).status_code == 303
    assert sign_in(new_client, facilitator).form("/login/code", {"code": confirming}).status_code == 403


def test_recovery_code_works_once(app, clock, signed_in, new_client):
    client, facilitator = signed_in()
    _, codes = enable(client, clock)
    waiting = sign_in(new_client, facilitator)
    form = page(waiting.get("/login/code?method=recovery"))
    assert 'name="recovery_code"' in form and 'inputmode="text"' in form
    typed = codes[3].upper().replace("-", " ")  # any case, any separator
    response = waiting.form("/login/code?method=recovery", {"recovery_code": typed})
    assert response.status_code == 303 and response.location == "/rooms/"
    dashboard = page(fresh_csrf(waiting).get("/rooms/"))
    assert "You have 9 left" in dashboard
    assert sum(u is not None for u in row(app, facilitator)[1]) == 1
    again = recover(new_client, facilitator, codes[3])
    assert again.status_code == 403 and "used already" in page(again)
    assert sign_in(new_client, facilitator).form("/login/code", {"code": codes[4]}).status_code == 403  # wrong field
    assert recover(new_client, facilitator, "zzzzz-zzzzz").status_code == 403
    assert "9 of 10 recovery codes" in page(client.get("/account"))


def test_pending_sign_in_expires(app, clock, signed_in, new_client):
    client, facilitator = signed_in()
    secret, _ = enable(client, clock)
    waiting = sign_in(new_client, facilitator)
    with waiting.session_transaction() as session:
        pending = session["two_factor_pending"]
        pending["at"] -= app.config["TWO_FACTOR_PENDING_SECONDS"] + 1
        session["two_factor_pending"] = pending
    response = waiting.form("/login/code", {"code": code(secret, clock)})
    assert response.status_code == 303 and response.location == "/login"
    assert "Signing in took too long" in page(waiting.get("/login"))
    assert waiting.get("/rooms/").status_code == 302
    # The code was not spent by the refused attempt.
    assert sign_in(new_client, facilitator).form("/login/code", {"code": code(secret, clock)}).status_code == 303


def test_pending_sign_in_dies_when_the_password_changes(app, clock, signed_in, new_client):
    client, facilitator = signed_in()
    secret, _ = enable(client, clock)
    waiting = sign_in(new_client, facilitator)
    with app.app_context():
        accounts.set_password(db.session.get(Facilitator, facilitator.id), "the owner changed it")
    response = waiting.form("/login/code", {"code": code(secret, clock)})
    assert response.status_code == 303 and response.location == "/login"


# -- managing it ----------------------------------------------------------------------


def test_disable_needs_the_password(app, clock, signed_in, new_client):
    client, facilitator = signed_in()
    enable(client, clock)
    wrong = client.form("/account/two-factor/disable", {"disable_password": "not my password"})
    assert wrong.status_code == 403
    html = page(wrong)
    assert "<title>Error: " in html and 'href="#field-disable_password"' in html and 'aria-invalid="true"' in html
    assert row(app, facilitator)[0] is not None
    response = client.form("/account/two-factor/disable", {"disable_password": PASSWORD})
    assert response.status_code == 303 and response.location == "/account"
    assert "Two-factor sign-in is off" in page(client.get("/account"))
    assert row(app, facilitator) == (None, [])
    plain = new_client()
    assert plain.form("/login", {"email": facilitator.email, "password": PASSWORD}).location == "/rooms/"


def test_new_recovery_codes_replace_the_old(app, clock, signed_in, new_client):
    client, facilitator = signed_in()
    _, old = enable(client, clock)
    assert client.form("/account/recovery-codes", {"codes_password": "wrong password"}).status_code == 403
    response = client.form("/account/recovery-codes", {"codes_password": PASSWORD})
    assert response.status_code == 303 and response.location == "/account/recovery-codes"
    new = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", page(client.get("/account/recovery-codes")))
    assert len(new) == 10 and not set(new) & set(old)
    assert recover(new_client, facilitator, old[0]).status_code == 403
    assert recover(new_client, facilitator, new[0]).status_code == 303


def test_password_reset_does_not_skip_the_second_factor(caplog, clock, signed_in, new_client):
    client, facilitator = signed_in()
    secret, _ = enable(client, clock)
    reader = new_client()  # whoever reads the mail
    with caplog.at_level(logging.INFO, logger="chatroom.mail"):
        reader.form("/password/forgot", {"email": facilitator.email})
    link = re.search(r"http://localhost(/password/reset/\S+)", caplog.text).group(1)
    response = reader.form(link, {"password": "a brand new passphrase"})
    assert response.status_code == 303 and response.location == "/login/code"
    assert reader.get("/rooms/").status_code == 302  # not signed in by the link alone
    assert client.get("/rooms/").status_code == 302  # and the old session is over
    assert reader.form("/login/code", {"code": code(secret, clock)}).status_code == 303
    assert fresh_csrf(reader).get("/rooms/").status_code == 200


# -- nothing secret in the (signed, readable) session cookie ----------------------------------------------


def _cookie_contents(app, client):
    """What anyone who sees this browser's session cookie can read (it is signed, not encrypted)."""
    cookie = client.get_cookie("session")
    return json.dumps(app.session_interface.get_signing_serializer(app).loads(cookie.value)) if cookie else ""


def test_the_set_up_key_and_fresh_codes_never_travel_in_the_session_cookie(app, clock, signed_in):
    """Issue 11: the set-up secret and fresh recovery codes were in the session cookie. Now the cookie holds
    only a random key to a row on the server, which works only for its account and only for a while."""
    client, _ = signed_in()
    setup = page(client.get("/account/two-factor"))
    secret = re.search(r'<code class="totp-secret">([A-Z2-7 ]+)</code>', setup).group(1).replace(" ", "")
    assert secret not in _cookie_contents(app, client)
    response = client.form("/account/two-factor", {"code": code(secret, clock)})
    assert response.status_code == 303
    contents = _cookie_contents(app, client)
    codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", page(client.get("/account/recovery-codes")))
    assert len(codes) == 10
    assert secret not in contents and not any(c in contents or c.replace("-", "") in contents for c in codes)
    assert client.get("/account/recovery-codes").status_code == 303  # shown once: the row is spent
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PendingSecret)) == 0  # nothing left behind


def test_a_kept_secret_works_only_for_its_account_kind_and_lifetime(app, make_facilitator, monkeypatch):
    owner, other = make_facilitator(), make_facilitator()
    with app.app_context():
        mine, theirs = db.session.get(Facilitator, owner.id), db.session.get(Facilitator, other.id)
        key = accounts.keep_secret(mine, accounts.TOTP_SETUP, "SECRET")
        assert accounts.pending_secret(theirs, accounts.TOTP_SETUP, key) is None
        assert accounts.pending_secret(mine, accounts.RECOVERY_CODES, key) is None
        assert accounts.pending_secret(mine, accounts.TOTP_SETUP, "forged") is None
        assert accounts.pending_secret(mine, accounts.TOTP_SETUP, key) == "SECRET"
        later = accounts.utcnow() + accounts.SECRET_LIFETIME[accounts.TOTP_SETUP] + timedelta(seconds=1)
        monkeypatch.setattr(accounts, "utcnow", lambda: later)
        assert accounts.pending_secret(mine, accounts.TOTP_SETUP, key) is None  # expired, and gone
        db.session.remove()
