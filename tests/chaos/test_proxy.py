"""The fault proxy between two real TCP transports (mutual TLS, both dialling).

Both nodes dial each other, each through its own listener, and the transport keeps one
of the two connections; a cut must stop the pair both ways whichever one survived.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from node.transport import pki
from node.transport.pki import NodeIdentity
from node.transport.tcp import TcpTransport
from scripts.chaos.network import Network
from scripts.chaos.proxy import FlowFaults
from scripts.launcher.procs import free_port_base

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]
GENESIS = bytes.fromhex("bb" * 32)


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory) -> list[NodeIdentity]:
    root = tmp_path_factory.mktemp("pki")
    pki.generate_chain_ca(root / "ca", chain_name="chain0")
    pki.generate_agency(root / "ca", root / "agency", name="agency0")
    return [pki.generate_node(root / "agency", root / f"n{i}", name=f"n{i}") for i in range(2)]


class Pair:
    def __init__(self, net: Network, a: TcpTransport, b: TcpTransport) -> None:
        self.net, self.a, self.b = net, a, b

    def connected(self) -> bool:
        return self.b.node_id in self.a.peers() and self.a.node_id in self.b.peers()

    def apart(self) -> bool:
        return not self.a.peers() and not self.b.peers()

    async def exchange(self, timeout: float) -> tuple[bool, bool]:
        """Send a frame each way; which arrived within ``timeout``."""
        self.a.send(self.b.node_id, b"a->b")
        self.b.send(self.a.node_id, b"b->a")
        got = await asyncio.gather(_recv(self.b, b"a->b", timeout), _recv(self.a, b"b->a", timeout))
        return got[0], got[1]


async def _recv(t: TcpTransport, want: bytes, timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout):
            while True:
                _, data = await t.recv()
                if data == want:
                    return True
    except TimeoutError:
        return False


async def until(cond: Callable[[], bool], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.02)


@pytest_asyncio.fixture
async def pair(identities: list[NodeIdentity], tmp_path: Path) -> AsyncIterator[Pair]:
    base = free_port_base(2)
    net = Network("tcp")
    await net.add_tcp_node(0, f"127.0.0.1:{base}", [])
    await net.add_tcp_node(1, f"127.0.0.1:{base + 1}", [0])
    ids = [i.node_id for i in identities]
    common: dict[str, Any] = {"genesis_hash": GENESIS, "allowed": ids, "backoff_initial": 0.05,
              "backoff_max": 0.3, "ping_interval": 0.3, "idle_timeout": 1.5}  # fmt: skip
    a = TcpTransport(identity=identities[0], listen_port=base, listen_host="127.0.0.1",
                     peers=[net.dial_address(0, 1)], **common)  # fmt: skip
    b = TcpTransport(identity=identities[1], listen_port=base + 1, listen_host="127.0.0.1",
                     peers=[net.dial_address(1, 0)], **common)  # fmt: skip
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(a)
        await stack.enter_async_context(b)
        p = Pair(net, a, b)
        await until(p.connected, 10)
        try:
            yield p
        finally:
            await net.close()


async def test_frames_pass_both_ways(pair: Pair) -> None:
    assert await pair.exchange(2.0) == (True, True)


async def test_a_reset_cut_stops_the_pair_both_ways_until_healed(pair: Pair) -> None:
    pair.net.partition([[0], [1]], "reset")
    await until(pair.apart, 5)
    await asyncio.sleep(1.0)  # both keep dialling, through their own listeners
    assert pair.apart()
    pair.net.heal()
    await until(pair.connected, 10)
    assert await pair.exchange(2.0) == (True, True)


async def test_a_blackhole_holds_bytes_both_ways_and_the_nodes_time_out(pair: Pair) -> None:
    pair.net.partition([[0], [1]], "blackhole")
    assert await pair.exchange(0.8) == (False, False)
    await until(pair.apart, 5)  # idle_timeout: nothing, not even a ping, comes through
    await asyncio.sleep(0.5)
    assert pair.apart()  # redials hang in the partition
    pair.net.heal()
    await until(pair.connected, 10)
    assert await pair.exchange(2.0) == (True, True)


async def test_a_short_blackhole_delivers_late_as_tcp_would(pair: Pair) -> None:
    pair.net.partition([[0], [1]], "blackhole")
    pair.a.send(pair.b.node_id, b"held")
    assert not await _recv(pair.b, b"held", 0.5)
    pair.net.heal()
    assert await _recv(pair.b, b"held", 2.0)


async def test_delay_applies_to_each_direction(pair: Pair) -> None:
    pair.net.degrade(None, FlowFaults(delay=0.3))
    start = time.monotonic()
    assert await pair.exchange(3.0) == (True, True)
    assert time.monotonic() - start >= 0.3
    pair.net.restore()
    start = time.monotonic()
    assert await pair.exchange(2.0) == (True, True)
    assert time.monotonic() - start < 0.3


async def test_loss_delays_but_never_corrupts(pair: Pair) -> None:
    pair.net.degrade(None, FlowFaults(loss=0.5))
    for _ in range(5):
        assert await pair.exchange(5.0) == (True, True)
    assert pair.connected()  # TLS never saw a missing byte
