"""The host's tools: the pre-moderation queue, removing messages, reports and the audit log.

Pre-moderation and sequence numbers: a held message has no ``seq``. Approval
takes the room's next ``seq`` under the row lock, exactly as a fresh post does,
so the message appears for everyone at the time of approval, after everything
already visible, and ``seq`` stays gap-free. It keeps its ``created_at`` (when
it was written) and gets ``published_at`` (when it appeared). Rejected messages
never get a ``seq``.

Host-only updates (the queue, the reports) travel as ``host`` events, which only
the host's streams forward; on every (re)connect a host stream first sends the
current panels, so a reconnecting host converges too. Each panel shows its oldest
``HOST_PANEL_SHOWN`` (50) items and counts the rest, and a change sends only what
changed (``_core.publish_panel_change``): one held message costs one item's bytes,
however long the queue. A participant may have ``PENDING_PER_PARTICIPANT`` (10)
messages waiting at once (``messages.post``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from .. import events
from ..extensions import db
from ..models import AuditEvent, Membership, Message, MessageStatus, Report, Room, utcnow
from ..text import Limit, clean_body, problem
from . import Invalid
from ._core import audit, host_name, next_seq, panel_size, panel_view, publish, publish_panel_change, refuses_cleanly
from .messages import mark_removed, publish_questions

REASON_MAX = 500
REASON = Limit(
    label="The reason",
    maximum=REASON_MAX,
    empty="",  # the reason is optional
    too_long="Shorten the reason to {maximum} characters or fewer (it has {count})",
    storage=500,  # Report.reason holds 500 code points
)


def audit_log(room: Room) -> list[AuditEvent]:
    """The room's moderation actions and settings changes, newest first."""
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.room_id == room.id)
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        )
    )


def panels(room: Room) -> dict[str, Any]:
    """What the host's panels show now: the oldest ``HOST_PANEL_SHOWN`` held messages and open reports, and
    how many of each there are (the template context of ``chat/_host_panels.html``)."""
    shown = panel_size()
    return {
        "pending": room.pending_messages(limit=shown),
        "pending_total": room.pending_count(),
        "reports": room.open_reports(limit=shown),
        "reports_total": room.open_report_count(),
    }


def host_panels(room: Room) -> str:
    """The host's queue and reports panels as they are now (out-of-band fragments, first on a host's stream)."""
    return events.host_panels_html(room, **panels(room))


def _pending(room: Room, message_id: int) -> Message:
    message = db.session.get(Message, message_id)
    if message is None or message.room_id != room.id:
        raise Invalid({"message": "There is no such message in this room"}, 404)
    if message.status != MessageStatus.PENDING.value:
        raise Invalid({"message": "This message was already approved or rejected"}, 409)
    return message


@refuses_cleanly
def approve(room: Room, message_id: int) -> Message:
    """Publish a held message now, after everything already visible; one asked as a question joins the host's
    questions panel too (while held it was in no panel but the queue).

    :raise Invalid 404: not a message of this room. :raise Invalid 409: already decided.
    """
    message = _pending(room, message_id)
    before = panel_view(room, "queue")
    seq, rev = next_seq(room.id)
    message.seq, message.status, message.published_at = seq, MessageStatus.PUBLISHED.value, utcnow()
    audit(room, host_name(room), "message approved", f"#{seq} by {message.author.alias}")
    event = events.message_posted(room, message, rev)
    db.session.commit()
    publish(room, event)
    publish_panel_change(room, "queue", before)
    publish(room, events.held_decided(message, approved=True))
    if message.question:
        publish_questions(room)
    return message


@refuses_cleanly
def reject(room: Room, message_id: int) -> Message:
    """Drop a held message: it is never shown.

    :raise Invalid 404: not a message of this room. :raise Invalid 409: already decided.
    """
    message = _pending(room, message_id)
    before = panel_view(room, "queue")
    message.status, message.body = MessageStatus.REJECTED.value, ""
    audit(room, host_name(room), "message rejected", f"by {message.author.alias}")
    db.session.commit()
    publish_panel_change(room, "queue", before)
    publish(room, events.held_decided(message, approved=False))
    return message


@refuses_cleanly
def remove_message(room: Room, message: Message) -> Message:
    """The host removes a visible message: "message removed" for everyone, in replay and export too.

    :raise Invalid 409: already removed.
    """
    if message.removed:
        raise Invalid({"message": "This message was already removed"}, 409)
    before = panel_view(room, "reports")
    audit(room, host_name(room), "message removed", f"#{message.seq} by {message.author.alias}")
    for report in db.session.scalars(
        select(Report).where(Report.message_id == message.id, Report.resolved_at.is_(None))
    ):
        report.resolved_at = utcnow()
    mark_removed(room, message, "host")
    publish_panel_change(room, "reports", before)
    return message


@refuses_cleanly
def report(membership: Membership, message: Message, reason: str) -> Report:
    """A participant reports a message to the host, with an optional reason.

    :raise Invalid 422: the reason is too long, or has only invisible characters.
    :raise Invalid 409: already reported by them.
    """
    raw, reason = reason, clean_body(reason)
    wrong = problem(raw, reason, REASON, optional=True)
    if wrong:
        raise Invalid({"reason": wrong})
    if message.membership_id == membership.id:
        raise Invalid({"reason": "You cannot report your own message"}, 409)
    if membership.is_host:
        raise Invalid({"reason": "As the host, remove the message instead of reporting it"}, 403)
    duplicate = select(Report.id).where(
        Report.message_id == message.id, Report.reporter_id == membership.id, Report.resolved_at.is_(None)
    )
    if db.session.scalar(duplicate):
        raise Invalid({"reason": "You have already reported this message"}, 409)
    before = panel_view(membership.room, "reports")
    report = Report(room_id=message.room_id, message_id=message.id, reporter_id=membership.id, reason=reason)
    db.session.add(report)
    db.session.commit()
    publish_panel_change(membership.room, "reports", before)
    return report


@refuses_cleanly
def dismiss_report(room: Room, report_id: int) -> Report:
    """The host dismisses a report (keeping the message).

    :raise Invalid 404: not a report of this room.
    """
    report = db.session.get(Report, report_id)
    if report is None or report.room_id != room.id:
        raise Invalid({"report": "There is no such report in this room"}, 404)
    if report.resolved_at is None:
        before = panel_view(room, "reports")
        report.resolved_at = utcnow()
        audit(room, host_name(room), "report dismissed", f"message #{report.message.seq}")
        db.session.commit()
        publish_panel_change(room, "reports", before)
    return report
