"""A circuit breaker for calls to a service that may hang rather than fail (a paused Redis).

A Redis that is stopped (``SIGSTOP``, a frozen VM, a full network queue) does not refuse
connections: every call waits for its socket timeout. Even a short timeout, paid by every
request, adds up; so after one failure the caller skips the service for ``cooldown``
seconds and takes its fallback at once (presence: nobody here; throttles: allow). The
first call after the cool-down tries again: success closes the breaker, failure opens it
for another cool-down. No dependencies, so any layer may use it.
"""

from __future__ import annotations

import threading
import time


class Breaker:
    """Open for ``cooldown`` seconds after a failure; closed (calls go through) otherwise."""

    def __init__(self, cooldown: float = 5.0) -> None:
        self.cooldown = cooldown
        self._open_until = 0.0
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        """True while calls should not be tried (a failure less than ``cooldown`` seconds ago)."""
        return time.monotonic() < self._open_until

    def failed(self) -> None:
        """A call failed (or timed out): skip the service for ``cooldown`` seconds."""
        with self._lock:
            self._open_until = time.monotonic() + self.cooldown

    def succeeded(self) -> None:
        """A call went through: close the breaker."""
        if self._open_until:
            with self._lock:
                self._open_until = 0.0
