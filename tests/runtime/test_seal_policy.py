"""When a leader proposes (Node._seal_loop): a lone transaction on a quiet chain waits
``seal_max_wait_ms`` for company; transactions a commit leaves in the pool waited through
that block's round and are proposed at once, however few."""

from __future__ import annotations

import time

import pytest

from tests.runtime.cluster import memory_cluster, transfer, wait_until

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

WAIT_MS = 4_000


async def test_a_lone_transaction_waits_for_company() -> None:
    async with memory_cluster(4, seal_max_wait_ms=WAIT_MS) as nodes:
        t0 = time.monotonic()
        assert isinstance(nodes[0].submit([transfer(1)])[0], bytes)
        await wait_until(lambda: all(n.chain.head.number == 1 for n in nodes), timeout=30)
        # A lower bound, so a slow machine cannot break it: the block waited the timer.
        assert time.monotonic() - t0 >= 0.9 * WAIT_MS / 1000


async def test_transactions_left_by_a_commit_are_proposed_at_once() -> None:
    # 25 txs, 10 a block: two full blocks at once, then 5 left by the second commit.
    # Before, those 5 waited the 4 s timer like a lone tx on a quiet chain.
    async with memory_cluster(4, seal_max_wait_ms=WAIT_MS, tx_count_limit=10) as nodes:
        t0 = time.monotonic()
        results = nodes[1].submit([transfer(i) for i in range(25)])
        assert all(isinstance(r, bytes) for r in results)
        await wait_until(
            lambda: all(n.chain.store.total_tx_count() == 25 for n in nodes), timeout=30
        )
        elapsed = time.monotonic() - t0
        assert [n.chain.head.number for n in nodes] == [3, 3, 3, 3]
        assert elapsed < 0.75 * WAIT_MS / 1000, f"the last 5 txs waited the timer ({elapsed:.1f} s)"


async def test_a_leader_that_hears_of_a_transaction_by_gossip_proposes_without_a_tick() -> None:
    # The seal loop sleeps until told: a tx gossiped to the leader must wake it. With a
    # 2 s tick, a leader that only looked again at the next tick would take >= 1 s here.
    tick_ms, wait_ms = 2_000, 50
    async with memory_cluster(4, tick_ms=tick_ms, seal_max_wait_ms=wait_ms) as nodes:
        leader = nodes[0].replica.leader_of(0, 1)
        entry = nodes[(leader + 1) % 4]
        t0 = time.monotonic()
        assert isinstance(entry.submit([transfer(1)])[0], bytes)
        await wait_until(lambda: all(n.chain.head.number == 1 for n in nodes), timeout=30)
        elapsed = time.monotonic() - t0
        assert elapsed < 0.5 * tick_ms / 1000, f"the leader proposed after {elapsed:.2f} s"
