"""``call`` over the real HTTP server and a real chain: JSON types of args, dry-run of
write methods, and how numbers JSON can write but Python cannot hold are refused
(docs/rpc.md, "call")."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio

from node.ledger.tx import UINT256_MAX, decode_values
from node.rpc import Dispatcher, RpcServer
from node.runtime.service import NodeService
from storage import MemoryKV
from tests.runtime.chains import GENESIS, GOVERNOR, NodeChain, signed

pytestmark = pytest.mark.asyncio

CALL = '{"jsonrpc":"2.0","id":7,"method":"call","params":["group0",{"to":"0x5002",%s}]}'


@pytest_asyncio.fixture
async def node() -> AsyncIterator[tuple[NodeChain, int]]:
    nc = NodeChain(MemoryKV())
    nc.run([signed("userAdd", "alice", 100)])
    service = NodeService(SimpleNamespace(chain=nc.chain, genesis=GENESIS))  # type: ignore[arg-type]
    async with RpcServer(Dispatcher({"group0": service}), port=0) as server:
        yield nc, server.port


async def post(port: int, body: str) -> Any:
    """POST ``body`` exactly as written (no JSON library in between) and decode the answer."""
    data = body.encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
            + f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        await writer.drain()
        async with asyncio.timeout(5):
            raw = await reader.read()
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return json.loads(payload)


async def call(port: int, method: str, args_json: str) -> Any:
    return await post(port, CALL % f'"method":"{method}","args":{args_json}')


def status(answer: Any) -> int:
    assert "result" in answer, answer
    return int(answer["result"]["status"], 16)


def error(answer: Any, code: int = -32602) -> str:
    assert answer.get("error", {}).get("code") == code, answer
    return str(answer["error"]["message"])


async def test_integers_are_json_integers_of_any_size(node: tuple[NodeChain, int]) -> None:
    _, port = node
    assert status(await call(port, "userBalance", '["alice"]')) == 0
    # uint256 values travel as plain JSON integers, exact beyond 2^53
    assert status(await call(port, "userSave", f'["alice", {UINT256_MAX}]')) == -51405
    assert status(await call(port, "userSave", f'["alice", {UINT256_MAX - 100}]')) == 0
    assert status(await call(port, "userSave", '["alice", -0]')) == -51401  # -0 is 0
    # a number inside a string is a string: the precompile's types refuse it
    assert status(await call(port, "userSave", '["alice", "5"]')) == 21


async def test_a_write_method_is_a_dry_run(node: tuple[NodeChain, int]) -> None:
    nc, port = node
    head = nc.chain.head
    assert status(await call(port, "userAdd", '["zed", 5]')) == 0
    assert status(await call(port, "userTransfer", '["alice", "bob", 60]')) == 0
    assert status(await call(port, "userTransfer", '["alice", "bob", 101]')) == -51404
    assert status(await call(port, "userBalance", '["zed"]')) == -51402  # nothing written
    assert status(await call(port, "userBalance", '["bob"]')) == -51402
    answer = await call(port, "userBalance", '["alice"]')
    assert answer["result"]["output"].endswith("64")  # still 100
    assert nc.chain.head == head and nc.store.state.get(b"u_dag_transfer/zed") is None


@pytest.mark.parametrize(
    ("arg", "says"),
    [
        ("1e400", "number out of range"),
        ("-1e400", "number out of range"),
        ("9" * 5000, "number out of range"),
        ("1.5", "non-integer number (1.5)"),
        ("1e2", "non-integer number (100.0)"),
        ("100.0", "non-integer number (100.0)"),
        ("true", "not true"),
        ("null", "not null"),
        ("[1]", "an array"),
        ("{}", "an object"),
        (str(UINT256_MAX + 1), "outside uint256"),
        ("-1", "outside uint256"),
    ],
)
async def test_non_integers_and_out_of_range_numbers_are_invalid_params(
    node: tuple[NodeChain, int], arg: str, says: str
) -> None:
    _, port = node
    answer = await call(port, "userSave", f'["alice", {arg}]')
    assert says in error(answer) and "args[1]" in error(answer)
    assert answer["id"] == 7  # the request's own id: it was parsed, only the value is bad


async def test_text_limits_and_lone_surrogates(node: tuple[NodeChain, int]) -> None:
    _, port = node
    assert "lone surrogate" in error(await call(port, "userBalance", '["\\ud800"]'))
    over = "€" * 86  # 258 UTF-8 bytes
    assert "258 UTF-8 bytes" in error(await call(port, "userBalance", f'["{over}"]'))
    assert status(await call(port, "userBalance", f'["{"€" * 85}"]')) == -51402  # 255 bytes


async def test_out_of_range_numbers_elsewhere(node: tuple[NodeChain, int]) -> None:
    _, port = node
    block = '{"jsonrpc":"2.0","id":3,"method":"getBlockByNumber","params":["group0",1e400]}'
    answer = await post(port, block)
    error(answer)
    assert answer["id"] == 3
    bad_id = '{"jsonrpc":"2.0","id":1e400,"method":"getBlockNumber","params":["group0"]}'
    assert "number out of range" in error(await post(port, bad_id), -32600)
    # NaN is not JSON at all: the body does not parse
    error(await post(port, CALL % '"method":"userSave","args":["alice", NaN]'), -32700)


async def test_from_is_the_sender_a_dry_run_is_judged_as(node: tuple[NodeChain, int]) -> None:
    _, port = node
    system = CALL.replace('"to":"0x5002",', '"to":"0x1000",')
    set_limit = '"method":"setValueByKey","args":["tx_count_limit","7"]'
    assert status(await post(port, system % set_limit)) == -50000  # zero address: no governor
    governor = f',"from":"0x{GOVERNOR.address.hex()}"'
    assert status(await post(port, system % (set_limit + governor))) == 0
    answer = await post(port, system % '"method":"getValueByKey","args":["tx_count_limit"]')
    assert decode_values(bytes.fromhex(answer["result"]["output"][2:])) == ("1000",)
