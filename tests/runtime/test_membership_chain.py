"""Membership changes in the chain: headers, seals and import checked against the set in
force at each height (the parent state's), across several changes."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from consensus import messages as cm
from consensus.crypto import KeyPair
from node.ledger.block import Block, BlockSeal
from node.ledger.chain import Chain, ChainError, ExecutedBlock, ProposalBody
from node.ledger.genesis import GenesisConfig
from node.ledger.tx import Transaction, VerifiedTx
from storage.backends import open_store
from storage.ledger import LedgerStore

RNG = random.Random(11)
KEYS = [KeyPair.generate(RNG) for _ in range(6)]  # 0-3 genesis sealers, 4 and 5 join later
BY_PUB = {k.public_key: k for k in KEYS}
CLIENT = KeyPair.generate(RNG)
GOVERNOR = KeyPair.generate(RNG)
GENESIS = GenesisConfig(
    sealers=tuple(k.public_key for k in KEYS[:4]), governors=(GOVERNOR.address,)
)
_nonce = iter(range(10**6))


def new_chain() -> Chain:
    return Chain(LedgerStore(open_store(None)), GENESIS)


def tx(method: str, *args: str | int, to: str = "0x5002", key: KeyPair = CLIENT) -> VerifiedTx:
    t = Transaction.build(
        chain_id="chain0",
        group_id="group0",
        to=to,
        method=method,
        args=args,
        block_limit=900,
        nonce=f"m{next(_nonce)}",
    )
    return t.sign(key).verified()


def gov(method: str, key: KeyPair) -> VerifiedTx:
    return tx(method, key.public_key.hex(), to="0x1003", key=GOVERNOR)


def sign(block: Block, signers: Sequence[KeyPair], sealers: Sequence[bytes]) -> BlockSeal:
    """A seal by ``signers``, indexed in ``sealers``."""
    h = block.header
    digest = cm.proposal_digest(h.number, h.parent_hash, ProposalBody.of_block(block).encode())
    signed = cm.seal_digest(0, h.number, digest, block.hash, h.state_root)
    return BlockSeal(
        0, tuple(sorted((list(sealers).index(k.public_key), k.sign(signed)) for k in signers))
    )


def step(chain: Chain, txs: list[VerifiedTx]) -> tuple[ExecutedBlock, Block]:
    """Execute the next block and seal it by every sealer in force at its height."""
    head = chain.head
    sealers = chain.sealers
    body = ProposalBody(1000 + head.number, 0, tuple(v.hash for v in txs))
    executed = chain.execute(head.number + 1, head.block_hash, body, txs)
    block = executed.block.with_seal(sign(executed.block, [BY_PUB[k] for k in sealers], sealers))
    return executed, block


def history(chain: Chain) -> list[Block]:
    """Blocks 1..: observer 4 added, then made sealer, sealer 0 removed, 5 added as
    observer and sealer, sealer 1 demoted; a transfer in every block."""
    changes = [
        [gov("addObserver", KEYS[4])],
        [gov("addSealer", KEYS[4])],
        [],
        [gov("remove", KEYS[0])],
        [gov("addObserver", KEYS[5]), gov("addSealer", KEYS[5])],
        [gov("addObserver", KEYS[1])],
        [],
    ]
    blocks = []
    for i, extra in enumerate(changes):
        executed, block = step(chain, [tx("userSave", f"u{i}", 5), *extra])
        assert all(r.status == 0 for r in executed.result.receipts)
        chain.commit(executed, block.seal)
        blocks.append(block)
    return blocks


def pubs(*indices: int) -> tuple[bytes, ...]:
    return tuple(KEYS[i].public_key for i in indices)


def test_headers_name_the_list_in_force_from_the_block_after_each_change() -> None:
    chain = new_chain()
    blocks = history(chain)
    assert [b.header.sealer_list for b in blocks] == [
        pubs(0, 1, 2, 3),
        pubs(0, 1, 2, 3),  # 4 is an observer: not in the list
        pubs(0, 1, 2, 3, 4),  # addSealer in block 2 applies from 3
        pubs(0, 1, 2, 3, 4),
        pubs(1, 2, 3, 4),  # the later sealers shifted down
        pubs(1, 2, 3, 4, 5),
        pubs(2, 3, 4, 5),
    ]
    assert chain.membership() == (pubs(2, 3, 4, 5), pubs(1))
    assert chain.sealers_at(8) == pubs(2, 3, 4, 5)
    assert chain.sealers_at(3) == pubs(0, 1, 2, 3, 4)
    assert chain.sealers_at(0) == pubs(0, 1, 2, 3)
    assert chain.sealers_at(9) is None


def test_import_of_a_history_spanning_several_changes() -> None:
    a, b = new_chain(), new_chain()
    for block in history(a):
        b.import_block(Block.decode(block.encode()), known=lambda h: None)
    assert b.head == a.head and b.membership() == a.membership()
    for number in range(a.head.number + 1):
        assert b.verify_seal(a.block(number)) if number else True  # type: ignore[arg-type]


def test_a_block_sealed_by_the_old_set_after_a_change_at_the_right_height() -> None:
    chain = new_chain()
    executed, block = step(chain, [tx("userSave", "x", 1), gov("addObserver", KEYS[4])])
    chain.commit(executed, block.seal)
    executed, block = step(chain, [gov("addSealer", KEYS[4])])
    chain.commit(executed, block.seal)  # block 2 made 4 a sealer: block 3 needs the new set
    old = pubs(0, 1, 2, 3)
    assert chain.sealers_at(2) == old
    executed, _ = step(chain, [tx("userSave", "y", 1)])
    three = executed.block
    new = pubs(0, 1, 2, 3, 4)
    # 3 of the old 4 were a quorum at height 2, not at 3 (4 of 5 needed)
    assert not chain.verify_seal(three.with_seal(sign(three, KEYS[:3], old)))
    assert chain.verify_seal(three.with_seal(sign(three, [*KEYS[:3], KEYS[4]], new)))
    # block 2, sealed by the old set, still verifies once the change is in force
    assert chain.verify_seal(chain.block(2))  # type: ignore[arg-type]


def test_a_seal_of_the_new_set_at_a_height_where_the_old_is_in_force_is_refused() -> None:
    a, b = new_chain(), new_chain()
    executed, block = step(a, [gov("addObserver", KEYS[4]), gov("addSealer", KEYS[4])])
    a.commit(executed, block.seal)
    b.import_block(block, known=lambda h: None)
    executed, block = step(a, [gov("remove", KEYS[0]), gov("remove", KEYS[1])])
    a.commit(executed, block.seal)
    b.import_block(block, known=lambda h: None)  # block 2 still ran with 0..4
    assert b.sealers == pubs(2, 3, 4)
    # block 2 sealed by the new set {2, 3, 4} indexed as in block 3's list: the set in
    # force at 2 is {0..4}, so the same signatures do not count there
    forged = block.with_seal(sign(block, [KEYS[2], KEYS[3], KEYS[4]], pubs(2, 3, 4)))
    assert not b.verify_seal(forged)
    c = new_chain()
    c.import_block(a.block(1), known=lambda h: None)  # type: ignore[arg-type]
    with pytest.raises(ChainError, match="seal"):
        c.import_block(forged, known=lambda h: None)
    assert c.head.number == 1
    c.import_block(block, known=lambda h: None)  # the right seal is accepted
    assert c.head == a.head


def test_a_proposer_index_is_checked_against_the_list_in_force() -> None:
    chain = new_chain()
    executed, block = step(chain, [gov("remove", KEYS[3])])
    chain.commit(executed, block.seal)
    head = chain.head
    txs = [tx("userSave", "z", 1)]
    with pytest.raises(ChainError, match="proposer 3"):
        chain.execute(2, head.block_hash, ProposalBody(2000, 3, (txs[0].hash,)), txs)
    chain.execute(2, head.block_hash, ProposalBody(2000, 2, (txs[0].hash,)), txs)


def test_membership_after_previews_a_change_on_the_head() -> None:
    chain = new_chain()
    assert chain.membership_after(tx("userSave", "a", 1)) is None
    assert chain.membership_after(gov("addSealer", KEYS[4])) is None  # -51104: it would fail
    assert chain.membership_after(tx("remove", KEYS[0].public_key.hex(), to="0x1003")) is None
    assert chain.membership_after(gov("remove", KEYS[0])) == (pubs(1, 2, 3), ())
    assert chain.membership() == (pubs(0, 1, 2, 3), ())  # nothing written
