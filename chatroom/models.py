"""Typed SQLAlchemy models: facilitators, rooms, memberships and messages.

Every timestamp is stored timezone-aware in UTC (``UtcDateTime``); a room's own
time zone is only used to show and to read times.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
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
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC)


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


class Facilitator(UserMixin, db.Model):
    """An account that creates and hosts rooms."""

    __tablename__ = "facilitators"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254), unique=True)  # casefolded, for uniqueness
    name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    rooms: Mapped[list[Room]] = relationship(back_populates="owner", order_by="Room.starts_at.desc()")


class Room(db.Model):
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
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    owner: Mapped[Facilitator] = relationship(back_populates="rooms")
    memberships: Mapped[list[Membership]] = relationship(back_populates="room", cascade="all, delete-orphan")

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

    @property
    def channel(self) -> str:
        return f"room:{self.id}"


class Membership(db.Model):
    """A seat in a room: a participant's alias, or the facilitator's own host seat."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("room_id", "alias_key", name="uq_memberships_room_alias"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(String(64))
    alias_key: Mapped[str] = mapped_column(String(64))
    is_host: Mapped[bool] = mapped_column(default=False)
    facilitator_id: Mapped[int | None] = mapped_column(ForeignKey("facilitators.id", ondelete="CASCADE"))
    joined_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    room: Mapped[Room] = relationship(back_populates="memberships")

    @property
    def active(self) -> bool:
        return self.left_at is None


class Message(db.Model):
    """One chat message; ``seq`` is its gap-free position in the room."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("room_id", "seq", name="uq_messages_room_seq"),
        UniqueConstraint("room_id", "client_token", name="uq_messages_room_token"),
        Index("ix_messages_membership", "membership_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)
    client_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    author: Mapped[Membership] = relationship(lazy="joined")
