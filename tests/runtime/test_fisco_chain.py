"""FISCO-format and native transactions through the node's chain service alike: pool
admission, sealing, execution, commit on a real KV store, verified import by a second
node (what sync does), and replay refusal after a restart rebuilt the nonce memory.

FISCO transactions are built by tests/ledger/fisco_support.py (independent libraries).
"""

from __future__ import annotations

from pathlib import Path

import eth_abi
import pytest

from consensus import messages as cm
from consensus.crypto import KeyPair
from node.ledger.block import Block, BlockSeal, Receipt
from node.ledger.chain import Chain, ProposalBody
from node.ledger.genesis import GenesisConfig
from node.ledger.tx import Transaction
from node.runtime.txpool import Reason, TxPool, TxRejected
from storage.backends import open_store
from storage.ledger import LedgerStore
from tests.ledger import fisco_support as fs

SEALERS = [KeyPair.from_secret(bytes([40 + i]) * 32) for i in range(4)]
GENESIS = GenesisConfig(chain_id="1", group_id="1", sealers=tuple(k.public_key for k in SEALERS))
NATIVE_KEY = KeyPair.from_secret(bytes([50]) * 32)
SECRET = bytes([51]) * 32


def fisco(signature: str, *args: object, randomid: int) -> bytes:
    return fs.fisco_tx(SECRET, data=fs.calldata(signature, *args), block_limit=400,
                       randomid=randomid)  # fmt: skip


def native(method: str, *args: object, nonce: str) -> bytes:
    tx = Transaction.build(
        chain_id="1",
        group_id="1",
        to="0x5002",
        method=method,
        args=args,
        block_limit=400,
        nonce=nonce,
    )  # type: ignore[arg-type]
    return tx.sign(NATIVE_KEY).encode()


def pool_for(store: LedgerStore) -> TxPool:
    return TxPool(chain_id="1", group_id="1", sees_every_commit=True,
                  in_chain=lambda h: store.tx_location(h) is not None)  # fmt: skip


def commit_next(chain: Chain, pool: TxPool) -> Block:
    head = chain.head
    number = head.number + 1
    txs = [v for v in pool.seal(1000, number) if pool.includable(v, number)]
    body = ProposalBody(timestamp=1000 + number, proposer=0, tx_hashes=tuple(v.hash for v in txs))
    executed = chain.execute(number, head.block_hash, body, txs)
    digest = cm.proposal_digest(number, head.block_hash, body.encode())
    signed = cm.seal_digest(0, number, digest, executed.block_hash,
                            executed.block.header.state_root)  # fmt: skip
    seal = BlockSeal(0, tuple((i, k.sign(signed)) for i, k in enumerate(SEALERS[:3])))
    block = chain.commit(executed, seal)
    pool.on_commit(block.number, block.decode_transactions())
    return block


@pytest.mark.parametrize("backend", ["memory", "rocksdb"])
def test_both_formats_commit_import_and_survive_a_restart(tmp_path: Path, backend: str) -> None:
    path = None if backend == "memory" else str(tmp_path / "a")
    kv = open_store(path, backend, sync=False)
    store = LedgerStore(kv)
    chain, pool = Chain(store, GENESIS), pool_for(store)
    raws = [
        fisco("userAdd(string,uint256)", "alice", 100, randomid=1),
        native("userAdd", "bob", 1, nonce="n1"),
        fisco("userTransfer(string,string,uint256)", "alice", "bob", 40, randomid=2),
        native("userTransfer", "bob", "carol", 1, nonce="n2"),
        fisco("userAdd(string,uint256)", "alice", 5, randomid=3),  # exists: code in output
    ]
    for raw in raws:
        pool.admit(raw, chain.head.number)
    block = commit_next(chain, pool)
    assert block.transactions == tuple(raws)  # one block, both formats, arrival order
    receipts = [store.receipt(h) for h in block.tx_hashes()]
    assert all(r is not None for r in receipts)

    # a second node imports the block as sync does: decode, recover, re-execute, check
    other = Chain(LedgerStore(open_store(None)), GENESIS)
    other.import_block(Block.decode(block.encode()), known=lambda h: None)
    assert other.head == chain.head
    assert other.store.receipt(block.tx_hashes()[4]) == receipts[4]
    status, out = other.call(fs.DAG, "userBalance", ["bob"])
    assert (status, out) == chain.call(fs.DAG, "userBalance", ["bob"])

    if backend == "memory":
        return
    kv.close()  # restart: the pool's nonce memory comes back from the stored blocks
    kv = open_store(path, backend, sync=False)
    store = LedgerStore(kv)
    chain, pool = Chain(store, GENESIS), pool_for(store)
    for b in range(1, chain.head.number + 1):
        stored = chain.block(b)
        assert stored is not None
        pool.on_commit(b, stored.decode_transactions())
    replay = fs.fisco_tx(SECRET, data=fs.calldata("userAdd(string,uint256)", "x", 1),
                         block_limit=401, randomid=1)  # fmt: skip
    for raw, reason in ((raws[0], Reason.ALREADY_IN_CHAIN), (replay, Reason.NONCE_CHECK_FAIL)):
        with pytest.raises(TxRejected) as info:
            pool.admit(raw, chain.head.number)
        assert info.value.reason is reason
    stored_receipt = store.receipt(block.tx_hashes()[4])
    assert stored_receipt == receipts[4]
    kv.close()


def test_receipt_output_of_a_failed_fisco_tx_is_the_code() -> None:
    store = LedgerStore(open_store(None))
    chain, pool = Chain(store, GENESIS), pool_for(store)
    for raw in (fisco("userDraw(string,uint256)", "ghost", 1, randomid=7),):
        pool.admit(raw, 0)
    block = commit_next(chain, pool)
    raw_receipt = store.receipt(block.tx_hashes()[0])
    assert raw_receipt is not None
    receipt = Receipt.decode(raw_receipt)
    assert receipt.status == 0
    assert eth_abi.decode(["int256"], receipt.output) == (-51402,)
