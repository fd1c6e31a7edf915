"""Joining a room, reading it, posting, and paging back through history."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import pytest
from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from sqlalchemy import event, func, select, text, update

from chatroom import events
from chatroom.events import EventKind
from chatroom.extensions import db
from chatroom.models import Membership, Message, Room, utcnow
from chatroom.services import Invalid, members, messages, rooms
from support.clients import form_token
from support.constants import ROOM_PASSWORD
from support.factories import end_room


def _post(client, room, body, token=None, htmx=False):
    token = token or form_token(client.get(f"/r/{room.code}").get_data(as_text=True))
    data = {"body": body, "token": token}
    if htmx:
        return client.htmx("POST", f"/r/{room.code}/messages", data)
    return client.form(f"/r/{room.code}/messages", data)


def _messages(app, room):
    with app.app_context():
        return list(db.session.scalars(select(Message).where(Message.room_id == room.id).order_by(Message.seq)))


# -- joining ------------------------------------------------------------------


def test_join_with_alias_and_password(client, make_room):
    room = make_room()
    page = client.get(f"/r/{room.code}").get_data(as_text=True)
    assert "Your alias" in page and 'autocomplete="nickname"' in page
    response = client.form(f"/r/{room.code}/join", {"alias": "  Pat  ", "password": ROOM_PASSWORD})
    assert response.status_code == 303
    html = client.get(f"/r/{room.code}").get_data(as_text=True)
    assert 'role="log"' in html
    assert "you are <strong><bdi>Pat</bdi></strong>" in html


def test_wrong_room_password(client, make_room, app):
    room = make_room()
    response = client.form(f"/r/{room.code}/join", {"alias": "Pat", "password": "guess"})
    assert response.status_code == 403
    assert "room password is not right" in response.get_data(as_text=True)
    assert 'value="Pat"' in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Membership).where(Membership.alias == "Pat")) is None


def test_alias_rules(client, make_room, join):
    room = make_room()
    join(room, "Pat")
    for alias, status in (("", 422), ("\u200b\u200b", 422), ("x" * 33, 422), ("PAT", 409), ("ｐａｔ", 409)):
        response = client.form(f"/r/{room.code}/join", {"alias": alias, "password": ROOM_PASSWORD})
        assert response.status_code == status, alias
    assert "already uses this alias" in response.get_data(as_text=True)


def test_nobody_can_take_the_hosts_name(client, make_facilitator, make_room):
    host = make_facilitator(name="Fran")
    room = make_room(owner=host)
    response = client.form(f"/r/{room.code}/join", {"alias": "fran", "password": ROOM_PASSWORD})
    assert response.status_code == 409


def test_before_the_start_shows_when_it_opens(client, make_room):
    room = make_room(starts_in=timedelta(days=1), timezone="Asia/Tokyo")
    page = client.get(f"/r/{room.code}").get_data(as_text=True)
    assert "This room opens on" in page and "Asia/Tokyo" in page
    assert "Join the room" not in page
    response = client.form(f"/r/{room.code}/join", {"alias": "Early", "password": ROOM_PASSWORD})
    assert response.status_code == 403
    assert "This room opens on" in response.get_data(as_text=True)


def test_after_the_end_says_it_ended(client, make_room):
    room = make_room(starts_in=timedelta(days=-2))
    assert "This room has ended" in client.get(f"/r/{room.code}").get_data(as_text=True)
    response = client.form(f"/r/{room.code}/join", {"alias": "Late", "password": ROOM_PASSWORD})
    assert response.status_code == 403


def test_unknown_room_is_404_with_a_message(client):
    response = client.get("/r/nosuchroom")
    assert response.status_code == 404
    assert "Check the link you were given" in response.get_data(as_text=True)


# -- posting ------------------------------------------------------------------


def test_post_and_read(app, make_room, join):
    room = make_room()
    pat = join(room, "Pat")
    response = _post(pat, room, "Hello\nsecond line")
    assert response.status_code == 303
    html = pat.get(f"/r/{room.code}").get_data(as_text=True)
    assert 'id="message-1"' in html
    assert "Hello\nsecond line" in html
    [message] = _messages(app, room)
    assert message.seq == 1 and message.author.alias == "Pat"


def test_alias_comes_from_the_membership_not_the_form(app, make_room, join):
    room = make_room()
    pat = join(room, "Pat")
    token = form_token(pat.get(f"/r/{room.code}").get_data(as_text=True))
    pat.form(f"/r/{room.code}/messages", {"body": "hi", "token": token, "alias": "Host"})
    assert _messages(app, room)[0].author.alias == "Pat"


def test_host_posts_marked_as_host(app, signed_in, make_room):
    client, me = signed_in()
    room = make_room(owner=me)
    page = client.get(f"/r/{room.code}").get_data(as_text=True)
    assert "(host)" in page
    _post(client, room, "Welcome")
    html = client.get(f"/r/{room.code}").get_data(as_text=True)
    assert "message--host" in html and '<span class="badge">host</span>' in html


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ("", 422, "Write a message"),
        ("   \n  ", 422, "Write a message"),
        ("x" * 2001, 422, "2,000 characters or fewer (it has 2,001)"),
    ],
)
def test_empty_and_overlong_messages(app, make_room, join, body, status, text):
    room = make_room()
    pat = join(room)
    response = _post(pat, room, body)
    assert response.status_code == status
    assert text in response.get_data(as_text=True)
    assert _messages(app, room) == []


def test_overlong_message_keeps_the_text_in_the_htmx_fragment(app, make_room, join):
    room = make_room()
    pat = join(room)
    response = _post(pat, room, "y" * 2001, htmx=True)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert "y" * 2001 in html
    assert 'aria-invalid="true"' in html


def test_exactly_2000_characters_is_fine(app, make_room, join):
    room = make_room()
    assert _post(join(room), room, "z" * 2000).status_code == 303


def test_double_submitted_form_stores_one_message(app, make_room, join):
    room = make_room()
    pat = join(room)
    token = form_token(pat.get(f"/r/{room.code}").get_data(as_text=True))
    assert _post(pat, room, "once", token).status_code == 303
    assert _post(pat, room, "once", token).status_code == 303
    assert [m.body for m in _messages(app, room)] == ["once"]


@pytest.mark.services  # psycopg2's autocommit; SQLite keeps its transaction (and its lock) for the insert
def test_a_post_is_one_statement_that_commits_by_itself(app, make_room, join, make_facilitator):
    """No BEGIN and no COMMIT: a participant's post is one statement (``messages.post_at_once``: the seat, the
    room's rules, the next ``seq`` and the insert), committing by itself (``messages.prepare_post``). A
    resubmitted form, and a post the statement lets go by (held for the host), take the full path, in
    autocommit too; the connection goes back to the pool with transactions on again. (A refused insert rolls
    back, which returns the connection; the twin is then read in an ordinary transaction.)"""
    host = make_facilitator()
    room = make_room(owner=host)
    pat = join(room)
    token = form_token(pat.get(f"/r/{room.code}").get_data(as_text=True))
    seen: list[tuple[str, bool, int]] = []

    def note(conn, cursor, statement, *args):
        raw = conn.connection.dbapi_connection
        seen.append((statement.split(None, 1)[0], raw.autocommit, raw.get_transaction_status()))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        assert _post(pat, room, "hello", token).status_code == 303
        assert seen == [("WITH", True, TRANSACTION_STATUS_IDLE)]
        seen.clear()
        assert _post(pat, room, "hello", token).status_code == 303  # sent twice: the unique token refuses it
        tried = [(kind, autocommit) for kind, autocommit, _ in seen[:3]]
        assert tried == [("WITH", True), ("SELECT", True), ("WITH", True)]
        with app.test_request_context():
            rooms.set_premoderation(db.session.get(Room, room.id), True)
        seen.clear()
        assert _post(pat, room, "held for the host", "ab" * 16).status_code == 303
        insert = [kind for kind, _, _ in seen].index("INSERT")  # after it, the host's panel is read afresh
        assert all(autocommit for _, autocommit, _ in seen[: insert + 1])
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert [(m.body, m.seq) for m in _messages(app, room)] == [("hello", 1), ("held for the host", None)]
    with app.app_context():
        raw = db.session.connection().connection.dbapi_connection
        assert raw.autocommit is False  # the pool turned it off on the way back
        db.session.remove()


def test_a_posted_event_is_the_same_bytes_as_the_stored_message_renders(app, make_room, join, broker):
    """The one-statement post (``messages.post_at_once``) renders its event from the statement's row, not
    from the ORM: it must be the very partial the page, the history and the replay render from the database
    (alias, host flag, the room's time zone, links, the search configuration it was stored with)."""
    room = make_room(timezone="Asia/Kathmandu")  # +05:45: a wrong zone cannot hide in a whole hour
    pat = join(room, alias="Zoë <Pat>")
    inbox = broker.subscribe(events.channel(room.id))
    try:
        assert _post(pat, room, "see https://example.org/a?b=1&c=2 — ok").status_code == 303
        got = inbox.get(5)
    finally:
        inbox.close()
    assert got is not None and got.kind == EventKind.MESSAGE and got.seq == 1
    with app.test_request_context():
        stored = db.session.scalars(select(Message).where(Message.room_id == room.id)).one()
        fresh = db.session.get(Room, room.id)
        assert fresh is not None and stored.search_config == fresh.search_language
        assert got.frame == events.message_posted(fresh, stored, fresh.last_rev).frame
    assert b"Zo\xc3\xab &lt;Pat&gt;" in got.frame and b'href="https://example.org/a?b=1&amp;c=2"' in got.frame


@pytest.mark.services  # the one-statement post; on SQLite the seat is read first and the write locks the database
def test_a_post_that_went_through_is_not_answered_as_refused_when_the_seat_closes_just_after(
    app, make_room, join, broker
):
    """The host bans the author in the instant after the post's statement: the message is stored and
    published, so the htmx answer is the closed composer with 200, not a refusal (composer.js would keep the
    sent text in the box and announce it as refused)."""
    room = make_room()
    pat = join(room)
    token = form_token(pat.get(f"/r/{room.code}").get_data(as_text=True))
    inbox = broker.subscribe(events.channel(room.id))
    with app.app_context():
        engine = db.engine
    inserts: list[str] = []

    def ban_after_the_insert(conn, cursor, statement, *args):
        if not inserts and "INSERT INTO messages" in statement:
            inserts.append(statement)
            with engine.begin() as host:
                host.execute(
                    update(Membership).where(Membership.room_id == room.id, ~Membership.is_host),
                    {"left_at": utcnow(), "banned": True},
                )

    event.listen(engine, "after_cursor_execute", ban_after_the_insert)
    try:
        response = pat.htmx("POST", f"/r/{room.code}/messages", {"body": "sent in time", "token": token})
        got = inbox.get(5)
    finally:
        event.remove(engine, "after_cursor_execute", ban_after_the_insert)
        inbox.close()
    assert inserts and response.status_code == 200
    assert 'data-closed="closed"' in response.get_data(as_text=True)
    assert [m.body for m in _messages(app, room)] == ["sent in time"]
    assert got is not None and got.kind == EventKind.MESSAGE


@pytest.mark.services  # the row lock a post waits for; SQLite locks the whole database instead
@pytest.mark.parametrize(
    ("rule", "status", "stored"),
    [
        ("UPDATE rooms SET locked = true WHERE id = :room", 403, ["first"]),
        ("UPDATE rooms SET ends_at = now() - interval '1 second' WHERE id = :room", 403, ["first"]),
        ("UPDATE rooms SET slow_mode_seconds = 60 WHERE id = :room", 429, ["first"]),
        ("UPDATE rooms SET premoderation = true WHERE id = :room", 303, ["first", "held"]),
    ],
)
def test_a_rule_the_host_commits_while_a_post_waits_for_the_room_is_obeyed(app, make_room, join, rule, status, stored):
    """The one-statement post checks the room's rules in the ``UPDATE`` that locks its row, so PostgreSQL
    checks them again on the row as the host left it: a post that was waiting for the host's change is
    refused (locked, ended, slow mode) or held for the host (pre-moderation), never published."""
    room = make_room()
    pat = join(room)
    assert _post(pat, room, "first").status_code == 303
    token = form_token(pat.get(f"/r/{room.code}").get_data(as_text=True))
    with app.app_context():
        engine = db.engine
    answers: list[int] = []
    with engine.connect() as host:
        change = host.begin()
        host.execute(text(rule), {"room": room.id})  # the room's row stays locked until the commit
        poster = threading.Thread(target=lambda: answers.append(_post(pat, room, "held", token).status_code))
        poster.start()
        time.sleep(0.5)  # the post is waiting for the row (a lock wait, not a timing we assert on)
        change.commit()
    poster.join(10)
    assert answers == [status]
    assert [m.body for m in _messages(app, room)] == stored
    assert all(m.status == "published" for m in _messages(app, room) if m.body == "first")
    assert [m.seq for m in _messages(app, room) if m.body == "held"] in ([], [None])


def test_a_browser_with_seats_in_two_rooms_posts_in_each_as_that_rooms_seat(app, make_room, join):
    """The session holds {room: seat} for every room this browser joined; each post uses that room's seat."""
    first, second = make_room(title="First"), make_room(title="Second")
    browser = join(first, alias="Ana")
    join(second, alias="Bo", client=browser)
    assert _post(browser, second, "in the second").status_code == 303
    assert _post(browser, first, "in the first").status_code == 303
    assert [(m.body, m.seq, m.author.alias) for m in _messages(app, first)] == [("in the first", 1, "Ana")]
    assert [(m.body, m.seq, m.author.alias) for m in _messages(app, second)] == [("in the second", 1, "Bo")]


@pytest.mark.services  # on SQLite the insert is still in the request's transaction, and rolls back
def test_a_post_stored_before_its_event_failed_still_reaches_the_streams(app, make_room, join, broker, monkeypatch):
    """Under ``prepare_post`` the insert commits by itself, so a failure after it (here: rendering the event)
    leaves the message stored. The room's streams are told to re-read the database, or no tab would see it
    until the next post: a resent form finds the stored twin and publishes nothing."""
    room = make_room()
    pat = join(room)
    token = form_token(pat.get(f"/r/{room.code}").get_data(as_text=True))
    inbox = broker.subscribe(events.channel(room.id))
    real = events.message_posted

    def fails(*args, **kwargs):
        monkeypatch.setattr(events, "message_posted", real)  # once
        raise RuntimeError("the template broke")

    monkeypatch.setattr(events, "message_posted", fails)
    try:
        assert _post(pat, room, "stored all the same", token).status_code == 500  # chatroom/errors.py's page
        assert [m.body for m in _messages(app, room)] == ["stored all the same"]
        told = inbox.get(5)
        assert told is not None and told.kind == EventKind.RESYNC
        assert _post(pat, room, "stored all the same", token).status_code == 303  # resent: the twin answers
        assert [m.body for m in _messages(app, room)] == ["stored all the same"]
    finally:
        inbox.close()


def test_a_resubmission_is_answered_from_the_commit_even_after_a_lock(app, make_room, join, make_facilitator):
    """An ordinary post makes no token lookup: its twin is found at the commit (htmx, a mention and a question
    render on the way). A refusal (the room locked since) still answers a resubmitted form as sent."""
    host = make_facilitator()
    room = make_room(owner=host)
    pat = join(room)
    join(room, "Kim")
    token = form_token(pat.get(f"/r/{room.code}").get_data(as_text=True))
    data = {"body": "@Kim is this the plan?", "token": token, "question": "1"}
    assert pat.htmx("POST", f"/r/{room.code}/messages", data).status_code == 200
    assert pat.htmx("POST", f"/r/{room.code}/messages", data).status_code == 200
    assert [m.body for m in _messages(app, room)] == ["@Kim is this the plan?"]
    with app.test_request_context():
        rooms.set_locked(db.session.get(Room, room.id), True)
    assert _post(pat, room, "@Kim is this the plan?", token).status_code == 303  # it went through before
    assert _post(pat, room, "a new one", "cd" * 16).status_code == 403


def test_a_form_sent_twice_at_the_same_moment_stores_one_message(app, make_room, join):
    """Both copies pass the first token check before either commits; the room's row lock orders them, and the
    second one's insert meets the unique token: it answers with the first one's message."""
    room = make_room()
    join(room)
    with app.app_context():
        seat_id = db.session.scalar(
            select(Membership.id).where(Membership.room_id == room.id, Membership.alias == "Pat")
        )
    token = "ab" * 16
    gate = threading.Barrier(2)
    results: list[tuple[int | None, bool]] = []

    def send() -> None:
        with app.test_request_context():
            seat = db.session.get(Membership, seat_id)
            gate.wait()
            message, created = messages.post(seat, "only once", token)
            results.append((message.seq, created))
            db.session.remove()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(created for _, created in results) == [False, True]
    assert {seq for seq, _ in results} == {1}
    assert [m.body for m in _messages(app, room)] == ["only once"]


@pytest.mark.parametrize("htmx", [False, True])
def test_a_form_sent_again_with_other_words_keeps_them_and_asks_to_send_again(app, make_room, join, htmx):
    """The first answer was lost, the person changed the text and sent the same form again: the token has
    posted already, so the new words would vanish behind the first message. They come back (409) in the
    composer with a fresh token, and sending again posts them."""
    room = make_room()
    pat = join(room)
    token = form_token(pat.get(f"/r/{room.code}").get_data(as_text=True))
    assert _post(pat, room, "first words", token).status_code == 303
    again = _post(pat, room, "better words", token, htmx=htmx)
    html = again.get_data(as_text=True)
    assert again.status_code == 409
    assert "better words" in html and "already sent a different message" in html
    fresh = form_token(html)
    assert fresh != token
    assert _post(pat, room, "first words", token).status_code == 303  # the same words: a plain resubmission
    assert _post(pat, room, "better words", fresh).status_code == 303
    assert [m.body for m in _messages(app, room)] == ["first words", "better words"]


def test_the_posted_message_is_the_stored_row_and_can_be_changed(app, make_room, join):
    """The post inserts through Core (one statement on PostgreSQL); what it returns is the row as stored, in the
    session like a loaded one: an edit of it is written, and nothing else is written twice."""
    room = make_room()
    join(room)
    with app.test_request_context():
        seat = db.session.scalar(select(Membership).where(Membership.room_id == room.id, Membership.alias == "Pat"))
        message, created = messages.post(seat, "first words", "ef" * 16, question=True)
        assert created and message.seq == 1 and message.id is not None
        messages.edit(seat, message, "better words")
        db.session.remove()
    [stored] = _messages(app, room)
    assert (stored.seq, stored.body, stored.question, stored.rev) == (1, "better words", True, 1)
    assert stored.author.alias == "Pat"
    assert stored.created_at == stored.published_at and stored.edited_at is not None


def test_a_post_into_a_room_deleted_meanwhile_is_refused(app, make_room, join):
    """The room went between the seat check and the insert (its row is gone): 404 and a sentence, nothing kept."""
    room = make_room()
    join(room)
    with app.test_request_context():
        seat = db.session.scalar(select(Membership).where(Membership.room_id == room.id, Membership.alias == "Pat"))
        assert seat.room.code == room.code  # loaded with the seat, as a request does
        with db.engine.begin() as other:  # another request deletes it, outside this session
            other.execute(Room.__table__.delete().where(Room.__table__.c.id == room.id))
        with pytest.raises(Invalid) as refused:
            messages.post(seat, "into nothing", "ab" * 16)
        assert refused.value.status == 404 and "no longer exists" in refused.value.message
        assert db.session.scalar(select(func.count()).select_from(Message)) == 0


def test_form_without_token_is_refused(app, make_room, join):
    room = make_room()
    pat = join(room)
    response = pat.form(f"/r/{room.code}/messages", {"body": "hi"})
    assert response.status_code == 400
    assert "reload the page" in response.get_data(as_text=True)


def test_htmx_post_answers_a_fresh_composer(app, make_room, join):
    room = make_room()
    pat = join(room)
    page = pat.get(f"/r/{room.code}").get_data(as_text=True)
    response = _post(pat, room, "via htmx", form_token(page), htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html and 'id="composer"' in html
    assert form_token(html) != form_token(page)
    assert "HX-Request" in response.headers["Vary"]


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        '<button hx-get="/rooms/" hx-trigger="load">x</button>',
        '<a href="javascript:alert(1)">x</a>',
    ],
)
def test_markup_in_a_message_is_inert_text(app, make_room, join, hostile):
    room = make_room()
    pat = join(room)
    _post(pat, room, hostile)
    html = pat.get(f"/r/{room.code}").get_data(as_text=True)
    [body] = re.findall(r'<p class="message__body" dir="auto">(.*?)</p>', html, re.S)
    assert "<" not in body and ">" not in body
    assert body.startswith("&lt;")


def test_posting_to_a_room_you_are_not_in(app, make_room, join):
    room = make_room()
    other = make_room()
    pat = join(other)
    assert _post(pat, room, "sneaky", "a" * 32).status_code == 403
    assert pat.get(f"/r/{room.code}/messages?before=5", headers={"HX-Request": "true"}).status_code == 403
    assert pat.get(f"/r/{room.code}/events").status_code == 403
    assert "Join the room" in pat.get(f"/r/{room.code}").get_data(as_text=True)


def test_posting_after_the_room_ended(app, make_room, join):
    room = make_room(starts_in=timedelta(minutes=-10), lasts=timedelta(minutes=20))
    pat = join(room)
    end_room(app, room)
    response = _post(pat, room, "too late", "b" * 32)
    assert response.status_code == 403
    assert "not open" in response.get_data(as_text=True)


def test_leave_closes_the_seat(app, make_room, join):
    room = make_room()
    pat = join(room)
    assert pat.form(f"/r/{room.code}/leave").status_code == 303
    assert "Join the room" in pat.get(f"/r/{room.code}").get_data(as_text=True)


# -- history ------------------------------------------------------------------


def _fill(app, room, count, alias="Writer"):
    with app.test_request_context():
        membership = members.join(db.session.get(Room, room.id), alias, ROOM_PASSWORD)
        for i in range(1, count + 1):
            messages.post(membership, f"message {i}", f"{i:032x}")


def test_room_shows_the_last_50_and_pages_back_by_cursor(app, make_room, join):
    room = make_room()
    _fill(app, room, 120)
    pat = join(room)
    html = pat.get(f"/r/{room.code}").get_data(as_text=True)
    seqs = [int(s) for s in re.findall(r'id="message-(\d+)"', html)]
    assert seqs == list(range(71, 121))
    assert "after=120" in html  # the stream resumes after what the page shows

    fragment = pat.get(f"/r/{room.code}/messages?before=71", headers={"HX-Request": "true"})
    older = fragment.get_data(as_text=True)
    assert "<html" not in older
    assert [int(s) for s in re.findall(r'id="message-(\d+)"', older)] == list(range(21, 71))
    assert "before=21" in older and 'hx-swap-oob="true"' in older

    last = pat.get(f"/r/{room.code}/messages?before=21", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert [int(s) for s in re.findall(r'id="message-(\d+)"', last)] == list(range(1, 21))
    assert "start of the room" in last


def test_history_without_javascript_is_a_page(app, make_room, join):
    room = make_room()
    _fill(app, room, 60)
    pat = join(room)
    response = pat.get(f"/r/{room.code}/messages?before=11")
    assert response.status_code == 303
    page = pat.get(response.location).get_data(as_text=True)
    assert [int(s) for s in re.findall(r'id="message-(\d+)"', page)] == list(range(1, 11))
    assert "Newer messages" in page


def test_malformed_cursor_is_400(make_room, join):
    room = make_room()
    pat = join(room)
    assert pat.get(f"/r/{room.code}?before=abc").status_code == 400


# -- sequence numbers -----------------------------------------------------------


@pytest.mark.services
def test_sequence_numbers_are_gap_free_under_concurrent_posters(app, make_room):
    room = make_room()
    with app.app_context():
        seat_ids = [members.join(db.session.get(Room, room.id), f"p{i}", ROOM_PASSWORD).id for i in range(8)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(seat_ids))

    def poster(member_id: int) -> None:
        try:
            with app.test_request_context():
                membership = db.session.get(Membership, member_id)
                start.wait()
                for n in range(25):
                    messages.post(membership, f"{member_id}-{n}", f"{member_id:016x}{n:016x}")
                db.session.remove()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=poster, args=(m,)) for m in seat_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = _messages(app, room)
    assert [m.seq for m in rows] == list(range(1, 201))
    # Commit order is seq order: ids (allocated at insert) never run backwards against seq within a poster.
    for member_id in seat_ids:
        mine = [m for m in rows if m.membership_id == member_id]
        assert [int(m.body.split("-")[1]) for m in mine] == list(range(25))
    with app.app_context():
        assert db.session.get(Room, room.id).last_seq == 200
