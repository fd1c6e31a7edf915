"""Creating, listing and editing rooms; a facilitator sees only their own."""

from __future__ import annotations

from datetime import datetime, timedelta

from chatroom.extensions import db
from chatroom.models import Room, RoomStatus, utcnow

# A winter day of next year: always ahead (a room may not end in the past), and Paris is then UTC+1.
DAY = f"{utcnow().year + 1}-12-01"
FORM = {
    "title": "Design review",
    "timezone": "Europe/Paris",
    "starts_at": f"{DAY}T14:30",
    "ends_at": f"{DAY}T16:00",
    "password": "open sesame",
}


def test_create_room_reads_times_in_its_time_zone(app, signed_in):
    client, _ = signed_in()
    response = client.form("/rooms/", FORM)
    assert response.status_code == 303
    code = response.location.rsplit("/", 1)[1]
    with app.app_context():
        room = db.session.query(Room).filter_by(code=code).one()
        assert room.starts_at == datetime.fromisoformat(f"{DAY}T13:30:00+00:00")
        assert room.ends_at.tzinfo is not None
        assert room.timezone == "Europe/Paris"
        assert len(room.code) == 10
        assert room.password_hash != "open sesame"
    page = client.get(response.location).get_data(as_text=True)
    assert "Design review" in page
    assert f"/r/{code}" in page  # the share link
    assert "14:30" in page


def test_end_must_be_after_start(signed_in):
    client, _ = signed_in()
    response = client.form("/rooms/", {**FORM, "ends_at": f"{DAY}T14:00"})
    assert response.status_code == 422
    assert "The end must be after the start" in response.get_data(as_text=True)


def test_bad_time_zone_and_dates_are_explained(signed_in):
    client, _ = signed_in()
    response = client.form("/rooms/", {**FORM, "timezone": "Mars/Olympus", "starts_at": "soon"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "time zone name like Europe/Paris" in html
    assert "Enter the start date and time" in html


def test_title_unique_per_facilitator_case_insensitively(signed_in):
    client, _ = signed_in()
    assert client.form("/rooms/", FORM).status_code == 303
    response = client.form("/rooms/", {**FORM, "title": "DESIGN  review"})
    assert response.status_code == 409
    assert "already have a room with this title" in response.get_data(as_text=True)
    other, _ = signed_in()
    assert other.form("/rooms/", FORM).status_code == 303  # another facilitator may use it


def test_dashboard_lists_own_rooms_with_status(app, signed_in, make_room):
    client, me = signed_in()
    make_room(owner=me, title="Now", starts_in=timedelta(minutes=-5))
    make_room(owner=me, title="Later", starts_in=timedelta(days=1))
    make_room(owner=me, title="Before", starts_in=timedelta(days=-2))
    make_room(title="Someone else's")
    html = client.get("/rooms/").get_data(as_text=True)
    assert "Open now" in html and "Scheduled" in html and "Ended" in html
    assert "Someone else" not in html


def test_edit_room_including_password(app, signed_in, make_room, join):
    client, me = signed_in()
    room = make_room(owner=me)
    form = client.get(f"/rooms/{room.code}/edit").get_data(as_text=True)
    assert 'value="Workshop"' in form
    with app.app_context():
        start = room.starts_at.strftime("%Y-%m-%dT%H:%M")
        end = (utcnow() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    data = {"title": "Renamed", "timezone": "UTC", "starts_at": start, "ends_at": end, "password": "new password"}
    assert client.form(f"/rooms/{room.code}", data).status_code == 303
    with app.app_context():
        assert db.session.get(Room, room.id).title == "Renamed"
    guest = client.application.test_client()
    response = guest.form(f"/r/{room.code}/join", {"alias": "Kim", "password": "open sesame"})
    assert response.status_code == 403
    assert guest.form(f"/r/{room.code}/join", {"alias": "Kim", "password": "new password"}).status_code == 303


def test_empty_password_on_edit_keeps_the_old_one(app, signed_in, make_room, join):
    client, me = signed_in()
    room = make_room(owner=me)
    data = {
        "title": "Same",
        "timezone": "UTC",
        "starts_at": room.starts_at.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": room.ends_at.strftime("%Y-%m-%dT%H:%M"),
        "password": "",
    }
    assert client.form(f"/rooms/{room.code}", data).status_code == 303
    join(room)  # joins with the original password


def test_another_facilitator_cannot_see_or_edit_a_room(app, signed_in, make_room):
    _, owner = signed_in()
    room = make_room(owner=owner)
    intruder, _ = signed_in()
    assert intruder.get(f"/rooms/{room.code}").status_code == 404
    assert intruder.get(f"/rooms/{room.code}/edit").status_code == 404
    response = intruder.form(f"/rooms/{room.code}", {**FORM, "title": "Hijacked"})
    assert response.status_code == 404
    # Their room link treats them as anyone else: the join form, no host controls.
    page = intruder.get(f"/r/{room.code}").get_data(as_text=True)
    assert "Join the room" in page
    assert "Room settings" not in page
    with app.app_context():
        assert db.session.get(Room, room.id).title == "Workshop"


def test_room_pages_need_sign_in(client, make_room):
    room = make_room()
    assert client.get("/rooms/").status_code == 302
    assert client.get(f"/rooms/{room.code}/edit").status_code == 302


def test_status_follows_the_clock(make_room):
    room = make_room(starts_in=timedelta(hours=1))
    assert room.status() is RoomStatus.SCHEDULED
    assert room.status(room.starts_at) is RoomStatus.OPEN
    assert room.status(room.ends_at) is RoomStatus.ENDED
