"""Consensus system config changed by a transaction applies from the next block, live."""

from __future__ import annotations

import random

import pytest

from consensus.crypto import KeyPair
from node.ledger.tx import Transaction
from node.runtime.local import MemoryCluster
from tests.runtime.cluster import transfer, wait_until

pytestmark = pytest.mark.asyncio
GOVERNOR = KeyPair.generate(random.Random(21))


def set_value(key: str, value: str, *, head: int, nonce: str) -> bytes:
    tx = Transaction.build(
        chain_id="chain0",
        group_id="group0",
        to="0x1000",
        method="setValueByKey",
        args=[key, value],
        block_limit=head + 500,
        nonce=nonce,
    )
    return tx.sign(GOVERNOR).encode()


async def test_leader_period_and_timeout_reach_every_replica_with_the_block() -> None:
    async with MemoryCluster(4, governors=(GOVERNOR.address,), tick_ms=20) as cluster:
        nodes = cluster.running()
        assert {n.replica.config.leader_period for n in nodes} == {1}
        assert {n.replica.config.timeout_ticks for n in nodes} == {150}  # 3 s of 20 ms ticks
        nodes[0].submit(
            [
                set_value("leader_period", "2", head=0, nonce="lp"),
                set_value("consensus_timeout", "5", head=0, nonce="ct"),
            ]
        )
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 2 for n in nodes))
        await wait_until(lambda: all(n.replica.config.leader_period == 2 for n in nodes))
        assert {n.replica.config.timeout_ticks for n in nodes} == {250}
        # the new schedule: one leader for two consecutive heights, and the chain goes on
        r = nodes[0].replica
        assert r.leader_of(0, 4) == r.leader_of(0, 5) != r.leader_of(0, 6)
        head = nodes[0].chain.head.number
        for i in range(6):
            nodes[i % 4].submit([transfer(100 + i, head=head)])
            await wait_until(
                lambda i=i: all(n.chain.store.total_tx_count() == 3 + i for n in nodes), timeout=30
            )
        await wait_until(lambda: len({n.chain.head for n in nodes}) == 1)
        assert all(n.replica.counters.view_changes == 0 for n in nodes)


async def test_a_restarted_node_reads_the_changed_config_from_its_state() -> None:
    async with MemoryCluster(4, governors=(GOVERNOR.address,)) as cluster:
        cluster.node(0).submit([set_value("leader_period", "3", head=0, nonce="lp3")])
        await wait_until(
            lambda: all(n.replica.config.leader_period == 3 for n in cluster.running())
        )
        await cluster.stop(2)
        node = await cluster.start(2)
        assert node.replica.config.leader_period == 3
