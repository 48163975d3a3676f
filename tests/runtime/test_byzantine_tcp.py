"""Byzantine test modes over TCP with mutual TLS on loopback: an equivocating sealer as a
real process (``python -m node --byzantine equivocate``), and Twins (two nodes with one
key and certificate, each talking to some of the honest peers)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from node.runtime import Node
from node.runtime.byzantine import twin_config
from node.runtime.config import NodeConfig
from scripts.launcher.procs import free_port_base
from tests.runtime.cluster import tcp_chain, transfer, wait_until
from tests.runtime.test_byzantine import commit_waves, same_chain

REPO = Path(__file__).resolve().parents[2]


def rpc(port: int, method: str) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": ["group0"]})
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/", body.encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())["result"]


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


async def start(stack: contextlib.AsyncExitStack, config: NodeConfig) -> Node:
    config.home.mkdir(parents=True, exist_ok=True)
    (config.home / "config.toml").write_text(config.to_toml())
    return await stack.enter_async_context(Node.from_config(config.home / "config.toml"))


@pytest.mark.asyncio
@pytest.mark.timeout(150)
async def test_an_equivocating_process_cannot_fork_or_stop_the_chain(tmp_path: Path) -> None:
    base = free_port_base(100 + 4)
    _, configs = tcp_chain(tmp_path, 4, base)
    bad = configs[3]
    config = bad.home / "config.toml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "node", "--byzantine", "equivocate", "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        async with contextlib.AsyncExitStack() as stack:
            honest = [await start(stack, c) for c in configs[:3]]
            await wait_until(lambda: all(len(n.transport.peers()) == 3 for n in honest), 30)
            sent = await commit_waves(honest, 8)
            await wait_until(lambda: same_chain(honest), 20)
            assert all(n.chain.store.total_tx_count() == sent for n in honest)
            evidence = [e for n in honest for e in n.replica.evidence]
            assert any(e.kind == "PrePrepare" for e in evidence), evidence
            assert {e.sender_key for e in evidence} == {honest[0].membership.sealers[3]}
            rpc_port = base + 100 + 3
            # (in a thread: node0 below answers from this event loop)
            status = await asyncio.to_thread(rpc, rpc_port, "getConsensusStatus")
            assert isinstance(status, dict) and status["byzantine"] == "equivocate"
            text = await asyncio.to_thread(metrics, rpc_port)
            assert 'ledgerlab_byzantine{behaviour="equivocate"} 1' in text
            assert 'ledgerlab_byzantine_frames_total{kind="tampered"}' in text
            mine = await asyncio.to_thread(rpc, base + 100, "getConsensusStatus")
            assert isinstance(mine, dict) and mine["byzantine"] is None
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log = (bad.home / "log" / "node.log").read_text()
    assert "this node is Byzantine: equivocate" in log


@pytest.mark.asyncio
@pytest.mark.timeout(150)
async def test_twins_split_the_honest_nodes_and_cannot_fork_them(tmp_path: Path) -> None:
    """node3's key runs twice: twin A at node3's address talks to node0 and node1, twin B
    (its own port) to node2. Each proposes and votes honestly for what it sees, so when
    node3 leads, the two halves get different proposals signed by one key."""
    base = free_port_base(100 + 5)
    genesis, configs = tcp_chain(tmp_path, 4, base)
    ids = [k.hex() for k in genesis.sealers]
    original = configs[3]
    p2p = [c.p2p_listen for c in configs]
    twin_a = twin_config(
        original,
        tmp_path / "twin-a",
        name="node3a",
        p2p_listen=original.p2p_listen,
        rpc_listen=f"127.0.0.1:{base + 103}",
        peers=(p2p[0], p2p[1]),
        refuse=(ids[2],),
    )
    twin_b = twin_config(
        original,
        tmp_path / "twin-b",
        name="node3b",
        p2p_listen=f"127.0.0.1:{base + 4}",
        rpc_listen=f"127.0.0.1:{base + 104}",
        peers=(p2p[2],),
        refuse=(ids[0], ids[1]),
    )
    async with contextlib.AsyncExitStack() as stack:
        honest = [await start(stack, c) for c in configs[:3]]
        a, b = await start(stack, twin_a), await start(stack, twin_b)
        assert a.key.public_key == b.key.public_key == genesis.sealers[3]
        assert a.index == b.index == 3

        def split() -> bool:
            return (
                a.transport.peers() == {ids[0], ids[1]}
                and b.transport.peers() == {ids[2]}
                and all(len(n.transport.peers()) == 3 for n in honest)
            )

        await wait_until(split, 30)
        # Each wave goes to every honest node (so both twins hold it: gossip is not
        # forwarded), so at node3's heights both twins propose, each to its side.
        sent = 0
        for wave in range(10):
            raws = [transfer(1000 * wave + i, head=honest[0].chain.head.number) for i in range(15)]
            for n in honest:
                n.submit(raws)  # the second and third copies may be AlreadyKnown
            sent += len(raws)
            await wait_until(
                lambda s=sent: all(n.chain.store.total_tx_count() >= s for n in honest), 45
            )
        await wait_until(lambda: same_chain(honest), 20)
        assert all(n.chain.store.total_tx_count() == sent for n in honest)
        assert split(), "every honest node kept talking to one twin"
        # both twins proposed (to different halves), and twin A's blocks committed
        assert a.replica.counters.messages_out.get("PrePrepare", 0) > 0
        assert b.replica.counters.messages_out.get("PrePrepare", 0) > 0
        top = honest[0].chain.head.number
        sealers = [honest[0].chain.block(h).header.sealer for h in range(1, top + 1)]
        assert 3 in sealers, sealers
        # the twins' own chains are prefixes of the honest one (no block of theirs differs)
        for twin in (a, b):
            for h in range(1, twin.chain.head.number + 1):
                assert twin.chain.block(h).hash == honest[0].chain.block(h).hash
        # one more wave through node2, the one honest node on twin B's side
        head = honest[2].chain.head.number
        honest[2].submit([transfer(90_000 + i, head=head) for i in range(10)])
        await wait_until(
            lambda: all(n.chain.store.total_tx_count() == sent + 10 for n in honest), 45
        )
        await wait_until(lambda: same_chain(honest), 20)
