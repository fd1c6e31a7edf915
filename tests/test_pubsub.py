"""``chatroom/pubsub.py``: the broker's own read of its pattern subscription.

The frame parser is pure logic, checked on bytes (every split of a reply must parse the same, and anything that
is not a pub/sub frame must end the connection). The subscription is checked against real Redis servers: the
suite's, and one of the test's own to pause (``own_redis``), since what matters is what a real server sends.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from chatroom.broker import RedisBroker
from chatroom.events import Event, EventKind
from chatroom.pubsub import FrameReader, PatternSubscription, ProtocolError, Publisher
from support.live import wait_for

SUBSCRIBED = b"*3\r\n$10\r\npsubscribe\r\n$15\r\nchatroom:room:*\r\n:1\r\n"
MESSAGE = b"*4\r\n$8\r\npmessage\r\n$15\r\nchatroom:room:*\r\n$15\r\nchatroom:room:7\r\n$13\r\nline\r\nbreak\r\n\r\n"
PONG = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"


# -- the frame parser (pure logic) -------------------------------------------------------------------------


@pytest.mark.once
def test_frames_come_out_whole_and_in_order_however_the_bytes_are_split():
    stream = SUBSCRIBED + MESSAGE + PONG
    expected = [
        [b"psubscribe", b"chatroom:room:*", 1],
        [b"pmessage", b"chatroom:room:*", b"chatroom:room:7", b"line\r\nbreak\r\n"],  # CRLF inside: by length
        [b"pong", b""],
    ]
    assert FrameReader().feed(stream) == expected
    for cut in range(1, len(stream)):
        reader = FrameReader()
        assert reader.feed(stream[:cut]) + reader.feed(stream[cut:]) == expected, cut
    reader = FrameReader()
    assert [frame for byte in stream for frame in reader.feed(bytes([byte]))] == expected


@pytest.mark.once
def test_resp3_push_frames_and_simple_pongs_read_like_their_resp2_forms():
    """The broker's clients speak RESP2; a client on RESP3 gets the same frames as pushes, and PONG plain."""
    assert FrameReader().feed(b">3\r\n$10\r\npsubscribe\r\n$1\r\n*\r\n:1\r\n+PONG\r\n") == [
        [b"psubscribe", b"*", 1],
        [b"PONG"],
    ]


@pytest.mark.once
def test_a_large_message_waits_for_all_its_bytes():
    payload = bytes(range(256)) * 4096  # 1 MiB, every byte value
    frame = b"*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\nc\r\n$%d\r\n%s\r\n" % (len(payload), payload)
    reader = FrameReader()
    chunks = [frame[i : i + 65536] for i in range(0, len(frame), 65536)]
    assert all(reader.feed(chunk) == [] for chunk in chunks[:-1])
    assert reader.feed(chunks[-1]) == [[b"pmessage", b"*", b"c", payload]]


@pytest.mark.once
@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"-ERR unknown command\r\n", "Redis answered with an error: ERR unknown command"),
        (b":1\r\n", "not an array"),
        (b"*1\r\n+OK\r\n", "not a bulk string or an integer"),
        (b"*1\r\n$2\r\nabc\r\n", "longer than its stated length"),
        (b"*1\r\n$-1\r\n", "null or negative length"),
        (b"*-1\r\n", "null or negative length"),
        (b"*x\r\n", "not a number"),
        (b"*1\r\n:1.5\r\n", "not a number"),
        (b"*1\r\n$1_0\r\n", "not a number"),  # int() would take these three
        (b"*1\r\n$ +3 \r\n", "not a number"),
        (b"*1\r\n: 7\r\n", "not a number"),
        (b"*0\r\n", "an empty array"),
    ],
)
def test_anything_but_a_pub_sub_frame_ends_the_connection(data, words):
    with pytest.raises(ProtocolError, match=words):
        FrameReader().feed(data)
    assert issubclass(ProtocolError, ConnectionError)  # what the broker's listener reconnects on


@pytest.mark.once
def test_good_frames_before_bad_bytes_are_kept_on_the_error():
    with pytest.raises(ProtocolError, match="ERR oops") as refused:
        FrameReader().feed(SUBSCRIBED + MESSAGE + b"-ERR oops\r\n")
    assert [frame[0] for frame in refused.value.frames] == [b"psubscribe", b"pmessage"]


@pytest.mark.once
def test_an_unfinished_frame_cannot_grow_without_bound():
    reader = FrameReader(limit=100)
    assert reader.feed(b"*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\nc\r\n$1000\r\n" + b"x" * 50) == []
    with pytest.raises(ProtocolError, match="more than 100 bytes"):
        reader.feed(b"x" * 60)


@pytest.mark.once
def test_a_read_hands_over_the_good_frames_then_gives_the_connection_up():
    """Bytes that break the protocol after a message: the message is still delivered, then the connection ends."""
    ours, theirs = socket.socketpair()
    subscription = PatternSubscription.__new__(PatternSubscription)  # on a socket pair, without Redis
    subscription._connection, subscription._sock, subscription._reader = None, ours, FrameReader()
    subscription._pinged, subscription._broken = False, None
    try:
        theirs.sendall(MESSAGE + b"-ERR oops\r\n")
        assert subscription.read()[0][0] == b"pmessage"
        with pytest.raises(ProtocolError, match="ERR oops"):
            subscription.read()
    finally:
        ours.close()
        theirs.close()


# -- the subscription, on real Redis ------------------------------------------------------------------------


def _read_until(subscription: PatternSubscription, count: int) -> list[list[bytes | int]]:
    frames: list[list[bytes | int]] = []
    while len(frames) < count:
        frames += subscription.read()
    return frames


@pytest.mark.services
@pytest.mark.parametrize("protocol", [2, 3])
def test_a_subscription_reads_what_redis_publishes_byte_for_byte(redis_url, protocol):
    client = redis.Redis.from_url(redis_url, protocol=protocol)
    subscription = PatternSubscription(client, "chatroom-test:room:*")
    try:
        assert subscription.read() == [[b"psubscribe", b"chatroom-test:room:*", 1]]
        payloads = [b"small", b"with\r\nline breaks\r\n", bytes(range(256)) * 2048]  # the last one: 512 KiB
        for payload in payloads:
            client.publish("chatroom-test:room:3", payload)
        client.publish("chatroom-test:other", b"not ours")
        frames = _read_until(subscription, len(payloads))
        assert frames == [[b"pmessage", b"chatroom-test:room:*", b"chatroom-test:room:3", p] for p in payloads]
    finally:
        subscription.close()
        client.close()


@pytest.mark.services
def test_redis_py_still_keeps_the_connected_socket_where_we_read_it(redis_url):
    """``PatternSubscription`` reads redis-py's private ``Connection._sock``: a redis-py upgrade that moves it
    must fail here, not in production."""
    client = redis.Redis.from_url(redis_url)
    connection = client.connection_pool.get_connection()
    try:
        assert connection._sock is not None and connection._sock.fileno() >= 0
    finally:
        client.connection_pool.release(connection)
        client.close()


@pytest.mark.services
def test_a_quiet_connection_is_pinged_and_stays(redis_url):
    client = redis.Redis.from_url(redis_url, protocol=2)
    subscription = PatternSubscription(client, "chatroom-test:room:*", idle_seconds=0.2)
    try:
        subscription.read()  # subscribed
        got: list[list[bytes | int]] = []
        reader = threading.Thread(target=lambda: got.extend(subscription.read()))
        reader.start()
        reader.join(1.0)  # ~5 PINGs' worth of quiet
        assert got == [[b"pong", b""]]  # PINGed, answered (RESP2, as the broker speaks), and returned
        client.publish("chatroom-test:room:1", b"still here")
        assert _read_until(subscription, 1)[-1][-1] == b"still here"
    finally:
        subscription.close()
        client.close()


@pytest.mark.services
def test_a_redis_that_stops_answering_is_given_up_on_after_an_unanswered_ping(own_redis):
    client = redis.Redis.from_url(own_redis.url)
    subscription = PatternSubscription(client, "chatroom-test:room:*", idle_seconds=0.3)
    try:
        subscription.read()
        own_redis.pause()  # a frozen host: the socket stays open, nothing comes back
        started = time.monotonic()
        with pytest.raises(ConnectionError, match="did not answer a PING"):
            subscription.read()
        assert time.monotonic() - started < 5  # quiet 0.3 s, PING, quiet 0.3 s more: gone
    finally:
        subscription.close()
        client.close()


@pytest.mark.services
def test_redis_going_away_ends_the_read(own_redis):
    client = redis.Redis.from_url(own_redis.url)
    subscription = PatternSubscription(client, "chatroom-test:room:*")
    try:
        subscription.read()
        own_redis.kill()
        with pytest.raises(ConnectionError):
            subscription.read()
    finally:
        subscription.close()
        client.close()


@pytest.mark.services
def test_close_wakes_a_read_in_progress_and_returns_the_connection(redis_url):
    client = redis.Redis.from_url(redis_url)
    subscription = PatternSubscription(client, "chatroom-test:room:*")
    subscription.read()
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            subscription.read()
        except BaseException as error:  # the test wants to see what it was
            outcome.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.2)
    subscription.close()
    reader.join(5)
    assert not reader.is_alive() and isinstance(outcome[0], ConnectionError)
    subscription.close()  # twice: nothing more to do
    assert client.connection_pool._in_use_connections == set()  # released, not leaked
    client.close()


# -- the publisher -------------------------------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.parametrize("protocol", [2, 3])
def test_a_publish_reaches_the_subscribers_and_keeps_its_connection(redis_url, protocol):
    with _publisher(redis_url, protocol=protocol) as publisher, redis.Redis.from_url(redis_url) as client:
        subscription = PatternSubscription(client, "chatroom-test:pub:*")
        try:
            subscription.read()
            payload = b"with\r\nline breaks\r\n" + bytes(range(256)) * 256
            assert publisher.publish("chatroom-test:pub:1", payload) == 1  # one subscriber: ours
            assert publisher.publish("chatroom-test:nobody", b"x") == 0
            frames = _read_until(subscription, 1)
            assert frames == [[b"pmessage", b"chatroom-test:pub:*", b"chatroom-test:pub:1", payload]]
            assert len(publisher._idle) == 1  # one connection, used for both
        finally:
            subscription.close()


@contextlib.contextmanager
def _publisher(url: str, **options: Any) -> Iterator[Publisher]:
    """A ``Publisher`` on a client of ``url`` (``options``: redis-py's), closed afterwards, leaking nothing."""
    client = redis.Redis.from_url(url, **options)
    publisher = Publisher(client)
    try:
        yield publisher
    finally:
        publisher.close()
        assert publisher._idle == [] and client.connection_pool._in_use_connections == set()
        client.close()


@pytest.mark.services
def test_a_connection_killed_while_idle_is_replaced_without_an_error(own_redis):
    """Redis restarted, or a proxy dropped the idle connection: the next publish goes through on a new one."""
    with _publisher(own_redis.url, socket_timeout=1) as publisher:
        publisher.publish("chatroom-test:a", b"1")
        own_redis.kill()
        own_redis.start()
        assert publisher.publish("chatroom-test:a", b"2") == 0
        assert len(publisher._idle) == 1


@pytest.mark.services
def test_a_redis_that_does_not_answer_costs_one_timeout_and_its_connection(own_redis):
    with _publisher(own_redis.url, socket_timeout=0.3) as publisher:
        publisher.publish("chatroom-test:a", b"1")
        own_redis.pause()
        try:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                publisher.publish("chatroom-test:a", b"2")
            assert time.monotonic() - started < 2  # 0.3 s, not once per try
            assert publisher._idle == []  # its answer may still come: that connection is never read again
        finally:
            own_redis.resume()
        assert publisher.publish("chatroom-test:a", b"3") == 0


@pytest.mark.services
def test_an_error_reply_is_a_connection_error_and_the_connection_goes(own_redis):
    """A user whose rights leave out PUBLISH (Redis ACLs) gets ``-NOPERM``: the broker then falls back."""
    with redis.Redis.from_url(own_redis.url) as admin:
        admin.acl_setuser("limited", enabled=True, passwords=["+secret"], keys=["*"], channels=["*"],
                          commands=["+@all", "-publish"])  # fmt: skip
    with _publisher(own_redis.url.replace("redis://", "redis://limited:secret@")) as publisher:
        with pytest.raises(ConnectionError, match="NOPERM"):
            publisher.publish("chatroom-test:a", b"1")
        assert publisher._idle == []


# -- the broker's listener over it ---------------------------------------------------------------------------


@pytest.mark.services
def test_the_listener_resubscribes_after_its_connection_is_killed_and_streams_catch_up(own_redis):
    """Redis pub/sub is at most once: after a reconnect every local stream gets a ``resync`` (it re-reads the
    database), and what is published afterwards arrives as before."""
    broker = RedisBroker(own_redis.url)
    admin = redis.Redis.from_url(own_redis.url)
    try:
        subscription = broker.subscribe("room:5")
        assert broker.connected.wait(5)
        broker.publish("room:5", Event(EventKind.MESSAGE, b"data: one\n\n", seq=1, rev=0))
        assert subscription.get(5).seq == 1
        assert admin.client_kill_filter(_type="pubsub") == 1
        assert subscription.get(10).kind == EventKind.RESYNC
        assert wait_for(broker.connected.is_set)
        broker.publish("room:5", Event(EventKind.MESSAGE, b"data: two\n\n", seq=2, rev=0))
        assert subscription.get(5).seq == 2
    finally:
        broker.close()
        admin.close()
