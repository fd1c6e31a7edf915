"""One small world for the table-driven modules (authorization, hostile input, headers): two facilitators, two
rooms, members removed and banned, a message of each kind, a held message, a report; a browser in each role;
and the URL and a valid body for any endpoint in that world."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask, url_for

from chatroom.access import SEATS
from chatroom.extensions import db
from chatroom.models import utcnow
from chatroom.services import accounts, members, messages, moderation, notes, rooms, tokens

from .app import empty_database
from .clients import Client
from .constants import PASSWORD, ROOM_PASSWORD
from .policy import FACILITATORS


@dataclass
class World:
    """What ``build_world`` made, as the tables name it: e-mail addresses, room codes, ids, one reset token."""

    owner_email: str
    other_email: str
    room_a: str  # codes
    room_b: str
    room_a_id: int
    room_b_id: int
    room_a_title: str
    seats: dict[str, tuple[int, int]]  # role -> (room id, membership id) its cookie holds
    pat_seq: int  # message 1 of room A, by the participant
    kim_seq: int  # message 2 of room A, by another participant: a question
    kim_id: int
    held_id: int  # a message held for approval in room A
    report_id: int  # Kim's report of message 1
    b_member_id: int
    b_held_id: int
    b_report_id: int
    reset_token: str  # a password reset link's token, for the owner
    owner_id: int
    other_id: int
    owner_token: str  # API tokens (plain): the owner's, the other facilitator's, and one the owner revoked
    other_token: str
    revoked_token: str
    owner_token_id: int


def post_token() -> str:
    """A fresh one-time post token, as the message form carries."""
    return secrets.token_hex(16)


def build_world(app: Flask) -> World:
    """Empty the database and set the scene through the services (no HTTP: it is fast)."""
    with app.app_context():
        empty_database(app)
    with app.test_request_context():
        owner = accounts.sign_up("owner@example.org", "Olive Owner", PASSWORD)
        other = accounts.sign_up("other@example.org", "Otto Other", PASSWORD)
        start = utcnow() - timedelta(hours=1)
        room_a = rooms.create(owner, rooms.RoomInput("Room A", start, start + timedelta(hours=3), "UTC", ROOM_PASSWORD))
        room_b = rooms.create(other, rooms.RoomInput("Room B", start, start + timedelta(hours=3), "UTC", ROOM_PASSWORD))
        pat, kim, rem, ban = (members.join(room_a, alias, ROOM_PASSWORD) for alias in ("Pat", "Kim", "Rem", "Ban"))
        out, lee = (members.join(room_b, alias, ROOM_PASSWORD) for alias in ("Out", "Lee"))
        first, _ = messages.post(pat, "canary-a-message-7f3e", post_token())
        second, _ = messages.post(kim, "Kim's message", post_token(), question=True)
        notes.send(kim, "canary-a-note-3b7a")
        rooms.set_premoderation(room_a, True)
        held, _ = messages.post(kim, "canary-a-held-91bd", post_token())
        rooms.set_premoderation(room_a, False)
        report = moderation.report(kim, first, "canary-a-reason-c4a0")
        members.remove(room_a, rem)
        members.ban(room_a, ban)
        b_first, _ = messages.post(out, "canary-b-message-5d21", post_token())
        rooms.set_premoderation(room_b, True)
        b_held, _ = messages.post(out, "canary-b-held-e8f6", post_token())
        rooms.set_premoderation(room_b, False)
        b_report = moderation.report(lee, b_first, "")
        owner_token_row, owner_token = tokens.create(owner, "owner's script")
        _, other_token = tokens.create(other, "other's script")
        revoked_row, revoked_token = tokens.create(owner, "old script")
        tokens.revoke(owner, revoked_row.id)
        world = World(
            owner_email=owner.email,
            other_email=other.email,
            room_a=room_a.code,
            room_b=room_b.code,
            room_a_id=room_a.id,
            room_b_id=room_b.id,
            room_a_title=room_a.title,
            seats={
                "participant": (room_a.id, pat.id),
                "removed": (room_a.id, rem.id),
                "banned": (room_a.id, ban.id),
                "outsider": (room_b.id, out.id),
            },
            pat_seq=first.seq,
            kim_seq=second.seq,
            kim_id=kim.id,
            held_id=held.id,
            report_id=report.id,
            b_member_id=lee.id,
            b_held_id=b_held.id,
            b_report_id=b_report.id,
            reset_token=accounts.password_reset_token(owner),
            owner_id=owner.id,
            other_id=other.id,
            owner_token=owner_token,
            other_token=other_token,
            revoked_token=revoked_token,
            owner_token_id=owner_token_row.id,
        )
        db.session.remove()
    return world


def client_for(app: Flask, world: World, role: str) -> Client:
    """A browser in ``role``: a seat in its cookie, as joining leaves it, or signed in through the real form."""
    app.test_client_class = Client
    client: Client = app.test_client()
    if role in world.seats:
        room_id, member_id = world.seats[role]
        with client.session_transaction() as session:
            session[SEATS] = {str(room_id): member_id}
    elif role in FACILITATORS:
        email = world.owner_email if role == "owner" else world.other_email
        response = client.form("/login", {"email": email, "password": PASSWORD})
        assert response.status_code == 303, f"cannot sign in as {role}"
    return client


# -- what each request carries -------------------------------------------------------------

# A value for each URL argument, by name; ``ARGUMENTS_BY_ENDPOINT`` overrides it for one endpoint.
ARGUMENTS: dict[str, Callable[[World], Any]] = {
    "code": lambda w: w.room_a,
    "seq": lambda w: w.pat_seq,
    "member_id": lambda w: w.kim_id,
    "message_id": lambda w: w.held_id,
    "report_id": lambda w: w.report_id,
    "fmt": lambda w: "csv",
    "name": lambda w: "lock",
    "token": lambda w: w.reset_token,
    "token_id": lambda w: w.owner_token_id,
    "facilitator_id": lambda w: w.other_id,
    "action": lambda w: "disable",
    "invitation_id": lambda w: 1,
}
ARGUMENTS_BY_ENDPOINT: dict[str, dict[str, Callable[[World], Any]]] = {
    "chat.report_message": {"seq": lambda w: w.kim_seq},  # someone else's message
    "participation.vote": {"seq": lambda w: w.kim_seq},  # someone else's question
    "participation.mark_answered": {"seq": lambda w: w.kim_seq},  # a question
    "api.mark_answered": {"seq": lambda w: w.kim_seq},
    "views.asset": {"name": lambda w: "room.js"},
}
QUERY: dict[str, dict[str, str]] = {
    "chat.newer": {"after": "0"},
    "participation.search_room": {"q": "message"},
    "api.search_messages": {"q": "message"},
}

NEW_PASSWORD = "a brand new passphrase"

# A valid body for each (endpoint, method) that needs one.
BODIES: dict[tuple[str, str], Callable[[World, str], dict[str, str]]] = {
    ("views.theme", "POST"): lambda w, r: {"theme": "dark", "next": "/"},
    ("views.autorefresh", "POST"): lambda w, r: {"autorefresh": "on", "next": "/"},
    ("auth.login", "POST"): lambda w, r: {"email": w.owner_email, "password": PASSWORD},
    ("auth.signup", "POST"): lambda w, r: {
        "email": f"new-{r}@example.org",
        "name": "Nia New",
        "password": NEW_PASSWORD,
    },
    ("auth.login_code", "POST"): lambda w, r: {"code": "123456"},
    ("auth.change_password", "POST"): lambda w, r: {"current_password": PASSWORD, "password": NEW_PASSWORD},
    ("auth.two_factor_setup", "POST"): lambda w, r: {"code": "123456"},
    ("auth.recovery_codes", "POST"): lambda w, r: {"codes_password": PASSWORD},
    ("auth.two_factor_disable", "POST"): lambda w, r: {"disable_password": PASSWORD},
    ("auth.forgot_password", "POST"): lambda w, r: {"email": w.owner_email},
    ("auth.reset_password", "POST"): lambda w, r: {"password": NEW_PASSWORD},
    ("rooms.create", "POST"): lambda w, r: _room_form(f"Room C of {r}"),
    ("rooms.update", "POST"): lambda w, r: _room_form("Room A, renamed"),
    ("rooms.delete", "POST"): lambda w, r: {"confirm": w.room_a_title},
    ("chat.join", "POST"): lambda w, r: {"alias": f"New {r}", "password": ROOM_PASSWORD},
    ("chat.post", "POST"): lambda w, r: {"body": "hello", "token": post_token()},
    ("chat.edit_message", "POST"): lambda w, r: {"body": "corrected"},
    ("chat.report_message", "POST"): lambda w, r: {"reason": "rude"},
    ("auth.create_token", "POST"): lambda w, r: {"token_name": f"script of {r}"},
    ("admin.signup", "POST"): lambda w, r: {"mode": "closed"},
    ("admin.create_invitation", "POST"): lambda w, r: {"note": "Nia", "days": "7"},
    # The JSON API's bodies (sent as JSON: see tests/test_authorization.py's call).
    ("api.create_room", "POST"): lambda w, r: _api_room(f"Room C of {r}"),
    ("api.update_room", "PATCH"): lambda w, r: {"title": "Room A, renamed"},
    ("api.post_message", "POST"): lambda w, r: {"body": "hello from the API"},
    ("api.slow_mode", "POST"): lambda w, r: {"seconds": 5},
    ("api.extend", "POST"): lambda w, r: {"minutes": 15},
    ("api.premoderation", "POST"): lambda w, r: {"enabled": True},
    ("api.react", "POST"): lambda w, r: {"emoji": "heart"},
    ("api.mark_question", "POST"): lambda w, r: {"question": True},
    ("api.mark_answered", "POST"): lambda w, r: {"answered": True},
    ("api.reply_privately", "POST"): lambda w, r: {"note": "an answer from the API"},
    ("participation.react", "POST"): lambda w, r: {"emoji": "heart"},
    ("participation.mark_question", "POST"): lambda w, r: {"question": "1"},
    ("participation.mark_answered", "POST"): lambda w, r: {"answered": "1"},
    ("participation.seen", "POST"): lambda w, r: {"seq": "1"},
    ("participation.send_note", "POST"): lambda w, r: {"note": "a word"},
    ("participation.reply_note", "POST"): lambda w, r: {"note": "an answer"},
    ("chat.here", "POST"): lambda w, r: {"tab": "tab0123456789", "state": "away"},
}


def _api_room(title: str) -> dict[str, Any]:
    start = utcnow().replace(microsecond=0) - timedelta(minutes=30)
    return {
        "title": title,
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
        "timezone": "UTC",
        "password": ROOM_PASSWORD,
    }


def _room_form(title: str) -> dict[str, str]:
    start = utcnow().replace(second=0, microsecond=0) - timedelta(minutes=30)
    return {
        "title": title,
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "timezone": "UTC",
        "password": ROOM_PASSWORD,
    }


def url_of(app: Flask, world: World, endpoint: str, overrides: dict[str, Any] | None = None) -> str:
    """The URL of ``endpoint`` with every argument filled from the world (or ``overrides``)."""
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    values: dict[str, Any] = {}
    for name in rule.arguments:
        getter = ARGUMENTS_BY_ENDPOINT.get(endpoint, {}).get(name) or ARGUMENTS.get(name)
        assert getter is not None, f"{endpoint}: add a value for its URL argument <{name}> to ARGUMENTS"
        values[name] = getter(world)
    values.update(QUERY.get(endpoint, {}))
    values.update(overrides or {})
    with app.test_request_context():
        return url_for(endpoint, **values)
