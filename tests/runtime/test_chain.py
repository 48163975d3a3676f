"""The node's chain service: execute, seal, commit, and verified import by a second node."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from consensus import messages as cm
from consensus.crypto import KeyPair
from node.ledger.block import Block, BlockSeal
from node.ledger.chain import Chain, ChainError, ProposalBody
from node.ledger.genesis import GenesisConfig
from node.ledger.tx import Transaction
from storage.backends import open_store
from storage.ledger import LedgerStore

RNG = random.Random(3)
SEALERS = [KeyPair.generate(RNG) for _ in range(4)]
CLIENT = KeyPair.generate(RNG)
GENESIS = GenesisConfig(sealers=tuple(k.public_key for k in SEALERS))


def new_chain() -> Chain:
    return Chain(LedgerStore(open_store(None)), GENESIS)


def transfers(n: int, start: int = 0) -> list:
    txs = [
        Transaction.build(
            chain_id="chain0",
            group_id="group0",
            to="0x5002",
            method="userSave",
            args=[f"user{i}", 10 + i],
            block_limit=500,
            nonce=f"n{start + i}",
        )
        for i in range(n)
    ]
    return [t.sign(CLIENT).verified() for t in txs]


def sealed(chain: Chain, txs: list, *, signers: list[KeyPair] = SEALERS, view: int = 0):
    head = chain.head
    body = ProposalBody(
        timestamp=1000 + head.number, proposer=0, tx_hashes=tuple(v.hash for v in txs)
    )
    executed = chain.execute(head.number + 1, head.block_hash, body, txs)
    digest = cm.proposal_digest(head.number + 1, head.block_hash, body.encode())
    signed = cm.seal_digest(
        view, head.number + 1, digest, executed.block_hash, executed.block.header.state_root
    )
    sigs = tuple((SEALERS.index(k), k.sign(signed)) for k in signers)
    return executed, BlockSeal(view, tuple(sorted(sigs)))


def test_execute_commit_and_import_reach_the_same_head() -> None:
    a, b = new_chain(), new_chain()
    assert a.genesis_hash == b.genesis_hash == a.head.block_hash
    for i in range(3):
        executed, seal = sealed(a, transfers(5, start=10 * i), signers=SEALERS[:3])
        block = a.commit(executed, seal)
        b.import_block(Block.decode(block.encode()), known=lambda h: None)
    assert a.head == b.head and a.head.number == 3
    assert a.call(b"\x00" * 18 + b"\x50\x02", "userBalance", ["user4"]) == b.call(
        b"\x00" * 18 + b"\x50\x02", "userBalance", ["user4"]
    )


def test_import_refuses_bad_seals_and_changes_nothing() -> None:
    a, b = new_chain(), new_chain()
    executed, seal = sealed(a, transfers(3), signers=SEALERS[:2])  # 2 < quorum 3
    block = executed.block.with_seal(seal)
    with pytest.raises(ChainError, match="seal"):
        b.import_block(block, known=lambda h: None)
    _, good = sealed(a, transfers(3))
    forged = BlockSeal(good.view + 1, good.signatures)  # signatures were made in view 0
    with pytest.raises(ChainError, match="seal"):
        b.import_block(executed.block.with_seal(forged), known=lambda h: None)
    assert b.head.number == 0


def test_import_refuses_a_block_whose_header_lies() -> None:
    a, b = new_chain(), new_chain()
    executed, _ = sealed(a, transfers(2))
    header = replace(executed.block.header, state_root=b"\x11" * 32)
    lying = Block(header, executed.block.transactions)
    # a quorum signs the lying header: the seal is valid, re-execution still catches it
    h = lying.header
    digest = cm.proposal_digest(h.number, h.parent_hash, ProposalBody.of_block(lying).encode())
    signed = cm.seal_digest(0, h.number, digest, lying.hash, h.state_root)
    seal = BlockSeal(0, tuple((i, k.sign(signed)) for i, k in enumerate(SEALERS)))
    with pytest.raises(ChainError, match="different block"):
        b.import_block(lying.with_seal(seal), known=lambda h: None)
    assert b.head.number == 0


def test_execute_refuses_wrong_parent_and_mismatched_txs() -> None:
    chain = new_chain()
    txs = transfers(2)
    body = ProposalBody(1, 0, tuple(v.hash for v in txs))
    with pytest.raises(ChainError):
        chain.execute(2, chain.head.block_hash, body, txs)
    with pytest.raises(ChainError):
        chain.execute(1, chain.head.block_hash, body, txs[:1])


def test_a_data_dir_of_another_genesis_is_refused() -> None:
    store = LedgerStore(open_store(None))
    Chain(store, GENESIS)
    with pytest.raises(ChainError, match="another chain"):
        Chain(store, replace(GENESIS, chain_id="other"))


def test_proposal_body_round_trip_and_rejects_duplicates() -> None:
    body = ProposalBody(5, 1, (b"\x01" * 32, b"\x02" * 32))
    assert ProposalBody.decode(body.encode()) == body
    with pytest.raises(Exception, match="twice"):
        ProposalBody.decode(ProposalBody(5, 1, (b"\x01" * 32,) * 2).encode())
