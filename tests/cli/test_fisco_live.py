"""FISCO BCOS 2.x-format transactions on a live 4-process chain over HTTP JSON-RPC.

Transactions and calldata come from tests/ledger/fisco_support.py (rlp, eth-keys,
eth-hash, eth-abi: never ledgerlab's encoder), mixed with native transactions in the same
blocks; the requests are plain JSON-RPC over urllib, as a FISCO SDK sends them.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import eth_abi
import pytest

from consensus.crypto import KeyPair
from node.ledger.tx import Transaction
from scripts.launcher.layout import load_chain
from tests.cli.conftest import run_cli, stop_chain, up_chain
from tests.ledger import fisco_support as fs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SECRET = bytes([21]) * 32


class Rpc:
    def __init__(self, url: str) -> None:
        self.url = url

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                for i, (m, p) in enumerate(calls)]  # fmt: skip
        req = urllib.request.Request(
            self.url, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            out = json.loads(resp.read())
        return sorted(out, key=lambda r: r["id"])

    def __call__(self, method: str, *params: Any) -> Any:
        (reply,) = self.batch([(method, list(params))])
        assert "error" not in reply, reply
        return reply["result"]

    def receipt(self, tx_hash: str, timeout: float = 90.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self("getTransactionReceipt", 1, tx_hash)
            if rc is not None:
                return rc  # type: ignore[no-any-return]
            time.sleep(0.3)
        raise AssertionError(f"no receipt for {tx_hash} in {timeout} s")


class Live:
    def __init__(self, root: Path, cwd: Path) -> None:
        self.root, self.cwd = root, cwd
        self.rpcs = [Rpc(n.rpc_url) for n in load_chain(root).nodes]

    def cli(self, *args: str) -> None:
        res = run_cli(*args, "--dir", str(self.root), cwd=self.cwd, timeout=90)
        assert res.code == 0, (args, res.out, res.err)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    cwd = tmp_path_factory.mktemp("fisco")
    root: Path = cwd / "chain"
    try:
        up_chain(root, cwd, "--chain-id", "1", "--group", "1", timeout=120)
        yield Live(root, cwd)
    finally:
        stop_chain(root)


@pytest.fixture
def rpcs(live: Live) -> list[Rpc]:
    return live.rpcs


def fisco_raw(signature: str, *args: Any, head: int, randomid: int) -> str:
    data = fs.calldata(signature, *args)
    return "0x" + fs.fisco_tx(SECRET, data=data, block_limit=head + 500, randomid=randomid).hex()


def native_raw(method: str, *args: Any, head: int) -> str:
    tx = Transaction.build(chain_id="1", group_id="1", to="0x5002", method=method,
                           args=args, block_limit=head + 500)  # fmt: skip
    return "0x" + tx.sign(KeyPair.from_secret(bytes([22]) * 32)).encode().hex()


def code(output: str, kinds: tuple[str, ...] = ("int256",)) -> tuple[Any, ...]:
    return tuple(eth_abi.decode(list(kinds), bytes.fromhex(output[2:])))


def test_fisco_and_native_txs_share_blocks_and_answer_fisco_shapes(rpcs: list[Rpc]) -> None:
    rpc = rpcs[0]
    assert rpc("getGroupList") == [1]
    head = int(rpc("getBlockNumber", 1), 16)
    sends = [
        fisco_raw("userAdd(string,uint256)", "alice", 100, head=head, randomid=1),
        native_raw("userAdd", "bob", 5, head=head),
        fisco_raw("userAdd(string,uint256)", "carol", 0, head=head, randomid=2),
        native_raw("userAdd", "dave", 1, head=head),
    ]
    replies = rpc.batch([("sendRawTransaction", [1, raw]) for raw in sends])
    hashes = [r["result"] for r in replies]
    assert all(isinstance(h, str) and len(h) == 66 for h in hashes), replies
    assert hashes[0] == "0x" + fs.keccak(bytes.fromhex(sends[0][2:])).hex()
    receipts = [rpc.receipt(h) for h in hashes]
    assert [r["status"] for r in receipts] == ["0x0"] * 4
    assert code(receipts[0]["output"]) == (0,) and receipts[1]["output"] == "0x"
    assert receipts[0]["from"] == "0x" + fs.address_of(SECRET).hex()
    assert receipts[0]["input"] == "0x" + fs.calldata("userAdd(string,uint256)", "alice", 100).hex()

    blocks = {int(r["blockNumber"], 16) for r in receipts}

    # the next round on another node: a transfer, a business failure, a native tx
    rpc1 = rpcs[1]
    head = int(rpc1("getBlockNumber", 1), 16)
    sends = [
        fisco_raw("userTransfer(string,string,uint256)", "alice", "bob", 30, head=head, randomid=3),
        fisco_raw("userAdd(string,uint256)", "alice", 1, head=head, randomid=4),  # exists
        native_raw("userTransfer", "bob", "dave", 2, head=head),
    ]
    hashes = [r["result"] for r in rpc1.batch([("sendRawTransaction", [1, s]) for s in sends])]
    receipts = [rpc1.receipt(h) for h in hashes]
    assert [r["status"] for r in receipts] == ["0x0"] * 3
    assert code(receipts[0]["output"]) == (0,)
    assert code(receipts[1]["output"]) == (-51403,)  # UserAlreadyExist, status still 0x0

    # blocks mix both formats: at least one block holds a FISCO and a native tx
    mixed = False
    for number in sorted(blocks | {int(r["blockNumber"], 16) for r in receipts}):
        block = rpc1("getBlockByNumber", 1, hex(number), True)
        nonces = [t["nonce"] for t in block["transactions"]]
        mixed |= any(n.startswith("0x") for n in nonces) and not all(
            n.startswith("0x") for n in nonces
        )
    tx = rpc1("getTransactionByHash", 1, hashes[0])
    assert (
        tx["input"]
        == "0x" + fs.calldata("userTransfer(string,string,uint256)", "alice", "bob", 30).hex()
    )
    assert tx["nonce"] == "0x3" and tx["from"] == "0x" + fs.address_of(SECRET).hex()

    # userBalance by call with ABI data, on every node
    data = "0x" + fs.calldata("userBalance(string)", "alice").hex()
    for node in rpcs:
        res = node("call", 1, {"from": tx["from"], "to": "0x5002", "data": data, "value": 0})
        assert res["status"] == "0x0"
        if code(res["output"], ("int256", "uint256")) == (0, 70):
            continue
        time.sleep(2)  # a lagging node: give it a block
        res = node("call", 1, {"from": tx["from"], "to": "0x5002", "data": data, "value": 0})
        assert code(res["output"], ("int256", "uint256")) == (0, 70)
    assert rpc("getCode", 1, "0x5002") == "0x"
    assert rpc("getSystemConfigByKey", 1, "tx_gas_limit") == "300000000"
    if not mixed:  # batches of one client normally share a block; say so if not
        pytest.fail("no block held both formats")


def test_malformed_fisco_txs_are_refused_and_change_nothing(rpcs: list[Rpc]) -> None:
    rpc = rpcs[2]
    head = int(rpc("getBlockNumber", 1), 16)
    good = bytes.fromhex(fisco_raw("userAdd(string,uint256)", "eve", 9, head=head,
                                   randomid=99)[2:])  # fmt: skip
    s = int.from_bytes(good[-32:], "big")
    bad = {
        "high s": good[:-32] + (fs.N - s).to_bytes(32, "big"),
        "trailing byte": good + b"\x00",
        "truncated": good[:-1],
        "ABI trailing word": fs.fisco_tx(
            SECRET, data=fs.calldata("userAdd(string,uint256)", "eve", 9) + bytes(32),
            block_limit=head + 500, randomid=97),
        "wrong chain id": fs.fisco_tx(SECRET, data=fs.calldata("userAdd(string,uint256)", "eve", 9),
                                      block_limit=head + 500, chain_id=2, randomid=98),
        "wrong group id": fs.fisco_tx(SECRET, data=fs.calldata("userAdd(string,uint256)", "eve", 9),
                                      block_limit=head + 500, group_id=2, randomid=96),
    }  # fmt: skip
    pending = int(rpc("getPendingTxSize", 1), 16)
    replies = rpc.batch([("sendRawTransaction", [1, "0x" + raw.hex()]) for raw in bad.values()])
    codes = [r.get("error", {}).get("code") for r in replies]
    # Malformed x4, InvalidChainId, InvalidGroupId
    assert codes == [10003, 10003, 10003, 10003, 10006, 10007], replies
    assert int(rpc("getPendingTxSize", 1), 16) <= pending
    data = "0x" + fs.calldata("userBalance(string)", "eve").hex()
    res = rpc("call", 1, {"to": "0x5002", "data": data})
    assert code(res["output"], ("int256", "uint256")) == (-51402, 0)  # eve was never added


def test_a_restarted_node_syncs_blocks_of_fisco_txs(live: Live) -> None:
    """Blocks it missed come by sync (decode, tx root, recovery, re-execution)."""
    rpc = live.rpcs[0]
    live.cli("stop-node", "3")
    for i in range(3):
        head = int(rpc("getBlockNumber", 1), 16)
        raw = fisco_raw("userSave(string,uint256)", "sync-user", 10, head=head, randomid=200 + i)
        rc = rpc.receipt(rpc("sendRawTransaction", 1, raw))
        assert code(rc["output"]) == (0,)
    target = int(rpc("getBlockNumber", 1), 16)
    live.cli("start-node", "3")
    node3 = live.rpcs[3]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if int(node3("getBlockNumber", 1), 16) >= target:
                break
        except OSError:  # still starting
            pass
        time.sleep(0.5)
    else:
        raise AssertionError("node3 did not catch up")
    data = "0x" + fs.calldata("userBalance(string)", "sync-user").hex()
    res = node3("call", 1, {"to": "0x5002", "data": data})
    assert code(res["output"], ("int256", "uint256")) == (0, 30)
