"""The JSON-RPC details FISCO BCOS SDKs rely on (calldata built with eth-abi)."""

from __future__ import annotations

import eth_abi
import pytest

from node.rpc import Dispatcher, ErrorCode
from tests.ledger import fisco_support as fs
from tests.rpc.conftest import rpc
from tests.rpc.fakes import GROUP, NO_USER, LedgerBackend

pytestmark = pytest.mark.asyncio


async def test_call_with_abi_data_answers_fisco_shapes(
    dispatcher: Dispatcher, backend: LedgerBackend
) -> None:
    backend.ledger.balances["alice"] = 77
    for user, expected in (("alice", (0, 77)), ("nobody", (NO_USER, 0))):
        data = fs.calldata("userBalance(string)", user)
        got = await rpc(
            dispatcher,
            "call",
            GROUP,
            {"from": "0x" + "11" * 20, "to": "0x5002", "data": "0x" + data.hex(), "value": 0},
        )
        res = got["result"]
        assert set(res) == {"currentBlockNumber", "output", "status"}
        assert res["status"] == "0x0"
        assert eth_abi.decode(["int256", "uint256"], bytes.fromhex(res["output"][2:])) == expected


async def test_call_with_malformed_abi_data_is_invalid_params(dispatcher: Dispatcher) -> None:
    data = fs.calldata("userBalance(string)", "alice") + bytes(32)  # a trailing word
    got = await rpc(dispatcher, "call", GROUP, {"to": "0x5002", "data": "0x" + data.hex()})
    assert got["error"]["code"] == ErrorCode.InvalidParams
    assert "ABI" in got["error"]["message"]


async def test_group_list_code_and_gas_limit(dispatcher: Dispatcher) -> None:
    assert (await rpc(dispatcher, "getGroupList"))["result"] == [
        GROUP if not GROUP.isdigit() else int(GROUP)
    ]
    assert (await rpc(dispatcher, "getCode", GROUP, "0x5002"))["result"] == "0x"
    got = await rpc(dispatcher, "getSystemConfigByKey", GROUP, "tx_gas_limit")
    assert got["result"] == "300000000"
    got = await rpc(dispatcher, "getCode", GROUP, "not an address")
    assert got["error"]["code"] == ErrorCode.InvalidParams


async def test_malformed_fisco_tx_is_malformed_10003(dispatcher: Dispatcher) -> None:
    raw = fs.fisco_tx(
        b"\x01" * 32, data=fs.calldata("userAdd(string,uint256)", "a", 1), block_limit=5
    )
    high_s = raw[:-33] + (fs.N - int.from_bytes(raw[-32:], "big")).to_bytes(32, "big")
    got = await rpc(dispatcher, "sendRawTransaction", GROUP, "0x" + high_s.hex())
    assert got["error"]["code"] == 10003 == ErrorCode.Malformed
    assert "fisco tx" in got["error"]["message"]


async def test_oversized_fisco_tx_message_starts_fisco_tx(dispatcher: Dispatcher) -> None:
    raw = fs.fisco_tx(b"\x01" * 32, data=bytes(8200), block_limit=5)
    got = await rpc(dispatcher, "sendRawTransaction", GROUP, "0x" + raw.hex())
    assert got["error"]["code"] == 10003
    assert got["error"]["message"].startswith(f"Malformed: fisco tx: {len(raw)} bytes exceeds 8192")


async def test_call_with_unknown_abi_data_names_the_selector_or_address(
    dispatcher: Dispatcher,
) -> None:
    """Data that is neither ABI calldata of a known method nor native call data: the
    message says which, in a client's terms (no Python exception names)."""
    unknown = fs.calldata("userBurn(string)", "alice")
    cases = [
        ("0x5002", unknown, f"unknown method selector 0x{unknown[:4].hex()} for the precompile"),
        ("0x" + "ab" * 20, unknown, "no precompile at 0x" + "ab" * 20),
        ("0x5002", b"\x01\x02", "not valid msgpack: bytes after the value"),
    ]
    for to, data, expected in cases:
        got = await rpc(dispatcher, "call", GROUP, {"to": to, "data": "0x" + data.hex()})
        message = got["error"]["message"]
        assert got["error"]["code"] == ErrorCode.InvalidParams and expected in message
        assert not any(name in message for name in ("ValueError", "Error:", "ExtraData"))
