"""The host's tools: removing messages and people, locking, ending, slow mode, pre-moderation,
reports, participants' own edits, the audit log, and that a reconnecting tab converges."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from chatroom.extensions import db
from chatroom.models import AuditEvent, Message, Room, utcnow
from support.clients import say
from support.constants import PASSWORD, ROOM_PASSWORD
from support.live import Browser, Stream


def visible(client, room):
    html = client.get(f"/r/{room.code}").get_data(as_text=True)
    return re.findall(r'<p class="message__body[^"]*"[^>]*>(.*?)</p>', html, re.S)


def audit_actions(app, room):
    with app.app_context():
        return [e.action for e in db.session.scalars(select(AuditEvent).where(AuditEvent.room_id == room.id))]


# -- messages -----------------------------------------------------------------------


def test_host_removes_a_message_for_everyone(app, hosted):
    room, host, pat, kim = hosted
    say(pat, room, "something regrettable")
    assert host.form(f"/r/{room.code}/messages/1/remove").status_code == 303
    assert visible(kim, room) == ["Message removed by the host."]
    with app.app_context():
        message = db.session.scalar(select(Message).where(Message.room_id == room.id))
        assert message.body == "" and message.removed_by == "host" and message.rev == 1
    assert "message removed" in audit_actions(app, room)


def test_only_the_owner_can_remove(app, hosted, signed_in):
    room, _, pat, kim = hosted
    say(pat, room, "hello")
    other, _ = signed_in()
    assert kim.form(f"/r/{room.code}/messages/1/remove").status_code == 404
    assert other.form(f"/r/{room.code}/messages/1/remove").status_code == 404
    assert visible(kim, room) == ["hello"]


def test_author_edits_within_five_minutes(app, hosted):
    room, _, pat, kim = hosted
    say(pat, room, "teh typo")
    page = pat.get(f"/r/{room.code}/messages/1").get_data(as_text=True)
    assert "Edit your message" in page
    assert "Report" not in page  # not your own
    assert pat.form(f"/r/{room.code}/messages/1/edit", {"body": "the typo"}).status_code == 303
    html = kim.get(f"/r/{room.code}").get_data(as_text=True)
    assert "the typo" in html and "(edited)" in html
    assert kim.form(f"/r/{room.code}/messages/1/edit", {"body": "hijack"}).status_code == 403


def test_edit_window_closes_after_five_minutes(app, hosted):
    room, _, pat, _ = hosted
    say(pat, room, "old news")
    with app.app_context():
        message = db.session.scalar(select(Message).where(Message.room_id == room.id))
        message.created_at = utcnow() - timedelta(minutes=6)
        db.session.commit()
    response = pat.form(f"/r/{room.code}/messages/1/edit", {"body": "new"})
    assert response.status_code == 403
    assert "5 minutes" in response.get_data(as_text=True)
    assert pat.form(f"/r/{room.code}/messages/1/delete").status_code == 403


def test_author_deletes_own_message(app, hosted):
    room, _, pat, kim = hosted
    say(pat, room, "oops")
    assert pat.form(f"/r/{room.code}/messages/1/delete").status_code == 303
    assert visible(kim, room) == ["Message removed."]


def test_empty_edit_is_refused_with_the_reason(app, hosted):
    room, _, pat, _ = hosted
    say(pat, room, "keep me")
    response = pat.form(f"/r/{room.code}/messages/1/edit", {"body": "   "})
    assert response.status_code == 422
    assert "Write a message" in response.get_data(as_text=True)


def test_unknown_message_is_404_and_other_rooms_are_unreachable(app, hosted, make_room, join):
    room, _, pat, _ = hosted
    say(pat, room, "mine")
    other_room = make_room()
    stranger = join(other_room, "Lee")
    assert pat.get(f"/r/{room.code}/messages/99").status_code == 404
    assert stranger.get(f"/r/{room.code}/messages/1").status_code == 403


# -- people ---------------------------------------------------------------------------


def _last_seq(app, room):
    from chatroom.models import Message

    with app.app_context():
        return db.session.scalar(select(Message.seq).where(Message.room_id == room.id).order_by(Message.seq.desc()))


def _member_id(app, room, alias):
    from chatroom.models import Membership

    with app.app_context():
        return db.session.scalar(select(Membership.id).where(Membership.room_id == room.id, Membership.alias == alias))


def test_removed_participant_may_rejoin(app, hosted):
    room, host, pat, _ = hosted
    assert host.form(f"/r/{room.code}/members/{_member_id(app, room, 'Pat')}/remove").status_code == 303
    assert "Join the room" in pat.get(f"/r/{room.code}").get_data(as_text=True)
    assert pat.form(f"/r/{room.code}/join", {"alias": "Pat again", "password": ROOM_PASSWORD}).status_code == 303


def test_banned_participant_cannot_rejoin_from_that_browser(app, hosted):
    room, host, pat, _ = hosted
    assert host.form(f"/r/{room.code}/members/{_member_id(app, room, 'Pat')}/ban").status_code == 303
    response = pat.form(f"/r/{room.code}/join", {"alias": "Totally new", "password": ROOM_PASSWORD})
    assert response.status_code == 403
    assert "cannot join it again" in response.get_data(as_text=True)
    assert "participant banned" in audit_actions(app, room)


def test_participants_cannot_remove_people(app, hosted):
    room, _, pat, kim = hosted
    assert pat.form(f"/r/{room.code}/members/{_member_id(app, room, 'Kim')}/remove").status_code == 404
    assert "you are <strong><bdi>Kim</bdi></strong>" in kim.get(f"/r/{room.code}").get_data(as_text=True)


# -- room settings ---------------------------------------------------------------------


def test_lock_makes_the_room_read_only_for_participants(app, hosted):
    room, host, pat, _ = hosted
    assert host.form(f"/rooms/{room.code}/settings/lock").status_code == 303
    response = say(pat, room, "can I?")
    assert response.status_code == 403
    assert "locked the room" in response.get_data(as_text=True)
    assert say(host, room, "the host still can").status_code == 303
    assert host.form(f"/rooms/{room.code}/settings/unlock").status_code == 303
    assert say(pat, room, "now I can").status_code == 303
    assert audit_actions(app, room)[-2:] == ["room locked", "room unlocked"]


def test_a_locked_room_refuses_edits_but_lets_authors_delete(app, hosted):
    """Locked means read, not post: changing a message's words is posting them (found by a newcomer's run)."""
    room, host, pat, _ = hosted
    assert say(pat, room, "first words").status_code == 303
    seq = _last_seq(app, room)
    assert host.form(f"/rooms/{room.code}/settings/lock").status_code == 303
    response = pat.form(f"/r/{room.code}/messages/{seq}/edit", {"body": "other words"})
    assert response.status_code == 403
    assert "locked the room" in response.get_data(as_text=True)
    assert "first words" in pat.get(f"/r/{room.code}").get_data(as_text=True)
    assert pat.form(f"/r/{room.code}/messages/{seq}/delete").status_code == 303  # taking one's words back


def test_end_now_and_extend(app, hosted):
    room, host, pat, _ = hosted
    assert host.form(f"/rooms/{room.code}/settings/end").status_code == 303
    assert "This room has ended" in pat.get(f"/r/{room.code}").get_data(as_text=True)
    assert say(pat, room, "too late").status_code == 403
    assert host.form(f"/rooms/{room.code}/settings/end").status_code == 409  # already ended
    assert host.form(f"/rooms/{room.code}/settings/extend", {"minutes": "30"}).status_code == 303
    assert say(pat, room, "back again").status_code == 303
    response = host.form(f"/rooms/{room.code}/settings/extend", {"minutes": "forever"})
    assert response.status_code == 422
    assert "number of minutes" in response.get_data(as_text=True)


def test_slow_mode(app, hosted):
    room, host, pat, _ = hosted
    assert host.form(f"/rooms/{room.code}/settings/slow-mode", {"seconds": "60"}).status_code == 303
    assert say(pat, room, "first").status_code == 303
    response = say(pat, room, "second")
    assert response.status_code == 429
    assert re.search(r"you can post again in \d+ seconds?", response.get_data(as_text=True))
    assert say(host, room, "hosts are not slowed").status_code == 303
    assert host.form(f"/rooms/{room.code}/settings/slow-mode", {"seconds": "-1"}).status_code == 422


def test_settings_are_the_owners_alone(app, hosted, signed_in, client):
    room, _, pat, _ = hosted
    other, _ = signed_in()
    for who in (pat, other):
        assert who.form(f"/rooms/{room.code}/settings/lock").status_code in (302, 404)
    assert client.form(f"/rooms/{room.code}/settings/lock").status_code == 302  # to sign in
    with app.app_context():
        assert db.session.get(Room, room.id).locked is False


# -- pre-moderation ------------------------------------------------------------------------


def test_premoderation_holds_then_publishes_at_approval_in_order(app, hosted):
    room, host, pat, kim = hosted
    assert host.form(f"/rooms/{room.code}/settings/premoderation", {"enabled": "1"}).status_code == 303
    assert say(pat, room, "please approve me").status_code == 303
    assert visible(kim, room) == []
    console = host.get(f"/rooms/{room.code}").get_data(as_text=True)
    assert "please approve me" in console and "Waiting for approval (1)" in console
    say(host, room, "host speaks meanwhile")  # seq 1
    with app.app_context():
        held = db.session.scalar(select(Message).where(Message.status == "pending"))
        assert held.seq is None
        held_id = held.id
    assert host.form(f"/r/{room.code}/queue/{held_id}/approve").status_code == 303
    assert visible(kim, room) == ["host speaks meanwhile", "please approve me"]
    with app.app_context():
        approved = db.session.get(Message, held_id)
        assert approved.seq == 2 and approved.published_at >= approved.created_at
    assert host.form(f"/r/{room.code}/queue/{held_id}/approve").status_code == 409


def test_rejected_messages_never_appear(app, hosted):
    room, host, pat, kim = hosted
    host.form(f"/rooms/{room.code}/settings/premoderation", {"enabled": "1"})
    say(pat, room, "spam")
    with app.app_context():
        held_id = db.session.scalar(select(Message.id).where(Message.status == "pending"))
    assert kim.form(f"/r/{room.code}/queue/{held_id}/reject").status_code == 404
    assert host.form(f"/r/{room.code}/queue/{held_id}/reject").status_code == 303
    assert visible(kim, room) == []
    with app.app_context():
        assert db.session.get(Room, room.id).last_seq == 0  # no number was spent


# -- reports --------------------------------------------------------------------------------


def test_report_reaches_the_host_who_can_dismiss_or_remove(app, hosted):
    room, host, pat, kim = hosted
    say(pat, room, "rude words")
    assert kim.form(f"/r/{room.code}/messages/1/report", {"reason": "rude"}).status_code == 303
    assert kim.form(f"/r/{room.code}/messages/1/report", {"reason": "again"}).status_code == 409
    assert pat.form(f"/r/{room.code}/messages/1/report").status_code == 409  # own message
    console = host.get(f"/rooms/{room.code}").get_data(as_text=True)
    assert "Reports (1)" in console and "“rude”" in console
    report_id = re.search(r"/reports/(\d+)/dismiss", console).group(1)
    assert host.form(f"/r/{room.code}/reports/{report_id}/dismiss").status_code == 303
    assert "Reports (0)" in host.get(f"/rooms/{room.code}").get_data(as_text=True)
    assert "report dismissed" in audit_actions(app, room)


def test_overlong_report_reason(app, hosted):
    room, _, pat, kim = hosted
    say(pat, room, "hm")
    response = kim.form(f"/r/{room.code}/messages/1/report", {"reason": "x" * 501})
    assert response.status_code == 422


# -- the record --------------------------------------------------------------------------------


def test_audit_log_shows_who_what_when_to_the_owner_only(app, hosted, signed_in):
    room, host, _, _ = hosted
    host.form(f"/rooms/{room.code}/settings/slow-mode", {"seconds": "10"})
    page = host.get(f"/rooms/{room.code}/audit").get_data(as_text=True)
    assert "slow mode" in page and "10 s" in page and "(host)" in page
    other, _ = signed_in()
    assert other.get(f"/rooms/{room.code}/audit").status_code == 404


def _export(host, room, fmt):
    response = host.get(f"/rooms/{room.code}/transcript.{fmt}")
    assert response.status_code == 200
    assert response.is_streamed
    return response


def test_transcripts_in_every_format_flag_edits_and_removals(app, signed_in, make_room, join):
    host, facilitator = signed_in()
    room = make_room(owner=facilitator, timezone="Asia/Tokyo")
    pat = join(room, "Pat")
    say(host, room, "Welcome *all*")
    say(pat, room, "first draft")
    say(pat, room, "gone soon")
    pat.form(f"/r/{room.code}/messages/2/edit", {"body": "final, with a, comma"})
    host.form(f"/r/{room.code}/messages/3/remove")

    import csv
    import io
    import json

    rows = list(csv.DictReader(io.StringIO(_export(host, room, "csv").get_data(as_text=True))))
    assert [r["alias"] for r in rows] == [facilitator.name, "Pat", "Pat"]
    assert rows[0]["host"] == "True" and rows[1]["edited"] == "True" and rows[1]["text"] == "final, with a, comma"
    assert rows[2]["removed"] == "True" and rows[2]["text"] == "" and rows[2]["removed_by"] == "host"
    assert rows[0]["time"].endswith("+09:00")  # the room's time zone

    data = json.loads(_export(host, room, "json").get_data(as_text=True))
    assert data["timezone"] == "Asia/Tokyo" and len(data["messages"]) == 3
    assert data["messages"][2]["removed"] is True

    md = _export(host, room, "md").get_data(as_text=True)
    assert "Welcome \\*all\\*" in md and "*message removed*" in md and "*(edited)*" in md

    html = _export(host, room, "html").get_data(as_text=True)
    assert "message removed" in html and "(host)" in html and "gone soon" not in html

    response = host.get(f"/rooms/{room.code}/transcript.csv")
    assert "attachment" in response.headers["Content-Disposition"]
    response.close()  # an unread streamed response keeps its request context pushed in this thread
    assert host.get(f"/rooms/{room.code}/transcript.exe").status_code == 404
    assert pat.get(f"/rooms/{room.code}/transcript.csv").status_code == 302


def test_export_streams_without_loading_everything(app, signed_in, make_room):
    """10,000 messages export with a small, bounded memory peak (yield_per batches)."""
    import tracemalloc

    host, facilitator = signed_in()
    room = make_room(owner=facilitator)
    with app.app_context():
        from chatroom.models import Membership

        seat = db.session.scalar(select(Membership).where(Membership.room_id == room.id))
        now = utcnow()
        db.session.execute(
            Message.__table__.insert(),
            [
                {
                    "room_id": room.id,
                    "seq": i,
                    "membership_id": seat.id,
                    "body": f"message number {i} " * 5,
                    "client_token": f"{i:032x}",
                    "status": "published",
                    "rev": 0,
                    "created_at": now,
                }
                for i in range(1, 10_001)
            ],
        )
        db.session.commit()
    response = host.get(f"/rooms/{room.code}/transcript.csv")
    tracemalloc.start()
    size = sum(len(chunk) for chunk in response.response)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert size > 1_000_000  # the whole transcript went out...
    assert peak < 8_000_000  # ...without holding it, or its rows, in memory


def test_delete_room_needs_its_title(app, hosted):
    room, host, pat, _ = hosted
    say(pat, room, "bye")
    response = host.form(f"/rooms/{room.code}/delete", {"confirm": "wrong"})
    assert response.status_code == 422
    assert host.form(f"/rooms/{room.code}/delete", {"confirm": room.title}).status_code == 303
    assert pat.get(f"/r/{room.code}").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(Message).where(Message.room_id == room.id)) is None


def test_retention_command_deletes_old_messages_and_is_safe_to_repeat(app, hosted):
    room, host, pat, _ = hosted
    say(pat, room, "ephemeral")
    assert host.form(f"/rooms/{room.code}/settings/retention", {"days": "7"}).status_code == 303
    with app.app_context():
        row = db.session.get(Room, room.id)
        row.starts_at, row.ends_at = utcnow() - timedelta(days=11), utcnow() - timedelta(days=10)
        db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["retention"])
    assert result.exit_code == 0 and "1 messages deleted in 1 rooms" in result.output
    again = runner.invoke(args=["retention"])
    assert again.exit_code == 0 and "0 messages deleted" in again.output
    assert "messages deleted" in audit_actions(app, room)


def test_dashboard_counts_and_live_fragment(app, hosted):
    room, host, pat, _ = hosted
    say(pat, room, "one")
    page = host.get("/rooms/").get_data(as_text=True)
    assert "1 message" in page and 'hx-trigger="every 5s"' in page
    fragment = host.get("/rooms/", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and "here now" in fragment


def test_qr_code_is_an_svg_of_the_share_link(app, hosted):
    room, host, pat, _ = hosted
    response = host.get(f"/rooms/{room.code}/qr.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    svg = response.get_data(as_text=True)
    assert 'xmlns="http://www.w3.org/2000/svg"' in svg  # a document an <img> can show
    assert f"/r/{room.code}" in svg
    assert pat.get(f"/rooms/{room.code}/qr.svg").status_code == 302


# -- convergence: a tab that reconnects sees what a tab that stayed sees -------------------------


def _dom(events):
    """The message list a browser would end with: appends new messages, swaps changed ones in place."""
    dom: dict[int, str] = {}
    for event in events:
        for li in re.findall(r'(<li class="message.*?</li>)', event.data, re.S):
            seq = int(re.search(r'id="message-(\d+)"', li).group(1))
            dom[seq] = li.replace(' hx-swap-oob="true"', "")
    return dom


@pytest.mark.live
def test_reconnecting_tab_converges_on_edits_removals_and_approvals(servers, make_facilitator, make_room):
    server = servers()
    facilitator = make_facilitator(name="Hana")
    room = make_room(owner=facilitator)
    host = Browser(server.port).sign_in(facilitator.email, PASSWORD)
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    kim = Browser(server.port).join(room.code, "Kim", ROOM_PASSWORD)
    host.post(f"/rooms/{room.code}/settings/premoderation", {"enabled": "1"})
    host.say(room.code, "one")
    host.say(room.code, "two")

    stayed = Stream(server.port, f"/r/{room.code}/events?after=0&rev=0", kim.cookie_header()).open()
    away = Stream(server.port, f"/r/{room.code}/events?after=0&rev=0", kim.cookie_header()).open()
    list(away.read_events(1.5))
    away.close()
    assert away.last_event_id == "2.0"

    # While the second tab is away: an edit, a removal, an approval.
    pat.say(room.code, "held")
    _, html = host.get(f"/rooms/{room.code}")
    held_id = re.search(r"/queue/(\d+)/approve", html).group(1)
    assert host.post(f"/r/{room.code}/messages/1/edit", {"body": "one, edited"}) == 303
    assert host.post(f"/r/{room.code}/messages/2/remove", {}) == 303
    assert host.post(f"/r/{room.code}/queue/{held_id}/approve", {}) == 303

    list(stayed.read_events(2))
    stayed.close()
    away.open()  # sends Last-Event-ID: 2.0
    list(away.read_events(2))
    away.close()

    assert _dom(stayed.events) == _dom(away.events)
    final = _dom(away.events)
    assert "one, edited" in final[1] and "(edited)" in final[1]
    assert "Message removed" in final[2]
    assert "held" in final[3]
    assert away.last_event_id == stayed.last_event_id == "3.2"
