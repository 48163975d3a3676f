"""A 4-node cluster on a private Mosquitto that is stopped under load and started again."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path

import pytest

from node.rpc.client import RpcClient
from tests.brokers import Mosquitto
from tests.mqtt.support import (
    ProcCluster,
    assert_same_chain,
    heads_agree,
    mqtt_chain,
)
from tests.runtime.cluster import start_nodes, transfer, wait_until
from tests.runtime.test_cluster_tcp import wait_sync

pytestmark = pytest.mark.mqtt

OUTAGE = 3.0


@pytest.mark.asyncio
async def test_in_process_cluster_recovers_from_broker_restart(
    tmp_path: Path, private_broker: Mosquitto
) -> None:
    chain, _, _, configs = mqtt_chain(tmp_path, private_broker.url)
    async with contextlib.AsyncExitStack() as stack:
        nodes = await start_nodes(stack, configs)
        accepted: list[bytes] = []
        stop_load = asyncio.Event()

        async def load() -> None:
            """10 client txs every 50 ms, round-robin over the nodes, all the time."""
            k = 0
            while not stop_load.is_set():
                node = nodes[k % 4]
                head = node.chain.head.number
                raws = [transfer(10 * k + i, head=head, chain_id=chain) for i in range(10)]
                results = node.submit(raws)
                assert all(isinstance(r, bytes) for r in results), results
                accepted.extend(r for r in results if isinstance(r, bytes))
                k += 1
                await asyncio.sleep(0.05)

        loader = asyncio.create_task(load())
        try:
            await wait_until(lambda: all(n.chain.head.number >= 3 for n in nodes), 15)
            before = max(n.chain.head.number for n in nodes)

            await asyncio.to_thread(private_broker.stop)
            await wait_until(lambda: not any(n.transport.connected for n in nodes), 10)
            await asyncio.sleep(OUTAGE)  # the load keeps coming while the broker is down
            during = max(n.chain.head.number for n in nodes)
            assert during <= before + 1, "nothing can commit without the broker"
            await asyncio.to_thread(private_broker.start)
            t0 = time.monotonic()

            await wait_until(lambda: all(len(n.transport.peers()) == 3 for n in nodes), 30)
            reconnected = time.monotonic() - t0
            await wait_until(lambda: all(n.chain.head.number > during + 2 for n in nodes), 30)
            recovered = time.monotonic() - t0
        finally:
            stop_load.set()
            await loader
        total = len(accepted)
        await wait_until(lambda: all(n.chain.store.total_tx_count() == total for n in nodes), 30)
        await wait_until(lambda: heads_agree(nodes), 10)
        assert_same_chain(nodes)
        for n in nodes:
            assert all(n.chain.store.receipt(h) is not None for h in accepted)
            assert n.transport.stats.connects >= 2 and n.transport.stats.disconnects["broker"] >= 1
            assert n.dropped.total() == 0, n.dropped
        print(
            f"{total} txs, head {nodes[0].chain.head.number}, reconnected in {reconnected:.1f}s, "
            f"commits resumed in {recovered:.1f}s, views {[n.replica.view for n in nodes]}"
        )


@pytest.mark.slow
def test_multi_process_cluster_recovers_from_broker_restart(
    tmp_path: Path, private_broker: Mosquitto
) -> None:
    chain, rpc_ports, _, configs = mqtt_chain(tmp_path, private_broker.url, tick_ms=50)
    with ProcCluster(configs, rpc_ports) as cluster:
        cluster.wait_connected()
        accepted: list[str] = []
        errors: list[BaseException] = []
        stop_load = threading.Event()

        def load() -> None:
            """JSON-RPC clients keep submitting (20 txs every 100 ms, round-robin)."""
            clients = [RpcClient("127.0.0.1", p, timeout=5.0) for p in rpc_ports]
            try:
                k = 0
                while not stop_load.is_set():
                    c = clients[k % 4]
                    head = c.block_number()
                    raws = [transfer(20 * k + i, head=head, chain_id=chain) for i in range(20)]
                    results = c.send_raw_batch(raws)
                    assert all(isinstance(r, str) for r in results), results[:2]
                    accepted.extend(str(r) for r in results)
                    k += 1
                    time.sleep(0.1)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)
            finally:
                for c in clients:
                    c.close()

        loader = threading.Thread(target=load, name="load")
        loader.start()
        try:
            wait_sync(lambda: all(c.block_number() >= 3 for c in cluster.clients), 20)
            private_broker.stop()
            time.sleep(OUTAGE)
            during = max(c.block_number() for c in cluster.clients)
            private_broker.start()
            t0 = time.monotonic()
            cluster.wait_connected(30)
            wait_sync(lambda: all(c.block_number() > during + 2 for c in cluster.clients), 30)
            recovered = time.monotonic() - t0
        finally:
            stop_load.set()
            loader.join(10)
        assert not errors, errors
        total = len(accepted)
        try:
            wait_sync(
                lambda: all(c.total_transaction_count()["txSum"] == total for c in cluster.clients),
                40,
            )
            wait_sync(lambda: len(cluster.heads()) == 1, 20)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{cluster.log_tail()}") from None
        cluster.check_alive()
        for c in cluster.clients:  # every receipt on every node
            receipts = c.batch([("getTransactionReceipt", ["group0", h]) for h in accepted])
            assert all(isinstance(r, dict) and r["status"] == "0x0" for r in receipts)
        views = [c.pbft_view() for c in cluster.clients]
        print(f"{total} txs, commits resumed {recovered:.1f}s after the restart, views {views}")
