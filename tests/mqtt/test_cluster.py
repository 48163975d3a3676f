"""4-node clusters whose peer traffic goes through the real broker (127.0.0.1:1883)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from node.client import AsyncRpcClient
from node.runtime import Node
from tests.mqtt.support import assert_same_chain, heads_agree, mqtt_chain
from tests.node.cluster import transfer, wait_until

pytestmark = pytest.mark.mqtt


@pytest.mark.asyncio
async def test_in_process_mqtt_cluster_commits_client_txs_identically(
    tmp_path: Path, mqtt_broker: str
) -> None:
    chain, rpc_ports, _, configs = mqtt_chain(tmp_path, mqtt_broker)
    async with contextlib.AsyncExitStack() as stack:
        nodes = [
            await stack.enter_async_context(Node.from_config(c.home / "config.toml"))
            for c in configs
        ]
        await wait_until(lambda: all(len(n.transport.peers()) == 3 for n in nodes), 15)
        assert all(n.transport.connected for n in nodes)
        # clients talk JSON-RPC to different nodes; gossip and PBFT go through the broker
        hashes: list[str] = []
        for k, port in enumerate(rpc_ports):
            async with AsyncRpcClient("127.0.0.1", port) as client:
                raws = [transfer(100 * k + i, chain_id=chain) for i in range(75)]
                results = await client.send_raw_batch(raws)
                assert all(isinstance(r, str) for r in results), results[:3]
                hashes += [str(r) for r in results]
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 300 for n in nodes), 30)
        await wait_until(lambda: heads_agree(nodes), 10)
        assert_same_chain(nodes)
        for n in nodes:
            assert all(n.chain.store.receipt(bytes.fromhex(h[2:])) for h in hashes)
            assert n.dropped.total() == 0, n.dropped
            assert not {"bad_signature", "unknown_sender", "replay"} & set(
                n.transport.stats.dropped
            ), n.transport.stats.dropped
