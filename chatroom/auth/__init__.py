"""Facilitator accounts, as one blueprint (``auth``) in three modules.

- ``sessions``: the blueprint, the login cookie's loader, signing in, the pending second factor;
- ``signin``: sign up, sign in (password, then code when two-factor is on), sign out;
- ``account``: the account page, password change, two-factor set-up, recovery codes;
- ``reset``: password reset by mail (bodies in ``templates/email/``).
"""

from __future__ import annotations

from . import account, reset, signin
from .sessions import bp

__all__ = ["account", "bp", "reset", "signin"]
