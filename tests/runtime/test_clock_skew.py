"""A node whose wall clock is minutes off (docs/reliability.md, Clock skew).

Wall time reaches consensus only through block timestamps: a leader stamps
``max(its clock, parent)``, a voter refuses stamps more than 60 s past
``max(its clock, parent)``. So a node 10 minutes behind that joins a running chain still
votes and leads (its blocks carry the parent's stamp); a node 10 minutes ahead votes,
but its own proposals are refused (one view change per turn). Either way the chain does
not halt, even with another sealer down.
"""

from __future__ import annotations

import time

import pytest

from node.runtime.local import MemoryCluster
from node.runtime.node import MAX_PROPOSAL_AHEAD_MS
from tests.runtime.cluster import transfer, wait_until

pytestmark = pytest.mark.asyncio

SKEW = 600.0  # ten minutes


def skewed(offset: float):  # type: ignore[no-untyped-def]
    return lambda: time.time() + offset


async def commit_through(cluster: MemoryCluster, live: list[int], start: int, count: int) -> None:
    nodes = [cluster.node(i) for i in live]
    before = min(n.chain.store.total_tx_count() for n in nodes)
    for k, n in enumerate(nodes):  # every node gets some, so every leader has work
        head = n.chain.head.number
        n.submit([transfer(start + k * 100 + j, head=head) for j in range(count)])
    want = before + count * len(nodes)
    await wait_until(
        lambda: all(n.chain.store.total_tx_count() >= want for n in nodes), timeout=60
    )


async def restart_skewed(cluster: MemoryCluster, offset: float) -> None:
    """A running chain (blocks stamped by true clocks); then node3 stops and node0
    restarts with its clock ``offset`` seconds off."""
    await commit_through(cluster, [0, 1, 2, 3], 0, 5)
    await cluster.stop(3)
    await cluster.stop(0)
    cluster.clocks[0] = skewed(offset)
    await cluster.start(0)


async def commit_rounds(cluster: MemoryCluster, until_height: int) -> None:
    """Rounds of transfers through nodes 0-2 until the chain is ``until_height`` high:
    every leader position (node3's, stopped; node0's, skewed) comes up at least twice."""
    start = 10_000
    while cluster.node(1).chain.head.number < until_height:
        await commit_through(cluster, [0, 1, 2], start, 5)
        start += 1000


@pytest.mark.timeout(200)
async def test_a_node_ten_minutes_behind_still_votes_so_the_chain_survives_another_down() -> None:
    # node3 down leaves exactly a quorum (3 of 4): node0, whose clock is behind, must vote
    async with MemoryCluster(4, consensus_timeout=3, tick_ms=10) as c:
        await restart_skewed(c, -SKEW)
        await commit_rounds(c, until_height=6)
        chain = c.node(1).chain
        stamps = [chain.block(h).header.timestamp for h in range(1, chain.head.number + 1)]
        assert stamps == sorted(stamps)
        assert max(stamps) <= time.time() * 1000 + MAX_PROPOSAL_AHEAD_MS
        sealers = {chain.block(h).header.sealer for h in range(1, chain.head.number + 1)}
        assert 0 in sealers, "the node whose clock is behind led blocks too"


@pytest.mark.timeout(200)
async def test_a_node_ten_minutes_ahead_cannot_lead_but_the_chain_goes_on() -> None:
    async with MemoryCluster(4, consensus_timeout=3, tick_ms=10) as c:
        await restart_skewed(c, SKEW)
        await commit_rounds(c, until_height=6)
        chain = c.node(1).chain
        top = chain.head.number
        sealers = {chain.block(h).header.sealer for h in range(1, top + 1)}
        assert 0 not in sealers, "a proposal stamped 10 minutes ahead was accepted"
        stamps = [chain.block(h).header.timestamp for h in range(1, top + 1)]
        assert max(stamps) <= time.time() * 1000 + MAX_PROPOSAL_AHEAD_MS
        # its turns as leader ended in view changes
        assert c.node(1).replica.counters.view_changes > 0
