"""Taking part beyond posting, through plain forms (no JavaScript): reactions, questions and votes, mentions,
search on both backends, the private word with the host, and "new since you left"; and that each is a
change in the lossless stream (its own ``rev``) that a reconnecting tab replays."""

from __future__ import annotations

import json
import re
import secrets

import pytest
from sqlalchemy import select

from chatroom.events import Event, EventKind
from chatroom.extensions import db
from chatroom.models import Membership, Message, Room
from chatroom.services import Invalid, members, messages, notes, participation, search
from chatroom.sse import parse
from chatroom.stream_protocol import StreamState, catch_up, forward
from support.constants import ROOM_PASSWORD
from support.factories import end_room


@pytest.fixture
def room3(app, make_room, make_facilitator, signed_in, join):
    """A room with its host (signed in) and two participants who joined through the form; Pat posted message 1."""
    host = make_facilitator(name="Olive Owner")
    room = make_room(owner=host, title="Taking part")
    owner, _ = signed_in(host)
    pat, kim = join(room, "Pat"), join(room, "Kim")
    _say(pat, room, "Hello everyone")
    return room, owner, pat, kim


def _say(client, room, body, question=False):
    """Post through the form, without loading the room page first (which would mark the room seen)."""
    data = {"body": body, "token": secrets.token_hex(16), **({"question": "1"} if question else {})}
    response = client.form(f"/r/{room.code}/messages", data)
    assert response.status_code == 303, response.get_data(as_text=True)


def _page(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def _seat(app, room, alias):
    with app.app_context():
        return db.session.scalar(select(Membership).where(Membership.room_id == room.id, Membership.alias == alias))


def _message(app, room, seq):
    with app.app_context():
        message = db.session.scalar(select(Message).where(Message.room_id == room.id, Message.seq == seq))
        _ = message.reactions, message.votes
        db.session.expunge(message)
        return message


def _text(html: str) -> str:
    """What a reader gets: the text, without the parts hidden from everyone (``hidden``)."""
    html = re.sub(r"<span[^>]* hidden>[^<]*</span>", "", html)
    return re.sub(r" ([,.:])", r"\1", " ".join(re.sub(r"<[^>]+>", " ", html).split()))


# -- reactions -----------------------------------------------------------------------------------------


def test_reactions_toggle_through_forms_and_say_whose_they_are(app, room3):
    room, owner, pat, kim = room3
    url = f"/r/{room.code}/messages/1/react"
    response = kim.form(url, {"emoji": "thumbs_up"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/r/{room.code}#message-1")
    assert owner.form(url, {"emoji": "thumbs_up"}).status_code == 303
    assert pat.form(url, {"emoji": "heart"}).status_code == 303

    kims = _text(_page(kim, f"/r/{room.code}"))
    assert "2 reactions thumbs up, including yours" in kims
    assert "1 reaction heart" in kims and "1 reaction heart, including yours" not in kims
    pats = _text(_page(pat, f"/r/{room.code}"))
    assert "2 reactions thumbs up" in pats and "thumbs up, including yours" not in pats
    assert 'aria-pressed="true"' in _page(pat, f"/r/{room.code}")  # the heart

    assert kim.form(url, {"emoji": "thumbs_up"}).status_code == 303  # toggled off
    assert "1 reaction thumbs up" in _text(_page(kim, f"/r/{room.code}"))
    message = _message(app, room, 1)
    assert sorted(r.emoji for r in message.reactions) == ["heart", "thumbs_up"]
    assert message.rev == 4  # each toggle is a change of its own

    # The message's own page offers every reaction.
    page = _page(kim, f"/r/{room.code}/messages/1")
    assert page.count('name="emoji"') == 2 + 6 and "eyes, 0 reactions" in _text(page)


def test_a_reaction_is_refused_clearly(app, room3):
    room, owner, _pat, kim = room3
    url = f"/r/{room.code}/messages/1/react"
    response = kim.form(url, {"emoji": "<script>"})
    assert response.status_code == 422 and "Choose one of the reactions" in response.get_data(as_text=True)
    assert kim.form(f"/r/{room.code}/messages/99/react", {"emoji": "heart"}).status_code == 404
    assert owner.form(f"/r/{room.code}/messages/1/remove").status_code == 303
    assert kim.form(url, {"emoji": "heart"}).status_code == 409
    assert kim.htmx("POST", f"/r/{room.code}/messages/1/react", {"emoji": "heart"}).status_code == 409
    assert _message(app, room, 1).reactions == []


def test_with_htmx_a_reaction_answers_204_and_the_stream_brings_it_to_everyone(app, room3, broker):
    room, _owner, _pat, kim = room3
    sub = broker.subscribe(f"room:{room.id}")
    try:
        assert kim.htmx("POST", f"/r/{room.code}/messages/1/react", {"emoji": "party"}).status_code == 204
        event = sub.get(timeout=2)
    finally:
        sub.close()
    assert event.kind == EventKind.CHANGE and event.rev == 1
    data = parse(event.frame)[0]["data"]
    kim_id = _seat(app, room, "Kim").id
    # Viewer-neutral bytes: who reacted is data, "including yours" is for the page to show.
    assert f'data-by=" {kim_id} "' in data and 'aria-pressed="false"' in data
    assert '<span class="yours" hidden>' in data and "csrf_token" not in data


def test_reactions_replay_after_a_reconnect(app, room3):
    """A tab that had message 1 at rev 0 reconnects: the catch-up sends message 1 again, with its reactions."""
    room, _owner, _pat, kim = room3
    kim.form(f"/r/{room.code}/messages/1/react", {"emoji": "eyes"})
    state = StreamState(room.id, membership_id=0, is_host=False, last=1, rev=0, ends_at=2e9)
    with app.test_request_context():
        out = parse(b"".join(catch_up(state)))
    assert [e["id"] for e in out] == ["1.1"] and "1 reaction eyes" in _text(out[0]["data"])
    assert state.rev == 1


# -- questions and votes -------------------------------------------------------------------------------


def test_questions_are_asked_upvoted_once_each_and_answered(app, room3):
    room, owner, pat, kim = room3
    _say(kim, room, "What about lunch?", question=True)  # 2
    _say(pat, room, "Will slides be shared?", question=True)  # 3
    _say(pat, room, "And the recording?", question=True)  # 4
    vote = f"/r/{room.code}/messages/{{}}/vote"
    assert pat.form(vote.format(2)).status_code == 303
    assert kim.form(vote.format(3)).status_code == 303
    assert kim.form(vote.format(2)).status_code == 403  # one's own
    assert owner.form(vote.format(2)).status_code == 403  # the host answers instead
    assert kim.form(vote.format(1)).status_code == 409  # not a question
    assert _message(app, room, 2).voters == [_seat(app, room, "Pat").id]

    # Sorted by votes, newest first among equals: 3 (1 vote, newer) before 2 (1 vote), then 4.
    page = _page(owner, f"/r/{room.code}/questions")
    order = [int(s) for s in re.findall(r'id="message-(\d+)"', page)]
    assert order == [3, 2, 4]
    assert kim.form(vote.format(4)).status_code == 303
    assert pat.form(vote.format(2)).status_code == 303  # taken back
    with app.app_context():
        assert [m.seq for m in participation.questions(db.session.get(Room, room.id))] == [4, 3, 2]

    # The host marks one answered: everyone sees it marked; it takes no more votes; it sinks to the end.
    response = owner.form(f"/r/{room.code}/messages/4/answered", {"answered": "1", "next": "questions"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/questions")
    assert "Answered" in _text(_page(kim, f"/r/{room.code}#message-4"))
    assert kim.form(vote.format(4)).status_code == 409  # not even to take a vote back
    with app.app_context():
        assert [m.seq for m in participation.questions(db.session.get(Room, room.id))] == [3, 2, 4]
    host_page = _text(_page(owner, f"/r/{room.code}"))
    assert "Questions (2 open)" in host_page


def test_the_host_marks_a_message_as_a_question(app, room3):
    room, owner, pat, kim = room3
    assert pat.form(f"/r/{room.code}/messages/1/question", {"question": "1"}).status_code == 404  # hosts only
    assert owner.form(f"/r/{room.code}/messages/1/question", {"question": "1"}).status_code == 303
    assert _message(app, room, 1).question
    assert "Upvote" in _page(kim, f"/r/{room.code}")
    assert "Upvote" not in _page(pat, f"/r/{room.code}")  # the author's page offers no vote
    assert kim.form(f"/r/{room.code}/messages/1/vote").status_code == 303
    assert owner.form(f"/r/{room.code}/messages/1/question", {"question": "0"}).status_code == 303
    assert not _message(app, room, 1).question


# -- mentions -------------------------------------------------------------------------------------------


def test_a_mention_links_to_the_person_and_is_marked_for_them_only(app, room3):
    room, _owner, pat, kim = room3
    _say(pat, room, "Thanks @ＫＩＭ and @Olive Owner, not foo@Kim")
    kim_id, host_id = _seat(app, room, "Kim").id, _seat(app, room, "Olive Owner").id
    message = _message(app, room, 2)
    assert message.mentioned == [kim_id, host_id]
    page = _page(kim, f"/r/{room.code}")
    assert f'<a class="mention" data-member="{kim_id}" href="/r/{room.code}/search?by={kim_id}">@ＫＩＭ</a>' in page
    assert f'data-member="{host_id}"' in page and ">@Olive Owner</a>" in page
    assert page.count('class="mention"') == 2 and "not foo@Kim" in page
    assert "Mentions you" in page
    assert "Mentions you" not in _page(pat, f"/r/{room.code}")
    # The link shows the person's messages.
    found = _text(_page(pat, f"/r/{room.code}/search?by={kim_id}"))
    assert "Messages by Kim" in found and "0 messages found by Kim" in found


def test_an_edit_finds_the_mentions_again(app, room3):
    room, _owner, pat, _kim = room3
    assert pat.form(f"/r/{room.code}/messages/1/edit", {"body": "Hello @kim"}).status_code == 303
    assert _message(app, room, 1).mentioned == [_seat(app, room, "Kim").id]


# -- search (both backends) ---------------------------------------------------------------------------


def test_search_finds_visible_messages_of_this_room_only(app, room3, make_room, seat):
    room, _owner, pat, kim = room3
    for body in ("The budget is approved", "Budgets for next year", "Lunch at noon", "Removed budget talk"):
        _say(kim, room, body)
    assert kim.form(f"/r/{room.code}/messages/5/delete").status_code == 303
    other = make_room(title="Elsewhere")
    with app.test_request_context():
        stranger = members.join(db.session.get(Room, other.id), "Out", ROOM_PASSWORD)
        messages.post(stranger, "budget elsewhere", "f" * 32)
        row = db.session.get(Room, room.id)
        row.premoderation = True
        db.session.commit()
    _say(kim, room, "Held budget")

    page = _page(pat, f"/r/{room.code}/search?q=budget")
    seqs = [int(s) for s in re.findall(r'id="message-(\d+)"', page)]
    assert seqs == [2]  # whole words, as PostgreSQL's simple configuration and FTS5 both match them
    assert "Removed budget" not in page and "elsewhere" not in page and "Held budget" not in page
    assert f'href="/r/{room.code}?before=7#message-2"' in page
    with app.app_context():
        row = db.session.get(Room, room.id)
        assert [m.seq for m in search.search(row, "lunch NOON")] == [4]
        assert search.search(row, "nothing-like-it") == []
        with pytest.raises(Invalid):
            search.search(row, "  ")


def test_search_refuses_what_it_cannot_look_for(app, room3):
    room, _owner, pat, _kim = room3
    assert "Words to find" in _page(pat, f"/r/{room.code}/search")
    response = pat.get(f"/r/{room.code}/search?q=" + "x" * 300)
    assert response.status_code == 422 and "Shorten your search" in response.get_data(as_text=True)
    assert pat.get(f"/r/{room.code}/search?q=%22%29%28*%20OR%20NEAR").status_code == 200  # FTS syntax is text
    assert pat.get(f"/r/{room.code}/search?by=x").status_code == 400
    assert pat.get(f"/r/{room.code}/search?by=999999").status_code == 404


# -- a private word with the host ------------------------------------------------------------------------


def test_a_private_word_reaches_the_host_only_and_the_host_answers(app, room3):
    room, owner, pat, kim = room3
    response = pat.form(f"/r/{room.code}/private", {"note": "I can't speak up, but the audio is bad"})
    assert response.status_code == 303 and response.headers["Location"].endswith("#private")
    assert "the audio is bad" in _page(pat, f"/r/{room.code}")
    assert "the audio is bad" in _page(owner, f"/r/{room.code}")
    assert "the audio is bad" not in _page(kim, f"/r/{room.code}")
    pat_id = _seat(app, room, "Pat").id
    thread = f"/r/{room.code}/private/{pat_id}"
    assert "the audio is bad" in _page(owner, thread)
    assert kim.get(thread).status_code == 404 and pat.get(thread).status_code == 404
    response = owner.form(thread, {"note": "Thanks, fixing it"})
    assert response.status_code == 303 and response.headers["Location"].endswith(thread)
    assert "Fixing it" not in _page(kim, f"/r/{room.code}") and "fixing it" in _page(pat, f"/r/{room.code}")
    assert owner.form(f"/r/{room.code}/private", {"note": "x"}).status_code == 403  # the host answers in a thread
    assert pat.form(f"/r/{room.code}/private", {"note": "  "}).status_code == 422


def test_private_events_reach_only_their_seat(app, room3, broker):
    room, _owner, pat, _kim = room3
    pat_id, kim_id = _seat(app, room, "Pat").id, _seat(app, room, "Kim").id
    sub = broker.subscribe(f"room:{room.id}")
    try:
        assert pat.htmx("POST", f"/r/{room.code}/private", {"note": "psst"}).status_code == 200
        got = [sub.get(timeout=2), sub.get(timeout=2)]
    finally:
        sub.close()
    private = next(e for e in got if e.kind == EventKind.PRIVATE)
    assert private.target == pat_id and private.durable
    assert next(e for e in got if e.kind == EventKind.HOST)
    with app.test_request_context():
        for membership_id, is_host, sees in ((pat_id, False, True), (kim_id, False, False), (0, True, False)):
            state = StreamState(room.id, membership_id, is_host, last=1, rev=0, ends_at=2e9)
            out = b"".join(forward(state, private))
            assert (b"psst" in out) is sees
        decoded = Event.decode(private.encode())
        assert decoded.kind == EventKind.PRIVATE and decoded.target == pat_id


def test_private_notes_are_in_a_transcript_only_when_the_host_asks(app, room3):
    room, owner, pat, _kim = room3
    pat.form(f"/r/{room.code}/private", {"note": "a private canary"})
    plain = owner.get(f"/rooms/{room.code}/transcript.json").get_data(as_text=True)
    assert "a private canary" not in plain
    for fmt in ("json", "md", "html", "csv"):
        text = owner.get(f"/rooms/{room.code}/transcript.{fmt}?private=1").get_data(as_text=True)
        assert "a private canary" in text, fmt
    data = json.loads(owner.get(f"/rooms/{room.code}/transcript.json?private=1").get_data(as_text=True))
    assert data["private"] == [
        {"participant": "Pat", "from_host": False, "time": data["private"][0]["time"], "text": "a private canary"}
    ]


def test_reactions_and_questions_are_in_the_transcripts(app, room3):
    room, owner, pat, kim = room3
    _say(pat, room, "Can we start later?", question=True)
    kim.form(f"/r/{room.code}/messages/2/vote")
    kim.form(f"/r/{room.code}/messages/1/react", {"emoji": "thumbs_up"})
    data = json.loads(owner.get(f"/rooms/{room.code}/transcript.json").get_data(as_text=True))
    first, second = data["messages"]
    assert first["reactions"] == {"thumbs_up": 1} and not first["question"]
    assert second["question"] and second["votes"] == 1 and not second["answered"]
    html = _text(owner.get(f"/rooms/{room.code}/transcript.html").get_data(as_text=True))
    assert "1 reaction thumbs up" in html and "Question, 1 vote" in html
    assert "question, 1 vote" in owner.get(f"/rooms/{room.code}/transcript.md").get_data(as_text=True)


# -- new since you left ---------------------------------------------------------------------------------


def test_new_since_you_left_marks_the_first_unseen_message_once(app, room3):
    room, _owner, pat, kim = room3
    _page(kim, f"/r/{room.code}")  # Kim has seen message 1
    for n in range(3):
        _say(pat, room, f"While Kim was away {n}")
    _say(kim, room, "Kim's own, from another tab")  # one's own is not news
    page = _page(kim, f"/r/{room.code}")
    assert "3 new messages since you left" in _text(page)
    assert re.search(r'id="new-since".*?</li>\s*<li class="message[^"]*" id="message-2"', page, re.S)
    assert 'href="#new-since"' in page
    assert "since you left" not in _page(kim, f"/r/{room.code}")  # seen now
    assert "since you left" not in _page(pat, f"/r/{room.code}")


def test_the_page_says_how_far_it_was_read(app, room3):
    room, _owner, pat, kim = room3
    for n in range(3):
        _say(pat, room, f"m{n}")
    kim_id = _seat(app, room, "Kim").id
    with app.app_context():
        db.session.get(Membership, kim_id).last_seen_seq = 1
        db.session.commit()
    assert kim.form(f"/r/{room.code}/seen", {"seq": "3"}).status_code == 204
    assert kim.form(f"/r/{room.code}/seen", {"seq": "2"}).status_code == 204  # never backwards
    assert kim.form(f"/r/{room.code}/seen", {"seq": "99"}).status_code == 204  # never beyond the room
    assert kim.form(f"/r/{room.code}/seen", {"seq": "x"}).status_code == 400
    assert _seat(app, room, "Kim").last_seen_seq == 4
    with app.app_context():
        assert participation.since_left(db.session.get(Room, room.id), db.session.get(Membership, kim_id)) == (0, 0)


def test_after_the_room_ends_nothing_changes(app, room3):
    room, _owner, _pat, kim = room3
    end_room(app, room)
    assert kim.form(f"/r/{room.code}/messages/1/react", {"emoji": "heart"}).status_code == 403
    assert kim.form(f"/r/{room.code}/private", {"note": "hi"}).status_code == 403
    assert _message(app, room, 1).reactions == []


def test_notes_service_refuses_other_rooms(app, room3, make_room, seat):
    room, _owner, _pat, _kim = room3
    other = make_room(title="Elsewhere")
    stranger = seat(other, "Out")
    with app.test_request_context():
        with pytest.raises(Invalid) as refused:
            notes.reply(db.session.get(Room, room.id), db.session.get(Membership, stranger.id), "hi")
        assert refused.value.status == 404
