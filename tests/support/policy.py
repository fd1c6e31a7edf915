"""The authorization policy, written down: for each endpoint and method, the status each role gets.

``tests/test_authorization.py`` checks the table against the app's URL map (a new endpoint fails until it has
a row here) and calls every cell; ``tests/test_hostile_input.py`` crawls the same endpoints with garbage.
Each role is a browser with its own cookies; see ``test_authorization``'s docstring for who they are.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from chatroom.extensions import db
from chatroom.models import AuditEvent, Facilitator, Membership, Message, Note, Reaction, Report, Room, Vote

ROLES = ("anonymous", "outsider", "participant", "removed", "banned", "other_facilitator", "owner")
FACILITATORS = ("other_facilitator", "owner")


def _same(status: int) -> tuple[int, ...]:
    return (status,) * len(ROLES)


def _signed_in(status: int) -> tuple[int, ...]:
    """Pages for any facilitator: everyone else is sent to sign in (302)."""
    return (302, 302, 302, 302, 302, status, status)


def _owner_only(status: int, others: int = 404) -> tuple[int, ...]:
    """A host action or page of room A: 404 for everyone but its owner (no hint the room exists)."""
    return (others,) * (len(ROLES) - 1) + (status,)


def _owner_console(status: int) -> tuple[int, ...]:
    """The /rooms/<code> pages: sign in first (302); another facilitator gets 404."""
    return (302, 302, 302, 302, 302, 404, status)


def _admins_only() -> tuple[int, ...]:
    """The /admin pages: sign in first (302); a facilitator who is not an admin finds nothing (404).

    No role here is an admin: tests/test_admin.py calls every admin endpoint as one.
    """
    return (302, 302, 302, 302, 302, 404, 404)


def _members(status: int, host: int | None = None) -> tuple[int, ...]:
    """Room A's members only: the participant and the owner (the host seat); 403 for the rest."""
    return (403, 403, status, 403, 403, 403, status if host is None else host)


# fmt: off
# endpoint -> method -> status per role, in ROLES order:
#   (anonymous, outsider, participant, removed, banned, other_facilitator, owner)
EXPECTED: dict[str, dict[str, tuple[int, ...]]] = {
    "views.index":             {"GET": (200, 200, 200, 200, 200, 302, 302)},  # facilitators go to their rooms
    "views.health":            {"GET": _same(200)},
    "views.ready":             {"GET": _same(200)},
    "views.metrics_view":      {"GET": _same(404)},  # off without METRICS_TOKEN (tests/test_operations.py)
    "api_docs.openapi":        {"GET": _same(200)},  # the API's shape is public; every call needs a token
    "api_docs.page":           {"GET": _same(200)},
    "views.theme":             {"POST": _same(303)},
    "views.autorefresh":       {"POST": _same(303)},
    "views.asset":             {"GET": _same(200)},  # the room page's script bundle

    "auth.login":              {"GET": _same(200), "POST": _same(303)},  # POST: the owner's credentials
    "auth.signup":             {"GET": _same(200), "POST": _same(303)},  # POST: a new account
    "auth.logout":             {"POST": _signed_in(303)},
    "auth.logout_everywhere":  {"POST": _signed_in(303)},
    "auth.login_code":         {"GET": _same(303), "POST": _same(303)},  # no password step pending: to sign in
    "auth.account":            {"GET": _signed_in(200)},
    "auth.change_password":    {"GET": _signed_in(200), "POST": _signed_in(303)},
    "auth.two_factor_setup":   {"GET": _signed_in(200), "POST": _signed_in(303)},  # no key in the session yet
    "auth.recovery_codes":     {"GET": _signed_in(303), "POST": _signed_in(409)},  # nothing to show; 2FA is off
    "auth.two_factor_disable": {"POST": _signed_in(303)},
    "auth.forgot_password":    {"GET": _same(200), "POST": _same(200)},  # the same answer for any address
    "auth.reset_password":     {"GET": _same(200), "POST": _same(303)},  # the mailed link is the credential
    "auth.create_token":       {"POST": _signed_in(303)},
    "auth.token_created":      {"GET": _signed_in(303)},  # nothing to show once: back to the account page
    "auth.revoke_token":       {"POST": _owner_console(303)},  # the owner's token: another account's is 404

    "admin.index":             {"GET": _admins_only()},
    "admin.facilitators":      {"GET": _admins_only()},
    "admin.facilitator_action": {"POST": _admins_only()},
    "admin.signup":            {"GET": _admins_only(), "POST": _admins_only()},
    "admin.create_invitation": {"POST": _admins_only()},
    "admin.revoke_invitation": {"POST": _admins_only()},

    "rooms.dashboard":         {"GET": _signed_in(200)},  # each facilitator sees their own rooms
    "rooms.new":               {"GET": _signed_in(200)},
    "rooms.create":            {"POST": _signed_in(303)},
    "rooms.show":              {"GET": _owner_console(200)},
    "rooms.update":            {"POST": _owner_console(303)},
    "rooms.edit":              {"GET": _owner_console(200)},
    "rooms.setting":           {"POST": _owner_console(303)},
    "rooms.delete":            {"GET": _owner_console(200), "POST": _owner_console(303)},
    "rooms.audit":             {"GET": _owner_console(200)},
    "rooms.transcript":        {"GET": _owner_console(200)},
    "rooms.qr":                {"GET": _owner_console(200)},

    "chat.room":               {"GET": _same(200)},  # non-members get the join form, without the messages
    "chat.join":               {"POST": (303, 303, 303, 303, 403, 303, 303)},  # members: back to the room
    "chat.post":               {"POST": _members(303)},
    "chat.history":            {"GET": _members(303)},  # without htmx: to the room page at that point
    "chat.newer":              {"GET": _members(200)},
    "chat.typing":             {"POST": _members(204)},
    "chat.here":               {"POST": _members(204)},  # a tab's presence: away, back, or gone
    "chat.people":             {"GET": _members(200)},  # everyone here now, for a room too big to name them
    "chat.menu":               {"GET": _members(200)},  # the message menu's actions for this viewer
    "chat.leave":              {"POST": _same(303)},  # only a participant's own seat closes
    "chat.message":            {"GET": _members(200)},
    "chat.edit_message":       {"POST": _members(303, host=403)},  # authors only, even for the host
    "chat.delete_message":     {"POST": _members(303, host=403)},
    "chat.report_message":     {"POST": _members(303, host=403)},  # the host removes instead
    "chat.remove_message":     {"POST": _owner_only(303)},
    "chat.remove_member":      {"POST": _owner_only(303)},
    "chat.ban_member":         {"POST": _owner_only(303)},
    "chat.approve":            {"POST": _owner_only(303)},
    "chat.reject":             {"POST": _owner_only(303)},
    "chat.dismiss_report":     {"POST": _owner_only(303)},

    "stream.events":           {"GET": _members(200)},

    "participation.react":          {"POST": _members(303)},
    "participation.vote":           {"POST": _members(303, host=403)},  # others' questions; the host answers
    "participation.mark_question":  {"POST": _owner_only(303)},
    "participation.mark_answered":  {"POST": _owner_only(303)},
    "participation.questions":      {"GET": _members(200)},
    "participation.search_room":    {"GET": _members(200)},
    "participation.seen":           {"POST": _members(204)},
    "participation.send_note":      {"POST": _members(303, host=403)},  # the host answers in a thread
    "participation.private_thread": {"GET": _owner_only(200)},
    "participation.reply_note":     {"POST": _owner_only(303)},
}
# fmt: on


# -- the JSON API (/api/v1) -----------------------------------------------------------------------

# endpoint -> method -> (the owner's status, another facilitator's status). Room A's operations are
# 404 for another facilitator (their token or cookie): another's room looks missing, as on the pages.
# fmt: off
API: dict[str, dict[str, tuple[int, int]]] = {
    "api.me":                 {"GET": (200, 200)},
    "api.list_rooms":         {"GET": (200, 200)},  # each sees their own rooms
    "api.create_room":        {"POST": (201, 201)},
    "api.get_room":           {"GET": (200, 404)},
    "api.update_room":        {"PATCH": (200, 404)},
    "api.delete_room":        {"DELETE": (204, 404)},
    "api.transcript":         {"GET": (200, 404)},
    "api.audit":              {"GET": (200, 404)},
    "api.list_messages":      {"GET": (200, 404)},
    "api.post_message":       {"POST": (201, 404)},
    "api.remove_message":     {"POST": (200, 404)},
    "api.queue":              {"GET": (200, 404)},
    "api.approve":            {"POST": (200, 404)},
    "api.reject":             {"POST": (200, 404)},
    "api.reports":            {"GET": (200, 404)},
    "api.dismiss_report":     {"POST": (200, 404)},
    "api.participants":       {"GET": (200, 404)},
    "api.remove_participant": {"POST": (204, 404)},
    "api.ban_participant":    {"POST": (204, 404)},
    "api.lock":               {"POST": (200, 404)},
    "api.unlock":             {"POST": (200, 404)},
    "api.slow_mode":          {"POST": (200, 404)},
    "api.premoderation":      {"POST": (200, 404)},
    "api.extend":             {"POST": (200, 404)},
    "api.end":                {"POST": (200, 404)},
    "api.react":              {"POST": (200, 404)},
    "api.list_questions":     {"GET": (200, 404)},
    "api.mark_question":      {"POST": (200, 404)},
    "api.mark_answered":      {"POST": (200, 404)},
    "api.search_messages":    {"GET": (200, 404)},
    "api.private_threads":    {"GET": (200, 404)},
    "api.private_thread":     {"GET": (200, 404)},
    "api.reply_privately":    {"POST": (201, 404)},
}
# fmt: on

# With cookies (the roles above): only facilitators are signed in; everyone else is 401, not sent to sign in.
for _endpoint, _by_method in API.items():
    EXPECTED[_endpoint] = {m: (401, 401, 401, 401, 401, other, owner) for m, (owner, other) in _by_method.items()}

# With tokens (tests/test_api_authorization.py): no token, the owner's revoked token, the other facilitator's
# token, the owner's token, and the owner's session cookie without the CSRF token (reads work, changes do not).
API_ROLES = ("no_token", "revoked_token", "other_token", "owner_token", "owner_cookie_no_csrf")
API_EXPECTED: dict[str, dict[str, tuple[int, ...]]] = {
    endpoint: {
        method: (401, 401, other, owner, owner if method == "GET" else 400)
        for method, (owner, other) in by_method.items()
    }
    for endpoint, by_method in API.items()
}


# -- what every matrix checks besides the status --------------------------------------------------

# Text only some roles may see. A role sees a canary only if it is listed here.
CANARIES = {
    "canary-a-message-7f3e": {"participant", "owner"},  # message 1 of room A (by the participant)
    "canary-a-held-91bd": {"owner"},  # a message waiting in room A's pre-moderation queue
    "canary-a-reason-c4a0": {"owner"},  # the reason of a report in room A
    "canary-b-message-5d21": {"outsider", "other_facilitator"},  # a message of room B
    "canary-b-held-e8f6": {"other_facilitator"},  # room B's queue
    "canary-a-note-3b7a": {"owner"},  # Kim's private word with room A's host
}

# A refused call must leave the database as it was (db_state).
REFUSALS = {302, 400, 401, 403, 404, 405, 409, 422, 429}


def db_state(app: Flask) -> tuple[Any, ...]:
    """What a refused request must leave as it was: rooms, seats, messages, reports, accounts, the audit log."""
    with app.app_context():
        rows = (
            db.session.execute(db.select(*columns).order_by(columns[0])).all()
            for columns in (
                (Room.id, Room.title, Room.locked, Room.slow_mode_seconds, Room.premoderation, Room.ends_at),
                (Room.id, Room.retention_days, Room.last_seq, Room.last_rev, Room.password_hash, Room.search_language),
                (Membership.id, Membership.left_at, Membership.banned, Membership.alias),
                (Message.id, Message.seq, Message.status, Message.body, Message.rev, Message.removed_at),
                (Message.id, Message.question, Message.answered_at, Message.mentions),
                (Reaction.id, Reaction.message_id, Reaction.membership_id, Reaction.emoji),
                (Vote.id, Vote.message_id, Vote.membership_id),
                (Note.id, Note.membership_id, Note.body),
                (Report.id, Report.resolved_at),
                (Facilitator.id, Facilitator.password_hash, Facilitator.session_token, Facilitator.totp_secret),
                (AuditEvent.id,),
            )
        )
        state = tuple(tuple(r) for r in rows)
        db.session.remove()
        return state
