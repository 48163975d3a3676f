"""The Python client against a real server: helpers, errors, keep-alive, reconnects."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from consensus.crypto import KeyPair
from node.ledger.tx import SignedTransaction
from node.rpc import Dispatcher, ErrorCode, RpcServer
from node.rpc.client import (
    DAG_TRANSFER,
    AsyncRpcClient,
    RpcClient,
    RpcError,
    RpcTransportError,
    _Calls,
    _derive,
    _Rpc,
)
from node.rpc.methods import METHODS, Method
from tests.rpc.conftest import ThreadedServer
from tests.rpc.fakes import GROUP, INSUFFICIENT, Ledger


@pytest_asyncio.fixture
async def client(server: RpcServer) -> AsyncIterator[AsyncRpcClient]:
    async with AsyncRpcClient("127.0.0.1", server.port, group=GROUP, timeout=5) as c:
        yield c


async def commit_soon(ledger: Ledger, delay: float = 0.15) -> None:
    await asyncio.sleep(delay)
    ledger.commit()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- reads -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_status_helpers(client: AsyncRpcClient, ledger: Ledger, server: RpcServer) -> None:
    assert (await client.client_version())["Chain Id"] == "chain0"
    assert await client.chain_id() == "chain0"
    assert await client.block_number() == 0
    ledger.commit()
    ledger.view = 5
    assert await client.block_number() == 1
    assert await client.pbft_view() == 5
    assert await client.sealers() == [k.hex() for k in ledger.sealers]
    assert await client.observers() == [k.hex() for k in ledger.observers]
    assert len(await client.peers()) == 3
    assert (await client.consensus_status())["blockNumber"] == 1
    assert (await client.sync_status())["genesisHash"] == "0x" + ledger.blocks[0].hash.hex()
    assert await client.pending_tx_size() == 0
    assert await client.total_transaction_count() == {
        "blockNumber": 1,
        "failedTxSum": 0,
        "txSum": 0,
    }
    assert await client.system_config("tx_count_limit") == "1000"
    assert server.connections_total == 1  # every call above reused one connection


@pytest.mark.asyncio
async def test_blocks_txs_receipts(client: AsyncRpcClient, ledger: Ledger, alice: KeyPair) -> None:
    add = await client.user_add(alice, "alice", 100, wait=False)
    tx_hash = add["transactionHash"]
    pending = await client.tx(tx_hash)
    assert pending is not None and pending["blockNumber"] is None
    assert await client.receipt(tx_hash) is None
    ledger.commit()
    receipt = await client.receipt(bytes.fromhex(tx_hash[2:]))
    assert receipt is not None and receipt["status"] == "0x0"
    block = await client.get_block(1, full=True)
    assert block["transactions"][0]["hash"] == tx_hash
    assert await client.get_block(block["hash"]) == await client.get_block(1)
    assert await client.get_block(bytes.fromhex(block["hash"][2:])) == await client.get_block(1)
    assert await client.block_hash(1) == block["hash"]
    with pytest.raises(RpcError) as err:
        await client.get_block(9)
    assert err.value.code == ErrorCode.BlockNumberNotFound


@pytest.mark.asyncio
async def test_send_tx_waits_for_receipt_and_call_reads_state(
    client: AsyncRpcClient, ledger: Ledger, alice: KeyPair
) -> None:
    committer = asyncio.create_task(commit_soon(ledger))
    receipt = await client.user_add(alice, "alice", 100, timeout=5)
    await committer
    assert receipt["status"] == "0x0" and receipt["blockNumber"] == "0x1"

    committer = asyncio.create_task(commit_soon(ledger))
    failed = await client.user_transfer(alice, "alice", "bob", 1000, timeout=5)
    await committer
    assert int(failed["status"], 16) == INSUFFICIENT

    balance = await client.user_balance("alice")
    assert balance["status"] == 0 and balance["values"] == [100]
    assert balance["block_number"] == 2
    other = await client.call("0x1000", "getValueByKey", ["tx_count_limit"], sender=alice.address)
    assert other["status"] == 26 and other["values"] == []


@pytest.mark.asyncio
async def test_wait_for_receipt_times_out(client: AsyncRpcClient) -> None:
    with pytest.raises(TimeoutError):
        await client.wait_for_receipt("0x" + "00" * 32, timeout=0.3, poll=0.05)


@pytest.mark.asyncio
async def test_build_tx(client: AsyncRpcClient, ledger: Ledger, alice: KeyPair) -> None:
    for _ in range(3):
        ledger.commit()
    stx = await client.build_tx(alice, DAG_TRANSFER, "userAdd", ["a", 1])
    assert isinstance(stx, SignedTransaction)
    assert stx.tx.block_limit == 3 + 500
    assert stx.tx.chain_id == "chain0" and stx.tx.group_id == GROUP
    assert stx.recover_sender() == alice.address
    again = await client.build_tx(alice, DAG_TRANSFER, "userAdd", ["a", 1])
    assert again.tx.nonce != stx.tx.nonce


# -- submission --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_send_raw_and_batches(
    client: AsyncRpcClient, server: RpcServer, ledger: Ledger, alice: KeyPair
) -> None:
    txs = [ledger.tx(alice, "userAdd", [f"u{i}", 1]) for i in range(25)]
    assert await client.send_raw(txs[0].encoded) == "0x" + txs[0].hash.hex()
    with pytest.raises(RpcError) as err:
        await client.send_raw(txs[0].encoded)
    assert err.value.code == ErrorCode.AlreadyKnown and err.value.reason == "AlreadyKnown"
    assert err.value.data == {"reason": "AlreadyKnown", "status": "0x2714"}

    results = await client.send_raw_batch([t.encoded for t in txs], chunk=7)
    assert isinstance(results[0], RpcError) and results[0].code == ErrorCode.AlreadyKnown
    assert results[1:] == ["0x" + t.hash.hex() for t in txs[1:]]
    assert len(ledger.pool) == 25
    assert server.dispatcher.stats.batches == 4  # ceil(25 / 7) HTTP requests
    assert await client.send_raw_batch([]) == []


@pytest.mark.asyncio
async def test_raw_request_and_batch(client: AsyncRpcClient) -> None:
    with pytest.raises(RpcError) as err:
        await client.request("noSuchMethod", [GROUP])
    assert err.value.code == ErrorCode.MethodNotFound
    results = await client.batch([("getBlockNumber", [GROUP]), ("getBlockNumber", ["nope"])])
    assert results[0] == "0x0"
    assert isinstance(results[1], RpcError) and results[1].code == ErrorCode.GroupNotFound


@pytest.mark.asyncio
async def test_unknown_group_is_a_typed_error(server: RpcServer) -> None:
    async with AsyncRpcClient("127.0.0.1", server.port, group=7) as client:
        with pytest.raises(RpcError) as err:
            await client.block_number()
    assert err.value.code == ErrorCode.GroupNotFound


# -- calls derived from the method table ------------------------------------------------------


def test_every_table_method_has_a_row() -> None:
    rows = [row for n in dir(_Calls) if isinstance(row := getattr(_Calls, n), _Rpc)]
    assert {row.method for row in rows} == set(METHODS)
    client = AsyncRpcClient(group="g")
    assert _Calls.client_version.wire(client) == ("getClientVersion", [])  # needs no group
    assert _Calls.tx.wire(client, b"\xab") == ("getTransactionByHash", ["g", "0xab"])


@pytest.mark.asyncio
async def test_a_new_table_method_gets_a_call(server: RpcServer) -> None:
    class Client(AsyncRpcClient):
        pass

    table = {**METHODS, "getFooBarStatus": Method("getFooBarStatus", "[group, x]")}
    _derive(Client, table)
    async with Client("127.0.0.1", server.port, group=GROUP) as client:
        assert Client.foo_bar_status.wire(client, 7) == ("getFooBarStatus", [GROUP, 7])
        with pytest.raises(RpcError) as err:
            await client.foo_bar_status(7)  # type: ignore[attr-defined]
    assert err.value.code == ErrorCode.MethodNotFound  # it went out under its table name
    assert not hasattr(AsyncRpcClient, "foo_bar_status")
    with pytest.raises(TypeError, match="shadow"):
        _derive(Client, {"getChainId": Method("getChainId", "[group]")})


def test_sync_client_has_every_async_call() -> None:
    def public(cls: type) -> set[str]:
        return {n for n in dir(cls) if not n.startswith("_")}

    assert public(AsyncRpcClient) - {"post"} <= public(RpcClient)


# -- transport ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_connection_refused_is_a_transport_error() -> None:
    async with AsyncRpcClient("127.0.0.1", free_port()) as client:
        with pytest.raises(RpcTransportError):
            await client.block_number()


@pytest.mark.asyncio
async def test_http_level_error_becomes_rpc_error(dispatcher: Dispatcher, alice: KeyPair) -> None:
    async with (
        RpcServer(dispatcher, port=0, max_body=200) as server,
        AsyncRpcClient("127.0.0.1", server.port, group=GROUP) as client,
    ):
        with pytest.raises(RpcError) as err:
            await client.send_raw(b"\x00" * 500)
        assert err.value.code == ErrorCode.RequestTooLarge
        assert await client.block_number() == 0  # reconnects after the server closed


@pytest.mark.asyncio
async def test_reconnects_after_idle_close_and_restart(dispatcher: Dispatcher) -> None:
    port = free_port()
    async with RpcServer(dispatcher, port=port, idle_timeout=0.1) as server:
        client = AsyncRpcClient("127.0.0.1", port, group=GROUP)
        assert await client.block_number() == 0
        await asyncio.sleep(0.3)  # the server drops the idle connection
        assert await client.block_number() == 0
        assert server.connections_total == 2
    async with RpcServer(dispatcher, port=port):
        assert await client.block_number() == 0  # same client, restarted server
    with pytest.raises(RpcTransportError):
        await client.block_number()  # server gone
    await client.close()


@pytest.mark.asyncio
async def test_concurrent_callers_share_one_connection(
    client: AsyncRpcClient, server: RpcServer
) -> None:
    results = await asyncio.gather(*(client.block_number() for _ in range(20)))
    assert results == [0] * 20
    assert server.connections_total == 1


def test_from_url() -> None:
    client = AsyncRpcClient.from_url("http://127.0.0.1:20201", group=1)
    assert (client.host, client.port, client.group) == ("127.0.0.1", 20201, 1)
    assert AsyncRpcClient.from_url("localhost:20203").port == 20203
    with pytest.raises(ValueError):
        AsyncRpcClient.from_url("https://x:1")
    with RpcClient.from_url("127.0.0.1:20200") as sync_client:
        assert sync_client.group == "group0"


# -- the synchronous client ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def threaded() -> Iterator[ThreadedServer]:
    with ThreadedServer() as running:
        yield running


def test_sync_client(threaded: ThreadedServer, alice: KeyPair) -> None:
    with RpcClient("127.0.0.1", threaded.port, group=GROUP) as client:
        start = client.block_number()
        sent = client.user_add(alice, "zed", 7, wait=False)
        threaded.run(lambda ledger: ledger.commit())
        receipt = client.wait_for_receipt(sent["transactionHash"], timeout=5)
        assert receipt["status"] == "0x0"
        assert client.block_number() == start + 1
        assert client.user_balance("zed")["values"] == [7]
        assert client.get_block(start + 1)["transactions"] == [sent["transactionHash"]]
        assert client.system_config("tx_count_limit") == "1000"
        with pytest.raises(RpcError) as err:
            client.system_config("nope")
        assert err.value.code == ErrorCode.InvalidSystemConfig
        raws = [
            client.build_tx(alice, DAG_TRANSFER, "userAdd", [f"s{i}", 1]).encoded for i in range(5)
        ]
        assert all(isinstance(r, str) for r in client.send_raw_batch(raws))
        assert client.pending_tx_size() == 5


@pytest.mark.asyncio
async def test_garbage_from_the_server_is_a_transport_error() -> None:
    answers = iter(
        [
            b"SMTP ready\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\nno",
            b"HTTP/1.1 200 OK\r\nX: " + b"a" * 100_000 + b"\r\n\r\n",
        ]
    )

    async def fake_node(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(next(answers))
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()

    server = await asyncio.start_server(fake_node, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for _ in range(5):
            async with AsyncRpcClient("127.0.0.1", port, timeout=2) as client:
                with pytest.raises(RpcTransportError):
                    await client.block_number()
    finally:
        server.close()
