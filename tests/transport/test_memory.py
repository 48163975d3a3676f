"""In-memory transport: the same interface as TCP/MQTT without sockets."""

from __future__ import annotations

import asyncio

import pytest

from node.transport.base import TransportClosed
from node.transport.memory import MemoryHub, MemoryTransport

pytestmark = pytest.mark.asyncio

IDS = [f"{i:02x}" * 64 for i in range(1, 5)]


async def test_send_broadcast_and_peers() -> None:
    hub = MemoryHub()
    a, b, c = (MemoryTransport(hub, i) for i in IDS[:3])
    async with a, b, c:
        assert a.peers() == {IDS[1], IDS[2]}
        assert a.send(IDS[1], b"one")
        assert await b.recv() == (IDS[0], b"one")
        assert a.broadcast(b"all") == 2
        assert await b.recv() == (IDS[0], b"all")
        assert await c.recv() == (IDS[0], b"all")
        assert a.stats.frames_out == 3 and b.stats.frames_in == 2
        assert not a.send(IDS[3], b"nobody")
        assert a.stats.dropped["not_connected"] == 1
    assert a.peers() == frozenset()


async def test_iteration_ends_on_close() -> None:
    hub = MemoryHub()
    a, b = MemoryTransport(hub, IDS[0]), MemoryTransport(hub, IDS[1])
    async with a, b:
        a.send(IDS[1], b"x")
        got = []

        async def consume() -> None:
            async for peer, data in b:
                got.append((peer, data))

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)
    await asyncio.wait_for(task, 1)
    assert got == [(IDS[0], b"x")]
    with pytest.raises(TransportClosed):
        await b.recv()


async def test_partition_and_heal() -> None:
    hub = MemoryHub()
    ts = [MemoryTransport(hub, i) for i in IDS]
    for t in ts:
        await t.start()
    hub.partition(IDS[:2], IDS[2:])
    assert ts[0].peers() == {IDS[1]}
    assert not ts[0].send(IDS[2], b"x")
    assert ts[0].broadcast(b"y") == 1
    hub.heal()
    await ts[0].wait_for_peers(IDS[1:], timeout=1)
    assert ts[0].broadcast(b"z") == 3
    for t in ts:
        await t.close()


async def test_drop_and_latency_hooks() -> None:
    dropped_to = IDS[2]
    hub = MemoryHub(
        drop=lambda src, dst, data: dst == dropped_to,
        latency=lambda src, dst: 0.05 if dst == IDS[1] else 0.0,
    )
    a, b, c = (MemoryTransport(hub, i) for i in IDS[:3])
    async with a, b, c:
        assert a.broadcast(b"m") == 2  # the sender cannot tell a frame was lost
        assert hub.lost["drop_hook"] == 1
        assert len(b.recv_nowait_many()) == 0  # still in flight
        assert await asyncio.wait_for(b.recv(), 1) == (IDS[0], b"m")
        assert c.recv_nowait_many() == []


async def test_allowed_set_filters_both_ways() -> None:
    hub = MemoryHub()
    a = MemoryTransport(hub, IDS[0], allowed=IDS[:2])
    b, c = MemoryTransport(hub, IDS[1]), MemoryTransport(hub, IDS[2])
    async with a, b, c:
        assert a.peers() == {IDS[1]}
        assert not a.send(IDS[2], b"x")
        c.send(IDS[0], b"intruder")
        assert a.stats.dropped["not_member"] == 1
        assert a.recv_nowait_many() == []


async def test_set_members_and_blacklist() -> None:
    hub = MemoryHub()
    a, b, c = (MemoryTransport(hub, i) for i in IDS[:3])
    async with a, b, c:
        a.set_members(None, blacklist=[IDS[1]])
        assert a.peers() == {IDS[2]}
        assert not a.send(IDS[1], b"x")
        b.send(IDS[0], b"y")
        assert a.stats.dropped["not_member"] == 1
        a.set_members(IDS[:2])
        assert a.peers() == {IDS[1]}


async def test_full_inbox_drops_and_counts() -> None:
    hub = MemoryHub()
    a, b = MemoryTransport(hub, IDS[0]), MemoryTransport(hub, IDS[1], inbox_capacity=3)
    async with a, b:
        for i in range(5):
            a.send(IDS[1], bytes([i]))
        assert [d for _, d in b.recv_nowait_many()] == [b"\x00", b"\x01", b"\x02"]
        assert b.stats.dropped["inbox_full"] == 2


async def test_duplicate_node_id_rejected() -> None:
    hub = MemoryHub()
    async with MemoryTransport(hub, IDS[0]):
        with pytest.raises(ValueError, match="already"):
            await MemoryTransport(hub, IDS[0]).start()
