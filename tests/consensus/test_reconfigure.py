"""System config carried by BlockPersisted: the next height runs with it."""

from __future__ import annotations

import pytest

from consensus import BlockPersisted, Replica
from consensus.crypto import hash32
from tests.consensus.test_replica import config


def test_leader_period_and_timeout_change_from_the_next_height() -> None:
    r = Replica(config(4, 0))
    assert [r.leader_of(0, h) for h in (2, 3, 4, 5)] == [2, 3, 0, 1]
    r.step(BlockPersisted(1, hash32(b"b1"), timeout_ticks=40, leader_period=2))
    assert r.config.leader_period == 2 and r.config.timeout_ticks == 40
    assert [r.leader_of(0, h) for h in (2, 3, 4, 5)] == [1, 1, 2, 2]
    r.step(BlockPersisted(2, hash32(b"b2")))  # nothing given: nothing changes
    assert r.config.leader_period == 2 and r.config.timeout_ticks == 40


def test_an_invalid_config_is_our_bug_and_raises() -> None:
    r = Replica(config(4, 0))
    with pytest.raises(ValueError):
        r.step(BlockPersisted(1, hash32(b"b1"), leader_period=0))
    assert r.height == 1 and r.config.leader_period == 1  # nothing half-applied
