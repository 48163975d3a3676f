"""Liveness when gossip is lost: a transaction only one follower holds still commits.

Gossip is best-effort on every transport. Over MQTT it is lost whenever a node publishes
while its peers are not subscribed (after a broker restart the node that reconnects
first flushes its queue to nobody), and with QoS 0 under load. A follower holding the only
copy of a transaction must not wait for a leader turn that an idle chain never gives it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from node.transport import MqttTransport
from tests.mqtt.support import assert_same_chain, heads_agree, mqtt_chain
from tests.runtime.cluster import start_nodes, transfer, wait_until

pytestmark = [pytest.mark.mqtt, pytest.mark.asyncio]


async def test_txs_whose_gossip_was_lost_still_commit(tmp_path: Path, mqtt_broker: str) -> None:
    chain, _, _, configs = mqtt_chain(tmp_path, mqtt_broker)
    async with contextlib.AsyncExitStack() as stack:
        nodes = await start_nodes(stack, configs)
        r = nodes[0].replica
        leader = r.leader_of(r.view, r.height)
        x = nodes[(leader + 1) % 4]  # a follower, and not the next leader either
        t = x.transport
        assert isinstance(t, MqttTransport)
        # its gossip is lost: the send queue refuses everything for a moment
        limit, t.max_pending_bytes = t.max_pending_bytes, -1
        try:
            results = x.submit([transfer(i, chain_id=chain) for i in range(20)])
            assert all(isinstance(h, bytes) for h in results)
            await wait_until(lambda: t.stats.dropped["send_buffer_full"] > 0, 5)
        finally:
            t.max_pending_bytes = limit
        assert all(len(n.pool) == 0 for n in nodes if n is not x), "the gossip was lost"
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 20 for n in nodes), 20)
        await wait_until(lambda: heads_agree(nodes), 10)
        assert_same_chain(nodes)
        # x may have left for a view of its own meanwhile: the chain still goes on
        x.submit([transfer(100 + i, head=x.chain.head.number, chain_id=chain) for i in range(20)])
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 40 for n in nodes), 20)
        await wait_until(lambda: heads_agree(nodes), 10)
        assert_same_chain(nodes)
