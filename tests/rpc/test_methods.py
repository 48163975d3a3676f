"""Every FISCO method: param validation and result shape, answered from a real ledger."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from consensus.crypto import KeyPair, recover
from node.ledger.tx import SignedTransaction, decode_values
from node.rpc import Dispatcher, ErrorCode
from node.rpc.calldata import decode_call
from node.rpc.methods import METHODS
from tests.rpc.conftest import rpc
from tests.rpc.fakes import GROUP, INSUFFICIENT, NO_USER, Ledger

pytestmark = pytest.mark.asyncio

HEX32 = 66  # len("0x" + 64 hex digits)


class Chain:
    """Two committed blocks and one pending tx, with handles on everything."""

    def __init__(self, ledger: Ledger, key: KeyPair) -> None:
        self.ledger = ledger
        self.add_alice = ledger.tx(key, "userAdd", ["alice", 100])
        self.add_bob = ledger.tx(key, "userAdd", ["bob", 5])
        for stx in (self.add_alice, self.add_bob):
            ledger.pool.admit(stx.encoded, ledger.head)
        ledger.commit()
        self.transfer = ledger.tx(key, "userTransfer", ["alice", "bob", 30])
        self.overdraw = ledger.tx(key, "userTransfer", ["bob", "alice", 1000])
        for stx in (self.transfer, self.overdraw):
            ledger.pool.admit(stx.encoded, ledger.head)
        ledger.commit()
        self.pending = ledger.tx(key, "userAdd", ["carol", 1])
        ledger.pool.admit(self.pending.encoded, ledger.head)


@pytest_asyncio.fixture
async def chain(ledger: Ledger, alice: KeyPair) -> Chain:
    return Chain(ledger, alice)


async def ok(dispatcher: Dispatcher, method: str, *params: Any) -> Any:
    answer = await rpc(dispatcher, method, *params)
    assert "error" not in answer, answer
    return answer["result"]


async def fails(dispatcher: Dispatcher, code: int, method: str, *params: Any) -> str:
    answer = await rpc(dispatcher, method, *params)
    assert "result" not in answer, answer
    assert answer["error"]["code"] == code, answer
    return str(answer["error"]["message"])


def h(data: bytes) -> str:
    return "0x" + data.hex()


# -- parameter validation shared by all group methods -------------------------------------

GROUP_METHODS = sorted(name for name, m in METHODS.items() if m.needs_group)


@pytest.mark.parametrize("method", GROUP_METHODS)
async def test_every_group_method_rejects_missing_and_unknown_group(
    dispatcher: Dispatcher, method: str
) -> None:
    await fails(dispatcher, ErrorCode.InvalidParams, method)
    await fails(dispatcher, ErrorCode.GroupNotFound, method, "nope", 1, 2)


@pytest.mark.parametrize("method", GROUP_METHODS)
async def test_every_group_method_rejects_too_many_params(
    dispatcher: Dispatcher, method: str
) -> None:
    message = await fails(dispatcher, ErrorCode.InvalidParams, method, GROUP, 1, 2, 3, 4)
    assert "expected" in message


async def test_method_table_covers_the_fisco_names() -> None:
    assert set(METHODS) == {
        "getClientVersion", "getBlockNumber", "getBlockByNumber", "getBlockByHash",
        "getBlockHashByNumber", "getTransactionByHash", "getTransactionReceipt",
        "sendRawTransaction", "call", "getPbftView", "getSealerList", "getObserverList",
        "getConsensusStatus", "getSyncStatus", "getPeers", "getPendingTxSize",
        "getTotalTransactionCount", "getSystemConfigByKey", "getCode",
    }  # fmt: skip


# -- node and chain status -----------------------------------------------------------------


async def test_client_version(dispatcher: Dispatcher) -> None:
    result = await ok(dispatcher, "getClientVersion")
    assert set(result) == {
        "Build Type", "Chain Id", "Client", "FISCO-BCOS Version", "Supported Version", "Version"
    }  # fmt: skip
    major, minor, patch = result["Supported Version"].split(".")  # the SDKs parse a.b.c
    assert major == "2" and minor.isdigit() and patch.isdigit()
    assert result["Chain Id"] == "chain0"
    assert await ok(dispatcher, "getClientVersion", GROUP) == result
    await fails(dispatcher, ErrorCode.GroupNotFound, "getClientVersion", "nope")
    await fails(dispatcher, ErrorCode.InvalidParams, "getClientVersion", GROUP, 1)


async def test_block_number_follows_commits(dispatcher: Dispatcher, ledger: Ledger) -> None:
    assert await ok(dispatcher, "getBlockNumber", GROUP) == "0x0"
    ledger.commit()
    ledger.commit()
    assert await ok(dispatcher, "getBlockNumber", GROUP) == "0x2"


async def test_pbft_view_sealers_observers(dispatcher: Dispatcher, ledger: Ledger) -> None:
    assert await ok(dispatcher, "getPbftView", GROUP) == "0x0"
    ledger.view = 26
    assert await ok(dispatcher, "getPbftView", GROUP) == "0x1a"
    sealers = await ok(dispatcher, "getSealerList", GROUP)
    assert sealers == [k.hex() for k in ledger.sealers]
    assert all(len(s) == 128 and not s.startswith("0x") for s in sealers)
    assert await ok(dispatcher, "getObserverList", GROUP) == [k.hex() for k in ledger.observers]


async def test_consensus_status_shape(dispatcher: Dispatcher, chain: Chain) -> None:
    result = await ok(dispatcher, "getConsensusStatus", GROUP)
    assert set(result) == {
        "accountType", "blockNumber", "connectedNodes", "currentView", "highestblockHash",
        "leaderFailed", "leaderIndex", "maxFaultyNum", "minRequiredQuorum", "nodeId",
        "nodeIndex", "nodeNum", "sealerList", "timeout", "toView", "viewChanges",
        "stalled", "stallReason", "secondsSinceLastCommit", "internalErrors",
    }  # fmt: skip
    assert result["stalled"] is False and result["stallReason"] is None
    assert result["secondsSinceLastCommit"] == 0.5 and result["internalErrors"] == 0
    assert result["accountType"] == "sealer"
    assert result["blockNumber"] == 2 and result["nodeNum"] == 4
    assert result["maxFaultyNum"] == 1 and result["minRequiredQuorum"] == 3
    assert result["highestblockHash"] == h(chain.ledger.blocks[2].hash)
    assert result["leaderFailed"] is False
    assert result["timeout"] == 3000
    for key in ("currentView", "toView", "leaderIndex", "nodeIndex", "viewChanges"):
        assert type(result[key]) is int


async def test_sync_status_shape(dispatcher: Dispatcher, chain: Chain) -> None:
    result = await ok(dispatcher, "getSyncStatus", GROUP)
    assert set(result) == {
        "blockNumber", "genesisHash", "isSyncing", "knownHighestNumber", "knownLatestHash",
        "latestHash", "nodeId", "peers", "txPoolSize",
    }  # fmt: skip
    assert result["blockNumber"] == 2 and result["txPoolSize"] == 1
    assert result["genesisHash"] == h(chain.ledger.blocks[0].hash)
    assert result["isSyncing"] is False
    (peer,) = result["peers"]
    assert set(peer) == {"blockNumber", "genesisHash", "latestHash", "nodeId"}


async def test_peers_shape(dispatcher: Dispatcher, ledger: Ledger) -> None:
    peers = await ok(dispatcher, "getPeers", GROUP)
    assert len(peers) == 3
    assert peers[0] == {
        "Agency": "agencyA",
        "IPAndPort": "127.0.0.1:30301",
        "Node": "node1",
        "NodeID": ledger.sealers[1].hex(),
        "Topic": [],
    }


async def test_pending_and_total_counts(dispatcher: Dispatcher, chain: Chain) -> None:
    assert await ok(dispatcher, "getPendingTxSize", GROUP) == "0x1"
    assert await ok(dispatcher, "getTotalTransactionCount", GROUP) == {
        "blockNumber": "0x2",
        "failedTxSum": "0x1",
        "txSum": "0x4",
    }


async def test_system_config(dispatcher: Dispatcher, ledger: Ledger) -> None:
    assert await ok(dispatcher, "getSystemConfigByKey", GROUP, "tx_count_limit") == "1000"
    ledger.config["tx_count_limit"] = 2000
    assert await ok(dispatcher, "getSystemConfigByKey", GROUP, "tx_count_limit") == "2000"
    await fails(dispatcher, ErrorCode.InvalidSystemConfig, "getSystemConfigByKey", GROUP, "nope")
    for bad in (1, None, "", "k" * 200, ["tx_count_limit"]):
        await fails(dispatcher, ErrorCode.InvalidParams, "getSystemConfigByKey", GROUP, bad)


# -- blocks --------------------------------------------------------------------------------

BLOCK_KEYS = {
    "extraData", "hash", "number", "parentHash", "receiptsRoot", "sealer", "sealerList",
    "signatureList", "stateRoot", "timestamp", "transactions", "transactionsRoot",
}  # fmt: skip


async def test_block_by_number_shape_and_signatures(dispatcher: Dispatcher, chain: Chain) -> None:
    block = chain.ledger.blocks[2]
    result = await ok(dispatcher, "getBlockByNumber", GROUP, 2)
    assert set(result) == BLOCK_KEYS
    assert result["number"] == "0x2"
    assert result["hash"] == h(block.hash)
    assert result["parentHash"] == h(chain.ledger.blocks[1].hash)
    assert result["transactionsRoot"] == h(block.header.tx_root)
    assert result["receiptsRoot"] == h(block.header.receipt_root)
    assert result["stateRoot"] == h(block.header.state_root)
    assert result["timestamp"] == hex(block.header.timestamp)
    assert result["sealer"] == "0x2"
    assert result["transactions"] == [h(chain.transfer.hash), h(chain.overdraw.hash)]
    # The signature list verifies against the sealer list: it is real data, not a stub.
    assert len(result["signatureList"]) == 3
    for entry in result["signatureList"]:
        index = int(entry["index"], 16)
        signature = bytes.fromhex(entry["signature"][2:])
        public_key = recover(block.hash, signature)
        assert public_key.hex() == result["sealerList"][index]


async def test_block_number_param_forms(dispatcher: Dispatcher, chain: Chain) -> None:
    expected = await ok(dispatcher, "getBlockByNumber", GROUP, 1)
    for form in (1, "0x1", "1", "0x01", "01"):
        assert await ok(dispatcher, "getBlockByNumber", GROUP, form) == expected
    latest = await ok(dispatcher, "getBlockByNumber", GROUP, "latest")
    assert latest["number"] == "0x2"
    assert (await ok(dispatcher, "getBlockByNumber", GROUP, "earliest"))["number"] == "0x0"
    # FISCO BCOS reads only a lower-case 0x prefix (and its SDKs write only that); no
    # whitespace either (docs/rpc.md, Param conventions).
    bad_forms = ("0X1", " 1 ", "1 ", " 0x1", "0x1\n", "+1", "-0x1", "0x 1")
    for bad in (-1, "0x", "abc", 1.5, True, None, "0x1g", 2**63, "1_0", [], "\u0661", *bad_forms):
        await fails(dispatcher, ErrorCode.InvalidParams, "getBlockByNumber", GROUP, bad)
    await fails(dispatcher, ErrorCode.BlockNumberNotFound, "getBlockByNumber", GROUP, 3)
    await fails(dispatcher, ErrorCode.BlockNumberNotFound, "getBlockByNumber", GROUP, 2**63 - 1)
    for bad_flag in (1, "true", None):
        await fails(dispatcher, ErrorCode.InvalidParams, "getBlockByNumber", GROUP, 1, bad_flag)


async def test_block_with_full_transactions(dispatcher: Dispatcher, chain: Chain) -> None:
    result = await ok(dispatcher, "getBlockByNumber", GROUP, 1, True)
    txs = result["transactions"]
    assert [t["hash"] for t in txs] == [h(chain.add_alice.hash), h(chain.add_bob.hash)]
    assert txs[1]["transactionIndex"] == "0x1"
    assert txs[0]["blockHash"] == result["hash"]
    assert txs[0]["method"] == "userAdd" and txs[0]["args"] == ["alice", 100]


async def test_block_by_hash(dispatcher: Dispatcher, chain: Chain) -> None:
    block = chain.ledger.blocks[1]
    by_number = await ok(dispatcher, "getBlockByNumber", GROUP, 1, True)
    assert await ok(dispatcher, "getBlockByHash", GROUP, h(block.hash), True) == by_number
    missing = "0x" + "ab" * 32
    await fails(dispatcher, ErrorCode.BlockHashNotFound, "getBlockByHash", GROUP, missing)
    for bad in (block.hash.hex(), "0x" + "ab" * 31, "0x" + "a" * 63, "0x" + "zz" * 32, 5, None):
        await fails(dispatcher, ErrorCode.InvalidParams, "getBlockByHash", GROUP, bad)


async def test_block_hash_by_number(dispatcher: Dispatcher, chain: Chain) -> None:
    for n in range(3):
        assert await ok(dispatcher, "getBlockHashByNumber", GROUP, n) == h(
            chain.ledger.blocks[n].hash
        )
    await fails(dispatcher, ErrorCode.BlockNumberNotFound, "getBlockHashByNumber", GROUP, 3)
    await fails(dispatcher, ErrorCode.InvalidParams, "getBlockHashByNumber", GROUP, "x")


# -- transactions and receipts ---------------------------------------------------------------

TX_KEYS = {
    "args", "blockHash", "blockLimit", "blockNumber", "chainId", "from", "groupId", "hash",
    "input", "method", "nonce", "signature", "to", "transactionIndex",
}  # fmt: skip


async def test_transaction_by_hash(dispatcher: Dispatcher, chain: Chain, alice: KeyPair) -> None:
    result = await ok(dispatcher, "getTransactionByHash", GROUP, h(chain.transfer.hash))
    assert set(result) == TX_KEYS
    stx = chain.transfer
    assert result["from"] == h(alice.address)
    assert result["to"] == "0x" + "00" * 18 + "5002"
    assert result["blockNumber"] == "0x2" and result["transactionIndex"] == "0x0"
    assert result["blockHash"] == h(chain.ledger.blocks[2].hash)
    assert result["nonce"] == stx.tx.nonce
    assert result["blockLimit"] == hex(stx.tx.block_limit)
    assert result["signature"] == h(stx.signature)
    assert result["chainId"] == "chain0" and result["groupId"] == GROUP
    assert decode_call(bytes.fromhex(result["input"][2:])) == ("userTransfer", ("alice", "bob", 30))
    # The rendered fields rebuild the exact signed transaction.
    rebuilt = SignedTransaction.decode(stx.encoded)
    assert rebuilt.hash.hex() == result["hash"][2:]


async def test_pending_and_unknown_transactions(dispatcher: Dispatcher, chain: Chain) -> None:
    pending = await ok(dispatcher, "getTransactionByHash", GROUP, h(chain.pending.hash))
    assert pending["blockNumber"] is None and pending["blockHash"] is None
    assert pending["transactionIndex"] is None
    assert await ok(dispatcher, "getTransactionByHash", GROUP, "0x" + "00" * 32) is None
    await fails(dispatcher, ErrorCode.InvalidParams, "getTransactionByHash", GROUP, "0x12")


RECEIPT_KEYS = {
    "blockHash", "blockNumber", "from", "gasUsed", "input", "logs", "output", "status", "to",
    "transactionHash", "transactionIndex",
}  # fmt: skip


async def test_receipts(dispatcher: Dispatcher, chain: Chain, alice: KeyPair) -> None:
    good = await ok(dispatcher, "getTransactionReceipt", GROUP, h(chain.transfer.hash))
    assert set(good) == RECEIPT_KEYS
    assert good["status"] == "0x0"
    assert good["transactionHash"] == h(chain.transfer.hash)
    assert good["blockNumber"] == "0x2" and good["transactionIndex"] == "0x0"
    assert good["blockHash"] == h(chain.ledger.blocks[2].hash)
    assert good["from"] == h(alice.address)
    assert good["gasUsed"] == "0x0" and good["logs"] == []
    assert decode_values(bytes.fromhex(good["output"][2:])) == (0,)
    assert decode_call(bytes.fromhex(good["input"][2:]))[0] == "userTransfer"

    bad = await ok(dispatcher, "getTransactionReceipt", GROUP, h(chain.overdraw.hash))
    assert int(bad["status"], 16) == INSUFFICIENT
    assert bad["transactionIndex"] == "0x1"

    assert await ok(dispatcher, "getTransactionReceipt", GROUP, h(chain.pending.hash)) is None
    for bad_hash in ("0x", 1, "0x" + "gg" * 32):
        await fails(dispatcher, ErrorCode.InvalidParams, "getTransactionReceipt", GROUP, bad_hash)


async def test_send_raw_transaction_validation(
    dispatcher: Dispatcher, ledger: Ledger, alice: KeyPair
) -> None:
    stx = ledger.tx(alice, "userAdd", ["dave", 1])
    raw = stx.encoded.hex()
    for bad in (raw, "0x" + raw[:-1], "0x" + raw[:10] + " " + raw[11:], 12, None, ["0x00"]):
        await fails(dispatcher, ErrorCode.InvalidParams, "sendRawTransaction", GROUP, bad)
    assert len(ledger.pool) == 0
    assert await ok(dispatcher, "sendRawTransaction", GROUP, "0x" + raw) == h(stx.hash)
    # Upper-case hex digits are the same bytes: the pool now knows it. The prefix is
    # lower-case 0x only, as FISCO BCOS reads it.
    await fails(dispatcher, ErrorCode.AlreadyKnown, "sendRawTransaction", GROUP, "0x" + raw.upper())
    await fails(dispatcher, ErrorCode.InvalidParams, "sendRawTransaction", GROUP, "0X" + raw)


# -- call ----------------------------------------------------------------------------------


async def test_call_forms_and_result(dispatcher: Dispatcher, chain: Chain) -> None:
    from node.rpc.calldata import encode_call

    data = h(encode_call("userBalance", ["bob"]))
    result = await ok(dispatcher, "call", GROUP, {"to": "0x5002", "data": data})
    assert set(result) == {"currentBlockNumber", "output", "status"}
    assert result["currentBlockNumber"] == "0x2" and result["status"] == "0x0"
    assert decode_values(bytes.fromhex(result["output"][2:])) == (35,)
    same = await ok(
        dispatcher,
        "call",
        GROUP,
        {"to": "0x" + "00" * 18 + "5002", "method": "userBalance", "args": ["bob"], "from": None},
    )
    assert same == result
    other = await ok(dispatcher, "call", GROUP, {"to": "0x1000", "data": data})
    assert other["status"] == hex(26)
    nobody = await ok(
        dispatcher, "call", GROUP, {"to": "0x5002", "method": "userBalance", "args": ["nobody"]}
    )
    assert int(nobody["status"], 16) == NO_USER and nobody["output"] == "0x"


@pytest.mark.parametrize(
    "request_obj",
    [
        None,
        "0x5002",
        [],
        {"data": "0x90"},
        {"to": "0x5002"},
        {"to": "5002", "data": "0x90"},
        {"to": "0x" + "11" * 21, "data": "0x90"},
        {"to": "0x", "data": "0x90"},
        {"to": "0x5002", "data": "0x90"},  # empty list: no method name
        {"to": "0x5002", "data": "0xc1"},  # not msgpack
        {"to": "0x5002", "data": "nothex"},
        {"to": "0x5002", "method": "", "args": []},
        {"to": "0x5002", "method": "userBalance", "args": "bob"},
        {"to": "0x5002", "method": "userBalance", "args": [1.5]},
        {"to": "0x5002", "method": "userBalance", "args": [True]},
        {"to": "0x5002", "method": "userBalance", "args": [-1]},
        {"to": "0x5002", "method": "userBalance", "args": [2**256]},
        {"to": "0x5002", "method": "userBalance", "args": ["x"] * 17},
        {"to": "0x5002", "method": "userBalance", "from": "0xzz", "args": []},
    ],
)
async def test_call_validation(dispatcher: Dispatcher, request_obj: Any) -> None:
    await fails(dispatcher, ErrorCode.InvalidParams, "call", GROUP, request_obj)
