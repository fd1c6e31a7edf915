"""The broker on both backends: fan-out, overflow, presence with several tabs and crashed instances, claims."""

from __future__ import annotations

import time

import pytest

from chatroom.broker import QUEUE_LIMIT, Event, MemoryBroker, RedisBroker
from support.constants import BACKEND


@pytest.fixture(params=["memory", "redis"] if BACKEND == "services" else ["memory"])
def make_broker(request, redis_url, app):
    made = []

    def make(ttl: float = 40.0):
        if request.param == "redis":
            broker = RedisBroker(redis_url, presence_ttl=ttl)
        else:
            broker = MemoryBroker(presence_ttl=ttl)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()


def test_event_round_trips_through_its_wire_form():
    event = Event("change", b"id: 3.4\ndata: x\n\n", seq=3, rev=4, target=2)
    assert Event.decode(event.encode()) == event


def test_publish_reaches_every_subscriber_of_the_channel_only(make_broker):
    broker = make_broker()
    a, b, other = broker.subscribe("room:1"), broker.subscribe("room:1"), broker.subscribe("room:2")
    broker.publish("room:1", Event("message", b"x", seq=1))
    assert a.get(2).seq == 1 and b.get(2).seq == 1
    assert other.get(0.2) is None
    a.close()
    broker.publish("room:1", Event("message", b"y", seq=2))
    assert b.get(2).seq == 2
    assert broker.local_stream_count() == 2


def test_a_stuck_subscriber_is_told_to_resync_instead_of_growing(make_broker):
    broker = make_broker()
    sub = broker.subscribe("room:9")
    for seq in range(QUEUE_LIMIT + 50):
        sub.put(Event("message", seq=seq))
    first = sub.get(0)
    assert first.kind == "resync"
    assert sub.get(0) is not None  # it keeps receiving after the resync


def test_presence_counts_tabs_once_and_announces_only_changes(make_broker):
    broker = make_broker()
    announced: list[int] = []
    broker.on_presence_changed = announced.append
    tab1 = broker.enter(5, membership_id=7)
    tab2 = broker.enter(5, membership_id=7)
    assert broker.present(5) == {7}
    assert broker.announce_changes() == [5]  # two tabs, one announcement
    broker.leave(5, 7, tab1)
    assert broker.announce_changes() == []  # still here in the other tab: nothing to say
    broker.leave(5, 7, tab2)
    assert broker.present(5) == set()
    assert broker.announce_changes() == [5]
    assert announced == [5, 5]


def test_a_crashed_instances_connections_expire(make_broker):
    crashed = make_broker(ttl=0.5)
    survivor = make_broker(ttl=0.5)
    if isinstance(crashed, MemoryBroker):
        survivor = crashed  # one process: the 'crash' is a connection that never leaves
    crashed.enter(3, membership_id=11)
    survivor.enter(3, membership_id=12)
    with crashed._lock:
        crashed._local_conns = {c for c in crashed._local_conns if c[1] != 11}  # nobody refreshes 11 any more
    if crashed is not survivor:
        crashed.close()  # the instance is gone: no refreshing, no leaving
    announced: list[int] = []
    survivor.on_presence_changed = announced.append
    time.sleep(0.7)
    survivor.refresh_presence()
    survivor.announce_changes()
    assert survivor.present(3) == {12}
    assert 3 in announced or survivor._announced.get(3) == frozenset({12})


def test_claim_is_once_per_interval(make_broker):
    broker = make_broker()
    assert broker.claim("typing:1", 0.3)
    assert not broker.claim("typing:1", 0.3)
    assert broker.claim("typing:2", 0.3)
    time.sleep(0.35)
    assert broker.claim("typing:1", 0.3)


@pytest.mark.services
def test_redis_publish_while_down_is_delivered_locally_and_retried(redis_url):
    broker = RedisBroker("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        sub = broker.subscribe("room:4")
        broker.publish("room:4", Event("message", b"m", seq=1))
        broker.publish("room:4", Event("typing", b"t"))
        assert sub.get(1).seq == 1  # our own streams got it at once
        assert [e.kind for _, e in broker._pending] == ["message"]  # kept for Redis; typing is not worth it
    finally:
        broker.close()
