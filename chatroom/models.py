"""Typed SQLAlchemy models: facilitators, rooms, memberships and messages.

Every timestamp is stored timezone-aware in UTC (``UtcDateTime``); a room's own
time zone is only used to show and to read times.
"""

from __future__ import annotations

import enum
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from flask_login import UserMixin
from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import Base, db

if TYPE_CHECKING:
    Model = Base  # what db.Model is, in terms a type checker follows
else:
    Model = db.Model


EDIT_WINDOW = timedelta(minutes=5)  # how long an author may edit or delete their message


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_session_token() -> str:
    return secrets.token_hex(16)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored as UTC; SQLite hands back naive values, so we re-attach UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class RoomStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    ENDED = "ended"


class Facilitator(UserMixin, Model):
    """An account that creates and hosts rooms."""

    __tablename__ = "facilitators"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254), unique=True)  # casefolded, for uniqueness
    name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(128))
    # Part of every login cookie; a new value on sign-out or password change makes old cookies worthless.
    session_token: Mapped[str] = mapped_column(String(32), default=new_session_token, server_default="")
    totp_secret: Mapped[str | None] = mapped_column(String(64))  # set once two-factor sign-in is confirmed
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    rooms: Mapped[list[Room]] = relationship(back_populates="owner", order_by="Room.starts_at.desc()")
    recovery_codes: Mapped[list[RecoveryCode]] = relationship(cascade="all, delete-orphan", passive_deletes=True)

    def get_id(self) -> str:
        """Flask-Login's cookie value: the id and the current session token (see ``session_token``)."""
        return f"{self.id}:{self.session_token}"

    @property
    def two_factor(self) -> bool:
        return self.totp_secret is not None


class LoginSession(Model):
    """One browser's sign-in: signing out there deletes it; signing out everywhere deletes them all."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    facilitator_id: Mapped[int] = mapped_column(ForeignKey("facilitators.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)  # kept in that browser's signed session
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class RecoveryCode(Model):
    """A single-use code to sign in without the authenticator app; only its hash is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    facilitator_id: Mapped[int] = mapped_column(ForeignKey("facilitators.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Room(Model):
    """A scheduled, password-protected chat room owned by one facilitator."""

    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("owner_id", "title_key", name="uq_rooms_owner_title"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)  # the unguessable public address
    owner_id: Mapped[int] = mapped_column(ForeignKey("facilitators.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    title_key: Mapped[str] = mapped_column(String(120))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    password_hash: Mapped[str] = mapped_column(String(128))
    # The last message sequence number handed out; bumped under the row lock on every post.
    last_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The last change number (edit, removal) handed out, under the same lock: see stream.py.
    last_rev: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked: Mapped[bool] = mapped_column(default=False, server_default=false())
    slow_mode_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    premoderation: Mapped[bool] = mapped_column(default=False, server_default=false())
    retention_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    owner: Mapped[Facilitator] = relationship(back_populates="rooms")
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="room", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def status(self, now: datetime | None = None) -> RoomStatus:
        now = now or utcnow()
        if now < self.starts_at:
            return RoomStatus.SCHEDULED
        if now >= self.ends_at:
            return RoomStatus.ENDED
        return RoomStatus.OPEN

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the room's own time zone, for display."""
        return moment.astimezone(self.tz)

    def host_seat(self) -> Membership:
        """The owner's host membership (created with the room)."""
        return db.session.scalars(
            select(Membership).where(Membership.room_id == self.id, Membership.is_host.is_(True))
        ).one()

    def pending_messages(self) -> list[Message]:
        """Messages held for the host's approval (pre-moderation), oldest first."""
        return list(
            db.session.scalars(
                select(Message)
                .where(Message.room_id == self.id, Message.status == MessageStatus.PENDING.value)
                .order_by(Message.created_at, Message.id)
            )
        )

    def open_reports(self) -> list[Report]:
        """Reports the host has not dealt with yet, oldest first."""
        return list(
            db.session.scalars(
                select(Report)
                .where(Report.room_id == self.id, Report.resolved_at.is_(None))
                .order_by(Report.created_at)
            )
        )


class Membership(Model):
    """A seat in a room: a participant's alias, or the facilitator's own host seat."""

    __tablename__ = "memberships"
    # An alias is held by an active seat only: leaving or removal frees it (a ban keeps the person out, not
    # the name). A partial unique index, which PostgreSQL and SQLite both have.
    __table_args__ = (
        Index(
            "uq_memberships_room_alias_active",
            "room_id",
            "alias_key",
            unique=True,
            postgresql_where=text("left_at IS NULL"),
            sqlite_where=text("left_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(String(64))
    alias_key: Mapped[str] = mapped_column(String(64))
    is_host: Mapped[bool] = mapped_column(default=False)
    facilitator_id: Mapped[int | None] = mapped_column(ForeignKey("facilitators.id", ondelete="CASCADE"))
    joined_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    banned: Mapped[bool] = mapped_column(default=False, server_default=false())
    removed: Mapped[bool] = mapped_column(default=False, server_default=false())  # closed by the host, not by leaving

    room: Mapped[Room] = relationship(back_populates="memberships")

    @property
    def active(self) -> bool:
        return self.left_at is None


class MessageStatus(enum.StrEnum):
    PUBLISHED = "published"
    PENDING = "pending"  # waiting in the host's queue (pre-moderation): no seq yet
    REJECTED = "rejected"


class Message(Model):
    """One chat message.

    ``seq`` is its gap-free position in the room, given when it becomes visible
    (at posting, or at approval under pre-moderation); ``rev`` is the room's
    change number of its last edit or removal (0 if never changed).
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("room_id", "seq", name="uq_messages_room_seq"),
        UniqueConstraint("room_id", "client_token", name="uq_messages_room_token"),
        Index("ix_messages_membership", "membership_id"),
        Index("ix_messages_room_rev", "room_id", "rev"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    seq: Mapped[int | None] = mapped_column(Integer)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)
    client_token: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10), default=MessageStatus.PUBLISHED, server_default="published")
    rev: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    edited_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    removed_by: Mapped[str | None] = mapped_column(String(10))  # "author" or "host"

    author: Mapped[Membership] = relationship(lazy="joined")

    @property
    def removed(self) -> bool:
        return self.removed_at is not None

    def editable_by(self, membership: Membership, now: datetime | None = None) -> bool:
        """Whether ``membership`` may still edit or delete this message: their own, not removed, within
        ``EDIT_WINDOW`` of posting."""
        return (
            self.membership_id == membership.id
            and not self.removed
            and (now or utcnow()) - self.created_at <= EDIT_WINDOW
        )

    @property
    def shown_at(self) -> datetime:
        """When it appeared in the room: its approval time under pre-moderation."""
        return self.published_at or self.created_at


class Report(Model):
    """A participant's report of a message, for the host's queue."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    reporter_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    message: Mapped[Message] = relationship(lazy="joined")
    reporter: Mapped[Membership] = relationship(lazy="joined")


class AuditEvent(Model):
    """One moderation action or settings change: who, what, when."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
