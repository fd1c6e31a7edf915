"""Every write in Chatroom happens in this package.

Views parse a request and call one of these functions; the function checks the
rules, commits, and only *then* publishes to the broker (``_core.publish`` is the
only way to the broker). An event's HTML is rendered once, at publish time, and
the same bytes go to every stream.

Modules: ``accounts`` (facilitators), ``rooms`` (rooms and their settings),
``members`` (joining, leaving, removal), ``messages`` (posting, editing, paging),
``moderation`` (pre-moderation, reports, audit log), ``presence`` (here now,
typing), ``export`` (transcripts, retention).
"""

from ._core import Invalid, broker
from .accounts import authenticate, end_sessions, sign_up
from .export import TRANSCRIPT_FORMATS, apply_retention, transcript
from .members import ban_member, join_room, leave_room, remove_member
from .messages import (
    EDIT_WINDOW,
    changes_after,
    delete_own_message,
    edit_message,
    message_count,
    message_for,
    message_frame,
    messages_after,
    messages_before,
    post_message,
)
from .moderation import (
    approve_message,
    audit_log,
    host_panels,
    open_reports,
    pending_messages,
    reject_message,
    remove_message,
    report_message,
    resolve_report,
)
from .presence import announce_presence, announce_presence_by_id, present_members, signal_typing
from .rooms import (
    RoomInput,
    create_room,
    delete_room,
    end_room_now,
    extend_room,
    host_seat,
    parse_room_form,
    set_locked,
    set_premoderation,
    set_retention,
    set_slow_mode,
    update_room,
)

__all__ = [
    "EDIT_WINDOW",
    "TRANSCRIPT_FORMATS",
    "Invalid",
    "RoomInput",
    "announce_presence",
    "announce_presence_by_id",
    "apply_retention",
    "approve_message",
    "audit_log",
    "authenticate",
    "ban_member",
    "broker",
    "changes_after",
    "create_room",
    "delete_own_message",
    "delete_room",
    "edit_message",
    "end_room_now",
    "end_sessions",
    "extend_room",
    "host_panels",
    "host_seat",
    "join_room",
    "leave_room",
    "message_count",
    "message_for",
    "message_frame",
    "messages_after",
    "messages_before",
    "open_reports",
    "parse_room_form",
    "pending_messages",
    "post_message",
    "present_members",
    "reject_message",
    "remove_member",
    "remove_message",
    "report_message",
    "resolve_report",
    "set_locked",
    "set_premoderation",
    "set_retention",
    "set_slow_mode",
    "sign_up",
    "signal_typing",
    "transcript",
    "update_room",
]
