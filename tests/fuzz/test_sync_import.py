"""Block sync responses (node/runtime/sync.py, Chain.import_block): a mutated copy of a
valid sealed block is refused with DecodeError (the frame) or ChainError (the block),
and a refusal writes nothing; whatever is imported is the block the sealers signed.

A second node has blocks 1..2 of a 4-sealer chain and is offered block 3: flipped and cut
bytes, edited header and seal fields (boundary numbers, other types, huge lengths), and
then well-formed blocks with one edit and the sealers' original signatures: another
timestamp, sealer index, state root, parent, sealer list, tx list, seal view, or a seal
by fewer sealers. Only the block the sealers signed (the same header, so the same hash)
with a quorum of their signatures may extend its chain.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from consensus import messages as cm
from consensus.codec import DecodeError
from consensus.crypto import KeyPair
from node.ledger.block import Block, BlockHeader, BlockSeal
from node.ledger.chain import Chain, ChainError, ProposalBody
from node.ledger.genesis import GenesisConfig
from node.ledger.tx import Transaction
from storage.backends import open_store
from storage.ledger import LedgerStore
from tests.fuzz.support import fuzz, mutated_bytes, mutated_tree, time_limit

RNG = random.Random(31)
SEALERS = [KeyPair.generate(RNG) for _ in range(4)]
CLIENT = KeyPair.generate(RNG)
GENESIS = GenesisConfig(sealers=tuple(k.public_key for k in SEALERS))


def new_chain() -> Chain:
    return Chain(LedgerStore(open_store(None)), GENESIS)


def txs(start: int, n: int = 3) -> list:
    return [
        Transaction.build(chain_id="chain0", group_id="group0", to="0x5002", method="userSave",
                          args=[f"u{i % 4}", 1 + i], block_limit=900, nonce=f"s{i}")
        .sign(CLIENT).verified()
        for i in range(start, start + n)
    ]  # fmt: skip


def seal(block: Block, signers: list[int], view: int = 0) -> BlockSeal:
    h = block.header
    digest = cm.proposal_digest(h.number, h.parent_hash, ProposalBody.of_block(block).encode())
    signed = cm.seal_digest(view, h.number, digest, block.hash, h.state_root)
    return BlockSeal(view, tuple((i, SEALERS[i].sign(signed)) for i in signers))


def build() -> list[Block]:
    a = new_chain()
    out = []
    for k in range(3):
        head = a.head
        body = ProposalBody(1000 + k, k % 4, tuple(v.hash for v in txs(10 * k)))
        executed = a.execute(head.number + 1, head.block_hash, body, txs(10 * k))
        out.append(a.commit(executed, seal(executed.block, [0, 1, 2, 3])))
    return out


BLOCKS = build()
THIRD = BLOCKS[2].encode()


def behind() -> Chain:
    b = new_chain()
    for block in BLOCKS[:2]:
        b.import_block(Block.decode(block.encode()), known=lambda h: None)
    return b


@st.composite
def edited_blocks(draw: st.DrawFn) -> Block:
    """Block 3 with one field edited, still well-formed (it decodes)."""
    try:
        return draw(_edited_blocks())
    except ValueError:  # the edit broke the header's own rules: not a block at all
        assume(False)
        raise


@st.composite
def _edited_blocks(draw: st.DrawFn) -> Block:
    block = BLOCKS[2]
    h = block.header
    what = draw(st.sampled_from(["timestamp", "sealer", "state_root", "txs", "seal_view",
                                 "signers", "extra", "sealer_list", "parent"]))  # fmt: skip
    if what == "timestamp":
        h = BlockHeader(
            h.number,
            h.parent_hash,
            draw(st.integers(0, 2**64 - 1)),
            h.tx_root,
            h.receipt_root,
            h.state_root,
            h.sealer,
            h.sealer_list,
            h.extra_data,
        )
    elif what == "sealer":
        h = BlockHeader(
            h.number,
            h.parent_hash,
            h.timestamp,
            h.tx_root,
            h.receipt_root,
            h.state_root,
            draw(st.integers(0, 300)),
            h.sealer_list,
            h.extra_data,
        )
    elif what == "state_root":
        h = BlockHeader(
            h.number,
            h.parent_hash,
            h.timestamp,
            h.tx_root,
            h.receipt_root,
            draw(st.binary(min_size=32, max_size=32)),
            h.sealer,
            h.sealer_list,
            h.extra_data,
        )
    elif what == "extra":
        h = BlockHeader(
            h.number,
            h.parent_hash,
            h.timestamp,
            h.tx_root,
            h.receipt_root,
            h.state_root,
            h.sealer,
            h.sealer_list,
            draw(st.binary(max_size=40)),
        )
    elif what == "sealer_list":
        keys = draw(st.permutations(list(h.sealer_list)))
        h = BlockHeader(
            h.number,
            h.parent_hash,
            h.timestamp,
            h.tx_root,
            h.receipt_root,
            h.state_root,
            h.sealer,
            tuple(keys[: draw(st.integers(1, 4))]),
            h.extra_data,
        )
    elif what == "parent":
        h = BlockHeader(
            h.number,
            BLOCKS[0].hash,
            h.timestamp,
            h.tx_root,
            h.receipt_root,
            h.state_root,
            h.sealer,
            h.sealer_list,
            h.extra_data,
        )
    transactions = block.transactions
    if what == "txs":
        pool = list(block.transactions) + list(BLOCKS[1].transactions)
        transactions = tuple(draw(st.lists(st.sampled_from(pool), max_size=4)))
    if what == "seal_view":
        return Block(
            h, transactions, BlockSeal(draw(st.integers(0, 2**64 - 1)), block.seal.signatures)
        )
    if what == "signers":
        chosen = sorted(draw(st.sets(st.integers(0, 3), max_size=4)))
        return Block(h, transactions, seal(block, chosen))
    # the sealers' signatures over the original block, on the edited one
    return Block(h, transactions, block.seal)


def offer(raw: bytes | Block) -> None:
    b = behind()
    before = b.head
    try:
        block = raw if isinstance(raw, Block) else Block.decode(raw)
        b.import_block(block, known=lambda h: None)
    except (DecodeError, ChainError):
        assert b.head == before, "a refused block wrote to the ledger"
        return
    assert b.head.block_hash == BLOCKS[2].hash, "imported a block nobody sealed"
    assert b.head.state_root == BLOCKS[2].header.state_root


@pytest.mark.timeout(time_limit(120))
@fuzz(250)
@given(st.one_of(mutated_bytes(THIRD), mutated_tree(THIRD), edited_blocks()))
def test_a_mutated_block_is_refused_and_writes_nothing(raw: bytes | Block) -> None:
    offer(raw)


def test_the_valid_block_is_imported_with_any_quorum_of_signatures() -> None:
    for signers in ([0, 1, 2], [1, 2, 3], [0, 1, 2, 3]):
        b = behind()
        b.import_block(BLOCKS[2].with_seal(seal(BLOCKS[2], signers)), known=lambda h: None)
        assert b.head.block_hash == BLOCKS[2].hash
    for signers in ([], [0], [1, 3]):
        with pytest.raises(ChainError):
            behind().import_block(
                BLOCKS[2].with_seal(seal(BLOCKS[2], signers)), known=lambda h: None
            )
