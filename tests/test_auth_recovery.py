"""Changing a password, and resetting a forgotten one by mail."""

from __future__ import annotations

import base64
import logging
import re
import socketserver
import threading
import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from chatroom import mail
from chatroom.extensions import db
from chatroom.models import Facilitator
from chatroom.services import accounts
from support.constants import PASSWORD

NEW_PASSWORD = "a brand new passphrase"
LINK = re.compile(r"http://localhost(/password/reset/[\w.\-]+)")


def fresh_csrf(client):
    """After a sign-in the session is new, and so is its CSRF token."""
    client._csrf = None
    return client


def page(response):
    return response.get_data(as_text=True)


# -- change password ------------------------------------------------------------


def test_change_password_needs_sign_in(client):
    response = client.get("/account/password")
    assert response.status_code == 302 and "/login" in response.location


def test_change_password(client, signed_in):
    client, facilitator = signed_in()
    form = page(client.get("/account/password"))
    assert 'autocomplete="current-password"' in form and 'autocomplete="new-password"' in form
    response = client.form("/account/password", {"current_password": PASSWORD, "password": NEW_PASSWORD})
    assert response.status_code == 303 and response.location == "/account"
    account = page(fresh_csrf(client).get("/account"))
    assert "Your password is changed" in account and 'role="status"' in account
    client.form("/logout")
    assert client.form("/login", {"email": facilitator.email, "password": PASSWORD}).status_code == 403
    assert client.form("/login", {"email": facilitator.email, "password": NEW_PASSWORD}).status_code == 303


def test_wrong_current_password_is_refused_with_a_clear_message(app, signed_in):
    client, facilitator = signed_in()
    response = client.form("/account/password", {"current_password": "not my password", "password": NEW_PASSWORD})
    assert response.status_code == 403
    html = page(response)
    assert "<title>Error: " in html
    assert 'role="alert"' in html and 'href="#field-current_password"' in html
    assert "Your current password is not right" in html
    assert 'id="field-current_password"' in html and 'aria-invalid="true"' in html
    assert 'aria-describedby="error-current_password"' in html
    with app.app_context():
        assert accounts._password_matches(db.session.get(Facilitator, facilitator.id), PASSWORD)


def test_new_password_too_short_or_too_long(signed_in):
    client, _ = signed_in()
    response = client.form("/account/password", {"current_password": PASSWORD, "password": "short"})
    assert response.status_code == 422
    assert "at least 12 characters" in page(response)
    response = client.form("/account/password", {"current_password": PASSWORD, "password": "x" * 1025})
    assert response.status_code == 422
    assert "at most 1024 characters" in page(response)
    # Both wrong: both are reported, and the wrong password decides the status.
    response = client.form("/account/password", {"current_password": "nope", "password": "short"})
    assert response.status_code == 403
    assert 'href="#field-current_password"' in page(response) and 'href="#field-password"' in page(response)


def test_a_password_longer_than_72_bytes_works_and_every_byte_counts(signed_in):
    client, facilitator = signed_in()
    long_password = "é" * 64  # 128 bytes in UTF-8
    response = client.form("/account/password", {"current_password": PASSWORD, "password": long_password})
    assert response.status_code == 303
    fresh_csrf(client).form("/logout")
    assert client.form("/login", {"email": facilitator.email, "password": "é" * 63 + "e"}).status_code == 403
    assert client.form("/login", {"email": facilitator.email, "password": long_password}).status_code == 303


def test_changing_the_password_signs_out_every_other_session(app, signed_in):
    client, facilitator = signed_in()
    other, _ = signed_in(facilitator)
    old_cookie = client.get_cookie("session").value
    assert other.get("/rooms/").status_code == 200
    assert client.form("/account/password", {"current_password": PASSWORD, "password": NEW_PASSWORD}).status_code == 303
    response = other.get("/rooms/")
    assert response.status_code == 302 and "/login" in response.location
    assert client.get("/rooms/").status_code == 200  # this browser was signed in afresh
    assert client.get_cookie("session").value != old_cookie
    thief = app.test_client()
    thief.set_cookie("session", old_cookie)
    assert thief.get("/rooms/").status_code == 302


# -- password reset by mail --------------------------------------------------------


def reset_link(caplog, client, email):
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="chatroom.mail"):
        response = client.form("/password/forgot", {"email": email})
    assert response.status_code == 200
    found = LINK.search(caplog.text)
    return response, (found.group(1) if found else None)


def test_sign_in_page_links_to_the_reset(client):
    html = page(client.get("/login"))
    assert 'href="/password/forgot"' in html and "Forgot your password?" in html
    form = page(client.get("/password/forgot"))
    assert 'autocomplete="email"' in form and 'type="email"' in form


def test_unknown_and_known_addresses_get_the_same_answer(caplog, client, make_facilitator):
    facilitator = make_facilitator(email="known@example.org")
    known, link = reset_link(caplog, client, "Known@Example.org")
    assert link is not None
    assert "MAIL_SERVER is not set" in caplog.text and f"To: {facilitator.email}" in caplog.text
    unknown, no_link = reset_link(caplog, client, "unknown@example.org")
    assert no_link is None and "To:" not in caplog.text
    assert known.status_code == unknown.status_code == 200
    message = "If an account exists for that address, we've sent a link"
    assert message in page(known) and message in page(unknown)
    # CSRF tokens are masked afresh for every response (docs/security.md), so they differ by design.
    unmasked = [re.sub(r'(csrf[-_]token"? (?:content|value)=")[^"]+', r"\1TOKEN", page(r)) for r in (known, unknown)]
    same = unmasked[0].replace("Known@Example.org", "ADDRESS"), unmasked[1].replace("unknown@example.org", "ADDRESS")
    assert same[0] == same[1]


def test_not_an_email_address_is_refused(client):
    response = client.form("/password/forgot", {"email": "not an address"})
    assert response.status_code == 422
    assert "<title>Error: " in page(response) and 'aria-invalid="true"' in page(response)


def test_reset_link_works_once_and_ends_every_session(caplog, app, client, signed_in, new_client):
    other, facilitator = signed_in()
    _, link = reset_link(caplog, client, facilitator.email)
    form = client.get(link)
    assert form.status_code == 200
    assert 'autocomplete="new-password"' in page(form)
    assert form.headers["Referrer-Policy"] == "no-referrer" and form.headers["Cache-Control"] == "no-store"
    too_short = client.form(link, {"password": "short"})
    assert too_short.status_code == 422 and "at least 12 characters" in page(too_short)
    response = client.form(link, {"password": NEW_PASSWORD})
    assert response.status_code == 303 and response.location == "/rooms/"
    dashboard = fresh_csrf(client).get("/rooms/")
    assert dashboard.status_code == 200 and "Your password is changed" in page(dashboard)
    assert other.get("/rooms/").status_code == 302  # the session elsewhere is over
    # The link is spent: the password (and so the fingerprint) changed.
    again = new_client().get(link)
    assert again.status_code == 400
    assert "used already" in page(again) and 'href="/password/forgot"' in page(again)
    assert client.form(link, {"password": "yet another passphrase"}).status_code == 400
    fresh = new_client()
    assert fresh.form("/login", {"email": facilitator.email, "password": NEW_PASSWORD}).status_code == 303


def test_reset_link_expires_after_an_hour(app, client, make_facilitator):
    facilitator = make_facilitator()

    def token_from(seconds_ago):
        class Signer(TimestampSigner):
            def get_timestamp(self):
                return int(time.time()) - seconds_ago

        with app.app_context():
            row = db.session.get(Facilitator, facilitator.id)
            serializer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=accounts.RESET_SALT, signer=Signer)
            return serializer.dumps([row.id, accounts.account_fingerprint(row)])

    assert client.get(f"/password/reset/{token_from(59 * 60)}").status_code == 200
    expired = client.get(f"/password/reset/{token_from(3601)}")
    assert expired.status_code == 400
    assert "expired" in page(expired) and 'href="/password/forgot"' in page(expired)
    assert client.form(f"/password/reset/{token_from(3601)}", {"password": NEW_PASSWORD}).status_code == 400


def test_tampered_reset_links_are_refused(caplog, app, client, make_facilitator):
    facilitator = make_facilitator()
    other = make_facilitator()
    _, link = reset_link(caplog, client, facilitator.email)
    token = link.rsplit("/", 1)[1]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    with app.app_context():
        row = db.session.get(Facilitator, other.id)
        fingerprint = accounts.account_fingerprint(row)
        other_salt = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="something-else").dumps(
            [row.id, fingerprint]
        )
        other_key = URLSafeTimedSerializer("not-the-key", salt=accounts.RESET_SALT).dumps([row.id, fingerprint])
        wrong_fingerprint = accounts._reset_serializer().dumps([row.id, "0" * 32])
        wrong_shape = accounts._reset_serializer().dumps({"id": row.id})
    for bad in (flipped, other_salt, other_key, wrong_fingerprint, wrong_shape, "nonsense"):
        response = client.get(f"/password/reset/{bad}")
        assert response.status_code == 400, bad
        assert "not valid" in page(response)
    assert client.get(link).status_code == 200  # the real one still works


def test_signing_out_everywhere_kills_an_unused_link(caplog, client, signed_in):
    signed, facilitator = signed_in()
    _, link = reset_link(caplog, client, facilitator.email)
    signed.form("/account/sign-out-everywhere")  # a new session token: the fingerprint changes
    assert client.get(link).status_code == 400


def test_mail_links_use_public_url_not_the_host_header(caplog, app, client, make_facilitator):
    facilitator = make_facilitator()
    app.config.update(PUBLIC_URL="https://chat.example.org/", WTF_CSRF_ENABLED=False)  # no cookie for evil.example
    with caplog.at_level(logging.INFO, logger="chatroom.mail"):
        response = client.post("/password/forgot", data={"email": facilitator.email}, headers={"Host": "evil.example"})
    assert response.status_code == 200
    assert "https://chat.example.org/password/reset/" in caplog.text
    assert "evil.example" not in caplog.text


# -- SMTP --------------------------------------------------------------------------


class _SMTPStub(socketserver.ThreadingTCPServer):
    """Just enough SMTP to receive one mail: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SMTPHandler)
        self.messages: list[str] = []
        self.commands: list[str] = []
        self.received = threading.Event()


class _SMTPHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server = self.server
        self.wfile.write(b"220 stub ESMTP\r\n")
        lines: list[bytes] = []
        in_data = False
        while line := self.rfile.readline():
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    server.messages.append(b"".join(lines).decode())
                    self.wfile.write(b"250 queued\r\n")
                    server.received.set()
                else:
                    lines.append(line)
                continue
            command = line.decode().strip()
            server.commands.append(command)
            verb = command[:4].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-stub\r\n250 AUTH PLAIN\r\n")
            elif verb == "AUTH":
                self.wfile.write(b"235 ok\r\n")
            elif verb == "DATA":
                in_data = True
                self.wfile.write(b"354 go on\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_stub(app):
    server = _SMTPStub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.config.update(
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=server.server_address[1],
        MAIL_USE_TLS=False,
        MAIL_USERNAME="mailer",
        MAIL_PASSWORD="mail-secret",
        MAIL_FROM="Chatroom <chatroom@example.org>",
    )
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_send_mail_over_smtp(app, smtp_stub):
    with app.app_context():
        mail.send_mail("ann@example.org", "Hello", "A body with a link: https://chat.example.org/x")
    assert smtp_stub.received.wait(5)
    message = smtp_stub.messages[0]
    assert "To: ann@example.org" in message and "Subject: Hello" in message
    assert "From: Chatroom <chatroom@example.org>" in message and "https://chat.example.org/x" in message
    commands = [c.lower() for c in smtp_stub.commands]
    auth = next(c for c in smtp_stub.commands if c.upper().startswith("AUTH PLAIN"))
    assert base64.b64decode(auth.split()[-1]) == b"\0mailer\0mail-secret"
    assert "rcpt to:<ann@example.org>" in commands


def test_reset_mail_goes_out_over_smtp(caplog, app, client, make_facilitator, smtp_stub):
    facilitator = make_facilitator()
    with caplog.at_level(logging.INFO, logger="chatroom.mail"):
        response = client.form("/password/forgot", {"email": facilitator.email})
    assert response.status_code == 200
    assert smtp_stub.received.wait(5)
    assert "MAIL_SERVER is not set" not in caplog.text
    link = LINK.search(smtp_stub.messages[0].replace("=\r\n", ""))
    assert link is not None
    assert client.get(link.group(1)).status_code == 200


def test_an_unreachable_mail_server_is_logged_not_raised(caplog, app, client, make_facilitator):
    facilitator = make_facilitator()
    with socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler) as closed:
        port = closed.server_address[1]
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_USE_TLS=False, MAIL_TIMEOUT_SECONDS=2)
    with caplog.at_level(logging.INFO, logger="chatroom.mail"):
        assert client.form("/password/forgot", {"email": facilitator.email}).status_code == 200
        deadline = time.monotonic() + 5
        while "could not send mail" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "could not send mail" in caplog.text
