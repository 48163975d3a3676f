"""Consensus frames are handled ahead of gossip: one that arrives behind a big gossip frame
is handled after the first slice of its transactions, not after all of them, and a
proposal that overtook the gossip of its transactions waits for that gossip instead of
asking peers for them."""

from __future__ import annotations

import asyncio

import pytest

from node.runtime import wire
from node.runtime.node import ADMIT_SLICE
from tests.runtime.cluster import memory_cluster, pool_sizes_at_probe, transfer, wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def test_a_consensus_frame_behind_a_big_gossip_frame_goes_first() -> None:
    async with memory_cluster(4) as nodes:
        node, peer = nodes[0], nodes[1].node_id
        raws = tuple(transfer(i) for i in range(10 * ADMIT_SLICE))
        seen = pool_sizes_at_probe(node)  # pool size each time the probe was handled
        inbox = node.transport._inbox
        inbox.put(peer, wire.encode(wire.Txs(raws)))
        inbox.put(peer, wire.encode(wire.Consensus(b"probe")))
        await wait_until(lambda: len(node.pool) == len(raws) and seen, timeout=30)
        assert len(seen) == 1
        assert seen[0] <= ADMIT_SLICE, f"the consensus frame waited for {seen[0]} admissions"


async def test_a_proposal_ahead_of_its_gossip_waits_for_it_and_asks_nobody() -> None:
    async with memory_cluster(4) as nodes:
        sent: list[bytes] = []
        for n in nodes:
            real = n.transport.send

            def send(peer, data, real=real):  # type: ignore[no-untyped-def]
                sent.append(data)
                return real(peer, data)

            n.transport.send = send  # type: ignore[method-assign]
        results = nodes[1].submit([transfer(i) for i in range(5 * ADMIT_SLICE)])
        assert all(isinstance(r, bytes) for r in results)
        await wait_until(
            lambda: all(n.chain.store.total_tx_count() == 5 * ADMIT_SLICE for n in nodes)
        )
        await asyncio.sleep(0.1)
        requests = [d for d in sent if d[:1] == bytes([wire.Kind.TX_REQUEST])]
        assert requests == [], f"{len(requests)} TxRequests for txs that were being gossiped"
