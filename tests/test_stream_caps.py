"""Holding up under abuse: stream caps per seat, per address and per worker, slow headers, and thousands of sockets.

Every load here is bounded in count and time and talks only to 127.0.0.0/8. The caps are lowered
per server through the environment, so each test needs a handful of streams, not thousands, except
the one that opens thousands of sockets on purpose.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import time

import pytest

from chatroom.stream_caps import REFUSALS, Slots
from support.constants import ROOM_PASSWORD
from support.live import Browser, Server, Stream, wait_for

ATTACKER = "127.0.0.2"  # another loopback address: not one gunicorn trusts as a proxy (FORWARDED_ALLOW_IPS)


def _stream(server: Server, browser: Browser, code: str) -> Stream:
    return Stream(server.port, f"/r/{code}/events?after=0", browser.cookie_header())


def _get(port: int, path: str, timeout: float = 5) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


# -- the caps, as a table ----------------------------------------------------------------------------------


@pytest.mark.once
def test_slots_count_per_seat_per_address_and_in_all():
    slots = Slots(per_seat=2, per_address=3, total=4)
    a1, a2 = slots.take(1, "10.0.0.1"), slots.take(1, "10.0.0.1")
    assert slots.take(1, "10.0.0.2") == "seat"
    b1 = slots.take(2, "10.0.0.1")
    assert slots.take(3, "10.0.0.1") == "address"
    slots.take(3, "10.0.0.2")
    assert slots.take(4, "10.0.0.3") == "full"
    a1.release()
    a1.release()  # once only
    assert slots.count == 3
    assert not isinstance(slots.take(1, "10.0.0.3"), str)
    for ticket in (a2, b1):
        ticket.release()
    assert slots.seats[1] == 1 and slots.addresses["10.0.0.1"] == 0


def test_over_the_seat_cap_the_test_client_gets_429_with_retry_after(app, make_room, join):
    """The portable path (no gunicorn) counts too, and gives the slot back when the response closes."""
    app.config["STREAMS_PER_SEAT"] = 2
    room = make_room()
    pat = join(room, "Pat")
    first = pat.get(f"/r/{room.code}/events?after=0", buffered=False)
    second = pat.get(f"/r/{room.code}/events?after=0", buffered=False)
    assert first.status_code == second.status_code == 200
    third = pat.get(f"/r/{room.code}/events?after=0")
    assert third.status_code == 429
    assert third.headers["Retry-After"] == "60"
    assert REFUSALS["seat"][1] in third.get_data(as_text=True)
    second.close()  # (the test client's streamed responses close in the order they opened, reversed)
    again = pat.get(f"/r/{room.code}/events?after=0", buffered=False)
    assert again.status_code == 200
    again.close()
    first.close()


# -- live: the hand-over path gives slots back when the client hangs up ----------------------------------------


@pytest.mark.live
@pytest.mark.once
def test_seat_and_address_caps_on_a_real_server(servers, make_room):
    server = servers(STREAMS_PER_SEAT="2", STREAMS_PER_ADDRESS="3")
    room = make_room()
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    kim = Browser(server.port).join(room.code, "Kim", ROOM_PASSWORD)
    opened = [_stream(server, pat, room.code).open(), _stream(server, pat, room.code).open()]
    try:
        refused = _stream(server, pat, room.code).open()
        assert refused.status == 429 and refused.headers["retry-after"] == "60"
        refused.close()
        opened.append(_stream(server, kim, room.code).open())  # the address's third
        over = _stream(server, kim, room.code).open()
        list(over.read_events(1))
        assert over.status == 429 and "network" in over.raw
        over.close()
        assert all(s.status == 200 for s in opened)
        opened.pop(0).close()  # the server notices the hang-up at once and gives the slot back

        def reopened() -> bool:
            stream = _stream(server, pat, room.code).open()
            if stream.status == 200:
                opened.append(stream)
                return True
            stream.close()
            return False

        assert wait_for(reopened, timeout=5, interval=0.2)
    finally:
        for stream in opened:
            stream.close()


@pytest.mark.live
@pytest.mark.once
def test_a_full_worker_refuses_streams_with_503_and_still_serves_pages(servers, make_room):
    server = servers(STREAMS_PER_WORKER="3")
    room = make_room()
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    streams = [_stream(server, pat, room.code).open() for _ in range(3)]
    try:
        full = _stream(server, pat, room.code).open()
        assert full.status == 503 and full.headers["retry-after"] == "60"
        full.close()
        assert _get(server.port, "/healthz") == 200
        status, _ = pat.get(f"/r/{room.code}")
        assert status == 200
    finally:
        for stream in streams:
            stream.close()


@pytest.mark.live
@pytest.mark.once  # gunicorn's guards and the worker's caps: the same on either backend
def test_thousands_of_sockets_from_one_address_leave_the_worker_serving_others(servers, make_room):
    """2,400 sockets from one address (idle ones, slow headers), then streams up to the open-files limit.

    The worker keeps serving another client throughout, closes the idle and slow sockets after the
    header timeout, and refuses the streams beyond its share of the open-files limit with 503.
    """
    # 768 descriptors: 192 for requests in flight, 256 in reserve, 320 for streams (gunicorn.conf.py).
    server = servers(MAX_OPEN_FILES="768", HEADER_TIMEOUT_SECONDS="2", CONNECTIONS_PER_ADDRESS="100")
    room = make_room()
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    held: list[socket.socket] = []
    streams: list[Stream] = []
    try:
        started = time.monotonic()
        for n in range(2400):
            sock = socket.socket()
            sock.setblocking(False)
            sock.bind((ATTACKER, 0))
            sock.connect_ex(("127.0.0.1", server.port))
            held.append(sock)
            if n % 3 == 0:
                with contextlib.suppress(OSError):
                    sock.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
        # Another client is served while they are all open (an unanswered request times out in _get).
        assert _get(server.port, "/healthz") == 200
        status, _ = pat.get(f"/r/{room.code}")
        assert status == 200
        # Streams up to the worker's share of descriptors, then a refusal, and pages still served.
        refused = 0
        for _ in range(400):
            stream = _stream(server, pat, room.code).open(timeout=10)
            if stream.status == 503:
                refused += 1
                stream.close()
            else:
                assert stream.status == 200
                streams.append(stream)
        assert len(streams) == 320 and refused == 80
        assert _get(server.port, "/healthz") == 200
        # The idle and slow sockets are closed after the header timeout (2 s), the first ones long ago.
        time.sleep(max(0.0, 3.0 - (time.monotonic() - started)))
        sample = held[:50]
        for sock in sample:
            sock.setblocking(True)
            sock.settimeout(3)
        closed = 0
        for sock in sample:
            try:
                closed += sock.recv(1) == b""
            except (ConnectionResetError, TimeoutError):
                closed += 1
        assert closed == len(sample)
    finally:
        for sock in held:
            sock.close()
        for stream in streams:
            stream.close()


@pytest.mark.live
@pytest.mark.once
def test_behind_proxies_the_connection_cap_per_address_is_off(servers):
    """Behind proxies every connection's peer is the proxy: a cap of connections per peer address would make a
    whole class share it. With TRUSTED_PROXY_HOPS set the proxy guards its own side and the cap is off; without,
    the address's next connection is closed at once."""

    def served_past_the_cap(server: Server) -> bool:
        idle = []
        try:
            for _ in range(5):  # heads that never end: in flight until the header timeout (60 s here)
                sock = socket.create_connection(("127.0.0.1", server.port), source_address=(ATTACKER, 0))
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                idle.append(sock)
            time.sleep(0.5)  # (the worker has accepted them)
            probe = socket.create_connection(("127.0.0.1", server.port), timeout=5, source_address=(ATTACKER, 0))
            try:
                probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                return probe.recv(64).startswith(b"HTTP/1.1 200")
            except (ConnectionResetError, TimeoutError):
                return False
            finally:
                probe.close()
        finally:
            for sock in idle:
                sock.close()

    guards = {"CONNECTIONS_PER_ADDRESS": "3", "HEADER_TIMEOUT_SECONDS": "60"}
    assert not served_past_the_cap(servers(**guards))
    assert served_past_the_cap(servers(TRUSTED_PROXY_HOPS="1", **guards))
