"""A redis-server of a test's own on loopback, to stop, pause or restart without touching the suite's."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from .constants import REQUIRE
from .live import free_port


class RedisServer:
    """``redis-server`` on a free loopback port, no persistence, its files in ``folder``.

    ``pause`` stops it with SIGSTOP (it hangs rather than refuses, as a frozen host does), ``resume`` lets it
    go on, ``kill`` ends it at once and ``start`` brings it back on the same port (empty).
    """

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if REQUIRE:
                pytest.fail("redis-server is not installed")
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.command += ["--dir", str(folder)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start it (again) and wait until it answers a PING."""
        self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        with redis.Redis.from_url(self.url, socket_timeout=1) as client:
            for _ in range(200):
                with contextlib.suppress(redis.RedisError):
                    if client.ping():
                        return
                time.sleep(0.05)
        pytest.fail(f"redis-server did not answer on port {self.port}")

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """End it now (SIGKILL after SIGCONT, so a paused one ends too); idempotent."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(10)
        self.proc = None
