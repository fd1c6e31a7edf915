"""Password hashing (bcrypt) and the random codes and tokens Chatroom hands out.

bcrypt reads at most 72 bytes of a password, and bcrypt 5 raises on longer input, so
every password is first hashed with SHA-256 and base64-encoded (44 bytes): every byte
the user typed counts, and long passphrases work.

bcrypt is slow on purpose (about a quarter of a second at 12 rounds) and a gevent
worker runs every request on one OS thread: a check on the event loop would freeze every
page and stream of the worker while it runs. Under gevent, every hash and check runs in
gevent's native thread pool instead (bcrypt releases the GIL, so the loop keeps serving),
at most ``BCRYPT_CONCURRENCY`` at a time per worker (default 2, the cores of a small
dyno); a burst of sign-ins or joins waits its turn in a queue that costs nothing. In plain
threads (the test suite, the CLI) the call is made directly.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import bcrypt
from flask import current_app

T = TypeVar("T")

ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o/1/l/i: easy to read aloud and type


def _prehash(password: str) -> bytes:
    # bcrypt reads only 72 bytes (and bcrypt 5 raises past them): hash first, so every byte counts.
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def under_gevent() -> bool:
    """Whether this process runs on gevent's loop (gunicorn's gevent worker patches ``threading``)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("threading"))


_gates: dict[int, Any] = {}
_gates_lock = threading.Lock()


def _gate() -> Any:
    """The semaphore that bounds concurrent bcrypt work in this process (``BCRYPT_CONCURRENCY``)."""
    size = max(1, int(current_app.config.get("BCRYPT_CONCURRENCY", 2)))
    with _gates_lock:
        if size not in _gates:
            from gevent.lock import BoundedSemaphore

            _gates[size] = BoundedSemaphore(size)
        return _gates[size]


def off_the_loop(work: Callable[..., T], *args: Any) -> T:
    """Run ``work(*args)`` in gevent's native thread pool, bounded by ``_gate``; directly outside gevent.

    Only the calling greenlet waits; the rest of the worker keeps serving. ``work`` must not
    touch the app or request context (it runs on another OS thread).
    """
    if not under_gevent():
        return work(*args)
    import gevent

    with _gate():
        return gevent.get_hub().threadpool.apply(work, args)  # type: ignore[no-any-return]


def hash(password: str) -> str:
    """A bcrypt hash of ``password`` at ``BCRYPT_ROUNDS`` (12 by default; each step doubles the work)."""
    rounds = current_app.config.get("BCRYPT_ROUNDS", 12)
    hashed: bytes = off_the_loop(bcrypt.hashpw, _prehash(password), bcrypt.gensalt(rounds))
    return hashed.decode("ascii")


def check(password: str, hashed: str) -> bool:
    """Whether ``password`` matches the bcrypt hash ``hashed`` (constant time, as bcrypt compares)."""
    return bool(off_the_loop(bcrypt.checkpw, _prehash(password), hashed.encode("ascii")))


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
