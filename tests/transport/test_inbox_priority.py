"""Inbox.urgent_if: marked frames are served first, in arrival order among themselves,
and count against the capacity like any other."""

from __future__ import annotations

import pytest

from node.transport.base import Inbox

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]


def urgent(data: bytes) -> bool:
    return data[:1] == b"!"


async def test_urgent_frames_jump_the_queue_in_their_own_order() -> None:
    inbox = Inbox(capacity=10)
    inbox.urgent_if = urgent
    for data in (b"a", b"!1", b"b", b"!2", b"c"):
        inbox.put("p", data)
    assert len(inbox) == 5
    got = [(await inbox.get())[1] for _ in range(5)]
    assert got == [b"!1", b"!2", b"a", b"b", b"c"]


async def test_get_many_and_get_urgent() -> None:
    inbox = Inbox(capacity=10)
    inbox.urgent_if = urgent
    for data in (b"a", b"!1", b"b", b"!2"):
        inbox.put("p", data)
    assert [d for _, d in inbox.get_urgent(1)] == [b"!1"]
    assert [d for _, d in inbox.get_many(10)] == [b"!2", b"a", b"b"]
    assert inbox.get_urgent(5) == [] and len(inbox) == 0


async def test_urgent_frames_count_against_the_capacity() -> None:
    inbox = Inbox(capacity=3)
    inbox.urgent_if = urgent
    for data in (b"!1", b"!2", b"a"):
        inbox.put("p", data)
    assert inbox.over_capacity()
    inbox.get_urgent(1)
    assert not inbox.over_capacity()


async def test_without_a_mark_it_is_one_fifo() -> None:
    inbox = Inbox(capacity=10)
    for data in (b"a", b"!1", b"b"):
        inbox.put("p", data)
    assert [(await inbox.get())[1] for _ in range(3)] == [b"a", b"!1", b"b"]
