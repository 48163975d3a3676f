"""Node._gossip_loop: client transactions leave for every peer within the gossip window,
and an idle node's loop sleeps instead of polling."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.runtime.cluster import memory_cluster, transfer, wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def test_an_idle_node_does_not_wake_its_gossip_loop() -> None:
    async with memory_cluster(4) as nodes:
        node = nodes[1]
        wake = node._gossip_wake
        passes = [0]
        clear = wake.clear

        def counted() -> None:
            passes[0] += 1
            clear()

        wake.clear = counted  # type: ignore[method-assign]
        await asyncio.sleep(0.3)  # a 10 ms poll would pass ~30 times
        assert passes[0] == 0
        assert isinstance(node.submit([transfer(1)])[0], bytes)
        await wait_until(lambda: passes[0] >= 1, timeout=5)  # and a client tx wakes it


async def test_a_client_transaction_reaches_every_peer_while_the_leader_waits() -> None:
    # A 60 s seal wait: the tx stays pending, so only gossip can put it in the peers' pools.
    async with memory_cluster(4, seal_max_wait_ms=60_000) as nodes:
        entry, peers = nodes[2], [n for n in nodes if n is not nodes[2]]
        tx_hash: Any = entry.submit([transfer(7)])[0]
        assert isinstance(tx_hash, bytes)
        await wait_until(lambda: all(tx_hash in p.pool for p in peers), timeout=2)
        assert all(p.frames_in["Txs"] == 1 for p in peers)
        assert all(n.chain.head.number == 0 for n in nodes)
