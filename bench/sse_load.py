"""SSE load benchmark for Chatroom: K live streams in one room, messages posted at R per second.

Everything goes through the real HTTP surface, as browsers would use it: a
facilitator signs up and opens a room, participants join, K streams open on
the room's event stream, a few more participants post messages through the
form endpoint at a fixed rate, and every stream checks what it receives
(nothing lost, nothing twice, ``seq`` strictly increasing by one) and how long
each message took from its POST to its arrival.

By default each stream is its own participant, as in a real room.
``--members N`` spreads the K streams over N participants (tabs of the same
people), which leaves out the presence traffic that every new participant
causes and so measures the message fan-out alone.

The HTTP client is hand-written on asyncio sockets (HTTP/1.1, keep-alive,
chunked transfer coding), so the tool needs nothing beyond the standard
library. It only ever talks to loopback addresses, and every phase has a
deadline.

    .venv/bin/python bench/sse_load.py --url http://127.0.0.1:5055 -k 1000 -r 10 --duration 20

``bench/run.sh`` starts throwaway services and a gunicorn server and runs this;
``bench/README.md`` says what the numbers mean.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import math
import os
import re
import resource
import secrets
import socket
import sys
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

PASSWORD = "bench-password-not-secret"  # the facilitator's (≥ 12 characters)
ROOM_PASSWORD = "bench-room"
DEFAULT_SOURCE_IPS = [f"127.0.0.{i}" for i in range(2, 10)]
CSRF_META = re.compile(rb'<meta name="csrf-token" content="([^"]+)"')
BODY_OPEN = b'<p class="message__body"'  # chat/_message.html (attributes may follow: dir="auto")
BODY_CLOSE = b"</p>"
MAX_RECONNECTS = 3  # per stream, during one run
RETRY_SECONDS = 2.0  # what the server's ``retry:`` asks browsers to wait
POSTER_GRACE_SECONDS = 15.0  # how long posts may run on after the schedule ends
SWEEP_CARRY = 32  # bytes a swept stream keeps from its last read (a split ``id:`` line is still read whole)
SWEEP_SLICE = 250  # swept streams read in one go before the loop gets a turn (bounds the sweep's own lag)

# The targets (bench/README.md): p99 latency by room size, server CPU, memory, and nothing lost.
LATENCY_TARGETS_MS = ((1000, 50.0), (5000, 150.0))
CPU_TARGET_US = 15.0
RSS_TARGET_KB = 15.0


# -- small helpers ---------------------------------------------------------------------------------------------


_T0 = time.monotonic()
LOG_PREFIX = ""  # a worker process's name


def log(message: str) -> None:
    """A progress line on stderr, stamped with the time since the start."""
    print(f"[{time.monotonic() - _T0:7.1f}s] {LOG_PREFIX}{message}", file=sys.stderr, flush=True)


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (``nan`` when empty)."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def require_loopback(host: str, what: str) -> str:
    """``host`` as an IPv4 loopback address; refuse anything else (this tool never leaves the machine)."""
    address = ipaddress.ip_address(socket.gethostbyname(host))
    if not address.is_loopback:
        raise SystemExit(f"{what} {host} is not a loopback address: this tool only talks to 127.0.0.0/8")
    return str(address)


def raise_nofile_limit() -> tuple[int, int]:
    """Raise the soft open-files limit to the hard limit; returns (soft, hard) afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def self_sys_seconds() -> float:
    """The kernel's share of this process's CPU (socket reads, and the ACKs they send)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


# -- the server's processes, from /proc ------------------------------------------------------------------------


@dataclass
class ProcSample:
    """One process at one moment: resident memory (KB), CPU used so far (s), open sockets."""

    rss_kb: int
    cpu_s: float
    sockets: int = 0
    sys_s: float = 0.0  # the kernel's share of cpu_s


class ServerProcesses:
    """The gunicorn master and its workers: found once, re-listed at every sample (workers may restart)."""

    def __init__(self, roots: list[int], *, explicit: bool) -> None:
        self.roots = roots
        self.explicit = explicit  # --server-pids: exactly those, no children
        self.seen: set[int] = set()
        self._tick = os.sysconf("SC_CLK_TCK")

    @classmethod
    def find(cls, pids: str | None, pidfile: str | None, port: int) -> ServerProcesses:
        """From ``--server-pids``, else ``--server-pidfile`` (the master), else whoever listens on ``port``."""
        if pids:
            return cls([int(p) for p in pids.split(",") if p.strip()], explicit=True)
        if pidfile:
            return cls([int(Path(pidfile).read_text().strip())], explicit=False)
        owners = _listening_pids(port)
        if not owners:
            raise SystemExit(f"no process listens on port {port}: pass --server-pids or --server-pidfile")
        parents = {pid: _ppid(pid) for pid in owners}
        return cls(sorted(pid for pid, ppid in parents.items() if ppid not in owners), explicit=False)

    def pids(self) -> list[int]:
        """The roots and (unless given explicitly) all their descendants that are alive now."""
        if self.explicit:
            found = [pid for pid in self.roots if Path(f"/proc/{pid}").exists()]
        else:
            children: dict[int, list[int]] = {}
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    ppid = _ppid(int(entry.name))
                    if ppid is not None:
                        children.setdefault(ppid, []).append(int(entry.name))
            found, todo = [], list(self.roots)
            while todo:
                pid = todo.pop()
                if Path(f"/proc/{pid}").exists():
                    found.append(pid)
                    todo.extend(children.get(pid, []))
        self.seen.update(found)
        return sorted(found)

    def sample(self, *, sockets: bool = False) -> dict[int, ProcSample]:
        """RSS and CPU of every server process now; ``sockets`` also counts their open sockets (slower)."""
        out = {}
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue  # exited between listing and reading
            rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
            fields = stat.rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / self._tick  # utime, stime (fields 14 and 15 of stat)
            out[pid] = ProcSample(rss, cpu, _socket_count(pid) if sockets else 0, int(fields[12]) / self._tick)
        return out


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _socket_count(pid: int) -> int:
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                count += os.readlink(fd.path).startswith("socket:")
    return count


def _listening_pids(port: int) -> set[int]:
    """Processes holding a listening TCP socket on ``port`` (gunicorn's master and workers share it)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{parts[9]}]")
    owners = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.scandir(entry / "fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(fd.path) in inodes:
                        owners.add(int(entry.name))
                        break
    return owners


def total(samples: dict[int, ProcSample], attr: str) -> float:
    return sum(getattr(s, attr) for s in samples.values())


def cpu_delta(before: dict[int, ProcSample], after: dict[int, ProcSample]) -> float:
    """CPU seconds the server spent between two samples (a process born in between counts from zero)."""
    return sum(s.cpu_s - (before[pid].cpu_s if pid in before else 0.0) for pid, s in after.items())


# -- a minimal HTTP/1.1 client for the setup and the posts ------------------------------------------------------


class HttpError(Exception):
    """An answer the setup did not expect."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers other than Set-Cookie keep the last
    cookies: list[str]  # the raw Set-Cookie values
    body: bytes

    def csrf(self) -> str:
        match = CSRF_META.search(self.body)
        if match is None:
            raise HttpError(f"no csrf-token meta in a {self.status} page")
        return match.group(1).decode()


class HttpSession:
    """One keep-alive connection and a cookie jar, like a browser tab; reconnects when the server hangs up."""

    def __init__(self, host: str, port: int, *, local_ip: str | None = None, timeout: float = 30.0) -> None:
        self.host, self.port, self.local_ip, self.timeout = host, port, local_ip, timeout
        self.cookies: dict[str, str] = {}
        self.csrf = ""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    async def request(self, method: str, path: str, form: dict[str, str] | None = None) -> Response:
        """Send one request and read the whole answer; a stale keep-alive connection is retried once.

        Retrying is safe for every request this tool makes: posts carry an idempotency token.
        """
        body = urlencode(form).encode() if form is not None else b""
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Connection: keep-alive"]
        if self.cookies:
            head.append(f"Cookie: {self.cookie_header()}")
        if form is not None:
            head += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        for attempt in (1, 2):
            reused = self._writer is not None
            if not reused:
                await self._connect()
            try:
                return await asyncio.wait_for(self._exchange(raw, method), self.timeout)
            except (ConnectionError, asyncio.IncompleteReadError) as error:
                await self.close()
                if not reused or attempt == 2:
                    raise HttpError(f"{method} {path}: connection failed: {error!r}") from error
            except TimeoutError:
                await self.close()
                raise HttpError(f"{method} {path}: no answer in {self.timeout:.0f} s") from None
        raise AssertionError("unreachable")

    async def _connect(self) -> None:
        local = (self.local_ip, 0) if self.local_ip else None
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, local_addr=local), self.timeout
        )

    async def _exchange(self, raw: bytes, method: str) -> Response:
        assert self._reader is not None and self._writer is not None
        reader = self._reader
        self._writer.write(raw)
        await self._writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionResetError("closed before answering")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        cookies: list[str] = []
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise asyncio.IncompleteReadError(b"", None)
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                cookies.append(value)
            headers[name] = value
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(parts)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body = await reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            await self.close()
        for value in cookies:
            self._store_cookie(value)
        response = Response(status, headers, cookies, body)
        if b"csrf-token" in body:
            with contextlib.suppress(HttpError):
                self.csrf = response.csrf()
        return response

    def _store_cookie(self, value: str) -> None:
        pair, *attributes = value.split(";")
        name, _, cookie = pair.strip().partition("=")
        expired = any(a.strip().lower() in ("max-age=0", "expires=thu, 01 jan 1970 00:00:00 gmt") for a in attributes)
        if expired:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = cookie

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)

    async def expect(self, status: int, method: str, path: str, form: dict[str, str] | None = None) -> Response:
        """A request whose answer must have ``status``; adds the CSRF token to forms."""
        if form is not None:
            form = {"csrf_token": self.csrf, **form}
        response = await self.request(method, path, form)
        if response.status != status:
            snippet = re.sub(rb"\s+", b" ", response.body[:300]).decode("utf-8", "replace")
            raise HttpError(f"{method} {path}: expected {status}, got {response.status}: {snippet}")
        return response


# -- setup: a facilitator, a room, participants ------------------------------------------------------------------


@dataclass
class Member:
    """A participant who has joined: the cookies that identify them and a CSRF token for their forms."""

    alias: str
    cookie: str
    csrf: str


async def create_room(host: str, port: int, nonce: str) -> str:
    """Sign up a facilitator and create a room open from a minute ago for four hours; returns its code."""
    facilitator = HttpSession(host, port)
    try:
        await facilitator.expect(200, "GET", "/signup")
        await facilitator.expect(
            303,
            "POST",
            "/signup",
            {"email": f"bench-{nonce}@example.org", "name": f"Bench {nonce}", "password": PASSWORD},
        )
        # Signing up does not sign in (the answer must not tell whether the address was new): sign in.
        await facilitator.expect(200, "GET", "/login")
        await facilitator.expect(303, "POST", "/login", {"email": f"bench-{nonce}@example.org", "password": PASSWORD})
        await facilitator.expect(200, "GET", "/rooms/new")  # signing in starts a new session: a new token
        start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
        created = await facilitator.expect(
            303,
            "POST",
            "/rooms/",
            {
                "title": f"Bench {nonce}",
                "timezone": "UTC",
                "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
                "ends_at": (start + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"),
                "password": ROOM_PASSWORD,
            },
        )
        return urlsplit(created.headers["location"]).path.rstrip("/").rsplit("/", 1)[-1]
    finally:
        await facilitator.close()


async def join_page(host: str, port: int, code: str) -> HttpSession:
    """A visitor who has opened the join page: a session cookie and its CSRF token, nothing more."""
    visitor = HttpSession(host, port)
    try:
        await visitor.expect(200, "GET", f"/r/{code}")
    finally:
        await visitor.close()
    return visitor


async def join(
    host: str, port: int, code: str, alias: str, seed: HttpSession, *, local_ip: str | None, room_page: bool
) -> Member:
    """Join as ``alias``, starting from the join-page session ``seed`` (copied, so one GET serves every join).

    The session cookie is client-side and the join answer sets a new one with
    the seat in it, so each copy becomes a distinct participant. ``room_page``
    then loads the room as a browser would and takes its CSRF token.
    """
    session = HttpSession(host, port, local_ip=local_ip)
    session.cookies, session.csrf = dict(seed.cookies), seed.csrf
    try:
        await session.expect(303, "POST", f"/r/{code}/join", {"alias": alias, "password": ROOM_PASSWORD})
        if room_page:
            await session.expect(200, "GET", f"/r/{code}")
        return Member(alias, session.cookie_header(), session.csrf)
    finally:
        await session.close()


async def bounded(
    jobs: list[Callable[[], Awaitable[Any]]], limit: int, *, label: str, deadline: float | None = None
) -> tuple[list[Any], Counter[str]]:
    """Run ``jobs`` at most ``limit`` at a time, none past ``deadline`` (monotonic); returns (results, errors)."""
    semaphore = asyncio.Semaphore(limit)
    results: list[Any] = []
    errors: Counter[str] = Counter()
    last_report = time.monotonic()

    async def run(job: Callable[[], Awaitable[Any]]) -> None:
        nonlocal last_report
        async with semaphore:
            remaining = math.inf if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                errors[f"{label}: deadline passed before it started"] += 1
                return
            try:
                results.append(await asyncio.wait_for(job(), None if remaining == math.inf else remaining))
            except (HttpError, OSError, TimeoutError) as error:
                errors[f"{label}: {type(error).__name__} {error!s:.160}"] += 1
        if time.monotonic() - last_report >= 5:
            last_report = time.monotonic()
            log(f"{label}: {len(results)}/{len(jobs)} done, {sum(errors.values())} failed")

    await asyncio.gather(*(run(job) for job in jobs))
    return results, errors


# -- the streams ---------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What all streams received, shared by every stream and updated as events arrive."""

    nonce: bytes
    running: bool = True
    bytes: int = 0  # raw TCP bytes from every stream
    deliveries: int = 0  # message events from this run, duplicates included
    unique: int = 0  # (stream, message) pairs seen at least once
    duplicates: int = 0
    gaps: int = 0  # seq jumped ahead of previous + 1
    backwards: int = 0  # seq went back without being a duplicate
    other_events: int = 0  # presence, typing: events that are not messages
    comments: int = 0  # heartbeats, ``: connected``, ``retry:``
    foreign: int = 0  # message events not posted by this run
    malformed: int = 0
    closes: int = 0  # ``close`` events (room ended, member removed)
    reconnects: int = 0
    sweep: float = 0.0  # > 0: counted streams are plain sockets read every this many seconds (``sweep_streams``)
    latencies: array[float] = field(default_factory=lambda: array("d"))  # seconds, one per first delivery
    numbers: array[int] = field(default_factory=lambda: array("l"))  # the message number of each latency
    errors: Counter[str] = field(default_factory=Counter)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class StreamClient:
    """One open room tab: its stream connection, the cursor, and which messages it has seen."""

    def __init__(
        self, member: Member, local_ip: str, host: str, port: int, code: str, tally: Tally, *, probe: bool = True
    ) -> None:
        self.member, self.local_ip = member, local_ip
        self.host, self.port, self.code, self.tally = host, port, code, tally
        self.probe = probe  # parse every event (order, duplicates, latency); else only count message ids
        self.count = 0  # message events received (counted streams)
        self.last_seq = 0  # the room is new: ``after=0``
        self.last_id = b""  # the last SSE id received, sent back as Last-Event-ID on a reconnect
        self.seen = bytearray(256)  # by message number
        self.reconnects = 0
        self.dropped = 0  # times the server ended this stream (not counting a storm we caused)
        self.heartbeats = 0
        self.storming = False  # we are dropping it on purpose: do not reconnect on our own
        self.protocol: StreamProtocol | None = None
        self.sock: socket.socket | None = None  # a swept (counted) stream's socket, while it is open
        self.carry = b""  # a swept stream's last bytes: a pattern split between two reads counts once

    def request(self) -> bytes:
        lines = [
            f"GET /r/{self.code}/events?after=0 HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Accept: text/event-stream",
            "Cache-Control: no-cache",
            f"Cookie: {self.member.cookie}",
        ]
        if self.last_id:
            lines.append(f"Last-Event-ID: {self.last_id.decode()}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def connect(self) -> StreamClient:
        """Open the stream and wait for its first bytes. :raise OSError/HttpError: it did not open."""
        if not self.probe and self.tally.sweep > 0:
            return await self.connect_swept()
        loop = asyncio.get_running_loop()
        protocol = StreamProtocol(self, loop)
        self.protocol = protocol
        try:
            await loop.create_connection(lambda: protocol, self.host, self.port, local_addr=(self.local_ip, 0))
            await protocol.first_bytes
        except BaseException:  # a timeout cancels us: do not leave the socket open
            protocol.first_bytes.cancel()  # nobody waits for it any more
            protocol.close()
            raise
        return self

    async def connect_swept(self) -> StreamClient:
        """Open a counted stream on a plain non-blocking socket that ``sweep_streams`` reads, not the event loop.

        The head and the first bytes are read here (through the loop); after that
        nothing watches the socket: the sweeper reads what has piled up every
        ``--sweep`` seconds, so thousands of counted streams cost one ``recv`` each per
        sweep instead of a callback per event. :raise OSError/HttpError: it did not open.
        """
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.bind((self.local_ip, 0))
            await loop.sock_connect(sock, (self.host, self.port))
            await loop.sock_sendall(sock, self.request())
            head = b""
            while (end := head.find(b"\r\n\r\n")) < 0 or len(head) == end + 4:
                data = await loop.sock_recv(sock, 65536)
                if not data:
                    raise ConnectionResetError("stream closed before its first bytes")
                head += data
                if end < 0 and len(head) > 65536:
                    raise HttpError("stream: response head too long")
            status = head.split(b" ", 2)[1]
            if status != b"200" or b"text/event-stream" not in head[:end].lower():
                raise HttpError(f"stream: HTTP {status.decode()} instead of an event stream")
        except BaseException:  # a timeout cancels us: do not leave the socket open
            sock.close()
            raise
        self.tally.bytes += len(head)
        self.carry = b""
        self.sock = sock
        self.count_swept(bytearray(head[end + 4 :]), 0, len(head) - end - 4)
        return self

    def sweep(self, buf: bytearray, view: memoryview) -> None:
        """Read whatever a counted stream's socket holds (``buf`` is scratch space), count it; notice its end."""
        sock = self.sock
        if sock is None:
            return
        while True:
            carry = self.carry
            start = len(carry)
            buf[:start] = carry
            try:
                n = sock.recv_into(view[start:])
            except BlockingIOError:
                return
            except OSError as error:
                self.swept_end(repr(error))
                return
            if not n:
                self.swept_end("EOF")
                return
            self.tally.bytes += n
            self.count_swept(buf, start, start + n)
            if start + n < len(buf):
                return  # it had less than the buffer holds: nothing more is waiting

    def count_swept(self, buf: bytearray, start: int, end: int) -> None:
        """Count message ids, heartbeats and ``close`` events in ``buf[start:end]`` (``buf[:start]`` is the carry).

        The bytes are still in chunked transfer coding: the server writes every event
        as one chunk, so chunk sizes never split a pattern. A match that lies wholly in
        the carry was counted by the previous read, so each pattern is searched from
        ``len(pattern) - 1`` bytes before the new bytes on.
        """
        self.count += buf.count(b"id: ", max(0, start - 3), end)
        at = buf.rfind(b"id: ", 0, end)  # the newest id whose line is whole (it may have begun in the carry)
        line_end = buf.find(b"\n", at, end) if at >= 0 else -1
        if at > 0 and line_end < 0:  # its line is still coming: the one before it
            at = buf.rfind(b"id: ", 0, at)
            line_end = buf.find(b"\n", at, end) if at >= 0 else -1
        if line_end > 0:
            self.last_id = bytes(buf[at + 4 : line_end]).strip()  # where a reconnect resumes
        if buf.find(b": heartbeat", max(0, start - 10), end) >= 0:
            self.heartbeats += buf.count(b": heartbeat", max(0, start - 10), end)
        if buf.find(b"event: close", max(0, start - 11), end) >= 0:
            self.tally.closes += buf.count(b"event: close", max(0, start - 11), end)
        self.carry = bytes(buf[max(0, end - SWEEP_CARRY) : end])

    def swept_end(self, why: str) -> None:
        """A swept stream's socket reached its end (the server closed it, or it was reset)."""
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()
        if self.storming:
            return
        if self.tally.running:
            self.tally.errors[f"stream ended by the server: {why:.80}"] += 1
            self.connection_lost()

    def close(self) -> None:
        """Drop the stream's connection now, whichever kind it is."""
        if self.protocol is not None:
            self.protocol.close()
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()

    def connection_lost(self) -> None:
        """The server ended an open stream: reconnect as a browser would, a bounded number of times."""
        tally = self.tally
        if self.storming:
            return
        self.dropped += 1
        if not tally.running or self.reconnects >= MAX_RECONNECTS:
            return
        self.reconnects += 1
        tally.reconnects += 1

        async def again() -> None:
            await asyncio.sleep(RETRY_SECONDS)
            if tally.running:
                try:
                    await asyncio.wait_for(self.connect(), 15)
                except (OSError, TimeoutError, HttpError) as error:
                    tally.errors[f"stream reconnect: {type(error).__name__} {error!s:.120}"] += 1

        task = asyncio.get_running_loop().create_task(again())
        tally.tasks.add(task)
        task.add_done_callback(tally.tasks.discard)

    def on_message(self, event: bytes | bytearray, start: int, end: int, now: float) -> None:
        """One ``id:`` event in ``event[start:end]``: check its order, read our number and time stamp.

        The id is ``seq`` or ``seq.rev``. An id-only event (it just moves the
        client's cursor) or an in-place change (``hx-swap-oob``) is no new message.
        """
        tally = self.tally
        line_end = event.find(b"\n", start, end)
        if line_end < 0:
            line_end = end  # an id-only event
        self.last_id = bytes(event[start + 3 : line_end]).strip()
        at = event.find(BODY_OPEN, line_end, end)
        if at < 0 or event.find(b"hx-swap-oob", line_end, at) >= 0:
            tally.other_events += 1
            return
        seq = int(self.last_id.split(b".", 1)[0])
        at = event.find(b">", at, end) + 1
        stop = event.find(BODY_CLOSE, at, end)
        words = event[at:stop].split() if at and stop >= 0 else []
        if len(words) != 4 or words[0] != b"bench":
            tally.malformed += 1
            return
        if words[1] != tally.nonce:
            tally.foreign += 1
            return
        number = int(words[2])
        tally.deliveries += 1
        if number >= len(self.seen):
            self.seen.extend(bytes(number + 256 - len(self.seen)))
        if self.seen[number]:
            tally.duplicates += 1
            return
        self.seen[number] = 1
        tally.unique += 1
        if seq != self.last_seq + 1:
            if seq > self.last_seq:
                tally.gaps += 1
            else:
                tally.backwards += 1
        self.last_seq = max(self.last_seq, seq)
        tally.latencies.append(now - float(words[3]))
        tally.numbers.append(number)


class StreamProtocol(asyncio.Protocol):
    """One stream connection: the HTTP head, then chunked transfer coding, then SSE events, incrementally.

    Events are split on blank lines and only ``id:`` events (messages) are
    looked into: presence lists can be large, so nothing else is parsed.
    """

    def __init__(self, client: StreamClient, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.tally = client.tally
        self.transport: asyncio.Transport | None = None
        self.first_bytes: asyncio.Future[None] = loop.create_future()
        self.failed = False
        self.head = bytearray()
        self.in_head = True
        self.chunked = False
        self.raw = bytearray()  # chunked bytes not decoded yet
        self.chunk_left = 0  # > 0: payload bytes to come; 0: a size line; -1: the CRLF after a chunk
        self.events = bytearray()  # decoded SSE text not split into events yet
        self.scan = 0  # where to resume looking for the end of an event
        self.carry = b""  # a counted stream's last bytes (an id split between two reads)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.client.request())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.first_bytes.done():
            self.first_bytes.set_exception(ConnectionResetError(f"stream closed before its first bytes: {exc!r}"))
        elif self.client.storming or self.client.protocol is not self:
            pass  # dropped on purpose (a reconnect storm), or an old connection
        elif self.tally.running and not self.failed:
            self.tally.errors[f"stream ended by the server: {exc!r:.80}"] += 1
            self.client.connection_lost()

    def fail(self, reason: str) -> None:
        """Give up on this connection (a browser's EventSource gives up on a non-200 answer too)."""
        self.failed = True
        if not self.first_bytes.done():
            self.first_bytes.set_exception(HttpError(reason))
        else:
            self.tally.errors[reason] += 1
        self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        self.tally.bytes += len(data)
        if self.in_head:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > 65536:
                    self.fail("stream: response head too long")
                return
            head, data = bytes(self.head[:end]).lower(), bytes(self.head[end + 4 :])
            self.in_head, self.head = False, bytearray()
            status = head.split(b" ", 2)[1]
            if status != b"200" or b"text/event-stream" not in head:
                self.fail(f"stream: HTTP {status.decode()} instead of an event stream")
                return
            self.chunked = b"transfer-encoding: chunked" in head
        if self.chunked:
            data = self.dechunk(data)
        if data:
            if not self.first_bytes.done():
                self.first_bytes.set_result(None)
            self.feed(data)

    def dechunk(self, data: bytes) -> bytes:
        """Strip the chunked transfer coding from what has arrived; a partial chunk waits for the rest."""
        if self.chunk_left == 0 and not self.raw:  # the usual case: exactly one whole chunk (one event)
            eol = data.find(b"\r\n")
            if eol > 0 and b";" not in data[:eol]:
                start = eol + 2
                end = start + int(data[:eol], 16)
                if end > start and len(data) == end + 2:
                    return data[start:end]
        raw = self.raw
        raw += data
        out = bytearray()
        pos, size = 0, len(raw)
        while pos < size:
            left = self.chunk_left
            if left > 0:
                take = min(left, size - pos)
                out += raw[pos : pos + take]
                pos += take
                self.chunk_left = -1 if take == left else left - take
            elif left == -1:
                if size - pos < 2:
                    break
                pos += 2
                self.chunk_left = 0
            else:
                eol = raw.find(b"\r\n", pos)
                if eol < 0:
                    break
                length = int(raw[pos:eol].split(b";")[0], 16)
                pos = eol + 2
                if length == 0:  # the last chunk: the server ended the response
                    raw.clear()
                    return bytes(out)
                self.chunk_left = length
        del raw[:pos]
        return bytes(out)

    def feed(self, data: bytes) -> None:
        """Split complete SSE events off the decoded text and hand the messages to the client.

        A counted (not probed) stream only counts message ids and heartbeats: a few hundred
        nanoseconds per event instead of a parse, so the tool keeps up with K in the thousands.
        """
        client = self.client
        if not client.probe:
            text = self.carry + data  # an id split between two reads still counts once
            found = text.count(b"id: ")
            if found:
                client.count += found
                at = text.rfind(b"id: ")
                end = text.find(b"\n", at)
                if end > 0:
                    client.last_id = bytes(text[at + 4 : end])  # where a reconnect resumes
            client.heartbeats += data.count(b": heartbeat")
            self.tally.closes += data.count(b"event: close")
            self.carry = text[-3:]
            return
        if not self.events and data.find(b"\n\n") == len(data) - 2 and data.startswith(b"id:"):
            self.client.on_message(data, 0, len(data) - 2, time.time())  # the usual case: one whole message
            return
        events = self.events
        events += data
        end = events.find(b"\n\n", self.scan)
        if end < 0:
            self.scan = max(len(events) - 1, 0)
            return
        now = time.time()
        tally, client, start = self.tally, self.client, 0
        while end >= 0:
            if events.startswith(b"id:", start):
                client.on_message(events, start, end, now)
            elif events.startswith((b":", b"retry:"), start):
                tally.comments += 1
                client.heartbeats += events.startswith(b": heartbeat", start)
            elif events.startswith(b"event: close", start):
                tally.closes += 1
            else:
                tally.other_events += 1
            start = end + 2
            end = events.find(b"\n\n", start)
        del events[:start]
        self.scan = max(len(events) - 1, 0)


# -- posting ---------------------------------------------------------------------------------------------------------


@dataclass
class PostLog:
    """What the posters did: which message numbers the server accepted, and how long each POST took."""

    ok: set[int] = field(default_factory=set)
    durations_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    started: int = 0  # POSTs sent (the rest were still queued when the posters gave up)
    behind_s: float = 0.0  # the most a send started after its scheduled time
    first_send: float = 0.0
    last_send: float = 0.0


async def post_messages(
    sessions: list[HttpSession],
    code: str,
    nonce: str,
    rate: float,
    duration: float,
    posts: PostLog,
    *,
    flood: bool = False,
) -> None:
    """Post ``rate × duration`` messages on a fixed schedule, each through whichever poster is free.

    ``flood``: every poster posts again as soon as its last post is answered, for ``duration``
    seconds (durable posts per second). A body is ``bench <nonce> <number> <time.time() at send>``;
    the streams read it back.
    """
    loop = asyncio.get_running_loop()
    numbers = iter(range(10**9))

    async def post_one(session: HttpSession, number: int, due: float) -> None:
        posts.behind_s = max(posts.behind_s, loop.time() - due)
        posts.started += 1
        sent = time.time()
        posts.first_send = posts.first_send or sent
        posts.last_send = sent
        form = {"token": secrets.token_hex(16), "body": f"bench {nonce} {number} {sent:.6f}"}
        try:
            await session.expect(303, "POST", f"/r/{code}/messages", form)
        except HttpError as error:
            posts.errors[f"{error!s:.160}"] += 1
            return
        posts.durations_ms.append((time.time() - sent) * 1000)
        posts.ok.add(number)

    if flood:
        end = loop.time() + duration

        async def flooder(session: HttpSession) -> None:
            while loop.time() < end:
                await post_one(session, next(numbers), loop.time())

        await asyncio.gather(*(flooder(session) for session in sessions))
        return

    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()

    async def poster(session: HttpSession) -> None:
        while (item := await queue.get()) is not None:
            await post_one(session, *item)

    workers = [loop.create_task(poster(session)) for session in sessions]
    start = loop.time()
    for number in range(round(rate * duration)):
        due = start + number / rate
        await asyncio.sleep(max(0.0, due - loop.time()))
        queue.put_nowait((next(numbers), due))
    for _ in workers:
        queue.put_nowait(None)
    _, pending = await asyncio.wait(workers, timeout=POSTER_GRACE_SECONDS)
    for task in pending:
        task.cancel()
        posts.errors[f"a poster was still busy {POSTER_GRACE_SECONDS:g} s after the schedule ended"] += 1


def db_stats(url: str | None) -> dict[str, int]:
    """PostgreSQL's own counters (transactions, and index or table scans per table); {} without a URL."""
    if not url:
        return {}
    import psycopg2  # the app's driver, in the same virtualenv

    url = url.replace("postgresql+psycopg2://", "postgresql://")
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()")
        stats = {"transactions": int(cur.fetchone()[0])}
        cur.execute("SELECT relname, coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables")
        stats.update({f"scans_{name}": int(n) for name, n in cur.fetchall()})
    return stats


def stats_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """What happened between two ``db_stats`` (minus the tool's own transaction)."""
    delta = {
        k: after[k] - before.get(k, 0)
        for k in after
        if k in ("transactions", "scans_messages", "scans_memberships", "scans_rooms")
    }
    if "transactions" in delta:
        delta["transactions"] -= 1
    return delta


async def watch_loop_lag(running: Callable[[], bool], lags: list[float], period: float = 0.05) -> None:
    """Sample how late this process's event loop wakes up (while ``running()``): late wake-ups inflate latencies."""
    loop = asyncio.get_running_loop()
    while running():
        due = loop.time() + period
        await asyncio.sleep(period)
        lags.append(max(0.0, loop.time() - due))


async def sweep_streams(tally: Tally, clients: list[StreamClient], period: float) -> None:
    """Read every swept (counted) stream once per ``period`` seconds, in slices spread over the period.

    Each slice reads ``SWEEP_SLICE`` sockets (one ``recv`` each, usually) and then
    gives the loop back until the next slice is due, so the probes are never held
    up for long. Runs until ``tally.running`` is false; ``sweep_all`` does a last
    full sweep before anyone reads the counts.
    """
    loop = asyncio.get_running_loop()
    buf = bytearray(1 << 18)
    view = memoryview(buf)
    swept = [c for c in clients if not c.probe]
    slices = max(1, math.ceil(len(swept) / SWEEP_SLICE))
    while tally.running:
        began = loop.time()
        for i in range(slices):
            for client in swept[i * SWEEP_SLICE : (i + 1) * SWEEP_SLICE]:
                client.sweep(buf, view)
            await asyncio.sleep(max(0.0, began + period * (i + 1) / slices - loop.time()))
            if not tally.running:
                return


def sweep_all(clients: list[StreamClient]) -> None:
    """Read every swept stream now, all at once (before counts are read: the last deliveries count too)."""
    buf = bytearray(1 << 18)
    view = memoryview(buf)
    for client in clients:
        if client.sock is not None:
            client.sweep(buf, view)


async def wait_until_quiet(status: Callable[[], dict[str, int]], quiet: float, limit: float) -> tuple[float, bool]:
    """Wait until no event but comments arrives for ``quiet`` seconds (at most ``limit``).

    ``status`` gives the streams' counters now (``other_events``, ``bytes``).
    Heartbeats never stop (each stream sends one 15 s after its last event), so
    they do not count. Returns (seconds waited, whether it went quiet).
    """
    start = time.monotonic()
    last_count, last_change, last_report = status()["other_events"], start, start
    while (now := time.monotonic()) - start < limit:
        counters = status()
        if counters["other_events"] != last_count:
            last_count, last_change = counters["other_events"], now
        elif now - last_change >= quiet:
            return now - start, True
        if now - last_report >= 5:
            last_report = now
            log(
                f"settling: {counters['bytes'] / 1e6:,.0f} MB and {counters['other_events']:,} "
                "presence/typing events so far"
            )
        await asyncio.sleep(0.25)
    return time.monotonic() - start, False


# -- the streams of one process, and of worker processes ---------------------------------------------------------

# The counters of a process's ``Tally`` that its report carries as they are.
TALLIED = (
    "bytes",
    "deliveries",
    "unique",
    "duplicates",
    "gaps",
    "backwards",
    "other_events",
    "comments",
    "foreign",
    "malformed",
    "closes",
    "reconnects",
)
# What a process's streams report at the end (``LocalStreams.report``): these add up over processes.
SUMMED = (
    "open",
    *TALLIED,
    "counted_streams",
    "counted_ok",
    "counted_extra",
    "counted_total",
    "probe_unique_ok",
)
CONCATENATED = ("latencies", "numbers", "lags")
STATUS_EVERY = 0.25  # seconds between a worker's status lines


class WorkerGone(Exception):
    """A worker process ended or answered out of turn."""


@dataclass
class StreamSpec:
    """One stream to open: the participant's cookie, the source address, and whether it is a probe."""

    cookie: str
    local_ip: str
    probe: bool


class LocalStreams:
    """The streams this process holds: it opens, sweeps, storms and counts them, and reports at the end.

    With ``--processes 1`` the run holds one of these; with more, each worker
    process holds one and :class:`RemoteStreams` drives it over a pipe. The
    methods are the same on both, so the phases of :class:`Bench` do not care.
    """

    def __init__(
        self, args: argparse.Namespace, host: str, port: int, code: str, nonce: str, specs: list[StreamSpec]
    ) -> None:
        self.args = args
        self.tally = Tally(nonce=nonce.encode(), sweep=args.sweep)
        self.clients = [
            StreamClient(Member("", s.cookie, ""), s.local_ip, host, port, code, self.tally, probe=s.probe)
            for s in specs
        ]
        self.counted = [c for c in self.clients if not c.probe]
        self.sweeper: asyncio.Task[None] | None = None
        self.ok_count = 1 << 62  # messages posted: counts above it are duplicates (known once posting ends)
        self.opened = 0
        self.lags: list[float] = []  # this process's loop lag while posting (workers only: Bench watches its own)
        self.lag_watch: asyncio.Task[None] | None = None

    async def open(self, concurrency: int, timeout: float) -> int:
        """Open every stream, ``concurrency`` at a time, within ``timeout`` seconds; returns how many opened."""
        if self.tally.sweep > 0 and self.counted:
            self.sweeper = asyncio.get_running_loop().create_task(
                sweep_streams(self.tally, self.clients, self.tally.sweep)
            )
        opened, errors = await bounded(
            [client.connect for client in self.clients],
            concurrency,
            label="open streams",
            deadline=time.monotonic() + timeout,
        )
        self.tally.errors.update(errors)
        self.opened = len(opened)
        return self.opened

    def status(self) -> dict[str, int]:
        """The counters the phases watch: bytes, presence/typing events, drops, (stream, message) pairs received."""
        tally, ok = self.tally, self.ok_count
        return {
            "bytes": tally.bytes,
            "other_events": tally.other_events,
            "dropped": sum(c.dropped for c in self.clients),
            "received": tally.unique + sum(min(c.count, ok) for c in self.counted),
        }

    async def posting(self) -> None:
        """Posting starts: a worker watches its own loop lag from now on."""

    async def set_ok(self, ok: int) -> None:
        """Posting has ended with ``ok`` messages accepted."""
        self.ok_count = ok

    async def heartbeats(self) -> dict[str, Any]:
        """Heartbeats per stream so far, and drops (after a sweep: what has arrived counts)."""
        sweep_all(self.clients)
        return {"beats": [c.heartbeats for c in self.clients], "dropped": sum(c.dropped for c in self.clients)}

    async def storm(self, window: float) -> int:
        """Drop every stream at once and reconnect each within ``window`` s with Last-Event-ID; returns how many."""
        began = time.monotonic()
        for client in self.clients:
            client.storming = True
            client.close()
        await asyncio.sleep(0.2)
        rng = secrets.SystemRandom()

        async def back(client: StreamClient) -> StreamClient:
            await asyncio.sleep(rng.uniform(0, window * 0.8))
            client.storming = False
            return await client.connect()

        back_again, errors = await bounded(
            [partial(back, c) for c in self.clients], len(self.clients), label="storm", deadline=began + 60
        )
        self.tally.errors.update(errors)
        return len(back_again)

    async def stop(self) -> None:
        """Stop reconnecting and sweeping; sweep once more so that everything that arrived counts."""
        self.tally.running = False
        if self.sweeper is not None:
            await self.sweeper
        if self.lag_watch is not None:
            await self.lag_watch
        sweep_all(self.clients)  # what arrived since the last sweep counts too

    async def report(self, ok: set[int]) -> dict[str, Any]:
        """Everything counted, given the accepted messages ``ok``; then drop every stream.

        The keys are ``SUMMED``, ``CONCATENATED`` and ``errors`` (:func:`merge_reports` adds them up).
        """
        tally, n_ok = self.tally, len(ok)
        report: dict[str, Any] = {
            "open": self.opened,
            **{name: getattr(tally, name) for name in TALLIED},
            "counted_streams": len(self.counted),
            "counted_ok": sum(min(c.count, n_ok) for c in self.counted),
            "counted_extra": sum(max(0, c.count - n_ok) for c in self.counted),
            "counted_total": sum(c.count for c in self.counted),
            "probe_unique_ok": sum(sum(c.seen[n] for n in ok if n < len(c.seen)) for c in self.clients if c.probe),
            "latencies": list(tally.latencies),
            "numbers": list(tally.numbers),
            "lags": self.lags,
            "errors": dict(tally.errors),
        }
        await self.close()
        return report

    async def close(self) -> None:
        """Stop reconnecting and drop every stream."""
        self.tally.running = False
        for task in list(self.tally.tasks):
            task.cancel()
        for client in self.clients:
            client.close()


class RemoteStreams:
    """A worker process holding some of the streams (``--processes``), driven over its stdin and stdout.

    The worker (``sse_load.py --worker``) reads one JSON line of setup, then one
    command per line, and answers each with a ``reply`` line; meanwhile it writes a
    ``status`` line every ``STATUS_EVERY`` seconds, which :meth:`status` returns.
    """

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: asyncio.subprocess.Process | None = None
        self.latest: dict[str, int] = {"bytes": 0, "other_events": 0, "dropped": 0, "received": 0}
        self.replies: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, setup: dict[str, Any]) -> None:
        """Start the worker and hand it its streams (``setup``: the run's arguments, the room, the specs)."""
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            str(self.index),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 28,  # the final report is one line
        )
        self.reader = asyncio.get_running_loop().create_task(self._read())
        await self._send(setup)

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with contextlib.suppress(ValueError, ConnectionError):
            while line := await self.process.stdout.readline():
                message = json.loads(line)
                if message.pop("type") == "status":
                    self.latest = message
                else:
                    self.replies.put_nowait(message)
        self.replies.put_nowait(None)  # the worker is gone

    async def ask(self, command: str, **fields: Any) -> dict[str, Any]:
        """Send ``command`` and wait for its reply. :raise WorkerGone: the worker ended first."""
        await self._send({"cmd": command, **fields})
        reply = await self.replies.get()
        if reply is None:
            self.replies.put_nowait(None)
            raise WorkerGone(f"worker {self.index} ended while asked to {command} (its errors are above)")
        return reply

    async def open(self, concurrency: int, timeout: float) -> int:
        return int((await self.ask("open", concurrency=concurrency, timeout=timeout))["opened"])

    def status(self) -> dict[str, int]:
        return self.latest

    async def posting(self) -> None:
        await self.ask("posting")

    async def set_ok(self, ok: int) -> None:
        await self.ask("ok", ok=ok)

    async def heartbeats(self) -> dict[str, Any]:
        return await self.ask("beats")

    async def storm(self, window: float) -> int:
        return int((await self.ask("storm", window=window))["reconnected"])

    async def stop(self) -> None:
        await self.ask("stop")

    async def report(self, ok: set[int]) -> dict[str, Any]:
        report = (await self.ask("report", ok=sorted(ok)))["report"]
        await self.close()
        return report

    async def close(self) -> None:
        """Let the worker end (it drops its streams when its stdin closes); kill it if it does not."""
        process = self.process
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
        if self.reader is not None:
            await self.reader


async def worker_main(index: int) -> None:
    """``sse_load.py --worker N``: hold the streams the parent hands over on stdin, and obey its commands.

    Protocol: see :class:`RemoteStreams`. Ends when stdin ends (the parent is
    done or gone), dropping every stream.
    """
    global LOG_PREFIX
    LOG_PREFIX = f"worker {index}: "
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 28)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    setup = json.loads(await reader.readline())
    args = argparse.Namespace(**setup["args"])
    raise_nofile_limit()
    specs = [StreamSpec(*spec) for spec in setup["streams"]]
    streams = LocalStreams(args, setup["host"], setup["port"], setup["code"], setup["nonce"], specs)

    def send(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    async def push_status() -> None:
        while True:
            send({"type": "status", **streams.status()})
            await asyncio.sleep(STATUS_EVERY)

    pusher = loop.create_task(push_status())
    try:
        while line := await reader.readline():
            command = json.loads(line)
            name, reply = command["cmd"], dict[str, Any]()
            if name == "open":
                reply["opened"] = await streams.open(command["concurrency"], command["timeout"])
            elif name == "posting":
                streams.lag_watch = loop.create_task(watch_loop_lag(lambda: streams.tally.running, streams.lags))
            elif name == "ok":
                await streams.set_ok(command["ok"])
            elif name == "beats":
                reply = await streams.heartbeats()
            elif name == "storm":
                reply["reconnected"] = await streams.storm(command["window"])
            elif name == "stop":
                await streams.stop()
            elif name == "report":
                pusher.cancel()
                reply["report"] = await streams.report(set(command["ok"]))
            send({"type": "reply", **reply})
    finally:
        pusher.cancel()
        await streams.close()


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The processes' reports as one: counters added, samples concatenated, errors counted together."""
    merged: dict[str, Any] = {name: sum(r[name] for r in reports) for name in SUMMED}
    for name in CONCATENATED:
        merged[name] = [x for r in reports for x in r[name]]
    errors: Counter[str] = Counter()
    for r in reports:
        errors.update(r["errors"])
    merged["errors"] = errors
    return merged


# -- the run ---------------------------------------------------------------------------------------------------------


@dataclass
class Mark:
    """A moment of the run: wall clock, this tool's CPU (its workers' included), and the server's processes."""

    wall: float
    cpu: float
    sys: float
    server: dict[int, ProcSample]


Streams = LocalStreams | RemoteStreams


class Bench:
    """One benchmark run, phase by phase: setup, open the streams, let them settle, post, drain, report.

    The streams live in ``self.shards``: one :class:`LocalStreams` in this process,
    or with ``--processes N`` one :class:`RemoteStreams` per worker process. This
    process always does the setup, the posting and the storm's timing, and tells
    the shards when each phase begins, so every process goes through the phases together.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        url = urlsplit(args.url)
        self.host = require_loopback(url.hostname or "127.0.0.1", "--url host")
        self.port = url.port or 80
        self.source_ips = [require_loopback(ip.strip(), "source address") for ip in args.source_ips.split(",")]
        self.nofile = raise_nofile_limit()[0]
        self.server = ServerProcesses.find(args.server_pids, args.server_pidfile, self.port)
        self.workers: ServerProcesses | None = None  # the worker processes, for the tool's CPU
        self.nonce = secrets.token_hex(4)
        self.errors: Counter[str] = Counter()  # the setup's (the streams keep their own)
        self.marks: dict[str, Mark] = {}
        self.timings: dict[str, float] = {}
        self.code = ""
        self.stream_members: list[Member] = []
        self.poster_members: list[Member] = []
        self.shards: list[Streams] = []
        self.open = 0
        self.posts = PostLog()
        self.running = True
        self.loop_lags: list[float] = []
        self.quiet = False
        self.traffic: dict[str, dict[str, int]] = {}
        self.held: dict[str, Any] | None = None
        self.stormed: dict[str, Any] | None = None

    def mark(self, name: str, *, sockets: bool = False) -> Mark:
        cpu, sys_cpu = self_cpu_seconds(), self_sys_seconds()
        if self.workers is not None:
            workers = self.workers.sample()
            cpu += total(workers, "cpu_s")
            sys_cpu += total(workers, "sys_s")
        self.marks[name] = Mark(time.monotonic(), cpu, sys_cpu, self.server.sample(sockets=sockets))
        return self.marks[name]

    def between(self, start: str, end: str) -> tuple[float, float, float]:
        """(wall seconds, this tool's CPU seconds, the server's CPU seconds) between two marks."""
        a, b = self.marks[start], self.marks[end]
        return b.wall - a.wall, b.cpu - a.cpu, cpu_delta(a.server, b.server)

    def status(self) -> dict[str, int]:
        """The shards' counters added up (a worker's are at most ``STATUS_EVERY`` s old)."""
        out = {"bytes": 0, "other_events": 0, "dropped": 0, "received": 0}
        for shard in self.shards:
            for name, value in shard.status().items():
                out[name] += value
        return out

    async def run(self) -> dict[str, Any]:
        """The whole benchmark; returns the results as a JSON-ready dict."""
        try:
            return await self._run()
        finally:
            for shard in self.shards:
                await shard.close()

    async def _run(self) -> dict[str, Any]:
        args = self.args
        per_process = math.ceil(args.clients / args.processes)
        if self.nofile < per_process + 100:
            log(f"warning: the open-files limit {self.nofile} is below K/processes + 100 = {per_process + 100}")
        self.mark("start")
        await self.setup()
        self.mark("before_streams")
        await self.open_streams()
        settle_s, self.quiet = await wait_until_quiet(self.status, quiet=2.0, limit=args.settle_timeout)
        self.timings["settle_s"] = settle_s
        counters = self.status()
        self.traffic["arrival"] = {"bytes": counters["bytes"], "non_message_events": counters["other_events"]}
        log(
            f"{'settled' if self.quiet else 'NOT settled (gave up waiting)'} after {settle_s:.1f} s: "
            f"{counters['bytes'] / 1e6:,.1f} MB and {counters['other_events']:,} presence/typing events received so far"
        )
        self.mark("settled")
        await asyncio.sleep(args.idle)
        self.mark("idle", sockets=True)
        if args.hold:
            await self.hold(args.hold)
        await self.post_and_drain()
        reports = [await shard.report(self.posts.ok) for shard in self.shards]
        return self.results(merge_reports(reports))

    async def heartbeats(self) -> tuple[list[int], int]:
        """Heartbeats per stream (every shard's, in order) and drops so far."""
        answers = await asyncio.gather(*(shard.heartbeats() for shard in self.shards))
        return [b for a in answers for b in a["beats"]], sum(a["dropped"] for a in answers)

    async def hold(self, seconds: float) -> None:
        """Keep every stream open and idle for ``seconds``; count the ones the server drops, and heartbeats."""
        log(f"holding {self.open} idle streams for {seconds:g} s")
        beats_before, dropped_before = await self.heartbeats()
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            await asyncio.sleep(min(30.0, seconds - (time.monotonic() - began)))
            dropped = self.status()["dropped"] - dropped_before
            log(f"held {time.monotonic() - began:.0f} s: {dropped} dropped")
        beats_after, dropped_after = await self.heartbeats()
        beats = sorted(a - b for a, b in zip(beats_after, beats_before, strict=True))
        self.held = {
            "seconds": seconds,
            "streams": self.open,
            "dropped": dropped_after - dropped_before,
            "heartbeats_min": beats[0] if beats else None,
            "heartbeats_median": beats[len(beats) // 2] if beats else None,
        }
        self.mark("held", sockets=True)

    async def setup(self) -> None:
        """Sign up, create the room, and join the stream members and the posters."""
        args, host, port = self.args, self.host, self.port
        self.code = await create_room(host, port, self.nonce)
        members = min(args.members or args.clients, args.clients)
        log(f"room {self.code} created; joining {members} stream members + {args.posters} posters")
        seed = await join_page(host, port, self.code)
        ips = self.source_ips
        jobs = [
            partial(join, host, port, self.code, f"stream-{i:05d}", seed, local_ip=ips[i % len(ips)], room_page=False)
            for i in range(members)
        ]
        jobs += [
            partial(join, host, port, self.code, f"poster-{i}", seed, local_ip=None, room_page=True)
            for i in range(args.posters)
        ]
        began = time.monotonic()
        joined, errors = await bounded(jobs, args.join_concurrency, label="join")
        self.timings["join_s"] = time.monotonic() - began
        self.errors.update(errors)
        self.poster_members = [m for m in joined if m.alias.startswith("poster-")]
        self.stream_members = sorted((m for m in joined if m.alias.startswith("stream-")), key=lambda m: m.alias)
        log(f"joined {len(joined)} in {self.timings['join_s']:.1f} s ({sum(errors.values())} failed)")
        if not self.poster_members or not self.stream_members:
            raise HttpError(f"too few participants could join: {dict(errors)}")

    async def open_streams(self) -> None:
        """Open K streams over the members, a bounded number at a time, each until its first bytes.

        With ``--processes N`` the K streams are split into N consecutive blocks
        (so the probes, every K/probe-th stream, are spread evenly), one per worker.
        """
        args, ips = self.args, self.source_ips
        members = self.stream_members
        every = max(1, args.clients // args.probe) if args.probe else 1
        specs = [
            StreamSpec(members[i % len(members)].cookie, ips[i % len(ips)], i % every == 0) for i in range(args.clients)
        ]
        n = args.processes
        if n == 1:
            self.shards = [LocalStreams(args, self.host, self.port, self.code, self.nonce, specs)]
        else:
            remotes = [RemoteStreams(i) for i in range(n)]
            self.shards = list(remotes)
            for i, remote in enumerate(remotes):
                block = specs[i * len(specs) // n : (i + 1) * len(specs) // n]
                await remote.start(
                    {
                        "args": vars(args),
                        "host": self.host,
                        "port": self.port,
                        "code": self.code,
                        "nonce": self.nonce,
                        "streams": [[s.cookie, s.local_ip, s.probe] for s in block],
                    }
                )
            self.workers = ServerProcesses([r.pid for r in remotes], explicit=True)
            log(f"{n} worker processes hold the streams: {', '.join(str(r.pid) for r in remotes)}")
        began = time.monotonic()
        concurrency = max(1, args.connect_concurrency // n)
        opened = await asyncio.gather(*(shard.open(concurrency, args.open_timeout) for shard in self.shards))
        self.open = sum(opened)
        self.timings["open_s"] = time.monotonic() - began
        log(f"{self.open} streams open in {self.timings['open_s']:.1f} s ({args.clients - self.open} failed)")

    async def post_and_drain(self) -> None:
        """Post at the rate for the duration, then wait (bounded) until every stream has every message."""
        args = self.args
        sessions = []
        for member in self.poster_members:
            session = HttpSession(self.host, self.port)
            session.cookies = dict(pair.split("=", 1) for pair in member.cookie.split("; "))
            session.csrf = member.csrf
            sessions.append(session)
        counters = self.status()
        before = {"bytes": counters["bytes"], "non_message_events": counters["other_events"]}
        lag_watch = asyncio.get_running_loop().create_task(watch_loop_lag(lambda: self.running, self.loop_lags))
        await asyncio.gather(*(shard.posting() for shard in self.shards))
        if args.flood:
            log(f"posting as fast as {len(sessions)} posters can for {args.duration:g} s")
        else:
            log(f"posting {round(args.rate * args.duration)} messages at {args.rate:g}/s from {len(sessions)} posters")
        self.mark("posting")
        posting = asyncio.get_running_loop().create_task(
            post_messages(sessions, self.code, self.nonce, args.rate, args.duration, self.posts, flood=args.flood)
        )
        if args.storm:
            await asyncio.sleep(args.duration / 3)
            await self.storm(args.storm_window)
        await posting
        self.mark("posted")
        for session in sessions:
            await session.close()
        failed = self.posts.started - len(self.posts.ok)
        log(f"posted {len(self.posts.ok)} ({failed} failed); waiting for the stragglers")
        await asyncio.gather(*(shard.set_ok(len(self.posts.ok)) for shard in self.shards))
        deadline = time.monotonic() + args.drain
        while self.status()["received"] < len(self.posts.ok) * args.clients and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        self.running = False
        await asyncio.gather(*(shard.stop() for shard in self.shards))  # and a last sweep
        self.mark("drained")
        await lag_watch
        self.timings["drain_s"] = self.marks["drained"].wall - self.marks["posted"].wall
        counters = self.status()
        self.traffic["posting"] = {
            "bytes": counters["bytes"] - before["bytes"],
            "non_message_events": counters["other_events"] - before["non_message_events"],
        }

    async def storm(self, window: float) -> None:
        """Drop every stream at once and reconnect them all, spread over ``window`` seconds, with Last-Event-ID."""
        before = db_stats(self.args.database_url)
        log(f"storm: dropping {self.open} streams, reconnecting within {window:g} s")
        began = time.monotonic()
        back_again = sum(await asyncio.gather(*(shard.storm(window) for shard in self.shards)))
        took = time.monotonic() - began
        await asyncio.sleep(1.5)  # PostgreSQL's statistics arrive a moment after the transactions
        after = db_stats(self.args.database_url)
        self.stormed = {
            "streams": self.args.clients,
            "reconnected": back_again,
            "seconds": took,
            "database": stats_delta(before, after),
        }
        log(f"storm: {back_again} reconnected in {took:.1f} s; database: {self.stormed['database']}")

    def results(self, streams: dict[str, Any]) -> dict[str, Any]:
        """Everything measured, as a JSON-ready dict (``summary`` renders it for people).

        ``streams`` is every shard's report merged (:func:`merge_reports`).
        """
        args, posts, marks = self.args, self.posts, self.marks
        expected = len(posts.ok) * args.clients
        unique_ok = streams["probe_unique_ok"] + streams["counted_ok"]
        latencies = sorted(x * 1000 for x in streams["latencies"])
        first, spread = arrival_spread(streams["numbers"], streams["latencies"])
        post_ms = sorted(posts.durations_ms)
        lags = sorted(x * 1000 for x in self.loop_lags + streams["lags"])
        window_s, tool_cpu, server_cpu = self.between("posting", "drained")
        arrival_s, arrival_tool_cpu, arrival_server_cpu = self.between("before_streams", "settled")
        before_rss = total(marks["before_streams"].server, "rss_kb")
        idle = marks["idle"].server
        sent_span = posts.last_send - posts.first_send
        in_window = {
            pid: s.cpu_s - marks["posting"].server[pid].cpu_s if pid in marks["posting"].server else s.cpu_s
            for pid, s in marks["drained"].server.items()
        }
        deliveries = streams["deliveries"] + streams["counted_total"]
        errors = self.errors + streams["errors"]
        result: dict[str, Any] = {
            "config": {
                "url": args.url,
                "clients": args.clients,
                "members": len(self.stream_members),
                "rate": args.rate,
                "duration": args.duration,
                "posters": len(self.poster_members),
                "server_processes": len(marks["start"].server),
                "source_ips": self.source_ips,
                "open_files_limit": self.nofile,
                "tool_processes": args.processes,
                "sweep_s": args.sweep,
            },
            "room": self.code,
            "timings_s": self.timings,
            "streams": {"requested": args.clients, "open": self.open, "reconnects": streams["reconnects"]},
            "arrival": {
                **self.traffic["arrival"],
                "settled": self.quiet,
                "server_cpu_s": arrival_server_cpu,
                "tool_cpu_percent": 100 * arrival_tool_cpu / arrival_s if arrival_s else None,
            },
            "posted": {
                "attempted": posts.started if args.flood else round(args.rate * args.duration),
                "ok": len(posts.ok),
                "failed": posts.started - len(posts.ok),
                "not_sent": 0 if args.flood else round(args.rate * args.duration) - posts.started,
                "errors": dict(posts.errors),
                "achieved_rate": (len(posts.ok) - 1) / sent_span if sent_span > 0 else None,
                "max_behind_schedule_s": posts.behind_s,
                "post_ms": quantiles(post_ms),
            },
            "delivered": {
                "expected": expected,
                "unique": unique_ok,
                "lost": expected - unique_ok,
                "deliveries": deliveries,
                "duplicates": streams["duplicates"] + streams["counted_extra"],
                "probed_streams": args.clients - streams["counted_streams"],
                "out_of_order": streams["gaps"] + streams["backwards"],
                "gaps": streams["gaps"],
                "backwards": streams["backwards"],
                "foreign": streams["foreign"],
                "malformed": streams["malformed"],
                "close_events": streams["closes"],
            },
            "latency_ms": {"count": len(latencies), **quantiles(latencies)},
            "first_arrival_ms": quantiles(first),
            "fanout_spread_ms": quantiles(spread),
            "server": {
                "window_s": window_s,
                "cpu_s": server_cpu,
                "cpu_percent_of_one_core": 100 * server_cpu / window_s if window_s else None,
                "cpu_us_per_delivered": 1e6 * server_cpu / deliveries if deliveries else None,
                "rss_kb_before_streams": before_rss,
                "rss_kb_idle": total(idle, "rss_kb"),
                "rss_kb_after": total(marks["drained"].server, "rss_kb"),
                "rss_kb_per_idle_stream": (total(idle, "rss_kb") - before_rss) / self.open if self.open else None,
                "processes": {
                    str(pid): {"rss_kb_idle": s.rss_kb, "sockets_idle": s.sockets, "cpu_s_posting": in_window.get(pid)}
                    for pid, s in idle.items()
                },
                "pids_seen": sorted(self.server.seen),
            },
            "stream_traffic_while_posting": self.traffic["posting"],
            "load_tool": {
                "processes": args.processes,
                "cpu_percent_posting": 100 * tool_cpu / window_s if window_s else None,
                "sys_percent_posting": 100 * (marks["drained"].sys - marks["posting"].sys) / window_s
                if window_s
                else None,
                "cpu_us_per_delivered": 1e6 * tool_cpu / deliveries if deliveries else None,
                "loop_lag_ms": quantiles(lags),
            },
            "errors": dict(errors),
            "hold": self.held,
            "storm": self.stormed,
            "flood": args.flood,
        }
        result["targets"] = check_targets(result)
        return result


def partial(func: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Callable[[], Awaitable[Any]]:
    """``functools.partial`` for coroutines, typed as a job for :func:`bounded`."""
    return lambda: func(*args, **kwargs)


def quantiles(ordered: list[float]) -> dict[str, float | None]:
    """p50, p90, p99 and max of a sorted list (None when it is empty)."""
    if not ordered:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    return {
        "p50": percentile(ordered, 0.5),
        "p90": percentile(ordered, 0.9),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1],
    }


def arrival_spread(numbers: list[int], latencies: list[float]) -> tuple[list[float], list[float]]:
    """Per message (``numbers[i]`` arrived after ``latencies[i]`` s): when the first stream got it, and how long
    until the last one did (ms, sorted)."""
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    for number, latency in zip(numbers, latencies, strict=True):
        if latency < first.get(number, math.inf):
            first[number] = latency
        if latency > last.get(number, -math.inf):
            last[number] = latency
    return sorted(v * 1000 for v in first.values()), sorted((last[n] - first[n]) * 1000 for n in first)


def check_targets(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target of bench/README.md: the limit, the value measured, and whether it was met."""
    k = result["config"]["clients"]
    targets: dict[str, dict[str, Any]] = {}
    all_open = result["streams"]["open"] == k  # with fewer streams, a number says nothing about K

    def target(name: str, value: float | None, limit: float) -> None:
        met = value is not None and value <= limit and all_open
        targets[name] = {"limit": limit, "value": value, "met": met}
        if not all_open:
            targets[name]["note"] = f"only {result['streams']['open']} of {k} streams were open"

    latency_limit = next((limit for size, limit in LATENCY_TARGETS_MS if k <= size), None)
    if result.get("storm"):
        # A storm delivers what its streams missed while down (seconds late by design) and pays for thousands of
        # reconnects: the latency and CPU targets are for steady fan-out. Its own figures are in "storm".
        latency_limit = None
    else:
        target("server_cpu_us_per_delivered", result["server"]["cpu_us_per_delivered"], CPU_TARGET_US)
    if latency_limit is not None:
        target("p99_latency_ms", result["latency_ms"]["p99"], latency_limit)
    target("rss_kb_per_idle_stream", result["server"]["rss_kb_per_idle_stream"], RSS_TARGET_KB)
    d, s = result["delivered"], result["streams"]
    problems = d["lost"] + d["duplicates"] + d["out_of_order"] + s["requested"] - s["open"]
    target("lost_duplicated_reordered_or_unopened", problems if result["posted"]["ok"] else None, 0)
    return targets


def _f(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def summary(result: dict[str, Any]) -> str:
    """The human-readable report."""
    c, t, s, p = result["config"], result["timings_s"], result["streams"], result["posted"]
    d, lat, srv, tool = result["delivered"], result["latency_ms"], result["server"], result["load_tool"]
    arr, tw = result["arrival"], result["stream_traffic_while_posting"]
    first, spread, lag = result["first_arrival_ms"], result["fanout_spread_ms"], tool["loop_lag_ms"]
    busy = (tool["cpu_percent_posting"] or 0) > 80 or (lag["p99"] or 0) > 20
    tool_note = " — this tool ran late (busy, or short of CPU): the latencies include that" if busy else ""
    processes = ", ".join(
        f"{pid}: {v['sockets_idle']} sockets {v['rss_kb_idle'] / 1024:.0f} MB {_f(v['cpu_s_posting'], '.1f')} s CPU"
        for pid, v in srv["processes"].items()
    )
    lines = [
        f"Chatroom SSE load: K={c['clients']} streams ({c['members']} members), R={c['rate']:g} msg/s for "
        f"{c['duration']:g} s, {c['server_processes']} server processes, room {result['room']}",
        f"setup        joined in {t['join_s']:.1f} s; {s['open']}/{s['requested']} streams open in {t['open_s']:.1f} s"
        f"; {s['reconnects']} reconnects",
        f"arrival      {arr['bytes'] / 1e6:,.1f} MB, {arr['non_message_events']:,} presence/typing events; "
        f"{'quiet' if arr['settled'] else 'STILL BUSY'} {t['settle_s']:.1f} s after the last open; "
        f"server {arr['server_cpu_s']:.1f} s CPU, tool {_f(arr['tool_cpu_percent'], '.0f')}% CPU",
        f"posted       {p['ok']}/{p['attempted']} ok ({p['failed']} failed, {p['not_sent']} not sent in time), "
        f"{_f(p['achieved_rate'])} msg/s; POST p50 {_f(p['post_ms']['p50'])} ms p99 {_f(p['post_ms']['p99'])} ms "
        f"max {_f(p['post_ms']['max'])} ms",
        f"delivered    {d['unique']:,} / {d['expected']:,} expected: lost {d['lost']:,}, duplicates "
        f"{d['duplicates']:,}, out-of-order {d['out_of_order']:,}; drained {t['drain_s']:.1f} s after the last post",
        f"latency      p50 {_f(lat['p50'])} ms  p90 {_f(lat['p90'])} ms  p99 {_f(lat['p99'])} ms  "
        f"max {_f(lat['max'])} ms  (POST sent → event parsed, {lat['count']:,} samples)",
        f"  per message: first stream p50 {_f(first['p50'])} ms p99 {_f(first['p99'])} ms; "
        f"first → last stream p50 {_f(spread['p50'])} ms p99 {_f(spread['p99'])} ms",
        f"server CPU   {_f(srv['cpu_us_per_delivered'])} µs per delivered message ({srv['cpu_s']:.2f} s CPU in "
        f"{srv['window_s']:.1f} s = {_f(srv['cpu_percent_of_one_core'], '.0f')}% of one core)",
        f"server RSS   {_f(srv['rss_kb_per_idle_stream'])} KB per idle stream "
        f"({srv['rss_kb_before_streams'] / 1024:,.0f} MB before the streams, {srv['rss_kb_idle'] / 1024:,.0f} MB idle, "
        f"{srv['rss_kb_after'] / 1024:,.0f} MB after posting)",
        f"  processes: {processes}",
        f"while posting the streams got {tw['bytes'] / 1e6:,.1f} MB and "
        f"{tw['non_message_events']:,} presence/typing events",
        f"load tool    {_f(tool['cpu_percent_posting'], '.0f')}% of one core while posting"
        f"{' in ' + str(tool['processes']) + ' processes' if tool.get('processes', 1) > 1 else ''} "
        f"({_f(tool['sys_percent_posting'], '.0f')}% in the kernel, {_f(tool['cpu_us_per_delivered'])} µs per "
        f"delivered message); event-loop lag p99 {_f(lag['p99'])} ms max {_f(lag['max'])} ms{tool_note}",
    ]
    if result.get("hold"):
        h = result["hold"]
        lines.append(
            f"hold         {h['streams']:,} idle streams for {h['seconds']:g} s: {h['dropped']} dropped; heartbeats "
            f"per stream min {h['heartbeats_min']} median {h['heartbeats_median']}"
        )
    if result.get("storm"):
        st = result["storm"]
        lines.append(
            f"storm        {st['reconnected']:,}/{st['streams']:,} streams dropped and back in {st['seconds']:.1f} s; "
            f"database during it: {st['database'] or 'not measured (no --database-url)'}"
        )
    if d.get("probed_streams") is not None and d["probed_streams"] < c["clients"]:
        lines.append(
            f"probes       {d['probed_streams']:,} streams parsed every event (latency, order); the others counted "
            f"ids{' in sweeps every ' + format(c['sweep_s'], 'g') + ' s' if c.get('sweep_s') else ' as they arrived'}"
        )
    if result["errors"]:
        lines.append("errors       " + "; ".join(f"{n}× {e}" for e, n in sorted(result["errors"].items())[:8]))
    lines.append("targets")
    for name, target in result["targets"].items():
        verdict = "ok  " if target["met"] else "MISS"
        note = f"; {target['note']}" if "note" in target else ""
        lines.append(f"  {verdict} {name}: {_f(target['value'])} (limit {target['limit']:g}{note})")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--url", default="http://127.0.0.1:5055", help="the server (loopback only)")
    add("-k", "--clients", type=int, default=1000, help="stream clients K (default 1000)")
    add("-r", "--rate", type=float, default=10.0, help="messages posted per second (default 10)")
    add("--duration", type=float, default=20.0, help="seconds of posting (default 20)")
    add("--members", type=int, help="spread the K streams over this many participants (default K: one each)")
    add("--posters", type=int, default=4, help="posting participants, without streams (default 4)")
    add("--server-pids", help="comma-separated server pids (exactly these processes)")
    add("--server-pidfile", help="the gunicorn master's pid file (it and all its children)")
    add("--json", help="also write the results to this file")
    add("--source-ips", default=",".join(DEFAULT_SOURCE_IPS), help="stream source addresses (loopback)")
    add("--join-concurrency", type=int, default=50, help="joins at a time (default 50)")
    add("--connect-concurrency", type=int, default=50, help="stream opens at a time (default 50)")
    add("--open-timeout", type=float, default=90.0, help="seconds to open all streams (default 90)")
    add("--settle-timeout", type=float, default=30.0, help="max seconds to wait for quiet streams (default 30)")
    add("--idle", type=float, default=3.0, help="seconds idle before measuring RSS (default 3)")
    add("--drain", type=float, default=10.0, help="max seconds to wait for stragglers (default 10)")
    add("--probe", type=int, help="parse the events of this many streams, only count the others' (default: all)")
    add(
        "--sweep",
        type=float,
        default=0.5,
        help="read the counted streams every this many seconds, not as events arrive (0: at once; default 0.5)",
    )
    add("--storm", action="store_true", help="a third into posting, drop every stream and reconnect them all")
    add("--storm-window", type=float, default=10.0, help="seconds over which the storm reconnects (default 10)")
    add(
        "--processes",
        type=int,
        default=1,
        help="hold the streams in this many worker processes (each has its own open-files limit; default 1: here)",
    )
    add("--hold", type=float, default=0.0, help="hold the idle streams this many seconds before posting")
    add("--flood", action="store_true", help="post as fast as the posters can (durable posts per second)")
    add("--database-url", default=os.environ.get("DATABASE_URL"), help="PostgreSQL, for query counts (storm)")
    args = parser.parse_args(argv)
    if min(args.clients, args.rate, args.duration, args.posters, args.members or 1) <= 0:
        parser.error("K, R, duration, members and posters must be positive")
    if args.sweep < 0:
        parser.error("--sweep must be 0 or more")
    if not 1 <= args.processes <= args.clients:
        parser.error("--processes must be between 1 and K")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run, print the summary, write the JSON; exit 0 when every target is met, 1 when not, 2 on a failed setup."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:  # one of the --processes workers (``RemoteStreams``)
        with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
            asyncio.run(worker_main(int(argv[1])))
        return 0
    args = parse_args(argv)
    # Setup and a safety margin on top of every phase's own budget.
    limit = args.open_timeout + args.settle_timeout + args.hold + args.duration + args.drain + 900
    try:
        result = asyncio.run(asyncio.wait_for(Bench(args).run(), timeout=limit))
    except (HttpError, WorkerGone) as error:
        print(f"setup failed: {error}", file=sys.stderr)
        return 2
    print(summary(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(t["met"] for t in result["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
