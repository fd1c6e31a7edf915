"""The reader's preferences: the colour theme and auto-refresh, as plain forms and cookies."""

from __future__ import annotations

import re

import pytest

from support.constants import PASSWORD

pytestmark = (
    pytest.mark.once
)  # pages that touch no backend-specific behaviour: the same on either backend (tests/run.sh)


def _cookie_header(response, name):
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}="))


def test_every_page_follows_the_system_theme_by_default(client):
    html = client.get("/").get_data(as_text=True)
    assert re.search(r"<html lang=\"en\">", html)  # no data-theme: the CSS follows prefers-color-scheme
    assert '<meta name="color-scheme" content="light dark">' in html
    assert '<button type="submit" name="theme" value="system" aria-pressed="true">Auto</button>' in html


def test_choosing_a_theme_sets_a_long_lived_cookie_and_goes_back(client):
    response = client.form("/theme", {"theme": "dark", "next": "/login?next=%2Frooms%2F"})
    assert response.status_code == 303
    assert response.location == "/login?next=%2Frooms%2F"
    cookie = _cookie_header(response, "theme")
    assert cookie.startswith("theme=dark;")
    assert "Max-Age=34560000" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="en" data-theme="dark">' in html
    assert '<meta name="color-scheme" content="dark">' in html
    assert 'value="dark" aria-pressed="true"' in html and 'value="light" aria-pressed="false"' in html


def test_the_theme_form_comes_back_to_the_page_it_is_on(client):
    html = client.get("/login?next=%2Frooms%2F").get_data(as_text=True)
    assert '<input type="hidden" name="next" value="/login?next=%2Frooms%2F">' in html
    # A page rendered by a POST (a form with errors) comes back to the page that sent the form.
    failed = client.form(
        "/login", {"email": "nobody@example.org", "password": "x"}, headers={"Referer": "http://localhost/login"}
    )
    assert failed.status_code == 403
    assert '<input type="hidden" name="next" value="/login">' in failed.get_data(as_text=True)


def test_the_theme_redirect_never_leaves_the_site(client, signed_in):
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = client.form("/theme", {"theme": "light", "next": target})
        assert response.status_code == 303
        assert "evil" not in response.location


def test_an_unknown_theme_or_a_missing_token_is_refused(client):
    assert client.form("/theme", {"theme": "purple"}).status_code == 400
    assert client.post("/theme", data={"theme": "dark"}).status_code == 400  # no CSRF token


def test_with_htmx_the_theme_answers_204_and_the_page_switches_itself(client):
    response = client.post(
        "/theme", data={"theme": "light"}, headers={"HX-Request": "true", "X-CSRFToken": client.csrf()}
    )
    assert response.status_code == 204
    assert _cookie_header(response, "theme").startswith("theme=light;")


def test_system_theme_clears_the_pin(client):
    client.form("/theme", {"theme": "dark"})
    client.form("/theme", {"theme": "system"})
    assert '<html lang="en">' in client.get("/login").get_data(as_text=True)


def test_auto_refresh_switches_on_and_off(client, make_room, join):
    room = make_room()
    pat = join(room)
    response = pat.form("/autorefresh", {"autorefresh": "on", "next": f"/r/{room.code}/newer?after=0#since"})
    assert response.status_code == 303
    assert response.location == f"/r/{room.code}/newer?after=0#since"
    assert _cookie_header(response, "autorefresh").startswith("autorefresh=on;")
    assert 'http-equiv="refresh"' in pat.get(f"/r/{room.code}").get_data(as_text=True)
    response = pat.form("/autorefresh", {"autorefresh": "off", "next": f"/r/{room.code}"})
    assert "Max-Age=0" in _cookie_header(response, "autorefresh") or "Expires=Thu, 01 Jan 1970" in _cookie_header(
        response, "autorefresh"
    )
    assert 'http-equiv="refresh"' not in pat.get(f"/r/{room.code}").get_data(as_text=True)


def test_signed_in_pages_have_the_theme_switch_too(signed_in):
    client, _ = signed_in()
    html = client.get("/rooms/").get_data(as_text=True)
    assert 'action="/theme"' in html and '<input type="hidden" name="next" value="/rooms/">' in html
    assert PASSWORD not in html
