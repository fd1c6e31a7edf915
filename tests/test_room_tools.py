"""The room's tools without a browser: the message menu's fragments and answers, the host's controls and People
list, the picture of the session (chatroom/charts.py), and the dashboard's conditional poll."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from chatroom import charts, events
from chatroom.extensions import db
from chatroom.models import Membership, Room
from chatroom.presence import current_presence
from support.clients import say


def messages_of(html: str) -> list[str]:
    return re.findall(r'<li class="message[^"]*"[^>]*>.*?</li>', html, re.S)


# -- messages: the same bytes for everyone, grouped, with the author's seat --------------------------------


def test_a_message_is_the_same_bytes_for_everyone_and_names_its_authors_seat(app, hosted):
    room, host, pat, kim = hosted
    say(pat, room, "first")
    say(pat, room, "second, soon after")
    say(kim, room, "third")
    fragments = [c.htmx("GET", f"/r/{room.code}/messages?before=4").get_data(as_text=True) for c in (pat, kim, host)]
    assert fragments[0] == fragments[1] == fragments[2]  # no per-viewer mark: "mine" is each page's own rule
    first, second, third = messages_of(fragments[0])
    with app.app_context():
        pat_id = db.session.query(Membership).filter_by(room_id=room.id, alias="Pat").one().id
    assert f'data-author="{pat_id}"' in first and f'data-author="{pat_id}"' in second
    assert "message--cont" not in first and "message--cont" in second and "message--cont" not in third
    # The page marks the reader's own messages by their seat, under its own style nonce.
    page = pat.get(f"/r/{room.code}")
    nonce = re.search(r"'nonce-([^']+)'", page.headers["Content-Security-Policy"]).group(1)
    assert f'<style nonce="{nonce}">#log [data-author="{pat_id}"]{{' in page.get_data(as_text=True)


def test_a_live_message_carries_its_authors_seat(app, make_room, seat):
    room = make_room()
    pat = seat(room, "Pat")
    with app.test_request_context():
        from chatroom.services import messages

        row = db.session.get(Membership, pat.id)
        message, _ = messages.post(row, "live", "a" * 32)
        html = events.message_frame(db.session.get(Room, room.id), message, 0).decode()
    assert f'data-author="{pat.id}"' in html and 'data-author="None"' not in html


# -- the message menu: inline forms and in-place answers --------------------------------------------------


def test_the_menu_opens_an_inline_edit_form_and_saves_in_place(hosted):
    room, _, pat, kim = hosted
    say(pat, room, "helo")
    form = pat.htmx("GET", f"/r/{room.code}/messages/1?form=edit")
    html = form.get_data(as_text=True)
    assert form.status_code == 200 and "<html" not in html
    assert 'class="message__form"' in html and f'hx-post="/r/{room.code}/messages/1/edit"' in html
    assert '<label for="edit-1">Edit your message</label>' in html and ">helo</textarea>" in html
    assert pat.htmx("GET", f"/r/{room.code}/messages/1?form=nonsense").status_code == 404
    # Saved: 204, the stream shows the change; nothing to flash on the next page.
    assert pat.htmx("POST", f"/r/{room.code}/messages/1/edit", {"body": "hello"}).status_code == 204
    assert "hello" in kim.get(f"/r/{room.code}").get_data(as_text=True)
    assert "Message edited." not in pat.get(f"/r/{room.code}").get_data(as_text=True)
    # Refused: the form again, with the reason beside the box, and its status.
    refused = pat.htmx("POST", f"/r/{room.code}/messages/1/edit", {"body": "  "})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and 'aria-invalid="true"' in html and "Write a message" in html


def test_report_and_delete_from_the_menu(hosted):
    room, _, pat, kim = hosted
    say(pat, room, "hm")
    report = kim.htmx("GET", f"/r/{room.code}/messages/1?form=report").get_data(as_text=True)
    assert "Why are you reporting it? (optional)" in report and f'hx-post="/r/{room.code}/messages/1/report"' in report
    assert kim.htmx("POST", f"/r/{room.code}/messages/1/report", {"reason": "rude"}).status_code == 204
    again = kim.htmx("POST", f"/r/{room.code}/messages/1/report", {"reason": "rude"})
    assert again.status_code == 409 and "already reported" in again.get_data(as_text=True)
    # Another's message cannot be deleted: the reason alone, as a fragment.
    refused = kim.htmx("POST", f"/r/{room.code}/messages/1/delete")
    assert refused.status_code == 403 and "<html" not in refused.get_data(as_text=True)
    assert "your own" in refused.get_data(as_text=True)
    assert pat.htmx("POST", f"/r/{room.code}/messages/1/delete").status_code == 204


def test_the_message_page_offers_the_host_every_action_without_javascript(hosted):
    room, host, pat, _ = hosted
    say(pat, room, "spam")
    html = host.get(f"/r/{room.code}/messages/1").get_data(as_text=True)
    assert f'action="/r/{room.code}/messages/1/remove"' in html
    assert re.search(rf'action="/r/{room.code}/members/\d+/remove"', html) and "Remove Pat from the room" in html
    assert re.search(rf'action="/r/{room.code}/members/\d+/ban"', html) and "Ban Pat" in html


# -- the host's tools in the room ----------------------------------------------------------------------------


def test_the_host_has_controls_queue_reports_and_people_in_the_room(hosted):
    room, host, pat, _ = hosted
    say(pat, room, "one")
    html = host.get(f"/r/{room.code}").get_data(as_text=True)
    for part in ('id="host-controls"', 'id="host-queue"', 'id="host-reports"', 'id="host-people"'):
        assert part in html, part
    assert re.search(
        r'<li id="member-\d+" class="person" data-member="\d+" data-presence="(online|away|offline)">\s*'
        r'<span class="person__name">Pat</span>',
        html,
    )
    assert "1 message</span>" in html and "0 messages</span>" in html
    assert "room-host.js" in html and "console.css" in html
    participant = pat.get(f"/r/{room.code}").get_data(as_text=True)
    assert 'id="host-controls"' not in participant and "room-host.js" not in participant


def test_the_people_list_says_who_is_here_without_javascript(app, hosted):
    """The rows are rendered online, away or offline as "Here now" says it (a page load counts), not left to
    a script: with JavaScript off every row used to say "away"; a tab hidden is "away" in both lists."""
    room, host, pat, _kim = hosted

    def rows() -> dict[str, str]:
        html = host.get(f"/r/{room.code}").get_data(as_text=True)
        found = re.findall(r'data-presence="(\w+)">\s*<span class="person__name">(\w+)</span>', html)
        return {alias: state for state, alias in found}

    pat.get(f"/r/{room.code}")  # Pat reads the room; Kim joined and went away
    assert rows() == {"Pat": "online", "Kim": "offline"}
    with app.app_context():  # Pat's live tab, then hidden
        pat_id = db.session.scalar(select(Membership.id).where(Membership.alias == "Pat"))
        current_presence().enter(room.id, pat_id, "pattab1234")
    assert pat.form(f"/r/{room.code}/presence", {"tab": "pattab1234", "state": "away"}).status_code == 204
    assert 'Pat</bdi> <span class="presence__state">away' in host.get(f"/r/{room.code}").get_data(as_text=True)
    assert rows()["Pat"] == "away"  # as "Here now" says it


def test_a_control_answers_htmx_with_204_or_the_reason_beside_its_field(hosted):
    room, host, _, _ = hosted
    assert host.htmx("POST", f"/rooms/{room.code}/settings/lock", {"next": "room"}).status_code == 204
    assert "Room locked" not in host.get(f"/rooms/{room.code}").get_data(as_text=True)  # no stale flash
    refused = host.htmx("POST", f"/rooms/{room.code}/settings/slow-mode", {"seconds": "lots", "next": "room"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert '<p id="host-seconds-error" class="field-error control-error" hx-swap-oob="true">' in html
    assert "Enter a number of seconds" in html
    # Without JavaScript the same form goes back to the room.
    response = host.form(f"/rooms/{room.code}/settings/unlock", {"next": "room"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/r/{room.code}")


def test_host_fragments_for_a_changed_setting_and_a_changed_person(app, make_room, seat):
    room = make_room()
    pat = seat(room, "Pat")
    with app.test_request_context():
        row = db.session.get(Room, room.id)
        row.locked = True
        controls = events.host_controls_changed(row).frame.decode()
        joined = events.member_changed(row, db.session.get(Membership, pat.id), 0, new=True).frame.decode()
        left = events.member_changed(row, db.session.get(Membership, pat.id), 3).frame.decode()
    assert 'id="host-controls"' in controls and 'hx-swap-oob="outerMorph"' in controls
    assert 'aria-pressed="true">Lock the room' in controls and "csrf_token" not in controls
    assert '<ul hx-swap-oob="beforeend:#host-people">' in joined
    assert f'<li id="member-{pat.id}" class="person" data-member="{pat.id}" hx-swap-oob="outerMorph">' in left
    assert "3 messages" in left


def test_the_room_state_says_what_it_is(app, hosted):
    room, host, pat, _ = hosted
    assert 'data-state="open"' in pat.get(f"/r/{room.code}").get_data(as_text=True)
    host.form(f"/rooms/{room.code}/settings/lock", {"next": "room"})
    html = pat.get(f"/r/{room.code}").get_data(as_text=True)
    assert 'data-state="locked"' in html
    # For participants the box is read-only with the reason and the button disabled (what was typed stays, to
    # copy); the host's stays open.
    assert re.search(r'<form id="composer"[^>]* data-closed="locked">', html)
    assert re.search(r'<textarea id="field-body"[^>]* readonly', html) and "you can read but not post" in html
    assert "data-closed" not in host.get(f"/r/{room.code}").get_data(as_text=True).split('id="composer"')[1][:400]


# -- the picture of the session --------------------------------------------------------------------------


def test_messages_per_five_minutes_and_participation(app, make_room, seat):
    room = make_room(starts_in=timedelta(minutes=-12), lasts=timedelta(hours=1))
    pat, kim = seat(room, "Pat"), seat(room, "Kim")
    with app.test_request_context():
        from chatroom.services import messages

        row = db.session.get(Room, room.id)
        for n, (who, minutes) in enumerate([(pat, 1), (pat, 2), (kim, 7), (pat, 11)]):
            message, _ = messages.post(db.session.get(Membership, who.id), f"m{n}", f"{n:032x}")
            message.created_at = message.published_at = row.starts_at + timedelta(minutes=minutes)
        db.session.commit()
        buckets = charts.activity(row, row.starts_at + timedelta(minutes=12))
        chart = charts.activity_chart(row, buckets)
        people = charts.participation(row)
    assert [b.count for b in buckets] == [2, 1, 1]
    assert chart.total == 4 and chart.busiest is buckets[0]
    assert [t.label for t in chart.y_ticks] == ["0", "1", "2"]  # 0, half and a round top
    assert chart.bars[0].height == charts.PLOT_HEIGHT and chart.bars[1].height == charts.PLOT_HEIGHT / 2
    assert [(p.seat.alias, p.count, p.share) for p in people] == [("Pat", 3, 1.0), ("Kim", 1, 1 / 3)]
    assert charts.activity(row, row.starts_at - timedelta(minutes=1)) == []


@pytest.mark.parametrize(("value", "top"), [(1, 1), (2, 2), (3, 5), (7, 10), (11, 20), (49, 50), (51, 100)])
def test_the_chart_top_is_round(value, top):
    assert charts._nice_top(value) == top


def test_the_owner_page_and_the_transcript_draw_the_session(hosted):
    room, host, pat, kim = hosted
    say(pat, room, "one")
    say(kim, room, "two")
    for url in (f"/rooms/{room.code}", f"/rooms/{room.code}/transcript.html"):
        html = host.get(url).get_data(as_text=True)
        assert re.search(r'<svg class="chart__svg" viewBox="[^"]+" width="\d+" height="\d+" role="img"', html), url
        assert 'aria-labelledby="activity-caption activity-summary"' in html
        assert "2 messages; the busiest five minutes began at" in html
        assert '<caption class="visually-hidden">Messages per five minutes (UTC)</caption>' in html
        assert re.search(r"<th scope=\"row\">Pat</th><td>1</td>", html) and re.search(
            r"<th scope=\"row\">Kim</th><td>1</td>", html
        )


# -- the dashboard: a conditional poll --------------------------------------------------------------------


def test_the_dashboard_poll_answers_304_until_something_changes(signed_in, make_room, join):
    host, facilitator = signed_in()
    room = make_room(owner=facilitator)
    first = host.htmx("GET", "/rooms/")
    etag = first.headers["ETag"]
    assert first.status_code == 200 and "no-cache" in first.headers["Cache-Control"]
    unchanged = host.get("/rooms/", headers={"HX-Request": "true", "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.get_data() == b""
    say(join(room, "Pat"), room, "news")
    changed = host.get("/rooms/", headers={"HX-Request": "true", "If-None-Match": etag})
    assert changed.status_code == 200 and "1 message" in changed.get_data(as_text=True)
    assert changed.headers["ETag"] != etag
    # The page itself is never conditional.
    assert host.get("/rooms/", headers={"If-None-Match": etag}).status_code == 200
