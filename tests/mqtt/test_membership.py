"""Membership changes over the real broker: a free node admitted once added, promoted,
and a removed sealer dropped, with commits throughout (the TCP twin is in
tests/runtime/test_membership_live.py)."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import pytest

from consensus.crypto import KeyPair
from node.ledger.tx import Transaction
from node.runtime.node import Node
from tests.mqtt.support import unique_chain
from tests.runtime.cluster import start_nodes, tcp_chain, transfer, wait_until
from tests.runtime.test_cluster_tcp import free_base

pytestmark = [pytest.mark.mqtt, pytest.mark.asyncio]
GOVERNOR = KeyPair.generate(random.Random(47))


class Chain:
    def __init__(self, chain_id: str) -> None:
        self.chain_id = chain_id
        self.sent = 0

    def change(self, node: Node, method: str, key: bytes) -> bytes:
        self.sent += 1
        tx = Transaction.build(
            chain_id=self.chain_id,
            group_id="group0",
            to="0x1003",
            method=method,
            args=[key.hex()],
            block_limit=node.chain.head.number + 500,
            nonce=f"mqgov{self.sent}",
        )
        (tx_hash,) = node.submit([tx.sign(GOVERNOR).encode()])
        assert isinstance(tx_hash, bytes), tx_hash
        return tx_hash

    async def commit(self, nodes: list[Node], count: int, start: int) -> None:
        total = nodes[0].chain.store.total_tx_count() + count
        for i in range(count):
            node = nodes[i % len(nodes)]
            raw = transfer(start + i, head=node.chain.head.number, chain_id=self.chain_id)
            (result,) = node.submit([raw])
            assert isinstance(result, bytes), result
        await wait_until(
            lambda: all(n.chain.store.total_tx_count() == total for n in nodes)
            and len({n.chain.head for n in nodes}) == 1,
            timeout=60,
        )


async def committed(tx_hash: bytes, nodes: list[Node]) -> None:
    await wait_until(
        lambda: all(n.chain.store.tx_location(tx_hash) is not None for n in nodes), timeout=60
    )


@pytest.mark.timeout(150)
async def test_over_mqtt_a_node_joins_is_promoted_and_sealer_0_leaves(
    tmp_path: Path, mqtt_broker: str
) -> None:
    chain = Chain(unique_chain())
    _, configs = tcp_chain(
        tmp_path, 4, free_base(5), free=1, governors=(GOVERNOR.address,),
        chain_id=chain.chain_id, transport="mqtt", mqtt_broker=mqtt_broker,
    )  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        old = await start_nodes(stack, configs[:4])
        new = await stack.enter_async_context(Node.from_config(configs[4].home / "config.toml"))
        assert new.role == "free"
        assert {type(n.transport).__name__ for n in [*old, new]} == {"MqttTransport"}
        await chain.commit(old, 3, 0)
        key = new.key.public_key
        await committed(chain.change(old[0], "addObserver", key), old)
        nodes = [*old, new]
        await wait_until(lambda: new.role == "observer", timeout=30)
        await chain.commit(nodes, 3, 100)  # the observer follows through the broker
        await committed(chain.change(old[1], "addSealer", key), nodes)
        await wait_until(lambda: all(n.membership.sealers[-1:] == (key,) for n in nodes))
        assert new.index == 4
        await chain.commit(nodes, 5, 200)
        await committed(chain.change(new, "remove", old[0].key.public_key), nodes)
        members = nodes[1:]
        await wait_until(lambda: old[0].role == "free", timeout=30)
        await chain.commit(members, 5, 300)
        assert [n.index for n in members] == [0, 1, 2, 3]
        head = members[0].chain.head.number
        block = members[0].chain.block(head)
        assert block is not None and key in block.header.sealer_list
        assert old[0].key.public_key not in block.header.sealer_list
