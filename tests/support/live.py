"""Real servers and real HTTP clients for the live tests: gunicorn processes on loopback,
a cookie-keeping form client, and an SSE reader on a raw socket (with chunked decoding),
never the Flask test client."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

from .constants import ROOT

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
# Where the servers' logs go: conftest.py points it into pytest's own temporary folder (the last few runs are
# kept there, older ones removed), so a run leaves nothing behind in the checkout.
LOG_DIR = ROOT / ".services"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Poll ``/healthz`` on ``port`` until it answers 200, ``proc`` exits, or ``timeout`` passes."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return True
        except OSError:
            pass
        finally:
            conn.close()
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


class Server:
    """A gunicorn process serving the app with gevent workers, as the Procfile does."""

    def __init__(self, database_url: str, redis_url: str | None, workers: int = 1, **env: str) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "CHATROOM_ENV": "test",
            "DATABASE_URL": database_url,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "WEB_CONCURRENCY": str(workers),
            "STREAM_HEARTBEAT_SECONDS": "1",
            "PRESENCE_TTL_SECONDS": "3",
            "PRESENCE_PAGE_SECONDS": "3",  # a page load's presence, gone before the next test reuses its ids
            "GUNICORN_TIMEOUT": "30",
            **env,
        }
        self.env.pop("REDIS_URL", None)
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = LOG_DIR / f"gunicorn-{self.port}.log"

    def start(self) -> Server:
        self.log.parent.mkdir(exist_ok=True)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [GUNICORN, "-c", "gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if not wait_until_healthy(self.port, self.proc, 30):
            self.stop()  # never leave a half-started server behind (its Popen would warn when collected)
            raise RuntimeError(f"gunicorn did not start:\n{self.log.read_text()[-3000:]}")
        return self

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False)
        return [int(p) for p in out.stdout.split()]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # quick shutdown: open streams need no grace here
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Browser:
    """A person's browser, minus the JavaScript: cookies, forms with CSRF tokens, redirects not followed."""

    def __init__(self, port: int, timeout: float = 15) -> None:
        self.port = port
        self.timeout = timeout  # seconds each request may take before the client gives up (raises)
        self.cookies: dict[str, str] = {}
        self.csrf: str | None = None

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(self, method: str, path: str, body: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        headers = {"Cookie": self.cookie_header()}
        data = None
        if body is not None:
            data = urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            text = response.read().decode()
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
            found = re.search(r'name="csrf-token" content="([^"]+)"', text)
            if found:
                self.csrf = found.group(1)
            return response.status, dict(response.headers), text
        finally:
            conn.close()

    def get(self, path: str) -> tuple[int, str]:
        status, _, text = self.request("GET", path)
        return status, text

    def post(self, path: str, data: dict[str, str]) -> int:
        if self.csrf is None:
            self.get("/login")
        status, _, _ = self.request("POST", path, {"csrf_token": self.csrf or "", **data})
        if path in ("/login", "/logout", "/signup"):
            self.csrf = None  # a new session carries a new token
        return status

    def sign_in(self, email: str, password: str) -> Browser:
        self.get("/login")
        assert self.post("/login", {"email": email, "password": password}) == 303
        return self

    def join(self, code: str, alias: str, password: str) -> Browser:
        self.get(f"/r/{code}")
        assert self.post(f"/r/{code}/join", {"alias": alias, "password": password}) == 303
        return self

    def say(self, code: str, text: str, token: str | None = None, within: float = 60) -> None:
        """Post a message; on a dropped connection or a refusal (a worker killed or restarting, 429, 503) retry with
        the same token for up to ``within`` seconds, as a person resubmitting the form would (the token makes a
        resubmission count once)."""
        token = token or secrets.token_hex(16)
        deadline = time.time() + within
        outcomes: list[str] = []
        while True:  # at least once, even with within=0
            try:
                status = self.post(f"/r/{code}/messages", {"body": text, "token": token})
                if status == 303:
                    return
                outcomes.append(str(status))
            except OSError as error:
                outcomes.append(type(error).__name__)
            if time.time() >= deadline:
                break
            time.sleep(0.2)
        raise AssertionError(f"could not post {text!r} within {within} s: {outcomes[-10:]}")


@dataclass
class SseEvent:
    id: str | None = None
    event: str | None = None
    data: str = ""


@dataclass
class Stream:
    """One open event stream on a raw socket, parsed as a browser would."""

    port: int
    path: str
    cookie: str
    last_event_id: str | None = None
    sock: socket.socket | None = None
    status: int = 0
    _buffer: bytes = b""
    _chunked: bool = False
    _remaining: int | None = None
    raw: str = ""  # every body byte received, comments and retry hints included
    _text: str = ""
    closed: bool = False
    events: list[SseEvent] = field(default_factory=list)

    def open(self, timeout: float = 10) -> Stream:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        lines = [f"GET {self.path} HTTP/1.1", "Host: 127.0.0.1", f"Cookie: {self.cookie}", "Accept: text/event-stream"]
        if self.last_event_id:
            lines.append(f"Last-Event-ID: {self.last_event_id}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before headers")
            self._buffer += chunk
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        headers = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
        self.headers = headers
        self._chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        self._remaining = int(headers["content-length"]) if "content-length" in headers else None
        if not self._decode_body():
            self._ended()
        return self

    def _decode_body(self) -> bool:
        """Move complete body bytes from the socket buffer into text; False at the end of the body."""
        if not self._chunked:
            self.raw += self._buffer.decode()
            self._text += self._buffer.decode()
            if self._remaining is not None:
                self._remaining -= len(self._buffer)
            self._buffer = b""
            return self._remaining is None or self._remaining > 0
        while True:
            if b"\r\n" not in self._buffer:
                return True
            size_line, rest = self._buffer.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                return False
            if len(rest) < size + 2:
                return True
            self.raw += rest[:size].decode()
            self._text += rest[:size].decode()
            self._buffer = rest[size + 2 :]

    def read_events(self, timeout: float) -> Iterator[SseEvent]:
        """Yield events as they arrive until ``timeout`` passes or the server ends the stream."""
        deadline = time.time() + timeout
        while True:
            while "\n\n" in self._text:
                block, self._text = self._text.split("\n\n", 1)
                event = self._parse(block)
                if event is not None:
                    self.events.append(event)
                    if event.id is not None:
                        self.last_event_id = event.id
                    yield event
            remaining = deadline - time.time()
            if self.closed or self.sock is None or remaining <= 0:
                return
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._ended()
                continue
            self._buffer += chunk
            if not self._decode_body():
                self._ended()

    def _ended(self) -> None:
        """The server ended the response: what is already read is still delivered."""
        self.closed = True
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    @staticmethod
    def _parse(block: str) -> SseEvent | None:
        event = SseEvent()
        data: list[str] = []
        seen = False
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            seen = True
            if name == "data":
                data.append(value)
            elif name == "id":
                event.id = value
            elif name == "event":
                event.event = value
        event.data = "\n".join(data)
        return event if seen and (data or event.event or event.id) else None

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None
                self._buffer = b""
                self._text = ""


def message_seqs(events: list[SseEvent]) -> list[int]:
    """The numbers of the new messages among ``events`` (ids are ``seq.rev``; edits are swapped in place)."""
    return [
        int(e.id.split(".")[0])
        for e in events
        if e.id is not None and e.event is None and e.data.startswith("<li") and "hx-swap-oob" not in e.data
    ]


def presence_aliases(events: list[SseEvent]) -> list[str] | None:
    """Aliases here now (online or away) in the newest presence list among ``events`` (None if there was none)."""
    for event in reversed(events):
        if 'id="presence"' in event.data:
            here = r'<li data-member="\d+" data-state="(?:online|away)">(?:<bdi>)?([^<]+?)(?:</bdi>)?(?: <span|</li>)'
            return re.findall(here, event.data)
    return None


def wait_for(predicate, timeout: float = 10, interval: float = 0.05) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class Collector(threading.Thread):
    """A stream client that keeps reading in the background; ``.events`` grows as they arrive."""

    def __init__(self, stream: Stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.stop_flag = threading.Event()

    def run(self) -> None:
        while not self.stop_flag.is_set() and not self.stream.closed:
            for _ in self.stream.read_events(0.2):
                pass

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(5)
        self.stream.close()


@contextlib.contextmanager
def collecting(*streams: Stream) -> Iterator[list[Collector]]:
    """Read ``streams`` in the background for the ``with`` block; then stop and close them."""
    collectors = [Collector(stream) for stream in streams]
    for collector in collectors:
        collector.start()
    try:
        yield collectors
    finally:
        for collector in collectors:
            collector.stop()
