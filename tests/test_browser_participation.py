"""Taking part, in real browsers: a host and two participants use reactions, questions and votes, mentions
(with the @-name picker), the private word with the host and search live; the server goes away and comes
back and every page converges, with "new since you left"; the same without JavaScript through plain forms;
and axe-core finds nothing on the new pages and controls.

Backend-independent (the stream itself is tested in both passes elsewhere): these run once.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from selenium.webdriver.common.keys import Keys

from chatroom.extensions import db
from chatroom.models import Membership, Message, Room
from chatroom.services import messages, notes, participation
from support.browser import AppServer, Chrome, connection_state, describe, join_room, sign_in
from support.factories import fill_room

pytestmark = [pytest.mark.live, pytest.mark.once, pytest.mark.usefixtures("browser_tools")]

LIVE = {"LIVE_STALL_SECONDS": 20, "LIVE_POLL_SECONDS": 1, "LIVE_RETRY_SECONDS": 3}


def _live(*chromes: Chrome) -> None:
    for chrome in chromes:
        chrome.wait(lambda c=chrome: connection_state(c) == "live", timeout=20, message="live")


def _message_text(chrome: Chrome, seq: int) -> str:
    return str(
        chrome.execute_script(f"var m = document.getElementById('message-{seq}'); return m ? m.textContent : ''")
    )


def _names(chrome: Chrome, selector: str) -> list[str]:
    """The accessible text of the buttons matching ``selector`` (what a screen reader says, roughly)."""
    return list(
        chrome.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(b => "
            "[...b.querySelectorAll('.visually-hidden')].map(s => s.innerText || [...s.childNodes]"
            ".filter(n => n.nodeType === 3 || !n.hidden).map(n => n.textContent).join('')).join(''))",
            selector,
        )
    )


def _seat(app: Any, code: str, alias: str) -> tuple[Room, Membership]:
    room = db.session.scalar(db.select(Room).where(Room.code == code))
    seat = db.session.scalar(db.select(Membership).where(Membership.room_id == room.id, Membership.alias == alias))
    return room, seat


def test_a_host_and_two_participants_take_part_live_and_after_a_reconnect(
    app, browsers, make_room, make_facilitator, database_url, redis_url
):
    host_account = make_facilitator(email="hana@example.org", name="Hana Host")
    room = make_room(owner=host_account, title="Taking part")
    code = room.code
    server = AppServer(database_url, redis_url, LIVE).start()
    try:
        host, pat, kim = browsers(), browsers(), browsers()
        sign_in(host, server.url, host_account.email)
        host.get(f"{server.url}/r/{code}")
        join_room(pat, server.url, code, "Pat")
        join_room(kim, server.url, code, "Kim")
        _live(host, pat, kim)
        kim.wait(lambda: "Pat" in kim.text_of("#presence"), message="Pat here, for Kim's picker")

        # Mentions: "@Pa" offers Pat; Enter chooses (it does not send); Pat's copy is marked and announced.
        box = kim.css("#field-body")
        box.send_keys("Hello @Pa")
        kim.wait(lambda: kim.all("#mention-list [role=option]"), message="the name picker")
        assert kim.css("#mention-list").get_attribute("role") == "listbox"
        assert box.get_attribute("aria-controls") == "mention-list"
        assert box.get_attribute("aria-activedescendant") == "mention-option-0"
        assert kim.css("#mention-option-0").text == "Pat"
        box.send_keys(Keys.ENTER)
        assert box.get_attribute("value") == "Hello @Pat "
        box.send_keys("welcome", Keys.ENTER)
        pat.wait(lambda: "Hello @Pat welcome" in _message_text(pat, 1), message="Kim's message")
        pat.wait(lambda: "Mentions you" in _message_text(pat, 1), message="marked for Pat")
        said = "return Array.from(document.querySelectorAll('#announcer p'), p => p.textContent)"
        pat.wait(lambda: "Kim mentioned you: Hello @Pat welcome" in pat.execute_script(said), message="the mention")
        assert not [s for s in pat.execute_script(said) if s.startswith("Kim: Hello")]  # said once, as a mention
        assert "Mentions you" not in _message_text(kim, 1) and "Mentions you" not in _message_text(host, 1)
        assert (
            pat.css("#message-1 .mention")
            .get_attribute("href")
            .endswith("/search?by=" + pat.execute_script("return document.body.dataset.member"))
        )

        # Reactions: Pat reacts from the message's menu; Kim sees it live and adds hers with the chip.
        pat.css("#message-1 .message__more").click()
        pat.wait(lambda: pat.all("#message-menu [data-emoji=thumbs_up]"), message="the menu, with the reactions")
        pat.css("#message-menu [data-emoji=thumbs_up]").click()
        kim.wait(lambda: kim.all("#message-1 .reaction"), message="Pat's reaction, live")
        assert _names(kim, "#message-1 .reaction") == ["1 reaction thumbs up"]
        assert kim.css("#message-1 .reaction").get_attribute("aria-pressed") == "false"
        kim.css("#message-1 .reaction").click()
        for chrome in (pat, kim, host):
            chrome.wait(lambda c=chrome: "👍 2" in _message_text(c, 1), message="two thumbs up")
        _live(pat)
        assert _names(pat, "#message-1 .reaction") == ["2 reactions thumbs up, including yours"]
        assert _names(host, "#message-1 .reaction") == ["2 reactions thumbs up"]
        assert kim.css("#message-1 .reaction").get_attribute("aria-pressed") == "true"

        # Questions: Pat asks; Kim upvotes (Pat cannot: her own); the host's panel sorts; the host answers.
        pat.css("#field-question").click()
        box = pat.css("#field-body")
        box.send_keys("Will the slides be shared?", Keys.ENTER)
        kim.wait(lambda: kim.all("#message-2 .vote button"), message="the question, with its vote")
        pat.wait(lambda: not pat.css("#message-2 .vote").is_displayed(), message="no vote on one's own question")
        host.wait(lambda: "Will the slides be shared?" in host.text_of("#host-questions"), message="host panel")
        assert not host.css("#message-2 .vote").is_displayed()  # the host answers instead
        kim.css("#message-2 .vote button").click()
        for chrome in (pat, kim, host):
            chrome.wait(lambda c=chrome: "1 vote" in _message_text(c, 2), message="one vote")
        host.wait(lambda: "1 vote" in host.text_of("#host-questions"), message="host panel, one vote")
        kim.wait(lambda: kim.css("#message-2 .vote button").get_attribute("aria-pressed") == "true")
        host.css("#host-questions form button").click()
        for chrome in (pat, kim):
            chrome.wait(lambda c=chrome: "Answered" in _message_text(c, 2), message="answered, for everyone")

        # A private word: only the host gets it, live and announced; the host answers from the thread page.
        kim.fill({"note": "I can't speak up: the audio is bad"})
        kim.css("#private-form button").click()
        host.wait(lambda: "the audio is bad" in host.text_of("#host-notes"), message="the host's thread")
        host.wait(lambda: "Kim sent you a private message." in host.execute_script(said))
        kim.wait(lambda: "the audio is bad" in kim.text_of("#private"), message="Kim's own thread")
        assert kim.css("#field-note").get_attribute("value") == ""
        assert "the audio is bad" not in pat.page_source
        answer = browsers()
        sign_in(answer, server.url, host_account.email)
        answer.get(host.css("#host-notes a").get_attribute("href"))
        answer.fill({"note": "Thanks, fixing it"})
        answer.css("main form button[type=submit]").click()
        kim.wait(lambda: "fixing it" in kim.text_of("#private"), message="the answer, live")
        kim.wait(lambda: "The host answered you privately." in kim.execute_script(said))
        assert "fixing it" not in pat.page_source

        # The server goes away; meanwhile things happen; every page converges when it is back.
        for chrome in (host, pat, kim):
            assert chrome.errors() == []
        server.stop()
        kim.wait(lambda: connection_state(kim) == "reconnecting", message="reconnecting")
        with app.test_request_context():
            row, pat_seat = _seat(app, code, "Pat")
            _, kim_seat = _seat(app, code, "Kim")
            first = db.session.scalar(db.select(Message).where(Message.room_id == row.id, Message.seq == 1))
            participation.react(pat_seat, first, "heart")
            question = db.session.scalar(db.select(Message).where(Message.room_id == row.id, Message.seq == 2))
            participation.set_answered(row, question, False)
            notes.reply(row, kim_seat, "Better now?")
            messages.post(pat_seat, "Back after the break", "a" * 32)
            messages.post(pat_seat, "Anyone there?", "b" * 32)
        server.start()
        _live(host, pat, kim)
        for chrome in (host, pat, kim):
            chrome.errors()  # the lost stream's network errors, while the server was away
        for chrome in (pat, kim, host):
            chrome.wait(lambda c=chrome: "❤️ 1" in _message_text(c, 1), timeout=15, message="the reaction, replayed")
            chrome.wait(lambda c=chrome: "Answered" not in _message_text(c, 2), message="the answer, undone")
        kim.wait(lambda: "Better now?" in kim.text_of("#private"), message="the private answer, on reconnect")
        host.wait(lambda: "Better now?" in host.text_of("#host-notes"), message="the host's threads, on reconnect")
        kim.wait(lambda: kim.all("#new-since"), message="new since you left")
        assert kim.css(".since-left-notice").text == "2 new messages since you left"
        following = kim.execute_script("return document.getElementById('new-since').nextElementSibling.id")
        assert following == "message-3"
        assert _names(pat, "#message-1 .reaction") == [
            "2 reactions thumbs up, including yours",
            "1 reaction heart, including yours",
        ]
        assert kim.css("#message-2 .vote button").get_attribute("aria-pressed") == "true"
        kim.css(".since-left-notice a").click()
        kim.wait(lambda: kim.execute_script("return location.hash") == "#new-since")

        # Search: the words, in context, with a link into the log.
        pat.css("#room-tools a[href$='/search']").click()
        pat.fill({"q": "slides"})
        pat.css("form[role=search] button").click()
        pat.wait(lambda: "1 message found" in pat.text_of("main"), message="a result")
        pat.css(".results__link a").click()
        pat.wait(lambda: pat.all("#message-2"), message="the message in the conversation")
        for chrome in (host, pat, kim, answer):
            assert [e for e in chrome.errors() if "/events" not in e] == []
    finally:
        server.stop()


def test_taking_part_without_javascript(app, browsers, make_room, make_facilitator, database_url, redis_url):
    """Reactions, a question and its vote, a private word and the host's answer, search, and "new since you left",
    all through plain forms and links."""
    host_account = make_facilitator(email="nora@example.org", name="Nora Host")
    room = make_room(owner=host_account, title="Offline")
    server = AppServer(database_url, redis_url, LIVE).start()
    try:
        pat, kim, host = browsers(javascript=False), browsers(javascript=False), browsers(javascript=False)
        join_room(pat, server.url, room.code, "Pat")
        join_room(kim, server.url, room.code, "Kim")
        pat.fill({"body": "Who has the agenda? @Kim"})
        pat.css("#field-question").click()
        pat.css("#composer button[type=submit]").click()
        pat.wait(lambda: pat.all("#message-1"))
        kim.get(f"{server.url}/r/{room.code}")
        assert "Mentions you" in _message_text(kim, 1)
        kim.css("#message-1 .vote button").click()
        kim.wait(lambda: "1 vote" in _message_text(kim, 1))
        kim.css("#message-1 .message__more").click()
        kim.css(".reactions--all button[value=eyes]").click()
        kim.wait(lambda: kim.current_url.endswith("#message-1"))
        assert kim.css("#message-1 .reaction").get_attribute("aria-pressed") == "true"
        assert _names(kim, "#message-1 .reaction") == ["1 reaction eyes, including yours"]
        kim.css("#message-1 .reaction").click()  # taken back, from the chip
        kim.wait(lambda: not kim.all("#message-1 .reaction"))

        kim.fill({"note": "Can I leave early?"})
        kim.css("#private-form button").click()
        kim.wait(lambda: "Can I leave early?" in kim.text_of("#private"))
        sign_in(host, server.url, host_account.email)
        host.get(f"{server.url}/r/{room.code}")
        host.css("#host-notes a").click()
        host.fill({"note": "Yes, of course"})
        host.css("main form button[type=submit]").click()
        host.wait(lambda: "Yes, of course" in host.text_of("main"))
        host.get(f"{server.url}/r/{room.code}/questions")
        host.css(".questions__actions button").click()
        host.wait(lambda: "Answered" in host.text_of("main"))

        for n in range(3):
            pat.fill({"body": f"While Kim was away {n}"})
            pat.css("#composer button[type=submit]").click()
            pat.wait(lambda n=n: f"away {n}" in pat.text_of("#log"))
        kim.get(f"{server.url}/r/{room.code}")
        assert "Yes, of course" in kim.text_of("#private") and "Answered" in _message_text(kim, 1)
        assert kim.css(".since-left-notice").text == "3 new messages since you left"
        kim.css(".since-left-notice a").click()
        assert kim.execute_script("return document.getElementById('new-since').nextElementSibling.id") == "message-2"

        kim.css("#room-tools a[href$='/search']").click()
        kim.fill({"q": "agenda"})
        kim.css("form[role=search] button").click()
        kim.wait(lambda: "1 message found" in kim.text_of("main"))
        for chrome in (pat, kim, host):
            assert chrome.errors() == []
    finally:
        server.stop()


def test_the_new_pages_and_controls_meet_wcag_22_aa(
    app, browsers, make_room, make_facilitator, database_url, redis_url
):
    """axe-core finds nothing on the room with reactions, votes, a mention, a private thread and "new since you
    left", on the questions, search and private-thread pages and a message's page, in both themes."""
    host_account = make_facilitator(email="axe2@example.org", name="Hana Host")
    room = make_room(owner=host_account, title="Accessible taking part")
    fill_room(app, room, 8)
    server = AppServer(database_url, redis_url, LIVE).start()
    try:
        host, pat = browsers(), browsers()
        sign_in(host, server.url, host_account.email)
        join_room(pat, server.url, room.code, "Pat")
        with app.test_request_context():
            row, pat_seat = _seat(app, room.code, "Pat")
            _, ana = _seat(app, room.code, "Ana")
            asked, _ = messages.post(ana, "A question for @Pat?", "c" * 32, question=True)
            participation.vote(pat_seat, asked)
            first = db.session.scalar(db.select(Message).where(Message.room_id == row.id, Message.seq == 1))
            participation.react(pat_seat, first, "party")
            participation.react(ana, first, "party")
            notes.send(pat_seat, "A private word")
            pat_id = pat_seat.id
            db.session.get(Membership, pat_id).last_seen_seq = 5
            db.session.commit()
        pages = [
            (pat, f"/r/{room.code}"),
            (pat, f"/r/{room.code}/questions"),
            (pat, f"/r/{room.code}/search?q=question"),
            (pat, f"/r/{room.code}/search?q=" + "x" * 300),
            (pat, f"/r/{room.code}/messages/1"),
            (host, f"/r/{room.code}"),
            (host, f"/r/{room.code}/questions"),
            (host, f"/r/{room.code}/private/{pat_id}"),
            (host, f"/r/{room.code}/messages/9"),
        ]
        failures = []
        for theme in ("light", "dark"):
            for chrome in (host, pat):
                chrome.get(f"{server.url}/healthz")
                chrome.add_cookie({"name": "theme", "value": theme, "path": "/"})
            for chrome, path in pages:
                chrome.get(server.url + path)
                if chrome.all("#connection"):
                    chrome.wait(lambda c=chrome: connection_state(c) in ("live", "static"))
                if path == f"/r/{room.code}" and chrome is pat:
                    chrome.css("#field-body").send_keys("@")  # the name picker, open
                    time.sleep(0.5)
                found = chrome.axe()
                if found:
                    failures.append(f"{theme} {path}:\n{describe(found)}")
        assert not failures, "\n".join(failures)
    finally:
        server.stop()
