"""TCP + mutual TLS transport on loopback: admission, framing, resilience."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import struct
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from consensus.codec import pack
from node.certs import NodeIdentity
from node.transport.tcp import (
    FRAME_DATA,
    FRAME_HELLO,
    TcpTransport,
    encode_frame,
    parse_address,
)
from tests.transport.conftest import GENESIS, Pki

pytestmark = pytest.mark.asyncio


def make(pki: Pki, i: int, **kw: Any) -> TcpTransport:
    opts: dict[str, Any] = {
        "identity": pki.nodes[i],
        "genesis_hash": GENESIS,
        "allowed": pki.ids,
        "backoff_initial": 0.05,
        "backoff_max": 0.4,
    }
    opts.update(kw)
    return TcpTransport(**opts)


def addr(t: TcpTransport) -> str:
    return f"127.0.0.1:{t.listen_port}"


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


async def raw_member(
    ident: NodeIdentity, port: int, genesis: bytes = GENESIS
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A hand-driven TLS connection that completes the HELLO exchange as ``ident``."""
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ident.client_context())
    hello = pack([1, bytes.fromhex(ident.node_id), genesis, os.urandom(8)])
    w.write(encode_frame(FRAME_HELLO, hello))
    length, _ = struct.unpack(">IB", await r.readexactly(5))
    await r.readexactly(length)
    return r, w


async def closed_by_remote(r: asyncio.StreamReader) -> bool:
    try:
        async with asyncio.timeout(5):
            while await r.read(65536):
                pass
    except (ConnectionError, OSError):
        pass
    return True


async def test_parse_address() -> None:
    assert parse_address("127.0.0.1:30300") == ("127.0.0.1", 30300)
    assert parse_address(("::1", 1)) == ("::1", 1)
    assert parse_address("[::1]:30301") == ("::1", 30301)
    for bad in ("nohost", ":1", "h:0", "h:99999", "h:x"):
        with pytest.raises(ValueError):
            parse_address(bad)


async def test_frames_flow_both_ways_and_broadcast(pki: Pki) -> None:
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(make(pki, 0))
        b = await stack.enter_async_context(make(pki, 1, peers=[addr(a)]))
        c = await stack.enter_async_context(make(pki, 2, peers=[addr(a), addr(b)]))
        await a.wait_for_peers(pki.ids[1:3], timeout=5)
        await b.wait_for_peers([pki.ids[0], pki.ids[2]], timeout=5)
        assert a.send(b.node_id, b"a->b")
        assert await b.recv() == (a.node_id, b"a->b")
        assert b.send(a.node_id, b"b->a")
        assert await a.recv() == (b.node_id, b"b->a")
        assert c.broadcast(b"from c") == 2
        assert await asyncio.wait_for(a.recv(), 2) == (c.node_id, b"from c")
        assert await asyncio.wait_for(b.recv(), 2) == (c.node_id, b"from c")
        assert a.send(b.node_id, b"")  # empty frames are frames too
        assert await b.recv() == (a.node_id, b"")
        assert a.stats.frames_out == 2 and a.stats.frames_in == 2
    assert a.peers() == frozenset()


async def test_many_frames_arrive_intact_and_in_order(pki: Pki) -> None:
    """Write coalescing and chunked parsing must not split, merge or reorder frames."""
    rng = random.Random(7)
    frames = [rng.randbytes(rng.choice([0, 1, 7, 100, 3000, 70_000])) for _ in range(3000)]
    async with make(pki, 0) as a, make(pki, 1, peers=[f"127.0.0.1:{a.listen_port}"]) as b:
        await b.wait_for_peers([a.node_id], timeout=5)
        for i, f in enumerate(frames):
            assert b.send(a.node_id, f)
            if i % 500 == 0:
                await asyncio.sleep(0)
        got = [await asyncio.wait_for(a.recv(), 5) for _ in frames]
    assert [d for _, d in got] == frames
    assert a.stats.bytes_in == sum(map(len, frames))


async def test_max_frame_size_enforced_on_send(pki: Pki) -> None:
    async with (
        make(pki, 0, max_frame_size=4096) as a,
        make(pki, 1, peers=[f"127.0.0.1:{a.listen_port}"], max_frame_size=4096) as b,
    ):
        await b.wait_for_peers([a.node_id], timeout=5)
        assert b.send(a.node_id, b"x" * 4096)
        assert not b.send(a.node_id, b"x" * 4097)
        assert b.stats.dropped["frame_too_large"] == 1
        assert await a.recv() == (b.node_id, b"x" * 4096)
        assert not b.send(pki.ids[4], b"x")
        assert b.stats.dropped["not_connected"] == 1


async def test_one_connection_per_pair_when_both_dial(pki: Pki) -> None:
    a, b = make(pki, 0), make(pki, 1)
    async with a, b:
        a.add_peer(addr(b))
        b.add_peer(addr(a))
        await a.wait_for_peers([b.node_id], timeout=5)
        await b.wait_for_peers([a.node_id], timeout=5)
        await asyncio.sleep(0.5)  # let both dials land and the loser be closed
        lower = min(a.node_id, b.node_id)
        ca, cb = a._conns[b.node_id], b._conns[a.node_id]
        assert ca.dialer(a.node_id) == lower and cb.dialer(b.node_id) == lower
        await asyncio.sleep(0.5)
        assert a._conns[b.node_id] is ca and b._conns[a.node_id] is cb  # stable, no flapping
        a.send(b.node_id, b"ping")
        assert await asyncio.wait_for(b.recv(), 2) == (a.node_id, b"ping")


async def test_a_mesh_dialling_all_at_once_completes_every_tls_handshake(pki: Pki) -> None:
    # Every node dials every other at the same moment. An accepted socket must not be read
    # before TLS wraps it (uvloop starts reading right after accept): a ClientHello lost
    # that way hangs the handshake until its timeout. No handshake may fail here.
    nodes = [make(pki, i, handshake_timeout=0.5) for i in range(4)]
    async with contextlib.AsyncExitStack() as stack:
        for t in nodes:
            await stack.enter_async_context(t)
        for t in nodes:
            for other in nodes:
                if other is not t:
                    t.add_peer(addr(other))
        for t in nodes:
            await t.wait_for_peers([o.node_id for o in nodes if o is not t], timeout=5)
        await asyncio.sleep(1.0)  # two handshake timeouts: a hung one would be counted
        assert [t.stats.disconnects["tls_handshake"] for t in nodes] == [0, 0, 0, 0]


async def test_reconnects_after_peer_restart(pki: Pki) -> None:
    a = make(pki, 0)
    await a.start()
    port = a.listen_port
    async with make(pki, 1, peers=[f"127.0.0.1:{port}"]) as b:
        await b.wait_for_peers([a.node_id], timeout=5)
        b.send(a.node_id, b"before")
        assert await a.recv() == (b.node_id, b"before")
        await a.close()
        await until(lambda: a.node_id not in b.peers())
        await asyncio.sleep(0.3)  # b keeps dialling a closed port meanwhile
        async with make(pki, 0, listen_port=port) as a2:
            await b.wait_for_peers([a2.node_id], timeout=5)
            assert b.send(a2.node_id, b"after")
            assert await asyncio.wait_for(a2.recv(), 2) == (b.node_id, b"after")
            a2.send(b.node_id, b"back")
            assert await asyncio.wait_for(b.recv(), 2) == (a2.node_id, b"back")


async def test_certificate_from_another_ca_is_refused(pki: Pki) -> None:
    foreign_id = pki.foreign.node_id
    async with make(pki, 0, allowed=[*pki.ids, foreign_id]) as a:
        intruder = TcpTransport(
            identity=pki.foreign, genesis_hash=GENESIS, peers=[addr(a)], backoff_initial=0.05
        )
        async with intruder:
            await until(lambda: a.stats.disconnects["tls_handshake"] >= 2)
            assert a.peers() == frozenset() and intruder.peers() == frozenset()
        # and the other way round: a dials a server with a foreign certificate
        async with TcpTransport(identity=pki.foreign, genesis_hash=GENESIS) as server:
            a.add_peer(addr(server))
            await until(lambda: server.stats.disconnects["tls_handshake"] >= 1)
            assert a.peers() == frozenset()
        assert foreign_id not in a.peers()


async def test_blacklisted_and_non_member_nodes_are_refused(pki: Pki) -> None:
    blocked, outsider = pki.ids[1], pki.ids[2]
    async with make(pki, 0, allowed=pki.ids[:2], blacklist=[blocked]) as a:
        b = make(pki, 1, peers=[addr(a)])
        c = make(pki, 2, peers=[addr(a)])
        d = make(pki, 3, peers=[addr(a)], allowed=pki.ids)
        async with b, c:
            await until(
                lambda: (
                    a.stats.disconnects["blacklisted"] >= 1
                    and a.stats.disconnects["not_member"] >= 1
                )
            )
            await until(lambda: b.stats.disconnects["refused_by_peer"] >= 1)
            await until(lambda: c.stats.disconnects["refused_by_peer"] >= 1)
            assert blocked not in a.peers() and outsider not in a.peers()
        assert a.stats.disconnects["not_member"] >= 1
        # node 3 is certified but not in node 0's allowed set either
        async with d:
            await until(lambda: a.stats.disconnects["not_member"] >= 2)
            assert a.peers() == frozenset()


async def test_membership_change_disconnects_removed_peers(pki: Pki) -> None:
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(make(pki, 0))
        b = await stack.enter_async_context(make(pki, 1, peers=[addr(a)]))
        c = await stack.enter_async_context(make(pki, 2, peers=[addr(a)]))
        await a.wait_for_peers(pki.ids[1:3], timeout=5)
        a.set_members(pki.ids[:2])
        await until(lambda: a.peers() == {b.node_id})
        assert a.stats.disconnects["not_member"] >= 1
        a.set_members(pki.ids, blacklist=[b.node_id])
        await until(lambda: a.peers() == {c.node_id}, timeout=10)  # c redials and is back
        assert a.stats.disconnects["blacklisted"] >= 1


async def test_genesis_mismatch_is_refused_with_both_hashes_logged(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    other = bytes.fromhex("bb" * 32)
    caplog.set_level(logging.ERROR, logger="ledgerlab.transport.tcp")
    async with make(pki, 0) as a, make(pki, 1, genesis_hash=other, peers=[addr(a)]) as b:
        await until(lambda: a.stats.disconnects["genesis_mismatch"] >= 1)
        await until(lambda: b.stats.disconnects["genesis_mismatch"] >= 1)
        assert a.peers() == frozenset() and b.peers() == frozenset()
    lines = [r.getMessage() for r in caplog.records if "genesis mismatch" in r.getMessage()]
    assert any(GENESIS.hex() in m and other.hex() in m for m in lines), lines


async def test_hello_claiming_another_node_id_is_refused(pki: Pki) -> None:
    async with make(pki, 0) as a:
        ident = pki.nodes[1]
        r, w = await asyncio.open_connection("127.0.0.1", a.listen_port, ssl=ident.client_context())
        hello = pack([1, bytes.fromhex(pki.ids[2]), GENESIS, os.urandom(8)])
        w.write(encode_frame(FRAME_HELLO, hello))
        assert await closed_by_remote(r)
        await until(lambda: a.stats.disconnects["hello_mismatch"] == 1)
        assert a.peers() == frozenset()
        w.close()


async def test_random_bytes_on_p2p_port(pki: Pki) -> None:
    async with make(pki, 0) as a, make(pki, 1, peers=[addr(a)]) as b:
        await b.wait_for_peers([a.node_id], timeout=5)
        r, w = await asyncio.open_connection("127.0.0.1", a.listen_port)
        w.write(random.Random(1).randbytes(4096))
        assert await closed_by_remote(r)
        w.close()
        await until(lambda: a.stats.disconnects["tls_handshake"] == 1)
        b.send(a.node_id, b"still here")
        assert await asyncio.wait_for(a.recv(), 2) == (b.node_id, b"still here")


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [
        (struct.pack(">IB", 4097, FRAME_DATA), "frame_too_large"),
        (encode_frame(9, b"what is this"), "unknown_frame_type"),
        (encode_frame(0, b""), "unknown_frame_type"),
        (b"\xff" * 64, "frame_too_large"),
        (encode_frame(FRAME_HELLO, b"again"), "protocol"),
    ],
)
async def test_member_breaking_framing_is_dropped_and_others_keep_working(
    pki: Pki, garbage: bytes, reason: str
) -> None:
    async with make(pki, 0, max_frame_size=4096) as a, make(pki, 1, peers=[addr(a)]) as b:
        await b.wait_for_peers([a.node_id], timeout=5)
        r, w = await raw_member(pki.nodes[2], a.listen_port)
        await a.wait_for_peers([pki.ids[2]], timeout=5)
        w.write(encode_frame(FRAME_DATA, b"legit first"))
        assert await asyncio.wait_for(a.recv(), 2) == (pki.ids[2], b"legit first")
        w.write(garbage)
        assert await closed_by_remote(r)
        w.close()
        await until(lambda: a.stats.disconnects[reason] == 1)
        assert pki.ids[2] not in a.peers()
        b.send(a.node_id, b"unaffected")
        assert await asyncio.wait_for(a.recv(), 2) == (b.node_id, b"unaffected")
        a.send(b.node_id, b"and back")
        assert await asyncio.wait_for(b.recv(), 2) == (a.node_id, b"and back")


async def test_silent_handshake_times_out(pki: Pki) -> None:
    async with make(pki, 0, handshake_timeout=0.3) as a:
        r, w = await asyncio.open_connection("127.0.0.1", a.listen_port)
        assert await closed_by_remote(r)
        w.close()
        await until(lambda: a.stats.disconnects["tls_handshake"] == 1)


async def test_idle_peer_is_dropped_but_pings_keep_live_ones(pki: Pki) -> None:
    opts = {"ping_interval": 0.1, "idle_timeout": 0.5}
    async with make(pki, 0, **opts) as a, make(pki, 1, peers=[addr(a)], **opts) as b:
        await b.wait_for_peers([a.node_id], timeout=5)
        _r, w = await raw_member(pki.nodes[2], a.listen_port)  # never writes again
        await a.wait_for_peers([pki.ids[2]], timeout=5)
        await until(lambda: a.stats.disconnects["idle_timeout"] == 1, timeout=3)
        assert a.peers() == {b.node_id}  # b only sent pings, and stayed
        w.close()


async def test_clean_shutdown_leaves_no_tasks(pki: Pki) -> None:
    async with make(pki, 0) as a, make(pki, 1, peers=[addr(a)]) as b:
        await b.wait_for_peers([a.node_id], timeout=5)
    await asyncio.sleep(0)
    leftovers = [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("tcp")]
    assert leftovers == []
    assert [x async for x in a] == []
