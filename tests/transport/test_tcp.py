"""TCP + mutual TLS transport on loopback: admission, framing, resilience."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import ssl
import struct
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from consensus.codec import pack
from node.transport.pki import NodeIdentity
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


def client_hello(ident: NodeIdentity) -> bytes:
    """The first flight of a genuine TLS client: what a stalling client sends, then waits."""
    obj = ident.client_context().wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO())
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


class Flood:
    """``n`` raw TCP connections to ``port`` that never complete a handshake (after
    ``first`` bytes, if any, they go silent); each is reopened as soon as it is dropped."""

    def __init__(self, port: int, n: int, first: bytes = b"") -> None:
        self.port, self.first = port, first
        self.opened = 0
        self.tasks = [asyncio.create_task(self._hold()) for _ in range(n)]

    async def _hold(self) -> None:
        while True:
            try:
                r, w = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            self.opened += 1
            try:
                with contextlib.suppress(OSError):
                    w.write(self.first)
                    while await r.read(65536):
                        pass
            finally:
                w.close()

    async def holding(self) -> None:
        """Until every connection has been opened (so the server's slots are full)."""
        await until(lambda: self.opened >= len(self.tasks))
        await asyncio.sleep(0.2)  # and accepted

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


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
    # no byte at all: dropped after client_hello_timeout (capped by handshake_timeout)
    async with make(pki, 0, handshake_timeout=0.3) as a:
        r, w = await asyncio.open_connection("127.0.0.1", a.listen_port)
        assert await closed_by_remote(r)
        w.close()
        await until(lambda: a.stats.disconnects["no_client_hello"] == 1)
        assert a.stats.disconnects["tls_handshake"] == 0


async def test_client_hello_arriving_after_a_pause_is_admitted(pki: Pki) -> None:
    # The server waits for the first bytes without reading them (uvloop: TLS must see
    # them), then runs TLS on the same socket.
    async with make(pki, 0, client_hello_timeout=1.0) as a:
        ident = pki.nodes[1]
        r, w = await asyncio.open_connection("127.0.0.1", a.listen_port)
        await asyncio.sleep(0.2)  # accepted, and silent for a while
        await w.start_tls(ident.client_context())
        hello = pack([1, bytes.fromhex(ident.node_id), GENESIS, os.urandom(8)])
        w.write(encode_frame(FRAME_HELLO, hello))
        length, _ = struct.unpack(">IB", await r.readexactly(5))
        await r.readexactly(length)
        await a.wait_for_peers([ident.node_id], timeout=2)
        w.write(encode_frame(FRAME_DATA, b"late but fine"))
        assert await asyncio.wait_for(a.recv(), 2) == (ident.node_id, b"late but fine")
        assert a.stats.disconnects == {}
        w.close()


async def test_handshake_stalled_after_client_hello_times_out(pki: Pki) -> None:
    async with make(pki, 0, handshake_timeout=0.4, client_hello_timeout=0.2) as a:
        r, w = await asyncio.open_connection("127.0.0.1", a.listen_port)
        w.write(client_hello(pki.nodes[1]))  # then nothing: TLS never completes
        assert await closed_by_remote(r)
        w.close()
        await until(lambda: a.stats.disconnects["tls_handshake"] == 1)
        assert a.stats.disconnects["no_client_hello"] == 0


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


FLOOD_OPTS: dict[str, Any] = {"max_pending_handshakes": 16, "handshake_timeout": 5.0}


async def test_idle_connections_holding_every_handshake_slot_do_not_lock_members_out(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    # Three times more idle sockets than handshake slots, each reopened the moment it is
    # dropped: the slots stay full, yet a member's dial completes (the oldest idle
    # handshake makes room for it) and every dropped flood socket is counted.
    caplog.set_level(logging.INFO, logger="ledgerlab.transport.tcp")
    async with make(pki, 0, **FLOOD_OPTS) as a:
        flood = Flood(a.listen_port, 3 * FLOOD_OPTS["max_pending_handshakes"])
        try:
            await flood.holding()
            started = time.monotonic()
            async with make(pki, 1, peers=[addr(a)], **FLOOD_OPTS) as b:
                await b.wait_for_peers([a.node_id], timeout=2)
                await a.wait_for_peers([b.node_id], timeout=2)
                connected_after = time.monotonic() - started
                assert b.send(a.node_id, b"through the flood")
                assert await asyncio.wait_for(a.recv(), 2) == (b.node_id, b"through the flood")
                assert b.stats.disconnects["refused_by_peer"] == 0
                opened, dropped = flood.opened, a.stats.snapshot()["disconnects"]
        finally:
            await flood.stop()
    assert connected_after < 2
    assert isinstance(dropped, dict)
    n = 3 * FLOOD_OPTS["max_pending_handshakes"]
    assert opened > n  # the flood renewed its sockets
    # every flood socket but the n still open was dropped, and counted
    assert dropped.get("too_many_handshakes", 0) + dropped.get("no_client_hello", 0) >= opened - n
    assert dropped.get("tls_handshake", 0) == 0, dropped  # the member's never failed
    # one summary line per interval (10 s), not one per dropped socket, and none blank
    lines = [r.getMessage() for r in caplog.records if "inbound handshake" in r.getMessage()]
    assert 1 <= len(lines) <= 2, lines
    assert all("too_many_handshakes" in m and not m.rstrip().endswith(":") for m in lines)


async def test_stalled_tls_handshakes_holding_every_slot_do_not_lock_members_out(
    pki: Pki,
) -> None:
    # The flood sends a genuine ClientHello, then stalls inside TLS, and reconnects the
    # moment it is dropped. The oldest such handshake is dropped for each newcomer, but
    # only once handshake_grace old, so the churn is bounded and the member gets through.
    grace = 0.1
    async with make(pki, 0, handshake_grace=grace, **FLOOD_OPTS) as a:
        n = 2 * FLOOD_OPTS["max_pending_handshakes"]
        started = time.monotonic()
        flood = Flood(a.listen_port, n, first=client_hello(pki.nodes[2]))
        try:
            await flood.holding()
            async with make(pki, 1, peers=[addr(a)], **FLOOD_OPTS) as b:
                await b.wait_for_peers([a.node_id], timeout=2)
                assert b.send(a.node_id, b"through the flood")
                assert await asyncio.wait_for(a.recv(), 2) == (b.node_id, b"through the flood")
                elapsed = time.monotonic() - started
                opened, dropped = flood.opened, a.stats.snapshot()["disconnects"]
        finally:
            await flood.stop()
    assert isinstance(dropped, dict)
    drops = dropped.get("too_many_handshakes", 0)
    assert drops >= opened - n  # every flood socket but the n still open
    # never more than one slot's worth per handshake_grace
    limit = FLOOD_OPTS["max_pending_handshakes"]
    assert drops <= limit * (elapsed / grace + 1), (drops, elapsed)
    assert dropped.get("tls_handshake", 0) == 0, dropped


async def test_restarting_node_reconnects_while_both_ends_are_flooded(pki: Pki) -> None:
    # The reviewer's scenario: a node restarts while idle sockets hold the handshake
    # slots of every node; it dials its peers and they dial it, and the link comes up.
    async with make(pki, 0, **FLOOD_OPTS) as a:
        flood_a = Flood(a.listen_port, 2 * FLOOD_OPTS["max_pending_handshakes"])
        flood_b: Flood | None = None
        try:
            async with make(pki, 1, **FLOOD_OPTS) as b:
                flood_b = Flood(b.listen_port, 2 * FLOOD_OPTS["max_pending_handshakes"])
                await flood_a.holding()
                await flood_b.holding()
                a.add_peer(addr(b))
                b.add_peer(addr(a))
                await a.wait_for_peers([b.node_id], timeout=2)
                await b.wait_for_peers([a.node_id], timeout=2)
                await flood_b.stop()
        finally:
            await flood_a.stop()
            if flood_b is not None:
                await flood_b.stop()


async def test_failed_handshakes_are_logged_with_a_reason_once_per_interval(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ledgerlab.transport.tcp")
    async with make(pki, 0, client_hello_timeout=0.05, failure_log_interval=0.5) as a:
        _r, w = await asyncio.open_connection("127.0.0.1", a.listen_port)  # silent
        await until(lambda: a.stats.disconnects["no_client_hello"] == 1)
        for i in range(1, 6):  # within the interval: counted, summarised later
            _r2, w2 = await asyncio.open_connection("127.0.0.1", a.listen_port)
            w2.write(b"\x16\x03\x01\x00\x05hello")  # a broken TLS record
            await until(lambda i=i: a.stats.disconnects["tls_handshake"] == i)  # type: ignore[misc]
            w2.close()
        w.close()

        def msgs() -> list[str]:
            return [r.getMessage() for r in caplog.records if "inbound handshake" in r.getMessage()]

        assert len(msgs()) == 1 and "no_client_hello" in msgs()[0], msgs()
        await until(lambda: len(msgs()) == 2, timeout=2)
        summary = msgs()[1]
        assert summary.startswith("5 inbound handshakes failed"), summary
        assert "tls_handshake 5" in summary and "SSLError" in summary, summary


def urgent_mark(data: bytes) -> bool:
    return data[:1] == b"!"


async def test_urgent_frames_are_written_ahead_of_queued_ones(pki: Pki) -> None:
    """deliver_first on the sender: its marked frames overtake what waits in its queue
    (the receiver here keeps one FIFO, so what it reads is the order on the wire)."""
    async with make(pki, 0) as a, make(pki, 1, peers=[addr(a)]) as b:
        await b.wait_for_peers([a.node_id], timeout=5)
        b.deliver_first(urgent_mark)
        for frame in (b"g1", b"!c1", b"g2", b"!c2"):
            assert b.send(a.node_id, frame)
        got = [(await asyncio.wait_for(a.recv(), 5))[1] for _ in range(4)]
        assert got == [b"!c1", b"!c2", b"g1", b"g2"]
        assert b.stats.frames_out == 4


def _exactly(sock: ssl.SSLSocket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, "connection closed"
        out += chunk
    return out


def _read_one_frame(sock: ssl.SSLSocket) -> tuple[float, bytes]:
    """Blocking: the next DATA frame on ``sock`` and the monotonic time it was read."""
    while True:
        length, frame_type = struct.unpack(">IB", _exactly(sock, 5))
        payload = _exactly(sock, length)
        if frame_type == FRAME_DATA:
            return time.monotonic(), payload


@pytest.mark.timeout(30)
async def test_an_urgent_frame_leaves_while_its_sender_is_busy(pki: Pki) -> None:
    """A vote must not wait for its node's next await: sent, then the event loop blocked
    for 0.4 s (a block executing), the marked frame reaches a peer reading in another
    thread during the block; an unmarked one only after it."""
    async with make(pki, 0) as a:
        a.deliver_first(urgent_mark)
        ident = pki.nodes[1]

        def connect() -> ssl.SSLSocket:
            raw = socket.create_connection(("127.0.0.1", a.listen_port), timeout=10)
            sock = ident.client_context().wrap_socket(raw)
            hello = pack([1, bytes.fromhex(ident.node_id), GENESIS, os.urandom(8)])
            sock.sendall(encode_frame(FRAME_HELLO, hello))
            length, _ = struct.unpack(">IB", _exactly(sock, 5))
            _exactly(sock, length)  # its HELLO
            return sock

        sock = await asyncio.to_thread(connect)
        try:
            await a.wait_for_peers([ident.node_id], timeout=5)
            for frame, arrives_during_block in ((b"!vote", True), (b"gossip", False)):
                reader = asyncio.ensure_future(asyncio.to_thread(_read_one_frame, sock))
                await asyncio.sleep(0.05)  # the reader thread is blocked in recv()
                assert a.send(ident.node_id, frame)
                time.sleep(0.4)  # the loop is blocked: no writer task can run
                block_end = time.monotonic()
                seen, payload = await asyncio.wait_for(reader, 5)
                assert payload == frame
                assert (seen < block_end - 0.2) is arrives_during_block, (frame, block_end - seen)
        finally:
            sock.close()


@pytest.mark.timeout(30)
async def test_a_peer_that_stops_reading_holds_at_most_the_send_buffer_limit(pki: Pki) -> None:
    """Consensus frames bypass the writer's queue, not the byte limit: to a member that
    never reads, frames of either kind are dropped (and counted) once the bytes it has not
    taken pass ``send_buffer_limit``, so memory stays bounded by it."""
    limit = 1 << 20
    async with make(pki, 0, send_buffer_limit=limit) as a:
        a.deliver_first(urgent_mark)
        _r, w = await raw_member(pki.nodes[1], a.listen_port)  # never reads again
        try:
            await a.wait_for_peers([pki.ids[1]], timeout=5)
            frame = b"!" + b"v" * 65_535
            sent = sum(a.send(pki.ids[1], frame) for _ in range(400))  # 26 MB, no yield
            assert a.stats.dropped["send_buffer_full"] == 400 - sent > 0
            assert a.backlog() <= limit + len(frame) + 5
            assert not a.send(pki.ids[1], b"gossip")  # the queue is refused as well
            assert a.stats.dropped["send_buffer_full"] == 400 - sent + 1
        finally:
            w.close()
