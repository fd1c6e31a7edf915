"""The floor in Python: a minimal gevent SSE server that writes each event straight to every socket.

It answers just enough of Chatroom's HTTP surface for ``bench/sse_load.py`` to run unchanged
against it (sign-up, room, join, post, the event stream), so both servers are driven by the same
tool with the same K, R and payload. A posted message is framed once as an SSE event shaped like
the app's own (the same markup as ``templates/chat/_message.html``, so the same size) and written
to every open stream with ``sendall``, one socket after another, by the greenlet that received the
POST. No database, no Redis, no templates, no authentication, no per-stream logic: what remains is
the cost of gevent's sockets and the kernel, which is what ``bench/run.sh`` compares us against.

Each stream is served by its own greenlet that waits for the client to hang up (the way a minimal
gevent server is written); a heartbeat greenlet writes a comment to every stream every 15 s.

    .venv/bin/python bench/reference_server.py --port 5099

Loopback only; one process.
"""

from __future__ import annotations

import argparse
import itertools
import secrets
import time
from html import escape
from urllib.parse import parse_qs

from gevent import monkey

monkey.patch_all()

import gevent  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

PAGE = (
    b'<!doctype html><html><head><meta name="csrf-token" content="reference"></head>'
    b"<body>the reference server</body></html>"
)
HEARTBEAT_SECONDS = 15.0


class Room:
    """Every open stream, and the message counter."""

    def __init__(self) -> None:
        self.streams: set[object] = set()
        self.seq = 0

    def publish(self, alias: str, body: str) -> None:
        """Frame the message once and write it to every stream (a dead socket is dropped)."""
        self.seq += 1
        now = time.gmtime()
        html = (
            f'<li class="message" id="message-{self.seq}" data-seq="{self.seq}" data-author="2">\n'
            f'<p class="message__meta"><span class="message__alias">{escape(alias)}</span> '
            f'<time datetime="{time.strftime("%Y-%m-%dT%H:%M:%S+00:00", now)}">{time.strftime("%H:%M", now)}</time> '
            f'<a class="message__more" href="/r/reference/messages/{self.seq}" '
            f'aria-label="Options for this message">…</a></p>\n'
            f'<p class="message__body" dir="auto">{escape(body)}</p>\n</li>'
        )
        frame = f"id: {self.seq}.0\n" + "".join(f"data: {line}\n" for line in html.split("\n")) + "\n"
        self.broadcast(chunk(frame.encode()))

    def broadcast(self, data: bytes) -> None:
        for sock in list(self.streams):
            try:
                sock.sendall(data)  # type: ignore[attr-defined]
            except OSError:
                self.streams.discard(sock)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


ROOM = Room()
SESSIONS = itertools.count(1)


def respond(sock: object, status: str, headers: list[tuple[str, str]], body: bytes = b"") -> None:
    head = [
        f"HTTP/1.1 {status}",
        f"Content-Length: {len(body)}",
        "Connection: keep-alive",
        *(f"{k}: {v}" for k, v in headers),
    ]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)  # type: ignore[attr-defined]


def handle(sock: object, address: tuple[str, int]) -> None:
    """One connection: requests until the client hangs up; an event stream keeps it."""
    buffer = b""
    while True:
        while b"\r\n\r\n" not in buffer:
            data = sock.recv(65536)  # type: ignore[attr-defined]
            if not data:
                return
            buffer += data
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines if ":" in line)}
        length = int(headers.get("content-length", "0"))
        while len(buffer) < length:
            data = sock.recv(65536)  # type: ignore[attr-defined]
            if not data:
                return
            buffer += data
        body, buffer = buffer[:length], buffer[length:]
        path = target.split("?", 1)[0]
        if method == "GET" and path.endswith("/events"):
            stream(sock)
            return
        if method == "POST":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            cookies = []
            if path.endswith("/messages"):
                ROOM.publish(headers.get("cookie", "poster")[-12:], form.get("body", ""))
                location = "/r/reference"
            elif path.endswith("/join"):
                cookies = [("Set-Cookie", f"session=seat-{next(SESSIONS)}-{secrets.token_hex(4)}; Path=/")]
                location = "/r/reference"
            elif path == "/rooms/":
                location = "/rooms/reference"
            else:
                location = "/rooms/new"
            respond(sock, "303 See Other", [("Location", location), *cookies])
        else:
            respond(sock, "200 OK", [("Content-Type", "text/html; charset=utf-8")], PAGE)


def stream(sock: object) -> None:
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n"
        "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
    )
    sock.sendall(head.encode() + chunk(b"retry: 2000\n\n: connected\n\n"))  # type: ignore[attr-defined]
    ROOM.streams.add(sock)
    try:
        while sock.recv(4096):  # type: ignore[attr-defined]
            pass  # until the client hangs up
    except OSError:
        pass
    finally:
        ROOM.streams.discard(sock)


def heartbeat() -> None:
    beat = chunk(b": heartbeat\n\n")
    while True:
        gevent.sleep(HEARTBEAT_SECONDS)
        ROOM.broadcast(beat)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5099)
    args = parser.parse_args()
    if not args.host.startswith("127."):
        raise SystemExit("loopback only")
    gevent.spawn(heartbeat)
    StreamServer((args.host, args.port), handle, backlog=4096).serve_forever()


if __name__ == "__main__":
    main()
