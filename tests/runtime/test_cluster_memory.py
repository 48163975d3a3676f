"""A 4-node cluster in one process over the memory transport."""

from __future__ import annotations

import pytest

from tests.runtime.cluster import memory_cluster, transfer, wait_until

pytestmark = pytest.mark.asyncio


def heads(nodes):
    return {(n.chain.head.number, n.chain.head.block_hash, n.chain.head.state_root) for n in nodes}


async def test_client_txs_commit_on_every_node_with_identical_heads() -> None:
    async with memory_cluster(4) as nodes:
        results = nodes[1].submit([transfer(i) for i in range(200)])
        assert all(isinstance(r, bytes) for r in results)
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 200 for n in nodes))
        await wait_until(lambda: len(heads(nodes)) == 1)
        assert all(len(n.pool) == 0 for n in nodes)
        ((number, _, _),) = heads(nodes)
        assert number >= 1


async def test_idle_chain_does_not_grow() -> None:
    async with memory_cluster(4) as nodes:
        nodes[0].submit([transfer(1)])
        await wait_until(lambda: all(n.chain.head.number == 1 for n in nodes))
        views = [n.replica.view for n in nodes]
        import asyncio

        await asyncio.sleep(0.5)
        assert [n.chain.head.number for n in nodes] == [1, 1, 1, 1]
        assert [n.replica.view for n in nodes] == views
