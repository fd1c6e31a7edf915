"""Taking part through the JSON API: the host's reactions, questions (marked, answered, listed by votes), search,
private threads and answers, the room's search language; each through the services the room's pages use, seen by an
open event stream the moment the API makes it, refused with a problem document, and counted by the rate limits
(reactions as posts, rooms per hour with the room form). Also: a body that is not JSON is 400, and Retry-After
rides on refusals only.

Operations run on both backends (their services lock and search differently); the API's own shape (400 for a body
that is not JSON) runs once. Who may call each operation is in tests/test_api_authorization.py (the table in
tests/support/policy.py), hostile bodies in tests/test_api_schema.py."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from chatroom import create_app
from chatroom.extensions import db
from chatroom.models import Facilitator, Membership, Message, Room, utcnow
from chatroom.services import accounts, messages, notes, tokens
from support.app import empty_database, make_config
from support.clients import Client
from support.constants import PASSWORD, ROOM_PASSWORD
from support.factories import end_room


def _room_body(title: str = "Taking part", **extra: Any) -> dict[str, Any]:
    start = (utcnow() - timedelta(minutes=5)).replace(microsecond=0)
    return {
        "title": title,
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
        "timezone": "UTC",
        "password": ROOM_PASSWORD,
        **extra,
    }


class Stream:
    """An event stream opened by a browser (the room page's), read a chunk at a time in this thread.

    The stream subscribes on its first read, so open it before the change it should see. Reads are bounded:
    the stream sends a heartbeat every second in tests, so a change that never comes fails, it does not hang.
    """

    def __init__(self, client: Client, code: str) -> None:
        self.response = client.get(f"/r/{code}/events?after=0&rev=0", buffered=False)
        assert self.response.status_code == 200, self.response.status_code
        self.chunks: Iterator[bytes] = iter(self.response.response)
        self.seen = ""
        self.read_until(lambda text: "retry:" in text or "event:" in text or ":" in text)

    def read_until(self, done: Callable[[str], bool], chunks: int = 40) -> str:
        """Read until ``done(everything read so far)``; at most ``chunks`` chunks (each a frame or a heartbeat)."""
        for _ in range(chunks):
            if done(self.seen):
                return self.seen
            self.seen += next(self.chunks).decode()
        assert done(self.seen), f"the stream never showed it; it sent: {self.seen[-800:]}"
        return self.seen

    def wait_for(self, text: str) -> str:
        """Read on until ``text`` arrives after what was read so far; returns what came after."""
        start = len(self.seen)
        self.read_until(lambda seen: text in seen[start:])
        return self.seen[start:]

    def close(self) -> None:
        self.response.close()


def _room_form(start: datetime) -> dict[str, str]:
    """The room form's fields for an hour from ``start`` (UTC), titled "By the form"."""
    return {
        "title": "By the form",
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "timezone": "UTC",
        "password": ROOM_PASSWORD,
    }


@pytest.fixture
def party(app, client, signed_in, join):
    """(api client, bearer headers, the room, the host's browser, Pat's browser, Kim's browser).

    Room made through the API; Pat and Kim joined through the form; Pat posted message 1, Kim asked question 2.
    """
    browser, facilitator = signed_in()
    with app.app_context():
        _, raw = tokens.create(db.session.get(Facilitator, facilitator.id), "script")
    headers = {"Authorization": f"Bearer {raw}"}
    created = client.post("/api/v1/rooms", json=_room_body(), headers=headers)
    assert created.status_code == 201, created.get_json()
    with app.app_context():
        room = db.session.scalar(select(Room).where(Room.code == created.get_json()["code"]))
        db.session.expunge(room)
    pat, kim = join(room, "Pat"), join(room, "Kim")
    _say(pat, room, "Hello everyone, where is the agenda?")
    _say(kim, room, "What about lunch?", question=True)
    return client, headers, room, browser, pat, kim


def _say(client: Client, room: Room, body: str, question: bool = False) -> None:
    data = {"body": body, "token": secrets.token_hex(16), **({"question": "1"} if question else {})}
    assert client.form(f"/r/{room.code}/messages", data).status_code == 303


def _seat_id(app, room: Room, alias: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Membership.id).where(Membership.room_id == room.id, Membership.alias == alias))


# -- reactions -------------------------------------------------------------------------------------------


def test_the_host_reacts_and_every_open_page_sees_it(app, party):
    client, headers, room, _browser, pat, kim = party
    base = f"/api/v1/rooms/{room.code}"
    assert kim.form(f"/r/{room.code}/messages/1/react", {"emoji": "heart"}).status_code == 303
    stream = Stream(pat, room.code)
    try:
        response = client.post(f"{base}/messages/1/react", json={"emoji": "heart"}, headers=headers)
        assert response.status_code == 200, response.get_json()
        shown = stream.wait_for("2 reactions")  # the message again, out of band, with both hearts
        assert 'id="message-1"' in shown
    finally:
        stream.close()
    message = response.get_json()
    assert message["reactions"] == [
        {"emoji": "heart", "symbol": "\u2764\ufe0f", "label": "heart", "count": 2, "host_reacted": True}
    ]
    again = client.post(f"{base}/messages/1/react", json={"emoji": "heart"}, headers=headers).get_json()
    assert again["reactions"][0]["count"] == 1 and not again["reactions"][0]["host_reacted"]
    listed = client.get(f"{base}/messages", headers=headers).get_json()["messages"]
    assert listed[0]["reactions"][0]["emoji"] == "heart" and listed[1]["reactions"] == []


def test_a_reaction_is_refused_clearly(app, party):
    client, headers, room, *_ = party
    base = f"/api/v1/rooms/{room.code}"
    wrong = client.post(f"{base}/messages/1/react", json={"emoji": "<script>"}, headers=headers)
    assert wrong.status_code == 422 and wrong.mimetype == "application/problem+json"
    assert wrong.get_json()["errors"] == {
        "emoji": "Choose one of the reactions offered: thumbs_up, heart, laugh, party, eyes, question"
    }
    missing = client.post(f"{base}/messages/1/react", json={}, headers=headers)
    assert missing.status_code == 422 and "emoji" in missing.get_json()["errors"]
    assert client.post(f"{base}/messages/99/react", json={"emoji": "heart"}, headers=headers).status_code == 404
    assert client.post(f"{base}/messages/1/remove", headers=headers).status_code == 200
    gone = client.post(f"{base}/messages/1/react", json={"emoji": "heart"}, headers=headers)
    assert gone.status_code == 409 and "removed" in gone.get_json()["detail"]
    assert client.post(f"{base}/messages/2/react", json={"emoji": "eyes"}, headers={}).status_code == 401
    end_room(app, room)
    closed = client.post(f"{base}/messages/2/react", json={"emoji": "eyes"}, headers=headers)
    assert closed.status_code == 403 and "not open" in closed.get_json()["detail"]
    with app.app_context():
        assert db.session.get(Message, 2).reactions == []


# -- questions --------------------------------------------------------------------------------------------


def test_questions_are_marked_answered_and_listed_by_votes(app, party):
    client, headers, room, browser, pat, kim = party
    base = f"/api/v1/rooms/{room.code}"
    first = client.get(f"{base}/questions", headers=headers).get_json()["questions"]
    assert [(q["seq"], q["question"], q["votes"]) for q in first] == [(2, True, 0)]
    host_stream = Stream(browser, room.code)
    try:
        marked = client.post(f"{base}/messages/1/question", json={"question": True}, headers=headers)
        assert marked.status_code == 200 and marked.get_json()["question"]
        panel = host_stream.wait_for("Questions (2 open)")  # the host's questions panel, again
        assert 'id="host-questions"' in panel and "where is the agenda" in panel
    finally:
        host_stream.close()
    assert kim.form(f"/r/{room.code}/messages/1/vote").status_code == 303  # Pat's question, Kim's vote
    ordered = client.get(f"{base}/questions", headers=headers).get_json()["questions"]
    assert [(q["seq"], q["votes"]) for q in ordered] == [(1, 1), (2, 0)]  # by votes, then newest
    stream = Stream(pat, room.code)
    try:
        answered = client.post(f"{base}/messages/1/answered", json={"answered": True}, headers=headers).get_json()
        stream.wait_for('id="message-1"')
    finally:
        stream.close()
    assert answered["answered"] and answered["answered_at"]
    assert [q["seq"] for q in client.get(f"{base}/questions", headers=headers).get_json()["questions"]] == [2, 1]
    unanswered = client.post(f"{base}/messages/1/answered", json={"answered": False}, headers=headers).get_json()
    assert not unanswered["answered"] and unanswered["answered_at"] is None
    unmarked = client.post(f"{base}/messages/1/question", json={"question": False}, headers=headers).get_json()
    assert not unmarked["question"]
    audit = [e["action"] for e in client.get(f"{base}/audit", headers=headers).get_json()["events"]]
    assert {"question marked", "question unmarked"} <= set(audit)


def test_question_marks_are_refused_clearly(app, party):
    client, headers, room, *_ = party
    base = f"/api/v1/rooms/{room.code}"
    not_question = client.post(f"{base}/messages/1/answered", json={}, headers=headers)
    assert not_question.status_code == 409 and "Only a question" in not_question.get_json()["detail"]
    wrong = client.post(f"{base}/messages/1/question", json={"question": "yes"}, headers=headers)
    assert wrong.status_code == 422 and "question" in wrong.get_json()["errors"]
    assert client.post(f"{base}/messages/42/question", json={}, headers=headers).status_code == 404
    assert client.post(f"{base}/messages/1/remove", headers=headers).status_code == 200
    assert client.post(f"{base}/messages/1/question", json={}, headers=headers).status_code == 409
    assert client.get(f"{base}/questions", headers={}).status_code == 401


def test_approving_a_held_question_refreshes_the_hosts_questions_panel(app, party):
    client, headers, room, browser, _pat, kim = party
    base = f"/api/v1/rooms/{room.code}"
    assert client.post(f"{base}/premoderation", json={"enabled": True}, headers=headers).status_code == 200
    _say(kim, room, "Is the bar open later?", question=True)
    held = client.get(f"{base}/queue", headers=headers).get_json()["messages"]
    assert [m["question"] for m in held] == [True]
    stream = Stream(browser, room.code)
    try:
        stream.read_until(lambda seen: "Is the bar open later?" in seen)  # in the queue panel, first
        start = len(stream.seen)
        approved = client.post(f"{base}/queue/{held[0]['id']}/approve", headers=headers)
        assert approved.status_code == 200 and approved.get_json()["seq"] == 3
        # The questions panel comes again with the approved question in it (not only the queue and the message).
        stream.read_until(lambda seen: "Questions (2 open)" in seen[start:])
    finally:
        stream.close()
    listed = client.get(f"{base}/questions", headers=headers).get_json()["questions"]
    assert [q["seq"] for q in listed] == [3, 2]


# -- search -----------------------------------------------------------------------------------------------


def test_search_finds_visible_messages_only(app, party, make_room, seat):
    client, headers, room, _browser, pat, _kim = party
    base = f"/api/v1/rooms/{room.code}"
    _say(pat, room, "The agenda is on the wiki")
    other = make_room(title="Elsewhere")
    with app.test_request_context():
        messages.post(db.session.get(Membership, seat(other, "Out").id), "agenda elsewhere", secrets.token_hex(16))
    found = client.get(f"{base}/search?q=agenda", headers=headers)
    assert found.status_code == 200
    assert [m["seq"] for m in found.get_json()["messages"]] == [3, 1]  # newest first, this room only
    assert client.post(f"{base}/messages/3/remove", headers=headers).status_code == 200
    assert [m["seq"] for m in client.get(f"{base}/search?q=agenda", headers=headers).get_json()["messages"]] == [1]
    assert client.get(f"{base}/search?q=agenda&limit=1", headers=headers).get_json()["messages"][0]["seq"] == 1
    empty = client.get(f"{base}/search?q=%20!!", headers=headers)
    assert empty.status_code == 422 and empty.get_json()["errors"] == {"q": "Type a word to look for"}
    long = client.get(f"{base}/search?q=" + "x" * 201, headers=headers)
    assert long.status_code == 422 and "Shorten your search" in long.get_json()["detail"]
    assert client.get(f"{base}/search", headers=headers).status_code == 422
    assert client.get(f"{base}/search?q=%22%29%28*%20OR%20NEAR", headers=headers).status_code == 200
    assert client.get(f"/api/v1/rooms/{other.code}/search?q=agenda", headers=headers).status_code == 404


# -- private notes ----------------------------------------------------------------------------------------


def test_private_threads_are_read_and_answered(app, party):
    client, headers, room, _browser, pat, kim = party
    base = f"/api/v1/rooms/{room.code}"
    assert pat.form(f"/r/{room.code}/private", {"note": "The audio is bad"}).status_code == 303
    pat_id, kim_id = _seat_id(app, room, "Pat"), _seat_id(app, room, "Kim")
    threads = client.get(f"{base}/private", headers=headers).get_json()["threads"]
    assert [(t["participant"]["alias"], [n["body"] for n in t["notes"]]) for t in threads] == [
        ("Pat", ["The audio is bad"])
    ]
    other = Stream(kim, room.code)  # one stream at a time: each holds its request context while open
    try:
        first = client.post(f"{base}/private/{pat_id}", json={"note": "Looking into it"}, headers=headers)
        assert first.status_code == 201, first.get_json()
        other.read_until(lambda seen: "heartbeat" in seen)
        assert "Looking into it" not in other.seen  # Kim's page never gets Pat's thread
    finally:
        other.close()
    stream = Stream(pat, room.code)
    try:
        reply = client.post(f"{base}/private/{pat_id}", json={"note": "Fixing it now"}, headers=headers)
        assert reply.status_code == 201, reply.get_json()
        assert reply.get_json()["from_host"] and reply.get_json()["body"] == "Fixing it now"
        stream.wait_for("Fixing it now")
    finally:
        stream.close()
    thread = client.get(f"{base}/private/{pat_id}", headers=headers).get_json()
    assert [(n["from_host"], n["body"]) for n in thread["notes"]] == [
        (False, "The audio is bad"),
        (True, "Looking into it"),
        (True, "Fixing it now"),
    ]
    assert client.get(f"{base}/private/{kim_id}", headers=headers).get_json()["notes"] == []
    blank = client.post(f"{base}/private/{pat_id}", json={"note": "   "}, headers=headers)
    assert blank.status_code == 422 and blank.get_json()["errors"] == {"note": "Write something before sending"}
    assert client.post(f"{base}/private/{pat_id}", json={"note": 5}, headers=headers).status_code == 422
    with app.app_context():
        host_id = db.session.get(Room, room.id).host_seat().id
    assert client.post(f"{base}/private/{host_id}", json={"note": "me"}, headers=headers).status_code == 404
    assert client.get(f"{base}/private/999999", headers=headers).status_code == 404
    end_room(app, room)
    closed = client.post(f"{base}/private/{pat_id}", json={"note": "late"}, headers=headers)
    assert closed.status_code == 403 and "not open" in closed.get_json()["detail"]
    with app.app_context():
        assert len(notes.thread(db.session.get(Membership, pat_id))) == 3


# -- the room's search language ---------------------------------------------------------------------------


def test_the_search_language_is_set_through_the_api_and_the_form(app, client, signed_in):
    browser, facilitator = signed_in()
    with app.app_context():
        _, raw = tokens.create(db.session.get(Facilitator, facilitator.id), "script")
    headers = {"Authorization": f"Bearer {raw}"}
    made = client.post("/api/v1/rooms", json=_room_body("English", search_language="english"), headers=headers)
    assert made.status_code == 201 and made.get_json()["search_language"] == "english"
    code = made.get_json()["code"]
    plain = client.post("/api/v1/rooms", json=_room_body("Plain"), headers=headers).get_json()
    assert plain["search_language"] == "simple"
    wrong = client.post("/api/v1/rooms", json=_room_body("Klingon", search_language="klingon"), headers=headers)
    assert wrong.status_code == 422 and "search language" in wrong.get_json()["errors"]["search_language"]
    patched = client.patch(f"/api/v1/rooms/{code}", json={"search_language": "french"}, headers=headers)
    assert patched.status_code == 200 and patched.get_json()["search_language"] == "french"
    kept = client.patch(f"/api/v1/rooms/{code}", json={"title": "English, renamed"}, headers=headers).get_json()
    assert kept["search_language"] == "french"  # a change that leaves it out keeps it
    refused = client.patch(f"/api/v1/rooms/{code}", json={"search_language": "x;drop"}, headers=headers)
    assert refused.status_code == 422
    # The room form: a labelled select with the current value chosen, and the same rule.
    page = browser.get(f"/rooms/{code}/edit").get_data(as_text=True)
    assert '<label for="field-search_language">Search language</label>' in page
    assert '<option value="french" selected>French</option>' in page
    start = utcnow().replace(second=0, microsecond=0) - timedelta(minutes=5)
    form = _room_form(start)
    bad = browser.form("/rooms/", {**form, "search_language": "klingon"})
    assert bad.status_code == 422 and "Choose a search language" in bad.get_data(as_text=True)
    assert browser.form("/rooms/", {**form, "search_language": "german"}).status_code == 303
    with app.app_context():
        assert db.session.scalar(select(Room.search_language).where(Room.title == "By the form")) == "german"


def test_search_matches_word_forms_in_the_rooms_language(app, party):
    """PostgreSQL stems in the room's language; SQLite's FTS5 matches whole words whatever the language."""
    client, headers, room, _browser, pat, _kim = party
    base = f"/api/v1/rooms/{room.code}"
    assert client.patch(base, json={"search_language": "english"}, headers=headers).status_code == 200
    _say(pat, room, "We asked about the rooms")
    found = [m["seq"] for m in client.get(f"{base}/search?q=asking", headers=headers).get_json()["messages"]]
    with app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
    assert found == ([3] if postgres else [])
    assert [m["seq"] for m in client.get(f"{base}/search?q=asked", headers=headers).get_json()["messages"]] == [3]


# -- the API's body rules ---------------------------------------------------------------------------------


@pytest.mark.once
def test_a_body_that_is_not_json_is_400_and_a_wrong_shape_is_422(app, party):
    client, headers, room, *_ = party
    base = f"/api/v1/rooms/{room.code}"
    for kwargs in (
        {"data": "{not json", "content_type": "application/json"},
        {"data": '{"emoji": "heart"}', "content_type": "text/plain"},
        {"data": {"emoji": "heart"}},  # a form
        {"data": b"\xff\xfe", "content_type": "application/json"},
    ):
        response = client.post(f"{base}/messages/1/react", headers=headers, **kwargs)
        assert response.status_code == 400, kwargs
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["detail"].startswith("The body is not JSON"), kwargs
    shape = client.post(f"{base}/messages/1/react", json=["heart"], headers=headers)
    assert shape.status_code == 422
    assert client.post(f"{base}/messages/1/react", json={"emoji": 1}, headers=headers).status_code == 422
    unknown = client.post(f"{base}/messages/1/react", json={"emoji": "rocket"}, headers=headers)
    assert unknown.status_code == 422  # and the answer says what would do
    assert "thumbs_up" in unknown.get_json()["errors"]["emoji"] and "question" in unknown.get_json()["detail"]
    assert client.post(f"{base}/lock", headers=headers).status_code == 200  # no body at all is fine
    # An empty body counts as {} (docs/api.md), even labelled JSON: the fields it lacks are named, with 422.
    empty = client.post(f"{base}/messages/1/react", data="", content_type="application/json", headers=headers)
    assert empty.status_code == 422 and "emoji" in empty.get_json()["errors"]
    with app.app_context():
        assert db.session.get(Message, 1).reactions == []


# -- rate limits ------------------------------------------------------------------------------------------


@pytest.fixture
def limited(_schema, database_url, redis_url):
    """An app with the production limits on (shared through Redis on the services backend), two rooms a
    facilitator may make per hour, and a signed-in browser and a token of one facilitator."""
    app = create_app(make_config(database_url, redis_url, RATELIMIT_ENABLED=True, ROOMS_PER_HOUR=2))
    with app.app_context():
        empty_database(app)
        app.extensions["chatroom.limiter"].reset()
    with app.test_request_context():
        owner = accounts.sign_up("limits@example.org", "Lim Its", PASSWORD)
        _, raw = tokens.create(owner, "script")
    app.test_client_class = Client
    browser = app.test_client()
    assert browser.form("/login", {"email": "limits@example.org", "password": PASSWORD}).status_code == 303
    yield app, app.test_client(), {"Authorization": f"Bearer {raw}"}, browser
    app.extensions["chatroom.limiter"].reset()
    app.extensions["chatroom.broker"].close()
    app.extensions["chatroom.presence"].close()


def test_rooms_per_hour_count_the_form_and_the_api_together(limited):
    app, client, headers, browser = limited
    start = utcnow().replace(second=0, microsecond=0)
    form = _room_form(start)
    assert browser.form("/rooms/", form).status_code == 303
    made = client.post("/api/v1/rooms", json=_room_body("By the API"), headers=headers)
    assert made.status_code == 201
    assert "Retry-After" not in made.headers  # a success is told nothing about waiting
    refusal = client.post("/api/v1/rooms", json=_room_body("One too many"), headers=headers)
    assert refusal.status_code == 429 and refusal.mimetype == "application/problem+json"
    assert int(refusal.headers["Retry-After"]) > 0
    assert browser.form("/rooms/", {**form, "title": "Also too many"}).status_code == 429
    with app.app_context():
        assert db.session.scalar(select(db.func.count(Room.id))) == 2


def test_the_hosts_reactions_and_posts_through_the_api_count_as_posts(limited):
    _app, client, headers, _browser = limited
    code = client.post("/api/v1/rooms", json=_room_body(), headers=headers).get_json()["code"]
    base = f"/api/v1/rooms/{code}"
    assert client.post(f"{base}/messages", json={"body": "Welcome"}, headers=headers).status_code == 201
    statuses = []
    for _ in range(25):
        response = client.post(f"{base}/messages/1/react", json={"emoji": "heart"}, headers=headers)
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
        assert "Retry-After" not in response.headers
    assert statuses[-1] == 429 and set(statuses[:-1]) == {200}
    assert len(statuses) == 20  # the post and 19 reactions: 20 posts per 10 seconds, as for a seat
    assert int(response.headers["Retry-After"]) >= 1 and response.mimetype == "application/problem+json"
    assert client.post(f"{base}/messages", json={"body": "again"}, headers=headers).status_code == 429
    assert client.post(f"{base}/lock", headers=headers).status_code == 200  # not a post: not counted
