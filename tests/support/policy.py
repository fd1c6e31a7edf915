"""The authorization policy, written down: for each endpoint and method, the status each role gets.

``tests/test_authorization.py`` checks the table against the app's URL map (a new endpoint fails until it has
a row here) and calls every cell; ``tests/test_hostile_input.py`` crawls the same endpoints with garbage.
Each role is a browser with its own cookies; see ``test_authorization``'s docstring for who they are.
"""

from __future__ import annotations

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


def _members(status: int, host: int | None = None) -> tuple[int, ...]:
    """Room A's members only: the participant and the owner (the host seat); 403 for the rest."""
    return (403, 403, status, 403, 403, 403, status if host is None else host)


# fmt: off
# endpoint -> method -> status per role, in ROLES order:
#   (anonymous, outsider, participant, removed, banned, other_facilitator, owner)
EXPECTED: dict[str, dict[str, tuple[int, ...]]] = {
    "views.index":             {"GET": (200, 200, 200, 200, 200, 302, 302)},  # facilitators go to their rooms
    "views.health":            {"GET": _same(200)},
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
}
# fmt: on
