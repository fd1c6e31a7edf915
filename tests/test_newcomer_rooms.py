"""Newcomer findings about streams, downloads through the API, bans and room links.

Drop into tests/. Each test fails on main as of 2026-11-30 (see /work/notes/newcomer-report.md)."""

from __future__ import annotations

import re

from support.clients import Client


def _token(browser: Client) -> str:
    assert browser.form("/account/tokens", {"token_name": "archive"}).status_code == 303
    page = browser.get("/account/tokens/new").get_data(as_text=True)
    return re.search(r'id="new-token">(chatroom_[A-Za-z0-9_-]+)<', page).group(1)


def test_api_transcripts_keep_a_non_latin_title_in_the_file_name(client, signed_in, make_room):
    """Report NC-6 (issue 10, exports: filename* with the title). The page sends filename*=UTF-8''Семинар…;
    GET /api/v1/rooms/CODE/transcript sends only filename="transcript-CODE.csv"."""
    browser, facilitator = signed_in()
    room = make_room(owner=facilitator, title="Семинар 東京")
    headers = {"Authorization": f"Bearer {_token(browser)}"}
    response = browser.get(f"/rooms/{room.code}/transcript.csv")
    response.get_data()  # read the streamed body, so its generator ends inside this request
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]  # the page does it
    for fmt in ("csv", "json", "md", "html"):
        api = client.get(f"/api/v1/rooms/{room.code}/transcript?format={fmt}", headers=headers)
        api.get_data()
        assert api.status_code == 200
        assert "filename*=UTF-8''%D0%A1%D0%B5%D0%BC" in api.headers["Content-Disposition"], fmt


def test_a_banned_browser_is_told_before_typing_the_password_again(app, signed_in, make_room, join):
    """Report NC-7. After a ban, the banned browser's room link shows the ordinary join form; only after typing an
    alias and the password does it learn 'The host has removed you from this room, and you cannot join it again'."""
    host, facilitator = signed_in()
    room = make_room(owner=facilitator)
    participant = join(room, "Troll")
    owner_page = host.get(f"/rooms/{room.code}").get_data(as_text=True)
    member_id = re.search(rf"/r/{room.code}/members/(\d+)/ban", owner_page).group(1)
    assert host.form(f"/r/{room.code}/members/{member_id}/ban").status_code == 303
    page = participant.get(f"/r/{room.code}").get_data(as_text=True)
    assert "cannot join it again" in page


def test_a_room_link_typed_in_capitals_still_opens_the_room(client, make_room):
    """Report NC-8. Codes are lower-case letters and digits; a code read aloud and typed on a phone with
    auto-capitalisation (/r/H9UMZSNDEX) answers 404 'There is nothing here'."""
    room = make_room()
    response = client.get(f"/r/{room.code.upper()}")
    assert response.status_code in (200, 301, 302, 308)
    if response.status_code != 200:
        assert response.headers["Location"].endswith(f"/r/{room.code}")


def test_signing_out_as_facilitator_does_not_strand_a_participants_alias(app, make_room, make_facilitator, join):
    """Report NC-16. A browser that holds a participant seat and then signs in and out as a facilitator (a teacher
    trying their own room, a shared classroom computer) loses the seat on sign-out; joining again with the same
    alias is refused with 'Someone in this room already uses this alias' (409): the person's own name is stuck."""
    from support.constants import PASSWORD, ROOM_PASSWORD

    room = make_room()
    facilitator = make_facilitator()
    browser = join(room, "Gina")
    assert browser.form("/login", {"email": facilitator.email, "password": PASSWORD}).status_code == 303
    assert browser.form("/logout").status_code in (302, 303)
    kept = "you are <strong><bdi>Gina</bdi>" in browser.get(f"/r/{room.code}").get_data(as_text=True)
    if not kept:
        again = browser.form(f"/r/{room.code}/join", {"alias": "Gina", "password": ROOM_PASSWORD})
        assert again.status_code == 303, "the seat was dropped and its alias cannot be taken back"


def test_localtime_is_not_a_room_time_zone(signed_in):
    """Report NC-11. 'localtime' (the server's /etc/localtime, through zoneinfo's search path) is accepted and shown
    to participants as '(localtime)'."""
    browser, _ = signed_in()
    response = browser.form(
        "/rooms/",
        {
            "title": "Server local",
            "timezone": "localtime",
            "starts_at": "2030-01-01T10:00",
            "ends_at": "2030-01-01T11:00",
            "password": "open sesame",
        },
    )
    assert response.status_code == 422
