"""Running the instance: statistics, what admins do to accounts, and who may sign up.

Admins (``Facilitator.is_admin``, granted from the CLI only) see instance statistics,
disable and re-enable accounts, reset an account's two-factor sign-in, and choose how
new facilitators get an account: anyone may sign up (``open``, the default), only with
an invitation link an admin made (``invitation``), or nobody (``closed``; accounts are
then made with ``flask facilitators create``). The mode is a row in ``settings``, so
every process and instance sees a change at once.

Invitation links carry a random token; only its SHA-256 hash is stored, and a link
works once, until it expires or is revoked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update

from ..extensions import db
from ..models import Facilitator, Invitation, Message, MessageStatus, RecoveryCode, Room, Setting, utcnow
from ..text import clean_line
from . import Invalid, accounts
from ._core import refuses_cleanly

SIGNUP_MODE = "signup_mode"  # settings key
SIGNUP_MODES = {
    "open": "Anyone may create an account",
    "invitation": "Only with an invitation link",
    "closed": "Nobody: admins create accounts from the command line",
}
INVITATION_DAYS = 7
INVITATION_DAYS_MAX = 90
NOTE_MAX = 120
SIGNUP_CLOSED = "Sign-up is closed on this Chatroom. Ask the people who run it for an account."
INVITATION_NEEDED = "Sign-up needs an invitation on this Chatroom. Ask the people who run it for an invitation link."
INVITATION_BAD = "This invitation link is not valid: it may have been used, revoked or expired. Ask for a new one."


# -- settings -----------------------------------------------------------------------------


def signup_mode() -> str:
    """How new facilitators get an account: ``open`` (the default), ``invitation`` or ``closed``."""
    value = db.session.scalar(select(Setting.value).where(Setting.key == SIGNUP_MODE))
    return value if value in SIGNUP_MODES else "open"


@refuses_cleanly
def set_signup_mode(mode: str) -> str:
    """Change the sign-up mode. :raise Invalid 422: not one of ``SIGNUP_MODES``."""
    if mode not in SIGNUP_MODES:
        raise Invalid({"mode": "Choose open, by invitation, or closed"})
    setting = db.session.get(Setting, SIGNUP_MODE)
    if setting is None:
        db.session.add(Setting(key=SIGNUP_MODE, value=mode))
    else:
        setting.value = mode
    db.session.commit()
    return mode


# -- statistics ---------------------------------------------------------------------------


@dataclass
class Stats:
    """What the admin page and ``flask stats`` show (times in UTC)."""

    facilitators: int
    admins: int
    disabled: int
    rooms_scheduled: int
    rooms_open: int
    rooms_ended: int
    messages_today: int
    messages_total: int


def stats(now: datetime | None = None) -> Stats:
    """Counts across the instance; "today" is the UTC day so far."""
    now = now or utcnow()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)

    def count(*where: Any, model: Any = Facilitator) -> int:
        return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    published = Message.status == MessageStatus.PUBLISHED.value
    shown_today = func.coalesce(Message.published_at, Message.created_at) >= midnight
    return Stats(
        facilitators=count(),
        admins=count(Facilitator.is_admin.is_(True)),
        disabled=count(Facilitator.disabled_at.is_not(None)),
        rooms_scheduled=count(Room.starts_at > now, model=Room),
        rooms_open=count(Room.starts_at <= now, Room.ends_at > now, model=Room),
        rooms_ended=count(Room.ends_at <= now, model=Room),
        messages_today=count(published, shown_today, model=Message),
        messages_total=count(published, model=Message),
    )


# -- accounts -----------------------------------------------------------------------------


def facilitators() -> list[tuple[Facilitator, int]]:
    """Every account with how many rooms it owns, oldest first."""
    rooms = select(func.count()).select_from(Room).where(Room.owner_id == Facilitator.id).scalar_subquery()
    rows = db.session.execute(select(Facilitator, rooms).order_by(Facilitator.created_at, Facilitator.id))
    return [(facilitator, count) for facilitator, count in rows.all()]


def facilitator_or_none(facilitator_id: int) -> Facilitator | None:
    """The account with this id, or None."""
    return db.session.get(Facilitator, facilitator_id)


@refuses_cleanly
def disable(actor: Facilitator | None, target: Facilitator) -> Facilitator:
    """Disable an account: it cannot sign in, and its sessions and API tokens stop working at once.

    ``actor`` is the admin doing it (None: the command line). :raise Invalid 409: an admin disabling themself.
    """
    if actor is not None and actor.id == target.id:
        raise Invalid({"account": "You cannot disable your own account: ask another admin"}, 409)
    if target.disabled_at is None:
        target.disabled_at = utcnow()
    accounts.end_sessions(target)  # a new session token: every login cookie stops working (commits)
    return target


@refuses_cleanly
def enable(target: Facilitator) -> Facilitator:
    """Let a disabled account sign in again (its old sessions stay ended; its tokens work again)."""
    target.disabled_at = None
    db.session.commit()
    return target


@refuses_cleanly
def reset_two_factor(target: Facilitator) -> Facilitator:
    """Turn off two-factor sign-in for someone who lost their app and codes; their sessions end.

    :raise Invalid 409: two-factor sign-in is already off.
    """
    if not target.two_factor:
        raise Invalid({"account": f"Two-factor sign-in is already off for {target.email}"}, 409)
    target.totp_secret = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.facilitator_id == target.id))
    accounts.end_sessions(target)  # commits
    return target


@refuses_cleanly
def set_admin(target: Facilitator, admin: bool) -> Facilitator:
    """Grant or take away the admin role (the command line's job)."""
    target.is_admin = admin
    db.session.commit()
    return target


# -- invitations and sign-up ----------------------------------------------------------------


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def invitations() -> list[Invitation]:
    """Every invitation, newest first."""
    return list(db.session.scalars(select(Invitation).order_by(Invitation.created_at.desc(), Invitation.id.desc())))


@refuses_cleanly
def create_invitation(actor: Facilitator | None, note: str, days: str = str(INVITATION_DAYS)) -> tuple[Invitation, str]:
    """A single-use sign-up link's token, valid for ``days`` days; returns (row, plain token to show once).

    :raise Invalid 422: the note is too long, or days is not a whole number from 1 to 90.
    """
    note = clean_line(note)
    errors = {}
    if len(note) > NOTE_MAX:
        errors["note"] = f"Shorten the note to {NOTE_MAX} characters or fewer"
    days = days.strip()
    if not (days.isascii() and days.isdigit() and 1 <= int(days) <= INVITATION_DAYS_MAX):
        errors["days"] = f"Enter a number of days from 1 to {INVITATION_DAYS_MAX}"
    if errors:
        raise Invalid(errors)
    raw = secrets.token_urlsafe(24)
    invitation = Invitation(
        token_hash=_hash(raw),
        note=note,
        created_by_id=actor.id if actor else None,
        expires_at=utcnow() + timedelta(days=int(days)),
    )
    db.session.add(invitation)
    db.session.commit()
    return invitation, raw


@refuses_cleanly
def revoke_invitation(invitation_id: int) -> Invitation:
    """Make an unused invitation link stop working. :raise Invalid 404: no such invitation."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None:
        raise Invalid({"invitation": "There is no such invitation"}, 404)
    if invitation.revoked_at is None and invitation.used_at is None:
        invitation.revoked_at = utcnow()
        db.session.commit()
    return invitation


def invitation_for(raw: str | None) -> Invitation | None:
    """The usable invitation this link token is, or None."""
    if not raw or len(raw) > 128:
        return None
    invitation = db.session.scalar(select(Invitation).where(Invitation.token_hash == _hash(raw)))
    return invitation if invitation is not None and invitation.usable() else None


@refuses_cleanly
def register(email: str, name: str, password: str, invitation: str | None = None) -> tuple[Facilitator, bool]:
    """Sign-up from the web form, as the sign-up mode allows: ``accounts.register``, and then some.

    Returns (the account, True) for a new one, or (the existing account, False) when the
    address has one already (the caller answers both alike). In ``invitation`` mode the
    link's invitation is spent in the same transaction that creates the account, by a
    conditional update: two sign-ups racing with one link cannot both succeed, and a refused
    sign-up, or one for an address that has an account, leaves the link unused.

    :raise Invalid 403: sign-up is closed, or the invitation is missing or spent.
    :raise Invalid 422: as ``accounts.register``.
    """
    mode = signup_mode()
    if mode == "closed":
        raise Invalid({"email": SIGNUP_CLOSED}, 403)
    claimed: Invitation | None = None
    if mode == "invitation":
        claimed = invitation_for(invitation)
        if claimed is None:
            raise Invalid({"email": INVITATION_BAD if invitation else INVITATION_NEEDED}, 403)
        now = utcnow()
        result = db.session.execute(
            update(Invitation)
            .where(Invitation.id == claimed.id, Invitation.used_at.is_(None), Invitation.revoked_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], result).rowcount != 1:
            raise Invalid({"email": INVITATION_BAD}, 403)
    facilitator, created = accounts.register(email, name, password)  # commits the claim with a new account
    if not created:
        db.session.rollback()  # no account was made: the invitation stays unused
        return facilitator, False
    if claimed is not None:
        db.session.execute(update(Invitation).where(Invitation.id == claimed.id).values(used_by_id=facilitator.id))
        db.session.commit()
    return facilitator, True
