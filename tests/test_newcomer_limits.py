"""Newcomer findings about rate limits as a class, a participant and a facilitator meet them.

Drop into tests/. Each test fails on main as of 2026-11-30 (see /work/notes/newcomer-report.md)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from chatroom import create_app
from chatroom.models import utcnow
from support.app import empty_database, make_config
from support.clients import Client, form_token
from support.constants import ROOM_PASSWORD


@pytest.fixture
def limited_app(_schema, database_url, redis_url):
    app = create_app(make_config(database_url, redis_url, RATELIMIT_ENABLED=True))
    with app.app_context():
        empty_database(app)
        app.extensions["chatroom.limiter"].reset()
    app.test_client_class = Client
    yield app
    app.extensions["chatroom.broker"].close()
    app.extensions["chatroom.presence"].close()


def test_a_class_of_thirty_behind_one_address_can_all_join_at_the_start(limited_app, make_room):
    """Report NC-1. A class behind one NAT: 30 people with the right password join within a minute.
    Today the 11th join from one address gets 429 (10 per minute; 60 per hour across the whole instance)."""
    room = make_room()
    statuses = []
    for i in range(30):
        client = limited_app.test_client()  # a separate browser (cookie jar), the same address
        response = client.form(f"/r/{room.code}/join", {"alias": f"Student {i + 1}", "password": ROOM_PASSWORD})
        statuses.append(response.status_code)
    assert statuses == [303] * 30


def test_a_refused_htmx_post_keeps_the_composer_and_the_typed_text(limited_app, make_room, join):
    """Report NC-2. With JavaScript, a 429 on posting replaces the whole composer (hx-swap=outerHTML on #composer)
    with a bare sentence: the message typed is lost and there is no box to type in until the page is reloaded."""
    room = make_room()
    participant = join(room, "Pat", client=limited_app.test_client())
    page = participant.get(f"/r/{room.code}").get_data(as_text=True)
    for i in range(20):
        participant.form(f"/r/{room.code}/messages", {"body": f"quick {i}", "token": form_token(page)})
        page = participant.get(f"/r/{room.code}").get_data(as_text=True)
    response = participant.htmx(
        "POST", f"/r/{room.code}/messages", {"body": "my long considered answer", "token": form_token(page)}
    )
    assert response.status_code == 429
    fragment = response.get_data(as_text=True)
    assert 'id="composer"' in fragment  # the swap target comes back, so the page can still post
    assert "my long considered answer" in fragment  # and what was typed is not lost
    assert re.search(r"\b\d+ seconds?\b", fragment)  # says how long, as Retry-After does


def test_the_no_js_refusal_page_leads_back_to_the_room(limited_app, make_room, join):
    """Report NC-2 (no JavaScript). The 429 page offers only 'Go to the start page' (/), which is not the room."""
    room = make_room()
    participant = join(room, "Pat", client=limited_app.test_client())
    for i in range(21):
        page = participant.get(f"/r/{room.code}").get_data(as_text=True)
        response = participant.form(f"/r/{room.code}/messages", {"body": f"quick {i}", "token": form_token(page)})
    assert response.status_code == 429
    assert f'href="/r/{room.code}' in response.get_data(as_text=True)


def _room_form(title: str, timezone: str = "UTC") -> dict[str, str]:
    start = utcnow().replace(second=0, microsecond=0)
    return {
        "title": title,
        "timezone": timezone,
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "password": ROOM_PASSWORD,
    }


def test_room_forms_that_are_refused_do_not_use_up_the_hourly_room_quota(limited_app, make_facilitator):
    """Report NC-3. ROOMS_PER_HOUR is 'rooms one facilitator may create per hour', but every submission counts:
    after 20 typos (unknown time zone) the first correct form is refused for an hour."""
    from support.constants import PASSWORD

    facilitator = make_facilitator()
    client = limited_app.test_client()
    assert client.form("/login", {"email": facilitator.email, "password": PASSWORD}).status_code == 303
    for i in range(20):
        assert client.form("/rooms/", _room_form(f"Typo {i}", timezone="Europe/Pariss")).status_code == 422
    response = client.form("/rooms/", _room_form("Week 1"))
    assert response.status_code == 303, response.status_code
