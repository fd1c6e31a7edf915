"""Facilitator accounts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import security
from ..extensions import db
from ..models import Facilitator, new_session_token
from ..text import clean_email, clean_line, valid_email
from ._core import Invalid

NAME_MAX = 64
PASSWORD_MIN = 12
PASSWORD_MAX = 1024


def sign_up(email: str, name: str, password: str) -> Facilitator:
    """Create a facilitator account.

    :raise Invalid 422: a field breaks a rule. :raise Invalid 409: the e-mail is taken.
    """
    email = clean_email(email)
    name = clean_line(name)
    errors: dict[str, str] = {}
    if not valid_email(email):
        errors["email"] = "Enter an email address like name@example.org"
    if not 1 <= len(name) <= NAME_MAX:
        errors["name"] = f"Enter your name, up to {NAME_MAX} characters"
    if len(password) < PASSWORD_MIN:
        errors["password"] = f"Choose a password of at least {PASSWORD_MIN} characters"
    elif len(password) > PASSWORD_MAX:
        errors["password"] = f"Choose a password of at most {PASSWORD_MAX} characters"
    if errors:
        raise Invalid(errors)
    key = email.casefold()
    if db.session.scalar(select(Facilitator.id).where(Facilitator.email_key == key)):
        raise Invalid({"email": "An account with this email already exists: sign in instead"}, 409)
    facilitator = Facilitator(email=email, email_key=key, name=name, password_hash=security.hash_password(password))
    db.session.add(facilitator)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Invalid({"email": "An account with this email already exists: sign in instead"}, 409) from None
    return facilitator


def authenticate(email: str, password: str) -> Facilitator | None:
    """The facilitator with this e-mail and password, or None; unknown e-mails take as long as wrong passwords."""
    facilitator = db.session.scalar(select(Facilitator).where(Facilitator.email_key == clean_email(email).casefold()))
    if facilitator is None or len(password) > PASSWORD_MAX:
        security.burn_password_check()
        return None
    return facilitator if security.check_password(password, facilitator.password_hash) else None


def end_sessions(facilitator: Facilitator) -> None:
    """Invalidate every login cookie of this account (sign-out, password change)."""
    facilitator.session_token = new_session_token()
    db.session.commit()
