"""4-node clusters whose peer traffic goes through the real broker (127.0.0.1:1883)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from node.rpc.client import AsyncRpcClient, RpcClient
from tests.mqtt.support import ProcCluster, assert_same_chain, heads_agree, mqtt_chain
from tests.runtime.cluster import start_nodes, transfer, wait_until
from tests.runtime.test_cluster_tcp import wait_sync

pytestmark = pytest.mark.mqtt


@pytest.mark.asyncio
async def test_in_process_mqtt_cluster_commits_client_txs_identically(
    tmp_path: Path, mqtt_broker: str
) -> None:
    chain, rpc_ports, _, configs = mqtt_chain(tmp_path, mqtt_broker)
    async with contextlib.AsyncExitStack() as stack:
        nodes = await start_nodes(stack, configs)
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


@pytest.mark.slow
def test_multi_process_mqtt_cluster_commits_dag_transfers(tmp_path: Path, mqtt_broker: str) -> None:
    chain, rpc_ports, _, configs = mqtt_chain(tmp_path, mqtt_broker, tick_ms=50)
    users = [f"acct{i}" for i in range(20)]
    with ProcCluster(configs, rpc_ports) as cluster:
        cluster.wait_connected()
        c0 = cluster.clients[0]
        # open 20 accounts with 1000 each, then 200 transfers sent to all four nodes
        saves = c0.send_raw_batch(
            [
                transfer(i, method="userSave", args=[u, 1000], chain_id=chain)
                for i, u in enumerate(users)
            ]
        )
        for h in saves:
            assert isinstance(h, str) and c0.wait_for_receipt(h, 30)["status"] == "0x0"
        hashes: list[str] = []

        def send_transfers(client: RpcClient, first: int, count: int) -> None:
            head = client.block_number()
            raws = [
                transfer(
                    first + i,
                    head=head,
                    method="userTransfer",
                    args=[users[(first + i) % 20], users[(3 * i + first + 1) % 20], 1 + i % 5],
                    chain_id=chain,
                )
                for i in range(count)
            ]
            results = client.send_raw_batch(raws)
            assert all(isinstance(r, str) for r in results), results[:3]
            hashes.extend(str(r) for r in results)

        def committed(clients: list[RpcClient], total: int) -> None:
            try:
                wait_sync(
                    lambda: all(c.total_transaction_count()["txSum"] == total for c in clients),
                    60,
                )
                wait_sync(lambda: len(cluster.heads(clients)) == 1, 20)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{cluster.log_tail()}") from None

        for k, client in enumerate(cluster.clients):
            send_transfers(client, 1000 + 50 * k, 50)
        committed(cluster.clients, 220)

        # kill -9 a sealer; the other three go on; restarted, it catches up (new MQTT boot)
        cluster.procs[3].kill9()
        alive = cluster.clients[:3]
        for k, client in enumerate(alive):
            send_transfers(client, 2000 + 50 * k, 30)
        committed(alive, 310)
        cluster.restart(3)
        committed(cluster.clients, 310)
        cluster.check_alive()
        for c in cluster.clients:  # every node has every receipt, all successful
            receipts = c.batch([("getTransactionReceipt", ["group0", h]) for h in hashes])
            assert all(isinstance(r, dict) and r["status"] == "0x0" for r in receipts)
        balances = [[c.user_balance(u)["values"][0] for u in users] for c in cluster.clients]
        assert all(b == balances[0] for b in balances)
        assert sum(balances[0]) == 20 * 1000
        assert balances[0] != [1000] * 20  # the transfers did move money
