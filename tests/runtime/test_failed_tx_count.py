"""failedTxSum: committed transactions whose receipt status is not 0 (FISCO BCOS).

The ledger keeps the counter in the same atomic batch as the block and the tx count,
reads it back on open, and a store written before the counter existed is backfilled once
from its receipts when the chain opens it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from node.ledger.block import BlockSeal
from node.ledger.chain import Chain, ProposalBody
from node.rpc import Dispatcher
from node.runtime.service import NodeService
from storage import BACKENDS, LedgerError, LedgerStore, MemoryKV, open_store
from storage.ledger import K_FAILED_TX_COUNT, K_TX_COUNT
from tests.runtime.chains import GENESIS, NodeChain, signed


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def blocks_with_failures(nc: NodeChain) -> tuple[int, int]:
    """Three blocks with ok and failed transactions; returns (txs, failed)."""
    statuses = []
    for txs in (
        [signed("userAdd", "alice", 10), signed("userAdd", "alice", 1)],  # -51403
        [
            signed("userTransfer", "alice", "bob", 3),
            signed("userTransfer", "alice", "bob", 100),  # -51404
            signed("nope", to="0x5002"),  # -50100
            signed("userAdd", "x", 1, to="0x7777"),  # 26
        ],
        [signed("userBalance", "bob")],  # a read as a transaction: status 0
    ):
        statuses += [r.status for r in nc.run(txs)[1].result.receipts]
    return len(statuses), sum(1 for s in statuses if s)


def open_kv(backend: str, path: Path) -> object:
    return open_store(None if backend == "memory" else str(path), backend, sync=False)


async def rpc_count(chain: Chain) -> dict[str, str]:
    service = NodeService(SimpleNamespace(chain=chain, genesis=GENESIS))  # type: ignore[arg-type]
    body = {"jsonrpc": "2.0", "id": 1, "method": "getTotalTransactionCount", "params": ["group0"]}
    out = await Dispatcher({"group0": service}).handle_bytes(json.dumps(body).encode())
    assert out is not None
    result: dict[str, str] = json.loads(out)["result"]
    return result


def test_counter_counts_failed_receipts_and_survives_reopen(backend: str, tmp_path: Path) -> None:
    kv = open_kv(backend, tmp_path / "db")
    nc = NodeChain(kv)  # type: ignore[arg-type]
    total, failed = blocks_with_failures(nc)
    assert (total, failed) == (7, 4)
    assert nc.store.total_tx_count() == total
    assert nc.store.total_failed_tx_count() == failed
    with nc.store.snapshot() as snap:
        assert snap.total_failed_tx_count() == failed
    assert not nc.store.needs_failed_tx_backfill
    if backend == "memory":
        return
    kv.close()  # type: ignore[attr-defined]
    kv = open_kv(backend, tmp_path / "db")
    try:
        store = LedgerStore(kv)  # type: ignore[arg-type]
        assert not store.needs_failed_tx_backfill
        assert (store.total_tx_count(), store.total_failed_tx_count()) == (total, failed)
    finally:
        kv.close()  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_rpc_reports_failed_tx_sum() -> None:
    nc = NodeChain(MemoryKV())
    assert await rpc_count(nc.chain) == {"blockNumber": "0x0", "txSum": "0x0", "failedTxSum": "0x0"}
    blocks_with_failures(nc)
    assert await rpc_count(nc.chain) == {"blockNumber": "0x3", "txSum": "0x7", "failedTxSum": "0x4"}


def test_counter_is_in_the_block_batch() -> None:
    nc = NodeChain(MemoryKV())
    nc.run([signed("userAdd", "a", 1), signed("userAdd", "a", 1)])
    assert nc.kv.get(K_FAILED_TX_COUNT) == (1).to_bytes(8, "big")
    assert nc.kv.get(K_TX_COUNT) == (2).to_bytes(8, "big")


def test_a_commit_claiming_more_failures_than_txs_is_refused() -> None:
    nc = NodeChain(MemoryKV())
    txs = [signed("userAdd", "a", 1)]
    head = nc.chain.head
    executed = nc.chain.execute(1, head.block_hash, ProposalBody(1, 0, (txs[0].hash,)), txs)
    commit = executed.result.block_commit(executed.block.with_seal(BlockSeal(0, ())))
    for bad in (2, -1):
        with pytest.raises(LedgerError, match="failed_txs"):
            nc.store.commit_block(replace(commit, failed_txs=bad))
    assert nc.store.head() == head and nc.kv.get(K_FAILED_TX_COUNT) == bytes(8)


def test_an_older_store_is_backfilled_once(backend: str, tmp_path: Path) -> None:
    kv = open_kv(backend, tmp_path / "db")
    try:
        nc = NodeChain(kv)  # type: ignore[arg-type]
        total, failed = blocks_with_failures(nc)
        kv.delete(K_FAILED_TX_COUNT)  # type: ignore[attr-defined]  # as written before the counter
        old = LedgerStore(kv)  # type: ignore[arg-type]
        assert old.needs_failed_tx_backfill and old.total_failed_tx_count() == 0
        Chain(old, GENESIS)  # opening the chain counts the receipts of blocks 1..3
        assert not old.needs_failed_tx_backfill
        assert old.total_failed_tx_count() == failed
        again = NodeChain(kv)  # type: ignore[arg-type]  # the counter was stored: no backfill
        assert again.store.total_failed_tx_count() == failed
        again.run([signed("userDraw", "bob", 1000), signed("userDraw", "bob", 1)])
        assert again.store.total_failed_tx_count() == failed + 1
        assert again.store.total_tx_count() == total + 2
    finally:
        kv.close()  # type: ignore[attr-defined]


def test_backfill_refuses_a_stale_head_or_a_second_time() -> None:
    nc = NodeChain(MemoryKV())
    blocks_with_failures(nc)
    head = nc.chain.head
    with pytest.raises(LedgerError, match="already"):
        nc.store.backfill_failed_tx_count(head, 4)
    nc.kv.delete(K_FAILED_TX_COUNT)
    old = LedgerStore(nc.kv)
    stale = LedgerStore(nc.kv).head()
    assert stale is not None
    with pytest.raises(LedgerError, match="outside"):
        old.backfill_failed_tx_count(head, 8)  # more failed than committed (7)
    with pytest.raises(LedgerError, match="head moved"):
        old.backfill_failed_tx_count(replace(stale, number=2), 4)
    assert old.needs_failed_tx_backfill and nc.kv.get(K_FAILED_TX_COUNT) is None
