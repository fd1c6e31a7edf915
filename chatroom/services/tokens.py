"""Personal access tokens for the JSON API: created and revoked on the account page, checked on every API call.

A token is ``chatroom_`` and 43 URL-safe characters (256 random bits). Only its SHA-256
hash is stored: with that much randomness nobody can guess a token to match a hash, so a
slow password hash would only cost time on every request. The plain token is shown
once, when it is made. A token works until it is revoked or its account is disabled;
``last_used_at`` is kept to the minute (one write a minute at most per token).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import func, select

from ..extensions import db
from ..models import ApiToken, Facilitator, utcnow
from ..text import clean_line
from . import Invalid
from ._core import refuses_cleanly

PREFIX = "chatroom_"  # recognisable in a leaked file or a secret scanner's rules
NAME_MAX = 64
ACTIVE_MAX = 25  # active tokens per account
RAW_MAX = 128  # anything longer is not one of ours: not even hashed
LAST_USED_STEP = timedelta(minutes=1)


def token_hash(raw: str) -> str:
    """The stored form of a token (SHA-256, hex)."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def active_tokens(facilitator: Facilitator) -> list[ApiToken]:
    """The account's tokens that still work, newest first."""
    return list(
        db.session.scalars(
            select(ApiToken)
            .where(ApiToken.facilitator_id == facilitator.id, ApiToken.revoked_at.is_(None))
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        )
    )


@refuses_cleanly
def create(facilitator: Facilitator, name: str) -> tuple[ApiToken, str]:
    """Make a token named ``name`` for ``facilitator``; returns (token row, the plain token to show once).

    :raise Invalid 422: the name is empty or too long. :raise Invalid 409: the account has too many tokens.
    """
    name = clean_line(name)
    if not 1 <= len(name) <= NAME_MAX:
        raise Invalid({"token_name": f"Name the token, up to {NAME_MAX} characters, so you can tell it apart"})
    active = db.session.scalar(
        select(func.count())
        .select_from(ApiToken)
        .where(ApiToken.facilitator_id == facilitator.id, ApiToken.revoked_at.is_(None))
    )
    if (active or 0) >= ACTIVE_MAX:
        raise Invalid({"token_name": f"You have {ACTIVE_MAX} tokens, the most an account may have: revoke one"}, 409)
    raw = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(facilitator_id=facilitator.id, name=name, token_hash=token_hash(raw), hint=raw[: len(PREFIX) + 4])
    db.session.add(token)
    db.session.commit()
    return token, raw


@refuses_cleanly
def revoke(facilitator: Facilitator, token_id: int) -> ApiToken:
    """Revoke one of the account's tokens (at once, for every process). Revoking twice changes nothing.

    :raise Invalid 404: not a token of this account.
    """
    token = db.session.get(ApiToken, token_id)
    if token is None or token.facilitator_id != facilitator.id:
        raise Invalid({"token": "There is no such token on your account"}, 404)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()
    return token


def authenticate(raw: str) -> ApiToken | None:
    """The active token ``raw`` is, with its account, or None (unknown, revoked, or the account is disabled).

    Records when it was last used, to the minute.
    """
    if not raw.startswith(PREFIX) or len(raw) > RAW_MAX or not raw.isascii():
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash(raw)))
    if token is None or token.revoked_at is not None or token.facilitator.disabled_at is not None:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_STEP:
        token.last_used_at = now
        db.session.commit()
    return token
