"""Password hashing (bcrypt) and the random codes and tokens Chatroom hands out.

bcrypt reads at most 72 bytes of a password, and bcrypt 5 raises on longer input, so
every password is first hashed with SHA-256 and base64-encoded (44 bytes): every byte
the user typed counts, and long passphrases work.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

import bcrypt
from flask import current_app

ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o/1/l/i: easy to read aloud and type


def _prehash(password: str) -> bytes:
    # bcrypt reads only 72 bytes (and bcrypt 5 raises past them): hash first, so every byte counts.
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def hash(password: str) -> str:
    """A bcrypt hash of ``password`` at ``BCRYPT_ROUNDS`` (12 by default; each step doubles the work)."""
    rounds = current_app.config.get("BCRYPT_ROUNDS", 12)
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def check(password: str, hashed: str) -> bool:
    """Whether ``password`` matches the bcrypt hash ``hashed`` (constant time, as bcrypt compares)."""
    return bcrypt.checkpw(_prehash(password), hashed.encode("ascii"))


def burn_check() -> None:
    """Spend the time a real check would, so an unknown account looks like a wrong password."""
    check("x", _dummy_hash())


_DUMMY: dict[int, str] = {}


def _dummy_hash() -> str:
    rounds = current_app.config.get("BCRYPT_ROUNDS", 12)
    if rounds not in _DUMMY:
        _DUMMY[rounds] = hash(secrets.token_hex(8))
    return _DUMMY[rounds]


def room_code() -> str:
    """An unguessable short public code for a room (10 characters, ~49 bits)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(10))


def form_token() -> str:
    """A one-time token carried by a rendered form, so a resubmission is recognised."""
    return secrets.token_hex(16)
