"""A big client batch is admitted SUBMIT_SLICE txs at a time, the event loop turning in
between (so votes are not held up); answers keep the batch's order and its rejections."""

from __future__ import annotations

import asyncio

import pytest

from node.runtime.service import SUBMIT_SLICE, NodeService
from node.runtime.txpool import Reason, TxRejected
from tests.runtime.cluster import memory_cluster, transfer

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def test_a_big_batch_is_admitted_in_slices_in_order() -> None:
    async with memory_cluster(4) as nodes:
        service = NodeService(nodes[0])
        raws = [transfer(i) for i in range(3 * SUBMIT_SLICE + 5)]
        raws.insert(SUBMIT_SLICE + 1, raws[2])  # a duplicate in the second slice
        turns = 0

        async def count_turns() -> None:
            nonlocal turns
            while True:
                await asyncio.sleep(0)
                turns += 1

        counter = asyncio.create_task(count_turns())
        await asyncio.sleep(0)
        turns = 0
        results = await service.submit(raws)
        seen = turns
        counter.cancel()
        assert len(results) == len(raws)
        dup = results[SUBMIT_SLICE + 1]
        assert isinstance(dup, TxRejected) and dup.reason is Reason.ALREADY_KNOWN
        others = [r for i, r in enumerate(results) if i != SUBMIT_SLICE + 1]
        assert all(isinstance(r, bytes) for r in others)
        assert seen >= 3, f"the loop turned {seen} times while 4 slices were admitted"
