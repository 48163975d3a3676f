"""``Transport.heard_within``: the peers something arrived from lately, not just the open
links. A frozen (SIGSTOPped) peer keeps its TCP connection (its kernel still
acknowledges) until the idle timeout; it must stop counting as alive long before."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from node.transport.memory import MemoryHub, MemoryTransport
from node.transport.tcp import FRAME_DATA, encode_frame
from tests.transport.conftest import GENESIS, Pki
from tests.transport.test_tcp import make, raw_member, until

IDS = [f"{i:02x}" * 64 for i in range(1, 4)]


@pytest.mark.asyncio
@pytest.mark.timeout(20)
async def test_memory_peer_whose_frames_stop_is_connected_but_not_heard() -> None:
    hub = MemoryHub()
    a, b, c = (MemoryTransport(hub, i) for i in IDS)
    async with a, b, c:
        assert a.heard_within(5) == frozenset()  # connected, but nothing arrived yet
        b.send(IDS[0], b"hello")
        c.send(IDS[0], b"hello")
        assert a.heard_within(5) == {IDS[1], IDS[2]}
        hub.drop = lambda src, dst, data: src == IDS[2]  # c freezes
        await asyncio.sleep(0.3)
        b.send(IDS[0], b"still here")
        c.send(IDS[0], b"lost")
        assert a.peers() == {IDS[1], IDS[2]}
        assert a.heard_within(0.2) == {IDS[1]}
        hub.partition([IDS[0]], [IDS[1], IDS[2]])  # unreachable: not a peer, not heard
        assert a.heard_within(5) == frozenset()


@pytest.mark.asyncio
@pytest.mark.timeout(20)
async def test_tcp_silent_member_stays_connected_but_stops_being_heard(pki: Pki) -> None:
    opts = {"ping_interval": 0.1, "idle_timeout": 30.0}
    async with (
        make(pki, 0, **opts) as a,
        make(pki, 1, peers=[f"127.0.0.1:{a.listen_port}"], **opts) as b,
    ):
        await b.wait_for_peers([a.node_id], timeout=5)
        _r, w = await raw_member(pki.nodes[2], a.listen_port)
        await a.wait_for_peers([pki.ids[2]], timeout=5)
        assert a.heard_within(1.0) == {b.node_id, pki.ids[2]}  # the handshake counts
        w.write(encode_frame(FRAME_DATA, b"one frame, then silence"))
        assert await asyncio.wait_for(a.recv(), 2) == (pki.ids[2], b"one frame, then silence")
        await until(lambda: pki.ids[2] not in a.heard_within(0.5), timeout=3)
        assert a.peers() == {b.node_id, pki.ids[2]}  # the link is still up
        assert b.node_id in a.heard_within(0.5)  # b pings every 0.1 s
        w.write(encode_frame(FRAME_DATA, b"back"))
        await until(lambda: pki.ids[2] in a.heard_within(0.5), timeout=3)
        w.close()


_PEER = textwrap.dedent(
    """
    import asyncio, sys
    from node.transport.pki import load_node
    from node.transport.tcp import TcpTransport

    async def main():
        ident = load_node(sys.argv[1])
        t = TcpTransport(identity=ident, genesis_hash=bytes.fromhex(sys.argv[2]),
                         peers=[sys.argv[3]], ping_interval=0.1, idle_timeout=30.0,
                         backoff_initial=0.05, backoff_max=0.4, listen_port=0)
        async with t:
            print("ready", flush=True)
            await asyncio.Event().wait()

    asyncio.run(main())
    """
)


@pytest.mark.asyncio
@pytest.mark.timeout(40)
async def test_tcp_sigstopped_peer_process_stops_being_heard(pki: Pki) -> None:
    """A real peer process, frozen with SIGSTOP: its connection stays, its pings stop."""
    async with make(pki, 0, ping_interval=0.1, idle_timeout=30.0) as a:
        peer_dir = pki.root / "node3"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _PEER,
                str(peer_dir),
                GENESIS.hex(),
                f"127.0.0.1:{a.listen_port}",
            ],
            stdout=subprocess.DEVNULL,
            cwd=os.getcwd(),
        )
        peer = pki.ids[3]
        try:
            await a.wait_for_peers([peer], timeout=15)
            await until(lambda: peer in a.heard_within(0.5), timeout=3)
            os.kill(proc.pid, signal.SIGSTOP)
            since = time.monotonic()
            await until(lambda: peer not in a.heard_within(0.5), timeout=5)
            assert time.monotonic() - since < 2.0
            await asyncio.sleep(0.5)
            assert peer in a.peers()  # still connected: only the idle timeout would drop it
            os.kill(proc.pid, signal.SIGCONT)
            await until(lambda: peer in a.heard_within(0.5), timeout=5)
        finally:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait(timeout=10)
