"""JSON-RPC against real nodes: the FISCO methods, receipts, errors, metrics, fuzzed bodies."""

from __future__ import annotations

import asyncio
import random

import pytest

from consensus.crypto import KeyPair
from node.rpc.client import AsyncRpcClient, RpcError
from tests.runtime.cluster import MemoryCluster, wait_until

pytestmark = pytest.mark.asyncio
ALICE = KeyPair.generate(random.Random(11))


async def raw_http(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    if not payload.startswith(b"GET "):
        writer.write_eof()  # garbage may be an incomplete request: say it is all there is
    try:
        async with asyncio.timeout(5):
            return await reader.read(65536)
    finally:
        writer.close()


async def test_transfers_receipts_and_reads_through_rpc() -> None:
    async with MemoryCluster(4, rpc=True) as cluster:
        ports = [n.rpc_server.port for n in cluster.running()]
        async with (
            AsyncRpcClient("127.0.0.1", ports[0]) as c0,
            AsyncRpcClient("127.0.0.1", ports[2]) as c2,
        ):
            receipt = await c0.user_add(ALICE, "alice", 100)
            assert int(receipt["status"], 16) == 0
            receipt = await c2.user_transfer(ALICE, "alice", "bob", 30)
            assert int(receipt["status"], 16) == 0
            failed = await c2.user_transfer(ALICE, "alice", "bob", 1000)
            assert int(failed["status"], 16) == -51404  # insufficient balance
            await wait_until(lambda: len({n.chain.head for n in cluster.running()}) == 1)
            for port in ports:
                async with AsyncRpcClient("127.0.0.1", port) as c:
                    assert (await c.user_balance("alice"))["values"] == [70]
                    assert (await c.user_balance("bob"))["values"] == [30]
            number = await c0.block_number()
            block = await c0.get_block(number, full=True)
            assert block["transactions"][0]["hash"] == failed["transactionHash"]
            tx = await c0.tx(failed["transactionHash"])
            assert int(tx["blockNumber"], 16) == number
            assert (await c0.total_transaction_count())["txSum"] == 3
            assert await c0.system_config("tx_count_limit") == "1000"
            status = await c0.consensus_status()
            assert status["nodeIndex"] in (0, "0x0")
            assert len(await c0.sealers()) == 4
            sync = await c0.sync_status()
            assert sync["isSyncing"] is False


async def test_bad_transactions_get_typed_errors_and_change_nothing() -> None:
    async with MemoryCluster(4, rpc=True) as cluster:
        node = cluster.nodes[0]
        async with AsyncRpcClient("127.0.0.1", node.rpc_server.port) as c:
            stx = await c.build_tx(ALICE, "0x5002", "userAdd", ["carol", 5])
            await c.send_raw(stx.encoded)
            with pytest.raises(RpcError) as info:
                await c.send_raw(stx.encoded)
            assert info.value.reason == "AlreadyKnown"
            with pytest.raises(RpcError) as info:
                await c.send_raw(b"\x93garbage")
            assert info.value.reason == "Malformed"
            stale = await c.build_tx(ALICE, "0x5002", "userAdd", ["dave", 5], block_limit=5000)
            with pytest.raises(RpcError) as info:
                await c.send_raw(stale.encoded)
            assert info.value.reason == "BlockLimitCheckFail"
            with pytest.raises(RpcError):
                await c.request("getBlockNumber", ["group9"])
            with pytest.raises(RpcError):
                await c.request("noSuchMethod", ["group0"])
            await c.wait_for_receipt(stx.hash, 10)
            assert node.pool.rejected  # counted


async def test_metrics_and_fuzzed_bodies_leave_the_node_serving() -> None:
    async with MemoryCluster(4, rpc=True) as cluster:
        port = cluster.nodes[1].rpc_server.port
        rng = random.Random(3)
        for _ in range(40):
            body = rng.randbytes(rng.randrange(1, 400))
            request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
            await raw_http(port, request)
            await raw_http(port, rng.randbytes(rng.randrange(1, 200)))
        reply = await raw_http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        text = reply.decode()
        assert "200" in text.split("\r\n", 1)[0]
        for name in (
            "ledgerlab_block_height",
            "ledgerlab_pbft_view",
            "ledgerlab_txpool_size",
            "ledgerlab_view_changes_total",
            "ledgerlab_peers",
            "ledgerlab_committed_txs_total",
            "ledgerlab_consensus_messages_in_total",
        ):
            assert name in text, name
        async with AsyncRpcClient("127.0.0.1", port) as c:
            assert await c.block_number() == 0
