"""Typed SQLAlchemy models: facilitators, rooms, memberships and messages.

Every timestamp is stored timezone-aware in UTC (``UtcDateTime``); a room's own
time zone is only used to show and to read times.

Longer than our ~400-line guide on purpose: the tables point at each other, and one
module lets a reader see every column, constraint and rule of the schema in one place
(the same shape as the migrations). Split it by area if it grows much further.
"""

from __future__ import annotations

import enum
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from flask_login import UserMixin
from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import REGCONFIG
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
    # Runs the instance: the /admin area (statistics, accounts, sign-up). Set from the CLI only.
    is_admin: Mapped[bool] = mapped_column(default=False, server_default=false())
    # A disabled account cannot sign in; its sessions and API tokens stop working at once.
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    rooms: Mapped[list[Room]] = relationship(back_populates="owner", order_by="Room.starts_at.desc()")
    recovery_codes: Mapped[list[RecoveryCode]] = relationship(cascade="all, delete-orphan", passive_deletes=True)

    def get_id(self) -> str:
        """Flask-Login's cookie value: the id and the current session token (see ``session_token``)."""
        return f"{self.id}:{self.session_token}"

    @property
    def two_factor(self) -> bool:
        return self.totp_secret is not None

    @property
    def is_active(self) -> bool:
        """Flask-Login's flag: a disabled account is not active, so ``login_user`` refuses it."""
        return self.disabled_at is None


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


class PendingSecret(Model):
    """A secret on its way to its account's eyes, kept here rather than in the session cookie.

    The two-factor set-up key (until a code confirms it) and fresh recovery codes (until the
    page that shows them once). Flask's session cookie is signed, not encrypted: anyone who
    sees the cookie (a proxy log, a shared computer, a browser extension) could read them.
    The cookie carries only a random key; this row is stored under the key's SHA-256, for
    its own account only, and expires (``services.accounts.keep_secret``).
    """

    __tablename__ = "pending_secrets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 (hex) of the key in the cookie
    facilitator_id: Mapped[int] = mapped_column(ForeignKey("facilitators.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # "totp_setup" or "recovery_codes"
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


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
    # The text search configuration of the room's messages (PostgreSQL; see services/search.py).
    search_language: Mapped[str] = mapped_column(String(32), default="simple", server_default="simple")
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

    def pending_messages(self, limit: int | None = None, offset: int = 0) -> list[Message]:
        """Messages held for the host's approval (pre-moderation), oldest first; a slice with ``offset``/``limit``."""
        return list(
            db.session.scalars(
                select(Message)
                .where(Message.room_id == self.id, Message.status == MessageStatus.PENDING.value)
                .order_by(Message.created_at, Message.id)
                .offset(offset)
                .limit(limit)
            )
        )

    def pending_count(self) -> int:
        """How many messages wait for the host's approval."""
        query = select(func.count()).where(Message.room_id == self.id, Message.status == MessageStatus.PENDING.value)
        return db.session.scalar(query.select_from(Message)) or 0

    def open_reports(self, limit: int | None = None, offset: int = 0) -> list[Report]:
        """Reports the host has not dealt with yet, oldest first; a slice with ``offset``/``limit``."""
        return list(
            db.session.scalars(
                select(Report)
                .where(Report.room_id == self.id, Report.resolved_at.is_(None))
                .order_by(Report.created_at, Report.id)
                .offset(offset)
                .limit(limit)
            )
        )

    def open_report_count(self) -> int:
        """How many reports the host has not dealt with yet."""
        query = select(func.count()).where(Report.room_id == self.id, Report.resolved_at.is_(None))
        return db.session.scalar(query.select_from(Report)) or 0


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
    # The last message seq this seat has seen: "new since you left" (services/participation.py).
    last_seen_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    removed: Mapped[bool] = mapped_column(default=False, server_default=false())  # closed by the host, not by leaving

    room: Mapped[Room] = relationship(back_populates="memberships")

    @property
    def active(self) -> bool:
        return self.left_at is None

    @property
    def closed_as(self) -> str:
        """Why a closed seat closed, in the words its streams end with (``events.SEAT_NOTICES``)."""
        return closed_as(self.banned, self.removed)


def closed_as(banned: bool, removed: bool) -> str:
    """Why a seat closed (``Membership.closed_as``), from its two flags: ``banned``, ``removed`` by the host,
    or else ``left``."""
    return "banned" if banned else "removed" if removed else "left"


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
    question: Mapped[bool] = mapped_column(default=False, server_default=false())  # asked as a question
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # the host marked the question answered
    # Who the text mentions: "member_id:start:end" spans, space-separated (chatroom/mentions.py).
    mentions: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The search configuration its text is indexed with (the room's, when it was written: services/search.py).
    search_config: Mapped[str] = mapped_column(
        String(32).with_variant(REGCONFIG(), "postgresql"), default="simple", server_default="simple"
    )

    author: Mapped[Membership] = relationship(lazy="joined")
    reactions: Mapped[list[Reaction]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True, order_by="Reaction.id"
    )
    votes: Mapped[list[Vote]] = relationship(lazy="selectin", cascade="all, delete-orphan", passive_deletes=True)

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

    def reactors(self) -> dict[str, list[int]]:
        """The seats that gave each reaction it has: {``Reactions`` value: seat ids, in the order given}."""
        by: dict[str, list[int]] = {}
        for reaction in self.reactions:
            by.setdefault(reaction.emoji, []).append(reaction.membership_id)
        return by

    def reaction_counts(self) -> list[tuple[Reactions, list[int]]]:
        """The reactions it has, in the fixed order of ``Reactions``: (reaction, the seats that gave it)."""
        by = self.reactors()
        return [(kind, by[kind.value]) for kind in Reactions if kind.value in by]

    @property
    def voters(self) -> list[int]:
        """The seats that upvoted this question."""
        return [vote.membership_id for vote in self.votes]

    @property
    def mentioned(self) -> list[int]:
        """The seats its text mentions (each once)."""
        return list(dict.fromkeys(int(span.split(":")[0]) for span in self.mentions.split()))


class Reactions(enum.StrEnum):
    """The fixed set of reactions: the value is stored, ``emoji`` shown, ``label`` read out."""

    THUMBS_UP = "thumbs_up"
    HEART = "heart"
    LAUGH = "laugh"
    PARTY = "party"
    EYES = "eyes"
    QUESTION = "question"

    @property
    def emoji(self) -> str:
        return _REACTION_EMOJI[self][0]

    @property
    def label(self) -> str:
        return _REACTION_EMOJI[self][1]


_REACTION_EMOJI = {
    Reactions.THUMBS_UP: ("\U0001f44d", "thumbs up"),
    Reactions.HEART: ("\u2764\ufe0f", "heart"),
    Reactions.LAUGH: ("\U0001f602", "laughing"),
    Reactions.PARTY: ("\U0001f389", "party"),
    Reactions.EYES: ("\U0001f440", "eyes"),
    Reactions.QUESTION: ("\u2753", "question mark"),
}


class Reaction(Model):
    """One seat's reaction to one message (toggled: at most one of each kind per seat)."""

    __tablename__ = "reactions"
    __table_args__ = (UniqueConstraint("message_id", "membership_id", "emoji", name="uq_reactions_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"), index=True)
    emoji: Mapped[str] = mapped_column(String(16))  # a Reactions value
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Vote(Model):
    """One seat's upvote of a question (once each)."""

    __tablename__ = "votes"
    __table_args__ = (UniqueConstraint("message_id", "membership_id", name="uq_votes_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Note(Model):
    """A private word between a participant and the host: only the two of them see it.

    ``membership_id`` is the participant whose thread it belongs to, whichever way it goes.
    """

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"), index=True)
    from_host: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    participant: Mapped[Membership] = relationship(lazy="joined")


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


class ApiToken(Model):
    """A facilitator's personal access token for the JSON API; only a SHA-256 hash of it is kept.

    The token is 256 random bits, so a plain hash is enough (no password stretching):
    nobody can guess one to match. ``hint`` is its first characters, to tell tokens apart.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    facilitator_id: Mapped[int] = mapped_column(ForeignKey("facilitators.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    facilitator: Mapped[Facilitator] = relationship(lazy="joined")

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class Setting(Model):
    """One instance-wide setting the admins change (sign-up mode), by name."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class Invitation(Model):
    """A single-use sign-up link an admin made (sign-up by invitation); only a hash of its token is kept."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    note: Mapped[str] = mapped_column(String(120), default="")  # who it is for, as the admin wrote it
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("facilitators.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("facilitators.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    def usable(self, now: datetime | None = None) -> bool:
        """Not used, not revoked and not expired."""
        return self.used_at is None and self.revoked_at is None and (now or utcnow()) < self.expires_at
