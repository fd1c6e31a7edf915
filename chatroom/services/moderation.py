"""The host's tools: the pre-moderation queue, removing messages, reports and the audit log.

Pre-moderation and sequence numbers: a held message has no ``seq``. Approval
takes the room's next ``seq`` under the row lock, exactly as a fresh post does,
so the message appears for everyone at the time of approval, after everything
already visible, and ``seq`` stays gap-free. It keeps its ``created_at`` (when
it was written) and gets ``published_at`` (when it appeared). Rejected messages
never get a ``seq``.

Host-only updates (the queue, the reports) travel as ``host`` events, which only
the host's streams forward; on every (re)connect a host stream first sends the
current panels, so a reconnecting host converges too.
"""

from __future__ import annotations

from sqlalchemy import select

from .. import events
from ..extensions import db
from ..models import AuditEvent, Membership, Message, MessageStatus, Report, Room, utcnow
from ..text import clean_body
from . import Invalid
from ._core import audit, host_name, next_seq, publish, publish_host_panels, refuses_cleanly
from .messages import mark_removed

REASON_MAX = 500


def audit_log(room: Room) -> list[AuditEvent]:
    """The room's moderation actions and settings changes, newest first."""
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.room_id == room.id)
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        )
    )


def host_panels(room: Room) -> str:
    """The host's queue and reports panels as they are now (out-of-band fragments, first on a host's stream)."""
    return events.host_panels_html(room, room.pending_messages(), room.open_reports())


def _pending(room: Room, message_id: int) -> Message:
    message = db.session.get(Message, message_id)
    if message is None or message.room_id != room.id:
        raise Invalid({"message": "There is no such message in this room"}, 404)
    if message.status != MessageStatus.PENDING.value:
        raise Invalid({"message": "This message was already approved or rejected"}, 409)
    return message


@refuses_cleanly
def approve(room: Room, message_id: int) -> Message:
    """Publish a held message now, after everything already visible.

    :raise Invalid 404: not a message of this room. :raise Invalid 409: already decided.
    """
    message = _pending(room, message_id)
    seq, rev = next_seq(room.id)
    message.seq, message.status, message.published_at = seq, MessageStatus.PUBLISHED.value, utcnow()
    audit(room, host_name(room), "message approved", f"#{seq} by {message.author.alias}")
    event = events.message_posted(room, message, rev)
    db.session.commit()
    publish(room, event)
    publish(room, events.held_decided(message, approved=True))
    publish_host_panels(room)
    return message


@refuses_cleanly
def reject(room: Room, message_id: int) -> Message:
    """Drop a held message: it is never shown.

    :raise Invalid 404: not a message of this room. :raise Invalid 409: already decided.
    """
    message = _pending(room, message_id)
    message.status, message.body = MessageStatus.REJECTED.value, ""
    audit(room, host_name(room), "message rejected", f"by {message.author.alias}")
    db.session.commit()
    publish(room, events.held_decided(message, approved=False))
    publish_host_panels(room)
    return message


@refuses_cleanly
def remove_message(room: Room, message: Message) -> Message:
    """The host removes a visible message: "message removed" for everyone, in replay and export too.

    :raise Invalid 409: already removed.
    """
    if message.removed:
        raise Invalid({"message": "This message was already removed"}, 409)
    audit(room, host_name(room), "message removed", f"#{message.seq} by {message.author.alias}")
    for report in db.session.scalars(
        select(Report).where(Report.message_id == message.id, Report.resolved_at.is_(None))
    ):
        report.resolved_at = utcnow()
    mark_removed(room, message, "host")
    publish_host_panels(room)
    return message


@refuses_cleanly
def report(membership: Membership, message: Message, reason: str) -> Report:
    """A participant reports a message to the host, with an optional reason.

    :raise Invalid 422: the reason is too long. :raise Invalid 409: already reported by them.
    """
    reason = clean_body(reason)
    if len(reason) > REASON_MAX:
        raise Invalid({"reason": f"Shorten the reason to {REASON_MAX} characters or fewer"})
    if message.membership_id == membership.id:
        raise Invalid({"reason": "You cannot report your own message"}, 409)
    if membership.is_host:
        raise Invalid({"reason": "As the host, remove the message instead of reporting it"}, 403)
    duplicate = select(Report.id).where(
        Report.message_id == message.id, Report.reporter_id == membership.id, Report.resolved_at.is_(None)
    )
    if db.session.scalar(duplicate):
        raise Invalid({"reason": "You have already reported this message"}, 409)
    report = Report(room_id=message.room_id, message_id=message.id, reporter_id=membership.id, reason=reason)
    db.session.add(report)
    db.session.commit()
    publish_host_panels(membership.room)
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
        report.resolved_at = utcnow()
        audit(room, host_name(room), "report dismissed", f"message #{report.message.seq}")
        db.session.commit()
        publish_host_panels(room)
    return report
