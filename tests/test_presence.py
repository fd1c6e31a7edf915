"""Presence on both backends: several tabs, crashed instances, batched announcements, the claim throttle."""

from __future__ import annotations

import time

import pytest

from chatroom.presence import MemoryPresence, RedisPresence
from support.constants import BACKEND


@pytest.fixture(params=["memory", "redis"] if BACKEND == "services" else ["memory"])
def make_presence(request, redis_url, app):
    made = []

    def make(ttl: float = 40.0):
        presence = RedisPresence(redis_url, ttl) if request.param == "redis" else MemoryPresence(ttl)
        made.append(presence)
        return presence

    yield make
    for presence in made:
        presence.close()


def test_presence_counts_tabs_once_and_announces_only_changes(make_presence):
    presence = make_presence()
    announced: list[int] = []
    presence.on_change = announced.append
    tab1 = presence.enter(5, membership_id=7)
    tab2 = presence.enter(5, membership_id=7)
    assert presence.present(5) == {7}
    assert presence.announce_changes() == [5]  # two tabs, one announcement
    presence.leave(5, 7, tab1)
    assert presence.announce_changes() == []  # still here in the other tab: nothing to say
    presence.leave(5, 7, tab2)
    assert presence.present(5) == set()
    assert presence.announce_changes() == [5]
    assert announced == [5, 5]


def test_a_crashed_instances_connections_expire(make_presence):
    crashed = make_presence(ttl=0.5)
    survivor = make_presence(ttl=0.5)
    if isinstance(crashed, MemoryPresence):
        survivor = crashed  # one process: the 'crash' is a connection that never leaves
    crashed.enter(3, membership_id=11)
    survivor.enter(3, membership_id=12)
    with crashed._lock:
        crashed._local_conns = {c for c in crashed._local_conns if c[1] != 11}  # nobody refreshes 11 any more
    if crashed is not survivor:
        crashed.close()  # the instance is gone: no refreshing, no leaving
    announced: list[int] = []
    survivor.on_change = announced.append
    time.sleep(0.7)
    survivor.refresh()
    survivor.announce_changes()
    assert survivor.present(3) == {12}
    assert 3 in announced or survivor._announced.get(3) == frozenset({12})


def test_claim_is_once_per_interval(make_presence):
    presence = make_presence()
    assert presence.claim("typing:1", 0.3)
    assert not presence.claim("typing:1", 0.3)
    assert presence.claim("typing:2", 0.3)
    time.sleep(0.35)
    assert presence.claim("typing:1", 0.3)
