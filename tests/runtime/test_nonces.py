"""Nonces are global per group (FISCO BCOS): one nonce, one committed transaction.

The pool refuses a second transaction whose nonce is pending or committed in the last
1000 blocks (NonceCheckFail), whoever signs it; a block holding two transactions with the
same nonce is invalid as a whole, like one holding a transaction twice.
"""

from __future__ import annotations

import random

import pytest

from consensus import messages as cm
from consensus.crypto import KeyPair
from node.ledger.block import Block, BlockSeal
from node.ledger.chain import ChainError, ProposalBody
from node.ledger.executor import ExecutionError, Executor
from node.ledger.tx import Transaction
from node.runtime.txpool import Reason, TxRejected
from storage import MemoryKV
from tests.runtime.chains import CLIENT, GENESIS, SEALERS, NodeChain, signed

OTHER = KeyPair.generate(random.Random(303))


def test_a_block_with_two_txs_of_one_nonce_is_invalid() -> None:
    executor = Executor(GENESIS)
    nc = NodeChain(MemoryKV())
    a = signed("userAdd", "a", 1, nonce="same")
    b = signed("userAdd", "b", 1, nonce="same", key=OTHER)  # other sender, other body
    for txs in ([a, b], [signed("userAdd", "c", 1, nonce="n0"), a, b]):
        with pytest.raises(ExecutionError, match="same nonce"):
            executor.execute_block(nc.store.state, number=1, parent_state_root=bytes(32), txs=txs)
    with pytest.raises(ChainError, match="same nonce"):
        nc.run([a, b])
    assert nc.chain.head.number == 0
    nc.run([a])  # either one alone is fine
    assert nc.chain.head.number == 1


def test_a_sealed_block_with_a_repeated_nonce_is_not_imported() -> None:
    """A Byzantine leader's block, even with a quorum seal, is refused by re-execution."""
    byzantine, honest = NodeChain(MemoryKV()), NodeChain(MemoryKV())
    byzantine.chain.executor._check_block = lambda *a: None  # type: ignore[method-assign]
    txs = [signed("userAdd", "a", 1, nonce="same"), signed("userAdd", "b", 2, nonce="same")]
    head = byzantine.chain.head
    body = ProposalBody(1, 0, tuple(v.hash for v in txs))
    executed = byzantine.chain.execute(1, head.block_hash, body, txs)
    digest = cm.proposal_digest(1, head.block_hash, body.encode())
    sig = cm.seal_digest(0, 1, digest, executed.block_hash, executed.block.header.state_root)
    block = executed.block.with_seal(
        BlockSeal(0, tuple((i, k.sign(sig)) for i, k in enumerate(SEALERS)))
    )
    assert honest.chain.verify_seal(block)
    with pytest.raises(ChainError, match="same nonce"):
        honest.chain.import_block(Block.decode(block.encode()), known=lambda h: None)
    assert honest.chain.head.number == 0


def test_the_pool_refuses_a_pending_nonce_from_any_sender() -> None:
    nc = NodeChain(MemoryKV())
    first = signed("userAdd", "a", 1, nonce="n")
    nc.pool.admit(first.tx.encoded, 0)
    for second in (
        signed("userAdd", "b", 1, nonce="n"),
        signed("userAdd", "a", 1, nonce="n", key=OTHER),
    ):
        with pytest.raises(TxRejected) as info:
            nc.pool.admit(second.tx.encoded, 0)
        assert info.value.reason is Reason.NONCE_CHECK_FAIL


def test_two_senders_signing_one_body_make_two_txs_and_the_second_is_refused() -> None:
    body = Transaction.build(
        chain_id=GENESIS.chain_id,
        group_id=GENESIS.group_id,
        to="0x5002",
        method="userAdd",
        args=["a", 1],
        block_limit=900,
        nonce="shared",
    )
    one, two = body.sign(CLIENT), body.sign(OTHER)
    assert one.hash != two.hash and one.tx.signing_hash == two.tx.signing_hash
    nc = NodeChain(MemoryKV())
    nc.pool.admit(one.encoded, 0)
    with pytest.raises(TxRejected) as info:
        nc.pool.admit(two.encoded, 0)
    assert info.value.reason is Reason.NONCE_CHECK_FAIL


def test_a_committed_nonce_evicts_and_then_refuses_the_loser() -> None:
    """Another node's block wins the nonce: our pending tx with it is dropped at commit
    and refused from then on (while the nonce is in the last 1000 blocks)."""
    nc = NodeChain(MemoryKV())
    winner = signed("userAdd", "winner", 1, nonce="n")
    loser = signed("userAdd", "loser", 1, nonce="n", key=OTHER)
    nc.pool.admit(loser.tx.encoded, 0)
    nc.run([winner])  # the block came from elsewhere (sync or another leader's proposal)
    assert loser.hash not in nc.pool and len(nc.pool) == 0
    for number in range(2, 12):
        with pytest.raises(TxRejected) as info:
            nc.pool.admit(loser.tx.encoded, nc.chain.head.number)
        assert info.value.reason is Reason.NONCE_CHECK_FAIL
        nc.run([signed("userAdd", f"filler{number}", 1)])
