"""Block sync over MQTT: a node that was away catches up through the broker.

Sync responses are the biggest frames a node sends (up to 8 MiB of blocks), far above the
transport's 64 KiB batch size; they must still arrive whole and be imported.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from node.runtime import Node
from tests.mqtt.support import assert_same_chain, mqtt_chain
from tests.runtime.cluster import start_nodes, transfer, wait_until

pytestmark = [pytest.mark.mqtt, pytest.mark.asyncio]


async def test_observer_catches_up_by_block_sync_over_mqtt(
    tmp_path: Path, mqtt_broker: str
) -> None:
    chain, _, _, configs = mqtt_chain(tmp_path, mqtt_broker, observers=1)
    async with contextlib.AsyncExitStack() as stack:
        sealers = await start_nodes(stack, configs[:4])
        # ~600-byte transactions: 3000 of them make a few blocks of ~0.6 MB each
        big = "u" * 240
        raws = [
            transfer(i, method="userSave", args=[f"{big}{i % 300}", 1], chain_id=chain)
            for i in range(3000)
        ]
        for k in range(0, len(raws), 500):
            sealers[k // 500 % 4].submit(raws[k : k + 500])
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 3000 for n in sealers), 40)
        head = sealers[0].chain.head.number
        sizes = [len(sealers[0].chain.store.block_by_number(h) or b"") for h in range(1, head + 1)]
        assert sum(sizes) > 1_000_000, sizes

        observer = await stack.enter_async_context(
            Node.from_config(configs[4].home / "config.toml")
        )
        await wait_until(lambda: observer.chain.head == sealers[0].chain.head, 30)
        assert observer.sync.stats["imported"] == head
        assert observer.sync.stats["bad_blocks"] == 0 and observer.sync.stats["timeouts"] == 0
        assert_same_chain([*sealers, observer])
        served = sum(n.sync.stats["served_blocks"] for n in sealers)
        assert served >= head
