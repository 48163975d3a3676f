"""The liveness model: when a quorum can talk, and which stalls break their bound."""

from __future__ import annotations

import pytest

from scripts.chaos.stalls import RECONNECT, SLACK, Point, find_stalls, quorum_can_talk

pytestmark = pytest.mark.timeout(30)


def test_quorum_can_talk() -> None:
    everyone = lambda a, b: True  # noqa: E731
    assert quorum_can_talk([0, 1, 2, 3], [0, 1, 2], everyone)
    assert not quorum_can_talk([0, 1, 2, 3], [0, 1], everyone)
    split = lambda a, b: (a < 2) == (b < 2)  # noqa: E731  {0,1} | {2,3}
    assert not quorum_can_talk([0, 1, 2, 3], [0, 1, 2, 3], split)
    isolate0 = lambda a, b: 0 not in (a, b)  # noqa: E731
    assert quorum_can_talk([0, 1, 2, 3], [0, 1, 2, 3], isolate0)
    assert not quorum_can_talk([0, 1, 2, 3], [0, 1, 2], isolate0)
    assert quorum_can_talk([0, 1, 2, 3, 4], [1, 2, 3, 4], everyone)  # 5 sealers: quorum 4


def points(spec: list[tuple[float, int, bool]], timeout: float = 3.0) -> list[Point]:
    return [Point(t, h, talk, True, timeout, 0.0) for t, h, talk in spec]


def test_a_stall_while_a_quorum_talks_is_measured_against_3_timeouts() -> None:
    ps = points([(0, 1, True), (1, 2, True), (2, 2, True), (10, 2, True), (11, 3, True)])
    [stall] = find_stalls(ps)
    assert (stall.start, stall.end) == (1, 11)
    assert stall.bound == 3 * 3.0 + SLACK
    assert stall.ok  # 10 s, within 3 x 3 + 5


def test_no_stall_is_counted_while_no_quorum_can_talk() -> None:
    ps = points([(0, 1, True), (1, 1, False), (30, 1, False), (31, 1, True), (33, 2, True)])
    [stall] = find_stalls(ps)
    assert (stall.start, stall.end) == (31, 33)
    assert stall.after_outage and stall.bound == 3 * 3.0 + RECONNECT + SLACK


def test_idle_time_is_not_a_stall() -> None:
    ps = [Point(t, 5, True, False, 3.0, 0.0) for t in range(100)]
    assert find_stalls(ps) == []


def test_a_stall_beyond_its_bound_fails() -> None:
    ps = points([(0, 1, True), (1, 2, True), (60, 2, True), (61, 3, True)])
    [stall] = find_stalls(ps)
    assert stall.seconds == 60 and not stall.ok
