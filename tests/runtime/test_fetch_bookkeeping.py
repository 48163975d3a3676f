"""A follower that lacks a proposal's transactions fetches them (Node._fetch_then_execute);
the fetch is done as soon as the pool holds every one, whichever way they came: a peer's
TxResponse, gossip, or a client sending one to this node."""

from __future__ import annotations

import asyncio

import pytest

from node.runtime import Node, wire
from tests.runtime.cluster import MemoryCluster, transfer, wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


def runs_of_proposals(node: Node) -> list[int]:
    """Heights ``node`` executed a proposal for (fetch done, or nothing was missing)."""
    heights: list[int] = []
    real = node._run_proposal

    def spy(action, body):  # type: ignore[no-untyped-def]
        heights.append(action.height)
        return real(action, body)

    node._run_proposal = spy  # type: ignore[method-assign]
    return heights


def refuse_tx_responses(node: Node) -> None:
    real = node._on_frame

    def on_frame(peer: str, frame: bytes) -> None:
        if not isinstance(wire.decode(frame), wire.TxResponse):
            real(peer, frame)

    node._on_frame = on_frame  # type: ignore[method-assign]


async def test_a_client_sending_the_missing_tx_ends_the_fetch() -> None:
    async with MemoryCluster(4, seal_max_wait_ms=20) as cluster:
        nodes = cluster.running()
        leader = cluster.node(1)  # leads height 1
        follower = nodes[3]
        # Its fetch can end only by what it admits itself; with node0 refusing too, the
        # leader and node2 are no quorum: block 1 waits for this follower's vote.
        refuse_tx_responses(follower)
        refuse_tx_responses(nodes[0])
        ran = runs_of_proposals(follower)
        raw = transfer(1)
        leader.pool.admit(raw, 0)  # only the leader holds it: the others fetch
        await wait_until(lambda: bool(follower._fetches), 10)
        start = asyncio.get_running_loop().time()
        result = follower.submit([raw])[0]
        assert isinstance(result, bytes), result
        await wait_until(lambda: 1 in ran, 10)
        # Well inside one TX_FETCH_TIMEOUT (2 s): the submit ended the wait, no timeout did.
        assert asyncio.get_running_loop().time() - start < 1.5
        await wait_until(lambda: all(n.chain.head.number == 1 for n in nodes), 20)
        assert not follower._fetches


async def test_fetched_txs_end_the_fetch_of_a_whole_block() -> None:
    async with MemoryCluster(4, seal_max_wait_ms=20) as cluster:
        nodes = cluster.running()
        leader = cluster.node(1)
        runs = [runs_of_proposals(n) for n in nodes]
        raws = [transfer(i) for i in range(200)]
        for raw in raws:  # only the leader holds them: every follower fetches all 200
            leader.pool.admit(raw, 0)
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 200 for n in nodes), 20)
        assert all(1 in r for r in runs), runs  # every node executed it, none waited it out
        assert all(not n._fetches for n in nodes)
