"""Hostile publishers on a running 4-node MQTT cluster: garbage, outsiders, forgeries, replays.

Anyone who can publish on the broker is an attacker here (the broker is untrusted). The
test captures real cluster traffic with a plain aiomqtt client, then publishes garbage,
an otherwise perfect batch tagged with a non-member key, batches that claim a member's id
without its key, a tampered and a redirected member batch, and a replay of everything it
captured. The transport must drop each one for the documented reason (counted exactly),
the runtime must never see a frame of them, and the chain must keep committing without a
fork.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import urllib.request
from collections import Counter
from pathlib import Path

import aiomqtt
import pytest

from consensus.crypto import KeyPair
from node.ledger.tx import decode_transaction
from node.runtime import Node, wire
from node.transport import MqttTransport
from node.transport.mqtt import parse_broker_url, seal_batch
from tests.mqtt.support import assert_same_chain, heads_agree, mqtt_chain
from tests.runtime.cluster import start_nodes, transfer, wait_until

pytestmark = [pytest.mark.mqtt, pytest.mark.asyncio]

OUTSIDER = KeyPair.from_secret(b"\x5a" * 32)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def _drops(nodes: list[Node]) -> list[Counter[str]]:
    out = []
    for n in nodes:
        assert isinstance(n.transport, MqttTransport)
        out.append(Counter(n.transport.stats.dropped))
    return out


async def test_hostile_publishes_change_nothing(tmp_path: Path, mqtt_broker: str) -> None:
    chain, rpc_ports, _, configs = mqtt_chain(tmp_path, mqtt_broker)
    async with contextlib.AsyncExitStack() as stack:
        nodes = await start_nodes(stack, configs)
        ids = [n.node_id for n in nodes]
        root = f"ledgerlab/{chain}/group0"
        genesis_hash = nodes[0].chain.genesis_hash
        addr = parse_broker_url(mqtt_broker)
        spy = await stack.enter_async_context(
            aiomqtt.Client(addr.host, addr.port, identifier=f"spy-{chain}")
        )

        # 1. capture real traffic (votes, gossip, status, heartbeats) while blocks commit
        captured: list[tuple[str, bytes]] = []

        async def capture() -> None:
            async for m in spy.messages:
                assert isinstance(m.payload, bytes)
                captured.append((m.topic.value, m.payload))

        await spy.subscribe(f"{root}/#", qos=0)
        capturing = asyncio.create_task(capture())
        await asyncio.sleep(0.3)  # let the subscription settle before the traffic we want
        nodes[0].submit([transfer(i, chain_id=chain) for i in range(200)])
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 200 for n in nodes), 20)
        await wait_until(lambda: heads_agree(nodes), 10)
        await asyncio.sleep(0.5)  # the last status broadcasts and heartbeats
        await spy.unsubscribe(f"{root}/#")
        capturing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await capturing
        member_batches = [(t, p) for t, p in captured if t == f"{root}/bcast/{ids[1]}"]
        assert len(captured) >= 8 and member_batches, "the spy saw the cluster's traffic"

        before = _drops(nodes)
        head_before = nodes[0].chain.head.number

        # 2. attack: every publish is QoS 1, so the broker has it before we count
        async def pub(topic: str, payload: bytes) -> None:
            await spy.publish(topic, payload, qos=1)

        forged_tx = transfer(999, chain_id=chain)  # valid and signed: only the batch is bad
        forged_frames = [
            wire.encode(wire.Status(10**6, b"\x11" * 32, genesis_hash)),  # "sync from me"
            wire.encode(wire.Txs((forged_tx,))),
            wire.encode(wire.Consensus(b"\x01" * 100)),
        ]
        now_ms = time.time_ns() // 1_000_000

        def forged(key: KeyPair, topic: str, seq: int) -> bytes:
            return seal_batch(
                key,
                topic,
                forged_frames,
                genesis_hash=genesis_hash,
                boot_ms=now_ms,
                boot_nonce=b"\x42" * 8,
                seq=seq,
                receivers=ids,
            )

        outsider = OUTSIDER.public_key.hex()
        inbox0 = f"{root}/p2p/{ids[0]}"
        # garbage on an inbox and on broadcast topics
        await pub(f"{inbox0}/{ids[1]}", b"\x00garbage" * 20)
        await pub(f"{root}/bcast/{ids[1]}", b"\xffnot a batch" * 20)
        await pub(f"{root}/bcast/{ids[2]}", b"short")
        # a perfectly formed batch, tagged with a key that is not a member
        await pub(f"{root}/bcast/{outsider}", forged(OUTSIDER, f"{root}/bcast/{outsider}", 1))
        await pub(f"{inbox0}/{outsider}", forged(OUTSIDER, f"{inbox0}/{outsider}", 2))
        # batches claiming to be member 1, tagged with the outsider's keys
        await pub(f"{inbox0}/{ids[1]}", forged(OUTSIDER, f"{inbox0}/{ids[1]}", 3))
        await pub(f"{root}/bcast/{ids[1]}", forged(OUTSIDER, f"{root}/bcast/{ids[1]}", 4))
        # a real batch of member 1, tampered with; and redirected into node 0's inbox
        topic1, real1 = member_batches[-1]
        tampered = bytearray(real1)
        tampered[len(tampered) // 3] ^= 0x01
        await pub(topic1, bytes(tampered))
        await pub(f"{inbox0}/{ids[1]}", real1)
        # a replay of everything captured, in order
        for topic, payload in captured:
            await pub(topic, payload)

        expected = [Counter[str]() for _ in nodes]
        for i in (0, 2, 3):
            expected[i]["bad_signature"] += 3  # garbage, forged claim, tampered on bcast/1
        expected[0]["bad_signature"] += 3  # garbage, forged claim, redirect on its inbox
        for i in (0, 1, 3):
            expected[i]["malformed"] += 1  # short garbage on bcast/2
        for i in range(4):
            expected[i]["unknown_sender"] += 1  # outsider on bcast
        expected[0]["unknown_sender"] += 1  # outsider on node 0's inbox
        for topic, _ in captured:
            parts = topic[len(root) + 1 :].split("/")
            receivers = [i for i in range(4) if ids[i] != parts[-1]]
            if parts[0] == "p2p":
                receivers = [ids.index(parts[1])]
            for i in receivers:
                expected[i]["replay"] += 1

        def increase() -> list[Counter[str]]:
            return [a - b for a, b in zip(_drops(nodes), before, strict=True)]

        with contextlib.suppress(TimeoutError):
            await wait_until(lambda: increase() == expected, 10)
        assert increase() == expected

        # 3. nothing changed: nobody heard a frame from the attack, commits go on, no fork
        forged_hash = decode_transaction(forged_tx).hash
        for n in nodes:
            assert n.pool.get(forged_hash) is None, "a forged batch's tx reached the pool"
            assert n.dropped.total() == 0, n.dropped
            assert set(n.sync.peers) <= set(ids) - {n.node_id}
            assert all(s.height < 10**6 for s in n.sync.peers.values())
            assert n.transport.peers() == frozenset(ids) - {n.node_id}
        nodes[1].submit([transfer(1000 + i, chain_id=chain) for i in range(200)])
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 400 for n in nodes), 20)
        await wait_until(lambda: heads_agree(nodes), 10)
        assert nodes[0].chain.head.number > head_before
        assert_same_chain(nodes)
        assert all(n.chain.store.tx_location(forged_hash) is None for n in nodes)
        # operators see the same counters on /metrics
        text = await asyncio.to_thread(_get, f"http://127.0.0.1:{rpc_ports[0]}/metrics")
        for reason, count in expected[0].items():
            m = re.search(rf'^ledgerlab_p2p_dropped_total{{reason="{reason}"}} (\d+)$', text, re.M)
            assert m is not None and int(m.group(1)) >= count, reason
