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

from flask import render_template
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..broker import Event
from ..extensions import db
from ..models import AuditEvent, Membership, Message, MessageStatus, Report, Room, utcnow
from ..sse import frame
from ..text import clean_body
from ._core import Invalid, audit, next_seq, publish
from .messages import mark_removed, message_frame

REASON_MAX = 500


def _host(room: Room) -> str:
    return f"{room.owner.name} (host)"


def pending_messages(room: Room) -> list[Message]:
    """Held messages, oldest first."""
    return list(
        db.session.scalars(
            select(Message)
            .where(Message.room_id == room.id, Message.status == MessageStatus.PENDING.value)
            .order_by(Message.created_at, Message.id)
        )
    )


def open_reports(room: Room) -> list[Report]:
    """Unresolved reports, oldest first."""
    return list(
        db.session.scalars(
            select(Report).where(Report.room_id == room.id, Report.resolved_at.is_(None)).order_by(Report.created_at)
        )
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


def host_panels(room: Room, *, oob: bool = True) -> str:
    """The host's queue and reports panels (OOB fragments for the host's streams)."""
    return render_template(
        "chat/_host_panels.html", room=room, pending=pending_messages(room), reports=open_reports(room), oob=oob
    )


def _publish_panels(room: Room) -> None:
    publish(room, Event("host", frame(host_panels(room))))


def hold_for_approval(membership: Membership, room: Room, text: str, token: str) -> tuple[Message, bool]:
    """Keep a participant's message in the host's queue (pre-moderation); it has no ``seq`` yet."""
    message = Message(
        room_id=room.id,
        seq=None,
        membership_id=membership.id,
        body=text,
        client_token=token,
        status=MessageStatus.PENDING.value,
    )
    db.session.add(message)
    try:
        db.session.commit()
    except IntegrityError:  # the same form, submitted twice at once: the other one won
        db.session.rollback()
        return db.session.scalars(
            select(Message).where(Message.room_id == room.id, Message.client_token == token)
        ).one(), False
    _publish_panels(room)
    return message, True


def _pending(room: Room, message_id: int) -> Message:
    message = db.session.get(Message, message_id)
    if message is None or message.room_id != room.id:
        raise Invalid({"message": "There is no such message in this room"}, 404)
    if message.status != MessageStatus.PENDING.value:
        raise Invalid({"message": "This message was already approved or rejected"}, 409)
    return message


def approve_message(room: Room, message_id: int) -> Message:
    """Publish a held message now, after everything already visible.

    :raise Invalid 404: not a message of this room. :raise Invalid 409: already decided.
    """
    message = _pending(room, message_id)
    seq, rev = next_seq(room.id)
    message.seq, message.status, message.published_at = seq, MessageStatus.PUBLISHED.value, utcnow()
    audit(room, _host(room), "message approved", f"#{seq} by {message.author.alias}")
    event = Event("message", message_frame(room, message, rev), seq=seq, rev=rev)
    db.session.commit()
    publish(room, event)
    _publish_panels(room)
    return message


def reject_message(room: Room, message_id: int) -> Message:
    """Drop a held message: it is never shown.

    :raise Invalid 404: not a message of this room. :raise Invalid 409: already decided.
    """
    message = _pending(room, message_id)
    message.status, message.body = MessageStatus.REJECTED.value, ""
    audit(room, _host(room), "message rejected", f"by {message.author.alias}")
    db.session.commit()
    _publish_panels(room)
    return message


def remove_message(room: Room, message: Message) -> Message:
    """The host removes a visible message: "message removed" for everyone, in replay and export too.

    :raise Invalid 409: already removed.
    """
    if message.removed:
        raise Invalid({"message": "This message was already removed"}, 409)
    audit(room, _host(room), "message removed", f"#{message.seq} by {message.author.alias}")
    for report in db.session.scalars(
        select(Report).where(Report.message_id == message.id, Report.resolved_at.is_(None))
    ):
        report.resolved_at = utcnow()
    mark_removed(room, message, "host")
    _publish_panels(room)
    return message


def report_message(membership: Membership, message: Message, reason: str) -> Report:
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
    _publish_panels(membership.room)
    return report


def resolve_report(room: Room, report_id: int) -> Report:
    """The host dismisses a report (keeping the message).

    :raise Invalid 404: not a report of this room.
    """
    report = db.session.get(Report, report_id)
    if report is None or report.room_id != room.id:
        raise Invalid({"report": "There is no such report in this room"}, 404)
    if report.resolved_at is None:
        report.resolved_at = utcnow()
        audit(room, _host(room), "report dismissed", f"message #{report.message.seq}")
        db.session.commit()
        _publish_panels(room)
    return report
