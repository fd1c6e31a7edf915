"""Facilitator sign-up, sign-in and sign-out."""

from __future__ import annotations

from chatroom.htmx import safe_next
from support.constants import PASSWORD


def test_sign_up_signs_in_and_lands_on_the_dashboard(client):
    response = client.form("/signup", {"email": "Ann@Example.org", "name": "Ann", "password": PASSWORD})
    assert response.status_code == 303
    assert response.location == "/rooms/"
    page = client.get("/rooms/")
    assert page.status_code == 200
    assert "Your account is ready" in page.get_data(as_text=True)


def test_duplicate_email_is_refused_case_insensitively(client, make_facilitator):
    make_facilitator(email="ann@example.org")
    response = client.form("/signup", {"email": "ANN@example.ORG", "name": "Ann", "password": PASSWORD})
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "already exists" in html
    assert "<title>Error: " in html
    assert 'role="alert"' in html
    assert 'value="ANN@example.ORG"' in html  # the input is kept


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
    facilitator = make_facilitator()
    client.form("/login", {"email": facilitator.email, "password": PASSWORD})
    with client.session_transaction() as session:
        session["seen_at"] -= app.config["SESSION_IDLE_MINUTES"] * 60 + 5
    assert client.get("/rooms/").status_code == 302
    client.form("/login", {"email": facilitator.email, "password": PASSWORD})
    with client.session_transaction() as session:
        session["login_at"] -= app.config["SESSION_MAX_HOURS"] * 3600 + 5
    assert client.get("/rooms/").status_code == 302
