"""The live stream, end to end: real gunicorn processes, real sockets, real PostgreSQL and Redis.

The lossless tests check the promise that matters most: whatever happens to the
connection, to Redis or to a worker, every client ends with every message
exactly once, in room order.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from datetime import timedelta

import pytest

from chatroom.extensions import db
from chatroom.models import Membership
from support.constants import PASSWORD, ROOM_PASSWORD
from support.live import Browser, Server, Stream, collecting, message_seqs, presence_aliases, wait_for

pytestmark = pytest.mark.live

ENDS_IN_3_SECONDS = {"starts_in": -timedelta(minutes=5), "lasts": timedelta(minutes=5, seconds=3)}


def _stream(server: Server, browser: Browser, code: str, after: int = 0) -> Stream:
    return Stream(server.port, f"/r/{code}/events?after={after}", browser.cookie_header())


def _room_with_host(make_room, make_facilitator, **kwargs):
    host = make_facilitator(name="Hana Host")
    return make_room(owner=host, **kwargs), host


def _lossless_run(servers_list, room, posters: int, per_poster: int, readers: int, disturb=None):
    """Posters post through the real form while readers drop and resume their streams at random."""
    total = posters * per_poster
    code = room.code
    poster_browsers = [
        Browser(servers_list[i % len(servers_list)].port).join(code, f"poster{i}", ROOM_PASSWORD)
        for i in range(posters)
    ]
    reader_browsers = [
        Browser(servers_list[i % len(servers_list)].port).join(code, f"reader{i}", ROOM_PASSWORD)
        for i in range(readers)
    ]
    results: dict[int, list[int]] = {}
    failures: list[BaseException] = []
    posted = threading.Event()
    rng = random.Random(1234)

    def reader(index: int, browser: Browser) -> None:
        try:
            stream = Stream(0, f"/r/{code}/events?after=0", browser.cookie_header())
            hop = index
            deadline = time.time() + 120
            while time.time() < deadline:
                server = servers_list[hop % len(servers_list)]  # reconnect to any instance
                hop += 1
                stream.port = server.port
                try:
                    stream.open(timeout=5)
                    if stream.status != 200:
                        time.sleep(0.2)
                        stream.close()
                        continue
                    window = rng.uniform(0.05, 0.8) if not posted.is_set() else 5
                    for _ in stream.read_events(window):
                        if len(message_seqs(stream.events)) >= total:
                            break
                except OSError:
                    time.sleep(0.1)
                finally:
                    stream.close()
                    stream.closed = False
                if len(message_seqs(stream.events)) >= total:
                    break
            results[index] = message_seqs(stream.events)
        except BaseException as error:
            failures.append(error)

    def poster(index: int, browser: Browser) -> None:
        try:
            for n in range(per_poster):
                browser.say(code, f"poster {index} says {n}")
                time.sleep(rng.uniform(0, 0.01))
        except BaseException as error:
            failures.append(error)

    reader_threads = [threading.Thread(target=reader, args=(i, b)) for i, b in enumerate(reader_browsers)]
    poster_threads = [threading.Thread(target=poster, args=(i, b)) for i, b in enumerate(poster_browsers)]
    for t in reader_threads + poster_threads:
        t.start()
    if disturb is not None:
        disturb()
    for t in poster_threads:
        t.join(180)
    posted.set()
    for t in reader_threads:
        t.join(180)
    assert failures == []
    expected = list(range(1, total + 1))
    for index in range(readers):
        got = results.get(index, [])
        assert got == expected, f"reader {index}: {len(got)} events, first wrong at {_first_difference(got, expected)}"


def _first_difference(got: list[int], expected: list[int]) -> str:
    for i, (a, b) in enumerate(zip(got, expected, strict=False)):
        if a != b:
            return f"position {i}: got {a}, expected {b}"
    return f"length {len(got)} vs {len(expected)}"


# -- the stream's contract ------------------------------------------------------


def test_stream_headers_first_bytes_and_heartbeat(servers, make_room, make_facilitator):
    server = servers()
    room, _ = _room_with_host(make_room, make_facilitator)
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    stream = _stream(server, pat, room.code).open()
    try:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-cache, no-transform"
        assert stream.headers["x-accel-buffering"] == "no"
        list(stream.read_events(0.3))
        assert stream.raw.startswith("retry: 2000\n\n: connected")  # at once, before any message exists
        list(stream.read_events(2.5))
        assert ": heartbeat" in stream.raw  # STREAM_HEARTBEAT_SECONDS=1 in the live servers
    finally:
        stream.close()


def test_messages_reach_every_tab_including_the_senders(servers, make_room, make_facilitator):
    server = servers()
    room, _ = _room_with_host(make_room, make_facilitator)
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    kim = Browser(server.port).join(room.code, "Kim", ROOM_PASSWORD)
    streams = (_stream(server, pat, room.code).open(), _stream(server, kim, room.code).open())
    with collecting(*streams) as (pat_stream, kim_stream):
        pat.say(room.code, "<b>hello</b> from Pat")
        for collector in (pat_stream, kim_stream):
            assert wait_for(lambda c=collector: message_seqs(c.stream.events) == [1])
            [event] = [e for e in collector.stream.events if e.id == "1.0"]
            assert "&lt;b&gt;hello&lt;/b&gt; from Pat" in event.data
            assert 'id="message-1"' in event.data


def test_reconnect_with_last_event_id_resumes_after_it(servers, make_room, make_facilitator):
    server = servers()
    room, _ = _room_with_host(make_room, make_facilitator)
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    for n in range(5):
        pat.say(room.code, f"m{n}")
    stream = _stream(server, pat, room.code, after=2)
    stream.last_event_id = "3.0"  # the header wins over the page's cursor
    stream.open()
    list(stream.read_events(1.5))
    stream.close()
    assert message_seqs(stream.events) == [4, 5]


def test_lossless_under_random_reconnects(servers, make_room, make_facilitator, database_url):
    """20 posters × 50 messages while 30 readers drop and resume their streams at random."""
    # The embedded default is one process; with Redis, two instances of two workers each.
    instances = [servers()] if database_url.startswith("sqlite") else [servers(workers=2), servers(workers=2)]
    room, _ = _room_with_host(make_room, make_facilitator)
    _lossless_run(instances, room, posters=20, per_poster=50, readers=30)


@pytest.mark.services
def test_lossless_when_redis_restarts_mid_run(servers, make_room, make_facilitator, own_redis):
    instances = [servers(workers=2, redis=own_redis.url), servers(workers=1, redis=own_redis.url)]
    room, _ = _room_with_host(make_room, make_facilitator)
    restarted: list[bool] = []

    def disturb() -> None:
        time.sleep(1.0)
        own_redis.kill()
        time.sleep(2.0)  # posting goes on while Redis is down
        own_redis.start()
        restarted.append(True)

    _lossless_run(instances, room, posters=10, per_poster=30, readers=12, disturb=disturb)
    assert restarted, "Redis was never restarted"


@pytest.mark.services
def test_lossless_when_a_worker_is_killed(servers, make_room, make_facilitator):
    server = servers(workers=2)
    room, _ = _room_with_host(make_room, make_facilitator)
    killed: list[int] = []

    def disturb() -> None:
        time.sleep(1.0)
        pid = server.worker_pids()[0]
        subprocess.run(["kill", "-9", str(pid)], check=True)  # the master starts a new one
        killed.append(pid)

    _lossless_run([server], room, posters=10, per_poster=30, readers=12, disturb=disturb)
    assert killed and killed[0] not in server.worker_pids()


def test_a_reconnect_never_gets_the_first_text_of_a_message_removed_meanwhile(
    app, servers, make_room, make_facilitator
):
    """Rex's tab drops; Pat posts something the host removes at once; Rex comes back with Last-Event-ID. He gets
    the message as it is now (removed), never its first words, even from the room writer's memory."""
    server = servers()
    room, host = _room_with_host(make_room, make_facilitator)
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    rex = Browser(server.port).join(room.code, "Rex", ROOM_PASSWORD)
    hana = Browser(server.port).sign_in(host.email, PASSWORD)
    pat.say(room.code, "hello all")
    first = _stream(server, rex, room.code).open()
    assert wait_for(lambda: any(e.id == "1.0" for e in first.read_events(0.2)), timeout=10)
    first.close()
    pat.say(room.code, "SECRET words the host removes")
    assert hana.post(f"/r/{room.code}/messages/2/remove", {}) == 303
    again = Stream(server.port, f"/r/{room.code}/events", rex.cookie_header(), last_event_id="1.0").open()
    seen = list(again.read_events(2))
    again.close()
    assert any(e.id and e.id.startswith("2.") for e in seen)  # #2 arrived, as it is now
    assert not any("SECRET" in e.data for e in seen)


def test_a_cursor_from_the_future_still_gets_what_comes_next(servers, make_room, make_facilitator):
    """A Last-Event-ID beyond the room (a tab from another server's database, a hand-made one) starts at the
    room's newest instead: otherwise the stream would skip every message behind healthy heartbeats. Both the
    first connection (the room is read) and a reconnect that this process could admit from memory."""
    server = servers()
    room, _ = _room_with_host(make_room, make_facilitator)
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    rex = Browser(server.port).join(room.code, "Rex", ROOM_PASSWORD)
    pat.say(room.code, "first")
    ordinary = _stream(server, pat, room.code).open()  # keeps the room's writer (and its memory) here
    assert wait_for(lambda: any(e.id == "1.0" for e in ordinary.read_events(0.2)), timeout=10)
    ahead = [
        Stream(server.port, f"/r/{room.code}/events", rex.cookie_header(), last_event_id=cursor).open()
        for cursor in ("999999.999999", "1.99")
    ]
    for stream in ahead:
        assert stream.status == 200
        list(stream.read_events(0.5))
    pat.say(room.code, "second")
    for stream in ahead:
        assert wait_for(lambda s=stream: any(e.id == "2.0" for e in s.read_events(0.2)), timeout=10), stream.raw
        stream.close()
    ordinary.close()


# -- ends and refusals -----------------------------------------------------------


def test_removed_participant_stream_ends_and_cannot_reconnect(app, servers, make_room, make_facilitator):
    server = servers()
    room, host = _room_with_host(make_room, make_facilitator)
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    stream = _stream(server, pat, room.code).open()
    list(stream.read_events(0.5))
    hana = Browser(server.port).sign_in(host.email, PASSWORD)
    with app.app_context():
        member = db.session.query(Membership).filter_by(room_id=room.id, alias="Pat").one()
    assert hana.post(f"/r/{room.code}/members/{member.id}/remove", {}) == 303
    events = list(stream.read_events(5))
    assert stream.closed, "the removed participant's stream must end"
    assert any(e.event == "close" for e in events)
    assert any("removed you" in e.data for e in events)
    again = _stream(server, pat, room.code).open()
    assert again.status == 403
    again.close()
    # A ban says so: the page must not tell a banned browser it may join again.
    kim = Browser(server.port).join(room.code, "Kim", ROOM_PASSWORD)
    stream = _stream(server, kim, room.code).open()
    list(stream.read_events(0.5))
    with app.app_context():
        member = db.session.query(Membership).filter_by(room_id=room.id, alias="Kim").one()
    assert hana.post(f"/r/{room.code}/members/{member.id}/ban", {}) == 303
    events = list(stream.read_events(5))
    assert [e.data for e in events if e.event == "close"] == ["banned"]
    assert any("cannot join it again" in e.data for e in events) and not any("join again" in e.data for e in events)


def test_stream_ends_when_the_room_ends_and_refuses_reconnects(app, servers, make_room, make_facilitator):
    server = servers()
    room, _ = _room_with_host(make_room, make_facilitator, **ENDS_IN_3_SECONDS)
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    stream = _stream(server, pat, room.code).open()
    events = list(stream.read_events(10))
    assert stream.closed
    assert events[-1].event == "close" and events[-1].data == "ended"
    again = _stream(server, pat, room.code).open()
    assert again.status == 200  # not an error: an error would only make the browser retry
    tail = list(again.read_events(3))
    assert again.closed and tail[-1].event == "close"


def test_non_member_gets_403(servers, make_room, make_facilitator):
    server = servers()
    room, _ = _room_with_host(make_room, make_facilitator)
    stranger = Browser(server.port)
    stream = _stream(server, stranger, room.code).open()
    assert stream.status == 403
    stream.close()


# -- presence and typing -----------------------------------------------------------


def test_presence_join_leave_and_multi_tab(servers, make_room, make_facilitator):
    server = servers()
    room, _ = _room_with_host(make_room, make_facilitator)
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    kim = Browser(server.port).join(room.code, "Kim", ROOM_PASSWORD)
    with collecting(_stream(server, pat, room.code).open()) as (watcher,):
        assert wait_for(lambda: presence_aliases(watcher.stream.events) == ["Pat"])
        tab1 = _stream(server, kim, room.code).open()
        assert wait_for(lambda: presence_aliases(watcher.stream.events) == ["Kim", "Pat"])
        tab2 = _stream(server, kim, room.code).open()
        count = len(watcher.stream.events)
        tab1.close()
        time.sleep(1.5)
        assert presence_aliases(watcher.stream.events) == ["Kim", "Pat"]  # one tab still open
        assert not any('id="presence"' in e.data for e in watcher.stream.events[count:])
        tab2.close()
        assert wait_for(lambda: presence_aliases(watcher.stream.events) == ["Pat"])


def test_typing_reaches_others_not_the_typist_and_is_throttled(servers, make_room, make_facilitator):
    server = servers()
    room, _ = _room_with_host(make_room, make_facilitator)
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    kim = Browser(server.port).join(room.code, "Kim", ROOM_PASSWORD)
    streams = (_stream(server, pat, room.code).open(), _stream(server, kim, room.code).open())
    with collecting(*streams) as (pat_view, kim_view):
        time.sleep(0.5)
        assert kim.post(f"/r/{room.code}/typing", {}) == 204
        assert kim.post(f"/r/{room.code}/typing", {}) == 204  # within 3 s: dropped
        assert wait_for(lambda: any(e.event == "typing" for e in pat_view.stream.events))
        time.sleep(1)
        typing = [e for e in pat_view.stream.events if e.event == "typing"]
        assert len(typing) == 1
        assert '"alias": "Kim"' in typing[0].data and '"ttl": 5' in typing[0].data
        assert typing[0].id is None
        assert not any(e.event == "typing" for e in kim_view.stream.events)


# -- capacity and scale-out -----------------------------------------------------------


def test_idle_streams_hold_no_database_connection(servers, make_room, make_facilitator):
    """500 open streams on one worker with a pool of 5 + 10 overflow, and posting still works."""
    server = servers(DB_POOL_SIZE="5", DB_MAX_OVERFLOW="10", STREAM_HEARTBEAT_SECONDS="15")
    room, _ = _room_with_host(make_room, make_facilitator)
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    streams = []
    try:
        for _ in range(500):
            streams.append(_stream(server, pat, room.code).open(timeout=20))
        assert all(s.status == 200 for s in streams)
        started = time.time()
        pat.say(room.code, "still works", within=0)
        assert time.time() - started < 10
        for stream in random.Random(7).sample(streams, 10):
            seen = []
            for event in stream.read_events(5):
                if event.id is not None:
                    seen.append(event.id)
                    break
            assert seen == ["1.0"]
    finally:
        for stream in streams:
            stream.close()


@pytest.mark.services
def test_two_instances_share_messages_and_presence(servers, make_room, make_facilitator):
    one, two = servers(workers=1), servers(workers=1)
    room, _ = _room_with_host(make_room, make_facilitator)
    pat = Browser(one.port).join(room.code, "Pat", ROOM_PASSWORD)
    kim = Browser(two.port).join(room.code, "Kim", ROOM_PASSWORD)
    streams = (_stream(one, pat, room.code).open(), _stream(two, kim, room.code).open())
    with collecting(*streams) as (on_one, _):
        assert wait_for(lambda: presence_aliases(on_one.stream.events) == ["Kim", "Pat"])
        kim.say(room.code, "posted on instance two")
        assert wait_for(lambda: message_seqs(on_one.stream.events) == [1])
        assert "posted on instance two" in on_one.stream.events[-1].data


def test_extending_the_end_time_reaches_open_streams(servers, make_room, make_facilitator):
    """Open streams learn the new end time (otherwise they would close at the old one)."""
    server = servers()
    room, host = _room_with_host(make_room, make_facilitator, **ENDS_IN_3_SECONDS)
    pat = Browser(server.port).join(room.code, "Pat", ROOM_PASSWORD)
    stream = _stream(server, pat, room.code).open()
    hana = Browser(server.port).sign_in(host.email, PASSWORD)
    form = {
        "title": room.title,
        "timezone": "UTC",
        "starts_at": room.starts_at.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (room.ends_at + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "password": "",
    }
    assert hana.post(f"/rooms/{room.code}", form) == 303
    events = list(stream.read_events(5))
    try:
        assert not stream.closed
        assert not any(e.event == "close" for e in events)
    finally:
        stream.close()
