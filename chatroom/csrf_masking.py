"""CSRF tokens masked afresh in every response, so a compressed page cannot leak one (BREACH).

A page that echoes request input (``?next=``, a form field sent back with its error) next
to a secret that is the same in every response lets an attacker who can read compressed
sizes guess the secret a character at a time: a right guess compresses better. Flask-WTF's
token is a signed copy of a per-session secret, the same for every page of a session (its
timestamp moves once a second). Every time a template asks for ``csrf_token()`` it now gets
``base64url(pad + (token XOR pad))`` with a fresh random pad: the same token, never the
same bytes twice, so there is nothing for compression to match. A submitted token is
unmasked before Flask-WTF checks it; an unmasked one (a page served before this change)
still works.

We mask rather than stop compressing pages with tokens: every page carries one (the
sign-out form, the htmx meta tag), and compression halves them (``chatroom/compression.py``).
"""

from __future__ import annotations

import base64
import binascii
import secrets

from flask import Flask, g, has_request_context
from flask_wtf.csrf import CSRFProtect, generate_csrf


def mask(token: str) -> str:
    """``token`` under a fresh random pad: ``base64url(pad + token XOR pad)``, with no ``=`` and no ``.``."""
    raw = token.encode("ascii")
    pad = secrets.token_bytes(len(raw))
    masked = pad + bytes(a ^ b for a, b in zip(raw, pad, strict=True))
    return base64.urlsafe_b64encode(masked).decode("ascii").rstrip("=")


def unmask(value: str) -> str:
    """The token ``mask`` hid in ``value``; ``value`` itself when it is not masked (Flask-WTF then judges it)."""
    if not value or "." in value:  # Flask-WTF's own tokens have dots; masked ones never do
        return value
    try:
        masked = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return value
    half, odd = divmod(len(masked), 2)
    if odd or not half:
        return value
    pad, hidden = masked[:half], masked[half:]
    try:
        return bytes(a ^ b for a, b in zip(hidden, pad, strict=True)).decode("ascii")
    except UnicodeDecodeError:
        return value


def masked_csrf_token() -> str:
    """This response's masked CSRF token: masked afresh for every response, and the same everywhere in one.

    One response carries the token several times (the htmx meta tag, each form); one pad per
    response lets those copies compress against each other (the room page's weight budget) while
    no two responses share any bytes of it, which is what defeats BREACH.
    """
    if not has_request_context():
        return mask(generate_csrf())
    if "masked_csrf_token" not in g:
        g.masked_csrf_token = mask(generate_csrf())
    return str(g.masked_csrf_token)


class MaskedCSRFProtect(CSRFProtect):
    """Flask-WTF's CSRF protection, handing out masked tokens and unmasking what comes back."""

    def init_app(self, app: Flask) -> None:
        """Bind to ``app``; ``csrf_token()`` in templates (global and context) is the masked one."""
        super().init_app(app)
        app.jinja_env.globals["csrf_token"] = masked_csrf_token
        app.context_processor(lambda: {"csrf_token": masked_csrf_token})  # after Flask-WTF's: this one wins

    def _get_csrf_token(self) -> str | None:
        token = super()._get_csrf_token()
        return unmask(token) if token else token
