"""Facilitator accounts: sign-up, passwords, password reset and two-factor sign-in.

(One module: every writer of an account's credentials, so their rules stay side by side.)

Password reset links carry a signed, timed token (itsdangerous) holding the
account id and a fingerprint of the account's password hash and session token.
Resetting the password (or signing out everywhere) changes the fingerprint, so a
link works once, and only until the account changes; the signature's timestamp
limits it to ``PASSWORD_RESET_MAX_AGE`` seconds.

Two-factor sign-in uses TOTP (RFC 6238, 30-second steps, one step of clock drift
either way) and ten single-use recovery codes, of which only SHA-256 hashes are
stored. See ``check_totp`` for how a code is kept from being used twice.

Longer than our ~400-line guide on purpose: it is one account's security (passwords,
reset tokens, sign-ins per browser, second factors, secrets on their way to the user),
and those rules check each other's fingerprints.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import timedelta
from typing import Any, cast

import pyotp
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from .. import events, passwords
from ..extensions import db
from ..models import Facilitator, LoginSession, PendingSecret, RecoveryCode, Room, new_session_token, utcnow
from ..presence import claim
from ..text import Limit, clean_email, clean_line, problem, valid_email
from . import Invalid
from ._core import publish, refuses_cleanly

NAME_MAX = 64
NAME = Limit(
    label="Your name",
    maximum=NAME_MAX,
    empty=f"Enter your name, up to {NAME_MAX} characters",
    too_long="Enter your name, up to {maximum} characters (it has {count})",
    storage=64,  # Facilitator.name holds 64 code points
)
PASSWORD_MIN = 12
PASSWORD_MAX = 1024


def _check_sign_up(email: str, raw_name: str, name: str, password: str) -> None:
    """:raise Invalid 422: a field of the sign-up form breaks a rule (nothing here depends on who has an account)."""
    errors: dict[str, str] = {}
    if not valid_email(email):
        errors["email"] = "Enter an email address like name@example.org"
    wrong_name = problem(raw_name, name, NAME)
    if wrong_name:
        errors["name"] = wrong_name
    if len(password) < PASSWORD_MIN:
        errors["password"] = f"Choose a password of at least {PASSWORD_MIN} characters"
    elif len(password) > PASSWORD_MAX:
        errors["password"] = f"Choose a password of at most {PASSWORD_MAX} characters"
    if errors:
        raise Invalid(errors)


@refuses_cleanly
def register(email: str, name: str, password: str) -> tuple[Facilitator, bool]:
    """The sign-up form: (the account, True) when it is new, (the existing one, False), after the same work.

    Whether an address has an account must not show, in the answer or in its time: the
    password is hashed either way (bcrypt is nearly all of the work), and the caller answers
    both cases alike and mails the address (see ``docs/security.md``, "Sign-up").

    :raise Invalid 422: a field breaks a rule.
    """
    email, raw_name = clean_email(email), name
    _check_sign_up(email, raw_name, clean_line(name), password)
    existing = find_facilitator(email)
    if existing is not None:
        passwords.hash(password)  # the work a new account costs, then thrown away
        return existing, False
    try:
        return sign_up(email, raw_name, password), True
    except Invalid:  # taken meanwhile, by a twin submission
        existing = find_facilitator(email)
        assert existing is not None
        return existing, False


@refuses_cleanly
def sign_up(email: str, name: str, password: str) -> Facilitator:
    """Create a facilitator account (the factories and ``register`` call it; the form goes through ``register``).

    :raise Invalid 422: a field breaks a rule. :raise Invalid 409: the e-mail is taken.
    """
    email = clean_email(email)
    raw_name, name = name, clean_line(name)
    _check_sign_up(email, raw_name, name, password)
    key = email.casefold()
    if db.session.scalar(select(Facilitator.id).where(Facilitator.email_key == key)):
        raise Invalid({"email": "An account with this email already exists: sign in instead"}, 409)
    facilitator = Facilitator(email=email, email_key=key, name=name, password_hash=passwords.hash(password))
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
        passwords.burn_check()
        return None
    return facilitator if passwords.check(password, facilitator.password_hash) else None


def start_session(facilitator: Facilitator) -> str:
    """A new sign-in on one browser: returns its token, which that browser keeps in its signed session.

    Sign-ins older than ``SESSION_MAX_HOURS`` (which no cookie can use any more) are dropped on the way.
    """
    token = secrets.token_hex(16)
    cutoff = utcnow() - timedelta(hours=current_app.config["SESSION_MAX_HOURS"])
    db.session.execute(
        delete(LoginSession).where(LoginSession.facilitator_id == facilitator.id, LoginSession.created_at < cutoff)
    )
    db.session.add(LoginSession(facilitator_id=facilitator.id, token=token))
    db.session.commit()
    return token


def session_is_current(facilitator: Facilitator, token: str) -> bool:
    """Whether ``token`` is one of this account's sign-ins that has not been signed out."""
    if not token:
        return False
    found = select(LoginSession.id).where(LoginSession.facilitator_id == facilitator.id, LoginSession.token == token)
    return db.session.scalar(found) is not None


def end_session(facilitator: Facilitator, token: str) -> None:
    """Sign out one browser: its sign-in is deleted, so its cookie (and any copy of it) stops working,
    and the host streams that browser has open in the account's rooms end (``events.signed_out``)."""
    db.session.execute(
        delete(LoginSession).where(LoginSession.facilitator_id == facilitator.id, LoginSession.token == token)
    )
    db.session.commit()
    if token:  # no token: no sign-in of this browser to end (an empty fingerprint would name them all)
        _end_host_streams(facilitator.id, sign_in_fingerprint(token))


def end_sessions(facilitator: Facilitator) -> None:
    """Invalidate every login cookie of this account (sign out everywhere, password change, disabled by an
    admin), and end every host stream open in its rooms: what a page already follows stops too."""
    facilitator.session_token = new_session_token()
    db.session.execute(delete(LoginSession).where(LoginSession.facilitator_id == facilitator.id))
    db.session.commit()
    _end_host_streams(facilitator.id)


def sign_in_fingerprint(token: str) -> str:
    """How a host stream remembers the sign-in it was opened under: a hash of the browser's sign-in ``token``
    (32 hex digits of SHA-256), so the token itself never travels in an event."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def current_sign_ins(facilitator_id: int) -> set[str]:
    """The fingerprints (``sign_in_fingerprint``) of this account's sign-ins a cookie may still use: none while
    the account is disabled, none older than ``SESSION_MAX_HOURS``. Host streams re-check theirs against it, in
    case the event that ended it was lost (``events.signed_out``)."""
    cutoff = utcnow() - timedelta(hours=current_app.config["SESSION_MAX_HOURS"])
    tokens = (
        select(LoginSession.token)
        .join(Facilitator, Facilitator.id == LoginSession.facilitator_id)
        .where(
            LoginSession.facilitator_id == facilitator_id,
            LoginSession.created_at >= cutoff,
            Facilitator.disabled_at.is_(None),
        )
    )
    return {sign_in_fingerprint(token) for token in db.session.scalars(tokens)}


def _end_host_streams(facilitator_id: int, sign_in: str = "") -> None:
    """Tell the streams of every room this account owns that has not ended: ``sign_in`` (a fingerprint; ``""``:
    all of them) ended. Call after the commit."""
    rooms = select(Room.id).where(Room.owner_id == facilitator_id, Room.ends_at > utcnow())
    for room_id in db.session.scalars(rooms):
        publish(room_id, events.signed_out(sign_in))


# -- passwords ------------------------------------------------------------------


def password_problem(password: str) -> str | None:
    """What is wrong with ``password`` as a new password, or None (the sign-up rules)."""
    if len(password) < PASSWORD_MIN:
        return f"Choose a password of at least {PASSWORD_MIN} characters"
    if len(password) > PASSWORD_MAX:
        return f"Choose a password of at most {PASSWORD_MAX} characters"
    return None


def _password_matches(facilitator: Facilitator, password: str) -> bool:
    return len(password) <= PASSWORD_MAX and passwords.check(password, facilitator.password_hash)


@refuses_cleanly
def set_password(facilitator: Facilitator, password: str) -> None:
    """Give the account a new password and end every session (the caller signs this one in again).

    :raise Invalid 422: the password breaks a rule.
    """
    problem = password_problem(password)
    if problem:
        raise Invalid({"password": problem})
    facilitator.password_hash = passwords.hash(password)
    end_sessions(facilitator)  # commits


@refuses_cleanly
def change_password(facilitator: Facilitator, current: str, new: str) -> None:
    """Replace the password after checking the current one; every session ends.

    :raise Invalid 403: the current password is wrong (a rule broken by the new one is reported too).
    :raise Invalid 422: the new password breaks a rule.
    """
    errors: dict[str, str] = {}
    if not _password_matches(facilitator, current):
        errors["current_password"] = "Your current password is not right: enter the one you sign in with"  # noqa: S105
    problem = password_problem(new)
    if problem:
        errors["password"] = problem
    if errors:
        raise Invalid(errors, 403 if "current_password" in errors else 422)
    set_password(facilitator, new)


def find_facilitator(email: str) -> Facilitator | None:
    """The account with this e-mail address (any case), or None."""
    return db.session.scalar(select(Facilitator).where(Facilitator.email_key == clean_email(email).casefold()))


# -- password reset links -------------------------------------------------------

RESET_SALT = "chatroom.password-reset"  # its own salt: no other signed value can pass for a reset token
RESET_LINK_BAD = "This link is not valid. It may have been used already, or copied only in part."
RESET_LINK_EXPIRED = "This link has expired: reset links work for one hour."


def account_fingerprint(facilitator: Facilitator) -> str:
    """A keyed digest of the password hash and session token: it changes when either does."""
    key = current_app.config["SECRET_KEY"].encode()
    state = f"{facilitator.id}:{facilitator.password_hash}:{facilitator.session_token}".encode()
    return hmac.new(key, b"account-state:" + state, hashlib.sha256).hexdigest()[:32]


def _reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=RESET_SALT)


def password_reset_token(facilitator: Facilitator) -> str:
    """A signed token for a reset link; it dies after an hour or once the account's password or sessions change."""
    return _reset_serializer().dumps([facilitator.id, account_fingerprint(facilitator)])


@refuses_cleanly
def facilitator_for_reset_token(token: str) -> Facilitator:
    """The account a reset token was made for, if the token is still good.

    :raise Invalid 400: expired, tampered with, or already used (the password or sessions changed since).
    """
    try:
        payload = _reset_serializer().loads(token, max_age=current_app.config["PASSWORD_RESET_MAX_AGE"])
    except SignatureExpired:
        raise Invalid({"token": RESET_LINK_EXPIRED}, 400) from None
    except BadSignature:
        raise Invalid({"token": RESET_LINK_BAD}, 400) from None
    if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], int)):
        raise Invalid({"token": RESET_LINK_BAD}, 400)
    facilitator = db.session.get(Facilitator, payload[0])
    if facilitator is None or not hmac.compare_digest(account_fingerprint(facilitator), str(payload[1])):
        raise Invalid({"token": RESET_LINK_BAD}, 400)
    return facilitator


# -- two-factor sign-in -----------------------------------------------------------

TOTP_INTERVAL = 30  # seconds per code: what every authenticator app assumes
TOTP_WINDOW = 1  # accept the previous and the next step too: phone clocks drift
RECOVERY_CODE_COUNT = 10
_RECOVERY_LENGTH = 10


def new_totp_secret() -> str:
    """A fresh random TOTP secret (base32, 160 bits)."""
    return pyotp.random_base32()


def totp_uri(facilitator: Facilitator, secret: str) -> str:
    """The ``otpauth://`` address an authenticator app reads from the QR code."""
    issuer = current_app.config["TWO_FACTOR_ISSUER"]
    return pyotp.TOTP(secret, interval=TOTP_INTERVAL).provisioning_uri(name=facilitator.email, issuer_name=issuer)


def _totp_step(secret: str, code: str) -> int | None:
    """The time step whose code ``code`` is, within the allowed drift, or None."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_INTERVAL)
    current = totp.timecode(time.time())
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if hmac.compare_digest(code, totp.generate_otp(step)):
            return step
    return None


def _claim_step(facilitator_id: int, step: int) -> bool:
    # A step's code is accepted until the end of step + TOTP_WINDOW: remember it a little longer than that.
    ttl = TOTP_INTERVAL * (2 * TOTP_WINDOW + 2)
    return claim(f"totp:{facilitator_id}:{step}", ttl)


def check_totp(facilitator: Facilitator, code: str, secret: str | None = None) -> bool:
    """True if ``code`` is the account's current TOTP code and has not been accepted before.

    Replay: a code observed over a shoulder or through a phishing proxy must not
    work a second time, in any session. The accepted time step is *claimed* for
    the account through ``presence.claim`` (``SET NX`` with an expiry in
    Redis, shared by every process; a dict in the embedded tracker, which runs in
    one process by design), for as long as the code could still be valid. A
    second use of the same step fails the claim. The session cannot hold this:
    an attacker replays the code in their own session. If Redis is unreachable
    the claim answers yes (its choice for throttling), so for that
    time only the 90-second validity limits a replay; recovery codes, kept in the
    database, are strictly single-use either way.

    ``secret`` checks a secret not saved yet (confirming set-up).
    """
    secret = secret or facilitator.totp_secret
    if not secret:
        return False
    step = _totp_step(secret, code)
    return step is not None and _claim_step(facilitator.id, step)


def _recovery_hash(code: str) -> str | None:
    """The stored hash of a typed recovery code (any case, spaces and dashes ignored), or None if malformed."""
    code = "".join(ch for ch in code.lower() if ch not in " -\t")
    if len(code) != _RECOVERY_LENGTH or any(ch not in passwords.ALPHABET for ch in code):
        return None
    # Plain SHA-256 is enough: the codes are random (about 49 bits), not chosen by people.
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def _new_recovery_codes(facilitator: Facilitator) -> list[str]:
    """Replace the account's recovery codes (in the caller's transaction); the plain codes, to show once."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.facilitator_id == facilitator.id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(passwords.ALPHABET) for _ in range(_RECOVERY_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.session.add(RecoveryCode(facilitator_id=facilitator.id, code_hash=hashlib.sha256(raw.encode()).hexdigest()))
    return codes


@refuses_cleanly
def enable_two_factor(facilitator: Facilitator, secret: str, code: str) -> list[str]:
    """Save ``secret`` once ``code`` proves the app has it; returns the new recovery codes, to show once.

    :raise Invalid 422: the code is not the current one for ``secret``.
    """
    if not check_totp(facilitator, code, secret=secret):
        raise Invalid({"code": "That code is not right. Enter the 6-digit code your app shows now"})
    facilitator.totp_secret = secret
    db.session.execute(
        delete(PendingSecret).where(PendingSecret.facilitator_id == facilitator.id, PendingSecret.kind == TOTP_SETUP)
    )
    codes = _new_recovery_codes(facilitator)
    db.session.commit()
    return codes


@refuses_cleanly
def disable_two_factor(facilitator: Facilitator, password: str) -> None:
    """Turn two-factor sign-in off and drop the recovery codes. :raise Invalid 403: wrong password."""
    if not _password_matches(facilitator, password):
        raise Invalid({"disable_password": "Your password is not right: enter the one you sign in with"}, 403)
    facilitator.totp_secret = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.facilitator_id == facilitator.id))
    db.session.commit()


@refuses_cleanly
def regenerate_recovery_codes(facilitator: Facilitator, password: str) -> list[str]:
    """New recovery codes (the old ones stop working). :raise Invalid 403: wrong password; 409: 2FA is off."""
    if not facilitator.two_factor:
        raise Invalid({"codes_password": "Two-factor sign-in is off: turn it on first"}, 409)
    if not _password_matches(facilitator, password):
        raise Invalid({"codes_password": "Your password is not right: enter the one you sign in with"}, 403)
    codes = _new_recovery_codes(facilitator)
    db.session.commit()
    return codes


def use_recovery_code(facilitator: Facilitator, code: str) -> bool:
    """True once for each unused recovery code of the account; the code is spent in the same statement."""
    code_hash = _recovery_hash(code)
    if code_hash is None:
        return False
    # One conditional UPDATE: two requests racing with the same code cannot both win.
    result = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.facilitator_id == facilitator.id,
            RecoveryCode.code_hash == code_hash,
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return cast(CursorResult[Any], result).rowcount > 0


def recovery_codes_left(facilitator: Facilitator) -> int:
    """How many unused recovery codes the account has."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.facilitator_id == facilitator.id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


# -- secrets on their way to the account's eyes (not in the session cookie) -----------------------------

TOTP_SETUP = "totp_setup"  # the key being set up, until a code confirms it
RECOVERY_CODES = "recovery_codes"  # new codes, until the page that shows them once
SECRET_LIFETIME = {TOTP_SETUP: timedelta(minutes=15), RECOVERY_CODES: timedelta(minutes=10)}


def _secret_id(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def keep_secret(facilitator: Facilitator, kind: str, value: str) -> str:
    """Keep ``value`` for ``facilitator`` (replacing any earlier one of this ``kind``); the key for the session.

    The session cookie is signed but readable, so it carries only this random key; the row
    is stored under the key's SHA-256 and lives ``SECRET_LIFETIME[kind]`` at most. Expired
    rows of the account go at the same time.
    """
    key = secrets.token_urlsafe(32)
    db.session.execute(
        delete(PendingSecret).where(
            PendingSecret.facilitator_id == facilitator.id,
            (PendingSecret.kind == kind) | (PendingSecret.created_at < utcnow() - max(SECRET_LIFETIME.values())),
        )
    )
    db.session.add(PendingSecret(id=_secret_id(key), facilitator_id=facilitator.id, kind=kind, value=value))
    db.session.commit()
    return key


def pending_secret(facilitator: Facilitator, kind: str, key: object, *, take: bool = False) -> str | None:
    """The value kept under ``key`` for this account and ``kind``, if it has not expired; ``take`` spends it.

    Anything else (no key, a key of another account or kind, an expired one) is None.
    """
    if not isinstance(key, str) or not key:
        return None
    row = db.session.get(PendingSecret, _secret_id(key))
    if row is None or row.facilitator_id != facilitator.id or row.kind != kind:
        return None
    fresh = utcnow() - row.created_at <= SECRET_LIFETIME[kind]
    value = row.value
    if take or not fresh:
        db.session.delete(row)
        db.session.commit()
    return value if fresh else None
